//! PyTake's secrets (issue 15 item 5): parse → `domain::vault` → render. The vault seals
//! values (envelope encryption under `CATRACA_SECRET_KEYS`); this file only checks the role
//! (`domain::pytake::authorize`), renders the contract's `Secret` (never a value) and
//! `SecretUsageStats`, and answers 503 when no master key is configured.
//!
//! `test` checks a provider key against the provider of the running config whose `name` is
//! the secret's `service` (`GET <base_url>/models` with the key as Bearer; the config a reload
//! installs is the one used). WhatsApp tokens are checked against the
//! configured Graph API (`GET <whatsapp.graph_base_url>/me`).

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use uuid::Uuid;

use super::wire::{Body, Caller, PyError};
use crate::admin::openapi::Api;
use crate::admin::{AdminState, rfc3339};
use crate::domain::pytake::{Actor, authorize};
use crate::domain::roles::Action;
use crate::domain::vault::{self, Secret, UsageStats, Who};
use crate::domain::{DomainError, Entity};
use crate::secrets::SecretBox;

type Answer = Result<Response, PyError>;

/// The providers of the running config, as `test` checks them: by name, at their base URL.
fn provider_checks(c: &crate::config::Config) -> Vec<vault::ProviderCheck> {
    c.providers
        .iter()
        .map(|p| {
            let host = if p.host.contains(':') {
                format!("[{}]", p.host)
            } else {
                p.host.clone()
            };
            let scheme = if p.tls { "https" } else { "http" };
            vault::ProviderCheck {
                service: p.name.clone(),
                base_url: format!("{scheme}://{host}:{}{}", p.port, p.base_path),
            }
        })
        .collect()
}

/// Per `test` check.
const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The master keys, or 503 naming the setting.
pub(super) fn keys(s: &AdminState) -> Result<&SecretBox, PyError> {
    s.secrets.as_deref().ok_or_else(|| {
        PyError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "the secrets vault needs CATRACA_SECRET_KEYS (or CATRACA_SECRET_KEY), which is not configured on this server",
        )
    })
}

fn who(a: &Actor) -> Who {
    Who {
        organization_id: a.organization_id,
        user_id: Some(a.user_id),
    }
}

/// A path id: a UUID; anything else names no secret (404, like another organization's id).
fn id(raw: &str) -> Result<Uuid, PyError> {
    Uuid::parse_str(raw).map_err(|_| DomainError::NotFound(Entity::Secret).into())
}

/// Authenticated, allowed, and the vault configured.
fn admit<'a>(s: &'a AdminState, a: &Actor, action: Action) -> Result<&'a SecretBox, PyError> {
    authorize(a, action)?;
    keys(s)
}

/// An optional JSON body (none or whitespace is `T::default()`); not of the schema → 422.
fn optional_body<T: serde::de::DeserializeOwned + Default>(b: &[u8]) -> Result<T, PyError> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if crate::surfaces::kit::has_nul_escape(b) || b.contains(&0) {
        return Err(PyError::bad_request("the body must not contain NUL"));
    }
    serde_json::from_slice(b).map_err(|e| {
        PyError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            format!("invalid body: {e}"),
        )
    })
}

/// The contract's `Secret`: never the value.
fn secret(s: &Secret) -> Value {
    json!({
        "id": s.id,
        "key": s.name,
        "environment": s.environment.as_str(),
        "service": s.service,
        "status": s.status.as_str(),
        "organization_id": s.organization_id,
        "created_at": rfc3339(s.created_at),
        "updated_at": rfc3339(s.updated_at),
        "last_rotated_at": s.last_rotated_at.map(rfc3339),
    })
}

/// The contract's `SecretUsageStats`; `success_rate` is a fraction from 0 to 1, and both it
/// and `last_used_at` are null for a secret never used.
fn usage(u: &UsageStats) -> Value {
    json!({
        "secret_id": u.secret_id,
        "total_requests": u.total_requests,
        "success_rate": u.success_rate(),
        "last_used_at": u.last_used_at.map(rfc3339),
    })
}

#[derive(Deserialize)]
pub struct ListQ {
    environment: Option<String>,
    service: Option<String>,
}

