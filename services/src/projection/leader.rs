use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Leadership of one feed subscriber among processes: a Postgres session advisory lock, held
/// by a dedicated connection. If the process dies, its connection closes and the lock frees
/// itself, so a standby takes over within one retry interval.
///
/// The lock only keeps standbys idle. Correctness does not depend on it: a batch locks its
/// subscriber's checkpoint row before applying anything and checks it has not moved, so two
/// active readers still apply each event once.
pub struct LeaderLock {
    conn: PoolConnection<Postgres>,
}

/// Namespace of this service's advisory locks (first key of the two-key form).
const LOCK_CLASS: i32 = 0x4d43_5050; // "MCPP"

impl LeaderLock {
    /// Waits until this process holds the lock named `name`, or `cancel` fires.
    pub async fn acquire(pool: &PgPool, name: &str, retry: Duration, cancel: &CancellationToken) -> Option<Self> {
        let mut said_standing_by = false;
        loop {
            match Self::try_acquire(pool, name).await {
                Ok(Some(lock)) => return Some(lock),
                // Once at info (an operator sees which process is the standby), then at debug.
                Ok(None) if !said_standing_by => {
                    said_standing_by = true;
                    tracing::info!(lock = name, "another process leads; standing by");
                }
                Ok(None) => tracing::debug!(lock = name, "another process leads; standing by"),
                Err(e) => tracing::warn!(lock = name, error = %e, "cannot try the leader lock"),
            }
            tokio::select! {
                () = cancel.cancelled() => return None,
                () = tokio::time::sleep(retry) => {}
            }
        }
    }

    /// The lock if no other process holds it now; `None` otherwise.
    pub async fn try_acquire(pool: &PgPool, name: &str) -> sqlx::Result<Option<Self>> {
        let mut conn = pool.acquire().await?;
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(LOCK_CLASS)
            .bind(name)
            .fetch_one(&mut *conn)
            .await?;
        // A connection that did not get the lock goes back to the pool holding nothing.
        Ok(held.then_some(Self { conn }))
    }

    /// Whether the lock's connection is still alive (and so the lock still held).
    pub async fn still_held(&mut self) -> bool {
        sqlx::query("SELECT 1").execute(&mut *self.conn).await.is_ok()
    }
}

impl Drop for LeaderLock {
    fn drop(&mut self) {
        // Never return a connection holding a session lock to the pool: close it instead,
        // which releases the lock.
        self.conn.close_on_drop();
    }
}
