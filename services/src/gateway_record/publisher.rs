//! The gateway's records on NATS, exactly once as a consumer sees them: the relay's method
//! (see [`crate::relay`]) applied to `gateway_calls`.
//!
//! It reads the records after its checkpoint in commit order (below the feed's horizon, so a
//! batch that commits late is never skipped), publishes each with
//! `Nats-Msg-Id = gateway:<record id>` and `Nats-Expected-Stream`, awaits every ack, and only
//! then moves its checkpoint (a row of `feed_checkpoints`, moved by compare-and-set). A crash
//! in between republishes the batch and the stream drops the copies. One publisher leads (a
//! Postgres advisory lock); others stand by.

use super::store::{self, StoredRecord};
use crate::feed::{Checkpoints, Position};
use crate::nats::RelaySettings;
use crate::projection::LeaderLock;
use crate::relay::{self, Backoff, stream};
use anyhow::Context;
use async_nats::jetstream::{self, context::PublishAckFuture};
use events::Namespace;
use events::gateway::{self, RecordEnvelope};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub struct Publisher {
    pool: PgPool,
    settings: RelaySettings,
    batch_size: i64,
}

/// How long it sleeps when nothing wakes it, how often standbys try the lock, and how often
/// the leader checks that its lock still holds.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The NOTIFY channel of `gateway_calls` inserts (migration 0014).
const CHANNEL: &str = "gateway_calls_appended";

impl Publisher {
    /// Its checkpoint's name in `feed_checkpoints`.
    pub const SUBSCRIBER: &'static str = "nats-gateway-records";

    pub fn lock_name() -> String {
        format!("feed:{}", Self::SUBSCRIBER)
    }

    pub fn new(pool: PgPool, settings: RelaySettings) -> Self {
        Self { pool, settings, batch_size: 1000 }
    }

    /// Leads when it holds the lock, stands by otherwise, until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        relay::lead_while_elected(&self, POLL_INTERVAL, &cancel).await;
    }

    async fn connect_to_nats(&self) -> anyhow::Result<jetstream::Context> {
        let js = stream::connect(&self.settings, "provisioner-gateway-records", self.batch_size as usize).await?;
        stream::ensure(&js, &self.settings).await?;
        Ok(js)
    }

    async fn follow_records(
        &self,
        js: &jetstream::Context,
        lock: &mut LeaderLock,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut wake = PgListener::connect_with(&self.pool).await?;
        wake.listen(CHANNEL).await?;
        let mut at = Checkpoints::load(&mut *self.pool.acquire().await?, Self::SUBSCRIBER).await?;
        let mut retry = Backoff::default();
        let mut lock_checked = Instant::now();
        while !cancel.is_cancelled() {
            if lock_checked.elapsed() >= POLL_INTERVAL {
                if !lock.still_held().await {
                    anyhow::bail!("the leader lock's connection was lost");
                }
                lock_checked = Instant::now();
            }
            let batch = store::read_after(&self.pool, at, self.batch_size).await?;
            if batch.is_empty() {
                // Held back by a running transaction or simply idle: a notification, or the
                // poll, brings the next look.
                let idle = if self.held_back(at).await? { Duration::from_millis(10) } else { POLL_INTERVAL };
                tokio::select! {
                    () = cancel.cancelled() => {}
                    _ = tokio::time::timeout(idle, wake.try_recv()) => {}
                }
                while wake.next_buffered().is_some() {}
                continue;
            }
            match publish(js, &self.settings.namespace, &batch).await {
                Ok(()) => {
                    if retry.failing() {
                        tracing::info!("NATS answers again; gateway record publisher catching up");
                    }
                    retry.reset();
                    at = self.advance(at, &batch).await?;
                }
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "cannot publish gateway records to NATS; retrying");
                    ::metrics::counter!(crate::metrics::NATS_PUBLISH_ERRORS, "publisher" => "gateway_records")
                        .increment(1);
                    retry.wait(cancel).await;
                }
            }
        }
        Ok(())
    }

    /// Whether records after `at` are committed but not yet readable below the horizon.
    async fn held_back(&self, at: Position) -> sqlx::Result<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM gateway_calls WHERE (transaction_id, position) > ($1::text::xid8, $2))",
        )
        .bind(at.transaction_id.to_string())
        .bind(at.global_position)
        .fetch_one(&self.pool)
        .await
    }

    /// Moves the checkpoint past `batch`, or reloads it if another publisher moved it first.
    async fn advance(&self, from: Position, batch: &[StoredRecord]) -> anyhow::Result<Position> {
        let to = batch.last().expect("batch is not empty").position;
        let mut tx = self.pool.begin().await?;
        if Checkpoints::advance(&mut tx, Self::SUBSCRIBER, from, to).await? {
            tx.commit().await?;
            return Ok(to);
        }
        tx.rollback().await?;
        tracing::warn!("the gateway record checkpoint was moved by another publisher; reloading");
        Ok(Checkpoints::load(&mut *self.pool.acquire().await?, Self::SUBSCRIBER).await?)
    }
}

/// The subject (in `namespace`), message id and payload of a stored record.
pub fn outgoing(stored: &StoredRecord, namespace: &Namespace) -> anyhow::Result<(String, String, bytes::Bytes)> {
    let record = &stored.record;
    let subject = namespace.record_subject(record.project, record.kind);
    let message_id = gateway::message_id(record.record_id);
    let envelope = RecordEnvelope::of(record.clone(), stored.position.to_string());
    Ok((subject, message_id, serde_json::to_vec(&envelope)?.into()))
}

/// Publishes a batch, pipelined, and awaits every ack. Records have no order among
/// themselves beyond commit order, which the pipeline keeps unless a publish in the middle
/// fails and is retried after later ones were stored.
async fn publish(js: &jetstream::Context, namespace: &Namespace, batch: &[StoredRecord]) -> anyhow::Result<()> {
    let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(batch.len());
    for stored in batch {
        let (subject, message_id, payload) = outgoing(stored, namespace)?;
        let message = jetstream::message::PublishMessage::build()
            .payload(payload)
            .message_id(&message_id)
            .expected_stream(namespace.stream());
        acks.push(js.send_publish(subject, message).await.context("cannot send a gateway record")?);
    }
    for ack in acks {
        ack.await.context("a gateway record was not acknowledged")?;
    }
    Ok(())
}

impl relay::Publishing for Publisher {
    const ROLE: &'static str = "gateway record publisher";

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn lock_name(&self) -> String {
        Self::lock_name()
    }

    async fn connect(&self) -> anyhow::Result<jetstream::Context> {
        self.connect_to_nats().await
    }

    async fn connect_failed(&self, error: &anyhow::Error) {
        tracing::warn!(error = format!("{error:#}"), "gateway record publisher cannot reach NATS; retrying");
        ::metrics::counter!(crate::metrics::NATS_PUBLISH_ERRORS, "publisher" => "gateway_records").increment(1);
    }

    async fn follow(
        &self,
        js: &jetstream::Context,
        lock: &mut LeaderLock,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        self.follow_records(js, lock, cancel).await
    }
}
