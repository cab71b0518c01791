//! The YAML file as written by the operator: serde types, every unknown field an error.
//!
//! Defaults are stated in each field's doc comment; [`super::resolve`] turns these into the
//! validated [`super::Config`].

use serde::Deserialize;
use serde_saphyr::Spanned;

/// One gateway listener: an address, or an address with its settings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawListener {
    /// `host:port`
    Addr(Spanned<String>),
    /// `{addr, models_list}`
    Full(RawListenerSettings),
}

/// A listener with settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListenerSettings {
    /// `host:port`
    pub addr: Spanned<String>,
    /// Shape of `GET /v1/models` here: `both` (default; `{object, data, models}`, which the
    /// OpenAI SDK and Tokia's clients both parse), `openai` (`{object, data}`) or `tokia`
    /// (`{models}`).
    #[serde(default)]
    pub models_list: Option<Spanned<String>>,
}

impl RawListener {
    /// The address.
    pub fn addr(&self) -> &Spanned<String> {
        match self {
            RawListener::Addr(a) => a,
            RawListener::Full(f) => &f.addr,
        }
    }
}

/// Top level of `conf/catraca.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Gateway listeners: `host:port`, or `{addr: "host:port", models_list: both|openai|tokia}`
    /// for a listener whose `/v1/models` answers only one contract's shape. Env
    /// `CATRACA_LISTEN` (comma separated addresses) overrides. Default `["127.0.0.1:8080"]`.
    #[serde(default)]
    pub listen: Option<Vec<RawListener>>,
    /// Prometheus listener. Env `CATRACA_METRICS_LISTEN` overrides. Default `127.0.0.1:9090`.
    #[serde(default)]
    pub metrics_listen: Option<Spanned<String>>,
    /// Admin app listener (loopback; the gateway forwards non-AI paths to it). Runs when a
    /// database is configured. Env `CATRACA_ADMIN_LISTEN` overrides. Default `127.0.0.1:8081`.
    #[serde(default)]
    pub admin_listen: Option<Spanned<String>>,
    /// Worker threads of the proxy. Default: the number of cores.
    #[serde(default)]
    pub threads: Option<Spanned<usize>>,
    /// Let idle proxy threads steal each other's tasks. Default false (one runtime per
    /// thread: a connection stays on its thread; measured faster, loadtests/README.md).
    #[serde(default)]
    pub work_stealing: Option<Spanned<bool>>,
    /// Add `x-catraca-overhead-ms` to proxied responses: the time the request spent inside
    /// catraca (not waiting for the provider). Default false.
    #[serde(default)]
    pub overhead_header: Option<Spanned<bool>>,
    /// Idle upstream connections kept for reuse, across all providers. Default 128.
    #[serde(default)]
    pub upstream_keepalive_pool: Option<Spanned<usize>>,
    /// Largest JSON request body accepted, in bytes. Default 8388608 (8 MiB).
    #[serde(default)]
    pub max_body_bytes: Option<Spanned<u64>>,
    /// Largest multipart upload (audio) accepted, in bytes. Default 26214400 (25 MiB).
    #[serde(default)]
    pub max_upload_bytes: Option<Spanned<u64>>,
    /// Unix socket through which a new process (`serve --upgrade`) takes over the listening
    /// sockets of this one on SIGQUIT. Default `/tmp/catraca-upgrade.sock`.
    #[serde(default)]
    pub upgrade_sock: Option<Spanned<String>>,
    /// Seconds a SIGTERM waits for in-flight requests before exit. Default 30.
    #[serde(default)]
    pub grace_period_secs: Option<Spanned<u64>>,
    /// Largest single server-sent event an upstream may send (bytes before its blank line);
    /// past it the stream ends with an error event. Default 1048576 (1 MiB).
    #[serde(default)]
    pub max_sse_event_bytes: Option<Spanned<u64>>,
    /// What a client connection may take: deadlines for the request head and body, header
    /// caps, connections per IP.
    #[serde(default)]
    pub client: Option<RawClient>,
    /// Let a reload drop every key of the embedded mode, or a model that served traffic in the
    /// last 15 minutes (refused otherwise, with a log line). Default false.
    #[serde(default)]
    pub allow_destructive_reload: Option<Spanned<bool>>,
    /// Usage event sink of the no-database mode.
    #[serde(default)]
    pub usage: Option<RawUsage>,
    /// PostgreSQL. Present (or env `DATABASE_URL` set) = keys and usage in Postgres.
    #[serde(default)]
    pub database: Option<RawDatabase>,
    /// Failover and circuit breaker policy.
    #[serde(default)]
    pub failover: Option<RawFailover>,
    /// Billing: FX rate and default markup.
    #[serde(default)]
    pub pricing: Option<RawPricing>,
    /// Limiter back end (Redis) and its fallback.
    #[serde(default)]
    pub limits: Option<RawLimits>,
    /// The mail sender of the `outbox_email` table (password reset and email verification
    /// mails of the admin app). Absent (or no `smtp_url`) = mails stay queued.
    #[serde(default)]
    pub mail: Option<Spanned<RawMail>>,
    /// Webhook delivery.
    #[serde(default)]
    pub webhooks: Option<RawWebhooks>,
    /// PyTake's WhatsApp Cloud API (Graph base URL, webhook secrets). Absent = the defaults.
    #[serde(default)]
    pub whatsapp: Option<RawWhatsapp>,
    /// bradax's student tier (`{student_rpm, student_models}`). Absent = the defaults.
    #[serde(default)]
    pub bradax: Option<Spanned<crate::domain::bradax::Policy>>,
    /// bradax's vector collections: the embedding model and the in-memory vector cache.
    /// Absent = the defaults.
    #[serde(default)]
    pub vectors: Option<RawVectors>,
    /// bradax's graphs: the model of `llm` nodes that name none. Absent = the defaults.
    #[serde(default)]
    pub graphs: Option<RawGraphs>,
    /// The PIX receiver of top-ups (charges' BR Codes and the PSP's payment webhook). Absent =
    /// the PIX routes answer 503.
    #[serde(default)]
    pub pix: Option<Spanned<RawPix>>,
    /// Upstream providers (OpenAI-compatible HTTP APIs).
    #[serde(default)]
    pub providers: Vec<Spanned<RawProvider>>,
    /// Deployments: one provider serving one upstream model.
    #[serde(default)]
    pub deployments: Vec<Spanned<RawDeployment>>,
    /// Public model catalog: what clients ask for, its prices and the deployments serving it.
    #[serde(default)]
    pub models: Vec<Spanned<RawModel>>,
    /// API keys of the no-database mode.
    #[serde(default)]
    pub keys: Vec<Spanned<RawKey>>,
    /// Deprecated routes: `[{method, path, sunset?}]`. Each answers `Deprecated: true` (and
    /// `Sunset` when dated) and keeps working. Takes effect on start and on reload. Default none.
    #[serde(default)]
    pub deprecations: Vec<Spanned<RawDeprecation>>,
}

