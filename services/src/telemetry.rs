//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`), as JSON lines when
//! `PROVISIONER_LOG_FORMAT=json`. Request bodies and secrets are never logged: secrets are
//! `SecretString`s, whose Debug output is redacted.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,poem=warn"));
    let json = std::env::var("PROVISIONER_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // try_init: tests may have installed a subscriber already.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
