//! `GET /api/v1/audit/{aggregateType}/{id}`: an aggregate's history (and, with `as_of`, its
//! state at that time), scoped to the caller's project: another project's id is not found.

use super::{Audit, AuditError, Entry, Filter, History, Subject, parse_time};
use crate::caller_extractor;
use crate::error::AppError;
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
}
