//! A server's per-user instances: created only when the user holds an ACTIVE connected
//! account for every auth config of the server (403 naming the missing ones otherwise).

use super::convert;
use super::wire::{CreateInstanceRequest, Instance, InstanceDeleted, InstancePage};
use crate::composio::paging;
use crate::composio::{Answer, ComposioCaller, ComposioTags};
use crate::http::body::JsonBody;
use crate::http::context::RequestContext;
use crate::instance::{InstanceQuery, ServerInstances};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 1000;

#[derive(ApiResponse)]
enum CreateResponse {
    /// Created.
    #[oai(status = 201)]
    Created(Json<Instance>),
}

pub struct McpInstancesApi {
    instances: ServerInstances,
}

impl McpInstancesApi {
    pub fn new(instances: ServerInstances) -> Self {
        Self { instances }
    }
}

#[OpenApi(prefix_path = "/api/v3", tag = "ComposioTags::ComposioMcp")]
impl McpInstancesApi {
    /// Create the user's instance of the server. Refused (403, nothing recorded) unless the
    /// user has an ACTIVE connected account for every auth config of the server.
    #[oai(path = "/mcp/servers/:serverId/instances", method = "post", operation_id = "composioCreateMcpInstance")]
    async fn create(
        &self,
        caller: ComposioCaller,
        req: &Request,
        #[oai(name = "serverId")] server_id: Path<String>,
        body: JsonBody<CreateInstanceRequest>,
    ) -> Answer<CreateResponse> {
        let server_id = convert::server_id_of("serverId", &server_id.0)?;
        let user = convert::user_of("user_id", &body.0.user_id)?;
        let meta = RequestContext::of(req).metadata(caller.0.actor());
        let (created, _) = self.instances.create(&caller.0, server_id, user.clone(), &meta).await?;
        Ok(CreateResponse::Created(Json(convert::created_instance(server_id, &user, &created))))
    }

    /// The server's instances, most recently updated first by default.
    #[oai(path = "/mcp/servers/:serverId/instances", method = "get", operation_id = "composioListMcpInstances")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        caller: ComposioCaller,
        #[oai(name = "serverId")] server_id: Path<String>,
        page_no: Query<Option<String>>,
        limit: Query<Option<String>>,
        /// Part of the user id or instance id.
        search: Query<Option<String>>,
        order_by: Query<Option<String>>,
        order_direction: Query<Option<String>>,
    ) -> Answer<Json<InstancePage>> {
        let server_id = convert::server_id_of("serverId", &server_id.0)?;
        let page = paging::by_number(page_no.0.as_deref(), limit.0.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
        let order = paging::order(order_by.0.as_deref(), order_direction.0.as_deref(), true)?;
        let query = InstanceQuery {
            search: paging::search("search", search.0)?,
            order_by_updated: order.by_updated,
            ascending: order.ascending,
            limit: page.limit,
            offset: page.offset(),
        };
        let found = self.instances.list(&caller.0, server_id, &query).await?;
        Ok(Json(InstancePage {
            instances: found.instances.into_iter().map(|r| convert::instance_of(server_id, r)).collect(),
            server_id: server_id.to_string(),
            server_name: found.server.name,
            total_pages: page.total_pages(found.total),
            current_page: page.number,
        }))
    }

    /// Delete the user's instance, and that user's connected accounts for this server's auth
    /// configs (no others).
    #[oai(
        path = "/mcp/servers/:serverId/instances/:instanceId",
        method = "delete",
        operation_id = "composioDeleteMcpInstance"
    )]
    async fn delete(
        &self,
        caller: ComposioCaller,
        req: &Request,
        #[oai(name = "serverId")] server_id: Path<String>,
        #[oai(name = "instanceId")] instance_id: Path<String>,
    ) -> Answer<Json<InstanceDeleted>> {
        let server_id = convert::server_id_of("serverId", &server_id.0)?;
        let user = convert::user_of("instanceId", &instance_id.0)?;
        let meta = RequestContext::of(req).metadata(caller.0.actor());
        let deleted = self.instances.delete(&caller.0, server_id, user, &meta).await?;
        Ok(Json(InstanceDeleted {
            message: "Instance deleted successfully".into(),
            deleted_connected_accounts: deleted as i64,
        }))
    }
}
