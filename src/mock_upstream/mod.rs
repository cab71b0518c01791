//! `catraca mock-upstream`: a fast, deterministic OpenAI-compatible provider for tests, demos
//! and load tests. Every failover path can be driven from a request header or a process flag.
//!
//! Per-request headers: `x-mock-status` (answer with this status and an OpenAI error body),
//! `x-mock-latency-ms` (wait before the response header), `x-mock-chunks` (stream chunks,
//! default 4), `x-mock-chunk-delay-ms` (pause between chunks), `x-mock-fail-after-chunks`
//! (break the connection after N chunks), `x-mock-no-usage` (omit `usage`), `x-mock-usage`
//! (send this JSON text as the `usage` object, e.g. absurd numbers), `x-mock-endless-event`
//! (stream one SSE event of this many bytes that never ends, then close).
//! `x-mock-tool-call: <name>|first` (chat answers with one call of that tool).
//! Per process: `--fail-status`, `--fail-rate`, `--latency-ms`.
//! `GET /mock/stats` reports counters and the last request body seen, for tests.
//! `/graph/{version}/…` is a WhatsApp Cloud API (Graph) stand-in (see [`graph_messages`]).
//! `POST /psp/pay` is a PIX PSP stand-in: it "pays" a charge by calling the webhook with a
//! signed body (see [`psp_pay`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod anthropic;
mod azure;
pub mod bedrock;
mod gemini;
mod surface;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde_json::{Value, json};

/// Process-level knobs.
#[derive(Debug, Clone, Default)]
pub struct MockOptions {
    /// Status returned for the `fail_rate` share of requests.
    pub fail_status: u16,
    /// Share of requests (0..=1) answered with `fail_status`.
    pub fail_rate: f64,
    /// Latency added before every response.
    pub latency: Duration,
    /// Where the Graph API stand-in posts the status webhooks (`sent`, `delivered`) of each
    /// message it accepts; `None`: no webhooks.
    pub graph_webhook_url: Option<String>,
    /// The app secret those webhooks are signed with (`X-Hub-Signature-256`).
    pub graph_app_secret: Option<String>,
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    streams_started: AtomicU64,
    streams_completed: AtomicU64,
    streams_aborted: AtomicU64,
    upload_bytes: AtomicU64,
    /// Tokens the mock reported in `usage` objects it sent (chat and completions).
    reported_prompt: AtomicU64,
    reported_completion: AtomicU64,
    /// The last JSON (or multipart size) body received; a short-held lock, never across await.
    last_body: Mutex<Value>,
    last_headers: Mutex<Value>,
    /// Every Graph API call (`{method, path, authorization, body}`), oldest first.
    graph_calls: Mutex<Vec<Value>>,
    /// Every status webhook posted back (`{wamid, status, http_status}`).
    graph_webhooks: Mutex<Vec<Value>>,
}

struct Mock {
    /// Knobs, changeable at run time through `POST /mock/config`; a short-held lock.
    opts: Mutex<MockOptions>,
    stats: Stats,
}

type S = State<Arc<Mock>>;

/// Build the mock's router.
pub fn router(opts: MockOptions) -> Router {
    let mock = Arc::new(Mock {
        opts: Mutex::new(opts),
        stats: Stats::default(),
    });
    let r = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/images/generations", post(images))
        .route("/v1/audio/transcriptions", post(audio))
        .route("/v1/ocr", post(ocr))
        .route("/v1/recognition", post(recognition))
        .route("/v1/models", get(models))
        .route("/mock/stats", get(stats))
        .route("/mock/config", post(set_config))
        .route("/psp/pay", post(psp_pay))
        .route("/graph/{version}/me", get(graph_me))
        .route("/graph/{version}/{id}/messages", post(graph_messages))
        .route(
            "/graph/{version}/{id}/phone_numbers",
            get(graph_phone_numbers),
        );
    // the other providers' dialects, each in its own module
    let r = anthropic::routes(r);
    let r = azure::routes(r);
    let r = gemini::routes(r);
    let r = bedrock::routes(r);
    // the rest of OpenAI's surface (responses, moderations, speech, translations, image edits,
    // rerank)
    let r = surface::routes(r);
    r.layer(axum::middleware::from_fn(tag_version))
        .with_state(mock)
}

