//! The three measurements, each run the same way against the upstream directly and through
//! the gateway: a closed loop (sessions calling as fast as they are answered), an open loop
//! (calls sent at a fixed rate, latency from when each was due), and sessions held open.

use super::session::{Call, Endpoint, McpSession};
use crate::bench::load::{Measurement, histogram};
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Sessions opened at once while setting up (the rest wait): no SYN flood at the listener.
const OPENING_CONCURRENCY: usize = 64;

/// When a measurement ends: at `duration`, or earlier after `calls` calls in all.
#[derive(Clone, Copy)]
pub struct Limit {
    pub duration: Duration,
    pub calls: Option<u64>,
}

/// `n` sessions, each initialized over its own connection.
pub async fn open_sessions(endpoint: &Endpoint, n: usize) -> anyhow::Result<Vec<McpSession>> {
    let opened: Vec<anyhow::Result<McpSession>> = futures::stream::iter(0..n)
        .map(|_| McpSession::open(endpoint))
        .buffer_unordered(OPENING_CONCURRENCY)
        .collect()
        .await;
    let failed = opened.iter().filter(|s| s.is_err()).count();
    match opened.into_iter().collect::<anyhow::Result<Vec<_>>>() {
        Ok(sessions) => Ok(sessions),
        Err(e) => Err(e.context(format!("{failed} of {n} sessions could not be opened"))),
    }
}

/// Each session's standing stream (`GET`), opened and kept.
pub async fn listen_all(sessions: &[McpSession]) -> anyhow::Result<Vec<reqwest::Response>> {
    futures::stream::iter(sessions)
        .map(McpSession::listen)
        .buffer_unordered(OPENING_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// `sessions` sessions, each calling the tool again as soon as it is answered. Sessions are
/// opened and have made one call before the clock starts.
pub async fn closed_loop(
    endpoint: &Endpoint,
    call: &Call,
    sessions: usize,
    limit: Limit,
) -> anyhow::Result<Measurement> {
    let sessions = warmed(endpoint, call, sessions).await?;
    let claimed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + limit.duration;
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|mut session| {
            let (call, claimed) = (call.clone(), claimed.clone());
            tokio::spawn(async move {
                let mut part = empty();
                while Instant::now() < deadline
                    && limit.calls.is_none_or(|max| claimed.fetch_add(1, Ordering::Relaxed) < max)
                {
                    let sent = Instant::now();
                    let ok = session.call(&call).await;
                    record(&mut part, sent.elapsed(), ok);
                }
                part
            })
        })
        .collect();
    let mut total = empty();
    for task in tasks {
        merge(&mut total, task.await?);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// Calls due at `rate` per second for `duration`, taken by whichever of `sessions` sessions
/// is free; each latency counts from when the call was due, so a call that waited for a free
/// session counts its wait (no coordinated omission).
pub async fn open_loop(
    endpoint: &Endpoint,
    call: &Call,
    sessions: usize,
    rate: u64,
    duration: Duration,
) -> anyhow::Result<Measurement> {
    let sessions = warmed(endpoint, call, sessions).await?;
    let total_calls = (rate as f64 * duration.as_secs_f64()).round() as u64;
    let (due, queue) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let queue = Arc::new(tokio::sync::Mutex::new(queue));
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|mut session| {
            let (call, queue) = (call.clone(), queue.clone());
            tokio::spawn(async move {
                let mut part = empty();
                loop {
                    let next = queue.lock().await.recv().await;
                    let Some(due_at) = next else { break };
                    let ok = session.call(&call).await;
                    record(&mut part, due_at.elapsed(), ok);
                }
                part
            })
        })
        .collect();
    let started = Instant::now();
    for n in 0..total_calls {
        let due_at = started + Duration::from_secs_f64(n as f64 / rate as f64);
        tokio::time::sleep_until(due_at.into()).await;
        due.send(due_at)?;
    }
    drop(due);
    let mut total = empty();
    for task in tasks {
        merge(&mut total, task.await?);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// Opened sessions that have each made one call (connections up, first-call costs paid).
async fn warmed(endpoint: &Endpoint, call: &Call, n: usize) -> anyhow::Result<Vec<McpSession>> {
    let mut sessions = open_sessions(endpoint, n).await?;
    let warm = futures::future::join_all(sessions.iter_mut().map(|s| s.call(call))).await;
    let failed = warm.iter().filter(|ok| !**ok).count();
    if failed > 0 {
        anyhow::bail!("{failed} of {n} warm-up calls of {} at {} failed", call.tool, endpoint.url);
    }
    Ok(sessions)
}

fn empty() -> Measurement {
    Measurement { requests: 0, errors: 0, elapsed: Duration::ZERO, latency: histogram() }
}

fn record(part: &mut Measurement, latency: Duration, ok: bool) {
    part.latency.record(latency.as_micros().max(1) as u64).ok();
    part.requests += 1;
    part.errors += u64::from(!ok);
}

fn merge(total: &mut Measurement, part: Measurement) {
    total.latency.add(part.latency).expect("same bounds");
    total.requests += part.requests;
    total.errors += part.errors;
}
