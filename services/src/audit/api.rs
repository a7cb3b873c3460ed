//! `GET /api/v1/audit/{aggregateType}/{id}`: an aggregate's history (and, with `as_of`, its
//! state at that time), and `GET /api/v1/audit/calls`: the MCP gateway's records of an
//! instance or a server; both scoped to the caller's project: another project's id is not found.

use super::{Audit, AuditError, Entry, Filter, History, MAX_RECORDS, Subject, parse_time};
use crate::caller_extractor;
use crate::error::AppError;
use crate::gateway_record::{StoredRecord, Whose};
use crate::http::caller::KeySource;
use crate::http::input;
use crate::http::problem::{Issue, Kind, Location, Problem};
use crate::http::service_error::ServiceApiError;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::limits;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};
use serde_json::Value;

caller_extractor!(
    /// The caller of an audit request: the project's API key as a bearer token or in `x-api-key`.
    AuditCaller,
    [("AuditBearer", KeySource::Bearer), ("AuditApiKey", KeySource::Header("x-api-key"))]
);

#[derive(Tags)]
enum AuditTags {
    /// History of changes, as recorded in the event store.
    Audit,
}

/// One recorded event with who caused it.
#[derive(Object, Debug)]
pub struct AuditEvent {
    /// Feed position (`transaction id/global position`), as in the NATS envelope.
    position: String,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    /// When it was stored (RFC 3339, UTC).
    recorded_at: String,
    /// `api_key:<key id>`, `cli`, `oauth-callback`, `system:expiry`, ...
    actor: Option<String>,
    /// The request's `x-request-id` (or the id the service gave it).
    request_id: Option<String>,
    client_addr: Option<String>,
    user_agent: Option<String>,
    /// The payload; secrets appear as their key id only.
    data: Value,
}

/// An aggregate's history, oldest first.
#[derive(Object, Debug)]
pub struct AuditResponse {
    aggregate_type: String,
    /// The stream's id (for an instance id: the id of its slot).
    aggregate_id: String,
    events: Vec<AuditEvent>,
    /// The time `state` is taken at, when `as_of` was given.
    #[oai(skip_serializing_if_is_none)]
    as_of: Option<String>,
    /// The aggregate's state at `as_of`, folded from its events (secrets redacted).
    #[oai(skip_serializing_if_is_none)]
    state: Option<Value>,
}

/// One record of the MCP gateway: a session opened or closed, or a tool call.
#[derive(Object, Debug)]
pub struct AuditCall {
    /// Place in the records' commit order (`transaction id/position`), as on NATS.
    position: String,
    record_id: String,
    /// `session.opened`, `session.closed` or `tool.called`.
    kind: String,
    /// The Klavis instance (its URL's `instance_id`).
    instance_id: Option<String>,
    /// The Composio MCP server.
    server_id: Option<String>,
    /// The instance's user, or the user a Composio URL names.
    user_id: Option<String>,
    /// The connected account a Composio URL names.
    connected_account_id: Option<String>,
    server_name: String,
    /// The tool a `tools/call` named.
    tool_name: Option<String>,
    /// `ok`, `tool_error`, `upstream_error` or `refused`.
    outcome: String,
    duration_ms: f64,
    /// The request's `x-request-id` (or the id the service gave it).
    request_id: String,
    /// When the request arrived (RFC 3339, UTC).
    time: String,
}

/// Records, oldest first.
#[derive(Object, Debug)]
pub struct AuditCallsResponse {
    calls: Vec<AuditCall>,
}

impl From<StoredRecord> for AuditCall {
    fn from(stored: StoredRecord) -> Self {
        use events::gateway::Target;
        let r = stored.record;
        let (instance_id, server_id, user_id, connected_account_id) = match r.target {
            Target::Instance { instance_id, user_id } => (Some(instance_id.to_string()), None, Some(user_id), None),
            Target::ComposioServer { server_id, user_id, connected_account_id } => {
                (None, Some(server_id.to_string()), user_id, connected_account_id)
            }
            Target::RegisteredServer { server_id } => (None, Some(server_id.to_string()), None, None),
        };
        Self {
            position: stored.position.to_string(),
            record_id: r.record_id.to_string(),
            kind: r.kind.to_string(),
            instance_id,
            server_id,
            user_id,
            connected_account_id,
            server_name: r.server_name,
            tool_name: r.tool_name,
            outcome: r.outcome.to_string(),
            duration_ms: r.duration_ms,
            request_id: r.request_id,
            time: r.time,
        }
    }
}

/// Whose records a query names: `instance_id`, or `server_id` (with `user_id` optionally).
fn whose_of(
    instance_id: Option<&str>,
    server_id: Option<&str>,
    user_id: Option<String>,
) -> Result<Whose, ServiceApiError> {
    let not_an_id = |name: &str| {
        Problem::invalid(Location::Query(name.into()), Issue::WrongType, format!("`{name}` must be a UUID"))
    };
    match (instance_id, server_id) {
        (Some(id), None) if user_id.is_none() => Ok(Whose::Instance(id.parse().map_err(|_| not_an_id("instance_id"))?)),
        (None, Some(id)) => Ok(Whose::Server { server_id: id.parse().map_err(|_| not_an_id("server_id"))?, user_id }),
        _ => Err(Problem::invalid(
            Location::Query("instance_id".into()),
            Issue::Missing,
            "give instance_id, or server_id (optionally with user_id)",
        )
        .into()),
    }
}

