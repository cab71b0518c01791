//! PyTake test support shared by the PyTake suites: the keys a PyTake gateway runs with, an
//! organization's first `org_admin` (register), a member of a role (operator API, then
//! PyTake's login), and the exact error shape.

use serde_json::{Value, json};

use super::{Gateway, call};

/// Operator key of the PyTake test gateways (`CATRACA_MASTER_KEY`).
pub const MASTER: &str = "pytake-master-key-0123456789";
/// JWT secret of the PyTake test gateways (`CATRACA_JWT_SECRET`).
pub const JWT: &str = "pytake-jwt-secret-pytake-jwt-secret-0123";
/// Every test user's password.
pub const PASSWORD: &str = "senha-forte-1";

/// Register `email` with a new organization `org`: the whole answer (201 asserted).
pub async fn register(gw: &Gateway, email: &str, org: &str) -> Value {
    let (s, v) = call(
        gw,
        "POST",
        "/api/v1/auth/register",
        None,
        Some(
            json!({"email": email, "password": PASSWORD, "name": "Ana", "organization_name": org}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v
}

/// An org_admin with a new organization: (access token, organization id).
pub async fn admin(gw: &Gateway, email: &str, org: &str) -> (String, String) {
    let v = register(gw, email, org).await;
    (
        v["access_token"].as_str().unwrap().to_string(),
        v["user"]["organization_id"].as_str().unwrap().to_string(),
    )
}

/// Log `email` in: the whole answer (200 asserted).
pub async fn login(gw: &Gateway, email: &str) -> Value {
    let (s, l) = call(
        gw,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(s, 200, "{l}");
    l
}

/// A member of `org` with `role` made through the operator API, logged in: their access token.
pub async fn member(gw: &Gateway, org: &str, email: &str, role: &str) -> String {
    let (s, u) = call(
        gw,
        "POST",
        "/admin/v1/users",
        Some(MASTER),
        Some(json!({"email": email, "name": role, "password": PASSWORD,
                    "organization_id": org, "role": role})),
    )
    .await;
    assert_eq!(s, 201, "{u}");
    let l = login(gw, email).await;
    assert_eq!(l["user"]["role"], role, "{l}");
    l["access_token"].as_str().unwrap().to_string()
}

/// The error body is exactly `{detail, status_code, error_code}` with this status and code.
pub fn assert_error(s: u16, v: &Value, status: u16, code: &str) {
    assert_eq!(s, status, "{v}");
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    assert_eq!(o.len(), 3, "{v}");
    assert!(o["detail"].as_str().is_some_and(|d| !d.is_empty()), "{v}");
    assert_eq!(o["status_code"], json!(status), "{v}");
    assert_eq!(o["error_code"], json!(code), "{v}");
}

/// One request with an optional bearer, a raw JSON body (sent as given, malformed or not) and
/// extra headers: status, body (JSON, or the text as a JSON string) and the raw text.
pub async fn request(
    gw: &Gateway,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, Value, String) {
    let mut rb = reqwest::Client::new().request(method.parse().unwrap(), gw.url(path));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text.clone())),
        text,
    )
}
