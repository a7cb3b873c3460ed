use crate::feed::FeedEvent;
use crate::projection::Projection;
use chrono::{DateTime, Utc};
use events::instance::{ConnectionType, InstanceSettings, Slot};
use events::{InstanceEvent, InstanceId, ProjectId};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Connections (one row per slot) and the users they belong to.
pub struct InstancesView;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectionRecord {
    pub slot_id: String,
    pub project_id: Uuid,
    pub server_key: String,
    pub server_name: String,
    pub user_id: String,
    pub instance_id: Option<Uuid>,
    pub platform: Option<String>,
    pub connection_type: Option<String>,
    pub legacy: Option<bool>,
    pub read_only: Option<bool>,
    pub auth_method: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ConnectionRecord {
    pub fn is_authenticated(&self) -> bool {
        self.auth_method.is_some()
    }

    pub fn instance_id(&self) -> Option<InstanceId> {
        self.instance_id.map(InstanceId::from_uuid)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub user_id: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

fn connection_type(c: ConnectionType) -> &'static str {
    match c {
        ConnectionType::Sse => "SSE",
        ConnectionType::StreamableHttp => "StreamableHttp",
    }
}

#[async_trait::async_trait]
impl Projection for InstancesView {
    fn name(&self) -> &'static str {
        "instances"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["view_connections", "view_users"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &FeedEvent) -> anyhow::Result<()> {
        let Some(instance_event) = event.decode::<InstanceEvent>()? else { return Ok(()) };
        let slot = instance_event.slot().clone();
        if let InstanceEvent::InstanceUserErased(_) = instance_event {
            return erase(conn, event, &slot).await;
        }
        touch(conn, event, &slot).await?;
        match instance_event {
            InstanceEvent::InstanceCreated(e) => {
                set_instance(conn, event, Some(e.instance_id), Some(&e.settings)).await
            }
            InstanceEvent::InstanceSettingsChanged(e) => {
                set_instance(conn, event, Some(e.instance_id), Some(&e.settings)).await
            }
            InstanceEvent::InstanceDeleted(_) => {
                set_instance(conn, event, None, None).await?;
                set_auth(conn, event, None).await
            }
            InstanceEvent::InstanceAuthSet(e) => set_auth(conn, event, Some(method_name(e.method))).await,
            InstanceEvent::InstanceAuthCleared(_) => set_auth(conn, event, None).await,
            InstanceEvent::InstanceUserErased(_) => unreachable!("handled above"),
        }
    }
}

fn method_name(method: events::instance::AuthMethod) -> &'static str {
    use events::instance::AuthMethod;
    match method {
        AuthMethod::Oauth => "oauth",
        AuthMethod::ApiKey => "api_key",
        AuthMethod::Token => "token",
        AuthMethod::Data => "data",
    }
}

/// Makes sure the slot's row and its user's row exist, and records the event's time.
async fn touch(conn: &mut PgConnection, event: &FeedEvent, slot: &Slot) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO view_connections (slot_id, project_id, server_key, server_name, user_id, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7) \
         ON CONFLICT (slot_id) DO UPDATE SET updated_at = EXCLUDED.updated_at, version = EXCLUDED.version",
    )
    .bind(&event.aggregate_id)
    .bind(slot.project_id.as_uuid())
    .bind(slot.server.key())
    .bind(&slot.server_name)
    .bind(&slot.user_id)
    .bind(event.recorded_at)
    .bind(event.sequence)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO view_users (project_id, user_id, created_at, last_used_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (project_id, user_id) DO UPDATE SET last_used_at = EXCLUDED.last_used_at",
    )
    .bind(slot.project_id.as_uuid())
    .bind(&slot.user_id)
    .bind(event.recorded_at)
    .execute(conn)
    .await?;
    Ok(())
}

async fn set_instance(
    conn: &mut PgConnection,
    event: &FeedEvent,
    id: Option<InstanceId>,
    settings: Option<&InstanceSettings>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE view_connections SET instance_id = $2, platform = $3, connection_type = $4, legacy = $5, read_only = $6, \
            instance_created_at = CASE WHEN $2::uuid IS NULL THEN NULL \
                                       WHEN instance_id IS NOT DISTINCT FROM $2::uuid THEN instance_created_at \
                                       ELSE $7 END \
         WHERE slot_id = $1",
    )
    .bind(&event.aggregate_id)
    .bind(id.map(|i| *i.as_uuid()))
    .bind(settings.and_then(|s| s.platform.clone()))
    .bind(settings.map(|s| connection_type(s.connection_type)))
    .bind(settings.map(|s| s.legacy))
    .bind(settings.map(|s| s.read_only))
    .bind(event.recorded_at)
    .execute(conn)
    .await?;
    Ok(())
}

