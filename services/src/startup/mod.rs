//! Wiring: builds the application from settings (binds, migrates, connects the parts) and
//! runs it until a shutdown signal. `build` binds before it returns, so a caller can learn
//! the port (tests bind port 0).

mod metrics_server;
mod settings;

pub use settings::{ServeArgs, Settings};

use crate::auth_config::{AuthConfigs, AuthConfigsView};
use crate::connected_account::{
    ConnectedAccounts, ConnectedAccountsView, PgAccountDirectory, PgAliasDirectory, run_expirer,
};
use crate::gateway::{ComposioTargets, Gateway, RegisteredTargets, Targets};
use crate::gateway_record::{Publisher, Recorder, RecorderTask};
use crate::health::Health;
use crate::http;
use crate::idempotency::{IdempotencyStore, run_sweeper};
use crate::instance::{Instances, InstancesView, ServerInstances};
use crate::oauth::{FlowParts, OAuthApps, OAuthAppsView, OAuthFlow, SpentStates, StateSealer, TokenRefresher};
use crate::outbound::{AddressPolicy, Outbound, TOKEN_RESPONSE_LIMIT};
use crate::project::{KeyCache, ProjectViews, Projects, RedirectPolicy};
use crate::projection::{AwaitViews, Projection, Projector, ViewWatch};
use crate::rate_limit::RateLimits;
use crate::relay::Relay;
use crate::router::{AppState, app};
use crate::secrets::Vault;
use crate::server::{PgServerDirectory, Servers, ServersView};
use crate::store::{self, CommandBus};
use anyhow::Context;
use sqlx::PgPool;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Every view, in the order they are applied. A rebuild recreates exactly these.
pub fn views() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(ProjectViews),
        Arc::new(ServersView),
        Arc::new(InstancesView),
        Arc::new(OAuthAppsView),
        Arc::new(AuthConfigsView),
        Arc::new(ConnectedAccountsView),
    ]
}

/// The command bus of a process, given how it reads its own writes: waiting for the
/// projector (`serve`) or projecting inline (the CLI).
pub fn command_bus(pool: &PgPool, views: Arc<dyn AwaitViews>) -> CommandBus {
    command_bus_with_limit(pool, views, crate::store::DEFAULT_MAX_EVENT_BYTES)
}

/// The command bus, storing events of at most `max_event_bytes` each.
pub fn command_bus_with_limit(pool: &PgPool, views: Arc<dyn AwaitViews>, max_event_bytes: usize) -> CommandBus {
    CommandBus::with_event_limit(
        pool.clone(),
        Arc::new(PgServerDirectory::new(pool.clone())),
        Arc::new(PgAccountDirectory::new(pool.clone())),
        Arc::new(PgAliasDirectory::new(pool.clone())),
        views,
        max_event_bytes,
    )
}

/// The event size limit of `serve`: the configured one, lowered to fit the NATS server's
/// `max_payload` (read once at start) when NATS is configured and answers. Fails when NATS
/// answers but refuses the configured credential or certificate: that will not heal by
/// itself, and a service that starts anyway would never publish.
async fn event_limit(settings: &Settings) -> anyhow::Result<usize> {
    let configured = settings.max_event_bytes;
    let Some(relay) = &settings.relay else { return Ok(configured) };
    match crate::relay::stream::max_payload(relay).await {
        Ok(max_payload) => {
            let limit = crate::store::event_size::limit_for(configured, Some(max_payload));
            if limit < configured {
                tracing::info!(max_payload, limit, "events limited to a quarter of the NATS server's max_payload");
            }
            Ok(limit)
        }
        Err(e) if crate::nats::ConnectFailure::is_misconfiguration(&e) => Err(e),
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                limit = configured,
                "cannot read the NATS server's max_payload at start; events keep the configured limit"
            );
            Ok(configured)
        }
    }
}

/// Every service a request may reach, wired once.
fn app_state(
    pool: &PgPool,
    settings: &Settings,
    bus: CommandBus,
    public_url: String,
    keys: KeyCache,
    recorder: Recorder,
) -> AppState {
    let vault = Vault::new(pool.clone(), settings.master_key.clone());
    let directory = Arc::new(PgServerDirectory::new(pool.clone()));
    let instances = Instances::new(bus.clone(), vault.clone(), pool.clone());
    let oauth_apps = OAuthApps::new(bus.clone(), vault.clone(), pool.clone());
    let auth_configs = AuthConfigs::new(bus.clone(), vault.clone(), pool.clone());
    let connected_accounts = ConnectedAccounts::new(
        bus.clone(),
        vault.clone(),
        pool.clone(),
        auth_configs.clone(),
        public_url.clone(),
        settings.pending_connection_ttl,
    );
    let servers = Servers::new(bus.clone(), vault, pool.clone(), directory);
    let redirects = RedirectPolicy::new(pool.clone(), &public_url);
    let policy = AddressPolicy { allow_loopback: settings.oauth_allow_loopback_http };
    let oauth_flow = OAuthFlow::new(FlowParts {
        instances: instances.clone(),
        apps: oauth_apps.clone(),
        accounts: connected_accounts.clone(),
        redirects: redirects.clone(),
        sealer: StateSealer::new(&settings.master_key),
        public_url: public_url.clone(),
        state_ttl: settings.oauth_state_ttl,
        spent: SpentStates::new(pool.clone()),
        outbound: Outbound::new(policy, TOKEN_RESPONSE_LIMIT),
    });
    let projects = Projects::new(bus, pool.clone()).with_key_cache(keys);
    let refresher = TokenRefresher::new(oauth_flow.clone(), pool.clone());
    let rate_limits = RateLimits::new(settings.rate_limits);
    let composio = ComposioTargets::new(
        projects.clone(),
        servers.clone(),
        connected_accounts.clone(),
        refresher.clone(),
        rate_limits.clone(),
    );
    let registered = RegisteredTargets::new(servers.clone());
    let targets = Targets { instances: instances.clone(), refresher, composio, registered };
    let gateway = Gateway::new(targets, &settings.gateway, &settings.master_key, public_url.clone(), recorder);
    AppState {
        gateway,
        projects,
        server_instances: ServerInstances::new(instances.clone(), servers.clone(), connected_accounts.clone()),
        servers,
        instances,
        oauth_apps,
        oauth_flow,
        auth_configs,
        connected_accounts,
        health: Health::new(pool.clone(), settings.max_view_lag, settings.relay.is_some()),
        audit: crate::audit::Audit::new(pool.clone()),
        redirects,
        rate_limits,
        request_timeout: settings.request_timeout,
        public_url,
        oauth_allow_loopback_http: settings.oauth_allow_loopback_http,
        idempotency: IdempotencyStore::new(pool.clone(), settings.idempotency.clone()),
    }
}

