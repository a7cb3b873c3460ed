//! OAuth token refresh (RFC 6749 §6, `grant_type=refresh_token`), right before the gateway
//! forwards a call: an access token that has expired or expires within [`MARGIN_SECS`] is
//! exchanged for a new one through the client that issued it (the instance's white-label app,
//! the connected account's auth config), over the SSRF-safe outbound client.
//!
//! What comes back is stored as an event, sealed under the credential's own data key (a
//! provider that sends no new refresh token keeps the old one). When the refresh fails:
//! - the provider refuses the grant for good (`invalid_grant`, `invalid_client`,
//!   `unauthorized_client`, ... any RFC 6749 §5.2 code but `server_error` /
//!   `temporarily_unavailable`), or the token has expired and there is no refresh token: the
//!   credential (or connected account) is marked EXPIRED with the reason, and the user must
//!   authorize again;
//! - the provider cannot be reached, answers 5xx or garbage, or its client is not configured
//!   any more: nothing is marked, since the refresh token may still be good. While the access
//!   token has not actually expired the call goes on with it; once it has, the call is refused
//!   with a retryable error and the next call tries again.
//!
//! Tokens that do not say when they expire (no `expires_at`, recorded at exchange from
//! `expires_in`) are taken as not expiring.
//!
//! Concurrency: one refresh per credential at a time, in this process (a mutex per credential)
//! and across replicas (a Postgres advisory lock held while the provider is asked); whoever
//! waited re-reads the credential and uses the tokens the winner stored. The store itself is
//! optimistic as well: a refresh or expiry names the sealed tokens it replaces and is refused
//! if the aggregate holds others, and the loser then re-reads instead of expiring anything.

use super::flow::{OAuthFlow, ResolvedClient, TokenResponse, describe, now};
use crate::connected_account::AccountError;
use crate::error::AppError;
use crate::instance::{ConnectionRecord, InstanceResult};
use crate::outbound::OutboundError;
use crate::store::CommandMetadata;
use domain::connected_account::{ConnectedAccountError, reason};
use domain::instance::InstanceError;
use events::{ProjectId, SealedSecret};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
};
use oauth2::{ClientId, ClientSecret, EndpointNotSet, EndpointSet, RefreshToken, RequestTokenError, TokenUrl};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// An access token expiring within this many seconds is refreshed first.
pub const MARGIN_SECS: i64 = 60;
/// Times a refresh re-reads the credential after another writer changed it.
const MAX_REREADS: usize = 3;

type RefreshClient = oauth2::Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Why a call cannot have a fresh token.
#[derive(Debug, thiserror::Error)]
pub enum RefreshFailure {
    /// The refresh failed for good: the credential is EXPIRED (now, or by a concurrent call);
    /// the user must authorize again.
    #[error("the OAuth token expired and could not be refreshed: {0}")]
    Expired(String),
    /// The access token has expired and the provider could not refresh it right now; nothing
    /// was marked, a later call tries again.
    #[error("the OAuth token expired and could not be refreshed right now: {0}")]
    Unavailable(String),
    /// The credential was removed, replaced by an unusable one, or the account left ACTIVE.
    #[error("the credential is gone")]
    Gone,
    #[error("internal failure: {0:#}")]
    Internal(anyhow::Error),
}

impl<E: std::error::Error + Send + Sync + 'static> From<AppError<E>> for RefreshFailure {
    fn from(e: AppError<E>) -> Self {
        Self::Internal(anyhow::Error::new(e))
    }
}

/// The OAuth tokens a credential holds (its JSON), as far as refresh reads them.
struct Tokens<'a>(&'a SecretString);

impl Tokens<'_> {
    fn json(&self) -> Option<Value> {
        serde_json::from_str(self.0.expose_secret()).ok()
    }

    /// Unix seconds; none when the provider said nothing of it.
    fn expires_at(&self) -> Option<i64> {
        self.json()?.get("expires_at")?.as_i64()
    }

    fn due(&self, now: i64) -> bool {
        self.expires_at().is_some_and(|at| at - now <= MARGIN_SECS)
    }

    fn expired(&self, now: i64) -> bool {
        self.expires_at().is_some_and(|at| at <= now)
    }

    fn refresh_token(&self) -> Option<String> {
        let json = self.json()?;
        json.get("refresh_token")?.as_str().filter(|t| !t.is_empty()).map(str::to_owned)
    }
}

