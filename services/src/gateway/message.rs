//! One JSON-RPC message as the gateway reads it: enough to route, authorize and apply policy
//! (its id, method and tool name); the body itself is forwarded as it came.

use super::error::GatewayError;
use serde_json::Value;

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
}
