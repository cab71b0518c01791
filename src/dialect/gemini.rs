//! Google's Gemini API (`generativelanguage.googleapis.com/v1beta`) as a provider: OpenAI chat
//! and embeddings requests translated to `generateContent` / `streamGenerateContent?alt=sse` /
//! `batchEmbedContents`, and the answers (whole, or a stream event by event) translated back.
//!
//! Request translation (OpenAI → Gemini):
//! - `system`/`developer` messages → `systemInstruction` (text only); `user` → `contents` role
//!   `user`; `assistant` → role `model` (text, and `tool_calls` as `functionCall` parts);
//!   `tool` → a `functionResponse` part (role `user`) named after the assistant tool call with
//!   that `tool_call_id` (the most recent one); a content that is not a JSON object is wrapped
//!   as `{"content": …}`. Consecutive turns of the same role are merged into one (Gemini wants
//!   the answers to parallel calls in one turn).
//! - Content parts: `text`; `image_url` with a `data:` URL → `inlineData {mimeType, data}`; an
//!   `http(s)`/`gs` URL → `fileData {mimeType, fileUri}` with the MIME type guessed from the
//!   extension (jpg, jpeg, png, webp, gif, heic, heif, pdf; another extension is a 400 naming
//!   the part). Whether Gemini can fetch that URI is Gemini's to say (its 400 comes back
//!   translated). `detail` is a hint Gemini has no equivalent for and is ignored. Audio and
//!   file parts are a 400.
//! - `tools` (functions only) → `tools[0].functionDeclarations`; their `parameters` (and a
//!   `json_schema` response format) pass through a JSON Schema → Gemini Schema filter:
//!   kept: `type` (a `[T, "null"]` pair becomes `type: T, nullable: true`), `format`,
//!   `description`, `nullable`, `enum`, `properties`, `required`, `items`, `minItems`,
//!   `maxItems`, `minimum`, `maximum`, `minLength`, `maxLength`, `pattern`, `minProperties`,
//!   `maxProperties`, `anyOf`, `propertyOrdering`, `title`, `default`, `example`; `oneOf`
//!   becomes `anyOf`; `const` becomes a one-value `enum`. Dropped (annotations and
//!   validations that do not change the shape of what the model writes): `$schema`, `$id`,
//!   `$comment`, `additionalProperties`, `strict`, `examples`, `readOnly`, `writeOnly`,
//!   `deprecated`, `uniqueItems`, `multipleOf`, `exclusiveMinimum`, `exclusiveMaximum`,
//!   `contentEncoding`, `contentMediaType`, `unevaluatedProperties`. Anything else (`$ref`,
//!   `$defs`, `allOf`, `not`, `if`, `patternProperties`, `prefixItems`, …) is a 400 naming the
//!   keyword's place, as is a schema nested deeper than 32 levels.
//! - `tool_choice` → `toolConfig.functionCallingConfig` (`none` NONE, `auto` AUTO, `required`
//!   ANY, a named function ANY + `allowedFunctionNames`). `parallel_tool_calls: false` cannot be
//!   enforced on Gemini and is a 400.
//! - `generationConfig`: `temperature`, `top_p` → `topP`, `max_tokens` /
//!   `max_completion_tokens` → `maxOutputTokens`, `stop` → `stopSequences`, `n` →
//!   `candidateCount`, `seed`, `presence_penalty`, `frequency_penalty`, `response_format`
//!   (`json_object` → `responseMimeType: application/json`; `json_schema` → that and
//!   `responseSchema`), `reasoning_effort` → `thinkingConfig.thinkingBudget` (none 0, minimal
//!   0, low 1024, medium 8192, high 24576, the budgets of Gemini's own OpenAI endpoint).
//! - `model`, `stream`, `stream_options`, `user`, `metadata`, `store`, `service_tier` are
//!   catraca's or OpenAI's bookkeeping and not sent; a message's `name` is not sent either
//!   (Gemini has no per-message names). Every other field (`logprobs`, `logit_bias`, `audio`,
//!   `modalities`, `prediction`, legacy `functions`, …) is a 400 naming it.
//!
//! Answer translation (Gemini → OpenAI): `candidates[i]` → `choices[i]`; text parts joined
//! (parts marked `thought` — thought summaries — are not content and are left out);
//! `functionCall` parts → `tool_calls` with ids `call_<n>` (Gemini has no call ids; `n` counts
//! the candidate's calls from 0, the same in streams and whole answers); `finishReason` STOP →
//! `stop`, MAX_TOKENS → `length`, SAFETY / RECITATION / BLOCKLIST / PROHIBITED_CONTENT / SPII /
//! IMAGE_SAFETY → `content_filter`, any function call → `tool_calls`, anything else → `stop`.
//! A prompt blocked before generation (`promptFeedback.blockReason`, no candidates) is one
//! choice with empty content and `finish_reason: content_filter`. `usageMetadata`:
//! `promptTokenCount` (+ `toolUsePromptTokenCount`) → prompt tokens, of which
//! `cachedContentTokenCount` cached; `candidatesTokenCount` + `thoughtsTokenCount` → completion
//! tokens, of which `thoughtsTokenCount` reasoning. A count that is not an integer within
//! [`MAX_REPORTED_TOKENS`], or a cached count past the prompt's, makes the usage `None`.
//!
//! Errors: `{"error": {"code", "message", "status"}}` → OpenAI's shape: INVALID_ARGUMENT /
//! FAILED_PRECONDITION / OUT_OF_RANGE 400 (but a 400 whose reason is `API_KEY_INVALID` is a
//! 401), UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404, RESOURCE_EXHAUSTED 429,
//! INTERNAL 500, UNAVAILABLE 503, DEADLINE_EXCEEDED 504; another status keeps the HTTP one.

use std::borrow::Cow;

use bytes::{BufMut, BytesMut};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Answer, Meta, Op, StreamDecoder, StreamError};
use crate::error::ApiError;
use crate::sse::{MAX_REPORTED_TOKENS, Usage};

/// Largest one stream event (or line) may be before the stream is refused.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// Deepest JSON Schema (tool parameters, response schema) translated.
const MAX_SCHEMA_DEPTH: usize = 32;

/// The upstream path of `op` (after the base path, query included).
pub fn path(op: Op, upstream_model: &str, stream: bool) -> String {
    let model = upstream_model
        .strip_prefix("models/")
        .unwrap_or(upstream_model);
    match op {
        Op::Chat if stream => format!("/models/{model}:streamGenerateContent?alt=sse"),
        Op::Chat => format!("/models/{model}:generateContent"),
        Op::Embeddings => format!("/models/{model}:batchEmbedContents"),
    }
}

fn bad(field: impl std::fmt::Display, why: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidRequest(format!("{field}: {why}"))
}

/// Request fields that are bookkeeping (catraca's or OpenAI's), not sent to Gemini.
const IGNORED: [&str; 7] = [
    "model",
    "stream",
    "stream_options",
    "user",
    "metadata",
    "store",
    "service_tier",
];