pub async fn list(
    State(s): State<AdminState>,
    Caller(a): Caller,
    q: axum::extract::RawQuery,
) -> Answer {
    let q: ListQ = serde_urlencoded_query(q.0.as_deref())?;
    admit(&s, &a, Action::Read)?;
    let l = vault::list(
        &s.pool,
        &who(&a),
        vault::Filter {
            environment: q.environment.as_deref(),
            service: q.service.as_deref(),
        },
    )
    .await?;
    Ok(Json(l.iter().map(secret).collect::<Vec<_>>()).into_response())
}

/// `?environment=&service=`; a NUL is a 400, a malformed query a 422.
fn serde_urlencoded_query(q: Option<&str>) -> Result<ListQ, PyError> {
    let q = q.unwrap_or("");
    if q.contains("%00") {
        return Err(PyError::bad_request("the query must not contain NUL"));
    }
    let uri: axum::http::Uri = format!("/?{q}")
        .parse()
        .map_err(|_| PyError::bad_request("malformed query"))?;
    axum::extract::Query::<ListQ>::try_from_uri(&uri)
        .map(|x| x.0)
        .map_err(|e| {
            PyError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_error",
                e.body_text(),
            )
        })
}

#[derive(Deserialize)]
pub struct CreateReq {
    key: String,
    value: String,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    service: Option<String>,
}

pub async fn create(
    State(s): State<AdminState>,
    Caller(a): Caller,
    Body(r): Body<CreateReq>,
) -> Answer {
    let k = admit(&s, &a, Action::ManageContent)?;
    let x = vault::create(
        &s.pool,
        k,
        &who(&a),
        vault::NewSecret {
            name: r.key,
            value: r.value,
            environment: r.environment,
            service: r.service,
            description: None,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(secret(&x))).into_response())
}

pub async fn get_one(
    State(s): State<AdminState>,
    Caller(a): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let i = id(&raw)?;
    admit(&s, &a, Action::Read)?;
    let x = vault::get(&s.pool, &who(&a), i).await?;
    Ok(Json(secret(&x)).into_response())
}

/// Absent stays `None`; `null` is `Some(None)`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
pub struct UpdateReq {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default, deserialize_with = "present")]
    service: Option<Option<String>>,
}

pub async fn update(
    State(s): State<AdminState>,
    Caller(a): Caller,
    Path(raw): Path<String>,
    Body(r): Body<UpdateReq>,
) -> Answer {
    let i = id(&raw)?;
    let k = admit(&s, &a, Action::ManageContent)?;
    let x = vault::update(
        &s.pool,
        k,
        &who(&a),
        i,
        vault::Change {
            name: r.key,
            environment: r.environment,
            service: r.service,
            description: None,
            value: r.value,
        },
    )
    .await?;
    Ok(Json(secret(&x)).into_response())
}

