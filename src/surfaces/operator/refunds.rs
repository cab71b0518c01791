//! The operator's side of refunds (`domain::refunds`): the queue and the decision.
//!
//! - `GET /admin/v1/refunds?status=pending|approved|rejected&organization_id=&page=&per_page=`
//!   → `{data: [refund…], page, per_page, total}`, newest first;
//! - `POST /admin/v1/refunds/{id}/approve` → the refund, `approved`: the hold released and the
//!   payout debited from the ledger as `refund` (the balance unchanged by the approval);
//! - `POST /admin/v1/refunds/{id}/reject` → the refund, `rejected`: the hold released, the
//!   balance restored.
//!
//! A refund: `{id, organization_id, amount_brl (exact decimal text), reason, status,
//! idempotency_key, requested_by, api_key_id, created_at, decided_at}`. A malformed id or
//! filter: 400; an unknown id: 404; a refund decided before (either way): 409 `conflict`,
//! nothing changed.

use axum::Json;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{self, OpError, Operator, Query};
use crate::admin::openapi::Api;
use crate::admin::{AdminState, rfc3339};
use crate::domain::Entity;
use crate::domain::money::Micros;
use crate::domain::refunds::{self, Refund};
use crate::domain::usage::Page;

/// The refund routes of the operator API.
pub fn api() -> Api<AdminState> {
    Api::new("operator")
        .route(
            "GET",
            "/admin/v1/refunds",
            "Refund requests, newest first (status=pending for the queue; organization_id)",
            true,
            get(list),
        )
        .route(
            "POST",
            "/admin/v1/refunds/{id}/approve",
            "Approve a pending refund: the hold released, the payout debited as `refund` (409 when not pending)",
            true,
            post(approve),
        )
        .route(
            "POST",
            "/admin/v1/refunds/{id}/reject",
            "Reject a pending refund: the held amount back in the balance (409 when not pending)",
            true,
            post(reject),
        )
}

/// A refund as the operator sees it.
pub fn refund(r: &Refund) -> Value {
    json!({
        "id": r.refund_id.to_string(),
        "organization_id": r.organization_id.to_string(),
        "amount_brl": Micros(r.amount_brl_micros).decimal(),
        "reason": r.reason,
        "status": r.status,
        "idempotency_key": r.idempotency_key,
        "requested_by": r.requested_by.map(|u| u.to_string()),
        "api_key_id": r.api_key_id.map(|k| k.to_string()),
        "created_at": rfc3339(r.created_at),
        "decided_at": r.decided_at.map(rfc3339),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQ {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    organization_id: Option<String>,
    #[serde(default = "one")]
    page: i64,
    #[serde(default = "fifty")]
    per_page: i64,
}

fn one() -> i64 {
    1
}

fn fifty() -> i64 {
    50
}

/// `GET /admin/v1/refunds`.
pub async fn list(
    State(s): State<AdminState>,
    _: Operator,
    Query(q): Query<ListQ>,
) -> Result<Json<Value>, OpError> {
    let status = q.status.as_deref().map(refunds::status).transpose()?;
    let org = q
        .organization_id
        .as_deref()
        .map(|o| {
            o.parse()
                .map_err(|_| OpError::invalid("organization_id", "not a valid organization id"))
        })
        .transpose()?;
    let page = Page::new(q.page, q.per_page)?;
    let (rows, total) = refunds::list(&s.pool, status, org, page).await?;
    Ok(Json(json!({
        "data": rows.iter().map(refund).collect::<Vec<_>>(),
        "page": page.page, "per_page": page.per_page, "total": total,
    })))
}

/// `POST /admin/v1/refunds/{id}/approve`.
pub async fn approve(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpError> {
    let id = wire::uuid(&id, Entity::Refund)?;
    Ok(Json(refund(&refunds::approve(&s.pool, id).await?)))
}

/// `POST /admin/v1/refunds/{id}/reject`.
pub async fn reject(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpError> {
    let id = wire::uuid(&id, Entity::Refund)?;
    Ok(Json(refund(&refunds::reject(&s.pool, id).await?)))
}
