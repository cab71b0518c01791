//! MaxAI's handlers: parse the contract's input, call the domain, render with [`super::wire`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{self, Body, Customer, MaxError, MaybeCustomer, Query, path_id};
use crate::admin::AdminState;
use crate::admin::extract::bearer;
use crate::domain::accounts::{self, Email, Password, ProfileChange, Session};
use crate::domain::keys::{self, KeyFormat, NewKey};
use crate::domain::templates::{self, RunOutcome};
use crate::domain::usage::{self, Days, Page, Window};
use crate::domain::{DomainError, Unauthorized, models};

type Answer = Result<Json<Value>, MaxError>;

pub async fn health(State(s): State<AdminState>) -> Json<Value> {
    Json(json!({
        "service": "catraca-admin",
        "status": "ok",
        "timestamp": wire::now_rfc3339(),
        "uptime_seconds": s.started.elapsed().as_secs_f64(),
    }))
}

/// The Socket.IO layer's state: clients connected to this node, whether the feed is live
/// (`status` is `degraded` while its LISTEN connection is down, and without the layer).
pub async fn realtime_health(
    State(s): State<AdminState>,
    live: Option<axum::Extension<super::live::Live>>,
) -> Json<Value> {
    let mut v = json!({
        "service": "catraca-realtime",
        "status": "degraded",
        "timestamp": wire::now_rfc3339(),
        "uptime_seconds": s.started.elapsed().as_secs_f64(),
        "connected_clients": 0,
    });
    if let (Some(axum::Extension(live)), Some(m)) = (live, v.as_object_mut())
        && let Value::Object(extra) = live.health()
    {
        m.extend(extra);
    }
    Json(v)
}

#[derive(Deserialize)]
pub struct RegisterReq {
    email: String,
    password: String,
    name: String,
}

pub async fn register(
    State(s): State<AdminState>,
    Body(r): Body<RegisterReq>,
) -> Result<(StatusCode, Json<Value>), MaxError> {
    let email = Email::parse(&r.email)?;
    let password = Password::parse(&r.password)?;
    let name = r.name.trim();
    if name.is_empty() || r.name.len() > 200 {
        return Err(DomainError::invalid("name", "1 to 200 characters").into());
    }
    let (user, org) = accounts::register(&s.pool, &email, &password, name, "customer").await?;
    let session = accounts::start_session(&s.pool, &s.jwt, user, org).await?;
    Ok((StatusCode::CREATED, Json(token_pair(&s, &session).await?)))
}

async fn token_pair(s: &AdminState, session: &Session) -> Result<Value, MaxError> {
    let p = accounts::profile(&s.pool, session.user_id, session.organization_id).await?;
    Ok(json!({
        "access_token": session.access_token,
        "refresh_token": session.refresh_token,
        "customer": wire::customer(&p),
    }))
}

#[derive(Deserialize)]
pub struct LoginReq {
    email: String,
    password: String,
    #[serde(default)]
    #[allow(dead_code)]
    totp: Option<String>,
}

pub async fn login(
    State(s): State<AdminState>,
    headers: axum::http::HeaderMap,
    Body(r): Body<LoginReq>,
) -> Answer {
    let ip = crate::admin::extract::client_ip(&headers);
    let (user, org) = accounts::login(&s.pool, &r.email, &r.password, ip).await?;
    let session = accounts::start_session(&s.pool, &s.jwt, user, org).await?;
    Ok(Json(token_pair(&s, &session).await?))
}

