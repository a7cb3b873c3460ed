//! Settings, from the environment or the command line (a flag overrides its variable).
//!
//! clap reads the raw values; this module checks them, so that an error names the setting
//! without echoing its value (a database URL may hold a password, the master key is one).
//! Here are the arguments several commands share (the database; NATS's are in `nats`) and the
//! checks behind them; `serve`'s own settings, which gather every part's, are `startup::settings`.

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
