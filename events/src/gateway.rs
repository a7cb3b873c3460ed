//! What the MCP gateway puts on the record: every session it opened or closed and every
//! `tools/call`, for billing and monitoring subscribers.
//!
//! - Same stream as the events ([`crate::envelope::STREAM`]), their own subjects:
//!   `provisioner.gateway.<project>.<kind>`, for example
//!   `provisioner.gateway.7f0c….tool.called`. One project: `provisioner.gateway.<project>.>`;
//!   every tool call everywhere: `provisioner.gateway.*.tool.called`. Those are the default
//!   namespace's subjects; a deployment with its own prefix uses
//!   [`crate::Namespace::record_subject`] and its siblings.
//! - The message id (`Nats-Msg-Id`, and the envelope's `id`) is `gateway:<record id>`, stable
//!   across republishing, so JetStream drops a copy the publisher sends twice.
//! - Records arrive in the order they were committed (`position`).
//! - `type` is `provisioner.gateway.<kind>.v1`, e.g. `provisioner.gateway.tool.called.v1`.
//! - A record never holds a tool's arguments or results, nor any credential.
//!
//! [`decode`] turns a message payload into a [`ReceivedRecord`].

use crate::{InstanceId, ProjectId, ServerId};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// The first tokens of every record's subject (in the default [`crate::Namespace`]).
pub const SUBJECT_PREFIX: &str = "provisioner.gateway";
/// The first part of every record's message id.
pub const MESSAGE_ID_PREFIX: &str = "gateway";
/// The envelope's `source`.
pub const SOURCE: &str = "/provisioner/gateway";
/// The major version of [`GatewayRecord`]'s shape.
pub const VERSION: u32 = 1;

/// The subject of a record of `kind` in `project`: `provisioner.gateway.<project>.<kind>`.
pub fn subject(project: ProjectId, kind: RecordKind) -> String {
    format!("{SUBJECT_PREFIX}.{project}.{}", kind.as_str())
}

/// Every record subject of one project, for a consumer's filter.
pub fn project_subjects(project: ProjectId) -> String {
    format!("{SUBJECT_PREFIX}.{project}.>")
}

/// Every record subject, for a stream's or a consumer's filter.
pub fn all_subjects() -> String {
    format!("{SUBJECT_PREFIX}.>")
}

/// The id of one record, in the envelope and in `Nats-Msg-Id`: `gateway:<record id>`.
pub fn message_id(record_id: Uuid) -> String {
    format!("{MESSAGE_ID_PREFIX}:{record_id}")
}

/// Whether a message id is a record's (and not an event's).
pub fn is_message_id(id: &str) -> bool {
    id.strip_prefix(MESSAGE_ID_PREFIX).is_some_and(|rest| rest.starts_with(':'))
}

