//! The GAIA AI surface: its MCP server registry under `/api/mcp/servers`
//! (seed `004_…`, `shared/reference/gaia-api.md`), over the shared server registry.
//!
//! Unlike GAIA itself: every read and write is scoped to the API key's project, secrets are
//! never returned, errors carry real statuses, and clients cannot write server status.

mod convert;
mod error;
mod wire;

pub use error::{GaiaError, render};

use crate::caller_extractor;
use crate::http::body::JsonBody;
use crate::http::caller::KeySource;
use crate::http::context::RequestContext;
use crate::http::problem::{Issue, Kind, Location, Problem};
use crate::project::Caller;
use crate::server::{ServerFilter, Servers};
use events::{ProjectId, ServerId};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi, Tags};
use wire::{
    CreateServerRequest, ServerCreated, ServerDeleted, ServerFound, ServerList, ServerUpdated, UpdateServerRequest,
};

/// Where a GAIA request carries its key: `Authorization: Bearer <key>` as GAIA documents it,
/// or the `gaia-api-key` header its product reads. The gateway reads a `gatewayUrl`'s key
/// from the same places.
pub const KEY_SOURCES: [KeySource; 2] = [KeySource::Bearer, KeySource::Header("gaia-api-key")];

caller_extractor!(
    /// The caller of a GAIA request (see [`KEY_SOURCES`]).
    GaiaCaller,
    [("GaiaBearer", KEY_SOURCES[0]), ("GaiaApiKey", KEY_SOURCES[1])]
);

#[derive(Tags)]
enum GaiaTags {
    /// GAIA AI compatible MCP server registry.
    GaiaMcpServers,
}

#[derive(ApiResponse)]
enum CreateResponse {
    /// Registered.
    #[oai(status = 201)]
    Created(Json<ServerCreated>),
}

pub struct GaiaApi {
    servers: Servers,
    /// The base of the `gatewayUrl`s handed out.
    public_url: String,
}

impl GaiaApi {
    pub fn new(servers: Servers, public_url: String) -> Self {
        Self { servers, public_url }
    }
}

type Answer<T> = Result<T, GaiaError>;

/// A project id given by the client must be the caller's own; any other (existing or not)
/// is not found, so that ids of other projects cannot be probed.
fn check_project(caller: &Caller, location: Location, raw: &str) -> Answer<()> {
    let project_id: ProjectId = raw
        .parse()
        .map_err(|_| Problem::invalid(location, Issue::WrongType, "is not a valid project id (expected a UUID)"))?;
    if project_id != caller.project_id {
        return Err(Problem::new(Kind::NotFound, "Project not found").into());
    }
    Ok(())
}

fn server_id(raw: &str) -> Answer<ServerId> {
    raw.parse().map_err(|_| {
        Problem::invalid(Location::Path("id".into()), Issue::WrongType, "is not a valid server id (expected a UUID)")
            .into()
    })
}

#[OpenApi(tag = "GaiaTags::GaiaMcpServers")]
impl GaiaApi {
    /// Register an MCP server in the caller's project.
    #[oai(path = "/api/mcp/servers", method = "post", operation_id = "gaiaCreateServer")]
    async fn create(
        &self,
        caller: GaiaCaller,
        req: &Request,
        body: JsonBody<CreateServerRequest>,
    ) -> Answer<CreateResponse> {
        let caller = caller.0;
        check_project(&caller, Location::Body(vec!["projectId".into()]), &body.0.project_id)?;
        let spec = convert::spec_of(body.0)?;
        let meta = RequestContext::of(req).metadata(caller.actor());
        let server = self.servers.register(&caller, ServerId::random(), spec, &meta).await?;
        Ok(CreateResponse::Created(Json(ServerCreated {
            success: true,
            message: "MCP server created successfully".into(),
            server_id: server.server_id.to_string(),
            server: convert::server_of(server, &self.public_url),
        })))
    }

    /// List the caller's MCP servers, oldest first.
    #[oai(path = "/api/mcp/servers", method = "get", operation_id = "gaiaListServers")]
    async fn list(
        &self,
        caller: GaiaCaller,
        #[oai(name = "projectId")] project_id: Query<Option<String>>,
    ) -> Answer<Json<ServerList>> {
        let caller = caller.0;
        if let Some(raw) = project_id.0.as_deref() {
            check_project(&caller, Location::Query("projectId".into()), raw)?;
        }
        let (servers, _) = self.servers.list(&caller, &ServerFilter::default()).await?;
        Ok(Json(ServerList {
            success: true,
            servers: servers.into_iter().map(|s| convert::server_of(s, &self.public_url)).collect(),
        }))
    }

    /// One MCP server of the caller's project.
    #[oai(path = "/api/mcp/servers/:id", method = "get", operation_id = "gaiaGetServer")]
    async fn get(&self, caller: GaiaCaller, id: Path<String>) -> Answer<Json<ServerFound>> {
        let server = self.servers.get(&caller.0, server_id(&id.0)?).await?;
        Ok(Json(ServerFound { success: true, server: convert::server_of(server, &self.public_url) }))
    }

    /// Change some fields of an MCP server; absent fields stay as they are.
    #[oai(path = "/api/mcp/servers/:id", method = "patch", operation_id = "gaiaUpdateServer")]
    async fn update(
        &self,
        caller: GaiaCaller,
        req: &Request,
        id: Path<String>,
        body: JsonBody<UpdateServerRequest>,
    ) -> Answer<Json<ServerUpdated>> {
        let caller = caller.0;
        let id = server_id(&id.0)?;
        let patch = convert::patch_of(body.0)?;
        let meta = RequestContext::of(req).metadata(caller.actor());
        let server = self.servers.update(&caller, id, patch, &meta).await?;
        Ok(Json(ServerUpdated {
            success: true,
            message: "MCP server updated successfully".into(),
            server: convert::server_of(server, &self.public_url),
        }))
    }

    /// Delete an MCP server. Its secrets are destroyed with it.
    #[oai(path = "/api/mcp/servers/:id", method = "delete", operation_id = "gaiaDeleteServer")]
    async fn delete(&self, caller: GaiaCaller, req: &Request, id: Path<String>) -> Answer<Json<ServerDeleted>> {
        let caller = caller.0;
        let id = server_id(&id.0)?;
        let meta = RequestContext::of(req).metadata(caller.actor());
        self.servers.delete(&caller, id, &meta).await?;
        Ok(Json(ServerDeleted { success: true, message: "MCP server deleted successfully".into() }))
    }
}
