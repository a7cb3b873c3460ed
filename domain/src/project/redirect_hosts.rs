//! The hosts a project lets the OAuth flow send the browser back to (its `redirect_url` or
//! `callback_url`): anything else is an open redirect, so the list is explicit and empty by
//! default.

use std::fmt;
use url::{Host, Url};

/// One allowed host: a host name or IP address, or `*.` and a domain for its subdomains, with
/// an optional port. Without a port it allows the scheme's default port only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectHost {
    /// Lower-case ASCII (IDNA), IPv6 in brackets, as `url` writes a URL's host.
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl RedirectHost {
    pub const MAX_CHARS: usize = 260;

    /// `app.example.com`, `localhost:3000`, `*.example.com`, `[::1]:8080`, `bücher.de`
    /// (stored as `xn--bcher-kva.de`). Not a URL: no scheme, path, user or query.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let entry = raw.trim();
        if entry.is_empty() {
            return Err("must not be empty".into());
        }
        if entry.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if entry.contains(['/', '?', '#', '@', '\\']) || entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must be a host with an optional port (app.example.com, localhost:3000), not a URL".into());
        }
        let (wildcard, rest) = match entry.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        if rest.contains('*') {
            return Err("may hold a wildcard only as a leading *. (*.example.com)".into());
        }
        let (host, port) = split_port(rest)?;
        let host = Host::parse(host).map_err(|e| format!("is not a valid host name ({e})"))?;
        if wildcard && !matches!(&host, Host::Domain(d) if d.trim_end_matches('.').contains('.')) {
            return Err("a wildcard needs a domain of two labels or more after it (*.example.com)".into());
        }
        Ok(Self { host: host.to_string(), wildcard, port })
    }

    /// Whether a URL's host and port are this entry's.
    fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else { return false };
        let host_matches = if self.wildcard {
            host.strip_suffix(self.host.as_str()).is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
        } else {
            host == self.host
        };
        let port_matches = match self.port {
            // `Url::port` is `None` for the scheme's default port.
            None => url.port().is_none(),
            Some(port) => url.port_or_known_default() == Some(port),
        };
        host_matches && port_matches
    }
}

/// `host[:port]`, with IPv6 in brackets.
fn split_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let port_at = match text.strip_prefix('[') {
        Some(inner) => inner.find(']').map(|end| end + 2).filter(|&after| after < text.len()),
        None => text.rfind(':'),
    };
    let Some(colon) = port_at else { return Ok((text, None)) };
    if text.as_bytes()[colon] != b':' {
        return Err("is not a valid host name".into());
    }
    let port = text[colon + 1..].parse::<u16>().ok().filter(|&p| p != 0);
    let port = port.ok_or_else(|| "has a port that is not a number from 1 to 65535".to_owned())?;
    Ok((&text[..colon], Some(port)))
}

impl fmt::Display for RedirectHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// An entry of a list that is not a host, with its position in the list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hosts[{index}]: {reason}")]
pub struct InvalidRedirectHost {
    pub index: usize,
    pub reason: String,
}

/// A project's allow-list: sorted, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedirectHosts(Vec<RedirectHost>);

