//! Composio MCP URLs: `{PUBLIC_URL}/v3/mcp/{server_id}?user_id=…` or
//! `?connected_account_id=…` (the singular selector `generate` hands out), also at
//! `…/{server_id}/mcp`.
//!
//! Who may connect: every request carries a live API key of the server's project in
//! `x-api-key` (or `x-user-api-key`), as Composio requires of MCP traffic
//! (`require_mcp_api_key`, the default for new projects). A server of another project, an
//! unknown or deleted one, a user without any account for the server's auth config, or an
//! account of another auth config is not there (404). The plural selectors `user_ids` /
//! `connected_account_ids` holding one id mean the same as the singular ones.
//!
//! The credential: the user's most recent ACTIVE connected account for the server's auth
//! config (or the one `connected_account_id` names), opened from its events right before the
//! request is forwarded; none ACTIVE is an error telling the user to connect one.

use super::credential::{self, AccountToken};
use super::error::GatewayError;
use super::policy::Policy;
use super::session::Scope;
use super::upstreams::{Upstream, Upstreams};
use crate::catalog::Catalog;
use crate::connected_account::{AccountError, AccountFilter, AccountRecord, ConnectedAccounts};
use crate::error::AppError;
use crate::oauth::{RefreshFailure, TokenRefresher};
use crate::project::{Caller, Projects};
use crate::rate_limit::RateLimits;
use crate::server::{ServerRecord, Servers};
use domain::connected_account::ConnectedAccountError;
use domain::server::ServerError;
use events::ServerId;
use poem::http::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;

/// The headers a Composio key comes in.
const KEY_HEADERS: [&str; 2] = ["x-api-key", "x-user-api-key"];
/// The accounts of one user for one auth config read to find an ACTIVE one, at most.
const MAX_CANDIDATES: i64 = 100;

/// What the gateway reads to serve Composio URLs.
#[derive(Clone)]
pub struct ComposioTargets {
    projects: Projects,
    servers: Servers,
    accounts: ConnectedAccounts,
    refresher: TokenRefresher,
    /// The key's rate, counted once per request (not by the checks of an open stream).
    rate_limits: RateLimits,
}

/// Whose account a Composio URL uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    User(String),
    Account(String),
}

impl Selector {
    /// The one selector of a URL's query: `user_id` or `connected_account_id`, or the plural
    /// names (`user_ids`, `connected_account_ids`, as the Composio SDKs' `generate` emits them)
    /// holding one id. Composio's own transport refuses the plural (composio #3496); here it
    /// means the same as the singular.
    pub fn of_query(query: Option<&str>) -> Result<Self, GatewayError> {
        let mut user = None;
        let mut account = None;
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let slot = match name.as_ref() {
                "user_id" | "user_ids" => &mut user,
                "connected_account_id" | "connected_account_ids" => &mut account,
                _ => continue,
            };
            if value.contains(',') || slot.is_some() {
                return Err(GatewayError::InvalidRequest(format!(
                    "`{name}` names one id per URL: each user or connected account has a URL of its own"
                )));
            }
            *slot = Some(value.into_owned());
        }
        match (user, account) {
            (Some(user), None) if !user.is_empty() => Ok(Self::User(user)),
            (None, Some(account)) if !account.is_empty() => Ok(Self::Account(account)),
            (Some(_), Some(_)) => {
                Err(GatewayError::InvalidRequest("give user_id or connected_account_id, not both".into()))
            }
            _ => {
                Err(GatewayError::InvalidRequest("user_id or connected_account_id query parameter is required".into()))
            }
        }
    }

    fn scope_key(&self) -> String {
        match self {
            Self::User(user) => format!("user_id={user}"),
            Self::Account(account) => format!("connected_account_id={account}"),
        }
    }
}

/// A Composio URL whose key, server and selector checked out.
pub struct ServerTarget {
    caller: Caller,
    pub server: ServerRecord,
    selector: Selector,
}

impl ServerTarget {
    pub fn scope(&self) -> Scope {
        Scope::Composio { server: ServerId::from_uuid(self.server.server_id), selector: self.selector.scope_key() }
    }

    /// Whether the server's auth configs fan out to one upstream each (see [`super::fanout`]).
    pub fn fans_out(&self) -> bool {
        self.server.auth_config_ids.len() > 1
    }

    /// The server's `allowed_tools`.
    pub fn allowed_tools(&self) -> &[String] {
        &self.server.allowed_tools
    }

    /// Whose accounts the URL selects.
    pub fn selector(&self) -> &Selector {
        &self.selector
    }

