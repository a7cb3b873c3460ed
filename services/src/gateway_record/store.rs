//! The `gateway_calls` table: batches in, records out in commit order (for the publisher) or
//! in time order per target (for the audit).

use crate::feed::{BELOW_HORIZON, Position};
use chrono::{DateTime, SecondsFormat, Utc};
use events::gateway::{GatewayRecord, Outcome, RecordKind, Target};
use events::{InstanceId, ProjectId, ServerId};
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, Row};
use uuid::Uuid;

/// Writes `records` with one statement (one transaction, one commit), in their order.
pub async fn insert<'e>(db: impl PgExecutor<'e>, records: &[GatewayRecord]) -> sqlx::Result<()> {
    let mut columns = Columns::default();
    for record in records {
        columns.push(record);
    }
    sqlx::query(
        "INSERT INTO gateway_calls (record_id, kind, project_id, instance_id, server_id, user_id, \
             connected_account_id, server_name, tool_name, outcome, duration_ms, request_id, occurred_at, \
             target_type) \
         SELECT r, k, p, i, s, u, a, n, t, o, d, q, w::timestamptz, y \
         FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::text[], \
                     $8::text[], $9::text[], $10::text[], $11::float8[], $12::text[], $13::text[], $14::text[]) \
              AS x(r, k, p, i, s, u, a, n, t, o, d, q, w, y)",
    )
    .bind(columns.record_id)
    .bind(columns.kind)
    .bind(columns.project_id)
    .bind(columns.instance_id)
    .bind(columns.server_id)
    .bind(columns.user_id)
    .bind(columns.connected_account_id)
    .bind(columns.server_name)
    .bind(columns.tool_name)
    .bind(columns.outcome)
    .bind(columns.duration_ms)
    .bind(columns.request_id)
    .bind(columns.time)
    .bind(columns.target_type)
    .execute(db)
    .await?;
    Ok(())
}

/// A batch, column by column, as UNNEST takes it.
#[derive(Default)]
struct Columns {
    record_id: Vec<Uuid>,
    kind: Vec<&'static str>,
    project_id: Vec<Uuid>,
    instance_id: Vec<Option<Uuid>>,
    server_id: Vec<Option<Uuid>>,
    user_id: Vec<Option<String>>,
    connected_account_id: Vec<Option<String>>,
    server_name: Vec<String>,
    tool_name: Vec<Option<String>>,
    outcome: Vec<&'static str>,
    duration_ms: Vec<f64>,
    request_id: Vec<String>,
    time: Vec<String>,
    target_type: Vec<&'static str>,
}

impl Columns {
    fn push(&mut self, record: &GatewayRecord) {
        let (target_type, instance_id, server_id, user_id, account) = match &record.target {
            Target::Instance { instance_id, user_id } => {
                ("instance", Some(*instance_id.as_uuid()), None, Some(user_id.clone()), None)
            }
            Target::ComposioServer { server_id, user_id, connected_account_id } => {
                ("composio_server", None, Some(*server_id.as_uuid()), user_id.clone(), connected_account_id.clone())
            }
            Target::RegisteredServer { server_id } => {
                ("registered_server", None, Some(*server_id.as_uuid()), None, None)
            }
        };
        self.target_type.push(target_type);
        self.record_id.push(record.record_id);
        self.kind.push(record.kind.as_str());
        self.project_id.push(*record.project.as_uuid());
        self.instance_id.push(instance_id);
        self.server_id.push(server_id);
        self.user_id.push(user_id);
        self.connected_account_id.push(account);
        self.server_name.push(record.server_name.clone());
        self.tool_name.push(record.tool_name.clone());
        self.outcome.push(record.outcome.as_str());
        self.duration_ms.push(record.duration_ms);
        self.request_id.push(record.request_id.clone());
        self.time.push(record.time.clone());
    }
}

const COLUMNS: &str = "transaction_id::text AS tx, position, record_id, kind, project_id, instance_id, server_id, \
                       user_id, connected_account_id, server_name, tool_name, outcome, duration_ms, request_id, \
                       occurred_at, target_type";

