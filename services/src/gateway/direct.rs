//! The gateway as its own client: one short MCP session with an instance's upstream, for the
//! REST helpers (Klavis `list-tools` / `call-tool`) that answer in one HTTP call what an MCP
//! client does in a session.
//!
//! Every message goes through [`Gateway::serve`], the path an MCP client's messages take: the
//! same credential injection, policy (a read-only instance lists only read-only tools and
//! refuses the others) and upstream handling, and the same session sealing. Nothing here knows
//! about upstreams or credentials.

use super::forward::SESSION_HEADER;
use super::message::MAX_ANSWER_BYTES;
use super::message::Message;
use super::{Address, Gateway, GatewayError, Incoming, MAX_TOOL_PAGES, Target, sse};
use crate::instance::ConnectionRecord;
use bytes::Bytes;
use poem::http::{HeaderMap, HeaderValue, Method};
use serde_json::{Value, json};

/// The protocol version the session asks for; the upstream may answer another it supports.
const PROTOCOL_VERSION: &str = "2025-06-18";

/// Why a direct session gave no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DirectError {
    /// Refused or failed in the gateway (unknown instance, hidden tool, not authenticated,
    /// upstream down), exactly as it would be over MCP.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The upstream answered the request with a JSON-RPC error.
    #[error("{message}")]
    Upstream { code: i64, message: String },
}

impl Gateway {
    /// The tools of `record`'s upstream as its MCP clients see them (every page, the
    /// instance's policy applied): the `Tool` objects of `tools/list`.
    pub async fn list_tools(&self, record: &ConnectionRecord) -> Result<Vec<Value>, DirectError> {
        let mut session = DirectSession::open(self, record).await?;
        let listed = session.all_tools().await;
        session.close();
        listed
    }

    /// Calls `name` with `arguments` on `record`'s upstream: the `CallToolResult`.
    pub async fn call_tool(
        &self,
        record: &ConnectionRecord,
        name: &str,
        arguments: Value,
    ) -> Result<Value, DirectError> {
        let mut session = DirectSession::open(self, record).await?;
        let called = session.request("tools/call", json!({ "name": name, "arguments": arguments })).await;
        session.close();
        called
    }
}

/// An open session: its sealed id (as a client holds it) and the negotiated version. Owns
/// what it needs, so that it can be ended after the answer has gone.
struct DirectSession {
    gateway: Gateway,
    record: ConnectionRecord,
    session: Option<HeaderValue>,
    protocol_version: Option<HeaderValue>,
    next_id: u64,
}

impl DirectSession {
    /// `initialize`, then `notifications/initialized`.
    async fn open(gateway: &Gateway, record: &ConnectionRecord) -> Result<Self, DirectError> {
        let (gateway, record) = (gateway.clone(), record.clone());
        let mut session = Self { gateway, record, session: None, protocol_version: None, next_id: 1 };
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "mcp-provisioner", "version": env!("CARGO_PKG_VERSION") },
        });
        let initialized = session.request("initialize", params).await?;
        let version = initialized.get("protocolVersion").and_then(Value::as_str).unwrap_or(PROTOCOL_VERSION);
        session.protocol_version = HeaderValue::from_str(version).ok();
        session.send(Method::POST, Some(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))).await?;
        Ok(session)
    }

    /// Every page of `tools/list`, at most [`MAX_TOOL_PAGES`].
    async fn all_tools(&mut self) -> Result<Vec<Value>, DirectError> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_TOOL_PAGES {
            let params = cursor.as_ref().map_or_else(|| json!({}), |c| json!({ "cursor": c }));
            let page = self.request("tools/list", params).await?;
            tools.extend(page.get("tools").and_then(Value::as_array).cloned().unwrap_or_default());
            cursor = page.get("nextCursor").and_then(Value::as_str).map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        Ok(tools)
    }

    /// Ends the session upstream (`DELETE`), in the background: the answer does not wait for
    /// it (one round trip of four). Best effort: the upstream ends idle sessions itself too.
    fn close(self) {
        if self.session.is_none() {
            return;
        }
        tokio::spawn(async move {
            if let Err(e) = self.send(Method::DELETE, None).await {
                tracing::debug!(error = %e, "ending a direct session failed");
            }
        });
    }

    /// One request; its result, or the error that answered it.
    async fn request(&mut self, method: &str, params: Value) -> Result<Value, DirectError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let (headers, body) = self.send(Method::POST, Some(request)).await?;
        if self.session.is_none() {
            self.session = headers.get(SESSION_HEADER).cloned();
        }
        let answer = answer_to(&headers, &body, id)?;
        if let Some(error) = answer.get("error") {
            let code = error.get("code").and_then(Value::as_i64).unwrap_or_default();
            let message = error.get("message").and_then(Value::as_str).unwrap_or("the upstream MCP server failed");
            return Err(DirectError::Upstream { code, message: message.to_owned() });
        }
        answer.get("result").cloned().ok_or_else(|| no_answer(method))
    }

    /// One message through the gateway, as an MCP client's would go; the answer's headers
    /// and body.
    async fn send(&self, method: Method, message: Option<Value>) -> Result<(HeaderMap, Bytes), DirectError> {
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_static("application/json, text/event-stream"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        if let Some(version) = &self.protocol_version {
            headers.insert("mcp-protocol-version", version.clone());
        }
        if let Some(session) = &self.session {
            headers.insert(SESSION_HEADER, session.clone());
        }
        let body = message.as_ref().map(|m| Bytes::from(m.to_string()));
        let parsed = body.as_deref().map(Message::parse).transpose()?;
        let incoming = Incoming { method, address: Address::Instance(None), headers, body: Ok(body) };
        let target = Target::Instance(Box::new(self.record.clone()));
        let response = self.gateway.serve(&incoming, &target, parsed.as_ref()).await?;
        let headers = response.headers().clone();
        let body =
            response.into_body().into_bytes_limit(MAX_ANSWER_BYTES).await.map_err(|_| GatewayError::Upstream {
                server_name: self.record.server_name.clone(),
                problem: "sent an answer that could not be read".into(),
            })?;
        Ok((headers, body))
    }
}

/// The message answering request `id`: the JSON body, or the event carrying it in a stream.
fn answer_to(headers: &HeaderMap, body: &[u8], id: u64) -> Result<Value, DirectError> {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let id = Value::from(id);
    let message = if content_type.starts_with("text/event-stream") {
        sse::messages(&String::from_utf8_lossy(body)).into_iter().find(|m| m.get("id") == Some(&id))
    } else {
        serde_json::from_slice::<Value>(body).ok().filter(|m| m.get("id") == Some(&id))
    };
    message.ok_or_else(|| no_answer("request"))
}

fn no_answer(what: &str) -> DirectError {
    DirectError::Upstream { code: -32603, message: format!("the upstream MCP server did not answer the {what}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_found_in_a_json_body_or_a_stream() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        assert_eq!(answer_to(&headers, br#"{"jsonrpc":"2.0","id":2,"result":{}}"#, 2).unwrap()["result"], json!({}));
        assert!(answer_to(&headers, br#"{"jsonrpc":"2.0","id":1,"result":{}}"#, 2).is_err(), "another request's");
        headers.insert("content-type", HeaderValue::from_static("text/event-stream"));
        let stream = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
                      event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-1}}\n\n";
        assert_eq!(answer_to(&headers, stream.as_bytes(), 3).unwrap()["error"]["code"], -1);
    }
}
