//! The last phase: one usage event and the request metrics, exactly once per request.

use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType};

use super::ctx::RequestCtx;
use crate::state::Shared;
use crate::usage::UsageEvent;

/// Record metrics and hand the usage event to the sink.
pub async fn finish(
    shared: &Shared,
    session: &mut Session,
    e: Option<&Error>,
    ctx: &mut RequestCtx,
) {
    let status = session
        .response_written()
        .map(|r| r.status.as_u16())
        .unwrap_or(0);
    if let Some(e) = e
        && e.esource() == &ErrorSource::Downstream
        && matches!(
            e.etype(),
            ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed
        )
    {
        ctx.client_disconnected = true;
    }
    let live = ctx.live.clone();
    let (deployment, provider) = match (&live, ctx.deployment) {
        (Some(l), Some(d)) => (
            Some(l.deployment_names[d].clone()),
            Some(l.provider_names[l.config.deployments[d].provider].clone()),
        ),
        _ => (None, None),
    };
    let route = match (ctx.route, ctx.admin) {
        (Some(r), _) => r.label(),
        (None, Some(_)) => "admin",
        (None, None) => "unknown",
    };
    let reported = match ctx.usage.or(ctx.sse.usage) {
        Some(u) if !u.plausible() => {
            // never stored or billed: the request is counted as if nothing was reported
            tracing::warn!(
                request_id = %ctx.request_id,
                deployment = deployment.as_deref().unwrap_or(""),
                prompt_tokens = u.prompt_tokens,
                completion_tokens = u.completion_tokens,
                "upstream reported absurd usage; counting the request with the tokenizer instead"
            );
            None
        }
        u => u,
    };
    let usage = match reported {
        Some(u) => Some(u),
        None => counted(ctx, status).await,
    };
    if let Some(ticket) = ctx.ticket.take() {
        // release the concurrency slot; correct tokens per minute to what was used (nothing,
        // when no upstream answered)
        let actual = usage.map(|u| u.prompt_tokens + u.completion_tokens);
        let actual = actual.or((status >= 400 || ctx.client_disconnected).then_some(0));
        shared.limiter.settle(ticket, actual);
    }
    let latency = ctx.start.elapsed();
    let error = ctx
        .error_code
        .map(str::to_string)
        .or_else(|| {
            ctx.client_disconnected
                .then(|| "client_disconnected".to_string())
        })
        .or_else(|| e.map(|e| e.etype().as_str().to_string()));

    let m = &shared.metrics;
    if let Some(l) = &live {
        let at = match (ctx.route, ctx.model, ctx.deployment) {
            (Some(r), Some(model), Some(d)) => Some((r, model, d)),
            _ => None,
        };
        l.handles.request(m, &l.config, route, at, status);
        if let (Some(u), Some(model)) = (usage, ctx.model) {
            l.handles
                .tokens(m, &l.config, model, u.prompt_tokens, u.completion_tokens);
        }
    }
    if let Some(r) = ctx.route {
        m.route_latency[r.index()].observe(latency.as_secs_f64());
        if let Some(t) = ctx.ttft {
            m.route_ttft[r.index()].observe(t.as_secs_f64());
        }
    } else {
        m.latency
            .with_label_values(&[route])
            .observe(latency.as_secs_f64());
    }
    // one usage event per AI request; health checks, usage reports and admin calls are not
    if matches!(
        ctx.route,
        Some(super::ctx::Route::Health | super::ctx::Route::RateLimitUsage)
    ) || ctx.admin.is_some()
    {
        return;
    }
    if ctx.attempts > 1 {
        tracing::info!(
            request_id = %ctx.request_id,
            attempts = ctx.attempts,
            deployment = deployment.as_deref().unwrap_or(""),
            status,
            "request finished after failover"
        );
    }
    // priced from the model's catalog entry; only successful requests pay per-request fees
    let cost = match (&live, ctx.model) {
        (Some(l), Some(m)) => {
            let ok = (200..400).contains(&status);
            let consumed = crate::pricing::Consumed {
                prompt_tokens: usage.map(|u| u.prompt_tokens).unwrap_or(0),
                completion_tokens: usage.map(|u| u.completion_tokens).unwrap_or(0),
                cached_tokens: usage.map(|u| u.cached_tokens).unwrap_or(0),
                cache_write_tokens: usage.map(|u| u.cache_write_tokens).unwrap_or(0),
                images: if ok { ctx.images } else { 0 },
                audio_ms: if ok { ctx.audio_ms } else { 0 },
                chars: if ok { ctx.chars } else { 0 },
                searches: if ok { ctx.searches } else { 0 },
                request: ok,
            };
            Some(crate::pricing::cost(
                &l.config.models[m].price,
                &consumed,
                l.config.fx_usd_brl_micros,
            ))
        }
        _ => None,
    };
    if let (Some(r), Some(funds)) = (ctx.reservation.take(), &shared.funds) {
        funds.settle(r, cost.unwrap_or_default(), (200..400).contains(&status));
    }
    let event = UsageEvent {
        request_id: std::mem::take(&mut ctx.request_id),
        ts: ctx.ts,
        key: ctx.key.as_ref().map(|k| k.name.clone()),
        organization_id: ctx.key.as_ref().and_then(|k| k.organization_id),
        api_key_id: ctx.key.as_ref().and_then(|k| k.api_key_id),
        route: route.into(),
        model: ctx.model_name.take(),
        deployment,
        provider,
        status,
        error,
        attempts: ctx.attempts,
        stream: ctx.stream,
        prompt_tokens: usage.map(|u| u.prompt_tokens).unwrap_or(0),
        completion_tokens: usage.map(|u| u.completion_tokens).unwrap_or(0),
        usage_reported: reported.is_some(),
        cached_tokens: usage.map(|u| u.cached_tokens).unwrap_or(0),
        cache_write_tokens: usage.map(|u| u.cache_write_tokens).unwrap_or(0),
        reasoning_tokens: usage.map(|u| u.reasoning_tokens).unwrap_or(0),
        cost_upstream_usd_micros: cost.map(|c| c.usd_micros),
        cost_billed_brl_micros: cost.map(|c| c.brl_micros),
        latency_ms: latency.as_millis() as u64,
        ttft_ms: ctx.ttft.map(|t| t.as_millis() as u64),
        session_id: ctx.session_id.take(),
        client_disconnected: ctx.client_disconnected,
        client_request_id: ctx.client_request_id.take(),
    };
    shared.usage.record(event).await;
}

