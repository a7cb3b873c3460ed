/// Why an instance command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceError {
    /// No such live instance in the caller's project (never created, deleted, or another
    /// project's: indistinguishable on purpose).
    #[error("instance not found")]
    NotFound,
    /// An OAuth `state` that already delivered a credential.
    #[error("this authorization was already completed")]
    StateAlreadyUsed,
}
