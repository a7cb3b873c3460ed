use super::RedirectHosts;
use events::{ApiKeyId, ProjectId};

/// What can be asked of a project. `ChangeRedirectHosts` changes the hosts its OAuth flows may
/// redirect the browser to.
#[derive(Debug, Clone)]
pub enum ProjectCommand {
    Create {
        project_id: ProjectId,
        name: ProjectName,
    },
    IssueApiKey {
        key_id: ApiKeyId,
        name: Option<String>,
        digest: KeyDigest,
    },
    RevokeApiKey {
        key_id: ApiKeyId,
    },
    ChangeRedirectHosts(RedirectHostsChange),
    /// The project's own rate per API key; `None` returns it to the deployment's default.
    SetRateLimit(Option<RateLimit>),
}

/// A valid per-key rate: 1 to [`RateLimit::MAX`] requests per second, and a burst of at
/// least one request and at most [`RateLimit::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit(events::project::KeyRateLimit);

impl RateLimit {
    pub const MAX: u32 = 1_000_000;

    pub fn new(per_second: u32, burst: u32) -> Result<Self, String> {
        let valid = |n: u32| (1..=Self::MAX).contains(&n);
        if !valid(per_second) {
            return Err(format!("the rate must be 1 to {} requests per second", Self::MAX));
        }
        if !valid(burst) {
            return Err(format!("the burst must be 1 to {} requests", Self::MAX));
        }
        Ok(Self(events::project::KeyRateLimit { per_second, burst }))
    }

    pub fn per_second(&self) -> u32 {
        self.0.per_second
    }

    pub fn burst(&self) -> u32 {
        self.0.burst
    }

    pub fn recorded(&self) -> events::project::KeyRateLimit {
        self.0
    }
}

/// A new allow-list, or an edit of the current one (applied to the aggregate's state, so
/// that concurrent edits do not lose each other's hosts).
#[derive(Debug, Clone)]
pub enum RedirectHostsChange {
    Replace(RedirectHosts),
    Edit { add: RedirectHosts, remove: RedirectHosts },
}

/// A project's display name: trimmed, 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("must not be empty".into());
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The lower-case hex SHA-256 of an API key: 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDigest(String);

impl KeyDigest {
    pub fn parse(hex: &str) -> Result<Self, String> {
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if valid { Ok(Self(hex.to_owned())) } else { Err("must be 64 lower-case hex digits".into()) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
