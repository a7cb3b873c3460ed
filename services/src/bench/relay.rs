//! `provisioner bench relay`: the NATS relay's commit-to-consumer latency at a steady rate,
//! and its catch-up rate over a stored backlog, on a database of its own.
//!
//! Events are appended with plain SQL (`project.created`, one aggregate each), not through
//! the API, so that the figures are the relay's: the feed read, the envelope, the publish
//! and its ack, the checkpoint move, and JetStream's delivery to a consumer.

use super::http::{create_database, drop_database};
use super::percentiles_ms;
use crate::config::DatabaseArgs;
use crate::feed::{Checkpoints, Position};
use crate::nats::{NatsArgs, RelaySettings};
use crate::relay::{Relay, stream};
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Clone, clap::Args)]
pub struct RelayBenchArgs {
    /// A superuser connection: the bench creates (and afterwards drops) a database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Events per second appended during the latency measurement, one per transaction.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Seconds of the latency measurement.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Events stored before the relay starts, for the catch-up measurement.
    #[arg(long, default_value_t = 100_000)]
    pub backlog: i64,
    #[arg(long)]
    pub keep: bool,
}

pub async fn run(args: RelayBenchArgs) -> anyhow::Result<()> {
    let admin_url = args.database.url()?;
    let settings = args.nats.required()?;
    let name = format!("bench_relay_{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    let url = create_database(&admin_url, &name).await?;
    let result = measure(&args, &settings, &url).await;
    if !args.keep {
        drop_database(&admin_url, &name).await;
    }
    result
}

async fn measure(args: &RelayBenchArgs, settings: &RelaySettings, url: &str) -> anyhow::Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(24).connect(url).await?;
    let js = stream::connect(settings, "bench-consumer", 1).await?;
    stream::ensure(&js, settings).await?;
    let skip = stream::last_sequence(&js, settings.namespace.stream()).await?;

    eprintln!(
        "latency: {} events/s for {} s, one per transaction, relay and consumer running",
        args.rate, args.duration
    );
    let cancel = CancellationToken::new();
    let relay = tokio::spawn(Relay::new(pool.clone(), settings.clone()).run(cancel.clone()));
    let latency =
        steady_latency(&pool, &js, settings.namespace.stream(), skip, args.rate, Duration::from_secs(args.duration))
            .await?;
    cancel.cancel();
    relay.await?;

    eprintln!("catch-up: {} events stored while no relay runs, then one relay starts", args.backlog);
    append_backlog(&pool, args.backlog).await?;
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let relay = tokio::spawn(Relay::new(pool.clone(), settings.clone()).run(cancel.clone()));
    wait_until_published(&pool).await?;
    let catch_up = started.elapsed();
    let in_stream = stream::last_sequence(&js, settings.namespace.stream()).await? - skip;

    cancel.cancel();
    relay.await?;

    let (p50, p95, p99) = percentiles_ms(&latency);
    println!();
    println!("relay, commit to consumer ({} events at {}/s):", latency.len(), args.rate);
    println!("  p50 {p50:.2} ms   p95 {p95:.2} ms   p99 {p99:.2} ms   max {:.2} ms", latency.max() as f64 / 1000.0);
    println!(
        "relay catch-up: {} events in {:.2} s = {:.0} events/s (the stream then held {in_stream} of this run's messages)",
        args.backlog,
        catch_up.as_secs_f64(),
        args.backlog as f64 / catch_up.as_secs_f64()
    );
    Ok(())
}

/// One `project.created` per transaction at `rate`; each delivery's latency from the event's
/// `time` (its row's clock_timestamp, on this machine's clock) to its arrival.
async fn steady_latency(
    pool: &PgPool,
    js: &async_nats::jetstream::Context,
    stream: &str,
    skip: u64,
    rate: u64,
    duration: Duration,
) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    let consumer = js
        .get_stream(stream)
        .await?
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: skip + 1 },
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let total = rate * duration.as_secs();
    let writer = tokio::spawn(append_at_rate(pool.clone(), rate, total));
    let mut histogram = hdrhistogram::Histogram::<u64>::new(3)?;
    while histogram.len() < total {
        let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await
            .map_err(|_| anyhow::anyhow!("no message for 30 s after {} of {total}", histogram.len()))?
            .ok_or_else(|| anyhow::anyhow!("the consumer stopped"))??;
        let received = events::decode(&message.payload)?;
        let committed = chrono::DateTime::parse_from_rfc3339(&received.envelope.time)?;
        let micros = (chrono::Utc::now() - committed.with_timezone(&chrono::Utc)).num_microseconds().unwrap_or(0);
        histogram.record(micros.max(0) as u64)?;
    }
    writer.await??;
    Ok(histogram)
}

const INSERT_PROJECT_CREATED: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload, metadata) \
     SELECT 'project', id::text, 1, 'project.created', '1.0', \
            json_build_object('ProjectCreated', json_build_object('project_id', id, 'name', 'bench')), '{}'::json \
     FROM (SELECT gen_random_uuid() AS id FROM generate_series(1, $1)) ids";

async fn append_at_rate(pool: PgPool, rate: u64, total: u64) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..total {
        tick.tick().await;
        let permit = in_flight.clone().acquire_owned().await?;
        let pool = pool.clone();
        tasks.spawn(async move {
            let _permit = permit;
            sqlx::query(INSERT_PROJECT_CREATED).bind(1_i64).execute(&pool).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// The backlog, in transactions of 10,000 events.
async fn append_backlog(pool: &PgPool, events: i64) -> anyhow::Result<()> {
    let mut left = events;
    while left > 0 {
        let n = left.min(10_000);
        sqlx::query(INSERT_PROJECT_CREATED).bind(n).execute(pool).await?;
        left -= n;
    }
    Ok(())
}

/// Until the relay's checkpoint has reached the last stored event.
async fn wait_until_published(pool: &PgPool) -> anyhow::Result<()> {
    let (tx, position): (String, i64) = sqlx::query_as(
        // `tx`, not `transaction_id`: ORDER BY would then sort by the text.
        "SELECT transaction_id::text AS tx, global_position FROM events \
         ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_one(pool)
    .await?;
    let last = Position::from_columns(&tx, position)?;
    while Checkpoints::peek(pool, Relay::SUBSCRIBER).await?.unwrap_or_default() < last {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
