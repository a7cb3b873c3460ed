use crate::feed::FeedEvent;
use crate::projection::Projection;
use crate::store::StreamTimes;
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
    pub auth_config_ids: Vec<String>,
    pub allowed_tools: Vec<String>,
    pub toolkits: Vec<String>,
    pub no_auth_apps: Vec<String>,
    pub managed_auth_via_composio: bool,
    /// Live instances of the server (counted when read, from the instances' view).
    pub server_instance_count: i64,
}

impl ServerRecord {
    /// A server's row, from its configuration: what the view stores, and what a write answers
    /// with when the view is behind.
    pub fn from_config(project_id: ProjectId, server_id: ServerId, c: &ServerConfig, times: StreamTimes) -> Self {
        Self {
            server_id: *server_id.as_uuid(),
            project_id: *project_id.as_uuid(),
            name: c.name.clone(),
            description: c.description.clone(),
            transport: c.transport.as_str().to_owned(),
            url: c.url.clone(),
            connection: c.connection.as_str().to_owned(),
            command: c.command.clone(),
            args: c.args.clone(),
            env_names: c.env.keys().cloned().collect(),
            custom_headers: Json(
                c.custom_headers.iter().map(|h| HeaderSummary { name: h.name.clone(), enabled: h.enabled }).collect(),
            ),
            oauth_client_id: c.oauth_client_id.clone(),
            has_oauth_client_secret: c.oauth_client_secret.is_some(),
            oauth_scope: c.oauth_scope.clone(),
            proxy_url: c.proxy_url.clone(),
            has_proxy_auth_token: c.proxy_auth_token.is_some(),
            proxy_auth_header: c.proxy_auth_header.clone(),
            request_timeout_ms: i64::try_from(c.request_timeout_ms).unwrap_or(i64::MAX),
            max_total_timeout_ms: i64::try_from(c.max_total_timeout_ms).unwrap_or(i64::MAX),
            created_at: times.first,
            updated_at: times.last,
            version: times.sequence,
            auth_config_ids: c.auth_config_ids.clone(),
            allowed_tools: c.allowed_tools.clone(),
            toolkits: c.toolkits.clone(),
            no_auth_apps: c.no_auth_apps.clone(),
            managed_auth_via_composio: c.managed_auth_via_composio,
            server_instance_count: 0,
        }
    }
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
            Some(ServerEvent::ServerRegistered(e)) => {
                upsert(conn, &record_at(e.project_id, e.server_id, &e.config, event)).await
            }
            Some(ServerEvent::ServerUpdated(e)) => {
                upsert(conn, &record_at(e.project_id, e.server_id, &e.config, event)).await
            }
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

fn record_at(project_id: ProjectId, server_id: ServerId, config: &ServerConfig, event: &FeedEvent) -> ServerRecord {
    let times = StreamTimes { first: event.recorded_at, last: event.recorded_at, sequence: event.sequence };
    ServerRecord::from_config(project_id, server_id, config, times)
}

/// Writes a server's whole row; `created_at` is set by the first write only.
async fn upsert(conn: &mut PgConnection, r: &ServerRecord) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO view_servers (server_id, project_id, name, description, transport, url, connection, command, args, \
            env_names, custom_headers, oauth_client_id, has_oauth_client_secret, oauth_scope, proxy_url, \
            has_proxy_auth_token, proxy_auth_header, request_timeout_ms, max_total_timeout_ms, created_at, updated_at, version, \
            auth_config_ids, allowed_tools, toolkits, no_auth_apps, managed_auth_via_composio) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, \
            $23, $24, $25, $26, $27) \
         ON CONFLICT (server_id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description, \
            transport = EXCLUDED.transport, url = EXCLUDED.url, connection = EXCLUDED.connection, \
            command = EXCLUDED.command, args = EXCLUDED.args, env_names = EXCLUDED.env_names, \
            custom_headers = EXCLUDED.custom_headers, oauth_client_id = EXCLUDED.oauth_client_id, \
            has_oauth_client_secret = EXCLUDED.has_oauth_client_secret, oauth_scope = EXCLUDED.oauth_scope, \
            proxy_url = EXCLUDED.proxy_url, has_proxy_auth_token = EXCLUDED.has_proxy_auth_token, \
            proxy_auth_header = EXCLUDED.proxy_auth_header, request_timeout_ms = EXCLUDED.request_timeout_ms, \
            max_total_timeout_ms = EXCLUDED.max_total_timeout_ms, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version, \
            auth_config_ids = EXCLUDED.auth_config_ids, allowed_tools = EXCLUDED.allowed_tools, toolkits = EXCLUDED.toolkits, \
            no_auth_apps = EXCLUDED.no_auth_apps, managed_auth_via_composio = EXCLUDED.managed_auth_via_composio",
    )
    .bind(r.server_id)
    .bind(r.project_id)
    .bind(&r.name)
    .bind(&r.description)
    .bind(&r.transport)
    .bind(&r.url)
    .bind(&r.connection)
    .bind(&r.command)
    .bind(&r.args)
    .bind(&r.env_names)
    .bind(&r.custom_headers)
    .bind(&r.oauth_client_id)
    .bind(r.has_oauth_client_secret)
    .bind(&r.oauth_scope)
    .bind(&r.proxy_url)
    .bind(r.has_proxy_auth_token)
    .bind(&r.proxy_auth_header)
    .bind(r.request_timeout_ms)
    .bind(r.max_total_timeout_ms)
    .bind(r.created_at)
    .bind(r.updated_at)
    .bind(r.version)
    .bind(&r.auth_config_ids)
    .bind(&r.allowed_tools)
    .bind(&r.toolkits)
    .bind(&r.no_auth_apps)
    .bind(r.managed_auth_via_composio)
    .execute(conn)
    .await?;
    Ok(())
}

