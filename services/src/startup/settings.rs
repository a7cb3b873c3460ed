//! The settings `provisioner serve` starts from: every part's, read from the environment or the
//! command line and checked together, so that a bad one stops `serve` before anything runs,
//! named without its value. Above the parts it configures (the gateway's settings among them),
//! where `config` holds the arguments that every command shares.

use crate::config::{ConfigError, DatabaseArgs, url_of};
use crate::nats::{NatsArgs, RelaySettings};
use crate::secrets::MasterKey;
use std::net::SocketAddr;
use std::time::Duration;

/// No `Debug`: it holds the master key.
#[derive(Clone, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub nats: NatsArgs,

    /// Address the HTTP API listens on. Port 0 picks a free port.
    #[arg(long, env = "PROVISIONER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Base of the URLs handed out (server URLs, OAuth links). Defaults to http://<listen>.
    #[arg(long = "public-url", env = "PROVISIONER_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Master key wrapping every data key: base64 of 32 random bytes.
    #[arg(long = "master-key", env = "PROVISIONER_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,

    /// Allow OAuth endpoints on loopback, plain http included (a local provider in development
    /// and tests): the outbound client then connects to loopback addresses, never to private or
    /// link-local ones. Off by default: it would let a project make this service call its own host.
    #[arg(long = "oauth-allow-loopback-http", env = "PROVISIONER_OAUTH_ALLOW_LOOPBACK_HTTP", default_value_t = false)]
    pub oauth_allow_loopback_http: bool,

    /// How long a pending (OAuth) connected account waits for its user before it expires.
    #[arg(long = "pending-connection-secs", env = "PROVISIONER_PENDING_CONNECTION_SECS", default_value_t = 600)]
    pub pending_connection_secs: u64,

    /// `/ready` fails when the views are further behind the event store than this.
    #[arg(long = "max-view-lag-secs", env = "PROVISIONER_MAX_VIEW_LAG_SECS", default_value_t = 10)]
    pub max_view_lag_secs: u64,

    /// The largest event the store takes, in bytes of JSON (payload and metadata); a write
    /// that would store a larger one answers 413. Lowered at start to a quarter of the NATS
    /// server's `max_payload` when that is smaller.
    #[arg(long = "max-event-bytes", env = "PROVISIONER_MAX_EVENT_BYTES", default_value_t = crate::store::DEFAULT_MAX_EVENT_BYTES)]
    pub max_event_bytes: usize,

    /// The gateway's upstreams file (TOML): which MCP server each catalog server's instances
    /// are forwarded to. Without it, every instance URL answers that its server is unbound.
    #[arg(long = "upstreams", env = "PROVISIONER_UPSTREAMS")]
    pub upstreams: Option<std::path::PathBuf>,

    /// How long the gateway waits for an upstream MCP server's answer to one message.
    #[arg(long = "gateway-timeout-secs", env = "PROVISIONER_GATEWAY_TIMEOUT_SECS", default_value_t = 30)]
    pub gateway_timeout_secs: u64,

    /// Browser origins (besides the public URL's) whose pages may call the gateway:
    /// comma-separated `scheme://host[:port]`, or `*` for any. Requests without `Origin`
    /// (programs, not pages) always pass.
    #[arg(long = "gateway-allowed-origins", env = "PROVISIONER_GATEWAY_ALLOWED_ORIGINS", default_value = "")]
    pub gateway_allowed_origins: String,
    /// Let the gateway forward to registered servers (GAIA) on loopback, private, link-local
    /// and other non-public addresses. Off by default: a project could otherwise make this
    /// service call its own host, its network or the cloud metadata service. The operator's
    /// upstreams file is trusted either way.
    #[arg(long = "gateway-allow-private", env = "PROVISIONER_GATEWAY_ALLOW_PRIVATE", default_value_t = false)]
    pub gateway_allow_private: bool,

    /// Requests per second each API key may make, and its burst: `RATE` or `RATE,BURST`
    /// (burst = rate when not given). Unset: no limit. A project's own rate
    /// (`provisioner project rate-limit`) replaces it for that project's keys.
    #[arg(long = "rate-limit-per-key", env = "PROVISIONER_RATE_LIMIT_PER_KEY")]
    pub rate_limit_per_key: Option<String>,
    /// Requests per second from one client address to the routes without a key (the
    /// gateway's capability URLs, OAuth pages, connect links), as `RATE` or `RATE,BURST`.
    /// Unset: no limit.
    #[arg(long = "rate-limit-per-address", env = "PROVISIONER_RATE_LIMIT_PER_ADDRESS")]
    pub rate_limit_per_address: Option<String>,

    /// The longest an API request may take before it is stopped and answered 503 (the
    /// gateway's URLs have their own timeouts).
    #[arg(long = "request-timeout-secs", env = "PROVISIONER_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    pub request_timeout_secs: u64,

    /// How long a client has to send a request's whole head (request line and headers), and
    /// an idle kept-alive connection to start its next request, before it is closed. Above the
    /// idle timeouts of common load balancers (AWS ALB: 60 s), which must close first.
    #[arg(long = "header-read-timeout-secs", env = "PROVISIONER_HEADER_READ_TIMEOUT_SECS", default_value_t = 75)]
    pub header_read_timeout_secs: u64,

    /// How long a shutdown (SIGTERM, Ctrl-C) waits for requests in flight before it drops them.
    #[arg(long = "shutdown-grace-secs", env = "PROVISIONER_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// How long the response to a POST with an `Idempotency-Key` is kept for its retries.
    #[arg(long = "idempotency-ttl-secs", env = "PROVISIONER_IDEMPOTENCY_TTL_SECS", default_value_t = 86_400)]
    pub idempotency_ttl_secs: u64,

    /// How long a retry waits for the request it repeats, still running, before it answers 409.
    #[arg(long = "idempotency-wait-ms", env = "PROVISIONER_IDEMPOTENCY_WAIT_MS", default_value_t = 5_000)]
    pub idempotency_wait_ms: u64,

    /// Address of the Prometheus `/metrics` listener, apart from the API's so that it is
    /// never public by accident. Unset (the default): no metrics are recorded or served.
    #[arg(long = "metrics-listen", env = "PROVISIONER_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
}

