use super::AwaitViews;
use crate::feed::{CHECKPOINT_CHANNEL, Checkpoints, Position};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Where the views' checkpoint is, as seen by this process. Fed by `LISTEN feed_checkpoint`
/// (the projector announces each commit), with a poll as fallback, so it works whether the
/// projector runs in this process or another one.
#[derive(Clone)]
pub struct ViewWatch {
    subscriber: &'static str,
    position: watch::Receiver<Position>,
    timeout: Duration,
    /// The furthest write this process answered before the views had it.
    unseen: Arc<Mutex<Position>>,
}

const POLL_INTERVAL: Duration = Duration::from_secs(1);

impl ViewWatch {
    /// Starts watching `subscriber`'s checkpoint until `cancel` fires. `timeout` bounds each
    /// wait of a writer.
    pub async fn start(
        pool: PgPool,
        subscriber: &'static str,
        timeout: Duration,
        cancel: CancellationToken,
    ) -> sqlx::Result<Self> {
        // Listen first, then read: a move between the two is then either read or heard.
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHECKPOINT_CHANNEL).await?;
        let initial = Checkpoints::peek(&pool, subscriber).await?.unwrap_or_default();
        let (tx, rx) = watch::channel(initial);
        tokio::spawn(follow(pool, subscriber, listener, tx, cancel));
        Ok(Self { subscriber, position: rx, timeout, unseen: Arc::default() })
    }

    pub fn current(&self) -> Position {
        *self.position.borrow()
    }

    pub fn subscriber(&self) -> &'static str {
        self.subscriber
    }
}

async fn follow(
    pool: PgPool,
    subscriber: &'static str,
    mut listener: PgListener,
    tx: watch::Sender<Position>,
    cancel: CancellationToken,
) {
    let prefix = format!("{subscriber} ");
    // Polled on a clock, whatever else is heard: other subscribers' announcements on the same
    // channel must not keep a missed one of ours from being noticed.
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let announced = tokio::select! {
            () = cancel.cancelled() => return,
            _ = poll.tick() => Checkpoints::peek(&pool, subscriber).await.ok().flatten(),
            received = listener.try_recv() => match received {
                Ok(Some(n)) => n.payload().strip_prefix(&prefix).and_then(|p| p.parse::<Position>().ok()),
                // The connection dropped (and reconnects): something may have been missed.
                Ok(None) => Checkpoints::peek(&pool, subscriber).await.ok().flatten(),
                Err(e) => {
                    tracing::warn!(error = %e, "checkpoint listener failed; polling");
                    tokio::time::sleep(POLL_INTERVAL).await;
                    None
                }
            },
        };
        if let Some(position) = announced {
            // Checkpoints only move forward; a late or reordered message must not move it back.
            tx.send_if_modified(|current| {
                let newer = position > *current;
                if newer {
                    *current = position;
                }
                newer
            });
        }
    }
}

#[async_trait::async_trait]
impl AwaitViews for ViewWatch {
    async fn await_views(&self, position: Position) -> bool {
        let mut rx = self.position.clone();
        let reached = tokio::time::timeout(self.timeout, rx.wait_for(|at| *at >= position)).await;
        let caught_up = matches!(reached, Ok(Ok(_)));
        if !caught_up {
            tracing::warn!(%position, at = %self.current(), "views did not catch up in time; answering from the events");
            let mut unseen = self.unseen.lock().expect("not poisoned");
            *unseen = (*unseen).max(position);
        }
        caught_up
    }

    fn lagging(&self) -> bool {
        *self.unseen.lock().expect("not poisoned") > self.current()
    }

    async fn await_answered(&self) -> bool {
        let unseen = *self.unseen.lock().expect("not poisoned");
        unseen <= self.current() || self.await_views(unseen).await
    }
}
