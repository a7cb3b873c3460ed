//! GAIA AI's request and response shapes (camelCase), as its docs and product define them.
//! Each type derives both `Object` (for the OpenAPI document) and serde (for parsing by
//! `JsonBody`, which names the failing field).

use crate::http::secret_input::SecretInput;
use chrono::{DateTime, Utc};
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Enum, Object};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Enum, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "GaiaTransportType")]
pub enum TransportType {
    #[oai(rename = "stdio")]
    #[serde(rename = "stdio")]
    Stdio,
    #[oai(rename = "http")]
    #[serde(rename = "http")]
    Http,
    #[oai(rename = "sse")]
    #[serde(rename = "sse")]
    Sse,
    /// GAIA's code calls `http` this; it is accepted as `http`.
    #[oai(rename = "streamable-http")]
    #[serde(rename = "streamable-http")]
    StreamableHttp,
}

#[derive(Enum, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "GaiaConnectionType", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum ConnectionType {
    Direct,
    Proxy,
}

/// A custom header. GAIA's docs name it `{key, value}`, its code `{name, value, enabled}`;
/// both are accepted.
#[derive(Object, Deserialize, Debug, Clone)]
#[oai(rename = "GaiaCustomHeaderInput", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CustomHeaderInput {
    pub name: Option<String>,
    pub key: Option<String>,
    pub value: SecretInput,
    pub enabled: Option<bool>,
}

/// `POST /api/mcp/servers`.
#[derive(Object, Deserialize, Debug)]
#[oai(rename = "GaiaCreateServerRequest", rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct CreateServerRequest {
    /// Must be the project of the API key.
    pub project_id: String,
    /// 1 to 128 characters, unique within the project (ignoring case).
    pub name: String,
    pub transport_type: TransportType,
    pub description: Option<String>,
    /// Absolute http(s) URL; required for `http` and `sse`.
    pub url: Option<String>,
    /// Default `proxy`.
    pub connection_type: Option<ConnectionType>,
    /// Required for `stdio`.
    pub command: Option<String>,
    pub args: Option<String>,
    /// Values are secrets.
    pub env: Option<BTreeMap<String, SecretInput>>,
    pub custom_headers: Option<Vec<CustomHeaderInput>>,
    pub oauth_client_id: Option<String>,
    pub oauth_client_secret: Option<SecretInput>,
    pub oauth_scope: Option<String>,
    pub proxy_url: Option<String>,
    pub proxy_auth_token: Option<SecretInput>,
    /// Default `Authorization`.
    pub proxy_auth_header: Option<String>,
    /// Milliseconds, default 30000.
    pub request_timeout: Option<i64>,
    /// Milliseconds, default 60000 (never less than `requestTimeout`).
    pub max_total_timeout: Option<i64>,
}

/// `PATCH /api/mcp/servers/{id}`: absent fields stay, `null` clears an optional field.
#[derive(Object, Deserialize, Debug, Default)]
#[oai(rename = "GaiaUpdateServerRequest", rename_all = "camelCase")]
#[serde(rename_all = "camelCase", default)]
pub struct UpdateServerRequest {
    pub name: Option<String>,
    pub transport_type: Option<TransportType>,
    pub description: MaybeUndefined<String>,
    pub url: MaybeUndefined<String>,
    pub connection_type: Option<ConnectionType>,
    pub command: MaybeUndefined<String>,
    pub args: MaybeUndefined<String>,
    pub env: MaybeUndefined<BTreeMap<String, SecretInput>>,
    pub custom_headers: MaybeUndefined<Vec<CustomHeaderInput>>,
    pub oauth_client_id: MaybeUndefined<String>,
    pub oauth_client_secret: MaybeUndefined<SecretInput>,
    pub oauth_scope: MaybeUndefined<String>,
    pub proxy_url: MaybeUndefined<String>,
    pub proxy_auth_token: MaybeUndefined<SecretInput>,
    pub proxy_auth_header: Option<String>,
    pub request_timeout: Option<i64>,
    pub max_total_timeout: Option<i64>,
}

/// A header as returned: its value masked.
#[derive(Object, Debug, Clone)]
#[oai(rename = "GaiaMaskedHeader", rename_all = "camelCase")]
pub struct MaskedHeader {
    pub name: String,
    /// Always `********`.
    pub value: String,
    pub enabled: bool,
}

/// A registered server. Secrets are never returned: each is masked (`********`) when set,
/// with a flag saying so.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct GaiaServer {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: Option<String>,
    pub transport_type: String,
    pub url: Option<String>,
    /// Where MCP clients connect to the server through this service (Streamable HTTP, the
    /// project's key as for this API): `{PUBLIC_URL}/api/mcp/servers/{id}/mcp`. None for
    /// `stdio` servers, which the gateway does not run.
    pub gateway_url: Option<String>,
    pub connection_type: String,
    pub command: Option<String>,
    pub args: Option<String>,
    /// Variable names with masked values.
    pub env: BTreeMap<String, String>,
    pub custom_headers: Vec<MaskedHeader>,
    pub oauth_client_id: Option<String>,
    pub oauth_client_secret: Option<String>,
    pub has_oauth_client_secret: bool,
    pub oauth_scope: Option<String>,
    pub proxy_url: Option<String>,
    pub proxy_auth_token: Option<String>,
    pub has_proxy_auth_token: bool,
    pub proxy_auth_header: String,
    pub request_timeout: i64,
    pub max_total_timeout: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Object, Debug)]
#[oai(rename = "GaiaServerCreated", rename_all = "camelCase")]
pub struct ServerCreated {
    pub success: bool,
    pub message: String,
    pub server_id: String,
    pub server: GaiaServer,
}

#[derive(Object, Debug)]
#[oai(rename = "GaiaServerFound")]
pub struct ServerFound {
    pub success: bool,
    pub server: GaiaServer,
}

#[derive(Object, Debug)]
#[oai(rename = "GaiaServerUpdated")]
pub struct ServerUpdated {
    pub success: bool,
    pub message: String,
    pub server: GaiaServer,
}

#[derive(Object, Debug)]
#[oai(rename = "GaiaServerList")]
pub struct ServerList {
    pub success: bool,
    pub servers: Vec<GaiaServer>,
}

#[derive(Object, Debug)]
#[oai(rename = "GaiaServerDeleted")]
pub struct ServerDeleted {
    pub success: bool,
    pub message: String,
}

/// Every error: a real HTTP status (never 200) and this body.
#[derive(Object, Debug, Clone)]
pub struct GaiaErrorBody {
    /// Always false.
    pub success: bool,
    /// What went wrong, naming the field when one is at fault.
    pub message: String,
    /// A stable code: `validation_error`, `bad_request`, `unauthorized`, `not_found`,
    /// `conflict`, `payload_too_large`, `unsupported_media_type`, `internal_error`, ...
    pub error: String,
    /// The field at fault (wire name, dotted path), when there is one.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
}