/// Checked settings of `provisioner serve`.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    /// The relay to NATS; none when no NATS URL is set.
    pub relay: Option<RelaySettings>,
    pub listen: SocketAddr,
    /// Without a trailing slash.
    pub public_url: Option<String>,
    pub master_key: MasterKey,
    pub max_view_lag: Duration,
    /// How long a write waits for the views to include it before answering from its events.
    pub read_your_writes_timeout: Duration,
    pub oauth_allow_loopback_http: bool,
    /// How long an OAuth authorization may take, from authorize to callback.
    pub oauth_state_ttl: Duration,
    /// How long a pending connected account lives before it expires (Composio: 10 minutes).
    pub pending_connection_ttl: Duration,
    /// The largest event the store takes (see [`ServeArgs::max_event_bytes`]).
    pub max_event_bytes: usize,
    pub gateway: crate::gateway::GatewaySettings,
    pub rate_limits: crate::rate_limit::RateLimitSettings,
    pub request_timeout: Duration,
    /// The server's own limits: header read timeout, shutdown grace.
    pub server: crate::http::server::ServerLimits,
    pub idempotency: crate::idempotency::IdempotencySettings,
    /// Where `/metrics` is served; none when metrics are off.
    pub metrics_listen: Option<SocketAddr>,
}

impl Settings {
    /// How often pending connections are checked for expiry: a tenth of their lifetime,
    /// between 1 and 30 seconds, so that one expires at most that late.
    pub fn expiry_check_every(&self) -> Duration {
        (self.pending_connection_ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(30))
    }
}

