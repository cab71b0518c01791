//! `catraca serve`: assemble the Pingora server (gateway listeners) and its background
//! services (usage writer, metrics listener, config reload), then run until a signal.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{BackgroundService, background_service};

use crate::config::{self, Config};
use crate::gateway::Gateway;
use crate::gateway::route::Live;
use crate::metrics::Metrics;
use crate::state::Shared;
use crate::store;
use crate::store::key_cache::PgKeys;
use crate::usage::jsonl::{self, JsonlWriter};
use crate::usage::{self, UsageSink};

/// Load the config or print every problem and fail.
pub fn load_or_report(path: &Path) -> anyhow::Result<Config> {
    match config::load_file(path) {
        Ok(c) => Ok(c),
        Err(errors) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            bail!("{} problem(s) in {}", errors.len(), path.display())
        }
    }
}

/// Run the gateway until SIGINT/SIGTERM. With `upgrade`, take the listening sockets over from
/// a running catraca (which is then sent SIGQUIT).
pub fn serve(path: &Path, upgrade: bool) -> anyhow::Result<()> {
    let config = load_or_report(path)?;
    let epoch = Instant::now();
    // DNS of providers is resolved here, off the request path; this small runtime is gone
    // before Pingora starts its own (a runtime around run_forever would panic).
    let startup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("startup runtime")?;
    let live = startup
        .block_on(Live::build(Arc::new(config.clone()), None, epoch))
        .map_err(anyhow::Error::msg)?;
    if let Some(db) = &config.database {
        // its own short-lived pool: connections belong to the runtime that opens them
        match startup.block_on(migrate_and_sync(&db.url, &config)) {
            Ok(()) => tracing::info!("database migrations applied, model catalog synced"),
            Err(e) => tracing::warn!(
                "cannot migrate the database now ({e:#}); serving config keys and spilling usage until it is reachable"
            ),
        }
    }
    drop(startup);

    let quarantined = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (sink, usage_writer, db_keys): (Arc<dyn UsageSink>, UsageWriter, Option<Arc<PgKeys>>) =
        match &config.database {
            None => {
                let (sink, writer) = jsonl::channel(config.usage.jsonl_path.clone(), &config.usage);
                (Arc::new(sink), UsageWriter::Jsonl(writer), None)
            }
            Some(db) => {
                // separate pools: the proxy's runtime looks keys up, the writer's runtime inserts
                let keys_pool = store::pg::LazyPool::new(&db.url, db.max_connections)?;
                let usage_pool = store::pg::LazyPool::new(&db.url, 2)?;
                let (sink, mut writer) =
                    usage::pg::channel(usage_pool, db.spill_path.clone(), &config.usage);
                writer.quarantined = quarantined.clone();
                (
                    Arc::new(sink),
                    UsageWriter::Pg(Box::new(writer)),
                    Some(Arc::new(PgKeys::new(keys_pool))),
                )
            }
        };
    let metrics = Metrics::new().context("metrics registry")?;
    let funds = match &config.database {
        Some(db) => Some(Arc::new(crate::funds::Funds::new(
            store::pg::LazyPool::new(&db.url, 2)?,
        ))),
        None => None,
    };
    let redis = match &config.limits.redis_url {
        Some(url) => Some(
            crate::limits::redis::RedisLimiter::new(crate::limits::redis::RedisSettings {
                url: url.clone(),
                timeout: config.limits.redis_timeout,
                pool_size: config.limits.redis_pool_size,
                lease_secs: config.limits.lease_secs,
            })
            .context("limits.redis_url")?,
        ),
        None => None,
    };
    let limiter =
        crate::limits::Limiter::new(redis, config.limits.fallback, metrics.limiter.clone());
    // Tokenizer tables (~20-45 MiB each) are never loaded here: each loads on its first need,
    // off the proxy threads (the first request of a key with a token limit, a balance or a
    // budget, or a completion whose upstream reports no usage), so a gateway that never needs
    // one never holds it and every gateway starts small.
    let pix = crate::domain::pix::Receiver::new(config.pix.clone());
    let current = crate::config::current::Current::new(live.config.clone());
    // one set of token keys for the admin app (which signs) and the gateway (which verifies
    // bradax access tokens), so a random secret is still shared by both
    let jwt = config
        .database
        .as_ref()
        .map(|_| Arc::new(crate::admin::jwt_from_env()));
    let shared = Arc::new(Shared {
        pix: pix.clone(),
        config: current.clone(),
        live: ArcSwap::from_pointee(live),
        metrics,
        usage: sink,
        db_keys: db_keys.clone(),
        admin_addr: config.database.as_ref().map(|_| config.admin_listen),
        limiter,
        funds: funds.clone(),
        in_flight: Arc::default(),
        jwt: jwt.clone(),
        usage_quarantined: quarantined,
    });

    let conf = ServerConf {
        threads: config.threads,
        work_stealing: config.work_stealing,
        upstream_keepalive_pool_size: config.upstream_keepalive_pool,
        // the drain service below exits as soon as requests and usage are drained; this is
        // the most a SIGTERM waits
        grace_period_seconds: Some(config.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(5),
        upgrade_sock: config.upgrade_sock.display().to_string(),
        ..Default::default()
    };
    let opt = pingora::server::configuration::Opt {
        upgrade,
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
    server.bootstrap();

    // connection guards below the proxy: connections per IP, whole-head deadline
    let proxy = pingora::proxy::http_proxy(&server.configuration, Gateway::new(shared.clone()));
    let guarded = crate::gateway::conn::PerIp::new(
        crate::gateway::conn::HeadDeadline::new(proxy, config.client.header_timeout),
        config.client.max_connections_per_ip,
        shared
            .metrics
            .client_refused
            .with_label_values(&["connections_per_ip"]),
    );
    let mut proxy =
        pingora::services::listening::Service::new("catraca gateway".to_string(), guarded);
    // each open client connection holds one read buffer: Pingora's 64 KiB made 10,000 open
    // streams cost 1.9 GiB; the head and a chat body fit in far less
    let l4 = pingora::listeners::L4BufferSettings {
        read: Some(config.client.read_buffer_bytes),
        write: None,
    };
    for l in &config.listen {
        proxy.add_listener(pingora::listeners::ListenerConfig::tcp(l.as_str()).l4_buffer(l4));
    }
    server.add_service(proxy);
    server.add_service(background_service(
        "drain",
        Drain {
            shared: shared.clone(),
            grace: config.grace_period,
        },
    ));
    server.add_service(background_service("usage writer", usage_writer));
    if config.limits.redis_url.is_some() {
        server.add_service(background_service(
            "redis limiter",
            RedisWatch(shared.clone()),
        ));
    }
    if let Some(keys) = db_keys {
        server.add_service(background_service("key listener", KeyListener(keys)));
    }
    if let Some(funds) = funds {
        server.add_service(background_service("funds listener", FundsListener(funds)));
    }
    if let Some(db) = &config.database {
        server.add_service(background_service(
            "admin app",
            AdminService {
                pool: store::pg::LazyPool::new(&db.url, db.max_connections)?,
                addr: config.admin_listen,
                jwt: jwt
                    .clone()
                    .unwrap_or_else(|| Arc::new(crate::admin::jwt_from_env())),
                gateway_url: config.listen.first().map(|l| format!("http://{l}")),
                outbound: config.outbound,
                pix,
                config: current.clone(),
                whatsapp: Arc::new(config.whatsapp.clone()),
                gate: shared.clone(),
            },
        ));
        server.add_service(background_service(
            "upstream health",
            UpstreamHealth {
                shared: shared.clone(),
                pool: store::pg::LazyPool::new(&db.url, 1)?,
            },
        ));
        server.add_service(background_service(
            "mail sender",
            crate::mail::MailService::new(
                store::pg::LazyPool::new(&db.url, 2)?,
                config.mail.clone(),
            ),
        ));
    }
    server.add_service(background_service(
        "metrics",
        MetricsListener {
            addr: config.metrics_listen.clone(),
            shared: shared.clone(),
        },
    ));
    server.add_service(background_service(
        "config reload",
        Reloader {
            path: path.to_path_buf(),
            shared,
        },
    ));
    tracing::info!(listen = ?config.listen, metrics = %config.metrics_listen, "catraca gateway starting");
    server.run(pingora::server::RunArgs {
        shutdown_signal: Box::new(Signals),
    });
    std::process::exit(0)
}

/// Signals: SIGTERM and SIGINT (Ctrl-C) both stop gracefully (stop accepting, let requests in
/// flight finish, write every usage event, exit as soon as that is done); a second SIGINT
/// exits at once. SIGQUIT is Pingora's graceful upgrade. Pingora's own watcher makes SIGINT an
/// immediate exit, which drops the usage events still queued or lingering in a batch.
struct Signals;

#[async_trait]
impl pingora::server::ShutdownSignalWatch for Signals {
    async fn recv(&self) -> pingora::server::ShutdownSignal {
        use pingora::server::ShutdownSignal;
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut quit), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers; stopping");
            return ShutdownSignal::FastShutdown;
        };
        let interrupted = tokio::select! {
            _ = quit.recv() => return ShutdownSignal::GracefulUpgrade,
            _ = term.recv() => false,
            _ = int.recv() => true,
        };
        if interrupted {
            tracing::info!("SIGINT: stopping gracefully (SIGINT again exits at once)");
        }
        tokio::spawn(async move {
            int.recv().await;
            tracing::warn!("second SIGINT: exiting without draining");
            std::process::exit(130);
        });
        ShutdownSignal::GracefulTerminate
    }
}

