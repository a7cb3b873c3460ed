//! The NATS relay: every committed event, published to JetStream exactly once as a consumer
//! sees it (DESIGN invariant 5).
//!
//! The relay is a subscriber of the feed like the projector. It reads a batch after its
//! checkpoint, publishes each event with `Nats-Msg-Id = <aggregate>:<id>:<sequence>`, awaits
//! every ack, and only then moves its checkpoint. A crash before the move republishes the
//! batch; the stream drops the copies it already holds (its duplicate window). NATS being down
//! only delays the move: writes never wait for NATS, the store is the source of truth.
//!
//! One relay leads (a Postgres advisory lock); others stand by and take over within a second
//! or two of its death. Even two leaders at once would publish duplicates only, which the
//! stream drops, and the checkpoint move is guarded by compare-and-set.

mod leadership;
mod message;
pub mod oversized;
pub mod republish;
mod status;
pub mod stream;

pub use leadership::{Publishing, lead_while_elected};
pub use message::{Outgoing, fitting, outgoing};
pub use status::{Heartbeat, RelayReport};

use crate::feed::{Checkpoints, FeedEvent, FeedWake, Position, read_after};
use crate::nats::RelaySettings;
use crate::projection::LeaderLock;
use async_nats::jetstream::{self, context::PublishAckFuture};
use events::Namespace;
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub struct Relay {
    pool: PgPool,
    settings: RelaySettings,
    batch_size: i64,
}

/// How long a follower sleeps when nothing wakes it, and how often standbys try the lock.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
const RETRY_FIRST_PAUSE: Duration = Duration::from_millis(100);
const RETRY_MAX_PAUSE: Duration = Duration::from_secs(5);
/// The longest a stopping relay spends publishing what is left.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

impl Relay {
    /// Its checkpoint's name in `feed_checkpoints` (and its row in `relay_status`).
    pub const SUBSCRIBER: &'static str = "nats-relay";

    /// The advisory lock whose holder is the one active relay.
    pub fn lock_name() -> String {
        format!("feed:{}", Self::SUBSCRIBER)
    }

    pub fn new(pool: PgPool, settings: RelaySettings) -> Self {
        Self { pool, settings, batch_size: 1000 }
    }

    /// Leads when it holds the lock, stands by otherwise, until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        leadership::lead_while_elected(&self, POLL_INTERVAL, &cancel).await;
    }

    async fn connect_to_nats(&self) -> anyhow::Result<jetstream::Context> {
        let js = stream::connect(&self.settings, "provisioner-relay", self.batch_size as usize).await?;
        stream::ensure(&js, &self.settings).await?;
        Ok(js)
    }

    async fn follow_feed(
        &self,
        js: &jetstream::Context,
        lock: &mut LeaderLock,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut wake = FeedWake::listen(&self.pool).await?;
        let mut at = Checkpoints::load(&mut *self.pool.acquire().await?, Self::SUBSCRIBER).await?;
        let mut retry = Backoff::default();
        let mut last_beat = Instant::now() - status::HEARTBEAT_EVERY;
        let mut last_sequence = None;
        while !cancel.is_cancelled() {
            if last_beat.elapsed() >= status::HEARTBEAT_EVERY {
                if !lock.still_held().await {
                    anyhow::bail!("the leader lock's connection was lost");
                }
                status::beat(&self.pool, Self::SUBSCRIBER, true, None, last_sequence).await?;
                last_beat = Instant::now();
            }
            let batch = read_after(&self.pool, at, self.batch_size).await?;
            if batch.is_empty() {
                tokio::select! {
                    () = cancel.cancelled() => {}
                    woke = wake.wait_after(&self.pool, at, POLL_INTERVAL.min(status::HEARTBEAT_EVERY)) => woke?,
                }
                continue;
            }
            match self.publish_batch(js, &batch).await {
                Ok(Acked { last_sequence: sequence, .. }) => {
                    if retry.failing() {
                        tracing::info!("NATS answers again; relay catching up");
                        last_beat = Instant::now() - status::HEARTBEAT_EVERY;
                    }
                    retry.reset();
                    last_sequence = Some(sequence);
                    at = self.advance(at, &batch).await?;
                }
                Err(e) => {
                    // Nothing moves: the same batch is published again, and the stream drops
                    // whatever part of it it already holds.
                    self.report_failure(&e).await;
                    last_beat = Instant::now();
                    retry.wait(cancel).await;
                }
            }
        }
        self.publish_the_rest(js, at).await;
        Ok(())
    }

    /// At shutdown (serve cancels once its last request is answered): what was committed until
    /// then goes out now rather than at the next start. Bounded, since NATS may be down; what
    /// is left waits in the store for the next relay, as after a crash.
    async fn publish_the_rest(&self, js: &jetstream::Context, mut at: Position) {
        let drained = tokio::time::timeout(SHUTDOWN_DRAIN, async {
            loop {
                let batch = read_after(&self.pool, at, self.batch_size).await?;
                if batch.is_empty() {
                    return Ok::<_, anyhow::Error>(());
                }
                self.publish_batch(js, &batch).await?;
                at = self.advance(at, &batch).await?;
            }
        })
        .await;
        match drained {
            Ok(Ok(())) => tracing::info!("relay stopped with every committed event published"),
            Ok(Err(e)) => {
                tracing::warn!(error = format!("{e:#}"), "relay stopped; the rest goes out at the next start")
            }
            Err(_) => tracing::warn!("relay stopped after {SHUTDOWN_DRAIN:?}; the rest goes out at the next start"),
        }
    }

    /// Publishes `batch` under this deployment's namespace; counted once acknowledged.
    async fn publish_batch(&self, js: &jetstream::Context, batch: &[FeedEvent]) -> anyhow::Result<Acked> {
        let namespace = &self.settings.namespace;
        let acked = publish(js, &self.pool, namespace, namespace.stream(), batch).await?;
        ::metrics::counter!(crate::metrics::RELAY_PUBLISHED).increment(batch.len() as u64);
        Ok(acked)
    }

    /// Moves the checkpoint past `batch`, or reloads it if another relay moved it first.
    async fn advance(&self, from: Position, batch: &[FeedEvent]) -> anyhow::Result<Position> {
        let to = batch.last().expect("batch is not empty").position;
        let mut tx = self.pool.begin().await?;
        if Checkpoints::advance(&mut tx, Self::SUBSCRIBER, from, to).await? {
            tx.commit().await?;
            return Ok(to);
        }
        tx.rollback().await?;
        tracing::warn!("the relay checkpoint was moved by another relay; reloading");
        Ok(Checkpoints::load(&mut *self.pool.acquire().await?, Self::SUBSCRIBER).await?)
    }

    async fn report_failure(&self, error: &anyhow::Error) {
        ::metrics::counter!(crate::metrics::NATS_PUBLISH_ERRORS, "publisher" => "relay").increment(1);
        tracing::warn!(error = format!("{error:#}"), "cannot publish to NATS; retrying");
        // The detail is shown by the unauthenticated /ready: it names the failing step only.
        let detail = format!("NATS: {}", error.to_string().split(':').next().unwrap_or("failing"));
        if let Err(e) = status::beat(&self.pool, Self::SUBSCRIBER, false, Some(&detail), None).await {
            tracing::warn!(error = %e, "cannot record the relay's status");
        }
    }
}

