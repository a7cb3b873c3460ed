//! The operator's upstreams file (`PROVISIONER_UPSTREAMS`): which MCP server a catalog server's
//! instances are forwarded to, and how the user's credential goes there.
//!
//! ```toml
//! [github]
//! url = "https://mcp.example.com/github/mcp"
//!
//! [google_calendar]              # any spelling of a catalog name: case-insensitive, `_` for a space
//! url = "https://mcp.example.com/gcal/mcp"
//! credential_header = "X-Api-Key"
//! credential_format = "{token}"
//!
//! [hacker_news]                  # an upstream that speaks only the legacy HTTP+SSE transport
//! sse_url = "https://mcp.example.com/hn/sse"
//! ```
//!
//! The file is trusted (the operator wrote it): its URLs may be on loopback or a private network.

use crate::catalog::Catalog;
use poem::http::HeaderName;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// Where `{token}` goes in [`Upstream::credential_format`].
const TOKEN_PLACEHOLDER: &str = "{token}";

/// One catalog server's upstream MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The catalog server's display name (`Google Calendar`), for messages.
    pub server_name: String,
    /// The Streamable HTTP endpoint, or the legacy transport's `GET` (event stream) URL.
    pub url: url::Url,
    pub transport: UpstreamTransport,
    pub credential_header: HeaderName,
    /// The header's value, with `{token}` standing for the user's token or API key.
    pub credential_format: String,
}

/// How the gateway talks to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTransport {
    /// MCP Streamable HTTP (2025-03-26 and later): `url` is its one endpoint.
    StreamableHttp,
    /// The legacy HTTP+SSE transport (2024-11-05): `url` opens the event stream, whose
    /// `endpoint` event names where messages are POSTed (see [`super::legacy::upstream`]).
    Sse,
}

impl Upstream {
    /// A registered server as its own upstream: it takes no user credential (its own headers
    /// travel beside, see [`super::registered`]).
    pub fn registered(server_name: String, url: url::Url, transport: UpstreamTransport) -> Self {
        Self {
            server_name,
            url,
            transport,
            credential_header: HeaderName::from_static("authorization"),
            credential_format: TOKEN_PLACEHOLDER.to_owned(),
        }
    }

    /// The credential header's value for `token`.
    pub fn credential_value(&self, token: &str) -> String {
        self.credential_format.replace(TOKEN_PLACEHOLDER, token)
    }
}

/// Every binding, by catalog slug.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upstreams {
    by_slug: HashMap<String, Upstream>,
}

/// A table of the file, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    url: Option<String>,
    sse_url: Option<String>,
    credential_header: Option<String>,
    credential_format: Option<String>,
}

impl Upstreams {
    /// Reads the file; an error names the file or the entry at fault.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Checks every entry: a catalog server's name, an http(s) URL, a valid header name and a
    /// format holding `{token}`. Two entries naming one server are refused.
    pub fn parse(text: &str) -> Result<Self, String> {
        let tables: BTreeMap<String, toml::Value> = toml::from_str(text).map_err(|e| format!("not valid TOML: {e}"))?;
        let mut by_slug = HashMap::new();
        let mut named_by: HashMap<String, String> = HashMap::new();
        for (name, value) in tables {
            let upstream = entry(&name, value).map_err(|problem| format!("entry [{name}]: {problem}"))?;
            let slug = Catalog::get().find(&name).expect("checked by entry").slug.clone();
            if let Some(earlier) = named_by.insert(slug.clone(), name.clone()) {
                return Err(format!("entry [{name}]: names the same server as [{earlier}]"));
            }
            by_slug.insert(slug, upstream);
        }
        Ok(Self { by_slug })
    }

    /// The upstream bound to a catalog slug.
    pub fn for_slug(&self, slug: &str) -> Option<&Upstream> {
        self.by_slug.get(slug)
    }

    pub fn len(&self) -> usize {
        self.by_slug.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_slug.is_empty()
    }
}