const COLUMNS: &str = "s.server_id, s.project_id, s.name, s.description, s.transport, s.url, s.connection, s.command, \
    s.args, s.env_names, s.custom_headers, s.oauth_client_id, s.has_oauth_client_secret, s.oauth_scope, s.proxy_url, \
    s.has_proxy_auth_token, s.proxy_auth_header, s.request_timeout_ms, s.max_total_timeout_ms, s.created_at, s.updated_at, \
    s.version, s.auth_config_ids, s.allowed_tools, s.toolkits, s.no_auth_apps, s.managed_auth_via_composio, \
    (SELECT count(*) FROM view_connections c WHERE c.server_key = 'server:' || s.server_id::text \
       AND c.instance_id IS NOT NULL) AS server_instance_count";

/// What a server list asks for (GAIA lists everything, oldest first).
#[derive(Debug, Clone)]
pub struct ServerFilter {
    /// Case-insensitive part of the name.
    pub name: Option<String>,
    /// Servers with any of these toolkits / auth configs.
    pub toolkits: Vec<String>,
    pub auth_config_ids: Vec<String>,
    pub order_by_updated: bool,
    pub ascending: bool,
    pub limit: i64,
    pub offset: i64,
}

impl Default for ServerFilter {
    fn default() -> Self {
        Self {
            name: None,
            toolkits: Vec::new(),
            auth_config_ids: Vec::new(),
            order_by_updated: false,
            ascending: true,
            limit: i64::MAX,
            offset: 0,
        }
    }
}

pub(super) async fn find(
    pool: &PgPool,
    project_id: ProjectId,
    server_id: ServerId,
) -> sqlx::Result<Option<ServerRecord>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM view_servers s WHERE s.server_id = $1 AND s.project_id = $2 AND s.deleted_at IS NULL"
    ))
    .bind(server_id.as_uuid())
    .bind(project_id.as_uuid())
    .fetch_optional(pool)
    .await
}

/// A page of live servers and the total.
pub(super) async fn list(
    pool: &PgPool,
    project_id: ProjectId,
    f: &ServerFilter,
) -> sqlx::Result<(Vec<ServerRecord>, i64)> {
    let condition = "s.project_id = $1 AND s.deleted_at IS NULL \
        AND ($2::text IS NULL OR s.name ILIKE '%' || $2 || '%') \
        AND (cardinality($3::text[]) = 0 OR s.toolkits && $3) \
        AND (cardinality($4::text[]) = 0 OR s.auth_config_ids && $4)";
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM view_servers s WHERE {condition}"))
        .bind(project_id.as_uuid())
        .bind(&f.name)
        .bind(&f.toolkits)
        .bind(&f.auth_config_ids)
        .fetch_one(pool)
        .await?;
    let order = format!(
        "s.{} {}, s.server_id",
        if f.order_by_updated { "updated_at" } else { "created_at" },
        if f.ascending { "ASC" } else { "DESC" }
    );
    let items = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM view_servers s WHERE {condition} ORDER BY {order} LIMIT $5 OFFSET $6"
    ))
    .bind(project_id.as_uuid())
    .bind(&f.name)
    .bind(&f.toolkits)
    .bind(&f.auth_config_ids)
    .bind(f.limit)
    .bind(f.offset)
    .fetch_all(pool)
    .await?;
    Ok((items, total))
}
