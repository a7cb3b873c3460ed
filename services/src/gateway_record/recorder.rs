//! Group commit: calls hand their record to one background writer and wait for its commit;
//! whatever arrived while the previous batch was committing goes in the next one, as one
//! multi-row INSERT. So a call waits for a commit (nothing acknowledged is lost) but never
//! for a commit of its own: at 1,000 calls/s and a 1 ms commit, batches hold a few records
//! each, and the rate of commits stays that of the database, not that of the calls.

use super::store;
use events::gateway::GatewayRecord;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Records waiting for the writer, at most: beyond, a call is refused rather than queued
/// without bound (the database is down or far too slow).
pub const QUEUE_BOUND: usize = 10_000;
/// Records in one INSERT, at most.
pub const MAX_BATCH: usize = 1_000;

/// Why a record was not committed; the call it records is then answered with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("too many call records are waiting for the database")]
    Full,
    #[error("the service is shutting down")]
    Stopped,
    #[error("the database did not take the call record")]
    NotCommitted,
}

/// The handle calls record through; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Pending>,
}

struct Pending {
    record: GatewayRecord,
    /// Fired once the record's batch committed (or failed). None: nobody waits.
    committed: Option<oneshot::Sender<Result<(), RecordError>>>,
}

/// The writer: run it once per process ([`RecorderTask::run`]).
pub struct RecorderTask {
    pool: PgPool,
    queue: mpsc::Receiver<Pending>,
}

impl Recorder {
    pub fn new(pool: PgPool) -> (Self, RecorderTask) {
        let (sender, receiver) = mpsc::channel(QUEUE_BOUND);
        (Self { queue: sender }, RecorderTask { pool, queue: receiver })
    }

    /// Records and waits until the record is committed.
    pub async fn record(&self, record: GatewayRecord) -> Result<(), RecordError> {
        let (committed, done) = oneshot::channel();
        self.enqueue(Pending { record, committed: Some(committed) })?;
        done.await.unwrap_or(Err(RecordError::Stopped))
    }

    /// Records without waiting: for a call whose client is gone and waits for nothing.
    pub fn record_later(&self, record: GatewayRecord) {
        if let Err(e) = self.enqueue(Pending { record, committed: None }) {
            tracing::warn!(error = %e, "a gateway call record was dropped");
        }
    }

    fn enqueue(&self, pending: Pending) -> Result<(), RecordError> {
        self.queue.try_send(pending).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => RecordError::Full,
            mpsc::error::TrySendError::Closed(_) => RecordError::Stopped,
        })
    }
}

impl RecorderTask {
    /// Writes batches until `cancel` fires, then takes no more and writes what is queued
    /// (graceful shutdown loses no record a call is waiting for).
    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            let first = tokio::select! {
                pending = self.queue.recv() => pending,
                () = cancel.cancelled() => break,
            };
            let Some(first) = first else { return };
            let batch = self.take_batch(first);
            self.commit(batch).await;
        }
        self.queue.close();
        let mut flushed = 0;
        while let Some(first) = self.queue.recv().await {
            let batch = self.take_batch(first);
            flushed += batch.len();
            self.commit(batch).await;
        }
        tracing::info!(flushed, "gateway recorder stopped");
    }

    /// `first` and whatever else is queued now, up to [`MAX_BATCH`].
    fn take_batch(&mut self, first: Pending) -> Vec<Pending> {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match self.queue.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        batch
    }

    async fn commit(&self, batch: Vec<Pending>) {
        let (records, waiting): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.record, p.committed)).unzip();
        let result = store::insert(&self.pool, &records).await.map_err(|e| {
            tracing::error!(error = %e, records = records.len(), "cannot commit gateway call records");
            RecordError::NotCommitted
        });
        for committed in waiting.into_iter().flatten() {
            // A caller that stopped waiting (its client left) still has its record committed.
            let _ = committed.send(result);
        }
    }
}
