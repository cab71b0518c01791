//! The in-process back end: exact counters in fixed windows aligned to the clock.
//!
//! One `Mutex<Counters>` per active scope (key or organization), found through a `DashMap`;
//! a check locks the request's scopes in a fixed order (keys before organizations), decides,
//! and counts in every scope or in none. Exact counters rather than `pingora-limits`'
//! count-min sketch, whose hash collisions over-count and refuse innocent keys when many keys
//! are active.

use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::Mutex;

use super::{Decision, Kind, Scope, ScopeId, Ticket, WindowUse, binding};

#[derive(Debug, Default)]
struct Counters {
    second: (u64, u64),
    minute: (u64, u64),
    day: (u64, u64),
    /// tokens in `minute_tokens.0`
    minute_tokens: (u64, u64),
    in_flight: u64,
}

impl Counters {
    fn roll(&mut self, now: u64) {
        let (s, m, d) = (now, now / 60, now / 86_400);
        if self.second.0 != s {
            self.second = (s, 0);
        }
        if self.minute.0 != m {
            self.minute = (m, 0);
        }
        if self.minute_tokens.0 != m {
            self.minute_tokens = (m, 0);
        }
        if self.day.0 != d {
            self.day = (d, 0);
        }
    }

    fn used(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Rps => self.second.1,
            Kind::Rpm => self.minute.1,
            Kind::Rpd => self.day.1,
            Kind::Tpm => self.minute_tokens.1,
            Kind::Concurrency => self.in_flight,
            Kind::Unavailable => 0,
        }
    }
}

/// In-process counters.
#[derive(Default)]
pub struct LocalLimiter {
    counters: DashMap<ScopeId, Arc<Mutex<Counters>>>,
}

impl LocalLimiter {
    /// A limiter with no counters.
    pub fn new() -> Self {
        Self::default()
    }

    fn cell(&self, id: &ScopeId) -> Arc<Mutex<Counters>> {
        if let Some(c) = self.counters.get(id) {
            return c.clone();
        }
        self.counters.entry(*id).or_default().clone()
    }

    /// Count one request of `tokens` against `scopes` at Unix time `now`. Returns the decision
    /// and the minute its tokens were counted in.
    pub fn check(&self, scopes: &[Option<Scope>; 2], tokens: u64, now: u64) -> (Decision, u64) {
        let minute = now / 60;
        let cells: [Option<Arc<Mutex<Counters>>>; 2] =
            [0, 1].map(|i| scopes[i].map(|s| self.cell(&s.id)));
        // lock in scope order (callers pass key, then organization)
        let mut g0 = cells[0].as_ref().map(|c| c.lock());
        let mut g1 = cells[1].as_ref().map(|c| c.lock());
        for g in [&mut g0, &mut g1].into_iter().flatten() {
            g.roll(now);
        }
        let guards = [&g0, &g1];
        for (i, s) in scopes.iter().enumerate() {
            let (Some(s), Some(c)) = (s, guards[i]) else {
                continue;
            };
            let l = &s.limits;
            let checks = [
                (Kind::Rps, l.rps, 1u64, 1u64),
                (Kind::Rpm, l.rpm, 60, 1),
                (Kind::Rpd, l.rpd, 86_400, 1),
                (Kind::Tpm, l.tpm, 60, tokens),
                (Kind::Concurrency, l.concurrency, 0, 1),
            ];
            for (kind, limit, len, cost) in checks {
                let Some(limit) = limit else { continue };
                if c.used(kind) + cost > u64::from(limit) {
                    let (reset, retry_after, window_secs) = match now.checked_div(len) {
                        // concurrency: no window, try again in a second
                        None => (now + 1, 1, 1),
                        Some(w) => {
                            let reset = (w + 1) * len;
                            (reset, reset - now, len)
                        }
                    };
                    return (
                        Decision {
                            allowed: false,
                            kind,
                            limit,
                            remaining: u64::from(limit).saturating_sub(c.used(kind)) as u32,
                            reset,
                            window_secs,
                            retry_after,
                        },
                        minute,
                    );
                }
            }
        }
        let decision = binding(scopes, now, |i, kind| {
            guards[i].as_ref().map_or(0, |c| c.used(kind))
        })
        .unwrap_or_else(|| {
            token_decision(
                scopes,
                now,
                |i| guards[i].as_ref().map_or(0, |c| c.used(Kind::Tpm)),
                tokens,
            )
        });
        for (i, g) in [&mut g0, &mut g1].into_iter().enumerate() {
            let (Some(s), Some(c)) = (&scopes[i], g) else {
                continue;
            };
            c.second.1 += 1;
            c.minute.1 += 1;
            c.day.1 += 1;
            if s.limits.tpm.is_some() {
                c.minute_tokens.1 += tokens;
            }
            if s.limits.concurrency.is_some() {
                c.in_flight += 1;
            }
        }
        (decision, minute)
    }

