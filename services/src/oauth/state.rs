//! The OAuth `state`: everything the callback needs (which instance, which app, where to go
//! back, the PKCE verifier), encrypted and authenticated with a key derived from the master
//! key, with an expiry. Nothing is stored until the flow completes; the slot records the
//! state's nonce when it delivers a credential, which makes the state single-use.

use crate::secrets::MasterKey;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use events::{InstanceId, ProjectId};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// What a state carries. Short field names keep the URL short.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateClaims {
    /// Random; recorded when the state delivers a credential.
    #[serde(rename = "n")]
    pub nonce: String,
    /// What the credential is for.
    #[serde(rename = "t")]
    pub target: FlowTarget,
    #[serde(rename = "p")]
    pub project_id: ProjectId,
    /// Provider slug.
    #[serde(rename = "s")]
    pub provider: String,
    /// Which OAuth client the flow uses.
    #[serde(rename = "c")]
    pub client: ClientRef,
    /// The redirect URI sent to the provider; the token exchange must repeat it.
    #[serde(rename = "r")]
    pub redirect_uri: String,
    /// Where the browser goes when the flow ends.
    #[serde(rename = "u")]
    pub redirect_url: Option<String>,
    /// PKCE code verifier.
    #[serde(rename = "v")]
    pub pkce_verifier: String,
    /// Unix seconds.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

/// What a flow's credential is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlowTarget {
    /// An instance (Klavis).
    #[serde(rename = "i")]
    Instance(InstanceId),
    /// A pending connected account (Composio).
    #[serde(rename = "a")]
    Account(String),
}

/// Where a flow's OAuth client (id, secret, endpoints) comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientRef {
    /// A white-label app of the project, by client id.
    #[serde(rename = "w")]
    App(String),
    /// A custom auth config's own credentials, by its id.
    #[serde(rename = "a")]
    AuthConfig(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the authorization state is invalid")]
    Invalid,
    #[error("the authorization state has expired; start again")]
    Expired,
}

#[derive(Clone)]
pub struct StateSealer {
    cipher: Aes256Gcm,
}

const AAD: &[u8] = b"provisioner oauth state v1";

impl StateSealer {
    pub fn new(master: &MasterKey) -> Self {
        let key = master.derive(b"oauth-state v1");
        Self { cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)) }
    }

    pub fn new_nonce() -> String {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn seal(&self, claims: &StateClaims) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let plain = serde_json::to_vec(claims).expect("claims serialise");
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plain, aad: AAD })
            .expect("AES-GCM encrypts a small state");
        URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat())
    }

    /// Opens a state, refusing a forged, tampered or expired one.
    pub fn open(&self, token: &str, now: i64) -> Result<StateClaims, StateError> {
        let claims = self.decrypt(token)?;
        if claims.expires_at < now {
            return Err(StateError::Expired);
        }
        Ok(claims)
    }

    /// Reads a state without checking its expiry (to know where an expired flow goes back to),
    /// refusing a forged or tampered one.
    pub fn decrypt(&self, token: &str) -> Result<StateClaims, StateError> {
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| StateError::Invalid)?;
        let (nonce, sealed) = bytes.split_at_checked(12).ok_or(StateError::Invalid)?;
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: AAD })
            .map_err(|_| StateError::Invalid)?;
        serde_json::from_slice(&plain).map_err(|_| StateError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(expires_at: i64) -> StateClaims {
        StateClaims {
            nonce: StateSealer::new_nonce(),
            target: FlowTarget::Instance(InstanceId::random()),
            project_id: ProjectId::random(),
            provider: "gmail".into(),
            client: ClientRef::App("c".into()),
            redirect_uri: "http://127.0.0.1/oauth/gmail/callback".into(),
            redirect_url: None,
            pkce_verifier: "verifier".into(),
            expires_at,
        }
    }

    fn sealer() -> StateSealer {
        StateSealer::new(&MasterKey::from_base64(&MasterKey::generate_base64()).unwrap())
    }

    #[test]
    fn a_state_round_trips_and_hides_its_contents() {
        let sealer = sealer();
        let claims = claims(2_000);
        let token = sealer.seal(&claims);
        assert!(!token.contains("verifier"));
        assert_eq!(sealer.open(&token, 1_000).unwrap(), claims);
    }

    #[test]
    fn an_expired_tampered_or_foreign_state_is_refused() {
        let sealer = sealer();
        let token = sealer.seal(&claims(1_000));
        assert_eq!(sealer.open(&token, 1_001), Err(StateError::Expired));
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(sealer.open(std::str::from_utf8(&tampered).unwrap(), 0), Err(StateError::Invalid));
        assert_eq!(self::sealer().open(&token, 0), Err(StateError::Invalid), "another master key");
        assert_eq!(sealer.open("not-a-state", 0), Err(StateError::Invalid));
    }
}
