//! Issue 14, item 8: the tenancy matrix (DESIGN invariant 7). Project A makes one of
//! everything; then project B's key walks every operation of the real binary's
//! `/openapi.json` (so a new route is walked as soon as it exists), with A's ids in the path
//! and query parameters and in the bodies, lists, filters and searches included. Nothing of A
//! may come back (no id, name, user id, client id or secret of A that B did not send itself),
//! an operation on one of A's resources answers 404 (never 403), and nothing of A changes: A's
//! own reads answer the same before and after, and A's event streams gain no event.
//!
//! What would make it fail: any query of a view or a lookup in the store that forgets the
//! caller's project (checked by dropping `a.project_id = $1` from the auth configs' list: the
//! list answers A's `client_id` to B), a derived aggregate id without the project in it (B's
//! create would answer A's instance), an upsert keyed by something global (B's white-label app
//! would overwrite A's), or a 403 where the resource is A's.

use crate::support::{ServeProcess, TestDatabase, run_cli};
use reqwest::Method;
use serde_json::{Value, json};
use services::secrets::MasterKey;
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet};

/// Operations the walk leaves out, and why. Each must still be in the spec.
const EXCLUDED: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/oauth/{provider}/authorize",
        "takes no API key: the instance id is the capability (Klavis's oauthUrl), so its redirect to \
         the provider, with the project's client_id, is for whoever holds it",
    ),
    (
        "GET",
        "/oauth/{provider}/callback",
        "takes no API key: its only input is a state the service minted for one flow",
    ),
    ("GET", "/api/v3/connected_accounts/link/{token}", "takes no API key: the link token is the end user's capability"),
    (
        "GET",
        "/api/v3.1/connected_accounts/link/{token}",
        "takes no API key: the link token is the end user's capability",
    ),
];

/// Path parameters that name one of A's resources: the answer must be 404.
const RESOURCE_PARAMS: &[&str] = &["instanceId", "id", "nanoid", "serverId", "client_id"];

/// What B's write of a body naming A's things must answer.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// 404: the body names a resource of A.
    NotFound,
    /// Some 4xx other than 401, 403 and 429: the body names A's resources where a list of
    /// them is validated (400 or 404 depending on the surface).
    Refused,
    /// 2xx: a write of B's own (a create with the same user id, client id or host A uses).
    Own,
}

/// Everything A made, as the strings B must never be shown.
struct ProjectA {
    key: String,
    /// In every name, user id, client id, secret and host of A.
    tag: String,
    /// A's ids (with no tag in them).
    ids: Vec<String>,
    /// Values by placeholder, for paths, queries and bodies.
    values: BTreeMap<&'static str, String>,
}

impl ProjectA {
    fn value(&self, name: &str) -> &str {
        self.values.get(name).unwrap_or_else(|| panic!("no value {name}"))
    }

    /// `template` with every `{name}` replaced by A's value.
    fn fill(&self, template: &str) -> String {
        let mut out = template.to_owned();
        for (name, value) in &self.values {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    }

    fn fill_json(&self, template: &Value) -> Value {
        serde_json::from_str(&self.fill(&template.to_string())).unwrap()
    }
}

struct Service {
    http: reqwest::Client,
    base: String,
}

/// One request of the walk and its answer.
struct Exchange {
    method: Method,
    url: String,
    body: Option<Value>,
    status: u16,
    text: String,
}

impl Service {
    /// Composio's routes take the key in `x-api-key`, the others as a bearer token.
    async fn send(
        &self,
        key: &str,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<Value>,
    ) -> Exchange {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url).query(query);
        request = if path.starts_with("/api/v3") || path.starts_with("/v3/") {
            request.header("x-api-key", key)
        } else {
            request.bearer_auth(key)
        };
        if let Some(body) = &body {
            request = request.json(body);
        }
        let request = request.build().unwrap();
        let url = request.url().to_string();
        let response = self.http.execute(request).await.expect("answered");
        let status = response.status().as_u16();
        Exchange { method, url, body, status, text: response.text().await.unwrap() }
    }

