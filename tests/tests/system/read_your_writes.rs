//! DESIGN invariant 4: after a 2xx, the same caller's next read sees the write.

use crate::support::{TestApp, json_of};
use reqwest::Method;

#[tokio::test]
async fn a_registered_server_is_at_once_readable_and_listed_200_times_in_a_row() {
    let app = TestApp::spawn().await;
    for i in 0..200 {
        let created = json_of(
            app.call(Method::POST, "/api/mcp/servers", Some(app.http_server(&format!("server {i}")))).await,
            201,
        )
        .await;
        let id = created["serverId"].as_str().unwrap();

        let found = app.call(Method::GET, &format!("/api/mcp/servers/{id}"), None).await;
        assert_eq!(found.status(), 200, "iteration {i}: GET missed the server just created");
        let listed = json_of(app.call(Method::GET, "/api/mcp/servers", None).await, 200).await;
        let ids: Vec<&str> = listed["servers"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert!(ids.contains(&id), "iteration {i}: the list missed the server just created");
        assert_eq!(ids.len(), i + 1, "iteration {i}");
    }
}

#[tokio::test]
async fn an_update_and_a_delete_are_at_once_visible() {
    let app = TestApp::spawn().await;
    for i in 0..50 {
        let id = app.register_server(&format!("s{i}")).await;
        let patched = app
            .call(
                Method::PATCH,
                &format!("/api/mcp/servers/{id}"),
                Some(serde_json::json!({"description": format!("v{i}")})),
            )
            .await;
        assert_eq!(patched.status(), 200);
        let found = json_of(app.call(Method::GET, &format!("/api/mcp/servers/{id}"), None).await, 200).await;
        assert_eq!(found["server"]["description"], format!("v{i}"));
        assert_eq!(app.call(Method::DELETE, &format!("/api/mcp/servers/{id}"), None).await.status(), 200);
        assert_eq!(app.call(Method::GET, &format!("/api/mcp/servers/{id}"), None).await.status(), 404, "iteration {i}");
    }
}
