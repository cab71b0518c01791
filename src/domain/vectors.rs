//! Vector collections (issue 15 item 11): a [`VectorStore`] trait and its Postgres back end
//! ([`PgVectors`]). PostgreSQL 15 here has no pgvector, so documents keep their vector as
//! `real[]` and similarity is exact cosine computed in Rust over the whole collection.
//!
//! - A collection belongs to an organization (a bradax project); its dimension is fixed by
//!   its first upsert. An upsert is one transaction: every document is checked first and any
//!   problem refuses the whole request (every problem listed), nothing stored.
//! - Norms are computed once at upsert. A query normalizes its vector once, then each score is
//!   `dot(q̂, d) / |d|` over contiguous `f32` rows in chunks of [`LANES`] (a loop the compiler
//!   turns into SIMD), split across the cores, each part keeping a bounded heap of `top_k`.
//! - Reading 100k × 1536 floats out of Postgres takes seconds, so a collection's vectors are
//!   kept in memory ([`Index`]) keyed by the collection's `version`, which every upsert bumps:
//!   a query reads the version (one indexed row), and when it moved loads only the documents
//!   written since. Collections past the memory budget are scanned from Postgres each time.
//! - Text without a vector is embedded through the gateway with the caller's credential
//!   ([`super::inference::Gateway`]), so embeddings are limited and billed as the caller's.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::error::{DomainError, Entity};
use super::inference::{Failure, Gateway, Problem, Usage};
use crate::store::vectors::{self as db, CollectionRow, DocumentColumns};

/// Floats summed side by side in the dot product (two AVX registers, four SSE ones).
pub const LANES: usize = 16;
/// Largest dimension.
pub const MAX_DIMENSION: usize = 4096;
/// Most documents in one upsert.
pub const MAX_DOCUMENTS: usize = 1000;
/// Longest document id, characters.
pub const MAX_ID: usize = 256;
/// Largest metadata object, bytes of JSON.
pub const MAX_METADATA: usize = 16 * 1024;
/// Longest document text (and query text), characters.
pub const MAX_TEXT: usize = 100_000;
/// Largest `top_k`.
pub const MAX_TOP_K: usize = 100;
/// `top_k` when not given.
pub const DEFAULT_TOP_K: usize = 5;

/// A collection name: 1–128 of `A-Z a-z 0-9 _ . -`, starting with a letter or digit.
pub fn check_name(name: &str) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Problem::new(
            "INVALID_COLLECTION",
            "collection: 1 to 128 characters of A-Z, a-z, 0-9, '_', '.', '-', starting with a letter or digit",
        ))
    }
}

/// A document as the caller sent it.
#[derive(Debug, Clone, Default)]
pub struct NewDocument {
    /// Id (the caller's).
    pub id: String,
    /// Vector; `None`: embed `text`.
    pub vector: Option<Vec<f64>>,
    /// Metadata (a JSON object).
    pub metadata: Option<Value>,
    /// Text.
    pub text: Option<String>,
}

/// A query as the caller sent it.
#[derive(Debug, Clone, Default)]
pub struct QueryInput {
    /// Text to embed (or `vector`).
    pub query_text: Option<String>,
    /// A vector of the collection's dimension.
    pub vector: Option<Vec<f64>>,
    /// How many results, 1..=[`MAX_TOP_K`] (default [`DEFAULT_TOP_K`]).
    pub top_k: Option<i64>,
    /// Minimum cosine, -1..=1.
    pub threshold: Option<f64>,
    /// Metadata keys that must equal these values.
    pub filters: Option<Value>,
}

/// One result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Document id.
    pub id: String,
    /// Cosine similarity.
    pub score: f32,
    /// Metadata.
    pub metadata: Value,
    /// Text.
    pub text: Option<String>,
}