    async fn ok(&self, key: &str, method: Method, path: &str, body: Value) -> Value {
        let exchange = self.send(key, method.clone(), path, &[], Some(body)).await;
        assert!((200..300).contains(&exchange.status), "{method} {path}: {} {}", exchange.status, exchange.text);
        serde_json::from_str(&exchange.text).unwrap()
    }
}

fn text_of(value: &Value, field: &str) -> String {
    value.pointer(field).and_then(Value::as_str).unwrap_or_else(|| panic!("no {field} in {value}")).to_owned()
}

/// A makes one of everything, through its own key.
async fn project_a(service: &Service, db: &TestDatabase) -> ProjectA {
    let env = [("DATABASE_URL", db.url.as_str())];
    let project = run_cli(&["project", "create", "Tenant A"], &env).await.stdout.trim().to_owned();
    let issued = run_cli(&["key", "create", "--project", &project], &env).await;
    let key = issued.stdout.trim().to_owned();
    let key_id = issued.stderr.split_whitespace().nth(2).unwrap().to_owned();
    let limited =
        run_cli(&["project", "rate-limit", &project, "--per-second", "10000", "--burst", "10000"], &env).await;
    assert!(limited.success, "{limited:?}");
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let user = format!("a-user-{tag}");
    let s = service;

    let gaia = s
        .ok(
            &key,
            Method::POST,
            "/api/mcp/servers",
            json!({
                "projectId": project, "name": format!("A gaia {tag}"), "transportType": "http",
                "url": format!("https://a-{tag}.example.com/mcp"), "description": format!("A's own {tag}"),
                "oauthClientId": format!("a-gaia-client-{tag}"), "oauthClientSecret": format!("a-gaia-secret-{tag}"),
            }),
        )
        .await;
    let instance =
        s.ok(&key, Method::POST, "/mcp-server/instance/create", json!({"serverName": "GitHub", "userId": user})).await;
    let instance_id = text_of(&instance, "/instanceId");
    let auth = json!({"instanceId": instance_id, "authData": {"token": format!("a-token-{tag}")}});
    s.ok(&key, Method::POST, "/mcp-server/instance/set-auth", auth).await;
    let user_auth =
        json!({"userId": user, "serverName": "Slack", "authData": {"token": format!("a-slack-token-{tag}")}});
    s.ok(&key, Method::POST, "/user/set-auth", user_auth).await;
    let app = json!({
        "client_id": format!("a-client-{tag}"), "client_secret": format!("a-client-secret-{tag}"), "server_name": "GitHub",
    });
    s.ok(&key, Method::POST, "/white-labeling/create", app).await;
    let api_key_config = json!({
        "toolkit": {"slug": "github"},
        "auth_config": {"type": "use_custom_auth", "authScheme": "API_KEY", "name": format!("A keys {tag}")},
    });
    let api_key_config = s.ok(&key, Method::POST, "/api/v3/auth_configs", api_key_config).await;
    let oauth_config = json!({
        "toolkit": {"slug": "gmail"},
        "auth_config": {"type": "use_custom_auth", "authScheme": "OAUTH2", "name": format!("A oauth {tag}"), "credentials": {
            "client_id": format!("a-oauth-client-{tag}"), "client_secret": format!("a-oauth-secret-{tag}"),
        }},
    });
    let oauth_config = s.ok(&key, Method::POST, "/api/v3/auth_configs", oauth_config).await;
    let (ac_key, ac_oauth) = (text_of(&api_key_config, "/auth_config/id"), text_of(&oauth_config, "/auth_config/id"));
    let account = json!({
        "auth_config": {"id": ac_key},
        "connection": {"user_id": user, "alias": format!("a-alias-{tag}"),
            "state": {"authScheme": "API_KEY", "val": {"status": "ACTIVE", "api_key": format!("a-api-key-{tag}")}}},
    });
    let account = s.ok(&key, Method::POST, "/api/v3/connected_accounts", account).await;
    let link = s
        .ok(&key, Method::POST, "/api/v3/connected_accounts/link", json!({"auth_config_id": ac_oauth, "user_id": user}))
        .await;
    let server = json!({"name": format!("A tools {tag}"), "auth_config_ids": [ac_key]});
    let server = s.ok(&key, Method::POST, "/api/v3/mcp/servers", server).await;
    let server_id = text_of(&server, "/id");
    let composio_instance =
        s.ok(&key, Method::POST, &format!("/api/v3/mcp/servers/{server_id}/instances"), json!({"user_id": user})).await;
    s.ok(&key, Method::PUT, "/api/v1/project/redirect-hosts", json!({"hosts": [format!("a-{tag}.example.com")]})).await;
    // A gateway call, refused (no upstream is bound), goes on A's record.
    let call =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}});
    let called = s
        .http
        .post(text_of(&instance, "/serverUrl"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "whoami")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(called.status(), 200);

    let mut values = BTreeMap::new();
    for (name, value) in [
        ("project", project),
        ("key_id", key_id),
        ("user", user),
        ("gaia", text_of(&gaia, "/serverId")),
        ("instance", instance_id),
        ("server_url", text_of(&instance, "/serverUrl")),
        ("client", format!("a-client-{tag}")),
        ("ac_key", ac_key),
        ("ac_oauth", ac_oauth),
        ("ca_active", text_of(&account, "/id")),
        ("ca_pending", text_of(&link, "/connected_account_id")),
        ("link_token", text_of(&link, "/link_token")),
        ("mcp_server", server_id),
        ("mcp_server_name", format!("A tools {tag}")),
        ("gaia_name", format!("A gaia {tag}")),
        ("ac_key_name", format!("A keys {tag}")),
        ("host", format!("a-{tag}.example.com")),
    ] {
        values.insert(name, value);
    }
    if let Some(id) = composio_instance.get("id").and_then(Value::as_str) {
        values.insert("composio_instance", id.to_owned());
    }
    let ids = [
        "project",
        "key_id",
        "gaia",
        "instance",
        "ac_key",
        "ac_oauth",
        "ca_active",
        "ca_pending",
        "link_token",
        "mcp_server",
    ]
    .iter()
    .chain(values.contains_key("composio_instance").then_some(&"composio_instance"))
    .map(|name| values[name].clone())
    .collect();
    ProjectA { key, tag, ids, values }
}

