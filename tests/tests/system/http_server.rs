//! Issue 14, item 5: the server survives its clients, through the real binary. A request head
//! sent byte by byte (slowloris) is cut off at the header read timeout; a head past the size
//! bound is answered 431; a body nested past serde_json's depth is refused in the surface's
//! format; SIGTERM with a request in flight finishes it, publishes its events, and exits 0.

use crate::support::nats::NatsServer;
use crate::support::relay::assert_exactly_once_in_order;
use crate::support::{ServeProcess, TestDatabase, cli_project_key};
use serde_json::{Value, json};
use services::secrets::MasterKey;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn host_of(base_url: &str) -> &str {
    base_url.trim_start_matches("http://")
}

async fn project_key(db: &TestDatabase) -> String {
    cli_project_key(&db.url, "Server limits").await
}

#[tokio::test]
async fn a_head_sent_byte_by_byte_is_cut_off_at_the_header_read_timeout() {
    let db = TestDatabase::create().await;
    let master_key = MasterKey::generate_base64();
    let serve = ServeProcess::start(&[
        ("DATABASE_URL", &db.url),
        ("PROVISIONER_MASTER_KEY", &master_key),
        ("PROVISIONER_HEADER_READ_TIMEOUT_SECS", "1"),
    ]);
    let mut slow = TcpStream::connect(host_of(&serve.base_url)).await.unwrap();
    let head =
        format!("GET /health HTTP/1.1\r\nhost: {}\r\nx-padding: {}\r\n\r\n", host_of(&serve.base_url), "a".repeat(40));

    // One byte every 100 ms: the whole head would take about 9 s, each byte well inside any
    // idle timeout. The connection must be closed long before the head is complete.
    let started = Instant::now();
    let mut closed_after = None;
    for byte in head.as_bytes() {
        if slow.write_all(&[*byte]).await.is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut buffer = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(100), slow.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed_after = Some(started.elapsed());
                break;
            }
            Ok(Ok(n)) => panic!("an answer to an unfinished head: {:?}", String::from_utf8_lossy(&buffer[..n])),
            Err(_) => {}
        }
    }
    let closed_after = closed_after.expect("the server waited for the whole slowly sent head");
    println!("a head sent byte by byte was cut off after {} ms", closed_after.as_millis());
    assert!(closed_after < Duration::from_secs(6), "cut off after {closed_after:?}, not near the 1 s timeout");

    // A connection that sends nothing, or only the start of HTTP/2's preface, is closed too
    // (hyper's own timer starts only once the protocol is known).
    for first in [&b""[..], b"PRI * HTTP/2.0"] {
        let mut silent = TcpStream::connect(host_of(&serve.base_url)).await.unwrap();
        silent.write_all(first).await.unwrap();
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buffer)).await;
        let closed = matches!(read, Ok(Ok(0)) | Ok(Err(_)));
        assert!(closed, "a connection that sent {first:?} was not closed within 10 s: {read:?}");
    }

    // Others are still served.
    let health = reqwest::get(format!("{}/health", serve.base_url)).await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_head_past_the_size_bound_is_431_and_a_deep_body_is_refused_in_the_surface_format() {
    let db = TestDatabase::create().await;
    let key = project_key(&db).await;
    let master_key = MasterKey::generate_base64();
    let serve = ServeProcess::start(&[("DATABASE_URL", &db.url), ("PROVISIONER_MASTER_KEY", &master_key)]);
    let client = reqwest::Client::new();
    let create = format!("{}/mcp-server/instance/create", serve.base_url);

    // 80 KiB of one header: under hyper's default (about 400 KiB), over the service's 64 KiB.
    let large = client
        .post(&create)
        .bearer_auth(&key)
        .header("x-large", "a".repeat(80 << 10))
        .json(&json!({"serverName": "GitHub", "userId": "u1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(large.status(), 431, "{}", large.text().await.unwrap());
    // Just under the bound is served as usual.
    let fits = client
        .post(&create)
        .bearer_auth(&key)
        .header("x-large", "a".repeat(40 << 10))
        .json(&json!({"serverName": "GitHub", "userId": "u1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fits.status(), 200, "{}", fits.text().await.unwrap());

    // 100,000 nested arrays (200 KB): serde_json stops at depth 128; the answer is Klavis's
    // 422 naming the field, and the service lives on.
    let deep = format!("{{\"serverName\": \"GitHub\", \"userId\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let refused = client
        .post(&create)
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.unwrap();
    assert!(body["detail"].is_array(), "Klavis's validation format: {body}");
    let after = client.get(format!("{}/mcp-server/servers", serve.base_url)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(after.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_publishes_its_events_and_exits_0() {
    let db = TestDatabase::create().await;
    let nats = NatsServer::start().await;
    let key = project_key(&db).await;
    let master_key = MasterKey::generate_base64();
    let mut serve = ServeProcess::start(&[
        ("DATABASE_URL", &db.url),
        ("NATS_URL", &nats.url()),
        ("PROVISIONER_MASTER_KEY", &master_key),
    ]);
    let pool = db.pool().await;

    // The new key is not cached yet: its lookup reads view_api_keys, which this lock holds, so
    // the create is in flight when SIGTERM comes.
    let mut lock = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE view_api_keys IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();
    let create = tokio::spawn({
        let url = format!("{}/mcp-server/instance/create", serve.base_url);
        let key = key.clone();
        async move {
            let answer = reqwest::Client::new()
                .post(url)
                .bearer_auth(key)
                .json(&json!({"serverName": "GitHub", "userId": "in-flight"}))
                .send()
                .await;
            match answer {
                Ok(answer) => Ok((answer.status().as_u16(), answer.text().await.unwrap_or_default())),
                Err(e) => Err(e.to_string()),
            }
        }
    });
    wait_until_waiting_on_the_lock(&pool).await;
    serve.terminate();

    // Stopping: no new connection is taken, while the one in flight is still waiting.
    let refused_new = wait_for_refused_connections(host_of(&serve.base_url)).await;
    assert!(refused_new, "serve still accepts connections after SIGTERM:\n{}", serve.output());
    assert!(!create.is_finished(), "the request in flight was dropped:\n{}", serve.output());
    lock.rollback().await.unwrap();

    let (status, body) = create.await.unwrap().unwrap_or_else(|e| panic!("the request in flight failed: {e}"));
    assert_eq!(status, 200, "{body}");
    let exit = serve.wait_exit(Duration::from_secs(30)).expect("serve exits after its requests");
    assert!(exit.success(), "serve exited with {exit}:\n{}", serve.output());

    // Its events went out before the relay stopped, and the relay's checkpoint says so.
    let created: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'instance.created'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(created, 1, "the instance in flight was created");
    assert_exactly_once_in_order(&pool, &nats.url()).await;
    let (last, checkpoint): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT max(global_position) FROM events), \
                (SELECT global_position FROM feed_checkpoints WHERE subscriber = 'nats-relay')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(checkpoint, last, "the relay's checkpoint moved past every event before exit");
}

/// Until a backend waits for a lock on view_api_keys: the create has reached the key lookup.
async fn wait_until_waiting_on_the_lock(pool: &sqlx::PgPool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             WHERE c.relname = 'view_api_keys' AND NOT l.granted",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the create never reached the key lookup");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True once a new TCP connection is refused (the listener closed), within 5 s.
async fn wait_for_refused_connections(host: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect(host).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_gateway_streams_instead_of_waiting_out_the_grace_period() {
    use crate::support::mcp::{Session, Upstream};
    use futures::StreamExt;
    let db = TestDatabase::create().await;
    let upstream = Upstream::start().await;
    let upstreams = std::env::temp_dir().join(format!("upstreams-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&upstreams, format!("[github]\nurl = \"{}\"\n", upstream.url)).unwrap();
    let key = project_key(&db).await;
    let master_key = MasterKey::generate_base64();
    let mut serve = ServeProcess::start(&[
        ("DATABASE_URL", &db.url),
        ("PROVISIONER_MASTER_KEY", &master_key),
        ("PROVISIONER_UPSTREAMS", upstreams.to_str().unwrap()),
        ("PROVISIONER_SHUTDOWN_GRACE_SECS", "120"),
    ]);
    let http = reqwest::Client::new();
    let create = json!({"serverName": "GitHub", "userId": "streamer"});
    let created: Value = http
        .post(format!("{}/mcp-server/instance/create", serve.base_url))
        .bearer_auth(&key)
        .json(&create)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let instance_id = created["instanceId"].as_str().unwrap().to_owned();
    let auth = json!({"instanceId": instance_id, "authData": {"token": "streamer-token"}});
    let set = http.post(format!("{}/mcp-server/instance/set-auth", serve.base_url)).bearer_auth(&key).json(&auth);
    assert!(set.send().await.unwrap().status().is_success());
    let (session, opened) = Session::open(&format!("{}/mcp/?instance_id={instance_id}", serve.base_url)).await;
    assert_eq!(opened.status, 200, "{opened:?}");
    let stream = session.open_stream().await;
    assert_eq!(stream.status(), 200);
    let mut chunks = stream.bytes_stream();

    // The server's stream is open (and would stay open); SIGTERM with a 120 s grace period.
    let stopped = Instant::now();
    serve.terminate();
    let ended = tokio::time::timeout(Duration::from_secs(30), async { while chunks.next().await.is_some() {} }).await;
    assert!(ended.is_ok(), "the open stream was not ended by the shutdown:\n{}", serve.output());
    let exit = serve.wait_exit(Duration::from_secs(30)).expect("serve exits without waiting out its grace period");
    assert!(exit.success(), "serve exited with {exit}:\n{}", serve.output());
    println!("serve stopped {} ms after SIGTERM with a stream open (grace 120 s)", stopped.elapsed().as_millis());
}
