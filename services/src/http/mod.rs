//! HTTP plumbing shared by every surface: request context, JSON bodies with precise errors,
//! secret inputs, authentication, and `Problem`, the surface-independent error each surface
//! renders in its own format.

pub mod body;
pub mod caller;
pub mod context;
pub mod problem;
pub mod secret_input;
mod surface;

use crate::gaia::GaiaApi;
use crate::health::{Health, HealthApi};
use crate::project::Projects;
use crate::server::Servers;
use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub projects: Projects,
    pub servers: Servers,
    pub health: Health,
}

/// The whole HTTP application: every surface, `/openapi.json`, `/docs`, `/health`, `/ready`.
pub fn app(state: AppState) -> impl Endpoint {
    let api = OpenApiService::new(
        (GaiaApi::new(state.servers.clone()), HealthApi::new(state.health.clone())),
        "MCP Provisioner",
        env!("CARGO_PKG_VERSION"),
    )
    .description("Provisions MCP server instances. Speaks the wire formats of GAIA AI's MCP server registry.");
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    Route::new()
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .nest("/", api)
        .around(surface::render_errors)
        .data(state)
        .around(context::with_request_context)
}
