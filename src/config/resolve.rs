//! Validation of [`RawConfig`] into [`Config`]: every problem is collected, each with the dotted
//! path of the field and its `file:line:col`, so `catraca check-config` can print them all.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::{Location, Spanned};
use sha2::{Digest, Sha256};

use super::raw::{RawConfig, RawKey, RawListener, RawMail, RawModel, RawPix};

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File the problem is in.
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// What is wrong, starting with the field's path.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Category of a catalog model, as `/v1/models` and pricing see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// `/v1/chat/completions`
    Chat,
    /// `/v1/completions`
    Completion,
    /// `/v1/embeddings`
    Embedding,
    /// `/v1/images/generations`
    Image,
    /// `/v1/audio/transcriptions`
    Audio,
    /// `/v1/ocr` (a per-request service)
    Ocr,
    /// `/v1/recognition` (a per-request service)
    Recognition,
    /// `/v1/moderations` (priced per input token)
    Moderation,
    /// `/v1/audio/speech` (priced per input character)
    Speech,
    /// `/v1/rerank` (priced per search)
    Rerank,
}

/// The shape of `GET /v1/models` on a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelsList {
    /// `{object: "list", data, models}`: OpenAI's and Tokia's lists in one body.
    Both,
    /// `{object: "list", data}`
    OpenAi,
    /// `{models}`
    Tokia,
}

impl Category {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Chat => "chat",
            Category::Completion => "completion",
            Category::Embedding => "embedding",
            Category::Image => "image",
            Category::Audio => "audio",
            Category::Ocr => "ocr",
            Category::Recognition => "recognition",
            Category::Moderation => "moderation",
            Category::Speech => "speech",
            Category::Rerank => "rerank",
        }
    }
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the file was read from (for reload and messages).
    pub path: PathBuf,
    /// Gateway listeners.
    pub listen: Vec<String>,
    /// Listeners whose `/v1/models` is not the default `both` shape (empty: all `both`).
    pub models_lists: Vec<(std::net::SocketAddr, ModelsList)>,
    /// Prometheus listener.
    pub metrics_listen: String,
    /// Admin app listener.
    pub admin_listen: std::net::SocketAddr,
    /// Proxy worker threads.
    pub threads: usize,
    /// Work stealing between proxy threads.
    pub work_stealing: bool,
    /// Idle upstream connections kept.
    pub upstream_keepalive_pool: usize,
    /// Add `x-catraca-overhead-ms` to proxied responses.
    pub overhead_header: bool,
    /// Largest JSON request body, bytes.
    pub max_body_bytes: u64,
    /// Largest multipart upload, bytes.
    pub max_upload_bytes: u64,
    /// SIGTERM grace period.
    pub grace_period: Duration,
    /// Graceful upgrade socket.
    pub upgrade_sock: PathBuf,
    /// Largest single upstream SSE event, bytes.
    pub max_sse_event_bytes: usize,
    /// Client connection limits.
    pub client: ClientConfig,
    /// A reload may drop every key or a model in use.
    pub allow_destructive_reload: bool,
    /// Usage sink settings.
    pub usage: UsageConfig,
    /// PostgreSQL, when configured.
    pub database: Option<DatabaseConfig>,
    /// Failover and breaker policy.
    pub failover: FailoverConfig,
    /// BRL per USD, millionths.
    pub fx_usd_brl_micros: i64,
    /// Output tokens reserved when a request sets no `max_tokens`.
    pub reserve_output_tokens: u64,
    /// Limiter back end.
    pub limits: LimitsConfig,
    /// The mail sender, when an SMTP URL is configured (`None`: mails stay queued).
    pub mail: Option<MailConfig>,
    /// What webhook calls may reach (`webhooks.allow_loopback`).
    pub outbound: crate::domain::outbound::Policy,
    /// The PIX receiver of top-ups (`None`: the PIX routes answer 503).
    pub pix: Option<PixConfig>,
    /// PyTake's WhatsApp Cloud API (`whatsapp:`; defaults when absent).
    pub whatsapp: WhatsappConfig,
    /// bradax's student tier (`bradax:`; defaults when absent).
    pub bradax: crate::domain::bradax::Policy,
    /// bradax's vector collections (`vectors:`; defaults when absent).
    pub vectors: VectorsConfig,
    /// bradax's graphs (`graphs:`; defaults when absent).
    pub graphs: GraphsConfig,
    /// Providers, in file order.
    pub providers: Vec<Provider>,
    /// Deployments, in file order.
    pub deployments: Vec<Deployment>,
    /// Catalog models, in file order.
    pub models: Vec<Model>,
    /// Config-declared API keys.
    pub keys: Vec<KeyEntry>,
    /// Deprecated routes (`deprecations:`), answered with `Deprecated`/`Sunset` headers.
    pub deprecations: Vec<super::deprecation::Deprecation>,
}

/// What one client connection may take.
#[derive(Debug, Clone, Copy)]
pub struct ClientConfig {
    /// Whole time for the request head.
    pub header_timeout: Duration,
    /// Whole time for the request body.
    pub body_timeout: Duration,
    /// Largest request head, bytes.
    pub max_header_bytes: usize,
    /// Most request headers.
    pub max_headers: usize,
    /// Most open connections per client IP.
    pub max_connections_per_ip: usize,
    /// Read buffer per client connection, bytes.
    pub read_buffer_bytes: usize,
}

/// Usage sink settings.
#[derive(Debug, Clone)]
pub struct UsageConfig {
    /// JSONL file path.
    pub jsonl_path: PathBuf,
    /// In-memory queue capacity.
    pub queue_capacity: usize,
    /// Most events per write.
    pub batch_size: usize,
    /// Longest a batch fills after its first event.
    pub flush: std::time::Duration,
}

/// PostgreSQL settings.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// Connection URL (may hold a password: never printed).
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// Spill file for usage events during outages.
    pub spill_path: PathBuf,
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("max_connections", &self.max_connections)
            .field("spill_path", &self.spill_path)
            .finish()
    }
}

/// Failover and breaker policy.
#[derive(Debug, Clone, Copy)]
pub struct FailoverConfig {
    /// Attempts per request, the first included (>= 1).
    pub max_attempts: u32,
    /// Consecutive failures that open a circuit (>= 1).
    pub failures_to_trip: u32,
    /// How long an open circuit stays open.
    pub cooldown: Duration,
}

/// An upstream provider.
#[derive(Clone)]
pub struct Provider {
    /// Unique name.
    pub name: String,
    /// `true` for https.
    pub tls: bool,
    /// Host name (SNI and `Host`).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Path prefix without trailing slash, e.g. `/v1`.
    pub base_path: String,
    /// Resolved API key (from the env var), never printed.
    pub api_key: Option<String>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Per-read timeout.
    pub read_timeout: Duration,
    /// Whole-exchange timeout.
    pub total_timeout: Duration,
    /// Extra client headers forwarded (lowercase; a trailing `*` matches a prefix).
    pub forward_headers: Vec<String>,
    /// HTTP/2 to the upstream (ALPN over TLS, prior knowledge over plain TCP).
    pub http2: bool,
    /// The provider's API dialect (`kind:`).
    pub kind: crate::dialect::Kind,
    /// Azure's `api-version` (set exactly for `kind: azure`).
    pub api_version: Option<String>,
    /// Anthropic's `anthropic-version` header value (`2023-06-01` unless configured).
    pub anthropic_version: String,
    /// Bedrock's region and credentials (set exactly for `kind: bedrock`; filled in by the
    /// bedrock fields' resolution).
    pub aws: Option<crate::dialect::bedrock::Aws>,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("tls", &self.tls)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("base_path", &self.base_path)
            .field("http2", &self.http2)
            .field("kind", &self.kind)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A provider serving one upstream model.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Unique name.
    pub name: String,
    /// Index into [`Config::providers`].
    pub provider: usize,
    /// Model name sent upstream.
    pub upstream_model: String,
    /// Weight within its priority (>= 1).
    pub weight: u32,
    /// Lower is tried first.
    pub priority: u32,
}

/// A public catalog model.
#[derive(Debug, Clone)]
pub struct Model {
    /// Public name.
    pub name: String,
    /// Extra public names.
    pub aliases: Vec<String>,
    /// Category.
    pub category: Category,
    /// `owned_by` in `/v1/models`.
    pub owned_by: String,
    /// Micro-USD per 1M input tokens.
    pub input_micros_per_1m: Option<i64>,
    /// Micro-USD per 1M output tokens.
    pub output_micros_per_1m: Option<i64>,
    /// Everything pricing needs (missing prices are 0).
    pub price: crate::pricing::Price,
    /// Tokenizer of prompt estimates.
    pub tokenizer: crate::tokens::Encoding,
    /// Indexes into [`Config::deployments`].
    pub deployments: Vec<usize>,
}

