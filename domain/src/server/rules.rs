//! The rules a server's configuration obeys, whichever surface it came from: defaults,
//! fields that one transport needs, timeouts that fit each other.

use super::field::{FieldError, ServerField};
use super::spec::{Header, ServerPatch, ServerSpec};
use events::SealedSecret;
use events::server::{ConnectionType, CustomHeader, ServerConfig, Transport};
use std::collections::BTreeMap;

/// Defaults of GAIA AI's registry, kept so its clients see the same behaviour.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_MAX_TOTAL_TIMEOUT_MS: u64 = 60_000;
pub const DEFAULT_PROXY_AUTH_HEADER: &str = "Authorization";

fn env_of(env: BTreeMap<super::EnvName, SealedSecret>) -> BTreeMap<String, SealedSecret> {
    env.into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect()
}

fn headers_of(headers: Vec<Header<SealedSecret>>) -> Vec<CustomHeader> {
    headers
        .into_iter()
        .map(|h| CustomHeader { name: h.name.as_str().to_owned(), value: h.value, enabled: h.enabled })
        .collect()
}

fn text(t: Option<super::Text>) -> Option<String> {
    t.map(super::Text::into_string)
}

/// Stands in for a secret when only the shape of a configuration is checked.
fn placeholder<S>(_: S) -> Result<SealedSecret, std::convert::Infallible> {
    Ok(SealedSecret { key_id: uuid::Uuid::nil(), nonce: String::new(), ciphertext: String::new() })
}

/// Checks a registration against every rule without sealing anything, so that a caller can
/// refuse bad input before it creates a data key for it.
pub fn validate_spec<S>(spec: &ServerSpec<S>) -> Result<(), FieldError> {
    let Ok(preview) = spec.as_refs().try_seal(placeholder);
    config_from(preview).map(drop)
}

/// Checks a partial update against the configuration it would change, without sealing.
pub fn validate_patch<S>(current: &ServerConfig, patch: &ServerPatch<S>) -> Result<(), FieldError> {
    let Ok(preview) = patch.as_refs().try_seal(placeholder);
    patched(current, preview).map(drop)
}

/// The configuration a registration results in, defaults applied and rules checked.
pub(crate) fn config_from(spec: ServerSpec<SealedSecret>) -> Result<ServerConfig, FieldError> {
    let request_timeout_ms = spec.request_timeout.map_or(DEFAULT_REQUEST_TIMEOUT_MS, |t| t.get());
    // Without an explicit total, the total is never shorter than one request may take.
    let max_total_timeout_ms =
        spec.max_total_timeout.map_or(DEFAULT_MAX_TOTAL_TIMEOUT_MS.max(request_timeout_ms), |t| t.get());
    let config = ServerConfig {
        name: spec.name.as_str().to_owned(),
        description: text(spec.description),
        transport: spec.transport,
        url: spec.url.map(|u| u.as_str().to_owned()),
        connection: spec.connection.unwrap_or(ConnectionType::Proxy),
        command: text(spec.command),
        args: text(spec.args),
        env: env_of(spec.env),
        custom_headers: headers_of(spec.custom_headers),
        oauth_client_id: text(spec.oauth_client_id),
        oauth_client_secret: spec.oauth_client_secret,
        oauth_scope: text(spec.oauth_scope),
        proxy_url: spec.proxy_url.map(|u| u.as_str().to_owned()),
        proxy_auth_token: spec.proxy_auth_token,
        proxy_auth_header: spec
            .proxy_auth_header
            .map_or_else(|| DEFAULT_PROXY_AUTH_HEADER.to_owned(), |h| h.as_str().to_owned()),
        request_timeout_ms,
        max_total_timeout_ms,
        auth_config_ids: spec.composio.auth_config_ids,
        allowed_tools: spec.composio.allowed_tools,
        toolkits: spec.composio.toolkits,
        no_auth_apps: spec.composio.no_auth_apps,
        managed_auth_via_composio: spec.composio.managed_auth_via_composio,
    };
    check(&config)?;
    Ok(config)
}

/// The configuration a partial update results in, rules checked on the whole result: changing
/// only `transport` to `http` on a server without a URL is refused.
pub(crate) fn patched(current: &ServerConfig, patch: ServerPatch<SealedSecret>) -> Result<ServerConfig, FieldError> {
    let c = current.clone();
    let config = ServerConfig {
        name: patch.name.map_or(c.name, |n| n.as_str().to_owned()),
        description: patch.description.map(super::Text::into_string).apply(c.description),
        transport: patch.transport.unwrap_or(c.transport),
        url: patch.url.map(|u| u.as_str().to_owned()).apply(c.url),
        connection: patch.connection.unwrap_or(c.connection),
        command: patch.command.map(super::Text::into_string).apply(c.command),
        args: patch.args.map(super::Text::into_string).apply(c.args),
        env: patch.env.map_or(c.env, env_of),
        custom_headers: patch.custom_headers.map_or(c.custom_headers, headers_of),
        oauth_client_id: patch.oauth_client_id.map(super::Text::into_string).apply(c.oauth_client_id),
        oauth_client_secret: patch.oauth_client_secret.apply(c.oauth_client_secret),
        oauth_scope: patch.oauth_scope.map(super::Text::into_string).apply(c.oauth_scope),
        proxy_url: patch.proxy_url.map(|u| u.as_str().to_owned()).apply(c.proxy_url),
        proxy_auth_token: patch.proxy_auth_token.apply(c.proxy_auth_token),
        proxy_auth_header: patch.proxy_auth_header.map_or(c.proxy_auth_header, |h| h.as_str().to_owned()),
        request_timeout_ms: patch.request_timeout.map_or(c.request_timeout_ms, |t| t.get()),
        max_total_timeout_ms: patch.max_total_timeout.map_or(c.max_total_timeout_ms, |t| t.get()),
        auth_config_ids: patch.auth_config_ids.unwrap_or(c.auth_config_ids),
        allowed_tools: patch.allowed_tools.unwrap_or(c.allowed_tools),
        toolkits: patch.toolkits.unwrap_or(c.toolkits),
        no_auth_apps: c.no_auth_apps,
        managed_auth_via_composio: patch.managed_auth_via_composio.unwrap_or(c.managed_auth_via_composio),
    };
    check(&config)?;
    Ok(config)
}

