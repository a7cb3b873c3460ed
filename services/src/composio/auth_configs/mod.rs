//! `/api/v3/auth_configs`: create, list, read, change, enable or disable, delete.

mod convert;
mod wire;

use super::paging::{self, Page};
use super::{Answer, ComposioCaller, ComposioTags};
use crate::auth_config::{AuthConfigFilter, AuthConfigs};
use crate::composio::error::Failure;
use crate::http::body::JsonBody;
use crate::http::context::RequestContext;
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use serde_json::Value;
use wire::{AuthConfig, AuthConfigCreated, AuthConfigPage, CreateAuthConfigRequest, UpdateAuthConfigRequest};

/// Composio's page size for auth configs, and the largest it allows.
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 1000;

#[derive(ApiResponse)]
enum CreateResponse {
    /// Created.
    #[oai(status = 201)]
    Created(Json<AuthConfigCreated>),
}

pub struct AuthConfigsApi {
    auth_configs: AuthConfigs,
    /// Whether OAuth endpoints may be plain http on loopback (local providers, tests).
    allow_loopback_http: bool,
}

impl AuthConfigsApi {
    pub fn new(auth_configs: AuthConfigs, allow_loopback_http: bool) -> Self {
        Self { auth_configs, allow_loopback_http }
    }
}

fn status_of(raw: &str) -> Result<bool, Failure> {
    match raw {
        "ENABLED" => Ok(true),
        "DISABLED" => Ok(false),
        _ => Err(Failure::invalid("status", "must be ENABLED or DISABLED")),
    }
}

fn empty() -> Json<Value> {
    Json(serde_json::json!({}))
}

#[OpenApi(prefix_path = "/api/v3", tag = "ComposioTags::ComposioAuthConfigs")]
impl AuthConfigsApi {
    /// Create an auth config: Composio-managed (here: the project's white-label OAuth app
    /// for the toolkit) or custom, with its own credentials (encrypted).
    #[oai(path = "/auth_configs", method = "post", operation_id = "composioCreateAuthConfig")]
    async fn create(
        &self,
        caller: ComposioCaller,
        req: &Request,
        body: JsonBody<CreateAuthConfigRequest>,
    ) -> Answer<CreateResponse> {
        let input = convert::input_of(body.0, self.allow_loopback_http)?;
        let meta = RequestContext::of(req).metadata(caller.0.actor());
        let record = self.auth_configs.create(&caller.0, input, &meta).await?;
        Ok(CreateResponse::Created(Json(convert::created(&record))))
    }

    /// The project's auth configs, newest first. DISABLED ones only with `show_disabled=true`.
    #[oai(path = "/auth_configs", method = "get", operation_id = "composioListAuthConfigs")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        caller: ComposioCaller,
        /// Comma-separated toolkit slugs.
        toolkit_slug: Query<Option<String>>,
        show_disabled: Query<Option<bool>>,
        /// Part of the name, or the id.
        search: Query<Option<String>>,
        is_composio_managed: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<String>>,
    ) -> Answer<Json<AuthConfigPage>> {
        let page = paging::by_cursor(cursor.0.as_deref(), limit.0.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
        let filter = AuthConfigFilter {
            toolkit_slugs: paging::list("toolkit_slug", toolkit_slug.0.as_deref())?
                .into_iter()
                .map(|s| s.to_lowercase())
                .collect(),
            show_disabled: show_disabled.0.unwrap_or(false),
            search: paging::search("search", search.0)?,
            managed: convert::managed_filter(is_composio_managed.0.as_deref())?,
            limit: page.limit,
            offset: page.offset(),
        };
        let (records, total) = self.auth_configs.list(&caller.0, &filter).await?;
        Ok(Json(page_of(page, records.into_iter().map(convert::auth_config_of).collect(), total)))
    }

    /// One auth config of the project; secret credentials show as `REDACTED`.
    #[oai(path = "/auth_configs/:nanoid", method = "get", operation_id = "composioGetAuthConfig")]
    async fn get(&self, caller: ComposioCaller, nanoid: Path<String>) -> Answer<Json<AuthConfig>> {
        convert::check_id(&nanoid.0)?;
        let record = self.auth_configs.get(&caller.0, &nanoid.0).await?;
        Ok(Json(convert::auth_config_of(record)))
    }

    /// Change some fields; `credentials` is replaced whole (send the real secrets again).
    #[oai(path = "/auth_configs/:nanoid", method = "patch", operation_id = "composioUpdateAuthConfig")]
    async fn update(
        &self,
        caller: ComposioCaller,
        req: &Request,
        nanoid: Path<String>,
        body: JsonBody<UpdateAuthConfigRequest>,
    ) -> Answer<Json<Value>> {
        convert::check_id(&nanoid.0)?;
        let current = self.auth_configs.get(&caller.0, &nanoid.0).await?;
        let changes = convert::changes_of(&current, body.0, self.allow_loopback_http)?;
        let meta = RequestContext::of(req).metadata(caller.0.actor());
        self.auth_configs.update(&caller.0, &nanoid.0, changes, &meta).await?;
        Ok(empty())
    }

    /// Delete (soft: the history stays); its credentials' key is destroyed.
    #[oai(path = "/auth_configs/:nanoid", method = "delete", operation_id = "composioDeleteAuthConfig")]
    async fn delete(&self, caller: ComposioCaller, req: &Request, nanoid: Path<String>) -> Answer<Json<Value>> {
        convert::check_id(&nanoid.0)?;
        let meta = RequestContext::of(req).metadata(caller.0.actor());
        self.auth_configs.delete(&caller.0, &nanoid.0, &meta).await?;
        Ok(empty())
    }

    /// Enable or disable: a DISABLED auth config accepts no new connections.
    #[oai(path = "/auth_configs/:nanoid/:status", method = "patch", operation_id = "composioSetAuthConfigStatus")]
    async fn set_status(
        &self,
        caller: ComposioCaller,
        req: &Request,
        nanoid: Path<String>,
        status: Path<String>,
    ) -> Answer<Json<Value>> {
        convert::check_id(&nanoid.0)?;
        let enabled = status_of(&status.0)?;
        let meta = RequestContext::of(req).metadata(caller.0.actor());
        self.auth_configs.set_enabled(&caller.0, &nanoid.0, enabled, &meta).await?;
        Ok(empty())
    }
}

fn page_of(page: Page, items: Vec<AuthConfig>, total: i64) -> AuthConfigPage {
    AuthConfigPage {
        items,
        next_cursor: page.next_cursor(total),
        total_pages: page.total_pages(total),
        current_page: page.number,
        total_items: total,
    }
}
