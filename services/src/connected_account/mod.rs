//! Connected accounts (Composio), surface-independent: a user's credential for an auth
//! config. API keys, bearer tokens and basic credentials connect at once (ACTIVE); OAuth2
//! connections start pending (INITIATED) with a link through the OAuth flow, and expire if the
//! user does not complete them in time.

mod aliases;
mod expiry;
mod update;
mod view;

pub use aliases::PgAliasDirectory;
pub use expiry::run_expirer;
pub use update::CredentialPatch;
pub use view::{AccountFilter, AccountRecord, ConnectedAccountsView, PgAccountDirectory};

use crate::auth_config::AuthConfigs;
use crate::error::AppError;
use crate::precondition_lock::{Held, PreconditionLocks};
use crate::project::Caller;
use crate::secrets::{Credential, Vault};
use crate::store::{self, CommandBus, CommandMetadata, Committed};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cqrs_es::Aggregate;
use domain::auth_config::AuthConfig;
use domain::auth_config::{AuthConfigError, DIRECT_SCHEMES};
use domain::connected_account::{
    ConnectedAccount, ConnectedAccountCommand, ConnectedAccountError, missing_credential_fields,
};
use domain::instance::UserId;
use events::auth_config::AuthConfigSettings;
use events::connected_account::AccountRef;
use events::{ProjectId, SealedSecret};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::time::Duration;

/// Why an account operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Account(#[from] ConnectedAccountError),
    #[error("auth config not found")]
    AuthConfigNotFound,
    #[error("the auth config is disabled: it accepts no new connections")]
    AuthConfigDisabled,
    #[error("an auth config of scheme {0} cannot connect accounts here")]
    UnsupportedScheme(String),
    #[error("a {scheme} connection needs {} in connection.state.val", fields.join(", "))]
    MissingFields { scheme: String, fields: Vec<String> },
    #[error("connection.state.authScheme is {given}, but the auth config's scheme is {expected}")]
    SchemeMismatch { expected: String, given: String },
    #[error("a link connects OAuth2 accounts only; create {0} accounts with POST /connected_accounts")]
    NotLinkable(String),
    #[error("connection.state.authScheme {0} is not one whose credential can be updated")]
    NotUpdatableScheme(String),
}

pub type AccountResult<T> = Result<T, AppError<AccountError>>;

fn refused<E: Into<AccountError>>(e: E) -> AppError<AccountError> {
    AppError::Rejected(e.into())
}

/// Moves a store result's refusal into this service's error.
fn widen<T, E: std::error::Error + Into<AccountError>>(r: Result<T, AppError<E>>) -> AccountResult<T> {
    r.map_err(|e| e.map_rejected(Into::into))
}

impl From<AuthConfigError> for AccountError {
    fn from(e: AuthConfigError) -> Self {
        match e {
            AuthConfigError::NotFound | AuthConfigError::AlreadyExists => Self::AuthConfigNotFound,
        }
    }
}