impl RedirectHosts {
    pub const MAX_ENTRIES: usize = 100;

    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, InvalidRedirectHost> {
        let hosts = entries
            .iter()
            .enumerate()
            .map(|(index, raw)| {
                RedirectHost::parse(raw.as_ref()).map_err(|reason| InvalidRedirectHost { index, reason })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::of(hosts))
    }

    /// The list as recorded (canonical entries); an entry no longer understood is left out.
    pub fn recorded<S: AsRef<str>>(entries: &[S]) -> Self {
        Self::of(entries.iter().filter_map(|e| RedirectHost::parse(e.as_ref()).ok()).collect())
    }

    fn of(mut hosts: Vec<RedirectHost>) -> Self {
        hosts.sort_by_cached_key(ToString::to_string);
        hosts.dedup();
        Self(hosts)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the browser may be sent to `url`: an http(s) URL on one of the hosts.
    pub fn allows(&self, url: &Url) -> bool {
        matches!(url.scheme(), "http" | "https") && self.0.iter().any(|host| host.allows(url))
    }

    /// With `add` added and `remove` removed (removing an absent host changes nothing).
    pub fn edited(&self, add: &RedirectHosts, remove: &RedirectHosts) -> Self {
        let kept = self.0.iter().chain(&add.0).filter(|h| !remove.0.contains(h)).cloned().collect();
        Self::of(kept)
    }

    /// The canonical entries, as recorded and shown.
    pub fn entries(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

/// A redirect target as given: an absolute http(s) URL with a host. `javascript:`, `data:`,
/// `file:` and relative URLs are refused.
pub fn parse_redirect_target(raw: &str) -> Result<Url, &'static str> {
    match Url::parse(raw.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(url),
        _ => Err("must be an absolute http(s) URL"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> RedirectHosts {
        RedirectHosts::parse(entries).unwrap()
    }

    fn url(raw: &str) -> Url {
        Url::parse(raw).unwrap()
    }

    #[test]
    fn entries_are_stored_canonical() {
        let list =
            hosts(&["App.Example.COM", "bücher.de", "localhost:3000", "*.Example.org", "[::1]:8080", "10.0.0.1"]);
        assert_eq!(
            list.entries(),
            ["*.example.org", "10.0.0.1", "[::1]:8080", "app.example.com", "localhost:3000", "xn--bcher-kva.de"]
        );
        assert_eq!(hosts(&["a.example.com", " a.example.com "]).len(), 1, "duplicates fold");
    }

    #[test]
    fn garbage_is_refused_with_its_position() {
        for bad in [
            "",
            "https://app.example.com",
            "app.example.com/path",
            "user@app.example.com",
            "app.example.com:0",
            "app.example.com:99999",
            "app.example.com:x",
            "*",
            "*.com",
            "a.*.example.com",
            "*.10.0.0.1",
            "exa mple.com",
            "a\u{0}b",
            "[::1",
        ] {
            let error = RedirectHosts::parse(&["ok.example.com", bad]).unwrap_err();
            assert_eq!(error.index, 1, "{bad:?}: {error}");
        }
    }

    #[test]
    fn only_listed_hosts_on_their_ports_are_allowed() {
        let list = hosts(&["app.example.com", "localhost:3000", "*.example.org"]);
        assert!(list.allows(&url("https://app.example.com/done?x=1")));
        assert!(list.allows(&url("http://app.example.com/done")));
        assert!(list.allows(&url("https://APP.example.com:443/done")), "the default port is no port");
        assert!(!list.allows(&url("https://app.example.com:8443/done")), "another port");
        assert!(list.allows(&url("http://localhost:3000/cb")));
        assert!(!list.allows(&url("http://localhost/cb")));
        assert!(list.allows(&url("https://a.b.example.org/")));
        assert!(!list.allows(&url("https://example.org/")), "a wildcard is for subdomains");
        assert!(!list.allows(&url("https://evilexample.org/")));
        assert!(!list.allows(&url("https://evil.example.com/phish")));
        assert!(!list.allows(&url("https://app.example.com.evil.com/")));
        assert!(!list.allows(&url("ftp://app.example.com/")), "http(s) only");
        assert!(!RedirectHosts::default().allows(&url("https://app.example.com/")), "empty allows nothing");
    }

    #[test]
    fn targets_must_be_absolute_http_urls() {
        for bad in ["javascript:alert(1)", "file:///etc/passwd", "data:text/html,hi", "/relative", "not a url"] {
            assert!(parse_redirect_target(bad).is_err(), "{bad}");
        }
        assert!(parse_redirect_target("https://app.example.com/x").is_ok());
    }

    #[test]
    fn an_edit_adds_and_removes() {
        let list = hosts(&["a.example.com", "b.example.com"]);
        let edited =
            list.edited(&hosts(&["c.example.com", "a.example.com"]), &hosts(&["b.example.com", "z.example.com"]));
        assert_eq!(edited.entries(), ["a.example.com", "c.example.com"]);
    }
}
