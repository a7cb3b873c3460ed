//! The ceiling: what Postgres alone does for the same work, measured with pgbench at the same
//! concurrency, with per-transaction logs for percentiles.

use anyhow::Context;
use hdrhistogram::Histogram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// One create's SQL: read the slot's stream, append its first event, commit (the statements
/// postgres-es runs, on the same table with its triggers and indexes). The JSON has a space
/// after every colon: pgbench would read `:name` as one of its variables.
pub const CREATE_SCRIPT: &str = r#"\set n random(1, 9000000000000000)
BEGIN;
SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata FROM events WHERE aggregate_type = 'instance' AND aggregate_id = 'pgbench-' || :client_id || '-' || :n ORDER BY sequence;
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ('instance', 'pgbench-' || :client_id || '-' || :n, 1, 'instance.created', '2.0', '{"InstanceCreated": {"slot": {"project_id": "0b9d8a4e-9c52-4f55-9a0e-3d1d8bb7e0a1","server": {"kind": "catalog","slug": "gmail"},"server_name": "Gmail","user_id": "pgbench-user"},"instance_id": "5d1b3f0e-0a59-4d4e-9d8a-0b5d7e4c1a2f","settings": {"platform": null,"connection_type": "StreamableHttp","legacy": false,"read_only": false}}}', '{"actor": "api_key pgbench","request_id": "pgbench"}');
COMMIT;
"#;

pub struct Ceiling {
    pub transactions_per_second: f64,
    /// Latencies in microseconds.
    pub latency: Histogram<u64>,
}

fn pgbench_binary() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("PROVISIONER_TEST_PG_BIN").or_else(|_| std::env::var("PG_BIN")) {
        let candidate = Path::new(&dir).join("pgbench");
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    which("pgbench").context("pgbench not found: install postgresql-contrib or set PG_BIN")
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.exists()))
}

/// Loads pgbench's own tables (for the select-only ceiling).
pub fn initialise(url: &str) -> anyhow::Result<()> {
    let status = Command::new(pgbench_binary()?).args(["-i", "-q", "-s", "10", url]).status()?;
    anyhow::ensure!(status.success(), "pgbench -i failed");
    Ok(())
}

/// Runs pgbench (`script`, or the built-in select-only one when `None`) and reads back its
/// per-transaction log.
pub fn run(url: &str, script: Option<&str>, clients: usize, duration: Duration) -> anyhow::Result<Ceiling> {
    let dir = std::env::temp_dir().join(format!("provisioner-pgbench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let prefix = dir.join("log");
    let mut command = Command::new(pgbench_binary()?);
    command
        .args(["-n", "-M", "prepared", "-c", &clients.to_string(), "-j", "2", "-T", &duration.as_secs().to_string()])
        .arg("-l")
        .arg(format!("--log-prefix={}", prefix.display()));
    match script {
        Some(sql) => {
            let file = dir.join("script.sql");
            std::fs::write(&file, sql)?;
            command.arg("-f").arg(file);
        }
        None => {
            command.arg("-S");
        }
    }
    let output = command.arg(url).output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(output.status.success(), "pgbench failed: {}{}", stdout, String::from_utf8_lossy(&output.stderr));
    let tps = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("tps = ").and_then(|rest| rest.split_whitespace().next()).and_then(|n| n.parse().ok())
        })
        .context("no tps in pgbench's output")?;
    let latency = read_logs(&dir)?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(Ceiling { transactions_per_second: tps, latency })
}

/// pgbench's `-l` lines: `client_id transaction_no time script_no time_epoch time_us`, with
/// the latency (`time`) in microseconds.
fn read_logs(dir: &Path) -> anyhow::Result<Histogram<u64>> {
    let mut latency = Histogram::new_with_bounds(1, 60_000_000, 3)?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("log.")) {
            continue;
        }
        for line in std::fs::read_to_string(&path)?.lines() {
            if let Some(micros) = line.split_whitespace().nth(2).and_then(|t| t.parse::<u64>().ok()) {
                latency.record(micros.max(1)).ok();
            }
        }
    }
    Ok(latency)
}
