//! The request phase: route, key auth, content checks, body read and the choice of model and
//! deployments. Everything here runs before any upstream I/O; any failure is a clean 4xx.

use std::borrow::Cow;

use bytes::BytesMut;
use pingora::proxy::Session;
use serde::Deserialize;

use super::ctx::{RequestCtx, Route};
use super::route::{KeyStore, hash_key};
use crate::config::Category;
use crate::error::ApiError;
use crate::store::key_cache::PgKeys;

/// What the request phase decided.
pub enum Outcome {
    /// Proxy upstream.
    Proxy,
    /// Answer from the gateway with this body (200).
    Respond(bytes::Bytes),
    /// Forward to the admin app as it is.
    Admin,
}

/// Authenticate, validate and read the request. `ctx.live` must be set.
pub async fn prepare(
    session: &mut Session,
    ctx: &mut RequestCtx,
    db_keys: Option<&PgKeys>,
    admin: Option<std::net::SocketAddr>,
    limiter: &crate::limits::Limiter,
    funds: Option<&crate::funds::Funds>,
) -> Result<Outcome, ApiError> {
    let live = ctx.live.clone().ok_or(ApiError::Internal)?;
    let path = session.req_header().uri.path();
    let Some(route) = Route::from_path(path) else {
        // everything else belongs to the admin app, when there is one
        if let Some(addr) = admin {
            ctx.admin = Some(addr);
            return Ok(Outcome::Admin);
        }
        return Err(ApiError::RouteNotFound(path.to_string()));
    };
    ctx.route = Some(route);
    let method = session.req_header().method.clone();
    if route == Route::Health {
        return Ok(Outcome::Respond(bytes::Bytes::from_static(
            b"{\"status\":\"ok\"}",
        )));
    }

    // key auth before anything else is revealed
    let key = presented_key(session).ok_or(ApiError::MissingKey)?;
    let hash = hash_key(key);
    let info = match (live.lookup(&hash), db_keys) {
        (Some(info), _) => info,
        (None, Some(db)) => db.lookup(&hash).await?.ok_or(ApiError::InvalidKey)?,
        (None, None) => return Err(ApiError::InvalidKey),
    };
    if info.disabled {
        return Err(ApiError::DisabledKey);
    }
    if info.is_expired() {
        return Err(ApiError::ExpiredKey);
    }
    ctx.key = Some(info);

    if route == Route::Models {
        if method != http::Method::GET {
            return Err(ApiError::MethodNotAllowed(method.to_string()));
        }
        return Ok(Outcome::Respond(live.models_body.clone()));
    }
    if route == Route::RateLimitUsage {
        if method != http::Method::GET {
            return Err(ApiError::MethodNotAllowed(method.to_string()));
        }
        let minutes = super::rate_usage::minutes(query_param(session, "minutes").as_deref())?;
        let key = ctx.key.clone().ok_or(ApiError::Internal)?;
        let pool = db_keys.map(PgKeys::pool);
        return Ok(Outcome::Respond(
            super::rate_usage::report(&key, pool, limiter, minutes).await?,
        ));
    }
    if method != http::Method::POST {
        return Err(ApiError::MethodNotAllowed(method.to_string()));
    }

    let cfg = &live.config;
    let content_type = header_str(session, "content-type").unwrap_or("");
    let content_length = content_length(session)?;
    if route.is_upload() {
        if !content_type.starts_with("multipart/form-data") {
            return Err(ApiError::UnsupportedMediaType("multipart/form-data"));
        }
        if content_length.is_some_and(|n| n > cfg.max_upload_bytes) {
            return Err(ApiError::BodyTooLarge(cfg.max_upload_bytes));
        }
        // The upload is streamed through, never collected: the model comes from a header, the
        // query string, or the catalog's first model of the route's category.
        let category = match route {
            Route::Ocr => Category::Ocr,
            Route::Recognition => Category::Recognition,
            _ => Category::Audio,
        };
        let name = header_str(session, "x-catraca-model")
            .map(str::to_string)
            .or_else(|| query_param(session, "model"))
            .or_else(|| {
                cfg.models
                    .iter()
                    .find(|m| m.category == category)
                    .map(|m| m.name.clone())
            })
            .ok_or_else(|| {
                ApiError::InvalidRequest(format!("no {} model is configured", category.as_str()))
            })?;
        choose_model(ctx, &name, route)?;
        // an upload is never read ahead: it is limited by requests, not tokens
        admit(ctx, limiter, 0).await?;
        reserve(ctx, limiter, funds, crate::tokens::Estimate::default()).await?;
        return Ok(Outcome::Proxy);
    }

    if !is_json(content_type) {
        return Err(ApiError::UnsupportedMediaType("application/json"));
    }
    let limit = cfg.max_body_bytes;
    if content_length.is_some_and(|n| n > limit) {
        return Err(ApiError::BodyTooLarge(limit));
    }
    // Read the whole body so we can route on `model`. Up to 64 KiB, Pingora's retry buffer keeps
    // a copy and replays it to each attempt; a larger body is replayed by `bigbody`.
    session.enable_retry_buffering();
    let mut buf = BytesMut::with_capacity(content_length.unwrap_or(1024).min(limit) as usize);
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if (buf.len() + chunk.len()) as u64 > limit {
                    session.set_keepalive(None);
                    return Err(ApiError::BodyTooLarge(limit));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "reading request body failed");
                ctx.client_disconnected = true;
                return Err(ApiError::InvalidRequest(
                    "could not read the request body".into(),
                ));
            }
        }
    }
    let body = buf.freeze();
    ctx.body = Some(body.clone());
    if session.as_ref().retry_buffer_truncated() {
        super::bigbody::wrap(session, body.clone());
    }

    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        model: Option<Cow<'a, str>>,
        #[serde(default)]
        stream: Option<bool>,
        #[serde(default)]
        stream_options: Seen<StreamOptions>,
        /// images requested (`/v1/images/generations`)
        #[serde(default)]
        n: Option<serde_json::Value>,
    }
    #[derive(Deserialize)]
    struct StreamOptions {
        #[serde(default)]
        include_usage: Option<bool>,
    }
    if body.is_empty() {
        return Err(ApiError::InvalidJson("the body is empty".into()));
    }
    let probe: Probe = serde_json::from_slice(&body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::InvalidRequest(format!(
            "the body must be a JSON object with a string 'model': {e}"
        )),
        _ => ApiError::InvalidJson(e.to_string()),
    })?;
    let model = probe
        .model
        .ok_or_else(|| ApiError::InvalidRequest("you must provide a model parameter".into()))?;
    choose_model(ctx, &model, route)?;
    if let Cow::Borrowed(m) = &model {
        // borrowed = no escapes: the string's bytes sit in the body as they are
        let start = m.as_ptr() as usize - body.as_ptr() as usize;
        ctx.model_span = Some((start, start + m.len()));
    }
    ctx.stream = probe.stream.unwrap_or(false) && matches!(route, Route::Chat | Route::Completions);
    if route == Route::Images {
        ctx.images = probe
            .n
            .as_ref()
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1)
            .min(100);
    }
    ctx.stream_options_absent = !probe.stream_options.present;
    let client_usage = probe
        .stream_options
        .value
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    ctx.hide_usage = ctx.stream && !client_usage;

    // Tokens are estimated only when a token limit or a reservation needs them.
    let estimate = match (&ctx.key, ctx.model) {
        (Some(k), Some(m))
            if k.limits.tpm.is_some()
                || k.org_limits.tpm.is_some()
                || (funds.is_some() && (k.prepaid || k.budgeted)) =>
        {
            let enc = live.config.models[m].tokenizer;
            // a long prompt is counted off the proxy's threads
            if body.len() > 16 * 1024 {
                let b = body.clone();
                tokio::task::spawn_blocking(move || crate::tokens::estimate(&b, enc))
                    .await
                    .map_err(|_| ApiError::Internal)?
            } else {
                crate::tokens::estimate(&body, enc)
            }
        }
        _ => crate::tokens::Estimate::default(),
    };
    admit(
        ctx,
        limiter,
        estimate.prompt + estimate.max_output.unwrap_or(0),
    )
    .await?;
    reserve(ctx, limiter, funds, estimate).await?;
    Ok(Outcome::Proxy)
}

