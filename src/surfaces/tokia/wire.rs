//! Tokia's wire: errors as `{"error": {"message", "type", "code"}}` with pt-BR messages (English
//! with `Accept-Language: en`), the API-key extractor, a query extractor that rejects in that
//! shape, and the JSON and CSV of each answer. Amounts are exact: JSON numbers from
//! [`Micros::json_number`], CSV text from [`Micros::decimal`].

use axum::Json;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::admin::{AdminState, rfc3339};
use crate::domain::keys::{KeyOwner, KeyUsage};
use crate::domain::ledger::Wallet;
use crate::domain::money::Micros;
use crate::domain::usage::{Dashboard, Event, Recommendation, Runway, Summary};
use crate::domain::{DomainError, Entity};
use crate::surfaces::kit::csv_cell;

/// Tokia's error: a status, OpenAI's `type` and a stable `code`, and the message in both
/// languages (pt-BR is sent unless the client asks for English).
#[derive(Debug)]
pub struct TokiaError {
    status: StatusCode,
    kind: &'static str,
    code: &'static str,
    pt: String,
    en: String,
    retry_after: Option<u64>,
}

/// The English body of an error answer, for [`language`] to swap in.
#[derive(Clone)]
struct English(Bytes);

impl TokiaError {
    /// An error with both messages.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        pt: impl Into<String>,
        en: impl Into<String>,
    ) -> Self {
        TokiaError {
            status,
            kind,
            code,
            pt: pt.into(),
            en: en.into(),
            retry_after: None,
        }
    }

    /// 400 `invalid_parameter` naming the parameter; `reason` in English, translated when it
    /// is one of the domain's phrasings.
    pub fn invalid(field: &str, reason: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_parameter",
            format!("Parâmetro inválido: {field} ({})", pt_reason(reason)),
            format!("Invalid parameter: {field} ({reason})"),
        )
    }

    /// 401 `missing_api_key`.
    pub fn missing_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "missing_api_key",
            "Chave de API ausente ou inválida: envie a chave em Authorization: Bearer sk-tokia-...",
            "Missing or invalid API key: send Authorization: Bearer sk-tokia-...",
        )
    }
}

/// The pt-BR wording of the domain's English reasons.
fn pt_reason(reason: &str) -> String {
    if let Some(rest) = reason.strip_prefix("between ") {
        return format!("entre {}", rest.replace(" and ", " e "));
    }
    match reason {
        "a date YYYY-MM-DD" => "uma data AAAA-MM-DD".into(),
        "after to" => "posterior a to".into(),
        "at most 366 days after from" => "no máximo 366 dias contando from".into(),
        "an integer" => "um número inteiro".into(),
        "a UUID" => "um UUID".into(),
        "out of range" => "fora do intervalo".into(),
        _ => "valor inválido".into(),
    }
}

impl IntoResponse for TokiaError {
    fn into_response(self) -> Response {
        let body = |message: &str| json!({"error": {"message": message, "type": self.kind, "code": self.code}});
        let english = Bytes::from(body(&self.en).to_string());
        let mut r = (self.status, Json(body(&self.pt))).into_response();
        r.extensions_mut().insert(English(english));
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, s.into());
        }
        r
    }
}

impl From<DomainError> for TokiaError {
    fn from(e: DomainError) -> Self {
        use StatusCode as S;
        match e {
            DomainError::Invalid { field, reason } => Self::invalid(field, &reason),
            DomainError::Unauthorized(_) => Self::new(
                S::UNAUTHORIZED,
                "authentication_error",
                "invalid_api_key",
                "Chave de API inválida, revogada ou expirada",
                "Invalid, revoked or expired API key",
            ),
            DomainError::NotFound(Entity::Key) => Self::new(
                S::NOT_FOUND,
                "invalid_request_error",
                "key_not_found",
                "Chave de API não encontrada",
                "API key not found",
            ),
            DomainError::NotFound(_) => Self::new(
                S::NOT_FOUND,
                "invalid_request_error",
                "not_found",
                "Recurso não encontrado",
                "Not found",
            ),
            DomainError::Forbidden(_) => Self::new(
                S::FORBIDDEN,
                "permission_error",
                "forbidden",
                "Permissão insuficiente",
                "Insufficient permissions",
            ),
            DomainError::Conflict(c) => Self::new(
                S::CONFLICT,
                "invalid_request_error",
                "conflict",
                "Conflito com o estado atual",
                c.to_string(),
            ),
            DomainError::MissingVariables(m) => Self::new(
                S::BAD_REQUEST,
                "invalid_request_error",
                "missing_variables",
                format!("Variáveis ausentes: {m}"),
                m,
            ),
            DomainError::Throttled { retry_after_secs } => TokiaError {
                retry_after: Some(retry_after_secs),
                ..Self::new(
                    S::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    "rate_limited",
                    "Muitas requisições; tente novamente mais tarde",
                    "Too many requests; retry later",
                )
            },
            DomainError::NotConfigured(what) => Self::new(
                S::SERVICE_UNAVAILABLE,
                "api_error",
                "not_configured",
                "Recurso não configurado neste servidor",
                format!("{what} is not configured on this server"),
            ),
            DomainError::Unavailable => Self::new(
                S::SERVICE_UNAVAILABLE,
                "api_error",
                "service_unavailable",
                "Serviço temporariamente indisponível; tente novamente",
                "Service temporarily unavailable; retry shortly",
            ),
            DomainError::Internal => Self::new(
                S::INTERNAL_SERVER_ERROR,
                "api_error",
                "internal_error",
                "Erro interno do servidor",
                "Internal server error",
            ),
        }
    }
}

