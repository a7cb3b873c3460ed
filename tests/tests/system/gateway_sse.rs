//! Issue 13, item 1 (second bullet): the legacy HTTP+SSE transport at Klavis's
//! `connectionType: "SSE"` URL, `{PUBLIC_URL}/sse?instance_id=…`, forwarding over Streamable
//! HTTP to a real upstream (tests/upstream/upstream.py) with the same credential, policy and
//! JSON-RPC errors as the Streamable HTTP path; and its sessions across two `serve` replicas,
//! whose POSTs reach the replica holding the stream over NATS.

use crate::support::legacy::LegacySession;
use crate::support::mcp::{Upstream, python_client_over};
use crate::support::nats::NatsServer;
use crate::support::{ServeProcess, TestApp, TestDatabase, json_of, run_cli};
use reqwest::Method;
use serde_json::{Value, json};
use services::gateway::Upstreams;
use services::secrets::MasterKey;
use std::time::Duration;

/// Long enough for a stream to end on a loaded machine; a delete ends it within a second.
const STREAM_END: Duration = Duration::from_secs(20);

async fn app_and_upstream() -> (TestApp, Upstream) {
    let upstream = Upstream::start().await;
    let upstreams = Upstreams::parse(&format!("[github]\nurl = \"{}\"\n", upstream.url)).unwrap();
    let app = TestApp::spawn_with(move |settings| settings.gateway.upstreams = upstreams).await;
    (app, upstream)
}

/// An SSE GitHub instance of `user` authenticated with `token`; its create answer.
async fn sse_instance(app: &TestApp, user: &str, token: &str) -> Value {
    let body = json!({"serverName": "GitHub", "userId": user, "connectionType": "SSE"});
    let created = json_of(app.call(Method::POST, "/mcp-server/instance/create", Some(body)).await, 200).await;
    let set = json!({"instanceId": created["instanceId"], "authData": {"token": token}});
    json_of(app.call(Method::POST, "/mcp-server/instance/set-auth", Some(set)).await, 200).await;
    created
}

fn url_of(created: &Value) -> &str {
    created["serverUrl"].as_str().unwrap()
}

fn tool_names(answer: &Value) -> Vec<String> {
    let tools = answer.pointer("/result/tools").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut names: Vec<String> = tools.iter().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect();
    names.sort();
    names
}

/// whoami's report in a `tools/call` answer.
fn whoami(answer: &Value) -> Value {
    let text = answer.pointer("/result/content/0/text").and_then(Value::as_str);
    text.and_then(|t| serde_json::from_str(t).ok()).unwrap_or_else(|| panic!("whoami answered {answer}"))
}

#[tokio::test]
async fn the_official_sse_client_lists_and_calls_tools_at_the_sse_url_with_the_instances_credential() {
    let (app, _upstream) = app_and_upstream().await;
    let created = sse_instance(&app, "alice", "alice-token").await;
    let url = url_of(&created);
    assert_eq!(url, format!("{}/sse?instance_id={}", app.base_url, created["instanceId"].as_str().unwrap()));

    let report = python_client_over(url, &app.key, "sse").await;

    assert_eq!(report["server"], "gateway-test-upstream", "{report}");
    assert_eq!(report["tools"], json!(["delete_everything", "fail", "slow", "whoami"]), "{report}");
    assert_eq!(report["whoami"]["headers"]["authorization"], "Bearer alice-token", "{report}");
    for header in ["x-api-key", "cookie"] {
        assert_eq!(report["whoami"]["headers"][header], Value::Null, "{header} of the caller reached the upstream");
    }
}

