//! Auth configs (Composio): how a project's users authenticate to a toolkit: the scheme, and
//! for custom auth the project's own credentials (an OAuth client, a proxy).

use crate::{Event, ProjectId, SealedSecret};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Aggregate type `auth_config`, id `ac_` plus 12 characters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AuthConfigEvent {
    AuthConfigCreated(AuthConfigCreated),
    /// Settings changed; `changed` names which.
    AuthConfigUpdated(AuthConfigUpdated),
    /// Enabled or disabled: a disabled auth config refuses new connections.
    AuthConfigStatusChanged(AuthConfigStatusChanged),
    /// Deleted (soft: the history stays). Its credentials' data key is destroyed.
    AuthConfigDeleted(AuthConfigDeleted),
}

/// An auth config's settings. Credentials are split: the fields that are not secret (an OAuth
/// client id, scopes, endpoints) in clear, the rest sealed as one JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthConfigSettings {
    pub name: String,
    /// The toolkit's slug (`gmail`, `github`).
    pub toolkit: String,
    /// Composio-managed auth (this service: the project's white-label OAuth app) or custom.
    pub managed: bool,
    /// `OAUTH2`, `API_KEY`, `BEARER_TOKEN`, `BASIC`, `NO_AUTH`, ...
    pub auth_scheme: String,
    pub public_credentials: Map<String, Value>,
    /// The names of the sealed credential fields (`client_secret`).
    pub secret_fields: Vec<String>,
    pub secret_credentials: Option<SealedSecret>,
    pub proxy_url: Option<String>,
    pub proxy_auth_key: Option<SealedSecret>,
    pub restrict_to_following_tools: Vec<String>,
    pub tools_for_connected_account_creation: Vec<String>,
    pub tools_available_for_execution: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthConfigCreated {
    pub project_id: ProjectId,
    pub auth_config_id: String,
    pub settings: AuthConfigSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthConfigUpdated {
    pub project_id: ProjectId,
    pub auth_config_id: String,
    pub settings: AuthConfigSettings,
    pub changed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthConfigStatusChanged {
    pub project_id: ProjectId,
    pub auth_config_id: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthConfigDeleted {
    pub project_id: ProjectId,
    pub auth_config_id: String,
}

impl AuthConfigEvent {
    pub fn auth_config_id(&self) -> &str {
        match self {
            Self::AuthConfigCreated(e) => &e.auth_config_id,
            Self::AuthConfigUpdated(e) => &e.auth_config_id,
            Self::AuthConfigStatusChanged(e) => &e.auth_config_id,
            Self::AuthConfigDeleted(e) => &e.auth_config_id,
        }
    }
}

impl Event for AuthConfigEvent {
    const AGGREGATE_TYPE: &'static str = "auth_config";

    fn project_id(&self) -> ProjectId {
        match self {
            Self::AuthConfigCreated(e) => e.project_id,
            Self::AuthConfigUpdated(e) => e.project_id,
            Self::AuthConfigStatusChanged(e) => e.project_id,
            Self::AuthConfigDeleted(e) => e.project_id,
        }
    }

    fn event_type(&self) -> &'static str {
        match self {
            Self::AuthConfigCreated(_) => "auth_config.created",
            Self::AuthConfigUpdated(_) => "auth_config.updated",
            Self::AuthConfigStatusChanged(_) => "auth_config.status_changed",
            Self::AuthConfigDeleted(_) => "auth_config.deleted",
        }
    }
}
