//! The operator API's handlers: parse, call `crate::domain`, render with [`super::wire`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{self, Body, OpError, Operator, Query};
use crate::admin::AdminState;
use crate::domain::keys::{self, NewOperatorKey};
use crate::domain::money::Micros;
use crate::domain::orgs::{self, NewOrg};
use crate::domain::usage::Page;
use crate::domain::{DomainError, Entity};

type Created = Result<(StatusCode, Json<Value>), OpError>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgReq {
    name: String,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    prepaid: bool,
}

pub async fn create_org(
    State(s): State<AdminState>,
    _: Operator,
    Body(r): Body<OrgReq>,
) -> Created {
    let o = orgs::create(
        &s.pool,
        NewOrg {
            name: r.name,
            slug: r.slug,
            kind: r.kind,
            plan: r.plan,
            prepaid: r.prepaid,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(wire::org(&o))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQ {
    #[serde(default)]
    kind: Option<String>,
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

pub async fn list_orgs(
    State(s): State<AdminState>,
    _: Operator,
    Query(q): Query<ListQ>,
) -> Result<Json<Value>, OpError> {
    let page = Page::new(q.page, q.per_page)?;
    let (rows, total) = orgs::list(&s.pool, q.kind.as_deref(), page).await?;
    Ok(Json(json!({
        "data": rows.iter().map(wire::org).collect::<Vec<_>>(),
        "page": page.page, "per_page": page.per_page, "total": total,
    })))
}

pub async fn get_org(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpError> {
    let id = wire::uuid(&id, Entity::Organization)?;
    Ok(Json(wire::org(&orgs::get(&s.pool, id).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerReq {
    kind: String,
    amount_brl: String,
    #[serde(default)]
    description: Option<String>,
}

/// A ledger entry (`Idempotency-Key` required: the same key returns the first entry).
pub async fn post_ledger(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(r): Body<LedgerReq>,
) -> Created {
    let org = wire::uuid(&id, Entity::Organization)?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .ok_or_else(|| {
            OpError::invalid("Idempotency-Key", "header required, 1 to 200 characters")
        })?;
    let amount = crate::config::resolve::parse_decimal_micros(r.amount_brl.trim_start_matches('-'))
        .map_err(|e| OpError::invalid("amount_brl", e))?;
    let amount = if r.amount_brl.starts_with('-') {
        -amount
    } else {
        amount
    };
    if r.description.as_ref().is_some_and(|d| d.len() > 500) {
        return Err(OpError::invalid("description", "at most 500 characters"));
    }
    use crate::store::ledger::{LedgerError, post};
    let e = post(&s.pool, org, &r.kind, amount, key, r.description.as_deref())
        .await
        .map_err(|e| match e {
            LedgerError::Invalid(m) => OpError::invalid("amount_brl", m),
            LedgerError::NotFound => DomainError::NotFound(Entity::Organization).into(),
            LedgerError::Conflict => {
                DomainError::Conflict(crate::domain::Conflict::IdempotencyReused).into()
            }
            LedgerError::Db(e) => DomainError::from(e).into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": e.ledger_entry_id.to_string(),
            "organization_id": org.to_string(),
            "kind": e.kind,
            "amount_brl": Micros(e.amount_brl_micros).decimal(),
            "balance_brl": Micros(e.balance_after_brl_micros).decimal(),
        })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyReq {
    organization_id: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    rps: Option<i64>,
    #[serde(default)]
    rpm: Option<i64>,
    #[serde(default)]
    rpd: Option<i64>,
    #[serde(default)]
    tpm: Option<i64>,
    #[serde(default)]
    concurrency: Option<i64>,
    #[serde(default)]
    budget_usd: Option<String>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<time::OffsetDateTime>,
}

pub async fn create_key(
    State(s): State<AdminState>,
    _: Operator,
    Body(r): Body<KeyReq>,
) -> Created {
    let org = wire::uuid(&r.organization_id, Entity::Organization)?;
    let user = r
        .user_id
        .as_deref()
        .map(|u| wire::uuid(u, Entity::User))
        .transpose()?;
    let budget = r
        .budget_usd
        .as_deref()
        .map(|b| crate::config::resolve::parse_decimal_micros(b).map(Micros))
        .transpose()
        .map_err(|e| OpError::invalid("budget_usd", e))?;
    let (k, plaintext) = keys::create_for_operator(
        &s.pool,
        NewOperatorKey {
            organization_id: Some(org),
            user_id: user,
            prefix: r.prefix,
            name: r.name,
            rps: r.rps,
            rpm: r.rpm,
            rpd: r.rpd,
            tpm: r.tpm,
            concurrency: r.concurrency,
            budget,
            models: r.models,
            scopes: r.scopes,
            expires_at: r.expires_at,
        },
    )
    .await?;
    let mut v = wire::key(&k);
    v["key"] = Value::String(plaintext);
    Ok((StatusCode::CREATED, Json(v)))
}

pub async fn revoke_key(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpError> {
    let id = wire::uuid(&id, Entity::Key)?;
    Ok(Json(wire::key(&keys::revoke_any(&s.pool, id).await?)))
}

pub async fn rotate_key(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpError> {
    let id = wire::uuid(&id, Entity::Key)?;
    let (k, plaintext) = keys::rotate(&s.pool, id).await?;
    Ok(Json(
        json!({"id": k.api_key_id.to_string(), "key": plaintext, "prefix": k.prefix}),
    ))
}

pub async fn disable_org(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpError> {
    set_disabled(&s, &id, true).await
}

pub async fn enable_org(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpError> {
    set_disabled(&s, &id, false).await
}

async fn set_disabled(s: &AdminState, id: &str, disabled: bool) -> Result<Json<Value>, OpError> {
    let id = wire::uuid(id, Entity::Organization)?;
    Ok(Json(wire::org(
        &orgs::set_disabled(&s.pool, id, disabled).await?,
    )))
}

pub async fn org_keys(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpError> {
    let id = wire::uuid(&id, Entity::Organization)?;
    let rows = keys::of_org(&s.pool, id).await?;
    Ok(Json(
        json!({"data": rows.iter().map(wire::key).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQ {
    #[serde(default)]
    organization_id: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default = "one")]
    page: i64,
    #[serde(default = "fifty")]
    per_page: i64,
}

pub async fn audit(
    State(s): State<AdminState>,
    _: Operator,
    Query(q): Query<AuditQ>,
) -> Result<Json<Value>, OpError> {
    let org = q
        .organization_id
        .as_deref()
        .map(|o| wire::uuid(o, Entity::Organization))
        .transpose()?;
    let page = Page::new(q.page, q.per_page)?;
    let rows = crate::domain::audit::list(&s.pool, org, q.action.as_deref(), page).await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|e| {
            json!({
                "id": e.audit_log_id.to_string(),
                "organization_id": e.organization_id.map(|o| o.to_string()),
                "actor": e.user_id.map_or_else(|| "operator".to_string(), |u| u.to_string()),
                "action": e.action,
                "target": e.target,
                "at": crate::admin::rfc3339(e.created_at),
            })
        })
        .collect();
    Ok(Json(
        json!({"data": data, "page": page.page, "per_page": page.per_page}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserReq {
    email: String,
    name: String,
    #[serde(default)]
    password: Option<String>,
    organization_id: String,
    #[serde(default = "member")]
    role: String,
}

fn member() -> String {
    "member".into()
}

/// A user in an organization; without a password an invitation mail is queued.
pub async fn create_user(
    State(s): State<AdminState>,
    _: Operator,
    Body(r): Body<UserReq>,
) -> Created {
    let org = wire::uuid(&r.organization_id, Entity::Organization)?;
    let rows = crate::domain::accounts::create_user(
        &s.pool,
        crate::domain::accounts::NewUser {
            email: r.email,
            name: r.name,
            password: r.password,
            organization_id: org,
            role: r.role,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(wire::user(&rows))))
}

pub async fn get_user(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpError> {
    let id = wire::uuid(&id, Entity::User)?;
    Ok(Json(wire::user(
        &crate::domain::accounts::get_user(&s.pool, id).await?,
    )))
}

pub async fn disable_user(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpError> {
    let id = wire::uuid(&id, Entity::User)?;
    Ok(Json(wire::user(
        &crate::domain::accounts::disable_user(&s.pool, id).await?,
    )))
}

pub async fn org_members(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpError> {
    let id = wire::uuid(&id, Entity::Organization)?;
    let rows = crate::domain::accounts::members(&s.pool, id).await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|r| wire::user(std::slice::from_ref(r)))
        .collect();
    Ok(Json(json!({"data": data})))
}
