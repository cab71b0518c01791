//! API keys stored in Postgres, as the gateway sees them: an in-memory cache in front of one
//! indexed lookup, so a known key costs no database round trip.
//!
//! - A key seen once is served from memory; every gateway node LISTENs on `catraca_api_key`
//!   (a trigger notifies on every insert, update and delete) and drops its copy at once, so a
//!   revoked key is refused everywhere within milliseconds.
//! - An unknown key is remembered as unknown for [`NEGATIVE_TTL`], so a flood of bad keys
//!   costs one query per key and interval.
//! - [`POSITIVE_TTL`] is the backstop if a notification is lost; after a reconnect of the
//!   listener every entry is treated as stale.
//! - When Postgres is unreachable, a stale entry keeps serving (known keys keep working); a key
//!   never seen gets 503, not 401, because the gateway cannot know.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use sqlx::postgres::PgListener;

use super::pg::LazyPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::ApiError;
use crate::gateway::route::KeyInfo;

/// How long a cached key is trusted without a notification.
pub const POSITIVE_TTL: Duration = Duration::from_secs(60);
/// How long an unknown key is remembered as unknown.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Notification channel, see `migrations/0001_core.sql`.
pub const CHANNEL: &str = "catraca_api_key";

struct Entry {
    info: Option<Arc<KeyInfo>>,
    fetched: Instant,
    generation: u64,
}

/// Postgres-backed keys with a local cache.
pub struct PgKeys {
    pool: LazyPool,
    cache: DashMap<[u8; 32], Entry>,
    /// Bumped when the listener reconnects: notifications may have been missed.
    generation: AtomicU64,
    /// After a failed query, lookups do not try Postgres again before this time (ms since
    /// `epoch`): during an outage a request waits for no connect timeout.
    retry_at_ms: AtomicU64,
    epoch: Instant,
}

/// Pause between lookups while Postgres is failing.
const DOWN_BACKOFF: Duration = Duration::from_secs(1);

