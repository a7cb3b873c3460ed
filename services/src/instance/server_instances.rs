//! Instances of a project's registered servers (Composio's MCP instances): the instance
//! aggregate of (project, server, user), created only when the user holds an ACTIVE connected
//! account for every auth config of the server; deleting one also deletes that user's accounts
//! for those auth configs.

use super::view::InstanceQuery;
use super::{ConnectionRecord, CreatedInstance, Instances, SlotRef, view};
use crate::connected_account::ConnectedAccounts;
use crate::error::AppError;
use crate::project::Caller;
use crate::server::{ServerRecord, Servers};
use crate::store::CommandMetadata;
use domain::instance::{InstanceError, UserId};
use domain::server::ServerError;
use events::ServerId;
use events::instance::{ConnectionType, InstanceSettings, ServerRef};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerInstanceError {
    #[error("MCP server not found")]
    ServerNotFound,
    #[error("the user has no usable connected account for: {}", .0.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(", "))]
    MissingConnectedAccounts(Vec<domain::instance::Unusable>),
    #[error("an instance for this user already exists on this server")]
    AlreadyExists,
    #[error("instance not found")]
    InstanceNotFound,
}

pub type ServerInstanceResult<T> = Result<T, AppError<ServerInstanceError>>;

/// Carries a store failure over, with the refusal mapped by `refusal`.
fn carry<T, E: std::error::Error>(
    r: Result<T, AppError<E>>,
    refusal: impl FnOnce(E) -> ServerInstanceError,
) -> ServerInstanceResult<T> {
    r.map_err(|e| e.map_rejected(refusal))
}

/// A page of a server's instances.
pub struct InstancePage {
    pub server: ServerRecord,
    pub instances: Vec<ConnectionRecord>,
    pub total: i64,
}

#[derive(Clone)]
pub struct ServerInstances {
    instances: Instances,
    servers: Servers,
    accounts: ConnectedAccounts,
}

impl ServerInstances {
    pub fn new(instances: Instances, servers: Servers, accounts: ConnectedAccounts) -> Self {
        Self { instances, servers, accounts }
    }

    async fn server(&self, caller: &Caller, server_id: ServerId) -> ServerInstanceResult<ServerRecord> {
        carry(self.servers.get(caller, server_id).await, |_: ServerError| ServerInstanceError::ServerNotFound)
    }

    fn slot(server: &ServerRecord, user: UserId) -> SlotRef {
        SlotRef {
            server: ServerRef::Registered { server_id: ServerId::from_uuid(server.server_id) },
            server_name: server.name.clone(),
            user,
        }
    }

    /// Creates the user's instance of the server; refuses one that exists.
    pub async fn create(
        &self,
        caller: &Caller,
        server_id: ServerId,
        user: UserId,
        meta: &CommandMetadata,
    ) -> ServerInstanceResult<(CreatedInstance, ServerRecord)> {
        let server = self.server(caller, server_id).await?;
        let settings = InstanceSettings {
            platform: None,
            connection_type: ConnectionType::StreamableHttp,
            legacy: false,
            read_only: false,
        };
        // Ordered against revokes and disables of what the precondition reads (see
        // `precondition_lock`): held until the create has committed and its views have it.
        let locks = self.accounts.locks();
        let held = if server.auth_config_ids.is_empty() {
            None
        } else {
            Some(locks.for_create(caller.project_id, user.as_str(), &server.auth_config_ids).await?)
        };
        let created = self
            .instances
            .create(caller, &Self::slot(&server, user), settings, server.auth_config_ids.clone(), meta)
            .await;
        if let Some(held) = held {
            held.release().await;
        }
        let created = carry(created, |e| match e {
            InstanceError::MissingConnectedAccounts(lacking) => ServerInstanceError::MissingConnectedAccounts(lacking),
            _ => ServerInstanceError::InstanceNotFound,
        })?;
        if !created.created_now {
            return Err(AppError::Rejected(ServerInstanceError::AlreadyExists));
        }
        Ok((created, server))
    }

    /// A page of the server's instances.
    pub async fn list(
        &self,
        caller: &Caller,
        server_id: ServerId,
        query: &InstanceQuery,
    ) -> ServerInstanceResult<InstancePage> {
        let server = self.server(caller, server_id).await?;
        let key = ServerRef::Registered { server_id }.key();
        let (instances, total) = view::of_server(&self.instances.pool, caller.project_id, &key, query).await?;
        Ok(InstancePage { server, instances, total })
    }

    /// Deletes the user's instance of the server, and the user's connected accounts for the
    /// server's auth configs (no others); returns how many accounts went.
    pub async fn delete(
        &self,
        caller: &Caller,
        server_id: ServerId,
        user: UserId,
        meta: &CommandMetadata,
    ) -> ServerInstanceResult<usize> {
        let server = self.server(caller, server_id).await?;
        let slot = Self::slot(&server, user.clone());
        let record =
            carry(self.instances.user_connection(caller, &slot).await, |_| ServerInstanceError::InstanceNotFound)?;
        let instance_id =
            record.and_then(|r| r.instance_id()).ok_or(AppError::Rejected(ServerInstanceError::InstanceNotFound))?;
        carry(self.instances.delete(caller, instance_id, meta).await, |_| ServerInstanceError::InstanceNotFound)?;
        carry(self.accounts.delete_for(caller, user.as_str(), &server.auth_config_ids, meta).await, |_| {
            ServerInstanceError::InstanceNotFound
        })
    }
}