/// An answer to a request that came over HTTP/2 says so (`x-mock-http-version: HTTP/2.0`),
/// so a test can tell a provider's `http2: true` reached it as h2; HTTP/1.1 answers carry
/// nothing extra (the load tests compare gateways on them). The mock serves HTTP/1.1 and, on
/// the same port, HTTP/2 with prior knowledge (h2c).
async fn tag_version(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let h2 = req.version() == axum::http::Version::HTTP_2;
    let mut r = next.run(req).await;
    if h2 {
        r.headers_mut().insert(
            "x-mock-http-version",
            header::HeaderValue::from_static("HTTP/2.0"),
        );
    }
    r
}

/// Serve until the process ends.
pub async fn run(addr: SocketAddr, opts: MockOptions) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "mock upstream listening");
    axum::serve(listener, router(opts)).await
}

fn hnum(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn error_response(status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {"message": format!("mock upstream error {status}"), "type": "mock_error", "param": null, "code": status.to_string()}});
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Common knobs: latency, forced status, random failures. `Some` = answer now with that.
async fn preflight(m: &Mock, h: &HeaderMap) -> Option<Response> {
    m.stats.requests.fetch_add(1, Ordering::Relaxed);
    let opts = m.opts.lock().clone();
    let latency = hnum(h, "x-mock-latency-ms")
        .map(Duration::from_millis)
        .unwrap_or(opts.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(s) = hnum(h, "x-mock-status") {
        return Some(error_response(s as u16));
    }
    if opts.fail_rate > 0.0 && fastrand::f64() < opts.fail_rate {
        return Some(error_response(opts.fail_status));
    }
    None
}

fn remember(m: &Mock, body: &Value, h: &HeaderMap) {
    *m.stats.last_body.lock() = body.clone();
    let hv: serde_json::Map<String, Value> = h
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                Value::String(v.to_str().unwrap_or("").to_string()),
            )
        })
        .collect();
    *m.stats.last_headers.lock() = Value::Object(hv);
}

fn parse(body: &Bytes) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body).map_err(|_| Box::new(error_response(400)))
}

/// Deterministic token count: words of every string in `messages`/`prompt`/`input`, plus 3
/// per message.
fn prompt_tokens(v: &Value) -> u64 {
    fn words(v: &Value) -> u64 {
        match v {
            Value::String(s) => s.split_whitespace().count() as u64,
            Value::Array(a) => a.iter().map(words).sum(),
            Value::Object(o) => o.values().map(words).sum(),
            _ => 0,
        }
    }
    let msgs = v.get("messages").map(|m| {
        let n = m.as_array().map(|a| a.len() as u64).unwrap_or(0);
        words(m) + 3 * n
    });
    msgs.or_else(|| v.get("prompt").map(words))
        .or_else(|| v.get("input").map(words))
        .unwrap_or(0)
}

const WORDS: [&str; 8] = ["Olá", "do", "mock", "da", "catraca", "em", "São", "Paulo"];

async fn chat(State(m): S, h: HeaderMap, body: Bytes) -> Response {
    generate(m, h, body, true).await
}

async fn completions(State(m): S, h: HeaderMap, body: Bytes) -> Response {
    generate(m, h, body, false).await
}

