//! Reading stored events in the current shape: every reader of `events.payload` (aggregates
//! through cqrs-es, the feed, a command's last event) goes through the `events` crate's
//! upcaster, so that an event stored in an older version still loads. Rows read by hand
//! (the feed, a command's last event) go through [`crate::feed::current_shape`].

use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use serde_json::Value;

/// The upcaster the aggregates' event stores load with.
pub struct Upcaster;

impl EventUpcaster for Upcaster {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        events::current_version(event_type).is_some_and(|current| current != event_version)
    }

    fn upcast(&self, mut event: SerializedEvent) -> SerializedEvent {
        let payload = std::mem::take(&mut event.payload);
        match events::upcast(&event.event_type, &event.event_version, payload) {
            Ok((version, payload)) => SerializedEvent { event_version: version.to_owned(), payload, ..event },
            // cqrs-es lets no upcaster fail. A payload that fits no event but names the reason
            // makes the load fail with a `DeserializationError` quoting it, where passing the
            // payload on could read a newer shape as the current one.
            Err(e) => SerializedEvent { payload: Value::String(e.to_string()), ..event },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::instance::Instance;
    use serde_json::json;

    fn stored(event_version: &str, payload: Value) -> SerializedEvent {
        SerializedEvent::new(
            "slot".into(),
            1,
            "instance".into(),
            "instance.created".into(),
            event_version.into(),
            payload,
            json!({}),
        )
    }

    fn v1_created() -> Value {
        json!({"InstanceCreated": {
            "slot": {"project_id": "0b9d8a4e-9c52-4f55-9a0e-3d1d8bb7e0a1",
                     "server": {"kind": "catalog", "slug": "gmail"}, "server_name": "Gmail", "user_id": "alice"},
            "instance_id": "5d1b3f0e-0a59-4d4e-9d8a-0b5d7e4c1a2f", "platform": "Acme", "legacy": false}})
    }

    fn load(event: SerializedEvent) -> Result<cqrs_es::EventEnvelope<Instance>, cqrs_es::persist::PersistenceError> {
        let upcaster = Upcaster;
        let event =
            if upcaster.can_upcast(&event.event_type, &event.event_version) { upcaster.upcast(event) } else { event };
        event.try_into()
    }

    #[test]
    fn an_older_event_loads_in_the_current_shape() {
        let envelope = load(stored("1.0", v1_created())).unwrap();
        let events::InstanceEvent::InstanceCreated(created) = envelope.payload.0 else { panic!("not created") };
        assert_eq!(created.settings.platform.as_deref(), Some("Acme"));
        assert!(!created.settings.read_only);
    }

    #[test]
    fn a_newer_event_fails_to_load_naming_why() {
        let upcaster = Upcaster;
        assert!(upcaster.can_upcast("instance.created", "3.0"));
        assert!(!upcaster.can_upcast("instance.created", "2.0"));
        let error = load(stored("3.0", v1_created())).unwrap_err();
        assert!(error.to_string().contains("newer build"), "{error}");
    }
}
