//! The filters and order of `GET /api/v3/toolkits`, as Composio names them: `category` (an id
//! or a name), `managed_by` (`composio`, `project`, `all`) and its alias `type` (`native`,
//! `custom`, `all`), `search` (in the name, slug and description), `include_deprecated`,
//! `sort_by` (`usage`, `alphabetically`). Applied to the catalog in memory: it is small and
//! the same for every project.

use crate::catalog::{CatalogEntry, categories};
use crate::composio::error::Failure;

/// Who manages the toolkits asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    All,
    /// Composio's own (here: the catalog's).
    Catalog,
    /// A project's own toolkits: none are registered here yet.
    Project,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Composio's default, by popularity. No usage is counted here: the catalog's order.
    Usage,
    Alphabetically,
}

/// The raw query parameters, as sent.
#[derive(Debug, Default)]
pub struct Params<'a> {
    pub category: Option<String>,
    pub managed_by: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub sort_by: Option<&'a str>,
    pub include_deprecated: Option<&'a str>,
    pub search: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolkitQuery {
    pub category: Option<String>,
    pub provenance: Provenance,
    pub sort: Sort,
    pub search: Option<String>,
    /// No catalog entry is deprecated, so this changes nothing yet; it is checked all the same.
    pub include_deprecated: bool,
}

fn blank(raw: Option<&str>) -> Option<&str> {
    raw.map(str::trim).filter(|r| !r.is_empty())
}

fn provenance(name: &str, raw: Option<&str>, catalog: &str, project: &str) -> Result<Provenance, Failure> {
    match blank(raw) {
        None => Ok(Provenance::All),
        Some("all") => Ok(Provenance::All),
        Some(v) if v == catalog => Ok(Provenance::Catalog),
        Some(v) if v == project => Ok(Provenance::Project),
        Some(_) => Err(Failure::invalid(name, format!("must be {catalog}, {project} or all"))),
    }
}

/// Both given: the narrower one (a `type` and a `managed_by` that disagree ask for nothing).
fn narrower(a: Provenance, b: Provenance) -> Option<Provenance> {
    match (a, b) {
        (Provenance::All, other) | (other, Provenance::All) => Some(other),
        (a, b) if a == b => Some(a),
        _ => None,
    }
}

impl ToolkitQuery {
    /// The query the parameters ask for, or a 400 naming the parameter that is wrong.
    /// `None` for a query nothing can match (`managed_by` and `type` that disagree).
    pub fn parse(params: Params<'_>) -> Result<Option<Self>, Failure> {
        let managed_by = provenance("managed_by", params.managed_by, "composio", "project")?;
        let kind = provenance("type", params.kind, "native", "custom")?;
        let sort = match blank(params.sort_by) {
            None | Some("usage") => Sort::Usage,
            Some("alphabetically") => Sort::Alphabetically,
            Some(_) => return Err(Failure::invalid("sort_by", "must be usage or alphabetically")),
        };
        let include_deprecated = match blank(params.include_deprecated) {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(Failure::invalid("include_deprecated", "must be true or false")),
        };
        let category = crate::composio::paging::search("category", params.category)?.map(|c| c.trim().to_owned());
        let search = crate::composio::paging::search("search", params.search)?.map(|s| s.trim().to_lowercase());
        Ok(narrower(managed_by, kind).map(|provenance| Self { category, provenance, sort, search, include_deprecated }))
    }

    fn matches(&self, entry: &CatalogEntry) -> bool {
        let provenance = self.provenance != Provenance::Project;
        let category =
            self.category.as_deref().is_none_or(|c| entry.categories.iter().any(|id| categories::matches(id, c)));
        let search = self.search.as_deref().is_none_or(|s| {
            [&entry.name, &entry.slug, &entry.description].iter().any(|text| text.to_lowercase().contains(s))
        });
        provenance && category && search
    }

