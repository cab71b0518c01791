//! The data plane: `impl ProxyHttp for Gateway`. Each phase is a few lines that call the
//! module owning it, in the order Pingora runs them:
//!
//! | phase | module |
//! |---|---|
//! | `request_filter`: route, key auth, body read, model → deployments | [`request`] |
//! | `upstream_peer` / `fail_to_connect`: next deployment, breaker | [`upstream`], [`route`] |
//! | `upstream_request_filter` / `request_body_filter`: credentials, path, body rewrite | [`upstream`] |
//! | `upstream_response_filter`: 429/5xx → failover | [`stream`] |
//! | `response_body_filter`: bytes through, SSE usage scan | [`stream`], [`crate::sse`] |
//! | `fail_to_proxy`: the client's error, or an SSE error event mid-stream | [`respond`] |
//! | `logging`: usage event and metrics | [`logging`] |

pub mod bigbody;
pub mod bradax;
pub mod conn;
pub mod ctx;
pub mod health;
pub mod logging;
pub mod messages;
pub mod multipart;
pub mod rate_usage;
pub mod request;
pub mod respond;
pub mod route;
pub mod stream;
pub mod surface;
pub mod translate;
pub mod upstream;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType, Result};

use crate::error::ApiError;
use crate::state::Shared;
use ctx::{AttemptFailure, RequestCtx};

/// Longest single read of a request body (the whole body has `client.body_timeout_ms`).
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The Pingora proxy application.
pub struct Gateway {
    shared: Arc<Shared>,
    id_prefix: u64,
    id_counter: AtomicU64,
}

impl Gateway {
    /// A gateway over shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        Gateway {
            shared,
            id_prefix: fastrand::u64(..),
            id_counter: AtomicU64::new(0),
        }
    }

    /// `req_` + the process's random prefix (16 hex digits) + a counter (at least 8 hex digits), written without the formatting machinery.
    fn next_request_id(&self) -> String {
        let n = self.id_counter.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(36);
        id.push_str("req_");
        push_hex(&mut id, self.id_prefix, 16);
        push_hex(&mut id, n, (64 - n.leading_zeros()).div_ceil(4).max(8));
        id
    }

    fn record_attempt_error(&self, ctx: &mut RequestCtx, failure: AttemptFailure, kind: &str) {
        ctx.last_failure = Some(failure);
        let (Some(live), Some(d)) = (ctx.live.as_ref(), ctx.deployment) else {
            return;
        };
        let name = &live.deployment_names[d];
        let health = &live.providers[live.config.deployments[d].provider].health;
        if ctx.upstream_status.is_some() {
            // the head was counted as an answer; its body then broke
            health.broke_after_answer();
        } else {
            health.failed();
        }
        let f = &live.config.failover;
        if live.breakers[d].on_failure(live.now_ms(), f.failures_to_trip, f.cooldown) {
            self.shared
                .metrics
                .circuit_open
                .with_label_values(&[name])
                .inc();
            tracing::warn!(deployment = %name, "circuit opened");
        }
        self.shared
            .metrics
            .attempts
            .with_label_values(&[name, kind])
            .inc();
        self.shared
            .metrics
            .upstream_errors
            .with_label_values(&[name, kind])
            .inc();
        tracing::info!(request_id = %ctx.request_id, deployment = %name, attempt = ctx.attempts, kind, "upstream attempt failed");
    }
}

/// Add the time since `t0` (taken only when the overhead header is on) to the request's.
fn add_overhead(ctx: &mut RequestCtx, t0: Option<std::time::Instant>) {
    if let (Some(t0), Some(d)) = (t0, ctx.overhead.as_mut()) {
        *d += t0.elapsed();
    }
}

/// `n`'s low `digits` hex digits, zero-padded, lower case.
fn push_hex(out: &mut String, n: u64, digits: u32) {
    for i in (0..digits).rev() {
        out.push(char::from(
            b"0123456789abcdef"[(n >> (i * 4)) as usize & 0xf],
        ));
    }
}