/// An operation of the spec.
#[derive(Clone)]
struct Operation {
    method: Method,
    path: String,
    path_params: Vec<String>,
    query_params: Vec<String>,
    has_body: bool,
}

fn operations(spec: &Value) -> Vec<Operation> {
    let mut found = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else { continue };
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let named = |place: &str| -> Vec<String> {
                params.iter().filter(|p| p["in"] == place).map(|p| p["name"].as_str().unwrap().to_owned()).collect()
            };
            found.push(Operation {
                method,
                path: path.clone(),
                path_params: named("path"),
                query_params: named("query"),
                has_body: op.get("requestBody").is_some(),
            });
        }
    }
    found
}

/// A's values for a path parameter. A parameter not listed stops the test: a new route's
/// parameter must be given A's values here.
fn path_values(a: &ProjectA, param: &str, aggregate_types: &[String]) -> Vec<String> {
    let of = |names: &[&str]| names.iter().filter_map(|n| a.values.get(n).cloned()).collect();
    match param {
        "instanceId" => of(&["instance", "user", "composio_instance"]),
        "id" => of(&["gaia", "mcp_server", "instance", "ac_key", "ca_active", "project"]),
        "nanoid" => of(&["ac_key", "ac_oauth", "ca_active", "ca_pending"]),
        "serverId" => of(&["mcp_server"]),
        "userId" => of(&["user"]),
        "serverName" => vec!["GitHub".into(), "Slack".into()],
        "client_id" => of(&["client"]),
        "aggregateType" => aggregate_types.to_vec(),
        "status" => vec!["ENABLED".into(), "DISABLED".into()],
        // Toolkits are the catalog, the same for every project.
        "slug" => vec!["github".into(), "googlecalendar".into()],
        other => panic!("the tenancy matrix has no values for the path parameter `{other}`: add A's values for it"),
    }
}

