//! The MCP gateway on the record: every session it opened or closed and every `tools/call`
//! (target, tool, outcome, duration, request id; never arguments or results), durable before
//! the call is answered, and published to NATS exactly once.
//!
//! - [`recorder`]: group commit. A call hands its record over and waits for the commit of the
//!   batch it landed in; batches are one multi-row INSERT each.
//! - [`store`]: the `gateway_calls` table (migration 0014): writes, reads in commit order and
//!   per target in time order.
//! - [`publisher`]: the records on the events' JetStream stream, under
//!   `provisioner.gateway.<project>.<kind>` (typed in [`events::gateway`]).
//!
//! What a record says about a request (and when one is made) is the gateway's business:
//! `gateway::record`.

pub mod publisher;
pub mod recorder;
pub mod store;

pub use publisher::Publisher;
pub use recorder::{RecordError, Recorder, RecorderTask};
pub use store::{StoredRecord, Whose};
