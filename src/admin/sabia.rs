//! The SabIA Labs surface (`../shared/seeds/sabia-labs-api.md`): paths under `/v1/`, every
//! answer in the `{"success", "message"?, "data"}` envelope, errors as
//! `{"success": false, "error": {"code", "message", "details"?}}` with the contract's codes.
//!
//! Mounted: auth (register, login, forgot/reset password, verify email), teams and members,
//! plans, plan change and billing, team API keys, dashboard, usage logs and stats. `/v1/ocr` and
//! `/v1/recognition` are gateway routes (metered per request), webhooks (their secret encrypted
//! at rest; `usage_limit_reached` delivered by `admin::webhooks`, `payment_failed` never emitted:
//! there is no payment provider).
//!
//! Costs are the billed amounts in BRL (catalog price × FX × markup, see `pricing`).
//!
//! Deviation: the contract lists API keys with their full plaintext. catraca stores only a
//! SHA-256, so the plaintext is returned once, at creation; lists show the display prefix
//! (`sk-1234...`), as the contract's own dashboard samples do.

use std::time::Duration;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::extract::AuthUser;
use super::openapi::Api;
use super::{AdminState, rfc3339};
use crate::domain::accounts::{self as auth, Email, Password, Purpose};
use crate::domain::orgs::{Cycle, Removal};
use crate::domain::{Conflict, DomainError, Unauthorized};

/// SabIA's session tokens last a day (`expiresIn: 86400`); the contract has no refresh.
const SESSION_TTL: Duration = Duration::from_secs(86_400);

/// SabIA's routes.
pub fn api() -> Api<AdminState> {
    Api::new("sabia")
        .route(
            "POST",
            "/v1/auth/register",
            "Cadastro de usuário",
            false,
            post(register),
        )
        .route("POST", "/v1/auth/login", "Login", false, post(login))
        .route(
            "POST",
            "/v1/auth/forgot-password",
            "Recuperação de senha",
            false,
            post(forgot_password),
        )
        .route(
            "POST",
            "/v1/auth/reset-password",
            "Redefinir senha",
            false,
            post(reset_password),
        )
        .route(
            "POST",
            "/v1/auth/verify-email",
            "Verificar email",
            false,
            post(verify_email),
        )
        .route(
            "GET",
            "/v1/teams",
            "Listar times do usuário",
            true,
            get(list_teams),
        )
        .route("POST", "/v1/teams", "Criar time", true, post(create_team))
        .route(
            "GET",
            "/v1/teams/{teamId}",
            "Obter detalhes do time",
            true,
            get(team_detail),
        )
        .route(
            "POST",
            "/v1/teams/{teamId}/members",
            "Adicionar membro ao time",
            true,
            post(add_member),
        )
        .route(
            "DELETE",
            "/v1/teams/{teamId}/members/{userId}",
            "Remover membro do time",
            true,
            delete(remove_member),
        )
        .route(
            "GET",
            "/v1/plans",
            "Listar planos disponíveis",
            false,
            get(list_plans),
        )
        .route(
            "PUT",
            "/v1/teams/{teamId}/plan",
            "Alterar plano do time",
            true,
            put(change_plan),
        )
        .route(
            "GET",
            "/v1/teams/{teamId}/billing",
            "Obter informações de cobrança",
            true,
            get(billing),
        )
        .route(
            "GET",
            "/v1/teams/{teamId}/api-keys",
            "Listar API keys",
            true,
            get(list_keys),
        )
        .route(
            "POST",
            "/v1/teams/{teamId}/api-keys",
            "Criar API key",
            true,
            post(create_key),
        )
        .route(
            "PUT",
            "/v1/teams/{teamId}/api-keys/{keyId}",
            "Atualizar API key",
            true,
            put(update_key),
        )
        .route(
            "PATCH",
            "/v1/teams/{teamId}/api-keys/{keyId}/status",
            "Ativar/desativar API key",
            true,
            patch(key_status),
        )
        .route(
            "DELETE",
            "/v1/teams/{teamId}/api-keys/{keyId}",
            "Deletar API key",
            true,
            delete(delete_key),
        )
        .route(
            "GET",
            "/v1/teams/{teamId}/dashboard",
            "Obter dados do dashboard",
            true,
            get(dashboard),
        )
        .route(
            "GET",
            "/v1/teams/{teamId}/usage-logs",
            "Obter logs de uso",
            true,
            get(usage_logs),
        )
        .route(
            "GET",
            "/v1/teams/{teamId}/usage-stats",
            "Obter estatísticas de uso",
            true,
            get(usage_stats),
        )
        .route(
            "POST",
            "/v1/teams/{teamId}/webhooks",
            "Configurar webhook",
            true,
            post(create_webhook),
        )
        .route(
            "GET",
            "/v1/teams/{teamId}/webhooks",
            "Listar webhooks",
            true,
            get(list_webhooks),
        )
}

/// SabIA's error.
#[derive(Debug)]
pub struct SabiaError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<Box<Value>>,
    retry_after: Option<u32>,
}

impl SabiaError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        SabiaError {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    fn validation(field: &str, message: &str) -> Self {
        SabiaError {
            details: Some(Box::new(json!([{"field": field, "message": message}]))),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "Dados de validação inválidos",
            )
        }
    }

    fn team_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "TEAM_NOT_FOUND",
            "Time não encontrado",
        )
    }

    fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "INSUFFICIENT_PERMISSIONS",
            "Permissões insuficientes",
        )
    }

    fn key_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "API_KEY_NOT_FOUND",
            "API Key não encontrada",
        )
    }

    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "Erro interno do servidor",
        )
    }
}

impl IntoResponse for SabiaError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(d) = self.details {
            error["details"] = *d;
        }
        let mut r = (self.status, Json(json!({"success": false, "error": error}))).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        r
    }
}

