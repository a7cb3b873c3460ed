//! The redirect allow-list: the OAuth flow sends the browser back only to http(s) URLs on a
//! host the project allows (issue 18, defect 4: an open redirect), set through
//! `/api/v1/project/redirect-hosts` or `provisioner project redirect-hosts`.

use crate::composio_oauth::custom_oauth_config;
use crate::klavis_oauth::{credentials, setup};
use crate::support::browser::{browser, location};
use crate::support::composio::composio_error;
use crate::support::oauth_provider::{Behaviour, OAuthProvider};
use crate::support::{TestApp, json_of, run_cli};
use reqwest::Method;
use serde_json::{Value, json};
use services::oauth::{ClientRef, FlowTarget, StateClaims, StateSealer};
use services::secrets::MasterKey;

const EVIL: &str = "https://evil.example.com/phish";
const HOSTS: &str = "/api/v1/project/redirect-hosts";

fn authorize_url(app: &TestApp, instance: &str, redirect_url: &str) -> String {
    let redirect_url = urlencode(redirect_url);
    format!("{}/oauth/gmail/authorize?instance_id={instance}&redirect_url={redirect_url}", app.base_url)
}

fn urlencode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

/// A plain page: no redirect at all, with this status.
async fn plain_page(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status, "{:?}", response.headers().get("location"));
    assert!(response.headers().get("location").is_none(), "redirected to {:?}", response.headers()["location"]);
    response.text().await.unwrap()
}

async fn hosts_of(app: &TestApp, key: &str) -> Value {
    json_of(app.call_as(key, Method::GET, HOSTS, None).await, 200).await["hosts"].clone()
}

#[tokio::test]
async fn authorize_refuses_a_redirect_url_the_project_does_not_allow() {
    let app = TestApp::spawn().await;
    let (_provider, instance) = setup(&app).await;

    for target in [EVIL, "https://app.example.com.evil.com/x", "javascript:alert(1)", "file:///etc/passwd"] {
        let page = plain_page(browser().get(authorize_url(&app, &instance, target)).send().await.unwrap(), 400).await;
        assert!(page.contains("redirect"), "{target}: {page}");
    }
    // Before the instance (and so the project) is known there is nobody to ask: a page too.
    let unknown = authorize_url(&app, &uuid::Uuid::new_v4().to_string(), EVIL);
    plain_page(browser().get(unknown).send().await.unwrap(), 404).await;
    let wrong_provider = format!("{}/oauth/slack/authorize?instance_id={instance}&redirect_url={EVIL}", app.base_url);
    plain_page(browser().get(wrong_provider).send().await.unwrap(), 400).await;
}

#[tokio::test]
async fn an_allowed_host_gets_the_browser_back_with_the_status() {
    let app = TestApp::spawn().await;
    let (_provider, instance) = setup(&app).await;
    app.allow_redirects_to(&["*.customer.test", "localhost:3000"]).await;

    for target in ["https://app.eu.customer.test/done", "http://localhost:3000/cb"] {
        let to_provider = location(browser().get(authorize_url(&app, &instance, target)).send().await.unwrap()).await;
        let callback = location(browser().get(to_provider).send().await.unwrap()).await;
        let back = location(browser().get(callback).send().await.unwrap()).await;
        assert_eq!(back, format!("{target}?instance_id={instance}&status=success"));
    }
    // Not the wildcard's own domain, nor another port.
    for target in ["https://customer.test/done", "http://localhost:3001/cb"] {
        plain_page(browser().get(authorize_url(&app, &instance, target)).send().await.unwrap(), 400).await;
    }
}