async fn set_auth(conn: &mut PgConnection, event: &FeedEvent, method: Option<&str>) -> anyhow::Result<()> {
    sqlx::query("UPDATE view_connections SET auth_method = $2, authenticated_at = CASE WHEN $2::text IS NULL THEN NULL ELSE $3 END WHERE slot_id = $1")
        .bind(&event.aggregate_id)
        .bind(method)
        .bind(event.recorded_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// The user was deleted: the slot's row and the user's row go.
async fn erase(conn: &mut PgConnection, event: &FeedEvent, slot: &Slot) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM view_connections WHERE slot_id = $1")
        .bind(&event.aggregate_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM view_users WHERE project_id = $1 AND user_id = $2")
        .bind(slot.project_id.as_uuid())
        .bind(&slot.user_id)
        .execute(conn)
        .await?;
    Ok(())
}

const COLUMNS: &str = "slot_id, project_id, server_key, server_name, user_id, instance_id, platform, connection_type, \
    legacy, read_only, auth_method, created_at, updated_at";

/// The live instance `instance_id`, in `project_id`.
pub(super) async fn by_instance(
    pool: &PgPool,
    project_id: ProjectId,
    instance_id: InstanceId,
) -> sqlx::Result<Option<ConnectionRecord>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM view_connections WHERE instance_id = $1 AND project_id = $2"))
        .bind(instance_id.as_uuid())
        .bind(project_id.as_uuid())
        .fetch_optional(pool)
        .await
}

/// The live instance `instance_id`, in whichever project: for the browser-facing OAuth flow,
/// where the instance id is the only credential.
pub(super) async fn by_instance_anywhere(
    pool: &PgPool,
    instance_id: InstanceId,
) -> sqlx::Result<Option<ConnectionRecord>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM view_connections WHERE instance_id = $1"))
        .bind(instance_id.as_uuid())
        .fetch_optional(pool)
        .await
}

pub(super) async fn by_slot(pool: &PgPool, slot_id: &str) -> sqlx::Result<Option<ConnectionRecord>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM view_connections WHERE slot_id = $1"))
        .bind(slot_id)
        .fetch_optional(pool)
        .await
}

/// A user's slots that hold an instance or a credential, by server name.
pub(super) async fn of_user(
    pool: &PgPool,
    project_id: ProjectId,
    user_id: &str,
) -> sqlx::Result<Vec<ConnectionRecord>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM view_connections WHERE project_id = $1 AND user_id = $2 \
           AND (instance_id IS NOT NULL OR auth_method IS NOT NULL) ORDER BY server_name, slot_id"
    ))
    .bind(project_id.as_uuid())
    .bind(user_id)
    .fetch_all(pool)
    .await
}

/// Every slot of a user, used or not (what deleting the user erases).
pub(super) async fn slots_of_user(pool: &PgPool, project_id: ProjectId, user_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT slot_id FROM view_connections WHERE project_id = $1 AND user_id = $2")
        .bind(project_id.as_uuid())
        .bind(user_id)
        .fetch_all(pool)
        .await
}

pub(super) async fn user(pool: &PgPool, project_id: ProjectId, user_id: &str) -> sqlx::Result<Option<UserRecord>> {
    sqlx::query_as("SELECT user_id, created_at, last_used_at FROM view_users WHERE project_id = $1 AND user_id = $2")
        .bind(project_id.as_uuid())
        .bind(user_id)
        .fetch_optional(pool)
        .await
}

/// One page of users, oldest first, and the total.
pub(super) async fn users(
    pool: &PgPool,
    project_id: ProjectId,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<UserRecord>, i64)> {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM view_users WHERE project_id = $1")
        .bind(project_id.as_uuid())
        .fetch_one(pool)
        .await?;
    let page = sqlx::query_as(
        "SELECT user_id, created_at, last_used_at FROM view_users WHERE project_id = $1 \
         ORDER BY created_at, user_id LIMIT $2 OFFSET $3",
    )
    .bind(project_id.as_uuid())
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok((page, total))
}
