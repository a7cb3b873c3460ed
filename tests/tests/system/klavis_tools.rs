//! Klavis's REST helpers over MCP (`POST /mcp-server/list-tools`, `/mcp-server/call-tool`):
//! an instance's `serverUrl` reached through the gateway with the instance's credential and
//! policy, against a real upstream MCP server (tests/upstream/upstream.py), and Klavis's own
//! Python SDK pointed at the service.

use crate::support::mcp::{Upstream, dead_url, python};
use crate::support::{TestApp, json_of};
use reqwest::Method;
use serde_json::{Value, json};
use services::gateway::Upstreams;
use std::path::PathBuf;
use std::time::Duration;

/// The app with GitHub (OAuth) bound to the upstream.
async fn app_and_upstream() -> (TestApp, Upstream) {
    let upstream = Upstream::start().await;
    let upstreams = Upstreams::parse(&format!("[github]\nurl = \"{}\"\n", upstream.url)).unwrap();
    let app = TestApp::spawn_with(move |settings| settings.gateway.upstreams = upstreams).await;
    (app, upstream)
}

/// A GitHub instance of `user` authenticated with `token`; its create answer.
async fn authenticated(app: &TestApp, user: &str, token: &str, read_only: bool) -> Value {
    let body = json!({"serverName": "GitHub", "userId": user, "isReadOnly": read_only});
    let created = json_of(app.call(Method::POST, "/mcp-server/instance/create", Some(body)).await, 200).await;
    let set = json!({"instanceId": created["instanceId"], "authData": {"token": token}});
    json_of(app.call(Method::POST, "/mcp-server/instance/set-auth", Some(set)).await, 200).await;
    created
}

async fn list(app: &TestApp, server_url: &str, format: &str) -> Value {
    let body = json!({"serverUrl": server_url, "format": format});
    json_of(app.call(Method::POST, "/mcp-server/list-tools", Some(body)).await, 200).await
}

async fn call(app: &TestApp, server_url: &str, tool: &str, args: Value) -> Value {
    let body = json!({"serverUrl": server_url, "toolName": tool, "toolArgs": args});
    json_of(app.call(Method::POST, "/mcp-server/call-tool", Some(body)).await, 200).await
}

fn names(listed: &Value, name_at: &str) -> Vec<String> {
    let tools = listed["tools"].as_array().unwrap_or_else(|| panic!("no tools: {listed}"));
    let mut names: Vec<String> = tools.iter().map(|t| t.pointer(name_at).unwrap().as_str().unwrap().into()).collect();
    names.sort();
    names
}

/// whoami's report (the headers the upstream received, the deletions it ran) in a call answer.
fn whoami(answer: &Value) -> Value {
    let text = answer.pointer("/result/content/0/text").and_then(Value::as_str);
    serde_json::from_str(text.unwrap_or_else(|| panic!("whoami answered {answer}"))).unwrap()
}

