use crate::feed::FeedEvent;
use crate::telemetry::trace_context;
use anyhow::Context;
use events::envelope::{self, Envelope};
use events::{AnyEvent, Namespace, secret};

/// One event, ready for JetStream: its subject, its `Nats-Msg-Id` and its CloudEvents body.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    pub message_id: String,
    pub payload: bytes::Bytes,
    /// Set when the event was too large and `payload` is its claim check: the size in bytes
    /// the full message would have taken.
    pub omitted: Option<usize>,
    /// The W3C trace context stored with the event, sent as the `traceparent` header (and in
    /// the envelope's extension of that name).
    pub traceparent: Option<String>,
}

/// Room kept in a message for its headers (`Nats-Msg-Id`, `Nats-Expected-Stream`), which the
/// server counts against `max_payload` with the payload.
const HEADER_ALLOWANCE: usize = 1024;

/// The published form of a stored event (see [`outgoing`]), or, when that would not fit in a
/// message of `max_message_bytes` (the server's `max_payload`), its claim check: the same
/// envelope without `data`, pointing at the audit API. A message the server refuses would
/// stop the stream for every project (the relay retries its batch until it is taken), so
/// the event goes out in the one form that fits; nothing is lost, the store keeps it whole.
pub fn fitting(event: &FeedEvent, namespace: &Namespace, max_message_bytes: usize) -> anyhow::Result<Outgoing> {
    let full = outgoing(event, namespace)?;
    let room = max_message_bytes.saturating_sub(HEADER_ALLOWANCE);
    if full.payload.len() <= room {
        return Ok(full);
    }
    let mut body: Envelope = serde_json::from_slice(&full.payload)?;
    body.data = serde_json::Value::Null;
    body.dataref = Some(format!("/api/v1/audit/{}/{}", event.aggregate_type, event.aggregate_id));
    body.dataomitted = Some(full.payload.len() as u64);
    Ok(Outgoing { payload: serde_json::to_vec(&body)?.into(), omitted: Some(full.payload.len()), ..full })
}

/// The published form of a stored event: typed once (which also names its project), secrets
/// removed, wrapped in the envelope the `events` crate documents for subscribers, on its
/// subject in `namespace`.
pub fn outgoing(event: &FeedEvent, namespace: &Namespace) -> anyhow::Result<Outgoing> {
    let mut data = event.payload()?;
    let typed = AnyEvent::from_json(&event.aggregate_type, data.clone())
        .with_context(|| format!("event at {} cannot be published", event.position))?;
    let project = typed.project_id();
    secret::redact(&mut data);
    let message_id = envelope::message_id(&event.aggregate_type, &event.aggregate_id, event.sequence);
    // Checked again: the metadata column is the store's, and a header must be well formed.
    let traceparent = event.metadata.get("traceparent").and_then(|v| v.as_str()).and_then(trace_context::checked);
    let body = Envelope {
        specversion: "1.0".into(),
        id: message_id.clone(),
        source: format!("/provisioner/{}", event.aggregate_type),
        event_type: envelope::cloud_event_type(&event.event_type, &event.event_version),
        subject: event.aggregate_id.clone(),
        time: event.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        datacontenttype: "application/json".into(),
        position: event.position.to_string(),
        sequence: event.sequence,
        project,
        data,
        dataref: None,
        dataomitted: None,
        traceparent: traceparent.clone(),
    };
    Ok(Outgoing {
        subject: namespace.event_subject(project, &event.event_type),
        message_id,
        payload: serde_json::to_vec(&body)?.into(),
        omitted: None,
        traceparent,
    })
}

