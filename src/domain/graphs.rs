//! Graphs (issue 15 item 12): a named DAG of nodes, deployed as YAML or JSON and run on
//! demand.
//!
//! A definition is `{nodes: [{id, type, ...}]}` (other top-level keys, such as `name`, are
//! ignored). Node types and their fields:
//!
//! - `template`: `template` (text with references) → the rendered text;
//! - `llm`: `prompt` (and optional `system`), `model` (default configurable), `temperature`,
//!   `max_tokens` → the completion's text (a metered `/v1/chat/completions` call through the
//!   gateway with the caller's credential);
//! - `embed`: `text`, `model` (default the embedding model), `dimensions` → the vector (a
//!   metered `/v1/embeddings` call);
//! - `vector_query`: `collection`, and `text` (embedded) or `vector: "{{node.output}}"` (an
//!   `embed` node's vector), `top_k`, `threshold`, `filters` → `[{id, score, metadata, text}]`.
//!
//! `prompt`, `system`, `template` and `text` reference `{{inputs.NAME}}` and `{{NODE.output}}`
//! (a string inserted as is, anything else as compact JSON); `depends_on: [NODE…]` orders
//! nodes without a reference. A deploy reports every problem at once (parse errors, duplicate
//! ids, unknown types, missing fields, bad or dangling references, cycles), with line and
//! column where the parser gives them, and stores nothing then. The graph id is stable per
//! (project, name); a deploy that changes the parsed definition bumps the version
//! (`1.0.0` → `1.1.0` → …), the same definition again keeps it.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use serde_saphyr::{Location, Spanned};
use sqlx::PgPool;
use uuid::Uuid;

use super::error::{DomainError, Entity};
use super::inference::{Chat, Failure, Gateway, Problem, Usage};
use super::vectors::{self, Embedder, QueryInput, VectorStore};
use crate::store::graphs as db;

/// Most nodes in a graph.
pub const MAX_NODES: usize = 100;
/// Largest definition text, bytes.
pub const MAX_SOURCE: usize = 256 * 1024;

/// A definition's text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

impl Format {
    /// Parse `yaml|json`.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
        }
    }
}

/// A node's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A chat completion.
    Llm,
    /// An embedding.
    Embed,
    /// A vector collection query.
    VectorQuery,
    /// Text substitution.
    Template,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        match s {
            "llm" => Some(Kind::Llm),
            "embed" => Some(Kind::Embed),
            "vector_query" => Some(Kind::VectorQuery),
            "template" => Some(Kind::Template),
            _ => None,
        }
    }
}

/// A checked node, as stored and run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Id.
    pub id: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// `llm`: the user message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// `llm`: the system message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// `template`: the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// `embed` / `vector_query`: the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `llm` / `embed`: the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `vector_query`: the collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// `vector_query`: the `embed` node whose vector is the query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_from: Option<String>,
    /// `vector_query`: results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i64>,
    /// `vector_query`: minimum cosine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// `vector_query`: metadata filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Map<String, Value>>,
    /// `llm`: temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// `llm`: most completion tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// `embed`: the vector's length asked of the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// Nodes that run before this one (references and `depends_on`), sorted.
    #[serde(default)]
    pub after: Vec<String>,
}

/// A checked graph: nodes in the order they run, and the inputs they read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    /// Nodes, dependencies first.
    pub nodes: Vec<Node>,
    /// Input names referenced (each required at execution), sorted.
    pub inputs: Vec<String>,
}

// ---- parsing ------------------------------------------------------------------------------

#[derive(Deserialize)]
struct RawGraph {
    #[serde(default)]
    nodes: Option<Vec<Spanned<RawNode>>>,
}

