//! Replays (issue 7): views rebuilt into shadow tables while the service serves, then swapped
//! in; DESIGN invariant 3 (a rebuild equals the live views) must hold after the swap.

use crate::support::{TestApp, json_of, run_cli};
use reqwest::Method;
use serde_json::json;
use services::projection::rebuild::{compare, rebuild_into};
use services::projection::replay::{Replay, Silent};
use services::startup::views;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A history touching every view: servers, instances with credentials, deletions.
async fn seed(app: &TestApp, users: usize) {
    app.register_server("Seeded").await;
    for i in 0..users {
        let body = json!({"serverName": "Gmail", "userId": format!("seed-{i}")});
        let id =
            json_of(app.call(Method::POST, "/mcp-server/instance/create", Some(body)).await, 200).await["instanceId"]
                .as_str()
                .unwrap()
                .to_owned();
        let auth = json!({"instanceId": id, "authData": {"token": format!("t{i}")}});
        assert_eq!(app.call(Method::POST, "/mcp-server/instance/set-auth", Some(auth)).await.status(), 200);
        if i % 3 == 0 {
            assert_eq!(app.call(Method::DELETE, &format!("/mcp-server/instance/{id}"), None).await.status(), 200);
        }
    }
}

/// Names of the indexes of a live table.
async fn index_names(app: &TestApp, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1 ORDER BY 1",
    )
    .bind(table)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn table_oid(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT 'public.{table}'::regclass::oid::bigint")).fetch_one(&app.pool).await.unwrap()
}