pub async fn remove(
    State(s): State<AdminState>,
    Caller(a): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let i = id(&raw)?;
    admit(&s, &a, Action::ManageContent)?;
    vault::delete(&s.pool, &who(&a), i).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `{value}`: org_admin and up, audited (`secret.value_read`). An inactive secret's value is
/// readable: a person reading it is not a use by the platform.
pub async fn value(
    State(s): State<AdminState>,
    Caller(a): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let i = id(&raw)?;
    let k = admit(&s, &a, Action::ReadSecretValues)?;
    let v = vault::reveal(&s.pool, k, &who(&a), i).await?;
    Ok(Json(json!({ "value": v.into_string() })).into_response())
}

#[derive(Deserialize, Default)]
pub struct RotateReq {
    #[serde(default)]
    value: Option<String>,
}

/// Optional `{value}`: without it the same value under a fresh data key.
pub async fn rotate(
    State(s): State<AdminState>,
    Caller(a): Caller,
    Path(raw): Path<String>,
    body: axum::body::Bytes,
) -> Answer {
    let i = id(&raw)?;
    let r: RotateReq = optional_body(&body)?;
    let k = admit(&s, &a, Action::ManageContent)?;
    let x = vault::rotate(&s.pool, k, &who(&a), i, r.value).await?;
    Ok(Json(secret(&x)).into_response())
}

async fn set_active(s: AdminState, a: Actor, raw: String, active: bool) -> Answer {
    let i = id(&raw)?;
    admit(&s, &a, Action::ManageContent)?;
    let x = vault::set_active(&s.pool, &who(&a), i, active).await?;
    Ok(Json(secret(&x)).into_response())
}

pub async fn activate(
    State(s): State<AdminState>,
    Caller(a): Caller,
    Path(raw): Path<String>,
) -> Answer {
    set_active(s, a, raw, true).await
}

pub async fn deactivate(
    State(s): State<AdminState>,
    Caller(a): Caller,
    Path(raw): Path<String>,
) -> Answer {
    set_active(s, a, raw, false).await
}

/// The contract's optional `{test_type?}`: accepted (a string) and not used, the vault having
/// one check per service.
#[derive(Deserialize, Default)]
pub struct TestReq {
    #[serde(default)]
    #[allow(dead_code)]
    test_type: Option<String>,
}

/// `{valid, message}`; 409 for an inactive secret (never used, not even by a test, whatever
/// its service).
pub async fn test(
    State(s): State<AdminState>,
    Caller(a): Caller,
    Path(raw): Path<String>,
    body: axum::body::Bytes,
) -> Answer {
    let i = id(&raw)?;
    let _: TestReq = optional_body(&body)?;
    let k = admit(&s, &a, Action::ManageContent)?;
    let w = who(&a);
    let targets = vault::TestTargets {
        providers: s.config.with(provider_checks),
        graph_base_url: Some(s.whatsapp.graph_base_url.clone()),
        timeout: TEST_TIMEOUT,
    };
    let out = vault::test(&s.pool, k, &w, i, &targets).await?;
    let message = out.message();
    Ok(Json(json!({ "valid": out.valid(), "message": message })).into_response())
}

pub async fn usage_one(
    State(s): State<AdminState>,
    Caller(a): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let i = id(&raw)?;
    admit(&s, &a, Action::Read)?;
    let u = vault::usage(&s.pool, &who(&a), i).await?;
    Ok(Json(usage(&u)).into_response())
}

pub async fn usage_org(State(s): State<AdminState>, Caller(a): Caller) -> Answer {
    admit(&s, &a, Action::Read)?;
    let l = vault::usage_by_org(&s.pool, &who(&a)).await?;
    Ok(Json(l.iter().map(usage).collect::<Vec<_>>()).into_response())
}

/// The secrets routes (`secrets` answers with and without the trailing slash).
pub fn routes() -> Api<AdminState> {
    const LIST: &str = "List the organization's secrets (never their values)";
    const CREATE: &str = "Create a secret (org_admin)";
    Api::new("pytake")
        .route("GET", "/api/v1/secrets/", LIST, true, get(list))
        .route("GET", "/api/v1/secrets", LIST, true, get(list))
        .route("POST", "/api/v1/secrets/", CREATE, true, post(create))
        .route("POST", "/api/v1/secrets", CREATE, true, post(create))
        .route(
            "GET",
            "/api/v1/secrets/usage/organization",
            "Use statistics of every secret of the organization",
            true,
            get(usage_org),
        )
        .route(
            "GET",
            "/api/v1/secrets/{id}",
            "A secret (never its value)",
            true,
            get(get_one),
        )
        .route(
            "PUT",
            "/api/v1/secrets/{id}",
            "Change a secret; a value rotates it (org_admin)",
            true,
            put(update),
        )
        .route(
            "DELETE",
            "/api/v1/secrets/{id}",
            "Delete a secret and its use history (org_admin)",
            true,
            delete(remove),
        )
        .route(
            "GET",
            "/api/v1/secrets/{id}/value",
            "A secret's value (org_admin; audited)",
            true,
            get(value),
        )
        .route(
            "POST",
            "/api/v1/secrets/{id}/rotate",
            "Re-seal under a fresh data key, or replace the value (org_admin)",
            true,
            post(rotate),
        )
        .route(
            "POST",
            "/api/v1/secrets/{id}/activate",
            "Activate a secret (org_admin)",
            true,
            post(activate),
        )
        .route(
            "POST",
            "/api/v1/secrets/{id}/deactivate",
            "Deactivate a secret: the platform never uses it (org_admin)",
            true,
            post(deactivate),
        )
        .route(
            "POST",
            "/api/v1/secrets/{id}/test",
            "Check a secret against its service (org_admin)",
            true,
            post(test),
        )
        .route(
            "GET",
            "/api/v1/secrets/{id}/usage",
            "A secret's use statistics",
            true,
            get(usage_one),
        )
}