impl ServeArgs {
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let listen =
            self.listen.trim().parse::<SocketAddr>().map_err(|_| {
                ConfigError::new("PROVISIONER_LISTEN", "must be an address and port, like 127.0.0.1:8080")
            })?;
        Ok(Settings {
            database_url: self.database.url()?,
            relay: self.nats.relay_settings()?,
            listen,
            public_url: self.public_url.as_deref().map(check_public_url).transpose()?,
            master_key: master_key(self.master_key.as_deref())?,
            max_view_lag: Duration::from_secs(self.max_view_lag_secs),
            read_your_writes_timeout: Duration::from_secs(5),
            oauth_allow_loopback_http: self.oauth_allow_loopback_http,
            oauth_state_ttl: Duration::from_secs(600),
            pending_connection_ttl: pending_connection_ttl(self.pending_connection_secs)?,
            max_event_bytes: max_event_bytes(self.max_event_bytes)?,
            gateway: self.gateway()?,
            rate_limits: crate::rate_limit::RateLimitSettings {
                per_key: rate("PROVISIONER_RATE_LIMIT_PER_KEY", self.rate_limit_per_key.as_deref())?,
                per_address: rate("PROVISIONER_RATE_LIMIT_PER_ADDRESS", self.rate_limit_per_address.as_deref())?,
            },
            request_timeout: request_timeout(self.request_timeout_secs)?,
            server: self.server_limits()?,
            idempotency: self.idempotency()?,
            metrics_listen: self.metrics_listen()?,
        })
    }

    fn idempotency(&self) -> Result<crate::idempotency::IdempotencySettings, ConfigError> {
        if !(60..=30 * 86_400).contains(&self.idempotency_ttl_secs) {
            return Err(ConfigError::new("PROVISIONER_IDEMPOTENCY_TTL_SECS", "must be between 60 s and 30 days"));
        }
        if self.idempotency_wait_ms > 60_000 {
            return Err(ConfigError::new("PROVISIONER_IDEMPOTENCY_WAIT_MS", "must be at most 60000 (one minute)"));
        }
        let ttl = Duration::from_secs(self.idempotency_ttl_secs);
        Ok(crate::idempotency::IdempotencySettings {
            ttl,
            wait: Duration::from_millis(self.idempotency_wait_ms),
            // A few sweeps per lifetime, at most every ten minutes: a key outlives its ttl by
            // that much at most, and is never replayed once expired anyway.
            sweep_every: (ttl / 4).min(Duration::from_secs(600)),
            ..Default::default()
        })
    }

    fn server_limits(&self) -> Result<crate::http::server::ServerLimits, ConfigError> {
        if !(1..=600).contains(&self.header_read_timeout_secs) {
            return Err(ConfigError::new("PROVISIONER_HEADER_READ_TIMEOUT_SECS", "must be between 1 and 600 seconds"));
        }
        if self.shutdown_grace_secs > 3600 {
            return Err(ConfigError::new("PROVISIONER_SHUTDOWN_GRACE_SECS", "must be at most 3600 seconds"));
        }
        Ok(crate::http::server::ServerLimits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
        })
    }

    fn metrics_listen(&self) -> Result<Option<SocketAddr>, ConfigError> {
        const NAME: &str = "PROVISIONER_METRICS_LISTEN";
        let Some(raw) = self.metrics_listen.as_deref().map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let addr = raw
            .parse::<SocketAddr>()
            .map_err(|_| ConfigError::new(NAME, "must be an address and port, like 127.0.0.1:9090"))?;
        Ok(Some(addr))
    }

    /// The upstreams file is read and checked now: a bad entry stops `serve`, named.
    fn gateway(&self) -> Result<crate::gateway::GatewaySettings, ConfigError> {
        let upstreams = match &self.upstreams {
            Some(path) => crate::gateway::Upstreams::load(path)
                .map_err(|problem| ConfigError::new("PROVISIONER_UPSTREAMS", format!("is not usable: {problem}")))?,
            None => crate::gateway::Upstreams::default(),
        };
        if !(1..=3600).contains(&self.gateway_timeout_secs) {
            return Err(ConfigError::new("PROVISIONER_GATEWAY_TIMEOUT_SECS", "must be between 1 and 3600 seconds"));
        }
        let allowed_origins = crate::gateway::AllowedOrigins::parse(&self.gateway_allowed_origins)
            .map_err(|problem| ConfigError::new("PROVISIONER_GATEWAY_ALLOWED_ORIGINS", problem))?;
        Ok(crate::gateway::GatewaySettings {
            upstreams,
            timeout: Duration::from_secs(self.gateway_timeout_secs),
            allowed_origins,
            allow_private: self.gateway_allow_private,
        })
    }
}