async fn generate(m: Arc<Mock>, h: HeaderMap, body: Bytes, chat: bool) -> Response {
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
    let n_chunks = hnum(&h, "x-mock-chunks").unwrap_or(4).clamp(1, 10_000);
    let pt = prompt_tokens(&v);
    let no_usage = h.contains_key("x-mock-no-usage");
    let raw_usage = h
        .get("x-mock-usage")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let id = "chatcmpl-mock";
    // `x-mock-tool-call: <name>` (`first`: the request's first tool): answer with one call of
    // that tool, arguments [`TOOL_ARGS`] (streamed: the call's head, then its arguments spread
    // over the other chunks)
    let tool = chat
        .then(|| h.get("x-mock-tool-call").and_then(|t| t.to_str().ok()))
        .flatten()
        .map(|t| match t {
            "first" => v
                .pointer("/tools/0/function/name")
                .and_then(Value::as_str)
                .unwrap_or("tool")
                .to_string(),
            t => t.to_string(),
        });
    if let Some(n) = hnum(&h, "x-mock-endless-event") {
        // a broken provider: one event that never reaches its blank line
        let piece = Bytes::from(vec![b'x'; 16 * 1024]);
        let chunks = n.div_ceil(piece.len() as u64);
        let st = futures_util::stream::iter(
            std::iter::once(Bytes::from_static(b"data: "))
                .chain((0..chunks).map(move |_| piece.clone()))
                .map(Ok::<_, std::io::Error>),
        );
        return Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Body::from_stream(st))
            .unwrap_or_else(|_| error_response(500));
    }
    if !stream {
        let text: Vec<&str> = (0..n_chunks as usize)
            .map(|i| WORDS[i % WORDS.len()])
            .collect();
        let text = text.join(" ");
        let mut out = if let Some(t) = &tool {
            json!({"id": id, "object": "chat.completion", "created": 1_700_000_000u64, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
                    "tool_calls": [{"id": "call_mock_1", "type": "function",
                        "function": {"name": t, "arguments": TOOL_ARGS}}]},
                    "finish_reason": "tool_calls"}]})
        } else if chat {
            json!({"id": id, "object": "chat.completion", "created": 1_700_000_000u64, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})
        } else {
            json!({"id": id, "object": "text_completion", "created": 1_700_000_000u64, "model": model,
                "choices": [{"index": 0, "text": text, "finish_reason": "stop"}]})
        };
        if !no_usage && raw_usage.is_none() {
            out["usage"] = json!({"prompt_tokens": pt, "completion_tokens": n_chunks, "total_tokens": pt + n_chunks});
            m.stats.reported_prompt.fetch_add(pt, Ordering::Relaxed);
            m.stats
                .reported_completion
                .fetch_add(n_chunks, Ordering::Relaxed);
        }
        if let Some(raw) = &raw_usage {
            if let Some(o) = out.as_object_mut() {
                o.remove("usage");
            }
            let mut text = out.to_string();
            text.pop();
            text.push_str(",\"usage\":");
            text.push_str(raw);
            text.push('}');
            return ([(header::CONTENT_TYPE, "application/json")], text).into_response();
        }
        return (
            [(header::CONTENT_TYPE, "application/json")],
            out.to_string(),
        )
            .into_response();
    }
    let include_usage = v
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        && !no_usage;
    let delay = Duration::from_millis(hnum(&h, "x-mock-chunk-delay-ms").unwrap_or(0));
    let fail_after = hnum(&h, "x-mock-fail-after-chunks");
    m.stats.streams_started.fetch_add(1, Ordering::Relaxed);
    let guard = StreamGuard {
        mock: m.clone(),
        done: false,
    };
    let st = futures_util::stream::unfold((0u64, guard), move |(i, mut guard)| {
        let model = model.clone();
        let raw_usage = raw_usage.clone();
        let tool = tool.clone();
        async move {
            if i > 0 && !delay.is_zero() && i <= n_chunks + 2 {
                tokio::time::sleep(delay).await;
            }
            if let Some(f) = fail_after
                && i == f
            {
                guard.done = true; // a deliberate failure is not a client abort
                return Some((
                    Err(std::io::Error::other("mock: failing mid-stream")),
                    (i + 1, guard),
                ));
            }
            // as OpenAI streams: the first delta carries the role, the last choice chunk an
            // empty delta and the finish_reason, then (when asked) a usage chunk with no
            // choices, then [DONE] (OpenAI also puts "usage": null in every chunk when usage is
            // asked for; the mock leaves it out, as a gateway hiding injected usage would have
            // to rewrite every chunk to remove it)
            let object = if chat {
                "chat.completion.chunk"
            } else {
                "text_completion"
            };
            let mut frame = json!({"id": id, "object": object, "created": 1_700_000_000u64,
                "model": model, "system_fingerprint": "fp_mock"});
            let ev = if i < n_chunks {
                let w = WORDS[(i as usize) % WORDS.len()];
                let piece = if i == 0 {
                    w.to_string()
                } else {
                    format!(" {w}")
                };
                frame["choices"] = if let Some(t) = &tool {
                    let args = tool_args_piece(i, n_chunks);
                    let call = if i == 0 {
                        json!({"index": 0, "id": "call_mock_1", "type": "function",
                            "function": {"name": t, "arguments": args}})
                    } else {
                        json!({"index": 0, "function": {"arguments": args}})
                    };
                    let delta = if i == 0 {
                        json!({"role": "assistant", "content": null, "tool_calls": [call]})
                    } else {
                        json!({"tool_calls": [call]})
                    };
                    json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}])
                } else if chat {
                    let delta = if i == 0 {
                        json!({"role": "assistant", "content": piece})
                    } else {
                        json!({"content": piece})
                    };
                    json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}])
                } else {
                    json!([{"index": 0, "text": piece, "logprobs": null, "finish_reason": null}])
                };
                format!("data: {frame}\n\n")
            } else if i == n_chunks {
                frame["choices"] = if tool.is_some() {
                    json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "tool_calls"}])
                } else if chat {
                    json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"}])
                } else {
                    json!([{"index": 0, "text": "", "logprobs": null, "finish_reason": "stop"}])
                };
                format!("data: {frame}\n\n")
            } else if i == n_chunks + 1 && include_usage {
                frame["choices"] = json!([]);
                match &raw_usage {
                    Some(raw) => {
                        let mut text = frame.to_string();
                        text.pop();
                        format!("data: {text},\"usage\":{raw}}}\n\n")
                    }
                    None => {
                        frame["usage"] = json!({"prompt_tokens": pt, "completion_tokens": n_chunks, "total_tokens": pt + n_chunks});
                        let s = &guard.mock.stats;
                        s.reported_prompt.fetch_add(pt, Ordering::Relaxed);
                        s.reported_completion.fetch_add(n_chunks, Ordering::Relaxed);
                        format!("data: {frame}\n\n")
                    }
                }
            } else if i == n_chunks + 1 || (i == n_chunks + 2 && include_usage) {
                "data: [DONE]\n\n".to_string()
            } else {
                guard.done = true;
                guard
                    .mock
                    .stats
                    .streams_completed
                    .fetch_add(1, Ordering::Relaxed);
                return None;
            };
            Some((Ok::<_, std::io::Error>(Bytes::from(ev)), (i + 1, guard)))
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(st))
        .unwrap_or_else(|_| error_response(500))
}

