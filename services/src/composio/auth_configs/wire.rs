//! Composio's auth config shapes. Create takes `use_composio_managed_auth` or
//! `use_custom_auth`; reads and updates say `default` or `custom`.

use crate::http::secret_input::{SecretInput, SecretJson};
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Enum, Object};
use serde::Deserialize;
use serde_json::Value;

#[derive(Object, Deserialize, Debug, Clone)]
#[oai(rename = "ComposioToolkitRef")]
pub struct ToolkitRef {
    pub slug: String,
}

#[derive(Enum, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "ComposioAuthConfigCreateType", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum CreateType {
    UseComposioManagedAuth,
    UseCustomAuth,
}

#[derive(Object, Deserialize, Debug, Clone)]
#[oai(rename = "ComposioProxyConfigInput")]
pub struct ProxyConfigInput {
    pub proxy_url: String,
    pub proxy_auth_key: Option<SecretInput>,
}

#[derive(Object, Deserialize, Debug, Clone, Default)]
#[oai(rename = "ComposioToolAccessConfig")]
pub struct ToolAccessConfig {
    pub tools_for_connected_account_creation: Option<Vec<String>>,
    pub tools_available_for_execution: Option<Vec<String>>,
}

/// The `auth_config` of a create.
#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioAuthConfigInput")]
pub struct AuthConfigInput {
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: CreateType,
    /// Required for custom auth: OAUTH2, API_KEY, BEARER_TOKEN, BASIC, NO_AUTH, ...
    #[oai(rename = "authScheme")]
    #[serde(rename = "authScheme", alias = "auth_scheme")]
    pub auth_scheme: Option<String>,
    pub name: Option<String>,
    /// `client_id`, `scopes`, endpoints and the like are kept in clear; every other field
    /// (`client_secret`, ...) is encrypted and shown as `REDACTED`.
    pub credentials: Option<SecretJson>,
    pub proxy_config: Option<ProxyConfigInput>,
    pub tool_access_config: Option<ToolAccessConfig>,
    pub restrict_to_following_tools: Option<Vec<String>>,
}

/// `POST /api/v3/auth_configs`.
#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioCreateAuthConfigRequest")]
pub struct CreateAuthConfigRequest {
    pub toolkit: ToolkitRef,
    pub auth_config: Option<AuthConfigInput>,
}

#[derive(Enum, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "ComposioAuthConfigType", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum AuthConfigType {
    Default,
    Custom,
}

/// `PATCH /api/v3/auth_configs/{id}`: only the fields sent change; `credentials` is replaced
/// whole.
#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioUpdateAuthConfigRequest")]
pub struct UpdateAuthConfigRequest {
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: AuthConfigType,
    pub name: Option<String>,
    pub credentials: Option<SecretJson>,
    #[serde(default)]
    pub proxy_config: MaybeUndefined<ProxyConfigInput>,
    pub tool_access_config: Option<ToolAccessConfig>,
    pub restrict_to_following_tools: Option<Vec<String>>,
    /// `default` only: the scopes to ask for (a list, or one comma-separated string).
    pub scopes: Option<Value>,
    pub user_scopes: Option<Value>,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioCreatedAuthConfigDetail")]
pub struct CreatedAuthConfigDetail {
    pub id: String,
    pub auth_scheme: String,
    pub is_composio_managed: bool,
    pub restrict_to_following_tools: Vec<String>,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioAuthConfigCreated")]
pub struct AuthConfigCreated {
    pub toolkit: ToolkitRef,
    pub auth_config: CreatedAuthConfigDetail,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioToolkit")]
pub struct Toolkit {
    pub slug: String,
    /// No logos are served here: empty.
    pub logo: String,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioProxyConfig")]
pub struct ProxyConfig {
    pub proxy_url: String,
    /// `REDACTED` when set.
    pub proxy_auth_key: Option<String>,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioToolAccess")]
pub struct ToolAccess {
    pub tools_for_connected_account_creation: Vec<String>,
    pub tools_available_for_execution: Vec<String>,
}

/// An auth config as read (list item and `GET`).
#[derive(Object, Debug)]
#[oai(rename = "ComposioAuthConfig")]
pub struct AuthConfig {
    pub id: String,
    /// A UUID derived from the id (Composio keeps one for backward compatibility).
    pub uuid: String,
    #[oai(rename = "type")]
    pub kind: AuthConfigType,
    pub toolkit: Toolkit,
    pub name: String,
    pub auth_scheme: String,
    pub is_composio_managed: bool,
    /// Public fields in clear; secret ones `REDACTED`.
    pub credentials: Value,
    pub proxy_config: Option<ProxyConfig>,
    /// `ENABLED` or `DISABLED`.
    pub status: String,
    pub created_at: String,
    pub last_updated_at: String,
    /// ACTIVE connected accounts using it.
    pub no_of_connections: i64,
    pub expected_input_fields: Vec<Value>,
    pub tool_access_config: ToolAccess,
    pub restrict_to_following_tools: Vec<String>,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioAuthConfigPage")]
pub struct AuthConfigPage {
    pub items: Vec<AuthConfig>,
    pub next_cursor: Option<String>,
    pub total_pages: i64,
    pub current_page: i64,
    pub total_items: i64,
}
