//! `/health` (the process answers) and `/ready` (it can serve: Postgres reachable,
//! migrations applied, views not lagging behind the event store) or is degraded (events are
//! not reaching NATS: the API still serves and writes still succeed).

use crate::feed::{Checkpoints, Lag, lag_after};
use crate::projection::Projector;
use crate::relay::{Relay, RelayReport};
use crate::store;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use sqlx::PgPool;
use std::time::Duration;

#[derive(Tags)]
enum HealthTags {
    /// Liveness and readiness.
    Health,
}

#[derive(Clone)]
pub struct Health {
    pool: PgPool,
    /// Views further behind than this make the service not ready; events further behind on
    /// NATS make it degraded.
    max_view_lag: Duration,
    /// This process runs a relay (NATS is configured), so one is expected to lead.
    relay_expected: bool,
}

impl Health {
    pub fn new(pool: PgPool, max_view_lag: Duration, relay_expected: bool) -> Self {
        Self { pool, max_view_lag, relay_expected }
    }

    pub async fn readiness(&self) -> Readiness {
        // Details name what failed, never why: /ready is unauthenticated, and database errors
        // carry hosts and role names. The cause goes to the log.
        let database = match sqlx::query("SELECT 1").execute(&self.pool).await {
            Ok(_) => Check::ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "readiness: database unreachable");
                return Readiness::failed(Check::failed("unreachable".into()));
            }
        };
        let migrations = match store::pending_migrations(&self.pool).await {
            Ok(0) => Check::ok(None),
            Ok(n) => Check::failed(format!("{n} migrations not applied")),
            Err(e) => {
                tracing::warn!(error = %e, "readiness: cannot read the migrations");
                Check::failed("cannot read the applied migrations".into())
            }
        };
        let (projector, lag) = match self.view_lag().await {
            Ok(lag) if lag.seconds <= self.max_view_lag.as_secs_f64() => (Check::ok(None), lag),
            Ok(lag) => (Check::failed(format!("views are {:.1} s behind", lag.seconds)), lag),
            Err(e) => {
                tracing::warn!(error = %e, "readiness: cannot read the views' lag");
                (Check::failed("cannot read the views' lag".into()), Lag::default())
            }
        };
        let (relay, relay_lag, relay_oversized_events) = self.relay().await;
        let oldest_transaction_seconds = store::oldest_transaction_seconds(&self.pool).await.unwrap_or(0.0);
        let ready = database.ok && migrations.ok && projector.ok;
        let status = match (ready, relay.ok) {
            (false, _) => "not_ready",
            (true, false) => "degraded",
            (true, true) => "ready",
        };
        Readiness {
            status: status.into(),
            database,
            migrations,
            projector,
            projector_lag_events: lag.events,
            projector_lag_seconds: lag.seconds,
            relay,
            relay_lag_events: relay_lag.events,
            relay_lag_seconds: relay_lag.seconds,
            relay_oversized_events,
            oldest_transaction_seconds,
        }
    }

    async fn relay(&self) -> (Check, Lag, i64) {
        let report = match RelayReport::read(&self.pool, Relay::SUBSCRIBER).await {
            Ok(report) => report,
            Err(e) => {
                tracing::warn!(error = %e, "readiness: cannot read the relay's state");
                return (Check::failed("cannot read the relay's state".into()), Lag::default(), 0);
            }
        };
        let check = match report.problem(self.max_view_lag) {
            Some(_) if report.heartbeat.is_none() && !self.relay_expected => {
                Check::ok(Some("not configured: set NATS_URL to publish events".into()))
            }
            Some(problem) => Check::failed(problem),
            None => Check::ok(report.notice()),
        };
        (check, report.lag, report.oversized.events)
    }

    async fn view_lag(&self) -> sqlx::Result<Lag> {
        let at = Checkpoints::peek(&self.pool, Projector::VIEWS).await?.unwrap_or_default();
        lag_after(&self.pool, at).await
    }
}

#[derive(Object, Debug, Clone)]
pub struct Check {
    pub ok: bool,
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
}

impl Check {
    fn ok(detail: Option<String>) -> Self {
        Self { ok: true, detail }
    }

    fn failed(detail: String) -> Self {
        Self { ok: false, detail: Some(detail) }
    }
}

#[derive(Object, Debug, Clone)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: String,
    pub database: Check,
    pub migrations: Check,
    pub projector: Check,
    /// Counted up to 100,000.
    pub projector_lag_events: i64,
    pub projector_lag_seconds: f64,
    /// Events reaching NATS: fails (and makes the status `degraded`) when NATS is unreachable,
    /// no relay is running, or the oldest unpublished event is older than the allowed lag.
    pub relay: Check,
    /// Events committed but not yet acknowledged by JetStream, counted up to 100,000.
    pub relay_lag_events: i64,
    /// Age of the oldest of them.
    pub relay_lag_seconds: f64,
    /// Events the relay published without their data, because the whole message would not
    /// fit the NATS server's `max_payload` (`data` null, `dataref` naming the audit API).
    /// Delivery goes on; the `relay` check's detail names the newest.
    pub relay_oversized_events: i64,
    /// Age of the oldest transaction that holds a transaction id in the whole Postgres
    /// cluster. The feed cannot pass it, so a long one delays every view (and so every
    /// write's answer): when views lag, look here first.
    pub oldest_transaction_seconds: f64,
}

impl Readiness {
    fn failed(database: Check) -> Self {
        let unknown = || Check::failed("database unreachable".into());
        Self {
            status: "not_ready".into(),
            database,
            migrations: unknown(),
            projector: unknown(),
            projector_lag_events: 0,
            projector_lag_seconds: 0.0,
            relay: unknown(),
            relay_lag_events: 0,
            relay_lag_seconds: 0.0,
            relay_oversized_events: 0,
            oldest_transaction_seconds: 0.0,
        }
    }
}

#[derive(Object)]
struct Alive {
    status: String,
}

#[derive(ApiResponse)]
enum ReadyResponse {
    /// Ready to serve (`status` is `ready`, or `degraded` when events are not reaching NATS).
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// Not ready; the body says which check failed.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

pub struct HealthApi {
    health: Health,
}

impl HealthApi {
    pub fn new(health: Health) -> Self {
        Self { health }
    }
}

#[OpenApi(tag = "HealthTags::Health")]
impl HealthApi {
    /// Liveness: the process answers.
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> Json<Alive> {
        Json(Alive { status: "ok".into() })
    }

    /// Readiness: Postgres reachable, migrations applied, views within the allowed lag.
    #[oai(path = "/ready", method = "get")]
    async fn ready(&self) -> ReadyResponse {
        let readiness = self.health.readiness().await;
        if readiness.status != "not_ready" {
            ReadyResponse::Ready(Json(readiness))
        } else {
            ReadyResponse::NotReady(Json(readiness))
        }
    }
}
