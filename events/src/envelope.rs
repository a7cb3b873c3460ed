//! What a subscriber receives on NATS JetStream: each event in a CloudEvents 1.0 JSON
//! envelope, on a subject that names its project, aggregate and event.
//!
//! - Stream [`STREAM`], subjects `provisioner.events.<project>.<aggregate>.<event>`, for
//!   example `provisioner.events.7f0c….instance.created`. Filter one project with
//!   `provisioner.events.<project>.>`, one kind of event in every project with
//!   `provisioner.events.*.instance.*`. A deployment may be configured with another stream
//!   and subject prefix (to share one NATS with another deployment): its
//!   [`crate::Namespace`] builds its names; the constants and functions here are the default
//!   namespace's.
//! - The message id (`Nats-Msg-Id`, and the envelope's `id`) is
//!   `<aggregate>:<aggregate id>:<sequence>`: unique per event, stable across republishing, so
//!   JetStream drops a copy the relay sends twice.
//! - Per aggregate, events arrive in their `sequence` order.
//! - `type` names the event and the major version of its data's shape,
//!   `provisioner.<aggregate>.<event>.v<major>`: each event type has its own version (see
//!   [`crate::upcast::current_version`]), e.g. `provisioner.instance.created.v2`.
//! - The payload (`data`) is the event with its secrets removed: a sealed secret keeps only its
//!   `key_id` (see [`crate::secret::redact`]).
//! - An event too large for the NATS server's `max_payload` (only possible for events stored
//!   before the service bounded them, or after the server's limit was lowered) is published
//!   without its data, as a claim check: `data` is null and the `dataref` extension
//!   (CloudEvents' own) points at the service's audit API, where the whole event is read with
//!   the project's key; `dataomitted` gives the published size it would have had. [`decode`]
//!   answers [`DecodeError::DataOmitted`] for it.
//!
//! - A write made by a traced request carries its W3C trace context: the `traceparent`
//!   extension of the envelope (CloudEvents' distributed tracing extension) and the
//!   [`TRACEPARENT_HEADER`] header of the message hold the same value, so a consumer continues
//!   the request's trace (see [`Envelope::traceparent`] and [`Envelope::trace_id`]).
//!
//! [`decode`] turns a message payload into a [`Received`] event, typed.

use crate::upcast::{UpcastError, current_version, upcast};
use crate::{
    AuthConfigEvent, ConnectedAccountEvent, Event, InstanceEvent, OAuthAppEvent, ProjectEvent, ProjectId, ServerEvent,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The JetStream stream every event is published to (in the default [`crate::Namespace`]).
pub const STREAM: &str = "PROVISIONER_EVENTS";
/// The first tokens of every subject (in the default [`crate::Namespace`]).
pub const SUBJECT_PREFIX: &str = "provisioner.events";
/// The `type` prefix: `provisioner.<aggregate>.<event>.v<major version>`.
pub const TYPE_PREFIX: &str = "provisioner";

/// The subject of one event: `provisioner.events.<project>.<aggregate>.<event>`, where
/// `event_type` is the event's stable name, `<aggregate>.<event>` (see [`Event::event_type`]).
/// The default namespace's; see [`crate::Namespace::event_subject`].
pub fn subject(project: ProjectId, event_type: &str) -> String {
    format!("{SUBJECT_PREFIX}.{project}.{event_type}")
}

/// Every subject of one project, for a consumer's filter.
pub fn project_subjects(project: ProjectId) -> String {
    format!("{SUBJECT_PREFIX}.{project}.>")
}

/// The id of one event, in the envelope and in `Nats-Msg-Id`.
pub fn message_id(aggregate_type: &str, aggregate_id: &str, sequence: i64) -> String {
    format!("{aggregate_type}:{aggregate_id}:{sequence}")
}

/// The NATS header carrying the W3C trace context of the write that caused an event, the same
/// value as the envelope's `traceparent` extension.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// `provisioner.instance.created.v2` from `instance.created` and version `2.0`.
pub fn cloud_event_type(event_type: &str, event_version: &str) -> String {
    let major = event_version.split('.').next().unwrap_or(event_version);
    format!("{TYPE_PREFIX}.{event_type}.v{major}")
}

/// A CloudEvents 1.0 envelope (JSON format), with this service's three extensions:
/// `position`, `sequence` and `project`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Always `1.0`.
    pub specversion: String,
    /// `<aggregate>:<aggregate id>:<sequence>`, the same as `Nats-Msg-Id`.
    pub id: String,
    /// `/provisioner/<aggregate>`.
    pub source: String,
    /// `provisioner.<aggregate>.<event>.v<major>`, e.g. `provisioner.instance.created.v2`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The aggregate's id: the slot, account, server... the event is about.
    pub subject: String,
    /// When the event was committed, RFC 3339 (UTC).
    pub time: String,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// Place in the store's global commit order, `<transaction id>/<global position>`.
    pub position: String,
    /// The event's number within its aggregate, from 1, without gaps.
    pub sequence: i64,
    /// The project the event belongs to.
    pub project: ProjectId,
    /// The event, secrets removed; decode it with [`decode`]. Null when the event was too
    /// large to publish (then `dataref` is set).
    pub data: Value,
    /// Where to read an event published without its data: the audit API's path for its
    /// aggregate, `/api/v1/audit/<aggregate>/<id>`, relative to the service's URL; the event
    /// is the one numbered `sequence` there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataref: Option<String>,
    /// The size in bytes the message would have had with its data, when it was left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataomitted: Option<u64>,
    /// The W3C `traceparent` of the request whose write recorded the event
    /// (`00-<trace id>-<parent span id>-<flags>`), absent when it was not traced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl Envelope {
    /// The aggregate type, from `type`.
    pub fn aggregate_type(&self) -> Option<&str> {
        self.event_type.strip_prefix(TYPE_PREFIX)?.strip_prefix('.')?.split('.').next()
    }

    /// The event's stable name, `<aggregate>.<event>`, from `type`.
    pub fn event_name(&self) -> Option<&str> {
        let name = self.event_type.strip_prefix(TYPE_PREFIX)?.strip_prefix('.')?;
        Some(name.rsplit_once('.')?.0)
    }

    /// The W3C trace context of the write that recorded the event: make it the parent of the
    /// consumer's span to continue the same trace.
    pub fn traceparent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }

    /// The trace id (32 hex digits) of [`Self::traceparent`].
    pub fn trace_id(&self) -> Option<&str> {
        let mut fields = self.traceparent()?.split('-');
        let (_version, trace_id) = (fields.next()?, fields.next()?);
        (trace_id.len() == 32).then_some(trace_id)
    }

    /// The major version of `data`'s shape, from `type`.
    pub fn version(&self) -> Option<u32> {
        self.event_type.rsplit('.').next()?.strip_prefix('v')?.parse().ok()
    }
}

