//! Issue 13, item 2: upstreams that speak only the legacy HTTP+SSE transport (`sse_url` in the
//! upstreams file; GAIA `sse` servers are in gateway_gaia.rs). The test upstream
//! (tests/upstream/upstream.py) runs in its `sse` mode: `GET /sse`, `POST /messages/`, nothing
//! at `/mcp`. Clients speak Streamable HTTP (and the legacy transport) to the gateway, which
//! holds the upstream's event stream; across replicas the owner of that stream answers.

use crate::gateway::{app_with, authenticated};
use crate::support::mcp::{Session, Upstream, python_client, python_client_over};
use crate::support::nats::NatsServer;
use crate::support::{ServeProcess, TestDatabase, json_of, run_cli};
use reqwest::Method;
use serde_json::{Value, json};
use services::secrets::MasterKey;
use std::time::Duration;

fn bindings(upstream: &Upstream) -> String {
    format!("[github]\nsse_url = \"{}\"\n", upstream.url)
}

fn whoami(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| panic!("whoami answered {text:?}"))
}

#[tokio::test]
async fn the_official_client_reaches_an_sse_only_upstream_with_each_users_own_credential() {
    let upstream = Upstream::start_sse().await;
    let app = app_with(&bindings(&upstream), Duration::from_secs(30)).await;
    let alice = authenticated(&app, "alice", "alice-token").await;
    let bob = authenticated(&app, "bob", "bob-token").await;

    let report_a = python_client(alice["serverUrl"].as_str().unwrap(), &app.key).await;
    let report_b = python_client(bob["serverUrl"].as_str().unwrap(), &app.key).await;

    assert_eq!(report_a["server"], "gateway-test-upstream", "{report_a}");
    assert_eq!(report_a["tools"], json!(["delete_everything", "fail", "slow", "whoami"]), "{report_a}");
    assert_eq!(report_a["whoami"]["headers"]["authorization"], "Bearer alice-token", "{report_a}");
    assert_eq!(report_b["whoami"]["headers"]["authorization"], "Bearer bob-token", "{report_b}");
    for header in ["x-api-key", "cookie", "x-user-api-key"] {
        assert_eq!(report_a["whoami"]["headers"][header], Value::Null, "the caller's {header} reached the upstream");
    }
}

#[tokio::test]
async fn read_only_is_enforced_over_an_sse_upstream_and_a_deleted_session_is_gone() {
    let upstream = Upstream::start_sse().await;
    let app = app_with(&bindings(&upstream), Duration::from_secs(30)).await;
    let created = authenticated(&app, "alice", "alice-token").await;
    let path = format!("/mcp-server/instance/{}", created["instanceId"].as_str().unwrap());
    json_of(app.call(Method::PATCH, &path, Some(json!({"isReadOnly": true}))).await, 200).await;

    let (mut session, init) = Session::open(created["serverUrl"].as_str().unwrap()).await;
    assert_eq!(init.message["result"]["serverInfo"]["name"], "gateway-test-upstream", "{init:?}");
    assert!(session.session_id.is_some(), "the connection's session is handed out, sealed");
    let listed = session.list_tools().await;
    let refused = session.call_tool("delete_everything", json!({})).await;
    let seen = session.call_tool("whoami", json!({})).await;
    let failed = session.call_tool("fail", json!({})).await;

    assert_eq!(listed.tool_names(), ["fail", "slow", "whoami"], "{listed:?}");
    assert_eq!(refused.error_code(), Some(-32602), "{refused:?}");
    assert_eq!(whoami(seen.text())["deletions"], 0, "the refused call never went upstream");
    assert_eq!(failed.message["result"]["isError"], true, "a tool's failure is passed on: {failed:?}");

    // A client that ends its session ends the connection: the id no longer opens anything.
    let ended = session.delete().await;
    assert_eq!(ended.status, 200, "{ended:?}");
    let late = session.list_tools().await;
    assert_eq!((late.status, late.error_code()), (404, Some(-32001)), "{late:?}");
}

#[tokio::test]
async fn a_request_without_a_session_is_told_to_initialize_and_a_dead_upstream_is_a_json_rpc_error() {
    let upstream = Upstream::start_sse().await;
    let app = app_with(&bindings(&upstream), Duration::from_secs(5)).await;
    let created = authenticated(&app, "alice", "alice-token").await;
    let url = created["serverUrl"].as_str().unwrap();

    let sessionless = Session::new(url).post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
    assert_eq!((sessionless.status, sessionless.error_code()), (400, Some(-32600)), "{sessionless:?}");
    assert!(sessionless.error_message().contains("send initialize first"), "{sessionless:?}");

    // The upstream goes away under an open session: its stream ends, the session with it.
    let (mut session, _) = Session::open(url).await;
    assert_eq!(session.call_tool("slow", json!({"seconds": 0.01})).await.text(), "slept 0.01s");
    drop(upstream);
    let mut gone = session.list_tools().await;
    for _ in 0..100 {
        if gone.status == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        gone = session.list_tools().await;
    }
    assert_eq!((gone.status, gone.error_code()), (404, Some(-32001)), "{gone:?}");
    let (_, reopened) = Session::open(url).await;
    assert_eq!(reopened.error_code(), Some(-32004), "nothing listens now: an upstream error {reopened:?}");
    assert!(reopened.error_message().contains("unreachable"), "{reopened:?}");
}

