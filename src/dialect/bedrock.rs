//! Amazon Bedrock's Converse API as a provider: OpenAI chat requests become `Converse` /
//! `ConverseStream` bodies, embeddings requests become Titan text-embeddings `InvokeModel`
//! bodies, and every request is signed with SigV4 (the `aws-sigv4` crate) over its final body.
//!
//! Answers come back as OpenAI's: a whole `Converse` answer by [`chat_answer`], a
//! `ConverseStream` answer (`application/vnd.amazon.eventstream`: binary frames, each a
//! prelude, headers, a JSON payload and CRCs) frame by frame by [`Decoder`], which checks
//! the framing and CRCs with `aws-smithy-eventstream` and turns each completed frame into
//! OpenAI `chat.completion.chunk` events at once, whatever the byte split.
//!
//! Choices made where the dialects differ (each documented in README, "Bedrock"):
//! - `response_format` `json_object` / `json_schema`: Converse has no JSON mode, so the
//!   request gets one extra tool, [`JSON_TOOL`], whose input schema is the asked schema
//!   (`{"type":"object"}` for `json_object`), and the tool is forced; the answer's call of
//!   that tool comes back as the message's `content` (the JSON text) with `finish_reason`
//!   `stop`. With the client's own tools as well it is a 400 (the forced tool would hide them).
//! - Images: Bedrock takes bytes only, so `data:` URLs (png, jpeg, gif, webp) are sent and an
//!   `http(s)` URL is a 400 naming the part (fetching it would make the gateway a proxy).
//! - What Converse cannot express is a 400 naming the field: `n > 1`, `logprobs`,
//!   `top_logprobs`, non-zero `presence_penalty` / `frequency_penalty`, `logit_bias`, `seed`,
//!   `reasoning_effort`, audio in or out, `tool_choice: "none"` with tool calls in the history.
//!   `user`, `metadata`, `store`, `parallel_tool_calls`, `stream_options` and messages' `name`
//!   are not generation parameters and are not sent.
//! - Embeddings: Titan text embeddings take one input a call, so a request with several inputs
//!   (or token arrays) is a 400 naming `input`.

use std::borrow::Cow;
use std::time::SystemTime;

use aws_smithy_eventstream::frame::read_message_from;
use aws_smithy_types::event_stream::{HeaderValue, Message};
use base64::Engine as _;
use bytes::{BufMut, BytesMut};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Answer, Meta, Op, StreamDecoder, StreamError};
use crate::error::ApiError;
use crate::sse::{MAX_REPORTED_TOKENS, Usage};

/// The tool a `response_format` JSON request is answered through (see the module docs).
pub const JSON_TOOL: &str = "catraca_json_answer";

/// The largest event-stream frame believed (Bedrock's are a few KiB; the format's own limit
/// is 16 MiB): a prelude announcing more is [`StreamError::TooLarge`] before it is buffered.
pub const MAX_FRAME: usize = 1 << 20;

// ---------------------------------------------------------------------------------------
// Paths and signing
// ---------------------------------------------------------------------------------------

/// The upstream path of `op`: `/model/{modelId}/converse`, `/model/{modelId}/converse-stream`
/// or `/model/{modelId}/invoke` (embeddings), the model id percent-encoded as one path segment
/// (`:` → `%3A`, `/` of an ARN → `%2F`), as Bedrock's SDKs send it.
pub fn path(op: Op, upstream_model: &str, stream: bool) -> String {
    let mut p = String::with_capacity(upstream_model.len() * 3 + 24);
    p.push_str("/model/");
    encode_segment(upstream_model, &mut p);
    p.push_str(match (op, stream) {
        (Op::Embeddings, _) => "/invoke",
        (Op::Chat, false) => "/converse",
        (Op::Chat, true) => "/converse-stream",
    });
    p
}

/// Percent-encodes every byte but RFC 3986's unreserved ones.
fn encode_segment(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// AWS credentials for SigV4 (never printed).
#[derive(Clone)]
pub struct Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token of temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// A Bedrock provider's region and credentials.
#[derive(Debug, Clone)]
pub struct Aws {
    /// Region, e.g. `us-east-1` (the signing scope's).
    pub region: String,
    /// Credentials.
    pub credentials: Credentials,
}

/// The SigV4 headers (`authorization`, `x-amz-date`, `x-amz-content-sha256`,
/// `x-amz-security-token` with temporary credentials) for one request to Bedrock: service
/// `bedrock`, the provider's region, signed over `host`, the method, `path_and_query` (as it
/// goes on the wire, already percent-encoded; the canonical URI encodes it once more, as for
/// every AWS service but S3) and the SHA-256 of `body`.
///
/// Empty when the request cannot be signed (a path or host that is no URI, which the gateway
/// never builds): the upstream then answers 403, translated to the client.
pub fn sign(
    aws: &Aws,
    method: &str,
    host: &str,
    path_and_query: &str,
    body: &[u8],
    now: SystemTime,
) -> Vec<(&'static str, String)> {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
    };
    let identity = aws_credential_types::Credentials::new(
        aws.credentials.access_key_id.clone(),
        aws.credentials.secret_access_key.clone(),
        aws.credentials.session_token.clone(),
        None,
        "catraca",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = match aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&aws.region)
        .name("bedrock")
        .time(now)
        .settings(settings)
        .build()
    {
        Ok(p) => aws_sigv4::http_request::SigningParams::from(p),
        Err(e) => {
            tracing::warn!(error = %e, "bedrock: signing parameters");
            return Vec::new();
        }
    };
    let uri = format!("https://{host}{path_and_query}");
    let headers = [("host", host)];
    let signed = SignableRequest::new(method, uri, headers.into_iter(), SignableBody::Bytes(body))
        .and_then(|req| aws_sigv4::http_request::sign(req, &params));
    match signed {
        Ok(out) => out
            .output()
            .headers()
            .filter_map(|(name, value)| {
                let name: &'static str = match name {
                    "authorization" => "authorization",
                    "x-amz-date" => "x-amz-date",
                    "x-amz-content-sha256" => "x-amz-content-sha256",
                    "x-amz-security-token" => "x-amz-security-token",
                    _ => return None,
                };
                Some((name, value.to_owned()))
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "bedrock: signing failed");
            Vec::new()
        }
    }
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

fn bad(field: impl std::fmt::Display, why: &str) -> ApiError {
    ApiError::InvalidRequest(format!("{field}: {why}"))
}