#[derive(Deserialize)]
struct RawNode {
    #[serde(default)]
    id: Option<Spanned<String>>,
    #[serde(default, rename = "type")]
    kind: Option<Spanned<String>>,
    #[serde(default)]
    prompt: Option<Spanned<String>>,
    #[serde(default)]
    system: Option<Spanned<String>>,
    #[serde(default)]
    template: Option<Spanned<String>>,
    #[serde(default)]
    text: Option<Spanned<String>>,
    #[serde(default)]
    model: Option<Spanned<String>>,
    #[serde(default)]
    collection: Option<Spanned<String>>,
    #[serde(default)]
    vector: Option<Spanned<String>>,
    #[serde(default)]
    top_k: Option<Spanned<i64>>,
    #[serde(default)]
    threshold: Option<Spanned<f64>>,
    #[serde(default)]
    filters: Option<Spanned<Map<String, Value>>>,
    #[serde(default)]
    temperature: Option<Spanned<f64>>,
    #[serde(default)]
    max_tokens: Option<Spanned<u32>>,
    #[serde(default)]
    dimensions: Option<Spanned<u32>>,
    #[serde(default)]
    depends_on: Option<Vec<Spanned<String>>>,
}

/// `line L, column C: ` when the location is known.
fn at(l: &Location) -> String {
    if l.line() == 0 {
        String::new()
    } else {
        format!("line {}, column {}: ", l.line(), l.column())
    }
}

/// The first line of a parser's message, without its own position prefix.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s).trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((pos, rest)) if pos.contains("column") => rest.to_string(),
        _ => line.to_string(),
    }
}

fn parse_raw(source: &str, format: Format) -> Result<RawGraph, Problem> {
    let yaml_err = |e: serde_saphyr::Error| {
        let pos = e.location().map(|l| at(&l)).unwrap_or_default();
        Problem::new(
            "PARSE_ERROR",
            format!("{pos}{}", first_line(&e.to_string())),
        )
    };
    match format {
        Format::Yaml => serde_saphyr::from_str(source).map_err(yaml_err),
        Format::Json => {
            // JSON's own parser judges the syntax (and gives its position); the YAML parser
            // (JSON is YAML) then reads it again for the positions of later problems
            let json_err = |e: serde_json::Error| {
                Problem::new(
                    "PARSE_ERROR",
                    format!("line {}, column {}: {e}", e.line(), e.column()),
                )
            };
            serde_json::from_str::<serde::de::IgnoredAny>(source).map_err(json_err)?;
            match serde_saphyr::from_str::<RawGraph>(source) {
                Ok(g) => Ok(g),
                Err(_) => serde_json::from_str(source).map_err(json_err),
            }
        }
    }
}

/// A reference inside text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ref {
    Input(String),
    Node(String),
}

fn ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A text's references, and what is wrong with the ones that are not (an unclosed `{{`
/// ends the scan).
fn references(text: &str) -> (Vec<(Ref, std::ops::Range<usize>)>, Vec<String>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    let mut i = 0;
    while let Some(off) = text[i..].find("{{") {
        let start = i + off;
        let Some(len) = text[start + 2..].find("}}") else {
            bad.push("a '{{' is never closed with '}}'".into());
            break;
        };
        let inner = text[start + 2..start + 2 + len].trim();
        let end = start + 2 + len + 2;
        match inner.split_once('.') {
            Some(("inputs", name)) if ident(name) => {
                out.push((Ref::Input(name.to_string()), start..end))
            }
            Some((node, "output")) if ident(node) => {
                out.push((Ref::Node(node.to_string()), start..end))
            }
            _ => bad.push(format!(
                "{{{{{inner}}}}} is not a reference: use {{{{inputs.NAME}}}} or {{{{NODE.output}}}}"
            )),
        }
        i = end;
    }
    (out, bad)
}

