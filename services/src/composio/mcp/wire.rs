//! Composio's MCP server and instance shapes.

use poem_openapi::Object;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `POST /api/v3/mcp/servers`.
#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioCreateMcpServerRequest")]
pub struct CreateServerRequest {
    /// 4 to 30 letters, digits, spaces or hyphens; unique in the project.
    pub name: String,
    /// Auth configs of the project a user must be connected to.
    pub auth_config_ids: Vec<String>,
    pub allowed_tools: Option<Vec<String>>,
    /// NO_AUTH toolkits (`exa`, `composio_search`, ...).
    pub no_auth_apps: Option<Vec<String>>,
    pub managed_auth_via_composio: Option<bool>,
}

/// `POST /api/v3/mcp/servers/custom`.
#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioCreateCustomMcpServerRequest")]
pub struct CreateCustomServerRequest {
    pub name: String,
    pub toolkits: Option<Vec<String>>,
    pub auth_config_ids: Option<Vec<String>>,
    pub allowed_tools: Option<Vec<String>>,
    /// Deprecated name of `allowed_tools`.
    pub custom_tools: Option<Vec<String>>,
    pub managed_auth_via_composio: Option<bool>,
}

/// `PATCH /api/v3/mcp/{id}`: only the fields sent change; lists are replaced.
#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioUpdateMcpServerRequest")]
pub struct UpdateServerRequest {
    pub name: Option<String>,
    pub toolkits: Option<Vec<String>>,
    pub allowed_tools: Option<Vec<String>>,
    pub managed_auth_via_composio: Option<bool>,
    pub auth_config_ids: Option<Vec<String>>,
}

/// `POST /api/v3/mcp/servers/generate`.
#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioGenerateUrlsRequest")]
pub struct GenerateRequest {
    pub mcp_server_id: String,
    pub managed_auth_by_composio: Option<bool>,
    pub user_ids: Option<Vec<String>>,
    pub connected_account_ids: Option<Vec<String>>,
}

/// `POST /api/v3/mcp/servers/{serverId}/instances`.
#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioCreateInstanceRequest")]
pub struct CreateInstanceRequest {
    pub user_id: String,
}

/// Deprecated setup commands (Composio's `npx @composio/mcp` installer, given this URL).
#[derive(Object, Debug)]
#[oai(rename = "ComposioMcpCommands")]
pub struct Commands {
    pub cursor: String,
    pub claude: String,
    pub windsurf: String,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioMcpServer")]
pub struct McpServer {
    pub id: String,
    pub name: String,
    pub auth_config_ids: Vec<String>,
    pub allowed_tools: Vec<String>,
    /// The server's base URL; a client adds `user_id` or `connected_account_id`.
    pub mcp_url: String,
    pub toolkits: Vec<String>,
    /// No logos are served here: empty.
    pub toolkit_icons: BTreeMap<String, String>,
    pub commands: Commands,
    pub created_at: String,
    pub updated_at: String,
    /// Live instances (users) of the server.
    pub server_instance_count: i64,
    pub managed_auth_via_composio: bool,
    /// On `GET /mcp/{id}` and `PATCH` only.
    #[oai(skip_serializing_if_is_none)]
    pub deleted: Option<bool>,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioCustomMcpServerCreated")]
pub struct CustomServerCreated {
    pub id: String,
    pub name: String,
    pub auth_config_ids: Vec<String>,
    pub allowed_tools: Vec<String>,
    pub mcp_url: String,
    pub commands: Commands,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioMcpServerPage")]
pub struct ServerPage {
    pub items: Vec<McpServer>,
    pub total_pages: i64,
    pub current_page: i64,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioMcpServerDeleted")]
pub struct ServerDeleted {
    pub id: String,
    pub deleted: bool,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioGeneratedUrls")]
pub struct GeneratedUrls {
    pub mcp_url: String,
    pub connected_account_urls: Vec<String>,
    pub user_ids_url: Vec<String>,
}

/// A user's instance of a server. `instance_id` is the user id.
#[derive(Object, Debug)]
#[oai(rename = "ComposioMcpInstance")]
pub struct Instance {
    pub id: String,
    pub instance_id: String,
    pub mcp_server_id: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioMcpInstancePage")]
pub struct InstancePage {
    pub instances: Vec<Instance>,
    pub server_id: String,
    pub server_name: String,
    pub total_pages: i64,
    pub current_page: i64,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioMcpInstanceDeleted")]
pub struct InstanceDeleted {
    pub message: String,
    /// The user's connected accounts for this server's auth configs, deleted with it.
    pub deleted_connected_accounts: i64,
}
