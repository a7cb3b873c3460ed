use domain::server::{LookupFailed, ServerDirectory, ServerName};
use events::{ProjectId, ServerId};
use sqlx::PgPool;

/// Answers from `server_names`, which a trigger keeps in step with committed events (see
/// migration 0004): strongly consistent, unlike the views.
pub struct PgServerDirectory {
    pool: PgPool,
}

impl PgServerDirectory {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait::async_trait]
impl ServerDirectory for PgServerDirectory {
    async fn server_named(&self, project: ProjectId, name: &ServerName) -> Result<Option<ServerId>, LookupFailed> {
        let holder: Option<String> = sqlx::query_scalar(
            r#"SELECT server_id FROM server_names WHERE project_id = $1 AND name_key = lower($2 COLLATE "und-x-icu")"#,
        )
        .bind(project.to_string())
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| LookupFailed(e.to_string()))?;
        holder.map(|id| id.parse::<ServerId>().map_err(|e| LookupFailed(e.to_string()))).transpose()
    }

    /// From the auth-config view: a caller that created an auth config waited for the view,
    /// so its own new auth configs are always found.
    async fn unknown_auth_configs(&self, project: ProjectId, ids: &[String]) -> Result<Vec<String>, LookupFailed> {
        crate::auth_config::unknown_auth_configs(&self.pool, project, ids)
            .await
            .map_err(|e| LookupFailed(e.to_string()))
    }
}
