//! Composio's connected account shapes.

use crate::http::secret_input::{SecretFieldsPatch, SecretJson};
use poem_openapi::Object;
use serde::Deserialize;
use serde_json::Value;

#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioAuthConfigRef")]
pub struct AuthConfigRef {
    pub id: String,
}

/// The credential of a direct connection: `{authScheme, val}`.
#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioConnectionStateInput")]
pub struct ConnectionStateInput {
    #[oai(rename = "authScheme")]
    #[serde(rename = "authScheme", alias = "auth_scheme")]
    pub auth_scheme: String,
    /// API_KEY: `api_key` (or `generic_api_key`); BEARER_TOKEN: `token`; BASIC: `username`
    /// and `password`. Encrypted; never returned.
    pub val: SecretJson,
}

#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioConnectionInput")]
pub struct ConnectionInput {
    pub state: Option<ConnectionStateInput>,
    /// Defaults to `default`.
    pub user_id: Option<String>,
    /// Where the browser goes when an OAuth connection ends.
    pub callback_url: Option<String>,
    /// Deprecated name of `callback_url`.
    pub redirect_uri: Option<String>,
    /// A name for the account (v3.1), unique per user and toolkit within the project; at most
    /// 128 characters, one line. Empty: none.
    pub alias: Option<String>,
}

/// `POST /api/v3/connected_accounts`.
#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioCreateConnectedAccountRequest")]
pub struct CreateAccountRequest {
    pub auth_config: AuthConfigRef,
    pub connection: ConnectionInput,
    pub validate_credentials: Option<bool>,
}

/// `POST /api/v3/connected_accounts/link`.
#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioCreateLinkRequest")]
pub struct LinkRequest {
    pub auth_config_id: String,
    pub user_id: String,
    pub callback_url: Option<String>,
    /// As `connection.alias` of a create (v3.1).
    pub alias: Option<String>,
}

/// `connection.state` of an update: the account's scheme and the credential fields to change.
#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioUpdateConnectionStateInput", deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct UpdateStateInput {
    /// BEARER_TOKEN, API_KEY, BASIC, BASIC_WITH_JWT, GOOGLE_SERVICE_ACCOUNT or SERVICE_ACCOUNT:
    /// the account's own scheme.
    #[oai(rename = "authScheme")]
    #[serde(rename = "authScheme", alias = "auth_scheme")]
    pub auth_scheme: String,
    pub val: SecretFieldsPatch,
}

#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioUpdateConnectionInput", deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnectionInput {
    pub state: UpdateStateInput,
}

/// `PATCH /api/v3.1/connected_accounts/{id}`: only the fields sent change.
#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioUpdateConnectedAccountRequest", deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccountRequest {
    /// The account's new alias, unique per user and toolkit within the project; `""` clears it.
    pub alias: Option<String>,
    /// Credential fields to set (a string) or remove (`null`); the others stay.
    pub connection: Option<UpdateConnectionInput>,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioConnectedAccountUpdated")]
pub struct AccountUpdated {
    pub id: String,
    /// The account's status after the update (an update does not change it).
    pub status: String,
    pub success: bool,
}

/// `PATCH /api/v3/connected_accounts/{id}/status`.
#[derive(Object, Deserialize, Debug)]
#[oai(rename = "ComposioAccountStatusRequest")]
pub struct StatusRequest {
    pub enabled: bool,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioConnectedAccountCreated")]
pub struct AccountCreated {
    pub id: String,
    /// `{authScheme, val: {status, redirectUrl?}}`.
    #[oai(rename = "connectionData")]
    pub connection_data: Value,
    pub status: String,
    /// Where to send the user, for OAuth.
    pub redirect_url: Option<String>,
    pub redirect_uri: Option<String>,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioLinkCreated")]
pub struct LinkCreated {
    pub link_token: String,
    pub redirect_url: String,
    pub expires_at: String,
    pub connected_account_id: String,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioToolkitSlug")]
pub struct ToolkitSlug {
    pub slug: String,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioAccountAuthConfig")]
pub struct AccountAuthConfig {
    pub id: String,
    pub auth_scheme: String,
    pub is_composio_managed: bool,
    pub is_disabled: bool,
}

/// A connected account as read (list item and `GET`). Its credential is never returned.
#[derive(Object, Debug)]
#[oai(rename = "ComposioConnectedAccount")]
pub struct Account {
    pub id: String,
    pub toolkit: ToolkitSlug,
    pub auth_config: AccountAuthConfig,
    pub user_id: String,
    /// INITIALIZING, INITIATED, ACTIVE, FAILED, EXPIRED, INACTIVE or REVOKED.
    pub status: String,
    pub status_reason: Option<String>,
    pub is_disabled: bool,
    /// `{authScheme, val: {status}}`.
    pub state: Value,
    pub data: Value,
    pub params: Value,
    pub created_at: String,
    pub updated_at: String,
    /// The account's alias (v3.1), if it has one.
    pub alias: Option<String>,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioConnectedAccountPage")]
pub struct AccountPage {
    pub items: Vec<Account>,
    pub next_cursor: Option<String>,
    pub total_pages: i64,
    pub current_page: i64,
    pub total_items: i64,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioSuccess")]
pub struct Success {
    pub success: bool,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioRevokedAccount")]
pub struct RevokedAccount {
    pub id: String,
    pub status: String,
}

#[derive(Object, Debug)]
#[oai(rename = "ComposioAccountRevoked")]
pub struct Revoked {
    /// Tokens revoked at the provider. Upstream revocation is not done here: always empty.
    pub revoked_tokens: Vec<String>,
    pub connected_account: RevokedAccount,
}
