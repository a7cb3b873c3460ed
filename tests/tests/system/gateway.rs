//! The MCP gateway: Klavis `serverUrl`s serve MCP (Streamable HTTP), forwarding to a real
//! upstream MCP server (tests/upstream/upstream.py) with the instance's own credential, the
//! read-only policy enforced, sessions sealed to their instance, and every failure a JSON-RPC
//! error.

use crate::support::mcp::{Session, Upstream, dead_url, python_client};
use crate::support::{TestApp, json_of, run_cli};
use reqwest::Method;
use serde_json::{Value, json};
use services::gateway::Upstreams;
use std::time::{Duration, Instant};

/// The app with `bindings` as its upstreams file and the gateway's `timeout`.
pub(crate) async fn app_with(bindings: &str, timeout: Duration) -> TestApp {
    let upstreams = Upstreams::parse(bindings).expect("the test's upstreams file is valid");
    TestApp::spawn_with(move |settings| {
        settings.gateway.upstreams = upstreams;
        settings.gateway.timeout = timeout;
    })
    .await
}

/// The app with GitHub (OAuth) and Hacker News (no auth) bound to the upstream.
pub(crate) async fn app_and_upstream() -> (TestApp, Upstream) {
    let upstream = Upstream::start().await;
    let bindings = format!("[github]\nurl = \"{0}\"\n\n[HACKER_NEWS]\nurl = \"{0}\"\n", upstream.url);
    (app_with(&bindings, Duration::from_secs(30)).await, upstream)
}

pub(crate) async fn create(app: &TestApp, server: &str, user: &str) -> Value {
    let body = json!({"serverName": server, "userId": user});
    json_of(app.call(Method::POST, "/mcp-server/instance/create", Some(body)).await, 200).await
}

/// A GitHub instance of `user` authenticated with `token`; its create answer.
pub(crate) async fn authenticated(app: &TestApp, user: &str, token: &str) -> Value {
    let created = create(app, "GitHub", user).await;
    let set = json!({"instanceId": created["instanceId"], "authData": {"token": token}});
    json_of(app.call(Method::POST, "/mcp-server/instance/set-auth", Some(set)).await, 200).await;
    created
}

pub(crate) fn url_of(created: &Value) -> &str {
    created["serverUrl"].as_str().unwrap()
}

/// whoami's report: the headers the upstream received, and how many deletions it ran.
pub(crate) fn whoami(answer: &crate::support::mcp::Answer) -> Value {
    serde_json::from_str(answer.text()).unwrap_or_else(|_| panic!("whoami answered {answer:?}"))
}

#[tokio::test]
async fn each_instance_reaches_the_upstream_with_its_own_credential_and_never_the_callers() {
    let (app, _upstream) = app_and_upstream().await;
    let a = authenticated(&app, "user-a", "token-of-a").await;
    let b = authenticated(&app, "user-b", "token-of-b").await;

    let (mut session, init) = Session::new(url_of(&a)).open_with_caller_key(&app.key).await;
    assert_eq!(init.status, 200, "{init:?}");
    assert_eq!(init.message["result"]["serverInfo"]["name"], "gateway-test-upstream");
    assert!(session.session_id.is_some(), "the upstream's session id is handed out, sealed");
    let listed = session.list_tools().await;
    assert_eq!(listed.tool_names(), ["delete_everything", "fail", "slow", "whoami"]);
    if let Some(id) = listed.headers.get("mcp-session-id") {
        assert_eq!(id.to_str().unwrap(), session.session_id.as_deref().unwrap(), "the session keeps its id");
    }
    let seen = whoami(&session.call_tool("whoami", json!({})).await);
    assert_eq!(seen["headers"]["authorization"], "Bearer token-of-a");
    for header in ["x-api-key", "x-user-api-key", "cookie"] {
        assert_eq!(seen["headers"][header], Value::Null, "{header} of the caller reached the upstream");
    }
    assert_eq!(seen["headers"]["mcp-protocol-version"], "2025-06-18", "the protocol version passes through");
    // A tool's own failure is the upstream's answer, passed on.
    let failed = session.call_tool("fail", json!({})).await;
    assert_eq!(failed.message["result"]["isError"], true, "{failed:?}");

    let (mut other, _) = Session::open(url_of(&b)).await;
    let seen = whoami(&other.call_tool("whoami", json!({})).await);
    assert_eq!(seen["headers"]["authorization"], "Bearer token-of-b");

    // Ending the session goes upstream: the session is gone there.
    assert!(matches!(session.delete().await.status, 200 | 204));
    let after = session.list_tools().await;
    assert_eq!((after.status, after.error_code()), (404, Some(-32001)), "{after:?}");
}