impl From<AppError<AuditError>> for ServiceApiError {
    fn from(e: AppError<AuditError>) -> Self {
        Problem::of_app_error(e, |refusal| match refusal {
            e @ AuditError::UnknownAggregateType(_) => {
                Problem::invalid(Location::Path("aggregateType".into()), Issue::UnknownVariant, e.to_string())
            }
            AuditError::NotFound => Problem::new(Kind::NotFound, "No history found for this aggregate"),
        })
        .into()
    }
}

fn time_param(name: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ServiceApiError> {
    raw.map(|raw| {
        parse_time(raw)
            .map_err(|reason| Problem::invalid(Location::Query(name.into()), Issue::WrongType, reason).into())
    })
    .transpose()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl From<Entry> for AuditEvent {
    fn from(e: Entry) -> Self {
        Self {
            position: e.position,
            aggregate_type: e.aggregate_type,
            aggregate_id: e.aggregate_id,
            sequence: e.sequence,
            event_type: e.event_type,
            event_version: e.event_version,
            recorded_at: rfc3339(e.recorded_at),
            actor: e.actor,
            request_id: e.request_id,
            client_addr: e.client_addr,
            user_agent: e.user_agent,
            data: e.data,
        }
    }
}

pub struct AuditApi {
    audit: Audit,
}

impl AuditApi {
    pub fn new(audit: Audit) -> Self {
        Self { audit }
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "AuditTags::Audit")]
impl AuditApi {
    /// The history of one aggregate of the caller's project: every event with its actor,
    /// request id, client address and user agent. `aggregateType` is one of `project`,
    /// `server`, `instance` (the id may be an instance id), `oauth_app`, `auth_config`,
    /// `connected_account`. With `as_of`, only what was recorded until then, and the state
    /// at that time.
    #[oai(path = "/audit/:aggregateType/:id", method = "get")]
    #[allow(clippy::too_many_arguments)] // one per query parameter, as poem-openapi declares them
    async fn audit(
        &self,
        caller: AuditCaller,
        #[oai(name = "aggregateType")] aggregate_type: Path<String>,
        id: Path<String>,
        /// Events recorded at or after this time (RFC 3339).
        since: Query<Option<String>>,
        /// Events recorded at or before this time (RFC 3339).
        until: Query<Option<String>>,
        /// Only these event types (`instance.created`); repeat or separate by commas.
        #[oai(name = "type")]
        event_types: Query<Vec<String>>,
        /// The state at this time (RFC 3339), and the history until then.
        as_of: Query<Option<String>>,
    ) -> Result<Json<AuditResponse>, ServiceApiError> {
        input::param(Location::Path("aggregateType".into()), &aggregate_type.0)?;
        input::param(Location::Path("id".into()), &id.0)?;
        let event_types: Vec<String> = event_types
            .0
            .iter()
            .flat_map(|t| t.split(','))
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        input::list(Location::Query("type".into()), &event_types, limits::LIST_ITEMS, limits::ID_CHARS)?;
        let as_of = time_param("as_of", as_of.0.as_deref())?;
        let until = time_param("until", until.0.as_deref())?;
        let filter = Filter {
            since: time_param("since", since.0.as_deref())?,
            until: match (until, as_of) {
                (Some(u), Some(a)) => Some(u.min(a)),
                (u, a) => u.or(a),
            },
            event_types,
        };
        let subject = Subject::Aggregate { aggregate_type: aggregate_type.0, id: id.0 };
        let project = Some(caller.0.project_id);
        let History { streams, entries, .. } = self.audit.history(&subject, &filter, project).await?;
        let stream = streams.into_iter().next().ok_or(AppError::Rejected(AuditError::NotFound))?;
        let state = match as_of {
            Some(at) => Some(self.audit.state_at(&stream, at, project).await?),
            None => None,
        };
        Ok(Json(AuditResponse {
            aggregate_type: stream.aggregate_type,
            aggregate_id: stream.aggregate_id,
            events: entries.into_iter().map(AuditEvent::from).collect(),
            as_of: as_of.map(rfc3339),
            state,
        }))
    }

    /// The MCP gateway's records of one instance (`instance_id`) or Composio server
    /// (`server_id`, optionally for one `user_id`) of the caller's project: every session
    /// opened or closed and every tool call with its outcome, duration and request id (never
    /// arguments or results), oldest first.
    #[oai(path = "/audit/calls", method = "get")]
    #[allow(clippy::too_many_arguments)] // one per query parameter, as poem-openapi declares them
    async fn calls(
        &self,
        caller: AuditCaller,
        instance_id: Query<Option<String>>,
        server_id: Query<Option<String>>,
        user_id: Query<Option<String>>,
        /// Records of requests that arrived at or after this time (RFC 3339).
        since: Query<Option<String>>,
        /// Records of requests that arrived at or before this time (RFC 3339).
        until: Query<Option<String>>,
        /// At most this many records (default and maximum 10,000).
        limit: Query<Option<i64>>,
    ) -> Result<Json<AuditCallsResponse>, ServiceApiError> {
        for (name, value) in [("instance_id", &instance_id.0), ("server_id", &server_id.0), ("user_id", &user_id.0)] {
            if let Some(value) = value {
                input::param(Location::Query(name.into()), value)?;
            }
        }
        let whose = whose_of(instance_id.0.as_deref(), server_id.0.as_deref(), user_id.0)?;
        let filter = Filter {
            since: time_param("since", since.0.as_deref())?,
            until: time_param("until", until.0.as_deref())?,
            event_types: Vec::new(),
        };
        let limit = limit.0.unwrap_or(MAX_RECORDS);
        let calls = self.audit.calls(&whose, Some(caller.0.project_id), &filter, limit).await?;
        Ok(Json(AuditCallsResponse { calls: calls.into_iter().map(AuditCall::from).collect() }))
    }
}
