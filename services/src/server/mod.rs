//! The MCP server registry, surface-independent: every HTTP surface that registers, changes,
//! reads or deletes servers goes through [`Servers`].

mod directory;
mod view;

pub use directory::PgServerDirectory;
pub use view::{HeaderSummary, ServerFilter, ServerRecord, ServersView};

use crate::error::AppError;
use crate::project::Caller;
use crate::secrets::{Credential, DataKey, Vault};
use crate::store::{self, CommandBus, CommandMetadata, Committed};
use cqrs_es::Aggregate;
use domain::server::{
    Server, ServerCommand, ServerDirectory, ServerError, ServerPatch, ServerSpec, validate_patch, validate_spec,
};
use events::server::ServerConfig;
use events::{ProjectId, SealedSecret, ServerId};
use secrecy::SecretString;
use sqlx::PgPool;
use std::sync::Arc;

pub type ServerResult<T> = Result<T, AppError<ServerError>>;

#[derive(Clone)]
pub struct Servers {
    bus: CommandBus,
    vault: Vault,
    pool: PgPool,
    directory: Arc<dyn ServerDirectory>,
}

impl Servers {
    pub fn new(bus: CommandBus, vault: Vault, pool: PgPool, directory: Arc<dyn ServerDirectory>) -> Self {
        Self { bus, vault, pool, directory }
    }

    /// Registers a server (with a fresh id from the caller) in the caller's project and
    /// returns it as stored.
    pub async fn register(
        &self,
        caller: &Caller,
        server_id: ServerId,
        spec: ServerSpec<SecretString>,
        meta: &CommandMetadata,
    ) -> ServerResult<ServerRecord> {
        let project_id = caller.project_id;
        // Every rule is checked before a data key exists, so refused input leaves nothing
        // behind; the aggregate checks again when it decides, and that is what counts.
        validate_spec(&spec).map_err(|e| AppError::Rejected(e.into()))?;
        Server::ensure_name_free(self.directory.as_ref(), project_id, &spec.name, server_id)
            .await
            .map_err(AppError::Rejected)?;
        Server::ensure_auth_configs_exist(self.directory.as_ref(), project_id, &spec.composio.auth_config_ids)
            .await
            .map_err(AppError::Rejected)?;
        let key = self.key_if(spec.has_secrets(), server_id).await?;
        let spec = spec.try_seal(|s| seal(key.as_ref(), &s))?;
        let committed =
            self.bus.server(server_id, ServerCommand::Register { project_id, server_id, spec }, meta).await?;
        self.after_write(caller, server_id, committed).await
    }

    /// Applies a partial update and returns the server as it now is.
    pub async fn update(
        &self,
        caller: &Caller,
        server_id: ServerId,
        patch: ServerPatch<SecretString>,
        meta: &CommandMetadata,
    ) -> ServerResult<ServerRecord> {
        let current: Server = self.bus.load(&server_id.to_string()).await?;
        let config = current.config_in(caller.project_id).ok_or(AppError::Rejected(ServerError::NotFound))?;
        validate_patch(config, &patch).map_err(|e| AppError::Rejected(e.into()))?;
        if let Some(name) = &patch.name {
            Server::ensure_name_free(self.directory.as_ref(), caller.project_id, name, server_id)
                .await
                .map_err(AppError::Rejected)?;
        }
        let key = self.key_if(patch.has_secrets(), server_id).await?;
        let patch = patch.try_seal(|s| seal(key.as_ref(), &s))?;
        let command = ServerCommand::Update { project_id: caller.project_id, patch };
        let committed = self.bus.server(server_id, command, meta).await?;
        self.after_write(caller, server_id, committed).await
    }

    /// The server after a committed write: from the view when it includes the write, else
    /// from the events themselves, so that a lagging projector never turns a committed write
    /// into an error or a stale answer.
    async fn after_write(
        &self,
        caller: &Caller,
        server_id: ServerId,
        committed: Committed,
    ) -> ServerResult<ServerRecord> {
        if committed.visible
            && let Ok(Some(record)) = view::find(&self.pool, caller.project_id, server_id).await
        {
            return Ok(record);
        }
        self.read_through(caller, server_id).await
    }

