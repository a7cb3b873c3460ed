//! Gauges read from the database when `/metrics` is scraped: the views' and the relay's lag
//! (the same figures `/ready` reports) and this process's pool use.

use crate::feed::{Checkpoints, lag_after};
use crate::projection::Projector;
use crate::relay::{Relay, RelayReport};
use sqlx::PgPool;

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
        ::metrics::gauge!(super::DB_POOL_CONNECTIONS, "state" => "in_use").set(f64::from(in_use));
        ::metrics::gauge!(super::DB_POOL_CONNECTIONS, "state" => "idle").set(self.pool.num_idle() as f64);
        match self.view_lag().await {
            Ok(lag) => {
                ::metrics::gauge!(super::PROJECTOR_LAG_EVENTS).set(lag.events as f64);
                ::metrics::gauge!(super::PROJECTOR_LAG_SECONDS).set(lag.seconds);
            }
            Err(e) => tracing::warn!(error = %e, "metrics: cannot read the views' lag"),
        }
        if !self.relay {
            return;
        }
        match RelayReport::read(&self.pool, Relay::SUBSCRIBER).await {
            Ok(report) => {
                ::metrics::gauge!(super::RELAY_LAG_EVENTS).set(report.lag.events as f64);
                ::metrics::gauge!(super::RELAY_LAG_SECONDS).set(report.lag.seconds);
            }
            Err(e) => tracing::warn!(error = %e, "metrics: cannot read the relay's lag"),
        }
    }

    async fn view_lag(&self) -> sqlx::Result<crate::feed::Lag> {
        let at = Checkpoints::peek(&self.pool, Projector::VIEWS).await?.unwrap_or_default();
        lag_after(&self.pool, at).await
    }
}
