//! Usage events: one per request, whatever happened to it, handed to a [`UsageSink`].
//!
//! The gateway builds the event in its `logging` phase (which Pingora runs exactly once per
//! request, also after errors and client disconnects) and calls [`UsageSink::record`]. In the
//! no-database mode the sink is [`jsonl::JsonlSink`], an append-only file.

pub mod jsonl;
pub mod pg;

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
    pub key: Option<String>,
    /// Tenant of the key (Postgres keys).
    pub organization_id: Option<uuid::Uuid>,
    /// Key id (Postgres keys).
    pub api_key_id: Option<uuid::Uuid>,
    /// Route, e.g. `chat.completions`.
    pub route: std::borrow::Cow<'static, str>,
    /// Public model the client asked for.
    pub model: Option<String>,
    /// Deployment of the last attempt.
    pub deployment: Option<String>,
    /// Provider of the last attempt.
    pub provider: Option<String>,
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
    /// Whole request time, ms.
    pub latency_ms: u64,
    /// Time to the first upstream body byte, ms.
    pub ttft_ms: Option<u64>,
    /// `x-session-id` or `x-tokia-session-id`.
    pub session_id: Option<String>,
    /// The client disconnected before the response was complete.
    pub client_disconnected: bool,
}

/// Where usage events go.
#[async_trait::async_trait]
pub trait UsageSink: Send + Sync {
    /// Take one event. May wait when the sink's queue is full (back-pressure, never loss).
    async fn record(&self, event: UsageEvent);

    /// Events accepted but not yet written.
    fn depth(&self) -> u64;
}
