//! The MCP gateway at GAIA URLs: a server registered through the GAIA API serves MCP at its
//! `gatewayUrl`, forwarding to itself (a real upstream, tests/upstream/upstream.py) with its
//! own custom headers and proxy token, within its own timeouts, with the project's key
//! required, and never to an address outside the outbound policy unless the operator allows it.

use crate::support::mcp::{Answer, Session, Upstream, python_client};
use crate::support::{TestApp, json_of};
use reqwest::Method;
use serde_json::{Value, json};

/// The app with registered upstreams on loopback allowed (the test upstream's address).
async fn app_allowing_private() -> TestApp {
    TestApp::spawn_with(|settings| settings.gateway.allow_private = true).await
}

/// Registers `fields` (over a minimal http server) through the GAIA API; the server object.
async fn register(app: &TestApp, name: &str, fields: Value) -> Value {
    let mut body = app.http_server(name);
    body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    let created = json_of(app.call(Method::POST, "/api/mcp/servers", Some(body)).await, 201).await;
    created["server"].clone()
}

fn gateway_url(server: &Value) -> String {
    server["gatewayUrl"].as_str().unwrap_or_else(|| panic!("no gatewayUrl: {server}")).to_owned()
}

/// A session at `url` with the project's key as GAIA takes it (a bearer), initialized.
async fn open(url: &str, key: &str) -> (Session, Answer) {
    let mut session = Session::new(url);
    session.extra = vec![("authorization".into(), format!("Bearer {key}"))];
    let answer = session.initialize().await;
    (session, answer)
}

fn whoami(answer: &Answer) -> Value {
    serde_json::from_str(answer.text()).unwrap_or_else(|_| panic!("whoami answered {answer:?}"))
}

fn refused(answer: &Answer, status: u16, code: i64) {
    assert_eq!((answer.status, answer.error_code()), (status, Some(code)), "{answer:?}");
    assert_eq!(answer.message["jsonrpc"], "2.0", "a JSON-RPC error, not a page: {answer:?}");
}

#[tokio::test]
async fn a_registered_server_is_its_own_upstream_with_its_custom_headers_and_never_the_callers_key() {
    let upstream = Upstream::start().await;
    let app = app_allowing_private().await;
    let headers = json!([
        {"name": "X-Upstream-Key", "value": "secret-of-the-server"},
        {"key": "X-Disabled-Header", "value": "not-sent", "enabled": false},
    ]);
    let server = register(&app, "Tools", json!({"url": upstream.url, "customHeaders": headers})).await;
    let url = gateway_url(&server);
    assert_eq!(url, format!("{}/api/mcp/servers/{}/mcp", app.base_url, server["id"].as_str().unwrap()));
    // The listed and fetched server objects carry it too.
    let path = format!("/api/mcp/servers/{}", server["id"].as_str().unwrap());
    let fetched = json_of(app.call(Method::GET, &path, None).await, 200).await;
    assert_eq!(fetched["server"]["gatewayUrl"], url.as_str());

    // The official client, sending the project's key as a bearer (and as x-api-key, a cookie).
    let report = python_client(&url, &app.key).await;
    assert_eq!(report["server"], "gateway-test-upstream", "{report}");
    assert_eq!(report["tools"], json!(["delete_everything", "fail", "slow", "whoami"]));
    let seen = &report["whoami"]["headers"];
    assert_eq!(seen["x-upstream-key"], "secret-of-the-server", "the custom header reached the upstream: {report}");
    assert_eq!(seen["x-disabled-header"], Value::Null, "a disabled header is not sent: {report}");
    for header in ["authorization", "x-api-key", "cookie"] {
        assert_eq!(seen[header], Value::Null, "the caller's {header} reached the upstream: {report}");
    }

    // GAIA's own header works as the key too, and stays here.
    let mut session = Session::new(&url);
    session.extra = vec![("gaia-api-key".into(), app.key.clone())];
    let init = session.initialize().await;
    assert_eq!(init.status, 200, "{init:?}");
    assert!(session.session_id.is_some(), "the upstream's session is handed out, sealed");
    let seen = whoami(&session.call_tool("whoami", json!({})).await);
    assert_eq!(seen["headers"]["gaia-api-key"], Value::Null);
    assert_eq!(seen["headers"]["x-upstream-key"], "secret-of-the-server");
    let failed = session.call_tool("fail", json!({})).await;
    assert_eq!(failed.message["result"]["isError"], true, "a tool's failure is passed on: {failed:?}");

    // A PATCH of the headers applies to the next request of the open session.
    let patch = json!({"customHeaders": [{"name": "X-Upstream-Key", "value": "rotated"}]});
    json_of(app.call(Method::PATCH, &path, Some(patch)).await, 200).await;
    let seen = whoami(&session.call_tool("whoami", json!({})).await);
    assert_eq!(seen["headers"]["x-upstream-key"], "rotated");
}

