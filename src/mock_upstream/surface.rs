//! The rest of OpenAI's surface on the mock: `/v1/responses` (whole and streamed),
//! `/v1/moderations`, `/v1/audio/speech` (audio bytes streamed out), `/v1/audio/translations`,
//! `/v1/images/edits` (multipart) and `/v1/rerank` (Cohere/Jina shape). Deterministic, with the
//! same failure knobs as chat (`x-mock-status`, `x-mock-latency-ms`, the process fail rate,
//! `x-mock-chunks`, `x-mock-chunk-delay-ms`, `x-mock-fail-after-chunks`).
//!
//! Extra knobs: `x-mock-cached-tokens` / `x-mock-reasoning-tokens` (Responses usage details),
//! `x-mock-no-usage` and `x-mock-usage` (raw usage JSON text) on `/v1/responses`;
//! `x-mock-chunk-bytes` (speech chunk size, default 1024).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::{
    Mock, S, StreamGuard, WORDS, bag_of_words, error_response, hnum, json_response, parse,
    preflight, prompt_tokens, remember,
};

/// Add the routes.
pub(super) fn routes(r: Router<Arc<Mock>>) -> Router<Arc<Mock>> {
    r.route("/v1/responses", post(responses))
        .route("/v1/moderations", post(moderations))
        .route("/v1/audio/speech", post(speech))
        .route("/v1/audio/translations", post(translations))
        .route("/v1/images/edits", post(image_edits))
        .route("/v1/rerank", post(rerank))
}

/// The Responses API's response object (`status`, its `output` text and `usage`).
fn response_object(model: &str, status: &str, text: Option<&str>, usage: Value) -> Value {
    let output = match text {
        Some(t) => json!([{"type": "message", "id": "msg_mock", "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": t, "annotations": []}]}]),
        None => json!([]),
    };
    json!({"id": "resp_mock", "object": "response", "created_at": 1_700_000_000u64,
        "status": status, "error": null, "incomplete_details": null, "instructions": null,
        "max_output_tokens": null, "model": model, "output": output,
        "parallel_tool_calls": true, "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null}, "store": true, "temperature": 1.0,
        "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0,
        "truncation": "disabled", "usage": usage, "user": null, "metadata": {}})
}

