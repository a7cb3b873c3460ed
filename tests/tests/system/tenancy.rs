//! DESIGN invariant 7: another project's ids answer 404, never 403 or data.

use crate::support::{TestApp, json_of};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn another_projects_key_cannot_see_or_touch_a_server() {
    // Arrange: project A owns a server; project B has its own key.
    let app = TestApp::spawn().await;
    let id = app.register_server("A's server").await;
    let (_, b_key) = app.new_project("B").await;
    let events_before = app.event_count().await;
    let path = format!("/api/mcp/servers/{id}");

    // Act + Assert: every operation answers 404 in GAIA's format.
    for (method, body) in
        [(Method::GET, None), (Method::PATCH, Some(json!({"name": "taken over"}))), (Method::DELETE, None)]
    {
        let body = json_of(app.call_as(&b_key, method.clone(), &path, body).await, 404).await;
        assert_eq!(body["success"], false, "{method}");
        assert_eq!(body["error"], "not_found", "{method}");
        assert!(!body.to_string().contains("A's server"), "{method} leaked data: {body}");
    }

    // B cannot list A's servers by naming A's project, nor register into it.
    let list = format!("/api/mcp/servers?projectId={}", app.project_id);
    json_of(app.call_as(&b_key, Method::GET, &list, None).await, 404).await;
    let own_list = json_of(app.call_as(&b_key, Method::GET, "/api/mcp/servers", None).await, 200).await;
    assert_eq!(own_list["servers"], json!([]));
    json_of(app.call_as(&b_key, Method::POST, "/api/mcp/servers", Some(app.http_server("intruder"))).await, 404).await;

    // Nothing changed: no event, and A still sees its server as it was.
    assert_eq!(app.event_count().await, events_before);
    let a_view = json_of(app.call(Method::GET, &path, None).await, 200).await;
    assert_eq!(a_view["server"]["name"], "A's server");
}

#[tokio::test]
async fn the_same_name_may_exist_in_two_projects() {
    let app = TestApp::spawn().await;
    app.register_server("Shared name").await;
    let (b_project, b_key) = app.new_project("B").await;
    let mut body = app.http_server("Shared name");
    body["projectId"] = json!(b_project.to_string());
    json_of(app.call_as(&b_key, Method::POST, "/api/mcp/servers", Some(body)).await, 201).await;
}
