//! Composio's error envelope: `{"error": {message, code, slug, status, request_id,
//! suggested_fix, errors}}`, with `status` equal to the HTTP status and `request_id` echoing
//! `x-request-id` (or the id minted for the request, also sent back as that header).
//!
//! Composio publishes no catalogue of codes. The ones it was seen to use keep their numbers
//! (600, 606, 607, 612); the others are this service's own, stable, and listed in [`Code`].

use crate::connected_account::AccountError;
use crate::error::AppError;
use crate::http::context::current_request_id;
use crate::http::problem::{Kind, Problem};
use crate::instance::ServerInstanceError;
use domain::auth_config::{AuthConfigError, InvalidAuthConfig};
use domain::connected_account::ConnectedAccountError;
use domain::server::{FieldError, ServerError, ServerField};
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioErrorDetail")]
pub struct ErrorDetail {
    pub message: String,
    /// This kind of error's number (not the HTTP status).
    pub code: u32,
    /// This kind of error's name.
    pub slug: String,
    /// The HTTP status.
    pub status: u16,
    pub request_id: Option<String>,
    pub suggested_fix: Option<String>,
    /// Each problem found, naming its field.
    pub errors: Vec<String>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename = "ComposioError")]
pub struct ErrorEnvelope {
    pub error: ErrorDetail,
}

#[derive(ApiResponse, Debug)]
pub enum ComposioError {
    /// Bad input (400, 413, 415), a missing or invalid API key (401), a precondition not met
    /// (403), unknown or another project's id (404), a conflict (409).
    #[oai(status_range = "4XX")]
    Client(StatusCode, Json<ErrorEnvelope>),
    /// The service failed; nothing was changed.
    #[oai(status_range = "5XX")]
    Server(StatusCode, Json<ErrorEnvelope>),
}

/// Every kind of error this surface answers with: its number, slug and HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    ValidationError,
    MalformedBody,
    PayloadTooLarge,
    UnsupportedMediaType,
    MissingApiKey,
    InvalidApiKey,
    Forbidden,
    RouteNotFound,
    MethodNotAllowed,
    ConcurrentModification,
    RateLimited,
    IdempotencyKeyReused,
    Unavailable,
    Internal,
    /// Seen at Composio (rowboatlabs/rowboat#896).
    ConnectedAccountBadRequest,
    /// Seen at Composio (third-party fixtures).
    ConnectedAccountNotFound,
    /// Seen at Composio (ComposioHQ/chat#13), there with status 400.
    AuthConfigNotFound,
    /// Seen at Composio (third-party fixtures).
    ConnectedAccountMissingFields,
    ConnectedAccountInvalidStatus,
    McpServerNotFound,
    McpServerNameConflict,
    McpInstanceMissingConnectedAccounts,
    McpInstanceAlreadyExists,
    McpInstanceNotFound,
    /// The slug third-party Composio fakes answer an unknown toolkit with.
    ToolkitNotFound,
}

