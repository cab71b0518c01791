//! Per-request state: everything the phases learn about one request, in one place.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::route::{Candidates, KeyInfo, Live};
use crate::error::ApiError;
use crate::sse::{SseScanner, Usage};

/// The AI routes the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/chat/completions`
    Chat,
    /// `POST /v1/completions`
    Completions,
    /// `POST /v1/embeddings`
    Embeddings,
    /// `POST /v1/images/generations`
    Images,
    /// `POST /v1/audio/transcriptions` (multipart, streamed through)
    Audio,
    /// `POST /v1/ocr` (multipart, streamed through; SabIA)
    Ocr,
    /// `POST /v1/recognition` (multipart, streamed through; SabIA)
    Recognition,
    /// `GET /v1/models`
    Models,
    /// `GET /healthz`
    Health,
    /// `GET /v1/usage/rate-limit` (Tokia): the caller's keys' RPM/TPM use and headroom.
    RateLimitUsage,
    /// `POST /api/v1/llm/invoke` (bradax): a chat completion in bradax's shapes.
    BradaxInvoke,
    /// `POST /api/v1/llm/stream` (bradax): the same, streamed as `{"delta","finished"}` events.
    BradaxStream,
    /// `POST /v1/responses` (OpenAI's Responses API, passed through; metered from its `usage`).
    Responses,
    /// `GET /v1/models/{id}` (one catalog entry; answered by the gateway).
    ModelRetrieve,
    /// `POST /v1/moderations` (priced per input token).
    Moderations,
    /// `POST /v1/audio/speech` (JSON in, audio streamed out; priced per input character).
    Speech,
    /// `POST /v1/audio/translations` (multipart, streamed through; priced per audio second).
    AudioTranslations,
    /// `POST /v1/images/edits` (multipart; priced per image, `n` from the form).
    ImageEdits,
    /// `POST /v1/rerank` (Cohere/Jina shape; priced per search).
    Rerank,
    /// `POST /v1/messages` (Anthropic's Messages API inbound): translated to a chat completion
    /// and its answer back (`gateway::messages`).
    Messages,
}

/// Which contract's error shape a gateway route answers in. The renderers live with their
/// contracts (`ApiError::body` for OpenAI's, `surfaces::sabia::wire::gateway_error` for
/// SabIA's); the error catalogue itself knows no contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `{"error": {"message", "type", "param", "code"}}`.
    OpenAi,
    /// `{"success": false, "error": {"code", "message"}}`.
    Sabia,
    /// `{"error", "message", "details": [{"code", "message"}], "request_id", "timestamp"}`.
    Bradax,
    /// `{"type": "error", "error": {"type", "message"}}` (Anthropic's Messages API).
    Anthropic,
}

impl Route {
    /// The error shape this route's clients parse.
    pub fn dialect(self) -> Dialect {
        match self {
            Route::Ocr | Route::Recognition => Dialect::Sabia,
            Route::BradaxInvoke | Route::BradaxStream => Dialect::Bradax,
            Route::Messages => Dialect::Anthropic,
            _ => Dialect::OpenAi,
        }
    }

    /// Every route, in declaration order ([`Route::index`]).
    pub const ALL: [Route; 20] = [
        Route::Chat,
        Route::Completions,
        Route::Embeddings,
        Route::Images,
        Route::Audio,
        Route::Ocr,
        Route::Recognition,
        Route::Models,
        Route::Health,
        Route::RateLimitUsage,
        Route::BradaxInvoke,
        Route::BradaxStream,
        Route::Responses,
        Route::ModelRetrieve,
        Route::Moderations,
        Route::Speech,
        Route::AudioTranslations,
        Route::ImageEdits,
        Route::Rerank,
        Route::Messages,
    ];
    /// How many routes there are.
    pub const COUNT: usize = Route::ALL.len();

    /// Position in [`Route::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Match a request path (query already stripped). OpenAI's routes answer with and without
    /// the `/v1` prefix (`/chat/completions` as OpenAI-compatible servers do); the others only
    /// at their exact paths. No allocation: one prefix strip and two `match`es on `&str`.
    pub fn from_path(path: &str) -> Option<Route> {
        Some(match path {
            "/v1/ocr" => Route::Ocr,
            "/v1/recognition" => Route::Recognition,
            "/healthz" => Route::Health,
            "/v1/usage/rate-limit" => Route::RateLimitUsage,
            "/api/v1/llm/invoke" => Route::BradaxInvoke,
            "/api/v1/llm/stream" => Route::BradaxStream,
            "/v1/messages" => Route::Messages,
            _ => return Route::openai_path(path.strip_prefix("/v1").unwrap_or(path)),
        })
    }

