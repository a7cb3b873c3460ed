//! The `Origin` check of the MCP transport (2025-06-18 and later: "servers MUST validate the
//! Origin header on all incoming connections to prevent DNS rebinding attacks"; rmcp advisory
//! GHSA-89vp-x53w-74fx). A request without `Origin` comes from a program, not a page, and
//! passes; one from a page passes only from the service's own public origin or one the
//! operator allowed (`PROVISIONER_GATEWAY_ALLOWED_ORIGINS`). A page elsewhere that got hold of
//! a capability URL cannot drive it from its visitors' browsers.

use poem::http::HeaderMap;

/// Which browser origins may call the gateway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    /// Origins as `scheme://host[:port]`, lowercased, without a trailing slash.
    origins: Vec<String>,
    /// `*`: every origin (for a gateway used from browser-based clients anywhere).
    any: bool,
}

impl AllowedOrigins {
    /// The operator's list (comma-separated origins, or `*`); each must be an http(s) origin.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut allowed = Self::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                allowed.any = true;
                continue;
            }
            allowed.origins.push(
                origin_of(entry).ok_or_else(|| {
                    format!("`{entry}` is not an origin (scheme://host[:port], http or https, no path)")
                })?,
            );
        }
        Ok(allowed)
    }

    /// The list with the service's own public origin added.
    pub fn with_public_url(mut self, public_url: &str) -> Self {
        if let Some(origin) = origin_of(public_url.trim_end_matches('/')) {
            self.origins.push(origin);
        }
        self
    }

    /// Whether a request with these headers may go on: no `Origin`, or an allowed one.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get("origin") else { return true };
        if self.any {
            return true;
        }
        let origin = origin.to_str().unwrap_or_default().trim().trim_end_matches('/').to_ascii_lowercase();
        self.origins.contains(&origin)
    }
}

/// `scheme://host[:port]` of an http(s) URL with no path beyond `/`, lowercased; the port
/// only when it is not the scheme's default (as browsers send it).
fn origin_of(text: &str) -> Option<String> {
    let url = url::Url::parse(text).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.path() != "/" && !url.path().is_empty() {
        return None;
    }
    Some(url.origin().ascii_serialization()).filter(|o| o != "null")
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::HeaderValue;

    fn with_origin(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("origin", HeaderValue::from_str(origin).unwrap());
        headers
    }

    #[test]
    fn only_the_public_origin_and_the_listed_ones_pass() {
        let allowed = AllowedOrigins::parse("https://app.example.com, http://localhost:6274")
            .unwrap()
            .with_public_url("https://mcp.example.com/");
        assert!(allowed.admits(&HeaderMap::new()), "no Origin: not a browser");
        assert!(allowed.admits(&with_origin("https://mcp.example.com")));
        assert!(allowed.admits(&with_origin("https://APP.example.com")));
        assert!(allowed.admits(&with_origin("http://localhost:6274")));
        assert!(!allowed.admits(&with_origin("http://localhost:6275")));
        assert!(!allowed.admits(&with_origin("https://evil.example")));
        assert!(!allowed.admits(&with_origin("null")));
        assert!(AllowedOrigins::parse("*").unwrap().admits(&with_origin("https://evil.example")));
    }

    #[test]
    fn a_default_port_is_not_part_of_the_origin() {
        let allowed = AllowedOrigins::default().with_public_url("https://mcp.example.com:443");
        assert!(allowed.admits(&with_origin("https://mcp.example.com")));
    }

    #[test]
    fn a_list_entry_that_is_not_an_origin_is_refused() {
        assert!(AllowedOrigins::parse("https://a.example/path").is_err());
        assert!(AllowedOrigins::parse("ftp://a.example").is_err());
        assert!(AllowedOrigins::parse("a.example").is_err());
    }
}