/// A field Converse has no way to express, when present with a value that matters.
fn refuse_unless_default(req: &Map<String, Value>) -> Result<(), ApiError> {
    let set = |k: &str| req.get(k).filter(|v| !v.is_null());
    if let Some(n) = set("n")
        && n.as_u64() != Some(1)
    {
        return Err(bad("n", "Bedrock returns one choice; n must be 1"));
    }
    if set("logprobs").is_some_and(|v| v != &Value::Bool(false)) {
        return Err(bad(
            "logprobs",
            "Bedrock's Converse API has no log probabilities",
        ));
    }
    if set("top_logprobs").is_some() {
        return Err(bad(
            "top_logprobs",
            "Bedrock's Converse API has no log probabilities",
        ));
    }
    for k in ["presence_penalty", "frequency_penalty"] {
        if set(k).is_some_and(|v| v.as_f64() != Some(0.0)) {
            return Err(bad(k, "Bedrock's Converse API has no penalties"));
        }
    }
    if set("logit_bias").is_some_and(|v| v.as_object().is_none_or(|m| !m.is_empty())) {
        return Err(bad(
            "logit_bias",
            "Bedrock's Converse API has no logit bias",
        ));
    }
    if set("seed").is_some() {
        return Err(bad("seed", "Bedrock's Converse API has no seed"));
    }
    if set("reasoning_effort").is_some() {
        return Err(bad("reasoning_effort", "not translated for Bedrock"));
    }
    if set("audio").is_some() {
        return Err(bad("audio", "Bedrock's Converse API has no audio output"));
    }
    if let Some(m) = set("modalities")
        && m.as_array().is_none_or(|a| a.iter().any(|x| x != "text"))
    {
        return Err(bad(
            "modalities",
            "Bedrock's Converse API answers text only",
        ));
    }
    Ok(())
}

/// An OpenAI chat request as a Converse body (the model goes in the path, not the body).
pub fn chat_request(req: &Value) -> Result<Vec<u8>, ApiError> {
    let req = req
        .as_object()
        .ok_or_else(|| ApiError::InvalidRequest("the body must be a JSON object".into()))?;
    refuse_unless_default(req)?;

    let msgs = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("messages", "must be an array"))?;
    let mut system: Vec<Value> = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    let mut has_tool_blocks = false;
    for (i, m) in msgs.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let (role, blocks) = match role {
            "system" | "developer" => {
                for text in text_parts(m.get("content"), i)? {
                    system.push(json!({ "text": text }));
                }
                continue;
            }
            "user" => ("user", user_blocks(m.get("content"), i)?),
            "assistant" => {
                let mut blocks: Vec<Value> = text_parts(m.get("content"), i)?
                    .into_iter()
                    .map(|t| json!({ "text": t }))
                    .collect();
                if let Some(calls) = m.get("tool_calls").filter(|v| !v.is_null()) {
                    let calls = calls.as_array().ok_or_else(|| {
                        bad(format!("messages[{i}].tool_calls"), "must be an array")
                    })?;
                    for (j, c) in calls.iter().enumerate() {
                        blocks.push(tool_use_block(c, i, j)?);
                        has_tool_blocks = true;
                    }
                }
                if m.get("function_call").is_some_and(|v| !v.is_null()) {
                    return Err(bad(
                        format!("messages[{i}].function_call"),
                        "the legacy function_call is not translated; use tool_calls",
                    ));
                }
                ("assistant", blocks)
            }
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        bad(format!("messages[{i}].tool_call_id"), "must be a string")
                    })?;
                let content: Vec<Value> = text_parts(m.get("content"), i)?
                    .into_iter()
                    .map(|t| json!({ "text": t }))
                    .collect();
                has_tool_blocks = true;
                (
                    "user",
                    vec![json!({ "toolResult": { "toolUseId": id, "content": content } })],
                )
            }
            "function" => {
                return Err(bad(
                    format!("messages[{i}].role"),
                    "the legacy function role is not translated; use tool",
                ));
            }
            _ => return Err(bad(format!("messages[{i}].role"), "unknown role")),
        };
        if blocks.is_empty() {
            continue;
        }
        // Converse wants alternating turns: consecutive messages of one role (tool results and
        // the user's next words, say) are one turn.
        match messages.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(c) = last["content"].as_array_mut() {
                    c.extend(blocks);
                }
            }
            _ => messages.push(json!({ "role": role, "content": blocks })),
        }
    }
    if messages.is_empty() {
        return Err(bad(
            "messages",
            "needs at least one user or assistant message",
        ));
    }

    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }

    let mut inference = Map::new();
    let max = req
        .get("max_completion_tokens")
        .filter(|v| !v.is_null())
        .map(|v| ("max_completion_tokens", v))
        .or_else(|| {
            req.get("max_tokens")
                .filter(|v| !v.is_null())
                .map(|v| ("max_tokens", v))
        });
    if let Some((k, v)) = max {
        let n = v
            .as_u64()
            .filter(|n| (1..=u64::from(u32::MAX)).contains(n))
            .ok_or_else(|| bad(k, "must be a positive integer"))?;
        inference.insert("maxTokens".into(), n.into());
    }
    for (k, to) in [("temperature", "temperature"), ("top_p", "topP")] {
        if let Some(v) = req.get(k).filter(|v| !v.is_null()) {
            let x = v.as_f64().ok_or_else(|| bad(k, "must be a number"))?;
            inference.insert(to.into(), json!(x));
        }
    }
    match req.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            inference.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            if a.iter().any(|s| !s.is_string()) {
                return Err(bad("stop", "must be a string or an array of strings"));
            }
            if !a.is_empty() {
                inference.insert("stopSequences".into(), Value::Array(a.clone()));
            }
        }
        Some(_) => return Err(bad("stop", "must be a string or an array of strings")),
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }

    let mut tools: Vec<Value> = Vec::new();
    if let Some(ts) = req.get("tools").filter(|v| !v.is_null()) {
        let ts = ts
            .as_array()
            .ok_or_else(|| bad("tools", "must be an array"))?;
        for (j, t) in ts.iter().enumerate() {
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(bad(
                    format!("tools[{j}].type"),
                    "only function tools are translated",
                ));
            }
            let f = t
                .get("function")
                .ok_or_else(|| bad(format!("tools[{j}].function"), "missing"))?;
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("tools[{j}].function.name"), "must be a string"))?;
            if name == JSON_TOOL {
                return Err(bad(
                    format!("tools[{j}].function.name"),
                    "reserved by the gateway",
                ));
            }
            let schema = f
                .get("parameters")
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
            let mut spec = Map::new();
            spec.insert("name".into(), name.into());
            if let Some(d) = f.get("description").and_then(Value::as_str) {
                spec.insert("description".into(), d.into());
            }
            spec.insert("inputSchema".into(), json!({ "json": schema }));
            tools.push(json!({ "toolSpec": spec }));
        }
    }
    let mut choice: Option<Value> = None;
    match req.get("tool_choice") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "auto" => choice = Some(json!({ "auto": {} })),
        Some(Value::String(s)) if s == "required" => choice = Some(json!({ "any": {} })),
        Some(Value::String(s)) if s == "none" => {
            if has_tool_blocks {
                return Err(bad(
                    "tool_choice",
                    "\"none\" cannot be expressed on Bedrock when the conversation has tool calls",
                ));
            }
            tools.clear();
        }
        Some(v) => {
            let name = v
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .filter(|_| v.get("type").and_then(Value::as_str) == Some("function"))
                .ok_or_else(|| bad("tool_choice", "must be auto, required, none or a function"))?;
            choice = Some(json!({ "tool": { "name": name } }));
        }
    }

    if let Some(rf) = req.get("response_format").filter(|v| !v.is_null()) {
        let schema = match rf.get("type").and_then(Value::as_str) {
            Some("text") => None,
            Some("json_object") => Some(json!({ "type": "object" })),
            Some("json_schema") => Some(
                rf.get("json_schema")
                    .and_then(|s| s.get("schema"))
                    .filter(|s| s.is_object())
                    .cloned()
                    .ok_or_else(|| {
                        bad("response_format.json_schema.schema", "must be an object")
                    })?,
            ),
            _ => {
                return Err(bad(
                    "response_format.type",
                    "must be text, json_object or json_schema",
                ));
            }
        };
        if let Some(schema) = schema {
            if !tools.is_empty() {
                return Err(bad(
                    "response_format",
                    "a JSON answer together with tools is not translated for Bedrock",
                ));
            }
            tools.push(json!({ "toolSpec": {
                "name": JSON_TOOL,
                "description": "Answer with this tool: its input is the whole answer.",
                "inputSchema": { "json": schema },
            }}));
            choice = Some(json!({ "tool": { "name": JSON_TOOL } }));
        }
    }
    if !tools.is_empty() {
        let mut tc = Map::new();
        tc.insert("tools".into(), Value::Array(tools));
        if let Some(c) = choice {
            tc.insert("toolChoice".into(), c);
        }
        body.insert("toolConfig".into(), Value::Object(tc));
    } else if has_tool_blocks {
        return Err(bad(
            "tools",
            "Bedrock needs the tools' definitions when the conversation has tool calls",
        ));
    }
    serde_json::to_vec(&body).map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

