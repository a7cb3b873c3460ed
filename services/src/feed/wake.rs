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
}

const CHANNEL: &str = "events_appended";

impl FeedWake {
    pub async fn listen(pool: &PgPool) -> sqlx::Result<Self> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Self { listener })
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