/// The arguments of the mock's tool call (`x-mock-tool-call`).
const TOOL_ARGS: &str = r#"{"city":"São Paulo","unit":"celsius"}"#;

/// Chunk `i` of `n`'s share of [`TOOL_ARGS`]: none in the first (the call's head) unless it is
/// the only one, then the characters spread evenly over the rest.
fn tool_args_piece(i: u64, n: u64) -> String {
    if n == 1 {
        return TOOL_ARGS.to_string();
    }
    if i == 0 {
        return String::new();
    }
    let chars: Vec<char> = TOOL_ARGS.chars().collect();
    let per = chars.len().div_ceil((n - 1) as usize);
    let from = ((i - 1) as usize * per).min(chars.len());
    let to = (from + per).min(chars.len());
    chars[from..to].iter().collect()
}

/// Counts a stream that was dropped before it finished: the client (the gateway) went away.
struct StreamGuard {
    mock: Arc<Mock>,
    done: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if !self.done {
            self.mock
                .stats
                .streams_aborted
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn embeddings(State(m): S, h: HeaderMap, body: Bytes) -> Response {
    let v = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    remember(&m, &v, &h);
    if let Some(r) = preflight(&m, &h).await {
        return r;
    }
    let inputs: Vec<Value> = match v.get("input") {
        Some(Value::Array(a)) => a.clone(),
        Some(other) => vec![other.clone()],
        None => vec![],
    };
    // `dimensions` sets the length (default 8); `encoding_format: "base64"` (what the OpenAI
    // Node SDK asks for by default) sends the little-endian f32 bytes in base64, as OpenAI does
    let dims = v
        .get("dimensions")
        .and_then(Value::as_u64)
        .unwrap_or(8)
        .clamp(1, 4096) as usize;
    let base64 = v.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, inp)| {
            let emb = bag_of_words(inp, dims);
            let embedding = if base64 {
                use base64::Engine;
                let bytes: Vec<u8> = emb.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(emb)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let pt = prompt_tokens(&v);
    let out = json!({"object": "list", "data": data, "model": v.get("model"), "usage": {"prompt_tokens": pt, "total_tokens": pt}});
    (
        [(header::CONTENT_TYPE, "application/json")],
        out.to_string(),
    )
        .into_response()
}

/// A deterministic embedding that depends on the words: each lowercased word (letters and
/// digits) counted in one of `dims` slots chosen by its hash (FNV-1a, then mixed), the counts
/// normalized to length 1. Texts sharing words point the same way, so similar texts score
/// higher by cosine (no signs: two words can never cancel each other out).
/// An input without words gets a fixed vector from its length.
fn bag_of_words(inp: &Value, dims: usize) -> Vec<f32> {
    let text = match inp {
        Value::String(s) => s.to_lowercase(),
        other => other.to_string(),
    };
    let mut v = vec![0f32; dims];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in word.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // splitmix64's finalizer: FNV's low bits alone spread poorly over few slots
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        v[(h % dims as u64) as usize] += 1.0;
    }
    if v.iter().all(|x| *x == 0.0) {
        let seed = text.len() as f32;
        v = (0..dims)
            .map(|k| ((seed + k as f32) * 0.01).sin() + 0.5)
            .collect();
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

async fn images(State(m): S, h: HeaderMap, body: Bytes) -> Response {
    let v = match parse(&body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    remember(&m, &v, &h);
    if let Some(r) = preflight(&m, &h).await {
        return r;
    }
    let n = v.get("n").and_then(Value::as_u64).unwrap_or(1).clamp(1, 10);
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"url": format!("https://mock.invalid/image/{i}.png"), "revised_prompt": v.get("prompt")}))
        .collect();
    let out = json!({"created": 1_700_000_000u64, "data": data});
    (
        [(header::CONTENT_TYPE, "application/json")],
        out.to_string(),
    )
        .into_response()
}

/// Read an upload as a stream, counting bytes, never holding it whole.
async fn upload(m: &Mock, h: &HeaderMap, body: Body) -> Result<u64, Response> {
    let mut n: u64 = 0;
    let mut s = body.into_data_stream();
    while let Some(chunk) = s.next().await {
        match chunk {
            Ok(c) => n += c.len() as u64,
            Err(_) => return Err(error_response(400)),
        }
    }
    m.stats.upload_bytes.fetch_add(n, Ordering::Relaxed);
    remember(m, &json!({"multipart_bytes": n}), h);
    if let Some(r) = preflight(m, h).await {
        return Err(r);
    }
    Ok(n)
}

fn json_response(v: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

async fn audio(State(m): S, h: HeaderMap, body: Body) -> Response {
    match upload(&m, &h, body).await {
        // OpenAI reports whisper's billed seconds in `usage`; verbose answers add `duration`
        Ok(n) => {
            let secs = h
                .get("x-mock-audio-seconds")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(3.0);
            json_response(
                json!({"text": "Olá do mock da catraca.", "bytes_received": n,
                "duration": secs, "usage": {"type": "duration", "seconds": secs.ceil() as u64}}),
            )
        }
        Err(r) => r,
    }
}

/// SabIA's OCR answer shape.
async fn ocr(State(m): S, h: HeaderMap, body: Body) -> Response {
    match upload(&m, &h, body).await {
        Ok(n) => json_response(json!({"success": true, "data": {
            "text": "Texto extraído pelo mock da catraca.", "confidence": 0.95,
            "processingTime": 0.01, "language": "pt", "bytesReceived": n}})),
        Err(r) => r,
    }
}

/// SabIA's document recognition answer shape.
async fn recognition(State(m): S, h: HeaderMap, body: Body) -> Response {
    match upload(&m, &h, body).await {
        Ok(n) => json_response(json!({"success": true, "data": {
            "type": "cpf", "confidence": 0.98,
            "fields": {"number": "123.456.789-00", "name": "João Silva"},
            "processingTime": 0.02, "bytesReceived": n}})),
        Err(r) => r,
    }
}

async fn models(State(m): S, h: HeaderMap) -> Response {
    if let Some(r) = preflight(&m, &h).await {
        return r;
    }
    // a key the provider does not know (the vault's `test` checks keys here)
    let bearer = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|k| k.starts_with("sk-invalid")) {
        let err = json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}});
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            err.to_string(),
        )
            .into_response();
    }
    let out = json!({"object": "list", "data": [{"id": "mock-model", "object": "model", "created": 1_700_000_000u64, "owned_by": "mock"}]});
    (
        [(header::CONTENT_TYPE, "application/json")],
        out.to_string(),
    )
        .into_response()
}

