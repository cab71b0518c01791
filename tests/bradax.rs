//! bradax projects, keys and tokens (issue 15 items 2, 9, 13): projects and `bx_live_` keys
//! through the operator API (tier and scope names validated), `auth/token` (scopes a subset of
//! the key's, 403 for more, 401 for another project's key), `auth/refresh` with rotation grace
//! and family revocation on reuse, dispatched by audience against PyTake's (mix-ups 401 in the
//! right shape), the student tier (no deploy, capped rpm), a revoked key's tokens refused,
//! `metrics` from real usage (another project 403) and `health` (200; 503 with Postgres cut).

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::bradax as bx;
pub use crate::common::bradax::{assert_bx_error, auth_token};
use crate::common::{Gateway, Mock, TcpCut, call, db_url};

pub const MASTER: &str = "bradax-master-key-0123456789";
pub const SECRET: &str = "bradax-jwt-secret-bradax-jwt-secret-0123";

/// The catalog every bradax test uses: `gpt-4o-mini` ($0.15/$0.60 per 1M), `gpt-4o`
/// ($2.50/$10), an embedding model; the student tier allows `gpt-4o-mini` only.
pub fn catalog(mock: &Mock, extra: &str) -> String {
    format!(
        r#"providers:
  - {{name: p, base_url: "{}", forward_headers: [x-mock-*]}}
deployments:
  - {{name: d, provider: p, model: up}}
  - {{name: de, provider: p, model: up-emb}}
models:
  - {{name: gpt-4o-mini, deployments: [d], input_usd_per_1m: "0.15", output_usd_per_1m: "0.60", markup_multiplier: "1.3"}}
  - {{name: gpt-4o, deployments: [d], input_usd_per_1m: "2.50", output_usd_per_1m: "10"}}
  - {{name: text-embedding-3-small, category: embedding, deployments: [de], input_usd_per_1m: "0.02"}}
bradax: {{student_rpm: 5, student_models: [gpt-4o-mini]}}
{extra}"#,
        mock.base()
    )
}

pub async fn start_with(pool: &PgPool, db: &str) -> (Gateway, Mock) {
    let mock = Mock::start().await;
    let gw = Gateway::start_with_env(
        &catalog(&mock, ""),
        &[
            ("DATABASE_URL", db),
            ("CATRACA_MASTER_KEY", MASTER),
            ("CATRACA_JWT_SECRET", SECRET),
            (
                "CATRACA_SECRET_KEY",
                "1111111111111111111111111111111111111111111111111111111111111111",
            ),
        ],
    )
    .await;
    let _ = pool;
    (gw, mock)
}

pub async fn start(pool: &PgPool) -> (Gateway, Mock) {
    start_with(pool, &db_url(pool, None)).await
}

/// A project of `tier` (slug and name `slug`); its organization id.
pub async fn project(gw: &Gateway, slug: &str, tier: &str) -> String {
    bx::project(gw, MASTER, slug, slug, tier).await
}

/// A new `bx_live_` key of `org`: (key id, plaintext, the operator's answer).
pub async fn key(
    gw: &Gateway,
    org: &str,
    scopes: &[&str],
    rpm: Option<u32>,
) -> (String, String, Value) {
    bx::key(gw, MASTER, org, scopes, rpm).await
}

/// A project `slug` of `tier` and an access token of a key holding `scopes` (all granted).
pub async fn caller(gw: &Gateway, slug: &str, tier: &str, scopes: &[&str]) -> (String, String) {
    let org = project(gw, slug, tier).await;
    let t = bx::token(gw, MASTER, &org, slug, scopes).await;
    (org, t)
}

async fn refresh(gw: &Gateway, token: &str) -> (u16, Value) {
    call(
        gw,
        "POST",
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": token})),
    )
    .await
}