/// Check a definition: every problem, or the graph in running order.
pub fn parse(source: &str, format: Format) -> Result<Definition, Vec<Problem>> {
    if source.len() > MAX_SOURCE {
        return Err(vec![Problem::new(
            "DEFINITION_TOO_LARGE",
            format!("definition: at most {MAX_SOURCE} bytes"),
        )]);
    }
    let raw = parse_raw(source, format).map_err(|p| vec![p])?;
    let mut problems = Vec::new();
    let raw_nodes = raw.nodes.unwrap_or_default();
    if raw_nodes.is_empty() {
        problems.push(Problem::new("NO_NODES", "nodes: at least one node"));
    }
    if raw_nodes.len() > MAX_NODES {
        problems.push(Problem::new(
            "TOO_MANY_NODES",
            format!("nodes: at most {MAX_NODES}"),
        ));
        return Err(problems);
    }
    // ids first, so references can be told dangling or not
    let mut ids: HashMap<String, Kind> = HashMap::new();
    let mut seen = HashSet::new();
    for (i, n) in raw_nodes.iter().enumerate() {
        let loc = at(&n.referenced);
        match &n.value.id {
            None => problems.push(Problem::new(
                "MISSING_FIELD",
                format!("{loc}nodes[{i}].id: required"),
            )),
            Some(id) if !ident(&id.value) || id.value == "inputs" => problems.push(Problem::new(
                "INVALID_NODE_ID",
                format!(
                    "{}nodes[{i}].id: 1 to 64 of A-Z, a-z, 0-9, '_', '-' (and not \"inputs\")",
                    at(&id.referenced)
                ),
            )),
            Some(id) if !seen.insert(id.value.clone()) => problems.push(Problem::new(
                "DUPLICATE_NODE_ID",
                format!(
                    "{}nodes[{i}].id: {:?} is used by another node",
                    at(&id.referenced),
                    id.value
                ),
            )),
            Some(_) => {}
        }
        let kind = match &n.value.kind {
            None => {
                problems.push(Problem::new(
                    "MISSING_FIELD",
                    format!(
                        "{loc}nodes[{i}].type: required (llm, embed, vector_query or template)"
                    ),
                ));
                None
            }
            Some(k) => match Kind::parse(&k.value) {
                Some(kind) => Some(kind),
                None => {
                    problems.push(Problem::new(
                        "UNKNOWN_NODE_TYPE",
                        format!(
                            "{}nodes[{i}].type: {:?} is not llm, embed, vector_query or template",
                            at(&k.referenced),
                            k.value
                        ),
                    ));
                    None
                }
            },
        };
        if let (Some(id), Some(kind)) = (&n.value.id, kind) {
            ids.entry(id.value.clone()).or_insert(kind);
        }
    }
    let mut nodes = Vec::with_capacity(raw_nodes.len());
    let mut inputs = HashSet::new();
    for (i, n) in raw_nodes.iter().enumerate() {
        let loc = at(&n.referenced);
        let r = &n.value;
        let (Some(id), Some(kind)) = (
            r.id.as_ref().map(|s| s.value.clone()),
            r.kind.as_ref().and_then(|k| Kind::parse(&k.value)),
        ) else {
            continue;
        };
        let mut after = HashSet::new();
        let require = |field: &str, v: &Option<Spanned<String>>, problems: &mut Vec<Problem>| {
            if v.as_ref().is_none_or(|s| s.value.trim().is_empty()) {
                problems.push(Problem::new(
                    "MISSING_FIELD",
                    format!(
                        "{loc}nodes[{i}].{field}: required for a node of type {}",
                        kind_name(kind)
                    ),
                ));
            }
        };
        match kind {
            Kind::Llm => require("prompt", &r.prompt, &mut problems),
            Kind::Template => require("template", &r.template, &mut problems),
            Kind::Embed => require("text", &r.text, &mut problems),
            Kind::VectorQuery => {
                require("collection", &r.collection, &mut problems);
                if r.text.is_some() == r.vector.is_some() {
                    problems.push(Problem::new(
                        "MISSING_FIELD",
                        format!(
                            "{loc}nodes[{i}]: a vector_query needs text or vector (one of them)"
                        ),
                    ));
                }
            }
        }
        if let Some(c) = &r.collection
            && let Err(p) = vectors::check_name(&c.value)
        {
            problems.push(Problem::new(
                p.code,
                format!("{}nodes[{i}].{}", at(&c.referenced), p.message),
            ));
        }
        // references in the text fields
        for (field, v) in [
            ("prompt", &r.prompt),
            ("system", &r.system),
            ("template", &r.template),
            ("text", &r.text),
        ] {
            let Some(s) = v else { continue };
            let (refs, bad) = references(&s.value);
            for m in bad {
                problems.push(Problem::new(
                    "BAD_REFERENCE",
                    format!("{}nodes[{i}].{field}: {m}", at(&s.referenced)),
                ));
            }
            for (rf, _) in refs {
                match rf {
                    Ref::Input(name) => {
                        inputs.insert(name);
                    }
                    Ref::Node(other) if other == id => problems.push(Problem::new(
                        "CYCLE",
                        format!(
                            "{}nodes[{i}].{field}: node {id:?} reads its own output",
                            at(&s.referenced)
                        ),
                    )),
                    Ref::Node(other) if !ids.contains_key(&other) => problems.push(Problem::new(
                        "DANGLING_REFERENCE",
                        format!(
                            "{}nodes[{i}].{field}: {{{{{other}.output}}}} names no node",
                            at(&s.referenced)
                        ),
                    )),
                    Ref::Node(other) => {
                        after.insert(other);
                    }
                }
            }
        }
        let mut vector_from = None;
        if let Some(v) = &r.vector {
            match references(&v.value) {
                (refs, bad)
                    if bad.is_empty()
                        && refs.len() == 1
                        && refs[0].1 == (0..v.value.len())
                        && matches!(&refs[0].0, Ref::Node(_)) =>
                {
                    if let Ref::Node(other) = &refs[0].0 {
                        match ids.get(other) {
                            Some(Kind::Embed) if *other != id => {
                                after.insert(other.clone());
                                vector_from = Some(other.clone());
                            }
                            Some(_) => problems.push(Problem::new(
                                "INVALID_FIELD",
                                format!("{}nodes[{i}].vector: {other:?} is not an embed node", at(&v.referenced)),
                            )),
                            None => problems.push(Problem::new(
                                "DANGLING_REFERENCE",
                                format!("{}nodes[{i}].vector: {{{{{other}.output}}}} names no node", at(&v.referenced)),
                            )),
                        }
                    }
                }
                _ => problems.push(Problem::new(
                    "INVALID_FIELD",
                    format!(
                        "{}nodes[{i}].vector: exactly one reference to an embed node, \"{{{{NODE.output}}}}\"",
                        at(&v.referenced)
                    ),
                )),
            }
        }
        for d in r.depends_on.iter().flatten() {
            if d.value == id {
                problems.push(Problem::new(
                    "CYCLE",
                    format!(
                        "{}nodes[{i}].depends_on: node {id:?} depends on itself",
                        at(&d.referenced)
                    ),
                ));
            } else if ids.contains_key(&d.value) {
                after.insert(d.value.clone());
            } else {
                problems.push(Problem::new(
                    "DANGLING_REFERENCE",
                    format!(
                        "{}nodes[{i}].depends_on: {:?} names no node",
                        at(&d.referenced),
                        d.value
                    ),
                ));
            }
        }
        if let Some(k) = &r.top_k
            && !(1..=vectors::MAX_TOP_K as i64).contains(&k.value)
        {
            problems.push(Problem::new(
                "INVALID_FIELD",
                format!(
                    "{}nodes[{i}].top_k: 1 to {}",
                    at(&k.referenced),
                    vectors::MAX_TOP_K
                ),
            ));
        }
        if let Some(t) = &r.threshold
            && !(-1.0..=1.0).contains(&t.value)
        {
            problems.push(Problem::new(
                "INVALID_FIELD",
                format!("{}nodes[{i}].threshold: -1 to 1", at(&t.referenced)),
            ));
        }
        if let Some(t) = &r.temperature
            && !(0.0..=2.0).contains(&t.value)
        {
            problems.push(Problem::new(
                "INVALID_FIELD",
                format!("{}nodes[{i}].temperature: 0 to 2", at(&t.referenced)),
            ));
        }
        if let Some(d) = &r.dimensions
            && !(1..=vectors::MAX_DIMENSION as u32).contains(&d.value)
        {
            problems.push(Problem::new(
                "INVALID_FIELD",
                format!(
                    "{}nodes[{i}].dimensions: 1 to {}",
                    at(&d.referenced),
                    vectors::MAX_DIMENSION
                ),
            ));
        }
        let mut after: Vec<String> = after.into_iter().collect();
        after.sort();
        let v = |s: &Option<Spanned<String>>| s.as_ref().map(|x| x.value.clone());
        nodes.push(Node {
            id,
            kind,
            prompt: v(&r.prompt),
            system: v(&r.system),
            template: v(&r.template),
            text: v(&r.text),
            model: v(&r.model).filter(|m| !m.trim().is_empty()),
            collection: v(&r.collection),
            vector_from,
            top_k: r.top_k.as_ref().map(|x| x.value),
            threshold: r.threshold.as_ref().map(|x| x.value),
            filters: r.filters.as_ref().map(|x| x.value.clone()),
            temperature: r.temperature.as_ref().map(|x| x.value),
            max_tokens: r.max_tokens.as_ref().map(|x| x.value),
            dimensions: r.dimensions.as_ref().map(|x| x.value),
            after,
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // a topological order that keeps file order where it can: each step takes the first
    // node (in the file) whose dependencies have run; when none can, the rest sit on a cycle
    let mut done: HashSet<String> = HashSet::new();
    let mut ordered = Vec::with_capacity(nodes.len());
    let mut left = nodes;
    while !left.is_empty() {
        let Some(k) = left
            .iter()
            .position(|n| n.after.iter().all(|a| done.contains(a)))
        else {
            let names: Vec<&str> = left.iter().map(|n| n.id.as_str()).collect();
            return Err(vec![Problem::new(
                "CYCLE",
                format!("nodes {} depend on each other in a cycle", names.join(", ")),
            )]);
        };
        let n = left.remove(k);
        done.insert(n.id.clone());
        ordered.push(n);
    }
    let mut inputs: Vec<String> = inputs.into_iter().collect();
    inputs.sort();
    Ok(Definition {
        nodes: ordered,
        inputs,
    })
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Llm => "llm",
        Kind::Embed => "embed",
        Kind::VectorQuery => "vector_query",
        Kind::Template => "template",
    }
}

// ---- deploy -------------------------------------------------------------------------------

/// `graph_<32 hex>`: a graph's public id.
pub fn public_id(id: Uuid) -> String {
    format!("graph_{}", id.simple())
}

/// The version text of a revision.
pub fn version(revision: i32) -> String {
    format!("1.{revision}.0")
}

/// What a deploy did.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// Graph id.
    pub graph_id: Uuid,
    /// Revision now (version `1.<revision>.0`).
    pub revision: i32,
    /// Whether this deploy changed the definition (or created the graph).
    pub changed: bool,
}

/// Deploy `source` as graph `name` of `org`: every problem at once, or the graph stored
/// (created, or a new version when the definition changed).
pub async fn deploy(
    pool: &PgPool,
    org: Uuid,
    name: &str,
    source: &str,
    format: Option<&str>,
) -> Result<Deployed, Failure> {
    let mut problems = Vec::new();
    if let Err(p) = vectors::check_name(name) {
        problems.push(Problem::new(
            "INVALID_NAME",
            p.message.replacen("collection", "name", 1),
        ));
    }
    let format = match format.map(Format::parse) {
        None => Some(Format::Yaml),
        Some(Some(f)) => Some(f),
        Some(None) => {
            problems.push(Problem::new("INVALID_FORMAT", "format: yaml or json"));
            None
        }
    };
    let def = match format {
        Some(f) => match parse(source, f) {
            Ok(d) => Some(d),
            Err(ps) => {
                problems.extend(ps);
                None
            }
        },
        None => None,
    };
    let (Some(def), Some(format), true) = (def, format, problems.is_empty()) else {
        return Err(Failure::Problems(problems));
    };
    let json = serde_json::to_string(&def).map_err(|e| DomainError::internal("graph", e))?;
    let mut tx = pool.begin().await?;
    if let Some(id) = db::create(&mut tx, org, name, format.as_str(), source, &json).await? {
        tx.commit().await?;
        return Ok(Deployed {
            graph_id: id,
            revision: 0,
            changed: true,
        });
    }
    let cur = db::lock(&mut tx, org, name)
        .await?
        .ok_or(DomainError::NotFound(Entity::Graph))?;
    let same = serde_json::from_str::<Definition>(&cur.definition).is_ok_and(|d| d == def);
    if same {
        return Ok(Deployed {
            graph_id: cur.graph_id,
            revision: cur.revision,
            changed: false,
        });
    }
    let revision = db::revise(&mut tx, cur.graph_id, format.as_str(), source, &json).await?;
    tx.commit().await?;
    Ok(Deployed {
        graph_id: cur.graph_id,
        revision,
        changed: true,
    })
}

// ---- execute ------------------------------------------------------------------------------

/// A graph found by id or name.
#[derive(Debug, Clone)]
pub struct Graph {
    /// Id.
    pub graph_id: Uuid,
    /// Revision.
    pub revision: i32,
    /// Definition.
    pub definition: Definition,
}

/// The organization's graph `key`: its public id (`graph_<hex>`) or its name.
pub async fn find(pool: &PgPool, org: Uuid, key: &str) -> Result<Graph, Failure> {
    let by_id = key
        .strip_prefix("graph_")
        .and_then(|h| Uuid::try_parse(h).ok());
    let mut row = None;
    if let Some(id) = by_id {
        row = db::by_id(pool, org, id).await?;
    }
    if row.is_none() && vectors::check_name(key).is_ok() {
        row = db::by_name(pool, org, key).await?;
    }
    let row = row.ok_or(DomainError::NotFound(Entity::Graph))?;
    Ok(Graph {
        graph_id: row.graph_id,
        revision: row.revision,
        definition: serde_json::from_str(&row.definition)
            .map_err(|e| DomainError::internal("stored graph", e))?,
    })
}

/// One node's end, as a stream reports it.
#[derive(Debug, Clone)]
pub struct NodeEvent {
    /// Node id.
    pub node: String,
    /// `completed` or `failed`.
    pub status: &'static str,
    /// The output (completed).
    pub output: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
}

/// What a run needs besides the graph.
#[derive(Clone, Copy)]
pub struct Runner<'a> {
    /// Database.
    pub pool: &'a PgPool,
    /// The vector store.
    pub vectors: &'a dyn VectorStore,
    /// The gateway with the caller's credential.
    pub gateway: Gateway<'a>,
    /// The organization.
    pub org: Uuid,
    /// The caller's key (recorded).
    pub key_id: Option<Uuid>,
    /// Model of `llm` nodes without one.
    pub default_model: &'a str,
    /// Model of `embed` nodes (and vector queries by text) without one.
    pub embedding_model: &'a str,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Execution {
    /// Id.
    pub execution_id: Uuid,
    /// Outputs by node id (running order).
    pub outputs: Map<String, Value>,
    /// Tokens of the metered calls.
    pub usage: Usage,
}

