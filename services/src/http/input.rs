//! The field limits of `domain::limits`, applied where a surface reads a field that no
//! domain type parses (a platform name, a list of scopes, a query filter): one helper for
//! every surface, answering a `Problem` that names the field, which each surface renders in
//! its own format.

use super::problem::{Issue, Location, Problem};
use domain::limits;

/// A single-line field of at most `max_chars` characters, without control characters.
pub fn line(location: Location, raw: &str, max_chars: usize) -> Result<(), Problem> {
    limits::check_line(raw, max_chars).map_err(|reason| Problem::invalid(location, Issue::Rule, reason))
}

/// A list of single-line items: at most `max_items`, each at most `max_chars` characters.
/// An item at fault is named by its index (`scopes.3`).
pub fn list<S: AsRef<str>>(location: Location, items: &[S], max_items: usize, max_chars: usize) -> Result<(), Problem> {
    limits::check_list(items, max_items, max_chars).map_err(|(index, reason)| {
        let location = match (location, index) {
            (Location::Body(mut path), Some(i)) => {
                path.push(i.to_string());
                Location::Body(path)
            }
            (location, _) => location,
        };
        Problem::invalid(location, Issue::Rule, reason)
    })
}

/// A query parameter or path segment used to look something up or filter.
pub fn param(location: Location, raw: &str) -> Result<(), Problem> {
    line(location, raw, limits::PARAM_CHARS)
}

/// A comma-separated query parameter (`user_ids=a,b`) as its items, without empty ones:
/// at most [`limits::LIST_ITEMS`], each at most [`limits::PARAM_CHARS`] characters.
pub fn param_list(name: &str, raw: Option<&str>) -> Result<Vec<String>, Problem> {
    let items: Vec<String> = raw
        .map(|r| r.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    list(Location::Query(name.to_owned()), &items, limits::LIST_ITEMS, limits::PARAM_CHARS)?;
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_at_fault_is_named_by_its_index() {
        let err = list(Location::Body(vec!["scopes".into()]), &["a", "b\0"], 10, 10).unwrap_err();
        assert_eq!(err.location, Some(Location::Body(vec!["scopes".into(), "1".into()])));
        assert_eq!(err.message, "must not contain NUL characters");
    }

    #[test]
    fn a_list_parameter_is_bounded() {
        assert_eq!(param_list("ids", Some("a, b,,c")).unwrap(), vec!["a", "b", "c"]);
        let many = vec!["x"; limits::LIST_ITEMS + 1].join(",");
        assert!(param_list("ids", Some(&many)).is_err());
        assert!(param_list("ids", Some(&"x".repeat(limits::PARAM_CHARS + 1))).is_err());
    }
}
