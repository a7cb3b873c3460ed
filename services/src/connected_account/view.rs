use crate::feed::FeedEvent;
use crate::projection::Projection;
use crate::store::StreamTimes;
use chrono::{DateTime, TimeZone, Utc};
use domain::LookupFailed;
use domain::auth_config::AuthConfig;
use domain::connected_account::AccountState;
use domain::instance::{AccountDirectory, Unusable};
use events::connected_account::AccountRef;
use events::{ConnectedAccountEvent, ProjectId};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
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
    /// Composio's `alias` (v3.1).
    pub alias: Option<String>,
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
            alias: state.alias,
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
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    /// Folds the batch in memory over the rows it touches, then writes each row once.
    async fn apply_batch(&self, conn: &mut PgConnection, events: &[FeedEvent]) -> anyhow::Result<()> {
        let mut decoded = Vec::new();
        for event in events {
            if let Some(e) = event.decode::<ConnectedAccountEvent>()? {
                decoded.push((event.recorded_at, e));
            }
        }
        if decoded.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = decoded.iter().map(|(_, e)| e.account().connected_account_id.clone()).collect();
        let mut rows: HashMap<String, Row> = sqlx::query_as::<_, Row>(&format!(
            "SELECT {ROW_COLUMNS} FROM view_connected_accounts WHERE connected_account_id = ANY($1)"
        ))
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|row| (row.connected_account_id.clone(), row))
        .collect();
        for (at, event) in &decoded {
            fold(&mut rows, event, *at);
        }
        write(conn, rows.into_values().collect()).await
    }
}

/// A `view_connected_accounts` row, as the fold builds it.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    connected_account_id: String,
    project_id: Uuid,
    auth_config_id: String,
    toolkit: String,
    auth_scheme: String,
    user_id: String,
    status: String,
    status_reason: Option<String>,
    link_token_sha256: Option<String>,
    callback_url: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    alias: Option<String>,
}

const ROW_COLUMNS: &str = "connected_account_id, project_id, auth_config_id, toolkit, auth_scheme, user_id, status, \
    status_reason, link_token_sha256, callback_url, expires_at, created_at, updated_at, deleted_at, alias";

impl Row {
    fn new(a: &AccountRef, status: &str, at: DateTime<Utc>) -> Self {
        Self {
            connected_account_id: a.connected_account_id.clone(),
            project_id: *a.project_id.as_uuid(),
            auth_config_id: a.auth_config_id.clone(),
            toolkit: a.toolkit.clone(),
            auth_scheme: a.auth_scheme.clone(),
            user_id: a.user_id.clone(),
            status: status.to_owned(),
            status_reason: None,
            link_token_sha256: None,
            callback_url: None,
            expires_at: None,
            created_at: at,
            updated_at: at,
            deleted_at: None,
            alias: None,
        }
    }

    fn set_status(&mut self, status: &str, reason: Option<&str>, at: DateTime<Utc>) {
        self.status = status.to_owned();
        self.status_reason = reason.map(str::to_owned);
        self.updated_at = at;
    }
}

/// One event on the rows: an account's row is made by its first event (initiated, or
/// activated directly) and only changed by the others.
fn fold(rows: &mut HashMap<String, Row>, event: &ConnectedAccountEvent, at: DateTime<Utc>) {
    use ConnectedAccountEvent as E;
    let a = event.account();
    let id = &a.connected_account_id;
    match event {
        E::ConnectedAccountInitiated(e) => {
            rows.entry(id.clone()).or_insert_with(|| Row {
                link_token_sha256: Some(e.link_token_sha256.clone()),
                callback_url: e.callback_url.clone(),
                expires_at: Utc.timestamp_opt(e.expires_at, 0).single(),
                ..Row::new(a, "INITIATED", at)
            });
        }
        E::ConnectedAccountActivated(_) => {
            rows.entry(id.clone()).or_insert_with(|| Row::new(a, "ACTIVE", at)).set_status("ACTIVE", None, at);
        }
        other => {
            let Some(row) = rows.get_mut(id) else { return };
            match other {
                E::ConnectedAccountFailed(e) => row.set_status("FAILED", Some(&e.reason), at),
                E::ConnectedAccountExpired(e) => row.set_status("EXPIRED", Some(&e.reason), at),
                E::ConnectedAccountStatusChanged(e) => {
                    row.set_status(if e.enabled { "ACTIVE" } else { "INACTIVE" }, Some(&e.reason), at)
                }
                E::ConnectedAccountRevoked(e) => row.set_status("REVOKED", Some(&e.reason), at),
                E::ConnectedAccountRefreshed(_) => row.set_status("ACTIVE", None, at),
                E::ConnectedAccountAliasChanged(e) => {
                    row.alias = e.alias.clone();
                    row.updated_at = at;
                }
                // The view holds no credential; the account was updated all the same.
                E::ConnectedAccountCredentialUpdated(_) => row.updated_at = at,
                E::ConnectedAccountDeleted(_) => {
                    row.deleted_at = Some(at);
                    row.updated_at = at;
                }
                E::ConnectedAccountInitiated(_) | E::ConnectedAccountActivated(_) => unreachable!("matched above"),
            }
        }
    }
}

