//! The MaxAI surface (`../shared/seeds/maxai-openapi.json`): paths under `/api/`, errors as
//! `{"error": "...", "details": "..."}`, integer key ids, USD amounts as JSON numbers.
//!
//! Every path of the contract is mounted: health, auth (register, login, refresh), customer
//! profile, API keys, usage stats and recent, model catalog, metrics and leaderboards,
//! templates (list, detail, render, run). `/v1/*` is the gateway's own.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::auth::{self, AuthError};
use super::extract::{AuthUser, bearer};
use super::openapi::Api;
use super::{AdminState, rfc3339, valid_email};

/// MaxAI's routes.
pub fn api() -> Api<AdminState> {
    Api::new("maxai")
        .route(
            "GET",
            "/api/health",
            "Service liveness probe",
            false,
            get(health),
        )
        .route(
            "GET",
            "/api/realtime/health",
            "WebSocket layer health",
            false,
            get(realtime_health),
        )
        .route(
            "POST",
            "/api/auth/register",
            "Create a new customer account",
            false,
            post(register),
        )
        .route(
            "POST",
            "/api/auth/login",
            "Login with email + password",
            false,
            post(login),
        )
        .route(
            "POST",
            "/api/auth/refresh",
            "Refresh the access token",
            true,
            post(refresh),
        )
        // beyond the seed: ending a session and "who am I", which every dashboard needs
        .route(
            "POST",
            "/api/auth/logout",
            "End the session of a refresh token (catraca extension)",
            true,
            post(logout),
        )
        .route(
            "GET",
            "/api/auth/me",
            "The logged-in customer (catraca extension)",
            true,
            get(profile),
        )
        .route(
            "GET",
            "/api/customer/profile",
            "Get the authenticated customer's profile",
            true,
            get(profile),
        )
        .route(
            "PUT",
            "/api/customer/profile",
            "Update the authenticated customer's profile",
            true,
            put(update_profile),
        )
        .route(
            "GET",
            "/api/keys",
            "List the caller's API keys",
            true,
            get(list_keys),
        )
        .route(
            "POST",
            "/api/keys",
            "Create a new API key (returns plaintext once)",
            true,
            post(create_key),
        )
        .route(
            "DELETE",
            "/api/keys/{key_id}",
            "Revoke an API key",
            true,
            delete(revoke_key),
        )
        .route(
            "GET",
            "/api/usage/stats",
            "Aggregate usage stats for the caller",
            true,
            get(usage_stats),
        )
        .route(
            "GET",
            "/api/usage/recent",
            "Recent request logs (paginated)",
            true,
            get(usage_recent),
        )
        .route(
            "GET",
            "/api/models",
            "Dashboard model catalog (with pricing)",
            false,
            get(models),
        )
        .route(
            "GET",
            "/api/models/metrics",
            "Per-model performance metrics",
            false,
            get(model_metrics),
        )
        .route(
            "GET",
            "/api/models/leaderboards",
            "Top models by volume / latency / cost / tokens",
            false,
            get(leaderboards),
        )
        .route(
            "GET",
            "/api/templates",
            "List built-in + caller's personal templates",
            false,
            get(list_templates),
        )
        .route(
            "GET",
            "/api/templates/{template_id}",
            "Template detail",
            false,
            get(get_template),
        )
        .route(
            "POST",
            "/api/templates/{template_id}/render",
            "Preview rendered messages",
            false,
            post(render_template),
        )
        .route(
            "POST",
            "/api/templates/{template_id}/run",
            "Execute template against the gateway",
            true,
            post(run_template),
        )
}

/// MaxAI's error: status plus `{"error", "details"}`.
#[derive(Debug)]
pub struct MaxError {
    status: StatusCode,
    error: &'static str,
    details: Option<String>,
}

impl MaxError {
    fn bad_request(details: impl Into<String>) -> Self {
        MaxError {
            status: StatusCode::BAD_REQUEST,
            error: "validation_error",
            details: Some(details.into()),
        }
    }

    fn not_found() -> Self {
        MaxError {
            status: StatusCode::NOT_FOUND,
            error: "not_found",
            details: None,
        }
    }
}