/// An OpenAI chat request as Gemini's `GenerateContentRequest`.
pub fn chat_request(req: &Value) -> Result<Vec<u8>, ApiError> {
    let obj = req
        .as_object()
        .ok_or_else(|| bad("body", "must be a JSON object"))?;
    let mut gen_cfg = Map::new();
    let mut out = Map::new();
    for (k, v) in obj {
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "messages" | "tools" | "tool_choice" => {}
            k if IGNORED.contains(&k) => {}
            "temperature" | "top_p" | "seed" | "presence_penalty" | "frequency_penalty" => {
                if !v.is_number() {
                    return Err(bad(k, "must be a number"));
                }
                let name = match k.as_str() {
                    "top_p" => "topP",
                    "presence_penalty" => "presencePenalty",
                    "frequency_penalty" => "frequencyPenalty",
                    other => other,
                };
                gen_cfg.insert(name.into(), v.clone());
            }
            "max_tokens" | "max_completion_tokens" => {
                let n = v
                    .as_u64()
                    .filter(|n| *n <= i32::MAX as u64)
                    .ok_or_else(|| bad(k, "must be a positive integer"))?;
                gen_cfg.insert("maxOutputTokens".into(), n.into());
            }
            "n" => {
                let n = v
                    .as_u64()
                    .filter(|n| (1..=8).contains(n))
                    .ok_or_else(|| bad(k, "must be an integer from 1 to 8 on gemini"))?;
                if n > 1 {
                    gen_cfg.insert("candidateCount".into(), n.into());
                }
            }
            "stop" => {
                let stops = match v {
                    Value::String(s) => vec![Value::String(s.clone())],
                    Value::Array(a) if a.iter().all(Value::is_string) && a.len() <= 5 => a.clone(),
                    _ => return Err(bad(k, "must be a string or up to 5 strings")),
                };
                gen_cfg.insert("stopSequences".into(), Value::Array(stops));
            }
            "response_format" => match v.get("type").and_then(Value::as_str) {
                Some("text") => {}
                Some("json_object") => {
                    gen_cfg.insert("responseMimeType".into(), "application/json".into());
                }
                Some("json_schema") => {
                    gen_cfg.insert("responseMimeType".into(), "application/json".into());
                    if let Some(s) = v.pointer("/json_schema/schema") {
                        let schema = schema(s, "response_format.json_schema.schema", 0)?;
                        gen_cfg.insert("responseSchema".into(), schema);
                    }
                }
                _ => {
                    return Err(bad(
                        "response_format.type",
                        "must be text, json_object or json_schema",
                    ));
                }
            },
            "reasoning_effort" => {
                let budget = match v.as_str() {
                    Some("none" | "minimal") => 0,
                    Some("low") => 1024,
                    Some("medium") => 8192,
                    Some("high") => 24576,
                    _ => return Err(bad(k, "must be none, minimal, low, medium or high")),
                };
                gen_cfg.insert("thinkingConfig".into(), json!({ "thinkingBudget": budget }));
            }
            "parallel_tool_calls" => {
                if v.as_bool() != Some(true) {
                    return Err(bad(
                        k,
                        "gemini cannot be kept from calling tools in parallel",
                    ));
                }
            }
            other => return Err(bad(other, "not supported by gemini deployments")),
        }
    }
    let msgs = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("messages", "must be an array"))?;
    let (system, contents) = messages(msgs)?;
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    out.insert("contents".into(), Value::Array(contents));
    if let Some(tools) = obj.get("tools").filter(|t| !t.is_null()) {
        let tools = tools
            .as_array()
            .ok_or_else(|| bad("tools", "must be an array"))?;
        let mut decls = Vec::with_capacity(tools.len());
        for (i, t) in tools.iter().enumerate() {
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(bad(
                    format!("tools[{i}].type"),
                    "only function tools are supported by gemini",
                ));
            }
            let f = t
                .get("function")
                .and_then(Value::as_object)
                .ok_or_else(|| bad(format!("tools[{i}].function"), "must be an object"))?;
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("tools[{i}].function.name"), "must be a string"))?;
            let mut d = Map::new();
            d.insert("name".into(), name.into());
            if let Some(desc) = f.get("description").and_then(Value::as_str) {
                d.insert("description".into(), desc.into());
            }
            if let Some(p) = f.get("parameters").filter(|p| !p.is_null()) {
                // Gemini refuses an object schema without properties; such a function takes none
                let empty = p
                    .get("properties")
                    .and_then(Value::as_object)
                    .is_none_or(|o| o.is_empty())
                    && p.get("type").and_then(Value::as_str) == Some("object");
                if !empty {
                    let path = format!("tools[{i}].function.parameters");
                    d.insert("parameters".into(), schema(p, &path, 0)?);
                }
            }
            decls.push(Value::Object(d));
        }
        if !decls.is_empty() {
            out.insert("tools".into(), json!([{ "functionDeclarations": decls }]));
        }
    }
    if let Some(tc) = obj.get("tool_choice").filter(|t| !t.is_null()) {
        let cfg = match tc {
            Value::String(s) => match s.as_str() {
                "none" => json!({"mode": "NONE"}),
                "auto" => json!({"mode": "AUTO"}),
                "required" => json!({"mode": "ANY"}),
                _ => {
                    return Err(bad(
                        "tool_choice",
                        "must be none, auto, required or a function",
                    ));
                }
            },
            Value::Object(o) => {
                let name = o
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .filter(|_| o.get("type").and_then(Value::as_str) == Some("function"))
                    .ok_or_else(|| bad("tool_choice.function.name", "must name a function"))?;
                json!({"mode": "ANY", "allowedFunctionNames": [name]})
            }
            _ => return Err(bad("tool_choice", "must be a string or an object")),
        };
        out.insert("toolConfig".into(), json!({ "functionCallingConfig": cfg }));
    }
    if !gen_cfg.is_empty() {
        out.insert("generationConfig".into(), Value::Object(gen_cfg));
    }
    serde_json::to_vec(&Value::Object(out)).map_err(|_| bad("body", "cannot be encoded"))
}

