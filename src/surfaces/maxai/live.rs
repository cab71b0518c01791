//! MaxAI's live events: a Socket.IO v4 server at `/socket.io/` ("customer-scoped events over
//! WebSocket"; the polling transport works too).
//!
//! - Connecting needs the customer's access token, the one every MaxAI route takes: in the
//!   Socket.IO `auth` payload (`{"token": "..."}`, also `access_token`, or the bare string), else
//!   `Authorization: Bearer` on the handshake, else `?token=` in its query. It is checked as
//!   the REST routes check it (signature, expiry, membership, token generation); a missing or
//!   bad one gets a `connect_error` (`{"message": "unauthorized: ..."}`) and no connection.
//! - The token stays checked while the socket is open: every [`recheck_period`] (15 s,
//!   `CATRACA_LIVE_RECHECK_MS`) the same check runs again (one per socket per period, by a
//!   timer of that socket: nothing runs while no socket is connected), and the socket is
//!   ended at its token's `exp` without asking. A socket whose token fails (expired, password
//!   changed, member removed, user disabled) gets `session.expired` (`{"reason": "..."}`)
//!   and then a server disconnect, and no event after it. A database that cannot answer ends
//!   nothing: the next period asks again.
//! - Each socket joins its customer's room (the organization the token names, the scope of
//!   every MaxAI route) and receives only that customer's events:
//!   `usage`, `key.created`, `key.revoked`, `budget.threshold` (shapes in [`render`]).
//! - Events come from [`crate::live::Feed`] (Postgres LISTEN), so a request served by any
//!   gateway node reaches the customer's sockets on every node.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use tokio::sync::{Notify, mpsc, watch};

use super::wire;
use crate::admin::{AdminState, rfc3339};
use crate::domain::DomainError;
use crate::live::{BudgetCrossing, Event, Feed, KeyChange, Kind, UsageLine};

/// Events buffered between the feed and the sockets (the feed waits when it is full).
const FANOUT_QUEUE: usize = 8192;
/// Packets a slow socket may have queued before it misses events.
const SOCKET_BUFFER: usize = 4096;

/// How often a connected socket's token is checked again (`CATRACA_LIVE_RECHECK_MS`, default
/// 15000).
pub fn recheck_period() -> Duration {
    Duration::from_millis(
        std::env::var("CATRACA_LIVE_RECHECK_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&ms| ms > 0)
            .unwrap_or(15_000),
    )
}

/// The event a socket gets before the server ends it for its token.
pub const SESSION_EXPIRED: &str = "session.expired";

/// The live layer's handle: for the health route.
#[derive(Clone)]
pub struct Live {
    io: SocketIo,
    feed: Arc<Feed>,
}

impl Live {
    /// Sockets connected to this node.
    pub fn connected(&self) -> usize {
        self.io.sockets().len()
    }

    /// `/api/realtime/health`'s extra fields.
    pub fn health(&self) -> Value {
        let st = self.feed.status();
        json!({
            "status": if st.live { "ok" } else { "degraded" },
            "transport": "socket.io",
            "path": "/socket.io/",
            "connected_clients": self.connected(),
            "feed": {
                "live": st.live,
                "events": st.events,
                "connects": st.connects,
                "last_event_at": st.last_event_ms
                    .and_then(|ms| time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
                    .map(rfc3339),
            },
        })
    }
}

/// The Socket.IO layer for the admin router, and its handle; spawns the feed and the fan-out,
/// which end with `shutdown` (every socket is closed then).
pub fn start(state: AdminState, shutdown: watch::Receiver<bool>) -> (SocketIoLayer, Live) {
    let (layer, io) = SocketIo::builder()
        .max_buffer_size(SOCKET_BUFFER)
        .build_layer();
    let auth_state = state.clone();
    let every = recheck_period();
    io.ns(
        "/",
        connected.with(move |s: SocketRef, TryData(auth): TryData<Value>| {
            let state = auth_state.clone();
            async move {
                let (token, exp) = admit(&state, &s, auth.ok()).await?;
                guard(state, s, token, exp, every);
                Ok::<(), Refused>(())
            }
        }),
    );
    let feed = Feed::new(state.pool.clone());
    let (tx, rx) = mpsc::channel(FANOUT_QUEUE);
    {
        let feed = feed.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { feed.run(tx, shutdown).await });
    }
    tokio::spawn(fan_out(io.clone(), rx));
    {
        let io = io.clone();
        let mut shutdown = shutdown;
        tokio::spawn(async move {
            let _ = shutdown.changed().await;
            io.close().await;
        });
    }
    (layer, Live { io, feed })
}

async fn connected(s: SocketRef) {
    tracing::debug!(sid = %s.id, "live socket connected");
}

/// Why a connection was refused (sent to the client as `connect_error`).
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unauthorized: {}", self.0)
    }
}

