//! Composio MCP servers over several auth configs: one upstream per toolkit (the toolkit's
//! table of the upstreams file), each with the user's ACTIVE connected account of that auth
//! config, behind one MCP session.
//!
//! - `initialize` goes to every upstream; their session ids are sealed together into the one
//!   `Mcp-Session-Id` the client gets ([`super::session::SessionSealer::seal_members`]), and
//!   the first toolkit's answer is the client's. Notifications and responses go to all.
//! - `tools/list` merges every upstream's tools (every page); a name two toolkits share is
//!   prefixed with the toolkit slug (`github_search`), and `allowed_tools` is applied to the
//!   merged names.
//! - `tools/call` goes to the toolkit whose (merged) tool it names, with the upstream's own
//!   name; the answer is relayed as for one upstream.
//! - Anything else goes to the first toolkit's upstream; `GET` (a server stream) is not offered
//!   (405: the streams of several upstreams are not merged), `DELETE` ends every session.
//!
//! A user with no ACTIVE account for one of the auth configs gets the not-connected error
//! naming that toolkit; one with no account for any is not a user of the server (404).

use super::composio::{Selector, ServerTarget};
use super::forward::{SESSION_HEADER, Timeouts, Trust};
use super::message::{self, Message};
use super::policy::Policy;
use super::session::Scope;
use super::{Gateway, GatewayError, Incoming, MAX_TOOL_PAGES, Route, send_error};
use poem::http::{Method, StatusCode};
use poem::{Body, Response};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// One toolkit of a fanned-out server, and how its upstream is reached.
struct Member<'a> {
    toolkit: String,
    route: Route<'a>,
}

/// A tool as the client sees it: its merged name, and the member and name it has upstream.
#[derive(Debug, Clone, PartialEq)]
struct MergedTool {
    name: String,
    member: usize,
    original: String,
    tool: Value,
}

impl Gateway {
    /// Answers one request at the URL of a Composio server with several auth configs.
    pub(super) async fn fan_out(
        &self,
        incoming: &Incoming,
        target: &ServerTarget,
        message: Option<&Message>,
    ) -> Result<Response, GatewayError> {
        if matches!(target.selector(), Selector::Account(_)) {
            return Err(GatewayError::InvalidRequest(
                "this MCP server has several auth configs: reach it by user_id (a connected_account_id names an \
                 account of only one of them)"
                    .into(),
            ));
        }
        let scope = target.scope();
        let sessions = match incoming.headers.get(SESSION_HEADER) {
            Some(token) => token
                .to_str()
                .ok()
                .and_then(|token| self.inner.sessions.open_members(&scope, token))
                .ok_or(GatewayError::SessionNotFound)?,
            None => BTreeMap::new(),
        };
        let members = self.members(target, &scope, &sessions).await?;
        match incoming.method {
            Method::DELETE => return Ok(self.end_all(&members, incoming).await),
            Method::POST => {}
            _ => {
                return Ok(Response::builder()
                    .status(StatusCode::METHOD_NOT_ALLOWED)
                    .header("allow", "POST, DELETE")
                    .finish());
            }
        }
        let message = message.ok_or_else(|| GatewayError::InvalidRequest("a POST needs a JSON-RPC message".into()))?;
        let Some(id) = message.request_id() else {
            return self.notify_all(&members, incoming).await;
        };
        match message.method() {
            Some("initialize") => self.initialize_all(&members, incoming, message, id, &scope).await,
            Some("tools/list") => {
                let tools = self.merged_tools(&members, incoming, message.meta()).await?;
                let tools: Vec<Value> = tools.into_iter().map(|t| t.tool).collect();
                Ok(json_answer(json!({"jsonrpc": "2.0", "id": id, "result": {"tools": tools}}), None))
            }
            Some("tools/call") => {
                let name = message.tool_name().unwrap_or_default();
                let tools = self.merged_tools(&members, incoming, message.meta()).await?;
                let tool =
                    tools.iter().find(|t| t.name == name).ok_or_else(|| GatewayError::HiddenTool(name.into()))?;
                let member = &members[tool.member];
                let renamed = renamed_call(incoming, message, &tool.original);
                let body = renamed.body.clone().ok().flatten();
                self.forward(&member.route, &renamed, body, Some(message)).await
            }
            Some("ping") => Ok(json_answer(json!({"jsonrpc": "2.0", "id": id, "result": {}}), None)),
            _ => {
                let first = members.first().ok_or(GatewayError::Internal)?;
                self.forward(&first.route, incoming, incoming.body.clone().ok().flatten(), Some(message)).await
            }
        }
    }