#[tokio::test]
async fn read_only_lists_and_allows_only_read_only_tools_and_a_patch_applies_inside_the_session() {
    let (app, _upstream) = app_and_upstream().await;
    let created = authenticated(&app, "user-a", "token-of-a").await;
    let path = format!("/mcp-server/instance/{}", created["instanceId"].as_str().unwrap());
    let (mut session, _) = Session::open(url_of(&created)).await;
    assert_eq!(session.list_tools().await.tool_names(), ["delete_everything", "fail", "slow", "whoami"]);

    json_of(app.call(Method::PATCH, &path, Some(json!({"isReadOnly": true}))).await, 200).await;
    assert_eq!(session.list_tools().await.tool_names(), ["fail", "slow", "whoami"], "the write tool is hidden");
    let refused = session.call_tool("delete_everything", json!({})).await;
    assert_eq!((refused.status, refused.error_code()), (200, Some(-32602)), "{refused:?}");
    assert!(refused.error_message().contains("delete_everything"));
    assert_eq!(whoami(&session.call_tool("whoami", json!({})).await)["deletions"], 0, "the call never went upstream");

    json_of(app.call(Method::PATCH, &path, Some(json!({"isReadOnly": false}))).await, 200).await;
    assert_eq!(session.list_tools().await.tool_names().len(), 4);
    let allowed = session.call_tool("delete_everything", json!({})).await;
    assert_eq!(allowed.text(), "deleted everything", "{allowed:?}");
    assert_eq!(whoami(&session.call_tool("whoami", json!({})).await)["deletions"], 1);
}

#[tokio::test]
async fn a_deleted_instance_answers_404_inside_its_open_session() {
    let (app, _upstream) = app_and_upstream().await;
    let created = authenticated(&app, "user-a", "token-of-a").await;
    let (mut session, _) = Session::open(url_of(&created)).await;
    assert_eq!(session.list_tools().await.status, 200);
    // The server's stream, which the upstream keeps open for as long as the session lives.
    let stream = session.open_stream().await;
    assert_eq!(stream.status(), 200);

    let path = format!("/mcp-server/instance/{}", created["instanceId"].as_str().unwrap());
    json_of(app.call(Method::DELETE, &path, None).await, 200).await;
    // The open stream ends (the gateway checks every 500 ms); the bound only guards a hang.
    let ended = tokio::time::timeout(Duration::from_secs(20), stream.bytes()).await;
    assert!(ended.is_ok(), "the server stream of a deleted instance stayed open");
    let gone = session.call_tool("whoami", json!({})).await;
    assert_eq!((gone.status, gone.error_code()), (404, Some(-32001)), "{gone:?}");
    let reconnect = Session::new(url_of(&created)).initialize().await;
    assert_eq!(reconnect.status, 404, "{reconnect:?}");
}

#[tokio::test]
async fn a_session_id_tampered_with_or_moved_to_another_instance_answers_404() {
    let (app, _upstream) = app_and_upstream().await;
    let a = authenticated(&app, "user-a", "token-of-a").await;
    let b = authenticated(&app, "user-b", "token-of-b").await;
    let (mut session, _) = Session::open(url_of(&a)).await;
    let sealed = session.session_id.clone().unwrap();

    let mut tampered = sealed.clone().into_bytes();
    let last = tampered.len() - 3;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    session.session_id = Some(String::from_utf8(tampered).unwrap());
    let answer = session.list_tools().await;
    assert_eq!((answer.status, answer.error_code()), (404, Some(-32001)), "{answer:?}");

    let mut moved = Session::new(url_of(&b));
    moved.session_id = Some(sealed.clone());
    let answer = moved.call_tool("whoami", json!({})).await;
    assert_eq!((answer.status, answer.error_code()), (404, Some(-32001)), "{answer:?}");

    session.session_id = Some(sealed);
    assert_eq!(session.list_tools().await.status, 200, "the genuine id still works");
}

