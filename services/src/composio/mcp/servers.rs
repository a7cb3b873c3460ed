//! MCP servers: create (from auth configs, or custom), list, read, change, delete, and the
//! per-user URLs of `generate`.

use super::convert;
use super::wire::{
    CreateCustomServerRequest, CreateServerRequest, CustomServerCreated, GenerateRequest, GeneratedUrls, McpServer,
    ServerDeleted, ServerPage, UpdateServerRequest,
};
use crate::auth_config::AuthConfigs;
use crate::composio::error::{Code, Failure};
use crate::composio::paging;
use crate::composio::{Answer, ComposioCaller, ComposioTags};
use crate::connected_account::{AccountFilter, ConnectedAccounts};
use crate::http::body::JsonBody;
use crate::http::context::RequestContext;
use crate::http::input;
use crate::http::problem::Location;
use crate::project::Caller;
use crate::server::{ServerFilter, Servers};
use domain::instance::UserId;
use domain::limits;
use domain::server::ComposioSettings;
use events::ServerId;
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

const DEFAULT_LIMIT: i64 = 10;
const MAX_LIMIT: i64 = 1000;

#[derive(ApiResponse)]
enum CreateResponse {
    /// Created.
    #[oai(status = 201)]
    Created(Json<McpServer>),
}

#[derive(ApiResponse)]
enum CustomCreateResponse {
    /// Created.
    #[oai(status = 201)]
    Created(Json<CustomServerCreated>),
}

pub struct McpServersApi {
    servers: Servers,
    auth_configs: AuthConfigs,
    accounts: ConnectedAccounts,
    public_url: String,
}

impl McpServersApi {
    pub fn new(servers: Servers, auth_configs: AuthConfigs, accounts: ConnectedAccounts, public_url: String) -> Self {
        Self { servers, auth_configs, accounts, public_url }
    }

    /// A server's toolkits: those of its auth configs, then its no-auth apps.
    async fn toolkits(&self, caller: &Caller, auth_config_ids: &[String], extra: &[String]) -> Answer<Vec<String>> {
        let of_configs = self.auth_configs.toolkits_of(caller, auth_config_ids).await?;
        Ok(convert::distinct(of_configs.into_iter().chain(extra.iter().map(|t| t.to_lowercase()))))
    }

    async fn register(
        &self,
        caller: &Caller,
        req: &Request,
        name: &str,
        composio: ComposioSettings,
    ) -> Answer<crate::server::ServerRecord> {
        let server_id = ServerId::random();
        let spec = convert::spec_of(&self.public_url, server_id, convert::name_of(name)?, composio)?;
        let meta = RequestContext::of(req).metadata(caller.actor());
        Ok(self.servers.register(caller, server_id, spec, &meta).await?)
    }

    /// Those of `ids` that are not connected accounts of the caller's project.
    async fn unknown_accounts(&self, caller: &Caller, ids: &[String]) -> Answer<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let filter =
            AccountFilter { connected_account_ids: ids.to_vec(), limit: ids.len() as i64, ..AccountFilter::default() };
        let (found, _) = self.accounts.list(caller, &filter).await?;
        Ok(ids.iter().filter(|id| !found.iter().any(|a| &a.connected_account_id == *id)).cloned().collect())
    }
}

#[OpenApi(prefix_path = "/api/v3", tag = "ComposioTags::ComposioMcp")]
impl McpServersApi {
    /// Create an MCP server over auth configs of the project; its toolkits come from them.
    #[oai(path = "/mcp/servers", method = "post", operation_id = "composioCreateMcpServer")]
    async fn create(
        &self,
        caller: ComposioCaller,
        req: &Request,
        body: JsonBody<CreateServerRequest>,
    ) -> Answer<CreateResponse> {
        let body = body.0;
        let auth_config_ids = convert::distinct(body.auth_config_ids);
        let no_auth_apps: Vec<String> = body.no_auth_apps.unwrap_or_default();
        let composio = ComposioSettings {
            toolkits: self.toolkits(&caller.0, &auth_config_ids, &no_auth_apps).await?,
            auth_config_ids,
            allowed_tools: convert::distinct(body.allowed_tools.unwrap_or_default()),
            no_auth_apps,
            managed_auth_via_composio: body.managed_auth_via_composio.unwrap_or(false),
        };
        let record = self.register(&caller.0, req, &body.name, composio).await?;
        Ok(CreateResponse::Created(Json(convert::server_of(&self.public_url, record, None))))
    }

    /// Create a server over several toolkits (what Composio's SDKs call).
    #[oai(path = "/mcp/servers/custom", method = "post", operation_id = "composioCreateCustomMcpServer")]
    async fn create_custom(
        &self,
        caller: ComposioCaller,
        req: &Request,
        body: JsonBody<CreateCustomServerRequest>,
    ) -> Answer<CustomCreateResponse> {
        let body = body.0;
        let auth_config_ids = convert::distinct(body.auth_config_ids.unwrap_or_default());
        let toolkits: Vec<String> = body.toolkits.unwrap_or_default();
        let composio = ComposioSettings {
            toolkits: self.toolkits(&caller.0, &auth_config_ids, &toolkits).await?,
            auth_config_ids,
            allowed_tools: convert::distinct(body.allowed_tools.or(body.custom_tools).unwrap_or_default()),
            no_auth_apps: Vec::new(),
            managed_auth_via_composio: body.managed_auth_via_composio.unwrap_or(false),
        };
        let record = self.register(&caller.0, req, &body.name, composio).await?;
        Ok(CustomCreateResponse::Created(Json(convert::custom_created(&self.public_url, record))))
    }

