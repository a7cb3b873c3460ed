//! The browser-facing OAuth authorization-code flow (RFC 6749 with PKCE, RFC 7636), done with
//! the `oauth2` crate: `authorize` (Klavis, for an instance) or `authorize_link` (Composio, for
//! a pending connected account) sends the browser to the provider; `callback`, shared by both,
//! exchanges the code for tokens and stores them, sealed, on what the state names.

use super::apps::OAuthAppRecord;
use super::apps::OAuthApps;
use super::spent::SpentStates;
use super::state::{ClientRef, FlowTarget, StateClaims, StateError, StateSealer};
use crate::catalog::Catalog;
use crate::connected_account::{AccountError, AccountRecord, ConnectedAccounts};
use crate::error::AppError;
use crate::instance::{ConnectionRecord, Instances};
use crate::outbound::{Outbound, OutboundError};
use crate::project::{RedirectPolicy, RedirectRefusal};
use crate::store::CommandMetadata;
use domain::connected_account::{ConnectedAccountError, Status, reason};
use domain::instance::InstanceError;
use events::auth_config::AuthConfigSettings;
use events::instance::ServerRef;
use events::{InstanceId, ProjectId};
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

pub(super) type TokenResponse = StandardTokenResponse<RawFields, BasicTokenType>;
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
    #[error("unknown or spent connection link")]
    UnknownLink,
    #[error("this connection is {0}: it is not waiting for authorization")]
    NotPending(&'static str),
    #[error("the auth config of this connection is disabled or deleted")]
    AuthConfigUnusable,
    #[error("the auth config has no client_id in its credentials")]
    NoClientId,
    #[error("this instance is not a {0} instance")]
    WrongProvider(String),
    #[error("no OAuth app is configured for {0} in this project; save one with POST /white-labeling/create")]
    NoApp(String),
    #[error("the OAuth endpoints of {0} are not known; save the app with authorize_url and token_url")]
    NoEndpoints(String),
    #[error("redirect_url must be an absolute http(s) URL")]
    BadRedirectUrl,
    #[error("the redirect target's host {0} is not on this project's redirect allow-list")]
    RedirectNotAllowed(String),
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
            Self::UnknownLink => "unknown_link",
            Self::NotPending(_) => "not_pending",
            Self::AuthConfigUnusable => "auth_config_unusable",
            Self::NoClientId => "not_configured",
            Self::WrongProvider(_) => "wrong_provider",
            Self::NoApp(_) | Self::NoEndpoints(_) => "not_configured",
            Self::BadRedirectUrl => "bad_redirect_url",
            Self::RedirectNotAllowed(_) => "redirect_not_allowed",
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
            Self::UnknownInstance | Self::UnknownLink => 404,
            Self::NotPending(_) => 409,
            Self::State(StateError::Expired) => 410,
            Self::TokenExchange(_) => 502,
            Self::Internal(_) => 500,
            _ => 400,
        }
    }
}

