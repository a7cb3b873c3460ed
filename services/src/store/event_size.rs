//! A bound on the size of every stored event.
//!
//! Every event is published to NATS, whose messages are capped (`max_payload`, 1 MiB by
//! default). An event near that cap would be refused by the server; the relay has a way past
//! such a message (see `relay::oversized`), but the store should never take one in the first
//! place. Input fields have their own limits; this one bounds what they add up to, and is set
//! well below the server's cap (a quarter of it by default).

use crate::error::EventTooLarge;
use cqrs_es::Aggregate;
use cqrs_es::persist::{PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot};
use postgres_es::PostgresEventRepository;
use serde_json::Value;

/// The default bound on one event (its payload and metadata as JSON text): 256 KiB, a quarter
/// of NATS's default `max_payload`.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 256 * 1024;

/// The bound to use with a NATS server whose `max_payload` is `max_payload`: the configured
/// one, lowered to a quarter of the server's cap so that the envelope, headers and any later
/// growth of a field still fit.
pub fn limit_for(configured: usize, max_payload: Option<usize>) -> usize {
    match max_payload {
        Some(max) => configured.min(max / 4),
        None => configured,
    }
}

/// postgres-es's repository, refusing (before anything is written) a commit holding an event
/// larger than `limit`.
pub struct SizeLimitedRepository {
    inner: PostgresEventRepository,
    limit: usize,
}

impl SizeLimitedRepository {
    pub fn new(inner: PostgresEventRepository, limit: usize) -> Self {
        Self { inner, limit }
    }

    fn check(&self, events: &[SerializedEvent]) -> Result<(), EventTooLarge> {
        for event in events {
            let bytes = json_len(&event.payload) + json_len(&event.metadata);
            if bytes > self.limit {
                return Err(EventTooLarge { event_type: event.event_type.clone(), bytes, limit: self.limit });
            }
        }
        Ok(())
    }
}

/// The length of `value` as compact JSON text, the form it is stored and published in.
fn json_len(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |text| text.len())
}

impl PersistedEventRepository for SizeLimitedRepository {
    async fn get_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.inner.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.inner.get_last_events::<A>(aggregate_id, last_sequence).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.inner.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        self.check(events).map_err(|e| PersistenceError::UnknownError(Box::new(e)))?;
        self.inner.persist::<A>(events, snapshot_update).await?;
        // Committed: postgres-es persists in one transaction and returns once it commits.
        ::metrics::counter!(crate::metrics::EVENTS_APPENDED, "aggregate" => A::TYPE).increment(events.len() as u64);
        Ok(())
    }

    async fn stream_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_all_events::<A>().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(payload: Value) -> SerializedEvent {
        SerializedEvent {
            aggregate_id: "a".into(),
            sequence: 1,
            aggregate_type: "server".into(),
            event_type: "server.registered".into(),
            event_version: "1.0".into(),
            payload,
            metadata: json!({"actor": "test"}),
        }
    }

    fn repository(limit: usize) -> SizeLimitedRepository {
        let pool = sqlx::postgres::PgPoolOptions::new().connect_lazy("postgres://localhost/unused").unwrap();
        SizeLimitedRepository::new(PostgresEventRepository::new(pool), limit)
    }

    #[tokio::test]
    async fn an_event_over_the_limit_is_refused_and_one_at_it_passes() {
        let metadata_len = json_len(&json!({"actor": "test"}));
        let at_limit = event(json!("x".repeat(100 - metadata_len - 2)));
        let repository = repository(100);
        assert_eq!(repository.check(std::slice::from_ref(&at_limit)), Ok(()));
        let over = event(json!("x".repeat(100 - metadata_len - 1)));
        let refused = repository.check(&[at_limit, over]).unwrap_err();
        assert_eq!(refused, EventTooLarge { event_type: "server.registered".into(), bytes: 101, limit: 100 });
    }

    #[test]
    fn the_limit_is_a_quarter_of_the_servers_cap_at_most() {
        assert_eq!(limit_for(DEFAULT_MAX_EVENT_BYTES, None), DEFAULT_MAX_EVENT_BYTES);
        assert_eq!(limit_for(DEFAULT_MAX_EVENT_BYTES, Some(1024 * 1024)), DEFAULT_MAX_EVENT_BYTES);
        assert_eq!(limit_for(DEFAULT_MAX_EVENT_BYTES, Some(64 * 1024)), 16 * 1024);
    }
}