#[derive(Deserialize, Default)]
struct RefreshReq {
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The refresh token: from a `{"refresh_token"}` body, else the Bearer token (as the contract's
/// security says). `strict`: a malformed body is a 400 rather than ignored.
async fn refresh_token_of(req: axum::extract::Request, strict: bool) -> Result<String, MaxError> {
    let (parts, body) = req.into_parts();
    let from_header = bearer(&parts).map(str::to_string);
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(|_| MaxError::bad_request("body too large"))?;
    let from_body = match serde_json::from_slice::<RefreshReq>(&bytes) {
        _ if bytes.is_empty() => None,
        Ok(r) => r.refresh_token,
        Err(e) if strict => return Err(MaxError::bad_request(e.to_string())),
        Err(_) => None,
    };
    from_body
        .or(from_header)
        .ok_or(DomainError::Unauthorized(Unauthorized::BadToken).into())
}

pub async fn refresh(State(s): State<AdminState>, req: axum::extract::Request) -> Answer {
    let token = refresh_token_of(req, true).await?;
    let session = accounts::rotate(&s.pool, &s.jwt, &token).await?;
    Ok(Json(token_pair(&s, &session).await?))
}

/// Revoke the refresh token's family (Bearer header or `{"refresh_token"}` body). Idempotent.
pub async fn logout(State(s): State<AdminState>, req: axum::extract::Request) -> Answer {
    let token = refresh_token_of(req, false).await?;
    accounts::logout(&s.pool, &token).await?;
    Ok(Json(json!({"success": true})))
}

pub async fn profile(State(s): State<AdminState>, Customer(u): Customer) -> Answer {
    let p = accounts::profile(&s.pool, u.user_id, u.organization_id).await?;
    Ok(Json(wire::customer(&p)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    company: Option<String>,
    #[serde(default)]
    phone: Option<String>,
}

pub async fn update_profile(
    State(s): State<AdminState>,
    Customer(u): Customer,
    Body(p): Body<ProfileUpdate>,
) -> Answer {
    let change = ProfileChange {
        name: p.name,
        company: p.company,
        phone: p.phone,
    };
    let p = accounts::update_profile(&s.pool, &u, change).await?;
    Ok(Json(wire::customer(&p)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyCreate {
    name: String,
    #[serde(default)]
    rate_limit_rpm: Option<i64>,
    #[serde(default)]
    rate_limit_rpd: Option<i64>,
    #[serde(default)]
    budget: Option<serde_json::Number>,
}

pub async fn create_key(
    State(s): State<AdminState>,
    Customer(u): Customer,
    Body(k): Body<KeyCreate>,
) -> Result<(StatusCode, Json<Value>), MaxError> {
    if k.name.trim().is_empty() || k.name.len() > 200 {
        return Err(DomainError::invalid("name", "1 to 200 characters").into());
    }
    let new = NewKey {
        rpm: keys::limit(k.rate_limit_rpm, "rate_limit_rpm")?,
        rpd: keys::limit(k.rate_limit_rpd, "rate_limit_rpd")?,
        // the JSON number as written ("10.5"), parsed exactly into micro-dollars
        budget: match &k.budget {
            None => None,
            Some(n) => Some(crate::domain::money::Micros(
                crate::config::resolve::parse_decimal_micros(&n.to_string())
                    .map_err(|e| MaxError::bad_request(format!("budget: {e}")))?,
            )),
        },
        name: k.name,
    };
    let (view, plaintext) = keys::create(&s.pool, &u, KeyFormat::MAXAI, new).await?;
    let mut v = wire::key(&view);
    v["key"] = Value::String(plaintext);
    Ok((StatusCode::CREATED, Json(v)))
}

pub async fn list_keys(State(s): State<AdminState>, Customer(u): Customer) -> Answer {
    let keys = keys::list(&s.pool, u.organization_id).await?;
    Ok(Json(
        json!({"keys": keys.iter().map(wire::key).collect::<Vec<_>>()}),
    ))
}

pub async fn revoke_key(
    State(s): State<AdminState>,
    Customer(u): Customer,
    Path(key_id): Path<String>,
) -> Answer {
    let id = path_id(&key_id, "key_id")?;
    keys::revoke(&s.pool, &u, id).await?;
    Ok(Json(
        json!({"success": true, "id": id, "status": "revoked"}),
    ))
}

#[derive(Deserialize)]
pub struct DaysQ {
    #[serde(default = "thirty")]
    days: i64,
}

fn thirty() -> i64 {
    30
}

pub async fn usage_stats(
    State(s): State<AdminState>,
    Customer(u): Customer,
    Query(q): Query<DaysQ>,
) -> Answer {
    let days = Days::new(q.days)?;
    let st = usage::stats(&s.pool, u.organization_id, days).await?;
    let t = &st.totals;
    Ok(Json(json!({
        "days": days.get(),
        "total_requests": t.requests,
        "successful_requests": t.successful,
        "failed_requests": t.failed,
        "success_rate": if t.requests > 0 { t.successful as f64 / t.requests as f64 } else { 0.0 },
        "tokens_in": t.prompt_tokens,
        "tokens_out": t.completion_tokens,
        "total_tokens": t.prompt_tokens + t.completion_tokens,
        "total_cost": wire::usd(t.cost_usd_micros),
        "avg_latency_ms": t.avg_latency_ms,
        "daily": st.daily.iter().map(|b| wire::bucket(b, "date")).collect::<Vec<_>>(),
        "by_model": st.by_model.iter().map(|b| wire::bucket(b, "model")).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
pub struct PageQ {
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

pub async fn usage_recent(
    State(s): State<AdminState>,
    Customer(u): Customer,
    Query(q): Query<PageQ>,
) -> Answer {
    let page = Page::new(q.page, q.per_page)?;
    let (rows, total) = usage::recent(&s.pool, u.organization_id, page).await?;
    Ok(Json(json!({
        "page": page.page,
        "per_page": page.per_page,
        "total": total,
        "pages": page.pages(total),
        "logs": rows.into_iter().map(wire::log_line).collect::<Vec<_>>(),
    })))
}

pub async fn models(State(s): State<AdminState>) -> Answer {
    let models: Vec<Value> = models::active(&s.pool)
        .await?
        .into_iter()
        .map(|m| {
            json!({
                "id": m.name,
                "name": m.name,
                "category": m.category,
                "provider": m.owned_by,
                "pricing": {
                    "input_per_1m": m.input_usd_micros_per_1m.map(wire::usd),
                    "output_per_1m": m.output_usd_micros_per_1m.map(wire::usd),
                    "currency": "USD",
                },
                "context_window": m.context_window,
            })
        })
        .collect();
    Ok(Json(json!({"count": models.len(), "models": models})))
}

#[derive(Deserialize)]
pub struct WindowQ {
    #[serde(default = "day_window")]
    window: String,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    top: Option<i64>,
}

fn day_window() -> String {
    "24h".into()
}

pub async fn model_metrics(State(s): State<AdminState>, Query(q): Query<WindowQ>) -> Answer {
    let window = Window::parse(&q.window)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(MaxError::bad_request("limit: between 1 and 500"));
    }
    let rows = usage::model_metrics(&s.pool, window, limit).await?;
    Ok(Json(json!({
        "window": q.window,
        "timestamp": wire::now_rfc3339(),
        "models": rows.iter().map(wire::metric).collect::<Vec<_>>(),
    })))
}

pub async fn leaderboards(State(s): State<AdminState>, Query(q): Query<WindowQ>) -> Answer {
    let window = Window::parse(&q.window)?;
    let top = q.top.unwrap_or(10);
    if !(1..=100).contains(&top) {
        return Err(MaxError::bad_request("top: between 1 and 100"));
    }
    let rows = usage::model_metrics(&s.pool, window, 1000).await?;
    let mut ranked: Vec<Value> = rows.iter().map(wire::metric).collect();
    let board = |ranked: &mut Vec<Value>, key: &str, ascending: bool| -> Vec<Value> {
        ranked.sort_by(|a, b| {
            let (x, y) = (
                a[key].as_f64().unwrap_or(0.0),
                b[key].as_f64().unwrap_or(0.0),
            );
            let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
            if ascending { o } else { o.reverse() }
        });
        ranked
            .iter()
            .take(top as usize)
            .enumerate()
            .map(|(i, m)| json!({"rank": i + 1, "model": m["model"], "value": m[key]}))
            .collect()
    };
    Ok(Json(json!({
        "window": q.window,
        "timestamp": wire::now_rfc3339(),
        "by_volume": board(&mut ranked, "requests", false),
        "by_latency": board(&mut ranked, "avg_latency_ms", true),
        "by_cost": board(&mut ranked, "total_cost", false),
        "by_tokens": board(&mut ranked, "total_tokens", false),
    })))
}

pub async fn list_templates(
    State(s): State<AdminState>,
    MaybeCustomer(u): MaybeCustomer,
) -> Answer {
    let rows = templates::list(&s.pool, u.map(|u| u.organization_id)).await?;
    Ok(Json(
        json!({"count": rows.len(), "templates": rows.iter().map(wire::template).collect::<Vec<_>>()}),
    ))
}

pub async fn get_template(
    State(s): State<AdminState>,
    MaybeCustomer(u): MaybeCustomer,
    Path(id): Path<String>,
) -> Answer {
    let id = path_id(&id, "template_id")?;
    let t = templates::get(&s.pool, id, u.map(|u| u.organization_id)).await?;
    Ok(Json(wire::template(&t)))
}

#[derive(Deserialize, Default)]
pub struct RenderReq {
    #[serde(default)]
    variables: serde_json::Map<String, Value>,
    #[serde(default)]
    model: Option<String>,
}

pub async fn render_template(
    State(s): State<AdminState>,
    MaybeCustomer(u): MaybeCustomer,
    Path(id): Path<String>,
    Body(r): Body<RenderReq>,
) -> Answer {
    let id = path_id(&id, "template_id")?;
    let t = templates::get(&s.pool, id, u.map(|u| u.organization_id)).await?;
    let out = templates::render_chat(&t, &r.variables, r.model)?;
    Ok(Json(
        json!({"template_id": t.template_id, "model": out.model, "messages": out.messages, "parameters": t.parameters}),
    ))
}

#[derive(Deserialize)]
pub struct RunReq {
    api_key: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    variables: serde_json::Map<String, Value>,
}

/// Render, then call the gateway with the caller's key exactly as a client would.
pub async fn run_template(
    State(s): State<AdminState>,
    Customer(u): Customer,
    Path(id): Path<String>,
    Body(r): Body<RunReq>,
) -> Result<Response, MaxError> {
    let id = path_id(&id, "template_id")?;
    let t = templates::get(&s.pool, id, Some(u.organization_id)).await?;
    let key = templates::run_key(&r.api_key)?;
    let rendered = templates::render_chat(&t, &r.variables, r.model)?;
    let out = templates::run(
        &s.pool,
        &s.http,
        s.gateway_url.as_deref(),
        &t,
        key,
        &rendered,
    )
    .await?;
    match out {
        // the gateway's verdict (401, 402, 429, ...) reaches the caller with its status
        RunOutcome::Refused(status, body) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            Ok((code, Json(body)).into_response())
        }
        RunOutcome::Done(out) => {
            let content = out
                .pointer("/choices/0/message/content")
                .cloned()
                .unwrap_or(Value::Null);
            Ok(Json(json!({
                "template_id": t.template_id,
                "model": rendered.model,
                "output": content,
                "usage": out.get("usage").cloned().unwrap_or(Value::Null),
                "response": out,
            }))
            .into_response())
        }
    }
}
