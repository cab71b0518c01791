//! Tokia's spending alerts (issue 14 item 6, `domain::alerts`), Bearer `sk-tokia-…`, scoped to
//! the key's organization. The YAML gives no schemas; the shapes (also in the README):
//!
//! - an alert: `{id, kind, threshold_brl, channel, armed, last_fired_at, created_at}`
//!   (`threshold_brl` an exact JSON number, `last_fired_at` null until it fires);
//! - `GET /v1/me/alerts` → `{alerts: [alert…]}`, oldest first;
//! - `POST /v1/me/alerts {kind, threshold_brl, channel}` → 201 alert, as it is after the check
//!   that follows its creation (an alert created past its threshold has fired already).
//!
//! `kind` is `balance_below`, `daily_spend_above` or `monthly_spend_above`; `threshold_brl` a
//! decimal string or JSON number read from its literal text (never through a float), > 0, at
//! most 6 decimals, at most 10,000,000; `channel` `email` or `webhook`. Errors: 400
//! `invalid_body` (not that JSON object, an unknown field, a NUL) / `invalid_parameter` (naming
//! the field), 409 `alert_limit_reached` (50 per organization) / `alert_exists` (same kind,
//! threshold and channel); nothing is stored on a refusal.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::lang;
use super::wire::{Caller, TokiaError, brl};
use crate::admin::openapi::Api;
use crate::admin::{AdminState, rfc3339};
use crate::domain::DomainError;
use crate::domain::alerts::{self, Alert, NewAlert, Refused};
use crate::domain::money::Micros;

/// The alert routes.
pub fn api() -> Api<AdminState> {
    Api::new("tokia")
        .route(
            "GET",
            "/v1/me/alerts",
            "Spending alerts customizáveis: {alerts: [{id, kind, threshold_brl, channel, armed, last_fired_at, created_at}]}",
            true,
            lang(get, list),
        )
        .route(
            "POST",
            "/v1/me/alerts",
            "Cria alerta custom {kind: balance_below|daily_spend_above|monthly_spend_above, threshold_brl, channel: email|webhook}: 201 alert; 400; 409 alert_limit_reached (50) | alert_exists",
            true,
            lang(post, create),
        )
}

/// What a body must look like.
const EXPECTED: &str =
    "{\"kind\": \"balance_below\", \"threshold_brl\": \"10.00\", \"channel\": \"email\"}";

fn bad_body(e: impl std::fmt::Display) -> TokiaError {
    TokiaError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_body",
        format!("Corpo inválido: esperado {EXPECTED} ({e})"),
        format!("Invalid body: expected {EXPECTED} ({e})"),
    )
}

/// A domain error in Tokia's shape, with the fields' rules in pt-BR.
fn error(e: DomainError) -> TokiaError {
    match e {
        DomainError::Invalid { field, reason } => {
            let rule = match field {
                "kind" => "use balance_below, daily_spend_above ou monthly_spend_above",
                "threshold_brl" => {
                    "um decimal maior que 0 e no máximo 10000000, com até 6 casas decimais"
                }
                "channel" => "use email ou webhook",
                _ => "valor inválido",
            };
            TokiaError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_parameter",
                format!("Parâmetro inválido: {field} ({rule})"),
                format!("Invalid parameter: {field} ({reason})"),
            )
        }
        e => e.into(),
    }
}

fn refused(r: Refused) -> TokiaError {
    match r {
        Refused::TooMany => TokiaError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "alert_limit_reached",
            format!(
                "Limite de {} alertas por organização atingido",
                alerts::MAX_ALERTS
            ),
            format!("An organization has at most {} alerts", alerts::MAX_ALERTS),
        ),
        Refused::Duplicate => TokiaError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "alert_exists",
            "Já existe um alerta com este kind, threshold_brl e channel",
            "An alert with this kind, threshold_brl and channel exists",
        ),
    }
}

/// One alert.
fn alert(a: &Alert) -> Value {
    json!({
        "id": a.alert_id,
        "kind": a.kind,
        "threshold_brl": brl(Micros(a.threshold_brl_micros)),
        "channel": a.channel,
        "armed": a.armed,
        "last_fired_at": a.last_fired_at.map(rfc3339),
        "created_at": rfc3339(a.created_at),
    })
}

/// `GET /v1/me/alerts`.
async fn list(State(s): State<AdminState>, Caller(k): Caller) -> Result<Json<Value>, TokiaError> {
    let list = alerts::list(&s.pool, k.organization_id)
        .await
        .map_err(error)?;
    Ok(Json(
        json!({"alerts": list.iter().map(alert).collect::<Vec<_>>()}),
    ))
}

/// The body; `threshold_brl` kept as its raw JSON text (serde_json's `raw_value` feature,
/// which axum turns on), so a number is read from its digits, never through a float.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateReq<'a> {
    kind: String,
    #[serde(borrow)]
    threshold_brl: &'a RawValue,
    channel: String,
}

/// `POST /v1/me/alerts`.
async fn create(
    State(s): State<AdminState>,
    Caller(k): Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), TokiaError> {
    if crate::surfaces::kit::has_nul_escape(&body) || body.contains(&0) {
        return Err(bad_body("NUL"));
    }
    let req: CreateReq = serde_json::from_slice(&body).map_err(bad_body)?;
    let raw = req.threshold_brl.get();
    // a string holds the decimal; anything else is taken as written (a number's literal; a
    // bool, null, array or object is not a decimal and is refused by the parse)
    let threshold = if raw.starts_with('"') {
        serde_json::from_str::<String>(raw).map_err(bad_body)?
    } else {
        raw.to_string()
    };
    let new = NewAlert::parse(&req.kind, &threshold, &req.channel).map_err(error)?;
    match alerts::create(&s.pool, &k, new).await.map_err(error)? {
        Ok(a) => Ok((StatusCode::CREATED, Json(alert(&a)))),
        Err(r) => Err(refused(r)),
    }
}
