//! One connection of this replica to an upstream that speaks only the legacy HTTP+SSE
//! transport: its event stream (a `GET` held open for the session's life), the endpoint that
//! stream announced, and the requests waiting for their answers on it.
//!
//! Every message the upstream sends comes on the one stream. An answer goes to the request
//! that waits for it (by JSON-RPC id); anything else (notifications, progress, the upstream's
//! own requests: sampling, elicitation, roots) goes to the client's open `GET` stream if it
//! has one, else to the newest request still waiting (whose stream is open), else nowhere.

use super::super::forward::{Forwarder, Outbound, SendFailure, Timeouts, Trust};
use super::super::session::Scope;
use super::super::sse::EventDecoder;
use super::super::upstreams::UpstreamTransport;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use poem::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::Value;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Messages waiting for a reader, per request or stream.
const QUEUE: usize = 64;
/// A connection no client has used for this long (and with no open stream) is closed.
pub const IDLE: Duration = Duration::from_secs(15 * 60);
/// How long the reader waits for room in a slow reader's queue before it drops a message.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

type Chunks = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

pub struct Connection {
    pub key: Uuid,
    pub scope: Scope,
    /// Where messages are POSTed (the stream's `endpoint` event, on the stream's origin).
    endpoint: url::Url,
    trust: Trust,
    timeouts: Timeouts,
    /// The credential and the server's own headers, as the last request of this replica
    /// carried them (a message relayed from another replica is sent with these: secrets do
    /// not travel between replicas).
    headers: Mutex<SentHeaders>,
    /// The requests waiting for their answer, oldest first: (id as JSON text, their queue).
    waiting: Mutex<Vec<(String, mpsc::Sender<Value>)>>,
    /// The client's own stream (its `GET`), while one is open.
    listener: Mutex<Option<mpsc::Sender<Value>>>,
    last_used: Mutex<Instant>,
    /// Fired when the connection ends: upstream closed, idle, deleted or the replica stops.
    pub ended: CancellationToken,
}

/// What a message POSTed to the upstream led to.
pub enum Posted {
    /// A notification or a response: the upstream took it.
    Accepted,
    /// A request: its answer (and whatever the upstream sends meanwhile) comes on this queue,
    /// which closes without the answer if the connection ends first.
    Answering(mpsc::Receiver<Value>),
    /// The upstream no longer knows the session (404): the connection is closed.
    Gone,
}

impl Connection {
    /// Opens the upstream's event stream as `out` says (its URL, credential and headers) and
    /// waits for its `endpoint` event; the connection, and the stream to hand to [`read`].
    pub async fn open(forwarder: &Forwarder, out: &Outbound, scope: Scope) -> Result<(Arc<Self>, Reader), SendFailure> {
        let failed = |problem: &str| SendFailure::Failed(problem.to_owned());
        let mut headers = HeaderMap::new();
        headers.insert("accept", HeaderValue::from_static("text/event-stream"));
        let get = Outbound {
            method: Method::GET,
            url: out.url.clone(),
            transport: UpstreamTransport::Sse,
            trust: out.trust,
            timeouts: out.timeouts,
            client_headers: headers,
            session: None,
            credential: out.credential.clone(),
            server_headers: out.server_headers.clone(),
            body: None,
        };
        let response = forwarder.send(get).await?;
        if !response.status().is_success() {
            return Err(SendFailure::Failed(format!("answered HTTP {} to its SSE GET", response.status().as_u16())));
        }
        let is_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        if !is_stream {
            return Err(failed("did not open an event stream at its SSE URL"));
        }
        let mut chunks: Chunks = Box::pin(response.bytes_stream());
        let mut decoder = EventDecoder::default();
        let announced = tokio::time::timeout(out.timeouts.message, async {
            while let Some(Ok(chunk)) = chunks.next().await {
                if let Some(event) =
                    decoder.feed_events(&chunk).into_iter().find(|e| e.name.as_deref() == Some("endpoint"))
                {
                    return Some(event.data);
                }
            }
            None
        })
        .await
        .map_err(|_| failed("did not announce its message endpoint in time"))?
        .ok_or_else(|| failed("ended its event stream without announcing a message endpoint"))?;
        let endpoint = endpoint_of(&out.url, announced.trim())?;
        let connection = Arc::new(Self {
            key: Uuid::new_v4(),
            scope,
            endpoint,
            trust: out.trust,
            timeouts: out.timeouts,
            headers: Mutex::new(SentHeaders::of(out)),
            waiting: Mutex::default(),
            listener: Mutex::default(),
            last_used: Mutex::new(Instant::now()),
            ended: CancellationToken::new(),
        });
        Ok((connection, Reader { chunks, decoder }))
    }

