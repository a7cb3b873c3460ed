//! The figures of `bench gateway` and the goals, each said met or missed with the
//! margin. Printed, never asserted.

use crate::bench::load::Measurement;
use crate::bench::percentiles_ms;

/// Throughput through the gateway, as a share of direct, at least.
pub const MIN_THROUGHPUT_RATIO: f64 = 0.6;
/// Added latency at the open-loop rate, at most (ms).
pub const MAX_ADDED_P50_MS: f64 = 1.0;
pub const MAX_ADDED_P99_MS: f64 = 5.0;
/// `serve`'s RSS with the held sessions open, at most (MiB).
pub const MAX_SESSIONS_RSS_MIB: f64 = 100.0;

/// One measurement, with the CPU the processes used during it.
pub struct Row<'a> {
    pub name: &'a str,
    pub measured: &'a Measurement,
    /// CPU seconds of `serve` (none for the direct path), of the Postgres backends of the
    /// bench's database and of the bench process (client and, unless external, upstream).
    pub serve_cpu: Option<f64>,
    pub postgres_cpu: Option<f64>,
    pub bench_cpu: Option<f64>,
}

/// `serve`'s memory through the held-sessions phase.
pub struct Memory {
    pub sessions: usize,
    pub idle: Option<f64>,
    pub before: Option<f64>,
    pub initialized: Option<f64>,
    pub listening: Option<f64>,
    pub peak: Option<f64>,
}

pub fn table(title: &str, rows: &[Row<'_>]) {
    println!("\n{title}");
    println!(
        "{:<10} {:>10} {:>9} {:>9} {:>9} {:>8} {:>10} {:>10} {:>10}",
        "", "calls/s", "p50 ms", "p95 ms", "p99 ms", "errors", "serve CPU", "Postgres", "bench CPU"
    );
    for row in rows {
        let (p50, p95, p99) = percentiles_ms(&row.measured.latency);
        let per_call = |cpu: Option<f64>| match cpu {
            Some(seconds) if row.measured.requests > 0 => {
                format!("{:.0}", seconds * 1e6 / row.measured.requests as f64)
            }
            _ => "-".to_owned(),
        };
        println!(
            "{:<10} {:>10.0} {p50:>9.2} {p95:>9.2} {p99:>9.2} {:>8} {:>10} {:>10} {:>10}",
            row.name,
            row.measured.per_second(),
            row.measured.errors,
            per_call(row.serve_cpu),
            per_call(row.postgres_cpu),
            per_call(row.bench_cpu)
        );
    }
    println!(
        "(CPU columns: µs of CPU per call, of serve, of the Postgres backends of its database, of the bench process)"
    );
}

pub fn memory(memory: &Memory) {
    let mib = |v: Option<f64>| v.map_or_else(|| "unknown".to_owned(), |v| format!("{v:.1} MiB"));
    println!("\nserve's RSS (VmRSS), {} sessions opened through the gateway and held:", memory.sessions);
    println!("  after setup, idle:                  {}", mib(memory.idle));
    println!("  before opening the sessions:        {}", mib(memory.before));
    println!("  all initialized (connections idle): {}", mib(memory.initialized));
    println!("  with each session's GET stream:     {}", mib(memory.listening));
    println!("  peak (VmHWM):                       {}", mib(memory.peak));
}

/// A goal: its figure and whether it is met.
#[derive(Debug, PartialEq)]
pub struct Verdict {
    pub goal: String,
    pub figure: String,
    pub met: bool,
}

/// The four goals, from the closed-loop rates, the open-loop latencies and the memory.
pub fn verdicts(
    closed: (&Measurement, &Measurement),
    open: (&Measurement, &Measurement),
    rate: u64,
    memory: &Memory,
) -> Vec<Verdict> {
    let ratio = closed.1.per_second() / closed.0.per_second();
    let (direct_p50, _, direct_p99) = percentiles_ms(&open.0.latency);
    let (gateway_p50, _, gateway_p99) = percentiles_ms(&open.1.latency);
    let (added_p50, added_p99) = (gateway_p50 - direct_p50, gateway_p99 - direct_p99);
    let mut verdicts = vec![
        Verdict {
            goal: format!("gateway throughput >= {MIN_THROUGHPUT_RATIO}x direct"),
            figure: format!("{ratio:.2}x"),
            met: ratio >= MIN_THROUGHPUT_RATIO,
        },
        Verdict {
            goal: format!("added p50 <= {MAX_ADDED_P50_MS} ms at {rate} calls/s"),
            figure: format!("{added_p50:+.2} ms"),
            met: added_p50 <= MAX_ADDED_P50_MS,
        },
        Verdict {
            goal: format!("added p99 <= {MAX_ADDED_P99_MS} ms at {rate} calls/s"),
            figure: format!("{added_p99:+.2} ms"),
            met: added_p99 <= MAX_ADDED_P99_MS,
        },
    ];
    if let Some(rss) = memory.listening {
        verdicts.push(Verdict {
            goal: format!("serve's RSS with {} sessions <= {MAX_SESSIONS_RSS_MIB} MiB", memory.sessions),
            figure: format!("{rss:.1} MiB"),
            met: rss <= MAX_SESSIONS_RSS_MIB,
        });
    }
    verdicts
}

pub fn goals(verdicts: &[Verdict]) {
    println!("\ngoals:");
    for v in verdicts {
        println!("  {:<44} {:>12}   {}", v.goal, v.figure, if v.met { "met" } else { "MISSED" });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::load::histogram;
    use std::time::Duration;

    fn measured(requests: u64, seconds: u64, latency_us: u64) -> Measurement {
        let mut latency = histogram();
        latency.record_n(latency_us, requests).unwrap();
        Measurement { requests, errors: 0, elapsed: Duration::from_secs(seconds), latency }
    }

    #[test]
    fn each_goal_is_judged_on_its_own_figure() {
        let memory =
            Memory { sessions: 1000, idle: None, before: None, initialized: None, listening: Some(120.0), peak: None };
        let closed = (measured(1000, 1, 500), measured(700, 1, 900));
        let open = (measured(100, 1, 300), measured(100, 1, 1500));
        let verdicts = verdicts((&closed.0, &closed.1), (&open.0, &open.1), 1000, &memory);
        let met: Vec<(String, bool)> = verdicts.iter().map(|v| (v.figure.clone(), v.met)).collect();
        assert_eq!(
            met,
            [
                ("0.70x".to_owned(), true),
                ("+1.20 ms".to_owned(), false),
                ("+1.20 ms".to_owned(), true),
                ("120.0 MiB".to_owned(), false)
            ]
        );
    }
}
