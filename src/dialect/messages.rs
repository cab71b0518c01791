//! Anthropic's Messages API inbound (`POST /v1/messages`): a client's request turned into the
//! canonical OpenAI chat request, and the canonical answer (whole or streamed) turned back
//! into Anthropic's shapes.
//!
//! Everything here is pure (bytes in, bytes out); `gateway::messages` calls it from the
//! request and response phases.
//!
//! * [`request`] checks the Messages request field by field and writes the OpenAI chat body
//!   the rest of the gateway (routing, limits, funds, failover, the upstream) reads. A field
//!   OpenAI's chat cannot express is a 400 naming it (`top_k`, `thinking`, server tools,
//!   documents, images inside a `tool_result`, …), never a silent drop. Ignored on purpose,
//!   because they are hints and not content: `cache_control` markers and `citations` on text
//!   blocks of earlier turns.
//! * [`answer`] renders a whole `chat.completion` as a `message`.
//! * [`Stream`] turns the OpenAI SSE chunks into Anthropic's events as each one arrives:
//!   `message_start`, then per content block `content_block_start`, its `text_delta` or
//!   `input_json_delta` events and `content_block_stop`, and at the upstream's `[DONE]`
//!   `message_delta` (stop reason and the final usage) and `message_stop`.
//! * Errors are `{"type":"error","error":{"type","message"}}` with Anthropic's types, so the
//!   official SDKs raise their own exception classes.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::sse::Usage;

/// Most messages one request may carry.
const MAX_MESSAGES: usize = 4096;
/// Largest `max_tokens` accepted (past it a number is a mistake, not a wish).
pub const MAX_OUTPUT_TOKENS: u64 = 1_000_000;
/// Most tools one request may declare (OpenAI's own cap).
const MAX_TOOLS: usize = 128;
/// Most stop sequences (OpenAI takes 4).
const MAX_STOP: usize = 4;

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::InvalidRequest(m.into())
}

fn unsupported(field: &str, why: &str) -> ApiError {
    bad(format!("{field}: {why}"))
}

/// The Messages request `body` as the OpenAI chat body the gateway routes and the upstream
/// gets (`stream_options.include_usage` always on for a stream: the final `message_delta`
/// needs the counts). Every problem is a 400 naming the field.
pub fn request(body: &[u8]) -> Result<Bytes, ApiError> {
    if body.is_empty() {
        return Err(ApiError::InvalidJson("the body is empty".into()));
    }
    if body.contains(&0) || crate::surfaces::kit::has_nul_escape(body) {
        return Err(bad("strings must not contain the NUL character (\\u0000)"));
    }
    let depth = crate::gateway::request::MAX_JSON_DEPTH;
    if crate::gateway::request::nesting_exceeds(body, depth) {
        return Err(ApiError::InvalidJson(format!(
            "the JSON nests deeper than {depth} levels"
        )));
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    let Value::Object(top) = v else {
        return Err(bad("the body must be a JSON object"));
    };
    let mut out = Map::new();
    match top.get("model") {
        Some(Value::String(m)) if !m.is_empty() && m.len() <= 256 => {
            out.insert("model".into(), Value::String(m.clone()));
        }
        Some(_) => return Err(bad("model: a string of 1 to 256 characters")),
        None => return Err(bad("model: Field required")),
    }
    let mut messages = Vec::new();
    if let Some(s) = top.get("system")
        && let Some(text) = system_text(s)?
        && !text.is_empty()
    {
        messages.push(json!({"role": "system", "content": text}));
    }
    match top.get("messages") {
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= MAX_MESSAGES => {
            for (i, m) in a.iter().enumerate() {
                message(i, m, &mut messages)?;
            }
        }
        Some(_) => {
            return Err(bad(format!(
                "messages: an array of 1 to {MAX_MESSAGES} messages"
            )));
        }
        None => return Err(bad("messages: Field required")),
    }
    out.insert("messages".into(), Value::Array(messages));
    match top.get("max_tokens") {
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_OUTPUT_TOKENS).contains(&n) => {
                out.insert("max_tokens".into(), v.clone());
            }
            _ => {
                return Err(bad(format!(
                    "max_tokens: an integer from 1 to {MAX_OUTPUT_TOKENS}"
                )));
            }
        },
        None => return Err(bad("max_tokens: Field required")),
    }
    let mut stream = false;
    let mut has_tools = false;
    for (k, v) in &top {
        if v.is_null() {
            // a null is an absent field (the SDKs serialise unset optional fields as null)
            continue;
        }
        match k.as_str() {
            "model" | "messages" | "system" | "max_tokens" => {}
            "stream" => match v {
                Value::Bool(b) => stream = *b,
                Value::Null => {}
                _ => return Err(bad("stream: a boolean")),
            },
            "temperature" | "top_p" => match v.as_f64() {
                Some(x) if x.is_finite() && (0.0..=1.0).contains(&x) => {
                    out.insert(k.clone(), v.clone());
                }
                _ => return Err(bad(format!("{k}: a number from 0 to 1"))),
            },
            "stop_sequences" => {
                let ok = v.as_array().is_some_and(|a| {
                    a.len() <= MAX_STOP
                        && a.iter()
                            .all(|s| s.as_str().is_some_and(|s| !s.is_empty() && s.len() <= 256))
                });
                if !ok {
                    return Err(bad(format!(
                        "stop_sequences: up to {MAX_STOP} strings of 1 to 256 bytes (OpenAI's limit)"
                    )));
                }
                if v.as_array().is_some_and(|a| !a.is_empty()) {
                    out.insert("stop".into(), v.clone());
                }
            }
            "metadata" => {
                let Value::Object(m) = v else {
                    return Err(bad("metadata: an object"));
                };
                for (mk, mv) in m {
                    match (mk.as_str(), mv) {
                        ("user_id", Value::String(u)) if u.len() <= 256 => {
                            out.insert("user".into(), mv.clone());
                        }
                        ("user_id", Value::Null) => {}
                        ("user_id", _) => {
                            return Err(bad("metadata.user_id: a string of up to 256 bytes"));
                        }
                        _ => {
                            return Err(unsupported(
                                &format!("metadata.{mk}"),
                                "unknown field (only user_id)",
                            ));
                        }
                    }
                }
            }
            "tools" => {
                let tools = tools(v)?;
                has_tools = !tools.is_empty();
                if has_tools {
                    out.insert("tools".into(), Value::Array(tools));
                }
            }
            "tool_choice" => {}
            "top_k" => {
                return Err(unsupported(
                    "top_k",
                    "not supported: requests are served through OpenAI's chat completions, which have no top_k",
                ));
            }
            "thinking" => {
                return Err(unsupported(
                    "thinking",
                    "extended thinking is not supported through this gateway",
                ));
            }
            other => {
                return Err(unsupported(other, "unknown or unsupported field"));
            }
        }
    }
    if let Some(tc) = top.get("tool_choice") {
        tool_choice(tc, has_tools, &mut out)?;
    }
    out.insert("stream".into(), Value::Bool(stream));
    if stream {
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    serde_json::to_vec(&Value::Object(out))
        .map(Bytes::from)
        .map_err(|_| ApiError::Internal)
}