impl From<RedirectRefusal> for FlowError {
    fn from(refusal: RedirectRefusal) -> Self {
        match refusal {
            RedirectRefusal::NotHttp => Self::BadRedirectUrl,
            RedirectRefusal::HostNotAllowed(host) => Self::RedirectNotAllowed(host),
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<AppError<E>> for FlowError {
    fn from(e: AppError<E>) -> Self {
        match e {
            // The provider's tokens, sealed, do not fit in an event (the event limit follows
            // NATS's max_payload and may be below what the 64 KiB answer cap lets through).
            AppError::TooLarge(too_large) => {
                Self::TokenExchange(format!("the token response is too large to store ({too_large})"))
            }
            e => Self::Internal(anyhow::Error::new(e)),
        }
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

/// An OAuth client and its endpoints, from a project's white-label app or from a custom auth
/// config's own credentials.
pub(super) struct ResolvedClient {
    client: ClientRef,
    pub(super) client_id: String,
    pub(super) endpoints: Endpoints,
    /// The redirect URI registered with the provider, when it is not this service's own.
    callback_url: Option<String>,
    scopes: Option<Vec<String>>,
}

impl ResolvedClient {
    fn from_app(provider: &str, app: &OAuthAppRecord) -> Result<Self, FlowError> {
        Ok(Self {
            client: ClientRef::App(app.client_id.clone()),
            client_id: app.client_id.clone(),
            endpoints: Endpoints::of(provider, app.authorize_url.clone(), app.token_url.clone())?,
            callback_url: app.callback_url.clone(),
            scopes: app.scopes.clone(),
        })
    }

    /// Composio's credential field names: `client_id`, `authorization_url` (or
    /// `authorize_url`), `token_url`, `oauth_redirect_uri`, `scopes` (a string or a list).
    fn from_auth_config(provider: &str, id: &str, settings: &AuthConfigSettings) -> Result<Self, FlowError> {
        let public = &settings.public_credentials;
        let text = |field: &str| public.get(field).and_then(serde_json::Value::as_str).map(str::to_owned);
        let client_id = text("client_id").filter(|c| !c.is_empty()).ok_or(FlowError::NoClientId)?;
        let scopes = match public.get("scopes") {
            Some(serde_json::Value::String(raw)) => Some(split_scopes(raw)),
            Some(serde_json::Value::Array(items)) => {
                Some(items.iter().filter_map(serde_json::Value::as_str).map(str::to_owned).collect())
            }
            _ => None,
        };
        Ok(Self {
            client: ClientRef::AuthConfig(id.to_owned()),
            client_id,
            endpoints: Endpoints::of(
                provider,
                text("authorization_url").or_else(|| text("authorize_url")),
                text("token_url"),
            )?,
            callback_url: text("oauth_redirect_uri"),
            scopes,
        })
    }
}

/// What the flow is built from.
pub struct FlowParts {
    pub instances: Instances,
    pub apps: OAuthApps,
    pub accounts: ConnectedAccounts,
    pub redirects: RedirectPolicy,
    pub sealer: StateSealer,
    pub public_url: String,
    pub state_ttl: Duration,
    pub spent: SpentStates,
    pub outbound: Outbound,
}

#[derive(Clone)]
pub struct OAuthFlow {
    instances: Instances,
    apps: OAuthApps,
    accounts: ConnectedAccounts,
    redirects: RedirectPolicy,
    sealer: StateSealer,
    public_url: String,
    state_ttl: Duration,
    spent: SpentStates,
    /// Token requests go through the outbound client: public addresses only, a capped answer.
    outbound: Outbound,
}

pub(super) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl OAuthFlow {
    pub fn new(parts: FlowParts) -> Self {
        let FlowParts { instances, apps, accounts, redirects, sealer, public_url, state_ttl, spent, outbound } = parts;
        Self { instances, apps, accounts, redirects, sealer, public_url, state_ttl, spent, outbound }
    }

    /// The redirect URI this service registers with providers.
    pub fn callback_url(&self, provider: &str) -> String {
        format!("{}/oauth/{provider}/callback", self.public_url)
    }

    /// Where authorize sends the browser, for an instance (Klavis): on to the provider, or,
    /// if it cannot go on, back to the caller's `redirect_url` with the error. Until the
    /// instance's project is known, and for a `redirect_url` that project does not allow,
    /// that is a plain page: the flow never sends the browser anywhere it was merely told to.
    pub async fn authorize(&self, req: AuthorizeRequest) -> Outcome {
        let (instance_id, instance) = match self.instance_of(&req.instance_id).await {
            Ok(found) => found,
            Err(e) => return failed(None, None, e),
        };
        let project_id = ProjectId::from_uuid(instance.project_id);
        let redirect_url = match &req.redirect_url {
            Some(raw) => match self.allowed_redirect(project_id, raw).await {
                Ok(url) => Some(url),
                Err(e) => return failed(None, None, e),
            },
            None => None,
        };
        match self.instance_url(instance_id, &instance, project_id, redirect_url.clone(), req).await {
            Ok(url) => Outcome::Redirect(url),
            Err(e) => failed(redirect_url, None, e),
        }
    }

    async fn instance_of(&self, raw_id: &str) -> Result<(InstanceId, ConnectionRecord), FlowError> {
        let instance_id: InstanceId = raw_id.parse().map_err(|_| FlowError::UnknownInstance)?;
        let instance = self.instances.get_anywhere(instance_id).await.map_err(unknown_instance)?;
        Ok((instance_id, instance))
    }

    /// `raw` if the project allows it as a redirect target.
    async fn allowed_redirect(&self, project_id: ProjectId, raw: &str) -> Result<String, FlowError> {
        match self.redirects.check(project_id, raw).await {
            Ok(url) => Ok(url.to_string()),
            Err(AppError::Rejected(refusal)) => Err(refusal.into()),
            Err(e) => Err(e.into()),
        }
    }

    /// A stored target (a link's `callback_url`, a state's `redirect_url`), if the project
    /// still allows it: one removed from the allow-list since is not followed.
    async fn still_allowed(&self, project_id: ProjectId, target: Option<String>) -> Option<String> {
        let raw = target?;
        match self.allowed_redirect(project_id, &raw).await {
            Ok(url) => Some(url),
            Err(e) => {
                tracing::warn!(error = %e, %project_id, "redirect target no longer allowed; the flow ends on a page");
                None
            }
        }
    }

    async fn instance_url(
        &self,
        instance_id: InstanceId,
        instance: &ConnectionRecord,
        project_id: ProjectId,
        redirect_url: Option<String>,
        req: AuthorizeRequest,
    ) -> Result<String, FlowError> {
        check_provider(instance, &req.provider)?;
        let app = self
            .apps
            .for_provider(project_id, &req.provider, req.client_id.as_deref())
            .await?
            .ok_or_else(|| FlowError::NoApp(req.provider.clone()))?;
        let client = ResolvedClient::from_app(&req.provider, &app)?;
        let start = FlowStart {
            target: FlowTarget::Instance(instance_id),
            project_id,
            provider: req.provider,
            redirect_url,
            expires_at: now() + self.state_ttl.as_secs() as i64,
        };
        self.provider_url(start, client, req.scope.as_deref())
    }

    /// Where a Composio connection link sends the browser: the provider's consent page for
    /// the pending account the token names, or the ending if it cannot go on.
    pub async fn authorize_link(&self, link_token: &str) -> Outcome {
        let account = match self.accounts.by_link_token(link_token).await {
            Ok(account) => account,
            Err(AppError::Rejected(_)) => return ending(None, None, Some(FlowError::UnknownLink)),
            Err(e) => return ending(None, None, Some(e.into())),
        };
        let project_id = ProjectId::from_uuid(account.project_id);
        let callback_url = self.still_allowed(project_id, account.callback_url.clone()).await;
        match self.link_url(&account, callback_url.clone()).await {
            Ok(url) => Outcome::Redirect(url),
            Err(e) => {
                let target = FlowTarget::Account(account.connected_account_id.clone());
                failed(callback_url, Some(target), e)
            }
        }
    }

    async fn link_url(&self, account: &AccountRecord, callback_url: Option<String>) -> Result<String, FlowError> {
        let expires_at = account.expires_at.map_or(i64::MAX, |t| t.timestamp());
        if account.status == Status::Expired.as_str() || expires_at <= now() {
            return Err(FlowError::State(StateError::Expired));
        }
        if account.status != Status::Initiated.as_str() {
            return Err(FlowError::NotPending(status_name(&account.status)));
        }
        let project_id = ProjectId::from_uuid(account.project_id);
        let settings =
            self.accounts.auth_config_of(project_id, &account.auth_config_id).await.map_err(unusable_auth_config)?;
        let provider = provider_for_toolkit(&settings.toolkit);
        let client = if settings.managed {
            // Composio's managed apps are Composio's own; here the project's white-label app
            // for the provider stands in for them.
            let app = self
                .apps
                .for_provider(project_id, &provider, None)
                .await?
                .ok_or_else(|| FlowError::NoApp(provider.clone()))?;
            ResolvedClient::from_app(&provider, &app)?
        } else {
            ResolvedClient::from_auth_config(&provider, &account.auth_config_id, &settings)?
        };
        let start = FlowStart {
            target: FlowTarget::Account(account.connected_account_id.clone()),
            project_id,
            provider,
            redirect_url: callback_url,
            // The state lives no longer than the pending connection.
            expires_at: expires_at.min(now() + self.state_ttl.as_secs() as i64),
        };
        self.provider_url(start, client, None)
    }

    /// Seals the state and builds the provider's authorize URL.
    fn provider_url(&self, start: FlowStart, client: ResolvedClient, scope: Option<&str>) -> Result<String, FlowError> {
        let redirect_uri = client.callback_url.clone().unwrap_or_else(|| self.callback_url(&start.provider));
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let scopes = scopes_for(&start.provider, scope, client.scopes.as_deref());
        let extra = extra_params(&start.provider);
        let claims = StateClaims {
            nonce: StateSealer::new_nonce(),
            target: start.target,
            project_id: start.project_id,
            provider: start.provider,
            client: client.client.clone(),
            redirect_uri: redirect_uri.clone(),
            redirect_url: start.redirect_url,
            pkce_verifier: verifier.secret().clone(),
            expires_at: start.expires_at,
        };
        let state = self.sealer.seal(&claims);
        let oauth_client = build_client(&client.client_id, None, &client.endpoints, &redirect_uri)?;
        let mut request = oauth_client.authorize_url(|| CsrfToken::new(state)).set_pkce_challenge(challenge);
        if !scopes.is_empty() {
            request = request.add_extra_param("scope", scopes);
        }
        for (name, value) in extra {
            request = request.add_extra_param(name, value);
        }
        Ok(request.url().0.to_string())
    }

    /// Ends the flow: where the browser goes, and whether a credential was stored.
    pub async fn callback(&self, query: CallbackQuery, meta: &CommandMetadata) -> Outcome {
        // Where to go back is read even from an expired state: the caller should hear of it.
        let readable = query.state.as_deref().and_then(|s| self.sealer.decrypt(s).ok());
        let redirect_url = match &readable {
            Some(claims) => self.still_allowed(claims.project_id, claims.redirect_url.clone()).await,
            None => None,
        };
        let target = readable.map(|c| c.target);
        let claims = query.state.as_deref().map(|s| self.sealer.open(s, now()));
        match self.finish(query, claims, meta).await {
            Ok(()) => ending(redirect_url, target, None),
            Err(e) => {
                tracing::warn!(error = %e, code = e.code(), "OAuth flow failed; no credential stored");
                ending(redirect_url, target, Some(e))
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
        // Used up before anything else, whatever the outcome: a state whose exchange failed
        // must not make the service call the token endpoint again.
        if !self.spent.spend(&claims).await.map_err(|e| FlowError::Internal(e.into()))? {
            return Err(FlowError::Replayed);
        }
        match claims.target.clone() {
            FlowTarget::Instance(instance_id) => self.finish_instance(instance_id, query, claims, meta).await,
            FlowTarget::Account(account_id) => self.finish_account(&account_id, query, claims, meta).await,
        }
    }

    async fn finish_instance(
        &self,
        instance_id: InstanceId,
        query: CallbackQuery,
        claims: StateClaims,
        meta: &CommandMetadata,
    ) -> Result<(), FlowError> {
        let code = code_of(query)?;
        let instance = self.instances.get(&caller_of(&claims), instance_id).await.map_err(unknown_instance)?;
        if self.instances.state_used(&instance, &claims.nonce).await? {
            return Err(FlowError::Replayed);
        }
        let tokens = self.exchange(&claims, code).await?;
        match self.instances.complete_oauth(claims.project_id, instance_id, claims.nonce, tokens, meta).await {
            Ok(()) => Ok(()),
            Err(AppError::Rejected(InstanceError::StateAlreadyUsed)) => Err(FlowError::Replayed),
            Err(AppError::Rejected(InstanceError::NotFound)) => Err(FlowError::UnknownInstance),
            Err(e) => Err(e.into()),
        }
    }

    /// A pending account ends ACTIVE with the tokens, or FAILED with the reason when the
    /// provider refuses or the exchange fails.
    async fn finish_account(
        &self,
        account_id: &str,
        query: CallbackQuery,
        claims: StateClaims,
        meta: &CommandMetadata,
    ) -> Result<(), FlowError> {
        match self.accounts.status(claims.project_id, account_id).await.map_err(account_refusal)? {
            Status::Initiated => {}
            Status::Expired => return Err(FlowError::State(StateError::Expired)),
            _ => return Err(FlowError::Replayed),
        }
        let tokens = match self.exchange_for_account(query, &claims).await {
            Ok(tokens) => tokens,
            Err(e) => {
                if matches!(e, FlowError::Denied(_) | FlowError::MissingCode | FlowError::TokenExchange(_)) {
                    let why = format!("{}: {e}", reason::TOKEN_EXCHANGE);
                    if let Err(failure) = self.accounts.fail(claims.project_id, account_id, &why, meta).await {
                        tracing::warn!(error = %failure, account_id, "could not mark the connection FAILED");
                    }
                }
                return Err(e);
            }
        };
        self.accounts
            .complete_oauth(claims.project_id, account_id, tokens, claims.nonce, meta)
            .await
            .map_err(account_refusal)
    }

    async fn exchange_for_account(
        &self,
        query: CallbackQuery,
        claims: &StateClaims,
    ) -> Result<SecretString, FlowError> {
        let code = code_of(query)?;
        self.exchange(claims, code).await
    }

    /// The client the state names, with its secret.
    async fn client_of(&self, claims: &StateClaims) -> Result<(ResolvedClient, Option<SecretString>), FlowError> {
        self.client_for(claims.project_id, &claims.provider, &claims.client).await
    }

    /// A client of `project_id` for `provider`, with its secret: a white-label app's, or a
    /// custom auth config's `client_secret`.
    pub(super) async fn client_for(
        &self,
        project_id: ProjectId,
        provider: &str,
        client: &ClientRef,
    ) -> Result<(ResolvedClient, Option<SecretString>), FlowError> {
        match client {
            ClientRef::App(client_id) => {
                let app =
                    self.apps.get(project_id, client_id).await?.ok_or_else(|| FlowError::NoApp(provider.to_owned()))?;
                let secret = self.apps.client_secret(project_id, &app).await?;
                Ok((ResolvedClient::from_app(provider, &app)?, Some(secret)))
            }
            ClientRef::AuthConfig(id) => {
                let auth_configs = self.accounts.auth_configs();
                let config = auth_configs.load(project_id, id).await.map_err(|e| match e {
                    AppError::Rejected(_) => FlowError::AuthConfigUnusable,
                    other => other.into(),
                })?;
                let settings = config.settings_in(project_id).ok_or(FlowError::AuthConfigUnusable)?;
                let secrets = auth_configs.secret_credentials(settings).await?;
                let secret = secrets.get("client_secret").and_then(serde_json::Value::as_str);
                let secret = secret.map(|s| SecretString::from(s.to_owned()));
                Ok((ResolvedClient::from_auth_config(provider, id, settings)?, secret))
            }
        }
    }

    /// The client that issued an instance's tokens: the project's white-label app for its
    /// provider, as authorize picks it (the newest, when no `client_id` was asked for).
    pub(super) async fn instance_client(
        &self,
        project_id: ProjectId,
        provider: &str,
    ) -> Result<(ResolvedClient, Option<SecretString>), FlowError> {
        let app = self
            .apps
            .for_provider(project_id, provider, None)
            .await?
            .ok_or_else(|| FlowError::NoApp(provider.into()))?;
        self.client_for(project_id, provider, &ClientRef::App(app.client_id)).await
    }

    /// The client that issued a connected account's tokens, as its link picked it: the auth
    /// config's own, or for a managed one the project's white-label app for the provider.
    /// A disabled auth config still refreshes the accounts it connected.
    pub(super) async fn account_client(
        &self,
        project_id: ProjectId,
        auth_config_id: &str,
    ) -> Result<(ResolvedClient, Option<SecretString>), FlowError> {
        let config = self.accounts.auth_configs().load(project_id, auth_config_id).await.map_err(|e| match e {
            AppError::Rejected(_) => FlowError::AuthConfigUnusable,
            other => other.into(),
        })?;
        let settings = config.settings_in(project_id).ok_or(FlowError::AuthConfigUnusable)?;
        let provider = provider_for_toolkit(&settings.toolkit);
        if settings.managed {
            return self.instance_client(project_id, &provider).await;
        }
        self.client_for(project_id, &provider, &ClientRef::AuthConfig(auth_config_id.to_owned())).await
    }

    pub(super) fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    pub(super) fn instances(&self) -> &Instances {
        &self.instances
    }

    pub(super) fn accounts(&self) -> &ConnectedAccounts {
        &self.accounts
    }

    /// Exchanges the code at the token endpoint; the tokens come back as the JSON to seal.
    async fn exchange(&self, claims: &StateClaims, code: String) -> Result<SecretString, FlowError> {
        let (client, secret) = self.client_of(claims).await?;
        let oauth_client = build_client(&client.client_id, secret, &client.endpoints, &claims.redirect_uri)?;
        let response = oauth_client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(claims.pkce_verifier.clone()))
            .request_async(&self.outbound)
            .await
            .map_err(|e| FlowError::TokenExchange(describe(&e)))?;
        let mut tokens = serde_json::to_value(&response).map_err(|e| FlowError::Internal(e.into()))?;
        if let Some(expires_in) = tokens.get("expires_in").and_then(serde_json::Value::as_i64) {
            tokens["expires_at"] = serde_json::json!(now() + expires_in);
        }
        Ok(SecretString::from(tokens.to_string()))
    }
}

/// What a flow is started for, before its client is known.
struct FlowStart {
    target: FlowTarget,
    project_id: ProjectId,
    provider: String,
    redirect_url: Option<String>,
    expires_at: i64,
}

/// The provider's refusal, or its code.
fn code_of(query: CallbackQuery) -> Result<String, FlowError> {
    if let Some(error) = query.error {
        let detail = query.error_description.map_or(error.clone(), |d| format!("{error}: {d}"));
        // The browser's query becomes the FAILED account's reason, in an event: clipped like
        // everything else a provider says.
        return Err(FlowError::Denied(clip(detail)));
    }
    query.code.filter(|c| !c.is_empty()).ok_or(FlowError::MissingCode)
}

/// The OAuth provider of a Composio toolkit: the catalog server it stands for
/// (`googlecalendar` is Google Calendar's `gcalendar`), else the toolkit slug itself (a custom
/// auth config then names the endpoints).
pub fn provider_for_toolkit(toolkit: &str) -> String {
    Catalog::get().for_toolkit(toolkit).map_or_else(|| toolkit.to_lowercase(), |e| e.slug.clone())
}

fn status_name(status: &str) -> &'static str {
    [Status::Active, Status::Failed, Status::Inactive, Status::Revoked, Status::Initializing]
        .into_iter()
        .find(|s| s.as_str() == status)
        .map_or("not pending", Status::as_str)
}

fn unusable_auth_config(e: AppError<AccountError>) -> FlowError {
    match e {
        AppError::Rejected(_) => FlowError::AuthConfigUnusable,
        other => other.into(),
    }
}

fn account_refusal(e: AppError<AccountError>) -> FlowError {
    match e {
        AppError::Rejected(AccountError::Account(refusal)) => match refusal {
            ConnectedAccountError::Expired => FlowError::State(StateError::Expired),
            ConnectedAccountError::NotFound => FlowError::UnknownLink,
            _ => FlowError::Replayed,
        },
        AppError::Rejected(_) => FlowError::AuthConfigUnusable,
        other => other.into(),
    }
}

fn split_scopes(raw: &str) -> Vec<String> {
    raw.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The flow acts for the instance's project; nobody else's key is involved.
fn caller_of(claims: &StateClaims) -> crate::project::Caller {
    crate::project::Caller {
        project_id: claims.project_id,
        key_id: events::ApiKeyId::from_uuid(uuid::Uuid::nil()),
        rate_limit: None,
    }
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

/// Never includes a token or the client secret: only the provider's error code and
/// description (clipped: it ends up in a FAILED connection's reason), why the endpoint was
/// not called, or the kind of transport failure.
pub(super) fn describe(e: &RequestTokenError<OutboundError, BasicErrorResponse>) -> String {
    match e {
        RequestTokenError::ServerResponse(response) => {
            let code = response.error().to_string();
            clip(response.error_description().map_or(code.clone(), |d| format!("{code}: {d}")))
        }
        RequestTokenError::Request(refused @ (OutboundError::RefusedAddress(_) | OutboundError::Invalid(_))) => {
            format!("the token endpoint was not called: {refused}")
        }
        // What an internal name resolves to stays in the log: the tenant could map this
        // network's DNS through its error pages otherwise.
        RequestTokenError::Request(OutboundError::RefusedName(refused)) => {
            tracing::warn!(reason = %refused, "token endpoint refused after resolution");
            "the token endpoint was not called: its host does not resolve to a public address".into()
        }
        RequestTokenError::Request(too_large @ OutboundError::TooLarge { .. }) => {
            format!("the token endpoint's answer was refused: {too_large}")
        }
        RequestTokenError::Request(OutboundError::Transport(_)) => "the token endpoint could not be reached".into(),
        RequestTokenError::Parse(_, _) => "the token endpoint's answer is not a token response".into(),
        RequestTokenError::Other(message) => clip(message.clone()),
    }
}

/// What a provider says is kept to a line: it is the provider's text, of any length, and may
/// hold control characters (a NUL would make Postgres refuse the FAILED event).
fn clip(mut text: String) -> String {
    const MAX_CHARS: usize = 300;
    text.retain(|c| !c.is_control());
    if let Some((at, _)) = text.char_indices().nth(MAX_CHARS) {
        text.truncate(at);
        text.push('…');
    }
    text
}

pub(super) struct Endpoints {
    authorize: String,
    pub(super) token: String,
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

fn build_client(
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
        (Some(raw), _) if !raw.trim().is_empty() => split_scopes(raw),
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

/// How a flow that failed before it reached the provider ends. `redirect_url` must be one
/// the project allows.
fn failed(redirect_url: Option<String>, target: Option<FlowTarget>, error: FlowError) -> Outcome {
    if let FlowError::Internal(cause) = &error {
        tracing::error!(error = format!("{cause:#}"), "OAuth flow could not start");
    }
    ending(redirect_url, target, Some(error))
}

/// The end of the flow: back to the caller's `redirect_url` (one the project allows) with
/// `instance_id` (or `connected_account_id`) and `status` (and `error`), or a plain page.
fn ending(redirect_url: Option<String>, target: Option<FlowTarget>, error: Option<FlowError>) -> Outcome {
    if let Some(Ok(mut url)) = redirect_url.as_deref().map(url::Url::parse) {
        {
            let mut query = url.query_pairs_mut();
            match &target {
                Some(FlowTarget::Instance(id)) => {
                    query.append_pair("instance_id", &id.to_string());
                }
                Some(FlowTarget::Account(id)) => {
                    query.append_pair("connected_account_id", id);
                }
                None => {}
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
        let Outcome::Redirect(url) =
            ending(Some("https://app.example.com/done?x=1".into()), Some(FlowTarget::Instance(id)), None)
        else {
            panic!()
        };
        assert_eq!(url, format!("https://app.example.com/done?x=1&instance_id={id}&status=success"));
        let Outcome::Redirect(url) = ending(
            Some("https://app.example.com/done".into()),
            Some(FlowTarget::Instance(id)),
            Some(FlowError::Replayed),
        ) else {
            panic!()
        };
        assert!(url.ends_with("status=error&error=replayed_state"), "{url}");
        let Outcome::Page { status, .. } = ending(None, None, Some(FlowError::State(StateError::Invalid))) else {
            panic!()
        };
        assert_eq!(status, 400);
    }

    #[test]
    fn a_providers_text_is_clipped_before_it_reaches_an_event() {
        assert_eq!(clip("invalid_grant: expired".into()), "invalid_grant: expired");
        let long = clip("é".repeat(64 * 1024));
        assert_eq!(long.chars().count(), 301, "300 characters and an ellipsis");
        assert!(long.ends_with('…'));
        assert_eq!(clip("bad\u{0}grant\n".into()), "badgrant", "no NUL reaches Postgres");
    }

    #[test]
    fn a_name_resolving_to_a_private_address_is_refused_without_saying_what_it_resolves_to() {
        let refused = crate::outbound::AddressPolicy::default().check("10.2.3.4".parse().unwrap()).unwrap_err();
        let error = RequestTokenError::Request(OutboundError::RefusedName(crate::outbound::RefusedName {
            host: "db.internal.corp".into(),
            refused,
        }));
        let told = describe(&error);
        assert!(!told.contains("10.2.3.4") && !told.contains("db.internal"), "{told}");
        assert!(told.contains("does not resolve to a public address"), "{told}");
    }

    #[test]
    fn a_toolkit_finds_its_provider_in_the_catalog() {
        assert_eq!(provider_for_toolkit("gmail"), "gmail");
        assert_eq!(provider_for_toolkit("googlecalendar"), Catalog::get().find("Google Calendar").unwrap().slug);
        assert_eq!(provider_for_toolkit("my_own_crm"), "my_own_crm");
    }
}
