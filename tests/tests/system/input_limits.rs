//! Issue 18 (input validation): every input field has a size limit, no string with NUL or a
//! control character reaches Postgres (it answered 500), paging cannot overflow, and a body
//! that is not JSON-typed gets 415. Each refusal is in the surface's own format, names the
//! field, and appends no event; a value exactly at its limit is still accepted.

use crate::support::composio::{api_key_auth_config, api_key_connection, composio_error, mcp_server};
use crate::support::{TestApp, json_of};
use reqwest::Method;
use serde_json::{Value, json};

const NUL: &str = "a\u{0}b";

fn long(n: usize) -> String {
    "x".repeat(n)
}

/// An https URL of exactly `n` characters.
fn url_of(n: usize) -> String {
    let base = "https://mcp.example.com/";
    format!("{base}{}", "a".repeat(n - base.len()))
}

/// A list of `n` distinct items of `chars` characters each.
fn items(n: usize, chars: usize) -> Vec<String> {
    (0..n).map(|i| format!("{i:0>chars$}")).collect()
}

/// GAIA: a real 4xx, `{"success": false, "message", "error"}`, the field named.
async fn gaia_refusal(what: &str, response: reqwest::Response, field: &str) {
    let body = json_of(response, 422).await;
    assert_eq!(body["success"], false, "{what}: {body}");
    assert_eq!(body["error"], "validation_error", "{what}: {body}");
    assert_eq!(body["field"], field, "{what}: {body}");
    assert!(body["message"].as_str().unwrap().starts_with(&format!("{field}: ")), "{what}: {body}");
}

