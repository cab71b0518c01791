//! Request limits per key: requests per minute and per day, counted exactly in fixed windows
//! aligned to the clock (minute, UTC day), in process memory.
//!
//! This is the local back end of issue #5 item 1; the Redis back end (one atomic script per
//! request, shared by every gateway node) is to come behind the same `check`. Counters are
//! exact (one `DashMap` entry per active key, a short shard lock per check) rather than
//! `pingora-limits`' count-min sketch, whose hash collisions over-count and refuse innocent keys
//! when many keys are active. A refused request does not count.

use dashmap::DashMap;

/// Seconds since the Unix epoch (the limiter's clock).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Limits of one key; `None` = unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyLimits {
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Requests per day (UTC).
    pub rpd: Option<u32>,
}

impl KeyLimits {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.rpm.is_some() || self.rpd.is_some()
    }
}

/// The outcome of one check, and what the rate-limit headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Let the request through.
    pub allowed: bool,
    /// The binding limit (`X-RateLimit-Limit`).
    pub limit: u32,
    /// Requests left in its window (`X-RateLimit-Remaining`).
    pub remaining: u32,
    /// Unix time the window resets (`X-RateLimit-Reset`).
    pub reset: u64,
    /// Window length in seconds (`X-RateLimit-Window`).
    pub window_secs: u64,
    /// Seconds to wait when refused (`Retry-After`).
    pub retry_after: u64,
}

#[derive(Debug, Default)]
struct Counters {
    minute: (u64, u32),
    day: (u64, u32),
}

/// In-process counters.
#[derive(Default)]
pub struct LocalLimiter {
    counters: DashMap<[u8; 32], Counters>,
}

impl LocalLimiter {
    /// A limiter with no counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Count one request of `key` at unix time `now`; `None` when the key has no limits.
    pub fn check(&self, key: &[u8; 32], limits: &KeyLimits, now: u64) -> Option<Decision> {
        if !limits.any() {
            return None;
        }
        let (minute, day) = (now / 60, now / 86_400);
        let mut c = self.counters.entry(*key).or_default();
        if c.minute.0 != minute {
            c.minute = (minute, 0);
        }
        if c.day.0 != day {
            c.day = (day, 0);
        }
        let minute_reset = (minute + 1) * 60;
        let day_reset = (day + 1) * 86_400;
        if let Some(rpm) = limits.rpm
            && c.minute.1 >= rpm
        {
            return Some(Decision {
                allowed: false,
                limit: rpm,
                remaining: 0,
                reset: minute_reset,
                window_secs: 60,
                retry_after: minute_reset - now,
            });
        }
        if let Some(rpd) = limits.rpd
            && c.day.1 >= rpd
        {
            return Some(Decision {
                allowed: false,
                limit: rpd,
                remaining: 0,
                reset: day_reset,
                window_secs: 86_400,
                retry_after: day_reset - now,
            });
        }
        c.minute.1 += 1;
        c.day.1 += 1;
        // report the window with the fewest requests left
        let m = limits.rpm.map(|l| (l, l - c.minute.1, minute_reset, 60));
        let d = limits.rpd.map(|l| (l, l - c.day.1, day_reset, 86_400));
        let (limit, remaining, reset, window_secs) = match (m, d) {
            (Some(m), Some(d)) => {
                if d.1 < m.1 {
                    d
                } else {
                    m
                }
            }
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => return None,
        };
        Some(Decision {
            allowed: true,
            limit,
            remaining,
            reset,
            window_secs,
            retry_after: 0,
        })
    }

    /// Drop counters of windows that ended (called periodically; keeps memory to active keys).
    pub fn sweep(&self, now: u64) {
        let day = now / 86_400;
        self.counters.retain(|_, c| c.day.0 >= day);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minute_limit_hits_exactly_at_threshold_and_resets() {
        let l = LocalLimiter::new();
        let k = [1u8; 32];
        let lim = KeyLimits {
            rpm: Some(3),
            rpd: None,
        };
        let t = 1_700_000_000 - 1_700_000_000 % 60 + 10;
        let r: Vec<u32> = (0..3)
            .map(|_| l.check(&k, &lim, t).unwrap().remaining)
            .collect();
        assert_eq!(r, vec![2, 1, 0]);
        let refused = l.check(&k, &lim, t).unwrap();
        assert!(!refused.allowed);
        assert_eq!((refused.retry_after, refused.window_secs), (50, 60));
        // another key is not affected; the next minute starts fresh
        assert!(l.check(&[2u8; 32], &lim, t).unwrap().allowed);
        assert!(l.check(&k, &lim, t + 50).unwrap().allowed);
    }

    #[test]
    fn day_limit_binds_when_tighter_and_refusals_do_not_count() {
        let l = LocalLimiter::new();
        let k = [3u8; 32];
        let lim = KeyLimits {
            rpm: Some(10),
            rpd: Some(2),
        };
        let t = 1_700_000_000;
        let d = l.check(&k, &lim, t).unwrap();
        assert_eq!((d.limit, d.remaining, d.window_secs), (2, 1, 86_400));
        assert!(l.check(&k, &lim, t).unwrap().allowed);
        for _ in 0..5 {
            assert!(!l.check(&k, &lim, t + 120).unwrap().allowed);
        }
        assert!(l.check(&k, &KeyLimits::default(), t).is_none());
        l.sweep(t + 86_400);
        assert!(l.check(&k, &lim, t + 86_400).unwrap().allowed);
    }
}