/// The messages as Gemini's `systemInstruction` parts and `contents`.
fn messages(msgs: &[Value]) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::with_capacity(msgs.len());
    // tool call id → function name, from the assistant turns seen so far (a later one wins)
    let mut calls: Vec<(String, String)> = Vec::new();
    let push = |contents: &mut Vec<Value>, role: &str, parts: Vec<Value>| {
        if parts.is_empty() {
            return;
        }
        if let Some(last) = contents.last_mut()
            && last["role"] == role
            && let Some(p) = last["parts"].as_array_mut()
        {
            p.extend(parts);
            return;
        }
        contents.push(json!({"role": role, "parts": parts}));
    };
    for (i, m) in msgs.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("messages[{i}].role"), "must be a string"))?;
        let content = m.get("content").filter(|c| !c.is_null());
        match role {
            "system" | "developer" => {
                system.extend(parts(content, i, false)?);
            }
            "user" => push(&mut contents, "user", parts(content, i, true)?),
            "assistant" => {
                let mut ps = parts(content, i, false)?;
                if let Some(tcs) = m.get("tool_calls").filter(|t| !t.is_null()) {
                    let tcs = tcs.as_array().ok_or_else(|| {
                        bad(format!("messages[{i}].tool_calls"), "must be an array")
                    })?;
                    for (j, tc) in tcs.iter().enumerate() {
                        let f = format!("messages[{i}].tool_calls[{j}]");
                        let name = tc
                            .pointer("/function/name")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(format!("{f}.function.name"), "must be a string"))?;
                        let args_text = tc
                            .pointer("/function/arguments")
                            .and_then(Value::as_str)
                            .unwrap_or("{}");
                        let args: Value = if args_text.trim().is_empty() {
                            json!({})
                        } else {
                            serde_json::from_str(args_text).map_err(|_| {
                                bad(format!("{f}.function.arguments"), "must be a JSON object")
                            })?
                        };
                        if !args.is_object() {
                            return Err(bad(
                                format!("{f}.function.arguments"),
                                "must be a JSON object",
                            ));
                        }
                        if let Some(id) = tc.get("id").and_then(Value::as_str) {
                            calls.retain(|(k, _)| k != id);
                            calls.push((id.to_string(), name.to_string()));
                        }
                        ps.push(json!({"functionCall": {"name": name, "args": args}}));
                    }
                }
                if m.get("function_call").is_some_and(|f| !f.is_null()) {
                    return Err(bad(
                        format!("messages[{i}].function_call"),
                        "use tool_calls",
                    ));
                }
                push(&mut contents, "model", ps);
            }
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        bad(format!("messages[{i}].tool_call_id"), "must be a string")
                    })?;
                let name = calls
                    .iter()
                    .rev()
                    .find(|(k, _)| k == id)
                    .map(|(_, n)| n.clone())
                    .ok_or_else(|| {
                        bad(
                            format!("messages[{i}].tool_call_id"),
                            "matches no earlier assistant tool call",
                        )
                    })?;
                let text = match content {
                    None => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(a)) => {
                        let mut s = String::new();
                        for (j, p) in a.iter().enumerate() {
                            match p.get("text").and_then(Value::as_str) {
                                Some(t)
                                    if p.get("type").and_then(Value::as_str) == Some("text") =>
                                {
                                    s.push_str(t)
                                }
                                _ => {
                                    return Err(bad(
                                        format!("messages[{i}].content[{j}]"),
                                        "a tool result must be text on gemini",
                                    ));
                                }
                            }
                        }
                        s
                    }
                    Some(_) => {
                        return Err(bad(
                            format!("messages[{i}].content"),
                            "must be a string or parts",
                        ));
                    }
                };
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(v @ Value::Object(_)) => v,
                    Ok(v) => json!({ "content": v }),
                    Err(_) => json!({ "content": text }),
                };
                push(
                    &mut contents,
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                );
            }
            other => {
                return Err(bad(
                    format!("messages[{i}].role"),
                    format_args!("'{other}' is not supported by gemini deployments"),
                ));
            }
        }
    }
    Ok((system, contents))
}

/// A message's content as Gemini parts (`images`: image parts allowed).
fn parts(content: Option<&Value>, i: usize, images: bool) -> Result<Vec<Value>, ApiError> {
    match content {
        None => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![json!({ "text": s })]),
        Some(Value::Array(a)) => {
            let mut out = Vec::with_capacity(a.len());
            for (j, p) in a.iter().enumerate() {
                let f = format!("messages[{i}].content[{j}]");
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let t = p
                            .get("text")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(format!("{f}.text"), "must be a string"))?;
                        out.push(json!({ "text": t }));
                    }
                    Some("image_url") if images => out.push(image(p, &f)?),
                    Some(t) => {
                        return Err(bad(
                            format!("{f}.type"),
                            format_args!(
                                "'{t}' parts are not supported here by gemini deployments"
                            ),
                        ));
                    }
                    None => return Err(bad(format!("{f}.type"), "must be a string")),
                }
            }
            Ok(out)
        }
        Some(_) => Err(bad(
            format!("messages[{i}].content"),
            "must be a string or an array of parts",
        )),
    }
}

/// An `image_url` part as `inlineData` (data URL) or `fileData` (a URI).
fn image(p: &Value, f: &str) -> Result<Value, ApiError> {
    let url = p
        .pointer("/image_url/url")
        .or_else(|| p.get("image_url").filter(|u| u.is_string()))
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{f}.image_url.url"), "must be a string"))?;
    if let Some(rest) = url.strip_prefix("data:") {
        let (mime, data) = rest
            .split_once(";base64,")
            .filter(|(m, d)| !m.is_empty() && !d.is_empty())
            .ok_or_else(|| {
                bad(
                    format!("{f}.image_url.url"),
                    "a data URL must be base64 (data:<mime>;base64,…)",
                )
            })?;
        return Ok(json!({"inlineData": {"mimeType": mime, "data": data}}));
    }
    if url.starts_with("https://") || url.starts_with("http://") || url.starts_with("gs://") {
        let path = url.split(['?', '#']).next().unwrap_or(url);
        let ext = path
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        let mime = match ext.as_str() {
            "jpg" | "jpeg" => "image/jpeg",
            "png" => "image/png",
            "webp" => "image/webp",
            "gif" => "image/gif",
            "heic" => "image/heic",
            "heif" => "image/heif",
            "pdf" => "application/pdf",
            _ => {
                return Err(bad(
                    format!("{f}.image_url.url"),
                    "gemini needs the image's type: use a data URL or a URL ending in .jpg, .png, .webp, .gif, .heic or .heif",
                ));
            }
        };
        return Ok(json!({"fileData": {"mimeType": mime, "fileUri": url}}));
    }
    Err(bad(
        format!("{f}.image_url.url"),
        "must be a data: or http(s) URL",
    ))
}

/// A JSON Schema as Gemini's `Schema` (see the module's doc for what is kept and refused).
fn schema(s: &Value, path: &str, depth: usize) -> Result<Value, ApiError> {
    if depth > MAX_SCHEMA_DEPTH {
        return Err(bad(path, "schema nested too deeply"));
    }
    let o = match s {
        Value::Object(o) => o,
        Value::Bool(true) => return Ok(json!({})),
        _ => return Err(bad(path, "must be a schema object")),
    };
    let mut out = Map::new();
    for (k, v) in o {
        match k.as_str() {
            "type" => match v {
                Value::String(_) => {
                    out.insert("type".into(), v.clone());
                }
                Value::Array(a) => {
                    let types: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                    let non_null: Vec<&str> =
                        types.iter().copied().filter(|t| *t != "null").collect();
                    if types.len() != a.len() || non_null.len() != 1 {
                        return Err(bad(
                            format!("{path}.type"),
                            "gemini takes one type (or one type and null)",
                        ));
                    }
                    out.insert("type".into(), non_null[0].into());
                    if types.len() > 1 {
                        out.insert("nullable".into(), true.into());
                    }
                }
                _ => return Err(bad(format!("{path}.type"), "must be a string")),
            },
            "format" | "description" | "nullable" | "enum" | "required" | "minItems"
            | "maxItems" | "minimum" | "maximum" | "minLength" | "maxLength" | "pattern"
            | "minProperties" | "maxProperties" | "propertyOrdering" | "title" | "default"
            | "example" => {
                out.insert(k.clone(), v.clone());
            }
            "const" => {
                out.insert("enum".into(), json!([v]));
            }
            "properties" => {
                let props = v
                    .as_object()
                    .ok_or_else(|| bad(format!("{path}.properties"), "must be an object"))?;
                let mut p = Map::new();
                for (name, sub) in props {
                    p.insert(
                        name.clone(),
                        schema(sub, &format!("{path}.properties.{name}"), depth + 1)?,
                    );
                }
                out.insert("properties".into(), Value::Object(p));
            }
            "items" => {
                out.insert(
                    "items".into(),
                    schema(v, &format!("{path}.items"), depth + 1)?,
                );
            }
            "anyOf" | "oneOf" => {
                let a = v
                    .as_array()
                    .ok_or_else(|| bad(format!("{path}.{k}"), "must be an array"))?;
                let mut subs = Vec::with_capacity(a.len());
                for (j, sub) in a.iter().enumerate() {
                    subs.push(schema(sub, &format!("{path}.{k}[{j}]"), depth + 1)?);
                }
                out.insert("anyOf".into(), Value::Array(subs));
            }
            "$schema"
            | "$id"
            | "$comment"
            | "additionalProperties"
            | "strict"
            | "examples"
            | "readOnly"
            | "writeOnly"
            | "deprecated"
            | "uniqueItems"
            | "multipleOf"
            | "exclusiveMinimum"
            | "exclusiveMaximum"
            | "contentEncoding"
            | "contentMediaType"
            | "unevaluatedProperties" => {}
            other => {
                return Err(bad(
                    format!("{path}.{other}"),
                    "this JSON Schema keyword cannot be expressed in gemini's schema",
                ));
            }
        }
    }
    Ok(Value::Object(out))
}

