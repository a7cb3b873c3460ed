//! Auth configs (Composio): how a project's users authenticate to a toolkit. One aggregate
//! per auth config; deleting is soft (the history stays) and destroys its credentials' key.

use crate::Recorded;
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use events::auth_config::{
    AuthConfigCreated, AuthConfigDeleted, AuthConfigSettings, AuthConfigStatusChanged, AuthConfigUpdated,
};
use events::{AuthConfigEvent, ProjectId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The schemes accepted (Composio's list).
pub const AUTH_SCHEMES: &[&str] = &[
    "OAUTH2",
    "OAUTH1",
    "API_KEY",
    "BASIC",
    "BILLCOM_AUTH",
    "BEARER_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT",
    "NO_AUTH",
    "BASIC_WITH_JWT",
    "CALCOM_AUTH",
    "SERVICE_ACCOUNT",
    "SAML",
    "DCR_OAUTH",
    "S2S_OAUTH2",
];

/// Schemes a connected account can be created with directly, from credentials given at once.
pub const DIRECT_SCHEMES: &[&str] = &["API_KEY", "BEARER_TOKEN", "BASIC", "NO_AUTH"];

/// Credential fields that are not secret: shown in clear. Every other field is sealed and
/// shown as `REDACTED`.
pub const PUBLIC_CREDENTIAL_FIELDS: &[&str] = &[
    "client_id",
    "scopes",
    "user_scopes",
    "oauth_redirect_uri",
    "authorize_url",
    "authorization_url",
    "token_url",
    "subdomain",
    "region",
    "base_url",
];

/// Splits credentials into their public fields and their secret ones.
pub fn split_credentials(credentials: Map<String, Value>) -> (Map<String, Value>, Map<String, Value>) {
    credentials.into_iter().partition(|(k, _)| PUBLIC_CREDENTIAL_FIELDS.contains(&k.as_str()))
}

/// A scheme name, checked against [`AUTH_SCHEMES`].
pub fn parse_scheme(raw: &str) -> Result<String, String> {
    let scheme = raw.trim().to_ascii_uppercase();
    if AUTH_SCHEMES.contains(&scheme.as_str()) {
        Ok(scheme)
    } else {
        Err(format!("must be one of {}", AUTH_SCHEMES.join(", ")))
    }
}

/// An auth config input that breaks a rule: which field (in Composio's names, relative to
/// the auth config) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidAuthConfig {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> InvalidAuthConfig {
    InvalidAuthConfig { field, reason: reason.into() }
}

/// A toolkit slug: 1 to 64 lowercase letters, digits, `_` or `-` (taken in any case).
pub fn parse_toolkit(raw: &str) -> Result<String, InvalidAuthConfig> {
    let slug = raw.trim().to_ascii_lowercase();
    let well_formed = slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if slug.is_empty() || slug.len() > 64 || !well_formed {
        return Err(invalid("slug", "must be 1 to 64 letters, digits, `_` or `-`"));
    }
    Ok(slug)
}

/// A name: 1 to 128 characters on one line, no control characters.
pub fn parse_name(raw: &str) -> Result<String, InvalidAuthConfig> {
    let name = raw.trim();
    if name.is_empty() || crate::limits::check_line(name, crate::limits::NAME_CHARS).is_err() {
        return Err(invalid("name", "must be 1 to 128 characters on one line, without control characters"));
    }
    Ok(name.to_owned())
}

/// A custom OAuth auth config is useless without its client: it must name `client_id`.
pub fn check_custom_credentials(scheme: &str, public: &Map<String, Value>) -> Result<(), InvalidAuthConfig> {
    let has_client = public.get("client_id").and_then(Value::as_str).is_some_and(|c| !c.trim().is_empty());
    if matches!(scheme, "OAUTH2" | "DCR_OAUTH" | "S2S_OAUTH2") && !has_client {
        return Err(invalid("credentials.client_id", format!("is required for {scheme} custom auth")));
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub enum AuthConfigCommand {
    Create {
        project_id: ProjectId,
        auth_config_id: String,
        settings: AuthConfigSettings,
    },
    /// Replaces the settings (the caller merged the partial update into the current ones).
    Update {
        project_id: ProjectId,
        settings: AuthConfigSettings,
    },
    SetEnabled {
        project_id: ProjectId,
        enabled: bool,
    },
    Delete {
        project_id: ProjectId,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    #[error("auth config not found")]
    NotFound,
    #[error("this auth config id is already taken")]
    AlreadyExists,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Live {
    project_id: ProjectId,
    auth_config_id: String,
    settings: AuthConfigSettings,
    enabled: bool,
    deleted: bool,
}

/// An auth config, folded from its events.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AuthConfig {
    live: Option<Live>,
}

impl AuthConfig {
    fn live_in(&self, project_id: ProjectId) -> Result<&Live, AuthConfigError> {
        self.live.as_ref().filter(|l| !l.deleted && l.project_id == project_id).ok_or(AuthConfigError::NotFound)
    }

    /// The settings of a live auth config of `project_id`.
    pub fn settings_in(&self, project_id: ProjectId) -> Option<&AuthConfigSettings> {
        self.live_in(project_id).ok().map(|l| &l.settings)
    }

    /// Whether new connections may be made with it: it exists and is enabled.
    pub fn accepts_connections(&self, project_id: ProjectId) -> Result<bool, AuthConfigError> {
        self.live_in(project_id).map(|l| l.enabled)
    }
}

/// The names of the settings that differ.
fn changed(old: &AuthConfigSettings, new: &AuthConfigSettings) -> Vec<String> {
    [
        ("name", old.name != new.name),
        (
            "credentials",
            old.public_credentials != new.public_credentials || old.secret_credentials != new.secret_credentials,
        ),
        ("proxy_config", old.proxy_url != new.proxy_url || old.proxy_auth_key != new.proxy_auth_key),
        ("restrict_to_following_tools", old.restrict_to_following_tools != new.restrict_to_following_tools),
        (
            "tool_access_config",
            old.tools_for_connected_account_creation != new.tools_for_connected_account_creation
                || old.tools_available_for_execution != new.tools_available_for_execution,
        ),
    ]
    .into_iter()
    .filter(|(_, changed)| *changed)
    .map(|(field, _)| field.to_owned())
    .collect()
}

impl Aggregate for AuthConfig {
    const TYPE: &'static str = <AuthConfigEvent as events::Event>::AGGREGATE_TYPE;
    type Command = AuthConfigCommand;
    type Event = Recorded<AuthConfigEvent>;
    type Error = AuthConfigError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AuthConfigCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AuthConfigError> {
        let event = match command {
            AuthConfigCommand::Create { project_id, auth_config_id, settings } => {
                if self.live.is_some() {
                    return Err(AuthConfigError::AlreadyExists);
                }
                AuthConfigEvent::AuthConfigCreated(AuthConfigCreated { project_id, auth_config_id, settings })
            }
            AuthConfigCommand::Update { project_id, settings } => {
                let live = self.live_in(project_id)?;
                let changed = changed(&live.settings, &settings);
                if changed.is_empty() {
                    return Ok(());
                }
                let auth_config_id = live.auth_config_id.clone();
                AuthConfigEvent::AuthConfigUpdated(AuthConfigUpdated { project_id, auth_config_id, settings, changed })
            }
            AuthConfigCommand::SetEnabled { project_id, enabled } => {
                let live = self.live_in(project_id)?;
                if live.enabled == enabled {
                    return Ok(());
                }
                let auth_config_id = live.auth_config_id.clone();
                AuthConfigEvent::AuthConfigStatusChanged(AuthConfigStatusChanged {
                    project_id,
                    auth_config_id,
                    enabled,
                })
            }
            AuthConfigCommand::Delete { project_id } => {
                let auth_config_id = self.live_in(project_id)?.auth_config_id.clone();
                AuthConfigEvent::AuthConfigDeleted(AuthConfigDeleted { project_id, auth_config_id })
            }
        };
        sink.write(Recorded(event), self).await;
        Ok(())
    }

    fn apply(&mut self, Recorded(event): Self::Event) {
        match event {
            AuthConfigEvent::AuthConfigCreated(e) => {
                self.live = Some(Live {
                    project_id: e.project_id,
                    auth_config_id: e.auth_config_id,
                    settings: e.settings,
                    enabled: true,
                    deleted: false,
                });
            }
            AuthConfigEvent::AuthConfigUpdated(e) => {
                if let Some(live) = self.live.as_mut() {
                    live.settings = e.settings;
                }
            }
            AuthConfigEvent::AuthConfigStatusChanged(e) => {
                if let Some(live) = self.live.as_mut() {
                    live.enabled = e.enabled;
                }
            }
            AuthConfigEvent::AuthConfigDeleted(_) => {
                if let Some(live) = self.live.as_mut() {
                    live.deleted = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn settings(name: &str) -> AuthConfigSettings {
        AuthConfigSettings {
            name: name.into(),
            toolkit: "github".into(),
            managed: false,
            auth_scheme: "API_KEY".into(),
            public_credentials: Map::new(),
            secret_fields: vec![],
            secret_credentials: None,
            proxy_url: None,
            proxy_auth_key: None,
            restrict_to_following_tools: vec![],
            tools_for_connected_account_creation: vec![],
            tools_available_for_execution: vec![],
        }
    }

    fn created(project_id: ProjectId) -> Recorded<AuthConfigEvent> {
        Recorded(AuthConfigEvent::AuthConfigCreated(AuthConfigCreated {
            project_id,
            auth_config_id: "ac_123456789012".into(),
            settings: settings("GitHub"),
        }))
    }

    #[tokio::test]
    async fn disabling_twice_emits_once_and_a_deleted_config_is_gone() {
        let project_id = ProjectId::random();
        let disabled = Recorded(AuthConfigEvent::AuthConfigStatusChanged(AuthConfigStatusChanged {
            project_id,
            auth_config_id: "ac_123456789012".into(),
            enabled: false,
        }));
        TestFramework::<AuthConfig>::with(())
            .given(vec![created(project_id)])
            .when_async(AuthConfigCommand::SetEnabled { project_id, enabled: false })
            .await
            .then_expect_events(vec![disabled.clone()]);
        TestFramework::<AuthConfig>::with(())
            .given(vec![created(project_id), disabled])
            .when_async(AuthConfigCommand::SetEnabled { project_id, enabled: false })
            .await
            .then_expect_events(vec![]);
        let deleted = Recorded(AuthConfigEvent::AuthConfigDeleted(AuthConfigDeleted {
            project_id,
            auth_config_id: "ac_123456789012".into(),
        }));
        TestFramework::<AuthConfig>::with(())
            .given(vec![created(project_id), deleted])
            .when_async(AuthConfigCommand::Update { project_id, settings: settings("Renamed") })
            .await
            .then_expect_error(AuthConfigError::NotFound);
    }

    #[tokio::test]
    async fn another_projects_auth_config_is_not_found() {
        let project_id = ProjectId::random();
        TestFramework::<AuthConfig>::with(())
            .given(vec![created(project_id)])
            .when_async(AuthConfigCommand::Delete { project_id: ProjectId::random() })
            .await
            .then_expect_error(AuthConfigError::NotFound);
    }

    #[test]
    fn secrets_are_split_from_public_fields_and_schemes_are_checked() {
        let credentials = serde_json::json!({"client_id": "id", "client_secret": "s", "scopes": ["a"]});
        let (public, secret) = split_credentials(credentials.as_object().unwrap().clone());
        assert_eq!(public.keys().collect::<Vec<_>>(), vec!["client_id", "scopes"]);
        assert_eq!(secret.keys().collect::<Vec<_>>(), vec!["client_secret"]);
        assert_eq!(parse_scheme("oauth2").unwrap(), "OAUTH2");
        assert!(parse_scheme("MAGIC").is_err());
    }

    #[test]
    fn input_rules_name_the_field() {
        assert_eq!(parse_toolkit(" GitHub ").unwrap(), "github");
        assert_eq!(parse_toolkit("git hub").unwrap_err().field, "slug");
        assert_eq!(parse_toolkit("").unwrap_err().field, "slug");
        assert_eq!(parse_name("a\nb").unwrap_err().field, "name");
        assert_eq!(parse_name(&"x".repeat(129)).unwrap_err().field, "name");
        assert!(parse_name(&"x".repeat(128)).is_ok());
        assert_eq!(parse_name("a\0b").unwrap_err().field, "name");
        let error = check_custom_credentials("OAUTH2", &Map::new()).unwrap_err();
        assert_eq!(error.field, "credentials.client_id");
        assert!(check_custom_credentials("API_KEY", &Map::new()).is_ok());
    }
}
