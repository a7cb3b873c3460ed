use crate::feed::FeedEvent;
use crate::projection::Projection;
use crate::store::StreamTimes;
use chrono::{DateTime, Utc};
use events::auth_config::AuthConfigSettings;
use events::{AuthConfigEvent, ProjectId};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Auth configs, their credentials reduced to public fields and the names of secret ones.
pub struct AuthConfigsView;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuthConfigRecord {
    pub auth_config_id: String,
    pub project_id: Uuid,
    pub name: String,
    pub toolkit: String,
    pub managed: bool,
    pub auth_scheme: String,
    pub public_credentials: Json<serde_json::Map<String, serde_json::Value>>,
    pub secret_fields: Vec<String>,
    pub proxy_url: Option<String>,
    pub has_proxy_auth_key: bool,
    pub restrict_to_following_tools: Vec<String>,
    pub tools_for_connected_account_creation: Vec<String>,
    pub tools_available_for_execution: Vec<String>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// ACTIVE connected accounts using it.
    pub no_of_connections: i64,
}

impl AuthConfigRecord {
    /// An auth config as its events say (for answering a write while the views lag).
    /// `no_of_connections` is counted from the accounts' view.
    pub fn from_settings(
        project_id: ProjectId,
        id: &str,
        s: &AuthConfigSettings,
        enabled: bool,
        times: StreamTimes,
        no_of_connections: i64,
    ) -> Self {
        Self {
            auth_config_id: id.to_owned(),
            project_id: *project_id.as_uuid(),
            name: s.name.clone(),
            toolkit: s.toolkit.clone(),
            managed: s.managed,
            auth_scheme: s.auth_scheme.clone(),
            public_credentials: Json(s.public_credentials.clone()),
            secret_fields: s.secret_fields.clone(),
            proxy_url: s.proxy_url.clone(),
            has_proxy_auth_key: s.proxy_auth_key.is_some(),
            restrict_to_following_tools: s.restrict_to_following_tools.clone(),
            tools_for_connected_account_creation: s.tools_for_connected_account_creation.clone(),
            tools_available_for_execution: s.tools_available_for_execution.clone(),
            enabled,
            created_at: times.first,
            updated_at: times.last,
            no_of_connections,
        }
    }
}

/// ACTIVE connected accounts of an auth config, from the accounts' view.
pub(super) async fn connections(pool: &PgPool, id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM view_connected_accounts WHERE auth_config_id = $1 AND status = 'ACTIVE' AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_one(pool)
    .await
}

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct AuthConfigFilter {
    pub toolkit_slugs: Vec<String>,
    pub show_disabled: bool,
    /// Matches the name or the id, ignoring case.
    pub search: Option<String>,
    pub managed: Option<bool>,
    pub limit: i64,
    pub offset: i64,
}