/// An OpenAI embeddings request as Gemini's `batchEmbedContents`.
pub fn embeddings_request(req: &Value, upstream_model: &str) -> Result<Vec<u8>, ApiError> {
    let obj = req
        .as_object()
        .ok_or_else(|| bad("body", "must be a JSON object"))?;
    let model = upstream_model
        .strip_prefix("models/")
        .unwrap_or(upstream_model);
    let model = format!("models/{model}");
    let mut dims = None;
    for (k, v) in obj {
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "input" | "model" | "user" => {}
            "dimensions" => {
                dims = Some(
                    v.as_u64()
                        .filter(|n| (1..=65_536).contains(n))
                        .ok_or_else(|| bad(k, "must be a positive integer"))?,
                );
            }
            "encoding_format" => {
                if !matches!(v.as_str(), Some("float" | "base64")) {
                    return Err(bad(k, "must be float or base64"));
                }
            }
            other => return Err(bad(other, "not supported by gemini deployments")),
        }
    }
    let texts: Vec<&str> = match obj.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().ok_or_else(|| {
                    bad(
                        format!("input[{i}]"),
                        "must be a string (token arrays are not supported by gemini)",
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(bad(
                "input",
                "must be a string or a non-empty array of strings",
            ));
        }
    };
    let requests: Vec<Value> = texts
        .iter()
        .map(|t| {
            let mut r = json!({"model": model, "content": {"parts": [{"text": t}]}});
            if let Some(d) = dims {
                r["outputDimensionality"] = d.into();
            }
            r
        })
        .collect();
    serde_json::to_vec(&json!({ "requests": requests }))
        .map_err(|_| bad("body", "cannot be encoded"))
}

#[derive(Deserialize)]
struct EmbedAnswer<'a> {
    #[serde(default, borrow)]
    embeddings: Vec<Embedding<'a>>,
    #[serde(default, rename = "usageMetadata")]
    usage: Option<UsageMeta>,
}

#[derive(Deserialize)]
struct Embedding<'a> {
    #[serde(borrow)]
    values: &'a serde_json::value::RawValue,
}

/// The `batchEmbedContents` answer as OpenAI's embeddings list. Gemini reports no token
/// counts here (the usage is `None` and the gateway counts with its tokenizer) unless a
/// `usageMetadata.promptTokenCount` is present.
pub fn embeddings_answer(body: &[u8], meta: &Meta) -> Result<Answer, StreamError> {
    let a: EmbedAnswer = serde_json::from_slice(body)
        .map_err(|_| StreamError::Malformed("gemini embeddings answer is not its JSON"))?;
    let mut out = Vec::with_capacity(body.len() + 64 * a.embeddings.len() + 128);
    out.extend_from_slice(br#"{"object":"list","data":["#);
    for (i, e) in a.embeddings.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"object":"embedding","index":"#);
        out.extend_from_slice(i.to_string().as_bytes());
        out.extend_from_slice(br#","embedding":"#);
        if meta.base64 {
            let floats: Vec<f32> = serde_json::from_str(e.values.get())
                .map_err(|_| StreamError::Malformed("gemini embedding values are not numbers"))?;
            let bytes: Vec<u8> = floats.iter().flat_map(|x| x.to_le_bytes()).collect();
            use base64::Engine;
            out.push(b'"');
            out.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(bytes)
                    .as_bytes(),
            );
            out.push(b'"');
        } else {
            // checked as numbers, then copied as Gemini wrote them
            serde_json::from_str::<Vec<f64>>(e.values.get())
                .map_err(|_| StreamError::Malformed("gemini embedding values are not numbers"))?;
            out.extend_from_slice(e.values.get().as_bytes());
        }
        out.push(b'}');
    }
    out.extend_from_slice(br#"],"model":"#);
    out.extend_from_slice(&serde_json::to_vec(&*meta.model).unwrap_or_default());
    let usage = a.usage.and_then(|u| u.usage());
    if let Some(u) = &usage {
        out.extend_from_slice(
            format!(
                r#","usage":{{"prompt_tokens":{},"total_tokens":{}}}"#,
                u.prompt_tokens, u.prompt_tokens
            )
            .as_bytes(),
        );
    }
    out.push(b'}');
    Ok((out, usage))
}

// ---- answers ------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(default, borrow)]
    candidates: Vec<Candidate<'a>>,
    #[serde(default, rename = "usageMetadata")]
    usage: Option<UsageMeta>,
    #[serde(default, rename = "promptFeedback")]
    feedback: Option<Feedback<'a>>,
    #[serde(default, borrow)]
    error: Option<ErrorBody<'a>>,
}

#[derive(Deserialize)]
struct Candidate<'a> {
    #[serde(default, borrow)]
    content: Option<Content<'a>>,
    #[serde(default, rename = "finishReason", borrow)]
    finish: Option<Cow<'a, str>>,
    #[serde(default)]
    index: Option<u32>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(default, borrow)]
    parts: Vec<Part<'a>>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    thought: bool,
    #[serde(default, rename = "functionCall", borrow)]
    call: Option<FunctionCall<'a>>,
}

#[derive(Deserialize)]
struct FunctionCall<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default, borrow)]
    args: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct Feedback<'a> {
    #[serde(default, rename = "blockReason", borrow)]
    block: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(default)]
    code: Option<serde_json::Number>,
    #[serde(default, borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default)]
    details: Option<Value>,
}

/// Gemini's `usageMetadata`; counts kept as numbers to be bounded before they are believed.
#[derive(Deserialize, Default, Clone)]
struct UsageMeta {
    #[serde(default, rename = "promptTokenCount")]
    prompt: Option<serde_json::Number>,
    #[serde(default, rename = "candidatesTokenCount")]
    candidates: Option<serde_json::Number>,
    #[serde(default, rename = "thoughtsTokenCount")]
    thoughts: Option<serde_json::Number>,
    #[serde(default, rename = "cachedContentTokenCount")]
    cached: Option<serde_json::Number>,
    #[serde(default, rename = "toolUsePromptTokenCount")]
    tool_use: Option<serde_json::Number>,
}

