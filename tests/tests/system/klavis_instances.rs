//! The Klavis instance API: the whole flow, idempotent creates, URLs, legacy paths.

use crate::support::{TestApp, json_of};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

pub async fn create(app: &TestApp, server: &str, user: &str) -> Value {
    let body = json!({"serverName": server, "userId": user});
    json_of(app.call(Method::POST, "/mcp-server/instance/create", Some(body)).await, 200).await
}

#[tokio::test]
async fn the_whole_flow_from_create_to_delete() {
    let app = TestApp::spawn().await;

    // create
    let created = create(&app, "Gmail", "user-1").await;
    let id = created["instanceId"].as_str().unwrap().to_owned();
    assert_eq!(created["serverUrl"], format!("{}/mcp/?instance_id={id}", app.base_url));
    assert_eq!(created["oauthUrl"], format!("{}/oauth/gmail/authorize?instance_id={id}", app.base_url));

    // get: not authenticated yet, OAuth URL offered
    let instance = json_of(app.call(Method::GET, &format!("/mcp-server/instance/{id}"), None).await, 200).await;
    assert_eq!(instance["isAuthenticated"], false);
    assert_eq!(instance["authNeeded"], true);
    assert_eq!(instance["serverName"], "Gmail");
    assert_eq!(instance["externalUserId"], "user-1");
    assert_eq!(instance["oauthUrl"], created["oauthUrl"]);
    let auth = json_of(app.call(Method::GET, &format!("/mcp-server/instance/{id}/auth"), None).await, 200).await;
    assert_eq!(auth["success"], false, "get-auth answers 200 success:false until authenticated");

    // set-auth, then get-auth returns the data
    let data = json!({"access_token": "ya29.token", "refresh_token": "1//refresh", "token_type": "Bearer"});
    let set = json!({"instanceId": id, "authData": {"data": data}});
    json_of(app.call(Method::POST, "/mcp-server/instance/set-auth", Some(set)).await, 200).await;
    let instance = json_of(app.call(Method::GET, &format!("/mcp-server/instance/{id}"), None).await, 200).await;
    assert_eq!(instance["isAuthenticated"], true);
    let auth = json_of(app.call(Method::GET, &format!("/mcp-server/instance/{id}/auth"), None).await, 200).await;
    assert_eq!(auth, json!({"success": true, "authData": data, "error": null}));

    // delete-auth
    json_of(app.call(Method::DELETE, &format!("/mcp-server/instance/{id}/auth"), None).await, 200).await;
    let auth = json_of(app.call(Method::GET, &format!("/mcp-server/instance/{id}/auth"), None).await, 200).await;
    assert_eq!(auth["success"], false);
    assert_eq!(app.secret_key_count().await, 0, "the credential's key went with it");

    // delete, then 404
    let deleted = json_of(app.call(Method::DELETE, &format!("/mcp-server/instance/{id}"), None).await, 200).await;
    assert_eq!(deleted["success"], true);
    let gone = json_of(app.call(Method::GET, &format!("/mcp-server/instance/{id}"), None).await, 404).await;
    assert!(gone["detail"].is_string(), "{gone}");
}

#[tokio::test]
async fn thirty_two_concurrent_creates_yield_one_instance_and_one_event() {
    let app = TestApp::spawn().await;
    let creates = (0..32).map(|_| create(&app, "Slack", "racer"));

    let ids: Vec<String> =
        join_all(creates).await.iter().map(|c| c["instanceId"].as_str().unwrap().to_owned()).collect();

    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let created: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'instance.created'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(created, 1);
}

#[tokio::test]
async fn a_repeat_create_returns_the_same_id_and_only_the_url_form_follows_the_connection_type() {
    let app = TestApp::spawn().await;
    let first = create(&app, "GOOGLE_CALENDAR", "u").await;
    let body = json!({"serverName": "google calendar", "userId": "u", "connectionType": "SSE", "isReadOnly": true});
    let again = json_of(app.call(Method::POST, "/mcp-server/instance/create", Some(body)).await, 200).await;
    let id = first["instanceId"].as_str().unwrap();
    assert_eq!(again["instanceId"], id);
    assert_eq!(again["serverUrl"], format!("{}/sse?instance_id={id}", app.base_url));
    let patched =
        json_of(app.call(Method::PATCH, &format!("/mcp-server/instance/{id}"), Some(json!({}))).await, 200).await;
    assert_eq!(patched["isReadOnly"], false, "the repeat create did not change the first one's settings");
}

