//! A short-lived cache of resolved API keys: most requests of a busy client then skip the
//! key lookup. A revocation evicts the key at once (the projector announces it on
//! `api_key_revoked` in the transaction that records it); the TTL bounds how long a revoked
//! key could still be honoured if that announcement were lost.

use super::Caller;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const REVOCATION_CHANNEL: &str = "api_key_revoked";

/// Entries older than this are looked up again.
const TTL: Duration = Duration::from_secs(1);
/// Beyond this many keys the cache starts over (it only ever holds recently used keys).
const CAPACITY: usize = 10_000;

#[derive(Clone, Default)]
pub struct KeyCache {
    entries: Arc<Mutex<HashMap<String, (Caller, Instant)>>>,
}

impl KeyCache {
    pub fn get(&self, digest: &str) -> Option<Caller> {
        let entries = self.entries.lock().expect("not poisoned");
        let found = entries.get(digest).filter(|(_, at)| at.elapsed() < TTL).map(|(caller, _)| *caller);
        let result = if found.is_some() { "hit" } else { "miss" };
        ::metrics::counter!(crate::metrics::KEY_CACHE, "result" => result).increment(1);
        found
    }

    pub fn put(&self, digest: String, caller: Caller) {
        let mut entries = self.entries.lock().expect("not poisoned");
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(digest, (caller, Instant::now()));
    }

    fn evict_key(&self, key_id: &str) {
        self.entries.lock().expect("not poisoned").retain(|_, (caller, _)| caller.key_id.to_string() != key_id);
    }

    /// Evicts revoked keys as their revocations are announced, until `cancel` fires.
    pub async fn follow_revocations(&self, pool: PgPool, cancel: CancellationToken) -> sqlx::Result<()> {
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(REVOCATION_CHANNEL).await?;
        let cache = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    received = listener.try_recv() => match received {
                        Ok(Some(notification)) => cache.evict_key(notification.payload()),
                        // Reconnected: an announcement may have been missed; start over.
                        Ok(None) => cache.entries.lock().expect("not poisoned").clear(),
                        Err(e) => {
                            tracing::warn!(error = %e, "revocation listener failed");
                            cache.entries.lock().expect("not poisoned").clear();
                            tokio::time::sleep(TTL).await;
                        }
                    },
                }
            }
        });
        Ok(())
    }
}
