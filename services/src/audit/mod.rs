//! Audit: who changed what, when and through which request, and any aggregate's state as it
//! was at a given time, read from the event store itself (never from a view).
//!
//! - [`Audit::history`]: the events of a [`Subject`] in commit order, each with the metadata
//!   its command recorded (actor, request id, client address, user agent), payloads with
//!   their sealed secrets redacted.
//! - [`Audit::state_at`]: an aggregate folded from its events up to a time.
//! - [`Audit::calls`]: the MCP gateway's records of an instance or a server (sessions and tool
//!   calls, see [`crate::gateway_record`]).
//! - [`api`]: `GET /api/v1/audit/{aggregateType}/{id}` and `GET /api/v1/audit/calls`, scoped to
//!   the caller's project.
//! - [`cli`]: `provisioner audit`, as a table or JSON lines.

pub mod api;
mod calls;

pub mod cli;
mod state;

pub use api::AuditApi;
pub use calls::{MAX_RECORDS, whose};

use crate::feed::{FeedEvent, read_stream};
use chrono::{DateTime, Utc};
use events::{AnyEvent, InstanceId, ProjectId, secret};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

/// Every aggregate type of the store, as `events.aggregate_type` names them.
pub const AGGREGATE_TYPES: &[&str] =
    &["project", "server", "instance", "oauth_app", "auth_config", "connected_account"];

/// Whose history to show.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// One aggregate by type and id. For `instance`, the id may also be an instance id: the
    /// history is then that of the (project, server, user) slot holding it.
    Aggregate { aggregate_type: String, id: String },
    /// The slot that holds (or held) this instance.
    Instance(InstanceId),
    /// Everything about one end user of a project: their instance slots and connected accounts.
    User { project_id: ProjectId, user_id: String },
}

/// Which events of the history to keep.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Event types (`instance.created`); empty keeps all.
    pub event_types: Vec<String>,
}

impl Filter {
    fn keeps(&self, event: &FeedEvent) -> bool {
        self.since.is_none_or(|since| event.recorded_at >= since)
            && self.until.is_none_or(|until| event.recorded_at <= until)
            && (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
    }
}

/// One event as an auditor reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// Feed position (`transaction id/global position`), as on NATS.
    pub position: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub recorded_at: DateTime<Utc>,
    /// `api_key:<key id>`, `cli`, `oauth-callback`, `system:expiry`, ...
    pub actor: Option<String>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    /// The payload, sealed secrets reduced to their key id.
    pub data: Value,
}

impl Entry {
    fn of(event: &FeedEvent) -> anyhow::Result<Self> {
        let meta = |key: &str| event.metadata.get(key).and_then(Value::as_str).map(str::to_owned);
        let mut data = event.payload()?;
        secret::redact(&mut data);
        Ok(Self {
            position: event.position.to_string(),
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            recorded_at: event.recorded_at,
            actor: meta("actor"),
            request_id: meta("request_id"),
            client_addr: meta("client_addr"),
            user_agent: meta("user_agent"),
            data,
        })
    }
}

/// One aggregate's stream, as found for a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamKey {
    pub aggregate_type: String,
    pub aggregate_id: String,
}

/// Why an audit cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(
        "unknown aggregate type `{0}`; one of: project, server, instance, oauth_app, auth_config, connected_account"
    )]
    UnknownAggregateType(String),
    /// No such aggregate (or not the caller's).
    #[error("no history found")]
    NotFound,
}

pub type AuditResult<T> = Result<T, crate::error::AppError<AuditError>>;

fn rejected<T>(e: AuditError) -> AuditResult<T> {
    Err(crate::error::AppError::Rejected(e))
}

/// A subject's history, with the project every stream belongs to.
#[derive(Debug, Clone)]
pub struct History {
    pub streams: Vec<StreamKey>,
    pub project_id: ProjectId,
    pub entries: Vec<Entry>,
}

#[derive(Clone)]
pub struct Audit {
    pool: PgPool,
}

impl Audit {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The streams a subject stands for; empty when there are none.
    pub async fn streams(&self, subject: &Subject) -> AuditResult<Vec<StreamKey>> {
        match subject {
            Subject::Aggregate { aggregate_type, .. } if !AGGREGATE_TYPES.contains(&aggregate_type.as_str()) => {
                rejected(AuditError::UnknownAggregateType(aggregate_type.clone()))
            }
            Subject::Aggregate { aggregate_type, id } if aggregate_type == "instance" => {
                if self.exists(aggregate_type, id).await? {
                    return Ok(vec![key(aggregate_type, id)]);
                }
                match id.parse::<InstanceId>() {
                    Ok(instance_id) => Ok(self.slot_of(instance_id).await?.into_iter().collect()),
                    Err(_) => Ok(Vec::new()),
                }
            }
            Subject::Aggregate { aggregate_type, id } => {
                Ok(if self.exists(aggregate_type, id).await? { vec![key(aggregate_type, id)] } else { Vec::new() })
            }
            Subject::Instance(instance_id) => Ok(self.slot_of(*instance_id).await?.into_iter().collect()),
            Subject::User { project_id, user_id } => Ok(self.streams_of_user(*project_id, user_id).await?),
        }
    }

