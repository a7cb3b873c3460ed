use super::Position;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgExecutor, Row};

/// One committed event, as the feed hands it out: in its type's current version and shape,
/// whatever version it was stored in.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    pub position: Position,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The payload's JSON text. Kept as text: the projections decode their typed events
    /// straight from it, which costs a fraction of building a `Value` first.
    pub payload_json: String,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

impl FeedEvent {
    /// The payload as a JSON value.
    pub fn payload(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.payload_json)
            .map_err(|e| anyhow::anyhow!("the payload of the event at {} is not JSON: {e}", self.position))
    }

    /// The typed event, if this is an event of `E`'s aggregate.
    pub fn decode<E: events::Event>(&self) -> anyhow::Result<Option<E>> {
        if self.aggregate_type != E::AGGREGATE_TYPE {
            return Ok(None);
        }
        serde_json::from_str::<E>(&self.payload_json).map(Some).map_err(|e| {
            anyhow::anyhow!(
                "cannot decode {} {} v{} at {}: {e}",
                self.aggregate_type,
                self.event_type,
                self.event_version,
                self.position
            )
        })
    }
}

/// A stored payload in its type's current shape, with that version. A type outside the event
/// contract (rows a test writes for itself) is left as it is: typed readers skip it by its
/// aggregate type. A version that cannot be brought forward is an error, never a misread.
pub fn current_shape(event_type: &str, event_version: String, payload: Value) -> anyhow::Result<(String, Value)> {
    if events::current_version(event_type).is_none() {
        return Ok((event_version, payload));
    }
    let (version, payload) = events::upcast(event_type, &event_version, payload)?;
    Ok((version.to_owned(), payload))
}

/// The payload text in its type's current version: as stored (the usual case, no parsing), or
/// upcast from an older one.
fn in_current_shape(event_type: &str, version: String, payload: String) -> anyhow::Result<(String, String)> {
    match events::current_version(event_type) {
        Some(current) if current != version => {
            let (version, value) = current_shape(event_type, version, serde_json::from_str(&payload)?)?;
            Ok((version, value.to_string()))
        }
        _ => Ok((version, payload)),
    }
}

/// The condition that makes the feed safe: only transactions older than every running one.
pub const BELOW_HORIZON: &str = "transaction_id < pg_snapshot_xmin(pg_current_snapshot())";

/// Up to `limit` events after `after`, in commit order, never one that a running transaction
/// could still precede.
pub async fn read_after<'e>(db: impl PgExecutor<'e>, after: Position, limit: i64) -> sqlx::Result<Vec<FeedEvent>> {
    let sql = format!(
        "SELECT transaction_id::text AS tx, global_position, aggregate_type, aggregate_id, sequence, \
                event_type, event_version, payload::text AS payload, metadata, recorded_at \
         FROM events \
         WHERE (transaction_id, global_position) > ($1::text::xid8, $2) AND {BELOW_HORIZON} \
         ORDER BY transaction_id, global_position \
         LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.into_iter().map(|row| decode_row(&row)).collect()
}

pub(super) fn decode_row(row: &sqlx::postgres::PgRow) -> sqlx::Result<FeedEvent> {
    let tx: String = row.try_get("tx")?;
    let position =
        Position::new(tx.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?, row.try_get("global_position")?);
    let event_type: String = row.try_get("event_type")?;
    let (event_version, payload_json) =
        in_current_shape(&event_type, row.try_get("event_version")?, row.try_get("payload")?)
            .map_err(|e| sqlx::Error::Decode(anyhow::anyhow!("event at {position}: {e}").into()))?;
    Ok(FeedEvent {
        position,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type,
        event_version,
        payload_json,
        metadata: row.try_get("metadata")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

/// Whether events after `after` are committed but still held back by the horizon: a reader
/// that finds none readable should look again soon rather than wait for the next wake-up,
/// which may never come (the transaction holding the horizon may insert nothing).
pub async fn committed_beyond<'e>(db: impl PgExecutor<'e>, after: Position) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE (transaction_id, global_position) > ($1::text::xid8, $2))",
    )
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .fetch_one(db)
    .await
}

/// How far a subscriber at `after` is behind the committed events.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Lag {
    pub events: i64,
    /// Age of the oldest event not yet handled, in seconds; 0 when caught up.
    pub seconds: f64,
}

pub async fn lag_after<'e>(db: impl PgExecutor<'e>, after: Position) -> sqlx::Result<Lag> {
    // Counting is capped: a large backlog must not make every /ready a full scan.
    let row = sqlx::query(
        "SELECT count(*) AS events, \
                coalesce(extract(epoch FROM clock_timestamp() - min(recorded_at)), 0)::float8 AS seconds \
         FROM (SELECT recorded_at FROM events WHERE (transaction_id, global_position) > ($1::text::xid8, $2) \
               ORDER BY transaction_id, global_position LIMIT 100000) backlog",
    )
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .fetch_one(db)
    .await?;
    Ok(Lag { events: row.try_get("events")?, seconds: row.try_get("seconds")? })
}

/// One aggregate's events in sequence order, those recorded at or before `until` when given:
/// the aggregate's history, for audits and reads of a past state.
pub async fn read_stream<'e>(
    db: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
    until: Option<DateTime<Utc>>,
) -> sqlx::Result<Vec<FeedEvent>> {
    let rows = sqlx::query(
        "SELECT transaction_id::text AS tx, global_position, aggregate_type, aggregate_id, sequence, \
                event_type, event_version, payload::text AS payload, metadata, recorded_at \
         FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND ($3::timestamptz IS NULL OR recorded_at <= $3) \
         ORDER BY sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(until)
    .fetch_all(db)
    .await?;
    rows.iter().map(decode_row).collect()
}
