//! Usage events: one per request, whatever happened to it, handed to a [`UsageSink`].
//!
//! The gateway builds the event in its `logging` phase (which Pingora runs exactly once per
//! request, also after errors and client disconnects) and calls [`UsageSink::record`]. In the
//! no-database mode the sink is [`jsonl::JsonlSink`], an append-only file.

/// Events per write unless `usage.batch_size` says otherwise.
pub const DEFAULT_BATCH: u64 = 1000;
/// How long a batch fills unless `usage.flush_ms` says otherwise, ms.
pub const DEFAULT_FLUSH_MS: u64 = 20;

pub mod jsonl;
pub mod pg;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One request's record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UsageEvent {
    /// Gateway request id (also the `x-request-id` response header).
    pub request_id: String,
    /// Time the request arrived (RFC 3339 in JSON).
    #[serde(with = "time::serde::rfc3339")]
    pub ts: time::OffsetDateTime,
    /// Key name, when the key was recognised.
    pub key: Option<Arc<str>>,
    /// Tenant of the key (Postgres keys).
    pub organization_id: Option<uuid::Uuid>,
    /// Key id (Postgres keys).
    pub api_key_id: Option<uuid::Uuid>,
    /// Route, e.g. `chat.completions`.
    pub route: std::borrow::Cow<'static, str>,
    /// Public model the client asked for.
    pub model: Option<Arc<str>>,
    /// Deployment of the last attempt.
    pub deployment: Option<Arc<str>>,
    /// Provider of the last attempt.
    pub provider: Option<Arc<str>>,
    /// Status the client got (0 when the client went away before any response).
    pub status: u16,
    /// Error code when the request failed (`ApiError::code` or an upstream/disconnect code).
    pub error: Option<String>,
    /// Upstream attempts made.
    pub attempts: u32,
    /// Whether the response was streamed.
    pub stream: bool,
    /// Input tokens from the upstream's usage.
    pub prompt_tokens: u64,
    /// Output tokens from the upstream's usage.
    pub completion_tokens: u64,
    /// Whether the upstream reported usage.
    pub usage_reported: bool,
    /// Of `prompt_tokens`, read from the provider's prompt cache.
    #[serde(default)]
    pub cached_tokens: u64,
    /// Of `prompt_tokens`, written to the provider's prompt cache.
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// Of `completion_tokens`, spent reasoning.
    #[serde(default)]
    pub reasoning_tokens: u64,
    /// Upstream cost at catalog prices, micro-USD (see `pricing`).
    #[serde(default)]
    pub cost_upstream_usd_micros: Option<i64>,
    /// Billed amount (cost × FX × markup), micro-BRL.
    #[serde(default)]
    pub cost_billed_brl_micros: Option<i64>,
    /// Whole request time, ms.
    pub latency_ms: u64,
    /// Time to the first upstream body byte, ms.
    pub ttft_ms: Option<u64>,
    /// `x-session-id` or `x-tokia-session-id`.
    pub session_id: Option<String>,
    /// The client disconnected before the response was complete.
    pub client_disconnected: bool,
    /// The client's own request id (`x-client-request-id` or `x-request-id`).
    #[serde(default)]
    pub client_request_id: Option<String>,
}

/// Where usage events go.
#[async_trait::async_trait]
pub trait UsageSink: Send + Sync {
    /// Take one event. May wait when the sink's queue is full (back-pressure, never loss).
    async fn record(&self, event: UsageEvent);

    /// Events accepted but not yet written.
    fn depth(&self) -> u64;
}

/// The sending half every writer shares: a bounded queue (back-pressure, never loss) and a count
/// of events not yet written.
pub struct QueueSink {
    tx: tokio::sync::mpsc::Sender<UsageEvent>,
    queued: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// The receiving half, taken once by the writer task.
pub struct QueueRx {
    /// Events.
    pub rx: tokio::sync::Mutex<Option<tokio::sync::mpsc::Receiver<UsageEvent>>>,
    /// Shared with the sink; the writer subtracts what it wrote.
    pub queued: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// A queue of `capacity` events.
pub fn queue(capacity: usize) -> (QueueSink, QueueRx) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity);
    let queued = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    (
        QueueSink {
            tx,
            queued: queued.clone(),
        },
        QueueRx {
            rx: tokio::sync::Mutex::new(Some(rx)),
            queued,
        },
    )
}

#[async_trait::async_trait]
impl UsageSink for QueueSink {
    async fn record(&self, event: UsageEvent) {
        use std::sync::atomic::Ordering;
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(event).await.is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            tracing::error!("usage writer is gone; usage event lost");
        }
    }

    fn depth(&self) -> u64 {
        self.queued.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Wait `linger` for a batch to fill, unless the process is stopping (then not at all, and
/// the wait ends when the stop begins): a batch lingering past the grace period would be lost.
pub async fn linger(
    linger: std::time::Duration,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) {
    if *shutdown.borrow() {
        return;
    }
    tokio::select! {
        _ = tokio::time::sleep(linger) => {}
        // a stop (or its sender gone, which happens only at exit)
        _ = shutdown.changed() => {}
    }
}
