//! Tokia's key, webhook and audit administration (#14 item 7): `POST api-keys/bulk-revoke`,
//! `POST webhooks/{id}/rotate-secret`, `POST webhooks/attempts/{attemptId}/replay` and
//! `GET admin/audit-log/export.csv`. Every route is for the key's user when that user is an
//! owner or admin of the key's organization (owners count as admins); anyone else is 403
//! `forbidden`, and a key minted without a user too.
//!
//! `litellmFailures` of a bulk revocation counts keys not confirmed refused by every gateway
//! node within 1 s. Each node drops a key from its cache on the `catraca_api_key` NOTIFY that
//! the key trigger sends inside the revoking transaction: PostgreSQL delivers it to every
//! listening node at commit, and a node whose listener was down re-reads every key when it
//! reconnects. There is nothing left to confirm once the transaction commits, so the count is
//! 0 (the admin app cannot see the nodes; tests check two nodes refuse the keys within 1 s).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::lang;
use super::wire::{Caller, Query, TokiaError};
use crate::admin::openapi::Api;
use crate::admin::{AdminState, rfc3339};
use crate::domain::accounts::AuthUser;
use crate::domain::keys::{self, BulkTarget, KeyOwner};
use crate::domain::roles::{Action, Role};
use crate::domain::usage::Page;
use crate::domain::{DomainError, audit, orgs, webhooks};
use crate::surfaces::kit::csv_cell;

/// Newest audit rows one export holds.
pub const AUDIT_EXPORT_ROWS: i64 = 10_000;

/// The administration routes.
pub fn api() -> Api<AdminState> {
    Api::new("tokia")
        .route(
            "POST",
            "/v1/api-keys/bulk-revoke",
            "Revoga várias keys de uma vez (emergency rotation)",
            true,
            lang(post, bulk_revoke),
        )
        .route(
            "POST",
            "/v1/webhooks/{id}/rotate-secret",
            "Rotaciona signing_secret (invalida antigo)",
            true,
            lang(post, rotate_secret),
        )
        .route(
            "POST",
            "/v1/webhooks/attempts/{attemptId}/replay",
            "Cria novo attempt clonando payload existente",
            true,
            lang(post, replay),
        )
        .route(
            "GET",
            "/v1/admin/audit-log/export.csv",
            "Export CSV do audit log (admin only)",
            true,
            lang(get, audit_export),
        )
}

fn forbidden() -> TokiaError {
    TokiaError::new(
        StatusCode::FORBIDDEN,
        "permission_error",
        "forbidden",
        "Apenas owners e admins da organização podem fazer isto",
        "Only the organization's owners and admins may do this",
    )
}

fn not_found(code: &'static str, pt: &str, en: &str) -> TokiaError {
    TokiaError::new(StatusCode::NOT_FOUND, "invalid_request_error", code, pt, en)
}

/// The key's user when an owner or admin of the key's organization; else 403.
async fn admin_of(s: &AdminState, c: &KeyOwner, action: Action) -> Result<Uuid, TokiaError> {
    let Some(user) = c.user_id else {
        return Err(forbidden());
    };
    let who = AuthUser {
        user_id: user,
        organization_id: c.organization_id,
        role: String::new(),
    };
    match orgs::authorize(&s.pool, &who, c.organization_id, action).await {
        Ok(Role::Owner | Role::Admin) => Ok(user),
        Ok(_) | Err(DomainError::NotFound(_) | DomainError::Forbidden(_)) => Err(forbidden()),
        Err(e) => Err(e.into()),
    }
}

fn bad_body(reason: &str) -> TokiaError {
    TokiaError::invalid("body", reason)
}

