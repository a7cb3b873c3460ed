use super::CommandMetadata;
use super::event_size::{DEFAULT_MAX_EVENT_BYTES, SizeLimitedRepository};
use super::upcaster::Upcaster;
use crate::error::{AppError, EventTooLarge};
use crate::feed::{Position, current_shape};
use crate::projection::AwaitViews;
use cqrs_es::EventStore;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use domain::auth_config::{AuthConfig, AuthConfigCommand, AuthConfigError};
use domain::connected_account::{AliasDirectory, ConnectedAccount, ConnectedAccountCommand, ConnectedAccountError};
use domain::instance::{AccountDirectory, Instance, InstanceCommand, InstanceError};
use domain::oauth_app::{OAuthApp, OAuthAppCommand, OAuthAppError};
use domain::project::{Project, ProjectCommand, ProjectError};
use domain::server::{Server, ServerCommand, ServerDirectory, ServerError};
use events::{ProjectId, ServerId};
use postgres_es::PostgresEventRepository;
use rand::Rng;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

/// Runs commands against the event store: load the aggregate, decide, append, in one
/// optimistic transaction; retry when another writer won the race; then wait until the views
/// include the new events, so that the caller's next read sees them.
#[derive(Clone)]
pub struct CommandBus {
    pool: PgPool,
    projects: Arc<PostgresCqrs<Project>>,
    servers: Arc<PostgresCqrs<Server>>,
    instances: Arc<PostgresCqrs<Instance>>,
    oauth_apps: Arc<PostgresCqrs<OAuthApp>>,
    auth_configs: Arc<PostgresCqrs<AuthConfig>>,
    connected_accounts: Arc<PostgresCqrs<ConnectedAccount>>,
    views: Arc<dyn AwaitViews>,
    max_event_bytes: usize,
}