/// Limiter back end settings.
#[derive(Clone)]
pub struct LimitsConfig {
    /// Redis URL (may hold a password: never printed); `None` = local counters only.
    pub redis_url: Option<String>,
    /// What decides limits while Redis is unreachable.
    pub fallback: crate::limits::Fallback,
    /// Limiter call timeout.
    pub redis_timeout: Duration,
    /// Redis connections per node.
    pub redis_pool_size: u32,
    /// Concurrency slot lease.
    pub lease_secs: u64,
}

impl fmt::Debug for LimitsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitsConfig")
            .field("redis", &self.redis_url.is_some())
            .field("fallback", &self.fallback)
            .field("redis_timeout", &self.redis_timeout)
            .finish()
    }
}

/// The mail sender of `outbox_email` (see [`crate::mail`]).
#[derive(Clone)]
pub struct MailConfig {
    /// `smtp://` or `smtps://` URL (may hold a password: never printed).
    pub smtp_url: String,
    /// Sender mailbox (`From:` and the envelope sender).
    pub from: lettre::message::Mailbox,
    /// Attempts per mail, the first included (>= 1).
    pub max_attempts: u32,
    /// How often due mails are looked for.
    pub poll: Duration,
    /// First retry delay; the schedule is [`crate::mail::backoff`].
    pub retry_base: Duration,
    /// Connect and per-reply SMTP timeout.
    pub timeout: Duration,
}

impl fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // scheme, host and port only: never the user name or the password
        let server = url::Url::parse(&self.smtp_url)
            .map(|u| {
                let port = u.port().map_or_else(String::new, |p| format!(":{p}"));
                format!("{}://{}{port}", u.scheme(), u.host_str().unwrap_or(""))
            })
            .unwrap_or_default();
        f.debug_struct("MailConfig")
            .field("server", &server)
            .field("from", &self.from.to_string())
            .field("max_attempts", &self.max_attempts)
            .field("poll", &self.poll)
            .field("retry_base", &self.retry_base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// bradax's vector collections (the `vectors:` section; see [`crate::domain::vectors`]).
#[derive(Debug, Clone)]
pub struct VectorsConfig {
    /// Public model that embeds texts sent without a vector.
    pub embedding_model: String,
    /// Bytes of vectors kept in memory between queries.
    pub cache_max_bytes: usize,
}

/// bradax's graphs (the `graphs:` section; see [`crate::domain::graphs`]).
#[derive(Debug, Clone)]
pub struct GraphsConfig {
    /// Model of `llm` nodes that name none.
    pub default_model: String,
}

/// PyTake's WhatsApp Cloud API (the `whatsapp:` section; see [`crate::domain::whatsapp`]).
#[derive(Clone)]
pub struct WhatsappConfig {
    /// Graph API base with its version, no trailing slash (`https://graph.facebook.com/v21.0`).
    pub graph_base_url: String,
    /// The Meta app secret signing webhooks (`None`: webhooks answer 503; never printed).
    pub app_secret: Option<String>,
    /// The variable the app secret is read from, for messages.
    pub app_secret_env: String,
    /// The subscription handshake's verify token (`None`: every handshake is refused).
    pub verify_token: Option<String>,
    /// The variable the verify token is read from, for messages.
    pub verify_token_env: String,
}

impl fmt::Debug for WhatsappConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsappConfig")
            .field("graph_base_url", &self.graph_base_url)
            .field("app_secret_env", &self.app_secret_env)
            .field("app_secret", &self.app_secret.as_ref().map(|_| "<set>"))
            .field("verify_token_env", &self.verify_token_env)
            .field("verify_token", &self.verify_token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// The receiver of PIX top-ups (the `pix:` section; see [`crate::domain::pix`]).
#[derive(Clone)]
pub struct PixConfig {
    /// The receiver's PIX key (field 26, sub 01).
    pub key: String,
    /// Merchant name, ASCII, 1 to 25 characters.
    pub merchant_name: String,
    /// Merchant city, ASCII, 1 to 15 characters.
    pub merchant_city: String,
    /// The PSP's webhook signing secret (`None`: the webhook answers 503; never printed).
    pub webhook_secret: Option<String>,
    /// The variable the secret is read from, for messages.
    pub webhook_secret_env: String,
    /// How long a charge can be paid.
    pub charge_ttl: Duration,
}

impl fmt::Debug for PixConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PixConfig")
            .field("key", &self.key)
            .field("merchant_name", &self.merchant_name)
            .field("merchant_city", &self.merchant_city)
            .field("webhook_secret", &self.webhook_secret.is_some())
            .field("webhook_secret_env", &self.webhook_secret_env)
            .field("charge_ttl", &self.charge_ttl)
            .finish()
    }
}

/// A key of the no-database mode.
#[derive(Clone)]
pub struct KeyEntry {
    /// Display name.
    pub name: String,
    /// SHA-256 of the plaintext.
    pub hash: [u8; 32],
    /// Refused when true.
    pub disabled: bool,
    /// Allowed public models; empty = all.
    pub models: Vec<String>,
    /// Request, token and concurrency limits.
    pub limits: crate::limits::Limits,
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("name", &self.name)
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// Read and validate a config file.
pub fn load_file(path: &Path) -> Result<Config, Vec<ConfigError>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            file: file.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read file: {e}"),
        }]
    })?;
    parse_str(&text, path, &|name| std::env::var(name).ok())
}

/// Parse and validate config text. `env` looks up environment variables (injected for tests).
pub fn parse_str(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    let file = path.display().to_string();
    let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        vec![ConfigError {
            file: file.clone(),
            line,
            column,
            message: first_line(&e.to_string()),
        }]
    })?;
    let mut r = Resolver {
        file,
        errors: Vec::new(),
    };
    let cfg = r.resolve(raw, path, env);
    if r.errors.is_empty() {
        Ok(cfg)
    } else {
        Err(r.errors)
    }
}

/// serde-saphyr renders a source snippet under the message; one line is enough here since the
/// position is printed separately.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s).trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    // drop the "line N column M: " prefix; the position is printed in front already
    match line.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((pos, rest)) if pos.contains("column") => rest.to_string(),
        _ => line.to_string(),
    }
}

struct Resolver {
    file: String,
    errors: Vec<ConfigError>,
}

