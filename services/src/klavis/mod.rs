//! The Klavis surface: its instance, user, white-label and OAuth APIs (seeds `000_…` and
//! `001_…`, `shared/reference/klavis-api.md`), wire-compatible so that Klavis's own SDKs work
//! against this service by changing only the base URL. Every handler parses, calls the shared
//! services, and maps the result.

mod convert;
mod error;
mod oauth;
mod tools;
mod wire;

pub use error::{KlavisError, render};
pub use oauth::KlavisOAuthApi;
pub use tools::KlavisToolsApi;
// The gateway answers an unauthenticated instance with the same link the API hands out.

use crate::caller_extractor;
use crate::catalog::Catalog;
use crate::http::body::JsonBody;
use crate::http::caller::KeySource;
use crate::http::context::RequestContext;
use crate::http::input;
use crate::http::problem::{Issue, Kind, Location, Problem};
use crate::http::secret_input::MASK;
use crate::instance::{Instances, Target};
use crate::oauth::{OAuthAppRecord, OAuthApps};
use crate::outbound::check_endpoint;
use crate::project::Caller;
use domain::limits;
use domain::oauth_app::{OAuthAppSpec, parse_client_id, parse_endpoint};
use events::instance::InstanceSettings;
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{OpenApi, Tags};
use wire::*;

/// Where a Klavis caller sends its key: `Authorization: Bearer <key>`.
pub const KEY_SOURCES: [KeySource; 1] = [KeySource::Bearer];

caller_extractor!(
    /// The caller of a Klavis request (see [`KEY_SOURCES`]).
    KlavisCaller,
    [("HTTPBearer", KEY_SOURCES[0])]
);

#[derive(Tags)]
enum KlavisTags {
    /// Klavis-compatible MCP server instances.
    McpServer,
    /// Klavis-compatible users.
    User,
    /// Klavis-compatible white-labeling (a project's own OAuth apps).
    WhiteLabeling,
}

type Answer<T> = Result<Json<T>, KlavisError>;

pub struct KlavisApi {
    instances: Instances,
    apps: OAuthApps,
    public_url: String,
    /// Whether OAuth endpoints may be plain http on loopback (local providers, tests).
    allow_loopback_http: bool,
}

impl KlavisApi {
    pub fn new(instances: Instances, apps: OAuthApps, public_url: String, allow_loopback_http: bool) -> Self {
        Self { instances, apps, public_url, allow_loopback_http }
    }

    async fn create_instance(
        &self,
        caller: &Caller,
        req: &Request,
        server_name: &str,
        user_id: &str,
        settings: InstanceSettings,
    ) -> Result<(crate::instance::CreatedInstance, &'static crate::catalog::CatalogEntry), KlavisError> {
        let entry = convert::server(Location::Body(vec!["serverName".into()]), server_name)?;
        let user = convert::user_id(Location::Body(vec!["userId".into()]), user_id)?;
        let meta = RequestContext::of(req).metadata(caller.actor());
        let record = self.instances.create(caller, &convert::slot(entry, user), settings, Vec::new(), &meta).await?;
        Ok((record, entry))
    }

    fn path_instance(raw: &str) -> Result<events::InstanceId, KlavisError> {
        convert::instance_id(Location::Path("instanceId".into()), raw)
    }

    async fn get_instance(&self, caller: &Caller, raw: &str, as_of: Option<&str>) -> Answer<GetInstanceResponse> {
        let instance_id = Self::path_instance(raw)?;
        let record = match as_of {
            None => self.instances.get(caller, instance_id).await?,
            Some(raw_time) => {
                let at = crate::audit::parse_time(raw_time)
                    .map_err(|reason| Problem::invalid(Location::Query("as_of".into()), Issue::WrongType, reason))?;
                self.instances.get_as_of(caller, instance_id, at).await?
            }
        };
        Ok(Json(convert::instance(&record, &self.public_url)))
    }

