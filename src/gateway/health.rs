//! Upstream health per provider: every attempt counted (answered or failed) and the latency
//! of each answered one (attempt start to response head) put in a fixed bucket, with relaxed
//! atomic adds and nothing else on the request path. A background task
//! ([`crate::server`]'s "upstream health") takes the counts every few seconds and adds them to
//! the hourly rollup in Postgres (`store::upstream_health`), which `GET /v1/upstream-health`
//! reads; the same task keeps a breaker incident open while a provider's circuit is open.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use crate::domain::upstream_health::{BUCKETS, LATENCY_BOUNDS_MS, bucket};

/// One provider's counts since they were last taken.
#[derive(Debug)]
pub struct ProviderHealth {
    attempts: AtomicU64,
    failures: AtomicU64,
    latency: [AtomicU64; BUCKETS],
}

impl Default for ProviderHealth {
    fn default() -> Self {
        ProviderHealth {
            attempts: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Counts taken from a [`ProviderHealth`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// Attempts started and finished (answered or failed).
    pub attempts: u64,
    /// Attempts that failed: no connection, a timeout, a broken answer, 429 or 5xx.
    pub failures: u64,
    /// Answered attempts per latency bucket.
    pub latency: [u64; BUCKETS],
}

impl ProviderHealth {
    /// An attempt that got a response head after `latency`; `failed` for 429 and 5xx.
    pub fn answered(&self, latency: Duration, failed: bool) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        self.latency[bucket(latency)].fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt that got no usable answer (connect error, timeout, broken response).
    pub fn failed(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// An answered attempt whose body then broke: one more failure, not another attempt.
    pub fn broke_after_answer(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Take the counts, leaving zeros (an attempt recorded meanwhile lands in this take or
    /// the next, never in both).
    pub fn take(&self) -> Taken {
        Taken {
            attempts: self.attempts.swap(0, Ordering::Relaxed),
            failures: self.failures.swap(0, Ordering::Relaxed),
            latency: std::array::from_fn(|i| self.latency[i].swap(0, Ordering::Relaxed)),
        }
    }

    /// Give counts back (the rollup could not be written; the next take carries them).
    pub fn put_back(&self, t: &Taken) {
        self.attempts.fetch_add(t.attempts, Ordering::Relaxed);
        self.failures.fetch_add(t.failures, Ordering::Relaxed);
        for (a, n) in self.latency.iter().zip(t.latency) {
            a.fetch_add(n, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_leaves_zeros_and_put_back_restores() {
        let h = ProviderHealth::default();
        h.answered(Duration::from_millis(12), false);
        h.answered(Duration::from_millis(12), true);
        h.failed();
        let t = h.take();
        assert_eq!((t.attempts, t.failures), (3, 2));
        assert_eq!(t.latency[bucket(Duration::from_millis(12))], 2);
        assert_eq!(t.latency.iter().sum::<u64>(), 2);
        assert_eq!(h.take().attempts, 0);
        h.put_back(&t);
        assert_eq!(h.take(), t);
    }
}
