//! How each catalog entry authenticates, as Composio describes a toolkit's auth schemes: the
//! scheme (`OAUTH2`, `API_KEY`, `NO_AUTH`), the fields an auth config of it is created with,
//! and the fields a user's connected account needs. The one source of these field lists:
//! `GET /api/v3/toolkits/{slug}` shows them, and a hosted connect page asks for the same ones.
//!
//! A field is secret unless auth configs keep it in clear
//! ([`domain::auth_config::PUBLIC_CREDENTIAL_FIELDS`]); the required account fields are the ones
//! a direct connection is refused without ([`domain::connected_account::missing_credential_fields`]).
//! Tests below hold both to these lists.

use super::{AuthKind, CatalogEntry};
use domain::auth_config::PUBLIC_CREDENTIAL_FIELDS;

/// One input field of a scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthField {
    /// The credential key (`client_id`, `api_key`).
    pub name: &'static str,
    pub display_name: &'static str,
    pub description: String,
    pub required: bool,
    /// Sealed at rest and never shown again (`REDACTED` in reads).
    pub secret: bool,
    pub default: Option<String>,
}

/// One way to authenticate to a toolkit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthScheme {
    /// Composio's scheme name, as auth configs take it: `OAUTH2`, `API_KEY`, `NO_AUTH`.
    pub mode: &'static str,
    pub display_name: &'static str,
    /// What `POST /api/v3/auth_configs` with `use_custom_auth` takes in `credentials`.
    pub auth_config_creation: Vec<AuthField>,
    /// What `POST /api/v3/connected_accounts` takes in `connection.state.val`.
    pub connected_account_initiation: Vec<AuthField>,
    /// Whether `use_composio_managed_auth` works for it (here: the project's white-label app
    /// for OAuth, nothing to configure for the others).
    pub managed: bool,
    /// The OAuth scopes asked for by default (the catalog's).
    pub default_scopes: Vec<String>,
}

impl AuthScheme {
    /// The required fields of one stage, then the optional ones.
    pub fn split(fields: &[AuthField]) -> (Vec<&AuthField>, Vec<&AuthField>) {
        fields.iter().partition(|f| f.required)
    }
}

fn field(name: &'static str, display_name: &'static str, description: String, required: bool) -> AuthField {
    let secret = !PUBLIC_CREDENTIAL_FIELDS.contains(&name);
    AuthField { name, display_name, description, required, secret, default: None }
}

/// The schemes of an entry: its catalog auth kind, one scheme each.
pub fn auth_schemes(entry: &CatalogEntry) -> Vec<AuthScheme> {
    vec![match entry.auth {
        AuthKind::Oauth => oauth2(entry),
        AuthKind::ApiKey => api_key(entry),
        AuthKind::None => no_auth(),
    }]
}

fn oauth2(entry: &CatalogEntry) -> AuthScheme {
    let provider = entry.oauth.clone().unwrap_or_else(|| unreachable!("OAuth entries have a provider (catalog test)"));
    // An endpoint the catalog lacks, or one with a `{placeholder}` (a tenant's host), must be
    // given by a custom auth config: the flow has nowhere else to take it from.
    let known = |url: &Option<String>| url.as_deref().is_some_and(|u| !u.contains('{'));
    let mut scopes = field(
        "scopes",
        "Scopes",
        format!("The OAuth scopes to ask {} for, comma-separated; the catalog's by default.", entry.name),
        false,
    );
    scopes.default = (!provider.scopes.is_empty()).then(|| provider.scopes.join(","));
    let creation = vec![
        field("client_id", "Client id", format!("The client id of your {} OAuth app.", entry.name), true),
        field("client_secret", "Client secret", format!("The client secret of your {} OAuth app.", entry.name), true),
        scopes,
        field(
            "authorization_url",
            "Authorization URL",
            format!("Where {} users authorize the app; the catalog's by default.", entry.name),
            !known(&provider.authorize_url),
        ),
        field(
            "token_url",
            "Token URL",
            format!("Where codes are exchanged for tokens at {}; the catalog's by default.", entry.name),
            !known(&provider.token_url),
        ),
    ];
    AuthScheme {
        mode: "OAUTH2",
        display_name: "OAuth 2.0",
        auth_config_creation: creation,
        connected_account_initiation: Vec::new(),
        managed: true,
        default_scopes: provider.scopes,
    }
}