    /// OpenAI's routes by their path after `/v1` (`/models/{id}` for any non-empty id).
    fn openai_path(p: &str) -> Option<Route> {
        Some(match p {
            "/chat/completions" => Route::Chat,
            "/completions" => Route::Completions,
            "/embeddings" => Route::Embeddings,
            "/images/generations" => Route::Images,
            "/audio/transcriptions" => Route::Audio,
            "/models" => Route::Models,
            "/responses" => Route::Responses,
            "/moderations" => Route::Moderations,
            "/audio/speech" => Route::Speech,
            "/audio/translations" => Route::AudioTranslations,
            "/images/edits" => Route::ImageEdits,
            "/rerank" => Route::Rerank,
            _ if p.len() > 8 && p.starts_with("/models/") => Route::ModelRetrieve,
            _ => return None,
        })
    }

    /// Path appended to the provider's base URL.
    pub fn upstream_suffix(self) -> &'static str {
        match self {
            Route::Chat | Route::BradaxInvoke | Route::BradaxStream | Route::Messages => {
                "/chat/completions"
            }
            Route::Completions => "/completions",
            Route::Embeddings => "/embeddings",
            Route::Images => "/images/generations",
            Route::Audio => "/audio/transcriptions",
            Route::Ocr => "/ocr",
            Route::Recognition => "/recognition",
            Route::Models | Route::ModelRetrieve => "/models",
            Route::Health | Route::RateLimitUsage => "/",
            Route::Responses => "/responses",
            Route::Moderations => "/moderations",
            Route::Speech => "/audio/speech",
            Route::AudioTranslations => "/audio/translations",
            Route::ImageEdits => "/images/edits",
            Route::Rerank => "/rerank",
        }
    }

    /// Routes only an OpenAI-kind deployment serves (passed through as they are; no other
    /// dialect has them): a model's candidates of other kinds are skipped, and none left is
    /// the client's 400.
    pub fn openai_only(self) -> bool {
        matches!(
            self,
            Route::Responses
                | Route::Moderations
                | Route::Speech
                | Route::AudioTranslations
                | Route::ImageEdits
                | Route::Rerank
        )
    }

    /// bradax's LLM routes (their bodies and answers are translated).
    pub fn is_bradax(self) -> bool {
        matches!(self, Route::BradaxInvoke | Route::BradaxStream)
    }

    /// Uploads streamed through as multipart, never read ahead.
    pub fn is_upload(self) -> bool {
        matches!(
            self,
            Route::Audio
                | Route::Ocr
                | Route::Recognition
                | Route::AudioTranslations
                | Route::ImageEdits
        )
    }

    /// Label for metrics and usage events.
    pub fn label(self) -> &'static str {
        match self {
            Route::Chat => "chat.completions",
            Route::Completions => "completions",
            Route::Embeddings => "embeddings",
            Route::Images => "images.generations",
            Route::Audio => "audio.transcriptions",
            Route::Ocr => "ocr",
            Route::Recognition => "recognition",
            Route::Models => "models",
            Route::Health => "healthz",
            Route::RateLimitUsage => "usage.rate_limit",
            Route::BradaxInvoke => "bradax.llm.invoke",
            Route::BradaxStream => "bradax.llm.stream",
            Route::Responses => "responses",
            Route::ModelRetrieve => "models.retrieve",
            Route::Moderations => "moderations",
            Route::Speech => "audio.speech",
            Route::AudioTranslations => "audio.translations",
            Route::ImageEdits => "images.edits",
            Route::Rerank => "rerank",
            Route::Messages => "messages",
        }
    }
}

/// How an upstream attempt failed, for the final error if no attempt succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptFailure {
    /// TCP/TLS connect failed.
    Connect,
    /// Connect or read timed out.
    Timeout,
    /// Upstream answered 429 or 5xx.
    Status(u16),
    /// Connection broke during the exchange.
    Io,
}

