//! Legacy POSTs across replicas: a POST may land on any `serve` replica, but only the owner
//! of its session (the replica holding the client's event stream) can answer on that stream.
//! The receiving replica sends the message to the owner over NATS core request/reply, on the
//! owner's own subject (`provisioner-legacy-sse.<replica>`, outside the event stream's
//! subjects: nothing is stored), and answers the client as the owner replied. No responder
//! (the owner is gone) is a session not found: the client reconnects. Without NATS, only the
//! owner itself serves a session's POSTs.

use super::super::session::Scope;
use super::super::{Gateway, GatewayError};
use super::token::LegacyToken;
use crate::config::RelaySettings;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The subjects of the owners; each replica listens on its own.
/// Outside the event stream's subjects (`provisioner.events.>`, `provisioner.gateway.>`): a
/// request captured by JetStream would be answered by its PubAck, not by the owner.
pub const SUBJECT_PREFIX: &str = "provisioner-legacy-sse";
/// How long a receiving replica waits for the owner (which replies before forwarding).
const OWNER_TIMEOUT: Duration = Duration::from_secs(5);
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

fn subject(replica: &str) -> String {
    format!("{SUBJECT_PREFIX}.{replica}")
}

/// A client's message for a session of another replica.
#[derive(Serialize, Deserialize)]
struct Delivery {
    key: Uuid,
    scope: Scope,
    /// The JSON-RPC message, as the client sent it.
    message: String,
}

/// The owner's reply: whether it took the message.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
enum Outcome {
    Accepted,
    SessionNotFound,
    InstanceNotFound,
    Failed,
}

impl Outcome {
    fn of(delivered: Result<(), GatewayError>) -> Self {
        match delivered {
            Ok(()) => Self::Accepted,
            Err(GatewayError::SessionNotFound) => Self::SessionNotFound,
            Err(GatewayError::InstanceNotFound) => Self::InstanceNotFound,
            Err(_) => Self::Failed,
        }
    }

    fn into_result(self) -> Result<(), GatewayError> {
        match self {
            Self::Accepted => Ok(()),
            Self::SessionNotFound => Err(GatewayError::SessionNotFound),
            Self::InstanceNotFound => Err(GatewayError::InstanceNotFound),
            Self::Failed => Err(GatewayError::Internal),
        }
    }
}

/// The link of this replica to the others: connected at start when NATS answers then, else
/// by [`Gateway::run_legacy_link`] as soon as it does.
pub struct LegacyLink {
    settings: RelaySettings,
    connected: Option<(async_nats::Client, async_nats::Subscriber)>,
}

impl Gateway {
    /// One attempt to connect and listen on this replica's subject (at start, so that a
    /// replica that says it listens can be reached).
    pub async fn legacy_link(&self, settings: RelaySettings) -> LegacyLink {
        let connected = self.listen_for_deliveries(&settings).await;
        LegacyLink { settings, connected }
    }

    /// Answers other replicas' deliveries for this replica's sessions until `cancel` fires,
    /// connecting first (retrying every second) if the link is not up yet.
    pub async fn run_legacy_link(self, link: LegacyLink, cancel: CancellationToken) {
        let mut connected = link.connected;
        while connected.is_none() {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(RECONNECT_PAUSE) => {}
            }
            connected = self.listen_for_deliveries(&link.settings).await;
        }
        let (client, mut deliveries) = connected.expect("connected");
        loop {
            let delivery = tokio::select! {
                () = cancel.cancelled() => break,
                delivery = deliveries.next() => delivery,
            };
            let Some(delivery) = delivery else { break };
            tokio::spawn(self.clone().answer(client.clone(), delivery));
        }
        let _ = client.drain().await;
    }

    /// Connects, subscribes to this replica's subject (flushed: the server has it when this
    /// returns) and makes the link the hub's.
    async fn listen_for_deliveries(
        &self,
        settings: &RelaySettings,
    ) -> Option<(async_nats::Client, async_nats::Subscriber)> {
        let listened = async {
            let client = crate::relay::stream::connect(settings, "provisioner-gateway", 1).await?.client();
            let deliveries = client.subscribe(subject(self.inner.legacy.replica())).await?;
            client.flush().await?;
            anyhow::Ok((client, deliveries))
        };
        match listened.await {
            Ok((client, deliveries)) => {
                self.inner.legacy.set_link(client.clone());
                Some((client, deliveries))
            }
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "the gateway cannot reach NATS yet: legacy sessions stay on their replica"
                );
                None
            }
        }
    }

    /// Delivers one message from another replica, and replies with the outcome.
    async fn answer(self, client: async_nats::Client, delivery: async_nats::Message) {
        let Some(reply) = delivery.reply else { return };
        let outcome = match serde_json::from_slice::<Delivery>(&delivery.payload) {
            Ok(d) => Outcome::of(self.deliver(d.key, &d.scope, Bytes::from(d.message)).await),
            Err(_) => Outcome::Failed,
        };
        let payload = serde_json::to_vec(&outcome).expect("an outcome serialises");
        if let Err(e) = client.publish(reply, payload.into()).await {
            tracing::warn!(error = %e, "cannot reply to a legacy delivery");
        }
    }

    /// Sends a message to the replica that owns its session; the owner's outcome.
    pub(super) async fn relay_to_owner(
        &self,
        address: &LegacyToken,
        scope: &Scope,
        message: Bytes,
    ) -> Result<(), GatewayError> {
        let Some(client) = self.inner.legacy.link() else {
            // Without NATS a session lives on the replica that opened it, alone.
            return Err(GatewayError::SessionNotFound);
        };
        let delivery = Delivery {
            key: address.key,
            scope: scope.clone(),
            message: String::from_utf8_lossy(&message).into_owned(),
        };
        let payload = serde_json::to_vec(&delivery).expect("a delivery serialises");
        let request = async_nats::Request::new().payload(payload.into()).timeout(Some(OWNER_TIMEOUT));
        match client.send_request(subject(&address.owner), request).await {
            Ok(reply) => serde_json::from_slice::<Outcome>(&reply.payload)
                .map_err(|_| GatewayError::Internal)
                .and_then(Outcome::into_result),
            Err(e) if e.kind() == async_nats::client::RequestErrorKind::MaxPayloadExceeded => {
                let max = client.server_info().max_payload;
                Err(GatewayError::TooLarge(max))
            }
            Err(e) => {
                // No responder or no reply: the owner is gone, and so is the session.
                tracing::info!(error = %e, "the owner of a legacy session did not answer");
                Err(GatewayError::SessionNotFound)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_keep_the_errors_a_client_must_tell_apart() {
        for error in [GatewayError::SessionNotFound, GatewayError::InstanceNotFound] {
            assert_eq!(Outcome::of(Err(error.clone())).into_result(), Err(error));
        }
        assert_eq!(Outcome::of(Ok(())).into_result(), Ok(()));
        assert_eq!(Outcome::of(Err(GatewayError::ParseError)).into_result(), Err(GatewayError::Internal));
    }
}
