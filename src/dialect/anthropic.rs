//! Anthropic's Messages API (`POST /v1/messages`) as a provider: OpenAI chat requests
//! translated to Messages requests, and Messages answers, streams and errors back to OpenAI's.
//!
//! Choices made where the two APIs differ (documented in README, "Provider kinds"):
//! - `max_tokens` is required by Anthropic: `max_completion_tokens`, else `max_tokens`, else
//!   [`DEFAULT_MAX_TOKENS`].
//! - `response_format` has no native field: `json_object` and `json_schema` become a system
//!   instruction (the schema included); the answer is the model's text as it is (no forced
//!   tool, so `tool_calls` keep their meaning).
//! - System and developer messages are joined (blank line between) into `system`; consecutive
//!   turns of one role are merged (tool results are user turns in Anthropic's API).
//! - Untranslatable fields are a 400 naming them: `n` > 1, `logprobs`, `top_logprobs`,
//!   `logit_bias`, non-zero `presence_penalty`/`frequency_penalty`, `seed`, `audio`,
//!   `modalities` with audio, `prediction`, audio and file content parts, `temperature` > 1,
//!   non-function tools, legacy `function` messages.
//! - Thinking blocks of the answer are not passed on (OpenAI's chat shape has no field).
//!
//! The stream decoder works on Anthropic's SSE events as they complete: each event's `data`
//! is deserialised into borrowed typed structs (no JSON tree) and the OpenAI chunks are
//! written by hand around a prefix built once per stream.

use std::borrow::Cow;

use bytes::BytesMut;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Answer, Meta, Op, StreamDecoder, StreamError};
use crate::error::ApiError;
use crate::sse::{MAX_REPORTED_TOKENS, Usage};

/// `max_tokens` sent when the client set none (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Largest single SSE event accepted from the provider.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// The upstream path of `op` (after the base path; the base URL is the API's root, e.g.
/// `https://api.anthropic.com`).
pub fn path(_op: Op) -> String {
    "/v1/messages".into()
}

fn bad(field: impl std::fmt::Display, why: &str) -> ApiError {
    ApiError::InvalidRequest(format!("{field}: {why}"))
}

