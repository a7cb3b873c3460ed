//! Projects and their API keys: creating them (the CLI, for now) and resolving the key of
//! every request to the caller's project; the hosts OAuth flows may redirect to.

mod api_key;
mod key_cache;
mod redirects;
mod view;

pub use api_key::{ApiKey, KEY_PREFIX};
pub use key_cache::{KeyCache, REVOCATION_CHANNEL};
pub use redirects::{RedirectPolicy, RedirectRefusal};
pub use view::ProjectViews;

use crate::error::AppError;
use crate::store::{CommandBus, CommandMetadata};
use domain::project::{
    KeyDigest, ProjectCommand, ProjectError, ProjectName, RateLimit, RedirectHosts, RedirectHostsChange,
};
use events::{ApiKeyId, ProjectId};
use secrecy::SecretString;
use sqlx::PgPool;

/// Who is calling: the project a valid API key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub project_id: ProjectId,
    pub key_id: ApiKeyId,
    /// The project's own rate per key, where it has one (see [`crate::rate_limit`]).
    pub rate_limit: Option<RateLimit>,
}

impl Caller {
    /// The actor recorded in the metadata of events this caller causes.
    pub fn actor(&self) -> String {
        format!("api_key:{}", self.key_id)
    }
}

/// A key just issued. The key is shown once and not kept.
pub struct IssuedKey {
    pub key_id: ApiKeyId,
    pub key: SecretString,
}

#[derive(Clone)]
pub struct Projects {
    bus: CommandBus,
    pool: PgPool,
    keys: Option<KeyCache>,
}

impl Projects {
    pub fn new(bus: CommandBus, pool: PgPool) -> Self {
        Self { bus, pool, keys: None }
    }

    /// Resolves keys through `cache` (which the caller keeps following revocations).
    pub fn with_key_cache(mut self, cache: KeyCache) -> Self {
        self.keys = Some(cache);
        self
    }

    pub async fn create(&self, name: ProjectName, meta: &CommandMetadata) -> Result<ProjectId, AppError<ProjectError>> {
        let project_id = ProjectId::random();
        self.bus.project(project_id, ProjectCommand::Create { project_id, name }, meta).await?;
        Ok(project_id)
    }

    pub async fn issue_key(
        &self,
        project_id: ProjectId,
        name: Option<String>,
        meta: &CommandMetadata,
    ) -> Result<IssuedKey, AppError<ProjectError>> {
        let key = ApiKey::generate();
        let key_id = ApiKeyId::random();
        let digest = KeyDigest::parse(&ApiKey::digest(&key)).expect("a SHA-256 hex digest is 64 lower-case hex digits");
        self.bus.project(project_id, ProjectCommand::IssueApiKey { key_id, name, digest }, meta).await?;
        Ok(IssuedKey { key_id, key })
    }

    pub async fn revoke_key(
        &self,
        project_id: ProjectId,
        key_id: ApiKeyId,
        meta: &CommandMetadata,
    ) -> Result<(), AppError<ProjectError>> {
        self.bus.project(project_id, ProjectCommand::RevokeApiKey { key_id }, meta).await.map(drop)
    }

    /// The project's redirect allow-list.
    pub async fn redirect_hosts(&self, project_id: ProjectId) -> Result<RedirectHosts, AppError<ProjectError>> {
        view::redirect_hosts(&self.pool, project_id).await?.ok_or(AppError::Rejected(ProjectError::NotFound))
    }

    /// Replaces or edits the allow-list; returns the list now in force (read after the write,
    /// which the views already hold).
    pub async fn change_redirect_hosts(
        &self,
        project_id: ProjectId,
        change: RedirectHostsChange,
        meta: &CommandMetadata,
    ) -> Result<RedirectHosts, AppError<ProjectError>> {
        self.bus.project(project_id, ProjectCommand::ChangeRedirectHosts(change), meta).await?;
        self.redirect_hosts(project_id).await
    }

    /// Sets the project's own rate per key (`None`: the default again); the rate in force.
    pub async fn set_rate_limit(
        &self,
        project_id: ProjectId,
        limit: Option<RateLimit>,
        meta: &CommandMetadata,
    ) -> Result<Option<RateLimit>, AppError<ProjectError>> {
        self.bus.project(project_id, ProjectCommand::SetRateLimit(limit), meta).await?;
        self.rate_limit(project_id).await
    }

    /// The project's own rate per key, if it has one.
    pub async fn rate_limit(&self, project_id: ProjectId) -> Result<Option<RateLimit>, AppError<ProjectError>> {
        view::rate_limit_of(&self.pool, project_id).await?.ok_or(AppError::Rejected(ProjectError::NotFound))
    }

    /// The caller a presented key belongs to, if it is a live key. Anything that is not one
    /// of our keys is simply unknown: it is never looked up by its plaintext.
    pub async fn resolve_key(&self, presented: &str) -> sqlx::Result<Option<Caller>> {
        if !ApiKey::looks_like_one(presented) {
            return Ok(None);
        }
        let digest = ApiKey::digest_str(presented);
        if let Some(caller) = self.keys.as_ref().and_then(|cache| cache.get(&digest)) {
            return Ok(Some(caller));
        }
        let caller = view::live_key(&self.pool, &digest).await?;
        if let (Some(cache), Some(caller)) = (&self.keys, caller) {
            cache.put(digest, caller);
        }
        Ok(caller)
    }
}
