//! Every Prometheus metric of the process, defined once, in its own registry.

use std::sync::OnceLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::config::Config;
use crate::gateway::ctx::Route;

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    /// `catraca_requests_total{route,model,provider,status}`
    pub requests: IntCounterVec,
    /// `catraca_request_duration_seconds{route}`
    pub latency: HistogramVec,
    /// `catraca_time_to_first_token_seconds{route}`
    pub ttft: HistogramVec,
    /// `catraca_tokens_total{model,kind}` (kind = prompt|completion)
    pub tokens: IntCounterVec,
    /// `catraca_upstream_attempts_total{deployment,outcome}`
    pub attempts: IntCounterVec,
    /// `catraca_failovers_total{model}`
    pub failovers: IntCounterVec,
    /// `catraca_upstream_errors_total{deployment,kind}`
    pub upstream_errors: IntCounterVec,
    /// `catraca_circuit_open_total{deployment}`
    pub circuit_open: IntCounterVec,
    /// `catraca_config_reloads_total{result}`
    pub reloads: IntCounterVec,
    /// `catraca_usage_queue_depth`
    pub usage_queue: IntGauge,
    /// `catraca_client_refused_total{reason}`: client connections and requests refused for
    /// what the client did (too many connections from one IP, head or body too slow, headers
    /// too large).
    pub client_refused: IntCounterVec,
    /// `catraca_requests_in_flight`
    pub in_flight: IntGauge,
    /// `catraca_usage_quarantined_total`: usage events Postgres can never store.
    pub usage_quarantined: IntGauge,
    /// The limiter's decisions, Redis state and round trips.
    pub limiter: std::sync::Arc<crate::limits::LimiterMetrics>,
    /// `latency` per route, resolved once (indexed by [`Route::index`]).
    pub route_latency: Vec<Histogram>,
    /// `ttft` per route, resolved once.
    pub route_ttft: Vec<Histogram>,
}

