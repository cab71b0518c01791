//! Routing state built from the config: model names → deployments → providers, the circuit
//! breakers, and the choice of deployments for one request (priority, weight, health).
//!
//! A [`Live`] is immutable once built; a reload builds a new one and swaps it in whole
//! (`state::Shared::live`), so a request sees one consistent config from start to end.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ctx::Route;
use crate::config::{Category, Config};

/// Attempts are capped at 16 by config validation; candidates fit a fixed array.
pub const MAX_CANDIDATES: usize = 16;

/// Circuit breaker of one deployment.
#[derive(Debug, Default)]
pub struct Breaker {
    failures: AtomicU32,
    /// ms since [`Live::epoch`] until which the circuit is open; 0 = closed.
    open_until_ms: AtomicU64,
    /// The circuit opened since the upstream-health task last looked (a cool-down shorter
    /// than its period is still seen).
    opened: std::sync::atomic::AtomicBool,
}

impl Breaker {
    /// Whether the deployment is cooling down at `now_ms`.
    pub fn is_open(&self, now_ms: u64) -> bool {
        self.open_until_ms.load(Ordering::Relaxed) > now_ms
    }

    /// Whether the circuit is open at `now_ms` or opened since the last call (which clears
    /// that).
    pub fn seen_open(&self, now_ms: u64) -> bool {
        self.opened.swap(false, Ordering::Relaxed) | self.is_open(now_ms)
    }

