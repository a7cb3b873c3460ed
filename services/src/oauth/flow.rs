//! The browser-facing OAuth authorization-code flow (RFC 6749 with PKCE, RFC 7636), done with
//! the `oauth2` crate: `authorize` sends the browser to the provider, `callback` exchanges the
//! code for tokens and stores them, sealed, on the instance.

use super::apps::OAuthApps;
use super::state::{StateClaims, StateError, StateSealer};
use crate::catalog::Catalog;
use crate::error::AppError;
use crate::instance::{ConnectionRecord, Instances};
use crate::store::CommandMetadata;
use domain::instance::InstanceError;
use events::InstanceId;
use events::instance::ServerRef;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, ExtraTokenFields,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, StandardRevocableToken, StandardTokenResponse,
    TokenUrl,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Whatever the provider's token response carries beyond the standard fields (Slack's
/// `authed_user`, Google's `id_token`, ...), kept so that auth data is complete.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawFields {
    #[serde(flatten)]
    fields: serde_json::Map<String, serde_json::Value>,
}

impl ExtraTokenFields for RawFields {}

type TokenResponse = StandardTokenResponse<RawFields, BasicTokenType>;
type ProviderClient = oauth2::Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Why a flow could not go on. Each ends on an error page, or a redirect with
/// `status=error`, and stores nothing.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("unknown instance")]
    UnknownInstance,
    #[error("this instance is not a {0} instance")]
    WrongProvider(String),
    #[error("no OAuth app is configured for {0} in this project; save one with POST /white-labeling/create")]
    NoApp(String),
    #[error("the OAuth endpoints of {0} are not known; save the app with authorize_url and token_url")]
    NoEndpoints(String),
    #[error("redirect_url must be an absolute http(s) URL")]
    BadRedirectUrl,
    #[error(transparent)]
    State(#[from] StateError),
    #[error("this authorization was already completed")]
    Replayed,
    #[error("the provider refused: {0}")]
    Denied(String),
    #[error("the provider sent no authorization code")]
    MissingCode,
    #[error("the token exchange failed: {0}")]
    TokenExchange(String),
    #[error("internal failure")]
    Internal(#[source] anyhow::Error),
}

impl FlowError {
    /// A stable code for the `error` parameter of an error redirect.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownInstance => "unknown_instance",
            Self::WrongProvider(_) => "wrong_provider",
            Self::NoApp(_) | Self::NoEndpoints(_) => "not_configured",
            Self::BadRedirectUrl => "bad_redirect_url",
            Self::State(StateError::Invalid) => "invalid_state",
            Self::State(StateError::Expired) => "expired_state",
            Self::Replayed => "replayed_state",
            Self::Denied(_) => "access_denied",
            Self::MissingCode => "missing_code",
            Self::TokenExchange(_) => "token_exchange_failed",
            Self::Internal(_) => "internal_error",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Self::UnknownInstance => 404,
            Self::TokenExchange(_) => 502,
            Self::Internal(_) => 500,
            _ => 400,
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<AppError<E>> for FlowError {
    fn from(e: AppError<E>) -> Self {
        Self::Internal(anyhow::Error::new(e))
    }
}

/// Where the flow ends for the browser.
#[derive(Debug)]
pub enum Outcome {
    Redirect(String),
    Page { status: u16, title: &'static str, message: String },
}

pub struct AuthorizeRequest {
    pub provider: String,
    pub instance_id: String,
    pub redirect_url: Option<String>,
    /// Comma- or space-separated.
    pub scope: Option<String>,
    pub client_id: Option<String>,
}

pub struct CallbackQuery {
    pub provider: String,
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

#[derive(Clone)]
pub struct OAuthFlow {
    instances: Instances,
    apps: OAuthApps,
    sealer: StateSealer,
    public_url: String,
    state_ttl: Duration,
    http: oauth2::reqwest::Client,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl OAuthFlow {
    pub fn new(
        instances: Instances,
        apps: OAuthApps,
        sealer: StateSealer,
        public_url: String,
        state_ttl: Duration,
    ) -> Self {
        let http = oauth2::reqwest::ClientBuilder::new()
            // The token endpoint must answer itself: following redirects invites SSRF.
            .redirect(oauth2::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .expect("a reqwest client");
        Self { instances, apps, sealer, public_url, state_ttl, http }
    }

    /// The redirect URI this service registers with providers.
    pub fn callback_url(&self, provider: &str) -> String {
        format!("{}/oauth/{provider}/callback", self.public_url)
    }

    /// The provider URL to send the browser to.
    pub async fn authorize(&self, req: AuthorizeRequest) -> Result<String, FlowError> {
        let instance_id: InstanceId = req.instance_id.parse().map_err(|_| FlowError::UnknownInstance)?;
        let instance = self.instances.get_anywhere(instance_id).await.map_err(unknown_instance)?;
        check_provider(&instance, &req.provider)?;
        if let Some(url) = &req.redirect_url {
            check_redirect_url(url)?;
        }
        let project_id = events::ProjectId::from_uuid(instance.project_id);
        let app = self
            .apps
            .for_provider(project_id, &req.provider, req.client_id.as_deref())
            .await?
            .ok_or_else(|| FlowError::NoApp(req.provider.clone()))?;
        let endpoints = Endpoints::of(&req.provider, app.authorize_url.clone(), app.token_url.clone())?;
        let redirect_uri = app.callback_url.clone().unwrap_or_else(|| self.callback_url(&req.provider));
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let claims = StateClaims {
            nonce: StateSealer::new_nonce(),
            instance_id,
            project_id,
            provider: req.provider.clone(),
            client_id: app.client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            redirect_url: req.redirect_url,
            pkce_verifier: verifier.secret().clone(),
            expires_at: now() + self.state_ttl.as_secs() as i64,
        };
        let state = self.sealer.seal(&claims);
        let client = client(&app.client_id, None, &endpoints, &redirect_uri)?;
        let mut request = client.authorize_url(|| CsrfToken::new(state)).set_pkce_challenge(challenge);
        let scopes = scopes_for(&req.provider, req.scope.as_deref(), app.scopes.as_deref());
        if !scopes.is_empty() {
            request = request.add_extra_param("scope", scopes);
        }
        for (name, value) in extra_params(&req.provider) {
            request = request.add_extra_param(name, value);
        }
        Ok(request.url().0.to_string())
    }

    /// Ends the flow: where the browser goes, and whether a credential was stored.
    pub async fn callback(&self, query: CallbackQuery, meta: &CommandMetadata) -> Outcome {
        // Where to go back is read even from an expired state: the caller should hear of it.
        let readable = query.state.as_deref().and_then(|s| self.sealer.decrypt(s).ok());
        let redirect_url = readable.as_ref().and_then(|c| c.redirect_url.clone());
        let instance_id = readable.as_ref().map(|c| c.instance_id);
        let claims = query.state.as_deref().map(|s| self.sealer.open(s, now()));
        match self.finish(query, claims, meta).await {
            Ok(()) => ending(redirect_url, instance_id, None),
            Err(e) => {
                tracing::warn!(error = %e, code = e.code(), "OAuth flow failed; nothing stored");
                ending(redirect_url, instance_id, Some(e))
            }
        }
    }

    async fn finish(
        &self,
        query: CallbackQuery,
        claims: Option<Result<StateClaims, StateError>>,
        meta: &CommandMetadata,
    ) -> Result<(), FlowError> {
        let claims = claims.ok_or(FlowError::State(StateError::Invalid))??;
        if claims.provider != query.provider {
            return Err(FlowError::State(StateError::Invalid));
        }
        if let Some(error) = query.error {
            let detail = query.error_description.map_or(error.clone(), |d| format!("{error}: {d}"));
            return Err(FlowError::Denied(detail));
        }
        let code = query.code.filter(|c| !c.is_empty()).ok_or(FlowError::MissingCode)?;
        let instance = self.instances.get(&caller_of(&claims), claims.instance_id).await.map_err(unknown_instance)?;
        if self.instances.state_used(&instance, &claims.nonce).await? {
            return Err(FlowError::Replayed);
        }
        let tokens = self.exchange(&claims, code).await?;
        match self.instances.complete_oauth(claims.project_id, claims.instance_id, claims.nonce, tokens, meta).await {
            Ok(()) => Ok(()),
            Err(AppError::Rejected(InstanceError::StateAlreadyUsed)) => Err(FlowError::Replayed),
            Err(AppError::Rejected(InstanceError::NotFound)) => Err(FlowError::UnknownInstance),
            Err(e) => Err(e.into()),
        }
    }

    /// Exchanges the code at the token endpoint; the tokens come back as the JSON to seal.
    async fn exchange(&self, claims: &StateClaims, code: String) -> Result<SecretString, FlowError> {
        let app = self
            .apps
            .get(claims.project_id, &claims.client_id)
            .await?
            .ok_or_else(|| FlowError::NoApp(claims.provider.clone()))?;
        let secret = self.apps.client_secret(claims.project_id, &app).await?;
        let endpoints = Endpoints::of(&claims.provider, app.authorize_url.clone(), app.token_url.clone())?;
        let client = client(&app.client_id, Some(secret), &endpoints, &claims.redirect_uri)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(claims.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| FlowError::TokenExchange(describe(&e)))?;
        let mut tokens = serde_json::to_value(&response).map_err(|e| FlowError::Internal(e.into()))?;
        if let Some(expires_in) = tokens.get("expires_in").and_then(serde_json::Value::as_i64) {
            tokens["expires_at"] = serde_json::json!(now() + expires_in);
        }
        Ok(SecretString::from(tokens.to_string()))
    }
}

/// The flow acts for the instance's project; nobody else's key is involved.
fn caller_of(claims: &StateClaims) -> crate::project::Caller {
    crate::project::Caller { project_id: claims.project_id, key_id: events::ApiKeyId::from_uuid(uuid::Uuid::nil()) }
}

fn unknown_instance(e: AppError<InstanceError>) -> FlowError {
    match e {
        AppError::Rejected(_) => FlowError::UnknownInstance,
        other => other.into(),
    }
}

fn check_provider(instance: &ConnectionRecord, provider: &str) -> Result<(), FlowError> {
    let expected = ServerRef::Catalog { slug: provider.to_owned() }.key();
    if instance.server_key == expected { Ok(()) } else { Err(FlowError::WrongProvider(provider.to_owned())) }
}

fn check_redirect_url(raw: &str) -> Result<(), FlowError> {
    match url::Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(()),
        _ => Err(FlowError::BadRedirectUrl),
    }
}

/// Never includes a token or the client secret: only the provider's error code and
/// description, or the kind of transport failure.
fn describe<E: std::error::Error + 'static>(e: &RequestTokenError<E, BasicErrorResponse>) -> String {
    match e {
        RequestTokenError::ServerResponse(response) => {
            let code = response.error().to_string();
            response.error_description().map_or(code.clone(), |d| format!("{code}: {d}"))
        }
        RequestTokenError::Request(_) => "the token endpoint could not be reached".into(),
        RequestTokenError::Parse(_, _) => "the token endpoint's answer is not a token response".into(),
        RequestTokenError::Other(message) => message.clone(),
    }
}

struct Endpoints {
    authorize: String,
    token: String,
}

impl Endpoints {
    /// The app's own endpoints, else the catalog's for the provider. An endpoint with a
    /// `{placeholder}` (a tenant's subdomain) must come from the app.
    fn of(provider: &str, authorize: Option<String>, token: Option<String>) -> Result<Self, FlowError> {
        let defaults = Catalog::get().by_slug(provider).and_then(|e| e.oauth.clone());
        let usable = |url: Option<String>| url.filter(|u| !u.contains('{'));
        let authorize = usable(authorize.or_else(|| defaults.as_ref().and_then(|d| d.authorize_url.clone())));
        let token = usable(token.or_else(|| defaults.as_ref().and_then(|d| d.token_url.clone())));
        match (authorize, token) {
            (Some(authorize), Some(token)) => Ok(Self { authorize, token }),
            _ => Err(FlowError::NoEndpoints(provider.to_owned())),
        }
    }
}

fn client(
    client_id: &str,
    secret: Option<SecretString>,
    endpoints: &Endpoints,
    redirect_uri: &str,
) -> Result<ProviderClient, FlowError> {
    let invalid = |what: &str| FlowError::Internal(anyhow::anyhow!("invalid {what} URL"));
    let client = oauth2::Client::new(ClientId::new(client_id.to_owned()))
        .set_auth_uri(AuthUrl::new(endpoints.authorize.clone()).map_err(|_| invalid("authorize"))?)
        .set_token_uri(TokenUrl::new(endpoints.token.clone()).map_err(|_| invalid("token"))?)
        .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).map_err(|_| invalid("redirect"))?);
    Ok(match secret {
        Some(secret) => {
            use secrecy::ExposeSecret;
            client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()))
        }
        None => client,
    })
}