impl Code {
    pub const fn parts(self) -> (u32, &'static str, StatusCode) {
        match self {
            Self::ValidationError => (10400, "Request_ValidationError", StatusCode::BAD_REQUEST),
            Self::MalformedBody => (10401, "Request_MalformedBody", StatusCode::BAD_REQUEST),
            Self::PayloadTooLarge => (10413, "Request_PayloadTooLarge", StatusCode::PAYLOAD_TOO_LARGE),
            Self::UnsupportedMediaType => (10415, "Request_UnsupportedMediaType", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            Self::MissingApiKey => (10402, "Auth_MissingApiKey", StatusCode::UNAUTHORIZED),
            Self::InvalidApiKey => (10403, "Auth_InvalidApiKey", StatusCode::UNAUTHORIZED),
            Self::Forbidden => (10406, "Request_Forbidden", StatusCode::FORBIDDEN),
            Self::RouteNotFound => (10404, "Request_RouteNotFound", StatusCode::NOT_FOUND),
            Self::MethodNotAllowed => (10405, "Request_MethodNotAllowed", StatusCode::METHOD_NOT_ALLOWED),
            Self::ConcurrentModification => (10409, "Request_ConcurrentModification", StatusCode::CONFLICT),
            Self::RateLimited => (10429, "Request_RateLimited", StatusCode::TOO_MANY_REQUESTS),
            Self::IdempotencyKeyReused => (10422, "Request_IdempotencyKeyReused", StatusCode::UNPROCESSABLE_ENTITY),
            Self::Unavailable => (10503, "Service_Unavailable", StatusCode::SERVICE_UNAVAILABLE),
            Self::Internal => (10500, "Service_InternalError", StatusCode::INTERNAL_SERVER_ERROR),
            Self::ConnectedAccountBadRequest => (600, "ConnectedAccount_BadRequest", StatusCode::BAD_REQUEST),
            Self::ConnectedAccountNotFound => (606, "ConnectedAccount_ResourceNotFound", StatusCode::NOT_FOUND),
            Self::AuthConfigNotFound => (607, "AuthConfig_ResourceNotFound", StatusCode::NOT_FOUND),
            Self::ConnectedAccountMissingFields => {
                (612, "ConnectedAccount_MissingRequiredFields", StatusCode::BAD_REQUEST)
            }
            Self::ConnectedAccountInvalidStatus => (613, "ConnectedAccount_InvalidStatus", StatusCode::CONFLICT),
            Self::McpServerNotFound => (1100, "McpServer_ResourceNotFound", StatusCode::NOT_FOUND),
            Self::McpServerNameConflict => (1101, "McpServer_NameConflict", StatusCode::CONFLICT),
            Self::McpInstanceMissingConnectedAccounts => {
                (1110, "McpInstance_MissingConnectedAccounts", StatusCode::FORBIDDEN)
            }
            Self::McpInstanceAlreadyExists => (1111, "McpInstance_AlreadyExists", StatusCode::CONFLICT),
            Self::McpInstanceNotFound => (1112, "McpInstance_ResourceNotFound", StatusCode::NOT_FOUND),
            Self::ToolkitNotFound => (1200, "Toolkit_NotFound", StatusCode::NOT_FOUND),
        }
    }
}

/// A refusal being built: the kind, what to say, and how to fix it.
#[derive(Debug)]
pub struct Failure {
    code: Code,
    message: String,
    suggested_fix: Option<String>,
    errors: Vec<String>,
}

impl Failure {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), suggested_fix: None, errors: Vec::new() }
    }

    pub fn fix(mut self, suggested_fix: impl Into<String>) -> Self {
        self.suggested_fix = Some(suggested_fix.into());
        self
    }

    pub fn errors(mut self, errors: Vec<String>) -> Self {
        self.errors = errors;
        self
    }

    /// A field that breaks a rule: 400 naming it.
    pub fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        let detail = format!("{}: {reason}", field.into());
        Self::new(Code::ValidationError, format!("Invalid request: {detail}")).errors(vec![detail])
    }
}

impl From<Failure> for ComposioError {
    fn from(f: Failure) -> Self {
        let (code, slug, status) = f.code.parts();
        let body = Json(ErrorEnvelope {
            error: ErrorDetail {
                message: f.message,
                code,
                slug: slug.to_owned(),
                status: status.as_u16(),
                request_id: current_request_id(),
                suggested_fix: f.suggested_fix,
                errors: f.errors,
            },
        });
        if status.is_server_error() { Self::Server(status, body) } else { Self::Client(status, body) }
    }
}

fn code_of(kind: Kind) -> Code {
    match kind {
        Kind::Validation(_) => Code::ValidationError,
        Kind::MalformedBody => Code::MalformedBody,
        Kind::BodyTooLarge => Code::PayloadTooLarge,
        Kind::UnsupportedMediaType => Code::UnsupportedMediaType,
        Kind::MissingCredentials => Code::MissingApiKey,
        Kind::InvalidCredentials => Code::InvalidApiKey,
        Kind::Forbidden => Code::Forbidden,
        Kind::NotFound => Code::RouteNotFound,
        Kind::MethodNotAllowed => Code::MethodNotAllowed,
        Kind::Conflict => Code::ConcurrentModification,
        Kind::TooManyRequests => Code::RateLimited,
        Kind::IdempotencyKeyReused => Code::IdempotencyKeyReused,
        Kind::Unavailable => Code::Unavailable,
        Kind::Internal => Code::Internal,
    }
}