impl From<DomainError> for SabiaError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Unauthorized(Unauthorized::BadCredentials) => Self::new(
                StatusCode::UNAUTHORIZED,
                "INVALID_CREDENTIALS",
                "Credenciais inválidas",
            ),
            DomainError::Unauthorized(_) => {
                Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Não autorizado")
            }
            DomainError::Conflict(Conflict::EmailTaken) => Self::new(
                StatusCode::CONFLICT,
                "EMAIL_ALREADY_EXISTS",
                "Email já cadastrado",
            ),
            DomainError::Conflict(c) => Self::new(StatusCode::CONFLICT, "CONFLICT", c.to_string()),
            DomainError::Invalid { field, .. } => Self::validation(field, "Valor inválido"),
            DomainError::MissingVariables(m) => Self::validation("variables", &m),
            DomainError::Throttled { retry_after_secs } => SabiaError {
                retry_after: Some(retry_after_secs.min(u64::from(u32::MAX)) as u32),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TOO_MANY_REQUESTS",
                    "Muitas tentativas; tente novamente mais tarde",
                )
            },
            DomainError::NotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "Não encontrado")
            }
            DomainError::Forbidden(_) => Self::forbidden(),
            DomainError::Unavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "Serviço temporariamente indisponível",
            ),
            DomainError::Internal => Self::internal(),
        }
    }
}

impl From<sqlx::Error> for SabiaError {
    /// Unreachable database: 503; anything else: logged, 500.
    fn from(e: sqlx::Error) -> Self {
        DomainError::from(e).into()
    }
}

/// The logged-in user.
pub struct User(pub AuthUser);

impl FromRequestParts<AdminState> for User {
    type Rejection = SabiaError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, SabiaError> {
        Ok(User(AuthUser::from_parts(parts, state).await?))
    }
}

/// JSON body with SabIA's VALIDATION_ERROR on anything malformed.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = SabiaError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, SabiaError> {
        crate::surfaces::kit::json(req, state)
            .await
            .map(Body)
            .map_err(|e| SabiaError {
                details: Some(Box::new(json!([{"field": "body", "message": e.0}]))),
                ..SabiaError::new(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    "Dados de validação inválidos",
                )
            })
    }
}

fn ok(message: Option<&str>, data: Value) -> Json<Value> {
    let mut v = json!({"success": true, "data": data});
    if let Some(m) = message {
        v["message"] = Value::String(m.to_string());
    }
    Json(v)
}

/// The caller's role in `team`, or TEAM_NOT_FOUND (also for teams that exist but are not
/// theirs: existence is not revealed).
async fn role_in(
    s: &AdminState,
    user: &AuthUser,
    team: &str,
) -> Result<(Uuid, String), SabiaError> {
    let team: Uuid = team.parse().map_err(|_| SabiaError::team_not_found())?;
    let role: Option<String> = sqlx::query_scalar(
        "SELECT role FROM membership WHERE organization_id = $1 AND user_id = $2",
    )
    .bind(team)
    .bind(user.user_id)
    .fetch_optional(&s.pool)
    .await?;
    role.map(|r| (team, r))
        .ok_or_else(SabiaError::team_not_found)
}

/// The team, if the caller administers it; INSUFFICIENT_PERMISSIONS for other members.
async fn admin_of(s: &AdminState, user: &AuthUser, team: &str) -> Result<Uuid, SabiaError> {
    let (team, role) = role_in(s, user, team).await?;
    if !is_admin(&role) {
        return Err(SabiaError::forbidden());
    }
    Ok(team)
}

fn is_admin(role: &str) -> bool {
    role == "owner" || role == "admin"
}

/// Contract role names: owners show as admins.
fn role_name(role: &str) -> &str {
    if role == "owner" { "admin" } else { role }
}

// ---------- auth

#[derive(Deserialize)]
struct RegisterReq {
    name: Option<String>,
    email: Option<String>,
    password: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    company: Option<String>,
}

fn required<'a>(v: &'a Option<String>, field: &str) -> Result<&'a str, SabiaError> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| SabiaError::validation(field, &format!("{field} é obrigatório")))
}

