//! A local OAuth 2.0 provider for tests: an authorize endpoint that consents at once (or
//! refuses), and a token endpoint that checks the code, the redirect URI, the client secret
//! and the PKCE verifier before it issues tokens.

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
}

#[derive(Default)]
struct State {
    behaviour: Option<Behaviour>,
    /// code -> (redirect_uri, code_challenge)
    codes: HashMap<String, (String, String)>,
    tokens_issued: u32,
    /// Every call of the token endpoint, answered with tokens or not.
    token_requests: u32,
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
    code: String,
    redirect_uri: String,
    code_verifier: String,
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

#[handler]
fn token(req: &Request, Form(form): Form<TokenParams>, Data(provider): Data<&OAuthProvider>) -> Response {
    let refuse = |error: &str| {
        Json(serde_json::json!({"error": error})).with_status(poem::http::StatusCode::BAD_REQUEST).into_response()
    };
    let mut state = provider.state.lock().unwrap();
    state.token_requests += 1;
    if state.behaviour == Some(Behaviour::FailTokenExchange) {
        return refuse("server_error");
    }
    if form.grant_type != "authorization_code" {
        return refuse("unsupported_grant_type");
    }
    match client_credentials(req, &form) {
        Some((id, secret)) if id == provider.client_id && secret == provider.client_secret => {}
        _ => return refuse("invalid_client"),
    }
    // A code works once.
    let Some((redirect_uri, challenge)) = state.codes.remove(&form.code) else { return refuse("invalid_grant") };
    if redirect_uri != form.redirect_uri {
        return refuse("invalid_grant");
    }
    if URL_SAFE_NO_PAD.encode(Sha256::digest(form.code_verifier.as_bytes())) != challenge {
        return refuse("invalid_grant");
    }
    state.tokens_issued += 1;
    let n = state.tokens_issued;
    Json(serde_json::json!({
        "access_token": format!("access-token-{}-{n}", provider.client_secret),
        "refresh_token": format!("refresh-token-{}-{n}", provider.client_secret),
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "read write",
        "provider_extra": {"team": "T123"},
    }))
    .into_response()
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
}