/// The new tokens: the old ones with the provider's answer over them (a refresh token it did
/// not send is kept, and so are fields of the first exchange it does not repeat), and the
/// expiry recorded as `expires_at` (none when the answer has no `expires_in`).
fn merge(old: &SecretString, answer: Value, now: i64) -> SecretString {
    let mut tokens = match serde_json::from_str::<Value>(old.expose_secret()) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    tokens.remove("expires_in");
    tokens.remove("expires_at");
    if let Value::Object(fields) = answer {
        for (name, value) in fields {
            if !value.is_null() {
                tokens.insert(name, value);
            }
        }
    }
    if let Some(expires_in) = tokens.get("expires_in").and_then(Value::as_i64) {
        tokens.insert("expires_at".into(), json!(now + expires_in));
    }
    SecretString::from(Value::Object(tokens).to_string())
}

/// Why the provider gave no new tokens.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// The grant is dead: no retry will help.
    Final(String),
    /// Unreachable, 5xx, garbage, or not configured: the refresh token may still be good.
    Transient(String),
    NoRefreshToken,
}

/// RFC 6749 §5.2: every error code but the two that say "try later" is the grant's end.
fn refusal_of(e: &RequestTokenError<OutboundError, BasicErrorResponse>) -> Refusal {
    match e {
        RequestTokenError::ServerResponse(response) => match response.error() {
            BasicErrorResponseType::Extension(code)
                if matches!(code.as_str(), "server_error" | "temporarily_unavailable") =>
            {
                Refusal::Transient(describe(e))
            }
            _ => Refusal::Final(describe(e)),
        },
        _ => Refusal::Transient(describe(e)),
    }
}

/// What the credential holder (an instance's slot or a connected account) gives a refresh.
struct Opened {
    plain: SecretString,
    sealed: SealedSecret,
}

/// Whether a store (or expiry) went in, or another writer changed the credential first.
enum Stored {
    Done,
    Changed,
}

/// An instance's slot or a connected account: where the tokens are read and stored.
enum Holder<'a> {
    Instance(&'a ConnectionRecord),
    Account { project_id: ProjectId, id: &'a str, auth_config_id: &'a str },
}

fn stored_instance(result: InstanceResult<()>) -> Result<Stored, RefreshFailure> {
    match result {
        Ok(()) => Ok(Stored::Done),
        Err(AppError::Rejected(InstanceError::CredentialChanged | InstanceError::NotFound))
        | Err(AppError::Conflict) => Ok(Stored::Changed),
        Err(e) => Err(e.into()),
    }
}

fn stored_account(result: Result<(), AppError<AccountError>>) -> Result<Stored, RefreshFailure> {
    match result {
        Ok(()) => Ok(Stored::Done),
        Err(AppError::Rejected(AccountError::Account(
            ConnectedAccountError::CredentialChanged | ConnectedAccountError::NotFound,
        )))
        | Err(AppError::Conflict) => Ok(Stored::Changed),
        Err(e) => Err(e.into()),
    }
}

impl Holder<'_> {
    /// One lock name per credential, the same on every replica.
    fn lock_name(&self) -> String {
        match self {
            Self::Instance(record) => format!("oauth-refresh:instance:{}", record.slot_id),
            Self::Account { id, .. } => format!("oauth-refresh:connected_account:{id}"),
        }
    }

    async fn open(&self, flow: &OAuthFlow) -> Result<Option<Opened>, RefreshFailure> {
        Ok(match self {
            Self::Instance(record) => {
                flow.instances().open_usable(record).await?.map(|o| Opened { plain: o.plain, sealed: o.sealed })
            }
            Self::Account { project_id, id, .. } => {
                flow.accounts().open_active(*project_id, id).await?.map(|(_, plain, sealed)| Opened { plain, sealed })
            }
        })
    }

    async fn client(&self, flow: &OAuthFlow) -> Result<(ResolvedClient, Option<SecretString>), super::FlowError> {
        match self {
            Self::Instance(record) => {
                let provider = record.server_key.strip_prefix("catalog:").unwrap_or(&record.server_key);
                flow.instance_client(ProjectId::from_uuid(record.project_id), provider).await
            }
            Self::Account { project_id, auth_config_id, .. } => flow.account_client(*project_id, auth_config_id).await,
        }
    }

    async fn store(
        &self,
        flow: &OAuthFlow,
        replaces: &SealedSecret,
        tokens: &SecretString,
    ) -> Result<Stored, RefreshFailure> {
        let meta = CommandMetadata::actor("system:token-refresh");
        match self {
            Self::Instance(record) => {
                stored_instance(flow.instances().store_refreshed(record, replaces, tokens, &meta).await)
            }
            Self::Account { project_id, id, .. } => {
                stored_account(flow.accounts().store_refreshed(*project_id, id, replaces, tokens, &meta).await)
            }
        }
    }

    async fn expire(&self, flow: &OAuthFlow, replaces: &SealedSecret, why: &str) -> Result<Stored, RefreshFailure> {
        let meta = CommandMetadata::actor("system:token-refresh");
        match self {
            Self::Instance(record) => {
                stored_instance(flow.instances().expire_credential(record, replaces, why, &meta).await)
            }
            Self::Account { project_id, id, .. } => {
                let why = format!("{}: {why}", reason::TOKEN_REFRESH);
                stored_account(flow.accounts().expire_credential(*project_id, id, replaces, &why, &meta).await)
            }
        }
    }
}