/// A listener with `SO_REUSEPORT`, so that during a graceful upgrade the new process binds the
/// metrics and admin ports while the old one still holds them (Pingora hands over only its own
/// listeners).
pub fn bind_reusable(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Migrate, then mirror the config's model catalog into the database.
pub async fn migrate_and_sync(url: &str, config: &Config) -> anyhow::Result<()> {
    let pool = store::pg::pool(url, 1)?;
    let result = async {
        store::pg::migrate(&pool).await.context("migrations")?;
        store::catalog::sync(&pool, config)
            .await
            .context("model catalog sync")
    }
    .await;
    pool.close().await;
    result
}

/// Connect, migrate, disconnect.
pub async fn migrate_once(url: &str) -> anyhow::Result<()> {
    let pool = store::pg::pool(url, 1)?;
    let result = store::pg::migrate(&pool).await;
    pool.close().await;
    result.context("migrations")
}

enum UsageWriter {
    Jsonl(JsonlWriter),
    Pg(Box<usage::pg::PgWriter>),
}

#[async_trait]
impl BackgroundService for UsageWriter {
    async fn start(&self, shutdown: ShutdownWatch) {
        match self {
            UsageWriter::Jsonl(w) => w.run(shutdown).await,
            UsageWriter::Pg(w) => w.run(shutdown).await,
        }
    }
}

struct AdminService {
    pool: store::pg::LazyPool,
    addr: std::net::SocketAddr,
    jwt: Arc<crate::admin::auth::Jwt>,
    gateway_url: Option<String>,
    outbound: crate::domain::outbound::Policy,
    pix: crate::domain::pix::Receiver,
    config: crate::config::current::Current,
    whatsapp: Arc<crate::config::resolve::WhatsappConfig>,
    gate: Arc<Shared>,
}

#[async_trait]
impl BackgroundService for AdminService {
    async fn start(&self, shutdown: ShutdownWatch) {
        let state = crate::admin::AdminState {
            pool: self.pool.get().clone(),
            pix: self.pix.clone(),
            config: self.config.clone(),
            jwt: self.jwt.clone(),
            started: Instant::now(),
            gateway_url: self.gateway_url.clone(),
            http: reqwest::Client::new(),
            secrets: crate::secrets::SecretBox::from_env().map(Arc::new),
            outbound: self.outbound,
            gate: Some(self.gate.clone()),
            whatsapp: self.whatsapp.clone(),
            vectors: Arc::new(crate::domain::vectors::PgVectors::new(
                self.pool.get().clone(),
                self.config.with(|c| c.vectors.cache_max_bytes),
            )),
        };
        crate::admin::serve(self.addr, state, shutdown).await;
    }
}

/// `catraca admin`: the admin app alone (for deployments that scale it apart).
pub fn admin_alone(path: &Path) -> anyhow::Result<()> {
    let config = load_or_report(path)?;
    let db = config
        .database
        .as_ref()
        .context("the admin app needs a database: set DATABASE_URL or database.url")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("runtime")?;
    rt.block_on(async {
        migrate_and_sync(&db.url, &config).await?;
        let pool = store::pg::pool(&db.url, db.max_connections)?;
        let state = crate::admin::AdminState {
            pool: pool.clone(),
            pix: crate::domain::pix::Receiver::new(config.pix.clone()),
            config: crate::config::current::Current::new(Arc::new(config.clone())),
            jwt: Arc::new(crate::admin::jwt_from_env()),
            started: Instant::now(),
            gateway_url: std::env::var("CATRACA_GATEWAY_URL")
                .ok()
                .or_else(|| config.listen.first().map(|l| format!("http://{l}"))),
            http: reqwest::Client::new(),
            secrets: crate::secrets::SecretBox::from_env().map(Arc::new),
            outbound: config.outbound,
            gate: None,
            whatsapp: Arc::new(config.whatsapp.clone()),
            vectors: Arc::new(crate::domain::vectors::PgVectors::new(
                pool,
                config.vectors.cache_max_bytes,
            )),
        };
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = tx.send(true);
        });
        // the mail outbox is sent by the admin process too when it runs alone
        let mail = crate::mail::MailService::new(
            store::pg::LazyPool::new(&db.url, 2)?,
            config.mail.clone(),
        );
        let mail_rx = rx.clone();
        tokio::spawn(async move { mail.start(mail_rx).await });
        crate::admin::serve(config.admin_listen, state, rx).await;
        Ok(())
    })
}

