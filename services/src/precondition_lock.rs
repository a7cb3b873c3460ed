//! Serialises the instance precondition against what can break it, across replicas.
//!
//! A Composio instance create checks the user's connected accounts (in the view) and then
//! commits; a revoke, a disable or a delete of one of those accounts, or a disable of the auth
//! config, could commit in between, and the instance would be created on the strength of an
//! account already gone. So both sides take a Postgres advisory lock first, held in a
//! transaction of their own until their command has committed and its views caught up:
//! - a create: the user's lock, exclusively, and each required auth config's lock, shared;
//! - a change of one user's account: that user's lock, exclusively;
//! - a disable or delete of an auth config: its lock, exclusively.
//!
//! Whichever takes the lock first is ordered first: a create after a revoke sees it in the view
//! (the revoke held the lock until its view had it), a revoke after a create waits for the
//! create's commit. Creates of different users share the auth configs' locks and do not wait
//! for each other. Locks are taken user first, then auth configs in order, and no holder of an
//! auth config's lock waits for a user's: no deadlock.
//!
//! The locks live on a pool of their own, so that a holder waiting for a connection of the main
//! pool never holds one of its connections (no starvation of the pool by its own waiters).

use crate::store::{CommandBus, Committed};
use events::ProjectId;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};
use std::time::Duration;

/// At most this many creates or account changes hold a lock at once per process; the rest wait.
const LOCK_CONNECTIONS: u32 = 8;
/// The longest a create or a change waits for another's lock: then 503, try again (a hot user
/// cannot hold the pool's connections for ever).
const LOCK_WAIT: &str = "10s";
/// Times a holder waits for its change to reach the views before releasing anyway: the
/// projector lagging that long (about 30 s) is an outage the health check reports.
const VISIBLE_WAITS: usize = 3;

#[derive(Clone)]
pub struct PreconditionLocks {
    pool: PgPool,
}

/// Held until dropped or released: the transaction that holds the advisory locks.
pub struct Held(Transaction<'static, Postgres>);

impl Held {
    /// Releases the locks once `committed` is in the views, so that whoever takes them next
    /// reads the change (a create on another replica reads the view, not the events); past
    /// the views' bound, waits a little longer, then releases anyway, saying so.
    pub async fn release_when_visible(self, bus: &CommandBus, committed: &Committed) {
        for _ in 0..VISIBLE_WAITS {
            if bus.await_visible(committed).await {
                return self.release().await;
            }
        }
        tracing::warn!("the views lag: a precondition lock is released before they have its change");
        self.release().await
    }

    /// Releases the locks after a command: once the views have it when it committed, at once
    /// when it did not.
    pub async fn release_after<E>(self, bus: &CommandBus, outcome: &Result<Committed, E>) {
        match outcome {
            Ok(committed) => self.release_when_visible(bus, committed).await,
            Err(_) => self.release().await,
        }
    }

    /// Releases the locks now (dropping does too, a moment later, when the connection is reused).
    pub async fn release(self) {
        if let Err(e) = self.0.commit().await {
            tracing::warn!(error = %e, "releasing a precondition lock failed; the connection's end releases it");
        }
    }
}

impl PreconditionLocks {
    /// A lazily connected pool on the same database as `pool`.
    pub fn new(pool: &PgPool) -> Self {
        let locks = PgPoolOptions::new()
            .max_connections(LOCK_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(30))
            .connect_lazy_with((*pool.connect_options()).clone());
        Self { pool: locks }
    }

    /// Before creating `user`'s instance over `auth_config_ids`.
    pub async fn for_create(&self, project: ProjectId, user: &str, auth_config_ids: &[String]) -> sqlx::Result<Held> {
        let mut held = self.begin().await?;
        exclusive(&mut held, &user_key(project, user)).await?;
        let mut configs: Vec<&String> = auth_config_ids.iter().collect();
        configs.sort();
        configs.dedup();
        for id in configs {
            sqlx::query("SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))")
                .bind(auth_config_key(project, id))
                .execute(&mut *held.0)
                .await?;
        }
        Ok(held)
    }

    /// Before a change that may end `user`'s account's use (revoke, disable, delete, expiry).
    pub async fn for_account_change(&self, project: ProjectId, user: &str) -> sqlx::Result<Held> {
        self.holding(&user_key(project, user)).await
    }

    /// Before disabling or deleting an auth config.
    pub async fn for_auth_config_change(&self, project: ProjectId, auth_config_id: &str) -> sqlx::Result<Held> {
        self.holding(&auth_config_key(project, auth_config_id)).await
    }

    /// `key`'s lock alone, exclusively.
    async fn holding(&self, key: &str) -> sqlx::Result<Held> {
        let mut held = self.begin().await?;
        exclusive(&mut held, key).await?;
        Ok(held)
    }

    async fn begin(&self) -> sqlx::Result<Held> {
        let mut held = Held(self.pool.begin().await?);
        sqlx::query(&format!("SET LOCAL lock_timeout = '{LOCK_WAIT}'")).execute(&mut *held.0).await?;
        Ok(held)
    }
}

async fn exclusive(held: &mut Held, key: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(key).execute(&mut *held.0).await?;
    Ok(())
}

/// Two keys that hash alike only serialise more than needed.
fn user_key(project: ProjectId, user: &str) -> String {
    format!("precondition:user:{project}:{user}")
}

fn auth_config_key(project: ProjectId, auth_config_id: &str) -> String {
    format!("precondition:auth_config:{project}:{auth_config_id}")
}
