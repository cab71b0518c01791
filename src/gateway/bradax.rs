//! bradax in the data plane: its access tokens as credentials, and its two LLM routes
//! (`/api/v1/llm/invoke`, `/api/v1/llm/stream`) translated to and from an OpenAI chat call.
//!
//! * A bradax access token (a JWT signed with the admin app's keys, audience `bradax`) is
//!   verified here without a database round trip and bound to its key through the key cache
//!   (by the key hash it carries): the key's limits, budget and billing apply, and a revoked
//!   or disabled key's tokens are refused as soon as the cache hears of it. Plain API keys
//!   never reach this module (a key that does not look like a JWT costs one prefix check).
//! * The request `{model, messages, parameters?}` becomes an OpenAI chat body before anything
//!   else reads it (`parameters` mapped field by field, unknown or absurd ones a 400), so
//!   limits, failover, billing and the one usage event are the chat route's own.
//! * The answer is translated on its way out: `invoke` is collected and rendered once as
//!   `{content, model, usage{…, cost_usd}, timestamp}`; `stream` turns each upstream event
//!   into `data: {"delta", "finished": false}` as it passes (nothing held back), and ends with
//!   `{"delta": "", "finished": true, "usage"}`, or `"error"` when the upstream broke.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::ctx::{RequestCtx, Route};
use super::route::KeyInfo;
use crate::domain::accounts::Jwt;
use crate::domain::bradax::{Scope, Scopes, Tier};
use crate::error::ApiError;
use crate::store::key_cache::PgKeys;

/// Largest `invoke` answer collected from the upstream before it is translated.
const MAX_ANSWER: usize = 16 << 20;
/// Most messages one request may carry.
const MAX_MESSAGES: usize = 2048;

/// A bradax caller on a gateway route, and the translation state of its answer.
#[derive(Debug)]
pub struct BxState {
    /// The project's tier (a student's models are allow-listed).
    pub tier: Tier,
    /// Scopes granted.
    pub scopes: Scopes,
    /// The answer is translated (bradax's own routes).
    translate: bool,
    /// The upstream answered 2xx.
    ok: bool,
    /// `invoke`: the answer so far; `stream`: an unfinished line.
    buf: BytesMut,
    /// The answer grew past [`MAX_ANSWER`].
    overflow: bool,
    /// The last event was sent.
    finished: bool,
    /// The upstream said why it stopped (`finish_reason`).
    saw_finish: bool,
}

/// The key a bradax access token binds to, checked as a key is (disabled, expired), and the
/// scopes the route needs: `invoke_llm` for `llm/invoke` and `llm/stream`, `invoke_llm` or
/// `execute_graph` for chat, and also `read_vector` or `write_vector` for embeddings; no other
/// gateway route takes these tokens.
pub async fn authenticate(
    jwt: Option<&Jwt>,
    db_keys: Option<&PgKeys>,
    token: &str,
    route: Route,
) -> Result<(Arc<KeyInfo>, Box<BxState>), ApiError> {
    let (Some(jwt), Some(db)) = (jwt, db_keys) else {
        return Err(ApiError::InvalidKey);
    };
    let p = crate::domain::bradax::verify_access(jwt, token).map_err(|_| ApiError::InvalidKey)?;
    let info = db.lookup(&p.key_hash).await?.ok_or(ApiError::InvalidKey)?;
    if info.api_key_id != Some(p.key_id) || info.organization_id != Some(p.org_id) {
        return Err(ApiError::InvalidKey);
    }
    if info.disabled {
        return Err(ApiError::DisabledKey);
    }
    if info.is_expired() {
        return Err(ApiError::ExpiredKey);
    }
    let need: &[Scope] = match route {
        // a graph's `llm` nodes call `/v1/chat/completions` with the caller's token; bradax's
        // own LLM routes are `invoke_llm`'s alone (README's scope table)
        Route::Chat => &[Scope::InvokeLlm, Scope::ExecuteGraph],
        Route::BradaxInvoke | Route::BradaxStream => &[Scope::InvokeLlm],
        Route::Embeddings => &[
            Scope::InvokeLlm,
            Scope::ReadVector,
            Scope::WriteVector,
            Scope::ExecuteGraph,
        ],
        _ => &[],
    };
    if !p.scopes.any(need) {
        return Err(ApiError::ScopeMissing(
            need.first().map_or("none on this route", |s| s.as_str()),
        ));
    }
    Ok((
        info,
        Box::new(BxState {
            tier: p.tier,
            scopes: p.scopes,
            translate: route.is_bradax(),
            ok: false,
            buf: BytesMut::new(),
            overflow: false,
            finished: false,
            saw_finish: false,
        }),
    ))
}

