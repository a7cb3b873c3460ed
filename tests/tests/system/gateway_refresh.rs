//! OAuth token refresh in the gateway (issue 13, item 3): an access token that has expired or
//! expires within a minute is refreshed through the client that issued it before the call is
//! forwarded, the new tokens stored sealed; a refusal marks the credential (or the Composio
//! account) EXPIRED and the call is told to re-authenticate; a provider that is down expires
//! nothing; concurrent calls, on one replica or two, refresh once.

use crate::composio_oauth::custom_oauth_config;
use crate::klavis_oauth::setup;
use crate::support::browser::{browser, location};
use crate::support::composio::{account_status, mcp_server};
use crate::support::mcp::{Answer, Session, Upstream};
use crate::support::nats::NatsServer;
use crate::support::oauth_provider::{Behaviour, OAuthProvider};
use crate::support::relay::consume;
use crate::support::{TestApp, json_of};
use reqwest::Method;
use serde_json::{Value, json};
use services::gateway::Upstreams;
use services::nats::RelaySettings;
use std::time::Duration;

const CALLBACK: &str = "https://app.example.com/connected";

/// An app with Gmail bound to the upstream (and a relay to `nats`, when given).
async fn app_with_gmail(upstream: &Upstream, nats: Option<&NatsServer>) -> TestApp {
    let upstreams = Upstreams::parse(&format!("[gmail]\nurl = \"{}\"\n", upstream.url)).unwrap();
    let relay = nats.map(|nats| RelaySettings {
        nats_urls: vec![nats.url()],
        replicas: 1,
        duplicate_window: Duration::from_secs(120),
        ..RelaySettings::default()
    });
    TestApp::spawn_with(move |settings| {
        settings.gateway.upstreams = upstreams;
        settings.relay = relay;
    })
    .await
}

/// Authorizes the instance through the provider: its first tokens (expiring as the provider
/// is told).
async fn authorize(app: &TestApp, instance: &str) {
    let authorize = format!("{}/oauth/gmail/authorize?instance_id={instance}&redirect_url={CALLBACK}", app.base_url);
    let to_provider = location(browser().get(authorize).send().await.unwrap()).await;
    let callback = location(browser().get(to_provider).send().await.unwrap()).await;
    let back = location(browser().get(callback).send().await.unwrap()).await;
    assert!(back.ends_with("status=success"), "{back}");
}

/// A Gmail instance authorized with tokens that expire in `expires_in` seconds; the provider
/// then issues hour-long tokens. The instance's id.
async fn authorized_instance(app: &TestApp, expires_in: i64) -> (OAuthProvider, String) {
    let (provider, instance) = setup(app).await;
    provider.expire_tokens_in(expires_in);
    authorize(app, &instance).await;
    provider.expire_tokens_in(3600);
    (provider, instance)
}

fn server_url(base_url: &str, instance: &str) -> String {
    format!("{base_url}/mcp/?instance_id={instance}")
}

/// The access token the upstream received on a `whoami` in a new session at `url`.
async fn token_seen(url: &str) -> String {
    let (mut session, init) = Session::open(url).await;
    assert_eq!(init.status, 200, "{init:?}");
    let answer = session.call_tool("whoami", json!({})).await;
    let seen: Value = serde_json::from_str(answer.text()).unwrap_or_else(|_| panic!("whoami answered {answer:?}"));
    seen["headers"]["authorization"].as_str().unwrap_or_default().to_owned()
}

