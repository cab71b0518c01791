//! `POST /v1/messages` in the data plane: Anthropic's Messages API served through the chat
//! route's machinery.
//!
//! * The request becomes the canonical OpenAI chat body before anything else reads it
//!   ([`crate::dialect::messages::request`]), so routing, limits, funds, failover (to any
//!   provider kind: a non-OpenAI deployment gets it translated again by `translate`), billing
//!   and the one usage event are the chat route's own. The client's key may come as
//!   `x-api-key` (the Anthropic SDKs) as well as `Authorization: Bearer`.
//! * The answer, once in OpenAI's shape (an OpenAI deployment's own, or `translate`'s), is
//!   re-encoded on its way out: a whole answer is collected (bounded) and rendered once as a
//!   `message`; a stream is turned into Anthropic's events chunk by chunk (nothing held back);
//!   an error answer becomes `{"type":"error","error":{…}}` with the status kept.
//! * The gateway's own errors on this route are in Anthropic's shape (`respond`), and a stream
//!   that breaks after its first byte ends with `event: error` ([`error_event`]).

use bytes::{Bytes, BytesMut};

use super::ctx::RequestCtx;
use crate::dialect::messages as wire;
use crate::error::ApiError;

/// Largest whole answer (or error body) collected before it is translated.
const MAX_ANSWER: usize = 16 << 20;

/// The translation state of one `/v1/messages` answer.
#[derive(Debug, Default)]
pub struct MsgState {
    /// The upstream answered 2xx.
    ok: bool,
    /// A whole answer or an error body so far.
    buf: BytesMut,
    /// The answer grew past [`MAX_ANSWER`].
    overflow: bool,
    /// A 2xx stream being re-encoded.
    stream: Option<wire::Stream>,
}

/// A fresh state for a `/v1/messages` request.
pub fn state() -> Box<MsgState> {
    Box::default()
}

/// The message id the client sees (`msg_` and the request id).
fn message_id(ctx: &RequestCtx) -> String {
    format!("msg_{}", ctx.request_id)
}

/// The upstream's header was accepted (no more failover): a re-encoded answer has no known
/// length; a stream stays `text/event-stream`, anything else is JSON.
pub fn on_header(
    resp: &mut pingora::http::ResponseHeader,
    ctx: &mut RequestCtx,
) -> pingora::Result<()> {
    let sse = ctx.sse_active;
    let id = message_id(ctx);
    let model = ctx.model_name.clone().unwrap_or_else(|| "".into());
    let Some(st) = ctx.messages.as_deref_mut() else {
        return Ok(());
    };
    st.ok = (200..300).contains(&resp.status.as_u16());
    st.buf.clear();
    st.overflow = false;
    st.stream = (st.ok && sse).then(|| wire::Stream::new(id, model));
    resp.remove_header(&http::header::CONTENT_LENGTH);
    if st.stream.is_none() {
        resp.insert_header("content-type", "application/json")?;
    }
    Ok(())
}

/// One chunk of the (OpenAI-shaped) answer, re-encoded for the client.
pub fn on_body(body: &mut Option<Bytes>, eos: bool, ctx: &mut RequestCtx) {
    let Some(mut st) = ctx.messages.take() else {
        return;
    };
    if let Some(s) = st.stream.as_mut() {
        let mut out = BytesMut::new();
        // `translate` sets `usage` (cache counts included) before the `[DONE]` it writes
        let gateway_usage = ctx.usage.or(ctx.sse.usage);
        if let Some(b) = body.take() {
            s.feed(&b, gateway_usage, &mut out);
        }
        if eos && !s.finished {
            if s.saw_stop() || gateway_usage.is_some() || s.usage().is_some() {
                s.end(gateway_usage, &mut out);
            } else {
                let e = ApiError::StreamInterrupted;
                s.fail(wire::error_type(e.status()), &e.to_string(), &mut out);
            }
        }
        *body = Some(out.freeze());
    } else {
        if let Some(b) = body.take() {
            if st.buf.len() + b.len() > MAX_ANSWER {
                st.overflow = true;
            } else if !st.overflow {
                st.buf.extend_from_slice(&b);
            }
        }
        if eos {
            let status = ctx.upstream_status.unwrap_or(502);
            let out = if st.ok && !st.overflow {
                let model = ctx.model_name.as_deref().unwrap_or("");
                wire::answer(&st.buf, &message_id(ctx), model, ctx.usage)
                    .map(Bytes::from)
                    .unwrap_or_else(|| {
                        wire::error_body(502, "the provider's answer could not be read")
                    })
            } else if st.ok {
                wire::error_body(502, "the provider's answer is too large")
            } else {
                wire::upstream_error(status, &st.buf)
            };
            st.buf.clear();
            *body = Some(out);
        } else {
            *body = Some(Bytes::new());
        }
    }
    ctx.messages = Some(st);
}

/// Whether this request's answer is a re-encoded stream (its error event is [`error_event`]).
pub fn translates_stream(ctx: &RequestCtx) -> bool {
    ctx.sse_active && ctx.messages.as_deref().is_some_and(|m| m.stream.is_some())
}

/// The last event of a stream that broke after its first byte: Anthropic's `event: error`
/// (`None` when the message already ended).
pub fn error_event(ctx: &mut RequestCtx, err: &ApiError) -> Option<Bytes> {
    let s = ctx.messages.as_deref_mut()?.stream.as_mut()?;
    let mut out = BytesMut::new();
    s.fail(wire::error_type(err.status()), &err.to_string(), &mut out);
    (!out.is_empty()).then(|| out.freeze())
}