/// Check the token and join the customer's room, or refuse; the token and its `exp` (seconds
/// since the epoch) when admitted.
async fn admit(
    state: &AdminState,
    s: &SocketRef,
    auth: Option<Value>,
) -> Result<(String, i64), Refused> {
    let parts = s.req_parts();
    let token = auth
        .as_ref()
        .and_then(token_of_auth)
        .or_else(|| {
            parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(strip_bearer)
        })
        .or_else(|| {
            parts.uri.query().and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "token" || k == "access_token")
                    .and_then(|(_, v)| strip_bearer(&v))
            })
        })
        .ok_or_else(|| Refused("an access token is required".into()))?;
    let who = crate::domain::accounts::authenticate(&state.pool, &state.jwt, &token)
        .await
        .map_err(|e| Refused(e.to_string()))?;
    let exp = state
        .jwt
        .verify(&token)
        .map_err(|e| Refused(e.to_string()))?
        .exp;
    s.join(who.organization_id.to_string());
    Ok((token, exp))
}

/// Keep checking an admitted socket's token (see the module doc) until the socket is gone.
fn guard(state: AdminState, s: SocketRef, token: String, exp: i64, every: Duration) {
    let gone = Arc::new(Notify::new());
    {
        // the socket's one disconnect handler (a later `on_disconnect` would replace it; the
        // task then still ends at its next tick, on `connected()`); a permit is stored if the
        // task is not waiting yet, so a disconnect is never missed
        let gone = gone.clone();
        s.on_disconnect(move || async move { gone.notify_one() });
    }
    let now_s = time::OffsetDateTime::now_utc().unix_timestamp();
    let expires = tokio::time::Instant::now()
        + Duration::from_secs(u64::try_from(exp.saturating_sub(now_s)).unwrap_or(0));
    tokio::spawn(async move {
        loop {
            let next = tokio::time::Instant::now() + every;
            let at_expiry = expires <= next;
            tokio::select! {
                _ = gone.notified() => return,
                _ = tokio::time::sleep_until(next.min(expires)) => {}
            }
            if !s.connected() {
                return;
            }
            if at_expiry {
                end(s, "the access token expired");
                return;
            }
            match crate::domain::accounts::authenticate(&state.pool, &state.jwt, &token).await {
                Ok(_) => {}
                Err(e @ DomainError::Unauthorized(_)) => {
                    end(s, &e.to_string());
                    return;
                }
                // not the token's fault (the database): keep the socket, ask again later
                Err(e) => tracing::debug!(sid = %s.id, error = %e, "live token recheck failed"),
            }
        }
    });
}

/// Tell the socket why, then end it (a server disconnect: the client does not reconnect on
/// its own).
fn end(s: SocketRef, reason: &str) {
    tracing::debug!(sid = %s.id, reason, "live socket ended: its token no longer holds");
    let _ = s.emit(SESSION_EXPIRED, &json!({ "reason": reason }));
    if let Err(e) = s.disconnect() {
        tracing::debug!(error = %e, "live socket disconnect");
    }
}

/// The token of an `auth` payload: `{"token"}`, `{"access_token"}` or a bare string.
fn token_of_auth(v: &Value) -> Option<String> {
    match v {
        Value::String(t) => strip_bearer(t),
        Value::Object(m) => m
            .get("token")
            .or_else(|| m.get("access_token"))
            .and_then(Value::as_str)
            .and_then(strip_bearer),
        _ => None,
    }
}

/// `t` without a leading `Bearer `, trimmed; `None` when empty.
fn strip_bearer(t: &str) -> Option<String> {
    let t = t.trim();
    let t = match (t.get(..6), t.get(6..)) {
        (Some(scheme), Some(rest))
            if scheme.eq_ignore_ascii_case("bearer")
                && (rest.is_empty() || rest.starts_with(' ')) =>
        {
            rest.trim()
        }
        _ => t,
    };
    (!t.is_empty()).then(|| t.to_string())
}

/// Every event to the sockets of its customer on this node.
async fn fan_out(io: SocketIo, mut rx: mpsc::Receiver<Event>) {
    while let Some(ev) = rx.recv().await {
        let room = ev.organization_id.to_string();
        // nobody of this customer here: nothing to render
        if io.to(room.clone()).sockets().is_empty() {
            continue;
        }
        let (name, body) = render(&ev.kind);
        if let Err(e) = io.to(room).emit(name, &body).await {
            tracing::debug!(error = %e, event = name, "live event not delivered to every socket");
        }
    }
}

fn time_us(us: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .ok()
        .map(rfc3339)
}