    /// The entries asked for, in the order asked for.
    pub fn select<'a>(&self, entries: &'a [CatalogEntry]) -> Vec<&'a CatalogEntry> {
        let mut found: Vec<&CatalogEntry> = entries.iter().filter(|e| self.matches(e)).collect();
        if self.sort == Sort::Alphabetically {
            found.sort_by_cached_key(|e| e.name.to_lowercase());
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn query(params: Params<'_>) -> ToolkitQuery {
        ToolkitQuery::parse(params).unwrap().unwrap()
    }

    fn slugs(params: Params<'_>) -> Vec<String> {
        query(params).select(Catalog::get().all()).into_iter().map(|e| e.slug.clone()).collect()
    }

    #[test]
    fn no_filter_lists_the_whole_catalog_in_its_order() {
        let all: Vec<String> = Catalog::get().all().iter().map(|e| e.slug.clone()).collect();
        assert_eq!(slugs(Params::default()), all);
        assert_eq!(slugs(Params { managed_by: Some("composio"), ..Default::default() }), all);
        assert_eq!(slugs(Params { kind: Some("native"), include_deprecated: Some("true"), ..Default::default() }), all);
    }

    #[test]
    fn a_category_matches_by_id_or_name_ignoring_case() {
        let by_id = slugs(Params { category: Some("developer-tools".into()), ..Default::default() });
        assert!(by_id.contains(&"github".to_owned()) && by_id.contains(&"gitlab".to_owned()), "{by_id:?}");
        assert!(!by_id.contains(&"gmail".to_owned()));
        assert_eq!(slugs(Params { category: Some("Developer Tools".into()), ..Default::default() }), by_id);
        assert_eq!(slugs(Params { category: Some("DEVELOPER-TOOLS".into()), ..Default::default() }), by_id);
        assert!(slugs(Params { category: Some("no-such-category".into()), ..Default::default() }).is_empty());
    }

    #[test]
    fn search_looks_in_name_slug_and_description() {
        assert_eq!(slugs(Params { search: Some("GitHub".into()), ..Default::default() }), ["github"]);
        assert_eq!(slugs(Params { search: Some("gcalendar".into()), ..Default::default() }), ["gcalendar"]);
        let by_description = slugs(Params { search: Some("pull requests".into()), ..Default::default() });
        assert!(by_description.contains(&"github".to_owned()), "{by_description:?}");
        assert_eq!(slugs(Params { search: Some("  ".into()), ..Default::default() }).len(), Catalog::get().all().len());
    }

    #[test]
    fn project_toolkits_are_none_and_disagreeing_provenances_ask_for_nothing() {
        assert!(slugs(Params { managed_by: Some("project"), ..Default::default() }).is_empty());
        assert!(slugs(Params { kind: Some("custom"), ..Default::default() }).is_empty());
        let disagree = Params { managed_by: Some("composio"), kind: Some("custom"), ..Default::default() };
        assert_eq!(ToolkitQuery::parse(disagree).unwrap(), None);
    }

    #[test]
    fn alphabetical_order_is_by_name_ignoring_case() {
        let names: Vec<String> = query(Params { sort_by: Some("alphabetically"), ..Default::default() })
            .select(Catalog::get().all())
            .into_iter()
            .map(|e| e.name.to_lowercase())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        // The catalog's own order is not alphabetical, so `usage` keeps a different one.
        let usage: Vec<String> = Catalog::get().all().iter().map(|e| e.name.to_lowercase()).collect();
        assert_ne!(usage, sorted);
    }

    #[test]
    fn a_bad_value_is_refused_naming_its_parameter() {
        let refused = |params: Params<'_>| format!("{:?}", ToolkitQuery::parse(params).unwrap_err());
        assert!(refused(Params { managed_by: Some("me"), ..Default::default() }).contains("managed_by"));
        assert!(refused(Params { kind: Some("local"), ..Default::default() }).contains("type"));
        assert!(refused(Params { sort_by: Some("popularity"), ..Default::default() }).contains("sort_by"));
        assert!(
            refused(Params { include_deprecated: Some("yes"), ..Default::default() }).contains("include_deprecated")
        );
    }
}
