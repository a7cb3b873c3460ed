//! Why the gateway did not forward (or could not relay) a message, and how that is answered:
//! always a JSON-RPC error object in a JSON body, never an HTML page.
//!
//! A request (a message with an id) gets its error as the answer to that id, with HTTP 200 so
//! that an MCP client surfaces the message to its user; what concerns the URL itself (an
//! unknown instance or session) is a 404, as the transport requires. Anything else (a
//! notification, GET, DELETE) gets the error with a status saying what went wrong.

use crate::rate_limit::Limited;
use poem::http::StatusCode;
use poem::web::Json;
use poem::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GatewayError {
    /// Unknown, deleted or malformed instance id (whose project does not matter: the id is
    /// the credential, so a foreign one is simply unknown).
    #[error("no MCP server instance at this URL: it does not exist or was deleted")]
    InstanceNotFound,
    /// A Composio (or registered) server that does not exist, was deleted, or is not of the
    /// key's project.
    #[error("no MCP server at this URL: it does not exist, was deleted, or is not of this API key's project")]
    ServerNotFound,
    /// A `user_id` with no connected account for the server's auth config.
    #[error("no user `{0}` on this MCP server: they have no connected account for its auth config")]
    UserNotFound(String),
    /// A `connected_account_id` that is not an account of the server's auth config.
    #[error("no connected account `{0}` for this MCP server's auth config")]
    AccountNotFound(String),
    /// Over the rate of the key, or of the client's address at a capability URL: 429 with
    /// `Retry-After` and the `RateLimit` headers, for a request too (the transport's answer).
    #[error("{}", .0.message())]
    RateLimited(Limited),
    /// No key, or one that is not a live key of any project.
    #[error("this MCP URL needs the project's API key in the x-api-key (or x-user-api-key) header")]
    ApiKeyRequired,
    #[error(
        "`{user}` has no ACTIVE connected account for `{toolkit}` on this MCP server: connect one for auth config \
         {auth_config_id} (POST /api/v3/connected_accounts or /api/v3/connected_accounts/link), then retry"
    )]
    NotConnected { user: String, toolkit: String, auth_config_id: String },
    #[error(
        "the MCP server `{server_name}` has {auth_configs} auth configs over {toolkits} toolkits; the gateway serves \
         servers whose every toolkit has an auth config (no-auth apps are not served yet)"
    )]
    MultiToolkit { server_name: String, auth_configs: usize, toolkits: usize },
    /// A GAIA URL without a live key of any project where the GAIA API reads it.
    #[error("this MCP URL needs the project's API key, as `Authorization: Bearer <key>` or in the gaia-api-key header")]
    GaiaKeyRequired,
    #[error("`{server_name}` is a stdio server: the gateway does not run stdio servers, so it has no gateway URL")]
    StdioNotRun { server_name: String },
    #[error(
        "`{server_name}` is a Composio MCP server: connect to it at its Composio URL (/v3/mcp/{server_id}?user_id=…)"
    )]
    NotGaiaServer { server_name: String, server_id: String },
    /// A registered URL outside the address policy (SSRF): the reason names the address class.
    #[error(
        "the gateway does not connect to the URL of `{server_name}`: {reason} (the operator can allow private \
         upstreams with PROVISIONER_GATEWAY_ALLOW_PRIVATE=true)"
    )]
    UpstreamRefused { server_name: String, reason: String },
    /// A session id this service did not issue for this instance, or one tampered with.
    #[error("session not found: start a new session (initialize)")]
    SessionNotFound,
    #[error(
        "no upstream MCP server is bound to `{server_name}`: the operator must add a [{binding}] table with its url \
         to the upstreams file (PROVISIONER_UPSTREAMS)"
    )]
    Unbound { server_name: String, binding: String },
    /// An instance of a Composio MCP server, named by its id at the Klavis URL.
    #[error(
        "`{server_name}` is a Composio MCP server: its users connect at its Composio URL \
         (/v3/mcp/{server_id}?user_id=…), not by instance id"
    )]
    NotServed { server_name: String, server_id: String },
    #[error("{}", not_authenticated(server_name, oauth_url.as_deref()))]
    NotAuthenticated { server_name: String, oauth_url: Option<String> },
    #[error("the credential stored for this instance has no token or api_key to send upstream")]
    CredentialUnusable,
    /// The instance's OAuth tokens expired and could not be refreshed (the credential is now
    /// EXPIRED): the user must authorize again.
    #[error("{}", reauthenticate(server_name, oauth_url.as_deref(), reason))]
    CredentialExpired { server_name: String, oauth_url: Option<String>, reason: String },
    /// A connected account's OAuth tokens expired and could not be refreshed (it is EXPIRED).
    #[error(
        "the connected account {account_id} for `{toolkit}` has expired: its OAuth token could not be refreshed \
         ({reason}). The user must re-authenticate: connect the account again for auth config {auth_config_id} \
         (POST /api/v3/connected_accounts/link), then retry"
    )]
    AccountExpired { account_id: String, toolkit: String, auth_config_id: String, reason: String },
    /// The OAuth token has expired and the provider could not refresh it right now; nothing
    /// was marked expired, a later call tries again.
    #[error("the OAuth token expired and could not be refreshed right now ({problem}); try again shortly")]
    RefreshUnavailable { problem: String },
    /// The same answer as for a tool that does not exist: a hidden tool is not there.
    #[error("Unknown tool: {0}")]
    HiddenTool(String),
    #[error("parse error: the body is not JSON")]
    ParseError,
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("the request body exceeds {0} bytes")]
    TooLarge(usize),
    /// A body trickled in slower than [`super::edge::BODY_READ_TIMEOUT`] allows: 408.
    #[error("the request body did not arrive within {} s", .0.as_secs())]
    BodyTimeout(std::time::Duration),
    #[error("the upstream MCP server of `{server_name}` {problem}")]
    Upstream { server_name: String, problem: String },
    /// `Mcp-Method` / `Mcp-Name` disagree with the body (2026-07-28): 400, -32020.
    #[error("header mismatch: {0}")]
    HeaderMismatch(String),
    /// A browser page of an origin the gateway does not serve (DNS rebinding, cross-site use
    /// of a capability URL): 403, with no id.
    #[error("requests from the origin `{0}` are not accepted (PROVISIONER_GATEWAY_ALLOWED_ORIGINS)")]
    OriginNotAllowed(String),
    #[error("internal error")]
    Internal,
    /// The call could not be put on the record, so its answer is withheld (the upstream may
    /// have run it).
    #[error("this call could not be recorded ({0}), so its answer is withheld: retry later")]
    Unrecorded(String),
}