fn scopes_of(v: &Value) -> Vec<&str> {
    v["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[sqlx::test(migrations = "./migrations")]
async fn operator_projects_keys_and_token_issue(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    // projects: tier validated, only on projects, slug unique
    for (body, field) in [
        (
            json!({"name": "x", "slug": "x1", "kind": "project", "tier": "gold"}),
            "tier",
        ),
        (
            json!({"name": "x", "slug": "x2", "kind": "customer", "tier": "full"}),
            "tier",
        ),
    ] {
        let (s, v) = call(
            &gw,
            "POST",
            "/admin/v1/organizations",
            Some(MASTER),
            Some(body),
        )
        .await;
        assert_eq!(s, 400, "{v}");
        assert!(v.to_string().contains(field), "{v}");
    }
    let org = project(&gw, "fraude-claims", "full").await;
    let other = project(&gw, "outro-projeto", "full").await;
    let (s, v) = call(
        &gw,
        "POST",
        "/admin/v1/organizations",
        Some(MASTER),
        Some(json!({"name": "dup", "slug": "fraude-claims", "kind": "project"})),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    // keys: only bradax's six scope names, stored hashed
    let (s, v) = call(
        &gw,
        "POST",
        "/admin/v1/keys",
        Some(MASTER),
        Some(json!({"organization_id": org, "prefix": "bx_live_", "scopes": ["invoke_llm", "admin"]})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (_, k, kv) = key(
        &gw,
        &org,
        &["invoke_llm", "read_vector", "read_metrics"],
        Some(100),
    )
    .await;
    assert_eq!(kv["rpm"], 100, "a full project's key keeps its rpm");
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_key WHERE key_hash = sha256($1::bytea) AND prefix LIKE 'bx_live_%'",
    )
    .bind(k.as_bytes())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored, 1, "the key is stored as its hash");

    // none asked: every scope held, in the contract's shape
    let (s, v) = auth_token(&gw, "fraude-claims", &k, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["expires_in"], 900);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(scopes_of(&v), ["invoke_llm", "read_vector", "read_metrics"]);
    assert!(v["access_token"].as_str().unwrap().starts_with("eyJ"));
    assert!(v["refresh_token"].as_str().unwrap().starts_with("eyJ"));
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    // a subset
    let (s, v) = auth_token(&gw, "fraude-claims", &k, Some(&["read_vector"])).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(scopes_of(&v), ["read_vector"]);
    // more than the key holds: 403; no such scope: 400
    let (s, v) = auth_token(
        &gw,
        "fraude-claims",
        &k,
        Some(&["invoke_llm", "deploy_graph"]),
    )
    .await;
    assert_bx_error(s, &v, 403, "insufficient_scope", Some("SCOPE_NOT_GRANTED"));
    let (s, v) = auth_token(&gw, "fraude-claims", &k, Some(&["root"])).await;
    assert_bx_error(s, &v, 400, "validation_error", None);
    // another project's id, an unknown key, a revoked key: 401 alike
    let (s, v) = auth_token(&gw, "outro-projeto", &k, None).await;
    assert_bx_error(
        s,
        &v,
        401,
        "authentication_failed",
        Some("INVALID_CREDENTIALS"),
    );
    let (s, v) = auth_token(&gw, "fraude-claims", "bx_live_00000000", None).await;
    assert_bx_error(s, &v, 401, "authentication_failed", None);
    let (s, v) = auth_token(&gw, "nao-existe", &k, None).await;
    assert_bx_error(s, &v, 401, "authentication_failed", None);
    // schema errors in bradax's shape
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/auth/token",
        None,
        Some(json!({"project_id": "fraude-claims"})),
    )
    .await;
    assert_bx_error(s, &v, 400, "validation_error", Some("INVALID_FIELD"));
    let _ = other;
    let families: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT family_id) FROM rotating_refresh_token WHERE audience = 'bradax'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        families, 2,
        "one family per successful auth/token, none for refusals"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn refresh_rotates_with_grace_and_reuse_revokes_the_family(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let org = project(&gw, "p-refresh", "full").await;
    let (_, k, _) = key(&gw, &org, &["invoke_llm", "read_metrics"], None).await;
    let (s, t0) = auth_token(&gw, "p-refresh", &k, Some(&["read_metrics"])).await;
    assert_eq!(s, 200, "{t0}");
    let r0 = t0["refresh_token"].as_str().unwrap();

    let (s, t1) = refresh(&gw, r0).await;
    assert_eq!(s, 200, "{t1}");
    assert_eq!(t1["expires_in"], 900);
    assert_eq!(t1["token_type"], "Bearer");
    assert_eq!(
        scopes_of(&t1),
        ["read_metrics"],
        "the family keeps its scopes"
    );
    assert_ne!(t1["refresh_token"], t0["refresh_token"]);
    // the new access token works
    let (s, v) = call(
        &gw,
        "GET",
        "/api/v1/metrics",
        t1["access_token"].as_str(),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // grace: the old one still works while its successor is unused
    let (s, t1b) = refresh(&gw, r0).await;
    assert_eq!(s, 200, "{t1b}");
    // the successor is used: the predecessor is spent
    let (s, t2) = refresh(&gw, t1["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{t2}");
    let (s, v) = refresh(&gw, r0).await;
    assert_bx_error(
        s,
        &v,
        401,
        "authentication_failed",
        Some("REFRESH_TOKEN_REUSED"),
    );
    // reuse revoked the whole family
    for t in [&t2, &t1b] {
        let (s, v) = refresh(&gw, t["refresh_token"].as_str().unwrap()).await;
        assert_bx_error(s, &v, 401, "authentication_failed", None);
    }
    // a fresh login is its own family
    let (s, t) = auth_token(&gw, "p-refresh", &k, None).await;
    assert_eq!(s, 200, "{t}");
    let (s, v) = refresh(&gw, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{v}");
}

#[sqlx::test(migrations = "./migrations")]
async fn audiences_never_mix(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let org = project(&gw, "p-aud", "full").await;
    let (_, k, _) = key(&gw, &org, &["invoke_llm", "read_metrics"], None).await;
    let (_, bx) = auth_token(&gw, "p-aud", &k, None).await;
    let (bx_access, bx_refresh) = (
        bx["access_token"].as_str().unwrap(),
        bx["refresh_token"].as_str().unwrap(),
    );
    let (s, py) = call(
        &gw,
        "POST",
        "/api/v1/auth/register",
        None,
        Some(json!({"email": "ana@aud.test", "password": "senha-forte-1", "name": "Ana", "organization_name": "Aud"})),
    )
    .await;
    assert_eq!(s, 201, "{py}");
    let (py_access, py_refresh) = (
        py["access_token"].as_str().unwrap(),
        py["refresh_token"].as_str().unwrap(),
    );

    // PyTake's tokens at bradax's routes: 401 in bradax's shape
    for t in [py_access, py_refresh, bx_refresh] {
        let (s, v) = call(&gw, "GET", "/api/v1/metrics", Some(t), None).await;
        assert_bx_error(s, &v, 401, "authentication_failed", Some("TOKEN_INVALID"));
        let r = reqwest::Client::new()
            .post(gw.url("/api/v1/llm/invoke"))
            .bearer_auth(t)
            .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "oi"}]}))
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        assert_bx_error(
            st,
            &r.json().await.unwrap(),
            401,
            "authentication_failed",
            None,
        );
    }
    // bradax's tokens at PyTake's routes: 401 in PyTake's shape
    for t in [bx_access, bx_refresh] {
        let (s, v) = call(&gw, "GET", "/api/v1/auth/me", Some(t), None).await;
        assert_eq!(s, 401, "{v}");
        assert_eq!(v["status_code"], 401, "{v}");
    }
    // refresh dispatches by audience: each answered in its own shape
    let (s, v) = refresh(&gw, py_refresh).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["token_type"], "bearer", "PyTake's shape: {v}");
    let (s, v) = refresh(&gw, bx_refresh).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["token_type"], "Bearer", "bradax's shape: {v}");
    assert_eq!(v["expires_in"], 900);
    // an access token is no refresh token: 401 in its audience's shape
    let (s, v) = refresh(&gw, bx_access).await;
    assert_bx_error(s, &v, 401, "authentication_failed", None);
    let (s, v) = refresh(&gw, py_access).await;
    assert_eq!((s, &v["status_code"]), (401, &json!(401)), "{v}");
    let (s, v) = refresh(&gw, "eyJhbGciOiJIUzI1NiJ9.e30.invalid").await;
    assert_eq!(
        (s, &v["status_code"]),
        (401, &json!(401)),
        "unknown: PyTake's shape {v}"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn student_tier_caps_limits_and_never_deploys(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let org = project(&gw, "aluno", "student").await;
    let (_, k, kv) = key(&gw, &org, &["invoke_llm", "deploy_graph"], Some(1000)).await;
    assert_eq!(
        kv["rpm"], 5,
        "a student key's rpm is capped at bradax.student_rpm"
    );
    let (_, _, kv) = key(&gw, &org, &["invoke_llm"], None).await;
    assert_eq!(kv["rpm"], 5, "and set to it when none is asked");
    let (s, v) = auth_token(&gw, "aluno", &k, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        scopes_of(&v),
        ["invoke_llm"],
        "deploy_graph is never a student's"
    );
    let (s, v) = auth_token(&gw, "aluno", &k, Some(&["deploy_graph"])).await;
    assert_bx_error(s, &v, 403, "forbidden", Some("STUDENT_TIER"));
}

#[sqlx::test(migrations = "./migrations")]
async fn a_revoked_keys_tokens_stop(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let org = project(&gw, "p-rev", "full").await;
    let (id, k, _) = key(&gw, &org, &["invoke_llm", "read_metrics"], None).await;
    let (_, t) = auth_token(&gw, "p-rev", &k, None).await;
    let access = t["access_token"].as_str().unwrap();
    let invoke = || async {
        reqwest::Client::new()
            .post(gw.url("/api/v1/llm/invoke"))
            .bearer_auth(access)
            .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "oi"}]}))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(invoke().await.status(), 200);
    let (s, _) = call(&gw, "GET", "/api/v1/metrics", Some(access), None).await;
    assert_eq!(s, 200);
    let (s, v) = call(
        &gw,
        "POST",
        &format!("/admin/v1/keys/{id}/revoke"),
        Some(MASTER),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = call(&gw, "GET", "/api/v1/metrics", Some(access), None).await;
    assert_bx_error(s, &v, 401, "authentication_failed", None);
    // the gateway's cache hears of the revocation within milliseconds
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = invoke().await;
        if r.status() == 401 {
            assert_bx_error(
                401,
                &r.json().await.unwrap(),
                401,
                "authentication_failed",
                None,
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {}", r.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, v) = refresh(&gw, t["refresh_token"].as_str().unwrap()).await;
    assert_bx_error(s, &v, 401, "authentication_failed", None);
    let (s, v) = auth_token(&gw, "p-rev", &k, None).await;
    assert_bx_error(s, &v, 401, "authentication_failed", None);
}

/// The number of usage events of organization `org` once the batching writer stored `n`.
pub async fn wait_usage(pool: &PgPool, org: &str, n: i64) -> i64 {
    let org: uuid::Uuid = org.parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let c: i64 =
            sqlx::query_scalar("SELECT count(*) FROM usage_event WHERE organization_id = $1")
                .bind(org)
                .fetch_one(pool)
                .await
                .unwrap();
        if c >= n || std::time::Instant::now() > deadline {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn metrics_are_the_projects_real_usage(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let (org, t) = caller(&gw, "p-met", "full", &["invoke_llm", "read_metrics"]).await;
    let (_, other_t) = caller(&gw, "p-met-2", "full", &["invoke_llm", "read_metrics"]).await;
    let (_, no_scope) = caller(&gw, "p-met-3", "full", &["invoke_llm"]).await;
    for (tok, model) in [
        (&t, "gpt-4o-mini"),
        (&t, "gpt-4o-mini"),
        (&t, "gpt-4o"),
        (&other_t, "gpt-4o"),
    ] {
        let r = reqwest::Client::new()
            .post(gw.url("/api/v1/llm/invoke"))
            .bearer_auth(tok)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "oi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(wait_usage(&pool, &org, 3).await, 3);
    let (s, v) = call(
        &gw,
        "GET",
        "/api/v1/metrics?project_id=p-met",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let find = |name: &str, model: &str| {
        v["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name && m["labels"]["model"] == model)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} {model} in {v}"))
    };
    let m = find("llm_requests_total", "gpt-4o-mini");
    assert_eq!(m["value"], 2, "{m}");
    assert_eq!(m["type"], "counter");
    assert_eq!(m["labels"]["project"], "p-met");
    assert!(m["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        find("llm_requests_total", "gpt-4o")["value"],
        1,
        "the other project's call is not here"
    );
    let costs: Vec<i64> = sqlx::query_scalar(
        "SELECT coalesce(sum(cost_upstream_usd_micros), 0)::int8 FROM usage_event
         WHERE organization_id = $1::uuid AND model = 'gpt-4o'",
    )
    .bind(&org)
    .fetch_all(&pool)
    .await
    .unwrap();
    let want = costs[0] as f64 / 1e6;
    assert_eq!(
        find("llm_cost_usd_total", "gpt-4o")["value"].as_f64(),
        Some(want)
    );
    // an empty window: no metrics
    let (s, v) = call(
        &gw,
        "GET",
        "/api/v1/metrics?start_time=2020-01-01T00:00:00Z&end_time=2020-01-02T00:00:00Z",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(
        (s, v["metrics"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{v}"
    );
    // another project: 403; no scope: 403; bad input: 400
    let (s, v) = call(
        &gw,
        "GET",
        "/api/v1/metrics?project_id=p-met-2",
        Some(&t),
        None,
    )
    .await;
    assert_bx_error(s, &v, 403, "forbidden", Some("PROJECT_MISMATCH"));
    let (s, v) = call(&gw, "GET", "/api/v1/metrics", Some(&no_scope), None).await;
    assert_bx_error(s, &v, 403, "insufficient_scope", Some("SCOPE_REQUIRED"));
    for q in [
        "start_time=ontem",
        "start_time=2025-01-02T00:00:00Z&end_time=2025-01-01T00:00:00Z",
        "x=1",
    ] {
        let (s, v) = call(&gw, "GET", &format!("/api/v1/metrics?{q}"), Some(&t), None).await;
        assert_bx_error(s, &v, 400, "validation_error", None);
    }
    let (s, v) = call(&gw, "GET", "/api/v1/metrics", None, None).await;
    assert_bx_error(s, &v, 401, "authentication_failed", None);
}

#[sqlx::test(migrations = "./migrations")]
async fn health_is_200_until_postgres_is_cut(pool: PgPool) {
    let o = pool.connect_options();
    let pg: std::net::SocketAddr = tokio::net::lookup_host((o.get_host(), o.get_port()))
        .await
        .unwrap()
        .next()
        .unwrap();
    let cut = TcpCut::start(pg).await;
    let (gw, _mock) = start_with(&pool, &db_url(&pool, Some(cut.port))).await;
    let (s, v) = call(&gw, "GET", "/api/v1/health", None, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "healthy", "{v}");
    for c in ["database", "vault", "llm_providers", "vector_db"] {
        assert_eq!(v["checks"][c], "healthy", "{c}: {v}");
    }
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    cut.cut();
    let t0 = std::time::Instant::now();
    let (s, v) = call(&gw, "GET", "/api/v1/health", None, None).await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["status"], "unhealthy", "{v}");
    assert_eq!(v["checks"]["database"], "unhealthy", "{v}");
    assert_eq!(
        v["checks"]["vault"], "healthy",
        "the canary needs no database: {v}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "answered within its deadlines"
    );
    cut.restore();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (s, v) = call(&gw, "GET", "/api/v1/health", None, None).await;
        if s == 200 {
            assert_eq!(v["checks"]["database"], "healthy", "{v}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not back: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
