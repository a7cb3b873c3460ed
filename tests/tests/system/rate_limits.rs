//! Issue 14, item 2: rate limits per API key (the deployment's default, or the project's own
//! set with `provisioner project rate-limit`) and per client address on the routes without a
//! key. Over the limit: 429 in each surface's own format with `Retry-After`, `RateLimit` and
//! `RateLimit-Policy`, and nothing changed.
//!
//! No timing is asserted: the rates are 1 per second with small bursts, and each test makes a
//! run of requests that takes far less than the seconds a refill would need to let them all in.

use crate::support::composio::{api_key_auth_config, mcp_server};
use crate::support::mcp::Session;
use crate::support::{TestApp, json_of, run_cli};
use domain::project::RateLimit;
use reqwest::{Method, Response};
use serde_json::{Value, json};

/// The app with `per_key` and `per_address` rates of 1 request per second and these bursts.
async fn app_limited(per_key: Option<u32>, per_address: Option<u32>) -> TestApp {
    TestApp::spawn_with(move |settings| {
        settings.rate_limits.per_key = per_key.map(|burst| RateLimit::new(1, burst).unwrap());
        settings.rate_limits.per_address = per_address.map(|burst| RateLimit::new(1, burst).unwrap());
    })
    .await
}

/// The first answer of `attempts` that is a 429 (after at least one that is not).
async fn first_refusal<F, Fut>(attempts: usize, mut send: F) -> (usize, Response)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    for attempt in 0..attempts {
        let response = send().await;
        if response.status() == 429 {
            assert!(attempt > 0, "the very first request was refused");
            return (attempt, response);
        }
        assert!(response.status().is_success(), "attempt {attempt}: {}", response.status());
    }
    panic!("{attempts} requests in a row were all let through");
}

fn header(response: &Response, name: &str) -> String {
    response.headers().get(name).unwrap_or_else(|| panic!("no {name}")).to_str().unwrap().to_owned()
}

fn assert_rate_headers(response: &Response, policy: &str, burst: u32) {
    assert!(header(response, "retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(header(response, "ratelimit-policy"), format!("\"{policy}\";q={burst};w={burst}"));
    assert!(header(response, "ratelimit").starts_with(&format!("\"{policy}\";r=0;t=")), "{response:?}");
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_in_each_surfaces_format_and_another_key_does_not() {
    let app = app_limited(Some(3), None).await;

    let (allowed, klavis) = first_refusal(20, || app.call(Method::GET, "/mcp-server/servers", None)).await;
    assert!(allowed <= 5, "a burst of 3 let {allowed} through");
    assert_rate_headers(&klavis, "per-key", 3);
    let body: Value = klavis.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("Too many requests from this API key"), "{body}");

    let composio = app.composio(Method::GET, "/api/v3/auth_configs", None).await;
    assert_eq!(composio.status(), 429);
    assert_rate_headers(&composio, "per-key", 3);
    let body: Value = composio.json().await.unwrap();
    assert_eq!(
        (body["error"]["slug"].clone(), body["error"]["status"].clone()),
        (json!("Request_RateLimited"), json!(429))
    );

    let gaia = app.call(Method::GET, "/api/mcp/servers", None).await;
    assert_eq!(gaia.status(), 429);
    let body: Value = gaia.json().await.unwrap();
    assert_eq!((body["success"].clone(), body["error"].clone()), (json!(false), json!("rate_limited")), "{body}");

    // A refused write changes nothing; another project's key has its own rate.
    let before = app.event_count().await;
    let create = json!({"serverName": "GitHub", "userId": "alice"});
    assert_eq!(app.call(Method::POST, "/mcp-server/instance/create", Some(create)).await.status(), 429);
    assert_eq!(app.event_count().await, before, "a refused request changed nothing");
    let (_, other) = app.new_project("other").await;
    assert_eq!(app.call_as(&other, Method::GET, "/mcp-server/servers", None).await.status(), 200);
}

