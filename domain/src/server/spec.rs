//! What a caller asks for: a whole configuration (`ServerSpec`) or a partial one
//! (`ServerPatch`), with every field already parsed.
//!
//! Both are generic over the secret type `S`: a surface parses a request into
//! `ServerSpec<SecretString>` (plaintext, redacted in logs), the secret vault seals it into
//! `ServerSpec<SealedSecret>`, and only the sealed form reaches a command. An event can
//! therefore never be built from a plaintext secret.

use super::field::{AbsoluteUrl, EnvName, HeaderName, ServerName, Text, TimeoutMs};
use crate::Patch;
use events::server::{ConnectionType, Transport};
use std::collections::BTreeMap;

/// A header to send to the server; its value is a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Header<S> {
    pub name: HeaderName,
    pub value: S,
    pub enabled: bool,
}

/// What Composio adds to a server: the auth configs a user must be connected to, and which
/// tools it exposes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComposioSettings {
    pub auth_config_ids: Vec<String>,
    pub allowed_tools: Vec<String>,
    pub toolkits: Vec<String>,
    pub no_auth_apps: Vec<String>,
    pub managed_auth_via_composio: bool,
}

/// A whole server configuration, as given at registration. Fields left `None` take the
/// defaults of `rules`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSpec<S> {
    pub name: ServerName,
    pub description: Option<Text>,
    pub transport: Transport,
    pub url: Option<AbsoluteUrl>,
    pub connection: Option<ConnectionType>,
    pub command: Option<Text>,
    pub args: Option<Text>,
    pub env: BTreeMap<EnvName, S>,
    pub custom_headers: Vec<Header<S>>,
    pub oauth_client_id: Option<Text>,
    pub oauth_client_secret: Option<S>,
    pub oauth_scope: Option<Text>,
    pub proxy_url: Option<AbsoluteUrl>,
    pub proxy_auth_token: Option<S>,
    pub proxy_auth_header: Option<HeaderName>,
    pub request_timeout: Option<TimeoutMs>,
    pub max_total_timeout: Option<TimeoutMs>,
    pub composio: ComposioSettings,
}

/// A partial update. `None` and `Patch::Keep` leave a field as it is; maps and lists are
/// replaced whole.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerPatch<S> {
    pub name: Option<ServerName>,
    pub description: Patch<Text>,
    pub transport: Option<Transport>,
    pub url: Patch<AbsoluteUrl>,
    pub connection: Option<ConnectionType>,
    pub command: Patch<Text>,
    pub args: Patch<Text>,
    pub env: Option<BTreeMap<EnvName, S>>,
    pub custom_headers: Option<Vec<Header<S>>>,
    pub oauth_client_id: Patch<Text>,
    pub oauth_client_secret: Patch<S>,
    pub oauth_scope: Patch<Text>,
    pub proxy_url: Patch<AbsoluteUrl>,
    pub proxy_auth_token: Patch<S>,
    pub proxy_auth_header: Option<HeaderName>,
    pub request_timeout: Option<TimeoutMs>,
    pub max_total_timeout: Option<TimeoutMs>,
    pub auth_config_ids: Option<Vec<String>>,
    pub allowed_tools: Option<Vec<String>>,
    pub toolkits: Option<Vec<String>>,
    pub managed_auth_via_composio: Option<bool>,
}

impl<S> Default for ServerPatch<S> {
    fn default() -> Self {
        Self {
            name: None,
            description: Patch::Keep,
            transport: None,
            url: Patch::Keep,
            connection: None,
            command: Patch::Keep,
            args: Patch::Keep,
            env: None,
            custom_headers: None,
            oauth_client_id: Patch::Keep,
            oauth_client_secret: Patch::Keep,
            oauth_scope: Patch::Keep,
            proxy_url: Patch::Keep,
            proxy_auth_token: Patch::Keep,
            proxy_auth_header: None,
            request_timeout: None,
            max_total_timeout: None,
            auth_config_ids: None,
            allowed_tools: None,
            toolkits: None,
            managed_auth_via_composio: None,
        }
    }
}

fn seal_env<S, T, E>(
    env: BTreeMap<EnvName, S>,
    seal: &mut impl FnMut(S) -> Result<T, E>,
) -> Result<BTreeMap<EnvName, T>, E> {
    env.into_iter().map(|(k, v)| Ok((k, seal(v)?))).collect()
}

fn seal_headers<S, T, E>(
    headers: Vec<Header<S>>,
    seal: &mut impl FnMut(S) -> Result<T, E>,
) -> Result<Vec<Header<T>>, E> {
    headers.into_iter().map(|h| Ok(Header { name: h.name, value: seal(h.value)?, enabled: h.enabled })).collect()
}

