//! The Composio surface: MCP servers, MCP instances, auth configs and connected accounts
//! (seeds `002_…` and `003_…`, `shared/reference/composio-api.md`) under `/api/v3` and
//! `/api/v3.1`, wire-compatible so that Composio's own client works by changing only the base
//! URL. Every handler parses, calls the shared services, and maps the result.

mod auth_configs;
mod connected_accounts;
mod error;
mod mcp;
mod paging;
mod toolkits;

pub use auth_configs::AuthConfigsApi;
pub use connected_accounts::ConnectedAccountsApi;
pub use error::{ComposioError, render};
pub use mcp::{McpInstancesApi, McpServersApi};
pub use toolkits::ToolkitsApi;

use crate::caller_extractor;
use crate::http::caller::KeySource;
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::Tags;

/// Where a Composio caller sends its key: `x-api-key`, or `x-user-api-key` as Composio's user
/// keys are sent.
pub const KEY_SOURCES: [KeySource; 2] = [KeySource::Header("x-api-key"), KeySource::Header("x-user-api-key")];

caller_extractor!(
    /// The caller of a Composio request (see [`KEY_SOURCES`]).
    ComposioCaller,
    [("ComposioApiKey", KEY_SOURCES[0]), ("ComposioUserApiKey", KEY_SOURCES[1])]
);

#[derive(Tags)]
#[allow(clippy::enum_variant_names)]
enum ComposioTags {
    /// Composio-compatible auth configs (`/api/v3` and `/api/v3.1`).
    ComposioAuthConfigs,
    /// Composio-compatible connected accounts.
    ComposioConnectedAccounts,
    /// Composio-compatible MCP servers and their per-user instances.
    ComposioMcp,
    /// Composio-compatible toolkits: the catalog, with each toolkit's auth schemes and fields.
    ComposioToolkits,
}

type Answer<T> = Result<T, ComposioError>;

/// `/api/v3.1/...` is served by the `/api/v3/...` routes: for these resources Composio's two
/// versions have the same shapes.
pub async fn version_alias<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    if let Some(rest) = req.uri().path().strip_prefix("/api/v3.1/") {
        let rewritten = match req.uri().query() {
            Some(query) => format!("/api/v3/{rest}?{query}"),
            None => format!("/api/v3/{rest}"),
        };
        if let Ok(uri) = rewritten.parse() {
            *req.uri_mut() = uri;
        }
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// Timestamps as Composio writes them: ISO 8601 with milliseconds, in UTC.
fn iso(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