/// `RATE` or `RATE,BURST`; empty or unset is no limit.
fn rate(name: &'static str, raw: Option<&str>) -> Result<Option<domain::project::RateLimit>, ConfigError> {
    let Some(raw) = raw.map(str::trim).filter(|raw| !raw.is_empty()) else { return Ok(None) };
    let number = |text: &str| text.trim().parse::<u32>().ok();
    let parsed = match raw.split_once(',') {
        Some((rate, burst)) => number(rate).zip(number(burst)),
        None => number(raw).map(|rate| (rate, rate)),
    };
    let (per_second, burst) =
        parsed.ok_or_else(|| ConfigError::new(name, "must be RATE or RATE,BURST (requests per second, burst)"))?;
    domain::project::RateLimit::new(per_second, burst).map(Some).map_err(|reason| ConfigError::new(name, reason))
}

fn request_timeout(secs: u64) -> Result<Duration, ConfigError> {
    if !(1..=3600).contains(&secs) {
        return Err(ConfigError::new("PROVISIONER_REQUEST_TIMEOUT_SECS", "must be between 1 and 3600 seconds"));
    }
    Ok(Duration::from_secs(secs))
}

fn pending_connection_ttl(secs: u64) -> Result<Duration, ConfigError> {
    if secs == 0 {
        return Err(ConfigError::new("PROVISIONER_PENDING_CONNECTION_SECS", "must be at least 1 second"));
    }
    Ok(Duration::from_secs(secs))
}

/// At least 4 KiB: every event of the service fits in that when its fields are short.
fn max_event_bytes(bytes: usize) -> Result<usize, ConfigError> {
    if bytes < 4096 {
        return Err(ConfigError::new("PROVISIONER_MAX_EVENT_BYTES", "must be at least 4096 bytes"));
    }
    Ok(bytes)
}

fn check_public_url(raw: &str) -> Result<String, ConfigError> {
    let url = url_of("PROVISIONER_PUBLIC_URL", raw)?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some() => Ok(raw.trim().trim_end_matches('/').to_owned()),
        _ => Err(ConfigError::new("PROVISIONER_PUBLIC_URL", "must be an absolute http(s) URL")),
    }
}

