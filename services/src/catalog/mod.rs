//! The catalog of MCP servers that can be named by Klavis's `serverName`: display names,
//! slugs, how each one authenticates, and for OAuth servers the provider's public endpoints
//! and default scopes, its categories. Data in `servers.json`, embedded in the binary. The
//! same entries are Composio's toolkits (`composio::toolkits`), named by their slugs.

pub mod categories;
pub mod schemes;

pub use schemes::{AuthField, AuthScheme, auth_schemes};

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    Oauth,
    ApiKey,
    None,
}

/// A provider's OAuth 2.0 endpoints and defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OAuthProvider {
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub scopes: Vec<String>,
    /// How the provider joins scopes in the authorize URL (`" "` or `","`).
    pub scope_separator: String,
    /// Extra authorize parameters the provider needs (Google's `access_type=offline`).
    pub extra_authorize_params: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CatalogEntry {
    /// As Klavis spells it: `Google Calendar`.
    pub name: String,
    /// `gcalendar`: the Klavis OAuth slug, or the name in kebab case.
    pub slug: String,
    pub description: String,
    /// Ids of [`categories::CATEGORIES`].
    pub categories: Vec<String>,
    pub auth: AuthKind,
    pub oauth: Option<OAuthProvider>,
}

impl CatalogEntry {
    /// A stable id for the entry (Klavis lists servers with a UUID).
    pub fn id(&self) -> Uuid {
        const CATALOG_NAMESPACE: Uuid = Uuid::from_u128(0x6d63_7070_6361_7467_8000_0000_0000_0003);
        Uuid::new_v5(&CATALOG_NAMESPACE, self.slug.as_bytes())
    }

    pub fn needs_oauth(&self) -> bool {
        self.auth == AuthKind::Oauth
    }

    /// Where an instance of this server starts its OAuth flow (the service's
    /// `/oauth/{provider}/authorize`), for servers that authenticate by OAuth.
    pub fn oauth_url(&self, public_url: &str, instance_id: &str) -> Option<String> {
        self.needs_oauth().then(|| format!("{public_url}/oauth/{}/authorize?instance_id={instance_id}", self.slug))
    }
}

pub struct Catalog {
    entries: Vec<CatalogEntry>,
    by_name: HashMap<String, usize>,
    by_slug: HashMap<String, usize>,
}

/// Klavis's names match ignoring case, with `_` standing for a space:
/// `GOOGLE_CALENDAR`, `google calendar` and `Google Calendar` are one server.
pub fn normalize(name: &str) -> String {
    name.trim().replace('_', " ").split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Klavis's white-label provider names (`OAuthServerName`) that are not a catalog name.
const OAUTH_ONLY_PROVIDERS: &[(&str, &str)] =
    &[("onedrive", "onedrive"), ("outlook", "outlook"), ("mscalendar", "mscalendar"), ("xero", "xero")];

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let entries: Vec<CatalogEntry> =
        serde_json::from_str(include_str!("servers.json")).expect("the embedded catalog is valid JSON");
    Catalog::new(entries)
});

impl Catalog {
    fn new(entries: Vec<CatalogEntry>) -> Self {
        let by_name = entries.iter().enumerate().map(|(i, e)| (normalize(&e.name), i)).collect();
        let by_slug = entries.iter().enumerate().map(|(i, e)| (e.slug.clone(), i)).collect();
        Self { entries, by_name, by_slug }
    }

    pub fn get() -> &'static Self {
        &CATALOG
    }

    pub fn all(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// The entry a Klavis `serverName` names, in any of its accepted spellings.
    pub fn find(&self, name: &str) -> Option<&CatalogEntry> {
        self.by_name.get(&normalize(name)).map(|&i| &self.entries[i])
    }

    pub fn by_slug(&self, slug: &str) -> Option<&CatalogEntry> {
        self.by_slug.get(slug).map(|&i| &self.entries[i])
    }

    /// The entry a Composio toolkit slug stands for: by slug, else by its name or slug with
    /// everything but letters and digits dropped (`googlecalendar` is Google Calendar).
    pub fn for_toolkit(&self, toolkit: &str) -> Option<&CatalogEntry> {
        let compact = |s: &str| s.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_lowercase();
        let wanted = compact(toolkit);
        self.by_slug(toolkit)
            .or_else(|| self.entries.iter().find(|e| compact(&e.name) == wanted || compact(&e.slug) == wanted))
    }

    /// The provider slug of a white-label `server_name` (one of Klavis's `OAuthServerName`s):
    /// the catalog server of that name, or one of the names only white-labeling uses.
    pub fn oauth_provider(&self, name: &str) -> Option<String> {
        let key = normalize(name).replace(' ', "");
        if let Some((_, slug)) = OAUTH_ONLY_PROVIDERS.iter().find(|(n, _)| *n == key) {
            return Some((*slug).to_owned());
        }
        self.find(name).map(|e| e.slug.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_catalog_holds_klavis_96_servers_with_unique_slugs() {
        let catalog = Catalog::get();
        assert_eq!(catalog.all().len(), 96);
        let slugs: HashSet<_> = catalog.all().iter().map(|e| &e.slug).collect();
        assert_eq!(slugs.len(), 96);
        for entry in catalog.all() {
            assert!(
                entry.slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                entry.slug
            );
            assert_eq!(entry.oauth.is_some(), entry.needs_oauth(), "{}", entry.name);
            assert!(!entry.categories.is_empty(), "{} has no category", entry.name);
            for category in &entry.categories {
                assert!(
                    categories::CATEGORIES.iter().any(|(id, _)| id == category),
                    "{}: unknown category {category}",
                    entry.name
                );
            }
        }
    }

    #[test]
    fn names_match_ignoring_case_with_underscores_for_spaces() {
        let catalog = Catalog::get();
        for spelling in ["Google Calendar", "google calendar", "GOOGLE_CALENDAR", "  google   Calendar "] {
            assert_eq!(catalog.find(spelling).map(|e| e.name.as_str()), Some("Google Calendar"), "{spelling}");
        }
        assert!(catalog.find("Gmial").is_none());
        assert_eq!(catalog.find("cal.com").map(|e| e.name.as_str()), Some("Cal.com"));
    }

    #[test]
    fn white_label_names_map_to_provider_slugs() {
        let catalog = Catalog::get();
        assert_eq!(catalog.oauth_provider("Gmail").as_deref(), Some("gmail"));
        assert_eq!(catalog.oauth_provider("MsCalendar").as_deref(), Some("mscalendar"));
        assert_eq!(catalog.oauth_provider("Xero").as_deref(), Some("xero"));
        assert_eq!(catalog.oauth_provider("Moneybird").as_deref(), Some("moneybird"));
        assert_eq!(catalog.oauth_provider("Nonexistent"), None);
    }
}
