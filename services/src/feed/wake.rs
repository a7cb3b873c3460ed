use super::{Position, committed_beyond};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::time::Duration;

/// Wakes a feed reader when events are appended (`LISTEN events_appended`).
///
/// A notification can be missed (the listening connection drops and reconnects), so a reader
/// also wakes after a timeout and reads anyway: the notification makes the feed fast, the
/// timeout makes it reliable.
pub struct FeedWake {
    listener: PgListener,
    /// The current pause while committed events are held back by a running transaction.
    held_back: Duration,
}

const HELD_BACK_FIRST_PAUSE: Duration = Duration::from_millis(1);
/// Longest pause while events are committed but held back by a running transaction.
const HELD_BACK_MAX_PAUSE: Duration = Duration::from_millis(50);

const CHANNEL: &str = "events_appended";

impl FeedWake {
    pub async fn listen(pool: &PgPool) -> sqlx::Result<Self> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Self { listener, held_back: HELD_BACK_FIRST_PAUSE })
    }

    /// For a reader that has read everything readable after `at`: returns when there may be
    /// more. If events are committed but held back by a running transaction, the pause is
    /// short (1 ms doubling to 50 ms) and ends early at the next commit's notification, since
    /// the holding transaction usually appends events too. Otherwise it waits up to `idle`.
    pub async fn wait_after(&mut self, pool: &PgPool, at: Position, idle: Duration) -> sqlx::Result<()> {
        let timeout = if committed_beyond(pool, at).await? {
            let pause = self.held_back;
            self.held_back = (pause * 2).min(HELD_BACK_MAX_PAUSE);
            pause
        } else {
            self.held_back = HELD_BACK_FIRST_PAUSE;
            idle
        };
        self.wait(timeout).await
    }

    /// Returns when events were appended, or the connection was lost (which may have hidden a
    /// notification), or `timeout` passed. Notifications already queued are drained, so that
    /// a burst of commits costs one read.
    pub async fn wait(&mut self, timeout: Duration) -> sqlx::Result<()> {
        if let Ok(received) = tokio::time::timeout(timeout, self.listener.try_recv()).await {
            received?;
        }
        while self.listener.next_buffered().is_some() {}
        Ok(())
    }
}
