//! The MCP side of the gateway tests: a real upstream MCP server (tests/upstream/upstream.py,
//! the `mcp` package's MCPServer) run as a child process, the official Python client, and a
//! small Streamable HTTP client of our own that shows every status and header.

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// The python that has the `mcp` package: scripts/test exports it; else the project's venv.
pub fn python() -> PathBuf {
    std::env::var_os("PROVISIONER_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.dev/venv/bin/python"))
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("upstream").join(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The upstream MCP server, stopped when dropped.
pub struct Upstream {
    pub url: String,
    _child: tokio::process::Child,
}

impl Upstream {
    /// The test upstream over Streamable HTTP (its `url` ends in `/mcp`).
    pub async fn start() -> Self {
        Self::start_with(&[], "/mcp").await
    }

    /// The test upstream over the legacy HTTP+SSE transport only (its `url` is the `GET /sse`).
    pub async fn start_sse() -> Self {
        Self::start_with(&["sse"], "/sse").await
    }

    async fn start_with(args: &[&str], path: &str) -> Self {
        let port = free_port();
        let child = tokio::process::Command::new(python())
            .arg(script("upstream.py"))
            .arg(port.to_string())
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the upstream MCP server starts (is the mcp package installed? run scripts/test)");
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Self { url: format!("http://127.0.0.1:{port}{path}"), _child: child };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the upstream MCP server did not listen on port {port} within 15 s");
    }
}

/// A URL where nothing listens.
pub fn dead_url() -> String {
    format!("http://127.0.0.1:{}/mcp", free_port())
}

/// Runs tests/upstream/client.py (the official client) against `url`; its JSON report.
pub async fn python_client(url: &str, caller_key: &str) -> Value {
    run_python_client(&[url, caller_key]).await
}

/// Like [`python_client`], over `transport` (`streamable-http` or `sse`, the legacy one).
pub async fn python_client_over(url: &str, caller_key: &str, transport: &str) -> Value {
    run_python_client(&[url, caller_key, transport]).await
}

/// The official client's high-level `Client` in `mode` (`legacy`, `auto`, `2026-07-28`).
pub async fn python_client_in_mode(url: &str, caller_key: &str, mode: &str) -> Value {
    run_python_client(&[url, caller_key, mode]).await
}

async fn run_python_client(args: &[&str]) -> Value {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(python()).arg(script("client.py")).args(args).output(),
    )
    .await
    .expect("the Python client finishes within 60 s")
    .expect("the Python client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!("the Python client printed no JSON: {stdout} {}", String::from_utf8_lossy(&output.stderr))
    })
}

/// What one HTTP exchange with the gateway gave.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    /// The JSON-RPC message answering the request (from a JSON body or an SSE stream), or
    /// the JSON body of any other answer; `Null` when there is none.
    pub message: Value,
}

impl Answer {
    pub fn error_code(&self) -> Option<i64> {
        self.message.pointer("/error/code").and_then(Value::as_i64)
    }

    pub fn error_message(&self) -> &str {
        self.message.pointer("/error/message").and_then(Value::as_str).unwrap_or_default()
    }

    /// The names of a `tools/list` result.
    pub fn tool_names(&self) -> Vec<String> {
        let tools = self.message.pointer("/result/tools").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut names: Vec<String> = tools.iter().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect();
        names.sort();
        names
    }

    /// The text of a `tools/call` result's first content item.
    pub fn text(&self) -> &str {
        self.message.pointer("/result/content/0/text").and_then(Value::as_str).unwrap_or_default()
    }
}

/// A Streamable HTTP session, by hand.
pub struct Session {
    pub http: reqwest::Client,
    pub url: String,
    pub session_id: Option<String>,
    /// Extra headers on every request (a caller's own key, to check it goes nowhere).
    pub extra: Vec<(String, String)>,
    next_id: i64,
}

impl Session {
    pub fn new(url: &str) -> Self {
        Self { http: reqwest::Client::new(), url: url.to_owned(), session_id: None, extra: Vec::new(), next_id: 1 }
    }

    /// `initialize` then `notifications/initialized`; keeps the session id.
    pub async fn open(url: &str) -> (Self, Answer) {
        let mut session = Self::new(url);
        let answer = session.initialize().await;
        (session, answer)
    }

    /// Like [`Self::open`], sending the caller's own key in every header a key could hide in.
    pub async fn open_with_caller_key(mut self, key: &str) -> (Self, Answer) {
        self.extra = vec![
            ("authorization".into(), format!("Bearer {key}")),
            ("x-api-key".into(), key.into()),
            ("x-user-api-key".into(), key.into()),
            ("cookie".into(), format!("session={key}")),
        ];
        let answer = self.initialize().await;
        (self, answer)
    }

    pub async fn initialize(&mut self) -> Answer {
        let params = json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "gateway-tests", "version": "1"}});
        let answer = self.request("initialize", params).await;
        if let Some(id) = answer.headers.get("mcp-session-id") {
            self.session_id = Some(id.to_str().unwrap().to_owned());
        }
        if answer.message.get("result").is_some() {
            let note = self.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
            assert_eq!(note.status, 202, "{note:?}");
        }
        answer
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Answer {
        let id = self.next_id;
        self.next_id += 1;
        self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).await
    }

    pub async fn list_tools(&mut self) -> Answer {
        self.request("tools/list", json!({})).await
    }

    pub async fn call_tool(&mut self, name: &str, arguments: Value) -> Answer {
        self.request("tools/call", json!({"name": name, "arguments": arguments})).await
    }

    pub async fn post(&self, body: &Value) -> Answer {
        let mut request = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(body);
        if let Some(id) = &self.session_id {
            request = request.header("mcp-session-id", id);
        }
        for (name, value) in &self.extra {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("the gateway answers");
        answer_of(response, body.get("id")).await
    }

    /// `GET` in the session: the server's stream, left open (the response is not read).
    pub async fn open_stream(&self) -> reqwest::Response {
        self.http
            .get(&self.url)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", self.session_id.as_deref().expect("a session"))
            .send()
            .await
            .expect("the gateway answers")
    }

    pub async fn delete(&self) -> Answer {
        let mut request = self.http.delete(&self.url);
        if let Some(id) = &self.session_id {
            request = request.header("mcp-session-id", id);
        }
        for (name, value) in &self.extra {
            request = request.header(name, value);
        }
        answer_of(request.send().await.expect("the gateway answers"), None).await
    }
}

async fn answer_of(response: reqwest::Response, id: Option<&Value>) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let is_stream = headers.get("content-type").is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"));
    let text = response.text().await.expect("the body is read");
    let message = if is_stream {
        sse_messages(&text).into_iter().find(|m| id.is_none() || m.get("id") == id).unwrap_or(Value::Null)
    } else if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON (status {status}): {text}"))
    };
    Answer { status, headers, message }
}

fn sse_messages(text: &str) -> Vec<Value> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
            serde_json::from_str(&data.join("\n")).ok()
        })
        .collect()
}