#[async_trait::async_trait]
impl Projection for AuthConfigsView {
    fn name(&self) -> &'static str {
        "auth_configs"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["view_auth_configs"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &FeedEvent) -> anyhow::Result<()> {
        let at = event.recorded_at;
        match event.decode::<AuthConfigEvent>()? {
            Some(AuthConfigEvent::AuthConfigCreated(e)) => {
                write(conn, e.project_id, &e.auth_config_id, &e.settings, at).await
            }
            Some(AuthConfigEvent::AuthConfigUpdated(e)) => {
                write(conn, e.project_id, &e.auth_config_id, &e.settings, at).await
            }
            Some(AuthConfigEvent::AuthConfigStatusChanged(e)) => {
                sqlx::query("UPDATE view_auth_configs SET enabled = $2, updated_at = $3 WHERE auth_config_id = $1")
                    .bind(&e.auth_config_id)
                    .bind(e.enabled)
                    .bind(at)
                    .execute(conn)
                    .await?;
                Ok(())
            }
            Some(AuthConfigEvent::AuthConfigDeleted(e)) => {
                sqlx::query("UPDATE view_auth_configs SET deleted_at = $2, updated_at = $2 WHERE auth_config_id = $1")
                    .bind(&e.auth_config_id)
                    .bind(at)
                    .execute(conn)
                    .await?;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

async fn write(
    conn: &mut PgConnection,
    project_id: ProjectId,
    id: &str,
    s: &AuthConfigSettings,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO view_auth_configs (auth_config_id, project_id, name, toolkit, managed, auth_scheme, public_credentials, \
            secret_fields, proxy_url, has_proxy_auth_key, restrict_to_following_tools, tools_for_connected_account_creation, \
            tools_available_for_execution, enabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, true, $14, $14) \
         ON CONFLICT (auth_config_id) DO UPDATE SET name = EXCLUDED.name, toolkit = EXCLUDED.toolkit, \
            managed = EXCLUDED.managed, auth_scheme = EXCLUDED.auth_scheme, public_credentials = EXCLUDED.public_credentials, \
            secret_fields = EXCLUDED.secret_fields, proxy_url = EXCLUDED.proxy_url, \
            has_proxy_auth_key = EXCLUDED.has_proxy_auth_key, \
            restrict_to_following_tools = EXCLUDED.restrict_to_following_tools, \
            tools_for_connected_account_creation = EXCLUDED.tools_for_connected_account_creation, \
            tools_available_for_execution = EXCLUDED.tools_available_for_execution, updated_at = EXCLUDED.updated_at",
    )
    .bind(id)
    .bind(project_id.as_uuid())
    .bind(&s.name)
    .bind(&s.toolkit)
    .bind(s.managed)
    .bind(&s.auth_scheme)
    .bind(Json(&s.public_credentials))
    .bind(&s.secret_fields)
    .bind(&s.proxy_url)
    .bind(s.proxy_auth_key.is_some())
    .bind(&s.restrict_to_following_tools)
    .bind(&s.tools_for_connected_account_creation)
    .bind(&s.tools_available_for_execution)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Selects auth configs with their count of ACTIVE connections (one grouped subquery).
const SELECT: &str = "SELECT a.auth_config_id, a.project_id, a.name, a.toolkit, a.managed, a.auth_scheme, \
    a.public_credentials, a.secret_fields, a.proxy_url, a.has_proxy_auth_key, a.restrict_to_following_tools, \
    a.tools_for_connected_account_creation, a.tools_available_for_execution, a.enabled, a.created_at, a.updated_at, \
    coalesce((SELECT count(*) FROM view_connected_accounts c WHERE c.auth_config_id = a.auth_config_id \
              AND c.status = 'ACTIVE' AND c.deleted_at IS NULL), 0) AS no_of_connections \
    FROM view_auth_configs a";

pub(super) async fn find(pool: &PgPool, project_id: ProjectId, id: &str) -> sqlx::Result<Option<AuthConfigRecord>> {
    sqlx::query_as(&format!("{SELECT} WHERE a.auth_config_id = $1 AND a.project_id = $2 AND a.deleted_at IS NULL"))
        .bind(id)
        .bind(project_id.as_uuid())
        .fetch_optional(pool)
        .await
}

pub(super) async fn list(
    pool: &PgPool,
    project_id: ProjectId,
    f: &AuthConfigFilter,
) -> sqlx::Result<(Vec<AuthConfigRecord>, i64)> {
    let condition = "a.project_id = $1 AND a.deleted_at IS NULL \
        AND (cardinality($2::text[]) = 0 OR a.toolkit = ANY($2)) \
        AND ($3 OR a.enabled) \
        AND ($4::text IS NULL OR a.name ILIKE '%' || $4 || '%' OR a.auth_config_id = $4) \
        AND ($5::bool IS NULL OR a.managed = $5)";
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM view_auth_configs a WHERE {condition}"))
        .bind(project_id.as_uuid())
        .bind(&f.toolkit_slugs)
        .bind(f.show_disabled)
        .bind(&f.search)
        .bind(f.managed)
        .fetch_one(pool)
        .await?;
    let items = sqlx::query_as(&format!(
        "{SELECT} WHERE {condition} ORDER BY a.created_at DESC, a.auth_config_id LIMIT $6 OFFSET $7"
    ))
    .bind(project_id.as_uuid())
    .bind(&f.toolkit_slugs)
    .bind(f.show_disabled)
    .bind(&f.search)
    .bind(f.managed)
    .bind(f.limit)
    .bind(f.offset)
    .fetch_all(pool)
    .await?;
    Ok((items, total))
}

/// Those of `ids` that are not live auth configs of `project_id`.
pub async fn unknown(pool: &PgPool, project_id: ProjectId, ids: &[String]) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT id FROM UNNEST($2::text[]) AS id WHERE NOT EXISTS \
           (SELECT 1 FROM view_auth_configs a WHERE a.auth_config_id = id AND a.project_id = $1 AND a.deleted_at IS NULL)",
    )
    .bind(project_id.as_uuid())
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// The distinct toolkits of live auth configs among `ids`, in the order of `ids`.
pub(super) async fn toolkits(pool: &PgPool, project_id: ProjectId, ids: &[String]) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT toolkit FROM (SELECT DISTINCT ON (a.toolkit) a.toolkit, i.ord FROM UNNEST($2::text[]) WITH ORDINALITY AS i(id, ord) \
           JOIN view_auth_configs a ON a.auth_config_id = i.id AND a.project_id = $1 AND a.deleted_at IS NULL \
           ORDER BY a.toolkit, i.ord) t ORDER BY ord",
    )
    .bind(project_id.as_uuid())
    .bind(ids)
    .fetch_all(pool)
    .await
}