#[tokio::test]
async fn a_projects_own_rate_set_with_the_cli_replaces_the_default_and_clears() {
    let app = app_limited(Some(1), None).await;
    let env = [("DATABASE_URL", app.database_url())];
    let project = app.project_id.to_string();

    let set = run_cli(&["project", "rate-limit", &project, "--per-second", "1", "--burst", "40"], &env).await;
    assert_eq!(set.stdout.trim(), "1 requests/s per key, burst 40", "{set:?}");
    let (_, key) = app.new_project("fresh").await;
    // A key issued now, so that no cache holds it from before the change.
    let project_key = run_cli(&["key", "create", "--project", &project], &env).await.stdout.trim().to_owned();

    for attempt in 0..20 {
        let status = app.call_as(&project_key, Method::GET, "/mcp-server/servers", None).await.status();
        assert_eq!(status, 200, "attempt {attempt} of a burst of 40");
    }
    // Another project keeps the default burst of one.
    let (allowed, _) = first_refusal(10, || app.call_as(&key, Method::GET, "/mcp-server/servers", None)).await;
    assert!(allowed <= 3, "a burst of 1 let {allowed} through");

    let bad = run_cli(&["project", "rate-limit", &project, "--per-second", "0", "--burst", "5"], &env).await;
    assert!(!bad.success && bad.stderr.contains("1 to 1000000"), "{bad:?}");
    let cleared = run_cli(&["project", "rate-limit", &project, "--clear"], &env).await;
    assert!(cleared.stdout.contains("the deployment's default"), "{cleared:?}");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'project.rate_limit_set'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events, 2, "set and cleared, each one event");
}

#[tokio::test]
async fn an_address_over_its_rate_at_a_capability_url_gets_a_json_rpc_429_and_keyed_routes_are_not_counted() {
    let app = app_limited(None, Some(2)).await;
    let created = json_of(
        app.call(Method::POST, "/mcp-server/instance/create", Some(json!({"serverName": "GitHub", "userId": "a"})))
            .await,
        200,
    )
    .await;
    let url = created["serverUrl"].as_str().unwrap().to_owned();

    let mut refused = None;
    for _ in 0..20 {
        let answer = Session::new(&url).initialize().await;
        if answer.status == 429 {
            refused = Some(answer);
            break;
        }
    }
    let refused = refused.expect("20 initializes in a row from one address were all let through");
    assert_eq!(refused.error_code(), Some(-32029), "{refused:?}");
    assert!(refused.error_message().contains("this address"), "{refused:?}");
    assert!(refused.headers.contains_key("retry-after") && refused.headers.contains_key("ratelimit-policy"));

    // The OAuth pages share the address's rate: a plain page; the keyed API does not.
    let page = app
        .http
        .get(format!("{}/oauth/github/authorize?instance_id={}", app.base_url, created["instanceId"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 429);
    assert_eq!(header(&page, "ratelimit-policy"), "\"per-address\";q=2;w=2");
    for _ in 0..5 {
        assert_eq!(app.call(Method::GET, "/mcp-server/servers", None).await.status(), 200);
    }
}

#[tokio::test]
async fn a_key_over_its_rate_at_a_composio_mcp_url_gets_a_json_rpc_429() {
    let app = app_limited(Some(3), None).await;
    let github = api_key_auth_config(&app, "github").await;
    let server = mcp_server(&app, "GitHub tools", &[&github]).await;
    let url = format!("{}/v3/mcp/{server}?user_id=alice", app.base_url);

    let mut refused = None;
    for _ in 0..20 {
        let mut session = Session::new(&url);
        session.extra = vec![("x-api-key".into(), app.key.clone())];
        let answer = session.initialize().await;
        if answer.status == 429 {
            refused = Some(answer);
            break;
        }
    }
    let refused = refused.expect("20 requests in a row with one key were all let through");
    assert_eq!(refused.error_code(), Some(-32029), "{refused:?}");
    assert!(refused.error_message().contains("this API key"), "{refused:?}");
    assert_eq!(refused.headers["ratelimit-policy"], "\"per-key\";q=3;w=3");
}