/// A command's events are committed. `visible` says whether the views include them (the usual
/// case); when they do not (the projector is behind or stuck), a caller answers from the
/// aggregate's committed state instead of a stale view.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    pub position: Position,
    pub visible: bool,
    /// The aggregate's newest event after the command (its own, or a concurrent writer's):
    /// enough for a caller to answer without reading a view.
    pub last_event: Option<LastEvent>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LastEvent {
    pub event_type: String,
    /// In its type's current shape.
    pub payload: serde_json::Value,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

/// Attempts per command before answering `Conflict`.
const MAX_ATTEMPTS: u32 = 10;

type Store<A> = PersistedEventStore<SizeLimitedRepository, A>;
type PostgresCqrs<A> = CqrsFramework<A, Store<A>>;

/// Pure event sourcing: postgres-es's snapshot stores apply new events twice in 0.5.0. Events
/// stored in an older version load through the upcaster; a commit holding an event larger
/// than `max_event_bytes` is refused.
fn store<A: Aggregate>(pool: &PgPool, max_event_bytes: usize) -> Store<A> {
    let repository = SizeLimitedRepository::new(PostgresEventRepository::new(pool.clone()), max_event_bytes);
    PersistedEventStore::new_event_store(repository).with_upcasters(vec![Box::new(Upcaster)])
}

fn cqrs<A: Aggregate>(pool: &PgPool, max_event_bytes: usize, services: A::Services) -> Arc<PostgresCqrs<A>> {
    Arc::new(CqrsFramework::new(store(pool, max_event_bytes), vec![], services))
}

impl CommandBus {
    /// A bus storing events of at most [`DEFAULT_MAX_EVENT_BYTES`] each.
    pub fn new(
        pool: PgPool,
        directory: Arc<dyn ServerDirectory>,
        accounts: Arc<dyn AccountDirectory>,
        aliases: Arc<dyn AliasDirectory>,
        views: Arc<dyn AwaitViews>,
    ) -> Self {
        Self::with_event_limit(pool, directory, accounts, aliases, views, DEFAULT_MAX_EVENT_BYTES)
    }

    pub fn with_event_limit(
        pool: PgPool,
        directory: Arc<dyn ServerDirectory>,
        accounts: Arc<dyn AccountDirectory>,
        aliases: Arc<dyn AliasDirectory>,
        views: Arc<dyn AwaitViews>,
        max_event_bytes: usize,
    ) -> Self {
        let limit = max_event_bytes;
        Self {
            projects: cqrs(&pool, limit, ()),
            servers: cqrs(&pool, limit, directory),
            instances: cqrs(&pool, limit, accounts),
            oauth_apps: cqrs(&pool, limit, ()),
            auth_configs: cqrs(&pool, limit, ()),
            connected_accounts: cqrs(&pool, limit, aliases),
            pool,
            views,
            max_event_bytes,
        }
    }

    /// The largest event this bus stores, in bytes of JSON (payload and metadata).
    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    /// Whether an answered write is still missing from the views (see [`AwaitViews::lagging`]).
    pub fn views_lagging(&self) -> bool {
        self.views.lagging()
    }

    /// Waits (bounded) until the views hold every write this process answered.
    pub async fn views_caught_up(&self) -> bool {
        self.views.await_answered().await
    }

    /// An aggregate's current state, folded from its events (for reads that need what no view
    /// holds, like a sealed credential).
    pub async fn load<A: Aggregate>(&self, id: &str) -> Result<A, AppError<A::Error>>
    where
        A::Error: std::error::Error,
    {
        match store::<A>(&self.pool, self.max_event_bytes).load_aggregate(id).await {
            Ok(context) => Ok(context.aggregate),
            Err(e) => Err(store_failure::<A>(id, e)),
        }
    }

    pub async fn project(
        &self,
        id: ProjectId,
        command: ProjectCommand,
        meta: &CommandMetadata,
    ) -> Result<Committed, AppError<ProjectError>> {
        self.execute(&self.projects, &id.to_string(), command, meta).await
    }

    pub async fn server(
        &self,
        id: ServerId,
        command: ServerCommand,
        meta: &CommandMetadata,
    ) -> Result<Committed, AppError<ServerError>> {
        self.execute(&self.servers, &id.to_string(), command, meta).await
    }

    pub async fn instance(
        &self,
        slot_id: &str,
        command: InstanceCommand,
        meta: &CommandMetadata,
    ) -> Result<Committed, AppError<InstanceError>> {
        self.execute(&self.instances, slot_id, command, meta).await
    }

    pub async fn oauth_app(
        &self,
        app_id: &str,
        command: OAuthAppCommand,
        meta: &CommandMetadata,
    ) -> Result<Committed, AppError<OAuthAppError>> {
        self.execute(&self.oauth_apps, app_id, command, meta).await
    }

    pub async fn auth_config(
        &self,
        id: &str,
        command: AuthConfigCommand,
        meta: &CommandMetadata,
    ) -> Result<Committed, AppError<AuthConfigError>> {
        self.execute(&self.auth_configs, id, command, meta).await
    }

    /// Waits (once more, for the views' usual bound) until the views include `committed`; true
    /// when they do. For a holder of a lock that must not be released before its change is read.
    pub async fn await_visible(&self, committed: &Committed) -> bool {
        committed.visible || self.views.await_views(committed.position).await
    }

    pub async fn connected_account(
        &self,
        id: &str,
        command: ConnectedAccountCommand,
        meta: &CommandMetadata,
    ) -> Result<Committed, AppError<ConnectedAccountError>> {
        self.execute(&self.connected_accounts, id, command, meta).await
    }

    /// Returns the feed position of the aggregate's last event once the views include it.
    async fn execute<A>(
        &self,
        cqrs: &PostgresCqrs<A>,
        id: &str,
        command: A::Command,
        meta: &CommandMetadata,
    ) -> Result<Committed, AppError<A::Error>>
    where
        A: Aggregate,
        A::Command: Clone + std::fmt::Debug,
        A::Error: std::error::Error,
    {
        let metadata = meta.to_map();
        let counted = crate::metrics::enabled().then(|| super::command_name::of(&command));
        let count = |outcome: &'static str| {
            if let Some(command) = counted {
                ::metrics::counter!(crate::metrics::COMMANDS, "aggregate" => A::TYPE, "command" => command, "outcome" => outcome)
                    .increment(1);
            }
        };
        let mut attempt = 1;
        loop {
            match cqrs.execute_with_metadata(id, command.clone(), metadata.clone()).await {
                Ok(()) => break,
                Err(AggregateError::UserError(e)) => {
                    count("rejected");
                    return Err(AppError::Rejected(e));
                }
                Err(AggregateError::AggregateConflict) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(aggregate = A::TYPE, id, attempt, "conflict; retrying");
                    ::metrics::counter!(crate::metrics::COMMAND_CONFLICT_RETRIES, "aggregate" => A::TYPE).increment(1);
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(AggregateError::AggregateConflict) => {
                    count("conflict");
                    return Err(AppError::Conflict);
                }
                Err(e) => {
                    let failure = store_failure::<A>(id, e);
                    count(if matches!(failure, AppError::TooLarge(_)) { "too_large" } else { "failed" });
                    return Err(failure);
                }
            }
        }
        count("ok");
        // Committed. From here on nothing may turn the answer into a failure.
        match self.last_event(A::TYPE, id).await {
            Ok(Some((position, last))) => {
                Ok(Committed { position, visible: self.views.await_views(position).await, last_event: Some(last) })
            }
            Ok(None) => Ok(Committed { position: Position::START, visible: true, last_event: None }),
            Err(e) => {
                tracing::warn!(error = %e, aggregate = A::TYPE, id, "committed, but its feed position cannot be read");
                Ok(Committed { position: Position::START, visible: false, last_event: None })
            }
        }
    }

    /// The aggregate's newest event and its feed position. If another writer appended after
    /// this command, waiting for that later position is still correct, just longer.
    async fn last_event(&self, aggregate_type: &str, id: &str) -> anyhow::Result<Option<(Position, LastEvent)>> {
        let row: Option<(String, i64, String, String, serde_json::Value, chrono::DateTime<chrono::Utc>)> =
            sqlx::query_as(
                "SELECT transaction_id::text, global_position, event_type, event_version, payload, recorded_at \
                 FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1",
            )
            .bind(aggregate_type)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some((tx, pos, event_type, event_version, payload, recorded_at)) = row else { return Ok(None) };
        let position = Position::from_columns(&tx, pos)?;
        let (_, payload) = current_shape(&event_type, event_version, payload)?;
        Ok(Some((position, LastEvent { event_type, payload, recorded_at })))
    }
}

/// A store error, told apart: an event over the size limit (413), unreachable (503, retry) or
/// broken (500).
fn store_failure<A: Aggregate>(id: &str, e: AggregateError<A::Error>) -> AppError<A::Error>
where
    A::Error: std::error::Error,
{
    if let AggregateError::UnexpectedError(cause) = &e
        && let Some(too_large) = cause.downcast_ref::<EventTooLarge>()
    {
        return AppError::TooLarge(too_large.clone());
    }
    let unreachable = match &e {
        AggregateError::DatabaseConnectionError(_) => true,
        AggregateError::UnexpectedError(cause) => {
            cause.downcast_ref::<sqlx::Error>().is_some_and(crate::error::is_unavailable)
                || cause.to_string().contains("pool timed out")
        }
        _ => false,
    };
    let cause = anyhow::anyhow!("{} {id}: {e}", A::TYPE);
    if unreachable { AppError::Unavailable(cause) } else { AppError::Failed(cause) }
}

/// Exponential backoff with full jitter, so that racing writers spread out.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = (2u64 << attempt.min(6)).min(100);
    Duration::from_millis(rand::thread_rng().gen_range(1..=cap_ms))
}
