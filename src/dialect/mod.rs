//! Provider dialects. catraca's canonical request and answer shapes are OpenAI's (chat
//! completions, embeddings): a deployment whose provider has another `kind` gets its request
//! translated on the way out and its answer translated back, a stream chunk by chunk as it
//! arrives (never collected).
//!
//! Everything here is pure (bytes and JSON in, bytes out, no I/O): the data plane calls it from
//! `gateway::upstream` (path, credentials, body) and `gateway::stream` (answers), and the
//! benches and property tests call it directly. Each dialect module has the same functions;
//! the dispatchers below pick one by [`Kind`].
//!
//! Inbound, [`messages`] is the other direction: Anthropic's Messages API as clients send it,
//! turned into the canonical OpenAI request, and the canonical answer turned back.

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod gemini;
pub mod messages;

use std::sync::Arc;

use bytes::BytesMut;

use crate::error::ApiError;
use crate::sse::Usage;

/// A provider's API dialect (`kind:` in the YAML; `openai` when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// OpenAI's API (and every OpenAI-compatible server): bodies pass through.
    #[default]
    OpenAi,
    /// Azure OpenAI: OpenAI's bodies, the deployment in the path, `api-key`, `api-version`.
    Azure,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API (`generateContent`).
    Gemini,
    /// Amazon Bedrock's Converse API, signed with SigV4.
    Bedrock,
}

impl Kind {
    /// Every kind, as the YAML spells it.
    pub const ALL: [(&'static str, Kind); 5] = [
        ("openai", Kind::OpenAi),
        ("azure", Kind::Azure),
        ("anthropic", Kind::Anthropic),
        ("gemini", Kind::Gemini),
        ("bedrock", Kind::Bedrock),
    ];

    /// The kind the YAML names.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.iter().find(|(n, _)| *n == s).map(|(_, k)| *k)
    }

    /// As the YAML spells it.
    pub fn as_str(self) -> &'static str {
        Kind::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .unwrap_or("openai")
    }

    /// Takes OpenAI's request and answer bodies as they are (no translation).
    pub fn speaks_openai(self) -> bool {
        matches!(self, Kind::OpenAi | Kind::Azure)
    }
}

/// The operations a non-OpenAI dialect may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Chat completions.
    Chat,
    /// Embeddings.
    Embeddings,
}

/// What translating an answer needs to know of its request.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The answer's `id` (`chatcmpl-` and the request id).
    pub id: String,
    /// The model name the client asked for: answers carry it, never the upstream's name.
    pub model: Arc<str>,
    /// `created`, Unix seconds.
    pub created: i64,
    /// The client asked for the final usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Embeddings only: the client asked for `encoding_format: "base64"` (the OpenAI SDKs'
    /// default), so translated vectors go out as base64 of little-endian f32s.
    pub base64: bool,
}

impl Meta {
    /// The bytes every OpenAI chunk of this answer starts with, up to and including
    /// `"choices":` (built once per answer; each decoder appends its choices).
    pub fn chunk_prefix(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(96 + self.id.len() + self.model.len());
        p.extend_from_slice(b"data: {\"id\":");
        let _ = serde_json::to_writer(&mut p, &self.id);
        p.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        p.extend_from_slice(itoa::Buffer::new().format(self.created).as_bytes());
        p.extend_from_slice(b",\"model\":");
        let _ = serde_json::to_writer(&mut p, &*self.model);
        p.extend_from_slice(b",\"choices\":");
        p
    }
}

/// A provider's stream turned into OpenAI `chat.completion.chunk` events as it arrives.
pub trait StreamDecoder: Send + Sync {
    /// The next bytes from the upstream, split anywhere: append the OpenAI SSE events
    /// (`data: {…}\n\n`) they complete to `out`. Nothing complete is held back.
    fn feed(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), StreamError>;
    /// The upstream ended: append what is left, the usage chunk when the client asked for it,
    /// and `data: [DONE]\n\n`. An error when the stream stopped mid-event or before its end.
    fn finish(&mut self, out: &mut BytesMut) -> Result<(), StreamError>;
    /// The token counts read so far (the final ones once finished); `None` when the provider
    /// reported none or implausible ones (past [`crate::sse::MAX_REPORTED_TOKENS`]).
    fn usage(&self) -> Option<Usage>;
}

