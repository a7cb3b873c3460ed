//! The gateway and the protocol's own rules: every protocol version the official client
//! speaks (2025-11-25 sessions, and the stateless 2026-07-28 with its `Mcp-Method` /
//! `Mcp-Name` headers and per-request `_meta`), routing headers that must agree with the
//! body, and the `Origin` check against pages of other sites.

use crate::gateway::{app_and_upstream, authenticated, url_of, whoami};
use crate::support::mcp::{Session, python_client_in_mode};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn the_official_client_works_in_every_protocol_mode_read_only_included() {
    let (app, _upstream) = app_and_upstream().await;
    let created = authenticated(&app, "user-a", "token-of-a").await;
    for (mode, version) in [("legacy", "2025-11-25"), ("auto", "2026-07-28"), ("2026-07-28", "2026-07-28")] {
        let report = python_client_in_mode(url_of(&created), &app.key, mode).await;
        assert_eq!(report["protocol_version"], version, "mode {mode}: {report}");
        assert_eq!(report["tools"], json!(["delete_everything", "fail", "slow", "whoami"]), "mode {mode}: {report}");
        let headers = &report["whoami"]["headers"];
        assert_eq!(headers["authorization"], "Bearer token-of-a", "mode {mode}: {report}");
        assert_eq!(headers["x-api-key"], Value::Null, "mode {mode}: the caller's key went upstream");
    }

    // Read-only under 2026-07-28: the gateway lists the upstream's tools itself (to know which
    // are read-only) in the client's name, with its `_meta` and `Mcp-Method`, or the upstream
    // refuses the listing and every call fails.
    let path = format!("/mcp-server/instance/{}", created["instanceId"].as_str().unwrap());
    crate::support::json_of(app.call(Method::PATCH, &path, Some(json!({"isReadOnly": true}))).await, 200).await;
    for mode in ["legacy", "2026-07-28"] {
        let report = python_client_in_mode(url_of(&created), &app.key, mode).await;
        assert_eq!(report["tools"], json!(["fail", "slow", "whoami"]), "mode {mode}: {report}");
        assert_eq!(report["whoami"]["headers"]["authorization"], "Bearer token-of-a", "mode {mode}: {report}");
    }
}

#[tokio::test]
async fn routing_headers_that_disagree_with_the_body_are_refused_and_nothing_goes_upstream() {
    let (app, _upstream) = app_and_upstream().await;
    let created = authenticated(&app, "user-a", "token-of-a").await;
    let (mut session, _) = Session::open(url_of(&created)).await;

    session.extra = vec![("mcp-method".into(), "tools/call".into()), ("mcp-name".into(), "whoami".into())];
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "delete_everything", "arguments": {}}});
    let refused = session.post(&call).await;
    assert_eq!((refused.status, refused.error_code()), (400, Some(-32020)), "{refused:?}");
    assert!(refused.error_message().contains("mcp-name"), "{refused:?}");
    assert_eq!(refused.message["id"], 9);

    session.extra = vec![("mcp-method".into(), "tools/list".into())];
    let refused = session.post(&call).await;
    assert_eq!((refused.status, refused.error_code()), (400, Some(-32020)), "{refused:?}");

    session.extra.clear();
    assert_eq!(whoami(&session.call_tool("whoami", json!({})).await)["deletions"], 0, "the call never went upstream");
}

#[tokio::test]
async fn a_page_of_another_origin_is_refused_and_the_services_own_origin_and_programs_pass() {
    let (app, _upstream) = app_and_upstream().await;
    let created = authenticated(&app, "user-a", "token-of-a").await;

    let mut page = Session::new(url_of(&created));
    page.extra = vec![("origin".into(), "https://evil.example".into())];
    let refused = page.initialize().await;
    assert_eq!((refused.status, refused.error_code()), (403, Some(-32600)), "{refused:?}");
    assert_eq!(refused.message["id"], Value::Null, "the transport's 403 carries no id");
    assert!(refused.error_message().contains("https://evil.example"), "{refused:?}");

    let mut own = Session::new(url_of(&created));
    own.extra = vec![("origin".into(), app.base_url.trim_end_matches('/').to_owned())];
    let admitted = own.initialize().await;
    assert_eq!(admitted.status, 200, "{admitted:?}");
    assert_eq!(whoami(&own.call_tool("whoami", json!({})).await)["headers"]["authorization"], "Bearer token-of-a");
}
