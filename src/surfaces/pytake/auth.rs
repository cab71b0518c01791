//! PyTake's auth handlers: parse → `domain::pytake` → render.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{self, Body, Caller, PyError};
use crate::admin::AdminState;
use crate::domain::pytake::{self, Tokens};

type Answer = Result<Response, PyError>;

/// `{access_token, refresh_token, token_type, user}`.
fn tokens(t: &Tokens) -> Value {
    json!({
        "access_token": t.access_token,
        "refresh_token": t.refresh_token,
        "token_type": "bearer",
        "user": wire::user(&t.user),
    })
}

#[derive(Deserialize)]
pub struct RegisterReq {
    email: String,
    password: String,
    name: String,
    organization_name: String,
}

pub async fn register(State(s): State<AdminState>, Body(r): Body<RegisterReq>) -> Answer {
    let t = pytake::register(
        &s.pool,
        &s.jwt,
        &r.email,
        &r.password,
        &r.name,
        &r.organization_name,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(tokens(&t))).into_response())
}

#[derive(Deserialize)]
pub struct LoginReq {
    email: String,
    password: String,
}

pub async fn login(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Body(r): Body<LoginReq>,
) -> Answer {
    let ip = crate::admin::extract::client_ip(&headers);
    let t = pytake::login(&s.pool, &s.jwt, &r.email, &r.password, ip).await?;
    Ok(Json(tokens(&t)).into_response())
}

#[derive(Deserialize)]
pub struct RefreshReq {
    refresh_token: String,
}

/// Shared with bradax: the token's audience says whose it is (a bradax token is answered in
/// bradax's shapes); anything else is a 401 in PyTake's.
pub async fn refresh(State(s): State<AdminState>, Body(r): Body<RefreshReq>) -> Answer {
    match pytake::audience(&s.jwt, &r.refresh_token).as_deref() {
        Some(crate::domain::bradax::AUDIENCE) => {
            Ok(crate::surfaces::bradax::auth::refresh(&s, &r.refresh_token)
                .await
                .unwrap_or_else(IntoResponse::into_response))
        }
        Some(pytake::AUDIENCE) => {
            let t = pytake::refresh(&s.pool, &s.jwt, &r.refresh_token).await?;
            Ok(Json(json!({
                "access_token": t.access_token,
                "refresh_token": t.refresh_token,
                "token_type": "bearer",
            }))
            .into_response())
        }
        _ => Err(PyError::unauthorized()),
    }
}

#[derive(Deserialize, Default)]
pub struct LogoutReq {
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The body is optional: none, an empty one, or `{"refresh_token"}`.
pub async fn logout(
    State(s): State<AdminState>,
    Caller(actor): Caller,
    body: axum::body::Bytes,
) -> Answer {
    let r: LogoutReq = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutReq::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            PyError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_error",
                format!("invalid body: {e}"),
            )
        })?
    };
    pytake::logout(&s.pool, &s.jwt, &actor, r.refresh_token.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn me(State(s): State<AdminState>, Caller(actor): Caller) -> Answer {
    let m = pytake::me(&s.pool, &actor).await?;
    Ok(Json(wire::user(&m)).into_response())
}

#[derive(Deserialize)]
pub struct ForgotReq {
    email: String,
}

/// One answer whether or not the email is registered.
pub async fn forgot_password(State(s): State<AdminState>, Body(r): Body<ForgotReq>) -> Answer {
    pytake::forgot_password(&s.pool, &r.email).await?;
    Ok(Json(json!({
        "message": "If the email is registered, a password reset code was sent to it"
    }))
    .into_response())
}

#[derive(Deserialize)]
pub struct ResetReq {
    token: String,
    new_password: String,
}

pub async fn reset_password(State(s): State<AdminState>, Body(r): Body<ResetReq>) -> Answer {
    pytake::reset_password(&s.pool, &r.token, &r.new_password).await?;
    Ok(Json(json!({"message": "Password reset successfully"})).into_response())
}
