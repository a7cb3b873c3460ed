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
    /// Infrastructure failed (database unreachable, an event that does not decode). Logged
    /// with its cause; clients get a generic message.
    #[error("internal failure: {0:#}")]
    Failed(anyhow::Error),
}

impl<E: std::error::Error> From<sqlx::Error> for AppError<E> {
    fn from(e: sqlx::Error) -> Self {
        Self::Failed(e.into())
    }
}

impl<E: std::error::Error> From<anyhow::Error> for AppError<E> {
    fn from(e: anyhow::Error) -> Self {
        Self::Failed(e)
    }
}