impl UsageMeta {
    /// The counts in OpenAI's sense, `None` when any is not a plausible integer.
    fn usage(&self) -> Option<Usage> {
        let n = |x: &Option<serde_json::Number>| -> Option<u64> {
            match x {
                None => Some(0),
                Some(n) => n.as_u64().filter(|v| *v <= MAX_REPORTED_TOKENS),
            }
        };
        let (p, c, t, k, tu) = (
            n(&self.prompt)?,
            n(&self.candidates)?,
            n(&self.thoughts)?,
            n(&self.cached)?,
            n(&self.tool_use)?,
        );
        let u = Usage {
            prompt_tokens: p + tu,
            completion_tokens: c + t,
            cached_tokens: k,
            cache_write_tokens: 0,
            reasoning_tokens: t,
        };
        (u.plausible() && k <= u.prompt_tokens).then_some(u)
    }
}

/// OpenAI's finish reason for Gemini's.
fn finish_reason(gemini: &str, called: bool) -> &'static str {
    if called {
        return "tool_calls";
    }
    match gemini {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
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

fn tool_call(k: usize, c: &FunctionCall) -> Value {
    json!({
        "id": format!("call_{k}"),
        "type": "function",
        "function": {"name": c.name, "arguments": c.args.map(|a| a.get()).unwrap_or("{}")},
    })
}

/// The whole `generateContent` answer as OpenAI's `chat.completion`.
pub fn chat_answer(body: &[u8], meta: &Meta) -> Result<Answer, StreamError> {
    let r: Response = serde_json::from_slice(body)
        .map_err(|_| StreamError::Malformed("gemini answer is not its JSON"))?;
    if let Some(e) = r.error {
        return Err(StreamError::Upstream(
            e.message.unwrap_or_default().into_owned(),
        ));
    }
    let mut choices = Vec::with_capacity(r.candidates.len().max(1));
    for (i, c) in r.candidates.iter().enumerate() {
        let mut text = String::new();
        let mut calls = Vec::new();
        for p in c.content.iter().flat_map(|c| &c.parts) {
            if let Some(t) = &p.text
                && !p.thought
            {
                text.push_str(t);
            }
            if let Some(call) = &p.call {
                calls.push(tool_call(calls.len(), call));
            }
        }
        let fr = finish_reason(c.finish.as_deref().unwrap_or("STOP"), !calls.is_empty());
        let mut msg = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
        if !calls.is_empty() {
            msg["tool_calls"] = Value::Array(calls);
        }
        choices.push(json!({"index": c.index.unwrap_or(i as u32), "message": msg, "logprobs": null, "finish_reason": fr}));
    }
    if choices.is_empty() {
        if r.feedback.as_ref().and_then(|f| f.block.as_ref()).is_none() {
            return Err(StreamError::Malformed("gemini answer has no candidates"));
        }
        choices.push(json!({"index": 0, "message": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": "content_filter"}));
    }
    let usage = r.usage.as_ref().and_then(UsageMeta::usage);
    let mut out = json!({
        "id": meta.id, "object": "chat.completion", "created": meta.created,
        "model": &*meta.model, "choices": choices,
    });
    if let Some(u) = &usage {
        out["usage"] = usage_json(u);
    }
    Ok((serde_json::to_vec(&out).unwrap_or_default(), usage))
}

// ---- streams ------------------------------------------------------------------------------

/// Gemini's `alt=sse` stream turned into OpenAI chunks, event by event.
pub struct Decoder {
    meta: Meta,
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":`, the start of every chunk.
    prefix: Vec<u8>,
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The `data:` lines of the current event.
    data: Vec<u8>,
    has_data: bool,
    /// Per candidate index: (role sent, function calls sent, finished).
    cands: Vec<(bool, usize, bool)>,
    usage: Option<UsageMeta>,
    finished: bool,
    failed: bool,
}

impl Decoder {
    /// A decoder for one answer.
    pub fn new(meta: Meta) -> Self {
        let prefix = meta.chunk_prefix();
        Decoder {
            meta,
            prefix,
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            cands: Vec::new(),
            usage: None,
            finished: false,
            failed: false,
        }
    }

    /// One chunk of one choice: `delta` is the delta object's inside (`"role":…,…`), without
    /// braces; `finish` the finish reason, if any. Written straight as bytes (no JSON tree).
    fn chunk(&self, out: &mut BytesMut, idx: usize, delta: &[u8], finish: Option<&str>) {
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"[{\"index\":");
        out.extend_from_slice(idx.to_string().as_bytes());
        out.extend_from_slice(b",\"delta\":{");
        out.extend_from_slice(delta);
        out.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":");
        match finish {
            Some(f) => {
                out.put_u8(b'"');
                out.extend_from_slice(f.as_bytes());
                out.put_u8(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}]}\n\n");
    }

    /// One whole line (its `\n` gone; a `\r` before it is dropped here).
    fn line(&mut self, line: &[u8], out: &mut BytesMut) -> Result<(), StreamError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if self.has_data {
                let data = std::mem::take(&mut self.data);
                self.has_data = false;
                let r = self.event(&data, out);
                self.data = data;
                self.data.clear();
                return r;
            }
        } else if let Some(rest) = line.strip_prefix(b"data:") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            if self.has_data {
                self.data.push(b'\n');
            }
            if self.data.len() + rest.len() > MAX_EVENT_BYTES {
                return Err(StreamError::TooLarge);
            }
            self.data.extend_from_slice(rest);
            self.has_data = true;
        }
        // else comments (`:`), `event:`, `id:`, `retry:`: nothing Gemini sends that matters
        Ok(())
    }

    /// One whole event's data.
    fn event(&mut self, data: &[u8], out: &mut BytesMut) -> Result<(), StreamError> {
        let r: Response = serde_json::from_slice(data)
            .map_err(|_| StreamError::Malformed("gemini stream event is not its JSON"))?;
        if let Some(e) = r.error {
            return Err(StreamError::Upstream(
                e.message
                    .map(|m| m.into_owned())
                    .unwrap_or_else(|| "gemini stream error".into()),
            ));
        }
        if r.usage.is_some() {
            self.usage = r.usage;
        }
        if r.candidates.is_empty() {
            if r.feedback.as_ref().and_then(|f| f.block.as_ref()).is_some() && self.cands.is_empty()
            {
                self.cands.push((true, 0, true));
                self.chunk(
                    out,
                    0,
                    b"\"role\":\"assistant\",\"content\":\"\"",
                    Some("content_filter"),
                );
            }
            return Ok(());
        }
        for (pos, c) in r.candidates.iter().enumerate() {
            let idx = c.index.unwrap_or(pos as u32) as usize;
            if idx >= 8 {
                return Err(StreamError::Malformed(
                    "gemini candidate index out of range",
                ));
            }
            if self.cands.len() <= idx {
                self.cands.resize(idx + 1, (false, 0, false));
            }
            // the text of the event's parts (one, almost always: no copy then)
            let mut text: Cow<str> = Cow::Borrowed("");
            let mut calls = Vec::new();
            for p in c.content.iter().flat_map(|c| &c.parts) {
                if let Some(t) = &p.text
                    && !p.thought
                {
                    if text.is_empty() {
                        text = Cow::Borrowed(t.as_ref());
                    } else {
                        text.to_mut().push_str(t);
                    }
                }
                if let Some(call) = &p.call {
                    let k = self.cands[idx].1 + calls.len();
                    let mut tc = tool_call(k, call);
                    tc["index"] = k.into();
                    calls.push(tc);
                }
            }
            let (role_sent, n_calls, _) = self.cands[idx];
            if !text.is_empty() || !calls.is_empty() || !role_sent {
                let mut delta = Vec::with_capacity(text.len() + 32);
                if !role_sent {
                    delta.extend_from_slice(b"\"role\":\"assistant\"");
                }
                if !text.is_empty() || calls.is_empty() {
                    if !delta.is_empty() {
                        delta.push(b',');
                    }
                    delta.extend_from_slice(b"\"content\":");
                    let _ = serde_json::to_writer(&mut delta, text.as_ref());
                }
                let n = calls.len();
                if n > 0 {
                    if !delta.is_empty() {
                        delta.push(b',');
                    }
                    delta.extend_from_slice(b"\"tool_calls\":");
                    let _ = serde_json::to_writer(&mut delta, &calls);
                }
                self.cands[idx].0 = true;
                self.cands[idx].1 = n_calls + n;
                self.chunk(out, idx, &delta, None);
            }
            if let Some(f) = &c.finish
                && !self.cands[idx].2
            {
                self.cands[idx].2 = true;
                let fr = finish_reason(f, self.cands[idx].1 > 0);
                self.chunk(out, idx, b"", Some(fr));
            }
        }
        Ok(())
    }
}

