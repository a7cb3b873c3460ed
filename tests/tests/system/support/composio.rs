//! Composio-surface steps shared by the tests: auth configs, accounts, servers.

use super::{TestApp, json_of};
use reqwest::Method;
use serde_json::{Value, json};

/// A custom API_KEY auth config for `toolkit`; its id.
pub async fn api_key_auth_config(app: &TestApp, toolkit: &str) -> String {
    let body = json!({
        "toolkit": {"slug": toolkit},
        "auth_config": {"type": "use_custom_auth", "authScheme": "API_KEY", "name": format!("{toolkit} keys")},
    });
    let created = json_of(app.composio(Method::POST, "/api/v3/auth_configs", Some(body)).await, 201).await;
    created["auth_config"]["id"].as_str().unwrap().to_owned()
}

/// The body that connects `user` to an API_KEY auth config.
pub fn api_key_connection(auth_config_id: &str, user: &str, key: &str) -> Value {
    json!({
        "auth_config": {"id": auth_config_id},
        "connection": {"user_id": user, "state": {"authScheme": "API_KEY", "val": {"status": "ACTIVE", "api_key": key}}},
    })
}

/// Connects `user` with an API key: an ACTIVE account; its id.
pub async fn connect(app: &TestApp, auth_config_id: &str, user: &str) -> String {
    let body = api_key_connection(auth_config_id, user, "user-api-key-value");
    let created = json_of(app.composio(Method::POST, "/api/v3/connected_accounts", Some(body)).await, 201).await;
    assert_eq!(created["status"], "ACTIVE", "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// An MCP server over `auth_config_ids`; its id.
pub async fn mcp_server(app: &TestApp, name: &str, auth_config_ids: &[&str]) -> String {
    let body = json!({"name": name, "auth_config_ids": auth_config_ids});
    let created = json_of(app.composio(Method::POST, "/api/v3/mcp/servers", Some(body)).await, 201).await;
    created["id"].as_str().unwrap().to_owned()
}

pub async fn create_instance(app: &TestApp, server_id: &str, user: &str) -> reqwest::Response {
    let path = format!("/api/v3/mcp/servers/{server_id}/instances");
    app.composio(Method::POST, &path, Some(json!({"user_id": user}))).await
}

/// The status of an account, as listed.
pub async fn account_status(app: &TestApp, account_id: &str) -> String {
    let account =
        json_of(app.composio(Method::GET, &format!("/api/v3/connected_accounts/{account_id}"), None).await, 200).await;
    account["status"].as_str().unwrap().to_owned()
}

/// Asserts a Composio error envelope with this status and slug; returns its `error`.
pub async fn composio_error(response: reqwest::Response, status: u16, slug: &str) -> Value {
    let request_id = response.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
    let body = json_of(response, status).await;
    let error = body["error"].clone();
    assert_eq!(error["status"], status, "{body}");
    assert_eq!(error["slug"], slug, "{body}");
    assert!(error["code"].is_u64(), "{body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert_eq!(error["request_id"].as_str(), request_id.as_deref(), "request_id is the x-request-id header: {body}");
    error
}