fn not_authenticated(server_name: &str, oauth_url: Option<&str>) -> String {
    match oauth_url {
        Some(url) => format!("this `{server_name}` instance is not authenticated yet: authorize it at {url}"),
        None => format!(
            "this `{server_name}` instance is not authenticated yet: set its credential (POST /mcp-server/instance/set-auth)"
        ),
    }
}

fn reauthenticate(server_name: &str, oauth_url: Option<&str>, reason: &str) -> String {
    let how = match oauth_url {
        Some(url) => format!("re-authenticate at {url}"),
        None => "re-authenticate (POST /mcp-server/instance/set-auth)".to_owned(),
    };
    format!(
        "the credential of this `{server_name}` instance has expired: its OAuth token could not be refreshed \
         ({reason}); {how}"
    )
}

impl GatewayError {
    /// JSON-RPC codes: the spec's own where one fits, else in the server range.
    pub fn code(&self) -> i64 {
        match self {
            Self::InstanceNotFound
            | Self::SessionNotFound
            | Self::ServerNotFound
            | Self::UserNotFound(_)
            | Self::AccountNotFound(_) => -32001,
            Self::Unbound { .. }
            | Self::NotServed { .. }
            | Self::MultiToolkit { .. }
            | Self::StdioNotRun { .. }
            | Self::NotGaiaServer { .. }
            | Self::UpstreamRefused { .. } => -32002,
            Self::NotAuthenticated { .. }
            | Self::CredentialUnusable
            | Self::NotConnected { .. }
            | Self::CredentialExpired { .. }
            | Self::AccountExpired { .. }
            | Self::RefreshUnavailable { .. } => -32003,
            Self::ApiKeyRequired | Self::GaiaKeyRequired => -32005,
            Self::Upstream { .. } => -32004,
            Self::HiddenTool(_) => -32602,
            Self::ParseError => -32700,
            Self::InvalidRequest(_) | Self::TooLarge(_) | Self::BodyTimeout(_) | Self::OriginNotAllowed(_) => -32600,
            Self::RateLimited(_) => -32029,
            Self::HeaderMismatch(_) => -32020,
            Self::Internal | Self::Unrecorded(_) => -32603,
        }
    }