    async fn delete_instance(&self, caller: &Caller, req: &Request, raw: &str) -> Answer<StatusResponse> {
        let meta = RequestContext::of(req).metadata(caller.actor());
        self.instances.delete(caller, Self::path_instance(raw)?, &meta).await?;
        Ok(Json(StatusResponse::ok("Instance deleted successfully")))
    }

    async fn instance_auth(&self, caller: &Caller, raw: &str) -> Answer<GetAuthDataResponse> {
        let target = Target::Instance(Self::path_instance(raw)?);
        Ok(Json(match self.instances.auth_data(caller, &target).await? {
            Some((_, data)) => GetAuthDataResponse { success: true, auth_data: Some(data), error: None },
            None => GetAuthDataResponse {
                success: false,
                auth_data: None,
                error: Some("No authentication data found for this instance".into()),
            },
        }))
    }

    async fn delete_instance_auth(&self, caller: &Caller, req: &Request, raw: &str) -> Answer<StatusResponse> {
        let meta = RequestContext::of(req).metadata(caller.actor());
        self.instances.clear_auth(caller, &Target::Instance(Self::path_instance(raw)?), &meta).await?;
        Ok(Json(StatusResponse::ok("Authentication data deleted")))
    }

    fn user_slot(user_id: &str, server_name: &str) -> Result<crate::instance::SlotRef, KlavisError> {
        let entry = convert::server(Location::Path("serverName".into()), server_name)?;
        let user = convert::user_id(Location::Path("userId".into()), user_id)?;
        Ok(convert::slot(entry, user))
    }

    fn white_label(&self, record: OAuthAppRecord) -> WhiteLabelingResponse {
        WhiteLabelingResponse {
            success: true,
            data: Some(WhiteLabelingData {
                client_id: record.client_id,
                server_name: record.server_name,
                provider: record.provider,
                callback_url: record.callback_url,
                account_id: record.account_id,
                authorize_url: record.authorize_url,
                token_url: record.token_url,
                scopes: record.scopes,
                client_secret: MASK.into(),
                created_at: convert::timestamp(record.created_at),
                updated_at: convert::timestamp(record.updated_at),
            }),
            message: None,
        }
    }
}

/// A field error of the white-label body, as a 422.
fn white_label_field(e: domain::oauth_app::OAuthAppFieldError) -> KlavisError {
    Problem::invalid(Location::Body(vec![e.field.into()]), Issue::Rule, e.reason).into()
}

#[OpenApi]
impl KlavisApi {
    /// Create a server instance for a user, or return the existing one (idempotent per user
    /// and server). `serverUrl` is the MCP endpoint; `oauthUrl` is where the user authorizes,
    /// for servers that need OAuth.
    #[oai(path = "/mcp-server/instance/create", method = "post", tag = "KlavisTags::McpServer")]
    async fn create(
        &self,
        caller: KlavisCaller,
        req: &Request,
        body: JsonBody<CreateServerRequest>,
    ) -> Answer<CreateServerResponse> {
        let body = body.0;
        let connection = convert::connection_type(body.connection_type);
        let settings = InstanceSettings {
            platform: convert::platform(body.platform_name)?,
            connection_type: connection,
            legacy: body.legacy.unwrap_or(false),
            read_only: body.is_read_only.unwrap_or(false),
        };
        let (record, entry) = self.create_instance(&caller.0, req, &body.server_name, &body.user_id, settings).await?;
        let id = record.instance_id.to_string();
        Ok(Json(CreateServerResponse {
            server_url: convert::server_url(&self.public_url, connection, &id),
            oauth_url: entry.oauth_url(&self.public_url, &id),
            instance_id: id,
        }))
    }

