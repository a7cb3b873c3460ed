use events::ApiKeyId;

/// Why a project command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectError {
    #[error("the project already exists")]
    AlreadyExists,
    #[error("project not found")]
    NotFound,
    #[error("API key {0} already exists")]
    KeyAlreadyIssued(ApiKeyId),
    #[error("API key {0} not found")]
    KeyNotFound(ApiKeyId),
    #[error("at most {max} redirect hosts are allowed, not {given}")]
    TooManyRedirectHosts { given: usize, max: usize },
}
