//! The mock's Anthropic dialect: `POST /v1/messages`, stream and not, deterministic.
//!
//! - `x-api-key` required (401 `authentication_error` without it), `anthropic-version`
//!   required (400 `invalid_request_error`), `max_tokens` and `messages` required (400).
//! - The answer: the mock's words (`x-mock-chunks` of them, default 4; cut at `max_tokens`,
//!   then `stop_reason: max_tokens`); with `tools` (and `tool_choice` not `none`), a `tool_use`
//!   block calling the first tool (or the one `tool_choice` names) with an input made from its
//!   schema (strings `"mock"`, numbers 1, booleans true), `stop_reason: tool_use`.
//! - Usage: `input_tokens` = words of `system` and `messages` + 3 per message + 100 per image
//!   block; `x-mock-cache-read` / `x-mock-cache-write` add `cache_read_input_tokens` /
//!   `cache_creation_input_tokens`; `output_tokens` = words (5 for a tool call).
//!   `x-mock-usage` replaces the usage object with its raw text (hostile numbers).
//! - Knobs as the OpenAI mock: `x-mock-status` (the error in Anthropic's shape, 529 =
//!   `overloaded_error`), `x-mock-latency-ms`, `x-mock-chunk-delay-ms` (between events),
//!   `x-mock-fail-after-chunks` (the connection breaks after N events), and
//!   `x-mock-stream-error` (an `error` event, overloaded, after the first text delta).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::{Mock, S, StreamGuard, WORDS, hnum, preflight, remember};

/// Add this dialect's routes.
pub(super) fn routes(r: Router<Arc<Mock>>) -> Router<Arc<Mock>> {
    r.route("/v1/messages", post(messages))
}

/// Anthropic's error body for a status.
fn error(status: u16, message: &str) -> Response {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Words of every string, 3 per message, 100 per image block.
fn input_tokens(v: &Value) -> u64 {
    fn walk(v: &Value) -> u64 {
        match v {
            Value::String(s) => s.split_whitespace().count() as u64,
            Value::Array(a) => a.iter().map(walk).sum(),
            Value::Object(o) => {
                if o.get("type").and_then(Value::as_str) == Some("image") {
                    return 100;
                }
                o.iter()
                    .filter(|(k, _)| k.as_str() != "type" && k.as_str() != "role")
                    .map(|(_, v)| walk(v))
                    .sum()
            }
            _ => 0,
        }
    }
    let msgs = v.get("messages").and_then(Value::as_array);
    msgs.map_or(0, |m| walk(&Value::Array(m.clone())) + 3 * m.len() as u64)
        + v.get("system").map_or(0, walk)
}

/// An input for a tool from its schema.
fn tool_input(schema: &Value) -> Value {
    let mut o = serde_json::Map::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            let v = match p.get("type").and_then(Value::as_str) {
                Some("string") => json!("mock"),
                Some("number" | "integer") => json!(1),
                Some("boolean") => json!(true),
                Some("array") => json!([]),
                Some("object") => json!({}),
                _ => Value::Null,
            };
            o.insert(k.clone(), v);
        }
    }
    Value::Object(o)
}

