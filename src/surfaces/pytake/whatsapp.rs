//! PyTake's WhatsApp: `POST /api/v1/whatsapp/send`, `GET /api/v1/whatsapp/numbers`,
//! `POST /api/v1/whatsapp/numbers/sync` (not in the contract: how an organization registers
//! its numbers), and the public webhook (`POST` signed events, `GET` the subscription
//! handshake). Parse → `domain::whatsapp` → render.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::secrets::keys;
use super::wire::{Body, Caller, PyError};
use crate::admin::{AdminState, rfc3339};
use crate::domain::pytake::authorize;
use crate::domain::roles::Action;
use crate::domain::whatsapp::{self, Number, Outgoing, WaError};

type Answer = Result<Response, PyError>;

impl From<WaError> for PyError {
    fn from(e: WaError) -> Self {
        match e {
            WaError::Domain(d) => d.into(),
            e @ WaError::Upstream { .. } => PyError::new(
                StatusCode::BAD_GATEWAY,
                "whatsapp_upstream_error",
                e.to_string(),
            ),
        }
    }
}

/// The contract's `WhatsAppNumber`.
fn number(n: &Number) -> Value {
    json!({
        "id": n.id,
        "phone_number": n.phone_number,
        "display_name": n.display_name,
        "status": n.status,
        "verified": n.verified,
        "organization_id": n.organization_id,
        "phone_number_id": n.phone_number_id,
        "waba_id": n.waba_id,
        "secret_id": n.secret_id,
        "created_at": rfc3339(n.created_at),
    })
}

#[derive(Deserialize)]
pub struct SendReq {
    to: String,
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    template_id: Option<String>,
    language: Option<String>,
    phone_number_id: Option<String>,
}

/// `POST /api/v1/whatsapp/send`: `{message_id, status}` (agent and up).
pub async fn send(
    State(s): State<AdminState>,
    Caller(actor): Caller,
    Body(r): Body<SendReq>,
) -> Answer {
    authorize(&actor, Action::SendWhatsApp)?;
    let to = whatsapp::recipient(&r.to)?;
    let content = match r.kind.as_deref().unwrap_or("text") {
        "text" => whatsapp::text(r.message.as_deref().unwrap_or(""))?,
        "template" => whatsapp::template(
            r.template_id.as_deref().ok_or_else(|| {
                PyError::bad_request("template_id: required when type is template")
            })?,
            r.language.as_deref(),
        )?,
        _ => return Err(PyError::bad_request("type: text or template")),
    };
    let phone_number_id = r
        .phone_number_id
        .as_deref()
        .map(|p| whatsapp::graph_id("phone_number_id", p))
        .transpose()?;
    let k = keys(&s)?;
    let sent = whatsapp::send(
        &s.pool,
        k,
        &s.whatsapp,
        &s.http,
        actor.organization_id,
        &Outgoing {
            to,
            content,
            phone_number_id,
            job_id: None,
        },
    )
    .await?;
    Ok(Json(json!({"message_id": sent.wamid, "status": sent.status})).into_response())
}

/// `GET /api/v1/whatsapp/numbers`: `Array<WhatsAppNumber>`.
pub async fn numbers(State(s): State<AdminState>, Caller(actor): Caller) -> Answer {
    let list = whatsapp::numbers(&s.pool, &actor).await?;
    Ok(Json(list.iter().map(number).collect::<Vec<_>>()).into_response())
}

#[derive(Deserialize)]
pub struct SyncReq {
    secret_id: Uuid,
    waba_id: String,
}

/// `POST /api/v1/whatsapp/numbers/sync {secret_id, waba_id}`: list the WABA's numbers with
/// the secret's token and register them (org_admin): `Array<WhatsAppNumber>`.
pub async fn sync(
    State(s): State<AdminState>,
    Caller(actor): Caller,
    Body(r): Body<SyncReq>,
) -> Answer {
    authorize(&actor, Action::ManageContent)?;
    let k = keys(&s)?;
    let list = whatsapp::sync_numbers(
        &s.pool,
        k,
        &s.whatsapp,
        &s.http,
        &actor,
        r.secret_id,
        &r.waba_id,
    )
    .await?;
    Ok(Json(list.iter().map(number).collect::<Vec<_>>()).into_response())
}

/// `POST /api/v1/whatsapp/webhook`: public, signed (`X-Hub-Signature-256` over the raw body;
/// 401 otherwise, nothing changed); each event applied once.
pub async fn webhook(State(s): State<AdminState>, h: HeaderMap, body: axum::body::Bytes) -> Answer {
    let sig = h.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    whatsapp::verify_signature(&s.whatsapp, &body, sig).map_err(|e| match e {
        crate::domain::DomainError::Unauthorized(_) => PyError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "X-Hub-Signature-256 is missing or does not match the body",
        ),
        e => e.into(),
    })?;
    let events = whatsapp::parse_webhook(&body)?;
    let a = whatsapp::apply_webhook(&s.pool, &events).await?;
    Ok(Json(json!({
        "status": "ok",
        "applied": a.applied,
        "duplicates": a.duplicates,
        "ignored": a.ignored,
    }))
    .into_response())
}

/// `GET /api/v1/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`:
/// the challenge as text/plain when the token matches; 403 otherwise.
pub async fn verify(State(s): State<AdminState>, RawQuery(q): RawQuery) -> Answer {
    let q = q.unwrap_or_default();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match whatsapp::handshake(
        &s.whatsapp,
        get("hub.mode"),
        get("hub.verify_token"),
        get("hub.challenge"),
    ) {
        Some(c) => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            c.to_string(),
        )
            .into_response()),
        None => Err(PyError::new(
            StatusCode::FORBIDDEN,
            "verification_failed",
            "hub.mode must be subscribe and hub.verify_token must match the configured token",
        )),
    }
}

/// The WhatsApp routes.
pub fn routes() -> crate::admin::openapi::Api<AdminState> {
    use axum::routing::{get, post};
    crate::admin::openapi::Api::new("pytake")
        .route(
            "POST",
            "/api/v1/whatsapp/send",
            "Send a text or template message (agent and up): {message_id, status}",
            true,
            post(send),
        )
        .route(
            "GET",
            "/api/v1/whatsapp/numbers",
            "The organization's WhatsApp numbers",
            true,
            get(numbers),
        )
        .route(
            "POST",
            "/api/v1/whatsapp/numbers/sync",
            "Register a WABA's numbers with a whatsapp vault secret (org_admin; not in the contract)",
            true,
            post(sync),
        )
        .route(
            "POST",
            "/api/v1/whatsapp/webhook",
            "WhatsApp Cloud API webhook (public; X-Hub-Signature-256 required; events applied once)",
            false,
            post(webhook),
        )
        .route(
            "GET",
            "/api/v1/whatsapp/webhook",
            "WhatsApp webhook subscription handshake (public; echoes hub.challenge)",
            false,
            get(verify),
        )
}
