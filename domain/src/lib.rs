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
//! - [`auth_config`], [`connected_account`]: Composio's auth configs, and users' connected
//!   accounts with their status model.
//! - [`limits`]: the size limits of input, and the checks every surface shares.
//! - [`Recorded`]: how an event of the `events` crate is stored by cqrs-es.
//! - [`Patch`]: a field of a partial update (keep, clear, or set).

pub mod auth_config;
pub mod connected_account;
pub mod instance;
pub mod limits;
mod lookup;
pub mod oauth_app;
pub mod patch;
pub mod project;
pub mod recorded;
pub mod server;

pub use lookup::LookupFailed;
pub use patch::Patch;
pub use recorded::Recorded;
