//! Writing the gateway's own responses (errors, `/v1/models`, `/healthz`): the only place that
//! turns an [`ApiError`] into bytes on the wire.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use super::ctx::{Dialect, RequestCtx};
use crate::error::ApiError;

/// Write `err` as OpenAI's error JSON. When the request body was not read, the connection is
/// closed afterwards so unread body bytes cannot be taken for the next request.
pub async fn error(session: &mut Session, ctx: &mut RequestCtx, err: &ApiError) {
    ctx.error_code = Some(err.code());
    if ctx.body.is_none() && !session.as_mut().is_body_empty() {
        session.set_keepalive(None);
    }
    // each contract's clients parse their own error shape: the route says which (its path when
    // the request is refused before it is routed, as a 431 on the head, or is the admin app's)
    let dialect = ctx.route.map(|r| r.dialect()).or_else(|| {
        let path = session.req_header().uri.path();
        super::ctx::Route::from_path(path)
            .map(|r| r.dialect())
            .or_else(|| super::bradax::owns_admin_path(path).then_some(Dialect::Bradax))
    });
    let body = match dialect {
        Some(Dialect::Sabia) => crate::surfaces::sabia::wire::gateway_error(err),
        Some(Dialect::Bradax) => super::bradax::gateway_error(err, &ctx.request_id),
        Some(Dialect::Anthropic) => crate::dialect::messages::gateway_error(err),
        // Tokia's clients know a low balance by its own code, in pt-BR unless asked in English
        _ if ctx.tokia_key && matches!(err, ApiError::InsufficientBalance) => {
            crate::surfaces::tokia::wire::low_balance(crate::surfaces::tokia::wire::wants_english(
                &session.req_header().headers,
            ))
        }
        _ => err.body(),
    };
    write(session, ctx, err.status(), body, err.retry_after()).await;
}

/// Write a JSON response.
pub async fn json(session: &mut Session, ctx: &RequestCtx, status: u16, body: Bytes) {
    write(session, ctx, status, body, None).await
}

async fn write(
    session: &mut Session,
    ctx: &RequestCtx,
    status: u16,
    body: Bytes,
    retry_after: Option<u64>,
) {
    let result = async {
        let mut h = ResponseHeader::build(status, Some(4))?;
        h.insert_header("content-type", "application/json")?;
        h.insert_header("content-length", body.len().to_string())?;
        h.insert_header("x-request-id", ctx.request_id.as_str())?;
        if let Some(id) = &ctx.client_request_id {
            h.insert_header("x-client-request-id", id.as_str())?;
        }
        rate_headers(&mut h, ctx)?;
        if let Some(s) = retry_after {
            h.insert_header("retry-after", s.to_string())?;
        }
        session.write_response_header(Box::new(h), false).await?;
        session.write_response_body(Some(body), true).await
    }
    .await;
    if let Err(e) = result {
        tracing::debug!(request_id = %ctx.request_id, error = %e, "could not write response");
    }
}

/// `X-RateLimit-Limit/Remaining/Reset/Window`, and `Retry-After` on a refusal. Names are
/// static and numbers go straight into header values (no `String` per header).
pub fn rate_headers(h: &mut ResponseHeader, ctx: &RequestCtx) -> pingora::Result<()> {
    // (`&'static str` names: Pingora keeps each name's case as given, and a static string is
    // borrowed where a typed `HeaderName` would be copied; measured 9.1k against 9.7k
    // instructions for this phase with the four headers)
    use http::HeaderValue;
    if let Some(d) = &ctx.rate {
        h.insert_header("x-ratelimit-limit", HeaderValue::from(d.limit))?;
        h.insert_header("x-ratelimit-remaining", HeaderValue::from(d.remaining))?;
        h.insert_header("x-ratelimit-reset", HeaderValue::from(d.reset))?;
        h.insert_header("x-ratelimit-window", HeaderValue::from(d.window_secs))?;
        if !d.allowed {
            h.insert_header("retry-after", HeaderValue::from(d.retry_after))?;
        }
    }
    Ok(())
}