struct KeyListener(Arc<PgKeys>);

#[async_trait]
impl BackgroundService for KeyListener {
    async fn start(&self, shutdown: ShutdownWatch) {
        self.0.listen(shutdown).await;
    }
}

struct FundsListener(Arc<crate::funds::Funds>);

#[async_trait]
impl BackgroundService for FundsListener {
    async fn start(&self, shutdown: ShutdownWatch) {
        self.0.listen(shutdown).await;
    }
}

/// Adds the attempt counts of each provider to the upstream-health rollup every few seconds
/// (and once more at shutdown), and keeps a breaker incident open for each provider with an
/// open circuit (resolving those no gateway has seen open lately).
struct UpstreamHealth {
    shared: Arc<Shared>,
    pool: store::pg::LazyPool,
}

/// How often [`UpstreamHealth`] writes.
const HEALTH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl UpstreamHealth {
    async fn flush(&self) {
        use crate::domain::upstream_health::{self as uh, Counts};
        let live = self.shared.live.load_full();
        let taken: Vec<_> = live.providers.iter().map(|p| p.health.take()).collect();
        let counts: Vec<Counts<'_>> = live
            .config
            .providers
            .iter()
            .zip(&taken)
            .filter(|(_, t)| t.attempts > 0 || t.failures > 0)
            .map(|(p, t)| Counts {
                provider: &p.name,
                attempts: t.attempts,
                failures: t.failures,
                latency: t.latency,
            })
            .collect();
        if !counts.is_empty()
            && let Err(e) = uh::add(self.pool.get(), &counts).await
        {
            tracing::warn!(error = %e, "upstream health not written; kept for the next try");
            for (p, t) in live.providers.iter().zip(&taken) {
                p.health.put_back(t);
            }
        }
        let now = live.now_ms();
        let mut open = vec![false; live.config.providers.len()];
        for (d, b) in live.config.deployments.iter().zip(&live.breakers) {
            if b.seen_open(now) {
                open[d.provider] = true;
            }
        }
        for (p, _) in live.config.providers.iter().zip(&open).filter(|(_, o)| **o) {
            if let Err(e) = crate::domain::incidents::breaker_open(self.pool.get(), &p.name).await {
                tracing::warn!(error = %e, provider = %p.name, "breaker incident not written");
            }
        }
        if let Err(e) = crate::domain::incidents::breaker_expire(self.pool.get()).await {
            tracing::warn!(error = %e, "breaker incidents not resolved");
        }
    }
}