/// Whether `path` is one of bradax's routes in the admin app (`auth/token`, `metrics`,
/// `health`, `vectors/...`, `graphs/...`): an error the gateway answers itself (a 431 on the
/// head) is then written in bradax's shape. `auth/refresh` is shared with PyTake and is not.
pub fn owns_admin_path(path: &str) -> bool {
    matches!(
        path,
        "/api/v1/auth/token" | "/api/v1/metrics" | "/api/v1/health"
    ) || path.starts_with("/api/v1/vectors/")
        || path.starts_with("/api/v1/graphs/")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Req<'a> {
    #[serde(borrow)]
    model: Cow<'a, str>,
    /// Passed on as sent, once its messages are checked.
    #[serde(borrow)]
    messages: &'a RawValue,
    #[serde(default, borrow)]
    parameters: Option<std::collections::BTreeMap<Cow<'a, str>, &'a RawValue>>,
    /// `llm/stream`'s body is `invoke`'s with `"stream": true`.
    #[serde(default)]
    stream: Option<bool>,
}

/// What is checked of one message (other fields, such as `name`, pass on as they are).
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::InvalidRequest(m.into())
}

fn number_in(k: &str, v: &Value, lo: f64, hi: f64) -> Result<(), ApiError> {
    match v.as_f64() {
        Some(x) if x.is_finite() && (lo..=hi).contains(&x) => Ok(()),
        _ => Err(bad(format!("parameters.{k}: a number from {lo} to {hi}"))),
    }
}

fn string_up_to(v: &Value, max: usize) -> bool {
    v.as_str()
        .is_some_and(|s| !s.is_empty() && s.chars().count() <= max)
}

/// Known parameters (their OpenAI names are the same), each checked for a sane value.
const KNOWN: [&str; 8] = [
    "temperature",
    "max_tokens",
    "top_p",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "user",
];

fn check_parameter(k: &str, v: &Value) -> Result<(), ApiError> {
    match k {
        "temperature" => number_in(k, v, 0.0, 2.0),
        "top_p" => number_in(k, v, 0.0, 1.0),
        "presence_penalty" | "frequency_penalty" => number_in(k, v, -2.0, 2.0),
        "max_tokens" => match v.as_u64() {
            Some(n) if (1..=1_000_000).contains(&n) => Ok(()),
            _ => Err(bad("parameters.max_tokens: an integer from 1 to 1000000")),
        },
        "seed" => match v.as_i64() {
            Some(_) => Ok(()),
            None => Err(bad("parameters.seed: an integer")),
        },
        "user" => match string_up_to(v, 256) {
            true => Ok(()),
            false => Err(bad("parameters.user: 1 to 256 characters")),
        },
        "stop" => {
            let ok = match v {
                Value::String(_) => string_up_to(v, 256),
                Value::Array(a) => {
                    !a.is_empty() && a.len() <= 4 && a.iter().all(|s| string_up_to(s, 256))
                }
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                Err(bad(
                    "parameters.stop: a string or 1 to 4 strings of 1 to 256 characters",
                ))
            }
        }
        _ => Err(bad(format!(
            "parameters.{k}: unknown parameter (known: {})",
            KNOWN.join(", ")
        ))),
    }
}

