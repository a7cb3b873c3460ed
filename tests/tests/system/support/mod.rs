//! Test support: a fresh database per test, the app on a random port, a client for it.

mod app;
pub mod browser;
pub mod composio;
mod database;
pub mod legacy;
pub mod mcp;
pub mod nats;
pub mod oauth_provider;
pub mod process;
pub mod relay;

pub use app::{TestApp, json_of};
pub use database::TestDatabase;
pub use process::{CliRun, RelayProcess, ServeProcess, cli_project_key, run_cli};

use std::sync::Once;

/// Logs of the in-process app go to the test's output only with `TEST_LOG=1`.
pub fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            services::telemetry::init();
        }
    });
}
