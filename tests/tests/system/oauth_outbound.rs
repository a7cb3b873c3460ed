//! Issue 18, what the service calls out to: only public addresses (a token endpoint on this
//! host, the private network or the metadata service is never connected to), never more than
//! once per OAuth state, and never reading more than a small answer.

use crate::klavis_instances::create;
use crate::support::browser::{browser, location};
use crate::support::oauth_provider::{Behaviour, OAuthProvider};
use crate::support::{ServeProcess, TestApp, json_of};
use reqwest::Method;
use serde_json::json;
use services::secrets::MasterKey;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CLIENT_ID: &str = "outbound-client";

/// Saves (or replaces) the project's white-label app for Gmail with this token endpoint.
async fn save_app(app: &TestApp, authorize_url: &str, token_url: &str) {
    let body = json!({
        "client_id": CLIENT_ID, "client_secret": "outbound-secret", "server_name": "Gmail",
        "authorize_url": authorize_url, "token_url": token_url,
    });
    json_of(app.call(Method::POST, "/white-labeling/create", Some(body)).await, 200).await;
}

/// Starts a flow at `base` and returns the state it sends to the provider.
async fn state_of(base: &str, instance: &str) -> String {
    let to_provider =
        location(browser().get(format!("{base}/oauth/gmail/authorize?instance_id={instance}")).send().await.unwrap())
            .await;
    let url = url::Url::parse(&to_provider).unwrap();
    url.query_pairs().find(|(name, _)| name == "state").expect("a state").1.into_owned()
}

