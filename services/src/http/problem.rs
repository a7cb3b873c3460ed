//! `Problem`: what went wrong with a request, independent of any wire format. Extractor
//! errors, auth failures and domain refusals all become a `Problem`; each surface renders it
//! in its own error body.

use super::body::{BodyError, FieldIssue};
use super::caller::AuthError;
use poem::http::StatusCode;
use poem_openapi::error::{ContentTypeError, ParseParamError, ParsePathError};
use serde_json::Value;

/// Where the offending input was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A body field, by its path in wire names (`["customHeaders", "1", "value"]`).
    Body(Vec<String>),
    Query(String),
    Path(String),
    Header(String),
}

impl Location {
    /// `customHeaders.1.value`, `id`, ...: how a message names the field.
    pub fn field_name(&self) -> String {
        match self {
            Self::Body(path) => path.join("."),
            Self::Query(name) | Self::Path(name) | Self::Header(name) => name.clone(),
        }
    }
}

/// A path or query holds a control character (see `uri::refuse_control_characters`).
#[derive(Debug, thiserror::Error)]
#[error("{}: must not contain NUL or other control characters", location.field_name())]
pub struct ControlCharacterInUri {
    pub location: Location,
}

impl poem::error::ResponseError for ControlCharacterInUri {
    fn status(&self) -> StatusCode {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

/// The kind of problem; every surface maps each kind to its own codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A field is missing, of the wrong type, or breaks a rule.
    Validation(Issue),
    /// Not JSON, or no body.
    MalformedBody,
    BodyTooLarge,
    UnsupportedMediaType,
    MissingCredentials,
    InvalidCredentials,
    /// Authenticated, but a precondition refuses the operation.
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    /// Over the rate limit (see [`crate::rate_limit`]).
    TooManyRequests,
    Unavailable,
    Internal,
}

/// What is wrong with an invalid field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issue {
    Missing,
    WrongType,
    UnknownVariant,
    UnknownField,
    /// The value is well-typed but breaks a rule (a URL that is not absolute, a taken name).
    Rule,
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub kind: Kind,
    pub message: String,
    pub location: Option<Location>,
    /// For a wrong type: what was expected, in words (`a string`, `a list`).
    pub expected: Option<String>,
    /// The offending input, for surfaces that echo it (never rendered under a secret field).
    pub input: Option<Value>,
}

impl Problem {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), location: None, expected: None, input: None }
    }

    pub fn invalid(location: Location, issue: Issue, message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Validation(issue),
            message: message.into(),
            location: Some(location),
            expected: None,
            input: None,
        }
    }

    pub fn with_kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    pub fn with_input(mut self, input: Option<Value>) -> Self {
        self.input = input;
        self
    }

    /// The message prefixed with the field it is about.
    pub fn describe(&self) -> String {
        match &self.location {
            Some(location) => format!("{}: {}", location.field_name(), self.message),
            None => self.message.clone(),
        }
    }

    /// The HTTP status most surfaces use for this kind.
    pub fn default_status(&self) -> StatusCode {
        match self.kind {
            Kind::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::MalformedBody => StatusCode::BAD_REQUEST,
            Kind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::MissingCredentials | Kind::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem of a failed operation: the surface maps its domain refusals (`domain`);
    /// conflicts, outages and failures read the same on every surface. Causes are logged,
    /// never sent.
    pub fn of_app_error<E: std::error::Error>(e: crate::error::AppError<E>, domain: impl FnOnce(E) -> Self) -> Self {
        use crate::error::AppError;
        match e {
            AppError::Rejected(e) => domain(e),
            AppError::Conflict => Self::new(Kind::Conflict, "The resource is being changed concurrently; try again"),
            AppError::TooLarge(e) => Self::new(
                Kind::BodyTooLarge,
                format!("The change is too large to record ({e}); send shorter or fewer values"),
            ),
            AppError::Unavailable(cause) => {
                tracing::error!(error = format!("{cause:#}"), "store unavailable");
                Self::new(Kind::Unavailable, "The service is temporarily unavailable; try again")
            }
            AppError::Failed(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed");
                Self::new(Kind::Internal, "Internal server error")
            }
        }
    }

    /// Interprets an error raised before a handler ran (extractors, routing, auth).
    pub fn from_poem(err: poem::Error) -> Self {
        if let Some(body) = err.downcast_ref::<BodyError>() {
            return Self::from_body(body);
        }
        if let Some(auth) = err.downcast_ref::<AuthError>() {
            return match auth {
                AuthError::Missing => Self::new(Kind::MissingCredentials, "Missing API key"),
                AuthError::Invalid => Self::new(Kind::InvalidCredentials, "Invalid API key"),
                AuthError::Unavailable => Self::new(Kind::Unavailable, "Cannot check the API key right now; try again"),
                AuthError::RateLimited(limited) => Self::new(Kind::TooManyRequests, limited.message()),
            };
        }
        if let Some(e) = err.downcast_ref::<super::deadline::RequestTimedOut>() {
            return Self::new(Kind::Unavailable, e.to_string());
        }
        if let Some(e) = err.downcast_ref::<ControlCharacterInUri>() {
            return Self::invalid(e.location.clone(), Issue::Rule, "must not contain NUL or other control characters");
        }
        if let Some(e) = err.downcast_ref::<ParseParamError>() {
            return Self::invalid(Location::Query(e.name.to_owned()), Issue::WrongType, e.reason.clone());
        }
        if let Some(e) = err.downcast_ref::<ParsePathError>() {
            return Self::invalid(Location::Path(e.name.to_owned()), Issue::WrongType, e.reason.clone());
        }
        if let Some(e) = err.downcast_ref::<ContentTypeError>() {
            // poem reads no Content-Type from a header that is not visible ASCII: say so.
            let said = match e {
                ContentTypeError::ExpectContentType => "the request has no readable `Content-Type` header".to_owned(),
                other => other.to_string(),
            };
            return Self::new(Kind::UnsupportedMediaType, format!("{said}; send Content-Type: application/json"));
        }
        match err.status() {
            StatusCode::NOT_FOUND => Self::new(Kind::NotFound, "Route not found"),
            StatusCode::METHOD_NOT_ALLOWED => Self::new(Kind::MethodNotAllowed, "Method not allowed"),
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(Kind::BodyTooLarge, "The request body is too large"),
            status if status.is_client_error() => Self::new(Kind::MalformedBody, err.to_string()),
            _ => {
                tracing::error!(error = %err, "unhandled error");
                Self::new(Kind::Internal, "Internal server error")
            }
        }
    }

    fn from_body(err: &BodyError) -> Self {
        match err {
            BodyError::TooLarge { .. } => Self::new(Kind::BodyTooLarge, err.to_string()),
            BodyError::Empty | BodyError::Unreadable(_) | BodyError::Malformed(_) => {
                Self::new(Kind::MalformedBody, err.to_string())
            }
            BodyError::Invalid { path, issue, message, expected, input } => {
                let issue = match issue {
                    FieldIssue::Missing => Issue::Missing,
                    FieldIssue::WrongType => Issue::WrongType,
                    FieldIssue::UnknownVariant => Issue::UnknownVariant,
                    FieldIssue::UnknownField => Issue::UnknownField,
                    FieldIssue::InvalidValue => Issue::Rule,
                };
                let mut problem =
                    Self::invalid(Location::Body(path.clone()), issue, message.clone()).with_input(input.clone());
                problem.expected = expected.clone();
                problem
            }
        }
    }
}
