//! The public event contract of MCP Provisioner.
//!
//! Every change to the system is recorded as one of the events below, in the Postgres event
//! store, and later published on NATS JetStream. This crate is what a subscriber depends on:
//! it names every event, gives its version, and holds the id types shared by publisher and
//! subscriber. It has no I/O.
//!
//! Layout:
//! - [`ids`]: typed ids (`ProjectId`, `ServerId`, `ApiKeyId`), serialised as plain UUID strings.
//! - [`secret`]: [`SealedSecret`], the only form a secret takes inside an event.
//! - [`project`]: projects and their API keys.
//! - [`server`]: the MCP server registry.
//! - [`instance`]: a user's instance of a server, with its credential.
//! - [`oauth_app`]: a project's own OAuth clients ("white-labeling").
//! - [`auth_config`], [`connected_account`]: how users authenticate to a toolkit, and each
//!   user's connected account (Composio).
//! - [`envelope`]: what a subscriber receives on NATS (CloudEvents 1.0 JSON), the stream and
//!   subject names, and [`decode`], from a message to a typed event.
//! - [`namespace`]: a deployment's stream name and subject prefix ([`Namespace`]), for
//!   deployments that share one NATS; the default is the names of [`envelope`] and [`gateway`].
//! - [`gateway`]: the MCP gateway's records (sessions opened and closed, tool calls), their
//!   subjects and [`gateway::decode`]; not events of an aggregate, published beside them.
//! - [`upcast`](mod@upcast): every event type's current version, and the steps that bring a payload
//!   stored in an older version to the current shape.
//! - [`Event`]: the trait every aggregate's event enum implements (type name and version).

pub mod auth_config;
pub mod connected_account;
pub mod envelope;
pub mod gateway;
pub mod ids;
pub mod instance;
pub mod namespace;
pub mod oauth_app;
pub mod project;
pub mod secret;
pub mod server;
pub mod upcast;

pub use auth_config::AuthConfigEvent;
pub use connected_account::ConnectedAccountEvent;
pub use envelope::{AnyEvent, DecodeError, Envelope, Received, decode};
pub use ids::{ApiKeyId, IdParseError, InstanceId, ProjectId, ServerId};
pub use instance::InstanceEvent;
pub use namespace::{Namespace, NamespaceError};
pub use oauth_app::OAuthAppEvent;
pub use project::ProjectEvent;
pub use secret::SealedSecret;
pub use server::ServerEvent;
pub use upcast::{UpcastError, current_version, upcast};

use serde::{Serialize, de::DeserializeOwned};
use std::fmt::Debug;

/// What every aggregate's event enum tells about itself.
///
/// `event_type` is stable across versions and unique across aggregates
/// (`"server.registered"`); `event_version` changes when a payload changes shape, so that an
/// upcaster can bring an old payload to the current one.
pub trait Event: Serialize + DeserializeOwned + Clone + PartialEq + Debug + Send + Sync {
    /// The aggregate type these events belong to, as stored in `events.aggregate_type`.
    const AGGREGATE_TYPE: &'static str;

    /// The project (tenant) the event belongs to: every event has exactly one.
    fn project_id(&self) -> ProjectId;

    /// Stable name of this event, `<aggregate>.<past-tense verb>`.
    fn event_type(&self) -> &'static str;

    /// Version of this event's payload shape: the current one, from [`upcast::current_version`]
    /// (one table for writers and upcasters alike).
    fn event_version(&self) -> &'static str {
        let event_type = self.event_type();
        upcast::current_version(event_type)
            .unwrap_or_else(|| panic!("event type `{event_type}` is missing from events::upcast::CURRENT"))
    }
}
