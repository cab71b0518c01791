//! The mock's Gemini dialect (`generativelanguage.googleapis.com/v1beta` shapes), under
//! `/v1beta`: `POST /v1beta/models/{model}:generateContent`,
//! `…:streamGenerateContent?alt=sse` and `…:batchEmbedContents`.
//!
//! Auth: `x-goog-api-key` (or `?key=`); none is a 401 `UNAUTHENTICATED`, a key containing
//! `invalid` is Gemini's 400 `INVALID_ARGUMENT` with reason `API_KEY_INVALID`. Errors are in
//! Gemini's shape (`{"error": {"code", "message", "status"}}`), also for the common knobs
//! (`x-mock-status`, `x-mock-latency-ms`, `fail_rate`). A request Gemini would refuse (no
//! `contents`, a role other than user/model, a `functionResponse` whose `response` is not an
//! object, an embed request for another model) is a 400 `INVALID_ARGUMENT`.
//!
//! Answers are deterministic: `x-mock-chunks` words of [`WORDS`] (default 4), or, when the
//! request declares functions and its last turn is not a function response, one
//! `functionCall` (the forced name from `allowedFunctionNames`, else the first declaration)
//! with `args {"answer": …}`. `usageMetadata`: `promptTokenCount` = the words of `contents`
//! and `systemInstruction` plus `x-mock-cache-read` (reported as `cachedContentTokenCount`),
//! `candidatesTokenCount` = the words sent (5 for a call), `thoughtsTokenCount` from
//! `x-mock-thoughts`; `x-mock-usage` sends its JSON text as `usageMetadata`, `x-mock-no-usage`
//! none. Streams are `data: {GenerateContentResponse}\r\n\r\n` events, one word each (the
//! last with `finishReason` and the full usage), honouring `x-mock-chunk-delay-ms` and
//! `x-mock-fail-after-chunks`. Embeddings are the parent's bag of words
//! (`outputDimensionality`, default 8), without usage, as Gemini's.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::{Mock, WORDS, bag_of_words, hnum, preflight, remember};

/// Add this dialect's routes.
pub(super) fn routes(r: Router<Arc<Mock>>) -> Router<Arc<Mock>> {
    r.route("/v1beta/models/{action}", post(action))
}

/// Gemini's error answer.
fn error(status: u16, gstatus: &str, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {"code": status, "message": message, "status": gstatus}});
    (
        code,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

/// Gemini's error for a status forced by the common knobs.
fn error_for(status: u16) -> Response {
    let (g, msg) = match status {
        400 => ("INVALID_ARGUMENT", "mock invalid argument"),
        401 => ("UNAUTHENTICATED", "mock unauthenticated"),
        403 => ("PERMISSION_DENIED", "mock permission denied"),
        404 => ("NOT_FOUND", "mock model not found"),
        429 => (
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
        ),
        503 => (
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
        ),
        504 => ("DEADLINE_EXCEEDED", "mock deadline exceeded"),
        _ => ("INTERNAL", "An internal error has occurred."),
    };
    error(status, g, msg)
}

fn invalid(msg: &str) -> Response {
    error(400, "INVALID_ARGUMENT", msg)
}

async fn action(
    State(m): State<Arc<Mock>>,
    Path(action): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((model, verb)) = action.split_once(':') else {
        return error(404, "NOT_FOUND", "unknown method");
    };
    let key = h
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| q.iter().find(|(k, _)| k == "key").map(|(_, v)| v.clone()));
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            m.stats.requests.fetch_add(1, Ordering::Relaxed);
            return invalid("Invalid JSON payload received.");
        }
    };
    remember(&m, &v, &h);
    match key.as_deref() {
        None | Some("") => {
            m.stats.requests.fetch_add(1, Ordering::Relaxed);
            return error(
                401,
                "UNAUTHENTICATED",
                "Method doesn't allow unregistered callers. Please use an API key.",
            );
        }
        Some(k) if k.contains("invalid") => {
            m.stats.requests.fetch_add(1, Ordering::Relaxed);
            let body = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}});
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
                body.to_string(),
            )
                .into_response();
        }
        Some(_) => {}
    }
    if let Some(r) = preflight(&m, &h).await {
        return error_for(r.status().as_u16());
    }
    match verb {
        "generateContent" => generate(&m, &v, &h, false),
        "streamGenerateContent" => {
            if !q.iter().any(|(k, v)| k == "alt" && v == "sse") {
                // without alt=sse Gemini streams a JSON array; catraca always asks for SSE
                return invalid("the mock streams only with alt=sse");
            }
            generate(&m, &v, &h, true)
        }
        "batchEmbedContents" => embed(&v, model),
        _ => error(404, "NOT_FOUND", "unknown method"),
    }
}