/// bradax's request as the OpenAI chat body the upstream gets (`stream` with
/// `include_usage` on `llm/stream`). Every problem is a 400 in bradax's shape.
pub fn translate(body: &[u8], route: Route) -> Result<Bytes, ApiError> {
    if body.is_empty() {
        return Err(ApiError::InvalidJson("the body is empty".into()));
    }
    // as on bradax's other routes (`surfaces::kit::json`): no NUL, raw or escaped
    if body.contains(&0) || crate::surfaces::kit::has_nul_escape(body) {
        return Err(bad("strings must not contain the NUL character (\\u0000)"));
    }
    if super::request::nesting_exceeds(body, 64) {
        return Err(ApiError::InvalidJson(
            "the JSON nests deeper than 64 levels".into(),
        ));
    }
    let r: Req = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => bad(format!(
            "the body must be {{model, messages, parameters?}}: {e}"
        )),
        _ => ApiError::InvalidJson(e.to_string()),
    })?;
    let stream = route == Route::BradaxStream;
    match r.stream {
        Some(true) if !stream => return Err(bad("stream: use POST /api/v1/llm/stream")),
        Some(false) if stream => return Err(bad("stream: llm/stream always streams")),
        _ => {}
    }
    if r.model.is_empty() || r.model.len() > 200 {
        return Err(bad("model: 1 to 200 characters"));
    }
    let messages: Vec<Message> = serde_json::from_str(r.messages.get())
        .map_err(|_| bad("messages: an array of {role, content}"))?;
    if messages.is_empty() || messages.len() > MAX_MESSAGES {
        return Err(bad(format!("messages: 1 to {MAX_MESSAGES} messages")));
    }
    for (i, m) in messages.iter().enumerate() {
        let role_ok = m
            .role
            .as_deref()
            .is_some_and(|r| matches!(r, "system" | "user" | "assistant" | "tool" | "developer"));
        if !role_ok {
            return Err(bad(format!(
                "messages[{i}].role: system, user, assistant, tool or developer"
            )));
        }
        if !m
            .content
            .is_some_and(|c| matches!(c.get().as_bytes().first(), Some(b'"' | b'[')))
        {
            return Err(bad(format!(
                "messages[{i}].content: a string (or an array of parts)"
            )));
        }
    }
    // the OpenAI body written as it goes: the client's own bytes for messages and values
    let mut out = Vec::with_capacity(body.len() + 64);
    let write = |out: &mut Vec<u8>, s: &str| serde_json::to_writer(out, s);
    out.extend_from_slice(b"{\"model\":");
    write(&mut out, &r.model).map_err(|_| ApiError::Internal)?;
    out.extend_from_slice(b",\"messages\":");
    out.extend_from_slice(r.messages.get().as_bytes());
    for (k, v) in r.parameters.iter().flatten() {
        // a raw value is only checked for syntax: a number past f64 (`1e400`) fails here, the
        // client's 400 (it was a 500)
        let value: Value = serde_json::from_str(v.get())
            .map_err(|e| bad(format!("parameters.{k}: not a usable JSON value: {e}")))?;
        check_parameter(k, &value)?;
        out.push(b',');
        write(&mut out, k).map_err(|_| ApiError::Internal)?;
        out.push(b':');
        out.extend_from_slice(v.get().as_bytes());
    }
    out.extend_from_slice(if stream {
        &b",\"stream\":true,\"stream_options\":{\"include_usage\":true}}"[..]
    } else {
        &b",\"stream\":false}"[..]
    });
    Ok(Bytes::from(out))
}

/// The upstream's header was accepted (no more failover): a translated answer has no known
/// length, and `invoke`'s is JSON.
pub fn on_header(
    resp: &mut pingora::http::ResponseHeader,
    ctx: &mut RequestCtx,
) -> pingora::Result<()> {
    let sse = ctx.sse_active;
    let Some(bx) = ctx.bradax.as_deref_mut().filter(|b| b.translate) else {
        return Ok(());
    };
    bx.ok = (200..300).contains(&resp.status.as_u16());
    bx.buf.clear();
    bx.overflow = false;
    bx.finished = false;
    bx.saw_finish = false;
    resp.remove_header(&http::header::CONTENT_LENGTH);
    if !sse {
        resp.insert_header("content-type", "application/json")?;
    }
    Ok(())
}