    /// Create an instance id for a self-hosted MCP server (idempotent per user and server).
    #[oai(path = "/mcp-server/self-hosted/instance/create", method = "post", tag = "KlavisTags::McpServer")]
    async fn create_self_hosted(
        &self,
        caller: KlavisCaller,
        req: &Request,
        body: JsonBody<CreateSelfHostedServerRequest>,
    ) -> Answer<CreateSelfHostedServerResponse> {
        let settings = InstanceSettings {
            platform: None,
            connection_type: events::instance::ConnectionType::StreamableHttp,
            legacy: false,
            read_only: false,
        };
        let (record, entry) =
            self.create_instance(&caller.0, req, &body.0.server_name, &body.0.user_id, settings).await?;
        let id = record.instance_id.to_string();
        Ok(Json(CreateSelfHostedServerResponse { oauth_url: entry.oauth_url(&self.public_url, &id), instance_id: id }))
    }

    /// An instance, with whether it is authenticated. With `as_of` (RFC 3339), the instance as
    /// it was at that time, rebuilt from its events: 404 if it did not exist then.
    #[oai(path = "/mcp-server/instance/:instanceId", method = "get", tag = "KlavisTags::McpServer")]
    async fn get(
        &self,
        caller: KlavisCaller,
        #[oai(name = "instanceId")] instance_id: Path<String>,
        as_of: Query<Option<String>>,
    ) -> Answer<GetInstanceResponse> {
        self.get_instance(&caller.0, &instance_id.0, as_of.0.as_deref()).await
    }

    /// The old path of GET instance.
    #[oai(path = "/mcp-server/instance/get/:instanceId", method = "get", tag = "KlavisTags::McpServer", deprecated)]
    async fn get_legacy(
        &self,
        caller: KlavisCaller,
        #[oai(name = "instanceId")] instance_id: Path<String>,
    ) -> Answer<GetInstanceResponse> {
        self.get_instance(&caller.0, &instance_id.0, None).await
    }

    /// Change an instance's settings (read-only).
    #[oai(path = "/mcp-server/instance/:instanceId", method = "patch", tag = "KlavisTags::McpServer")]
    async fn update(
        &self,
        caller: KlavisCaller,
        req: &Request,
        #[oai(name = "instanceId")] instance_id: Path<String>,
        body: JsonBody<UpdateServerInstanceRequest>,
    ) -> Answer<UpdateServerInstanceResponse> {
        let id = Self::path_instance(&instance_id.0)?;
        let caller = caller.0;
        let record = match body.0.is_read_only {
            Some(read_only) => {
                let meta = RequestContext::of(req).metadata(caller.actor());
                self.instances.set_read_only(&caller, id, read_only, &meta).await?
            }
            None => self.instances.get(&caller, id).await?,
        };
        Ok(Json(UpdateServerInstanceResponse {
            instance_id: id.to_string(),
            is_read_only: record.read_only.unwrap_or(false),
            message: "Instance updated successfully".into(),
        }))
    }

    /// Delete an instance and its credential.
    #[oai(path = "/mcp-server/instance/:instanceId", method = "delete", tag = "KlavisTags::McpServer")]
    async fn delete(
        &self,
        caller: KlavisCaller,
        req: &Request,
        #[oai(name = "instanceId")] instance_id: Path<String>,
    ) -> Answer<StatusResponse> {
        self.delete_instance(&caller.0, req, &instance_id.0).await
    }

