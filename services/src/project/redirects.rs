//! Where the OAuth flow may send the browser back to: an http(s) URL on the project's
//! allow-list, or on this service's own public host. Checked when a target is given (a
//! connection link's `callback_url`, the authorize `redirect_url`) and again when the flow
//! ends, since the list may have changed in between.

use super::view;
use crate::error::AppError;
use domain::project::{RedirectHosts, parse_redirect_target};
use events::ProjectId;
use sqlx::PgPool;
use url::Url;

/// Why a redirect target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectRefusal {
    #[error("must be an absolute http(s) URL")]
    NotHttp,
    #[error("its host {0} is not on the project's redirect allow-list (PUT /api/v1/project/redirect-hosts)")]
    HostNotAllowed(String),
}

#[derive(Clone)]
pub struct RedirectPolicy {
    pool: PgPool,
    /// This service's own origin: a redirect back here never leaves it.
    own: Option<Url>,
}

impl RedirectPolicy {
    pub fn new(pool: PgPool, public_url: &str) -> Self {
        Self { pool, own: Url::parse(public_url).ok() }
    }

    /// `raw` as a URL the project allows.
    pub async fn check(&self, project_id: ProjectId, raw: &str) -> Result<Url, AppError<RedirectRefusal>> {
        let url = parse_redirect_target(raw).map_err(|_| AppError::Rejected(RedirectRefusal::NotHttp))?;
        if self.is_own(&url) {
            return Ok(url);
        }
        let hosts = view::redirect_hosts(&self.pool, project_id).await?.unwrap_or_default();
        allowed(&hosts, url).map_err(AppError::Rejected)
    }

    fn is_own(&self, url: &Url) -> bool {
        self.own.as_ref().is_some_and(|own| {
            own.host_str() == url.host_str() && own.port_or_known_default() == url.port_or_known_default()
        })
    }
}

fn allowed(hosts: &RedirectHosts, url: Url) -> Result<Url, RedirectRefusal> {
    if hosts.allows(&url) {
        Ok(url)
    } else {
        let host = url.host_str().unwrap_or_default().to_owned();
        let host = url.port().map_or(host.clone(), |port| format!("{host}:{port}"));
        Err(RedirectRefusal::HostNotAllowed(host))
    }
}
