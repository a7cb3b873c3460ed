//! GAIA's wire shapes to the domain's parsed types, and stored servers back to GAIA's shape.
//! Every rule lives in the domain; this only maps names and shapes.

use super::wire::{
    ConnectionType as WireConnection, CreateServerRequest, CustomHeaderInput, GaiaServer, MaskedHeader, TransportType,
    UpdateServerRequest,
};
use crate::http::secret_input::{MASK, SecretInput};
use crate::server::ServerRecord;
use domain::Patch;
use domain::server::{
    AbsoluteUrl, EnvName, FieldError, Header, HeaderName, ServerField, ServerName, ServerPatch, ServerSpec, Text,
    TimeoutMs, check_header_value,
};
use events::server::{ConnectionType, Transport};
use poem_openapi::types::MaybeUndefined;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;

/// GAIA's name for each field, used in error messages.
pub fn wire_name(field: ServerField) -> &'static str {
    match field {
        ServerField::Name => "name",
        ServerField::Description => "description",
        ServerField::Transport => "transportType",
        ServerField::Url => "url",
        ServerField::Connection => "connectionType",
        ServerField::Command => "command",
        ServerField::Args => "args",
        ServerField::Env => "env",
        ServerField::CustomHeaders => "customHeaders",
        ServerField::OauthClientId => "oauthClientId",
        ServerField::OauthClientSecret => "oauthClientSecret",
        ServerField::OauthScope => "oauthScope",
        ServerField::ProxyUrl => "proxyUrl",
        ServerField::ProxyAuthToken => "proxyAuthToken",
        ServerField::ProxyAuthHeader => "proxyAuthHeader",
        ServerField::RequestTimeout => "requestTimeout",
        ServerField::MaxTotalTimeout => "maxTotalTimeout",
        ServerField::AuthConfigIds => "authConfigIds",
        ServerField::AllowedTools => "allowedTools",
        ServerField::Toolkits => "toolkits",
        ServerField::NoAuthApps => "noAuthApps",
        ServerField::ManagedAuth => "managedAuthViaComposio",
    }
}

fn transport(t: TransportType) -> Transport {
    match t {
        TransportType::Stdio => Transport::Stdio,
        TransportType::Http | TransportType::StreamableHttp => Transport::Http,
        TransportType::Sse => Transport::Sse,
    }
}

fn connection(c: WireConnection) -> ConnectionType {
    match c {
        WireConnection::Direct => ConnectionType::Direct,
        WireConnection::Proxy => ConnectionType::Proxy,
    }
}

/// GAIA's forms send `""` for fields they leave empty; an empty value means "none".
fn non_empty(raw: Option<String>) -> Option<String> {
    raw.filter(|s| !s.trim().is_empty())
}

fn text(field: ServerField, raw: Option<String>) -> Result<Option<Text>, FieldError> {
    non_empty(raw).map(|s| Text::parse(field, &s)).transpose()
}

fn url(field: ServerField, raw: Option<String>) -> Result<Option<AbsoluteUrl>, FieldError> {
    non_empty(raw).map(|s| AbsoluteUrl::parse(field, &s)).transpose()
}

fn timeout(field: ServerField, raw: Option<i64>) -> Result<Option<TimeoutMs>, FieldError> {
    raw.map(|ms| TimeoutMs::parse(field, ms)).transpose()
}

fn header_name(field: ServerField, raw: Option<String>) -> Result<Option<HeaderName>, FieldError> {
    non_empty(raw).map(|s| HeaderName::parse(field, s.trim())).transpose()
}

fn secret(raw: Option<SecretInput>) -> Option<SecretString> {
    raw.map(SecretInput::into_secret).filter(|s| !s.expose_secret().is_empty())
}

fn env(raw: BTreeMap<String, SecretInput>) -> Result<BTreeMap<EnvName, SecretString>, FieldError> {
    raw.into_iter().map(|(name, value)| Ok((EnvName::parse(&name)?, value.into_secret()))).collect()
}

fn headers(raw: Vec<CustomHeaderInput>) -> Result<Vec<Header<SecretString>>, FieldError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, h)| {
            let at = |e: FieldError, part: &str| e.at(part).at(i);
            // `name`, else `key`: an empty `name` beside a `key` falls back to the key.
            let name = non_empty(h.name)
                .or(non_empty(h.key))
                .ok_or_else(|| at(FieldError::new(ServerField::CustomHeaders, "field required"), "name"))?;
            let name = HeaderName::parse(ServerField::CustomHeaders, name.trim()).map_err(|e| at(e, "name"))?;
            let value = h.value.into_secret();
            check_header_value(value.expose_secret())
                .map_err(|reason| at(FieldError::new(ServerField::CustomHeaders, reason), "value"))?;
            Ok(Header { name, value, enabled: h.enabled.unwrap_or(true) })
        })
        .collect()
}

