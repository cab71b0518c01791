//! Hot reload of routing: on SIGHUP or when the file changes, the config is read and validated
//! again; a valid one is built into a new [`Live`] and swapped in whole, an invalid one is
//! refused with a log line per problem and the old config keeps serving. In-flight requests
//! keep the snapshot they started with.
//!
//! Listeners, threads and the usage sink are fixed at start; a change to them is logged and
//! takes effect on restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::gateway::route::Live;
use crate::state::Shared;

/// How often the file's modification time and size are checked.
const POLL: Duration = Duration::from_millis(500);
/// A model asked for within this long is in use: a reload may not drop it unless allowed.
const IN_USE: Duration = Duration::from_secs(15 * 60);
/// How often provider host names are resolved again (off the request path).
const DNS_REFRESH: Duration = Duration::from_secs(30);

/// The reload loop; returns on shutdown.
pub async fn run(path: PathBuf, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    #[cfg(unix)]
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; file watching only");
            None
        }
    };
    let mut last = stamp(&path);
    let mut tick = tokio::time::interval(POLL);
    let mut dns = tokio::time::interval(DNS_REFRESH);
    dns.tick().await;
    loop {
        let hup_fut = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let reason = tokio::select! {
            _ = shutdown.changed() => return,
            _ = hup_fut => "SIGHUP",
            _ = dns.tick() => {
                refresh_dns(&shared).await;
                let now = crate::limits::unix_now();
                shared.limiter.local().sweep(now);
                continue;
            }
            _ = tick.tick() => {
                let now = stamp(&path);
                if now == last { continue; }
                last = now;
                "file changed"
            }
        };
        reload(&path, &shared, reason).await;
    }
}

/// Resolve provider host names again; swap in a new snapshot only when an address changed.
async fn refresh_dns(shared: &Shared) {
    let old = shared.live.load_full();
    if old
        .config
        .providers
        .iter()
        .all(|p| p.host.parse::<std::net::IpAddr>().is_ok())
    {
        return;
    }
    match Live::build(old.config.clone(), Some(&old), old.epoch).await {
        Ok(live) => {
            let changed = live
                .providers
                .iter()
                .zip(old.providers.iter())
                .any(|(a, b)| a.addr != b.addr);
            if changed {
                tracing::info!("provider addresses changed; routing updated");
                shared.live.store(Arc::new(live));
            }
        }
        Err(e) => tracing::warn!(problem = %e, "DNS refresh failed; keeping the known addresses"),
    }
}

fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Load, validate and swap; returns whether the new config is now serving.
pub async fn reload(path: &std::path::Path, shared: &Shared, reason: &str) -> bool {
    let config = match super::load_file(path) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                tracing::error!(problem = %e, "config reload refused; the previous config keeps serving");
            }
            shared.metrics.reloads.with_label_values(&["refused"]).inc();
            return false;
        }
    };
    let old = shared.live.load_full();
    if !config.allow_destructive_reload {
        let mut refused = Vec::new();
        if old.config.database.is_none() && !old.config.keys.is_empty() && config.keys.is_empty() {
            refused.push("it declares no API key, so every request would be refused".to_string());
        }
        let dropped = old.models_in_use_dropped_by(&config, IN_USE);
        if !dropped.is_empty() {
            refused.push(format!(
                "it drops models that served requests in the last {} minutes: {}",
                IN_USE.as_secs() / 60,
                dropped.join(", ")
            ));
        }
        if !refused.is_empty() {
            for r in &refused {
                tracing::error!(problem = %r, path = %path.display(),
                    "config reload refused (set allow_destructive_reload: true to allow it); the previous config keeps serving");
            }
            shared.metrics.reloads.with_label_values(&["refused"]).inc();
            return false;
        }
    }
    if config.listen != old.config.listen || config.metrics_listen != old.config.metrics_listen {
        tracing::warn!("listener changes take effect on restart");
    }
    match Live::build(Arc::new(config), Some(&old), old.epoch).await {
        Ok(live) => {
            let config = live.config.clone();
            shared.pix.set(config.pix.clone());
            shared.config.set(config.clone());
            shared.live.store(Arc::new(live));
            shared.metrics.reloads.with_label_values(&["ok"]).inc();
            tracing::info!(reason, path = %path.display(), "config reloaded");
            // the dashboards' model catalog follows the file too (it is a mirror: a failure
            // here is logged and retried by the next reload or start, never blocks routing)
            if let Some(db) = &shared.db_keys
                && let Err(e) = crate::store::catalog::sync(db.pool(), &config).await
            {
                tracing::warn!(error = %e, "model catalog not synced after reload");
            }
            true
        }
        Err(e) => {
            tracing::error!(problem = %e, "config reload refused; the previous config keeps serving");
            shared.metrics.reloads.with_label_values(&["refused"]).inc();
            false
        }
    }
}