#[tokio::test]
async fn list_tools_and_call_tool_reach_the_instances_upstream_with_its_credential() {
    let (app, _upstream) = app_and_upstream().await;
    let a = authenticated(&app, "user-a", "token-of-a", false).await;
    let url = a["serverUrl"].as_str().unwrap();

    let native = list(&app, url, "mcp_native").await;
    assert_eq!((native["success"].clone(), native["format"].clone()), (json!(true), json!("mcp_native")), "{native}");
    assert_eq!(names(&native, "/name"), ["delete_everything", "fail", "slow", "whoami"]);
    let whoami_tool = native["tools"].as_array().unwrap().iter().find(|t| t["name"] == "whoami").unwrap();
    assert_eq!(whoami_tool["annotations"]["readOnlyHint"], true, "the MCP tool as the upstream gave it");
    let openai = list(&app, url, "openai").await;
    assert_eq!(names(&openai, "/function/name"), ["delete_everything", "fail", "slow", "whoami"]);
    assert!(
        openai["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["type"] == "function" && t["function"]["parameters"]["type"] == "object")
    );
    let anthropic = list(&app, url, "anthropic").await;
    assert_eq!(names(&anthropic, "/name"), ["delete_everything", "fail", "slow", "whoami"]);
    assert!(anthropic["tools"][0]["input_schema"].is_object(), "{anthropic}");

    // The caller's own key (in Authorization) never reaches the upstream: the instance's does.
    let called = call(&app, url, "whoami", json!({})).await;
    assert_eq!((called["success"].clone(), called["result"]["isError"].clone()), (json!(true), json!(false)));
    assert_eq!(whoami(&called)["headers"]["authorization"], "Bearer token-of-a");
    let b = authenticated(&app, "user-b", "token-of-b", false).await;
    let called_b = call(&app, b["serverUrl"].as_str().unwrap(), "whoami", json!({})).await;
    assert_eq!(whoami(&called_b)["headers"]["authorization"], "Bearer token-of-b");

    // Arguments pass through; the SSE form of the URL names the same instance.
    let sse_url = format!("{}/sse?instance_id={}", app.base_url, a["instanceId"].as_str().unwrap());
    let slept = call(&app, &sse_url, "slow", json!({"seconds": 0})).await;
    assert_eq!(slept.pointer("/result/content/0/text"), Some(&json!("slept 0.0s")), "{slept}");

    // A tool that fails is a 200 with success false, its text the error.
    let failed = call(&app, url, "fail", json!({})).await;
    assert_eq!((failed["success"].clone(), failed["result"]["isError"].clone()), (json!(false), json!(true)));
    assert_eq!(failed["error"], "Error executing tool fail", "the upstream's text: {failed}");
}

#[tokio::test]
async fn a_read_only_instance_lists_and_calls_only_read_only_tools() {
    let (app, _upstream) = app_and_upstream().await;
    let created = authenticated(&app, "user-a", "token-of-a", true).await;
    let url = created["serverUrl"].as_str().unwrap();

    assert_eq!(names(&list(&app, url, "mcp_native").await, "/name"), ["fail", "slow", "whoami"]);
    assert_eq!(names(&list(&app, url, "openai").await, "/function/name"), ["fail", "slow", "whoami"]);
    let refused = call(&app, url, "delete_everything", json!({})).await;
    assert_eq!((refused["success"].clone(), refused["result"].clone()), (json!(false), Value::Null), "{refused}");
    assert_eq!(refused["error"], "Unknown tool: delete_everything", "refused as over MCP");
    assert_eq!(whoami(&call(&app, url, "whoami", json!({})).await)["deletions"], 0, "never went upstream");
}

#[tokio::test]
async fn urls_not_issued_here_and_instances_not_the_callers_answer_404_and_call_nothing() {
    let (app, _upstream) = app_and_upstream().await;
    let a = authenticated(&app, "user-a", "token-of-a", false).await;
    let id = a["instanceId"].as_str().unwrap();
    // Another host, with a real instance id: refused without a connection to it.
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let foreign_host = format!("http://{}/mcp/?instance_id={id}", elsewhere.local_addr().unwrap());
    let (_, b_key) = app.new_project("B").await;

    let cases = [
        (app.key.clone(), format!("{}/mcp/?instance_id={}", app.base_url, uuid::Uuid::new_v4()), "Instance not found"),
        (app.key.clone(), format!("{}/mcp/?instance_id=nope", app.base_url), "No MCP server instance"),
        (app.key.clone(), format!("{}/other?instance_id={id}", app.base_url), "No MCP server instance"),
        (app.key.clone(), foreign_host, "No MCP server instance"),
        (b_key, a["serverUrl"].as_str().unwrap().to_owned(), "Instance not found"),
    ];
    for (key, server_url, detail) in cases {
        for (path, body) in [
            ("/mcp-server/list-tools", json!({"serverUrl": server_url})),
            ("/mcp-server/call-tool", json!({"serverUrl": server_url, "toolName": "whoami"})),
        ] {
            let answer = json_of(app.call_as(&key, Method::POST, path, Some(body)).await, 404).await;
            assert!(answer["detail"].as_str().unwrap().contains(detail), "{path} {server_url}: {answer}");
        }
    }
    let connected = tokio::time::timeout(Duration::from_millis(200), elsewhere.accept()).await;
    assert!(connected.is_err(), "the other host was called");

    // Deleted: 404. Not authenticated yet: 200, success false, with where to authorize.
    json_of(app.call(Method::DELETE, &format!("/mcp-server/instance/{id}"), None).await, 200).await;
    let body = json!({"serverUrl": a["serverUrl"]});
    json_of(app.call(Method::POST, "/mcp-server/list-tools", Some(body)).await, 404).await;
    let body = json!({"serverName": "GitHub", "userId": "user-c"});
    let c = json_of(app.call(Method::POST, "/mcp-server/instance/create", Some(body)).await, 200).await;
    let not_yet = list(&app, c["serverUrl"].as_str().unwrap(), "mcp_native").await;
    assert_eq!((not_yet["success"].clone(), not_yet["tools"].clone()), (json!(false), Value::Null), "{not_yet}");
    assert!(not_yet["error"].as_str().unwrap().contains(c["oauthUrl"].as_str().unwrap()), "{not_yet}");
    // A server with no upstream bound: 200, success false, naming the missing binding.
    let body = json!({"serverName": "Gmail", "userId": "user-c"});
    let gmail = json_of(app.call(Method::POST, "/mcp-server/instance/create", Some(body)).await, 200).await;
    let unbound = call(&app, gmail["serverUrl"].as_str().unwrap(), "whoami", json!({})).await;
    assert_eq!(unbound["success"], false, "{unbound}");
    assert!(unbound["error"].as_str().unwrap().contains("[gmail]"), "{unbound}");
}

#[tokio::test]
async fn an_upstream_that_is_down_is_success_false_not_an_error_status() {
    let upstreams = Upstreams::parse(&format!("[github]\nurl = \"{}\"\n", dead_url())).unwrap();
    let app = TestApp::spawn_with(move |settings| settings.gateway.upstreams = upstreams).await;
    let created = authenticated(&app, "user-a", "token-of-a", false).await;
    let url = created["serverUrl"].as_str().unwrap();
    let listed = list(&app, url, "openai").await;
    assert_eq!((listed["success"].clone(), listed["format"].clone()), (json!(false), json!("openai")), "{listed}");
    assert!(listed["error"].as_str().unwrap().contains("unreachable"), "{listed}");
    let called = call(&app, url, "whoami", json!({})).await;
    assert_eq!(called["success"], false, "{called}");
    assert!(called["error"].as_str().unwrap().contains("unreachable"), "{called}");
}

#[tokio::test]
async fn bad_bodies_answer_422_naming_the_field() {
    let (app, _upstream) = app_and_upstream().await;
    let url = format!("{}/mcp/?instance_id={}", app.base_url, uuid::Uuid::new_v4());
    let cases = [
        ("/mcp-server/list-tools", json!({}), json!(["body", "serverUrl"]), "missing"),
        ("/mcp-server/list-tools", json!({"serverUrl": 5}), json!(["body", "serverUrl"]), "string_type"),
        ("/mcp-server/list-tools", json!({"serverUrl": "not a url"}), json!(["body", "serverUrl"]), "url_parsing"),
        ("/mcp-server/list-tools", json!({"serverUrl": url, "format": "yaml"}), json!(["body", "format"]), "enum"),
        (
            "/mcp-server/list-tools",
            json!({"serverUrl": url, "connectionType": "ws"}),
            json!(["body", "connectionType"]),
            "enum",
        ),
        (
            "/mcp-server/list-tools",
            json!({"serverUrl": url, "headers": {"a": 1}}),
            json!(["body", "headers", "a"]),
            "string_type",
        ),
        ("/mcp-server/call-tool", json!({"serverUrl": url}), json!(["body", "toolName"]), "missing"),
        (
            "/mcp-server/call-tool",
            json!({"serverUrl": url, "toolName": "w", "toolArgs": "x"}),
            json!(["body", "toolArgs"]),
            "dict_type",
        ),
        (
            "/mcp-server/call-tool",
            json!({"serverUrl": url, "toolName": ""}),
            json!(["body", "toolName"]),
            "string_too_short",
        ),
    ];
    for (path, body, loc, kind) in cases {
        let response = app.call(Method::POST, path, Some(body.clone())).await;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(
            (&answer["detail"][0]["loc"], answer["detail"][0]["type"].as_str()),
            (&loc, Some(kind)),
            "{body}: {answer}"
        );
    }
}

/// tests/upstream/klavis_sdk.py: Klavis's Python SDK against `base_url`; its JSON report.
async fn klavis_sdk(base_url: &str, key: &str, server_url: &str) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("upstream/klavis_sdk.py");
    let run = tokio::process::Command::new(python()).arg(script).arg(base_url).arg(key).arg(server_url).output();
    let output = tokio::time::timeout(Duration::from_secs(60), run).await.expect("within 60 s").expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!("the SDK script printed no JSON: {stdout} {}", String::from_utf8_lossy(&output.stderr))
    })
}

