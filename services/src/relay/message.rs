use crate::feed::FeedEvent;
use anyhow::Context;
use events::envelope::{self, Envelope};
use events::{AnyEvent, secret};

/// One event, ready for JetStream: its subject, its `Nats-Msg-Id` and its CloudEvents body.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    pub message_id: String,
    pub payload: bytes::Bytes,
}

/// The published form of a stored event: typed once (which also names its project), secrets
/// removed, wrapped in the envelope the `events` crate documents for subscribers.
pub fn outgoing(event: &FeedEvent) -> anyhow::Result<Outgoing> {
    let mut data = event.payload()?;
    let typed = AnyEvent::from_json(&event.aggregate_type, data.clone())
        .with_context(|| format!("event at {} cannot be published", event.position))?;
    let project = typed.project_id();
    secret::redact(&mut data);
    let message_id = envelope::message_id(&event.aggregate_type, &event.aggregate_id, event.sequence);
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
    };
    Ok(Outgoing {
        subject: envelope::subject(project, &event.event_type),
        message_id,
        payload: serde_json::to_vec(&body)?.into(),
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
    fn no_run_holds_two_events_of_one_aggregate() {
        let batch = [event("a", 1), event("b", 1), event("a", 2), event("c", 1), event("a", 3)];
        let runs: Vec<Vec<(&str, i64)>> = runs(&batch)
            .into_iter()
            .map(|run| run.iter().map(|e| (e.aggregate_id.as_str(), e.sequence)).collect())
            .collect();
        assert_eq!(runs, vec![vec![("a", 1), ("b", 1)], vec![("a", 2), ("c", 1)], vec![("a", 3)]]);
    }
}