/// An OpenAI chat request as Anthropic's Messages request.
pub fn chat_request(req: &Value, upstream_model: &str) -> Result<Vec<u8>, ApiError> {
    let obj = req
        .as_object()
        .ok_or_else(|| bad("body", "must be a JSON object"))?;
    let present = |k: &str| obj.get(k).is_some_and(|v| !v.is_null());
    if let Some(n) = obj.get("n").filter(|v| !v.is_null())
        && n.as_u64() != Some(1)
    {
        return Err(bad(
            "n",
            "this model's provider (anthropic) answers one choice only",
        ));
    }
    if obj.get("logprobs").and_then(Value::as_bool) == Some(true) {
        return Err(bad(
            "logprobs",
            "not available from this model's provider (anthropic)",
        ));
    }
    for k in ["top_logprobs", "seed", "audio", "prediction"] {
        if present(k) {
            return Err(bad(
                k,
                "not available from this model's provider (anthropic)",
            ));
        }
    }
    if obj
        .get("logit_bias")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
    {
        return Err(bad(
            "logit_bias",
            "not available from this model's provider (anthropic)",
        ));
    }
    for k in ["presence_penalty", "frequency_penalty"] {
        if obj.get(k).and_then(Value::as_f64).is_some_and(|v| v != 0.0) {
            return Err(bad(
                k,
                "not available from this model's provider (anthropic)",
            ));
        }
    }
    if let Some(m) = obj.get("modalities").and_then(Value::as_array)
        && m.iter().any(|v| v.as_str() != Some("text"))
    {
        return Err(bad(
            "modalities",
            "this model's provider (anthropic) answers text only",
        ));
    }

    let mut out = Map::new();
    out.insert("model".into(), Value::String(upstream_model.into()));
    let max = match (obj.get("max_completion_tokens"), obj.get("max_tokens")) {
        (Some(v), _) if !v.is_null() => (v, "max_completion_tokens"),
        (_, Some(v)) if !v.is_null() => (v, "max_tokens"),
        _ => (&Value::Null, ""),
    };
    let max_tokens = match max {
        (Value::Null, _) => DEFAULT_MAX_TOKENS,
        (v, name) => v
            .as_u64()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad(name, "must be a positive integer"))?,
    };
    out.insert("max_tokens".into(), max_tokens.into());

    // messages
    let msgs = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("messages", "must be an array"))?;
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("messages[{i}].role"), "must be a string"))?;
        let content = m.get("content").unwrap_or(&Value::Null);
        let (role, blocks) = match role {
            "system" | "developer" => {
                system.push(text_of(content, &format!("messages[{i}].content"))?);
                continue;
            }
            "user" => ("user", user_blocks(content, i)?),
            "assistant" => {
                let mut b = match content {
                    Value::Null => Vec::new(),
                    c => {
                        let t = text_of(c, &format!("messages[{i}].content"))?;
                        if t.is_empty() {
                            Vec::new()
                        } else {
                            vec![json!({"type": "text", "text": t})]
                        }
                    }
                };
                if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
                    for (j, c) in calls.iter().enumerate() {
                        let f = format!("messages[{i}].tool_calls[{j}]");
                        let id = c
                            .get("id")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(format!("{f}.id"), "must be a string"))?;
                        let func = c.get("function");
                        let name = func
                            .and_then(|f| f.get("name"))
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(format!("{f}.function.name"), "must be a string"))?;
                        let args = func
                            .and_then(|f| f.get("arguments"))
                            .and_then(Value::as_str)
                            .unwrap_or("{}");
                        let input: Value = if args.trim().is_empty() {
                            json!({})
                        } else {
                            serde_json::from_str(args).map_err(|_| {
                                bad(format!("{f}.function.arguments"), "must be a JSON object")
                            })?
                        };
                        if !input.is_object() {
                            return Err(bad(
                                format!("{f}.function.arguments"),
                                "must be a JSON object",
                            ));
                        }
                        b.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
                    }
                }
                if b.is_empty() {
                    continue;
                }
                ("assistant", b)
            }
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        bad(format!("messages[{i}].tool_call_id"), "must be a string")
                    })?;
                let t = text_of(content, &format!("messages[{i}].content"))?;
                (
                    "user",
                    vec![json!({"type": "tool_result", "tool_use_id": id, "content": t})],
                )
            }
            other => {
                return Err(bad(
                    format!("messages[{i}].role"),
                    &format!("{other:?} cannot be sent to this model's provider (anthropic)"),
                ));
            }
        };
        match turns.last_mut() {
            Some((r, b)) if *r == role => b.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    if turns.is_empty() {
        return Err(bad(
            "messages",
            "at least one user or assistant message is needed",
        ));
    }

    // response_format: a system instruction (Anthropic has no JSON mode)
    match obj.get("response_format") {
        None | Some(Value::Null) => {}
        Some(rf) => match rf.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => {
                system.push("Respond with one JSON object only: no prose, no code fences.".into())
            }
            Some("json_schema") => {
                let schema = rf
                    .get("json_schema")
                    .and_then(|s| s.get("schema"))
                    .ok_or_else(|| bad("response_format.json_schema.schema", "is required"))?;
                system.push(format!(
                    "Respond with one JSON object only (no prose, no code fences) that validates against this JSON Schema: {schema}"
                ));
            }
            _ => {
                return Err(bad(
                    "response_format.type",
                    "must be text, json_object or json_schema",
                ));
            }
        },
    }
    if !system.is_empty() {
        out.insert("system".into(), Value::String(system.join("\n\n")));
    }
    out.insert(
        "messages".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|(role, content)| json!({"role": role, "content": content}))
                .collect(),
        ),
    );

    if let Some(t) = obj.get("temperature").filter(|v| !v.is_null()) {
        let f = t
            .as_f64()
            .ok_or_else(|| bad("temperature", "must be a number"))?;
        if !(0.0..=1.0).contains(&f) {
            return Err(bad(
                "temperature",
                "this model's provider (anthropic) accepts 0 to 1",
            ));
        }
        out.insert("temperature".into(), t.clone());
    }
    if let Some(t) = obj.get("top_p").filter(|v| !v.is_null()) {
        if !t.is_number() {
            return Err(bad("top_p", "must be a number"));
        }
        out.insert("top_p".into(), t.clone());
    }
    match obj.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        Some(_) => return Err(bad("stop", "must be a string or an array of strings")),
    }
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), Value::Bool(true));
    }
    if let Some(u) = obj.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({"user_id": u}));
    }

    // tools
    let mut has_tools = false;
    if let Some(tools) = obj.get("tools").filter(|v| !v.is_null()) {
        let tools = tools
            .as_array()
            .ok_or_else(|| bad("tools", "must be an array"))?;
        let mut t_out = Vec::with_capacity(tools.len());
        for (i, t) in tools.iter().enumerate() {
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(bad(
                    format!("tools[{i}].type"),
                    "only function tools can be sent to this model's provider (anthropic)",
                ));
            }
            let f = t
                .get("function")
                .ok_or_else(|| bad(format!("tools[{i}].function"), "is required"))?;
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("tools[{i}].function.name"), "must be a string"))?;
            let mut tool = Map::new();
            tool.insert("name".into(), Value::String(name.into()));
            if let Some(d) = f.get("description").and_then(Value::as_str) {
                tool.insert("description".into(), Value::String(d.into()));
            }
            let schema = match f.get("parameters") {
                Some(p) if p.is_object() => p.clone(),
                _ => json!({"type": "object", "properties": {}}),
            };
            tool.insert("input_schema".into(), schema);
            t_out.push(Value::Object(tool));
        }
        has_tools = !t_out.is_empty();
        if has_tools {
            out.insert("tools".into(), Value::Array(t_out));
        }
    }
    let parallel_off = obj.get("parallel_tool_calls").and_then(Value::as_bool) == Some(false);
    let choice = match obj.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "none" => Some(json!({"type": "none"})),
            "required" => Some(json!({"type": "any"})),
            _ => {
                return Err(bad(
                    "tool_choice",
                    "must be auto, none, required or a function",
                ));
            }
        },
        Some(Value::Object(o)) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad("tool_choice.function.name", "must be a string"))?;
            Some(json!({"type": "tool", "name": name}))
        }
        Some(_) => return Err(bad("tool_choice", "must be a string or an object")),
    };
    if has_tools {
        let mut c = choice.unwrap_or_else(|| json!({"type": "auto"}));
        if parallel_off && c["type"] != "none" {
            c["disable_parallel_tool_use"] = Value::Bool(true);
        }
        out.insert("tool_choice".into(), c);
    } else if choice
        .as_ref()
        .is_some_and(|c| c["type"] != "none" && c["type"] != "auto")
    {
        return Err(bad("tool_choice", "names a tool but no tools were given"));
    }
    serde_json::to_vec(&Value::Object(out)).map_err(|_| ApiError::Internal)
}