/// Per-request context.
pub struct RequestCtx {
    /// When the request arrived.
    pub start: Instant,
    /// When the current upstream attempt started.
    pub attempt_start: Instant,
    /// The key presented is a Tokia key (`sk-tokia-`): a low balance is Tokia's
    /// `saldo_insuficiente`.
    pub tokia_key: bool,
    /// Wall-clock arrival time, for the usage event.
    pub ts: time::OffsetDateTime,
    /// Request id.
    pub request_id: String,
    /// Config snapshot for the whole request.
    pub live: Option<Arc<Live>>,
    /// Matched route.
    pub route: Option<Route>,
    /// The caller's key.
    pub key: Option<Arc<KeyInfo>>,
    /// Catalog model index.
    pub model: Option<usize>,
    /// Public model name as the client sent it.
    pub model_name: Option<Arc<str>>,
    /// Client asked for a stream.
    pub stream: bool,
    /// The gateway added `include_usage`; the usage event must be hidden from the client.
    pub hide_usage: bool,
    /// The client's body as read (pre-read routes).
    pub body: Option<Bytes>,
    /// Parsed body, when a rewrite cannot be done by splicing bytes.
    pub body_json: Option<serde_json::Value>,
    /// Byte range of the `model` string's contents in `body`, when it has no escapes.
    pub model_span: Option<(usize, usize)>,
    /// The client sent no `stream_options` at all.
    pub stream_options_absent: bool,
    /// Body for the current attempt.
    pub upstream_body: Option<Bytes>,
    /// Streamed (not pre-read) request body bytes seen.
    pub streamed_body_bytes: u64,
    /// Deployments in the order to try.
    pub candidates: Candidates,
    /// Attempts started.
    pub attempts: u32,
    /// Attempts allowed for this request.
    pub max_attempts: u32,
    /// Deployment of the current attempt.
    pub deployment: Option<usize>,
    /// Last attempt's failure.
    pub last_failure: Option<AttemptFailure>,
    /// Status of the current upstream response.
    pub upstream_status: Option<u16>,
    /// The response header is on its way to the client: no more retries.
    pub response_started: bool,
    /// The current upstream response is an SSE stream.
    pub sse_active: bool,
    /// Scanner for SSE responses.
    pub sse: SseScanner,
    /// Tail of a non-stream response body, for its `usage`.
    pub resp_tail: BytesMut,
    /// Bytes dropped from the front of `resp_tail`.
    pub resp_cut: usize,
    /// Usage found in the response.
    pub usage: Option<Usage>,
    /// Time to first upstream body byte.
    pub ttft: Option<Duration>,
    /// Whole-exchange deadline of the current provider.
    pub total_timeout: Option<Duration>,
    /// The error a stream must end with (set by the phase that found it).
    pub stream_error: Option<ApiError>,
    /// Error code sent to the client, if any.
    pub error_code: Option<&'static str>,
    /// The client went away.
    pub client_disconnected: bool,
    /// `x-session-id` / `x-tokia-session-id`.
    pub session_id: Option<String>,
    /// The client's own request id (`x-client-request-id`, else `x-request-id`): echoed back,
    /// sent upstream as `x-client-request-id` and stored on the usage event.
    pub client_request_id: Option<String>,
    /// Forwarded to the admin app (not AI traffic).
    pub admin: Option<std::net::SocketAddr>,
    /// Images asked for (priced per image).
    pub images: u64,
    /// Audio transcribed, milliseconds (from the upstream's answer).
    pub audio_ms: u64,
    /// Characters of `input` to speak (`/v1/audio/speech`, priced per character).
    pub chars: u64,
    /// Searches of a rerank (`/v1/rerank`, priced per search).
    pub searches: u64,
    /// The rate-limit decision, for the `X-RateLimit-*` headers.
    pub rate: Option<crate::limits::Decision>,
    /// Where the request was counted, settled when it ends.
    pub ticket: Option<crate::limits::Ticket>,
    /// Money held on the balance/budget until the request ends.
    pub reservation: Option<crate::funds::Reservation>,
    /// Counts this request as in flight until the context is dropped (after `logging`).
    pub in_flight: Option<super::conn::InFlightGuard>,
    /// When the client must have sent its whole body.
    pub body_deadline: Option<Instant>,
    /// Time spent inside catraca so far, when `overhead_header` is on.
    pub overhead: Option<Duration>,
    /// A bradax caller (a bradax access token): its grant and, on bradax's LLM routes, the
    /// answer being translated.
    pub bradax: Option<Box<super::bradax::BxState>>,
    /// `/v1/messages`: the canonical answer being re-encoded in Anthropic's shapes.
    pub messages: Option<Box<super::messages::MsgState>>,
    /// The current attempt's answer being translated from another provider dialect (`None`
    /// for OpenAI-shaped providers: nothing is allocated for them).
    pub xlate: Option<Box<super::translate::Xlate>>,
    /// The first candidate's translated request body (its deployment index), made while the
    /// request was checked so a body the dialect cannot express is the client's 400.
    pub translated: Option<(usize, Bytes)>,
    /// A client error found while preparing an attempt (a later candidate's dialect cannot
    /// express the request): the answer instead of a gateway failure.
    pub client_error: Option<ApiError>,
}