/// A pending OAuth connection: where the user goes to authorize it.
pub struct Initiated {
    pub account: AccountRecord,
    pub link_token: String,
    pub redirect_url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// The credential given with a direct connection (Composio's `connection.state`).
pub struct ConnectionState {
    pub auth_scheme: String,
    /// The `val` object, as JSON text.
    pub val: SecretString,
}

/// What a new connection asks for besides its auth config and user.
#[derive(Debug, Clone, Default)]
pub struct NewConnection {
    /// Where the browser goes when an OAuth connection ends.
    pub callback_url: Option<String>,
    /// Unique per (project, user, toolkit) among live accounts.
    pub alias: Option<String>,
}

/// What creating an account produced.
pub enum Created {
    Active(AccountRecord),
    Pending(Initiated),
}

#[derive(Clone)]
pub struct ConnectedAccounts {
    bus: CommandBus,
    vault: Vault,
    pool: PgPool,
    auth_configs: AuthConfigs,
    public_url: String,
    pending_ttl: Duration,
}

/// SHA-256 (hex) of a link token: only the digest is stored.
pub fn link_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The credential of a direct connection, checked for the fields its scheme needs.
fn direct_credential(scheme: &str, state: Option<ConnectionState>) -> AccountResult<SecretString> {
    let val = match state {
        Some(state) => serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(state.val.expose_secret())
            .map_err(|_| AppError::Failed(anyhow::anyhow!("connection.state.val is not a JSON object")))?,
        None => serde_json::Map::new(),
    };
    let missing = missing_credential_fields(scheme, &val);
    if !missing.is_empty() {
        let fields = missing.into_iter().map(str::to_owned).collect();
        return Err(refused(AccountError::MissingFields { scheme: scheme.to_owned(), fields }));
    }
    Ok(SecretString::from(serde_json::Value::Object(val).to_string()))
}

/// Whether accounts of this scheme hold OAuth tokens (connected through a link, refreshed
/// before the gateway uses them).
pub fn is_oauth(scheme: &str) -> bool {
    matches!(scheme, "OAUTH2" | "DCR_OAUTH")
}

impl ConnectedAccounts {
    pub fn new(
        bus: CommandBus,
        vault: Vault,
        pool: PgPool,
        auth_configs: AuthConfigs,
        public_url: String,
        pending_ttl: Duration,
    ) -> Self {
        Self { bus, vault, pool, auth_configs, public_url, pending_ttl }
    }

    /// The auth config a new connection uses: it must exist and be enabled.
    async fn open_auth_config(&self, project_id: ProjectId, auth_config_id: &str) -> AccountResult<AuthConfigSettings> {
        let config = widen(self.auth_configs.load(project_id, auth_config_id).await)?;
        if !config.accepts_connections(project_id).map_err(refused)? {
            return Err(refused(AccountError::AuthConfigDisabled));
        }
        config.settings_in(project_id).cloned().ok_or_else(|| refused(AccountError::AuthConfigNotFound))
    }

    fn account_ref(
        project_id: ProjectId,
        auth_config_id: &str,
        settings: &AuthConfigSettings,
        user: &UserId,
    ) -> AccountRef {
        AccountRef {
            project_id,
            connected_account_id: crate::ids::nanoid("ca_"),
            auth_config_id: auth_config_id.to_owned(),
            toolkit: settings.toolkit.clone(),
            auth_scheme: settings.auth_scheme.clone(),
            user_id: user.as_str().to_owned(),
        }
    }

    /// Creates an account: ACTIVE at once with the given credential for key, token, basic and
    /// no-auth schemes; pending with a link for OAuth2.
    pub async fn create(
        &self,
        caller: &Caller,
        auth_config_id: &str,
        user: &UserId,
        state: Option<ConnectionState>,
        new: NewConnection,
        meta: &CommandMetadata,
    ) -> AccountResult<Created> {
        let settings = self.open_auth_config(caller.project_id, auth_config_id).await?;
        if let Some(given) = state.as_ref().map(|s| s.auth_scheme.as_str()).filter(|g| *g != settings.auth_scheme) {
            let expected = settings.auth_scheme.clone();
            return Err(refused(AccountError::SchemeMismatch { expected, given: given.to_owned() }));
        }
        let account = Self::account_ref(caller.project_id, auth_config_id, &settings, user);
        if is_oauth(&settings.auth_scheme) {
            return self.initiate(caller, account, new, meta).await.map(Created::Pending);
        }
        if !DIRECT_SCHEMES.contains(&settings.auth_scheme.as_str()) {
            return Err(refused(AccountError::UnsupportedScheme(settings.auth_scheme)));
        }
        let credential = direct_credential(&settings.auth_scheme, state)?;
        let key =
            self.vault.data_key(&Credential::ConnectedAccount(account.connected_account_id.clone()).owner()).await?;
        let id = account.connected_account_id.clone();
        let command = ConnectedAccountCommand::Connect { account, credential: key.seal(&credential), alias: new.alias };
        let committed = widen(self.bus.connected_account(&id, command, meta).await)?;
        self.after_write(caller, &id, &committed).await.map(Created::Active)
    }