/// Hold the request's largest cost on its organization's balance and its key's budget, and
/// one request of its plan's monthly quota.
async fn reserve(
    ctx: &mut RequestCtx,
    limiter: &crate::limits::Limiter,
    funds: Option<&crate::funds::Funds>,
    estimate: crate::tokens::Estimate,
) -> Result<(), ApiError> {
    let (Some(funds), Some(key), Some(live), Some(m)) = (funds, &ctx.key, &ctx.live, ctx.model)
    else {
        return Ok(());
    };
    let payer = crate::funds::Payer {
        org: key.organization_id.filter(|_| key.prepaid),
        key: key.api_key_id.filter(|_| key.budgeted),
        quota: key.organization_id.filter(|_| key.quota),
    };
    if payer.org.is_none() && payer.key.is_none() && payer.quota.is_none() {
        return Ok(());
    }
    let output = match ctx.route {
        Some(Route::Chat | Route::Completions) => estimate
            .max_output
            .unwrap_or(live.config.reserve_output_tokens),
        _ => 0,
    };
    let most = crate::pricing::cost(
        &live.config.models[m].price,
        &crate::pricing::Consumed {
            prompt_tokens: estimate.prompt,
            completion_tokens: output,
            images: ctx.images,
            audio_ms: 0,
            request: true,
        },
        live.config.fx_usd_brl_micros,
    );
    match funds.reserve(payer, most).await {
        Ok(r) => {
            limiter.count_funds(None);
            ctx.reservation = Some(r);
            Ok(())
        }
        Err(e) => {
            // balance, budget and quota refusals (not a database outage)
            if matches!(
                e,
                ApiError::InsufficientBalance
                    | ApiError::BudgetExceeded
                    | ApiError::UsageLimitExceeded { .. }
            ) {
                limiter.count_funds(Some(e.code()));
            }
            Err(e)
        }
    }
}

