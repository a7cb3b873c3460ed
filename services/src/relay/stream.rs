use crate::nats::RelaySettings;
use anyhow::Context;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use std::collections::HashMap;
use std::time::Duration;

/// How long a JetStream request (a publish's ack included) may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to NATS (see [`crate::nats::connect()`]). The client reconnects by itself after a
/// loss, forever; publishes made while it is away wait in its buffer or time out, and the
/// relay retries them.
pub async fn connect(settings: &RelaySettings, name: &str, max_in_flight: usize) -> anyhow::Result<jetstream::Context> {
    let client = crate::nats::connect(settings, name).await?;
    Ok(jetstream::ContextBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .max_ack_inflight(max_in_flight)
        .backpressure_on_inflight(true)
        .build(client))
}

/// The `max_payload` of the NATS server `settings` name: the largest message (headers and
/// payload) it takes.
pub async fn max_payload(settings: &RelaySettings) -> anyhow::Result<usize> {
    let js = connect(settings, "provisioner-limits", 1).await?;
    let client = js.client();
    let max_payload = client.server_info().max_payload;
    // Dropping the last handle does not flush; close explicitly so the server sees us go.
    let _ = client.drain().await;
    Ok(max_payload)
}

/// The configuration of the stream `name`: every subject of the service (the events', and the
/// gateway's records', under the configured prefix), on file, deduplicated by `Nats-Msg-Id` over the configured window.
/// [`ensure`] brings an existing stream to these subjects.
pub fn config(settings: &RelaySettings, name: &str) -> stream::Config {
    stream::Config {
        name: name.into(),
        description: Some(
            "Every event of MCP Provisioner and every record of its MCP gateway, in CloudEvents 1.0 JSON".into(),
        ),
        subjects: vec![settings.namespace.all_events(), settings.namespace.all_records()],
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        duplicate_window: settings.duplicate_window,
        ..Default::default()
    }
}

/// Creates the stream, or brings an existing one to the configured subjects, replicas and window.
pub async fn ensure(js: &jetstream::Context, settings: &RelaySettings) -> anyhow::Result<()> {
    let name = settings.namespace.stream();
    match js.create_or_update_stream(config(settings, name)).await {
        Ok(_) => Ok(()),
        // Another deployment's stream on the same NATS, most likely: the subjects are its.
        Err(e) if e.to_string().contains("overlap") => Err(anyhow::Error::new(e).context(format!(
            "cannot create the stream {name}: another stream already captures {} or {}; give each deployment \
             on one NATS its own PROVISIONER_NATS_SUBJECT_PREFIX (and PROVISIONER_NATS_STREAM)",
            settings.namespace.all_events(),
            settings.namespace.all_records()
        ))),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot create or update the stream {name}"))),
    }
}

/// Makes sure the stream `name` captures the events' subjects: creates it with the relay's
/// configuration if no stream does; fails, naming it, if another stream already does (two
/// streams cannot share subjects, and publishing there would not fill `name`).
pub async fn ensure_named(js: &jetstream::Context, settings: &RelaySettings, name: &str) -> anyhow::Result<()> {
    let subjects = settings.namespace.all_events();
    let owner = match js.stream_by_subject(subjects.as_str()).await {
        Ok(owner) => Some(owner),
        Err(e) if e.kind() == jetstream::context::GetStreamByNameErrorKind::NotFound => None,
        Err(e) => return Err(e).context("cannot list the streams"),
    };
    match owner {
        Some(owner) if owner == name => Ok(()),
        Some(owner) => anyhow::bail!(
            "the stream {owner} already captures {subjects}: send to it (--stream {owner}) or delete it first"
        ),
        None => {
            js.create_stream(config(settings, name))
                .await
                .with_context(|| format!("cannot create the stream {name}"))?;
            Ok(())
        }
    }
}

/// How long a scan waits for the next message before it gives up.
const SCAN_IDLE: Duration = Duration::from_secs(10);

/// Every message id in the stream, with the number of messages carrying it (1 each when every
/// event is there once). Reads headers only, through an ordered (ephemeral) consumer, up to
/// the messages stored when it starts. Messages without an id are not counted.
pub async fn message_ids(js: &jetstream::Context, stream: &str) -> anyhow::Result<HashMap<String, u64>> {
    let mut handle = js.get_stream(stream).await.with_context(|| format!("no stream {stream}"))?;
    let state = handle.info().await?.state.clone();
    let mut ids = HashMap::new();
    if state.messages == 0 {
        return Ok(ids);
    }
    let scan = pull::OrderedConfig { headers_only: true, deliver_policy: DeliverPolicy::All, ..Default::default() };
    let mut messages = handle.create_consumer(scan).await?.messages().await?;
    loop {
        let message = tokio::time::timeout(SCAN_IDLE, messages.next())
            .await
            .with_context(|| format!("no message for {SCAN_IDLE:?} while scanning {stream}"))?
            .with_context(|| format!("the scan of {stream} ended early"))??;
        let id = message.headers.as_ref().and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID));
        if let Some(id) = id {
            *ids.entry(id.as_str().to_owned()).or_default() += 1;
        }
        let info = message.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        if info.pending == 0 || info.stream_sequence >= state.last_sequence {
            return Ok(ids);
        }
    }
}

/// The stream's last sequence, as the server reports it now.
pub async fn last_sequence(js: &jetstream::Context, stream: &str) -> anyhow::Result<u64> {
    let mut stream = js.get_stream(stream).await?;
    Ok(stream.info().await?.state.last_sequence)
}
