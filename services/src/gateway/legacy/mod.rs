//! The legacy HTTP+SSE transport (MCP 2024-11-05) at Klavis's `connectionType: "SSE"` URL,
//! `{PUBLIC_URL}/sse?instance_id=…`: `GET` opens an event stream whose first event,
//! `endpoint`, names `{PUBLIC_URL}/messages/?instance_id=…&session_id=…`; each JSON-RPC
//! message POSTed there is accepted (202) and answered as a `message` event on the stream,
//! where the upstream's own messages (its GET stream) go too.
//!
//! Upstream, the gateway speaks Streamable HTTP: each message goes through the same
//! [`Gateway::serve`] as a Streamable HTTP client's (lookup, credential, read-only policy,
//! JSON-RPC errors), with the session the gateway holds upstream for the legacy one.
//!
//! The replica holding the stream owns the session (in memory, [`hub`]); a POST that lands on
//! another replica is relayed to it over NATS ([`replicas`]). The session id in the endpoint
//! seals the owner and the session's key with the instance ([`token`]).
//!
//! The same transport the other way round: upstreams that speak only it (an `sse_url` in the
//! upstreams file, a GAIA `sse` server) are reached through a connection this replica holds
//! to their event stream ([`connection`]), presented to the gateway as a Streamable HTTP
//! upstream ([`upstream`]).

mod connection;
mod edge;
mod exchange;
mod hub;
mod replicas;
mod stream;
mod token;
pub(super) mod upstream;

pub use edge::{messages_endpoint, sse_endpoint};
pub use hub::Hub;
pub use replicas::LegacyLink;

use super::message::Message;
use super::session::Scope;
use super::{Gateway, GatewayError, Target};
use bytes::Bytes;
use events::InstanceId;
use poem::http::StatusCode;
use poem::web::Json;
use poem::{IntoResponse, Response};
use serde_json::Value;
use uuid::Uuid;

impl Gateway {
    /// `GET /sse?instance_id=…`: a new session's event stream, or a JSON-RPC error (404 for an
    /// unknown or deleted instance).
    async fn open_legacy(&self, instance_id: Option<&str>) -> Response {
        let record = match self.instance(instance_id).await {
            Ok(record) => record,
            Err(e) => return refusal(&e, None),
        };
        let Some(id) = record.instance_id() else { return refusal(&GatewayError::InstanceNotFound, None) };
        let (session, token, outbox) = self.inner.legacy.open(Scope::Instance(id));
        let endpoint = format!("{}/messages/?instance_id={id}&session_id={token}", self.inner.public_url);
        stream::respond(self.clone(), session, outbox, endpoint)
    }

    /// `POST /messages?instance_id=…&session_id=…`: 202 once the session's owner has the
    /// message (its answer goes on the stream), else a JSON-RPC error.
    async fn post_legacy(
        &self,
        instance_id: Option<&str>,
        session_id: Option<&str>,
        body: Result<Option<Bytes>, GatewayError>,
    ) -> Response {
        let body = match body {
            Ok(Some(body)) => body,
            Ok(None) => return refusal(&GatewayError::InvalidRequest("a message is POSTed".into()), None),
            Err(e) => return refusal(&e, None),
        };
        let request_id = match Message::parse(&body) {
            Ok(message) => message.request_id().cloned(),
            Err(e) => return refusal(&e, None),
        };
        match self.pass_to_owner(instance_id, session_id, body).await {
            Ok(()) => StatusCode::ACCEPTED.into_response(),
            Err(e) => refusal(&e, request_id.as_ref()),
        }
    }

    /// Opens the session id and hands the message to the session's owner, here or elsewhere.
    async fn pass_to_owner(
        &self,
        instance_id: Option<&str>,
        session_id: Option<&str>,
        message: Bytes,
    ) -> Result<(), GatewayError> {
        let id: InstanceId = instance_id.and_then(|raw| raw.parse().ok()).ok_or(GatewayError::InstanceNotFound)?;
        let scope = Scope::Instance(id);
        let address = session_id
            .and_then(|token| self.inner.legacy.address(&scope, token))
            .ok_or(GatewayError::SessionNotFound)?;
        if address.owner == self.inner.legacy.replica() {
            self.deliver(address.key, &scope, message).await
        } else {
            self.relay_to_owner(&address, &scope, message).await
        }
    }

    /// On the owner: takes a message of session `key` and forwards it in the background. The
    /// instance is read now, so that a deleted one answers the POST with a 404.
    async fn deliver(&self, key: Uuid, scope: &Scope, body: Bytes) -> Result<(), GatewayError> {
        let session = self.inner.legacy.get(key, scope).ok_or(GatewayError::SessionNotFound)?;
        let message = Message::parse(&body)?;
        let target = self.legacy_target(scope).await?;
        tokio::spawn(exchange::forward(self.clone(), session, target, message, body));
        Ok(())
    }

    /// `shutdown`, then the end of this replica's legacy sessions and open event streams: an
    /// open stream would otherwise hold a graceful shutdown for its whole grace period.
    pub async fn ending_streams(&self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        self.inner.legacy.end_all();
        self.inner.stopping.cancel();
    }

    /// What a legacy session's scope names now (read on every message: a PATCH of
    /// `isReadOnly` applies to the next one, a delete refuses it).
    async fn legacy_target(&self, scope: &Scope) -> Result<Target, GatewayError> {
        match scope {
            Scope::Instance(id) => {
                let record = self.instance(Some(&id.to_string())).await?;
                Ok(Target::Instance(Box::new(record)))
            }
            Scope::Composio { .. } | Scope::Registered(_) => Err(GatewayError::SessionNotFound),
        }
    }
}

/// A JSON-RPC error with the status its kind calls for: a legacy POST's 2xx means "on the
/// stream", so no error is answered with 200 here.
fn refusal(error: &GatewayError, request_id: Option<&Value>) -> Response {
    tracing::info!(code = error.code(), "gateway refused a legacy request");
    Json(error.message(request_id)).with_status(error.status()).into_response()
}
