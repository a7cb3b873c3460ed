//! DESIGN invariant 3: views are built from the feed only, so a rebuild from position 0
//! gives exactly the live tables.

use crate::support::TestApp;
use reqwest::Method;
use serde_json::json;
use services::projection::rebuild::{compare, rebuild_into};
use services::startup::views;

#[tokio::test]
async fn a_rebuild_from_position_zero_equals_the_live_views() {
    // Arrange: a history with every kind of event.
    let app = TestApp::spawn().await;
    let (other_project, other_key) = app.new_project("Other").await;
    let kept = app.register_server("Kept").await;
    let changed = app.register_server("Changed").await;
    let deleted = app.register_server("Deleted").await;
    let patch = json!({"description": "now described", "env": {"TOKEN": "s3cret"}, "url": null, "transportType": "stdio", "command": "npx srv"});
    assert_eq!(app.call(Method::PATCH, &format!("/api/mcp/servers/{changed}"), Some(patch)).await.status(), 200);
    assert_eq!(app.call(Method::DELETE, &format!("/api/mcp/servers/{deleted}"), None).await.status(), 200);
    app.revoke(other_project, &other_key).await;
    app.allow_redirects_to(&["app.example.com", "*.example.org"]).await;
    let at = app.settled().await;

    // Act
    let reached = rebuild_into(&app.pool, "rebuild_check", &views(), at).await.unwrap();
    let differences = compare(&app.pool, "rebuild_check", &views()).await.unwrap();

    // Assert
    assert_eq!(reached, at);
    assert!(differences.is_empty(), "rebuilt views differ from live ones: {differences:#?}");
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM rebuild_check.view_servers").fetch_one(&app.pool).await.unwrap();
    assert_eq!(rows, 3, "the rebuild saw every server, the deleted one included");
    assert!(!kept.is_empty());
    let hosts: Vec<String> =
        sqlx::query_scalar("SELECT redirect_hosts FROM rebuild_check.view_projects WHERE project_id = $1")
            .bind(app.project_id.as_uuid())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(hosts, ["*.example.org", "app.example.com"], "the rebuild holds the redirect allow-list");
}

#[tokio::test]
async fn the_comparison_finds_a_tampered_row() {
    let app = TestApp::spawn().await;
    let id = app.register_server("Tampered").await;
    let at = app.settled().await;
    rebuild_into(&app.pool, "rebuild_tamper", &views(), at).await.unwrap();
    sqlx::query("UPDATE view_servers SET name = 'not what the events say' WHERE server_id = $1::uuid")
        .bind(&id)
        .execute(&app.pool)
        .await
        .unwrap();

    let differences = compare(&app.pool, "rebuild_tamper", &views()).await.unwrap();

    assert_eq!(differences.len(), 1, "{differences:#?}");
    assert_eq!(differences[0].table, "view_servers");
    assert_eq!(differences[0].only_live[0]["name"], "not what the events say");
    assert_eq!(differences[0].only_rebuilt[0]["name"], "Tampered");
}

#[tokio::test]
async fn a_rebuild_equals_the_live_views_after_composio_and_klavis_history() {
    use crate::support::composio::{api_key_auth_config, connect, create_instance, mcp_server};
    let app = TestApp::spawn().await;
    let gmail = api_key_auth_config(&app, "gmail").await;
    let slack = api_key_auth_config(&app, "slack").await;
    let rename = json!({"type": "custom", "name": "Renamed"});
    assert_eq!(app.composio(Method::PATCH, &format!("/api/v3/auth_configs/{slack}"), Some(rename)).await.status(), 200);
    let server = mcp_server(&app, "Rebuilt", &[&gmail]).await;
    connect(&app, &gmail, "kept").await;
    assert_eq!(create_instance(&app, &server, "kept").await.status(), 201);
    connect(&app, &gmail, "gone").await;
    assert_eq!(create_instance(&app, &server, "gone").await.status(), 201);
    let path = format!("/api/v3/mcp/servers/{server}/instances/gone");
    assert_eq!(app.composio(Method::DELETE, &path, None).await.status(), 200);
    let revoked = connect(&app, &slack, "kept").await;
    let path = format!("/api/v3/connected_accounts/{revoked}/revoke");
    assert_eq!(app.composio(Method::POST, &path, None).await.status(), 200);
    let link = json!({"auth_config_id": slack, "user_id": "kept"});
    assert_eq!(
        app.composio(Method::PATCH, &format!("/api/v3/auth_configs/{slack}/DISABLED"), None).await.status(),
        200
    );
    assert_eq!(app.composio(Method::POST, "/api/v3/connected_accounts/link", Some(link)).await.status(), 400);
    let klavis = json!({"serverName": "Gmail", "userId": "kept"});
    assert_eq!(app.call(Method::POST, "/mcp-server/instance/create", Some(klavis)).await.status(), 200);
    let at = app.settled().await;

    let reached = rebuild_into(&app.pool, "rebuild_composio", &views(), at).await.unwrap();
    let differences = compare(&app.pool, "rebuild_composio", &views()).await.unwrap();

    assert_eq!(reached, at);
    assert!(differences.is_empty(), "rebuilt views differ from live ones: {differences:#?}");
    for (table, expected) in [("view_auth_configs", 2), ("view_connected_accounts", 3)] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM rebuild_composio.{table}"))
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(rows, expected, "{table}");
    }
}
