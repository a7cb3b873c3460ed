//! A project's own OAuth client for a provider ("white-labeling"). One aggregate per
//! (project, client id); saving again replaces the settings.

use crate::Recorded;
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use events::oauth_app::OAuthAppSaved;
use events::{OAuthAppEvent, ProjectId, SealedSecret};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What an OAuth app is saved with, every field parsed. Generic over the secret, like
/// `ServerSpec`: only the sealed form reaches a command.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthAppSpec<S> {
    pub client_id: String,
    pub provider: String,
    pub server_name: String,
    pub client_secret: S,
    pub callback_url: Option<String>,
    pub account_id: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub scopes: Option<Vec<String>>,
}

/// A field of an OAuth app that holds a value it may not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct OAuthAppFieldError {
    /// snake_case, as Klavis names the fields.
    pub field: &'static str,
    pub reason: String,
}

impl OAuthAppFieldError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }
}

/// Checks a client id: 1 to 512 printable characters.
pub fn parse_client_id(raw: &str) -> Result<String, OAuthAppFieldError> {
    let id = raw.trim();
    if id.is_empty() || id.len() > 512 || id.chars().any(char::is_control) {
        return Err(OAuthAppFieldError::new("client_id", "must be 1 to 512 printable characters"));
    }
    Ok(id.to_owned())
}

/// Checks an absolute https URL. Plain http on loopback only when `allow_loopback_http` (local
/// providers and tests): otherwise a project could make this service call its own host.
pub fn parse_endpoint(field: &'static str, raw: &str, allow_loopback_http: bool) -> Result<String, OAuthAppFieldError> {
    crate::limits::check_line(raw.trim(), crate::limits::URL_CHARS).map_err(|r| OAuthAppFieldError::new(field, r))?;
    let url = url::Url::parse(raw.trim())
        .map_err(|e| OAuthAppFieldError::new(field, format!("must be an absolute URL ({e})")))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        _ if url.as_str().len() > crate::limits::URL_CHARS => Err(OAuthAppFieldError::new(
            field,
            format!("must be at most {} characters once percent-encoded", crate::limits::URL_CHARS),
        )),
        "https" if url.host_str().is_some() => Ok(url.to_string()),
        "http" if loopback && allow_loopback_http => Ok(url.to_string()),
        _ => Err(OAuthAppFieldError::new(field, "must be an https URL")),
    }
}

impl<S> OAuthAppSpec<S> {
    pub fn try_seal<T, E>(self, seal: impl FnOnce(S) -> Result<T, E>) -> Result<OAuthAppSpec<T>, E> {
        Ok(OAuthAppSpec {
            client_secret: seal(self.client_secret)?,
            client_id: self.client_id,
            provider: self.provider,
            server_name: self.server_name,
            callback_url: self.callback_url,
            account_id: self.account_id,
            authorize_url: self.authorize_url,
            token_url: self.token_url,
            scopes: self.scopes,
        })
    }
}

/// Namespace of OAuth app ids (UUIDv5 of project and client id).
const APP_NAMESPACE: Uuid = Uuid::from_u128(0x6d63_7070_6f61_7070_8000_0000_0000_0002);

/// The aggregate id of a project's app: derived, so that saving again is an upsert.
pub fn app_id(project: ProjectId, client_id: &str) -> String {
    Uuid::new_v5(&APP_NAMESPACE, format!("{project}\n{client_id}").as_bytes()).to_string()
}

#[derive(Debug, Clone)]
pub enum OAuthAppCommand {
    Save { project_id: ProjectId, spec: OAuthAppSpec<SealedSecret> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthAppError {
    #[error("OAuth app not found")]
    NotFound,
}

/// An OAuth app, folded from its events: the last saved settings.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct OAuthApp {
    saved: Option<OAuthAppSaved>,
}

impl OAuthApp {
    /// The app's settings, if it exists in `project_id`.
    pub fn saved_in(&self, project_id: ProjectId) -> Option<&OAuthAppSaved> {
        self.saved.as_ref().filter(|s| s.project_id == project_id)
    }
}

impl Aggregate for OAuthApp {
    const TYPE: &'static str = <OAuthAppEvent as events::Event>::AGGREGATE_TYPE;
    type Command = OAuthAppCommand;
    type Event = Recorded<OAuthAppEvent>;
    type Error = OAuthAppError;
    type Services = ();

    async fn handle(&mut self, command: OAuthAppCommand, _: &(), sink: &EventSink<Self>) -> Result<(), OAuthAppError> {
        let OAuthAppCommand::Save { project_id, spec } = command;
        if self.saved.as_ref().is_some_and(|s| s.project_id != project_id) {
            return Err(OAuthAppError::NotFound);
        }
        let saved = OAuthAppSaved {
            project_id,
            client_id: spec.client_id,
            provider: spec.provider,
            server_name: spec.server_name,
            client_secret: spec.client_secret,
            callback_url: spec.callback_url,
            account_id: spec.account_id,
            authorize_url: spec.authorize_url,
            token_url: spec.token_url,
            scopes: spec.scopes,
        };
        sink.write(Recorded(OAuthAppEvent::OAuthAppSaved(saved)), self).await;
        Ok(())
    }

    fn apply(&mut self, Recorded(event): Self::Event) {
        let OAuthAppEvent::OAuthAppSaved(saved) = event;
        self.saved = Some(saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn spec() -> OAuthAppSpec<SealedSecret> {
        OAuthAppSpec {
            client_id: "client-1".into(),
            provider: "gmail".into(),
            server_name: "Gmail".into(),
            client_secret: SealedSecret { key_id: Uuid::nil(), nonce: "n".into(), ciphertext: "c".into() },
            callback_url: None,
            account_id: None,
            authorize_url: Some("https://auth.example.com/authorize".into()),
            token_url: None,
            scopes: None,
        }
    }

    #[tokio::test]
    async fn saving_twice_replaces_the_settings() {
        let project_id = ProjectId::random();
        let first = OAuthAppSaved {
            project_id,
            client_id: "client-1".into(),
            provider: "gmail".into(),
            server_name: "Gmail".into(),
            client_secret: spec().client_secret,
            callback_url: None,
            account_id: None,
            authorize_url: None,
            token_url: None,
            scopes: None,
        };
        let events = TestFramework::<OAuthApp>::with(())
            .given(vec![Recorded(OAuthAppEvent::OAuthAppSaved(first))])
            .when_async(OAuthAppCommand::Save { project_id, spec: spec() })
            .await
            .inspect_result()
            .unwrap();
        let [Recorded(OAuthAppEvent::OAuthAppSaved(saved))] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!(saved.authorize_url.as_deref(), Some("https://auth.example.com/authorize"));
    }

    #[test]
    fn endpoints_must_be_https_except_on_loopback() {
        assert!(parse_endpoint("token_url", "https://oauth2.googleapis.com/token", false).is_ok());
        assert!(parse_endpoint("token_url", "http://127.0.0.1:9999/token", true).is_ok());
        assert!(parse_endpoint("token_url", "http://127.0.0.1:9999/token", false).is_err());
        assert_eq!(parse_endpoint("token_url", "http://evil.example.com/token", true).unwrap_err().field, "token_url");
        assert!(parse_client_id("  ").is_err());
        assert!(parse_client_id("a\0").is_err());
        let long = format!("https://auth.example.com/{}", "a".repeat(2048));
        assert_eq!(parse_endpoint("callback_url", &long, false).unwrap_err().field, "callback_url");
    }
}