    /// Starts an OAuth2 connection through a link (Composio's `connected_accounts/link`).
    pub async fn link(
        &self,
        caller: &Caller,
        auth_config_id: &str,
        user: &UserId,
        new: NewConnection,
        meta: &CommandMetadata,
    ) -> AccountResult<Initiated> {
        let settings = self.open_auth_config(caller.project_id, auth_config_id).await?;
        if !is_oauth(&settings.auth_scheme) {
            return Err(refused(AccountError::NotLinkable(settings.auth_scheme)));
        }
        let account = Self::account_ref(caller.project_id, auth_config_id, &settings, user);
        self.initiate(caller, account, new, meta).await
    }

    async fn initiate(
        &self,
        caller: &Caller,
        account: AccountRef,
        NewConnection { callback_url, alias }: NewConnection,
        meta: &CommandMetadata,
    ) -> AccountResult<Initiated> {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let link_token = URL_SAFE_NO_PAD.encode(bytes);
        let expires_at = chrono::Utc::now() + self.pending_ttl;
        let id = account.connected_account_id.clone();
        let command = ConnectedAccountCommand::Initiate {
            account,
            link_token_sha256: link_digest(&link_token),
            callback_url,
            expires_at: expires_at.timestamp(),
            alias,
        };
        let committed = widen(self.bus.connected_account(&id, command, meta).await)?;
        Ok(Initiated {
            account: self.after_write(caller, &id, &committed).await?,
            redirect_url: format!("{}/api/v3/connected_accounts/link/{link_token}", self.public_url),
            link_token,
            expires_at,
        })
    }

    /// An account of the caller's project: from the view, or from its events while this
    /// process has answered writes the view does not hold yet.
    pub async fn get(&self, caller: &Caller, id: &str) -> AccountResult<AccountRecord> {
        if self.bus.views_lagging() {
            return self.read_through(caller, id).await;
        }
        view::find(&self.pool, caller.project_id, id).await?.ok_or_else(|| refused(ConnectedAccountError::NotFound))
    }

    /// The account after a committed write: from the view when it holds the write, else from
    /// the events, so that a lagging projector never turns a committed write into an error.
    async fn after_write(&self, caller: &Caller, id: &str, committed: &Committed) -> AccountResult<AccountRecord> {
        if committed.visible
            && let Some(record) = view::find(&self.pool, caller.project_id, id).await?
        {
            return Ok(record);
        }
        self.read_through(caller, id).await
    }

    async fn read_through(&self, caller: &Caller, id: &str) -> AccountResult<AccountRecord> {
        let account: ConnectedAccount = widen(self.bus.load(id).await)?;
        let state = account.state_in(caller.project_id).ok_or_else(|| refused(ConnectedAccountError::NotFound))?;
        let auth_config: Option<AuthConfig> = self.bus.load(&state.account.auth_config_id).await.ok();
        let times = store::stream_times(&self.pool, ConnectedAccount::TYPE, id)
            .await?
            .ok_or_else(|| AppError::Failed(anyhow::anyhow!("connected account {id} has no events")))?;
        Ok(AccountRecord::from_state(state, times, auth_config.as_ref()))
    }

    /// The pending account a link token opens (the token is the credential: no API key).
    pub async fn by_link_token(&self, token: &str) -> AccountResult<AccountRecord> {
        view::by_link(&self.pool, &link_digest(token)).await?.ok_or_else(|| refused(ConnectedAccountError::NotFound))
    }

    pub async fn list(&self, caller: &Caller, filter: &AccountFilter) -> AccountResult<(Vec<AccountRecord>, i64)> {
        Ok(view::list(&self.pool, caller.project_id, filter).await?)
    }

    async fn command(&self, id: &str, command: ConnectedAccountCommand, meta: &CommandMetadata) -> AccountResult<()> {
        widen(self.bus.connected_account(id, command, meta).await).map(drop)
    }