/// Any event of any aggregate, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEvent {
    Project(ProjectEvent),
    Server(ServerEvent),
    Instance(InstanceEvent),
    OAuthApp(OAuthAppEvent),
    AuthConfig(AuthConfigEvent),
    ConnectedAccount(ConnectedAccountEvent),
}

impl AnyEvent {
    /// Decodes a payload of `aggregate_type` in its current shape (see [`crate::upcast::upcast`]).
    pub fn from_json(aggregate_type: &str, data: Value) -> Result<Self, DecodeError> {
        let event = match aggregate_type {
            ProjectEvent::AGGREGATE_TYPE => Self::Project(typed(data)?),
            ServerEvent::AGGREGATE_TYPE => Self::Server(typed(data)?),
            InstanceEvent::AGGREGATE_TYPE => Self::Instance(typed(data)?),
            OAuthAppEvent::AGGREGATE_TYPE => Self::OAuthApp(typed(data)?),
            AuthConfigEvent::AGGREGATE_TYPE => Self::AuthConfig(typed(data)?),
            ConnectedAccountEvent::AGGREGATE_TYPE => Self::ConnectedAccount(typed(data)?),
            other => return Err(DecodeError::UnknownAggregate(other.to_owned())),
        };
        Ok(event)
    }

    pub fn project_id(&self) -> ProjectId {
        match self {
            Self::Project(e) => e.project_id(),
            Self::Server(e) => e.project_id(),
            Self::Instance(e) => e.project_id(),
            Self::OAuthApp(e) => e.project_id(),
            Self::AuthConfig(e) => e.project_id(),
            Self::ConnectedAccount(e) => e.project_id(),
        }
    }

    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Project(e) => e.event_type(),
            Self::Server(e) => e.event_type(),
            Self::Instance(e) => e.event_type(),
            Self::OAuthApp(e) => e.event_type(),
            Self::AuthConfig(e) => e.event_type(),
            Self::ConnectedAccount(e) => e.event_type(),
        }
    }
}

fn typed<E: Event>(data: Value) -> Result<E, DecodeError> {
    serde_json::from_value(data).map_err(|e| DecodeError::Payload(e.to_string()))
}

/// One event as a subscriber receives it: the envelope (whose `data` is kept as JSON) and the
/// typed event.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub envelope: Envelope,
    pub event: AnyEvent,
}

