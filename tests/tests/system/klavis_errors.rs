//! Klavis's error formats: FastAPI 422s naming the field (wire names in `loc`), 401/403 for
//! a missing/invalid key, 404 for unknown or another project's ids; nothing changes.

use crate::klavis_instances::create;
use crate::support::{TestApp, json_of};
use reqwest::Method;
use serde_json::{Value, json};

/// The first validation error's `loc`, `type` and `input`.
async fn first_error(response: reqwest::Response) -> (Value, String, Value) {
    let body = json_of(response, 422).await;
    let detail = &body["detail"][0];
    (detail["loc"].clone(), detail["type"].as_str().unwrap().to_owned(), detail["input"].clone())
}

#[tokio::test]
async fn each_bad_input_gets_a_422_locating_the_field() {
    let app = TestApp::spawn().await;
    let id = create(&app, "Gmail", "u").await["instanceId"].as_str().unwrap().to_owned();
    let events_before = app.event_count().await;
    let post = |path: &'static str, body: Value| app.call(Method::POST, path, Some(body));
    let cases: Vec<(&str, reqwest::Response, Value, &str)> = vec![
        ("missing userId", post("/mcp-server/instance/create", json!({"serverName": "Gmail"})).await, json!(["body", "userId"]), "missing"),
        ("missing serverName", post("/mcp-server/instance/create", json!({"userId": "u"})).await, json!(["body", "serverName"]), "missing"),
        ("unknown serverName", post("/mcp-server/instance/create", json!({"serverName": "Gmial", "userId": "u"})).await, json!(["body", "serverName"]), "enum"),
        ("bad connectionType", post("/mcp-server/instance/create", json!({"serverName": "Gmail", "userId": "u", "connectionType": "ws"})).await, json!(["body", "connectionType"]), "enum"),
        ("empty userId", post("/mcp-server/instance/create", json!({"serverName": "Gmail", "userId": ""})).await, json!(["body", "userId"]), "string_too_short"),
        ("userId of the wrong type", post("/mcp-server/instance/create", json!({"serverName": "Gmail", "userId": 42})).await, json!(["body", "userId"]), "string_type"),
        ("isReadOnly of the wrong type", post("/mcp-server/instance/create", json!({"serverName": "Gmail", "userId": "u", "isReadOnly": "yes"})).await, json!(["body", "isReadOnly"]), "bool_type"),
        ("malformed instanceId in a body", post("/mcp-server/instance/set-auth", json!({"instanceId": "abc", "authData": {"token": "t"}})).await, json!(["body", "instanceId"]), "uuid_parsing"),
        ("empty authData", post("/mcp-server/instance/set-auth", json!({"instanceId": id, "authData": {}})).await, json!(["body", "authData"]), "missing"),
        ("unknown authData field", post("/mcp-server/instance/set-auth", json!({"instanceId": id, "authData": {"password": "x"}})).await, json!(["body", "authData", "password"]), "extra_forbidden"),
        ("authData.data not an object", post("/mcp-server/instance/set-auth", json!({"instanceId": id, "authData": {"data": "x"}})).await, json!(["body", "authData", "data"]), "dict_type"),
        ("unknown white-label server", post("/white-labeling/create", json!({"client_id": "c", "client_secret": "s", "server_name": "Nope"})).await, json!(["body", "server_name"]), "enum"),
        ("plain http token_url", post("/white-labeling/create", json!({"client_id": "c", "client_secret": "s", "server_name": "Gmail", "token_url": "http://example.com/t"})).await, json!(["body", "token_url"]), "value_error"),
        ("malformed instanceId in a path", app.call(Method::GET, "/mcp-server/instance/abc", None).await, json!(["path", "instanceId"]), "uuid_parsing"),
        ("unknown serverName in a path", app.call(Method::GET, "/user/u/auth/Nope", None).await, json!(["path", "serverName"]), "enum"),
        ("page_size out of range", app.call(Method::GET, "/user/?page_size=0", None).await, json!(["query", "page_size"]), ""),
        ("PATCH with an unknown field", app.call(Method::PATCH, &format!("/mcp-server/instance/{id}"), Some(json!({"readOnly": true}))).await, json!(["body", "readOnly"]), "extra_forbidden"),
    ];
    for (what, response, loc, kind) in cases {
        let (actual_loc, actual_kind, _) = first_error(response).await;
        assert_eq!(actual_loc, loc, "{what}");
        if !kind.is_empty() {
            assert_eq!(actual_kind, kind, "{what}");
        }
    }

    let malformed = app
        .http
        .post(format!("{}/mcp-server/instance/create", app.base_url))
        .bearer_auth(&app.key)
        .header("content-type", "application/json")
        .body("{\"serverName\":")
        .send()
        .await
        .unwrap();
    let (loc, kind, _) = first_error(malformed).await;
    assert_eq!((loc, kind.as_str()), (json!(["body"]), "json_invalid"));

    assert_eq!(app.event_count().await, events_before, "a refused request left an event");
    assert_eq!(app.secret_key_count().await, 0, "a refused request left a data key");
}

