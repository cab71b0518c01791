//! Tokia's account routes (issue 14 item 5), for the key's user (`domain::account::Me`); a key
//! made without a user is 403 `key_without_user` on every one of them. The YAML gives schemas
//! for `me/notifications`, `me/export` and the `me/preferences` body only; the other shapes
//! (also in the README):
//!
//! - `GET /v1/me/profile` → `{id, email, name, company, phone, avatar_url, created_at,
//!   organization: {id, name, plan}, role, preferences: {timezone, preferred_locale,
//!   weekly_digest_enabled}, flags: {email_verified, is_admin, prepaid}}`; `role` is the
//!   user's in the key's organization (null when no longer a member), owners count as admins;
//! - `GET /v1/me/referrals` → `{code, invited_count, credit_earned_brl, invited: [{email,
//!   joined_at, credit_brl}]}`, emails masked (`j***@example.com`), oldest first, at most
//!   1,000 listed;
//! - `GET /v1/me/notifications?limit=1..200 (50)` → `{total, notifications: [{id, template,
//!   sent_at, status: sent|failed, error}]}`, newest first; `sent_at` is when the mail was
//!   delivered or given up, `error` the last error of a failed one;
//! - `GET /v1/me/export` → `{export_version: 1, generated_at, profile, balance, teams,
//!   notifications, referrals: {code, invited_count, referred}, note}` with `Cache-Control:
//!   no-store`; 5 per user per rolling hour, the sixth 429 `rate_limited` with `Retry-After`;
//! - `GET /v1/me/teams` → `{teams: [{id, name, role, is_admin, plan, created_at, current}]}`;
//!   `POST /v1/me/teams {name}` → 201, the same item plus `balance` (a prepaid team at zero);
//! - `PUT /v1/me/preferences {timezone?, preferred_locale?, weekly_digest_enabled?}` → the
//!   three, omitted fields kept.
//!
//! Errors: 400 `invalid_body` (not a JSON object, a NUL) / `invalid_parameter` (naming the
//! field: wrong type, unknown field, bad value), 401 without a live key, 403
//! `key_without_user`, 429 on the export, 503 while the database is away.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::lang;
use super::wire::{self, Caller, Query, TokiaError};
use crate::admin::openapi::Api;
use crate::admin::{AdminState, rfc3339};
use crate::domain::DomainError;
use crate::domain::account::{self, Me, Notification, Profile, Team};
use crate::domain::preferences::{self, Preferences};
use crate::domain::referrals;
use crate::domain::roles::Role;

/// The account routes.
pub fn api() -> Api<AdminState> {
    Api::new("tokia")
        .route(
            "GET",
            "/v1/me/profile",
            "Perfil do user autenticado",
            true,
            lang(get, profile),
        )
        .route(
            "GET",
            "/v1/me/referrals",
            "Stats programa de indicações",
            true,
            lang(get, referrals),
        )
        .route(
            "GET",
            "/v1/me/notifications",
            "Histórico de emails transacionais recebidos pelo user",
            true,
            lang(get, notifications),
        )
        .route(
            "GET",
            "/v1/me/export",
            "Export LGPD (Art. 18) do dado do user em JSON",
            true,
            lang(get, export),
        )
        .route(
            "GET",
            "/v1/me/teams",
            "Lista teams do user",
            true,
            lang(get, teams),
        )
        .route(
            "POST",
            "/v1/me/teams",
            "Cria novo team",
            true,
            lang(post, create_team),
        )
        .route(
            "PUT",
            "/v1/me/preferences",
            "Atualiza timezone, locale, weekly digest opt-out",
            true,
            lang(put, set_preferences),
        )
}

type Answer = Result<Json<Value>, TokiaError>;

/// The key's user, or 403 `key_without_user`.
fn me(c: &Caller) -> Result<Me, TokiaError> {
    Me::of(&c.0).ok_or_else(|| {
        TokiaError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "key_without_user",
            "Esta chave de API não pertence a um usuário",
            "This API key belongs to no user",
        )
    })
}

