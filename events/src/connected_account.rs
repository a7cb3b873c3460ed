//! Connected accounts (Composio): one user's credential for one auth config, with a status.

use crate::{Event, ProjectId, SealedSecret};
use serde::{Deserialize, Serialize};

/// Aggregate type `connected_account`, id `ca_` plus 12 characters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConnectedAccountEvent {
    /// A connection was started and waits for the user (OAuth): INITIATED.
    ConnectedAccountInitiated(ConnectedAccountInitiated),
    /// The account holds a working credential: ACTIVE.
    ConnectedAccountActivated(ConnectedAccountActivated),
    /// The connection attempt failed: FAILED.
    ConnectedAccountFailed(ConnectedAccountFailed),
    /// A pending connection was not completed in time, or an ACTIVE account's OAuth tokens
    /// could not be refreshed (the reason says which): EXPIRED.
    ConnectedAccountExpired(ConnectedAccountExpired),
    /// Enabled (ACTIVE) or disabled (INACTIVE) by the project.
    ConnectedAccountStatusChanged(ConnectedAccountStatusChanged),
    /// Revoked: REVOKED, for good. Its credential's data key is destroyed.
    ConnectedAccountRevoked(ConnectedAccountRevoked),
    /// Deleted (soft: the history stays). Its credential's data key is destroyed.
    ConnectedAccountDeleted(ConnectedAccountDeleted),
    /// An ACTIVE account's OAuth tokens were refreshed (RFC 6749 §6); it stays ACTIVE.
    ConnectedAccountRefreshed(ConnectedAccountRefreshed),
    /// The account's alias was set, changed or cleared (Composio v3.1); its status stays.
    ConnectedAccountAliasChanged(ConnectedAccountAliasChanged),
    /// Fields of a key, token or basic credential were set or removed (Composio v3.1's
    /// partial update); its status stays.
    ConnectedAccountCredentialUpdated(ConnectedAccountCredentialUpdated),
}

/// Who and what every event of an account is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountRef {
    pub project_id: ProjectId,
    pub connected_account_id: String,
    pub auth_config_id: String,
    pub toolkit: String,
    pub auth_scheme: String,
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectedAccountInitiated {
    pub account: AccountRef,
    /// SHA-256 (hex) of the link token whose URL starts the user's authorization.
    pub link_token_sha256: String,
    /// Where the user goes back after authorizing.
    pub callback_url: Option<String>,
    /// Unix seconds after which the pending connection expires.
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectedAccountActivated {
    pub account: AccountRef,
    /// The account's credential (the `state.val` fields), sealed.
    pub credential: SealedSecret,
    /// The OAuth state that delivered it, if any: a state delivers once.
    pub oauth_state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectedAccountFailed {
    pub account: AccountRef,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectedAccountExpired {
    pub account: AccountRef,
    pub reason: String,
}

/// `connected_account.refreshed`, version 1.0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectedAccountRefreshed {
    pub account: AccountRef,
    /// The refreshed tokens (a refresh token the provider did not renew is kept), sealed under
    /// the account's data key, as the tokens of its OAuth flow were.
    pub credential: SealedSecret,
}

/// `connected_account.alias_changed`, version 1.0. An alias is unique per (project, user,
/// toolkit) among live accounts: `connected_account_aliases` (migration 0017) follows these
/// events in the transaction that appends them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectedAccountAliasChanged {
    pub account: AccountRef,
    /// The new alias; `None` clears it.
    pub alias: Option<String>,
}

/// `connected_account.credential_updated`, version 1.0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectedAccountCredentialUpdated {
    pub account: AccountRef,
    /// The whole credential after the update, sealed under the account's data key (the key
    /// of the credential it replaces).
    pub credential: SealedSecret,
    /// The names (never the values) of the fields set, and of those removed.
    pub set_fields: Vec<String>,
    pub removed_fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectedAccountStatusChanged {
    pub account: AccountRef,
    pub enabled: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectedAccountRevoked {
    pub account: AccountRef,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectedAccountDeleted {
    pub account: AccountRef,
}

impl ConnectedAccountEvent {
    pub fn account(&self) -> &AccountRef {
        match self {
            Self::ConnectedAccountInitiated(e) => &e.account,
            Self::ConnectedAccountActivated(e) => &e.account,
            Self::ConnectedAccountFailed(e) => &e.account,
            Self::ConnectedAccountExpired(e) => &e.account,
            Self::ConnectedAccountStatusChanged(e) => &e.account,
            Self::ConnectedAccountRevoked(e) => &e.account,
            Self::ConnectedAccountDeleted(e) => &e.account,
            Self::ConnectedAccountRefreshed(e) => &e.account,
            Self::ConnectedAccountAliasChanged(e) => &e.account,
            Self::ConnectedAccountCredentialUpdated(e) => &e.account,
        }
    }
}

impl Event for ConnectedAccountEvent {
    const AGGREGATE_TYPE: &'static str = "connected_account";

    fn project_id(&self) -> ProjectId {
        self.account().project_id
    }

    fn event_type(&self) -> &'static str {
        match self {
            Self::ConnectedAccountInitiated(_) => "connected_account.initiated",
            Self::ConnectedAccountActivated(_) => "connected_account.activated",
            Self::ConnectedAccountFailed(_) => "connected_account.failed",
            Self::ConnectedAccountExpired(_) => "connected_account.expired",
            Self::ConnectedAccountStatusChanged(_) => "connected_account.status_changed",
            Self::ConnectedAccountRevoked(_) => "connected_account.revoked",
            Self::ConnectedAccountDeleted(_) => "connected_account.deleted",
            Self::ConnectedAccountRefreshed(_) => "connected_account.refreshed",
            Self::ConnectedAccountAliasChanged(_) => "connected_account.alias_changed",
            Self::ConnectedAccountCredentialUpdated(_) => "connected_account.credential_updated",
        }
    }
}