async fn messages(State(m): S, h: HeaderMap, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "the body is not JSON");
    };
    remember(&m, &v, &h);
    if h.get("x-api-key").is_none_or(|k| k.is_empty()) {
        return error(401, "invalid x-api-key");
    }
    if h.get("anthropic-version").is_none() {
        return error(400, "anthropic-version: header is required");
    }
    if let Some(r) = preflight(&m, &h).await {
        let s = r.status().as_u16();
        return error(s, &format!("mock upstream error {s}"));
    }
    let Some(max_tokens) = v.get("max_tokens").and_then(Value::as_u64) else {
        return error(400, "max_tokens: Field required");
    };
    if v.get("messages").and_then(Value::as_array).is_none() {
        return error(400, "messages: Field required");
    }
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("claude-mock")
        .to_string();
    let n = hnum(&h, "x-mock-chunks").unwrap_or(4).clamp(1, 10_000);
    let input = input_tokens(&v);
    let cache_read = hnum(&h, "x-mock-cache-read").unwrap_or(0);
    let cache_write = hnum(&h, "x-mock-cache-write").unwrap_or(0);
    let raw_usage = h
        .get("x-mock-usage")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    // the tool to call, if any
    let choice = v.get("tool_choice");
    let tool = match (
        v.get("tools").and_then(Value::as_array),
        choice.and_then(|c| c.get("type")).and_then(Value::as_str),
    ) {
        (Some(tools), ty) if !tools.is_empty() && ty != Some("none") => {
            let named = choice
                .filter(|_| ty == Some("tool"))
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str);
            tools
                .iter()
                .find(|t| named.is_none_or(|n| t.get("name").and_then(Value::as_str) == Some(n)))
                .map(|t| {
                    (
                        t.get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        tool_input(t.get("input_schema").unwrap_or(&Value::Null)),
                    )
                })
        }
        _ => None,
    };
    let words = n.min(max_tokens);
    let (output, stop) = match &tool {
        Some(_) => (5, "tool_use"),
        None if words < n => (words, "max_tokens"),
        None => (words, "end_turn"),
    };
    let usage = json!({
        "input_tokens": input,
        "output_tokens": output,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_write,
    });
    let usage_text = raw_usage.clone().unwrap_or_else(|| usage.to_string());
    if raw_usage.is_none() {
        m.stats
            .reported_prompt
            .fetch_add(input + cache_read + cache_write, Ordering::Relaxed);
        m.stats
            .reported_completion
            .fetch_add(output, Ordering::Relaxed);
    }
    let text: Vec<String> = (0..words as usize)
        .map(|i| {
            let w = WORDS[i % WORDS.len()];
            if i == 0 {
                w.to_string()
            } else {
                format!(" {w}")
            }
        })
        .collect();
    let id = "msg_mock01";
    let tool_id = "toolu_mock01";

    if v.get("stream").and_then(Value::as_bool) != Some(true) {
        let content = match &tool {
            Some((name, input)) => {
                json!([{"type": "tool_use", "id": tool_id, "name": name, "input": input}])
            }
            None => json!([{"type": "text", "text": text.concat()}]),
        };
        let mut out = json!({"id": id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null})
        .to_string();
        out.pop();
        out.push_str(",\"usage\":");
        out.push_str(&usage_text);
        out.push('}');
        return ([(header::CONTENT_TYPE, "application/json")], out).into_response();
    }

    // the stream's events, in order
    let ev = |name: &str, data: String| format!("event: {name}\ndata: {data}\n\n");
    let mut events = Vec::new();
    let mut start = json!({"type": "message_start", "message": {"id": id, "type": "message",
        "role": "assistant", "model": model, "content": [], "stop_reason": null,
        "stop_sequence": null}})
    .to_string();
    // message_start's usage: the input counts and one output token so far
    let start_usage = match &raw_usage {
        Some(raw) => raw.clone(),
        None => json!({"input_tokens": input, "output_tokens": 1,
            "cache_read_input_tokens": cache_read, "cache_creation_input_tokens": cache_write})
        .to_string(),
    };
    start.truncate(start.len() - 2);
    start.push_str(&format!(",\"usage\":{start_usage}}}}}"));
    events.push(ev("message_start", start));
    match &tool {
        Some((name, input)) => {
            events.push(ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "tool_use", "id": tool_id, "name": name, "input": {}}})
                .to_string(),
            ));
            events.push(ev("ping", json!({"type": "ping"}).to_string()));
            let args = input.to_string();
            let mid = args.len() / 2;
            let mid = (mid..=args.len())
                .find(|i| args.is_char_boundary(*i))
                .unwrap_or(args.len());
            for piece in [&args[..mid], &args[mid..]] {
                events.push(ev(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": piece}})
                    .to_string(),
                ));
            }
        }
        None => {
            events.push(ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}})
                .to_string(),
            ));
            events.push(ev("ping", json!({"type": "ping"}).to_string()));
            for (i, t) in text.iter().enumerate() {
                events.push(ev(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": t}})
                    .to_string(),
                ));
                if i == 0 && h.contains_key("x-mock-stream-error") {
                    events.push(ev(
                        "error",
                        json!({"type": "error", "error": {"type": "overloaded_error",
                        "message": "Overloaded"}})
                        .to_string(),
                    ));
                }
            }
        }
    }
    events.push(ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}).to_string(),
    ));
    let delta_usage = match &raw_usage {
        Some(raw) => raw.clone(),
        None => json!({"output_tokens": output}).to_string(),
    };
    events.push(ev(
        "message_delta",
        format!(
            "{{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"{stop}\",\"stop_sequence\":null}},\"usage\":{delta_usage}}}"
        ),
    ));
    events.push(ev(
        "message_stop",
        json!({"type": "message_stop"}).to_string(),
    ));

    let delay = Duration::from_millis(hnum(&h, "x-mock-chunk-delay-ms").unwrap_or(0));
    let fail_after = hnum(&h, "x-mock-fail-after-chunks");
    m.stats.streams_started.fetch_add(1, Ordering::Relaxed);
    let guard = StreamGuard {
        mock: m.clone(),
        done: false,
    };
    let st = futures_util::stream::unfold(
        (0usize, events, guard),
        move |(i, events, mut guard)| async move {
            if i > 0 && i < events.len() && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if fail_after.is_some_and(|f| f as usize == i) {
                guard.done = true;
                return Some((
                    Err(std::io::Error::other("mock: failing mid-stream")),
                    (i + 1, events, guard),
                ));
            }
            match events.get(i) {
                Some(e) => {
                    let b = Bytes::from(e.clone());
                    Some((Ok::<_, std::io::Error>(b), (i + 1, events, guard)))
                }
                None => {
                    guard.done = true;
                    guard
                        .mock
                        .stats
                        .streams_completed
                        .fetch_add(1, Ordering::Relaxed);
                    None
                }
            }
        },
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(st))
        .unwrap_or_else(|_| error(500, "mock"))
}
