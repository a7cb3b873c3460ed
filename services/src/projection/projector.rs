use super::{AwaitViews, LeaderLock, Projection};
use crate::feed::{Checkpoints, FeedEvent, FeedWake, Position, read_after};
use anyhow::Context;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Follows the feed and keeps a set of projections up to date, under one checkpoint.
#[derive(Clone)]
pub struct Projector {
    pool: PgPool,
    subscriber: &'static str,
    projections: Arc<[Arc<dyn Projection>]>,
    batch_size: i64,
}

/// How long a follower sleeps when nothing wakes it; notifications normally come first.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Longest pause while events are committed but held back by a running transaction.
const HELD_BACK_MAX_PAUSE: Duration = Duration::from_millis(50);
const ERROR_MAX_PAUSE: Duration = Duration::from_secs(5);

impl Projector {
    /// The checkpoint name of the views' projector.
    pub const VIEWS: &'static str = "views";

    pub fn new(pool: PgPool, subscriber: &'static str, projections: Vec<Arc<dyn Projection>>) -> Self {
        Self { pool, subscriber, projections: projections.into(), batch_size: 500 }
    }

    pub fn subscriber(&self) -> &'static str {
        self.subscriber
    }

    /// Applies every readable event after the checkpoint, batch by batch, and returns the
    /// position reached. Safe to run in several places at once: a batch whose checkpoint was
    /// moved meanwhile is rolled back and the loser starts again from the new checkpoint.
    pub async fn catch_up(&self) -> anyhow::Result<Position> {
        let at = Checkpoints::load(&mut *self.pool.acquire().await?, self.subscriber).await?;
        self.catch_up_from(at).await
    }

    /// Catches up from `at`, which the caller believes is the checkpoint (a batch checks it).
    async fn catch_up_from(&self, mut at: Position) -> anyhow::Result<Position> {
        loop {
            let batch = read_after(&self.pool, at, self.batch_size).await?;
            let Some(last) = batch.last().map(|e| e.position) else { return Ok(at) };
            if self.apply_batch(at, &batch).await? {
                at = last;
            } else {
                tracing::debug!(subscriber = self.subscriber, "checkpoint moved by another reader; reloading");
                at = Checkpoints::load(&mut *self.pool.acquire().await?, self.subscriber).await?;
            }
        }
    }

    /// One transaction: lock the checkpoint, check it is still at `from`, apply every event to
    /// every projection, move the checkpoint to the batch's last event. False (and nothing
    /// applied) if another reader moved the checkpoint first.
    async fn apply_batch(&self, from: Position, batch: &[FeedEvent]) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        // Views are derived: if a crash loses this commit, it loses the checkpoint move with it
        // and the batch is applied again from the durable events. So it need not wait for its
        // WAL flush, which would otherwise be a second fsync on every write's way to its 2xx.
        // (It is visible to other sessions at once either way.)
        sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
        if Checkpoints::lock(&mut tx, self.subscriber).await? != Some(from) {
            tx.rollback().await?;
            return Ok(false);
        }
        for projection in self.projections.iter() {
            projection
                .apply_batch(&mut tx, batch)
                .await
                .with_context(|| format!("projection {} failed", projection.name()))?;
        }
        let to = batch.last().expect("batch is not empty").position;
        if !Checkpoints::advance(&mut tx, self.subscriber, from, to).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Catches up repeatedly until the checkpoint has passed `position` or `timeout` passes.
    /// This is how a process without a running projector (the CLI) sees its own writes.
    pub async fn catch_up_to(&self, position: Position, timeout: Duration) -> anyhow::Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            match self.catch_up().await {
                Ok(at) if at >= position => return Ok(true),
                Ok(_) => {}
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = format!("{e:#}"), "catch-up failed; retrying")
                }
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            // Our event is committed but a running transaction holds the horizon below it.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(HELD_BACK_MAX_PAUSE);
        }
    }

    /// Follows the feed until `cancel` fires: leads when it holds the lock, stands by
    /// otherwise, and survives database outages by retrying with backoff.
    pub async fn run(self, cancel: CancellationToken) {
        let lock_name = format!("feed:{}", self.subscriber);
        while let Some(mut lock) = LeaderLock::acquire(&self.pool, &lock_name, POLL_INTERVAL, &cancel).await {
            tracing::info!(subscriber = self.subscriber, "projector leads");
            if let Err(e) = self.follow(&mut lock, &cancel).await {
                tracing::error!(
                    subscriber = self.subscriber,
                    error = format!("{e:#}"),
                    "projector lost its footing; restarting"
                );
                tokio::select! {
                    () = cancel.cancelled() => {}
                    () = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            }
            if cancel.is_cancelled() {
                break;
            }
        }
        tracing::info!(subscriber = self.subscriber, "projector stopped");
    }

    async fn follow(&self, lock: &mut LeaderLock, cancel: &CancellationToken) -> anyhow::Result<()> {
        let mut wake = FeedWake::listen(&self.pool).await?;
        let mut error_pause = Duration::from_millis(100);
        let mut lock_checked = Instant::now();
        // Kept between rounds: reading it again every round would cost two statements.
        let mut at = Checkpoints::load(&mut *self.pool.acquire().await?, self.subscriber).await?;
        while !cancel.is_cancelled() {
            // Under sustained load the loop never idles, so the lock is checked on a clock.
            if lock_checked.elapsed() >= POLL_INTERVAL {
                if !lock.still_held().await {
                    anyhow::bail!("the leader lock's connection was lost");
                }
                lock_checked = Instant::now();
            }
            at = match self.catch_up_from(at).await {
                Ok(reached) => {
                    error_pause = Duration::from_millis(100);
                    reached
                }
                Err(e) => {
                    tracing::error!(
                        subscriber = self.subscriber,
                        error = format!("{e:#}"),
                        "projection failed; retrying"
                    );
                    Self::pause(cancel, error_pause).await;
                    error_pause = (error_pause * 2).min(ERROR_MAX_PAUSE);
                    continue;
                }
            };
            tokio::select! {
                () = cancel.cancelled() => {}
                woke = wake.wait_after(&self.pool, at, POLL_INTERVAL) => woke?,
            }
        }
        Ok(())
    }

    async fn pause(cancel: &CancellationToken, duration: Duration) {
        tokio::select! {
            () = cancel.cancelled() => {}
            () = tokio::time::sleep(duration) => {}
        }
    }
}

/// The CLI's way to read its own writes: project inline, for at most a few seconds.
#[async_trait::async_trait]
impl AwaitViews for Projector {
    async fn await_views(&self, position: Position) -> bool {
        match self.catch_up_to(position, Duration::from_secs(10)).await {
            Ok(caught_up) => caught_up,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "could not bring the views up to date");
                false
            }
        }
    }
}
