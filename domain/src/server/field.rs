//! The fields of a server's configuration, each parsed once at the edge into a type that can
//! only hold a valid value.

use std::fmt;

/// A field of a server's configuration, named independently of any wire format: each HTTP
/// surface maps it to its own name (`transportType`, `transport_type`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerField {
    Name,
    Description,
    Transport,
    Url,
    Connection,
    Command,
    Args,
    Env,
    CustomHeaders,
    OauthClientId,
    OauthClientSecret,
    OauthScope,
    ProxyUrl,
    ProxyAuthToken,
    ProxyAuthHeader,
    RequestTimeout,
    MaxTotalTimeout,
    AuthConfigIds,
    AllowedTools,
    Toolkits,
    NoAuthApps,
    ManagedAuth,
}

impl ServerField {
    /// The snake_case name, as used in `ServerUpdated::changed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Description => "description",
            Self::Transport => "transport",
            Self::Url => "url",
            Self::Connection => "connection",
            Self::Command => "command",
            Self::Args => "args",
            Self::Env => "env",
            Self::CustomHeaders => "custom_headers",
            Self::OauthClientId => "oauth_client_id",
            Self::OauthClientSecret => "oauth_client_secret",
            Self::OauthScope => "oauth_scope",
            Self::ProxyUrl => "proxy_url",
            Self::ProxyAuthToken => "proxy_auth_token",
            Self::ProxyAuthHeader => "proxy_auth_header",
            Self::RequestTimeout => "request_timeout",
            Self::MaxTotalTimeout => "max_total_timeout",
            Self::AuthConfigIds => "auth_config_ids",
            Self::AllowedTools => "allowed_tools",
            Self::Toolkits => "toolkits",
            Self::NoAuthApps => "no_auth_apps",
            Self::ManagedAuth => "managed_auth_via_composio",
        }
    }
}

/// A field holds a value it may not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", self.display_path())]
pub struct FieldError {
    pub field: ServerField,
    /// Where inside the field, for maps and lists: an env key, or a header index and part.
    pub inner: Vec<String>,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: ServerField, reason: impl Into<String>) -> Self {
        Self { field, inner: Vec::new(), reason: reason.into() }
    }

    pub fn at(mut self, segment: impl fmt::Display) -> Self {
        self.inner.insert(0, segment.to_string());
        self
    }

    fn display_path(&self) -> String {
        std::iter::once(self.field.as_str().to_owned()).chain(self.inner.iter().cloned()).collect::<Vec<_>>().join(".")
    }
}

fn check_text(raw: &str, max_chars: usize, allow_empty: bool) -> Result<String, String> {
    let text = raw.trim();
    if text.is_empty() && !allow_empty {
        return Err("must not be empty".into());
    }
    if text.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err("must not contain control characters".into());
    }
    Ok(text.to_owned())
}

/// A server's name: trimmed, 1 to 128 characters, no control characters. Unique within a
/// project, ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerName(String);

impl ServerName {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let name = check_text(raw, Self::MAX_CHARS, false).map_err(|r| FieldError::new(ServerField::Name, r))?;
        if name.contains('\n') || name.contains('\t') {
            return Err(FieldError::new(ServerField::Name, "must be a single line"));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether two names collide: equal when case is ignored.
    pub fn same_as(&self, other: &str) -> bool {
        self.0.to_lowercase() == other.to_lowercase()
    }
}

/// Free text of bounded length (descriptions, commands, arguments, OAuth ids and scopes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    pub const MAX_CHARS: usize = 4096;

