//! GAIA URLs: `{PUBLIC_URL}/api/mcp/servers/{id}/mcp` (the `gatewayUrl` of a GAIA server
//! object), where a server a project registered is its own upstream.
//!
//! Who may connect: the project's API key, read where the GAIA API reads it
//! (`Authorization: Bearer`, or `gaia-api-key`) and resolved by the same code
//! ([`crate::http::caller::authenticate`] with [`crate::gaia::KEY_SOURCES`]), on every request.
//! Another project's server, an unknown or deleted one: 404.
//!
//! The upstream: the server's `url`, or its `proxyUrl` when it has one (the requests then go
//! to the proxy), with its enabled `customHeaders` and its `proxyAuthToken` in
//! `proxyAuthHeader` on every request (opened from its events right before the request is
//! forwarded, never logged), within its `requestTimeout` and `maxTotalTimeout`. Its URL is a
//! project's choice, so it is sent through the outbound address policy (see
//! [`super::forward::Trust`]). An `sse` server is reached over the legacy HTTP+SSE transport
//! ([`super::legacy::upstream`]); a `stdio` server is not run by the gateway.

use super::error::GatewayError;
use super::forward::Timeouts;
use super::session::Scope;
use super::upstreams::{Upstream, UpstreamTransport};
use crate::project::Caller;
use crate::server::{OpenedServer, Servers};
use events::ServerId;
use events::server::{ServerConfig, Transport};
use poem::http::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// What the gateway reads to serve GAIA URLs.
#[derive(Clone)]
pub struct RegisteredTargets {
    servers: Servers,
}

/// A GAIA URL whose key and server checked out: the server as its events say, secrets opened.
pub struct RegisteredTarget {
    server_id: ServerId,
    project_id: events::ProjectId,
    server: OpenedServer,
}

/// How a registered server is reached.
pub struct RegisteredUpstream {
    pub upstream: Upstream,
    /// Custom headers, then the proxy token: sent on every request.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeouts: Timeouts,
}

impl RegisteredTargets {
    pub fn new(servers: Servers) -> Self {
        Self { servers }
    }

    /// The live server `raw_id` names in the caller's project.
    pub async fn target(&self, caller: &Caller, raw_id: &str) -> Result<RegisteredTarget, GatewayError> {
        let server_id: ServerId = raw_id.parse().map_err(|_| GatewayError::ServerNotFound)?;
        let opened = self.servers.open_upstream(caller.project_id, server_id).await.map_err(|e| {
            tracing::error!(error = %e, "cannot read a registered server for the gateway");
            GatewayError::Internal
        })?;
        let server = opened.ok_or(GatewayError::ServerNotFound)?;
        Ok(RegisteredTarget { server_id, project_id: caller.project_id, server })
    }
}

impl RegisteredTarget {
    pub fn server_id(&self) -> ServerId {
        self.server_id
    }

    pub fn project_id(&self) -> events::ProjectId {
        self.project_id
    }

    pub fn name(&self) -> &str {
        &self.server.config.name
    }

    pub fn scope(&self) -> Scope {
        Scope::Registered(self.server_id)
    }

    /// Where and how the server is reached, or why the gateway does not reach it.
    pub fn upstream(&self) -> Result<RegisteredUpstream, GatewayError> {
        let config = &self.server.config;
        let server_name = config.name.clone();
        if is_composio(config) {
            return Err(GatewayError::NotGaiaServer { server_name, server_id: self.server_id.to_string() });
        }
        let transport = match config.transport {
            Transport::Http => UpstreamTransport::StreamableHttp,
            // Its url opens the event stream; headers and timeouts are as for `http`.
            Transport::Sse => UpstreamTransport::Sse,
            Transport::Stdio => return Err(GatewayError::StdioNotRun { server_name }),
        };
        let raw = config.proxy_url.as_deref().or(config.url.as_deref()).ok_or(GatewayError::Internal)?;
        let url = url::Url::parse(raw).map_err(|_| GatewayError::Internal)?;
        let upstream = Upstream::registered(server_name, url, transport);
        Ok(RegisteredUpstream { upstream, headers: self.headers()?, timeouts: timeouts(config) })
    }

    /// The enabled custom headers, then the proxy token in `proxyAuthHeader` (the registry
    /// checked names and values when they were saved).
    fn headers(&self) -> Result<Vec<(HeaderName, HeaderValue)>, GatewayError> {
        let proxy = self.server.proxy_auth_token.as_ref().map(|token| (&self.server.config.proxy_auth_header, token));
        self.server
            .headers
            .iter()
            .map(|(name, value)| (name, value))
            .chain(proxy)
            .map(|(name, value)| header(name, value))
            .collect()
    }
}

fn header(name: &str, value: &SecretString) -> Result<(HeaderName, HeaderValue), GatewayError> {
    let unusable = || {
        tracing::error!(header = %name, "a registered server's header cannot be sent");
        GatewayError::Internal
    };
    let name = HeaderName::try_from(name).map_err(|_| unusable())?;
    let mut value = HeaderValue::from_str(value.expose_secret()).map_err(|_| unusable())?;
    value.set_sensitive(true);
    Ok((name, value))
}

fn timeouts(config: &ServerConfig) -> Timeouts {
    Timeouts::server(
        Duration::from_millis(config.request_timeout_ms),
        Duration::from_millis(config.max_total_timeout_ms),
    )
}

/// A Composio MCP server shares the registry, but its URL is the Composio one (it has no
/// upstream of its own).
fn is_composio(config: &ServerConfig) -> bool {
    !config.auth_config_ids.is_empty() || !config.toolkits.is_empty()
}
