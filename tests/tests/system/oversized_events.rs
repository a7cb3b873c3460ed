//! Issue 18, defect 1: one oversized event must never stop event delivery for every project.
//! The store refuses an event over its limit (a quarter of the NATS server's `max_payload`),
//! and an event that is already stored and too large for a message (stored before the limit,
//! or after the server's cap was lowered) goes out as a claim check while the stream goes on.

use crate::support::nats::NatsServer;
use crate::support::process::{CliRun, run_cli};
use crate::support::relay::connect;
use crate::support::{RelayProcess, ServeProcess, TestApp, TestDatabase, json_of};
use reqwest::Method;
use serde_json::{Value, json};
use services::secrets::MasterKey;
use std::time::{Duration, Instant};

/// A registration whose fields are each within their own limits and add up to `bytes` or so.
fn registration_of_about(app: &TestApp, name: &str, bytes: usize) -> Value {
    let mut body = app.http_server(name);
    let values = bytes / 1000;
    body["env"] = env_of(values);
    body["transportType"] = "stdio".into();
    body["command"] = "npx".into();
    body.as_object_mut().unwrap().remove("url");
    body
}

/// `count` secret environment variables of 700 characters (about 1 KB each once sealed).
fn env_of(count: usize) -> Value {
    (0..count).map(|i| (format!("VAR_{i}"), Value::from("v".repeat(700)))).collect::<serde_json::Map<_, _>>().into()
}

#[tokio::test]
async fn a_change_whose_event_would_exceed_the_limit_answers_413_and_stores_nothing() {
    let app = TestApp::spawn_with(|settings| settings.max_event_bytes = 8 * 1024).await;
    let before = app.event_count().await;

    let response = app.call(Method::POST, "/api/mcp/servers", Some(registration_of_about(&app, "big", 12_000))).await;

    let body = json_of(response, 413).await;
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"], "payload_too_large", "{body}");
    assert!(body["message"].as_str().unwrap().contains("at most 8192 bytes"), "{body}");
    assert_eq!(app.event_count().await, before, "nothing was stored");
    // The same change, smaller, is taken.
    let response = app.call(Method::POST, "/api/mcp/servers", Some(registration_of_about(&app, "small", 4_000))).await;
    json_of(response, 201).await;
}

