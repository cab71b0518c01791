//! bradax's graphs: `POST /api/v1/graphs/deploy` (scope `deploy_graph`; a student project:
//! 403) and `POST /api/v1/graphs/{graph_id}/execute` (scope `execute_graph`; the id or the
//! name). Parse → `domain::graphs` → render. Where the contract is silent (also in the
//! README):
//!
//! - deploy answers `{graph_id, version, success, timestamp}`; a definition with problems is
//!   a 400 listing every one in `details` (with line and column where known), nothing stored;
//! - execute answers `{execution_id, graph_id, version, status, outputs, usage, timestamp}`;
//!   with `stream: true` it sends server-sent events: one per node
//!   `{"node", "status", "output"?, "error"?, "finished": false}`, then
//!   `{"finished": true, "execution_id", "status", "outputs", "usage"}` (or `"error"` when a
//!   node failed).

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::vectors::{body, failure};
use super::wire::{BxError, Caller, Scope, now};
use crate::admin::AdminState;
use crate::domain::graphs::{self, NodeEvent, Runner, public_id, usage_json, version};
use crate::domain::inference::Gateway;

type Answer = Result<Response, BxError>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployReq {
    name: String,
    definition: String,
    format: Option<String>,
}

/// `POST /api/v1/graphs/deploy`.
pub async fn deploy(State(s): State<AdminState>, caller: Caller, req: Request) -> Answer {
    caller.require(Scope::DeployGraph)?;
    let r: DeployReq = body(req, &s).await?;
    caller.admit(&s).await?;
    let d = graphs::deploy(
        &s.pool,
        caller.org_id,
        &r.name,
        &r.definition,
        r.format.as_deref(),
    )
    .await
    .map_err(failure)?;
    Ok(Json(json!({
        "graph_id": public_id(d.graph_id),
        "version": version(d.revision),
        "success": true,
        "changed": d.changed,
        "timestamp": now(),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteReq {
    #[serde(default)]
    inputs: Option<Map<String, Value>>,
    #[serde(default)]
    stream: bool,
}

fn event(v: &Value) -> Result<Event, Infallible> {
    Ok(Event::default().data(v.to_string()))
}

fn node_event(e: &NodeEvent) -> Value {
    let mut v = json!({"node": e.node, "status": e.status, "finished": false});
    if let Some(o) = v.as_object_mut() {
        if let Some(out) = &e.output {
            o.insert("output".into(), out.clone());
        }
        if let Some(err) = &e.error {
            o.insert("error".into(), json!(err));
        }
    }
    v
}

/// `POST /api/v1/graphs/{graph_id}/execute`.
pub async fn execute(
    State(s): State<AdminState>,
    caller: Caller,
    Path(key): Path<String>,
    req: Request,
) -> Answer {
    caller.require(Scope::ExecuteGraph)?;
    let r: ExecuteReq = body(req, &s).await?;
    let inputs = r.inputs.unwrap_or_default();
    let g = graphs::find(&s.pool, caller.org_id, &key)
        .await
        .map_err(failure)?;
    if g.definition
        .nodes
        .iter()
        .all(|n| n.kind == graphs::Kind::Template)
    {
        // no node reaches the gateway, which counts each model call itself
        caller.admit(&s).await?;
    }
    let (default_model, embedding_model) = s.config.with(|c| {
        (
            c.graphs.default_model.clone(),
            c.vectors.embedding_model.clone(),
        )
    });
    let runner = Runner {
        pool: &s.pool,
        vectors: s.vectors.as_ref(),
        gateway: Gateway {
            http: &s.http,
            base: s.gateway_url.as_deref(),
            token: &caller.token,
        },
        org: caller.org_id,
        key_id: Some(caller.key_id),
        default_model: &default_model,
        embedding_model: &embedding_model,
    };
    let execution_id = graphs::start(&runner, &g, &inputs).await.map_err(failure)?;
    let head = json!({
        "execution_id": execution_id,
        "graph_id": public_id(g.graph_id),
        "version": version(g.revision),
    });
    if !r.stream {
        let done = graphs::run(&runner, &g, execution_id, &inputs, &mut |_| {})
            .await
            .map_err(|f| {
                failure(f).detail("EXECUTION", format!("execution {execution_id} failed"))
            })?;
        let mut out = head;
        if let Some(o) = out.as_object_mut() {
            o.insert("status".into(), json!("completed"));
            o.insert("outputs".into(), Value::Object(done.outputs));
            o.insert("usage".into(), usage_json(&done.usage));
            o.insert("timestamp".into(), json!(now()));
        }
        return Ok(Json(out).into_response());
    }
    // stream: the run goes on in its own task and sends each node's end as it happens
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let state = s.clone();
    tokio::spawn(async move {
        let runner = Runner {
            pool: &state.pool,
            vectors: state.vectors.as_ref(),
            gateway: Gateway {
                http: &state.http,
                base: state.gateway_url.as_deref(),
                token: &caller.token,
            },
            org: caller.org_id,
            key_id: Some(caller.key_id),
            default_model: &default_model,
            embedding_model: &embedding_model,
        };
        let nodes = tx.clone();
        let result = graphs::run(&runner, &g, execution_id, &inputs, &mut |e| {
            let _ = nodes.send(node_event(&e));
        })
        .await;
        let mut last = head;
        if let Some(o) = last.as_object_mut() {
            o.insert("finished".into(), json!(true));
            match result {
                Ok(done) => {
                    o.insert("status".into(), json!("completed"));
                    o.insert("outputs".into(), Value::Object(done.outputs));
                    o.insert("usage".into(), usage_json(&done.usage));
                }
                Err(f) => {
                    o.insert("status".into(), json!("failed"));
                    o.insert("error".into(), json!(graphs::describe(&f)));
                }
            }
            o.insert("timestamp".into(), json!(now()));
        }
        let _ = tx.send(last);
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|v| (event(&v), rx))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// The graph routes.
pub fn routes() -> crate::admin::openapi::Api<AdminState> {
    use axum::routing::post;
    crate::admin::openapi::Api::new("bradax")
        .route(
            "POST",
            "/api/v1/graphs/deploy",
            "Deploy a named graph (YAML or JSON; every problem reported; a changed definition bumps the version)",
            true,
            post(deploy),
        )
        .route(
            "POST",
            "/api/v1/graphs/{graph_id}/execute",
            "Run a graph by id or name (stream: true sends one event per node, then the outputs)",
            true,
            post(execute),
        )
}
