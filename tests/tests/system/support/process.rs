use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `provisioner serve`, the real binary, as a child process whose output is captured.
pub struct ServeProcess {
    child: Child,
    pub base_url: String,
    output: Arc<Mutex<Vec<String>>>,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_provisioner-e2e")
}

/// Output lines of a child process, collected as they come.
type Output = Arc<Mutex<Vec<String>>>;

/// `provisioner <args>` with exactly this environment (and PATH), its output captured.
fn spawn_captured(args: &[&str], env: &[(&str, &str)]) -> (Child, Output) {
    let subcommand = args.join(" ");
    let mut command = Command::new(binary());
    command.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start provisioner {subcommand}: {e}"));
    let output = Arc::new(Mutex::new(Vec::new()));
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let output = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                output.lock().unwrap().push(line);
            }
        });
    }
    (child, output)
}

impl ServeProcess {
    /// Starts `serve` with the given environment and waits until it listens.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let mut env = env.to_vec();
        env.push(("PROVISIONER_LISTEN", "127.0.0.1:0"));
        let (mut child, output) = spawn_captured(&["serve"], &env);
        let base_url = wait_for_listening(&output, &mut child);
        Self { child, base_url, output }
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// The `/metrics` URL it logged (with `PROVISIONER_METRICS_LISTEN` set; logged before it
    /// listens, so already there once started).
    pub fn metrics_url(&self) -> String {
        let output = self.output.lock().unwrap();
        output
            .iter()
            .find_map(|line| {
                let start = line.find("metrics on http://")? + "metrics on ".len();
                Some(line[start..].split_whitespace().next()?.trim_end_matches('"').to_owned())
            })
            .unwrap_or_else(|| panic!("no metrics listener logged:\n{}", output.join("\n")))
    }

    /// SIGTERM, as an operator (or an orchestrator) stops it.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -TERM {}", self.child.id());
    }

    /// Its exit status, once it has exited, waiting at most `timeout`; none if still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id, to read its memory use in /proc.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The address from the `listening on http://…` log line.
fn wait_for_listening(output: &Arc<Mutex<Vec<String>>>, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(url) = output.lock().unwrap().iter().find_map(|line| {
            let start = line.find("listening on http://")? + "listening on ".len();
            Some(line[start..].split_whitespace().next()?.trim_end_matches('"').to_owned())
        }) {
            return url;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("provisioner serve exited with {status}:\n{}", output.lock().unwrap().join("\n"));
        }
        assert!(
            Instant::now() < deadline,
            "provisioner serve did not listen within 60 s:\n{}",
            output.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `provisioner relay`, the real binary, alone: to kill it with SIGKILL, or run two.
pub struct RelayProcess {
    child: Child,
    output: Output,
}

impl RelayProcess {
    pub fn start(database_url: &str, nats_url: &str) -> Self {
        Self::start_with(database_url, nats_url, &[])
    }

    /// With more environment (`PROVISIONER_NATS_DUPLICATE_WINDOW_SECS`, ...).
    pub fn start_with(database_url: &str, nats_url: &str, env: &[(&str, &str)]) -> Self {
        let mut all = vec![("DATABASE_URL", database_url), ("NATS_URL", nats_url), ("RUST_LOG", "info")];
        all.extend_from_slice(env);
        let (child, output) = spawn_captured(&["relay"], &all);
        Self { child, output }
    }

    /// Whether it has logged a line containing `text`.
    pub fn said(&self, text: &str) -> bool {
        self.output.lock().unwrap().iter().any(|line| line.contains(text))
    }

    /// Waits until it logs a line containing `text`.
    pub async fn wait_for(&mut self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.said(text) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("provisioner relay exited with {status}:\n{}", self.output());
            }
            assert!(Instant::now() < deadline, "the relay did not say `{text}` within {timeout:?}:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no shutdown code runs, connections just drop.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A one-shot command's outcome.
#[derive(Debug)]
pub struct CliRun {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A new project and an API key of it, made with the CLI as an operator would; the key.
pub async fn cli_project_key(database_url: &str, name: &str) -> String {
    let env = [("DATABASE_URL", database_url)];
    let project = run_cli(&["project", "create", name], &env).await.stdout.trim().to_owned();
    run_cli(&["key", "create", "--project", &project], &env).await.stdout.trim().to_owned()
}

/// Runs `provisioner <args>` to its end with exactly this environment (and PATH).
pub async fn run_cli(args: &[&str], env: &[(&str, &str)]) -> CliRun {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    tokio::task::spawn_blocking(move || {
        let output = Command::new(binary())
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .output()
            .unwrap_or_else(|e| panic!("run provisioner {args:?}: {e}"));
        CliRun {
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}
