//! Projects (the tenants) and their API keys.

use crate::{ApiKeyId, Event, ProjectId};
use serde::{Deserialize, Serialize};

/// Everything that happens to a project. Aggregate type `project`, id = the project id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProjectEvent {
    /// A project was created. Every other aggregate belongs to exactly one project.
    ProjectCreated(ProjectCreated),
    /// An API key was issued for the project. Only the key's SHA-256 is recorded: the key
    /// itself was shown once to whoever created it.
    ApiKeyIssued(ApiKeyIssued),
    /// An API key was revoked; requests made with it are refused from now on.
    ApiKeyRevoked(ApiKeyRevoked),
    /// The hosts the browser may be sent back to at the end of an OAuth flow were set. Carries
    /// the whole list (canonical entries: lower-case ASCII host, optional `:port`, optional
    /// leading `*.`); an empty list allows no redirect away from this service.
    RedirectHostsSet(RedirectHostsSet),
    /// The project's own request rate per API key was set (replacing the deployment's
    /// default), or cleared (`limit: null`: the default applies again).
    RateLimitSet(RateLimitSet),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectCreated {
    pub project_id: ProjectId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyIssued {
    pub project_id: ProjectId,
    pub key_id: ApiKeyId,
    /// A label for people ("ci", "backend"); not unique.
    pub name: Option<String>,
    /// Lower-case hex SHA-256 of the key. Keys carry 256 random bits, so a fast hash is enough:
    /// there is nothing to brute-force.
    pub key_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRevoked {
    pub project_id: ProjectId,
    pub key_id: ApiKeyId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedirectHostsSet {
    pub project_id: ProjectId,
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimitSet {
    pub project_id: ProjectId,
    pub limit: Option<KeyRateLimit>,
}

/// Requests per second each API key of a project may make, sustained, and how many at once
/// beyond that (GCRA: the burst refills at the rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyRateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl Event for ProjectEvent {
    const AGGREGATE_TYPE: &'static str = "project";

    fn project_id(&self) -> ProjectId {
        match self {
            Self::ProjectCreated(e) => e.project_id,
            Self::ApiKeyIssued(e) => e.project_id,
            Self::ApiKeyRevoked(e) => e.project_id,
            Self::RedirectHostsSet(e) => e.project_id,
            Self::RateLimitSet(e) => e.project_id,
        }
    }

    fn event_type(&self) -> &'static str {
        match self {
            Self::ProjectCreated(_) => "project.created",
            Self::ApiKeyIssued(_) => "project.api_key_issued",
            Self::ApiKeyRevoked(_) => "project.api_key_revoked",
            Self::RedirectHostsSet(_) => "project.redirect_hosts_set",
            Self::RateLimitSet(_) => "project.rate_limit_set",
        }
    }
}
