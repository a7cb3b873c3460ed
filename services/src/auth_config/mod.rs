//! Auth configs (Composio), surface-independent: create, list, read, change, enable or
//! disable, delete. Credentials are split into public fields (kept in clear) and secret ones
//! (sealed under the auth config's data key, destroyed when it is deleted).

mod view;

pub use view::{AuthConfigFilter, AuthConfigRecord, AuthConfigsView, unknown as unknown_auth_configs};

use crate::error::AppError;
use crate::precondition_lock::PreconditionLocks;
use crate::project::Caller;
use crate::secrets::{Credential, Vault};
use crate::store::{self, CommandBus, CommandMetadata, Committed};
use cqrs_es::Aggregate;
use domain::auth_config::{AuthConfig, AuthConfigCommand, AuthConfigError, split_credentials};
use events::auth_config::AuthConfigSettings;
use events::{ProjectId, SealedSecret};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use sqlx::PgPool;

pub type AuthConfigResult<T> = Result<T, AppError<AuthConfigError>>;

/// An auth config as given, before its secrets are sealed.
pub struct AuthConfigInput {
    pub name: String,
    pub toolkit: String,
    pub managed: bool,
    pub auth_scheme: String,
    /// The credentials object (its JSON text), secret fields and all.
    pub credentials: Option<SecretString>,
    pub proxy_url: Option<String>,
    pub proxy_auth_key: Option<SecretString>,
    pub restrict_to_following_tools: Vec<String>,
    pub tools_for_connected_account_creation: Vec<String>,
    pub tools_available_for_execution: Vec<String>,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Default)]
pub struct AuthConfigChanges {
    pub name: Option<String>,
    pub credentials: Option<SecretString>,
    pub proxy: Option<Option<(String, Option<SecretString>)>>,
    pub restrict_to_following_tools: Option<Vec<String>>,
    pub tools_for_connected_account_creation: Option<Vec<String>>,
    pub tools_available_for_execution: Option<Vec<String>>,
}

#[derive(Clone)]
pub struct AuthConfigs {
    bus: CommandBus,
    vault: Vault,
    pool: PgPool,
    /// Shared with the connected accounts and the instances built over them (one pool).
    locks: PreconditionLocks,
}

fn parse_credentials(credentials: &SecretString) -> AuthConfigResult<Map<String, Value>> {
    serde_json::from_str(credentials.expose_secret())
        .map_err(|_| AppError::Failed(anyhow::anyhow!("credentials are not a JSON object")))
}

impl AuthConfigs {
    pub fn new(bus: CommandBus, vault: Vault, pool: PgPool) -> Self {
        let locks = PreconditionLocks::new(&pool);
        Self { bus, vault, pool, locks }
    }

    /// The locks that order instance creates against what can break their precondition.
    pub fn locks(&self) -> &PreconditionLocks {
        &self.locks
    }

    /// Seals the secret credential fields (and the proxy key) under the config's data key.
    async fn seal(
        &self,
        id: &str,
        credentials: Option<&SecretString>,
        proxy_key: Option<&SecretString>,
    ) -> AuthConfigResult<SealedParts> {
        let (public, secret) = match credentials {
            Some(c) => split_credentials(parse_credentials(c)?),
            None => (Map::new(), Map::new()),
        };
        if secret.is_empty() && proxy_key.is_none() {
            return Ok(SealedParts { public, secret_fields: vec![], secret: None, proxy_auth_key: None });
        }
        let key = self.vault.data_key(&Credential::AuthConfig(id.to_owned()).owner()).await?;
        let secret_fields = secret.keys().cloned().collect();
        let sealed = (!secret.is_empty()).then(|| key.seal(&SecretString::from(Value::Object(secret).to_string())));
        Ok(SealedParts { public, secret_fields, secret: sealed, proxy_auth_key: proxy_key.map(|k| key.seal(k)) })
    }

    pub async fn create(
        &self,
        caller: &Caller,
        input: AuthConfigInput,
        meta: &CommandMetadata,
    ) -> AuthConfigResult<AuthConfigRecord> {
        let id = crate::ids::nanoid("ac_");
        let parts = self.seal(&id, input.credentials.as_ref(), input.proxy_auth_key.as_ref()).await?;
        let settings = AuthConfigSettings {
            name: input.name,
            toolkit: input.toolkit,
            managed: input.managed,
            auth_scheme: input.auth_scheme,
            public_credentials: parts.public,
            secret_fields: parts.secret_fields,
            secret_credentials: parts.secret,
            proxy_url: input.proxy_url,
            proxy_auth_key: parts.proxy_auth_key,
            restrict_to_following_tools: input.restrict_to_following_tools,
            tools_for_connected_account_creation: input.tools_for_connected_account_creation,
            tools_available_for_execution: input.tools_available_for_execution,
        };
        let command = AuthConfigCommand::Create { project_id: caller.project_id, auth_config_id: id.clone(), settings };
        let committed = self.bus.auth_config(&id, command, meta).await?;
        self.after_write(caller, &id, &committed).await
    }

