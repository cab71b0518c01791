//! Tokia's self-service refunds (issue 14 item 6), Bearer `sk-tokia-…`, scoped to the key's
//! organization; the rules are `domain::refunds`'. The YAML gives no schemas; the shapes (also
//! in the README):
//!
//! - a refund: `{id, amount_brl, reason, status: pending|approved|rejected, created_at,
//!   decided_at}` (`amount_brl` an exact JSON number, `decided_at` null while pending);
//! - `GET /v1/me/refunds` → `{refunds: [refund…]}`, newest first (the newest 500);
//! - `POST /v1/me/refunds {amount_brl: "10.00" | 10.00, reason?}` (optional `Idempotency-Key`
//!   header) → 201 refund with `status: pending`, its amount held at once; the same key with
//!   the same body → 201 with the same refund and `Idempotent-Replayed: true`, nothing
//!   created.
//!
//! The operator decides with `POST /admin/v1/refunds/{id}/approve|reject`
//! (`crate::surfaces::operator::refunds`).
//!
//! Errors: 400 `invalid_body` (not the JSON asked for, NUL), `invalid_parameter`
//! (`amount_brl` malformed, more than 2 decimals or longer than 40 characters; `reason` over
//! 500 characters; `Idempotency-Key` not 1–200 printable ASCII), `amount_below_minimum`
//! (< R$ 5.00), `amount_above_refundable` (above the unspent part of paid top-ups); 409
//! `refund_pending` (another request is open), `idempotency_key_reused` (the key was used with
//! another amount or reason).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::lang;
use super::wire::{Caller, TokiaError, brl};
use crate::admin::openapi::Api;
use crate::admin::{AdminState, rfc3339};
use crate::domain::money::Micros;
use crate::domain::refunds::{self, Refund, Refusal};
use crate::domain::{Conflict, DomainError};

/// The refund routes.
pub fn api() -> Api<AdminState> {
    Api::new("tokia")
        .route(
            "GET",
            "/v1/me/refunds",
            "Histórico refund self-service",
            true,
            lang(get, list),
        )
        .route(
            "POST",
            "/v1/me/refunds",
            "Cria pedido de refund (mín R$ 5)",
            true,
            lang(post, create),
        )
}

/// A domain error in Tokia's shape, with the refund routes' own conflict codes.
fn error(e: DomainError) -> TokiaError {
    match e {
        DomainError::Conflict(Conflict::RefundPending) => TokiaError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "refund_pending",
            "Já existe um pedido de reembolso pendente",
            "A refund request is already pending",
        ),
        DomainError::Conflict(Conflict::IdempotencyReused) => TokiaError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "idempotency_key_reused",
            "Idempotency-Key já usada em outro pedido (valor ou motivo diferentes)",
            "Idempotency-Key already used for another request (different amount or reason)",
        ),
        e => e.into(),
    }
}

/// A whole-centavos amount as Tokia's messages write it: `R$ 9,99` in pt-BR, `R$ 9.99` in
/// English.
fn reais(m: Micros) -> (String, String) {
    let cents = m.0 / 10_000;
    let (int, frac) = (cents / 100, (cents % 100).abs());
    (format!("R$ {int},{frac:02}"), format!("R$ {int}.{frac:02}"))
}

/// A refusal of the amount rules: 400 with its own code.
fn refused(r: Refusal) -> TokiaError {
    match r {
        Refusal::BelowMinimum => {
            let (pt, en) = reais(refunds::MIN_AMOUNT);
            TokiaError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "amount_below_minimum",
                format!("O reembolso mínimo é {pt}"),
                format!("The smallest refund is {en}"),
            )
        }
        Refusal::AboveRefundable(m) => {
            // what can be asked for: whole centavos
            let (pt, en) = reais(Micros(m.0 - m.0 % 10_000));
            TokiaError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "amount_above_refundable",
                format!(
                    "Valor acima do reembolsável: só a parte não gasta das recargas pagas volta (no máximo {pt} agora)"
                ),
                format!(
                    "Amount above what is refundable: only the unspent part of paid top-ups (at most {en} now)"
                ),
            )
        }
    }
}

fn bad_body(e: impl std::fmt::Display) -> TokiaError {
    TokiaError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_body",
        format!(
            "Corpo inválido: esperado {{\"amount_brl\": \"10.00\", \"reason\": \"...\"}} ({e})"
        ),
        format!("Invalid body: expected {{\"amount_brl\": \"10.00\", \"reason\": \"...\"}} ({e})"),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateReq<'a> {
    /// A decimal string or a JSON number, read from its literal text (never a float).
    #[serde(borrow)]
    amount_brl: &'a RawValue,
    #[serde(default)]
    reason: Option<String>,
}

/// The amount's text: a JSON string's content, or a JSON number's literal exactly as sent.
fn amount_text(raw: &RawValue) -> Result<String, TokiaError> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str(text).map_err(bad_body),
        Some(b'-' | b'0'..=b'9') => Ok(text.to_string()),
        _ => Err(DomainError::invalid("amount_brl", "a decimal string or a number").into()),
    }
}

/// A refund as Tokia answers it.
fn refund(r: &Refund) -> Value {
    json!({
        "id": r.refund_id,
        "amount_brl": brl(Micros(r.amount_brl_micros)),
        "reason": r.reason,
        "status": r.status,
        "created_at": rfc3339(r.created_at),
        "decided_at": r.decided_at.map(rfc3339),
    })
}

/// `GET /v1/me/refunds`.
async fn list(State(s): State<AdminState>, Caller(k): Caller) -> Result<Json<Value>, TokiaError> {
    let all = refunds::history(&s.pool, k.organization_id)
        .await
        .map_err(error)?;
    Ok(Json(
        json!({"refunds": all.iter().map(refund).collect::<Vec<_>>()}),
    ))
}

/// `POST /v1/me/refunds`.
async fn create(
    State(s): State<AdminState>,
    Caller(k): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TokiaError> {
    if crate::surfaces::kit::has_nul_escape(&body) || body.contains(&0) {
        return Err(bad_body("NUL"));
    }
    let req: CreateReq = serde_json::from_slice(&body).map_err(bad_body)?;
    let amount = refunds::parse_amount(&amount_text(req.amount_brl)?)?;
    let key = headers
        .get("idempotency-key")
        .map(|v| refunds::idempotency_key(v.as_bytes()))
        .transpose()?;
    let reason = req
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let done = refunds::request(&s.pool, &k, amount, reason, key.as_deref())
        .await
        .map_err(error)?
        .map_err(refused)?;
    let mut r = (StatusCode::CREATED, Json(refund(&done.refund))).into_response();
    if done.replayed {
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(r)
}
