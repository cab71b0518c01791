//! bradax's vectors: `POST /api/v1/vectors/{collection}/upsert` (scope `write_vector`) and
//! `POST /api/v1/vectors/{collection}/query` (scope `read_vector`). Parse →
//! `domain::vectors` → render. Where the contract is silent (also in the README):
//!
//! - upsert answers `{upserted, timestamp}`; it is all or nothing: any bad document is a 400
//!   listing every problem in `details`, and nothing is stored. Documents without `vector`
//!   are embedded through the gateway with the caller's token (metered as the caller's).
//! - query takes `query_text` or `vector`; `top_k` 1–100 (default 5); `threshold` is the
//!   minimum cosine; `filters` match metadata keys exactly. Malformed input is a 400 before
//!   an unknown collection is a 404.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{BxError, Caller, Scope, now};
use crate::admin::AdminState;
use crate::domain::inference::{Failure, Gateway, Problem};
use crate::domain::vectors::{self, Embedder, NewDocument, QueryInput};

type Answer = Result<Response, BxError>;

/// A failure in bradax's shape: every problem in `details` (400), a gateway refusal with
/// its status, or the domain error's mapping.
pub fn failure(f: Failure) -> BxError {
    match f {
        Failure::Domain(e) => e.into(),
        Failure::Problems(ps) => BxError {
            status: StatusCode::BAD_REQUEST,
            error: "validation_error",
            message: format!(
                "the request is invalid ({} problem{})",
                ps.len(),
                if ps.len() == 1 { "" } else { "s" }
            ),
            details: ps
                .into_iter()
                .map(|p| (p.code.to_string(), p.message))
                .collect(),
            headers: Vec::new(),
        },
        Failure::Refused { status, message } => {
            let s = StatusCode::from_u16(status)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::BAD_GATEWAY);
            let error = match s.as_u16() {
                429 => "rate_limit_exceeded",
                401 => "authentication_failed",
                402 => "payment_required",
                403 => "forbidden",
                400 | 404 | 422 => "validation_error",
                _ => "upstream_error",
            };
            BxError::new(
                s,
                error,
                format!("the gateway refused the model call: {message}"),
                "GATEWAY_REFUSED",
                message,
            )
        }
    }
}

/// The JSON body, read after the scope check (so a token without the scope is a 403 whatever
/// it sends).
pub async fn body<T: serde::de::DeserializeOwned>(
    req: Request,
    s: &AdminState,
) -> Result<T, BxError> {
    crate::surfaces::kit::json(req, s)
        .await
        .map_err(|e| BxError::invalid(e.0))
}

/// The caller's gateway and the embedding model now configured.
fn embedder<'a>(s: &'a AdminState, caller: &'a Caller, model: &'a str) -> Embedder<'a> {
    Embedder {
        gateway: Gateway {
            http: &s.http,
            base: s.gateway_url.as_deref(),
            token: &caller.token,
        },
        model,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpsertReq {
    documents: Vec<Value>,
}

/// One document's JSON types (rules are the domain's); every type problem is collected.
fn document(i: usize, v: Value, problems: &mut Vec<Problem>) -> Option<NewDocument> {
    let at = format!("documents[{i}]");
    let Value::Object(mut o) = v else {
        problems.push(Problem::new(
            "INVALID_DOCUMENT",
            format!("{at}: must be an object"),
        ));
        return None;
    };
    let before = problems.len();
    for k in o.keys() {
        if !matches!(k.as_str(), "id" | "vector" | "metadata" | "text") {
            problems.push(Problem::new(
                "UNKNOWN_FIELD",
                format!("{at}.{k}: unknown field (id, vector, metadata, text)"),
            ));
        }
    }
    let id = match o.remove("id") {
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            problems.push(Problem::new(
                "INVALID_ID",
                format!("{at}.id: required, a string"),
            ));
            String::new()
        }
    };
    let vector = match o.remove("vector") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => {
            let nums: Vec<f64> = a.iter().filter_map(Value::as_f64).collect();
            if nums.len() != a.len() {
                problems.push(Problem::new(
                    "INVALID_VECTOR",
                    format!("{at}.vector: an array of numbers"),
                ));
            }
            Some(nums)
        }
        Some(_) => {
            problems.push(Problem::new(
                "INVALID_VECTOR",
                format!("{at}.vector: an array of numbers"),
            ));
            None
        }
    };
    let text = match o.remove("text") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            problems.push(Problem::new("INVALID_TEXT", format!("{at}.text: a string")));
            None
        }
    };
    let metadata = o.remove("metadata");
    (problems.len() == before).then_some(NewDocument {
        id,
        vector,
        metadata,
        text,
    })
}