    /// A successful attempt closes the circuit.
    pub fn on_success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if self.open_until_ms.load(Ordering::Relaxed) != 0 {
            self.open_until_ms.store(0, Ordering::Relaxed);
        }
    }

    /// A failed attempt; returns true when this failure opened the circuit. After a cool-down
    /// the count is still at the threshold, so the first request through is the probe: one more
    /// failure re-opens the circuit at once, a success closes it.
    pub fn on_failure(&self, now_ms: u64, trip: u32, cooldown: Duration) -> bool {
        let n = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if n >= trip && !self.is_open(now_ms) {
            self.open_until_ms
                .store(now_ms + cooldown.as_millis() as u64, Ordering::Relaxed);
            self.opened.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}

/// A provider with its address resolved.
#[derive(Debug)]
pub struct LiveProvider {
    /// Resolved socket address (DNS is never resolved on the request path).
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host_header: HeaderValue,
    /// `Authorization: Bearer …` to send upstream, if an OpenAI-kind provider has a key.
    pub auth_header: Option<HeaderValue>,
    /// Another kind's credential and version headers, built once here: Azure `api-key`,
    /// Anthropic `x-api-key` + `anthropic-version`, Gemini `x-goog-api-key` (Bedrock signs
    /// each request instead). Empty for the OpenAI kind.
    pub dialect_headers: Vec<(&'static str, HeaderValue)>,
    /// The upstream URI of each route (`base_path` + the route's suffix), by [`Route::index`].
    pub uris: Vec<http::Uri>,
    /// Attempt counts and latencies not yet in the rollup (kept across reloads by name).
    pub health: Arc<super::health::ProviderHealth>,
}

/// Information about a recognised API key.
#[derive(Debug)]
pub struct KeyInfo {
    /// Key name for usage events.
    pub name: Arc<str>,
    /// Refused when true (disabled or revoked).
    pub disabled: bool,
    /// Refused after this time.
    pub expires_at: Option<time::OffsetDateTime>,
    /// Allowed public model names; empty = all.
    pub models: Vec<String>,
    /// Tenant, for keys stored in Postgres.
    pub organization_id: Option<uuid::Uuid>,
    /// Row id, for keys stored in Postgres.
    pub api_key_id: Option<uuid::Uuid>,
    /// The key's own limits.
    pub limits: crate::limits::Limits,
    /// Its organization's limits (the organization's own, else its plan's).
    pub org_limits: crate::limits::Limits,
    /// The organization pays from a prepaid BRL balance.
    pub prepaid: bool,
    /// The key has a USD budget.
    pub budgeted: bool,
    /// Its organization's plan has a monthly request quota.
    pub quota: bool,
    hash: [u8; 32],
}

impl KeyInfo {
    /// A key read from the store.
    #[allow(clippy::too_many_arguments)] // one row of `api_key`, field by field
    pub fn from_store(
        hash: [u8; 32],
        name: &str,
        disabled: bool,
        expires_at: Option<time::OffsetDateTime>,
        models: Vec<String>,
        organization_id: uuid::Uuid,
        api_key_id: uuid::Uuid,
        limits: crate::limits::Limits,
        org_limits: crate::limits::Limits,
        prepaid: bool,
        budgeted: bool,
        quota: bool,
    ) -> Self {
        KeyInfo {
            limits,
            org_limits,
            prepaid,
            budgeted,
            quota,
            name: Arc::from(name),
            disabled,
            expires_at,
            models,
            organization_id: Some(organization_id),
            api_key_id: Some(api_key_id),
            hash,
        }
    }

    /// SHA-256 of the key (the limiter's counter key).
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// Whether the key may be used now.
    pub fn is_expired(&self) -> bool {
        self.expires_at
            .is_some_and(|t| t <= time::OffsetDateTime::now_utc())
    }
}

/// Looks up API keys by the SHA-256 of the presented key.
pub trait KeyStore: Send + Sync {
    /// The key whose hash is `hash`, if any.
    fn lookup(&self, hash: &[u8; 32]) -> Option<Arc<KeyInfo>>;
}

/// Everything the request path reads, built from one config.
pub struct Live {
    /// The config this was built from.
    pub config: Arc<Config>,
    /// Process start, the zero of breaker clocks.
    pub epoch: Instant,
    /// Public name or alias → model index.
    pub model_index: HashMap<String, usize>,
    /// Per provider, same order as the config.
    pub providers: Vec<LiveProvider>,
    /// Per deployment, same order as the config; kept across reloads by deployment name.
    pub breakers: Vec<Arc<Breaker>>,
    /// Metric label per deployment.
    pub deployment_names: Vec<Arc<str>>,
    /// Name per provider, for usage events.
    pub provider_names: Vec<Arc<str>>,
    /// Public name per model, for usage events.
    pub model_names: Vec<Arc<str>>,
    /// Config keys by hash.
    keys: HashMap<[u8; 32], Arc<KeyInfo>>,
    /// Pre-rendered `GET /v1/models` bodies, by shape and category filter.
    models_bodies: ModelsBodies,
    /// Per model, the second (since `epoch`, plus one; 0 = never) it was last asked for; kept
    /// across reloads by model name, so a reload can tell a model in use.
    pub model_used: Vec<Arc<std::sync::atomic::AtomicU64>>,
    /// Metric handles for this config's models and deployments.
    pub handles: crate::metrics::LiveHandles,
}

impl KeyStore for Live {
    fn lookup(&self, hash: &[u8; 32]) -> Option<Arc<KeyInfo>> {
        let k = self.keys.get(hash)?;
        // The map lookup finds the candidate; the full comparison is constant-time.
        bool::from(k.hash.ct_eq(hash)).then(|| k.clone())
    }
}

/// SHA-256 of a presented key.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl Live {
    /// Build from a validated config, resolving provider addresses. Breakers of deployments
    /// that keep their name are carried over from `previous`.
    pub async fn build(
        config: Arc<Config>,
        previous: Option<&Live>,
        epoch: Instant,
    ) -> Result<Live, String> {
        let mut providers = Vec::with_capacity(config.providers.len());
        for p in &config.providers {
            let addr = resolve(&p.host, p.port)
                .await
                .map_err(|e| format!("provider {}: cannot resolve {}: {e}", p.name, p.host))?;
            let default_port = if p.tls { 443 } else { 80 };
            let host = if p.port == default_port {
                p.host.clone()
            } else {
                format!("{}:{}", p.host, p.port)
            };
            let host_header = HeaderValue::from_str(&host)
                .map_err(|_| format!("provider {}: bad host {host:?}", p.name))?;
            let secret = |k: &str| {
                HeaderValue::from_str(k)
                    .map(|mut v| {
                        v.set_sensitive(true);
                        v
                    })
                    .map_err(|_| format!("provider {}: api key has invalid bytes", p.name))
            };
            let mut dialect_headers = Vec::new();
            let key_name = match p.kind {
                crate::dialect::Kind::Azure => Some("api-key"),
                crate::dialect::Kind::Anthropic => Some("x-api-key"),
                crate::dialect::Kind::Gemini => Some("x-goog-api-key"),
                crate::dialect::Kind::OpenAi | crate::dialect::Kind::Bedrock => None,
            };
            if let (Some(name), Some(k)) = (key_name, &p.api_key) {
                dialect_headers.push((name, secret(k)?));
            }
            if p.kind == crate::dialect::Kind::Anthropic {
                let v = HeaderValue::from_str(&p.anthropic_version)
                    .map_err(|_| format!("provider {}: bad anthropic_version", p.name))?;
                dialect_headers.push(("anthropic-version", v));
            }
            let auth_header = match &p.api_key {
                Some(_) if p.kind != crate::dialect::Kind::OpenAi => None,
                Some(k) => {
                    let mut v = HeaderValue::from_str(&format!("Bearer {k}"))
                        .map_err(|_| format!("provider {}: api key has invalid bytes", p.name))?;
                    v.set_sensitive(true);
                    Some(v)
                }
                None => None,
            };
            let uris = Route::ALL
                .iter()
                .map(|r| format!("{}{}", p.base_path, r.upstream_suffix()).parse::<http::Uri>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    format!("provider {}: bad base path {:?}: {e}", p.name, p.base_path)
                })?;
            let health = previous
                .and_then(|prev| {
                    prev.config
                        .providers
                        .iter()
                        .position(|pp| pp.name == p.name)
                        .map(|i| prev.providers[i].health.clone())
                })
                .unwrap_or_default();
            providers.push(LiveProvider {
                health,
                uris,
                addr,
                host_header,
                auth_header,
                dialect_headers,
            });
        }
        let mut breakers = Vec::with_capacity(config.deployments.len());
        for d in &config.deployments {
            let kept = previous.and_then(|prev| {
                prev.config
                    .deployments
                    .iter()
                    .position(|pd| pd.name == d.name)
                    .and_then(|i| prev.breakers.get(i).cloned())
            });
            breakers.push(kept.unwrap_or_default());
        }
        let mut model_index = HashMap::new();
        for (i, m) in config.models.iter().enumerate() {
            model_index.insert(m.name.clone(), i);
            for a in &m.aliases {
                model_index.insert(a.clone(), i);
            }
        }
        let mut keys = HashMap::new();
        for k in &config.keys {
            keys.insert(
                k.hash,
                Arc::new(KeyInfo {
                    name: Arc::from(k.name.as_str()),
                    disabled: k.disabled,
                    expires_at: None,
                    models: k.models.clone(),
                    organization_id: None,
                    api_key_id: None,
                    limits: k.limits,
                    org_limits: crate::limits::Limits::default(),
                    prepaid: false,
                    budgeted: false,
                    quota: false,
                    hash: k.hash,
                }),
            );
        }
        let models_bodies = render_models(&config);
        let model_used = config
            .models
            .iter()
            .map(|m| {
                previous
                    .and_then(|prev| prev.model_index.get(&m.name).map(|&i| &prev.model_used[i]))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        Ok(Live {
            handles: crate::metrics::LiveHandles::new(&config),
            model_used,
            provider_names: config
                .providers
                .iter()
                .map(|p| Arc::from(p.name.as_str()))
                .collect(),
            model_names: config
                .models
                .iter()
                .map(|m| Arc::from(m.name.as_str()))
                .collect(),
            deployment_names: config
                .deployments
                .iter()
                .map(|d| Arc::from(d.name.as_str()))
                .collect(),
            config,
            epoch,
            model_index,
            providers,
            breakers,
            keys,
            models_bodies,
        })
    }

    /// Note that `model` was asked for at `now` (one relaxed load; a store at most once a
    /// second per model, so threads do not fight over the cache line).
    pub fn mark_used(&self, model: usize, now: Instant) {
        if let Some(a) = self.model_used.get(model) {
            let s = now.saturating_duration_since(self.epoch).as_secs() + 1;
            if a.load(std::sync::atomic::Ordering::Relaxed) != s {
                a.store(s, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Public names of models of this snapshot that `next` no longer serves and that were asked
    /// for within `window`.
    pub fn models_in_use_dropped_by(
        &self,
        next: &Config,
        window: std::time::Duration,
    ) -> Vec<String> {
        let now = self.epoch.elapsed().as_secs() + 1;
        self.config
            .models
            .iter()
            .zip(&self.model_used)
            .filter(|(m, used)| {
                let t = used.load(std::sync::atomic::Ordering::Relaxed);
                t != 0
                    && now.saturating_sub(t) <= window.as_secs()
                    && !next.models.iter().any(|n| n.name == m.name)
            })
            .map(|(m, _)| m.name.clone())
            .collect()
    }

    /// Milliseconds since the epoch, for breaker clocks.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The order in which to try the deployments of `model`: healthy ones first, by priority,
    /// weighted-random within a priority; cooling ones last (tried only if the rest fail).
    pub fn candidates(&self, model: usize) -> Candidates {
        let mut out = Candidates::default();
        let Some(m) = self.config.models.get(model) else {
            return out;
        };
        let now = self.now_ms();
        let mut healthy: [(u32, usize); MAX_CANDIDATES] = [(0, 0); MAX_CANDIDATES];
        let mut nh = 0;
        let mut cooling: [(u32, usize); MAX_CANDIDATES] = [(0, 0); MAX_CANDIDATES];
        let mut nc = 0;
        for &d in m.deployments.iter().take(MAX_CANDIDATES) {
            let prio = self.config.deployments[d].priority;
            if self.breakers[d].is_open(now) {
                cooling[nc] = (prio, d);
                nc += 1;
            } else {
                healthy[nh] = (prio, d);
                nh += 1;
            }
        }
        self.push_ordered(&mut healthy[..nh], &mut out);
        self.push_ordered(&mut cooling[..nc], &mut out);
        out
    }

    fn push_ordered(&self, list: &mut [(u32, usize)], out: &mut Candidates) {
        list.sort_by_key(|&(p, _)| p);
        let mut start = 0;
        while start < list.len() {
            let prio = list[start].0;
            let end = start + list[start..].iter().take_while(|x| x.0 == prio).count();
            // weighted draw without replacement inside one priority group
            let group = &mut list[start..end];
            for i in 0..group.len() {
                let total: u64 = group[i..]
                    .iter()
                    .map(|&(_, d)| u64::from(self.config.deployments[d].weight))
                    .sum();
                let mut pick = fastrand::u64(0..total.max(1));
                let mut chosen = i;
                for (j, &(_, d)) in group.iter().enumerate().skip(i) {
                    let w = u64::from(self.config.deployments[d].weight);
                    if pick < w {
                        chosen = j;
                        break;
                    }
                    pick -= w;
                }
                group.swap(i, chosen);
                out.push(group[i].1);
            }
            start = end;
        }
    }

    /// Category of a model.
    pub fn category(&self, model: usize) -> Category {
        self.config.models[model].category
    }
}

/// Ordered deployment indexes for one request.
#[derive(Debug, Clone, Copy)]
pub struct Candidates {
    items: [u16; MAX_CANDIDATES],
    len: u8,
}

impl Default for Candidates {
    fn default() -> Self {
        Candidates {
            items: [0; MAX_CANDIDATES],
            len: 0,
        }
    }
}

impl Candidates {
    fn push(&mut self, d: usize) {
        if (self.len as usize) < MAX_CANDIDATES {
            self.items[self.len as usize] = d as u16;
            self.len += 1;
        }
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`-th candidate.
    pub fn get(&self, i: usize) -> Option<usize> {
        (i < self.len()).then(|| self.items[i] as usize)
    }

    /// Keep only the candidates `keep` accepts, in their order.
    pub fn retain(&mut self, keep: impl Fn(usize) -> bool) {
        let mut n = 0;
        for i in 0..self.len() {
            let d = self.items[i];
            if keep(d as usize) {
                self.items[n] = d;
                n += 1;
            }
        }
        self.len = n as u8;
    }
}

async fn resolve(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))
}

/// `GET /v1/models`'s `category` filter (`chat` is Tokia's alias of `llm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelsFilter {
    /// No filter: OpenAI's `data` lists every model, Tokia's `models` only `llm`, `image`
    /// and `video` ones (its schema's enum).
    None = 0,
    /// Chat and completion models.
    Llm,
    /// Image models.
    Image,
    /// Video models (none today).
    Video,
    /// Embedding models.
    Embedding,
    /// Audio models.
    Audio,
}

impl ModelsFilter {
    /// The filter a `category` query value asks for; `None` for an unknown one.
    pub fn parse(v: Option<&str>) -> Option<ModelsFilter> {
        Some(match v {
            None => ModelsFilter::None,
            Some("llm" | "chat") => ModelsFilter::Llm,
            Some("image") => ModelsFilter::Image,
            Some("video") => ModelsFilter::Video,
            Some("embedding") => ModelsFilter::Embedding,
            Some("audio") => ModelsFilter::Audio,
            Some(_) => return None,
        })
    }
}

/// Every `/v1/models` answer, rendered once per config: `[shape][filter]`.
struct ModelsBodies([[Bytes; 6]; 3]);

impl Live {
    /// The `/v1/models` body for a listener's `shape` and a request's `filter`.
    pub fn models_body(&self, shape: crate::config::ModelsList, filter: ModelsFilter) -> Bytes {
        let s = match shape {
            crate::config::ModelsList::Both => 0,
            crate::config::ModelsList::OpenAi => 1,
            crate::config::ModelsList::Tokia => 2,
        };
        self.models_bodies.0[s][filter as usize].clone()
    }
}

impl Live {
    /// `GET /v1/models/{id}`: the catalog entry named `id` (a model's name or alias) in the
    /// shape of one `/v1/models` `data` item; `None` when no model has that name.
    pub fn model_body(&self, id: &str) -> Option<Bytes> {
        let &m = self.model_index.get(id)?;
        let m = &self.config.models[m];
        let v = serde_json::json!({
            "id": id,
            "object": "model",
            "created": 1_700_000_000u64,
            "owned_by": m.owned_by,
            "category": m.category.as_str(),
        });
        serde_json::to_vec(&v).ok().map(Bytes::from)
    }
}

/// Tokia's category of a model (`None`: not in Tokia's catalog: OCR, recognition).
fn tokia_category(c: Category) -> Option<(&'static str, ModelsFilter)> {
    match c {
        Category::Chat | Category::Completion => Some(("llm", ModelsFilter::Llm)),
        Category::Image => Some(("image", ModelsFilter::Image)),
        Category::Embedding => Some(("embedding", ModelsFilter::Embedding)),
        Category::Audio | Category::Speech => Some(("audio", ModelsFilter::Audio)),
        Category::Ocr | Category::Recognition | Category::Moderation | Category::Rerank => None,
    }
}

fn render_models(config: &Config) -> ModelsBodies {
    #[derive(serde::Serialize)]
    struct OpenAi<'a> {
        id: &'a str,
        object: &'static str,
        created: u64,
        owned_by: &'a str,
        category: &'static str,
    }
    #[derive(serde::Serialize)]
    struct Tokia<'a> {
        id: &'a str,
        display_name: &'a str,
        category: &'static str,
        upstream: &'a str,
        markup_multiplier: serde_json::Value,
        description: Option<&'a str>,
    }
    #[derive(serde::Serialize)]
    struct List<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        object: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<Vec<OpenAi<'a>>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        models: Option<Vec<Tokia<'a>>>,
    }
    let filters = [
        ModelsFilter::None,
        ModelsFilter::Llm,
        ModelsFilter::Image,
        ModelsFilter::Video,
        ModelsFilter::Embedding,
        ModelsFilter::Audio,
    ];
    let render = |shape: usize, filter: ModelsFilter| -> Bytes {
        let mut data = Vec::new();
        let mut models = Vec::new();
        for m in &config.models {
            let tokia = tokia_category(m.category);
            let in_data = filter == ModelsFilter::None || tokia.is_some_and(|t| t.1 == filter);
            let in_models = match (tokia, filter) {
                (None, _) => false,
                (Some((_, f)), ModelsFilter::None) => {
                    matches!(
                        f,
                        ModelsFilter::Llm | ModelsFilter::Image | ModelsFilter::Video
                    )
                }
                (Some((_, f)), wanted) => f == wanted,
            };
            for name in std::iter::once(&m.name).chain(m.aliases.iter()) {
                if in_data {
                    data.push(OpenAi {
                        id: name,
                        object: "model",
                        created: 1_700_000_000,
                        owned_by: &m.owned_by,
                        category: m.category.as_str(),
                    });
                }
                if let (true, Some((category, _))) = (in_models, tokia) {
                    models.push(Tokia {
                        id: name,
                        display_name: name,
                        category,
                        upstream: &m.owned_by,
                        markup_multiplier: crate::domain::money::Micros(m.price.markup)
                            .json_number(),
                        description: None,
                    });
                }
            }
        }
        let list = match shape {
            0 => List {
                object: Some("list"),
                data: Some(data),
                models: Some(models),
            },
            1 => List {
                object: Some("list"),
                data: Some(data),
                models: None,
            },
            _ => List {
                object: None,
                data: None,
                models: Some(models),
            },
        };
        serde_json::to_vec(&list)
            .map(Bytes::from)
            .unwrap_or_default()
    };
    ModelsBodies(std::array::from_fn(|shape| {
        std::array::from_fn(|f| render(shape, filters[f]))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    async fn live(yaml: &str) -> Live {
        let c = crate::config::parse_str(yaml, Path::new("t.yaml"), &|_| None).unwrap();
        Live::build(Arc::new(c), None, Instant::now())
            .await
            .unwrap()
    }

    const YAML: &str = r#"
providers: [{name: p, base_url: "http://127.0.0.1:1/v1"}]
deployments:
  - {name: a, provider: p, model: m, priority: 0, weight: 1}
  - {name: b, provider: p, model: m, priority: 0, weight: 3}
  - {name: c, provider: p, model: m, priority: 1}
models:
  - {name: x, deployments: [a, b, c]}
"#;

    #[tokio::test]
    async fn priority_then_weight() {
        let l = live(YAML).await;
        let mut first_b = 0;
        for _ in 0..4000 {
            let c = l.candidates(0);
            assert_eq!(c.len(), 3);
            assert_eq!(c.get(2), Some(2), "priority 1 comes last");
            if c.get(0) == Some(1) {
                first_b += 1;
            }
        }
        // weight 3 of 4: expect ~3000 of 4000
        assert!((2700..3300).contains(&first_b), "{first_b}");
    }

    #[tokio::test]
    async fn open_circuit_goes_last_and_recovers() {
        let l = live(YAML).await;
        let now = l.now_ms();
        let cd = Duration::from_millis(50);
        assert!(!l.breakers[0].on_failure(now, 2, cd));
        assert!(l.breakers[0].on_failure(now, 2, cd));
        assert!(l.breakers[1].on_failure(now, 1, cd));
        for _ in 0..50 {
            let c = l.candidates(0);
            assert_eq!(c.get(0), Some(2), "only healthy deployment first");
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        // half-open: back in rotation, and one more failure re-opens at once
        assert!(!l.breakers[0].is_open(l.now_ms()));
        assert!(l.breakers[0].on_failure(l.now_ms(), 2, cd));
        l.breakers[1].on_success();
        assert!(!l.breakers[1].is_open(l.now_ms()));
    }
}