/// `system`: a string, or text blocks (joined with a newline).
fn system_text(s: &Value) -> Result<Option<String>, ApiError> {
    match s {
        Value::Null => Ok(None),
        Value::String(t) => Ok(Some(t.clone())),
        Value::Array(blocks) => {
            let mut text = String::new();
            for (j, b) in blocks.iter().enumerate() {
                let field = format!("system[{j}]");
                let t = text_block(&field, b)?;
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(t);
            }
            Ok(Some(text))
        }
        _ => Err(bad("system: a string or an array of text blocks")),
    }
}

/// Refuses a block's keys other than `type`, `cache_control` (a hint, not translated) and
/// the ones named; a key whose value is null counts as absent.
fn check_keys(field: &str, b: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    for (k, v) in b {
        // a null is an absent field (the SDKs serialise unset optional fields as null)
        if !v.is_null() && !allowed.contains(&k.as_str()) && k != "type" && k != "cache_control" {
            return Err(unsupported(
                &format!("{field}.{k}"),
                "unknown or unsupported field",
            ));
        }
    }
    Ok(())
}

fn block_type<'a>(
    field: &str,
    b: &'a Value,
) -> Result<(&'a str, &'a Map<String, Value>), ApiError> {
    let Value::Object(o) = b else {
        return Err(bad(format!("{field}: a content block object")));
    };
    match o.get("type") {
        Some(Value::String(t)) => Ok((t.as_str(), o)),
        _ => Err(bad(format!("{field}.type: Field required"))),
    }
}

/// A `{"type":"text","text":…}` block's text.
fn text_block<'a>(field: &str, b: &'a Value) -> Result<&'a str, ApiError> {
    let (t, o) = block_type(field, b)?;
    if t != "text" {
        return Err(bad(format!("{field}.type: must be text here")));
    }
    check_keys(field, o, &["text", "citations"])?;
    o.get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{field}.text: a string")))
}