async fn events_of_type(app: &TestApp, event_type: &str) -> Vec<Value> {
    sqlx::query_scalar("SELECT payload FROM events WHERE event_type = $1 ORDER BY global_position")
        .bind(event_type)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// Every stored payload and metadata, as text.
async fn stored_text(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT payload::text || metadata::text FROM events").fetch_all(&app.pool).await.unwrap()
}

fn assert_sealed(texts: &[String], provider: &OAuthProvider, where_: &str) {
    for text in texts {
        assert!(
            !text.contains("access-token-")
                && !text.contains("refresh-token-")
                && !text.contains(&provider.client_secret),
            "a token in clear {where_}: {text}"
        );
    }
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_sealed_and_the_upstream_gets_the_new_one() {
    let nats = NatsServer::start().await;
    let upstream = Upstream::start().await;
    let app = app_with_gmail(&upstream, Some(&nats)).await;
    // Expired already: the exchange recorded an expiry of now.
    let (provider, instance) = authorized_instance(&app, 0).await;
    let url = server_url(&app.base_url, &instance);

    assert_eq!(token_seen(&url).await, format!("Bearer {}", provider.access_token(2)), "the refreshed token");
    assert_eq!(token_seen(&url).await, format!("Bearer {}", provider.access_token(2)), "and it is kept");

    assert_eq!(provider.refresh_requests(), 1, "refreshed once");
    let refreshed = events_of_type(&app, "instance.credential_refreshed").await;
    assert_eq!(refreshed.len(), 1);
    let sealed = &refreshed[0]["InstanceCredentialRefreshed"]["credential"];
    let auth_set = &events_of_type(&app, "instance.auth_set").await[0]["InstanceAuthSet"]["credential"];
    assert_eq!(sealed["key_id"], auth_set["key_id"], "sealed under the credential's own data key");
    assert!(sealed["ciphertext"].as_str().is_some_and(|c| !c.is_empty()));
    assert_sealed(&stored_text(&app).await, &provider, "in the events table");
    let actor: Vec<String> =
        sqlx::query_scalar("SELECT metadata->>'actor' FROM events WHERE event_type = 'instance.credential_refreshed'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(actor, ["system:token-refresh"]);
    // The stored tokens: the new access token, the rotated refresh token, the new expiry.
    let auth = json_of(app.call(Method::GET, &format!("/mcp-server/instance/{instance}/auth"), None).await, 200).await;
    assert_eq!(auth["authData"]["access_token"], provider.access_token(2).as_str(), "{auth}");
    assert!(auth["authData"]["refresh_token"].as_str().unwrap().ends_with("-2"), "{auth}");
    assert!(auth["authData"]["expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp() + 3000);
    assert_eq!(auth["authData"]["provider_extra"], json!({"team": "T123"}));

    // On NATS: the refresh is published, its tokens redacted to the key id.
    let expected = app.event_count().await as usize;
    let delivered = consume(&nats.url(), expected, Duration::from_secs(60)).await;
    let payloads: Vec<String> = delivered.iter().map(|d| d.payload.clone()).collect();
    assert!(payloads.iter().any(|p| p.contains("provisioner.instance.credential_refreshed.v1")), "{payloads:?}");
    assert_sealed(&payloads, &provider, "on NATS");
    for delivered in delivered.iter().filter(|d| d.subject.ends_with(".instance.credential_refreshed")) {
        let event: Value = serde_json::from_str(&delivered.payload).unwrap();
        let credential = &event["data"]["InstanceCredentialRefreshed"]["credential"];
        assert_eq!(credential.as_object().map(|o| o.len()), Some(1), "only the key id: {credential}");
    }
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_and_one_far_from_expiry_is_not() {
    let upstream = Upstream::start().await;
    let app = app_with_gmail(&upstream, None).await;
    let (provider, soon) = authorized_instance(&app, 30).await;
    let url = server_url(&app.base_url, &soon);
    assert_eq!(token_seen(&url).await, format!("Bearer {}", provider.access_token(2)), "30 s left: refreshed");

    let (later_provider, later) = authorized_instance(&app, 3600).await;
    let url = server_url(&app.base_url, &later);
    assert_eq!(token_seen(&url).await, format!("Bearer {}", later_provider.access_token(1)));
    assert_eq!(later_provider.refresh_requests(), 0, "an hour left: not refreshed");
}

#[tokio::test]
async fn a_refused_refresh_expires_the_credential_and_the_call_asks_to_reauthenticate_at_the_oauth_url() {
    let upstream = Upstream::start().await;
    let app = app_with_gmail(&upstream, None).await;
    let (provider, instance) = authorized_instance(&app, 0).await;
    provider.behave(Behaviour::RefuseRefresh);
    let url = server_url(&app.base_url, &instance);

    let (_, init) = Session::open(&url).await;

    assert_eq!((init.status, init.error_code()), (200, Some(-32003)), "{init:?}");
    let message = init.error_message();
    assert!(message.contains("re-authenticate") && message.contains("invalid_grant"), "{message}");
    let oauth_url = init.message["error"]["data"]["oauthUrl"].as_str().unwrap().to_owned();
    assert!(oauth_url.contains(&format!("/oauth/gmail/authorize?instance_id={instance}")), "{oauth_url}");
    assert!(message.contains(&oauth_url), "{message}");
    let expired = events_of_type(&app, "instance.credential_expired").await;
    assert_eq!(expired.len(), 1);
    assert!(expired[0]["InstanceCredentialExpired"]["reason"].as_str().unwrap().contains("invalid_grant"));
    let got = json_of(app.call(Method::GET, &format!("/mcp-server/instance/{instance}"), None).await, 200).await;
    assert_eq!(got["isAuthenticated"], false, "{got}");

    // The next call is refused at once, as not authenticated; the provider is not asked again.
    let (_, again) = Session::open(&url).await;
    assert_eq!(again.error_code(), Some(-32003), "{again:?}");
    assert!(again.error_message().contains(&oauth_url), "{again:?}");
    assert_eq!(provider.refresh_requests(), 1);

    // Authorizing again brings it back.
    provider.recover();
    authorize(&app, &instance).await;
    assert_eq!(token_seen(&url).await, format!("Bearer {}", provider.access_token(2)));
}

#[tokio::test]
async fn a_provider_that_is_down_expires_nothing() {
    let upstream = Upstream::start().await;
    let app = app_with_gmail(&upstream, None).await;
    let (provider, soon) = authorized_instance(&app, 30).await;
    let (_, expired) = authorized_instance_with(&app, &provider, "down-user", 0).await;
    provider.behave(Behaviour::RefreshDown);

    // Still valid for 30 s: the call goes on with it.
    let soon_url = server_url(&app.base_url, &soon);
    assert_eq!(token_seen(&soon_url).await, format!("Bearer {}", provider.access_token(1)));
    // Expired: the call is refused, retryably, and nothing is marked.
    let (_, refused) = Session::open(&server_url(&app.base_url, &expired)).await;
    assert_eq!(refused.error_code(), Some(-32003), "{refused:?}");
    assert!(refused.error_message().contains("try again"), "{refused:?}");
    assert_eq!(refused.message["error"]["data"]["retryable"], true, "{refused:?}");
    assert!(events_of_type(&app, "instance.credential_expired").await.is_empty());

    // The provider is back: the next call refreshes.
    provider.recover();
    assert_eq!(token_seen(&server_url(&app.base_url, &expired)).await, format!("Bearer {}", provider.access_token(3)));
}

/// Another instance of `user` with the same app, authorized with tokens expiring in
/// `expires_in` seconds.
async fn authorized_instance_with(
    app: &TestApp,
    provider: &OAuthProvider,
    user: &str,
    expires_in: i64,
) -> (String, String) {
    let instance = crate::klavis_instances::create(app, "Gmail", user).await["instanceId"].as_str().unwrap().to_owned();
    provider.expire_tokens_in(expires_in);
    authorize(app, &instance).await;
    provider.expire_tokens_in(3600);
    (user.to_owned(), instance)
}

#[tokio::test]
async fn concurrent_calls_on_two_replicas_refresh_once_and_all_use_the_winners_token() {
    let upstream = Upstream::start().await;
    let app = app_with_gmail(&upstream, None).await;
    let other_replica = app.replica().await;
    let (provider, instance) = authorized_instance(&app, 30).await;
    // A slow provider: the calls all find the token due while the first refresh is under way.
    provider.delay_refreshes(Duration::from_millis(500));

    let urls: Vec<String> =
        (0..6).map(|n| server_url(if n % 2 == 0 { &app.base_url } else { &other_replica }, &instance)).collect();
    let seen = futures::future::join_all(urls.iter().map(|url| token_seen(url))).await;

    let winner = format!("Bearer {}", provider.access_token(2));
    assert!(seen.iter().all(|token| *token == winner), "{seen:?}");
    assert_eq!(provider.refresh_requests(), 1, "one refresh for six calls on two replicas");
    assert_eq!(events_of_type(&app, "instance.credential_refreshed").await.len(), 1);
    assert!(events_of_type(&app, "instance.credential_expired").await.is_empty());
}

// ---- Composio connected accounts ----

/// A custom OAUTH2 Gmail auth config, `user`'s account linked through the provider with
/// tokens expiring in `expires_in` seconds, and an MCP server over the config; (server id,
/// account id).
async fn linked_account(app: &TestApp, provider: &OAuthProvider, user: &str, expires_in: i64) -> (String, String) {
    let gmail = custom_oauth_config(app, provider).await;
    app.allow_redirects_to(&["app.example.com"]).await;
    let body = json!({"auth_config_id": gmail, "user_id": user, "callback_url": CALLBACK});
    let linked = json_of(app.composio(Method::POST, "/api/v3/connected_accounts/link", Some(body)).await, 201).await;
    provider.expire_tokens_in(expires_in);
    let to_provider = location(browser().get(linked["redirect_url"].as_str().unwrap()).send().await.unwrap()).await;
    let callback = location(browser().get(to_provider).send().await.unwrap()).await;
    let back = location(browser().get(callback).send().await.unwrap()).await;
    assert!(back.ends_with("status=success"), "{back}");
    provider.expire_tokens_in(3600);
    let server = mcp_server(app, "Mail tools", &[&gmail]).await;
    (server, linked["connected_account_id"].as_str().unwrap().to_owned())
}

async fn composio_session(app: &TestApp, server: &str, user: &str) -> (Session, Answer) {
    let mut session = Session::new(&format!("{}/v3/mcp/{server}?user_id={user}", app.base_url));
    session.extra = vec![("x-api-key".into(), app.key.clone())];
    let answer = session.initialize().await;
    (session, answer)
}

#[tokio::test]
async fn an_expired_connected_account_token_is_refreshed_and_stays_active() {
    let upstream = Upstream::start().await;
    let app = app_with_gmail(&upstream, None).await;
    let provider = OAuthProvider::start().await;
    let (server, account) = linked_account(&app, &provider, "grace", 0).await;

    let (mut session, init) = composio_session(&app, &server, "grace").await;
    assert_eq!(init.status, 200, "{init:?}");
    let seen: Value = serde_json::from_str(session.call_tool("whoami", json!({})).await.text()).unwrap();

    assert_eq!(seen["headers"]["authorization"], format!("Bearer {}", provider.access_token(2)));
    assert_eq!(provider.refresh_requests(), 1);
    assert_eq!(events_of_type(&app, "connected_account.refreshed").await.len(), 1);
    assert_eq!(account_status(&app, &account).await, "ACTIVE");
    assert_sealed(&stored_text(&app).await, &provider, "in the events table");
}

#[tokio::test]
async fn a_refused_refresh_expires_the_connected_account_with_its_reason() {
    let upstream = Upstream::start().await;
    let app = app_with_gmail(&upstream, None).await;
    let provider = OAuthProvider::start().await;
    let (server, account) = linked_account(&app, &provider, "grace", 0).await;
    provider.behave(Behaviour::RefuseRefresh);

    let (_, init) = composio_session(&app, &server, "grace").await;

    assert_eq!((init.status, init.error_code()), (200, Some(-32003)), "{init:?}");
    let message = init.error_message();
    assert!(message.contains("re-authenticate") && message.contains(&account), "{message}");
    assert_eq!(init.message["error"]["data"]["connectedAccountId"], account.as_str());
    let got =
        json_of(app.composio(Method::GET, &format!("/api/v3/connected_accounts/{account}"), None).await, 200).await;
    assert_eq!(got["status"], "EXPIRED", "{got}");
    let reason = got["status_reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("OAuth token refresh failed") && reason.contains("invalid_grant"), "{got}");
    // No ACTIVE account is left: the next call says to connect one.
    let (_, again) = composio_session(&app, &server, "grace").await;
    assert_eq!(again.error_code(), Some(-32003), "{again:?}");
    assert_eq!(provider.refresh_requests(), 1);
}
