//! OAuth apps ("white-labeling"): a project's own OAuth client for a provider, used instead of
//! a default one when its users connect their accounts.

use crate::{Event, ProjectId, SealedSecret};
use serde::{Deserialize, Serialize};

/// Aggregate type `oauth_app`, one per (project, client id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OAuthAppEvent {
    /// The app was saved, new or replacing its earlier settings.
    OAuthAppSaved(OAuthAppSaved),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthAppSaved {
    pub project_id: ProjectId,
    pub client_id: String,
    /// The provider, by its slug (`gmail`, `slack`, `xero`).
    pub provider: String,
    /// The provider's name as the caller gave it (`Gmail`, `MsCalendar`).
    pub server_name: String,
    pub client_secret: SealedSecret,
    /// Where the provider sends the browser back; defaults to this service's own callback.
    pub callback_url: Option<String>,
    pub account_id: Option<String>,
    /// Overrides of the provider's endpoints (self-hosted providers, tests).
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    /// Overrides of the default scopes.
    pub scopes: Option<Vec<String>>,
}

impl Event for OAuthAppEvent {
    const AGGREGATE_TYPE: &'static str = "oauth_app";

    fn project_id(&self) -> ProjectId {
        match self {
            Self::OAuthAppSaved(e) => e.project_id,
        }
    }

    fn event_type(&self) -> &'static str {
        match self {
            Self::OAuthAppSaved(_) => "oauth_app.saved",
        }
    }
}
