//! GAIA's error format: a real HTTP status (never 200 on failure) and
//! `{"success": false, "message", "error"}`, with the field named.

use super::convert::wire_name;
use super::wire::GaiaErrorBody;
use crate::error::AppError;
use crate::http::problem::{Issue, Kind, Location, Problem};
use domain::server::{FieldError, ServerError};
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;

#[derive(ApiResponse, Debug)]
pub enum GaiaError {
    /// Bad input (400, 413, 415, 422), a missing or invalid API key (401), an unknown or
    /// another project's id (404), a name already taken (409).
    #[oai(status_range = "4XX")]
    Client(StatusCode, Json<GaiaErrorBody>),
    /// The service failed; nothing was changed.
    #[oai(status_range = "5XX")]
    Server(StatusCode, Json<GaiaErrorBody>),
}

fn code(kind: Kind) -> &'static str {
    match kind {
        Kind::Validation(_) => "validation_error",
        Kind::MalformedBody => "bad_request",
        Kind::BodyTooLarge => "payload_too_large",
        Kind::UnsupportedMediaType => "unsupported_media_type",
        Kind::MissingCredentials | Kind::InvalidCredentials => "unauthorized",
        Kind::Forbidden => "forbidden",
        Kind::NotFound => "not_found",
        Kind::MethodNotAllowed => "method_not_allowed",
        Kind::Conflict => "conflict",
        Kind::TooManyRequests => "rate_limited",
        Kind::Unavailable => "service_unavailable",
        Kind::Internal => "internal_error",
    }
}

impl From<Problem> for GaiaError {
    fn from(problem: Problem) -> Self {
        let status = problem.default_status();
        let body = Json(GaiaErrorBody {
            success: false,
            message: problem.describe(),
            error: code(problem.kind).to_owned(),
            field: problem.location.as_ref().map(Location::field_name),
        });
        if status.is_server_error() { Self::Server(status, body) } else { Self::Client(status, body) }
    }
}

/// A domain field error, located in GAIA's wire names.
fn field_problem(e: FieldError) -> Problem {
    let path = std::iter::once(wire_name(e.field).to_owned()).chain(e.inner).collect();
    Problem::invalid(Location::Body(path), Issue::Rule, e.reason)
}

impl From<FieldError> for GaiaError {
    fn from(e: FieldError) -> Self {
        field_problem(e).into()
    }
}

impl From<AppError<ServerError>> for GaiaError {
    fn from(e: AppError<ServerError>) -> Self {
        Problem::of_app_error(e, |refusal| match refusal {
            ServerError::Invalid(field) => field_problem(field),
            ServerError::NotFound => Problem::new(Kind::NotFound, "MCP server not found"),
            e @ ServerError::NameTaken(_) => {
                Problem::invalid(Location::Body(vec!["name".into()]), Issue::Rule, e.to_string())
                    .with_kind(Kind::Conflict)
            }
            e @ ServerError::AlreadyRegistered => Problem::new(Kind::Conflict, e.to_string()),
            e @ ServerError::UnknownAuthConfigs(_) => Problem::new(Kind::NotFound, e.to_string()),
            ServerError::Lookup(e) => {
                tracing::error!(error = %e, "server directory unavailable");
                Problem::new(Kind::Unavailable, "The service is temporarily unavailable; try again")
            }
        })
        .into()
    }
}

/// Renders an error raised before a handler ran.
pub fn render(problem: Problem) -> Response {
    GaiaError::from(problem).into_response()
}