/// A state is sealed with the master key; this one names a target the project never allowed
/// (as a state minted before the allow-list existed would).
#[tokio::test]
async fn a_refused_consent_does_not_send_the_browser_to_a_host_that_is_not_allowed() {
    let master = MasterKey::generate_base64();
    let app = TestApp::spawn_with(|s| s.master_key = MasterKey::from_base64(&master).unwrap()).await;
    let (provider, instance) = setup(&app).await;
    let claims = StateClaims {
        nonce: StateSealer::new_nonce(),
        target: FlowTarget::Instance(instance.parse().unwrap()),
        project_id: app.project_id,
        provider: "gmail".into(),
        client: ClientRef::App(provider.client_id.clone()),
        redirect_uri: format!("{}/oauth/gmail/callback", app.base_url),
        redirect_url: Some(EVIL.into()),
        pkce_verifier: "verifier".into(),
        expires_at: chrono::Utc::now().timestamp() + 600,
    };
    let state = StateSealer::new(&MasterKey::from_base64(&master).unwrap()).seal(&claims);

    let denied = format!("{}/oauth/gmail/callback?error=access_denied&state={state}", app.base_url);
    let page = plain_page(browser().get(denied).send().await.unwrap(), 400).await;
    assert!(page.contains("access_denied"), "{page}");
}

#[tokio::test]
async fn removing_a_host_sends_a_pending_flow_to_the_plain_page() {
    let app = TestApp::spawn().await;
    let (provider, instance) = setup(&app).await;
    let to_provider =
        location(browser().get(authorize_url(&app, &instance, "https://app.example.com/done")).send().await.unwrap())
            .await;
    let callback = location(browser().get(&to_provider).send().await.unwrap()).await;

    let removed = app.call(Method::PATCH, HOSTS, Some(json!({"remove": ["app.example.com"]}))).await;
    assert_eq!(json_of(removed, 200).await["hosts"], json!([]));

    let page = plain_page(browser().get(&callback).send().await.unwrap(), 200).await;
    assert!(page.contains("connected"), "the flow itself still completes: {page}");
    assert_eq!(credentials(&app).await, 1);
    // A failure ends on a page too.
    provider.behave(Behaviour::Deny);
    app.allow_redirects_to(&["app.example.com"]).await;
    let to_provider =
        location(browser().get(authorize_url(&app, &instance, "https://app.example.com/done")).send().await.unwrap())
            .await;
    let callback = location(browser().get(&to_provider).send().await.unwrap()).await;
    app.allow_redirects_to(&[]).await;
    plain_page(browser().get(&callback).send().await.unwrap(), 400).await;
}

#[tokio::test]
async fn a_composio_callback_url_must_be_on_the_allow_list() {
    let app = TestApp::spawn().await;
    let provider = OAuthProvider::start().await;
    let config = custom_oauth_config(&app, &provider).await;
    let before = app.event_count().await;

    let link = json!({"auth_config_id": config, "user_id": "u", "callback_url": "https://evil.example.com"});
    let error = composio_error(
        app.composio(Method::POST, "/api/v3/connected_accounts/link", Some(link)).await,
        400,
        "Request_ValidationError",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("callback_url"), "{error}");
    assert!(error["message"].as_str().unwrap().contains("evil.example.com"), "{error}");
    let create = json!({"auth_config": {"id": config}, "connection": {"user_id": "u", "callback_url": EVIL}});
    let error = composio_error(
        app.composio(Method::POST, "/api/v3/connected_accounts", Some(create)).await,
        400,
        "Request_ValidationError",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("connection.callback_url"), "{error}");
    assert_eq!(app.event_count().await, before, "nothing recorded");

    // Allowed, it goes through, and the link's ending returns there.
    app.allow_redirects_to(&["app.example.com"]).await;
    let link = json!({"auth_config_id": config, "user_id": "u", "callback_url": "https://app.example.com/back"});
    let linked = json_of(app.composio(Method::POST, "/api/v3/connected_accounts/link", Some(link)).await, 201).await;
    let account = linked["connected_account_id"].as_str().unwrap();
    let to_provider = location(browser().get(linked["redirect_url"].as_str().unwrap()).send().await.unwrap()).await;
    let callback = location(browser().get(to_provider).send().await.unwrap()).await;
    let back = location(browser().get(callback).send().await.unwrap()).await;
    assert_eq!(back, format!("https://app.example.com/back?connected_account_id={account}&status=success"));
}

