//! Audit (issue 7): who changed what, from which request, over HTTP and from the CLI; and
//! reads of a past state (`as_of`).

use crate::support::{TestApp, json_of, run_cli};
use reqwest::Method;
use serde_json::{Value, json};

/// Creates a Gmail instance for `user` with `x-request-id: <request_id>`; returns its id.
async fn create_instance(app: &TestApp, user: &str, request_id: &str) -> String {
    let response = app
        .http
        .post(format!("{}/mcp-server/instance/create", app.base_url))
        .bearer_auth(&app.key)
        .header("x-request-id", request_id)
        .header("user-agent", "audit-test/1.0")
        .json(&json!({"serverName": "Gmail", "userId": user}))
        .send()
        .await
        .unwrap();
    json_of(response, 200).await["instanceId"].as_str().unwrap().to_owned()
}

async fn audit_of(app: &TestApp, path_and_query: &str) -> Value {
    json_of(app.call(Method::GET, path_and_query, None).await, 200).await
}

#[tokio::test]
async fn the_audit_shows_the_actor_and_request_id_of_a_create() {
    // Arrange
    let app = TestApp::spawn().await;
    let instance = create_instance(&app, "alice", "abc").await;
    let key_id = app.key_id(&app.key).await;

    // Act
    let audit = audit_of(&app, &format!("/api/v1/audit/instance/{instance}")).await;

    // Assert
    let events = audit["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{audit:#}");
    let created = &events[0];
    assert_eq!(created["event_type"], "instance.created");
    assert_eq!(created["actor"], format!("api_key:{key_id}"));
    assert_eq!(created["request_id"], "abc");
    assert_eq!(created["client_addr"], "127.0.0.1");
    assert_eq!(created["user_agent"], "audit-test/1.0");
    assert_eq!(created["data"]["InstanceCreated"]["instance_id"], instance.as_str());
    assert_eq!(audit["aggregate_type"], "instance");
    assert_ne!(audit["aggregate_id"], instance.as_str(), "the history is the slot's, named by the slot id");
}

#[tokio::test]
async fn the_cli_prints_the_same_history_as_a_table_and_as_json_lines() {
    let app = TestApp::spawn().await;
    let instance = create_instance(&app, "alice", "abc").await;
    let response = app.call(Method::DELETE, &format!("/mcp-server/instance/{instance}"), None).await;
    assert_eq!(response.status(), 200);
    let key_id = app.key_id(&app.key).await;
    let env = [("DATABASE_URL", app.database_url())];

    let table = run_cli(&["audit", "--instance", &instance], &env).await;
    let lines = run_cli(&["audit", "--instance", &instance, "--json"], &env).await;
    let deletions = run_cli(&["audit", "--instance", &instance, "--json", "--type", "instance.deleted"], &env).await;

    assert!(table.success, "{table:?}");
    let rows: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(rows.len(), 3, "a header and two events:\n{}", table.stdout);
    assert!(rows[0].contains("ACTOR") && rows[0].contains("REQUEST_ID"), "{}", rows[0]);
    assert!(
        rows[1].contains("instance.created")
            && rows[1].contains(&format!("api_key:{key_id}"))
            && rows[1].contains(" abc ")
    );
    assert!(rows[2].contains("instance.deleted"), "{}", rows[2]);
    assert!(lines.success, "{lines:?}");
    let parsed: Vec<Value> = lines.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0]["request_id"], "abc");
    assert_eq!(parsed[0]["actor"], format!("api_key:{key_id}"));
    let only: Vec<Value> = deletions.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["event_type"], "instance.deleted");
}

