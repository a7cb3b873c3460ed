//! The legacy sessions this replica owns: the ones whose event stream it holds. State in
//! memory only (the stream is a connection to this process, so nothing else could use it):
//! the way to the client's stream, and the session the gateway holds upstream on its behalf.
//! Likewise its connections to upstreams of the legacy transport ([`Connection`]), whose
//! event streams it holds.

use super::super::forward::SESSION_HEADER;
use super::super::session::{Scope, SessionSealer};
use super::super::{Address, Incoming};
use super::connection::Connection;
use super::replicas::ReplicaLink;
use super::token::{LegacyToken, PURPOSE};
use crate::secrets::MasterKey;
use bytes::Bytes;
use poem::http::{HeaderMap, HeaderValue, Method};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Messages waiting for a client that reads slowly, per session.
const OUTBOX: usize = 64;
/// How long a message waits for room in a slow client's outbox before the session ends.
const PUSH_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    /// This replica's id, sealed into its sessions' ids so that others can find it.
    replica: String,
    sealer: SessionSealer,
    sessions: Mutex<HashMap<Uuid, Arc<LocalSession>>>,
    connections: Mutex<HashMap<Uuid, Arc<Connection>>>,
    /// The NATS connection to other replicas, once there is one.
    link: OnceLock<ReplicaLink>,
}

/// One legacy session of this replica.
pub struct LocalSession {
    pub key: Uuid,
    pub scope: Scope,
    outbox: mpsc::Sender<Value>,
    upstream: Mutex<UpstreamState>,
    /// Fired when the session ends, by the client leaving or the gateway ending it.
    pub ended: CancellationToken,
}

/// What the gateway learned of its Streamable HTTP session upstream.
#[derive(Default)]
struct UpstreamState {
    /// The gateway's (sealed) `Mcp-Session-Id`, as a Streamable HTTP client would hold it.
    session: Option<HeaderValue>,
    protocol_version: Option<HeaderValue>,
    listening: bool,
}

impl Hub {
    pub fn new(master: &MasterKey) -> Self {
        let inner = HubInner {
            replica: Uuid::new_v4().simple().to_string(),
            sealer: SessionSealer::for_purpose(master, PURPOSE),
            sessions: Mutex::default(),
            connections: Mutex::default(),
            link: OnceLock::new(),
        };
        Self { inner: Arc::new(inner) }
    }

    pub fn replica(&self) -> &str {
        &self.inner.replica
    }

    /// A new session of `scope`, its sealed id and the receiving end of its outbox.
    pub fn open(&self, scope: Scope) -> (Arc<LocalSession>, String, mpsc::Receiver<Value>) {
        let (outbox, receiver) = mpsc::channel(OUTBOX);
        let key = Uuid::new_v4();
        let token = LegacyToken { owner: self.inner.replica.clone(), key }.seal(&self.inner.sealer, &scope);
        let session =
            Arc::new(LocalSession { key, scope, outbox, upstream: Mutex::default(), ended: CancellationToken::new() });
        self.sessions().insert(key, session.clone());
        (session, token, receiver)
    }

    /// The session `key` of `scope`, while it is open here.
    pub fn get(&self, key: Uuid, scope: &Scope) -> Option<Arc<LocalSession>> {
        self.sessions().get(&key).filter(|session| &session.scope == scope).cloned()
    }

    pub fn remove(&self, key: Uuid) {
        self.sessions().remove(&key);
    }

    /// The address a client's session id names, if it is one of `scope`'s.
    pub fn address(&self, scope: &Scope, token: &str) -> Option<LegacyToken> {
        LegacyToken::open(&self.inner.sealer, scope, token)
    }

    /// Ends every session of this replica (it is shutting down): their streams end, and
    /// their clients reconnect, to another replica. Its upstream connections end too.
    pub fn end_all(&self) {
        for session in self.sessions().values() {
            session.ended.cancel();
        }
        for connection in self.connections().values() {
            connection.ended.cancel();
        }
    }

    pub fn add_connection(&self, connection: Arc<Connection>) {
        self.connections().insert(connection.key, connection);
    }

