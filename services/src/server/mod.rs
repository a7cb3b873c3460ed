//! The MCP server registry, surface-independent: every HTTP surface that registers, changes,
//! reads or deletes servers goes through [`Servers`].

mod directory;
mod view;

pub use directory::PgServerDirectory;
pub use view::{HeaderSummary, ServerRecord, ServersView};

use crate::error::AppError;
use crate::project::Caller;
use crate::secrets::{Credential, DataKey, Vault};
use crate::store::{CommandBus, CommandMetadata};
use domain::server::{ServerCommand, ServerError, ServerPatch, ServerSpec};
use events::{SealedSecret, ServerId};
use secrecy::SecretString;
use sqlx::PgPool;

pub type ServerResult<T> = Result<T, AppError<ServerError>>;

#[derive(Clone)]
pub struct Servers {
    bus: CommandBus,
    vault: Vault,
    pool: PgPool,
}

impl Servers {
    pub fn new(bus: CommandBus, vault: Vault, pool: PgPool) -> Self {
        Self { bus, vault, pool }
    }

    /// Registers a server in the caller's project and returns it as stored.
    pub async fn register(
        &self,
        caller: &Caller,
        spec: ServerSpec<SecretString>,
        meta: &CommandMetadata,
    ) -> ServerResult<ServerRecord> {
        let server_id = ServerId::random();
        let key = self.key_if(spec.has_secrets(), server_id).await?;
        let spec = spec.try_seal(|s| seal(key.as_ref(), &s))?;
        let project_id = caller.project_id;
        self.bus.server(server_id, ServerCommand::Register { project_id, server_id, spec }, meta).await?;
        self.get(caller, server_id).await
    }

    /// Applies a partial update and returns the server as it now is.
    pub async fn update(
        &self,
        caller: &Caller,
        server_id: ServerId,
        patch: ServerPatch<SecretString>,
        meta: &CommandMetadata,
    ) -> ServerResult<ServerRecord> {
        // Refuse early, before creating a data key for a server the caller cannot see.
        self.get(caller, server_id).await?;
        let key = self.key_if(patch.has_secrets(), server_id).await?;
        let patch = patch.try_seal(|s| seal(key.as_ref(), &s))?;
        self.bus.server(server_id, ServerCommand::Update { project_id: caller.project_id, patch }, meta).await?;
        self.get(caller, server_id).await
    }

    /// Deletes a server; its secrets' data key is destroyed by the shredder.
    pub async fn delete(&self, caller: &Caller, server_id: ServerId, meta: &CommandMetadata) -> ServerResult<()> {
        self.bus.server(server_id, ServerCommand::Delete { project_id: caller.project_id }, meta).await?;
        Ok(())
    }

    /// A live server of the caller's project.
    pub async fn get(&self, caller: &Caller, server_id: ServerId) -> ServerResult<ServerRecord> {
        view::find(&self.pool, caller.project_id, server_id).await?.ok_or(AppError::Rejected(ServerError::NotFound))
    }

    /// The caller's live servers, oldest first.
    pub async fn list(&self, caller: &Caller) -> ServerResult<Vec<ServerRecord>> {
        Ok(view::list(&self.pool, caller.project_id).await?)
    }

    async fn key_if(&self, needed: bool, server_id: ServerId) -> ServerResult<Option<DataKey>> {
        if !needed {
            return Ok(None);
        }
        Ok(Some(self.vault.data_key(&Credential::Server(server_id).owner()).await?))
    }
}

fn seal(key: Option<&DataKey>, secret: &SecretString) -> ServerResult<SealedSecret> {
    key.map(|k| k.seal(secret))
        .ok_or_else(|| AppError::Failed(anyhow::anyhow!("a secret was given but no data key was fetched for it")))
}