#[tokio::test]
async fn a_read_only_instance_over_sse_lists_only_read_only_tools_and_refuses_the_others() {
    let (app, _upstream) = app_and_upstream().await;
    let created = sse_instance(&app, "alice", "alice-token").await;
    let path = format!("/mcp-server/instance/{}", created["instanceId"].as_str().unwrap());
    json_of(app.call(Method::PATCH, &path, Some(json!({"isReadOnly": true}))).await, 200).await;
    let mut session = LegacySession::connect(url_of(&created)).await.expect("the stream opens");
    assert!(session.endpoint.starts_with(&format!("{}/messages/?instance_id=", app.base_url)), "{}", session.endpoint);

    let init = session.initialize().await;
    assert_eq!(init["result"]["serverInfo"]["name"], "gateway-test-upstream", "{init}");
    let listed = session.request("tools/list", json!({})).await;
    let refused = session.request("tools/call", json!({"name": "delete_everything", "arguments": {}})).await;
    let seen = session.request("tools/call", json!({"name": "whoami", "arguments": {}})).await;

    assert_eq!(tool_names(&listed), ["fail", "slow", "whoami"], "{listed}");
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("delete_everything"), "{refused}");
    assert_eq!(whoami(&seen)["deletions"], 0, "the refused call never went upstream");
    // A PATCH applies to the next message of the open session.
    json_of(app.call(Method::PATCH, &path, Some(json!({"isReadOnly": false}))).await, 200).await;
    let allowed = session.request("tools/call", json!({"name": "delete_everything", "arguments": {}})).await;
    assert_eq!(allowed["result"]["content"][0]["text"], "deleted everything", "{allowed}");
}

#[tokio::test]
async fn an_unknown_or_deleted_instance_answers_404_in_json_rpc_and_a_delete_ends_its_stream() {
    let (app, _upstream) = app_and_upstream().await;
    for query in [format!("instance_id={}", uuid::Uuid::new_v4()), "instance_id=nope".into(), String::new()] {
        let refused = LegacySession::connect(&format!("{}/sse?{query}", app.base_url)).await.err().unwrap();
        assert_eq!(
            (refused.status, refused.body["error"]["code"].clone()),
            (404, json!(-32001)),
            "{query}: {refused:?}"
        );
    }
    let created = sse_instance(&app, "alice", "alice-token").await;
    let mut session = LegacySession::connect(url_of(&created)).await.expect("the stream opens");
    session.initialize().await;

    let path = format!("/mcp-server/instance/{}", created["instanceId"].as_str().unwrap());
    json_of(app.call(Method::DELETE, &path, None).await, 200).await;

    assert!(session.ends_within(STREAM_END).await, "the stream of a deleted instance stays open");
    let endpoint = session.endpoint.clone();
    let late = session.post_to(&endpoint, &json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"})).await;
    assert_eq!(
        (late.status, late.body["error"]["code"].clone(), late.body["id"].clone()),
        (404, json!(-32001), json!(9)),
        "{late:?}"
    );
    let reconnect = LegacySession::connect(url_of(&created)).await.err().expect("no new stream for a deleted instance");
    assert_eq!(reconnect.status, 404, "{reconnect:?}");
}

#[tokio::test]
async fn a_session_id_tampered_with_or_moved_to_another_instance_answers_404() {
    let (app, _upstream) = app_and_upstream().await;
    let a = sse_instance(&app, "alice", "alice-token").await;
    let b = sse_instance(&app, "bob", "bob-token").await;
    let session = LegacySession::connect(url_of(&a)).await.expect("the stream opens");
    let (base, sealed) = session.endpoint.split_once("&session_id=").unwrap();
    let mut tampered = sealed.to_owned().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let b_id = b["instanceId"].as_str().unwrap();
    let cases = [
        (format!("{base}&session_id={tampered}"), "tampered with"),
        (format!("{}/messages/?instance_id={b_id}&session_id={sealed}", app.base_url), "moved to another instance"),
        (base.to_owned(), "missing"),
    ];
    let message = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    for (endpoint, case) in cases {
        let refused = session.post_to(&endpoint, &message).await;
        assert_eq!(
            (refused.status, refused.body["error"]["code"].clone()),
            (404, json!(-32001)),
            "{case}: {refused:?}"
        );
    }
    let garbage = session.http.post(&session.endpoint).body("{nope").send().await.unwrap();
    assert_eq!(garbage.status(), 400);
    assert_eq!(garbage.json::<Value>().await.unwrap()["error"]["code"], -32700);
}

/// Two `serve` replicas over one database, master key, upstreams file and NATS server.
struct Replicas {
    /// Taken away to see its sessions go.
    a: Option<ServeProcess>,
    b: ServeProcess,
    key: String,
    upstreams_file: std::path::PathBuf,
}

impl Drop for Replicas {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.upstreams_file);
    }
}