/// The text of a message's `content`: a string or an array of text parts.
fn text_of(content: &Value, field: &str) -> Result<String, ApiError> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut s = String::new();
            for (j, p) in parts.iter().enumerate() {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if !s.is_empty() {
                            s.push('\n');
                        }
                        s.push_str(p.get("text").and_then(Value::as_str).unwrap_or(""));
                    }
                    Some("refusal") => {}
                    _ => {
                        return Err(bad(
                            format!("{field}[{j}].type"),
                            "only text parts are allowed in this message",
                        ));
                    }
                }
            }
            Ok(s)
        }
        _ => Err(bad(field, "must be a string or an array of parts")),
    }
}

/// A user message's content as Anthropic blocks (text and images).
fn user_blocks(content: &Value, i: usize) -> Result<Vec<Value>, ApiError> {
    match content {
        Value::String(s) => Ok(vec![json!({"type": "text", "text": s})]),
        Value::Array(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                let f = format!("messages[{i}].content[{j}]");
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let t = p
                            .get("text")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(format!("{f}.text"), "must be a string"))?;
                        out.push(json!({"type": "text", "text": t}));
                    }
                    Some("image_url") => {
                        let url = p
                            .get("image_url")
                            .and_then(|u| u.get("url").or(Some(u)))
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(format!("{f}.image_url.url"), "must be a string"))?;
                        out.push(image_block(url, &f)?);
                    }
                    Some(t @ ("input_audio" | "file" | "audio")) => {
                        return Err(bad(
                            format!("{f}.type"),
                            &format!(
                                "{t} parts cannot be sent to this model's provider (anthropic)"
                            ),
                        ));
                    }
                    _ => return Err(bad(format!("{f}.type"), "must be text or image_url")),
                }
            }
            Ok(out)
        }
        _ => Err(bad(
            format!("messages[{i}].content"),
            "must be a string or an array of parts",
        )),
    }
}

/// An image part: a data URL as a base64 source, an http(s) URL as a url source.
fn image_block(url: &str, f: &str) -> Result<Value, ApiError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (head, data) = rest
            .split_once(',')
            .ok_or_else(|| bad(format!("{f}.image_url.url"), "is not a data URL"))?;
        let media = head
            .strip_suffix(";base64")
            .ok_or_else(|| bad(format!("{f}.image_url.url"), "a data URL must be base64"))?;
        if !matches!(
            media,
            "image/jpeg" | "image/png" | "image/gif" | "image/webp"
        ) {
            return Err(bad(
                format!("{f}.image_url.url"),
                "images must be image/jpeg, image/png, image/gif or image/webp",
            ));
        }
        return Ok(
            json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}),
        );
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(bad(
        format!("{f}.image_url.url"),
        "must be an http(s) or data URL",
    ))
}

/// Anthropic's usage object (every field optional: `message_delta` carries only some).
#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct AUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

/// OpenAI's usage from Anthropic's counts (`input_tokens` excludes cache reads and writes;
/// OpenAI's `prompt_tokens` includes them). `None` when a count is past
/// [`MAX_REPORTED_TOKENS`].
fn normalise(input: u64, output: u64, read: u64, write: u64) -> Option<Usage> {
    let ok = |n: u64| (n <= MAX_REPORTED_TOKENS).then_some(n);
    let prompt = ok(input)?.checked_add(ok(read)?)?.checked_add(ok(write)?)?;
    Some(Usage {
        prompt_tokens: ok(prompt)?,
        completion_tokens: ok(output)?,
        cached_tokens: read,
        cache_write_tokens: write,
        reasoning_tokens: 0,
    })
}

fn finish_reason(stop: &str) -> &'static str {
    match stop {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    })
}

#[derive(Deserialize)]
struct AMessage<'a> {
    #[serde(default, borrow)]
    content: Vec<ABlock<'a>>,
    #[serde(default, borrow)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: AUsage,
}

/// One content block (every kind's fields optional: a flat struct, no buffered JSON tree).
#[derive(Deserialize)]
struct ABlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    input: Option<&'a serde_json::value::RawValue>,
}