impl<S> ServerSpec<S> {
    /// The same spec, borrowing its secrets.
    pub fn as_refs(&self) -> ServerSpec<&S> {
        ServerSpec {
            name: self.name.clone(),
            description: self.description.clone(),
            transport: self.transport,
            url: self.url.clone(),
            connection: self.connection,
            command: self.command.clone(),
            args: self.args.clone(),
            env: self.env.iter().map(|(k, v)| (k.clone(), v)).collect(),
            custom_headers: self
                .custom_headers
                .iter()
                .map(|h| Header { name: h.name.clone(), value: &h.value, enabled: h.enabled })
                .collect(),
            oauth_client_id: self.oauth_client_id.clone(),
            oauth_client_secret: self.oauth_client_secret.as_ref(),
            oauth_scope: self.oauth_scope.clone(),
            proxy_url: self.proxy_url.clone(),
            proxy_auth_token: self.proxy_auth_token.as_ref(),
            proxy_auth_header: self.proxy_auth_header.clone(),
            request_timeout: self.request_timeout,
            max_total_timeout: self.max_total_timeout,
            composio: self.composio.clone(),
        }
    }

    /// Whether any secret is given, so that a caller only fetches a data key when needed.
    pub fn has_secrets(&self) -> bool {
        !self.env.is_empty()
            || !self.custom_headers.is_empty()
            || self.oauth_client_secret.is_some()
            || self.proxy_auth_token.is_some()
    }

    /// The same spec with every secret transformed (sealed) by `seal`.
    pub fn try_seal<T, E>(self, mut seal: impl FnMut(S) -> Result<T, E>) -> Result<ServerSpec<T>, E> {
        Ok(ServerSpec {
            env: seal_env(self.env, &mut seal)?,
            custom_headers: seal_headers(self.custom_headers, &mut seal)?,
            oauth_client_secret: self.oauth_client_secret.map(&mut seal).transpose()?,
            proxy_auth_token: self.proxy_auth_token.map(&mut seal).transpose()?,
            name: self.name,
            description: self.description,
            transport: self.transport,
            url: self.url,
            connection: self.connection,
            command: self.command,
            args: self.args,
            oauth_client_id: self.oauth_client_id,
            oauth_scope: self.oauth_scope,
            proxy_url: self.proxy_url,
            proxy_auth_header: self.proxy_auth_header,
            request_timeout: self.request_timeout,
            max_total_timeout: self.max_total_timeout,
            composio: self.composio,
        })
    }
}

impl<S> ServerPatch<S> {
    /// The same patch, borrowing its secrets.
    pub fn as_refs(&self) -> ServerPatch<&S> {
        ServerPatch {
            name: self.name.clone(),
            description: self.description.clone(),
            transport: self.transport,
            url: self.url.clone(),
            connection: self.connection,
            command: self.command.clone(),
            args: self.args.clone(),
            env: self.env.as_ref().map(|env| env.iter().map(|(k, v)| (k.clone(), v)).collect()),
            custom_headers: self.custom_headers.as_ref().map(|headers| {
                headers.iter().map(|h| Header { name: h.name.clone(), value: &h.value, enabled: h.enabled }).collect()
            }),
            oauth_client_id: self.oauth_client_id.clone(),
            oauth_client_secret: self.oauth_client_secret.as_ref(),
            oauth_scope: self.oauth_scope.clone(),
            proxy_url: self.proxy_url.clone(),
            proxy_auth_token: self.proxy_auth_token.as_ref(),
            proxy_auth_header: self.proxy_auth_header.clone(),
            request_timeout: self.request_timeout,
            max_total_timeout: self.max_total_timeout,
            auth_config_ids: self.auth_config_ids.clone(),
            allowed_tools: self.allowed_tools.clone(),
            toolkits: self.toolkits.clone(),
            managed_auth_via_composio: self.managed_auth_via_composio,
        }
    }

    pub fn has_secrets(&self) -> bool {
        self.env.as_ref().is_some_and(|e| !e.is_empty())
            || self.custom_headers.as_ref().is_some_and(|h| !h.is_empty())
            || matches!(self.oauth_client_secret, Patch::Set(_))
            || matches!(self.proxy_auth_token, Patch::Set(_))
    }

    pub fn try_seal<T, E>(self, mut seal: impl FnMut(S) -> Result<T, E>) -> Result<ServerPatch<T>, E> {
        Ok(ServerPatch {
            env: self.env.map(|env| seal_env(env, &mut seal)).transpose()?,
            custom_headers: self.custom_headers.map(|h| seal_headers(h, &mut seal)).transpose()?,
            oauth_client_secret: self.oauth_client_secret.try_map(&mut seal)?,
            proxy_auth_token: self.proxy_auth_token.try_map(&mut seal)?,
            name: self.name,
            description: self.description,
            transport: self.transport,
            url: self.url,
            connection: self.connection,
            command: self.command,
            args: self.args,
            oauth_client_id: self.oauth_client_id,
            oauth_scope: self.oauth_scope,
            proxy_url: self.proxy_url,
            proxy_auth_header: self.proxy_auth_header,
            request_timeout: self.request_timeout,
            max_total_timeout: self.max_total_timeout,
            auth_config_ids: self.auth_config_ids,
            allowed_tools: self.allowed_tools,
            toolkits: self.toolkits,
            managed_auth_via_composio: self.managed_auth_via_composio,
        })
    }
}