/// A create request as a domain spec (the project is checked by the handler).
pub fn spec_of(req: CreateServerRequest) -> Result<ServerSpec<SecretString>, FieldError> {
    Ok(ServerSpec {
        name: ServerName::parse(&req.name)?,
        description: text(ServerField::Description, req.description)?,
        transport: transport(req.transport_type),
        url: url(ServerField::Url, req.url)?,
        connection: req.connection_type.map(connection),
        command: text(ServerField::Command, req.command)?,
        args: text(ServerField::Args, req.args)?,
        env: env(req.env.unwrap_or_default())?,
        custom_headers: headers(req.custom_headers.unwrap_or_default())?,
        oauth_client_id: text(ServerField::OauthClientId, req.oauth_client_id)?,
        oauth_client_secret: secret(req.oauth_client_secret),
        oauth_scope: text(ServerField::OauthScope, req.oauth_scope)?,
        proxy_url: url(ServerField::ProxyUrl, req.proxy_url)?,
        proxy_auth_token: secret(req.proxy_auth_token),
        proxy_auth_header: header_name(ServerField::ProxyAuthHeader, req.proxy_auth_header)?,
        request_timeout: timeout(ServerField::RequestTimeout, req.request_timeout)?,
        max_total_timeout: timeout(ServerField::MaxTotalTimeout, req.max_total_timeout)?,
        composio: Default::default(),
    })
}

/// `null` or `""` clears; a value sets; absence keeps.
fn patch<T>(
    raw: MaybeUndefined<String>,
    parse: impl FnOnce(&str) -> Result<T, FieldError>,
) -> Result<Patch<T>, FieldError> {
    match raw {
        MaybeUndefined::Undefined => Ok(Patch::Keep),
        MaybeUndefined::Null => Ok(Patch::Clear),
        MaybeUndefined::Value(s) if s.trim().is_empty() => Ok(Patch::Clear),
        MaybeUndefined::Value(s) => parse(&s).map(Patch::Set),
    }
}

fn patch_secret(raw: MaybeUndefined<SecretInput>) -> Patch<SecretString> {
    match raw {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Value(s) => secret(Some(s)).map_or(Patch::Clear, Patch::Set),
    }
}

/// Maps and lists are replaced whole; `null` empties them.
fn patch_whole<W, T>(
    raw: MaybeUndefined<W>,
    convert: impl FnOnce(W) -> Result<T, FieldError>,
    empty: T,
) -> Result<Option<T>, FieldError> {
    match raw {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(empty)),
        MaybeUndefined::Value(v) => convert(v).map(Some),
    }
}

pub fn patch_of(req: UpdateServerRequest) -> Result<ServerPatch<SecretString>, FieldError> {
    use ServerField as F;
    Ok(ServerPatch {
        name: req.name.map(|n| ServerName::parse(&n)).transpose()?,
        description: patch(req.description, |s| Text::parse(F::Description, s))?,
        transport: req.transport_type.map(transport),
        url: patch(req.url, |s| AbsoluteUrl::parse(F::Url, s))?,
        connection: req.connection_type.map(connection),
        command: patch(req.command, |s| Text::parse(F::Command, s))?,
        args: patch(req.args, |s| Text::parse(F::Args, s))?,
        env: patch_whole(req.env, env, BTreeMap::new())?,
        custom_headers: patch_whole(req.custom_headers, headers, Vec::new())?,
        oauth_client_id: patch(req.oauth_client_id, |s| Text::parse(F::OauthClientId, s))?,
        oauth_client_secret: patch_secret(req.oauth_client_secret),
        oauth_scope: patch(req.oauth_scope, |s| Text::parse(F::OauthScope, s))?,
        proxy_url: patch(req.proxy_url, |s| AbsoluteUrl::parse(F::ProxyUrl, s))?,
        proxy_auth_token: patch_secret(req.proxy_auth_token),
        proxy_auth_header: header_name(F::ProxyAuthHeader, req.proxy_auth_header)?,
        request_timeout: timeout(F::RequestTimeout, req.request_timeout)?,
        max_total_timeout: timeout(F::MaxTotalTimeout, req.max_total_timeout)?,
        ..ServerPatch::default()
    })
}

fn masked(is_set: bool) -> Option<String> {
    is_set.then(|| MASK.to_owned())
}

/// Where the gateway serves a registered server: `http` and `sse` servers only (the gateway
/// runs no `stdio` server).
pub fn gateway_url(public_url: &str, r: &ServerRecord) -> Option<String> {
    (r.transport != Transport::Stdio.as_str()).then(|| format!("{public_url}/api/mcp/servers/{}/mcp", r.server_id))
}

/// A stored server in GAIA's shape, secrets masked.
pub fn server_of(r: ServerRecord, public_url: &str) -> GaiaServer {
    GaiaServer {
        gateway_url: gateway_url(public_url, &r),
        id: r.server_id.to_string(),
        project_id: r.project_id.to_string(),
        name: r.name,
        description: r.description,
        transport_type: r.transport,
        url: r.url,
        connection_type: r.connection,
        command: r.command,
        args: r.args,
        env: r.env_names.into_iter().map(|name| (name, MASK.to_owned())).collect(),
        custom_headers: r
            .custom_headers
            .0
            .into_iter()
            .map(|h| MaskedHeader { name: h.name, value: MASK.to_owned(), enabled: h.enabled })
            .collect(),
        oauth_client_id: r.oauth_client_id,
        oauth_client_secret: masked(r.has_oauth_client_secret),
        has_oauth_client_secret: r.has_oauth_client_secret,
        oauth_scope: r.oauth_scope,
        proxy_url: r.proxy_url,
        proxy_auth_token: masked(r.has_proxy_auth_token),
        has_proxy_auth_token: r.has_proxy_auth_token,
        proxy_auth_header: r.proxy_auth_header,
        request_timeout: r.request_timeout_ms,
        max_total_timeout: r.max_total_timeout_ms,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}
