//! The outcome every surface maps to its own wire format.

/// Why an operation did not take effect. In none of these cases was anything committed.
#[derive(Debug, thiserror::Error)]
pub enum AppError<E: std::error::Error> {
    /// The domain refused (not found, invalid, name taken, ...).
    #[error(transparent)]
    Rejected(E),
    /// Other writers kept changing the same aggregate; every retry lost the race.
    #[error("the resource is being changed concurrently; try again")]
    Conflict,
    /// The change would store an event larger than the store takes (the input's fields add up
    /// to too much, even though each is within its own limit).
    #[error(transparent)]
    TooLarge(EventTooLarge),
    /// The database cannot be reached right now (refused, timed out, pool exhausted): the
    /// client may retry.
    #[error("the store is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// Anything else that failed (an event that does not decode, a broken invariant). Logged
    /// with its cause; clients get a generic message.
    #[error("internal failure: {0:#}")]
    Failed(anyhow::Error),
}

impl<E: std::error::Error> AppError<E> {
    /// The same outcome with the domain's refusal mapped by `refusal` (for a service whose
    /// refusals widen or rename another's).
    pub fn map_rejected<F: std::error::Error>(self, refusal: impl FnOnce(E) -> F) -> AppError<F> {
        match self {
            Self::Rejected(e) => AppError::Rejected(refusal(e)),
            Self::Conflict => AppError::Conflict,
            Self::TooLarge(e) => AppError::TooLarge(e),
            Self::Unavailable(e) => AppError::Unavailable(e),
            Self::Failed(e) => AppError::Failed(e),
        }
    }
}

/// A command would store an event larger than the limit (the store's bound, see
/// `store::event_size`). Nothing was stored. It lives beside [`AppError`], which carries it to
/// every surface, so that the outcome does not depend on the store that produces it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {event_type} event would take {bytes} bytes; an event may take at most {limit} bytes")]
pub struct EventTooLarge {
    pub event_type: String,
    pub bytes: usize,
    pub limit: usize,
}

/// Whether a database error means "not reachable now" rather than "wrong".
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    // 55P03 lock_not_available: a `lock_timeout` passed waiting for another request's lock.
    let lock_timeout = matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03"));
    lock_timeout
        || matches!(e, sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed)
}

impl<E: std::error::Error> From<sqlx::Error> for AppError<E> {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) { Self::Unavailable(e.into()) } else { Self::Failed(e.into()) }
    }
}

impl<E: std::error::Error> From<anyhow::Error> for AppError<E> {
    fn from(e: anyhow::Error) -> Self {
        Self::Failed(e)
    }
}
