//! A local OAuth 2.0 provider for tests: an authorize endpoint that consents at once (or
//! refuses), and a token endpoint that checks the code, the redirect URI, the client secret
//! and the PKCE verifier before it issues tokens, and refreshes them (RFC 6749 §6): each
//! refresh token works once (it rotates), so a refresh token spent twice gets `invalid_grant`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Form, Json, Query, Redirect};
use poem::{EndpointExt, IntoResponse, Request, Response, Route, Server, handler};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
/// How the provider misbehaves; it consents and issues tokens unless told otherwise.
pub enum Behaviour {
    Deny,
    FailTokenExchange,
    /// Refresh requests get `invalid_grant` (the user revoked the grant).
    RefuseRefresh,
    /// Refresh requests get a 503 with `temporarily_unavailable` (the provider is down).
    RefreshDown,
}

#[derive(Default)]
struct State {
    behaviour: Option<Behaviour>,
    /// code -> (redirect_uri, code_challenge)
    codes: HashMap<String, (String, String)>,
    tokens_issued: u32,
    /// Every call of the token endpoint, answered with tokens or not.
    token_requests: u32,
    /// Calls with `grant_type=refresh_token`, answered with tokens or not.
    refresh_requests: u32,
    /// Refresh tokens issued and not spent yet.
    live_refresh_tokens: std::collections::HashSet<String>,
    /// `expires_in` of the tokens issued from now on (3600 unless told).
    expires_in: Option<i64>,
    /// How long a refresh takes (to make concurrent refreshes overlap).
    refresh_delay: std::time::Duration,
}

#[derive(Clone)]
pub struct OAuthProvider {
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
    state: Arc<Mutex<State>>,
}

#[derive(Deserialize)]
struct AuthorizeParams {
    client_id: String,
    redirect_uri: String,
    state: String,
    code_challenge: String,
    code_challenge_method: String,
}

#[handler]
fn authorize(Query(p): Query<AuthorizeParams>, Data(provider): Data<&OAuthProvider>) -> Response {
    assert_eq!(p.client_id, provider.client_id, "authorize with the app's client id");
    assert_eq!(p.code_challenge_method, "S256", "PKCE with S256");
    let mut state = provider.state.lock().unwrap();
    let separator = if p.redirect_uri.contains('?') { '&' } else { '?' };
    let state_param = urlencode(&p.state);
    if state.behaviour == Some(Behaviour::Deny) {
        return Redirect::see_other(format!("{}{separator}error=access_denied&state={state_param}", p.redirect_uri))
            .into_response();
    }
    let code = uuid::Uuid::new_v4().simple().to_string();
    state.codes.insert(code.clone(), (p.redirect_uri.clone(), p.code_challenge));
    Redirect::see_other(format!("{}{separator}code={code}&state={state_param}", p.redirect_uri)).into_response()
}

fn urlencode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