/// Creates, authenticates and reads instances until `stop`; counts every answer that is not
/// the expected one.
async fn write_load(
    app: Arc<TestApp>,
    worker: usize,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
) {
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let body = json!({"serverName": "Slack", "userId": format!("load-{worker}-{i}")});
        let created = app.call(Method::POST, "/mcp-server/instance/create", Some(body)).await;
        if created.status() != 200 {
            failed.fetch_add(1, Ordering::Relaxed);
            eprintln!("create failed: {} {}", created.status(), created.text().await.unwrap());
            continue;
        }
        let id = created.json::<serde_json::Value>().await.unwrap()["instanceId"].as_str().unwrap().to_owned();
        let auth = json!({"instanceId": id, "authData": {"token": "t"}});
        let steps = [
            app.call(Method::POST, "/mcp-server/instance/set-auth", Some(auth)).await,
            app.call(Method::GET, &format!("/mcp-server/instance/{id}"), None).await,
            app.call(Method::GET, &format!("/user/load-{worker}-{i}/integrations"), None).await,
        ];
        for step in steps {
            if step.status() != 200 {
                failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("request failed: {} {}", step.status(), step.text().await.unwrap());
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
        i += 1;
    }
}

#[tokio::test]
async fn a_replay_under_write_load_swaps_in_views_equal_to_a_fresh_rebuild() {
    // Arrange: a history, and writers and readers that keep going during the replay.
    let app = Arc::new(TestApp::spawn().await);
    seed(&app, 150).await;
    let (oid_before, indexes_before) =
        (table_oid(&app, "view_connections").await, index_names(&app, "view_connections").await);
    let (stop, done, failed) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let writers: Vec<_> =
        (0..4).map(|w| tokio::spawn(write_load(app.clone(), w, stop.clone(), done.clone(), failed.clone()))).collect();
    while done.load(Ordering::Relaxed) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // Act: the real binary, small batches so that the load overlaps the whole replay.
    let done_before = done.load(Ordering::Relaxed);
    let run = run_cli(&["replay", "--all", "--batch-size", "5"], &[("DATABASE_URL", app.database_url())]).await;
    let done_during = done.load(Ordering::Relaxed);
    // A little more load after the swap, on the new tables.
    while done.load(Ordering::Relaxed) < done_during + 20 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let at = app.settled().await;
    eprintln!("{}\n{} load rounds ran during the replay", run.stderr, done_during - done_before);

    // Assert
    assert!(run.success, "replay failed:\n{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("views swapped at"), "{}", run.stderr);
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request failed during the replay");
    assert!(done_during > done_before, "the load ran during the replay");
    assert_ne!(table_oid(&app, "view_connections").await, oid_before, "the live table was replaced by the shadow");
    assert_eq!(
        index_names(&app, "view_connections").await,
        indexes_before,
        "the new table has the live indexes' names"
    );
    rebuild_into(&app.pool, "fresh_after_replay", &views(), at).await.unwrap();
    let differences = compare(&app.pool, "fresh_after_replay", &views()).await.unwrap();
    assert!(differences.is_empty(), "views after the swap differ from a fresh rebuild: {differences:#?}");
    let leftovers: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'replay_all') \
              + (SELECT count(*) FROM feed_checkpoints WHERE subscriber LIKE 'replay:%')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(leftovers, 0, "the shadow schema and the replay's checkpoint are gone");
}

#[tokio::test]
async fn an_interrupted_replay_resumes_where_it_stopped() {
    // Arrange: a replay of one projection stopped after two batches.
    let app = TestApp::spawn().await;
    seed(&app, 12).await;
    let first = Replay::new(app.pool.clone(), views(), Some("instances")).unwrap().with_batch_size(5);
    let start = first.prepare(false).await.unwrap();
    let (stopped_at, applied) = first.catch_up(start.at, Some(2), &Silent).await.unwrap();
    drop(first);
    let other_oid = table_oid(&app, "view_servers").await;

    // Act
    let second = Replay::new(app.pool.clone(), views(), Some("instances")).unwrap().with_batch_size(5);
    let resumed = second.prepare(false).await.unwrap();
    let report = second.run(resumed, &Silent).await.unwrap();

    // Assert
    assert!(!start.resumed);
    assert_eq!(applied, 10);
    assert!(resumed.resumed, "the shadow of the interrupted replay was found");
    assert_eq!(resumed.at, stopped_at, "it continues from where the first stopped");
    assert_eq!(report.events + applied, app.event_count().await as u64, "no event applied twice or skipped");
    assert_eq!(table_oid(&app, "view_servers").await, other_oid, "other projections' tables are left in place");
    let at = app.settled().await;
    rebuild_into(&app.pool, "fresh_after_resume", &views(), at).await.unwrap();
    let differences = compare(&app.pool, "fresh_after_resume", &views()).await.unwrap();
    assert!(differences.is_empty(), "{differences:#?}");
}

#[tokio::test]
async fn a_swap_brings_a_lagging_shadow_up_to_the_live_views_first() {
    let app = TestApp::spawn().await;
    seed(&app, 6).await;
    let replay = Replay::new(app.pool.clone(), views(), None).unwrap().with_batch_size(3);
    let start = replay.prepare(false).await.unwrap();
    replay.catch_up(start.at, Some(1), &Silent).await.unwrap();
    let live = app.settled().await;

    let swapped_at = replay.swap().await.unwrap();

    assert_eq!(swapped_at, live, "the shadow (3 events in) was brought to the live position inside the swap");
    rebuild_into(&app.pool, "fresh_after_swap", &views(), live).await.unwrap();
    let differences = compare(&app.pool, "fresh_after_swap", &views()).await.unwrap();
    assert!(differences.is_empty(), "{differences:#?}");
}

#[tokio::test]
async fn an_unknown_projection_is_refused_with_the_names_to_choose_from() {
    let app = TestApp::spawn().await;
    let run = run_cli(&["replay", "--projection", "widgets"], &[("DATABASE_URL", app.database_url())]).await;
    let neither = run_cli(&["replay"], &[("DATABASE_URL", app.database_url())]).await;

    assert!(!run.success);
    assert!(
        run.stderr.contains("no projection is called `widgets`; one of: projects, servers, instances, oauth_apps, auth_configs, connected_accounts"),
        "{}",
        run.stderr
    );
    assert!(!neither.success);
    assert!(neither.stderr.contains("--projection") && neither.stderr.contains("--all"), "{}", neither.stderr);
}
