//! Composio's MCP instances and their precondition: a user gets an instance only when they
//! hold an ACTIVE connected account for every auth config of the server.

use crate::support::composio::{
    account_status, api_key_auth_config, composio_error, connect, create_instance, mcp_server,
};
use crate::support::{TestApp, json_of};
use reqwest::Method;
use serde_json::{Value, json};

async fn server_of(app: &TestApp, server_id: &str) -> Value {
    json_of(app.composio(Method::GET, &format!("/api/v3/mcp/{server_id}"), None).await, 200).await
}

async fn instance_events(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'instance.created'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_instance_needs_an_active_account_for_every_auth_config_and_its_delete_cascades() {
    let app = TestApp::spawn().await;
    let gmail = api_key_auth_config(&app, "gmail").await;
    let slack = api_key_auth_config(&app, "slack").await;
    let github = api_key_auth_config(&app, "github").await;
    let server = mcp_server(&app, "Mail and chat", &[&gmail, &slack]).await;

    // No accounts: 403 naming both auth configs, and nothing is emitted.
    let events_before = app.event_count().await;
    let error =
        composio_error(create_instance(&app, &server, "alice").await, 403, "McpInstance_MissingConnectedAccounts")
            .await;
    let errors = error["errors"].to_string();
    assert!(errors.contains(&gmail) && errors.contains(&slack), "{error}");
    assert!(error["suggested_fix"].as_str().unwrap().contains("connected_accounts"), "{error}");
    assert_eq!(app.event_count().await, events_before, "a refused create emits nothing");

    // One connected: 403 naming only the other.
    let alice_gmail = connect(&app, &gmail, "alice").await;
    let error =
        composio_error(create_instance(&app, &server, "alice").await, 403, "McpInstance_MissingConnectedAccounts")
            .await;
    assert_eq!(error["errors"].as_array().unwrap().len(), 1, "{error}");
    assert!(error["errors"][0].as_str().unwrap().starts_with(&slack), "{error}");

    // Both: 201, the instance named by the user.
    let alice_slack = connect(&app, &slack, "alice").await;
    let created = json_of(create_instance(&app, &server, "alice").await, 201).await;
    assert_eq!(created["instance_id"], "alice");
    assert_eq!(created["mcp_server_id"], server.as_str());
    assert!(uuid::Uuid::parse_str(created["id"].as_str().unwrap()).is_ok(), "{created}");
    assert_eq!(server_of(&app, &server).await["server_instance_count"], 1);

    // Again: 409, and still one instance.created.
    composio_error(create_instance(&app, &server, "alice").await, 409, "McpInstance_AlreadyExists").await;
    assert_eq!(instance_events(&app).await, 1);

    // Accounts the delete must leave alone: alice's for another auth config, bob's for these.
    let alice_github = connect(&app, &github, "alice").await;
    let bob_gmail = connect(&app, &gmail, "bob").await;
    let alice_gmail_again = connect(&app, &gmail, "alice").await;

    let path = format!("/api/v3/mcp/servers/{server}/instances/alice");
    let deleted = json_of(app.composio(Method::DELETE, &path, None).await, 200).await;
    assert_eq!(deleted["deleted_connected_accounts"], 3, "{deleted}");
    assert!(deleted["message"].is_string());
    for gone in [&alice_gmail, &alice_slack, &alice_gmail_again] {
        let response = app.composio(Method::GET, &format!("/api/v3/connected_accounts/{gone}"), None).await;
        composio_error(response, 404, "ConnectedAccount_ResourceNotFound").await;
    }
    for kept in [&alice_github, &bob_gmail] {
        assert_eq!(account_status(&app, kept).await, "ACTIVE");
    }
    assert_eq!(server_of(&app, &server).await["server_instance_count"], 0);
    composio_error(app.composio(Method::DELETE, &path, None).await, 404, "McpInstance_ResourceNotFound").await;

    // After a delete, a create makes a new instance (once the user is connected again).
    connect(&app, &gmail, "alice").await;
    connect(&app, &slack, "alice").await;
    let again = json_of(create_instance(&app, &server, "alice").await, 201).await;
    assert_ne!(again["id"], created["id"], "a new instance id");
}

#[tokio::test]
async fn connect_then_create_at_once_is_never_refused() {
    let app = TestApp::spawn().await;
    let gmail = api_key_auth_config(&app, "gmail").await;
    let server = mcp_server(&app, "Read your writes", &[&gmail]).await;
    for i in 0..200 {
        let user = format!("user-{i}");
        connect(&app, &gmail, &user).await;
        let response = create_instance(&app, &server, &user).await;
        assert_eq!(response.status(), 201, "round {i}: {}", response.text().await.unwrap());
    }
    let listed =
        json_of(app.composio(Method::GET, &format!("/api/v3/mcp/servers/{server}/instances?limit=5"), None).await, 200)
            .await;
    assert_eq!(listed["total_pages"], 40, "{listed}");
    assert_eq!(listed["instances"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn a_revoked_or_disabled_account_does_not_satisfy_the_precondition() {
    let app = TestApp::spawn().await;
    let gmail = api_key_auth_config(&app, "gmail").await;
    let server = mcp_server(&app, "Revocations", &[&gmail]).await;

    let revoked = connect(&app, &gmail, "carol").await;
    let answer =
        json_of(app.composio(Method::POST, &format!("/api/v3/connected_accounts/{revoked}/revoke"), None).await, 200)
            .await;
    assert_eq!(answer["connected_account"], json!({"id": revoked, "status": "REVOKED"}));
    assert_eq!(account_status(&app, &revoked).await, "REVOKED");
    let error =
        composio_error(create_instance(&app, &server, "carol").await, 403, "McpInstance_MissingConnectedAccounts")
            .await;
    assert_eq!(error["errors"], json!([format!("{gmail}: the user's connected account is REVOKED, not ACTIVE")]));
    // A revoked account stays revoked.
    let enable = app
        .composio(
            Method::PATCH,
            &format!("/api/v3/connected_accounts/{revoked}/status"),
            Some(json!({"enabled": true})),
        )
        .await;
    composio_error(enable, 409, "ConnectedAccount_InvalidStatus").await;

    let disabled = connect(&app, &gmail, "dave").await;
    let path = format!("/api/v3/connected_accounts/{disabled}/status");
    json_of(app.composio(Method::PATCH, &path, Some(json!({"enabled": false}))).await, 200).await;
    assert_eq!(account_status(&app, &disabled).await, "INACTIVE");
    let error =
        composio_error(create_instance(&app, &server, "dave").await, 403, "McpInstance_MissingConnectedAccounts").await;
    assert_eq!(error["errors"], json!([format!("{gmail}: the user's connected account is disabled (INACTIVE)")]));
    json_of(app.composio(Method::PATCH, &path, Some(json!({"enabled": true}))).await, 200).await;
    json_of(create_instance(&app, &server, "dave").await, 201).await;
}

#[tokio::test]
async fn accounts_of_a_disabled_auth_config_do_not_count_and_the_403_says_why_for_each() {
    let app = TestApp::spawn().await;
    let gmail = api_key_auth_config(&app, "gmail").await;
    let slack = api_key_auth_config(&app, "slack").await;
    let server = mcp_server(&app, "Disabled config", &[&gmail, &slack]).await;
    connect(&app, &gmail, "erin").await;
    connect(&app, &slack, "erin").await;
    json_of(app.composio(Method::PATCH, &format!("/api/v3/auth_configs/{gmail}/DISABLED"), None).await, 200).await;

    // The ACTIVE gmail account no longer counts while its auth config is DISABLED.
    let events_before = app.event_count().await;
    let error =
        composio_error(create_instance(&app, &server, "erin").await, 403, "McpInstance_MissingConnectedAccounts").await;
    assert_eq!(error["errors"], json!([format!("{gmail}: the auth config is DISABLED")]), "{error}");
    assert!(error["suggested_fix"].as_str().unwrap().contains("DISABLED"), "{error}");
    assert_eq!(app.event_count().await, events_before, "a refused create emits nothing");
    let nobody =
        composio_error(create_instance(&app, &server, "frank").await, 403, "McpInstance_MissingConnectedAccounts")
            .await;
    assert_eq!(
        nobody["errors"],
        json!([
            format!("{gmail}: the auth config is DISABLED"),
            format!("{slack}: no connected account for this user")
        ])
    );

    json_of(app.composio(Method::PATCH, &format!("/api/v3/auth_configs/{gmail}/ENABLED"), None).await, 200).await;
    json_of(create_instance(&app, &server, "erin").await, 201).await;
}

#[tokio::test]
async fn a_disabled_auth_config_refuses_new_connections() {
    let app = TestApp::spawn().await;
    let gmail = api_key_auth_config(&app, "gmail").await;
    json_of(app.composio(Method::PATCH, &format!("/api/v3/auth_configs/{gmail}/DISABLED"), None).await, 200).await;

    let events_before = app.event_count().await;
    let body = crate::support::composio::api_key_connection(&gmail, "erin", "k");
    let error = composio_error(
        app.composio(Method::POST, "/api/v3/connected_accounts", Some(body.clone())).await,
        400,
        "ConnectedAccount_BadRequest",
    )
    .await;
    assert!(error["message"].as_str().unwrap().contains("disabled"), "{error}");
    assert_eq!(error["code"], 600);
    let link = json!({"auth_config_id": gmail, "user_id": "erin"});
    composio_error(
        app.composio(Method::POST, "/api/v3/connected_accounts/link", Some(link)).await,
        400,
        "ConnectedAccount_BadRequest",
    )
    .await;
    assert_eq!(app.event_count().await, events_before, "nothing was emitted");

    // Hidden from lists unless asked for.
    let listed = json_of(app.composio(Method::GET, "/api/v3/auth_configs", None).await, 200).await;
    assert_eq!(listed["total_items"], 0, "{listed}");
    let listed = json_of(app.composio(Method::GET, "/api/v3/auth_configs?show_disabled=true", None).await, 200).await;
    assert_eq!(listed["items"][0]["status"], "DISABLED", "{listed}");

    json_of(app.composio(Method::PATCH, &format!("/api/v3/auth_configs/{gmail}/ENABLED"), None).await, 200).await;
    json_of(app.composio(Method::POST, "/api/v3/connected_accounts", Some(body)).await, 201).await;
}

#[tokio::test]
async fn a_pending_connection_expires_and_never_satisfies_the_precondition() {
    let app = TestApp::spawn_with(|s| s.pending_connection_ttl = std::time::Duration::from_secs(1)).await;
    let body = json!({
        "toolkit": {"slug": "gmail"},
        "auth_config": {"type": "use_custom_auth", "authScheme": "OAUTH2",
                        "credentials": {"client_id": "the-client", "client_secret": "the-secret"}},
    });
    let config = json_of(app.composio(Method::POST, "/api/v3/auth_configs", Some(body)).await, 201).await;
    let gmail = config["auth_config"]["id"].as_str().unwrap().to_owned();
    let server = mcp_server(&app, "Pending", &[&gmail]).await;

    let connection = json!({"auth_config": {"id": gmail}, "connection": {"user_id": "frank"}});
    let pending = json_of(app.composio(Method::POST, "/api/v3/connected_accounts", Some(connection)).await, 201).await;
    assert_eq!(pending["status"], "INITIATED", "{pending}");
    let redirect_url = pending["redirect_url"].as_str().unwrap().to_owned();
    assert_eq!(pending["connectionData"]["val"]["redirectUrl"], redirect_url.as_str());
    let id = pending["id"].as_str().unwrap().to_owned();
    composio_error(create_instance(&app, &server, "frank").await, 403, "McpInstance_MissingConnectedAccounts").await;

    // The expirer turns it EXPIRED within a few of its one-second rounds.
    let mut status = String::new();
    for _ in 0..100 {
        status = account_status(&app, &id).await;
        if status == "EXPIRED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "EXPIRED");
    let account =
        json_of(app.composio(Method::GET, &format!("/api/v3/connected_accounts/{id}"), None).await, 200).await;
    // The configured lifetime (1 s here), not Composio's fixed 10 minutes.
    assert_eq!(account["status_reason"], "Connection initiation did not complete within 1 second", "{account}");
    composio_error(create_instance(&app, &server, "frank").await, 403, "McpInstance_MissingConnectedAccounts").await;

    // Its link is spent: a page says so, with 410 Gone.
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let followed = browser.get(&redirect_url).send().await.unwrap();
    assert_eq!(followed.status(), 410);
}

/// Where an event of this type sits in the store's order, if there is one.
async fn position_of(app: &TestApp, event_type: &str, field: &str, value: &str) -> Option<i64> {
    let query =
        format!("SELECT global_position FROM events WHERE event_type = $1 AND payload::jsonb #>> '{field}' = $2");
    sqlx::query_scalar(&query).bind(event_type).bind(value).fetch_optional(&app.pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_and_a_create_racing_for_one_user_never_give_an_instance_after_the_revoke() {
    let app = TestApp::spawn().await;
    let gmail = api_key_auth_config(&app, "gmail").await;
    let server = mcp_server(&app, "Race", &[&gmail]).await;
    let (mut created, mut refused) = (0, 0);

    for round in 0..40 {
        let user = format!("racer-{round}");
        let account = connect(&app, &gmail, &user).await;
        let revoke_path = format!("/api/v3/connected_accounts/{account}/revoke");
        let (revoked, create) =
            tokio::join!(app.composio(Method::POST, &revoke_path, None), create_instance(&app, &server, &user));
        assert_eq!(revoked.status(), 200, "round {round}: {}", revoked.text().await.unwrap());

        let revoked_at = position_of(
            &app,
            "connected_account.revoked",
            "{ConnectedAccountRevoked,account,connected_account_id}",
            &account,
        )
        .await
        .unwrap_or_else(|| panic!("round {round}: no revoke event"));
        let created_at = position_of(&app, "instance.created", "{InstanceCreated,slot,user_id}", &user).await;
        match create.status().as_u16() {
            201 => {
                let created_at = created_at.expect("a 201 recorded its instance");
                assert!(
                    created_at < revoked_at,
                    "round {round}: instance at {created_at}, after the revoke at {revoked_at}"
                );
                created += 1;
            }
            403 => {
                assert_eq!(created_at, None, "round {round}: refused, yet an instance was recorded");
                refused += 1;
            }
            other => panic!("round {round}: {other} {}", create.text().await.unwrap()),
        }
    }
    println!("40 races: {created} creates ordered before their revoke, {refused} refused after it");
}
