//! Klavis's request and response shapes, as its published spec defines them (camelCase,
//! except where Klavis itself uses snake_case: `is_authenticated`, `api_key`, the
//! white-label fields, query parameters).

use crate::http::secret_input::{SecretInput, SecretJson};
use poem_openapi::{Enum, Object};
use serde::Deserialize;

#[derive(Enum, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionType {
    #[oai(rename = "SSE")]
    #[serde(rename = "SSE")]
    Sse,
    #[default]
    StreamableHttp,
}

/// `POST /mcp-server/instance/create`.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreateServerRequest {
    /// One of the catalog's names, in any case; `_` stands for a space (`GOOGLE_CALENDAR`).
    pub server_name: String,
    pub user_id: String,
    pub platform_name: Option<String>,
    pub connection_type: Option<ConnectionType>,
    pub legacy: Option<bool>,
    pub is_read_only: Option<bool>,
}

#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct CreateServerResponse {
    pub server_url: String,
    pub instance_id: String,
    pub oauth_url: Option<String>,
}

/// `POST /mcp-server/self-hosted/instance/create`.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreateSelfHostedServerRequest {
    pub server_name: String,
    pub user_id: String,
}

#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct CreateSelfHostedServerResponse {
    pub instance_id: String,
    pub oauth_url: Option<String>,
}

#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct GetInstanceResponse {
    pub instance_id: Option<String>,
    pub auth_needed: bool,
    pub is_authenticated: bool,
    pub server_name: String,
    pub platform: String,
    pub external_user_id: String,
    pub oauth_url: Option<String>,
}

#[derive(Object, Deserialize, Debug, Default)]
#[oai(rename_all = "camelCase", deny_unknown_fields)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateServerInstanceRequest {
    pub is_read_only: Option<bool>,
}

#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct UpdateServerInstanceResponse {
    pub instance_id: String,
    pub is_read_only: bool,
    pub message: String,
}

#[derive(Object, Debug)]
pub struct StatusResponse {
    pub success: bool,
    pub message: Option<String>,
}

impl StatusResponse {
    pub fn ok(message: &str) -> Self {
        Self { success: true, message: Some(message.to_owned()) }
    }
}

/// `authData`: an API key (`token` and/or `api_key`) or general data (`data`). Every value is a
/// secret: sealed before it is stored, never logged.
#[derive(Object, Deserialize, Debug)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct AuthDataInput {
    pub token: Option<SecretInput>,
    pub api_key: Option<SecretInput>,
    pub data: Option<SecretJson>,
}

/// `POST /mcp-server/instance/set-auth`.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct SetAuthRequest {
    pub instance_id: String,
    pub auth_data: AuthDataInput,
}

/// `POST /mcp-server/instance/set-auth-token` (before August 2025).
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct SetAuthTokenRequest {
    pub instance_id: String,
    pub auth_token: SecretInput,
}

#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct GetAuthDataResponse {
    pub success: bool,
    pub auth_data: Option<serde_json::Value>,
    pub error: Option<String>,
}

#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ServerTool {
    pub name: String,
    pub description: Option<String>,
}

#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct McpServer {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub tools: Option<Vec<ServerTool>>,
    pub auth_needed: bool,
}

#[derive(Object, Debug)]
pub struct GetMcpServersResponse {
    pub servers: Vec<McpServer>,
}

#[derive(Object, Debug)]
pub struct IntegrationItem {
    pub name: String,
    pub is_authenticated: bool,
}

#[derive(Object, Debug)]
pub struct GetUserIntegrationsResponse {
    pub integrations: Vec<IntegrationItem>,
}

#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct GetUserResponse {
    pub user_id: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

#[derive(Object, Debug)]
pub struct DeleteUserResponse {
    pub success: bool,
    pub message: String,
}

#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct UserInfo {
    pub user_id: String,
    pub created_at: String,
}

#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct GetAllUsersResponse {
    pub users: Vec<UserInfo>,
    pub total_count: i64,
    pub page: i64,
    pub page_size: i64,
    pub total_pages: i64,
}

/// `POST /user/set-auth`.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct SetUserAuthRequest {
    pub user_id: String,
    pub server_name: String,
    pub auth_data: AuthDataInput,
}

