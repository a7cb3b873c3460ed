//! Metrics and traces through the real binary: `/metrics` on its own listener counts what was
//! done with route templates for labels; a request's `traceparent` reaches the event's
//! metadata, the NATS message (header and CloudEvents extension) and the exported spans.

use crate::support::mcp::{Session, Upstream};
use crate::support::nats::NatsServer;
use crate::support::{ServeProcess, TestDatabase, cli_project_key};
use futures::StreamExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use poem::web::Data;
use poem::{EndpointExt, Route, handler, post};
use prost::Message;
use serde_json::{Value, json};
use services::secrets::MasterKey;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One sample of a Prometheus text exposition.
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape, parsed (the text format's sample lines; comments skipped).
struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    async fn of(metrics_url: &str) -> Self {
        let response = reqwest::get(metrics_url).await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = response.text().await.unwrap();
        let samples = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(parse_sample).collect();
        Self { text, samples }
    }

    /// The sum of the samples of `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v)))
            .map(|s| s.value)
            .sum()
    }

    fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }
}

fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
    let value = value.parse().unwrap_or_else(|_| panic!("not a value: {line}"));
    let Some((name, labels)) = series.split_once('{') else {
        return Sample { name: series.to_owned(), labels: BTreeMap::new(), value };
    };
    let labels = labels
        .trim_end_matches('}')
        .split("\",")
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once("=\"").unwrap_or_else(|| panic!("not a label: {pair} in {line}"));
            (key.to_owned(), value.trim_end_matches('"').to_owned())
        })
        .collect();
    Sample { name: name.to_owned(), labels, value }
}

async fn project_key(db: &TestDatabase) -> String {
    cli_project_key(&db.url, "Observed").await
}

