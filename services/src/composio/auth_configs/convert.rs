//! Auth configs between Composio's wire shapes and the shared service.

use super::wire::{
    self, AuthConfigType, CreateAuthConfigRequest, CreateType, ProxyConfigInput, ToolAccessConfig,
    UpdateAuthConfigRequest,
};
use crate::auth_config::{AuthConfigChanges, AuthConfigInput, AuthConfigRecord};
use crate::catalog::Catalog;
use crate::composio::error::Failure;
use crate::composio::iso;
use crate::http::input;
use crate::http::problem::Location;
use crate::outbound::check_endpoint;
use domain::auth_config::{check_custom_credentials, parse_name, parse_scheme, parse_toolkit, split_credentials};
use domain::limits;
use domain::project::parse_redirect_target;
use poem_openapi::types::MaybeUndefined;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

/// What a secret credential field shows.
pub const REDACTED: &str = "REDACTED";

/// A path parameter that cannot be an auth config id.
pub fn check_id(raw: &str) -> Result<(), Failure> {
    if crate::ids::is_nanoid("ac_", raw) {
        Ok(())
    } else {
        Err(Failure::invalid("nanoid", "is not an auth config id (ac_ and 12 letters or digits)"))
    }
}

/// The scheme Composio-managed auth uses for a toolkit: the catalog's, as this service's
/// managed auth is the project's white-label app for the provider.
fn managed_scheme(toolkit: &str) -> Result<String, Failure> {
    match Catalog::get().for_toolkit(toolkit).map(|e| e.scheme()) {
        Some(scheme) => Ok(scheme.into()),
        None => Err(Failure::invalid(
            "toolkit.slug",
            "has no managed auth here; create the auth config with type use_custom_auth and authScheme",
        )),
    }
}

fn credentials_object(field: &str, credentials: &SecretString) -> Result<Map<String, Value>, Failure> {
    serde_json::from_str(credentials.expose_secret()).map_err(|_| Failure::invalid(field, "must be an object"))
}

/// The endpoints a custom OAuth config names are called by this service: https only (plain
/// http on loopback when allowed, for local providers), never an IP literal the outbound
/// client refuses, as for white-label apps.
fn check_endpoints(field: &str, public: &Map<String, Value>, allow_loopback_http: bool) -> Result<(), Failure> {
    for name in ["authorization_url", "authorize_url", "token_url"] {
        let Some(value) = public.get(name) else { continue };
        let raw = value.as_str().ok_or_else(|| Failure::invalid(format!("{field}.{name}"), "must be a string"))?;
        check_endpoint("url", raw, allow_loopback_http)
            .map_err(|e| Failure::invalid(format!("{field}.{name}"), e.reason))?;
    }
    Ok(())
}

/// `oauth_redirect_uri` is where the provider sends the browser with the code: an absolute
/// http(s) URL, never `javascript:`, `data:` or `file:`.
fn check_redirect_uri(field: &str, public: &Map<String, Value>) -> Result<(), Failure> {
    let Some(value) = public.get("oauth_redirect_uri") else { return Ok(()) };
    let field = format!("{field}.oauth_redirect_uri");
    let raw = value.as_str().ok_or_else(|| Failure::invalid(&field, "must be a string"))?;
    parse_redirect_target(raw).map(drop).map_err(|reason| Failure::invalid(field, reason))
}

/// The public part of given credentials, checked for a custom config.
fn check_credentials(
    field: &str,
    scheme: &str,
    credentials: Option<&SecretString>,
    allow_loopback_http: bool,
) -> Result<(), Failure> {
    let public = match credentials {
        Some(credentials) => split_credentials(credentials_object(field, credentials)?).0,
        None => Map::new(),
    };
    check_custom_credentials(scheme, &public)
        .map_err(|e| Failure::invalid(format!("{field}.{}", e.field.trim_start_matches("credentials.")), e.reason))?;
    check_endpoints(field, &public, allow_loopback_http)?;
    check_redirect_uri(field, &public)
}

fn proxy_of(field: &str, proxy: ProxyConfigInput) -> Result<(String, Option<SecretString>), Failure> {
    input::line(Location::Body(vec![format!("{field}.proxy_url")]), proxy.proxy_url.trim(), limits::URL_CHARS)?;
    match url::Url::parse(proxy.proxy_url.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            Ok((proxy.proxy_url.trim().to_owned(), proxy.proxy_auth_key.map(|k| k.into_secret())))
        }
        _ => Err(Failure::invalid(format!("{field}.proxy_url"), "must be an absolute http(s) URL")),
    }
}

