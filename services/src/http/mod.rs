//! HTTP plumbing shared by every surface: request context, JSON bodies with precise errors,
//! secret inputs, authentication, and `Problem`, the surface-independent error each surface
//! renders in its own format.

pub mod body;
pub mod caller;
pub mod context;
pub mod problem;
pub mod secret_input;
mod surface;

use crate::audit::{Audit, AuditApi};
use crate::auth_config::AuthConfigs;
use crate::composio::{self, AuthConfigsApi, ConnectedAccountsApi, McpInstancesApi, McpServersApi};
use crate::connected_account::ConnectedAccounts;
use crate::gaia::GaiaApi;
use crate::health::{Health, HealthApi};
use crate::instance::{Instances, ServerInstances};
use crate::klavis::{KlavisApi, KlavisOAuthApi};
use crate::oauth::{OAuthApps, OAuthFlow};
use crate::project::Projects;
use crate::server::Servers;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use poem_openapi::OpenApiService;
use std::sync::Arc;

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub projects: Projects,
    pub servers: Servers,
    pub instances: Instances,
    pub server_instances: ServerInstances,
    pub oauth_apps: OAuthApps,
    pub oauth_flow: OAuthFlow,
    pub auth_configs: AuthConfigs,
    pub connected_accounts: ConnectedAccounts,
    pub health: Health,
    pub audit: Audit,
    pub gateway: crate::gateway::Gateway,
    /// The base of the URLs handed out, without a trailing slash.
    pub public_url: String,
    pub oauth_allow_loopback_http: bool,
}

/// The whole HTTP application: every surface, `/openapi.json`, `/docs`, `/health`, `/ready`.
pub fn app(state: AppState) -> impl Endpoint {
    let klavis = KlavisApi::new(
        state.instances.clone(),
        state.oauth_apps.clone(),
        state.public_url.clone(),
        state.oauth_allow_loopback_http,
    );
    let api = OpenApiService::new(
        (
            GaiaApi::new(state.servers.clone()),
            klavis,
            KlavisOAuthApi::new(state.oauth_flow.clone()),
            composio_apis(&state),
            HealthApi::new(state.health.clone()),
            AuditApi::new(state.audit.clone()),
        ),
        "MCP Provisioner",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Provisions MCP server instances. Speaks the wire formats of Klavis AI's instance API, Composio's v3 and \
         v3.1 MCP, auth config and connected account APIs (`/api/v3.1/...` is served by the `/api/v3/...` \
         routes), and GAIA AI's MCP server registry.",
    );
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    Route::new()
        // The gateway answers in JSON-RPC, outside the surfaces' error formats.
        .at("/mcp", crate::gateway::endpoint(state.gateway.clone()))
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .nest("/", api)
        .around(surface::render_errors)
        // Shared, not cloned per request.
        .data(Arc::new(state))
        .around(context::with_request_context)
        .around(without_trailing_slash)
        .around(composio::version_alias)
}

/// The Composio surface's APIs, over the shared services.
fn composio_apis(state: &AppState) -> (AuthConfigsApi, ConnectedAccountsApi, McpServersApi, McpInstancesApi) {
    (
        AuthConfigsApi::new(state.auth_configs.clone(), state.oauth_allow_loopback_http),
        ConnectedAccountsApi::new(state.connected_accounts.clone(), state.oauth_flow.clone()),
        McpServersApi::new(
            state.servers.clone(),
            state.auth_configs.clone(),
            state.connected_accounts.clone(),
            state.public_url.clone(),
        ),
        McpInstancesApi::new(state.server_instances.clone()),
    )
}

/// `/user/` is `/user`: Klavis's SDK lists users at `user/` (FastAPI redirects either form to
/// the other), while routes here are registered without the slash.
async fn without_trailing_slash<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let rewritten = match req.uri().query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = rewritten.parse() {
            *req.uri_mut() = uri;
        }
    }
    next.call(req).await.map(IntoResponse::into_response)
}