/// `POST /mock/config {"fail_status":500,"fail_rate":1.0,"latency_ms":0}`: change the process
/// knobs at run time (tests use it to break and heal a provider).
async fn set_config(State(m): S, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return error_response(400);
    };
    let mut o = m.opts.lock();
    if let Some(s) = v.get("fail_status").and_then(Value::as_u64) {
        o.fail_status = s as u16;
    }
    if let Some(r) = v.get("fail_rate").and_then(Value::as_f64) {
        o.fail_rate = r.clamp(0.0, 1.0);
    }
    if let Some(l) = v.get("latency_ms").and_then(Value::as_u64) {
        o.latency = Duration::from_millis(l);
    }
    if let Some(u) = v.get("graph_webhook_url") {
        o.graph_webhook_url = u.as_str().map(str::to_string);
    }
    if let Some(u) = v.get("graph_app_secret") {
        o.graph_app_secret = u.as_str().map(str::to_string);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn stats(State(m): S) -> Result<Response, Infallible> {
    let s = &m.stats;
    let out = json!({
        "requests": s.requests.load(Ordering::Relaxed),
        "streams_started": s.streams_started.load(Ordering::Relaxed),
        "streams_completed": s.streams_completed.load(Ordering::Relaxed),
        "streams_aborted": s.streams_aborted.load(Ordering::Relaxed),
        "upload_bytes": s.upload_bytes.load(Ordering::Relaxed),
        "reported_prompt_tokens": s.reported_prompt.load(Ordering::Relaxed),
        "reported_completion_tokens": s.reported_completion.load(Ordering::Relaxed),
        "last_body": s.last_body.lock().clone(),
        "last_headers": s.last_headers.lock().clone(),
        "graph_calls": s.graph_calls.lock().clone(),
        "graph_webhooks": s.graph_webhooks.lock().clone(),
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        out.to_string(),
    )
        .into_response())
}

/// `POST /psp/pay {"br_code" | "txid", "amount"?, "end_to_end_id"?, "webhook_url", "secret",
/// "horario"?}`: a PSP stand-in that "pays" a PIX charge. The txid and amount come from the
/// BR Code (its CRC checked) unless given; the endToEndId is a fresh BCB-shaped one unless
/// given (give the same one twice to redeliver). It POSTs `{"pix":[{"endToEndId","txid",
/// "valor","horario"}]}` to `webhook_url` with `X-Signature: sha256=<hex HMAC-SHA256 of the
/// body with secret>`, and answers `{"end_to_end_id","sent","status","body"}` with the
/// webhook's status and JSON answer (502 when the webhook cannot be reached).
async fn psp_pay(body: Bytes) -> Response {
    let bad =
        |m: String| (StatusCode::BAD_REQUEST, axum::Json(json!({"error": m}))).into_response();
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return bad("body must be JSON".into());
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let (mut txid, mut amount) = (text("txid"), text("amount"));
    if let Some(code) = text("br_code") {
        match crate::domain::pix::decode(&code) {
            Ok(c) => {
                txid = txid.or(Some(c.txid));
                amount = amount.or(Some(
                    crate::domain::pix::amount_text(c.amount).unwrap_or_default(),
                ));
            }
            Err(e) => return bad(format!("br_code: {e}")),
        }
    }
    let (Some(txid), Some(amount), Some(url), Some(secret)) =
        (txid, amount, text("webhook_url"), text("secret"))
    else {
        return bad("br_code (or txid and amount), webhook_url and secret are required".into());
    };
    let now = time::OffsetDateTime::now_utc();
    let e2e = text("end_to_end_id").unwrap_or_else(|| {
        let stamp = now
            .format(time::macros::format_description!(
                "[year][month][day][hour][minute]"
            ))
            .unwrap_or_default();
        let tail: String = std::iter::repeat_with(fastrand::alphanumeric)
            .take(11)
            .collect();
        format!("E99999999{stamp}{tail}")
    });
    let horario = text("horario").unwrap_or_else(|| {
        now.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    });
    let sent =
        json!({"pix": [{"endToEndId": e2e, "txid": txid, "valor": amount, "horario": horario}]});
    let raw = sent.to_string();
    let signature = crate::domain::pix::sign(&secret, raw.as_bytes());
    let r = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("x-signature", signature)
        .body(raw)
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match r {
        Ok(r) => {
            let status = r.status().as_u16();
            let answer = r.json::<Value>().await.unwrap_or(Value::Null);
            json_response(
                json!({"end_to_end_id": e2e, "sent": sent, "status": status, "body": answer}),
            )
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            axum::Json(json!({"error": format!("webhook unreachable: {e}"), "end_to_end_id": e2e})),
        )
            .into_response(),
    }
}

// ---- WhatsApp Cloud API (Graph) stand-in ----------------------------------------------------

/// A Graph API error answer (`{"error":{message,type,code,fbtrace_id}}`).
fn graph_error(status: StatusCode, code: u64, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": "OAuthException", "code": code,
        "fbtrace_id": "AmockTrace"}});
    (status, axum::Json(body)).into_response()
}