/// Refreshes OAuth tokens before the gateway uses them. Cheap to clone.
#[derive(Clone)]
pub struct TokenRefresher {
    flow: OAuthFlow,
    pool: PgPool,
    /// One mutex per credential being refreshed in this process (removed when unused).
    local: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl TokenRefresher {
    pub fn new(flow: OAuthFlow, pool: PgPool) -> Self {
        Self { flow, pool, local: Arc::default() }
    }

    /// An instance's OAuth tokens (`plain`, just opened), fresh: as they are, or refreshed.
    pub async fn fresh_instance_tokens(
        &self,
        record: &ConnectionRecord,
        plain: SecretString,
    ) -> Result<SecretString, RefreshFailure> {
        self.fresh(&Holder::Instance(record), plain).await
    }

    /// A connected account's OAuth tokens (`plain`, just opened), fresh.
    pub async fn fresh_account_tokens(
        &self,
        project_id: ProjectId,
        connected_account_id: &str,
        auth_config_id: &str,
        plain: SecretString,
    ) -> Result<SecretString, RefreshFailure> {
        let holder = Holder::Account { project_id, id: connected_account_id, auth_config_id };
        self.fresh(&holder, plain).await
    }

    async fn fresh(&self, holder: &Holder<'_>, plain: SecretString) -> Result<SecretString, RefreshFailure> {
        if !Tokens(&plain).due(now()) {
            return Ok(plain);
        }
        let name = holder.lock_name();
        let local = self.local_lock(&name);
        let result = {
            let _turn = local.lock().await;
            self.refresh_exclusively(holder, &name).await
        };
        drop(local);
        self.forget_unused(&name);
        result
    }

    /// The refresh, holding the credential's advisory lock (a transaction-level lock: the
    /// transaction ends, and the lock with it, whatever happens).
    async fn refresh_exclusively(&self, holder: &Holder<'_>, name: &str) -> Result<SecretString, RefreshFailure> {
        let mut lock = self.pool.begin().await.map_err(|e| RefreshFailure::Internal(e.into()))?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(name)
            .execute(&mut *lock)
            .await
            .map_err(|e| RefreshFailure::Internal(e.into()))?;
        let result = self.refresh_locked(holder).await;
        if let Err(e) = lock.commit().await {
            tracing::warn!(error = %e, "releasing a token refresh lock failed; it ends with its connection");
        }
        result
    }

    /// Re-reads the credential (another call may have refreshed it while this one waited),
    /// then refreshes it if it is still due.
    async fn refresh_locked(&self, holder: &Holder<'_>) -> Result<SecretString, RefreshFailure> {
        for _ in 0..MAX_REREADS {
            let Some(current) = holder.open(&self.flow).await? else { return Err(RefreshFailure::Gone) };
            let now = now();
            let tokens = Tokens(&current.plain);
            if !tokens.due(now) {
                return Ok(current.plain);
            }
            let outcome = match self.ask_provider(holder, &current.plain).await {
                Ok(fresh) => holder.store(&self.flow, &current.sealed, &fresh).await.map(|s| (s, Ok(fresh))),
                Err(Refusal::Transient(problem)) => {
                    if tokens.expired(now) {
                        tracing::warn!(problem = %problem, "token refresh failed; the access token has expired");
                        return Err(RefreshFailure::Unavailable(problem));
                    }
                    tracing::warn!(problem = %problem, "token refresh failed; the access token is still valid");
                    return Ok(current.plain);
                }
                Err(Refusal::NoRefreshToken) if !tokens.expired(now) => return Ok(current.plain),
                Err(refusal) => {
                    let why = match refusal {
                        Refusal::Final(why) => format!("the provider refused the refresh: {why}"),
                        _ => "the access token expired and there is no refresh token".to_owned(),
                    };
                    holder
                        .expire(&self.flow, &current.sealed, &why)
                        .await
                        .map(|s| (s, Err(RefreshFailure::Expired(why))))
                }
            }?;
            match outcome {
                (Stored::Done, Ok(fresh)) => return Ok(fresh),
                (Stored::Done, Err(failure)) => return Err(failure),
                // Another writer won: read what it stored.
                (Stored::Changed, _) => {}
            }
        }
        Err(RefreshFailure::Internal(anyhow::anyhow!("the credential kept changing during its refresh")))
    }

    /// The provider's new tokens, merged over `plain`.
    async fn ask_provider(&self, holder: &Holder<'_>, plain: &SecretString) -> Result<SecretString, Refusal> {
        let refresh_token = Tokens(plain).refresh_token().ok_or(Refusal::NoRefreshToken)?;
        let (client, secret) = holder.client(&self.flow).await.map_err(|e| Refusal::Transient(e.to_string()))?;
        let oauth = refresh_client(&client, secret).map_err(Refusal::Transient)?;
        let response = oauth
            .exchange_refresh_token(&RefreshToken::new(refresh_token))
            .request_async(self.flow.outbound())
            .await
            .map_err(|e| refusal_of(&e))?;
        let answer = serde_json::to_value(&response).map_err(|e| Refusal::Transient(e.to_string()))?;
        Ok(merge(plain, answer, now()))
    }

    fn local_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(name.to_owned()).or_default().clone()
    }