#[tokio::test]
async fn a_link_whose_host_was_removed_ends_on_a_page() {
    let app = TestApp::spawn().await;
    let provider = OAuthProvider::start().await;
    let config = custom_oauth_config(&app, &provider).await;
    app.allow_redirects_to(&["app.example.com"]).await;
    let new_link = || async {
        let link = json!({"auth_config_id": config, "user_id": "u", "callback_url": "https://app.example.com/back"});
        json_of(app.composio(Method::POST, "/api/v3/connected_accounts/link", Some(link)).await, 201).await
    };
    let (done, pending) = (new_link().await, new_link().await);
    let done_link = done["redirect_url"].as_str().unwrap();
    let callback =
        location(browser().get(location(browser().get(done_link).send().await.unwrap()).await).send().await.unwrap())
            .await;
    location(browser().get(callback).send().await.unwrap()).await;
    app.allow_redirects_to(&[]).await;

    // A spent link ends at once (not pending): on a page now, not back at the removed host.
    let page = plain_page(browser().get(done_link).send().await.unwrap(), 409).await;
    assert!(page.contains("ACTIVE"), "{page}");
    // A pending one completes, and ends on a page too.
    let to_provider = location(browser().get(pending["redirect_url"].as_str().unwrap()).send().await.unwrap()).await;
    let callback = location(browser().get(to_provider).send().await.unwrap()).await;
    plain_page(browser().get(callback).send().await.unwrap(), 200).await;
}

#[tokio::test]
async fn an_oauth_redirect_uri_must_be_an_http_url() {
    let app = TestApp::spawn().await;
    let provider = OAuthProvider::start().await;
    let config = custom_oauth_config(&app, &provider).await;
    let before = app.event_count().await;

    for bad in ["javascript:alert(1)", "file:///etc/passwd", "data:text/html,hi"] {
        let body = json!({
            "toolkit": {"slug": "gmail"},
            "auth_config": {"type": "use_custom_auth", "authScheme": "OAUTH2", "credentials": {
                "client_id": "c", "client_secret": "s", "oauth_redirect_uri": bad,
            }},
        });
        let response = app.composio(Method::POST, "/api/v3/auth_configs", Some(body)).await;
        let error = composio_error(response, 400, "Request_ValidationError").await;
        assert!(error["message"].as_str().unwrap().contains("auth_config.credentials.oauth_redirect_uri"), "{error}");
        let patch = json!({"type": "custom", "credentials": {"client_id": "c", "oauth_redirect_uri": bad}});
        let response = app.composio(Method::PATCH, &format!("/api/v3/auth_configs/{config}"), Some(patch)).await;
        let error = composio_error(response, 400, "Request_ValidationError").await;
        assert!(error["message"].as_str().unwrap().contains("credentials.oauth_redirect_uri"), "{error}");
    }
    assert_eq!(app.event_count().await, before, "nothing recorded");
}