#[tokio::test]
async fn a_legacy_client_reaches_an_sse_upstream_through_the_gateway() {
    let upstream = Upstream::start_sse().await;
    let app = app_with(&bindings(&upstream), Duration::from_secs(30)).await;
    let body = json!({"serverName": "GitHub", "userId": "alice", "connectionType": "SSE"});
    let created = json_of(app.call(Method::POST, "/mcp-server/instance/create", Some(body)).await, 200).await;
    let set = json!({"instanceId": created["instanceId"], "authData": {"token": "alice-token"}});
    json_of(app.call(Method::POST, "/mcp-server/instance/set-auth", Some(set)).await, 200).await;

    let report = python_client_over(created["serverUrl"].as_str().unwrap(), &app.key, "sse").await;

    assert_eq!(report["tools"], json!(["delete_everything", "fail", "slow", "whoami"]), "{report}");
    assert_eq!(report["whoami"]["headers"]["authorization"], "Bearer alice-token", "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_on_an_sse_upstream_goes_on_at_another_replica_through_the_connections_owner() {
    // Arrange: two replicas on one database and NATS; a session opened on A.
    let (db, upstream, nats) = (TestDatabase::create().await, Upstream::start_sse().await, NatsServer::start().await);
    let env = [("DATABASE_URL", db.url.as_str())];
    let project = run_cli(&["project", "create", "Replicas"], &env).await.stdout.trim().to_owned();
    let key = run_cli(&["key", "create", "--project", &project], &env).await.stdout.trim().to_owned();
    let file = std::env::temp_dir().join(format!("upstreams-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, bindings(&upstream)).unwrap();
    let (master, nats_url) = (MasterKey::generate_base64(), nats.url());
    let start = || {
        ServeProcess::start(&[
            ("DATABASE_URL", &db.url),
            ("PROVISIONER_MASTER_KEY", &master),
            ("PROVISIONER_UPSTREAMS", file.to_str().unwrap()),
            ("NATS_URL", &nats_url),
        ])
    };
    let (a, b) = (start(), start());
    let http = reqwest::Client::new();
    let klavis =
        |path: &str, body: Value| http.post(format!("{}{path}", a.base_url)).bearer_auth(&key).json(&body).send();
    let created: Value = klavis("/mcp-server/instance/create", json!({"serverName": "GitHub", "userId": "alice"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let set = json!({"instanceId": created["instanceId"], "authData": {"token": "alice-token"}});
    assert!(klavis("/mcp-server/instance/set-auth", set).await.unwrap().status().is_success());
    let on_a = created["serverUrl"].as_str().unwrap().to_owned();
    let (mut session, init) = Session::open(&on_a).await;
    assert_eq!(init.status, 200, "{init:?}");

    // Act: the session's next requests go to B.
    session.url = on_a.replace(&a.base_url, &b.base_url);
    let listed = session.list_tools().await;
    let seen = session.call_tool("whoami", json!({})).await;
    let stream_on_b = session.open_stream().await.status().as_u16();

    // Assert: A's connection answered them, with the instance's credential.
    assert_eq!(listed.tool_names(), ["delete_everything", "fail", "slow", "whoami"], "{listed:?}");
    assert_eq!(whoami(seen.text())["headers"]["authorization"], "Bearer alice-token", "{seen:?}");
    assert_eq!(stream_on_b, 405, "the upstream's own stream is served by the connection's owner only");

    // The owner stops: its connection is gone, and B says so (the client starts anew).
    drop(a);
    let orphan = session.list_tools().await;
    assert_eq!((orphan.status, orphan.error_code()), (404, Some(-32001)), "{orphan:?}");
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn a_client_stream_on_the_owner_opens_and_a_fresh_session_works_after_a_delete() {
    let upstream = Upstream::start_sse().await;
    let app = app_with(&bindings(&upstream), Duration::from_secs(30)).await;
    let created = authenticated(&app, "alice", "alice-token").await;
    let (session, _) = Session::open(created["serverUrl"].as_str().unwrap()).await;
    let stream = session.open_stream().await;
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    drop(stream);
    assert_eq!(session.delete().await.status, 200);
    let (mut again, init) = Session::open(created["serverUrl"].as_str().unwrap()).await;
    assert_eq!(init.status, 200, "{init:?}");
    assert_eq!(again.call_tool("slow", json!({"seconds": 0.01})).await.text(), "slept 0.01s");
}