/// Splits a batch (in commit order) into runs in which no aggregate appears twice.
///
/// A run is published as a pipeline and all its acks are awaited before the next run starts.
/// If one publish of a run fails while later ones succeed, the retry stores the failed event
/// after them: harmless across aggregates, but it would put an aggregate's event after its
/// own successor. Keeping each aggregate to one event per run rules that out.
pub fn runs(batch: &[FeedEvent]) -> Vec<&[FeedEvent]> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut seen = std::collections::HashSet::new();
    for (i, event) in batch.iter().enumerate() {
        if !seen.insert((event.aggregate_type.as_str(), event.aggregate_id.as_str())) {
            runs.push(&batch[start..i]);
            start = i;
            seen.clear();
            seen.insert((event.aggregate_type.as_str(), event.aggregate_id.as_str()));
        }
    }
    if start < batch.len() {
        runs.push(&batch[start..]);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::Position;
    use serde_json::json;

    fn server_deleted(bytes_of_name: usize) -> FeedEvent {
        let payload = json!({"ServerDeleted": {
            "project_id": events::ProjectId::random(), "server_id": uuid::Uuid::new_v4(), "name": "n".repeat(bytes_of_name)
        }});
        FeedEvent { payload_json: payload.to_string(), ..event("s", 1) }
    }

    #[test]
    fn an_event_too_large_for_a_message_goes_out_as_its_claim_check() {
        let small = fitting(&server_deleted(10), &Namespace::default(), 64 * 1024).unwrap();
        assert_eq!(small.omitted, None);
        assert!(String::from_utf8_lossy(&small.payload).contains("nnnnnnnnnn"));

        let large = server_deleted(100 * 1024);
        let full = outgoing(&large, &Namespace::default()).unwrap();
        let check = fitting(&large, &Namespace::default(), 64 * 1024).unwrap();
        assert_eq!(check.omitted, Some(full.payload.len()));
        assert_eq!(
            (check.message_id.as_str(), check.subject.as_str()),
            (full.message_id.as_str(), full.subject.as_str())
        );
        assert!(check.payload.len() < 1024, "{} bytes", check.payload.len());
        let Err(events::DecodeError::DataOmitted { dataref, sequence, .. }) = events::decode(&check.payload) else {
            panic!("not a claim check: {}", String::from_utf8_lossy(&check.payload))
        };
        assert_eq!((dataref.as_str(), sequence), ("/api/v1/audit/server/s", 1));
    }

    fn event(aggregate_id: &str, sequence: i64) -> FeedEvent {
        FeedEvent {
            position: Position::new(1, sequence),
            aggregate_type: "server".into(),
            aggregate_id: aggregate_id.into(),
            sequence,
            event_type: "server.deleted".into(),
            event_version: "1.0".into(),
            payload_json: "{}".into(),
            metadata: json!({}),
            recorded_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_stored_trace_context_goes_into_the_envelope_and_beside_it() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let traced = FeedEvent { metadata: json!({"actor": "t", "traceparent": traceparent}), ..server_deleted(1) };
        let out = outgoing(&traced, &Namespace::default()).unwrap();
        assert_eq!(out.traceparent.as_deref(), Some(traceparent));
        let envelope = events::decode(&out.payload).unwrap().envelope;
        assert_eq!(envelope.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        let forged = FeedEvent { metadata: json!({"traceparent": "00-x\r\nX-Evil: 1"}), ..server_deleted(1) };
        assert_eq!(outgoing(&forged, &Namespace::default()).unwrap().traceparent, None);
        assert_eq!(outgoing(&server_deleted(1), &Namespace::default()).unwrap().traceparent, None);
    }

    #[test]
    fn no_run_holds_two_events_of_one_aggregate() {
        let batch = [event("a", 1), event("b", 1), event("a", 2), event("c", 1), event("a", 3)];
        let runs: Vec<Vec<(&str, i64)>> = runs(&batch)
            .into_iter()
            .map(|run| run.iter().map(|e| (e.aggregate_id.as_str(), e.sequence)).collect())
            .collect();
        assert_eq!(runs, vec![vec![("a", 1), ("b", 1)], vec![("a", 2), ("c", 1)], vec![("a", 3)]]);
    }
}