/// The texts of a `content` that may be a string, null, or an array of text parts.
fn text_parts(content: Option<&Value>, i: usize) -> Result<Vec<&str>, ApiError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let t = p.get("text").and_then(Value::as_str).ok_or_else(|| {
                            bad(
                                format!("messages[{i}].content[{j}].text"),
                                "must be a string",
                            )
                        })?;
                        if !t.is_empty() {
                            out.push(t);
                        }
                    }
                    _ => {
                        return Err(bad(
                            format!("messages[{i}].content[{j}].type"),
                            "only text parts are translated here for Bedrock",
                        ));
                    }
                }
            }
            Ok(out)
        }
        Some(_) => Err(bad(
            format!("messages[{i}].content"),
            "must be a string or an array",
        )),
    }
}

/// A user message's content as Converse blocks (text and images).
fn user_blocks(content: Option<&Value>, i: usize) -> Result<Vec<Value>, ApiError> {
    let Some(Value::Array(parts)) = content else {
        return Ok(text_parts(content, i)?
            .into_iter()
            .map(|t| json!({ "text": t }))
            .collect());
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        match p.get("type").and_then(Value::as_str) {
            Some("text") => {
                let t = p.get("text").and_then(Value::as_str).ok_or_else(|| {
                    bad(
                        format!("messages[{i}].content[{j}].text"),
                        "must be a string",
                    )
                })?;
                if !t.is_empty() {
                    out.push(json!({ "text": t }));
                }
            }
            Some("image_url") => {
                let field = format!("messages[{i}].content[{j}].image_url.url");
                let url = p
                    .get("image_url")
                    .and_then(|u| u.get("url"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(&field, "must be a string"))?;
                let (format, data) = data_url(url).map_err(|why| bad(&field, why))?;
                out.push(json!({ "image": { "format": format, "source": { "bytes": data } } }));
            }
            Some(other) => {
                return Err(ApiError::InvalidRequest(format!(
                    "messages[{i}].content[{j}].type: {other} parts are not translated for Bedrock"
                )));
            }
            None => return Err(bad(format!("messages[{i}].content[{j}].type"), "missing")),
        }
    }
    Ok(out)
}

/// A `data:image/…;base64,…` URL's Converse image format and its base64 text.
fn data_url(url: &str) -> Result<(&'static str, &str), &'static str> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Err("Bedrock takes image bytes only: send the image as a data: URL");
    };
    let (head, data) = rest.split_once(',').ok_or("a data: URL needs a comma")?;
    let mime = head
        .strip_suffix(";base64")
        .ok_or("only base64 data: URLs are translated")?;
    let format = match mime.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return Err("Bedrock takes png, jpeg, gif or webp images"),
    };
    if data.is_empty()
        || !data
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return Err("the data: URL's base64 is not valid");
    }
    Ok((format, data))
}

/// An OpenAI assistant tool call as a Converse `toolUse` block.
fn tool_use_block(c: &Value, i: usize, j: usize) -> Result<Value, ApiError> {
    let at = |f: &str| format!("messages[{i}].tool_calls[{j}].{f}");
    let id = c
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(at("id"), "must be a string"))?;
    let f = c
        .get("function")
        .ok_or_else(|| bad(at("function"), "missing"))?;
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(at("function.name"), "must be a string"))?;
    let args = f.get("arguments").and_then(Value::as_str).unwrap_or("{}");
    let input: Value = if args.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(args)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| {
                bad(
                    at("function.arguments"),
                    "must be a JSON object for Bedrock",
                )
            })?
    };
    Ok(json!({ "toolUse": { "toolUseId": id, "name": name, "input": input } }))
}

/// An OpenAI embeddings request as a Titan text-embeddings body (`inputText`, `dimensions`).
pub fn embeddings_request(req: &Value) -> Result<Vec<u8>, ApiError> {
    let one_input = "Bedrock's Titan embeddings take one text per request";
    let text = match req.get("input") {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => a[0].as_str().unwrap_or(""),
        Some(Value::Array(a)) if a.len() > 1 && a.iter().all(Value::is_string) => {
            return Err(bad("input", one_input));
        }
        Some(Value::Array(_)) => {
            return Err(bad(
                "input",
                "token arrays are not translated for Bedrock; send text",
            ));
        }
        _ => return Err(bad("input", "must be a string")),
    };
    if text.is_empty() {
        return Err(bad("input", "must not be empty"));
    }
    let mut body = Map::new();
    body.insert("inputText".into(), text.into());
    if let Some(d) = req.get("dimensions").filter(|v| !v.is_null()) {
        let d = d
            .as_u64()
            .filter(|d| (1..=65_536).contains(d))
            .ok_or_else(|| bad("dimensions", "must be a positive integer"))?;
        body.insert("dimensions".into(), d.into());
    }
    serde_json::to_vec(&body).map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

// ---------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------

/// Converse `usage` normalised (see [`Usage`]): `inputTokens` leaves out cache reads and
/// writes, so `prompt_tokens` adds them. `None` when a count is missing, not an integer, or
/// past [`MAX_REPORTED_TOKENS`].
pub fn usage_from(u: &Value) -> Option<Usage> {
    let n = |k: &str, required: bool| match u.get(k) {
        None | Some(Value::Null) if !required => Some(0),
        Some(v) => v.as_u64().filter(|n| *n <= MAX_REPORTED_TOKENS),
        None => None,
    };
    let input = n("inputTokens", true)?;
    let output = n("outputTokens", true)?;
    let read = n("cacheReadInputTokens", false)?;
    let write = n("cacheWriteInputTokens", false)?;
    // each is at most 1e8: no overflow
    let prompt = input + read + write;
    if prompt > MAX_REPORTED_TOKENS {
        return None;
    }
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: output,
        cached_tokens: read,
        cache_write_tokens: write,
        reasoning_tokens: 0,
    })
}

