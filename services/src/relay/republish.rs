//! `provisioner republish`: sends a range of stored events to a JetStream stream again, for a
//! stream that was lost or a new one, without ever sending an event twice.
//!
//! Dedup holds beyond the stream's duplicate window: the stream's message ids are read first
//! (headers only) and the events already there are skipped; the rest go out with the relay's
//! `Nats-Msg-Id`, so a copy the relay publishes meanwhile is dropped by the window. The
//! relay's checkpoint is not touched: republishing is a repair beside it, not a step of it.

use super::{Relay, publish, stream};
use crate::config::DatabaseArgs;
use crate::feed::{Bound, FeedEvent, Position, Range, read_range};
use crate::nats::NatsArgs;
use crate::projection::LeaderLock;
use crate::store;
use async_nats::jetstream;
use events::Namespace;
use sqlx::PgPool;
use std::collections::HashMap;
use std::fmt;

/// Events read from the store per round, and the most publishes awaiting their acks.
const BATCH: i64 = 1000;

#[derive(Clone, clap::Args)]
pub struct Args {
    /// First event to send, inclusive: a global position (`0` for the first event), or a feed
    /// position `<transaction id>/<global position>` as an envelope's `position` shows it.
    #[arg(long, value_name = "POSITION")]
    pub from: Bound,

    /// Last event to send, inclusive, in either form; without it, up to the newest event.
    #[arg(long, value_name = "POSITION")]
    pub to: Option<Bound>,

    /// The stream to send to (by default the configured one, `PROVISIONER_NATS_STREAM`).
    /// Created with the relay's configuration when no stream captures the events' subjects;
    /// refused when another stream does.
    #[arg(long)]
    pub stream: Option<String>,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub nats: NatsArgs,
}

/// What a republish did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events of the range read from the store.
    pub read: usize,
    /// Of those, already in the stream (found by the id scan) and not sent.
    pub present: usize,
    /// Sent to the stream.
    pub published: usize,
    /// Of those sent, dropped by the stream as copies (published meanwhile, by the relay).
    pub duplicates: usize,
    /// Of those sent, still not in the stream afterwards: the stream dropped them as copies of
    /// ids it saw within its duplicate window (a message deleted from a live stream).
    pub still_missing: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "events read           {}", self.read)?;
        writeln!(f, "already in stream     {}", self.present)?;
        writeln!(f, "published             {}", self.published)?;
        writeln!(f, "duplicates reported   {}", self.duplicates)?;
        write!(f, "still missing         {}", self.still_missing)
    }
}

/// The command: republishes and prints the summary.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let summary = republish(&args).await?;
    println!("{summary}");
    if summary.still_missing > 0 {
        anyhow::bail!(
            "{} events are still missing from {}: it dropped them as copies of message ids seen within its \
             duplicate window; run republish again once the window has passed",
            summary.still_missing,
            args.stream.as_deref().unwrap_or(&args.nats.stream)
        );
    }
    Ok(())
}

/// Sends the range's events missing from the stream, in commit order.
pub async fn republish(args: &Args) -> anyhow::Result<Summary> {
    let settings = args.nats.required()?;
    let pool = store::connect_and_migrate(&args.database.url()?).await?;
    // While a relay publishes new events, older ones sent now could land after them on the
    // stream: out of each aggregate's order. So the relay's leadership is held throughout (a
    // relay that starts meanwhile stands by) and a running one makes this refuse.
    let Some(_relay_lock) = LeaderLock::try_acquire(&pool, &Relay::lock_name()).await? else {
        anyhow::bail!(
            "a relay is running (in `provisioner serve` with NATS_URL, or `provisioner relay`): stop it first, \
             or its new events could reach the stream before the older events republished here"
        );
    };
    let name = args.stream.as_deref().unwrap_or(settings.namespace.stream());
    let js = stream::connect(&settings, "provisioner-republish", BATCH as usize).await?;
    stream::ensure_named(&js, &settings, name).await?;
    let present = stream::message_ids(&js, name).await?;
    tracing::info!(stream = name, messages = present.len(), "stream scanned");
    let target = Target { namespace: &settings.namespace, stream: name };
    let (mut summary, sent) = send_missing(&pool, &js, args, target, &present).await?;
    if !sent.is_empty() {
        let held = stream::message_ids(&js, name).await?;
        summary.still_missing = sent.iter().filter(|id| !held.contains_key(*id)).count();
    }
    Ok(summary)
}

/// Where events are sent: the stream, and the subjects of the namespace.
#[derive(Clone, Copy)]
struct Target<'a> {
    namespace: &'a Namespace,
    stream: &'a str,
}

async fn send_missing(
    pool: &PgPool,
    js: &jetstream::Context,
    args: &Args,
    target: Target<'_>,
    present: &HashMap<String, u64>,
) -> anyhow::Result<(Summary, Vec<String>)> {
    let range = Range { from: args.from, to: args.to };
    let mut summary = Summary::default();
    let mut sent = Vec::new();
    let mut after = Position::START;
    loop {
        let batch = read_range(pool, &range, after, BATCH).await?;
        let Some(last) = batch.last().map(|e| e.position) else { return Ok((summary, sent)) };
        after = last;
        let read = batch.len();
        let missing: Vec<FeedEvent> = batch.into_iter().filter(|e| !present.contains_key(&message_id(e))).collect();
        summary.read += read;
        summary.present += read - missing.len();
        let acked = publish(js, pool, target.namespace, target.stream, &missing).await?;
        summary.published += missing.len();
        sent.extend(missing.iter().map(message_id));
        summary.duplicates += acked.duplicates;
    }
}

fn message_id(event: &FeedEvent) -> String {
    events::envelope::message_id(&event.aggregate_type, &event.aggregate_id, event.sequence)
}
