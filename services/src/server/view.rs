use crate::feed::FeedEvent;
use crate::projection::Projection;
use chrono::{DateTime, Utc};
use events::server::ServerConfig;
use events::{ProjectId, ServerEvent, ServerId};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The server list: one row per server, secrets reduced to whether they are set.
pub struct ServersView;

/// A header as shown to clients: its name and whether it is sent, never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeaderSummary {
    pub name: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServerRecord {
    pub server_id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub transport: String,
    pub url: Option<String>,
    pub connection: String,
    pub command: Option<String>,
    pub args: Option<String>,
    pub env_names: Vec<String>,
    pub custom_headers: Json<Vec<HeaderSummary>>,
    pub oauth_client_id: Option<String>,
    pub has_oauth_client_secret: bool,
    pub oauth_scope: Option<String>,
    pub proxy_url: Option<String>,
    pub has_proxy_auth_token: bool,
    pub proxy_auth_header: String,
    pub request_timeout_ms: i64,
    pub max_total_timeout_ms: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[async_trait::async_trait]
impl Projection for ServersView {
    fn name(&self) -> &'static str {
        "servers"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["view_servers"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &FeedEvent) -> anyhow::Result<()> {
        match event.decode::<ServerEvent>()? {
            Some(ServerEvent::ServerRegistered(e)) => upsert(conn, e.project_id, e.server_id, &e.config, event).await,
            Some(ServerEvent::ServerUpdated(e)) => upsert(conn, e.project_id, e.server_id, &e.config, event).await,
            Some(ServerEvent::ServerDeleted(e)) => {
                sqlx::query(
                    "UPDATE view_servers SET deleted_at = $2, updated_at = $2, version = $3 WHERE server_id = $1",
                )
                .bind(e.server_id.as_uuid())
                .bind(event.recorded_at)
                .bind(event.sequence)
                .execute(conn)
                .await?;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// Writes a server's whole configuration; `created_at` is set by the first write only.
async fn upsert(
    conn: &mut PgConnection,
    project_id: ProjectId,
    server_id: ServerId,
    c: &ServerConfig,
    event: &FeedEvent,
) -> anyhow::Result<()> {
    let headers: Vec<HeaderSummary> =
        c.custom_headers.iter().map(|h| HeaderSummary { name: h.name.clone(), enabled: h.enabled }).collect();
    sqlx::query(
        "INSERT INTO view_servers (server_id, project_id, name, description, transport, url, connection, command, args, \
            env_names, custom_headers, oauth_client_id, has_oauth_client_secret, oauth_scope, proxy_url, \
            has_proxy_auth_token, proxy_auth_header, request_timeout_ms, max_total_timeout_ms, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20, $21) \
         ON CONFLICT (server_id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description, \
            transport = EXCLUDED.transport, url = EXCLUDED.url, connection = EXCLUDED.connection, \
            command = EXCLUDED.command, args = EXCLUDED.args, env_names = EXCLUDED.env_names, \
            custom_headers = EXCLUDED.custom_headers, oauth_client_id = EXCLUDED.oauth_client_id, \
            has_oauth_client_secret = EXCLUDED.has_oauth_client_secret, oauth_scope = EXCLUDED.oauth_scope, \
            proxy_url = EXCLUDED.proxy_url, has_proxy_auth_token = EXCLUDED.has_proxy_auth_token, \
            proxy_auth_header = EXCLUDED.proxy_auth_header, request_timeout_ms = EXCLUDED.request_timeout_ms, \
            max_total_timeout_ms = EXCLUDED.max_total_timeout_ms, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version",
    )
    .bind(server_id.as_uuid())
    .bind(project_id.as_uuid())
    .bind(&c.name)
    .bind(&c.description)
    .bind(c.transport.as_str())
    .bind(&c.url)
    .bind(c.connection.as_str())
    .bind(&c.command)
    .bind(&c.args)
    .bind(c.env.keys().cloned().collect::<Vec<_>>())
    .bind(Json(headers))
    .bind(&c.oauth_client_id)
    .bind(c.oauth_client_secret.is_some())
    .bind(&c.oauth_scope)
    .bind(&c.proxy_url)
    .bind(c.proxy_auth_token.is_some())
    .bind(&c.proxy_auth_header)
    .bind(i64::try_from(c.request_timeout_ms)?)
    .bind(i64::try_from(c.max_total_timeout_ms)?)
    .bind(event.recorded_at)
    .bind(event.sequence)
    .execute(conn)
    .await?;
    Ok(())
}

const COLUMNS: &str = "server_id, project_id, name, description, transport, url, connection, command, args, env_names, \
    custom_headers, oauth_client_id, has_oauth_client_secret, oauth_scope, proxy_url, has_proxy_auth_token, \
    proxy_auth_header, request_timeout_ms, max_total_timeout_ms, created_at, updated_at, version";

pub(super) async fn find(
    pool: &PgPool,
    project_id: ProjectId,
    server_id: ServerId,
) -> sqlx::Result<Option<ServerRecord>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM view_servers WHERE server_id = $1 AND project_id = $2 AND deleted_at IS NULL"
    ))
    .bind(server_id.as_uuid())
    .bind(project_id.as_uuid())
    .fetch_optional(pool)
    .await
}

pub(super) async fn list(pool: &PgPool, project_id: ProjectId) -> sqlx::Result<Vec<ServerRecord>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM view_servers WHERE project_id = $1 AND deleted_at IS NULL ORDER BY created_at, server_id"
    ))
    .bind(project_id.as_uuid())
    .fetch_all(pool)
    .await
}
