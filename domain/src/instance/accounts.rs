//! What creating an instance must look up: the user's connected accounts.

use crate::LookupFailed;
use events::ProjectId;

/// An auth config of the server that the user cannot use (yet), and why, in words for the
/// caller: "auth config is DISABLED", "no connected account", "the connected account is EXPIRED".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    pub auth_config_id: String,
    pub reason: String,
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.auth_config_id, self.reason)
    }
}

/// The users' connected accounts, by status. The adapter answers from the connected-account
/// view; writers of accounts wait for that view, so a caller that connected an account and
/// then creates an instance is never refused for lack of it.
#[async_trait::async_trait]
pub trait AccountDirectory: Send + Sync {
    /// Those of `auth_config_ids` that `user_id` of `project` cannot use, in their order: an
    /// auth config counts only while it is ENABLED and the user holds an ACTIVE (so enabled)
    /// connected account of it.
    async fn unusable_auth_configs(
        &self,
        project: ProjectId,
        user_id: &str,
        auth_config_ids: &[String],
    ) -> Result<Vec<Unusable>, LookupFailed>;
}
