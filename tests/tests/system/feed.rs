//! DESIGN invariant 2: one global commit order that a follower never skips, even when a
//! transaction that inserted earlier commits later.

use crate::support::TestDatabase;
use rand::Rng;
use services::feed::{Position, committed_beyond, read_after};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

const WRITERS: usize = 8;
const TRANSACTIONS_PER_WRITER: usize = 40;
const AGGREGATES_PER_WRITER: usize = 5;

/// Appends like postgres-es does (same table, same columns), but with a random pause inside
/// each transaction and one transaction in ten rolled back, so that commits interleave and
/// identity values are burnt.
async fn writer(pool: PgPool, writer: usize, committed: Arc<Mutex<Vec<(String, i64)>>>) {
    let mut next_sequence = [1i64; AGGREGATES_PER_WRITER];
    for _ in 0..TRANSACTIONS_PER_WRITER {
        let (aggregate, events, pause_ms, roll_back) = {
            let mut rng = rand::thread_rng();
            (rng.gen_range(0..AGGREGATES_PER_WRITER), rng.gen_range(1..=3), rng.gen_range(0..15), rng.gen_bool(0.1))
        };
        let aggregate_id = format!("w{writer}-a{aggregate}");
        let mut tx = pool.begin().await.unwrap();
        let first = next_sequence[aggregate];
        for sequence in first..first + events {
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                 VALUES ('feed_test', $1, $2, 'feed_test.happened', '1.0', '{}', '{}')",
            )
            .bind(&aggregate_id)
            .bind(sequence)
            .execute(&mut *tx)
            .await
            .unwrap();
            sqlx::query("SELECT pg_sleep($1)").bind(pause_ms as f64 / 1000.0).execute(&mut *tx).await.unwrap();
        }
        if roll_back {
            tx.rollback().await.unwrap();
            continue;
        }
        tx.commit().await.unwrap();
        next_sequence[aggregate] += events;
        let mut committed = committed.lock().await;
        committed.extend((first..first + events).map(|s| (aggregate_id.clone(), s)));
    }
}

/// Follows the feed from the start until the writers are done and nothing is left.
async fn follower(pool: PgPool, writers_done: Arc<AtomicBool>) -> Vec<(Position, String, i64)> {
    let mut seen = Vec::new();
    let mut at = Position::START;
    loop {
        let batch = read_after(&pool, at, 50).await.unwrap();
        if batch.is_empty() {
            if writers_done.load(Ordering::SeqCst) && !committed_beyond(&pool, at).await.unwrap() {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        }
        at = batch.last().unwrap().position;
        seen.extend(batch.into_iter().map(|e| (e.position, e.aggregate_id, e.sequence)));
    }
}

#[tokio::test]
async fn a_follower_sees_every_committed_event_once_in_commit_order_despite_late_commits() {
    // Arrange
    let db = TestDatabase::create().await;
    let pool = services::store::connect_and_migrate(&db.url).await.unwrap();
    let committed = Arc::new(Mutex::new(Vec::new()));
    let writers_done = Arc::new(AtomicBool::new(false));

    // Act: 8 writers and one follower, all at once.
    let follower = tokio::spawn(follower(pool.clone(), writers_done.clone()));
    let writers: Vec<_> = (0..WRITERS).map(|w| tokio::spawn(writer(pool.clone(), w, committed.clone()))).collect();
    for w in writers {
        w.await.unwrap();
    }
    writers_done.store(true, Ordering::SeqCst);
    let seen = follower.await.unwrap();

    // Assert: exactly the committed events, each once.
    let committed: HashSet<(String, i64)> = committed.lock().await.iter().cloned().collect();
    let delivered: Vec<(String, i64)> = seen.iter().map(|(_, a, s)| (a.clone(), *s)).collect();
    let unique: HashSet<_> = delivered.iter().cloned().collect();
    assert_eq!(unique.len(), delivered.len(), "an event was delivered twice");
    let missed: Vec<_> = committed.difference(&unique).take(5).collect();
    let invented: Vec<_> = unique.difference(&committed).take(5).collect();
    assert!(
        missed.is_empty(),
        "{} committed events never reached the follower, e.g. {missed:?}",
        committed.difference(&unique).count()
    );
    assert!(invented.is_empty(), "the follower saw events that were not committed, e.g. {invented:?}");
    assert!(committed.len() > 300, "too few events to mean anything: {}", committed.len());

    // Each aggregate's events arrive in their own order, without gaps.
    let mut per_aggregate: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (_, aggregate, sequence) in &seen {
        per_aggregate.entry(aggregate).or_default().push(*sequence);
    }
    for (aggregate, sequences) in per_aggregate {
        let expected: Vec<i64> = (1..=sequences.len() as i64).collect();
        assert_eq!(sequences, expected, "aggregate {aggregate} out of order");
    }

    // Positions only grow, and the scenario did happen: some events were delivered after
    // an event with a higher global_position (they committed late), and none was lost.
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "feed positions must increase");
    let mut highest = 0;
    let late = seen
        .iter()
        .filter(|(p, _, _)| {
            let late = p.global_position < highest;
            highest = highest.max(p.global_position);
            late
        })
        .count();
    assert!(late > 0, "no transaction committed after a later-numbered one; the test proved nothing");
    eprintln!("{} events, {late} of them committed after a later-numbered event", seen.len());
}
