//! PyTake's flows (issue 15 item 7): a named graph of nodes (any `type`, stored as given)
//! and edges that must name existing nodes. Caps: [`MAX_NODES`] nodes, [`MAX_EDGES`] edges,
//! node and edge ids unique, each node's `data` a JSON object of at most [`MAX_DATA`] bytes.
//! Nodes and edges are kept as jsonb. Status is `draft` (the default), `active` or
//! `archived`. Every rule that needs no stored row is checked before the database is asked.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::contacts::page;
use super::error::{DomainError, Entity};
use super::pytake::{Actor, authorize};
use super::roles::Action;
use crate::store::flows::{self as db, FlowFields};

/// Most nodes in a flow.
pub const MAX_NODES: usize = 500;
/// Most edges in a flow.
pub const MAX_EDGES: usize = 2000;
/// Largest `data` of one node, bytes of JSON.
pub const MAX_DATA: usize = 16 * 1024;
/// Longest id, type or handle, characters.
pub const MAX_ID: usize = 100;
/// Longest name, characters.
pub const MAX_NAME: usize = 200;
/// Longest description, characters.
pub const MAX_DESCRIPTION: usize = 2000;
/// Largest |x| or |y| of a node position.
pub const MAX_COORD: f64 = 1e9;

/// Where a node is drawn.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// X (a JSON number, written back as it was given: `0` stays `0`).
    pub x: serde_json::Number,
    /// Y.
    pub y: serde_json::Number,
}

/// A node: any `type`; `data` is a JSON object kept as given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowNode {
    /// Id, unique in the flow.
    pub id: String,
    /// Type (free).
    #[serde(rename = "type")]
    pub kind: String,
    /// Position.
    pub position: Position,
    /// Data: a JSON object.
    pub data: Box<RawValue>,
}

/// An edge between two nodes of the flow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowEdge {
    /// Id, unique among the edges.
    pub id: String,
    /// Source node id.
    pub source: String,
    /// Target node id.
    pub target: String,
    /// Handle on the source.
    #[serde(
        rename = "sourceHandle",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_handle: Option<String>,
    /// Handle on the target.
    #[serde(
        rename = "targetHandle",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub target_handle: Option<String>,
}

/// A flow's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Being edited (default).
    Draft,
    /// Running.
    Active,
    /// Retired.
    Archived,
}

impl Status {
    /// Parse `draft|active|archived`.
    pub fn parse(s: &str) -> Result<Status, DomainError> {
        match s {
            "draft" => Ok(Status::Draft),
            "active" => Ok(Status::Active),
            "archived" => Ok(Status::Archived),
            _ => Err(DomainError::invalid(
                "status",
                "must be draft, active or archived",
            )),
        }
    }

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Active => "active",
            Status::Archived => "archived",
        }
    }
}

/// A flow.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Status.
    pub status: Status,
    /// Nodes.
    pub nodes: Vec<FlowNode>,
    /// Edges.
    pub edges: Vec<FlowEdge>,
    /// Owner.
    pub organization_id: Uuid,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

impl TryFrom<db::FlowRow> for Flow {
    type Error = DomainError;

    fn try_from(r: db::FlowRow) -> Result<Self, DomainError> {
        let bad = |e: serde_json::Error| DomainError::internal("stored flow graph", e);
        Ok(Flow {
            id: r.flow_id,
            name: r.name,
            description: r.description,
            status: Status::parse(&r.status)?,
            nodes: serde_json::from_str(&r.nodes).map_err(bad)?,
            edges: serde_json::from_str(&r.edges).map_err(bad)?,
            organization_id: r.organization_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// What a create or update asks for (`None`: keep, or the default on create).
#[derive(Debug, Default)]
pub struct Changes {
    /// Name.
    pub name: Option<String>,
    /// Description (`Some("")` clears it).
    pub description: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Nodes.
    pub nodes: Option<Vec<FlowNode>>,
    /// Edges.
    pub edges: Option<Vec<FlowEdge>>,
}

fn name(raw: &str) -> Result<String, DomainError> {
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > MAX_NAME || n.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "name",
            "1 to 200 characters, no control characters",
        ));
    }
    Ok(n.to_string())
}

fn description(raw: &str) -> Result<Option<String>, DomainError> {
    let d = raw.trim();
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(DomainError::invalid("description", "up to 2000 characters"));
    }
    Ok((!d.is_empty()).then(|| d.to_string()))
}

/// An id, type or handle: 1 to [`MAX_ID`] characters, no control characters.
fn token(field: &'static str, s: &str) -> Result<(), DomainError> {
    if s.is_empty() || s.chars().count() > MAX_ID || s.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "1 to 100 characters, no control characters",
        ));
    }
    Ok(())
}

