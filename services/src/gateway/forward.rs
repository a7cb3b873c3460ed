//! The hop to the upstream: the request as the upstream gets it (only the MCP headers of the
//! client, plus the target's credential and a registered server's own headers), and the answer
//! relayed back: streamed when it is a stream, read in full (bounded) when it is one JSON
//! message or must be rewritten. Every wait is bounded by the gateway's timeout or the
//! registered server's own ([`Timeouts`]); a failure is a problem to report, not a panic or an
//! HTML page. URLs a project registered go through the outbound address policy (SSRF).

use super::message::MAX_ANSWER_BYTES;
use super::sse;
use super::upstreams::UpstreamTransport;
use crate::outbound::{self, AddressPolicy};
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

/// The two clients the gateway forwards with: one for the operator's upstreams file (trusted:
/// any address), one for the URLs projects registered (only where the outbound address policy
/// allows, judged on the address actually connected to; the same policy as
/// [`crate::outbound::Outbound`]'s). With `allow_private` both are the trusted one.
#[derive(Clone)]
pub struct Forwarder {
    trusted: reqwest::Client,
    /// None: registered URLs are trusted too (`PROVISIONER_GATEWAY_ALLOW_PRIVATE=true`).
    guarded: Option<reqwest::Client>,
}

/// Where the URL of a request came from, and so which client sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The operator's upstreams file.
    Operator,
    /// A project registered it: checked against the address policy.
    Registered,
}

/// The registered URLs' address policy: public addresses only (loopback included in the
/// refusal: the gateway's own host is not an upstream).
const POLICY: AddressPolicy = AddressPolicy { allow_loopback: false };

/// A request as it goes upstream.
pub struct Outbound {
    pub method: Method,
    pub url: url::Url,
    /// Streamable HTTP goes straight out ([`Forwarder::send`]); the legacy transport through
    /// this replica's connection to the upstream's event stream.
    pub transport: UpstreamTransport,
    pub trust: Trust,
    pub timeouts: Timeouts,
    pub client_headers: HeaderMap,
    /// The upstream's own session id.
    pub session: Option<String>,
    /// The credential header, marked sensitive (never logged).
    pub credential: Option<(HeaderName, HeaderValue)>,
    /// The registered server's own headers (custom headers, proxy token), marked sensitive.
    pub server_headers: Vec<(HeaderName, HeaderValue)>,
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

/// Why a request got no answer.
#[derive(Debug)]
pub enum SendFailure {
    /// The URL's address is outside the policy: what it is, naming the address class.
    Refused(String),
    /// Unreachable, timed out, broken: what happened.
    Failed(String),
}

/// How long an upstream may take with its answer to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For the head of the answer, and between two of its chunks.
    pub message: Duration,
    /// For the whole answer to a POST.
    pub total: Duration,
    /// They are the server's own (`requestTimeout`, `maxTotalTimeout`), named in errors.
    pub own: bool,
}

impl Timeouts {
    /// The gateway's one timeout for the whole answer.
    pub fn gateway(timeout: Duration) -> Self {
        Self { message: timeout, total: timeout, own: false }
    }

    /// A registered server's `requestTimeout` and `maxTotalTimeout`.
    pub fn server(request: Duration, total: Duration) -> Self {
        Self { message: request, total: total.max(request), own: true }
    }

    fn no_answer(&self) -> String {
        if self.own {
            format!("did not answer within its requestTimeout ({} ms)", self.message.as_millis())
        } else {
            format!("did not answer within {} s", self.message.as_secs())
        }
    }
}

/// The deadlines of one answer: the next chunk is due within the message timeout, and all of
/// it by the total one.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    timeouts: Timeouts,
    end: Instant,
}

impl Deadline {
    pub fn start(timeouts: Timeouts) -> Self {
        Self { timeouts, end: Instant::now() + timeouts.total }
    }

    /// When the next chunk is due.
    fn next(&self) -> Instant {
        (Instant::now() + self.timeouts.message).min(self.end)
    }

    /// What a missed deadline is reported as.
    fn missed(&self) -> String {
        let t = self.timeouts;
        if !t.own {
            "did not finish its answer in time".into()
        } else if Instant::now() >= self.end {
            format!("did not finish its answer within its maxTotalTimeout ({} ms)", t.total.as_millis())
        } else {
            format!("sent nothing more within its requestTimeout ({} ms)", t.message.as_millis())
        }
    }
}