/// A's values (and broadening values) for a query parameter; as for paths, an unknown one stops the test.
fn query_values(a: &ProjectA, param: &str) -> Vec<String> {
    let of = |names: &[&str]| names.iter().filter_map(|n| a.values.get(n).cloned()).collect::<Vec<_>>();
    let fixed = |values: &[&str]| values.iter().map(|v| v.to_string()).collect::<Vec<_>>();
    match param {
        "projectId" => of(&["project"]),
        "instance_id" => of(&["instance"]),
        "server_id" => of(&["mcp_server", "gaia"]),
        "user_id" | "user_ids" => of(&["user"]),
        "since" => fixed(&["2000-01-01T00:00:00Z"]),
        "until" | "as_of" => fixed(&["2999-01-01T00:00:00Z"]),
        "limit" => fixed(&["1000", "10000"]),
        "page_size" => fixed(&["100"]),
        "page_no" | "page_number" | "cursor" => fixed(&["1"]),
        "type" => fixed(&["instance.created"]),
        "toolkit_slug" | "toolkit_slugs" | "toolkits" => fixed(&["github", "gmail"]),
        "show_disabled" => fixed(&["true"]),
        "is_composio_managed" => fixed(&["false", "true"]),
        "search" => {
            let mut values = fixed(&["github", "A"]);
            values.extend(of(&["ac_key_name", "ac_key", "user", "instance", "mcp_server_name"]));
            values
        }
        "auth_config_ids" => {
            let mut values = of(&["ac_key", "ac_oauth"]);
            values.push(format!("{},{}", a.value("ac_key"), a.value("ac_oauth")));
            values
        }
        "connected_account_ids" => of(&["ca_active", "ca_pending"]),
        "statuses" => fixed(&["ACTIVE", "INITIATED", "ACTIVE,INITIATED"]),
        "order_by" => fixed(&["created_at", "updated_at"]),
        "order_direction" => fixed(&["asc", "desc"]),
        "name" => of(&["mcp_server_name", "gaia_name"]),
        "category" => fixed(&["developer-tools", "Productivity"]),
        "managed_by" => fixed(&["all", "project"]),
        "sort_by" => fixed(&["alphabetically"]),
        "include_deprecated" => fixed(&["true"]),
        "version" => fixed(&["latest"]),
        other => panic!("the tenancy matrix has no values for the query parameter `{other}`: add A's values for it"),
    }
}

/// Every query to send: none, each parameter alone with each value, every pair of parameters
/// (first values; for routes without path parameters, the lists), and all of them at once.
fn query_variants(a: &ProjectA, op: &Operation) -> Vec<Vec<(String, String)>> {
    let values: Vec<(String, Vec<String>)> = op.query_params.iter().map(|p| (p.clone(), query_values(a, p))).collect();
    let mut variants = vec![vec![]];
    for (name, candidates) in &values {
        variants.extend(candidates.iter().map(|v| vec![(name.clone(), v.clone())]));
    }
    if op.path_params.is_empty() {
        for (i, (first, first_values)) in values.iter().enumerate() {
            for (second, second_values) in &values[i + 1..] {
                variants
                    .push(vec![(first.clone(), first_values[0].clone()), (second.clone(), second_values[0].clone())]);
            }
        }
    }
    if values.len() > 1 {
        variants.push(values.iter().map(|(name, v)| (name.clone(), v[0].clone())).collect());
    }
    variants
}

