//! Destroys the data key of every deleted credential, from the feed.
//!
//! It runs with the views' projector, in the same transaction as the checkpoint, so a
//! deletion that committed is shredded exactly once even if the process dies in between.
//! It is not a view: a rebuild does not run it.

use super::Credential;
use crate::feed::FeedEvent;
use crate::projection::Projection;
use events::ServerEvent;
use sqlx::PgConnection;

pub struct Shredder;

#[async_trait::async_trait]
impl Projection for Shredder {
    fn name(&self) -> &'static str {
        "secret_shredder"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &FeedEvent) -> anyhow::Result<()> {
        let Some(ServerEvent::ServerDeleted(deleted)) = event.decode::<ServerEvent>()? else { return Ok(()) };
        let owner = Credential::Server(deleted.server_id).owner();
        sqlx::query("DELETE FROM secret_keys WHERE owner = $1").bind(&owner).execute(conn).await?;
        tracing::info!(%owner, "data key destroyed");
        Ok(())
    }
}