/// Decodes the payload of a message from [`STREAM`] (`message.payload` in async-nats).
///
/// Each event type is read in its current major version; an older one (a message published
/// before its type changed shape) is upcast to the current shape first (see
/// [`crate::upcast::upcast`]), so `event` always has the current shape while `envelope.data`
/// stays as published. A newer version is refused: upgrade the `events` crate.
pub fn decode(payload: &[u8]) -> Result<Received, DecodeError> {
    let envelope: Envelope = serde_json::from_slice(payload).map_err(|e| DecodeError::Envelope(e.to_string()))?;
    if let Some(dataref) = envelope.dataref.clone().filter(|_| envelope.data.is_null()) {
        return Err(DecodeError::DataOmitted { id: envelope.id, dataref, sequence: envelope.sequence });
    }
    let unreadable = || DecodeError::Type(envelope.event_type.clone());
    let aggregate_type = envelope.aggregate_type().ok_or_else(unreadable)?;
    let event_type = envelope.event_name().ok_or_else(unreadable)?;
    let major = envelope.version().ok_or_else(unreadable)?;
    let data = current_shape(event_type, major, envelope.data.clone()).map_err(|e| match e {
        UpcastError::Malformed { .. } => DecodeError::Payload(e.to_string()),
        UpcastError::UnknownType(_) | UpcastError::UnknownVersion { .. } => {
            DecodeError::UnknownVersion(envelope.event_type.clone())
        }
    })?;
    let event = AnyEvent::from_json(aggregate_type, data)?;
    if event.event_type() != event_type {
        return Err(DecodeError::Payload(format!(
            "a `{}` under the type `{}`",
            event.event_type(),
            envelope.event_type
        )));
    }
    Ok(Received { envelope, event })
}

/// `data`, published as major version `major` of `event_type`, in the current shape. A minor
/// version only adds what older readers may ignore, so the major alone decides.
fn current_shape(event_type: &str, major: u32, data: Value) -> Result<Value, UpcastError> {
    let current = current_version(event_type).ok_or_else(|| UpcastError::UnknownType(event_type.to_owned()))?;
    if major_of(current) == Some(major) {
        return Ok(data);
    }
    upcast(event_type, &format!("{major}.0"), data).map(|(_, data)| data)
}

