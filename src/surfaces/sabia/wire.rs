//! SabIA's wire: the `{"success", "message"?, "data"}` envelope, errors as
//! `{"success": false, "error": {"code", "message", "details"?}}` with the contract's codes and
//! pt-BR messages, extractors that reject in that shape, and the JSON of each answer.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::admin::extract::AuthUser;
use crate::admin::{AdminState, rfc3339};
use crate::domain::accounts::Card;
use crate::domain::keys::TeamKey;
use crate::domain::money::Micros;
use crate::domain::orgs::Member;
use crate::domain::plans::Plan;
use crate::domain::webhooks::Webhook;
use crate::domain::{Conflict, DomainError, Entity, Unauthorized};

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
    /// An error with no details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        SabiaError {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// 400 VALIDATION_ERROR naming the field.
    pub fn validation(field: &str, message: &str) -> Self {
        SabiaError {
            details: Some(Box::new(json!([{"field": field, "message": message}]))),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "Dados de validação inválidos",
            )
        }
    }

    /// 404 TEAM_NOT_FOUND (also for teams that are not the caller's).
    pub fn team_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "TEAM_NOT_FOUND",
            "Time não encontrado",
        )
    }

    /// 404 API_KEY_NOT_FOUND.
    pub fn key_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "API_KEY_NOT_FOUND",
            "API Key não encontrada",
        )
    }

    /// 404 USER_NOT_FOUND.
    pub fn user_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "USER_NOT_FOUND",
            "Usuário não encontrado",
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

/// The pt-BR message for a field the domain refused.
fn field_message(field: &str) -> &'static str {
    match field {
        "name" => "Nome inválido (1 a 200 caracteres)",
        "email" => "Email inválido",
        "password" | "newPassword" => "A senha deve ter de 8 a 256 caracteres",
        "phone" => "Telefone com no máximo 32 caracteres",
        "company" => "Empresa com no máximo 200 caracteres",
        "plan" => "Plano inexistente",
        "billingCycle" => "Ciclo deve ser monthly ou annual",
        "role" => "Papel deve ser admin, member ou viewer",
        "description" => "Descrição com no máximo 2000 caracteres",
        "url" => "URL http(s) inválida ou apontando para um endereço interno ou privado",
        "events" => {
            "Informe eventos entre usage_limit_reached, payment_failed, plan_changed, api_key_created, api_key_revoked e alert_fired"
        }
        "secret" => "De 1 a 256 caracteres",
        "groupBy" => "groupBy deve ser day, week ou month",
        "startDate" => "startDate deve ser anterior a endDate",
        "page" => "page inválida",
        _ => "Valor inválido",
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
            DomainError::Conflict(Conflict::AlreadyMember) => Self::new(
                StatusCode::CONFLICT,
                "MEMBER_ALREADY_EXISTS",
                "Usuário já é membro do time",
            ),
            DomainError::Conflict(c) => Self::new(StatusCode::CONFLICT, "CONFLICT", c.to_string()),
            DomainError::Invalid { field, .. } => Self::validation(field, field_message(field)),
            DomainError::MissingVariables(m) => Self::validation("variables", &m),
            DomainError::Throttled { retry_after_secs } => SabiaError {
                retry_after: Some(retry_after_secs.min(u64::from(u32::MAX)) as u32),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TOO_MANY_REQUESTS",
                    "Muitas tentativas; tente novamente mais tarde",
                )
            },
            DomainError::NotFound(Entity::Organization) => Self::team_not_found(),
            DomainError::NotFound(Entity::Key) => Self::key_not_found(),
            DomainError::NotFound(Entity::User) => Self::user_not_found(),
            DomainError::NotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "Não encontrado")
            }
            DomainError::Forbidden(_) => Self::new(
                StatusCode::FORBIDDEN,
                "INSUFFICIENT_PERMISSIONS",
                "Permissões insuficientes",
            ),
            DomainError::NotConfigured("secret storage") => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SECRET_STORAGE_UNAVAILABLE",
                "Armazenamento de segredos não configurado",
            ),
            DomainError::NotConfigured(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "NOT_CONFIGURED",
                "Recurso não configurado neste servidor",
            ),
            DomainError::Unavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "Serviço temporariamente indisponível",
            ),
            DomainError::Internal => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "Erro interno do servidor",
            ),
        }
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
            .map_err(|e| SabiaError::validation("body", &e.0))
    }
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

/// SabIA's code for a gateway error (its `/v1/ocr` and `/v1/recognition` services).
pub fn gateway_code(e: &crate::error::ApiError) -> &'static str {
    use crate::error::ApiError;
    match e {
        ApiError::InvalidJson(_)
        | ApiError::InvalidRequest(_)
        | ApiError::BodyTooLarge(_)
        | ApiError::HeadersTooLarge
        | ApiError::UnsupportedMediaType(_) => "VALIDATION_ERROR",
        ApiError::RequestTimeout => "REQUEST_TIMEOUT",
        ApiError::MissingKey | ApiError::InvalidKey | ApiError::ExpiredKey => "UNAUTHORIZED",
        ApiError::DisabledKey => "API_KEY_REVOKED",
        ApiError::ModelNotAllowed(_) | ApiError::ScopeMissing(_) => "INSUFFICIENT_PERMISSIONS",
        ApiError::ModelNotFound(_) | ApiError::RouteNotFound(_) => "NOT_FOUND",
        ApiError::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
        ApiError::RateLimited { .. } => "RATE_LIMIT_EXCEEDED",
        ApiError::InsufficientBalance | ApiError::BudgetExceeded => "PAYMENT_REQUIRED",
        ApiError::UsageLimitExceeded { .. } => "USAGE_LIMIT_EXCEEDED",
        _ => "INTERNAL_ERROR",
    }
}

