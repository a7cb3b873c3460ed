//! Gateway session ids: the upstream's `Mcp-Session-Id`, sealed with the scope it belongs to
//! (a Klavis instance, a Composio server and user, or a registered server; AES-256-GCM under a key derived from the
//! master key). Any replica opens it, no session is stored, and an id that was tampered with or
//! is presented at another URL does not open (the caller answers 404, and the client starts a
//! new session).

use crate::secrets::MasterKey;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use events::{InstanceId, ServerId};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a gateway URL names: whose credential, policy and sessions a request uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "i")]
    Instance(InstanceId),
    /// A Composio server for one selector (`user_id=…` or `connected_account_id=…`).
    #[serde(rename = "c")]
    Composio { server: ServerId, selector: String },
    /// A server registered through the GAIA surface, at its `gatewayUrl`.
    #[serde(rename = "r")]
    Registered(ServerId),
}

/// What a gateway session id carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Claims {
    #[serde(rename = "s")]
    scope: Scope,
    /// The upstream's own session id (empty for a fanned-out session).
    #[serde(rename = "u")]
    upstream: String,
    /// A fanned-out session's upstream session ids, by toolkit (absent from the other ids,
    /// which stay as they were sealed before fan-out existed).
    #[serde(rename = "m", default, skip_serializing_if = "BTreeMap::is_empty")]
    members: BTreeMap<String, String>,
}

#[derive(Clone)]
pub struct SessionSealer {
    cipher: Aes256Gcm,
}

const AAD: &[u8] = b"provisioner gateway session v1";
const NONCE_LEN: usize = 12;

impl SessionSealer {
    pub fn new(master: &MasterKey) -> Self {
        Self::for_purpose(master, b"gateway-session v1")
    }

    /// A sealer whose ids open only with a sealer of the same `purpose` (the legacy
    /// transport's session ids are not Streamable HTTP session ids, and the reverse).
    pub fn for_purpose(master: &MasterKey, purpose: &[u8]) -> Self {
        let key = master.derive(purpose);
        Self { cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)) }
    }

    /// The id handed to the client for the upstream session `upstream` of `scope`.
    pub fn seal(&self, scope: &Scope, upstream: &str) -> String {
        self.seal_claims(&Claims { scope: scope.clone(), upstream: upstream.to_owned(), members: BTreeMap::new() })
    }

    /// The one id handed to the client for the upstream sessions of a fanned-out `scope`
    /// (one per toolkit that gave one).
    pub fn seal_members(&self, scope: &Scope, members: BTreeMap<String, String>) -> String {
        self.seal_claims(&Claims { scope: scope.clone(), upstream: String::new(), members })
    }

    /// The upstream session ids of a fanned-out session of `scope`, by toolkit.
    pub fn open_members(&self, scope: &Scope, token: &str) -> Option<BTreeMap<String, String>> {
        self.open_claims(scope, token).map(|claims| claims.members)
    }

    fn seal_claims(&self, claims: &Claims) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let plain = serde_json::to_vec(claims).expect("claims serialise");
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plain, aad: AAD })
            .expect("AES-GCM encrypts a session id");
        URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat())
    }

    /// The upstream session id, if `token` is a session of `scope` sealed by this service.
    pub fn open(&self, scope: &Scope, token: &str) -> Option<String> {
        self.open_claims(scope, token).map(|claims| claims.upstream)
    }

    fn open_claims(&self, scope: &Scope, token: &str) -> Option<Claims> {
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        let (nonce, sealed) = bytes.split_at_checked(NONCE_LEN)?;
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: AAD }).ok()?;
        let claims: Claims = serde_json::from_slice(&plain).ok()?;
        (&claims.scope == scope).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> SessionSealer {
        SessionSealer::new(&MasterKey::from_base64(&MasterKey::generate_base64()).unwrap())
    }

    #[test]
    fn a_session_opens_only_at_its_own_instance() {
        let sealer = sealer();
        let (mine, other) = (Scope::Instance(InstanceId::random()), Scope::Instance(InstanceId::random()));
        let token = sealer.seal(&mine, "upstream-session-1");
        assert!(!token.contains("upstream-session-1"));
        assert_eq!(sealer.open(&mine, &token).as_deref(), Some("upstream-session-1"));
        assert_eq!(sealer.open(&other, &token), None, "moved to another instance's URL");
        let server = ServerId::random();
        let alice = Scope::Composio { server, selector: "user_id=alice".into() };
        let token = sealer.seal(&alice, "s");
        assert_eq!(sealer.open(&alice, &token).as_deref(), Some("s"));
        let bob = Scope::Composio { server, selector: "user_id=bob".into() };
        assert_eq!(sealer.open(&bob, &token), None, "moved to another user's URL");
    }

    #[test]
    fn a_fanned_out_session_seals_one_upstream_session_per_toolkit_and_old_ids_still_open() {
        let sealer = sealer();
        let scope = Scope::Composio { server: ServerId::random(), selector: "user_id=alice".into() };
        let members = BTreeMap::from([("github".to_owned(), "s-1".to_owned()), ("slack".to_owned(), "s-2".to_owned())]);
        let token = sealer.seal_members(&scope, members.clone());
        assert!(!token.contains("s-1"));
        assert_eq!(sealer.open_members(&scope, &token), Some(members));
        let bob = Scope::Composio { server: ServerId::random(), selector: "user_id=bob".into() };
        assert_eq!(sealer.open_members(&bob, &token), None);
        // An id sealed before fan-out existed (no members field) opens as it did.
        let old = Claims { scope: scope.clone(), upstream: "s".into(), members: BTreeMap::new() };
        assert!(!serde_json::to_string(&old).unwrap().contains("\"m\""), "the field is left out when empty");
        assert_eq!(sealer.open(&scope, &sealer.seal(&scope, "s")).as_deref(), Some("s"));
        assert_eq!(sealer.open_members(&scope, &sealer.seal(&scope, "s")), Some(BTreeMap::new()));
    }

    #[test]
    fn a_tampered_or_foreign_session_does_not_open() {
        let sealer = sealer();
        let id = Scope::Instance(InstanceId::random());
        let token = sealer.seal(&id, "s");
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(sealer.open(&id, std::str::from_utf8(&tampered).unwrap()), None);
        assert_eq!(self::sealer().open(&id, &token), None, "another master key");
        assert_eq!(sealer.open(&id, "s"), None, "the upstream's raw id");
    }
}
