//! The MCP server registry: a project registers servers (how to reach them, with which
//! credentials), changes and deletes them. Names are unique within a project, ignoring case.

mod aggregate;
mod command;
mod directory;
mod error;
mod field;
mod rules;
mod spec;

pub use aggregate::Server;
pub use command::ServerCommand;
pub use directory::{LookupFailed, ServerDirectory};
pub use error::ServerError;
pub use field::{
    AbsoluteUrl, EnvName, FieldError, HeaderName, ServerField, ServerName, Text, TimeoutMs, check_header_value,
};
pub use rules::{
    DEFAULT_MAX_TOTAL_TIMEOUT_MS, DEFAULT_PROXY_AUTH_HEADER, DEFAULT_REQUEST_TIMEOUT_MS, validate_patch, validate_spec,
};
pub use spec::{ComposioSettings, Header, ServerPatch, ServerSpec};