    /// The server's one auth config and toolkit; none, or one beside other toolkits, is not
    /// served (several fan out instead).
    fn auth_config(&self) -> Result<(&str, &str), GatewayError> {
        match (self.server.auth_config_ids.as_slice(), self.server.toolkits.as_slice()) {
            ([auth_config_id], [toolkit]) => Ok((auth_config_id, toolkit)),
            (configs, toolkits) => Err(GatewayError::MultiToolkit {
                server_name: self.server.name.clone(),
                auth_configs: configs.len(),
                toolkits: toolkits.len(),
            }),
        }
    }

    /// The upstream bound to the server's toolkit, and the server's tool policy.
    pub fn upstream<'u>(&self, upstreams: &'u Upstreams) -> Result<(&'u Upstream, Policy), GatewayError> {
        let (_, toolkit) = self.auth_config()?;
        Ok((self.upstream_of(toolkit, upstreams)?, Policy::allowing(&self.server.allowed_tools, toolkit)))
    }

    /// The upstream bound to one toolkit of the server.
    pub fn upstream_of<'u>(&self, toolkit: &str, upstreams: &'u Upstreams) -> Result<&'u Upstream, GatewayError> {
        let upstream = Catalog::get().find(toolkit).and_then(|entry| upstreams.for_slug(&entry.slug));
        upstream
            .ok_or_else(|| GatewayError::Unbound { server_name: self.server.name.clone(), binding: toolkit.to_owned() })
    }
}

impl ComposioTargets {
    pub fn new(
        projects: Projects,
        servers: Servers,
        accounts: ConnectedAccounts,
        refresher: TokenRefresher,
        rate_limits: RateLimits,
    ) -> Self {
        Self { projects, servers, accounts, refresher, rate_limits }
    }

    /// Counts one request of the target's key against its rate.
    pub fn admit(&self, target: &ServerTarget) -> Result<(), GatewayError> {
        self.rate_limits.check_key(&target.caller).map_err(GatewayError::RateLimited)
    }

