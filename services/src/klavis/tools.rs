//! Klavis's REST helpers over MCP: `POST /mcp-server/list-tools` and `/mcp-server/call-tool`.
//! Klavis acts as an MCP client of any `serverUrl`; this service only of its own: the URL is
//! parsed as one it issued, never called, and the instance it names (of the caller's
//! project) is reached through the gateway, with its credential and policy.
//! Tool and upstream failures answer 200 with `success: false`, as Klavis's do.

use super::wire::{CallToolRequest, CallToolResponse, CallToolResult, ListToolsRequest, ListToolsResponse, ToolFormat};
use super::{KlavisCaller, KlavisError, KlavisTags};
use crate::gateway::{DirectError, Gateway, GatewayError};
use crate::http::body::JsonBody;
use crate::http::input;
use crate::http::problem::{Issue, Kind, Location, Problem};
use crate::instance::{ConnectionRecord, Instances};
use crate::project::Caller;
use domain::limits;
use events::InstanceId;
use poem_openapi::OpenApi;
use poem_openapi::payload::Json;
use serde_json::{Value, json};

pub struct KlavisToolsApi {
    instances: Instances,
    gateway: Gateway,
    public_url: String,
}

impl KlavisToolsApi {
    pub fn new(instances: Instances, gateway: Gateway, public_url: String) -> Self {
        Self { instances, gateway, public_url }
    }

    /// The caller's instance a `serverUrl` names: 404 for a URL this service did not issue and
    /// for an unknown, deleted or another project's instance.
    async fn instance_at(&self, caller: &Caller, server_url: &str) -> Result<ConnectionRecord, KlavisError> {
        let instance_id = instance_in_url(&self.public_url, server_url)?;
        Ok(self.instances.get(caller, instance_id).await?)
    }
}

#[OpenApi]
impl KlavisToolsApi {
    /// The tools of an instance's MCP server, as an MCP client of its `serverUrl` sees them
    /// (a read-only instance lists only read-only tools), in the format asked for.
    #[oai(path = "/mcp-server/list-tools", method = "post", tag = "KlavisTags::McpServer")]
    async fn list_tools(
        &self,
        caller: KlavisCaller,
        body: JsonBody<ListToolsRequest>,
    ) -> Result<Json<ListToolsResponse>, KlavisError> {
        let body = body.0;
        let record = self.instance_at(&caller.0, &body.server_url).await?;
        let format = body.format.unwrap_or_default();
        Ok(Json(match self.gateway.list_tools(&record).await {
            Ok(tools) => ListToolsResponse {
                success: true,
                tools: Some(tools.iter().map(|tool| in_format(format, tool)).collect()),
                format,
                error: None,
            },
            Err(e) => ListToolsResponse { success: false, tools: None, format, error: Some(failure(e)?) },
        }))
    }

    /// Calls a tool of an instance's MCP server. A tool that fails, one the instance's policy
    /// hides, or an upstream that fails answers 200 with `success: false`.
    #[oai(path = "/mcp-server/call-tool", method = "post", tag = "KlavisTags::McpServer")]
    async fn call_tool(
        &self,
        caller: KlavisCaller,
        body: JsonBody<CallToolRequest>,
    ) -> Result<Json<CallToolResponse>, KlavisError> {
        let body = body.0;
        let tool_at = || Location::Body(vec!["toolName".into()]);
        if body.tool_name.is_empty() {
            return Err(Problem::invalid(tool_at(), Issue::Rule, "must not be empty").into());
        }
        input::line(tool_at(), &body.tool_name, limits::NAME_CHARS)?;
        let record = self.instance_at(&caller.0, &body.server_url).await?;
        let arguments = Value::Object(body.tool_args.unwrap_or_default().into_iter().collect());
        Ok(Json(match self.gateway.call_tool(&record, &body.tool_name, arguments).await {
            Ok(result) => called(result),
            Err(e) => CallToolResponse { success: false, result: None, error: Some(failure(e)?) },
        }))
    }
}

/// The instance id of a URL of ours: `{PUBLIC_URL}/mcp/?instance_id=…`, `/mcp?…` or
/// `/sse?instance_id=…`. Anything else is not ours (404); what is not a URL at all is a 422.
fn instance_in_url(public_url: &str, raw: &str) -> Result<InstanceId, KlavisError> {
    let location = || Location::Body(vec!["serverUrl".into()]);
    input::line(location(), raw, limits::URL_CHARS)?;
    let url = url::Url::parse(raw).map_err(|_| {
        let mut problem = Problem::invalid(location(), Issue::WrongType, "must be a URL").with_input(Some(raw.into()));
        problem.expected = Some("a URL".into());
        KlavisError::from(problem)
    })?;
    let not_ours = || KlavisError::from(Problem::new(Kind::NotFound, "No MCP server instance at this serverUrl"));
    let public = url::Url::parse(public_url).map_err(|_| not_ours())?;
    let base = public.path().trim_end_matches('/');
    let endpoint = url.path().strip_prefix(base).ok_or_else(not_ours)?;
    if url.origin() != public.origin() || !matches!(endpoint, "/mcp" | "/mcp/" | "/sse") {
        return Err(not_ours());
    }
    let mut ids = url.query_pairs().filter(|(name, _)| name == "instance_id");
    match (ids.next(), ids.next()) {
        (Some((_, id)), None) => id.parse().map_err(|_| not_ours()),
        _ => Err(not_ours()),
    }
}