/// One upsert for every row the batch touched.
async fn write(conn: &mut PgConnection, rows: Vec<Row>) -> anyhow::Result<()> {
    macro_rules! column {
        ($field:ident) => {
            rows.iter().map(|r| r.$field.clone()).collect::<Vec<_>>()
        };
    }
    sqlx::query(&format!(
        "INSERT INTO view_connected_accounts ({ROW_COLUMNS}) \
         SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
            $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[], \
            $14::timestamptz[], $15::text[]) \
         ON CONFLICT (connected_account_id) DO UPDATE SET status = EXCLUDED.status, \
            status_reason = EXCLUDED.status_reason, updated_at = EXCLUDED.updated_at, deleted_at = EXCLUDED.deleted_at, \
            alias = EXCLUDED.alias"
    ))
    .bind(column!(connected_account_id))
    .bind(column!(project_id))
    .bind(column!(auth_config_id))
    .bind(column!(toolkit))
    .bind(column!(auth_scheme))
    .bind(column!(user_id))
    .bind(column!(status))
    .bind(column!(status_reason))
    .bind(column!(link_token_sha256))
    .bind(column!(callback_url))
    .bind(column!(expires_at))
    .bind(column!(created_at))
    .bind(column!(updated_at))
    .bind(column!(deleted_at))
    .bind(column!(alias))
    .execute(conn)
    .await?;
    Ok(())
}

const SELECT: &str = "SELECT c.connected_account_id, c.project_id, c.auth_config_id, c.toolkit, c.auth_scheme, c.user_id, \
    c.status, c.status_reason, c.callback_url, c.expires_at, c.created_at, c.updated_at, c.alias, \
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
/// The user of a live account of the project, if there is one.
pub(super) async fn user_of(pool: &PgPool, project_id: ProjectId, id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT user_id FROM view_connected_accounts \
         WHERE project_id = $1 AND connected_account_id = $2 AND deleted_at IS NULL",
    )
    .bind(project_id.as_uuid())
    .bind(id)
    .fetch_optional(pool)
    .await
}

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
    async fn unusable_auth_configs(
        &self,
        project: ProjectId,
        user_id: &str,
        ids: &[String],
    ) -> Result<Vec<Unusable>, LookupFailed> {
        // Per required auth config: its state, and the user's best account of it (ACTIVE first).
        let rows: Vec<(String, Option<bool>, Option<String>)> = sqlx::query_as(
            "SELECT required.id, a.enabled, \
               (SELECT c.status FROM view_connected_accounts c WHERE c.project_id = $1 AND c.user_id = $2 \
                  AND c.auth_config_id = required.id AND c.deleted_at IS NULL \
                ORDER BY c.status = 'ACTIVE' DESC, c.updated_at DESC LIMIT 1) \
             FROM UNNEST($3::text[]) WITH ORDINALITY AS required(id, n) \
             LEFT JOIN view_auth_configs a ON a.auth_config_id = required.id AND a.project_id = $1 \
               AND a.deleted_at IS NULL \
             ORDER BY n",
        )
        .bind(project.as_uuid())
        .bind(user_id)
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| LookupFailed(e.to_string()))?;
        Ok(rows.into_iter().filter_map(|(id, enabled, status)| unusable(id, enabled, status.as_deref())).collect())
    }
}

/// Why an auth config does not count toward the precondition, or none when it does.
fn unusable(auth_config_id: String, enabled: Option<bool>, best_account: Option<&str>) -> Option<Unusable> {
    let reason = match (enabled, best_account) {
        (None, _) => "the auth config was deleted".to_owned(),
        (Some(false), _) => "the auth config is DISABLED".to_owned(),
        (Some(true), Some("ACTIVE")) => return None,
        (Some(true), None) => "no connected account for this user".to_owned(),
        (Some(true), Some("INACTIVE")) => "the user's connected account is disabled (INACTIVE)".to_owned(),
        (Some(true), Some(status)) => format!("the user's connected account is {status}, not ACTIVE"),
    };
    Some(Unusable { auth_config_id, reason })
}

#[cfg(test)]
mod precondition_tests {
    use super::*;

    #[test]
    fn only_an_enabled_auth_config_with_an_active_account_counts_and_each_other_case_says_why() {
        let why = |enabled, account| unusable("ac_1".into(), enabled, account).map(|u| u.reason);
        assert_eq!(why(Some(true), Some("ACTIVE")), None);
        assert_eq!(why(Some(false), Some("ACTIVE")).unwrap(), "the auth config is DISABLED");
        assert_eq!(why(None, Some("ACTIVE")).unwrap(), "the auth config was deleted");
        assert_eq!(why(Some(true), None).unwrap(), "no connected account for this user");
        assert_eq!(why(Some(true), Some("INACTIVE")).unwrap(), "the user's connected account is disabled (INACTIVE)");
        assert_eq!(why(Some(true), Some("EXPIRED")).unwrap(), "the user's connected account is EXPIRED, not ACTIVE");
    }
}
