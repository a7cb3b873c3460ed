//! The MCP gateway: the data plane behind the `serverUrl` of a Klavis instance
//! (`{PUBLIC_URL}/mcp/?instance_id=…`) and the per-user URLs of a Composio MCP server
//! (`{PUBLIC_URL}/v3/mcp/{server_id}?user_id=…`, see [`composio`]) and the `gatewayUrl` of a
//! server registered through the GAIA surface (`{PUBLIC_URL}/api/mcp/servers/{id}/mcp`, see
//! [`registered`]), Streamable HTTP.
//!
//! A JSON-RPC-aware pass-through proxy: each POST is read as one JSON-RPC message, its target
//! (the instance, whose random id is the credential; the Composio server and user, or the
//! registered server, with the project's key) is looked up, its upstream found (in the
//! operator's upstreams file, or the registered server itself), its policy checked, and the
//! message forwarded with the target's own credential in place of anything the client sent. The answer (one JSON message or an SSE
//! stream) is relayed as the upstream gives it; only `tools/list` results are rewritten.
//! Nothing is kept per session: the session id handed out seals the upstream's with the
//! target, so any replica can serve any request.

mod composio;
mod credential;
mod direct;
mod edge;
mod error;
mod fanout;
mod forward;
mod legacy;
mod message;
mod origin;
mod policy;
mod record;
mod registered;
mod session;
mod sse;
mod upstreams;

pub use composio::ComposioTargets;
pub use direct::DirectError;
pub use edge::{composio_endpoint, endpoint, registered_endpoint};
pub use error::GatewayError;
pub use legacy::{LegacyLink, messages_endpoint, sse_endpoint};
pub use origin::AllowedOrigins;
pub use registered::RegisteredTargets;
pub use upstreams::{Upstream, Upstreams};

use crate::catalog::{AuthKind, Catalog};
use crate::gateway_record::Recorder;
use crate::instance::{ConnectionRecord, Instances};
use crate::oauth::{RefreshFailure, TokenRefresher};
use crate::project::Caller;
use crate::secrets::MasterKey;
use bytes::Bytes;
use domain::instance::InstanceError;
use events::InstanceId;
use forward::{Deadline, Forwarder, Kind, Outbound, SESSION_HEADER, SendFailure, Timeouts, Trust};
use message::Message;
use poem::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use poem::{Body, Response};
use policy::{Policy, ToolCache};
use serde_json::{Value, json};
use session::{Scope, SessionSealer};
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use upstreams::UpstreamTransport;

/// The gateway's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySettings {
    pub upstreams: Upstreams,
    /// How long an upstream may take to answer a message (or to start its stream).
    pub timeout: Duration,
    /// Browser origins besides the public URL's that may call the gateway.
    pub allowed_origins: AllowedOrigins,
    /// Forward to registered URLs on loopback, private and link-local addresses too
    /// (`PROVISIONER_GATEWAY_ALLOW_PRIVATE`; development and tests).
    pub allow_private: bool,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            upstreams: Upstreams::default(),
            timeout: DEFAULT_TIMEOUT,
            allowed_origins: AllowedOrigins::default(),
            allow_private: false,
        }
    }
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest message a client may send.
pub const MAX_REQUEST_BYTES: usize = 4 << 20;
/// Pages of `tools/list` read to learn an upstream's tools, at most.
const MAX_TOOL_PAGES: usize = 20;
/// How often an open server stream (a GET) checks that its URL still names something: a
/// deleted instance, server or account ends its streams within this, on every replica. (A
/// POST's stream is bounded by the timeout, and every request looks its target up anew.)
const LIVENESS_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    instances: Instances,
    /// OAuth tokens due to expire are refreshed before they are sent.
    refresher: TokenRefresher,
    composio: ComposioTargets,
    registered: RegisteredTargets,
    upstreams: Upstreams,
    sessions: SessionSealer,
    forwarder: Forwarder,
    /// The gateway's own timeout (of upstreams without their own).
    timeout: Duration,
    tools: ToolCache,
    origins: AllowedOrigins,
    public_url: String,
    /// The legacy HTTP+SSE sessions this replica owns.
    legacy: legacy::Hub,
    /// Every session opened or closed and every `tools/call` goes on the record (see [`record`]).
    recorder: Recorder,
    /// Cancelled when the replica stops: its open streams end (their clients reconnect
    /// elsewhere) rather than holding the shutdown for its whole grace period.
    stopping: tokio_util::sync::CancellationToken,
}