fn major_of(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a CloudEvents envelope of this service.
    Envelope(String),
    /// A `type` that does not read `provisioner.<aggregate>.<event>.v<n>`.
    Type(String),
    /// A version this crate does not know: upgrade the `events` crate.
    UnknownVersion(String),
    UnknownAggregate(String),
    /// `data` does not fit the event's type.
    Payload(String),
    /// The event was too large to publish and came without its data: read event `sequence` of
    /// the aggregate at `dataref` (the service's audit API) with the project's key.
    DataOmitted {
        id: String,
        dataref: String,
        sequence: i64,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Envelope(e) => write!(f, "not an event envelope: {e}"),
            Self::Type(t) => write!(f, "unreadable event type `{t}`"),
            Self::UnknownVersion(t) => write!(f, "event type `{t}` is newer than this events crate"),
            Self::UnknownAggregate(a) => write!(f, "unknown aggregate type `{a}`"),
            Self::Payload(e) => write!(f, "event data does not fit its type: {e}"),
            Self::DataOmitted { id, dataref, sequence } => {
                write!(f, "event {id} was too large to publish; read event {sequence} at {dataref}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SealedSecret;
    use crate::instance::{AuthMethod, InstanceAuthSet, ServerRef, Slot};
    use uuid::Uuid;

    fn auth_set() -> InstanceEvent {
        InstanceEvent::InstanceAuthSet(InstanceAuthSet {
            slot: Slot {
                project_id: ProjectId::random(),
                server: ServerRef::Catalog { slug: "gmail".into() },
                server_name: "Gmail".into(),
                user_id: "alice".into(),
            },
            instance_id: None,
            method: AuthMethod::Token,
            credential: SealedSecret {
                key_id: Uuid::new_v4(),
                nonce: "bm9uY2U=".into(),
                ciphertext: "c2VjcmV0".into(),
            },
            replaced_key_id: None,
            oauth_state: None,
        })
    }

    fn published(event: &InstanceEvent) -> Vec<u8> {
        let mut data = serde_json::to_value(event).unwrap();
        crate::secret::redact(&mut data);
        let envelope = Envelope {
            specversion: "1.0".into(),
            id: message_id("instance", "slot-1", 3),
            source: "/provisioner/instance".into(),
            event_type: cloud_event_type(event.event_type(), event.event_version()),
            subject: "slot-1".into(),
            time: "2026-11-23T10:00:00Z".into(),
            datacontenttype: "application/json".into(),
            position: "812/44".into(),
            sequence: 3,
            project: event.project_id(),
            data,
            dataref: None,
            dataomitted: None,
            traceparent: None,
        };
        serde_json::to_vec(&envelope).unwrap()
    }

    #[test]
    fn a_published_event_carries_no_ciphertext_and_decodes_typed() {
        let event = auth_set();
        let payload = published(&event);
        let text = String::from_utf8(payload.clone()).unwrap();
        assert!(!text.contains("c2VjcmV0") && !text.contains("bm9uY2U="), "{text}");

        let received = decode(&payload).unwrap();
        assert_eq!(received.envelope.event_type, "provisioner.instance.auth_set.v1");
        assert_eq!(received.envelope.aggregate_type(), Some("instance"));
        let AnyEvent::Instance(InstanceEvent::InstanceAuthSet(set)) = received.event else { panic!("not auth set") };
        assert!(set.credential.is_redacted());
        assert_eq!(set.slot.user_id, "alice");
        assert_eq!(received.envelope.project, event.project_id());
    }

    #[test]
    fn a_newer_version_or_a_foreign_message_is_refused_not_misread() {
        let mut envelope: Envelope = serde_json::from_slice(&published(&auth_set())).unwrap();
        envelope.event_type = "provisioner.instance.auth_set.v2".into();
        let newer = serde_json::to_vec(&envelope).unwrap();
        assert!(matches!(decode(&newer), Err(DecodeError::UnknownVersion(_))));
        assert!(matches!(decode(b"{\"hello\":1}"), Err(DecodeError::Envelope(_))));
    }

    fn created_in(version: &str, data: Value) -> Vec<u8> {
        let mut envelope: Envelope = serde_json::from_slice(&published(&auth_set())).unwrap();
        envelope.event_type = format!("provisioner.instance.created.{version}");
        envelope.data = data;
        serde_json::to_vec(&envelope).unwrap()
    }

    fn slot_json() -> Value {
        serde_json::json!({"project_id": ProjectId::random(), "server": {"kind": "catalog", "slug": "gmail"},
                           "server_name": "Gmail", "user_id": "alice"})
    }

    #[test]
    fn each_event_type_is_read_in_its_own_current_version_and_older_ones_are_upcast() {
        let id = Uuid::new_v4();
        let v2 = serde_json::json!({"InstanceCreated": {"slot": slot_json(), "instance_id": id,
            "settings": {"platform": null, "connection_type": "SSE", "legacy": false, "read_only": true}}});
        let v1 = serde_json::json!({"InstanceCreated": {"slot": slot_json(), "instance_id": id,
            "connection_type": "SSE", "legacy": false, "read_only": true}});

        for payload in [created_in("v2", v2), created_in("v1", v1.clone())] {
            let received = decode(&payload).unwrap();
            let AnyEvent::Instance(InstanceEvent::InstanceCreated(created)) = received.event else { panic!() };
            assert_eq!(created.instance_id.to_string(), id.to_string());
            assert!(created.settings.read_only);
        }
        assert!(matches!(decode(&created_in("v3", v1.clone())), Err(DecodeError::UnknownVersion(_))));
        assert!(matches!(decode(&created_in("vx", v1)), Err(DecodeError::Type(_))));
    }

    #[test]
    fn data_of_another_event_than_its_type_names_is_refused() {
        let mut envelope: Envelope = serde_json::from_slice(&published(&auth_set())).unwrap();
        envelope.event_type = "provisioner.instance.deleted.v1".into();
        let mislabelled = serde_json::to_vec(&envelope).unwrap();
        assert!(matches!(decode(&mislabelled), Err(DecodeError::Payload(_))));
    }

    #[test]
    fn an_event_published_without_its_data_says_where_to_read_it() {
        let mut envelope: Envelope = serde_json::from_slice(&published(&auth_set())).unwrap();
        let text = serde_json::to_string(&envelope).unwrap();
        assert!(!text.contains("dataref") && !text.contains("dataomitted"), "{text}");
        envelope.data = Value::Null;
        envelope.dataref = Some("/api/v1/audit/instance/slot-1".into());
        envelope.dataomitted = Some(2_000_000);
        let claim_check = serde_json::to_vec(&envelope).unwrap();
        assert_eq!(
            decode(&claim_check),
            Err(DecodeError::DataOmitted {
                id: "instance:slot-1:3".into(),
                dataref: "/api/v1/audit/instance/slot-1".into(),
                sequence: 3
            })
        );
    }

    #[test]
    fn the_trace_context_is_optional_and_gives_its_trace_id() {
        let mut envelope: Envelope = serde_json::from_slice(&published(&auth_set())).unwrap();
        assert_eq!((envelope.traceparent(), envelope.trace_id()), (None, None));
        assert!(!serde_json::to_string(&envelope).unwrap().contains("traceparent"));
        envelope.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        let decoded = decode(&serde_json::to_vec(&envelope).unwrap()).unwrap().envelope;
        assert_eq!(decoded.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    }

    #[test]
    fn subjects_name_project_aggregate_and_event() {
        let project = ProjectId::random();
        assert_eq!(subject(project, "instance.created"), format!("provisioner.events.{project}.instance.created"));
        assert_eq!(cloud_event_type("instance.created", "2.0"), "provisioner.instance.created.v2");
    }
}
