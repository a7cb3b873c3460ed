//! The event store (postgres-es on Postgres) and the command bus in front of it.

mod command_bus;
mod metadata;

pub use command_bus::CommandBus;
pub use metadata::CommandMetadata;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;

/// The schema's migrations, embedded in the binary (`services/migrations`).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// A pool to the database. Fails fast (within `acquire_timeout`) when it is unreachable.
pub async fn connect(url: &str, max_connections: u32) -> sqlx::Result<PgPool> {
    PgPoolOptions::new().max_connections(max_connections).acquire_timeout(Duration::from_secs(10)).connect(url).await
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
