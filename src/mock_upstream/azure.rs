//! The mock's Azure OpenAI dialect: `POST /openai/deployments/{deployment}/chat/completions`
//! and `…/embeddings`, `?api-version=` required, the `api-key` header required (Azure's 401
//! body without it). The answers are the OpenAI mock's (Azure's bodies are OpenAI's), with the
//! same knobs; the deployment seen is recorded in the last headers as `x-mock-azure-deployment`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::{Mock, S};

/// Add this dialect's routes.
pub(super) fn routes(r: Router<Arc<Mock>>) -> Router<Arc<Mock>> {
    r.route(
        "/openai/deployments/{deployment}/chat/completions",
        post(chat),
    )
    .route(
        "/openai/deployments/{deployment}/embeddings",
        post(embeddings),
    )
}

#[derive(serde::Deserialize)]
struct Q {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

/// Azure's checks: `api-key` (401) and `api-version` (404, as Azure answers an unknown one).
fn check(h: &mut HeaderMap, deployment: &str, q: &Q) -> Option<Response> {
    if h.get("api-key").is_none_or(|v| v.is_empty()) {
        let body = json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}});
        return Some(
            (
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response(),
        );
    }
    if q.api_version.as_deref().is_none_or(str::is_empty) {
        let body = json!({"error": {"code": "404", "message": "Resource not found"}});
        return Some(
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response(),
        );
    }
    if let Ok(v) = HeaderValue::from_str(deployment) {
        h.insert("x-mock-azure-deployment", v);
    }
    if let Some(Ok(v)) = q.api_version.as_deref().map(HeaderValue::from_str) {
        h.insert("x-mock-azure-api-version", v);
    }
    None
}

async fn chat(
    State(m): S,
    Path(deployment): Path<String>,
    Query(q): Query<Q>,
    mut h: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = check(&mut h, &deployment, &q) {
        return r;
    }
    super::generate(m, h, body, true).await
}

async fn embeddings(
    State(m): S,
    Path(deployment): Path<String>,
    Query(q): Query<Q>,
    mut h: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = check(&mut h, &deployment, &q) {
        return r;
    }
    super::embeddings(State(m), h, body).await
}
