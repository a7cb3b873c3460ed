//! Where one deployment of MCP Provisioner publishes on NATS: its JetStream stream and the
//! first tokens of its subjects. Two deployments sharing one NATS server (or account) each
//! get their own, so that neither's stream captures the other's messages.
//!
//! The default is the one the constants of [`crate::envelope`] and [`crate::gateway`] name:
//! stream `PROVISIONER_EVENTS`, subjects under `provisioner`:
//!
//! | what | subject |
//! |---|---|
//! | an event | `<prefix>.events.<project>.<aggregate>.<event>` |
//! | a gateway record | `<prefix>.gateway.<project>.<kind>` |
//!
//! A subscriber of a deployment configured with `PROVISIONER_NATS_STREAM=ACME_EVENTS` and
//! `PROVISIONER_NATS_SUBJECT_PREFIX=acme.provisioner` builds the same names with
//! `Namespace::new("ACME_EVENTS", "acme.provisioner")`.

use crate::ProjectId;
use crate::gateway::RecordKind;
use std::fmt;

/// The stream every event is published to by default.
pub const DEFAULT_STREAM: &str = crate::envelope::STREAM;
/// The first tokens of every subject by default.
pub const DEFAULT_SUBJECT_PREFIX: &str = "provisioner";

/// A deployment's stream name and subject prefix, both checked (see [`Namespace::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    stream: String,
    prefix: String,
}

impl Default for Namespace {
    fn default() -> Self {
        Self { stream: DEFAULT_STREAM.into(), prefix: DEFAULT_SUBJECT_PREFIX.into() }
    }
}

/// A stream name or subject prefix NATS would refuse, or that would capture other subjects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceError {
    /// The stream name: letters, digits, `-` and `_` only (NATS also forbids `.`, `*`, `>`,
    /// spaces and path separators), at most 255 characters.
    Stream(String),
    /// The subject prefix: dot-separated tokens of letters, digits, `-` and `_`, without
    /// wildcards.
    Prefix(String),
}

impl fmt::Display for NamespaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stream(problem) | Self::Prefix(problem) => f.write_str(problem),
        }
    }
}

impl std::error::Error for NamespaceError {}

/// Letters, digits, `-`, `_`: safe in a stream name and in a subject token everywhere.
fn plain(token: &str) -> bool {
    !token.is_empty() && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Namespace {
    /// A stream name and subject prefix, checked.
    pub fn new(stream: impl Into<String>, prefix: impl Into<String>) -> Result<Self, NamespaceError> {
        let (stream, prefix) = (stream.into(), prefix.into());
        if !plain(&stream) || stream.len() > 255 {
            return Err(NamespaceError::Stream(
                "must be 1 to 255 letters, digits, '-' or '_' (e.g. PROVISIONER_EVENTS)".into(),
            ));
        }
        if !prefix.split('.').all(plain) {
            return Err(NamespaceError::Prefix(
                "must be dot-separated tokens of letters, digits, '-' or '_', without wildcards (e.g. acme.provisioner)"
                    .into(),
            ));
        }
        Ok(Self { stream, prefix })
    }

    /// The JetStream stream.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The first tokens of every subject (`provisioner` by default).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The first tokens of every event's subject: `<prefix>.events`.
    pub fn events_prefix(&self) -> String {
        format!("{}.events", self.prefix)
    }

    /// The subject of one event: `<prefix>.events.<project>.<aggregate>.<event>`, where
    /// `event_type` is the event's stable name, `<aggregate>.<event>`.
    pub fn event_subject(&self, project: ProjectId, event_type: &str) -> String {
        format!("{}.{project}.{event_type}", self.events_prefix())
    }

    /// Every event subject of one project, for a consumer's filter.
    pub fn project_events(&self, project: ProjectId) -> String {
        format!("{}.{project}.>", self.events_prefix())
    }

    /// Every event subject, for a stream's or a consumer's filter.
    pub fn all_events(&self) -> String {
        format!("{}.>", self.events_prefix())
    }

    /// The first tokens of every gateway record's subject: `<prefix>.gateway`.
    pub fn records_prefix(&self) -> String {
        format!("{}.gateway", self.prefix)
    }

    /// The subject of a record of `kind` in `project`: `<prefix>.gateway.<project>.<kind>`.
    pub fn record_subject(&self, project: ProjectId, kind: RecordKind) -> String {
        format!("{}.{project}.{}", self.records_prefix(), kind.as_str())
    }

    /// Every record subject of one project, for a consumer's filter.
    pub fn project_records(&self, project: ProjectId) -> String {
        format!("{}.{project}.>", self.records_prefix())
    }

    /// Every record subject, for a stream's or a consumer's filter.
    pub fn all_records(&self) -> String {
        format!("{}.>", self.records_prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_namespace_names_what_the_constants_name() {
        let project = ProjectId::random();
        let default = Namespace::default();
        assert_eq!(default.stream(), crate::envelope::STREAM);
        assert_eq!(default.events_prefix(), crate::envelope::SUBJECT_PREFIX);
        assert_eq!(default.records_prefix(), crate::gateway::SUBJECT_PREFIX);
        assert_eq!(
            default.event_subject(project, "instance.created"),
            crate::envelope::subject(project, "instance.created")
        );
        assert_eq!(
            default.record_subject(project, RecordKind::ToolCalled),
            crate::gateway::subject(project, RecordKind::ToolCalled)
        );
        assert_eq!(default.all_records(), crate::gateway::all_subjects());
    }

    #[test]
    fn another_namespace_prefixes_every_subject() {
        let project = ProjectId::random();
        let acme = Namespace::new("ACME_EVENTS", "acme.provisioner").unwrap();
        assert_eq!(
            acme.event_subject(project, "server.registered"),
            format!("acme.provisioner.events.{project}.server.registered")
        );
        assert_eq!(acme.all_events(), "acme.provisioner.events.>");
        assert_eq!(acme.project_records(project), format!("acme.provisioner.gateway.{project}.>"));
    }

    #[test]
    fn names_nats_would_refuse_or_that_hold_wildcards_are_refused() {
        for stream in ["", "A.B", "A B", "A*", "A>", "a/b"] {
            assert!(matches!(Namespace::new(stream, "p"), Err(NamespaceError::Stream(_))), "{stream:?}");
        }
        for prefix in ["", ".", "a.", ".a", "a..b", "a.*", "a.>", "a b", "a.>.b"] {
            assert!(matches!(Namespace::new("S", prefix), Err(NamespaceError::Prefix(_))), "{prefix:?}");
        }
    }
}
