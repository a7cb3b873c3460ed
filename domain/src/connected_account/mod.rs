//! Connected accounts (Composio): a user's credential for an auth config, with a status:
//! INITIALIZING, INITIATED, ACTIVE, FAILED, EXPIRED, INACTIVE, REVOKED. Only ACTIVE accounts
//! satisfy an instance's precondition.

mod alias;

pub use alias::{AliasDirectory, UPDATABLE_SCHEMES};

use crate::{LookupFailed, Patch, Recorded};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use events::connected_account::{
    AccountRef, ConnectedAccountActivated, ConnectedAccountAliasChanged, ConnectedAccountCredentialUpdated,
    ConnectedAccountDeleted, ConnectedAccountExpired, ConnectedAccountFailed, ConnectedAccountInitiated,
    ConnectedAccountRefreshed, ConnectedAccountRevoked, ConnectedAccountStatusChanged,
};
use events::{ConnectedAccountEvent, ProjectId, SealedSecret};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Initializing,
    Initiated,
    Active,
    Failed,
    Expired,
    Inactive,
    Revoked,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Initializing => "INITIALIZING",
            Self::Initiated => "INITIATED",
            Self::Active => "ACTIVE",
            Self::Failed => "FAILED",
            Self::Expired => "EXPIRED",
            Self::Inactive => "INACTIVE",
            Self::Revoked => "REVOKED",
        }
    }

    fn pending(self) -> bool {
        matches!(self, Self::Initializing | Self::Initiated)
    }
}

/// The credential fields a direct connection of `scheme` must carry (in `state.val`), of
/// which `val` lacks some: for each rule, the first of its alternatives names it.
pub fn missing_credential_fields(scheme: &str, val: &serde_json::Map<String, serde_json::Value>) -> Vec<&'static str> {
    let rules: &[&[&'static str]] = match scheme {
        "API_KEY" => &[&["api_key", "generic_api_key"]],
        "BEARER_TOKEN" => &[&["token"]],
        "BASIC" => &[&["username"]],
        _ => &[],
    };
    let present =
        |field: &str| val.get(field).and_then(serde_json::Value::as_str).is_some_and(|v| !v.trim().is_empty());
    rules.iter().filter(|alternatives| !alternatives.iter().any(|f| present(f))).map(|a| a[0]).collect()
}

