//! The NATS settings every command that reaches NATS shares (`serve`, `relay`, `verify`,
//! `republish`, the benches), and their checks. An error names the setting, never its value:
//! a URL may hold a password, a file a key.

use super::security::{self, Auth, Credentials, Security, Tls, UrlCredentials};
use crate::config::{ConfigError, url_of};
use events::Namespace;
use events::namespace::{DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX, NamespaceError};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const NATS_URL: &str = "NATS_URL";
pub const STREAM: &str = "PROVISIONER_NATS_STREAM";
pub const SUBJECT_PREFIX: &str = "PROVISIONER_NATS_SUBJECT_PREFIX";

/// Where events are published, how to connect there, and the stream's shape and names. No
/// `Debug`: it holds passwords and tokens. The ids are the flags' names: a command that
/// flattens these beside its own arguments (`republish --stream`) keeps both.
#[derive(Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS server URL (JetStream), where events are published: `nats://host:port`, or
    /// `tls://host:port` to insist on TLS; `nats://user:password@host:port` or
    /// `nats://token@host:port` carry a credential. Several servers of a cluster may be given,
    /// comma-separated. Without it, `serve` publishes nothing (the events wait in the store
    /// until a relay runs).
    #[arg(long = "nats-url", env = "NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,

    /// Replicas of the event stream (1 for one server, 3 for a cluster).
    #[arg(long = "nats-replicas", env = "PROVISIONER_NATS_REPLICAS", default_value_t = 1)]
    pub replicas: usize,

    /// The stream's duplicate window: a copy of a message (same `Nats-Msg-Id`) published within
    /// it is dropped. It must exceed the longest time the relay may take to retry a batch.
    #[arg(long = "nats-duplicate-window-secs", env = "PROVISIONER_NATS_DUPLICATE_WINDOW_SECS", default_value_t = 120)]
    pub duplicate_window_secs: u64,

    /// The JetStream stream events and gateway records go to. Two deployments sharing one
    /// NATS need two streams (and two subject prefixes).
    #[arg(
        id = "nats-stream",
        long = "nats-stream",
        value_name = "NAME",
        env = "PROVISIONER_NATS_STREAM",
        default_value = DEFAULT_STREAM
    )]
    pub stream: String,

    /// The first tokens of every subject: events on `<prefix>.events.>`, gateway records on
    /// `<prefix>.gateway.>`, the gateway's replicas on `<prefix>-legacy-sse.<replica>`.
    #[arg(
        id = "nats-subject-prefix",
        long = "nats-subject-prefix",
        value_name = "PREFIX",
        env = "PROVISIONER_NATS_SUBJECT_PREFIX",
        default_value = DEFAULT_SUBJECT_PREFIX
    )]
    pub subject_prefix: String,

    /// PEM file of the CA(s) that sign the NATS server's certificate, trusted instead of the
    /// system's roots. Setting it makes TLS required.
    #[arg(id = "nats-ca-file", long = "nats-ca-file", value_name = "PATH", env = "PROVISIONER_NATS_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// PEM certificate (chain) this service shows NATS, for mutual TLS; with
    /// `PROVISIONER_NATS_CLIENT_KEY`.
    #[arg(
        id = "nats-client-cert",
        long = "nats-client-cert",
        value_name = "PATH",
        env = "PROVISIONER_NATS_CLIENT_CERT"
    )]
    pub client_cert: Option<PathBuf>,

    /// PEM private key of `PROVISIONER_NATS_CLIENT_CERT`.
    #[arg(id = "nats-client-key", long = "nats-client-key", value_name = "PATH", env = "PROVISIONER_NATS_CLIENT_KEY")]
    pub client_key: Option<PathBuf>,

    /// A NATS `.creds` file (user JWT and NKey seed, as `nsc` writes it).
    #[arg(id = "nats-creds-file", long = "nats-creds-file", value_name = "PATH", env = "PROVISIONER_NATS_CREDS_FILE")]
    pub creds_file: Option<PathBuf>,

    /// A file holding an NKey user seed (`SU...`); the seed itself is never a setting.
    #[arg(
        id = "nats-nkey-seed-file",
        long = "nats-nkey-seed-file",
        value_name = "PATH",
        env = "PROVISIONER_NATS_NKEY_SEED_FILE"
    )]
    pub nkey_seed_file: Option<PathBuf>,

    /// NATS user name; with `PROVISIONER_NATS_PASSWORD`.
    #[arg(id = "nats-user", long = "nats-user", value_name = "USER", env = "PROVISIONER_NATS_USER")]
    pub user: Option<String>,

    /// NATS password of `PROVISIONER_NATS_USER` (prefer the variable to the flag, which other
    /// users of the machine can see).
    #[arg(
        id = "nats-password",
        long = "nats-password",
        value_name = "PASSWORD",
        env = "PROVISIONER_NATS_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,

    /// NATS authentication token.
    #[arg(
        id = "nats-token",
        long = "nats-token",
        value_name = "TOKEN",
        env = "PROVISIONER_NATS_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