    pub async fn delete(&self, caller: &Caller, id: &str, meta: &CommandMetadata) -> AccountResult<()> {
        let command = ConnectedAccountCommand::Delete { project_id: caller.project_id };
        self.locked_command(caller.project_id, id, command, meta).await.map(drop)
    }

    /// A change that may end the account's use, under its user's lock (see
    /// `precondition_lock`), released once the views have the change.
    async fn locked_command(
        &self,
        project_id: ProjectId,
        id: &str,
        command: ConnectedAccountCommand,
        meta: &CommandMetadata,
    ) -> AccountResult<Committed> {
        let held = self.lock_user_of(project_id, id).await?;
        let committed = widen(self.bus.connected_account(id, command, meta).await);
        if let Some(held) = held {
            held.release_after(&self.bus, &committed).await;
        }
        committed
    }

    /// The locks that order instance creates against what can break their precondition.
    pub fn locks(&self) -> &PreconditionLocks {
        self.auth_configs.locks()
    }

    /// The lock of the account's user, held around a change that may end the account's use,
    /// until its views have it; none for an account this project does not have (the command
    /// then refuses it).
    async fn lock_user_of(&self, project_id: ProjectId, id: &str) -> AccountResult<Option<Held>> {
        let Some(user) = view::user_of(&self.pool, project_id, id).await? else { return Ok(None) };
        Ok(Some(self.locks().for_account_change(project_id, &user).await?))
    }

    pub async fn set_enabled(
        &self,
        caller: &Caller,
        id: &str,
        enabled: bool,
        meta: &CommandMetadata,
    ) -> AccountResult<()> {
        let command = ConnectedAccountCommand::SetEnabled { project_id: caller.project_id, enabled };
        self.locked_command(caller.project_id, id, command, meta).await.map(drop)
    }

    pub async fn revoke(&self, caller: &Caller, id: &str, meta: &CommandMetadata) -> AccountResult<AccountRecord> {
        let command = ConnectedAccountCommand::Revoke { project_id: caller.project_id };
        let committed = self.locked_command(caller.project_id, id, command, meta).await?;
        self.after_write(caller, id, &committed).await
    }

    /// Deletes the user's accounts for `auth_config_ids`; returns how many.
    pub async fn delete_for(
        &self,
        caller: &Caller,
        user_id: &str,
        auth_config_ids: &[String],
        meta: &CommandMetadata,
    ) -> AccountResult<usize> {
        let ids = view::of_user_for(&self.pool, caller.project_id, user_id, auth_config_ids).await?;
        for id in &ids {
            self.delete(caller, id, meta).await?;
        }
        Ok(ids.len())
    }

    /// Stores the tokens of a completed OAuth flow: ACTIVE.
    pub async fn complete_oauth(
        &self,
        project_id: ProjectId,
        id: &str,
        tokens: SecretString,
        state: String,
        meta: &CommandMetadata,
    ) -> AccountResult<()> {
        let key = self.vault.data_key(&Credential::ConnectedAccount(id.to_owned()).owner()).await?;
        let now = chrono::Utc::now().timestamp();
        let command = ConnectedAccountCommand::CompleteOAuth {
            project_id,
            credential: key.seal(&tokens),
            oauth_state: state,
            now,
        };
        self.command(id, command, meta).await
    }

    /// A pending connection whose OAuth flow failed: FAILED.
    pub async fn fail(
        &self,
        project_id: ProjectId,
        id: &str,
        reason: &str,
        meta: &CommandMetadata,
    ) -> AccountResult<()> {
        self.command(id, ConnectedAccountCommand::Fail { project_id, reason: reason.to_owned() }, meta).await
    }

    /// The account's status, read from its events (authoritative, unlike the view).
    pub async fn status(&self, project_id: ProjectId, id: &str) -> AccountResult<domain::connected_account::Status> {
        let account: ConnectedAccount = widen(self.bus.load(id).await)?;
        account.status_in(project_id).ok_or_else(|| refused(ConnectedAccountError::NotFound))
    }