fn failure_of(e: &Error) -> (AttemptFailure, &'static str) {
    match e.etype() {
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
            (AttemptFailure::Timeout, "timeout")
        }
        ErrorType::HTTPStatus(s) => (AttemptFailure::Status(*s), "status"),
        ErrorType::ConnectRefused
        | ErrorType::ConnectNoRoute
        | ErrorType::ConnectError
        | ErrorType::TLSHandshakeFailure
        | ErrorType::TLSHandshakeTimedout => (AttemptFailure::Connect, "connect_error"),
        _ => (AttemptFailure::Io, "io_error"),
    }
}

/// A WebSocket opening handshake (RFC 6455 §4.1): an HTTP/1.1 `GET` with `Upgrade: websocket`
/// and `Connection: upgrade`, and no body (so a request cannot name an upgrade to have a real
/// body read without its deadline: one that is refused stays an ordinary bodiless request).
fn is_websocket_handshake(req: &RequestHeader) -> bool {
    let has_token = |name: http::header::HeaderName, token: &str| {
        req.headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    req.method == http::Method::GET
        && req.version == http::Version::HTTP_11
        && has_token(http::header::UPGRADE, "websocket")
        && has_token(http::header::CONNECTION, "upgrade")
        && !req.headers.contains_key(http::header::TRANSFER_ENCODING)
        && req
            .headers
            .get(http::header::CONTENT_LENGTH)
            .is_none_or(|v| v.as_bytes() == b"0")
}

/// The header the gateway gives the admin app the client's address in.
pub const CLIENT_IP: &str = "x-catraca-client-ip";

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        let mut ctx = RequestCtx::new();
        ctx.in_flight = Some(self.shared.in_flight.enter());
        ctx
    }

    async fn early_request_filter(&self, _s: &mut Session, _ctx: &mut RequestCtx) -> Result<()> {
        conn::head_seen();
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        ctx.live = Some(self.shared.live.load_full());
        ctx.request_id = self.next_request_id();
        ctx.ts = time::OffsetDateTime::now_utc();
        ctx.session_id = request::header_str(session, request::names::X_SESSION_ID)
            .or_else(|| request::header_str(session, request::names::X_TOKIA_SESSION_ID))
            .map(|s| s.chars().take(128).collect());
        ctx.client_request_id = request::header_str(session, request::names::X_CLIENT_REQUEST_ID)
            .or_else(|| request::header_str(session, request::names::X_REQUEST_ID))
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_string);
        let (keys, admin) = (self.shared.db_keys.as_deref(), self.shared.admin_addr);
        let client = ctx.live.as_ref().map(|l| l.config.client);
        if let Some(c) = client {
            if let Err(e) = request::check_head(session, &c) {
                self.shared
                    .metrics
                    .client_refused
                    .with_label_values(&["headers_too_large"])
                    .inc();
                session.set_keepalive(None);
                respond::error(session, ctx, &e).await;
                return Ok(true);
            }
            // the body, read here or streamed through, must arrive within its deadline
            ctx.body_deadline = Some(ctx.start + c.body_timeout);
        }
        // Tokia's session id goes on the usage event as sent: 1 to 80 printable ASCII bytes
        if let Some(v) = session
            .req_header()
            .headers
            .get(request::names::X_TOKIA_SESSION_ID)
        {
            let b = v.as_bytes();
            if b.is_empty() || b.len() > 80 || !b.iter().all(|c| (0x21..=0x7e).contains(c)) {
                let e = crate::error::ApiError::InvalidRequest(
                    "x-tokia-session-id must be 1 to 80 printable ASCII characters".into(),
                );
                respond::error(session, ctx, &e).await;
                return Ok(true);
            }
        }
        let outcome = request::prepare(
            session,
            ctx,
            keys,
            admin,
            &self.shared.limiter,
            self.shared.funds.as_deref(),
            self.shared.jwt.as_deref(),
        )
        .await;
        if ctx.live.as_ref().is_some_and(|l| l.config.overhead_header) {
            // the request phase, client body read included (a slow client is not catraca's
            // time, but a body read ahead is what the gateway chose to do)
            ctx.overhead = Some(ctx.start.elapsed());
        }
        match outcome {
            Ok(request::Outcome::Proxy | request::Outcome::Admin) => {
                // A body Pingora streams through (uploads, admin calls) is read under Pingora's
                // read timeout; a body read here already was, under its own deadline, and
                // setting one would cost every request a timer.
                if let Some(c) = client {
                    if ctx.admin.is_some() {
                        if is_websocket_handshake(session.req_header()) {
                            // After its 101 a WebSocket's frames are what Pingora reads as the
                            // request body: neither the body deadline nor a read timeout (an
                            // idle socket is normal; the admin app's Socket.IO pings every
                            // 25 s and closes a client that stops answering, which ends this
                            // proxy session too). The handshake has no body of its own, so
                            // nothing else escapes the deadline.
                            ctx.body_deadline = None;
                            session.set_read_timeout(None);
                        } else {
                            session.set_read_timeout(Some(c.body_timeout.min(BODY_READ_TIMEOUT)));
                        }
                    } else if ctx.route.is_some_and(ctx::Route::is_upload) {
                        session.set_read_timeout(Some(c.body_timeout.min(BODY_READ_TIMEOUT)));
                    }
                }
                Ok(false)
            }
            Ok(request::Outcome::Respond(body)) => {
                respond::json(session, ctx, 200, body).await;
                Ok(true)
            }
            Err(e) => {
                respond::error(session, ctx, &e).await;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(&self, _s: &mut Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        if ctx.client_disconnected {
            // never start another attempt for a client that is gone
            return Error::e_explain(ErrorType::ConnectionClosed, "client went away")
                .map_err(|e| e.into_down());
        }
        if let Some(addr) = ctx.admin {
            return upstream::admin_peer(addr, ctx);
        }
        let t0 = ctx.overhead.map(|_| std::time::Instant::now());
        if ctx.attempts > 0
            && let (Some(live), Some(m)) = (ctx.live.as_ref(), ctx.model)
        {
            let name = live.config.models[m].name.as_str();
            self.shared
                .metrics
                .failovers
                .with_label_values(&[name])
                .inc();
        }
        let peer = upstream::next_peer(ctx);
        add_overhead(ctx, t0);
        peer
    }

    fn fail_to_connect(
        &self,
        _s: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let (failure, kind) = failure_of(&e);
        self.record_attempt_error(ctx, failure, kind);
        e.set_retry(ctx.can_retry());
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if ctx.admin.is_some() {
            // the admin app throttles logins per client address: it gets the one this
            // connection came from, never a value the client set
            req.remove_header(CLIENT_IP);
            if let Some(ip) = session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip())
            {
                req.insert_header(CLIENT_IP, ip.to_string())?;
            }
            // A pooled connection the admin app already closed fails a POST that Pingora does
            // not retry (seen as a rare 502 under test load); a fresh loopback connection per
            // dashboard call avoids the race for the cost of one local connect. A WebSocket
            // handshake keeps asking for its upgrade (its connection is never pooled: Pingora
            // closes it when either side ends).
            let connection = if is_websocket_handshake(req) {
                "upgrade"
            } else {
                "close"
            };
            req.insert_header("connection", connection)?;
            return Ok(());
        }
        let t0 = ctx.overhead.map(|_| std::time::Instant::now());
        let r = upstream::rewrite_request(req, ctx);
        add_overhead(ctx, t0);
        r
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if !end_of_stream && let Some(deadline) = ctx.body_deadline {
            // a body streamed through (upload, admin call): the next read gets what is left
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Error::e_explain(ErrorType::ReadTimedout, "client.body_timeout_ms")
                    .map_err(|e| e.into_down());
            }
            session.set_read_timeout(Some(left.min(BODY_READ_TIMEOUT)));
        }
        upstream::body_chunk(body, end_of_stream, ctx)
    }

    async fn upstream_response_filter(
        &self,
        s: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if ctx.admin.is_some() {
            ctx.response_started = true;
            return Ok(());
        }
        let t0 = ctx.overhead.map(|_| std::time::Instant::now());
        stream::on_upstream_header(&self.shared, resp, ctx)?;
        // a deprecated route (config `deprecations:`; none configured: one length check)
        if let Some(live) = ctx.live.as_ref()
            && let Some(d) = crate::config::deprecation::find(
                &live.config.deprecations,
                s.req_header().method.as_str(),
                s.req_header().uri.path(),
            )
        {
            resp.insert_header("deprecated", "true")?;
            if let Some(v) = &d.sunset {
                resp.insert_header("sunset", v.as_str())?;
            }
        }
        add_overhead(ctx, t0);
        if let Some(d) = ctx.overhead {
            // milliseconds with microsecond precision, e.g. 0.042
            let us = d.as_micros();
            resp.insert_header(
                "x-catraca-overhead-ms",
                format!("{}.{:03}", us / 1000, us % 1000),
            )?;
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _s: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        if ctx.admin.is_none() {
            stream::on_body(body, end_of_stream, ctx)?;
        }
        Ok(None)
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("peer: {peer}"));
        if ctx.admin.is_some() {
            e.set_retry(false);
            return e;
        }
        // A client that went away ends the request: no other deployment is asked (a real
        // provider would bill the abandoned answer twice) and nothing counts against this one.
        if e.esource() == &ErrorSource::Downstream {
            ctx.client_disconnected |= e.etype() != &ErrorType::ReadTimedout;
            e.set_retry(false);
            return e;
        }
        // The gateway's own failure (not the provider's) never counts against a deployment
        // nor moves the request to another one.
        if e.esource() == &ErrorSource::Internal || e.etype() == &ErrorType::InternalError {
            e.set_retry(false);
            return e;
        }
        // Our own failover signal (429/5xx) was already counted in upstream_response_filter.
        if !matches!(e.etype(), ErrorType::HTTPStatus(_)) {
            let (failure, kind) = failure_of(&e);
            self.record_attempt_error(ctx, failure, kind);
        }
        // POST is safe to retry here: nothing reached the client and the body is replayable.
        if ctx.response_started || session.as_ref().retry_buffer_truncated() || !ctx.can_retry() {
            e.set_retry(false);
        } else if !matches!(e.etype(), ErrorType::HTTPStatus(_)) {
            e.set_retry(true);
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if e.esource() == &ErrorSource::Downstream {
            // The client's fault, never a 5xx and never the upstream's or the admin app's: a
            // client too slow with its body gets 408 (if nothing was answered yet); one that
            // went away gets nothing.
            if e.etype() == &ErrorType::ReadTimedout && session.response_written().is_none() {
                self.shared
                    .metrics
                    .client_refused
                    .with_label_values(&["body_timeout"])
                    .inc();
                let err = ApiError::RequestTimeout;
                respond::error(session, ctx, &err).await;
                return FailToProxy {
                    error_code: err.status(),
                    can_reuse_downstream: false,
                };
            }
            ctx.client_disconnected = true;
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        if ctx.response_started && session.response_written().is_none() {
            // The upstream broke after its header but before anything reached the client (or
            // its answer could not be translated).
            let err = ctx
                .stream_error
                .take()
                .unwrap_or(ApiError::StreamInterrupted);
            respond::error(session, ctx, &err).await;
            return FailToProxy {
                error_code: err.status(),
                can_reuse_downstream: false,
            };
        }
        if ctx.response_started {
            // Too late for a status: end the stream with an error event, bill what was sent.
            let err = ctx
                .stream_error
                .take()
                .unwrap_or(ApiError::StreamInterrupted);
            ctx.error_code = Some(err.code());
            if bradax::translates_stream(ctx) {
                let _ = session
                    .write_response_body(Some(bradax::error_event(&err)), true)
                    .await;
            } else if messages::translates_stream(ctx) {
                // Anthropic's `event: error` (nothing when the message already ended)
                if let Some(ev) = messages::error_event(ctx, &err) {
                    let _ = session.write_response_body(Some(ev), true).await;
                }
            } else if ctx.sse_active {
                let _ = session
                    .write_response_body(Some(err.sse_event()), true)
                    .await;
            }
            return FailToProxy {
                error_code: ctx.upstream_status.unwrap_or(502),
                can_reuse_downstream: false,
            };
        }
        let err = if let Some(client) = ctx.client_error.take() {
            // an attempt's request the provider's dialect cannot express: the client's error
            client
        } else if ctx.admin.is_some() {
            tracing::error!(request_id = %ctx.request_id, error = %e, "admin app unreachable");
            ApiError::UpstreamUnavailable(1)
        } else if ctx.attempts == 0 {
            tracing::error!(request_id = %ctx.request_id, error = %e, "proxy failed before any attempt");
            ApiError::Internal
        } else {
            if ctx.last_failure.is_none() {
                ctx.last_failure = Some(failure_of(e).0);
            }
            ctx.exhausted_error()
        };
        respond::error(session, ctx, &err).await;
        FailToProxy {
            error_code: err.status(),
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        logging::finish(&self.shared, session, e, ctx).await;
    }

    fn suppress_error_log(&self, _s: &Session, ctx: &RequestCtx, _e: &Error) -> bool {
        // client disconnects are normal traffic; they are counted in the usage event
        ctx.client_disconnected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bodiless_get_asking_for_websocket_is_a_handshake() {
        let req = |method: &str, headers: &[(&str, &str)]| {
            let mut r = RequestHeader::build(method, b"/socket.io/?EIO=4", None)
                .unwrap_or_else(|e| unreachable!("{e}"));
            for (k, v) in headers {
                r.append_header(k.to_string(), *v)
                    .unwrap_or_else(|e| unreachable!("{e}"));
            }
            r
        };
        let ws = [("upgrade", "websocket"), ("connection", "Upgrade")];
        assert!(is_websocket_handshake(&req("GET", &ws)));
        assert!(is_websocket_handshake(&req(
            "GET",
            &[
                ("Upgrade", "WebSocket"),
                ("Connection", "keep-alive, Upgrade")
            ]
        )));
        assert!(is_websocket_handshake(&req(
            "GET",
            &[ws[0], ws[1], ("content-length", "0")]
        )));
        assert!(!is_websocket_handshake(&req("POST", &ws)));
        assert!(!is_websocket_handshake(&req("GET", &ws[..1])));
        assert!(!is_websocket_handshake(&req("GET", &ws[1..])));
        assert!(!is_websocket_handshake(&req(
            "GET",
            &[("upgrade", "h2c"), ws[1]]
        )));
        assert!(!is_websocket_handshake(&req(
            "GET",
            &[ws[0], ws[1], ("content-length", "500")]
        )));
        assert!(!is_websocket_handshake(&req(
            "GET",
            &[ws[0], ws[1], ("transfer-encoding", "chunked")]
        )));
        let mut old = req("GET", &ws);
        old.set_version(http::Version::HTTP_10);
        assert!(!is_websocket_handshake(&old));
    }

    #[test]
    fn request_ids_are_the_formatted_ones() {
        for (prefix, n) in [
            (0u64, 0u64),
            (u64::MAX, 0xffff_ffff),
            (0x0123_4567_89ab_cdef, 0x1_0000_0000),
            (7, 42),
        ] {
            let mut id = String::from("req_");
            push_hex(&mut id, prefix, 16);
            push_hex(&mut id, n, (64 - n.leading_zeros()).div_ceil(4).max(8));
            assert_eq!(id, format!("req_{prefix:016x}{n:08x}"));
        }
    }
}