#[tokio::test]
async fn a_create_after_a_delete_gets_a_new_id() {
    let app = TestApp::spawn().await;
    let first = create(&app, "Notion", "u").await["instanceId"].as_str().unwrap().to_owned();
    json_of(app.call(Method::DELETE, &format!("/mcp-server/instance/{first}"), None).await, 200).await;
    let second = create(&app, "Notion", "u").await["instanceId"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    json_of(app.call(Method::GET, &format!("/mcp-server/instance/{first}"), None).await, 404).await;
}

#[tokio::test]
async fn servers_without_oauth_have_no_oauth_url_and_api_keys_authenticate_them() {
    let app = TestApp::spawn().await;
    let created = create(&app, "Brave Search", "u").await;
    assert_eq!(created["oauthUrl"], Value::Null);
    let id = created["instanceId"].as_str().unwrap();
    let set = json!({"instanceId": id, "authData": {"api_key": "BSA-key"}});
    json_of(app.call(Method::POST, "/mcp-server/instance/set-auth", Some(set)).await, 200).await;
    let auth = json_of(app.call(Method::GET, &format!("/mcp-server/instance/{id}/auth"), None).await, 200).await;
    assert_eq!(auth["authData"], json!({"api_key": "BSA-key"}));
    let keyless = create(&app, "Hacker News", "u").await;
    let got = json_of(
        app.call(Method::GET, &format!("/mcp-server/instance/{}", keyless["instanceId"].as_str().unwrap()), None).await,
        200,
    )
    .await;
    assert_eq!(got["authNeeded"], false);
}

#[tokio::test]
async fn a_patch_changes_read_only_and_self_hosted_creates_are_idempotent() {
    let app = TestApp::spawn().await;
    let id = create(&app, "GitHub", "u").await["instanceId"].as_str().unwrap().to_owned();
    let patched = json_of(
        app.call(Method::PATCH, &format!("/mcp-server/instance/{id}"), Some(json!({"isReadOnly": true}))).await,
        200,
    )
    .await;
    assert_eq!(patched, json!({"instanceId": id, "isReadOnly": true, "message": "Instance updated successfully"}));

    let body = json!({"serverName": "Linear", "userId": "local_mcp_server"});
    let first =
        json_of(app.call(Method::POST, "/mcp-server/self-hosted/instance/create", Some(body.clone())).await, 200).await;
    let second =
        json_of(app.call(Method::POST, "/mcp-server/self-hosted/instance/create", Some(body)).await, 200).await;
    assert_eq!(first["instanceId"], second["instanceId"]);
    assert!(first["oauthUrl"].as_str().unwrap().contains("/oauth/linear/authorize?instance_id="));
}

#[tokio::test]
async fn the_older_paths_keep_working() {
    let app = TestApp::spawn().await;
    let id = create(&app, "Jira", "u").await["instanceId"].as_str().unwrap().to_owned();
    json_of(app.call(Method::GET, &format!("/mcp-server/instance/get/{id}"), None).await, 200).await;
    let set = json!({"instanceId": id, "authToken": "legacy-token"});
    json_of(app.call(Method::POST, "/mcp-server/instance/set-auth-token", Some(set)).await, 200).await;
    let auth = json_of(app.call(Method::GET, &format!("/mcp-server/instance/get-auth/{id}"), None).await, 200).await;
    assert_eq!(auth["authData"], json!({"token": "legacy-token"}));
    json_of(app.call(Method::DELETE, &format!("/mcp-server/instance/delete-auth/{id}"), None).await, 200).await;
    json_of(app.call(Method::DELETE, &format!("/mcp-server/instance/delete/{id}"), None).await, 200).await;
    json_of(app.call(Method::GET, &format!("/mcp-server/instance/get/{id}"), None).await, 404).await;
}

#[tokio::test]
async fn the_catalog_lists_the_96_servers() {
    let app = TestApp::spawn().await;
    let servers = json_of(app.call(Method::GET, "/mcp-server/servers", None).await, 200).await;
    let servers = servers["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 96);
    let gmail = servers.iter().find(|s| s["name"] == "Gmail").unwrap();
    assert_eq!(gmail["authNeeded"], true);
    assert!(uuid::Uuid::parse_str(gmail["id"].as_str().unwrap()).is_ok());
}