/// At most this many env variables, and this many custom headers.
pub const MAX_ENTRIES: usize = 100;

/// Composio's lists: bounded in items and in the length of each, single-line.
fn check_lists(config: &ServerConfig) -> Result<(), FieldError> {
    use crate::limits::{ID_CHARS, LIST_ITEMS, TOOL_ITEMS, check_list};
    let lists = [
        (ServerField::AuthConfigIds, &config.auth_config_ids, LIST_ITEMS),
        (ServerField::AllowedTools, &config.allowed_tools, TOOL_ITEMS),
        (ServerField::NoAuthApps, &config.no_auth_apps, LIST_ITEMS),
        (ServerField::Toolkits, &config.toolkits, LIST_ITEMS),
    ];
    for (field, items, max_items) in lists {
        check_list(items, max_items, ID_CHARS).map_err(|(index, reason)| match index {
            Some(i) => FieldError::new(field, reason).at(i),
            None => FieldError::new(field, reason),
        })?;
    }
    Ok(())
}

/// Rules that involve more than one field, or a whole collection.
fn check(config: &ServerConfig) -> Result<(), FieldError> {
    if config.env.len() > MAX_ENTRIES {
        return Err(FieldError::new(ServerField::Env, format!("must have at most {MAX_ENTRIES} variables")));
    }
    if config.custom_headers.len() > MAX_ENTRIES {
        return Err(FieldError::new(ServerField::CustomHeaders, format!("must have at most {MAX_ENTRIES} headers")));
    }
    check_lists(config)?;
    match config.transport {
        Transport::Http | Transport::Sse if config.url.is_none() => {
            return Err(FieldError::new(
                ServerField::Url,
                format!("is required when the transport is {}", config.transport.as_str()),
            ));
        }
        Transport::Stdio if config.command.is_none() => {
            return Err(FieldError::new(ServerField::Command, "is required when the transport is stdio"));
        }
        _ => {}
    }
    if config.max_total_timeout_ms < config.request_timeout_ms {
        return Err(FieldError::new(
            ServerField::MaxTotalTimeout,
            format!(
                "({} ms) must not be shorter than the request timeout ({} ms)",
                config.max_total_timeout_ms, config.request_timeout_ms
            ),
        ));
    }
    Ok(())
}

/// The fields that differ between two configurations. A secret given again counts as
/// changed: it is sealed anew, and its plaintext is not compared.
pub(crate) fn changed_fields(old: &ServerConfig, new: &ServerConfig) -> Vec<ServerField> {
    use ServerField as F;
    [
        (F::Name, old.name != new.name),
        (F::Description, old.description != new.description),
        (F::Transport, old.transport != new.transport),
        (F::Url, old.url != new.url),
        (F::Connection, old.connection != new.connection),
        (F::Command, old.command != new.command),
        (F::Args, old.args != new.args),
        (F::Env, old.env != new.env),
        (F::CustomHeaders, old.custom_headers != new.custom_headers),
        (F::OauthClientId, old.oauth_client_id != new.oauth_client_id),
        (F::OauthClientSecret, old.oauth_client_secret != new.oauth_client_secret),
        (F::OauthScope, old.oauth_scope != new.oauth_scope),
        (F::ProxyUrl, old.proxy_url != new.proxy_url),
        (F::ProxyAuthToken, old.proxy_auth_token != new.proxy_auth_token),
        (F::ProxyAuthHeader, old.proxy_auth_header != new.proxy_auth_header),
        (F::RequestTimeout, old.request_timeout_ms != new.request_timeout_ms),
        (F::MaxTotalTimeout, old.max_total_timeout_ms != new.max_total_timeout_ms),
        (F::AuthConfigIds, old.auth_config_ids != new.auth_config_ids),
        (F::AllowedTools, old.allowed_tools != new.allowed_tools),
        (F::Toolkits, old.toolkits != new.toolkits),
        (F::NoAuthApps, old.no_auth_apps != new.no_auth_apps),
        (F::ManagedAuth, old.managed_auth_via_composio != new.managed_auth_via_composio),
    ]
    .into_iter()
    .filter_map(|(field, changed)| changed.then_some(field))
    .collect()
}
