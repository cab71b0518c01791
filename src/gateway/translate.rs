//! Requests to and answers from providers of another dialect (`kind:` anthropic, gemini,
//! bedrock; Azure only changes the path and the credential): the gateway side of
//! [`crate::dialect`].
//!
//! Nothing here runs for an OpenAI-kind deployment: the request keeps its precomputed URI and
//! spliced body, and [`RequestCtx::xlate`] stays `None`.
//!
//! Per attempt (failover may move a request from one kind to another):
//! - the request body is translated from the client's OpenAI body (parsed once per request,
//!   kept in `ctx.body_json`); the first candidate's is translated while the request is checked,
//!   so a field the dialect cannot express is the client's 400 before any upstream call;
//! - a 2xx stream goes through the dialect's [`StreamDecoder`] chunk by chunk (never
//!   collected): OpenAI chunks out, usage kept for billing whether or not the client asked;
//! - a 2xx whole answer is collected (at most [`MAX_WHOLE`]) and rendered as OpenAI's at its end;
//! - a non-2xx answer that is not failed over (a 4xx other than 429, or the last attempt's
//!   429/5xx) is collected (at most [`MAX_ERROR`]) and rendered in OpenAI's error shape; its
//!   status is the upstream's, mapped when the dialect has its own (Anthropic's 529 → 503).

use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use pingora::{Error, ErrorType, Result};

use super::ctx::{RequestCtx, Route};
use crate::dialect::{self, Kind, Meta, Op, StreamDecoder, StreamError};
use crate::error::ApiError;

/// Largest whole (non-stream) answer collected for translation; past it the answer is a 502.
pub const MAX_WHOLE: usize = 16 << 20;
/// Largest error body collected for translation; the rest is dropped.
pub const MAX_ERROR: usize = 64 << 10;

/// One attempt's answer being translated.
pub struct Xlate {
    kind: Kind,
    mode: Mode,
    /// The stream already ended with an error event: the rest of the upstream is dropped.
    failed: bool,
}

enum Mode {
    Stream(Box<dyn StreamDecoder>),
    Whole { buf: BytesMut, op: Op, meta: Meta },
    Error { buf: BytesMut, status: u16 },
}

/// The dialect operation a route maps to (`None`: the route has no translation).
pub fn op_of(route: Route) -> Option<Op> {
    match route {
        Route::Chat | Route::BradaxInvoke | Route::BradaxStream | Route::Messages => Some(Op::Chat),
        Route::Embeddings => Some(Op::Embeddings),
        _ => None,
    }
}

/// What translating this request's answer needs to know.
pub fn meta(ctx: &RequestCtx) -> Meta {
    Meta {
        id: format!("chatcmpl-{}", ctx.request_id),
        model: ctx.model_name.clone().unwrap_or_else(|| "".into()),
        created: ctx.ts.unix_timestamp(),
        include_usage: ctx.stream && !ctx.hide_usage,
        base64: ctx.route == Some(Route::Embeddings)
            && ctx
                .body_json
                .as_ref()
                .and_then(|v| v.get("encoding_format"))
                .and_then(serde_json::Value::as_str)
                == Some("base64"),
    }
}

/// The 400 for a route a dialect has no translation of.
fn no_route(kind: Kind, route: Route) -> ApiError {
    ApiError::InvalidRequest(format!(
        "this model's deployment ({}) does not serve {}",
        kind.as_str(),
        route.label()
    ))
}

/// The body of an attempt on deployment `d` of `kind` (not OpenAI-shaped): the first
/// candidate's as translated while checking, else translated now.
pub fn request_body(
    ctx: &mut RequestCtx,
    d: usize,
    kind: Kind,
    upstream_model: &str,
) -> Result<Bytes, ApiError> {
    if let Some((td, b)) = &ctx.translated
        && *td == d
    {
        return Ok(b.clone());
    }
    let route = ctx.route.ok_or(ApiError::Internal)?;
    let op = op_of(route).ok_or_else(|| no_route(kind, route))?;
    if ctx.body_json.is_none() {
        let body = ctx.body.as_ref().ok_or(ApiError::Internal)?;
        let v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
        ctx.body_json = Some(v);
    }
    let req = ctx.body_json.as_ref().ok_or(ApiError::Internal)?;
    dialect::request(kind, op, req, upstream_model).map(Bytes::from)
}

