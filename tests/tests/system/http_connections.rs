//! Issue 14, item 5: an early error leaves a keep-alive connection usable. One TCP connection,
//! written and read by hand (so that nothing opens a second one behind the test's back): a
//! refused request with a large body, then an ordinary request on the same connection.

use crate::support::TestApp;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type Headers<'a> = &'a [(&'a str, &'a str)];

struct Connection {
    stream: BufReader<TcpStream>,
    host: String,
}

/// An answer's status, its headers (lower-case names) and its body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl Connection {
    async fn open(base_url: &str) -> Self {
        let host = base_url.trim_start_matches("http://").to_owned();
        Self { stream: BufReader::new(TcpStream::connect(&host).await.unwrap()), host }
    }

    /// Sends one request (the whole body, as a client that does not wait would) and reads its answer.
    async fn exchange(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n", self.host, body.len());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let stream = self.stream.get_mut();
        stream.write_all(head.as_bytes()).await.expect("the head is sent");
        stream.write_all(body).await.expect("the whole body is sent: the server did not close on us");
        self.read_answer().await
    }

    async fn read_answer(&mut self) -> Answer {
        let mut status_line = String::new();
        self.stream.read_line(&mut status_line).await.unwrap();
        let status = status_line.split_whitespace().nth(1).unwrap_or_else(|| panic!("no answer: {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).await.unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        let length: usize = headers.iter().find(|(n, _)| n == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.unwrap();
        Answer { status: status.parse().unwrap(), headers, body }
    }
}

#[tokio::test]
async fn after_a_413_415_or_401_with_a_large_body_the_same_connection_serves_the_next_request() {
    let app = TestApp::spawn().await;
    let bearer = format!("Bearer {}", app.key);
    let large = json!({"serverName": "GitHub", "userId": "x".repeat(2 << 20)}).to_string();
    let medium = json!({"serverName": "GitHub", "userId": "x".repeat(600 << 10)}).to_string();
    let before = app.event_count().await;
    let mut connection = Connection::open(&app.base_url).await;
    let json_type = ("content-type", "application/json");
    let cases: [(Headers, &str, u16); 3] = [
        (&[("authorization", &bearer), json_type], &large, 413),
        (&[("authorization", &bearer), ("content-type", "text/plain")], &medium, 415),
        (&[json_type], &medium, 401),
    ];

    for (headers, body, status) in cases {
        let refused = connection.exchange("POST", "/mcp-server/instance/create", headers, body.as_bytes()).await;
        assert_eq!(refused.status, status, "{}", String::from_utf8_lossy(&refused.body));
        assert_eq!(refused.header("connection"), None, "the connection is kept");
        let next = connection.exchange("GET", "/mcp-server/servers", &[("authorization", &bearer)], b"").await;
        assert_eq!(next.status, 200, "the next request on the same connection after a {status}");
    }
    assert_eq!(app.event_count().await, before, "nothing refused was stored");
}

#[tokio::test]
async fn a_request_past_the_deadline_is_stopped_with_a_503_in_its_surfaces_format() {
    let app = TestApp::spawn_with(|settings| settings.request_timeout = std::time::Duration::from_secs(1)).await;
    let (_, klavis_key) = app.new_project("slow klavis").await;
    let (_, composio_key) = app.new_project("slow composio").await;
    // Keys not yet cached are looked up in view_api_keys, which this transaction holds.
    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE view_api_keys IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();

    let klavis = app.call_as(&klavis_key, reqwest::Method::GET, "/mcp-server/servers", None).await;
    let composio = app.composio_as(&composio_key, reqwest::Method::GET, "/api/v3/auth_configs", None).await;
    lock.rollback().await.unwrap();

    assert_eq!(klavis.status(), 503);
    let body: serde_json::Value = klavis.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("took longer than 1 s"), "{body}");
    assert_eq!(composio.status(), 503);
    let body: serde_json::Value = composio.json().await.unwrap();
    assert_eq!(body["error"]["status"], 503, "{body}");
    assert_eq!(app.call_as(&klavis_key, reqwest::Method::GET, "/mcp-server/servers", None).await.status(), 200);
}
