//! Real `nats-server` processes (>= 2.10, JetStream) that tests can stop, kill and restart, alone or as
//! a 3-node cluster, to see how the relay behaves when its NATS goes away and comes back.
//!
//! The binary comes from `PROVISIONER_TEST_NATS_SERVER` (exported by `scripts/test`). Each server gets
//! its own temp dir (JetStream store + log), removed on drop.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt;

/// Ports picked by binding port 0 can be taken by someone else before the server binds them,
/// so a start that fails that way is retried on fresh ports this many times.
const START_ATTEMPTS: usize = 5;

fn nats_server_binary() -> String {
    std::env::var("PROVISIONER_TEST_NATS_SERVER").unwrap_or_else(|_| {
        panic!("PROVISIONER_TEST_NATS_SERVER is not set: run the tests through scripts/test, or point it at a nats-server >= 2.10")
    })
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// Routes of a cluster node: every node solicits all of them (its own included, which NATS ignores).
struct ClusterArgs {
    cluster_name: String,
    cluster_port: u16,
    routes: String,
}

/// One `nats-server` with JetStream on loopback, owning its store dir and log.
pub struct NatsServer {
    name: String,
    port: u16,
    cluster: Option<ClusterArgs>,
    dir: PathBuf,
    child: Option<Child>,
    /// `max_payload` for the next (re)start, when not the server's default (1 MiB).
    max_payload: Option<usize>,
    /// More configuration file text (TLS, authorization), for every (re)start.
    config: Option<String>,
}

impl NatsServer {
    /// A fresh standalone server with its own store dir and port, accepting connections.
    pub async fn start() -> Self {
        for attempt in 1..=START_ATTEMPTS {
            let mut server = Self::new(format!("test-{}", short_id()), free_port(), None);
            server.spawn();
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(e) if attempt < START_ATTEMPTS => {
                    eprintln!("nats-server did not start ({e}); retrying on another port")
                }
                Err(e) => panic!("nats-server did not start: {e}\n{}", server.log()),
            }
        }
        unreachable!()
    }

    fn new(name: String, port: u16, cluster: Option<ClusterArgs>) -> Self {
        let dir = std::env::temp_dir().join(format!("nats-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create nats temp dir");
        Self { name, port, cluster, dir, child: None, max_payload: None, config: None }
    }

    /// A standalone server with this configuration file text besides the flags (a `tls` or
    /// `authorization` block, say). Paths in it are best absolute.
    pub async fn start_with_config(config: &str) -> Self {
        let mut server = Self::start().await;
        server.config = Some(config.to_owned());
        server.restart().await;
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A standalone server whose messages may take at most `max_payload` bytes.
    pub async fn start_with_max_payload(max_payload: usize) -> Self {
        let mut server = Self::start().await;
        server.set_max_payload(max_payload);
        server.restart().await;
        server
    }

    /// The `max_payload` the server gets at its next restart (an operator lowering its cap).
    pub fn set_max_payload(&mut self, max_payload: usize) {
        self.max_payload = Some(max_payload);
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Graceful shutdown (SIGTERM), as an operator would do; SIGKILL if it takes more than 10 s.
    pub async fn stop(&mut self) {
        let Some(child) = self.child.as_mut() else { return };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                self.child = None;
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!("nats-server {} ignored SIGTERM for 10 s; killing it", self.name);
        self.kill();
    }

    /// A crash (SIGKILL): no goodbye to clients, no flush of the store beyond what it already wrote.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same store (after `stop` or `kill`), so clients
    /// reconnect to the same URL and find their streams. Retries while the port is briefly unavailable.
    pub async fn restart(&mut self) {
        self.kill();
        for attempt in 1..=START_ATTEMPTS {
            self.spawn();
            match self.wait_ready().await {
                Ok(()) => return,
                Err(e) if attempt < START_ATTEMPTS => {
                    eprintln!("nats-server {} did not restart ({e}); retrying", self.name);
                    self.kill();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => panic!("nats-server {} did not restart: {e}\n{}", self.name, self.log()),
            }
        }
    }

    /// Everything the server printed over all its runs, for the message of a failing test.
    pub fn log(&self) -> String {
        std::fs::read(self.log_path()).map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("nats.log")
    }

    fn spawn(&mut self) {
        let log: File = OpenOptions::new().create(true).append(true).open(self.log_path()).expect("open nats log");
        let mut command = Command::new(nats_server_binary());
        command.args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-n", &self.name]);
        command.arg("-sd").arg(self.dir.join("store"));
        if self.max_payload.is_some() || self.config.is_some() {
            // No command-line flag sets these; a config file does, and the flags above still win.
            let mut text = self.config.clone().unwrap_or_default();
            if let Some(max_payload) = self.max_payload {
                text.push_str(&format!("\nmax_payload: {max_payload}\n"));
            }
            let config = self.dir.join("nats.conf");
            std::fs::write(&config, text).expect("write nats.conf");
            command.arg("-c").arg(config);
        }
        if let Some(cluster) = &self.cluster {
            command.args(["--cluster_name", &cluster.cluster_name]);
            command.args(["--cluster", &format!("nats://127.0.0.1:{}", cluster.cluster_port)]);
            command.args(["--routes", &cluster.routes]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", nats_server_binary()));
        self.child = Some(child);
    }

    /// Ready when its client port greets with INFO naming this server: a bare TCP connect could reach
    /// another process that took the port while ours is about to exit with "address already in use".
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!("exited early with {status}"));
            }
            if self.greets().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err("not accepting connections within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn greets(&self) -> bool {
        let attempt = async {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
            let mut line = String::new();
            tokio::io::BufReader::new(stream).read_line(&mut line).await.ok()?;
            let info: serde_json::Value = serde_json::from_str(line.strip_prefix("INFO ")?).ok()?;
            Some(info["server_name"] == self.name.as_str())
        };
        tokio::time::timeout(Duration::from_secs(1), attempt).await.ok().flatten().unwrap_or(false)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A JetStream cluster on loopback, so that R3 streams survive losing one node.
pub struct NatsCluster {
    nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `size` nodes (3 in practice) and waits until an R3 stream can be created.
    pub async fn start(size: usize) -> Self {
        for attempt in 1..=START_ATTEMPTS {
            let cluster = Self::spawn(size);
            let (e, cluster) = match cluster.wait_listening().await {
                Ok(mut cluster) => match cluster.wait_jetstream().await {
                    Ok(()) => return cluster,
                    Err(e) => (e, cluster),
                },
                Err(failed) => failed,
            };
            // A node whose route port was taken meanwhile never joins: start over on other ports.
            assert!(attempt < START_ATTEMPTS, "nats cluster did not start: {e}\n{}", cluster.logs());
            eprintln!("nats cluster did not start ({e}); retrying on other ports");
            drop(cluster);
        }
        unreachable!()
    }

    fn spawn(size: usize) -> Self {
        let id = short_id();
        let cluster_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let routes = cluster_ports.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect::<Vec<_>>().join(",");
        let nodes = cluster_ports
            .iter()
            .enumerate()
            .map(|(i, &cluster_port)| {
                let args = ClusterArgs { cluster_name: format!("test-{id}"), cluster_port, routes: routes.clone() };
                let mut node = NatsServer::new(format!("n{i}-{id}"), free_port(), Some(args));
                node.spawn();
                node
            })
            .collect();
        Self { nodes }
    }

    async fn wait_listening(mut self) -> Result<Self, (String, Self)> {
        for i in 0..self.nodes.len() {
            if let Err(e) = self.nodes[i].wait_ready().await {
                return Err((format!("node {i}: {e}"), self));
            }
        }
        Ok(self)
    }

    /// Listening is not enough: JetStream needs a meta leader, and for a little while after the
    /// election R3 streams still fail with "insufficient resources" until all peers are known.
    async fn wait_jetstream(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let urls: Vec<String> = self.nodes.iter().map(NatsServer::url).collect();
        let client = async_nats::connect(urls)
            .await
            .unwrap_or_else(|e| panic!("connect to the nats cluster: {e}\n{}", self.logs()));
        let mut jetstream = async_nats::jetstream::new(client);
        // Without a meta leader requests go unanswered: fail them fast and ask again.
        jetstream.set_timeout(Duration::from_secs(2));
        let mut last_error = String::new();
        while Instant::now() < deadline {
            match jetstream.query_account().await {
                Ok(_) => break,
                Err(e) => last_error = format!("account info: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        while Instant::now() < deadline {
            let probe = async_nats::jetstream::stream::Config {
                name: "READY_PROBE".into(),
                subjects: vec!["ready.probe".into()],
                num_replicas: 3.min(self.nodes.len()),
                ..Default::default()
            };
            match jetstream.create_stream(probe).await {
                Ok(_) => match jetstream.delete_stream("READY_PROBE").await {
                    Ok(_) => return Ok(()),
                    Err(e) => last_error = format!("delete probe stream: {e}"),
                },
                Err(e) => last_error = format!("create R3 probe stream: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("JetStream not ready within 30 s ({last_error})"))
    }

    /// Comma-separated client URLs of all nodes, the form `NATS_URL` takes. (`async_nats::connect`
    /// does not split a string: give it `urls().split(',').collect::<Vec<_>>()`.)
    pub fn urls(&self) -> String {
        self.nodes.iter().map(NatsServer::url).collect::<Vec<_>>().join(",")
    }

    pub fn url(&self, node: usize) -> String {
        self.nodes[node].url()
    }

    /// Crashes one node (SIGKILL); the other two keep quorum.
    pub fn kill(&mut self, node: usize) {
        self.nodes[node].kill();
    }

    pub fn logs(&self) -> String {
        self.nodes.iter().enumerate().map(|(i, n)| format!("=== nats node {i} ({}) ===\n{}", n.name, n.log())).collect()
    }
}

impl Drop for NatsCluster {
    /// All nodes die before any dir goes, so no survivor logs about lost peers into a removed dir.
    fn drop(&mut self) {
        self.nodes.iter_mut().for_each(NatsServer::kill);
    }
}