/// B's bodies for each write, naming A's things; a write not listed stops the test.
fn bodies(op: &Operation) -> Vec<(Value, Expect)> {
    use Expect::*;
    let path = op.path.replacen("/api/v3.1/", "/api/v3/", 1);
    let b = |body: Value, expect: Expect| (body, expect);
    match (op.method.as_str(), path.as_str()) {
        ("POST", "/api/mcp/servers") => vec![b(
            json!({"projectId": "{project}", "name": "B server", "transportType": "http", "url": "https://b.example.com/mcp"}),
            NotFound,
        )],
        ("PATCH", "/api/mcp/servers/{id}") => {
            vec![b(json!({"name": "taken over", "oauthClientSecret": "b"}), NotFound)]
        }
        ("PUT", "/api/v1/project/redirect-hosts") => vec![b(json!({"hosts": ["b-host.example.com"]}), Own)],
        ("PATCH", "/api/v1/project/redirect-hosts") => {
            vec![b(json!({"add": ["b-other.example.com"], "remove": ["{host}"]}), Own)]
        }
        ("POST", "/api/v3/auth_configs") => vec![b(
            json!({"toolkit": {"slug": "github"}, "auth_config": {"type": "use_custom_auth", "authScheme": "API_KEY", "name": "B keys"}}),
            Own,
        )],
        ("PATCH", "/api/v3/auth_configs/{nanoid}") => {
            vec![b(json!({"type": "custom", "name": "taken over"}), NotFound)]
        }
        ("POST", "/api/v3/connected_accounts") => ["{ac_key}", "{ac_oauth}"]
            .iter()
            .map(|config| {
                b(
                    json!({"auth_config": {"id": config}, "connection": {"user_id": "b-user",
                        "state": {"authScheme": "API_KEY", "val": {"status": "ACTIVE", "api_key": "b-key"}}}}),
                    NotFound,
                )
            })
            .collect(),
        ("POST", "/api/v3/connected_accounts/link") => ["{ac_key}", "{ac_oauth}"]
            .iter()
            .map(|config| b(json!({"auth_config_id": config, "user_id": "b-user"}), NotFound))
            .collect(),
        ("PATCH", "/api/v3/connected_accounts/{nanoid}/status") => vec![b(json!({"enabled": false}), NotFound)],
        ("PATCH", "/api/v3/connected_accounts/{nanoid}") => vec![
            b(json!({"alias": "taken over"}), NotFound),
            b(json!({"connection": {"state": {"authScheme": "API_KEY", "val": {"api_key": "b-key"}}}}), NotFound),
        ],
        ("POST", "/api/v3/mcp/servers") => {
            vec![b(json!({"name": "B takeover", "auth_config_ids": ["{ac_key}"]}), Refused)]
        }
        ("POST", "/api/v3/mcp/servers/custom") => {
            vec![b(json!({"name": "B custom", "toolkits": ["github"], "auth_config_ids": ["{ac_key}"]}), Refused)]
        }
        ("POST", "/api/v3/mcp/servers/generate") => vec![
            b(json!({"mcp_server_id": "{mcp_server}", "user_ids": ["b-user"]}), NotFound),
            b(json!({"mcp_server_id": "{mcp_server}", "connected_account_ids": ["{ca_active}"]}), NotFound),
        ],
        ("POST", "/api/v3/mcp/servers/{serverId}/instances") => vec![b(json!({"user_id": "{user}"}), NotFound)],
        ("PATCH", "/api/v3/mcp/{id}") => vec![b(json!({"name": "taken over", "allowed_tools": ["x"]}), NotFound)],
        ("POST", "/mcp-server/call-tool") => {
            vec![b(json!({"serverUrl": "{server_url}", "toolName": "whoami"}), NotFound)]
        }
        ("POST", "/mcp-server/list-tools") => vec![b(json!({"serverUrl": "{server_url}"}), NotFound)],
        ("POST", "/mcp-server/instance/create") => vec![b(json!({"serverName": "GitHub", "userId": "{user}"}), Own)],
        ("POST", "/mcp-server/self-hosted/instance/create") => {
            vec![b(json!({"serverName": "GitHub", "userId": "{user}"}), Own)]
        }
        ("POST", "/mcp-server/instance/set-auth") => {
            vec![b(json!({"instanceId": "{instance}", "authData": {"token": "b-token"}}), NotFound)]
        }
        ("POST", "/mcp-server/instance/set-auth-token") => {
            vec![b(json!({"instanceId": "{instance}", "authToken": "b-token"}), NotFound)]
        }
        ("PATCH", "/mcp-server/instance/{instanceId}") => vec![b(json!({"isReadOnly": true}), NotFound)],
        ("POST", "/user/set-auth") => {
            vec![b(json!({"userId": "{user}", "serverName": "GitHub", "authData": {"token": "b-token"}}), Own)]
        }
        ("POST", "/white-labeling/create") => {
            vec![b(json!({"client_id": "{client}", "client_secret": "b-secret", "server_name": "GitHub"}), Own)]
        }
        (method, path) => {
            panic!("the tenancy matrix has no body for {method} {path}: add B's bodies naming A's things")
        }
    }
}