    /// Parses a non-empty text for `field`.
    pub fn parse(field: ServerField, raw: &str) -> Result<Self, FieldError> {
        check_text(raw, Self::MAX_CHARS, false).map(Self).map_err(|r| FieldError::new(field, r))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// An absolute http or https URL with a host, at most 2048 characters as given and as
/// stored (normalising percent-encodes, which can triple a length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsoluteUrl(String);

impl AbsoluteUrl {
    pub const MAX_CHARS: usize = crate::limits::URL_CHARS;

    pub fn parse(field: ServerField, raw: &str) -> Result<Self, FieldError> {
        let invalid = |reason: &str| FieldError::new(field, reason);
        crate::limits::check_line(raw.trim(), Self::MAX_CHARS).map_err(|r| invalid(&r))?;
        let url = url::Url::parse(raw.trim()).map_err(|e| invalid(&format!("must be an absolute URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("must use the http or https scheme"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("must name a host"));
        }
        if url.as_str().len() > Self::MAX_CHARS {
            return Err(invalid(&format!("must be at most {} characters once percent-encoded", Self::MAX_CHARS)));
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of an environment variable: a letter or `_`, then letters, digits or `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EnvName(String);

impl EnvName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let mut chars = raw.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if first_ok && rest_ok && raw.len() <= 256 {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(ServerField::Env, "is not a valid environment variable name").at(raw))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An HTTP header name (an RFC 9110 token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderName(String);

impl HeaderName {
    pub fn parse(field: ServerField, raw: &str) -> Result<Self, FieldError> {
        const TCHAR: &[u8] = b"!#$%&'*+-.^_`|~";
        let valid =
            !raw.is_empty() && raw.len() <= 256 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || TCHAR.contains(&b));
        if valid { Ok(Self(raw.to_owned())) } else { Err(FieldError::new(field, "is not a valid HTTP header name")) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a header value before it is sealed: no line breaks or NUL, at most 8 KiB.
pub fn check_header_value(value: &str) -> Result<(), String> {
    if value.len() > 8192 {
        return Err("must be at most 8192 bytes".into());
    }
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err("must not contain line breaks or NUL".into());
    }
    Ok(())
}

/// A timeout in milliseconds: at least 1 ms, at most one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeoutMs(u64);

impl TimeoutMs {
    pub const MAX: u64 = 3_600_000;

    pub fn parse(field: ServerField, ms: i64) -> Result<Self, FieldError> {
        match u64::try_from(ms) {
            Ok(0) | Err(_) => Err(FieldError::new(field, "must be a positive number of milliseconds")),
            Ok(ms) if ms > Self::MAX => {
                Err(FieldError::new(field, format!("must be at most {} ms (one hour)", Self::MAX)))
            }
            Ok(ms) => Ok(Self(ms)),
        }
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_trimmed_single_lines() {
        assert_eq!(ServerName::parse("  My MCP Server ").unwrap().as_str(), "My MCP Server");
        assert!(ServerName::parse("").is_err());
        assert!(ServerName::parse("a\nb").is_err());
        assert!(ServerName::parse(&"n".repeat(129)).is_err());
        assert!(ServerName::parse("Weather").unwrap().same_as("WEATHER"));
    }

    #[test]
    fn urls_must_be_absolute_http_with_a_host() {
        assert!(AbsoluteUrl::parse(ServerField::Url, "https://mcp.example.com/mcp").is_ok());
        for bad in ["mcp.example.com", "/relative", "ftp://x.example", "http://", "not a url"] {
            let err = AbsoluteUrl::parse(ServerField::Url, bad).unwrap_err();
            assert_eq!(err.field, ServerField::Url, "{bad}");
        }
        let at_limit = format!("https://mcp.example.com/{}", "a".repeat(AbsoluteUrl::MAX_CHARS - 24));
        assert_eq!(AbsoluteUrl::parse(ServerField::Url, &at_limit).unwrap().as_str().len(), AbsoluteUrl::MAX_CHARS);
        assert!(AbsoluteUrl::parse(ServerField::Url, &format!("{at_limit}a")).is_err());
        // `{` is stored as `%7B`: a URL that would grow past the limit is refused too.
        assert!(AbsoluteUrl::parse(ServerField::Url, &format!("https://x.example/{}", "{".repeat(1000))).is_err());
        assert!(AbsoluteUrl::parse(ServerField::Url, "https://x.example/\u{0}").is_err());
    }

    #[test]
    fn env_names_and_header_names_follow_their_grammars() {
        assert!(EnvName::parse("API_KEY").is_ok());
        assert!(EnvName::parse("_x1").is_ok());
        let err = EnvName::parse("1BAD").unwrap_err();
        assert_eq!(err.to_string(), "env.1BAD: is not a valid environment variable name");
        assert!(HeaderName::parse(ServerField::CustomHeaders, "X-Api-Key").is_ok());
        assert!(HeaderName::parse(ServerField::CustomHeaders, "Bad Header").is_err());
        assert!(check_header_value("ok value").is_ok());
        assert!(check_header_value("evil\r\nX-Injected: 1").is_err());
    }

    #[test]
    fn timeouts_are_positive_and_bounded() {
        assert!(TimeoutMs::parse(ServerField::RequestTimeout, 0).is_err());
        assert!(TimeoutMs::parse(ServerField::RequestTimeout, -5).is_err());
        assert!(TimeoutMs::parse(ServerField::RequestTimeout, 3_600_001).is_err());
        assert_eq!(TimeoutMs::parse(ServerField::RequestTimeout, 1).unwrap().get(), 1);
    }
}
