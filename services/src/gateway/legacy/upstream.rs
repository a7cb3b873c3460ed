//! Upstreams that speak only the legacy HTTP+SSE transport (an `sse_url` in the upstreams
//! file, a GAIA server of transport `sse`), seen by the rest of the gateway as Streamable HTTP
//! ones: [`Gateway::send_over_sse`] takes a request as it would go to a Streamable HTTP
//! endpoint and answers as such an endpoint would, so that sessions, policy, fan-out and the
//! record work unchanged.
//!
//! - A POST without a session opens a [`Connection`] (the upstream's event stream) on this
//!   replica; the answer carries the session id `sse:<replica>:<key>`, which the gateway seals
//!   with the URL's scope like any upstream session id.
//! - A request's answer is an event stream: whatever the upstream sends meanwhile, then the
//!   answer. A notification or a response is answered 202.
//! - A GET is the client's own stream (the upstream's messages that answer no request).
//! - A DELETE closes the connection.
//! - On another replica, a POST or DELETE is relayed to the owner over NATS (see
//!   [`super::replicas`]) and its answer comes back whole; a GET there is answered 405 (the
//!   spec's "no stream here"), and the upstream's messages go on the POSTs' streams instead.
//!   The owner sends relayed messages with the credential of the last request it served
//!   itself: secrets do not travel between replicas.
//!
//! The upstream's session is its connection: it ends when the owner stops or the upstream
//! closes the stream, and the client's next request is a 404 (it starts a new session).

use super::super::Gateway;
use super::super::forward::{Outbound, SendFailure};
use super::super::session::Scope;
use super::super::sse;
use super::connection::{self, Connection, Posted};
use bytes::Bytes;
use poem::http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

const SESSION_PREFIX: &str = "sse";

/// Where an upstream session of the legacy transport lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAddress {
    pub owner: String,
    pub key: Uuid,
}

impl SessionAddress {
    fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.splitn(3, ':');
        (parts.next()? == SESSION_PREFIX).then_some(())?;
        let owner = parts.next()?.to_owned();
        let key = parts.next()?.parse().ok()?;
        Some(Self { owner, key })
    }

    fn session_id(&self) -> String {
        format!("{SESSION_PREFIX}:{}:{}", self.owner, self.key)
    }
}

/// A message for a connection of another replica.
#[derive(Serialize, Deserialize)]
pub struct Relayed {
    key: Uuid,
    scope: Scope,
    /// `POST` or `DELETE`.
    method: String,
    message: Option<String>,
    /// How long the owner waits for the answer.
    wait_ms: u64,
}

/// What the owner did with it.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Reply {
    /// Every message the request's stream carried, the answer last.
    Answered(Vec<Value>),
    Accepted,
    Ended,
    NotFound,
    Failed(String),
}

impl Gateway {
    /// Sends `out` to an upstream of the legacy transport, answering as a Streamable HTTP
    /// endpoint would.
    pub(in super::super) async fn send_over_sse(
        &self,
        scope: &Scope,
        out: Outbound,
    ) -> Result<reqwest::Response, SendFailure> {
        let Some(raw) = out.session.as_deref() else {
            return match out.method {
                Method::POST => self.open_over_sse(scope, out).await,
                Method::DELETE => Ok(status(StatusCode::OK)),
                _ => Ok(no_stream()),
            };
        };
        let Some(address) = SessionAddress::parse(raw) else { return Ok(status(StatusCode::NOT_FOUND)) };
        if address.owner != self.inner.legacy.replica() {
            return self.relay_over_sse(&address, scope, out).await;
        }
        let Some(connection) = self.inner.legacy.connection(address.key, scope) else {
            return Ok(status(StatusCode::NOT_FOUND));
        };
        connection.renew_headers(&out);
        match out.method {
            Method::GET => Ok(stream(StatusCode::OK, None, answers(connection.listen(), None))),
            Method::DELETE => {
                connection.ended.cancel();
                Ok(status(StatusCode::OK))
            }
            _ => self.post_over_sse(&connection, out.body.unwrap_or_default(), None).await,
        }
    }

