//! `JsonBody<T>`: a JSON request body parsed with serde, so that an error names the exact
//! field (`customHeaders[1].value`), which poem-openapi's own `Json<T>` cannot do (it reports
//! only a flat message, without the missing field's name: poem issue #622). The OpenAPI
//! schema still comes from `T`'s `Object` derive.

use domain::limits;
use poem::error::ReadBodyError;
use poem::http::StatusCode;
use poem::{Request, RequestBody};
use poem_openapi::impl_apirequest_for_payload;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Bodies above this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct JsonBody<T>(pub T);

/// What is wrong with a field of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldIssue {
    Missing,
    WrongType,
    UnknownVariant,
    UnknownField,
    InvalidValue,
}

/// Why a body could not be read. Each renders in the surface's own error format.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is empty; a JSON object is expected")]
    Empty,
    #[error("the request body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the request body could not be read: {0}")]
    Unreadable(String),
    #[error("the request body is not valid JSON: {0}")]
    Malformed(String),
    /// The message is built from the kind of problem and the expected type, never from the
    /// offending value: a value may be a secret sent in the wrong place.
    #[error("{}: {message}", path.join("."))]
    Invalid { path: Vec<String>, issue: FieldIssue, message: String, expected: Option<String>, input: Option<Value> },
}

impl poem::error::ResponseError for BodyError {
    fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Empty | Self::Unreadable(_) | Self::Malformed(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    /// `application/json` or `application/*+json`, in UTF-8 (the only encoding JSON has,
    /// RFC 8259): a body declared in another charset is not read as if it were UTF-8.
    fn check_content_type(content_type: &str) -> bool {
        content_type.parse::<mime::Mime>().is_ok_and(|m| {
            let json = m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json");
            let utf8 = m.get_param(mime::CHARSET).is_none_or(|c| c.as_str().eq_ignore_ascii_case("utf-8"));
            m.type_() == "application" && json && utf8
        })
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned + Send> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(_request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let bytes = body.take()?.into_bytes_limit(MAX_BODY_BYTES).await.map_err(|e| match e {
            ReadBodyError::PayloadTooLarge => BodyError::TooLarge { limit: MAX_BODY_BYTES },
            other => BodyError::Unreadable(other.to_string()),
        })?;
        Ok(Self(parse(&bytes)?))
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned + Send);

/// Parses in two steps: bytes to JSON (syntax errors, with line and column), then JSON to
/// `T` (shape errors, with the path of the field and the offending input).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Empty);
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| BodyError::Malformed(e.to_string()))?;
    check_bounds(&value, &mut Vec::new())?;
    serde_path_to_error::deserialize(&value).map_err(|e| invalid(&value, e))
}

/// The limits every body obeys whatever its type, before any field is read: no string or key
/// holds NUL (Postgres refuses it, in `text` and `jsonb` alike), no string is longer than
/// [`limits::ANY_STRING_BYTES`], no list or object has more than [`limits::ANY_ITEMS`]
/// entries. Fields have tighter limits of their own; this bounds those that have none.
fn check_bounds(value: &Value, path: &mut Vec<String>) -> Result<(), BodyError> {
    let refuse = |path: &[String], message: String| BodyError::Invalid {
        path: path.to_vec(),
        issue: FieldIssue::InvalidValue,
        message,
        expected: None,
        // Never echoed: the value may be a secret, and is too long or unprintable anyway.
        input: None,
    };
    match value {
        Value::String(s) if s.contains('\0') => Err(refuse(path, "must not contain NUL characters".into())),
        Value::String(s) if s.len() > limits::ANY_STRING_BYTES => {
            Err(refuse(path, format!("must be at most {} bytes", limits::ANY_STRING_BYTES)))
        }
        Value::Array(items) if items.len() > limits::ANY_ITEMS => {
            Err(refuse(path, format!("must have at most {} items", limits::ANY_ITEMS)))
        }
        Value::Object(entries) if entries.len() > limits::ANY_ITEMS => {
            Err(refuse(path, format!("must have at most {} entries", limits::ANY_ITEMS)))
        }
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| within(path, i, item)),
        Value::Object(entries) => entries.iter().try_for_each(|(key, item)| {
            if key.contains('\0') || key.len() > limits::ANY_STRING_BYTES {
                let mut at = path.clone();
                at.push(key.replace('\0', "\\u0000").chars().take(limits::PARAM_CHARS).collect());
                return Err(refuse(&at, "is not an acceptable key (NUL, or too long)".into()));
            }
            within(path, key, item)
        }),
        _ => Ok(()),
    }
}