#[tokio::test]
async fn unknown_unbound_and_unauthenticated_instances_get_json_rpc_errors_and_nothing_goes_upstream() {
    let (app, _upstream) = app_and_upstream().await;
    for url in [
        format!("{}/mcp/?instance_id={}", app.base_url, uuid::Uuid::new_v4()),
        format!("{}/mcp/?instance_id=not-a-uuid", app.base_url),
        format!("{}/mcp", app.base_url),
    ] {
        let answer = Session::new(&url).initialize().await;
        assert_eq!((answer.status, answer.error_code()), (404, Some(-32001)), "{url}: {answer:?}");
    }

    let gmail = create(&app, "Gmail", "user-a").await;
    let unbound = Session::new(url_of(&gmail)).initialize().await;
    assert_eq!((unbound.status, unbound.error_code()), (200, Some(-32002)), "{unbound:?}");
    assert!(unbound.error_message().contains("[gmail]"), "names the binding: {}", unbound.error_message());
    assert_eq!(unbound.message["error"]["data"]["missingBinding"], "gmail");

    let github = create(&app, "GitHub", "user-b").await;
    let not_yet = Session::new(url_of(&github)).initialize().await;
    assert_eq!((not_yet.status, not_yet.error_code()), (200, Some(-32003)), "{not_yet:?}");
    let oauth_url = github["oauthUrl"].as_str().unwrap();
    assert!(not_yet.error_message().contains(oauth_url), "{}", not_yet.error_message());
    assert_eq!(not_yet.message["error"]["data"]["oauthUrl"], oauth_url);

    // A server that needs no auth is served without a credential.
    let news = create(&app, "Hacker News", "user-c").await;
    let (mut session, init) = Session::open(url_of(&news)).await;
    assert_eq!(init.status, 200, "{init:?}");
    assert_eq!(whoami(&session.call_tool("whoami", json!({})).await)["headers"]["authorization"], Value::Null);
}

/// Answers every connection with an HTML page: an upstream that is not an MCP server.
async fn garbage_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let page = "<html><body>It works!</body></html>";
                let head =
                    format!("HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\r\n", page.len());
                let _ = socket.write_all(format!("{head}{page}").as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn an_upstream_down_slow_or_answering_garbage_gives_a_json_rpc_error_within_the_timeout() {
    let upstream = Upstream::start().await;
    let bindings = format!(
        "[github]\nurl = \"{}\"\n[slack]\nurl = \"{}\"\n[notion]\nurl = \"{}\"\n",
        upstream.url,
        dead_url(),
        garbage_server().await
    );
    let app = app_with(&bindings, Duration::from_secs(2)).await;
    let with_token = |server: &'static str| {
        let app = &app;
        async move {
            let created = create(app, server, "user-a").await;
            let set = json!({"instanceId": created["instanceId"], "authData": {"token": "t"}});
            json_of(app.call(Method::POST, "/mcp-server/instance/set-auth", Some(set)).await, 200).await;
            created
        }
    };

    let down = Session::new(url_of(&with_token("Slack").await)).initialize().await;
    assert_eq!((down.status, down.error_code()), (200, Some(-32004)), "{down:?}");
    assert!(down.error_message().contains("unreachable"), "{}", down.error_message());

    let garbage = Session::new(url_of(&with_token("Notion").await)).initialize().await;
    assert_eq!((garbage.status, garbage.error_code()), (200, Some(-32004)), "{garbage:?}");
    assert!(garbage.error_message().contains("neither JSON nor an event stream"), "{}", garbage.error_message());

    let created = authenticated(&app, "user-b", "token-of-b").await;
    let (mut session, _) = Session::open(url_of(&created)).await;
    let started = Instant::now();
    let slow = session.call_tool("slow", json!({"seconds": 10})).await;
    let waited = started.elapsed();
    assert_eq!(slow.error_code(), Some(-32004), "{slow:?}");
    assert!(slow.error_message().contains("in time"), "{}", slow.error_message());
    assert!(waited < Duration::from_secs(8), "answered after {waited:?}: the 2 s timeout, not the 10 s tool");
    let quick = session.call_tool("slow", json!({"seconds": 0.1})).await;
    assert_eq!(quick.text(), "slept 0.1s", "the session goes on: {quick:?}");
}

