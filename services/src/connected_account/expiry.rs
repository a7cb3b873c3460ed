//! The time-driven command: pending connections that outlive their window are expired. Every
//! `serve` process runs it; expiring is idempotent, so two at once do no harm.

use super::ConnectedAccounts;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub async fn run_expirer(accounts: ConnectedAccounts, every: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match accounts.expire_due().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "pending connections expired"),
            Err(e) => tracing::warn!(error = %e, "expiring pending connections failed; retrying"),
        }
    }
}