/// One chunk of the upstream's answer (after the SSE scanner), translated for the client.
pub fn on_body(body: &mut Option<Bytes>, eos: bool, ctx: &mut RequestCtx) {
    let Some(mut bx) = ctx.bradax.take() else {
        return;
    };
    if bx.translate {
        if ctx.sse_active && bx.ok {
            stream_chunk(&mut bx, body, eos, ctx);
        } else {
            answer_chunk(&mut bx, body, eos, ctx);
        }
    }
    ctx.bradax = Some(bx);
}

/// `{prompt_tokens, completion_tokens, total_tokens, cost_usd}` at the catalog's price.
fn usage_json(ctx: &RequestCtx, u: crate::sse::Usage) -> Value {
    let cost = match (ctx.live.as_ref(), ctx.model) {
        (Some(l), Some(m)) => {
            crate::pricing::cost(
                &l.config.models[m].price,
                &crate::pricing::Consumed {
                    prompt_tokens: u.prompt_tokens,
                    completion_tokens: u.completion_tokens,
                    cached_tokens: u.cached_tokens,
                    cache_write_tokens: u.cache_write_tokens,
                    request: true,
                    ..Default::default()
                },
                l.config.fx_usd_brl_micros,
            )
            .usd_micros
        }
        _ => 0,
    };
    serde_json::json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "cost_usd": crate::domain::money::Micros(cost).json_number(),
    })
}

fn now() -> String {
    crate::admin::rfc3339(time::OffsetDateTime::now_utc())
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default)]
    choices: Vec<AnswerChoice<'a>>,
}

#[derive(Deserialize)]
struct AnswerChoice<'a> {
    #[serde(borrow, default)]
    message: Option<Content<'a>>,
    #[serde(borrow, default)]
    delta: Option<Content<'a>>,
    #[serde(default)]
    finish_reason: Option<Value>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct UpstreamError<'a> {
    #[serde(borrow, default)]
    error: Option<UpstreamErrorInner<'a>>,
}

#[derive(Deserialize)]
struct UpstreamErrorInner<'a> {
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

/// `invoke` (and any non-2xx answer): collect, then render once.
fn answer_chunk(bx: &mut BxState, body: &mut Option<Bytes>, eos: bool, ctx: &RequestCtx) {
    if let Some(b) = body.take() {
        if bx.buf.len() + b.len() > MAX_ANSWER {
            bx.overflow = true;
        } else if !bx.overflow {
            bx.buf.extend_from_slice(&b);
        }
    }
    if !eos {
        return;
    }
    let status = ctx.upstream_status.unwrap_or(502);
    let out = if bx.ok && !bx.overflow {
        match serde_json::from_slice::<Answer>(&bx.buf) {
            Ok(a) => {
                let content = a
                    .choices
                    .first()
                    .and_then(|c| c.message.as_ref())
                    .and_then(|m| m.content.as_deref())
                    .unwrap_or("");
                serde_json::json!({
                    "content": content,
                    "model": ctx.model_name.as_deref().unwrap_or(""),
                    "usage": usage_json(ctx, ctx.usage.unwrap_or_default()),
                    "timestamp": now(),
                })
            }
            Err(_) => error_json(
                "upstream_error",
                "the provider's answer could not be read",
                "UPSTREAM_INVALID_ANSWER",
                &ctx.request_id,
            ),
        }
    } else {
        let upstream = serde_json::from_slice::<UpstreamError>(&bx.buf)
            .ok()
            .and_then(|e| e.error)
            .and_then(|e| e.message)
            .map(|m| m.into_owned())
            .unwrap_or_else(|| format!("the provider answered {status}"));
        let code = if status < 500 {
            "UPSTREAM_REJECTED"
        } else {
            "UPSTREAM_ERROR"
        };
        error_json("upstream_error", &upstream, code, &ctx.request_id)
    };
    bx.buf.clear();
    bx.finished = true;
    *body = Some(Bytes::from(out.to_string()));
}

