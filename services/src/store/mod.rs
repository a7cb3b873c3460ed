//! The event store (postgres-es on Postgres) and the command bus in front of it.

mod command_bus;
mod command_name;
pub mod event_size;
mod metadata;
mod upcaster;

pub use command_bus::{CommandBus, Committed, LastEvent};
pub use event_size::DEFAULT_MAX_EVENT_BYTES;
pub use metadata::CommandMetadata;
pub use upcaster::Upcaster;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

/// The schema's migrations, embedded in the binary (`services/migrations`).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// A pool to the database. Fails fast (within `acquire_timeout`) when it is unreachable.
///
/// Its sessions end a transaction left idle for a minute: an open transaction holds back the
/// feed's horizon for the whole cluster, and with it every view.
pub async fn connect(url: &str, max_connections: u32) -> sqlx::Result<PgPool> {
    let options =
        url.parse::<sqlx::postgres::PgConnectOptions>()?.options([("idle_in_transaction_session_timeout", "60s")]);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings every connection it hands out by default: a round trip per query. A
        // broken connection fails its query instead, which the caller reports or retries.
        .test_before_acquire(false)
        .connect_with(options)
        .await
}

/// Connections per process: requests, the projector and two listeners.
const POOL_SIZE: u32 = 20;

/// Connects to the database and applies pending migrations.
pub async fn connect_and_migrate(database_url: &str) -> anyhow::Result<PgPool> {
    let pool = connect(database_url, POOL_SIZE).await.context("cannot connect to the database at DATABASE_URL")?;
    migrate(&pool).await.context("cannot apply the database migrations")?;
    Ok(pool)
}

/// Seconds since the oldest transaction holding a transaction id began, cluster-wide (as far
/// as this role may see).
pub async fn oldest_transaction_seconds(pool: &PgPool) -> sqlx::Result<f64> {
    sqlx::query_scalar(
        "SELECT coalesce(extract(epoch FROM clock_timestamp() - min(xact_start)), 0)::float8 \
         FROM pg_stat_activity WHERE backend_xid IS NOT NULL",
    )
    .fetch_one(pool)
    .await
}

/// Applies the migrations not yet applied. Concurrent callers are serialised by sqlx's own
/// advisory lock, so two processes starting at once do not race.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// How many of the embedded migrations the database has not applied (successfully).
pub async fn pending_migrations(pool: &PgPool) -> sqlx::Result<usize> {
    let applied: Vec<i64> =
        match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success").fetch_all(pool).await {
            Ok(versions) => versions,
            // No migrations table: nothing was ever applied.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Vec::new(),
            Err(e) => return Err(e),
        };
    Ok(MIGRATOR.iter().filter(|m| !applied.contains(&m.version)).count())
}

/// When an aggregate's stream began and last changed, and its last sequence.
#[derive(Debug, Clone, Copy)]
pub struct StreamTimes {
    pub first: chrono::DateTime<chrono::Utc>,
    pub last: chrono::DateTime<chrono::Utc>,
    pub sequence: i64,
}

/// The times of an aggregate's stream, read from the store itself (for answers that cannot
/// wait for a view).
pub async fn stream_times(pool: &PgPool, aggregate_type: &str, id: &str) -> sqlx::Result<Option<StreamTimes>> {
    let row: (Option<chrono::DateTime<chrono::Utc>>, Option<chrono::DateTime<chrono::Utc>>, Option<i64>) = sqlx::query_as(
        "SELECT min(recorded_at), max(recorded_at), max(sequence) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(id)
    .fetch_one(pool)
    .await?;
    Ok(match row {
        (Some(first), Some(last), Some(sequence)) => Some(StreamTimes { first, last, sequence }),
        _ => None,
    })
}
