//! Issue 14, item 1: `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header) on every
//! surface's POSTs, through the real router: replays byte for byte, refuses a reused key,
//! waits for (or refuses) a retry of a running request, keeps no 5xx, replays from another
//! process and after a restart, sweeps expired keys, and keeps each project's keys its own.

use crate::support::{ServeProcess, TestApp, json_of};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use services::secrets::MasterKey;
use std::time::Duration;

/// How a surface's caller sends its key.
#[derive(Clone, Copy)]
enum Auth {
    Bearer,
    XApiKey,
}

/// One keyed request, as a client would send it.
#[derive(Clone)]
struct Keyed {
    method: Method,
    path: String,
    auth: Auth,
    body: Value,
    key: String,
}

impl Keyed {
    fn post(path: &str, auth: Auth, body: Value, key: &str) -> Self {
        Self { method: Method::POST, path: path.into(), auth, body, key: key.into() }
    }

    fn with_body(&self, body: Value) -> Self {
        Self { body, ..self.clone() }
    }

    fn request(&self, http: &reqwest::Client, base: &str, api_key: &str) -> RequestBuilder {
        let request = http.request(self.method.clone(), format!("{base}{}", self.path));
        let request = match self.auth {
            Auth::Bearer => request.bearer_auth(api_key),
            Auth::XApiKey => request.header("x-api-key", api_key),
        };
        request.header("Idempotency-Key", &self.key).json(&self.body)
    }
}

/// What a response is made of, as compared byte for byte.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    body: Vec<u8>,
    replayed: bool,
}

async fn send_to(app: &TestApp, base: &str, api_key: &str, keyed: &Keyed) -> Answer {
    let response = keyed.request(&app.http, base, api_key).send().await.expect("answered");
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (content_type, location) = (header("content-type"), header("location"));
    let replayed = match header("idempotent-replayed") {
        Some(value) => {
            assert_eq!(value, "true");
            true
        }
        None => false,
    };
    Answer {
        status: response.status().as_u16(),
        content_type,
        location,
        body: response.bytes().await.unwrap().to_vec(),
        replayed,
    }
}

async fn send(app: &TestApp, keyed: &Keyed) -> Answer {
    send_to(app, &app.base_url, &app.key, keyed).await
}

