/// A lookup a command depends on failed (the store was unreachable, say); the command cannot
/// be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("lookup failed: {0}")]
pub struct LookupFailed(pub String);
