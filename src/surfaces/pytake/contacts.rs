//! PyTake's contacts: `GET|POST /api/v1/contacts`. Parse → `domain::contacts` → render.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{Body, Caller, PyError};
use crate::admin::{AdminState, rfc3339};
use crate::domain::contacts::{self, Contact};

type Answer = Result<Response, PyError>;

/// Query string: a value of the wrong type is a 422 `validation_error`; a NUL a 400.
pub struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = PyError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PyError> {
        crate::surfaces::kit::query(parts, state)
            .await
            .map(Query)
            .map_err(|e| {
                if e.0.contains("NUL") {
                    PyError::bad_request(e.0)
                } else {
                    PyError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_error", e.0)
                }
            })
    }
}

/// PyTake's `Contact`.
fn contact(c: &Contact) -> Value {
    json!({
        "id": c.id,
        "whatsapp_id": c.whatsapp_id,
        "name": c.name,
        "email": c.email,
        "organization_id": c.organization_id,
        "created_at": rfc3339(c.created_at),
        "updated_at": rfc3339(c.updated_at),
    })
}

#[derive(Deserialize)]
pub struct ListParams {
    query: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /api/v1/contacts?query=&limit=&offset=`: `Array<Contact>`, newest first.
pub async fn list(
    State(s): State<AdminState>,
    Caller(actor): Caller,
    Query(p): Query<ListParams>,
) -> Answer {
    let list = contacts::list(&s.pool, &actor, p.query.as_deref(), p.limit, p.offset).await?;
    Ok(Json(list.iter().map(contact).collect::<Vec<_>>()).into_response())
}

#[derive(Deserialize)]
pub struct CreateReq {
    whatsapp_id: String,
    name: Option<String>,
    email: Option<String>,
}

/// `POST /api/v1/contacts`: 201 `Contact`; 409 when the WhatsApp id is taken.
pub async fn create(
    State(s): State<AdminState>,
    Caller(actor): Caller,
    Body(r): Body<CreateReq>,
) -> Answer {
    let c = contacts::create(
        &s.pool,
        &actor,
        &r.whatsapp_id,
        r.name.as_deref(),
        r.email.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(contact(&c))).into_response())
}

/// The contacts routes.
pub fn routes() -> crate::admin::openapi::Api<AdminState> {
    use axum::routing::{get, post};
    crate::admin::openapi::Api::new("pytake")
        .route(
            "GET",
            "/api/v1/contacts",
            "List the organization's contacts (query searches name, email, whatsapp_id)",
            true,
            get(list),
        )
        .route(
            "POST",
            "/api/v1/contacts",
            "Create a contact (agent or org_admin; 409 when the whatsapp_id is taken)",
            true,
            post(create),
        )
}