/// A problem of the shared HTTP plumbing (body parsing, parameters, keys, routing).
impl From<Problem> for Failure {
    fn from(problem: Problem) -> Self {
        let code = code_of(problem.kind);
        match (&problem.kind, &problem.location) {
            (Kind::Validation(_), Some(location)) => Self::invalid(location.field_name(), &problem.message),
            (Kind::MissingCredentials, _) => Self::new(code, "Missing API key")
                .fix("Send the project's API key in the x-api-key (or x-user-api-key) header."),
            (Kind::InvalidCredentials, _) => {
                Self::new(code, "Invalid API key").fix("Check the key: it may be mistyped or revoked.")
            }
            _ => Self::new(code, problem.describe()),
        }
    }
}

impl From<Problem> for ComposioError {
    fn from(problem: Problem) -> Self {
        Failure::from(problem).into()
    }
}

/// A store failure (conflict, outage, bug) or a domain refusal mapped by `refusal`.
pub fn of_app_error<E: std::error::Error>(e: AppError<E>, refusal: impl FnOnce(E) -> Failure) -> ComposioError {
    match e {
        AppError::Rejected(e) => refusal(e).into(),
        other => Problem::of_app_error(other, |_| unreachable!("refusals are mapped above")).into(),
    }
}

pub fn auth_config_not_found() -> Failure {
    Failure::new(Code::AuthConfigNotFound, "Auth config not found")
        .fix("List the project's auth configs with GET /api/v3/auth_configs.")
}

pub fn account_not_found() -> Failure {
    Failure::new(Code::ConnectedAccountNotFound, "Connected account not found")
}

pub fn server_not_found() -> Failure {
    Failure::new(Code::McpServerNotFound, "MCP server not found")
}

impl From<InvalidAuthConfig> for Failure {
    fn from(e: InvalidAuthConfig) -> Self {
        Self::invalid(e.field, e.reason)
    }
}

impl From<AppError<AuthConfigError>> for ComposioError {
    fn from(e: AppError<AuthConfigError>) -> Self {
        of_app_error(e, |refusal| match refusal {
            AuthConfigError::NotFound => auth_config_not_found(),
            e @ AuthConfigError::AlreadyExists => Failure::new(Code::ConcurrentModification, e.to_string()),
        })
    }
}

impl From<AppError<AccountError>> for ComposioError {
    fn from(e: AppError<AccountError>) -> Self {
        of_app_error(e, |refusal| match refusal {
            AccountError::Account(ConnectedAccountError::NotFound) => account_not_found(),
            AccountError::AuthConfigNotFound => auth_config_not_found(),
            e @ AccountError::AuthConfigDisabled => Failure::new(Code::ConnectedAccountBadRequest, e.to_string())
                .fix("Enable the auth config with PATCH /api/v3/auth_configs/{id}/ENABLED, or use another one."),
            e @ AccountError::MissingFields { .. } => {
                let AccountError::MissingFields { fields, .. } = &e else { unreachable!() };
                let errors = fields.iter().map(|f| format!("connection.state.val.{f}: field required")).collect();
                Failure::new(Code::ConnectedAccountMissingFields, e.to_string()).errors(errors)
            }
            e @ AccountError::SchemeMismatch { .. } => {
                let detail = format!("connection.state.authScheme: {e}");
                Failure::new(Code::ConnectedAccountBadRequest, e.to_string()).errors(vec![detail])
            }
            e @ AccountError::NotLinkable(_) => Failure::new(Code::ConnectedAccountBadRequest, e.to_string())
                .fix("Create API key, bearer token and basic accounts with POST /api/v3/connected_accounts."),
            e @ AccountError::UnsupportedScheme(_) => Failure::new(Code::ConnectedAccountBadRequest, e.to_string()),
            e @ AccountError::NotUpdatableScheme(_) => Failure::invalid("connection.state.authScheme", &e).fix(
                "Send one of BEARER_TOKEN, API_KEY, BASIC, BASIC_WITH_JWT, GOOGLE_SERVICE_ACCOUNT, SERVICE_ACCOUNT: \
                 the scheme of the account.",
            ),
            AccountError::Account(e @ ConnectedAccountError::AliasTaken(_)) => {
                Failure::new(Code::ConnectedAccountBadRequest, e.to_string()).fix(
                    "Choose another alias: it is unique per user and toolkit within the project. Or clear the other \
                     connection's alias with PATCH /api/v3.1/connected_accounts/{id} and {\"alias\": \"\"}.",
                )
            }
            AccountError::Account(e @ ConnectedAccountError::SchemeMismatch { .. }) => {
                let detail = format!("connection.state.authScheme: {e}");
                Failure::new(Code::ConnectedAccountBadRequest, e.to_string()).errors(vec![detail])
            }
            AccountError::Account(ConnectedAccountError::Lookup(e)) => {
                tracing::error!(error = %e, "alias directory unavailable");
                Failure::new(Code::Unavailable, "The service is temporarily unavailable; try again")
            }
            AccountError::Account(
                e @ (ConnectedAccountError::AlreadyExists | ConnectedAccountError::CredentialChanged),
            ) => Failure::new(Code::ConcurrentModification, e.to_string()),
            AccountError::Account(
                e @ (ConnectedAccountError::NotPending(_)
                | ConnectedAccountError::Expired
                | ConnectedAccountError::StateAlreadyUsed
                | ConnectedAccountError::NotChangeable(_)
                | ConnectedAccountError::NotRevocable(_)
                | ConnectedAccountError::CredentialNotUpdatable(_)),
            ) => Failure::new(Code::ConnectedAccountInvalidStatus, e.to_string()),
        })
    }
}