/// The scopes to ask for, joined the way the provider expects: the request's own (comma- or
/// space-separated, as Klavis accepts them), else the app's, else the catalog's defaults.
fn scopes_for(provider: &str, requested: Option<&str>, app: Option<&[String]>) -> String {
    let defaults = Catalog::get().by_slug(provider).and_then(|e| e.oauth.clone());
    let separator = defaults.as_ref().map_or(" ".to_owned(), |d| d.scope_separator.clone());
    let scopes: Vec<String> = match (requested, app) {
        (Some(raw), _) if !raw.trim().is_empty() => {
            raw.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        }
        (_, Some(app)) if !app.is_empty() => app.to_vec(),
        _ => defaults.map(|d| d.scopes).unwrap_or_default(),
    };
    scopes.join(&separator)
}

fn extra_params(provider: &str) -> Vec<(String, String)> {
    Catalog::get()
        .by_slug(provider)
        .and_then(|e| e.oauth.clone())
        .map(|d| d.extra_authorize_params.into_iter().collect())
        .unwrap_or_default()
}

/// How a flow that failed before it started ends (authorize's errors).
pub fn ending_for(redirect_url: Option<String>, instance_id: Option<InstanceId>, error: FlowError) -> Outcome {
    // A redirect_url that is not a URL cannot be followed: the page says so instead.
    let redirect_url = redirect_url.filter(|u| check_redirect_url(u).is_ok());
    ending(redirect_url, instance_id, Some(error))
}

