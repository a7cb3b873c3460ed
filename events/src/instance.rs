//! Instances: a user's connection to an MCP server, with its credential.
//!
//! One aggregate per (project, server, user): the slot. It holds at most one live instance
//! (whose random id is the URL credential an MCP client uses) and at most one credential.
//! A credential may exist before any instance (set for the user, then the instance created
//! later is already authenticated), and deleting an instance deletes its credential.

use crate::{Event, InstanceId, ProjectId, SealedSecret, ServerId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Everything that happens to a (project, server, user) slot. Aggregate type `instance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InstanceEvent {
    /// A new instance, with a fresh random id.
    InstanceCreated(InstanceCreated),
    /// The instance's settings changed (read-only, for now).
    InstanceSettingsChanged(InstanceSettingsChanged),
    /// A credential was stored (OAuth tokens, an API key, or general auth data). Any earlier
    /// credential was replaced and its data key destroyed.
    InstanceAuthSet(InstanceAuthSet),
    /// The credential was removed and its data key destroyed.
    InstanceAuthCleared(InstanceAuthCleared),
    /// The instance was deleted, with its credential.
    InstanceDeleted(InstanceDeleted),
    /// The user was deleted: this slot's instance and credential, if any, are gone.
    InstanceUserErased(InstanceUserErased),
    /// The OAuth tokens were refreshed (RFC 6749 §6): the credential now holds the new ones,
    /// sealed under the same credential's data key.
    InstanceCredentialRefreshed(InstanceCredentialRefreshed),
    /// The OAuth tokens could not be refreshed and are no longer usable: the user must
    /// authenticate again. The credential stays (sealed) until it is replaced or removed.
    InstanceCredentialExpired(InstanceCredentialExpired),
}

/// Which server a slot is for: one of the catalog's servers (Klavis names) or a server the
/// project registered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServerRef {
    Catalog { slug: String },
    Registered { server_id: ServerId },
}

impl ServerRef {
    /// A stable text key: `catalog:gmail`, `server:<uuid>`.
    pub fn key(&self) -> String {
        match self {
            Self::Catalog { slug } => format!("catalog:{slug}"),
            Self::Registered { server_id } => format!("server:{server_id}"),
        }
    }
}

/// The subject of every instance event: whose slot it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    pub project_id: ProjectId,
    pub server: ServerRef,
    /// The server's display name when the slot was first used (`Gmail`).
    pub server_name: String,
    /// The customer's own id for its end user (a UUID, an email, ...).
    pub user_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectionType {
    #[serde(rename = "SSE")]
    Sse,
    StreamableHttp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceSettings {
    /// A free-form label of the customer's platform.
    pub platform: Option<String>,
    pub connection_type: ConnectionType,
    pub legacy: bool,
    /// Write operations are restricted.
    pub read_only: bool,
}

/// `instance.created`, version 2.0.
///
/// History (older payloads are brought to this shape by [`crate::upcast::upcast`]):
/// - 2.0: the settings are grouped in `settings` (the same struct as
///   [`InstanceSettingsChanged`]): `{"slot", "instance_id", "settings": {"platform",
///   "connection_type", "legacy", "read_only"}}`.
/// - 1.0: the settings were flat beside the slot: `{"slot", "instance_id", "platform",
///   "connection_type", "legacy", "read_only"}`; `read_only` could be absent (false), and so
///   could `connection_type` (`StreamableHttp`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceCreated {
    pub slot: Slot,
    pub instance_id: InstanceId,
    pub settings: InstanceSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceSettingsChanged {
    pub slot: Slot,
    pub instance_id: InstanceId,
    pub settings: InstanceSettings,
}

/// How a credential was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Tokens from the OAuth flow.
    Oauth,
    /// `{"api_key": ...}`.
    ApiKey,
    /// `{"token": ...}`.
    Token,
    /// `{"data": {...}}`: any other authentication data.
    Data,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceAuthSet {
    pub slot: Slot,
    /// The live instance, if there is one.
    pub instance_id: Option<InstanceId>,
    pub method: AuthMethod,
    /// The credential's JSON, sealed under a data key of its own.
    pub credential: SealedSecret,
    /// The data key of the credential this one replaced, destroyed with it.
    pub replaced_key_id: Option<Uuid>,
    /// The OAuth `state` that delivered this credential, so that it cannot be used twice.
    pub oauth_state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceAuthCleared {
    pub slot: Slot,
    pub instance_id: Option<InstanceId>,
    /// The credential's data key, destroyed.
    pub destroyed_key_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceDeleted {
    pub slot: Slot,
    pub instance_id: InstanceId,
    /// The credential's data key, destroyed with the instance, if there was a credential.
    pub destroyed_key_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceUserErased {
    pub slot: Slot,
    /// The instance deleted with the user, if there was one.
    pub instance_id: Option<InstanceId>,
    /// The credential's data key, destroyed, if there was a credential.
    pub destroyed_key_id: Option<Uuid>,
}

/// `instance.credential_refreshed`, version 1.0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceCredentialRefreshed {
    pub slot: Slot,
    pub instance_id: Option<InstanceId>,
    /// The refreshed tokens' JSON (the provider's answer over the old tokens: a refresh token
    /// the provider did not renew is kept), sealed under the data key of the credential it
    /// refreshes: deleting the credential still destroys it.
    pub credential: SealedSecret,
}

/// `instance.credential_expired`, version 1.0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceCredentialExpired {
    pub slot: Slot,
    pub instance_id: Option<InstanceId>,
    /// The data key of the expired credential (not destroyed: that happens when it is replaced
    /// or removed).
    pub key_id: Uuid,
    /// Why: the provider's refusal (`invalid_grant: …`), or no refresh token.
    pub reason: String,
}

impl InstanceEvent {
    pub fn slot(&self) -> &Slot {
        match self {
            Self::InstanceCreated(e) => &e.slot,
            Self::InstanceSettingsChanged(e) => &e.slot,
            Self::InstanceAuthSet(e) => &e.slot,
            Self::InstanceAuthCleared(e) => &e.slot,
            Self::InstanceDeleted(e) => &e.slot,
            Self::InstanceUserErased(e) => &e.slot,
            Self::InstanceCredentialRefreshed(e) => &e.slot,
            Self::InstanceCredentialExpired(e) => &e.slot,
        }
    }
}

impl Event for InstanceEvent {
    const AGGREGATE_TYPE: &'static str = "instance";

    fn project_id(&self) -> ProjectId {
        self.slot().project_id
    }

    fn event_type(&self) -> &'static str {
        match self {
            Self::InstanceCreated(_) => "instance.created",
            Self::InstanceSettingsChanged(_) => "instance.settings_changed",
            Self::InstanceAuthSet(_) => "instance.auth_set",
            Self::InstanceAuthCleared(_) => "instance.auth_cleared",
            Self::InstanceDeleted(_) => "instance.deleted",
            Self::InstanceUserErased(_) => "instance.user_erased",
            Self::InstanceCredentialRefreshed(_) => "instance.credential_refreshed",
            Self::InstanceCredentialExpired(_) => "instance.credential_expired",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_ref_is_tagged_and_keyed() {
        let gmail = ServerRef::Catalog { slug: "gmail".into() };
        assert_eq!(serde_json::to_value(&gmail).unwrap(), serde_json::json!({"kind": "catalog", "slug": "gmail"}));
        assert_eq!(gmail.key(), "catalog:gmail");
        assert_eq!(serde_json::to_value(ConnectionType::Sse).unwrap(), "SSE");
    }
}
