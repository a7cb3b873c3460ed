use crate::feed::FeedEvent;
use crate::projection::Projection;
use crate::store::StreamTimes;
use chrono::{DateTime, TimeZone, Utc};
use domain::LookupFailed;
use domain::auth_config::AuthConfig;
use domain::connected_account::AccountState;
use domain::instance::AccountDirectory;
use events::connected_account::AccountRef;
use events::{ConnectedAccountEvent, ProjectId};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Connected accounts with their status: what an instance's precondition reads, and what the
/// account lists show. Never holds a credential.
pub struct ConnectedAccountsView;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRecord {
    pub connected_account_id: String,
    pub project_id: Uuid,
    pub auth_config_id: String,
    pub toolkit: String,
    pub auth_scheme: String,
    pub user_id: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub callback_url: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Whether its auth config is disabled.
    pub auth_config_disabled: bool,
    /// Whether its auth config is managed (Composio's `is_composio_managed`).
    pub auth_config_managed: bool,
}

impl AccountRecord {
    /// An account as its events say (for answering a write while the views lag).
    pub fn from_state(state: AccountState, times: StreamTimes, auth_config: Option<&AuthConfig>) -> Self {
        let project_id = state.account.project_id;
        let settings = auth_config.and_then(|c| c.settings_in(project_id));
        Self {
            connected_account_id: state.account.connected_account_id,
            project_id: *project_id.as_uuid(),
            auth_config_id: state.account.auth_config_id,
            toolkit: state.account.toolkit,
            auth_scheme: state.account.auth_scheme,
            user_id: state.account.user_id,
            status: state.status.as_str().to_owned(),
            status_reason: state.status_reason,
            callback_url: state.callback_url,
            expires_at: state.expires_at.and_then(|at| Utc.timestamp_opt(at, 0).single()),
            created_at: times.first,
            updated_at: times.last,
            auth_config_disabled: auth_config.is_some_and(|c| c.accepts_connections(project_id) == Ok(false)),
            auth_config_managed: settings.is_some_and(|s| s.managed),
        }
    }
}

/// What a list asks for; empty lists match everything.
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    pub user_ids: Vec<String>,
    pub auth_config_ids: Vec<String>,
    pub statuses: Vec<String>,
    pub toolkit_slugs: Vec<String>,
    pub connected_account_ids: Vec<String>,
    pub order_by_updated: bool,
    pub ascending: bool,
    pub limit: i64,
    pub offset: i64,
}

#[async_trait::async_trait]
impl Projection for ConnectedAccountsView {
    fn name(&self) -> &'static str {
        "connected_accounts"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["view_connected_accounts"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &FeedEvent) -> anyhow::Result<()> {
        use ConnectedAccountEvent as E;
        let Some(account_event) = event.decode::<ConnectedAccountEvent>()? else { return Ok(()) };
        let at = event.recorded_at;
        let a = account_event.account().clone();
        match account_event {
            E::ConnectedAccountInitiated(e) => {
                let expires = Utc.timestamp_opt(e.expires_at, 0).single();
                insert(conn, &a, "INITIATED", Some(&e.link_token_sha256), e.callback_url.as_deref(), expires, at).await
            }
            E::ConnectedAccountActivated(_) => {
                insert(conn, &a, "ACTIVE", None, None, None, at).await?;
                set_status(conn, &a, "ACTIVE", None, at).await
            }
            E::ConnectedAccountFailed(e) => set_status(conn, &a, "FAILED", Some(&e.reason), at).await,
            E::ConnectedAccountExpired(e) => set_status(conn, &a, "EXPIRED", Some(&e.reason), at).await,
            E::ConnectedAccountStatusChanged(e) => {
                set_status(conn, &a, if e.enabled { "ACTIVE" } else { "INACTIVE" }, Some(&e.reason), at).await
            }
            E::ConnectedAccountRevoked(e) => set_status(conn, &a, "REVOKED", Some(&e.reason), at).await,
            E::ConnectedAccountDeleted(_) => {
                sqlx::query("UPDATE view_connected_accounts SET deleted_at = $2, updated_at = $2 WHERE connected_account_id = $1")
                    .bind(&a.connected_account_id)
                    .bind(at)
                    .execute(conn)
                    .await?;
                Ok(())
            }
        }
    }
}

/// Inserts the account's row if it has none (its first event).
async fn insert(
    conn: &mut PgConnection,
    a: &AccountRef,
    status: &str,
    link: Option<&str>,
    callback_url: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO view_connected_accounts (connected_account_id, project_id, auth_config_id, toolkit, auth_scheme, \
            user_id, status, link_token_sha256, callback_url, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) ON CONFLICT (connected_account_id) DO NOTHING",
    )
    .bind(&a.connected_account_id)
    .bind(a.project_id.as_uuid())
    .bind(&a.auth_config_id)
    .bind(&a.toolkit)
    .bind(&a.auth_scheme)
    .bind(&a.user_id)
    .bind(status)
    .bind(link)
    .bind(callback_url)
    .bind(expires_at)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

