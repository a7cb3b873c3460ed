//! A closed-loop HTTP load generator: `connections` tasks, each with its own keep-alive
//! connection, sending one request after another for a fixed time.

use hdrhistogram::Histogram;
use std::future::Future;
use std::time::{Duration, Instant};

pub struct Measurement {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Latencies in microseconds.
    pub latency: Histogram<u64>,
}

impl Measurement {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Runs `request(client, connection, n)` in a loop on every connection until `duration` has
/// passed; a request answers whether it succeeded.
pub async fn drive<F, Fut>(connections: usize, duration: Duration, request: F) -> Measurement
where
    F: Fn(reqwest::Client, usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|connection| {
            let request = request.clone();
            tokio::spawn(async move {
                // One client per task: its own connection, kept alive.
                let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("a client");
                let (mut latency, mut requests, mut errors) = (histogram(), 0u64, 0u64);
                let mut n = 0;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let ok = request(client.clone(), connection, n).await;
                    latency.record(sent.elapsed().as_micros() as u64).ok();
                    requests += 1;
                    errors += u64::from(!ok);
                    n += 1;
                }
                (latency, requests, errors)
            })
        })
        .collect();
    let mut total = Measurement { requests: 0, errors: 0, elapsed: Duration::ZERO, latency: histogram() };
    for task in tasks {
        let (latency, requests, errors) = task.await.expect("a load task");
        total.latency.add(latency).expect("same bounds");
        total.requests += requests;
        total.errors += errors;
    }
    total.elapsed = started.elapsed();
    total
}