/// The whole chat answer as OpenAI's.
pub fn chat_answer(body: &[u8], meta: &Meta) -> Result<Answer, StreamError> {
    let m: AMessage = serde_json::from_slice(body)
        .map_err(|_| StreamError::Malformed("the answer is not an Anthropic message"))?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for b in &m.content {
        match &*b.kind {
            "text" => text.push_str(b.text.as_deref().unwrap_or("")),
            "tool_use" => calls.push(json!({
                "id": b.id.as_deref().unwrap_or(""),
                "type": "function",
                "function": {
                    "name": b.name.as_deref().unwrap_or(""),
                    "arguments": b.input.map_or("{}", |r| r.get()),
                },
            })),
            _ => {}
        }
    }
    let u = m.usage;
    let usage = normalise(
        u.input_tokens.unwrap_or(0),
        u.output_tokens.unwrap_or(0),
        u.cache_read_input_tokens.unwrap_or(0),
        u.cache_creation_input_tokens.unwrap_or(0),
    );
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) },
        "refusal": null,
    });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let mut out = json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": &*meta.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(m.stop_reason.as_deref().unwrap_or("end_turn")),
        }],
    });
    if let Some(u) = &usage {
        out["usage"] = usage_json(u);
    }
    let bytes = serde_json::to_vec(&out).map_err(|_| StreamError::Malformed("unserialisable"))?;
    Ok((bytes, usage))
}

/// The error answer as OpenAI's: the status from the error's type (the upstream status when
/// the type is unknown) and `{"error": {message, type, param, code}}` with Anthropic's type as
/// the `code`.
pub fn error_answer(status: u16, body: &[u8]) -> (u16, Vec<u8>) {
    #[derive(Deserialize)]
    struct Wire<'a> {
        #[serde(borrow)]
        error: Inner<'a>,
    }
    #[derive(Deserialize)]
    struct Inner<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        message: Option<Cow<'a, str>>,
    }
    let parsed: Option<Wire> = serde_json::from_slice(body).ok();
    let kind = parsed
        .as_ref()
        .and_then(|w| w.error.kind.as_deref())
        .unwrap_or("");
    let (st, oa_type) = match kind {
        "invalid_request_error" => (400, "invalid_request_error"),
        "authentication_error" => (401, "authentication_error"),
        "permission_error" => (403, "permission_error"),
        "not_found_error" => (404, "invalid_request_error"),
        "request_too_large" => (413, "invalid_request_error"),
        "rate_limit_error" => (429, "rate_limit_error"),
        "api_error" => (500, "server_error"),
        "overloaded_error" => (503, "server_error"),
        _ => {
            let s = crate::gateway::translate::client_status(status);
            (
                s,
                if s < 500 {
                    "invalid_request_error"
                } else {
                    "server_error"
                },
            )
        }
    };
    let message = parsed
        .as_ref()
        .and_then(|w| w.error.message.as_deref())
        .map(str::to_string)
        .unwrap_or_else(|| format!("the provider (anthropic) answered {status}"));
    let code = if kind.is_empty() {
        Value::Null
    } else {
        Value::String(kind.into())
    };
    let out = json!({"error": {"message": message, "type": oa_type, "param": null, "code": code}});
    (st, serde_json::to_vec(&out).unwrap_or_default())
}

// ---- the stream ----

/// One stream event: every kind's fields optional (a flat struct read in one pass, borrowing
/// the event's bytes; no JSON tree).
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    index: u64,
    #[serde(default)]
    message: Option<StartMessage>,
    #[serde(default, borrow)]
    content_block: Option<EvBlock<'a>>,
    #[serde(default, borrow)]
    delta: Option<EvDelta<'a>>,
    #[serde(default)]
    usage: Option<AUsage>,
    #[serde(default, borrow)]
    error: Option<ErrorBody<'a>>,
}

#[derive(Deserialize, Default)]
struct StartMessage {
    #[serde(default)]
    usage: AUsage,
}

#[derive(Deserialize)]
struct EvBlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
}

/// `content_block_delta`'s and `message_delta`'s `delta`.
#[derive(Deserialize)]
struct EvDelta<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

/// Anthropic's SSE stream as OpenAI chunks, event by event.
pub struct Decoder {
    meta: Meta,
    /// `data: {"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[{"index":0,"delta":`
    prefix: Vec<u8>,
    pending: BytesMut,
    started: bool,
    stopped: bool,
    finished: bool,
    /// Content block index → tool call index (OpenAI counts tool calls from 0).
    tools: Vec<(u64, u32)>,
    finish: Option<&'static str>,
    input: AUsage,
    output_tokens: u64,
}

impl Decoder {
    /// A decoder for one answer.
    pub fn new(meta: Meta) -> Self {
        let mut prefix = meta.chunk_prefix();
        prefix.push(b'[');
        Decoder {
            meta,
            prefix,
            pending: BytesMut::new(),
            started: false,
            stopped: false,
            finished: false,
            tools: Vec::new(),
            finish: None,
            input: AUsage::default(),
            output_tokens: 0,
        }
    }