fn bad_body(e: impl std::fmt::Display) -> TokiaError {
    TokiaError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_body",
        format!("Corpo inválido ({e})"),
        format!("Invalid body ({e})"),
    )
}

/// A JSON object body whose keys are all in `allowed`; NUL anywhere is a 400.
fn object(b: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, TokiaError> {
    if crate::surfaces::kit::has_nul_escape(b) || b.contains(&0) {
        return Err(bad_body("NUL"));
    }
    let v: Value = serde_json::from_slice(b).map_err(bad_body)?;
    let Value::Object(m) = v else {
        return Err(bad_body("a JSON object"));
    };
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(TokiaError::invalid(k, "unknown field"));
    }
    Ok(m)
}

fn string(m: &Map<String, Value>, field: &str) -> Result<Option<String>, TokiaError> {
    match m.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TokiaError::invalid(field, "a string")),
    }
}

fn preferences_json(p: &Preferences) -> Value {
    json!({
        "timezone": p.timezone,
        "preferred_locale": p.preferred_locale,
        "weekly_digest_enabled": p.weekly_digest_enabled,
    })
}

fn profile_json(p: &Profile) -> Value {
    let u = &p.user;
    json!({
        "id": u.user_id,
        "email": u.email,
        "name": u.name,
        "company": u.company,
        "phone": u.phone,
        "avatar_url": u.avatar_url,
        "created_at": rfc3339(u.created_at),
        "organization": {"id": u.organization_id, "name": u.organization_name, "plan": u.plan},
        "role": u.role,
        "preferences": preferences_json(&p.preferences),
        "flags": {
            "email_verified": u.email_verified,
            "is_admin": p.is_admin(),
            "prepaid": u.prepaid,
        },
    })
}

fn notification_json(n: &Notification) -> Value {
    json!({
        "id": n.outbox_email_id.to_string(),
        "template": n.template,
        "sent_at": rfc3339(n.at),
        "status": n.status,
        "error": n.error,
    })
}

fn team_json(t: &Team, current: uuid::Uuid) -> Value {
    let role = Role::parse(&t.role).ok();
    json!({
        "id": t.organization_id,
        "name": t.name,
        "role": t.role,
        "is_admin": matches!(role, Some(Role::Owner | Role::Admin)),
        "plan": t.plan,
        "created_at": rfc3339(t.created_at),
        "current": t.organization_id == current,
    })
}

/// `GET /v1/me/profile`.
async fn profile(State(s): State<AdminState>, c: Caller) -> Answer {
    let me = me(&c)?;
    let p = account::profile(&s.pool, me).await?;
    Ok(Json(profile_json(&p)))
}

