//! Logging and traces. Logs: `tracing` to stderr, filtered by `RUST_LOG` (default `info`), as
//! JSON lines when `PROVISIONER_LOG_FORMAT=json`. Request bodies and secrets are never logged:
//! secrets are `SecretString`s, whose Debug output is redacted.
//!
//! Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the service's own `tracing` spans (at
//! info and above, whatever `RUST_LOG` says) are exported as OpenTelemetry spans over OTLP/HTTP
//! (protobuf to `<endpoint>/v1/traces`, batched; the SDK's standard `OTEL_*` variables tune
//! it). Otherwise no exporter is built and nothing leaves. A request continues the caller's
//! W3C trace (see [`trace_context`]).

pub mod trace_context;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use std::sync::OnceLock;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

/// The variable that turns trace export on (the OpenTelemetry SDKs' standard one).
pub const OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The exporting tracer provider, once built; flushed by [`shutdown`].
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

pub fn init() {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,poem=warn"));
    let json = std::env::var("PROVISIONER_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let plain = (!json).then(|| fmt::layer().with_writer(std::io::stderr).with_filter(filter()));
    let json = json.then(|| fmt::layer().json().with_writer(std::io::stderr).with_filter(filter()));
    let traces = tracer().map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(Targets::new().with_target("services", Level::INFO))
    });
    // try_init: tests may have installed a subscriber already.
    let _ = tracing_subscriber::registry().with(plain).with(json).with(traces).try_init();
}

/// Whether spans are exported (and so whether a request's own span is worth propagating).
pub fn exporting() -> bool {
    PROVIDER.get().is_some()
}

/// Exports the spans still buffered; call once, before the process exits.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown()
    {
        eprintln!("warning: traces not all exported at exit: {e}");
    }
}

/// The OTLP tracer when an endpoint is configured; a broken exporter setting is reported and
/// leaves the service running untraced rather than down.
fn tracer() -> Option<SdkTracer> {
    std::env::var(OTLP_ENDPOINT).ok().filter(|e| !e.trim().is_empty())?;
    let exporter = match opentelemetry_otlp::SpanExporter::builder().with_http().build() {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("warning: {OTLP_ENDPOINT} is set but its exporter cannot be built ({e}); no traces are exported");
            return None;
        }
    };
    let service_name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "provisioner".into());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(service_name).build())
        .build();
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let tracer = provider.tracer("provisioner");
    PROVIDER.set(provider).ok()?;
    Some(tracer)
}