impl IntoResponse for MaxError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.error});
        if let Some(d) = self.details {
            body["details"] = Value::String(d);
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<AuthError> for MaxError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::BadCredentials => MaxError {
                status: StatusCode::UNAUTHORIZED,
                error: "invalid_credentials",
                details: None,
            },
            AuthError::BadToken | AuthError::Reused => MaxError {
                status: StatusCode::UNAUTHORIZED,
                error: "unauthorized",
                details: Some(e.to_string()),
            },
            AuthError::EmailTaken => MaxError::bad_request("email already registered"),
            AuthError::Db(err) => {
                tracing::error!(error = %err, "database error");
                MaxError::internal()
            }
            AuthError::Hash => MaxError::internal(),
        }
    }
}

impl From<sqlx::Error> for MaxError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "database error");
        MaxError::internal()
    }
}

impl MaxError {
    fn internal() -> Self {
        MaxError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "internal_error",
            details: None,
        }
    }
}

/// A logged-in customer (the MaxAI name for a user and their organization).
pub struct Customer(pub AuthUser);

impl FromRequestParts<AdminState> for Customer {
    type Rejection = MaxError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, MaxError> {
        Ok(Customer(AuthUser::from_parts(parts, state).await?))
    }
}

/// JSON body with MaxAI's 400 on anything malformed.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = MaxError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, MaxError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(MaxError::bad_request(e.body_text())),
        }
    }
}

async fn health(State(s): State<AdminState>) -> Json<Value> {
    Json(json!({
        "service": "catraca-admin",
        "status": "ok",
        "timestamp": now_rfc3339(),
        "uptime_seconds": s.started.elapsed().as_secs_f64(),
    }))
}

async fn realtime_health(State(s): State<AdminState>) -> Json<Value> {
    Json(json!({
        "service": "catraca-realtime",
        "status": "ok",
        "timestamp": now_rfc3339(),
        "uptime_seconds": s.started.elapsed().as_secs_f64(),
    }))
}

fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

#[derive(Deserialize)]
struct RegisterReq {
    email: String,
    password: String,
    name: String,
}

async fn register(
    State(s): State<AdminState>,
    Body(r): Body<RegisterReq>,
) -> Result<(StatusCode, Json<Value>), MaxError> {
    if !valid_email(&r.email) {
        return Err(MaxError::bad_request("email: not a valid address"));
    }
    if r.password.chars().count() < 8 {
        return Err(MaxError::bad_request("password: at least 8 characters"));
    }
    if r.name.trim().is_empty() || r.name.len() > 200 {
        return Err(MaxError::bad_request("name: 1 to 200 characters"));
    }
    let (user, org) = auth::register(
        &s.pool,
        r.email.trim(),
        &r.password,
        r.name.trim(),
        "customer",
    )
    .await?;
    let session = auth::start_session(&s.pool, &s.jwt, user, org).await?;
    Ok((StatusCode::CREATED, Json(token_pair(&s, &session).await?)))
}

async fn token_pair(s: &AdminState, session: &auth::Session) -> Result<Value, MaxError> {
    Ok(json!({
        "access_token": session.access_token,
        "refresh_token": session.refresh_token,
        "customer": customer_json(s, session.user_id, session.organization_id).await?,
    }))
}

/// email, name, company, phone, created_at
type UserRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    time::OffsetDateTime,
);

async fn customer_json(s: &AdminState, user: Uuid, org: Uuid) -> Result<Value, MaxError> {
    let row: Option<UserRow> = sqlx::query_as(
        "SELECT email, name, company, phone, created_at FROM app_user WHERE user_id = $1",
    )
    .bind(user)
    .fetch_optional(&s.pool)
    .await?;
    let (email, name, company, phone, created) = row.ok_or_else(MaxError::not_found)?;
    Ok(json!({
        "id": user,
        "organization_id": org,
        "email": email,
        "name": name,
        "company": company,
        "phone": phone,
        "created_at": rfc3339(created),
    }))
}

#[derive(Deserialize)]
struct LoginReq {
    email: String,
    password: String,
    #[serde(default)]
    #[allow(dead_code)]
    totp: Option<String>,
}

async fn login(
    State(s): State<AdminState>,
    Body(r): Body<LoginReq>,
) -> Result<Json<Value>, MaxError> {
    let (user, org) = auth::login(&s.pool, &r.email, &r.password).await?;
    let session = auth::start_session(&s.pool, &s.jwt, user, org).await?;
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
        .ok_or(MaxError::from(AuthError::BadToken))
}