/// A document ready to store: checked, vector of the collection's dimension, norm > 0.
#[derive(Debug, Clone)]
pub struct Document {
    /// Id.
    pub id: String,
    /// Vector.
    pub vector: Vec<f32>,
    /// Euclidean norm.
    pub norm: f32,
    /// Metadata object, JSON text.
    pub metadata: String,
    /// Text.
    pub text: Option<String>,
}

/// A ranked query: a unit vector, how many, the minimum score and exact metadata filters.
#[derive(Debug, Clone)]
pub struct Search {
    /// The query vector divided by its norm.
    pub unit: Vec<f32>,
    /// Results wanted.
    pub top_k: usize,
    /// Minimum cosine.
    pub threshold: Option<f32>,
    /// Metadata keys that must be equal.
    pub filters: Map<String, Value>,
}

/// Where a project's vectors live.
#[async_trait]
pub trait VectorStore: Send + Sync {
    /// A collection's `(dimension, version)`, when the organization has it.
    async fn dimension(&self, org: Uuid, collection: &str) -> Result<Option<usize>, Failure>;
    /// Store `docs` (all or nothing), creating the collection with their dimension; a
    /// collection of another dimension refuses them.
    async fn upsert(
        &self,
        org: Uuid,
        collection: &str,
        docs: Vec<Document>,
    ) -> Result<u64, Failure>;
    /// The best `s.top_k` documents by cosine (404 when the collection does not exist).
    async fn search(&self, org: Uuid, collection: &str, s: Search) -> Result<Vec<Hit>, Failure>;
    /// Whether the store answers.
    async fn ping(&self) -> Result<(), Failure>;
}

/// Euclidean norm.
pub fn norm(v: &[f32]) -> f32 {
    dot(v, v).sqrt()
}

/// Dot product over [`LANES`] independent sums (no dependency between lanes: vectorizable).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ar.iter().zip(br) {
        s += x * y;
    }
    s
}

/// Whether `metadata` has every key of `filters` with an equal value.
fn matches(metadata: &Map<String, Value>, filters: &Map<String, Value>) -> bool {
    filters.iter().all(|(k, v)| metadata.get(k) == Some(v))
}

/// A scored row for the bounded heap (ordered by score, then position for a stable order).
#[derive(Clone, Copy)]
struct Scored(f32, usize);

impl PartialEq for Scored {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scored {
    /// Higher score is greater; on a tie the earlier row is greater.
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then(o.1.cmp(&self.1))
    }
}

/// A top-k heap: the k greatest seen, the least of them on top.
struct TopK {
    k: usize,
    heap: BinaryHeap<std::cmp::Reverse<Scored>>,
}

impl TopK {
    fn new(k: usize) -> TopK {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    fn push(&mut self, s: Scored) {
        if self.heap.len() < self.k {
            self.heap.push(std::cmp::Reverse(s));
        } else if let Some(min) = self.heap.peek()
            && s > min.0
        {
            self.heap.pop();
            self.heap.push(std::cmp::Reverse(s));
        }
    }

    fn sorted(self) -> Vec<Scored> {
        let mut v: Vec<Scored> = self.heap.into_iter().map(|r| r.0).collect();
        v.sort_by(|a, b| b.cmp(a));
        v
    }
}

/// A collection's vectors in memory: row `i` is `vectors[i*dim..(i+1)*dim]`.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The collection version these rows reflect.
    pub version: i64,
    /// Dimension.
    pub dim: usize,
    /// Document ids.
    pub ids: Vec<String>,
    /// Row of each id.
    pub row: HashMap<String, usize>,
    /// Vectors, row after row.
    pub vectors: Vec<f32>,
    /// 1 / norm of each row.
    pub inv_norms: Vec<f32>,
    /// Metadata of each row (for filters).
    pub metadata: Vec<Map<String, Value>>,
}

impl Loaded {
    fn new(dim: usize) -> Loaded {
        Loaded {
            dim,
            ..Loaded::default()
        }
    }

