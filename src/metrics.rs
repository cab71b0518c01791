//! Every Prometheus metric of the process, defined once, in its own registry.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

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
        };
        registry.register(Box::new(limiter.decisions.clone()))?;
        registry.register(Box::new(limiter.redis_up.clone()))?;
        registry.register(Box::new(limiter.fallbacks.clone()))?;
        registry.register(Box::new(limiter.round_trips.clone()))?;
        Ok(Metrics {
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
