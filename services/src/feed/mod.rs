//! The feed: every committed event in one global commit order, for subscribers that must not
//! miss or repeat an event (the projector, the NATS relay).
//!
//! `global_position` alone is insertion order, and a transaction that inserts position 7 can
//! commit after one that inserted position 9. A reader that went past 9 would then never see
//! 7. So the feed orders by `(transaction_id, global_position)` and only reads events whose
//! transaction id is below the oldest transaction still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`): once that horizon has passed an id, no event
//! can appear below it any more. Readers wake on `LISTEN events_appended` and poll as a
//! fallback.

mod checkpoint;
mod position;
mod range;
mod reader;
mod wake;

pub use checkpoint::{CHECKPOINT_CHANNEL, Checkpoints};
pub use position::Position;
pub use range::{Bound, Range, read_range};
pub use reader::{BELOW_HORIZON, FeedEvent, Lag, committed_beyond, current_shape, lag_after, read_after, read_stream};
pub use wake::FeedWake;