/// OpenAI's `usage` object for `u`.
fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": { "cached_tokens": u.cached_tokens },
        "completion_tokens_details": { "reasoning_tokens": u.reasoning_tokens },
    })
}

/// Converse's `stopReason` as OpenAI's `finish_reason`.
fn finish_reason(stop: &str, json_answer: bool) -> &'static str {
    match stop {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" if json_answer => "stop",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    }
}

/// The whole Converse answer as OpenAI's `chat.completion`.
pub fn chat_answer(body: &[u8], meta: &Meta) -> Result<Answer, StreamError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| StreamError::Malformed("answer is not JSON"))?;
    let blocks = v
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .ok_or(StreamError::Malformed(
            "answer has no output.message.content",
        ))?;
    let mut content: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut calls: Vec<Value> = Vec::new();
    let mut json_answer = false;
    for b in blocks {
        if let Some(t) = b.get("text").and_then(Value::as_str) {
            content.get_or_insert_with(String::new).push_str(t);
        } else if let Some(tu) = b.get("toolUse") {
            let name = tu.get("name").and_then(Value::as_str).unwrap_or("");
            let input = tu.get("input").cloned().unwrap_or_else(|| json!({}));
            let args = serde_json::to_string(&input)
                .map_err(|_| StreamError::Malformed("toolUse input"))?;
            if name == JSON_TOOL {
                json_answer = true;
                content.get_or_insert_with(String::new).push_str(&args);
            } else {
                calls.push(json!({
                    "id": tu.get("toolUseId").and_then(Value::as_str).unwrap_or(""),
                    "type": "function",
                    "function": { "name": name, "arguments": args },
                }));
            }
        } else if let Some(t) = b
            .pointer("/reasoningContent/reasoningText/text")
            .and_then(Value::as_str)
        {
            reasoning.get_or_insert_with(String::new).push_str(t);
        }
    }
    let stop = v
        .get("stopReason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let usage = v.get("usage").and_then(usage_from);
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    message.insert("content".into(), content.map_or(Value::Null, Value::String));
    if let Some(r) = reasoning {
        message.insert("reasoning_content".into(), r.into());
    }
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
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
            "finish_reason": finish_reason(stop, json_answer),
        }],
    });
    if let Some(u) = &usage {
        out["usage"] = usage_json(u);
    }
    let bytes = serde_json::to_vec(&out).map_err(|_| StreamError::Malformed("answer"))?;
    Ok((bytes, usage))
}

/// Titan's embeddings answer (`{"embedding": [...], "inputTextTokenCount": n}`) as OpenAI's
/// `list` of one embedding (base64 of little-endian f32s when the client asked for base64).
pub fn embeddings_answer(body: &[u8], meta: &Meta) -> Result<Answer, StreamError> {
    #[derive(Deserialize)]
    struct Titan {
        embedding: Vec<f64>,
        #[serde(rename = "inputTextTokenCount")]
        tokens: Option<Value>,
    }
    let t: Titan = serde_json::from_slice(body)
        .map_err(|_| StreamError::Malformed("embeddings answer is not Titan's"))?;
    let usage = t
        .tokens
        .and_then(|n| n.as_u64())
        .filter(|n| *n <= MAX_REPORTED_TOKENS)
        .map(|n| Usage {
            prompt_tokens: n,
            ..Usage::default()
        });
    let embedding = if meta.base64 {
        let mut raw = Vec::with_capacity(t.embedding.len() * 4);
        for x in &t.embedding {
            raw.extend_from_slice(&(*x as f32).to_le_bytes());
        }
        Value::String(base64::engine::general_purpose::STANDARD.encode(raw))
    } else {
        json!(t.embedding)
    };
    let n = usage.as_ref().map_or(0, |u| u.prompt_tokens);
    let out = json!({
        "object": "list",
        "data": [{ "object": "embedding", "index": 0, "embedding": embedding }],
        "model": &*meta.model,
        "usage": { "prompt_tokens": n, "total_tokens": n },
    });
    let bytes = serde_json::to_vec(&out).map_err(|_| StreamError::Malformed("answer"))?;
    Ok((bytes, usage))
}

/// The status the client gets for Bedrock's error `status` whose `x-amzn-errortype` header
/// (`ValidationException:http://…`) is `error_type`: a signature or key AWS rejects
/// (`UnrecognizedClientException`, `InvalidSignatureException`, a missing or incomplete
/// signature; 403 at AWS) is the gateway's credentials being wrong, OpenAI's 401; the rest
/// keep their status.
pub fn error_status(status: u16, error_type: Option<&str>) -> u16 {
    let t = error_type.map_or("", |t| t.split(':').next().unwrap_or(t));
    match t {
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "MissingAuthenticationTokenException"
        | "IncompleteSignatureException" => 401,
        _ => status,
    }
}

/// Bedrock's error answer (`{"message": …}`, the type in the `x-amzn-errortype` header or,
/// from some front ends, `__type` in the body) as OpenAI's shape and status. Bedrock answers
/// a bad signature or unknown key with 403 (`UnrecognizedClientException`,
/// `InvalidSignatureException`); that is the gateway's credentials being wrong, so it goes
/// out as 401 `authentication_error`, as OpenAI says it. Other statuses are kept.
pub fn error_answer(status: u16, body: &[u8]) -> (u16, Vec<u8>) {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = v
        .get("message")
        .or_else(|| v.get("Message"))
        .and_then(Value::as_str)
        .map(|m| m.chars().take(2000).collect::<String>())
        .unwrap_or_else(|| format!("Bedrock answered {status}"));
    let aws_type = v
        .get("__type")
        .and_then(Value::as_str)
        .map(|t| {
            t.rsplit('#')
                .next()
                .unwrap_or(t)
                .split(':')
                .next()
                .unwrap_or(t)
        })
        .unwrap_or("");
    let lower = message.to_ascii_lowercase();
    let credentials = aws_type == "UnrecognizedClientException"
        || aws_type == "InvalidSignatureException"
        || (status == 403
            && (lower.contains("signature")
                || lower.contains("security token")
                || lower.contains("authentication token")));
    let (status, kind, code) = match status {
        _ if credentials => (401, "authentication_error", "invalid_api_key"),
        400 => (400, "invalid_request_error", "invalid_request"),
        401 => (401, "authentication_error", "invalid_api_key"),
        403 => (403, "permission_error", "access_denied"),
        404 => (404, "not_found_error", "model_not_found"),
        413 => (413, "invalid_request_error", "request_too_large"),
        422 => (422, "invalid_request_error", "invalid_request"),
        429 => (429, "rate_limit_error", "rate_limit_exceeded"),
        s if s >= 500 => (s, "api_error", "upstream_error"),
        s => (s, "invalid_request_error", "invalid_request"),
    };
    let out = json!({ "error": { "message": message, "type": kind, "param": null, "code": code } });
    (status, serde_json::to_vec(&out).unwrap_or_default())
}

