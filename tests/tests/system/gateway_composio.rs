//! The MCP gateway at Composio's URLs: the per-user URLs `generate` hands out serve MCP,
//! forwarding to a real upstream MCP server (tests/upstream/upstream.py) with the user's own
//! ACTIVE connected account's credential, `allowed_tools` enforced, and the project's key
//! required on every request.

use crate::support::composio::{api_key_auth_config, api_key_connection, create_instance, mcp_server};
use crate::support::mcp::{Answer, Session, Upstream, python_client};
use crate::support::{TestApp, json_of};
use reqwest::Method;
use serde_json::{Value, json};
use services::gateway::Upstreams;

/// The app with the GitHub and Slack toolkits bound to the upstream.
async fn app_and_upstream() -> (TestApp, Upstream) {
    let upstream = Upstream::start().await;
    let bindings = format!("[github]\nurl = \"{0}\"\n\n[slack]\nurl = \"{0}\"\n", upstream.url);
    let upstreams = Upstreams::parse(&bindings).expect("the test's upstreams file is valid");
    (TestApp::spawn_with(move |settings| settings.gateway.upstreams = upstreams).await, upstream)
}

/// Connects `user` to an API_KEY auth config with `key`: an ACTIVE account; its id.
async fn connect_with(app: &TestApp, auth_config_id: &str, user: &str, key: &str) -> String {
    let body = api_key_connection(auth_config_id, user, key);
    let created = json_of(app.composio(Method::POST, "/api/v3/connected_accounts", Some(body)).await, 201).await;
    assert_eq!(created["status"], "ACTIVE", "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// `generate`'s answer for a server.
async fn generate(app: &TestApp, server_id: &str, users: &[&str], accounts: &[&str]) -> Value {
    let body = json!({"mcp_server_id": server_id, "user_ids": users, "connected_account_ids": accounts});
    json_of(app.composio(Method::POST, "/api/v3/mcp/servers/generate", Some(body)).await, 200).await
}

/// The URL `generate` hands out for one user.
async fn user_url(app: &TestApp, server_id: &str, user: &str) -> String {
    generate(app, server_id, &[user], &[]).await["user_ids_url"][0].as_str().unwrap().to_owned()
}

/// A session at `url` sending `key` in `x-api-key`, initialized.
async fn open(url: &str, key: &str) -> (Session, Answer) {
    let mut session = Session::new(url);
    session.extra = vec![("x-api-key".into(), key.into())];
    let answer = session.initialize().await;
    (session, answer)
}

fn whoami(answer: &Answer) -> Value {
    serde_json::from_str(answer.text()).unwrap_or_else(|_| panic!("whoami answered {answer:?}"))
}

/// A GitHub server with alice (key-of-alice) and bob (key-of-bob) connected; (server, alice's
/// account, bob's account).
async fn github_server(app: &TestApp, allowed_tools: &[&str]) -> (String, String, String) {
    let github = api_key_auth_config(app, "github").await;
    let body = json!({"name": "GitHub tools", "auth_config_ids": [github], "allowed_tools": allowed_tools});
    let server = json_of(app.composio(Method::POST, "/api/v3/mcp/servers", Some(body)).await, 201).await;
    let alice = connect_with(app, &github, "alice", "key-of-alice").await;
    let bob = connect_with(app, &github, "bob", "key-of-bob").await;
    (server["id"].as_str().unwrap().to_owned(), alice, bob)
}

#[tokio::test]
async fn a_generated_url_reaches_the_upstream_with_the_users_account_and_never_the_callers_key() {
    let (app, _upstream) = app_and_upstream().await;
    let (server, _, bob_account) = github_server(&app, &[]).await;
    let urls = generate(&app, &server, &["alice", "bob"], &[&bob_account]).await;
    let alice_url = urls["user_ids_url"][0].as_str().unwrap();
    assert!(alice_url.contains(&format!("/v3/mcp/{server}?user_id=alice")), "{urls}");

    // The official client, sending the project's key (also as a bearer and a cookie).
    let report = python_client(alice_url, &app.key).await;
    assert_eq!(report["server"], "gateway-test-upstream", "{report}");
    assert_eq!(report["tools"], json!(["delete_everything", "fail", "slow", "whoami"]));
    let headers = &report["whoami"]["headers"];
    assert_eq!(headers["authorization"], "Bearer key-of-alice", "alice's account, not the caller's: {report}");
    assert_eq!(headers["x-api-key"], Value::Null, "the project's key went upstream: {report}");
    assert_eq!(headers["cookie"], Value::Null);

    let (mut bob, init) = open(urls["user_ids_url"][1].as_str().unwrap(), &app.key).await;
    assert_eq!(init.status, 200, "{init:?}");
    assert_eq!(whoami(&bob.call_tool("whoami", json!({})).await)["headers"]["authorization"], "Bearer key-of-bob");

    let by_account = urls["connected_account_urls"][0].as_str().unwrap();
    assert!(by_account.ends_with(&format!("?connected_account_id={bob_account}")), "{urls}");
    let (mut session, _) = open(by_account, &app.key).await;
    assert_eq!(whoami(&session.call_tool("whoami", json!({})).await)["headers"]["authorization"], "Bearer key-of-bob");

    // The streamable path of Composio's own URLs (`…/{id}/mcp`) serves the same.
    let (mut session, _) = open(&format!("{}/v3/mcp/{server}/mcp?user_id=alice", app.base_url), &app.key).await;
    assert_eq!(
        whoami(&session.call_tool("whoami", json!({})).await)["headers"]["authorization"],
        "Bearer key-of-alice"
    );

    // A session of alice's does not open at bob's URL.
    let mut moved = Session::new(urls["user_ids_url"][1].as_str().unwrap());
    moved.extra = vec![("x-api-key".into(), app.key.clone())];
    let (alice, _) = open(alice_url, &app.key).await;
    moved.session_id = alice.session_id.clone();
    let answer = moved.list_tools().await;
    assert_eq!((answer.status, answer.error_code()), (404, Some(-32001)), "{answer:?}");

    // The project's key revoked: its open session is refused from then on.
    let (mut session, _) = open(alice_url, &app.key).await;
    app.revoke(app.project_id, &app.key).await;
    let revoked = session.call_tool("whoami", json!({})).await;
    assert_eq!((revoked.status, revoked.error_code()), (401, Some(-32005)), "{revoked:?}");
}

#[tokio::test]
async fn allowed_tools_are_the_only_tools_listed_and_callable_and_a_patch_applies_inside_the_session() {
    let (app, _upstream) = app_and_upstream().await;
    let (server, _, _) = github_server(&app, &["GITHUB_WHOAMI", "slow"]).await;
    let (mut session, init) = open(&user_url(&app, &server, "alice").await, &app.key).await;
    assert_eq!(init.status, 200, "{init:?}");
    assert_eq!(session.list_tools().await.tool_names(), ["slow", "whoami"]);

    let refused = session.call_tool("delete_everything", json!({})).await;
    assert_eq!((refused.status, refused.error_code()), (200, Some(-32602)), "{refused:?}");
    assert!(refused.error_message().contains("delete_everything"), "{}", refused.error_message());
    assert_eq!(whoami(&session.call_tool("whoami", json!({})).await)["deletions"], 0, "the call never went upstream");

    let patch = json!({"allowed_tools": []});
    json_of(app.composio(Method::PATCH, &format!("/api/v3/mcp/{server}"), Some(patch)).await, 200).await;
    assert_eq!(session.list_tools().await.tool_names().len(), 4, "empty: every tool");
    assert_eq!(session.call_tool("delete_everything", json!({})).await.text(), "deleted everything");
    assert_eq!(whoami(&session.call_tool("whoami", json!({})).await)["deletions"], 1);
}

#[tokio::test]
async fn the_projects_key_a_known_server_and_user_and_one_selector_are_required() {
    let (app, _upstream) = app_and_upstream().await;
    let (server, _, _) = github_server(&app, &[]).await;
    let alice = user_url(&app, &server, "alice").await;
    let refused = |answer: &Answer, status: u16, code: i64| {
        assert_eq!((answer.status, answer.error_code()), (status, Some(code)), "{answer:?}");
        assert_eq!(answer.message["jsonrpc"], "2.0", "a JSON-RPC error: {answer:?}");
    };

    refused(&Session::new(&alice).initialize().await, 401, -32005);
    refused(&open(&alice, "not-a-key").await.1, 401, -32005);
    let (_, foreign_key) = app.new_project("other project").await;
    let foreign = open(&alice, &foreign_key).await.1;
    refused(&foreign, 404, -32001);
    assert!(foreign.error_message().contains("project"), "{}", foreign.error_message());

    for url in [
        format!("{}/v3/mcp/{}?user_id=alice", app.base_url, uuid::Uuid::new_v4()),
        format!("{}/v3/mcp/not-a-uuid?user_id=alice", app.base_url),
    ] {
        refused(&open(&url, &app.key).await.1, 404, -32001);
    }
    let carol = open(&alice.replace("user_id=alice", "user_id=carol"), &app.key).await.1;
    refused(&carol, 404, -32001);
    assert!(carol.error_message().contains("carol"), "{}", carol.error_message());

    let base = format!("{}/v3/mcp/{server}", app.base_url);
    // The plural names the Composio SDKs emit, with one id, mean the singular; several ids do not.
    let (mut plural, init) = open(&format!("{base}?user_ids=alice"), &app.key).await;
    assert_eq!(init.status, 200, "{init:?}");
    let seen = whoami(&plural.call_tool("whoami", json!({})).await);
    assert_eq!(seen["headers"]["authorization"], "Bearer key-of-alice", "{seen}");
    let several = open(&format!("{base}?user_ids=alice,bob"), &app.key).await.1;
    refused(&several, 400, -32600);
    assert!(several.error_message().contains("one id per URL"), "{}", several.error_message());
    refused(&open(&format!("{base}?user_id=alice&user_ids=bob"), &app.key).await.1, 400, -32600);
    refused(&open(&base, &app.key).await.1, 400, -32600);

    // An account of another auth config is not this server's.
    let slack = api_key_auth_config(&app, "slack").await;
    let slack_account = connect_with(&app, &slack, "alice", "slack-key").await;
    refused(&open(&format!("{base}?connected_account_id={slack_account}"), &app.key).await.1, 404, -32001);

    // A server of two auth configs is reached by user_id only (an account is of one of them).
    let both = mcp_server(&app, "GitHub and Slack", &[&server_auth_config(&app, &server).await, &slack]).await;
    let by_account = format!("{}/v3/mcp/{both}?connected_account_id={slack_account}", app.base_url);
    let multi = open(&by_account, &app.key).await.1;
    refused(&multi, 200, -32600);
    assert!(multi.error_message().contains("by user_id"), "{}", multi.error_message());

    // A deleted server is gone.
    json_of(app.composio(Method::DELETE, &format!("/api/v3/mcp/{server}"), None).await, 200).await;
    refused(&open(&alice, &app.key).await.1, 404, -32001);
}

async fn server_auth_config(app: &TestApp, server_id: &str) -> String {
    let server = json_of(app.composio(Method::GET, &format!("/api/v3/mcp/{server_id}"), None).await, 200).await;
    server["auth_config_ids"][0].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn without_an_active_account_the_user_is_told_to_connect_also_inside_an_open_session() {
    let (app, _upstream) = app_and_upstream().await;
    let (server, alice_account, _) = github_server(&app, &[]).await;
    let auth_config = server_auth_config(&app, &server).await;
    let alice = user_url(&app, &server, "alice").await;
    let (mut session, init) = open(&alice, &app.key).await;
    assert_eq!(init.status, 200, "{init:?}");
    assert_eq!(
        whoami(&session.call_tool("whoami", json!({})).await)["headers"]["authorization"],
        "Bearer key-of-alice"
    );

    // Disabled (INACTIVE): the next call is told to connect, with the auth config named.
    let path = format!("/api/v3/connected_accounts/{alice_account}");
    let disable = json!({"enabled": false});
    json_of(app.composio(Method::PATCH, &format!("{path}/status"), Some(disable)).await, 200).await;
    let inactive = session.call_tool("whoami", json!({})).await;
    assert_eq!((inactive.status, inactive.error_code()), (200, Some(-32003)), "{inactive:?}");
    assert!(inactive.error_message().contains("ACTIVE") && inactive.error_message().contains("connect"));
    assert_eq!(inactive.message["error"]["data"]["authConfigId"], auth_config.as_str());
    // Also when the URL names the account itself (no list of ACTIVE accounts in between).
    let by_account = generate(&app, &server, &[], &[&alice_account]).await["connected_account_urls"][0].clone();
    let (mut named, _) = open(by_account.as_str().unwrap(), &app.key).await;
    let inactive = named.call_tool("whoami", json!({})).await;
    assert_eq!((inactive.status, inactive.error_code()), (200, Some(-32003)), "{inactive:?}");

    // Enabled again, then revoked: refused from the revoke's commit on, view or not.
    json_of(app.composio(Method::PATCH, &format!("{path}/status"), Some(json!({"enabled": true}))).await, 200).await;
    assert_eq!(
        whoami(&session.call_tool("whoami", json!({})).await)["headers"]["authorization"],
        "Bearer key-of-alice"
    );
    json_of(app.composio(Method::POST, &format!("{path}/revoke"), None).await, 200).await;
    let revoked = session.call_tool("whoami", json!({})).await;
    assert_eq!((revoked.status, revoked.error_code()), (200, Some(-32003)), "{revoked:?}");

    // A newer ACTIVE account of hers serves at once.
    connect_with(&app, &auth_config, "alice", "second-key-of-alice").await;
    app.settled().await;
    let seen = whoami(&session.call_tool("whoami", json!({})).await);
    assert_eq!(seen["headers"]["authorization"], "Bearer second-key-of-alice");

    // Her accounts deleted: she is no user of this server any more.
    for id in list_accounts(&app, "alice").await {
        json_of(app.composio(Method::DELETE, &format!("/api/v3/connected_accounts/{id}"), None).await, 200).await;
    }
    app.settled().await;
    let gone = session.call_tool("whoami", json!({})).await;
    assert_eq!((gone.status, gone.error_code()), (404, Some(-32001)), "{gone:?}");
}

/// The ids of a user's accounts.
async fn list_accounts(app: &TestApp, user: &str) -> Vec<String> {
    let path = format!("/api/v3/connected_accounts?user_ids={user}");
    let page = json_of(app.composio(Method::GET, &path, None).await, 200).await;
    page["items"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
}

/// A server over a GitHub and a Slack auth config (both toolkits bound to the one upstream, so
/// every tool name is shared); alice is connected to both, bob to GitHub only. (server, the
/// Slack auth config).
async fn two_toolkit_server(app: &TestApp, allowed_tools: &[&str]) -> (String, String) {
    let github = api_key_auth_config(app, "github").await;
    let slack = api_key_auth_config(app, "slack").await;
    let body = json!({"name": "GitHub and Slack", "auth_config_ids": [github, slack], "allowed_tools": allowed_tools});
    let server = json_of(app.composio(Method::POST, "/api/v3/mcp/servers", Some(body)).await, 201).await;
    connect_with(app, &github, "alice", "github-key-of-alice").await;
    connect_with(app, &slack, "alice", "slack-key-of-alice").await;
    connect_with(app, &github, "bob", "github-key-of-bob").await;
    (server["id"].as_str().unwrap().to_owned(), slack)
}

#[tokio::test]
async fn a_server_of_several_auth_configs_fans_out_to_one_upstream_per_toolkit_in_one_session() {
    let (app, _upstream) = app_and_upstream().await;
    let (server, _) = two_toolkit_server(&app, &[]).await;
    let (mut session, init) = open(&user_url(&app, &server, "alice").await, &app.key).await;
    assert_eq!(init.status, 200, "{init:?}");
    assert_eq!(init.message["result"]["serverInfo"]["name"], "gateway-test-upstream", "{init:?}");
    assert!(session.session_id.is_some(), "one session id for both upstream sessions");

    // Both toolkits' tools, a shared name prefixed with its toolkit.
    let names = session.list_tools().await.tool_names();
    let expected: Vec<String> = ["github", "slack"]
        .iter()
        .flat_map(|toolkit| ["delete_everything", "fail", "slow", "whoami"].map(|t| format!("{toolkit}_{t}")))
        .collect();
    assert_eq!(names, expected);

    // A call goes to its toolkit's upstream, under the upstream's own name, with that
    // toolkit's account; each upstream session goes on.
    for (tool, key) in [("github_whoami", "github-key-of-alice"), ("slack_whoami", "slack-key-of-alice")] {
        let answer = session.call_tool(tool, json!({})).await;
        assert_eq!(whoami(&answer)["headers"]["authorization"], format!("Bearer {key}"), "{tool}");
    }
    let unprefixed = session.call_tool("whoami", json!({})).await;
    assert_eq!((unprefixed.status, unprefixed.error_code()), (200, Some(-32602)), "{unprefixed:?}");
    assert_eq!(session.call_tool("slack_slow", json!({"seconds": 0.1})).await.text(), "slept 0.1s");

    // A session id of one upstream alone does not open here.
    let mut forged = Session::new(&session.url);
    forged.extra = session.extra.clone();
    forged.session_id = Some("not-a-sealed-id".into());
    assert_eq!(forged.list_tools().await.status, 404);
    assert_eq!(session.delete().await.status, 200, "every upstream session ended");
}

#[tokio::test]
async fn allowed_tools_apply_to_the_merged_names_and_a_missing_account_names_its_toolkit() {
    let (app, _upstream) = app_and_upstream().await;
    let (server, slack) = two_toolkit_server(&app, &["GITHUB_WHOAMI", "slack_slow"]).await;
    let (mut session, init) = open(&user_url(&app, &server, "alice").await, &app.key).await;
    assert_eq!(init.status, 200, "{init:?}");
    assert_eq!(session.list_tools().await.tool_names(), ["github_whoami", "slack_slow"]);
    let hidden = session.call_tool("slack_whoami", json!({})).await;
    assert_eq!((hidden.status, hidden.error_code()), (200, Some(-32602)), "{hidden:?}");
    assert!(hidden.error_message().contains("slack_whoami"), "{}", hidden.error_message());
    let seen = whoami(&session.call_tool("github_whoami", json!({})).await);
    assert_eq!(seen["headers"]["authorization"], "Bearer github-key-of-alice");

    // bob has no Slack account: told to connect one, naming the toolkit; nothing goes upstream.
    let bob = open(&user_url(&app, &server, "bob").await, &app.key).await.1;
    assert_eq!((bob.status, bob.error_code()), (200, Some(-32003)), "{bob:?}");
    assert_eq!(bob.message["error"]["data"]["toolkit"], "slack", "{bob:?}");
    assert_eq!(bob.message["error"]["data"]["authConfigId"], slack.as_str());
    assert!(bob.error_message().contains("`slack`"), "{}", bob.error_message());
    // carol has no account at all: not a user of the server.
    let carol_url = user_url(&app, &server, "alice").await.replace("user_id=alice", "user_id=carol");
    let carol = open(&carol_url, &app.key).await.1;
    assert_eq!((carol.status, carol.error_code()), (404, Some(-32001)), "{carol:?}");
}

#[tokio::test]
async fn a_composio_instances_id_at_the_klavis_url_is_pointed_to_the_composio_url() {
    let (app, _upstream) = app_and_upstream().await;
    let (server, _, _) = github_server(&app, &[]).await;
    let instance = json_of(create_instance(&app, &server, "alice").await, 201).await;
    let url = format!("{}/mcp/?instance_id={}", app.base_url, instance["id"].as_str().unwrap());

    let (_, answer) = Session::open(&url).await;

    assert_eq!((answer.status, answer.error_code()), (200, Some(-32002)), "{answer:?}");
    assert!(answer.error_message().contains(&format!("/v3/mcp/{server}?user_id=")), "{}", answer.error_message());
}

#[tokio::test]
async fn an_updated_credential_is_the_one_the_gateway_sends_from_the_next_call_on() {
    let (app, _upstream) = app_and_upstream().await;
    let (server, alice, _) = github_server(&app, &[]).await;
    let url = format!("{}/v3/mcp/{server}?connected_account_id={alice}", app.base_url);
    let (mut session, _) = open(&url, &app.key).await;
    assert_eq!(
        whoami(&session.call_tool("whoami", json!({})).await)["headers"]["authorization"],
        "Bearer key-of-alice"
    );

    // Composio v3.1's partial update: the new key, through the real router.
    let update =
        json!({"connection": {"state": {"authScheme": "API_KEY", "val": {"api_key": "rotated-key-of-alice"}}}});
    let path = format!("/api/v3.1/connected_accounts/{alice}");
    json_of(app.composio(Method::PATCH, &path, Some(update)).await, 200).await;
    let (mut session, _) = open(&url, &app.key).await;
    let headers = whoami(&session.call_tool("whoami", json!({})).await)["headers"].clone();
    assert_eq!(headers["authorization"], "Bearer rotated-key-of-alice", "{headers}");
}
