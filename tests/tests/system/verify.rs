//! `provisioner verify` (issue 7): every view and the NATS stream checked against the events,
//! each difference printed, exit 1 if there is one; and the repairs it points to (replay,
//! republish) make it pass again.

use crate::support::nats::NatsServer;
use crate::support::relay::connect;
use crate::support::{CliRun, RelayProcess, TestApp, json_of, run_cli};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

async fn verify(app: &TestApp, nats: &NatsServer) -> CliRun {
    app.settled().await;
    app.relayed().await;
    run_cli(&["verify"], &[("DATABASE_URL", app.database_url()), ("NATS_URL", &nats.url())]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_on_a_clean_store_names_each_difference_and_passes_again_after_repair() {
    // Arrange: a history on the views and on the stream.
    let nats = NatsServer::start().await;
    let app = TestApp::spawn().await;
    // A relay of its own (republish refuses to run beside one), with a short duplicate window
    // so that a message deleted from the stream can be sent again soon.
    let window = [("PROVISIONER_NATS_DUPLICATE_WINDOW_SECS", "1")];
    let mut relay = RelayProcess::start_with(app.database_url(), &nats.url(), &window);
    app.register_server("Verified").await;
    let mut instances = Vec::new();
    for user in ["ann", "bob", "cid"] {
        let body = json!({"serverName": "Gmail", "userId": user});
        let id =
            json_of(app.call(Method::POST, "/mcp-server/instance/create", Some(body)).await, 200).await["instanceId"]
                .as_str()
                .unwrap()
                .to_owned();
        let auth = json!({"instanceId": id, "authData": {"token": "t"}});
        assert_eq!(app.call(Method::POST, "/mcp-server/instance/set-auth", Some(auth)).await.status(), 200);
        instances.push(id);
    }
    let env = [("DATABASE_URL", app.database_url()), ("NATS_URL", &nats.url())];

    // Act and assert, step by step.
    let clean = verify(&app, &nats).await;
    assert_eq!(clean.code, Some(0), "{clean:?}");
    assert!(clean.stdout.contains("views: equal to a rebuild"), "{}", clean.stdout);
    assert!(clean.stdout.contains("one message per event"), "{}", clean.stdout);

    // A view row corrupted behind the projector's back.
    sqlx::query("UPDATE view_connections SET auth_method = NULL WHERE instance_id = $1::uuid")
        .bind(&instances[1])
        .execute(&app.pool)
        .await
        .unwrap();
    let corrupted = verify(&app, &nats).await;
    assert_eq!(corrupted.code, Some(1), "{corrupted:?}");
    let line = corrupted
        .stdout
        .lines()
        .find(|l| l.starts_with("view_connections: in the live table, not in the rebuild"))
        .unwrap_or_else(|| panic!("the corrupted row is named:\n{}", corrupted.stdout));
    assert!(line.contains(&instances[1]) && line.contains("\"auth_method\":null"), "{line}");
    assert!(corrupted.stdout.contains("view_connections: in the rebuild, not in the live table"));
    assert!(corrupted.stderr.contains("2 differences found"), "{}", corrupted.stderr);

    // The repair: a replay of that projection.
    let replay = run_cli(&["replay", "--projection", "instances"], &env[..1]).await;
    assert!(replay.success, "{replay:?}");
    let repaired = verify(&app, &nats).await;
    assert_eq!(repaired.code, Some(0), "{repaired:?}");

    // A message lost from the stream.
    let js = connect(&nats.url()).await;
    let stream = js.get_stream(events::envelope::STREAM).await.unwrap();
    assert!(stream.delete_message(3).await.unwrap());
    let lost = verify(&app, &nats).await;
    assert_eq!(lost.code, Some(1), "{lost:?}");
    assert_eq!(lost.stdout.lines().filter(|l| l.contains("missing from the stream")).count(), 1, "{}", lost.stdout);

    // The repair: republish, which refuses beside a running relay, then skips what the stream
    // holds (once the stream has forgotten the deleted message's id).
    let beside_a_relay = run_cli(&["republish", "--from", "0"], &env).await;
    assert!(!beside_a_relay.success && beside_a_relay.stderr.contains("a relay is running"), "{beside_a_relay:?}");
    relay.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let republish = run_cli(&["republish", "--from", "0"], &[env[0], env[1], window[0]]).await;
    assert!(republish.success, "{republish:?}");
    assert!(republish.stdout.contains("published             1"), "{}", republish.stdout);
    let refilled = verify(&app, &nats).await;
    assert_eq!(refilled.code, Some(0), "{refilled:?}");

    // A message that is no event at all.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "server:not-an-event:1");
    let subject = format!("{}.{}.server.registered", events::envelope::SUBJECT_PREFIX, app.project_id);
    js.publish_with_headers(subject, headers, "{}".into()).await.unwrap().await.unwrap();
    let stray = verify(&app, &nats).await;
    assert_eq!(stray.code, Some(1), "{stray:?}");
    assert!(stray.stdout.contains("in the stream but not an event: server:not-an-event:1"), "{}", stray.stdout);
}