    /// The old path of DELETE instance.
    #[oai(
        path = "/mcp-server/instance/delete/:instanceId",
        method = "delete",
        tag = "KlavisTags::McpServer",
        deprecated
    )]
    async fn delete_legacy(
        &self,
        caller: KlavisCaller,
        req: &Request,
        #[oai(name = "instanceId")] instance_id: Path<String>,
    ) -> Answer<StatusResponse> {
        self.delete_instance(&caller.0, req, &instance_id.0).await
    }

    /// An instance's credential. Answers 200 with `success: false` until the instance is
    /// authenticated, so a client can poll it.
    #[oai(path = "/mcp-server/instance/:instanceId/auth", method = "get", tag = "KlavisTags::McpServer")]
    async fn get_auth(
        &self,
        caller: KlavisCaller,
        #[oai(name = "instanceId")] instance_id: Path<String>,
    ) -> Answer<GetAuthDataResponse> {
        self.instance_auth(&caller.0, &instance_id.0).await
    }

    /// The old path of GET instance auth.
    #[oai(
        path = "/mcp-server/instance/get-auth/:instanceId",
        method = "get",
        tag = "KlavisTags::McpServer",
        deprecated
    )]
    async fn get_auth_legacy(
        &self,
        caller: KlavisCaller,
        #[oai(name = "instanceId")] instance_id: Path<String>,
    ) -> Answer<GetAuthDataResponse> {
        self.instance_auth(&caller.0, &instance_id.0).await
    }

    /// Remove an instance's credential; the instance stays.
    #[oai(path = "/mcp-server/instance/:instanceId/auth", method = "delete", tag = "KlavisTags::McpServer")]
    async fn delete_auth(
        &self,
        caller: KlavisCaller,
        req: &Request,
        #[oai(name = "instanceId")] instance_id: Path<String>,
    ) -> Answer<StatusResponse> {
        self.delete_instance_auth(&caller.0, req, &instance_id.0).await
    }

    /// The old path of DELETE instance auth.
    #[oai(
        path = "/mcp-server/instance/delete-auth/:instanceId",
        method = "delete",
        tag = "KlavisTags::McpServer",
        deprecated
    )]
    async fn delete_auth_legacy(
        &self,
        caller: KlavisCaller,
        req: &Request,
        #[oai(name = "instanceId")] instance_id: Path<String>,
    ) -> Answer<StatusResponse> {
        self.delete_instance_auth(&caller.0, req, &instance_id.0).await
    }

    /// Store a credential on an instance: `{token}`, `{api_key}` or `{data: {...}}`.
    #[oai(path = "/mcp-server/instance/set-auth", method = "post", tag = "KlavisTags::McpServer")]
    async fn set_auth(
        &self,
        caller: KlavisCaller,
        req: &Request,
        body: JsonBody<SetAuthRequest>,
    ) -> Answer<StatusResponse> {
        let caller = caller.0;
        let id = convert::instance_id(Location::Body(vec!["instanceId".into()]), &body.0.instance_id)?;
        let input = convert::auth_input(body.0.auth_data)?;
        let meta = RequestContext::of(req).metadata(caller.actor());
        self.instances.set_auth(&caller, &Target::Instance(id), input, &meta).await?;
        Ok(Json(StatusResponse::ok("Authentication data saved")))
    }

    /// The old form of set-auth: `{instanceId, authToken}`.
    #[oai(path = "/mcp-server/instance/set-auth-token", method = "post", tag = "KlavisTags::McpServer", deprecated)]
    async fn set_auth_token(
        &self,
        caller: KlavisCaller,
        req: &Request,
        body: JsonBody<SetAuthTokenRequest>,
    ) -> Answer<StatusResponse> {
        let caller = caller.0;
        let id = convert::instance_id(Location::Body(vec!["instanceId".into()]), &body.0.instance_id)?;
        let meta = RequestContext::of(req).metadata(caller.actor());
        self.instances
            .set_auth(&caller, &Target::Instance(id), convert::token_input(body.0.auth_token.0), &meta)
            .await?;
        Ok(Json(StatusResponse::ok("Authentication data saved")))
    }

    /// The catalog of servers that can be instantiated.
    #[oai(path = "/mcp-server/servers", method = "get", tag = "KlavisTags::McpServer")]
    // An `Answer`, though it never fails itself, so that the spec declares the 401/403 its
    // key check answers.
    async fn servers(&self, _caller: KlavisCaller) -> Answer<GetMcpServersResponse> {
        let servers = Catalog::get()
            .all()
            .iter()
            .map(|e| McpServer {
                id: e.id().to_string(),
                name: e.name.clone(),
                description: Some(e.description.clone()),
                tools: None,
                auth_needed: e.auth != crate::catalog::AuthKind::None,
            })
            .collect();
        Ok(Json(GetMcpServersResponse { servers }))
    }

    /// The servers a user has an instance or a credential for.
    #[oai(path = "/user/:userId/integrations", method = "get", tag = "KlavisTags::User")]
    async fn user_integrations(
        &self,
        caller: KlavisCaller,
        #[oai(name = "userId")] user_id: Path<String>,
    ) -> Answer<GetUserIntegrationsResponse> {
        let user = convert::user_id(Location::Path("userId".into()), &user_id.0)?;
        // A user with no record (never seen, or deleted) is unknown: 404, as for `GET /user/{userId}`.
        let integrations = self.instances.integrations(&caller.0, &user).await.map_err(user_not_found)?;
        Ok(Json(GetUserIntegrationsResponse {
            integrations: integrations
                .iter()
                .map(|r| IntegrationItem { name: r.server_name.clone(), is_authenticated: r.is_authenticated() })
                .collect(),
        }))
    }

    /// A user.
    #[oai(path = "/user/:userId", method = "get", tag = "KlavisTags::User")]
    async fn user(
        &self,
        caller: KlavisCaller,
        #[oai(name = "userId")] user_id: Path<String>,
    ) -> Answer<GetUserResponse> {
        let user = convert::user_id(Location::Path("userId".into()), &user_id.0)?;
        let record = self.instances.user(&caller.0, &user).await.map_err(user_not_found)?;
        Ok(Json(GetUserResponse {
            user_id: record.user_id,
            created_at: convert::timestamp(record.created_at),
            last_used_at: Some(convert::timestamp(record.last_used_at)),
        }))
    }

    /// Delete a user with all their instances and credentials.
    #[oai(path = "/user/:userId", method = "delete", tag = "KlavisTags::User")]
    async fn delete_user(
        &self,
        caller: KlavisCaller,
        req: &Request,
        #[oai(name = "userId")] user_id: Path<String>,
    ) -> Answer<DeleteUserResponse> {
        let caller = caller.0;
        let user = convert::user_id(Location::Path("userId".into()), &user_id.0)?;
        let meta = RequestContext::of(req).metadata(caller.actor());
        self.instances.delete_user(&caller, &user, &meta).await.map_err(user_not_found)?;
        Ok(Json(DeleteUserResponse { success: true, message: "User deleted successfully".into() }))
    }

    /// The project's users, oldest first.
    #[oai(path = "/user", method = "get", tag = "KlavisTags::User")]
    async fn users(
        &self,
        caller: KlavisCaller,
        #[oai(default = "default_page_size", validator(minimum(value = "1"), maximum(value = "1000")))]
        page_size: Query<i64>,
        // Bounded so that the offset, (page_number - 1) * page_size, cannot overflow.
        #[oai(default = "default_page_number", validator(minimum(value = "1"), maximum(value = "2147483647")))]
        page_number: Query<i64>,
    ) -> Answer<GetAllUsersResponse> {
        let (users, total) = self.instances.users(&caller.0, page_size.0, page_number.0).await?;
        Ok(Json(GetAllUsersResponse {
            users: users
                .into_iter()
                .map(|u| UserInfo { user_id: u.user_id, created_at: convert::timestamp(u.created_at) })
                .collect(),
            total_count: total,
            page: page_number.0,
            page_size: page_size.0,
            total_pages: (total + page_size.0 - 1) / page_size.0,
        }))
    }

    /// Store a user's credential for a server; their instance of it (now or later) uses it.
    #[oai(path = "/user/set-auth", method = "post", tag = "KlavisTags::User")]
    async fn set_user_auth(
        &self,
        caller: KlavisCaller,
        req: &Request,
        body: JsonBody<SetUserAuthRequest>,
    ) -> Answer<StatusResponse> {
        let caller = caller.0;
        let body = body.0;
        let entry = convert::server(Location::Body(vec!["serverName".into()]), &body.server_name)?;
        let user = convert::user_id(Location::Body(vec!["userId".into()]), &body.user_id)?;
        let input = convert::auth_input(body.auth_data)?;
        let meta = RequestContext::of(req).metadata(caller.actor());
        self.instances.set_auth(&caller, &Target::User(convert::slot(entry, user)), input, &meta).await?;
        Ok(Json(StatusResponse::ok("Authentication data saved")))
    }

    /// A user's credential for a server.
    #[oai(path = "/user/:userId/auth/:serverName", method = "get", tag = "KlavisTags::User")]
    async fn get_user_auth(
        &self,
        caller: KlavisCaller,
        #[oai(name = "userId")] user_id: Path<String>,
        #[oai(name = "serverName")] server_name: Path<String>,
    ) -> Answer<GetUserAuthResponse> {
        let slot = Self::user_slot(&user_id.0, &server_name.0)?;
        // An unknown (or deleted) user is 404; a known one without this server's credential is
        // Klavis's `success: false`.
        self.instances.user(&caller.0, &slot.user).await.map_err(user_not_found)?;
        let data = self.instances.auth_data(&caller.0, &Target::User(slot.clone())).await?;
        let authenticated = data.is_some();
        Ok(Json(GetUserAuthResponse {
            success: authenticated,
            user_id: slot.user.as_str().to_owned(),
            server_name: slot.server_name,
            auth_data: data.map(|(_, d)| d),
            is_authenticated: authenticated,
            message: (!authenticated).then(|| "No authentication data for this user and server".into()),
        }))
    }

    /// Remove a user's credential for a server.
    #[oai(path = "/user/:userId/auth/:serverName", method = "delete", tag = "KlavisTags::User")]
    async fn delete_user_auth(
        &self,
        caller: KlavisCaller,
        req: &Request,
        #[oai(name = "userId")] user_id: Path<String>,
        #[oai(name = "serverName")] server_name: Path<String>,
    ) -> Answer<StatusResponse> {
        let caller = caller.0;
        let slot = Self::user_slot(&user_id.0, &server_name.0)?;
        let meta = RequestContext::of(req).metadata(caller.actor());
        self.instances.clear_auth(&caller, &Target::User(slot), &meta).await?;
        Ok(Json(StatusResponse::ok("Authentication data deleted")))
    }

    /// Save a project's own OAuth app for a provider (upsert by `client_id`). The secret is
    /// encrypted and never returned.
    #[oai(path = "/white-labeling/create", method = "post", tag = "KlavisTags::WhiteLabeling")]
    async fn create_white_label(
        &self,
        caller: KlavisCaller,
        req: &Request,
        body: JsonBody<CreateWhiteLabelingRequest>,
    ) -> Answer<WhiteLabelingResponse> {
        let caller = caller.0;
        let body = body.0;
        // Bounded before the lookup: an unknown name is echoed in the error.
        input::line(Location::Body(vec!["server_name".into()]), &body.server_name, limits::NAME_CHARS)?;
        let provider = Catalog::get()
            .oauth_provider(&body.server_name)
            .filter(|_| is_oauth_server_name(&body.server_name))
            .ok_or_else(|| {
                let mut problem = Problem::invalid(
                    Location::Body(vec!["server_name".into()]),
                    Issue::UnknownVariant,
                    "is not an OAuth server",
                )
                .with_input(Some(body.server_name.clone().into()));
                problem.expected =
                    Some(OAUTH_SERVER_NAMES.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "));
                KlavisError::from(problem)
            })?;
        let optional_url = |field: &'static str, raw: Option<String>| {
            raw.filter(|u| !u.trim().is_empty())
                .map(|u| parse_endpoint(field, &u, self.allow_loopback_http))
                .transpose()
        };
        // The provider's endpoints are called by this service (the token endpoint) or sent to
        // (authorize): refused early when they name an address the outbound client refuses.
        let provider_endpoint = |field: &'static str, raw: Option<String>| {
            raw.filter(|u| !u.trim().is_empty())
                .map(|u| check_endpoint(field, &u, self.allow_loopback_http))
                .transpose()
        };
        let spec = OAuthAppSpec {
            client_id: parse_client_id(&body.client_id).map_err(white_label_field)?,
            provider,
            server_name: body.server_name,
            client_secret: body.client_secret.into_secret(),
            callback_url: optional_url("callback_url", body.callback_url).map_err(white_label_field)?,
            account_id: convert::account_id(body.account_id)?,
            authorize_url: provider_endpoint("authorize_url", body.authorize_url).map_err(white_label_field)?,
            token_url: provider_endpoint("token_url", body.token_url).map_err(white_label_field)?,
            scopes: convert::scopes(body.scopes)?,
        };
        let meta = RequestContext::of(req).metadata(caller.actor());
        let saved = self.apps.save(&caller, spec, &meta).await?;
        let mut answer = self.white_label(saved);
        answer.message = Some("White labeling configuration saved".into());
        Ok(Json(answer))
    }

    /// A white-label configuration of the caller's project.
    #[oai(path = "/white-labeling/get/:client_id", method = "get", tag = "KlavisTags::WhiteLabeling")]
    async fn get_white_label(&self, caller: KlavisCaller, client_id: Path<String>) -> Answer<WhiteLabelingResponse> {
        input::line(Location::Path("client_id".into()), &client_id.0, CLIENT_ID_CHARS)?;
        match self.apps.get(caller.0.project_id, &client_id.0).await? {
            Some(record) => Ok(Json(self.white_label(record))),
            None => Err(Problem::new(Kind::NotFound, "White labeling configuration not found").into()),
        }
    }
}

