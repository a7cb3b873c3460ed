//! The client's event stream (the answer to `GET /sse`): first the `endpoint` event naming
//! where to POST, then a `message` event for each message of the session, and a keep-alive
//! comment now and then so that proxies keep an idle stream open. The stream checks its
//! instance every [`LIVENESS_EVERY`] and ends when it was deleted; when the client goes away
//! the session ends here and upstream.

use super::super::{Gateway, sse};
use super::exchange;
use super::hub::LocalSession;
use bytes::Bytes;
use poem::{Body, Response};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often an open stream checks that its instance still exists: the gateway's one
/// interval for every open stream (a delete ends it within this, plus one lookup).
pub const LIVENESS_EVERY: Duration = super::super::LIVENESS_INTERVAL;
/// A keep-alive comment every this many liveness checks (15 s).
const KEEP_ALIVE_TICKS: u32 = 30;

/// The streaming answer for a new session.
pub fn respond(
    gateway: Gateway,
    session: Arc<LocalSession>,
    outbox: mpsc::Receiver<Value>,
    endpoint: String,
) -> Response {
    let mut liveness = tokio::time::interval(LIVENESS_EVERY);
    liveness.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = State { closing: Closing { gateway, session }, outbox, endpoint: Some(endpoint), liveness, ticks: 0 };
    let body = futures::stream::unfold(state, next_event);
    Response::builder()
        .content_type("text/event-stream")
        .header("cache-control", "no-cache, no-transform")
        .header("x-accel-buffering", "no")
        .body(Body::from_bytes_stream(body))
}

struct State {
    closing: Closing,
    outbox: mpsc::Receiver<Value>,
    /// The endpoint event, until it is sent.
    endpoint: Option<String>,
    liveness: tokio::time::Interval,
    ticks: u32,
}

type Chunk = Result<Bytes, std::io::Error>;

async fn next_event(mut state: State) -> Option<(Chunk, State)> {
    if let Some(endpoint) = state.endpoint.take() {
        return Some((Ok(Bytes::from(format!("event: endpoint\ndata: {endpoint}\n\n"))), state));
    }
    loop {
        tokio::select! {
            message = state.outbox.recv() => {
                let message = message?;
                return Some((Ok(Bytes::from(sse::event(&message))), state));
            }
            () = state.closing.session.ended.cancelled() => return None,
            _ = state.liveness.tick() => {
                state.ticks = state.ticks.wrapping_add(1);
                if !state.closing.instance_exists().await {
                    return None;
                }
                if state.ticks.is_multiple_of(KEEP_ALIVE_TICKS) {
                    return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), state));
                }
            }
        }
    }
}

/// Ends the session when the stream is dropped: the client left, or the stream ended.
struct Closing {
    gateway: Gateway,
    session: Arc<LocalSession>,
}

impl Closing {
    /// False once the instance is gone; a failed lookup (the database away) keeps the stream.
    async fn instance_exists(&self) -> bool {
        // The same test as the Streamable HTTP streams': only a URL that names nothing ends
        // it, not a database that fails meanwhile.
        !matches!(self.gateway.legacy_target(&self.session.scope).await, Err(e) if e.is_about_the_url())
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        self.gateway.inner.legacy.remove(self.session.key);
        self.session.ended.cancel();
        if self.session.has_upstream_session()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(exchange::end(self.gateway.clone(), self.session.clone()));
        }
    }
}
