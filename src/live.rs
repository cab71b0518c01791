//! The live feed: what happened to an organization's keys and usage, for every admin node, as
//! it happens (MaxAI's `/socket.io/`, `crate::surfaces::maxai::live`).
//!
//! Postgres carries it, so an event written by any gateway node reaches the admin app of every
//! node. Channel [`CHANNEL`], each payload a JSON array (under 8000 bytes) of
//! `{"o": organization_id, "ev": name, "d": {...}}`:
//!
//! - `usage`: every usage event stored for an organization, notified by the usage writer in
//!   the statement that inserts its batch (`src/usage/pg.rs`; the gateway's request path does
//!   nothing more), chunked under the size limit; its `d` is an array of [`UsageLine`]'s
//!   fields in their order (the busiest kind: positional is cheaper for Postgres to build);
//! - `budget.threshold`: from the same statement, when a key's spend crosses 80 % or 100 % of
//!   its USD budget (once per crossing: the before and after of the row's locked update);
//! - `key.created`, `key.revoked`: a trigger on `api_key` (`migrations/0019_live_events.sql`),
//!   so keys made or revoked by any path (MaxAI, SabIA, operator API, CLI, SQL) are seen.
//!
//! A notification sent while the listener is reconnecting is lost (dashboards read the REST
//! routes again after a reconnect); [`Feed::status`] says whether the feed is live.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

/// Notification channel (the usage writer, and the trigger of `0019_live_events.sql`).
pub const CHANNEL: &str = "catraca_live";

/// One usage event, as stored (notified as an array of these fields, in this order).
#[derive(Debug, Clone, Deserialize)]
pub struct UsageLine {
    pub request_id: String,
    /// The client's own id (`x-client-request-id` / `x-request-id`), when it sent one.
    #[serde(default)]
    pub client_request_id: Option<String>,
    /// The key's integer id (MaxAI's key id).
    #[serde(default)]
    pub key_id: Option<i64>,
    #[serde(default)]
    pub key_prefix: Option<String>,
    #[serde(default)]
    pub key_name: Option<String>,
    /// Route, e.g. `chat`.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    pub status: i64,
    #[serde(default)]
    pub error: Option<String>,
    pub tokens_in: i64,
    pub tokens_out: i64,
    #[serde(default)]
    pub cost_usd_micros: Option<i64>,
    pub latency_ms: i64,
    #[serde(default)]
    pub ttft_ms: Option<i64>,
    #[serde(default)]
    pub stream: bool,
    /// When the request started, microseconds since the epoch.
    pub ts_us: i64,
}

/// A key as it was created or revoked.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyChange {
    pub id: i64,
    pub name: String,
    pub key_prefix: String,
    pub status: String,
    #[serde(default)]
    pub rate_limit_rpm: Option<i64>,
    #[serde(default)]
    pub rate_limit_rpd: Option<i64>,
    #[serde(default)]
    pub budget_usd_micros: Option<i64>,
    pub created_us: i64,
    #[serde(default)]
    pub revoked_us: Option<i64>,
}

/// A key's spend crossed a share of its budget.
#[derive(Debug, Clone, Deserialize)]
pub struct BudgetCrossing {
    pub key_id: i64,
    pub key_prefix: String,
    pub key_name: String,
    /// 80 or 100 (percent).
    pub threshold: i64,
    pub budget_usd_micros: i64,
    pub spent_usd_micros: i64,
    /// When the batch that crossed it was stored, microseconds since the epoch.
    pub ts_us: i64,
}

/// What happened.
#[derive(Debug, Clone)]
pub enum Kind {
    Usage(UsageLine),
    KeyCreated(KeyChange),
    KeyRevoked(KeyChange),
    BudgetThreshold(BudgetCrossing),
}

/// One event of one organization.
#[derive(Debug, Clone)]
pub struct Event {
    pub organization_id: Uuid,
    pub kind: Kind,
}

#[derive(Deserialize)]
struct Item {
    o: Uuid,
    ev: String,
    d: serde_json::Value,
}

/// The events of one notification payload; malformed items and unknown names are skipped.
pub fn parse(payload: &str) -> Vec<Event> {
    let Ok(items) = serde_json::from_str::<Vec<Item>>(payload) else {
        tracing::warn!(
            bytes = payload.len(),
            "unreadable live notification skipped"
        );
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|i| {
            let kind = match i.ev.as_str() {
                "usage" => serde_json::from_value(i.d).ok().map(Kind::Usage),
                "key.created" => serde_json::from_value(i.d).ok().map(Kind::KeyCreated),
                "key.revoked" => serde_json::from_value(i.d).ok().map(Kind::KeyRevoked),
                "budget.threshold" => serde_json::from_value(i.d).ok().map(Kind::BudgetThreshold),
                _ => None,
            }?;
            Some(Event {
                organization_id: i.o,
                kind,
            })
        })
        .collect()
}

