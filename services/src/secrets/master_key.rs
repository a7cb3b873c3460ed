use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore;
use std::sync::Arc;

/// The key that wraps every data key. It never leaves the process and is never logged.
#[derive(Clone)]
pub struct MasterKey {
    cipher: Arc<Aes256Gcm>,
    /// Kept for deriving keys of other purposes; never printed.
    raw: Arc<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

pub(super) const NONCE_LEN: usize = 12;

impl MasterKey {
    /// Parses base64 of exactly 32 bytes. The error never contains the input.
    pub fn from_base64(raw: &str) -> Result<Self, String> {
        let bytes = BASE64.decode(raw.trim()).map_err(|_| "is not valid base64".to_owned())?;
        if bytes.len() != 32 {
            return Err(format!("must decode to 32 bytes, not {}", bytes.len()));
        }
        let raw: [u8; 32] = bytes.try_into().expect("checked: 32 bytes");
        Ok(Self { cipher: Arc::new(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&raw))), raw: Arc::new(raw) })
    }

    /// A fresh random key, base64: what `scripts/run` and tests generate.
    pub fn generate_base64() -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        BASE64.encode(bytes)
    }

    /// A key for another purpose (`purpose` names it), derived with HKDF-SHA256, so that one
    /// master key serves every need without any two uses sharing a key.
    pub fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let mut key = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(None, self.raw.as_slice())
            .expand(purpose, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        key
    }

    /// Wraps a data key; `aad` binds the wrapping to the key's id.
    pub(super) fn wrap(&self, data_key: &[u8; 32], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: data_key, aad })
            .expect("AES-GCM encrypts a 32-byte key without error");
        [nonce.as_slice(), &sealed].concat()
    }

    /// Unwraps a data key, or `None` if it was wrapped by another master key or tampered with.
    pub(super) fn unwrap_key(&self, wrapped: &[u8], aad: &[u8]) -> Option<[u8; 32]> {
        let (nonce, sealed) = wrapped.split_at_checked(NONCE_LEN)?;
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad }).ok()?;
        plain.try_into().ok()
    }
}
