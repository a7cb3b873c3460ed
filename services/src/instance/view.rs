use crate::feed::FeedEvent;
use crate::projection::Projection;
use chrono::{DateTime, Utc};
use events::instance::{AuthMethod, ConnectionType, InstanceSettings, Slot};
use events::{InstanceEvent, InstanceId, ProjectId};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
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
    pub instance_created_at: Option<DateTime<Utc>>,
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

fn method_name(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::Oauth => "oauth",
        AuthMethod::ApiKey => "api_key",
        AuthMethod::Token => "token",
        AuthMethod::Data => "data",
    }
}

/// A `view_connections` row, as the fold builds it.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    slot_id: String,
    project_id: Uuid,
    server_key: String,
    server_name: String,
    user_id: String,
    instance_id: Option<Uuid>,
    platform: Option<String>,
    connection_type: Option<String>,
    legacy: Option<bool>,
    read_only: Option<bool>,
    instance_created_at: Option<DateTime<Utc>>,
    auth_method: Option<String>,
    authenticated_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

/// A user's row: `None` once the user is deleted.
type UserRow = Option<(DateTime<Utc>, DateTime<Utc>)>;

impl Row {
    fn new(slot_id: &str, slot: &Slot, at: DateTime<Utc>, version: i64) -> Self {
        Self {
            slot_id: slot_id.to_owned(),
            project_id: *slot.project_id.as_uuid(),
            server_key: slot.server.key(),
            server_name: slot.server_name.clone(),
            user_id: slot.user_id.clone(),
            instance_id: None,
            platform: None,
            connection_type: None,
            legacy: None,
            read_only: None,
            instance_created_at: None,
            auth_method: None,
            authenticated_at: None,
            created_at: at,
            updated_at: at,
            version,
        }
    }

    fn set_instance(&mut self, id: Option<InstanceId>, settings: Option<&InstanceSettings>, at: DateTime<Utc>) {
        let id = id.map(|i| *i.as_uuid());
        self.instance_created_at = match id {
            None => None,
            Some(id) if self.instance_id == Some(id) => self.instance_created_at,
            Some(_) => Some(at),
        };
        self.instance_id = id;
        self.platform = settings.and_then(|s| s.platform.clone());
        self.connection_type = settings.map(|s| connection_type(s.connection_type).to_owned());
        self.legacy = settings.map(|s| s.legacy);
        self.read_only = settings.map(|s| s.read_only);
    }

    fn set_auth(&mut self, method: Option<AuthMethod>, at: DateTime<Utc>) {
        self.auth_method = method.map(|m| method_name(m).to_owned());
        self.authenticated_at = method.map(|_| at);
    }
}

/// The state of every row a batch touches, folded in memory from the rows as they were and
/// the batch's events in order, then written once each: a batch of N events costs a few
/// statements, not a few per event.
#[derive(Default)]
struct Fold {
    slots: HashMap<String, Option<Row>>,
    users: HashMap<(Uuid, String), UserRow>,
}

impl Fold {
    fn apply(&mut self, slot_id: &str, event: &InstanceEvent, at: DateTime<Utc>, version: i64) {
        let slot = event.slot();
        let user_key = (*slot.project_id.as_uuid(), slot.user_id.clone());
        if let InstanceEvent::InstanceUserErased(_) = event {
            self.slots.insert(slot_id.to_owned(), None);
            self.users.insert(user_key, None);
            return;
        }
        let user = self.users.entry(user_key).or_insert(None);
        *user = Some((user.map_or(at, |(created, _)| created), at));
        let row = self
            .slots
            .entry(slot_id.to_owned())
            .or_insert(None)
            .get_or_insert_with(|| Row::new(slot_id, slot, at, version));
        row.updated_at = at;
        row.version = version;
        match event {
            InstanceEvent::InstanceCreated(e) => row.set_instance(Some(e.instance_id), Some(&e.settings), at),
            InstanceEvent::InstanceSettingsChanged(e) => row.set_instance(Some(e.instance_id), Some(&e.settings), at),
            InstanceEvent::InstanceDeleted(_) => {
                row.set_instance(None, None, at);
                row.set_auth(None, at);
            }
            InstanceEvent::InstanceAuthSet(e) => row.set_auth(Some(e.method), at),
            InstanceEvent::InstanceAuthCleared(_) => row.set_auth(None, at),
            // Not authenticated any more: the user authorizes again (its oauthUrl).
            InstanceEvent::InstanceCredentialExpired(_) => row.set_auth(None, at),
            InstanceEvent::InstanceCredentialRefreshed(_) => row.set_auth(Some(AuthMethod::Oauth), at),
            InstanceEvent::InstanceUserErased(_) => unreachable!("handled above"),
        }
    }
}

