//! SabIA's handlers: parse the contract's input, call the domain, render with [`super::wire`].

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::wire::{self, Body, Query, SabiaError, User, done, ok};
use crate::admin::extract::AuthUser;
use crate::admin::{AdminState, rfc3339};
use crate::domain::accounts::{self, Email, Password, Purpose};
use crate::domain::keys::{self, KeyFormat, KeyStatus};
use crate::domain::orgs::{self, Cycle, Removal};
use crate::domain::roles::{Action, Role};
use crate::domain::usage::{self, Days, LogFilter, Page, Unit};
use crate::domain::{DomainError, plans, webhooks};

/// SabIA's session tokens last a day (`expiresIn: 86400`); the contract has no refresh.
const SESSION_TTL: Duration = Duration::from_secs(86_400);

type Answer = Result<Json<Value>, SabiaError>;
type Created = Result<(StatusCode, Json<Value>), SabiaError>;

fn required<'a>(v: &'a Option<String>, field: &str) -> Result<&'a str, SabiaError> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| SabiaError::validation(field, &format!("{field} é obrigatório")))
}

/// The team of a path, if the caller's role in it allows `action`: TEAM_NOT_FOUND for
/// malformed ids and teams that are not the caller's (existence is not revealed),
/// INSUFFICIENT_PERMISSIONS when the role does not allow it.
async fn team(s: &AdminState, u: &AuthUser, raw: &str, action: Action) -> Result<Uuid, SabiaError> {
    let team: Uuid = raw.parse().map_err(|_| SabiaError::team_not_found())?;
    orgs::authorize(&s.pool, u, team, action).await?;
    Ok(team)
}

fn key_id(k: &str) -> Result<i64, SabiaError> {
    k.parse().map_err(|_| SabiaError::key_not_found())
}

// ---------- auth

#[derive(Deserialize)]
pub struct RegisterReq {
    name: Option<String>,
    email: Option<String>,
    password: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    company: Option<String>,
}

pub async fn register(State(s): State<AdminState>, Body(r): Body<RegisterReq>) -> Created {
    let name = required(&r.name, "name")?;
    let email = required(&r.email, "email")?;
    let email_ok =
        Email::parse(email).map_err(|_| SabiaError::validation("email", "Email inválido"))?;
    let password = Password::parse(r.password.as_deref().unwrap_or("")).map_err(|_| {
        SabiaError::validation("password", "A senha deve ter de 8 a 256 caracteres")
    })?;
    if name.len() > orgs::MAX_NAME {
        return Err(DomainError::invalid("name", "1 to 200 characters").into());
    }
    accounts::check_contact(r.phone.as_deref(), r.company.as_deref())?;
    let (user, org) = accounts::register(&s.pool, &email_ok, &password, name, "team").await?;
    accounts::set_contact(&s.pool, user, r.phone.as_deref(), r.company.as_deref()).await?;
    accounts::send_one_time(
        &s.pool,
        user,
        Purpose::VerifyEmail,
        email,
        "Verifique seu email",
        "Seu código de verificação: ",
    )
    .await?;
    let token = accounts::issue_access(&s.pool, &s.jwt, user, org, SESSION_TTL).await?;
    let card = accounts::card(&s.pool, user).await?;
    Ok((
        StatusCode::CREATED,
        ok(
            Some("Usuário criado com sucesso"),
            json!({"user": wire::user(&card), "token": token}),
        ),
    ))
}

#[derive(Deserialize)]
pub struct LoginReq {
    email: Option<String>,
    password: Option<String>,
}

pub async fn login(
    State(s): State<AdminState>,
    headers: axum::http::HeaderMap,
    Body(r): Body<LoginReq>,
) -> Answer {
    let email = required(&r.email, "email")?;
    let password = match r.password.as_deref() {
        Some(p) if !p.is_empty() => p,
        _ => return Err(SabiaError::validation("password", "password é obrigatório")),
    };
    let ip = crate::admin::extract::client_ip(&headers);
    let (user, org) = accounts::login(&s.pool, email, password, ip).await?;
    let token = accounts::issue_access(&s.pool, &s.jwt, user, org, SESSION_TTL).await?;
    let mut u = wire::user(&accounts::card(&s.pool, user).await?);
    if let Value::Object(m) = &mut u {
        m.remove("createdAt");
        m.remove("emailVerified");
    }
    Ok(ok(
        Some("Login realizado com sucesso"),
        json!({"user": u, "token": token, "expiresIn": SESSION_TTL.as_secs()}),
    ))
}