    /// The server a URL names, for the project of the request's key.
    pub async fn target(
        &self,
        server_id: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<ServerTarget, GatewayError> {
        let caller = self.caller(headers).await?;
        let server_id: ServerId = server_id.parse().map_err(|_| GatewayError::ServerNotFound)?;
        let server = match self.servers.get(&caller, server_id).await {
            Ok(server) => server,
            Err(AppError::Rejected(ServerError::NotFound)) => return Err(GatewayError::ServerNotFound),
            Err(e) => return Err(internal("cannot read an MCP server for the gateway", &e)),
        };
        Ok(ServerTarget { caller, server, selector: Selector::of_query(query)? })
    }

    async fn caller(&self, headers: &HeaderMap) -> Result<Caller, GatewayError> {
        let presented = KEY_HEADERS.iter().find_map(|name| headers.get(*name)?.to_str().ok().map(str::trim));
        let Some(presented) = presented.filter(|key| !key.is_empty()) else {
            return Err(GatewayError::ApiKeyRequired);
        };
        match self.projects.resolve_key(presented).await {
            Ok(Some(caller)) => Ok(caller),
            Ok(None) => Err(GatewayError::ApiKeyRequired),
            Err(e) => Err(internal("cannot resolve an API key for the gateway", &e)),
        }
    }

    /// Each auth config of a fanned-out server with its toolkit, in the server's order.
    pub async fn members(&self, target: &ServerTarget) -> Result<Vec<(String, String)>, GatewayError> {
        let mut members = Vec::new();
        for id in &target.server.auth_config_ids {
            let config = self
                .accounts
                .auth_configs()
                .get(&target.caller, id)
                .await
                .map_err(|e| internal("cannot read an auth config for the gateway", &e))?;
            members.push((id.clone(), config.toolkit.to_lowercase()));
        }
        Ok(members)
    }

    /// The credential header of the selected ACTIVE account; none for a no-auth account.
    pub async fn credential(
        &self,
        target: &ServerTarget,
        upstream: &Upstream,
    ) -> Result<Option<(HeaderName, HeaderValue)>, GatewayError> {
        let (auth_config_id, toolkit) = target.auth_config()?;
        self.credential_of(target, auth_config_id, toolkit, upstream).await
    }

    /// The credential header of the selected ACTIVE account of one auth config (of `toolkit`).
    pub async fn credential_of(
        &self,
        target: &ServerTarget,
        auth_config_id: &str,
        toolkit: &str,
        upstream: &Upstream,
    ) -> Result<Option<(HeaderName, HeaderValue)>, GatewayError> {
        let candidates = self.candidates(target, auth_config_id).await?;
        for candidate in &candidates {
            let opened = self
                .accounts
                .open_active_credential(target.caller.project_id, &candidate.connected_account_id)
                .await
                .map_err(|e| internal("cannot open a connected account's credential for the gateway", &e))?;
            let Some((account, plain)) = opened else { continue };
            let plain = if crate::connected_account::is_oauth(&account.auth_scheme) {
                match self.fresh_tokens(target, &account, plain).await? {
                    Some(plain) => plain,
                    None => continue,
                }
            } else {
                plain
            };
            return match credential::account_token(&account.auth_scheme, &plain) {
                AccountToken::Nothing => Ok(None),
                AccountToken::Unusable => Err(GatewayError::CredentialUnusable),
                AccountToken::Token(token) => {
                    let value = HeaderValue::from_str(&upstream.credential_value(token.expose_secret()))
                        .map_err(|_| GatewayError::CredentialUnusable)?;
                    Ok(Some((upstream.credential_header.clone(), value)))
                }
            };
        }
        let user = match &target.selector {
            Selector::User(user) => user.clone(),
            Selector::Account(_) => candidates.first().map(|c| c.user_id.clone()).unwrap_or_default(),
        };
        Err(GatewayError::NotConnected { user, toolkit: toolkit.to_owned(), auth_config_id: auth_config_id.to_owned() })
    }

    /// An OAuth account's tokens, refreshed if due; none when the account stopped being
    /// ACTIVE meanwhile. A refresh that failed for good leaves it EXPIRED, and the call is told
    /// to re-authenticate.
    async fn fresh_tokens(
        &self,
        target: &ServerTarget,
        account: &events::connected_account::AccountRef,
        plain: secrecy::SecretString,
    ) -> Result<Option<secrecy::SecretString>, GatewayError> {
        let project_id = target.caller.project_id;
        let id = &account.connected_account_id;
        match self.refresher.fresh_account_tokens(project_id, id, &account.auth_config_id, plain).await {
            Ok(plain) => Ok(Some(plain)),
            Err(RefreshFailure::Gone) => Ok(None),
            Err(RefreshFailure::Expired(reason)) => Err(GatewayError::AccountExpired {
                account_id: id.clone(),
                toolkit: account.toolkit.clone(),
                auth_config_id: account.auth_config_id.clone(),
                reason,
            }),
            Err(other) => Err(credential::refresh_error(other)),
        }
    }

    /// The accounts that may serve the request, most recent first: the user's ACTIVE ones
    /// (as the view has them; each is checked on its events when opened), or the one named.
    async fn candidates(
        &self,
        target: &ServerTarget,
        auth_config_id: &str,
    ) -> Result<Vec<AccountRecord>, GatewayError> {
        match &target.selector {
            Selector::User(user) => {
                let filter = AccountFilter {
                    user_ids: vec![user.clone()],
                    auth_config_ids: vec![auth_config_id.to_owned()],
                    limit: MAX_CANDIDATES,
                    ..AccountFilter::default()
                };
                let (accounts, _) = self
                    .accounts
                    .list(&target.caller, &filter)
                    .await
                    .map_err(|e| internal("cannot list connected accounts for the gateway", &e))?;
                if accounts.is_empty() {
                    return Err(GatewayError::UserNotFound(user.clone()));
                }
                Ok(accounts.into_iter().filter(|a| a.status == "ACTIVE").collect())
            }
            Selector::Account(id) => match self.accounts.get(&target.caller, id).await {
                Ok(account) if account.auth_config_id == auth_config_id => Ok(vec![account]),
                Ok(_) | Err(AppError::Rejected(AccountError::Account(ConnectedAccountError::NotFound))) => {
                    Err(GatewayError::AccountNotFound(id.clone()))
                }
                Err(e) => Err(internal("cannot read a connected account for the gateway", &e)),
            },
        }
    }
}

fn internal(what: &str, error: &dyn std::fmt::Display) -> GatewayError {
    tracing::error!(error = %error, "{what}");
    GatewayError::Internal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_selector_is_read_singular_or_plural_with_one_id() {
        assert_eq!(Selector::of_query(Some("user_id=a+b")), Ok(Selector::User("a b".into())));
        assert_eq!(
            Selector::of_query(Some("include_composio_helper_actions=true&connected_account_id=ca_1")),
            Ok(Selector::Account("ca_1".into()))
        );
        assert_eq!(Selector::of_query(Some("connected_account_ids=ca_1")), Ok(Selector::Account("ca_1".into())));
        assert_eq!(Selector::of_query(Some("user_ids=a")), Selector::of_query(Some("user_id=a")));
        let refused = [
            None,
            Some(""),
            Some("user_id="),
            Some("user_id=a&connected_account_id=b"),
            Some("user_ids=a,b"),
            Some("user_id=a&user_ids=a"),
        ];
        for query in refused {
            assert!(matches!(Selector::of_query(query), Err(GatewayError::InvalidRequest(_))), "{query:?}");
        }
    }
}