/// The slot's row as it stood after `events` (one slot's stream, in order), by the very fold
/// the projection uses: what a read of a past state answers. `None` if the user was erased.
pub(super) fn record_as_of(events: &[FeedEvent]) -> anyhow::Result<Option<ConnectionRecord>> {
    let mut fold = Fold::default();
    let mut slot_id = None;
    for event in events {
        if let Some(instance_event) = event.decode::<InstanceEvent>()? {
            fold.apply(&event.aggregate_id, &instance_event, event.recorded_at, event.sequence);
            slot_id = Some(event.aggregate_id.as_str());
        }
    }
    let row = slot_id.and_then(|id| fold.slots.remove(id)).flatten();
    Ok(row.map(|r| ConnectionRecord {
        slot_id: r.slot_id,
        project_id: r.project_id,
        server_key: r.server_key,
        server_name: r.server_name,
        user_id: r.user_id,
        instance_id: r.instance_id,
        platform: r.platform,
        connection_type: r.connection_type,
        legacy: r.legacy,
        read_only: r.read_only,
        instance_created_at: r.instance_created_at,
        auth_method: r.auth_method,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }))
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
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    async fn apply_batch(&self, conn: &mut PgConnection, events: &[FeedEvent]) -> anyhow::Result<()> {
        let mut decoded = Vec::new();
        for event in events {
            if let Some(e) = event.decode::<InstanceEvent>()? {
                decoded.push((event, e));
            }
        }
        if decoded.is_empty() {
            return Ok(());
        }
        let mut fold = Fold::default();
        load_slots(conn, &decoded, &mut fold).await?;
        load_users(conn, &decoded, &mut fold).await?;
        for (event, instance_event) in &decoded {
            fold.apply(&event.aggregate_id, instance_event, event.recorded_at, event.sequence);
        }
        write_slots(conn, fold.slots).await?;
        write_users(conn, fold.users).await
    }
}

const ROW_COLUMNS: &str = "slot_id, project_id, server_key, server_name, user_id, instance_id, platform, \
    connection_type, legacy, read_only, instance_created_at, auth_method, authenticated_at, created_at, updated_at, version";

async fn load_slots(
    conn: &mut PgConnection,
    decoded: &[(&FeedEvent, InstanceEvent)],
    fold: &mut Fold,
) -> anyhow::Result<()> {
    let ids: Vec<String> = decoded.iter().map(|(e, _)| e.aggregate_id.clone()).collect();
    let rows: Vec<Row> = sqlx::query_as(&format!("SELECT {ROW_COLUMNS} FROM view_connections WHERE slot_id = ANY($1)"))
        .bind(&ids)
        .fetch_all(conn)
        .await?;
    for row in rows {
        fold.slots.insert(row.slot_id.clone(), Some(row));
    }
    Ok(())
}

async fn load_users(
    conn: &mut PgConnection,
    decoded: &[(&FeedEvent, InstanceEvent)],
    fold: &mut Fold,
) -> anyhow::Result<()> {
    let (projects, users): (Vec<Uuid>, Vec<String>) =
        decoded.iter().map(|(_, e)| (*e.slot().project_id.as_uuid(), e.slot().user_id.clone())).unzip();
    let rows: Vec<(Uuid, String, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT u.project_id, u.user_id, u.created_at, u.last_used_at FROM view_users u \
         JOIN UNNEST($1::uuid[], $2::text[]) AS k(project_id, user_id) USING (project_id, user_id)",
    )
    .bind(&projects)
    .bind(&users)
    .fetch_all(conn)
    .await?;
    for (project, user, created, used) in rows {
        fold.users.insert((project, user), Some((created, used)));
    }
    Ok(())
}