    /// Insert or replace one stored document (a row of another dimension is skipped: the
    /// dimension is fixed, so it cannot have been stored).
    fn put(&mut self, r: db::VectorRow) {
        if r.vector.len() != self.dim || r.norm <= 0.0 {
            return;
        }
        let meta = match serde_json::from_str::<Value>(&r.metadata) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let inv = 1.0 / r.norm;
        if let Some(&i) = self.row.get(&r.document_id) {
            self.vectors[i * self.dim..(i + 1) * self.dim].copy_from_slice(&r.vector);
            self.inv_norms[i] = inv;
            self.metadata[i] = meta;
        } else {
            self.row.insert(r.document_id.clone(), self.ids.len());
            self.ids.push(r.document_id);
            self.vectors.extend_from_slice(&r.vector);
            self.inv_norms.push(inv);
            self.metadata.push(meta);
        }
    }

    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.vectors.len() * 4
            + self.inv_norms.len() * 4
            + self.ids.iter().map(|s| 2 * s.len() + 64).sum::<usize>()
            + self.metadata.len() * 64
    }

    /// The best rows for `s`: (row, score), best first. Splits the rows across `threads`.
    pub fn rank(&self, s: &Search, threads: usize) -> Vec<(usize, f32)> {
        let n = self.ids.len();
        if n == 0 || s.unit.len() != self.dim || s.top_k == 0 {
            return Vec::new();
        }
        let threads = threads.clamp(1, 16).min(n.div_ceil(1024).max(1));
        let part = n.div_ceil(threads);
        let scan = |from: usize, to: usize| -> TopK {
            let mut top = TopK::new(s.top_k);
            for i in from..to {
                if !s.filters.is_empty() && !matches(&self.metadata[i], &s.filters) {
                    continue;
                }
                let row = &self.vectors[i * self.dim..(i + 1) * self.dim];
                let score = (dot(&s.unit, row) * self.inv_norms[i]).clamp(-1.0, 1.0);
                if s.threshold.is_some_and(|t| score < t) {
                    continue;
                }
                top.push(Scored(score, i));
            }
            top
        };
        let parts: Vec<TopK> = if threads == 1 {
            vec![scan(0, n)]
        } else {
            std::thread::scope(|sc| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let (from, to) = (t * part, ((t + 1) * part).min(n));
                        sc.spawn(move || scan(from, to))
                    })
                    .collect();
                handles.into_iter().filter_map(|h| h.join().ok()).collect()
            })
        };
        let mut all = TopK::new(s.top_k);
        for p in parts {
            for x in p.heap {
                all.push(x.0);
            }
        }
        all.sorted().into_iter().map(|x| (x.1, x.0)).collect()
    }
}

/// One collection's slot in the [`Index`]: loads serialize on `loading`.
#[derive(Default)]
struct Slot {
    loading: tokio::sync::Mutex<()>,
    data: parking_lot::RwLock<Option<Arc<parking_lot::RwLock<Loaded>>>>,
    last_used: std::sync::atomic::AtomicU64,
}

/// Collections' vectors in memory, up to a budget of bytes; the least recently used go first.
pub struct Index {
    /// Held only to find or insert a slot (no await inside).
    slots: parking_lot::Mutex<HashMap<Uuid, Arc<Slot>>>,
    budget: usize,
    clock: std::sync::atomic::AtomicU64,
}