#[tokio::test]
async fn the_api_sets_edits_and_lists_canonical_hosts_and_refuses_garbage() {
    let app = TestApp::spawn().await;
    assert_eq!(hosts_of(&app, &app.key).await, json!([]), "empty by default");

    let put = json!({"hosts": ["App.Example.COM", "bücher.de", "*.Example.org", "localhost:3000", "app.example.com"]});
    let set = json_of(app.call(Method::PUT, HOSTS, Some(put)).await, 200).await;
    let expected = json!(["*.example.org", "app.example.com", "localhost:3000", "xn--bcher-kva.de"]);
    assert_eq!(set["hosts"], expected);
    assert_eq!(set["project_id"], app.project_id.to_string());
    assert_eq!(hosts_of(&app, &app.key).await, expected, "read your write");

    let patch = json!({"add": ["new.example.com"], "remove": ["localhost:3000", "absent.example.com"]});
    let edited = json_of(app.call(Method::PATCH, HOSTS, Some(patch)).await, 200).await;
    assert_eq!(edited["hosts"], json!(["*.example.org", "app.example.com", "new.example.com", "xn--bcher-kva.de"]));

    let before = app.event_count().await;
    for bad in ["https://evil.example.com/x", "*", "*.com", "a b", "host:0", ""] {
        let response = app.call(Method::PUT, HOSTS, Some(json!({"hosts": ["ok.example.com", bad]}))).await;
        let body = json_of(response, 422).await;
        assert!(body["error"].as_str().unwrap().starts_with("hosts.1: "), "{bad}: {body}");
    }
    let response = app.call(Method::PATCH, HOSTS, Some(json!({"add": ["user@evil.example.com"]}))).await;
    assert!(json_of(response, 422).await["error"].as_str().unwrap().starts_with("add.0: "));
    let too_many: Vec<String> = (0..101).map(|i| format!("h{i}.example.com")).collect();
    json_of(app.call(Method::PUT, HOSTS, Some(json!({"hosts": too_many}))).await, 422).await;
    assert_eq!(app.event_count().await, before, "nothing recorded");
    let unchanged = json!({"hosts": ["*.example.org", "app.example.com", "new.example.com", "xn--bcher-kva.de"]});
    json_of(app.call(Method::PUT, HOSTS, Some(unchanged)).await, 200).await;
    assert_eq!(app.event_count().await, before, "the same list records nothing");

    let recorded: Value = sqlx::query_scalar(
        "SELECT payload FROM events WHERE event_type = 'project.redirect_hosts_set' ORDER BY sequence DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(recorded["RedirectHostsSet"]["hosts"], edited["hosts"], "the event carries the whole list");
    let unauthenticated = reqwest::get(format!("{}{HOSTS}", app.base_url)).await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn another_projects_key_neither_sees_nor_changes_the_list() {
    let app = TestApp::spawn().await;
    let (_provider, instance) = setup(&app).await;
    let (_other, other_key) = app.new_project("Other").await;

    assert_eq!(hosts_of(&app, &other_key).await, json!([]), "its own (empty) list, not the first project's");
    let put = app.call_as(&other_key, Method::PUT, HOSTS, Some(json!({"hosts": ["evil.example.com"]}))).await;
    json_of(put, 200).await;

    assert_eq!(hosts_of(&app, &app.key).await, json!(["app.example.com"]));
    // The other project's list does not open this project's flows.
    plain_page(browser().get(authorize_url(&app, &instance, EVIL)).send().await.unwrap(), 400).await;
}

#[tokio::test]
async fn the_cli_edits_and_lists_the_hosts_through_the_real_binary() {
    let app = TestApp::spawn().await;
    let env = [("DATABASE_URL", app.database_url())];
    let project = app.project_id.to_string();

    let added =
        run_cli(&["project", "redirect-hosts", &project, "--add", "App.Example.com", "--add", "localhost:3000"], &env)
            .await;
    assert!(added.success, "{added:?}");
    assert_eq!(added.stdout, "app.example.com\nlocalhost:3000\n");
    assert_eq!(hosts_of(&app, &app.key).await, json!(["app.example.com", "localhost:3000"]), "the API sees it");

    let removed = run_cli(&["project", "redirect-hosts", &project, "--remove", "localhost:3000"], &env).await;
    assert_eq!(removed.stdout, "app.example.com\n");
    json_of(app.call(Method::PATCH, HOSTS, Some(json!({"add": ["*.customer.test"]}))).await, 200).await;
    let listed = run_cli(&["project", "redirect-hosts", &project], &env).await;
    assert!(listed.success, "{listed:?}");
    assert_eq!(listed.stdout, "*.customer.test\napp.example.com\n");

    let set = run_cli(&["project", "redirect-hosts", &project, "--set", "a.example.com", "b.example.com"], &env).await;
    assert_eq!(set.stdout, "a.example.com\nb.example.com\n");
    let cleared = run_cli(&["project", "redirect-hosts", &project, "--clear"], &env).await;
    assert!(cleared.success && cleared.stdout.is_empty(), "{cleared:?}");

    let garbage = run_cli(&["project", "redirect-hosts", &project, "--add", "https://evil.example.com/"], &env).await;
    assert!(!garbage.success);
    assert!(garbage.stderr.contains("--add https://evil.example.com/"), "{garbage:?}");
    let unknown = run_cli(&["project", "redirect-hosts", &uuid::Uuid::new_v4().to_string()], &env).await;
    assert!(!unknown.success && unknown.stderr.contains("not found"), "{unknown:?}");
    assert_eq!(hosts_of(&app, &app.key).await, json!([]));
}
