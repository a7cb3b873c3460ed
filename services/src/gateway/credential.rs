//! The token the upstream gets, taken from the instance's opened credential: the OAuth access
//! token, or the token / API key given to set-auth. Opened only here, right before a request
//! is forwarded, and never logged.

use events::instance::AuthMethod;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

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
    let json: Value = serde_json::from_str(plain.expose_secret()).ok()?;
    fields(method)
        .iter()
        .find_map(|field| json.get(field).and_then(Value::as_str).filter(|token| !token.is_empty()))
        .map(|token| SecretString::from(token.to_owned()))
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
}