    /// One chunk whose choice has `delta` (raw JSON) and `finish_reason`.
    fn chunk(&self, out: &mut BytesMut, delta: &[u8], finish: Option<&str>) {
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"{\"index\":0,\"delta\":");
        out.extend_from_slice(delta);
        out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
        match finish {
            Some(f) => {
                out.extend_from_slice(b"\"");
                out.extend_from_slice(f.as_bytes());
                out.extend_from_slice(b"\"");
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}]}\n\n");
    }

    fn text_delta(&self, out: &mut BytesMut, text: &str) {
        let mut d = Vec::with_capacity(text.len() + 16);
        d.extend_from_slice(b"{\"content\":");
        let _ = serde_json::to_writer(&mut d, text);
        d.push(b'}');
        self.chunk(out, &d, None);
    }

    fn event(&mut self, data: &[u8], out: &mut BytesMut) -> Result<(), StreamError> {
        let ev: Event = serde_json::from_slice(data)
            .map_err(|_| StreamError::Malformed("an Anthropic stream event is not valid JSON"))?;
        match &*ev.kind {
            "message_start" => {
                let u = ev.message.map(|m| m.usage).unwrap_or_default();
                self.input = u;
                self.output_tokens = u.output_tokens.unwrap_or(0);
                if !self.started {
                    self.started = true;
                    self.chunk(out, br#"{"role":"assistant","content":""}"#, None);
                }
            }
            "content_block_start" => {
                let b = ev.content_block.ok_or(StreamError::Malformed(
                    "content_block_start without its block",
                ))?;
                match &*b.kind {
                    "text" => {
                        if let Some(t) = b.text.filter(|t| !t.is_empty()) {
                            self.text_delta(out, &t)
                        }
                    }
                    "tool_use" => {
                        if self.tools.len() >= 1024 {
                            return Err(StreamError::Malformed("too many tool calls"));
                        }
                        let k = self.tools.len() as u32;
                        self.tools.push((ev.index, k));
                        let (id, name) = (b.id.unwrap_or_default(), b.name.unwrap_or_default());
                        let mut d = Vec::with_capacity(96 + id.len() + name.len());
                        d.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                        d.extend_from_slice(k.to_string().as_bytes());
                        d.extend_from_slice(b",\"id\":");
                        let _ = serde_json::to_writer(&mut d, &*id);
                        d.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                        let _ = serde_json::to_writer(&mut d, &*name);
                        d.extend_from_slice(b",\"arguments\":\"\"}}]}");
                        self.chunk(out, &d, None);
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let d = ev.delta.ok_or(StreamError::Malformed(
                    "content_block_delta without its delta",
                ))?;
                match d.kind.as_deref() {
                    Some("text_delta") => {
                        if let Some(t) = d.text.filter(|t| !t.is_empty()) {
                            self.text_delta(out, &t)
                        }
                    }
                    Some("input_json_delta") => {
                        let part = d.partial_json.unwrap_or_default();
                        let k = self
                            .tools
                            .iter()
                            .find(|(i, _)| *i == ev.index)
                            .map(|(_, k)| *k)
                            .ok_or(StreamError::Malformed(
                                "a tool input delta for no tool block",
                            ))?;
                        let mut buf = Vec::with_capacity(64 + part.len());
                        buf.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                        buf.extend_from_slice(k.to_string().as_bytes());
                        buf.extend_from_slice(b",\"function\":{\"arguments\":");
                        let _ = serde_json::to_writer(&mut buf, &*part);
                        buf.extend_from_slice(b"}}]}");
                        self.chunk(out, &buf, None);
                    }
                    // thinking and signature deltas: OpenAI's chat chunks have no field
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(s) = ev.delta.and_then(|d| d.stop_reason) {
                    self.finish = Some(finish_reason(&s));
                }
                let usage = ev.usage.unwrap_or_default();
                if let Some(n) = usage.output_tokens {
                    self.output_tokens = n;
                }
                // newer API versions repeat the input counts here: the last word wins
                if usage.input_tokens.is_some() {
                    self.input.input_tokens = usage.input_tokens;
                }
                if usage.cache_read_input_tokens.is_some() {
                    self.input.cache_read_input_tokens = usage.cache_read_input_tokens;
                }
                if usage.cache_creation_input_tokens.is_some() {
                    self.input.cache_creation_input_tokens = usage.cache_creation_input_tokens;
                }
                self.chunk(out, b"{}", Some(self.finish.unwrap_or("stop")));
            }
            "message_stop" => self.stopped = true,
            "error" => {
                let e = ev.error;
                let kind = e
                    .as_ref()
                    .and_then(|e| e.kind.as_deref())
                    .unwrap_or("error");
                let msg = e.as_ref().and_then(|e| e.message.as_deref()).unwrap_or("");
                return Err(StreamError::Upstream(format!("{kind}: {msg}")));
            }
            // ping, content_block_stop and kinds added later
            _ => {}
        }
        Ok(())
    }
}

impl Decoder {
    /// Handle the complete events of `buf` (none ends before `from`); returns the bytes used.
    fn drain(&mut self, buf: &[u8], from: usize, out: &mut BytesMut) -> Result<usize, StreamError> {
        let mut start = 0;
        let mut search = from;
        while let Some(len) = event_end(&buf[search..]) {
            let end = search + len;
            let ev = &buf[start..end];
            // `data:` lines of the event: one in practice (read in place); several are joined
            // by newlines as SSE says
            let mut one: Option<&[u8]> = None;
            let mut joined: Option<Vec<u8>> = None;
            for line in ev.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if let Some(p) = line.strip_prefix(b"data:") {
                    let p = p.strip_prefix(b" ").unwrap_or(p);
                    match (&mut joined, one) {
                        (Some(j), _) => {
                            j.push(b'\n');
                            j.extend_from_slice(p);
                        }
                        (None, Some(first)) => {
                            let mut j = first.to_vec();
                            j.push(b'\n');
                            j.extend_from_slice(p);
                            joined = Some(j);
                        }
                        (None, None) => one = Some(p),
                    }
                }
            }
            match (joined, one) {
                (Some(j), _) => self.event(&j, out)?,
                (None, Some(d)) => self.event(d, out)?,
                (None, None) => {}
            }
            start = end;
            search = end;
        }
        Ok(start)
    }
}

/// The first complete SSE event's length in `buf` (through its blank line).
fn event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(n) = memchr::memchr(b'\n', &buf[i..]) {
        let nl = i + n;
        let rest = &buf[nl + 1..];
        if rest.first() == Some(&b'\n') {
            return Some(nl + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        i = nl + 1;
    }
    None
}

impl StreamDecoder for Decoder {
    fn feed(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), StreamError> {
        if self.finished {
            return Err(StreamError::Malformed("bytes after the end of the stream"));
        }
        // search only from where an end could be: the pending bytes hold no complete event
        let from = self.pending.len().saturating_sub(2);
        let mut buf = std::mem::take(&mut self.pending);
        let r = if buf.is_empty() {
            // the common case: whole events in this chunk, read where they are
            self.drain(input, 0, out).map(|used| {
                buf.extend_from_slice(&input[used..]);
            })
        } else {
            buf.extend_from_slice(input);
            self.drain(&buf, from, out).map(|used| {
                let _ = buf.split_to(used);
            })
        };
        self.pending = buf;
        r?;
        if self.pending.len() > MAX_EVENT_BYTES {
            return Err(StreamError::TooLarge);
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut BytesMut) -> Result<(), StreamError> {
        if self.finished {
            return Ok(());
        }
        if !self.stopped {
            return Err(StreamError::Malformed(
                "the Anthropic stream ended before message_stop",
            ));
        }
        self.finished = true;
        if self.meta.include_usage
            && let Some(u) = self.usage()
        {
            out.extend_from_slice(&self.prefix);
            out.extend_from_slice(b"],\"usage\":");
            let _ = serde_json::to_writer(&mut out.as_mut_vec_shim(), &usage_json(&u));
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        Ok(())
    }

    fn usage(&self) -> Option<Usage> {
        if !self.started {
            return None;
        }
        normalise(
            self.input.input_tokens.unwrap_or(0),
            self.output_tokens,
            self.input.cache_read_input_tokens.unwrap_or(0),
            self.input.cache_creation_input_tokens.unwrap_or(0),
        )
    }
}

/// `serde_json::to_writer` into a `BytesMut`.
trait AsWriter {
    fn as_mut_vec_shim(&mut self) -> bytes::buf::Writer<&mut BytesMut>;
}

impl AsWriter for BytesMut {
    fn as_mut_vec_shim(&mut self) -> bytes::buf::Writer<&mut BytesMut> {
        bytes::BufMut::writer(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(include_usage: bool) -> Meta {
        Meta {
            id: "chatcmpl-r1".into(),
            model: "pub-model".into(),
            created: 1_700_000_000,
            include_usage,
            base64: false,
        }
    }

    /// A stream as Anthropic sends it: text, then a tool call in two JSON pieces, cache counts.
    pub(crate) const STREAM: &str = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"stop_reason\":null,\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":100,\"cache_creation_input_tokens\":20,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Olá \\\"mundo\\\" ✓\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\r\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"weather\",\"input\":{}}}\r\n\r\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"SP\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );

    fn run(pieces: &[&[u8]], include_usage: bool) -> (Result<Vec<u8>, StreamError>, Option<Usage>) {
        let mut d = Decoder::new(meta(include_usage));
        let mut out = BytesMut::new();
        for p in pieces {
            if let Err(e) = d.feed(p, &mut out) {
                return (Err(e), d.usage());
            }
        }
        let r = d.finish(&mut out).map(|_| out.to_vec());
        (r, d.usage())
    }

    fn events(out: &[u8]) -> Vec<Value> {
        let s = std::str::from_utf8(out).unwrap();
        assert!(s.ends_with("data: [DONE]\n\n"), "{s}");
        s.split("\n\n")
            .filter(|e| e.starts_with("data: {"))
            .map(|e| serde_json::from_str(&e[6..]).unwrap())
            .collect()
    }

    #[test]
    fn stream_becomes_openai_chunks_with_normalised_usage() {
        let (out, usage) = run(&[STREAM.as_bytes()], true);
        let ev = events(&out.unwrap());
        assert!(
            ev.iter()
                .all(|e| e["id"] == "chatcmpl-r1" && e["model"] == "pub-model")
        );
        assert_eq!(ev[0]["choices"][0]["delta"]["role"], "assistant");
        let text: String = ev
            .iter()
            .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Olá \"mundo\" ✓");
        let call = &ev[2]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(call["id"], "toolu_1");
        assert_eq!(call["index"], 0);
        assert_eq!(call["function"]["name"], "weather");
        let args: String = ev
            .iter()
            .filter_map(|e| {
                e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            })
            .collect();
        assert_eq!(args, "{\"city\": \"SP\"}");
        let fin = &ev[ev.len() - 2];
        assert_eq!(fin["choices"][0]["finish_reason"], "tool_calls");
        let last = ev.last().unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(last["usage"]["prompt_tokens"], 130);
        assert_eq!(last["usage"]["completion_tokens"], 15);
        assert_eq!(last["usage"]["prompt_tokens_details"]["cached_tokens"], 100);
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 130,
                completion_tokens: 15,
                cached_tokens: 100,
                cache_write_tokens: 20,
                reasoning_tokens: 0
            })
        );
        // not asked: no usage chunk, the usage still known
        let (out, usage) = run(&[STREAM.as_bytes()], false);
        assert!(
            !String::from_utf8(out.unwrap())
                .unwrap()
                .contains("\"usage\"")
        );
        assert_eq!(usage.map(|u| u.prompt_tokens), Some(130));
    }

    #[test]
    fn every_split_point_gives_the_same_output() {
        let bytes = STREAM.as_bytes();
        let (whole, u) = run(&[bytes], true);
        let whole = whole.unwrap();
        for a in 0..=bytes.len() {
            let (got, gu) = run(&[&bytes[..a], &bytes[a..]], true);
            assert_eq!(got.as_deref(), Ok(&whole[..]), "split at {a}");
            assert_eq!(gu, u);
        }
    }

    proptest::proptest! {
        /// Three pieces at any two split points: the same bytes out as the whole stream.
        #[test]
        fn three_pieces_at_any_points(a in 0usize..=STREAM.len(), b in 0usize..=STREAM.len()) {
            let bytes = STREAM.as_bytes();
            let (a, b) = (a.min(b), a.max(b));
            let (whole, _) = run(&[bytes], false);
            let (got, _) = run(&[&bytes[..a], &bytes[a..b], &bytes[b..]], false);
            proptest::prop_assert_eq!(got, whole);
        }

        /// Arbitrary bytes never panic: a clean error or nothing.
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = run(&[&data], true);
            let _ = chat_answer(&data, &meta(false));
            let _ = error_answer(500, &data);
        }
    }

    #[test]
    fn hostile_streams_are_clean_errors_or_bounded_usage() {
        // garbage, invalid UTF-8 and a truncated event
        assert!(matches!(
            run(&[b"data: {nope\n\n"], false).0,
            Err(StreamError::Malformed(_))
        ));
        assert!(matches!(
            run(&[b"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\xff\xfe\"}}\n\n"], false).0,
            Err(StreamError::Malformed(_))
        ));
        let cut = &STREAM.as_bytes()[..STREAM.len() - 10];
        assert!(matches!(
            run(&[cut], false).0,
            Err(StreamError::Malformed(_))
        ));
        // 2^63 tokens: the stream goes on, the usage is not believed
        let huge = STREAM.replace(
            "\"input_tokens\":10",
            "\"input_tokens\":9223372036854775808",
        );
        let (out, usage) = run(&[huge.as_bytes()], true);
        assert!(out.is_ok());
        assert_eq!(usage, None);
        let sum = STREAM.replace("\"input_tokens\":10", "\"input_tokens\":99999999");
        assert_eq!(
            run(&[sum.as_bytes()], false).1,
            None,
            "the parts' sum is bounded too"
        );
        // a 100k-deep JSON inside an event
        let deep = format!("data: {}{}\n\n", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            run(&[deep.as_bytes()], false).0,
            Err(StreamError::Malformed(_))
        ));
        // one event that never ends
        let endless = vec![b'x'; MAX_EVENT_BYTES + 10];
        assert_eq!(
            run(&[b"data: ", &endless], false).0,
            Err(StreamError::TooLarge)
        );
        // the provider's error event
        let e = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        assert_eq!(
            run(&[&STREAM.as_bytes()[..300], e.as_bytes()], false).0,
            Err(StreamError::Upstream("overloaded_error: Overloaded".into()))
        );
    }

    #[test]
    fn request_translation() {
        let req = json!({
            "model": "pub", "max_completion_tokens": 77, "temperature": 0.5, "top_p": 0.9,
            "stop": "FIM", "stream": true, "user": "u1", "parallel_tool_calls": false,
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "in pt"}]},
                {"role": "user", "content": [{"type": "text", "text": "see"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "weather", "arguments": "{\"city\":\"SP\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "22"},
                {"role": "user", "content": "and tomorrow?"}
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "response_format": {"type": "json_object"}
        });
        let out: Value = serde_json::from_slice(&chat_request(&req, "claude-x").unwrap()).unwrap();
        assert_eq!(out["model"], "claude-x");
        assert_eq!(out["max_tokens"], 77);
        assert_eq!(out["stop_sequences"], json!(["FIM"]));
        assert_eq!(out["metadata"]["user_id"], "u1");
        assert!(
            out["system"]
                .as_str()
                .unwrap()
                .starts_with("be brief\n\nin pt\n\nRespond with one JSON object")
        );
        let m = out["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(
            m[0]["content"][1]["source"],
            json!({"type": "base64", "media_type": "image/png", "data": "AAAA"})
        );
        assert_eq!(
            m[0]["content"][2]["source"],
            json!({"type": "url", "url": "https://x.test/a.jpg"})
        );
        assert_eq!(
            m[1]["content"][0],
            json!({"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "SP"}})
        );
        // the tool result and the next user text in one user turn
        assert_eq!(m[2]["role"], "user");
        assert_eq!(
            m[2]["content"][0],
            json!({"type": "tool_result", "tool_use_id": "c1", "content": "22"})
        );
        assert_eq!(m[2]["content"][1]["text"], "and tomorrow?");
        assert_eq!(out["tools"][0]["input_schema"], json!({"type": "object"}));
        assert_eq!(
            out["tool_choice"],
            json!({"type": "any", "disable_parallel_tool_use": true})
        );
        // defaults
        let out: Value = serde_json::from_slice(
            &chat_request(
                &json!({"messages": [{"role": "user", "content": "x"}]}),
                "c",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(out["max_tokens"], DEFAULT_MAX_TOKENS);
        assert!(out.get("stream").is_none());
    }

    #[test]
    fn untranslatable_fields_are_400s_naming_them() {
        let base = json!({"messages": [{"role": "user", "content": "x"}]});
        let cases = [
            (json!({"n": 2}), "n:"),
            (json!({"logprobs": true}), "logprobs:"),
            (json!({"top_logprobs": 2}), "top_logprobs:"),
            (json!({"seed": 1}), "seed:"),
            (json!({"frequency_penalty": 0.5}), "frequency_penalty:"),
            (json!({"temperature": 1.5}), "temperature:"),
            (json!({"max_tokens": 0}), "max_tokens:"),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}),
                "messages[0].content[0].type:",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}}]}]}),
                "messages[0].content[0].image_url.url:",
            ),
            (
                json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "not json"}}]}]}),
                "messages[0].tool_calls[0].function.arguments:",
            ),
            (
                json!({"tools": [{"type": "code_interpreter"}]}),
                "tools[0].type:",
            ),
            (
                json!({"messages": [{"role": "system", "content": "only system"}]}),
                "messages:",
            ),
        ];
        for (patch, want) in cases {
            let mut req = base.clone();
            for (k, v) in patch.as_object().unwrap() {
                req[k] = v.clone();
            }
            match chat_request(&req, "c") {
                Err(ApiError::InvalidRequest(m)) => assert!(m.starts_with(want), "{want}: {m}"),
                other => panic!("{want}: {other:?}"),
            }
        }
    }

    #[test]
    fn whole_answer_and_errors() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"Oi"},{"type":"tool_use","id":"toolu_9","name":"f","input":{"a":[1,2]}}],"stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":7,"cache_read_input_tokens":3}}"#;
        let (out, usage) = chat_answer(body, &meta(false)).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "pub-model");
        assert_eq!(v["choices"][0]["message"]["content"], "Oi");
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":[1,2]}"
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["usage"]["prompt_tokens"], 8);
        assert_eq!(usage.unwrap().cached_tokens, 3);
        let max = br#"{"content":[{"type":"text","text":"a"}],"stop_reason":"max_tokens","usage":{"input_tokens":1,"output_tokens":1}}"#;
        let v: Value = serde_json::from_slice(&chat_answer(max, &meta(false)).unwrap().0).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "length");

        for (kind, status, st, ty) in [
            ("invalid_request_error", 400, 400, "invalid_request_error"),
            ("authentication_error", 401, 401, "authentication_error"),
            ("permission_error", 403, 403, "permission_error"),
            ("not_found_error", 404, 404, "invalid_request_error"),
            ("request_too_large", 413, 413, "invalid_request_error"),
            ("rate_limit_error", 429, 429, "rate_limit_error"),
            ("api_error", 500, 500, "server_error"),
            ("overloaded_error", 529, 503, "server_error"),
        ] {
            let body =
                format!(r#"{{"type":"error","error":{{"type":"{kind}","message":"m {kind}"}}}}"#);
            let (s, out) = error_answer(status, body.as_bytes());
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(s, st, "{kind}");
            assert_eq!(v["error"]["type"], ty, "{kind}");
            assert_eq!(v["error"]["code"], kind);
            assert_eq!(v["error"]["message"], format!("m {kind}"));
        }
        let (s, out) = error_answer(502, b"<html>bad gateway</html>");
        assert_eq!(s, 502);
        assert!(serde_json::from_slice::<Value>(&out).is_ok());
    }
}