/// `provisioner.gateway.tool.called.v1`.
pub fn cloud_event_type(kind: RecordKind) -> String {
    format!("{}.{}.v{VERSION}", crate::envelope::TYPE_PREFIX, kind.dotted_type())
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordKind {
    /// The upstream handed out a session id that the gateway sealed for the first time (an
    /// `initialize` answered with a new `Mcp-Session-Id`).
    #[serde(rename = "session.opened")]
    SessionOpened,
    /// A `DELETE` of a session, answered by the upstream.
    #[serde(rename = "session.closed")]
    SessionClosed,
    /// A `tools/call`, whatever its outcome.
    #[serde(rename = "tool.called")]
    ToolCalled,
}

impl RecordKind {
    pub const ALL: [Self; 3] = [Self::SessionOpened, Self::SessionClosed, Self::ToolCalled];

    /// `session.opened`, `session.closed`, `tool.called`: the last tokens of the subject.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionOpened => "session.opened",
            Self::SessionClosed => "session.closed",
            Self::ToolCalled => "tool.called",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }

    /// The name inside `type`: `gateway.<kind>`.
    fn dotted_type(self) -> String {
        format!("gateway.{}", self.as_str())
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The upstream answered (a session opened or closed; a tool's result).
    Ok,
    /// The tool ran and failed: a result with `isError: true`.
    ToolError,
    /// The upstream could not be reached, timed out, broke off, answered garbage or a
    /// JSON-RPC error, or the gateway failed on its way.
    UpstreamError,
    /// The gateway refused before forwarding: a tool hidden by policy (read-only,
    /// `allowed_tools`), a target not authenticated, not bound, or a session not found.
    Refused,
}

impl Outcome {
    pub const ALL: [Self; 4] = [Self::Ok, Self::ToolError, Self::UpstreamError, Self::Refused];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ToolError => "tool_error",
            Self::UpstreamError => "upstream_error",
            Self::Refused => "refused",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|outcome| outcome.as_str() == raw)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which gateway URL the record is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A Klavis instance (`/mcp/?instance_id=…`) of one of the project's users.
    Instance { instance_id: InstanceId, user_id: String },
    /// A Composio MCP server for one user (`/v3/mcp/{server_id}?user_id=…` or
    /// `?connected_account_id=…`): the user and account as far as the URL names them.
    ComposioServer {
        server_id: ServerId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connected_account_id: Option<String>,
    },
    /// A server registered through the GAIA API (`/api/mcp/servers/{id}/mcp`), used with the
    /// project's key: no end user.
    RegisteredServer { server_id: ServerId },
}

impl Target {
    /// The envelope's `subject`: the instance's or the server's id.
    pub fn id(&self) -> String {
        match self {
            Self::Instance { instance_id, .. } => instance_id.to_string(),
            Self::ComposioServer { server_id, .. } | Self::RegisteredServer { server_id } => server_id.to_string(),
        }
    }
}

/// One record, as stored and as published in `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayRecord {
    pub record_id: Uuid,
    pub kind: RecordKind,
    pub project: ProjectId,
    pub target: Target,
    /// The server's name (`GitHub`, the Composio server's name).
    pub server_name: String,
    /// The tool a `tools/call` named; none for sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    pub outcome: Outcome,
    /// From the request's arrival to its outcome being known, in milliseconds.
    pub duration_ms: f64,
    /// The request's `x-request-id`, or the id the service gave it.
    pub request_id: String,
    /// When the request arrived, RFC 3339 (UTC).
    pub time: String,
}

/// A record's CloudEvents 1.0 envelope (JSON format), with the `position` and `project`
/// extensions of [`crate::Envelope`] (records have no aggregate, so no `sequence`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordEnvelope {
    /// Always `1.0`.
    pub specversion: String,
    /// `gateway:<record id>`, the same as `Nats-Msg-Id`.
    pub id: String,
    /// `/provisioner/gateway`.
    pub source: String,
    /// `provisioner.gateway.<kind>.v1`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The instance's or server's id (see [`Target::id`]).
    pub subject: String,
    /// When the request arrived, RFC 3339 (UTC).
    pub time: String,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// Place in the records' commit order, `<transaction id>/<position>`.
    pub position: String,
    pub project: ProjectId,
    pub data: GatewayRecord,
}

impl RecordEnvelope {
    /// The envelope of `record` committed at `position`.
    pub fn of(record: GatewayRecord, position: String) -> Self {
        Self {
            specversion: "1.0".into(),
            id: message_id(record.record_id),
            source: SOURCE.into(),
            event_type: cloud_event_type(record.kind),
            subject: record.target.id(),
            time: record.time.clone(),
            datacontenttype: "application/json".into(),
            position,
            project: record.project,
            data: record,
        }
    }
}

/// A record as a subscriber receives it.
pub type ReceivedRecord = RecordEnvelope;

/// Why a message is not a readable record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordDecodeError {
    /// Not a record envelope (an event's, or something else).
    Envelope(String),
    /// A `type` this crate does not know, a newer version included: upgrade the crate.
    UnknownType(String),
    /// `type` and `data.kind` disagree.
    Mismatch { event_type: String, kind: RecordKind },
}