/// A provider's answer that cannot be translated: the client's stream ends with an error event
/// (a whole answer becomes a 502).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError {
    /// Bytes that are not the dialect's framing or JSON (what was wrong).
    Malformed(&'static str),
    /// One event over the size limit.
    TooLarge,
    /// The provider reported an error mid-stream (its message).
    Upstream(String),
}

/// The whole OpenAI answer translated from a dialect, and the usage it reported.
pub type Answer = (Vec<u8>, Option<Usage>);

/// The upstream path (after the provider's base path, query included) of `op`.
pub fn path(kind: Kind, op: Op, upstream_model: &str, stream: bool, api_version: &str) -> String {
    match kind {
        Kind::OpenAi => match op {
            Op::Chat => "/chat/completions".into(),
            Op::Embeddings => "/embeddings".into(),
        },
        Kind::Azure => azure::path(op, upstream_model, api_version),
        Kind::Anthropic => anthropic::path(op),
        Kind::Gemini => gemini::path(op, upstream_model, stream),
        Kind::Bedrock => bedrock::path(op, upstream_model, stream),
    }
}

/// The OpenAI request `req` (parsed, already validated as OpenAI's) as `kind`'s body, for the
/// deployment's `upstream_model`. A field the dialect cannot express is a 400 naming it.
pub fn request(
    kind: Kind,
    op: Op,
    req: &serde_json::Value,
    upstream_model: &str,
) -> Result<Vec<u8>, ApiError> {
    match (kind, op) {
        (Kind::Anthropic, Op::Chat) => anthropic::chat_request(req, upstream_model),
        (Kind::Gemini, Op::Chat) => gemini::chat_request(req),
        (Kind::Gemini, Op::Embeddings) => gemini::embeddings_request(req, upstream_model),
        (Kind::Bedrock, Op::Chat) => bedrock::chat_request(req),
        (Kind::Bedrock, Op::Embeddings) => bedrock::embeddings_request(req),
        (k, o) => Err(unsupported(k, o)),
    }
}

/// `kind`'s whole 2xx answer to `op` as OpenAI's.
pub fn answer(kind: Kind, op: Op, body: &[u8], meta: &Meta) -> Result<Answer, StreamError> {
    match (kind, op) {
        (Kind::Anthropic, Op::Chat) => anthropic::chat_answer(body, meta),
        (Kind::Gemini, Op::Chat) => gemini::chat_answer(body, meta),
        (Kind::Gemini, Op::Embeddings) => gemini::embeddings_answer(body, meta),
        (Kind::Bedrock, Op::Chat) => bedrock::chat_answer(body, meta),
        (Kind::Bedrock, Op::Embeddings) => bedrock::embeddings_answer(body, meta),
        _ => Err(StreamError::Malformed("no translation for this dialect")),
    }
}

/// A decoder for `kind`'s chat stream.
pub fn stream_decoder(kind: Kind, meta: Meta) -> Option<Box<dyn StreamDecoder>> {
    match kind {
        Kind::Anthropic => Some(Box::new(anthropic::Decoder::new(meta))),
        Kind::Gemini => Some(Box::new(gemini::Decoder::new(meta))),
        Kind::Bedrock => Some(Box::new(bedrock::Decoder::new(meta))),
        Kind::OpenAi | Kind::Azure => None,
    }
}

/// `kind`'s error answer (a non-2xx status and its body) as OpenAI's: the status the client
/// gets and `{"error": {"message", "type", "param", "code"}}`.
pub fn error(kind: Kind, status: u16, body: &[u8]) -> (u16, Vec<u8>) {
    match kind {
        Kind::Anthropic => anthropic::error_answer(status, body),
        Kind::Gemini => gemini::error_answer(status, body),
        Kind::Bedrock => bedrock::error_answer(status, body),
        Kind::OpenAi | Kind::Azure => (status, body.to_vec()),
    }
}

/// The 400 for an operation a dialect does not have.
pub fn unsupported(kind: Kind, op: Op) -> ApiError {
    ApiError::InvalidRequest(format!(
        "this model's deployment ({}) does not serve {}",
        kind.as_str(),
        match op {
            Op::Chat => "chat completions",
            Op::Embeddings => "embeddings",
        }
    ))
}
