//! Secrets: envelope encryption with a data key per credential, and crypto-shredding.
//!
//! A secret enters the system in a request, is sealed here with AES-256-GCM under its
//! credential's data key, and only the [`SealedSecret`](events::SealedSecret) enters an event.
//! Data keys live in `secret_keys`, wrapped by the master key from the environment. An event
//! that ends a credential (a server deleted, an instance's credential replaced or removed)
//! names the key it destroys, and a trigger deletes that key in the event's own transaction
//! (migration 0007): from the commit on, that history can no longer be opened by anyone.

mod master_key;
mod vault;

pub use master_key::MasterKey;
pub use vault::{DataKey, OpenError, Vault};

use events::ServerId;

/// A credential: the set of secrets that share one data key and are destroyed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Every secret of one registered server.
    Server(ServerId),
    /// The client secret of one OAuth app (by its aggregate id).
    OAuthApp(String),
    /// The secret credentials of one auth config (by its id).
    AuthConfig(String),
    /// The credential of one connected account (by its id).
    ConnectedAccount(String),
    /// One credential of a user's instance. Each gets a key of its own, destroyed (by key id)
    /// when the credential is replaced or removed, so that a new credential can never be sealed
    /// under a key that is about to be destroyed.
    UserCredential(uuid::Uuid),
}

impl Credential {
    /// A new user credential, with a key of its own.
    pub fn new_user_credential() -> Self {
        Self::UserCredential(uuid::Uuid::new_v4())
    }

    /// The `secret_keys.owner` of this credential's data key.
    pub fn owner(&self) -> String {
        match self {
            Self::Server(id) => format!("server:{id}"),
            Self::OAuthApp(id) => format!("oauth_app:{id}"),
            Self::AuthConfig(id) => format!("auth_config:{id}"),
            Self::ConnectedAccount(id) => format!("connected_account:{id}"),
            Self::UserCredential(id) => format!("user_credential:{id}"),
        }
    }
}
