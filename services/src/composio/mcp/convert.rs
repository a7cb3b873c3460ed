//! MCP servers and instances between Composio's wire shapes and the shared services.

use super::wire;
use crate::composio::error::Failure;
use crate::composio::iso;
use crate::instance::{ConnectionRecord, CreatedInstance};
use crate::server::ServerRecord;
use domain::instance::UserId;
use domain::server::{AbsoluteUrl, ComposioSettings, ServerField, ServerName, ServerPatch, ServerSpec};
use events::ServerId;
use events::server::{ConnectionType, Transport};
use secrecy::SecretString;
use std::collections::{BTreeMap, BTreeSet};

/// Composio's rule for server names, on top of the registry's.
pub fn name_of(raw: &str) -> Result<ServerName, Failure> {
    let length = raw.chars().count();
    let allowed = raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ' ');
    if !(4..=30).contains(&length) || !allowed {
        return Err(Failure::invalid("name", "must be 4 to 30 characters: letters, digits, spaces or hyphens"));
    }
    ServerName::parse(raw).map_err(|e| Failure::invalid("name", e.reason))
}

pub fn server_id_of(field: &str, raw: &str) -> Result<ServerId, Failure> {
    raw.parse().map_err(|_| Failure::invalid(field, "is not an MCP server id (a UUID)"))
}

pub fn user_of(field: &str, raw: &str) -> Result<UserId, Failure> {
    UserId::parse(raw).map_err(|reason| Failure::invalid(field, reason))
}

/// A list without repeats, in its first order.
pub fn distinct(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items.into_iter().filter(|item| seen.insert(item.clone())).collect()
}

/// Where clients reach a server: `{public}/v3/mcp/{id}`, as Composio's URLs go.
pub fn mcp_url(public_url: &str, server_id: impl std::fmt::Display) -> String {
    format!("{public_url}/v3/mcp/{server_id}")
}

/// A registry spec for a Composio server: streamable HTTP at this service's URL for it.
pub fn spec_of(
    public_url: &str,
    server_id: ServerId,
    name: ServerName,
    composio: ComposioSettings,
) -> Result<ServerSpec<SecretString>, Failure> {
    let url = AbsoluteUrl::parse(ServerField::Url, &mcp_url(public_url, server_id))
        .map_err(|e| Failure::invalid("server", e.reason))?;
    Ok(ServerSpec {
        name,
        description: None,
        transport: Transport::Http,
        url: Some(url),
        connection: Some(ConnectionType::Direct),
        command: None,
        args: None,
        env: BTreeMap::new(),
        custom_headers: Vec::new(),
        oauth_client_id: None,
        oauth_client_secret: None,
        oauth_scope: None,
        proxy_url: None,
        proxy_auth_token: None,
        proxy_auth_header: None,
        request_timeout: None,
        max_total_timeout: None,
        composio,
    })
}

pub fn patch_of(
    body: &wire::UpdateServerRequest,
    toolkits: Option<Vec<String>>,
) -> Result<ServerPatch<SecretString>, Failure> {
    Ok(ServerPatch {
        name: body.name.as_deref().map(name_of).transpose()?,
        auth_config_ids: body.auth_config_ids.clone().map(distinct),
        allowed_tools: body.allowed_tools.clone().map(distinct),
        toolkits,
        managed_auth_via_composio: body.managed_auth_via_composio,
        ..ServerPatch::default()
    })
}

fn commands(url: &str) -> wire::Commands {
    let setup = |client: &str| format!("npx @composio/mcp@latest setup \"{url}\" --client {client}");
    wire::Commands { cursor: setup("cursor"), claude: setup("claude"), windsurf: setup("windsurf") }
}

pub fn server_of(public_url: &str, record: ServerRecord, deleted: Option<bool>) -> wire::McpServer {
    let url = mcp_url(public_url, record.server_id);
    wire::McpServer {
        id: record.server_id.to_string(),
        name: record.name,
        auth_config_ids: record.auth_config_ids,
        allowed_tools: record.allowed_tools,
        commands: commands(&url),
        mcp_url: url,
        toolkits: record.toolkits,
        toolkit_icons: BTreeMap::new(),
        created_at: iso(record.created_at),
        updated_at: iso(record.updated_at),
        server_instance_count: record.server_instance_count,
        managed_auth_via_composio: record.managed_auth_via_composio,
        deleted,
    }
}

pub fn custom_created(public_url: &str, record: ServerRecord) -> wire::CustomServerCreated {
    let url = mcp_url(public_url, record.server_id);
    wire::CustomServerCreated {
        id: record.server_id.to_string(),
        name: record.name,
        auth_config_ids: record.auth_config_ids,
        allowed_tools: record.allowed_tools,
        commands: commands(&url),
        mcp_url: url,
    }
}

/// A user's URL of a server: the base with the singular selector the MCP transport reads
/// (`user_id` or `connected_account_id`), after `include_composio_helper_actions=true` when
/// auth is managed.
pub fn selector_url(base: &str, managed: bool, selector: &str, value: &str) -> String {
    let mut url = url::Url::parse(base).expect("the server URL is absolute");
    {
        let mut query = url.query_pairs_mut();
        if managed {
            query.append_pair("include_composio_helper_actions", "true");
        }
        query.append_pair(selector, value);
    }
    url.to_string()
}

pub fn created_instance(server_id: ServerId, user: &UserId, created: &CreatedInstance) -> wire::Instance {
    wire::Instance {
        id: created.instance_id.to_string(),
        instance_id: user.as_str().to_owned(),
        mcp_server_id: server_id.to_string(),
        created_at: iso(created.created_at),
        updated_at: iso(created.created_at),
    }
}

pub fn instance_of(server_id: ServerId, record: ConnectionRecord) -> wire::Instance {
    wire::Instance {
        id: record.instance_id.map(|id| id.to_string()).unwrap_or_default(),
        instance_id: record.user_id,
        mcp_server_id: server_id.to_string(),
        created_at: iso(record.instance_created_at.unwrap_or(record.created_at)),
        updated_at: iso(record.updated_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_follow_composio_rules() {
        assert!(name_of("My Gmail-1").is_ok());
        assert!(name_of("abc").is_err());
        assert!(name_of(&"a".repeat(31)).is_err());
        assert!(name_of("gmail_server").is_err());
    }

    #[test]
    fn a_user_url_has_the_singular_selector() {
        let base = "https://p.example.com/v3/mcp/1f0c";
        assert_eq!(selector_url(base, false, "user_id", "a b"), "https://p.example.com/v3/mcp/1f0c?user_id=a+b");
        assert_eq!(
            selector_url(base, true, "connected_account_id", "ca_1"),
            "https://p.example.com/v3/mcp/1f0c?include_composio_helper_actions=true&connected_account_id=ca_1"
        );
    }
}