/// `POST /api/v1/vectors/{collection}/upsert`.
pub async fn upsert(
    State(s): State<AdminState>,
    caller: Caller,
    Path(collection): Path<String>,
    req: Request,
) -> Answer {
    caller.require(Scope::WriteVector)?;
    let r: UpsertReq = body(req, &s).await?;
    if r.documents.len() > vectors::MAX_DOCUMENTS {
        return Err(failure(Failure::problem(
            "TOO_MANY_DOCUMENTS",
            format!("documents: at most {} per request", vectors::MAX_DOCUMENTS),
        )));
    }
    let mut problems = Vec::new();
    let docs: Vec<NewDocument> = r
        .documents
        .into_iter()
        .enumerate()
        .filter_map(|(i, d)| document(i, d, &mut problems))
        .collect();
    if !problems.is_empty() {
        return Err(failure(Failure::Problems(problems)));
    }
    if docs.iter().all(|d| d.vector.is_some()) {
        // nothing to embed: the gateway will not count this call
        caller.admit(&s).await?;
    }
    let model = s.config.with(|c| c.vectors.embedding_model.clone());
    let (n, _usage) = vectors::upsert(
        s.vectors.as_ref(),
        embedder(&s, &caller, &model),
        caller.org_id,
        &collection,
        docs,
    )
    .await
    .map_err(failure)?;
    Ok(Json(json!({"upserted": n, "timestamp": now()})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryReq {
    query_text: Option<String>,
    vector: Option<Vec<f64>>,
    top_k: Option<i64>,
    threshold: Option<f64>,
    filters: Option<Value>,
}

/// `POST /api/v1/vectors/{collection}/query`.
pub async fn query(
    State(s): State<AdminState>,
    caller: Caller,
    Path(collection): Path<String>,
    req: Request,
) -> Answer {
    caller.require(Scope::ReadVector)?;
    let r: QueryReq = body(req, &s).await?;
    if r.query_text.is_none() {
        // a given vector: the gateway will not count this call
        caller.admit(&s).await?;
    }
    let model = s.config.with(|c| c.vectors.embedding_model.clone());
    let (hits, _usage) = vectors::query(
        s.vectors.as_ref(),
        embedder(&s, &caller, &model),
        caller.org_id,
        &collection,
        QueryInput {
            query_text: r.query_text,
            vector: r.vector,
            top_k: r.top_k,
            threshold: r.threshold,
            filters: r.filters,
        },
    )
    .await
    .map_err(failure)?;
    let results: Vec<Value> = hits
        .into_iter()
        .map(|h| json!({"id": h.id, "score": h.score, "metadata": h.metadata, "text": h.text}))
        .collect();
    Ok(Json(json!({"results": results, "timestamp": now()})).into_response())
}

/// The vector routes.
pub fn routes() -> crate::admin::openapi::Api<AdminState> {
    use axum::routing::post;
    crate::admin::openapi::Api::new("bradax")
        .route(
            "POST",
            "/api/v1/vectors/{collection}/upsert",
            "Store documents (all or nothing; creates the collection; text without a vector is embedded through the gateway, metered)",
            true,
            post(upsert),
        )
        .route(
            "POST",
            "/api/v1/vectors/{collection}/query",
            "Exact cosine top-k over the collection (query_text embedded through the gateway; threshold = minimum cosine; filters match metadata exactly)",
            true,
            post(query),
        )
}
