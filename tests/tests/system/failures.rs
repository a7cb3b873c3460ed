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
    sqlx::raw_sql(
        "CREATE FUNCTION explode() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.payload::text LIKE '%Doomed%' THEN RAISE EXCEPTION 'sabotaged'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER explode BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION explode();",
    )
    .execute(&app.pool)
    .await
    .unwrap();
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