fn within(path: &mut Vec<String>, segment: impl ToString, item: &Value) -> Result<(), BodyError> {
    path.push(segment.to_string());
    let checked = check_bounds(item, path);
    path.pop();
    checked
}

fn invalid(root: &Value, err: serde_path_to_error::Error<serde_json::Error>) -> BodyError {
    use serde_path_to_error::Segment;
    let mut path: Vec<String> = err
        .path()
        .iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect();
    let serde_message = err.into_inner().to_string();
    let issue = classify(&serde_message);
    // serde reports a missing field at its parent; name the field itself.
    if let (FieldIssue::Missing, Some(field)) = (issue, backticked(&serde_message)) {
        path.push(field.to_owned());
        return BodyError::Invalid { path, issue, message: "field required".into(), expected: None, input: None };
    }
    let expected = expected_of(&serde_message);
    let message = match (issue, &expected) {
        // A rule of this service's own input types (`SecretInput`): its words, never the value.
        (FieldIssue::InvalidValue, None) if serde_message.starts_with("must ") => serde_message.clone(),
        (FieldIssue::UnknownField, _) => "is not a known field".to_owned(),
        (FieldIssue::UnknownVariant, Some(expected)) => format!("must be {expected}"),
        (_, Some(expected)) => format!("must be {expected}"),
        (_, None) => "has an invalid value".to_owned(),
    };
    let input = path
        .iter()
        .try_fold(root, |v, key| v.get(key).or_else(|| key.parse::<usize>().ok().and_then(|i| v.get(i))))
        .cloned();
    BodyError::Invalid { path, issue, message, expected, input }
}

/// What serde expected, in words for people: the part of its message after "expected",
/// which never contains the offending value.
fn expected_of(serde_message: &str) -> Option<String> {
    let raw = serde_message.split_once(", expected ").map(|(_, e)| e.trim())?;
    Some(match raw {
        "a sequence" => "a list".to_owned(),
        "a map" => "an object".to_owned(),
        r if r.starts_with("struct ") => "an object".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative integer".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        r => r.to_owned(),
    })
}

fn classify(message: &str) -> FieldIssue {
    if message.starts_with("missing field") {
        FieldIssue::Missing
    } else if message.starts_with("invalid type") {
        FieldIssue::WrongType
    } else if message.starts_with("unknown variant") {
        FieldIssue::UnknownVariant
    } else if message.starts_with("unknown field") {
        FieldIssue::UnknownField
    } else {
        FieldIssue::InvalidValue
    }
}

fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Sample {
        project_id: String,
        transport_type: Kind,
        headers: Option<Vec<Header>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Stdio,
        Http,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Header {
        name: String,
        value: String,
    }

    fn error_of(json: &str) -> BodyError {
        parse::<Sample>(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_missing_field_is_named() {
        let BodyError::Invalid { path, issue, .. } = error_of(r#"{"transportType":"http"}"#) else { panic!() };
        assert_eq!((path, issue), (vec!["projectId".to_owned()], FieldIssue::Missing));
    }

    #[test]
    fn a_wrong_type_is_named_with_its_input() {
        let BodyError::Invalid { path, issue, input, .. } = error_of(r#"{"projectId":5,"transportType":"http"}"#)
        else {
            panic!()
        };
        assert_eq!((path, issue, input), (vec!["projectId".to_owned()], FieldIssue::WrongType, Some(Value::from(5))));
    }

    #[test]
    fn an_unknown_enum_value_is_named_with_the_choices() {
        let BodyError::Invalid { path, issue, message, .. } = error_of(r#"{"projectId":"p","transportType":"grpc"}"#)
        else {
            panic!()
        };
        assert_eq!((path, issue), (vec!["transportType".to_owned()], FieldIssue::UnknownVariant));
        assert_eq!(message, "must be `stdio` or `http`");
    }

    #[test]
    fn a_message_never_repeats_the_offending_value() {
        for body in [
            r#"{"projectId":"sk-live-SECRET","transportType":"http","headers":"Bearer sk-live-SECRET"}"#,
            r#"{"projectId":"p","transportType":"http","headers":["sk-live-SECRET"]}"#,
            r#"{"projectId":123456789,"transportType":"http"}"#,
        ] {
            let err = error_of(body);
            let BodyError::Invalid { message, .. } = &err else { panic!("{err}") };
            assert!(!message.contains("SECRET") && !message.contains("123456789"), "{message}");
            assert!(!err.to_string().contains("SECRET"), "{err}");
        }
    }

    #[test]
    fn a_nested_field_is_named_with_its_index() {
        let body = r#"{"projectId":"p","transportType":"http","headers":[{"name":"a","value":"b"},{"name":"c"}]}"#;
        let BodyError::Invalid { path, .. } = error_of(body) else { panic!() };
        assert_eq!(path, vec!["headers", "1", "value"]);
    }

    #[test]
    fn nul_anywhere_is_refused_naming_the_field() {
        let body = r#"{"projectId":"p","transportType":"http","headers":[{"name":"a","value":"b\u0000"}]}"#;
        let BodyError::Invalid { path, message, input, .. } = error_of(body) else { panic!() };
        assert_eq!(
            (path, message, input),
            (vec!["headers".into(), "0".into(), "value".into()], "must not contain NUL characters".into(), None)
        );
        let BodyError::Invalid { path, .. } = error_of(r#"{"projectId":"p","transportType":"http","x\u0000":1}"#)
        else {
            panic!()
        };
        assert_eq!(path, vec!["x\\u0000".to_owned()]);
    }

    #[test]
    fn strings_and_lists_without_a_limit_of_their_own_are_bounded() {
        let at_limit = format!(r#"{{"projectId":"{}","transportType":"http"}}"#, "p".repeat(limits::ANY_STRING_BYTES));
        assert!(parse::<Sample>(at_limit.as_bytes()).is_ok());
        let over = format!(r#"{{"projectId":"{}","transportType":"http"}}"#, "p".repeat(limits::ANY_STRING_BYTES + 1));
        let BodyError::Invalid { path, .. } = error_of(&over) else { panic!() };
        assert_eq!(path, vec!["projectId"]);
        let many = format!(r#"{{"projectId":"p","transportType":"http","headers":[{}]}}"#, vec!["1"; 1001].join(","));
        let BodyError::Invalid { path, message, .. } = error_of(&many) else { panic!() };
        assert_eq!((path, message.as_str()), (vec!["headers".to_owned()], "must have at most 1000 items"));
    }

    #[test]
    fn json_content_types_are_utf_8_json() {
        type Body = JsonBody<String>;
        for accepted in
            ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/ld+json"]
        {
            assert!(Body::check_content_type(accepted), "{accepted}");
        }
        for refused in ["text/plain", "application/json; charset=latin1", "application/x-json", "text/json", "foo", ""]
        {
            assert!(!Body::check_content_type(refused), "{refused}");
        }
    }

    #[test]
    fn syntax_errors_and_empty_bodies_are_told_apart() {
        assert!(matches!(error_of("{\"projectId\":"), BodyError::Malformed(_)));
        assert!(matches!(error_of("  "), BodyError::Empty));
    }
}