async fn refresh(
    State(s): State<AdminState>,
    req: axum::extract::Request,
) -> Result<Json<Value>, MaxError> {
    let token = refresh_token_of(req, true).await?;
    let session = auth::rotate(&s.pool, &s.jwt, &token).await?;
    Ok(Json(token_pair(&s, &session).await?))
}

/// Revoke the refresh token's family (Bearer header or `{"refresh_token"}` body). Idempotent.
async fn logout(
    State(s): State<AdminState>,
    req: axum::extract::Request,
) -> Result<Json<Value>, MaxError> {
    let token = refresh_token_of(req, false).await?;
    auth::logout(&s.pool, &token).await?;
    Ok(Json(json!({"success": true})))
}

async fn profile(
    State(s): State<AdminState>,
    Customer(u): Customer,
) -> Result<Json<Value>, MaxError> {
    Ok(Json(customer_json(&s, u.user_id, u.organization_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileUpdate {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    company: Option<String>,
    #[serde(default)]
    phone: Option<String>,
}

async fn update_profile(
    State(s): State<AdminState>,
    Customer(u): Customer,
    Body(p): Body<ProfileUpdate>,
) -> Result<Json<Value>, MaxError> {
    if let Some(n) = &p.name
        && (n.trim().is_empty() || n.len() > 200)
    {
        return Err(MaxError::bad_request("name: 1 to 200 characters"));
    }
    sqlx::query(
        "UPDATE app_user SET name = coalesce($2, name), company = coalesce($3, company), phone = coalesce($4, phone)
         WHERE user_id = $1",
    )
    .bind(u.user_id)
    .bind(p.name.as_deref().map(str::trim))
    .bind(p.company)
    .bind(p.phone)
    .execute(&s.pool)
    .await?;
    Ok(Json(customer_json(&s, u.user_id, u.organization_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyCreate {
    name: String,
    #[serde(default)]
    rate_limit_rpm: Option<i64>,
    #[serde(default)]
    rate_limit_rpd: Option<i64>,
    #[serde(default)]
    budget: Option<serde_json::Number>,
}

/// A limit of 0 means none (the contract's minimum is 0); stored as NULL.
fn limit(v: Option<i64>, field: &str) -> Result<Option<i32>, MaxError> {
    match v {
        None | Some(0) => Ok(None),
        Some(n) if n < 0 || n > i64::from(i32::MAX) => Err(MaxError::bad_request(format!(
            "{field}: must be between 0 and {}",
            i32::MAX
        ))),
        Some(n) => Ok(Some(n as i32)),
    }
}

async fn create_key(
    State(s): State<AdminState>,
    Customer(u): Customer,
    Body(k): Body<KeyCreate>,
) -> Result<(StatusCode, Json<Value>), MaxError> {
    if k.name.trim().is_empty() || k.name.len() > 200 {
        return Err(MaxError::bad_request("name: 1 to 200 characters"));
    }
    let rpm = limit(k.rate_limit_rpm, "rate_limit_rpm")?;
    let rpd = limit(k.rate_limit_rpd, "rate_limit_rpd")?;
    // the JSON number as written ("10.5"), parsed exactly into micro-dollars
    let budget = match &k.budget {
        None => None,
        Some(n) => Some(
            crate::config::resolve::parse_decimal_micros(&n.to_string())
                .map_err(|e| MaxError::bad_request(format!("budget: {e}")))?,
        ),
    };
    let plaintext = format!("maxai-{}", hex::encode(rand_bytes()));
    let prefix = plaintext[..12].to_string();
    let serial: i64 = sqlx::query_scalar(
        "INSERT INTO api_key (organization_id, created_by, key_hash, prefix, name, rate_limit_rpm, rate_limit_rpd, budget_usd_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING serial_id",
    )
    .bind(u.organization_id)
    .bind(u.user_id)
    .bind(Sha256::digest(plaintext.as_bytes()).to_vec())
    .bind(&prefix)
    .bind(k.name.trim())
    .bind(rpm)
    .bind(rpd)
    .bind(budget)
    .fetch_one(&s.pool)
    .await?;
    audit(&s, &u, "api_key.create", &serial.to_string()).await?;
    let mut v = key_json(&s, &u, serial).await?;
    v["key"] = Value::String(plaintext);
    Ok((StatusCode::CREATED, Json(v)))
}

fn rand_bytes() -> [u8; 20] {
    let mut b = [0u8; 20];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    b
}

async fn audit(s: &AdminState, u: &AuthUser, action: &str, target: &str) -> Result<(), MaxError> {
    sqlx::query(
        "INSERT INTO audit_log (organization_id, user_id, action, target) VALUES ($1, $2, $3, $4)",
    )
    .bind(u.organization_id)
    .bind(u.user_id)
    .bind(action)
    .bind(target)
    .execute(&s.pool)
    .await?;
    Ok(())
}

type KeyRow = (
    i64,
    String,
    String,
    String,
    Option<i32>,
    Option<i32>,
    i64,
    i64,
    i64,
    Option<i64>,
    time::OffsetDateTime,
);

const KEY_COLUMNS: &str = "serial_id, name, prefix, status, rate_limit_rpm, rate_limit_rpd, total_requests,
     total_prompt_tokens + total_completion_tokens, total_cost_usd_micros, budget_usd_micros, created_at";

fn micros_to_number(m: i64) -> Value {
    // micro-units are exact; the contract wants a JSON number, so the conversion happens here
    // and only here, for display
    serde_json::Number::from_f64(m as f64 / 1_000_000.0)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn row_json(r: KeyRow) -> Value {
    json!({
        "id": r.0,
        "name": r.1,
        "key_prefix": r.2,
        "status": r.3,
        "rate_limit_rpm": r.4.unwrap_or(0),
        "rate_limit_rpd": r.5.unwrap_or(0),
        "total_requests": r.6,
        "total_tokens": r.7,
        "total_cost": micros_to_number(r.8),
        "budget": r.9.map(micros_to_number).unwrap_or(Value::Null),
        "budget_used": micros_to_number(r.8),
        "created_at": rfc3339(r.10),
    })
}

async fn key_json(s: &AdminState, u: &AuthUser, serial: i64) -> Result<Value, MaxError> {
    let row: Option<KeyRow> = sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM api_key WHERE serial_id = $1 AND organization_id = $2"
    ))
    .bind(serial)
    .bind(u.organization_id)
    .fetch_optional(&s.pool)
    .await?;
    row.map(row_json).ok_or_else(MaxError::not_found)
}

async fn list_keys(
    State(s): State<AdminState>,
    Customer(u): Customer,
) -> Result<Json<Value>, MaxError> {
    let rows: Vec<KeyRow> = sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM api_key WHERE organization_id = $1 AND status <> 'revoked' ORDER BY serial_id DESC"
    ))
    .bind(u.organization_id)
    .fetch_all(&s.pool)
    .await?;
    Ok(Json(
        json!({"keys": rows.into_iter().map(row_json).collect::<Vec<_>>()}),
    ))
}

async fn revoke_key(
    State(s): State<AdminState>,
    Customer(u): Customer,
    Path(key_id): Path<String>,
) -> Result<Json<Value>, MaxError> {
    let id: i64 = key_id
        .parse()
        .map_err(|_| MaxError::bad_request("key_id: must be an integer"))?;
    let done = sqlx::query(
        "UPDATE api_key SET status = 'revoked', revoked_at = now()
         WHERE serial_id = $1 AND organization_id = $2 AND status <> 'revoked'",
    )
    .bind(id)
    .bind(u.organization_id)
    .execute(&s.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(MaxError::not_found());
    }
    audit(&s, &u, "api_key.revoke", &id.to_string()).await?;
    Ok(Json(
        json!({"success": true, "id": id, "status": "revoked"}),
    ))
}

/// Query string with MaxAI's 400 on a malformed value.
pub struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = MaxError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, MaxError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| MaxError::bad_request(e.body_text()))
    }
}

#[derive(Deserialize)]
struct DaysQ {
    #[serde(default = "thirty")]
    days: i32,
}

fn thirty() -> i32 {
    30
}

async fn usage_stats(
    State(s): State<AdminState>,
    Customer(u): Customer,
    Query(q): Query<DaysQ>,
) -> Result<Json<Value>, MaxError> {
    if !(1..=366).contains(&q.days) {
        return Err(MaxError::bad_request("days: between 1 and 366"));
    }
    let t = super::usage::totals(&s.pool, u.organization_id, q.days).await?;
    let days = super::usage::series(&s.pool, u.organization_id, q.days, "day").await?;
    let models = super::usage::by_model(&s.pool, u.organization_id, q.days).await?;
    let bucket = |b: &super::usage::Bucket, key: &str| {
        json!({
            key: b.key,
            "requests": b.requests,
            "tokens_in": b.prompt_tokens,
            "tokens_out": b.completion_tokens,
            "total_tokens": b.prompt_tokens + b.completion_tokens,
            "cost": micros_to_number(b.cost_usd_micros),
        })
    };
    Ok(Json(json!({
        "days": q.days,
        "total_requests": t.requests,
        "successful_requests": t.successful,
        "failed_requests": t.failed,
        "success_rate": if t.requests > 0 { t.successful as f64 / t.requests as f64 } else { 0.0 },
        "tokens_in": t.prompt_tokens,
        "tokens_out": t.completion_tokens,
        "total_tokens": t.prompt_tokens + t.completion_tokens,
        "total_cost": micros_to_number(t.cost_usd_micros),
        "avg_latency_ms": t.avg_latency_ms,
        "daily": days.iter().map(|b| bucket(b, "date")).collect::<Vec<_>>(),
        "by_model": models.iter().map(|b| bucket(b, "model")).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
struct PageQ {
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

async fn usage_recent(
    State(s): State<AdminState>,
    Customer(u): Customer,
    Query(q): Query<PageQ>,
) -> Result<Json<Value>, MaxError> {
    if q.page < 1 || !(1..=500).contains(&q.per_page) {
        return Err(MaxError::bad_request(
            "page >= 1 and per_page between 1 and 500",
        ));
    }
    let (rows, total) =
        super::usage::recent(&s.pool, u.organization_id, q.page, q.per_page).await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "request_id": r.request_id,
                "timestamp": rfc3339(r.created_at),
                "key_name": r.key_name,
                "key_prefix": r.key_prefix,
                "endpoint": r.route,
                "model": r.model,
                "status": r.status,
                "error": r.error,
                "tokens_in": r.prompt_tokens,
                "tokens_out": r.completion_tokens,
                "total_tokens": r.prompt_tokens + r.completion_tokens,
                "cost": micros_to_number(r.cost_usd_micros.unwrap_or(0)),
                "latency_ms": r.latency_ms,
                "ttft_ms": r.ttft_ms,
                "stream": r.stream,
            })
        })
        .collect();
    Ok(Json(json!({
        "page": q.page,
        "per_page": q.per_page,
        "total": total,
        "pages": (total + q.per_page - 1) / q.per_page,
        "logs": items,
    })))
}

type ModelRow = (
    String,
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<i32>,
);

async fn models(State(s): State<AdminState>) -> Result<Json<Value>, MaxError> {
    let rows: Vec<ModelRow> = sqlx::query_as(
        "SELECT name, category, owned_by, input_usd_micros_per_1m, output_usd_micros_per_1m, context_window
         FROM model WHERE active ORDER BY name",
    )
    .fetch_all(&s.pool)
    .await?;
    let models: Vec<Value> = rows
        .into_iter()
        .map(|(name, category, owned_by, input, output, ctx)| {
            json!({
                "id": name,
                "name": name,
                "category": category,
                "provider": owned_by,
                "pricing": {
                    "input_per_1m": input.map(micros_to_number),
                    "output_per_1m": output.map(micros_to_number),
                    "currency": "USD",
                },
                "context_window": ctx,
            })
        })
        .collect();
    Ok(Json(json!({"count": models.len(), "models": models})))
}

#[derive(Deserialize)]
struct WindowQ {
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

fn window_secs(w: &str) -> Result<i64, MaxError> {
    Ok(match w {
        "1h" => 3600,
        "24h" => 86_400,
        "7d" => 7 * 86_400,
        "30d" => 30 * 86_400,
        _ => return Err(MaxError::bad_request("window: one of 1h, 24h, 7d, 30d")),
    })
}

fn metric_json(m: &super::usage::ModelMetric) -> Value {
    let total = m.tokens_in + m.tokens_out;
    let cost = m.cost_usd_micros as f64 / 1_000_000.0;
    json!({
        "model": m.model,
        "requests": m.requests,
        "success": m.success,
        "errors": m.errors,
        "success_rate": if m.requests > 0 { m.success as f64 / m.requests as f64 } else { 0.0 },
        "tokens_in": m.tokens_in,
        "tokens_out": m.tokens_out,
        "total_tokens": total,
        "total_cost": cost,
        "cost_per_1k_tokens": if total > 0 { cost * 1000.0 / total as f64 } else { 0.0 },
        "avg_latency_ms": m.avg_latency_ms,
    })
}

async fn model_metrics(
    State(s): State<AdminState>,
    Query(q): Query<WindowQ>,
) -> Result<Json<Value>, MaxError> {
    let secs = window_secs(&q.window)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(MaxError::bad_request("limit: between 1 and 500"));
    }
    let rows = super::usage::model_metrics(&s.pool, secs, limit).await?;
    Ok(Json(json!({
        "window": q.window,
        "timestamp": now_rfc3339(),
        "models": rows.iter().map(metric_json).collect::<Vec<_>>(),
    })))
}

async fn leaderboards(
    State(s): State<AdminState>,
    Query(q): Query<WindowQ>,
) -> Result<Json<Value>, MaxError> {
    let secs = window_secs(&q.window)?;
    let top = q.top.unwrap_or(10);
    if !(1..=100).contains(&top) {
        return Err(MaxError::bad_request("top: between 1 and 100"));
    }
    let rows = super::usage::model_metrics(&s.pool, secs, 1000).await?;
    let mut ranked: Vec<Value> = rows.iter().map(metric_json).collect();
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
        "timestamp": now_rfc3339(),
        "by_volume": board(&mut ranked, "requests", false),
        "by_latency": board(&mut ranked, "avg_latency_ms", true),
        "by_cost": board(&mut ranked, "total_cost", false),
        "by_tokens": board(&mut ranked, "total_tokens", false),
    })))
}