/// An image block as OpenAI's `image_url` part.
fn image_part(field: &str, o: &Map<String, Value>) -> Result<Value, ApiError> {
    check_keys(field, o, &["source"])?;
    let Some(Value::Object(src)) = o.get("source") else {
        return Err(bad(format!("{field}.source: Field required")));
    };
    let str_of = |k: &str| {
        src.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad(format!("{field}.source.{k}: a non-empty string")))
    };
    let url = match src.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let mt = str_of("media_type")?;
            if !matches!(mt, "image/jpeg" | "image/png" | "image/gif" | "image/webp") {
                return Err(bad(format!(
                    "{field}.source.media_type: image/jpeg, image/png, image/gif or image/webp"
                )));
            }
            let data = str_of("data")?;
            format!("data:{mt};base64,{data}")
        }
        Some("url") => {
            let u = str_of("url")?;
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(bad(format!("{field}.source.url: an http(s) URL")));
            }
            u.to_string()
        }
        _ => {
            return Err(unsupported(
                &format!("{field}.source.type"),
                "base64 or url (file sources are not supported)",
            ));
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// One Messages message as OpenAI messages (a user message's `tool_result` blocks become
/// `tool` messages, placed before the rest of its content).
fn message(i: usize, m: &Value, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let Value::Object(o) = m else {
        return Err(bad(format!("messages[{i}]: an object {{role, content}}")));
    };
    for (k, v) in o {
        if k != "role" && k != "content" && !v.is_null() {
            return Err(unsupported(&format!("messages[{i}].{k}"), "unknown field"));
        }
    }
    let role = match o.get("role").and_then(Value::as_str) {
        Some(r @ ("user" | "assistant")) => r,
        _ => return Err(bad(format!("messages[{i}].role: user or assistant"))),
    };
    let blocks = match o.get("content") {
        Some(Value::String(s)) => {
            out.push(json!({"role": role, "content": s}));
            return Ok(());
        }
        Some(Value::Array(b)) => b,
        _ => {
            return Err(bad(format!(
                "messages[{i}].content: a string or an array of content blocks"
            )));
        }
    };
    if role == "assistant" {
        let mut text = String::new();
        let mut calls = Vec::new();
        for (j, b) in blocks.iter().enumerate() {
            let field = format!("messages[{i}].content[{j}]");
            let (t, bo) = block_type(&field, b)?;
            match t {
                "text" => {
                    let s = text_block(&field, b)?;
                    if !text.is_empty() && !s.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(s);
                }
                "tool_use" => {
                    check_keys(&field, bo, &["id", "name", "input"])?;
                    let id = bo
                        .get("id")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| bad(format!("{field}.id: a non-empty string")))?;
                    let name = bo
                        .get("name")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| bad(format!("{field}.name: a non-empty string")))?;
                    let input = match bo.get("input") {
                        Some(v @ Value::Object(_)) => v.to_string(),
                        _ => return Err(bad(format!("{field}.input: an object"))),
                    };
                    calls.push(json!({"id": id, "type": "function",
                        "function": {"name": name, "arguments": input}}));
                }
                other => {
                    return Err(unsupported(
                        &format!("{field}.type"),
                        &format!(
                            "{other} blocks cannot be translated (text and tool_use only in an assistant message)"
                        ),
                    ));
                }
            }
        }
        let mut msg = json!({"role": "assistant",
            "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
        if !calls.is_empty() {
            msg["tool_calls"] = Value::Array(calls);
        }
        out.push(msg);
        return Ok(());
    }
    let mut parts = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let field = format!("messages[{i}].content[{j}]");
        let (t, bo) = block_type(&field, b)?;
        match t {
            "text" => {
                let s = text_block(&field, b)?;
                parts.push(json!({"type": "text", "text": s}));
            }
            "image" => parts.push(image_part(&field, bo)?),
            "tool_result" => out.push(tool_result(&field, bo)?),
            other => {
                return Err(unsupported(
                    &format!("{field}.type"),
                    &format!(
                        "{other} blocks cannot be translated (text, image and tool_result only)"
                    ),
                ));
            }
        }
    }
    match parts.len() {
        0 if blocks.is_empty() => out.push(json!({"role": "user", "content": ""})),
        0 => {}
        1 if parts[0]["type"] == "text" => {
            out.push(json!({"role": "user", "content": parts[0]["text"]}));
        }
        _ => out.push(json!({"role": "user", "content": parts})),
    }
    Ok(())
}

/// A `tool_result` block as an OpenAI `tool` message. `is_error: true` prefixes the content
/// with `[tool error] ` (OpenAI has no such flag).
fn tool_result(field: &str, o: &Map<String, Value>) -> Result<Value, ApiError> {
    check_keys(field, o, &["tool_use_id", "content", "is_error"])?;
    let id = o
        .get("tool_use_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad(format!("{field}.tool_use_id: a non-empty string")))?;
    let mut text = match o.get("is_error") {
        None | Some(Value::Null | Value::Bool(false)) => String::new(),
        Some(Value::Bool(true)) => "[tool error] ".to_string(),
        Some(_) => return Err(bad(format!("{field}.is_error: a boolean"))),
    };
    match o.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => text.push_str(s),
        Some(Value::Array(blocks)) => {
            for (k, b) in blocks.iter().enumerate() {
                let f = format!("{field}.content[{k}]");
                let (t, _) = block_type(&f, b)?;
                if t != "text" {
                    return Err(unsupported(
                        &format!("{f}.type"),
                        "only text blocks can be translated inside a tool_result (OpenAI's tool messages carry text)",
                    ));
                }
                if k > 0 {
                    text.push('\n');
                }
                text.push_str(text_block(&f, b)?);
            }
        }
        Some(_) => return Err(bad(format!("{field}.content: a string or text blocks"))),
    }
    Ok(json!({"role": "tool", "tool_call_id": id, "content": text}))
}