/// `600` is "10 minutes", `90` is "90 seconds", `3600` is "1 hour", `5400` is "90 minutes".
fn duration_words(secs: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match secs {
        s if s >= 3600 && s % 3600 == 0 => plural(s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    }
}

/// `status_reason`s, worded as Composio words them.
pub mod reason {
    /// A pending connection's end, naming the configured lifetime as Composio does (its
    /// lifetime is 10 minutes: "... within 10 minutes").
    pub fn expired(lifetime_secs: u64) -> String {
        format!("Connection initiation did not complete within {}", super::duration_words(lifetime_secs))
    }
    pub const BY_USER: &str = "Connection status updated by user";
    pub const REVOKED: &str = "Revoked via user-initiated revoke endpoint";
    pub const TOKEN_EXCHANGE: &str = "OAuth callback failed during token exchange";
    /// The start of an ACTIVE account's EXPIRED reason; the provider's refusal follows.
    pub const TOKEN_REFRESH: &str = "OAuth token refresh failed";
}

#[derive(Debug, Clone)]
pub enum ConnectedAccountCommand {
    /// Starts a connection that the user completes (OAuth): INITIATED until `expires_at`.
    Initiate {
        account: AccountRef,
        link_token_sha256: String,
        callback_url: Option<String>,
        expires_at: i64,
        /// Unique per (project, user, toolkit) among live accounts.
        alias: Option<String>,
    },
    /// A connection whose credential is given at once (an API key, a token): ACTIVE.
    Connect {
        account: AccountRef,
        credential: SealedSecret,
        alias: Option<String>,
    },
    /// Composio v3.1's partial update: the alias (kept, cleared or set), and the credential
    /// (replaced whole, already merged and sealed by the caller, if it still holds `replaces`).
    Update {
        project_id: ProjectId,
        alias: Patch<String>,
        credential: Option<CredentialUpdate>,
    },
    /// The user completed the OAuth flow: ACTIVE, unless the connection expired meanwhile.
    CompleteOAuth {
        project_id: ProjectId,
        credential: SealedSecret,
        oauth_state: String,
        now: i64,
    },
    Fail {
        project_id: ProjectId,
        reason: String,
    },
    /// Time-driven: a pending connection past its expiry becomes EXPIRED. `lifetime_secs`
    /// is the configured lifetime of a pending connection, named in the reason.
    Expire {
        now: i64,
        lifetime_secs: u64,
    },
    SetEnabled {
        project_id: ProjectId,
        enabled: bool,
    },
    Revoke {
        project_id: ProjectId,
    },
    Delete {
        project_id: ProjectId,
    },
    /// An ACTIVE account's OAuth tokens, refreshed. Refused unless it still holds `replaces`
    /// (a concurrent refresh won: the caller re-reads and uses its tokens).
    Refresh {
        project_id: ProjectId,
        replaces: SealedSecret,
        refreshed: SealedSecret,
    },
    /// An ACTIVE account whose OAuth tokens `replaces` could not be refreshed: EXPIRED, with
    /// the reason. Refused, like a refresh, if the credential changed meanwhile.
    ExpireCredential {
        project_id: ProjectId,
        replaces: SealedSecret,
        reason: String,
    },
}

/// A credential's new version, built by the caller from the one it opened (`replaces`).
#[derive(Debug, Clone)]
pub struct CredentialUpdate {
    /// The scheme the caller says the account has (Composio's `connection.state.authScheme`).
    pub auth_scheme: String,
    pub replaces: SealedSecret,
    pub updated: SealedSecret,
    pub set_fields: Vec<String>,
    pub removed_fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectedAccountError {
    #[error("connected account not found")]
    NotFound,
    #[error("this connected account id is already taken")]
    AlreadyExists,
    #[error("the connection is not waiting for authorization (it is {0})")]
    NotPending(&'static str),
    #[error("the connection expired before it was completed")]
    Expired,
    #[error("this authorization was already completed")]
    StateAlreadyUsed,
    #[error("a {0} connected account cannot be enabled or disabled")]
    NotChangeable(&'static str),
    #[error("a {0} connected account cannot be revoked")]
    NotRevocable(&'static str),
    /// A refresh (or expiry) of a credential the account no longer holds, or of an account
    /// that is no longer ACTIVE.
    #[error("the connected account's credential changed meanwhile")]
    CredentialChanged,
    /// Composio's own wording (code 600, `ConnectedAccount_BadRequest`).
    #[error("Alias \"{0}\" is already in use by another connection for this entity")]
    AliasTaken(String),
    #[error("connection.state.authScheme is {given}, but the connected account's scheme is {expected}")]
    SchemeMismatch { expected: String, given: String },
    #[error("the credential of a {0} connected account cannot be updated")]
    CredentialNotUpdatable(&'static str),
    #[error(transparent)]
    Lookup(#[from] LookupFailed),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Live {
    account: AccountRef,
    status: Status,
    status_reason: Option<String>,
    callback_url: Option<String>,
    expires_at: Option<i64>,
    used_state: Option<String>,
    /// The credential of its last activation (opened only by the gateway, while ACTIVE).
    #[serde(default)]
    credential: Option<SealedSecret>,
    #[serde(default)]
    alias: Option<String>,
    deleted: bool,
}

/// What an account's events say of it: for answering a write when the views lag.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountState {
    pub account: AccountRef,
    pub status: Status,
    pub status_reason: Option<String>,
    pub callback_url: Option<String>,
    /// Unix seconds, for a pending account.
    pub expires_at: Option<i64>,
    pub alias: Option<String>,
}

/// A connected account, folded from its events.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ConnectedAccount {
    live: Option<Live>,
}

impl ConnectedAccount {
    fn live_in(&self, project_id: ProjectId) -> Result<&Live, ConnectedAccountError> {
        self.live
            .as_ref()
            .filter(|l| !l.deleted && l.account.project_id == project_id)
            .ok_or(ConnectedAccountError::NotFound)
    }

    pub fn account_in(&self, project_id: ProjectId) -> Option<&AccountRef> {
        self.live_in(project_id).ok().map(|l| &l.account)
    }

    pub fn status_in(&self, project_id: ProjectId) -> Option<Status> {
        self.live_in(project_id).ok().map(|l| l.status)
    }

    /// The account and its sealed credential, while it is ACTIVE: what a call may use.
    pub fn active_credential_in(&self, project_id: ProjectId) -> Option<(&AccountRef, &SealedSecret)> {
        let live = self.live_in(project_id).ok().filter(|l| l.status == Status::Active)?;
        Some((&live.account, live.credential.as_ref()?))
    }

    /// The ACTIVE account, if it still holds `sealed`.
    fn holding(&self, project_id: ProjectId, sealed: &SealedSecret) -> Result<&Live, ConnectedAccountError> {
        let live = self.live_in(project_id)?;
        if live.status == Status::Active && live.credential.as_ref() == Some(sealed) {
            Ok(live)
        } else {
            Err(ConnectedAccountError::CredentialChanged)
        }
    }

    pub fn state_in(&self, project_id: ProjectId) -> Option<AccountState> {
        self.live_in(project_id).ok().map(|l| AccountState {
            account: l.account.clone(),
            status: l.status,
            status_reason: l.status_reason.clone(),
            callback_url: l.callback_url.clone(),
            expires_at: l.expires_at,
            alias: l.alias.clone(),
        })
    }

    /// The sealed credential of a live account of the project, whatever its status: what a
    /// partial update merges into.
    pub fn credential_in(&self, project_id: ProjectId) -> Option<(&AccountRef, &SealedSecret)> {
        let live = self.live_in(project_id).ok()?;
        Some((&live.account, live.credential.as_ref()?))
    }

    /// The alias a command would give an account, with whom it must be unique among:
    /// `(project, user, toolkit, alias)`.
    fn alias_claim<'a>(&'a self, command: &'a ConnectedAccountCommand) -> Option<(&'a AccountRef, &'a str)> {
        match command {
            ConnectedAccountCommand::Initiate { account, alias: Some(alias), .. }
            | ConnectedAccountCommand::Connect { account, alias: Some(alias), .. } => Some((account, alias)),
            ConnectedAccountCommand::Update { project_id, alias: Patch::Set(alias), .. } => {
                Some((&self.live_in(*project_id).ok()?.account, alias))
            }
            _ => None,
        }
    }

    /// The events of a command, given which account holds the alias it claims (if any).
    fn decide_all(
        &self,
        command: ConnectedAccountCommand,
        alias_holder: Option<&str>,
    ) -> Result<Vec<ConnectedAccountEvent>, ConnectedAccountError> {
        use ConnectedAccountEvent as E;
        let free = |account: &AccountRef, alias: &str| match alias_holder {
            Some(holder) if holder != account.connected_account_id => {
                Err(ConnectedAccountError::AliasTaken(alias.to_owned()))
            }
            _ => Ok(()),
        };
        match command {
            ConnectedAccountCommand::Initiate {
                alias: Some(alias),
                account,
                link_token_sha256,
                callback_url,
                expires_at,
            } => {
                free(&account, &alias)?;
                let named = E::ConnectedAccountAliasChanged(ConnectedAccountAliasChanged {
                    account: account.clone(),
                    alias: Some(alias),
                });
                let command = ConnectedAccountCommand::Initiate {
                    account,
                    link_token_sha256,
                    callback_url,
                    expires_at,
                    alias: None,
                };
                Ok(self.decide(command)?.into_iter().chain([named]).collect())
            }
            ConnectedAccountCommand::Connect { alias: Some(alias), account, credential } => {
                free(&account, &alias)?;
                let named = E::ConnectedAccountAliasChanged(ConnectedAccountAliasChanged {
                    account: account.clone(),
                    alias: Some(alias),
                });
                let command = ConnectedAccountCommand::Connect { account, credential, alias: None };
                Ok(self.decide(command)?.into_iter().chain([named]).collect())
            }
            ConnectedAccountCommand::Update { project_id, alias, credential } => {
                let live = self.live_in(project_id)?;
                let mut events = Vec::new();
                if let Some(update) = credential {
                    events.push(Self::credential_updated(live, update)?);
                }
                let alias = match alias {
                    Patch::Keep => None,
                    Patch::Clear => live.alias.is_some().then_some(None),
                    Patch::Set(alias) if live.alias.as_deref() == Some(alias.as_str()) => None,
                    Patch::Set(alias) => {
                        free(&live.account, &alias)?;
                        Some(Some(alias))
                    }
                };
                if let Some(alias) = alias {
                    let account = live.account.clone();
                    events.push(E::ConnectedAccountAliasChanged(ConnectedAccountAliasChanged { account, alias }));
                }
                Ok(events)
            }
            other => Ok(self.decide(other)?.into_iter().collect()),
        }
    }

    /// A credential update of a key, token or basic account that is ACTIVE or INACTIVE (an
    /// account of any other status has no credential to change, or a destroyed one).
    fn credential_updated(
        live: &Live,
        update: CredentialUpdate,
    ) -> Result<ConnectedAccountEvent, ConnectedAccountError> {
        let scheme = &live.account.auth_scheme;
        if *scheme != update.auth_scheme {
            return Err(ConnectedAccountError::SchemeMismatch { expected: scheme.clone(), given: update.auth_scheme });
        }
        if !matches!(live.status, Status::Active | Status::Inactive) {
            return Err(ConnectedAccountError::CredentialNotUpdatable(live.status.as_str()));
        }
        if live.credential.as_ref() != Some(&update.replaces) {
            return Err(ConnectedAccountError::CredentialChanged);
        }
        Ok(ConnectedAccountEvent::ConnectedAccountCredentialUpdated(ConnectedAccountCredentialUpdated {
            account: live.account.clone(),
            credential: update.updated,
            set_fields: update.set_fields,
            removed_fields: update.removed_fields,
        }))
    }

    fn decide(&self, command: ConnectedAccountCommand) -> Result<Option<ConnectedAccountEvent>, ConnectedAccountError> {
        use ConnectedAccountEvent as E;
        Ok(Some(match command {
            ConnectedAccountCommand::Initiate { account, link_token_sha256, callback_url, expires_at, alias: _ } => {
                if self.live.is_some() {
                    return Err(ConnectedAccountError::AlreadyExists);
                }
                E::ConnectedAccountInitiated(ConnectedAccountInitiated {
                    account,
                    link_token_sha256,
                    callback_url,
                    expires_at,
                })
            }
            ConnectedAccountCommand::Connect { account, credential, alias: _ } => {
                if self.live.is_some() {
                    return Err(ConnectedAccountError::AlreadyExists);
                }
                E::ConnectedAccountActivated(ConnectedAccountActivated { account, credential, oauth_state: None })
            }
            ConnectedAccountCommand::CompleteOAuth { project_id, credential, oauth_state, now } => {
                let live = self.live_in(project_id)?;
                if live.used_state.as_deref() == Some(oauth_state.as_str()) {
                    return Err(ConnectedAccountError::StateAlreadyUsed);
                }
                if !live.status.pending() {
                    return Err(ConnectedAccountError::NotPending(live.status.as_str()));
                }
                if live.expires_at.is_some_and(|at| now > at) {
                    return Err(ConnectedAccountError::Expired);
                }
                let account = live.account.clone();
                E::ConnectedAccountActivated(ConnectedAccountActivated {
                    account,
                    credential,
                    oauth_state: Some(oauth_state),
                })
            }
            ConnectedAccountCommand::Fail { project_id, reason } => {
                let live = self.live_in(project_id)?;
                if !live.status.pending() {
                    return Err(ConnectedAccountError::NotPending(live.status.as_str()));
                }
                E::ConnectedAccountFailed(ConnectedAccountFailed { account: live.account.clone(), reason })
            }
            ConnectedAccountCommand::Expire { now, lifetime_secs } => {
                let Some(live) = self.live.as_ref().filter(|l| !l.deleted) else { return Ok(None) };
                if !live.status.pending() || live.expires_at.is_none_or(|at| now < at) {
                    return Ok(None);
                }
                E::ConnectedAccountExpired(ConnectedAccountExpired {
                    account: live.account.clone(),
                    reason: reason::expired(lifetime_secs),
                })
            }
            ConnectedAccountCommand::SetEnabled { project_id, enabled } => {
                let live = self.live_in(project_id)?;
                match (live.status, enabled) {
                    (Status::Active, true) | (Status::Inactive, false) => return Ok(None),
                    (Status::Active | Status::Inactive, _) => {}
                    (other, _) => return Err(ConnectedAccountError::NotChangeable(other.as_str())),
                }
                let account = live.account.clone();
                E::ConnectedAccountStatusChanged(ConnectedAccountStatusChanged {
                    account,
                    enabled,
                    reason: reason::BY_USER.into(),
                })
            }
            ConnectedAccountCommand::Revoke { project_id } => {
                let live = self.live_in(project_id)?;
                match live.status {
                    Status::Revoked => return Ok(None),
                    Status::Active | Status::Inactive => {}
                    other => return Err(ConnectedAccountError::NotRevocable(other.as_str())),
                }
                E::ConnectedAccountRevoked(ConnectedAccountRevoked {
                    account: live.account.clone(),
                    reason: reason::REVOKED.into(),
                })
            }
            ConnectedAccountCommand::Delete { project_id } => {
                let live = self.live_in(project_id)?;
                E::ConnectedAccountDeleted(ConnectedAccountDeleted { account: live.account.clone() })
            }
            ConnectedAccountCommand::Refresh { project_id, replaces, refreshed } => {
                let live = self.holding(project_id, &replaces)?;
                E::ConnectedAccountRefreshed(ConnectedAccountRefreshed {
                    account: live.account.clone(),
                    credential: refreshed,
                })
            }
            ConnectedAccountCommand::ExpireCredential { project_id, replaces, reason } => {
                let live = self.holding(project_id, &replaces)?;
                E::ConnectedAccountExpired(ConnectedAccountExpired { account: live.account.clone(), reason })
            }
            ConnectedAccountCommand::Update { .. } => unreachable!("decided by decide_all"),
        }))
    }
}

impl Aggregate for ConnectedAccount {
    const TYPE: &'static str = <ConnectedAccountEvent as events::Event>::AGGREGATE_TYPE;
    type Command = ConnectedAccountCommand;
    type Event = Recorded<ConnectedAccountEvent>;
    type Error = ConnectedAccountError;
    type Services = Arc<dyn AliasDirectory>;

    async fn handle(
        &mut self,
        command: ConnectedAccountCommand,
        aliases: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), ConnectedAccountError> {
        let holder = match self.alias_claim(&command) {
            Some((account, alias)) => {
                aliases.alias_holder(account.project_id, &account.user_id, &account.toolkit, alias).await?
            }
            None => None,
        };
        for event in self.decide_all(command, holder.as_deref())? {
            sink.write(Recorded(event), self).await;
        }
        Ok(())
    }

    fn apply(&mut self, Recorded(event): Self::Event) {
        use ConnectedAccountEvent as E;
        // These change what the account holds, not its status.
        match &event {
            E::ConnectedAccountAliasChanged(e) => {
                if let Some(live) = self.live.as_mut() {
                    live.alias = e.alias.clone();
                }
                return;
            }
            E::ConnectedAccountCredentialUpdated(e) => {
                if let Some(live) = self.live.as_mut() {
                    live.credential = Some(e.credential.clone());
                }
                return;
            }
            _ => {}
        }
        let status = match &event {
            E::ConnectedAccountInitiated(_) => Status::Initiated,
            E::ConnectedAccountActivated(_) | E::ConnectedAccountRefreshed(_) => Status::Active,
            E::ConnectedAccountFailed(_) => Status::Failed,
            E::ConnectedAccountExpired(_) => Status::Expired,
            E::ConnectedAccountStatusChanged(e) if e.enabled => Status::Active,
            E::ConnectedAccountStatusChanged(_) => Status::Inactive,
            E::ConnectedAccountRevoked(_) => Status::Revoked,
            E::ConnectedAccountAliasChanged(_) | E::ConnectedAccountCredentialUpdated(_) => {
                unreachable!("applied above")
            }
            E::ConnectedAccountDeleted(_) => {
                if let Some(live) = self.live.as_mut() {
                    live.deleted = true;
                }
                return;
            }
        };
        let live = self.live.get_or_insert_with(|| Live {
            account: event.account().clone(),
            status,
            status_reason: None,
            callback_url: None,
            expires_at: None,
            used_state: None,
            credential: None,
            alias: None,
            deleted: false,
        });
        live.status = status;
        live.status_reason = None;
        match event {
            E::ConnectedAccountInitiated(e) => {
                live.expires_at = Some(e.expires_at);
                live.callback_url = e.callback_url;
            }
            E::ConnectedAccountActivated(e) => {
                live.credential = Some(e.credential);
                if e.oauth_state.is_some() {
                    live.used_state = e.oauth_state;
                }
            }
            E::ConnectedAccountRefreshed(e) => live.credential = Some(e.credential),
            E::ConnectedAccountFailed(e) => live.status_reason = Some(e.reason),
            E::ConnectedAccountExpired(e) => live.status_reason = Some(e.reason),
            E::ConnectedAccountStatusChanged(e) => live.status_reason = Some(e.reason),
            E::ConnectedAccountRevoked(e) => live.status_reason = Some(e.reason),
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