impl Metrics {
    /// Create and register everything.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let buckets = vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            60.0, 120.0,
        ];
        let requests = IntCounterVec::new(
            Opts::new(
                "catraca_requests_total",
                "Requests by route, model, provider and status",
            ),
            &["route", "model", "provider", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("catraca_request_duration_seconds", "Whole request time")
                .buckets(buckets.clone()),
            &["route"],
        )?;
        let ttft = HistogramVec::new(
            HistogramOpts::new(
                "catraca_time_to_first_token_seconds",
                "Time from request start to the first upstream body byte",
            )
            .buckets(buckets),
            &["route"],
        )?;
        let tokens = IntCounterVec::new(
            Opts::new("catraca_tokens_total", "Tokens reported by upstreams"),
            &["model", "kind"],
        )?;
        let attempts = IntCounterVec::new(
            Opts::new(
                "catraca_upstream_attempts_total",
                "Upstream attempts by outcome",
            ),
            &["deployment", "outcome"],
        )?;
        let failovers = IntCounterVec::new(
            Opts::new(
                "catraca_failovers_total",
                "Requests retried on another deployment",
            ),
            &["model"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new("catraca_upstream_errors_total", "Upstream failures by kind"),
            &["deployment", "kind"],
        )?;
        let circuit_open = IntCounterVec::new(
            Opts::new(
                "catraca_circuit_open_total",
                "Times a deployment's circuit opened",
            ),
            &["deployment"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new("catraca_config_reloads_total", "Config reloads by result"),
            &["result"],
        )?;
        let usage_queue =
            IntGauge::new("catraca_usage_queue_depth", "Usage events not yet written")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(ttft.clone()))?;
        registry.register(Box::new(tokens.clone()))?;
        registry.register(Box::new(attempts.clone()))?;
        registry.register(Box::new(failovers.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(circuit_open.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(usage_queue.clone()))?;
        let client_refused = IntCounterVec::new(
            Opts::new(
                "catraca_client_refused_total",
                "Client connections or requests refused for the client's own fault",
            ),
            &["reason"],
        )?;
        let in_flight = IntGauge::new("catraca_requests_in_flight", "Requests in flight")?;
        let usage_quarantined = IntGauge::new(
            "catraca_usage_quarantined_total",
            "Usage events set aside because Postgres refuses what they hold",
        )?;
        registry.register(Box::new(client_refused.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(usage_quarantined.clone()))?;
        let limiter = crate::limits::LimiterMetrics {
            decisions: IntCounterVec::new(
                Opts::new(
                    "catraca_limit_decisions_total",
                    "Limiter decisions: allowed, or refused by reason; by back end",
                ),
                &["decision", "reason", "backend"],
            )?,
            redis_up: IntGauge::new(
                "catraca_limiter_redis_up",
                "1 while the Redis limiter answers, 0 while the fallback decides",
            )?,
            fallbacks: IntCounterVec::new(
                Opts::new(
                    "catraca_limiter_fallback_total",
                    "Requests decided by the fallback because Redis did not answer",
                ),
                &["mode"],
            )?,
            round_trips: IntCounterVec::new(
                Opts::new(
                    "catraca_redis_round_trips_total",
                    "Round trips to the Redis limiter by operation",
                ),
                &["op"],
            )?,
            hot: Default::default(),
        };
        registry.register(Box::new(limiter.decisions.clone()))?;
        registry.register(Box::new(limiter.redis_up.clone()))?;
        registry.register(Box::new(limiter.fallbacks.clone()))?;
        registry.register(Box::new(limiter.round_trips.clone()))?;
        let route_latency = Route::ALL
            .iter()
            .map(|r| latency.with_label_values(&[r.label()]))
            .collect();
        let route_ttft = Route::ALL
            .iter()
            .map(|r| ttft.with_label_values(&[r.label()]))
            .collect();
        Ok(Metrics {
            route_latency,
            route_ttft,
            limiter: std::sync::Arc::new(limiter),
            registry,
            requests,
            latency,
            ttft,
            tokens,
            attempts,
            failovers,
            upstream_errors,
            circuit_open,
            reloads,
            usage_queue,
            client_refused,
            in_flight,
            usage_quarantined,
        })
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Handles of the per-request metrics whose labels come from the config (model, provider,
/// deployment), one set per config load ([`crate::gateway::route::Live`]). Each is resolved
/// on first use and then costs one atomic load, instead of hashing the label values and
/// locking the vector's map on every request. Only the common outcome is cached (status 200,
/// attempt ok); other statuses and failures take the labelled lookup.
pub struct LiveHandles {
    /// Per model, per position in its deployment list, per route: requests with status 200.
    ok_requests: Vec<Vec<[OnceLock<IntCounter>; Route::COUNT]>>,
    /// Per model: prompt and completion tokens.
    tokens: Vec<OnceLock<[IntCounter; 2]>>,
    /// Per deployment: attempts with outcome `ok`.
    attempts_ok: Vec<OnceLock<IntCounter>>,
}

impl LiveHandles {
    /// Empty slots sized for `config`.
    pub fn new(config: &Config) -> Self {
        LiveHandles {
            ok_requests: config
                .models
                .iter()
                .map(|m| {
                    m.deployments
                        .iter()
                        .map(|_| std::array::from_fn(|_| OnceLock::new()))
                        .collect()
                })
                .collect(),
            tokens: config.models.iter().map(|_| OnceLock::new()).collect(),
            attempts_ok: config.deployments.iter().map(|_| OnceLock::new()).collect(),
        }
    }

    /// Count one finished request.
    pub fn request(
        &self,
        m: &Metrics,
        config: &Config,
        route: &str,
        at: Option<(Route, usize, usize)>,
        status: u16,
    ) {
        let label = |model: usize, dep: usize| {
            let provider = &config.providers[config.deployments[dep].provider].name;
            (config.models[model].name.as_str(), provider.as_str())
        };
        match at {
            Some((r, model, dep)) if status == 200 => {
                let slot = config.models[model]
                    .deployments
                    .iter()
                    .position(|&d| d == dep)
                    .and_then(|i| self.ok_requests.get(model)?.get(i));
                match slot {
                    Some(slots) => slots[r.index()]
                        .get_or_init(|| {
                            let (model, provider) = label(model, dep);
                            m.requests
                                .with_label_values(&[route, model, provider, "200"])
                        })
                        .inc(),
                    None => {
                        let (model, provider) = label(model, dep);
                        m.requests
                            .with_label_values(&[route, model, provider, "200"])
                            .inc()
                    }
                }
            }
            Some((_, model, dep)) => {
                let (model, provider) = label(model, dep);
                let status = itoa::Buffer::new().format(status).to_owned();
                m.requests
                    .with_label_values(&[route, model, provider, &status])
                    .inc();
            }
            None => {
                let status = itoa::Buffer::new().format(status).to_owned();
                m.requests
                    .with_label_values(&[route, "", "", &status])
                    .inc();
            }
        }
    }

    /// Add a request's tokens to its model's counters.
    pub fn tokens(&self, m: &Metrics, config: &Config, model: usize, prompt: u64, completion: u64) {
        let Some(slot) = self.tokens.get(model) else {
            return;
        };
        let [p, c] = slot.get_or_init(|| {
            let name = config.models[model].name.as_str();
            [
                m.tokens.with_label_values(&[name, "prompt"]),
                m.tokens.with_label_values(&[name, "completion"]),
            ]
        });
        p.inc_by(prompt);
        c.inc_by(completion);
    }

    /// Count an attempt that got an answer (not 429 or 5xx).
    pub fn attempt_ok(&self, m: &Metrics, name: &str, dep: usize) {
        match self.attempts_ok.get(dep) {
            Some(slot) => slot
                .get_or_init(|| m.attempts.with_label_values(&[name, "ok"]))
                .inc(),
            None => m.attempts.with_label_values(&[name, "ok"]).inc(),
        }
    }
}