/// `client:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    /// Whole time a client may take to send its request head, from the first byte, in ms
    /// (each read also has this as its own timeout). Default 10000.
    #[serde(default)]
    pub header_timeout_ms: Option<Spanned<u64>>,
    /// Whole time a client may take to send a request body, in ms. Default 60000.
    #[serde(default)]
    pub body_timeout_ms: Option<Spanned<u64>>,
    /// Largest request head (request line and headers), bytes; past it 431. Default 32768.
    #[serde(default)]
    pub max_header_bytes: Option<Spanned<u64>>,
    /// Most request headers; past it 431. Default 100.
    #[serde(default)]
    pub max_headers: Option<Spanned<u64>>,
    /// Most connections open at once from one client IP; more are closed at accept. Default
    /// 512.
    #[serde(default)]
    pub max_connections_per_ip: Option<Spanned<u64>>,
    /// Read buffer of each client connection, bytes (Pingora's is 64 KiB). Every open
    /// connection holds one. Default 16384.
    #[serde(default)]
    pub read_buffer_bytes: Option<Spanned<u64>>,
}

/// `usage:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUsage {
    /// Append-only JSONL file of usage events. Default `catraca-usage.jsonl`.
    #[serde(default)]
    pub jsonl_path: Option<Spanned<String>>,
    /// Events held in memory before requests wait for the writer. Default 65536.
    #[serde(default)]
    pub queue_capacity: Option<Spanned<usize>>,
    /// Most events per write (one JSONL `write`, one Postgres statement). Default 1000.
    #[serde(default)]
    pub batch_size: Option<Spanned<u64>>,
    /// How long the writer lets a batch fill after its first event, ms (the most an event
    /// waits in memory while the writer is idle). Default 20.
    #[serde(default)]
    pub flush_ms: Option<Spanned<u64>>,
}

