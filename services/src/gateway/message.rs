//! One JSON-RPC message as the gateway reads it: enough to route, authorize and apply policy
//! (its id, method and tool name); the body itself is forwarded as it came.

use super::error::GatewayError;
use poem::http::HeaderMap;
use serde_json::Value;

/// The largest JSON answer (or rewritten stream, or one event of a stream) read into memory.
pub const MAX_ANSWER_BYTES: usize = 16 << 20;

/// A client's message: a request, a notification or a response (to a server's request).
#[derive(Debug, Clone)]
pub struct Message {
    value: Value,
}

impl Message {
    /// A single JSON-RPC 2.0 message. Batches were removed from MCP (2025-06-18).
    pub fn parse(body: &[u8]) -> Result<Self, GatewayError> {
        let value: Value = serde_json::from_slice(body).map_err(|_| GatewayError::ParseError)?;
        match &value {
            Value::Object(object) if object.get("jsonrpc").and_then(Value::as_str) == Some("2.0") => Ok(Self { value }),
            Value::Array(_) => Err(GatewayError::InvalidRequest("JSON-RPC batches are not supported".into())),
            _ => Err(GatewayError::InvalidRequest("not a JSON-RPC 2.0 message".into())),
        }
    }

    pub fn method(&self) -> Option<&str> {
        self.value.get("method").and_then(Value::as_str)
    }

    /// The id of a request (a message with a method and an id); none for the others.
    pub fn request_id(&self) -> Option<&Value> {
        self.method().and(self.value.get("id")).filter(|id| !id.is_null())
    }

    /// The message as JSON.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// This `tools/call` naming `name` instead, as a body to forward.
    pub fn calling(&self, name: &str) -> bytes::Bytes {
        let mut value = self.value.clone();
        if let Some(params) = value.get_mut("params").and_then(Value::as_object_mut) {
            params.insert("name".into(), Value::String(name.to_owned()));
        }
        bytes::Bytes::from(value.to_string())
    }

    /// The tool a `tools/call` names.
    pub fn tool_name(&self) -> Option<&str> {
        (self.method() == Some("tools/call")).then(|| self.value.pointer("/params/name")?.as_str()).flatten()
    }

    /// The request's `params._meta`: under 2026-07-28 it carries the protocol version and the
    /// client's capabilities on every request, so the gateway's own requests in the client's
    /// name (listing tools for the read-only check) carry it too.
    pub fn meta(&self) -> Option<&Value> {
        self.value.pointer("/params/_meta")
    }

    /// 2026-07-28 mirrors the method and the named parameter in `Mcp-Method` and `Mcp-Name`;
    /// one that disagrees with the body is refused (-32020), so that whatever routes or
    /// filters on either sees the same call. A header that is absent is the upstream's to
    /// require: the gateway decides on the body.
    pub fn check_headers(&self, headers: &HeaderMap) -> Result<(), GatewayError> {
        let Some(method) = self.method() else { return Ok(()) };
        if let Some(header) = headers.get(METHOD_HEADER)
            && header.to_str().ok() != Some(method)
        {
            return Err(GatewayError::HeaderMismatch(format!(
                "{METHOD_HEADER} header does not match the body's method"
            )));
        }
        let named = NAME_BEARING.iter().find(|(m, _)| *m == method).map(|(_, key)| *key);
        let body_name = named.and_then(|key| self.value.get("params")?.get(key)?.as_str());
        match (headers.get(NAME_HEADER), body_name) {
            (Some(header), Some(name)) if decode_header_value(header.to_str().ok()).as_deref() != Some(name) => {
                Err(GatewayError::HeaderMismatch(format!(
                    "{NAME_HEADER} header does not match the body's `{}` parameter",
                    named.unwrap_or_default()
                )))
            }
            _ => Ok(()),
        }
    }
}

pub const METHOD_HEADER: &str = "mcp-method";
pub const NAME_HEADER: &str = "mcp-name";
/// The methods whose named parameter `Mcp-Name` mirrors (2026-07-28 transports).
const NAME_BEARING: [(&str, &str); 3] = [("tools/call", "name"), ("prompts/get", "name"), ("resources/read", "uri")];

/// A value as a header carries it: verbatim when it is printable ASCII without edge spaces,
/// else `=?base64?…?=` (as the official SDKs encode `Mcp-Name`).
pub fn encode_header_value(value: &str) -> String {
    use base64::Engine;
    let plain = value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && value == value.trim()
        && !(value.starts_with("=?base64?") && value.ends_with("?="));
    if plain {
        value.to_owned()
    } else {
        format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(value))
    }
}

/// A header value as sent: verbatim, or `=?base64?…?=` for one that is not printable ASCII.
fn decode_header_value(value: Option<&str>) -> Option<String> {
    use base64::Engine;
    let value = value?;
    let Some(payload) = value.strip_prefix("=?base64?").and_then(|v| v.strip_suffix("?=")) else {
        return Some(value.to_owned());
    };
    let bytes = base64::engine::general_purpose::STANDARD.decode(payload).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_a_notification_and_garbage() {
        let call = Message::parse(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"w"}}"#).unwrap();
        assert_eq!(call.request_id(), Some(&serde_json::json!(7)));
        assert_eq!(call.tool_name(), Some("w"));
        let note = Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(note.request_id(), None);
        assert_eq!(note.tool_name(), None);
        let renamed = Message::parse(&call.calling("search")).unwrap();
        assert_eq!((renamed.tool_name(), renamed.request_id()), (Some("search"), Some(&serde_json::json!(7))));
        assert!(matches!(Message::parse(b"{nope"), Err(GatewayError::ParseError)));
        assert!(matches!(Message::parse(b"[]"), Err(GatewayError::InvalidRequest(_))));
        assert!(matches!(Message::parse(br#"{"id":1}"#), Err(GatewayError::InvalidRequest(_))));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (poem::http::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    #[test]
    fn routing_headers_must_agree_with_the_body() {
        let call =
            Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}"#).unwrap();
        assert!(call.check_headers(&headers(&[])).is_ok(), "absent headers are the upstream's to require");
        assert!(call.check_headers(&headers(&[("mcp-method", "tools/call"), ("mcp-name", "whoami")])).is_ok());
        let wrong_name =
            call.check_headers(&headers(&[("mcp-method", "tools/call"), ("mcp-name", "delete_everything")]));
        assert!(matches!(wrong_name, Err(GatewayError::HeaderMismatch(_))));
        let wrong_method = call.check_headers(&headers(&[("mcp-method", "tools/list")]));
        assert!(matches!(wrong_method, Err(GatewayError::HeaderMismatch(_))));
        // "whoami" in the base64 form a client uses for names that are not plain ASCII.
        assert!(call.check_headers(&headers(&[("mcp-name", "=?base64?d2hvYW1p?=")])).is_ok());
        assert_eq!(encode_header_value("whoami"), "whoami");
        assert_eq!(decode_header_value(Some(&encode_header_value("café "))).as_deref(), Some("café "));
        let read =
            Message::parse(br#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///a"}}"#)
                .unwrap();
        assert!(matches!(
            read.check_headers(&headers(&[("mcp-name", "file:///b")])),
            Err(GatewayError::HeaderMismatch(_))
        ));
    }
}