    fn forget_unused(&self, name: &str) {
        let mut locks = self.local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if locks.get(name).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            locks.remove(name);
        }
    }
}

fn refresh_client(client: &ResolvedClient, secret: Option<SecretString>) -> Result<RefreshClient, String> {
    let token_url = TokenUrl::new(client.endpoints.token.clone()).map_err(|_| "invalid token URL".to_owned())?;
    let oauth = oauth2::Client::new(ClientId::new(client.client_id.clone())).set_token_uri(token_url);
    Ok(match secret {
        Some(secret) => oauth.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned())),
        None => oauth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(json: Value) -> SecretString {
        SecretString::from(json.to_string())
    }

    fn opened(tokens: &SecretString) -> Value {
        serde_json::from_str(tokens.expose_secret()).unwrap()
    }

    #[test]
    fn a_token_is_due_within_the_margin_and_one_without_an_expiry_never_is() {
        let now = 1_000_000;
        let due = |json: Value| Tokens(&secret(json)).due(now);
        assert!(due(json!({"access_token": "a", "expires_at": now - 5})));
        assert!(due(json!({"access_token": "a", "expires_at": now + MARGIN_SECS})));
        assert!(!due(json!({"access_token": "a", "expires_at": now + MARGIN_SECS + 1})));
        assert!(!due(json!({"access_token": "a", "expires_in": 10})), "no recorded expiry: not expiring");
        assert!(!due(json!({"access_token": "a"})));
        let soon = secret(json!({"expires_at": now + 30}));
        assert!(Tokens(&soon).due(now) && !Tokens(&soon).expired(now), "due, not yet expired");
    }

    #[test]
    fn the_answer_goes_over_the_old_tokens_and_a_missing_refresh_token_is_kept() {
        let old = secret(json!({"access_token": "old", "refresh_token": "rt-1", "expires_in": 3600,
                                "expires_at": 10, "provider_extra": {"team": "T"}}));
        let merged = opened(&merge(
            &old,
            json!({"access_token": "new", "token_type": "bearer", "expires_in": 60,
                                               "refresh_token": null}),
            1_000,
        ));
        assert_eq!(merged["access_token"], "new");
        assert_eq!(merged["refresh_token"], "rt-1", "kept when the provider sends none");
        assert_eq!(merged["expires_at"], 1_060);
        assert_eq!(merged["provider_extra"]["team"], "T");

        let rotated = opened(&merge(&old, json!({"access_token": "new", "refresh_token": "rt-2"}), 1_000));
        assert_eq!(rotated["refresh_token"], "rt-2");
        assert_eq!(rotated.get("expires_at"), None, "no expires_in: not expiring, not the old expiry");
    }

    #[test]
    fn only_try_later_codes_and_transport_failures_are_transient() {
        let answer = |code: &str| {
            let response: BasicErrorResponse = serde_json::from_value(json!({"error": code})).unwrap();
            refusal_of(&RequestTokenError::ServerResponse(response))
        };
        assert!(matches!(answer("invalid_grant"), Refusal::Final(why) if why.starts_with("invalid_grant")));
        assert!(matches!(answer("invalid_client"), Refusal::Final(_)));
        assert!(matches!(answer("server_error"), Refusal::Transient(_)));
        assert!(matches!(answer("temporarily_unavailable"), Refusal::Transient(_)));
        let garbage = RequestTokenError::Request(OutboundError::TooLarge { limit: 1 });
        assert!(matches!(refusal_of(&garbage), Refusal::Transient(_)));
        let refused = RequestTokenError::Request(OutboundError::Invalid("bad URL".into()));
        assert!(matches!(refusal_of(&refused), Refusal::Transient(_)), "a misconfigured endpoint kills no grant");
    }
}
