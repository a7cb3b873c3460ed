//! Events published without their data, because they would not fit in a NATS message.
//!
//! Recorded before the claim check is sent (idempotently: a retried batch records nothing
//! twice), so that an operator learns of each one from `/ready` and `relay --status`.

use super::Outgoing;
use crate::feed::FeedEvent;
use sqlx::PgPool;

/// Records that `event` goes out as the claim check `out`, under a server cap of `max_bytes`.
pub async fn record(pool: &PgPool, event: &FeedEvent, out: &Outgoing, max_bytes: usize) -> sqlx::Result<()> {
    let Some(message_bytes) = out.omitted else { return Ok(()) };
    tracing::warn!(
        message_id = out.message_id,
        message_bytes,
        max_bytes,
        "an event is too large for a NATS message; publishing it without its data (dataref points at the audit API)"
    );
    sqlx::query(
        "INSERT INTO relay_oversized (message_id, global_position, event_type, message_bytes, max_bytes) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(&out.message_id)
    .bind(event.position.global_position)
    .bind(&event.event_type)
    .bind(message_bytes as i64)
    .bind(max_bytes as i64)
    .execute(pool)
    .await?;
    Ok(())
}

/// How many events went out without their data, and the newest of them.
#[derive(Debug, Clone, Default)]
pub struct OversizedCount {
    pub events: i64,
    pub newest_message_id: Option<String>,
}

pub async fn count(pool: &PgPool) -> sqlx::Result<OversizedCount> {
    let (events, newest_message_id): (i64, Option<String>) = sqlx::query_as(
        "SELECT count(*), (SELECT message_id FROM relay_oversized ORDER BY published_at DESC LIMIT 1) \
         FROM relay_oversized",
    )
    .fetch_one(pool)
    .await?;
    Ok(OversizedCount { events, newest_message_id })
}
