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

impl ServeProcess {
    /// Starts `serve` with the given environment and waits until it listens.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary());
        command.arg("serve").env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        command.env("PROVISIONER_LISTEN", "127.0.0.1:0");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start provisioner serve");
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
        let base_url = wait_for_listening(&output, &mut child);
        Self { child, base_url, output }
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
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