impl fmt::Display for RecordDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Envelope(e) => write!(f, "not a gateway record envelope: {e}"),
            Self::UnknownType(t) => write!(f, "unknown gateway record type `{t}` (newer than this events crate?)"),
            Self::Mismatch { event_type, kind } => write!(f, "a `{kind}` record under the type `{event_type}`"),
        }
    }
}

impl std::error::Error for RecordDecodeError {}

/// Decodes the payload of a message on `provisioner.gateway.>` (events on
/// `provisioner.events.>` are read with [`crate::decode`]).
pub fn decode(payload: &[u8]) -> Result<ReceivedRecord, RecordDecodeError> {
    let envelope: RecordEnvelope =
        serde_json::from_slice(payload).map_err(|e| RecordDecodeError::Envelope(e.to_string()))?;
    let kind = RecordKind::ALL
        .into_iter()
        .find(|kind| cloud_event_type(*kind) == envelope.event_type)
        .ok_or_else(|| RecordDecodeError::UnknownType(envelope.event_type.clone()))?;
    if kind != envelope.data.kind {
        return Err(RecordDecodeError::Mismatch { event_type: envelope.event_type, kind: envelope.data.kind });
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: RecordKind) -> GatewayRecord {
        GatewayRecord {
            record_id: Uuid::new_v4(),
            kind,
            project: ProjectId::random(),
            target: Target::ComposioServer {
                server_id: ServerId::random(),
                user_id: Some("alice".into()),
                connected_account_id: None,
            },
            server_name: "github-mcp".into(),
            tool_name: Some("whoami".into()),
            outcome: Outcome::ToolError,
            duration_ms: 12.5,
            request_id: "req-1".into(),
            time: "2026-12-03T10:00:00.000001Z".into(),
        }
    }

    #[test]
    fn a_record_round_trips_through_its_envelope() {
        let record = record(RecordKind::ToolCalled);
        let payload = serde_json::to_vec(&RecordEnvelope::of(record.clone(), "812/3".into())).unwrap();
        let received = decode(&payload).unwrap();
        assert_eq!(received.data, record);
        assert_eq!(received.id, format!("gateway:{}", record.record_id));
        assert_eq!(received.event_type, "provisioner.gateway.tool.called.v1");
        assert_eq!(received.subject, record.target.id());
        let text = String::from_utf8(payload).unwrap();
        assert!(text.contains(r#""outcome":"tool_error""#) && text.contains(r#""kind":"composio_server""#), "{text}");
        assert!(!text.contains("connected_account_id"), "an unknown account is left out: {text}");
    }

    #[test]
    fn subjects_and_ids_name_project_and_kind() {
        let project = ProjectId::random();
        assert_eq!(
            subject(project, RecordKind::SessionOpened),
            format!("provisioner.gateway.{project}.session.opened")
        );
        assert_eq!(project_subjects(project), format!("provisioner.gateway.{project}.>"));
        let id = Uuid::new_v4();
        assert!(is_message_id(&message_id(id)));
        assert!(!is_message_id("instance:abc:1") && !is_message_id("gatewayx:1"));
        for kind in RecordKind::ALL {
            assert_eq!(RecordKind::parse(kind.as_str()), Some(kind));
        }
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
        }
    }

    #[test]
    fn an_event_a_newer_version_or_a_mislabelled_record_is_refused() {
        let mut envelope = RecordEnvelope::of(record(RecordKind::SessionClosed), "1/1".into());
        envelope.event_type = "provisioner.gateway.session.closed.v2".into();
        assert!(matches!(decode(&serde_json::to_vec(&envelope).unwrap()), Err(RecordDecodeError::UnknownType(_))));
        envelope.event_type = cloud_event_type(RecordKind::ToolCalled);
        assert!(matches!(decode(&serde_json::to_vec(&envelope).unwrap()), Err(RecordDecodeError::Mismatch { .. })));
        assert!(matches!(decode(br#"{"specversion":"1.0"}"#), Err(RecordDecodeError::Envelope(_))));
    }
}