pub struct Application {
    listener: tokio::net::TcpListener,
    server: http::server::ServerLimits,
    local_addr: SocketAddr,
    state: AppState,
    projector: Projector,
    relay: Option<Relay>,
    /// How the gateway reaches other replicas for legacy sessions; none without NATS.
    gateway_link: Option<crate::gateway::LegacyLink>,
    /// Writes the gateway's call records (group commit); flushed at shutdown.
    recorder: RecorderTask,
    /// Publishes them to NATS, beside the relay.
    publisher: Option<Publisher>,
    expiry_check_every: Duration,
    /// The `/metrics` listener, when metrics are on.
    metrics: Option<metrics_server::MetricsServer>,
    cancel: CancellationToken,
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let pool = store::connect_and_migrate(&settings.database_url).await?;
        let cancel = CancellationToken::new();
        let watch =
            ViewWatch::start(pool.clone(), Projector::VIEWS, settings.read_your_writes_timeout, cancel.clone()).await?;
        let bus = command_bus_with_limit(&pool, Arc::new(watch), event_limit(settings).await?);
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on PROVISIONER_LISTEN={}", settings.listen))?;
        let local_addr = listener.local_addr().context("the listener has no socket address")?;
        let public_url = settings.public_url.clone().unwrap_or_else(|| format!("http://{local_addr}"));
        let keys = KeyCache::default();
        keys.follow_revocations(pool.clone(), cancel.clone()).await?;
        let (recorder, recorder_task) = Recorder::new(pool.clone());
        let state = app_state(&pool, settings, bus, public_url, keys, recorder);
        let gateway_link = match settings.relay.clone() {
            Some(relay) => Some(state.gateway.legacy_link(relay).await),
            None => None,
        };
        let relay = settings.relay.clone().map(|relay| Relay::new(pool.clone(), relay));
        let publisher = settings.relay.clone().map(|relay| Publisher::new(pool.clone(), relay));
        let projector = Projector::new(pool.clone(), Projector::VIEWS, views());
        let expiry_check_every = settings.expiry_check_every();
        let metrics = match settings.metrics_listen {
            Some(addr) => {
                let scraped = metrics_server::Scraped::new(pool, settings.relay.is_some());
                Some(metrics_server::MetricsServer::bind(addr, scraped).await?)
            }
            None => None,
        };
        Ok(Self {
            listener,
            server: settings.server,
            local_addr,
            state,
            projector,
            relay,
            gateway_link,
            recorder: recorder_task,
            publisher,
            expiry_check_every,
            metrics,
            cancel,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then drains requests, writes the call records still
    /// queued, and stops the projector, the relay and the record publisher.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let projector = tokio::spawn(self.projector.run(self.cancel.clone()));
        let relay = self.relay.map(|relay| tokio::spawn(relay.run(self.cancel.clone())));
        let gateway_link = self
            .gateway_link
            .map(|link| tokio::spawn(self.state.gateway.clone().run_legacy_link(link, self.cancel.clone())));
        let recorder = tokio::spawn(self.recorder.run(self.cancel.clone()));
        let publisher = self.publisher.map(|publisher| tokio::spawn(publisher.run(self.cancel.clone())));
        let expirer = tokio::spawn(run_expirer(
            self.state.connected_accounts.clone(),
            self.expiry_check_every,
            self.cancel.clone(),
        ));
        let sweeper = tokio::spawn(self.state.rate_limits.clone().sweep(self.cancel.clone()));
        let idempotency_sweeper = tokio::spawn(run_sweeper(self.state.idempotency.clone(), self.cancel.clone()));
        let metrics = match self.metrics {
            Some(server) => {
                tracing::info!("metrics on http://{}/metrics", server.local_addr()?);
                Some(tokio::spawn(server.run(self.cancel.clone())))
            }
            None => None,
        };
        tracing::info!("listening on http://{}", self.local_addr);
        let gateway = self.state.gateway.clone();
        let limits = self.server;
        let served =
            http::server::serve(self.listener, app(self.state), limits, gateway.ending_streams(shutdown)).await;
        self.cancel.cancel();
        recorder.await?;
        projector.await?;
        expirer.await?;
        sweeper.await?;
        idempotency_sweeper.await?;
        if let Some(relay) = relay {
            relay.await?;
        }
        if let Some(link) = gateway_link {
            link.await?;
        }
        if let Some(publisher) = publisher {
            publisher.await?;
        }
        if let Some(metrics) = metrics {
            metrics.await?.context("the metrics server failed")?;
        }
        served.context("the HTTP server failed")
    }
}
