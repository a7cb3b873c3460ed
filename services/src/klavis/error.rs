//! Klavis's error format, which is FastAPI's: 422 `{"detail":[{"loc","msg","type","input"}]}`
//! for every parse or validation error, with wire names in `loc`; otherwise
//! `{"detail": "..."}`; 401 for a missing key and 403 for an invalid one.

use super::wire::{Detail, HttpValidationError, ValidationError};
use crate::error::AppError;
use crate::http::problem::{Issue, Kind, Location, Problem};
use domain::instance::InstanceError;
use domain::oauth_app::OAuthAppError;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;
use serde_json::Value;

#[derive(ApiResponse, Debug)]
pub enum KlavisError {
    /// No API key was sent.
    #[oai(status = 401)]
    Unauthorized(Json<Detail>, #[oai(header = "WWW-Authenticate")] String),
    /// A parse or validation error, in FastAPI's shape.
    #[oai(status = 422)]
    Unprocessable(Json<HttpValidationError>),
    /// An invalid API key (403), an unknown or another project's id (404), a body too large
    /// (413), a body that is not JSON-typed (415), a conflict (409).
    #[oai(status_range = "4XX")]
    Client(StatusCode, Json<Detail>),
    /// The service failed.
    #[oai(status_range = "5XX")]
    Server(StatusCode, Json<Detail>),
}

/// Fields whose values are secrets: an error about them never echoes the input.
const SECRET_FIELDS: &[&str] = &["authData", "token", "api_key", "data", "authToken", "client_secret"];

fn loc(location: &Location) -> Vec<Value> {
    let (place, segments): (&str, Vec<String>) = match location {
        Location::Body(path) => ("body", path.clone()),
        Location::Query(name) => ("query", vec![name.clone()]),
        Location::Path(name) => ("path", vec![name.clone()]),
        Location::Header(name) => ("header", vec![name.clone()]),
    };
    std::iter::once(Value::from(place))
        .chain(segments.into_iter().map(|s| s.parse::<u64>().map_or(Value::from(s.clone()), Value::from)))
        .collect()
}

/// `` `a`, `b` or `c` `` (serde's wording) as `'a', 'b' or 'c'` (pydantic's).
fn quoted(expected: &str) -> String {
    expected.replace('`', "'").trim_start_matches("one of ").to_owned()
}

/// Pydantic's `type` and `msg` for a problem.
fn kind_and_msg(problem: &Problem, issue: Issue) -> (&'static str, String) {
    let expected = problem.expected.as_deref().unwrap_or("");
    match issue {
        Issue::Missing => ("missing", "Field required".into()),
        Issue::UnknownField => ("extra_forbidden", "Extra inputs are not permitted".into()),
        Issue::UnknownVariant => ("enum", format!("Input should be {}", quoted(expected))),
        Issue::WrongType => match expected {
            "a string" => ("string_type", "Input should be a valid string".into()),
            "a boolean" => ("bool_type", "Input should be a valid boolean".into()),
            "an integer" | "a non-negative integer" => ("int_type", "Input should be a valid integer".into()),
            "a list" => ("list_type", "Input should be a valid list".into()),
            "an object" => ("dict_type", "Input should be a valid dictionary".into()),
            "a UUID" => ("uuid_parsing", "Input should be a valid UUID".into()),
            "a URL" => ("url_parsing", "Input should be a valid URL".into()),
            "" => ("type_error", problem.message.clone()),
            other => ("type_error", format!("Input should be {other}")),
        },
        Issue::Rule if problem.message == "must not be empty" => {
            ("string_too_short", "String should have at least 1 character".into())
        }
        Issue::Rule => ("value_error", problem.message.clone()),
    }
}

fn validation(problem: &Problem, issue: Issue) -> KlavisError {
    let location = problem.location.clone().unwrap_or(Location::Body(Vec::new()));
    let secret = matches!(&location, Location::Body(path) if path.iter().any(|p| SECRET_FIELDS.contains(&p.as_str())));
    let (kind, msg) = kind_and_msg(problem, issue);
    let item = ValidationError {
        loc: loc(&location),
        msg,
        kind: kind.into(),
        input: if secret { None } else { problem.input.clone() },
    };
    KlavisError::Unprocessable(Json(HttpValidationError { detail: vec![item] }))
}

fn detail(status: StatusCode, message: impl Into<String>) -> KlavisError {
    let body = Json(Detail { detail: message.into() });
    if status.is_server_error() { KlavisError::Server(status, body) } else { KlavisError::Client(status, body) }
}

impl From<Problem> for KlavisError {
    fn from(problem: Problem) -> Self {
        match problem.kind {
            Kind::Validation(issue) => validation(&problem, issue),
            // FastAPI's shape for a refused header, so that the 422 reads like the others.
            Kind::IdempotencyKeyReused => validation(&problem, Issue::Rule),
            Kind::MalformedBody => {
                let item = ValidationError {
                    loc: vec![Value::from("body")],
                    msg: if problem.message.contains("empty") {
                        "Field required".into()
                    } else {
                        "JSON decode error".into()
                    },
                    kind: if problem.message.contains("empty") { "missing" } else { "json_invalid" }.into(),
                    input: None,
                };
                Self::Unprocessable(Json(HttpValidationError { detail: vec![item] }))
            }
            Kind::MissingCredentials => {
                Self::Unauthorized(Json(Detail { detail: "Not authenticated".into() }), "Bearer".into())
            }
            Kind::InvalidCredentials => detail(StatusCode::FORBIDDEN, "Invalid API key"),
            _ => detail(problem.default_status(), problem.message),
        }
    }
}

impl From<AppError<InstanceError>> for KlavisError {
    fn from(e: AppError<InstanceError>) -> Self {
        Problem::of_app_error(e, |refusal| match refusal {
            InstanceError::NotFound => Problem::new(Kind::NotFound, "Instance not found"),
            e @ (InstanceError::StateAlreadyUsed | InstanceError::CredentialChanged) => {
                Problem::new(Kind::Conflict, e.to_string())
            }
            // Catalog servers require no connected accounts; kept for completeness.
            e @ InstanceError::MissingConnectedAccounts(_) => Problem::new(Kind::Forbidden, e.to_string()),
            InstanceError::Lookup(e) => {
                tracing::error!(error = %e, "instance lookup failed");
                Problem::new(Kind::Unavailable, "The service is temporarily unavailable; try again")
            }
        })
        .into()
    }
}

impl From<AppError<OAuthAppError>> for KlavisError {
    fn from(e: AppError<OAuthAppError>) -> Self {
        Problem::of_app_error(e, |OAuthAppError::NotFound| {
            Problem::new(Kind::NotFound, "White labeling configuration not found")
        })
        .into()
    }
}

/// Renders an error raised before a handler ran.
pub fn render(problem: Problem) -> Response {
    KlavisError::from(problem).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(error: KlavisError) -> Value {
        let KlavisError::Unprocessable(Json(body)) = error else { panic!("{error:?}") };
        serde_json::to_value(
            body.detail
                .iter()
                .map(|d| (d.loc.clone(), d.msg.clone(), d.kind.clone(), d.input.clone()))
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn a_missing_field_reads_like_fastapi() {
        let problem = Problem::invalid(Location::Body(vec!["userId".into()]), Issue::Missing, "field required");
        assert_eq!(
            body_of(problem.into()),
            serde_json::json!([[["body", "userId"], "Field required", "missing", null]])
        );
    }

    #[test]
    fn an_index_in_a_location_is_a_number() {
        assert_eq!(
            loc(&Location::Body(vec!["servers".into(), "2".into()])),
            vec![Value::from("body"), Value::from("servers"), Value::from(2)]
        );
    }

    #[test]
    fn a_secret_input_is_never_echoed() {
        let mut problem = Problem::invalid(
            Location::Body(vec!["authData".into(), "token".into()]),
            Issue::WrongType,
            "must be a string",
        );
        problem.expected = Some("a string".into());
        problem.input = Some(Value::from(123456));
        let body = body_of(problem.into());
        assert_eq!(body[0][2], "string_type");
        assert_eq!(body[0][3], Value::Null);
    }

    #[test]
    fn an_enum_lists_its_values_pydantic_style() {
        let mut problem = Problem::invalid(Location::Body(vec!["connectionType".into()]), Issue::UnknownVariant, "x");
        problem.expected = Some("`SSE` or `StreamableHttp`".into());
        assert_eq!(body_of(problem.into())[0][1], "Input should be 'SSE' or 'StreamableHttp'");
    }
}
