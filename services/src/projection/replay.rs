//! Replaying projections from position 0 while the service keeps serving: the events go into
//! shadow tables (`replay_<name>` schema), then one transaction swaps them for the live ones.
//!
//! - Resumable: the shadow's progress is a feed checkpoint (`replay:<name>`) moved in the same
//!   transaction as the shadow rows, so an interrupted replay continues where it stopped.
//! - The swap locks the live projector's checkpoint row, which holds the projector between two
//!   batches; brings the shadow and the untouched live views to the same position; replaces
//!   each live table by its shadow (drop, then move: no rows are copied); and commits. Readers
//!   wait for the swap's locks (milliseconds), they never see a half-built table.

use super::rebuild::{
    apply_range, apply_to_shadow, build_missing_indexes, check_identifier, create_shadow, defer_indexes, tables_of,
};
use super::{Projection, Projector};
use crate::feed::{Checkpoints, FeedEvent, Position, read_after};
use anyhow::{Context, bail};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::time::Instant;

/// What a replay tells whoever watches it.
pub trait ReplayProgress: Send + Sync {
    /// About `total` events to go through, `done` of them already (a resumed replay).
    fn begin(&self, total: u64, done: u64);
    fn advance(&self, events: u64);
    /// The feed grew meanwhile: there are about `total` now.
    fn grow(&self, total: u64);
    fn finish(&self, message: &str);
}

/// Nobody watches.
pub struct Silent;

impl ReplayProgress for Silent {
    fn begin(&self, _: u64, _: u64) {}
    fn advance(&self, _: u64) {}
    fn grow(&self, _: u64) {}
    fn finish(&self, _: &str) {}
}

/// Where a replay started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    pub at: Position,
    /// An interrupted replay's shadow was found and is continued.
    pub resumed: bool,
}

/// What a finished replay did.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    pub start: Start,
    /// Events applied to the shadow before the swap.
    pub events: u64,
    pub rebuild_seconds: f64,
    /// The live views' position after the swap.
    pub swapped_at: Position,
    pub swap_millis: f64,
}

pub struct Replay {
    pool: PgPool,
    name: String,
    /// Rebuilt into the shadow, then swapped in.
    targets: Vec<Arc<dyn Projection>>,
    /// The live projections left in place; the swap brings them to the shadow's position.
    others: Vec<Arc<dyn Projection>>,
    batch_size: i64,
}

/// How long the swap may wait for a lock (a long read of a view) before it gives up and the
/// replay catches up and tries again.
const SWAP_LOCK_TIMEOUT: &str = "5s";
const SWAP_ATTEMPTS: u32 = 5;

impl Replay {
    /// A replay of the projection called `name` among `all`, or of every one (`None`).
    pub fn new(pool: PgPool, all: Vec<Arc<dyn Projection>>, name: Option<&str>) -> anyhow::Result<Self> {
        let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
        let names = names.join(", ");
        let (targets, others): (Vec<_>, Vec<_>) = match name {
            None => (all, Vec::new()),
            Some(name) => all.into_iter().partition(|p| p.name() == name),
        };
        if targets.is_empty() {
            bail!("no projection is called `{}`; one of: {names}", name.unwrap_or_default());
        }
        let name = name.unwrap_or("all").to_owned();
        check_identifier(&format!("replay_{name}"))?;
        Ok(Self { pool, name, targets, others, batch_size: 5000 })
    }

    pub fn with_batch_size(mut self, batch_size: i64) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// The schema holding the shadow tables.
    pub fn schema(&self) -> String {
        format!("replay_{}", self.name)
    }

    fn subscriber(&self) -> String {
        format!("replay:{}", self.name)
    }