#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct GetUserAuthResponse {
    pub success: bool,
    pub user_id: String,
    pub server_name: String,
    pub auth_data: Option<serde_json::Value>,
    pub is_authenticated: bool,
    pub message: Option<String>,
}

/// `POST /white-labeling/create`. `authorize_url`, `token_url` and `scopes` are this
/// service's additions: a provider's endpoints and scopes when the defaults do not fit
/// (self-hosted providers, tests).
#[derive(Object, Deserialize, Debug)]
pub struct CreateWhiteLabelingRequest {
    pub client_id: String,
    pub client_secret: SecretInput,
    pub server_name: String,
    pub callback_url: Option<String>,
    pub account_id: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub scopes: Option<Vec<String>>,
}

/// A white-label configuration as returned: never its secret.
#[derive(Object, Debug)]
pub struct WhiteLabelingData {
    pub client_id: String,
    pub server_name: String,
    pub provider: String,
    pub callback_url: Option<String>,
    pub account_id: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub scopes: Option<Vec<String>>,
    /// Always `********`.
    pub client_secret: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Object, Debug)]
pub struct WhiteLabelingResponse {
    pub success: bool,
    pub data: Option<WhiteLabelingData>,
    pub message: Option<String>,
}

/// FastAPI's validation error item.
#[derive(Object, Debug, Clone)]
pub struct ValidationError {
    /// Where: `["body", "userId"]`, `["path", "instanceId"]`, `["query", "page_size"]`.
    pub loc: Vec<serde_json::Value>,
    pub msg: String,
    #[oai(rename = "type")]
    pub kind: String,
    #[oai(skip_serializing_if_is_none)]
    pub input: Option<serde_json::Value>,
}

/// 422: every parse or validation error, in FastAPI's shape.
#[derive(Object, Debug, Clone)]
pub struct HttpValidationError {
    pub detail: Vec<ValidationError>,
}

/// Any other error: `{"detail": "..."}`.
#[derive(Object, Debug, Clone)]
pub struct Detail {
    pub detail: String,
}

/// The shape `list-tools` returns tools in.
#[derive(Enum, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolFormat {
    #[oai(rename = "openai")]
    #[serde(rename = "openai")]
    Openai,
    #[oai(rename = "anthropic")]
    #[serde(rename = "anthropic")]
    Anthropic,
    #[oai(rename = "gemini")]
    #[serde(rename = "gemini")]
    Gemini,
    #[default]
    #[oai(rename = "mcp_native")]
    #[serde(rename = "mcp_native")]
    McpNative,
}

/// `POST /mcp-server/list-tools`.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct ListToolsRequest {
    /// A `serverUrl` this service issued (`{PUBLIC_URL}/mcp/?instance_id=…` or `/sse?instance_id=…`).
    pub server_url: String,
    pub connection_type: Option<ConnectionType>,
    pub format: Option<ToolFormat>,
    /// Accepted for compatibility and not sent upstream: the gateway sends the instance's own
    /// credential and nothing of the caller's.
    pub headers: Option<std::collections::HashMap<String, Option<String>>>,
}

#[derive(Object, Debug)]
pub struct ListToolsResponse {
    pub success: bool,
    pub tools: Option<Vec<serde_json::Value>>,
    pub format: ToolFormat,
    pub error: Option<String>,
}

/// `POST /mcp-server/call-tool`.
#[derive(Object, Deserialize, Debug)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CallToolRequest {
    /// A `serverUrl` this service issued.
    pub server_url: String,
    pub tool_name: String,
    pub tool_args: Option<std::collections::BTreeMap<String, serde_json::Value>>,
    pub connection_type: Option<ConnectionType>,
    /// Accepted for compatibility and not sent upstream (see `ListToolsRequest::headers`).
    pub headers: Option<std::collections::HashMap<String, Option<String>>>,
}

/// The upstream's `CallToolResult`.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct CallToolResult {
    pub content: Vec<serde_json::Value>,
    pub is_error: bool,
}

#[derive(Object, Debug)]
pub struct CallToolResponse {
    pub success: bool,
    pub result: Option<CallToolResult>,
    pub error: Option<String>,
}