async fn set_status(
    conn: &mut PgConnection,
    a: &AccountRef,
    status: &str,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE view_connected_accounts SET status = $2, status_reason = $3, updated_at = $4 WHERE connected_account_id = $1")
        .bind(&a.connected_account_id)
        .bind(status)
        .bind(reason)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

const SELECT: &str = "SELECT c.connected_account_id, c.project_id, c.auth_config_id, c.toolkit, c.auth_scheme, c.user_id, \
    c.status, c.status_reason, c.callback_url, c.expires_at, c.created_at, c.updated_at, \
    coalesce(NOT a.enabled, false) AS auth_config_disabled, coalesce(a.managed, false) AS auth_config_managed \
    FROM view_connected_accounts c LEFT JOIN view_auth_configs a ON a.auth_config_id = c.auth_config_id";

pub(super) async fn find(pool: &PgPool, project_id: ProjectId, id: &str) -> sqlx::Result<Option<AccountRecord>> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE c.connected_account_id = $1 AND c.project_id = $2 AND c.deleted_at IS NULL"
    ))
    .bind(id)
    .bind(project_id.as_uuid())
    .fetch_optional(pool)
    .await
}

pub(super) async fn by_link(pool: &PgPool, link_token_sha256: &str) -> sqlx::Result<Option<AccountRecord>> {
    sqlx::query_as(&format!("{SELECT} WHERE c.link_token_sha256 = $1 AND c.deleted_at IS NULL"))
        .bind(link_token_sha256)
        .fetch_optional(pool)
        .await
}

pub(super) async fn list(
    pool: &PgPool,
    project_id: ProjectId,
    f: &AccountFilter,
) -> sqlx::Result<(Vec<AccountRecord>, i64)> {
    let condition = "c.project_id = $1 AND c.deleted_at IS NULL \
        AND (cardinality($2::text[]) = 0 OR c.user_id = ANY($2)) \
        AND (cardinality($3::text[]) = 0 OR c.auth_config_id = ANY($3)) \
        AND (cardinality($4::text[]) = 0 OR c.status = ANY($4)) \
        AND (cardinality($5::text[]) = 0 OR c.toolkit = ANY($5)) \
        AND (cardinality($6::text[]) = 0 OR c.connected_account_id = ANY($6))";
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM view_connected_accounts c WHERE {condition}"))
        .bind(project_id.as_uuid())
        .bind(&f.user_ids)
        .bind(&f.auth_config_ids)
        .bind(&f.statuses)
        .bind(&f.toolkit_slugs)
        .bind(&f.connected_account_ids)
        .fetch_one(pool)
        .await?;
    let order = format!(
        "c.{} {}, c.connected_account_id",
        if f.order_by_updated { "updated_at" } else { "created_at" },
        if f.ascending { "ASC" } else { "DESC" }
    );
    let items = sqlx::query_as(&format!("{SELECT} WHERE {condition} ORDER BY {order} LIMIT $7 OFFSET $8"))
        .bind(project_id.as_uuid())
        .bind(&f.user_ids)
        .bind(&f.auth_config_ids)
        .bind(&f.statuses)
        .bind(&f.toolkit_slugs)
        .bind(&f.connected_account_ids)
        .bind(f.limit)
        .bind(f.offset)
        .fetch_all(pool)
        .await?;
    Ok((items, total))
}

/// The user's accounts for `auth_config_ids` (what deleting an instance cascades to).
pub(super) async fn of_user_for(
    pool: &PgPool,
    project_id: ProjectId,
    user_id: &str,
    auth_config_ids: &[String],
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT connected_account_id FROM view_connected_accounts \
         WHERE project_id = $1 AND user_id = $2 AND auth_config_id = ANY($3) AND deleted_at IS NULL",
    )
    .bind(project_id.as_uuid())
    .bind(user_id)
    .bind(auth_config_ids)
    .fetch_all(pool)
    .await
}

/// Pending connections whose time is up.
pub(super) async fn due(pool: &PgPool, now: DateTime<Utc>) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT connected_account_id FROM view_connected_accounts \
         WHERE deleted_at IS NULL AND status IN ('INITIALIZING', 'INITIATED') AND expires_at <= $1 LIMIT 1000",
    )
    .bind(now)
    .fetch_all(pool)
    .await
}

/// The precondition's lookup, from the view.
pub struct PgAccountDirectory {
    pool: PgPool,
}

impl PgAccountDirectory {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait::async_trait]
impl AccountDirectory for PgAccountDirectory {
    async fn lacking_active_accounts(
        &self,
        project: ProjectId,
        user_id: &str,
        ids: &[String],
    ) -> Result<Vec<String>, LookupFailed> {
        sqlx::query_scalar(
            "SELECT id FROM UNNEST($3::text[]) WITH ORDINALITY AS required(id, n) WHERE NOT EXISTS \
               (SELECT 1 FROM view_connected_accounts c WHERE c.project_id = $1 AND c.user_id = $2 \
                AND c.auth_config_id = required.id AND c.status = 'ACTIVE' AND c.deleted_at IS NULL) ORDER BY n",
        )
        .bind(project.as_uuid())
        .bind(user_id)
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| LookupFailed(e.to_string()))
    }
}