/// The caller, when a valid token is present (templates list personal ones then).
pub struct MaybeCustomer(pub Option<AuthUser>);

impl FromRequestParts<AdminState> for MaybeCustomer {
    type Rejection = MaxError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, MaxError> {
        if bearer(parts).is_none() {
            return Ok(MaybeCustomer(None));
        }
        Ok(MaybeCustomer(Some(
            AuthUser::from_parts(parts, state).await?,
        )))
    }
}

type TemplateRow = (
    i64,
    Option<Uuid>,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Value,
    Value,
    i64,
);

const TEMPLATE_COLUMNS: &str =
    "template_id, organization_id, slug, name, category, description, default_model,
     system_prompt, user_prompt, parameters, variables, runs";

fn template_json(t: &TemplateRow) -> Value {
    json!({
        "id": t.0,
        "slug": t.2,
        "name": t.3,
        "category": t.4,
        "description": t.5,
        "default_model": t.6,
        "system_prompt": t.7,
        "user_prompt": t.8,
        "parameters": t.9,
        "variables": t.10,
        "is_builtin": t.1.is_none(),
        "runs": t.11,
    })
}

/// A built-in template or one of the caller's organization.
async fn load_template(
    s: &AdminState,
    id: &str,
    org: Option<Uuid>,
) -> Result<TemplateRow, MaxError> {
    let id: i64 = id
        .parse()
        .map_err(|_| MaxError::bad_request("template_id: must be an integer"))?;
    let row: Option<TemplateRow> = sqlx::query_as(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM template
         WHERE template_id = $1 AND (organization_id IS NULL OR organization_id = $2)"
    ))
    .bind(id)
    .bind(org)
    .fetch_optional(&s.pool)
    .await?;
    row.ok_or_else(MaxError::not_found)
}