    /// The credential of an ACTIVE account, opened, with the account it belongs to; none when
    /// the account is not ACTIVE (or its credential was just destroyed). Read from its events,
    /// not the view: a revoke or delete counts from its commit. Only the gateway calls this,
    /// right before it forwards a request.
    pub async fn open_active_credential(
        &self,
        project_id: ProjectId,
        id: &str,
    ) -> AccountResult<Option<(AccountRef, SecretString)>> {
        Ok(self.open_active(project_id, id).await?.map(|(account, plain, _)| (account, plain)))
    }

    /// As [`Self::open_active_credential`], with the sealed form the credential was read from
    /// (what a refresh replaces).
    pub async fn open_active(
        &self,
        project_id: ProjectId,
        id: &str,
    ) -> AccountResult<Option<(AccountRef, SecretString, SealedSecret)>> {
        let account: ConnectedAccount = widen(self.bus.load(id).await)?;
        let Some((account_ref, sealed)) = account.active_credential_in(project_id) else { return Ok(None) };
        match self.vault.open(sealed).await {
            Ok(plain) => Ok(Some((account_ref.clone(), plain, sealed.clone()))),
            Err(crate::secrets::OpenError::Shredded) => Ok(None),
            Err(e) => Err(AppError::Failed(e.into())),
        }
    }

    /// Stores an ACTIVE account's refreshed OAuth tokens in place of `replaces`, sealed under
    /// the account's data key as the tokens of its flow were. Refused with `CredentialChanged`
    /// if the account holds other tokens by now, or is no longer ACTIVE.
    pub async fn store_refreshed(
        &self,
        project_id: ProjectId,
        id: &str,
        replaces: &SealedSecret,
        tokens: &SecretString,
        meta: &CommandMetadata,
    ) -> AccountResult<()> {
        // The key that sealed the tokens it replaces: the account's own (`connected_account:<id>`),
        // read by id so that a key destroyed meanwhile is not made anew.
        let key = match self.vault.key_of(replaces).await {
            Ok(key) => key,
            Err(crate::secrets::OpenError::Shredded) => {
                return Err(refused(ConnectedAccountError::CredentialChanged));
            }
            Err(e) => return Err(AppError::Failed(e.into())),
        };
        let command =
            ConnectedAccountCommand::Refresh { project_id, replaces: replaces.clone(), refreshed: key.seal(tokens) };
        self.command(id, command, meta).await
    }

    /// An ACTIVE account whose tokens `replaces` could not be refreshed: EXPIRED with `reason`.
    pub async fn expire_credential(
        &self,
        project_id: ProjectId,
        id: &str,
        replaces: &SealedSecret,
        reason: &str,
        meta: &CommandMetadata,
    ) -> AccountResult<()> {
        let command = ConnectedAccountCommand::ExpireCredential {
            project_id,
            replaces: replaces.clone(),
            reason: reason.to_owned(),
        };
        self.locked_command(project_id, id, command, meta).await.map(drop)
    }

    /// The auth config of an account, for its OAuth flow.
    pub async fn auth_config_of(
        &self,
        project_id: ProjectId,
        auth_config_id: &str,
    ) -> AccountResult<AuthConfigSettings> {
        self.open_auth_config(project_id, auth_config_id).await
    }

    pub fn auth_configs(&self) -> &AuthConfigs {
        &self.auth_configs
    }

    /// Expires the pending connections whose time is up; returns how many.
    pub async fn expire_due(&self) -> AccountResult<usize> {
        let now = chrono::Utc::now();
        let due = view::due(&self.pool, now).await?;
        let meta = CommandMetadata::actor("system:expiry");
        for id in &due {
            let expire =
                ConnectedAccountCommand::Expire { now: now.timestamp(), lifetime_secs: self.pending_ttl.as_secs() };
            self.command(id, expire, &meta).await?;
        }
        Ok(due.len())
    }
}