// ---------------------------------------------------------------------------------------
// ConverseStream
// ---------------------------------------------------------------------------------------

/// The ConverseStream decoder: binary event-stream frames in, OpenAI SSE chunks out, one
/// frame at a time as each completes (a frame split anywhere waits in a small buffer).
pub struct Decoder {
    meta: Meta,
    /// `data: {"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[`
    head: Vec<u8>,
    /// Bytes of an incomplete frame.
    buf: BytesMut,
    /// contentBlockIndex → OpenAI tool-call index, for tool-use blocks.
    tools: Vec<(u64, u64)>,
    /// The content block that carries a `response_format` JSON answer, if any.
    json_block: Option<u64>,
    usage: Option<Usage>,
    stopped: bool,
    failed: bool,
}

#[derive(Deserialize)]
struct BlockStart<'a> {
    #[serde(rename = "contentBlockIndex", default)]
    index: u64,
    #[serde(borrow, default)]
    start: Option<StartKind<'a>>,
}

#[derive(Deserialize)]
struct StartKind<'a> {
    #[serde(rename = "toolUse", borrow, default)]
    tool_use: Option<ToolStart<'a>>,
}

#[derive(Deserialize)]
struct ToolStart<'a> {
    #[serde(rename = "toolUseId", borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize)]
struct BlockDelta<'a> {
    #[serde(rename = "contentBlockIndex", default)]
    index: u64,
    #[serde(borrow)]
    delta: DeltaKind<'a>,
}

#[derive(Deserialize)]
struct DeltaKind<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(rename = "toolUse", borrow, default)]
    tool_use: Option<ToolDelta<'a>>,
    #[serde(rename = "reasoningContent", borrow, default)]
    reasoning: Option<ReasoningDelta<'a>>,
}

#[derive(Deserialize)]
struct ToolDelta<'a> {
    #[serde(borrow)]
    input: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ReasoningDelta<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct MessageStop<'a> {
    #[serde(rename = "stopReason", borrow)]
    stop_reason: Cow<'a, str>,
}

fn header_str<'m>(m: &'m Message, name: &str) -> Option<&'m str> {
    m.headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| match h.value() {
            HeaderValue::String(s) => Some(s.as_str()),
            _ => None,
        })
}

fn json_str(out: &mut BytesMut, s: &str) {
    // serializing a str into a growable buffer cannot fail
    let _ = serde_json::to_writer(out.writer(), s);
}

impl Decoder {
    /// A decoder for one answer.
    pub fn new(meta: Meta) -> Self {
        let mut head = meta.chunk_prefix();
        head.push(b'[');
        Decoder {
            meta,
            head,
            buf: BytesMut::new(),
            tools: Vec::new(),
            json_block: None,
            usage: None,
            stopped: false,
            failed: false,
        }
    }

    /// `head` + `{"index":0,"delta":` — the caller writes the delta's JSON, then [`Self::close`].
    fn open(&self, out: &mut BytesMut) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b"{\"index\":0,\"delta\":");
    }

    fn close(out: &mut BytesMut, finish: Option<&str>) {
        out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
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

    /// One complete frame.
    fn frame(&mut self, m: &Message, out: &mut BytesMut) -> Result<(), StreamError> {
        let payload = &m.payload()[..];
        match header_str(m, ":message-type") {
            Some("event") => {}
            Some("exception") => {
                let kind = header_str(m, ":exception-type").unwrap_or("exception");
                let msg = serde_json::from_slice::<Value>(payload)
                    .ok()
                    .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default();
                return Err(StreamError::Upstream(format!("{kind}: {msg}")));
            }
            Some("error") => {
                let code = header_str(m, ":error-code").unwrap_or("error");
                let msg = header_str(m, ":error-message").unwrap_or("");
                return Err(StreamError::Upstream(format!("{code}: {msg}")));
            }
            _ => {
                return Err(StreamError::Malformed(
                    "event-stream frame without :message-type",
                ));
            }
        }
        let bad = |_| StreamError::Malformed("event payload is not the expected JSON");
        match header_str(m, ":event-type") {
            Some("messageStart") => {
                self.open(out);
                out.extend_from_slice(br#"{"role":"assistant","content":""}"#);
                Self::close(out, None);
            }
            Some("contentBlockStart") => {
                let s: BlockStart<'_> = serde_json::from_slice(payload).map_err(bad)?;
                if let Some(t) = s.start.and_then(|k| k.tool_use) {
                    if t.name == JSON_TOOL {
                        self.json_block = Some(s.index);
                        return Ok(());
                    }
                    let k = self.tools.len() as u64;
                    self.tools.push((s.index, k));
                    self.open(out);
                    out.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                    out.extend_from_slice(itoa::Buffer::new().format(k).as_bytes());
                    out.extend_from_slice(b",\"id\":");
                    json_str(out, &t.id);
                    out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                    json_str(out, &t.name);
                    out.extend_from_slice(b",\"arguments\":\"\"}}]}");
                    Self::close(out, None);
                }
            }
            Some("contentBlockDelta") => {
                let d: BlockDelta<'_> = serde_json::from_slice(payload).map_err(bad)?;
                if let Some(t) = d.delta.text {
                    self.open(out);
                    out.extend_from_slice(b"{\"content\":");
                    json_str(out, &t);
                    out.put_u8(b'}');
                    Self::close(out, None);
                } else if let Some(tu) = d.delta.tool_use {
                    if self.json_block == Some(d.index) {
                        self.open(out);
                        out.extend_from_slice(b"{\"content\":");
                        json_str(out, &tu.input);
                        out.put_u8(b'}');
                        Self::close(out, None);
                    } else {
                        let k = self
                            .tools
                            .iter()
                            .find(|(b, _)| *b == d.index)
                            .map(|(_, k)| *k)
                            .ok_or(StreamError::Malformed("toolUse delta without its start"))?;
                        self.open(out);
                        out.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                        out.extend_from_slice(itoa::Buffer::new().format(k).as_bytes());
                        out.extend_from_slice(b",\"function\":{\"arguments\":");
                        json_str(out, &tu.input);
                        out.extend_from_slice(b"}}]}");
                        Self::close(out, None);
                    }
                } else if let Some(t) = d.delta.reasoning.and_then(|r| r.text) {
                    self.open(out);
                    out.extend_from_slice(b"{\"reasoning_content\":");
                    json_str(out, &t);
                    out.put_u8(b'}');
                    Self::close(out, None);
                }
            }
            Some("contentBlockStop") => {}
            Some("messageStop") => {
                let s: MessageStop<'_> = serde_json::from_slice(payload).map_err(bad)?;
                self.stopped = true;
                self.open(out);
                out.extend_from_slice(b"{}");
                Self::close(
                    out,
                    Some(finish_reason(&s.stop_reason, self.json_block.is_some())),
                );
            }
            Some("metadata") => {
                // A usage that cannot be read is no usage (the gateway counts), not an error.
                self.usage = serde_json::from_slice::<Value>(payload)
                    .ok()
                    .and_then(|v| v.get("usage").and_then(usage_from));
            }
            // Event types added later by AWS are skipped, as its SDKs do.
            _ => {}
        }
        Ok(())
    }

    /// Splits complete frames off the front of `self.buf` and translates them.
    fn drain(&mut self, out: &mut BytesMut) -> Result<(), StreamError> {
        loop {
            if self.buf.len() < 12 {
                return Ok(());
            }
            let total = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
            let prelude_crc =
                u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]]);
            if crc32fast::hash(&self.buf[..8]) != prelude_crc {
                return Err(StreamError::Malformed(
                    "event-stream prelude checksum mismatch",
                ));
            }
            let total = total as usize;
            if total > MAX_FRAME {
                return Err(StreamError::TooLarge);
            }
            if total < 16 {
                return Err(StreamError::Malformed("event-stream frame too short"));
            }
            if self.buf.len() < total {
                self.buf.reserve(total - self.buf.len());
                return Ok(());
            }
            let frame = self.buf.split_to(total).freeze();
            let m = read_message_from(frame)
                .map_err(|_| StreamError::Malformed("event-stream frame is not valid"))?;
            self.frame(&m, out)?;
        }
    }
}