async fn list_templates(
    State(s): State<AdminState>,
    MaybeCustomer(u): MaybeCustomer,
) -> Result<Json<Value>, MaxError> {
    let org = u.map(|u| u.organization_id);
    let rows: Vec<TemplateRow> = sqlx::query_as(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM template
         WHERE organization_id IS NULL OR organization_id = $1 ORDER BY organization_id NULLS FIRST, template_id"
    ))
    .bind(org)
    .fetch_all(&s.pool)
    .await?;
    Ok(Json(
        json!({"count": rows.len(), "templates": rows.iter().map(template_json).collect::<Vec<_>>()}),
    ))
}

async fn get_template(
    State(s): State<AdminState>,
    MaybeCustomer(u): MaybeCustomer,
    Path(id): Path<String>,
) -> Result<Json<Value>, MaxError> {
    let t = load_template(&s, &id, u.map(|u| u.organization_id)).await?;
    Ok(Json(template_json(&t)))
}

#[derive(Deserialize, Default)]
struct RenderReq {
    #[serde(default)]
    variables: serde_json::Map<String, Value>,
    #[serde(default)]
    model: Option<String>,
}

/// (model, messages, parameters) of a rendered template.
fn render_messages(
    t: &TemplateRow,
    vars: &serde_json::Map<String, Value>,
    model: Option<String>,
) -> Result<(String, Value), MaxError> {
    let declared = t.10.as_array().cloned().unwrap_or_default();
    let missing = super::templates::missing_required(vars, &declared);
    if !missing.is_empty() {
        return Err(MaxError {
            status: StatusCode::BAD_REQUEST,
            error: "missing_variable",
            details: Some(format!("missing variable(s): {}", missing.join(", "))),
        });
    }
    let render = |text: &str| {
        super::templates::render(text, vars, &declared).map_err(|e| MaxError {
            status: StatusCode::BAD_REQUEST,
            error: "missing_variable",
            details: Some(e.to_string()),
        })
    };
    let mut messages = Vec::new();
    if !t.7.is_empty() {
        messages.push(json!({"role": "system", "content": render(&t.7)?}));
    }
    messages.push(json!({"role": "user", "content": render(&t.8)?}));
    Ok((model.unwrap_or_else(|| t.6.clone()), Value::Array(messages)))
}

