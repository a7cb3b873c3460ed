use events::instance::{AuthMethod, InstanceSettings, Slot};
use events::{InstanceId, ProjectId, SealedSecret};

/// A credential, already sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub method: AuthMethod,
    pub sealed: SealedSecret,
    /// The OAuth `state` that delivered it; a state delivers at most one credential.
    pub oauth_state: Option<String>,
}

/// What can be asked of a slot. Commands that address an instance by id are refused unless
/// that instance is the slot's live one, in the caller's project.
#[derive(Debug, Clone)]
pub enum InstanceCommand {
    /// Creates an instance with id `candidate` unless the slot has a live one (then nothing
    /// happens: create is idempotent). The user must hold an ACTIVE connected account for each
    /// of `required_auth_configs` (the server's), or nothing is created.
    Create {
        slot: Slot,
        candidate: InstanceId,
        settings: InstanceSettings,
        required_auth_configs: Vec<String>,
    },
    ChangeSettings {
        project_id: ProjectId,
        instance_id: InstanceId,
        read_only: bool,
    },
    /// Stores a credential on the slot: on its live instance (`instance_id` given), or on the
    /// user's slot itself (`slot` given, no instance needed).
    SetAuth {
        project_id: ProjectId,
        target: AuthTarget,
        credential: Credential,
    },
    /// Removes the credential; removing none changes nothing.
    ClearAuth {
        project_id: ProjectId,
        target: AuthTarget,
    },
    Delete {
        project_id: ProjectId,
        instance_id: InstanceId,
    },
    /// Erases the user's data in this slot (instance and credential).
    EraseUser {
        project_id: ProjectId,
    },
    /// Replaces OAuth tokens with refreshed ones, sealed under the same data key. Refused
    /// unless the slot still holds `replaces` (a concurrent refresh or a new credential won:
    /// the caller re-reads instead).
    RefreshCredential {
        project_id: ProjectId,
        replaces: SealedSecret,
        refreshed: SealedSecret,
    },
    /// Marks the OAuth tokens `replaces` expired: they could not be refreshed. Refused, like a
    /// refresh, if the credential changed meanwhile.
    ExpireCredential {
        project_id: ProjectId,
        replaces: SealedSecret,
        reason: String,
    },
}

/// Which credential a command is about.
#[derive(Debug, Clone)]
pub enum AuthTarget {
    /// The credential of this live instance.
    Instance(InstanceId),
    /// The credential of the user for this server, with or without an instance.
    User(Slot),
}

impl InstanceCommand {
    pub fn project_id(&self) -> ProjectId {
        match self {
            Self::Create { slot, .. } => slot.project_id,
            Self::ChangeSettings { project_id, .. }
            | Self::SetAuth { project_id, .. }
            | Self::ClearAuth { project_id, .. }
            | Self::Delete { project_id, .. }
            | Self::EraseUser { project_id }
            | Self::RefreshCredential { project_id, .. }
            | Self::ExpireCredential { project_id, .. } => *project_id,
        }
    }
}