/// The gateway's 402 for a Tokia key whose organization's balance cannot cover a request:
/// `{"error": {"message", "type": "insufficient_quota", "param": null, "code":
/// "saldo_insuficiente"}}` (OpenAI's shape, which is Tokia's, plus OpenAI's `param`).
pub fn low_balance(english: bool) -> bytes::Bytes {
    if english {
        bytes::Bytes::from_static(
            br#"{"error":{"message":"Insufficient balance: top up your account (PIX) to continue","type":"insufficient_quota","param":null,"code":"saldo_insuficiente"}}"#,
        )
    } else {
        bytes::Bytes::from_static(
            "{\"error\":{\"message\":\"Saldo insuficiente: recarregue sua conta (PIX) para continuar\",\"type\":\"insufficient_quota\",\"param\":null,\"code\":\"saldo_insuficiente\"}}".as_bytes(),
        )
    }
}

/// Whether the client prefers English: the `Accept-Language` entry with the highest `q`
/// (the first among equals) is `en` or `en-*`. Anything else, or no header, is pt-BR.
pub fn wants_english(headers: &HeaderMap) -> bool {
    let Some(v) = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut best: Option<(f32, &str)> = None;
    for entry in v.split(',') {
        let mut parts = entry.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if tag.is_empty() || q <= 0.0 {
            continue;
        }
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, tag));
        }
    }
    best.is_some_and(|(_, tag)| {
        let primary = tag.split('-').next().unwrap_or("");
        primary.eq_ignore_ascii_case("en")
    })
}

/// Middleware on every Tokia route: an error answer is re-rendered in English when the
/// client asks for it.
pub async fn language(req: Request, next: Next) -> Response {
    let english = wants_english(req.headers());
    let mut r = next.run(req).await;
    if let Some(English(body)) = r.extensions_mut().remove::<English>()
        && english
    {
        let (mut parts, _) = r.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        r = Response::from_parts(parts, axum::body::Body::from(body));
    }
    r
}

/// What every Tokia key starts with; another platform's key is refused here before any lookup.
pub const KEY_PREFIX: &str = "sk-tokia-";

/// The organization (and user) of the request's API key (`Authorization: Bearer sk-tokia-…`).
pub struct Caller(pub KeyOwner);

impl FromRequestParts<AdminState> for Caller {
    type Rejection = TokiaError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, TokiaError> {
        let key = crate::admin::extract::bearer(parts).ok_or_else(TokiaError::missing_key)?;
        if !key.starts_with(KEY_PREFIX) {
            return Err(DomainError::Unauthorized(crate::domain::Unauthorized::BadToken).into());
        }
        Ok(Caller(
            crate::domain::keys::resolve(&state.pool, key).await?,
        ))
    }
}

/// Query string with Tokia's 400 on a malformed one.
pub struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = TokiaError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, TokiaError> {
        crate::surfaces::kit::query(parts, state)
            .await
            .map(Query)
            .map_err(|e| TokiaError::invalid("query", &e.0))
    }
}

/// An amount as a JSON number.
pub fn brl(m: Micros) -> Value {
    m.json_number()
}

/// The YAML's `Balance` plus `total_refunded_brl` and `held_brl`.
pub fn balance(w: &Wallet) -> Value {
    json!({
        "balance_brl": brl(w.balance),
        "total_topped_up_brl": brl(w.topped_up),
        "total_spent_brl": brl(w.spent),
        "total_refunded_brl": brl(w.refunded),
        "held_brl": brl(w.held),
    })
}

/// The columns of an exported event, in order (the JSON export's keys are the same).
pub const EVENT_COLUMNS: [&str; 16] = [
    "id",
    "created_at",
    "date",
    "request_id",
    "api_key_id",
    "key_name",
    "key_prefix",
    "model",
    "route",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "cost_brl",
    "cost_upstream_usd",
    "latency_ms",
    "session_id",
];

/// One event.
pub fn event(e: &Event) -> Value {
    json!({
        "id": e.usage_event_id,
        "created_at": rfc3339(e.created_at),
        "date": e.local_date,
        "request_id": e.request_id,
        "api_key_id": e.api_key_id,
        "key_name": e.key_name,
        "key_prefix": e.key_prefix,
        "model": e.model,
        "route": e.route,
        "status": e.status,
        "prompt_tokens": e.prompt_tokens,
        "completion_tokens": e.completion_tokens,
        "cost_brl": e.cost_billed_brl_micros.map(|m| brl(Micros(m))),
        "cost_upstream_usd": e.cost_upstream_usd_micros.map(|m| brl(Micros(m))),
        "latency_ms": e.latency_ms,
        "session_id": e.session_id,
    })
}

