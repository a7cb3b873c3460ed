//! Read models (views) built from the feed, exactly once.
//!
//! A [`Projection`] turns events into rows of its own tables. The [`Projector`] reads the
//! feed after its checkpoint and applies a batch of events to every projection and moves the
//! checkpoint, all in one transaction: a crash loses nothing and repeats nothing. Writers wait
//! for the checkpoint to pass their own events ([`AwaitViews`]), which gives read-your-writes.
//! [`rebuild`] replays the whole feed into fresh tables beside the live ones.

mod leader;
pub mod progress;
mod projector;
pub mod rebuild;
pub mod replay;
mod watch;

pub use leader::LeaderLock;
pub use projector::Projector;
pub use watch::ViewWatch;

use crate::feed::{FeedEvent, Position};
use anyhow::Context;
use sqlx::PgConnection;

/// A read model: events in, rows out.
#[async_trait::async_trait]
pub trait Projection: Send + Sync {
    /// Names it in logs and errors.
    fn name(&self) -> &'static str;

    /// The tables this projection alone writes, unqualified. Its SQL must name them
    /// unqualified too, so that a rebuild can point it at shadow copies (`search_path`).
    fn tables(&self) -> &'static [&'static str];

    /// Applies one event, inside the projector's transaction. Events of other aggregates are
    /// ignored. An error rolls back the whole batch, checkpoint included.
    async fn apply(&self, conn: &mut PgConnection, event: &FeedEvent) -> anyhow::Result<()>;

    /// Applies a batch of events, in order. A projection on a hot path overrides this to fold
    /// the batch in memory and write each row once.
    async fn apply_batch(&self, conn: &mut PgConnection, events: &[FeedEvent]) -> anyhow::Result<()> {
        for event in events {
            self.apply(conn, event)
                .await
                .with_context(|| format!("{} {} at {}", event.aggregate_type, event.event_type, event.position))?;
        }
        Ok(())
    }
}

/// How a writer waits until the views include its events (read-your-writes).
#[async_trait::async_trait]
pub trait AwaitViews: Send + Sync {
    /// Returns once the views have applied every event up to `position`, or gives up after a
    /// bound and says so (the write itself is committed either way).
    async fn await_views(&self, position: Position) -> bool;

    /// Whether a write answered earlier is still missing from the views: reads by id must
    /// then go to the events, or the caller could miss its own write.
    fn lagging(&self) -> bool {
        false
    }

    /// Waits (bounded) until the views hold every write this process answered; whether they
    /// do. A read that must not miss one (the instance precondition) checks this first.
    async fn await_answered(&self) -> bool {
        true
    }
}
