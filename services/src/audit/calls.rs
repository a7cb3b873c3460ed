//! The gateway's records in an audit: the sessions and tool calls of an instance (or of a
//! Composio server, per user), beside the instance's events. Read from `gateway_calls`, never
//! holding arguments or results.

use super::{Audit, AuditError, AuditResult, Filter, StreamKey, Subject, project_of, rejected};
use crate::feed::read_stream;
use crate::gateway_record::{StoredRecord, Whose, store};
use events::{InstanceId, ProjectId, ServerId};

/// Records read per audit, at most.
pub const MAX_RECORDS: i64 = 10_000;

impl Audit {
    /// The records of `whose` in `project` (checked to own it when given: another project's
    /// target is not found), oldest first, within `filter`'s times, at most `limit`.
    pub async fn calls(
        &self,
        whose: &Whose,
        project: Option<ProjectId>,
        filter: &Filter,
        limit: i64,
    ) -> AuditResult<Vec<StoredRecord>> {
        let Some(owner) = self.owner(whose).await? else { return rejected(AuditError::NotFound) };
        if project.is_some_and(|p| p != owner) {
            return rejected(AuditError::NotFound);
        }
        Ok(store::of(&self.pool, owner, whose, filter.since, filter.until, limit.clamp(1, MAX_RECORDS)).await?)
    }

    /// The project of the instance or server, from its events; none if it never existed.
    async fn owner(&self, whose: &Whose) -> AuditResult<Option<ProjectId>> {
        let stream = match whose {
            Whose::Instance(instance_id) => self.slot_of(*instance_id).await?,
            Whose::Server { server_id, .. } => {
                Some(StreamKey { aggregate_type: "server".into(), aggregate_id: server_id.to_string() })
            }
        };
        let Some(stream) = stream else { return Ok(None) };
        let events = read_stream(&self.pool, &stream.aggregate_type, &stream.aggregate_id, None).await?;
        if events.is_empty() {
            return Ok(None);
        }
        Ok(Some(project_of(&events)?))
    }
}

/// The gateway target a history's subject names, if it names one: an instance (by its id) or
/// a server.
pub fn whose(subject: &Subject) -> Option<Whose> {
    match subject {
        Subject::Instance(instance_id) => Some(Whose::Instance(*instance_id)),
        Subject::Aggregate { aggregate_type, id } if aggregate_type == "instance" => {
            id.parse::<InstanceId>().ok().map(Whose::Instance)
        }
        Subject::Aggregate { aggregate_type, id } if aggregate_type == "server" => {
            id.parse::<ServerId>().ok().map(|server_id| Whose::Server { server_id, user_id: None })
        }
        _ => None,
    }
}
