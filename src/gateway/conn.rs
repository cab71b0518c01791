//! Guards below the proxy, around every client connection: a cap of open connections per
//! client IP, a whole-time deadline for each request head, and the count of requests in flight
//! that a graceful shutdown waits for.
//!
//! Pingora bounds each *read* of a request head (60 s) but not the head as a whole, and a
//! reused keep-alive connection waits for its next head with no timeout at all, so a client
//! trickling one byte at a time could hold a connection for ever. [`HeadDeadline`] wraps the
//! proxy's per-request entry point: if the head is not complete (the gateway's
//! `early_request_filter` marks it) within `client.header_timeout_ms` — plus
//! [`KEEPALIVE_IDLE`] on a reused connection, where the wait starts right after the previous
//! response — the request future is dropped and the connection closed. [`PerIp`] wraps the
//! whole connection and refuses, at accept, connections past `client.max_connections_per_ip`:
//! such a connection gets a 429 and is closed without a reset (see [`refuse`]).

use std::cell::Cell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream, ServerApp};
use pingora::protocols::Stream;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;

/// How long a keep-alive connection may wait, idle, for its next request head (on top of the
/// head deadline).
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);

/// One HTTP/1 connection's state, scoped once per connection by [`PerIp`] (its requests run
/// in the connection's task): no allocation or extra task-local layer per request.
struct Conn {
    /// Requests started on this connection so far.
    requests: Cell<u32>,
    /// The current request's head is complete (set by the gateway's first phase).
    head_seen: Cell<bool>,
}

tokio::task_local! {
    static CONN: Conn;
}

/// Called by the gateway's first phase: the head of the current request is complete.
pub fn head_seen() {
    let _ = CONN.try_with(|c| c.head_seen.set(true));
}

/// Requests in flight (proxy sessions between their head and their usage event).
#[derive(Default)]
pub struct InFlight(AtomicU64);

impl InFlight {
    /// How many now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Count one until the returned guard is dropped.
    pub fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(self.clone())
    }
}

/// One request in flight.
pub struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The proxy's per-request entry point under a whole-head deadline.
pub struct HeadDeadline<A> {
    inner: Arc<A>,
    head: Duration,
}

impl<A> HeadDeadline<A> {
    /// Wrap `inner`; a head must be complete within `head`.
    pub fn new(inner: A, head: Duration) -> Self {
        HeadDeadline {
            inner: Arc::new(inner),
            head,
        }
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> HttpServerApp for HeadDeadline<A> {
    async fn process_new_http(
        self: &Arc<Self>,
        session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let Ok(reused) = CONN.try_with(|c| {
            c.head_seen.set(false);
            let before = c.requests.get();
            c.requests.set(before.saturating_add(1));
            before > 0
        }) else {
            // not under PerIp (HTTP/2 streams run in tasks of their own): no head deadline
            return self.inner.process_new_http(session, shutdown).await;
        };
        let deadline = if reused {
            self.head + KEEPALIVE_IDLE
        } else {
            self.head
        };
        let fut = self.inner.process_new_http(session, shutdown);
        tokio::pin!(fut);
        tokio::select! {
            biased;
            r = &mut fut => return r,
            _ = tokio::time::sleep(deadline) => {}
        }
        if !CONN.try_with(|c| c.head_seen.get()).unwrap_or(true) {
            tracing::debug!(
                ?deadline,
                reused,
                "request head not complete in time; closing"
            );
            return None; // dropping the session closes the connection
        }
        fut.await
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.inner.server_options()
    }

    fn h2_options(&self) -> Option<pingora::protocols::http::v2::server::H2Options> {
        self.inner.h2_options()
    }

    async fn http_cleanup(&self) {
        // wakes keep-alive sessions parked in a head read at shutdown
        self.inner.http_cleanup().await
    }
}

/// A cap of open connections per client IP, around a connection-level app.
pub struct PerIp<A> {
    inner: Arc<A>,
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
    refused: prometheus::IntCounter,
}

impl<A> PerIp<A> {
    /// At most `max` open connections per IP to `inner`; refusals are counted in `refused`.
    pub fn new(inner: A, max: usize, refused: prometheus::IntCounter) -> Self {
        PerIp {
            inner: Arc::new(inner),
            max: u32::try_from(max).unwrap_or(u32::MAX),
            open: Mutex::new(HashMap::new()),
            refused,
        }
    }

    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot<A>> {
        let mut open = self.open.lock();
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            owner: self.clone(),
            ip,
        })
    }
}

struct IpSlot<A> {
    owner: Arc<PerIp<A>>,
    ip: IpAddr,
}

impl<A> Drop for IpSlot<A> {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock();
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for PerIp<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let ip = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let _slot = match ip {
            Some(ip) => match self.acquire(ip) {
                Some(slot) => Some(slot),
                None => {
                    self.refused.inc();
                    tracing::debug!(%ip, max = self.max, "connection refused: too many from this IP");
                    refuse(stream).await;
                    return None;
                }
            },
            None => None,
        };
        let conn = Conn {
            requests: Cell::new(0),
            head_seen: Cell::new(false),
        };
        CONN.scope(conn, self.inner.process_new(stream, shutdown))
            .await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

/// What a connection past the per-IP cap is told (in the OpenAI error shape: its path, and so
/// its contract, is not read).
const REFUSAL_BODY: &str = concat!(
    r#"{"error":{"message":"Too many open connections from this address; "#,
    r#"reuse a connection or retry later.","type":"rate_limit_error","param":null,"#,
    r#""code":"too_many_connections"}}"#
);

/// The longest a refused connection's head may take to arrive; its input is drained for as
/// long again after the answer.
const REFUSE_WAIT: Duration = Duration::from_millis(1000);

/// How much of a refused connection's input is read, at most, before the answer and after.
const REFUSE_DRAIN: usize = 64 * 1024;

/// Answer a refused connection with a 429 and close it without a reset. Closing a socket with
/// unread input makes the kernel send an RST, which can destroy a response in flight (the
/// client then sees `connection reset`, not the 429), so the head is read first and, after the
/// answer and our FIN, the rest of the input is drained until the client closes: at most
/// 2 × [`REFUSE_DRAIN`] bytes and 2 × [`REFUSE_WAIT`] per refused connection.
async fn refuse(mut stream: Stream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = [0u8; 4096];
    let mut read = 0usize;
    let head = async {
        // bytes of `\r\n\r\n` matched so far, across reads
        let mut matched = 0;
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            read += n;
            for &b in &buf[..n] {
                matched = match (matched, b) {
                    (0 | 2, b'\r') => matched + 1,
                    (1 | 3, b'\n') => matched + 1,
                    (_, b'\r') => 1,
                    _ => 0,
                };
                if matched == 4 {
                    return true;
                }
            }
            if read >= REFUSE_DRAIN {
                return false;
            }
        }
    };
    // nothing to answer, or a head too slow or too big: closed as it is
    if !matches!(tokio::time::timeout(REFUSE_WAIT, head).await, Ok(true)) {
        return;
    }
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{REFUSAL_BODY}",
        REFUSAL_BODY.len()
    );
    if stream.write_all(answer.as_bytes()).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut drained = 0;
        while drained < REFUSE_DRAIN {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(REFUSE_WAIT, drain).await;
}