    /// Release the concurrency slot of an admitted request and add `delta` tokens (actual
    /// minus estimated) to the minute it was counted in, if that minute is still current.
    pub fn settle(&self, ticket: &Ticket, delta: i64) {
        for s in ticket.scopes.iter().flatten() {
            let Some(cell) = self.counters.get(&s.id).map(|c| c.clone()) else {
                continue;
            };
            let mut c = cell.lock();
            if s.limits.concurrency.is_some() {
                c.in_flight = c.in_flight.saturating_sub(1);
            }
            if s.limits.tpm.is_some() && c.minute_tokens.0 == ticket.minute {
                c.minute_tokens.1 = c.minute_tokens.1.saturating_add_signed(delta);
            }
        }
    }

    /// Requests and tokens of `scope` in the minute of `now`.
    pub fn usage_now(&self, scope: &Scope, now: u64) -> WindowUse {
        let reset = (now / 60 + 1) * 60;
        let Some(cell) = self.counters.get(&scope.id).map(|c| c.clone()) else {
            return WindowUse {
                reset,
                ..Default::default()
            };
        };
        let mut c = cell.lock();
        c.roll(now);
        WindowUse {
            requests: c.minute.1,
            tokens: c.minute_tokens.1,
            reset,
        }
    }

    /// Drop counters of scopes idle since an earlier day (called periodically; keeps memory to
    /// active scopes).
    pub fn sweep(&self, now: u64) {
        let day = now / 86_400;
        self.counters.retain(|_, c| {
            let c = c.lock();
            c.day.0 >= day || c.in_flight > 0
        });
    }
}