/// The input names `def` reads that `inputs` lacks, as problems.
pub fn missing_inputs(def: &Definition, inputs: &Map<String, Value>) -> Vec<Problem> {
    def.inputs
        .iter()
        .filter(|n| inputs.get(*n).is_none_or(Value::is_null))
        .map(|n| {
            Problem::new(
                "MISSING_INPUT",
                format!("inputs.{n}: required by the graph"),
            )
        })
        .collect()
}

fn render(text: &str, inputs: &Map<String, Value>, outputs: &Map<String, Value>) -> String {
    let (refs, _) = references(text);
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (r, span) in refs {
        out.push_str(&text[last..span.start]);
        let v = match &r {
            Ref::Input(n) => inputs.get(n),
            Ref::Node(n) => outputs.get(n),
        };
        match v {
            Some(Value::String(s)) => out.push_str(s),
            Some(v) => out.push_str(&v.to_string()),
            None => {}
        }
        last = span.end;
    }
    out.push_str(&text[last..]);
    out
}

/// Start a run: inputs checked (every missing one), the execution recorded as running.
pub async fn start(
    r: &Runner<'_>,
    g: &Graph,
    inputs: &Map<String, Value>,
) -> Result<Uuid, Failure> {
    let missing = missing_inputs(&g.definition, inputs);
    if !missing.is_empty() {
        return Err(Failure::Problems(missing));
    }
    let text = Value::Object(inputs.clone()).to_string();
    Ok(db::start_execution(r.pool, g.graph_id, r.org, r.key_id, g.revision, &text).await?)
}

