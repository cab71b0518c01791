//! Request limits: requests per second, minute and UTC day, tokens per minute and concurrent
//! requests, per key and per organization (an organization's limits are its own or its plan's).
//!
//! Two back ends answer the same question. [`local::LocalLimiter`] counts in process memory;
//! [`redis::RedisLimiter`] runs one atomic script per request on a Redis shared by every
//! gateway node. When Redis does not answer within its timeout the request is decided by the
//! configured [`Fallback`] (local counters, allow, or refuse with 429 — never a 5xx), the
//! gateway logs the transition once and exposes it in metrics, and a probe brings Redis back as
//! soon as it answers again.
//!
//! Windows are fixed and aligned to the clock (second, minute, UTC day), counted exactly. A
//! refused request counts nowhere. Tokens per minute are admitted on an estimate (prompt
//! tokens by the model's tokenizer plus `max_tokens` when given) and corrected to the
//! upstream's reported usage when the request ends ([`Limiter::settle`]).

pub mod local;
pub mod redis;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use local::LocalLimiter;

/// Seconds since the Unix epoch (the local limiter's clock).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Limits of one scope; `None` = unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Requests per second.
    pub rps: Option<u32>,
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Requests per day (UTC).
    pub rpd: Option<u32>,
    /// Tokens per minute (estimated at admission, corrected afterwards).
    pub tpm: Option<u32>,
    /// Requests in flight at once.
    pub concurrency: Option<u32>,
}

impl Limits {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.rps.is_some()
            || self.rpm.is_some()
            || self.rpd.is_some()
            || self.tpm.is_some()
            || self.concurrency.is_some()
    }
}

/// Who a set of limits belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeId {
    /// An API key, by the SHA-256 of its value.
    Key([u8; 32]),
    /// An organization (team, customer, project).
    Org(uuid::Uuid),
}

impl ScopeId {
    /// The Redis key prefix of this scope's counters.
    pub fn redis_prefix(&self) -> String {
        match self {
            // 16 bytes of the hash are plenty to keep keys apart and keep the name short
            ScopeId::Key(h) => format!("catraca:rl:k:{}", hex::encode(&h[..16])),
            ScopeId::Org(id) => format!("catraca:rl:o:{}", id.simple()),
        }
    }
}

/// One scope and its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// Whose counters.
    pub id: ScopeId,
    /// Which limits.
    pub limits: Limits,
}

/// Which limit a decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Requests per second.
    Rps,
    /// Requests per minute.
    Rpm,
    /// Requests per day.
    Rpd,
    /// Tokens per minute.
    Tpm,
    /// Requests in flight.
    Concurrency,
    /// The shared limiter could not be asked and the fallback is `closed`.
    Unavailable,
}

impl Kind {
    /// Metrics label and error detail.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Rps => "rps",
            Kind::Rpm => "rpm",
            Kind::Rpd => "rpd",
            Kind::Tpm => "tpm",
            Kind::Concurrency => "concurrency",
            Kind::Unavailable => "limiter_unavailable",
        }
    }

    /// The window's name in error messages.
    pub fn window_name(self) -> &'static str {
        match self {
            Kind::Rps => "second",
            Kind::Rpm | Kind::Tpm => "minute",
            Kind::Rpd => "day",
            Kind::Concurrency => "concurrent requests",
            Kind::Unavailable => "second",
        }
    }

    fn from_code(c: i64) -> Kind {
        match c {
            1 => Kind::Rps,
            2 => Kind::Rpm,
            3 => Kind::Rpd,
            4 => Kind::Tpm,
            5 => Kind::Concurrency,
            _ => Kind::Unavailable,
        }
    }
}

/// The outcome of one check, and what the rate-limit headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Let the request through.
    pub allowed: bool,
    /// The limit refused, or the request-count limit with the fewest requests left.
    pub kind: Kind,
    /// `X-RateLimit-Limit`.
    pub limit: u32,
    /// `X-RateLimit-Remaining`.
    pub remaining: u32,
    /// `X-RateLimit-Reset` (Unix seconds).
    pub reset: u64,
    /// `X-RateLimit-Window` (seconds).
    pub window_secs: u64,
    /// `Retry-After` when refused (seconds).
    pub retry_after: u64,
}

/// The request-count windows: (kind, limit, length in seconds).
fn count_windows(l: &Limits) -> [(Kind, Option<u32>, u64); 3] {
    [
        (Kind::Rps, l.rps, 1),
        (Kind::Rpm, l.rpm, 60),
        (Kind::Rpd, l.rpd, 86_400),
    ]
}

/// Where an admitted request was counted, so its end can be settled there.
#[derive(Debug, Clone)]
pub struct Ticket {
    backend: Backend,
    scopes: [Option<Scope>; 2],
    /// The minute window the tokens were counted in.
    minute: u64,
    /// Tokens counted at admission.
    pub tokens: u64,
    /// Request id (the member of Redis concurrency sets), when a concurrency limit applies.
    request_id: Option<Arc<str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Local,
    Redis,
}