/// A server field's name on this surface.
pub fn wire_name(field: ServerField) -> &'static str {
    match field {
        ServerField::Name => "name",
        ServerField::AuthConfigIds => "auth_config_ids",
        ServerField::AllowedTools => "allowed_tools",
        ServerField::Toolkits => "toolkits",
        ServerField::NoAuthApps => "no_auth_apps",
        ServerField::ManagedAuth => "managed_auth_via_composio",
        // Set by this service for Composio servers, never by the client.
        _ => "server",
    }
}

fn field_failure(e: FieldError) -> Failure {
    let field = std::iter::once(wire_name(e.field).to_owned()).chain(e.inner).collect::<Vec<_>>().join(".");
    Failure::invalid(field, e.reason)
}

impl From<FieldError> for ComposioError {
    fn from(e: FieldError) -> Self {
        field_failure(e).into()
    }
}

impl From<AppError<ServerError>> for ComposioError {
    fn from(e: AppError<ServerError>) -> Self {
        of_app_error(e, |refusal| match refusal {
            ServerError::Invalid(field) => field_failure(field),
            ServerError::NotFound => server_not_found(),
            e @ ServerError::NameTaken(_) => Failure::new(Code::McpServerNameConflict, e.to_string())
                .errors(vec![format!("name: {e}")])
                .fix("Choose another name, or change the existing server with PATCH /api/v3/mcp/{id}."),
            e @ ServerError::AlreadyRegistered => Failure::new(Code::ConcurrentModification, e.to_string()),
            ServerError::UnknownAuthConfigs(ids) => {
                let errors =
                    ids.iter().map(|id| format!("auth_config_ids: {id} does not exist or is not accessible")).collect();
                auth_config_not_found().errors(errors)
            }
            ServerError::Lookup(e) => {
                tracing::error!(error = %e, "server directory unavailable");
                Failure::new(Code::Unavailable, "The service is temporarily unavailable; try again")
            }
        })
    }
}

impl From<AppError<ServerInstanceError>> for ComposioError {
    fn from(e: AppError<ServerInstanceError>) -> Self {
        of_app_error(e, |refusal| match refusal {
            ServerInstanceError::ServerNotFound => server_not_found(),
            ServerInstanceError::MissingConnectedAccounts(missing) => Failure::new(
                Code::McpInstanceMissingConnectedAccounts,
                "The user does not have connected accounts for all required auth configurations",
            )
            .errors(missing.iter().map(|u| format!("{}: {}", u.auth_config_id, u.reason)).collect())
            .fix(format!(
                "For each auth config in `errors`: enable it if it is DISABLED, or connect the user to it \
                 (POST /api/v3/connected_accounts/link with auth_config_id and user_id, or POST \
                 /api/v3/connected_accounts) and wait until the account is ACTIVE, or enable the user's account; \
                 then create the instance again. Unusable: {}",
                missing.iter().map(|u| u.auth_config_id.as_str()).collect::<Vec<_>>().join(", ")
            )),
            e @ ServerInstanceError::AlreadyExists => Failure::new(Code::McpInstanceAlreadyExists, e.to_string())
                .fix("Use the existing instance, or delete it first."),
            ServerInstanceError::InstanceNotFound => {
                Failure::new(Code::McpInstanceNotFound, "MCP server or instance not found")
            }
        })
    }
}

/// Renders an error raised before a handler ran.
pub fn render(problem: Problem) -> Response {
    ComposioError::from(problem).into_response()
}