/// The provider's return to the callback at `base`, with a code.
async fn callback(base: &str, state: &str) -> (u16, String) {
    let state: String = url::form_urlencoded::byte_serialize(state.as_bytes()).collect();
    let answer =
        browser().get(format!("{base}/oauth/gmail/callback?code=the-code&state={state}")).send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

async fn credentials(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'instance.auth_set'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// A TCP port that counts the connections made to it.
struct CountingListener {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl CountingListener {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((_connection, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        Self { port, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// `provisioner serve` over `app`'s database, with `app`'s master key (to open the app's
/// client secret) and the loopback flag as given.
fn serve_beside(app: &TestApp, master_key: &str, allow_loopback: bool) -> ServeProcess {
    let flag = if allow_loopback { "true" } else { "false" };
    ServeProcess::start(&[
        ("DATABASE_URL", app.database_url()),
        ("PROVISIONER_MASTER_KEY", master_key),
        ("PROVISIONER_OAUTH_ALLOW_LOOPBACK_HTTP", flag),
    ])
}

/// A test app (loopback flag on, so that it saves loopback endpoints) whose master key is
/// known, to run the real binary beside it.
async fn app_with_known_key() -> (TestApp, String) {
    let key = MasterKey::generate_base64();
    let master = MasterKey::from_base64(&key).unwrap();
    (TestApp::spawn_with(|s| s.master_key = master).await, key)
}

#[tokio::test]
async fn a_token_endpoint_on_this_host_is_never_connected_to_without_the_loopback_flag() {
    // Arrange: endpoints saved while the flag was on (or before this fix), served without it.
    let (app, key) = app_with_known_key().await;
    let serve = serve_beside(&app, &key, false);
    let listener = CountingListener::start().await;
    let instance = create(&app, "Gmail", "ssrf-user").await["instanceId"].as_str().unwrap().to_owned();

    // 2130706433 is 127.0.0.1 as one number; localhost is a name that resolves to loopback.
    for host in ["127.0.0.1", "2130706433", "localhost", "[::ffff:127.0.0.1]"] {
        let token_url = format!("https://{host}:{}/token", listener.port);
        save_app(&app, "https://provider.example.com/authorize", &token_url).await;
        let state = state_of(&serve.base_url, &instance).await;

        let (status, page) = callback(&serve.base_url, &state).await;

        assert_eq!(listener.accepted(), 0, "{host}: the service connected to the token endpoint");
        assert_eq!(status, 502, "{host}: {page}");
        // A literal names its own address; what a name resolves to is not told (it would map
        // this network's DNS for the tenant).
        let why = if host == "localhost" { "does not resolve to a public address" } else { "loopback" };
        assert!(page.contains("was not called") && page.contains(why), "{host}: {page}");
    }
    assert_eq!(credentials(&app).await, 0);
}

#[tokio::test]
async fn provider_endpoints_on_refused_addresses_are_refused_when_saved() {
    let app = TestApp::spawn_with(|s| s.oauth_allow_loopback_http = false).await;
    let events_before = app.event_count().await;
    let refused = [
        "https://127.0.0.1:5432/token",
        "https://2130706433/token",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.5/token",
        "https://100.64.0.1/token",
        "https://[::1]/token",
        "https://[fd00::1]/token",
        "https://[::ffff:169.254.169.254]/token",
    ];
    for url in refused {
        // Klavis: a 422 locating the field.
        let body = json!({"client_id": "c", "client_secret": "s", "server_name": "Gmail", "token_url": url});
        let answer = json_of(app.call(Method::POST, "/white-labeling/create", Some(body)).await, 422).await;
        assert_eq!(answer["detail"][0]["loc"], json!(["body", "token_url"]), "{url}: {answer}");
        assert!(answer["detail"][0]["msg"].as_str().unwrap().contains("must not point at"), "{url}: {answer}");

        // Composio: a 400 naming the credential.
        let body = json!({"toolkit": {"slug": "gmail"}, "auth_config": {"type": "use_custom_auth", "authScheme": "OAUTH2",
            "credentials": {"client_id": "c", "client_secret": "s", "token_url": url}}});
        let answer = json_of(app.composio(Method::POST, "/api/v3/auth_configs", Some(body)).await, 400).await;
        let errors = answer["error"]["errors"].to_string();
        assert!(errors.contains("auth_config.credentials.token_url: must not point at"), "{url}: {answer}");
    }
    let body = json!({"client_id": "c", "client_secret": "s", "server_name": "Gmail",
        "authorize_url": "https://192.168.1.1/authorize"});
    let answer = json_of(app.call(Method::POST, "/white-labeling/create", Some(body)).await, 422).await;
    assert_eq!(answer["detail"][0]["loc"], json!(["body", "authorize_url"]), "{answer}");
    assert_eq!(app.event_count().await, events_before, "a refused endpoint left an event");
}

#[tokio::test]
async fn a_state_whose_exchange_failed_cannot_call_the_token_endpoint_again() {
    let app = TestApp::spawn().await;
    let provider = OAuthProvider::start().await;
    let body = json!({
        "client_id": provider.client_id, "client_secret": provider.client_secret, "server_name": "Gmail",
        "authorize_url": format!("{}/authorize", provider.base_url), "token_url": format!("{}/token", provider.base_url),
    });
    json_of(app.call(Method::POST, "/white-labeling/create", Some(body)).await, 200).await;
    let instance = create(&app, "Gmail", "replay-user").await["instanceId"].as_str().unwrap().to_owned();
    provider.behave(Behaviour::FailTokenExchange);
    let authorize = format!("{}/oauth/gmail/authorize?instance_id={instance}", app.base_url);
    let to_provider = location(browser().get(authorize).send().await.unwrap()).await;
    let back = location(browser().get(to_provider).send().await.unwrap()).await;

    let first = browser().get(&back).send().await.unwrap();
    assert_eq!(first.status(), 502, "the exchange fails: {}", first.text().await.unwrap());
    let replay = browser().get(&back).send().await.unwrap();

    assert_eq!(replay.status(), 400);
    assert!(replay.text().await.unwrap().contains("already completed"));
    assert_eq!(provider.token_requests(), 1, "the replay called the token endpoint again");
    assert_eq!(credentials(&app).await, 0);
}

/// A token endpoint whose answer is `size` bytes of JSON, written as it goes (never held),
/// with its length announced or not (then the end of the connection ends it).
async fn oversized_token_endpoint(size: usize, announce_length: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((connection, _)) = listener.accept().await {
            tokio::spawn(answer_oversized(connection, size, announce_length));
        }
    });
    url
}

async fn answer_oversized(mut connection: TcpStream, size: usize, announce_length: bool) {
    read_request(&mut connection).await;
    let mut headers = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n".to_owned();
    if announce_length {
        headers.push_str(&format!("Content-Length: {size}\r\n"));
    }
    headers.push_str("\r\n");
    // The client hanging up early is what a capped reader does.
    let _ = write_token_answer(&mut connection, &headers, size).await;
}

/// A valid token response whose access token makes it `size` bytes long.
async fn write_token_answer(connection: &mut TcpStream, headers: &str, size: usize) -> std::io::Result<()> {
    let (head, tail) = (br#"{"access_token":""#.as_slice(), br#"","token_type":"Bearer"}"#.as_slice());
    let chunk = vec![b'a'; 64 * 1024];
    connection.write_all(headers.as_bytes()).await?;
    connection.write_all(head).await?;
    let mut left = size - head.len() - tail.len();
    while left > 0 {
        let n = left.min(chunk.len());
        connection.write_all(&chunk[..n]).await?;
        left -= n;
    }
    connection.write_all(tail).await?;
    connection.shutdown().await
}

/// Reads a request's head and its `Content-Length` body, so that closing the connection does
/// not reset it under the client.
async fn read_request(connection: &mut TcpStream) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        let n = connection.read(&mut buffer).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        received.extend_from_slice(&buffer[..n]);
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while received.len() < head_end + length {
        let n = connection.read(&mut buffer).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        received.extend_from_slice(&buffer[..n]);
    }
}

/// The peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/<pid>/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn an_oversized_token_answer_fails_the_exchange_and_is_never_held() {
    const FIFTY_MIB: usize = 50 * 1024 * 1024;
    let (app, key) = app_with_known_key().await;
    let serve = serve_beside(&app, &key, true);
    let instance = create(&app, "Gmail", "big-answer-user").await["instanceId"].as_str().unwrap().to_owned();
    // Warm up: one whole failed flow (nobody listens on port 1), so that the baseline includes
    // what any callback allocates.
    save_app(&app, "https://provider.example.com/authorize", "http://127.0.0.1:1/token").await;
    let state = state_of(&serve.base_url, &instance).await;
    let (status, page) = callback(&serve.base_url, &state).await;
    assert_eq!(status, 502, "{page}");
    let baseline = peak_rss_kib(serve.pid());

    let mut endings = Vec::new();
    for announce_length in [true, false] {
        let token_url = oversized_token_endpoint(FIFTY_MIB, announce_length).await;
        save_app(&app, "https://provider.example.com/authorize", &token_url).await;
        let state = state_of(&serve.base_url, &instance).await;

        endings.push((announce_length, callback(&serve.base_url, &state).await));
    }

    let grown_kib = peak_rss_kib(serve.pid()).saturating_sub(baseline);
    eprintln!("peak RSS of the service: {baseline} KiB before, grown by {grown_kib} KiB after two 50 MiB answers");
    assert!(grown_kib < 16 * 1024, "the service's peak memory grew by {grown_kib} KiB");
    assert_eq!(credentials(&app).await, 0);
    let largest: i64 = sqlx::query_scalar("SELECT max(octet_length(payload::text))::bigint FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(largest < 4096, "an event of {largest} bytes was stored");
    for (announced, (status, page)) in endings {
        assert_eq!(status, 502, "announced: {announced}: {page}");
        assert!(page.contains("longer than 65536 bytes"), "announced: {announced}: {page}");
    }
}
