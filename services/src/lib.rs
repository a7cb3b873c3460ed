//! The running MCP Provisioner.
//!
//! Layout, by noun:
//! - [`store`]: the event store (postgres-es) and the [`store::CommandBus`] that runs
//!   commands with retries and read-your-writes.
//! - [`feed`]: every committed event in global commit order, with per-subscriber checkpoints.
//! - [`projection`]: the projector that builds views from the feed exactly once; rebuilds.
//! - [`secrets`]: envelope encryption of secrets and crypto-shredding.
//! - [`project`], [`server`]: surface-independent services over the domain's aggregates,
//!   with their views.
//! - [`http`]: request context, JSON bodies, authentication, `Problem`.
//! - [`instance`], [`oauth`], [`catalog`]: instances and their credentials, OAuth apps and the
//!   browser flow, the catalog of Klavis's servers.
//! - [`auth_config`], [`connected_account`]: Composio's auth configs and users' connected
//!   accounts (what an instance's precondition reads), with their expiry.
//! - [`gaia`], [`klavis`], [`composio`]: the three HTTP surfaces. [`health`]: `/health`, `/ready`.
//!   [`project_api`]: the calling project's own settings (its redirect allow-list).
//!   [`router`]: all of them mounted as one HTTP application.
//! - [`gateway`]: the MCP data plane at the URLs the surfaces hand out; [`gateway_record`]:
//!   its sessions and tool calls on the record (group commit) and on NATS.
//! - [`audit`]: who changed what and when, and any state as of a time (CLI and HTTP).
//! - [`verify`]: every view and the NATS stream checked against the event store.
//! - [`nats`]: the NATS settings (servers, TLS, credentials, stream and subject names) and the
//!   one function every part connects with.
//! - [`outbound`]: the HTTP client for calls to URLs projects name (token endpoints): public
//!   addresses only, no redirects, a capped answer.
//! - [`config`], [`startup`], [`cli`], [`telemetry`]: settings, wiring, the binary.

pub mod audit;
pub mod auth_config;
pub mod bench;
pub mod catalog;
pub mod cli;
pub mod composio;
pub mod config;
pub mod connected_account;
pub mod error;
pub mod feed;
pub mod gaia;
pub mod gateway;
pub mod gateway_record;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod instance;
pub mod klavis;
pub mod metrics;
pub mod nats;
pub mod oauth;
pub mod outbound;
pub mod precondition_lock;
pub mod project;
pub mod project_api;
pub mod projection;
pub mod rate_limit;
pub mod relay;
pub mod router;
pub mod secrets;
pub mod server;
pub mod spec;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod verify;