/// The end of the flow: back to the caller's `redirect_url` with `instance_id` and `status`
/// (and `error`), or a plain page.
fn ending(redirect_url: Option<String>, instance_id: Option<InstanceId>, error: Option<FlowError>) -> Outcome {
    if let Some(Ok(mut url)) = redirect_url.as_deref().map(url::Url::parse) {
        {
            let mut query = url.query_pairs_mut();
            if let Some(id) = instance_id {
                query.append_pair("instance_id", &id.to_string());
            }
            query.append_pair("status", if error.is_some() { "error" } else { "success" });
            if let Some(e) = &error {
                query.append_pair("error", e.code());
            }
        }
        return Outcome::Redirect(url.to_string());
    }
    match error {
        None => Outcome::Page {
            status: 200,
            title: "Connected",
            message: "The account is connected. You can close this window.".into(),
        },
        Some(e) => Outcome::Page { status: e.http_status(), title: "Authorization failed", message: e.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_joined_as_the_provider_expects() {
        assert_eq!(scopes_for("slack", Some("chat:write, channels:read"), None), "chat:write,channels:read");
        assert_eq!(scopes_for("gmail", Some("a,b"), None), "a b");
        assert_eq!(scopes_for("gmail", None, Some(&["x".to_owned()])), "x");
        assert!(!scopes_for("gmail", None, None).is_empty(), "catalog defaults");
    }

    #[test]
    fn an_ending_redirect_carries_the_instance_and_status() {
        let id = InstanceId::random();
        let Outcome::Redirect(url) = ending(Some("https://app.example.com/done?x=1".into()), Some(id), None) else {
            panic!()
        };
        assert_eq!(url, format!("https://app.example.com/done?x=1&instance_id={id}&status=success"));
        let Outcome::Redirect(url) =
            ending(Some("https://app.example.com/done".into()), Some(id), Some(FlowError::Replayed))
        else {
            panic!()
        };
        assert!(url.ends_with("status=error&error=replayed_state"), "{url}");
        let Outcome::Page { status, .. } = ending(None, None, Some(FlowError::State(StateError::Invalid))) else {
            panic!()
        };
        assert_eq!(status, 400);
    }
}
