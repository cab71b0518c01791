//! The operator API's wire: `{"error":{"code","message","details"}}` errors, the master-key
//! check, extractors that reject in that shape, and the JSON of organizations, keys and
//! ledger entries. Ids are strings; money is exact decimal text.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::admin::rfc3339;
use crate::domain::keys::OperatorKey;
use crate::domain::money::Micros;
use crate::domain::orgs::Organization;
use crate::domain::{DomainError, Entity};

/// An operator API error.
#[derive(Debug)]
pub struct OpError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
}

impl OpError {
    /// A status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        OpError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
        }
    }

    /// 400 `invalid_request` about `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        OpError {
            details: json!([{"field": field, "message": message}]),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("{field}: {message}"),
            )
        }
    }
}

impl IntoResponse for OpError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        (self.status, Json(body)).into_response()
    }
}

impl From<DomainError> for OpError {
    fn from(e: DomainError) -> Self {
        match &e {
            DomainError::Invalid { field, reason } => OpError::invalid(field, reason.clone()),
            DomainError::NotFound(what) => OpError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{} not found", what.as_str()),
            ),
            DomainError::Forbidden(_) => {
                OpError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
            }
            DomainError::Conflict(_) => {
                OpError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            DomainError::Unauthorized(_) => {
                OpError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
            }
            DomainError::Throttled { .. } => OpError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                e.to_string(),
            ),
            DomainError::MissingVariables(m) => {
                OpError::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", m.clone())
            }
            DomainError::NotConfigured(what) => OpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_configured",
                format!("{what} is not configured on this server"),
            ),
            DomainError::Unavailable => OpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is unavailable; retry shortly",
            ),
            DomainError::Internal => OpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ),
        }
    }
}

/// SHA-256 of the master key: `CATRACA_MASTER_KEY` (the key itself), else
/// `CATRACA_MASTER_KEY_SHA256` (its SHA-256 in hex, so the key itself need not be on the box).
/// Read once.
fn master_hash() -> Option<[u8; 32]> {
    static MASTER: std::sync::OnceLock<Option<[u8; 32]>> = std::sync::OnceLock::new();
    *MASTER.get_or_init(|| {
        if let Ok(k) = std::env::var("CATRACA_MASTER_KEY")
            && k.len() >= 16
        {
            return Some(Sha256::digest(k.as_bytes()).into());
        }
        let hex_hash = std::env::var("CATRACA_MASTER_KEY_SHA256").ok()?;
        let bytes = hex::decode(hex_hash.trim()).ok()?;
        <[u8; 32]>::try_from(bytes).ok()
    })
}

/// The operator: a request bearing the master key (compared as SHA-256, in constant time).
/// No master key configured: 503; none presented: 401; another credential (a customer's
/// token, an API key): 403.
pub struct Operator;

impl<S: Send + Sync> FromRequestParts<S> for Operator {
    type Rejection = OpError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, OpError> {
        let Some(want) = master_hash() else {
            return Err(OpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "operator_api_disabled",
                "the operator API needs a master key: set CATRACA_MASTER_KEY (16 characters or more) or CATRACA_MASTER_KEY_SHA256",
            ));
        };
        let Some(token) = crate::admin::extract::bearer(parts) else {
            return Err(OpError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authorization: Bearer <master key> is required",
            ));
        };
        let got: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if bool::from(subtle::ConstantTimeEq::ct_eq(&got[..], &want[..])) {
            Ok(Operator)
        } else {
            Err(OpError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this credential is not the operator's master key",
            ))
        }
    }
}

/// JSON body, refused in the operator's shape (NUL included).
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = OpError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, OpError> {
        crate::surfaces::kit::json(req, state)
            .await
            .map(Body)
            .map_err(|e| OpError::invalid("body", e.0))
    }
}

/// Query string, refused in the operator's shape.
pub struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = OpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, OpError> {
        crate::surfaces::kit::query(parts, state)
            .await
            .map(Query)
            .map_err(|e| OpError::invalid("query", e.0))
    }
}

/// A path id that must be a UUID (checked before any lookup).
pub fn uuid(raw: &str, what: Entity) -> Result<uuid::Uuid, OpError> {
    raw.parse()
        .map_err(|_| OpError::invalid("id", format!("not a valid {} id", what.as_str())))
}