/// Tokens of a successful chat or completion whose upstream reported no usage: the prompt
/// estimated from the request body, the completion counted from the text that went to the
/// client, both with the model's tokenizer (long texts off the proxy threads).
async fn counted(ctx: &mut RequestCtx, status: u16) -> Option<crate::sse::Usage> {
    use super::ctx::Route;
    // moderations (OpenAI's answer has no usage) are priced by their input alone; a Responses
    // answer without usage has its input counted (its output text is not extracted)
    if !matches!(
        ctx.route,
        Some(Route::Chat | Route::Completions | Route::Moderations | Route::Responses)
    ) || !(200..300).contains(&status)
    {
        return None;
    }
    let enc = ctx.live.as_ref()?.config.models[ctx.model?].tokenizer;
    enc.ensure_loaded().await;
    let body = ctx.body.clone()?;
    let text = if matches!(ctx.route, Some(Route::Moderations)) {
        crate::sse::Text::default()
    } else if ctx.sse_active {
        ctx.sse.take_text()
    } else {
        // a whole answer: its text, if the kept tail is all of it
        let mut t = crate::sse::Text::default();
        if ctx.resp_cut > 0 || !crate::sse::collect_text(&ctx.resp_tail, &mut t) {
            t.add_unread(ctx.resp_cut + ctx.resp_tail.len());
        }
        t
    };
    let big = body.len() + text.bytes() > 16 * 1024;
    let count = move || crate::sse::Usage {
        prompt_tokens: crate::tokens::estimate(&body, enc).prompt,
        completion_tokens: text.tokens(enc),
        ..Default::default()
    };
    if big {
        return tokio::task::spawn_blocking(count).await.ok();
    }
    Some(count())
}