/// The start of a CSV export: the UTF-8 BOM (Excel reads the file as UTF-8) and the header.
pub fn csv_head() -> String {
    format!("\u{feff}{}\r\n", EVENT_COLUMNS.join(","))
}

/// One event as a CSV line (RFC 4180, CRLF, `.` decimals, formulas defused); an absent value
/// is an empty cell.
pub fn csv_line(e: &Event) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let money = |v: Option<i64>| v.map(|m| Micros(m).decimal()).unwrap_or_default();
    let cells = [
        e.usage_event_id.to_string(),
        rfc3339(e.created_at),
        e.local_date.clone(),
        e.request_id.clone(),
        e.api_key_id.map(|k| k.to_string()).unwrap_or_default(),
        opt(&e.key_name),
        opt(&e.key_prefix),
        opt(&e.model),
        e.route.clone(),
        e.status.to_string(),
        e.prompt_tokens.to_string(),
        e.completion_tokens.to_string(),
        money(e.cost_billed_brl_micros),
        money(e.cost_upstream_usd_micros),
        e.latency_ms.to_string(),
        opt(&e.session_id),
    ];
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// `GET me/usage-summary`.
pub fn summary(s: &Summary) -> Value {
    let mut v = json!({
        "period_days": s.days.get(),
        "period_totals": {
            "requests": s.totals.requests,
            "cost_billed_brl": brl(s.totals.billed),
            "cost_upstream_usd": brl(s.totals.cost_usd),
            "prompt_tokens": s.totals.prompt_tokens,
            "completion_tokens": s.totals.completion_tokens,
        },
        "top_models": s.top_models.iter().map(|m| json!({
            "model_id": m.model,
            "model_name": m.model,
            "requests": m.requests,
            "cost_billed_brl": brl(Micros(m.billed_brl_micros)),
        })).collect::<Vec<_>>(),
        "unique_models_used": s.unique_models,
    });
    if let (Value::Object(out), Value::Object(b)) = (&mut v, balance(&s.wallet)) {
        out.extend(b);
    }
    v
}

/// `GET me/runway`.
pub fn runway(r: &Runway) -> Value {
    json!({
        "balance_brl": brl(r.balance),
        "period_days": r.days.get(),
        "daily_avg_brl": brl(r.daily_avg),
        "runway_days": r.runway_days,
        "critical": r.critical,
    })
}

/// `GET me/dashboard-stats`.
pub fn dashboard(d: &Dashboard) -> Value {
    json!({
        "profile": d.profile.as_ref().map(|c| json!({"id": c.user_id, "name": c.name, "email": c.email})),
        "balance_brl": brl(d.wallet.balance),
        "keys": {"active": d.counts.keys_active, "revoked": d.counts.keys_revoked},
        "topups": {"paid": d.wallet.topups, "total": d.wallet.topups},
        "notifications": {"failed": d.counts.notifications_failed, "total": d.counts.notifications_total},
    })
}

/// `GET usage/by-key`.
pub fn by_key(days: i32, keys: &[KeyUsage]) -> Value {
    json!({
        "period_days": days,
        "keys": keys.iter().map(|k| json!({
            "id": k.api_key_id,
            "name": k.name,
            "prefix": k.prefix,
            "status": k.status,
            "created_at": rfc3339(k.created_at),
            "revoked_at": k.revoked_at.map(rfc3339),
            "requests": k.requests,
            "prompt_tokens": k.prompt_tokens,
            "completion_tokens": k.completion_tokens,
            "cost_billed_brl": brl(Micros(k.billed_brl_micros)),
            "cost_upstream_usd": brl(Micros(k.cost_usd_micros)),
            "last_request_at": k.last_request_at.map(rfc3339),
            "top_models": k.top_models,
        })).collect::<Vec<_>>(),
    })
}

/// `GET me/recommendations`.
pub fn recommendations(days: i32, list: &[Recommendation]) -> Value {
    json!({
        "period_days": days,
        "recommendations": list.iter().map(|r| json!({
            "model": r.model,
            "category": r.category,
            "requests": r.requests,
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "current_cost_brl": brl(r.current_cost),
            "suggested_model": r.suggested_model,
            "suggested_cost_brl": brl(r.suggested_cost),
            "saving_brl": brl(r.saving),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_only_when_preferred() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_LANGUAGE, v.parse().unwrap());
            wants_english(&m)
        };
        assert!(!wants_english(&HeaderMap::new()));
        assert!(h("en") && h("en-US") && h("EN-gb,pt;q=0.5"));
        assert!(!h("pt-BR,pt;q=0.9,en;q=0.8") && !h("pt") && !h("*"));
        assert!(h("pt;q=0.4, en;q=0.9"));
    }

    #[test]
    fn reasons_are_translated() {
        assert_eq!(pt_reason("between 1 and 365"), "entre 1 e 365");
        assert_eq!(pt_reason("something new"), "valor inválido");
    }
}