impl PgKeys {
    /// A store over `pool`; run [`PgKeys::listen`] beside it.
    pub fn new(pool: LazyPool) -> Self {
        PgKeys {
            pool,
            cache: DashMap::new(),
            generation: AtomicU64::new(0),
            retry_at_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// The key with this hash. `Ok(None)`: no such key. `Err`: Postgres is unreachable and the
    /// key was never seen.
    pub async fn lookup(&self, hash: &[u8; 32]) -> Result<Option<Arc<KeyInfo>>, ApiError> {
        let generation = self.generation.load(Ordering::Relaxed);
        let stale = match self.cache.get(hash) {
            Some(e) => {
                let ttl = if e.info.is_some() {
                    POSITIVE_TTL
                } else {
                    NEGATIVE_TTL
                };
                if e.generation == generation && e.fetched.elapsed() < ttl {
                    return Ok(e.info.clone());
                }
                Some(e.info.clone())
            }
            None => None,
        };
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        if now_ms < self.retry_at_ms.load(Ordering::Relaxed) {
            return stale.ok_or(ApiError::KeyStoreUnavailable);
        }
        match self.fetch(hash).await {
            Ok(info) => {
                self.cache.insert(
                    *hash,
                    Entry {
                        info: info.clone(),
                        fetched: Instant::now(),
                        generation,
                    },
                );
                Ok(info)
            }
            Err(e) => {
                let retry = self.epoch.elapsed() + DOWN_BACKOFF;
                self.retry_at_ms
                    .store(retry.as_millis() as u64, Ordering::Relaxed);
                tracing::warn!(error = %e, "key lookup failed; serving cached keys for a while");
                match stale {
                    Some(info) => Ok(info),
                    None => Err(ApiError::KeyStoreUnavailable),
                }
            }
        }
    }

    async fn fetch(&self, hash: &[u8; 32]) -> Result<Option<Arc<KeyInfo>>, sqlx::Error> {
        let row: Option<KeyRow> = sqlx::query_as(
            "SELECT k.api_key_id, k.organization_id, k.name, k.status, k.expires_at,
                    k.allowed_models, k.rate_limit_rps, k.rate_limit_rpm, k.rate_limit_rpd,
                    k.rate_limit_tpm, k.max_concurrency,
                    coalesce(o.rate_limit_rps, p.rate_limit_rps) AS org_rps,
                    coalesce(o.rate_limit_rpm, p.rate_limit_rpm) AS org_rpm,
                    coalesce(o.rate_limit_rpd, p.rate_limit_rpd) AS org_rpd,
                    coalesce(o.rate_limit_tpm, p.rate_limit_tpm) AS org_tpm,
                    coalesce(o.max_concurrency, p.max_concurrency) AS org_concurrency,
                    o.balance_brl_micros IS NOT NULL AS prepaid,
                    k.budget_usd_micros IS NOT NULL AS budgeted,
                    p.monthly_request_quota IS NOT NULL AS quota,
                    o.disabled_at IS NOT NULL AS org_disabled
             FROM api_key k
             JOIN organization o ON o.organization_id = k.organization_id
             LEFT JOIN plan p ON p.plan_id = o.plan_id
             WHERE k.key_hash = $1",
        )
        .bind(&hash[..])
        .fetch_optional(self.pool.get())
        .await?;
        Ok(row.map(|r| {
            Arc::new(KeyInfo::from_store(
                *hash,
                &r.name,
                // a disabled organization's keys are refused like disabled keys
                r.status != "active" || r.org_disabled,
                r.expires_at,
                r.allowed_models,
                r.organization_id,
                r.api_key_id,
                limits(
                    r.rate_limit_rps,
                    r.rate_limit_rpm,
                    r.rate_limit_rpd,
                    r.rate_limit_tpm,
                    r.max_concurrency,
                ),
                limits(
                    r.org_rps,
                    r.org_rpm,
                    r.org_rpd,
                    r.org_tpm,
                    r.org_concurrency,
                ),
                r.prepaid,
                r.budgeted,
                r.quota,
            ))
        }))
    }

    /// The database these keys are read from.
    pub fn pool(&self) -> &sqlx::PgPool {
        self.pool.get()
    }

    /// Drop one key's cached copy.
    pub fn invalidate(&self, hash: &[u8; 32]) {
        self.cache.remove(hash);
    }

    /// Keys held in memory (known and unknown).
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Follow `catraca_api_key` notifications until shutdown, reconnecting after errors.
    pub async fn listen(&self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut listener = match PgListener::connect_with(self.pool.get()).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "key listener cannot connect; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::warn!(error = %e, "LISTEN failed; retrying");
                continue;
            }
            // whatever changed while we were not listening must be read again
            self.generation.fetch_add(1, Ordering::Relaxed);
            backoff = Duration::from_millis(100);
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    n = listener.try_recv() => match n {
                        Ok(Some(n)) => {
                            let mut hash = [0u8; 32];
                            if n.payload() == "*" {
                                // an organization's or plan's limits changed
                                self.cache.clear();
                            } else if hex::decode_to_slice(n.payload(), &mut hash).is_ok() {
                                self.invalidate(&hash);
                            }
                        }
                        // connection lost: sqlx reconnects on the next call; count a generation
                        Ok(None) => {
                            self.generation.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "key listener error; reconnecting");
                            break;
                        }
                    }
                }
            }
        }
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    api_key_id: Uuid,
    organization_id: Uuid,
    name: String,
    status: String,
    expires_at: Option<time::OffsetDateTime>,
    allowed_models: Vec<String>,
    rate_limit_rps: Option<i32>,
    rate_limit_rpm: Option<i32>,
    rate_limit_rpd: Option<i32>,
    rate_limit_tpm: Option<i32>,
    max_concurrency: Option<i32>,
    org_rps: Option<i32>,
    org_rpm: Option<i32>,
    org_rpd: Option<i32>,
    org_tpm: Option<i32>,
    org_concurrency: Option<i32>,
    prepaid: bool,
    budgeted: bool,
    quota: bool,
    org_disabled: bool,
}

/// A row's limit columns (NULL or non-positive = no limit).
pub fn limits(
    rps: Option<i32>,
    rpm: Option<i32>,
    rpd: Option<i32>,
    tpm: Option<i32>,
    concurrency: Option<i32>,
) -> crate::limits::Limits {
    let u = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).filter(|v| *v > 0);
    crate::limits::Limits {
        rps: u(rps),
        rpm: u(rpm),
        rpd: u(rpd),
        tpm: u(tpm),
        concurrency: u(concurrency),
    }
}