#[derive(Deserialize)]
struct TokenParams {
    grant_type: String,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// The client's credentials, from HTTP Basic (RFC 6749 §2.3.1) or the form.
fn client_credentials(req: &Request, form: &TokenParams) -> Option<(String, String)> {
    if let Some(basic) =
        req.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = String::from_utf8(STANDARD.decode(basic).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let unescape =
            |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
        return Some((unescape(id)?, unescape(secret)?));
    }
    Some((form.client_id.clone()?, form.client_secret.clone()?))
}

/// A token endpoint's refusal: its status and RFC 6749 §5.2 error code.
type Refusal = (poem::http::StatusCode, &'static str);

const fn refuse(error: &'static str) -> Refusal {
    (poem::http::StatusCode::BAD_REQUEST, error)
}

fn refusal_response((status, error): Refusal) -> Response {
    Json(serde_json::json!({"error": error})).with_status(status).into_response()
}

#[handler]
async fn token(req: &Request, Form(form): Form<TokenParams>, Data(provider): Data<&OAuthProvider>) -> Response {
    let delay = {
        let mut state = provider.state.lock().unwrap();
        state.token_requests += 1;
        if form.grant_type == "refresh_token" {
            state.refresh_requests += 1;
        }
        state.refresh_delay
    };
    if form.grant_type == "refresh_token" && !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if client_credentials(req, &form)
        .is_none_or(|(id, secret)| id != provider.client_id || secret != provider.client_secret)
    {
        return refusal_response(refuse("invalid_client"));
    }
    let mut state = provider.state.lock().unwrap();
    match form.grant_type.as_str() {
        "authorization_code" => exchange_code(&mut state, &form),
        "refresh_token" => refresh(&mut state, &form),
        _ => Err(refuse("unsupported_grant_type")),
    }
    .map_or_else(refusal_response, |()| state.issue(provider))
}

fn exchange_code(state: &mut State, form: &TokenParams) -> Result<(), Refusal> {
    if state.behaviour == Some(Behaviour::FailTokenExchange) {
        return Err(refuse("server_error"));
    }
    // A code works once.
    let code = form.code.as_deref().unwrap_or_default();
    let Some((redirect_uri, challenge)) = state.codes.remove(code) else { return Err(refuse("invalid_grant")) };
    if Some(redirect_uri.as_str()) != form.redirect_uri.as_deref() {
        return Err(refuse("invalid_grant"));
    }
    let verifier = form.code_verifier.as_deref().unwrap_or_default();
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != challenge {
        return Err(refuse("invalid_grant"));
    }
    Ok(())
}

fn refresh(state: &mut State, form: &TokenParams) -> Result<(), Refusal> {
    match state.behaviour {
        Some(Behaviour::RefuseRefresh) => return Err(refuse("invalid_grant")),
        Some(Behaviour::RefreshDown) => {
            return Err((poem::http::StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"));
        }
        _ => {}
    }
    // A refresh token works once: the answer carries the next one.
    let presented = form.refresh_token.as_deref().unwrap_or_default();
    if !state.live_refresh_tokens.remove(presented) {
        return Err(refuse("invalid_grant"));
    }
    Ok(())
}

impl State {
    fn issue(&mut self, provider: &OAuthProvider) -> Response {
        self.tokens_issued += 1;
        let n = self.tokens_issued;
        let refresh_token = format!("refresh-token-{}-{n}", provider.client_secret);
        self.live_refresh_tokens.insert(refresh_token.clone());
        Json(serde_json::json!({
            "access_token": format!("access-token-{}-{n}", provider.client_secret),
            "refresh_token": refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in.unwrap_or(3600),
            "scope": "read write",
            "provider_extra": {"team": "T123"},
        }))
        .into_response()
    }
}

impl OAuthProvider {
    pub async fn start() -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
        let addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let provider = Self {
            base_url: format!("http://{addr}"),
            client_id: format!("client-{tag}"),
            client_secret: format!("client-secret-{tag}"),
            state: Arc::default(),
        };
        let app = Route::new().at("/authorize", authorize).at("/token", poem::post(token)).data(provider.clone());
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        provider
    }

    pub fn behave(&self, behaviour: Behaviour) {
        self.state.lock().unwrap().behaviour = Some(behaviour);
    }

    pub fn tokens_issued(&self) -> u32 {
        self.state.lock().unwrap().tokens_issued
    }

    pub fn token_requests(&self) -> u32 {
        self.state.lock().unwrap().token_requests
    }

    pub fn refresh_requests(&self) -> u32 {
        self.state.lock().unwrap().refresh_requests
    }

    /// Behaves well again.
    pub fn recover(&self) {
        self.state.lock().unwrap().behaviour = None;
    }

    /// Tokens issued from now on expire in `seconds` (0: at once).
    pub fn expire_tokens_in(&self, seconds: i64) {
        self.state.lock().unwrap().expires_in = Some(seconds);
    }

    /// Each refresh from now on takes `delay`.
    pub fn delay_refreshes(&self, delay: std::time::Duration) {
        self.state.lock().unwrap().refresh_delay = delay;
    }

    /// The access token of the `n`th tokens issued (1: the code's).
    pub fn access_token(&self, n: u32) -> String {
        format!("access-token-{}-{n}", self.client_secret)
    }
}