#[tokio::test]
async fn the_probes_400_kb_url_is_refused_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let before = app.event_count().await;
    let mut body = app.http_server("probe");
    body["url"] = format!("https://mcp.example.com/{}", "{".repeat(400_000)).into();

    let response = app.call(Method::POST, "/api/mcp/servers", Some(body)).await;

    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert!((400..500).contains(&status), "{status}: {}", &text[..text.len().min(300)]);
    assert!(text.contains("\"success\":false"), "{}", &text[..text.len().min(300)]);
    assert_eq!(app.event_count().await, before, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_limits_events_to_a_quarter_of_the_nats_servers_max_payload() {
    let nats = NatsServer::start_with_max_payload(32 * 1024).await;
    let db = TestDatabase::create().await;
    let env = [("DATABASE_URL", db.url.as_str())];
    let project = run_cli(&["project", "create", "Limits"], &env).await.stdout.trim().to_owned();
    let key = run_cli(&["key", "create", "--project", &project], &env).await.stdout.trim().to_owned();
    let master = MasterKey::generate_base64();
    let serve = ServeProcess::start(&[
        ("DATABASE_URL", &db.url),
        ("NATS_URL", &nats.url()),
        ("PROVISIONER_MASTER_KEY", &master),
        ("RUST_LOG", "info"),
    ]);
    assert!(serve.output().contains("events limited to a quarter"), "{}", serve.output());
    let http = reqwest::Client::new();
    let register = async |name: &str, bytes: usize| {
        let body = json!({"projectId": project, "name": name, "transportType": "stdio", "command": "npx",
            "env": env_of(bytes / 1000)});
        let response = http
            .post(format!("{}/api/mcp/servers", serve.base_url))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };

    let (status, body) = register("over a quarter of 32 KiB", 10_000).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("at most 8192 bytes"), "{body}");
    let (status, body) = register("under it", 4_000).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_too_large_for_nats_goes_out_without_its_data_and_later_events_still_flow() {
    // Arrange: an event stored before the limit existed, 1.2 MB (the probe's), then another
    // project's event after it.
    let app = TestApp::spawn().await;
    let poisoned = app.register_server("poisoned").await;
    let inflated = sqlx::query(
        "UPDATE events SET payload = jsonb_set(payload::jsonb, '{ServerRegistered,config,description}', to_jsonb(repeat('%7B', 400000)))::json \
         WHERE aggregate_type = 'server' AND aggregate_id = $1",
    )
    .bind(&poisoned)
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(inflated.rows_affected(), 1);
    let (other_project, other_key) = app.new_project("Another tenant").await;
    let mut later = app.http_server("later");
    later["projectId"] = other_project.to_string().into();
    let response = app.call_as(&other_key, Method::POST, "/api/mcp/servers", Some(later)).await;
    let later_id = json_of(response, 201).await["serverId"].as_str().unwrap().to_owned();
    let stored = app.event_count().await as u64;

    // Act: the real relay binary, against a server with the default 1 MiB max_payload.
    let nats = NatsServer::start().await;
    let _relay = RelayProcess::start(app.database_url(), &nats.url());

    // Assert: every event reaches the stream once, the oversized one as its claim check.
    let messages = stream_messages(&nats.url(), stored).await;
    let id_of = |m: &Message| m.id.clone();
    let claim_check = messages.iter().find(|m| m.id == format!("server:{poisoned}:1")).expect("the oversized event");
    assert!(claim_check.payload.len() < 2048, "{} bytes", claim_check.payload.len());
    let Err(events::DecodeError::DataOmitted { dataref, sequence, .. }) = events::decode(&claim_check.payload) else {
        panic!("not a claim check: {}", String::from_utf8_lossy(&claim_check.payload))
    };
    assert_eq!((dataref.as_str(), sequence), (format!("/api/v1/audit/server/{poisoned}").as_str(), 1));
    let after = messages.iter().find(|m| m.id == format!("server:{later_id}:1")).expect("the later event");
    assert!(events::decode(&after.payload).is_ok(), "the later event is published whole");
    let ids: std::collections::HashSet<String> = messages.iter().map(id_of).collect();
    assert_eq!((messages.len() as u64, ids.len() as u64), (stored, stored), "one message per event");

    // The whole event is where `dataref` says, for the project's key.
    let response = app.call(Method::GET, &dataref, None).await;
    let history = json_of(response, 200).await;
    assert!(history.to_string().contains(&"%7B".repeat(1000)), "the audit API serves the whole event");

    // Operators are told: the table, /ready, relay --status.
    let recorded: (String, i64, i64) =
        sqlx::query_as("SELECT message_id, message_bytes, max_bytes FROM relay_oversized")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(recorded.0, format!("server:{poisoned}:1"));
    assert!(recorded.1 > recorded.2 && recorded.2 == 1024 * 1024, "{recorded:?}");
    let ready: Value = app.http.get(format!("{}/ready", app.base_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["relay_oversized_events"], 1, "{ready}");
    assert!(ready["relay"]["detail"].as_str().unwrap_or_default().contains(&recorded.0), "{ready}");
    let status: CliRun =
        run_cli(&["relay", "--status"], &[("DATABASE_URL", app.database_url()), ("NATS_URL", &nats.url())]).await;
    assert!(status.stdout.contains("without data          1 events too large"), "{status:?}");
}

struct Message {
    id: String,
    payload: Vec<u8>,
}

/// Every message of the stream once it holds `expected` of them, in stream order.
async fn stream_messages(nats_url: &str, expected: u64) -> Vec<Message> {
    let js = connect(nats_url).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = loop {
        if let Ok(mut stream) = js.get_stream(events::envelope::STREAM).await
            && stream.info().await.is_ok_and(|info| info.state.messages >= expected)
        {
            break stream;
        }
        assert!(Instant::now() < deadline, "the stream never held {expected} messages: the relay is stuck");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut messages = Vec::new();
    for sequence in 1..=last {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let id = message.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_owned()).unwrap_or_default();
        messages.push(Message { id, payload: message.payload.to_vec() });
    }
    messages
}
