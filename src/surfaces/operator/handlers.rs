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
    tier: Option<String>,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    prepaid: bool,
    #[serde(default)]
    limits: wire::LimitsReq,
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
            tier: r.tier,
            plan: r.plan,
            prepaid: r.prepaid,
            limits: r.limits.patch()?,
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
    let amount = crate::domain::ledger::parse_amount(&r.amount_brl)?;
    let e =
        crate::domain::ledger::post(&s.pool, org, &r.kind, amount, key, r.description.as_deref())
            .await?;
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
            bradax: Some(s.config.with(|c| c.bradax.clone())),
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
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    since: Option<String>,
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
    let user = q
        .user_id
        .as_deref()
        .map(|u| wire::uuid(u, Entity::User))
        .transpose()?;
    let since = q
        .since
        .as_deref()
        .map(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|_| DomainError::invalid("since", "an RFC 3339 time"))
        })
        .transpose()?;
    let filter = crate::domain::audit::Filter {
        org,
        action: q.action.as_deref(),
        actor: q.actor.as_deref(),
        user,
        since,
    };
    let rows = crate::domain::audit::list(&s.pool, &filter, page).await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|e| {
            json!({
                "id": e.audit_log_id.to_string(),
                "organization_id": e.organization_id.map(|o| o.to_string()),
                "actor": e.actor,
                "user_id": e.user_id.map(|u| u.to_string()),
                "source_ip": e.source_ip,
                "action": e.action,
                "target": e.target,
                "before": e.before,
                "after": e.after,
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
    /// Another user's referral code: the new user is recorded as invited by them.
    #[serde(default)]
    referral_code: Option<String>,
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
    let rows = crate::domain::accounts::create_referred_user(
        &s.pool,
        crate::domain::accounts::NewUser {
            email: r.email,
            name: r.name,
            password: r.password,
            organization_id: org,
            role: r.role,
        },
        r.referral_code.as_deref(),
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "wire::patch")]
    plan: Option<Option<String>>,
    #[serde(default)]
    limits: wire::LimitsReq,
}

/// Change an organization's name, plan and limits (absent: kept; `null`: cleared).
pub async fn update_org(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
    Body(r): Body<OrgPatch>,
) -> Result<Json<Value>, OpError> {
    let id = wire::uuid(&id, Entity::Organization)?;
    let o = orgs::update(
        &s.pool,
        id,
        orgs::OrgUpdate {
            name: r.name,
            plan: r.plan,
            limits: r.limits.patch()?,
        },
    )
    .await?;
    Ok(Json(wire::org(&o)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanReq {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    price_brl: Option<String>,
    #[serde(default)]
    annual_price_brl: Option<String>,
    #[serde(default, deserialize_with = "wire::patch")]
    monthly_request_quota: Option<Option<i64>>,
    #[serde(default)]
    limits: wire::LimitsReq,
    #[serde(default)]
    features: Option<Vec<crate::domain::plans::Feature>>,
    #[serde(default)]
    popular: Option<bool>,
}

fn brl_field(v: Option<&str>, field: &str) -> Result<Option<i64>, OpError> {
    v.map(|t| {
        crate::config::resolve::parse_decimal_micros(t.trim())
            .map_err(|e| OpError::invalid(field, e))
    })
    .transpose()
}

impl PlanReq {
    fn input(self) -> Result<(Option<String>, crate::domain::plans::PlanInput), OpError> {
        let input = crate::domain::plans::PlanInput {
            price_brl_micros: brl_field(self.price_brl.as_deref(), "price_brl")?,
            annual_price_brl_micros: brl_field(
                self.annual_price_brl.as_deref(),
                "annual_price_brl",
            )?,
            name: self.name,
            monthly_request_quota: self.monthly_request_quota,
            limits: self.limits.patch()?,
            features: self.features,
            popular: self.popular,
        };
        Ok((self.code, input))
    }
}

pub async fn create_plan(
    State(s): State<AdminState>,
    _: Operator,
    Body(r): Body<PlanReq>,
) -> Created {
    let (code, input) = r.input()?;
    let code = code.ok_or_else(|| OpError::invalid("code", "required"))?;
    let p = crate::domain::plans::create(&s.pool, &code, input).await?;
    Ok((StatusCode::CREATED, Json(wire::plan(&p))))
}

pub async fn list_plans(State(s): State<AdminState>, _: Operator) -> Result<Json<Value>, OpError> {
    let all = crate::domain::plans::list(&s.pool).await?;
    Ok(Json(
        json!({"data": all.iter().map(wire::plan).collect::<Vec<_>>()}),
    ))
}

pub async fn get_plan(
    State(s): State<AdminState>,
    _: Operator,
    Path(code): Path<String>,
) -> Result<Json<Value>, OpError> {
    Ok(Json(wire::plan(
        &crate::domain::plans::get(&s.pool, &code).await?,
    )))
}

/// Change a plan (absent fields kept; `null` clears the quota or a limit).
pub async fn update_plan(
    State(s): State<AdminState>,
    _: Operator,
    Path(code): Path<String>,
    Body(r): Body<PlanReq>,
) -> Result<Json<Value>, OpError> {
    let (new_code, input) = r.input()?;
    if new_code.is_some_and(|c| c != code) {
        return Err(OpError::invalid("code", "a plan's code cannot change"));
    }
    let p = crate::domain::plans::update(&s.pool, &code, input).await?;
    Ok(Json(wire::plan(&p)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersQ {
    #[serde(default)]
    organization_id: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default = "one")]
    page: i64,
    #[serde(default = "fifty")]
    per_page: i64,
}

pub async fn list_users(
    State(s): State<AdminState>,
    _: Operator,
    Query(q): Query<UsersQ>,
) -> Result<Json<Value>, OpError> {
    let org = q
        .organization_id
        .as_deref()
        .map(|o| wire::uuid(o, Entity::Organization))
        .transpose()?;
    let page = Page::new(q.page, q.per_page)?;
    let (rows, total) =
        crate::domain::accounts::list_users(&s.pool, org, q.email.as_deref(), page).await?;
    Ok(Json(json!({
        "data": rows.iter().map(wire::listed_user).collect::<Vec<_>>(),
        "page": page.page, "per_page": page.per_page, "total": total,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberReq {
    #[serde(default)]
    user_id: Option<String>,
    role: String,
}

fn role(r: &str) -> Result<crate::domain::roles::Role, OpError> {
    Ok(crate::domain::roles::Role::parse(r)?)
}

fn removal(r: orgs::Removal) -> Result<(), OpError> {
    match r {
        orgs::Removal::Done => Ok(()),
        orgs::Removal::NotMember => Err(DomainError::NotFound(Entity::User).into()),
        orgs::Removal::LastOwner => Err(OpError::new(
            StatusCode::CONFLICT,
            "last_owner",
            "an organization keeps at least one owner",
        )),
    }
}

/// Add a user to an organization with a role.
pub async fn add_member(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
    Body(r): Body<MemberReq>,
) -> Created {
    let org = wire::uuid(&id, Entity::Organization)?;
    let user = wire::uuid(
        r.user_id
            .as_deref()
            .ok_or_else(|| OpError::invalid("user_id", "required"))?,
        Entity::User,
    )?;
    let role = role(&r.role)?;
    orgs::add_member_by_id(&s.pool, org, user, role).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"organization_id": org.to_string(), "user_id": user.to_string(), "role": role.as_str()}),
        ),
    ))
}

/// Change a member's role (the last owner keeps theirs: 409).
pub async fn set_member_role(
    State(s): State<AdminState>,
    _: Operator,
    Path((id, user)): Path<(String, String)>,
    Body(r): Body<MemberReq>,
) -> Result<Json<Value>, OpError> {
    let org = wire::uuid(&id, Entity::Organization)?;
    let user = wire::uuid(&user, Entity::User)?;
    if r.user_id.as_deref().is_some_and(|u| u != user.to_string()) {
        return Err(OpError::invalid("user_id", "does not match the path"));
    }
    let role = role(&r.role)?;
    removal(orgs::set_role(&s.pool, None, org, user, role).await?)?;
    Ok(Json(
        json!({"organization_id": org.to_string(), "user_id": user.to_string(), "role": role.as_str()}),
    ))
}

/// Remove a member (never the last owner: 409).
pub async fn remove_member(
    State(s): State<AdminState>,
    _: Operator,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, OpError> {
    let org = wire::uuid(&id, Entity::Organization)?;
    let user = wire::uuid(&user, Entity::User)?;
    removal(orgs::remove_member(&s.pool, None, org, user).await?)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQ {
    #[serde(default = "by_org")]
    group_by: String,
    from: String,
    to: String,
    #[serde(default)]
    organization_id: Option<String>,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    format: Option<String>,
}

fn by_org() -> String {
    "organization".into()
}

fn day(v: &str, field: &'static str) -> Result<time::Date, OpError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(v, &fmt).map_err(|_| OpError::invalid(field, "a date YYYY-MM-DD"))
}

/// Usage per UTC day and organization, key or model, as JSON or (`format=csv`) CSV.
pub async fn usage_report(
    State(s): State<AdminState>,
    _: Operator,
    Query(q): Query<UsageQ>,
) -> Result<axum::response::Response, OpError> {
    use axum::response::IntoResponse;
    let group = crate::domain::usage::GroupBy::parse(&q.group_by)?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(OpError::invalid("format", "json or csv")),
    };
    let query = crate::domain::usage::ReportQuery {
        group,
        from: day(&q.from, "from")?,
        to: day(&q.to, "to")?,
        org: q
            .organization_id
            .as_deref()
            .map(|o| wire::uuid(o, Entity::Organization))
            .transpose()?,
        key: q
            .key_id
            .as_deref()
            .map(|k| wire::uuid(k, Entity::Key))
            .transpose()?,
        model: q.model.as_deref(),
    };
    let rows = crate::domain::usage::report(&s.pool, &query).await?;
    if csv {
        let mut body = String::from(wire::REPORT_CSV_HEADER);
        for r in &rows {
            body.push_str(&wire::report_csv(group.as_str(), r));
        }
        return Ok((
            [
                (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    "attachment; filename=\"usage.csv\"",
                ),
            ],
            body,
        )
            .into_response());
    }
    Ok(Json(json!({
        "group_by": group.as_str(),
        "from": q.from,
        "to": q.to,
        "data": rows.iter().map(wire::report_row).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookReq {
    organization_id: String,
    url: String,
    events: Vec<String>,
    #[serde(default)]
    secret: Option<String>,
}

/// A webhook for an organization; its signing secret (given, or generated) answered once.
pub async fn create_webhook(
    State(s): State<AdminState>,
    _: Operator,
    Body(r): Body<WebhookReq>,
) -> Created {
    let org = wire::uuid(&r.organization_id, Entity::Organization)?;
    orgs::get(&s.pool, org).await?;
    let secret = r
        .secret
        .unwrap_or_else(crate::domain::accounts::random_token);
    let w = crate::domain::webhooks::create(
        &s.webhook_sender(),
        None,
        org,
        crate::domain::webhooks::NewWebhook {
            url: r.url,
            events: r.events,
            secret: Some(secret.clone()),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::webhook(&w, org, Some(&secret))),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksQ {
    organization_id: String,
}

pub async fn list_webhooks(
    State(s): State<AdminState>,
    _: Operator,
    Query(q): Query<WebhooksQ>,
) -> Result<Json<Value>, OpError> {
    let org = wire::uuid(&q.organization_id, Entity::Organization)?;
    let all = crate::domain::webhooks::list(&s.pool, org).await?;
    Ok(Json(json!({
        "data": all.iter().map(|w| wire::webhook(w, org, None)).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptsQ {
    limit: Option<String>,
}

/// A webhook's delivery attempts: `{webhook_id, data: [...]}`, newest first.
pub async fn webhook_attempts(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
    Query(q): Query<AttemptsQ>,
) -> Result<Json<Value>, OpError> {
    let limit = match q.limit.as_deref() {
        None => 50,
        Some(t) => t
            .parse()
            .map_err(|_| DomainError::invalid("limit", "an integer from 1 to 200"))?,
    };
    let id = wire::uuid(&id, Entity::Webhook)?;
    let list = crate::domain::webhooks::attempts(&s.pool, id, limit).await?;
    Ok(Json(json!({
        "webhook_id": id,
        "data": list.iter().map(wire::webhook_attempt).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PixChargeReq {
    organization_id: String,
    amount_brl: String,
}

/// A PIX charge (a top-up of the organization's balance once paid).
pub async fn create_pix_charge(
    State(s): State<AdminState>,
    _: Operator,
    Body(r): Body<PixChargeReq>,
) -> Created {
    let org = wire::uuid(&r.organization_id, Entity::Organization)?;
    let amount = crate::domain::pix::parse_amount(&r.amount_brl)?;
    let c = crate::domain::pix::create(&s.pool, &s.pix, org, amount).await?;
    Ok((StatusCode::CREATED, Json(wire::pix_charge(&c))))
}

/// One PIX charge.
pub async fn get_pix_charge(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpError> {
    let id = id
        .parse()
        .map_err(|_| OpError::invalid("id", "not a valid PIX charge id"))?;
    match crate::domain::pix::get(&s.pool, id).await? {
        Some(c) => Ok(Json(wire::pix_charge(&c))),
        None => Err(OpError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "PIX charge not found",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentReq {
    title: String,
    severity: String,
    #[serde(default)]
    message: String,
}

/// Open an incident (listed by Tokia's public `GET /v1/incidents/active` until resolved).
pub async fn create_incident(
    State(s): State<AdminState>,
    _: Operator,
    Body(r): Body<IncidentReq>,
) -> Created {
    let i = crate::domain::incidents::create(&s.pool, &r.title, &r.severity, &r.message).await?;
    Ok((StatusCode::CREATED, Json(wire::incident(&i))))
}

/// Resolve an incident (again: the first resolution time stays).
pub async fn resolve_incident(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, OpError> {
    let not_found = || OpError::new(StatusCode::NOT_FOUND, "not_found", "incident not found");
    let id = id.parse().map_err(|_| not_found())?;
    match crate::domain::incidents::resolve(&s.pool, id).await? {
        Some(i) => Ok(Json(wire::incident(&i))),
        None => Err(not_found()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementQ {
    #[serde(default = "fifty")]
    limit: i64,
}

/// An organization's balance and latest ledger entries (`limit` 1 to 1000, default 50).
pub async fn ledger_statement(
    State(s): State<AdminState>,
    _: Operator,
    Path(id): Path<String>,
    Query(q): Query<StatementQ>,
) -> Result<Json<Value>, OpError> {
    let org = wire::uuid(&id, Entity::Organization)?;
    let limit = u32::try_from(q.limit)
        .ok()
        .filter(|l| (1..=1000).contains(l))
        .ok_or_else(|| OpError::invalid("limit", "1 to 1000"))?;
    let st = crate::domain::ledger::statement(&s.pool, org, limit).await?;
    Ok(Json(wire::ledger_statement(org, &st)))
}
