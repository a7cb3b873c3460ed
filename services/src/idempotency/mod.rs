//! `Idempotency-Key` (IETF draft-ietf-httpapi-idempotency-key-header) on every authenticated
//! POST (and PATCH) of every surface: the first response to a (project, key) is kept in Postgres for a day,
//! and a retry with the same key and the same request gets it back byte for byte, marked
//! `Idempotent-Replayed: true`, from any replica and after a restart. See [`middleware`] for
//! the rules, [`store`] for how the rows are claimed, completed and swept.

pub mod key;
pub mod middleware;
pub mod store;

pub use key::MAX_KEY_CHARS;
pub use middleware::{Idempotency, Operations, Surfaces};
pub use store::{IdempotencyStore, run_sweeper};

use std::time::Duration;

/// How keys are kept and how long a retry waits for the request it repeats.
#[derive(Debug, Clone)]
pub struct IdempotencySettings {
    /// How long a response is kept (the draft's "expiry"; 24 h, as Stripe keeps them).
    pub ttl: Duration,
    /// How long a retry waits for the first request, still running, before it answers 409.
    pub wait: Duration,
    /// How long a running request owns its key: after that, a retry takes the key over, so that
    /// a process that died mid-request does not leave its key answering 409 for a day. Above
    /// every bound a request has (read-your-writes, the gateway's upstream timeout).
    pub lease: Duration,
    /// How often expired keys are deleted.
    pub sweep_every: Duration,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(24 * 3600),
            wait: Duration::from_secs(5),
            lease: Duration::from_secs(120),
            sweep_every: Duration::from_secs(600),
        }
    }
}