/// Run every node in order, telling `on_node` as each ends; the execution row is finished
/// (completed or failed) either way.
pub async fn run(
    r: &Runner<'_>,
    g: &Graph,
    execution_id: Uuid,
    inputs: &Map<String, Value>,
    on_node: &mut (dyn FnMut(NodeEvent) + Send),
) -> Result<Execution, Failure> {
    let mut outputs = Map::new();
    let mut usage = Usage::default();
    for n in &g.definition.nodes {
        match node(r, n, inputs, &outputs).await {
            Ok((out, u)) => {
                usage.add(u);
                on_node(NodeEvent {
                    node: n.id.clone(),
                    status: "completed",
                    output: Some(out.clone()),
                    error: None,
                });
                outputs.insert(n.id.clone(), out);
            }
            Err(f) => {
                let why = describe(&f);
                on_node(NodeEvent {
                    node: n.id.clone(),
                    status: "failed",
                    output: None,
                    error: Some(why.clone()),
                });
                let partial = Value::Object(outputs).to_string();
                db::finish_execution(
                    r.pool,
                    execution_id,
                    "failed",
                    &partial,
                    &usage_json(&usage).to_string(),
                    Some(&format!("node {}: {why}", n.id)),
                )
                .await?;
                return Err(f);
            }
        }
    }
    db::finish_execution(
        r.pool,
        execution_id,
        "completed",
        &Value::Object(outputs.clone()).to_string(),
        &usage_json(&usage).to_string(),
        None,
    )
    .await?;
    Ok(Execution {
        execution_id,
        outputs,
        usage,
    })
}