#[derive(Deserialize)]
pub struct EmailReq {
    email: Option<String>,
}

/// Always the same answer, whether or not the email is registered (no account enumeration).
pub async fn forgot_password(State(s): State<AdminState>, Body(r): Body<EmailReq>) -> Answer {
    let email = required(&r.email, "email")?;
    accounts::forgot_password(
        &s.pool,
        email,
        "Recuperação de senha",
        "Seu código para redefinir a senha: ",
    )
    .await?;
    Ok(done("Email de recuperação enviado com sucesso"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResetReq {
    token: Option<String>,
    new_password: Option<String>,
}

pub async fn reset_password(State(s): State<AdminState>, Body(r): Body<ResetReq>) -> Answer {
    let token = required(&r.token, "token")?;
    let password = Password::parse(r.new_password.as_deref().unwrap_or("")).map_err(|_| {
        SabiaError::validation("newPassword", "A senha deve ter de 8 a 256 caracteres")
    })?;
    let user = accounts::consume_one_time(&s.pool, token, Purpose::ResetPassword)
        .await
        .map_err(|_| SabiaError::validation("token", "Token inválido ou expirado"))?;
    accounts::set_password(&s.pool, user, &password).await?;
    Ok(done("Senha redefinida com sucesso"))
}

#[derive(Deserialize)]
pub struct TokenReq {
    token: Option<String>,
}

pub async fn verify_email(State(s): State<AdminState>, Body(r): Body<TokenReq>) -> Answer {
    let token = required(&r.token, "token")?;
    accounts::verify_email(&s.pool, token)
        .await
        .map_err(|e| match e {
            DomainError::Unauthorized(_) => {
                SabiaError::validation("token", "Token inválido ou expirado")
            }
            e => e.into(),
        })?;
    Ok(done("Email verificado com sucesso"))
}

// ---------- teams

pub async fn list_teams(State(s): State<AdminState>, User(u): User) -> Answer {
    let data: Vec<Value> = orgs::teams_of(&s.pool, u.user_id)
        .await?
        .into_iter()
        .map(|t| {
            json!({"id": t.organization_id, "name": t.name, "plan": t.plan.unwrap_or_else(|| "Sandbox".into()),
                   "logo": t.logo_url, "role": wire::role_name(&t.role), "createdAt": rfc3339(t.created_at)})
        })
        .collect();
    Ok(ok(None, Value::Array(data)))
}

#[derive(Deserialize)]
pub struct TeamReq {
    name: Option<String>,
    #[serde(default)]
    plan: Option<String>,
}

pub async fn create_team(
    State(s): State<AdminState>,
    User(u): User,
    Body(r): Body<TeamReq>,
) -> Created {
    let name = required(&r.name, "name")?;
    let code = r.plan.as_deref().unwrap_or("sandbox").to_lowercase();
    let (id, created) = orgs::create_team(&s.pool, &u, name, &code).await?;
    Ok((
        StatusCode::CREATED,
        ok(
            Some("Time criado com sucesso"),
            json!({"id": id, "name": name, "plan": code, "logo": null, "role": "admin", "createdAt": rfc3339(created)}),
        ),
    ))
}

pub async fn team_detail(
    State(s): State<AdminState>,
    User(u): User,
    Path(raw): Path<String>,
) -> Answer {
    let team = team(&s, &u, &raw, Action::Read).await?;
    let d = orgs::detail(&s.pool, team).await?;
    // a team with no plan set is on Sandbox (as its list entry and its billing say)
    let plan = match plans::of_org(&s.pool, team).await? {
        Some(p) => Some(p),
        None => plans::get(&s.pool, "sandbox").await.ok(),
    };
    let members: Vec<Value> = d.members.iter().map(wire::member).collect();
    Ok(ok(
        None,
        json!({"id": team, "name": d.org.name, "plan": plan.as_ref().map(wire::plan),
               "members": members, "createdAt": rfc3339(d.org.created_at)}),
    ))
}

#[derive(Deserialize)]
pub struct MemberReq {
    email: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

pub async fn add_member(
    State(s): State<AdminState>,
    User(u): User,
    Path(raw): Path<String>,
    Body(r): Body<MemberReq>,
) -> Created {
    let team = team(&s, &u, &raw, Action::ManageMembers).await?;
    let email = required(&r.email, "email")?;
    let email =
        Email::parse(email).map_err(|_| SabiaError::validation("email", "Email inválido"))?;
    let role = match r.role.as_deref().unwrap_or("member") {
        r @ ("admin" | "member" | "viewer") => Role::parse(r)?,
        _ => {
            return Err(SabiaError::validation(
                "role",
                "Papel deve ser admin, member ou viewer",
            ));
        }
    };
    let m = orgs::add_member(&s.pool, &u, team, &email, role).await?;
    Ok((
        StatusCode::CREATED,
        ok(Some("Membro adicionado com sucesso"), wire::member(&m)),
    ))
}

pub async fn remove_member(
    State(s): State<AdminState>,
    User(u): User,
    Path((raw, user)): Path<(String, String)>,
) -> Answer {
    // membership first: a stranger learns nothing about the user id
    let team = team(&s, &u, &raw, Action::Read).await?;
    let target: Uuid = user.parse().map_err(|_| SabiaError::user_not_found())?;
    // admins remove anyone; anyone may leave
    let action = if target == u.user_id {
        Action::Leave
    } else {
        Action::ManageMembers
    };
    orgs::authorize(&s.pool, &u, team, action).await?;
    match orgs::remove_member(&s.pool, Some(u.user_id), team, target).await? {
        Removal::Done => Ok(done("Membro removido com sucesso")),
        Removal::NotMember => Err(SabiaError::user_not_found()),
        Removal::LastOwner => Err(SabiaError::validation(
            "userId",
            "O time precisa de ao menos um administrador",
        )),
    }
}

// ---------- plans and billing

pub async fn list_plans(State(s): State<AdminState>) -> Answer {
    let all = plans::list(&s.pool).await?;
    Ok(ok(None, Value::Array(all.iter().map(wire::plan).collect())))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanChange {
    plan: Option<String>,
    #[serde(default)]
    billing_cycle: Option<String>,
}

pub async fn change_plan(
    State(s): State<AdminState>,
    User(u): User,
    Path(raw): Path<String>,
    Body(r): Body<PlanChange>,
) -> Answer {
    let team = team(&s, &u, &raw, Action::ChangePlan).await?;
    let code = required(&r.plan, "plan")?.to_lowercase();
    let cycle = Cycle::parse(r.billing_cycle.as_deref().unwrap_or("monthly"))?;
    let changed = orgs::change_plan(&s.pool, &u, team, &code, cycle)
        .await?
        .ok_or_else(|| SabiaError::validation("plan", "Plano inexistente"))?;
    let (old, next) = (changed.old, changed.started + cycle.period());
    Ok(ok(
        Some("Plano alterado com sucesso"),
        json!({"teamId": team, "oldPlan": old.unwrap_or_else(|| "sandbox".into()), "newPlan": code,
               "billingCycle": cycle.as_str(), "nextBillingDate": rfc3339(next)}),
    ))
}

pub async fn billing(
    State(s): State<AdminState>,
    User(u): User,
    Path(raw): Path<String>,
) -> Answer {
    let team = team(&s, &u, &raw, Action::Read).await?;
    let b = plans::billing(&s.pool, team).await?;
    Ok(ok(
        None,
        json!({
            "currentPlan": b.plan.unwrap_or_else(|| "sandbox".into()),
            "billingCycle": b.cycle.as_str(),
            "nextBillingDate": rfc3339(b.next_billing),
            "amount": wire::brl(b.amount_brl_micros),
            "currency": "BRL",
            "paymentMethod": null,
            "usage": {"current": b.used, "limit": b.quota, "resetDate": rfc3339(b.resets_at)},
        }),
    ))
}

// ---------- team API keys

pub async fn list_keys(
    State(s): State<AdminState>,
    User(u): User,
    Path(raw): Path<String>,
) -> Answer {
    let team = team(&s, &u, &raw, Action::Read).await?;
    let all = keys::of_team(&s.pool, team).await?;
    Ok(ok(None, Value::Array(all.iter().map(wire::key).collect())))
}

#[derive(Deserialize)]
pub struct KeyReq {
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

pub async fn create_key(
    State(s): State<AdminState>,
    User(u): User,
    Path(raw): Path<String>,
    Body(r): Body<KeyReq>,
) -> Created {
    let team = team(&s, &u, &raw, Action::ManageKeys).await?;
    let name = required(&r.name, "name")?;
    let (row, plaintext) = keys::create_team_key(
        &s.pool,
        &u,
        team,
        KeyFormat::SABIA,
        name,
        r.description.as_deref(),
    )
    .await?;
    let mut v = wire::key(&row);
    v["key"] = Value::String(plaintext);
    Ok((
        StatusCode::CREATED,
        ok(Some("API Key criada com sucesso"), v),
    ))
}

pub async fn update_key(
    State(s): State<AdminState>,
    User(u): User,
    Path((raw, key)): Path<(String, String)>,
    Body(r): Body<KeyReq>,
) -> Answer {
    let team = team(&s, &u, &raw, Action::ManageKeys).await?;
    let id = key_id(&key)?;
    let row = keys::update_team_key(
        &s.pool,
        &u,
        team,
        id,
        r.name.as_deref(),
        r.description.as_deref(),
    )
    .await?;
    Ok(ok(Some("API Key atualizada com sucesso"), wire::key(&row)))
}

#[derive(Deserialize)]
pub struct StatusReq {
    status: Option<String>,
}

pub async fn key_status(
    State(s): State<AdminState>,
    User(u): User,
    Path((raw, key)): Path<(String, String)>,
    Body(r): Body<StatusReq>,
) -> Answer {
    let team = team(&s, &u, &raw, Action::ManageKeys).await?;
    let id = key_id(&key)?;
    let status = required(&r.status, "status")?;
    let to = match status {
        "active" => KeyStatus::Active,
        "inactive" | "disabled" => KeyStatus::Disabled,
        "revoked" => KeyStatus::Revoked,
        _ => {
            return Err(SabiaError::validation(
                "status",
                "Status deve ser active, inactive ou revoked",
            ));
        }
    };
    let updated = keys::set_team_key_status(&s.pool, &u, team, id, to).await?;
    Ok(ok(
        Some("Status da API Key alterado com sucesso"),
        json!({"id": id, "status": status, "updatedAt": rfc3339(updated)}),
    ))
}

pub async fn delete_key(
    State(s): State<AdminState>,
    User(u): User,
    Path((raw, key)): Path<(String, String)>,
) -> Answer {
    let team = team(&s, &u, &raw, Action::ManageKeys).await?;
    let id = key_id(&key)?;
    keys::delete_team_key(&s.pool, &u, team, id).await?;
    Ok(done("API Key removida com sucesso"))
}

// ---------- dashboard and usage

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeriodQ {
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    group_by: Option<String>,
}

/// The contract's periods: the name and its days.
fn period_days(p: Option<&str>, allowed: &[&str]) -> Result<(String, Days), SabiaError> {
    let p = p.unwrap_or("30d");
    if !allowed.contains(&p) {
        return Err(SabiaError::validation(
            "period",
            &format!("period deve ser um de {}", allowed.join(", ")),
        ));
    }
    let days = match p {
        "7d" => 7,
        "90d" => 90,
        "1y" => 365,
        _ => 30,
    };
    Ok((p.to_string(), Days::new(days)?))
}

pub async fn dashboard(
    State(s): State<AdminState>,
    User(u): User,
    Path(raw): Path<String>,
    Query(q): Query<PeriodQ>,
) -> Answer {
    let team = team(&s, &u, &raw, Action::Read).await?;
    let (_, days) = period_days(q.period.as_deref(), &["7d", "30d", "90d"])?;
    let rows = usage::per_service(&s.pool, team, days, Unit::Day).await?;
    let total: i64 = rows.iter().map(|r| r.requests).sum();
    let total_cost: i64 = rows.iter().map(|r| r.billed_brl_micros).sum();
    let mut chart: Vec<Value> = Vec::new();
    for r in &rows {
        if chart.last().is_none_or(|c| c["date"] != r.bucket.as_str()) {
            chart.push(json!({"date": r.bucket, "ocr": 0, "recognition": 0}));
        }
        if let Some(c) = chart.last_mut()
            && (r.service == "ocr" || r.service == "recognition")
        {
            c[r.service.as_str()] = json!(r.requests);
        }
    }
    let active_keys = keys::active_count(&s.pool, team).await?;
    let members = orgs::member_count(&s.pool, team).await?;
    let b = plans::billing(&s.pool, team).await?;
    let activity: Vec<Value> = usage::latest(&s.pool, team, 10)
        .await?
        .into_iter()
        .map(|e| {
            json!({
                "id": e.usage_event_id, "type": "api_call",
                "description": format!("API Key '{}' utilizada para {}", e.key_name.unwrap_or_default(), wire::service_label(&e.route)),
                "timestamp": rfc3339(e.created_at), "apiKey": e.key_prefix.map(|p| format!("{p}...")),
                "endpoint": wire::endpoint(&e.route),
            })
        })
        .collect();
    let percentage = b
        .quota
        .filter(|q| *q > 0)
        .map(|q| b.used * 100 / q)
        .unwrap_or(0);
    Ok(ok(
        None,
        json!({
            "summary": {"totalRequests": total, "totalCost": wire::brl(total_cost), "activeApiKeys": active_keys, "teamMembers": members},
            "usage": {"current": b.used, "limit": b.quota, "percentage": percentage, "resetDate": rfc3339(b.resets_at)},
            "chartData": chart,
            "recentActivity": activity,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogsQ {
    #[serde(default)]
    page: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    start_date: Option<String>,
    #[serde(default)]
    end_date: Option<String>,
    #[serde(default)]
    api: Option<String>,
}

fn parse_date(v: &Option<String>, field: &str) -> Result<Option<time::OffsetDateTime>, SabiaError> {
    let Some(v) = v else { return Ok(None) };
    if let Ok(t) = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339) {
        return Ok(Some(t));
    }
    // a plain date means that day from midnight UTC
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(v, &fmt)
        .map(|d| Some(d.midnight().assume_utc()))
        .map_err(|_| SabiaError::validation(field, "Data ISO 8601 inválida"))
}

pub async fn usage_logs(
    State(s): State<AdminState>,
    User(u): User,
    Path(raw): Path<String>,
    Query(q): Query<LogsQ>,
) -> Answer {
    let team = team(&s, &u, &raw, Action::Read).await?;
    let page = q.page.unwrap_or(1);
    let limit = q.limit.unwrap_or(50);
    if page < 1 {
        return Err(SabiaError::validation("page", "page deve ser >= 1"));
    }
    if !(1..=100).contains(&limit) {
        return Err(SabiaError::validation(
            "limit",
            "limit deve estar entre 1 e 100",
        ));
    }
    let page =
        Page::new(page, limit).map_err(|_| SabiaError::validation("page", "page grande demais"))?;
    let filter = LogFilter {
        start: parse_date(&q.start_date, "startDate")?,
        end: parse_date(&q.end_date, "endDate")?,
        route: match q.api.as_deref() {
            None => None,
            Some(a @ ("ocr" | "recognition")) => Some(a),
            Some(_) => {
                return Err(SabiaError::validation(
                    "api",
                    "api deve ser ocr ou recognition",
                ));
            }
        },
    };
    let (rows, total) = usage::logs(&s.pool, team, &filter, page).await?;
    let logs: Vec<Value> = rows
        .into_iter()
        .map(|e| {
            json!({
                "id": e.usage_event_id, "date": rfc3339(e.created_at), "api": e.route, "count": 1,
                "apiKey": e.key_prefix.map(|p| format!("{p}...")), "endpoint": wire::endpoint(&e.route),
                "responseTime": e.latency_ms,
                "status": if (200..400).contains(&e.status) { "success" } else { "error" },
            })
        })
        .collect();
    Ok(ok(
        None,
        json!({
            "logs": logs,
            "pagination": {"page": page.page, "limit": page.per_page, "total": total, "totalPages": page.pages(total)},
        }),
    ))
}

/// One bucket of the stats: per service and in total, requests and billed micro-BRL summed as
/// integers (rendered once, exactly).
#[derive(Default)]
struct StatBucket {
    date: String,
    /// ocr, recognition: (requests, micro-BRL, latency sum)
    services: [(i64, i64, i64); 2],
    total: (i64, i64),
}

pub async fn usage_stats(
    State(s): State<AdminState>,
    User(u): User,
    Path(raw): Path<String>,
    Query(q): Query<PeriodQ>,
) -> Answer {
    let team = team(&s, &u, &raw, Action::Read).await?;
    let (period, days) = period_days(q.period.as_deref(), &["7d", "30d", "90d", "1y"])?;
    let unit = Unit::parse(q.group_by.as_deref().unwrap_or("day"))?;
    let rows = usage::per_service(&s.pool, team, days, unit).await?;
    let mut buckets: Vec<StatBucket> = Vec::new();
    let (mut total, mut total_cost) = (0i64, 0i64);
    for r in &rows {
        total += r.requests;
        total_cost += r.billed_brl_micros;
        if buckets.last().is_none_or(|b| b.date != r.bucket) {
            buckets.push(StatBucket {
                date: r.bucket.clone(),
                ..StatBucket::default()
            });
        }
        if let Some(b) = buckets.last_mut() {
            let slot = match r.service.as_str() {
                "ocr" => Some(0),
                "recognition" => Some(1),
                _ => None,
            };
            if let Some(i) = slot {
                b.services[i].0 += r.requests;
                b.services[i].1 += r.billed_brl_micros;
                b.services[i].2 += r.latency_ms_sum;
            }
            b.total.0 += r.requests;
            b.total.1 += r.billed_brl_micros;
        }
    }
    let service = |(requests, cost, latency): (i64, i64, i64)| {
        json!({"requests": requests, "cost": wire::brl(cost),
               "avgResponseTime": if requests > 0 { latency / requests } else { 0 }})
    };
    let stats: Vec<Value> = buckets
        .into_iter()
        .map(|b| {
            json!({"date": b.date, "ocr": service(b.services[0]), "recognition": service(b.services[1]),
                   "total": {"requests": b.total.0, "cost": wire::brl(b.total.1)}})
        })
        .collect();
    let d = i64::from(days.get());
    Ok(ok(
        None,
        json!({
            "period": period,
            "groupBy": unit.as_str(),
            "stats": stats,
            "summary": {"totalRequests": total, "totalCost": wire::brl(total_cost), "avgDailyRequests": total / d,
                    "avgDailyCost": wire::brl(total_cost / d)},
        }),
    ))
}

// ---------- webhooks

#[derive(Deserialize)]
pub struct WebhookReq {
    url: Option<String>,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    secret: Option<String>,
}

pub async fn create_webhook(
    State(s): State<AdminState>,
    User(u): User,
    Path(raw): Path<String>,
    Body(r): Body<WebhookReq>,
) -> Created {
    let team = team(&s, &u, &raw, Action::ManageWebhooks).await?;
    let url = required(&r.url, "url")?.to_string();
    let w = webhooks::create(
        &s.webhook_sender(),
        Some(u.user_id),
        team,
        webhooks::NewWebhook {
            url,
            events: r.events,
            secret: r.secret,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        ok(Some("Webhook configurado com sucesso"), wire::webhook(&w)),
    ))
}

pub async fn list_webhooks(
    State(s): State<AdminState>,
    User(u): User,
    Path(raw): Path<String>,
) -> Answer {
    let team = team(&s, &u, &raw, Action::Read).await?;
    let all = webhooks::list(&s.pool, team).await?;
    Ok(ok(
        None,
        Value::Array(all.iter().map(wire::webhook).collect()),
    ))
}