impl Ticket {
    fn needs_settle(&self) -> bool {
        self.scopes
            .iter()
            .flatten()
            .any(|s| s.limits.tpm.is_some() || s.limits.concurrency.is_some())
    }
}

/// What to do when Redis is configured but does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fallback {
    /// Enforce the limits with this node's own counters (default).
    #[default]
    Local,
    /// Let every request through unchecked.
    Open,
    /// Refuse every limited request with 429 `limiter_unavailable`.
    Closed,
}

impl Fallback {
    /// Parse the config value.
    pub fn parse(s: &str) -> Option<Fallback> {
        Some(match s {
            "local" => Fallback::Local,
            "open" => Fallback::Open,
            "closed" => Fallback::Closed,
            _ => return None,
        })
    }

    /// Metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::Local => "local",
            Fallback::Open => "open",
            Fallback::Closed => "closed",
        }
    }
}

/// Counters the limiter keeps for `/metrics`.
pub struct LimiterMetrics {
    /// `catraca_limit_decisions_total{decision,reason,backend}`
    pub decisions: prometheus::IntCounterVec,
    /// `catraca_limiter_redis_up`
    pub redis_up: prometheus::IntGauge,
    /// `catraca_limiter_fallback_total{mode}`: requests decided by the fallback.
    pub fallbacks: prometheus::IntCounterVec,
    /// `catraca_redis_round_trips_total{op}`
    pub round_trips: prometheus::IntCounterVec,
    /// The per-request series, each resolved on first use: `round_trips{op="check"}` and
    /// `decisions{decision="allowed",reason="ok"}` of the redis, local and funds back ends.
    pub hot: HotLimiterMetrics,
}

/// See [`LimiterMetrics::hot`].
#[derive(Default)]
pub struct HotLimiterMetrics {
    check: std::sync::OnceLock<prometheus::IntCounter>,
    allowed: [std::sync::OnceLock<prometheus::IntCounter>; 3],
}

impl LimiterMetrics {
    fn check_trip(&self) {
        self.hot
            .check
            .get_or_init(|| self.round_trips.with_label_values(&["check"]))
            .inc();
    }

    fn allowed(&self, backend: &'static str) {
        let i = match backend {
            "redis" => 0,
            "local" => 1,
            _ => 2,
        };
        self.hot.allowed[i]
            .get_or_init(|| {
                self.decisions
                    .with_label_values(&["allowed", "ok", backend])
            })
            .inc();
    }
}

/// The limiter the gateway asks: Redis when configured and up, else local.
pub struct Limiter {
    local: LocalLimiter,
    redis: Option<redis::RedisLimiter>,
    fallback: Fallback,
    redis_up: AtomicBool,
    metrics: Arc<LimiterMetrics>,
}

impl Limiter {
    /// A limiter; `redis` = the shared back end, if configured.
    pub fn new(
        redis: Option<redis::RedisLimiter>,
        fallback: Fallback,
        metrics: Arc<LimiterMetrics>,
    ) -> Self {
        metrics.redis_up.set(i64::from(redis.is_some()));
        Limiter {
            local: LocalLimiter::new(),
            redis_up: AtomicBool::new(redis.is_some()),
            redis,
            fallback,
            metrics,
        }
    }

    /// The in-process counters (swept by the reload loop).
    pub fn local(&self) -> &LocalLimiter {
        &self.local
    }

    /// Count one request of `tokens` estimated tokens against `scopes` (at most two: key and
    /// organization). `None` when no scope has a limit.
    pub async fn check(
        &self,
        scopes: [Option<Scope>; 2],
        tokens: u64,
        request_id: &str,
    ) -> Option<(Decision, Option<Ticket>)> {
        let scopes = scopes.map(|s| s.filter(|s| s.limits.any()));
        if scopes.iter().all(Option::is_none) {
            return None;
        }
        if let Some(r) = &self.redis
            && self.redis_up.load(Ordering::Relaxed)
        {
            self.metrics.check_trip();
            match r.check(&scopes, tokens, request_id).await {
                Ok((d, minute)) => {
                    return Some(self.admit(d, minute, Backend::Redis, scopes, tokens, request_id));
                }
                Err(e) => self.mark_down(&e),
            }
        }
        if self.redis.is_some() {
            self.metrics
                .fallbacks
                .with_label_values(&[self.fallback.as_str()])
                .inc();
            match self.fallback {
                Fallback::Local => {}
                Fallback::Open => return None,
                Fallback::Closed => {
                    let d = Decision {
                        allowed: false,
                        kind: Kind::Unavailable,
                        limit: 0,
                        remaining: 0,
                        reset: unix_now() + 1,
                        window_secs: 1,
                        retry_after: 1,
                    };
                    self.count(&d, "closed");
                    return Some((d, None));
                }
            }
        }
        let (d, minute) = self.local.check(&scopes, tokens, unix_now());
        Some(self.admit(d, minute, Backend::Local, scopes, tokens, request_id))
    }

