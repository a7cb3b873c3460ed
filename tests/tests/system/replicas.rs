//! Issue 14, item 7: several replicas. Three real `provisioner serve` processes over one
//! database and one NATS server, with the load spread round-robin over them (no sticky
//! routing): concurrent creates still yield one instance, connect-then-create is never
//! refused, a revoked key stops working on every replica, and an `Idempotency-Key` retry on
//! another replica replays or waits for the first.
//!
//! What would make each fail: per-process instance locking instead of the event store's
//! optimistic concurrency (two `instance.created`); a replica answering writes before the
//! shared views hold them, or reading a per-process view (a spurious 403); a key cache that is
//! not evicted on revocation and lives longer than a second (a revoked key still accepted);
//! idempotency answers kept in process memory (no replay on B, or B running the write again).

use crate::support::nats::NatsServer;
use crate::support::{ServeProcess, TestDatabase, run_cli};
use futures::future::join_all;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use services::secrets::MasterKey;
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// How long a retry waits for the request it repeats on every replica (`PROVISIONER_IDEMPOTENCY_WAIT_MS`).
const IDEMPOTENCY_WAIT_MS: u64 = 1000;

/// Three replicas of one deployment and a project's key.
struct Deployment {
    replicas: Vec<ServeProcess>,
    pool: PgPool,
    http: reqwest::Client,
    project: String,
    key: String,
    db: TestDatabase,
    _nats: NatsServer,
}

impl Deployment {
    async fn start() -> Self {
        let db = TestDatabase::create().await;
        let nats = NatsServer::start().await;
        let env = [("DATABASE_URL", db.url.as_str())];
        let project = run_cli(&["project", "create", "Replicas"], &env).await.stdout.trim().to_owned();
        let key = run_cli(&["key", "create", "--project", &project], &env).await.stdout.trim().to_owned();
        let master = MasterKey::generate_base64();
        let (nats_url, wait) = (nats.url(), IDEMPOTENCY_WAIT_MS.to_string());
        let replicas = (0..3)
            .map(|_| {
                ServeProcess::start(&[
                    ("DATABASE_URL", &db.url),
                    ("NATS_URL", &nats_url),
                    ("PROVISIONER_MASTER_KEY", &master),
                    ("PROVISIONER_IDEMPOTENCY_WAIT_MS", &wait),
                ])
            })
            .collect();
        let pool = db.pool().await;
        Self { replicas, pool, http: reqwest::Client::new(), project, key, db, _nats: nats }
    }

    /// The replica a round-robin balancer would pick for the `n`th request.
    fn replica(&self, n: usize) -> &str {
        &self.replicas[n % self.replicas.len()].base_url
    }

