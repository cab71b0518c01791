//! The mock's Amazon Bedrock dialect: `POST /model/{modelId}/converse`,
//! `/model/{modelId}/converse-stream` (real `application/vnd.amazon.eventstream` binary
//! frames, CRCs included) and `/model/{modelId}/invoke` (Titan text embeddings).
//!
//! Every request's SigV4 signature is checked with this module's own implementation of the
//! algorithm ([`verify`]: canonical request, string to sign, HMAC-SHA256 key chain; written
//! from AWS's description, not with the `aws-sigv4` crate the gateway signs with, and
//! unit-tested against AWS's published test-suite vectors). Known keys: [`ACCESS_KEY_ID`] /
//! [`SECRET_ACCESS_KEY`] (and AWS's documentation example key). A missing signature, an
//! unknown key or a mismatch is Bedrock's 403 with its `{"message"}` body and
//! `x-amzn-errortype` header.
//!
//! Knobs (headers, forwarded by the gateway's `forward_headers: [x-mock-*]`): the common
//! `x-mock-status` / `x-mock-latency-ms` / fail rate (answered in Bedrock's error shape),
//! `x-mock-chunks` (words of the answer, default 4), `x-mock-chunk-delay-ms` (between
//! frames), `x-mock-fail-after-chunks` (the connection breaks after that many frames),
//! `x-mock-exception` (an exception frame of that type after the first text frame),
//! `x-mock-corrupt` (`crc`: the third frame's payload altered; `garbage`: bytes that are no
//! frame in its place),
//! `x-mock-cache-read` / `x-mock-cache-write` (cache token counts in `usage`), `x-mock-usage`
//! (the raw `usage` JSON, for hostile numbers).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Mock, WORDS, hnum, preflight, prompt_tokens, remember};
use crate::dialect::bedrock::encode_frame;

/// The access key id the mock knows (with [`SECRET_ACCESS_KEY`]).
pub const ACCESS_KEY_ID: &str = "AKIDMOCKCATRACA";
/// The secret of [`ACCESS_KEY_ID`].
pub const SECRET_ACCESS_KEY: &str = "catraca/mock+secret/KEY";
/// AWS's documentation example key pair (the SigV4 test suite's), also known.
const EXAMPLE: (&str, &str) = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
/// Most clock skew accepted, as Bedrock (15 minutes).
const MAX_SKEW_SECS: i64 = 15 * 60;

/// Add this dialect's routes.
pub(super) fn routes(r: Router<Arc<Mock>>) -> Router<Arc<Mock>> {
    r.route("/model/{model}/converse", post(converse))
        .route("/model/{model}/converse-stream", post(converse_stream))
        .route("/model/{model}/invoke", post(invoke))
}

type S = State<Arc<Mock>>;

/// Bedrock's error answer: `{"message"}` and the type in `x-amzn-errortype`.
fn error(status: u16, kind: &str, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (
                header::HeaderName::from_static("x-amzn-errortype"),
                format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            ),
        ],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

/// Bedrock's error for a status forced by the common knobs.
fn error_for(status: u16) -> Response {
    let (kind, msg) = match status {
        400 => ("ValidationException", "mock validation error"),
        401 | 403 => ("AccessDeniedException", "mock access denied"),
        404 => ("ResourceNotFoundException", "mock model not found"),
        429 => (
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        503 => ("ServiceUnavailableException", "mock service unavailable"),
        _ => ("InternalServerException", "mock internal error"),
    };
    error(status, kind, msg)
}

/// The common checks of every route: signature, then the failure knobs. `Err` = answer now.
async fn admit(
    m: &Mock,
    method: &Method,
    uri: &Uri,
    h: &HeaderMap,
    body: &Bytes,
) -> Result<Value, Response> {
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        error(
            400,
            "ValidationException",
            "The request body is not valid JSON",
        )
    })?;
    remember(m, &v, h);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Err((kind, msg)) = verify(
        method.as_str(),
        uri.path(),
        uri.query().unwrap_or(""),
        h,
        body,
        now,
        secret_of,
    ) {
        m.stats.requests.fetch_add(1, Ordering::Relaxed);
        return Err(error(403, kind, &msg));
    }
    if let Some(r) = preflight(m, h).await {
        return Err(error_for(r.status().as_u16()));
    }
    Ok(v)
}

