//! `provisioner bench`: measurements that print figures. Never assertions: the machines the
//! tests run on are shared and noisy, so speed is reported, not tested.

pub mod gateway;
pub mod http;
mod load;
mod pgbench;
pub mod relay;
pub mod replay;
mod serve_child;

/// `url` with its database name replaced.
pub(crate) fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let prefix = base.rsplit_once('/').map_or(base, |(p, _)| p);
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

/// Percentiles of a latency histogram in milliseconds.
pub(crate) fn percentiles_ms(h: &hdrhistogram::Histogram<u64>) -> (f64, f64, f64) {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    (ms(0.50), ms(0.95), ms(0.99))
}