/// `database:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    /// Connection URL. Env `DATABASE_URL` overrides (keep passwords out of this file).
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Pool size. Default 8.
    #[serde(default)]
    pub max_connections: Option<Spanned<u32>>,
    /// Append-only file that holds usage events while Postgres is unreachable; replayed, exactly
    /// once, when it returns. Default `catraca-usage-spill.jsonl`.
    #[serde(default)]
    pub spill_path: Option<Spanned<String>>,
}

/// `pricing:` section. Decimal strings, at most 6 decimal places.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPricing {
    /// BRL per USD. Default "5.0".
    #[serde(default)]
    pub fx_usd_brl: Option<Spanned<String>>,
    /// Markup of models that set none. Default "1.0".
    #[serde(default)]
    pub default_markup: Option<Spanned<String>>,
    /// Output tokens reserved from a balance or budget when the client sets no `max_tokens`.
    /// Default 4096.
    #[serde(default)]
    pub reserve_output_tokens: Option<Spanned<u64>>,
}

/// `failover:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFailover {
    /// Upstream attempts per request, the first included. Default 3.
    #[serde(default)]
    pub max_attempts: Option<Spanned<u32>>,
    /// Consecutive failures that open a deployment's circuit. Default 3.
    #[serde(default)]
    pub failures_to_trip: Option<Spanned<u32>>,
    /// How long an open circuit keeps the deployment out of rotation, in ms. Default 30000.
    #[serde(default)]
    pub cooldown_ms: Option<Spanned<u64>>,
}

/// `webhooks:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhooks {
    /// Let webhooks call loopback addresses (127.0.0.0/8, ::1). Private, link-local and
    /// metadata addresses stay refused. For tests and single-box setups. Default false.
    #[serde(default)]
    pub allow_loopback: Option<Spanned<bool>>,
}

/// `vectors:` (bradax's vector collections).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVectors {
    /// Public model (of `models:`) that embeds documents and query texts sent without a
    /// vector, called through the gateway with the caller's token. Default
    /// `text-embedding-3-small`. Follows reloads.
    #[serde(default)]
    pub embedding_model: Option<Spanned<String>>,
    /// Memory for collections' vectors kept between queries, in MiB (least recently used
    /// dropped first; a bigger collection is read from Postgres on every query). Default
    /// 2048. Read at start.
    #[serde(default)]
    pub cache_max_mb: Option<Spanned<u64>>,
}

/// `graphs:` (bradax's graphs).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGraphs {
    /// Public model of `llm` nodes without `model`. Default `gpt-4o-mini`. Follows reloads.
    #[serde(default)]
    pub default_model: Option<Spanned<String>>,
}

/// `whatsapp:` (PyTake's WhatsApp Cloud API).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWhatsapp {
    /// Graph API base, version included (calls go to `<base>/<phone_number_id>/messages`,
    /// `<base>/<waba_id>/phone_numbers`, `<base>/me`). Default
    /// `https://graph.facebook.com/v21.0`.
    #[serde(default)]
    pub graph_base_url: Option<Spanned<String>>,
    /// Name of the environment variable holding the Meta app secret that signs webhooks
    /// (`X-Hub-Signature-256`). Default `WHATSAPP_APP_SECRET`; unset = webhooks refused.
    #[serde(default)]
    pub app_secret_env: Option<Spanned<String>>,
    /// Name of the environment variable holding the verify token of the subscription
    /// handshake (`GET .../webhook?hub.verify_token=`). Default `WHATSAPP_VERIFY_TOKEN`;
    /// unset = every handshake refused.
    #[serde(default)]
    pub verify_token_env: Option<Spanned<String>>,
}