/// An event's name and MaxAI payload:
///
/// - `usage`: the line `/api/usage/recent` shows (`request_id`, `timestamp` = start,
///   `key_name`, `key_prefix`, `endpoint`, `model`, `status`, `error`, `tokens_in`,
///   `tokens_out`, `total_tokens`, `cost` USD, `latency_ms`, `ttft_ms`, `stream`) plus
///   `key_id`, `client_request_id` and `completed_at` (start + latency);
/// - `key.created`, `key.revoked`: `id`, `name`, `key_prefix`, `status`, `rate_limit_rpm`,
///   `rate_limit_rpd`, `budget` (USD or null), `created_at`, `revoked_at`;
/// - `budget.threshold`: `key_id`, `key_prefix`, `key_name`, `threshold` (80 or 100),
///   `budget`, `budget_used` (USD), `percent_used`, `timestamp`.
pub fn render(kind: &Kind) -> (&'static str, Value) {
    match kind {
        Kind::Usage(u) => ("usage", usage(u)),
        Kind::KeyCreated(k) => ("key.created", key(k)),
        Kind::KeyRevoked(k) => ("key.revoked", key(k)),
        Kind::BudgetThreshold(b) => ("budget.threshold", budget(b)),
    }
}

fn usage(u: &UsageLine) -> Value {
    let end = u.ts_us.saturating_add(u.latency_ms.saturating_mul(1000));
    json!({
        "request_id": u.request_id,
        "client_request_id": u.client_request_id,
        "timestamp": time_us(u.ts_us),
        "completed_at": time_us(end),
        "key_id": u.key_id,
        "key_name": u.key_name,
        "key_prefix": u.key_prefix,
        "endpoint": u.endpoint,
        "model": u.model,
        "status": u.status,
        "error": u.error,
        "tokens_in": u.tokens_in,
        "tokens_out": u.tokens_out,
        "total_tokens": u.tokens_in.saturating_add(u.tokens_out),
        "cost": wire::usd(u.cost_usd_micros.unwrap_or(0)),
        "latency_ms": u.latency_ms,
        "ttft_ms": u.ttft_ms,
        "stream": u.stream,
    })
}

fn key(k: &KeyChange) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "key_prefix": k.key_prefix,
        "status": k.status,
        "rate_limit_rpm": k.rate_limit_rpm.unwrap_or(0),
        "rate_limit_rpd": k.rate_limit_rpd.unwrap_or(0),
        "budget": k.budget_usd_micros.map_or(Value::Null, wire::usd),
        "created_at": time_us(k.created_us),
        "revoked_at": k.revoked_us.and_then(time_us),
    })
}

fn budget(b: &BudgetCrossing) -> Value {
    let pct = if b.budget_usd_micros > 0 {
        b.spent_usd_micros as f64 * 100.0 / b.budget_usd_micros as f64
    } else {
        0.0
    };
    json!({
        "key_id": b.key_id,
        "key_prefix": b.key_prefix,
        "key_name": b.key_name,
        "threshold": b.threshold,
        "budget": wire::usd(b.budget_usd_micros),
        "budget_used": wire::usd(b.spent_usd_micros),
        "percent_used": (pct * 100.0).round() / 100.0,
        "timestamp": time_us(b.ts_us),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_taken_liberally() {
        assert_eq!(
            token_of_auth(&json!({"token": "a.b.c"})).as_deref(),
            Some("a.b.c")
        );
        assert_eq!(
            token_of_auth(&json!({"access_token": "Bearer a.b.c"})).as_deref(),
            Some("a.b.c")
        );
        assert_eq!(token_of_auth(&json!(" a.b.c ")).as_deref(), Some("a.b.c"));
        assert_eq!(token_of_auth(&json!({"token": ""})), None);
        assert_eq!(token_of_auth(&json!({})), None);
        assert_eq!(strip_bearer("bearer x").as_deref(), Some("x"));
        assert_eq!(strip_bearer("Bearer "), None);
    }

    #[test]
    fn usage_renders_as_a_recent_line_with_the_key_and_end() {
        let u: UsageLine = serde_json::from_value(json!({
            "request_id": "r", "key_id": 7, "key_prefix": "maxai-ab", "model": "m", "status": 200,
            "tokens_in": 3, "tokens_out": 4, "cost_usd_micros": 10000, "latency_ms": 1500,
            "ts_us": 1_700_000_000_000_000i64
        }))
        .unwrap_or_else(|e| unreachable!("{e}"));
        let (name, v) = render(&Kind::Usage(u));
        assert_eq!(name, "usage");
        assert_eq!(v["total_tokens"], 7);
        assert_eq!(v["cost"], json!(0.01));
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(v["completed_at"], "2023-11-14T22:13:21.5Z");
    }
}