impl RequestCtx {
    /// A fresh context.
    pub fn new() -> Self {
        let now = Instant::now();
        RequestCtx {
            start: now,
            attempt_start: now,
            tokia_key: false,
            ts: time::OffsetDateTime::UNIX_EPOCH,
            request_id: String::new(),
            live: None,
            route: None,
            key: None,
            model: None,
            model_name: None,
            stream: false,
            hide_usage: false,
            body: None,
            body_json: None,
            model_span: None,
            stream_options_absent: false,
            upstream_body: None,
            streamed_body_bytes: 0,
            candidates: Candidates::default(),
            attempts: 0,
            max_attempts: 1,
            deployment: None,
            last_failure: None,
            upstream_status: None,
            response_started: false,
            sse_active: false,
            sse: SseScanner::default(),
            resp_tail: BytesMut::new(),
            resp_cut: 0,
            usage: None,
            ttft: None,
            total_timeout: None,
            stream_error: None,
            error_code: None,
            client_disconnected: false,
            session_id: None,
            client_request_id: None,
            admin: None,
            images: 0,
            audio_ms: 0,
            chars: 0,
            searches: 0,
            rate: None,
            ticket: None,
            reservation: None,
            in_flight: None,
            body_deadline: None,
            overhead: None,
            bradax: None,
            messages: None,
            xlate: None,
            translated: None,
            client_error: None,
        }
    }

    /// Whether another attempt may follow the current one.
    pub fn can_retry(&self) -> bool {
        !self.response_started
            && self.attempts < self.max_attempts
            && (self.attempts as usize) < self.candidates.len()
    }

    /// The error to give the client when no attempt succeeded.
    pub fn exhausted_error(&self) -> ApiError {
        match self.last_failure {
            Some(AttemptFailure::Timeout) => ApiError::UpstreamTimeout,
            Some(AttemptFailure::Status(_)) => ApiError::UpstreamOverloaded,
            _ => ApiError::UpstreamUnavailable(self.attempts),
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Route;

    #[test]
    fn route_indexes_follow_all() {
        for (i, r) in Route::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn openai_routes_answer_with_and_without_v1() {
        for (p, r) in [
            ("/chat/completions", Route::Chat),
            ("/embeddings", Route::Embeddings),
            ("/responses", Route::Responses),
            ("/moderations", Route::Moderations),
            ("/audio/speech", Route::Speech),
            ("/audio/translations", Route::AudioTranslations),
            ("/images/edits", Route::ImageEdits),
            ("/rerank", Route::Rerank),
            ("/models", Route::Models),
            ("/models/gpt-4o", Route::ModelRetrieve),
        ] {
            assert_eq!(Route::from_path(p), Some(r), "{p}");
            assert_eq!(Route::from_path(&format!("/v1{p}")), Some(r), "/v1{p}");
        }
        // the empty id, other contracts' paths and near misses are not OpenAI routes
        for p in [
            "/v1/models/",
            "/models/",
            "/ocr",
            "/usage/rate-limit",
            "/v1/v1/chat/completions",
            "/v1chat/completions",
            "/llm/invoke",
            "/v1/chat/completions/",
            "/",
            "",
        ] {
            assert_eq!(Route::from_path(p), None, "{p}");
        }
        assert_eq!(Route::from_path("/v1/ocr"), Some(Route::Ocr));
    }
}