/// One entry of `providers:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    /// Unique name, referenced by deployments.
    pub name: Spanned<String>,
    /// Base URL including the API version path, e.g. `https://api.openai.com/v1`.
    pub base_url: Spanned<String>,
    /// Name of the environment variable holding the provider's API key. Optional.
    #[serde(default)]
    pub api_key_env: Option<Spanned<String>>,
    /// TCP (and TLS) connect timeout in ms. Default 3000.
    #[serde(default)]
    pub connect_timeout_ms: Option<Spanned<u64>>,
    /// Longest wait for any single read from the upstream (first byte, or the gap between
    /// two stream chunks), in ms. Default 120000.
    #[serde(default)]
    pub read_timeout_ms: Option<Spanned<u64>>,
    /// Longest whole upstream exchange, in ms. Default 600000.
    #[serde(default)]
    pub total_timeout_ms: Option<Spanned<u64>>,
    /// Client headers forwarded to this provider besides the standard ones (see README,
    /// "Headers"); `x-foo-*` forwards every header starting with `x-foo-`. Default none.
    #[serde(default)]
    pub forward_headers: Vec<Spanned<String>>,
    /// Speak HTTP/2 to this provider: over https, offered by ALPN with HTTP/1.1 as the
    /// fallback; over plain http, h2c with prior knowledge (the upstream must speak it).
    /// Up to 100 requests share one connection. Default true for https (negotiated, so safe),
    /// false for http (prior knowledge cannot be negotiated).
    #[serde(default)]
    pub http2: Option<Spanned<bool>>,
    /// The provider's API dialect: `openai` (default), `azure`, `anthropic`, `gemini` or
    /// `bedrock` (see README, "Provider kinds").
    #[serde(default)]
    pub kind: Option<Spanned<String>>,
    /// Azure OpenAI's `api-version` query parameter (required for `kind: azure`, only there).
    #[serde(default)]
    pub api_version: Option<Spanned<String>>,
    /// Anthropic's `anthropic-version` header (`kind: anthropic` only). Default `2023-06-01`.
    #[serde(default)]
    pub anthropic_version: Option<Spanned<String>>,
    /// Bedrock's AWS region, e.g. `us-east-1` (required for `kind: bedrock`, only there): the
    /// SigV4 signing scope's.
    #[serde(default)]
    pub region: Option<Spanned<String>>,
    /// Environment variable holding the AWS access key id (`kind: bedrock` only; default
    /// `AWS_ACCESS_KEY_ID`).
    #[serde(default)]
    pub aws_access_key_id_env: Option<Spanned<String>>,
    /// Environment variable holding the AWS secret access key (`kind: bedrock` only; default
    /// `AWS_SECRET_ACCESS_KEY`).
    #[serde(default)]
    pub aws_secret_access_key_env: Option<Spanned<String>>,
    /// Environment variable holding an AWS session token of temporary credentials
    /// (`kind: bedrock` only; default `AWS_SESSION_TOKEN`, used when set).
    #[serde(default)]
    pub aws_session_token_env: Option<Spanned<String>>,
}

/// One entry of `deployments:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeployment {
    /// Unique name, referenced by models.
    pub name: Spanned<String>,
    /// Provider name.
    pub provider: Spanned<String>,
    /// Model name sent upstream.
    pub model: Spanned<String>,
    /// Relative share of traffic among deployments of the same priority. Default 1.
    #[serde(default)]
    pub weight: Option<Spanned<u32>>,
    /// Lower is tried first; higher priorities are fallbacks. Default 0.
    #[serde(default)]
    pub priority: Option<Spanned<u32>>,
}

