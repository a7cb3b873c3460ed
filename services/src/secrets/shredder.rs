//! Destroys the data key of every deleted or replaced credential, from the feed.
//!
//! It runs with the views' projector, in the same transaction as the checkpoint, so a
//! deletion that committed is shredded exactly once even if the process dies in between.
//! It is not a view: a rebuild does not run it.

use super::Credential;
use crate::feed::FeedEvent;
use crate::projection::Projection;
use events::{InstanceEvent, ServerEvent};
use sqlx::PgConnection;
use uuid::Uuid;

pub struct Shredder;

/// What an event destroys.
enum Doomed {
    Owner(String),
    Key(Uuid),
}

fn doomed_by(event: &FeedEvent) -> anyhow::Result<Option<Doomed>> {
    if let Some(ServerEvent::ServerDeleted(deleted)) = event.decode::<ServerEvent>()? {
        return Ok(Some(Doomed::Owner(Credential::Server(deleted.server_id).owner())));
    }
    let key = match event.decode::<InstanceEvent>()? {
        Some(InstanceEvent::InstanceAuthSet(e)) => e.replaced_key_id,
        Some(InstanceEvent::InstanceAuthCleared(e)) => Some(e.destroyed_key_id),
        Some(InstanceEvent::InstanceDeleted(e)) => e.destroyed_key_id,
        Some(InstanceEvent::InstanceUserErased(e)) => e.destroyed_key_id,
        _ => None,
    };
    Ok(key.map(Doomed::Key))
}

#[async_trait::async_trait]
impl Projection for Shredder {
    fn name(&self) -> &'static str {
        "secret_shredder"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &FeedEvent) -> anyhow::Result<()> {
        match doomed_by(event)? {
            Some(Doomed::Owner(owner)) => {
                sqlx::query("DELETE FROM secret_keys WHERE owner = $1").bind(&owner).execute(conn).await?;
                tracing::info!(%owner, "data key destroyed");
            }
            Some(Doomed::Key(key_id)) => {
                sqlx::query("DELETE FROM secret_keys WHERE key_id = $1").bind(key_id).execute(conn).await?;
                tracing::info!(%key_id, "data key destroyed");
            }
            None => {}
        }
        Ok(())
    }
}
