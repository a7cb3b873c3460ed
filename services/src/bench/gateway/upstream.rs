//! The bench's upstream MCP server: the official Rust SDK's Streamable HTTP server (rmcp's
//! `StreamableHttpService`, sessions on, SSE answers, as Python's FastMCP answers) with one
//! trivial tool, `echo` (read-only), on a loopback port of the bench process.
//!
//! It must not be the bottleneck: the tool does no work, and the server runs in Rust on the
//! bench's own runtime, so direct calls measure the upstream and the client, and calls through
//! the gateway add only the gateway.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The one tool.
pub const ECHO: &str = "echo";

/// Answers `echo` with the `text` it was given.
#[derive(Clone, Copy)]
struct EchoServer;

impl ServerHandler for EchoServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("provisioner-bench-upstream", env!("CARGO_PKG_VERSION")))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = json!({"type": "object", "properties": {"text": {"type": "string"}}});
        let Value::Object(schema) = schema else { unreachable!("an object") };
        let echo = Tool::new(ECHO, "Answers the text it is given.", schema)
            .with_annotations(ToolAnnotations::new().read_only(true));
        Ok(ListToolsResult::with_all_items(vec![echo]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name != ECHO {
            return Err(ErrorData::invalid_params(format!("Unknown tool: {}", request.name), None));
        }
        let text = request.arguments.as_ref().and_then(|a| a.get("text")).and_then(Value::as_str).unwrap_or("");
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

/// The running upstream; stops when dropped.
pub struct EchoUpstream {
    /// `http://127.0.0.1:{port}/mcp`.
    pub url: String,
    stop: CancellationToken,
}

impl EchoUpstream {
    /// Binds a loopback port and serves on the current runtime (HTTP/1.1, keep-alive).
    pub async fn start() -> anyhow::Result<Self> {
        let stop = CancellationToken::new();
        let config = StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token());
        let service: StreamableHttpService<EchoServer, LocalSessionManager> =
            StreamableHttpService::new(|| Ok(EchoServer), Arc::default(), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/mcp", listener.local_addr()?);
        tokio::spawn(accept(listener, service, stop.clone()));
        Ok(Self { url, stop })
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept(
    listener: tokio::net::TcpListener,
    service: StreamableHttpService<EchoServer, LocalSessionManager>,
    stop: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        stream.set_nodelay(true).ok();
        let service = service.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |request| {
                let service = service.clone();
                async move { Ok::<_, Infallible>(service.handle(request).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), handler);
            tokio::select! {
                _ = connection => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}