/// A request at a gateway URL, as the edge read it.
pub struct Incoming {
    pub method: Method,
    pub address: Address,
    pub headers: HeaderMap,
    /// A POST's body, read within [`MAX_REQUEST_BYTES`].
    pub body: Result<Option<Bytes>, GatewayError>,
}

/// What a gateway URL names, as written.
#[derive(Clone)]
pub enum Address {
    /// `/mcp/?instance_id=…`.
    Instance(Option<String>),
    /// `/v3/mcp/{server_id}?…`, with the query holding the selector.
    Composio { server_id: String, query: Option<String> },
    /// `/api/mcp/servers/{id}/mcp`, with the caller of the request's GAIA key (resolved by the
    /// edge, as the GAIA API resolves it).
    Registered { server_id: String, caller: Result<Caller, GatewayError> },
}

/// What a URL was found to name (before its credential is opened). Boxed: they are large.
enum Target {
    Instance(Box<ConnectionRecord>),
    Composio(Box<composio::ServerTarget>),
    Registered(Box<registered::RegisteredTarget>),
}

/// Everything a request needs once its target, upstream and credential are known.
struct Route<'a> {
    scope: Scope,
    /// From the upstreams file (borrowed), or a registered server itself (owned).
    upstream: Cow<'a, Upstream>,
    /// Who chose the upstream's URL: a registered one goes through the address policy.
    trust: Trust,
    timeouts: Timeouts,
    /// The upstream's own session id.
    session: Option<String>,
    credential: Option<(HeaderName, HeaderValue)>,
    /// A registered server's own headers (custom headers, proxy token).
    server_headers: Vec<(HeaderName, HeaderValue)>,
    policy: Policy,
}

impl Route<'_> {
    /// A request of this route as it goes upstream.
    fn outbound(&self, method: Method, client_headers: HeaderMap, body: Option<Bytes>) -> Outbound {
        Outbound {
            method,
            url: self.upstream.url.clone(),
            transport: self.upstream.transport,
            trust: self.trust,
            timeouts: self.timeouts,
            client_headers,
            session: self.session.clone(),
            credential: self.credential.clone(),
            server_headers: self.server_headers.clone(),
            body,
        }
    }
}

/// What the gateway reads its targets from (and refreshes their tokens with).
pub struct Targets {
    pub instances: Instances,
    pub refresher: TokenRefresher,
    pub composio: ComposioTargets,
    pub registered: RegisteredTargets,
}

