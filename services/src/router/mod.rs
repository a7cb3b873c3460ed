//! The whole HTTP application: every surface mounted over the shared services, with the
//! plumbing of `http` around them. Above the surfaces, so that `http` stays below them.

mod by_address;
mod surface;

use crate::audit::{Audit, AuditApi};
use crate::auth_config::AuthConfigs;
use crate::composio::{self, AuthConfigsApi, ConnectedAccountsApi, McpInstancesApi, McpServersApi, ToolkitsApi};
use crate::connected_account::ConnectedAccounts;
use crate::gaia::GaiaApi;
use crate::health::{Health, HealthApi};
use crate::http::{context, deadline, drain, route, uri, without_trailing_slash};
use crate::idempotency::{Idempotency, IdempotencyStore};
use crate::instance::{Instances, ServerInstances};
use crate::klavis::{KlavisApi, KlavisOAuthApi, KlavisToolsApi};
use crate::oauth::{OAuthApps, OAuthFlow};
use crate::project::{Projects, RedirectPolicy};
use crate::project_api::ProjectApi;
use crate::rate_limit::RateLimits;
use crate::server::Servers;
use poem::{Endpoint, EndpointExt, Route};
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
    pub redirects: RedirectPolicy,
    /// Counted per key when a key is resolved, per address on the routes without one.
    pub rate_limits: RateLimits,
    /// The base of the URLs handed out, without a trailing slash.
    pub public_url: String,
    pub oauth_allow_loopback_http: bool,
    /// The deadline of an API request (the gateway's URLs have their own timeouts).
    pub request_timeout: std::time::Duration,
    /// Where the responses of keyed POSTs are kept.
    pub idempotency: IdempotencyStore,
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
            GaiaApi::new(state.servers.clone(), state.public_url.clone()),
            klavis,
            KlavisToolsApi::new(state.instances.clone(), state.gateway.clone(), state.public_url.clone()),
            KlavisOAuthApi::new(state.oauth_flow.clone()),
            composio_apis(&state),
            HealthApi::new(state.health.clone()),
            AuditApi::new(state.audit.clone()),
            ProjectApi::new(state.projects.clone()),
        ),
        "MCP Provisioner",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Provisions MCP server instances. Speaks the wire formats of Klavis AI's instance API, Composio's v3 and \
         v3.1 MCP, auth config, connected account and toolkit APIs (`/api/v3.1/...` is served by the `/api/v3/...` \
         routes), and GAIA AI's MCP server registry. No string of a request holds NUL (Postgres cannot store it): \
         a body with one, in a value or a key, is refused, and so is a path or query with any control character.",
    );
    let generated = api.spec();
    let document = crate::spec::document(&generated);
    let allowed = Arc::new(crate::spec::allow::AllowedMethods::of(&document));
    let spec = crate::spec::endpoint(&document);
    let docs = crate::spec::docs(&api.swagger_ui_html(), &generated, &document);
    let templates: route::Templates = {
        let allowed = allowed.clone();
        Arc::new(move |path| allowed.template(path))
    };
    let operations: crate::idempotency::Operations = {
        let allowed = allowed.clone();
        Arc::new(move |method, path| allowed.answers(method, path))
    };
    let limits = state.rate_limits.clone();
    let request_timeout = state.request_timeout;
    let api = api.around(move |next, req| deadline::within(next, req, request_timeout));
    Route::new()
        // The gateway answers in JSON-RPC, outside the surfaces' error formats.
        .at("/mcp", crate::gateway::endpoint(state.gateway.clone()))
        .at("/v3/mcp/:server_id", crate::gateway::composio_endpoint(state.gateway.clone()))
        .at("/v3/mcp/:server_id/mcp", crate::gateway::composio_endpoint(state.gateway.clone()))
        .at("/api/mcp/servers/:server_id/mcp", crate::gateway::registered_endpoint(state.gateway.clone()))
        .at("/sse", crate::gateway::sse_endpoint(state.gateway.clone()))
        .at("/messages", crate::gateway::messages_endpoint(state.gateway.clone()))
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        // Every surface's POSTs take an Idempotency-Key; its answers are kept as rendered,
        // errors included, hence the surfaces' error rendering inside it.
        .nest(
            "/",
            api.around(surface::render_errors).with(Idempotency::new(
                state.idempotency.clone(),
                surface::FOR_IDEMPOTENCY,
                operations,
            )),
        )
        .around(move |next, req| route::remember(next, req, templates.clone()))
        .around(uri::refuse_control_characters)
        .around(surface::render_errors)
        .around(move |next, req| allowed.clone().add_to_405(next, req))
        .around(move |next, req| by_address::limit(next, req, limits.clone()))
        // Every extractor that checks an API key resolves it here, and counts it.
        .data(state.projects.clone())
        .data(state.rate_limits.clone())
        // Shared, not cloned per request.
        .data(Arc::new(state))
        .around(context::with_request_context)
        .around(without_trailing_slash)
        .around(composio::version_alias)
        // Outermost: whatever answered early, the unread body is dealt with here.
        .around(drain::unread_bodies)
}

/// The Composio surface's APIs, over the shared services.
fn composio_apis(
    state: &AppState,
) -> (AuthConfigsApi, ConnectedAccountsApi, McpServersApi, McpInstancesApi, ToolkitsApi) {
    (
        AuthConfigsApi::new(state.auth_configs.clone(), state.oauth_allow_loopback_http),
        ConnectedAccountsApi::new(state.connected_accounts.clone(), state.oauth_flow.clone(), state.redirects.clone()),
        McpServersApi::new(
            state.servers.clone(),
            state.auth_configs.clone(),
            state.connected_accounts.clone(),
            state.public_url.clone(),
        ),
        McpInstancesApi::new(state.server_instances.clone()),
        ToolkitsApi,
    )
}
