//! Composio's two paginations: cursors (auth configs, connected accounts; the cursor is
//! base64 of `"<page>-<limit>"`) and page numbers (MCP servers and instances).

use super::error::Failure;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The last page number asked for: with a limit of at most 1000, its offset fits an i64.
const MAX_PAGE: i64 = i32::MAX as i64;

/// One page to read: 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: i64,
    pub limit: i64,
}

impl Page {
    pub fn offset(self) -> i64 {
        (self.number - 1) * self.limit
    }

    /// How many pages `total` items fill (at least one, as Composio answers for none).
    pub fn total_pages(self, total: i64) -> i64 {
        ((total + self.limit - 1) / self.limit).max(1)
    }

    /// The cursor of the next page, if there is one.
    pub fn next_cursor(self, total: i64) -> Option<String> {
        (self.number < self.total_pages(total)).then(|| STANDARD.encode(format!("{}-{}", self.number + 1, self.limit)))
    }
}

/// A count parameter: a positive whole number (the Python client may send `20.0`).
fn count(name: &str, raw: Option<&str>, default: i64, max: i64) -> Result<i64, Failure> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else { return Ok(default) };
    let value = raw.parse::<f64>().ok().filter(|v| v.fract() == 0.0 && *v >= 1.0 && *v <= max as f64);
    value.map(|v| v as i64).ok_or_else(|| Failure::invalid(name, format!("must be a whole number from 1 to {max}")))
}

/// The page a `cursor` and `limit` ask for.
pub fn by_cursor(
    cursor: Option<&str>,
    limit: Option<&str>,
    default_limit: i64,
    max_limit: i64,
) -> Result<Page, Failure> {
    let limit_given = limit.is_some_and(|l| !l.trim().is_empty());
    let limit = count("limit", limit, default_limit, max_limit)?;
    let Some(cursor) = cursor.map(str::trim).filter(|c| !c.is_empty()) else { return Ok(Page { number: 1, limit }) };
    let decoded = STANDARD.decode(cursor).ok().and_then(|b| String::from_utf8(b).ok());
    let parts = decoded.as_deref().and_then(|d| d.split_once('-'));
    let parsed = parts.and_then(|(p, l)| Some((p.parse::<i64>().ok()?, l.parse::<i64>().ok()?)));
    match parsed {
        // Page numbers are bounded as `page_no` is, so that the offset cannot overflow.
        Some((number, cursor_limit)) if (1..=MAX_PAGE).contains(&number) && (1..=max_limit).contains(&cursor_limit) => {
            Ok(Page { number, limit: if limit_given { limit } else { cursor_limit } })
        }
        _ => Err(Failure::invalid("cursor", "is not a cursor this service handed out")),
    }
}

/// The page a `page_no` and `limit` ask for.
pub fn by_number(
    page_no: Option<&str>,
    limit: Option<&str>,
    default_limit: i64,
    max_limit: i64,
) -> Result<Page, Failure> {
    Ok(Page {
        number: count("page_no", page_no, 1, MAX_PAGE)?,
        limit: count("limit", limit, default_limit, max_limit)?,
    })
}

/// A list order: `order_by` (`created_at` or `updated_at`) and `order_direction`.
pub struct Order {
    pub by_updated: bool,
    pub ascending: bool,
}

pub fn order(order_by: Option<&str>, direction: Option<&str>, default_updated: bool) -> Result<Order, Failure> {
    let by_updated = match order_by.map(str::trim) {
        None | Some("") => default_updated,
        Some("created_at") => false,
        Some("updated_at") => true,
        Some(_) => return Err(Failure::invalid("order_by", "must be created_at or updated_at")),
    };
    let ascending = match direction.map(str::trim) {
        None | Some("") | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return Err(Failure::invalid("order_direction", "must be asc or desc")),
    };
    Ok(Order { by_updated, ascending })
}

/// A comma-separated list parameter (`user_ids=a,b`), without empty items, bounded
/// (`crate::http::input::param_list`).
pub fn list(name: &str, raw: Option<&str>) -> Result<Vec<String>, Failure> {
    crate::http::input::param_list(name, raw).map_err(Failure::from)
}

/// A free-text filter (`search`, `name`): blank means none; at most 256 characters.
pub fn search(name: &str, raw: Option<String>) -> Result<Option<String>, Failure> {
    let Some(text) = raw.filter(|s| !s.trim().is_empty()) else { return Ok(None) };
    crate::http::input::param(crate::http::problem::Location::Query(name.to_owned()), &text)?;
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_base64_of_page_and_limit() {
        let first = by_cursor(None, None, 20, 1000).unwrap();
        assert_eq!(first, Page { number: 1, limit: 20 });
        assert_eq!(first.next_cursor(45).as_deref(), Some("Mi0yMA=="));
        assert_eq!(by_cursor(Some("Mi0yMA=="), None, 20, 1000).unwrap(), Page { number: 2, limit: 20 });
        assert_eq!(Page { number: 3, limit: 20 }.next_cursor(45), None);
        assert!(by_cursor(Some("nonsense"), None, 20, 1000).is_err());
        assert!(by_cursor(None, Some("0"), 20, 1000).is_err());
        assert_eq!(by_cursor(None, Some("5.0"), 20, 1000).unwrap().limit, 5);
        let huge = STANDARD.encode(format!("{}-20", i64::MAX));
        assert!(by_cursor(Some(&huge), None, 20, 1000).is_err());
    }

    #[test]
    fn pages_count_at_least_one() {
        let page = Page { number: 1, limit: 10 };
        assert_eq!(page.total_pages(0), 1);
        assert_eq!(page.total_pages(10), 1);
        assert_eq!(page.total_pages(11), 2);
    }
}