/// name, email, phone, company, avatar, created, verified
type UserRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    time::OffsetDateTime,
    bool,
);
/// id, name, plan, logo, role, created
type TeamRow = (
    Uuid,
    String,
    Option<String>,
    Option<String>,
    String,
    time::OffsetDateTime,
);
/// plan code, cycle, started, monthly price, annual price, quota
type BillingRow = (
    Option<String>,
    String,
    time::OffsetDateTime,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

async fn user_json(s: &AdminState, user: Uuid) -> Result<Value, SabiaError> {
    let row: Option<UserRow> = sqlx::query_as(
        "SELECT name, email, phone, company, avatar_url, created_at, email_verified_at IS NOT NULL FROM app_user WHERE user_id = $1",
    )
    .bind(user)
    .fetch_optional(&s.pool)
    .await?;
    let (name, email, phone, company, avatar, created, verified) = row.ok_or_else(|| {
        SabiaError::new(
            StatusCode::NOT_FOUND,
            "USER_NOT_FOUND",
            "Usuário não encontrado",
        )
    })?;
    Ok(json!({
        "id": user, "name": name, "email": email, "phone": phone, "company": company,
        "avatar": avatar, "createdAt": rfc3339(created), "emailVerified": verified,
    }))
}

async fn register(
    State(s): State<AdminState>,
    Body(r): Body<RegisterReq>,
) -> Result<(StatusCode, Json<Value>), SabiaError> {
    let name = required(&r.name, "name")?;
    let email = required(&r.email, "email")?;
    let password = r.password.as_deref().unwrap_or("");
    let email_ok =
        Email::parse(email).map_err(|_| SabiaError::validation("email", "Email inválido"))?;
    let password = Password::parse(password).map_err(|_| {
        SabiaError::validation("password", "A senha deve ter de 8 a 256 caracteres")
    })?;
    let (user, org) = auth::register(&s.pool, &email_ok, &password, name, "team").await?;
    sqlx::query("UPDATE app_user SET phone = $2, company = $3 WHERE user_id = $1")
        .bind(user)
        .bind(&r.phone)
        .bind(&r.company)
        .execute(&s.pool)
        .await?;
    auth::send_one_time(
        &s.pool,
        user,
        Purpose::VerifyEmail,
        email,
        "Verifique seu email",
        "Seu código de verificação: ",
    )
    .await?;
    let token = auth::issue_access(&s.pool, &s.jwt, user, org, SESSION_TTL).await?;
    Ok((
        StatusCode::CREATED,
        ok(
            Some("Usuário criado com sucesso"),
            json!({"user": user_json(&s, user).await?, "token": token}),
        ),
    ))
}

#[derive(Deserialize)]
struct LoginReq {
    email: Option<String>,
    password: Option<String>,
}

async fn login(
    State(s): State<AdminState>,
    headers: axum::http::HeaderMap,
    Body(r): Body<LoginReq>,
) -> Result<Json<Value>, SabiaError> {
    let email = required(&r.email, "email")?;
    let password = match r.password.as_deref() {
        Some(p) if !p.is_empty() => p,
        _ => return Err(SabiaError::validation("password", "password é obrigatório")),
    };
    let ip = super::extract::client_ip(&headers);
    let (user, org) = auth::login(&s.pool, email, password, ip).await?;
    let token = auth::issue_access(&s.pool, &s.jwt, user, org, SESSION_TTL).await?;
    let mut u = user_json(&s, user).await?;
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
struct EmailReq {
    email: Option<String>,
}

/// Always the same answer, whether or not the email is registered (no account enumeration).
async fn forgot_password(
    State(s): State<AdminState>,
    Body(r): Body<EmailReq>,
) -> Result<Json<Value>, SabiaError> {
    let email = required(&r.email, "email")?;
    let user: Option<(Uuid, String)> =
        sqlx::query_as("SELECT user_id, email FROM app_user WHERE lower(email) = lower($1)")
            .bind(email)
            .fetch_optional(&s.pool)
            .await?;
    if let Some((user, to)) = user {
        auth::send_one_time(
            &s.pool,
            user,
            Purpose::ResetPassword,
            &to,
            "Recuperação de senha",
            "Seu código para redefinir a senha: ",
        )
        .await?;
    }
    Ok(Json(
        json!({"success": true, "message": "Email de recuperação enviado com sucesso"}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResetReq {
    token: Option<String>,
    new_password: Option<String>,
}

async fn reset_password(
    State(s): State<AdminState>,
    Body(r): Body<ResetReq>,
) -> Result<Json<Value>, SabiaError> {
    let token = required(&r.token, "token")?;
    let password = Password::parse(r.new_password.as_deref().unwrap_or("")).map_err(|_| {
        SabiaError::validation("newPassword", "A senha deve ter de 8 a 256 caracteres")
    })?;
    let user = auth::consume_one_time(&s.pool, token, Purpose::ResetPassword)
        .await
        .map_err(|_| SabiaError::validation("token", "Token inválido ou expirado"))?;
    auth::set_password(&s.pool, user, &password).await?;
    Ok(Json(
        json!({"success": true, "message": "Senha redefinida com sucesso"}),
    ))
}

#[derive(Deserialize)]
struct TokenReq {
    token: Option<String>,
}

async fn verify_email(
    State(s): State<AdminState>,
    Body(r): Body<TokenReq>,
) -> Result<Json<Value>, SabiaError> {
    let token = required(&r.token, "token")?;
    let user = auth::consume_one_time(&s.pool, token, Purpose::VerifyEmail)
        .await
        .map_err(|_| SabiaError::validation("token", "Token inválido ou expirado"))?;
    sqlx::query("UPDATE app_user SET email_verified_at = now() WHERE user_id = $1")
        .bind(user)
        .execute(&s.pool)
        .await?;
    Ok(Json(
        json!({"success": true, "message": "Email verificado com sucesso"}),
    ))
}

// ---------- teams

async fn list_teams(State(s): State<AdminState>, User(u): User) -> Result<Json<Value>, SabiaError> {
    let rows: Vec<TeamRow> = sqlx::query_as(
        "SELECT o.organization_id, o.name, p.name, o.logo_url, m.role, o.created_at
         FROM membership m JOIN organization o USING (organization_id) LEFT JOIN plan p USING (plan_id)
         WHERE m.user_id = $1 ORDER BY o.created_at",
    )
    .bind(u.user_id)
    .fetch_all(&s.pool)
    .await?;
    let data: Vec<Value> = rows
        .into_iter()
        .map(|(id, name, plan, logo, role, created)| {
            json!({"id": id, "name": name, "plan": plan.unwrap_or_else(|| "Sandbox".into()), "logo": logo,
                   "role": role_name(&role), "createdAt": rfc3339(created)})
        })
        .collect();
    Ok(ok(None, Value::Array(data)))
}

#[derive(Deserialize)]
struct TeamReq {
    name: Option<String>,
    #[serde(default)]
    plan: Option<String>,
}

async fn plan_id(s: &AdminState, code: &str) -> Result<Uuid, SabiaError> {
    sqlx::query_scalar("SELECT plan_id FROM plan WHERE code = lower($1)")
        .bind(code)
        .fetch_optional(&s.pool)
        .await?
        .ok_or_else(|| SabiaError::validation("plan", "Plano inexistente"))
}

async fn create_team(
    State(s): State<AdminState>,
    User(u): User,
    Body(r): Body<TeamReq>,
) -> Result<(StatusCode, Json<Value>), SabiaError> {
    let name = required(&r.name, "name")?;
    if name.len() > 200 {
        return Err(SabiaError::validation("name", "Nome muito longo"));
    }
    let code = r.plan.as_deref().unwrap_or("sandbox").to_lowercase();
    let plan = plan_id(&s, &code).await?;
    let mut tx = s.pool.begin().await?;
    let (id, created): (Uuid, time::OffsetDateTime) = sqlx::query_as(
        "INSERT INTO organization (name, kind, plan_id) VALUES ($1, 'team', $2) RETURNING organization_id, created_at",
    )
    .bind(name)
    .bind(plan)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO membership (organization_id, user_id, role) VALUES ($1, $2, 'owner')")
        .bind(id)
        .bind(u.user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        ok(
            Some("Time criado com sucesso"),
            json!({"id": id, "name": name, "plan": code, "logo": null, "role": "admin", "createdAt": rfc3339(created)}),
        ),
    ))
}

type PlanRow = (
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<i32>,
    Value,
    bool,
    String,
    String,
    String,
);

const PLAN_COLUMNS: &str =
    "code, name, price_brl_micros, annual_price_brl_micros, monthly_request_quota, rate_limit_rps,
     features, popular, cta, cta_variant, main_feature";

/// "R$ 99" / "R$ 1.999" / "Gratuito", as the contract shows prices.
fn brl(micros: i64) -> String {
    if micros == 0 {
        return "Gratuito".into();
    }
    let reais = micros / 1_000_000;
    let cents = (micros % 1_000_000) / 10_000;
    let digits = reais.to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(ch);
    }
    if cents == 0 {
        format!("R$ {grouped}")
    } else {
        format!("R$ {grouped},{cents:02}")
    }
}

fn plan_json(p: &PlanRow) -> Value {
    let free = p.2 == 0;
    json!({
        "id": p.0,
        "name": p.1,
        "price": brl(p.2),
        "priceSubtext": if free { "Para desenvolvimento" } else { "/mês" },
        "annualPrice": brl(p.3),
        "annualPriceSubtext": if free { "Para desenvolvimento" } else { "/ano" },
        "mainFeature": p.10,
        "features": p.6,
        "cta": p.8,
        "ctaVariant": p.9,
        "popular": p.7,
    })
}

async fn team_detail(
    State(s): State<AdminState>,
    User(u): User,
    Path(team): Path<String>,
) -> Result<Json<Value>, SabiaError> {
    let (team, _) = role_in(&s, &u, &team).await?;
    let (name, created): (String, time::OffsetDateTime) =
        sqlx::query_as("SELECT name, created_at FROM organization WHERE organization_id = $1")
            .bind(team)
            .fetch_one(&s.pool)
            .await?;
    let plan: Option<PlanRow> = sqlx::query_as(&format!(
        "SELECT {PLAN_COLUMNS} FROM plan WHERE plan_id = (SELECT plan_id FROM organization WHERE organization_id = $1)"
    ))
    .bind(team)
    .fetch_optional(&s.pool)
    .await?;
    let members: Vec<(Uuid, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT u.user_id, u.name, u.email, m.role, u.avatar_url FROM membership m JOIN app_user u USING (user_id)
         WHERE m.organization_id = $1 ORDER BY m.created_at",
    )
    .bind(team)
    .fetch_all(&s.pool)
    .await?;
    let members: Vec<Value> = members
        .into_iter()
        .map(|(id, name, email, role, avatar)| json!({"id": id, "name": name, "email": email, "role": role_name(&role), "avatar": avatar}))
        .collect();
    Ok(ok(
        None,
        json!({"id": team, "name": name, "plan": plan.as_ref().map(plan_json), "members": members, "createdAt": rfc3339(created)}),
    ))
}

#[derive(Deserialize)]
struct MemberReq {
    email: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

async fn add_member(
    State(s): State<AdminState>,
    User(u): User,
    Path(team): Path<String>,
    Body(r): Body<MemberReq>,
) -> Result<(StatusCode, Json<Value>), SabiaError> {
    let team = admin_of(&s, &u, &team).await?;
    let email = required(&r.email, "email")?;
    Email::parse(email).map_err(|_| SabiaError::validation("email", "Email inválido"))?;
    let new_role = r.role.as_deref().unwrap_or("member");
    if !matches!(new_role, "admin" | "member" | "viewer") {
        return Err(SabiaError::validation(
            "role",
            "Papel deve ser admin, member ou viewer",
        ));
    }
    let user: Option<(Uuid, String, String, Option<String>)> = sqlx::query_as(
        "SELECT user_id, name, email, avatar_url FROM app_user WHERE lower(email) = lower($1)",
    )
    .bind(email)
    .fetch_optional(&s.pool)
    .await?;
    let (id, name, email, avatar) = user.ok_or_else(|| {
        SabiaError::new(
            StatusCode::NOT_FOUND,
            "USER_NOT_FOUND",
            "Usuário não encontrado",
        )
    })?;
    let added = sqlx::query("INSERT INTO membership (organization_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(team)
        .bind(id)
        .bind(new_role)
        .execute(&s.pool)
        .await?;
    if added.rows_affected() == 0 {
        return Err(SabiaError::new(
            StatusCode::CONFLICT,
            "MEMBER_ALREADY_EXISTS",
            "Usuário já é membro do time",
        ));
    }
    Ok((
        StatusCode::CREATED,
        ok(
            Some("Membro adicionado com sucesso"),
            json!({"id": id, "name": name, "email": email, "role": new_role, "avatar": avatar}),
        ),
    ))
}

async fn remove_member(
    State(s): State<AdminState>,
    User(u): User,
    Path((team, user)): Path<(String, String)>,
) -> Result<Json<Value>, SabiaError> {
    let (team, role) = role_in(&s, &u, &team).await?;
    let target: Uuid = user.parse().map_err(|_| {
        SabiaError::new(
            StatusCode::NOT_FOUND,
            "USER_NOT_FOUND",
            "Usuário não encontrado",
        )
    })?;
    // admins remove anyone; a member may leave
    if !is_admin(&role) && target != u.user_id {
        return Err(SabiaError::forbidden());
    }
    match crate::domain::orgs::remove_member(&s.pool, &u, team, target).await? {
        Removal::Done => {}
        Removal::NotMember => {
            return Err(SabiaError::new(
                StatusCode::NOT_FOUND,
                "USER_NOT_FOUND",
                "Usuário não encontrado",
            ));
        }
        Removal::LastOwner => {
            return Err(SabiaError::validation(
                "userId",
                "O time precisa de ao menos um administrador",
            ));
        }
    }
    Ok(Json(
        json!({"success": true, "message": "Membro removido com sucesso"}),
    ))
}

// ---------- plans and billing

async fn list_plans(State(s): State<AdminState>) -> Result<Json<Value>, SabiaError> {
    let rows: Vec<PlanRow> = sqlx::query_as(&format!(
        "SELECT {PLAN_COLUMNS} FROM plan ORDER BY sort_order, code"
    ))
    .fetch_all(&s.pool)
    .await?;
    Ok(ok(None, Value::Array(rows.iter().map(plan_json).collect())))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlanChange {
    plan: Option<String>,
    #[serde(default)]
    billing_cycle: Option<String>,
}

async fn change_plan(
    State(s): State<AdminState>,
    User(u): User,
    Path(team): Path<String>,
    Body(r): Body<PlanChange>,
) -> Result<Json<Value>, SabiaError> {
    let team = admin_of(&s, &u, &team).await?;
    let code = required(&r.plan, "plan")?.to_lowercase();
    let cycle = Cycle::parse(r.billing_cycle.as_deref().unwrap_or("monthly"))
        .map_err(|_| SabiaError::validation("billingCycle", "Ciclo deve ser monthly ou annual"))?;
    let changed = crate::domain::orgs::change_plan(&s.pool, &u, team, &code, cycle)
        .await?
        .ok_or_else(|| SabiaError::validation("plan", "Plano inexistente"))?;
    let (old, next) = (changed.old, changed.started + cycle.period());
    let cycle = cycle.as_str();
    Ok(ok(
        Some("Plano alterado com sucesso"),
        json!({"teamId": team, "oldPlan": old.unwrap_or_else(|| "sandbox".into()), "newPlan": code, "billingCycle": cycle, "nextBillingDate": rfc3339(next)}),
    ))
}

async fn billing(
    State(s): State<AdminState>,
    User(u): User,
    Path(team): Path<String>,
) -> Result<Json<Value>, SabiaError> {
    let (team, _) = role_in(&s, &u, &team).await?;
    let (code, cycle, started, price, annual, quota): BillingRow = sqlx::query_as(
        "SELECT p.code, o.billing_cycle, o.plan_started_at, p.price_brl_micros, p.annual_price_brl_micros, p.monthly_request_quota
         FROM organization o LEFT JOIN plan p USING (plan_id) WHERE o.organization_id = $1",
    )
    .bind(team)
    .fetch_one(&s.pool)
    .await?;
    // the month's successful requests, the count the gateway enforces
    let (used, _, reset) = month_usage(&s, team).await?;
    let amount_micros = if cycle == "annual" { annual } else { price }.unwrap_or(0);
    let next = started
        + if cycle == "annual" {
            time::Duration::days(365)
        } else {
            time::Duration::days(30)
        };
    Ok(ok(
        None,
        json!({
            "currentPlan": code.unwrap_or_else(|| "sandbox".into()),
            "billingCycle": cycle,
            "nextBillingDate": rfc3339(next),
            "amount": amount_micros as f64 / 1_000_000.0,
            "currency": "BRL",
            "paymentMethod": null,
            "usage": {"current": used, "limit": quota, "resetDate": reset},
        }),
    ))
}

// ---------- team API keys

type KeyRow = (
    i64,
    String,
    Option<String>,
    String,
    time::OffsetDateTime,
    Option<time::OffsetDateTime>,
    String,
);

const KEY_COLUMNS: &str = "serial_id, name, description, status, created_at, last_used_at, prefix";

fn key_json(r: &KeyRow) -> Value {
    json!({
        "id": r.0,
        "key": format!("{}...", r.6),
        "name": r.1,
        "description": r.2,
        "createdAt": rfc3339(r.4),
        "status": r.3,
        "lastUsed": r.5.map(rfc3339),
    })
}

async fn list_keys(
    State(s): State<AdminState>,
    User(u): User,
    Path(team): Path<String>,
) -> Result<Json<Value>, SabiaError> {
    let (team, _) = role_in(&s, &u, &team).await?;
    let rows: Vec<KeyRow> = sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM api_key WHERE organization_id = $1 AND deleted_at IS NULL ORDER BY serial_id"
    ))
    .bind(team)
    .fetch_all(&s.pool)
    .await?;
    Ok(ok(None, Value::Array(rows.iter().map(key_json).collect())))
}

#[derive(Deserialize)]
struct KeyReq {
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

async fn create_key(
    State(s): State<AdminState>,
    User(u): User,
    Path(team): Path<String>,
    Body(r): Body<KeyReq>,
) -> Result<(StatusCode, Json<Value>), SabiaError> {
    let team = admin_of(&s, &u, &team).await?;
    let name = required(&r.name, "name")?;
    if name.len() > 200 || r.description.as_ref().is_some_and(|d| d.len() > 2000) {
        return Err(SabiaError::validation("name", "Texto muito longo"));
    }
    let minted = crate::domain::keys::KeyFormat::SABIA.mint();
    let row: KeyRow = sqlx::query_as(&format!(
        "INSERT INTO api_key (organization_id, created_by, key_hash, prefix, name, description)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {KEY_COLUMNS}"
    ))
    .bind(team)
    .bind(u.user_id)
    .bind(&minted.hash)
    .bind(&minted.shown)
    .bind(name)
    .bind(&r.description)
    .fetch_one(&s.pool)
    .await?;
    let mut v = key_json(&row);
    v["key"] = Value::String(minted.plaintext);
    Ok((
        StatusCode::CREATED,
        ok(Some("API Key criada com sucesso"), v),
    ))
}

fn key_id(k: &str) -> Result<i64, SabiaError> {
    k.parse().map_err(|_| SabiaError::key_not_found())
}

async fn update_key(
    State(s): State<AdminState>,
    User(u): User,
    Path((team, key)): Path<(String, String)>,
    Body(r): Body<KeyReq>,
) -> Result<Json<Value>, SabiaError> {
    let team = admin_of(&s, &u, &team).await?;
    let id = key_id(&key)?;
    if let Some(n) = &r.name
        && (n.trim().is_empty() || n.len() > 200)
    {
        return Err(SabiaError::validation("name", "Nome inválido"));
    }
    let row: Option<KeyRow> = sqlx::query_as(&format!(
        "UPDATE api_key SET name = coalesce($3, name), description = coalesce($4, description)
         WHERE organization_id = $1 AND serial_id = $2 AND deleted_at IS NULL RETURNING {KEY_COLUMNS}"
    ))
    .bind(team)
    .bind(id)
    .bind(r.name.as_deref().map(str::trim))
    .bind(&r.description)
    .fetch_optional(&s.pool)
    .await?;
    let row = row.ok_or_else(SabiaError::key_not_found)?;
    Ok(ok(Some("API Key atualizada com sucesso"), key_json(&row)))
}

#[derive(Deserialize)]
struct StatusReq {
    status: Option<String>,
}

async fn key_status(
    State(s): State<AdminState>,
    User(u): User,
    Path((team, key)): Path<(String, String)>,
    Body(r): Body<StatusReq>,
) -> Result<Json<Value>, SabiaError> {
    let team = admin_of(&s, &u, &team).await?;
    let id = key_id(&key)?;
    let status = required(&r.status, "status")?;
    let db_status = match status {
        "active" => "active",
        "inactive" | "disabled" => "disabled",
        "revoked" => "revoked",
        _ => {
            return Err(SabiaError::validation(
                "status",
                "Status deve ser active, inactive ou revoked",
            ));
        }
    };
    // one statement: no window between reading the status and writing it; a revoked key can
    // be activated again (the contract's route "ativa ou desativa" goes both ways)
    let updated = crate::store::keys::set_status(&s.pool, team, id, db_status)
        .await?
        .ok_or_else(SabiaError::key_not_found)?;
    Ok(ok(
        Some("Status da API Key alterado com sucesso"),
        json!({"id": id, "status": status, "updatedAt": rfc3339(updated)}),
    ))
}

async fn delete_key(
    State(s): State<AdminState>,
    User(u): User,
    Path((team, key)): Path<(String, String)>,
) -> Result<Json<Value>, SabiaError> {
    let team = admin_of(&s, &u, &team).await?;
    let id = key_id(&key)?;
    // a tombstone, not a DELETE: refused everywhere and hidden, while its usage keeps its name
    let done = sqlx::query(
        "UPDATE api_key SET status = 'revoked', revoked_at = coalesce(revoked_at, now()), deleted_at = now()
         WHERE organization_id = $1 AND serial_id = $2 AND deleted_at IS NULL",
    )
        .bind(team)
        .bind(id)
        .execute(&s.pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(SabiaError::key_not_found());
    }
    Ok(Json(
        json!({"success": true, "message": "API Key removida com sucesso"}),
    ))
}

// ---------- dashboard and usage

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PeriodQ {
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    group_by: Option<String>,
}

/// Query string with SabIA's VALIDATION_ERROR on a malformed value.
pub struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = SabiaError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, SabiaError> {
        crate::surfaces::kit::query(parts, state)
            .await
            .map(Query)
            .map_err(|e| SabiaError::validation("query", &e.0))
    }
}

fn period_days(p: Option<&str>, allowed: &[&str]) -> Result<(String, i32), SabiaError> {
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
    Ok((p.to_string(), days))
}

/// This month's requests, the plan's quota and when it resets.
async fn month_usage(s: &AdminState, team: Uuid) -> Result<(i64, Option<i64>, String), SabiaError> {
    let used: i64 = sqlx::query_scalar(crate::funds::MONTH_USED_SQL)
        .bind(team)
        .fetch_one(&s.pool)
        .await?;
    let quota: Option<i64> = sqlx::query_scalar(
        "SELECT p.monthly_request_quota FROM organization o LEFT JOIN plan p USING (plan_id) WHERE o.organization_id = $1",
    )
    .bind(team)
    .fetch_one(&s.pool)
    .await?;
    let reset: String = sqlx::query_scalar(
        "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
    )
    .fetch_one(&s.pool)
    .await?;
    Ok((used, quota, reset))
}

/// Per bucket and service (the category of the model in the catalog): requests and latency.
/// bucket, service, requests, latency sum, billed micro-BRL
type ServiceRow = (String, String, i64, i64, i64);

async fn per_service(
    s: &AdminState,
    team: Uuid,
    days: i32,
    unit: &str,
) -> Result<Vec<ServiceRow>, SabiaError> {
    let unit = match unit {
        "week" => "week",
        "month" => "month",
        _ => "day",
    };
    Ok(sqlx::query_as(
        "SELECT to_char(date_trunc($3, d.day), 'YYYY-MM-DD') AS bucket, coalesce(m.category, 'other') AS service,
                sum(d.requests)::int8, sum(d.latency_ms_sum)::int8, sum(d.cost_billed_brl_micros)::int8
         FROM usage_daily d LEFT JOIN model m ON m.name = d.model
         WHERE d.organization_id = $1 AND d.day > (now() AT TIME ZONE 'UTC')::date - $2
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(team)
    .bind(days)
    .bind(unit)
    .fetch_all(&s.pool)
    .await?)
}

/// id, time, route, key name, key prefix
type ActivityRow = (
    i64,
    time::OffsetDateTime,
    String,
    Option<String>,
    Option<String>,
);
/// id, time, route, key prefix, latency, status
type LogRow = (i64, time::OffsetDateTime, String, Option<String>, i32, i16);

async fn dashboard(
    State(s): State<AdminState>,
    User(u): User,
    Path(team): Path<String>,
    Query(q): Query<PeriodQ>,
) -> Result<Json<Value>, SabiaError> {
    let (team, _) = role_in(&s, &u, &team).await?;
    let (_, days) = period_days(q.period.as_deref(), &["7d", "30d", "90d"])?;
    let rows = per_service(&s, team, days, "day").await?;
    let total: i64 = rows.iter().map(|r| r.2).sum();
    let total_cost: i64 = rows.iter().map(|r| r.4).sum();
    let mut chart: Vec<Value> = Vec::new();
    for r in &rows {
        if chart.last().is_none_or(|c| c["date"] != r.0.as_str()) {
            chart.push(json!({"date": r.0, "ocr": 0, "recognition": 0}));
        }
        if let Some(c) = chart.last_mut()
            && (r.1 == "ocr" || r.1 == "recognition")
        {
            c[r.1.as_str()] = json!(r.2);
        }
    }
    let keys: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_key WHERE organization_id = $1 AND status = 'active'",
    )
    .bind(team)
    .fetch_one(&s.pool)
    .await?;
    let members: i64 =
        sqlx::query_scalar("SELECT count(*) FROM membership WHERE organization_id = $1")
            .bind(team)
            .fetch_one(&s.pool)
            .await?;
    let (used, quota, reset) = month_usage(&s, team).await?;
    let recent: Vec<ActivityRow> = sqlx::query_as(
        "SELECT u.usage_event_id, u.created_at, u.route, u.key_name,
                (SELECT k.prefix FROM api_key k WHERE k.api_key_id = u.api_key_id)
         FROM usage_event u WHERE u.organization_id = $1 ORDER BY u.created_at DESC LIMIT 10",
    )
    .bind(team)
    .fetch_all(&s.pool)
    .await?;
    let activity: Vec<Value> = recent
        .into_iter()
        .map(|(id, at, route, name, prefix)| {
            json!({
                "id": id, "type": "api_call",
                "description": format!("API Key '{}' utilizada para {}", name.unwrap_or_default(), service_label(&route)),
                "timestamp": rfc3339(at), "apiKey": prefix.map(|p| format!("{p}...")), "endpoint": endpoint(&route),
            })
        })
        .collect();
    Ok(ok(
        None,
        json!({
            "summary": {"totalRequests": total, "totalCost": brl_number(total_cost), "activeApiKeys": keys, "teamMembers": members},
            "usage": {"current": used, "limit": quota,
                      "percentage": quota.filter(|q| *q > 0).map(|q| used * 100 / q).unwrap_or(0), "resetDate": reset},
            "chartData": chart,
            "recentActivity": activity,
        }),
    ))
}

/// Micro-BRL as the contract's JSON number (exact amounts stay integers in the database).
fn brl_number(micros: i64) -> f64 {
    micros as f64 / 1_000_000.0
}

fn service_label(route: &str) -> &str {
    match route {
        "ocr" => "OCR",
        "recognition" => "reconhecimento",
        other => other,
    }
}

fn endpoint(route: &str) -> String {
    match route {
        "ocr" => "/v1/ocr".into(),
        "recognition" => "/v1/recognition".into(),
        other => format!("/v1/{}", other.replace('.', "/")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogsQ {
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

async fn usage_logs(
    State(s): State<AdminState>,
    User(u): User,
    Path(team): Path<String>,
    Query(q): Query<LogsQ>,
) -> Result<Json<Value>, SabiaError> {
    let (team, _) = role_in(&s, &u, &team).await?;
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
    let start = parse_date(&q.start_date, "startDate")?;
    let end = parse_date(&q.end_date, "endDate")?;
    if let Some(api) = &q.api
        && api != "ocr"
        && api != "recognition"
    {
        return Err(SabiaError::validation(
            "api",
            "api deve ser ocr ou recognition",
        ));
    }
    const FILTER: &str = "u.organization_id = $1 AND ($2::timestamptz IS NULL OR u.created_at >= $2)
         AND ($3::timestamptz IS NULL OR u.created_at <= $3) AND ($4::text IS NULL OR u.route = $4)";
    let rows: Vec<LogRow> = sqlx::query_as(&format!(
        "SELECT u.usage_event_id, u.created_at, u.route,
                (SELECT k.prefix FROM api_key k WHERE k.api_key_id = u.api_key_id), u.latency_ms, u.status
         FROM usage_event u WHERE {FILTER} ORDER BY u.created_at DESC LIMIT $5 OFFSET $6"
    ))
    .bind(team)
    .bind(start)
    .bind(end)
    .bind(&q.api)
    .bind(limit)
    .bind((page - 1) * limit)
    .fetch_all(&s.pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM usage_event u WHERE {FILTER}"
    ))
    .bind(team)
    .bind(start)
    .bind(end)
    .bind(&q.api)
    .fetch_one(&s.pool)
    .await?;
    let logs: Vec<Value> = rows
        .into_iter()
        .map(|(id, at, route, prefix, latency, status)| {
            json!({
                "id": id, "date": rfc3339(at), "api": route, "count": 1,
                "apiKey": prefix.map(|p| format!("{p}...")), "endpoint": endpoint(&route),
                "responseTime": latency,
                "status": if (200..400).contains(&status) { "success" } else { "error" },
            })
        })
        .collect();
    Ok(ok(
        None,
        json!({
            "logs": logs,
            "pagination": {"page": page, "limit": limit, "total": total, "totalPages": (total + limit - 1) / limit},
        }),
    ))
}

async fn usage_stats(
    State(s): State<AdminState>,
    User(u): User,
    Path(team): Path<String>,
    Query(q): Query<PeriodQ>,
) -> Result<Json<Value>, SabiaError> {
    let (team, _) = role_in(&s, &u, &team).await?;
    let (period, days) = period_days(q.period.as_deref(), &["7d", "30d", "90d", "1y"])?;
    let group = q.group_by.as_deref().unwrap_or("day");
    if !matches!(group, "day" | "week" | "month") {
        return Err(SabiaError::validation(
            "groupBy",
            "groupBy deve ser day, week ou month",
        ));
    }
    let rows = per_service(&s, team, days, group).await?;
    let mut stats: Vec<Value> = Vec::new();
    let mut total = 0i64;
    let mut total_cost = 0i64;
    for (bucket, service, requests, latency_sum, cost) in &rows {
        total += requests;
        total_cost += cost;
        if stats.last().is_none_or(|st| st["date"] != bucket.as_str()) {
            let zero = json!({"requests": 0, "cost": 0.0, "avgResponseTime": 0});
            stats.push(json!({"date": bucket, "ocr": zero, "recognition": zero, "total": {"requests": 0, "cost": 0.0}}));
        }
        if let Some(st) = stats.last_mut() {
            if service == "ocr" || service == "recognition" {
                st[service.as_str()] = json!({
                    "requests": requests, "cost": brl_number(*cost),
                    "avgResponseTime": if *requests > 0 { latency_sum / requests } else { 0 },
                });
            }
            let t = st["total"]["requests"].as_i64().unwrap_or(0) + requests;
            st["total"]["requests"] = json!(t);
            let c = st["total"]["cost"].as_f64().unwrap_or(0.0) + *cost as f64 / 1_000_000.0;
            st["total"]["cost"] = json!(c);
        }
    }
    Ok(ok(
        None,
        json!({
            "period": period,
            "groupBy": group,
            "stats": stats,
            "summary": {"totalRequests": total, "totalCost": brl_number(total_cost), "avgDailyRequests": total / i64::from(days),
                    "avgDailyCost": brl_number(total_cost / i64::from(days))},
        }),
    ))
}

// ---------- webhooks

/// Events a webhook may subscribe to.
pub const WEBHOOK_EVENTS: &[&str] = &[
    "usage_limit_reached",
    "payment_failed",
    "plan_changed",
    "api_key_created",
    "api_key_revoked",
];

#[derive(Deserialize)]
struct WebhookReq {
    url: Option<String>,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    secret: Option<String>,
}

async fn create_webhook(
    State(s): State<AdminState>,
    User(u): User,
    Path(team): Path<String>,
    Body(r): Body<WebhookReq>,
) -> Result<(StatusCode, Json<Value>), SabiaError> {
    let team = admin_of(&s, &u, &team).await?;
    let url = required(&r.url, "url")?;
    let parsed: Option<http::Uri> = url.parse().ok();
    if !parsed
        .as_ref()
        .is_some_and(|p| matches!(p.scheme_str(), Some("http" | "https")) && p.host().is_some())
        || url.len() > 2000
    {
        return Err(SabiaError::validation("url", "URL http(s) inválida"));
    }
    if r.events.is_empty() || r.events.len() > WEBHOOK_EVENTS.len() {
        return Err(SabiaError::validation(
            "events",
            "Informe ao menos um evento",
        ));
    }
    if r.secret
        .as_ref()
        .is_some_and(|s| s.is_empty() || s.len() > 256)
    {
        return Err(SabiaError::validation("secret", "De 1 a 256 caracteres"));
    }
    // never a webhook to this machine, the private network or a metadata service
    crate::domain::outbound::check_at_creation(url, s.outbound)
        .await
        .map_err(|_| {
            SabiaError::validation("url", "A URL aponta para um endereço interno ou privado")
        })?;
    if let Some(bad) = r
        .events
        .iter()
        .find(|e| !WEBHOOK_EVENTS.contains(&e.as_str()))
    {
        return Err(SabiaError::validation(
            "events",
            &format!("Evento desconhecido: {bad}"),
        ));
    }
    let sealed = match (&r.secret, &s.secrets) {
        (None, _) => None,
        (Some(sec), Some(b)) => Some(b.seal(sec.as_bytes()).ok_or_else(SabiaError::internal)?),
        (Some(_), None) => {
            tracing::error!("webhook secret refused: CATRACA_SECRET_KEY is not configured");
            return Err(SabiaError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SECRET_STORAGE_UNAVAILABLE",
                "Armazenamento de segredos não configurado",
            ));
        }
    };
    let (id, created): (Uuid, time::OffsetDateTime) = sqlx::query_as(
        "INSERT INTO webhook (organization_id, url, events, secret_sealed) VALUES ($1, $2, $3, $4)
         RETURNING webhook_id, created_at",
    )
    .bind(team)
    .bind(url)
    .bind(&r.events)
    .bind(sealed)
    .fetch_one(&s.pool)
    .await?;
    Ok((
        StatusCode::CREATED,
        ok(
            Some("Webhook configurado com sucesso"),
            json!({"id": id, "url": url, "events": r.events, "status": "active", "createdAt": rfc3339(created)}),
        ),
    ))
}

/// id, url, events, status, last triggered, created
type WebhookRow = (
    Uuid,
    String,
    Vec<String>,
    String,
    Option<time::OffsetDateTime>,
    time::OffsetDateTime,
);

async fn list_webhooks(
    State(s): State<AdminState>,
    User(u): User,
    Path(team): Path<String>,
) -> Result<Json<Value>, SabiaError> {
    let (team, _) = role_in(&s, &u, &team).await?;
    let rows: Vec<WebhookRow> = sqlx::query_as(
        "SELECT webhook_id, url, events, status, last_triggered_at, created_at FROM webhook
         WHERE organization_id = $1 ORDER BY created_at",
    )
    .bind(team)
    .fetch_all(&s.pool)
    .await?;
    let data: Vec<Value> = rows
        .into_iter()
        .map(|(id, url, events, status, last, created)| {
            json!({"id": id, "url": url, "events": events, "status": status,
                   "lastTriggered": last.map(rfc3339), "createdAt": rfc3339(created)})
        })
        .collect();
    Ok(ok(None, Value::Array(data)))
}
