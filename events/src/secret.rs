//! The one form a secret takes inside an event.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A secret encrypted with AES-256-GCM under a per-credential data key.
///
/// The data key itself lives outside the event store, wrapped by the master key, under
/// `key_id`. Deleting the credential destroys that key (crypto-shredding): the event history
/// stays intact, but this ciphertext can never be opened again. Subscribers on NATS never see
/// this type: the published payload drops it and keeps only the fact that a secret is set.
///
/// On NATS a sealed secret is published as `{"key_id": "..."}` alone: the nonce and ciphertext
/// are removed (see [`redact`]), and decode back to empty strings ([`SealedSecret::is_redacted`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// The data key that opens this secret.
    pub key_id: Uuid,
    /// 96-bit GCM nonce, base64 (standard alphabet). Empty once redacted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nonce: String,
    /// Ciphertext with its GCM tag, base64 (standard alphabet). Empty once redacted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ciphertext: String,
}

impl SealedSecret {
    /// True for the published form, which says only that a secret is set.
    pub fn is_redacted(&self) -> bool {
        self.ciphertext.is_empty()
    }
}

/// Removes the nonce and ciphertext of every sealed secret in a serialised event, wherever it
/// is nested, leaving its `key_id`: the form events take on NATS.
///
/// Sealed secrets are recognised by shape (an object with `key_id`, `nonce` and `ciphertext`),
/// which is why no other event type may use those three names together.
pub fn redact(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if map.contains_key("key_id") && map.contains_key("nonce") && map.contains_key("ciphertext") {
                map.remove("nonce");
                map.remove("ciphertext");
            }
            map.values_mut().for_each(redact);
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Never prints the ciphertext, so a logged event cannot carry it.
impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}