/// The nodes alone: caps, unique ids, finite bounded positions, `data` an object.
pub fn check_nodes(nodes: &[FlowNode]) -> Result<(), DomainError> {
    if nodes.len() > MAX_NODES {
        return Err(DomainError::invalid("nodes", "at most 500 nodes"));
    }
    let mut ids = HashSet::new();
    for n in nodes {
        token("nodes.id", &n.id)?;
        token("nodes.type", &n.kind)?;
        if !ids.insert(n.id.as_str()) {
            return Err(DomainError::invalid(
                "nodes.id",
                format!("duplicate node id {:?}", n.id),
            ));
        }
        let p = &n.position;
        let ok = |c: &serde_json::Number| {
            c.as_f64()
                .is_some_and(|v| v.is_finite() && v.abs() <= MAX_COORD)
        };
        if !(ok(&p.x) && ok(&p.y)) {
            return Err(DomainError::invalid(
                "nodes.position",
                "x and y must be numbers between -1e9 and 1e9",
            ));
        }
        let raw = n.data.get();
        if raw.len() > MAX_DATA {
            return Err(DomainError::invalid("nodes.data", "at most 16384 bytes"));
        }
        // an object nested at most 128 levels whose every number fits a double (parsed
        // again here: the body's parse keeps `data` as raw text)
        match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(v) if v.is_object() => {}
            Ok(_) => return Err(DomainError::invalid("nodes.data", "must be a JSON object")),
            Err(e) => {
                return Err(DomainError::invalid(
                    "nodes.data",
                    format!(
                        "unacceptable JSON ({e}): nested at most 128 levels, numbers within double range"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The edges alone: caps, unique ids, well-formed fields.
pub fn check_edges(edges: &[FlowEdge]) -> Result<(), DomainError> {
    if edges.len() > MAX_EDGES {
        return Err(DomainError::invalid("edges", "at most 2000 edges"));
    }
    let mut ids = HashSet::new();
    for e in edges {
        token("edges.id", &e.id)?;
        token("edges.source", &e.source)?;
        token("edges.target", &e.target)?;
        if let Some(h) = &e.source_handle {
            token("edges.sourceHandle", h)?;
        }
        if let Some(h) = &e.target_handle {
            token("edges.targetHandle", h)?;
        }
        if !ids.insert(e.id.as_str()) {
            return Err(DomainError::invalid(
                "edges.id",
                format!("duplicate edge id {:?}", e.id),
            ));
        }
    }
    Ok(())
}

/// Every edge names existing nodes.
pub fn check_graph(nodes: &[FlowNode], edges: &[FlowEdge]) -> Result<(), DomainError> {
    let ids: HashSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    for e in edges {
        for end in [&e.source, &e.target] {
            if !ids.contains(end.as_str()) {
                return Err(DomainError::invalid(
                    "edges",
                    format!("edge {:?} names node {:?}, which does not exist", e.id, end),
                ));
            }
        }
    }
    Ok(())
}

/// What the request alone says, checked.
struct Checked {
    name: Option<String>,
    description: Option<Option<String>>,
    status: Option<Status>,
}

fn check(c: &Changes) -> Result<Checked, DomainError> {
    let checked = Checked {
        name: c.name.as_deref().map(name).transpose()?,
        description: c.description.as_deref().map(description).transpose()?,
        status: c.status.as_deref().map(Status::parse).transpose()?,
    };
    if let Some(n) = &c.nodes {
        check_nodes(n)?;
    }
    if let Some(e) = &c.edges {
        check_edges(e)?;
    }
    Ok(checked)
}

fn json<T: Serialize>(v: &T) -> Result<String, DomainError> {
    serde_json::to_string(v).map_err(|e| DomainError::internal("flow graph", e))
}

/// Create a flow in the actor's organization (`name` required; status defaults to draft).
pub async fn create(pool: &PgPool, actor: &Actor, c: Changes) -> Result<Flow, DomainError> {
    authorize(actor, Action::ManageContent)?;
    let k = check(&c)?;
    let name = k
        .name
        .ok_or_else(|| DomainError::invalid("name", "required"))?;
    let nodes = c.nodes.unwrap_or_default();
    let edges = c.edges.unwrap_or_default();
    check_graph(&nodes, &edges)?;
    let description = k.description.flatten();
    let mut tx = pool.begin().await?;
    let row = db::insert(
        &mut *tx,
        actor.organization_id,
        actor.user_id,
        FlowFields {
            name: &name,
            description: description.as_deref(),
            status: k.status.unwrap_or(Status::Draft).as_str(),
            nodes: &json(&nodes)?,
            edges: &json(&edges)?,
        },
    )
    .await?;
    let f: Flow = row.try_into()?;
    super::audit::change(
        &mut *tx,
        actor.organization_id,
        Some(actor.user_id),
        "flow.create",
        &target(f.id),
        None,
        Some(audit(&f)),
    )
    .await?;
    tx.commit().await?;
    Ok(f)
}

fn target(id: Uuid) -> String {
    format!("flow:{id}")
}

/// What the audit log keeps of a flow: its fields and the size of its graph (the graph itself
/// can be large; the flow row holds it).
fn audit(f: &Flow) -> serde_json::Value {
    serde_json::json!({
        "name": f.name,
        "description": f.description,
        "status": f.status.as_str(),
        "nodes": f.nodes.len(),
        "edges": f.edges.len(),
    })
}

/// A page of the actor's organization's flows, newest first.
pub async fn list(
    pool: &PgPool,
    actor: &Actor,
    limit: Option<i64>,
    offset: Option<i64>,
) -> Result<Vec<Flow>, DomainError> {
    authorize(actor, Action::Read)?;
    let (limit, offset) = page(limit, offset)?;
    db::list(pool, actor.organization_id, limit, offset)
        .await?
        .into_iter()
        .map(Flow::try_from)
        .collect()
}

/// One flow of the actor's organization (another organization's id: not found).
pub async fn get(pool: &PgPool, actor: &Actor, id: Uuid) -> Result<Flow, DomainError> {
    authorize(actor, Action::Read)?;
    db::get(pool, actor.organization_id, id, false)
        .await?
        .ok_or(DomainError::NotFound(Entity::Flow))?
        .try_into()
}

/// Change a flow: fields not given are kept; the resulting graph must hold (edges kept
/// from before must name nodes that remain).
pub async fn update(
    pool: &PgPool,
    actor: &Actor,
    id: Uuid,
    c: Changes,
) -> Result<Flow, DomainError> {
    authorize(actor, Action::ManageContent)?;
    let k = check(&c)?;
    let mut tx = pool.begin().await?;
    let cur: Flow = db::get(&mut *tx, actor.organization_id, id, true)
        .await?
        .ok_or(DomainError::NotFound(Entity::Flow))?
        .try_into()?;
    let before = audit(&cur);
    let nodes = c.nodes.unwrap_or(cur.nodes);
    let edges = c.edges.unwrap_or(cur.edges);
    check_graph(&nodes, &edges)?;
    let name = k.name.unwrap_or(cur.name);
    let description = k.description.unwrap_or(cur.description);
    let row = db::update(
        &mut *tx,
        actor.organization_id,
        id,
        FlowFields {
            name: &name,
            description: description.as_deref(),
            status: k.status.unwrap_or(cur.status).as_str(),
            nodes: &json(&nodes)?,
            edges: &json(&edges)?,
        },
    )
    .await?
    .ok_or(DomainError::NotFound(Entity::Flow))?;
    let f: Flow = row.try_into()?;
    super::audit::change(
        &mut *tx,
        actor.organization_id,
        Some(actor.user_id),
        "flow.update",
        &target(id),
        Some(before),
        Some(audit(&f)),
    )
    .await?;
    tx.commit().await?;
    Ok(f)
}

/// Delete a flow of the actor's organization.
pub async fn delete(pool: &PgPool, actor: &Actor, id: Uuid) -> Result<(), DomainError> {
    authorize(actor, Action::ManageContent)?;
    let mut tx = pool.begin().await?;
    let cur: Flow = db::get(&mut *tx, actor.organization_id, id, true)
        .await?
        .ok_or(DomainError::NotFound(Entity::Flow))?
        .try_into()?;
    if !db::delete(&mut *tx, actor.organization_id, id).await? {
        return Err(DomainError::NotFound(Entity::Flow));
    }
    super::audit::change(
        &mut *tx,
        actor.organization_id,
        Some(actor.user_id),
        "flow.delete",
        &target(id),
        Some(audit(&cur)),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str) -> FlowNode {
        serde_json::from_str(&format!(
            r#"{{"id":"{id}","type":"anything","position":{{"x":1,"y":2}},"data":{{}}}}"#
        ))
        .unwrap()
    }

    fn edge(id: &str, s: &str, t: &str) -> FlowEdge {
        serde_json::from_str(&format!(r#"{{"id":"{id}","source":"{s}","target":"{t}"}}"#)).unwrap()
    }

    #[test]
    fn graph_rules() {
        let nodes = vec![node("a"), node("b")];
        assert!(check_nodes(&nodes).is_ok());
        assert!(check_graph(&nodes, &[edge("e", "a", "b")]).is_ok());
        assert!(check_graph(&nodes, &[edge("e", "a", "zz")]).is_err());
        assert!(check_nodes(&[node("a"), node("a")]).is_err());
        assert!(check_edges(&[edge("e", "a", "b"), edge("e", "b", "a")]).is_err());
        let many: Vec<_> = (0..=MAX_NODES).map(|i| node(&i.to_string())).collect();
        assert!(check_nodes(&many).is_err());
        let mut bad = node("x");
        bad.data = RawValue::from_string("[1]".into()).unwrap();
        assert!(check_nodes(&[bad]).is_err());
        assert!(Status::parse("running").is_err());
    }
}
