//! Authentication: the API key of a request, wherever the surface expects it, resolved on
//! every request to the caller's project.

use crate::project::Caller;
use crate::project::Projects;
use crate::rate_limit::{Limited, RateLimits};
use poem::Request;
use poem::http::StatusCode;
use poem_openapi::registry::{MetaSecurityScheme, Registry};

/// Why a request was not authenticated. Surfaces choose their own status for each
/// (Klavis answers 403 to an invalid key, the others 401).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing API key")]
    Missing,
    #[error("invalid API key")]
    Invalid,
    #[error("cannot check the API key right now")]
    Unavailable,
    /// A valid key over its rate.
    #[error("too many requests")]
    RateLimited(Limited),
}

impl AuthError {
    /// What a refusal over the rate carries besides its body.
    pub fn rate_limited(&self) -> Option<&Limited> {
        match self {
            Self::RateLimited(limited) => Some(limited),
            _ => None,
        }
    }
}

impl poem::error::ResponseError for AuthError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Missing | Self::Invalid => StatusCode::UNAUTHORIZED,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

/// Where a surface looks for the key, in order.
#[derive(Debug, Clone, Copy)]
pub enum KeySource {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// A header holding the key alone (`x-api-key: <key>`).
    Header(&'static str),
}

impl KeySource {
    fn read(self, req: &Request) -> Option<String> {
        let value = match self {
            Self::Bearer => {
                let header = req.headers().get("authorization")?.to_str().ok()?.trim();
                let (scheme, token) = header.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(token)?
            }
            Self::Header(name) => req.headers().get(name)?.to_str().ok()?,
        };
        Some(value.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// Documents this source as an OpenAPI security scheme named `name`.
    pub fn register(self, registry: &mut Registry, name: &'static str) {
        let scheme = match self {
            Self::Bearer => MetaSecurityScheme {
                ty: "http",
                description: Some("The project's API key as a bearer token."),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
            Self::Header(header) => MetaSecurityScheme {
                ty: "apiKey",
                description: Some("The project's API key."),
                name: Some(header),
                key_in: Some("header"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        };
        registry.create_security_scheme(name, scheme);
    }
}

/// Finds the first key among `sources`, resolves it to its caller and counts the request
/// against the key's rate.
pub async fn authenticate(req: &Request, sources: &[KeySource]) -> Result<Caller, AuthError> {
    let presented = sources.iter().find_map(|s| s.read(req)).ok_or(AuthError::Missing)?;
    let projects = req.data::<Projects>().expect("the projects are attached to every request");
    match projects.resolve_key(&presented).await {
        Ok(Some(caller)) => {
            let limits = req.data::<RateLimits>().expect("the rate limits are attached to every request");
            limits.check_key(&caller).map_err(AuthError::RateLimited)?;
            Ok(caller)
        }
        Ok(None) => Err(AuthError::Invalid),
        Err(e) => {
            tracing::error!(error = %e, "API key lookup failed");
            Err(AuthError::Unavailable)
        }
    }
}

/// Declares a surface's authenticated-caller extractor: where it reads the key, and the
/// names of the security schemes documenting it.
#[macro_export]
macro_rules! caller_extractor {
    ($(#[$doc:meta])* $name:ident, [$(($scheme:literal, $source:expr)),+ $(,)?]) => {
        $(#[$doc])*
        pub struct $name(pub $crate::project::Caller);

        impl<'a> poem_openapi::ApiExtractor<'a> for $name {
            const TYPES: &'static [poem_openapi::ApiExtractorType] = &[poem_openapi::ApiExtractorType::SecurityScheme];
            type ParamType = ();
            type ParamRawType = ();

            fn register(registry: &mut poem_openapi::registry::Registry) {
                $( $crate::http::caller::KeySource::register($source, registry, $scheme); )+
            }

            fn security_schemes() -> Vec<&'static str> {
                vec![$($scheme),+]
            }

            async fn from_request(
                request: &'a poem::Request,
                _body: &mut poem::RequestBody,
                _options: poem_openapi::ExtractParamOptions<()>,
            ) -> poem::Result<Self> {
                let sources = [$($source),+];
                Ok(Self($crate::http::caller::authenticate(request, &sources).await?))
            }
        }
    };
}