/// The feed's state, for the health route.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    /// The LISTEN connection is up.
    pub live: bool,
    /// Events received since start.
    pub events: u64,
    /// When the last one arrived (ms since the epoch), if any.
    pub last_event_ms: Option<i64>,
    /// Times the LISTEN connection was (re)established.
    pub connects: u64,
}

/// The LISTEN side: one dedicated connection per admin process.
pub struct Feed {
    pool: PgPool,
    live: AtomicBool,
    events: AtomicU64,
    last_event_ms: AtomicI64,
    connects: AtomicU64,
}

impl Feed {
    /// A feed over `pool` (not yet listening: run [`Feed::run`]).
    pub fn new(pool: PgPool) -> Arc<Self> {
        Arc::new(Feed {
            pool,
            live: AtomicBool::new(false),
            events: AtomicU64::new(0),
            last_event_ms: AtomicI64::new(0),
            connects: AtomicU64::new(0),
        })
    }

    /// Its state now.
    pub fn status(&self) -> Status {
        let last = self.last_event_ms.load(Ordering::Relaxed);
        Status {
            live: self.live.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            last_event_ms: (last > 0).then_some(last),
            connects: self.connects.load(Ordering::Relaxed),
        }
    }

    /// Follow [`CHANNEL`] until shutdown (or until `out` is closed), sending every event to
    /// `out`; reconnects after a lost connection. A full `out` holds the feed back (Postgres
    /// queues the notifications meanwhile), nothing is dropped here.
    pub async fn run(&self, out: mpsc::Sender<Event>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut listener = match PgListener::connect_with(&self.pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "live feed cannot connect; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::warn!(error = %e, "live feed LISTEN failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            backoff = Duration::from_millis(100);
            self.live.store(true, Ordering::Relaxed);
            self.connects.fetch_add(1, Ordering::Relaxed);
            loop {
                tokio::select! {
                    _ = shutdown.changed() => {
                        self.live.store(false, Ordering::Relaxed);
                        return;
                    }
                    n = listener.try_recv() => match n {
                        Ok(Some(n)) => {
                            let events = parse(n.payload());
                            if events.is_empty() {
                                continue;
                            }
                            self.events.fetch_add(events.len() as u64, Ordering::Relaxed);
                            let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
                            self.last_event_ms.store(now as i64, Ordering::Relaxed);
                            for ev in events {
                                if out.send(ev).await.is_err() {
                                    self.live.store(false, Ordering::Relaxed);
                                    return;
                                }
                            }
                        }
                        // the connection was lost: connect again explicitly, so `live` is true
                        // only while a LISTEN stands
                        Ok(None) => {
                            tracing::warn!("live feed connection lost; reconnecting");
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "live feed error; reconnecting");
                            break;
                        }
                    }
                }
            }
            self.live.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind_and_skips_the_unknown() {
        let o = Uuid::new_v4();
        let payload = serde_json::json!([
            {"o": o, "ev": "usage", "d": ["r1", null, 3, "maxai-ab", "k", "chat.completions", "m",
             200, null, 5, 7, 10, 4, null, false, 1]},
            {"o": o, "ev": "key.created", "d": {"id": 3, "name": "k", "key_prefix": "maxai-ab",
             "status": "active", "created_us": 1}},
            {"o": o, "ev": "budget.threshold", "d": {"key_id": 3, "key_prefix": "p", "key_name": "k",
             "threshold": 80, "budget_usd_micros": 100, "spent_usd_micros": 80, "ts_us": 1}},
            {"o": o, "ev": "something.else", "d": {}},
            {"o": o, "ev": "usage", "d": {"missing": "fields"}},
        ])
        .to_string();
        let ev = parse(&payload);
        assert_eq!(ev.len(), 3);
        assert!(
            matches!(&ev[0].kind, Kind::Usage(u) if u.request_id == "r1" && u.key_id == Some(3)
                && u.tokens_out == 7 && u.cost_usd_micros == Some(10) && u.ts_us == 1)
        );
        assert!(matches!(&ev[1].kind, Kind::KeyCreated(k) if k.id == 3));
        assert!(matches!(&ev[2].kind, Kind::BudgetThreshold(b) if b.threshold == 80));
        assert!(ev.iter().all(|e| e.organization_id == o));
        assert!(parse("not json").is_empty());
    }
}