impl Gateway {
    pub fn new(
        targets: Targets,
        settings: &GatewaySettings,
        master: &MasterKey,
        public_url: String,
        recorder: Recorder,
    ) -> Self {
        let Targets { instances, refresher, composio, registered } = targets;
        let inner = Inner {
            instances,
            refresher,
            composio,
            registered,
            upstreams: settings.upstreams.clone(),
            sessions: SessionSealer::new(master),
            forwarder: Forwarder::new(settings.timeout, settings.allow_private),
            timeout: settings.timeout,
            tools: ToolCache::default(),
            origins: settings.allowed_origins.clone().with_public_url(&public_url),
            public_url,
            legacy: legacy::Hub::new(master),
            recorder,
            stopping: Default::default(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Answers one request at a gateway URL: always an MCP answer, never an HTML page.
    pub async fn handle(&self, incoming: Incoming) -> Response {
        if let Some(refused) = self.refuse_origin(&incoming.headers) {
            return refused;
        }
        let target = match self.target(&incoming).await {
            Ok(target) => target,
            Err(e) => return e.respond(None),
        };
        if let Target::Composio(composio) = &target
            && let Err(e) = self.inner.composio.admit(composio)
        {
            return e.respond(None);
        }
        let message = match &incoming.body {
            Ok(Some(body)) => match Message::parse(body) {
                Ok(message) => match message.check_headers(&incoming.headers) {
                    Ok(()) => Some(message),
                    Err(e) => return e.respond(message.request_id()),
                },
                Err(e) => return e.respond(None),
            },
            Ok(None) => None,
            Err(e) => return e.respond(None),
        };
        let id = message.as_ref().and_then(Message::request_id).cloned();
        match self.serve(&incoming, &target, message.as_ref()).await {
            Ok(response) => response,
            Err(e) => {
                // The code only: some messages quote the instance's oauthUrl, and its id is a credential.
                tracing::info!(code = e.code(), "gateway refused or failed a message");
                e.respond(id.as_ref())
            }
        }
    }

    /// Forwards one message and relays its answer; [`Gateway::serve`] (in [`record`]) puts it
    /// on the record around this.
    async fn serve_unrecorded(
        &self,
        incoming: &Incoming,
        target: &Target,
        message: Option<&Message>,
    ) -> Result<Response, GatewayError> {
        if let Target::Composio(composio) = target
            && composio.fans_out()
        {
            return self.fan_out(incoming, composio, message).await;
        }
        let route = self.route(incoming, target).await?;
        if let Some(message) = message {
            self.check_call(&route, &incoming.headers, message).await?;
        }
        self.forward(&route, incoming, incoming.body.clone().ok().flatten(), message).await
    }

    /// Sends a message of `incoming` (`body`, as it goes upstream) on `route`, and relays the
    /// answer.
    async fn forward(
        &self,
        route: &Route<'_>,
        incoming: &Incoming,
        body: Option<Bytes>,
        message: Option<&Message>,
    ) -> Result<Response, GatewayError> {
        let out = route.outbound(incoming.method.clone(), incoming.headers.clone(), body);
        let deadline = Deadline::start(route.timeouts);
        let response = self.send(&route.scope, out).await.map_err(|failure| send_error(route, failure))?;
        self.relay(response, route, incoming, message, deadline).await
    }

    /// Sends a request upstream over the upstream's transport.
    async fn send(&self, scope: &Scope, out: Outbound) -> Result<reqwest::Response, SendFailure> {
        match out.transport {
            UpstreamTransport::StreamableHttp => self.inner.forwarder.send(out).await,
            UpstreamTransport::Sse => self.send_over_sse(scope, out).await,
        }
    }

    /// A call of a hidden tool goes no further: the allow-list by name, read-only by the
    /// annotations the upstream lists.
    async fn check_call(&self, route: &Route<'_>, headers: &HeaderMap, message: &Message) -> Result<(), GatewayError> {
        let Some(tool) = message.tool_name() else { return Ok(()) };
        let hidden = !route.policy.allows_name(tool)
            || (route.policy.read_only && !self.read_only_tools(route, headers, message.meta()).await?.contains(tool));
        if hidden { Err(GatewayError::HiddenTool(tool.to_owned())) } else { Ok(()) }
    }

    /// The 403 for a page of an origin the gateway does not serve (every transport).
    fn refuse_origin(&self, headers: &HeaderMap) -> Option<Response> {
        if self.inner.origins.admits(headers) {
            return None;
        }
        let origin = headers.get("origin").and_then(|o| o.to_str().ok()).unwrap_or("?");
        Some(GatewayError::OriginNotAllowed(origin.to_owned()).respond(None))
    }

    /// What the URL names: checked on every request (a session is not authentication).
    async fn target(&self, incoming: &Incoming) -> Result<Target, GatewayError> {
        self.target_of(&incoming.address, &incoming.headers).await
    }

    async fn target_of(&self, address: &Address, headers: &HeaderMap) -> Result<Target, GatewayError> {
        match address {
            Address::Instance(id) => self.instance(id.as_deref()).await.map(|r| Target::Instance(Box::new(r))),
            Address::Composio { server_id, query } => {
                let target = self.inner.composio.target(server_id, query.as_deref(), headers).await?;
                Ok(Target::Composio(Box::new(target)))
            }
            Address::Registered { server_id, caller } => {
                let caller = caller.as_ref().map_err(Clone::clone)?;
                let target = self.inner.registered.target(caller, server_id).await?;
                Ok(Target::Registered(Box::new(target)))
            }
        }
    }

    /// Resolves once the URL no longer names anything (deleted, or its key revoked); a
    /// database that fails meanwhile does not end the stream.
    async fn gone(self, address: Address, headers: HeaderMap) {
        let stopping = self.inner.stopping.clone();
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                () = tokio::time::sleep(LIVENESS_INTERVAL) => {}
            }
            if let Err(e) = self.target_of(&address, &headers).await
                && e.is_about_the_url()
            {
                return;
            }
        }
    }

    /// The live instance an id names, whatever its project (the id is the credential).
    async fn instance(&self, raw: Option<&str>) -> Result<ConnectionRecord, GatewayError> {
        let id: InstanceId = raw.and_then(|raw| raw.parse().ok()).ok_or(GatewayError::InstanceNotFound)?;
        match self.inner.instances.get_anywhere(id).await {
            Ok(record) => Ok(record),
            Err(crate::error::AppError::Rejected(InstanceError::NotFound)) => Err(GatewayError::InstanceNotFound),
            Err(e) => {
                tracing::error!(error = %e, "cannot read an instance for the gateway");
                Err(GatewayError::Internal)
            }
        }
    }

    /// The session, upstream, credential and policy of a request, or why it goes no further.
    async fn route<'a>(&'a self, incoming: &Incoming, target: &Target) -> Result<Route<'a>, GatewayError> {
        let scope = match target {
            Target::Instance(record) => Scope::Instance(record.instance_id().ok_or(GatewayError::InstanceNotFound)?),
            Target::Composio(target) => target.scope(),
            Target::Registered(target) => target.scope(),
        };
        let session = match incoming.headers.get(SESSION_HEADER) {
            Some(token) => Some(
                token
                    .to_str()
                    .ok()
                    .and_then(|token| self.inner.sessions.open(&scope, token))
                    .ok_or(GatewayError::SessionNotFound)?,
            ),
            None => None,
        };
        let operator = |upstream: &'a Upstream, credential, policy| Route {
            scope: scope.clone(),
            upstream: Cow::Borrowed(upstream),
            trust: Trust::Operator,
            timeouts: Timeouts::gateway(self.inner.timeout),
            session: session.clone(),
            credential,
            server_headers: Vec::new(),
            policy,
        };
        match target {
            Target::Instance(record) => {
                let (upstream, credential, policy) = self.instance_route(record).await?;
                Ok(operator(upstream, credential, policy))
            }
            Target::Composio(target) => {
                let (upstream, policy) = target.upstream(&self.inner.upstreams)?;
                let credential = self.inner.composio.credential(target, upstream).await?;
                Ok(operator(upstream, credential, policy))
            }
            Target::Registered(target) => {
                let registered = target.upstream()?;
                Ok(Route {
                    scope,
                    upstream: Cow::Owned(registered.upstream),
                    trust: Trust::Registered,
                    timeouts: registered.timeouts,
                    session,
                    credential: None,
                    server_headers: registered.headers,
                    policy: Policy::default(),
                })
            }
        }
    }

    /// A Klavis instance's upstream, credential and read-only policy.
    async fn instance_route(
        &self,
        record: &ConnectionRecord,
    ) -> Result<(&Upstream, Option<(HeaderName, HeaderValue)>, Policy), GatewayError> {
        let instance_id = record.instance_id().ok_or(GatewayError::InstanceNotFound)?;
        let Some(slug) = record.server_key.strip_prefix("catalog:") else {
            let server_id = record.server_key.strip_prefix("server:").unwrap_or_default().to_owned();
            return Err(GatewayError::NotServed { server_name: record.server_name.clone(), server_id });
        };
        let upstream = self.inner.upstreams.for_slug(slug).ok_or_else(|| GatewayError::Unbound {
            server_name: record.server_name.clone(),
            binding: slug.to_owned(),
        })?;
        let credential = self.credential(record, instance_id, slug, upstream).await?;
        Ok((upstream, credential, Policy::read_only(record.read_only.unwrap_or(false))))
    }

    /// The credential header for the upstream: none for a server that needs no auth and has
    /// none; an error telling the user to authenticate when one is needed and missing.
    async fn credential(
        &self,
        record: &ConnectionRecord,
        instance_id: InstanceId,
        slug: &str,
        upstream: &Upstream,
    ) -> Result<Option<(HeaderName, HeaderValue)>, GatewayError> {
        let entry = Catalog::get().by_slug(slug);
        let oauth_url = || entry.and_then(|e| e.oauth_url(&self.inner.public_url, &instance_id.to_string()));
        let not_authenticated =
            || GatewayError::NotAuthenticated { server_name: record.server_name.clone(), oauth_url: oauth_url() };
        if !record.is_authenticated() {
            return match entry.map(|e| e.auth) {
                Some(AuthKind::None) => Ok(None),
                _ => Err(not_authenticated()),
            };
        }
        let opened = self.inner.instances.open_credential(record).await.map_err(|e| {
            tracing::error!(error = %e, "cannot open an instance's credential for the gateway");
            GatewayError::Internal
        })?;
        let (method, mut plain) = opened.ok_or_else(not_authenticated)?;
        if method == events::instance::AuthMethod::Oauth {
            plain =
                self.inner.refresher.fresh_instance_tokens(record, plain).await.map_err(|failure| match failure {
                    RefreshFailure::Expired(reason) => GatewayError::CredentialExpired {
                        server_name: record.server_name.clone(),
                        oauth_url: oauth_url(),
                        reason,
                    },
                    RefreshFailure::Gone => not_authenticated(),
                    other => credential::refresh_error(other),
                })?;
        }
        let token = credential::token_of(method, &plain).ok_or(GatewayError::CredentialUnusable)?;
        use secrecy::ExposeSecret;
        let value = HeaderValue::from_str(&upstream.credential_value(token.expose_secret()))
            .map_err(|_| GatewayError::CredentialUnusable)?;
        Ok(Some((upstream.credential_header.clone(), value)))
    }

    /// The tools a read-only instance may call: from the cache, else listed from the upstream
    /// in the client's session (every page), with the client's `_meta` (2026-07-28).
    async fn read_only_tools(
        &self,
        route: &Route<'_>,
        headers: &HeaderMap,
        meta: Option<&Value>,
    ) -> Result<Arc<HashSet<String>>, GatewayError> {
        if let Some(tools) = self.inner.tools.get(&route.scope) {
            return Ok(tools);
        }
        let mut names = HashSet::new();
        let mut cursor: Option<String> = None;
        for page in 0..MAX_TOOL_PAGES {
            let id = format!("provisioner-gateway-tools-{page}");
            let mut params = cursor.as_ref().map_or_else(|| json!({}), |c| json!({ "cursor": c }));
            if let Some(meta) = meta {
                params["_meta"] = meta.clone();
            }
            let answer = self
                .ask(route, headers, &id, json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params}))
                .await?;
            names.extend(Policy::read_only(true).shown_names(&answer));
            cursor = answer.pointer("/result/nextCursor").and_then(Value::as_str).map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        Ok(self.inner.tools.put(route.scope.clone(), names))
    }

    /// One request of the gateway's own to the upstream, and its answer (an error answer is
    /// an error).
    async fn ask(
        &self,
        route: &Route<'_>,
        headers: &HeaderMap,
        id: &str,
        request: Value,
    ) -> Result<Value, GatewayError> {
        let (answer, _) = self.exchange(route, headers, &Value::from(id), request).await?;
        if answer.get("error").is_some() {
            return Err(upstream_error(route, "answered a tools/list with an error".into()));
        }
        Ok(answer)
    }

    /// One request of the gateway's own to the upstream: its answer, and the upstream
    /// session id it gave (if any).
    async fn exchange(
        &self,
        route: &Route<'_>,
        headers: &HeaderMap,
        id: &Value,
        request: Value,
    ) -> Result<(Value, Option<String>), GatewayError> {
        let method = request.get("method").and_then(Value::as_str).unwrap_or("request").to_owned();
        let mut client_headers = HeaderMap::new();
        if let Some(version) = headers.get("mcp-protocol-version") {
            client_headers.insert("mcp-protocol-version", version.clone());
        }
        client_headers.insert("content-type", HeaderValue::from_static("application/json"));
        if let Ok(method) = HeaderValue::from_str(&method) {
            client_headers.insert(message::METHOD_HEADER, method);
        }
        let out = route.outbound(Method::POST, client_headers, Some(Bytes::from(request.to_string())));
        let deadline = Deadline::start(route.timeouts);
        let failed = |problem: String| upstream_error(route, problem);
        let response = self.send(&route.scope, out).await.map_err(|failure| send_error(route, failure))?;
        if response.status() == StatusCode::NOT_FOUND && route.session.is_some() {
            return Err(GatewayError::SessionNotFound);
        }
        if !response.status().is_success() {
            return Err(failed(format!("answered HTTP {} to a {method}", response.status().as_u16())));
        }
        let session = response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let kind = forward::kind(&response);
        let body = forward::read_all(response, deadline).await.map_err(failed)?;
        let answer = match kind {
            Kind::Json => forward::json_answer(&body).map_err(failed)?,
            Kind::Stream => sse::messages(&String::from_utf8_lossy(&body))
                .into_iter()
                .find(|m| m.get("id") == Some(id))
                .ok_or_else(|| failed(format!("ended its stream without answering a {method}")))?,
            Kind::Empty | Kind::Other => return Err(failed(format!("answered a {method} with no JSON"))),
        };
        Ok((answer, session))
    }

    /// The upstream's answer, as the client gets it.
    async fn relay(
        &self,
        response: reqwest::Response,
        route: &Route<'_>,
        incoming: &Incoming,
        message: Option<&Message>,
        deadline: Deadline,
    ) -> Result<Response, GatewayError> {
        let status = response.status();
        if status == StatusCode::NOT_FOUND && route.session.is_some() {
            // The upstream no longer knows the session: the client must start a new one.
            return Err(GatewayError::SessionNotFound);
        }
        if status.is_server_error() {
            return Err(upstream_error(route, format!("answered HTTP {}", status.as_u16())));
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(upstream_error(
                route,
                format!(
                    "refused the instance's credential (HTTP {}): authenticate the instance again",
                    status.as_u16()
                ),
            ));
        }
        // The session's id stays the one the client holds; a new upstream session gets a new one.
        let session = match response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
            Some(upstream) if route.session.as_deref() == Some(upstream) => {
                incoming.headers.get(SESSION_HEADER).cloned()
            }
            Some(upstream) => HeaderValue::from_str(&self.inner.sessions.seal(&route.scope, upstream)).ok(),
            None => None,
        };
        let rewrite = (route.policy.restricts_tools() && message.and_then(Message::method) == Some("tools/list"))
            .then(|| route.policy.clone());
        let is_post = incoming.method == Method::POST;
        let request_id = message.and_then(Message::request_id).cloned();
        let (content_type, body) = match forward::kind(&response) {
            Kind::Stream if rewrite.is_some() => {
                let body = forward::read_all(response, deadline).await.map_err(|p| upstream_error(route, p))?;
                let policy = rewrite.expect("checked");
                let text = sse::rewrite(&String::from_utf8_lossy(&body), |m| policy.filter_list(m));
                (Some("text/event-stream"), Body::from_string(text))
            }
            Kind::Stream => {
                let failure = GatewayFailure { server_name: route.upstream.server_name.clone(), request_id };
                let stream = forward::relay_stream(response, is_post.then_some(deadline), move |p| failure.message(p));
                if is_post {
                    (Some("text/event-stream"), Body::from_bytes_stream(stream))
                } else {
                    let gone = self.clone().gone(incoming.address.clone(), incoming.headers.clone());
                    (Some("text/event-stream"), Body::from_bytes_stream(futures::StreamExt::take_until(stream, gone)))
                }
            }
            Kind::Json => {
                let body = forward::read_all(response, deadline).await.map_err(|p| upstream_error(route, p))?;
                let mut answer = forward::json_answer(&body).map_err(|p| upstream_error(route, p))?;
                if let Some(policy) = rewrite {
                    policy.filter_list(&mut answer);
                }
                (Some("application/json"), Body::from_string(answer.to_string()))
            }
            Kind::Empty => (None, Body::empty()),
            Kind::Other if status.is_success() => {
                return Err(upstream_error(
                    route,
                    "answered something that is neither JSON nor an event stream".into(),
                ));
            }
            Kind::Other => return Err(upstream_error(route, format!("answered HTTP {}", status.as_u16()))),
        };
        let mut answer = Response::builder().status(status);
        if let Some(content_type) = content_type {
            answer = answer.content_type(content_type);
        }
        if content_type == Some("text/event-stream") {
            answer = answer.header("cache-control", "no-cache, no-transform").header("x-accel-buffering", "no");
        }
        if let Some(session) = session {
            answer = answer.header(SESSION_HEADER, session);
        }
        Ok(answer.body(body))
    }
}

/// What a stream that fails after it started ends with.
struct GatewayFailure {
    server_name: String,
    request_id: Option<Value>,
}

impl GatewayFailure {
    /// The error event for the request the stream answers; none for a notification's stream.
    fn message(&self, problem: String) -> Option<Value> {
        let id = self.request_id.as_ref()?;
        Some(GatewayError::Upstream { server_name: self.server_name.clone(), problem }.message(Some(id)))
    }
}

/// A request that got no answer: refused by the address policy, or failed.
fn send_error(route: &Route<'_>, failure: SendFailure) -> GatewayError {
    match failure {
        SendFailure::Refused(reason) => {
            tracing::warn!(%reason, "the gateway refused a registered upstream's address");
            GatewayError::UpstreamRefused { server_name: route.upstream.server_name.clone(), reason }
        }
        SendFailure::Failed(problem) => upstream_error(route, problem),
    }
}

fn upstream_error(route: &Route<'_>, problem: String) -> GatewayError {
    tracing::warn!(upstream = %route.upstream.url.host_str().unwrap_or_default(), %problem, "upstream MCP server failed");
    GatewayError::Upstream { server_name: route.upstream.server_name.clone(), problem }
}