#[tokio::test]
async fn a_users_history_spans_their_slots_and_no_one_elses() {
    let app = TestApp::spawn().await;
    let gmail = create_instance(&app, "alice", "r1").await;
    let slack = {
        let body = json!({"serverName": "Slack", "userId": "alice"});
        json_of(app.call(Method::POST, "/mcp-server/instance/create", Some(body)).await, 200).await["instanceId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    create_instance(&app, "bob", "r3").await;
    let project = app.project_id.to_string();
    let env = [("DATABASE_URL", app.database_url())];

    let run = run_cli(&["audit", "--user", "alice", "--project", &project, "--json"], &env).await;

    assert!(run.success, "{run:?}");
    let ids: Vec<String> = run
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["data"]["InstanceCreated"]["instance_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, vec![gmail, slack], "alice's two creations, in commit order, and not bob's");
}

#[tokio::test]
async fn another_projects_history_is_not_found_and_bad_parameters_name_themselves() {
    let app = TestApp::spawn().await;
    let instance = create_instance(&app, "alice", "abc").await;
    let (_, other_key) = app.new_project("Other").await;
    let events_before = app.event_count().await;

    let foreign = app.call_as(&other_key, Method::GET, &format!("/api/v1/audit/instance/{instance}"), None).await;
    let project =
        app.call_as(&other_key, Method::GET, &format!("/api/v1/audit/project/{}", app.project_id), None).await;
    let unknown_type = app.call(Method::GET, &format!("/api/v1/audit/widget/{instance}"), None).await;
    let bad_since = app.call(Method::GET, &format!("/api/v1/audit/instance/{instance}?since=yesterday"), None).await;
    let unknown_id = app.call(Method::GET, "/api/v1/audit/server/not-a-server", None).await;
    let no_key = app.http.get(format!("{}/api/v1/audit/instance/{instance}", app.base_url)).send().await.unwrap();

    assert_eq!(json_of(foreign, 404).await["error"], "No history found for this aggregate");
    assert_eq!(project.status(), 404);
    assert!(
        json_of(unknown_type, 422).await["error"]
            .as_str()
            .unwrap()
            .starts_with("aggregateType: unknown aggregate type")
    );
    assert!(
        json_of(bad_since, 422).await["error"]
            .as_str()
            .unwrap()
            .starts_with("since: `yesterday` is not an RFC 3339 time")
    );
    assert_eq!(unknown_id.status(), 404);
    assert_eq!(no_key.status(), 401);
    assert_eq!(app.event_count().await, events_before, "reads changed nothing");
}

#[tokio::test]
async fn as_of_answers_the_state_at_that_time() {
    // Arrange: created, then authenticated, then deleted.
    let app = TestApp::spawn().await;
    let instance = create_instance(&app, "alice", "abc").await;
    let auth = json!({"instanceId": instance, "authData": {"token": "t0ken"}});
    assert_eq!(app.call(Method::POST, "/mcp-server/instance/set-auth", Some(auth)).await.status(), 200);
    assert_eq!(app.call(Method::DELETE, &format!("/mcp-server/instance/{instance}"), None).await.status(), 200);
    let history = audit_of(&app, &format!("/api/v1/audit/instance/{instance}")).await;
    let times: Vec<chrono::DateTime<chrono::Utc>> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["recorded_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(times.len(), 3, "{history:#}");
    let at =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).replace('+', "%2B");
    let app = &app;
    let instance = instance.as_str();
    let get = |as_of: String| {
        let path = format!("/mcp-server/instance/{instance}?as_of={as_of}");
        async move { app.call(Method::GET, &path, None).await }
    };

    // Act
    let before = get(at(times[0] - chrono::Duration::milliseconds(1))).await;
    let created = json_of(get(at(times[0])).await, 200).await;
    let authenticated = json_of(get(at(times[1])).await, 200).await;
    let deleted = get(at(times[2])).await;
    let now = app.call(Method::GET, &format!("/mcp-server/instance/{instance}"), None).await;
    let malformed = app.call(Method::GET, &format!("/mcp-server/instance/{instance}?as_of=noon"), None).await;
    let (_, other_key) = app.new_project("Other").await;
    let foreign = app
        .call_as(&other_key, Method::GET, &format!("/mcp-server/instance/{instance}?as_of={}", at(times[1])), None)
        .await;
    let state = audit_of(app, &format!("/api/v1/audit/instance/{instance}?as_of={}", at(times[1]))).await;

    // Assert
    assert_eq!(before.status(), 404, "before its creation the instance did not exist");
    assert_eq!(created["instanceId"], instance);
    assert_eq!(created["isAuthenticated"], false, "between creation and set-auth: the earlier state");
    assert_eq!(created["externalUserId"], "alice");
    assert_eq!(authenticated["isAuthenticated"], true);
    assert_eq!(deleted.status(), 404, "deleted by then");
    assert_eq!(now.status(), 404);
    let malformed = json_of(malformed, 422).await;
    assert_eq!(malformed["detail"][0]["loc"], json!(["query", "as_of"]), "{malformed:#}");
    assert_eq!(foreign.status(), 404);
    assert_eq!(state["events"].as_array().unwrap().len(), 2, "the history until as_of");
    assert!(state["state"].is_object(), "{state:#}");
    let sealed = &history["events"][1]["data"]["InstanceAuthSet"]["credential"];
    assert!(sealed["key_id"].is_string(), "the credential is named by its key: {history:#}");
    for shown in [history.to_string(), state.to_string()] {
        assert!(!shown.contains("ciphertext") && !shown.contains("nonce") && !shown.contains("t0ken"), "{shown}");
    }
}
