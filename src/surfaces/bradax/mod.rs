//! bradax (`/api/v1/...`, issue 15): the route table only. Errors are `{error, message,
//! details, request_id, timestamp}` ([`wire::BxError`]); callers are bradax access tokens
//! ([`wire::Caller`]). `POST /api/v1/auth/refresh` is mounted once, by PyTake, and dispatches
//! on the refresh token's audience to [`auth::refresh`]. `llm/invoke` and `llm/stream` are
//! gateway routes (`src/gateway`), not here.

pub mod auth;
pub mod graphs;
pub mod observe;
pub mod vectors;
pub mod wire;

use axum::routing::{get, post};

use crate::admin::AdminState;
use crate::admin::openapi::Api;

/// bradax's mounted routes.
pub fn api() -> Api<AdminState> {
    Api::new("bradax")
        .route(
            "POST",
            "/api/v1/auth/token",
            "Trade a project's API key for an access token (900 s) and a refresh token",
            false,
            post(auth::token),
        )
        .route(
            "GET",
            "/api/v1/metrics",
            "The project's usage (default the last 24 h): requests, tokens and cost by model",
            true,
            get(observe::metrics),
        )
        .route(
            "GET",
            "/api/v1/health",
            "Database, vault canary, LLM providers and vector store",
            false,
            get(observe::health),
        )
        .merge(vectors::routes())
        .merge(graphs::routes())
}
