//! DESIGN invariant 9: bad input gets a clear error in GAIA's format, naming the field, and
//! changes nothing.

use crate::support::{TestApp, json_of};
use reqwest::Method;
use serde_json::{Value, json};

/// A valid body with one field replaced (or removed, with `Value::Null` and `remove`).
fn body_with(app: &TestApp, field: &str, value: Option<Value>) -> Value {
    let mut body = app.http_server("Bad input");
    let object = body.as_object_mut().unwrap();
    match value {
        Some(v) => object.insert(field.to_owned(), v),
        None => object.remove(field),
    };
    body
}

struct Case {
    what: &'static str,
    body: Value,
    status: u16,
    /// The field the error must name, in GAIA's wire names.
    field: &'static str,
}

#[tokio::test]
async fn each_invalid_body_gets_422_naming_the_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let existing = app.register_server("Existing").await;
    let events_before = app.event_count().await;
    let keys_before = app.secret_key_count().await;
    let case = |what, body, field| Case { what, body, status: 422, field };
    let cases = vec![
        case("missing projectId", body_with(&app, "projectId", None), "projectId"),
        case("missing name", body_with(&app, "name", None), "name"),
        case("missing transportType", body_with(&app, "transportType", None), "transportType"),
        case("name of the wrong type", body_with(&app, "name", Some(json!(123))), "name"),
        case("empty name", body_with(&app, "name", Some(json!("  "))), "name"),
        case("name too long", body_with(&app, "name", Some(json!("n".repeat(129)))), "name"),
        case("timeout of the wrong type", body_with(&app, "requestTimeout", Some(json!("fast"))), "requestTimeout"),
        case("zero timeout", body_with(&app, "requestTimeout", Some(json!(0))), "requestTimeout"),
        case("negative timeout", body_with(&app, "maxTotalTimeout", Some(json!(-5))), "maxTotalTimeout"),
        case("unknown transportType", body_with(&app, "transportType", Some(json!("grpc"))), "transportType"),
        case("unknown connectionType", body_with(&app, "connectionType", Some(json!("tunnel"))), "connectionType"),
        case("http without url", body_with(&app, "url", None), "url"),
        case(
            "secrets but no url",
            {
                let mut b = body_with(&app, "url", None);
                b["env"] = json!({"API_KEY": "never stored"});
                b["proxyAuthToken"] = json!("never stored either");
                b
            },
            "url",
        ),
        case("relative url", body_with(&app, "url", Some(json!("/mcp"))), "url"),
        case("ftp url", body_with(&app, "url", Some(json!("ftp://example.com"))), "url"),
        case("malformed proxyUrl", body_with(&app, "proxyUrl", Some(json!("not a url"))), "proxyUrl"),
        case("stdio without command", body_with(&app, "transportType", Some(json!("stdio"))), "command"),
        case("env of the wrong type", body_with(&app, "env", Some(json!(["A=1"]))), "env"),
        case("env value of the wrong type", body_with(&app, "env", Some(json!({"A": 1}))), "env.A"),
        case("bad env name", body_with(&app, "env", Some(json!({"1BAD": "x"}))), "env.1BAD"),
        case(
            "header without a name",
            body_with(&app, "customHeaders", Some(json!([{"value": "v"}]))),
            "customHeaders.0.name",
        ),
        case(
            "header value with CRLF",
            body_with(&app, "customHeaders", Some(json!([{"name": "X", "value": "a\r\nb"}]))),
            "customHeaders.0.value",
        ),
        case("bad proxyAuthHeader", body_with(&app, "proxyAuthHeader", Some(json!("Bad Header"))), "proxyAuthHeader"),
        case("malformed projectId", body_with(&app, "projectId", Some(json!("proj_123"))), "projectId"),
        Case {
            what: "total timeout shorter than a request",
            body: {
                let mut b = app.http_server("Timeouts");
                b["requestTimeout"] = json!(5000);
                b["maxTotalTimeout"] = json!(1000);
                b
            },
            status: 422,
            field: "maxTotalTimeout",
        },
    ];

    for case in cases {
        let response = app.call(Method::POST, "/api/mcp/servers", Some(case.body)).await;
        let body = json_of(response, case.status).await;
        assert_eq!(body["success"], false, "{}: {body}", case.what);
        assert_eq!(body["error"], "validation_error", "{}: {body}", case.what);
        assert_eq!(body["field"], case.field, "{}: {body}", case.what);
        assert!(body["message"].as_str().unwrap().starts_with(case.field), "{}: {body}", case.what);
    }

    let patch_cases = [
        (json!({"url": "nope"}), "url"),
        (json!({"transportType": "stdio"}), "command"),
        (json!({"url": null}), "url"),
        (json!({"requestTimeout": 90000}), "maxTotalTimeout"),
        (json!({"name": 5}), "name"),
    ];
    for (patch, field) in patch_cases {
        let response = app.call(Method::PATCH, &format!("/api/mcp/servers/{existing}"), Some(patch.clone())).await;
        let body = json_of(response, 422).await;
        assert_eq!(body["field"], field, "PATCH {patch}: {body}");
    }

    assert_eq!(app.event_count().await, events_before, "a refused request left an event");
    assert_eq!(app.secret_key_count().await, keys_before, "a refused request left a data key");
}

#[tokio::test]
async fn unreadable_bodies_get_400_413_or_415_and_change_nothing() {
    let app = TestApp::spawn().await;
    let events_before = app.event_count().await;
    let url = format!("{}/api/mcp/servers", app.base_url);
    let send = |body: Vec<u8>, content_type: &'static str| {
        app.http.post(&url).bearer_auth(&app.key).header("content-type", content_type).body(body).send()
    };

    let malformed = json_of(send(b"{\"projectId\": ".to_vec(), "application/json").await.unwrap(), 400).await;
    assert_eq!(malformed["error"], "bad_request");
    assert!(malformed["message"].as_str().unwrap().contains("not valid JSON"), "{malformed}");

    let empty = json_of(send(Vec::new(), "application/json").await.unwrap(), 400).await;
    assert!(empty["message"].as_str().unwrap().contains("empty"), "{empty}");

    let mut huge = app.http_server("Huge");
    huge["description"] = json!("x".repeat(2 * 1024 * 1024));
    let too_large = json_of(send(serde_json::to_vec(&huge).unwrap(), "application/json").await.unwrap(), 413).await;
    assert_eq!(too_large["error"], "payload_too_large");

    let not_json = json_of(send(b"name=x".to_vec(), "text/plain").await.unwrap(), 415).await;
    assert_eq!(not_json["error"], "unsupported_media_type");

    assert_eq!(app.event_count().await, events_before);
}

#[tokio::test]
async fn a_malformed_id_gets_422_naming_the_id() {
    let app = TestApp::spawn().await;
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({"name": "x"}));
        let response = app.call(method.clone(), "/api/mcp/servers/mcp_abc123", body).await;
        let body = json_of(response, 422).await;
        assert_eq!(body["field"], "id", "{method}: {body}");
    }
    let response = app.call(Method::GET, "/api/mcp/servers?projectId=proj_123", None).await;
    assert_eq!(json_of(response, 422).await["field"], "projectId");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_gaias_format() {
    let app = TestApp::spawn().await;
    let body = json_of(app.call(Method::GET, "/api/mcp/nothing-here", None).await, 404).await;
    assert_eq!(body["success"], false);
    let body = json_of(app.call(Method::PUT, "/api/mcp/servers", None).await, 405).await;
    assert_eq!(body["error"], "method_not_allowed");
}
