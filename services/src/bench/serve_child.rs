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
        Self::start_with(database_url, master_key, &[])
    }

    /// Like [`Self::start`], with more environment (the rest is the bench's own).
    pub fn start_with(database_url: &str, master_key: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .envs(env.iter().copied())
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
        self.status_mib("VmHWM:")
    }

    /// The child's resident set size now, in MiB (`VmRSS`).
    pub fn rss_mib(&self) -> Option<f64> {
        self.status_mib("VmRSS:")
    }

    fn status_mib(&self, field: &str) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib: f64 = status.lines().find_map(|l| l.strip_prefix(field))?.split_whitespace().next()?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// CPU seconds the child has used so far (user and system).
    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds_of(&self.child.id().to_string())
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user and system) a process has used, from `/proc/{pid}/stat` (`self` for the
/// bench's own). Linux counts them in USER_HZ ticks, 100 a second on every architecture it runs.
pub fn cpu_seconds_of(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count the fields after its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// CPU seconds used so far by each Postgres backend serving `database` (found by the process
/// title Postgres gives its backends, which names the database), by pid: what the calls cost
/// the bench's own database, not other users' Postgres on the same machine.
pub fn postgres_cpu_seconds(database: &str) -> std::collections::HashMap<String, f64> {
    let mut backends = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return backends };
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let title = String::from_utf8_lossy(&title);
        if title.starts_with("postgres:")
            && title.split_whitespace().any(|word| word == database)
            && let Some(seconds) = cpu_seconds_of(&pid)
        {
            backends.insert(pid, seconds);
        }
    }
    backends
}