/// `GET /v1/me/referrals`.
async fn referrals(State(s): State<AdminState>, c: Caller) -> Answer {
    let me = me(&c)?;
    let r = referrals::summary(&s.pool, me.user, me.org).await?;
    Ok(Json(json!({
        "code": r.code,
        "invited_count": r.invited_count,
        "credit_earned_brl": wire::brl(r.credit_earned),
        "invited": r.invited.iter().map(|i| json!({
            "email": i.email,
            "joined_at": rfc3339(i.joined_at),
            "credit_brl": wire::brl(i.credit),
        })).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
struct LimitQ {
    limit: Option<String>,
}

/// `GET /v1/me/notifications?limit=1..200`.
async fn notifications(State(s): State<AdminState>, c: Caller, Query(q): Query<LimitQ>) -> Answer {
    let limit = match q.limit.as_deref() {
        None => account::NOTIFICATIONS_LIMIT.0,
        Some(l) => l
            .parse()
            .map_err(|_| TokiaError::from(DomainError::invalid("limit", "an integer")))?,
    };
    let limit = account::notifications_limit(limit)?;
    let me = me(&c)?;
    let (total, list) = account::notifications(&s.pool, me.user, limit).await?;
    Ok(Json(json!({
        "total": total,
        "notifications": list.iter().map(notification_json).collect::<Vec<_>>(),
    })))
}

/// What the export says about itself (pt-BR, as the product speaks).
const EXPORT_NOTE: &str = "Exportação LGPD (Art. 18) dos seus dados: perfil, preferências, \
saldo da organização desta chave, times, notificações enviadas e indicações. Não inclui hashes \
de senha, chaves de API, segredos, o conteúdo dos emails nem dados de outros usuários.";

/// `GET /v1/me/export`: the caller's own data, never cached.
async fn export(State(s): State<AdminState>, c: Caller) -> Result<Response, TokiaError> {
    let me = me(&c)?;
    let e = account::export(&s.pool, me).await?;
    let body = json!({
        "export_version": account::EXPORT_VERSION,
        "generated_at": rfc3339(e.generated_at),
        "profile": profile_json(&e.profile),
        "balance": wire::balance(&e.balance),
        "teams": e.teams.iter().map(|t| team_json(t, me.org)).collect::<Vec<_>>(),
        "notifications": e.notifications.iter().map(notification_json).collect::<Vec<_>>(),
        "referrals": {
            "code": e.referral_code,
            "invited_count": e.invited_count,
            "referred": e.referred,
        },
        "note": EXPORT_NOTE,
    });
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// `GET /v1/me/teams`.
async fn teams(State(s): State<AdminState>, c: Caller) -> Answer {
    let me = me(&c)?;
    let list = account::teams(&s.pool, me.user).await?;
    Ok(Json(json!({
        "teams": list.iter().map(|t| team_json(t, me.org)).collect::<Vec<_>>(),
    })))
}

/// `POST /v1/me/teams {name}`: 201, the caller its owner.
async fn create_team(
    State(s): State<AdminState>,
    c: Caller,
    b: Bytes,
) -> Result<(StatusCode, Json<Value>), TokiaError> {
    let me = me(&c)?;
    let m = object(&b, &["name"])?;
    let name = string(&m, "name")?.ok_or_else(|| TokiaError::invalid("name", "required"))?;
    let t = account::create_team(&s.pool, me, &name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": t.organization_id,
            "name": t.name,
            "role": Role::Owner.as_str(),
            "is_admin": true,
            "plan": Value::Null,
            "created_at": rfc3339(t.created_at),
            "current": false,
            "balance": wire::balance(&t.wallet),
        })),
    ))
}

/// `PUT /v1/me/preferences`: omitted fields kept.
async fn set_preferences(State(s): State<AdminState>, c: Caller, b: Bytes) -> Answer {
    let me = me(&c)?;
    let m = object(
        &b,
        &["timezone", "preferred_locale", "weekly_digest_enabled"],
    )?;
    let weekly_digest_enabled = match m.get("weekly_digest_enabled") {
        None => None,
        Some(Value::Bool(v)) => Some(*v),
        Some(_) => return Err(TokiaError::invalid("weekly_digest_enabled", "a boolean")),
    };
    let change = preferences::Change {
        timezone: string(&m, "timezone")?,
        preferred_locale: string(&m, "preferred_locale")?,
        weekly_digest_enabled,
    };
    let p = preferences::set(&s.pool, me.user, me.org, change).await?;
    Ok(Json(preferences_json(&p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_objects_of_known_fields() {
        assert!(object(br#"{"name":"x"}"#, &["name"]).is_ok());
        assert!(object(b"[]", &["name"]).is_err());
        assert!(object(br#"{"nome":"x"}"#, &["name"]).is_err());
        assert!(object(br#"{"name":"a\u0000"}"#, &["name"]).is_err());
        assert!(object(b"", &["name"]).is_err());
        let m = object(br#"{"name":1}"#, &["name"]).unwrap();
        assert!(string(&m, "name").is_err());
    }
}