/// One entry of `models:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// Public model name clients send in `model`.
    pub name: Spanned<String>,
    /// Other public names for the same model.
    #[serde(default)]
    pub aliases: Vec<Spanned<String>>,
    /// `chat`, `completion`, `embedding`, `image`, `audio`, `ocr`, `recognition`. Default `chat`.
    #[serde(default)]
    pub category: Option<Spanned<String>>,
    /// Owner shown by `/v1/models`. Default `catraca`.
    #[serde(default)]
    pub owned_by: Option<Spanned<String>>,
    /// USD per 1M input tokens, as a decimal string (`"0.15"`).
    #[serde(default)]
    pub input_usd_per_1m: Option<Spanned<String>>,
    /// USD per 1M output tokens, as a decimal string.
    #[serde(default)]
    pub output_usd_per_1m: Option<Spanned<String>>,
    /// USD per 1M input tokens read from the provider's prompt cache (default: the input
    /// price).
    #[serde(default)]
    pub cached_input_usd_per_1m: Option<Spanned<String>>,
    /// USD per 1M input tokens written to the provider's prompt cache (Anthropic's cache
    /// writes; default: the input price).
    #[serde(default)]
    pub cache_write_usd_per_1m: Option<Spanned<String>>,
    /// USD per successful request (per-request services such as OCR).
    #[serde(default)]
    pub usd_per_request: Option<Spanned<String>>,
    /// USD per generated image.
    #[serde(default)]
    pub usd_per_image: Option<Spanned<String>>,
    /// Billed = cost × FX × this. Default: `pricing.default_markup`.
    #[serde(default)]
    pub markup_multiplier: Option<Spanned<String>>,
    /// USD per second of audio (transcription), as a decimal string.
    #[serde(default)]
    pub usd_per_audio_second: Option<Spanned<String>>,
    /// USD per 1M characters spoken (`/v1/audio/speech`), as a decimal string.
    #[serde(default)]
    pub usd_per_1m_chars: Option<Spanned<String>>,
    /// USD per search (`/v1/rerank`), as a decimal string.
    #[serde(default)]
    pub usd_per_search: Option<Spanned<String>>,
    /// Tokenizer for estimates: `o200k_base`, `cl100k_base`, `p50k_base`, `r50k_base` or
    /// `bytes` (4 bytes a token). Default: by the model's family name (gpt-4o, gpt-4.1, gpt-5,
    /// o-series → o200k_base; everything else → cl100k_base).
    #[serde(default)]
    pub tokenizer: Option<Spanned<String>>,
    /// Deployment names serving this model; order breaks ties within a priority.
    pub deployments: Vec<Spanned<String>>,
}

/// One entry of `keys:`; exactly one of `sha256` and `env`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    /// Name used in usage events and logs.
    pub name: Spanned<String>,
    /// Lowercase hex SHA-256 of the key.
    #[serde(default)]
    pub sha256: Option<Spanned<String>>,
    /// Environment variable holding the plaintext key (hashed at load, never kept).
    #[serde(default)]
    pub env: Option<Spanned<String>>,
    /// A disabled key is refused with 401. Default false.
    #[serde(default)]
    pub disabled: Option<Spanned<bool>>,
    /// Public model names this key may use; empty means all. Default empty.
    #[serde(default)]
    pub models: Vec<Spanned<String>>,
    /// Requests per minute. Default unlimited.
    #[serde(default)]
    pub rpm: Option<Spanned<u32>>,
    /// Requests per day (UTC). Default unlimited.
    #[serde(default)]
    pub rpd: Option<Spanned<u32>>,
    /// Requests per second. Default unlimited.
    #[serde(default)]
    pub rps: Option<Spanned<u32>>,
    /// Tokens per minute (prompt estimate + `max_tokens` at admission, corrected to the
    /// upstream's usage). Default unlimited.
    #[serde(default)]
    pub tpm: Option<Spanned<u32>>,
    /// Requests in flight at once. Default unlimited.
    #[serde(default)]
    pub concurrency: Option<Spanned<u32>>,
}

