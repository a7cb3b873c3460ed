//! `/api/v3/toolkits`: the catalog as Composio's toolkits (the Klavis server names and the
//! Composio toolkit slugs name the same entries). Read-only and the same for every project,
//! but behind the project's key as Composio has it.

mod convert;
mod query;
mod wire;

use super::error::{Code, Failure};
use super::paging;
use super::{Answer, ComposioCaller, ComposioTags};
use crate::catalog::Catalog;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use query::{Params, ToolkitQuery};
use wire::{ToolkitDetail, ToolkitPage};

/// Composio's page size for toolkits ("top 20 by default"), and the largest it allows.
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 1000;

pub struct ToolkitsApi;

fn not_found(slug: &str) -> Failure {
    Failure::new(Code::ToolkitNotFound, format!("Toolkit {slug} not found"))
        .errors(vec![format!("slug: no toolkit {slug}")])
        .fix("List the toolkits with GET /api/v3/toolkits.")
}

/// A slug as `domain::auth_config::parse_toolkit` takes it (1 to 64 of `[a-z0-9_-]`, any case).
fn check_slug(raw: &str) -> Result<String, Failure> {
    domain::auth_config::parse_toolkit(raw).map_err(|e| Failure::invalid("slug", e.reason))
}

#[OpenApi(prefix_path = "/api/v3", tag = "ComposioTags::ComposioToolkits")]
impl ToolkitsApi {
    /// The toolkits (the catalog), in pages of `limit` (20 by default) with a `cursor`.
    #[oai(path = "/toolkits", method = "get", operation_id = "composioListToolkits")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        _caller: ComposioCaller,
        /// A category's id (`developer-tools`) or name (`Developer Tools`).
        category: Query<Option<String>>,
        /// `composio` (the catalog's), `project` (a project's own: none yet) or `all`.
        managed_by: Query<Option<String>>,
        /// `native`, `custom` or `all`: `managed_by` by another name.
        #[oai(name = "type")]
        kind: Query<Option<String>>,
        /// `usage` (the catalog's order: no usage is counted here) or `alphabetically`.
        sort_by: Query<Option<String>>,
        /// No toolkit is deprecated here: changes nothing.
        include_deprecated: Query<Option<String>>,
        /// Part of the name, slug or description, ignoring case.
        search: Query<Option<String>>,
        limit: Query<Option<String>>,
        cursor: Query<Option<String>>,
    ) -> Answer<Json<ToolkitPage>> {
        let page = paging::by_cursor(cursor.0.as_deref(), limit.0.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
        let params = Params {
            category: category.0,
            managed_by: managed_by.0.as_deref(),
            kind: kind.0.as_deref(),
            sort_by: sort_by.0.as_deref(),
            include_deprecated: include_deprecated.0.as_deref(),
            search: search.0,
        };
        let found = match ToolkitQuery::parse(params)? {
            Some(query) => query.select(Catalog::get().all()),
            None => Vec::new(),
        };
        let total = found.len() as i64;
        let items =
            found.into_iter().skip(page.offset() as usize).take(page.limit as usize).map(convert::item_of).collect();
        Ok(Json(ToolkitPage {
            items,
            next_cursor: page.next_cursor(total),
            total_pages: page.total_pages(total),
            current_page: page.number,
            total_items: total,
        }))
    }

    /// One toolkit, with each auth scheme's fields: which an auth config is created with,
    /// which a user's account needs, which are required and which are secret. The slug is
    /// the catalog's (`gcalendar`) or its name without punctuation (`googlecalendar`).
    #[oai(path = "/toolkits/:slug", method = "get", operation_id = "composioGetToolkit")]
    async fn get(
        &self,
        _caller: ComposioCaller,
        slug: Path<String>,
        /// `latest` (the default) or the catalog's version.
        version: Query<Option<String>>,
    ) -> Answer<Json<ToolkitDetail>> {
        let slug = check_slug(&slug.0)?;
        let entry = Catalog::get().for_toolkit(&slug).ok_or_else(|| not_found(&slug))?;
        match version.0.as_deref().map(str::trim) {
            None | Some("") | Some("latest") | Some(convert::CATALOG_VERSION) => Ok(Json(convert::detail_of(entry))),
            Some(other) => Err(not_found(&slug)
                .errors(vec![format!(
                    "version: {slug} has no version {other} (only latest, {})",
                    convert::CATALOG_VERSION
                )])
                .into()),
        }
    }
}