    /// A new connection for a session's first message, and that message's answer with the
    /// session's id.
    async fn open_over_sse(&self, scope: &Scope, out: Outbound) -> Result<reqwest::Response, SendFailure> {
        let body = out.body.clone().unwrap_or_default();
        if method_of(&body).as_deref() != Some("initialize") {
            // A connection per sessionless request would be a connection nobody ends.
            return Ok(session_required(request_id_of(&body)));
        }
        let (connection, reader) = Connection::open(&self.inner.forwarder, &out, scope.clone()).await?;
        let hub = self.inner.legacy.clone();
        hub.add_connection(connection.clone());
        let key = connection.key;
        tokio::spawn({
            let connection = connection.clone();
            async move {
                connection::read(connection, reader).await;
                hub.remove_connection(key);
            }
        });
        let address = SessionAddress { owner: self.inner.legacy.replica().to_owned(), key };
        let answer = self.post_over_sse(&connection, out.body.unwrap_or_default(), Some(address.session_id())).await;
        if answer.is_err() {
            connection.ended.cancel();
        }
        answer
    }

    /// POSTs a message on a connection of this replica; its answer as Streamable HTTP gives it.
    async fn post_over_sse(
        &self,
        connection: &Connection,
        body: Bytes,
        session: Option<String>,
    ) -> Result<reqwest::Response, SendFailure> {
        let request_id = request_id_of(&body);
        Ok(match connection.post(&self.inner.forwarder, body, request_id.as_ref()).await? {
            Posted::Accepted => with_session(status(StatusCode::ACCEPTED), session),
            Posted::Gone => status(StatusCode::NOT_FOUND),
            Posted::Answering(queue) => stream(StatusCode::OK, session, answers(queue, request_id)),
        })
    }

    /// On the owner: one relayed message, and what came of it (within its wait).
    pub(super) async fn answer_relayed(&self, relayed: Relayed) -> Reply {
        let Some(connection) = self.inner.legacy.connection(relayed.key, &relayed.scope) else {
            return Reply::NotFound;
        };
        if relayed.method == Method::DELETE.as_str() {
            connection.ended.cancel();
            return Reply::Ended;
        }
        let body = Bytes::from(relayed.message.unwrap_or_default());
        let request_id = request_id_of(&body);
        let posted = match connection.post(&self.inner.forwarder, body, request_id.as_ref()).await {
            Ok(posted) => posted,
            Err(SendFailure::Failed(problem) | SendFailure::Refused(problem)) => return Reply::Failed(problem),
        };
        match posted {
            Posted::Accepted => Reply::Accepted,
            Posted::Gone => Reply::NotFound,
            Posted::Answering(queue) => collect(queue, request_id, Duration::from_millis(relayed.wait_ms)).await,
        }
    }

    /// On another replica: the message goes to the connection's owner.
    async fn relay_over_sse(
        &self,
        address: &SessionAddress,
        scope: &Scope,
        out: Outbound,
    ) -> Result<reqwest::Response, SendFailure> {
        if out.method == Method::GET {
            return Ok(no_stream());
        }
        let wait = out.timeouts.total;
        let relayed = Relayed {
            key: address.key,
            scope: scope.clone(),
            method: out.method.as_str().to_owned(),
            message: out.body.map(|body| String::from_utf8_lossy(&body).into_owned()),
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        };
        let reply = self.relay_to_connection_owner(&address.owner, relayed, wait).await?;
        Ok(match reply {
            Reply::Answered(messages) => {
                let text: String = messages.iter().map(sse::event).collect();
                let mut answer = poem::http::Response::builder().status(StatusCode::OK);
                answer = answer.header("content-type", "text/event-stream");
                answer.body(reqwest::Body::from(text)).expect("a valid answer").into()
            }
            Reply::Accepted => status(StatusCode::ACCEPTED),
            Reply::Ended => status(StatusCode::OK),
            Reply::NotFound => status(StatusCode::NOT_FOUND),
            Reply::Failed(problem) => return Err(SendFailure::Failed(problem)),
        })
    }
}

fn method_of(body: &[u8]) -> Option<String> {
    let message: Value = serde_json::from_slice(body).ok()?;
    message.get("method")?.as_str().map(str::to_owned)
}

/// Streamable HTTP's answer to a sessionless request where a session is needed (400).
fn session_required(request_id: Option<Value>) -> reqwest::Response {
    let error = serde_json::json!({
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {"code": -32600, "message": "this upstream speaks the legacy HTTP+SSE transport and needs a session: send initialize first"},
    });
    let answer =
        poem::http::Response::builder().status(StatusCode::BAD_REQUEST).header("content-type", "application/json");
    answer.body(reqwest::Body::from(error.to_string())).expect("a valid answer").into()
}

/// A request's id (a message with a method and an id); none for notifications and responses.
fn request_id_of(body: &[u8]) -> Option<Value> {
    let message: Value = serde_json::from_slice(body).ok()?;
    message.get("method")?;
    message.get("id").cloned()
}

