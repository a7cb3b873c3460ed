//! `/api/v3/connected_accounts`: connect users' accounts (directly, or through a link and the
//! OAuth flow), list, read, enable or disable, revoke, delete.

mod convert;
mod wire;

use super::paging;
use super::{Answer, ComposioCaller, ComposioTags};
use crate::composio::error::{Failure, of_app_error};
use crate::connected_account::{AccountFilter, ConnectedAccounts, Created, NewConnection};
use crate::http::body::JsonBody;
use crate::http::context::RequestContext;
use crate::oauth::{OAuthAnswer, OAuthFlow};
use crate::project::{Caller, RedirectPolicy};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use wire::{
    Account, AccountCreated, AccountPage, AccountUpdated, CreateAccountRequest, LinkCreated, LinkRequest, Revoked,
    StatusRequest, Success, UpdateAccountRequest,
};

const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 1000;

#[derive(ApiResponse)]
enum CreateResponse {
    /// Created: ACTIVE, or INITIATED with the `redirect_url` to send the user to.
    #[oai(status = 201)]
    Created(Json<AccountCreated>),
}

#[derive(ApiResponse)]
enum LinkResponse {
    /// A pending account and the link that completes it.
    #[oai(status = 201)]
    Created(Json<LinkCreated>),
}

pub struct ConnectedAccountsApi {
    accounts: ConnectedAccounts,
    flow: OAuthFlow,
    redirects: RedirectPolicy,
}

impl ConnectedAccountsApi {
    pub fn new(accounts: ConnectedAccounts, flow: OAuthFlow, redirects: RedirectPolicy) -> Self {
        Self { accounts, flow, redirects }
    }

    /// A `callback_url` the browser will be sent to: http(s), on the project's allow-list.
    async fn allowed_callback(&self, caller: &Caller, field: &str, raw: Option<String>) -> Answer<Option<String>> {
        let Some(url) = convert::callback_of(field, raw)? else { return Ok(None) };
        self.redirects.check(caller.project_id, &url).await.map_err(|e| {
            of_app_error(e, |refusal| {
                Failure::invalid(field, refusal).fix("Add the host with PUT /api/v1/project/redirect-hosts first.")
            })
        })?;
        Ok(Some(url))
    }
}

#[OpenApi(prefix_path = "/api/v3", tag = "ComposioTags::ComposioConnectedAccounts")]
impl ConnectedAccountsApi {
    /// Connect a user's account: API_KEY, BEARER_TOKEN, BASIC and NO_AUTH connect at once
    /// (ACTIVE); OAUTH2 starts pending (INITIATED) with a `redirect_url`.
    #[oai(path = "/connected_accounts", method = "post", operation_id = "composioCreateConnectedAccount")]
    async fn create(
        &self,
        caller: ComposioCaller,
        req: &Request,
        body: JsonBody<CreateAccountRequest>,
    ) -> Answer<CreateResponse> {
        let body = body.0;
        convert::check_auth_config_id("auth_config.id", &body.auth_config.id)?;
        let user = convert::user_of("connection.user_id", body.connection.user_id.as_deref().unwrap_or("default"))?;
        let callback_url = body.connection.callback_url.or(body.connection.redirect_uri);
        let callback_url = self.allowed_callback(&caller.0, "connection.callback_url", callback_url).await?;
        let state = convert::state_of(body.connection.state)?;
        let alias = convert::alias_of("connection.alias", body.connection.alias)?;
        let meta = RequestContext::of(req).metadata(caller.0.actor());
        let new = NewConnection { callback_url, alias };
        let created = self.accounts.create(&caller.0, &body.auth_config.id, &user, state, new, &meta).await?;
        Ok(CreateResponse::Created(Json(match &created {
            Created::Active(record) => convert::active(record),
            Created::Pending(initiated) => convert::pending(initiated),
        })))
    }

    /// Start an OAuth connection through a hosted link: the account is created pending, and
    /// the link (valid for the pending window) leads the user through the provider's consent.
    #[oai(path = "/connected_accounts/link", method = "post", operation_id = "composioCreateLink")]
    async fn link(&self, caller: ComposioCaller, req: &Request, body: JsonBody<LinkRequest>) -> Answer<LinkResponse> {
        let body = body.0;
        convert::check_auth_config_id("auth_config_id", &body.auth_config_id)?;
        let user = convert::user_of("user_id", &body.user_id)?;
        let callback_url = self.allowed_callback(&caller.0, "callback_url", body.callback_url).await?;
        let alias = convert::alias_of("alias", body.alias)?;
        let meta = RequestContext::of(req).metadata(caller.0.actor());
        let new = NewConnection { callback_url, alias };
        let initiated = self.accounts.link(&caller.0, &body.auth_config_id, &user, new, &meta).await?;
        Ok(LinkResponse::Created(Json(convert::link(initiated))))
    }

    /// Where a link sends the browser: on to the provider's consent page. The link token is
    /// the credential (no API key).
    #[oai(path = "/connected_accounts/link/:token", method = "get", operation_id = "composioFollowLink")]
    async fn follow_link(&self, token: Path<String>) -> OAuthAnswer {
        self.flow.authorize_link(&token.0).await.into()
    }