    /// The upstream connection `key` of `scope`, while it is open here.
    pub fn connection(&self, key: Uuid, scope: &Scope) -> Option<Arc<Connection>> {
        let connections = self.connections();
        connections.get(&key).filter(|c| &c.scope == scope && !c.ended.is_cancelled()).cloned()
    }

    pub fn remove_connection(&self, key: Uuid) {
        self.connections().remove(&key);
    }

    pub fn link(&self) -> Option<&ReplicaLink> {
        self.inner.link.get()
    }

    pub fn set_link(&self, link: ReplicaLink) {
        let _ = self.inner.link.set(link);
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<LocalSession>>> {
        self.inner.sessions.lock().expect("the legacy sessions lock is not poisoned")
    }

    fn connections(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<Connection>>> {
        self.inner.connections.lock().expect("the upstream connections lock is not poisoned")
    }
}

impl LocalSession {
    /// Queues a message for the client's stream; false when the session is over. A client
    /// that leaves no room for [`PUSH_TIMEOUT`] has its session ended.
    pub async fn push(&self, message: Value) -> bool {
        let sent = tokio::select! {
            sent = tokio::time::timeout(PUSH_TIMEOUT, self.outbox.send(message)) => sent,
            () = self.ended.cancelled() => return false,
        };
        match sent {
            Ok(Ok(())) => true,
            Ok(Err(_)) => false,
            Err(_) => {
                tracing::info!("a legacy client read too slowly; its session ends");
                self.ended.cancel();
                false
            }
        }
    }

    /// A message of this session as the gateway's Streamable HTTP path takes it.
    pub fn incoming(&self, method: Method, body: Option<Bytes>) -> Incoming {
        let upstream = self.upstream();
        let mut headers = HeaderMap::new();
        let accept = if method == Method::GET { "text/event-stream" } else { "application/json, text/event-stream" };
        headers.insert("accept", HeaderValue::from_static(accept));
        if body.is_some() {
            headers.insert("content-type", HeaderValue::from_static("application/json"));
        }
        if let Some(version) = &upstream.protocol_version {
            headers.insert("mcp-protocol-version", version.clone());
        }
        if let Some(session) = &upstream.session {
            headers.insert(SESSION_HEADER, session.clone());
        }
        Incoming { method, address: Address::Instance(None), headers, body: Ok(body) }
    }

    /// Keeps the session id the gateway's answer hands out (the first answer carries it).
    pub fn learn_session(&self, headers: &HeaderMap) {
        if let Some(session) = headers.get(SESSION_HEADER) {
            self.upstream().session = Some(session.clone());
        }
    }

    /// Keeps the protocol version an `initialize` answer negotiated.
    pub fn learn_version(&self, answer: &Value) {
        let version = answer.pointer("/result/protocolVersion").and_then(Value::as_str);
        if let Some(version) = version.and_then(|v| HeaderValue::from_str(v).ok()) {
            self.upstream().protocol_version = Some(version);
        }
    }

    /// Whether the gateway holds a session upstream for this one.
    pub fn has_upstream_session(&self) -> bool {
        self.upstream().session.is_some()
    }

    /// True the first time only: the upstream's own stream is opened once per session.
    pub fn start_listening(&self) -> bool {
        !std::mem::replace(&mut self.upstream().listening, true)
    }

    fn upstream(&self) -> std::sync::MutexGuard<'_, UpstreamState> {
        self.upstream.lock().expect("a legacy session's lock is not poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::InstanceId;

    #[test]
    fn a_session_is_found_by_its_key_and_scope_and_ending_all_ends_each() {
        let hub = Hub::new(&MasterKey::from_base64(&MasterKey::generate_base64()).unwrap());
        let scope = Scope::Instance(InstanceId::random());
        let (session, token, _outbox) = hub.open(scope.clone());
        let address = hub.address(&scope, &token).expect("its own id opens");
        assert_eq!((address.owner.as_str(), address.key), (hub.replica(), session.key));
        assert!(hub.get(session.key, &scope).is_some());
        assert!(hub.get(session.key, &Scope::Instance(InstanceId::random())).is_none(), "another instance's");
        let (other, _, _other_outbox) = hub.open(scope.clone());
        hub.end_all();
        assert!(session.ended.is_cancelled() && other.ended.is_cancelled());
        hub.remove(session.key);
        assert!(hub.get(session.key, &scope).is_none());
    }
}