    /// Rebuilds from `start` (see [`Self::prepare`]) and swaps.
    pub async fn run(&self, start: Start, progress: &dyn ReplayProgress) -> anyhow::Result<ReplayReport> {
        progress.begin(self.events_in_feed().await?, self.events_up_to(start.at).await?);
        let began = Instant::now();
        let mut at = start.at;
        let mut events = 0;
        for attempt in 1..=SWAP_ATTEMPTS {
            let (reached, applied) = self.catch_up(at, None, progress).await?;
            (at, events) = (reached, events + applied);
            build_missing_indexes(&self.pool, &self.schema(), &self.targets).await?;
            self.analyze().await?;
            let rebuild_seconds = began.elapsed().as_secs_f64();
            let swap_began = Instant::now();
            match self.swap().await {
                Ok(swapped_at) => {
                    let swap_millis = swap_began.elapsed().as_secs_f64() * 1000.0;
                    progress.finish(&format!("swapped at {swapped_at} in {swap_millis:.0} ms"));
                    return Ok(ReplayReport { start, events, rebuild_seconds, swapped_at, swap_millis });
                }
                Err(e) if attempt < SWAP_ATTEMPTS => {
                    tracing::warn!(error = format!("{e:#}"), attempt, "swap failed; catching up and trying again");
                    progress.grow(self.events_in_feed().await?);
                    at = Checkpoints::peek(&self.pool, &self.subscriber()).await?.unwrap_or(at);
                }
                Err(e) => return Err(e.context("the swap failed; the shadow is kept, run the replay again to resume")),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Finds the shadow of an interrupted replay, or makes a fresh one.
    pub async fn prepare(&self, restart: bool) -> anyhow::Result<Start> {
        let subscriber = self.subscriber();
        if !restart
            && self.shadow_exists().await?
            && let Some(at) = Checkpoints::peek(&self.pool, &subscriber).await?
        {
            return Ok(Start { at, resumed: true });
        }
        // The checkpoint goes first: a shadow without one is never taken for a resumable one.
        sqlx::query("DELETE FROM feed_checkpoints WHERE subscriber = $1").bind(&subscriber).execute(&self.pool).await?;
        create_shadow(&self.pool, &self.schema(), &self.targets).await?;
        defer_indexes(&self.pool, &self.schema(), &self.targets).await?;
        let at = Checkpoints::load(&mut *self.pool.acquire().await?, &subscriber).await?;
        Ok(Start { at, resumed: false })
    }

    async fn shadow_exists(&self) -> sqlx::Result<bool> {
        let tables = tables_of(&self.targets);
        let found: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = ANY($2)")
                .bind(self.schema())
                .bind(&tables)
                .fetch_one(&self.pool)
                .await?;
        Ok(found == tables.len() as i64)
    }

    /// Applies the feed after `from` to the shadow, batch by batch (each with its checkpoint
    /// move), until nothing is left to read or `max_batches` were applied. Returns the
    /// position reached and the number of events applied. The next batch is read while the
    /// current one is applied.
    pub async fn catch_up(
        &self,
        from: Position,
        max_batches: Option<usize>,
        progress: &dyn ReplayProgress,
    ) -> anyhow::Result<(Position, u64)> {
        let (mut at, mut applied, mut batches) = (from, 0u64, 0usize);
        let mut batch = read_after(&self.pool, at, self.batch_size).await?;
        while let Some(last) = batch.last().map(|e| e.position) {
            if max_batches.is_some_and(|max| batches >= max) {
                break;
            }
            let pool = self.pool.clone();
            let size = self.batch_size;
            let next = tokio::spawn(async move { read_after(&pool, last, size).await });
            self.apply(at, &batch).await?;
            (at, applied, batches) = (last, applied + batch.len() as u64, batches + 1);
            progress.advance(batch.len() as u64);
            batch = next.await??;
        }
        Ok((at, applied))
    }

    /// One shadow batch and its checkpoint move, in one transaction.
    async fn apply(&self, from: Position, batch: &[FeedEvent]) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        // A derived copy: a lost commit is redone from the checkpoint it also loses.
        sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
        apply_to_shadow(&mut tx, &self.schema(), &self.targets, batch).await?;
        let to = batch.last().expect("a batch is not empty").position;
        if !Checkpoints::advance(&mut tx, &self.subscriber(), from, to).await? {
            bail!("another replay of `{}` moved its checkpoint; only one may run", self.name);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Fresh statistics for the planner, before the shadow tables serve reads.
    async fn analyze(&self) -> anyhow::Result<()> {
        for table in tables_of(&self.targets) {
            sqlx::query(&format!("ANALYZE {}.{table}", self.schema())).execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Replaces the live tables by the shadow ones, in one transaction. Returns the views'
    /// position afterwards.
    pub async fn swap(&self) -> anyhow::Result<Position> {
        let schema = self.schema();
        // Before the lock is taken (a no-op after `run`, which builds them as part of the rebuild).
        build_missing_indexes(&self.pool, &schema, &self.targets).await?;
        Checkpoints::load(&mut *self.pool.acquire().await?, Projector::VIEWS).await?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!("SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")).execute(&mut *tx).await?;
        // Holds the live projector between two of its batches until the swap commits.
        let live = Checkpoints::lock(&mut tx, Projector::VIEWS).await?.context("the views' checkpoint")?;
        let shadow = Checkpoints::lock(&mut tx, &self.subscriber()).await?.context("the replay's checkpoint")?;
        let target = live.max(shadow);
        self.bring_to(&mut tx, shadow, target, Some(&schema)).await?;
        self.bring_to(&mut tx, live, target, None).await?;
        if target != live && !Checkpoints::advance(&mut tx, Projector::VIEWS, live, target).await? {
            bail!("the views' checkpoint moved under its lock");
        }
        for table in tables_of(&self.targets) {
            sqlx::query(&format!("DROP TABLE public.{table}")).execute(&mut *tx).await?;
            sqlx::query(&format!("ALTER TABLE {schema}.{table} SET SCHEMA public")).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM feed_checkpoints WHERE subscriber = $1")
            .bind(self.subscriber())
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("DROP SCHEMA {schema}")).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(target)
    }

    /// Applies the events in `(from, to]` inside the swap: to the shadow (`Some(schema)`), or
    /// to the live projections this replay leaves in place.
    async fn bring_to(
        &self,
        conn: &mut PgConnection,
        from: Position,
        to: Position,
        shadow: Option<&str>,
    ) -> anyhow::Result<()> {
        let projections = if shadow.is_some() { &self.targets } else { &self.others };
        if projections.is_empty() {
            return Ok(());
        }
        apply_range(conn, projections, shadow, from, to, self.batch_size).await
    }

    async fn events_in_feed(&self) -> sqlx::Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&self.pool).await?;
        Ok(n as u64)
    }

    async fn events_up_to(&self, at: Position) -> sqlx::Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE (transaction_id, global_position) <= ($1::text::xid8, $2)",
        )
        .bind(at.transaction_id.to_string())
        .bind(at.global_position)
        .fetch_one(&self.pool)
        .await?;
        Ok(n as u64)
    }
}
