//! The `idempotency_keys` table: a row is claimed before its request runs, completed with the
//! response, released when the response is not to be kept (a 5xx), and swept once expired.
//! Every time is the database's `now()`, so replicas with skewed clocks agree.

use super::IdempotencySettings;
use events::ProjectId;
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A response as kept: status, the headers that describe it, and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// What claiming a key found.
#[derive(Debug)]
pub enum Claim {
    /// The key is this request's: run it, then [`IdempotencyStore::complete`] or
    /// [`IdempotencyStore::release`] with this claim.
    Owned(Uuid),
    /// The key belongs to another request (method, path or body differ).
    Mismatch,
    /// The same request is still running elsewhere.
    InFlight,
    /// The same request already ran; its response.
    Done(StoredResponse),
    /// The row went away between the claim and the look (released or swept): claim again.
    Vanished,
}

#[derive(Clone)]
pub struct IdempotencyStore {
    pool: PgPool,
    settings: IdempotencySettings,
}

type Row = (Vec<u8>, Option<i16>, Option<Vec<String>>, Option<Vec<Vec<u8>>>, Option<Vec<u8>>);

impl IdempotencyStore {
    pub fn new(pool: PgPool, settings: IdempotencySettings) -> Self {
        Self { pool, settings }
    }

    pub fn settings(&self) -> &IdempotencySettings {
        &self.settings
    }

    /// Claims `key` for a request with this fingerprint. An expired row is taken over whatever
    /// it held; a running one whose lease lapsed is taken over by the same request only.
    ///
    /// The claim commits without waiting for its WAL flush (`synchronous_commit` off for this
    /// statement alone): the write the request then makes commits after it, and flushing that
    /// commit flushes all WAL before it, the claim included. A claim whose request wrote nothing
    /// may be lost in a Postgres crash, which loses nothing but the claim. This saves a flush
    /// per keyed request (see `bench http`).
    pub async fn claim(&self, project: ProjectId, key: &str, fingerprint: &[u8]) -> sqlx::Result<Claim> {
        let claim = Uuid::new_v4();
        let claimed: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO idempotency_keys (project_id, key, fingerprint, claim, claimed_until) \
             SELECT $1::uuid, $2::text, $3::bytea, $4::uuid, now() + make_interval(secs => $5) \
             FROM (SELECT set_config('synchronous_commit', 'off', true)) AS this_statement_only \
             ON CONFLICT (project_id, key) DO UPDATE SET \
               fingerprint = EXCLUDED.fingerprint, claim = EXCLUDED.claim, claimed_until = EXCLUDED.claimed_until, \
               created_at = now(), status = NULL, header_names = NULL, header_values = NULL, body = NULL \
             WHERE idempotency_keys.created_at < now() - make_interval(secs => $6) \
                OR (idempotency_keys.status IS NULL AND idempotency_keys.claimed_until < now() \
                    AND idempotency_keys.fingerprint = EXCLUDED.fingerprint) \
             RETURNING claim",
        )
        .bind(project.as_uuid())
        .bind(key)
        .bind(fingerprint)
        .bind(claim)
        .bind(self.settings.lease.as_secs_f64())
        .bind(self.settings.ttl.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        if claimed == Some(claim) {
            return Ok(Claim::Owned(claim));
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT fingerprint, status, header_names, header_values, body FROM idempotency_keys \
             WHERE project_id = $1 AND key = $2 AND created_at >= now() - make_interval(secs => $3)",
        )
        .bind(project.as_uuid())
        .bind(key)
        .bind(self.settings.ttl.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            None => Claim::Vanished,
            Some((kept, ..)) if kept != fingerprint => Claim::Mismatch,
            Some((_, None, ..)) => Claim::InFlight,
            Some((_, Some(status), names, values, body)) => Claim::Done(StoredResponse {
                status: status as u16,
                headers: names.unwrap_or_default().into_iter().zip(values.unwrap_or_default()).collect(),
                body: body.unwrap_or_default(),
            }),
        })
    }

    /// Keeps the response of the request that owns `claim`. False when the claim was lost (its
    /// lease lapsed and another run took the key): that run's answer stands.
    pub async fn complete(
        &self,
        project: ProjectId,
        key: &str,
        claim: Uuid,
        response: &StoredResponse,
    ) -> sqlx::Result<bool> {
        let (names, values): (Vec<String>, Vec<Vec<u8>>) = response.headers.iter().cloned().unzip();
        let done = sqlx::query(
            "UPDATE idempotency_keys SET status = $4, header_names = $5, header_values = $6, body = $7 \
             WHERE project_id = $1 AND key = $2 AND claim = $3",
        )
        .bind(project.as_uuid())
        .bind(key)
        .bind(claim)
        .bind(response.status as i16)
        .bind(names)
        .bind(values)
        .bind(&response.body)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the key up: the request's response is not kept, and a retry runs it again.
    pub async fn release(&self, project: ProjectId, key: &str, claim: Uuid) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE project_id = $1 AND key = $2 AND claim = $3")
            .bind(project.as_uuid())
            .bind(key)
            .bind(claim)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes expired keys, in batches so that no statement holds many rows; how many.
    pub async fn sweep(&self) -> sqlx::Result<u64> {
        const BATCH: i64 = 5000;
        let mut swept = 0;
        loop {
            let deleted = sqlx::query(
                "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys \
                 WHERE created_at < now() - make_interval(secs => $1) LIMIT $2)",
            )
            .bind(self.settings.ttl.as_secs_f64())
            .bind(BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
            swept += deleted;
            if deleted < BATCH as u64 {
                return Ok(swept);
            }
        }
    }
}

/// `serve`'s periodic sweep. Every replica runs one: deleting is idempotent, and the index on
/// `created_at` keeps a sweep that finds nothing cheap.
pub async fn run_sweeper(store: IdempotencyStore, cancel: CancellationToken) {
    let every: Duration = store.settings.sweep_every;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match store.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(swept = n, "expired idempotency keys deleted"),
            Err(e) => tracing::warn!(error = %e, "sweeping idempotency keys failed; retrying"),
        }
    }
}
