//! Tokia's PIX routes (issue 14 item 11), a documented extension of the Tokia contract:
//!
//! - `POST /v1/me/topups {amount_brl}` (Bearer `sk-tokia-…`): a PIX charge for the key's
//!   organization, 201 with its BR Code "copia e cola" and expiry;
//! - `POST /v1/pix/webhook` (no key): the PSP's payment notification
//!   `{"pix":[{"endToEndId","txid","valor","horario"}]}` as in the BCB's API Pix, authenticated
//!   by `X-Signature: sha256=<hex HMAC-SHA256 of the raw body with the PSP secret>`.
//!
//! Errors are Tokia's `{"error":{"message","type","code"}}`, in pt-BR unless the request
//! says `Accept-Language: en`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::handler::Handler;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{MethodRouter, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{Caller, TokiaError};
use crate::admin::openapi::Api;
use crate::admin::{AdminState, rfc3339};
use crate::domain::DomainError;
use crate::domain::money::Micros;
use crate::domain::pix::{self, Charge, Payment, Refusal, Settled};

/// A POST route whose error answers follow the client's `Accept-Language`.
fn write<H, T>(h: H) -> MethodRouter<AdminState>
where
    H: Handler<T, AdminState>,
    T: 'static,
{
    post(h).layer(axum::middleware::from_fn(super::wire::language))
}

/// The PIX routes of the Tokia surface.
pub fn api() -> Api<AdminState> {
    Api::new("tokia")
        .route(
            "POST",
            "/v1/me/topups",
            "Tokia extension: a PIX top-up charge for the key's organization (BR Code \"copia e cola\", expiry)",
            true,
            write(create_topup),
        )
        .route(
            "POST",
            "/v1/pix/webhook",
            "The PSP's PIX payment webhook (X-Signature: sha256=<HMAC-SHA256 of the body>); credits once per endToEndId",
            false,
            write(webhook),
        )
}

/// A domain error in Tokia's shape; a missing PIX setting is named in both languages.
fn error(e: DomainError) -> TokiaError {
    match e {
        DomainError::NotConfigured(what) => TokiaError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "pix_not_configured",
            format!("PIX indisponível: falta configurar {what}"),
            format!("PIX is unavailable: {what} is not configured on this server"),
        ),
        e => e.into(),
    }
}

/// A refused payment: 400 malformed, 404 unknown charge, 410 expired, 422 another amount,
/// 409 paid by another payment.
fn refused(r: Refusal) -> TokiaError {
    let (status, pt, en) = match r {
        Refusal::Malformed => (
            StatusCode::BAD_REQUEST,
            "Pagamento malformado (endToEndId, txid ou valor)",
            "Malformed payment (endToEndId, txid or valor)",
        ),
        Refusal::UnknownCharge => (
            StatusCode::NOT_FOUND,
            "Cobrança PIX desconhecida",
            "Unknown PIX charge",
        ),
        Refusal::Expired => (
            StatusCode::GONE,
            "Cobrança PIX expirada",
            "The PIX charge has expired",
        ),
        Refusal::AmountMismatch => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Valor diferente do da cobrança",
            "The amount differs from the charge's",
        ),
        Refusal::AlreadyPaid => (
            StatusCode::CONFLICT,
            "Cobrança já paga por outro pagamento",
            "The charge was paid by another payment",
        ),
    };
    TokiaError::new(status, "invalid_request_error", r.code(), pt, en)
}

fn bad_body(expected: &str, e: impl std::fmt::Display) -> TokiaError {
    TokiaError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_body",
        format!("Corpo inválido: esperado {expected} ({e})"),
        format!("Invalid body: expected {expected} ({e})"),
    )
}

/// `amount_brl` as a decimal string or a JSON number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Amount {
    Text(String),
    Number(serde_json::Number),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopupReq {
    amount_brl: Amount,
}

/// A charge as Tokia answers it (money as JSON numbers, exact).
fn charge(c: &Charge) -> Value {
    json!({
        "id": c.pix_charge_id.to_string(),
        "organization_id": c.organization_id.to_string(),
        "amount_brl": Micros(c.amount_brl_micros).json_number(),
        "txid": c.txid,
        "status": c.status(),
        "br_code": c.br_code,
        "expires_at": rfc3339(c.expires_at),
        "paid_at": c.paid_at.map(rfc3339),
        "created_at": rfc3339(c.created_at),
    })
}

/// `POST /v1/me/topups`.
async fn create_topup(
    State(s): State<AdminState>,
    Caller(key): Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), TokiaError> {
    const EXPECTED: &str = "{\"amount_brl\": \"10.00\"}";
    if crate::surfaces::kit::has_nul_escape(&body) || body.contains(&0) {
        return Err(bad_body(EXPECTED, "NUL"));
    }
    let req: TopupReq = serde_json::from_slice(&body).map_err(|e| bad_body(EXPECTED, e))?;
    let text = match req.amount_brl {
        Amount::Text(t) => t,
        Amount::Number(n) => n.to_string(),
    };
    let amount = pix::parse_amount(&text).map_err(error)?;
    let c = pix::create(&s.pool, &s.pix, key.organization_id, amount)
        .await
        .map_err(error)?;
    Ok((StatusCode::CREATED, Json(charge(&c))))
}

#[derive(Deserialize)]
struct WebhookBody {
    pix: Vec<WebhookPix>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookPix {
    end_to_end_id: String,
    txid: String,
    valor: String,
    #[serde(default)]
    horario: Option<String>,
}

/// `POST /v1/pix/webhook`: each payment credited once; 200 with each result when every one was
/// credited now or before, else the first refusal's 4xx (the other payments still processed).
async fn webhook(
    State(s): State<AdminState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, TokiaError> {
    const EXPECTED: &str = "{\"pix\":[{\"endToEndId\",\"txid\",\"valor\",\"horario\"}]}";
    let sig = headers.get("x-signature").and_then(|v| v.to_str().ok());
    pix::verify_signature(&s.pix, &body, sig).map_err(|e| match e {
        DomainError::Unauthorized(_) => {
            tracing::warn!("PIX webhook refused: bad or missing X-Signature");
            TokiaError::new(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "invalid_signature",
                "Assinatura inválida ou ausente (X-Signature: sha256=<hex>)",
                "Invalid or missing signature (X-Signature: sha256=<hex>)",
            )
        }
        e => error(e),
    })?;
    let req: WebhookBody = serde_json::from_slice(&body).map_err(|e| bad_body(EXPECTED, e))?;
    if req.pix.is_empty() || req.pix.len() > 100 {
        return Err(bad_body(EXPECTED, "1 to 100 payments"));
    }
    let mut results = Vec::with_capacity(req.pix.len());
    let mut first_refusal = None;
    for p in req.pix {
        let payment = Payment {
            end_to_end_id: p.end_to_end_id,
            txid: p.txid,
            valor: p.valor,
            horario: p.horario,
        };
        let (status, code) = match pix::settle(&s.pool, &payment).await.map_err(error)? {
            Ok(Settled::Credited(_)) => ("credited", None),
            Ok(Settled::Duplicate(_)) => ("duplicate", None),
            Err(r) => {
                first_refusal.get_or_insert(r);
                ("refused", Some(r.code()))
            }
        };
        results.push(json!({
            "endToEndId": payment.end_to_end_id,
            "txid": payment.txid,
            "status": status,
            "code": code,
        }));
    }
    match first_refusal {
        Some(r) => Err(refused(r)),
        None => Ok(Json(json!({"received": results.len(), "results": results}))),
    }
}