/// `{all: true}` or `{ids: [uuid, …]}` (1 to 100), exactly one of them.
fn bulk_target(b: &[u8]) -> Result<BulkTarget, TokiaError> {
    if crate::surfaces::kit::has_nul_escape(b) || b.contains(&0) {
        return Err(bad_body("NUL"));
    }
    let v: Value = serde_json::from_slice(b).map_err(|_| bad_body("JSON"))?;
    let Value::Object(m) = v else {
        return Err(bad_body("a JSON object"));
    };
    if let Some(k) = m.keys().find(|k| *k != "all" && *k != "ids") {
        return Err(TokiaError::invalid(k, "unknown field"));
    }
    match (m.get("all"), m.get("ids")) {
        (Some(Value::Bool(true)), None) => Ok(BulkTarget::All),
        (None, Some(Value::Array(a))) => {
            if a.is_empty() || a.len() > keys::MAX_BULK_REVOKE {
                return Err(TokiaError::invalid("ids", "between 1 and 100"));
            }
            a.iter()
                .map(|x| {
                    x.as_str()
                        .and_then(|s| Uuid::parse_str(s).ok())
                        .ok_or_else(|| TokiaError::invalid("ids", "a UUID"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(BulkTarget::Ids)
        }
        (Some(_), None) => Err(TokiaError::invalid("all", "must be true")),
        (None, Some(_)) => Err(TokiaError::invalid("ids", "an array")),
        _ => Err(TokiaError::invalid("all", "exactly one of all or ids")),
    }
}

/// `POST /v1/api-keys/bulk-revoke`: `{revoked, alreadyInactive, litellmFailures}`.
async fn bulk_revoke(
    State(s): State<AdminState>,
    Caller(c): Caller,
    b: Bytes,
) -> Result<Json<Value>, TokiaError> {
    let user = admin_of(&s, &c, Action::ManageKeys).await?;
    let target = bulk_target(&b)?;
    let done = keys::bulk_revoke(&s.pool, c.organization_id, Some(user), target).await?;
    Ok(Json(json!({
        "revoked": done.revoked.len(),
        "alreadyInactive": done.already_inactive,
        // see the module's documentation: confirmed by the NOTIFY committed with the revocation
        "litellmFailures": 0,
    })))
}

fn webhook_not_found() -> TokiaError {
    not_found(
        "webhook_not_found",
        "Webhook não encontrado",
        "Webhook not found",
    )
}

fn attempt_not_found() -> TokiaError {
    not_found(
        "attempt_not_found",
        "Tentativa de entrega não encontrada",
        "Delivery attempt not found",
    )
}

/// `POST /v1/webhooks/{id}/rotate-secret`: `{id, signing_secret, rotated_at}`, the secret
/// shown this once.
async fn rotate_secret(
    State(s): State<AdminState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, TokiaError> {
    let user = admin_of(&s, &c, Action::ManageWebhooks).await?;
    // an id that is not a UUID names no webhook
    let id = Uuid::parse_str(&id).map_err(|_| webhook_not_found())?;
    let secret = webhooks::rotate_secret(&s.webhook_sender(), Some(user), c.organization_id, id)
        .await
        .map_err(|e| match e {
            DomainError::NotFound(_) => webhook_not_found(),
            e => e.into(),
        })?;
    Ok(Json(json!({
        "id": id,
        "signing_secret": secret,
        "rotated_at": rfc3339(time::OffsetDateTime::now_utc()),
    })))
}

/// `POST /v1/webhooks/attempts/{attemptId}/replay`: the queued attempt (new, or the replay of
/// the same original still queued).
async fn replay(
    State(s): State<AdminState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, TokiaError> {
    admin_of(&s, &c, Action::ManageWebhooks).await?;
    let id = Uuid::parse_str(&id).map_err(|_| attempt_not_found())?;
    let (a, created) = webhooks::replay(&s.pool, c.organization_id, id)
        .await
        .map_err(|e| match e {
            DomainError::NotFound(_) => attempt_not_found(),
            e => e.into(),
        })?;
    Ok(Json(json!({
        "id": a.attempt_id,
        "delivery_id": a.attempt_id,
        "webhook_id": a.webhook_id,
        "event": a.event,
        "status": a.status,
        "replay_of": a.replay_of_attempt,
        "created": created,
        "created_at": rfc3339(a.created_at),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodQ {
    from: Option<String>,
    to: Option<String>,
}

fn date(raw: Option<&str>, field: &str) -> Result<Option<time::Date>, TokiaError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    raw.map(|r| {
        time::Date::parse(r, &fmt).map_err(|_| TokiaError::invalid(field, "a date YYYY-MM-DD"))
    })
    .transpose()
}

/// The audit CSV's columns.
pub const AUDIT_COLUMNS: [&str; 9] = [
    "id",
    "created_at",
    "actor",
    "user_id",
    "action",
    "target",
    "source_ip",
    "before",
    "after",
];

fn audit_line(e: &audit::Entry) -> String {
    let json = |v: &Option<Value>| v.as_ref().map(Value::to_string).unwrap_or_default();
    let cells = [
        e.audit_log_id.to_string(),
        rfc3339(e.created_at),
        e.actor.clone(),
        e.user_id.map(|u| u.to_string()).unwrap_or_default(),
        e.action.clone(),
        e.target.clone().unwrap_or_default(),
        e.source_ip.clone().unwrap_or_default(),
        json(&e.before),
        json(&e.after),
    ];
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// `GET /v1/admin/audit-log/export.csv?from=&to=` (UTC dates, both optional): the newest
/// 10,000 entries of the caller's organization (from `from` on, then those not after `to`),
/// newest first; UTF-8 BOM, CRLF, RFC 4180, formulas defused. Bounded: at most 10,000 rows.
async fn audit_export(
    State(s): State<AdminState>,
    Caller(c): Caller,
    Query(q): Query<PeriodQ>,
) -> Result<Response, TokiaError> {
    let from = date(q.from.as_deref(), "from")?;
    let to = date(q.to.as_deref(), "to")?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(TokiaError::invalid("from", "after to"));
    }
    admin_of(&s, &c, Action::Read).await?;
    let filter = audit::Filter {
        org: Some(c.organization_id),
        since: from.map(|d| d.midnight().assume_utc()),
        ..Default::default()
    };
    let page = Page {
        page: 1,
        per_page: AUDIT_EXPORT_ROWS,
    };
    let rows = audit::list(&s.pool, &filter, page).await?;
    let mut out = format!("\u{feff}{}\r\n", AUDIT_COLUMNS.join(","));
    for e in rows
        .iter()
        .filter(|e| to.is_none_or(|t| e.created_at.to_offset(time::UtcOffset::UTC).date() <= t))
    {
        out.push_str(&audit_line(e));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tokia-audit-log.csv\"",
            ),
        ],
        Body::from(out),
    )
        .into_response())
}