/// One upsert for every surviving row, one delete for every erased one.
async fn write_slots(conn: &mut PgConnection, slots: HashMap<String, Option<Row>>) -> anyhow::Result<()> {
    let (mut gone, mut rows) = (Vec::new(), Vec::new());
    for (slot_id, row) in slots {
        match row {
            Some(row) => rows.push(row),
            None => gone.push(slot_id),
        }
    }
    if !gone.is_empty() {
        sqlx::query("DELETE FROM view_connections WHERE slot_id = ANY($1)").bind(&gone).execute(&mut *conn).await?;
    }
    if rows.is_empty() {
        return Ok(());
    }
    macro_rules! column {
        ($field:ident) => {
            rows.iter().map(|r| r.$field.clone()).collect::<Vec<_>>()
        };
    }
    sqlx::query(&format!(
        "INSERT INTO view_connections ({ROW_COLUMNS}) \
         SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::text[], \
            $8::text[], $9::bool[], $10::bool[], $11::timestamptz[], $12::text[], $13::timestamptz[], $14::timestamptz[], \
            $15::timestamptz[], $16::bigint[]) \
         ON CONFLICT (slot_id) DO UPDATE SET project_id = EXCLUDED.project_id, server_key = EXCLUDED.server_key, \
            server_name = EXCLUDED.server_name, user_id = EXCLUDED.user_id, created_at = EXCLUDED.created_at, \
            instance_id = EXCLUDED.instance_id, platform = EXCLUDED.platform, \
            connection_type = EXCLUDED.connection_type, legacy = EXCLUDED.legacy, read_only = EXCLUDED.read_only, \
            instance_created_at = EXCLUDED.instance_created_at, auth_method = EXCLUDED.auth_method, \
            authenticated_at = EXCLUDED.authenticated_at, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version"
    ))
    .bind(column!(slot_id))
    .bind(column!(project_id))
    .bind(column!(server_key))
    .bind(column!(server_name))
    .bind(column!(user_id))
    .bind(column!(instance_id))
    .bind(column!(platform))
    .bind(column!(connection_type))
    .bind(column!(legacy))
    .bind(column!(read_only))
    .bind(column!(instance_created_at))
    .bind(column!(auth_method))
    .bind(column!(authenticated_at))
    .bind(column!(created_at))
    .bind(column!(updated_at))
    .bind(column!(version))
    .execute(conn)
    .await?;
    Ok(())
}

async fn write_users(conn: &mut PgConnection, users: HashMap<(Uuid, String), UserRow>) -> anyhow::Result<()> {
    let (mut gone, mut kept) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new(), Vec::new(), Vec::new()));
    for ((project, user), row) in users {
        match row {
            None => {
                gone.0.push(project);
                gone.1.push(user);
            }
            Some((created, used)) => {
                kept.0.push(project);
                kept.1.push(user);
                kept.2.push(created);
                kept.3.push(used);
            }
        }
    }
    if !gone.0.is_empty() {
        sqlx::query(
            "DELETE FROM view_users u USING UNNEST($1::uuid[], $2::text[]) AS k(project_id, user_id) \
             WHERE u.project_id = k.project_id AND u.user_id = k.user_id",
        )
        .bind(&gone.0)
        .bind(&gone.1)
        .execute(&mut *conn)
        .await?;
    }
    if !kept.0.is_empty() {
        sqlx::query(
            "INSERT INTO view_users (project_id, user_id, created_at, last_used_at) \
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[]) \
             ON CONFLICT (project_id, user_id) DO UPDATE SET created_at = EXCLUDED.created_at, last_used_at = EXCLUDED.last_used_at",
        )
        .bind(&kept.0)
        .bind(&kept.1)
        .bind(&kept.2)
        .bind(&kept.3)
        .execute(conn)
        .await?;
    }
    Ok(())
}

const COLUMNS: &str = "slot_id, project_id, server_key, server_name, user_id, instance_id, platform, connection_type, \
    legacy, read_only, instance_created_at, auth_method, created_at, updated_at";

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

/// A page of a server's live instances, and how many there are.
/// What a list of a server's instances asks for.
#[derive(Debug, Clone, Default)]
pub struct InstanceQuery {
    /// Part of the user id or instance id, ignoring case.
    pub search: Option<String>,
    pub order_by_updated: bool,
    pub ascending: bool,
    pub limit: i64,
    pub offset: i64,
}

/// A page of a server's live instances and the total.
pub(super) async fn of_server(
    pool: &PgPool,
    project_id: ProjectId,
    server_key: &str,
    q: &InstanceQuery,
) -> sqlx::Result<(Vec<ConnectionRecord>, i64)> {
    let condition = "project_id = $1 AND server_key = $2 AND instance_id IS NOT NULL \
        AND ($3::text IS NULL OR user_id ILIKE '%' || $3 || '%' OR instance_id::text ILIKE '%' || $3 || '%')";
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM view_connections WHERE {condition}"))
        .bind(project_id.as_uuid())
        .bind(server_key)
        .bind(&q.search)
        .fetch_one(pool)
        .await?;
    let order = format!(
        "{} {}, slot_id",
        if q.order_by_updated { "updated_at" } else { "instance_created_at" },
        if q.ascending { "ASC" } else { "DESC" }
    );
    let items = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM view_connections WHERE {condition} ORDER BY {order} LIMIT $4 OFFSET $5"
    ))
    .bind(project_id.as_uuid())
    .bind(server_key)
    .bind(&q.search)
    .bind(q.limit)
    .bind(q.offset)
    .fetch_all(pool)
    .await?;
    Ok((items, total))
}
