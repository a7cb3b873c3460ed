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
    /// The user cannot use these auth configs of the server (each with its reason).
    #[error("the user has no usable connected account for: {}", .0.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(", "))]
    MissingConnectedAccounts(Vec<super::Unusable>),
    /// A refresh (or expiry) of a credential the slot no longer holds: it was refreshed,
    /// replaced, expired or removed meanwhile.
    #[error("the credential changed meanwhile")]
    CredentialChanged,
    #[error(transparent)]
    Lookup(#[from] crate::LookupFailed),
}
