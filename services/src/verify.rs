//! `provisioner verify`: checks every derived thing against the event store. Each projection
//! is rebuilt aside and compared with the live tables row for row, at one position; the NATS
//! stream must hold exactly one message per event the relay has passed. Every difference is
//! printed; any difference makes the command fail.

use crate::config::DatabaseArgs;
use crate::feed::{Checkpoints, Position};
use crate::nats::NatsArgs;
use crate::projection::rebuild::{Difference, apply_range, compare_on, rebuild_into};
use crate::projection::{Projection, Projector};
use crate::relay::Relay;
use anyhow::bail;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The stream is checked when NATS_URL is set.
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// How many rows or ids of one kind are printed before "... and N more".
const SHOWN: usize = 20;

pub async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let pool = crate::store::connect_and_migrate(&args.database.url()?).await?;
    let mut problems = 0;
    let (at, differences) = views(&pool, &crate::startup::views()).await?;
    for difference in &differences {
        problems += difference.only_live.len() + difference.only_rebuilt.len();
        print_rows(&difference.table, "in the live table, not in the rebuild", &difference.only_live);
        print_rows(&difference.table, "in the rebuild, not in the live table", &difference.only_rebuilt);
    }
    println!("views: {} at {at}", if differences.is_empty() { "equal to a rebuild" } else { "DIFFER from a rebuild" });
    match args.nats.relay_settings()? {
        None => println!("stream: not checked (NATS_URL is not set)"),
        Some(settings) => {
            let js = crate::relay::stream::connect(&settings, "provisioner-verify", 1).await?;
            let check = stream(&pool, &js, settings.namespace.stream()).await?;
            problems += check.problems();
            check.print();
        }
    }
    if problems > 0 {
        bail!("{problems} differences found");
    }
    Ok(())
}

fn print_rows(table: &str, side: &str, rows: &[serde_json::Value]) {
    for row in rows.iter().take(SHOWN) {
        println!("{table}: {side}: {row}");
    }
    if rows.len() >= 50 {
        println!("{table}: {side}: ... (at least 50 rows; the first {SHOWN} are shown)");
    } else if rows.len() > SHOWN {
        println!("{table}: {side}: ... and {} more", rows.len() - SHOWN);
    }
}

/// Rebuilds `projections` into a scratch schema and compares them with the live tables at the
/// live position, inside one snapshot: the live tables and their checkpoint are committed
/// together, so the snapshot's tables are exactly the views at its checkpoint.
pub async fn views(pool: &PgPool, projections: &[Arc<dyn Projection>]) -> anyhow::Result<(Position, Vec<Difference>)> {
    let schema = format!("verify_{}", std::process::id());
    let live = Checkpoints::peek(pool, Projector::VIEWS).await?.unwrap_or_default();
    let rebuilt = rebuild_into(pool, &schema, projections, live).await?;
    let compared = compare_at_live_position(pool, &schema, projections, rebuilt).await;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(pool).await?;
    compared
}

async fn compare_at_live_position(
    pool: &PgPool,
    schema: &str,
    projections: &[Arc<dyn Projection>],
    rebuilt: Position,
) -> anyhow::Result<(Position, Vec<Difference>)> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ WRITE").execute(&mut *tx).await?;
    let live = Checkpoints::peek(&mut *tx, Projector::VIEWS).await?.unwrap_or_default();
    apply_range(&mut tx, projections, Some(schema), rebuilt, live, 1000).await?;
    let differences = compare_on(&mut tx, schema, projections).await?;
    tx.rollback().await?;
    Ok((live, differences))
}

/// What the stream holds compared with the events the relay has passed.
#[derive(Debug, Default)]
pub struct StreamCheck {
    pub stream: String,
    pub relay_at: Position,
    pub expected: usize,
    /// Events the relay has passed that are not in the stream.
    pub missing: Vec<String>,
    /// Message ids held more than once, with their count.
    pub duplicated: Vec<(String, u64)>,
    /// Messages that match no stored event.
    pub unknown: Vec<String>,
}

impl StreamCheck {
    pub fn problems(&self) -> usize {
        self.missing.len() + self.duplicated.len() + self.unknown.len()
    }

    fn print(&self) {
        let lists: [(&str, Vec<String>); 3] = [
            ("missing from the stream", self.missing.clone()),
            ("held more than once", self.duplicated.iter().map(|(id, n)| format!("{id} ({n} messages)")).collect()),
            ("in the stream but not an event", self.unknown.clone()),
        ];
        for (what, ids) in lists {
            for id in ids.iter().take(SHOWN) {
                println!("stream {}: {what}: {id}", self.stream);
            }
            if ids.len() > SHOWN {
                println!("stream {}: {what}: ... and {} more", self.stream, ids.len() - SHOWN);
            }
        }
        let verdict = if self.problems() == 0 { "one message per event" } else { "DIFFERS from the events" };
        println!("stream {}: {verdict} ({} events up to the relay's {})", self.stream, self.expected, self.relay_at);
    }
}

/// Compares the message ids in `stream` with the stored events.
pub async fn stream(pool: &PgPool, js: &async_nats::jetstream::Context, stream: &str) -> anyhow::Result<StreamCheck> {
    // In this order: whatever the stream holds was stored (and relayed) before the events are
    // read, so an event that commits meanwhile cannot look like a stray message.
    let relay_at = Checkpoints::peek(pool, Relay::SUBSCRIBER).await?.unwrap_or_default();
    let held = crate::relay::stream::message_ids(js, stream).await?;
    let rows: Vec<(String, String, i64, bool)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, sequence, \
                (transaction_id, global_position) <= ($1::text::xid8, $2) FROM events",
    )
    .bind(relay_at.transaction_id.to_string())
    .bind(relay_at.global_position)
    .fetch_all(pool)
    .await?;
    let mut known = HashSet::with_capacity(rows.len());
    let mut check = StreamCheck { stream: stream.to_owned(), relay_at, ..StreamCheck::default() };
    for (aggregate_type, aggregate_id, sequence, passed) in rows {
        let id = events::envelope::message_id(&aggregate_type, &aggregate_id, sequence);
        if passed {
            check.expected += 1;
            if !held.contains_key(&id) {
                check.missing.push(id.clone());
            }
        }
        known.insert(id);
    }
    check.duplicated = held.iter().filter(|(_, n)| **n > 1).map(|(id, n)| (id.clone(), *n)).collect();
    // The gateway's records share the stream; they are not events.
    check.unknown =
        held.keys().filter(|id| !known.contains(*id) && !events::gateway::is_message_id(id)).cloned().collect();
    for list in [&mut check.missing, &mut check.unknown] {
        list.sort();
    }
    check.duplicated.sort();
    Ok(check)
}
