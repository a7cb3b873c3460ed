//! Issue 15, item 4: Composio v3.1 account updates. `PATCH /api/v3.1/connected_accounts/{id}`
//! changes the alias and fields of a key, token or basic credential (`null` removes one);
//! `alias` is also taken on create and link, unique per (user, toolkit) within the project
//! under any concurrency (code 600 with Composio's wording), shown by GET and lists; bad input
//! is a 400 naming the field, and changes nothing; another project's account is 404.

use crate::support::composio::{api_key_auth_config, api_key_connection, composio_error};
use crate::support::{TestApp, json_of};
use reqwest::Method;
use serde_json::{Value, json};

fn with_alias(mut body: Value, alias: &str) -> Value {
    body["connection"]["alias"] = json!(alias);
    body
}

async fn create(app: &TestApp, body: Value) -> reqwest::Response {
    app.composio(Method::POST, "/api/v3/connected_accounts", Some(body)).await
}

async fn created_id(app: &TestApp, body: Value) -> String {
    json_of(create(app, body).await, 201).await["id"].as_str().unwrap().to_owned()
}

async fn patch(app: &TestApp, id: &str, body: Value) -> reqwest::Response {
    app.composio(Method::PATCH, &format!("/api/v3.1/connected_accounts/{id}"), Some(body)).await
}

async fn get(app: &TestApp, id: &str) -> Value {
    json_of(app.composio(Method::GET, &format!("/api/v3.1/connected_accounts/{id}"), None).await, 200).await
}

async fn oauth_config(app: &TestApp, toolkit: &str) -> String {
    let body = json!({"toolkit": {"slug": toolkit}, "auth_config": {"type": "use_custom_auth", "authScheme": "OAUTH2",
        "name": format!("{toolkit} oauth"), "credentials": {"client_id": "cid", "client_secret": "csecret"}}});
    let created = json_of(app.composio(Method::POST, "/api/v3/auth_configs", Some(body)).await, 201).await;
    created["auth_config"]["id"].as_str().unwrap().to_owned()
}

/// Composio's answer to a taken alias: 400, code 600, its own words.
async fn alias_taken(response: reqwest::Response, alias: &str) {
    let error = composio_error(response, 400, "ConnectedAccount_BadRequest").await;
    assert_eq!(error["code"], 600, "{error}");
    assert_eq!(error["message"], format!("Alias \"{alias}\" is already in use by another connection for this entity"));
}

#[tokio::test]
async fn an_alias_is_unique_per_user_and_toolkit_and_shown_by_get_and_lists() {
    let app = TestApp::spawn().await;
    let github = api_key_auth_config(&app, "github").await;
    let work = created_id(&app, with_alias(api_key_connection(&github, "alice", "k1"), "work")).await;
    assert_eq!(get(&app, &work).await["alias"], "work");

    // Several accounts per user and auth config stay allowed; only their aliases must differ.
    let plain = created_id(&app, api_key_connection(&github, "alice", "k2")).await;
    assert_eq!(get(&app, &plain).await["alias"], Value::Null);
    let events = app.event_count().await;
    alias_taken(create(&app, with_alias(api_key_connection(&github, "alice", "k3"), "work")).await, "work").await;
    assert_eq!(app.event_count().await, events, "a refused create records nothing");
    // The same alias for another user, and for the same user on another toolkit, is free.
    created_id(&app, with_alias(api_key_connection(&github, "bob", "k4"), "work")).await;
    let gmail = oauth_config(&app, "gmail").await;
    let link = json!({"auth_config_id": gmail, "user_id": "alice", "alias": "work"});
    let linked = json_of(app.composio(Method::POST, "/api/v3/connected_accounts/link", Some(link.clone())).await, 201)
        .await["connected_account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(get(&app, &linked).await["alias"], "work");
    // A link takes the rule too, on its own toolkit.
    alias_taken(app.composio(Method::POST, "/api/v3/connected_accounts/link", Some(link)).await, "work").await;

    // PATCH: set, refused when taken, cleared with "", and the alias is free again.
    let changed = json_of(patch(&app, &plain, json!({"alias": "home"})).await, 200).await;
    assert_eq!(changed, json!({"id": plain, "status": "ACTIVE", "success": true}));
    alias_taken(patch(&app, &plain, json!({"alias": "work"})).await, "work").await;
    let list = json_of(app.composio(Method::GET, "/api/v3/connected_accounts?user_ids=alice", None).await, 200).await;
    let aliases: Vec<(String, Value)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap().to_owned(), a["alias"].clone()))
        .collect();
    assert!(aliases.contains(&(plain.clone(), json!("home"))) && aliases.contains(&(work.clone(), json!("work"))));
    json_of(patch(&app, &work, json!({"alias": ""})).await, 200).await;
    assert_eq!(get(&app, &work).await["alias"], Value::Null);
    json_of(patch(&app, &plain, json!({"alias": "work"})).await, 200).await;
    // Setting the alias it has records nothing; a deleted account frees its alias.
    let events = app.event_count().await;
    json_of(patch(&app, &plain, json!({"alias": "work"})).await, 200).await;
    assert_eq!(app.event_count().await, events);
    json_of(app.composio(Method::DELETE, &format!("/api/v3/connected_accounts/{plain}"), None).await, 200).await;
    created_id(&app, with_alias(api_key_connection(&github, "alice", "k5"), "work")).await;
}