#[tokio::test]
async fn a_proxy_url_receives_the_requests_with_the_proxy_token_in_its_header() {
    let upstream = Upstream::start().await;
    let app = app_allowing_private().await;
    let fields = json!({
        "url": "https://mcp.example.com/mcp",
        "proxyUrl": upstream.url,
        "proxyAuthToken": "secret-of-the-proxy",
        "proxyAuthHeader": "X-Proxy-Token",
    });
    let server = register(&app, "Behind a proxy", fields).await;
    assert_eq!(server["proxyAuthToken"], "********", "{server}");
    let (mut session, init) = open(&gateway_url(&server), &app.key).await;
    assert_eq!(init.status, 200, "{init:?}");
    let seen = whoami(&session.call_tool("whoami", json!({})).await);
    assert_eq!(seen["headers"]["x-proxy-token"], "secret-of-the-proxy");
    assert_eq!(seen["headers"]["authorization"], Value::Null, "the caller's key stays here");
}

#[tokio::test]
async fn the_projects_key_is_required_and_a_foreign_unknown_or_deleted_server_is_not_there() {
    let upstream = Upstream::start().await;
    let app = app_allowing_private().await;
    let server = register(&app, "Tools", json!({"url": upstream.url})).await;
    let url = gateway_url(&server);

    refused(&Session::new(&url).initialize().await, 401, -32005);
    refused(&open(&url, "not-a-key").await.1, 401, -32005);
    let (_, foreign_key) = app.new_project("other project").await;
    refused(&open(&url, &foreign_key).await.1, 404, -32001);
    for unknown in [
        format!("{}/api/mcp/servers/{}/mcp", app.base_url, uuid::Uuid::new_v4()),
        format!("{}/api/mcp/servers/not-a-uuid/mcp", app.base_url),
    ] {
        refused(&open(&unknown, &app.key).await.1, 404, -32001);
    }

    // Deleted: gone at once, inside an open session too.
    let (mut session, init) = open(&url, &app.key).await;
    assert_eq!(init.status, 200, "{init:?}");
    let path = format!("/api/mcp/servers/{}", server["id"].as_str().unwrap());
    json_of(app.call(Method::DELETE, &path, None).await, 200).await;
    refused(&session.call_tool("whoami", json!({})).await, 404, -32001);
    refused(&open(&url, &app.key).await.1, 404, -32001);
}

#[tokio::test]
async fn an_sse_server_is_reached_over_the_legacy_transport_with_its_custom_headers() {
    let upstream = Upstream::start_sse().await;
    let app = app_allowing_private().await;
    let headers = json!([{"name": "X-Upstream-Key", "value": "secret-of-the-server"}]);
    let fields = json!({"transportType": "sse", "url": upstream.url, "customHeaders": headers});
    let server = register(&app, "Legacy", fields).await;
    let (mut session, init) = open(&gateway_url(&server), &app.key).await;
    assert_eq!(init.message["result"]["serverInfo"]["name"], "gateway-test-upstream", "{init:?}");
    let seen = whoami(&session.call_tool("whoami", json!({})).await);
    assert_eq!(seen["headers"]["x-upstream-key"], "secret-of-the-server", "{seen}");
    assert_eq!(seen["headers"]["authorization"], Value::Null, "the caller's key stays here: {seen}");
}