    fn klavis(&self, n: usize, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.replica(n))).bearer_auth(&self.key)
    }

    fn composio(&self, n: usize, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.replica(n))).header("x-api-key", &self.key)
    }

    async fn count_events(&self, event_type: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
            .bind(event_type)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

async fn json_answer(request: RequestBuilder, status: u16) -> Value {
    let response = request.send().await.expect("answered");
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A custom API_KEY auth config and an MCP server over it, made on replica `n`.
async fn server_over_an_api_key_config(deployment: &Deployment, n: usize, name: &str) -> (String, String) {
    let body = json!({
        "toolkit": {"slug": "github"},
        "auth_config": {"type": "use_custom_auth", "authScheme": "API_KEY", "name": format!("{name} keys")},
    });
    let config = json_answer(deployment.composio(n, Method::POST, "/api/v3/auth_configs").json(&body), 201).await;
    let config_id = config["auth_config"]["id"].as_str().unwrap().to_owned();
    let body = json!({"name": name, "auth_config_ids": [config_id]});
    let server = json_answer(deployment.composio(n + 1, Method::POST, "/api/v3/mcp/servers").json(&body), 201).await;
    (config_id, server["id"].as_str().unwrap().to_owned())
}

/// Connects `user` to the API_KEY config on replica `n`: an ACTIVE account.
async fn connect(deployment: &Deployment, n: usize, config_id: &str, user: &str) {
    let body = json!({
        "auth_config": {"id": config_id},
        "connection": {"user_id": user, "state": {"authScheme": "API_KEY", "val": {"status": "ACTIVE", "api_key": "k"}}},
    });
    let account =
        json_answer(deployment.composio(n, Method::POST, "/api/v3/connected_accounts").json(&body), 201).await;
    assert_eq!(account["status"], "ACTIVE", "{account}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_over_one_database_behave_as_one_service() {
    let deployment = Deployment::start().await;
    concurrent_klavis_creates_give_one_instance(&deployment).await;
    concurrent_composio_creates_give_one_instance(&deployment).await;
    connect_then_create_across_replicas_is_never_refused(&deployment).await;
    an_idempotent_retry_on_another_replica_replays(&deployment).await;
    a_retry_on_another_replica_while_the_first_runs_waits_then_409s(&deployment).await;
    a_revoked_key_stops_working_on_every_replica(&deployment).await;
}

/// (a) 32 concurrent Klavis creates of one (server, user), round-robin over the replicas.
async fn concurrent_klavis_creates_give_one_instance(deployment: &Deployment) {
    let body = json!({"serverName": "Slack", "userId": "racer"});
    let creates = (0..32)
        .map(|n| json_answer(deployment.klavis(n, Method::POST, "/mcp-server/instance/create").json(&body), 200));

    let answers = join_all(creates).await;

    let ids: Vec<&str> = answers.iter().map(|a| a["instanceId"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "several instances: {ids:?}");
    assert_eq!(deployment.count_events("instance.created").await, 1);
}

/// (a) 32 concurrent Composio instance creates of one (server, user): one 201, the others
/// 409 (Composio's answer to a second create), one more `instance.created`.
async fn concurrent_composio_creates_give_one_instance(deployment: &Deployment) {
    let (config_id, server_id) = server_over_an_api_key_config(deployment, 0, "Racing tools").await;
    connect(deployment, 2, &config_id, "composio-racer").await;
    let before = deployment.count_events("instance.created").await;
    let path = format!("/api/v3/mcp/servers/{server_id}/instances");
    let creates = (0..32).map(|n| {
        let request = deployment.composio(n, Method::POST, &path).json(&json!({"user_id": "composio-racer"}));
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    });

    let answers = join_all(creates).await;

    let created: Vec<_> = answers.iter().filter(|(status, _)| *status == 201).collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    assert!(answers.iter().all(|(status, _)| [201, 409].contains(status)), "{answers:?}");
    assert_eq!(deployment.count_events("instance.created").await - before, 1);
}

/// (b) An account connected on one replica satisfies, at once, the precondition of an
/// instance created on the next one.
async fn connect_then_create_across_replicas_is_never_refused(deployment: &Deployment) {
    let (config_id, server_id) = server_over_an_api_key_config(deployment, 1, "Precondition tools").await;
    let path = format!("/api/v3/mcp/servers/{server_id}/instances");
    for round in 0..20 {
        let user = format!("user-{round}");
        connect(deployment, round, &config_id, &user).await;
        let request = deployment.composio(round + 1, Method::POST, &path).json(&json!({"user_id": user}));
        let response = request.send().await.unwrap();
        let status = response.status();
        assert_eq!(status, 201, "round {round}: {}", response.text().await.unwrap());
    }
}

/// One Idempotency-Key POST, sent to replica `n`.
fn keyed_registration(deployment: &Deployment, n: usize, name: &str, key: &str) -> RequestBuilder {
    let body = json!({
        "projectId": deployment.project, "name": name, "transportType": "http", "url": "https://mcp.example.com/mcp",
    });
    deployment.klavis(n, Method::POST, "/api/mcp/servers").header("Idempotency-Key", key).json(&body)
}

/// Status, the replay header and the body bytes.
async fn answer_of(request: RequestBuilder) -> (u16, bool, Vec<u8>) {
    let response = request.send().await.expect("answered");
    let replayed = response.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    (response.status().as_u16(), replayed, response.bytes().await.unwrap().to_vec())
}

/// (d) A keyed POST on A, retried with the same key and body on B and C: the first answer,
/// byte for byte, and no second set of events.
async fn an_idempotent_retry_on_another_replica_replays(deployment: &Deployment) {
    let first = answer_of(keyed_registration(deployment, 0, "Replayed server", "across-replicas")).await;
    let events = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events").fetch_one(&deployment.pool).await.unwrap();

    let on_b = answer_of(keyed_registration(deployment, 1, "Replayed server", "across-replicas")).await;
    let on_c = answer_of(keyed_registration(deployment, 2, "Replayed server", "across-replicas")).await;

    assert_eq!((first.0, first.1), (201, false), "{}", String::from_utf8_lossy(&first.2));
    for retry in [on_b, on_c] {
        assert_eq!((retry.0, retry.1), (201, true), "not replayed: {}", String::from_utf8_lossy(&retry.2));
        assert_eq!(String::from_utf8_lossy(&retry.2), String::from_utf8_lossy(&first.2));
    }
    let after = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events").fetch_one(&deployment.pool).await.unwrap();
    assert_eq!(after, events, "a retry ran again");
}

/// Makes every write whose events mention `marker` wait for an advisory lock the test holds
/// (as idempotency.rs does): the first request is then still running, deterministically.
async fn hold_writes_mentioning(pool: &PgPool, marker: &str) -> sqlx::pool::PoolConnection<sqlx::Postgres> {
    sqlx::raw_sql(&format!(
        "CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.payload::text LIKE '%{marker}%' THEN PERFORM pg_advisory_xact_lock(4343); END IF; RETURN NEW; END $$; \
         CREATE TRIGGER hold BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION hold();"
    ))
    .execute(pool)
    .await
    .unwrap();
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(4343)").execute(&mut *holder).await.unwrap();
    holder
}

async fn wait_until_a_write_is_held(pool: &PgPool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                .fetch_one(pool)
                .await
                .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the first request never reached its held write");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// (d) While the first request still runs on A: a retry on C past the wait is 409 in GAIA's
/// format; a retry on B waits for it and replays its answer.
async fn a_retry_on_another_replica_while_the_first_runs_waits_then_409s(deployment: &Deployment) {
    let holder = hold_writes_mentioning(&deployment.pool, "Held server").await;
    let first = tokio::spawn(answer_of(keyed_registration(deployment, 0, "Held server", "held")));
    wait_until_a_write_is_held(&deployment.pool).await;

    let past_the_wait = answer_of(keyed_registration(deployment, 2, "Held server", "held")).await;
    let waiting = tokio::spawn(answer_of(keyed_registration(deployment, 1, "Held server", "held")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still_waiting = !waiting.is_finished();
    let mut holder = holder;
    sqlx::query("SELECT pg_advisory_unlock(4343)").execute(&mut *holder).await.unwrap();
    let (first, waited) = (first.await.unwrap(), waiting.await.unwrap());
    sqlx::raw_sql("DROP TRIGGER hold ON events; DROP FUNCTION hold()").execute(&deployment.pool).await.unwrap();

    assert_eq!(past_the_wait.0, 409, "{}", String::from_utf8_lossy(&past_the_wait.2));
    let body: Value = serde_json::from_slice(&past_the_wait.2).unwrap();
    assert_eq!(body["success"], false, "{body}");
    assert!(still_waiting, "the retry on B did not wait for the first request");
    assert_eq!((first.0, first.1), (201, false), "{}", String::from_utf8_lossy(&first.2));
    assert_eq!((waited.0, waited.1), (201, true), "{}", String::from_utf8_lossy(&waited.2));
    assert_eq!(waited.2, first.2, "the waiting retry got another answer");
}

/// (c) `provisioner key revoke`: every replica refuses the key within the key cache's
/// lifetime (one second; the revocation's NOTIFY evicts it sooner). Each replica has the key
/// cached when it is revoked, and is polled every 10 ms from the moment the CLI returns.
async fn a_revoked_key_stops_working_on_every_replica(deployment: &Deployment) {
    let env = [("DATABASE_URL", deployment.db.url.as_str())];
    let issued = run_cli(&["key", "create", "--project", &deployment.project], &env).await;
    let key = issued.stdout.trim().to_owned();
    let key_id = issued.stderr.split_whitespace().nth(2).expect("`key id <id> …` on stderr").to_owned();
    let get = |n: usize| deployment.http.get(format!("{}/api/mcp/servers", deployment.replica(n))).bearer_auth(&key);
    for n in 0..3 {
        assert_eq!(get(n).send().await.unwrap().status(), 200, "replica {n} before the revocation");
    }

    let revoked = run_cli(&["key", "revoke", "--project", &deployment.project, "--key-id", &key_id], &env).await;
    let at = Instant::now();
    assert!(revoked.success, "{revoked:?}");
    let refused_after = join_all((0..3).map(|n| {
        let request = get(n);
        async move {
            loop {
                let status = request.try_clone().unwrap().send().await.unwrap().status();
                if status == 401 {
                    return at.elapsed();
                }
                assert_eq!(status, 200, "replica {n}");
                assert!(at.elapsed() < Duration::from_secs(5), "replica {n} still accepts the key after 5 s");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }))
    .await;

    eprintln!("revoked key refused after {refused_after:?} (replicas 0, 1, 2)");
    // The bound is the cache's lifetime (1 s), plus one poll and one request of slack.
    for (n, elapsed) in refused_after.iter().enumerate() {
        assert!(*elapsed < Duration::from_millis(1500), "replica {n} accepted a revoked key for {elapsed:?}");
    }
}
