//! Connected accounts between Composio's wire shapes and the shared service.

use super::wire;
use crate::composio::error::Failure;
use crate::composio::iso;
use crate::connected_account::{AccountRecord, ConnectionState, CredentialPatch, Initiated};
use crate::http::problem::Location;
use domain::Patch;
use domain::auth_config::parse_scheme;
use domain::connected_account::{Status, UPDATABLE_SCHEMES};
use domain::instance::UserId;
use serde_json::{Value, json};

/// An alias is a name: as long as other names.
const ALIAS_CHARS: usize = domain::limits::NAME_CHARS;

const STATUSES: [Status; 7] = [
    Status::Initializing,
    Status::Initiated,
    Status::Active,
    Status::Failed,
    Status::Expired,
    Status::Inactive,
    Status::Revoked,
];

pub fn check_id(raw: &str) -> Result<(), Failure> {
    if crate::ids::is_nanoid("ca_", raw) {
        Ok(())
    } else {
        Err(Failure::invalid("nanoid", "is not a connected account id (ca_ and 12 letters or digits)"))
    }
}

pub fn check_auth_config_id(field: &str, raw: &str) -> Result<(), Failure> {
    if crate::ids::is_nanoid("ac_", raw) {
        Ok(())
    } else {
        Err(Failure::invalid(field, "is not an auth config id (ac_ and 12 letters or digits)"))
    }
}

pub fn user_of(field: &str, raw: &str) -> Result<UserId, Failure> {
    UserId::parse(raw).map_err(|reason| Failure::invalid(field, reason))
}

pub fn callback_of(field: &str, raw: Option<String>) -> Result<Option<String>, Failure> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else { return Ok(None) };
    crate::http::input::line(Location::Body(vec![field.to_owned()]), raw.trim(), domain::limits::URL_CHARS)?;
    match url::Url::parse(raw.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            Ok(Some(raw.trim().to_owned()))
        }
        _ => Err(Failure::invalid(field, "must be an absolute http(s) URL")),
    }
}

/// An alias of a create or link: one line of at most 128 characters; empty means none.
pub fn alias_of(field: &str, raw: Option<String>) -> Result<Option<String>, Failure> {
    match alias_patch_of(field, raw)? {
        Patch::Set(alias) => Ok(Some(alias)),
        Patch::Keep | Patch::Clear => Ok(None),
    }
}

/// The alias of an update: absent keeps it, `""` clears it (Composio's rule), else sets it.
pub fn alias_patch_of(field: &str, raw: Option<String>) -> Result<Patch<String>, Failure> {
    let Some(raw) = raw else { return Ok(Patch::Keep) };
    let alias = raw.trim();
    if alias.is_empty() {
        return Ok(Patch::Clear);
    }
    crate::http::input::line(Location::Body(field.split('.').map(str::to_owned).collect()), alias, ALIAS_CHARS)?;
    Ok(Patch::Set(alias.to_owned()))
}

/// The credential part of an update.
pub fn credential_patch_of(
    connection: Option<wire::UpdateConnectionInput>,
) -> Result<Option<CredentialPatch>, Failure> {
    let Some(state) = connection.map(|c| c.state) else { return Ok(None) };
    let auth_scheme = state.auth_scheme.trim().to_ascii_uppercase();
    if !UPDATABLE_SCHEMES.contains(&auth_scheme.as_str()) {
        return Err(Failure::invalid(
            "connection.state.authScheme",
            format!("must be one of {}", UPDATABLE_SCHEMES.join(", ")),
        ));
    }
    Ok(Some(CredentialPatch { auth_scheme, fields: state.val.0 }))
}

pub fn state_of(state: Option<wire::ConnectionStateInput>) -> Result<Option<ConnectionState>, Failure> {
    let Some(state) = state else { return Ok(None) };
    let auth_scheme =
        parse_scheme(&state.auth_scheme).map_err(|reason| Failure::invalid("connection.state.authScheme", reason))?;
    Ok(Some(ConnectionState { auth_scheme, val: state.val.0 }))
}

/// `statuses=ACTIVE,EXPIRED`, each checked.
pub fn statuses_of(raw: Vec<String>) -> Result<Vec<String>, Failure> {
    raw.into_iter()
        .map(|s| {
            let upper = s.to_ascii_uppercase();
            STATUSES.iter().any(|known| known.as_str() == upper).then_some(upper).ok_or_else(|| {
                Failure::invalid(
                    "statuses",
                    format!("{s} is not one of INITIALIZING, INITIATED, ACTIVE, FAILED, EXPIRED, INACTIVE, REVOKED"),
                )
            })
        })
        .collect()
}

fn state(scheme: &str, status: &str) -> Value {
    json!({ "authScheme": scheme, "val": { "status": status } })
}

pub fn account_of(record: AccountRecord) -> wire::Account {
    wire::Account {
        state: state(&record.auth_scheme, &record.status),
        is_disabled: record.status == Status::Inactive.as_str(),
        id: record.connected_account_id,
        toolkit: wire::ToolkitSlug { slug: record.toolkit },
        auth_config: wire::AccountAuthConfig {
            id: record.auth_config_id,
            auth_scheme: record.auth_scheme,
            is_composio_managed: record.auth_config_managed,
            is_disabled: record.auth_config_disabled,
        },
        user_id: record.user_id,
        status: record.status,
        status_reason: record.status_reason,
        data: json!({}),
        params: json!({}),
        created_at: iso(record.created_at),
        updated_at: iso(record.updated_at),
        alias: record.alias,
    }
}

pub fn active(record: &AccountRecord) -> wire::AccountCreated {
    wire::AccountCreated {
        id: record.connected_account_id.clone(),
        connection_data: state(&record.auth_scheme, &record.status),
        status: record.status.clone(),
        redirect_url: None,
        redirect_uri: None,
    }
}

pub fn pending(initiated: &Initiated) -> wire::AccountCreated {
    let account = &initiated.account;
    wire::AccountCreated {
        id: account.connected_account_id.clone(),
        connection_data: json!({
            "authScheme": account.auth_scheme,
            "val": { "status": account.status, "redirectUrl": initiated.redirect_url },
        }),
        status: account.status.clone(),
        redirect_url: Some(initiated.redirect_url.clone()),
        redirect_uri: Some(initiated.redirect_url.clone()),
    }
}

pub fn link(initiated: Initiated) -> wire::LinkCreated {
    wire::LinkCreated {
        expires_at: iso(initiated.expires_at),
        connected_account_id: initiated.account.connected_account_id,
        link_token: initiated.link_token,
        redirect_url: initiated.redirect_url,
    }
}
