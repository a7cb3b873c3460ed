use super::{FieldError, LookupFailed};

/// Why a server command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// No live server with this id in the caller's project (never registered, deleted, or
    /// another project's: the three are indistinguishable on purpose).
    #[error("MCP server not found")]
    NotFound,
    #[error("an MCP server named `{0}` already exists in this project")]
    NameTaken(String),
    #[error("this server id is already registered")]
    AlreadyRegistered,
    #[error("auth configs not found in this project: {}", .0.join(", "))]
    UnknownAuthConfigs(Vec<String>),
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Lookup(#[from] LookupFailed),
}