pub fn input_of(body: CreateAuthConfigRequest, allow_loopback_http: bool) -> Result<AuthConfigInput, Failure> {
    let toolkit = parse_toolkit(&body.toolkit.slug).map_err(|e| Failure::invalid("toolkit.slug", e.reason))?;
    let Some(config) = body.auth_config else {
        return Ok(AuthConfigInput {
            name: default_name(&toolkit),
            auth_scheme: managed_scheme(&toolkit)?,
            managed: true,
            toolkit,
            credentials: None,
            proxy_url: None,
            proxy_auth_key: None,
            restrict_to_following_tools: Vec::new(),
            tools_for_connected_account_creation: Vec::new(),
            tools_available_for_execution: Vec::new(),
        });
    };
    let managed = config.kind == CreateType::UseComposioManagedAuth;
    let auth_scheme = match (config.auth_scheme.as_deref(), managed) {
        (Some(raw), _) => parse_scheme(raw).map_err(|reason| Failure::invalid("auth_config.authScheme", reason))?,
        (None, true) => managed_scheme(&toolkit)?,
        (None, false) => return Err(Failure::invalid("auth_config.authScheme", "field required for use_custom_auth")),
    };
    let credentials = config.credentials.map(|c| c.0);
    if managed {
        if let Some(credentials) = &credentials {
            check_redirect_uri(
                "auth_config.credentials",
                &credentials_object("auth_config.credentials", credentials)?,
            )?;
        }
    } else {
        check_credentials("auth_config.credentials", &auth_scheme, credentials.as_ref(), allow_loopback_http)?;
    }
    let name = match config.name.as_deref() {
        Some(raw) => parse_name(raw).map_err(|e| Failure::invalid("auth_config.name", e.reason))?,
        None => default_name(&toolkit),
    };
    let (proxy_url, proxy_auth_key) = match config.proxy_config {
        Some(proxy) => {
            let (url, key) = proxy_of("auth_config.proxy_config", proxy)?;
            (Some(url), key)
        }
        None => (None, None),
    };
    let access = config.tool_access_config.unwrap_or_default();
    check_tools("auth_config.restrict_to_following_tools", config.restrict_to_following_tools.as_deref())?;
    check_access("auth_config.tool_access_config", &access)?;
    Ok(AuthConfigInput {
        name,
        toolkit,
        managed,
        auth_scheme,
        credentials,
        proxy_url,
        proxy_auth_key,
        restrict_to_following_tools: config.restrict_to_following_tools.unwrap_or_default(),
        tools_for_connected_account_creation: access.tools_for_connected_account_creation.unwrap_or_default(),
        tools_available_for_execution: access.tools_available_for_execution.unwrap_or_default(),
    })
}

/// A list of tool names: at most 500, each one line of at most 256 characters.
fn check_tools(field: &str, tools: Option<&[String]>) -> Result<(), Failure> {
    let Some(tools) = tools else { return Ok(()) };
    Ok(input::list(Location::Body(vec![field.to_owned()]), tools, limits::TOOL_ITEMS, limits::ID_CHARS)?)
}

fn check_access(field: &str, access: &ToolAccessConfig) -> Result<(), Failure> {
    check_tools(
        &format!("{field}.tools_for_connected_account_creation"),
        access.tools_for_connected_account_creation.as_deref(),
    )?;
    check_tools(&format!("{field}.tools_available_for_execution"), access.tools_available_for_execution.as_deref())
}

fn default_name(toolkit: &str) -> String {
    format!("{toolkit} auth config")
}

/// Scopes as Composio takes them: a list, or one comma- or space-separated string.
/// At most 100 scopes, each one line of at most 256 characters.
fn scopes_of(field: &str, raw: Value) -> Result<Value, Failure> {
    let scopes: Vec<String> = match raw {
        Value::String(s) => s.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.into_iter().filter_map(|item| item.as_str().map(str::to_owned)).collect()
        }
        _ => return Err(Failure::invalid(field, "must be a list of strings or a string")),
    };
    input::list(Location::Body(vec![field.to_owned()]), &scopes, limits::LIST_ITEMS, limits::ID_CHARS)?;
    Ok(Value::from(scopes))
}

