//! The hop to the upstream: the request as the upstream gets it (only the MCP headers of the
//! client, plus the instance's credential), and the answer relayed back: streamed when it is
//! a stream, read in full (bounded) when it is one JSON message or must be rewritten. Every
//! wait is bounded by the gateway's timeout; a failure is a problem to report, not a panic or
//! an HTML page.

use super::sse;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use poem::http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// The client's headers that reach the upstream (and those named `Mcp-Param-*`, the tool
/// parameters 2026-07-28 mirrors into headers). Everything else stays here: `Authorization`,
/// `x-api-key`, `x-user-api-key` and `Cookie` above all (no token passthrough).
const PASSED_HEADERS: [&str; 6] =
    ["accept", "content-type", "mcp-protocol-version", "last-event-id", "mcp-method", "mcp-name"];
const PASSED_PREFIX: &str = "mcp-param-";
pub const SESSION_HEADER: &str = "mcp-session-id";
/// The largest JSON answer (or rewritten stream) read into memory.
pub const MAX_ANSWER_BYTES: usize = 16 << 20;

#[derive(Clone)]
pub struct Forwarder {
    client: reqwest::Client,
    pub timeout: Duration,
}

/// A request as it goes upstream.
pub struct Outbound {
    pub method: Method,
    pub url: url::Url,
    pub client_headers: HeaderMap,
    /// The upstream's own session id.
    pub session: Option<String>,
    /// The credential header, marked sensitive (never logged).
    pub credential: Option<(HeaderName, HeaderValue)>,
    pub body: Option<Bytes>,
}

/// What the upstream answered, as far as the gateway cares.
pub enum Kind {
    /// `text/event-stream`.
    Stream,
    Json,
    /// No body (202 for a notification, 200/204 for a DELETE).
    Empty,
    Other,
}

impl Forwarder {
    pub fn new(timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .expect("the gateway's HTTP client builds");
        Self { client, timeout }
    }

    /// Sends the request; waits at most the timeout for the answer's head.
    pub async fn send(&self, out: Outbound) -> Result<reqwest::Response, String> {
        let mut request = self.client.request(out.method, out.url);
        for (name, value) in &out.client_headers {
            if PASSED_HEADERS.contains(&name.as_str()) || name.as_str().starts_with(PASSED_PREFIX) {
                request = request.header(name, value);
            }
        }
        if !out.client_headers.contains_key("accept") {
            request = request.header("accept", "application/json, text/event-stream");
        }
        if let Some(session) = out.session {
            request = request.header(SESSION_HEADER, session);
        }
        if let Some((name, mut value)) = out.credential {
            value.set_sensitive(true);
            request = request.header(name, value);
        }
        if let Some(body) = out.body {
            request = request.body(body);
        }
        match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => Err(format!("did not answer within {} s", self.timeout.as_secs())),
            Ok(Err(e)) if e.is_connect() => Err("is unreachable".into()),
            Ok(Err(e)) if e.is_timeout() => Err(format!("did not answer within {} s", self.timeout.as_secs())),
            Ok(Err(_)) => Err("failed while answering".into()),
            Ok(Ok(response)) => Ok(response),
        }
    }
}

pub fn kind(response: &reqwest::Response) -> Kind {
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    // A 202 (a notification accepted) may still carry a JSON content type, with no body.
    if response.status() == 202 || response.status() == 204 || response.content_length() == Some(0) {
        return Kind::Empty;
    }
    match content_type.as_deref() {
        Some("text/event-stream") => Kind::Stream,
        Some("application/json") => Kind::Json,
        None => Kind::Empty,
        Some(_) => Kind::Other,
    }
}

/// The whole body, by `deadline` and within [`MAX_ANSWER_BYTES`].
pub async fn read_all(response: reqwest::Response, deadline: Instant) -> Result<Bytes, String> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    loop {
        match tokio::time::timeout_at(deadline, chunks.next()).await {
            Err(_) => return Err("did not finish its answer in time".into()),
            Ok(None) => return Ok(body.into()),
            Ok(Some(Err(_))) => return Err("broke off its answer".into()),
            Ok(Some(Ok(chunk))) => {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(format!("answered more than {MAX_ANSWER_BYTES} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
        }
    }
}

/// A JSON answer, checked to be one JSON value.
pub fn json_answer(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|_| "answered something that is not JSON".into())
}

/// Relays an upstream stream chunk by chunk. With a `deadline` (a POST's stream, which ends
/// with its answer), a stream still open then, or one that breaks off, ends with a JSON-RPC
/// error event for `request_id` (a terminated partial event first).
pub fn relay_stream(
    response: reqwest::Response,
    deadline: Option<Instant>,
    on_failure: impl Fn(String) -> Option<Value> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    struct State<S, F> {
        chunks: S,
        deadline: Option<Instant>,
        on_failure: F,
        done: bool,
    }
    let state = State { chunks: Box::pin(response.bytes_stream()), deadline, on_failure, done: false };
    futures::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        let next = match state.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, state.chunks.next()).await.map_err(|_| ()),
            None => Ok(state.chunks.next().await),
        };
        let problem = match next {
            Ok(None) => return None,
            Ok(Some(Ok(chunk))) => return Some((Ok(chunk), state)),
            Ok(Some(Err(_))) => "broke off its answer".to_owned(),
            Err(()) => "did not finish its answer in time".to_owned(),
        };
        state.done = true;
        let message = (state.on_failure)(problem)?;
        Some((Ok(Bytes::from(format!("\n\n{}", sse::event(&message)))), state))
    })
}