    /// The project's MCP servers, most recently updated first by default.
    #[oai(path = "/mcp/servers", method = "get", operation_id = "composioListMcpServers")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        caller: ComposioCaller,
        /// Part of the name, ignoring case.
        name: Query<Option<String>>,
        /// Comma-separated.
        toolkits: Query<Option<String>>,
        /// Comma-separated.
        auth_config_ids: Query<Option<String>>,
        order_by: Query<Option<String>>,
        order_direction: Query<Option<String>>,
        page_no: Query<Option<String>>,
        limit: Query<Option<String>>,
    ) -> Answer<Json<ServerPage>> {
        let page = paging::by_number(page_no.0.as_deref(), limit.0.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
        let order = paging::order(order_by.0.as_deref(), order_direction.0.as_deref(), true)?;
        let filter = ServerFilter {
            name: paging::search("name", name.0)?,
            toolkits: paging::list("toolkits", toolkits.0.as_deref())?.into_iter().map(|t| t.to_lowercase()).collect(),
            auth_config_ids: paging::list("auth_config_ids", auth_config_ids.0.as_deref())?,
            order_by_updated: order.by_updated,
            ascending: order.ascending,
            limit: page.limit,
            offset: page.offset(),
        };
        let (records, total) = self.servers.list(&caller.0, &filter).await?;
        Ok(Json(ServerPage {
            items: records.into_iter().map(|r| convert::server_of(&self.public_url, r, None)).collect(),
            total_pages: page.total_pages(total),
            current_page: page.number,
        }))
    }

    /// Per-user (`user_id`) and per-account (`connected_account_id`) URLs of a server.
    /// Creates no instance.
    #[oai(path = "/mcp/servers/generate", method = "post", operation_id = "composioGenerateMcpUrls")]
    async fn generate(&self, caller: ComposioCaller, body: JsonBody<GenerateRequest>) -> Answer<Json<GeneratedUrls>> {
        let body = body.0;
        let server_id = convert::server_id_of("mcp_server_id", &body.mcp_server_id)?;
        let server = self.servers.get(&caller.0, server_id).await?;
        let user_ids = body.user_ids.unwrap_or_default();
        let ids = |name: &str| Location::Body(vec![name.to_owned()]);
        input::list(ids("user_ids"), &user_ids, limits::LIST_ITEMS, UserId::MAX_CHARS).map_err(Failure::from)?;
        for (i, user) in user_ids.iter().enumerate() {
            convert::user_of(&format!("user_ids.{i}"), user)?;
        }
        let account_ids = body.connected_account_ids.unwrap_or_default();
        input::list(ids("connected_account_ids"), &account_ids, limits::LIST_ITEMS, limits::ID_CHARS)
            .map_err(Failure::from)?;
        let unknown = self.unknown_accounts(&caller.0, &account_ids).await?;
        if !unknown.is_empty() {
            let errors = unknown.iter().map(|id| format!("connected_account_ids: {id} not found")).collect();
            return Err(Failure::new(Code::ConnectedAccountNotFound, "Connected account not found")
                .errors(errors)
                .into());
        }
        let base = convert::mcp_url(&self.public_url, server.server_id);
        let managed = body.managed_auth_by_composio.unwrap_or(false);
        Ok(Json(GeneratedUrls {
            connected_account_urls: account_ids
                .iter()
                .map(|id| convert::selector_url(&base, managed, "connected_account_id", id))
                .collect(),
            user_ids_url: user_ids.iter().map(|user| convert::selector_url(&base, managed, "user_id", user)).collect(),
            mcp_url: base,
        }))
    }

    /// One MCP server of the project.
    #[oai(path = "/mcp/:id", method = "get", operation_id = "composioGetMcpServer")]
    async fn get(&self, caller: ComposioCaller, id: Path<String>) -> Answer<Json<McpServer>> {
        let record = self.servers.get(&caller.0, convert::server_id_of("id", &id.0)?).await?;
        Ok(Json(convert::server_of(&self.public_url, record, Some(false))))
    }

    /// Change some fields; lists replace the stored ones. New auth configs bring their
    /// toolkits unless `toolkits` is sent too.
    #[oai(path = "/mcp/:id", method = "patch", operation_id = "composioUpdateMcpServer")]
    async fn update(
        &self,
        caller: ComposioCaller,
        req: &Request,
        id: Path<String>,
        body: JsonBody<UpdateServerRequest>,
    ) -> Answer<Json<McpServer>> {
        let server_id = convert::server_id_of("id", &id.0)?;
        let body = body.0;
        let toolkits = match (&body.toolkits, &body.auth_config_ids) {
            (Some(toolkits), _) => Some(convert::distinct(toolkits.iter().map(|t| t.to_lowercase()))),
            (None, Some(ids)) => {
                let current = self.servers.get(&caller.0, server_id).await?;
                Some(self.toolkits(&caller.0, ids, &current.no_auth_apps).await?)
            }
            (None, None) => None,
        };
        let patch = convert::patch_of(&body, toolkits)?;
        let meta = RequestContext::of(req).metadata(caller.0.actor());
        let record = self.servers.update(&caller.0, server_id, patch, &meta).await?;
        Ok(Json(convert::server_of(&self.public_url, record, Some(false))))
    }

    /// Delete (soft: the history stays); its URLs stop working.
    #[oai(path = "/mcp/:id", method = "delete", operation_id = "composioDeleteMcpServer")]
    async fn delete(&self, caller: ComposioCaller, req: &Request, id: Path<String>) -> Answer<Json<ServerDeleted>> {
        let server_id = convert::server_id_of("id", &id.0)?;
        let meta = RequestContext::of(req).metadata(caller.0.actor());
        self.servers.delete(&caller.0, server_id, &meta).await?;
        Ok(Json(ServerDeleted { id: server_id.to_string(), deleted: true }))
    }
}
