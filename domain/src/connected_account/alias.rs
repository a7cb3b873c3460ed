//! Aliases (Composio v3.1): a name a project gives an account, unique per (project, user,
//! toolkit) among live accounts, as Composio's client documents it ("Must be unique per entity
//! and toolkit within the project"). Several accounts of one user and auth config stay allowed;
//! only their aliases must differ.

use crate::LookupFailed;
use events::ProjectId;

/// The schemes whose credential a partial update may change (Composio v3.1's
/// `connection.state.authScheme` of `PATCH /connected_accounts/{id}`).
pub const UPDATABLE_SCHEMES: [&str; 6] =
    ["BEARER_TOKEN", "API_KEY", "BASIC", "BASIC_WITH_JWT", "GOOGLE_SERVICE_ACCOUNT", "SERVICE_ACCOUNT"];

/// Which live account holds an alias.
///
/// The adapter must answer from state consistent with every committed event (not from an
/// eventually consistent view); and, since two commands may race for one alias, the store must
/// refuse the second commit (a unique table written in the event transaction), so that the
/// retried command finds the alias taken here.
#[async_trait::async_trait]
pub trait AliasDirectory: Send + Sync {
    /// The live account of (`project`, `user_id`, `toolkit`) named `alias`, if there is one.
    async fn alias_holder(
        &self,
        project: ProjectId,
        user_id: &str,
        toolkit: &str,
        alias: &str,
    ) -> Result<Option<String>, LookupFailed>;
}