    /// Count the decision and, when allowed, the ticket that settles it.
    fn admit(
        &self,
        decision: Decision,
        minute: u64,
        backend: Backend,
        scopes: [Option<Scope>; 2],
        tokens: u64,
        request_id: &str,
    ) -> (Decision, Option<Ticket>) {
        let label = match backend {
            Backend::Redis => "redis",
            Backend::Local => "local",
        };
        self.count(&decision, label);
        let ticket = decision.allowed.then(|| Ticket {
            backend,
            scopes,
            minute,
            tokens,
            request_id: scopes
                .iter()
                .flatten()
                .any(|s| s.limits.concurrency.is_some())
                .then(|| Arc::from(request_id)),
        });
        (decision, ticket)
    }

    fn count(&self, d: &Decision, backend: &'static str) {
        if d.allowed {
            self.metrics.allowed(backend);
            return;
        }
        self.metrics
            .decisions
            .with_label_values(&["refused", d.kind.as_str(), backend])
            .inc();
    }

    /// Count a decision taken beside the limiter (`backend="funds"`: balances, budgets and
    /// plan quotas), so `catraca_limit_decisions_total` covers every refusal reason.
    pub fn count_funds(&self, refused: Option<&'static str>) {
        match refused {
            Some(r) => self
                .metrics
                .decisions
                .with_label_values(&["refused", r, "funds"])
                .inc(),
            None => self.metrics.allowed("funds"),
        }
    }

    fn mark_down(&self, e: &::redis::RedisError) {
        if self.redis_up.swap(false, Ordering::Relaxed) {
            self.metrics.redis_up.set(0);
            tracing::warn!(
                error = %e,
                fallback = self.fallback.as_str(),
                "Redis limiter unreachable; deciding limits by the fallback until it answers"
            );
        }
    }

    /// Requests and tokens `scope` has used in the current minute, from the counters that
    /// enforce its limits (Redis when it is the back end and answers, else this node's), and
    /// which back end answered. A scope without limits is not counted anywhere (zeros).
    pub async fn usage_now(&self, scope: &Scope) -> (WindowUse, &'static str) {
        let now = unix_now();
        if let Some(r) = &self.redis
            && self.redis_up.load(Ordering::Relaxed)
        {
            self.metrics.round_trips.with_label_values(&["read"]).inc();
            match r.usage_in_minute(&scope.id.redis_prefix(), now / 60).await {
                Ok((requests, tokens)) => {
                    let reset = (now / 60 + 1) * 60;
                    return (
                        WindowUse {
                            requests,
                            tokens,
                            reset,
                        },
                        "redis",
                    );
                }
                Err(e) => self.mark_down(&e),
            }
        }
        (self.local.usage_now(scope, now), "local")
    }

    /// End of a request: release its concurrency slot and correct its tokens per minute to
    /// `actual` tokens (when known). Never waits for Redis: corrections are sent in batches.
    pub fn settle(&self, ticket: Ticket, actual: Option<u64>) {
        if !ticket.needs_settle() {
            return;
        }
        let delta = actual.map_or(0, |a| a as i64 - ticket.tokens as i64);
        match ticket.backend {
            Backend::Local => self.local.settle(&ticket, delta),
            Backend::Redis => {
                if let Some(r) = &self.redis {
                    r.settle(ticket, delta);
                }
            }
        }
    }

    /// Probe Redis while it is marked down; mark it up when it answers. Runs until shutdown.
    pub async fn watch_redis(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let Some(r) = &self.redis else { return };
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            if self.redis_up.load(Ordering::Relaxed) {
                continue;
            }
            self.metrics.round_trips.with_label_values(&["ping"]).inc();
            if r.ping().await.is_ok() && !self.redis_up.swap(true, Ordering::Relaxed) {
                self.metrics.redis_up.set(1);
                tracing::info!("Redis limiter answers again; limits are shared again");
            }
        }
    }

    /// Send queued corrections to Redis until shutdown (see [`redis::RedisLimiter::run_settler`]).
    pub async fn run_settler(&self, shutdown: tokio::sync::watch::Receiver<bool>) {
        if let Some(r) = &self.redis {
            r.run_settler(&self.metrics, shutdown).await;
        }
    }
}

/// Requests and tokens counted in the current minute of one scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowUse {
    /// Requests this minute.
    pub requests: u64,
    /// Tokens this minute.
    pub tokens: u64,
    /// Unix time the minute ends.
    pub reset: u64,
}

/// Pick, among the request-count windows after counting one more request, the one with the
/// fewest requests left; ties go to the shorter window. `used(kind)` = count before this one.
fn binding(
    scopes: &[Option<Scope>; 2],
    now: u64,
    mut used: impl FnMut(usize, Kind) -> u64,
) -> Option<Decision> {
    let mut best: Option<Decision> = None;
    for (i, s) in scopes.iter().enumerate() {
        let Some(s) = s else { continue };
        for (kind, limit, len) in count_windows(&s.limits) {
            let Some(limit) = limit else { continue };
            let left = u64::from(limit).saturating_sub(used(i, kind) + 1) as u32;
            let reset = (now / len + 1) * len;
            if best.is_none_or(|b| left < b.remaining) {
                best = Some(Decision {
                    allowed: true,
                    kind,
                    limit,
                    remaining: left,
                    reset,
                    window_secs: len,
                    retry_after: 0,
                });
            }
        }
    }
    best
}