/// `tools` as OpenAI function tools (client tools only: server tools run at Anthropic).
fn tools(v: &Value) -> Result<Vec<Value>, ApiError> {
    let Value::Array(a) = v else {
        return Err(bad("tools: an array"));
    };
    if a.len() > MAX_TOOLS {
        return Err(bad(format!("tools: at most {MAX_TOOLS} tools")));
    }
    let mut out = Vec::with_capacity(a.len());
    for (i, t) in a.iter().enumerate() {
        let field = format!("tools[{i}]");
        let Value::Object(o) = t else {
            return Err(bad(format!("{field}: an object")));
        };
        match o.get("type") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == "custom" => {}
            Some(other) => {
                return Err(unsupported(
                    &format!("{field}.type"),
                    &format!(
                        "{other} tools run on Anthropic's servers and cannot be translated (custom tools only)"
                    ),
                ));
            }
        }
        check_keys(&field, o, &["name", "description", "input_schema"])?;
        let name = o
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| {
                (1..=128).contains(&n.len())
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            })
            .ok_or_else(|| {
                bad(format!(
                    "{field}.name: 1 to 128 letters, digits, underscores or hyphens"
                ))
            })?;
        let schema = match o.get("input_schema") {
            Some(s @ Value::Object(_)) => s.clone(),
            _ => return Err(bad(format!("{field}.input_schema: an object"))),
        };
        let mut f = json!({"name": name, "parameters": schema});
        match o.get("description") {
            None | Some(Value::Null) => {}
            Some(Value::String(d)) => f["description"] = Value::String(d.clone()),
            Some(_) => return Err(bad(format!("{field}.description: a string"))),
        }
        out.push(json!({"type": "function", "function": f}));
    }
    Ok(out)
}

/// `tool_choice`: auto → `auto`, any → `required`, tool → the named function, none →
/// `none`; `disable_parallel_tool_use` → `parallel_tool_calls: false`.
fn tool_choice(v: &Value, has_tools: bool, out: &mut Map<String, Value>) -> Result<(), ApiError> {
    let Value::Object(o) = v else {
        return Err(bad("tool_choice: an object {type}"));
    };
    check_keys("tool_choice", o, &["name", "disable_parallel_tool_use"])?;
    let choice = match o.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = o
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| bad("tool_choice.name: Field required"))?;
            json!({"type": "function", "function": {"name": name}})
        }
        _ => return Err(bad("tool_choice.type: auto, any, tool or none")),
    };
    if !has_tools {
        // OpenAI refuses a tool_choice without tools; Anthropic accepts auto/none there
        if choice == "auto" || choice == "none" {
            return Ok(());
        }
        return Err(bad("tool_choice: needs tools"));
    }
    out.insert("tool_choice".into(), choice);
    match o.get("disable_parallel_tool_use") {
        None | Some(Value::Null | Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            out.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
        Some(_) => return Err(bad("tool_choice.disable_parallel_tool_use: a boolean")),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Answers

/// OpenAI's usage object, with the details Anthropic reports separately.
#[derive(Deserialize, Default)]
struct OaUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize, Default)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    cache_write_tokens: Option<u64>,
}

impl OaUsage {
    /// As catraca's [`Usage`], `None` when implausible.
    fn usage(&self) -> Option<Usage> {
        let d = self.prompt_tokens_details.as_ref();
        let u = Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            cached_tokens: d.and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_write_tokens: d.and_then(|d| d.cache_write_tokens).unwrap_or(0),
            reasoning_tokens: 0,
        };
        (u.plausible() && u.cached_tokens.saturating_add(u.cache_write_tokens) <= u.prompt_tokens)
            .then_some(u)
    }
}

/// The usage the client is told: the gateway's own reading (what is billed) when it knows the
/// cache counts or this answer carried none, else the answer's.
pub fn pick_usage(own: Option<Usage>, gateway: Option<Usage>) -> Option<Usage> {
    // an implausible reading is never shown (nor was it billed)
    let gateway = gateway.filter(Usage::plausible);
    match (own, gateway) {
        (_, Some(g)) if g.cached_tokens > 0 || g.cache_write_tokens > 0 => Some(g),
        (Some(o), Some(g)) if o.prompt_tokens == g.prompt_tokens => Some(o),
        (_, Some(g)) => Some(g),
        (o, None) => o,
    }
}

/// Anthropic's usage object: `input_tokens` excludes cache reads and writes.
fn usage_json(u: Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens.saturating_sub(u.cached_tokens).saturating_sub(u.cache_write_tokens),
        "output_tokens": u.completion_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
    })
}

/// OpenAI's `finish_reason` as Anthropic's `stop_reason` (a stop sequence cannot be told
/// from a natural end in OpenAI's answer: both are `end_turn`).
fn stop_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// A tool call's `arguments` as Anthropic's `input` object (arguments that are not a JSON
/// object are kept whole under `_arguments`, never dropped).
fn tool_input(args: &str) -> Value {
    if args.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(args) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({"_arguments": args}),
    }
}

#[derive(Deserialize)]
struct Completion<'a> {
    #[serde(borrow, default)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<OaUsage>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default, alias = "delta")]
    message: Option<Msg<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<Call<'a>>>,
}

#[derive(Deserialize)]
struct Call<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

/// The whole OpenAI `chat.completion` `body` as Anthropic's `message` (`id` is `msg_…`,
/// `model` the public name); `gateway_usage` is what the gateway read (and bills). `None` when
/// the body is not a chat completion.
pub fn answer(body: &[u8], id: &str, model: &str, gateway_usage: Option<Usage>) -> Option<Vec<u8>> {
    let c: Completion = serde_json::from_slice(body).ok()?;
    let choice = c.choices.first()?;
    let mut content = Vec::new();
    if let Some(m) = &choice.message {
        if let Some(t) = m.content.as_deref().filter(|t| !t.is_empty()) {
            content.push(json!({"type": "text", "text": t}));
        } else if let Some(r) = m.refusal.as_deref().filter(|t| !t.is_empty()) {
            content.push(json!({"type": "text", "text": r}));
        }
        for call in m.tool_calls.iter().flatten() {
            let f = call.function.as_ref();
            content.push(json!({
                "type": "tool_use",
                "id": call.id.as_deref().unwrap_or(""),
                "name": f.and_then(|f| f.name.as_deref()).unwrap_or(""),
                "input": tool_input(f.and_then(|f| f.arguments.as_deref()).unwrap_or("")),
            }));
        }
    }
    let usage =
        pick_usage(c.usage.as_ref().and_then(OaUsage::usage), gateway_usage).unwrap_or_default();
    let v = json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.finish_reason.as_deref().unwrap_or("stop")),
        "stop_sequence": Value::Null,
        "usage": usage_json(usage),
    });
    serde_json::to_vec(&v).ok()
}