async fn render_template(
    State(s): State<AdminState>,
    MaybeCustomer(u): MaybeCustomer,
    Path(id): Path<String>,
    Body(r): Body<RenderReq>,
) -> Result<Json<Value>, MaxError> {
    let t = load_template(&s, &id, u.map(|u| u.organization_id)).await?;
    let (model, messages) = render_messages(&t, &r.variables, r.model)?;
    Ok(Json(
        json!({"template_id": t.0, "model": model, "messages": messages, "parameters": t.9}),
    ))
}

#[derive(Deserialize)]
struct RunReq {
    api_key: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    variables: serde_json::Map<String, Value>,
}

/// Render, then call the gateway with the caller's key exactly as a client would: the run is
/// authenticated, limited, routed, metered and billed like any other request.
async fn run_template(
    State(s): State<AdminState>,
    Customer(u): Customer,
    Path(id): Path<String>,
    Body(r): Body<RunReq>,
) -> Result<Response, MaxError> {
    let t = load_template(&s, &id, Some(u.organization_id)).await?;
    if r.api_key.trim().is_empty() {
        return Err(MaxError::bad_request("api_key: required"));
    }
    let (model, messages) = render_messages(&t, &r.variables, r.model)?;
    let Some(gateway) = &s.gateway_url else {
        return Err(MaxError::internal());
    };
    let mut body = json!({"model": model, "messages": messages});
    if let (Some(p), Some(b)) = (t.9.as_object(), body.as_object_mut()) {
        for (k, v) in p {
            b.entry(k.clone()).or_insert(v.clone());
        }
    }
    let resp = s
        .http
        .post(format!("{gateway}/v1/chat/completions"))
        .bearer_auth(r.api_key.trim())
        .json(&body)
        .send()
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "template run: gateway unreachable");
            MaxError::internal()
        })?;
    let status = resp.status();
    let out: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        // the gateway's verdict (401, 402, 429, ...) reaches the caller with its status
        let code = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        return Ok((code, Json(out)).into_response());
    }
    sqlx::query("UPDATE template SET runs = runs + 1 WHERE template_id = $1")
        .bind(t.0)
        .execute(&s.pool)
        .await?;
    let content = out
        .pointer("/choices/0/message/content")
        .cloned()
        .unwrap_or(Value::Null);
    Ok(Json(json!({
        "template_id": t.0,
        "model": model,
        "output": content,
        "usage": out.get("usage").cloned().unwrap_or(Value::Null),
        "response": out,
    }))
    .into_response())
}
