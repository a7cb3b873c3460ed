//! `provisioner republish`: a lost stream refilled with one message per event, in order; a
//! range already in the stream skipped even after the duplicate window; bounds kept; a bad
//! position refused before anything is sent.

use crate::support::nats::NatsServer;
use crate::support::relay::{assert_exactly_once_in_order, connect, stream_state, write_users};
use crate::support::{RelayProcess, TestApp, run_cli};
use async_nats::jetstream;
use events::envelope::{STREAM, message_id};
use services::config::DatabaseArgs;
use services::feed::{Bound, Checkpoints, Position};
use services::nats::NatsArgs;
use services::relay::Relay;
use services::relay::republish::{Args, Summary, republish};
use services::relay::stream::message_ids;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn args(app: &TestApp, nats: &NatsServer, from: Bound, to: Option<Bound>, window_secs: u64) -> Args {
    Args {
        from,
        to,
        stream: Some(STREAM.into()),
        database: DatabaseArgs { database_url: Some(app.database_url().into()) },
        nats: NatsArgs { nats_url: Some(nats.url()), duplicate_window_secs: window_secs, ..NatsArgs::default() },
    }
}

/// Every stored event in feed order: its feed position and message id.
async fn stored(app: &TestApp) -> Vec<(Position, String)> {
    let rows: Vec<(String, i64, String, String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text AS tx, global_position, aggregate_type, aggregate_id, sequence FROM events \
         ORDER BY transaction_id, global_position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(tx, position, aggregate, id, sequence)| {
            (Position::from_columns(&tx, position).unwrap(), message_id(&aggregate, &id, sequence))
        })
        .collect()
}

async fn ids_in_stream(js: &jetstream::Context) -> HashSet<String> {
    let ids = message_ids(js, STREAM).await.unwrap();
    assert!(ids.values().all(|n| *n == 1), "a message id twice in the stream: {ids:?}");
    ids.into_keys().collect()
}

async fn relay_checkpoint(app: &TestApp) -> Option<Position> {
    Checkpoints::peek(&app.pool, Relay::SUBSCRIBER).await.unwrap()
}

/// An app with `users` users' events (four each, plus the project's).
async fn app_with_users(users: usize) -> TestApp {
    let app = TestApp::spawn().await;
    assert_eq!(write_users(app.base_url.clone(), app.key.clone(), 0..users, 8, Arc::default()).await, 0);
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_stream_is_refilled_with_one_message_per_event_in_order() {
    let nats = NatsServer::start().await;
    let app = app_with_users(50).await;
    let events = app.event_count().await as u64;
    let mut relay = RelayProcess::start(app.database_url(), &nats.url());
    let deadline = Instant::now() + Duration::from_secs(60);
    while stream_state(&nats.url()).await.0 < events {
        assert!(Instant::now() < deadline, "the relay did not publish everything:\n{}", relay.output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    relay.kill();
    let checkpoint = relay_checkpoint(&app).await;
    let js = connect(&nats.url()).await;
    js.delete_stream(STREAM).await.unwrap();

    let summary = republish(&args(&app, &nats, Bound::Global(0), None, 120)).await.unwrap();

    assert_eq!(
        summary,
        Summary { read: events as usize, present: 0, published: events as usize, duplicates: 0, still_missing: 0 }
    );
    assert_exactly_once_in_order(&app.pool, &nats.url()).await;
    assert_eq!(relay_checkpoint(&app).await, checkpoint, "the relay's checkpoint did not move");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_already_in_the_stream_are_skipped_after_the_duplicate_window() {
    let nats = NatsServer::start().await;
    let app = app_with_users(20).await;
    let events = app.event_count().await as usize;
    // The first republish creates the stream, with a 1 s duplicate window.
    let first = republish(&args(&app, &nats, Bound::Global(0), None, 1)).await.unwrap();
    assert_eq!(first.published, events);
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let again = republish(&args(&app, &nats, Bound::Global(0), None, 1)).await.unwrap();

    assert_eq!(again, Summary { read: events, present: events, published: 0, duplicates: 0, still_missing: 0 });
    let js = connect(&nats.url()).await;
    assert_eq!(ids_in_stream(&js).await.len(), events);
    // The window alone would not have caught them: a copy sent now is stored, and the scan
    // counts it.
    let (_, some_id) = stored(&app).await.remove(0);
    let copy = jetstream::message::PublishMessage::build().payload("copy".into()).message_id(&some_id);
    let subject = format!("{}.{}.project.created", events::envelope::SUBJECT_PREFIX, app.project_id);
    let ack = js.send_publish(subject, copy).await.unwrap().await.unwrap();
    assert!(!ack.duplicate, "the duplicate window is over");
    assert_eq!(message_ids(&js, STREAM).await.unwrap()[&some_id], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_events_between_the_bounds_are_sent() {
    let nats = NatsServer::start().await;
    let app = app_with_users(5).await;
    let all = stored(&app).await;
    let js = connect(&nats.url()).await;

    // Global positions, both inclusive.
    let (low, high) = (all[3].0.global_position, all[8].0.global_position);
    let between = republish(&args(&app, &nats, Bound::Global(low), Some(Bound::Global(high)), 120)).await.unwrap();
    let expected: HashSet<String> =
        all.iter().filter(|(p, _)| (low..=high).contains(&p.global_position)).map(|(_, id)| id.clone()).collect();
    assert_eq!(between.published, expected.len());
    assert_eq!(ids_in_stream(&js).await, expected);

    // A feed position (an envelope's `position`), to the newest event.
    let from = all[12].0;
    let rest = republish(&args(&app, &nats, Bound::Feed(from), None, 120)).await.unwrap();
    let tail: HashSet<String> = all.iter().filter(|(p, _)| *p >= from).map(|(_, id)| id.clone()).collect();
    assert_eq!(rest, Summary { read: tail.len(), present: 0, published: tail.len(), duplicates: 0, still_missing: 0 });
    assert_eq!(ids_in_stream(&js).await, &expected | &tail);
}

#[tokio::test]
async fn a_bad_from_is_refused_with_a_clear_error() {
    let nats = NatsServer::start().await;
    let app = app_with_users(1).await;
    let env = [("DATABASE_URL", app.database_url()), ("NATS_URL", &nats.url())];

    let run = run_cli(&["republish", "--from", "yesterday"], &env).await;

    assert!(!run.success);
    assert!(run.stderr.contains("--from") && run.stderr.contains("`yesterday` is not a position"), "{}", run.stderr);
}

#[tokio::test]
async fn another_stream_capturing_the_subjects_is_named_and_left_alone() {
    let nats = NatsServer::start().await;
    let app = app_with_users(1).await;
    let js = connect(&nats.url()).await;
    let other = jetstream::stream::Config {
        name: "SOMEONE_ELSES".into(),
        subjects: vec![format!("{}.>", events::envelope::SUBJECT_PREFIX)],
        ..Default::default()
    };
    js.create_stream(other).await.unwrap();

    let error = republish(&args(&app, &nats, Bound::Global(0), None, 120)).await.unwrap_err();

    assert!(format!("{error:#}").contains("the stream SOMEONE_ELSES already captures"), "{error:#}");
    assert!(js.get_stream(STREAM).await.is_err(), "no stream of the asked name was made");
    assert_eq!(js.get_stream("SOMEONE_ELSES").await.unwrap().info().await.unwrap().state.messages, 0);
}