#[async_trait]
impl BackgroundService for UpstreamHealth {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(HEALTH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.flush().await,
                _ = shutdown.changed() => break,
            }
        }
        // the last counts of a stopping gateway
        self.flush().await;
    }
}

/// Sends the limiter's batched settlements and probes Redis while it is down.
struct RedisWatch(Arc<Shared>);

#[async_trait]
impl BackgroundService for RedisWatch {
    async fn start(&self, shutdown: ShutdownWatch) {
        let l = &self.0.limiter;
        tokio::join!(l.run_settler(shutdown.clone()), l.watch_redis(shutdown));
    }
}

/// On SIGTERM (or the SIGQUIT of an upgrade): log what is in flight, wait until every request
/// has ended and every usage event is written, log that, and exit, instead of always sleeping
/// the whole grace period (Pingora's own behaviour, which stays the upper bound).
struct Drain {
    shared: Arc<Shared>,
    grace: std::time::Duration,
}

#[async_trait]
impl BackgroundService for Drain {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        if shutdown.changed().await.is_err() {
            return;
        }
        let started = Instant::now();
        let (requests, events) = (self.shared.in_flight.get(), self.shared.usage.depth());
        tracing::info!(
            requests_in_flight = requests,
            usage_events_queued = events,
            grace_secs = self.grace.as_secs(),
            "shutting down: draining requests and usage events"
        );
        let mut last_log = Instant::now();
        loop {
            let (r, q) = (self.shared.in_flight.get(), self.shared.usage.depth());
            if r == 0 && q == 0 {
                break;
            }
            if last_log.elapsed() >= std::time::Duration::from_secs(5) {
                tracing::info!(
                    requests_in_flight = r,
                    usage_events_queued = q,
                    "still draining"
                );
                last_log = Instant::now();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tracing::info!(
            drained_requests = requests,
            drained_usage_events = events,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "drained; exiting"
        );
        std::process::exit(0);
    }
}

struct Reloader {
    path: std::path::PathBuf,
    shared: Arc<Shared>,
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, shutdown: ShutdownWatch) {
        config::reload::run(self.path.clone(), self.shared.clone(), shutdown).await;
    }
}

struct MetricsListener {
    addr: String,
    shared: Arc<Shared>,
}

#[async_trait]
impl BackgroundService for MetricsListener {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let shared = self.shared.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let shared = shared.clone();
                async move {
                    shared.metrics.usage_queue.set(shared.usage.depth() as i64);
                    shared.metrics.in_flight.set(shared.in_flight.get() as i64);
                    shared.metrics.usage_quarantined.set(
                        shared
                            .usage_quarantined
                            .load(std::sync::atomic::Ordering::Relaxed)
                            as i64,
                    );
                    (
                        [("content-type", "text/plain; version=0.0.4")],
                        shared.metrics.render(),
                    )
                }
            }),
        );
        let listener = match self
            .addr
            .parse()
            .map_err(std::io::Error::other)
            .and_then(bind_reusable)
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(addr = %self.addr, error = %e, "cannot bind the metrics listener");
                return;
            }
        };
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown.changed().await;
            })
            .await;
    }
}