#[tokio::test]
async fn concurrent_creates_and_updates_with_one_alias_give_exactly_one_success() {
    let app = TestApp::spawn().await;
    let github = api_key_auth_config(&app, "github").await;
    const N: usize = 8;
    let creates =
        (0..N).map(|i| create(&app, with_alias(api_key_connection(&github, "alice", &format!("k{i}")), "race")));
    let statuses: Vec<u16> = futures::future::join_all(creates).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 400).count(), N - 1, "{statuses:?}");

    let mut ids = Vec::new();
    for i in 0..N {
        ids.push(created_id(&app, api_key_connection(&github, "bob", &format!("b{i}"))).await);
    }
    let patches = ids.iter().map(|id| patch(&app, id, json!({"alias": "race"})));
    let statuses: Vec<u16> = futures::future::join_all(patches).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    let list = json_of(app.composio(Method::GET, "/api/v3/connected_accounts?user_ids=bob", None).await, 200).await;
    let named = list["items"].as_array().unwrap().iter().filter(|a| a["alias"] == "race").count();
    assert_eq!(named, 1, "{list}");
}

#[tokio::test]
async fn a_credential_update_sets_and_removes_fields_keeps_the_others_and_is_sealed() {
    let app = TestApp::spawn().await;
    let github = api_key_auth_config(&app, "github").await;
    let mut body = api_key_connection(&github, "alice", "old-key-value");
    body["connection"]["state"]["val"]["api_key_prefix"] = json!("Token");
    let id = created_id(&app, body).await;
    let update = json!({"alias": "main", "connection": {"state": {"authScheme": "API_KEY",
        "val": {"api_key": "new-secret-key-value", "api_key_prefix": null}}}});
    let answer = json_of(patch(&app, &id, update).await, 200).await;
    assert_eq!(answer, json!({"id": id, "status": "ACTIVE", "success": true}));
    assert!(!answer.to_string().contains("new-secret-key-value"));

    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT event_type, payload::text FROM events WHERE aggregate_id = $1 ORDER BY sequence")
            .bind(&id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let types: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["connected_account.activated", "connected_account.credential_updated", "connected_account.alias_changed"]
    );
    let (_, updated) = &rows[1];
    assert!(!updated.contains("new-secret-key-value") && !updated.contains("old-key-value"), "{updated}");
    let updated: Value = serde_json::from_str(updated).unwrap();
    let updated = &updated["ConnectedAccountCredentialUpdated"];
    assert!(updated["credential"]["ciphertext"].is_string(), "{updated}");
    assert_eq!(updated["set_fields"], json!(["api_key"]));
    assert_eq!(updated["removed_fields"], json!(["api_key_prefix"]));
    let account = get(&app, &id).await;
    assert!(!account.to_string().contains("new-secret-key-value"), "{account}");
    assert_eq!(account["state"]["val"], json!({"status": "ACTIVE"}));

    // A disabled account is updated and stays disabled.
    let disable = json!({"enabled": false});
    let path = format!("/api/v3/connected_accounts/{id}/status");
    json_of(app.composio(Method::PATCH, &path, Some(disable)).await, 200).await;
    let again = json!({"connection": {"state": {"authScheme": "API_KEY", "val": {"region": "eu"}}}});
    assert_eq!(json_of(patch(&app, &id, again).await, 200).await["status"], "INACTIVE");
}