/// Every combination of A's values for the operation's path parameters.
fn paths(a: &ProjectA, op: &Operation, aggregate_types: &[String]) -> Vec<String> {
    let mut paths = vec![op.path.clone()];
    for param in &op.path_params {
        let values = path_values(a, param, aggregate_types);
        paths = paths
            .iter()
            .flat_map(|path| values.iter().map(move |v| path.replace(&format!("{{{param}}}"), v)))
            .collect();
    }
    paths
}

/// Whatever of A the answer shows that the request did not name: A's ids, and any string with
/// A's tag in it (every name, user id, client id, secret and host of A has it).
fn leaked(a: &ProjectA, exchange: &Exchange) -> Vec<String> {
    let sent = format!("{} {}", exchange.url, exchange.body.as_ref().map(Value::to_string).unwrap_or_default());
    let sent = urlencoding_decode(&sent);
    let mut shown = exchange.text.clone();
    let mut leaks: Vec<String> =
        a.ids.iter().filter(|id| shown.contains(id.as_str()) && !sent.contains(id.as_str())).cloned().collect();
    // Take out what the request itself carried, then look for A's tag in what is left.
    for value in a.values.values().filter(|v| sent.contains(v.as_str())) {
        shown = shown.replace(value.as_str(), "");
    }
    if let Some(at) = shown.find(&a.tag) {
        let start = shown[..at].char_indices().rev().nth(40).map_or(0, |(i, _)| i);
        leaks.push(format!("…{}…", &shown[start..(at + a.tag.len() + 10).min(shown.len())]));
    }
    leaks
}

