//! DESIGN invariant 1 (a failed request leaves no event) and the projector's refusal to skip
//! an event it cannot apply.

use crate::support::{TestApp, json_of};
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_write_that_fails_in_the_store_answers_500_and_leaves_nothing() {
    // Arrange: sabotage the store for one server name, the way zero2prod drops a column.
    let app = TestApp::spawn().await;
    app.fail_events_mentioning("Doomed").await;
    let events_before = app.event_count().await;

    // Act
    let response = app.call(Method::POST, "/api/mcp/servers", Some(app.http_server("Doomed"))).await;

    // Assert: a 5xx in GAIA's format, without the cause; no event, no name taken, no view row.
    let body = json_of(response, 500).await;
    assert_eq!(body["success"], false);
    assert_eq!(body["error"], "internal_error");
    assert!(!body.to_string().contains("sabotaged"), "the cause leaked: {body}");
    assert_eq!(app.event_count().await, events_before);
    let names: i64 = sqlx::query_scalar("SELECT count(*) FROM server_names").fetch_one(&app.pool).await.unwrap();
    assert_eq!(names, 0);
    let listed = json_of(app.call(Method::GET, "/api/mcp/servers", None).await, 200).await;
    assert_eq!(listed["servers"], serde_json::json!([]));
}

#[tokio::test]
async fn an_event_the_projector_cannot_apply_stops_it_and_ready_says_so() {
    let app = TestApp::spawn_with(|s| s.max_view_lag = Duration::from_secs(1)).await;
    let ready = app.http.get(format!("{}/ready", app.base_url)).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    // A stored event of a known type whose payload does not decode.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('project', $1, 1, 'project.created', '1.0', '{\"ProjectCreated\": {\"bogus\": true}}', '{}')",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .execute(&app.pool)
    .await
    .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let body: Value = loop {
        let response = app.http.get(format!("{}/ready", app.base_url)).send().await.unwrap();
        if response.status() == 503 {
            break response.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "still ready with a stuck projector");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["projector"]["ok"], false);
    assert_eq!(body["projector_lag_events"], 1, "{body}");
    assert_eq!(body["database"]["ok"], true);
}

/// Holds a transaction id open in another session of the cluster: the feed's horizon cannot
/// pass it, so no view moves until it ends.
async fn hold_the_horizon(app: &TestApp) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()").execute(&mut *tx).await.unwrap();
    tx
}

#[tokio::test]
async fn a_committed_write_answers_2xx_from_its_events_when_the_views_cannot_catch_up() {
    let app = TestApp::spawn_with(|s| s.read_your_writes_timeout = Duration::from_millis(500)).await;
    let id = app.register_server("Before").await;
    let horizon = hold_the_horizon(&app).await;

    let created =
        json_of(app.call(Method::POST, "/api/mcp/servers", Some(app.http_server("While stuck"))).await, 201).await;
    let patch = serde_json::json!({"description": "changed while stuck"});
    let patched = json_of(app.call(Method::PATCH, &format!("/api/mcp/servers/{id}"), Some(patch)).await, 200).await;

    assert_eq!(created["server"]["name"], "While stuck");
    assert_eq!(patched["server"]["description"], "changed while stuck", "answered from the events, not the stale view");
    horizon.rollback().await.unwrap();
    let new_id = created["serverId"].as_str().unwrap();
    json_of(app.call(Method::GET, &format!("/api/mcp/servers/{new_id}"), None).await, 200).await;
}

/// Writes without waiting for any view.
struct NoWait;

#[async_trait::async_trait]
impl services::projection::AwaitViews for NoWait {
    async fn await_views(&self, _: services::feed::Position) -> bool {
        false
    }
}

#[tokio::test]
async fn two_projectors_racing_on_the_same_events_apply_each_once() {
    use services::projection::Projector;
    let app = TestApp::spawn().await;
    let projects = services::project::Projects::new(
        services::startup::command_bus(&app.pool, std::sync::Arc::new(NoWait)),
        app.pool.clone(),
    );
    let horizon = hold_the_horizon(&app).await;
    for i in 0..20 {
        let name = domain::project::ProjectName::parse(&format!("raced {i}")).unwrap();
        projects.create(name, &services::store::CommandMetadata::actor("test")).await.unwrap();
    }
    let (a, b) = (
        Projector::new(app.pool.clone(), Projector::VIEWS, services::startup::views()),
        Projector::new(app.pool.clone(), Projector::VIEWS, services::startup::views()),
    );
    horizon.rollback().await.unwrap();

    let (ra, rb) = tokio::join!(a.catch_up(), b.catch_up());

    assert!(ra.is_ok() && rb.is_ok(), "{ra:?} {rb:?}");
    let projects: i64 = sqlx::query_scalar("SELECT count(*) FROM view_projects").fetch_one(&app.pool).await.unwrap();
    assert_eq!(projects, 21, "the app's project and 20 more, each once");
}

#[tokio::test]
async fn while_the_views_cannot_catch_up_composio_writes_answer_and_the_precondition_never_refuses_wrongly() {
    use crate::support::composio::{api_key_auth_config, composio_error, connect, create_instance, mcp_server};
    let app = TestApp::spawn_with(|s| s.read_your_writes_timeout = Duration::from_millis(500)).await;
    let gmail = api_key_auth_config(&app, "gmail").await;
    let server = mcp_server(&app, "Stuck views", &[&gmail]).await;
    let horizon = hold_the_horizon(&app).await;

    // Committed writes answer from their events.
    let slack = api_key_auth_config(&app, "slack").await;
    let got = json_of(app.composio(Method::GET, &format!("/api/v3/auth_configs/{slack}"), None).await, 200).await;
    assert_eq!(got["toolkit"]["slug"], "slack");
    let account = connect(&app, &gmail, "stuck-user").await;
    let got =
        json_of(app.composio(Method::GET, &format!("/api/v3/connected_accounts/{account}"), None).await, 200).await;
    assert_eq!(got["status"], "ACTIVE");

    // The precondition cannot see the account yet: 503, never a wrong 403, and nothing emitted.
    let events = app.event_count().await;
    composio_error(create_instance(&app, &server, "stuck-user").await, 503, "Service_Unavailable").await;
    assert_eq!(app.event_count().await, events);

    horizon.rollback().await.unwrap();
    json_of(create_instance(&app, &server, "stuck-user").await, 201).await;
}
