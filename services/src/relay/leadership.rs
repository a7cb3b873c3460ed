//! What every single-active NATS publisher of this service (the event relay, the gateway's
//! record publisher) does the same way: lead while it holds its advisory lock and stand by
//! otherwise, and, leading, connect to NATS retrying with backoff for as long as the lock
//! holds, then follow its table.

use super::{Backoff, pause};
use crate::projection::LeaderLock;
use async_nats::jetstream;
use sqlx::PgPool;
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A publisher's own steps; [`lead_while_elected`] runs them.
pub trait Publishing: Sync {
    /// Its name in the logs (`relay`).
    const ROLE: &'static str;

    fn pool(&self) -> &PgPool;
    fn lock_name(&self) -> String;
    fn connect(&self) -> impl Future<Output = anyhow::Result<jetstream::Context>> + Send;
    /// A failed connection, before the next try.
    fn connect_failed(&self, error: &anyhow::Error) -> impl Future<Output = ()> + Send;
    /// Publishes what it follows while the lock holds (returns when `cancel` fires).
    fn follow(
        &self,
        js: &jetstream::Context,
        lock: &mut LeaderLock,
        cancel: &CancellationToken,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Leads each time this process wins the publisher's lock (trying every `poll`), stands by
/// otherwise, until `cancel` fires; a lead that fails is logged and the lock tried again.
pub async fn lead_while_elected<P: Publishing>(publisher: &P, poll: Duration, cancel: &CancellationToken) {
    let lock_name = publisher.lock_name();
    while let Some(mut lock) = LeaderLock::acquire(publisher.pool(), &lock_name, poll, cancel).await {
        tracing::info!("{} leads", P::ROLE);
        if let Err(e) = lead(publisher, &mut lock, cancel).await {
            tracing::error!(error = format!("{e:#}"), "{} lost its footing; restarting", P::ROLE);
            pause(cancel, poll).await;
        }
        if cancel.is_cancelled() {
            break;
        }
    }
    tracing::info!("{} stopped", P::ROLE);
}

/// Connects (retrying until NATS answers), then follows while the lock holds.
async fn lead<P: Publishing>(publisher: &P, lock: &mut LeaderLock, cancel: &CancellationToken) -> anyhow::Result<()> {
    let mut retry = Backoff::default();
    let js = loop {
        match publisher.connect().await {
            Ok(js) => break js,
            Err(e) => {
                publisher.connect_failed(&e).await;
                if !lock.still_held().await {
                    anyhow::bail!("the leader lock's connection was lost");
                }
                retry.wait(cancel).await;
                if cancel.is_cancelled() {
                    return Ok(());
                }
            }
        }
    };
    publisher.follow(&js, lock, cancel).await
}