/// A gateway error in SabIA's shape: `{"success": false, "error": {"code", "message"}}`, with
/// the status the gateway's catalogue gives it.
pub fn gateway_error(e: &crate::error::ApiError) -> bytes::Bytes {
    let v = json!({
        "success": false,
        "error": {"code": gateway_code(e), "message": e.to_string()},
    });
    bytes::Bytes::from(v.to_string())
}

/// The success envelope.
pub fn ok(message: Option<&str>, data: Value) -> Json<Value> {
    let mut v = json!({"success": true, "data": data});
    if let Some(m) = message {
        v["message"] = Value::String(m.to_string());
    }
    Json(v)
}

/// The envelope of answers that carry only a message.
pub fn done(message: &str) -> Json<Value> {
    Json(json!({"success": true, "message": message}))
}

/// Contract role names: owners show as admins.
pub fn role_name(role: &str) -> &str {
    if role == "owner" { "admin" } else { role }
}

/// A user.
pub fn user(c: &Card) -> Value {
    json!({
        "id": c.user_id, "name": c.name, "email": c.email, "phone": c.phone, "company": c.company,
        "avatar": c.avatar_url, "createdAt": rfc3339(c.created_at), "emailVerified": c.email_verified,
    })
}

/// A team member.
pub fn member(m: &Member) -> Value {
    json!({"id": m.user_id, "name": m.name, "email": m.email, "role": role_name(&m.role), "avatar": m.avatar_url})
}

/// "R$ 99" / "R$ 1.999" / "Gratuito": a price as the contract's plan cards show it.
pub fn price_label(micros: i64) -> String {
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

/// A plan card.
pub fn plan(p: &Plan) -> Value {
    let free = p.price_brl_micros == 0;
    json!({
        "id": p.code,
        "name": p.name,
        "price": price_label(p.price_brl_micros),
        "priceSubtext": if free { "Para desenvolvimento" } else { "/mês" },
        "annualPrice": price_label(p.annual_price_brl_micros),
        "annualPriceSubtext": if free { "Para desenvolvimento" } else { "/ano" },
        "mainFeature": p.main_feature,
        "features": p.features,
        "cta": p.cta,
        "ctaVariant": p.cta_variant,
        "popular": p.popular,
    })
}

/// A key as lists show it: the display prefix, never the plaintext.
pub fn key(k: &TeamKey) -> Value {
    json!({
        "id": k.serial_id,
        "key": format!("{}...", k.prefix),
        "name": k.name,
        "description": k.description,
        "createdAt": rfc3339(k.created_at),
        "status": k.status,
        "lastUsed": k.last_used_at.map(rfc3339),
    })
}

/// A webhook (never its secret).
pub fn webhook(w: &Webhook) -> Value {
    json!({"id": w.webhook_id, "url": w.url, "events": w.events, "status": w.status,
           "lastTriggered": w.last_triggered_at.map(rfc3339), "createdAt": rfc3339(w.created_at)})
}

/// Micro-BRL as the contract's JSON number (exact: through [`Micros::json_number`]).
pub fn brl(micros: i64) -> Value {
    Micros(micros).json_number()
}

/// How a route is named in activity descriptions.
pub fn service_label(route: &str) -> &str {
    match route {
        "ocr" => "OCR",
        "recognition" => "reconhecimento",
        other => other,
    }
}

/// The public path of a route.
pub fn endpoint(route: &str) -> String {
    match route {
        "ocr" => "/v1/ocr".into(),
        "recognition" => "/v1/recognition".into(),
        other => format!("/v1/{}", other.replace('.', "/")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_used_up_plan_quota_is_usage_limit_exceeded_in_sabias_shape() {
        let e = crate::error::ApiError::UsageLimitExceeded { retry_after: 60 };
        assert_eq!((e.status(), e.retry_after()), (429, Some(60)));
        let v: Value = serde_json::from_slice(&gateway_error(&e)).unwrap_or_default();
        assert_eq!(v["success"], false);
        assert_eq!(v["error"]["code"], "USAGE_LIMIT_EXCEEDED");
        let v: Value = serde_json::from_slice(&e.body()).unwrap_or_default();
        assert_eq!(v["error"]["code"], "usage_limit_exceeded");
        assert_eq!(v["error"]["type"], "insufficient_quota");
    }

    #[test]
    fn price_labels_group_thousands_and_keep_cents() {
        assert_eq!(price_label(0), "Gratuito");
        assert_eq!(price_label(99_000_000), "R$ 99");
        assert_eq!(price_label(1_999_000_000), "R$ 1.999");
        assert_eq!(price_label(1_234_567_500_000), "R$ 1.234.567,50");
    }
}