/// While the request is checked (before any attempt): when the first candidate is of a
/// translated kind, translate its body now, so what the dialect cannot express is a 400 to
/// the client. Nothing at all for OpenAI-shaped first candidates.
pub fn check_first(ctx: &mut RequestCtx) -> Result<(), ApiError> {
    let (Some(live), Some(d)) = (ctx.live.as_ref(), ctx.candidates.get(0)) else {
        return Ok(());
    };
    let dep = &live.config.deployments[d];
    let kind = live.config.providers[dep.provider].kind;
    if kind.speaks_openai() {
        // the OpenAI path: two loads and this test, nothing else
        return Ok(());
    }
    let upstream_model = dep.upstream_model.clone();
    let body = request_body(ctx, d, kind, &upstream_model)?;
    ctx.translated = Some((d, body));
    Ok(())
}

/// The status the client gets for a dialect's error status: the standard ones kept, Anthropic's
/// 529 (overloaded) as 503, anything else as 400 (a 4xx) or 502 (a 5xx).
pub fn client_status(status: u16) -> u16 {
    match status {
        400 | 401 | 402 | 403 | 404 | 405 | 408 | 409 | 413 | 415 | 422 | 429 | 500 | 502 | 503
        | 504 => status,
        529 => 503,
        s if (400..500).contains(&s) => 400,
        _ => 502,
    }
}

/// The answer's head from a provider of `kind` (not OpenAI-shaped): set up the translation.
pub fn on_header(resp: &mut ResponseHeader, ctx: &mut RequestCtx, kind: Kind) -> Result<()> {
    let status = resp.status.as_u16();
    resp.remove_header(&http::header::CONTENT_LENGTH);
    resp.remove_header(&http::header::CONTENT_ENCODING);
    ctx.sse_active = false;
    let mode = if !(200..300).contains(&status) {
        // Bedrock names its error in a header: a signature it rejects is a 403 there, the
        // gateway's credentials being wrong, OpenAI's 401
        let shown = match kind {
            Kind::Bedrock => dialect::bedrock::error_status(
                status,
                resp.headers
                    .get("x-amzn-errortype")
                    .and_then(|v| v.to_str().ok()),
            ),
            _ => status,
        };
        resp.set_status(client_status(shown))?;
        resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
        Mode::Error {
            buf: BytesMut::new(),
            status,
        }
    } else if ctx.stream {
        let dec = dialect::stream_decoder(kind, meta(ctx))
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no stream decoder"))?;
        resp.insert_header(http::header::CONTENT_TYPE, "text/event-stream")?;
        resp.insert_header(http::header::CACHE_CONTROL, "no-cache")?;
        // the translated events pass the scanner (not hiding anything: the decoder writes the
        // usage chunk only when asked) so the text is kept for counting when no usage came
        let max = ctx
            .live
            .as_ref()
            .map_or(0, |l| l.config.max_sse_event_bytes);
        ctx.sse = crate::sse::SseScanner::new(false).with_max_event(max);
        ctx.sse_active = true;
        Mode::Stream(dec)
    } else {
        resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
        Mode::Whole {
            buf: BytesMut::new(),
            op: ctx.route.and_then(op_of).unwrap_or(Op::Chat),
            meta: meta(ctx),
        }
    };
    ctx.xlate = Some(Box::new(Xlate {
        kind,
        mode,
        failed: false,
    }));
    Ok(())
}