#[tokio::test]
async fn a_stdio_server_is_not_run() {
    let app = app_allowing_private().await;
    let stdio =
        register(&app, "Local", json!({"transportType": "stdio", "url": null, "command": "mcp-server-time"})).await;
    assert_eq!(stdio["gatewayUrl"], Value::Null, "no gateway URL for a stdio server: {stdio}");
    let url = format!("{}/api/mcp/servers/{}/mcp", app.base_url, stdio["id"].as_str().unwrap());
    let answer = open(&url, &app.key).await.1;
    refused(&answer, 200, -32002);
    assert!(answer.error_message().contains("does not run stdio servers"), "{}", answer.error_message());
}

#[tokio::test]
async fn the_servers_request_timeout_bounds_a_slow_tool() {
    let upstream = Upstream::start().await;
    let app = app_allowing_private().await;
    let fields = json!({"url": upstream.url, "requestTimeout": 1000, "maxTotalTimeout": 60000});
    let server = register(&app, "Slow", fields).await;
    let (mut session, init) = open(&gateway_url(&server), &app.key).await;
    assert_eq!(init.status, 200, "{init:?}");
    let slow = session.call_tool("slow", json!({"seconds": 20})).await;
    assert_eq!(slow.error_code(), Some(-32004), "{slow:?}");
    assert!(slow.error_message().contains("requestTimeout (1000 ms)"), "{}", slow.error_message());
    let quick = session.call_tool("slow", json!({"seconds": 0.1})).await;
    assert_eq!(quick.text(), "slept 0.1s", "the session goes on: {quick:?}");
}

#[tokio::test]
async fn without_the_allow_private_setting_registered_urls_on_non_public_addresses_are_refused() {
    let upstream = Upstream::start().await;
    let app = TestApp::spawn().await;
    let port = url::Url::parse(&upstream.url).unwrap().port().unwrap();
    let cases = [
        (format!("http://127.0.0.1:{port}/mcp"), "loopback"),
        // A name is judged on the address it resolves to, the one that would be connected to.
        (format!("http://localhost:{port}/mcp"), "loopback"),
        ("http://169.254.169.254/mcp".to_owned(), "link-local"),
        ("http://10.0.0.1/mcp".to_owned(), "private"),
        ("http://[::ffff:127.0.0.1]/mcp".to_owned(), "loopback"),
    ];
    for (i, (url, class)) in cases.iter().enumerate() {
        let server = register(&app, &format!("Internal {i}"), json!({"url": url})).await;
        let answer = open(&gateway_url(&server), &app.key).await.1;
        refused(&answer, 200, -32002);
        let message = answer.error_message();
        assert!(message.contains(&format!("{class} address")), "{url}: {message}");
        assert!(message.contains("PROVISIONER_GATEWAY_ALLOW_PRIVATE"), "{url}: {message}");
    }
    // The refused server is the only one: the same upstream bound by the operator is trusted.
    let bindings = format!("[github]\nurl = \"{}\"\n", upstream.url);
    let upstreams = services::gateway::Upstreams::parse(&bindings).unwrap();
    let trusted = TestApp::spawn_with(move |settings| settings.gateway.upstreams = upstreams).await;
    let created = json!({"serverName": "GitHub", "userId": "u"});
    let created = json_of(trusted.call(Method::POST, "/mcp-server/instance/create", Some(created)).await, 200).await;
    let set = json!({"instanceId": created["instanceId"], "authData": {"token": "t"}});
    json_of(trusted.call(Method::POST, "/mcp-server/instance/set-auth", Some(set)).await, 200).await;
    let (_, init) = Session::open(created["serverUrl"].as_str().unwrap()).await;
    assert_eq!(init.message["result"]["serverInfo"]["name"], "gateway-test-upstream", "{init:?}");
}
