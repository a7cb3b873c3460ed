//! DESIGN invariant 8: secrets never leave in clear, and deleting a credential destroys its
//! key. Runs the real binary so that its whole log output can be searched.

use crate::support::{ServeProcess, TestDatabase, process::binary};
use events::ServerEvent;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use services::secrets::{MasterKey, OpenError, Vault};
use std::process::Command;

/// Runs a CLI command and returns its stdout, which must be a single line.
fn cli(database_url: &str, args: &[&str]) -> String {
    let output = Command::new(binary()).args(args).env("DATABASE_URL", database_url).output().unwrap();
    assert!(output.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?} must print one line alone on stdout, printed {stdout:?}");
    lines[0].to_owned()
}

fn rand_digit() -> u8 {
    (uuid::Uuid::new_v4().as_bytes()[0]) % 10
}

/// Every table's rows as text, for a search.
async fn all_rows(pool: &sqlx::PgPool, table: &str) -> String {
    let rows: Vec<String> =
        sqlx::query_scalar(&format!("SELECT to_jsonb(t)::text FROM {table} t")).fetch_all(pool).await.unwrap();
    rows.join("\n")
}

#[tokio::test]
async fn no_secret_appears_in_events_views_responses_or_logs_and_deletion_shreds_it() {
    // Arrange: the real binary, logging at debug level.
    let db = TestDatabase::create().await;
    let master = MasterKey::generate_base64();
    let project = cli(&db.url, &["project", "create", "Secrets"]);
    let key = cli(&db.url, &["key", "create", "--project", &project, "--name", "test"]);
    assert!(key.starts_with("mcpp_"), "{key}");
    let serve =
        ServeProcess::start(&[("DATABASE_URL", &db.url), ("PROVISIONER_MASTER_KEY", &master), ("RUST_LOG", "debug")]);
    let http = reqwest::Client::new();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let mut secrets: Vec<String> =
        ["env", "header", "oauth", "proxy", "env2", "header2", "oauth2", "proxy2", "misplaced-header", "misplaced-env"]
            .iter()
            .map(|kind| format!("{kind}-secret-{tag}"))
            .collect();
    // A numeric secret sent where a string belongs.
    let numeric_secret = 918_273_645_501_u64 + u64::from(rand_digit());
    secrets.push(numeric_secret.to_string());
    let mut responses = Vec::new();
    let mut call = async |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = http.request(method, format!("{}{path}", serve.base_url)).bearer_auth(&key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        responses.push(text.clone());
        (status, serde_json::from_str::<Value>(&text).unwrap())
    };

    // Act: register with every secret field, read it back, replace every secret, delete.
    let (status, created) = call(
        reqwest::Method::POST,
        "/api/mcp/servers",
        Some(json!({
            "projectId": project, "name": "Secretive", "transportType": "http", "url": "https://mcp.example.com",
            "env": {"API_KEY": secrets[0]},
            "customHeaders": [{"name": "X-Api-Key", "value": secrets[1]}],
            "oauthClientId": "client-id", "oauthClientSecret": secrets[2],
            "proxyUrl": "https://proxy.example.com", "proxyAuthToken": secrets[3],
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["serverId"].as_str().unwrap().to_owned();
    let server = &created["server"];
    assert_eq!(server["env"], json!({"API_KEY": "********"}));
    assert_eq!(server["customHeaders"], json!([{"name": "X-Api-Key", "value": "********", "enabled": true}]));
    assert_eq!(
        (server["oauthClientSecret"].clone(), server["hasOauthClientSecret"].clone()),
        (json!("********"), json!(true))
    );
    assert_eq!(
        (server["proxyAuthToken"].clone(), server["hasProxyAuthToken"].clone()),
        (json!("********"), json!(true))
    );
    call(reqwest::Method::GET, &format!("/api/mcp/servers/{id}"), None).await;
    call(reqwest::Method::GET, "/api/mcp/servers", None).await;
    // A refused request that carries a secret must not echo it either.
    call(
        reqwest::Method::PATCH,
        &format!("/api/mcp/servers/{id}"),
        Some(json!({"oauthClientSecret": secrets[6], "url": "nope"})),
    )
    .await;
    let (status, _) = call(
        reqwest::Method::PATCH,
        &format!("/api/mcp/servers/{id}"),
        Some(json!({
            "env": {"API_KEY": secrets[4]}, "customHeaders": [{"key": "X-Api-Key", "value": secrets[5]}],
            "oauthClientSecret": secrets[6], "proxyAuthToken": secrets[7],
        })),
    )
    .await;
    assert_eq!(status, 200);

    // The sealed secrets open with the master key while the server lives.
    let pool = db.pool().await;
    let vault = Vault::new(pool.clone(), MasterKey::from_base64(&master).unwrap());
    let payloads: Vec<Value> =
        sqlx::query_scalar("SELECT payload::jsonb FROM events WHERE aggregate_type = 'server' ORDER BY sequence")
            .fetch_all(&pool)
            .await
            .unwrap();
    let ServerEvent::ServerUpdated(updated) = serde_json::from_value(payloads[1].clone()).unwrap() else {
        panic!("{payloads:?}")
    };
    let sealed = updated.config.oauth_client_secret.expect("a sealed oauth secret");
    assert_eq!(vault.open(&sealed).await.unwrap().expose_secret(), secrets[6]);

    let (status, _) = call(reqwest::Method::DELETE, &format!("/api/mcp/servers/{id}"), None).await;
    assert_eq!(status, 200);

    // Assert: nowhere in clear.
    let mut haystacks = vec![("events", all_rows(&pool, "events").await), ("log output", serve.output())];
    for table in ["view_projects", "view_api_keys", "view_servers", "server_names", "feed_checkpoints"] {
        haystacks.push((table, all_rows(&pool, table).await));
    }
    haystacks.extend(responses.iter().map(|r| ("a response body", r.clone())));
    for (place, text) in &haystacks {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{secret} found in {place}");
        }
        assert!(!text.contains(&key[5..]), "the API key found in {place}");
    }
    assert!(serve.output().contains("request handled"), "the log was captured");

    // Deletion shredded the data key: the history stays, the secret is gone for good.
    assert!(matches!(vault.open(&sealed).await, Err(OpenError::Shredded)));
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM secret_keys").fetch_one(&pool).await.unwrap();
    assert_eq!(keys, 0);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
        .bind(&id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events, 3, "registered, updated, deleted: the history stays");
}

#[tokio::test]
async fn deleting_a_server_destroys_its_key_in_the_same_transaction_even_with_a_stuck_projector() {
    use crate::support::{TestApp, json_of};
    let app = TestApp::spawn_with(|s| s.read_your_writes_timeout = std::time::Duration::from_millis(300)).await;
    let mut body = app.http_server("Keyed");
    body["oauthClientSecret"] = json!("to be shredded");
    let id = json_of(app.call(reqwest::Method::POST, "/api/mcp/servers", Some(body)).await, 201).await["serverId"]
        .as_str()
        .unwrap()
        .to_owned();
    let keys = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM secret_keys").fetch_one(&app.pool).await.unwrap()
    };
    assert_eq!(keys().await, 1);
    // Stop the projector with an event it cannot apply.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('project', $1, 1, 'project.created', '1.0', '{\"ProjectCreated\": {\"bogus\": true}}', '{}')",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .execute(&app.pool)
    .await
    .unwrap();

    json_of(app.call(reqwest::Method::DELETE, &format!("/api/mcp/servers/{id}"), None).await, 200).await;

    assert_eq!(keys().await, 0, "the key went with the committed deletion, not later");
}

#[tokio::test]
async fn no_token_api_key_or_client_secret_appears_in_clear_through_the_klavis_surface() {
    use crate::support::oauth_provider::OAuthProvider;
    // Arrange: the real binary at debug level, and a local OAuth provider.
    let db = TestDatabase::create().await;
    let master = MasterKey::generate_base64();
    let project = cli(&db.url, &["project", "create", "Klavis secrets"]);
    let key = cli(&db.url, &["key", "create", "--project", &project]);
    let serve = ServeProcess::start(&[
        ("DATABASE_URL", &db.url),
        ("PROVISIONER_MASTER_KEY", &master),
        ("RUST_LOG", "debug"),
        ("PROVISIONER_OAUTH_ALLOW_LOOPBACK_HTTP", "true"),
    ]);
    let provider = OAuthProvider::start().await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let mut secrets = vec![provider.client_secret.clone()];
    secrets.extend(["token", "api-key", "data-token", "user-token"].iter().map(|k| format!("{k}-{tag}")));
    let mut listed = Vec::new();
    let call = async |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = http.request(method, format!("{}{path}", serve.base_url)).bearer_auth(&key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    };

    // Act: a white-label app, an OAuth round trip, every form of set-auth.
    let (status, body) = call(reqwest::Method::POST, "/white-labeling/create", Some(json!({
        "client_id": provider.client_id, "client_secret": provider.client_secret, "server_name": "Gmail",
        "authorize_url": format!("{}/authorize", provider.base_url), "token_url": format!("{}/token", provider.base_url),
    }))).await;
    assert_eq!(status, 200, "{body}");
    listed.push(body);
    let (_, body) =
        call(reqwest::Method::POST, "/mcp-server/instance/create", Some(json!({"serverName": "Gmail", "userId": "u"})))
            .await;
    let gmail = serde_json::from_str::<Value>(&body).unwrap()["instanceId"].as_str().unwrap().to_owned();
    listed.push(body);
    let authorize = format!("{}/oauth/gmail/authorize?instance_id={gmail}", serve.base_url);
    let to_provider = http.get(authorize).send().await.unwrap().headers()["location"].to_str().unwrap().to_owned();
    let callback = http.get(to_provider).send().await.unwrap().headers()["location"].to_str().unwrap().to_owned();
    let done = http.get(callback).send().await.unwrap();
    assert_eq!(done.status(), 200, "the success page");
    let (_, auth) = call(reqwest::Method::GET, &format!("/mcp-server/instance/{gmail}/auth"), None).await;
    let access_token =
        serde_json::from_str::<Value>(&auth).unwrap()["authData"]["access_token"].as_str().unwrap().to_owned();
    secrets.push(access_token);
    for (server, auth_data) in [
        ("Slack", json!({"token": secrets[1]})),
        ("Brave Search", json!({"api_key": secrets[2]})),
        ("Notion", json!({"data": {"access_token": secrets[3]}})),
    ] {
        let (_, body) = call(
            reqwest::Method::POST,
            "/mcp-server/instance/create",
            Some(json!({"serverName": server, "userId": "u"})),
        )
        .await;
        let id = serde_json::from_str::<Value>(&body).unwrap()["instanceId"].as_str().unwrap().to_owned();
        let (status, body) = call(
            reqwest::Method::POST,
            "/mcp-server/instance/set-auth",
            Some(json!({"instanceId": id, "authData": auth_data})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        listed.push(body);
        listed.push(call(reqwest::Method::GET, &format!("/mcp-server/instance/{id}"), None).await.1);
    }
    let user_auth = json!({"userId": "u", "serverName": "GitHub", "authData": {"token": secrets[4]}});
    listed.push(call(reqwest::Method::POST, "/user/set-auth", Some(user_auth)).await.1);
    for path in ["/user/u/integrations", "/user/", "/user/u", "/white-labeling/get/".to_owned().as_str()] {
        listed.push(call(reqwest::Method::GET, path, None).await.1);
    }
    listed.push(call(reqwest::Method::GET, &format!("/white-labeling/get/{}", provider.client_id), None).await.1);

    // Assert: in clear nowhere but the auth endpoints that exist to return them.
    let pool = db.pool().await;
    let mut haystacks = vec![("events", all_rows(&pool, "events").await), ("log output", serve.output())];
    for table in ["view_connections", "view_users", "view_oauth_apps", "feed_checkpoints"] {
        haystacks.push((table, all_rows(&pool, table).await));
    }
    haystacks.extend(listed.iter().map(|r| ("a response", r.clone())));
    for (place, text) in &haystacks {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{secret} found in {place}");
        }
    }
}
