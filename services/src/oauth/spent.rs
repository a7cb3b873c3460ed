//! Spending an OAuth state: the first callback that presents a state uses it up, before the
//! code is exchanged, so a state makes the service call a token endpoint at most once, even
//! when the exchange fails. (The instance and the connected account still refuse a second
//! credential from one state; this refuses the second attempt itself.)

use super::state::StateClaims;
use sqlx::PgPool;

#[derive(Clone)]
pub struct SpentStates {
    pool: PgPool,
}

impl SpentStates {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Marks the state used; `false` if a callback used it already. Also drops the marks of
    /// states expired for an hour, which can no longer be opened (the margin covers clocks
    /// of processes that disagree a little).
    pub async fn spend(&self, claims: &StateClaims) -> Result<bool, sqlx::Error> {
        let inserted = sqlx::query(
            "WITH purged AS (DELETE FROM spent_oauth_states WHERE expires_at < now() - interval '1 hour') \
             INSERT INTO spent_oauth_states (nonce, expires_at) VALUES ($1, to_timestamp($2)) \
             ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(&claims.nonce)
        .bind(claims.expires_at as f64)
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }
}
