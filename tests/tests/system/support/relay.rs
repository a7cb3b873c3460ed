//! What the relay tests share: a write burst through the Klavis surface, and a consumer that
//! reads the event stream the way a downstream service does and checks invariant 5.

use async_nats::jetstream::{self, consumer::AckPolicy, consumer::pull};
use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The token a user's instance is authenticated with: a secret that must never reach NATS.
pub fn token_of(user: usize) -> String {
    format!("tok-SECRET-{user:06}-x9")
}

/// Four events per user, on one aggregate (the user's Gmail slot): created, auth set (a
/// secret), settings changed, auth cleared. `concurrency` users are written at once. Returns
/// how many requests failed (anything but 200). `written` counts finished users as they finish.
pub async fn write_users(
    base_url: String,
    key: String,
    users: std::ops::Range<usize>,
    concurrency: usize,
    written: Arc<AtomicUsize>,
) -> usize {
    let http = reqwest::Client::new();
    let failures = futures::stream::iter(users)
        .map(|user| {
            let (http, written, base_url, key) = (http.clone(), written.clone(), &base_url, &key);
            async move {
                let failed = write_user(&http, base_url, key, user).await;
                written.fetch_add(1, Ordering::Relaxed);
                failed
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<usize>>()
        .await;
    failures.into_iter().sum()
}

async fn write_user(http: &reqwest::Client, base_url: &str, key: &str, user: usize) -> usize {
    let call = |method: reqwest::Method, path: String, body: Value| {
        http.request(method, format!("{base_url}{path}")).bearer_auth(key).json(&body).send()
    };
    let created = call(
        reqwest::Method::POST,
        "/mcp-server/instance/create".into(),
        json!({"serverName": "Gmail", "userId": format!("user-{user}")}),
    )
    .await;
    let Ok(created) = created else { return 4 };
    if created.status() != 200 {
        return 4;
    }
    let id = created.json::<Value>().await.unwrap()["instanceId"].as_str().unwrap().to_owned();
    let steps = [
        (
            reqwest::Method::POST,
            "/mcp-server/instance/set-auth".to_owned(),
            json!({"instanceId": id, "authData": {"token": token_of(user)}}),
        ),
        (reqwest::Method::PATCH, format!("/mcp-server/instance/{id}"), json!({"isReadOnly": true})),
        (reqwest::Method::DELETE, format!("/mcp-server/instance/{id}/auth"), json!({})),
    ];
    let mut failed = 0;
    for (method, path, body) in steps {
        match call(method, path, body).await {
            Ok(response) if response.status() == 200 => {}
            _ => failed += 1,
        }
    }
    failed
}

/// One message as the consumer got it.
#[derive(Debug)]
pub struct Delivered {
    pub subject: String,
    pub message_id: String,
    pub stream_sequence: u64,
    pub payload: String,
    pub received: events::Received,
}

/// Reads the stream from the start with a durable pull consumer, acking each message, until
/// it has `expected` messages and then nothing more arrives for a second (so that a
/// duplicate would be seen). Panics after `timeout`.
pub async fn consume(nats_url: &str, expected: usize, timeout: Duration) -> Vec<Delivered> {
    let js = connect(nats_url).await;
    let config = pull::Config {
        durable_name: Some("test-consumer".into()),
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    };
    let consumer = eventually("a durable consumer", || async {
        let stream = js.get_stream(events::envelope::STREAM).await?;
        Ok::<_, async_nats::Error>(stream.get_or_create_consumer("test-consumer", config.clone()).await?)
    })
    .await;
    let deadline = Instant::now() + timeout;
    let mut delivered = Vec::new();
    let mut quiet_since: Option<Instant> = None;
    loop {
        assert!(
            Instant::now() < deadline,
            "the consumer got {} of {expected} messages within {timeout:?}",
            delivered.len()
        );
        // Right after a cluster node dies, a fetch may fail until the stream has a new leader.
        let Ok(mut batch) = consumer.fetch().max_messages(1000).expires(Duration::from_millis(250)).messages().await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut got = 0;
        while let Some(Ok(message)) = batch.next().await {
            let info = message.info().expect("JetStream metadata");
            let stream_sequence = info.stream_sequence;
            let message_id = message
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.as_str().to_owned())
                .expect("every message has a Nats-Msg-Id");
            let payload = String::from_utf8(message.payload.to_vec()).expect("UTF-8 JSON");
            if message.subject.starts_with("provisioner.gateway.") {
                // The gateway's call records share the stream; this consumer counts events.
                eventually("an ack", || message.double_ack()).await;
                continue;
            }
            let received = events::decode(&message.payload).unwrap_or_else(|e| panic!("undecodable: {e}: {payload}"));
            let subject = message.subject.to_string();
            // An unacknowledged message would come again: that is redelivery, not a duplicate,
            // but this consumer must not count it twice, so the ack must land.
            eventually("an ack", || message.double_ack()).await;
            delivered.push(Delivered { subject, message_id, stream_sequence, payload, received });
            got += 1;
        }
        if got > 0 || delivered.len() < expected {
            quiet_since = None;
        } else if quiet_since.get_or_insert_with(Instant::now).elapsed() >= Duration::from_secs(1) {
            return delivered;
        }
    }
}

/// Retries a NATS request for up to 30 s: a cluster that lost a node answers again once the
/// stream has a new leader.
pub async fn eventually<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) if Instant::now() < deadline => {
                eprintln!("{what} failed, retrying: {e:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{what} failed for 30 s: {e:?}"),
        }
    }
}