/// The partial update a `PATCH` asks for. Its `type` must be the auth config's own.
pub fn changes_of(
    current: &AuthConfigRecord,
    body: UpdateAuthConfigRequest,
    allow_loopback_http: bool,
) -> Result<AuthConfigChanges, Failure> {
    let current_type = if current.managed { AuthConfigType::Default } else { AuthConfigType::Custom };
    if body.kind != current_type {
        let expected = if current.managed { "default" } else { "custom" };
        return Err(Failure::invalid("type", format!("must be {expected}, the type of this auth config")));
    }
    check_tools("restrict_to_following_tools", body.restrict_to_following_tools.as_deref())?;
    if let Some(access) = &body.tool_access_config {
        check_access("tool_access_config", access)?;
    }
    let mut changes = AuthConfigChanges {
        name: body.name.as_deref().map(parse_name).transpose().map_err(|e| Failure::invalid("name", e.reason))?,
        restrict_to_following_tools: body.restrict_to_following_tools,
        ..AuthConfigChanges::default()
    };
    if let Some(access) = body.tool_access_config {
        changes.tools_for_connected_account_creation = access.tools_for_connected_account_creation;
        changes.tools_available_for_execution = access.tools_available_for_execution;
    }
    match body.kind {
        AuthConfigType::Default => {
            if body.scopes.is_some() || body.user_scopes.is_some() {
                // A managed config holds no secrets: its credentials are its scopes.
                let mut credentials = current.public_credentials.0.clone();
                if let Some(scopes) = body.scopes {
                    credentials.insert("scopes".into(), scopes_of("scopes", scopes)?);
                }
                if let Some(scopes) = body.user_scopes {
                    credentials.insert("user_scopes".into(), scopes_of("user_scopes", scopes)?);
                }
                changes.credentials = Some(SecretString::from(Value::Object(credentials).to_string()));
            }
        }
        AuthConfigType::Custom => {
            if let Some(credentials) = body.credentials {
                check_credentials("credentials", &current.auth_scheme, Some(&credentials.0), allow_loopback_http)?;
                changes.credentials = Some(credentials.0);
            }
            changes.proxy = match body.proxy_config {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(proxy) => Some(Some(proxy_of("proxy_config", proxy)?)),
            };
        }
    }
    Ok(changes)
}

pub fn created(record: &AuthConfigRecord) -> wire::AuthConfigCreated {
    wire::AuthConfigCreated {
        toolkit: wire::ToolkitRef { slug: record.toolkit.clone() },
        auth_config: wire::CreatedAuthConfigDetail {
            id: record.auth_config_id.clone(),
            auth_scheme: record.auth_scheme.clone(),
            is_composio_managed: record.managed,
            restrict_to_following_tools: record.restrict_to_following_tools.clone(),
        },
    }
}

/// A stable UUID for an auth config id (Composio's backward-compatible `uuid`).
fn uuid_of(id: &str) -> uuid::Uuid {
    const AUTH_CONFIG_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6d63_7070_6163_6667_8000_0000_0000_0005);
    uuid::Uuid::new_v5(&AUTH_CONFIG_NAMESPACE, id.as_bytes())
}

pub fn auth_config_of(record: AuthConfigRecord) -> wire::AuthConfig {
    let mut credentials = record.public_credentials.0;
    for field in record.secret_fields {
        credentials.insert(field, Value::from(REDACTED));
    }
    wire::AuthConfig {
        uuid: uuid_of(&record.auth_config_id).to_string(),
        id: record.auth_config_id,
        kind: if record.managed { AuthConfigType::Default } else { AuthConfigType::Custom },
        toolkit: wire::Toolkit { slug: record.toolkit, logo: String::new() },
        name: record.name,
        auth_scheme: record.auth_scheme,
        is_composio_managed: record.managed,
        credentials: Value::Object(credentials),
        proxy_config: record.proxy_url.map(|proxy_url| wire::ProxyConfig {
            proxy_url,
            proxy_auth_key: record.has_proxy_auth_key.then(|| REDACTED.to_owned()),
        }),
        status: if record.enabled { "ENABLED" } else { "DISABLED" }.to_owned(),
        created_at: iso(record.created_at),
        last_updated_at: iso(record.updated_at),
        no_of_connections: record.no_of_connections,
        expected_input_fields: Vec::new(),
        tool_access_config: wire::ToolAccess {
            tools_for_connected_account_creation: record.tools_for_connected_account_creation,
            tools_available_for_execution: record.tools_available_for_execution,
        },
        restrict_to_following_tools: record.restrict_to_following_tools,
    }
}

/// `is_composio_managed` as a query parameter: `true` or `false`.
pub fn managed_filter(raw: Option<&str>) -> Result<Option<bool>, Failure> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(Failure::invalid("is_composio_managed", "must be true or false")),
    }
}