    pub async fn update(
        &self,
        caller: &Caller,
        id: &str,
        changes: AuthConfigChanges,
        meta: &CommandMetadata,
    ) -> AuthConfigResult<AuthConfigRecord> {
        let current: AuthConfig = self.bus.load(id).await?;
        let mut settings =
            current.settings_in(caller.project_id).ok_or(AppError::Rejected(AuthConfigError::NotFound))?.clone();
        if let Some(name) = changes.name {
            settings.name = name;
        }
        if let Some(credentials) = &changes.credentials {
            let parts = self.seal(id, Some(credentials), None).await?;
            settings.public_credentials = parts.public;
            settings.secret_fields = parts.secret_fields;
            settings.secret_credentials = parts.secret;
        }
        if let Some(proxy) = changes.proxy {
            let (url, key) = match proxy {
                Some((url, key)) => (Some(url), key),
                None => (None, None),
            };
            settings.proxy_url = url;
            settings.proxy_auth_key = self.seal(id, None, key.as_ref()).await?.proxy_auth_key;
        }
        if let Some(tools) = changes.restrict_to_following_tools {
            settings.restrict_to_following_tools = tools;
        }
        if let Some(tools) = changes.tools_for_connected_account_creation {
            settings.tools_for_connected_account_creation = tools;
        }
        if let Some(tools) = changes.tools_available_for_execution {
            settings.tools_available_for_execution = tools;
        }
        let command = AuthConfigCommand::Update { project_id: caller.project_id, settings };
        let committed = self.bus.auth_config(id, command, meta).await?;
        self.after_write(caller, id, &committed).await
    }

    pub async fn set_enabled(
        &self,
        caller: &Caller,
        id: &str,
        enabled: bool,
        meta: &CommandMetadata,
    ) -> AuthConfigResult<()> {
        // A disable ends the use of every account of the config: ordered against creates.
        let command = AuthConfigCommand::SetEnabled { project_id: caller.project_id, enabled };
        self.locked_command(caller.project_id, id, command, meta).await
    }

    /// A change that may end the use of the config's accounts, under its lock (see
    /// `precondition_lock`), released once the views have the change.
    async fn locked_command(
        &self,
        project_id: ProjectId,
        id: &str,
        command: AuthConfigCommand,
        meta: &CommandMetadata,
    ) -> AuthConfigResult<()> {
        let held = self.locks.for_auth_config_change(project_id, id).await?;
        let committed = self.bus.auth_config(id, command, meta).await;
        held.release_after(&self.bus, &committed).await;
        committed.map(drop)
    }

    pub async fn delete(&self, caller: &Caller, id: &str, meta: &CommandMetadata) -> AuthConfigResult<()> {
        let command = AuthConfigCommand::Delete { project_id: caller.project_id };
        self.locked_command(caller.project_id, id, command, meta).await
    }

    /// An auth config of the caller's project: from the view, or from its events while this
    /// process has answered writes the view does not hold yet.
    pub async fn get(&self, caller: &Caller, id: &str) -> AuthConfigResult<AuthConfigRecord> {
        if self.bus.views_lagging() {
            return self.read_through(caller, id).await;
        }
        view::find(&self.pool, caller.project_id, id).await?.ok_or(AppError::Rejected(AuthConfigError::NotFound))
    }

    /// The auth config after a committed write: from the view when it holds the write, else
    /// from the events.
    async fn after_write(
        &self,
        caller: &Caller,
        id: &str,
        committed: &Committed,
    ) -> AuthConfigResult<AuthConfigRecord> {
        if committed.visible
            && let Some(record) = view::find(&self.pool, caller.project_id, id).await?
        {
            return Ok(record);
        }
        self.read_through(caller, id).await
    }

    async fn read_through(&self, caller: &Caller, id: &str) -> AuthConfigResult<AuthConfigRecord> {
        let config: AuthConfig = self.bus.load(id).await?;
        let settings = config.settings_in(caller.project_id).ok_or(AppError::Rejected(AuthConfigError::NotFound))?;
        let enabled = config.accepts_connections(caller.project_id).map_err(AppError::Rejected)?;
        let times = store::stream_times(&self.pool, AuthConfig::TYPE, id)
            .await?
            .ok_or_else(|| AppError::Failed(anyhow::anyhow!("auth config {id} has no events")))?;
        let connections = view::connections(&self.pool, id).await?;
        Ok(AuthConfigRecord::from_settings(caller.project_id, id, settings, enabled, times, connections))
    }

    /// A page of the caller's auth configs and the total.
    pub async fn list(
        &self,
        caller: &Caller,
        filter: &AuthConfigFilter,
    ) -> AuthConfigResult<(Vec<AuthConfigRecord>, i64)> {
        Ok(view::list(&self.pool, caller.project_id, filter).await?)
    }

    /// The toolkits of the caller's auth configs among `ids` (a Composio server's toolkits).
    pub async fn toolkits_of(&self, caller: &Caller, ids: &[String]) -> AuthConfigResult<Vec<String>> {
        Ok(view::toolkits(&self.pool, caller.project_id, ids).await?)
    }

    /// The authoritative state, from the events: whether it may take new connections.
    pub async fn load(&self, project_id: ProjectId, id: &str) -> AuthConfigResult<AuthConfig> {
        let config: AuthConfig = self.bus.load(id).await?;
        config.accepts_connections(project_id).map_err(AppError::Rejected)?;
        Ok(config)
    }

    /// The secret credential fields, opened (the OAuth client secret, for a token exchange).
    pub async fn secret_credentials(&self, settings: &AuthConfigSettings) -> AuthConfigResult<Map<String, Value>> {
        let Some(sealed) = &settings.secret_credentials else { return Ok(Map::new()) };
        let plain = self.vault.open(sealed).await.map_err(|e| AppError::Failed(e.into()))?;
        parse_credentials(&plain)
    }
}

struct SealedParts {
    public: Map<String, Value>,
    secret_fields: Vec<String>,
    secret: Option<SealedSecret>,
    proxy_auth_key: Option<SealedSecret>,
}