/// Invariant 5 as a consumer sees it: every event of the store exactly once (by message id
/// and by count), each aggregate's events in their order, and the stream holds no copies.
/// Returns the messages.
pub async fn assert_exactly_once_in_order(pool: &PgPool, nats_url: &str) -> Vec<Delivered> {
    let stored: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT aggregate_type, aggregate_id, sequence FROM events").fetch_all(pool).await.unwrap();
    let expected: HashSet<String> =
        stored.iter().map(|(t, id, seq)| events::envelope::message_id(t, id, *seq)).collect();
    let delivered = consume(nats_url, expected.len(), Duration::from_secs(90)).await;

    let mut seen = HashSet::new();
    let duplicates: Vec<&str> =
        delivered.iter().filter(|d| !seen.insert(d.message_id.as_str())).map(|d| d.message_id.as_str()).collect();
    assert!(
        duplicates.is_empty(),
        "{} duplicates, e.g. {:?}",
        duplicates.len(),
        &duplicates[..duplicates.len().min(5)]
    );
    let missing: Vec<&String> = expected.iter().filter(|id| !seen.contains(id.as_str())).collect();
    assert!(missing.is_empty(), "{} events never arrived, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
    assert_eq!(delivered.len(), expected.len(), "as many messages as events");
    let (messages, _) = stream_state(nats_url).await;
    assert_eq!(messages as usize, expected.len(), "the stream holds each event once");

    let mut last: HashMap<String, i64> = HashMap::new();
    for d in delivered.iter() {
        let envelope = &d.received.envelope;
        assert_eq!(envelope.id, d.message_id, "the envelope id is the message id");
        let subject = events::envelope::subject(envelope.project, d.received.event.event_type());
        assert_eq!(d.subject, subject, "subject of {}", d.message_id);
        let aggregate = d.message_id.rsplit_once(':').unwrap().0.to_owned();
        let previous = last.insert(aggregate.clone(), envelope.sequence).unwrap_or(0);
        assert_eq!(
            envelope.sequence,
            previous + 1,
            "{aggregate}: event {} arrived after {previous} (stream sequence {})",
            envelope.sequence,
            d.stream_sequence
        );
    }
    delivered
}

/// Every ciphertext and nonce in the store, and every plaintext token the burst wrote: none
/// may appear in any published payload.
pub async fn assert_no_secret_published(pool: &PgPool, delivered: &[Delivered], users: usize) {
    let sealed: Vec<String> = sqlx::query_scalar(
        "SELECT v #>> '{}' FROM events, jsonb_path_query(payload::jsonb, 'lax $.**.ciphertext') v \
         UNION ALL SELECT v #>> '{}' FROM events, jsonb_path_query(payload::jsonb, 'lax $.**.nonce') v",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(sealed.len() >= users, "the burst stored its secrets sealed ({} found)", sealed.len());
    for payload in delivered.iter().map(|d| &d.payload) {
        assert!(
            !payload.contains("ciphertext") && !payload.contains("nonce"),
            "a sealed secret was published: {payload}"
        );
        assert!(!payload.contains("tok-SECRET-"), "a token was published: {payload}");
    }
    let published: String = delivered.iter().map(|d| d.payload.as_str()).collect();
    for value in sealed {
        assert!(!published.contains(&value), "a stored ciphertext or nonce was published");
    }
}

/// The stream's message count and last sequence.
pub async fn stream_state(nats_url: &str) -> (u64, u64) {
    let js = connect(nats_url).await;
    let info = eventually("the stream's state", || async {
        let mut stream = js.get_stream(events::envelope::STREAM).await?;
        Ok::<_, async_nats::Error>(stream.info().await?.clone())
    })
    .await;
    (info.state.messages, info.state.last_sequence)
}

/// A JetStream context on any of these comma-separated servers.
pub async fn connect(urls: &str) -> jetstream::Context {
    let servers: Vec<async_nats::ServerAddr> = urls.split(',').map(|url| url.parse().unwrap()).collect();
    jetstream::new(async_nats::connect(servers).await.expect("connect to NATS"))
}