/// A failure as one line.
pub fn describe(f: &Failure) -> String {
    match f {
        Failure::Domain(e) => e.to_string(),
        Failure::Problems(ps) => ps
            .iter()
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        Failure::Refused { status, message } => format!("the gateway answered {status}: {message}"),
    }
}

/// Usage as bradax's `usage` object.
pub fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "calls": u.calls,
    })
}

async fn node(
    r: &Runner<'_>,
    n: &Node,
    inputs: &Map<String, Value>,
    outputs: &Map<String, Value>,
) -> Result<(Value, Usage), Failure> {
    let text = |s: &Option<String>| render(s.as_deref().unwrap_or_default(), inputs, outputs);
    match n.kind {
        Kind::Template => Ok((Value::String(text(&n.template)), Usage::default())),
        Kind::Llm => {
            let prompt = text(&n.prompt);
            let system = n.system.as_ref().map(|_| text(&n.system));
            let (out, u) = r
                .gateway
                .chat(&Chat {
                    model: n.model.as_deref().unwrap_or(r.default_model),
                    system: system.as_deref(),
                    prompt: &prompt,
                    temperature: n.temperature,
                    max_tokens: n.max_tokens,
                })
                .await?;
            Ok((Value::String(out), u))
        }
        Kind::Embed => {
            let t = text(&n.text);
            let (mut v, u) = r
                .gateway
                .embed(
                    n.model.as_deref().unwrap_or(r.embedding_model),
                    std::slice::from_ref(&t),
                    n.dimensions.map(|d| d as usize),
                )
                .await?;
            Ok((json!(v.pop().unwrap_or_default()), u))
        }
        Kind::VectorQuery => {
            let vector = n.vector_from.as_ref().map(|from| {
                outputs
                    .get(from)
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_f64).collect::<Vec<f64>>())
                    .unwrap_or_default()
            });
            let (hits, u) = vectors::query(
                r.vectors,
                Embedder {
                    gateway: r.gateway,
                    model: r.embedding_model,
                },
                r.org,
                n.collection.as_deref().unwrap_or_default(),
                QueryInput {
                    query_text: vector.is_none().then(|| text(&n.text)),
                    vector,
                    top_k: n.top_k,
                    threshold: n.threshold,
                    filters: n.filters.clone().map(Value::Object),
                },
            )
            .await?;
            let list: Vec<Value> = hits
                .into_iter()
                .map(|h| json!({"id": h.id, "score": h.score, "metadata": h.metadata, "text": h.text}))
                .collect();
            Ok((Value::Array(list), u))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(r: Result<Definition, Vec<Problem>>) -> Vec<&'static str> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.code)
            .collect()
    }

    #[test]
    fn a_good_graph_runs_dependencies_first() {
        let d = parse(
            "name: x\nnodes:\n  - id: b\n    type: template\n    template: \"{{a.output}}!\"\n  - id: a\n    type: template\n    template: \"hi {{inputs.who}}\"\n",
            Format::Yaml,
        )
        .unwrap();
        let order: Vec<&str> = d.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(order, ["a", "b"]);
        assert_eq!(d.inputs, ["who"]);
        let inputs = json!({"who": "ana"}).as_object().unwrap().clone();
        let mut outs = Map::new();
        outs.insert("a".into(), json!("hi ana"));
        assert_eq!(render("{{a.output}}!", &inputs, &outs), "hi ana!");
        assert_eq!(render("{{ inputs.who }}", &inputs, &outs), "ana");
    }

    #[test]
    fn every_problem_with_its_position() {
        let src = "nodes:\n  - id: a\n    type: llm\n  - id: a\n    type: magic\n  - id: c\n    type: template\n    template: \"{{ghost.output}} {{oops}}\"\n";
        let p = parse(src, Format::Yaml).unwrap_err();
        let c: Vec<&str> = p.iter().map(|p| p.code).collect();
        assert!(c.contains(&"DUPLICATE_NODE_ID"), "{p:?}");
        assert!(c.contains(&"UNKNOWN_NODE_TYPE"), "{p:?}");
        assert!(c.contains(&"MISSING_FIELD"), "{p:?}");
        assert!(c.contains(&"BAD_REFERENCE"), "{p:?}");
        let dup = p.iter().find(|p| p.code == "DUPLICATE_NODE_ID").unwrap();
        assert!(dup.message.starts_with("line 4, column"), "{dup:?}");
        let ty = p.iter().find(|p| p.code == "UNKNOWN_NODE_TYPE").unwrap();
        assert!(ty.message.starts_with("line 5, column"), "{ty:?}");
        let src = "nodes:\n  - id: c\n    type: template\n    template: \"{{ghost.output}}\"\n";
        assert_eq!(codes(parse(src, Format::Yaml)), ["DANGLING_REFERENCE"]);
    }

    #[test]
    fn cycles_and_parse_errors() {
        let src = r#"{"nodes": [
            {"id": "a", "type": "template", "template": "{{b.output}}"},
            {"id": "b", "type": "template", "template": "{{a.output}}"}]}"#;
        assert_eq!(codes(parse(src, Format::Json)), ["CYCLE"]);
        let p = parse("{\"nodes\": [\n  {\"id\": }\n]}", Format::Json).unwrap_err();
        assert_eq!(p[0].code, "PARSE_ERROR");
        assert!(p[0].message.starts_with("line 2, column"), "{p:?}");
        let p = parse("nodes:\n  - id: a\n   type: x\n", Format::Yaml).unwrap_err();
        assert_eq!(p[0].code, "PARSE_ERROR");
        assert!(p[0].message.starts_with("line "), "{p:?}");
        // JSON read through the YAML parser still gives positions
        let p = parse(
            "{\"nodes\": [\n {\"id\": \"a\", \"type\": \"nope\"}]}",
            Format::Json,
        )
        .unwrap_err();
        assert!(p[0].message.starts_with("line 2"), "{p:?}");
    }

    #[test]
    fn vector_reads_an_embed_node() {
        let ok = "nodes:\n  - {id: e, type: embed, text: \"{{inputs.q}}\"}\n  - {id: v, type: vector_query, collection: c, vector: \"{{e.output}}\"}\n";
        let d = parse(ok, Format::Yaml).unwrap();
        assert_eq!(d.nodes[1].vector_from.as_deref(), Some("e"));
        let bad = "nodes:\n  - {id: t, type: template, template: x}\n  - {id: v, type: vector_query, collection: c, vector: \"{{t.output}}\"}\n";
        assert_eq!(codes(parse(bad, Format::Yaml)), ["INVALID_FIELD"]);
    }
}
