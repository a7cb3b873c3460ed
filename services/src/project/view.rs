use super::Caller;
use crate::feed::FeedEvent;
use crate::projection::Projection;
use domain::project::{RateLimit, RedirectHosts};
use events::{ApiKeyId, ProjectEvent, ProjectId};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Projects and the keys that resolve to them.
pub struct ProjectViews;

#[async_trait::async_trait]
impl Projection for ProjectViews {
    fn name(&self) -> &'static str {
        "projects"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["view_projects", "view_api_keys"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &FeedEvent) -> anyhow::Result<()> {
        let Some(project_event) = event.decode::<ProjectEvent>()? else { return Ok(()) };
        let at = event.recorded_at;
        match project_event {
            ProjectEvent::ProjectCreated(e) => {
                sqlx::query(
                    "INSERT INTO view_projects (project_id, name, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (project_id) DO UPDATE SET name = EXCLUDED.name, created_at = EXCLUDED.created_at",
                )
                .bind(e.project_id.as_uuid())
                .bind(&e.name)
                .bind(at)
                .execute(conn)
                .await?;
            }
            ProjectEvent::ApiKeyIssued(e) => {
                sqlx::query(
                    "INSERT INTO view_api_keys (key_id, project_id, name, key_sha256, issued_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (key_id) DO UPDATE SET project_id = EXCLUDED.project_id, name = EXCLUDED.name, \
                        key_sha256 = EXCLUDED.key_sha256, issued_at = EXCLUDED.issued_at, revoked_at = NULL",
                )
                .bind(e.key_id.as_uuid())
                .bind(e.project_id.as_uuid())
                .bind(&e.name)
                .bind(&e.key_sha256)
                .bind(at)
                .execute(conn)
                .await?;
            }
            ProjectEvent::ApiKeyRevoked(e) => {
                sqlx::query("UPDATE view_api_keys SET revoked_at = $2 WHERE key_id = $1")
                    .bind(e.key_id.as_uuid())
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
                // Processes caching this key drop it when this transaction commits.
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(super::REVOCATION_CHANNEL)
                    .bind(e.key_id.to_string())
                    .execute(conn)
                    .await?;
            }
            ProjectEvent::RedirectHostsSet(e) => {
                sqlx::query("UPDATE view_projects SET redirect_hosts = $2 WHERE project_id = $1")
                    .bind(e.project_id.as_uuid())
                    .bind(&e.hosts)
                    .execute(conn)
                    .await?;
            }
            ProjectEvent::RateLimitSet(e) => {
                let column = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
                sqlx::query(
                    "UPDATE view_projects SET rate_limit_per_second = $2, rate_limit_burst = $3 WHERE project_id = $1",
                )
                .bind(e.project_id.as_uuid())
                .bind(e.limit.map(|l| column(l.per_second)))
                .bind(e.limit.map(|l| column(l.burst)))
                .execute(conn)
                .await?;
            }
        }
        Ok(())
    }
}

/// The caller of a live (not revoked) key with this digest, with its project's own rate.
pub(super) async fn live_key(pool: &PgPool, digest: &str) -> sqlx::Result<Option<Caller>> {
    let row: Option<(Uuid, Uuid, Option<i32>, Option<i32>)> = sqlx::query_as(
        "SELECT k.project_id, k.key_id, p.rate_limit_per_second, p.rate_limit_burst \
         FROM view_api_keys k LEFT JOIN view_projects p ON p.project_id = k.project_id \
         WHERE k.key_sha256 = $1 AND k.revoked_at IS NULL",
    )
    .bind(digest)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(project, key, per_second, burst)| Caller {
        project_id: ProjectId::from_uuid(project),
        key_id: ApiKeyId::from_uuid(key),
        rate_limit: rate_limit(per_second, burst),
    }))
}

fn rate_limit(per_second: Option<i32>, burst: Option<i32>) -> Option<RateLimit> {
    let (per_second, burst) = (u32::try_from(per_second?).ok()?, u32::try_from(burst?).ok()?);
    RateLimit::new(per_second, burst).ok()
}

/// A project's own rate per key; `None` for an unknown project.
pub(super) async fn rate_limit_of(pool: &PgPool, project_id: ProjectId) -> sqlx::Result<Option<Option<RateLimit>>> {
    let row: Option<(Option<i32>, Option<i32>)> =
        sqlx::query_as("SELECT rate_limit_per_second, rate_limit_burst FROM view_projects WHERE project_id = $1")
            .bind(project_id.as_uuid())
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(per_second, burst)| rate_limit(per_second, burst)))
}

/// A project's redirect allow-list; `None` for an unknown project.
pub(super) async fn redirect_hosts(pool: &PgPool, project_id: ProjectId) -> sqlx::Result<Option<RedirectHosts>> {
    let row: Option<Vec<String>> = sqlx::query_scalar("SELECT redirect_hosts FROM view_projects WHERE project_id = $1")
        .bind(project_id.as_uuid())
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|entries| RedirectHosts::recorded(&entries)))
}
