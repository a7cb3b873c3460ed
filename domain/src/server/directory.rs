//! What a server command must look up outside its own events.

use super::ServerName;
use events::{ProjectId, ServerId};

pub use crate::LookupFailed;

/// The live servers of each project, by name. Names are compared ignoring case.
///
/// The adapter must answer from state that is consistent with every committed event (not
/// from an eventually consistent view), or two servers could take one name.
#[async_trait::async_trait]
pub trait ServerDirectory: Send + Sync {
    /// The live server of `project` named `name`, if there is one.
    async fn server_named(&self, project: ProjectId, name: &ServerName) -> Result<Option<ServerId>, LookupFailed>;

    /// Those of `auth_config_ids` that are not live auth configs of `project`.
    async fn unknown_auth_configs(
        &self,
        project: ProjectId,
        auth_config_ids: &[String],
    ) -> Result<Vec<String>, LookupFailed>;
}
