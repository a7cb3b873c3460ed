//! The `/metrics` listener (`PROVISIONER_METRICS_LISTEN`) and the gauges read from the
//! database when it is scraped: the views' and the relay's lag (the same figures `/ready`
//! reports) and this process's pool use. Here, with the wiring, because it reads the feed,
//! the projector and the relay, which count through [`crate::metrics`] themselves.

use crate::feed::{Checkpoints, lag_after};
use crate::metrics::install;
use crate::projection::Projector;
use crate::relay::{Relay, RelayReport};
use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use poem::listener::TcpAcceptor;
use poem::{EndpointExt, Route, get, handler, web::Data};
use sqlx::PgPool;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// The metrics listener, bound (so that a bad address stops `serve` at start).
pub struct MetricsServer {
    listener: tokio::net::TcpListener,
    handle: PrometheusHandle,
    scraped: Scraped,
}

impl MetricsServer {
    pub async fn bind(addr: SocketAddr, scraped: Scraped) -> anyhow::Result<Self> {
        let handle = install()?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on PROVISIONER_METRICS_LISTEN={addr}"))?;
        Ok(Self { listener, handle, scraped })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `GET /metrics` until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) -> std::io::Result<()> {
        let app = Route::new().at("/metrics", get(render)).data(self.handle).data(self.scraped);
        let acceptor = TcpAcceptor::from_tokio(self.listener)?;
        poem::Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(app, cancel.cancelled_owned(), None).await
    }
}

#[handler]
async fn render(handle: Data<&PrometheusHandle>, scraped: Data<&Scraped>) -> poem::Response {
    scraped.sample().await;
    poem::Response::builder().content_type("text/plain; version=0.0.4; charset=utf-8").body(handle.render())
}

#[derive(Clone)]
pub struct Scraped {
    pool: PgPool,
    /// Whether this service publishes to NATS (else the relay's lag is not reported).
    relay: bool,
}

impl Scraped {
    pub fn new(pool: PgPool, relay: bool) -> Self {
        Self { pool, relay }
    }

    /// Sets the gauges; a figure that cannot be read keeps its last value and is logged.
    pub async fn sample(&self) {
        let in_use = self.pool.size().saturating_sub(self.pool.num_idle() as u32);
        ::metrics::gauge!(crate::metrics::DB_POOL_CONNECTIONS, "state" => "in_use").set(f64::from(in_use));
        ::metrics::gauge!(crate::metrics::DB_POOL_CONNECTIONS, "state" => "idle").set(self.pool.num_idle() as f64);
        match self.view_lag().await {
            Ok(lag) => {
                ::metrics::gauge!(crate::metrics::PROJECTOR_LAG_EVENTS).set(lag.events as f64);
                ::metrics::gauge!(crate::metrics::PROJECTOR_LAG_SECONDS).set(lag.seconds);
            }
            Err(e) => tracing::warn!(error = %e, "metrics: cannot read the views' lag"),
        }
        if !self.relay {
            return;
        }
        match RelayReport::read(&self.pool, Relay::SUBSCRIBER).await {
            Ok(report) => {
                ::metrics::gauge!(crate::metrics::RELAY_LAG_EVENTS).set(report.lag.events as f64);
                ::metrics::gauge!(crate::metrics::RELAY_LAG_SECONDS).set(report.lag.seconds);
            }
            Err(e) => tracing::warn!(error = %e, "metrics: cannot read the relay's lag"),
        }
    }

    async fn view_lag(&self) -> sqlx::Result<crate::feed::Lag> {
        let at = Checkpoints::peek(&self.pool, Projector::VIEWS).await?.unwrap_or_default();
        lag_after(&self.pool, at).await
    }
}
