//! Composio's connection links through the OAuth flow against a local provider: custom auth
//! configs with their own client, and managed ones using the project's white-label app.

use crate::support::browser::{browser, location};
use crate::support::composio::{account_status, composio_error, create_instance, mcp_server};
use crate::support::oauth_provider::{Behaviour, OAuthProvider};
use crate::support::{TestApp, json_of};
use reqwest::Method;
use serde_json::{Value, json};

const CALLBACK: &str = "https://app.example.com/connected";

/// A custom OAUTH2 auth config whose client is the local provider's.
pub async fn custom_oauth_config(app: &TestApp, provider: &OAuthProvider) -> String {
    let body = json!({
        "toolkit": {"slug": "gmail"},
        "auth_config": {"type": "use_custom_auth", "authScheme": "OAUTH2", "credentials": {
            "client_id": provider.client_id, "client_secret": provider.client_secret, "scopes": ["read", "write"],
            "authorization_url": format!("{}/authorize", provider.base_url),
            "token_url": format!("{}/token", provider.base_url),
        }},
    });
    let created = json_of(app.composio(Method::POST, "/api/v3/auth_configs", Some(body)).await, 201).await;
    created["auth_config"]["id"].as_str().unwrap().to_owned()
}

async fn link(app: &TestApp, auth_config_id: &str, user: &str) -> Value {
    app.allow_redirects_to(&["app.example.com"]).await;
    let body = json!({"auth_config_id": auth_config_id, "user_id": user, "callback_url": CALLBACK});
    json_of(app.composio(Method::POST, "/api/v3/connected_accounts/link", Some(body)).await, 201).await
}

/// Follows a link to the provider and through its consent: the callback URL it sends the
/// browser to.
async fn consent(redirect_url: &str) -> String {
    let to_provider = location(browser().get(redirect_url).send().await.unwrap()).await;
    location(browser().get(to_provider).send().await.unwrap()).await
}

#[tokio::test]
async fn a_link_leads_through_the_provider_to_an_active_account() {
    let app = TestApp::spawn().await;
    let provider = OAuthProvider::start().await;
    let gmail = custom_oauth_config(&app, &provider).await;

    let linked = link(&app, &gmail, "grace").await;
    let account_id = linked["connected_account_id"].as_str().unwrap().to_owned();
    assert!(linked["link_token"].as_str().unwrap().len() >= 32, "{linked}");
    assert!(chrono::DateTime::parse_from_rfc3339(linked["expires_at"].as_str().unwrap()).is_ok(), "{linked}");
    assert_eq!(account_status(&app, &account_id).await, "INITIATED");

    let redirect_url = linked["redirect_url"].as_str().unwrap();
    let to_provider = location(browser().get(redirect_url).send().await.unwrap()).await;
    assert!(to_provider.starts_with(&format!("{}/authorize?", provider.base_url)), "{to_provider}");
    assert!(to_provider.contains("scope=read+write") || to_provider.contains("scope=read%20write"), "{to_provider}");
    let callback = location(browser().get(&to_provider).send().await.unwrap()).await;
    let back = location(browser().get(&callback).send().await.unwrap()).await;

    assert_eq!(back, format!("{CALLBACK}?connected_account_id={account_id}&status=success"));
    assert_eq!(account_status(&app, &account_id).await, "ACTIVE");
    assert_eq!(provider.tokens_issued(), 1);
    let server = mcp_server(&app, "Linked mail", &[&gmail]).await;
    json_of(create_instance(&app, &server, "grace").await, 201).await;

    // The tokens and the client secret are sealed: no event, view or response holds them.
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT payload::text FROM events").fetch_all(&app.pool).await.unwrap();
    for text in &stored {
        assert!(!text.contains("access-token-") && !text.contains(&provider.client_secret), "{text}");
    }
    let config = json_of(app.composio(Method::GET, &format!("/api/v3/auth_configs/{gmail}"), None).await, 200).await;
    assert_eq!(config["credentials"]["client_secret"], "REDACTED", "{config}");
    assert_eq!(config["credentials"]["client_id"], provider.client_id.as_str());
    assert_eq!(config["no_of_connections"], 1);

    // The callback again: the account stays as it is, and no second token is fetched.
    let replayed = location(browser().get(&callback).send().await.unwrap()).await;
    assert!(replayed.ends_with("status=error&error=replayed_state"), "{replayed}");
    assert_eq!(provider.tokens_issued(), 1);
    // The link again: the connection is no longer pending, and the caller hears so.
    let again = location(browser().get(redirect_url).send().await.unwrap()).await;
    assert_eq!(again, format!("{CALLBACK}?connected_account_id={account_id}&status=error&error=not_pending"));
}