/// Count the request against its key's and organization's limits, before any upstream call.
async fn admit(
    ctx: &mut RequestCtx,
    limiter: &crate::limits::Limiter,
    tokens: u64,
) -> Result<(), ApiError> {
    use crate::limits::{Scope, ScopeId};
    let Some(key) = &ctx.key else { return Ok(()) };
    let scopes = [
        Some(Scope {
            id: ScopeId::Key(*key.hash()),
            limits: key.limits,
        }),
        key.organization_id.map(|org| Scope {
            id: ScopeId::Org(org),
            limits: key.org_limits,
        }),
    ];
    let Some((d, ticket)) = limiter.check(scopes, tokens, &ctx.request_id).await else {
        return Ok(());
    };
    ctx.rate = Some(d);
    ctx.ticket = ticket;
    if !d.allowed {
        return Err(ApiError::RateLimited {
            kind: d.kind,
            limit: d.limit,
            retry_after: d.retry_after,
        });
    }
    Ok(())
}

/// A field that may be absent, null or a value; unlike `Option`, tells absent from null (a
/// body with `"stream_options": null` must not get a second `stream_options` key).
struct Seen<T> {
    present: bool,
    value: Option<T>,
}

impl<T> Default for Seen<T> {
    fn default() -> Self {
        Seen {
            present: false,
            value: None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Seen<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Seen {
            present: true,
            value: Option::<T>::deserialize(d)?,
        })
    }
}

fn choose_model(ctx: &mut RequestCtx, name: &str, route: Route) -> Result<(), ApiError> {
    let live = ctx.live.clone().ok_or(ApiError::Internal)?;
    let idx = *live
        .model_index
        .get(name)
        .ok_or_else(|| ApiError::ModelNotFound(name.to_string()))?;
    if let Some(k) = &ctx.key
        && !k.models.is_empty()
        && !k
            .models
            .iter()
            .any(|m| live.model_index.get(m.as_str()) == Some(&idx))
    {
        return Err(ApiError::ModelNotAllowed(name.to_string()));
    }
    let want = match route {
        Route::Chat => Category::Chat,
        Route::Completions => Category::Completion,
        Route::Embeddings => Category::Embedding,
        Route::Images => Category::Image,
        Route::Audio => Category::Audio,
        Route::Ocr => Category::Ocr,
        Route::Recognition => Category::Recognition,
        Route::Models | Route::Health | Route::RateLimitUsage => return Err(ApiError::Internal),
    };
    let have = live.category(idx);
    // chat models commonly serve the legacy completions route too
    if have != want && !(want == Category::Completion && have == Category::Chat) {
        return Err(ApiError::InvalidRequest(format!(
            "the model '{name}' is a {} model and cannot be used on {}",
            have.as_str(),
            route.label()
        )));
    }
    ctx.model = Some(idx);
    ctx.model_name = Some(name.to_string());
    ctx.candidates = live.candidates(idx);
    ctx.max_attempts = live.config.failover.max_attempts;
    Ok(())
}

fn presented_key(session: &Session) -> Option<&str> {
    if let Some(v) = header_str(session, "authorization") {
        let v = v.trim();
        let (scheme, rest) = v.split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() {
            return Some(rest.trim());
        }
        return None;
    }
    header_str(session, "api-key")
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// A request header as UTF-8, if present and valid.
pub fn header_str<'a>(session: &'a Session, name: &str) -> Option<&'a str> {
    session
        .req_header()
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
}

fn content_length(session: &Session) -> Result<Option<u64>, ApiError> {
    match header_str(session, "content-length") {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::InvalidRequest("invalid content-length".into())),
    }
}

fn is_json(ct: &str) -> bool {
    let base = ct.split(';').next().unwrap_or("").trim();
    base.eq_ignore_ascii_case("application/json")
}

fn query_param(session: &Session, name: &str) -> Option<String> {
    let q = session.req_header().uri.query()?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name && !v.is_empty()).then(|| v.to_string())
    })
}