fn push_event(out: &mut BytesMut, v: &Value) {
    out.put_slice(b"data: ");
    let mut w = out.writer();
    let _ = serde_json::to_writer(&mut w, v);
    w.get_mut().put_slice(b"\n\n");
}

fn final_event(ctx: &RequestCtx, out: &mut BytesMut) {
    let usage = ctx.sse.usage.unwrap_or_default();
    push_event(
        out,
        &serde_json::json!({"delta": "", "finished": true, "usage": usage_json(ctx, usage)}),
    );
}

/// The last event of a stream that broke after its first byte.
pub fn error_event(err: &ApiError) -> Bytes {
    let mut out = BytesMut::new();
    push_event(
        &mut out,
        &serde_json::json!({
            "delta": "",
            "finished": true,
            "error": {"code": err.code().to_ascii_uppercase(), "message": err.to_string()},
        }),
    );
    out.freeze()
}

/// Whether this request's answer is bradax's stream (its error event is [`error_event`]).
pub fn translates_stream(ctx: &RequestCtx) -> bool {
    ctx.sse_active && ctx.bradax.as_deref().is_some_and(|b| b.translate)
}

/// `stream`: each complete `data:` line becomes its bradax event at once.
fn stream_chunk(bx: &mut BxState, body: &mut Option<Bytes>, eos: bool, ctx: &RequestCtx) {
    let mut out = BytesMut::new();
    if let Some(b) = body.take() {
        bx.buf.extend_from_slice(&b);
    }
    while let Some(nl) = memchr::memchr(b'\n', &bx.buf) {
        let line = bx.buf.split_to(nl + 1);
        if bx.finished {
            continue;
        }
        let line = line.strip_suffix(b"\n").unwrap_or(&line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(data) = line.strip_prefix(b"data:") else {
            continue;
        };
        let data = data.trim_ascii();
        if data == b"[DONE]" {
            final_event(ctx, &mut out);
            bx.finished = true;
            continue;
        }
        if let Ok(e) = serde_json::from_slice::<UpstreamError>(data)
            && let Some(err) = e.error
        {
            push_event(
                &mut out,
                &serde_json::json!({"delta": "", "finished": true, "error": {
                    "code": "UPSTREAM_ERROR",
                    "message": err.message.as_deref().unwrap_or("the provider failed"),
                }}),
            );
            bx.finished = true;
            continue;
        }
        if let Ok(a) = serde_json::from_slice::<Answer>(data) {
            for c in &a.choices {
                if c.finish_reason.as_ref().is_some_and(|f| !f.is_null()) {
                    bx.saw_finish = true;
                }
                if let Some(t) = c.delta.as_ref().and_then(|d| d.content.as_deref())
                    && !t.is_empty()
                {
                    push_event(
                        &mut out,
                        &serde_json::json!({"delta": t, "finished": false}),
                    );
                }
            }
        }
    }
    if eos && !bx.finished {
        if bx.saw_finish || ctx.sse.usage.is_some() {
            final_event(ctx, &mut out);
        } else {
            out.put_slice(&error_event(&ApiError::StreamInterrupted));
        }
        bx.finished = true;
    }
    *body = Some(out.freeze());
}

fn error_json(error: &str, message: &str, code: &str, request_id: &str) -> Value {
    serde_json::json!({
        "error": error,
        "message": message,
        "details": [{"code": code, "message": message}],
        "request_id": request_id,
        "timestamp": now(),
    })
}

/// A gateway error in bradax's shape. A rate limit is the contract's
/// `rate_limit_exceeded` (its `X-RateLimit-*` headers are the response's own).
pub fn gateway_error(e: &ApiError, request_id: &str) -> Bytes {
    let v = match e {
        ApiError::RateLimited {
            kind,
            limit,
            retry_after,
        } if *kind != crate::limits::Kind::Unavailable => {
            let unit = match kind {
                crate::limits::Kind::Tpm => "tokens por minuto",
                crate::limits::Kind::Rps => "requisições por segundo",
                crate::limits::Kind::Rpd => "requisições por dia",
                crate::limits::Kind::Rpm => "requisições por minuto",
                _ => "requisições simultâneas",
            };
            let mut v = error_json(
                "rate_limit_exceeded",
                &format!("Limite de {limit} {unit} excedido"),
                "RATE_LIMIT_EXCEEDED",
                request_id,
            );
            v["details"][0]["message"] =
                Value::String(format!("Tente novamente em {retry_after} segundos"));
            v
        }
        _ => {
            let error = match e.status() {
                400 | 413 | 415 | 431 => "validation_error",
                401 => "authentication_failed",
                403 if matches!(e, ApiError::ScopeMissing(_)) => "insufficient_scope",
                403 => "forbidden",
                404 => "not_found",
                402 => "quota_exceeded",
                429 => "rate_limit_exceeded",
                408 => "request_timeout",
                500 => "internal_error",
                _ => "upstream_error",
            };
            error_json(
                error,
                &e.to_string(),
                &e.code().to_ascii_uppercase(),
                request_id,
            )
        }
    };
    Bytes::from(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(body: &str, route: Route) -> Result<Value, ApiError> {
        translate(body.as_bytes(), route).map(|b| serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    #[test]
    fn parameters_map_to_openai_fields_and_unknown_ones_are_refused() {
        let v = tr(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],
               "parameters":{"temperature":0.5,"max_tokens":10,"top_p":0.9,"stop":["x"],
               "presence_penalty":1,"frequency_penalty":-1,"seed":7}}"#,
            Route::BradaxInvoke,
        )
        .unwrap();
        assert_eq!(v["model"], "m");
        assert_eq!(v["temperature"], 0.5);
        assert_eq!(v["max_tokens"], 10);
        assert_eq!(v["stop"], serde_json::json!(["x"]));
        assert_eq!(v["seed"], 7);
        assert_eq!(v["stream"], false);
        assert!(v.get("parameters").is_none() && v.get("stream_options").is_none());
        let s = tr(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
            Route::BradaxStream,
        )
        .unwrap();
        assert_eq!(s["stream"], true);
        assert_eq!(s["stream_options"]["include_usage"], true);
        for bad in [
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"parameters":{"logprobs":true}}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"parameters":{"temperature":9}}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"parameters":{"max_tokens":0}}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"parameters":{"stop":[1]}}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"parameters":{"temperature":1e400}}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"parameters":{"seed":-1e999}}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi\u0000"}]}"#,
            "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\0\"}]}",
            r#"{"model":"m","messages":[]}"#,
            r#"{"model":"m","messages":[{"role":"boss","content":"hi"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"extra":1}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
        ] {
            assert_eq!(
                translate(bad.as_bytes(), Route::BradaxInvoke)
                    .map(|_| ())
                    .err()
                    .map(|e| e.status()),
                Some(400),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_rate_limit_is_the_contracts_body() {
        let e = ApiError::RateLimited {
            kind: crate::limits::Kind::Rpm,
            limit: 500,
            retry_after: 15,
        };
        let v: Value = serde_json::from_slice(&gateway_error(&e, "r1")).unwrap();
        assert_eq!(v["error"], "rate_limit_exceeded");
        assert_eq!(
            v["message"],
            "Limite de 500 requisições por minuto excedido"
        );
        assert_eq!(v["details"][0]["code"], "RATE_LIMIT_EXCEEDED");
        assert_eq!(v["details"][0]["message"], "Tente novamente em 15 segundos");
        assert_eq!(v["request_id"], "r1");
    }
}
