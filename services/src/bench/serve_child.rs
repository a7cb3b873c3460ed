//! `provisioner serve` as a child process of the bench, so that its memory can be read.

use anyhow::Context;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct ServeChild {
    child: Child,
    pub base_url: String,
}

impl ServeChild {
    pub fn start(database_url: &str, master_key: &str) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("PROVISIONER_LISTEN", "127.0.0.1:0")
            .env("PROVISIONER_MASTER_KEY", master_key)
            .env("RUST_LOG", "warn,services::startup=info")
            .env_remove("PROVISIONER_PUBLIC_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start provisioner serve")?;
        let stderr = child.stderr.take().expect("piped");
        let (found, listening) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let url =
                        line[at + "listening on ".len()..].split_whitespace().next().unwrap_or_default().to_owned();
                    found.send(url).ok();
                } else if line.contains("WARN") || line.contains("ERROR") {
                    eprintln!("  serve: {line}");
                }
            }
        });
        let base_url = listening.recv_timeout(Duration::from_secs(60)).context("provisioner serve did not listen")?;
        Ok(Self { child, base_url })
    }

    /// The child's peak resident set size, in MiB (`VmHWM`).
    pub fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib: f64 =
            status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.split_whitespace().next()?.parse().ok()?;
        Some(kib / 1024.0)
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
