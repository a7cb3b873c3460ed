//! Klavis's wire shapes to the shared services' types and back. Rules live in the domain and
//! the catalog; this maps names, shapes and URLs.

use super::error::KlavisError;
use super::wire::{AuthDataInput, ConnectionType as WireConnection, GetInstanceResponse};
use crate::catalog::{AuthKind, Catalog, CatalogEntry};
use crate::http::input;
use crate::http::problem::{Issue, Location, Problem};
use crate::instance::{AuthInput, ConnectionRecord, SlotRef};
use domain::instance::UserId;
use domain::limits;
use events::InstanceId;
use events::instance::{AuthMethod, ConnectionType, ServerRef};
use secrecy::{ExposeSecret, SecretString};

type Checked<T> = Result<T, KlavisError>;

/// The catalog entry a `serverName` names, in any accepted spelling; else a 422 listing the
/// names, as pydantic lists an enum's values.
pub fn server(location: Location, raw: &str) -> Checked<&'static CatalogEntry> {
    // Bounded before the lookup: an unknown name is echoed in the error.
    input::line(location.clone(), raw, limits::NAME_CHARS)?;
    Catalog::get().find(raw).ok_or_else(|| {
        let names: Vec<String> = Catalog::get().all().iter().map(|e| format!("`{}`", e.name)).collect();
        let (last, rest) = names.split_last().expect("the catalog is not empty");
        let mut problem =
            Problem::invalid(location, Issue::UnknownVariant, "is not a known MCP server").with_input(Some(raw.into()));
        problem.expected = Some(format!("{} or {last}", rest.join(", ")));
        problem.into()
    })
}

pub fn user_id(location: Location, raw: &str) -> Checked<UserId> {
    UserId::parse(raw)
        .map_err(|reason| Problem::invalid(location, Issue::Rule, reason).with_input(Some(raw.into())).into())
}

/// An instance id, or a 422 like FastAPI's for a malformed UUID.
pub fn instance_id(location: Location, raw: &str) -> Checked<InstanceId> {
    raw.parse().map_err(|_| {
        let mut problem = Problem::invalid(location, Issue::WrongType, "must be a UUID").with_input(Some(raw.into()));
        problem.expected = Some("a UUID".into());
        problem.into()
    })
}

/// `platformName`: a name (one line, at most 128 characters); empty means none.
pub fn platform(raw: Option<String>) -> Checked<Option<String>> {
    let Some(name) = raw.filter(|p| !p.is_empty()) else { return Ok(None) };
    input::line(Location::Body(vec!["platformName".into()]), &name, limits::NAME_CHARS)?;
    Ok(Some(name))
}

/// A white-label `account_id` (one line, at most 256 characters); blank means none.
pub fn account_id(raw: Option<String>) -> Checked<Option<String>> {
    let Some(id) = raw.filter(|a| !a.trim().is_empty()) else { return Ok(None) };
    input::line(Location::Body(vec!["account_id".into()]), &id, limits::ID_CHARS)?;
    Ok(Some(id))
}

/// White-label `scopes`: at most 100, each one line of at most 256 characters.
pub fn scopes(raw: Option<Vec<String>>) -> Checked<Option<Vec<String>>> {
    if let Some(scopes) = &raw {
        input::list(Location::Body(vec!["scopes".into()]), scopes, limits::LIST_ITEMS, limits::ID_CHARS)?;
    }
    Ok(raw)
}

pub fn slot(entry: &CatalogEntry, user: UserId) -> SlotRef {
    SlotRef { server: ServerRef::Catalog { slug: entry.slug.clone() }, server_name: entry.name.clone(), user }
}

pub fn connection_type(wire: Option<WireConnection>) -> ConnectionType {
    match wire.unwrap_or_default() {
        WireConnection::Sse => ConnectionType::Sse,
        WireConnection::StreamableHttp => ConnectionType::StreamableHttp,
    }
}

/// The MCP URL an MCP client uses: the instance id in it is the credential.
pub fn server_url(public_url: &str, connection: ConnectionType, instance_id: &str) -> String {
    match connection {
        ConnectionType::StreamableHttp => format!("{public_url}/mcp/?instance_id={instance_id}"),
        ConnectionType::Sse => format!("{public_url}/sse?instance_id={instance_id}"),
    }
}

/// Where a user authorizes an OAuth server; none for servers that need no OAuth.
/// `authData` as a credential: `{token}` and/or `{api_key}`, or `{data: {...}}`.
pub fn auth_input(auth: AuthDataInput) -> Checked<AuthInput> {
    let at = |field: &str| Location::Body(vec!["authData".into(), field.into()]);
    match (auth.token, auth.api_key, auth.data) {
        (None, None, Some(data)) => Ok(AuthInput { method: AuthMethod::Data, data: data.0 }),
        (token, api_key, None) if token.is_some() || api_key.is_some() => {
            let mut object = serde_json::Map::new();
            if let Some(token) = &token {
                object.insert("token".into(), token.0.expose_secret().into());
            }
            if let Some(api_key) = &api_key {
                object.insert("api_key".into(), api_key.0.expose_secret().into());
            }
            let method = if api_key.is_some() { AuthMethod::ApiKey } else { AuthMethod::Token };
            Ok(AuthInput { method, data: SecretString::from(serde_json::Value::Object(object).to_string()) })
        }
        (_, _, Some(_)) => {
            Err(Problem::invalid(at("data"), Issue::Rule, "give either token/api_key or data, not both").into())
        }
        _ => Err(Problem::invalid(Location::Body(vec!["authData".into()]), Issue::Missing, "field required").into()),
    }
}

/// The token form the old `set-auth-token` endpoint took.
pub fn token_input(token: SecretString) -> AuthInput {
    let object = serde_json::json!({ "token": token.expose_secret() });
    AuthInput { method: AuthMethod::Token, data: SecretString::from(object.to_string()) }
}

pub fn instance(record: &ConnectionRecord, public_url: &str) -> GetInstanceResponse {
    let entry = catalog_entry_of(record);
    let id = record.instance_id.map(|id| id.to_string());
    GetInstanceResponse {
        oauth_url: entry.zip(id.as_deref()).and_then(|(e, id)| e.oauth_url(public_url, id)),
        instance_id: id,
        auth_needed: entry.is_some_and(|e| e.auth != AuthKind::None),
        is_authenticated: record.is_authenticated(),
        server_name: record.server_name.clone(),
        platform: record.platform.clone().unwrap_or_default(),
        external_user_id: record.user_id.clone(),
    }
}

pub fn catalog_entry_of(record: &ConnectionRecord) -> Option<&'static CatalogEntry> {
    record.server_key.strip_prefix("catalog:").and_then(|slug| Catalog::get().by_slug(slug))
}

pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