    /// Every toolkit's route, or the first reason one cannot be served.
    async fn members<'a>(
        &'a self,
        target: &ServerTarget,
        scope: &Scope,
        sessions: &BTreeMap<String, String>,
    ) -> Result<Vec<Member<'a>>, GatewayError> {
        let configs = self.inner.composio.members(target).await?;
        let (mut members, mut missing, mut unknown) = (Vec::new(), None, 0);
        for (auth_config_id, toolkit) in &configs {
            let upstream = target.upstream_of(toolkit, &self.inner.upstreams)?;
            let credential = match self.inner.composio.credential_of(target, auth_config_id, toolkit, upstream).await {
                Ok(credential) => credential,
                // No account at all for this auth config: not connected to this toolkit.
                Err(GatewayError::UserNotFound(user)) => {
                    unknown += 1;
                    let (toolkit, auth_config_id) = (toolkit.clone(), auth_config_id.clone());
                    missing.get_or_insert(GatewayError::NotConnected { user, toolkit, auth_config_id });
                    continue;
                }
                Err(e @ GatewayError::NotConnected { .. }) => {
                    missing.get_or_insert(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let route = Route {
                scope: scope.clone(),
                upstream: Cow::Borrowed(upstream),
                trust: Trust::Operator,
                timeouts: Timeouts::gateway(self.inner.timeout),
                session: sessions.get(toolkit).cloned(),
                credential,
                server_headers: Vec::new(),
                policy: Policy::allowing(target.allowed_tools(), toolkit),
            };
            members.push(Member { toolkit: toolkit.clone(), route });
        }
        if unknown == configs.len()
            && let Selector::User(user) = target.selector()
        {
            return Err(GatewayError::UserNotFound(user.clone()));
        }
        missing.map_or(Ok(members), Err)
    }

    /// `initialize` on every upstream; the first answer, with every upstream session sealed.
    async fn initialize_all(
        &self,
        members: &[Member<'_>],
        incoming: &Incoming,
        message: &Message,
        id: &Value,
        scope: &Scope,
    ) -> Result<Response, GatewayError> {
        let mut sessions = BTreeMap::new();
        let mut first = None;
        for member in members {
            let (answer, session) =
                self.exchange(&member.route, &incoming.headers, id, message.value().clone()).await?;
            if answer.get("error").is_some() {
                return Ok(json_answer(answer, None));
            }
            if let Some(session) = session {
                sessions.insert(member.toolkit.clone(), session);
            }
            first.get_or_insert(answer);
        }
        let session = (!sessions.is_empty()).then(|| self.inner.sessions.seal_members(scope, sessions));
        Ok(json_answer(first.ok_or(GatewayError::Internal)?, session))
    }

    /// A notification (or a response to a server's request) to every upstream.
    async fn notify_all(&self, members: &[Member<'_>], incoming: &Incoming) -> Result<Response, GatewayError> {
        for member in members {
            let body = incoming.body.clone().ok().flatten();
            let out = member.route.outbound(Method::POST, incoming.headers.clone(), body);
            let response = self.send(&member.route.scope, out).await.map_err(|f| send_error(&member.route, f))?;
            if !response.status().is_success() {
                return Err(GatewayError::Upstream {
                    server_name: member.route.upstream.server_name.clone(),
                    problem: format!("answered HTTP {} to a notification", response.status().as_u16()),
                });
            }
        }
        Ok(Response::builder().status(StatusCode::ACCEPTED).body(Body::empty()))
    }

    /// Ends every upstream session (best effort: a session an upstream forgot is ended).
    async fn end_all(&self, members: &[Member<'_>], incoming: &Incoming) -> Response {
        for member in members.iter().filter(|m| m.route.session.is_some()) {
            let out = member.route.outbound(Method::DELETE, incoming.headers.clone(), None);
            if let Err(e) = self.send(&member.route.scope, out).await {
                tracing::info!(toolkit = %member.toolkit, failure = ?e, "an upstream session did not end");
            }
        }
        Response::builder().status(StatusCode::OK).body(Body::empty())
    }

    /// Every upstream's tools (every page), merged and filtered by `allowed_tools`.
    async fn merged_tools(
        &self,
        members: &[Member<'_>],
        incoming: &Incoming,
        meta: Option<&Value>,
    ) -> Result<Vec<MergedTool>, GatewayError> {
        let mut lists = Vec::new();
        for member in members {
            lists.push((member.toolkit.clone(), self.all_tools(&member.route, incoming, meta).await?));
        }
        let merged = merge(&lists);
        Ok(merged.into_iter().filter(|t| members[t.member].route.policy.allows_name(&t.name)).collect())
    }

    /// The `Tool` objects of one upstream, every page.
    /// The client's `_meta` goes along (2026-07-28 requires it of every request).
    async fn all_tools(
        &self,
        route: &Route<'_>,
        incoming: &Incoming,
        meta: Option<&Value>,
    ) -> Result<Vec<Value>, GatewayError> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for page in 0..MAX_TOOL_PAGES {
            let id = format!("provisioner-gateway-fanout-{page}");
            let mut params = cursor.as_ref().map_or_else(|| json!({}), |c| json!({ "cursor": c }));
            if let Some(meta) = meta {
                params["_meta"] = meta.clone();
            }
            let request = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params});
            let answer = self.ask(route, &incoming.headers, &id, request).await?;
            tools.extend(answer.pointer("/result/tools").and_then(Value::as_array).cloned().unwrap_or_default());
            cursor = answer.pointer("/result/nextCursor").and_then(Value::as_str).map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        Ok(tools)
    }
}

/// The tools of every toolkit as one list: a name more than one toolkit has is prefixed with
/// the toolkit's slug (`github_search`), the others keep theirs.
fn merge(lists: &[(String, Vec<Value>)]) -> Vec<MergedTool> {
    let name_of = |tool: &Value| tool.get("name").and_then(Value::as_str).map(str::to_owned);
    let mut holders: HashMap<String, usize> = HashMap::new();
    for (_, tools) in lists {
        let mut names: Vec<String> = tools.iter().filter_map(name_of).collect();
        names.sort();
        names.dedup();
        for name in names {
            *holders.entry(name).or_default() += 1;
        }
    }
    let mut merged = Vec::new();
    for (member, (toolkit, tools)) in lists.iter().enumerate() {
        for tool in tools {
            let Some(original) = name_of(tool) else { continue };
            let name = if holders[&original] > 1 { format!("{toolkit}_{original}") } else { original.clone() };
            let mut tool = tool.clone();
            tool["name"] = Value::String(name.clone());
            merged.push(MergedTool { name, member, original, tool });
        }
    }
    merged
}

fn json_answer(message: Value, session: Option<String>) -> Response {
    let mut answer = Response::builder().status(StatusCode::OK).content_type("application/json");
    if let Some(session) = session {
        answer = answer.header(SESSION_HEADER, session);
    }
    answer.body(Body::from_string(message.to_string()))
}

/// The request as its toolkit's upstream gets it: the tool under its own name, in the body
/// and in `Mcp-Name` (2026-07-28 upstreams refuse a header that disagrees with the body).
fn renamed_call(incoming: &Incoming, message: &Message, original: &str) -> Incoming {
    let mut headers = incoming.headers.clone();
    if headers.contains_key(message::NAME_HEADER)
        && let Ok(name) = poem::http::HeaderValue::from_str(&message::encode_header_value(original))
    {
        headers.insert(message::NAME_HEADER, name);
    }
    Incoming {
        method: incoming.method.clone(),
        address: incoming.address.clone(),
        headers,
        body: Ok(Some(message.calling(original))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_routed_call_names_the_upstreams_tool_in_the_body_and_in_mcp_name() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slack_search","arguments":{}}}"#;
        let message = Message::parse(body).unwrap();
        let mut headers = poem::http::HeaderMap::new();
        headers.insert(message::NAME_HEADER, "slack_search".parse().unwrap());
        let incoming = Incoming {
            method: Method::POST,
            address: super::super::Address::Instance(None),
            headers,
            body: Ok(Some(bytes::Bytes::from_static(body))),
        };
        let renamed = renamed_call(&incoming, &message, "search");
        assert_eq!(renamed.headers[message::NAME_HEADER], "search");
        let sent: Value = serde_json::from_slice(&renamed.body.unwrap().unwrap()).unwrap();
        assert_eq!(sent["params"]["name"], "search");
        let without = Incoming { headers: poem::http::HeaderMap::new(), ..incoming };
        assert!(!renamed_call(&without, &message, "search").headers.contains_key(message::NAME_HEADER));
    }

    #[test]
    fn a_name_two_toolkits_share_is_prefixed_and_the_others_keep_theirs() {
        let lists = vec![
            ("github".to_owned(), vec![json!({"name": "search", "x": 1}), json!({"name": "create_issue"})]),
            ("slack".to_owned(), vec![json!({"name": "search", "x": 2}), json!({"name": "post"})]),
        ];
        let merged = merge(&lists);
        let names: Vec<(&str, usize, &str)> =
            merged.iter().map(|t| (t.name.as_str(), t.member, t.original.as_str())).collect();
        assert_eq!(
            names,
            [
                ("github_search", 0, "search"),
                ("create_issue", 0, "create_issue"),
                ("slack_search", 1, "search"),
                ("post", 1, "post")
            ]
        );
        assert_eq!(
            merged[2].tool,
            json!({"name": "slack_search", "x": 2}),
            "the tool object is renamed, the rest kept"
        );
    }
}