/// A tool of `tools/list` in the shape a model's API takes it.
fn in_format(format: ToolFormat, tool: &Value) -> Value {
    let name = tool.get("name").cloned().unwrap_or(Value::Null);
    let description = tool.get("description").cloned().unwrap_or_else(|| Value::from(""));
    let schema = tool.get("inputSchema").cloned().unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    match format {
        ToolFormat::McpNative => tool.clone(),
        ToolFormat::Openai => {
            json!({"type": "function", "function": {"name": name, "description": description, "parameters": schema}})
        }
        ToolFormat::Anthropic => json!({"name": name, "description": description, "input_schema": schema}),
        ToolFormat::Gemini => json!({"name": name, "description": description, "parameters": schema}),
    }
}

/// A `CallToolResult` as Klavis answers it: a tool error is `success: false`, its text the error.
fn called(result: Value) -> CallToolResponse {
    let content = result.get("content").and_then(Value::as_array).cloned().unwrap_or_default();
    let is_error = result.get("isError").and_then(Value::as_bool).unwrap_or(false);
    let error = is_error.then(|| {
        let texts: Vec<&str> = content.iter().filter_map(|c| c.get("text").and_then(Value::as_str)).collect();
        if texts.is_empty() { "the tool failed".to_owned() } else { texts.join("\n") }
    });
    CallToolResponse { success: !is_error, result: Some(CallToolResult { content, is_error }), error }
}

/// The `error` of a `success: false` answer; an instance deleted in the meantime is a 404.
fn failure(e: DirectError) -> Result<String, KlavisError> {
    match e {
        DirectError::Gateway(GatewayError::InstanceNotFound) => {
            Err(Problem::new(Kind::NotFound, "Instance not found").into())
        }
        other => Ok(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &str = "https://mcp.example.com";

    fn id_of(url: &str) -> Option<InstanceId> {
        instance_in_url(PUBLIC, url).ok()
    }

    #[test]
    fn only_our_own_instance_urls_name_an_instance() {
        let id = InstanceId::random();
        for ours in [
            format!("{PUBLIC}/mcp/?instance_id={id}"),
            format!("{PUBLIC}/mcp?instance_id={id}"),
            format!("{PUBLIC}/sse?instance_id={id}"),
        ] {
            assert_eq!(id_of(&ours), Some(id), "{ours}");
        }
        for foreign in [
            format!("https://evil.example.com/mcp/?instance_id={id}"),
            format!("http://mcp.example.com/mcp/?instance_id={id}"),
            format!("https://mcp.example.com:8443/mcp/?instance_id={id}"),
            format!("{PUBLIC}/other/?instance_id={id}"),
            format!("{PUBLIC}/mcp/?instance_id=not-a-uuid"),
            format!("{PUBLIC}/mcp/?instance_id={id}&instance_id={}", InstanceId::random()),
            format!("{PUBLIC}/mcp/"),
        ] {
            assert_eq!(id_of(&foreign), None, "{foreign}");
        }
        let under_a_path = format!("https://example.com/provisioner/mcp/?instance_id={id}");
        assert_eq!(instance_in_url("https://example.com/provisioner", &under_a_path).ok(), Some(id));
        assert!(matches!(instance_in_url(PUBLIC, "not a url"), Err(KlavisError::Unprocessable(_))));
    }

    #[test]
    fn tools_convert_to_each_models_shape() {
        let tool = json!({"name": "whoami", "description": "Who", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}});
        assert_eq!(in_format(ToolFormat::McpNative, &tool), tool);
        assert_eq!(
            in_format(ToolFormat::Openai, &tool),
            json!({"type": "function", "function": {"name": "whoami", "description": "Who", "parameters": {"type": "object"}}})
        );
        assert_eq!(
            in_format(ToolFormat::Anthropic, &tool),
            json!({"name": "whoami", "description": "Who", "input_schema": {"type": "object"}})
        );
        assert_eq!(in_format(ToolFormat::Gemini, &tool)["parameters"], json!({"type": "object"}));
    }

    #[test]
    fn a_tool_error_is_not_a_success() {
        let failed = called(json!({"content": [{"type": "text", "text": "boom"}], "isError": true}));
        assert!(!failed.success);
        assert_eq!(failed.error.as_deref(), Some("boom"));
        assert!(called(json!({"content": []})).success);
    }
}