impl Default for NatsArgs {
    /// What no setting at all gives: no NATS, the default stream and names.
    fn default() -> Self {
        Self {
            nats_url: None,
            replicas: 1,
            duplicate_window_secs: 120,
            stream: DEFAULT_STREAM.into(),
            subject_prefix: DEFAULT_SUBJECT_PREFIX.into(),
            ca_file: None,
            client_cert: None,
            client_key: None,
            creds_file: None,
            nkey_seed_file: None,
            user: None,
            password: None,
            token: None,
        }
    }
}

/// Checked NATS settings: the servers, TLS and credential ([`Security`]), the stream's shape,
/// and its names ([`Namespace`]). `Debug` shows no secret: the URLs are kept without their
/// user info, which went into `security`.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// One or more `nats://` (or `tls://`) URLs, without credentials.
    pub nats_urls: Vec<String>,
    pub replicas: usize,
    pub duplicate_window: Duration,
    pub security: Security,
    pub namespace: Namespace,
}

impl Default for RelaySettings {
    /// The settings of a local, open NATS with the default stream: only the URLs to fill in.
    fn default() -> Self {
        Self {
            nats_urls: Vec::new(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            security: Security::default(),
            namespace: Namespace::default(),
        }
    }
}

/// Non-empty, trimmed.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl NatsArgs {
    /// The relay's settings, or `None` when no NATS URL is set. Reads and checks every file
    /// named (CA, client certificate and key, NKey seed, creds).
    pub fn relay_settings(&self) -> Result<Option<RelaySettings>, ConfigError> {
        let Some(raw) = given(&self.nats_url) else { return Ok(None) };
        let servers = raw.split(',').map(check_nats_url).collect::<Result<Vec<_>, _>>()?;
        let url_credentials = same_credentials(&servers)?;
        if !(1..=5).contains(&self.replicas) {
            return Err(ConfigError::new("PROVISIONER_NATS_REPLICAS", "must be between 1 and 5"));
        }
        if self.duplicate_window_secs == 0 {
            return Err(ConfigError::new("PROVISIONER_NATS_DUPLICATE_WINDOW_SECS", "must be at least 1 second"));
        }
        let namespace = Namespace::new(self.stream.trim(), self.subject_prefix.trim()).map_err(|e| match e {
            NamespaceError::Stream(problem) => ConfigError::new(STREAM, problem),
            NamespaceError::Prefix(problem) => ConfigError::new(SUBJECT_PREFIX, problem),
        })?;
        let tls = Tls::check(self.ca_file.as_deref(), self.client_cert.as_deref(), self.client_key.as_deref())?;
        let auth = Auth::check(Credentials {
            url: url_credentials,
            user: given(&self.user),
            password: self.password.as_deref().filter(|p| !p.is_empty()),
            token: given(&self.token),
            nkey_seed_file: self.nkey_seed_file.as_deref(),
            creds_file: self.creds_file.as_deref(),
        })?;
        Ok(Some(RelaySettings {
            nats_urls: servers.into_iter().map(|server| server.url).collect(),
            replicas: self.replicas,
            duplicate_window: Duration::from_secs(self.duplicate_window_secs),
            security: Security { tls, auth },
            namespace,
        }))
    }

    /// Like [`Self::relay_settings`], for commands that cannot work without NATS.
    pub fn required(&self) -> Result<RelaySettings, ConfigError> {
        self.relay_settings()?.ok_or_else(|| ConfigError::new(NATS_URL, "is not set (e.g. nats://127.0.0.1:4222)"))
    }
}

/// One server of `NATS_URL`: its URL without user info, and the user info.
struct Server {
    url: String,
    credentials: Option<UrlCredentials>,
}