/// Record a Graph call; `Some` answer (401, code 190) without a Bearer token or with one
/// containing `invalid` (how tests present a revoked token).
fn graph_call(m: &Mock, method: &str, path: &str, h: &HeaderMap, body: Value) -> Option<Response> {
    m.stats.requests.fetch_add(1, Ordering::Relaxed);
    let auth = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    m.stats
        .graph_calls
        .lock()
        .push(json!({"method": method, "path": path, "authorization": auth, "body": body}));
    match auth.strip_prefix("Bearer ") {
        Some(t) if !t.is_empty() && !t.contains("invalid") => None,
        _ => Some(graph_error(
            StatusCode::UNAUTHORIZED,
            190,
            "Invalid OAuth access token - Cannot parse access token",
        )),
    }
}

/// `GET /graph/{version}/me`: the token's user (what the vault's `test` calls).
async fn graph_me(
    State(m): S,
    axum::extract::Path(version): axum::extract::Path<String>,
    h: HeaderMap,
) -> Response {
    if let Some(r) = graph_call(&m, "GET", &format!("/graph/{version}/me"), &h, Value::Null) {
        return r;
    }
    json_response(json!({"id": "100000000000001", "name": "Mock System User"}))
}

/// `GET /graph/{version}/{waba_id}/phone_numbers`: two numbers per WABA, `<waba>1` connected
/// and verified, `<waba>2` pending and not verified.
async fn graph_phone_numbers(
    State(m): S,
    axum::extract::Path((version, waba)): axum::extract::Path<(String, String)>,
    h: HeaderMap,
) -> Response {
    let path = format!("/graph/{version}/{waba}/phone_numbers");
    if let Some(r) = graph_call(&m, "GET", &path, &h, Value::Null) {
        return r;
    }
    if !waba.bytes().all(|b| b.is_ascii_digit()) || waba.len() > 25 {
        return graph_error(StatusCode::BAD_REQUEST, 100, "Unsupported get request.");
    }
    let tail = &waba[waba.len().saturating_sub(4)..];
    json_response(json!({"data": [
        {"id": format!("{waba}1"), "display_phone_number": format!("+55 11 99{tail}-0001"),
         "verified_name": "Mock Store", "code_verification_status": "VERIFIED",
         "quality_rating": "GREEN", "status": "CONNECTED"},
        {"id": format!("{waba}2"), "display_phone_number": format!("+55 11 99{tail}-0002"),
         "verified_name": "Mock Store 2", "code_verification_status": "NOT_VERIFIED",
         "quality_rating": "UNKNOWN", "status": "PENDING"}
    ], "paging": {"cursors": {"before": "QVFI", "after": "QVFI"}}}))
}