#[tokio::test]
async fn the_official_python_mcp_client_lists_and_calls_through_the_gateway() {
    let (app, _upstream) = app_and_upstream().await;
    let a = authenticated(&app, "user-a", "token-of-a").await;
    authenticated(&app, "user-b", "token-of-b").await;

    let report = python_client(url_of(&a), &app.key).await;
    assert_eq!(report["server"], "gateway-test-upstream", "{report}");
    assert_eq!(report["tools"], json!(["delete_everything", "fail", "slow", "whoami"]));
    let headers = &report["whoami"]["headers"];
    assert_eq!(headers["authorization"], "Bearer token-of-a", "{report}");
    assert_eq!(headers["x-api-key"], Value::Null, "the caller's key went upstream: {report}");
    assert_eq!(headers["cookie"], Value::Null);
}

#[tokio::test]
async fn serve_refuses_to_start_with_a_bad_upstreams_entry_and_names_it() {
    let file = std::env::temp_dir().join(format!("upstreams-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&file, "[github]\nurl = \"http://127.0.0.1:1/mcp\"\n\n[not_a_server]\nurl = \"http://h/mcp\"\n")
        .unwrap();
    let database_url = std::env::var("DATABASE_URL").unwrap();
    let run = run_cli(
        &["serve", "--upstreams", file.to_str().unwrap(), "--listen", "127.0.0.1:0"],
        &[
            ("DATABASE_URL", &database_url),
            ("PROVISIONER_MASTER_KEY", &services::secrets::MasterKey::generate_base64()),
        ],
    )
    .await;
    std::fs::remove_file(&file).unwrap();
    assert!(!run.success, "{run:?}");
    assert!(run.stderr.contains("PROVISIONER_UPSTREAMS") && run.stderr.contains("[not_a_server]"), "{}", run.stderr);
}

#[tokio::test]
async fn the_access_token_of_the_oauth_flow_goes_upstream() {
    use crate::support::oauth_provider::OAuthProvider;
    let upstream = Upstream::start().await;
    let app = app_with(&format!("[gmail]\nurl = \"{}\"\n", upstream.url), Duration::from_secs(30)).await;
    let provider = OAuthProvider::start().await;
    let white_label = json!({
        "client_id": provider.client_id, "client_secret": provider.client_secret, "server_name": "Gmail",
        "authorize_url": format!("{}/authorize", provider.base_url), "token_url": format!("{}/token", provider.base_url),
    });
    json_of(app.call(Method::POST, "/white-labeling/create", Some(white_label)).await, 200).await;
    let created = create(&app, "Gmail", "oauth-user").await;
    let instance = created["instanceId"].as_str().unwrap();

    // The browser's round trip: authorize, the provider's consent, the callback.
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut url = format!("{}/oauth/gmail/authorize?instance_id={instance}", app.base_url);
    for _ in 0..2 {
        let response = browser.get(&url).send().await.unwrap();
        assert!(response.status().is_redirection(), "{}", response.text().await.unwrap());
        url = response.headers()["location"].to_str().unwrap().to_owned();
    }
    assert!(browser.get(&url).send().await.unwrap().status().as_u16() < 400, "the callback stores the tokens");
    let auth = json_of(app.call(Method::GET, &format!("/mcp-server/instance/{instance}/auth"), None).await, 200).await;
    let access_token = auth["authData"]["access_token"].as_str().unwrap();

    let (mut session, _) = Session::open(url_of(&created)).await;
    let seen = whoami(&session.call_tool("whoami", json!({})).await);
    assert_eq!(seen["headers"]["authorization"], format!("Bearer {access_token}"));
}

#[tokio::test]
async fn the_server_stream_and_a_custom_credential_header_and_an_oversized_body() {
    let upstream = Upstream::start().await;
    let bindings = format!(
        "[github]\nurl = \"{}\"\ncredential_header = \"X-Upstream-Key\"\ncredential_format = \"key={{token}}\"\n",
        upstream.url
    );
    let app = app_with(&bindings, Duration::from_secs(30)).await;
    let created = authenticated(&app, "user-a", "token-of-a").await;
    let (mut session, _) = Session::open(url_of(&created)).await;
    let seen = whoami(&session.call_tool("whoami", json!({})).await);
    assert_eq!(seen["headers"]["x-upstream-key"], "key=token-of-a");
    assert_eq!(seen["headers"]["authorization"], Value::Null);

    // GET opens the server's stream in the session: relayed as an event stream, left open.
    let stream = session.open_stream().await;
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    assert_eq!(stream.headers()["cache-control"], "no-cache, no-transform");
    drop(stream);

    let huge = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"pad": "x".repeat(5 << 20)}});
    let answer = session.post(&huge).await;
    assert_eq!((answer.status, answer.error_code()), (413, Some(-32600)), "{answer:?}");
}