/// `POST /v1/responses`: `x-mock-chunks` words of text (one `response.output_text.delta` each
/// when streamed), usage `input_tokens` = words of `input` (+3 per message) and `instructions`,
/// `output_tokens` = words + `x-mock-reasoning-tokens`.
async fn responses(State(m): S, h: HeaderMap, body: Bytes) -> Response {
    let v = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    remember(&m, &v, &h);
    if let Some(r) = preflight(&m, &h).await {
        return r;
    }
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock")
        .to_string();
    let n = hnum(&h, "x-mock-chunks").unwrap_or(4).clamp(1, 10_000);
    let words: Vec<String> = (0..n as usize)
        .map(|i| {
            let w = WORDS[i % WORDS.len()];
            if i == 0 {
                w.to_string()
            } else {
                format!(" {w}")
            }
        })
        .collect();
    let text: String = words.concat();
    let instructions = v
        .get("instructions")
        .and_then(Value::as_str)
        .map_or(0, |s| s.split_whitespace().count() as u64);
    let pt = prompt_tokens(&v) + instructions;
    let cached = hnum(&h, "x-mock-cached-tokens").unwrap_or(0).min(pt);
    let reasoning = hnum(&h, "x-mock-reasoning-tokens").unwrap_or(0);
    let ot = n + reasoning;
    let raw_usage = h
        .get("x-mock-usage")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let usage_text = if h.contains_key("x-mock-no-usage") {
        "null".to_string()
    } else if let Some(raw) = raw_usage {
        raw
    } else {
        m.stats.reported_prompt.fetch_add(pt, Ordering::Relaxed);
        m.stats.reported_completion.fetch_add(ot, Ordering::Relaxed);
        json!({"input_tokens": pt, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": ot, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": pt + ot})
        .to_string()
    };
    // the usage goes in as text, so an absurd one (x-mock-usage) reaches the gateway as sent
    let with_usage = |o: Value| -> String {
        let s = o.to_string();
        s.replacen(
            "\"usage\":\"__USAGE__\"",
            &format!("\"usage\":{usage_text}"),
            1,
        )
    };
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if !stream {
        let o = response_object(&model, "completed", Some(&text), json!("__USAGE__"));
        return ([(header::CONTENT_TYPE, "application/json")], with_usage(o)).into_response();
    }
    // the events as OpenAI sends them, `event:` line and all
    let mut events: Vec<String> = Vec::with_capacity(n as usize + 8);
    let mut seq = 0u64;
    let mut ev = |events: &mut Vec<String>, mut data: Value| {
        data["sequence_number"] = json!(seq);
        seq += 1;
        let ty = data["type"].as_str().unwrap_or("").to_string();
        events.push(format!("event: {ty}\ndata: {data}\n\n"));
    };
    let created = response_object(&model, "in_progress", None, Value::Null);
    ev(
        &mut events,
        json!({"type": "response.created", "response": created}),
    );
    ev(
        &mut events,
        json!({"type": "response.in_progress", "response": created}),
    );
    ev(
        &mut events,
        json!({"type": "response.output_item.added", "output_index": 0, "item": {"type": "message",
            "id": "msg_mock", "status": "in_progress", "role": "assistant", "content": []}}),
    );
    ev(
        &mut events,
        json!({"type": "response.content_part.added", "item_id": "msg_mock", "output_index": 0,
            "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}),
    );
    for w in &words {
        ev(
            &mut events,
            json!({"type": "response.output_text.delta", "item_id": "msg_mock", "output_index": 0,
                "content_index": 0, "delta": w, "logprobs": []}),
        );
    }
    ev(
        &mut events,
        json!({"type": "response.output_text.done", "item_id": "msg_mock", "output_index": 0,
            "content_index": 0, "text": text, "logprobs": []}),
    );
    let part = json!({"type": "output_text", "text": text, "annotations": []});
    ev(
        &mut events,
        json!({"type": "response.content_part.done", "item_id": "msg_mock", "output_index": 0,
            "content_index": 0, "part": part}),
    );
    ev(
        &mut events,
        json!({"type": "response.output_item.done", "output_index": 0, "item": {"type": "message",
            "id": "msg_mock", "status": "completed", "role": "assistant", "content": [part]}}),
    );
    let done = response_object(&model, "completed", Some(&text), json!("__USAGE__"));
    let seq_done = seq;
    let last = format!(
        "event: response.completed\ndata: {}\n\n",
        with_usage(
            json!({"type": "response.completed", "sequence_number": seq_done,
            "response": done})
        )
    );
    events.push(last);
    timed_stream(m, &h, events, "text/event-stream")
}

/// Send `pieces` one by one, `x-mock-chunk-delay-ms` apart, breaking the connection after
/// `x-mock-fail-after-chunks` of them.
fn timed_stream<T>(m: Arc<Mock>, h: &HeaderMap, pieces: Vec<T>, content_type: &str) -> Response
where
    T: Into<Bytes> + Send + 'static,
{
    let delay = Duration::from_millis(hnum(h, "x-mock-chunk-delay-ms").unwrap_or(0));
    let fail_after = hnum(h, "x-mock-fail-after-chunks");
    m.stats.streams_started.fetch_add(1, Ordering::Relaxed);
    let guard = StreamGuard {
        mock: m,
        done: false,
    };
    let st = futures_util::stream::unfold(
        (pieces.into_iter(), 0u64, guard),
        move |(mut it, i, mut guard)| async move {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if fail_after == Some(i) {
                guard.done = true; // a deliberate failure is not a client abort
                return Some((
                    Err(std::io::Error::other("mock: failing mid-stream")),
                    (it, i + 1, guard),
                ));
            }
            match it.next() {
                Some(p) => Some((Ok::<Bytes, std::io::Error>(p.into()), (it, i + 1, guard))),
                None => {
                    if !guard.done {
                        guard.done = true;
                        guard
                            .mock
                            .stats
                            .streams_completed
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    None
                }
            }
        },
    );
    // after a deliberate failure, stop
    let st = st.scan(false, |failed, item| {
        let stop = *failed;
        *failed |= item.is_err();
        std::future::ready((!stop).then_some(item))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(st))
        .unwrap_or_else(|_| error_response(500))
}

/// `POST /v1/moderations`: one result per input; an input with "kill" or "hate" is flagged.
/// No `usage` (OpenAI's moderation answers have none).
async fn moderations(State(m): S, h: HeaderMap, body: Bytes) -> Response {
    let v = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    remember(&m, &v, &h);
    if let Some(r) = preflight(&m, &h).await {
        return r;
    }
    let inputs: Vec<String> = match v.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            })
            .collect(),
        _ => return error_response(400),
    };
    let results: Vec<Value> = inputs
        .iter()
        .map(|t| {
            let t = t.to_lowercase();
            let violence = t.contains("kill");
            let hate = t.contains("hate");
            let score = |b: bool| if b { 0.93 } else { 0.001 };
            json!({"flagged": violence || hate,
                "categories": {"harassment": false, "harassment/threatening": false,
                    "hate": hate, "hate/threatening": false, "illicit": false,
                    "illicit/violent": false, "self-harm": false, "self-harm/instructions": false,
                    "self-harm/intent": false, "sexual": false, "sexual/minors": false,
                    "violence": violence, "violence/graphic": false},
                "category_scores": {"harassment": 0.001, "harassment/threatening": 0.001,
                    "hate": score(hate), "hate/threatening": 0.001, "illicit": 0.001,
                    "illicit/violent": 0.001, "self-harm": 0.001, "self-harm/instructions": 0.001,
                    "self-harm/intent": 0.001, "sexual": 0.001, "sexual/minors": 0.001,
                    "violence": score(violence), "violence/graphic": 0.001},
                "category_applied_input_types": {"harassment": ["text"], "hate": ["text"],
                    "violence": ["text"]}})
        })
        .collect();
    json_response(json!({"id": "modr-mock", "model": v.get("model"), "results": results}))
}

/// The byte pattern of speech chunk `i` (`len` bytes; the first starts with an ID3 tag).
pub fn speech_chunk(i: u64, len: usize) -> Vec<u8> {
    let mut c: Vec<u8> = (0..len)
        .map(|j| ((i as usize * 31 + j * 7) % 251) as u8)
        .collect();
    if i == 0 && len >= 3 {
        c[..3].copy_from_slice(b"ID3");
    }
    c
}

/// `POST /v1/audio/speech`: `x-mock-chunks` (default 4) chunks of `x-mock-chunk-bytes`
/// (default 1024) audio bytes, streamed as `audio/mpeg` (`x-mock-chars`: characters of
/// `input` it was asked to speak).
async fn speech(State(m): S, h: HeaderMap, body: Bytes) -> Response {
    let v = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    remember(&m, &v, &h);
    if let Some(r) = preflight(&m, &h).await {
        return r;
    }
    let Some(input) = v.get("input").and_then(Value::as_str) else {
        return error_response(400);
    };
    let chars = input.chars().count();
    let n = hnum(&h, "x-mock-chunks").unwrap_or(4).clamp(1, 100_000);
    let len = hnum(&h, "x-mock-chunk-bytes")
        .unwrap_or(1024)
        .clamp(1, 1 << 20) as usize;
    let pieces: Vec<Vec<u8>> = (0..n).map(|i| speech_chunk(i, len)).collect();
    let mut r = timed_stream(m, &h, pieces, "audio/mpeg");
    if let Ok(v) = header::HeaderValue::from_str(&chars.to_string()) {
        r.headers_mut().insert("x-mock-chars", v);
    }
    r
}

/// `POST /v1/audio/translations`: the transcription stand-in's answer in English, with the
/// audio's `duration` (`x-mock-audio-seconds`, default 3) as verbose answers carry it.
async fn translations(State(m): S, h: HeaderMap, body: Body) -> Response {
    match super::upload(&m, &h, body).await {
        Ok(n) => {
            let secs = h
                .get("x-mock-audio-seconds")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(3.0);
            json_response(
                json!({"text": "Hello from catraca's mock.", "bytes_received": n,
                "duration": secs, "language": "english"}),
            )
        }
        Err(r) => r,
    }
}

/// `POST /v1/images/edits` (multipart): `n` images (the form's `n`, default 1, at most 10) as
/// `b64_json`. The form is read whole (the mock needs its `n`).
async fn image_edits(State(m): S, h: HeaderMap, body: Bytes) -> Response {
    m.stats
        .upload_bytes
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    remember(&m, &json!({"multipart_bytes": body.len()}), &h);
    if let Some(r) = preflight(&m, &h).await {
        return r;
    }
    if memchr::memmem::find(&body, b"name=\"image").is_none() {
        return error_response(400);
    }
    let n = memchr::memmem::find(&body, b"name=\"n\"\r\n\r\n")
        .map(|i| &body[i + 12..])
        .map(|rest| {
            rest.iter()
                .take_while(|b| b.is_ascii_digit())
                .fold(0u64, |a, b| {
                    a.saturating_mul(10).saturating_add(u64::from(b - b'0'))
                })
        })
        .unwrap_or(1)
        .clamp(1, 10);
    use base64::Engine;
    let data: Vec<Value> = (0..n)
        .map(|i| {
            json!({"b64_json": base64::engine::general_purpose::STANDARD.encode(format!("mock image {i}"))})
        })
        .collect();
    json_response(json!({"created": 1_700_000_000u64, "data": data}))
}

/// `POST /v1/rerank` (Cohere/Jina shape): every document scored by the cosine of its words'
/// and the query's bag-of-words vectors, best first, `top_n` of them; `usage.total_tokens`
/// (Jina) and `meta.billed_units.search_units` (Cohere: one per 100 documents).
async fn rerank(State(m): S, h: HeaderMap, body: Bytes) -> Response {
    let v = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    remember(&m, &v, &h);
    if let Some(r) = preflight(&m, &h).await {
        return r;
    }
    let (Some(query), Some(docs)) = (
        v.get("query").and_then(Value::as_str),
        v.get("documents").and_then(Value::as_array),
    ) else {
        return error_response(400);
    };
    let text = |d: &Value| -> String {
        match d {
            Value::String(s) => s.clone(),
            other => other
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        }
    };
    const DIMS: usize = 256;
    let q = bag_of_words(&Value::String(query.to_string()), DIMS);
    let mut scored: Vec<(usize, f64)> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let e = bag_of_words(&Value::String(text(d)), DIMS);
            let dot: f32 = q.iter().zip(&e).map(|(a, b)| a * b).sum();
            // three decimals, so the JSON numbers are the same on every platform
            (i, (f64::from(dot) * 1000.0).round() / 1000.0)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let top = v
        .get("top_n")
        .and_then(Value::as_u64)
        .map_or(scored.len(), |t| t as usize);
    let with_docs = v
        .get("return_documents")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let results: Vec<Value> = scored
        .iter()
        .take(top)
        .map(|&(i, s)| {
            let mut r = json!({"index": i, "relevance_score": s});
            if with_docs {
                r["document"] = json!({"text": text(&docs[i])});
            }
            r
        })
        .collect();
    let words = |s: &str| s.split_whitespace().count() as u64;
    let tokens = words(query) + docs.iter().map(|d| words(&text(d))).sum::<u64>();
    json_response(
        json!({"id": "rerank-mock", "model": v.get("model"), "results": results,
        "usage": {"total_tokens": tokens},
        "meta": {"billed_units": {"search_units": (docs.len() as u64).div_ceil(100)}}}),
    )
}