fn api_key(entry: &CatalogEntry) -> AuthScheme {
    AuthScheme {
        mode: "API_KEY",
        display_name: "API Key",
        auth_config_creation: Vec::new(),
        connected_account_initiation: vec![field(
            "api_key",
            "API key",
            format!("The user's {} API key.", entry.name),
            true,
        )],
        managed: true,
        default_scopes: Vec::new(),
    }
}

fn no_auth() -> AuthScheme {
    AuthScheme {
        mode: "NO_AUTH",
        display_name: "No authentication",
        auth_config_creation: Vec::new(),
        connected_account_initiation: Vec::new(),
        managed: true,
        default_scopes: Vec::new(),
    }
}

impl CatalogEntry {
    /// The scheme an auth config of this entry uses by default (and for managed auth).
    pub fn scheme(&self) -> &'static str {
        match self.auth {
            AuthKind::Oauth => "OAUTH2",
            AuthKind::ApiKey => "API_KEY",
            AuthKind::None => "NO_AUTH",
        }
    }

    pub fn auth_schemes(&self) -> Vec<AuthScheme> {
        auth_schemes(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use domain::auth_config::AUTH_SCHEMES;
    use domain::connected_account::missing_credential_fields;

    #[test]
    fn every_entry_has_its_catalog_scheme_and_only_known_schemes() {
        for entry in Catalog::get().all() {
            let schemes = entry.auth_schemes();
            assert_eq!(schemes.iter().map(|s| s.mode).collect::<Vec<_>>(), [entry.scheme()], "{}", entry.name);
            assert!(schemes.iter().all(|s| AUTH_SCHEMES.contains(&s.mode)), "{}", entry.name);
        }
    }

    #[test]
    fn required_account_fields_are_what_a_direct_connection_is_refused_without() {
        for entry in Catalog::get().all() {
            for scheme in entry.auth_schemes() {
                let (required, _) = AuthScheme::split(&scheme.connected_account_initiation);
                let names: Vec<&str> = required.iter().map(|f| f.name).collect();
                assert_eq!(names, missing_credential_fields(scheme.mode, &Default::default()), "{}", entry.name);
            }
        }
    }

    #[test]
    fn secrets_are_exactly_the_fields_auth_configs_seal() {
        let github = Catalog::get().by_slug("github").unwrap().auth_schemes().remove(0);
        let secret: Vec<&str> = github.auth_config_creation.iter().filter(|f| f.secret).map(|f| f.name).collect();
        assert_eq!(secret, ["client_secret"]);
        let required: Vec<&str> = github.auth_config_creation.iter().filter(|f| f.required).map(|f| f.name).collect();
        assert_eq!(required, ["client_id", "client_secret"]);
        let exa = Catalog::get().by_slug("exa").unwrap().auth_schemes().remove(0);
        assert_eq!(exa.connected_account_initiation[0].name, "api_key");
        assert!(exa.connected_account_initiation[0].secret);
    }

    #[test]
    fn an_endpoint_the_catalog_lacks_is_required_of_a_custom_config() {
        // Amplitude's catalog entry has no endpoints: a custom config must bring them.
        let amplitude = Catalog::get().by_slug("amplitude").unwrap().auth_schemes().remove(0);
        let required: Vec<&str> =
            amplitude.auth_config_creation.iter().filter(|f| f.required).map(|f| f.name).collect();
        assert_eq!(required, ["client_id", "client_secret", "authorization_url", "token_url"]);
        let scopes = amplitude.auth_config_creation.iter().find(|f| f.name == "scopes").unwrap();
        assert_eq!(scopes.default, None);
        let github = Catalog::get().by_slug("github").unwrap().auth_schemes().remove(0);
        let scopes = github.auth_config_creation.iter().find(|f| f.name == "scopes").unwrap();
        assert_eq!(scopes.default.as_deref(), Some(github.default_scopes.join(",").as_str()));
    }
}
