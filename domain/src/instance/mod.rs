//! Instances: one aggregate per (project, server, user), the slot. It holds at most one live
//! instance and at most one credential; creating is idempotent, so concurrent creates for one
//! slot meet on one aggregate and yield one instance.

mod accounts;
mod aggregate;
mod command;
mod error;
mod user_id;

pub use accounts::{AccountDirectory, Unusable};

pub use aggregate::Instance;
pub use command::{AuthTarget, Credential, InstanceCommand};
pub use error::InstanceError;
pub use user_id::{UserId, slot_id};