async fn klavis(serve: &ServeProcess, key: &str, path: &str, body: Value, traceparent: Option<&str>) -> Value {
    let mut request = reqwest::Client::new().post(format!("{}{path}", serve.base_url)).bearer_auth(key).json(&body);
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap()
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn callers_traceparent() -> String {
    format!("00-{TRACE_ID}-{CALLER_SPAN}-01")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_commands_events_and_gateway_calls_by_template_on_their_own_listener() {
    // Arrange: serve with metrics on, an upstream for the gateway, a key.
    let db = TestDatabase::create().await;
    let upstream = Upstream::start().await;
    let upstreams = std::env::temp_dir().join(format!("upstreams-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&upstreams, format!("[github]\nurl = \"{}\"\n", upstream.url)).unwrap();
    let key = project_key(&db).await;
    let serve = ServeProcess::start(&[
        ("DATABASE_URL", &db.url),
        ("PROVISIONER_MASTER_KEY", &MasterKey::generate_base64()),
        ("PROVISIONER_UPSTREAMS", upstreams.to_str().unwrap()),
        ("PROVISIONER_METRICS_LISTEN", "127.0.0.1:0"),
    ]);
    let metrics_url = serve.metrics_url();

    // Act: a create (carrying the caller's trace context), a read, a miss, a gateway call.
    let traceparent = callers_traceparent();
    let created = klavis(
        &serve,
        &key,
        "/mcp-server/instance/create",
        json!({"serverName": "GitHub", "userId": "alice"}),
        Some(&traceparent),
    )
    .await;
    let instance_id = created["instanceId"].as_str().unwrap().to_owned();
    klavis(
        &serve,
        &key,
        "/mcp-server/instance/set-auth",
        json!({"instanceId": instance_id, "authData": {"token": "alice-token"}}),
        None,
    )
    .await;
    let http = reqwest::Client::new();
    let read = http.get(format!("{}/mcp-server/instance/{instance_id}", serve.base_url)).bearer_auth(&key);
    assert_eq!(read.send().await.unwrap().status(), 200);
    let missing = http.get(format!("{}/no/such/{instance_id}", serve.base_url)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    // Answered before the handler: a replay by the idempotency middleware is still its route's.
    for _ in 0..2 {
        let keyed = http
            .post(format!("{}/mcp-server/instance/create", serve.base_url))
            .bearer_auth(&key)
            .header("idempotency-key", "observed")
            .json(&json!({"serverName": "GitHub", "userId": "bob"}));
        assert_eq!(keyed.send().await.unwrap().status(), 200);
    }
    let (mut session, opened) = Session::open(&format!("{}/mcp/?instance_id={instance_id}", serve.base_url)).await;
    assert_eq!(opened.status, 200, "{opened:?}");
    let called = session.call_tool("whoami", json!({})).await;
    assert_eq!(called.status, 200, "{called:?}");
    let scrape = Scrape::of(&metrics_url).await;

    // Assert: requests by surface, template, method and status, with their latency.
    let requests = "provisioner_http_requests_total";
    let create = [("surface", "klavis"), ("route", "/mcp-server/instance/create"), ("method", "POST")];
    assert_eq!(scrape.value(requests, &[create[0], create[1], create[2], ("status", "200")]), 3.0, "{}", scrape.text);
    // The document's template, path parameters by name.
    let get = [("surface", "klavis"), ("route", "/mcp-server/instance/{instanceId}"), ("status", "200")];
    assert_eq!(scrape.value(requests, &get), 1.0, "{}", scrape.text);
    assert_eq!(scrape.value(requests, &[("route", "unmatched"), ("status", "404")]), 1.0, "{}", scrape.text);
    assert!(scrape.value(requests, &[("surface", "gateway"), ("route", "/mcp")]) >= 2.0, "{}", scrape.text);
    let latency = [("surface", "klavis"), ("route", "/mcp-server/instance/create")];
    assert_eq!(scrape.value("provisioner_http_request_duration_seconds_count", &latency), 3.0, "{}", scrape.text);
    assert!(!scrape.text.contains(&instance_id), "an id in a label:\n{}", scrape.text);

    // Commands by aggregate, command and outcome; events appended; the key cache.
    let commands = scrape.value("provisioner_commands_total", &[("aggregate", "instance"), ("outcome", "ok")]);
    assert!(commands >= 2.0, "{}", scrape.text);
    assert!(scrape.value("provisioner_events_appended_total", &[("aggregate", "instance")]) >= 2.0, "{}", scrape.text);
    let lookups = scrape.value("provisioner_api_key_cache_lookups_total", &[("result", "miss")])
        + scrape.value("provisioner_api_key_cache_lookups_total", &[("result", "hit")]);
    assert!(lookups >= 3.0, "{}", scrape.text);

    // The gateway's session and tool call by outcome, with the upstream's latency.
    let opened = [("event", "opened"), ("target", "instance")];
    assert_eq!(scrape.value("provisioner_gateway_sessions_total", &opened), 1.0, "{}", scrape.text);
    let ok = [("outcome", "ok"), ("target", "instance")];
    assert_eq!(scrape.value("provisioner_gateway_tool_calls_total", &ok), 1.0, "{}", scrape.text);
    assert_eq!(scrape.value("provisioner_gateway_upstream_duration_seconds_count", &ok), 1.0, "{}", scrape.text);

    // Gauges read at the scrape: the views' lag and the pool.
    assert!(scrape.has("provisioner_projector_lag_events"), "{}", scrape.text);
    assert!(scrape.has("provisioner_projector_lag_seconds"), "{}", scrape.text);
    assert!(scrape.value("provisioner_db_pool_connections", &[("state", "idle")]) >= 0.0);
    assert!(scrape.has("provisioner_db_pool_connections"), "{}", scrape.text);

    // /metrics is not on the public listener.
    let public = http.get(format!("{}/metrics", serve.base_url)).send().await.unwrap();
    assert_eq!(public.status(), 404);
    assert!(!public.text().await.unwrap().contains("provisioner_http_requests_total"));

    // Untraced (no exporter), the caller's own trace context is what the event carries.
    let stored: String = sqlx::query_scalar(
        "SELECT metadata->>'traceparent' FROM events WHERE aggregate_type = 'instance' ORDER BY sequence LIMIT 1",
    )
    .fetch_one(&db.pool().await)
    .await
    .unwrap();
    assert_eq!(stored, traceparent);
    let _ = std::fs::remove_file(upstreams);
}

#[tokio::test]
async fn without_an_address_there_is_no_metrics_listener() {
    let db = TestDatabase::create().await;
    let serve =
        ServeProcess::start(&[("DATABASE_URL", &db.url), ("PROVISIONER_MASTER_KEY", &MasterKey::generate_base64())]);
    assert!(!serve.output().contains("metrics on"), "{}", serve.output());
    let public = reqwest::get(format!("{}/metrics", serve.base_url)).await.unwrap();
    assert_eq!(public.status(), 404);
}

/// A span as the receiver got it: ids in hex.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    trace_id: String,
    parent_span_id: String,
    name: String,
    /// String attributes.
    attributes: BTreeMap<String, String>,
}

/// An OTLP/HTTP receiver on loopback: takes `POST /v1/traces` in protobuf, keeps the spans.
struct OtlpReceiver {
    endpoint: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    _server: tokio::task::JoinHandle<()>,
}

#[handler]
async fn export_traces(body: Vec<u8>, spans: Data<&Arc<Mutex<Vec<ReceivedSpan>>>>) -> poem::Response {
    let request = ExportTraceServiceRequest::decode(body.as_ref()).expect("an OTLP protobuf export");
    let mut spans = spans.lock().unwrap();
    for span in request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans) {
        spans.push(ReceivedSpan {
            trace_id: hex(&span.trace_id),
            parent_span_id: hex(&span.parent_span_id),
            name: span.name.clone(),
            attributes: span
                .attributes
                .iter()
                .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    any_value::Value::StringValue(s) => Some((kv.key.clone(), s.clone())),
                    _ => None,
                })
                .collect(),
        });
    }
    poem::Response::builder().content_type("application/x-protobuf").body(Vec::<u8>::new())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl OtlpReceiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let spans = Arc::new(Mutex::new(Vec::new()));
        let app = Route::new().at("/v1/traces", post(export_traces)).data(spans.clone());
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self { endpoint, spans, _server: server }
    }

    /// Waits (bounded) for the request span of `trace_id` for `route`.
    async fn request_span(&self, trace_id: &str, route: &str) -> ReceivedSpan {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let spans = self.spans.lock().unwrap().clone();
            let of_route = |s: &&ReceivedSpan| s.attributes.get("http.route").map(String::as_str) == Some(route);
            if let Some(span) = spans.iter().filter(of_route).find(|s| s.trace_id == trace_id && s.name == "request") {
                return span.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no request span for {route} in trace {trace_id} within 30 s: {spans:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requests_trace_goes_on_into_the_event_the_nats_message_and_the_exported_spans() {
    // Arrange: NATS, an OTLP receiver, serve exporting to it, a key.
    let db = TestDatabase::create().await;
    let nats = NatsServer::start().await;
    let receiver = OtlpReceiver::start().await;
    let key = project_key(&db).await;
    let serve = ServeProcess::start(&[
        ("DATABASE_URL", &db.url),
        ("PROVISIONER_MASTER_KEY", &MasterKey::generate_base64()),
        ("NATS_URL", &nats.url()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint),
        // Export each batch soon rather than every 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ]);

    // Act: a create carrying the caller's trace context.
    let created = klavis(
        &serve,
        &key,
        "/mcp-server/instance/create",
        json!({"serverName": "Gmail", "userId": "alice"}),
        Some(&callers_traceparent()),
    )
    .await;
    let instance_id = created["instanceId"].as_str().unwrap().to_owned();

    // Assert: the request's span is exported in the caller's trace, as the caller's child.
    let span = receiver.request_span(TRACE_ID, "/mcp-server/instance/create").await;
    assert_eq!(span.parent_span_id, CALLER_SPAN, "{span:?}");
    assert!(!format!("{span:?}").contains(&instance_id), "an id in an exported span: {span:?}");

    // The event's metadata holds the trace context of the request's own span.
    let stored: String = sqlx::query_scalar(
        "SELECT metadata->>'traceparent' FROM events WHERE aggregate_type = 'instance' ORDER BY sequence LIMIT 1",
    )
    .fetch_one(&db.pool().await)
    .await
    .unwrap();
    assert_eq!(stored.split('-').nth(1), Some(TRACE_ID), "{stored}");
    assert_ne!(stored.split('-').nth(2), Some(CALLER_SPAN), "the request's span is the parent passed on: {stored}");

    // The NATS message carries the same value as a header and as the CloudEvents extension.
    let (header, envelope) = instance_created_message(&nats.url()).await;
    assert_eq!(header, stored);
    assert_eq!(envelope.traceparent(), Some(stored.as_str()));
    assert_eq!(envelope.trace_id(), Some(TRACE_ID));
}

/// The `instance.created` message of the stream: its `traceparent` header and its envelope.
async fn instance_created_message(nats_url: &str) -> (String, events::envelope::Envelope) {
    let js = crate::support::relay::connect(nats_url).await;
    let consumer = crate::support::relay::eventually("an ephemeral consumer", || async {
        let stream = js.get_stream(events::envelope::STREAM).await?;
        let config = async_nats::jetstream::consumer::pull::Config {
            filter_subject: format!("{}.*.instance.created", events::envelope::SUBJECT_PREFIX),
            ..Default::default()
        };
        Ok::<_, async_nats::Error>(stream.create_consumer(config).await?)
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no instance.created message within 30 s");
        let mut batch = consumer.fetch().max_messages(1).expires(Duration::from_millis(500)).messages().await.unwrap();
        if let Some(Ok(message)) = batch.next().await {
            let header = message
                .headers
                .as_ref()
                .and_then(|h| h.get(events::envelope::TRACEPARENT_HEADER))
                .map(|v| v.as_str().to_owned())
                .expect("a traceparent header");
            let received = events::decode(&message.payload).unwrap();
            return (header, received.envelope);
        }
    }
}