/// `POST /graph/{version}/{phone_number_id}/messages`: checks the body as the Cloud API does
/// (`messaging_product: whatsapp`, `to`, a `text.body` or a `template.name` and
/// `template.language.code`), answers a fresh `wamid.…`, and then, when a webhook URL and app
/// secret are set (`POST /mock/config {"graph_webhook_url", "graph_app_secret"}`), posts the
/// signed status webhooks `sent` and `delivered` for it, in order. The process latency
/// (`latency_ms`) applies after the call is recorded.
async fn graph_messages(
    State(m): S,
    axum::extract::Path((version, pnid)): axum::extract::Path<(String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = format!("/graph/{version}/{pnid}/messages");
    if let Some(r) = graph_call(&m, "POST", &path, &h, v.clone()) {
        return r;
    }
    let latency = m.opts.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let to = v.get("to").and_then(Value::as_str).unwrap_or("");
    let ok = v.get("messaging_product").and_then(Value::as_str) == Some("whatsapp")
        && !to.is_empty()
        && match v.get("type").and_then(Value::as_str).unwrap_or("text") {
            "text" => v
                .pointer("/text/body")
                .and_then(Value::as_str)
                .is_some_and(|b| !b.is_empty()),
            "template" => {
                v.pointer("/template/name")
                    .and_then(Value::as_str)
                    .is_some()
                    && v.pointer("/template/language/code")
                        .and_then(Value::as_str)
                        .is_some()
            }
            _ => false,
        };
    if !ok {
        return graph_error(StatusCode::BAD_REQUEST, 100, "(#100) Invalid parameter");
    }
    use base64::Engine;
    let raw: [u8; 18] = std::array::from_fn(|_| fastrand::u8(..));
    let wamid = format!(
        "wamid.{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    let (url, secret) = {
        let o = m.opts.lock();
        (o.graph_webhook_url.clone(), o.graph_app_secret.clone())
    };
    if let (Some(url), Some(secret)) = (url, secret) {
        let (m2, wamid2, to2) = (m.clone(), wamid.clone(), to.to_string());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for status in ["sent", "delivered"] {
                let ts = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
                let payload = json!({"object": "whatsapp_business_account", "entry": [{
                    "id": "0", "changes": [{"field": "messages", "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "5511999990001", "phone_number_id": pnid},
                        "statuses": [{"id": wamid2, "status": status, "timestamp": ts,
                                      "recipient_id": to2}]}}]}]});
                let raw = payload.to_string();
                let sig = crate::domain::whatsapp::sign(&secret, raw.as_bytes());
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", sig)
                    .body(raw)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let code = r.map(|r| r.status().as_u16()).unwrap_or(0);
                m2.stats
                    .graph_webhooks
                    .lock()
                    .push(json!({"wamid": wamid2, "status": status, "http_status": code}));
            }
        });
    }
    json_response(json!({"messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": wamid, "message_status": "accepted"}]}))
}
