//! Settings, from the environment or the command line (a flag overrides its variable).
//!
//! clap reads the raw values; this module checks them, so that an error names the setting
//! without echoing its value (a database URL may hold a password, the master key is one).
//! Here are the arguments several commands share (the database, NATS) and the checks behind
//! them; `serve`'s own settings, which gather every part's, are `startup::settings`.

use std::net::SocketAddr;
use std::time::Duration;

/// A setting is missing or malformed. The message names the setting.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {setting} {problem}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(setting: &'static str, problem: impl Into<String>) -> Self {
        Self { setting, problem: problem.into() }
    }
}

/// No `Debug`: it holds a URL that may carry a password.
#[derive(Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Postgres connection URL of the event store and views.
    #[arg(long = "database-url", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    pub fn url(&self) -> Result<String, ConfigError> {
        const NAME: &str = "DATABASE_URL";
        let raw = self.database_url.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let raw =
            raw.ok_or_else(|| ConfigError::new(NAME, "is not set (e.g. postgres://user@127.0.0.1:5432/provisioner)"))?;
        if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://")) {
            return Err(ConfigError::new(NAME, "must be a postgres:// or postgresql:// URL"));
        }
        raw.parse::<sqlx::postgres::PgConnectOptions>().map_err(|e| {
            ConfigError::new(NAME, format!("is not a valid Postgres URL: {}", without_url(&e.to_string())))
        })?;
        Ok(raw.to_owned())
    }
}

/// Drops anything after `://` from a parser's message, in case it quotes the URL.
fn without_url(message: &str) -> String {
    message.split("://").next().unwrap_or(message).to_owned()
}

/// Where events are published, and the stream's shape.
#[derive(Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS server URL (JetStream), where events are published. Several servers of a cluster
    /// may be given, comma-separated. Without it, `serve` publishes nothing (the events wait in
    /// the store until a relay runs).
    #[arg(long = "nats-url", env = "NATS_URL")]
    pub nats_url: Option<String>,

    /// Replicas of the event stream (1 for one server, 3 for a cluster).
    #[arg(long = "nats-replicas", env = "PROVISIONER_NATS_REPLICAS", default_value_t = 1)]
    pub replicas: usize,

    /// The stream's duplicate window: a copy of a message (same `Nats-Msg-Id`) published within
    /// it is dropped. It must exceed the longest time the relay may take to retry a batch.
    #[arg(long = "nats-duplicate-window-secs", env = "PROVISIONER_NATS_DUPLICATE_WINDOW_SECS", default_value_t = 120)]
    pub duplicate_window_secs: u64,
}

/// Checked settings of the relay.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// One or more `nats://` URLs.
    pub nats_urls: Vec<String>,
    pub replicas: usize,
    pub duplicate_window: Duration,
}

impl NatsArgs {
    /// The relay's settings, or `None` when no NATS URL is set.
    pub fn relay_settings(&self) -> Result<Option<RelaySettings>, ConfigError> {
        let Some(raw) = self.nats_url.as_deref().map(str::trim).filter(|s| !s.is_empty()) else { return Ok(None) };
        let nats_urls = raw.split(',').map(check_nats_url).collect::<Result<Vec<_>, _>>()?;
        if !(1..=5).contains(&self.replicas) {
            return Err(ConfigError::new("PROVISIONER_NATS_REPLICAS", "must be between 1 and 5"));
        }
        if self.duplicate_window_secs == 0 {
            return Err(ConfigError::new("PROVISIONER_NATS_DUPLICATE_WINDOW_SECS", "must be at least 1 second"));
        }
        Ok(Some(RelaySettings {
            nats_urls,
            replicas: self.replicas,
            duplicate_window: Duration::from_secs(self.duplicate_window_secs),
        }))
    }

    /// Like [`Self::relay_settings`], for commands that cannot work without NATS.
    pub fn required(&self) -> Result<RelaySettings, ConfigError> {
        self.relay_settings()?.ok_or_else(|| ConfigError::new("NATS_URL", "is not set (e.g. nats://127.0.0.1:4222)"))
    }
}

fn check_nats_url(raw: &str) -> Result<String, ConfigError> {
    let url = url_of("NATS_URL", raw)?;
    match url.scheme() {
        "nats" | "tls" | "ws" | "wss" if url.host_str().is_some() => Ok(raw.trim().to_owned()),
        // async-nats also takes a bare host:port; the url crate reads `host` as a scheme.
        _ if raw.trim().parse::<SocketAddr>().is_ok() => Ok(raw.trim().to_owned()),
        _ => Err(ConfigError::new("NATS_URL", "must be a nats://host:port URL")),
    }
}

pub(crate) fn url_of(setting: &'static str, raw: &str) -> Result<url::Url, ConfigError> {
    url::Url::parse(raw.trim()).map_err(|e| ConfigError::new(setting, format!("is not a valid URL ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_error_does_not_echo_the_password() {
        for url in
            ["mysql://u:hunter2@h/db", "postgres://u:hunter2@h:notaport/db", "postgres://u:hunter2@h/db?sslmode=maybe"]
        {
            let err =
                DatabaseArgs { database_url: Some(url.into()) }.url().err().unwrap_or_else(|| panic!("{url} accepted"));
            assert_eq!(err.setting, "DATABASE_URL");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let missing = DatabaseArgs { database_url: None }.url().unwrap_err();
        assert!(missing.to_string().contains("DATABASE_URL is not set"), "{missing}");
    }
}