    /// POSTs one message (`request_id` when it is a request) to the endpoint.
    pub async fn post(
        &self,
        forwarder: &Forwarder,
        body: Bytes,
        request_id: Option<&Value>,
    ) -> Result<Posted, SendFailure> {
        self.touch();
        let answering = match request_id {
            Some(id) => Some(self.wait_for(id)?),
            None => None,
        };
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let SentHeaders { credential, server_headers } = self.headers.lock().expect("not poisoned").clone();
        let post = Outbound {
            method: Method::POST,
            url: self.endpoint.clone(),
            transport: UpstreamTransport::Sse,
            trust: self.trust,
            timeouts: self.timeouts,
            client_headers: headers,
            session: None,
            credential,
            server_headers,
            body: Some(body),
        };
        let sent = forwarder.send(post).await;
        let status = match sent {
            Ok(response) => response.status(),
            Err(failure) => {
                self.stop_waiting(request_id);
                return Err(failure);
            }
        };
        if status == StatusCode::NOT_FOUND {
            self.ended.cancel();
            return Ok(Posted::Gone);
        }
        if !status.is_success() {
            self.stop_waiting(request_id);
            return Err(SendFailure::Failed(format!("answered HTTP {} to a message", status.as_u16())));
        }
        Ok(answering.map_or(Posted::Accepted, Posted::Answering))
    }

    /// The headers of a request of this replica: kept for the messages relayed to it later.
    pub fn renew_headers(&self, out: &Outbound) {
        *self.headers.lock().expect("not poisoned") = SentHeaders::of(out);
        self.touch();
    }

    /// The client's stream: the upstream's messages that answer no request, from now on.
    pub fn listen(&self) -> mpsc::Receiver<Value> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        *self.listener.lock().expect("not poisoned") = Some(sender);
        self.touch();
        receiver
    }

    /// Whether no client used the connection for [`IDLE`] and none listens.
    fn is_idle(&self) -> bool {
        let listening = self.listener.lock().expect("not poisoned").as_ref().is_some_and(|l| !l.is_closed());
        !listening && self.last_used.lock().expect("not poisoned").elapsed() >= IDLE
    }

    fn touch(&self) {
        *self.last_used.lock().expect("not poisoned") = Instant::now();
    }

    /// A queue for the answer to request `id`; a second request with an id still waiting is
    /// refused (its answer could not be told apart).
    fn wait_for(&self, id: &Value) -> Result<mpsc::Receiver<Value>, SendFailure> {
        let key = id.to_string();
        let mut waiting = self.waiting.lock().expect("not poisoned");
        waiting.retain(|(_, queue)| !queue.is_closed());
        if waiting.iter().any(|(waiting, _)| *waiting == key) {
            return Err(SendFailure::Failed(format!("already has a request {key} of this session running")));
        }
        let (sender, receiver) = mpsc::channel(QUEUE);
        waiting.push((key, sender));
        Ok(receiver)
    }

    fn stop_waiting(&self, id: Option<&Value>) {
        if let Some(id) = id {
            let key = id.to_string();
            self.waiting.lock().expect("not poisoned").retain(|(waiting, _)| *waiting != key);
        }
    }

    /// Where one message from the upstream goes (see the module's doc).
    fn queue_for(&self, message: &Value) -> Option<mpsc::Sender<Value>> {
        let is_answer = message.get("method").is_none() && message.get("id").is_some();
        let mut waiting = self.waiting.lock().expect("not poisoned");
        if is_answer {
            let key = message.get("id").map(Value::to_string).unwrap_or_default();
            let at = waiting.iter().position(|(waiting, _)| *waiting == key)?;
            return Some(waiting.remove(at).1);
        }
        let listener = self.listener.lock().expect("not poisoned").clone().filter(|l| !l.is_closed());
        listener.or_else(|| waiting.iter().rev().find(|(_, queue)| !queue.is_closed()).map(|(_, q)| q.clone()))
    }

    /// Ends the connection: every waiting request's queue closes, and the stream is dropped.
    fn close(&self) {
        self.ended.cancel();
        self.waiting.lock().expect("not poisoned").clear();
        self.listener.lock().expect("not poisoned").take();
    }
}

/// The rest of the upstream's event stream, after its `endpoint` event.
pub struct Reader {
    chunks: Chunks,
    decoder: EventDecoder,
}