fn stream_failure(e: StreamError) -> ApiError {
    match e {
        StreamError::Malformed(what) => ApiError::UpstreamMalformed(what.to_string()),
        StreamError::TooLarge => ApiError::UpstreamEventTooLarge,
        StreamError::Upstream(m) => ApiError::UpstreamStreamError(m),
    }
}

fn fail(ctx: &mut RequestCtx, err: ApiError) -> Result<()> {
    tracing::warn!(request_id = %ctx.request_id, error = %err, "translated answer failed");
    ctx.stream_error = Some(err);
    Error::e_explain(
        ErrorType::Custom("upstream_malformed"),
        "the provider's answer could not be translated",
    )
}

/// One chunk of a translated answer on its way to the client.
pub fn on_body(body: &mut Option<Bytes>, eos: bool, ctx: &mut RequestCtx) -> Result<()> {
    let Some(x) = ctx.xlate.as_mut() else {
        return Ok(());
    };
    let kind = x.kind;
    if x.failed {
        // the client's stream already has its error event: whatever else the provider sends
        // (Anthropic ends its stream after an `error` event) is dropped, and the client's
        // stream ends cleanly when the provider's does (or at the provider's timeouts)
        *body = Some(Bytes::new());
        return Ok(());
    }
    match &mut x.mode {
        Mode::Stream(dec) => {
            let mut out = BytesMut::new();
            let mut r = match body.take() {
                Some(b) if !b.is_empty() => dec.feed(&b, &mut out),
                _ => Ok(()),
            };
            if eos && r.is_ok() {
                r = dec.finish(&mut out);
            }
            let usage = dec.usage();
            if eos || r.is_err() {
                ctx.usage = usage;
            }
            if !out.is_empty() {
                // our own events, bounded by the decoder: the scanner only keeps their text
                let _ = ctx.sse.feed(out.clone().freeze());
            }
            if let Err(e) = r {
                // what this chunk completed before the failure goes out, then the error event
                // ends the client's stream (no `[DONE]`)
                let err = stream_failure(e);
                tracing::warn!(request_id = %ctx.request_id, error = %err, "translated stream failed");
                out.extend_from_slice(&err.sse_event());
                x.failed = true;
                ctx.error_code = Some(err.code());
                ctx.stream_error = Some(err);
                // the event is written here: the end-of-stream path must not write another
                ctx.sse_active = false;
            }
            *body = Some(out.freeze());
        }
        Mode::Whole { buf, op, meta } => {
            if let Some(b) = body.take() {
                if buf.len() + b.len() > MAX_WHOLE {
                    return fail(
                        ctx,
                        ApiError::UpstreamMalformed(format!(
                            "the answer is larger than {MAX_WHOLE} bytes"
                        )),
                    );
                }
                buf.extend_from_slice(&b);
            }
            if !eos {
                *body = Some(Bytes::new());
                return Ok(());
            }
            match dialect::answer(kind, *op, buf, meta) {
                Ok((out, usage)) => {
                    ctx.usage = usage;
                    if usage.is_none() {
                        // counted from the text when the provider reported nothing
                        ctx.resp_tail.clear();
                        ctx.resp_tail.extend_from_slice(&out);
                    }
                    *body = Some(Bytes::from(out));
                }
                Err(e) => return fail(ctx, stream_failure(e)),
            }
        }
        Mode::Error { buf, status } => {
            if let Some(b) = body.take() {
                let room = MAX_ERROR.saturating_sub(buf.len());
                buf.extend_from_slice(&b[..b.len().min(room)]);
            }
            if !eos {
                *body = Some(Bytes::new());
                return Ok(());
            }
            let (_, out) = dialect::error(kind, *status, buf);
            *body = Some(Bytes::from(out));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::client_status;

    #[test]
    fn dialect_statuses_map_to_standard_ones() {
        assert_eq!(client_status(529), 503);
        assert_eq!(client_status(400), 400);
        assert_eq!(client_status(429), 429);
        assert_eq!(client_status(418), 400);
        assert_eq!(client_status(599), 502);
    }
}