impl Resolver {
    /// Bedrock's fields of provider `p` (`region`, `aws_*_env`): required and resolved for
    /// `kind: bedrock`, an error with its position on any other kind.
    fn bedrock_fields(
        &mut self,
        p: &super::raw::RawProvider,
        path: &str,
        kind: crate::dialect::Kind,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<crate::dialect::bedrock::Aws> {
        let fields = [
            ("region", &p.region),
            ("aws_access_key_id_env", &p.aws_access_key_id_env),
            ("aws_secret_access_key_env", &p.aws_secret_access_key_env),
            ("aws_session_token_env", &p.aws_session_token_env),
        ];
        if kind != crate::dialect::Kind::Bedrock {
            for (name, f) in fields {
                if let Some(f) = f {
                    self.err(
                        &f.referenced,
                        format!(
                            "{path}.{name}: only for kind bedrock (this provider is {})",
                            kind.as_str()
                        ),
                    );
                }
            }
            return None;
        }
        let region = match &p.region {
            Some(r) => {
                let ok = !r.value.is_empty()
                    && r.value.len() <= 64
                    && r.value
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !ok {
                    self.err(
                        &r.referenced,
                        format!(
                            "{path}.region: {:?} is not an AWS region (e.g. \"us-east-1\")",
                            r.value
                        ),
                    );
                }
                r.value.clone()
            }
            None => {
                self.err(
                    &p.name.referenced,
                    format!("{path}.region: required for kind bedrock (e.g. \"us-east-1\")"),
                );
                String::new()
            }
        };
        let var = |f: &Option<Spanned<String>>, default: &str| {
            f.as_ref()
                .map_or_else(|| default.to_string(), |v| v.value.clone())
        };
        let required = |me: &mut Self, field: &str, f: &Option<Spanned<String>>, default: &str| {
            let name = var(f, default);
            match env(&name) {
                Some(v) if !v.is_empty() => Some(v),
                _ => {
                    let at = f.as_ref().map_or(&p.name.referenced, |v| &v.referenced);
                    me.err(
                        at,
                        format!("{path}.{field}: environment variable {name} is not set (kind bedrock signs with it)"),
                    );
                    None
                }
            }
        };
        let access_key_id = required(
            self,
            "aws_access_key_id_env",
            &p.aws_access_key_id_env,
            "AWS_ACCESS_KEY_ID",
        );
        let secret_access_key = required(
            self,
            "aws_secret_access_key_env",
            &p.aws_secret_access_key_env,
            "AWS_SECRET_ACCESS_KEY",
        );
        let token_var = var(&p.aws_session_token_env, "AWS_SESSION_TOKEN");
        let session_token = env(&token_var).filter(|v| !v.is_empty());
        if session_token.is_none()
            && let Some(f) = &p.aws_session_token_env
        {
            self.err(
                &f.referenced,
                format!(
                    "{path}.aws_session_token_env: environment variable {token_var} is not set"
                ),
            );
        }
        Some(crate::dialect::bedrock::Aws {
            region,
            credentials: crate::dialect::bedrock::Credentials {
                access_key_id: access_key_id?,
                secret_access_key: secret_access_key?,
                session_token,
            },
        })
    }

    fn err(&mut self, at: &Location, message: String) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line: at.line(),
            column: at.column(),
            message,
        });
    }

    fn positive_ms(&mut self, v: &Option<Spanned<u64>>, path: &str, default_ms: u64) -> Duration {
        match v {
            Some(s) if s.value == 0 => {
                self.err(&s.referenced, format!("{path}: must be > 0"));
                Duration::from_millis(default_ms)
            }
            Some(s) => Duration::from_millis(s.value),
            None => Duration::from_millis(default_ms),
        }
    }

    fn resolve(
        &mut self,
        raw: RawConfig,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Config {
        let mut models_lists = Vec::new();
        let listen = match (env("CATRACA_LISTEN"), &raw.listen) {
            (Some(v), _) => v.split(',').map(|s| s.trim().to_string()).collect(),
            (None, Some(l)) => {
                for (i, a) in l.iter().enumerate() {
                    self.check_addr(a.addr(), &format!("listen[{i}]"));
                    if let RawListener::Full(f) = a
                        && let Some(m) = &f.models_list
                    {
                        let mode = match m.value.as_str() {
                            "both" => ModelsList::Both,
                            "openai" => ModelsList::OpenAi,
                            "tokia" => ModelsList::Tokia,
                            other => {
                                self.err(
                                    &m.referenced,
                                    format!(
                                        "listen[{i}].models_list: {other:?} is not both, openai or tokia"
                                    ),
                                );
                                ModelsList::Both
                            }
                        };
                        if let (ModelsList::OpenAi | ModelsList::Tokia, Ok(addr)) =
                            (mode, f.addr.value.parse())
                        {
                            models_lists.push((addr, mode));
                        }
                    }
                }
                l.iter().map(|s| s.addr().value.clone()).collect()
            }
            (None, None) => vec!["127.0.0.1:8080".to_string()],
        };
        if listen.is_empty() {
            self.errors.push(ConfigError {
                file: self.file.clone(),
                line: 0,
                column: 0,
                message: "listen: at least one listener is needed".into(),
            });
        }
        let metrics_listen = match (env("CATRACA_METRICS_LISTEN"), &raw.metrics_listen) {
            (Some(v), _) => v,
            (None, Some(a)) => {
                self.check_addr(a, "metrics_listen");
                a.value.clone()
            }
            (None, None) => "127.0.0.1:9090".to_string(),
        };
        let admin_listen = match (env("CATRACA_ADMIN_LISTEN"), &raw.admin_listen) {
            (Some(v), _) => v.parse().unwrap_or_else(|_| {
                self.errors.push(ConfigError {
                    file: "CATRACA_ADMIN_LISTEN".into(),
                    line: 0,
                    column: 0,
                    message: format!("{v:?} is not an ip:port address"),
                });
                default_admin()
            }),
            (None, Some(a)) => {
                self.check_addr(a, "admin_listen");
                a.value.parse().unwrap_or_else(|_| default_admin())
            }
            (None, None) => default_admin(),
        };
        let threads = match &raw.threads {
            Some(t) if t.value == 0 || t.value > 1024 => {
                self.err(&t.referenced, "threads: must be between 1 and 1024".into());
                1
            }
            Some(t) => t.value,
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        };
        let max_body_bytes =
            self.positive_u64(&raw.max_body_bytes, "max_body_bytes", 8 * 1024 * 1024);
        let max_upload_bytes =
            self.positive_u64(&raw.max_upload_bytes, "max_upload_bytes", 25 * 1024 * 1024);
        let grace_period =
            Duration::from_secs(raw.grace_period_secs.map(|s| s.value).unwrap_or(30));
        let max_sse_event_bytes =
            self.positive_u64(&raw.max_sse_event_bytes, "max_sse_event_bytes", 1 << 20) as usize;
        let client = {
            let c = raw.client.as_ref();
            let max_header_bytes = self.positive_u64(
                &c.and_then(|c| c.max_header_bytes.clone()),
                "client.max_header_bytes",
                32 * 1024,
            );
            if max_header_bytes > 1 << 20
                && let Some(v) = c.and_then(|c| c.max_header_bytes.as_ref())
            {
                self.err(
                    &v.referenced,
                    "client.max_header_bytes: must be at most 1048576".into(),
                );
            }
            ClientConfig {
                header_timeout: self.positive_ms(
                    &c.and_then(|c| c.header_timeout_ms.clone()),
                    "client.header_timeout_ms",
                    10_000,
                ),
                body_timeout: self.positive_ms(
                    &c.and_then(|c| c.body_timeout_ms.clone()),
                    "client.body_timeout_ms",
                    60_000,
                ),
                max_header_bytes: max_header_bytes.min(1 << 20) as usize,
                max_headers: self.positive_u64(
                    &c.and_then(|c| c.max_headers.clone()),
                    "client.max_headers",
                    100,
                ) as usize,
                max_connections_per_ip: self.positive_u64(
                    &c.and_then(|c| c.max_connections_per_ip.clone()),
                    "client.max_connections_per_ip",
                    512,
                ) as usize,
                read_buffer_bytes: match c.and_then(|c| c.read_buffer_bytes.as_ref()) {
                    Some(b) if !(1024..=1024 * 1024).contains(&b.value) => {
                        self.err(
                            &b.referenced,
                            "client.read_buffer_bytes: must be between 1024 and 1048576".into(),
                        );
                        16 * 1024
                    }
                    Some(b) => b.value as usize,
                    None => 16 * 1024,
                },
            }
        };

        let usage = UsageConfig {
            jsonl_path: raw
                .usage
                .as_ref()
                .and_then(|u| u.jsonl_path.as_ref())
                .map(|p| PathBuf::from(&p.value))
                .unwrap_or_else(|| PathBuf::from("catraca-usage.jsonl")),
            queue_capacity: match raw.usage.as_ref().and_then(|u| u.queue_capacity.as_ref()) {
                Some(q) if q.value == 0 => {
                    self.err(&q.referenced, "usage.queue_capacity: must be > 0".into());
                    1
                }
                Some(q) => q.value,
                None => 65536,
            },
            batch_size: self.bounded_u64(
                raw.usage.as_ref().and_then(|u| u.batch_size.as_ref()),
                "usage.batch_size",
                crate::usage::DEFAULT_BATCH,
                100_000,
            ) as usize,
            flush: std::time::Duration::from_millis(self.bounded_u64(
                raw.usage.as_ref().and_then(|u| u.flush_ms.as_ref()),
                "usage.flush_ms",
                crate::usage::DEFAULT_FLUSH_MS,
                60_000,
            )),
        };

        let database = {
            let d = raw.database.as_ref();
            let url = env("DATABASE_URL")
                .filter(|u| !u.is_empty())
                .or_else(|| d.and_then(|d| d.url.as_ref()).map(|u| u.value.clone()));
            if let (Some(u), Some(spanned)) = (&url, d.and_then(|d| d.url.as_ref()))
                && !(u.starts_with("postgres://") || u.starts_with("postgresql://"))
            {
                self.err(
                    &spanned.referenced,
                    "database.url: must start with postgres:// or postgresql://".into(),
                );
            }
            url.map(|url| DatabaseConfig {
                url,
                max_connections: match d.and_then(|d| d.max_connections.as_ref()) {
                    Some(m) if m.value == 0 => {
                        self.err(
                            &m.referenced,
                            "database.max_connections: must be > 0".into(),
                        );
                        1
                    }
                    Some(m) => m.value,
                    None => 8,
                },
                spill_path: d
                    .and_then(|d| d.spill_path.as_ref())
                    .map(|p| PathBuf::from(&p.value))
                    .unwrap_or_else(|| PathBuf::from("catraca-usage-spill.jsonl")),
            })
        };

        let limits = {
            let l = raw.limits.as_ref();
            let redis_url = env("CATRACA_REDIS_URL")
                .filter(|u| !u.is_empty())
                .or_else(|| {
                    l.and_then(|l| l.redis_url.as_ref())
                        .map(|u| u.value.clone())
                });
            if let (Some(u), Some(spanned)) = (&redis_url, l.and_then(|l| l.redis_url.as_ref()))
                && !(u.starts_with("redis://") || u.starts_with("rediss://"))
            {
                self.err(
                    &spanned.referenced,
                    "limits.redis_url: must start with redis:// or rediss://".into(),
                );
            }
            let fallback = match l.and_then(|l| l.on_redis_error.as_ref()) {
                Some(v) => crate::limits::Fallback::parse(&v.value).unwrap_or_else(|| {
                    self.err(
                        &v.referenced,
                        format!(
                            "limits.on_redis_error: '{}' is not one of local, open, closed",
                            v.value
                        ),
                    );
                    crate::limits::Fallback::Local
                }),
                None => crate::limits::Fallback::Local,
            };
            let mut positive_u64 = |v: Option<&Spanned<u64>>, name: &str, default: u64| match v {
                Some(v) if v.value == 0 => {
                    self.err(&v.referenced, format!("limits.{name}: must be > 0"));
                    default
                }
                Some(v) => v.value,
                None => default,
            };
            let timeout_ms = positive_u64(
                l.and_then(|l| l.redis_timeout_ms.as_ref()),
                "redis_timeout_ms",
                50,
            );
            let lease_secs = positive_u64(
                l.and_then(|l| l.concurrency_lease_secs.as_ref()),
                "concurrency_lease_secs",
                900,
            );
            let pool = match l.and_then(|l| l.redis_pool_size.as_ref()) {
                Some(v) if v.value == 0 => {
                    self.err(&v.referenced, "limits.redis_pool_size: must be > 0".into());
                    1
                }
                Some(v) => v.value,
                None => 8,
            };
            LimitsConfig {
                redis_url,
                fallback,
                redis_timeout: Duration::from_millis(timeout_ms),
                redis_pool_size: pool,
                lease_secs,
            }
        };

        let mail = self.mail(raw.mail.as_ref(), env);
        let pix = self.pix(raw.pix.as_ref(), env);
        let deprecations =
            super::deprecation::resolve(&raw.deprecations, &mut |at, m| self.err(at, m));
        let whatsapp = self.whatsapp(raw.whatsapp.as_ref(), env);
        let (vectors, graphs) = self.ai(raw.vectors.as_ref(), raw.graphs.as_ref());
        let bradax = match &raw.bradax {
            None => crate::domain::bradax::Policy::default(),
            Some(b) => {
                if b.value.student_rpm == 0 {
                    self.err(&b.referenced, "bradax.student_rpm: at least 1".into());
                }
                b.value.clone()
            }
        };

        let failover = {
            let f = raw.failover.as_ref();
            let max_attempts = match f.and_then(|f| f.max_attempts.as_ref()) {
                Some(v) if v.value == 0 || v.value > 16 => {
                    self.err(
                        &v.referenced,
                        "failover.max_attempts: must be between 1 and 16".into(),
                    );
                    1
                }
                Some(v) => v.value,
                None => 3,
            };
            let failures_to_trip = match f.and_then(|f| f.failures_to_trip.as_ref()) {
                Some(v) if v.value == 0 => {
                    self.err(
                        &v.referenced,
                        "failover.failures_to_trip: must be > 0".into(),
                    );
                    1
                }
                Some(v) => v.value,
                None => 3,
            };
            let cooldown = self.positive_ms(
                &f.and_then(|f| f.cooldown_ms.clone()),
                "failover.cooldown_ms",
                30_000,
            );
            FailoverConfig {
                max_attempts,
                failures_to_trip,
                cooldown,
            }
        };

        let pricing = raw.pricing.as_ref();
        let mut decimal = |v: Option<&Spanned<String>>, path: &str, default: i64| -> i64 {
            match v {
                None => default,
                Some(s) => match parse_decimal_micros(&s.value) {
                    Ok(n) if n > 0 => n,
                    Ok(_) => {
                        self.err(&s.referenced, format!("{path}: must be > 0"));
                        default
                    }
                    Err(e) => {
                        self.err(&s.referenced, format!("{path}: {e}"));
                        default
                    }
                },
            }
        };
        let fx_usd_brl_micros = decimal(
            pricing.and_then(|p| p.fx_usd_brl.as_ref()),
            "pricing.fx_usd_brl",
            5_000_000,
        );
        let default_markup = decimal(
            pricing.and_then(|p| p.default_markup.as_ref()),
            "pricing.default_markup",
            1_000_000,
        );

        let reserve_output_tokens = pricing
            .and_then(|p| p.reserve_output_tokens.as_ref())
            .map_or(4096, |v| v.value);

        // providers
        let mut provider_idx: HashMap<String, usize> = HashMap::new();
        let mut providers = Vec::new();
        for (i, p) in raw.providers.iter().enumerate() {
            let p = &p.value;
            let path = format!("providers[{i}]");
            if provider_idx
                .insert(p.name.value.clone(), providers.len())
                .is_some()
            {
                self.err(
                    &p.name.referenced,
                    format!("{path}.name: duplicate provider name {:?}", p.name.value),
                );
            }
            let (tls, host, port, base_path) = match parse_base_url(&p.base_url.value) {
                Ok(v) => v,
                Err(m) => {
                    self.err(&p.base_url.referenced, format!("{path}.base_url: {m}"));
                    (false, String::new(), 0, String::new())
                }
            };
            let api_key = match &p.api_key_env {
                Some(name) => match env(&name.value) {
                    Some(v) if !v.is_empty() => Some(v),
                    _ => {
                        self.err(
                            &name.referenced,
                            format!(
                                "{path}.api_key_env: environment variable {} is not set",
                                name.value
                            ),
                        );
                        None
                    }
                },
                None => None,
            };
            let kind = match &p.kind {
                None => crate::dialect::Kind::OpenAi,
                Some(k) => crate::dialect::Kind::parse(&k.value).unwrap_or_else(|| {
                    self.err(
                        &k.referenced,
                        format!(
                            "{path}.kind: {:?} is not one of openai, azure, anthropic, gemini, bedrock",
                            k.value
                        ),
                    );
                    crate::dialect::Kind::OpenAi
                }),
            };
            let api_version = match (&p.api_version, kind) {
                (Some(v), crate::dialect::Kind::Azure) => {
                    let ok = !v.value.is_empty()
                        && v.value
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                    if !ok {
                        self.err(
                            &v.referenced,
                            format!("{path}.api_version: {:?} is not an API version (letters, digits, '-', '.')", v.value),
                        );
                    }
                    Some(v.value.clone())
                }
                (None, crate::dialect::Kind::Azure) => {
                    self.err(
                        &p.name.referenced,
                        format!(
                            "{path}.api_version: required for kind azure (e.g. \"2024-10-21\")"
                        ),
                    );
                    None
                }
                (Some(v), k) => {
                    self.err(
                        &v.referenced,
                        format!(
                            "{path}.api_version: only for kind azure (this provider is {})",
                            k.as_str()
                        ),
                    );
                    None
                }
                (None, _) => None,
            };
            let anthropic_version = match (&p.anthropic_version, kind) {
                (Some(v), crate::dialect::Kind::Anthropic) => {
                    if http::HeaderValue::from_str(&v.value).is_err() || v.value.is_empty() {
                        self.err(
                            &v.referenced,
                            format!(
                                "{path}.anthropic_version: {:?} is not a header value",
                                v.value
                            ),
                        );
                    }
                    v.value.clone()
                }
                (Some(v), k) => {
                    self.err(
                        &v.referenced,
                        format!("{path}.anthropic_version: only for kind anthropic (this provider is {})", k.as_str()),
                    );
                    String::new()
                }
                (None, _) => "2023-06-01".to_string(),
            };
            let aws = self.bedrock_fields(p, &path, kind, env);
            providers.push(Provider {
                name: p.name.value.clone(),
                tls,
                host,
                port,
                base_path,
                api_key,
                connect_timeout: self.positive_ms(
                    &p.connect_timeout_ms,
                    &format!("{path}.connect_timeout_ms"),
                    3_000,
                ),
                read_timeout: self.positive_ms(
                    &p.read_timeout_ms,
                    &format!("{path}.read_timeout_ms"),
                    120_000,
                ),
                total_timeout: self.positive_ms(
                    &p.total_timeout_ms,
                    &format!("{path}.total_timeout_ms"),
                    600_000,
                ),
                forward_headers: p
                    .forward_headers
                    .iter()
                    .enumerate()
                    .filter_map(|(j, h)| {
                        let name = h.value.to_ascii_lowercase();
                        let bare = name.strip_suffix('*').unwrap_or(&name);
                        let ok = !bare.is_empty()
                            && bare
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                            && !crate::gateway::upstream::never_forwarded(bare);
                        if !ok {
                            self.err(
                                &h.referenced,
                                format!("{path}.forward_headers[{j}]: {:?} is not a header name that may be forwarded", h.value),
                            );
                        }
                        ok.then_some(name)
                    })
                    .collect(),
                // https: offered by ALPN unless switched off; plain http: only when asked
                http2: p.http2.as_ref().map_or(tls, |v| v.value),
                kind,
                api_version,
                anthropic_version,
                aws,
            });
        }

        // deployments
        let mut deployment_idx: HashMap<String, usize> = HashMap::new();
        let mut deployments = Vec::new();
        for (i, d) in raw.deployments.iter().enumerate() {
            let d = &d.value;
            let path = format!("deployments[{i}]");
            if deployment_idx
                .insert(d.name.value.clone(), deployments.len())
                .is_some()
            {
                self.err(
                    &d.name.referenced,
                    format!("{path}.name: duplicate deployment name {:?}", d.name.value),
                );
            }
            let provider = match provider_idx.get(&d.provider.value) {
                Some(&p) => p,
                None => {
                    self.err(
                        &d.provider.referenced,
                        format!("{path}.provider: unknown provider {:?}", d.provider.value),
                    );
                    0
                }
            };
            if d.model.value.is_empty() {
                self.err(
                    &d.model.referenced,
                    format!("{path}.model: must not be empty"),
                );
            }
            let weight = match &d.weight {
                Some(w) if w.value == 0 => {
                    self.err(&w.referenced, format!("{path}.weight: must be > 0"));
                    1
                }
                Some(w) => w.value,
                None => 1,
            };
            deployments.push(Deployment {
                name: d.name.value.clone(),
                provider,
                upstream_model: d.model.value.clone(),
                weight,
                priority: d.priority.as_ref().map(|p| p.value).unwrap_or(0),
            });
        }

        // models
        let mut public_names: HashSet<String> = HashSet::new();
        let mut models = Vec::new();
        // each deployment's provider kind (a model's category limits the kinds it may use)
        let dep_kinds: Vec<crate::dialect::Kind> = deployments
            .iter()
            .map(|d: &Deployment| {
                providers
                    .get(d.provider)
                    .map_or(crate::dialect::Kind::OpenAi, |p: &Provider| p.kind)
            })
            .collect();
        for (i, m) in raw.models.iter().enumerate() {
            models.push(self.model(
                &m.value,
                i,
                &deployment_idx,
                &dep_kinds,
                &mut public_names,
                default_markup,
            ));
        }

        // a file without providers or models routes nothing: a truncated or emptied file
        // must never replace a working config
        for (empty, what) in [
            (raw.providers.is_empty(), "providers"),
            (raw.deployments.is_empty(), "deployments"),
            (raw.models.is_empty(), "models"),
        ] {
            if empty {
                self.errors.push(ConfigError {
                    file: self.file.clone(),
                    line: 1,
                    column: 1,
                    message: format!("{what}: at least one is required"),
                });
            }
        }

        // keys
        let mut keys = Vec::new();
        let mut seen_hashes = HashSet::new();
        for (i, k) in raw.keys.iter().enumerate() {
            if let Some(entry) = self.key(&k.value, &k.referenced, i, env, &public_names) {
                if seen_hashes.insert(entry.hash) {
                    keys.push(entry);
                } else {
                    self.err(
                        &k.referenced,
                        format!("keys[{i}]: the same key is declared twice"),
                    );
                }
            }
        }

        Config {
            path: path.to_path_buf(),
            listen,
            models_lists,
            metrics_listen,
            admin_listen,
            threads,
            work_stealing: raw.work_stealing.as_ref().is_some_and(|w| w.value),
            overhead_header: raw.overhead_header.as_ref().is_some_and(|o| o.value),
            outbound: crate::domain::outbound::Policy {
                allow_loopback: raw
                    .webhooks
                    .as_ref()
                    .and_then(|w| w.allow_loopback.as_ref())
                    .is_some_and(|v| v.value),
            },
            upstream_keepalive_pool: match &raw.upstream_keepalive_pool {
                Some(p) if p.value > 100_000 => {
                    self.err(
                        &p.referenced,
                        "upstream_keepalive_pool: must be at most 100000".into(),
                    );
                    128
                }
                Some(p) => p.value,
                None => 128,
            },
            max_body_bytes,
            max_upload_bytes,
            grace_period,
            upgrade_sock: raw
                .upgrade_sock
                .as_ref()
                .map(|p| PathBuf::from(&p.value))
                .unwrap_or_else(|| PathBuf::from("/tmp/catraca-upgrade.sock")),
            max_sse_event_bytes,
            client,
            allow_destructive_reload: raw.allow_destructive_reload.is_some_and(|v| v.value),
            usage,
            database,
            limits,
            mail,
            pix,
            whatsapp,
            bradax,
            vectors,
            graphs,
            reserve_output_tokens,
            failover,
            fx_usd_brl_micros,
            providers,
            deployments,
            models,
            keys,
            deprecations,
        }
    }

    fn positive_u64(&mut self, v: &Option<Spanned<u64>>, path: &str, default: u64) -> u64 {
        match v {
            Some(s) if s.value == 0 => {
                self.err(&s.referenced, format!("{path}: must be > 0"));
                default
            }
            Some(s) => s.value,
            None => default,
        }
    }

    /// A setting in `1..=max`: 0 is "must be > 0", past `max` "must be at most"; the default
    /// (or the bound) stands in for a refused value.
    fn bounded_u64(&mut self, v: Option<&Spanned<u64>>, path: &str, default: u64, max: u64) -> u64 {
        match v {
            Some(s) if s.value == 0 => {
                self.err(&s.referenced, format!("{path}: must be > 0"));
                default
            }
            Some(s) if s.value > max => {
                self.err(&s.referenced, format!("{path}: must be at most {max}"));
                max
            }
            Some(s) => s.value,
            None => default,
        }
    }

    /// The `mail:` section; `None` without an SMTP URL (the section's other fields are still
    /// checked). Messages never repeat the URL: it may hold a password.
    fn mail(
        &mut self,
        raw: Option<&Spanned<RawMail>>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<MailConfig> {
        let m = raw.map(|m| &m.value);
        let from_env = env("CATRACA_SMTP_URL").filter(|u| !u.is_empty());
        let (url, url_at) = match (from_env, m.and_then(|m| m.smtp_url.as_ref())) {
            (Some(u), _) => (Some(u), None),
            (None, Some(u)) => (Some(u.value.clone()), Some(&u.referenced)),
            (None, None) => (None, None),
        };
        let url_ok = match &url {
            Some(u) => match check_smtp_url(u) {
                Ok(()) => true,
                Err(e) => {
                    let message = format!("mail.smtp_url: {e}");
                    match url_at {
                        Some(at) => self.err(at, message),
                        None => self.errors.push(ConfigError {
                            file: "CATRACA_SMTP_URL".into(),
                            line: 0,
                            column: 0,
                            message,
                        }),
                    }
                    false
                }
            },
            None => false,
        };
        let from = match m.and_then(|m| m.from.as_ref()) {
            Some(f) => match f.value.parse::<lettre::message::Mailbox>() {
                Ok(mb) => Some(mb),
                Err(_) => {
                    self.err(
                        &f.referenced,
                        format!(
                            "mail.from: {:?} is not a mailbox (name@domain or Name <name@domain>)",
                            f.value
                        ),
                    );
                    None
                }
            },
            None => {
                if url.is_some() {
                    let message = "mail.from: required when an SMTP URL is set".to_string();
                    match raw {
                        Some(r) => self.err(&r.referenced, message),
                        None => self.errors.push(ConfigError {
                            file: self.file.clone(),
                            line: 0,
                            column: 0,
                            message,
                        }),
                    }
                }
                None
            }
        };
        let max_attempts = match m.and_then(|m| m.max_attempts.as_ref()) {
            Some(v) if v.value == 0 || v.value > 100 => {
                self.err(
                    &v.referenced,
                    "mail.max_attempts: must be between 1 and 100".into(),
                );
                5
            }
            Some(v) => v.value,
            None => 5,
        };
        let poll = self.bounded_u64(
            m.and_then(|m| m.poll_ms.as_ref()),
            "mail.poll_ms",
            1000,
            3_600_000,
        );
        let retry_base = self.bounded_u64(
            m.and_then(|m| m.retry_base_ms.as_ref()),
            "mail.retry_base_ms",
            5000,
            86_400_000,
        );
        let timeout = self.bounded_u64(
            m.and_then(|m| m.timeout_ms.as_ref()),
            "mail.timeout_ms",
            30_000,
            600_000,
        );
        match (url, from) {
            (Some(smtp_url), Some(from)) if url_ok => Some(MailConfig {
                smtp_url,
                from,
                max_attempts,
                poll: Duration::from_millis(poll),
                retry_base: Duration::from_millis(retry_base),
                timeout: Duration::from_millis(timeout),
            }),
            _ => None,
        }
    }

    /// The `vectors:` and `graphs:` sections: model names non-empty, the cache 1 to 1048576 MiB.
    fn ai(
        &mut self,
        v: Option<&super::raw::RawVectors>,
        g: Option<&super::raw::RawGraphs>,
    ) -> (VectorsConfig, GraphsConfig) {
        let mut model = |s: Option<&Spanned<String>>, name: &str, default: &str| match s {
            Some(m) if m.value.trim().is_empty() || m.value.chars().any(char::is_control) => {
                self.err(&m.referenced, format!("{name}: a model name"));
                default.to_string()
            }
            Some(m) => m.value.trim().to_string(),
            None => default.to_string(),
        };
        let embedding_model = model(
            v.and_then(|v| v.embedding_model.as_ref()),
            "vectors.embedding_model",
            "text-embedding-3-small",
        );
        let default_model = model(
            g.and_then(|g| g.default_model.as_ref()),
            "graphs.default_model",
            "gpt-4o-mini",
        );
        let mb = match v.and_then(|v| v.cache_max_mb.as_ref()) {
            Some(m) if !(1..=1_048_576).contains(&m.value) => {
                self.err(
                    &m.referenced,
                    "vectors.cache_max_mb: 1 to 1048576".to_string(),
                );
                2048
            }
            Some(m) => m.value,
            None => 2048,
        };
        (
            VectorsConfig {
                embedding_model,
                cache_max_bytes: (mb as usize).saturating_mul(1024 * 1024),
            },
            GraphsConfig { default_model },
        )
    }

    /// The `pix:` section: key, merchant name and city required (folded to ASCII and bounded
    /// as the BR Code needs), the webhook secret read from the environment (16 bytes or more;
    /// absent is allowed: the webhook then answers 503).
    fn whatsapp(
        &mut self,
        raw: Option<&super::raw::RawWhatsapp>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> WhatsappConfig {
        const GRAPH: &str = "https://graph.facebook.com/v21.0";
        let graph_base_url = match raw.and_then(|w| w.graph_base_url.as_ref()) {
            Some(g) => match parse_base_url(&g.value) {
                Ok(_) => g.value.trim_end_matches('/').to_string(),
                Err(m) => {
                    self.err(&g.referenced, format!("whatsapp.graph_base_url: {m}"));
                    GRAPH.to_string()
                }
            },
            None => GRAPH.to_string(),
        };
        let mut var = |v: Option<&Spanned<String>>, name: &str, default: &str| -> String {
            match v {
                Some(s)
                    if s.value.is_empty() || s.value.contains('=') || s.value.contains('\0') =>
                {
                    self.err(
                        &s.referenced,
                        format!("whatsapp.{name}: an environment variable name"),
                    );
                    default.to_string()
                }
                Some(s) => s.value.clone(),
                None => default.to_string(),
            }
        };
        let app_secret_env = var(
            raw.and_then(|w| w.app_secret_env.as_ref()),
            "app_secret_env",
            "WHATSAPP_APP_SECRET",
        );
        let verify_token_env = var(
            raw.and_then(|w| w.verify_token_env.as_ref()),
            "verify_token_env",
            "WHATSAPP_VERIFY_TOKEN",
        );
        WhatsappConfig {
            graph_base_url,
            app_secret: env(&app_secret_env).filter(|v| !v.is_empty()),
            app_secret_env,
            verify_token: env(&verify_token_env).filter(|v| !v.is_empty()),
            verify_token_env,
        }
    }

    fn pix(
        &mut self,
        raw: Option<&Spanned<RawPix>>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<PixConfig> {
        let section = raw?;
        let p = &section.value;
        let at = &section.referenced;
        let mut ok = true;
        let key = match &p.key {
            Some(k) => {
                let v = k.value.trim();
                if v.is_empty() || v.len() > 77 || !v.bytes().all(|b| b.is_ascii_graphic()) {
                    self.err(
                        &k.referenced,
                        "pix.key: 1 to 77 ASCII characters without spaces".into(),
                    );
                    ok = false;
                }
                v.to_string()
            }
            None => {
                self.err(at, "pix.key: required (the receiver's PIX key)".into());
                ok = false;
                String::new()
            }
        };
        let mut text = |v: &Option<Spanned<String>>, name: &str, max: usize| -> String {
            match v {
                Some(s) => {
                    let folded = crate::domain::pix::ascii_fold(s.value.trim());
                    if folded.is_empty() || folded.len() > max {
                        self.err(
                            &s.referenced,
                            format!("pix.{name}: 1 to {max} characters (after folding to ASCII)"),
                        );
                        ok = false;
                    }
                    folded
                }
                None => {
                    self.err(at, format!("pix.{name}: required"));
                    ok = false;
                    String::new()
                }
            }
        };
        let merchant_name = text(&p.merchant_name, "merchant_name", 25);
        let merchant_city = text(&p.merchant_city, "merchant_city", 15);
        let webhook_secret_env = match &p.webhook_secret_env {
            Some(e) if e.value.is_empty() || e.value.contains('=') || e.value.contains('\0') => {
                self.err(
                    &e.referenced,
                    "pix.webhook_secret_env: an environment variable name".into(),
                );
                ok = false;
                String::new()
            }
            Some(e) => e.value.clone(),
            None => "CATRACA_PIX_WEBHOOK_SECRET".to_string(),
        };
        let webhook_secret = match env(&webhook_secret_env).filter(|s| !s.is_empty()) {
            Some(s) if s.len() < 16 => {
                self.errors.push(ConfigError {
                    file: webhook_secret_env.clone(),
                    line: 0,
                    column: 0,
                    message: "pix webhook secret: must be 16 bytes or more".into(),
                });
                ok = false;
                None
            }
            s => s,
        };
        let ttl = match &p.charge_ttl_secs {
            Some(t) if t.value < 60 || t.value > 2_592_000 => {
                self.err(
                    &t.referenced,
                    "pix.charge_ttl_secs: must be between 60 and 2592000".into(),
                );
                ok = false;
                3600
            }
            Some(t) => t.value,
            None => 3600,
        };
        ok.then(|| PixConfig {
            key,
            merchant_name,
            merchant_city,
            webhook_secret,
            webhook_secret_env,
            charge_ttl: Duration::from_secs(ttl),
        })
    }

    fn check_addr(&mut self, a: &Spanned<String>, path: &str) {
        if a.value.parse::<std::net::SocketAddr>().is_err() {
            self.err(
                &a.referenced,
                format!("{path}: {:?} is not an ip:port address", a.value),
            );
        }
    }

    fn model(
        &mut self,
        m: &RawModel,
        i: usize,
        deployment_idx: &HashMap<String, usize>,
        dep_kinds: &[crate::dialect::Kind],
        public_names: &mut HashSet<String>,
        default_markup: i64,
    ) -> Model {
        let path = format!("models[{i}]");
        for n in std::iter::once(&m.name).chain(m.aliases.iter()) {
            if n.value.is_empty() {
                self.err(
                    &n.referenced,
                    format!("{path}: model names must not be empty"),
                );
            } else if !public_names.insert(n.value.clone()) {
                self.err(
                    &n.referenced,
                    format!("{path}: public model name {:?} is used twice", n.value),
                );
            }
        }
        let category = match m.category.as_ref().map(|c| c.value.as_str()) {
            None | Some("chat") => Category::Chat,
            Some("completion") => Category::Completion,
            Some("embedding") => Category::Embedding,
            Some("image") => Category::Image,
            Some("audio") => Category::Audio,
            Some("ocr") => Category::Ocr,
            Some("recognition") => Category::Recognition,
            Some("moderation") => Category::Moderation,
            Some("speech") => Category::Speech,
            Some("rerank") => Category::Rerank,
            Some(other) => {
                if let Some(c) = &m.category {
                    self.err(
                        &c.referenced,
                        format!(
                            "{path}.category: {other:?} is not one of chat, completion, embedding, image, audio, ocr, recognition, moderation, speech, rerank"
                        ),
                    );
                }
                Category::Chat
            }
        };
        let mut price = |v: &Option<Spanned<String>>, field: &str| -> Option<i64> {
            let s = v.as_ref()?;
            match parse_decimal_micros(&s.value) {
                Ok(n) => Some(n),
                Err(e) => {
                    self.err(&s.referenced, format!("{path}.{field}: {e}"));
                    None
                }
            }
        };
        let input = price(&m.input_usd_per_1m, "input_usd_per_1m");
        let output = price(&m.output_usd_per_1m, "output_usd_per_1m");
        let cached_input = price(&m.cached_input_usd_per_1m, "cached_input_usd_per_1m");
        let cache_write = price(&m.cache_write_usd_per_1m, "cache_write_usd_per_1m");
        let per_request = price(&m.usd_per_request, "usd_per_request");
        let per_image = price(&m.usd_per_image, "usd_per_image");
        let per_audio_second = price(&m.usd_per_audio_second, "usd_per_audio_second");
        let per_1m_chars = price(&m.usd_per_1m_chars, "usd_per_1m_chars");
        let per_search = price(&m.usd_per_search, "usd_per_search");
        let markup = match price(&m.markup_multiplier, "markup_multiplier") {
            Some(0) => {
                if let Some(mm) = &m.markup_multiplier {
                    self.err(
                        &mm.referenced,
                        format!("{path}.markup_multiplier: must be > 0"),
                    );
                }
                default_markup
            }
            Some(v) => v,
            None => default_markup,
        };
        let tokenizer = match &m.tokenizer {
            Some(t) => crate::tokens::Encoding::parse(&t.value).unwrap_or_else(|| {
                self.err(
                    &t.referenced,
                    format!(
                        "{path}.tokenizer: {:?} is not one of o200k_base, cl100k_base, p50k_base, r50k_base, bytes",
                        t.value
                    ),
                );
                crate::tokens::Encoding::default()
            }),
            None => crate::tokens::Encoding::for_model(&m.name.value),
        };
        let mut deployments = Vec::new();
        if m.deployments.is_empty() {
            self.err(
                &m.name.referenced,
                format!("{path}.deployments: at least one deployment is needed"),
            );
        }
        for (j, d) in m.deployments.iter().enumerate() {
            match deployment_idx.get(&d.value) {
                Some(&k) => {
                    use crate::dialect::Kind;
                    let kind = dep_kinds.get(k).copied().unwrap_or_default();
                    let fits = match category {
                        Category::Chat => true,
                        Category::Embedding => kind != Kind::Anthropic,
                        _ => kind.speaks_openai(),
                    };
                    if !fits {
                        self.err(
                            &d.referenced,
                            format!(
                                "{path}.deployments[{j}]: deployment {:?} is on a {} provider, which does not serve {} models",
                                d.value,
                                kind.as_str(),
                                category.as_str()
                            ),
                        );
                    }
                    deployments.push(k)
                }
                None => self.err(
                    &d.referenced,
                    format!("{path}.deployments[{j}]: unknown deployment {:?}", d.value),
                ),
            }
        }
        Model {
            name: m.name.value.clone(),
            aliases: m.aliases.iter().map(|a| a.value.clone()).collect(),
            category,
            owned_by: m
                .owned_by
                .as_ref()
                .map(|o| o.value.clone())
                .unwrap_or_else(|| "catraca".into()),
            input_micros_per_1m: input,
            output_micros_per_1m: output,
            price: crate::pricing::Price {
                input_per_1m: input.unwrap_or(0),
                output_per_1m: output.unwrap_or(0),
                per_request: per_request.unwrap_or(0),
                per_image: per_image.unwrap_or(0),
                per_audio_second: per_audio_second.unwrap_or(0),
                per_1m_chars: per_1m_chars.unwrap_or(0),
                per_search: per_search.unwrap_or(0),
                markup,
                cached_input_per_1m: cached_input,
                cache_write_per_1m: cache_write,
            },
            tokenizer,
            deployments,
        }
    }

    fn key(
        &mut self,
        k: &RawKey,
        at: &Location,
        i: usize,
        env: &dyn Fn(&str) -> Option<String>,
        public_names: &HashSet<String>,
    ) -> Option<KeyEntry> {
        let path = format!("keys[{i}]");
        match (&k.sha256, &k.env) {
            (Some(_), Some(e)) => {
                self.err(
                    &e.referenced,
                    format!("{path}: set sha256 or env, not both"),
                );
                return None;
            }
            (None, None) => {
                self.err(at, format!("{path}: one of sha256 or env is required"));
                return None;
            }
            (Some(h), None) => {
                if decode_hash(&h.value).is_none() {
                    self.err(
                        &h.referenced,
                        format!("{path}.sha256: must be 64 lowercase hex characters"),
                    );
                    return None;
                }
            }
            (None, Some(e)) => {
                if env(&e.value).is_none_or(|v| v.is_empty()) {
                    self.err(
                        &e.referenced,
                        format!("{path}.env: environment variable {} is not set", e.value),
                    );
                    return None;
                }
            }
        }
        for m in &k.models {
            if !public_names.contains(&m.value) {
                self.err(
                    &m.referenced,
                    format!("{path}.models: unknown model {:?}", m.value),
                );
            }
        }
        key_entry(k, env)
    }
}

fn default_admin() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8081))
}