/// Klavis: 422 in FastAPI's shape, locating the field.
async fn klavis_refusal(what: &str, response: reqwest::Response, loc: Value) {
    let body = json_of(response, 422).await;
    assert_eq!(body["detail"][0]["loc"], loc, "{what}: {body}");
    assert!(body["detail"][0]["msg"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
}

/// Composio: 400 `Request_ValidationError`, naming the field in `errors`.
async fn composio_refusal(what: &str, response: reqwest::Response, field: &str) {
    let error = composio_error(response, 400, "Request_ValidationError").await;
    let first = error["errors"][0].as_str().unwrap_or_default().to_owned();
    assert!(first.starts_with(&format!("{field}: ")), "{what}: {error}");
}

#[tokio::test]
async fn gaia_fields_over_their_limit_or_holding_nul_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let existing = app.register_server("Existing").await;
    let before = app.event_count().await;
    let with = |field: &str, value: Value| {
        let mut body = app.http_server("Limits");
        body[field] = value;
        app.call(Method::POST, "/api/mcp/servers", Some(body))
    };
    let cases: Vec<(&str, reqwest::Response, &str)> = vec![
        // The probe: 400 KB of `{`, stored percent-encoded, made a 1.2 MB event.
        ("400 KB url of {", with("url", json!(format!("https://x.example/{}", "{".repeat(400_000)))).await, "url"),
        ("url over 2048", with("url", json!(url_of(2049))).await, "url"),
        (
            "url growing past 2048 once encoded",
            with("url", json!(format!("https://x.example/{}", "{".repeat(700)))).await,
            "url",
        ),
        ("proxyUrl over 2048", with("proxyUrl", json!(url_of(2049))).await, "proxyUrl"),
        ("description over 4096", with("description", json!(long(4097))).await, "description"),
        ("oauthScope over 4096", with("oauthScope", json!(long(4097))).await, "oauthScope"),
        ("oauthClientSecret over 8 KiB", with("oauthClientSecret", json!(long(8193))).await, "oauthClientSecret"),
        ("proxyAuthToken over 8 KiB", with("proxyAuthToken", json!(long(8193))).await, "proxyAuthToken"),
        ("env value over 8 KiB", with("env", json!({"API_KEY": long(8193)})).await, "env.API_KEY"),
        (
            "too many env variables",
            with("env", Value::Object((0..101).map(|i| (format!("V{i}"), json!("v"))).collect())).await,
            "env",
        ),
        (
            "header name over 256",
            with("customHeaders", json!([{"name": long(257), "value": "v"}])).await,
            "customHeaders.0.name",
        ),
        ("NUL in name", with("name", json!(NUL)).await, "name"),
        ("NUL in description", with("description", json!(NUL)).await, "description"),
        ("NUL in url", with("url", json!(format!("https://x.example/{NUL}"))).await, "url"),
        ("NUL in an env value", with("env", json!({"API_KEY": NUL})).await, "env.API_KEY"),
        (
            "NUL in a header value",
            with("customHeaders", json!([{"name": "X-Key", "value": NUL}])).await,
            "customHeaders.0.value",
        ),
        ("NUL in a key of env", with("env", json!({NUL: "v"})).await, "env.a\\u0000b"),
        ("control character in name", with("name", json!("a\u{7}b")).await, "name"),
    ];
    for (what, response, field) in cases {
        gaia_refusal(what, response, field).await;
    }
    let patch =
        app.call(Method::PATCH, &format!("/api/mcp/servers/{existing}"), Some(json!({"url": url_of(2049)}))).await;
    gaia_refusal("PATCH url over 2048", patch, "url").await;
    assert_eq!(app.event_count().await, before, "a refused request appends nothing");

    // Exactly at the limits: accepted.
    let mut body = app.http_server("At the limits");
    body["url"] = json!(url_of(2048));
    body["description"] = json!(long(4096));
    body["oauthClientSecret"] = json!(long(8192));
    let mut env: serde_json::Map<String, Value> = (0..99).map(|i| (format!("V{i}"), json!("v"))).collect();
    env.insert("BIG".into(), json!(long(8192)));
    body["env"] = Value::Object(env);
    let created = json_of(app.call(Method::POST, "/api/mcp/servers", Some(body)).await, 201).await;
    assert_eq!(created["server"]["url"], url_of(2048));
}

#[tokio::test]
async fn klavis_fields_over_their_limit_or_holding_nul_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let created = json_of(
        app.call(Method::POST, "/mcp-server/instance/create", Some(json!({"serverName": "Gmail", "userId": "u"})))
            .await,
        200,
    )
    .await;
    let id = created["instanceId"].as_str().unwrap().to_owned();
    let before = app.event_count().await;
    let post = |path: &'static str, body: Value| app.call(Method::POST, path, Some(body));
    let instance = |extra: Value| {
        let mut body = json!({"serverName": "Gmail", "userId": "someone"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        post("/mcp-server/instance/create", body)
    };
    let white_label = |extra: Value| {
        let mut body = json!({"client_id": "c", "client_secret": "s", "server_name": "Gmail"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        post("/white-labeling/create", body)
    };
    let cases: Vec<(&str, reqwest::Response, Value)> = vec![
        ("platformName over 128", instance(json!({"platformName": long(129)})).await, json!(["body", "platformName"])),
        ("NUL in platformName", instance(json!({"platformName": NUL})).await, json!(["body", "platformName"])),
        ("serverName over 128", instance(json!({"serverName": long(129)})).await, json!(["body", "serverName"])),
        ("NUL in userId", instance(json!({"userId": NUL})).await, json!(["body", "userId"])),
        ("account_id over 256", white_label(json!({"account_id": long(257)})).await, json!(["body", "account_id"])),
        ("NUL in account_id", white_label(json!({"account_id": NUL})).await, json!(["body", "account_id"])),
        ("too many scopes", white_label(json!({"scopes": items(101, 3)})).await, json!(["body", "scopes"])),
        ("a scope over 256", white_label(json!({"scopes": ["ok", long(257)]})).await, json!(["body", "scopes", 1])),
        ("NUL in scopes", white_label(json!({"scopes": [NUL]})).await, json!(["body", "scopes", 0])),
        ("NUL in client_id", white_label(json!({"client_id": NUL})).await, json!(["body", "client_id"])),
        ("callback_url over 2048", white_label(json!({"callback_url": url_of(2049)})).await, json!(["body", "callback_url"])),
        ("server_name over 128", white_label(json!({"server_name": long(129)})).await, json!(["body", "server_name"])),
        ("client_secret over 8 KiB", white_label(json!({"client_secret": long(8193)})).await, json!(["body", "client_secret"])),
        ("token over 8 KiB", post("/mcp-server/instance/set-auth", json!({"instanceId": id, "authData": {"token": long(8193)}})).await, json!(["body", "authData", "token"])),
        ("NUL in a token", post("/mcp-server/instance/set-auth", json!({"instanceId": id, "authData": {"token": NUL}})).await, json!(["body", "authData", "token"])),
        ("authData.data over 100 entries", post("/mcp-server/instance/set-auth", json!({"instanceId": id, "authData": {"data": Value::Object((0..101).map(|i| (format!("k{i}"), json!(i))).collect())}})).await, json!(["body", "authData", "data"])),
        ("NUL inside authData.data", post("/mcp-server/instance/set-auth", json!({"instanceId": id, "authData": {"data": {"nested": [NUL]}}})).await, json!(["body", "authData", "data", "nested", 0])),
        ("page_number overflowing the offset", app.call(Method::GET, "/user?page_number=9223372036854775807", None).await, json!(["query", "page_number"])),
        ("NUL in a query parameter", app.call(Method::GET, &format!("/mcp-server/instance/{id}?as_of=%00"), None).await, json!(["query", "as_of"])),
        ("NUL in a path", app.call(Method::GET, "/white-labeling/get/%00", None).await, json!(["path", "path"])),
        ("client_id in a path over 512", app.call(Method::GET, &format!("/white-labeling/get/{}", long(513)), None).await, json!(["path", "client_id"])),
    ];
    for (what, response, loc) in cases {
        klavis_refusal(what, response, loc).await;
    }
    assert_eq!(app.event_count().await, before, "a refused request appends nothing");

    // Exactly at the limits: accepted.
    json_of(instance(json!({"platformName": long(128)})).await, 200).await;
    let saved = json_of(
        white_label(json!({"account_id": long(256), "scopes": items(100, 256), "callback_url": url_of(2048)})).await,
        200,
    )
    .await;
    assert_eq!(saved["data"]["scopes"].as_array().unwrap().len(), 100);
    let page = json_of(app.call(Method::GET, "/user?page_number=2147483647", None).await, 200).await;
    assert_eq!(page["users"], json!([]));
}

#[tokio::test]
async fn composio_fields_over_their_limit_or_holding_nul_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    // Callback URLs at their limit must also pass the redirect allow-list.
    app.allow_redirects_to(&["mcp.example.com"]).await;
    let github = api_key_auth_config(&app, "github").await;
    let server = mcp_server(&app, "Limits", &[&github]).await;
    let before = app.event_count().await;
    let post = |path: &'static str, body: Value| app.composio(Method::POST, path, Some(body));
    let custom = |extra: Value| {
        let mut config = json!({"type": "use_custom_auth", "authScheme": "API_KEY", "name": "Keys"});
        config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        post("/api/v3/auth_configs", json!({"toolkit": {"slug": "github"}, "auth_config": config}))
    };
    let oauth = |credentials: Value| {
        let config = json!({"type": "use_custom_auth", "authScheme": "OAUTH2", "credentials": credentials});
        post("/api/v3/auth_configs", json!({"toolkit": {"slug": "github"}, "auth_config": config}))
    };
    let config_path = format!("/api/v3/auth_configs/{github}");
    let patch_config = |body: Value| app.composio(Method::PATCH, &config_path, Some(body));
    let custom_server = |allowed: Value| {
        post(
            "/api/v3/mcp/servers/custom",
            json!({"name": "Custom one", "toolkits": ["github"], "allowed_tools": allowed}),
        )
    };
    let account = |callback: Value| {
        let mut body = api_key_connection(&github, "someone", "k");
        body["connection"]["callback_url"] = callback;
        post("/api/v3/connected_accounts", body)
    };
    let cases: Vec<(&str, reqwest::Response, &str)> = vec![
        ("NUL in an auth config name", custom(json!({"name": NUL})).await, "auth_config.name"),
        (
            "NUL in credentials.client_id",
            oauth(json!({"client_id": NUL, "client_secret": "s"})).await,
            "auth_config.credentials.client_id",
        ),
        (
            "credentials over 100 entries",
            oauth(Value::Object((0..101).map(|i| (format!("k{i}"), json!("v"))).collect())).await,
            "auth_config.credentials",
        ),
        (
            "credentials over 16 KiB",
            oauth(json!({"client_id": "c", "a": long(9000), "b": long(9000)})).await,
            "auth_config.credentials",
        ),
        (
            "NUL in restrict_to_following_tools",
            custom(json!({"restrict_to_following_tools": [NUL]})).await,
            "auth_config.restrict_to_following_tools.0",
        ),
        (
            "restrict_to_following_tools over 500",
            custom(json!({"restrict_to_following_tools": items(501, 4)})).await,
            "auth_config.restrict_to_following_tools",
        ),
        (
            "a restricted tool over 256",
            custom(json!({"restrict_to_following_tools": [long(257)]})).await,
            "auth_config.restrict_to_following_tools.0",
        ),
        (
            "a tool_access_config tool over 256",
            custom(json!({"tool_access_config": {"tools_available_for_execution": [long(257)]}})).await,
            "auth_config.tool_access_config.tools_available_for_execution.0",
        ),
        (
            "proxy_url over 2048",
            custom(json!({"proxy_config": {"proxy_url": url_of(2049)}})).await,
            "auth_config.proxy_config.proxy_url",
        ),
        (
            "proxy_auth_key over 8 KiB",
            custom(json!({"proxy_config": {"proxy_url": "https://p.example.com", "proxy_auth_key": long(8193)}})).await,
            "auth_config.proxy_config.proxy_auth_key",
        ),
        (
            "PATCH restrict_to_following_tools with NUL",
            patch_config(json!({"type": "custom", "restrict_to_following_tools": [NUL]})).await,
            "restrict_to_following_tools.0",
        ),
        ("PATCH name with NUL", patch_config(json!({"type": "custom", "name": NUL})).await, "name"),
        ("NUL in custom MCP allowed_tools", custom_server(json!([NUL])).await, "allowed_tools.0"),
        ("custom MCP allowed_tools over 500", custom_server(json!(items(501, 4))).await, "allowed_tools"),
        ("a custom MCP allowed tool over 256", custom_server(json!([long(257)])).await, "allowed_tools.0"),
        (
            "an MCP server's auth_config_ids over 100",
            post("/api/v3/mcp/servers", json!({"name": "Too many", "auth_config_ids": items(101, 3)})).await,
            "auth_config_ids",
        ),
        ("connection.callback_url over 2048", account(json!(url_of(2049))).await, "connection.callback_url"),
        (
            "NUL in connection.user_id",
            post("/api/v3/connected_accounts", api_key_connection(&github, NUL, "k")).await,
            "connection.user_id",
        ),
        (
            "link callback_url over 2048",
            post(
                "/api/v3/connected_accounts/link",
                json!({"auth_config_id": github, "user_id": "u", "callback_url": url_of(2049)}),
            )
            .await,
            "callback_url",
        ),
        (
            "generate with over 100 user_ids",
            post("/api/v3/mcp/servers/generate", json!({"mcp_server_id": server, "user_ids": items(101, 3)})).await,
            "user_ids",
        ),
        (
            "generate with a connected_account_id over 256",
            post(
                "/api/v3/mcp/servers/generate",
                json!({"mcp_server_id": server, "connected_account_ids": [long(257)]}),
            )
            .await,
            "connected_account_ids.0",
        ),
        (
            "instance user_id with NUL",
            post("/api/v3/mcp/servers/00000000-0000-0000-0000-000000000000/instances", json!({"user_id": NUL})).await,
            "user_id",
        ),
        (
            "search over 256",
            app.composio(Method::GET, &format!("/api/v3/auth_configs?search={}", long(257)), None).await,
            "search",
        ),
        (
            "over 100 user_ids in a filter",
            app.composio(
                Method::GET,
                &format!("/api/v3/connected_accounts?user_ids={}", items(101, 2).join(",")),
                None,
            )
            .await,
            "user_ids",
        ),
        (
            "NUL in a filter",
            app.composio(Method::GET, "/api/v3/connected_accounts?user_ids=a%00b", None).await,
            "user_ids",
        ),
        // base64 of "9223372036854775807-20": its offset overflowed.
        (
            "a cursor beyond the last page number",
            app.composio(Method::GET, "/api/v3/auth_configs?cursor=OTIyMzM3MjAzNjg1NDc3NTgwNy0yMA%3D%3D", None).await,
            "cursor",
        ),
        ("NUL in a path", app.composio(Method::GET, "/api/v3.1/auth_configs/%00", None).await, "path"),
    ];
    for (what, response, field) in cases {
        composio_refusal(what, response, field).await;
    }
    assert_eq!(app.event_count().await, before, "a refused request appends nothing");

    // Exactly at the limits: accepted.
    json_of(custom(json!({"name": long(128), "restrict_to_following_tools": items(500, 256)})).await, 201).await;
    json_of(custom_server(json!(items(500, 256))).await, 201).await;
    json_of(account(json!(url_of(2048))).await, 201).await;
}

#[tokio::test]
async fn audit_parameters_are_bounded_and_nul_is_a_422() {
    let app = TestApp::spawn().await;
    let server = app.register_server("Audited").await;
    let refusal = |path: String| {
        let app = &app;
        async move {
            let body = json_of(app.call(Method::GET, &path, None).await, 422).await;
            body["error"].as_str().unwrap().to_owned()
        }
    };
    // The probe: a NUL aggregate id answered 500.
    assert!(refusal("/api/v1/audit/server/%00".into()).await.starts_with("path: "));
    assert!(refusal(format!("/api/v1/audit/server/{}", long(257))).await.starts_with("id: "));
    assert!(
        refusal(format!("/api/v1/audit/server/{server}?type={}", items(101, 2).join(","))).await.starts_with("type: ")
    );
    assert!(refusal(format!("/api/v1/audit/server/{server}?as_of={}", long(100))).await.starts_with("as_of: "));
    assert!(refusal(format!("/api/v1/audit/server/{server}?since=%00")).await.starts_with("since: "));
    json_of(app.call(Method::GET, &format!("/api/v1/audit/server/{server}"), None).await, 200).await;
}

/// POST `body` with this content type (none when `None`) and the app's key in both headers
/// the surfaces read.
async fn send_typed(app: &TestApp, path: &str, content_type: Option<&str>) -> reqwest::Response {
    let mut request = app
        .http
        .post(format!("{}{path}", app.base_url))
        .bearer_auth(&app.key)
        .header("x-api-key", &app.key)
        .body(r#"{"name": "x"}"#);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_body_that_is_not_json_typed_gets_415_in_every_surfaces_format() {
    let app = TestApp::spawn().await;
    let before = app.event_count().await;
    let content_types = [
        Some("text/plain"),
        Some("application/x-unknown"),
        Some("foo"),
        Some(""),
        Some("multipart/form-data"),
        Some("application/json; charset=latin1"),
        None,
    ];
    for content_type in content_types {
        let what = format!("{content_type:?}");
        // Klavis answered 422 to text/plain.
        let klavis = json_of(send_typed(&app, "/mcp-server/instance/create", content_type).await, 415).await;
        assert!(klavis["detail"].as_str().is_some_and(|d| !d.is_empty()), "Klavis {what}: {klavis}");
        let white_label = json_of(send_typed(&app, "/white-labeling/create", content_type).await, 415).await;
        assert!(white_label["detail"].is_string(), "Klavis {what}: {white_label}");
        let gaia = json_of(send_typed(&app, "/api/mcp/servers", content_type).await, 415).await;
        assert_eq!(
            (gaia["success"].clone(), gaia["error"].clone()),
            (json!(false), json!("unsupported_media_type")),
            "GAIA {what}"
        );
        for path in ["/api/v3/auth_configs", "/api/v3.1/connected_accounts/link"] {
            let response = send_typed(&app, path, content_type).await;
            composio_error(response, 415, "Request_UnsupportedMediaType").await;
        }
    }
    assert_eq!(app.event_count().await, before);
}

/// Every string leaf of `value`, by its path.
fn string_leaves(value: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Value::String(_) => out.push(path.clone()),
        Value::Array(items) => items.iter().enumerate().for_each(|(i, item)| {
            path.push(i.to_string());
            string_leaves(item, path, out);
            path.pop();
        }),
        Value::Object(entries) => entries.iter().for_each(|(key, item)| {
            path.push(key.clone());
            string_leaves(item, path, out);
            path.pop();
        }),
        _ => {}
    }
}

fn leaf_mut<'a>(value: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(value, |v, key| match v {
        Value::Array(items) => &mut items[key.parse::<usize>().unwrap()],
        other => &mut other[key.as_str()],
    })
}

