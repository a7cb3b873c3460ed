//! Rate limits: per API key on every authenticated route (the project's own rate, else the
//! deployment's `PROVISIONER_RATE_LIMIT_PER_KEY`), and per client address on the routes
//! without a key (the gateway's capability URLs, the OAuth browser pages:
//! `PROVISIONER_RATE_LIMIT_PER_ADDRESS`). GCRA with `governor`: a rate and a burst, no window
//! to reset, one atomic state per key.
//!
//! The limits are per process: with N replicas behind a load balancer a key may make up to N
//! times its rate in all. A refusal says when to come back (`Retry-After`) and what the
//! policy is (`RateLimit-Policy`, `RateLimit`: draft-ietf-httpapi-ratelimit-headers).

use crate::project::Caller;
use domain::project::RateLimit;
use events::ApiKeyId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use poem::http::{HeaderName, HeaderValue};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the state of keys and addresses not seen lately is dropped.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The deployment's limits; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitSettings {
    pub per_key: Option<RateLimit>,
    pub per_address: Option<RateLimit>,
}

/// A request over its limit: what the answer tells the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// When the next request would be let through.
    pub retry_after: Duration,
    pub limit: RateLimit,
    /// `per-key` or `per-address`.
    pub policy: &'static str,
}

impl Limited {
    /// Whole seconds to wait, at least one (`Retry-After` takes seconds).
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)
    }

    /// `Retry-After`, `RateLimit-Policy` (the burst `q` within `w` seconds, the time the rate
    /// takes to refill it) and `RateLimit` (none `r`emaining, `t` seconds until one is).
    pub fn headers(&self) -> [(HeaderName, HeaderValue); 3] {
        let wait = self.retry_after_secs().max(1);
        let window = self.limit.burst().div_ceil(self.limit.per_second()).max(1);
        let value = |text: String| HeaderValue::from_str(&text).expect("ASCII");
        [
            (HeaderName::from_static("retry-after"), value(wait.to_string())),
            (
                HeaderName::from_static("ratelimit-policy"),
                value(format!("\"{}\";q={};w={window}", self.policy, self.limit.burst())),
            ),
            (HeaderName::from_static("ratelimit"), value(format!("\"{}\";r=0;t={wait}", self.policy))),
        ]
    }

    /// The sentence an error body carries.
    pub fn message(&self) -> String {
        let whose = if self.policy == PER_KEY { "this API key" } else { "this address" };
        format!(
            "Too many requests from {whose} (at most {} per second, bursts of {}); retry in {} s",
            self.limit.per_second(),
            self.limit.burst(),
            self.retry_after_secs().max(1)
        )
    }
}

const PER_KEY: &str = "per-key";
const PER_ADDRESS: &str = "per-address";

#[derive(Clone, Default)]
pub struct RateLimits {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    settings: RateLimitSettings,
    /// One keyed limiter per rate in use: the keys of every project on one rate share it.
    by_rate: Mutex<HashMap<RateLimit, Arc<DefaultKeyedRateLimiter<ApiKeyId>>>>,
    by_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl RateLimits {
    pub fn new(settings: RateLimitSettings) -> Self {
        let by_address = settings.per_address.map(|limit| DefaultKeyedRateLimiter::keyed(quota(limit)));
        Self { inner: Arc::new(Inner { settings, by_rate: Mutex::default(), by_address }) }
    }

    /// Lets one request of `caller`'s key through, or says why not.
    pub fn check_key(&self, caller: &Caller) -> Result<(), Limited> {
        let Some(limit) = caller.rate_limit.or(self.inner.settings.per_key) else { return Ok(()) };
        let limiter = self.limiter_for(limit);
        limiter.check_key(&caller.key_id).map_err(|not_until| Limited {
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            limit,
            policy: PER_KEY,
        })
    }

    /// Lets one request from `address` through, or says why not.
    pub fn check_address(&self, address: IpAddr) -> Result<(), Limited> {
        let (Some(limiter), Some(limit)) = (&self.inner.by_address, self.inner.settings.per_address) else {
            return Ok(());
        };
        limiter.check_key(&address).map_err(|not_until| Limited {
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            limit,
            policy: PER_ADDRESS,
        })
    }

    fn limiter_for(&self, limit: RateLimit) -> Arc<DefaultKeyedRateLimiter<ApiKeyId>> {
        let mut by_rate = self.inner.by_rate.lock().expect("not poisoned");
        by_rate.entry(limit).or_insert_with(|| Arc::new(DefaultKeyedRateLimiter::keyed(quota(limit)))).clone()
    }

    /// Drops the state of keys and addresses whose burst has refilled, every minute, until
    /// `cancel`: memory stays bounded by the clients of the last minute.
    pub async fn sweep(self, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(SWEEP_INTERVAL) => {}
            }
            let limiters: Vec<_> = self.inner.by_rate.lock().expect("not poisoned").values().cloned().collect();
            for limiter in limiters {
                limiter.retain_recent();
            }
            if let Some(limiter) = &self.inner.by_address {
                limiter.retain_recent();
            }
        }
    }
}

fn quota(limit: RateLimit) -> Quota {
    let nonzero = |n: u32| NonZeroU32::new(n).expect("a RateLimit is at least 1");
    Quota::per_second(nonzero(limit.per_second())).allow_burst(nonzero(limit.burst()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::ProjectId;

    fn caller(rate_limit: Option<RateLimit>) -> Caller {
        Caller { project_id: ProjectId::random(), key_id: ApiKeyId::random(), rate_limit }
    }

    #[test]
    fn a_key_gets_its_burst_then_is_refused_with_the_time_to_wait_and_keys_do_not_share() {
        let limits =
            RateLimits::new(RateLimitSettings { per_key: Some(RateLimit::new(1, 3).unwrap()), ..Default::default() });
        let (a, b) = (caller(None), caller(None));
        for _ in 0..3 {
            assert!(limits.check_key(&a).is_ok());
        }
        let refused = limits.check_key(&a).unwrap_err();
        assert!(refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_secs(1), "{refused:?}");
        assert_eq!(refused.retry_after_secs(), 1);
        assert!(limits.check_key(&b).is_ok(), "another key has its own burst");
    }

    #[test]
    fn a_projects_own_rate_replaces_the_default_and_no_setting_is_no_limit() {
        let limits =
            RateLimits::new(RateLimitSettings { per_key: Some(RateLimit::new(1, 1).unwrap()), ..Default::default() });
        let generous = caller(Some(RateLimit::new(1, 5).unwrap()));
        assert!((0..5).all(|_| limits.check_key(&generous).is_ok()));
        let unlimited = RateLimits::new(RateLimitSettings::default());
        let plain = caller(None);
        assert!((0..1000).all(|_| unlimited.check_key(&plain).is_ok()));
        assert!((0..1000).all(|_| unlimited.check_address(IpAddr::from([127, 0, 0, 1])).is_ok()));
    }

    #[test]
    fn the_headers_name_the_policy_and_the_wait() {
        let limited = Limited {
            retry_after: Duration::from_millis(1500),
            limit: RateLimit::new(10, 25).unwrap(),
            policy: PER_ADDRESS,
        };
        let headers: Vec<(String, String)> =
            limited.headers().iter().map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned())).collect();
        assert_eq!(
            headers,
            [
                ("retry-after".into(), "2".into()),
                ("ratelimit-policy".into(), "\"per-address\";q=25;w=3".into()),
                ("ratelimit".into(), "\"per-address\";r=0;t=2".into()),
            ]
        );
        assert!(limited.message().contains("this address"), "{}", limited.message());
    }
}
