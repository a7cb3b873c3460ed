//! What creating an instance must look up: the user's connected accounts.

use crate::LookupFailed;
use events::ProjectId;

/// The users' connected accounts, by status. The adapter answers from the connected-account
/// view; writers of accounts wait for that view, so a caller that connected an account and
/// then creates an instance is never refused for lack of it.
#[async_trait::async_trait]
pub trait AccountDirectory: Send + Sync {
    /// Those of `auth_config_ids` for which `user_id` of `project` holds no ACTIVE connected
    /// account.
    async fn lacking_active_accounts(
        &self,
        project: ProjectId,
        user_id: &str,
        auth_config_ids: &[String],
    ) -> Result<Vec<String>, LookupFailed>;
}
