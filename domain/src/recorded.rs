//! The bridge between the public event contract and cqrs-es.
//!
//! The `events` crate depends on serde alone, so it cannot implement cqrs-es's
//! `DomainEvent`, and the orphan rule keeps this crate from implementing it on those types
//! directly. `Recorded` wraps an event, serialises exactly as the event does (transparent),
//! and takes its type name and version from the event itself.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Recorded<E>(pub E);

impl<E: events::Event> DomainEvent for Recorded<E> {
    fn event_type(&self) -> String {
        self.0.event_type().to_owned()
    }

    fn event_version(&self) -> String {
        self.0.event_version().to_owned()
    }
}