#[tokio::test]
async fn a_refusal_at_the_provider_fails_the_connection() {
    let app = TestApp::spawn().await;
    let provider = OAuthProvider::start().await;
    let gmail = custom_oauth_config(&app, &provider).await;

    provider.behave(Behaviour::Deny);
    let linked = link(&app, &gmail, "heidi").await;
    let account_id = linked["connected_account_id"].as_str().unwrap().to_owned();
    let callback = consent(linked["redirect_url"].as_str().unwrap()).await;
    let back = location(browser().get(&callback).send().await.unwrap()).await;
    assert!(back.ends_with("status=error&error=access_denied"), "{back}");

    let account =
        json_of(app.composio(Method::GET, &format!("/api/v3/connected_accounts/{account_id}"), None).await, 200).await;
    assert_eq!(account["status"], "FAILED", "{account}");
    assert!(account["status_reason"].as_str().unwrap().contains("access_denied"), "{account}");
    assert_eq!(provider.tokens_issued(), 0);
}

#[tokio::test]
async fn a_managed_auth_config_uses_the_projects_white_label_app() {
    let app = TestApp::spawn().await;
    let provider = OAuthProvider::start().await;
    let white_label = json!({
        "client_id": provider.client_id, "client_secret": provider.client_secret, "server_name": "Gmail",
        "authorize_url": format!("{}/authorize", provider.base_url), "token_url": format!("{}/token", provider.base_url),
    });
    json_of(app.call(Method::POST, "/white-labeling/create", Some(white_label)).await, 200).await;
    let body = json!({"toolkit": {"slug": "gmail"}, "auth_config": {"type": "use_composio_managed_auth"}});
    let created = json_of(app.composio(Method::POST, "/api/v3/auth_configs", Some(body)).await, 201).await;
    assert_eq!(created["auth_config"]["auth_scheme"], "OAUTH2");
    assert_eq!(created["auth_config"]["is_composio_managed"], true);
    let gmail = created["auth_config"]["id"].as_str().unwrap().to_owned();

    let linked = link(&app, &gmail, "ivan").await;
    let callback = consent(linked["redirect_url"].as_str().unwrap()).await;
    location(browser().get(&callback).send().await.unwrap()).await;
    assert_eq!(account_status(&app, linked["connected_account_id"].as_str().unwrap()).await, "ACTIVE");
}

/// Issue 18: the provider's `error_description` comes from the browser's query and becomes the
/// FAILED account's reason, in an event: it is kept bounded.
#[tokio::test]
async fn a_refusal_at_the_provider_keeps_a_bounded_reason() {
    let app = TestApp::spawn().await;
    let provider = OAuthProvider::start().await;
    let gmail = custom_oauth_config(&app, &provider).await;

    provider.behave(Behaviour::Deny);
    let linked = link(&app, &gmail, "judy").await;
    let account_id = linked["connected_account_id"].as_str().unwrap().to_owned();
    let callback = consent(linked["redirect_url"].as_str().unwrap()).await;
    let long_description = format!("{callback}&error_description={}", "x".repeat(20_000));
    let back = location(browser().get(&long_description).send().await.unwrap()).await;
    assert!(back.ends_with("status=error&error=access_denied"), "{back}");

    let account =
        json_of(app.composio(Method::GET, &format!("/api/v3/connected_accounts/{account_id}"), None).await, 200).await;
    let reason = account["status_reason"].as_str().unwrap();
    assert!(reason.contains("access_denied: xxx"), "{reason}");
    assert!(reason.len() < 512, "the reason is bounded: {} bytes", reason.len());
}

#[tokio::test]
async fn links_that_cannot_lead_anywhere_are_refused() {
    let app = TestApp::spawn().await;
    // A managed OAuth config without a white-label app: the link says what is missing.
    let body = json!({"toolkit": {"slug": "gmail"}});
    let created = json_of(app.composio(Method::POST, "/api/v3/auth_configs", Some(body)).await, 201).await;
    let gmail = created["auth_config"]["id"].as_str().unwrap().to_owned();
    let linked = link(&app, &gmail, "judy").await;
    let back = location(browser().get(linked["redirect_url"].as_str().unwrap()).send().await.unwrap()).await;
    assert!(back.ends_with("status=error&error=not_configured"), "{back}");

    // An unknown token: 404.
    let unknown = format!("{}/api/v3/connected_accounts/link/not-a-token", app.base_url);
    assert_eq!(browser().get(unknown).send().await.unwrap().status(), 404);

    // An API key config cannot be linked.
    let keys = crate::support::composio::api_key_auth_config(&app, "github").await;
    let body = json!({"auth_config_id": keys, "user_id": "judy"});
    let response = app.composio(Method::POST, "/api/v3/connected_accounts/link", Some(body)).await;
    composio_error(response, 400, "ConnectedAccount_BadRequest").await;
}
