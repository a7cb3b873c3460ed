//! Every GAIA request needs a live API key of the project.

use crate::support::{TestApp, json_of};
use reqwest::Method;

#[tokio::test]
async fn a_missing_key_answers_401_in_gaias_format() {
    let app = TestApp::spawn().await;
    let response = app.http.get(format!("{}/api/mcp/servers", app.base_url)).send().await.unwrap();
    let body = json_of(response, 401).await;
    assert_eq!(body["success"], false);
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(body["message"], "Missing API key");
}

#[tokio::test]
async fn an_unknown_or_malformed_key_answers_401() {
    let app = TestApp::spawn().await;
    let forged = format!("mcpp_{}", "A".repeat(43));
    for key in [forged.as_str(), "not-a-key", "mcpp_"] {
        let body = json_of(app.call_as(key, Method::GET, "/api/mcp/servers", None).await, 401).await;
        assert_eq!(body["message"], "Invalid API key", "{key}");
    }
}

/// Keys are cached for up to a second; a revocation evicts them as soon as the revocation's
/// announcement arrives (milliseconds), and the cache's lifetime bounds it otherwise.
#[tokio::test]
async fn a_revoked_key_stops_working_within_a_second() {
    let app = TestApp::spawn().await;
    let (project, key) = app.new_project("Revocable").await;
    json_of(app.call_as(&key, Method::GET, "/api/mcp/servers", None).await, 200).await;
    app.revoke(project, &key).await;
    let revoked = std::time::Instant::now();
    loop {
        let status = app.call_as(&key, Method::GET, "/api/mcp/servers", None).await.status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked.elapsed() < std::time::Duration::from_millis(1500),
            "still accepted after the cache's lifetime"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    eprintln!("revoked key refused after {:?}", revoked.elapsed());
}

#[tokio::test]
async fn gaias_own_header_is_accepted_too() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .get(format!("{}/api/mcp/servers", app.base_url))
        .header("gaia-api-key", &app.key)
        .send()
        .await
        .unwrap();
    json_of(response, 200).await;
}
