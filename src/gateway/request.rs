//! The request phase: route, key auth, content checks, body read and the choice of model and
//! deployments. Everything here runs before any upstream I/O; any failure is a clean 4xx.

use std::borrow::Cow;
use std::sync::Arc;

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
    jwt: Option<&crate::domain::accounts::Jwt>,
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

    if route == Route::Models {
        // public; credentials, when sent, must be good ones
        if method != http::Method::GET {
            return Err(ApiError::MethodNotAllowed(method.to_string()));
        }
        if session
            .req_header()
            .headers
            .contains_key(http::header::AUTHORIZATION)
            || session.req_header().headers.contains_key(names::API_KEY)
        {
            let key = presented_key(session).ok_or(ApiError::InvalidKey)?;
            ctx.key = Some(authenticate(&live, db_keys, key).await?);
        }
        let filter = super::route::ModelsFilter::parse(query_param(session, "category").as_deref())
            .ok_or_else(|| {
                ApiError::InvalidRequest(
                    "category must be llm, chat, image, video, embedding or audio".into(),
                )
            })?;
        let shape = models_shape(&live.config, session);
        return Ok(Outcome::Respond(live.models_body(shape, filter)));
    }
    if route == Route::ModelRetrieve {
        // `GET /v1/models/{id}` (the SDKs' `models.retrieve`): public like the list
        if method != http::Method::GET {
            return Err(ApiError::MethodNotAllowed(method.to_string()));
        }
        let path = session.req_header().uri.path();
        let raw = path.split_once("/models/").map_or("", |(_, id)| id);
        // a name with `/` arrives as `%2F` from SDKs that encode it, as `/` from others
        let id = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| ApiError::InvalidRequest("the model id is not UTF-8".into()))?
            .into_owned();
        if session
            .req_header()
            .headers
            .contains_key(http::header::AUTHORIZATION)
            || session.req_header().headers.contains_key(names::API_KEY)
        {
            let key = presented_key(session).ok_or(ApiError::InvalidKey)?;
            ctx.key = Some(authenticate(&live, db_keys, key).await?);
        }
        return match live.model_body(&id) {
            Some(b) => Ok(Outcome::Respond(b)),
            None => Err(ApiError::ModelNotFound(id)),
        };
    }

    // key auth before anything else is revealed (Anthropic's SDKs send theirs as `x-api-key`)
    let key = match presented_key(session) {
        None if route == Route::Messages => header_str(session, names::X_API_KEY)
            .map(str::trim)
            .filter(|k| !k.is_empty()),
        k => k,
    }
    .ok_or(ApiError::MissingKey)?;
    ctx.tokia_key = key.starts_with(crate::surfaces::tokia::wire::KEY_PREFIX);
    if route.is_bradax() || (jwt.is_some() && crate::domain::bradax::looks_like_jwt(key)) {
        // a bradax access token (bradax's routes take nothing else), bound to its key
        let (info, bx) = super::bradax::authenticate(jwt, db_keys, key, route).await?;
        ctx.key = Some(info);
        ctx.bradax = Some(bx);
    } else {
        ctx.key = Some(authenticate(&live, db_keys, key).await?);
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
    let content_type = header_str(session, http::header::CONTENT_TYPE).unwrap_or("");
    let content_length = content_length(session)?;
    if route.is_upload() {
        if !content_type.starts_with("multipart/form-data") {
            return Err(ApiError::UnsupportedMediaType("multipart/form-data"));
        }
        if content_length.is_some_and(|n| n > cfg.max_upload_bytes) {
            return Err(ApiError::BodyTooLarge(cfg.max_upload_bytes));
        }
        let boundary = super::multipart::boundary(content_type)
            .ok_or_else(|| {
                ApiError::InvalidRequest("multipart/form-data needs a boundary parameter".into())
            })?
            .to_string();
        // The model comes from the `x-catraca-model` header, else the form's `model` field,
        // else the query string, else the catalog's first model of the route's category.
        let category = match route {
            Route::Ocr => Category::Ocr,
            Route::Recognition => Category::Recognition,
            Route::ImageEdits => Category::Image,
            _ => Category::Audio,
        };
        // the file part as each contract names it
        let file_field = match route {
            Route::Ocr | Route::ImageEdits => "image",
            Route::Recognition => "document",
            _ => "file",
        };
        let forced = header_str(session, names::X_CATRACA_MODEL).map(str::to_string);
        // an edit is priced per image, so its `n` must be known wherever it sits in the form:
        // the form is read whole (spooled past the read-ahead), not just to its file part
        let whole = route == Route::ImageEdits;
        let form = read_form(
            session,
            ctx,
            &boundary,
            file_field,
            forced.is_some(),
            whole,
            cfg.max_upload_bytes,
        )
        .await?;
        if whole {
            ctx.images = match form.n {
                None => 1,
                Some(n @ 1..=MAX_IMAGES) => n,
                Some(_) => {
                    return Err(ApiError::InvalidRequest(format!(
                        "n: must be between 1 and {MAX_IMAGES}"
                    )));
                }
            };
        }
        if !form.has_file {
            return Err(ApiError::InvalidRequest(format!(
                "the form has no '{file_field}' part"
            )));
        }
        let name = forced
            .or(form.model)
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
    let deadline = body_deadline(ctx);
    let mut total = 0;
    while let Some(chunk) = read_chunk(session, ctx, deadline, &mut total, limit).await? {
        buf.extend_from_slice(&chunk);
    }
    let body = buf.freeze();
    ctx.body = Some(body.clone());
    if session.as_ref().retry_buffer_truncated() {
        super::bigbody::wrap(session, body.clone());
    }
    // bradax's `{model, messages, parameters}` becomes an OpenAI chat body (the upstream's and
    // everything below reads that one)
    let body = if route.is_bradax() {
        let b = super::bradax::translate(&body, route)?;
        ctx.body = Some(b.clone());
        b
    } else if route == Route::Messages {
        // Anthropic's Messages request, likewise (its answer is re-encoded by `messages`)
        let b = crate::dialect::messages::request(&body)?;
        ctx.body = Some(b.clone());
        ctx.messages = Some(super::messages::state());
        b
    } else {
        body
    };

    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        model: Option<Text<'a>>,
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
    if nesting_exceeds(&body, MAX_JSON_DEPTH) {
        return Err(ApiError::InvalidJson(format!(
            "the JSON nests deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    let probe: Probe = serde_json::from_slice(&body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::InvalidRequest(format!(
            "the body must be a JSON object with a string 'model': {e}"
        )),
        _ => ApiError::InvalidJson(e.to_string()),
    })?;
    let model = probe
        .model
        .ok_or_else(|| ApiError::InvalidRequest("you must provide a model parameter".into()))?
        .0;
    choose_model(ctx, &model, route)?;
    if let Cow::Borrowed(m) = &model {
        // borrowed = no escapes: the string's bytes sit in the body as they are
        let start = m.as_ptr() as usize - body.as_ptr() as usize;
        ctx.model_span = Some((start, start + m.len()));
    }
    ctx.stream = probe.stream.unwrap_or(false)
        && matches!(
            route,
            Route::Chat
                | Route::Completions
                | Route::BradaxStream
                | Route::Responses
                | Route::Messages
        );
    if route == Route::Images {
        ctx.images = probe
            .n
            .as_ref()
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1)
            .min(100);
    }
    match route {
        Route::Speech => ctx.chars = super::surface::speech_chars(&body)?,
        Route::Rerank => ctx.searches = super::surface::rerank_searches(&body)?,
        Route::Moderations => super::surface::check_moderation(&body)?,
        _ => {}
    }
    ctx.stream_options_absent = !probe.stream_options.present;
    let client_usage = probe
        .stream_options
        .value
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    // the Responses API always reports usage in its last event: nothing to inject or hide
    ctx.hide_usage = ctx.stream && !client_usage && route != Route::Responses;
    if (ctx.hide_usage && !ctx.stream_options_absent) || ctx.model_span.is_none() {
        // the rewrite for the upstream cannot splice bytes: parse the body whole, once, here,
        // so a body serde cannot take is the client's 400 and never an upstream failure
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
        if !v.is_object() {
            return Err(ApiError::InvalidRequest(
                "the body must be a JSON object".into(),
            ));
        }
        ctx.body_json = Some(v);
    }
    // a first deployment of another dialect: its body translated now (a field it cannot
    // express is this 400); nothing for OpenAI-shaped deployments
    super::translate::check_first(ctx)?;

    // Tokens are estimated only when a token limit or a reservation needs them.
    let estimate = match (&ctx.key, ctx.model) {
        (Some(k), Some(m))
            if k.limits.tpm.is_some()
                || k.org_limits.tpm.is_some()
                || (funds.is_some() && (k.prepaid || k.budgeted)) =>
        {
            let enc = live.config.models[m].tokenizer;
            enc.ensure_loaded().await;
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

/// The request head within `client.max_header_bytes` and `client.max_headers` (Pingora's own
/// caps, 1 MiB and 256 headers, stop what is larger before this runs): else 431.
pub fn check_head(session: &Session, client: &crate::config::ClientConfig) -> Result<(), ApiError> {
    let req = session.req_header();
    if req.headers.len() > client.max_headers {
        return Err(ApiError::HeadersTooLarge);
    }
    // request line plus "name: value\r\n" per header
    let mut size = req.method.as_str().len() + req.raw_path().len() + 12;
    for (name, value) in &req.headers {
        size += name.as_str().len() + value.len() + 4;
        if size > client.max_header_bytes {
            return Err(ApiError::HeadersTooLarge);
        }
    }
    if size > client.max_header_bytes {
        return Err(ApiError::HeadersTooLarge);
    }
    Ok(())
}

/// Deepest nesting of arrays and objects a JSON body may have (serde_json's own parser stops
/// at 128; a body between the two would pass a first look and fail a later full parse).
pub const MAX_JSON_DEPTH: usize = 64;

/// Whether `body` (already known to be valid JSON) nests arrays and objects deeper than `max`.
/// Most bodies have fewer brackets than `max` in all, which one SIMD count shows; only the
/// others are walked byte by byte.
pub fn nesting_exceeds(body: &[u8], max: usize) -> bool {
    if memchr::memchr2_iter(b'[', b'{', body).take(max + 1).count() <= max {
        return false;
    }
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for &b in body {
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// What the gateway learnt of an upload's form.
struct Form {
    model: Option<String>,
    has_file: bool,
    /// `n` (image edits).
    n: Option<u64>,
}

/// Most images one edit may ask for (OpenAI's own limit).
const MAX_IMAGES: u64 = 10;

/// Pingora's retry buffer: a body read ahead up to this size is replayed by Pingora itself.
const READ_AHEAD: usize = 64 * 1024;

/// Read an upload's form far enough to know its `model` field (unless `forced`) and whether
/// it has a `file` part. Up to [`READ_AHEAD`] bytes stay in Pingora's retry buffer and the
/// rest streams through as usual. When the answer lies further (a `model` field after a large
/// file, as the Node SDK sends it), the whole upload is spooled to an unlinked temporary file,
/// bounded by `max_upload_bytes`, and sent upstream from there, never held in memory.
async fn read_form(
    session: &mut Session,
    ctx: &mut RequestCtx,
    boundary: &str,
    file_field: &'static str,
    forced: bool,
    whole: bool,
    max_upload_bytes: u64,
) -> Result<Form, ApiError> {
    use tokio::io::AsyncWriteExt;
    session.enable_retry_buffering();
    let mut scan = super::multipart::FormScan::new(boundary, file_field);
    let deadline = body_deadline(ctx);
    let mut prefix = BytesMut::new();
    let mut spool: Option<tokio::fs::File> = None;
    let mut total: u64 = 0;
    let mut ended = false;
    loop {
        let known = !whole && scan.has_file && (forced || scan.model.is_some());
        if scan.done() || (known && spool.is_none()) {
            break;
        }
        let Some(chunk) = read_chunk(session, ctx, deadline, &mut total, max_upload_bytes).await?
        else {
            ended = true;
            break;
        };
        scan.feed(&chunk)
            .map_err(|e| ApiError::InvalidRequest(format!("invalid multipart form: {}", e.0)))?;
        match spool.as_mut() {
            Some(f) => f.write_all(&chunk).await.map_err(spool_error)?,
            None if prefix.len() + chunk.len() <= READ_AHEAD => prefix.extend_from_slice(&chunk),
            None => {
                // past the retry buffer: from here on the upload goes to a file
                let mut f = spool_file().await?;
                f.write_all(&prefix).await.map_err(spool_error)?;
                f.write_all(&chunk).await.map_err(spool_error)?;
                prefix = BytesMut::new();
                spool = Some(f);
            }
        }
    }
    if let Some(mut f) = spool {
        if !ended {
            // read the rest too: the file replaces the client's body
            while let Some(c) =
                read_chunk(session, ctx, deadline, &mut total, max_upload_bytes).await?
            {
                f.write_all(&c).await.map_err(spool_error)?;
            }
        }
        f.flush().await.map_err(spool_error)?;
        use tokio::io::AsyncSeekExt;
        f.seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(spool_error)?;
        tracing::debug!(request_id = %ctx.request_id, bytes = total, "upload spooled to a temporary file");
        super::bigbody::wrap_spooled(session, f, total);
    }
    // else the rest streams through after the read-ahead, into Pingora's retry buffer while it
    // fits (another attempt replays it), past that with no second attempt
    if whole && !scan.done() {
        return Err(ApiError::InvalidRequest(
            "invalid multipart form: it has no closing delimiter".into(),
        ));
    }
    Ok(Form {
        model: scan.model,
        has_file: scan.has_file,
        n: scan.n,
    })
}

/// When the body must be in: the request's body deadline (60 s when none was set).
fn body_deadline(ctx: &RequestCtx) -> tokio::time::Instant {
    ctx.body_deadline
        .map(tokio::time::Instant::from_std)
        .unwrap_or_else(|| tokio::time::Instant::now() + std::time::Duration::from_secs(60))
}

/// The next chunk of the client's body (`None` at its end), counted into `total`: 413 past
/// `limit`, 408 past `deadline` (a trickle restarts no timer here), 400 for a broken read
/// (the client went away).
async fn read_chunk(
    session: &mut Session,
    ctx: &mut RequestCtx,
    deadline: tokio::time::Instant,
    total: &mut u64,
    limit: u64,
) -> Result<Option<bytes::Bytes>, ApiError> {
    match tokio::time::timeout_at(deadline, session.read_request_body()).await {
        Ok(Ok(Some(c))) => {
            *total += c.len() as u64;
            if *total > limit {
                session.set_keepalive(None);
                return Err(ApiError::BodyTooLarge(limit));
            }
            Ok(Some(c))
        }
        Ok(Ok(None)) => Ok(None),
        Err(_) => {
            session.set_keepalive(None);
            Err(ApiError::RequestTimeout)
        }
        Ok(Err(e)) if e.etype() == &pingora::ErrorType::ReadTimedout => {
            session.set_keepalive(None);
            Err(ApiError::RequestTimeout)
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "reading the request body failed");
            ctx.client_disconnected = true;
            Err(ApiError::InvalidRequest(
                "could not read the request body".into(),
            ))
        }
    }
}

/// A new temporary file, already unlinked: it is gone when the request ends, crash or not.
async fn spool_file() -> Result<tokio::fs::File, ApiError> {
    let path = std::env::temp_dir().join(format!(
        "catraca-upload-{}-{:016x}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(spool_error)?;
    let _ = std::fs::remove_file(&path);
    Ok(tokio::fs::File::from_std(f))
}

fn spool_error(e: std::io::Error) -> ApiError {
    tracing::error!(error = %e, "cannot spool an upload to a temporary file");
    ApiError::Internal
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
        Some(Route::Chat | Route::Completions | Route::Responses | Route::Messages) => estimate
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
            chars: ctx.chars,
            searches: ctx.searches,
            request: true,
            ..Default::default()
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

/// A JSON string borrowed from the body when it has no escapes, else unescaped into an owned
/// one. (serde borrows a bare `Cow<str>` field, but one inside an `Option` it always copies,
/// which would hide that the bytes of `model` can be spliced in place.)
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
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
    // a student project calls only the chat models of its allow-list (embeddings, which its
    // vectors need, are not limited)
    if let Some(bx) = &ctx.bradax
        && route != Route::Embeddings
        && !live.config.bradax.allows_model(bx.tier, name)
    {
        return Err(ApiError::ModelNotAllowed(name.to_string()));
    }
    let want = match route {
        Route::Chat | Route::BradaxInvoke | Route::BradaxStream | Route::Messages => Category::Chat,
        Route::Completions => Category::Completion,
        Route::Embeddings => Category::Embedding,
        Route::Images => Category::Image,
        Route::Audio => Category::Audio,
        Route::Ocr => Category::Ocr,
        Route::Recognition => Category::Recognition,
        Route::Responses => Category::Chat,
        Route::Moderations => Category::Moderation,
        Route::Speech => Category::Speech,
        Route::AudioTranslations => Category::Audio,
        Route::ImageEdits => Category::Image,
        Route::Rerank => Category::Rerank,
        Route::Models | Route::ModelRetrieve | Route::Health | Route::RateLimitUsage => {
            return Err(ApiError::Internal);
        }
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
    live.mark_used(idx, ctx.start);
    ctx.model = Some(idx);
    // the catalog's own name (the common case) is shared, an alias is copied
    ctx.model_name = Some(if live.model_names[idx].as_ref() == name {
        live.model_names[idx].clone()
    } else {
        Arc::from(name)
    });
    ctx.candidates = live.candidates(idx);
    if route.openai_only() {
        super::surface::keep_speakers(&live, route, &mut ctx.candidates, name)?;
    }
    ctx.max_attempts = live.config.failover.max_attempts;
    Ok(())
}

/// The key `key` names, if it may be used now.
async fn authenticate(
    live: &super::route::Live,
    db_keys: Option<&PgKeys>,
    key: &str,
) -> Result<Arc<super::route::KeyInfo>, ApiError> {
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
    Ok(info)
}

/// The `/v1/models` shape of the listener `session` came in on (`both` unless the config
/// names the listener; an unspecified listener address matches its port).
fn models_shape(config: &crate::config::Config, session: &Session) -> crate::config::ModelsList {
    if config.models_lists.is_empty() {
        return crate::config::ModelsList::Both;
    }
    let Some(local) = session
        .as_downstream()
        .server_addr()
        .and_then(|a| a.as_inet())
        .copied()
    else {
        return crate::config::ModelsList::Both;
    };
    config
        .models_lists
        .iter()
        .find(|(addr, _)| {
            addr.port() == local.port() && (addr.ip().is_unspecified() || addr.ip() == local.ip())
        })
        .map_or(crate::config::ModelsList::Both, |&(_, m)| m)
}

fn presented_key(session: &Session) -> Option<&str> {
    if let Some(v) = header_str(session, http::header::AUTHORIZATION) {
        let v = v.trim();
        let (scheme, rest) = v.split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() {
            return Some(rest.trim());
        }
        return None;
    }
    header_str(session, names::API_KEY)
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// Header names looked up on every request, parsed once (a `&str` name is parsed and
/// validated again on each lookup).
pub mod names {
    use http::HeaderName;
    /// `x-session-id`
    pub const X_SESSION_ID: HeaderName = HeaderName::from_static("x-session-id");
    /// `x-tokia-session-id`
    pub const X_TOKIA_SESSION_ID: HeaderName = HeaderName::from_static("x-tokia-session-id");
    /// `x-client-request-id`
    pub const X_CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-client-request-id");
    /// `x-request-id`
    pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    /// `api-key`
    pub const API_KEY: HeaderName = HeaderName::from_static("api-key");
    /// `x-api-key` (Anthropic's SDKs, on `/v1/messages`)
    pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
    /// `x-catraca-model`
    pub const X_CATRACA_MODEL: HeaderName = HeaderName::from_static("x-catraca-model");
}

/// A request header as UTF-8, if present and valid.
pub fn header_str(session: &Session, name: impl http::header::AsHeaderName) -> Option<&str> {
    session
        .req_header()
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
}

fn content_length(session: &Session) -> Result<Option<u64>, ApiError> {
    match header_str(session, http::header::CONTENT_LENGTH) {
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

/// Property tests (bounded here; `PROPTEST_CASES=100000 cargo test --lib fuzz` for long runs).
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn nested(depth: usize, open: &str, close: &str) -> String {
        format!(
            "{{\"model\":\"m\",\"x\":{}1{}}}",
            open.repeat(depth),
            close.repeat(depth)
        )
    }

    proptest! {
        /// The depth check agrees with the nesting actually built, strings with brackets and
        /// escapes included, and never panics on arbitrary bytes.
        #[test]
        fn nesting_is_measured_exactly(depth in 0usize..200, noise in "[\\[\\]{}\"\\\\a ]{0,40}") {
            let body = nested(depth, "[", "]");
            let noisy = body.replacen("\"m\"", &serde_json::to_string(&noise).unwrap(), 1);
            // the object itself is one level
            prop_assert_eq!(nesting_exceeds(noisy.as_bytes(), MAX_JSON_DEPTH), depth + 1 > MAX_JSON_DEPTH);
            if depth < MAX_JSON_DEPTH {
                // whatever passes the check, serde_json can parse whole
                prop_assert!(serde_json::from_str::<serde_json::Value>(&noisy).is_ok());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = nesting_exceeds(&data, 8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_without_escapes_is_borrowed_so_it_can_be_spliced() {
        #[derive(Deserialize)]
        struct P<'a> {
            #[serde(borrow, default)]
            model: Option<Text<'a>>,
        }
        let body = br#"{"model": "gpt-4o-mini"}"#;
        let p: P = serde_json::from_slice(body).unwrap();
        assert!(matches!(p.model, Some(Text(Cow::Borrowed("gpt-4o-mini")))));
        let p: P = serde_json::from_slice(br#"{"model": "gpt\u002d4o"}"#).unwrap();
        assert!(matches!(p.model, Some(Text(Cow::Owned(ref s))) if s == "gpt-4o"));
        assert!(serde_json::from_slice::<P>(br#"{"model": 4}"#).is_err());
    }
}