fn entry(name: &str, value: toml::Value) -> Result<Upstream, String> {
    let catalog = Catalog::get().find(name).ok_or("is not the name of a catalog server")?;
    let entry: Entry = value.try_into().map_err(|e: toml::de::Error| e.message().to_owned())?;
    let (field, raw, transport) = match (&entry.url, &entry.sse_url) {
        (Some(url), None) => ("url", url, UpstreamTransport::StreamableHttp),
        (None, Some(sse_url)) => ("sse_url", sse_url, UpstreamTransport::Sse),
        (Some(_), Some(_)) => return Err("has both url and sse_url: name one transport".into()),
        (None, None) => return Err("needs url (Streamable HTTP) or sse_url (legacy HTTP+SSE)".into()),
    };
    let url = url::Url::parse(raw).map_err(|e| format!("{field} is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{field} must be an absolute http(s) URL"));
    }
    let header = entry.credential_header.as_deref().unwrap_or("Authorization");
    let credential_header =
        HeaderName::try_from(header).map_err(|_| format!("credential_header `{header}` is not a header name"))?;
    let credential_format = entry.credential_format.unwrap_or_else(|| format!("Bearer {TOKEN_PLACEHOLDER}"));
    if !credential_format.contains(TOKEN_PLACEHOLDER) {
        return Err(format!("credential_format must contain {TOKEN_PLACEHOLDER}"));
    }
    Ok(Upstream { server_name: catalog.name.clone(), url, transport, credential_header, credential_format })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_catalog_in_any_spelling_with_defaults() {
        let upstreams = Upstreams::parse(
            "[GOOGLE_CALENDAR]\nurl = \"http://127.0.0.1:9/mcp\"\n\n[github]\nurl = \"https://h/mcp\"\n\
             credential_header = \"X-Api-Key\"\ncredential_format = \"{token}\"\n",
        )
        .unwrap();
        let gcal = upstreams.for_slug(&Catalog::get().find("google calendar").unwrap().slug).unwrap();
        assert_eq!(gcal.server_name, "Google Calendar");
        assert_eq!(gcal.credential_header, "authorization");
        assert_eq!(gcal.credential_value("t0k"), "Bearer t0k");
        let github = upstreams.for_slug(&Catalog::get().find("GitHub").unwrap().slug).unwrap();
        assert_eq!(github.credential_header, "x-api-key");
        assert_eq!(github.credential_value("t0k"), "t0k");
        assert_eq!(github.transport, UpstreamTransport::StreamableHttp);
        let legacy = Upstreams::parse("[hacker_news]\nsse_url = \"http://127.0.0.1:9/sse\"\n").unwrap();
        let hn = legacy.for_slug(&Catalog::get().find("hacker news").unwrap().slug).unwrap();
        assert_eq!((hn.transport, hn.url.path()), (UpstreamTransport::Sse, "/sse"));
    }

    #[test]
    fn a_bad_entry_is_named() {
        let bad = [
            ("[no_such_server]\nurl = \"http://h/mcp\"\n", "[no_such_server]"),
            ("[github]\nurl = \"ftp://h/mcp\"\n", "http(s)"),
            ("[github]\nurl = \"not a url\"\n", "not a valid URL"),
            ("[github]\nurl = \"http://h/mcp\"\ncredential_format = \"Bearer\"\n", "{token}"),
            ("[github]\nurl = \"http://h/mcp\"\ncredential_header = \"bad header\"\n", "credential_header"),
            ("[github]\nurl = \"http://h/mcp\"\nsse_url = \"http://h/sse\"\n", "both url and sse_url"),
            ("[github]\ncredential_header = \"A\"\n", "needs url (Streamable HTTP) or sse_url"),
            ("[github]\nsse_url = \"file:///sse\"\n", "sse_url must be an absolute http(s) URL"),
            ("[github]\nurl = \"http://h/mcp\"\ntransport = \"sse\"\n", "unknown field"),
            ("[github]\nurl = \"http://h/a\"\n[GITHUB]\nurl = \"http://h/b\"\n", "same server"),
            ("[github\n", "not valid TOML"),
        ];
        for (text, expected) in bad {
            let error = Upstreams::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }
}