#[tokio::test]
async fn a_secret_in_a_bad_body_is_never_echoed() {
    let app = TestApp::spawn().await;
    let id = create(&app, "Gmail", "u").await["instanceId"].as_str().unwrap().to_owned();
    let response = app
        .call(
            Method::POST,
            "/mcp-server/instance/set-auth",
            Some(json!({"instanceId": id, "authData": {"token": 918273645}})),
        )
        .await;
    let text = response.text().await.unwrap();
    assert!(!text.contains("918273645"), "{text}");
}

#[tokio::test]
async fn a_missing_key_is_401_and_an_invalid_one_403() {
    let app = TestApp::spawn().await;
    let missing = app.http.get(format!("{}/mcp-server/servers", app.base_url)).send().await.unwrap();
    assert_eq!(missing.headers().get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Bearer"));
    let body = json_of(missing, 401).await;
    assert!(body["detail"].is_string(), "{body}");
    let invalid =
        json_of(app.call_as("mcpp_not-a-real-key", Method::GET, "/mcp-server/servers", None).await, 403).await;
    assert_eq!(invalid, json!({"detail": "Invalid API key"}));
}

#[tokio::test]
async fn another_projects_key_gets_404_on_every_instance_endpoint() {
    let app = TestApp::spawn().await;
    let id = create(&app, "Gmail", "victim").await["instanceId"].as_str().unwrap().to_owned();
    let set = json!({"instanceId": id, "authData": {"token": "victim-token"}});
    json_of(app.call(Method::POST, "/mcp-server/instance/set-auth", Some(set)).await, 200).await;
    let (_, stranger) = app.new_project("Stranger").await;
    let events_before = app.event_count().await;

    let attempts = [
        (Method::GET, format!("/mcp-server/instance/{id}"), None),
        (Method::PATCH, format!("/mcp-server/instance/{id}"), Some(json!({"isReadOnly": true}))),
        (Method::DELETE, format!("/mcp-server/instance/{id}"), None),
        (Method::GET, format!("/mcp-server/instance/{id}/auth"), None),
        (Method::DELETE, format!("/mcp-server/instance/{id}/auth"), None),
        (Method::GET, format!("/mcp-server/instance/get/{id}"), None),
        (Method::GET, format!("/mcp-server/instance/get-auth/{id}"), None),
        (Method::DELETE, format!("/mcp-server/instance/delete/{id}"), None),
        (Method::DELETE, format!("/mcp-server/instance/delete-auth/{id}"), None),
        (
            Method::POST,
            "/mcp-server/instance/set-auth".to_owned(),
            Some(json!({"instanceId": id, "authData": {"token": "mine"}})),
        ),
        (
            Method::POST,
            "/mcp-server/instance/set-auth-token".to_owned(),
            Some(json!({"instanceId": id, "authToken": "mine"})),
        ),
        (Method::GET, "/user/victim".to_owned(), None),
        (Method::DELETE, "/user/victim".to_owned(), None),
    ];
    for (method, path, body) in attempts {
        let answer = json_of(app.call_as(&stranger, method.clone(), &path, body).await, 404).await;
        assert!(!answer.to_string().contains("victim-token"), "{method} {path}: {answer}");
    }
    // The stranger's project has no user `victim`: unknown there, and nothing of the victim's.
    let theirs = json_of(app.call_as(&stranger, Method::GET, "/user/victim/auth/Gmail", None).await, 404).await;
    assert!(!theirs.to_string().contains("victim-token"), "{theirs}");
    assert_eq!(app.event_count().await, events_before);
    let still = json_of(app.call(Method::GET, &format!("/mcp-server/instance/{id}/auth"), None).await, 200).await;
    assert_eq!(still["authData"], json!({"token": "victim-token"}));
}
