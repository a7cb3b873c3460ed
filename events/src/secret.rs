//! The one form a secret takes inside an event.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A secret encrypted with AES-256-GCM under a per-credential data key.
///
/// The data key itself lives outside the event store, wrapped by the master key, under
/// `key_id`. Deleting the credential destroys that key (crypto-shredding): the event history
/// stays intact, but this ciphertext can never be opened again. Subscribers on NATS never see
/// this type: the published payload drops it and keeps only the fact that a secret is set.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// The data key that opens this secret.
    pub key_id: Uuid,
    /// 96-bit GCM nonce, base64 (standard alphabet).
    pub nonce: String,
    /// Ciphertext with its GCM tag, base64 (standard alphabet).
    pub ciphertext: String,
}

/// Never prints the ciphertext, so a logged event cannot carry it.
impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}