/// The headers' decision when no request-count window is limited: tokens per minute if set,
/// else the concurrency limit.
pub(super) fn token_decision(
    scopes: &[Option<Scope>; 2],
    now: u64,
    mut used_tokens: impl FnMut(usize) -> u64,
    tokens: u64,
) -> Decision {
    let reset = (now / 60 + 1) * 60;
    for (i, s) in scopes.iter().enumerate() {
        if let Some(s) = s
            && let Some(tpm) = s.limits.tpm
        {
            return Decision {
                allowed: true,
                kind: Kind::Tpm,
                limit: tpm,
                remaining: u64::from(tpm).saturating_sub(used_tokens(i) + tokens) as u32,
                reset,
                window_secs: 60,
                retry_after: 0,
            };
        }
    }
    let limit = scopes
        .iter()
        .flatten()
        .find_map(|s| s.limits.concurrency)
        .unwrap_or(0);
    Decision {
        allowed: true,
        kind: Kind::Concurrency,
        limit,
        remaining: 0,
        reset: now + 1,
        window_secs: 1,
        retry_after: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn key(n: u8, limits: Limits) -> Option<Scope> {
        Some(Scope {
            id: ScopeId::Key([n; 32]),
            limits,
        })
    }

    fn org(limits: Limits) -> Option<Scope> {
        Some(Scope {
            id: ScopeId::Org(uuid::Uuid::from_u128(7)),
            limits,
        })
    }

    const T: u64 = 1_700_000_080; // 40 s into a minute

    #[test]
    fn each_window_refuses_exactly_at_its_threshold() {
        let l = LocalLimiter::new();
        let rpm3 = Limits {
            rpm: Some(3),
            ..Default::default()
        };
        let s = [key(1, rpm3), None];
        let r: Vec<u32> = (0..3).map(|_| l.check(&s, 0, T).0.remaining).collect();
        assert_eq!(r, vec![2, 1, 0]);
        let (d, _) = l.check(&s, 0, T);
        assert!(!d.allowed);
        assert_eq!((d.kind, d.retry_after, d.window_secs), (Kind::Rpm, 20, 60));
        // another key is not affected; the next minute starts fresh
        assert!(l.check(&[key(2, rpm3), None], 0, T).0.allowed);
        assert!(l.check(&s, 0, T + 20).0.allowed);

        let rps2 = [
            key(
                3,
                Limits {
                    rps: Some(2),
                    rpd: Some(3),
                    ..Default::default()
                },
            ),
            None,
        ];
        assert_eq!(l.check(&rps2, 0, T).0.kind, Kind::Rps);
        assert!(l.check(&rps2, 0, T).0.allowed);
        let (d, _) = l.check(&rps2, 0, T);
        assert_eq!((d.allowed, d.kind, d.retry_after), (false, Kind::Rps, 1));
        // the day binds once it has fewer left than the second
        let (d, _) = l.check(&rps2, 0, T + 1);
        assert_eq!((d.allowed, d.kind, d.remaining), (true, Kind::Rpd, 0));
        let (d, _) = l.check(&rps2, 0, T + 2);
        assert_eq!((d.allowed, d.kind), (false, Kind::Rpd));
    }

    #[test]
    fn organization_limit_is_shared_and_a_refusal_counts_nowhere() {
        let l = LocalLimiter::new();
        let o = Limits {
            rpm: Some(2),
            ..Default::default()
        };
        let k = Limits {
            rpm: Some(10),
            ..Default::default()
        };
        assert!(l.check(&[key(1, k), org(o)], 0, T).0.allowed);
        assert!(l.check(&[key(2, k), org(o)], 0, T).0.allowed);
        let (d, _) = l.check(&[key(1, k), org(o)], 0, T);
        assert_eq!((d.allowed, d.limit), (false, 2));
        // the refused request did not count against key 1
        assert_eq!(l.usage_now(&key(1, k).unwrap(), T).requests, 1);
    }

    #[test]
    fn tokens_per_minute_are_corrected_and_concurrency_released() {
        let l = LocalLimiter::new();
        let lim = Limits {
            tpm: Some(100),
            concurrency: Some(1),
            ..Default::default()
        };
        let s = [key(9, lim), None];
        let (d, minute) = l.check(&s, 80, T);
        assert_eq!((d.allowed, d.kind, d.remaining), (true, Kind::Tpm, 20));
        // one in flight: the second is refused for concurrency
        let (d, _) = l.check(&s, 1, T);
        assert_eq!((d.allowed, d.kind), (false, Kind::Concurrency));
        let ticket = Ticket {
            backend: super::super::Backend::Local,
            scopes: s,
            minute,
            tokens: 80,
            request_id: None,
        };
        // it used 30, not 80: 70 tokens are left and the slot is free
        l.settle(&ticket, 30 - 80);
        assert_eq!(l.usage_now(&s[0].unwrap(), T).tokens, 30);
        let (d, _) = l.check(&s, 71, T);
        assert_eq!((d.allowed, d.kind), (false, Kind::Tpm));
        assert!(l.check(&s, 70, T).0.allowed);
        // a correction for a minute that is over changes nothing
        l.settle(&ticket, 1000);
        assert_eq!(l.usage_now(&s[0].unwrap(), T + 60).tokens, 0);
    }
}