// ---------------------------------------------------------------------------------------------
// Streams

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text(u32),
    Tool { openai: u32, index: u32 },
}

/// The OpenAI chunks of one streamed answer, re-encoded as Anthropic's events as they arrive.
#[derive(Debug)]
pub struct Stream {
    id: String,
    model: std::sync::Arc<str>,
    /// An unfinished line.
    buf: BytesMut,
    started: bool,
    block: Option<Block>,
    /// OpenAI tool call index → content block index, for calls already opened.
    tools: Vec<(u32, u32)>,
    next_index: u32,
    stop: Option<&'static str>,
    usage: Option<Usage>,
    /// `message_stop` (or an error event) was written.
    pub finished: bool,
}

/// Longest line kept while waiting for its end (the gateway's own SSE cap applies first).
const MAX_LINE: usize = 16 << 20;

fn push_event(out: &mut BytesMut, name: &str, v: &Value) {
    out.put_slice(b"event: ");
    out.put_slice(name.as_bytes());
    out.put_slice(b"\ndata: ");
    let mut w = out.writer();
    let _ = serde_json::to_writer(&mut w, v);
    w.get_mut().put_slice(b"\n\n");
}

/// `event: error` with Anthropic's error body.
pub fn error_event_bytes(kind: &str, message: &str) -> Bytes {
    let mut out = BytesMut::new();
    push_event(
        &mut out,
        "error",
        &json!({"type": "error", "error": {"type": kind, "message": message}}),
    );
    out.freeze()
}

impl Stream {
    /// A stream for the message `id` (`msg_…`) of the public `model`.
    pub fn new(id: String, model: std::sync::Arc<str>) -> Self {
        Stream {
            id,
            model,
            buf: BytesMut::new(),
            started: false,
            block: None,
            tools: Vec::new(),
            next_index: 0,
            stop: None,
            usage: None,
            finished: false,
        }
    }

    /// The usage read from the stream's usage chunk (bounded), if any.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether the upstream said why it stopped.
    pub fn saw_stop(&self) -> bool {
        self.stop.is_some()
    }