#[tokio::test]
async fn klavis_python_sdk_lists_and_calls_tools_by_changing_only_base_url() {
    let (app, _upstream) = app_and_upstream().await;
    let created = authenticated(&app, "user-a", "token-of-a", false).await;
    let report = klavis_sdk(&app.base_url, &app.key, created["serverUrl"].as_str().unwrap()).await;
    assert_eq!(report.get("error"), None, "{report}");
    assert_eq!(
        report["native"],
        json!({"success": true, "format": "mcp_native", "names": ["delete_everything", "fail", "slow", "whoami"]})
    );
    assert_eq!(report["openai"], json!(["delete_everything", "fail", "slow", "whoami"]));
    assert_eq!(report["whoami"]["success"], true);
    let seen: Value = serde_json::from_str(report["whoami"]["text"].as_str().unwrap()).unwrap();
    assert_eq!(seen["headers"]["authorization"], "Bearer token-of-a");
    assert_eq!(report["fail"]["success"], false);
    assert_eq!(report["fail"]["is_error"], true);
    assert_eq!(report["fail"]["error"], "Error executing tool fail", "{report}");
}

#[tokio::test]
async fn the_helpers_are_in_the_openapi_spec_with_klavis_field_names() {
    let app = TestApp::spawn().await;
    let spec = json_of(app.http.get(format!("{}/openapi.json", app.base_url)).send().await.unwrap(), 200).await;
    let schema_of = |path: &str| {
        let reference =
            spec["paths"][path]["post"]["requestBody"]["content"]["application/json; charset=utf-8"]["schema"]["$ref"]
                .as_str()
                .or_else(|| {
                    spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
                })
                .unwrap_or_else(|| panic!("{path} has no JSON body in the spec: {}", spec["paths"][path]));
        let name = reference.rsplit('/').next().unwrap();
        let mut fields: Vec<String> =
            spec["components"]["schemas"][name]["properties"].as_object().unwrap().keys().cloned().collect();
        fields.sort();
        fields
    };
    assert_eq!(schema_of("/mcp-server/list-tools"), ["connectionType", "format", "headers", "serverUrl"]);
    assert_eq!(schema_of("/mcp-server/call-tool"), ["connectionType", "headers", "serverUrl", "toolArgs", "toolName"]);
    let mut formats: Vec<&str> = spec["components"]["schemas"]["ToolFormat"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    formats.sort();
    assert_eq!(formats, ["anthropic", "gemini", "mcp_native", "openai"]);
}
