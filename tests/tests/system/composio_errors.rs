//! DESIGN invariants 7 and 9 on the Composio surface: another project's ids answer 404 in
//! Composio's envelope (never 403, never data) and change nothing; bad input gets a 4xx in that
//! envelope naming the field, never echoes a secret sent in the wrong place, and changes nothing.

use crate::support::composio::{api_key_auth_config, api_key_connection, connect, create_instance, mcp_server};
use crate::support::{TestApp, json_of};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

/// A secret a client might paste into the wrong field.
const SECRET: &str = "sk-live-SECRET";

/// A request with exactly these headers: no API key unless one of them is.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.http.request(method, format!("{}{path}", app.base_url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("the request is answered")
}

/// A request with the app's key and a raw body of this content type (none when `None`).
async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = app.http.request(method, format!("{}{path}", app.base_url)).header("x-api-key", &app.key);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.body(body).send().await.expect("the request is answered")
}

/// Asserts Composio's error envelope with this status and slug (`what` names the case in
/// failures); returns its `error`.
async fn envelope(what: &str, response: reqwest::Response, status: u16, slug: &str) -> Value {
    let header_id = response.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "{what}: unexpected status; body: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
    let error = &body["error"];
    assert_eq!(error["status"], status, "{what}: {body}");
    assert_eq!(error["slug"], slug, "{what}: {body}");
    assert!(error["code"].is_u64(), "{what}: {body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
    assert!(error["errors"].is_array(), "{what}: {body}");
    assert!(error.get("suggested_fix").is_some(), "{what}: {body}");
    assert!(header_id.is_some(), "{what}: no x-request-id header");
    assert_eq!(error["request_id"].as_str(), header_id.as_deref(), "{what}: request_id is the header's: {body}");
    error.clone()
}

/// Asserts a 400 `Request_ValidationError` whose `errors` and message name `field`.
async fn invalid(what: &str, response: reqwest::Response, field: &str) -> Value {
    let error = envelope(what, response, 400, "Request_ValidationError").await;
    assert_eq!(error["code"], 10400, "{what}: {error}");
    let prefix = format!("{field}: ");
    let errors = error["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e.as_str().is_some_and(|e| e.starts_with(&prefix))),
        "{what}: `errors` should name `{field}`: {error}"
    );
    assert!(error["message"].as_str().unwrap().contains(&prefix), "{what}: the message should name `{field}`: {error}");
    error
}

/// One bad request, with the app's key, and the field its error must name.
struct Case {
    what: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    field: &'static str,
}

fn case(what: &'static str, method: Method, path: impl Into<String>, body: Option<Value>, field: &'static str) -> Case {
    Case { what, method, path: path.into(), body, field }
}

/// A list read with `key`: its JSON.
async fn list_as(app: &TestApp, key: &str, path: String) -> Value {
    json_of(app.composio_as(key, Method::GET, &path, None).await, 200).await
}

fn ids(list: &Value) -> Vec<String> {
    list["items"].as_array().unwrap().iter().map(|item| item["id"].as_str().unwrap().to_owned()).collect()
}

// --- Tenancy -------------------------------------------------------------------------------

#[tokio::test]
async fn another_projects_key_gets_404_on_every_composio_route_and_changes_nothing() {
    // Arrange: project A has an auth config, an account, a server and an instance; project B has
    // a key, an auth config and a server of its own.
    let app = TestApp::spawn().await;
    let a_config = api_key_auth_config(&app, "gmail").await;
    let a_account = connect(&app, &a_config, "alice").await;
    let a_server = mcp_server(&app, "Alpha tools", &[&a_config]).await;
    json_of(create_instance(&app, &a_server, "alice").await, 201).await;
    let (_, b_key) = app.new_project("B").await;
    let b_config_body = json!({"toolkit": {"slug": "github"}, "auth_config": {"type": "use_custom_auth", "authScheme": "API_KEY", "name": "B keys"}});
    let b_config = json_of(
        app.composio_as(&b_key, Method::POST, "/api/v3/auth_configs", Some(b_config_body)).await,
        201,
    )
    .await["auth_config"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_server_body = json!({"name": "Beta tools", "auth_config_ids": [b_config]});
    let b_server = json_of(
        app.composio_as(&b_key, Method::POST, "/api/v3/mcp/servers", Some(b_server_body)).await,
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let events_before = app.event_count().await;
    let keys_before = app.secret_key_count().await;

    // Act + Assert: every route that takes one of A's ids answers 404 in Composio's envelope.
    let config = format!("/api/v3/auth_configs/{a_config}");
    let account = format!("/api/v3/connected_accounts/{a_account}");
    let server = format!("/api/v3/mcp/{a_server}");
    let instances = format!("/api/v3/mcp/servers/{a_server}/instances");
    let attempts: Vec<(Method, String, Option<Value>, &str)> = vec![
        (Method::GET, config.clone(), None, "AuthConfig_ResourceNotFound"),
        (
            Method::PATCH,
            config.clone(),
            Some(json!({"type": "custom", "name": "taken over"})),
            "AuthConfig_ResourceNotFound",
        ),
        (Method::DELETE, config.clone(), None, "AuthConfig_ResourceNotFound"),
        (Method::PATCH, format!("{config}/DISABLED"), None, "AuthConfig_ResourceNotFound"),
        (Method::PATCH, format!("{config}/ENABLED"), None, "AuthConfig_ResourceNotFound"),
        (Method::GET, account.clone(), None, "ConnectedAccount_ResourceNotFound"),
        (Method::DELETE, account.clone(), None, "ConnectedAccount_ResourceNotFound"),
        (
            Method::PATCH,
            format!("{account}/status"),
            Some(json!({"enabled": false})),
            "ConnectedAccount_ResourceNotFound",
        ),
        (Method::POST, format!("{account}/revoke"), None, "ConnectedAccount_ResourceNotFound"),
        (
            Method::POST,
            "/api/v3/connected_accounts".to_owned(),
            Some(api_key_connection(&a_config, "mallory", "mallory-key")),
            "AuthConfig_ResourceNotFound",
        ),
        (
            Method::POST,
            "/api/v3/connected_accounts/link".to_owned(),
            Some(json!({"auth_config_id": a_config, "user_id": "mallory"})),
            "AuthConfig_ResourceNotFound",
        ),
        (Method::GET, server.clone(), None, "McpServer_ResourceNotFound"),
        (Method::PATCH, server.clone(), Some(json!({"name": "Taken over"})), "McpServer_ResourceNotFound"),
        (Method::PATCH, server.clone(), Some(json!({"auth_config_ids": [b_config]})), "McpServer_ResourceNotFound"),
        (Method::DELETE, server.clone(), None, "McpServer_ResourceNotFound"),
        (
            Method::POST,
            "/api/v3/mcp/servers".to_owned(),
            Some(json!({"name": "Intruder", "auth_config_ids": [a_config]})),
            "AuthConfig_ResourceNotFound",
        ),
        (
            Method::POST,
            "/api/v3/mcp/servers/custom".to_owned(),
            Some(json!({"name": "Intruder two", "auth_config_ids": [a_config]})),
            "AuthConfig_ResourceNotFound",
        ),
        (
            Method::PATCH,
            format!("/api/v3/mcp/{b_server}"),
            Some(json!({"auth_config_ids": [a_config]})),
            "AuthConfig_ResourceNotFound",
        ),
        (
            Method::POST,
            "/api/v3/mcp/servers/generate".to_owned(),
            Some(json!({"mcp_server_id": a_server, "user_ids": ["alice"]})),
            "McpServer_ResourceNotFound",
        ),
        (
            Method::POST,
            "/api/v3/mcp/servers/generate".to_owned(),
            Some(json!({"mcp_server_id": b_server, "connected_account_ids": [a_account]})),
            "ConnectedAccount_ResourceNotFound",
        ),
        (Method::POST, instances.clone(), Some(json!({"user_id": "mallory"})), "McpServer_ResourceNotFound"),
        (Method::POST, instances.clone(), Some(json!({"user_id": "alice"})), "McpServer_ResourceNotFound"),
        (Method::GET, instances.clone(), None, "McpServer_ResourceNotFound"),
        (Method::DELETE, format!("{instances}/alice"), None, "McpServer_ResourceNotFound"),
    ];
    for (method, path, body, slug) in attempts {
        let what = format!("{method} {path}");
        let response = app.composio_as(&b_key, method, &path, body).await;
        let error = envelope(&what, response, 404, slug).await;
        let text = error.to_string();
        for secret_of_a in ["Alpha tools", "gmail keys", "user-api-key-value"] {
            assert!(!text.contains(secret_of_a), "{what} leaked A's data: {text}");
        }
    }
    // The same through `x-user-api-key` and the v3.1 paths.
    let response = send(&app, Method::GET, &config, &[("x-user-api-key", &b_key)], None).await;
    envelope("x-user-api-key", response, 404, "AuthConfig_ResourceNotFound").await;
    let v3_1 = format!("/api/v3.1/connected_accounts/{a_account}");
    envelope("v3.1", app.composio_as(&b_key, Method::GET, &v3_1, None).await, 404, "ConnectedAccount_ResourceNotFound")
        .await;

    // B's lists show none of A's items, even when filtered by A's ids.
    let b_list = |path: String| list_as(&app, &b_key, path);
    let configs = b_list("/api/v3/auth_configs?show_disabled=true".into()).await;
    assert_eq!(ids(&configs), std::slice::from_ref(&b_config), "{configs}");
    assert_eq!(configs["total_items"], 1, "{configs}");
    assert_eq!(b_list(format!("/api/v3/auth_configs?search={a_config}")).await["total_items"], 0);
    assert_eq!(b_list("/api/v3/auth_configs?toolkit_slug=gmail".into()).await["total_items"], 0);
    let accounts = b_list("/api/v3/connected_accounts".into()).await;
    assert_eq!((accounts["total_items"].as_i64(), ids(&accounts).len()), (Some(0), 0), "{accounts}");
    for filter in [
        format!("connected_account_ids={a_account}"),
        format!("auth_config_ids={a_config}"),
        "user_ids=alice".to_owned(),
        "toolkit_slugs=gmail".to_owned(),
    ] {
        let filtered = b_list(format!("/api/v3/connected_accounts?{filter}")).await;
        assert_eq!(filtered["total_items"], 0, "{filter}: {filtered}");
    }
    let servers = b_list("/api/v3/mcp/servers".into()).await;
    assert_eq!(ids(&servers), std::slice::from_ref(&b_server), "{servers}");
    let by_config = b_list(format!("/api/v3/mcp/servers?auth_config_ids={a_config}")).await;
    assert_eq!(ids(&by_config), Vec::<String>::new(), "{by_config}");
    let by_name = b_list("/api/v3/mcp/servers?name=Alpha".into()).await;
    assert_eq!(ids(&by_name), Vec::<String>::new(), "{by_name}");

    // Nothing changed: no event, no data key, and A still sees everything as it was.
    assert_eq!(app.event_count().await, events_before, "a refused request left an event");
    assert_eq!(app.secret_key_count().await, keys_before, "a refused request left a data key");
    let a_view = json_of(app.composio(Method::GET, &config, None).await, 200).await;
    assert_eq!((a_view["name"].as_str(), a_view["status"].as_str()), (Some("gmail keys"), Some("ENABLED")));
    let a_view = json_of(app.composio(Method::GET, &account, None).await, 200).await;
    assert_eq!(a_view["status"], "ACTIVE", "{a_view}");
    let a_view = json_of(app.composio(Method::GET, &server, None).await, 200).await;
    assert_eq!(a_view["name"], "Alpha tools");
    assert_eq!(a_view["auth_config_ids"], json!([a_config]));
    assert_eq!(a_view["server_instance_count"], 1, "{a_view}");
    let a_view = json_of(app.composio(Method::GET, &instances, None).await, 200).await;
    assert_eq!(a_view["instances"][0]["instance_id"], "alice", "{a_view}");
    let a_accounts = json_of(app.composio(Method::GET, "/api/v3/connected_accounts", None).await, 200).await;
    assert_eq!(ids(&a_accounts), [a_account], "no account was added to A's project");
    let a_servers = json_of(app.composio(Method::GET, "/api/v3/mcp/servers", None).await, 200).await;
    assert_eq!(ids(&a_servers), [a_server], "no server was added to A's project");
}

// --- Keys, request ids, /api/v3.1 ----------------------------------------------------------

#[tokio::test]
async fn a_missing_key_is_401_auth_missing_api_key_and_a_bad_one_401_auth_invalid_api_key() {
    let app = TestApp::spawn().await;
    let config = api_key_auth_config(&app, "gmail").await;
    let events_before = app.event_count().await;

    for path in [
        "/api/v3/auth_configs".to_owned(),
        format!("/api/v3/auth_configs/{config}"),
        "/api/v3/connected_accounts".to_owned(),
        "/api/v3/mcp/servers".to_owned(),
        "/api/v3.1/auth_configs".to_owned(),
    ] {
        let error = envelope(&path, send(&app, Method::GET, &path, &[], None).await, 401, "Auth_MissingApiKey").await;
        assert_eq!(error["code"], 10402, "{error}");
        assert!(error["suggested_fix"].as_str().unwrap().contains("x-api-key"), "{error}");
        for header in ["x-api-key", "x-user-api-key"] {
            let response = send(&app, Method::GET, &path, &[(header, "mcpp_not-a-real-key")], None).await;
            let error = envelope(&format!("{header} on {path}"), response, 401, "Auth_InvalidApiKey").await;
            assert_eq!(error["code"], 10403, "{error}");
        }
    }
    // An empty key is no key at all, or a wrong one: never a way in.
    let empty = send(&app, Method::GET, "/api/v3/auth_configs", &[("x-api-key", "")], None).await;
    assert_eq!(empty.status(), 401, "{}", empty.text().await.unwrap());

    // A key is checked before the body: an unauthenticated caller learns nothing of the schema.
    let no_key = send(&app, Method::POST, "/api/v3/auth_configs", &[], Some(json!({"toolkit": 5}))).await;
    envelope("bad body, no key", no_key, 401, "Auth_MissingApiKey").await;
    let bad_key = send(&app, Method::POST, "/api/v3/mcp/servers", &[("x-api-key", "nope")], Some(json!({}))).await;
    envelope("bad body, bad key", bad_key, 401, "Auth_InvalidApiKey").await;

    // A key sent as a bearer token is not Composio's header.
    let bearer =
        app.http.get(format!("{}/api/v3/auth_configs", app.base_url)).bearer_auth(&app.key).send().await.unwrap();
    envelope("bearer", bearer, 401, "Auth_MissingApiKey").await;

    // A revoked key is an invalid key.
    let (c_project, c_key) = app.new_project("C").await;
    json_of(app.composio_as(&c_key, Method::GET, "/api/v3/auth_configs", None).await, 200).await;
    app.revoke(c_project, &c_key).await;
    let events_after_revoke = app.event_count().await;
    let revoked = app.composio_as(&c_key, Method::GET, "/api/v3/auth_configs", None).await;
    envelope("revoked key", revoked, 401, "Auth_InvalidApiKey").await;
    let revoked =
        app.composio_as(&c_key, Method::POST, "/api/v3/auth_configs", Some(json!({"toolkit": {"slug": "gmail"}})));
    envelope("revoked key, create", revoked.await, 401, "Auth_InvalidApiKey").await;
    assert_eq!(app.event_count().await, events_after_revoke, "a refused key changed nothing");
    assert!(events_after_revoke > events_before);

    // A key pasted into the header is never echoed.
    let response = send(&app, Method::GET, "/api/v3/auth_configs", &[("x-api-key", SECRET)], None).await;
    let text = response.text().await.unwrap();
    assert!(!text.contains(SECRET), "{text}");
}

#[tokio::test]
async fn x_user_api_key_and_the_v3_1_paths_work_like_x_api_key_and_v3() {
    let app = TestApp::spawn().await;
    let config = api_key_auth_config(&app, "gmail").await;
    let server = mcp_server(&app, "Alias tools", &[&config]).await;

    // x-user-api-key: reads and writes in the key's project.
    let user_key = [("x-user-api-key", app.key.as_str())];
    let listed = json_of(send(&app, Method::GET, "/api/v3/auth_configs", &user_key, None).await, 200).await;
    assert_eq!(ids(&listed), std::slice::from_ref(&config));
    let body =
        json!({"toolkit": {"slug": "slack"}, "auth_config": {"type": "use_custom_auth", "authScheme": "API_KEY"}});
    let created = json_of(send(&app, Method::POST, "/api/v3/auth_configs", &user_key, Some(body)).await, 201).await;
    let slack = created["auth_config"]["id"].as_str().unwrap().to_owned();
    let seen = json_of(app.composio(Method::GET, &format!("/api/v3/auth_configs/{slack}"), None).await, 200).await;
    assert_eq!(seen["toolkit"]["slug"], "slack", "created in the key's own project");

    // /api/v3.1 answers as /api/v3, query strings included.
    for path in [format!("/auth_configs/{config}"), format!("/mcp/{server}"), "/auth_configs?limit=1".to_owned()] {
        let v3 = json_of(app.composio(Method::GET, &format!("/api/v3{path}"), None).await, 200).await;
        let v3_1 = json_of(app.composio(Method::GET, &format!("/api/v3.1{path}"), None).await, 200).await;
        assert_eq!(v3, v3_1, "{path}");
    }
    let limited = json_of(app.composio(Method::GET, "/api/v3.1/auth_configs?limit=1", None).await, 200).await;
    assert_eq!((ids(&limited).len(), limited["total_pages"].as_i64()), (1, Some(2)), "the query is kept: {limited}");
    let body = json!({"name": "Made via v3 1", "auth_config_ids": [config]});
    let made = json_of(app.composio(Method::POST, "/api/v3.1/mcp/servers", Some(body)).await, 201).await;
    let made_id = made["id"].as_str().unwrap();
    json_of(app.composio(Method::GET, &format!("/api/v3/mcp/{made_id}"), None).await, 200).await;

    // ... and its errors are Composio's too.
    let events_before = app.event_count().await;
    invalid("v3.1 bad id", app.composio(Method::GET, "/api/v3.1/auth_configs/not-an-id", None).await, "nanoid").await;
    invalid("v3.1 bad limit", app.composio(Method::GET, "/api/v3.1/auth_configs?limit=0", None).await, "limit").await;
    invalid("v3.1 bad body", app.composio(Method::POST, "/api/v3.1/auth_configs", Some(json!({}))).await, "toolkit")
        .await;
    let unknown = app.composio(Method::GET, "/api/v3.1/mcp/00000000-0000-4000-8000-000000000000", None).await;
    envelope("v3.1 unknown server", unknown, 404, "McpServer_ResourceNotFound").await;
    let missing = send(&app, Method::DELETE, &format!("/api/v3.1/auth_configs/{config}"), &[], None).await;
    envelope("v3.1 no key", missing, 401, "Auth_MissingApiKey").await;
    assert_eq!(app.event_count().await, events_before);
    json_of(app.composio(Method::GET, &format!("/api/v3/auth_configs/{config}"), None).await, 200).await;
}

#[tokio::test]
async fn the_clients_x_request_id_is_echoed_in_every_error_and_its_header() {
    let app = TestApp::spawn().await;
    let config = api_key_auth_config(&app, "gmail").await;
    let key = app.key.as_str();
    let id = "req-composio-42";

    // Refusals from handlers, from body parsing, from authentication, from routing.
    let huge = json!({"toolkit": {"slug": "gmail"}, "padding": "x".repeat(2 * 1024 * 1024)});
    type Attempt<'a> = (&'a str, Method, String, Vec<(&'a str, &'a str)>, Option<Value>, u16, &'a str);
    let attempts: Vec<Attempt> = vec![
        (
            "unknown config",
            Method::GET,
            "/api/v3/auth_configs/ac_000000000000".into(),
            vec![("x-api-key", key)],
            None,
            404,
            "AuthConfig_ResourceNotFound",
        ),
        (
            "bad id",
            Method::GET,
            "/api/v3/mcp/not-a-uuid".into(),
            vec![("x-api-key", key)],
            None,
            400,
            "Request_ValidationError",
        ),
        (
            "bad body",
            Method::POST,
            "/api/v3/auth_configs".into(),
            vec![("x-api-key", key)],
            Some(json!({"toolkit": 5})),
            400,
            "Request_ValidationError",
        ),
        (
            "too large",
            Method::POST,
            "/api/v3/auth_configs".into(),
            vec![("x-api-key", key)],
            Some(huge),
            413,
            "Request_PayloadTooLarge",
        ),
        ("no key", Method::GET, "/api/v3/connected_accounts".into(), vec![], None, 401, "Auth_MissingApiKey"),
        (
            "bad key",
            Method::GET,
            "/api/v3/mcp/servers".into(),
            vec![("x-api-key", "mcpp_nope")],
            None,
            401,
            "Auth_InvalidApiKey",
        ),
        (
            "no route",
            Method::GET,
            "/api/v3/no_such_thing".into(),
            vec![("x-api-key", key)],
            None,
            404,
            "Request_RouteNotFound",
        ),
        (
            "v3.1",
            Method::PATCH,
            format!("/api/v3.1/auth_configs/{config}/MAYBE"),
            vec![("x-api-key", key)],
            None,
            400,
            "Request_ValidationError",
        ),
        (
            "precondition",
            Method::POST,
            "/api/v3/connected_accounts".into(),
            vec![("x-api-key", key)],
            Some(json!({"auth_config": {"id": config}, "connection": {"user_id": "u"}})),
            400,
            "ConnectedAccount_MissingRequiredFields",
        ),
    ];
    for (what, method, path, mut headers, body, status, slug) in attempts {
        headers.push(("x-request-id", id));
        let error = envelope(what, send(&app, method, &path, &headers, body).await, status, slug).await;
        assert_eq!(error["request_id"], id, "{what}: {error}");
    }

    // Without one, each request gets an id of its own, in the header and the body alike.
    let first =
        envelope("minted", app.composio(Method::GET, "/api/v3/mcp/nope", None).await, 400, "Request_ValidationError")
            .await;
    let second =
        envelope("minted", app.composio(Method::GET, "/api/v3/mcp/nope", None).await, 400, "Request_ValidationError")
            .await;
    assert!(first["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{first}");
    assert_ne!(first["request_id"], second["request_id"]);

    // An id that cannot go into a header or a log line is replaced, not echoed.
    let odd =
        send(&app, Method::GET, "/api/v3/mcp/nope", &[("x-api-key", key), ("x-request-id", "has space")], None).await;
    let error = envelope("unacceptable id", odd, 400, "Request_ValidationError").await;
    assert_ne!(error["request_id"], "has space", "{error}");

    // A success echoes it too.
    let ok = send(&app, Method::GET, "/api/v3/auth_configs", &[("x-api-key", key), ("x-request-id", id)], None).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-request-id"], id);
}

// --- Bad input -----------------------------------------------------------------------------

#[tokio::test]
async fn each_bad_composio_input_gets_400_naming_the_field_and_changes_nothing() {
    // Arrange: a custom API_KEY config, a managed OAuth config, an account and a server.
    let app = TestApp::spawn().await;
    let config = api_key_auth_config(&app, "gmail").await;
    let managed = json!({"toolkit": {"slug": "gmail"}});
    let managed = json_of(app.composio(Method::POST, "/api/v3/auth_configs", Some(managed)).await, 201).await;
    let managed = managed["auth_config"]["id"].as_str().unwrap().to_owned();
    let account = connect(&app, &config, "alice").await;
    let server = mcp_server(&app, "Existing", &[&config]).await;
    let events_before = app.event_count().await;
    let keys_before = app.secret_key_count().await;

    let toolkit = json!({"slug": "gmail"});
    let custom = |auth_config: Value| Some(json!({"toolkit": toolkit, "auth_config": auth_config}));
    let connection = |connection: Value| Some(json!({"auth_config": {"id": config}, "connection": connection}));
    let bad_cursor = base64::engine::general_purpose::STANDARD.encode("0-20");
    let configs = "/api/v3/auth_configs";
    let config_path = format!("/api/v3/auth_configs/{config}");
    let accounts = "/api/v3/connected_accounts";
    let account_path = format!("/api/v3/connected_accounts/{account}");
    let servers = "/api/v3/mcp/servers";
    let server_path = format!("/api/v3/mcp/{server}");
    let instances = format!("/api/v3/mcp/servers/{server}/instances");
    let (get, post, patch, delete) = (Method::GET, Method::POST, Method::PATCH, Method::DELETE);
    let cases = vec![
        // POST /auth_configs
        case("missing toolkit", post.clone(), configs, Some(json!({})), "toolkit"),
        case("toolkit not an object", post.clone(), configs, Some(json!({"toolkit": "gmail"})), "toolkit"),
        case("missing toolkit.slug", post.clone(), configs, Some(json!({"toolkit": {}})), "toolkit.slug"),
        case("empty toolkit.slug", post.clone(), configs, Some(json!({"toolkit": {"slug": ""}})), "toolkit.slug"),
        case(
            "malformed toolkit.slug",
            post.clone(),
            configs,
            Some(json!({"toolkit": {"slug": "g mail!"}})),
            "toolkit.slug",
        ),
        case(
            "no managed auth for the toolkit",
            post.clone(),
            configs,
            Some(json!({"toolkit": {"slug": "no-such-toolkit-zz"}})),
            "toolkit.slug",
        ),
        case(
            "type use_magic",
            post.clone(),
            configs,
            custom(json!({"type": "use_magic", "authScheme": "API_KEY"})),
            "auth_config.type",
        ),
        case("missing type", post.clone(), configs, custom(json!({"authScheme": "API_KEY"})), "auth_config.type"),
        case(
            "authScheme MAGIC",
            post.clone(),
            configs,
            custom(json!({"type": "use_custom_auth", "authScheme": "MAGIC"})),
            "auth_config.authScheme",
        ),
        case(
            "authScheme of the wrong type",
            post.clone(),
            configs,
            custom(json!({"type": "use_custom_auth", "authScheme": 5})),
            "auth_config.authScheme",
        ),
        case(
            "custom auth without authScheme",
            post.clone(),
            configs,
            custom(json!({"type": "use_custom_auth"})),
            "auth_config.authScheme",
        ),
        case(
            "empty name",
            post.clone(),
            configs,
            custom(json!({"type": "use_custom_auth", "authScheme": "API_KEY", "name": " "})),
            "auth_config.name",
        ),
        case(
            "name of the wrong type",
            post.clone(),
            configs,
            custom(json!({"type": "use_custom_auth", "authScheme": "API_KEY", "name": 5})),
            "auth_config.name",
        ),
        case(
            "credentials not an object",
            post.clone(),
            configs,
            custom(json!({"type": "use_custom_auth", "authScheme": "API_KEY", "credentials": "x"})),
            "auth_config.credentials",
        ),
        case(
            "OAUTH2 without client_id",
            post.clone(),
            configs,
            custom(json!({"type": "use_custom_auth", "authScheme": "OAUTH2", "credentials": {"client_secret": "s"}})),
            "auth_config.credentials.client_id",
        ),
        case(
            "plain http token_url",
            post.clone(),
            configs,
            custom(
                json!({"type": "use_custom_auth", "authScheme": "OAUTH2", "credentials": {"client_id": "c", "token_url": "http://example.com/token"}}),
            ),
            "auth_config.credentials.token_url",
        ),
        case(
            "proxy_url not a URL",
            post.clone(),
            configs,
            custom(
                json!({"type": "use_custom_auth", "authScheme": "API_KEY", "proxy_config": {"proxy_url": "not a url"}}),
            ),
            "auth_config.proxy_config.proxy_url",
        ),
        case(
            "missing proxy_url",
            post.clone(),
            configs,
            custom(json!({"type": "use_custom_auth", "authScheme": "API_KEY", "proxy_config": {}})),
            "auth_config.proxy_config.proxy_url",
        ),
        case(
            "tools not a list",
            post.clone(),
            configs,
            custom(
                json!({"type": "use_custom_auth", "authScheme": "API_KEY", "restrict_to_following_tools": "GMAIL_SEND"}),
            ),
            "auth_config.restrict_to_following_tools",
        ),
        case(
            "tool access not a list",
            post.clone(),
            configs,
            custom(
                json!({"type": "use_custom_auth", "authScheme": "API_KEY", "tool_access_config": {"tools_available_for_execution": "x"}}),
            ),
            "auth_config.tool_access_config.tools_available_for_execution",
        ),
        // PATCH /auth_configs/{id}, and its status
        case("patch without type", patch.clone(), config_path.clone(), Some(json!({"name": "x"})), "type"),
        case("patch type magic", patch.clone(), config_path.clone(), Some(json!({"type": "magic"})), "type"),
        case(
            "patch type not the config's",
            patch.clone(),
            config_path.clone(),
            Some(json!({"type": "default", "scopes": "a"})),
            "type",
        ),
        case(
            "patch empty name",
            patch.clone(),
            config_path.clone(),
            Some(json!({"type": "custom", "name": ""})),
            "name",
        ),
        case(
            "patch name of the wrong type",
            patch.clone(),
            config_path.clone(),
            Some(json!({"type": "custom", "name": ["x"]})),
            "name",
        ),
        case(
            "patch credentials not an object",
            patch.clone(),
            config_path.clone(),
            Some(json!({"type": "custom", "credentials": 5})),
            "credentials",
        ),
        case(
            "patch proxy_url not a URL",
            patch.clone(),
            config_path.clone(),
            Some(json!({"type": "custom", "proxy_config": {"proxy_url": "ftp://x"}})),
            "proxy_config.proxy_url",
        ),
        case(
            "patch scopes of the wrong type",
            patch.clone(),
            format!("{configs}/{managed}"),
            Some(json!({"type": "default", "scopes": 5})),
            "scopes",
        ),
        case("status MAYBE", patch.clone(), format!("{config_path}/MAYBE"), None, "status"),
        // Auth config ids and lists
        case("GET malformed auth config id", get.clone(), format!("{configs}/not-an-id"), None, "nanoid"),
        case(
            "PATCH malformed auth config id",
            patch.clone(),
            format!("{configs}/not-an-id"),
            Some(json!({"type": "custom"})),
            "nanoid",
        ),
        case("DELETE malformed auth config id", delete.clone(), format!("{configs}/ac_short"), None, "nanoid"),
        case("status of a malformed id", patch.clone(), format!("{configs}/not-an-id/ENABLED"), None, "nanoid"),
        case("an account id for a config", get.clone(), format!("{configs}/{account}"), None, "nanoid"),
        case("auth configs limit=0", get.clone(), format!("{configs}?limit=0"), None, "limit"),
        case("auth configs limit=1001", get.clone(), format!("{configs}?limit=1001"), None, "limit"),
        case("auth configs limit=abc", get.clone(), format!("{configs}?limit=abc"), None, "limit"),
        case("auth configs bad cursor", get.clone(), format!("{configs}?cursor=nonsense"), None, "cursor"),
        case("auth configs cursor of page 0", get.clone(), format!("{configs}?cursor={bad_cursor}"), None, "cursor"),
        case(
            "is_composio_managed=maybe",
            get.clone(),
            format!("{configs}?is_composio_managed=maybe"),
            None,
            "is_composio_managed",
        ),
        case("show_disabled=maybe", get.clone(), format!("{configs}?show_disabled=maybe"), None, "show_disabled"),
        // POST /connected_accounts
        case(
            "missing auth_config",
            post.clone(),
            accounts,
            Some(json!({"connection": {"user_id": "u"}})),
            "auth_config",
        ),
        case("missing connection", post.clone(), accounts, Some(json!({"auth_config": {"id": config}})), "connection"),
        case(
            "missing auth_config.id",
            post.clone(),
            accounts,
            Some(json!({"auth_config": {}, "connection": {}})),
            "auth_config.id",
        ),
        case(
            "malformed auth_config.id",
            post.clone(),
            accounts,
            Some(json!({"auth_config": {"id": "not-an-id"}, "connection": {}})),
            "auth_config.id",
        ),
        case(
            "user_id of the wrong type",
            post.clone(),
            accounts,
            connection(json!({"user_id": 5})),
            "connection.user_id",
        ),
        case("blank user_id", post.clone(), accounts, connection(json!({"user_id": "  "})), "connection.user_id"),
        case(
            "callback_url not a URL",
            post.clone(),
            accounts,
            connection(json!({"user_id": "u", "callback_url": "not a url"})),
            "connection.callback_url",
        ),
        case(
            "authScheme MAGIC in the state",
            post.clone(),
            accounts,
            connection(json!({"state": {"authScheme": "MAGIC", "val": {"api_key": "k"}}})),
            "connection.state.authScheme",
        ),
        case(
            "state without authScheme",
            post.clone(),
            accounts,
            connection(json!({"state": {"val": {"api_key": "k"}}})),
            "connection.state.authScheme",
        ),
        case(
            "state without val",
            post.clone(),
            accounts,
            connection(json!({"state": {"authScheme": "API_KEY"}})),
            "connection.state.val",
        ),
        case(
            "val not an object",
            post.clone(),
            accounts,
            connection(json!({"state": {"authScheme": "API_KEY", "val": ["k"]}})),
            "connection.state.val",
        ),
        case(
            "validate_credentials of the wrong type",
            post.clone(),
            accounts,
            Some(json!({"auth_config": {"id": config}, "connection": {}, "validate_credentials": "yes"})),
            "validate_credentials",
        ),
        // POST /connected_accounts/link
        case(
            "link without auth_config_id",
            post.clone(),
            format!("{accounts}/link"),
            Some(json!({"user_id": "u"})),
            "auth_config_id",
        ),
        case(
            "link without user_id",
            post.clone(),
            format!("{accounts}/link"),
            Some(json!({"auth_config_id": managed})),
            "user_id",
        ),
        case(
            "link with a malformed auth_config_id",
            post.clone(),
            format!("{accounts}/link"),
            Some(json!({"auth_config_id": "ac_1", "user_id": "u"})),
            "auth_config_id",
        ),
        case(
            "link with an empty user_id",
            post.clone(),
            format!("{accounts}/link"),
            Some(json!({"auth_config_id": managed, "user_id": ""})),
            "user_id",
        ),
        case(
            "link callback_url not a URL",
            post.clone(),
            format!("{accounts}/link"),
            Some(json!({"auth_config_id": managed, "user_id": "u", "callback_url": "javascript:alert(1)"})),
            "callback_url",
        ),
        // Connected account ids, status and lists
        case("GET malformed account id", get.clone(), format!("{accounts}/not-an-id"), None, "nanoid"),
        case("DELETE malformed account id", delete.clone(), format!("{accounts}/not-an-id"), None, "nanoid"),
        case("revoke a malformed account id", post.clone(), format!("{accounts}/not-an-id/revoke"), None, "nanoid"),
        case(
            "status of a malformed account id",
            patch.clone(),
            format!("{accounts}/{config}/status"),
            Some(json!({"enabled": true})),
            "nanoid",
        ),
        case("status without enabled", patch.clone(), format!("{account_path}/status"), Some(json!({})), "enabled"),
        case(
            "enabled of the wrong type",
            patch.clone(),
            format!("{account_path}/status"),
            Some(json!({"enabled": "yes"})),
            "enabled",
        ),
        case("statuses=BOGUS", get.clone(), format!("{accounts}?statuses=ACTIVE,BOGUS"), None, "statuses"),
        case("order_by=name", get.clone(), format!("{accounts}?order_by=name"), None, "order_by"),
        case(
            "order_direction=sideways",
            get.clone(),
            format!("{accounts}?order_direction=sideways"),
            None,
            "order_direction",
        ),
        case("accounts limit=0", get.clone(), format!("{accounts}?limit=0"), None, "limit"),
        case("accounts limit=2.5", get.clone(), format!("{accounts}?limit=2.5"), None, "limit"),
        case("accounts bad cursor", get.clone(), format!("{accounts}?cursor=bm9wZQ=="), None, "cursor"),
        // POST /mcp/servers (and /custom): Composio's name rule and the shapes
        case("missing name", post.clone(), servers, Some(json!({"auth_config_ids": [config]})), "name"),
        case(
            "name of the wrong type",
            post.clone(),
            servers,
            Some(json!({"name": 1234, "auth_config_ids": [config]})),
            "name",
        ),
        case(
            "name of 3 characters",
            post.clone(),
            servers,
            Some(json!({"name": "abc", "auth_config_ids": [config]})),
            "name",
        ),
        case(
            "name of 31 characters",
            post.clone(),
            servers,
            Some(json!({"name": "a".repeat(31), "auth_config_ids": [config]})),
            "name",
        ),
        case("empty name", post.clone(), servers, Some(json!({"name": "", "auth_config_ids": [config]})), "name"),
        case(
            "name with an underscore",
            post.clone(),
            servers,
            Some(json!({"name": "gmail_server", "auth_config_ids": [config]})),
            "name",
        ),
        case(
            "name with punctuation",
            post.clone(),
            servers,
            Some(json!({"name": "Tools!", "auth_config_ids": [config]})),
            "name",
        ),
        case(
            "name with a non-ASCII letter",
            post.clone(),
            servers,
            Some(json!({"name": "Caf\u{e9} tools", "auth_config_ids": [config]})),
            "name",
        ),
        case(
            "name with a tab",
            post.clone(),
            servers,
            Some(json!({"name": "Mail\ttools", "auth_config_ids": [config]})),
            "name",
        ),
        case("missing auth_config_ids", post.clone(), servers, Some(json!({"name": "Good name"})), "auth_config_ids"),
        case(
            "auth_config_ids not a list",
            post.clone(),
            servers,
            Some(json!({"name": "Good name", "auth_config_ids": config})),
            "auth_config_ids",
        ),
        case(
            "auth_config_ids of numbers",
            post.clone(),
            servers,
            Some(json!({"name": "Good name", "auth_config_ids": [7]})),
            "auth_config_ids.0",
        ),
        case(
            "allowed_tools not a list",
            post.clone(),
            servers,
            Some(json!({"name": "Good name", "auth_config_ids": [config], "allowed_tools": "GMAIL_SEND"})),
            "allowed_tools",
        ),
        case(
            "managed_auth_via_composio of the wrong type",
            post.clone(),
            servers,
            Some(json!({"name": "Good name", "auth_config_ids": [config], "managed_auth_via_composio": "yes"})),
            "managed_auth_via_composio",
        ),
        case(
            "custom server name of 2",
            post.clone(),
            format!("{servers}/custom"),
            Some(json!({"name": "ab", "toolkits": ["exa"]})),
            "name",
        ),
        case(
            "custom server without a name",
            post.clone(),
            format!("{servers}/custom"),
            Some(json!({"toolkits": ["exa"]})),
            "name",
        ),
        // PATCH /mcp/{id}, malformed server ids, lists
        case("patch a name of 3", patch.clone(), server_path.clone(), Some(json!({"name": "abc"})), "name"),
        case(
            "patch a name with a slash",
            patch.clone(),
            server_path.clone(),
            Some(json!({"name": "mail/tools"})),
            "name",
        ),
        case(
            "patch auth_config_ids not a list",
            patch.clone(),
            server_path.clone(),
            Some(json!({"auth_config_ids": "x"})),
            "auth_config_ids",
        ),
        case("GET /mcp/not-a-uuid", get.clone(), "/api/v3/mcp/not-a-uuid", None, "id"),
        case(
            "PATCH /mcp/not-a-uuid",
            patch.clone(),
            "/api/v3/mcp/not-a-uuid",
            Some(json!({"name": "Fine name"})),
            "id",
        ),
        case("DELETE /mcp/not-a-uuid", delete.clone(), "/api/v3/mcp/not-a-uuid", None, "id"),
        case("servers order_by=name", get.clone(), format!("{servers}?order_by=name"), None, "order_by"),
        case("servers limit=0", get.clone(), format!("{servers}?limit=0"), None, "limit"),
        case("servers page_no=0", get.clone(), format!("{servers}?page_no=0"), None, "page_no"),
        case("servers page_no=-1", get.clone(), format!("{servers}?page_no=-1"), None, "page_no"),
        // POST /mcp/servers/generate
        case(
            "generate without mcp_server_id",
            post.clone(),
            format!("{servers}/generate"),
            Some(json!({"user_ids": ["alice"]})),
            "mcp_server_id",
        ),
        case(
            "generate with a malformed mcp_server_id",
            post.clone(),
            format!("{servers}/generate"),
            Some(json!({"mcp_server_id": "nope"})),
            "mcp_server_id",
        ),
        case(
            "generate user_ids not a list",
            post.clone(),
            format!("{servers}/generate"),
            Some(json!({"mcp_server_id": server, "user_ids": "alice"})),
            "user_ids",
        ),
        case(
            "generate with an empty user id",
            post.clone(),
            format!("{servers}/generate"),
            Some(json!({"mcp_server_id": server, "user_ids": ["alice", ""]})),
            "user_ids.1",
        ),
        // Instances
        case(
            "instance of a malformed server id",
            post.clone(),
            "/api/v3/mcp/servers/not-a-uuid/instances",
            Some(json!({"user_id": "u"})),
            "serverId",
        ),
        case("instance without user_id", post.clone(), instances.clone(), Some(json!({})), "user_id"),
        case(
            "instance user_id of the wrong type",
            post.clone(),
            instances.clone(),
            Some(json!({"user_id": 5})),
            "user_id",
        ),
        case(
            "instance with an empty user_id",
            post.clone(),
            instances.clone(),
            Some(json!({"user_id": ""})),
            "user_id",
        ),
        case(
            "instances of a malformed server id",
            get.clone(),
            "/api/v3/mcp/servers/not-a-uuid/instances",
            None,
            "serverId",
        ),
        case("instances limit=0", get.clone(), format!("{instances}?limit=0"), None, "limit"),
        case(
            "instances order_direction=up",
            get.clone(),
            format!("{instances}?order_direction=up"),
            None,
            "order_direction",
        ),
        case(
            "delete an instance of a malformed server id",
            delete.clone(),
            "/api/v3/mcp/servers/not-a-uuid/instances/alice",
            None,
            "serverId",
        ),
    ];

    for Case { what, method, path, body, field } in cases {
        let response = app.composio(method, &path, body).await;
        invalid(what, response, field).await;
    }

    // A connection without the credential its scheme needs: 612, naming what is missing.
    for (what, state) in [
        ("val without api_key", json!({"authScheme": "API_KEY", "val": {"status": "ACTIVE"}})),
        ("empty api_key", json!({"authScheme": "API_KEY", "val": {"api_key": " "}})),
        ("api_key not a string", json!({"authScheme": "API_KEY", "val": {"api_key": 918273645}})),
    ] {
        let response = app.composio(Method::POST, accounts, connection(json!({"user_id": "u", "state": state}))).await;
        let error = envelope(what, response, 400, "ConnectedAccount_MissingRequiredFields").await;
        assert_eq!(error["code"], 612, "{what}: {error}");
        assert_eq!(error["errors"], json!(["connection.state.val.api_key: field required"]), "{what}: {error}");
        assert!(error["message"].as_str().unwrap().contains("api_key"), "{what}: {error}");
        assert!(!error.to_string().contains("918273645"), "{what}: {error}");
    }
    let no_state = app.composio(Method::POST, accounts, connection(json!({"user_id": "u"}))).await;
    let error = envelope("no state", no_state, 400, "ConnectedAccount_MissingRequiredFields").await;
    assert_eq!(error["errors"], json!(["connection.state.val.api_key: field required"]), "{error}");

    // A scheme that is not the auth config's: 400 naming connection.state.authScheme.
    let mismatch = json!({"user_id": "u", "state": {"authScheme": "BEARER_TOKEN", "val": {"token": "t"}}});
    let error = envelope(
        "scheme mismatch",
        app.composio(Method::POST, accounts, connection(mismatch)).await,
        400,
        "ConnectedAccount_BadRequest",
    )
    .await;
    assert_eq!(error["code"], 600, "{error}");
    let detail = error["errors"][0].as_str().unwrap();
    assert!(detail.starts_with("connection.state.authScheme: "), "{error}");
    assert!(detail.contains("API_KEY") && detail.contains("BEARER_TOKEN"), "{error}");

    // A link to an auth config that is not OAuth: 400 saying how to connect instead.
    let link = json!({"auth_config_id": config, "user_id": "u"});
    let error = envelope(
        "link to API_KEY",
        app.composio(Method::POST, &format!("{accounts}/link"), Some(link)).await,
        400,
        "ConnectedAccount_BadRequest",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("API_KEY"), "{error}");

    // Nothing changed.
    assert_eq!(app.event_count().await, events_before, "a refused request left an event");
    assert_eq!(app.secret_key_count().await, keys_before, "a refused request left a data key");
    let still = json_of(app.composio(Method::GET, &config_path, None).await, 200).await;
    assert_eq!((still["name"].as_str(), still["status"].as_str()), (Some("gmail keys"), Some("ENABLED")));
    let still = json_of(app.composio(Method::GET, &server_path, None).await, 200).await;
    assert_eq!(still["name"], "Existing");
    let listed = json_of(app.composio(Method::GET, accounts, None).await, 200).await;
    assert_eq!(ids(&listed), [account]);
}

#[tokio::test]
async fn mcp_server_names_of_4_to_30_letters_digits_spaces_and_hyphens_are_accepted() {
    let app = TestApp::spawn().await;
    let config = api_key_auth_config(&app, "gmail").await;
    for name in ["Abcd", "A1-b 2", &"x".repeat(30), "mail - tools 2"] {
        let body = json!({"name": name, "auth_config_ids": [config]});
        let created = json_of(app.composio(Method::POST, "/api/v3/mcp/servers", Some(body)).await, 201).await;
        assert_eq!(created["name"], name);
    }
    let server = mcp_server(&app, "Rename me", &[&config]).await;
    let renamed = json!({"name": "y".repeat(30)});
    json_of(app.composio(Method::PATCH, &format!("/api/v3/mcp/{server}"), Some(renamed)).await, 200).await;
    let too_long = json!({"name": "y".repeat(31)});
    let events_before = app.event_count().await;
    invalid(
        "rename to 31",
        app.composio(Method::PATCH, &format!("/api/v3/mcp/{server}"), Some(too_long)).await,
        "name",
    )
    .await;
    assert_eq!(app.event_count().await, events_before);
}

#[tokio::test]
async fn unreadable_composio_bodies_get_400_413_or_415_and_change_nothing() {
    let app = TestApp::spawn().await;
    let config = api_key_auth_config(&app, "gmail").await;
    let account = connect(&app, &config, "alice").await;
    let server = mcp_server(&app, "Existing", &[&config]).await;
    let events_before = app.event_count().await;
    let keys_before = app.secret_key_count().await;

    let writes = [
        (Method::POST, "/api/v3/auth_configs".to_owned()),
        (Method::PATCH, format!("/api/v3/auth_configs/{config}")),
        (Method::POST, "/api/v3/connected_accounts".to_owned()),
        (Method::POST, "/api/v3/connected_accounts/link".to_owned()),
        (Method::PATCH, format!("/api/v3/connected_accounts/{account}/status")),
        (Method::POST, "/api/v3/mcp/servers".to_owned()),
        (Method::PATCH, format!("/api/v3/mcp/{server}")),
        (Method::POST, "/api/v3/mcp/servers/generate".to_owned()),
        (Method::POST, format!("/api/v3/mcp/servers/{server}/instances")),
        (Method::POST, "/api/v3.1/auth_configs".to_owned()),
    ];
    let huge = serde_json::to_vec(&json!({
        "toolkit": {"slug": "gmail"},
        "auth_config": {"type": "use_custom_auth", "authScheme": "API_KEY", "credentials": {"api_key": SECRET}},
        "padding": "x".repeat(1024 * 1024 + 1),
    }))
    .unwrap();
    for (method, path) in writes {
        let what = |kind: &str| format!("{kind}: {method} {path}");
        let json_type = Some("application/json");

        let malformed = send_raw(&app, method.clone(), &path, json_type, b"{\"name\": ".to_vec()).await;
        let error = envelope(&what("malformed"), malformed, 400, "Request_MalformedBody").await;
        assert_eq!(error["code"], 10401, "{error}");
        assert!(error["message"].as_str().unwrap().contains("not valid JSON"), "{error}");

        let trailing = send_raw(&app, method.clone(), &path, json_type, b"{\"name\": \"x\"} {".to_vec()).await;
        envelope(&what("trailing garbage"), trailing, 400, "Request_MalformedBody").await;

        for empty in [&b""[..], b"  \n"] {
            let response = send_raw(&app, method.clone(), &path, json_type, empty.to_vec()).await;
            let error = envelope(&what("empty"), response, 400, "Request_MalformedBody").await;
            assert!(error["message"].as_str().unwrap().contains("empty"), "{error}");
        }

        let too_large = send_raw(&app, method.clone(), &path, json_type, huge.clone()).await;
        let text = too_large.text().await.unwrap();
        assert!(!text.contains(SECRET), "{}: {text}", what("too large"));
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"]["status"], 413, "{}: {body}", what("too large"));
        assert_eq!(body["error"]["slug"], "Request_PayloadTooLarge", "{body}");
        assert_eq!(body["error"]["code"], 10413, "{body}");

        for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
            let response = send_raw(&app, method.clone(), &path, content_type, b"{\"name\": \"x\"}".to_vec()).await;
            let error =
                envelope(&what(&format!("{content_type:?}")), response, 415, "Request_UnsupportedMediaType").await;
            assert_eq!(error["code"], 10415, "{error}");
        }

        // JSON, but not an object.
        for not_an_object in [&b"[]"[..], b"\"text\"", b"42", b"null"] {
            let response = send_raw(&app, method.clone(), &path, json_type, not_an_object.to_vec()).await;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            assert_eq!(status, 400, "{}: {text}", what("not an object"));
            let body: Value = serde_json::from_str(&text).unwrap();
            assert!(body["error"]["slug"].as_str().unwrap().starts_with("Request_"), "{body}");
        }
    }
    // A JSON content type with parameters or a +json suffix is JSON.
    let body = serde_json::to_vec(&json!({"name": "Charset ok", "auth_config_ids": [config]})).unwrap();
    let response =
        send_raw(&app, Method::POST, "/api/v3/mcp/servers", Some("application/json; charset=utf-8"), body).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());

    assert_eq!(app.event_count().await, events_before + 1, "only the one good request left an event");
    assert_eq!(app.secret_key_count().await, keys_before, "a refused request left a data key");
}

#[tokio::test]
async fn a_secret_sent_in_the_wrong_place_is_never_echoed() {
    let app = TestApp::spawn().await;
    let config = api_key_auth_config(&app, "gmail").await;
    let account = connect(&app, &config, "alice").await;
    let server = mcp_server(&app, "Existing", &[&config]).await;
    let events_before = app.event_count().await;
    let keys_before = app.secret_key_count().await;

    let connection = |connection: Value| Some(json!({"auth_config": {"id": config}, "connection": connection}));
    let custom = |auth_config: Value| Some(json!({"toolkit": {"slug": "gmail"}, "auth_config": auth_config}));
    let (get, post, patch) = (Method::GET, Method::POST, Method::PATCH);
    let configs = "/api/v3/auth_configs";
    let accounts = "/api/v3/connected_accounts";
    let attempts: Vec<(&str, Method, String, Option<Value>, u16)> = vec![
        ("toolkit", post.clone(), configs.into(), Some(json!({"toolkit": SECRET})), 400),
        ("toolkit.slug", post.clone(), configs.into(), Some(json!({"toolkit": {"slug": SECRET}})), 400),
        (
            "auth_config.type",
            post.clone(),
            configs.into(),
            custom(json!({"type": SECRET, "authScheme": "API_KEY"})),
            400,
        ),
        (
            "auth_config.authScheme",
            post.clone(),
            configs.into(),
            custom(json!({"type": "use_custom_auth", "authScheme": SECRET})),
            400,
        ),
        (
            "auth_config.name",
            post.clone(),
            configs.into(),
            custom(json!({"type": "use_custom_auth", "authScheme": "API_KEY", "name": [SECRET]})),
            400,
        ),
        (
            "auth_config.credentials",
            post.clone(),
            configs.into(),
            custom(json!({"type": "use_custom_auth", "authScheme": "API_KEY", "credentials": SECRET})),
            400,
        ),
        (
            "client_secret without client_id",
            post.clone(),
            configs.into(),
            custom(
                json!({"type": "use_custom_auth", "authScheme": "OAUTH2", "credentials": {"client_secret": SECRET}}),
            ),
            400,
        ),
        (
            "client_secret with a bad token_url",
            post.clone(),
            configs.into(),
            custom(
                json!({"type": "use_custom_auth", "authScheme": "OAUTH2", "credentials": {"client_id": "c", "client_secret": SECRET, "token_url": "ftp://x"}}),
            ),
            400,
        ),
        (
            "proxy_url",
            post.clone(),
            configs.into(),
            custom(json!({"type": "use_custom_auth", "authScheme": "API_KEY", "proxy_config": {"proxy_url": SECRET}})),
            400,
        ),
        (
            "proxy_auth_key of the wrong type",
            post.clone(),
            configs.into(),
            custom(
                json!({"type": "use_custom_auth", "authScheme": "API_KEY", "proxy_config": {"proxy_url": "https://p.example.com", "proxy_auth_key": [SECRET]}}),
            ),
            400,
        ),
        ("patch type", patch.clone(), format!("{configs}/{config}"), Some(json!({"type": SECRET})), 400),
        (
            "patch credentials",
            patch.clone(),
            format!("{configs}/{config}"),
            Some(json!({"type": "custom", "credentials": SECRET})),
            400,
        ),
        (
            "patch of a malformed id",
            patch.clone(),
            format!("{configs}/{SECRET}"),
            Some(json!({"type": "custom", "credentials": {"api_key": SECRET}})),
            400,
        ),
        (
            "state.val",
            post.clone(),
            accounts.into(),
            connection(json!({"state": {"authScheme": "API_KEY", "val": SECRET}})),
            400,
        ),
        (
            "state.authScheme",
            post.clone(),
            accounts.into(),
            connection(json!({"state": {"authScheme": SECRET, "val": {"api_key": SECRET}}})),
            400,
        ),
        (
            "val under the wrong name",
            post.clone(),
            accounts.into(),
            connection(json!({"state": {"authScheme": "API_KEY", "val": {"apikey": SECRET}}})),
            400,
        ),
        (
            "val of another scheme",
            post.clone(),
            accounts.into(),
            connection(json!({"state": {"authScheme": "BEARER_TOKEN", "val": {"token": SECRET}}})),
            400,
        ),
        (
            "api_key and a bad callback",
            post.clone(),
            accounts.into(),
            connection(json!({"callback_url": "nope", "state": {"authScheme": "API_KEY", "val": {"api_key": SECRET}}})),
            400,
        ),
        ("connection.user_id", post.clone(), accounts.into(), connection(json!({"user_id": {"key": SECRET}})), 400),
        ("connection.callback_url", post.clone(), accounts.into(), connection(json!({"callback_url": SECRET})), 400),
        (
            "api_key in an unknown config",
            post.clone(),
            accounts.into(),
            Some(
                json!({"auth_config": {"id": "ac_000000000000"}, "connection": {"state": {"authScheme": "API_KEY", "val": {"api_key": SECRET}}}}),
            ),
            404,
        ),
        (
            "link callback_url",
            post.clone(),
            format!("{accounts}/link"),
            Some(json!({"auth_config_id": config, "user_id": "u", "callback_url": SECRET})),
            400,
        ),
        (
            "link user_id",
            post.clone(),
            format!("{accounts}/link"),
            Some(json!({"auth_config_id": config, "user_id": [SECRET]})),
            400,
        ),
        (
            "status enabled",
            patch.clone(),
            format!("{accounts}/{account}/status"),
            Some(json!({"enabled": SECRET})),
            400,
        ),
        (
            "server name",
            post.clone(),
            "/api/v3/mcp/servers".into(),
            Some(json!({"name": format!("{SECRET}!"), "auth_config_ids": [config]})),
            400,
        ),
        (
            "server allowed_tools",
            post.clone(),
            "/api/v3/mcp/servers".into(),
            Some(json!({"name": "Fine name", "auth_config_ids": [config], "allowed_tools": SECRET})),
            400,
        ),
        ("server id in a path", get.clone(), format!("/api/v3/mcp/{SECRET}"), None, 400),
        (
            "generate mcp_server_id",
            post.clone(),
            "/api/v3/mcp/servers/generate".into(),
            Some(json!({"mcp_server_id": SECRET})),
            400,
        ),
        (
            "instance user_id",
            post.clone(),
            format!("/api/v3/mcp/servers/{server}/instances"),
            Some(json!({"user_id": [SECRET]})),
            400,
        ),
        ("limit", get.clone(), format!("{configs}?limit={SECRET}"), None, 400),
        ("cursor", get.clone(), format!("{accounts}?cursor={SECRET}"), None, 400),
        ("order_by", get.clone(), format!("{accounts}?order_by={SECRET}"), None, 400),
        ("show_disabled", get.clone(), format!("{configs}?show_disabled={SECRET}"), None, 400),
        ("is_composio_managed", get.clone(), format!("{configs}?is_composio_managed={SECRET}"), None, 400),
    ];
    for (what, method, path, body, status) in attempts {
        let response = app.composio(method, &path, body).await;
        let actual = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(actual, status, "{what}: {text}");
        assert!(!text.to_lowercase().contains(&SECRET.to_lowercase()), "{what} echoed the secret: {text}");
        assert!(serde_json::from_str::<Value>(&text).unwrap()["error"]["slug"].is_string(), "{what}: {text}");
    }
    assert_eq!(app.event_count().await, events_before, "a refused request left an event");
    assert_eq!(app.secret_key_count().await, keys_before, "a refused request left a data key");
}
