use domain::LookupFailed;
use domain::connected_account::AliasDirectory;
use events::ProjectId;
use sqlx::PgPool;

/// Answers from `connected_account_aliases`, which a trigger keeps in step with committed
/// events (see migration 0017): strongly consistent, unlike the views.
pub struct PgAliasDirectory {
    pool: PgPool,
}

impl PgAliasDirectory {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait::async_trait]
impl AliasDirectory for PgAliasDirectory {
    async fn alias_holder(
        &self,
        project: ProjectId,
        user_id: &str,
        toolkit: &str,
        alias: &str,
    ) -> Result<Option<String>, LookupFailed> {
        sqlx::query_scalar(
            "SELECT connected_account_id FROM connected_account_aliases \
             WHERE project_id = $1 AND user_id = $2 AND toolkit = $3 AND alias = $4",
        )
        .bind(project.to_string())
        .bind(user_id)
        .bind(toolkit)
        .bind(alias)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| LookupFailed(e.to_string()))
    }
}
