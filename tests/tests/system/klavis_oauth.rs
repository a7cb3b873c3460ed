//! The OAuth round trip against a local provider, and every way it can fail without storing
//! anything.

use crate::klavis_instances::create;
use crate::support::browser::{browser, location};
use crate::support::oauth_provider::{Behaviour, OAuthProvider};
use crate::support::{TestApp, json_of};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

const REDIRECT: &str = "https://app.example.com/connected";

/// An app with a white-label OAuth app for Gmail pointing at the local provider, one Gmail
/// instance, and `REDIRECT`'s host on the redirect allow-list.
pub async fn setup(app: &TestApp) -> (OAuthProvider, String) {
    app.allow_redirects_to(&["app.example.com"]).await;
    let provider = OAuthProvider::start().await;
    let body = json!({
        "client_id": provider.client_id, "client_secret": provider.client_secret, "server_name": "Gmail",
        "authorize_url": format!("{}/authorize", provider.base_url), "token_url": format!("{}/token", provider.base_url),
    });
    json_of(app.call(Method::POST, "/white-labeling/create", Some(body)).await, 200).await;
    let instance = create(app, "Gmail", "oauth-user").await["instanceId"].as_str().unwrap().to_owned();
    (provider, instance)
}

/// Authorize, then the provider's consent: the callback URL the browser is sent to.
async fn consent(app: &TestApp, instance: &str) -> String {
    let authorize = format!("{}/oauth/gmail/authorize?instance_id={instance}&redirect_url={REDIRECT}", app.base_url);
    let to_provider = location(browser().get(authorize).send().await.unwrap()).await;
    location(browser().get(to_provider).send().await.unwrap()).await
}

pub async fn credentials(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'instance.auth_set'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_complete_round_trip_stores_the_tokens_encrypted_and_returns_to_the_caller() {
    let app = TestApp::spawn().await;
    let (provider, instance) = setup(&app).await;

    // authorize: off to the provider with the app's client id, PKCE and a state
    let authorize = format!("{}/oauth/gmail/authorize?instance_id={instance}&redirect_url={REDIRECT}", app.base_url);
    let to_provider = location(browser().get(&authorize).send().await.unwrap()).await;
    assert!(to_provider.starts_with(&format!("{}/authorize?", provider.base_url)), "{to_provider}");
    assert!(to_provider.contains("code_challenge=") && to_provider.contains("state="), "{to_provider}");
    // consent: back to our callback with a code
    let callback = location(browser().get(&to_provider).send().await.unwrap()).await;
    assert!(callback.starts_with(&format!("{}/oauth/gmail/callback?code=", app.base_url)), "{callback}");
    // callback: token exchange, then back to the caller
    let back = location(browser().get(&callback).send().await.unwrap()).await;

    assert_eq!(back, format!("{REDIRECT}?instance_id={instance}&status=success"));
    let got = json_of(app.call(Method::GET, &format!("/mcp-server/instance/{instance}"), None).await, 200).await;
    assert_eq!(got["isAuthenticated"], true);
    let auth = json_of(app.call(Method::GET, &format!("/mcp-server/instance/{instance}/auth"), None).await, 200).await;
    let access_token = auth["authData"]["access_token"].as_str().unwrap().to_owned();
    assert!(access_token.starts_with("access-token-"), "{auth}");
    assert_eq!(auth["authData"]["provider_extra"], json!({"team": "T123"}), "the provider's own fields are kept");
    assert!(auth["authData"]["expires_at"].is_i64());
    let events: Vec<String> =
        sqlx::query_scalar("SELECT payload::text || metadata::text FROM events").fetch_all(&app.pool).await.unwrap();
    for event in &events {
        assert!(!event.contains(&access_token) && !event.contains(&provider.client_secret), "in clear: {event}");
    }
    let actor: String =
        sqlx::query_scalar("SELECT metadata->>'actor' FROM events WHERE event_type = 'instance.auth_set'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(actor, "oauth-callback");
}

#[tokio::test]
async fn a_replayed_state_stores_nothing() {
    let app = TestApp::spawn().await;
    let (_provider, instance) = setup(&app).await;
    let callback = consent(&app, &instance).await;
    location(browser().get(&callback).send().await.unwrap()).await;
    let stored = credentials(&app).await;

    let replay = location(browser().get(&callback).send().await.unwrap()).await;

    assert_eq!(replay, format!("{REDIRECT}?instance_id={instance}&status=error&error=replayed_state"));
    assert_eq!(credentials(&app).await, stored);
}

#[tokio::test]
async fn an_expired_state_stores_nothing() {
    let app = TestApp::spawn_with(|s| s.oauth_state_ttl = Duration::from_secs(1)).await;
    let (provider, instance) = setup(&app).await;
    let callback = consent(&app, &instance).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let answer = browser().get(&callback).send().await.unwrap();

    // An expired state is still readable, so the browser goes back to the caller.
    assert_eq!(location(answer).await, format!("{REDIRECT}?instance_id={instance}&status=error&error=expired_state"));
    assert_eq!(credentials(&app).await, 0);
    assert_eq!(provider.tokens_issued(), 0, "no code was exchanged");
}

#[tokio::test]
async fn a_denied_consent_or_a_failing_token_endpoint_stores_nothing() {
    let app = TestApp::spawn().await;
    let (provider, instance) = setup(&app).await;

    provider.behave(Behaviour::Deny);
    let denied = location(browser().get(consent(&app, &instance).await).send().await.unwrap()).await;
    assert_eq!(denied, format!("{REDIRECT}?instance_id={instance}&status=error&error=access_denied"));

    provider.behave(Behaviour::FailTokenExchange);
    let failed = location(browser().get(consent(&app, &instance).await).send().await.unwrap()).await;
    assert_eq!(failed, format!("{REDIRECT}?instance_id={instance}&status=error&error=token_exchange_failed"));

    assert_eq!(credentials(&app).await, 0);
    let got = json_of(app.call(Method::GET, &format!("/mcp-server/instance/{instance}"), None).await, 200).await;
    assert_eq!(got["isAuthenticated"], false);
}

#[tokio::test]
async fn a_forged_state_or_an_unknown_instance_ends_on_an_error_page() {
    let app = TestApp::spawn().await;
    let (_provider, instance) = setup(&app).await;
    let forged =
        browser().get(format!("{}/oauth/gmail/callback?code=x&state=forged", app.base_url)).send().await.unwrap();
    assert_eq!(forged.status(), 400);
    assert!(forged.text().await.unwrap().contains("invalid"));
    let unknown = browser()
        .get(format!("{}/oauth/gmail/authorize?instance_id={}", app.base_url, uuid::Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let wrong_provider =
        browser().get(format!("{}/oauth/slack/authorize?instance_id={instance}", app.base_url)).send().await.unwrap();
    assert_eq!(wrong_provider.status(), 400);
    assert_eq!(credentials(&app).await, 0);
}

#[tokio::test]
async fn without_an_oauth_app_authorize_explains_what_to_configure() {
    let app = TestApp::spawn().await;
    let instance = create(&app, "Slack", "u").await["instanceId"].as_str().unwrap().to_owned();
    let page =
        browser().get(format!("{}/oauth/slack/authorize?instance_id={instance}", app.base_url)).send().await.unwrap();
    assert_eq!(page.status(), 400);
    assert!(page.text().await.unwrap().contains("white-labeling"));
}