    fn start(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        push_event(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": &*self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        );
    }

    fn close_block(&mut self, out: &mut BytesMut) {
        if let Some(b) = self.block.take() {
            let index = match b {
                Block::Text(i) | Block::Tool { index: i, .. } => i,
            };
            push_event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    fn text(&mut self, t: &str, out: &mut BytesMut) {
        let index = match self.block {
            Some(Block::Text(i)) => i,
            _ => {
                self.close_block(out);
                let i = self.next_index;
                self.next_index += 1;
                self.block = Some(Block::Text(i));
                push_event(
                    out,
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": i,
                        "content_block": {"type": "text", "text": ""}}),
                );
                i
            }
        };
        // the hot event, written without building a JSON value
        out.put_slice(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
        );
        out.put_slice(index.to_string().as_bytes());
        out.put_slice(b",\"delta\":{\"type\":\"text_delta\",\"text\":");
        let mut w = out.writer();
        let _ = serde_json::to_writer(&mut w, t);
        w.get_mut().put_slice(b"}}\n\n");
    }

    fn tool(&mut self, c: &Call, out: &mut BytesMut) {
        let openai = c.index.unwrap_or(0);
        let f = c.function.as_ref();
        let known = self
            .tools
            .iter()
            .find(|(o, _)| *o == openai)
            .map(|(_, i)| *i);
        let index = match known {
            Some(i) => i,
            None => {
                self.close_block(out);
                let i = self.next_index;
                self.next_index += 1;
                self.tools.push((openai, i));
                self.block = Some(Block::Tool { openai, index: i });
                push_event(
                    out,
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": i,
                        "content_block": {"type": "tool_use",
                            "id": c.id.as_deref().unwrap_or(""),
                            "name": f.and_then(|f| f.name.as_deref()).unwrap_or(""),
                            "input": {}}}),
                );
                i
            }
        };
        if let Some(args) = f
            .and_then(|f| f.arguments.as_deref())
            .filter(|a| !a.is_empty())
        {
            push_event(
                out,
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": args}}),
            );
        }
    }

    /// The end: close the open block, `message_delta` with the stop reason and the final
    /// usage (`gateway_usage`: what the gateway read; the chunk's own when it has none), and
    /// `message_stop`.
    pub fn end(&mut self, gateway_usage: Option<Usage>, out: &mut BytesMut) {
        if self.finished {
            return;
        }
        self.start(out);
        self.close_block(out);
        let u = pick_usage(self.usage, gateway_usage).unwrap_or_default();
        push_event(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": self.stop.unwrap_or("end_turn"), "stop_sequence": null},
                "usage": usage_json(u)}),
        );
        push_event(out, "message_stop", &json!({"type": "message_stop"}));
        self.finished = true;
    }

    /// Mid-stream failure: Anthropic's `event: error` (nothing follows it).
    pub fn fail(&mut self, kind: &str, message: &str, out: &mut BytesMut) {
        if self.finished {
            return;
        }
        out.put_slice(&error_event_bytes(kind, message));
        self.finished = true;
    }

    /// The next bytes of the OpenAI SSE stream (split anywhere): the events they complete.
    /// `[DONE]` ends the message with `gateway_usage` (see [`Stream::end`]).
    pub fn feed(&mut self, input: &[u8], gateway_usage: Option<Usage>, out: &mut BytesMut) {
        self.buf.extend_from_slice(input);
        while let Some(nl) = memchr::memchr(b'\n', &self.buf) {
            let line = self.buf.split_to(nl + 1);
            if self.finished {
                continue;
            }
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.trim_ascii();
            if data == b"[DONE]" {
                self.end(gateway_usage, out);
                continue;
            }
            self.event(data, out);
        }
        if self.buf.len() > MAX_LINE && !self.finished {
            self.buf.clear();
            self.fail("api_error", "the provider sent an event too large", out);
        }
    }

    fn event(&mut self, data: &[u8], out: &mut BytesMut) {
        #[derive(Deserialize)]
        struct Err<'a> {
            #[serde(borrow)]
            error: ErrInner<'a>,
        }
        #[derive(Deserialize)]
        struct ErrInner<'a> {
            #[serde(borrow, default)]
            message: Option<Cow<'a, str>>,
        }
        let c: Completion = match serde_json::from_slice(data) {
            Ok(c) => c,
            Err(_) => {
                let msg = serde_json::from_slice::<Err>(data)
                    .ok()
                    .and_then(|e| e.error.message.map(Cow::into_owned));
                match msg {
                    Some(m) => self.fail("api_error", &m, out),
                    // not JSON: the provider's stream is broken
                    None => self.fail("api_error", "the provider sent an unreadable event", out),
                }
                return;
            }
        };
        if c.choices.is_empty() && c.usage.is_none() {
            // `{"error": …}` parses as an empty completion
            if let Ok(e) = serde_json::from_slice::<Err>(data) {
                let m = e.error.message.as_deref().unwrap_or("the provider failed");
                self.fail("api_error", m, out);
                return;
            }
        }
        self.start(out);
        if let Some(u) = c.usage.as_ref().and_then(OaUsage::usage) {
            self.usage = Some(u);
        }
        let Some(choice) = c.choices.first() else {
            return;
        };
        if let Some(d) = &choice.message {
            if let Some(t) = d.content.as_deref().filter(|t| !t.is_empty()) {
                self.text(t, out);
            } else if let Some(t) = d.refusal.as_deref().filter(|t| !t.is_empty()) {
                self.text(t, out);
            }
            for call in d.tool_calls.iter().flatten() {
                self.tool(call, out);
            }
        }
        if let Some(f) = choice.finish_reason.as_deref() {
            self.stop = Some(stop_reason(f));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Anthropic's error `type` for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// `{"type":"error","error":{"type","message"}}`.
pub fn error_body(status: u16, message: &str) -> Bytes {
    let v = json!({"type": "error", "error": {"type": error_type(status), "message": message}});
    Bytes::from(v.to_string())
}

/// A gateway error in Anthropic's shape (the status is the error's own).
pub fn gateway_error(e: &ApiError) -> Bytes {
    error_body(e.status(), &e.to_string())
}

/// An upstream error answer (OpenAI's shape, or anything) in Anthropic's shape.
pub fn upstream_error(status: u16, body: &[u8]) -> Bytes {
    #[derive(Deserialize)]
    struct E {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        message: Option<String>,
    }
    let msg = serde_json::from_slice::<E>(body)
        .ok()
        .and_then(|e| e.error.message)
        .unwrap_or_else(|| format!("the provider answered {status}"));
    error_body(status, &msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(v: Value) -> Result<Value, ApiError> {
        request(v.to_string().as_bytes()).map(|b| serde_json::from_slice(&b).unwrap())
    }

    fn err(v: Value) -> String {
        match tr(v) {
            Err(e) => {
                assert_eq!(e.status(), 400);
                e.to_string()
            }
            Ok(ok) => panic!("accepted: {ok}"),
        }
    }

    #[test]
    fn a_full_request_becomes_openais() {
        let v = tr(json!({
            "model": "claude", "max_tokens": 100, "system": [{"type":"text","text":"be brief","cache_control":{"type":"ephemeral"}}],
            "temperature": 0.5, "top_p": 0.9, "stop_sequences": ["END"], "metadata": {"user_id": "u1"},
            "stream": true,
            "tools": [{"name": "get_weather", "description": "weather", "input_schema": {"type":"object","properties":{"city":{"type":"string"}}}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "let me look"},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Recife"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type":"text","text":"31C"}]},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": true},
                    {"type": "text", "text": "thanks"}]}
            ]
        }))
        .unwrap();
        assert_eq!(v["model"], "claude");
        assert_eq!(v["max_tokens"], 100);
        assert_eq!(v["stop"], json!(["END"]));
        assert_eq!(v["user"], "u1");
        assert_eq!(v["stream"], true);
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["tool_choice"], "required");
        assert_eq!(v["parallel_tool_calls"], false);
        assert_eq!(v["tools"][0]["function"]["name"], "get_weather");
        assert_eq!(v["tools"][0]["function"]["parameters"]["type"], "object");
        let m = v["messages"].as_array().unwrap();
        assert_eq!(m[0], json!({"role":"system","content":"be brief"}));
        assert_eq!(
            m[1]["content"][1]["image_url"]["url"],
            "data:image/png;base64,iVBORw0KGgo="
        );
        assert_eq!(
            m[1]["content"][2]["image_url"]["url"],
            "https://example.com/a.png"
        );
        assert_eq!(m[2]["content"], "let me look");
        assert_eq!(m[2]["tool_calls"][0]["id"], "toolu_1");
        assert_eq!(
            m[2]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Recife\"}"
        );
        assert_eq!(
            m[3],
            json!({"role":"tool","tool_call_id":"toolu_1","content":"31C"})
        );
        assert_eq!(
            m[4],
            json!({"role":"tool","tool_call_id":"toolu_2","content":"[tool error] boom"})
        );
        assert_eq!(m[5], json!({"role":"user","content":"thanks"}));
        assert_eq!(m.len(), 6);
    }

    #[test]
    fn tool_choices_map() {
        let base = || {
            json!({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],
            "tools":[{"name":"f","input_schema":{"type":"object"}}]})
        };
        for (tc, want) in [
            (json!({"type":"auto"}), json!("auto")),
            (json!({"type":"none"}), json!("none")),
            (
                json!({"type":"tool","name":"f"}),
                json!({"type":"function","function":{"name":"f"}}),
            ),
        ] {
            let mut b = base();
            b["tool_choice"] = tc;
            assert_eq!(tr(b).unwrap()["tool_choice"], want);
        }
        let v = tr(json!({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}))
            .unwrap();
        assert_eq!(v["stream"], false);
        assert!(v.get("stream_options").is_none() && v.get("tools").is_none());
    }

    #[test]
    fn what_cannot_be_translated_is_a_400_naming_the_field() {
        let ok = json!({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]});
        let with = |k: &str, v: Value| {
            let mut b = ok.clone();
            b[k] = v;
            b
        };
        assert!(
            err(json!({"model":"m","messages":[{"role":"user","content":"x"}]}))
                .contains("max_tokens")
        );
        assert!(err(with("max_tokens", json!(0))).contains("max_tokens"));
        assert!(err(with("max_tokens", json!(1e30))).contains("max_tokens"));
        assert!(err(with("max_tokens", json!(18446744073709551615u64))).contains("max_tokens"));
        assert!(err(with("top_k", json!(5))).contains("top_k"));
        assert!(
            err(with(
                "thinking",
                json!({"type":"enabled","budget_tokens":1024})
            ))
            .contains("thinking")
        );
        assert!(err(with("service_tier", json!("auto"))).contains("service_tier"));
        assert!(err(with("temperature", json!(1.5))).contains("temperature"));
        assert!(err(with("metadata", json!({"x":1}))).contains("metadata.x"));
        assert!(
            err(with(
                "tools",
                json!([{"type":"web_search_20250305","name":"web_search"}])
            ))
            .contains("tools[0].type")
        );
        assert!(err(with("tool_choice", json!({"type":"any"}))).contains("tool_choice"));
        assert!(
            err(with(
                "messages",
                json!([{"role":"user","content":[{"type":"document","source":{}}]}])
            ))
            .contains("messages[0].content[0].type")
        );
        assert!(err(with("messages", json!([{"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"s"}]}]))).contains("messages[0].content[0].type"));
        assert!(err(with("messages", json!([{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{}}]}]}]))).contains("content[0].content[0].type"));
        assert!(
            err(with("messages", json!([{"role":"system","content":"x"}])))
                .contains("messages[0].role")
        );
        assert!(err(with("messages", json!([]))).contains("messages"));
        assert!(err(with("messages", json!([{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"text/html","data":"x"}}]}]))).contains("media_type"));
        // hostile bytes
        for b in [
            &b"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"a\0\"}]}"[..],
            br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a\u0000"}]}"#,
            b"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}",
            b"",
            b"[]",
        ] {
            assert_eq!(request(b).err().map(|e| e.status()), Some(400));
        }
        let deep = format!(
            "{{\"model\":\"m\",\"max_tokens\":5,\"x\":{}1{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(
            request(deep.as_bytes()).err().map(|e| e.status()),
            Some(400)
        );
    }

    #[test]
    fn a_whole_answer_becomes_a_message() {
        let body = br#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":100,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":40}}}"#;
        let v: Value =
            serde_json::from_slice(&answer(body, "msg_1", "pub", None).unwrap()).unwrap();
        assert_eq!(v["id"], "msg_1");
        assert_eq!(v["type"], "message");
        assert_eq!(v["model"], "pub");
        assert_eq!(v["content"][0], json!({"type":"text","text":"hi"}));
        assert_eq!(
            v["content"][1],
            json!({"type":"tool_use","id":"call_1","name":"f","input":{"a":1}})
        );
        assert_eq!(v["stop_reason"], "tool_use");
        assert_eq!(
            v["usage"],
            json!({"input_tokens":60,"output_tokens":7,"cache_read_input_tokens":40,"cache_creation_input_tokens":0})
        );
        // absurd counts are not believed
        let body = br#"{"choices":[{"message":{"content":"x"},"finish_reason":"length"}],"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":1}}"#;
        let v: Value = serde_json::from_slice(&answer(body, "m", "p", None).unwrap()).unwrap();
        assert_eq!(v["usage"]["input_tokens"], 0);
        assert_eq!(v["stop_reason"], "max_tokens");
        assert!(answer(b"garbage", "m", "p", None).is_none());
        let absurd = Usage {
            prompt_tokens: 1 << 63,
            completion_tokens: 1,
            ..Usage::default()
        };
        assert_eq!(pick_usage(None, Some(absurd)), None);
    }

    const STREAM: &str = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Ol\\u00e1\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" mundo\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"1}\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":5}}\n\n",
        "data: [DONE]\n\n",
    );

    fn run(pieces: &[&[u8]]) -> Vec<u8> {
        let mut s = Stream::new("msg_1".into(), "pub".into());
        let mut out = BytesMut::new();
        for p in pieces {
            s.feed(p, None, &mut out);
        }
        out.to_vec()
    }

    fn events(out: &[u8]) -> Vec<(String, Value)> {
        std::str::from_utf8(out)
            .unwrap()
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (name, data) = e.split_once('\n').unwrap();
                (
                    name.strip_prefix("event: ").unwrap().to_string(),
                    serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn a_stream_becomes_anthropics_events_in_order() {
        let out = run(&[STREAM.as_bytes()]);
        let ev = events(&out);
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(ev[0].1["message"]["id"], "msg_1");
        assert_eq!(ev[0].1["message"]["model"], "pub");
        assert_eq!(ev[2].1["delta"], json!({"type":"text_delta","text":"Olá"}));
        assert_eq!(
            ev[5].1["content_block"],
            json!({"type":"tool_use","id":"call_1","name":"f","input":{}})
        );
        assert_eq!(ev[6].1["delta"]["partial_json"], "{\"a\":");
        assert_eq!(ev[7].1["index"], 1);
        assert_eq!(ev[9].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(ev[9].1["usage"]["input_tokens"], 11);
        assert_eq!(ev[9].1["usage"]["output_tokens"], 5);
    }

    #[test]
    fn hostile_streams_end_with_an_error_event_never_a_panic() {
        for bad in [
            &b"data: garbage\n\n"[..],
            b"data: \xff\xfe\n\n",
            b"data: {\"error\":{\"message\":\"boom\"}}\n\n",
        ] {
            let ev = events(&run(&[bad]));
            assert_eq!(ev.last().unwrap().0, "error", "{bad:?}");
        }
        let huge = b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9223372036854775808,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
        let ev = events(&run(&[huge]));
        assert_eq!(ev.last().unwrap().0, "message_stop");
        let deep = format!("data: {}1{}\n\n", "[".repeat(100_000), "]".repeat(100_000));
        let ev = events(&run(&[deep.as_bytes()]));
        assert_eq!(ev.last().unwrap().0, "error");
    }

    proptest::proptest! {
        /// Feeding the upstream bytes in three pieces at any split points gives the same events
        /// as feeding them whole.
        #[test]
        fn every_split_point_gives_the_same_events(a in 0usize..=STREAM.len(), b in 0usize..=STREAM.len()) {
            let whole = run(&[STREAM.as_bytes()]);
            let (a, b) = (a.min(b), a.max(b));
            let bytes = STREAM.as_bytes();
            proptest::prop_assert_eq!(run(&[&bytes[..a], &bytes[a..b], &bytes[b..]]), whole);
        }
    }

    #[test]
    fn every_two_piece_split_gives_the_same_events() {
        let whole = run(&[STREAM.as_bytes()]);
        let bytes = STREAM.as_bytes();
        for a in 0..=bytes.len() {
            assert_eq!(run(&[&bytes[..a], &bytes[a..]]), whole, "split at {a}");
        }
    }

    #[test]
    fn errors_have_anthropics_types() {
        for (e, t) in [
            (
                ApiError::InvalidRequest("x".into()),
                "invalid_request_error",
            ),
            (ApiError::InvalidKey, "authentication_error"),
            (ApiError::ModelNotFound("m".into()), "not_found_error"),
            (ApiError::ModelNotAllowed("m".into()), "permission_error"),
            (ApiError::BodyTooLarge(1), "request_too_large"),
            (ApiError::InsufficientBalance, "billing_error"),
            (ApiError::UpstreamOverloaded, "overloaded_error"),
            (ApiError::Internal, "api_error"),
        ] {
            let v: Value = serde_json::from_slice(&gateway_error(&e)).unwrap();
            assert_eq!(v["type"], "error");
            assert_eq!(v["error"]["type"], t);
        }
        let v: Value = serde_json::from_slice(&upstream_error(
            400,
            br#"{"error":{"message":"nope","type":"invalid_request_error"}}"#,
        ))
        .unwrap();
        assert_eq!(
            v["error"],
            json!({"type":"invalid_request_error","message":"nope"})
        );
    }
}
