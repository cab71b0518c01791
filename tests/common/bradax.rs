//! bradax test support shared by the bradax test files: projects, `bx_live_` keys and access
//! tokens made through the operator API and `auth/token` (each file passes the master key of
//! the gateway it starts), and bradax's error shape.

use serde_json::{Value, json};

use super::{Gateway, call, secret};

/// A project (organization of kind `project`) named `name` with slug `slug` of `tier`; its id.
pub async fn project(gw: &Gateway, master: &str, name: &str, slug: &str, tier: &str) -> String {
    let (s, v) = call(
        gw,
        "POST",
        "/admin/v1/organizations",
        Some(master),
        Some(json!({"name": name, "slug": slug, "kind": "project", "tier": tier})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["tier"], tier, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// A new `bx_live_` key of `org` with `scopes` (and `rpm`): (key id, plaintext, the
/// operator's answer). The plaintext is noted as a secret: no gateway log may contain it.
pub async fn key(
    gw: &Gateway,
    master: &str,
    org: &str,
    scopes: &[&str],
    rpm: Option<u32>,
) -> (String, String, Value) {
    let mut body = json!({"organization_id": org, "prefix": "bx_live_", "scopes": scopes});
    if let Some(r) = rpm {
        body["rpm"] = json!(r);
    }
    let (s, v) = call(gw, "POST", "/admin/v1/keys", Some(master), Some(body)).await;
    assert_eq!(s, 201, "{v}");
    let plain = secret(v["key"].as_str().unwrap());
    assert!(plain.starts_with("bx_live_"), "{plain}");
    (v["id"].as_str().unwrap().to_string(), plain, v)
}

/// `POST /api/v1/auth/token` for project `slug` with `api_key` (and `scopes`): the status
/// and body.
pub async fn auth_token(
    gw: &Gateway,
    slug: &str,
    api_key: &str,
    scopes: Option<&[&str]>,
) -> (u16, Value) {
    let mut body = json!({"project_id": slug, "api_key": api_key});
    if let Some(s) = scopes {
        body["scopes"] = json!(s);
    }
    call(gw, "POST", "/api/v1/auth/token", None, Some(body)).await
}

/// An access token (noted as a secret) of a new key of project `org` (slug `slug`) holding
/// `scopes`, all granted.
pub async fn token(gw: &Gateway, master: &str, org: &str, slug: &str, scopes: &[&str]) -> String {
    let (_, k, _) = key(gw, master, org, scopes, None).await;
    let (s, v) = auth_token(gw, slug, &k, None).await;
    assert_eq!(s, 200, "{v}");
    secret(v["access_token"].as_str().unwrap())
}

/// The body is bradax's error shape with this status, `error` and first detail code.
pub fn assert_bx_error(s: u16, v: &Value, status: u16, error: &str, code: Option<&str>) {
    assert_eq!(s, status, "{v}");
    assert_bx_shape(v);
    assert_eq!(v["error"], error, "{v}");
    if let Some(c) = code {
        assert_eq!(v["details"][0]["code"], c, "{v}");
    }
}

/// The body is exactly `{error, message, details[{code, message}], request_id, timestamp}`.
pub fn assert_bx_shape(v: &Value) {
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    let mut keys: Vec<_> = o.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["details", "error", "message", "request_id", "timestamp"],
        "{v}"
    );
    assert!(o["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    assert!(o["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    let d = o["details"].as_array().unwrap();
    assert!(
        !d.is_empty() && d[0]["code"].is_string() && d[0]["message"].is_string(),
        "{v}"
    );
    assert!(o["timestamp"].as_str().unwrap().ends_with('Z'), "{v}");
    assert!(
        o["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{v}"
    );
}