fn key_entry(k: &RawKey, env: &dyn Fn(&str) -> Option<String>) -> Option<KeyEntry> {
    let hash = match (&k.sha256, &k.env) {
        (Some(h), None) => decode_hash(&h.value)?,
        (None, Some(e)) => {
            let v = env(&e.value).filter(|v| !v.is_empty())?;
            Sha256::digest(v.as_bytes()).into()
        }
        _ => return None,
    };
    Some(KeyEntry {
        name: k.name.value.clone(),
        hash,
        disabled: k.disabled.as_ref().map(|d| d.value).unwrap_or(false),
        models: k.models.iter().map(|m| m.value.clone()).collect(),
        limits: crate::limits::Limits {
            rps: positive(&k.rps),
            rpm: positive(&k.rpm),
            rpd: positive(&k.rpd),
            tpm: positive(&k.tpm),
            concurrency: positive(&k.concurrency),
        },
    })
}

fn positive(v: &Option<Spanned<u32>>) -> Option<u32> {
    v.as_ref().map(|v| v.value).filter(|v| *v > 0)
}

fn decode_hash(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// An SMTP URL the sender can use: `smtp://` or `smtps://`, a host, `tls=required` or
/// `tls=opportunistic` as its only parameter, and accepted by lettre. The error never repeats
/// the URL (it may hold a password).
fn check_smtp_url(s: &str) -> Result<(), String> {
    let u = url::Url::parse(s).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(u.scheme(), "smtp" | "smtps") {
        return Err("must start with smtp:// or smtps://".into());
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    for (k, v) in u.query_pairs() {
        match (k.as_ref(), v.as_ref()) {
            ("tls", "required" | "opportunistic") => {}
            ("tls", _) => return Err("tls must be required or opportunistic".into()),
            _ => return Err("the only parameter is tls".into()),
        }
    }
    if u.password().is_some() && u.username().is_empty() {
        return Err("a password needs a user name".into());
    }
    lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(s)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Split an `http(s)://host[:port]/path` base URL.
fn parse_base_url(s: &str) -> Result<(bool, String, u16, String), String> {
    let uri: http::Uri = s.parse().map_err(|e| format!("{s:?} is not a URL ({e})"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("{s:?} must start with http:// or https://")),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{s:?} has no host"))?
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    if uri.query().is_some() {
        return Err(format!("{s:?} must not have a query string"));
    }
    let base_path = uri.path().trim_end_matches('/').to_string();
    Ok((tls, host, port, base_path))
}

/// Parse a non-negative decimal string (`"0.15"`, `"2"`, `"1.000001"`) into millionths.
/// More than six decimal places is an error rather than a silent rounding.
pub fn parse_decimal_micros(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a non-negative decimal number"));
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a non-negative decimal number"));
    }
    if frac.len() > 6 {
        return Err(format!("{s:?} has more than 6 decimal places"));
    }
    let int: i64 = int.parse().map_err(|_| format!("{s:?} is too large"))?;
    let mut frac_v: i64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        frac_v += i64::from(b - b'0') * 10_i64.pow(5 - i as u32);
    }
    int.checked_mul(1_000_000)
        .and_then(|v| v.checked_add(frac_v))
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Config, Vec<ConfigError>> {
        parse_str(yaml, Path::new("t.yaml"), &|k| {
            (k == "PROVIDER_KEY" || k == "DEMO_KEY").then(|| "secret".to_string())
        })
    }

    const GOOD: &str = r#"
providers:
  - name: mock
    base_url: http://127.0.0.1:9100/v1
    api_key_env: PROVIDER_KEY
deployments:
  - name: a
    provider: mock
    model: up-a
  - name: b
    provider: mock
    model: up-b
    priority: 1
    weight: 3
models:
  - name: gpt-4o-mini
    aliases: [mini]
    input_usd_per_1m: "0.15"
    output_usd_per_1m: "0.60"
    deployments: [a, b]
keys:
  - name: demo
    env: DEMO_KEY
"#;

    #[test]
    fn good_config_resolves() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.providers[0].port, 9100);
        assert_eq!(c.providers[0].base_path, "/v1");
        assert_eq!(c.providers[0].api_key.as_deref(), Some("secret"));
        assert_eq!(c.deployments[1].weight, 3);
        assert_eq!(c.models[0].deployments, vec![0, 1]);
        assert_eq!(c.models[0].input_micros_per_1m, Some(150_000));
        assert_eq!(c.keys[0].hash, <[u8; 32]>::from(Sha256::digest(b"secret")));
        assert_eq!(c.failover.max_attempts, 3);
    }

    #[test]
    fn pix_section_is_checked_with_positions() {
        let env = |k: &str| match k {
            "PSP_SECRET" => Some("s".repeat(32)),
            "PROVIDER_KEY" | "DEMO_KEY" => Some("secret".to_string()),
            _ => None,
        };
        let ok = format!(
            "{GOOD}pix:\n  key: \"+5511999998888\"\n  merchant_name: \"Tokia Serviços\"\n  merchant_city: \"São Paulo\"\n  webhook_secret_env: PSP_SECRET\n  charge_ttl_secs: 600\n"
        );
        let c = parse_str(&ok, Path::new("t.yaml"), &env).unwrap();
        let p = c.pix.unwrap();
        assert_eq!(p.merchant_name, "Tokia Servicos");
        assert_eq!(p.merchant_city, "Sao Paulo");
        assert_eq!(p.webhook_secret.as_deref().map(str::len), Some(32));
        assert_eq!(p.charge_ttl, Duration::from_secs(600));
        assert!(!format!("{p:?}").contains("sss"), "secret printed");
        // no section: no PIX; defaults: 1 h, secret from CATRACA_PIX_WEBHOOK_SECRET (absent)
        assert!(parse(GOOD).unwrap().pix.is_none());
        let minimal = format!("{GOOD}pix: {{key: k, merchant_name: N, merchant_city: C}}\n");
        let p = parse(&minimal).unwrap().pix.unwrap();
        assert_eq!(p.charge_ttl, Duration::from_secs(3600));
        assert!(p.webhook_secret.is_none());
        assert_eq!(p.webhook_secret_env, "CATRACA_PIX_WEBHOOK_SECRET");
        // every problem, each at its position
        let bad = format!(
            "{GOOD}pix:\n  merchant_name: \"{}\"\n  merchant_city: \"Sao Paulo da Serra\"\n  charge_ttl_secs: 5\n",
            "x".repeat(26)
        );
        let errs = parse(&bad).unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 4, "{text:?}");
        assert!(text.iter().any(|e| e.contains("pix.key: required")));
        assert!(
            text.iter()
                .any(|e| e.contains("t.yaml:") && e.contains("pix.merchant_name: 1 to 25"))
        );
        assert!(
            text.iter()
                .any(|e| e.contains("pix.merchant_city: 1 to 15"))
        );
        assert!(text.iter().any(|e| e.contains("pix.charge_ttl_secs")));
        assert!(errs.iter().all(|e| e.line > 0), "{text:?}");
        // a short secret is refused naming its variable
        let short = |k: &str| match k {
            "CATRACA_PIX_WEBHOOK_SECRET" => Some("short".to_string()),
            _ => env(k),
        };
        let errs = parse_str(&minimal, Path::new("t.yaml"), &short).unwrap_err();
        assert_eq!(errs[0].file, "CATRACA_PIX_WEBHOOK_SECRET");
    }

    #[test]
    fn unknown_field_has_position() {
        let errs = parse("providers: []\nlisten_on: 1\n").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 2, "{errs:?}");
        assert!(errs[0].message.contains("listen_on"), "{errs:?}");
    }

    #[test]
    fn every_semantic_error_is_reported_with_position() {
        let yaml = GOOD
            .replace(
                "provider: mock\n    model: up-b",
                "provider: nope\n    model: up-b",
            )
            .replace("deployments: [a, b]", "deployments: [a, zz]")
            .replace("\"0.60\"", "\"0.6000001\"");
        let errs = parse(&yaml).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 3, "{text:?}");
        assert!(
            text.iter()
                .any(|t| t.starts_with("t.yaml:11:15: deployments[1].provider: unknown provider")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("models[0].deployments[1]: unknown deployment \"zz\"")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("more than 6 decimal places")),
            "{text:?}"
        );
    }

    #[test]
    fn http2_is_negotiated_over_https_and_asked_for_in_the_clear() {
        let with = |url: &str, extra: &str| {
            let yaml = GOOD.replace(
                "base_url: http://127.0.0.1:9100/v1",
                &format!("base_url: {url}{extra}"),
            );
            parse(&yaml).unwrap().providers[0].http2
        };
        assert!(!with("http://127.0.0.1:9100/v1", ""));
        assert!(with("https://api.example.com/v1", ""));
        assert!(with("http://127.0.0.1:9100/v1", "\n    http2: true"));
        assert!(!with("https://api.example.com/v1", "\n    http2: false"));
        let bad = GOOD.replace(
            "base_url: http://127.0.0.1:9100/v1",
            "base_url: http://127.0.0.1:9100/v1\n    http2: sometimes",
        );
        assert!(parse(&bad).is_err());
    }

    #[test]
    fn tuning_knobs_have_measured_defaults_and_refuse_nonsense() {
        let c = parse(GOOD).unwrap();
        assert!(!c.work_stealing);
        assert_eq!(c.upstream_keepalive_pool, 128);
        assert_eq!(c.usage.batch_size, 1000);
        assert_eq!(c.usage.flush, std::time::Duration::from_millis(20));
        assert_eq!(c.client.read_buffer_bytes, 16 * 1024);
        let errs = parse(&format!("client: {{read_buffer_bytes: 100}}\n{GOOD}")).unwrap_err();
        assert!(
            errs[0]
                .to_string()
                .contains("client.read_buffer_bytes: must be between 1024 and 1048576"),
            "{errs:?}"
        );
        let tuned = parse(&format!(
            "work_stealing: true\nupstream_keepalive_pool: 16\nusage: {{batch_size: 50, flush_ms: 5}}\n{GOOD}"
        ))
        .unwrap();
        assert!(tuned.work_stealing);
        assert_eq!(tuned.upstream_keepalive_pool, 16);
        assert_eq!(tuned.usage.batch_size, 50);
        assert_eq!(tuned.usage.flush, std::time::Duration::from_millis(5));
        let errs = parse(&format!(
            "upstream_keepalive_pool: 1000000\nusage: {{batch_size: 0, flush_ms: 600000}}\n{GOOD}"
        ))
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 3, "{text:?}");
        for want in [
            "t.yaml:1:26: upstream_keepalive_pool: must be at most 100000",
            "usage.batch_size: must be > 0",
            "usage.flush_ms: must be at most 60000",
        ] {
            assert!(text.iter().any(|t| t.contains(want)), "{want}: {text:?}");
        }
    }

    #[test]
    fn decimal_parsing_is_exact() {
        assert_eq!(parse_decimal_micros("0.15"), Ok(150_000));
        assert_eq!(parse_decimal_micros("2"), Ok(2_000_000));
        assert_eq!(parse_decimal_micros("1.000001"), Ok(1_000_001));
        assert!(parse_decimal_micros("-1").is_err());
        assert!(parse_decimal_micros("1e3").is_err());
        assert!(parse_decimal_micros("").is_err());
    }
}

/// Property tests (bounded here; `PROPTEST_CASES=100000 cargo test --lib fuzz` for long runs).
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    const VALID: &str = "providers:\n  - {name: p, base_url: \"http://127.0.0.1:9/v1\"}\ndeployments:\n  - {name: d, provider: p, model: up}\nmodels:\n  - {name: m, deployments: [d]}\n";

    proptest! {
        /// Any text is either a config or a list of located problems, never a panic.
        #[test]
        fn any_text_is_refused_cleanly(text in "\\PC{0,400}") {
            let _ = super::parse_str(&text, std::path::Path::new("x.yaml"), &|_| None);
        }

        /// A valid file with one line mangled: still no panic, and an error names a line.
        #[test]
        fn mangled_valid_files(line in 0usize..6, junk in "[ -~]{0,30}") {
            let mut lines: Vec<String> = VALID.lines().map(str::to_string).collect();
            let i = line % lines.len();
            lines[i] = junk;
            let text = lines.join("\n");
            if let Err(errs) = super::parse_str(&text, std::path::Path::new("x.yaml"), &|_| None) {
                prop_assert!(!errs.is_empty());
            }
        }
    }
}
