//! The owner's side of a legacy session: each client message goes through the gateway's own
//! Streamable HTTP path ([`Gateway::serve`]: the same credential, policy and errors), as a
//! Streamable HTTP client of the gateway would send it, and whatever comes back (the answer,
//! progress, the upstream's requests) goes onto the client's event stream. The upstream's own
//! stream (its GET) is relayed there too, from the client's `notifications/initialized` on.

use super::super::message::MAX_ANSWER_BYTES;
use super::super::message::Message;
use super::super::sse::EventDecoder;
use super::super::{Gateway, GatewayError, Target};
use super::hub::LocalSession;
use bytes::Bytes;
use futures::StreamExt;
use poem::Response;
use poem::http::Method;
use serde_json::Value;
use std::sync::Arc;

/// One client message, forwarded; its answers pushed to the session's stream.
pub async fn forward(gateway: Gateway, session: Arc<LocalSession>, target: Target, message: Message, body: Bytes) {
    let incoming = session.incoming(Method::POST, Some(body));
    let request_id = message.request_id().cloned();
    let is_initialize = message.method() == Some("initialize");
    match gateway.serve(&incoming, &target, Some(&message)).await {
        Ok(response) => {
            session.learn_session(response.headers());
            pump(response, &session, |answer| {
                if is_initialize && answer.get("id") == request_id.as_ref() {
                    session.learn_version(answer);
                }
            })
            .await;
        }
        Err(e) => {
            tracing::info!(code = e.code(), "gateway refused or failed a legacy message");
            if request_id.is_some() {
                session.push(e.message(request_id.as_ref())).await;
            }
            if e == GatewayError::SessionNotFound {
                // The upstream forgot the session: the client must start a new one.
                session.ended.cancel();
            }
        }
    }
    if message.method() == Some("notifications/initialized") && session.start_listening() {
        tokio::spawn(listen(gateway, session));
    }
}

/// Relays the upstream's own stream (server-to-client requests and notifications) until it
/// ends or the session does. An upstream without one (405) just has none.
async fn listen(gateway: Gateway, session: Arc<LocalSession>) {
    let Ok(target) = gateway.legacy_target(&session.scope).await else { return };
    let incoming = session.incoming(Method::GET, None);
    match gateway.serve(&incoming, &target, None).await {
        Ok(response) if response.status().is_success() => {
            tokio::select! {
                () = pump(response, &session, |_| {}) => {}
                () = session.ended.cancelled() => {}
            }
        }
        Ok(response) => tracing::debug!(status = response.status().as_u16(), "the upstream has no stream of its own"),
        Err(e) => tracing::debug!(code = e.code(), "the upstream's own stream did not open"),
    }
}

/// Ends the gateway's session upstream once the client's has ended. Best effort: the
/// upstream ends idle sessions itself too.
pub async fn end(gateway: Gateway, session: Arc<LocalSession>) {
    let Ok(target) = gateway.legacy_target(&session.scope).await else { return };
    if let Err(e) = gateway.serve(&session.incoming(Method::DELETE, None), &target, None).await {
        tracing::debug!(code = e.code(), "ending a legacy session upstream failed");
    }
}

/// Every message of an answer (one JSON message, or a stream read as it comes) onto the
/// session's stream, each seen by `inspect` first.
async fn pump(response: Response, session: &LocalSession, mut inspect: impl FnMut(&Value)) {
    let is_stream = response.content_type().is_some_and(|t| t.starts_with("text/event-stream"));
    if is_stream {
        let mut chunks = response.into_body().into_bytes_stream();
        let mut decoder = EventDecoder::default();
        while let Some(Ok(chunk)) = chunks.next().await {
            for message in decoder.feed(&chunk) {
                inspect(&message);
                if !session.push(message).await {
                    return;
                }
            }
        }
        return;
    }
    let Ok(body) = response.into_body().into_bytes_limit(MAX_ANSWER_BYTES).await else { return };
    if let Ok(message) = serde_json::from_slice::<Value>(&body) {
        inspect(&message);
        session.push(message).await;
    }
}