/// The longest client id a white-label app may have (`parse_client_id`).
const CLIENT_ID_CHARS: usize = 512;

fn default_page_size() -> i64 {
    50
}

fn default_page_number() -> i64 {
    1
}

fn user_not_found(e: crate::error::AppError<domain::instance::InstanceError>) -> KlavisError {
    match e {
        crate::error::AppError::Rejected(domain::instance::InstanceError::NotFound) => {
            Problem::new(Kind::NotFound, "User not found").into()
        }
        other => other.into(),
    }
}

/// Klavis's `OAuthServerName`: the providers white-labeling accepts.
const OAUTH_SERVER_NAMES: &[&str] = &[
    "Airtable",
    "Asana",
    "Attio",
    "Box",
    "Cal.com",
    "Canva",
    "ClickUp",
    "Close",
    "Confluence",
    "Dialpad",
    "DocuSign",
    "Dropbox",
    "Fathom",
    "Figma",
    "GitHub",
    "GitLab",
    "Gmail",
    "Google Calendar",
    "Google Docs",
    "Google Drive",
    "Google Sheets",
    "Google Forms",
    "Google Cloud",
    "GoogleWorkspaceAtlas",
    "HubSpot",
    "Jira",
    "Klaviyo",
    "Linear",
    "LinkedIn",
    "Microsoft Teams",
    "Monday",
    "Moneybird",
    "Notion",
    "Onedrive",
    "Outlook",
    "MsCalendar",
    "PagerDuty",
    "Pipedrive",
    "QuickBooks",
    "Salesforce",
    "Slack",
    "Stripe",
    "Supabase",
    "Vercel",
    "WordPress",
    "Xero",
    "YouTube",
    "Zendesk",
    "PayPal",
    "Sentry",
    "Netlify",
    "Hugging Face",
    "Square",
    "Clockwise",
    "Jotform",
    "Honeycomb",
    "Zoho Mail",
    "Sharesight",
    "Instagram",
];

/// The `server_name`s `POST /white-labeling/create` takes (as written; any case is taken too).
pub(crate) fn white_label_server_names() -> Vec<&'static str> {
    OAUTH_SERVER_NAMES.iter().copied().filter(|n| Catalog::get().oauth_provider(n).is_some()).collect()
}

fn is_oauth_server_name(name: &str) -> bool {
    let wanted = crate::catalog::normalize(name);
    OAUTH_SERVER_NAMES.iter().any(|n| crate::catalog::normalize(n) == wanted)
}
