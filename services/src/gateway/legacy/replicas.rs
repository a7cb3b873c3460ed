//! Legacy sessions across replicas: a request may land on any `serve` replica, but only the
//! owner of the event stream can use it: the replica holding a legacy client's stream (its
//! POSTs are answered on that stream), or the replica holding the connection to an upstream
//! of the legacy transport ([`super::upstream`]). The receiving replica sends the message to
//! the owner over NATS core request/reply, on the owner's own subject
//! (`<prefix>-legacy-sse.<replica>`, `provisioner-legacy-sse.<replica>` by default, outside
//! the event stream's subjects: nothing is stored; under the configured subject prefix, so
//! that deployments sharing one NATS never reach each other's replicas), and answers the client as the owner replied. No responder (the owner is gone) is
//! a session not found: the client reconnects. Without NATS, only the owner itself serves a
//! session.

use super::super::session::Scope;
use super::super::{Gateway, GatewayError};
use super::token::LegacyToken;
use super::upstream::{Relayed, Reply};
use crate::gateway::forward::SendFailure;
use crate::nats::RelaySettings;
use bytes::Bytes;
use events::Namespace;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a receiving replica waits for the owner (which replies before forwarding).
const OWNER_TIMEOUT: Duration = Duration::from_secs(5);
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// The subject of the owner `replica`; each replica listens on its own. Outside the event
/// stream's subjects (`<prefix>.events.>`, `<prefix>.gateway.>`): a request captured by
/// JetStream would be answered by its PubAck, not by the owner.
fn subject(namespace: &Namespace, replica: &str) -> String {
    format!("{}-legacy-sse.{replica}", namespace.prefix())
}

/// This replica's connection to the others, and the namespace their subjects are in.
pub struct ReplicaLink {
    client: async_nats::Client,
    namespace: Namespace,
}

/// What one replica asks another.
#[derive(Serialize, Deserialize)]
enum Delivery {
    /// A legacy client's message, answered on the client's stream ([`Outcome`]).
    Client(ClientMessage),
    /// A message for a connection to an upstream of the legacy transport ([`Reply`]).
    Upstream(Relayed),
}

/// A legacy client's message for a session of another replica.
#[derive(Serialize, Deserialize)]
struct ClientMessage {
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
            let client = crate::nats::connect(settings, "provisioner-gateway").await?;
            let deliveries = client.subscribe(subject(&settings.namespace, self.inner.legacy.replica())).await?;
            client.flush().await?;
            anyhow::Ok((client, deliveries))
        };
        match listened.await {
            Ok((client, deliveries)) => {
                self.inner
                    .legacy
                    .set_link(ReplicaLink { client: client.clone(), namespace: settings.namespace.clone() });
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
        let payload = match serde_json::from_slice::<Delivery>(&delivery.payload) {
            Ok(Delivery::Client(m)) => {
                let outcome = Outcome::of(self.deliver(m.key, &m.scope, Bytes::from(m.message)).await);
                serde_json::to_vec(&outcome)
            }
            Ok(Delivery::Upstream(relayed)) => serde_json::to_vec(&self.answer_relayed(relayed).await),
            Err(_) => serde_json::to_vec(&Outcome::Failed),
        };
        let mut payload = payload.expect("a reply serialises");
        let max = client.server_info().max_payload;
        if payload.len() > max {
            let problem =
                format!("answered more than this deployment's NATS max_payload ({max} bytes) across replicas");
            payload = serde_json::to_vec(&Reply::Failed(problem)).expect("a reply serialises");
        }
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
        let delivery = Delivery::Client(ClientMessage {
            key: address.key,
            scope: scope.clone(),
            message: String::from_utf8_lossy(&message).into_owned(),
        });
        match self.ask_owner(&address.owner, &delivery, OWNER_TIMEOUT).await {
            Ok(reply) => serde_json::from_slice::<Outcome>(&reply)
                .map_err(|_| GatewayError::Internal)
                .and_then(Outcome::into_result),
            Err(Unanswered::TooLarge(max)) => Err(GatewayError::TooLarge(max)),
            Err(Unanswered::NoOwner) => Err(GatewayError::SessionNotFound),
        }
    }

    /// Sends a message for an upstream connection to the replica that holds it; `wait` is
    /// how long the owner may take with the answer.
    pub(super) async fn relay_to_connection_owner(
        &self,
        owner: &str,
        relayed: Relayed,
        wait: Duration,
    ) -> Result<Reply, SendFailure> {
        match self.ask_owner(owner, &Delivery::Upstream(relayed), wait + OWNER_TIMEOUT).await {
            Ok(reply) => serde_json::from_slice::<Reply>(&reply)
                .map_err(|_| SendFailure::Failed("answered across replicas with something unreadable".into())),
            Err(Unanswered::TooLarge(max)) => {
                Err(SendFailure::Failed(format!("was sent a message larger than NATS max_payload ({max} bytes)")))
            }
            // The owner is gone, and so is the connection: the client starts a new session.
            Err(Unanswered::NoOwner) => Ok(Reply::NotFound),
        }
    }

    /// One request to the replica `owner`, and its reply's payload.
    async fn ask_owner(&self, owner: &str, delivery: &Delivery, timeout: Duration) -> Result<Bytes, Unanswered> {
        // Without NATS a session lives on the replica that opened it, alone.
        let ReplicaLink { client, namespace } = self.inner.legacy.link().ok_or(Unanswered::NoOwner)?;
        let payload = serde_json::to_vec(delivery).expect("a delivery serialises");
        let request = async_nats::Request::new().payload(payload.into()).timeout(Some(timeout));
        match client.send_request(subject(namespace, owner), request).await {
            Ok(reply) => Ok(reply.payload),
            Err(e) if e.kind() == async_nats::client::RequestErrorKind::MaxPayloadExceeded => {
                Err(Unanswered::TooLarge(client.server_info().max_payload))
            }
            Err(e) => {
                // No responder or no reply: the owner is gone.
                tracing::info!(error = %e, "the owner of a legacy session did not answer");
                Err(Unanswered::NoOwner)
            }
        }
    }
}

/// Why another replica gave no reply.
enum Unanswered {
    TooLarge(usize),
    NoOwner,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_subject_is_under_the_deployments_prefix_and_outside_its_stream() {
        assert_eq!(subject(&Namespace::default(), "r1"), "provisioner-legacy-sse.r1");
        let acme = Namespace::new("ACME", "acme.provisioner").unwrap();
        let owner = subject(&acme, "r1");
        assert_eq!(owner, "acme.provisioner-legacy-sse.r1");
        let captured = [acme.all_events(), acme.all_records()];
        assert!(captured.iter().all(|filter| !owner.starts_with(filter.trim_end_matches('>'))), "{owner}");
    }

    #[test]
    fn outcomes_keep_the_errors_a_client_must_tell_apart() {
        for error in [GatewayError::SessionNotFound, GatewayError::InstanceNotFound] {
            assert_eq!(Outcome::of(Err(error.clone())).into_result(), Err(error));
        }
        assert_eq!(Outcome::of(Ok(())).into_result(), Ok(()));
        assert_eq!(Outcome::of(Err(GatewayError::ParseError)).into_result(), Err(GatewayError::Internal));
    }
}
