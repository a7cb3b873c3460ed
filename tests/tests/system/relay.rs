//! DESIGN invariant 5 under faults, against real nats-servers: every event reaches a durable
//! consumer exactly once, each aggregate's in order, with no secret in any message, whether
//! NATS stops during a write burst, the relay is killed mid-batch, two relays run, or a node
//! of a 3-node cluster dies.

use crate::support::nats::{NatsCluster, NatsServer};
use crate::support::process::binary;
use crate::support::relay::{
    assert_exactly_once_in_order, assert_no_secret_published, connect, eventually, stream_state, write_users,
};
use crate::support::{RelayProcess, TestApp};
use serde_json::Value;
use services::nats::RelaySettings;
use services::startup::Settings;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn relay_to(urls: &str, replicas: usize) -> impl FnOnce(&mut Settings) {
    let nats_urls = urls.split(',').map(str::to_owned).collect();
    move |settings| settings.relay = Some(RelaySettings { nats_urls, replicas, ..RelaySettings::default() })
}

/// Waits until `/ready` answers with this status; returns its body.
async fn wait_for_readiness(app: &TestApp, status: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let body: Value = app.http.get(format!("{}/ready", app.base_url)).send().await.unwrap().json().await.unwrap();
        if body["status"] == status {
            return body;
        }
        assert!(Instant::now() < deadline, "/ready never said {status} within {timeout:?}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_events_from_concurrent_writers_reach_a_durable_consumer_once_each_in_order() {
    let nats = NatsServer::start().await;
    let app = TestApp::spawn_with(relay_to(&nats.url(), 1)).await;

    let users = 1250;
    let failed = write_users(app.base_url.clone(), app.key.clone(), 0..users, 32, Arc::default()).await;

    assert_eq!(failed, 0, "every write succeeded");
    let stored = app.event_count().await;
    assert!(stored >= 5000, "{stored} events stored");
    let delivered = assert_exactly_once_in_order(&app.pool, &nats.url()).await;
    assert_no_secret_published(&app.pool, &delivered, users).await;
    let instance_events = delivered.iter().filter(|d| d.subject.contains(".instance.")).count();
    assert_eq!(instance_events, 4 * users, "four instance events per user");
    assert!(delivered.iter().all(|d| d.received.envelope.project == app.project_id));
    let body = wait_for_readiness(&app, "ready", Duration::from_secs(10)).await;
    assert_eq!(body["relay_lag_events"], 0, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_stopped_during_a_write_burst_then_restarted_loses_and_duplicates_nothing() {
    let mut nats = NatsServer::start().await;
    let app = TestApp::spawn_with(relay_to(&nats.url(), 1)).await;
    let written = Arc::new(AtomicUsize::new(0));
    let burst = tokio::spawn(write_users(app.base_url.clone(), app.key.clone(), 0..600, 16, written.clone()));

    // NATS goes away a quarter of the way through the burst.
    wait_until("a quarter of the burst", Duration::from_secs(60), || written.load(Ordering::Relaxed) >= 150).await;
    nats.stop().await;
    let events_when_stopped = app.event_count().await;
    let degraded = wait_for_readiness(&app, "degraded", Duration::from_secs(60)).await;
    let failed = burst.await.unwrap();

    // Writes kept succeeding while NATS was down, and waited in the store.
    assert_eq!(failed, 0, "no write failed because NATS was down");
    assert_eq!(degraded["relay"]["ok"], false, "{degraded}");
    let events_while_down = app.event_count().await - events_when_stopped;
    assert!(events_while_down > 0, "the burst went on while NATS was down");
    let backlog = wait_for_readiness(&app, "degraded", Duration::from_secs(5)).await;
    assert!(backlog["relay_lag_events"].as_i64().unwrap() >= events_while_down, "{backlog}");

    nats.restart().await;
    let delivered = assert_exactly_once_in_order(&app.pool, &nats.url()).await;
    assert_no_secret_published(&app.pool, &delivered, 600).await;
    let ready = wait_for_readiness(&app, "ready", Duration::from_secs(30)).await;
    assert_eq!(ready["relay_lag_events"], 0, "{ready}");
    println!("{events_while_down} events written while NATS was down; {} delivered once each", delivered.len());
}

/// The number of events at or before the relay's checkpoint.
async fn checkpointed(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events e, feed_checkpoints c WHERE c.subscriber = 'nats-relay' \
         AND (e.transaction_id, e.global_position) <= (c.transaction_id, c.global_position)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_mid_batch_and_restarted_loses_and_duplicates_nothing() {
    let nats = NatsServer::start().await;
    let app = TestApp::spawn().await;
    assert_eq!(write_users(app.base_url.clone(), app.key.clone(), 0..750, 32, Arc::default()).await, 0);
    let stored = app.event_count().await;

    // The relay starts on a 3,000-event backlog and is killed (SIGKILL) as soon as the stream
    // holds a message: in the middle of its first batch, before it moved its checkpoint.
    let mut relay = RelayProcess::start(app.database_url(), &nats.url());
    let js = connect(&nats.url()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut stream) = js.get_stream(events::envelope::STREAM).await
            && stream.info().await.unwrap().state.messages > 0
        {
            relay.kill();
            break;
        }
        assert!(Instant::now() < deadline, "the relay published nothing:\n{}", relay.output());
    }
    let (published_at_kill, _) = stream_state(&nats.url()).await;
    let checkpointed_at_kill = checkpointed(&app).await;
    assert!(
        published_at_kill as i64 > checkpointed_at_kill && (published_at_kill as i64) < stored,
        "killed mid-batch: {published_at_kill} published, {checkpointed_at_kill} checkpointed, {stored} stored"
    );

    // A new relay republishes from the checkpoint; the stream drops the copies.
    let _relay = RelayProcess::start(app.database_url(), &nats.url());
    let delivered = assert_exactly_once_in_order(&app.pool, &nats.url()).await;
    println!(
        "killed with {published_at_kill} published and {checkpointed_at_kill} checkpointed of {stored}; {} delivered",
        delivered.len()
    );

    // `relay --status` tells an operator the same.
    let status = relay_status(app.database_url(), &nats.url()).await;
    assert!(status.contains("lag                   0 events"), "{status}");
    assert!(status.contains(&format!("stream last sequence  {stored} (PROVISIONER_EVENTS)")), "{status}");
    assert!(status.contains("relay                 healthy"), "{status}");
}

/// `provisioner relay --status`, once the relay has caught up.
async fn relay_status(database_url: &str, nats_url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = std::process::Command::new(binary())
            .args(["relay", "--status"])
            .env_clear()
            .env("DATABASE_URL", database_url)
            .env("NATS_URL", nats_url)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8(output.stdout).unwrap();
        if stdout.contains("lag                   0 events") || Instant::now() > deadline {
            return stdout;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_relays_one_publishes_and_the_other_takes_over_when_it_dies() {
    let nats = NatsServer::start().await;
    let app = TestApp::spawn().await;
    let mut first = RelayProcess::start(app.database_url(), &nats.url());
    first.wait_for("relay leads", Duration::from_secs(30)).await;
    let mut second = RelayProcess::start(app.database_url(), &nats.url());
    assert_eq!(write_users(app.base_url.clone(), app.key.clone(), 0..300, 16, Arc::default()).await, 0);
    let (published, _) = stream_state(&nats.url()).await;
    assert!(published > 0, "the leader publishes");
    assert!(!second.said("relay leads"), "the second relay stood by:\n{}", second.output());

    // The leader dies during the next burst; the standby takes over.
    let written = Arc::new(AtomicUsize::new(0));
    let burst = tokio::spawn(write_users(app.base_url.clone(), app.key.clone(), 300..600, 16, written.clone()));
    wait_until("a third of the burst", Duration::from_secs(60), || written.load(Ordering::Relaxed) >= 100).await;
    first.kill();
    let killed = Instant::now();
    second.wait_for("relay leads", Duration::from_secs(15)).await;
    let takeover = killed.elapsed();
    assert_eq!(burst.await.unwrap(), 0);

    let delivered = assert_exactly_once_in_order(&app.pool, &nats.url()).await;
    println!("standby took over {takeover:?} after the kill; {} delivered once each", delivered.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_a_three_node_cluster_killed_during_a_burst_loses_nothing() {
    let mut cluster = NatsCluster::start(3).await;
    let app = TestApp::spawn_with(relay_to(&cluster.urls(), 3)).await;
    let written = Arc::new(AtomicUsize::new(0));
    let burst = tokio::spawn(write_users(app.base_url.clone(), app.key.clone(), 0..500, 16, written.clone()));
    wait_until("a quarter of the burst", Duration::from_secs(60), || written.load(Ordering::Relaxed) >= 125).await;
    let (published_before, _) = stream_state(&cluster.url(0)).await;
    cluster.kill(0);
    assert_eq!(burst.await.unwrap(), 0);

    let survivors = format!("{},{}", cluster.url(1), cluster.url(2));
    let js = connect(&survivors).await;
    let replicas = eventually("the stream's config", || async {
        Ok::<_, async_nats::Error>(js.get_stream(events::envelope::STREAM).await?.info().await?.config.num_replicas)
    })
    .await;
    assert_eq!(replicas, 3, "a replicas-3 stream");
    let delivered = assert_exactly_once_in_order(&app.pool, &survivors).await;
    println!("node 0 killed after {published_before} messages; {} delivered once each", delivered.len());
}
