//! The MCP server registry: servers a project registers, with how to reach them.

use crate::{Event, ProjectId, SealedSecret, ServerId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything that happens to a registered MCP server. Aggregate type `server`, id = the
/// server id.
///
/// Registered and updated events carry the server's whole resulting configuration, so a
/// reader never has to fold earlier events to know the current state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServerEvent {
    /// A server was registered in a project.
    ServerRegistered(ServerRegistered),
    /// A server's configuration changed; `changed` names the fields that did.
    ServerUpdated(ServerUpdated),
    /// A server was deleted. Its secrets' data key is destroyed with it.
    ServerDeleted(ServerDeleted),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerRegistered {
    pub project_id: ProjectId,
    pub server_id: ServerId,
    pub config: ServerConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerUpdated {
    pub project_id: ProjectId,
    pub server_id: ServerId,
    pub config: ServerConfig,
    /// Names of the fields of [`ServerConfig`] that changed, in snake_case.
    pub changed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerDeleted {
    pub project_id: ProjectId,
    pub server_id: ServerId,
}

/// How a server is reached, as registered. Secrets are sealed; see [`SealedSecret`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerConfig {
    pub name: String,
    pub description: Option<String>,
    pub transport: Transport,
    /// Absolute http(s) URL; present for `http` and `sse`.
    pub url: Option<String>,
    pub connection: ConnectionType,
    /// Program to start; present for `stdio`.
    pub command: Option<String>,
    pub args: Option<String>,
    /// Environment of a stdio server; values are secrets.
    pub env: BTreeMap<String, SealedSecret>,
    pub custom_headers: Vec<CustomHeader>,
    pub oauth_client_id: Option<String>,
    pub oauth_client_secret: Option<SealedSecret>,
    pub oauth_scope: Option<String>,
    pub proxy_url: Option<String>,
    pub proxy_auth_token: Option<SealedSecret>,
    pub proxy_auth_header: String,
    pub request_timeout_ms: u64,
    pub max_total_timeout_ms: u64,
    /// Composio: the auth configs a user must hold an ACTIVE connected account for before an
    /// instance of this server is created. (Absent in events written before Composio support:
    /// none.)
    #[serde(default)]
    pub auth_config_ids: Vec<String>,
    /// Composio: tool slugs the server exposes; empty means all tools of its toolkits.
    #[serde(default)]
    pub allowed_tools: Vec<String>,
    /// Composio: toolkit slugs.
    #[serde(default)]
    pub toolkits: Vec<String>,
    /// Composio: toolkits that need no auth.
    #[serde(default)]
    pub no_auth_apps: Vec<String>,
    #[serde(default)]
    pub managed_auth_via_composio: bool,
}

/// A header sent with every request to the server; its value is a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomHeader {
    pub name: String,
    pub value: SealedSecret,
    pub enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Stdio,
    /// Streamable HTTP.
    Http,
    Sse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionType {
    /// Clients connect to the server themselves.
    Direct,
    /// Clients connect through a proxy.
    Proxy,
}

impl Transport {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::Http => "http",
            Self::Sse => "sse",
        }
    }
}

impl ConnectionType {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Proxy => "proxy",
        }
    }
}

impl ServerEvent {
    pub fn server_id(&self) -> ServerId {
        match self {
            Self::ServerRegistered(e) => e.server_id,
            Self::ServerUpdated(e) => e.server_id,
            Self::ServerDeleted(e) => e.server_id,
        }
    }

    pub fn project_id(&self) -> ProjectId {
        match self {
            Self::ServerRegistered(e) => e.project_id,
            Self::ServerUpdated(e) => e.project_id,
            Self::ServerDeleted(e) => e.project_id,
        }
    }
}

impl Event for ServerEvent {
    const AGGREGATE_TYPE: &'static str = "server";

    fn project_id(&self) -> ProjectId {
        ServerEvent::project_id(self)
    }

    fn event_type(&self) -> &'static str {
        match self {
            Self::ServerRegistered(_) => "server.registered",
            Self::ServerUpdated(_) => "server.updated",
            Self::ServerDeleted(_) => "server.deleted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_form_names_the_variant_and_snake_cases_enums() {
        let event = ServerEvent::ServerDeleted(ServerDeleted {
            project_id: ProjectId::random(),
            server_id: ServerId::random(),
        });
        let json = serde_json::to_value(&event).unwrap();
        assert!(json.get("ServerDeleted").is_some(), "{json}");
        assert_eq!(serde_json::to_value(Transport::Sse).unwrap(), "sse");
        assert_eq!(serde_json::from_value::<ServerEvent>(json).unwrap(), event);
    }
}