impl StreamDecoder for Decoder {
    fn feed(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), StreamError> {
        if self.failed {
            return Err(StreamError::Malformed("gemini stream already failed"));
        }
        let mut rest = input;
        let r = (|| {
            while let Some(nl) = memchr::memchr(b'\n', rest) {
                if self.line.is_empty() {
                    // the whole line is in this input: no copy
                    self.line(&rest[..nl], out)?;
                } else {
                    if self.line.len() + nl > MAX_EVENT_BYTES {
                        return Err(StreamError::TooLarge);
                    }
                    self.line.extend_from_slice(&rest[..nl]);
                    let line = std::mem::take(&mut self.line);
                    let r = self.line(&line, out);
                    self.line = line;
                    self.line.clear();
                    r?;
                }
                rest = &rest[nl + 1..];
            }
            if self.line.len() + rest.len() > MAX_EVENT_BYTES {
                return Err(StreamError::TooLarge);
            }
            self.line.extend_from_slice(rest);
            Ok(())
        })();
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn finish(&mut self, out: &mut BytesMut) -> Result<(), StreamError> {
        if self.failed {
            return Err(StreamError::Malformed("gemini stream already failed"));
        }
        if self.finished {
            return Ok(());
        }
        // a last line without its terminator, then the event it ends
        let line = std::mem::take(&mut self.line);
        let mut r = if line.is_empty() {
            Ok(())
        } else {
            self.line(&line, out)
        };
        if r.is_ok() && self.has_data {
            r = self.line(b"", out);
        }
        if r.is_err() {
            self.failed = true;
            return r;
        }
        if self.cands.is_empty() || !self.cands.iter().all(|c| c.2) {
            self.failed = true;
            return Err(StreamError::Malformed(
                "gemini stream ended before its finish reason",
            ));
        }
        self.finished = true;
        if self.meta.include_usage
            && let Some(u) = self.usage()
        {
            out.extend_from_slice(&self.prefix);
            out.extend_from_slice(b"[],\"usage\":");
            let _ = serde_json::to_writer(out.writer(), &usage_json(&u));
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        Ok(())
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().and_then(UsageMeta::usage)
    }
}

// ---- errors -------------------------------------------------------------------------------

/// Gemini's error answer as OpenAI's: the status the client gets and the body.
pub fn error_answer(status: u16, body: &[u8]) -> (u16, Vec<u8>) {
    #[derive(Deserialize)]
    struct Wrapper<'a> {
        #[serde(borrow)]
        error: ErrorBody<'a>,
    }
    let parsed: Option<Wrapper> = serde_json::from_slice(body).ok();
    let (gstatus, message, key_invalid) = match &parsed {
        Some(w) => {
            let key_invalid = w.error.details.as_ref().is_some_and(|d| {
                d.as_array().is_some_and(|a| {
                    a.iter()
                        .any(|x| x.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID"))
                })
            });
            let _ = &w.error.code;
            (
                w.error.status.as_deref().unwrap_or(""),
                w.error.message.as_deref().unwrap_or(""),
                key_invalid,
            )
        }
        None => ("", "", false),
    };
    let (code, typ, ocode) = if key_invalid {
        (401, "authentication_error", "invalid_api_key")
    } else {
        match gstatus {
            "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => {
                (400, "invalid_request_error", "invalid_request")
            }
            "UNAUTHENTICATED" => (401, "authentication_error", "invalid_api_key"),
            "PERMISSION_DENIED" => (403, "permission_error", "permission_denied"),
            "NOT_FOUND" => (404, "invalid_request_error", "not_found"),
            "RESOURCE_EXHAUSTED" => (429, "rate_limit_error", "rate_limit_exceeded"),
            "INTERNAL" => (500, "server_error", "upstream_error"),
            "UNAVAILABLE" => (503, "server_error", "upstream_unavailable"),
            "DEADLINE_EXCEEDED" => (504, "server_error", "upstream_timeout"),
            _ => match status {
                401 => (401, "authentication_error", "invalid_api_key"),
                403 => (403, "permission_error", "permission_denied"),
                429 => (429, "rate_limit_error", "rate_limit_exceeded"),
                s if s >= 500 => (s, "server_error", "upstream_error"),
                s => (s, "invalid_request_error", "invalid_request"),
            },
        }
    };
    let mut msg: String = if message.is_empty() {
        format!("gemini upstream error {status}")
    } else {
        message.chars().take(2000).collect()
    };
    if !gstatus.is_empty()
        && gstatus.len() <= 40
        && gstatus.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
    {
        msg = format!("{msg} (gemini {gstatus})");
    }
    let body = json!({"error": {"message": msg, "type": typ, "param": null, "code": ocode}});
    (code, serde_json::to_vec(&body).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;

    fn meta(include_usage: bool) -> Meta {
        Meta {
            id: "chatcmpl-r1".into(),
            model: Arc::from("pub-model"),
            created: 1_700_000_000,
            include_usage,
            base64: false,
        }
    }

    fn req(v: Value) -> Value {
        serde_json::from_slice(&chat_request(&v).expect("translates")).expect("json")
    }

    fn err(v: Value) -> String {
        match chat_request(&v) {
            Err(ApiError::InvalidRequest(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            path(Op::Chat, "gemini-2.0-flash", false),
            "/models/gemini-2.0-flash:generateContent"
        );
        assert_eq!(
            path(Op::Chat, "models/g", true),
            "/models/g:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            path(Op::Embeddings, "text-embedding-004", false),
            "/models/text-embedding-004:batchEmbedContents"
        );
    }

    #[test]
    fn request_translates_messages_tools_and_config() {
        let g = req(json!({
            "model": "x", "stream": true, "temperature": 0.5, "top_p": 0.9, "max_tokens": 100,
            "stop": ["END"], "n": 2, "seed": 7, "presence_penalty": 0.1, "frequency_penalty": 0.2,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": true, "schema": {
                "type": "object", "additionalProperties": false,
                "properties": {"a": {"type": ["string", "null"]}, "b": {"const": "k"}},
                "required": ["a"]}}},
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K", "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/cat.JPG?x=1"}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_0", "type": "function", "function": {"name": "w", "arguments": "{\"c\":\"SP\"}"}},
                    {"id": "call_1", "type": "function", "function": {"name": "t", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_0", "content": "{\"temp\": 20}"},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
            ],
            "tools": [{"type": "function", "function": {"name": "w", "description": "weather",
                "parameters": {"type": "object", "$schema": "x", "properties": {"c": {"type": "string"}}}}}],
            "tool_choice": {"type": "function", "function": {"name": "w"}}
        }));
        assert_eq!(
            g["systemInstruction"],
            json!({"parts": [{"text": "be brief"}]})
        );
        let c = g["contents"].as_array().unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0]["role"], "user");
        assert_eq!(
            c[0]["parts"][1],
            json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}})
        );
        assert_eq!(
            c[0]["parts"][2],
            json!({"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/cat.JPG?x=1"}})
        );
        assert_eq!(c[1]["role"], "model");
        assert_eq!(
            c[1]["parts"][0],
            json!({"functionCall": {"name": "w", "args": {"c": "SP"}}})
        );
        assert_eq!(c[2]["role"], "user");
        assert_eq!(
            c[2]["parts"][0],
            json!({"functionResponse": {"name": "w", "response": {"temp": 20}}})
        );
        assert_eq!(
            c[2]["parts"][1],
            json!({"functionResponse": {"name": "t", "response": {"content": "sunny"}}})
        );
        assert_eq!(
            g["tools"][0]["functionDeclarations"][0]["parameters"],
            json!({"type": "object", "properties": {"c": {"type": "string"}}})
        );
        assert_eq!(
            g["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["w"]}})
        );
        let gc = &g["generationConfig"];
        assert_eq!(gc["temperature"], 0.5);
        assert_eq!(gc["topP"], 0.9);
        assert_eq!(gc["maxOutputTokens"], 100);
        assert_eq!(gc["stopSequences"], json!(["END"]));
        assert_eq!(gc["candidateCount"], 2);
        assert_eq!(gc["seed"], 7);
        assert_eq!(gc["presencePenalty"], 0.1);
        assert_eq!(gc["frequencyPenalty"], 0.2);
        assert_eq!(gc["responseMimeType"], "application/json");
        assert_eq!(
            gc["responseSchema"],
            json!({"type": "object", "properties": {
            "a": {"type": "string", "nullable": true}, "b": {"enum": ["k"]}}, "required": ["a"]})
        );
    }

    #[test]
    fn untranslatable_fields_are_400s_naming_them() {
        let m = json!([{"role": "user", "content": "hi"}]);
        assert!(err(json!({"messages": m, "logprobs": true})).starts_with("logprobs:"));
        assert!(err(json!({"messages": m, "logit_bias": {"1": 2}})).starts_with("logit_bias:"));
        assert!(
            err(json!({"messages": m, "parallel_tool_calls": false}))
                .starts_with("parallel_tool_calls:")
        );
        assert!(err(json!({"messages": m, "n": 9})).starts_with("n:"));
        assert!(err(json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}))
            .starts_with("messages[0].content[0].type:"));
        assert!(err(json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y"}}]}]}))
            .starts_with("messages[0].content[0].image_url.url:"));
        assert!(
            err(json!({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}))
                .starts_with("messages[0].tool_call_id:")
        );
        assert!(
            err(
                json!({"messages": m, "tools": [{"type": "function", "function": {"name": "f",
            "parameters": {"type": "object", "properties": {"a": {"$ref": "#/x"}}}}}]})
            )
            .starts_with("tools[0].function.parameters.properties.a.$ref:")
        );
        assert!(err(json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "[1]"}}]}]}))
            .starts_with("messages[0].tool_calls[0].function.arguments:"));
        // a deep schema is refused, not recursed into forever
        let mut s = json!({"type": "string"});
        for _ in 0..100 {
            s = json!({"type": "array", "items": s});
        }
        assert!(err(json!({"messages": m, "response_format": {"type": "json_schema", "json_schema": {"schema": s}}}))
            .contains("nested too deeply"));
    }

    #[test]
    fn answer_with_text_tool_calls_and_usage() {
        let body = json!({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "thinking…", "thought": true}, {"text": "Olá"},
            {"functionCall": {"name": "w", "args": {"c": "SP"}}}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 3,
                "cachedContentTokenCount": 4, "totalTokenCount": 18}});
        let (out, u) = chat_answer(body.to_string().as_bytes(), &meta(false)).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], "chatcmpl-r1");
        assert_eq!(v["model"], "pub-model");
        assert_eq!(v["choices"][0]["message"]["content"], "Olá");
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0],
            json!({"id": "call_0", "type": "function",
            "function": {"name": "w", "arguments": "{\"c\":\"SP\"}"}})
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["usage"]["prompt_tokens"], 10);
        assert_eq!(v["usage"]["completion_tokens"], 8);
        assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
        let u = u.unwrap();
        assert_eq!(
            (
                u.prompt_tokens,
                u.completion_tokens,
                u.cached_tokens,
                u.reasoning_tokens
            ),
            (10, 8, 4, 3)
        );
    }

    #[test]
    fn finish_reasons_blocks_and_absurd_usage() {
        for (g, o) in [
            ("STOP", "stop"),
            ("MAX_TOKENS", "length"),
            ("SAFETY", "content_filter"),
            ("RECITATION", "content_filter"),
            ("SPII", "content_filter"),
            ("OTHER", "stop"),
        ] {
            let b =
                json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": g}]});
            let (out, _) = chat_answer(b.to_string().as_bytes(), &meta(false)).unwrap();
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["choices"][0]["finish_reason"], o, "{g}");
        }
        let b = json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}});
        let (out, u) = chat_answer(b.to_string().as_bytes(), &meta(false)).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(u.unwrap().prompt_tokens, 3);
        for usage in [
            r#"{"promptTokenCount": 9223372036854775808}"#,
            r#"{"promptTokenCount": 1e30}"#,
            r#"{"promptTokenCount": -1}"#,
            r#"{"promptTokenCount": 5, "cachedContentTokenCount": 6}"#,
            r#"{"candidatesTokenCount": 100000001}"#,
        ] {
            let b = format!(
                r#"{{"candidates": [{{"content": {{"parts": [{{"text": "x"}}]}}, "finishReason": "STOP"}}], "usageMetadata": {usage}}}"#
            );
            let (_, u) = chat_answer(b.as_bytes(), &meta(false)).unwrap();
            assert!(u.is_none(), "{usage}");
        }
        assert!(chat_answer(b"{\"candidates\": []}", &meta(false)).is_err());
        let deep = "[".repeat(100_000);
        assert!(chat_answer(deep.as_bytes(), &meta(false)).is_err());
    }

    const STREAM: &str = concat!(
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Olá\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 7,\"candidatesTokenCount\": 1}}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" do \\\"mock\\\" é\"}],\"role\": \"model\"},\"index\": 0}]}\r\n\r\n",
        ": a comment\n\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"w\", \"args\": {\"c\": \"São\"}}}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],",
        "\"usageMetadata\": {\"promptTokenCount\": 7,\"candidatesTokenCount\": 4,\"cachedContentTokenCount\": 2,\"thoughtsTokenCount\": 1,\"totalTokenCount\": 12}}\r\n\r\n",
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
        std::str::from_utf8(out)
            .unwrap()
            .split("\n\n")
            .filter(|e| !e.is_empty() && *e != "data: [DONE]")
            .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn stream_translates_text_calls_finish_and_usage() {
        let (out, u) = run(&[STREAM.as_bytes()], true);
        let out = out.unwrap();
        assert!(out.ends_with(b"data: [DONE]\n\n"));
        let ev = events(&out);
        assert_eq!(ev.len(), 5, "{ev:?}");
        assert_eq!(
            ev[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": "Olá"})
        );
        assert_eq!(ev[0]["id"], "chatcmpl-r1");
        assert_eq!(ev[0]["model"], "pub-model");
        assert_eq!(
            ev[1]["choices"][0]["delta"],
            json!({"content": " do \"mock\" é"})
        );
        assert_eq!(
            ev[2]["choices"][0]["delta"]["tool_calls"][0],
            json!({"index": 0, "id": "call_0",
            "type": "function", "function": {"name": "w", "arguments": "{\"c\": \"São\"}"}})
        );
        assert_eq!(ev[3]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(ev[4]["choices"], json!([]));
        assert_eq!(ev[4]["usage"]["prompt_tokens"], 7);
        assert_eq!(ev[4]["usage"]["completion_tokens"], 5);
        let u = u.unwrap();
        assert_eq!(
            (
                u.prompt_tokens,
                u.completion_tokens,
                u.cached_tokens,
                u.reasoning_tokens
            ),
            (7, 5, 2, 1)
        );
        // no usage chunk unless asked, usage still read
        let (out, u) = run(&[STREAM.as_bytes()], false);
        assert_eq!(events(&out.unwrap()).len(), 4);
        assert!(u.is_some());
    }

    #[test]
    fn hostile_streams_fail_cleanly() {
        // truncated (no finish reason), a truncated event, garbage, invalid UTF-8, deep JSON
        let first = STREAM.split("\r\n\r\n").next().unwrap();
        assert!(
            run(&[format!("{first}\r\n\r\n").as_bytes()], false)
                .0
                .is_err()
        );
        assert!(
            run(&[&STREAM.as_bytes()[..STREAM.len() - 10]], false)
                .0
                .is_err()
        );
        assert!(run(&[b"data: garbage\n\n"], false).0.is_err());
        assert!(run(&[b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\xff\xfe\"}]}}]}\n\n"], false).0.is_err());
        let deep = format!("data: {}\n\n", "[".repeat(100_000));
        assert!(matches!(
            run(&[deep.as_bytes()], false).0,
            Err(StreamError::Malformed(_))
        ));
        let huge = vec![b'x'; MAX_EVENT_BYTES + 1];
        assert_eq!(
            run(&[b"data: ", &huge], false).0,
            Err(StreamError::TooLarge)
        );
        let e = b"data: {\"error\": {\"code\": 500, \"message\": \"boom\", \"status\": \"INTERNAL\"}}\n\n";
        assert_eq!(
            run(&[e], false).0,
            Err(StreamError::Upstream("boom".into()))
        );
        // a 2^63 token count: the stream translates, the usage is not believed
        let s = STREAM.replace(
            "\"promptTokenCount\": 7,\"candidatesTokenCount\": 4",
            "\"promptTokenCount\": 9223372036854775808,\"candidatesTokenCount\": 4",
        );
        let (out, u) = run(&[s.as_bytes()], true);
        assert!(out.is_ok());
        assert!(u.is_none());
    }

    #[test]
    fn a_blocked_prompt_streams_a_content_filter_answer() {
        let s = b"data: {\"promptFeedback\": {\"blockReason\": \"SAFETY\"}, \"usageMetadata\": {\"promptTokenCount\": 9}}\r\n\r\n";
        let (out, u) = run(&[s], false);
        let ev = events(&out.unwrap());
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0]["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(
            ev[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(u.unwrap().prompt_tokens, 9);
    }

    #[test]
    fn errors_map_to_openai() {
        let b = br#"{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}"#;
        let (s, body) = error_answer(400, b);
        assert_eq!(s, 401);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["type"], "authentication_error");
        for (st, code, want) in [
            ("INVALID_ARGUMENT", 400, 400),
            ("PERMISSION_DENIED", 403, 403),
            ("NOT_FOUND", 404, 404),
            ("RESOURCE_EXHAUSTED", 429, 429),
            ("INTERNAL", 500, 500),
            ("UNAVAILABLE", 503, 503),
            ("UNAUTHENTICATED", 401, 401),
        ] {
            let b = json!({"error": {"code": code, "message": "m", "status": st}}).to_string();
            let (s, body) = error_answer(code, b.as_bytes());
            assert_eq!(s, want, "{st}");
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert!(v["error"]["message"].as_str().unwrap().starts_with('m'));
        }
        let (s, body) = error_answer(502, b"<html>bad gateway</html>");
        assert_eq!(s, 502);
        assert!(serde_json::from_slice::<Value>(&body).is_ok());
    }

    #[test]
    fn embeddings_both_ways() {
        let r: Value = serde_json::from_slice(
            &embeddings_request(
                &json!({"model": "e", "input": ["a b", "c"], "dimensions": 4}),
                "text-embedding-004",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            r["requests"][1],
            json!({"model": "models/text-embedding-004", "content": {"parts": [{"text": "c"}]}, "outputDimensionality": 4})
        );
        assert!(embeddings_request(&json!({"input": [[1, 2]]}), "e").is_err());
        let body = br#"{"embeddings": [{"values": [0.5, -0.25]}, {"values": [1, 0]}]}"#;
        let (out, u) = embeddings_answer(body, &meta(false)).unwrap();
        assert!(u.is_none());
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["data"][0]["embedding"], json!([0.5, -0.25]));
        assert_eq!(v["data"][1]["index"], 1);
        assert_eq!(v["model"], "pub-model");
        let mut m = meta(false);
        m.base64 = true;
        let (out, _) = embeddings_answer(body, &m).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            raw,
            [0.5f32.to_le_bytes(), (-0.25f32).to_le_bytes()].concat()
        );
        assert!(
            embeddings_answer(br#"{"embeddings": [{"values": ["x"]}]}"#, &meta(false)).is_err()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Two or three pieces at any split points give exactly the whole stream's output.
        #[test]
        fn any_split_gives_the_same_output(a in 0usize..=STREAM.len(), b in 0usize..=STREAM.len()) {
            let bytes = STREAM.as_bytes();
            let whole = run(&[bytes], true).0.unwrap();
            let (x, y) = (a.min(b), a.max(b));
            prop_assert_eq!(&run(&[&bytes[..a], &bytes[a..]], true).0.unwrap(), &whole);
            prop_assert_eq!(&run(&[&bytes[..x], &bytes[x..y], &bytes[y..]], true).0.unwrap(), &whole);
        }
    }

    #[test]
    fn every_two_piece_split_gives_the_same_output() {
        let bytes = STREAM.as_bytes();
        let whole = run(&[bytes], true).0.unwrap();
        for i in 0..=bytes.len() {
            assert_eq!(
                run(&[&bytes[..i], &bytes[i..]], true).0.unwrap(),
                whole,
                "split at {i}"
            );
        }
    }
}
