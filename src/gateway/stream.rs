//! The response side: upstream status → failover decision, and the body passing through
//! untouched (SSE scanned for usage, the injected usage event hidden).

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::{Error, ErrorType, Result};

use super::ctx::{AttemptFailure, RequestCtx, Route};
use crate::state::Shared;

/// Keep at most this much of a non-stream body's tail to find its `usage`.
const TAIL_KEEP: usize = 64 * 1024;

/// Decide on the upstream's status: retry another deployment (429/5xx while attempts remain),
/// or let the response through to the client.
pub fn on_upstream_header(
    shared: &Shared,
    resp: &mut ResponseHeader,
    ctx: &mut RequestCtx,
) -> Result<()> {
    let status = resp.status.as_u16();
    ctx.upstream_status = Some(status);
    let (Some(live), Some(d)) = (ctx.live.clone(), ctx.deployment) else {
        return Error::e_explain(ErrorType::InternalError, "response without deployment");
    };
    let name = &live.deployment_names[d];
    let failed = status == 429 || status >= 500;
    live.providers[live.config.deployments[d].provider]
        .health
        .answered(ctx.attempt_start.elapsed(), failed);
    if failed {
        let f = &live.config.failover;
        if live.breakers[d].on_failure(live.now_ms(), f.failures_to_trip, f.cooldown) {
            shared.metrics.circuit_open.with_label_values(&[name]).inc();
            tracing::warn!(deployment = %name, "circuit opened");
        }
        let outcome = if status == 429 {
            "status_429"
        } else {
            "status_5xx"
        };
        shared
            .metrics
            .attempts
            .with_label_values(&[name, outcome])
            .inc();
        shared
            .metrics
            .upstream_errors
            .with_label_values(&[name, outcome])
            .inc();
        ctx.last_failure = Some(AttemptFailure::Status(status));
        tracing::info!(request_id = %ctx.request_id, deployment = %name, attempt = ctx.attempts, status, "upstream attempt failed");
        if ctx.can_retry() {
            let mut e = Error::explain(
                ErrorType::HTTPStatus(status),
                "upstream refused; failing over",
            );
            e.set_retry(true);
            return Err(e);
        }
    } else {
        live.breakers[d].on_success();
        live.handles.attempt_ok(&shared.metrics, name, d);
    }
    ctx.response_started = true;
    let kind = live.config.providers[live.config.deployments[d].provider].kind;
    if !kind.speaks_openai() {
        // another dialect: its answer is translated (`translate`)
        super::translate::on_header(resp, ctx, kind)?;
    } else {
        on_openai_header(resp, ctx);
    }
    if ctx.bradax.is_some() {
        super::bradax::on_header(resp, ctx)?;
    }
    if ctx.messages.is_some() {
        super::messages::on_header(resp, ctx)?;
    }
    // static names: Pingora keeps header-name case by borrowing a `&'static str` and copying a
    // typed `HeaderName` (callgrind: 435 instructions a request less with strings here)
    resp.insert_header("x-request-id", ctx.request_id.as_str())?;
    if let Some(id) = &ctx.client_request_id {
        resp.insert_header("x-client-request-id", id.as_str())?;
    }
    super::respond::rate_headers(resp, ctx)?;
    Ok(())
}

/// An OpenAI-shaped answer's head: is it a stream to scan?
fn on_openai_header(resp: &mut ResponseHeader, ctx: &mut RequestCtx) {
    ctx.sse_active = ctx.stream
        && resp
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
    if ctx.sse_active && ctx.hide_usage {
        // we may drop an event, so the length changes
        resp.remove_header(&http::header::CONTENT_LENGTH);
    }
}

/// Usage (and, for transcriptions, the audio duration) from the end of a whole answer.
fn scan_answer(ctx: &mut RequestCtx, tail: &[u8]) {
    ctx.usage = crate::sse::find_usage(tail);
    if matches!(ctx.route, Some(Route::Audio | Route::AudioTranslations))
        && ctx.upstream_status.is_some_and(|s| (200..300).contains(&s))
    {
        ctx.audio_ms = match crate::sse::find_audio_ms(tail) {
            Some(ms) if ms > crate::sse::MAX_AUDIO_MS => {
                tracing::warn!(request_id = %ctx.request_id, reported_ms = ms,
                    "upstream reported an absurd audio duration; not billed");
                0
            }
            ms => ms.unwrap_or(0),
        };
    }
}

/// One chunk of the upstream body on its way to the client.
pub fn on_body(body: &mut Option<Bytes>, eos: bool, ctx: &mut RequestCtx) -> Result<()> {
    if ctx.ttft.is_none() && body.as_ref().is_some_and(|b| !b.is_empty()) {
        ctx.ttft = Some(ctx.start.elapsed());
    }
    if let Some(t) = ctx.total_timeout
        && !eos
        && ctx.start.elapsed() > t
    {
        ctx.last_failure = Some(AttemptFailure::Timeout);
        return Error::e_explain(ErrorType::ReadTimedout, "total_timeout_ms exceeded");
    }
    if ctx.xlate.is_some() {
        super::translate::on_body(body, eos, ctx)?;
    } else if ctx.route == Some(Route::Speech) {
        // audio: each chunk goes on as it came, never scanned nor kept (priced per character
        // of the request's `input`)
    } else if ctx.sse_active {
        if let Some(b) = body.take() {
            match ctx.sse.feed(b) {
                Ok(b) => *body = Some(b),
                Err(crate::sse::EventTooLarge(n)) => {
                    tracing::warn!(request_id = %ctx.request_id, pending_bytes = n,
                        "upstream SSE event over max_sse_event_bytes; ending the stream");
                    ctx.stream_error = Some(crate::error::ApiError::UpstreamEventTooLarge);
                    return Error::e_explain(
                        ErrorType::Custom("upstream_event_too_large"),
                        "SSE event over max_sse_event_bytes",
                    );
                }
            }
        }
        if eos {
            if let Some(rest) = ctx.sse.finish() {
                *body = Some(match body.take() {
                    Some(b) if !b.is_empty() => {
                        let mut v = Vec::with_capacity(b.len() + rest.len());
                        v.extend_from_slice(&b);
                        v.extend_from_slice(&rest);
                        Bytes::from(v)
                    }
                    _ => rest,
                });
            }
            ctx.usage = ctx.sse.usage;
        }
    } else if eos && ctx.resp_tail.is_empty() {
        // the whole answer in one piece (the common case): read it where it is; keep a copy
        // only when the text must be counted because no usage was reported
        let whole = body.as_ref().map(Bytes::as_ref).unwrap_or_default();
        scan_answer(ctx, whole);
        if ctx.usage.is_none() {
            ctx.resp_tail.extend_from_slice(whole);
        }
    } else {
        if let Some(b) = body.as_ref() {
            ctx.resp_tail.extend_from_slice(b);
            if ctx.resp_tail.len() > 2 * TAIL_KEEP {
                let cut = ctx.resp_tail.len() - TAIL_KEEP;
                let _ = ctx.resp_tail.split_to(cut);
                ctx.resp_cut += cut;
            }
        }
        if eos {
            let tail = std::mem::take(&mut ctx.resp_tail);
            scan_answer(ctx, &tail);
            ctx.resp_tail = tail;
        }
    }
    if ctx.bradax.is_some() {
        super::bradax::on_body(body, eos, ctx);
    }
    if ctx.messages.is_some() {
        super::messages::on_body(body, eos, ctx);
    }
    Ok(())
}
