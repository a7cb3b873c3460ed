//! The one way the service connects to NATS: [`connect_options`] builds the options from the
//! checked settings (TLS and credential included), [`connect`] connects with them, and a
//! failure says which setting to look at ([`ConnectFailure`]).

use super::security;
use super::settings::{RelaySettings, tls_settings};
use anyhow::Context;
use std::time::Duration;

/// How long one server may take to accept a connection (TCP, TLS and the CONNECT handshake).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(3);

/// The client options of every connection of this service, named `name` on the server.
pub fn connect_options(settings: &RelaySettings, name: &str) -> anyhow::Result<async_nats::ConnectOptions> {
    let tls = &settings.security.tls;
    let mut options = async_nats::ConnectOptions::new().name(name).connection_timeout(CONNECTION_TIMEOUT);
    if let Some(ca_file) = &tls.ca_file {
        options = options.add_root_certificates(ca_file.clone());
    }
    if let Some((cert, key)) = &tls.client {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    if tls.configured() {
        options = options.require_tls(true);
    }
    settings.security.auth.apply(options)
}

/// A connection to the servers of `settings`. The client reconnects by itself after a loss,
/// forever, with the same TLS and credential.
pub async fn connect(settings: &RelaySettings, name: &str) -> anyhow::Result<async_nats::Client> {
    let servers = settings
        .nats_urls
        .iter()
        .map(|url| url.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .context("NATS_URL")?;
    let options = connect_options(settings, name)?;
    options.connect(servers).await.map_err(|e| ConnectFailure::of(&e, settings).into())
}

/// Connects once and goes: fails with a [`ConnectFailure`] that says whether the settings
/// are wrong (credential or TLS refused) or NATS is only unreachable for now.
pub async fn probe(settings: &RelaySettings) -> anyhow::Result<()> {
    let client = connect(settings, "provisioner-probe").await?;
    // Dropping the last handle does not flush; close explicitly so the server sees us go.
    let _ = client.drain().await;
    Ok(())
}

/// Why a connection failed, in the terms of the settings.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConnectFailure {
    /// NATS answered, and refused the credential or the TLS handshake: retrying with the same
    /// settings cannot help, so a starting command stops.
    pub misconfigured: bool,
    message: String,
}

impl ConnectFailure {
    fn of(error: &async_nats::ConnectError, settings: &RelaySettings) -> Self {
        use async_nats::ConnectErrorKind as Kind;
        let auth = settings.security.auth.source();
        let chain = chain(error);
        let (misconfigured, message) = match error.kind() {
            Kind::AuthorizationViolation => {
                (true, format!("NATS refused the credential ({auth}): authorization violation"))
            }
            Kind::Authentication => (true, format!("cannot sign NATS's challenge with the credential ({auth})")),
            Kind::Tls => (true, format!("TLS with NATS failed ({chain}): check NATS_URL and {}", tls_settings())),
            // The server's certificate, checked by this client.
            Kind::Io if chain.contains("invalid peer certificate") => (
                true,
                format!(
                    "the NATS server's certificate is not trusted ({chain}): set {} to the CA that signs it, and \
                     name in NATS_URL a host the certificate is for",
                    security::CA_FILE
                ),
            ),
            // TLS 1.3 ends the client's handshake before the server has checked the client's
            // certificate: its refusal arrives as an alert on the first read.
            Kind::Io if chain.contains("CertificateRequired") => (
                true,
                format!(
                    "NATS asks for a client certificate ({chain}): set {} and {}",
                    security::CLIENT_CERT,
                    security::CLIENT_KEY
                ),
            ),
            Kind::Io if chain.contains("alert") => (
                true,
                format!(
                    "NATS refused the TLS connection ({chain}): check {} and {} (a certificate its CA signs)",
                    security::CLIENT_CERT,
                    security::CLIENT_KEY
                ),
            ),
            _ => (false, format!("cannot connect to NATS: {chain}")),
        };
        Self { misconfigured, message }
    }

    /// Whether `error` is a connection refused for its settings (see [`Self::misconfigured`]).
    pub fn is_misconfiguration(error: &anyhow::Error) -> bool {
        error.chain().any(|cause| cause.downcast_ref::<Self>().is_some_and(|failure| failure.misconfigured))
    }
}

/// An error and its sources, `: `-separated (async-nats's own message is only the kind).
fn chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !parts.last().is_some_and(|last| last.contains(&part)) {
            parts.push(part);
        }
        source = cause.source();
    }
    parts.join(": ")
}