fn is_answer_to(message: &Value, id: &Value) -> bool {
    message.get("method").is_none() && message.get("id") == Some(id)
}

/// A queue's messages as events; with `request_id`, ended by its answer (an error if the
/// queue closes first: the connection ended).
fn answers(
    queue: mpsc::Receiver<Value>,
    request_id: Option<Value>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::unfold((queue, false), move |(mut queue, answered)| {
        let request_id = request_id.clone();
        async move {
            if answered {
                return None;
            }
            match queue.recv().await {
                Some(message) => {
                    let last = request_id.as_ref().is_some_and(|id| is_answer_to(&message, id));
                    Some((Ok(Bytes::from(sse::event(&message))), (queue, last)))
                }
                None if request_id.is_some() => {
                    let ended = std::io::Error::other("the upstream's event stream ended before the answer");
                    Some((Err(ended), (queue, true)))
                }
                None => None,
            }
        }
    })
}

/// A relayed request's messages until its answer, within `wait`.
async fn collect(mut queue: mpsc::Receiver<Value>, request_id: Option<Value>, wait: Duration) -> Reply {
    let mut messages = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, queue.recv()).await {
            Err(_) => return Reply::Failed("did not finish its answer in time".into()),
            Ok(None) => return Reply::Failed("ended its event stream before the answer".into()),
            Ok(Some(message)) => {
                let last = request_id.as_ref().is_some_and(|id| is_answer_to(&message, id));
                messages.push(message);
                if last {
                    return Reply::Answered(messages);
                }
            }
        }
    }
}

fn status(status: StatusCode) -> reqwest::Response {
    poem::http::Response::builder().status(status).body(reqwest::Body::from(Vec::new())).expect("a valid answer").into()
}

/// "No stream at this URL" (Streamable HTTP's answer to a GET it does not serve).
fn no_stream() -> reqwest::Response {
    let answer = poem::http::Response::builder().status(StatusCode::METHOD_NOT_ALLOWED).header("allow", "POST, DELETE");
    answer.body(reqwest::Body::from(Vec::new())).expect("a valid answer").into()
}

fn with_session(answer: reqwest::Response, session: Option<String>) -> reqwest::Response {
    let mut answer: poem::http::Response<reqwest::Body> = answer.into();
    if let Some(value) = session.and_then(|s| poem::http::HeaderValue::from_str(&s).ok()) {
        answer.headers_mut().insert(super::super::forward::SESSION_HEADER, value);
    }
    answer.into()
}

fn stream(
    status: StatusCode,
    session: Option<String>,
    events: impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> reqwest::Response {
    let mut answer = poem::http::Response::builder().status(status).header("content-type", "text/event-stream");
    if let Some(session) = session {
        answer = answer.header(super::super::forward::SESSION_HEADER, session);
    }
    answer.body(reqwest::Body::wrap_stream(events)).expect("a valid answer").into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_session_id_names_its_owner_and_key_and_nothing_else_parses() {
        let address = SessionAddress { owner: "r1".into(), key: Uuid::new_v4() };
        assert_eq!(SessionAddress::parse(&address.session_id()), Some(address));
        for other in
            ["", "sse", "sse:r1", "sse:r1:not-a-uuid", "abc123", "http:r1:00000000-0000-0000-0000-000000000000"]
        {
            assert_eq!(SessionAddress::parse(other), None, "{other}");
        }
    }

    #[tokio::test]
    async fn a_requests_stream_ends_with_its_answer_and_breaks_off_if_the_connection_ends() {
        use futures::StreamExt;
        let (sender, queue) = mpsc::channel(4);
        sender.send(json!({"jsonrpc": "2.0", "method": "notifications/progress"})).await.unwrap();
        sender.send(json!({"jsonrpc": "2.0", "id": 7, "result": {}})).await.unwrap();
        sender.send(json!({"jsonrpc": "2.0", "id": 8, "result": {}})).await.unwrap();
        let events: Vec<_> = answers(queue, Some(json!(7))).collect().await;
        assert_eq!(events.len(), 2, "the progress, then the answer; nothing after it");
        let (sender, queue) = mpsc::channel(4);
        drop(sender);
        let events: Vec<_> = answers(queue, Some(json!(7))).collect().await;
        assert!(events.len() == 1 && events[0].is_err(), "no answer: the stream breaks off");
        assert_eq!(request_id_of(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#), Some(json!(1)));
        assert_eq!(request_id_of(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#), None, "a response");
        assert_eq!(request_id_of(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#), None);
    }
}