/// An organization.
pub fn org(o: &Organization) -> Value {
    json!({
        "id": o.organization_id.to_string(),
        "slug": o.slug,
        "name": o.name,
        "kind": o.kind,
        "tier": o.tier,
        "plan": o.plan,
        "prepaid": o.balance_brl_micros.is_some(),
        "balance_brl": o.balance_brl_micros.map(|b| Micros(b).decimal()),
        "disabled": o.disabled_at.is_some(),
        "limits": {"rps": o.rate_limit_rps, "rpm": o.rate_limit_rpm, "rpd": o.rate_limit_rpd,
                   "tpm": o.rate_limit_tpm, "concurrency": o.max_concurrency},
        "created_at": rfc3339(o.created_at),
    })
}

/// A field that may be absent (kept), `null` (cleared) or a value: `#[serde(default,
/// deserialize_with = "wire::patch")]` on an `Option<Option<T>>`.
pub fn patch<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// Limits as JSON gives them (absent: kept; null: none; a positive integer).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsReq {
    #[serde(default, deserialize_with = "patch")]
    rps: Option<Option<i64>>,
    #[serde(default, deserialize_with = "patch")]
    rpm: Option<Option<i64>>,
    #[serde(default, deserialize_with = "patch")]
    rpd: Option<Option<i64>>,
    #[serde(default, deserialize_with = "patch")]
    tpm: Option<Option<i64>>,
    #[serde(default, deserialize_with = "patch")]
    concurrency: Option<Option<i64>>,
}

impl LimitsReq {
    /// The domain's patch; values beyond 32 bits are refused naming the field.
    pub fn patch(&self) -> Result<crate::domain::plans::LimitsPatch, OpError> {
        fn one(v: Option<Option<i64>>, field: &str) -> Result<Option<Option<i32>>, OpError> {
            match v {
                Some(Some(n)) => i32::try_from(n)
                    .map(|n| Some(Some(n)))
                    .map_err(|_| OpError::invalid(field, "a positive 32-bit integer")),
                Some(None) => Ok(Some(None)),
                None => Ok(None),
            }
        }
        Ok(crate::domain::plans::LimitsPatch {
            rps: one(self.rps, "rps")?,
            rpm: one(self.rpm, "rpm")?,
            rpd: one(self.rpd, "rpd")?,
            tpm: one(self.tpm, "tpm")?,
            concurrency: one(self.concurrency, "concurrency")?,
        })
    }
}

/// A plan.
pub fn plan(p: &crate::domain::plans::Plan) -> Value {
    json!({
        "code": p.code,
        "name": p.name,
        "price_brl": Micros(p.price_brl_micros).decimal(),
        "annual_price_brl": Micros(p.annual_price_brl_micros).decimal(),
        "monthly_request_quota": p.monthly_request_quota,
        "limits": {"rps": p.rate_limit_rps, "rpm": p.rate_limit_rpm, "rpd": p.rate_limit_rpd,
                   "tpm": p.rate_limit_tpm, "concurrency": p.max_concurrency},
        "features": p.features,
        "popular": p.popular,
    })
}

/// A user from the list, with every membership.
pub fn listed_user(u: &crate::domain::accounts::UserListed) -> Value {
    json!({
        "id": u.user_id.to_string(),
        "email": u.email,
        "name": u.name,
        "disabled": u.disabled_at.is_some(),
        "created_at": rfc3339(u.created_at),
        "memberships": u.memberships,
    })
}

/// One row of a usage report.
pub fn report_row(r: &crate::domain::usage::ReportRow) -> Value {
    json!({
        "day": r.day,
        "id": r.group_id,
        "label": r.label,
        "requests": r.requests,
        "successful": r.successful,
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "cost_usd": Micros(r.cost_usd_micros).decimal(),
        "billed_brl": Micros(r.billed_brl_micros).decimal(),
    })
}

/// The CSV header of a usage report.
pub const REPORT_CSV_HEADER: &str = "day,group_by,id,label,requests,successful,prompt_tokens,completion_tokens,cost_usd,billed_brl\r\n";

pub use crate::surfaces::kit::csv_cell;