async fn two_replicas(db: &TestDatabase, upstream: &Upstream, nats: &NatsServer) -> Replicas {
    let env = [("DATABASE_URL", db.url.as_str())];
    let project = run_cli(&["project", "create", "Legacy"], &env).await.stdout.trim().to_owned();
    let key = run_cli(&["key", "create", "--project", &project], &env).await.stdout.trim().to_owned();
    let path = std::env::temp_dir().join(format!("upstreams-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, format!("[github]\nurl = \"{}\"\n", upstream.url)).unwrap();
    let master = MasterKey::generate_base64();
    let nats_url = nats.url();
    let start = || {
        ServeProcess::start(&[
            ("DATABASE_URL", &db.url),
            ("PROVISIONER_MASTER_KEY", &master),
            ("PROVISIONER_UPSTREAMS", path.to_str().unwrap()),
            ("NATS_URL", &nats_url),
        ])
    };
    let (a, b) = (start(), start());
    Replicas { a: Some(a), b, key, upstreams_file: path }
}

async fn klavis(replica: &ServeProcess, key: &str, path: &str, body: Value) -> Value {
    let http = reqwest::Client::new();
    let response = http.post(format!("{}{path}", replica.base_url)).bearer_auth(key).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_on_another_replica_is_answered_on_the_owners_stream_and_a_gone_owner_answers_404() {
    // Arrange: two replicas on one NATS; an SSE instance; its stream open on replica A.
    let (db, upstream, nats) = (TestDatabase::create().await, Upstream::start().await, NatsServer::start().await);
    let mut replicas = two_replicas(&db, &upstream, &nats).await;
    let a = replicas.a.as_ref().unwrap();
    let create = json!({"serverName": "GitHub", "userId": "alice", "connectionType": "SSE"});
    let created = klavis(a, &replicas.key, "/mcp-server/instance/create", create).await;
    let set = json!({"instanceId": created["instanceId"], "authData": {"token": "alice-token"}});
    klavis(a, &replicas.key, "/mcp-server/instance/set-auth", set).await;
    let mut session = LegacySession::connect(url_of(&created)).await.expect("the stream opens on A");
    assert!(session.endpoint.starts_with(&a.base_url), "{}", session.endpoint);
    let on_b = session.endpoint.replace(&a.base_url, &replicas.b.base_url);

    // Act: every message goes to replica B.
    let init = session
        .request_via(
            &on_b,
            "initialize",
            json!({"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        )
        .await;
    let note = session.post_to(&on_b, &json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    let listed = session.request_via(&on_b, "tools/list", json!({})).await;
    let seen = session.request_via(&on_b, "tools/call", json!({"name": "whoami", "arguments": {}})).await;

    // Assert: A's stream answers them, with the instance's credential.
    assert_eq!(init["result"]["serverInfo"]["name"], "gateway-test-upstream", "{init}");
    assert_eq!(note.status, 202, "{note:?}");
    assert_eq!(tool_names(&listed), ["delete_everything", "fail", "slow", "whoami"], "{listed}");
    assert_eq!(whoami(&seen)["headers"]["authorization"], "Bearer alice-token", "{seen}");

    // The owner goes away: its session is gone, and B says so (the client reconnects).
    drop(replicas.a.take());
    let orphan = session.post_to(&on_b, &json!({"jsonrpc": "2.0", "id": 99, "method": "tools/list"})).await;
    assert_eq!((orphan.status, orphan.body["error"]["code"].clone()), (404, json!(-32001)), "{orphan:?}");
}
