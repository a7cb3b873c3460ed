use super::Position;
use sqlx::{PgConnection, PgExecutor};

/// The NOTIFY channel on which a checkpoint's new position is announced as
/// `<subscriber> <transaction_id>/<global_position>`, so that writers waiting for their own
/// events to be projected (read-your-writes) wake at once.
pub const CHECKPOINT_CHANNEL: &str = "feed_checkpoint";

/// One checkpoint row per subscriber of the feed.
pub struct Checkpoints;

impl Checkpoints {
    /// The subscriber's position; a new subscriber gets a row at the start, before every event.
    pub async fn load(conn: &mut PgConnection, subscriber: &str) -> sqlx::Result<Position> {
        sqlx::query("INSERT INTO feed_checkpoints (subscriber) VALUES ($1) ON CONFLICT (subscriber) DO NOTHING")
            .bind(subscriber)
            .execute(&mut *conn)
            .await?;
        Self::peek(&mut *conn, subscriber).await.map(Option::unwrap_or_default)
    }

    /// The subscriber's position, without creating its row.
    pub async fn peek<'e>(db: impl PgExecutor<'e>, subscriber: &str) -> sqlx::Result<Option<Position>> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT transaction_id::text, global_position FROM feed_checkpoints WHERE subscriber = $1")
                .bind(subscriber)
                .fetch_optional(db)
                .await?;
        row.map(|(tx, pos)| Position::from_columns(&tx, pos).map_err(|e| sqlx::Error::Decode(e.into()))).transpose()
    }

    /// Locks the subscriber's row for the caller's transaction and returns its position. A
    /// second reader of the same subscriber waits here, before applying anything, and then
    /// sees that the checkpoint moved.
    pub async fn lock(conn: &mut PgConnection, subscriber: &str) -> sqlx::Result<Option<Position>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT transaction_id::text, global_position FROM feed_checkpoints WHERE subscriber = $1 FOR UPDATE",
        )
        .bind(subscriber)
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|(tx, pos)| Position::from_columns(&tx, pos).map_err(|e| sqlx::Error::Decode(e.into()))).transpose()
    }

    /// Moves the checkpoint from `from` to `to` inside the caller's transaction, and announces
    /// it on commit. Returns false (and changes nothing) if the checkpoint is no longer at
    /// `from`: another reader moved it, and this one's work must be rolled back.
    pub async fn advance(
        conn: &mut PgConnection,
        subscriber: &str,
        from: Position,
        to: Position,
    ) -> sqlx::Result<bool> {
        let moved = sqlx::query(
            "UPDATE feed_checkpoints \
             SET transaction_id = $4::text::xid8, global_position = $5, updated_at = now() \
             WHERE subscriber = $1 AND transaction_id = $2::text::xid8 AND global_position = $3",
        )
        .bind(subscriber)
        .bind(from.transaction_id.to_string())
        .bind(from.global_position)
        .bind(to.transaction_id.to_string())
        .bind(to.global_position)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        if moved {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHECKPOINT_CHANNEL)
                .bind(format!("{subscriber} {to}"))
                .execute(&mut *conn)
                .await?;
        }
        Ok(moved)
    }
}