fn check_nats_url(raw: &str) -> Result<Server, ConfigError> {
    let raw = raw.trim();
    // async-nats also takes a bare host:port; the url crate reads `host` as a scheme.
    if raw.parse::<SocketAddr>().is_ok() {
        return Ok(Server { url: raw.to_owned(), credentials: None });
    }
    let mut url = url_of(NATS_URL, raw)?;
    if !matches!(url.scheme(), "nats" | "tls" | "ws" | "wss") || url.host_str().is_none() {
        return Err(ConfigError::new(NATS_URL, "must be a nats://host:port (or tls://host:port) URL"));
    }
    let credentials = url_credentials(&url)?;
    if credentials.is_none() {
        return Ok(Server { url: raw.to_owned(), credentials });
    }
    // async-nats 0.51 does not read the user info of a URL (and would log it): it goes into
    // the options instead.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok(Server { url: url.to_string(), credentials })
}

/// `user:password` or a bare token, percent-decoded.
fn url_credentials(url: &url::Url) -> Result<Option<UrlCredentials>, ConfigError> {
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| ConfigError::new(NATS_URL, "has a user or password that is not UTF-8"))
    };
    match (url.username(), url.password()) {
        ("", None) => Ok(None),
        ("", Some(_)) => Err(ConfigError::new(NATS_URL, "has a password but no user")),
        (token, None) => Ok(Some(UrlCredentials::Token(decode(token)?))),
        (user, Some(password)) => Ok(Some(UrlCredentials::UserPassword(decode(user)?, decode(password)?))),
    }
}

/// The credentials the URLs carry: one connection has one, so every URL that carries any
/// must carry the same.
fn same_credentials(servers: &[Server]) -> Result<Option<UrlCredentials>, ConfigError> {
    let mut carried = servers.iter().filter_map(|server| server.credentials.as_ref());
    let first = carried.next().cloned();
    if carried.any(|other| Some(other) != first.as_ref()) {
        return Err(ConfigError::new(NATS_URL, "lists servers with different credentials: use the same in every URL"));
    }
    Ok(first)
}

/// The settings an operator should look at when TLS with NATS fails.
pub fn tls_settings() -> String {
    format!("{}, {} and {}", security::CA_FILE, security::CLIENT_CERT, security::CLIENT_KEY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str) -> NatsArgs {
        NatsArgs { nats_url: Some(url.into()), ..NatsArgs::default() }
    }

    #[test]
    fn credentials_leave_the_url_for_the_options_and_never_show() {
        let settings = args("nats://ann:p%40ss-hunter2@127.0.0.1:4222,nats://ann:p%40ss-hunter2@127.0.0.1:4223")
            .required()
            .unwrap();
        assert_eq!(settings.nats_urls, ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]);
        match &settings.security.auth {
            Auth::UserPassword { user, password, .. } => {
                use secrecy::ExposeSecret;
                assert_eq!((user.as_str(), password.expose_secret()), ("ann", "p@ss-hunter2"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{settings:?}").contains("hunter2"), "{settings:?}");
        let token = args("tls://s3cr3t-hunter2@127.0.0.1:4222").required().unwrap();
        assert!(matches!(token.security.auth, Auth::Token { .. }));
        assert_eq!(token.nats_urls, ["tls://127.0.0.1:4222"]);
    }

    #[test]
    fn a_url_error_or_a_second_credential_does_not_echo_the_secret() {
        for url in
            ["http://u:hunter2@h:4222", "nats://u:hunter2@h:notaport", "nats://a:hunter2@h:1,nats://b:hunter2@h:2"]
        {
            let err = args(url).required().err().unwrap_or_else(|| panic!("{url} accepted"));
            assert_eq!(err.setting, NATS_URL);
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let both = NatsArgs { token: Some("tok-hunter2".into()), ..args("nats://u:hunter2@h:4222") };
        let err = both.required().err().unwrap();
        assert!(err.to_string().contains(security::TOKEN) && !err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn the_stream_and_prefix_are_checked_and_named() {
        let settings = NatsArgs { stream: "ACME".into(), subject_prefix: "acme.p".into(), ..args("nats://h:1") };
        let namespace = settings.required().unwrap().namespace;
        assert_eq!((namespace.stream(), namespace.all_events().as_str()), ("ACME", "acme.p.events.>"));
        let bad = NatsArgs { stream: "A.B".into(), ..args("nats://h:1") };
        assert_eq!(bad.required().err().unwrap().setting, STREAM);
        let bad = NatsArgs { subject_prefix: "a.>".into(), ..args("nats://h:1") };
        assert_eq!(bad.required().err().unwrap().setting, SUBJECT_PREFIX);
    }
}