impl Index {
    /// An index holding at most `budget` bytes of vectors.
    pub fn new(budget: usize) -> Index {
        Index {
            slots: parking_lot::Mutex::new(HashMap::new()),
            budget,
            clock: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn slot(&self, id: Uuid) -> Arc<Slot> {
        let tick = self
            .clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let s = self.slots.lock().entry(id).or_default().clone();
        s.last_used
            .store(tick, std::sync::atomic::Ordering::Relaxed);
        s
    }

    /// Drop the least recently used collections (never `keep`) until the rest fit.
    fn evict(&self, keep: Uuid) {
        let slots: Vec<(Uuid, Arc<Slot>)> = self
            .slots
            .lock()
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let size = |s: &Slot| s.data.read().as_ref().map_or(0, |d| d.read().bytes());
        let mut total: usize = slots.iter().map(|(_, s)| size(s)).sum();
        let mut order = slots;
        order.sort_by_key(|(_, s)| s.last_used.load(std::sync::atomic::Ordering::Relaxed));
        for (id, s) in order {
            if total <= self.budget {
                break;
            }
            if id != keep {
                total = total.saturating_sub(size(&s));
                *s.data.write() = None;
            }
        }
    }
}

/// The Postgres back end, with the in-memory [`Index`].
pub struct PgVectors {
    pool: PgPool,
    index: Index,
}

impl PgVectors {
    /// Vectors in `pool`, at most `cache_bytes` of them kept in memory.
    pub fn new(pool: PgPool, cache_bytes: usize) -> PgVectors {
        PgVectors {
            pool,
            index: Index::new(cache_bytes),
        }
    }

    /// The collection's rows as of `c.version`: from memory, refreshed with what changed.
    async fn rows(&self, c: &CollectionRow) -> Result<Arc<parking_lot::RwLock<Loaded>>, Failure> {
        let dim = c.dimension as usize;
        let slot = self.index.slot(c.vector_collection_id);
        if let Some(d) = slot.data.read().as_ref()
            && d.read().version >= c.version
        {
            return Ok(d.clone());
        }
        let _one_loader = slot.loading.lock().await;
        let current = slot.data.read().clone();
        let (data, from) = match current {
            Some(d) => {
                let v = d.read().version;
                if v >= c.version {
                    return Ok(d);
                }
                (d, v)
            }
            None => (Arc::new(parking_lot::RwLock::new(Loaded::new(dim))), 0),
        };
        // a first load fills a private copy; a refresh merges the few changed rows in place
        if from == 0 {
            let mut fresh = Loaded::new(dim);
            db::changed_since(&self.pool, c.vector_collection_id, 0, c.version, |r| {
                fresh.put(r)
            })
            .await?;
            fresh.version = c.version;
            *data.write() = fresh;
        } else {
            let mut changed = Vec::new();
            db::changed_since(&self.pool, c.vector_collection_id, from, c.version, |r| {
                changed.push(r)
            })
            .await?;
            let mut w = data.write();
            for r in changed {
                w.put(r);
            }
            w.version = c.version;
        }
        let fits = data.read().bytes() <= self.index.budget;
        if fits {
            *slot.data.write() = Some(data.clone());
            self.index.evict(c.vector_collection_id);
        } else {
            *slot.data.write() = None;
        }
        Ok(data)
    }
}

#[async_trait]
impl VectorStore for PgVectors {
    async fn dimension(&self, org: Uuid, collection: &str) -> Result<Option<usize>, Failure> {
        Ok(db::collection(&self.pool, org, collection)
            .await?
            .map(|c| c.dimension as usize))
    }

    async fn upsert(
        &self,
        org: Uuid,
        collection: &str,
        docs: Vec<Document>,
    ) -> Result<u64, Failure> {
        let Some(first) = docs.first() else {
            return Ok(0);
        };
        let dim = first.vector.len();
        let mut tx = self.pool.begin().await?;
        let c = db::lock_or_create(&mut tx, org, collection, dim as i32).await?;
        if c.dimension as usize != dim {
            return Err(Failure::problem(
                "DIMENSION_MISMATCH",
                format!(
                    "collection {collection:?} has dimension {}; the documents have {dim}",
                    c.dimension
                ),
            ));
        }
        let version = db::bump(&mut tx, c.vector_collection_id).await?;
        let mut cols = Columns::default();
        for d in docs {
            cols.ids.push(d.id);
            cols.norms.push(d.norm);
            cols.metadata.push(d.metadata);
            cols.texts.push(d.text);
            cols.vectors.extend_from_slice(&d.vector);
        }
        let n = db::upsert(
            &mut tx,
            c.vector_collection_id,
            version,
            DocumentColumns {
                ids: &cols.ids,
                norms: &cols.norms,
                metadata: &cols.metadata,
                texts: &cols.texts,
                vectors: &cols.vectors,
                dimension: dim as i32,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn search(&self, org: Uuid, collection: &str, s: Search) -> Result<Vec<Hit>, Failure> {
        let c = db::collection(&self.pool, org, collection)
            .await?
            .ok_or(DomainError::NotFound(Entity::Collection))?;
        if s.unit.len() != c.dimension as usize {
            return Err(Failure::problem(
                "DIMENSION_MISMATCH",
                format!(
                    "collection {collection:?} has dimension {}; the query vector has {}",
                    c.dimension,
                    s.unit.len()
                ),
            ));
        }
        let data = self.rows(&c).await?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let ranked = tokio::task::spawn_blocking(move || {
            let d = data.read();
            d.rank(&s, threads)
                .into_iter()
                .map(|(i, score)| (d.ids[i].clone(), score))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| DomainError::internal("vector ranking", e))?;
        if ranked.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = ranked.iter().map(|(id, _)| id.clone()).collect();
        let mut rows: HashMap<String, db::DocumentRow> =
            db::documents(&self.pool, c.vector_collection_id, &ids)
                .await?
                .into_iter()
                .map(|r| (r.document_id.clone(), r))
                .collect();
        Ok(ranked
            .into_iter()
            .filter_map(|(id, score)| {
                let r = rows.remove(&id)?;
                Some(Hit {
                    id,
                    score,
                    metadata: serde_json::from_str(&r.metadata).unwrap_or(Value::Null),
                    text: r.text,
                })
            })
            .collect())
    }

    async fn ping(&self) -> Result<(), Failure> {
        Ok(db::ping(&self.pool).await?)
    }
}

#[derive(Default)]
struct Columns {
    ids: Vec<String>,
    norms: Vec<f32>,
    metadata: Vec<String>,
    texts: Vec<Option<String>>,
    vectors: Vec<f32>,
}

/// A vector from JSON numbers: `f32`, finite (NaN and infinities cannot arrive as JSON, but
/// a number past `f32`'s range would become one).
fn floats(v: &[f64]) -> Option<Vec<f32>> {
    let out: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    out.iter().all(|x| x.is_finite()).then_some(out)
}

/// What embedding needs: the gateway with the caller's credential and the model.
#[derive(Clone, Copy)]
pub struct Embedder<'a> {
    /// The gateway.
    pub gateway: Gateway<'a>,
    /// Public embedding model name.
    pub model: &'a str,
}

/// A checked document before embedding: id, vector (if given), metadata JSON, text.
type Pending = (String, Option<Vec<f32>>, String, Option<String>);

/// Check every document (all problems at once), embed the ones without a vector through the
/// gateway, and store them all in one transaction. Returns how many were written and the
/// embedding calls' usage.
pub async fn upsert(
    store: &dyn VectorStore,
    embedder: Embedder<'_>,
    org: Uuid,
    collection: &str,
    docs: Vec<NewDocument>,
) -> Result<(u64, Usage), Failure> {
    let mut problems = Vec::new();
    if let Err(p) = check_name(collection) {
        problems.push(p);
    }
    if docs.is_empty() {
        problems.push(Problem::new(
            "NO_DOCUMENTS",
            "documents: at least one document",
        ));
    }
    if docs.len() > MAX_DOCUMENTS {
        problems.push(Problem::new(
            "TOO_MANY_DOCUMENTS",
            format!("documents: at most {MAX_DOCUMENTS} per request"),
        ));
        return Err(Failure::Problems(problems));
    }
    let existing = if problems.is_empty() {
        store.dimension(org, collection).await?
    } else {
        None
    };
    // the dimension: the collection's, else the first vector given
    let mut dim = existing.or_else(|| {
        docs.iter()
            .find_map(|d| d.vector.as_ref().map(Vec::len))
            .filter(|&n| (1..=MAX_DIMENSION).contains(&n))
    });
    let mut seen = HashSet::new();
    let mut checked: Vec<Pending> = Vec::with_capacity(docs.len());
    for (i, d) in docs.into_iter().enumerate() {
        let at = format!("documents[{i}]");
        let before = problems.len();
        if d.id.is_empty() || d.id.chars().count() > MAX_ID || d.id.chars().any(char::is_control) {
            problems.push(Problem::new(
                "INVALID_ID",
                format!("{at}.id: 1 to {MAX_ID} characters, no control characters"),
            ));
        } else if !seen.insert(d.id.clone()) {
            problems.push(Problem::new(
                "DUPLICATE_ID",
                format!("{at}.id: {:?} appears twice in this request", d.id),
            ));
        }
        let vector = match &d.vector {
            None => None,
            Some(v) if v.is_empty() || v.len() > MAX_DIMENSION => {
                problems.push(Problem::new(
                    "INVALID_VECTOR",
                    format!("{at}.vector: 1 to {MAX_DIMENSION} numbers"),
                ));
                None
            }
            Some(v) => match floats(v) {
                None => {
                    problems.push(Problem::new(
                        "INVALID_VECTOR",
                        format!("{at}.vector: every element a finite 32-bit float"),
                    ));
                    None
                }
                Some(f) => {
                    if let Some(want) = dim
                        && f.len() != want
                    {
                        problems.push(Problem::new(
                            "DIMENSION_MISMATCH",
                            format!(
                                "{at}.vector: {} dimensions; the collection has {want}",
                                f.len()
                            ),
                        ));
                    } else if norm(&f) == 0.0 || !norm(&f).is_finite() {
                        problems.push(Problem::new(
                            "INVALID_VECTOR",
                            format!(
                                "{at}.vector: a zero vector has no direction (cosine undefined)"
                            ),
                        ));
                    }
                    Some(f)
                }
            },
        };
        let metadata = match &d.metadata {
            None | Some(Value::Null) => "{}".to_string(),
            Some(m @ Value::Object(_)) => {
                let text = m.to_string();
                if text.len() > MAX_METADATA {
                    problems.push(Problem::new(
                        "INVALID_METADATA",
                        format!("{at}.metadata: at most {MAX_METADATA} bytes of JSON"),
                    ));
                }
                text
            }
            Some(_) => {
                problems.push(Problem::new(
                    "INVALID_METADATA",
                    format!("{at}.metadata: must be a JSON object"),
                ));
                String::new()
            }
        };
        if let Some(t) = &d.text
            && t.chars().count() > MAX_TEXT
        {
            problems.push(Problem::new(
                "INVALID_TEXT",
                format!("{at}.text: at most {MAX_TEXT} characters"),
            ));
        }
        if d.vector.is_none() && d.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
            problems.push(Problem::new(
                "MISSING_VECTOR",
                format!("{at}: needs a vector, or a text to embed"),
            ));
        }
        if problems.len() == before {
            checked.push((d.id, vector, metadata, d.text));
        }
    }
    if !problems.is_empty() {
        return Err(Failure::Problems(problems));
    }
    // embed the texts of documents without a vector, in one go
    let need: Vec<usize> = (0..checked.len())
        .filter(|&i| checked[i].1.is_none())
        .collect();
    let mut usage = Usage::default();
    if !need.is_empty() {
        let texts: Vec<String> = need
            .iter()
            .map(|&i| checked[i].3.clone().unwrap_or_default())
            .collect();
        let (vectors, u) = embedder.gateway.embed(embedder.model, &texts, dim).await?;
        usage = u;
        for (&i, v) in need.iter().zip(vectors) {
            let want = *dim.get_or_insert(v.len());
            if v.len() != want || v.len() > MAX_DIMENSION {
                problems.push(Problem::new(
                    "DIMENSION_MISMATCH",
                    format!(
                        "documents[{i}]: the embedding model {:?} returned {} dimensions; the collection has {want}",
                        embedder.model,
                        v.len()
                    ),
                ));
            } else if !(norm(&v) > 0.0 && v.iter().all(|x| x.is_finite())) {
                problems.push(Problem::new(
                    "INVALID_VECTOR",
                    format!("documents[{i}]: the embedding is zero or not finite"),
                ));
            }
            checked[i].1 = Some(v);
        }
        if !problems.is_empty() {
            return Err(Failure::Problems(problems));
        }
    }
    let docs: Vec<Document> = checked
        .into_iter()
        .map(|(id, v, metadata, text)| {
            let vector = v.unwrap_or_default();
            Document {
                id,
                norm: norm(&vector),
                vector,
                metadata,
                text,
            }
        })
        .collect();
    let n = store.upsert(org, collection, docs).await?;
    Ok((n, usage))
}

/// Check a query (all problems at once; malformed input before any lookup), embed its text
/// through the gateway when no vector is given, and rank the collection.
pub async fn query(
    store: &dyn VectorStore,
    embedder: Embedder<'_>,
    org: Uuid,
    collection: &str,
    q: QueryInput,
) -> Result<(Vec<Hit>, Usage), Failure> {
    let mut problems = Vec::new();
    if let Err(p) = check_name(collection) {
        problems.push(p);
    }
    let top_k = match q.top_k {
        None => DEFAULT_TOP_K,
        Some(k) if (1..=MAX_TOP_K as i64).contains(&k) => k as usize,
        Some(_) => {
            problems.push(Problem::new(
                "INVALID_TOP_K",
                format!("top_k: 1 to {MAX_TOP_K}"),
            ));
            0
        }
    };
    let threshold = match q.threshold {
        None => None,
        Some(t) if (-1.0..=1.0).contains(&t) => Some(t as f32),
        Some(_) => {
            problems.push(Problem::new(
                "INVALID_THRESHOLD",
                "threshold: a cosine between -1 and 1",
            ));
            None
        }
    };
    let filters = match q.filters {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            problems.push(Problem::new(
                "INVALID_FILTERS",
                "filters: an object of metadata keys and the values they must equal",
            ));
            Map::new()
        }
    };
    let text = q.query_text.filter(|t| !t.trim().is_empty());
    match (&text, &q.vector) {
        (Some(_), Some(_)) => problems.push(Problem::new(
            "AMBIGUOUS_QUERY",
            "give query_text or vector, not both",
        )),
        (None, None) => problems.push(Problem::new(
            "MISSING_QUERY",
            "query_text (or vector) is required",
        )),
        (Some(t), None) if t.chars().count() > MAX_TEXT => problems.push(Problem::new(
            "INVALID_TEXT",
            format!("query_text: at most {MAX_TEXT} characters"),
        )),
        _ => {}
    }
    let given = match &q.vector {
        Some(v) if v.is_empty() || v.len() > MAX_DIMENSION => {
            problems.push(Problem::new(
                "INVALID_VECTOR",
                format!("vector: 1 to {MAX_DIMENSION} numbers"),
            ));
            None
        }
        Some(v) => match floats(v) {
            Some(f) if norm(&f) > 0.0 && norm(&f).is_finite() => Some(f),
            _ => {
                problems.push(Problem::new(
                    "INVALID_VECTOR",
                    "vector: finite 32-bit floats, not all zero",
                ));
                None
            }
        },
        None => None,
    };
    if !problems.is_empty() {
        return Err(Failure::Problems(problems));
    }
    let dim = store
        .dimension(org, collection)
        .await?
        .ok_or(DomainError::NotFound(Entity::Collection))?;
    let mut usage = Usage::default();
    let vector = match (given, text) {
        (Some(v), _) => v,
        (None, Some(t)) => {
            let (mut v, u) = embedder
                .gateway
                .embed(embedder.model, std::slice::from_ref(&t), Some(dim))
                .await?;
            usage = u;
            let v = v.pop().unwrap_or_default();
            let n = norm(&v);
            if v.len() != dim || n.is_nan() || n <= 0.0 {
                return Err(Failure::problem(
                    "DIMENSION_MISMATCH",
                    format!(
                        "the embedding model {:?} returned {} dimensions; the collection has {dim}",
                        embedder.model,
                        v.len()
                    ),
                ));
            }
            v
        }
        (None, None) => return Err(Failure::problem("MISSING_QUERY", "query_text is required")),
    };
    let n = norm(&vector);
    let unit: Vec<f32> = vector.iter().map(|x| x / n).collect();
    let hits = store
        .search(
            org,
            collection,
            Search {
                unit,
                top_k,
                threshold,
                filters,
            },
        )
        .await?;
    Ok((hits, usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(rows: &[(&str, Vec<f32>, Value)]) -> Loaded {
        let mut l = Loaded::new(rows[0].1.len());
        for (id, v, m) in rows {
            l.put(db::VectorRow {
                document_id: id.to_string(),
                norm: norm(v),
                vector: v.clone(),
                metadata: m.to_string(),
            });
        }
        l
    }

    fn search(q: &[f32], k: usize) -> Search {
        let n = norm(q);
        Search {
            unit: q.iter().map(|x| x / n).collect(),
            top_k: k,
            threshold: None,
            filters: Map::new(),
        }
    }

    #[test]
    fn dot_matches_the_plain_sum_at_every_length() {
        for len in [1, 7, 16, 17, 33, 1536] {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-3, "len {len}");
        }
    }

    #[test]
    fn ranks_by_cosine_with_threshold_filters_and_replacement() {
        let mut l = loaded(&[
            ("a", vec![1.0, 0.0], serde_json::json!({"c": "x"})),
            ("b", vec![1.0, 1.0], serde_json::json!({"c": "y"})),
            ("c", vec![0.0, 3.0], serde_json::json!({"c": "x"})),
        ]);
        let r = l.rank(&search(&[1.0, 0.1], 3), 1);
        let order: Vec<&str> = r.iter().map(|(i, _)| l.ids[*i].as_str()).collect();
        assert_eq!(order, ["a", "b", "c"]);
        let mut s = search(&[1.0, 0.1], 3);
        s.threshold = Some(0.5);
        assert_eq!(l.rank(&s, 2).len(), 2);
        s.filters = serde_json::json!({"c": "x"}).as_object().unwrap().clone();
        let r = l.rank(&s, 2);
        assert_eq!(r.len(), 1);
        assert_eq!(l.ids[r[0].0], "a");
        // replacing a row changes its score; top_k bounds the answer
        l.put(db::VectorRow {
            document_id: "c".into(),
            vector: vec![5.0, 0.0],
            norm: 5.0,
            metadata: "{}".into(),
        });
        let r = l.rank(&search(&[1.0, 0.0], 1), 2);
        assert_eq!(r.len(), 1);
        assert!((r[0].1 - 1.0).abs() < 1e-6);
        assert_eq!(l.ids.len(), 3);
    }

    #[test]
    fn parallel_ranking_equals_serial() {
        let rows: Vec<(String, Vec<f32>, Value)> = (0..5000)
            .map(|i| {
                (
                    format!("d{i}"),
                    (0..24).map(|k| ((i * 31 + k * 7) as f32).sin()).collect(),
                    serde_json::json!({}),
                )
            })
            .collect();
        let refs: Vec<(&str, Vec<f32>, Value)> = rows
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.clone(), c.clone()))
            .collect();
        let l = loaded(&refs);
        let q: Vec<f32> = (0..24).map(|k| (k as f32).cos()).collect();
        assert_eq!(l.rank(&search(&q, 10), 1), l.rank(&search(&q, 10), 4));
    }

    #[test]
    fn names() {
        assert!(check_name("claims_v2.pt-br").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name(&"a".repeat(129)).is_err());
    }
}