    /// The project's connected accounts, filtered by comma-separated lists.
    #[oai(path = "/connected_accounts", method = "get", operation_id = "composioListConnectedAccounts")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        caller: ComposioCaller,
        user_ids: Query<Option<String>>,
        auth_config_ids: Query<Option<String>>,
        statuses: Query<Option<String>>,
        toolkit_slugs: Query<Option<String>>,
        connected_account_ids: Query<Option<String>>,
        order_by: Query<Option<String>>,
        order_direction: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<String>>,
    ) -> Answer<Json<AccountPage>> {
        let page = paging::by_cursor(cursor.0.as_deref(), limit.0.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
        let order = paging::order(order_by.0.as_deref(), order_direction.0.as_deref(), false)?;
        let filter = AccountFilter {
            user_ids: paging::list("user_ids", user_ids.0.as_deref())?,
            auth_config_ids: paging::list("auth_config_ids", auth_config_ids.0.as_deref())?,
            statuses: convert::statuses_of(paging::list("statuses", statuses.0.as_deref())?)?,
            toolkit_slugs: paging::list("toolkit_slugs", toolkit_slugs.0.as_deref())?
                .into_iter()
                .map(|s| s.to_lowercase())
                .collect(),
            connected_account_ids: paging::list("connected_account_ids", connected_account_ids.0.as_deref())?,
            order_by_updated: order.by_updated,
            ascending: order.ascending,
            limit: page.limit,
            offset: page.offset(),
        };
        let (records, total) = self.accounts.list(&caller.0, &filter).await?;
        Ok(Json(AccountPage {
            items: records.into_iter().map(convert::account_of).collect(),
            next_cursor: page.next_cursor(total),
            total_pages: page.total_pages(total),
            current_page: page.number,
            total_items: total,
        }))
    }

    /// One connected account of the project (never its credential).
    #[oai(path = "/connected_accounts/:nanoid", method = "get", operation_id = "composioGetConnectedAccount")]
    async fn get(&self, caller: ComposioCaller, nanoid: Path<String>) -> Answer<Json<Account>> {
        convert::check_id(&nanoid.0)?;
        Ok(Json(convert::account_of(self.accounts.get(&caller.0, &nanoid.0).await?)))
    }

    /// Delete (soft: the history stays); its credential's key is destroyed.
    #[oai(path = "/connected_accounts/:nanoid", method = "delete", operation_id = "composioDeleteConnectedAccount")]
    async fn delete(&self, caller: ComposioCaller, req: &Request, nanoid: Path<String>) -> Answer<Json<Success>> {
        convert::check_id(&nanoid.0)?;
        let meta = RequestContext::of(req).metadata(caller.0.actor());
        self.accounts.delete(&caller.0, &nanoid.0, &meta).await?;
        Ok(Json(Success { success: true }))
    }

    /// Update an account (v3.1): its `alias` (`""` clears it; unique per user and toolkit
    /// within the project), and fields of its key, token or basic credential
    /// (`connection.state.val`: a string sets a field, `null` removes it, the others stay).
    /// Only the fields sent change; the status stays. The credential is never returned.
    #[oai(path = "/connected_accounts/:nanoid", method = "patch", operation_id = "composioUpdateConnectedAccount")]
    async fn update(
        &self,
        caller: ComposioCaller,
        req: &Request,
        nanoid: Path<String>,
        body: JsonBody<UpdateAccountRequest>,
    ) -> Answer<Json<AccountUpdated>> {
        convert::check_id(&nanoid.0)?;
        let body = body.0;
        let alias = convert::alias_patch_of("alias", body.alias)?;
        let credential = convert::credential_patch_of(body.connection)?;
        let meta = RequestContext::of(req).metadata(caller.0.actor());
        let record = self.accounts.update(&caller.0, &nanoid.0, alias, credential, &meta).await?;
        Ok(Json(AccountUpdated { id: record.connected_account_id, status: record.status, success: true }))
    }

    /// Enable (ACTIVE) or disable (INACTIVE) an account.
    #[oai(
        path = "/connected_accounts/:nanoid/status",
        method = "patch",
        operation_id = "composioSetConnectedAccountStatus"
    )]
    async fn set_status(
        &self,
        caller: ComposioCaller,
        req: &Request,
        nanoid: Path<String>,
        body: JsonBody<StatusRequest>,
    ) -> Answer<Json<Success>> {
        convert::check_id(&nanoid.0)?;
        let meta = RequestContext::of(req).metadata(caller.0.actor());
        self.accounts.set_enabled(&caller.0, &nanoid.0, body.0.enabled, &meta).await?;
        Ok(Json(Success { success: true }))
    }

    /// Revoke an ACTIVE account: REVOKED, for good. (The provider is not called.)
    #[oai(
        path = "/connected_accounts/:nanoid/revoke",
        method = "post",
        operation_id = "composioRevokeConnectedAccount"
    )]
    async fn revoke(&self, caller: ComposioCaller, req: &Request, nanoid: Path<String>) -> Answer<Json<Revoked>> {
        convert::check_id(&nanoid.0)?;
        let meta = RequestContext::of(req).metadata(caller.0.actor());
        let record = self.accounts.revoke(&caller.0, &nanoid.0, &meta).await?;
        Ok(Json(Revoked {
            revoked_tokens: Vec::new(),
            connected_account: wire::RevokedAccount { id: record.connected_account_id, status: record.status },
        }))
    }
}