fn secret_of(akid: &str) -> Option<&'static str> {
    if akid == ACCESS_KEY_ID {
        Some(SECRET_ACCESS_KEY)
    } else if akid == EXAMPLE.0 {
        Some(EXAMPLE.1)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------
// SigV4, written from AWS's description of the algorithm
// ---------------------------------------------------------------------------------------

type Rejection = (&'static str, String);

fn hex_sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// URI-encodes every byte but the unreserved ones (and `/` when `keep_slash`).
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical URI of a path as it came on the wire, for every service but S3: dot
/// segments and empty segments removed, then each segment URI-encoded again (a `%3A` on the
/// wire is `%253A` here).
pub fn canonical_uri(path: &str) -> String {
    let mut segs: Vec<&str> = Vec::new();
    for s in path.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(
        &segs
            .iter()
            .map(|s| uri_encode(s, false))
            .collect::<Vec<_>>()
            .join("/"),
    );
    if path.ends_with('/') && !segs.is_empty() {
        out.push('/');
    }
    out
}

/// The canonical query: parameters sorted by name then value, each URI-encoded once.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&pct_decode(k), false),
                uri_encode(&pct_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(x);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical request of a request, given the signed headers' names (lowercase).
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    signed: &[&str],
    payload_hash: &str,
) -> String {
    let mut out = format!(
        "{method}\n{}\n{}\n",
        canonical_uri(path),
        canonical_query(query)
    );
    for name in signed {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// The signature of `canonical` for a scope `date/region/service/aws4_request`.
pub fn signature(secret: &str, amz_date: &str, scope: &str, canonical: &str) -> String {
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex_sha256(canonical.as_bytes())
    );
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in scope.split('/') {
        key = hmac(&key, part.as_bytes());
    }
    hex::encode(hmac(&key, to_sign.as_bytes()))
}

/// Checks a request's SigV4 `authorization` header; `Err((error type, message))` as Bedrock
/// says it. `now` is Unix seconds (for the clock-skew check).
pub fn verify(
    method: &str,
    path: &str,
    query: &str,
    h: &HeaderMap,
    body: &[u8],
    now: i64,
    secret_of: impl Fn(&str) -> Option<&'static str>,
) -> Result<(), Rejection> {
    let missing = || {
        (
            "MissingAuthenticationTokenException",
            "Missing Authentication Token".to_string(),
        )
    };
    let auth = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(missing)?;
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(missing)?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            cred = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            sig = Some(v);
        }
    }
    let incomplete = || {
        (
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'"
                .to_string(),
        )
    };
    let (cred, signed, sig) = (
        cred.ok_or_else(incomplete)?,
        signed.ok_or_else(incomplete)?,
        sig.ok_or_else(incomplete)?,
    );
    let (akid, scope) = cred.split_once('/').ok_or_else(incomplete)?;
    let secret = secret_of(akid).ok_or((
        "UnrecognizedClientException",
        "The security token included in the request is invalid.".to_string(),
    ))?;
    let amz_date = h
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(incomplete)?;
    let signed: Vec<&str> = signed.split(';').collect();
    if !signed.contains(&"host") || !signed.contains(&"x-amz-date") {
        return Err((
            "IncompleteSignatureException",
            "host and x-amz-date must be signed".into(),
        ));
    }
    if h.contains_key("x-amz-security-token") && !signed.contains(&"x-amz-security-token") {
        return Err((
            "IncompleteSignatureException",
            "x-amz-security-token must be signed".into(),
        ));
    }
    if scope.split('/').next() != amz_date.get(..8) {
        return Err((
            "InvalidSignatureException",
            "Credential should be scoped to a valid date".into(),
        ));
    }
    if let Ok(t) = time::PrimitiveDateTime::parse(
        amz_date,
        time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"),
    ) {
        if (t.assume_utc().unix_timestamp() - now).abs() > MAX_SKEW_SECS {
            return Err(("InvalidSignatureException", "Signature expired".into()));
        }
    } else {
        return Err((
            "IncompleteSignatureException",
            "x-amz-date is not valid".into(),
        ));
    }
    let payload_hash = hex_sha256(body);
    if let Some(claimed) = h.get("x-amz-content-sha256")
        && claimed.as_bytes() != payload_hash.as_bytes()
    {
        return Err((
            "InvalidSignatureException",
            "x-amz-content-sha256 does not match the body".into(),
        ));
    }
    let canonical = canonical_request(method, path, query, h, &signed, &payload_hash);
    let expected = signature(secret, amz_date, scope, &canonical);
    use subtle::ConstantTimeEq;
    if expected.as_bytes().ct_eq(sig.as_bytes()).into() {
        Ok(())
    } else {
        Err((
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------

/// What the mock answers a Converse body with.
struct Plan {
    /// A tool to call (`(name, input JSON)`), when tools are given and the last turn is not a
    /// tool result.
    tool: Option<(String, Value)>,
    text: Vec<&'static str>,
    usage: Value,
    stop: &'static str,
}

fn plan(m: &Mock, v: &Value, h: &HeaderMap) -> Plan {
    let n = hnum(h, "x-mock-chunks").unwrap_or(4).clamp(1, 10_000) as usize;
    let tools = v.pointer("/toolConfig/tools").and_then(Value::as_array);
    let last_is_result = v
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|a| a.last())
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|b| b.get("toolResult").is_some()));
    let tool = match tools {
        Some(ts) if !ts.is_empty() && !last_is_result => {
            let forced = v
                .pointer("/toolConfig/toolChoice/tool/name")
                .and_then(Value::as_str);
            let name = forced
                .or_else(|| ts[0].pointer("/toolSpec/name").and_then(Value::as_str))
                .unwrap_or("tool");
            Some((
                name.to_string(),
                json!({ "answer": WORDS[..n.min(WORDS.len())].join(" ") }),
            ))
        }
        _ => None,
    };
    let text: Vec<&'static str> = (0..n).map(|i| WORDS[i % WORDS.len()]).collect();
    let input = prompt_tokens(v) + v.get("system").map_or(0, words);
    let read = hnum(h, "x-mock-cache-read").unwrap_or(0);
    let write = hnum(h, "x-mock-cache-write").unwrap_or(0);
    let output = if tool.is_some() { 5 } else { n as u64 };
    let usage = match h.get("x-mock-usage").and_then(|v| v.to_str().ok()) {
        Some(raw) => serde_json::from_str(raw).unwrap_or(Value::Null),
        None => {
            m.stats
                .reported_prompt
                .fetch_add(input + read + write, Ordering::Relaxed);
            m.stats
                .reported_completion
                .fetch_add(output, Ordering::Relaxed);
            let mut u = json!({
                "inputTokens": input,
                "outputTokens": output,
                "totalTokens": input + read + write + output,
            });
            if read > 0 || write > 0 {
                u["cacheReadInputTokens"] = read.into();
                u["cacheWriteInputTokens"] = write.into();
            }
            u
        }
    };
    let stop = if tool.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    Plan {
        tool,
        text,
        usage,
        stop,
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

async fn converse(State(m): S, method: Method, uri: Uri, h: HeaderMap, body: Bytes) -> Response {
    let v = match admit(&m, &method, &uri, &h, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let p = plan(&m, &v, &h);
    let content = match &p.tool {
        Some((name, input)) => json!([{ "toolUse": {
            "toolUseId": "tooluse_mock0001", "name": name, "input": input } }]),
        None => json!([{ "text": p.text.join(" ") }]),
    };
    let out = json!({
        "output": { "message": { "role": "assistant", "content": content } },
        "stopReason": p.stop,
        "usage": p.usage,
        "metrics": { "latencyMs": 1 },
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        out.to_string(),
    )
        .into_response()
}

async fn converse_stream(
    State(m): S,
    method: Method,
    uri: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let v = match admit(&m, &method, &uri, &h, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let p = plan(&m, &v, &h);
    let mut frames: Vec<Vec<u8>> = vec![encode_frame(
        "event",
        "messageStart",
        br#"{"p":"abcd","role":"assistant"}"#,
    )];
    match &p.tool {
        Some((name, input)) => {
            frames.push(encode_frame(
                "event",
                "contentBlockStart",
                json!({ "contentBlockIndex": 0, "start": { "toolUse": {
                    "toolUseId": "tooluse_mock0001", "name": name } } })
                .to_string()
                .as_bytes(),
            ));
            // the input JSON in two pieces, as Bedrock splits it
            let s = input.to_string();
            let cut = s.len() / 2;
            let cut = (0..=cut)
                .rev()
                .find(|i| s.is_char_boundary(*i))
                .unwrap_or(0);
            for piece in [&s[..cut], &s[cut..]] {
                frames.push(encode_frame(
                    "event",
                    "contentBlockDelta",
                    json!({ "contentBlockIndex": 0, "delta": { "toolUse": { "input": piece } } })
                        .to_string()
                        .as_bytes(),
                ));
            }
        }
        None => {
            for (i, w) in p.text.iter().enumerate() {
                let piece = if i == 0 {
                    (*w).to_string()
                } else {
                    format!(" {w}")
                };
                frames.push(encode_frame(
                    "event",
                    "contentBlockDelta",
                    json!({ "contentBlockIndex": 0, "delta": { "text": piece } })
                        .to_string()
                        .as_bytes(),
                ));
                if i == 0
                    && let Some(kind) = h.get("x-mock-exception").and_then(|v| v.to_str().ok())
                {
                    frames.push(encode_frame(
                        "exception",
                        kind,
                        json!({ "message": "mock exception mid-stream" })
                            .to_string()
                            .as_bytes(),
                    ));
                }
            }
        }
    }
    frames.push(encode_frame(
        "event",
        "contentBlockStop",
        br#"{"contentBlockIndex":0}"#,
    ));
    frames.push(encode_frame(
        "event",
        "messageStop",
        json!({ "stopReason": p.stop }).to_string().as_bytes(),
    ));
    frames.push(encode_frame(
        "event",
        "metadata",
        json!({ "usage": p.usage, "metrics": { "latencyMs": 1 } })
            .to_string()
            .as_bytes(),
    ));
    // a broken provider: one frame's payload byte flipped (its message CRC no longer
    // matches), or garbage that is no frame at all, in place of the third frame
    match h.get("x-mock-corrupt").and_then(|v| v.to_str().ok()) {
        Some("crc") if frames.len() > 2 => {
            let f = &mut frames[2];
            let at = f.len() - 6;
            f[at] ^= 0x20;
        }
        Some("garbage") if frames.len() > 2 => {
            frames[2] = b"\xff\xfenot an event stream frame".to_vec()
        }
        _ => {}
    }
    let delay = Duration::from_millis(hnum(&h, "x-mock-chunk-delay-ms").unwrap_or(0));
    let fail_after = hnum(&h, "x-mock-fail-after-chunks").map(|n| n as usize);
    m.stats.streams_started.fetch_add(1, Ordering::Relaxed);
    let mock = m.clone();
    let total = frames.len();
    let st = futures_util::stream::unfold(
        (frames.into_iter().enumerate(), mock),
        move |(mut it, mock)| async move {
            let (i, f) = it.next()?;
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
            Some((Ok::<_, std::io::Error>(Bytes::from(f)), (it, mock)))
        },
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "application/vnd.amazon.eventstream")
        .header("x-amzn-requestid", "mock-request-id")
        .body(Body::from_stream(st))
        .unwrap_or_else(|_| error_for(500))
}

/// Titan text embeddings: `{"inputText", "dimensions"?, "normalize"?}` →
/// `{"embedding": [...], "inputTextTokenCount": n}`.
async fn invoke(State(m): S, method: Method, uri: Uri, h: HeaderMap, body: Bytes) -> Response {
    let v = match admit(&m, &method, &uri, &h, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(text) = v.get("inputText").and_then(Value::as_str) else {
        return error(
            400,
            "ValidationException",
            "Malformed input request: inputText is required",
        );
    };
    let dims = v.get("dimensions").and_then(Value::as_u64).unwrap_or(1024);
    if ![256, 512, 1024].contains(&dims) {
        return error(
            400,
            "ValidationException",
            "dimensions must be 256, 512 or 1024",
        );
    }
    let emb = super::bag_of_words(&Value::String(text.to_string()), dims as usize);
    let n = match h.get("x-mock-usage").and_then(|v| v.to_str().ok()) {
        Some(raw) => serde_json::from_str(raw).unwrap_or(Value::Null),
        None => {
            let n = text.split_whitespace().count() as u64;
            m.stats.reported_prompt.fetch_add(n, Ordering::Relaxed);
            n.into()
        }
    };
    let out = json!({ "embedding": emb, "inputTextTokenCount": n });
    (
        [(header::CONTENT_TYPE, "application/json")],
        out.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// 2015-08-30T12:36:00Z, the test suite's clock.
    const SUITE_NOW: i64 = 1_440_938_160;
    const SCOPE: &str = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                *k,
                HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")),
            );
        }
        h
    }

    fn with_auth(mut h: HeaderMap, signed: &str, sig: &str) -> HeaderMap {
        let a =
            format!("AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders={signed}, Signature={sig}");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&a).unwrap_or(HeaderValue::from_static("")),
        );
        h
    }

    #[allow(clippy::too_many_arguments)]
    fn suite(
        name: &str,
        method: &str,
        path: &str,
        query: &str,
        extra: &[(&'static str, &str)],
        body: &[u8],
        signed: &str,
        sig: &str,
    ) {
        let mut pairs = vec![
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
        ];
        pairs.extend_from_slice(extra);
        let h = with_auth(headers(&pairs), signed, sig);
        assert_eq!(
            verify(method, path, query, &h, body, SUITE_NOW, secret_of),
            Ok(()),
            "{name}"
        );
        // one bit off in the signature, or another secret, is refused
        let mut bad = sig.to_string();
        bad.replace_range(0..1, if sig.starts_with('0') { "1" } else { "0" });
        let h = with_auth(headers(&pairs), signed, &bad);
        assert_eq!(
            verify(method, path, query, &h, body, SUITE_NOW, secret_of).map_err(|e| e.0),
            Err("InvalidSignatureException"),
            "{name}"
        );
        let h = with_auth(headers(&pairs), signed, sig);
        assert!(verify(method, path, query, &h, body, SUITE_NOW, |_| Some("other")).is_err());
    }

    // AWS's SigV4 test suite (aws-signing-test-suite/v4 in the aws-sigv4 crate's source):
    // each request and its published signature.
    #[test]
    fn sigv4_test_suite_vectors() {
        suite(
            "get-vanilla",
            "GET",
            "/",
            "",
            &[],
            b"",
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        );
        suite(
            "post-vanilla",
            "POST",
            "/",
            "",
            &[],
            b"",
            "host;x-amz-date",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        );
        suite(
            "get-vanilla-query-order-key-case",
            "GET",
            "/",
            "Param2=value2&Param1=value1",
            &[],
            b"",
            "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        );
        suite(
            "get-vanilla-with-session-token",
            "GET",
            "/",
            "",
            &[(
                "x-amz-security-token",
                "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
            )],
            b"",
            "host;x-amz-date;x-amz-security-token",
            "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
        );
        suite(
            "post-x-www-form-urlencoded",
            "POST",
            "/",
            "",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("content-length", "13"),
                (
                    "x-amz-content-sha256",
                    "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
                ),
            ],
            b"Param1=value1",
            "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
            "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
        );
    }

    /// The suite's double-url-encode case: the canonical URI of a path with `%3A` on the wire.
    #[test]
    fn double_encoded_canonical_uri() {
        assert_eq!(
            canonical_uri(
                "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations"
            ),
            "/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-west-2%253A892717189312%253Afunction%253Amy-rusty-fun/invocations"
        );
        assert_eq!(
            canonical_uri("/test/@connections/JBDvjfGEIAMCERw%3D"),
            "/test/%40connections/JBDvjfGEIAMCERw%253D"
        );
        assert_eq!(canonical_uri("/a/./b/../c//d/"), "/a/c/d/");
    }

    #[test]
    fn refusals() {
        let h = headers(&[("host", "h"), ("x-amz-date", "20150830T123600Z")]);
        assert_eq!(
            verify("GET", "/", "", &h, b"", SUITE_NOW, secret_of).map_err(|e| e.0),
            Err("MissingAuthenticationTokenException")
        );
        // a signature from far in the past
        let h = with_auth(
            headers(&[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
            ]),
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        );
        assert_eq!(
            verify("GET", "/", "", &h, b"", SUITE_NOW + 3600, secret_of).map_err(|e| e.1),
            Err("Signature expired".to_string())
        );
        // an unknown key
        assert_eq!(
            verify("GET", "/", "", &h, b"", SUITE_NOW, |_| None).map_err(|e| e.0),
            Err("UnrecognizedClientException")
        );
    }

    /// The gateway's signer (the aws-sigv4 crate) and this independent verifier agree, on a
    /// model id that needs encoding, with a body and a session token.
    #[test]
    fn gateway_signatures_verify() {
        use crate::dialect::bedrock::{Aws, Credentials, sign};
        let aws = Aws {
            region: "us-east-1".into(),
            credentials: Credentials {
                access_key_id: ACCESS_KEY_ID.into(),
                secret_access_key: SECRET_ACCESS_KEY.into(),
                session_token: Some("tok/en+=".into()),
            },
        };
        let path = crate::dialect::bedrock::path(
            crate::dialect::Op::Chat,
            "anthropic.claude-3-haiku-20240307-v1:0",
            true,
        );
        assert!(path.contains("%3A"), "{path}");
        let body = br#"{"messages":[]}"#;
        let now = std::time::SystemTime::now();
        let signed = sign(&aws, "POST", "127.0.0.1:9", &path, body, now);
        let mut h = headers(&[
            ("host", "127.0.0.1:9"),
            ("content-type", "application/json"),
        ]);
        for (k, v) in &signed {
            h.insert(
                *k,
                HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")),
            );
        }
        assert!(h.contains_key("x-amz-security-token"));
        let t = time::OffsetDateTime::now_utc().unix_timestamp();
        assert_eq!(verify("POST", &path, "", &h, body, t, secret_of), Ok(()));
        // another body under the same signature is refused
        assert!(verify("POST", &path, "", &h, b"{}", t, secret_of).is_err());
    }
}