impl leadership::Publishing for Relay {
    const ROLE: &'static str = "relay";

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
        self.report_failure(error).await;
    }

    async fn follow(
        &self,
        js: &jetstream::Context,
        lock: &mut LeaderLock,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        self.follow_feed(js, lock, cancel).await
    }
}

/// What the stream answered to a published batch.
#[derive(Debug, Default)]
struct Acked {
    /// The stream's sequence after the last message.
    last_sequence: u64,
    /// Messages the stream dropped as copies of one it holds (same `Nats-Msg-Id`, within its
    /// duplicate window).
    duplicates: usize,
}

/// Publishes a batch to `stream`, run by run (see [`message::runs`]), each run pipelined and
/// fully acknowledged before the next. `Nats-Expected-Stream` makes every ack come from
/// `stream`, never from another stream that happens to capture the subject. An event too
/// large for the server's `max_payload` goes out as its claim check, recorded in `pool`. The
/// subjects are `namespace`'s.
async fn publish(
    js: &jetstream::Context,
    pool: &PgPool,
    namespace: &Namespace,
    stream: &str,
    batch: &[FeedEvent],
) -> anyhow::Result<Acked> {
    let mut acked = Acked::default();
    // Read per batch: the client learns the cap anew from each server it reconnects to.
    let max_bytes = js.client().max_payload();
    for run in message::runs(batch) {
        let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(run.len());
        for event in run {
            let out = message::fitting(event, namespace, max_bytes)?;
            oversized::record(pool, event, &out, max_bytes).await?;
            let mut publish = jetstream::message::PublishMessage::build()
                .payload(out.payload)
                .message_id(&out.message_id)
                .expected_stream(stream);
            if let Some(traceparent) = &out.traceparent {
                publish = publish.header(events::envelope::TRACEPARENT_HEADER, traceparent.as_str());
            }
            acks.push(js.send_publish(out.subject, publish).await?);
        }
        // Every publish of the run is already on the wire: awaiting the acks in order costs
        // no more than the slowest one.
        for ack in acks {
            let ack = ack.await?;
            acked.last_sequence = acked.last_sequence.max(ack.sequence);
            acked.duplicates += usize::from(ack.duplicate);
        }
    }
    Ok(acked)
}

/// Doubling pauses between retries, from 100 ms up to 5 s (the gateway's record publisher
/// retries the same way).
#[derive(Default)]
pub(crate) struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    pub(crate) fn failing(&self) -> bool {
        self.next.is_some()
    }

    pub(crate) fn reset(&mut self) {
        self.next = None;
    }

    pub(crate) async fn wait(&mut self, cancel: &CancellationToken) {
        let current = self.next.unwrap_or(RETRY_FIRST_PAUSE);
        pause(cancel, current).await;
        self.next = Some((current * 2).min(RETRY_MAX_PAUSE));
    }
}

pub(crate) async fn pause(cancel: &CancellationToken, duration: Duration) {
    tokio::select! {
        () = cancel.cancelled() => {}
        () = tokio::time::sleep(duration) => {}
    }
}
