//! The operator API (`/admin/v1`) end to end: an empty database to a working prepaid key,
//! billing, rotation and revocation seen by the gateway within a second; every route refuses
//! missing and non-master credentials and changes nothing.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::*;

const MASTER: &str = "operator-master-key-0123456789";

/// One model at $0.01 a request, FX 5, markup 1: R$ 0.05 a request.
fn config(mock: &Mock) -> String {
    format!(
        "pricing: {{fx_usd_brl: \"5.0\", default_markup: \"1.0\"}}\nproviders:\n  - {{name: a, base_url: \"{}\"}}\ndeployments:\n  - {{name: da, provider: a, model: up}}\nmodels:\n  - {{name: m, usd_per_request: \"0.01\", deployments: [da]}}\n",
        mock.base()
    )
}

async fn start(pool: &PgPool, mock: &Mock) -> Gateway {
    Gateway::start_with_env(
        &config(mock),
        &[
            ("DATABASE_URL", &db_url(pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
        ],
    )
    .await
}

async fn op(
    gw: &Gateway,
    method: &str,
    path: &str,
    body: Option<Value>,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut rb = reqwest::Client::new()
        .request(method.parse().unwrap(), gw.url(path))
        .bearer_auth(MASTER);
    for (k, v) in extra {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn chat(gw: &Gateway, key: &str) -> u16 {
    reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(json!({"model": "m", "messages": [{"role": "user", "content": "oi"}]}).to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let t0 = Instant::now();
    while !f().await {
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "{what}: not within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn empty_database_to_a_billed_rotated_and_revoked_key(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;

    let (s, org) = op(
        &gw,
        "POST",
        "/admin/v1/organizations",
        Some(json!({"name": "Padaria São João", "prepaid": true})),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{org}");
    assert_eq!(org["slug"], "padaria-sao-joao");
    assert_eq!(
        (org["prepaid"].clone(), org["balance_brl"].clone()),
        (json!(true), json!("0"))
    );
    let org_id = org["id"].as_str().unwrap().to_string();
    let (s, v) = op(
        &gw,
        "POST",
        "/admin/v1/organizations",
        Some(json!({"name": "Outra", "slug": "padaria-sao-joao"})),
        &[],
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{v}"
    );

    let (s, k) = op(
        &gw,
        "POST",
        "/admin/v1/keys",
        Some(json!({"organization_id": org_id, "prefix": "sk-tokia-", "name": "prod", "rpm": 600})),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{k}");
    let key = k["key"].as_str().unwrap().to_string();
    let key_id = k["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk-tokia-") && key.len() == 9 + 48, "{key}");
    assert_eq!(
        (k["rpm"].as_i64(), k["status"].as_str()),
        (Some(600), Some("active"))
    );
    let stored: String = sqlx::query_scalar("SELECT encode(key_hash, 'hex') FROM api_key")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_ne!(stored, key, "stored hashed");

    // a prepaid organization at zero pays nothing: 402 until the top-up
    assert_eq!(chat(&gw, &key).await, 402);
    let topup = json!({"kind": "topup", "amount_brl": "10.00"});
    let (s, e) = op(
        &gw,
        "POST",
        &format!("/admin/v1/organizations/{org_id}/ledger"),
        Some(topup.clone()),
        &[("Idempotency-Key", "pix-1")],
    )
    .await;
    assert_eq!((s, e["balance_brl"].as_str()), (201, Some("10")), "{e}");
    // replayed: the same entry, no second credit
    let (s, again) = op(
        &gw,
        "POST",
        &format!("/admin/v1/organizations/{org_id}/ledger"),
        Some(topup),
        &[("Idempotency-Key", "pix-1")],
    )
    .await;
    assert_eq!((s, &again), (201, &e));
    let (s, v) = op(
        &gw,
        "POST",
        &format!("/admin/v1/organizations/{org_id}/ledger"),
        Some(json!({"kind": "topup", "amount_brl": "10.00"})),
        &[],
    )
    .await;
    assert_eq!(s, 400, "no Idempotency-Key: {v}");
    // the statement: one entry (the replay added none), the balance it left
    let (s, st) = op(
        &gw,
        "GET",
        &format!("/admin/v1/organizations/{org_id}/ledger"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(
        (
            st["prepaid"].as_bool(),
            st["balance_brl"].as_str(),
            st["entries"].as_array().map(Vec::len),
            st["entries"][0]["idempotency_key"].as_str()
        ),
        (Some(true), Some("10"), Some(1), Some("pix-1")),
        "{st}"
    );
    let (s, _) = op(
        &gw,
        "GET",
        &format!("/admin/v1/organizations/{org_id}/ledger?limit=0"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 400);
    until("the top-up reaches the gateway", async || {
        chat(&gw, &key).await == 200
    })
    .await;
    // billed: R$ 0.05 a request, exactly
    let t0 = Instant::now();
    loop {
        let (_, o) = op(
            &gw,
            "GET",
            &format!("/admin/v1/organizations/{org_id}"),
            None,
            &[],
        )
        .await;
        if o["balance_brl"] == "9.95" {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "not billed: {o}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // a disabled organization's keys are refused at once, and work again when enabled
    let (s, o) = op(
        &gw,
        "POST",
        &format!("/admin/v1/organizations/{org_id}/disable"),
        None,
        &[],
    )
    .await;
    assert_eq!((s, o["disabled"].as_bool()), (200, Some(true)), "{o}");
    until("a disabled organization's key refused", async || {
        chat(&gw, &key).await != 200
    })
    .await;
    assert_eq!(chat(&gw, &key).await, 401, "a disabled key's answer");
    let (s, _) = op(
        &gw,
        "POST",
        &format!("/admin/v1/organizations/{org_id}/enable"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200);
    until("the key works again", async || chat(&gw, &key).await == 200).await;
    let (s, list) = op(
        &gw,
        "GET",
        &format!("/admin/v1/organizations/{org_id}/keys"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    assert!(
        list["data"][0].get("key").is_none(),
        "a list never shows a plaintext"
    );

    // rotation: the new key works, the old one is refused within a second
    let (s, r) = op(
        &gw,
        "POST",
        &format!("/admin/v1/keys/{key_id}/rotate"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let new_key = r["key"].as_str().unwrap().to_string();
    assert!(new_key.starts_with("sk-tokia-") && new_key != key);
    until("the old key refused", async || chat(&gw, &key).await == 401).await;
    assert_eq!(chat(&gw, &new_key).await, 200);

    let (s, _) = op(
        &gw,
        "POST",
        &format!("/admin/v1/keys/{key_id}/revoke"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200);
    until("the revoked key refused", async || {
        chat(&gw, &new_key).await == 401
    })
    .await;
    let (s, _) = op(
        &gw,
        "POST",
        &format!("/admin/v1/keys/{key_id}/revoke"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 404, "revoked already");

    // audit: one entry per change, readable through the API
    let (s, audit) = op(
        &gw,
        "GET",
        &format!("/admin/v1/audit?organization_id={org_id}"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200, "{audit}");
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "organization.create",
        "api_key.create",
        "organization.disable",
        "organization.enable",
        "api_key.rotate",
        "api_key.revoke",
        "ledger.topup",
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
    // one row per entry: the replayed top-up added none
    assert_eq!(
        actions.iter().filter(|a| **a == "ledger.topup").count(),
        1,
        "{actions:?}"
    );
    assert!(
        !audit["data"].to_string().contains(&new_key),
        "a plaintext in the audit log"
    );
    let (_, only) = op(
        &gw,
        "GET",
        "/admin/v1/audit?action=api_key.rotate",
        None,
        &[],
    )
    .await;
    assert_eq!(only["data"].as_array().map(Vec::len), Some(1), "{only}");

    // the document lists the routes
    let (s, doc) = op(&gw, "GET", "/admin/v1/openapi.json", None, &[]).await;
    assert_eq!(s, 200);
    assert!(
        doc["paths"]["/admin/v1/keys/{id}/rotate"].is_object(),
        "{doc}"
    );
}

/// What an operator call can change, to compare before and after a refused one.
type State = (i64, i64, i64, i64, i64, i64, Option<String>, Option<String>);
const STATE: &str = "SELECT (SELECT count(*) FROM organization), (SELECT count(*) FROM api_key WHERE status = 'active'),
    (SELECT count(*) FROM ledger_entry), (SELECT count(*) FROM plan), (SELECT count(*) FROM membership),
    (SELECT count(*) FROM webhook), (SELECT string_agg(name || coalesce(rate_limit_rpm::text, ''), ',' ORDER BY name) FROM organization),
    (SELECT string_agg(name || coalesce(monthly_request_quota::text, ''), ',' ORDER BY code) FROM plan)";

#[sqlx::test(migrations = "./migrations")]
async fn every_operator_route_refuses_other_credentials_and_changes_nothing(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let (_, org) = op(
        &gw,
        "POST",
        "/admin/v1/organizations",
        Some(json!({"name": "Acme"})),
        &[],
    )
    .await;
    let org_id = org["id"].as_str().unwrap().to_string();
    let (_, k) = op(
        &gw,
        "POST",
        "/admin/v1/keys",
        Some(json!({"organization_id": org_id})),
        &[],
    )
    .await;
    let api_key = k["key"].as_str().unwrap().to_string();
    let key_id = k["id"].as_str().unwrap().to_string();
    // a customer's dashboard token
    let (s, v) = call(
        &gw,
        "POST",
        "/api/auth/register",
        None,
        Some(json!({"email": "c@example.com", "password": "senha-forte-1", "name": "C"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let jwt = v["access_token"].as_str().unwrap().to_string();
    let before: State = sqlx::query_as(STATE).fetch_one(&pool).await.unwrap();
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            "/admin/v1/organizations".into(),
            Some(json!({"name": "X"})),
        ),
        ("GET", "/admin/v1/organizations".into(), None),
        ("GET", format!("/admin/v1/organizations/{org_id}"), None),
        (
            "POST",
            format!("/admin/v1/organizations/{org_id}/ledger"),
            Some(json!({"kind": "topup", "amount_brl": "5"})),
        ),
        (
            "POST",
            "/admin/v1/keys".into(),
            Some(json!({"organization_id": org_id})),
        ),
        ("POST", format!("/admin/v1/keys/{key_id}/revoke"), None),
        ("POST", format!("/admin/v1/keys/{key_id}/rotate"), None),
        (
            "POST",
            format!("/admin/v1/organizations/{org_id}/disable"),
            None,
        ),
        (
            "POST",
            format!("/admin/v1/organizations/{org_id}/enable"),
            None,
        ),
        (
            "GET",
            format!("/admin/v1/organizations/{org_id}/keys"),
            None,
        ),
        ("GET", "/admin/v1/audit".into(), None),
        (
            "POST",
            "/admin/v1/users".into(),
            Some(json!({"email": "z@example.com", "name": "Z", "organization_id": org_id})),
        ),
        (
            "GET",
            format!("/admin/v1/organizations/{org_id}/members"),
            None,
        ),
        (
            "PATCH",
            format!("/admin/v1/organizations/{org_id}"),
            Some(json!({"name": "Renamed", "limits": {"rpm": 1}})),
        ),
        (
            "POST",
            "/admin/v1/plans".into(),
            Some(json!({"code": "zz"})),
        ),
        ("GET", "/admin/v1/plans".into(), None),
        (
            "GET",
            format!("/admin/v1/organizations/{org_id}/ledger"),
            None,
        ),
        ("GET", "/admin/v1/plans/sandbox".into(), None),
        (
            "PATCH",
            "/admin/v1/plans/sandbox".into(),
            Some(json!({"monthly_request_quota": 1})),
        ),
        ("GET", "/admin/v1/users".into(), None),
        (
            "POST",
            format!("/admin/v1/organizations/{org_id}/members"),
            Some(json!({"user_id": uuid::Uuid::new_v4().to_string(), "role": "admin"})),
        ),
        (
            "PATCH",
            format!(
                "/admin/v1/organizations/{org_id}/members/{}",
                uuid::Uuid::new_v4()
            ),
            Some(json!({"role": "admin"})),
        ),
        (
            "DELETE",
            format!(
                "/admin/v1/organizations/{org_id}/members/{}",
                uuid::Uuid::new_v4()
            ),
            None,
        ),
        (
            "GET",
            "/admin/v1/usage?from=2026-01-01&to=2026-01-02".into(),
            None,
        ),
        (
            "POST",
            "/admin/v1/webhooks".into(),
            Some(
                json!({"organization_id": org_id, "url": "https://example.com/h", "events": ["api_key_created"]}),
            ),
        ),
        (
            "GET",
            format!("/admin/v1/webhooks?organization_id={org_id}"),
            None,
        ),
    ];
    for (method, path, body) in &routes {
        for (cred, want) in [
            (None, 401),
            (Some(jwt.as_str()), 403),
            (Some(api_key.as_str()), 403),
            (Some("operator-master-key-012345678X"), 403),
        ] {
            let mut rb = reqwest::Client::new()
                .request(method.parse().unwrap(), gw.url(path))
                .header("idempotency-key", "x");
            if let Some(c) = cred {
                rb = rb.bearer_auth(c);
            }
            if let Some(b) = body {
                rb = rb
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            let r = rb.send().await.unwrap();
            let s = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            assert_eq!(s, want, "{method} {path} with {cred:?}: {v}");
            assert!(
                v["error"]["code"].is_string() && v["error"]["message"].is_string(),
                "{v}"
            );
        }
    }
    let after: State = sqlx::query_as(STATE).fetch_one(&pool).await.unwrap();
    assert_eq!(before, after, "a refused call changed something");
    // malformed ids and bodies are the operator's 400, before any lookup
    for (method, path, body) in [
        (
            "GET",
            "/admin/v1/organizations/not-a-uuid".to_string(),
            None,
        ),
        (
            "POST",
            "/admin/v1/keys".to_string(),
            Some(json!({"organization_id": "nope"})),
        ),
        (
            "POST",
            "/admin/v1/keys".to_string(),
            Some(json!({"organization_id": org_id, "prefix": "BAD"})),
        ),
        (
            "POST",
            "/admin/v1/keys".to_string(),
            Some(json!({"organization_id": org_id, "rpm": 0})),
        ),
        (
            "POST",
            "/admin/v1/organizations".to_string(),
            Some(json!({"name": "a\u{0}b"})),
        ),
        (
            "GET",
            "/admin/v1/organizations?page=4611686018427387904".to_string(),
            None,
        ),
    ] {
        let (s, v) = op(&gw, method, &path, body, &[]).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{method} {path}: {v}"
        );
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn without_a_master_key_the_operator_api_is_off(pool: PgPool) {
    let mock = Mock::start().await;
    let gw =
        Gateway::start_with_env(&config(&mock), &[("DATABASE_URL", &db_url(&pool, None))]).await;
    let (s, v) = op(&gw, "GET", "/admin/v1/organizations", None, &[]).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (503, Some("operator_api_disabled")),
        "{v}"
    );
}

fn cli(pool: &PgPool, args: &[&str]) -> (bool, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_catraca"))
        .args(args)
        .env("DATABASE_URL", db_url(pool, None))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (
        out.status.success(),
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[sqlx::test(migrations = "./migrations")]
async fn the_cli_mirrors_the_api_from_an_empty_database_to_a_working_key(pool: PgPool) {
    // three commands: an organization, its top-up, its key
    let (ok, org, err) = cli(&pool, &["org", "create", "--name", "Padaria", "--prepaid"]);
    assert!(ok, "{err}");
    assert_eq!(
        (org["slug"].as_str(), org["prepaid"].as_bool()),
        (Some("padaria"), Some(true))
    );
    let org_id = org["id"].as_str().unwrap().to_string();
    let (ok, _, err) = cli(
        &pool,
        &[
            "ledger",
            "post",
            "--org",
            &org_id,
            "--kind",
            "topup",
            "--amount",
            "10",
            "--idempotency-key",
            "pix-1",
        ],
    );
    assert!(ok, "{err}");
    let (ok, k, err) = cli(
        &pool,
        &[
            "key",
            "create",
            "--org",
            &org_id,
            "--prefix",
            "sk-tokia-",
            "--rpm",
            "600",
            "--model",
            "m",
        ],
    );
    assert!(ok, "{err}");
    let key = k["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk-tokia-"), "{k}");
    assert_eq!(k["models"], json!(["m"]));

    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    assert_eq!(chat(&gw, &key).await, 200);
    // the same JSON as the API
    let (_, api) = op(
        &gw,
        "GET",
        &format!("/admin/v1/organizations/{org_id}"),
        None,
        &[],
    )
    .await;
    let (ok, got, _) = cli(&pool, &["org", "get", &org_id]);
    assert!(ok);
    assert_eq!(got["slug"], api["slug"]);
    let (ok, list, _) = cli(&pool, &["org", "list", "--kind", "customer"]);
    assert!(ok);
    assert_eq!(list["total"], 1);

    let key_id = k["id"].as_str().unwrap().to_string();
    let (ok, r, err) = cli(&pool, &["key", "rotate", &key_id]);
    assert!(ok, "{err}");
    let new_key = r["key"].as_str().unwrap().to_string();
    until("the old key refused after a CLI rotation", async || {
        chat(&gw, &key).await == 401
    })
    .await;
    assert_eq!(chat(&gw, &new_key).await, 200);
    let (ok, _, err) = cli(&pool, &["key", "revoke", &key_id]);
    assert!(ok, "{err}");
    until("the key refused after a CLI revocation", async || {
        chat(&gw, &new_key).await == 401
    })
    .await;

    // bad input: a clear error, non-zero exit, nothing changed
    for args in [
        vec!["org", "get", "not-a-uuid"],
        vec!["key", "create", "--org", &org_id, "--prefix", "BAD"],
        vec!["org", "create", "--name", "Padaria"],
        vec!["org", "list", "--page", "0"],
    ] {
        let (ok, _, err) = cli(&pool, &args);
        assert!(!ok, "{args:?} succeeded");
        assert!(!err.is_empty(), "{args:?}: no message");
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM organization")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[sqlx::test(migrations = "./migrations")]
async fn users_are_created_invited_listed_and_disabled(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = Gateway::start_with_env(
        &config(&mock),
        &[
            ("DATABASE_URL", &db_url(&pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
            (
                "CATRACA_JWT_SECRET",
                "test-secret-test-secret-test-secret-123",
            ),
        ],
    )
    .await;
    let (_, org) = op(
        &gw,
        "POST",
        "/admin/v1/organizations",
        Some(json!({"name": "Time", "kind": "team"})),
        &[],
    )
    .await;
    let org_id = org["id"].as_str().unwrap().to_string();
    // with a password: logs in at once (SabIA's login here)
    let (s, u) = op(&gw, "POST", "/admin/v1/users", Some(json!({"email": "ana@exemplo.com", "name": "Ana", "password": "senha-forte-1", "organization_id": org_id, "role": "admin"})), &[]).await;
    assert_eq!(s, 201, "{u}");
    assert_eq!(u["memberships"][0]["role"], "admin");
    let login = |email: &'static str, password: &'static str| {
        let gw = &gw;
        async move {
            call(
                gw,
                "POST",
                "/v1/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await
        }
    };
    let (s, v) = login("ana@exemplo.com", "senha-forte-1").await;
    assert_eq!(s, 200, "{v}");
    let token = v["data"]["token"].as_str().unwrap().to_string();
    let (s, _) = call(&gw, "GET", "/v1/teams", Some(&token), None).await;
    assert_eq!(s, 200);
    // without one: an invitation mail whose code sets the password
    let (s, b) = op(
        &gw,
        "POST",
        "/admin/v1/users",
        Some(json!({"email": "bia@exemplo.com", "name": "Bia", "organization_id": org_id})),
        &[],
    )
    .await;
    assert_eq!(
        (s, b["memberships"][0]["role"].as_str()),
        (201, Some("member")),
        "{b}"
    );
    let body: String = sqlx::query_scalar("SELECT body FROM outbox_email WHERE to_address = 'bia@exemplo.com' AND subject = 'Convite'")
        .fetch_one(&pool).await.unwrap();
    let code = body.rsplit(' ').next().unwrap().to_string();
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/auth/reset-password",
        None,
        Some(json!({"token": code, "newPassword": "minha-senha-1"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(login("bia@exemplo.com", "minha-senha-1").await.0, 200);
    // listed, and refused twice and malformed without a change
    let (s, m) = op(
        &gw,
        "GET",
        &format!("/admin/v1/organizations/{org_id}/members"),
        None,
        &[],
    )
    .await;
    assert_eq!(
        (s, m["data"].as_array().map(Vec::len)),
        (200, Some(2)),
        "{m}"
    );
    let (s, v) = op(
        &gw,
        "POST",
        "/admin/v1/users",
        Some(json!({"email": "ANA@exemplo.com", "name": "Outra", "organization_id": org_id})),
        &[],
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{v}"
    );
    for bad in [
        json!({"email": "nope", "name": "X", "organization_id": org_id}),
        json!({"email": "x@exemplo.com", "name": "X", "organization_id": org_id, "role": "god"}),
        json!({"email": "x@exemplo.com", "name": "X", "organization_id": org_id, "password": "curta"}),
        json!({"email": "x@exemplo.com", "name": "X", "organization_id": "not-a-uuid"}),
    ] {
        let (s, v) = op(&gw, "POST", "/admin/v1/users", Some(bad.clone()), &[]).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    // disabled: the session ends at once and logins are refused
    let ana = u["id"].as_str().unwrap().to_string();
    let (s, d) = op(
        &gw,
        "POST",
        &format!("/admin/v1/users/{ana}/disable"),
        None,
        &[],
    )
    .await;
    assert_eq!((s, d["disabled"].as_bool()), (200, Some(true)), "{d}");
    let (s, _) = call(&gw, "GET", "/v1/teams", Some(&token), None).await;
    assert_eq!(s, 401, "a disabled user's session still works");
    assert_eq!(login("ana@exemplo.com", "senha-forte-1").await.0, 401);
    let (s, g) = op(&gw, "GET", &format!("/admin/v1/users/{ana}"), None, &[]).await;
    assert_eq!((s, g["disabled"].as_bool()), (200, Some(true)));
}

/// The rest of the operator's API: organization changes seen by the gateway, plans, users,
/// memberships (never losing the last owner), usage reports in JSON and CSV, webhooks; every
/// change audited as the operator's, from the client's address, with a redacted before/after.
#[sqlx::test(migrations = "./migrations")]
async fn organizations_plans_members_usage_and_webhooks(pool: PgPool) {
    let mock = Mock::start().await;
    let sealing = "0f".repeat(32);
    let gw = Gateway::start_with_env(
        &format!("webhooks: {{allow_loopback: true}}\n{}", config(&mock)),
        &[
            ("DATABASE_URL", &db_url(&pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
            ("CATRACA_SECRET_KEY", &sealing),
        ],
    )
    .await;

    // a plan, refused when malformed, then created and changed
    for bad in [
        json!({"code": "Bad Code"}),
        json!({"code": "p", "price_brl": "abc"}),
        json!({"code": "p", "limits": {"rpm": 0}}),
        json!({"code": "p", "limits": {"rpm": 4294967296i64}}),
        json!({"code": "p", "monthly_request_quota": -1}),
        json!({"code": "p", "features": [""]}),
        json!({"code": "p", "surprise": 1}),
    ] {
        let (s, v) = op(&gw, "POST", "/admin/v1/plans", Some(bad.clone()), &[]).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{bad}: {v}"
        );
    }
    let (s, p) = op(
        &gw,
        "POST",
        "/admin/v1/plans",
        Some(json!({"code": "growth", "name": "Growth", "price_brl": "199.90", "monthly_request_quota": 1000,
                    "limits": {"rpm": 100}, "features": ["SLA", {"text": "On-premise", "included": false}]})),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(
        (p["price_brl"].as_str(), p["limits"]["rpm"].as_i64()),
        (Some("199.9"), Some(100))
    );
    // features are stored as the plan cards show them (SabIA's `{text, included}`)
    assert_eq!(
        p["features"],
        json!([{"text": "SLA", "included": true}, {"text": "On-premise", "included": false}])
    );
    let (s, v) = op(
        &gw,
        "POST",
        "/admin/v1/plans",
        Some(json!({"code": "growth"})),
        &[],
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{v}"
    );
    let (s, p) = op(
        &gw,
        "PATCH",
        "/admin/v1/plans/growth",
        Some(json!({"monthly_request_quota": null, "limits": {"rpm": null, "rps": 50}})),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["monthly_request_quota"], Value::Null);
    assert_eq!(
        (p["limits"]["rpm"].clone(), p["limits"]["rps"].clone()),
        (Value::Null, json!(50))
    );
    assert_eq!(p["name"], "Growth", "an absent field is kept");
    let (s, _) = op(
        &gw,
        "PATCH",
        "/admin/v1/plans/nope",
        Some(json!({"name": "x"})),
        &[],
    )
    .await;
    assert_eq!(s, 404);
    let (_, all) = op(&gw, "GET", "/admin/v1/plans", None, &[]).await;
    assert!(
        all["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["code"] == "growth"),
        "{all}"
    );

    // an organization on it; its own limit reaches the gateway at once
    let (_, org) = op(
        &gw,
        "POST",
        "/admin/v1/organizations",
        Some(json!({"name": "Loja", "plan": "growth", "limits": {"rpd": 1000}})),
        &[("x-forwarded-for", "203.0.113.9")],
    )
    .await;
    assert_eq!(org["limits"]["rpd"], 1000, "{org}");
    let org_id = org["id"].as_str().unwrap().to_string();
    let (_, k) = op(
        &gw,
        "POST",
        "/admin/v1/keys",
        Some(json!({"organization_id": org_id, "prefix": "sk-tokia-"})),
        &[],
    )
    .await;
    let key = k["key"].as_str().unwrap().to_string();
    let key_id = k["id"].as_str().unwrap().to_string();
    assert_eq!(chat(&gw, &key).await, 200);
    let (mut sent, mut answered) = (1i64, 1i64);
    let (s, o) = op(
        &gw,
        "PATCH",
        &format!("/admin/v1/organizations/{org_id}"),
        Some(json!({"name": "Loja Nova", "limits": {"rpm": 1}})),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(
        (
            o["name"].as_str(),
            o["plan"].as_str(),
            o["limits"]["rpm"].as_i64()
        ),
        (Some("Loja Nova"), Some("growth"), Some(1))
    );
    // within a second the key is held to one request a minute (one already made)
    let t0 = Instant::now();
    loop {
        sent += 1;
        let s = chat(&gw, &key).await;
        answered += i64::from(s == 200);
        if s == 429 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "the organization's rpm: not within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (s, o) = op(
        &gw,
        "PATCH",
        &format!("/admin/v1/organizations/{org_id}"),
        Some(json!({"limits": {"rpm": null}, "plan": null})),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(
        (
            o["plan"].clone(),
            o["limits"]["rpm"].clone(),
            o["name"].as_str()
        ),
        (Value::Null, Value::Null, Some("Loja Nova"))
    );
    let t0 = Instant::now();
    loop {
        sent += 1;
        let s = chat(&gw, &key).await;
        answered += i64::from(s == 200);
        if s == 200 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "the limit lifted: not within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for bad in [
        json!({"plan": "nope"}),
        json!({"limits": {"tpm": -5}}),
        json!({"name": ""}),
        json!({"limits": {"x": 1}}),
    ] {
        let (s, v) = op(
            &gw,
            "PATCH",
            &format!("/admin/v1/organizations/{org_id}"),
            Some(bad.clone()),
            &[],
        )
        .await;
        assert_eq!(s, 400, "{bad}: {v}");
    }

    // users and memberships; the last owner is never lost
    let (_, owner) = op(
        &gw,
        "POST",
        "/admin/v1/users",
        Some(json!({"email": "dona@loja.com", "name": "Dona", "password": "senha-forte-1", "organization_id": org_id, "role": "owner"})),
        &[],
    )
    .await;
    let owner_id = owner["id"].as_str().unwrap().to_string();
    let (_, other) = op(
        &gw,
        "POST",
        "/admin/v1/organizations",
        Some(json!({"name": "Outra"})),
        &[],
    )
    .await;
    let other_id = other["id"].as_str().unwrap().to_string();
    let (s, v) = op(
        &gw,
        "POST",
        &format!("/admin/v1/organizations/{other_id}/members"),
        Some(json!({"user_id": owner_id, "role": "viewer"})),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, _) = op(
        &gw,
        "POST",
        &format!("/admin/v1/organizations/{other_id}/members"),
        Some(json!({"user_id": owner_id, "role": "viewer"})),
        &[],
    )
    .await;
    assert_eq!(s, 409, "already a member");
    let (s, _) = op(
        &gw,
        "POST",
        &format!("/admin/v1/organizations/{other_id}/members"),
        Some(json!({"user_id": owner_id, "role": "root"})),
        &[],
    )
    .await;
    assert_eq!(s, 400, "unknown role");
    let (s, v) = op(
        &gw,
        "PATCH",
        &format!("/admin/v1/organizations/{org_id}/members/{owner_id}"),
        Some(json!({"role": "member"})),
        &[],
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("last_owner")),
        "{v}"
    );
    let (s, _) = op(
        &gw,
        "DELETE",
        &format!("/admin/v1/organizations/{org_id}/members/{owner_id}"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 409, "the last owner cannot be removed");
    let (s, v) = op(
        &gw,
        "PATCH",
        &format!("/admin/v1/organizations/{other_id}/members/{owner_id}"),
        Some(json!({"role": "admin"})),
        &[],
    )
    .await;
    assert_eq!((s, v["role"].as_str()), (200, Some("admin")), "{v}");
    let (s, users) = op(
        &gw,
        "GET",
        &format!("/admin/v1/users?organization_id={other_id}"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200, "{users}");
    assert_eq!(users["total"], 1, "{users}");
    assert_eq!(
        users["data"][0]["memberships"].as_array().unwrap().len(),
        2,
        "{users}"
    );
    let (_, users) = op(&gw, "GET", "/admin/v1/users?email=LOJA.COM", None, &[]).await;
    assert_eq!(users["total"], 1, "{users}");
    let (s, _) = op(
        &gw,
        "DELETE",
        &format!("/admin/v1/organizations/{other_id}/members/{owner_id}"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = op(
        &gw,
        "DELETE",
        &format!("/admin/v1/organizations/{other_id}/members/{owner_id}"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 404, "no longer a member");

    // usage per day: every request of the key, the answered ones priced exactly (R$ 0.05 each)
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let q = format!("from={today}&to={today}&organization_id={org_id}");
    let mut report = Value::Null;
    let t0 = Instant::now();
    while report["data"][0]["requests"].as_i64() != Some(sent) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "sent {sent}, answered {answered}: {report}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        report = op(
            &gw,
            "GET",
            &format!("/admin/v1/usage?group_by=key&{q}"),
            None,
            &[],
        )
        .await
        .1;
    }
    let row = &report["data"][0];
    assert_eq!(
        (row["id"].as_str(), row["day"].as_str()),
        (Some(key_id.as_str()), Some(today.as_str())),
        "{report}"
    );
    assert_eq!(
        (
            row["successful"].as_i64(),
            row["cost_usd"].as_str(),
            row["billed_brl"].as_str()
        ),
        (
            Some(answered),
            Some(
                catraca::domain::money::Micros(answered * 10_000)
                    .decimal()
                    .as_str()
            ),
            Some(
                catraca::domain::money::Micros(answered * 50_000)
                    .decimal()
                    .as_str()
            )
        ),
        "{report}"
    );
    assert!(
        row["label"].as_str().unwrap().starts_with("sk-tokia-"),
        "{report}"
    );
    let r = reqwest::Client::new()
        .get(gw.url(&format!("/admin/v1/usage?group_by=model&format=csv&{q}")))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    assert_eq!(
        csv,
        format!(
            "day,group_by,id,label,requests,successful,prompt_tokens,completion_tokens,cost_usd,billed_brl\r\n{today},model,m,m,{sent},{answered},{},{},{},{}\r\n",
            row["prompt_tokens"],
            row["completion_tokens"],
            row["cost_usd"].as_str().unwrap(),
            row["billed_brl"].as_str().unwrap()
        )
    );
    for bad in [
        format!("group_by=team&{q}"),
        format!("from={today}&to=2020-01-01"),
        "from=2024-01-01&to=2026-01-01".to_string(),
        format!("from=yesterday&to={today}"),
        format!("{q}&format=xml"),
    ] {
        let (s, v) = op(&gw, "GET", &format!("/admin/v1/usage?{bad}"), None, &[]).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }

    // webhooks: the secret answered once, never listed, never audited
    let (s, w) = op(
        &gw,
        "POST",
        "/admin/v1/webhooks",
        Some(json!({"organization_id": org_id, "url": format!("{}/hook", mock.base()), "events": ["api_key_created"]})),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{w}");
    let secret = w["secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32);
    let (_, list) = op(
        &gw,
        "GET",
        &format!("/admin/v1/webhooks?organization_id={org_id}"),
        None,
        &[],
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list["data"][0].get("secret").is_none(), "{list}");
    let (s, _) = op(
        &gw,
        "POST",
        "/admin/v1/webhooks",
        Some(json!({"organization_id": org_id, "url": "http://169.254.169.254/latest", "events": ["api_key_created"]})),
        &[],
    )
    .await;
    assert_eq!(s, 400, "a metadata address");

    // the audit log: each change as the operator's, from the client's address, before/after
    let (_, audit) = op(
        &gw,
        "GET",
        &format!("/admin/v1/audit?organization_id={org_id}&actor=operator"),
        None,
        &[],
    )
    .await;
    let entries = audit["data"].as_array().unwrap();
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} not audited: {audit}"))
    };
    let update = find("organization.update");
    assert_eq!(update["actor"], "operator");
    assert!(update["source_ip"].is_string(), "{update}");
    assert_eq!(update["before"]["name"], "Loja Nova");
    assert_eq!(
        (
            update["before"]["rpm"].clone(),
            update["after"]["rpm"].clone()
        ),
        (json!(1), Value::Null)
    );
    let created = find("organization.create");
    // the connection's address as the gateway saw it; a header the client set is not believed
    assert_eq!(created["source_ip"], "127.0.0.1", "{created}");
    let (_, other_audit) = op(
        &gw,
        "GET",
        &format!("/admin/v1/audit?organization_id={other_id}&action=membership.role"),
        None,
        &[],
    )
    .await;
    let role = &other_audit["data"][0];
    assert_eq!(
        (
            role["before"]["role"].as_str(),
            role["after"]["role"].as_str()
        ),
        (Some("viewer"), Some("admin")),
        "{other_audit}"
    );
    let hook = find("webhook.create");
    assert_eq!(hook["after"]["signed"], true, "{hook}");
    assert!(
        !audit.to_string().contains(&secret),
        "a webhook secret in the audit log"
    );
    let (_, plan_audit) = op(&gw, "GET", "/admin/v1/audit?action=plan.update", None, &[]).await;
    assert_eq!(plan_audit["data"][0]["before"]["rpm"], 100, "{plan_audit}");
    let (s, _) = op(&gw, "GET", "/admin/v1/audit?actor=robot", None, &[]).await;
    assert_eq!(s, 400);
}
