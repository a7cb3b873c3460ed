//! Aggregates, commands, rules and ports of MCP Provisioner.
//!
//! Nothing here does I/O: a command is decided by an aggregate from its own events and from
//! the lookups its `Services` port offers, and the adapters in `services` supply both.
//!
//! Layout:
//! - [`project`]: the tenant and its API keys.
//! - [`server`]: the MCP server registry, with the rules a server's configuration obeys.
//! - [`instance`]: a user's instance of a server and its credential, one aggregate per
//!   (project, server, user).
//! - [`oauth_app`]: a project's own OAuth clients.
//! - [`Recorded`]: how an event of the `events` crate is stored by cqrs-es.
//! - [`Patch`]: a field of a partial update (keep, clear, or set).

pub mod instance;
pub mod oauth_app;
pub mod patch;
pub mod project;
pub mod recorded;
pub mod server;

pub use patch::Patch;
pub use recorded::Recorded;