/// Reads the upstream's stream until it ends, the connection is idle, or it is ended; passes
/// each message where it goes. Then the connection is closed.
pub async fn read(connection: Arc<Connection>, mut reader: Reader) {
    let mut idle_check = tokio::time::interval(IDLE / 15);
    loop {
        let chunk = tokio::select! {
            chunk = reader.chunks.next() => chunk,
            () = connection.ended.cancelled() => break,
            _ = idle_check.tick() => {
                if connection.is_idle() {
                    tracing::debug!("an idle connection to an SSE upstream is closed");
                    break;
                }
                continue;
            }
        };
        let Some(Ok(chunk)) = chunk else {
            tracing::info!("an SSE upstream ended its event stream");
            break;
        };
        for message in reader.decoder.feed(&chunk) {
            let Some(queue) = connection.queue_for(&message) else {
                tracing::debug!("an SSE upstream's message had nowhere to go");
                continue;
            };
            if tokio::time::timeout(PUSH_TIMEOUT, queue.send(message)).await.is_err() {
                tracing::info!("a client of an SSE upstream read too slowly; a message was dropped");
            }
        }
    }
    connection.close();
}

/// The headers a message goes with (marked sensitive when sent).
#[derive(Clone)]
struct SentHeaders {
    credential: Option<(HeaderName, HeaderValue)>,
    server_headers: Vec<(HeaderName, HeaderValue)>,
}

impl SentHeaders {
    fn of(out: &Outbound) -> Self {
        Self { credential: out.credential.clone(), server_headers: out.server_headers.clone() }
    }
}

/// The announced endpoint, resolved against the stream's URL; only on the stream's own origin
/// (as the official clients require): an upstream cannot send the user's credential elsewhere.
fn endpoint_of(stream_url: &url::Url, announced: &str) -> Result<url::Url, SendFailure> {
    let endpoint = stream_url
        .join(announced)
        .map_err(|_| SendFailure::Failed("announced a message endpoint that is not a URL".into()))?;
    if endpoint.origin() != stream_url.origin() {
        return Err(SendFailure::Failed("announced a message endpoint on another origin".into()));
    }
    Ok(endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn connection() -> Connection {
        Connection {
            key: Uuid::new_v4(),
            scope: Scope::Instance(events::InstanceId::random()),
            endpoint: url::Url::parse("http://127.0.0.1:9/messages/").unwrap(),
            trust: Trust::Operator,
            timeouts: Timeouts::gateway(Duration::from_secs(1)),
            headers: Mutex::new(SentHeaders { credential: None, server_headers: Vec::new() }),
            waiting: Mutex::default(),
            listener: Mutex::default(),
            last_used: Mutex::new(Instant::now()),
            ended: CancellationToken::new(),
        }
    }

    #[tokio::test]
    async fn answers_go_to_their_request_and_other_messages_to_the_clients_stream_else_the_newest_request() {
        let connection = connection();
        let mut first = connection.wait_for(&json!(1)).unwrap();
        let mut second = connection.wait_for(&json!("two")).unwrap();
        assert!(connection.wait_for(&json!(1)).is_err(), "an id still waiting is not taken twice");
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress"});

        connection.queue_for(&progress).unwrap().send(progress.clone()).await.unwrap();
        assert_eq!(second.recv().await.unwrap(), progress, "no client stream: the newest request's");
        let mut stream = connection.listen();
        let sampling = json!({"jsonrpc": "2.0", "id": 5, "method": "sampling/createMessage"});
        connection.queue_for(&sampling).unwrap().send(sampling.clone()).await.unwrap();
        assert_eq!(stream.recv().await.unwrap(), sampling, "the client's stream, once open");

        let answer = json!({"jsonrpc": "2.0", "id": 1, "result": {}});
        connection.queue_for(&answer).unwrap().send(answer.clone()).await.unwrap();
        assert_eq!(first.recv().await.unwrap(), answer);
        assert!(connection.queue_for(&answer).is_none(), "an answer goes once, to its request only");
        assert!(connection.queue_for(&json!({"jsonrpc": "2.0", "id": 9, "result": {}})).is_none(), "no such request");

        connection.close();
        assert!(second.recv().await.is_none(), "a connection that ends closes what still waits");
    }

    #[test]
    fn an_endpoint_resolves_against_the_stream_and_stays_on_its_origin() {
        let stream = url::Url::parse("http://127.0.0.1:9911/hn/sse").unwrap();
        let relative = endpoint_of(&stream, "/messages/?session_id=ab").unwrap();
        assert_eq!(relative.as_str(), "http://127.0.0.1:9911/messages/?session_id=ab");
        assert!(endpoint_of(&stream, "http://127.0.0.1:9911/m").is_ok());
        for elsewhere in ["http://evil.example/m", "https://127.0.0.1:9911/m", "http://127.0.0.1:9912/m"] {
            assert!(endpoint_of(&stream, elsewhere).is_err(), "{elsewhere}");
        }
    }
}