    /// The HTTP status when the message is not a request (or could not be read).
    pub(super) fn status(&self) -> StatusCode {
        match self {
            Self::InstanceNotFound
            | Self::SessionNotFound
            | Self::ServerNotFound
            | Self::UserNotFound(_)
            | Self::AccountNotFound(_) => StatusCode::NOT_FOUND,
            Self::ApiKeyRequired | Self::GaiaKeyRequired => StatusCode::UNAUTHORIZED,
            Self::Unbound { .. }
            | Self::NotServed { .. }
            | Self::MultiToolkit { .. }
            | Self::StdioNotRun { .. }
            | Self::NotGaiaServer { .. } => StatusCode::NOT_IMPLEMENTED,
            Self::UpstreamRefused { .. }
            | Self::NotAuthenticated { .. }
            | Self::CredentialUnusable
            | Self::NotConnected { .. }
            | Self::CredentialExpired { .. }
            | Self::AccountExpired { .. }
            | Self::OriginNotAllowed(_) => StatusCode::FORBIDDEN,
            Self::RefreshUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::HiddenTool(_) | Self::ParseError | Self::InvalidRequest(_) | Self::HeaderMismatch(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Upstream { .. } => StatusCode::BAD_GATEWAY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unrecorded(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Whether the error is about the URL, its key or the transport, not the message: its
    /// own status (404, 401, 403, 400) even for a request, as the transport requires.
    fn keeps_status(&self) -> bool {
        self.is_about_the_url()
            || matches!(self, Self::HeaderMismatch(_) | Self::OriginNotAllowed(_) | Self::RateLimited(_))
    }

    /// Whether the URL (or its key) no longer names anything: an open stream of it ends.
    pub fn is_about_the_url(&self) -> bool {
        matches!(
            self,
            Self::InstanceNotFound
                | Self::SessionNotFound
                | Self::ServerNotFound
                | Self::UserNotFound(_)
                | Self::AccountNotFound(_)
                | Self::ApiKeyRequired
                | Self::GaiaKeyRequired
        )
    }

    fn data(&self) -> Option<Value> {
        match self {
            Self::NotAuthenticated { oauth_url: Some(url), .. } => Some(json!({ "oauthUrl": url })),
            Self::CredentialExpired { oauth_url, .. } => Some(json!({ "reauthenticate": true, "oauthUrl": oauth_url })),
            Self::AccountExpired { account_id, toolkit, auth_config_id, .. } => Some(json!({
                "reauthenticate": true, "connectedAccountId": account_id, "toolkit": toolkit,
                "authConfigId": auth_config_id,
            })),
            Self::RefreshUnavailable { .. } => Some(json!({ "retryable": true })),
            Self::Unbound { binding, .. } => Some(json!({ "missingBinding": binding })),
            Self::NotConnected { toolkit, auth_config_id, .. } => {
                Some(json!({ "toolkit": toolkit, "authConfigId": auth_config_id }))
            }
            Self::RateLimited(limited) => Some(json!({ "retryAfterSeconds": limited.retry_after_secs().max(1) })),
            _ => None,
        }
    }

    /// The error object (`{"code","message","data"}`).
    pub fn object(&self) -> Value {
        let mut object = json!({ "code": self.code(), "message": self.to_string() });
        if let Some(data) = self.data() {
            object["data"] = data;
        }
        object
    }

    /// The JSON-RPC message answering `id` (null when there is none).
    pub fn message(&self, id: Option<&Value>) -> Value {
        json!({ "jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": self.object() })
    }

    /// The HTTP answer to a message with this `id` (none: not a request).
    pub fn respond(&self, id: Option<&Value>) -> Response {
        let status = if id.is_some() && !self.keeps_status() { StatusCode::OK } else { self.status() };
        let mut response = Json(self.message(id)).with_status(status).into_response();
        if let Self::RateLimited(limited) = self {
            response.headers_mut().extend(limited.headers());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_gets_its_error_with_200_except_for_a_missing_url() {
        let id = json!(3);
        assert_eq!(GatewayError::Internal.respond(Some(&id)).status(), 200);
        assert_eq!(GatewayError::Internal.respond(None).status(), 500);
        assert_eq!(GatewayError::InstanceNotFound.respond(Some(&id)).status(), 404);
        assert_eq!(GatewayError::SessionNotFound.respond(None).status(), 404);
        let message =
            GatewayError::NotAuthenticated { server_name: "Gmail".into(), oauth_url: Some("http://o".into()) }
                .message(Some(&id));
        assert_eq!(message["id"], 3);
        assert_eq!(message["error"]["data"]["oauthUrl"], "http://o");
        assert!(message["error"]["message"].as_str().unwrap().contains("http://o"));
    }
}