#[tokio::test]
async fn bad_updates_are_400_naming_the_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let github = api_key_auth_config(&app, "github").await;
    let id = created_id(&app, api_key_connection(&github, "alice", "k1")).await;
    let events = app.event_count().await;
    let state = |val: Value| json!({"connection": {"state": {"authScheme": "API_KEY", "val": val}}});
    let cases = [
        (json!({"alias": "x", "colour": "red"}), "colour"),
        (json!({"connection": {"state": {"authScheme": "API_KEY", "val": {}}, "extra": 1}}), "connection.extra"),
        (json!({"connection": {"state": {"authScheme": "API_KEY", "val": {}, "x": 1}}}), "connection.state.x"),
        (json!({"alias": 5}), "alias"),
        (json!({"alias": "a\u{0}b"}), "alias"),
        (json!({"alias": "x".repeat(129)}), "alias"),
        (json!({"alias": "two\nlines"}), "alias"),
        (state(json!({"api_key": 5})), "connection.state.val.api_key"),
        (state(json!({"api_key": "a\u{0}b"})), "connection.state.val.api_key"),
        (json!({"connection": {"state": {"authScheme": "OAUTH2", "val": {}}}}), "connection.state.authScheme"),
        (json!({"connection": {"state": {"val": {}}}}), "connection.state.authScheme"),
        (json!({"connection": 3}), "connection"),
    ];
    for (body, field) in cases {
        let error = composio_error(patch(&app, &id, body.clone()).await, 400, "Request_ValidationError").await;
        let errors = error["errors"].to_string();
        assert!(errors.contains(&format!("\"{field}: ")), "{body} should name {field}: {error}");
    }
    // The account's own scheme, and the fields it needs, are kept.
    let mismatch = json!({"connection": {"state": {"authScheme": "BEARER_TOKEN", "val": {"token": "t"}}}});
    let error = composio_error(patch(&app, &id, mismatch).await, 400, "ConnectedAccount_BadRequest").await;
    assert!(error["errors"][0].as_str().unwrap().starts_with("connection.state.authScheme: "), "{error}");
    let error = composio_error(
        patch(&app, &id, state(json!({"api_key": null}))).await,
        400,
        "ConnectedAccount_MissingRequiredFields",
    )
    .await;
    assert_eq!(error["code"], 612);
    assert_eq!(app.event_count().await, events, "a refused update records nothing");
    assert_eq!(get(&app, &id).await["alias"], Value::Null);

    // A pending OAuth account has no credential to update.
    let gmail = oauth_config(&app, "gmail").await;
    let link = json!({"auth_config_id": gmail, "user_id": "alice"});
    let linked = json_of(app.composio(Method::POST, "/api/v3/connected_accounts/link", Some(link)).await, 201).await;
    let pending = linked["connected_account_id"].as_str().unwrap();
    let bearer = json!({"connection": {"state": {"authScheme": "BEARER_TOKEN", "val": {"token": "t"}}}});
    composio_error(patch(&app, pending, bearer).await, 400, "ConnectedAccount_BadRequest").await;
    // Bad aliases on create and link are named too.
    let long = "x".repeat(129);
    let error = composio_error(
        create(&app, with_alias(api_key_connection(&github, "alice", "k"), &long)).await,
        400,
        "Request_ValidationError",
    )
    .await;
    assert!(error["errors"][0].as_str().unwrap().starts_with("connection.alias: "), "{error}");
    let link = json!({"auth_config_id": gmail, "user_id": "alice", "alias": "a\tb"});
    let error = composio_error(
        app.composio(Method::POST, "/api/v3/connected_accounts/link", Some(link)).await,
        400,
        "Request_ValidationError",
    )
    .await;
    assert!(error["errors"][0].as_str().unwrap().starts_with("alias: "), "{error}");
}

#[tokio::test]
async fn another_projects_or_an_unknown_account_is_404_and_unchanged() {
    let app = TestApp::spawn().await;
    let github = api_key_auth_config(&app, "github").await;
    let id = created_id(&app, with_alias(api_key_connection(&github, "alice", "k1"), "mine")).await;
    let (_, other_key) = app.new_project("other").await;
    let events = app.event_count().await;
    let body = json!({"alias": "theirs", "connection": {"state": {"authScheme": "API_KEY", "val": {"api_key": "x"}}}});
    for path in [format!("/api/v3.1/connected_accounts/{id}"), format!("/api/v3/connected_accounts/{id}")] {
        let response = app.composio_as(&other_key, Method::PATCH, &path, Some(body.clone())).await;
        composio_error(response, 404, "ConnectedAccount_ResourceNotFound").await;
    }
    composio_error(
        patch(&app, "ca_000000000000", json!({"alias": "x"})).await,
        404,
        "ConnectedAccount_ResourceNotFound",
    )
    .await;
    assert_eq!(app.event_count().await, events);
    assert_eq!(get(&app, &id).await["alias"], "mine");
}

#[tokio::test]
async fn composios_own_client_creates_patches_and_reads_an_aliased_account() {
    let app = TestApp::spawn().await;
    let github = api_key_auth_config(&app, "github").await;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("upstream/composio_sdk_accounts.py");
    let output = tokio::process::Command::new(crate::support::mcp::python())
        .arg(script)
        .args([app.base_url.as_str(), app.key.as_str(), github.as_str()])
        .output()
        .await
        .expect("the Composio SDK script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| panic!("no JSON: {stdout} {}", String::from_utf8_lossy(&output.stderr)));
    let id = report["created"].as_str().unwrap();
    assert_eq!(report["patched"], json!({"id": id, "status": "ACTIVE", "success": true}), "{report}");
    assert_eq!(report["alias"], "sdk-renamed", "{report}");
    assert_eq!(report["listed_aliases"].as_array().unwrap().iter().filter(|a| **a == "sdk-renamed").count(), 1);
    assert_eq!(report["duplicate"]["status"], 400, "{report}");
    assert_eq!(report["duplicate"]["body"]["error"]["code"], 600, "{report}");
}
