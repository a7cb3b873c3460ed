//! The GAIA-compatible server registry: shapes, partial updates, name uniqueness, concurrency.

use crate::support::{TestApp, json_of};
use futures::future::join_all;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_registration_answers_201_in_gaias_shape_with_defaults() {
    let app = TestApp::spawn().await;
    let body = json!({
        "projectId": app.project_id.to_string(), "name": "My MCP Server", "description": "Production MCP server",
        "transportType": "http", "url": "https://mcp-server.example.com", "connectionType": "proxy",
    });

    let created = json_of(app.call(Method::POST, "/api/mcp/servers", Some(body)).await, 201).await;

    assert_eq!(created["success"], true);
    assert_eq!(created["message"], "MCP server created successfully");
    let id = created["serverId"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    let server = &created["server"];
    assert_eq!(server["id"], id);
    assert_eq!(server["projectId"], app.project_id.to_string());
    assert_eq!(server["transportType"], "http");
    assert_eq!(server["connectionType"], "proxy");
    assert_eq!(server["proxyAuthHeader"], "Authorization");
    assert_eq!((server["requestTimeout"].clone(), server["maxTotalTimeout"].clone()), (json!(30000), json!(60000)));
    assert_eq!(server["oauthClientSecret"], json!(null));
    assert_eq!(server["hasOauthClientSecret"], false);
}

#[tokio::test]
async fn streamable_http_is_accepted_as_http_and_stdio_servers_keep_their_command() {
    let app = TestApp::spawn().await;
    let mut body = app.http_server("Streamable");
    body["transportType"] = json!("streamable-http");
    let created = json_of(app.call(Method::POST, "/api/mcp/servers", Some(body)).await, 201).await;
    assert_eq!(created["server"]["transportType"], "http");

    let stdio = json!({"projectId": app.project_id.to_string(), "name": "Local", "transportType": "stdio",
                       "command": "npx", "args": "-y @modelcontextprotocol/server-everything", "connectionType": "direct"});
    let created = json_of(app.call(Method::POST, "/api/mcp/servers", Some(stdio)).await, 201).await;
    assert_eq!(created["server"]["command"], "npx");
    assert_eq!(created["server"]["args"], "-y @modelcontextprotocol/server-everything");
    assert_eq!(created["server"]["url"], json!(null));
}

#[tokio::test]
async fn a_patch_changes_only_the_given_fields_and_null_clears() {
    let app = TestApp::spawn().await;
    let mut body = app.http_server("Patched");
    body["description"] = json!("before");
    body["oauthClientSecret"] = json!("secret");
    body["requestTimeout"] = json!(1000);
    let id = json_of(app.call(Method::POST, "/api/mcp/servers", Some(body)).await, 201).await["serverId"]
        .as_str()
        .unwrap()
        .to_owned();

    let patch = json!({"name": "Renamed", "description": null, "oauthClientSecret": null, "maxTotalTimeout": 2000});
    let updated = json_of(app.call(Method::PATCH, &format!("/api/mcp/servers/{id}"), Some(patch)).await, 200).await;

    let server = &updated["server"];
    assert_eq!(updated["message"], "MCP server updated successfully");
    assert_eq!(server["name"], "Renamed");
    assert_eq!(server["description"], json!(null));
    assert_eq!(server["hasOauthClientSecret"], false);
    assert_eq!(server["requestTimeout"], 1000, "untouched");
    assert_eq!(server["maxTotalTimeout"], 2000);
    assert_eq!(server["url"], "https://mcp.example.com/mcp", "untouched");
}

#[tokio::test]
async fn an_empty_patch_changes_nothing_and_emits_nothing() {
    let app = TestApp::spawn().await;
    let id = app.register_server("Still").await;
    let before = app.event_count().await;
    json_of(app.call(Method::PATCH, &format!("/api/mcp/servers/{id}"), Some(json!({}))).await, 200).await;
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn a_deleted_server_is_gone_and_its_name_is_free_again() {
    let app = TestApp::spawn().await;
    let id = app.register_server("Ephemeral").await;

    let deleted = json_of(app.call(Method::DELETE, &format!("/api/mcp/servers/{id}"), None).await, 200).await;
    assert_eq!(deleted, json!({"success": true, "message": "MCP server deleted successfully"}));

    json_of(app.call(Method::GET, &format!("/api/mcp/servers/{id}"), None).await, 404).await;
    json_of(app.call(Method::DELETE, &format!("/api/mcp/servers/{id}"), None).await, 404).await;
    json_of(app.call(Method::PATCH, &format!("/api/mcp/servers/{id}"), Some(json!({"name": "x"}))).await, 404).await;
    let list = json_of(app.call(Method::GET, "/api/mcp/servers", None).await, 200).await;
    assert_eq!(list["servers"], json!([]));
    let again = app.register_server("Ephemeral").await;
    assert_ne!(again, id);
}

#[tokio::test]
async fn names_are_unique_in_a_project_ignoring_case() {
    let app = TestApp::spawn().await;
    app.register_server("Weather").await;
    let other = app.register_server("Other").await;
    let events_before = app.event_count().await;

    let mut duplicate = app.http_server("WEATHER");
    duplicate["oauthClientSecret"] = json!("never stored");
    let taken = json_of(app.call(Method::POST, "/api/mcp/servers", Some(duplicate)).await, 409).await;
    assert_eq!(taken["error"], "conflict");
    assert_eq!(taken["field"], "name");
    let rename = json!({"name": "weather"});
    json_of(app.call(Method::PATCH, &format!("/api/mcp/servers/{other}"), Some(rename)).await, 409).await;
    assert_eq!(app.event_count().await, events_before);
    assert_eq!(app.secret_key_count().await, 0, "a refused registration left a data key");
}

#[tokio::test]
async fn concurrent_registrations_of_one_name_yield_one_server() {
    let app = TestApp::spawn().await;
    let attempts = (0..16).map(|_| app.call(Method::POST, "/api/mcp/servers", Some(app.http_server("Contested"))));

    let statuses: Vec<u16> = join_all(attempts).await.iter().map(|r| r.status().as_u16()).collect();

    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 15, "{statuses:?}");
    let registered: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'server.registered'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(registered, 1);
}

#[tokio::test]
async fn concurrent_updates_of_one_server_all_land() {
    let app = TestApp::spawn().await;
    let id = app.register_server("Busy").await;
    let path = format!("/api/mcp/servers/{id}");
    let updates = (0..8).map(|i| app.call(Method::PATCH, &path, Some(json!({"description": format!("writer {i}")}))));

    let statuses: Vec<u16> = join_all(updates).await.iter().map(|r| r.status().as_u16()).collect();

    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let updated: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'server.updated'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(updated, 8, "each retried update was applied once");
}

#[tokio::test]
async fn the_api_is_documented() {
    let app = TestApp::spawn().await;
    let spec = json_of(app.http.get(format!("{}/openapi.json", app.base_url)).send().await.unwrap(), 200).await;
    for path in ["/api/mcp/servers", "/api/mcp/servers/{id}", "/health", "/ready"] {
        assert!(spec["paths"].get(path).is_some(), "{path} missing from the spec");
    }
    let docs = app.http.get(format!("{}/docs", app.base_url)).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"), "Swagger UI served");
}
