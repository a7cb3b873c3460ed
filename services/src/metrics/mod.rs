//! Prometheus metrics, on their own listener (`PROVISIONER_METRICS_LISTEN`, off by default),
//! never on the public one: an operator opts in and picks an address only the scraper reaches.
//!
//! The code counts through the `metrics` facade (an atomic add on a registered handle; with no
//! recorder installed, when metrics are off, every call is a no-op), rendered as Prometheus
//! text by `metrics-exporter-prometheus`. Chosen over poem's OpenTelemetry middleware because
//! that one covers HTTP requests only, while most of what is counted here (commands, events,
//! the relay, the key cache, the gateway's calls) is not a request, and because Prometheus
//! text needs no collector in between.
//!
//! Labels are bounded: route templates, never paths (see [`crate::http::route`]); aggregate and
//! command names; outcomes. Gauges that describe the database (view and relay lag, pool use)
//! are read when scraped (see `startup::metrics_server`), so they cost nothing between scrapes.

pub mod http;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const HTTP_REQUESTS: &str = "provisioner_http_requests_total";
pub const HTTP_DURATION: &str = "provisioner_http_request_duration_seconds";
pub const COMMANDS: &str = "provisioner_commands_total";
pub const COMMAND_CONFLICT_RETRIES: &str = "provisioner_command_conflict_retries_total";
pub const EVENTS_APPENDED: &str = "provisioner_events_appended_total";
pub const RELAY_PUBLISHED: &str = "provisioner_relay_events_published_total";
pub const NATS_PUBLISH_ERRORS: &str = "provisioner_nats_publish_errors_total";
pub const KEY_CACHE: &str = "provisioner_api_key_cache_lookups_total";
pub const GATEWAY_SESSIONS: &str = "provisioner_gateway_sessions_total";
pub const GATEWAY_TOOL_CALLS: &str = "provisioner_gateway_tool_calls_total";
pub const GATEWAY_UPSTREAM_DURATION: &str = "provisioner_gateway_upstream_duration_seconds";
pub const PROJECTOR_LAG_EVENTS: &str = "provisioner_projector_lag_events";
pub const PROJECTOR_LAG_SECONDS: &str = "provisioner_projector_lag_seconds";
pub const RELAY_LAG_EVENTS: &str = "provisioner_relay_lag_events";
pub const RELAY_LAG_SECONDS: &str = "provisioner_relay_lag_seconds";
pub const DB_POOL_CONNECTIONS: &str = "provisioner_db_pool_connections";

/// Latency buckets, in seconds: from a cached GET (~1 ms) to a gateway call near its timeout.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The process's recorder: the `metrics` facade has one global recorder, so it is installed
/// once however many applications a process builds (tests build several).
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Whether metrics are recorded in this process (label formatting is skipped otherwise).
pub fn enabled() -> bool {
    HANDLE.get().is_some()
}

/// Installs the recorder (once per process) and describes the metrics.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
        .context("histogram buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    describe();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

fn describe() {
    use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by surface, route template, method and status.");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "Time to answer an HTTP request, by surface and route template.");
    describe_counter!(COMMANDS, "Commands run against the event store, by aggregate, command and outcome.");
    describe_counter!(COMMAND_CONFLICT_RETRIES, "Commands run again because another writer appended first.");
    describe_counter!(EVENTS_APPENDED, "Events committed to the store by this process, by aggregate.");
    describe_counter!(RELAY_PUBLISHED, "Events the relay published to NATS and had acknowledged.");
    describe_counter!(NATS_PUBLISH_ERRORS, "Failed publishes (or connections) to NATS, by publisher.");
    describe_counter!(KEY_CACHE, "API key lookups, by result: hit (cached) or miss (read from the database).");
    describe_counter!(GATEWAY_SESSIONS, "MCP sessions the gateway opened or closed, by event and target.");
    describe_counter!(GATEWAY_TOOL_CALLS, "MCP tools/call messages through the gateway, by outcome and target.");
    describe_histogram!(
        GATEWAY_UPSTREAM_DURATION,
        Unit::Seconds,
        "Time from a tools/call reaching the gateway to its outcome, the upstream's answer included."
    );
    describe_gauge!(PROJECTOR_LAG_EVENTS, "Committed events the views do not hold yet (capped at 100000).");
    describe_gauge!(PROJECTOR_LAG_SECONDS, "Age of the oldest committed event the views do not hold yet.");
    describe_gauge!(RELAY_LAG_EVENTS, "Committed events not yet published to NATS (capped at 100000).");
    describe_gauge!(RELAY_LAG_SECONDS, "Age of the oldest committed event not yet published to NATS.");
    describe_gauge!(DB_POOL_CONNECTIONS, "Database connections of this process's pool, by state (in_use, idle).");
}