/// A record with its place in the commit order.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub position: Position,
    pub record: GatewayRecord,
}

/// Up to `limit` records after `after`, in commit order, never one that a running
/// transaction could still precede (the feed's horizon).
pub async fn read_after<'e>(db: impl PgExecutor<'e>, after: Position, limit: i64) -> sqlx::Result<Vec<StoredRecord>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM gateway_calls \
         WHERE (transaction_id, position) > ($1::text::xid8, $2) AND {BELOW_HORIZON} \
         ORDER BY transaction_id, position LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(decode_row).collect()
}

/// Whose records to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whose {
    Instance(InstanceId),
    /// A Composio server's, for one user when given.
    Server {
        server_id: ServerId,
        user_id: Option<String>,
    },
}

/// The records of `whose` in `project`, oldest first, at most `limit`.
pub async fn of<'e>(
    db: impl PgExecutor<'e>,
    project: ProjectId,
    whose: &Whose,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    limit: i64,
) -> sqlx::Result<Vec<StoredRecord>> {
    let (target, id, user) = match whose {
        Whose::Instance(id) => ("instance_id", *id.as_uuid(), None),
        Whose::Server { server_id, user_id } => ("server_id", *server_id.as_uuid(), user_id.clone()),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM gateway_calls \
         WHERE project_id = $1 AND {target} = $2 AND ($3::text IS NULL OR user_id = $3) \
           AND ($4::timestamptz IS NULL OR occurred_at >= $4) AND ($5::timestamptz IS NULL OR occurred_at <= $5) \
         ORDER BY occurred_at, position LIMIT $6"
    );
    let rows = sqlx::query(&sql)
        .bind(project.as_uuid())
        .bind(id)
        .bind(user)
        .bind(since)
        .bind(until)
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(decode_row).collect()
}

fn decode_row(row: &PgRow) -> sqlx::Result<StoredRecord> {
    let bad = |what: &str, value: &str| sqlx::Error::Decode(format!("gateway_calls: {what} `{value}`").into());
    let tx: String = row.try_get("tx")?;
    let position = Position::from_columns(&tx, row.try_get("position")?).map_err(|_| bad("transaction id", &tx))?;
    let kind: String = row.try_get("kind")?;
    let outcome: String = row.try_get("outcome")?;
    let instance_id: Option<Uuid> = row.try_get("instance_id")?;
    let server_id: Option<Uuid> = row.try_get("server_id")?;
    let user_id: Option<String> = row.try_get("user_id")?;
    let target_type: String = row.try_get("target_type")?;
    let target = match (instance_id, server_id) {
        (Some(instance_id), _) => {
            Target::Instance { instance_id: InstanceId::from_uuid(instance_id), user_id: user_id.unwrap_or_default() }
        }
        (None, Some(server_id)) if target_type == "registered_server" => {
            Target::RegisteredServer { server_id: ServerId::from_uuid(server_id) }
        }
        (None, Some(server_id)) => Target::ComposioServer {
            server_id: ServerId::from_uuid(server_id),
            user_id,
            connected_account_id: row.try_get("connected_account_id")?,
        },
        (None, None) => return Err(bad("target", "none")),
    };
    let occurred_at: DateTime<Utc> = row.try_get("occurred_at")?;
    let record = GatewayRecord {
        record_id: row.try_get("record_id")?,
        kind: RecordKind::parse(&kind).ok_or_else(|| bad("kind", &kind))?,
        project: ProjectId::from_uuid(row.try_get("project_id")?),
        target,
        server_name: row.try_get("server_name")?,
        tool_name: row.try_get("tool_name")?,
        outcome: Outcome::parse(&outcome).ok_or_else(|| bad("outcome", &outcome))?,
        duration_ms: row.try_get("duration_ms")?,
        request_id: row.try_get("request_id")?,
        time: rfc3339(occurred_at),
    };
    Ok(StoredRecord { position, record })
}

/// The form of every record time: RFC 3339, UTC, microseconds (what Postgres keeps).
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}
