//! A legacy HTTP+SSE MCP client by hand (MCP 2024-11-05): the event stream of `GET /sse` read
//! in the background, messages POSTed to the endpoint it announces, and every status and
//! event visible to the test.

use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a test waits for an event that must come.
const EVENT_WAIT: Duration = Duration::from_secs(30);

/// One event of the stream: its name and data.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub data: String,
}

/// An open legacy session.
pub struct LegacySession {
    pub http: reqwest::Client,
    /// Where messages go, as the endpoint event named it.
    pub endpoint: String,
    events: mpsc::UnboundedReceiver<Event>,
    next_id: i64,
}

/// A POST's status and JSON body (`Null` when it has none).
#[derive(Debug)]
pub struct Posted {
    pub status: u16,
    pub body: Value,
}

impl LegacySession {
    /// `GET url`; the session once its endpoint event came, or the status and JSON body of
    /// a refusal.
    pub async fn connect(url: &str) -> Result<Self, Posted> {
        let http = reqwest::Client::new();
        let response = http.get(url).header("accept", "text/event-stream").send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let is_stream = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"));
        if status != 200 || !is_stream {
            let text = response.text().await.unwrap();
            let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON (status {status}): {text}"));
            return Err(Posted { status, body });
        }
        let (sender, mut events) = mpsc::unbounded_channel();
        tokio::spawn(read_events(response, sender));
        let first = tokio::time::timeout(EVENT_WAIT, events.recv()).await.expect("the endpoint event comes");
        let first = first.expect("the stream starts with an event");
        assert_eq!(first.name, "endpoint", "{first:?}");
        Ok(Self { http, endpoint: first.data, events, next_id: 1 })
    }

    /// POSTs `message` to `endpoint`.
    pub async fn post_to(&self, endpoint: &str, message: &Value) -> Posted {
        let response = self.http.post(endpoint).json(message).send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.trim().is_empty() || status == 202 {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON (status {status}): {text}"))
        };
        Posted { status, body }
    }

    /// A request POSTed to `endpoint` (accepted), and the message answering it on the stream.
    pub async fn request_via(&mut self, endpoint: &str, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let posted =
            self.post_to(endpoint, &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).await;
        assert_eq!(posted.status, 202, "{method}: {posted:?}");
        self.answer_to(id).await
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let endpoint = self.endpoint.clone();
        self.request_via(&endpoint, method, params).await
    }

    /// `initialize`, then `notifications/initialized`; the initialize answer.
    pub async fn initialize(&mut self) -> Value {
        let params = json!({"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "legacy-tests", "version": "1"}});
        let answer = self.request("initialize", params).await;
        let endpoint = self.endpoint.clone();
        let note = self.post_to(&endpoint, &json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        assert_eq!(note.status, 202, "{note:?}");
        answer
    }

    /// The next `message` event answering request `id` (others are skipped).
    pub async fn answer_to(&mut self, id: i64) -> Value {
        loop {
            let event = tokio::time::timeout(EVENT_WAIT, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no answer to request {id} on the stream"))
                .unwrap_or_else(|| panic!("the stream ended before answering request {id}"));
            let Ok(message) = serde_json::from_str::<Value>(&event.data) else { continue };
            if event.name == "message" && message.get("id") == Some(&json!(id)) {
                return message;
            }
        }
    }

    /// Whether the stream ends (rather than going on) within `within`, skipping events.
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, async { while self.events.recv().await.is_some() {} }).await.is_ok()
    }
}

/// The events of the stream, until it ends.
async fn read_events(mut response: reqwest::Response, sender: mpsc::UnboundedSender<Event>) {
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut event = Event { name: "message".into(), data: String::new() };
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event.name = name.trim().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                }
            }
            if data.is_empty() {
                continue; // a comment (keep-alive)
            }
            event.data = data.join("\n");
            if sender.send(event).is_err() {
                return;
            }
        }
    }
}
