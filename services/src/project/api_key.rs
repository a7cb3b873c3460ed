use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Every key starts with this, so that secret scanners and people recognise one.
pub const KEY_PREFIX: &str = "mcpp_";
const KEY_BYTES: usize = 32;
/// Length of the base64url text of 32 bytes, without padding.
const ENCODED_LEN: usize = 43;

/// API keys: 256 random bits, shown once, stored only as a SHA-256 digest.
pub struct ApiKey;

impl ApiKey {
    pub fn generate() -> SecretString {
        let mut bytes = [0u8; KEY_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        SecretString::from(format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Lower-case hex SHA-256 of the whole key. A fast hash suffices: with 256 random bits
    /// there is nothing to guess, and it keeps every request's lookup cheap.
    pub fn digest(key: &SecretString) -> String {
        Self::digest_str(key.expose_secret())
    }

    pub(super) fn digest_str(key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    /// Cheap shape check before any lookup.
    pub fn looks_like_one(presented: &str) -> bool {
        presented.strip_prefix(KEY_PREFIX).is_some_and(|rest| {
            rest.len() == ENCODED_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_recognisable() {
        let (a, b) = (ApiKey::generate(), ApiKey::generate());
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(ApiKey::looks_like_one(a.expose_secret()), "{}", a.expose_secret().len());
        assert!(!ApiKey::looks_like_one("mcpp_short"));
        assert!(!ApiKey::looks_like_one("Bearer something"));
    }

    #[test]
    fn the_digest_is_hex_sha256_and_differs_from_the_key() {
        let key = ApiKey::generate();
        let digest = ApiKey::digest(&key);
        assert_eq!(digest.len(), 64);
        assert!(!digest.contains(&key.expose_secret()[KEY_PREFIX.len()..]));
        assert_eq!(digest, ApiKey::digest_str(key.expose_secret()));
    }
}