fn json_body(answer: &Answer) -> Value {
    serde_json::from_slice(&answer.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", answer))
}

/// Asserts `again` is `first` replayed: the same bytes, marked.
fn assert_replay(first: &Answer, again: &Answer) {
    assert!(!first.replayed, "a first answer is not a replay");
    assert!(again.replayed, "the retry was not replayed: {again:?}");
    assert_eq!(
        (first.status, &first.content_type, &first.location),
        (again.status, &again.content_type, &again.location)
    );
    assert_eq!(String::from_utf8_lossy(&first.body), String::from_utf8_lossy(&again.body));
}

/// One POST (or PATCH) of each surface, each a write.
async fn one_write_per_surface(app: &TestApp, tag: &str) -> Vec<Keyed> {
    let auth_config = |version: &str| {
        json!({
            "toolkit": {"slug": "github"},
            "auth_config": {"type": "use_custom_auth", "authScheme": "API_KEY", "name": format!("keys {tag} {version}")},
        })
    };
    let mut patch = Keyed::post(
        "/api/v1/project/redirect-hosts",
        Auth::Bearer,
        json!({"add": [format!("{tag}.example.com")]}),
        &format!("{tag}-v1"),
    );
    patch.method = Method::PATCH;
    vec![
        Keyed::post(
            "/mcp-server/instance/create",
            Auth::Bearer,
            json!({"serverName": "Gmail", "userId": format!("user-{tag}")}),
            &format!("{tag}-klavis"),
        ),
        Keyed::post("/api/v3/auth_configs", Auth::XApiKey, auth_config("v3"), &format!("{tag}-composio-v3")),
        Keyed::post("/api/v3.1/auth_configs", Auth::XApiKey, auth_config("v3.1"), &format!("{tag}-composio-v31")),
        Keyed::post(
            "/api/mcp/servers",
            Auth::Bearer,
            app.http_server(&format!("Server {tag}")),
            &format!("{tag}-gaia"),
        ),
        patch,
    ]
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_first_answer_back_byte_for_byte_on_every_surface() {
    let app = TestApp::spawn().await;
    for keyed in one_write_per_surface(&app, "replay").await {
        let first = send(&app, &keyed).await;
        assert!((200..300).contains(&first.status), "{} {}: {first:?}", keyed.method, keyed.path);
        let events = app.event_count().await;

        let again = send(&app, &keyed).await;
        // A quoted key (the draft's structured-field string) is the same key.
        let quoted = send(&app, &Keyed { key: format!("\"{}\"", keyed.key), ..keyed.clone() }).await;

        assert_replay(&first, &again);
        assert_replay(&first, &quoted);
        assert_eq!(app.event_count().await, events, "{}: the retry ran again", keyed.path);
    }
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422_in_each_surfaces_format_and_runs_nothing() {
    let app = TestApp::spawn().await;
    let writes = one_write_per_surface(&app, "reuse").await;
    for keyed in &writes {
        assert!((200..300).contains(&send(&app, keyed).await.status));
    }
    let events = app.event_count().await;
    let other = |keyed: &Keyed| keyed.with_body(json!({"something": "else"}));

    let klavis = send(&app, &other(&writes[0])).await;
    assert_eq!(klavis.status, 422);
    let klavis = json_body(&klavis);
    assert_eq!(klavis["detail"][0]["loc"], json!(["header", "Idempotency-Key"]), "{klavis}");
    for composio in [&writes[1], &writes[2]] {
        let answer = send(&app, &other(composio)).await;
        assert_eq!(answer.status, 422);
        let error = &json_body(&answer)["error"];
        assert_eq!(error["status"], 422, "{error}");
        assert_eq!(error["slug"], "Request_IdempotencyKeyReused", "{error}");
        assert!(error.to_string().contains("Idempotency-Key"), "{error}");
    }
    let gaia = send(&app, &other(&writes[3])).await;
    assert_eq!(gaia.status, 422);
    assert_eq!(json_body(&gaia)["success"], false);
    assert_eq!(json_body(&gaia)["error"], "idempotency_key_reused");
    let service = send(&app, &other(&writes[4])).await;
    assert_eq!(service.status, 422);
    assert!(json_body(&service)["error"].as_str().unwrap().contains("Idempotency-Key"));
    // The same body on another path is another request too.
    let elsewhere = Keyed { path: "/api/v3/mcp/servers".into(), ..writes[1].clone() };
    assert_eq!(send(&app, &elsewhere).await.status, 422);

    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn an_unusable_key_is_refused_and_requests_without_a_key_or_a_valid_api_key_are_untouched() {
    let app = TestApp::spawn().await;
    let keyed = Keyed::post("/api/mcp/servers", Auth::Bearer, app.http_server("Plain"), "k");

    let bad = send(&app, &Keyed { key: "has\ttab".into(), ..keyed.clone() }).await;
    let no_api_key = app.http.post(format!("{}/api/mcp/servers", app.base_url)).header("Idempotency-Key", "k");
    let no_api_key = no_api_key.json(&keyed.body).send().await.unwrap();
    let wrong_api_key = send_to(&app, &app.base_url, "pk_not_a_key", &keyed).await;
    let without = app.call(Method::POST, "/api/mcp/servers", Some(keyed.body.clone())).await;

    // Refused as GAIA refuses any bad input.
    assert_eq!(bad.status, 422);
    assert_eq!(json_body(&bad)["success"], false);
    assert_eq!(no_api_key.status(), 401);
    assert_eq!(wrong_api_key.status, 401);
    assert!(!wrong_api_key.replayed);
    assert!(without.headers().get("idempotent-replayed").is_none());
    assert_eq!(without.status(), 201);
    assert_eq!(kept_keys(&app).await, 0);
}

async fn kept_keys(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM idempotency_keys").fetch_one(&app.pool).await.unwrap()
}

/// Makes every write whose events mention `marker` wait for an advisory lock the test holds:
/// the first request is then still running, deterministically, until the test lets it go.
async fn hold_writes_mentioning(app: &TestApp, marker: &str) -> sqlx::pool::PoolConnection<sqlx::Postgres> {
    sqlx::raw_sql(&format!(
        "CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.payload::text LIKE '%{marker}%' THEN PERFORM pg_advisory_xact_lock(4242); END IF; RETURN NEW; END $$; \
         CREATE TRIGGER hold BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION hold();"
    ))
    .execute(&app.pool)
    .await
    .unwrap();
    let mut holder = app.pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(4242)").execute(&mut *holder).await.unwrap();
    holder
}

async fn wait_until_a_write_is_held(app: &TestApp) {
    for _ in 0..1000 {
        let waiting: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the first request never reached its held write");
}

async fn let_go(mut holder: sqlx::pool::PoolConnection<sqlx::Postgres>) {
    sqlx::query("SELECT pg_advisory_unlock(4242)").execute(&mut *holder).await.unwrap();
}

/// Events one registration of a server records, counted on a control registration.
async fn events_of_one_registration(app: &TestApp) -> i64 {
    let before = app.event_count().await;
    json_of(app.call(Method::POST, "/api/mcp/servers", Some(app.http_server("Control"))).await, 201).await;
    app.event_count().await - before
}

#[tokio::test]
async fn a_retry_while_the_first_runs_waits_for_it_and_one_set_of_events_is_recorded() {
    let app = std::sync::Arc::new(TestApp::spawn_with(|s| s.idempotency.wait = Duration::from_secs(30)).await);
    let one_registration = events_of_one_registration(&app).await;
    let keyed = Keyed::post("/api/mcp/servers", Auth::Bearer, app.http_server("Held server"), "concurrent");
    let holder = hold_writes_mentioning(&app, "Held server").await;
    let before = app.event_count().await;

    let first = tokio::spawn({
        let (app, keyed) = (app.clone(), keyed.clone());
        async move { send(&app, &keyed).await }
    });
    wait_until_a_write_is_held(&app).await;
    let retries: Vec<_> = (0..4)
        .map(|_| {
            let (app, keyed) = (app.clone(), keyed.clone());
            tokio::spawn(async move { send(&app, &keyed).await })
        })
        .collect();
    let_go(holder).await;

    let first = first.await.unwrap();
    assert_eq!(first.status, 201, "{first:?}");
    for retry in retries {
        assert_replay(&first, &retry.await.unwrap());
    }
    assert_eq!(app.event_count().await - before, one_registration);
}

#[tokio::test]
async fn a_retry_while_the_first_runs_past_the_wait_is_409_and_the_next_one_replays() {
    let app = std::sync::Arc::new(TestApp::spawn_with(|s| s.idempotency.wait = Duration::from_millis(50)).await);
    let keyed = Keyed::post("/api/mcp/servers", Auth::Bearer, app.http_server("Slow server"), "in-flight");
    let holder = hold_writes_mentioning(&app, "Slow server").await;

    let first = tokio::spawn({
        let (app, keyed) = (app.clone(), keyed.clone());
        async move { send(&app, &keyed).await }
    });
    wait_until_a_write_is_held(&app).await;
    let during = send(&app, &keyed).await;
    let composio_during =
        send(&app, &Keyed::post("/api/v3/auth_configs", Auth::XApiKey, json!({"toolkit": {"slug": "x"}}), "c")).await;
    let_go(holder).await;
    let first = first.await.unwrap();
    let after = send(&app, &keyed).await;

    assert_eq!(during.status, 409, "{during:?}");
    assert_eq!(json_body(&during)["success"], false);
    assert_ne!(composio_during.status, 409, "another key is not held up");
    assert_eq!(first.status, 201);
    assert_replay(&first, &after);
}

#[tokio::test]
async fn a_5xx_is_not_kept_and_the_retry_runs_again() {
    let app = TestApp::spawn().await;
    app.fail_events_mentioning("Doomed").await;
    let keyed = Keyed::post("/api/mcp/servers", Auth::Bearer, app.http_server("Doomed"), "doomed");

    let failed = send(&app, &keyed).await;
    sqlx::raw_sql("DROP TRIGGER explode ON events").execute(&app.pool).await.unwrap();
    let retried = send(&app, &keyed).await;
    let replayed = send(&app, &keyed).await;

    assert_eq!(failed.status, 500);
    assert_eq!(retried.status, 201, "the retry ran again: {retried:?}");
    assert!(!retried.replayed);
    assert_replay(&retried, &replayed);
}

#[tokio::test]
async fn a_retry_on_another_serve_process_and_after_a_restart_replays() {
    let app = TestApp::spawn().await;
    let master_key = MasterKey::generate_base64();
    let env = [("DATABASE_URL", app.database_url()), ("PROVISIONER_MASTER_KEY", master_key.as_str())];
    let keyed = Keyed::post("/api/mcp/servers", Auth::Bearer, app.http_server("Replicated"), "across");
    let first_process = ServeProcess::start(&env);
    let second_process = ServeProcess::start(&env);

    let first = send_to(&app, &first_process.base_url, &app.key, &keyed).await;
    let on_the_other = send_to(&app, &second_process.base_url, &app.key, &keyed).await;
    drop((first_process, second_process));
    let restarted = ServeProcess::start(&env);
    let after_restart = send_to(&app, &restarted.base_url, &app.key, &keyed).await;

    assert_eq!(first.status, 201, "{first:?}");
    assert_replay(&first, &on_the_other);
    assert_replay(&first, &after_restart);
}

async fn backdate(app: &TestApp, key: &str, hours: i32) {
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - make_interval(hours => $2) WHERE key = $1")
        .bind(key)
        .bind(hours)
        .execute(&app.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_expired_key_is_not_replayed() {
    let app = TestApp::spawn_with(|s| s.idempotency.sweep_every = Duration::from_secs(3600)).await;
    let keyed = Keyed::post(
        "/mcp-server/instance/create",
        Auth::Bearer,
        json!({"serverName": "Gmail", "userId": "expiring"}),
        "expiring",
    );
    let first = send(&app, &keyed).await;
    backdate(&app, "expiring", 25).await;

    let after_expiry = send(&app, &keyed).await;

    assert_eq!(first.status, 200);
    assert_eq!(after_expiry.status, 200);
    assert!(!after_expiry.replayed, "an expired key ran again");
}

#[tokio::test]
async fn the_sweep_deletes_keys_older_than_their_lifetime_and_keeps_the_others() {
    let app = TestApp::spawn_with(|s| s.idempotency.sweep_every = Duration::from_millis(20)).await;
    for key in ["old", "fresh"] {
        let body = json!({"serverName": "Gmail", "userId": key});
        assert_eq!(send(&app, &Keyed::post("/mcp-server/instance/create", Auth::Bearer, body, key)).await.status, 200);
    }
    backdate(&app, "old", 25).await;

    let mut remaining: Vec<String> = Vec::new();
    for _ in 0..1000 {
        remaining =
            sqlx::query_scalar("SELECT key FROM idempotency_keys ORDER BY key").fetch_all(&app.pool).await.unwrap();
        if remaining.len() < 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    assert_eq!(remaining, ["fresh"]);
}

#[tokio::test]
async fn another_projects_same_key_runs_its_own_request() {
    let app = TestApp::spawn().await;
    let (_, other_key) = app.new_project("Other project").await;
    let body = json!({
        "toolkit": {"slug": "github"},
        "auth_config": {"type": "use_custom_auth", "authScheme": "API_KEY", "name": "shared"},
    });
    let keyed = Keyed::post("/api/v3/auth_configs", Auth::XApiKey, body, "shared-key");

    let mine = send(&app, &keyed).await;
    let theirs = send_to(&app, &app.base_url, &other_key, &keyed).await;
    let theirs_again = send_to(&app, &app.base_url, &other_key, &keyed).await;

    assert_eq!(mine.status, 201, "{mine:?}");
    assert_eq!(theirs.status, 201);
    assert!(!theirs.replayed, "another project's answer was replayed");
    assert_ne!(json_body(&mine)["auth_config"]["id"], json_body(&theirs)["auth_config"]["id"]);
    assert_replay(&theirs, &theirs_again);
}
