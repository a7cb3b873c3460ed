use super::oversized::{self, OversizedCount};
use crate::feed::{Checkpoints, Lag, Position, lag_after};
use sqlx::PgPool;
use std::time::Duration;

/// The relay's row in `relay_status`.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub healthy: bool,
    pub detail: Option<String>,
    pub stream_last_sequence: Option<i64>,
    /// Seconds since the active relay last wrote its row.
    pub age_seconds: f64,
}

/// Everything an operator asks of the relay: where it is, how far behind, whether it is alive.
#[derive(Debug, Clone)]
pub struct RelayReport {
    pub checkpoint: Position,
    pub lag: Lag,
    pub heartbeat: Option<Heartbeat>,
    /// Events published as claim checks, without their data (see [`oversized`]).
    pub oversized: OversizedCount,
}

/// A leading relay writes its row at least this often.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// A row older than this means no relay is running.
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(10);

impl RelayReport {
    pub async fn read(pool: &PgPool, subscriber: &str) -> sqlx::Result<Self> {
        let checkpoint = Checkpoints::peek(pool, subscriber).await?.unwrap_or_default();
        let lag = lag_after(pool, checkpoint).await?;
        let heartbeat = sqlx::query_as::<_, (bool, Option<String>, Option<i64>, f64)>(
            "SELECT healthy, detail, stream_last_sequence, \
                    extract(epoch FROM clock_timestamp() - heartbeat_at)::float8 \
             FROM relay_status WHERE relay = $1",
        )
        .bind(subscriber)
        .fetch_optional(pool)
        .await?
        .map(|(healthy, detail, stream_last_sequence, age_seconds)| Heartbeat {
            healthy,
            detail,
            stream_last_sequence,
            age_seconds,
        });
        let oversized = oversized::count(pool).await?;
        Ok(Self { checkpoint, lag, heartbeat, oversized })
    }

    /// What an operator should know though delivery goes on: events that went out without
    /// their data.
    pub fn notice(&self) -> Option<String> {
        let newest = self.oversized.newest_message_id.as_deref()?;
        Some(format!(
            "{} events were too large for NATS and went out without their data (newest {newest}; see the relay_oversized table)",
            self.oversized.events
        ))
    }

    /// Why events are not reaching NATS in time, if they are not. `max_lag` bounds how old the
    /// oldest unpublished event may be.
    pub fn problem(&self, max_lag: Duration) -> Option<String> {
        match &self.heartbeat {
            None if self.lag.events > 0 => Some("no relay has run yet: events wait in the store".into()),
            None => None,
            Some(beat) if beat.age_seconds > HEARTBEAT_STALE.as_secs_f64() => {
                Some(format!("no active relay for {:.0} s", beat.age_seconds))
            }
            Some(beat) if !beat.healthy => Some(beat.detail.clone().unwrap_or_else(|| "failing".into())),
            Some(_) if self.lag.seconds > max_lag.as_secs_f64() => {
                Some(format!("{} events, {:.1} s behind", self.lag.events, self.lag.seconds))
            }
            Some(_) => None,
        }
    }
}

/// Writes the active relay's row.
pub async fn beat(
    pool: &PgPool,
    subscriber: &str,
    healthy: bool,
    detail: Option<&str>,
    stream_last_sequence: Option<u64>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO relay_status (relay, healthy, detail, stream_last_sequence, heartbeat_at) \
         VALUES ($1, $2, $3, $4, clock_timestamp()) \
         ON CONFLICT (relay) DO UPDATE SET healthy = $2, detail = $3, \
             stream_last_sequence = coalesce($4, relay_status.stream_last_sequence), heartbeat_at = clock_timestamp()",
    )
    .bind(subscriber)
    .bind(healthy)
    .bind(detail)
    .bind(stream_last_sequence.map(|s| s as i64))
    .execute(pool)
    .await?;
    Ok(())
}
