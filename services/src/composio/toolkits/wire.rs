//! Composio's toolkit shapes: the list item of `GET /api/v3/toolkits` and the detail of
//! `GET /api/v3/toolkits/{slug}` (S1 `getToolkits`, `getToolkitsBySlug`, with the fields
//! composio-client 1.43 adds: `type`, `is_secret`, `composio_managed_auth`).

use poem_openapi::{Enum, Object};

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "ComposioToolkitType", rename_all = "lowercase")]
pub enum ToolkitType {
    /// A toolkit of the catalog (every toolkit here).
    Native,
    /// A project's own toolkit (none here yet).
    Custom,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioToolkitCategory")]
pub struct Category {
    pub id: String,
    pub name: String,
}

/// The list item's legacy id (a UUID derived from the slug).
#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioToolkitLegacyId")]
pub struct LegacyId {
    #[oai(rename = "toolkitId")]
    pub toolkit_id: String,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioToolkitMeta")]
pub struct Meta {
    pub created_at: String,
    pub updated_at: String,
    pub description: String,
    /// No logos are served here: empty.
    pub logo: String,
    pub app_url: Option<String>,
    pub categories: Vec<Category>,
    /// The catalog does not know its upstreams' tools: 0.
    pub triggers_count: i64,
    pub tools_count: i64,
    pub version: String,
}

/// One toolkit of the list.
#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioToolkitItem")]
pub struct ToolkitItem {
    pub slug: String,
    pub name: String,
    /// `OAUTH2`, `API_KEY` or `NO_AUTH`, as auth configs take them.
    pub auth_schemes: Vec<String>,
    pub composio_managed_auth_schemes: Vec<String>,
    /// Always false (deprecated at Composio).
    pub is_local_toolkit: bool,
    pub no_auth: bool,
    pub deprecated: LegacyId,
    pub meta: Meta,
    #[oai(rename = "type")]
    pub kind: ToolkitType,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioToolkitPage")]
pub struct ToolkitPage {
    pub items: Vec<ToolkitItem>,
    pub next_cursor: Option<String>,
    pub total_pages: i64,
    pub current_page: i64,
    pub total_items: i64,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioToolkitDetailCategory")]
pub struct DetailCategory {
    pub name: String,
    pub slug: String,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioToolkitDetailMeta")]
pub struct DetailMeta {
    pub created_at: String,
    pub updated_at: String,
    pub description: String,
    pub logo: String,
    pub app_url: Option<String>,
    pub categories: Vec<DetailCategory>,
    pub triggers_count: i64,
    pub tools_count: i64,
    pub version: String,
    pub available_versions: Vec<String>,
}

/// One input field of an auth scheme.
#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioAuthField")]
pub struct AuthField {
    pub name: String,
    #[oai(rename = "displayName")]
    pub display_name: String,
    /// Always `string`.
    #[oai(rename = "type")]
    pub kind: String,
    pub description: String,
    pub required: bool,
    /// Sealed at rest and shown as `REDACTED` afterwards.
    pub is_secret: bool,
    pub default: Option<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioAuthFieldGroup")]
pub struct FieldGroup {
    pub required: Vec<AuthField>,
    pub optional: Vec<AuthField>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioAuthFields")]
pub struct Fields {
    /// `credentials` of `POST /api/v3/auth_configs` (`use_custom_auth`).
    pub auth_config_creation: FieldGroup,
    /// `connection.state.val` of `POST /api/v3/connected_accounts`.
    pub connected_account_initiation: FieldGroup,
}

/// The catalog's OAuth endpoints (deprecated at Composio, kept for older clients).
#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioAuthProviderDetails")]
pub struct ProviderDetails {
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioAuthConfigDetail")]
pub struct AuthConfigDetail {
    pub mode: String,
    pub name: String,
    pub fields: Fields,
    pub deprecated_auth_provider_details: Option<ProviderDetails>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioManagedAuthScopes")]
pub struct Scopes {
    pub available: Vec<String>,
}

/// A scheme `use_composio_managed_auth` works with, and the scopes it asks for.
#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioManagedAuth")]
pub struct ManagedAuth {
    pub mode: String,
    pub scopes: Scopes,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioToolkitDeprecated")]
pub struct DetailLegacy {
    #[oai(rename = "toolkitId")]
    pub toolkit_id: String,
    #[oai(rename = "rawProxyInfoByAuthSchemes")]
    pub raw_proxy_info_by_auth_schemes: Vec<serde_json::Value>,
}

/// `GET /api/v3/toolkits/{slug}`.
#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioToolkitDetail")]
pub struct ToolkitDetail {
    pub slug: String,
    pub name: String,
    pub enabled: bool,
    pub composio_managed_auth_schemes: Vec<String>,
    pub composio_managed_auth: Vec<ManagedAuth>,
    pub is_local_toolkit: bool,
    pub auth_config_details: Vec<AuthConfigDetail>,
    pub meta: DetailMeta,
    pub deprecated: DetailLegacy,
    #[oai(rename = "type")]
    pub kind: ToolkitType,
}