impl Forwarder {
    /// `connect_timeout` bounds a connection; `allow_private` trusts registered URLs too.
    pub fn new(connect_timeout: Duration, allow_private: bool) -> Self {
        let build = |builder: reqwest::ClientBuilder| {
            builder.connect_timeout(connect_timeout).build().expect("the gateway's HTTP client builds")
        };
        let trusted = build(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy());
        let guarded = (!allow_private).then(|| build(outbound::guarded_client(POLICY)));
        Self { trusted, guarded }
    }

    /// Sends the request; waits at most the message timeout for the answer's head.
    pub async fn send(&self, out: Outbound) -> Result<reqwest::Response, SendFailure> {
        let client = match (out.trust, &self.guarded) {
            (Trust::Registered, Some(guarded)) => {
                outbound::check_literal_host(POLICY, &out.url).map_err(|e| SendFailure::Refused(e.to_string()))?;
                guarded
            }
            _ => &self.trusted,
        };
        let timeouts = out.timeouts;
        let mut request = client.request(out.method, out.url);
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
        for (name, mut value) in out.server_headers.into_iter().chain(out.credential) {
            value.set_sensitive(true);
            request = request.header(name, value);
        }
        if let Some(body) = out.body {
            request = request.body(body);
        }
        let failed = |problem: String| SendFailure::Failed(problem);
        match tokio::time::timeout(timeouts.message, request.send()).await {
            Err(_) => Err(failed(timeouts.no_answer())),
            Ok(Err(e)) => Err(match outbound::refusal_of(&e) {
                Some(refused) => SendFailure::Refused(refused.to_string()),
                None if e.is_connect() => failed("is unreachable".into()),
                None if e.is_timeout() => failed(timeouts.no_answer()),
                None => failed("failed while answering".into()),
            }),
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
pub async fn read_all(response: reqwest::Response, deadline: Deadline) -> Result<Bytes, String> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    loop {
        match tokio::time::timeout_at(deadline.next(), chunks.next()).await {
            Err(_) => return Err(deadline.missed()),
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
/// with its answer), a stream that misses it, or one that breaks off, ends with a JSON-RPC
/// error event for `request_id` (a terminated partial event first).
pub fn relay_stream(
    response: reqwest::Response,
    deadline: Option<Deadline>,
    on_failure: impl Fn(String) -> Option<Value> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    struct State<S, F> {
        chunks: S,
        deadline: Option<Deadline>,
        on_failure: F,
        done: bool,
    }
    let state = State { chunks: Box::pin(response.bytes_stream()), deadline, on_failure, done: false };
    futures::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        let next = match state.deadline {
            Some(deadline) => {
                tokio::time::timeout_at(deadline.next(), state.chunks.next()).await.map_err(|_| deadline.missed())
            }
            None => Ok(state.chunks.next().await),
        };
        let problem = match next {
            Ok(None) => return None,
            Ok(Some(Ok(chunk))) => return Some((Ok(chunk), state)),
            Ok(Some(Err(_))) => "broke off its answer".to_owned(),
            Err(missed) => missed,
        };
        state.done = true;
        let message = (state.on_failure)(problem)?;
        Some((Ok(Bytes::from(format!("\n\n{}", sse::event(&message)))), state))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missed_timeout_names_the_servers_own_setting_and_keeps_the_gateways_wording() {
        let own = Timeouts::server(Duration::from_millis(1500), Duration::from_millis(60_000));
        assert_eq!(own.no_answer(), "did not answer within its requestTimeout (1500 ms)");
        let waiting = Deadline::start(own);
        assert_eq!(waiting.missed(), "sent nothing more within its requestTimeout (1500 ms)");
        let over = Deadline { timeouts: own, end: Instant::now() };
        assert_eq!(over.missed(), "did not finish its answer within its maxTotalTimeout (60000 ms)");
        assert!(waiting.next() <= waiting.end && over.next() <= over.end, "never past the total");

        let gateway = Timeouts::gateway(Duration::from_secs(30));
        assert_eq!(gateway.no_answer(), "did not answer within 30 s");
        assert_eq!(Deadline::start(gateway).missed(), "did not finish its answer in time");
        let short_total = Timeouts::server(Duration::from_millis(500), Duration::from_millis(100));
        assert_eq!(short_total.total, Duration::from_millis(500), "the total is never shorter than a message");
    }
}
