//! bradax's token handlers: parse → `domain::bradax` → render.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::wire::{self, Body, BxError};
use crate::admin::AdminState;
use crate::domain::bradax::{self, Tokens};

type Answer = Result<Response, BxError>;

/// `{access_token, refresh_token, expires_in, token_type, scopes, timestamp}`.
fn tokens(t: &Tokens) -> Response {
    Json(json!({
        "access_token": t.access_token,
        "refresh_token": t.refresh_token,
        "expires_in": t.expires_in,
        "token_type": "Bearer",
        "scopes": t.scopes.names(),
        "timestamp": wire::now(),
    }))
    .into_response()
}

#[derive(Deserialize)]
pub struct TokenReq {
    project_id: String,
    api_key: String,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

pub async fn token(State(s): State<AdminState>, Body(r): Body<TokenReq>) -> Answer {
    let t = bradax::token(
        &s.pool,
        &s.jwt,
        &r.project_id,
        &r.api_key,
        r.scopes.as_deref(),
    )
    .await?;
    Ok(tokens(&t))
}

/// `auth/refresh` for a token of audience `bradax` (PyTake's handler dispatches here).
pub async fn refresh(s: &AdminState, refresh_token: &str) -> Answer {
    let t = bradax::refresh(&s.pool, &s.jwt, refresh_token).await?;
    Ok(tokens(&t))
}