fn master_key(raw: Option<&str>) -> Result<MasterKey, ConfigError> {
    const NAME: &str = "PROVISIONER_MASTER_KEY";
    let raw = raw.map(str::trim).filter(|s| !s.is_empty()).ok_or_else(|| {
        ConfigError::new(NAME, "is not set: give it base64 of 32 random bytes (`head -c32 /dev/urandom | base64`)")
    })?;
    MasterKey::from_base64(raw).map_err(|problem| ConfigError::new(NAME, problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(master_key: Option<&str>, listen: &str) -> ServeArgs {
        ServeArgs {
            database: DatabaseArgs { database_url: Some("postgres://u:hunter2@localhost/db".into()) },
            nats: NatsArgs::default(),
            listen: listen.into(),
            public_url: None,
            master_key: master_key.map(str::to_owned),
            max_view_lag_secs: 10,
            pending_connection_secs: 600,
            oauth_allow_loopback_http: false,
            max_event_bytes: crate::store::DEFAULT_MAX_EVENT_BYTES,
            upstreams: None,
            gateway_timeout_secs: 30,
            gateway_allowed_origins: String::new(),
            gateway_allow_private: false,
            rate_limit_per_key: None,
            rate_limit_per_address: None,
            request_timeout_secs: 60,
            header_read_timeout_secs: 30,
            shutdown_grace_secs: 10,
            idempotency_ttl_secs: 86_400,
            idempotency_wait_ms: 5_000,
            metrics_listen: None,
        }
    }

    #[test]
    fn idempotency_settings_are_bounded_and_named() {
        let key = MasterKey::generate_base64();
        let mut serve = args(Some(&key), "127.0.0.1:0");
        let kept = serve.settings().unwrap().idempotency;
        assert_eq!(kept.ttl, Duration::from_secs(86_400));
        assert_eq!(kept.sweep_every, Duration::from_secs(600));
        serve.idempotency_ttl_secs = 59;
        assert_eq!(serve.settings().err().unwrap().setting, "PROVISIONER_IDEMPOTENCY_TTL_SECS");
        serve.idempotency_ttl_secs = 120;
        assert_eq!(serve.settings().unwrap().idempotency.sweep_every, Duration::from_secs(30));
        serve.idempotency_wait_ms = 60_001;
        assert_eq!(serve.settings().err().unwrap().setting, "PROVISIONER_IDEMPOTENCY_WAIT_MS");
    }

    #[test]
    fn metrics_are_off_unless_given_an_address_of_their_own() {
        let key = MasterKey::generate_base64();
        let mut serve = args(Some(&key), "127.0.0.1:0");
        assert_eq!(serve.settings().unwrap().metrics_listen, None);
        serve.metrics_listen = Some("127.0.0.1:9090".into());
        assert_eq!(serve.settings().unwrap().metrics_listen, Some("127.0.0.1:9090".parse().unwrap()));
        serve.metrics_listen = Some("localhost".into());
        assert_eq!(serve.settings().err().unwrap().setting, "PROVISIONER_METRICS_LISTEN");
    }

    #[test]
    fn rate_limits_are_off_unless_set_and_a_bad_one_is_named() {
        let key = MasterKey::generate_base64();
        let mut serve = args(Some(&key), "127.0.0.1:0");
        assert_eq!(serve.settings().unwrap().rate_limits, crate::rate_limit::RateLimitSettings::default());
        serve.rate_limit_per_key = Some("50,100".into());
        serve.rate_limit_per_address = Some(" 20 ".into());
        let limits = serve.settings().unwrap().rate_limits;
        let (key_rate, address_rate) = (limits.per_key.unwrap(), limits.per_address.unwrap());
        assert_eq!((key_rate.per_second(), key_rate.burst()), (50, 100));
        assert_eq!((address_rate.per_second(), address_rate.burst()), (20, 20), "the burst is the rate");
        for bad in ["fast", "0", "10,0", "10,x", "-1"] {
            serve.rate_limit_per_key = Some(bad.into());
            let error = serve.settings().err().unwrap_or_else(|| panic!("{bad} was taken"));
            assert_eq!(error.setting, "PROVISIONER_RATE_LIMIT_PER_KEY", "{bad}");
        }
    }

    #[test]
    fn registered_upstreams_on_private_addresses_are_refused_unless_the_operator_allows_them() {
        let key = MasterKey::generate_base64();
        let mut serve = args(Some(&key), "127.0.0.1:0");
        assert!(!serve.settings().unwrap().gateway.allow_private, "off by default");
        serve.gateway_allow_private = true;
        assert!(serve.settings().unwrap().gateway.allow_private);
    }

    #[test]
    fn a_missing_master_key_is_named() {
        let err = args(None, "127.0.0.1:0").settings().err().unwrap();
        assert_eq!(err.setting, "PROVISIONER_MASTER_KEY");
    }

    #[test]
    fn a_short_master_key_is_named_without_echoing_it() {
        let err = args(Some("c2hvcnQ="), "127.0.0.1:0").settings().err().unwrap();
        assert_eq!(err.setting, "PROVISIONER_MASTER_KEY");
        assert!(!err.to_string().contains("c2hvcnQ="), "{err}");
    }

    #[test]
    fn a_bad_listen_address_is_named() {
        let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let err = args(Some(key), "localhost").settings().err().unwrap();
        assert_eq!(err.setting, "PROVISIONER_LISTEN");
    }
}