    /// The history of `subject`, filtered, in commit order. `project`, when given, must own
    /// every stream: another project's subject is not found, never shown.
    pub async fn history(
        &self,
        subject: &Subject,
        filter: &Filter,
        project: Option<ProjectId>,
    ) -> AuditResult<History> {
        let streams = self.streams(subject).await?;
        let mut events = Vec::new();
        let mut owner = None;
        for stream in &streams {
            let stream_events = read_stream(&self.pool, &stream.aggregate_type, &stream.aggregate_id, None).await?;
            let stream_owner = project_of(&stream_events)?;
            if project.is_some_and(|p| p != stream_owner) {
                return rejected(AuditError::NotFound);
            }
            owner = Some(stream_owner);
            events.extend(stream_events.into_iter().filter(|e| filter.keeps(e)));
        }
        let Some(project_id) = owner else { return rejected(AuditError::NotFound) };
        events.sort_by_key(|e| e.position);
        let entries = events.iter().map(Entry::of).collect::<anyhow::Result<_>>()?;
        Ok(History { streams, project_id, entries })
    }

    /// The aggregate's state as it was at `at`, folded from the events recorded until then
    /// (secrets redacted); `NotFound` if it did not exist yet, or is another project's.
    pub async fn state_at(
        &self,
        stream: &StreamKey,
        at: DateTime<Utc>,
        project: Option<ProjectId>,
    ) -> AuditResult<Value> {
        let events = read_stream(&self.pool, &stream.aggregate_type, &stream.aggregate_id, Some(at)).await?;
        if events.is_empty() || project.is_some_and(|p| project_of(&events).is_ok_and(|owner| owner != p)) {
            return rejected(AuditError::NotFound);
        }
        let mut state = state::fold(&stream.aggregate_type, &events)?;
        secret::redact(&mut state);
        Ok(state)
    }

    async fn exists(&self, aggregate_type: &str, id: &str) -> sqlx::Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = $1 AND aggregate_id = $2)")
            .bind(aggregate_type)
            .bind(id)
            .fetch_one(&self.pool)
            .await
    }

    pub async fn slot_of(&self, instance_id: InstanceId) -> sqlx::Result<Option<StreamKey>> {
        Ok(crate::instance::slot_holding(&self.pool, instance_id).await?.map(|id| key("instance", &id)))
    }

    /// The instance slots and connected accounts of a project's user, found by the identity
    /// their first event carries (slot ids are derived, so they cannot be listed otherwise).
    async fn streams_of_user(&self, project_id: ProjectId, user_id: &str) -> sqlx::Result<Vec<StreamKey>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT e.aggregate_type, e.aggregate_id FROM events e \
             CROSS JOIN LATERAL (SELECT value AS body FROM json_each(e.payload) LIMIT 1) b \
             WHERE e.sequence = 1 AND ( \
               (e.aggregate_type = 'instance' AND b.body -> 'slot' ->> 'project_id' = $1 \
                  AND b.body -> 'slot' ->> 'user_id' = $2) \
               OR (e.aggregate_type = 'connected_account' AND b.body -> 'account' ->> 'project_id' = $1 \
                  AND b.body -> 'account' ->> 'user_id' = $2)) \
             ORDER BY e.transaction_id, e.global_position",
        )
        .bind(project_id.to_string())
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(t, id)| key(&t, &id)).collect())
    }
}

fn key(aggregate_type: &str, id: &str) -> StreamKey {
    StreamKey { aggregate_type: aggregate_type.to_owned(), aggregate_id: id.to_owned() }
}

/// The project of a stream: every event names it, the first is enough.
fn project_of(events: &[FeedEvent]) -> anyhow::Result<ProjectId> {
    let first = events.first().ok_or_else(|| anyhow::anyhow!("an empty stream has no project"))?;
    let typed = AnyEvent::from_json(&first.aggregate_type, first.payload()?)
        .map_err(|e| anyhow::anyhow!("{} {} at {}: {e}", first.aggregate_type, first.event_type, first.position))?;
    Ok(typed.project_id())
}

/// An RFC 3339 time (`2026-11-23T10:00:00Z`, `2026-11-23T11:00:00.5+01:00`), as every
/// `since`, `until` and `as_of` takes it.
pub fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    // A time is short: a long value is refused without being echoed back.
    if raw.len() > 64 {
        return Err("is not an RFC 3339 time such as 2026-11-23T10:00:00Z (too long)".into());
    }
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{raw}` is not an RFC 3339 time such as 2026-11-23T10:00:00Z ({e})"))
}