/// The probe's defect 5, swept: a NUL in any string of any body, on every surface, is a 4xx
/// naming the field (never the 500 Postgres's refusal became), and appends nothing.
#[tokio::test]
async fn nul_in_any_string_of_any_body_is_a_4xx_naming_the_field() {
    let app = TestApp::spawn().await;
    let server = app.register_server("Swept").await;
    let github = api_key_auth_config(&app, "github").await;
    let instance = json_of(
        app.call(Method::POST, "/mcp-server/instance/create", Some(json!({"serverName": "Gmail", "userId": "u"})))
            .await,
        200,
    )
    .await["instanceId"]
        .as_str()
        .unwrap()
        .to_owned();
    let composio_server = mcp_server(&app, "Swept two", &[&github]).await;
    let gaia = json!({
        "projectId": app.project_id.to_string(), "name": "N", "transportType": "http", "description": "d",
        "url": "https://mcp.example.com/mcp", "connectionType": "proxy", "args": "a", "env": {"K": "v"},
        "customHeaders": [{"name": "X-A", "value": "v"}], "oauthClientId": "c", "oauthClientSecret": "s",
        "oauthScope": "s", "proxyUrl": "https://p.example.com", "proxyAuthToken": "t", "proxyAuthHeader": "X-P",
    });
    let oauth_config = json!({"toolkit": {"slug": "github"}, "auth_config": {"type": "use_custom_auth",
        "authScheme": "OAUTH2", "name": "n", "credentials": {"client_id": "c", "client_secret": "s", "scopes": ["a"]},
        "proxy_config": {"proxy_url": "https://p.example.com", "proxy_auth_key": "k"},
        "tool_access_config": {"tools_for_connected_account_creation": ["t"], "tools_available_for_execution": ["t"]},
        "restrict_to_following_tools": ["t"]}});
    let bodies: Vec<(&str, Method, String, Value)> = vec![
        ("bearer", Method::POST, "/api/mcp/servers".into(), gaia.clone()),
        ("bearer", Method::PATCH, format!("/api/mcp/servers/{server}"), gaia),
        (
            "bearer",
            Method::POST,
            "/mcp-server/instance/create".into(),
            json!({"serverName": "Gmail", "userId": "u2", "platformName": "p"}),
        ),
        (
            "bearer",
            Method::POST,
            "/mcp-server/instance/set-auth".into(),
            json!({"instanceId": instance, "authData": {"token": "t", "api_key": "k"}}),
        ),
        (
            "bearer",
            Method::POST,
            "/mcp-server/instance/set-auth".into(),
            json!({"instanceId": instance, "authData": {"data": {"a": "b", "c": ["d"]}}}),
        ),
        (
            "bearer",
            Method::POST,
            "/user/set-auth".into(),
            json!({"userId": "u", "serverName": "Gmail", "authData": {"token": "t"}}),
        ),
        (
            "bearer",
            Method::POST,
            "/white-labeling/create".into(),
            json!({"client_id": "c", "client_secret": "s", "server_name": "Gmail",
            "callback_url": "https://a.example.com/cb", "account_id": "a", "authorize_url": "https://a.example.com/auth",
            "token_url": "https://a.example.com/token", "scopes": ["x"]}),
        ),
        ("key", Method::POST, "/api/v3/auth_configs".into(), oauth_config),
        (
            "key",
            Method::PATCH,
            format!("/api/v3/auth_configs/{github}"),
            json!({"type": "custom", "name": "n",
            "credentials": {"generic_api_key": "k"}, "restrict_to_following_tools": ["t"],
            "proxy_config": {"proxy_url": "https://p.example.com"}}),
        ),
        (
            "key",
            Method::POST,
            "/api/v3/connected_accounts".into(),
            json!({"auth_config": {"id": github}, "connection": {"user_id": "u",
            "callback_url": "https://a.example.com/cb", "state": {"authScheme": "API_KEY", "val": {"api_key": "k"}}}}),
        ),
        (
            "key",
            Method::POST,
            "/api/v3/connected_accounts/link".into(),
            json!({"auth_config_id": github, "user_id": "u", "callback_url": "https://a.example.com/cb"}),
        ),
        (
            "key",
            Method::POST,
            "/api/v3/mcp/servers".into(),
            json!({"name": "Other", "auth_config_ids": [github], "allowed_tools": ["t"], "no_auth_apps": ["exa"]}),
        ),
        (
            "key",
            Method::POST,
            "/api/v3/mcp/servers/custom".into(),
            json!({"name": "Other", "toolkits": ["github"], "auth_config_ids": [github], "allowed_tools": ["t"], "custom_tools": ["t"]}),
        ),
        (
            "key",
            Method::PATCH,
            format!("/api/v3/mcp/{composio_server}"),
            json!({"name": "Renamed", "toolkits": ["github"], "allowed_tools": ["t"], "auth_config_ids": [github]}),
        ),
        (
            "key",
            Method::POST,
            "/api/v3/mcp/servers/generate".into(),
            json!({"mcp_server_id": composio_server, "user_ids": ["u"], "connected_account_ids": ["ca_x"]}),
        ),
        ("key", Method::POST, format!("/api/v3/mcp/servers/{composio_server}/instances"), json!({"user_id": "u"})),
    ];
    let before = app.event_count().await;
    for (auth, method, path, body) in bodies {
        let mut leaves = Vec::new();
        string_leaves(&body, &mut Vec::new(), &mut leaves);
        for leaf in leaves {
            let mut probe = body.clone();
            *leaf_mut(&mut probe, &leaf) = json!(NUL);
            let response = match auth {
                "bearer" => app.call(method.clone(), &path, Some(probe)).await,
                _ => app.composio(method.clone(), &path, Some(probe)).await,
            };
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let what = format!("{method} {path} with NUL at {}", leaf.join("."));
            assert!(status == 400 || status == 422, "{what}: {status} {text}");
            let named = leaf.iter().rev().find(|s| s.parse::<usize>().is_err()).unwrap();
            assert!(text.contains(named.as_str()), "{what}: the field is named: {text}");
        }
    }
    assert_eq!(app.event_count().await, before, "a refused request appends nothing");
}
