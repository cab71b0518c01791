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
use crate::usage::jsonl::{self, JsonlWriter};

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

/// Run the gateway until SIGINT/SIGTERM.
pub fn serve(path: &Path) -> anyhow::Result<()> {
    let config = load_or_report(path)?;
    let epoch = Instant::now();
    // DNS of providers is resolved here, off the request path; this small runtime is gone
    // before Pingora starts its own (a runtime around run_forever would panic).
    let live = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("startup runtime")?
        .block_on(Live::build(Arc::new(config.clone()), None, epoch))
        .map_err(anyhow::Error::msg)?;

    let (sink, writer) =
        jsonl::channel(config.usage.jsonl_path.clone(), config.usage.queue_capacity);
    let sink = Arc::new(sink);
    let shared = Arc::new(Shared {
        live: ArcSwap::from_pointee(live),
        metrics: Metrics::new().context("metrics registry")?,
        usage: sink.clone(),
    });

    let conf = ServerConf {
        threads: config.threads,
        grace_period_seconds: Some(config.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(5),
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let mut proxy = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        Gateway::new(shared.clone()),
        "catraca gateway",
    );
    for l in &config.listen {
        proxy.add_tcp(l);
    }
    server.add_service(proxy);
    server.add_service(background_service("usage writer", UsageWriter(writer)));
    server.add_service(background_service(
        "metrics",
        MetricsListener {
            addr: config.metrics_listen.clone(),
            shared: shared.clone(),
            sink,
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
    server.run_forever()
}

struct UsageWriter(JsonlWriter);

#[async_trait]
impl BackgroundService for UsageWriter {
    async fn start(&self, shutdown: ShutdownWatch) {
        self.0.run(shutdown).await;
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
    sink: Arc<jsonl::JsonlSink>,
}

#[async_trait]
impl BackgroundService for MetricsListener {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let shared = self.shared.clone();
        let sink = self.sink.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let shared = shared.clone();
                let sink = sink.clone();
                async move {
                    shared.metrics.usage_queue.set(sink.depth() as i64);
                    (
                        [("content-type", "text/plain; version=0.0.4")],
                        shared.metrics.render(),
                    )
                }
            }),
        );
        let listener = match tokio::net::TcpListener::bind(&self.addr).await {
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
