//! The bench's MCP client: one Streamable HTTP session over its own keep-alive connection
//! (a reqwest client per session), speaking JSON-RPC by hand so that the client costs as
//! little as possible and is the same for the direct and the gateway path.

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};

const PROTOCOL_VERSION: &str = "2025-06-18";
const SESSION_HEADER: &str = "mcp-session-id";

/// Where a session goes, and with what.
#[derive(Clone)]
pub struct Endpoint {
    pub url: String,
    /// Sent as `Authorization` (the direct path gets what the gateway would inject).
    pub authorization: Option<String>,
}

/// One call to make, again and again.
#[derive(Clone)]
pub struct Call {
    pub tool: String,
    pub arguments: Value,
}

pub struct McpSession {
    http: reqwest::Client,
    endpoint: Endpoint,
    session: Option<HeaderValue>,
    next_id: u64,
}

impl McpSession {
    /// `initialize`, then `notifications/initialized`: a session the client may call tools in.
    pub async fn open(endpoint: &Endpoint) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().pool_max_idle_per_host(1).no_proxy().tcp_nodelay(true).build()?;
        let mut session = Self { http, endpoint: endpoint.clone(), session: None, next_id: 1 };
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "provisioner-bench", "version": env!("CARGO_PKG_VERSION")},
        });
        let (answer, session_id) = session.request("initialize", params).await?;
        if answer.get("result").is_none() {
            anyhow::bail!("initialize at {} was answered {answer}", session.endpoint.url);
        }
        session.session = session_id;
        let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let status = session.post(&notification).await?.status();
        if !status.is_success() {
            anyhow::bail!("notifications/initialized at {} was answered HTTP {status}", session.endpoint.url);
        }
        Ok(session)
    }

    /// One `tools/call`; whether it succeeded (a result that is not a tool error).
    pub async fn call(&mut self, call: &Call) -> bool {
        let params = json!({"name": call.tool, "arguments": call.arguments});
        match self.request("tools/call", params).await {
            Ok((answer, _)) => {
                answer.pointer("/result/isError") != Some(&Value::Bool(true)) && answer.get("result").is_some()
            }
            Err(_) => false,
        }
    }

    /// Opens the session's standing stream (`GET`), as the official clients do after
    /// `initialize`; the session's connection stays on it until the answer is dropped.
    pub async fn listen(&self) -> anyhow::Result<reqwest::Response> {
        let mut request = self.http.get(&self.endpoint.url).header(ACCEPT, "text/event-stream");
        request = self.with_session(request);
        let response = request.send().await?;
        if !response.status().is_success() {
            anyhow::bail!("GET at {} was answered HTTP {}", self.endpoint.url, response.status());
        }
        Ok(response)
    }

    /// A request and the message answering it (from a JSON body or an SSE stream), with the
    /// session id the answer carried.
    async fn request(&mut self, method: &str, params: Value) -> anyhow::Result<(Value, Option<HeaderValue>)> {
        let id = self.next_id;
        self.next_id += 1;
        let response = self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).await?;
        let session = response.headers().get(SESSION_HEADER).cloned();
        let is_stream = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let body = response.bytes().await?;
        let answer = if is_stream {
            stream_answer(&String::from_utf8_lossy(&body), id)
        } else {
            serde_json::from_slice(&body).ok()
        };
        let answer = answer.ok_or_else(|| anyhow::anyhow!("{method} got no answer"))?;
        Ok((answer, session))
    }

    async fn post(&self, message: &Value) -> anyhow::Result<reqwest::Response> {
        let mut request = self
            .http
            .post(&self.endpoint.url)
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .body(message.to_string());
        request = self.with_session(request);
        Ok(request.send().await?)
    }

    fn with_session(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(authorization) = &self.endpoint.authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        if let Some(session) = &self.session {
            request = request.header(SESSION_HEADER, session).header("mcp-protocol-version", PROTOCOL_VERSION);
        }
        request
    }
}

/// The message with `id` among an SSE body's `data:` events.
fn stream_answer(body: &str, id: u64) -> Option<Value> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
            serde_json::from_str::<Value>(&data.join("\n")).ok()
        })
        .find(|message| message.get("id").and_then(Value::as_u64) == Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_found_among_other_events_of_a_stream() {
        let body = "id: 0\nretry: 3000\ndata: \n\n\
                    data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
                    id: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n";
        assert_eq!(stream_answer(body, 7), Some(json!({"jsonrpc": "2.0", "id": 7, "result": {}})));
        assert_eq!(stream_answer(body, 8), None);
    }
}
