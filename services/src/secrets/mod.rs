//! Secrets: envelope encryption with a data key per credential, and crypto-shredding.
//!
//! A secret enters the system in a request, is sealed here with AES-256-GCM under its
//! credential's data key, and only the [`SealedSecret`](events::SealedSecret) enters an event.
//! Data keys live in `secret_keys`, wrapped by the master key from the environment. Deleting a
//! credential deletes its data key ([`shredder`]), after which its history can no longer be
//! opened by anyone.

mod master_key;
pub mod shredder;
mod vault;

pub use master_key::MasterKey;
pub use vault::{DataKey, OpenError, Vault};

use events::ServerId;

/// A credential: the set of secrets that share one data key and are destroyed together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// Every secret of one registered server.
    Server(ServerId),
}

impl Credential {
    /// The `secret_keys.owner` of this credential's data key.
    pub fn owner(self) -> String {
        match self {
            Self::Server(id) => format!("server:{id}"),
        }
    }
}
