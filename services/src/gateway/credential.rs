//! The token the upstream gets, taken from the instance's (or connected account's) opened
//! credential: the OAuth access token, or the token / API key given to set-auth or to the
//! connection. Opened only here, right before a request is forwarded, and never logged.

use super::error::GatewayError;
use crate::oauth::RefreshFailure;
use events::instance::AuthMethod;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// A refresh failure that is not the target's own to word (expired, gone): the same answer
/// for instances and connected accounts.
pub fn refresh_error(failure: RefreshFailure) -> GatewayError {
    match failure {
        RefreshFailure::Unavailable(problem) => GatewayError::RefreshUnavailable { problem },
        other => {
            tracing::error!(error = %other, "cannot refresh a credential for the gateway");
            GatewayError::Internal
        }
    }
}

/// Where each kind of credential keeps the value to send, in order of preference.
fn fields(method: AuthMethod) -> &'static [&'static str] {
    match method {
        AuthMethod::Oauth => &["access_token"],
        AuthMethod::ApiKey => &["api_key", "token"],
        AuthMethod::Token => &["token", "api_key"],
        AuthMethod::Data => &["token", "api_key", "access_token", "apiKey", "accessToken"],
    }
}

/// The token of a credential's JSON; none when it holds no usable string.
pub fn token_of(method: AuthMethod, plain: &SecretString) -> Option<SecretString> {
    first_field(fields(method), plain)
}

fn first_field(fields: &[&str], plain: &SecretString) -> Option<SecretString> {
    let json: Value = serde_json::from_str(plain.expose_secret()).ok()?;
    fields
        .iter()
        .find_map(|field| json.get(field).and_then(Value::as_str).filter(|token| !token.is_empty()))
        .map(|token| SecretString::from(token.to_owned()))
}

/// What a connected account of an auth scheme gives the upstream.
pub enum AccountToken {
    /// A no-auth account: nothing to send.
    Nothing,
    Token(SecretString),
    /// Its credential holds nothing usable.
    Unusable,
}

/// The token of a connected account's credential (Composio's `state.val`, or the OAuth
/// tokens): a BASIC account's is `base64(username:password)`, for a `Basic {token}` format.
pub fn account_token(auth_scheme: &str, plain: &SecretString) -> AccountToken {
    let token = match auth_scheme {
        "NO_AUTH" => return AccountToken::Nothing,
        "BASIC" => basic(plain),
        "API_KEY" => first_field(&["api_key", "generic_api_key"], plain),
        "BEARER_TOKEN" => first_field(&["token"], plain),
        _ => first_field(&["access_token", "token", "api_key", "generic_api_key"], plain),
    };
    token.map_or(AccountToken::Unusable, AccountToken::Token)
}

fn basic(plain: &SecretString) -> Option<SecretString> {
    use base64::Engine;
    let json: Value = serde_json::from_str(plain.expose_secret()).ok()?;
    let username = json.get("username").and_then(Value::as_str).filter(|u| !u.is_empty())?;
    let password = json.get("password").and_then(Value::as_str).unwrap_or_default();
    Some(SecretString::from(base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(method: AuthMethod, json: &str) -> Option<String> {
        token_of(method, &SecretString::from(json.to_owned())).map(|t| t.expose_secret().to_owned())
    }

    #[test]
    fn each_kind_of_credential_gives_its_token() {
        assert_eq!(token(AuthMethod::Oauth, r#"{"access_token":"at","refresh_token":"rt"}"#).as_deref(), Some("at"));
        assert_eq!(token(AuthMethod::ApiKey, r#"{"api_key":"k","token":"t"}"#).as_deref(), Some("k"));
        assert_eq!(token(AuthMethod::Token, r#"{"token":"t"}"#).as_deref(), Some("t"));
        assert_eq!(token(AuthMethod::Data, r#"{"apiKey":"d"}"#).as_deref(), Some("d"));
        assert_eq!(token(AuthMethod::Data, r#"{"username":"u"}"#), None);
        assert_eq!(token(AuthMethod::Token, r#"{"token":""}"#), None);
    }

    fn account(scheme: &str, json: &str) -> Option<String> {
        match account_token(scheme, &SecretString::from(json.to_owned())) {
            AccountToken::Token(t) => Some(t.expose_secret().to_owned()),
            AccountToken::Nothing => Some("<nothing>".into()),
            AccountToken::Unusable => None,
        }
    }

    #[test]
    fn each_scheme_of_connected_account_gives_its_token() {
        assert_eq!(account("API_KEY", r#"{"status":"ACTIVE","api_key":"k"}"#).as_deref(), Some("k"));
        assert_eq!(account("API_KEY", r#"{"generic_api_key":"g"}"#).as_deref(), Some("g"));
        assert_eq!(account("BEARER_TOKEN", r#"{"token":"t"}"#).as_deref(), Some("t"));
        assert_eq!(account("OAUTH2", r#"{"access_token":"at","refresh_token":"rt"}"#).as_deref(), Some("at"));
        assert_eq!(account("BASIC", r#"{"username":"u","password":"p"}"#).as_deref(), Some("dTpw"));
        assert_eq!(account("NO_AUTH", "{}").as_deref(), Some("<nothing>"));
        assert_eq!(account("API_KEY", r#"{"token":"t"}"#), None);
    }
}
