use super::rules::{changed_fields, config_from, patched};
use super::{ServerCommand, ServerDirectory, ServerError, ServerName};
use crate::Recorded;
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use events::server::{ServerConfig, ServerDeleted, ServerRegistered, ServerUpdated};
use events::{ProjectId, ServerEvent, ServerId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A registered MCP server, folded from its events.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Server {
    registered: Option<Registered>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Registered {
    project_id: ProjectId,
    server_id: ServerId,
    config: ServerConfig,
    deleted: bool,
}

impl Server {
    /// The live server, if it belongs to `project_id`. A deleted server and another project's
    /// server look the same as a missing one.
    fn live_in(&self, project_id: ProjectId) -> Result<&Registered, ServerError> {
        self.registered.as_ref().filter(|s| !s.deleted && s.project_id == project_id).ok_or(ServerError::NotFound)
    }

    /// The configuration of the live server, for adapters that need to act on it.
    pub fn config_in(&self, project_id: ProjectId) -> Option<&ServerConfig> {
        self.live_in(project_id).ok().map(|s| &s.config)
    }

    /// Refuses auth configs that do not exist (or were deleted) in the project.
    pub async fn ensure_auth_configs_exist(
        directory: &dyn ServerDirectory,
        project_id: ProjectId,
        auth_config_ids: &[String],
    ) -> Result<(), ServerError> {
        if auth_config_ids.is_empty() {
            return Ok(());
        }
        let unknown = directory.unknown_auth_configs(project_id, auth_config_ids).await?;
        if unknown.is_empty() { Ok(()) } else { Err(ServerError::UnknownAuthConfigs(unknown)) }
    }

    /// Refuses `name` if another live server of the project holds it.
    pub async fn ensure_name_free(
        directory: &dyn ServerDirectory,
        project_id: ProjectId,
        name: &ServerName,
        this: ServerId,
    ) -> Result<(), ServerError> {
        match directory.server_named(project_id, name).await? {
            Some(holder) if holder != this => Err(ServerError::NameTaken(name.as_str().to_owned())),
            _ => Ok(()),
        }
    }
}

impl Aggregate for Server {
    const TYPE: &'static str = <ServerEvent as events::Event>::AGGREGATE_TYPE;
    type Command = ServerCommand;
    type Event = Recorded<ServerEvent>;
    type Error = ServerError;
    type Services = Arc<dyn ServerDirectory>;

    async fn handle(
        &mut self,
        command: ServerCommand,
        directory: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), ServerError> {
        let event = match command {
            ServerCommand::Register { project_id, server_id, spec } => {
                if self.registered.is_some() {
                    return Err(ServerError::AlreadyRegistered);
                }
                Self::ensure_name_free(directory.as_ref(), project_id, &spec.name, server_id).await?;
                Self::ensure_auth_configs_exist(directory.as_ref(), project_id, &spec.composio.auth_config_ids).await?;
                let config = config_from(spec)?;
                ServerEvent::ServerRegistered(ServerRegistered { project_id, server_id, config })
            }
            ServerCommand::Update { project_id, patch } => {
                let current = self.live_in(project_id)?;
                let server_id = current.server_id;
                if let Some(name) = &patch.name {
                    Self::ensure_name_free(directory.as_ref(), project_id, name, server_id).await?;
                }
                if let Some(ids) = &patch.auth_config_ids {
                    Self::ensure_auth_configs_exist(directory.as_ref(), project_id, ids).await?;
                }
                let config = patched(&current.config, patch)?;
                let changed = changed_fields(&current.config, &config);
                if changed.is_empty() {
                    return Ok(());
                }
                let changed = changed.into_iter().map(|f| f.as_str().to_owned()).collect();
                ServerEvent::ServerUpdated(ServerUpdated { project_id, server_id, config, changed })
            }
            ServerCommand::Delete { project_id } => {
                let server_id = self.live_in(project_id)?.server_id;
                ServerEvent::ServerDeleted(ServerDeleted { project_id, server_id })
            }
        };
        sink.write(Recorded(event), self).await;
        Ok(())
    }

    fn apply(&mut self, Recorded(event): Self::Event) {
        match event {
            ServerEvent::ServerRegistered(e) => {
                self.registered = Some(Registered {
                    project_id: e.project_id,
                    server_id: e.server_id,
                    config: e.config,
                    deleted: false,
                });
            }
            ServerEvent::ServerUpdated(e) => {
                if let Some(server) = self.registered.as_mut() {
                    server.config = e.config;
                }
            }
            ServerEvent::ServerDeleted(_) => {
                if let Some(server) = self.registered.as_mut() {
                    server.deleted = true;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