impl StreamDecoder for Decoder {
    fn feed(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), StreamError> {
        if self.failed {
            return Err(StreamError::Malformed("event stream already failed"));
        }
        self.buf.extend_from_slice(input);
        let r = self.drain(out);
        if r.is_err() {
            self.failed = true;
            self.buf.clear();
        }
        r
    }

    fn finish(&mut self, out: &mut BytesMut) -> Result<(), StreamError> {
        if self.failed {
            return Err(StreamError::Malformed("event stream already failed"));
        }
        if !self.buf.is_empty() {
            return Err(StreamError::Malformed("event stream ended mid-frame"));
        }
        if !self.stopped {
            return Err(StreamError::Malformed(
                "event stream ended before messageStop",
            ));
        }
        if self.meta.include_usage
            && let Some(u) = &self.usage
        {
            out.extend_from_slice(&self.head);
            out.extend_from_slice(b"],\"usage\":");
            let _ = serde_json::to_writer(out.writer(), &usage_json(u));
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        Ok(())
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

/// One event-stream frame as Bedrock writes it (`:event-type`, `:content-type`
/// `application/json`, `:message-type` `event`) around `payload`: for the mock upstream, the
/// benches and the tests. `kind` `"exception"` makes an exception frame (`:exception-type`).
pub fn encode_frame(kind: &str, event_type: &str, payload: &[u8]) -> Vec<u8> {
    use aws_smithy_types::event_stream::Header;
    let type_header = if kind == "exception" {
        ":exception-type"
    } else {
        ":event-type"
    };
    let m = Message::new(bytes::Bytes::copy_from_slice(payload))
        .add_header(Header::new(
            type_header,
            HeaderValue::String(event_type.to_owned().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".to_owned().into()),
        ))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String(kind.to_owned().into()),
        ));
    let mut out = Vec::with_capacity(payload.len() + 96);
    // headers and payload are small: a frame that cannot be written is an empty one
    let _ = aws_smithy_eventstream::frame::write_message_to(&m, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn meta(include_usage: bool) -> Meta {
        Meta {
            id: "chatcmpl-r1".into(),
            model: Arc::from("pub-model"),
            created: 1_700_000_000,
            include_usage,
            base64: false,
        }
    }

    fn req(v: Value) -> Result<Value, String> {
        chat_request(&v)
            .map(|b| serde_json::from_slice(&b).unwrap_or(Value::Null))
            .map_err(|e| match e {
                ApiError::InvalidRequest(m) => m,
                other => format!("{other:?}"),
            })
    }

    #[test]
    fn paths_encode_the_model_id() {
        assert_eq!(
            path(Op::Chat, "anthropic.claude-3-haiku-20240307-v1:0", false),
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
        );
        assert_eq!(path(Op::Chat, "m", true), "/model/m/converse-stream");
        assert_eq!(
            path(Op::Embeddings, "arn:aws:bedrock:us-east-1::x/y", false),
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Ax%2Fy/invoke"
        );
    }

    #[test]
    fn chat_request_translates_system_images_tools_and_history() {
        let out = req(json!({
            "model": "x",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"q\":1}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
                {"role": "user", "content": "thanks"}
            ],
            "max_tokens": 50, "temperature": 0.5, "top_p": 0.9, "stop": "END",
            "tools": [{"type": "function", "function": {"name": "look", "description": "d",
                "parameters": {"type": "object", "properties": {"q": {"type": "integer"}}}}}],
            "tool_choice": "required"
        }))
        .unwrap_or(Value::Null);
        assert_eq!(out["system"], json!([{"text": "be brief"}]));
        let msgs = out["messages"].as_array().cloned().unwrap_or_default();
        assert_eq!(msgs.len(), 3, "{out}");
        assert_eq!(
            msgs[0]["content"][1],
            json!({"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}})
        );
        assert_eq!(
            msgs[1]["content"][0]["toolUse"],
            json!({"toolUseId": "call_1", "name": "look", "input": {"q": 1}})
        );
        // the tool result and the next user words are one user turn
        assert_eq!(msgs[2]["role"], "user");
        assert_eq!(
            msgs[2]["content"][0]["toolResult"],
            json!({"toolUseId": "call_1", "content": [{"text": "a cat"}]})
        );
        assert_eq!(msgs[2]["content"][1], json!({"text": "thanks"}));
        assert_eq!(
            out["inferenceConfig"],
            json!({"maxTokens": 50, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]})
        );
        assert_eq!(out["toolConfig"]["toolChoice"], json!({"any": {}}));
        assert_eq!(
            out["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["properties"]["q"],
            json!({"type": "integer"})
        );
        assert!(out.get("model").is_none());
    }

    #[test]
    fn untranslatable_fields_are_400s_naming_them() {
        let user = json!([{"role": "user", "content": "hi"}]);
        let cases = [
            (json!({"messages": user, "n": 2}), "n:"),
            (json!({"messages": user, "logprobs": true}), "logprobs:"),
            (json!({"messages": user, "seed": 1}), "seed:"),
            (
                json!({"messages": user, "presence_penalty": 0.5}),
                "presence_penalty:",
            ),
            (
                json!({"messages": [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
                "messages[0].content[0].image_url.url:",
            ),
            (
                json!({"messages": [{"role": "user", "content": [
                    {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]}),
                "messages[0].content[0].type:",
            ),
            (
                json!({"messages": [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AAAA"}}]}]}),
                "image_url.url:",
            ),
            (
                json!({"messages": [{"role": "wizard", "content": "x"}]}),
                "messages[0].role:",
            ),
            (
                json!({"messages": user, "response_format": {"type": "xml"}}),
                "response_format.type:",
            ),
            (json!({"messages": "hi"}), "messages:"),
        ];
        for (body, field) in cases {
            match req(body.clone()) {
                Err(m) => assert!(m.starts_with(field) || m.contains(field), "{body}: {m}"),
                Ok(v) => panic!("{body} translated to {v}"),
            }
        }
        // zero penalties and n = 1 are what OpenAI does anyway
        assert!(req(json!({"messages": user, "n": 1, "presence_penalty": 0})).is_ok());
    }

    #[test]
    fn json_response_format_goes_through_a_forced_tool() {
        let out = req(json!({
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "r",
                "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}}
        }))
        .unwrap_or(Value::Null);
        assert_eq!(
            out["toolConfig"]["toolChoice"],
            json!({"tool": {"name": JSON_TOOL}})
        );
        let answer = json!({"output": {"message": {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "t", "name": JSON_TOOL, "input": {"a": "b"}}}]}},
            "stopReason": "tool_use", "usage": {"inputTokens": 3, "outputTokens": 2}});
        let (body, _) =
            chat_answer(answer.to_string().as_bytes(), &meta(false)).unwrap_or_default();
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(v["choices"][0]["message"]["content"], "{\"a\":\"b\"}");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert!(v["choices"][0]["message"].get("tool_calls").is_none());
    }

    #[test]
    fn chat_answer_translates_tools_stop_and_cached_usage() {
        let answer = json!({"output": {"message": {"role": "assistant", "content": [
            {"text": "let me look"},
            {"toolUse": {"toolUseId": "tu1", "name": "look", "input": {"q": 1}}}]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 10, "outputTokens": 7, "totalTokens": 217,
                      "cacheReadInputTokens": 150, "cacheWriteInputTokens": 50}});
        let (body, usage) =
            chat_answer(answer.to_string().as_bytes(), &meta(false)).unwrap_or_default();
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(v["id"], "chatcmpl-r1");
        assert_eq!(v["model"], "pub-model");
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["choices"][0]["message"]["content"], "let me look");
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0],
            json!({"id": "tu1", "type": "function", "function": {"name": "look", "arguments": "{\"q\":1}"}})
        );
        let u = usage.unwrap_or_default();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (210, 7));
        assert_eq!((u.cached_tokens, u.cache_write_tokens), (150, 50));
        assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 150);
        for (stop, fin) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("guardrail_intervened", "content_filter"),
            ("content_filtered", "content_filter"),
        ] {
            assert_eq!(finish_reason(stop, false), fin);
        }
    }

    #[test]
    fn implausible_usage_is_none() {
        for u in [
            json!({"inputTokens": 9_223_372_036_854_775_808u64, "outputTokens": 1}),
            json!({"inputTokens": 1, "outputTokens": -1}),
            json!({"inputTokens": 1.5, "outputTokens": 1}),
            json!({"inputTokens": 60_000_000, "outputTokens": 1, "cacheReadInputTokens": 60_000_000}),
            json!({"outputTokens": 1}),
        ] {
            assert_eq!(usage_from(&u), None, "{u}");
        }
    }

    #[test]
    fn errors_map_to_openai_shapes() {
        let cases: [(u16, &str, u16, &str); 6] = [
            (
                400,
                r#"{"message":"bad field"}"#,
                400,
                "invalid_request_error",
            ),
            (
                403,
                r#"{"message":"The request signature we calculated does not match"}"#,
                401,
                "authentication_error",
            ),
            (
                403,
                r#"{"message":"You don't have access to the model"}"#,
                403,
                "permission_error",
            ),
            (
                404,
                r#"{"message":"no such model"}"#,
                404,
                "not_found_error",
            ),
            (
                429,
                r#"{"message":"Too many requests"}"#,
                429,
                "rate_limit_error",
            ),
            (503, "not json at all", 503, "api_error"),
        ];
        for (status, body, want, kind) in cases {
            let (s, out) = error_answer(status, body.as_bytes());
            let v: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
            assert_eq!(
                (s, v["error"]["type"].as_str()),
                (want, Some(kind)),
                "{body}"
            );
            assert!(v["error"]["message"].is_string());
        }
    }

    #[test]
    fn embeddings_one_input_per_call() {
        let b = embeddings_request(&json!({"input": ["hello world"], "dimensions": 256}))
            .unwrap_or_default();
        assert_eq!(
            serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null),
            json!({"inputText": "hello world", "dimensions": 256})
        );
        for bad in [
            json!({"input": ["a", "b"]}),
            json!({"input": [1, 2]}),
            json!({"input": ""}),
        ] {
            assert!(
                matches!(embeddings_request(&bad), Err(ApiError::InvalidRequest(m)) if m.starts_with("input:")),
                "{bad}"
            );
        }
        let answer = br#"{"embedding":[0.5,-0.25],"inputTextTokenCount":2}"#;
        let (body, usage) = embeddings_answer(answer, &meta(false)).unwrap_or_default();
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(v["data"][0]["embedding"], json!([0.5, -0.25]));
        assert_eq!(v["usage"]["prompt_tokens"], 2);
        assert_eq!(usage.map(|u| u.prompt_tokens), Some(2));
        let mut m = meta(false);
        m.base64 = true;
        let (body, _) = embeddings_answer(answer, &m).unwrap_or_default();
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v["data"][0]["embedding"].as_str().unwrap_or(""))
            .unwrap_or_default();
        assert_eq!(
            raw,
            [0.5f32.to_le_bytes(), (-0.25f32).to_le_bytes()].concat()
        );
    }

    /// A ConverseStream answer as Bedrock sends it: text, a tool call, stop, metadata.
    pub(crate) fn sample_stream() -> Vec<u8> {
        let frames = [
            ("messageStart", json!({"role": "assistant"})),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": "Olá, "}}),
            ),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": "São \"Paulo\"\n"}}),
            ),
            ("contentBlockStop", json!({"contentBlockIndex": 0})),
            (
                "contentBlockStart",
                json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu1", "name": "look"}}}),
            ),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"q\":"}}}),
            ),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "1}"}}}),
            ),
            ("contentBlockStop", json!({"contentBlockIndex": 1})),
            ("messageStop", json!({"stopReason": "tool_use"})),
            (
                "metadata",
                json!({"usage": {"inputTokens": 12, "outputTokens": 9, "totalTokens": 21, "cacheReadInputTokens": 4}, "metrics": {"latencyMs": 5}}),
            ),
        ];
        frames
            .iter()
            .flat_map(|(t, p)| encode_frame("event", t, p.to_string().as_bytes()))
            .collect()
    }

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
        let s = String::from_utf8_lossy(out);
        s.split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|e| *e != "[DONE]")
            .map(|e| serde_json::from_str(e).unwrap_or(Value::Null))
            .collect()
    }

    #[test]
    fn stream_translates_text_tools_stop_and_usage() {
        let bytes = sample_stream();
        let (out, usage) = run(&[&bytes], true);
        let out = out.unwrap_or_default();
        assert!(out.ends_with(b"data: [DONE]\n\n"));
        let ev = events(&out);
        assert!(ev.iter().all(|e| e["id"] == "chatcmpl-r1"
            && e["model"] == "pub-model"
            && e["object"] == "chat.completion.chunk"));
        assert_eq!(ev[0]["choices"][0]["delta"]["role"], "assistant");
        let text: String = ev
            .iter()
            .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Olá, São \"Paulo\"\n");
        let call = &ev[3]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(call["id"], "tu1");
        assert_eq!(call["function"]["name"], "look");
        let args: String = ev
            .iter()
            .filter_map(|e| {
                e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            })
            .collect();
        assert_eq!(args, "{\"q\":1}");
        assert_eq!(ev[6]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(ev[7]["choices"], json!([]));
        assert_eq!(ev[7]["usage"]["prompt_tokens"], 16);
        let u = usage.unwrap_or_default();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
            (16, 9, 4)
        );
        // without include_usage: no usage chunk, usage still read for billing
        let (out, usage) = run(&[&bytes], false);
        assert!(
            events(&out.unwrap_or_default())
                .iter()
                .all(|e| e.get("usage").is_none())
        );
        assert_eq!(usage.map(|u| u.prompt_tokens), Some(16));
    }

    #[test]
    fn each_frame_is_translated_as_it_completes() {
        let bytes = sample_stream();
        let first = encode_frame("event", "messageStart", br#"{"role":"assistant"}"#).len();
        let mut d = Decoder::new(meta(false));
        let mut out = BytesMut::new();
        assert!(d.feed(&bytes[..first - 1], &mut out).is_ok());
        assert!(out.is_empty());
        assert!(d.feed(&bytes[first - 1..first], &mut out).is_ok());
        assert_eq!(events(&out).len(), 1);
    }

    #[test]
    fn exceptions_and_hostile_bytes_are_clean_errors() {
        let mut ex = encode_frame("event", "messageStart", br#"{"role":"assistant"}"#);
        ex.extend(encode_frame(
            "exception",
            "throttlingException",
            br#"{"message":"slow down"}"#,
        ));
        assert_eq!(
            run(&[&ex], false).0,
            Err(StreamError::Upstream(
                "throttlingException: slow down".into()
            ))
        );
        let good = sample_stream();
        // a flipped payload byte: the message CRC catches it
        let mut flipped = good.clone();
        flipped[40] ^= 1;
        assert!(matches!(
            run(&[&flipped], false).0,
            Err(StreamError::Malformed(_))
        ));
        // garbage, invalid UTF-8, a truncated frame, a frame announcing 4 GiB
        assert!(matches!(
            run(&[b"garbage garbage garbage"], false).0,
            Err(StreamError::Malformed(_))
        ));
        assert!(matches!(
            run(&[&[0xff; 64]], false).0,
            Err(StreamError::Malformed(_))
        ));
        assert!(matches!(
            run(&[&good[..good.len() - 3]], false).0,
            Err(StreamError::Malformed(_))
        ));
        let mut huge = vec![0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0];
        huge.extend_from_slice(&crc32fast::hash(&huge).to_be_bytes());
        assert_eq!(run(&[&huge], false).0, Err(StreamError::TooLarge));
        // invalid UTF-8 and 100k-deep JSON in a payload
        let bad_utf8 = encode_frame(
            "event",
            "contentBlockDelta",
            b"{\"delta\":{\"text\":\"\xff\xfe\"}}",
        );
        assert!(matches!(
            run(&[&bad_utf8], false).0,
            Err(StreamError::Malformed(_))
        ));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let deep = encode_frame("event", "contentBlockDelta", deep.as_bytes());
        assert!(matches!(
            run(&[&deep], false).0,
            Err(StreamError::Malformed(_))
        ));
        // a 2^63 token count: the stream is fine, the usage is not believed
        let mut big = encode_frame("event", "messageStart", br#"{"role":"assistant"}"#);
        big.extend(encode_frame(
            "event",
            "messageStop",
            br#"{"stopReason":"end_turn"}"#,
        ));
        big.extend(encode_frame(
            "event",
            "metadata",
            br#"{"usage":{"inputTokens":9223372036854775808,"outputTokens":1}}"#,
        ));
        let (out, usage) = run(&[&big], true);
        assert!(out.is_ok());
        assert_eq!(usage, None);
        // a stream that ends before messageStop
        let mut cut = encode_frame("event", "messageStart", br#"{"role":"assistant"}"#);
        cut.extend(encode_frame(
            "event",
            "contentBlockDelta",
            br#"{"contentBlockIndex":0,"delta":{"text":"a"}}"#,
        ));
        assert!(matches!(
            run(&[&cut], false).0,
            Err(StreamError::Malformed(_))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Any two or three pieces of the upstream's bytes give the output of the whole.
        #[test]
        fn any_split_gives_the_same_output(a in 0usize..10_000, b in 0usize..10_000) {
            let bytes = sample_stream();
            let (whole, wu) = run(&[&bytes], true);
            let (i, j) = {
                let (x, y) = (a % (bytes.len() + 1), b % (bytes.len() + 1));
                (x.min(y), x.max(y))
            };
            let (two, tu) = run(&[&bytes[..i], &bytes[i..]], true);
            let (three, hu) = run(&[&bytes[..i], &bytes[i..j], &bytes[j..]], true);
            prop_assert_eq!(&whole, &two);
            prop_assert_eq!(&whole, &three);
            prop_assert_eq!(&wu, &tu);
            prop_assert_eq!(&wu, &hu);
        }

        /// Arbitrary bytes, alone or spliced into a valid stream, never panic: they translate
        /// or end in a clean error.
        #[test]
        fn arbitrary_bytes_never_panic(junk in proptest::collection::vec(any::<u8>(), 0..600), at in 0usize..2000) {
            let _ = run(&[&junk], true);
            let mut bytes = sample_stream();
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, junk.iter().copied());
            let (r, _) = run(&[&bytes], true);
            if !junk.is_empty() {
                prop_assert!(r.is_err());
            }
        }
    }

    /// Every split point of the sample, exhaustively (two pieces), and byte by byte.
    #[test]
    fn every_split_point() {
        let bytes = sample_stream();
        let (whole, _) = run(&[&bytes], true);
        assert!(whole.is_ok());
        for i in 0..=bytes.len() {
            assert_eq!(
                run(&[&bytes[..i], &bytes[i..]], true).0,
                whole,
                "split at {i}"
            );
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(&singles, true).0, whole);
    }
}
