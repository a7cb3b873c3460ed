//! Catalog entries in Composio's toolkit shapes. The auth schemes and their fields come from
//! `catalog::schemes`, the one source of them.

use super::wire::{
    AuthConfigDetail, AuthField, Category, DetailCategory, DetailLegacy, DetailMeta, FieldGroup, Fields, LegacyId,
    ManagedAuth, Meta, ProviderDetails, Scopes, ToolkitDetail, ToolkitItem, ToolkitType,
};
use crate::catalog::{self, AuthScheme, CatalogEntry, categories};

/// The catalog's version, in Composio's `YYYYMMDD_NN` form: the day `servers.json` last
/// changed. Bump it with the catalog.
pub const CATALOG_VERSION: &str = "20261204_00";
/// When the catalog last changed, for `meta.created_at` and `updated_at` (Composio's are the
/// toolkit's own dates; the catalog keeps none per entry).
const CATALOG_DATE: &str = "2026-12-04T00:00:00.000Z";

fn schemes(entry: &CatalogEntry) -> Vec<AuthScheme> {
    catalog::auth_schemes(entry)
}

fn managed_modes(schemes: &[AuthScheme]) -> Vec<String> {
    schemes.iter().filter(|s| s.managed).map(|s| s.mode.to_owned()).collect()
}

pub fn item_of(entry: &CatalogEntry) -> ToolkitItem {
    let schemes = schemes(entry);
    ToolkitItem {
        slug: entry.slug.clone(),
        name: entry.name.clone(),
        auth_schemes: schemes.iter().map(|s| s.mode.to_owned()).collect(),
        composio_managed_auth_schemes: managed_modes(&schemes),
        is_local_toolkit: false,
        no_auth: entry.auth == catalog::AuthKind::None,
        deprecated: LegacyId { toolkit_id: entry.id().to_string() },
        meta: Meta {
            created_at: CATALOG_DATE.to_owned(),
            updated_at: CATALOG_DATE.to_owned(),
            description: entry.description.clone(),
            logo: String::new(),
            app_url: None,
            categories: entry
                .categories
                .iter()
                .map(|id| Category { id: id.clone(), name: categories::name_of(id).to_owned() })
                .collect(),
            triggers_count: 0,
            tools_count: 0,
            version: CATALOG_VERSION.to_owned(),
        },
        kind: ToolkitType::Native,
    }
}

fn field_of(field: &catalog::AuthField) -> AuthField {
    AuthField {
        name: field.name.to_owned(),
        display_name: field.display_name.to_owned(),
        kind: "string".to_owned(),
        description: field.description.clone(),
        required: field.required,
        is_secret: field.secret,
        default: field.default.clone(),
    }
}

fn group_of(fields: &[catalog::AuthField]) -> FieldGroup {
    let (required, optional) = AuthScheme::split(fields);
    FieldGroup {
        required: required.into_iter().map(field_of).collect(),
        optional: optional.into_iter().map(field_of).collect(),
    }
}

fn detail_of_scheme(entry: &CatalogEntry, scheme: &AuthScheme) -> AuthConfigDetail {
    let provider = entry.oauth.as_ref().filter(|_| scheme.mode == "OAUTH2");
    AuthConfigDetail {
        mode: scheme.mode.to_owned(),
        name: scheme.display_name.to_owned(),
        fields: Fields {
            auth_config_creation: group_of(&scheme.auth_config_creation),
            connected_account_initiation: group_of(&scheme.connected_account_initiation),
        },
        deprecated_auth_provider_details: provider
            .map(|p| ProviderDetails { authorization_url: p.authorize_url.clone(), token_url: p.token_url.clone() }),
    }
}

pub fn detail_of(entry: &CatalogEntry) -> ToolkitDetail {
    let schemes = schemes(entry);
    let item = item_of(entry);
    ToolkitDetail {
        slug: item.slug,
        name: item.name,
        enabled: true,
        composio_managed_auth_schemes: item.composio_managed_auth_schemes,
        composio_managed_auth: schemes
            .iter()
            .filter(|s| s.managed)
            .map(|s| ManagedAuth { mode: s.mode.to_owned(), scopes: Scopes { available: s.default_scopes.clone() } })
            .collect(),
        is_local_toolkit: false,
        auth_config_details: schemes.iter().map(|s| detail_of_scheme(entry, s)).collect(),
        meta: DetailMeta {
            created_at: item.meta.created_at,
            updated_at: item.meta.updated_at,
            description: item.meta.description,
            logo: item.meta.logo,
            app_url: None,
            categories: item.meta.categories.into_iter().map(|c| DetailCategory { name: c.name, slug: c.id }).collect(),
            triggers_count: 0,
            tools_count: 0,
            version: CATALOG_VERSION.to_owned(),
            available_versions: vec![CATALOG_VERSION.to_owned()],
        },
        deprecated: DetailLegacy { toolkit_id: item.deprecated.toolkit_id, raw_proxy_info_by_auth_schemes: Vec::new() },
        kind: ToolkitType::Native,
    }
}