/// One row of a usage report as a CSV line (CRLF).
pub fn report_csv(group: &str, r: &crate::domain::usage::ReportRow) -> String {
    let cells = [
        r.day.clone(),
        group.to_string(),
        r.group_id.clone(),
        r.label.clone().unwrap_or_default(),
        r.requests.to_string(),
        r.successful.to_string(),
        r.prompt_tokens.to_string(),
        r.completion_tokens.to_string(),
        Micros(r.cost_usd_micros).decimal(),
        Micros(r.billed_brl_micros).decimal(),
    ];
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// A webhook; `secret` only in the answer to its creation.
pub fn webhook(
    w: &crate::domain::webhooks::Webhook,
    org: uuid::Uuid,
    secret: Option<&str>,
) -> Value {
    let mut v = json!({
        "id": w.webhook_id.to_string(),
        "organization_id": org.to_string(),
        "url": w.url,
        "events": w.events,
        "status": w.status,
        "last_triggered_at": w.last_triggered_at.map(rfc3339),
        "created_at": rfc3339(w.created_at),
    });
    if let Some(s) = secret {
        v["secret"] = Value::String(s.to_string());
    }
    v
}

/// A key (never its plaintext).
pub fn key(k: &OperatorKey) -> Value {
    json!({
        "id": k.api_key_id.to_string(),
        "organization_id": k.organization_id.to_string(),
        "user_id": k.created_by.map(|u| u.to_string()),
        "prefix": k.prefix,
        "name": k.name,
        "status": k.status,
        "rps": k.rate_limit_rps,
        "rpm": k.rate_limit_rpm,
        "rpd": k.rate_limit_rpd,
        "tpm": k.rate_limit_tpm,
        "concurrency": k.max_concurrency,
        "budget_usd": k.budget_usd_micros.map(|b| Micros(b).decimal()),
        "models": k.allowed_models,
        "scopes": k.scopes,
        "expires_at": k.expires_at.map(rfc3339),
        "created_at": rfc3339(k.created_at),
    })
}

/// A user and their memberships.
pub fn user(rows: &[crate::domain::accounts::UserView]) -> Value {
    let Some(u) = rows.first() else {
        return Value::Null;
    };
    json!({
        "id": u.user_id.to_string(),
        "email": u.email,
        "name": u.name,
        "disabled": u.disabled_at.is_some(),
        "created_at": rfc3339(u.created_at),
        "memberships": rows
            .iter()
            .filter_map(|r| Some(json!({"organization_id": r.organization_id?.to_string(), "role": r.role})))
            .collect::<Vec<_>>(),
    })
}

/// A PIX charge (`status` as of now: a pending charge past its expiry is `expired`).
pub fn pix_charge(c: &crate::domain::pix::Charge) -> Value {
    json!({
        "id": c.pix_charge_id.to_string(),
        "organization_id": c.organization_id.to_string(),
        "amount_brl": Micros(c.amount_brl_micros).decimal(),
        "txid": c.txid,
        "status": c.status(),
        "br_code": c.br_code,
        "expires_at": rfc3339(c.expires_at),
        "paid_at": c.paid_at.map(rfc3339),
        "end_to_end_id": c.end_to_end_id,
        "created_at": rfc3339(c.created_at),
    })
}

/// A webhook delivery attempt.
pub fn webhook_attempt(a: &crate::store::webhooks::AttemptListRow) -> Value {
    json!({
        "id": a.attempt_id,
        "event": a.event,
        "status": a.status,
        "attempts": a.attempts,
        "last_status": a.last_status,
        "last_error": a.last_error,
        "replay_of": a.replay_of_attempt,
        "created_at": rfc3339(a.created_at),
        "next_attempt_at": (a.status == "pending").then(|| rfc3339(a.next_attempt_at)),
        "delivered_at": a.delivered_at.map(rfc3339),
    })
}

/// An incident.
pub fn incident(i: &crate::domain::incidents::Incident) -> Value {
    json!({
        "id": i.incident_id.to_string(),
        "title": i.title,
        "severity": i.severity,
        "message": i.message,
        "status": if i.resolved_at.is_some() { "resolved" } else { "active" },
        "source": i.source,
        "provider": i.provider,
        "created_at": rfc3339(i.created_at),
        "resolved_at": i.resolved_at.map(rfc3339),
    })
}

/// An organization's ledger statement: its balance (null when postpaid) and latest entries,
/// amounts as exact decimal text.
pub fn ledger_statement(org: uuid::Uuid, st: &crate::domain::ledger::Statement) -> Value {
    let entries: Vec<Value> = st
        .entries
        .iter()
        .map(|e| {
            json!({
                "ledger_entry_id": e.ledger_entry_id,
                "kind": e.kind,
                "amount_brl": Micros(e.amount_brl_micros).decimal(),
                "balance_after_brl": Micros(e.balance_after_brl_micros).decimal(),
                "request_id": e.request_id,
                "idempotency_key": e.idempotency_key,
                "description": e.description,
                "created_at": rfc3339(e.created_at),
            })
        })
        .collect();
    json!({
        "organization_id": org.to_string(),
        "prepaid": st.balance.is_some(),
        "balance_brl": st.balance.map(|b| Micros(b).decimal()),
        "entries": entries,
    })
}

#[cfg(test)]
mod csv_tests {
    use super::csv_cell;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("gpt-4o"), "gpt-4o");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=cmd()"), "'=cmd()");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@x,y"), "\"'@x,y\"");
    }
}
