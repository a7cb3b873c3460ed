//! The outbound HTTP client: every request this service makes to a URL a project chose (the
//! OAuth token exchange; the MCP gateway's forwarding to registered servers builds its
//! streaming client on the same policy with [`guarded_client`] and [`check_literal_host`]).
//!
//! The URLs come from API callers, so the client is where server-side request forgery is
//! stopped (issue 18):
//! - it connects only to global unicast addresses ([`address`]): a host given as an IP
//!   literal is checked before the request, a name is checked after resolution, on the very
//!   addresses connected to ([`resolver`]). Loopback is allowed only with the development
//!   flag `--oauth-allow-loopback-http`; private, link-local and the rest never are;
//! - it follows no redirect and uses no proxy from the environment (`HTTP_PROXY` would
//!   resolve the host itself, out of the policy's reach);
//! - it reads at most `body_limit` bytes of an answer and refuses a longer one, announced or
//!   not, so a hostile endpoint cannot fill the memory or an event. No decompression is
//!   enabled, so the limit is on what is held.

pub mod address;
mod endpoint;
mod resolver;

pub use address::{AddressPolicy, RefusedAddress, Scope};
pub use endpoint::check_endpoint;
pub use resolver::RefusedName;

use oauth2::http;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// What a token endpoint may answer: 64 KiB. Real token responses are a few KiB at most (a
/// Google `id_token` is ~1.5 KiB); anything longer is refused as a failed exchange.
pub const TOKEN_RESPONSE_LIMIT: usize = 64 * 1024;

/// The whole of a request, connection included.
const TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an outbound request got no usable answer. The messages name no secret and no body.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("{0}")]
    RefusedAddress(#[from] RefusedAddress),
    #[error("{0}")]
    RefusedName(#[from] RefusedName),
    #[error("the answer is longer than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the request cannot be sent: {0}")]
    Invalid(String),
    #[error("the host could not be reached or did not answer in time")]
    Transport(#[source] reqwest::Error),
}

impl From<reqwest::Error> for OutboundError {
    /// A refusal by the resolver comes back wrapped in the connector's error: it is dug out
    /// so that the caller hears why.
    fn from(e: reqwest::Error) -> Self {
        match refusal_of(&e) {
            Some(refused) => Self::RefusedName(refused),
            None => Self::Transport(e),
        }
    }
}

/// The resolver's refusal inside a failed request's chain of causes, if that is why it failed.
pub fn refusal_of(e: &reqwest::Error) -> Option<RefusedName> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(current) = cause {
        if let Some(refused) = current.downcast_ref::<RefusedName>() {
            return Some(RefusedName { host: refused.host.clone(), refused: refused.refused });
        }
        cause = current.source();
    }
    None
}

/// A client builder that connects only where `policy` allows (names judged on the addresses
/// they resolve to, and connected to those only), follows no redirect and ignores proxies from
/// the environment. IP literals never reach the resolver: check them with
/// [`check_literal_host`] before each request.
pub fn guarded_client(policy: AddressPolicy) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(resolver::GuardedResolver { policy }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
}

/// The resolver is not asked about an IP literal (`https://169.254.169.254`, or
/// `https://2130706433`, which the URL parser reads as 127.0.0.1), so it is checked here.
pub fn check_literal_host(policy: AddressPolicy, url: &url::Url) -> Result<(), OutboundError> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.into(),
        Some(url::Host::Ipv6(ip)) => ip.into(),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err(OutboundError::Invalid("the URL has no host".into())),
    };
    Ok(policy.check(ip)?)
}

/// An answer, read whole (within the limit).
pub type Answer = http::Response<Vec<u8>>;

#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    policy: AddressPolicy,
    body_limit: usize,
}

impl Outbound {
    pub fn new(policy: AddressPolicy, body_limit: usize) -> Self {
        let client =
            guarded_client(policy).timeout(TIMEOUT).connect_timeout(CONNECT_TIMEOUT).build().expect("a reqwest client");
        Self { client, policy, body_limit }
    }

    /// Sends `request` and reads its answer, within the policy and the body limit.
    pub async fn send(&self, request: reqwest::Request) -> Result<Answer, OutboundError> {
        check_literal_host(self.policy, request.url())?;
        let mut response = self.client.execute(request).await?;
        if response.content_length().is_some_and(|announced| announced > self.body_limit as u64) {
            return Err(OutboundError::TooLarge { limit: self.body_limit });
        }
        let mut answer = http::Response::builder().status(response.status()).version(response.version());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        let body = self.read_body(&mut response).await?;
        answer.body(body).map_err(|e| OutboundError::Invalid(e.to_string()))
    }

    /// Reads chunk by chunk and stops at the limit, so a longer body is never held.
    async fn read_body(&self, response: &mut reqwest::Response) -> Result<Vec<u8>, OutboundError> {
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > self.body_limit {
                return Err(OutboundError::TooLarge { limit: self.body_limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The oauth2 crate sends its requests (token exchange, revocation) through this client.
impl<'c> oauth2::AsyncHttpClient<'c> for Outbound {
    type Error = OutboundError;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, OutboundError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(|e| OutboundError::Invalid(e.to_string()))?;
            self.send(request).await
        })
    }
}