fn words(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.split_whitespace().count() as u64,
        Value::Array(a) => a.iter().map(words).sum(),
        Value::Object(o) => o.values().map(words).sum(),
        _ => 0,
    }
}

/// Gemini's checks of a `GenerateContentRequest` that translation could get wrong.
fn check(v: &Value) -> Result<(), &'static str> {
    let contents = v
        .get("contents")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or("* GenerateContentRequest.contents: contents is not specified")?;
    for c in contents {
        if !matches!(
            c.get("role").and_then(Value::as_str),
            Some("user" | "model")
        ) {
            return Err("Please use a valid role: user, model.");
        }
        let parts = c
            .get("parts")
            .and_then(Value::as_array)
            .filter(|p| !p.is_empty())
            .ok_or("* GenerateContentRequest.contents.parts: must not be empty")?;
        for p in parts {
            if let Some(fr) = p.get("functionResponse")
                && (fr.get("name").and_then(Value::as_str).is_none()
                    || !fr.get("response").is_some_and(Value::is_object))
            {
                return Err(
                    "* GenerateContentRequest.contents.parts.function_response.response: must be an object",
                );
            }
        }
    }
    Ok(())
}

fn generate(m: &Arc<Mock>, v: &Value, h: &HeaderMap, stream: bool) -> Response {
    if let Err(why) = check(v) {
        return invalid(why);
    }
    let n = hnum(h, "x-mock-chunks").unwrap_or(4).clamp(1, 10_000) as usize;
    let candidates = v
        .pointer("/generationConfig/candidateCount")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .clamp(1, 8) as usize;
    let decls = v
        .pointer("/tools/0/functionDeclarations")
        .and_then(Value::as_array);
    let contents = v.get("contents").and_then(Value::as_array);
    let last_is_response = contents
        .and_then(|c| c.last())
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .is_some_and(|p| p.iter().any(|p| p.get("functionResponse").is_some()));
    let mode = v
        .pointer("/toolConfig/functionCallingConfig/mode")
        .and_then(Value::as_str);
    let call = match decls {
        Some(d) if !d.is_empty() && !last_is_response && mode != Some("NONE") => {
            let forced = v
                .pointer("/toolConfig/functionCallingConfig/allowedFunctionNames/0")
                .and_then(Value::as_str);
            let name = forced
                .or_else(|| d[0].get("name").and_then(Value::as_str))
                .unwrap_or("tool");
            Some(json!({"name": name, "args": {"answer": WORDS[..n.min(WORDS.len())].join(" ")}}))
        }
        _ => None,
    };
    let read = hnum(h, "x-mock-cache-read").unwrap_or(0);
    let thoughts = hnum(h, "x-mock-thoughts").unwrap_or(0);
    let prompt = contents.map_or(0, |c| words(&Value::Array(c.clone())))
        + v.get("systemInstruction").map_or(0, words)
        + read;
    let output = if call.is_some() { 5 } else { n as u64 };
    let usage_for = |final_: bool| -> Option<Value> {
        if h.contains_key("x-mock-no-usage") {
            return None;
        }
        if let Some(raw) = h.get("x-mock-usage").and_then(|v| v.to_str().ok()) {
            return Some(serde_json::from_str(raw).unwrap_or(Value::Null));
        }
        let mut u = json!({"promptTokenCount": prompt});
        if final_ {
            u["candidatesTokenCount"] = output.into();
            u["totalTokenCount"] = (prompt + output + thoughts).into();
            if thoughts > 0 {
                u["thoughtsTokenCount"] = thoughts.into();
            }
        } else {
            u["totalTokenCount"] = prompt.into();
        }
        if read > 0 {
            u["cachedContentTokenCount"] = read.into();
        }
        Some(u)
    };
    let count = |m: &Mock| {
        if !h.contains_key("x-mock-no-usage") && !h.contains_key("x-mock-usage") {
            m.stats.reported_prompt.fetch_add(prompt, Ordering::Relaxed);
            m.stats
                .reported_completion
                .fetch_add(output + thoughts, Ordering::Relaxed);
        }
    };
    let cands = |parts: Value, finish: bool| -> Value {
        Value::Array(
            (0..candidates)
                .map(|i| {
                    let mut c = json!({"content": {"parts": parts, "role": "model"}, "index": i});
                    if finish {
                        c["finishReason"] = "STOP".into();
                    }
                    c
                })
                .collect(),
        )
    };
    let version = "gemini-mock-001";
    if !stream {
        let parts = match &call {
            Some(c) => json!([{ "functionCall": c }]),
            None => {
                let text: Vec<&str> = (0..n).map(|i| WORDS[i % WORDS.len()]).collect();
                json!([{ "text": text.join(" ") }])
            }
        };
        let mut out = json!({"candidates": cands(parts, true), "modelVersion": version,
            "responseId": "mock-response-id"});
        if let Some(u) = usage_for(true) {
            out["usageMetadata"] = u;
        }
        count(m);
        return (
            [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
            out.to_string(),
        )
            .into_response();
    }
    let mut events: Vec<String> = Vec::new();
    match &call {
        Some(c) => {
            let mut e = json!({"candidates": cands(json!([{ "functionCall": c }]), true),
                "modelVersion": version, "responseId": "mock-response-id"});
            if let Some(u) = usage_for(true) {
                e["usageMetadata"] = u;
            }
            events.push(format!("data: {e}\r\n\r\n"));
        }
        None => {
            for i in 0..n {
                let w = WORDS[i % WORDS.len()];
                let piece = if i == 0 {
                    w.to_string()
                } else {
                    format!(" {w}")
                };
                let last = i + 1 == n;
                let mut e = json!({"candidates": cands(json!([{ "text": piece }]), last),
                    "modelVersion": version, "responseId": "mock-response-id"});
                if let Some(u) = usage_for(last) {
                    e["usageMetadata"] = u;
                }
                events.push(format!("data: {e}\r\n\r\n"));
            }
        }
    }
    count(m);
    let delay = Duration::from_millis(hnum(h, "x-mock-chunk-delay-ms").unwrap_or(0));
    let fail_after = hnum(h, "x-mock-fail-after-chunks").map(|n| n as usize);
    m.stats.streams_started.fetch_add(1, Ordering::Relaxed);
    let total = events.len();
    let st = futures_util::stream::unfold(
        (events.into_iter().enumerate(), m.clone()),
        move |(mut it, mock)| async move {
            let (i, e) = it.next()?;
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if fail_after == Some(i) {
                return Some((
                    Err(std::io::Error::other("mock: failing mid-stream")),
                    (it, mock),
                ));
            }
            if i + 1 == total {
                mock.stats.streams_completed.fetch_add(1, Ordering::Relaxed);
            }
            Some((Ok::<_, std::io::Error>(Bytes::from(e)), (it, mock)))
        },
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(st))
        .unwrap_or_else(|_| error_for(500))
}

/// `batchEmbedContents`: one bag-of-words vector per request, no usage (as Gemini).
fn embed(v: &Value, model: &str) -> Response {
    let Some(reqs) = v
        .get("requests")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
    else {
        return invalid("* BatchEmbedContentsRequest.requests: must not be empty");
    };
    let want = format!("models/{model}");
    let mut out = Vec::with_capacity(reqs.len());
    for r in reqs {
        if r.get("model").and_then(Value::as_str) != Some(want.as_str()) {
            return invalid(
                "* BatchEmbedContentsRequest.requests[].model: the model must match the batch's",
            );
        }
        let text: String = r
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .map(|p| {
                p.iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let dims = r
            .get("outputDimensionality")
            .and_then(Value::as_u64)
            .unwrap_or(8)
            .clamp(1, 4096) as usize;
        out.push(json!({"values": bag_of_words(&Value::String(text), dims)}));
    }
    (
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        json!({ "embeddings": out }).to_string(),
    )
        .into_response()
}
