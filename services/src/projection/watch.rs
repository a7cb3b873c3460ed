use super::AwaitViews;
use crate::feed::{CHECKPOINT_CHANNEL, Checkpoints, Position};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
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
        let initial = Checkpoints::peek(&pool, subscriber).await?.unwrap_or_default();
        let (tx, rx) = watch::channel(initial);
        let listener = {
            let mut l = PgListener::connect_with(&pool).await?;
            l.listen(CHECKPOINT_CHANNEL).await?;
            l
        };
        tokio::spawn(follow(pool, subscriber, listener, tx, cancel));
        Ok(Self { subscriber, position: rx, timeout })
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
    loop {
        let received = tokio::select! {
            () = cancel.cancelled() => return,
            r = tokio::time::timeout(POLL_INTERVAL, listener.try_recv()) => r,
        };
        let announced = match received {
            Ok(Ok(Some(n))) => n.payload().strip_prefix(&prefix).and_then(|p| p.parse::<Position>().ok()),
            Ok(Ok(None)) | Err(_) => Checkpoints::peek(&pool, subscriber).await.ok().flatten(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "checkpoint listener failed; polling");
                tokio::time::sleep(POLL_INTERVAL).await;
                Checkpoints::peek(&pool, subscriber).await.ok().flatten()
            }
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
            tracing::warn!(%position, at = %self.current(), "views did not catch up in time; answering anyway");
        }
        caught_up
    }
}
