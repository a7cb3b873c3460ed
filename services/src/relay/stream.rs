use crate::config::RelaySettings;
use anyhow::Context;
use async_nats::jetstream::{self, stream};
use std::time::Duration;

/// How long a JetStream request (a publish's ack included) may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to NATS. The client reconnects by itself after a loss, forever; publishes made
/// while it is away wait in its buffer or time out, and the relay retries them.
pub async fn connect(settings: &RelaySettings, name: &str, max_in_flight: usize) -> anyhow::Result<jetstream::Context> {
    let servers = settings
        .nats_urls
        .iter()
        .map(|url| url.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .context("NATS_URL")?;
    let client = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(3))
        .connect(servers)
        .await
        .context("cannot connect to NATS")?;
    Ok(jetstream::ContextBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .max_ack_inflight(max_in_flight)
        .backpressure_on_inflight(true)
        .build(client))
}

/// The stream's configuration: every subject of the service, on file, deduplicated by
/// `Nats-Msg-Id` over the configured window.
pub fn config(settings: &RelaySettings) -> stream::Config {
    stream::Config {
        name: events::envelope::STREAM.into(),
        description: Some("Every event of MCP Provisioner, in CloudEvents 1.0 JSON".into()),
        subjects: vec![format!("{}.>", events::envelope::SUBJECT_PREFIX)],
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        duplicate_window: settings.duplicate_window,
        ..Default::default()
    }
}

/// Creates the stream, or brings an existing one to the configured replicas and window.
pub async fn ensure(js: &jetstream::Context, settings: &RelaySettings) -> anyhow::Result<()> {
    js.create_or_update_stream(config(settings))
        .await
        .with_context(|| format!("cannot create or update the stream {}", events::envelope::STREAM))?;
    Ok(())
}

/// The stream's last sequence, as the server reports it now.
pub async fn last_sequence(js: &jetstream::Context) -> anyhow::Result<u64> {
    let mut stream = js.get_stream(events::envelope::STREAM).await?;
    Ok(stream.info().await?.state.last_sequence)
}