/// Percent-decoding of a URL (query values go out encoded; answers may echo them decoded).
fn urlencoding_decode(url: &str) -> String {
    let bytes = url.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a status says is wrong with B's answer, if anything.
fn wrong_status(exchange: &Exchange, on_a_resource: bool, expect: Option<Expect>) -> Option<String> {
    let status = exchange.status;
    if [401, 403, 429].contains(&status) || status >= 500 {
        return Some(format!("answered {status}"));
    }
    // An id of another kind than the route's (A's account id where an auth config id goes) is
    // refused as malformed; the route's own kind must reach the lookup and be 404 (checked
    // per operation, after the walk).
    if on_a_resource {
        return (![400, 404, 422].contains(&status)).then(|| format!("answered {status}, not 404"));
    }
    match expect {
        Some(Expect::NotFound) if status != 404 => Some(format!("answered {status}, not 404")),
        Some(Expect::Refused) if !(400..500).contains(&status) => Some(format!("answered {status}, not a refusal")),
        Some(Expect::Own) if !(200..300).contains(&status) => Some(format!("answered {status} to a write of B's own")),
        _ => None,
    }
}

/// Every request of a walk with one key: GETs first (so that B's own writes, some with A's
/// user and client ids, come after every read), then the other writes, deletes last.
async fn walk(
    service: &Service,
    key: &str,
    a: &ProjectA,
    ops: &[Operation],
    aggregate_types: &[String],
    reads_only: bool,
    mut each: impl FnMut(&Operation, &Exchange, Option<Expect>),
) {
    let rank = |op: &Operation| match op.method.as_str() {
        "GET" => 0,
        "DELETE" => 2,
        _ => 1,
    };
    let mut ordered: Vec<&Operation> = ops.iter().filter(|op| !reads_only || op.method == Method::GET).collect();
    ordered.sort_by_key(|op| rank(op));
    for op in ordered {
        let bodies: Vec<(Option<Value>, Option<Expect>)> = if op.has_body {
            bodies(op).into_iter().map(|(body, expect)| (Some(a.fill_json(&body)), Some(expect))).collect()
        } else {
            vec![(None, None)]
        };
        let queries = if op.method == Method::GET { query_variants(a, op) } else { vec![vec![]] };
        for path in paths(a, op, aggregate_types) {
            for query in &queries {
                for (body, expect) in &bodies {
                    let exchange = service.send(key, op.method.clone(), &path, query, body.clone()).await;
                    each(op, &exchange, *expect);
                }
            }
        }
    }
}

/// A's reads, every GET of the spec with A's values: (request, status and body).
async fn reads_of_a(
    service: &Service,
    a: &ProjectA,
    ops: &[Operation],
    aggregate_types: &[String],
) -> BTreeMap<String, (u16, String)> {
    let mut reads = BTreeMap::new();
    let volatile = ["/health", "/ready"];
    let ops: Vec<Operation> = ops
        .iter()
        .filter(|op| !volatile.contains(&op.path.as_str()))
        .map(|op| Operation { query_params: vec![], ..op.clone() })
        .collect();
    walk(service, &a.key, a, &ops, aggregate_types, true, |_, exchange, _| {
        reads.insert(exchange.url.clone(), (exchange.status, without_request_ids(&exchange.text)));
    })
    .await;
    reads
}

/// The answer with Composio's `request_id` (new on every request) taken out.
fn without_request_ids(text: &str) -> String {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("request_id");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    match serde_json::from_str::<Value>(text) {
        Ok(mut value) => {
            strip(&mut value);
            value.to_string()
        }
        Err(_) => text.to_owned(),
    }
}

/// Each aggregate's event count, A's and everyone's.
async fn streams(pool: &PgPool) -> BTreeMap<(String, String), i64> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT aggregate_type, aggregate_id, count(*) FROM events GROUP BY 1, 2")
            .fetch_all(pool)
            .await
            .unwrap();
    rows.into_iter().map(|(t, id, n)| ((t, id), n)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_projects_key_reads_and_changes_nothing_of_a_on_any_route() {
    // Arrange: the real binary; A with one of everything; B with a key and nothing else.
    let db = TestDatabase::create().await;
    let serve =
        ServeProcess::start(&[("DATABASE_URL", &db.url), ("PROVISIONER_MASTER_KEY", &MasterKey::generate_base64())]);
    let service = Service { http: reqwest::Client::new(), base: serve.base_url.clone() };
    let a = project_a(&service, &db).await;
    let env = [("DATABASE_URL", db.url.as_str())];
    let b_project = run_cli(&["project", "create", "Tenant B"], &env).await.stdout.trim().to_owned();
    let b_key = run_cli(&["key", "create", "--project", &b_project], &env).await.stdout.trim().to_owned();
    let spec: Value =
        service.http.get(format!("{}/openapi.json", serve.base_url)).send().await.unwrap().json().await.unwrap();
    let excluded: BTreeSet<(&str, &str)> = EXCLUDED.iter().map(|(m, p, _)| (*m, *p)).collect();
    let all = operations(&spec);
    let ops: Vec<Operation> =
        all.iter().filter(|op| !excluded.contains(&(op.method.as_str(), op.path.as_str()))).cloned().collect();
    let pool = db.pool().await;
    let aggregate_types: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT aggregate_type FROM events ORDER BY 1").fetch_all(&pool).await.unwrap();
    let a_reads_before = reads_of_a(&service, &a, &ops, &aggregate_types).await;
    let streams_before = streams(&pool).await;
    let last_position: i64 =
        sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events").fetch_one(&pool).await.unwrap();

    // Act: B walks every operation.
    let mut problems = Vec::new();
    let mut walked = BTreeSet::new();
    let mut not_found = BTreeSet::new();
    let mut requests = 0;
    walk(&service, &b_key, &a, &ops, &aggregate_types, false, |op, exchange, expect| {
        requests += 1;
        walked.insert((op.method.to_string(), op.path.clone()));
        let on_a_resource = op.path_params.iter().any(|p| RESOURCE_PARAMS.contains(&p.as_str()));
        if exchange.status == 404 {
            not_found.insert((op.method.to_string(), op.path.clone()));
        }
        let what = || {
            format!(
                "{} {} {}",
                exchange.method,
                exchange.url,
                exchange.body.as_ref().map(Value::to_string).unwrap_or_default()
            )
        };
        if let Some(wrong) = wrong_status(exchange, on_a_resource, expect) {
            problems.push(format!("{}: {wrong}: {}", what(), exchange.text));
        }
        let leaks = leaked(&a, exchange);
        if !leaks.is_empty() {
            problems.push(format!("{}: shows A's {leaks:?}: {}", what(), exchange.text));
        }
    })
    .await;
    // The gateway's Composio and GAIA URLs of A's servers, with B's key.
    for (path, selector) in [
        (format!("/v3/mcp/{}", a.value("mcp_server")), Some(("user_id", a.value("user")))),
        (format!("/api/mcp/servers/{}/mcp", a.value("gaia")), None),
    ] {
        let query: Vec<(String, String)> = selector.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
        let b_call = service.send(&b_key, Method::POST, &path, &query, Some(ping.clone())).await;
        let a_call = service.send(&a.key, Method::POST, &path, &query, Some(ping)).await;
        if b_call.status != 404 || !b_call.text.contains("-32001") {
            problems.push(format!("gateway {path} with B's key: {} {}", b_call.status, b_call.text));
        }
        assert_ne!(a_call.status, 404, "{path} is A's gateway URL: {}", a_call.text);
        problems.extend(leaked(&a, &b_call).into_iter().map(|leak| format!("gateway {path} shows A's {leak}")));
    }

    // Assert: every operation of the spec walked or excluded with a reason.
    let in_spec: BTreeSet<(String, String)> = all.iter().map(|op| (op.method.to_string(), op.path.clone())).collect();
    for (method, path, _) in EXCLUDED {
        assert!(in_spec.contains(&(method.to_string(), path.to_string())), "stale exclusion {method} {path}");
    }
    let missed: Vec<_> = in_spec
        .iter()
        .filter(|(m, p)| !walked.contains(&(m.clone(), p.clone())) && !excluded.contains(&(m.as_str(), p.as_str())))
        .collect();
    assert!(missed.is_empty(), "operations not walked: {missed:?}");
    for op in ops.iter().filter(|op| op.path_params.iter().any(|p| RESOURCE_PARAMS.contains(&p.as_str()))) {
        let key = (op.method.to_string(), op.path.clone());
        if !not_found.contains(&key) {
            problems.push(format!("{} {}: no request with A's id of the route's kind answered 404", key.0, key.1));
        }
    }
    eprintln!(
        "walked {} of {} operations ({} excluded) in {requests} requests",
        walked.len(),
        in_spec.len(),
        EXCLUDED.len()
    );
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));

    // Nothing of A changed: its reads answer the same, its streams have no new event, and no
    // new event names A's project or resources.
    let a_reads_after = reads_of_a(&service, &a, &ops, &aggregate_types).await;
    let changed: Vec<_> = a_reads_before
        .iter()
        .filter(|(url, before)| a_reads_after.get(*url) != Some(before))
        .map(|(url, before)| format!("{url}: {before:?} -> {:?}", a_reads_after.get(url)))
        .collect();
    assert!(changed.is_empty(), "A's reads changed:\n{}", changed.join("\n"));
    let streams_after = streams(&pool).await;
    for (stream, count) in &streams_before {
        if stream.1 != b_project {
            assert_eq!(streams_after.get(stream), Some(count), "{stream:?} changed");
        }
    }
    let new_payloads: Vec<String> = sqlx::query_scalar("SELECT payload::text FROM events WHERE global_position > $1")
        .bind(last_position)
        .fetch_all(&pool)
        .await
        .unwrap();
    for payload in &new_payloads {
        for id in &a.ids {
            assert!(!payload.contains(id.as_str()), "B's write recorded A's {id}: {payload}");
        }
    }
    eprintln!(
        "B's walk recorded {} events of its own; A's {} reads unchanged",
        new_payloads.len(),
        a_reads_before.len()
    );
}