    /// A server as its events say, for when the view cannot be trusted to hold it yet.
    async fn read_through(&self, caller: &Caller, server_id: ServerId) -> ServerResult<ServerRecord> {
        let server: Server = self.bus.load(&server_id.to_string()).await?;
        let config = server.config_in(caller.project_id).ok_or(AppError::Rejected(ServerError::NotFound))?;
        let times = store::stream_times(&self.pool, Server::TYPE, &server_id.to_string())
            .await?
            .ok_or_else(|| AppError::Failed(anyhow::anyhow!("server {server_id} has no events")))?;
        Ok(ServerRecord::from_config(caller.project_id, server_id, config, times))
    }

    /// Deletes a server; its secrets' data key is destroyed in the same transaction.
    pub async fn delete(&self, caller: &Caller, server_id: ServerId, meta: &CommandMetadata) -> ServerResult<()> {
        self.bus.server(server_id, ServerCommand::Delete { project_id: caller.project_id }, meta).await?;
        Ok(())
    }

    /// A live server of the caller's project. Read from the view, or from the events while
    /// this process has answered writes the view does not hold yet (read-your-writes when the
    /// projector is behind).
    pub async fn get(&self, caller: &Caller, server_id: ServerId) -> ServerResult<ServerRecord> {
        if self.bus.views_lagging() {
            return self.read_through(caller, server_id).await;
        }
        view::find(&self.pool, caller.project_id, server_id).await?.ok_or(AppError::Rejected(ServerError::NotFound))
    }

    /// A page of the caller's live servers, and how many there are.
    pub async fn list(&self, caller: &Caller, filter: &ServerFilter) -> ServerResult<(Vec<ServerRecord>, i64)> {
        Ok(view::list(&self.pool, caller.project_id, filter).await?)
    }

    /// A live server of `project_id` as its events say (a delete counts from its commit), with
    /// its enabled custom headers and proxy token opened; none when there is no such server.
    /// Only the gateway calls this, right before it forwards a request to the server.
    pub async fn open_upstream(
        &self,
        project_id: ProjectId,
        server_id: ServerId,
    ) -> ServerResult<Option<OpenedServer>> {
        let server: Server = self.bus.load(&server_id.to_string()).await?;
        let Some(config) = server.config_in(project_id) else { return Ok(None) };
        let mut headers = Vec::new();
        for header in config.custom_headers.iter().filter(|h| h.enabled) {
            let Some(value) = self.open_secret(&header.value).await? else { return Ok(None) };
            headers.push((header.name.clone(), value));
        }
        let proxy_auth_token = match &config.proxy_auth_token {
            Some(sealed) => match self.open_secret(sealed).await? {
                Some(token) => Some(token),
                None => return Ok(None),
            },
            None => None,
        };
        Ok(Some(OpenedServer { config: config.clone(), headers, proxy_auth_token }))
    }

    /// A secret of a server, opened; none when its key was destroyed (the server was deleted
    /// after its events were read).
    async fn open_secret(&self, sealed: &SealedSecret) -> ServerResult<Option<SecretString>> {
        match self.vault.open(sealed).await {
            Ok(plain) => Ok(Some(plain)),
            Err(crate::secrets::OpenError::Shredded) => Ok(None),
            Err(e) => Err(AppError::Failed(e.into())),
        }
    }

    async fn key_if(&self, needed: bool, server_id: ServerId) -> ServerResult<Option<DataKey>> {
        if !needed {
            return Ok(None);
        }
        Ok(Some(self.vault.data_key(&Credential::Server(server_id).owner()).await?))
    }
}

/// A live server's configuration with its upstream secrets opened (see [`Servers::open_upstream`]).
pub struct OpenedServer {
    /// As stored: its secrets still sealed.
    pub config: ServerConfig,
    /// The enabled custom headers, in order, values opened.
    pub headers: Vec<(String, SecretString)>,
    pub proxy_auth_token: Option<SecretString>,
}

fn seal(key: Option<&DataKey>, secret: &SecretString) -> ServerResult<SealedSecret> {
    key.map(|k| k.seal(secret))
        .ok_or_else(|| AppError::Failed(anyhow::anyhow!("a secret was given but no data key was fetched for it")))
}
