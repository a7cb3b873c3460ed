//! NATS, as every part of the service reaches it: the settings (servers, TLS, credentials,
//! the stream's shape and names), checked once at start, and the one function that turns them
//! into a connection ([`connect_options`]), so that no connecting part (the relay, the
//! gateway's record publisher and replica link, `verify`, `republish`, `relay --status`, the
//! benches) can forget the TLS or the credentials.
//!
//! - [`settings`]: the arguments ([`NatsArgs`]) and their checked form ([`RelaySettings`]).
//! - [`security`]: TLS files and the one credential, read and checked at start; secrets are
//!   held redacted.
//! - [`connect`](mod@connect): the options, the connection, and a failure explained by the
//!   setting to look at ([`ConnectFailure`]).

pub mod connect;
pub mod security;
pub mod settings;

pub use connect::{ConnectFailure, connect, connect_options, probe};
pub use security::{Auth, Security, Tls};
pub use settings::{NatsArgs, RelaySettings};