/// `limits:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Redis shared by every gateway node (`redis://host:port/db`). Env `CATRACA_REDIS_URL`
    /// overrides; absent = limits counted in each node's memory.
    #[serde(default)]
    pub redis_url: Option<Spanned<String>>,
    /// When Redis does not answer: `local` (this node's own counters), `open` (no limits) or
    /// `closed` (refuse limited requests with 429). Default `local`.
    #[serde(default)]
    pub on_redis_error: Option<Spanned<String>>,
    /// A limiter call slower than this is a Redis failure. Default 50.
    #[serde(default)]
    pub redis_timeout_ms: Option<Spanned<u64>>,
    /// Redis connections per node. Default 8.
    #[serde(default)]
    pub redis_pool_size: Option<Spanned<u32>>,
    /// Longest a request holds a concurrency slot when its node dies. Default 900.
    #[serde(default)]
    pub concurrency_lease_secs: Option<Spanned<u64>>,
}

/// `mail:` section: how the queued mails (`outbox_email`) are sent. Takes effect on restart.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMail {
    /// SMTP server: `smtp://host:port` (plain), `smtp://host:587?tls=required` (STARTTLS),
    /// `smtps://user:pass@host:465` (TLS from the first byte); user and password
    /// percent-encoded; a path (`smtp://host/mail.example.com`) is the name sent in `EHLO`
    /// (default `localhost`). Env `CATRACA_SMTP_URL` overrides (keep the password out of this
    /// file). Absent = no sender: mails stay queued.
    #[serde(default)]
    pub smtp_url: Option<Spanned<String>>,
    /// Sender mailbox, `no-reply@example.com` or `Name <no-reply@example.com>`. Required with
    /// `smtp_url`.
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    /// Attempts per mail, the first included; then it is failed for good. Default 5.
    #[serde(default)]
    pub max_attempts: Option<Spanned<u32>>,
    /// How often due mails are looked for, ms. Default 1000.
    #[serde(default)]
    pub poll_ms: Option<Spanned<u64>>,
    /// First retry delay, ms; the later ones are 6, 24, 120, 360 and 720 times it (with the
    /// default: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, then hourly). Default 5000.
    #[serde(default)]
    pub retry_base_ms: Option<Spanned<u64>>,
    /// Longest wait for the connection and each SMTP reply, ms. Default 30000.
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u64>>,
}

/// `pix:` section: the receiver of PIX top-ups. Takes effect on start and on reload.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPix {
    /// The receiver's PIX key (CPF, CNPJ, email, `+55…` phone or random key), written into
    /// every BR Code (field 26, sub 01). Required; at most 77 characters.
    #[serde(default)]
    pub key: Option<Spanned<String>>,
    /// Merchant name of the BR Code (field 59): folded to ASCII, 1 to 25 characters. Required.
    #[serde(default)]
    pub merchant_name: Option<Spanned<String>>,
    /// Merchant city (field 60): folded to ASCII, 1 to 15 characters. Required.
    #[serde(default)]
    pub merchant_city: Option<Spanned<String>>,
    /// The environment variable holding the PSP's webhook signing secret (16 bytes or more).
    /// Default `CATRACA_PIX_WEBHOOK_SECRET`; unset = the webhook answers 503.
    #[serde(default)]
    pub webhook_secret_env: Option<Spanned<String>>,
    /// How long a charge can be paid, seconds. Default 3600; 60 to 2592000 (30 days).
    #[serde(default)]
    pub charge_ttl_secs: Option<Spanned<u64>>,
}

/// One entry of `deprecations:` (PyTake's deprecation policy; see `config::deprecation`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeprecation {
    /// HTTP method, e.g. `GET`.
    pub method: Spanned<String>,
    /// The route's path as `/openapi.json` lists it, e.g. `/api/v1/flows/{id}` (a gateway AI
    /// route such as `/v1/chat/completions` too). An unknown route is a config error.
    pub path: Spanned<String>,
    /// When the route goes away: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time; sent as
    /// `Sunset` (RFC 8594). Default none (no `Sunset` header).
    #[serde(default)]
    pub sunset: Option<Spanned<String>>,
}
