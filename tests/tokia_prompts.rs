//! Tokia's prompt library end to end (issue 14 item 9): prompts made, listed, patched (a
//! version only when the body changes), cloned (`-copia`, `-copia-2`) and deleted (versions
//! cascade); runs through the real gateway (402 at zero balance, billed once after a top-up,
//! the session id on the usage event, `runs` grouping them); and every refusal's shape: 400 bad
//! input / missing variables / no model, 401 a foreign or revoked `api_key`, 404
//! `prompt_not_found` for another organization's prompt.

use std::time::{Duration, Instant};

use catraca::domain::money::Micros;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::*;

const MASTER: &str = "tokia-prompts-master-key-0123456789";

/// `m`: $0.01 a request (R$ 0.05 at FX 5, markup 1).
fn config(mock: &Mock) -> String {
    format!(
        "pricing: {{fx_usd_brl: \"5.0\", default_markup: \"1.0\"}}\nproviders:\n  - {{name: a, base_url: \"{}\"}}\ndeployments:\n  - {{name: da, provider: a, model: up}}\nmodels:\n  - {{name: m, usd_per_request: \"0.01\", deployments: [da]}}\n",
        mock.base()
    )
}

async fn op(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut rb = reqwest::Client::new()
        .request(method.parse().unwrap(), gw.url(path))
        .bearer_auth(MASTER)
        .header("Idempotency-Key", "tokia-prompts-topup-1");
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// A call with a Tokia key; a `String` body is sent as is.
async fn call(
    gw: &Gateway,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rb = reqwest::Client::new()
        .request(method.parse().unwrap(), gw.url(path))
        .bearer_auth(key);
    match body {
        Some(Value::String(raw)) => {
            rb = rb.header("content-type", "application/json").body(raw);
        }
        Some(b) => {
            rb = rb
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        None => {}
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// An organization (prepaid), its owner and keys: (org id, keys' (id, plaintext)).
async fn tenant(gw: &Gateway, name: &str, key_names: &[&str]) -> (String, Vec<(String, String)>) {
    let (s, org) = op(
        gw,
        "POST",
        "/admin/v1/organizations",
        Some(json!({"name": name, "prepaid": true})),
    )
    .await;
    assert_eq!(s, 201, "{org}");
    let org_id = org["id"].as_str().unwrap().to_string();
    let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
    let (s, user) = op(
        gw,
        "POST",
        "/admin/v1/users",
        Some(json!({"email": email, "name": name, "organization_id": org_id, "role": "owner"})),
    )
    .await;
    assert_eq!(s, 201, "{user}");
    let user_id = user["id"].as_str().unwrap().to_string();
    let mut keys = Vec::new();
    for n in key_names {
        let (s, k) = op(gw, "POST", "/admin/v1/keys", Some(json!({"organization_id": org_id, "user_id": user_id, "prefix": "sk-tokia-", "name": n}))).await;
        assert_eq!(s, 201, "{k}");
        keys.push((
            k["id"].as_str().unwrap().to_string(),
            secret(k["key"].as_str().unwrap()),
        ));
    }
    (org_id, keys)
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[sqlx::test(migrations = "./migrations")]
async fn prompts_crud_versions_clone_delete_and_refusals(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = Gateway::start_with_env(
        &config(&mock),
        &[
            ("DATABASE_URL", &db_url(&pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
        ],
    )
    .await;
    let (org, keys) = tenant(&gw, "Prompt Ltda", &["a"]).await;
    let key = keys[0].1.clone();
    let (_, other) = tenant(&gw, "Outra Prompt", &["b"]).await;
    let other_key = other[0].1.clone();

    // ---------- create: variables derived from the body, version 1
    let (s, p) = call(
        &gw,
        "POST",
        "/v1/me/prompts",
        &key,
        Some(json!({"name": "resumo", "body": "Resuma {{texto}} em {{ n }} frases: {{texto}}", "tags": ["escrita"]})),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["variables"], json!(["texto", "n"]));
    assert_eq!(p["version"], 1);
    assert_eq!(p["tags"], json!(["escrita"]));
    assert_eq!(p["default_model"], Value::Null);
    for k in ["description", "created_at", "updated_at", "body", "name"] {
        assert!(p.get(k).is_some(), "{k} in {p}");
    }

    // ---------- refused input: 400 before any lookup, nothing written
    for (bad, want) in [
        (json!({"name": "ab", "body": "x"}), "invalid_parameter"),
        (
            json!({"name": "x".repeat(121), "body": "x"}),
            "invalid_parameter",
        ),
        (json!({"name": "abc", "body": ""}), "invalid_parameter"),
        (
            json!({"name": "abc", "body": "y".repeat(32_001)}),
            "invalid_parameter",
        ),
        (
            json!({"name": "abc", "body": "x", "description": "d".repeat(2_001)}),
            "invalid_parameter",
        ),
        (
            json!({"name": "abc", "body": "{{aberto"}),
            "invalid_parameter",
        ),
        (
            json!({"name": "abc", "body": "x", "variables": ["não"]}),
            "invalid_parameter",
        ),
        (
            json!({"name": "abc", "body": "x", "tags": ["t".repeat(25)]}),
            "invalid_parameter",
        ),
        (json!({"name": "abc"}), "invalid_body"),
        (
            Value::String(r#"{"name":"abc","body":"a\u0000b"}"#.into()),
            "invalid_body",
        ),
    ] {
        let (s, v) = call(&gw, "POST", "/v1/me/prompts", &key, Some(bad.clone())).await;
        assert_eq!((s, code(&v)), (400, want), "{bad} → {v}");
    }
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/me/prompts",
        &key,
        Some(json!({"name": "resumo", "body": "x"})),
    )
    .await;
    assert_eq!((s, code(&v)), (409, "prompt_name_taken"), "{v}");
    let (s, v) = call(&gw, "GET", "/v1/me/prompts", &key, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["prompts"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["prompts"][0]["id"], id.as_str());

    // ---------- another organization sees nothing
    let (s, v) = call(&gw, "GET", "/v1/me/prompts", &other_key, None).await;
    assert_eq!((s, v["prompts"].as_array().map(Vec::len)), (200, Some(0)));
    for (m, path, body) in [
        ("GET", format!("/v1/me/prompts/{id}"), None),
        (
            "PATCH",
            format!("/v1/me/prompts/{id}"),
            Some(json!({"body": "roubado"})),
        ),
        ("DELETE", format!("/v1/me/prompts/{id}"), None),
        ("GET", format!("/v1/me/prompts/{id}/versions"), None),
        ("POST", format!("/v1/me/prompts/{id}/clone"), None),
        ("GET", format!("/v1/me/prompts/{id}/runs"), None),
        (
            "POST",
            format!("/v1/me/prompts/{id}/run"),
            Some(json!({"api_key": other_key, "values": {"texto": "a", "n": "1"}, "model": "m"})),
        ),
    ] {
        let (s, v) = call(&gw, m, &path, &other_key, body).await;
        assert_eq!((s, code(&v)), (404, "prompt_not_found"), "{m} {path}: {v}");
        assert_eq!(v["error"]["message"], "Prompt não encontrado");
    }
    let (s, v) = call(&gw, "GET", "/v1/me/prompts/nao-e-uuid", &key, None).await;
    assert_eq!((s, code(&v)), (400, "invalid_parameter"), "{v}");
    let (s, v) = call(&gw, "GET", "/v1/me/prompts", "sk-tokia-nope", None).await;
    assert_eq!((s, code(&v)), (401, "invalid_api_key"), "{v}");

    // ---------- patch: a version only when the body changes
    let path = format!("/v1/me/prompts/{id}");
    let (s, p) = call(
        &gw,
        "PATCH",
        &path,
        &key,
        Some(json!({"description": "Resumos", "default_model": "m"})),
    )
    .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(
        (p["version"].as_i64(), p["description"].as_str()),
        (Some(1), Some("Resumos"))
    );
    let (s, p) = call(
        &gw,
        "PATCH",
        &path,
        &key,
        Some(json!({"body": "Resuma {{texto}} em {{ n }} frases: {{texto}}"})),
    )
    .await;
    assert_eq!(
        (s, p["version"].as_i64()),
        (200, Some(1)),
        "the same body: {p}"
    );
    let (s, p) = call(
        &gw,
        "PATCH",
        &path,
        &key,
        Some(json!({"body": "Resuma: {{texto}} para {{publico}}", "change_note": "mais curto"})),
    )
    .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["version"], 2);
    assert_eq!(p["variables"], json!(["texto", "publico"]), "re-derived");
    assert_eq!(p["description"], "Resumos", "kept");
    let (s, p) = call(
        &gw,
        "PATCH",
        &path,
        &key,
        Some(json!({"variables": ["texto", "publico", "extra"]})),
    )
    .await;
    assert_eq!((s, p["version"].as_i64()), (200, Some(2)), "{p}");
    let (s, v) = call(
        &gw,
        "PATCH",
        &path,
        &key,
        Some(json!({"change_note": "n".repeat(201)})),
    )
    .await;
    assert_eq!((s, code(&v)), (400, "invalid_parameter"), "{v}");
    let (s, v) = call(&gw, "GET", &format!("{path}/versions"), &key, None).await;
    assert_eq!(s, 200, "{v}");
    let vs = v["versions"].as_array().unwrap();
    assert_eq!(vs.len(), 2, "{v}");
    assert_eq!(
        (vs[0]["version"].as_i64(), vs[0]["change_note"].as_str()),
        (Some(2), Some("mais curto"))
    );
    assert_eq!(
        vs[1]["body"],
        "Resuma {{texto}} em {{ n }} frases: {{texto}}"
    );
    assert_eq!(vs[1]["variables"], json!(["texto", "n"]));
    let (s, p) = call(&gw, "GET", &path, &key, None).await;
    assert_eq!(
        (s, p["variables"].clone()),
        (200, json!(["texto", "publico", "extra"]))
    );

    // ---------- clone: -copia, -copia-2, version 1 with a history of its own
    let (s, c1) = call(&gw, "POST", &format!("{path}/clone"), &key, None).await;
    assert_eq!(s, 201, "{c1}");
    assert_eq!(
        (c1["name"].as_str(), c1["version"].as_i64()),
        (Some("resumo-copia"), Some(1))
    );
    assert_eq!(c1["body"], p["body"]);
    assert_eq!(c1["variables"], p["variables"]);
    let (s, c2) = call(&gw, "POST", &format!("{path}/clone"), &key, None).await;
    assert_eq!(
        (s, c2["name"].as_str()),
        (201, Some("resumo-copia-2")),
        "{c2}"
    );
    let c2_id = c2["id"].as_str().unwrap().to_string();
    let (_, v) = call(
        &gw,
        "GET",
        &format!("/v1/me/prompts/{c2_id}/versions"),
        &key,
        None,
    )
    .await;
    assert_eq!(v["versions"].as_array().map(Vec::len), Some(1), "{v}");

    // ---------- delete cascades to the versions
    let (s, v) = call(
        &gw,
        "DELETE",
        &format!("/v1/me/prompts/{c2_id}"),
        &key,
        None,
    )
    .await;
    assert_eq!((s, v["deleted"].as_bool()), (200, Some(true)), "{v}");
    let (s, v) = call(&gw, "GET", &format!("/v1/me/prompts/{c2_id}"), &key, None).await;
    assert_eq!((s, code(&v)), (404, "prompt_not_found"));
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM prompt_version WHERE prompt_id = $1")
        .bind(uuid::Uuid::parse_str(&c2_id).unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    // versions are append-only
    assert!(
        sqlx::query("UPDATE prompt_version SET body = 'x'")
            .execute(&pool)
            .await
            .is_err()
    );

    // every change audited
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE organization_id = $1 AND action LIKE 'prompt.%' ORDER BY audit_log_id",
    )
    .bind(uuid::Uuid::parse_str(&org).unwrap())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "prompt.create",
            "prompt.update",
            "prompt.update",
            "prompt.update",
            "prompt.clone",
            "prompt.clone",
            "prompt.delete"
        ]
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn prompt_runs_go_through_the_gateway_billed_once(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = Gateway::start_with_env(
        &config(&mock),
        &[
            ("DATABASE_URL", &db_url(&pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
        ],
    )
    .await;
    let (org, keys) = tenant(&gw, "Run Ltda", &["a", "b"]).await;
    let key = keys[0].1.clone();
    let (revoked_id, revoked) = keys[1].clone();
    let (_, other) = tenant(&gw, "Outra Run", &["c"]).await;
    let other_key = other[0].1.clone();
    let org_uuid = uuid::Uuid::parse_str(&org).unwrap();

    let (s, p) = call(
        &gw,
        "POST",
        "/v1/me/prompts",
        &key,
        Some(json!({"name": "saudacao", "body": "Diga olá para {{nome}} de {{cidade}}"})),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let id = p["id"].as_str().unwrap().to_string();
    let run = format!("/v1/me/prompts/{id}/run");
    let values = json!({"nome": "Ana", "cidade": "Recife"});

    // ---------- refusals before the gateway
    let (s, v) = call(
        &gw,
        "POST",
        &run,
        &key,
        Some(json!({"api_key": key, "values": {"nome": "Ana"}, "model": "m"})),
    )
    .await;
    assert_eq!((s, code(&v)), (400, "missing_variables"), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("cidade"),
        "{v}"
    );
    let (s, v) = call(
        &gw,
        "POST",
        &run,
        &key,
        Some(json!({"api_key": key, "values": values})),
    )
    .await;
    assert_eq!((s, code(&v)), (400, "invalid_parameter"), "no model: {v}");
    let (s, v) = call(
        &gw,
        "POST",
        &run,
        &key,
        Some(json!({"values": values, "model": "m"})),
    )
    .await;
    assert_eq!((s, code(&v)), (400, "invalid_body"), "no api_key: {v}");
    let (s, v) = call(
        &gw,
        "POST",
        &run,
        &key,
        Some(json!({"api_key": other_key, "values": values, "model": "m"})),
    )
    .await;
    assert_eq!(
        (s, code(&v)),
        (401, "invalid_api_key"),
        "another organization's key: {v}"
    );
    let (s, _) = op(
        &gw,
        "POST",
        &format!("/admin/v1/keys/{revoked_id}/revoke"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = call(
        &gw,
        "POST",
        &run,
        &key,
        Some(json!({"api_key": revoked, "values": values, "model": "m"})),
    )
    .await;
    assert_eq!(
        (s, code(&v)),
        (401, "invalid_api_key"),
        "a revoked key: {v}"
    );
    let gone: i64 =
        sqlx::query_scalar("SELECT count(*) FROM usage_event WHERE organization_id = $1")
            .bind(org_uuid)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(gone, 0, "nothing reached the gateway");

    // ---------- zero balance: the gateway's 402
    let (s, v) = call(
        &gw,
        "POST",
        &run,
        &key,
        Some(json!({"api_key": key, "values": values, "model": "m"})),
    )
    .await;
    assert_eq!(s, 402, "{v}");
    assert_eq!(v["error"]["code"], "saldo_insuficiente", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Saldo insuficiente"),
        "{v}"
    );
    // the gateway's own answer to a chat, in English when asked
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("accept-language", "en-US,en;q=0.9")
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "oi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 402);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"],
        json!({"message": "Insufficient balance: top up your account (PIX) to continue",
               "type": "insufficient_quota", "param": null, "code": "saldo_insuficiente"})
    );

    // ---------- a top-up, then a run billed once with its session id
    let (s, e) = op(
        &gw,
        "POST",
        &format!("/admin/v1/organizations/{org}/ledger"),
        Some(json!({"kind": "topup", "amount_brl": "10.00"})),
    )
    .await;
    assert_eq!(s, 201, "{e}");
    let (s, v) = call(
        &gw,
        "PATCH",
        &format!("/v1/me/prompts/{id}"),
        &key,
        Some(json!({"default_model": "m"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let t0 = Instant::now();
    let out = loop {
        let (s, v) = call(
            &gw,
            "POST",
            &run,
            &key,
            Some(json!({"api_key": key, "values": values})),
        )
        .await;
        if s == 200 {
            break v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the top-up never reached the gateway: {s} {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let session = out["session_id"].as_str().unwrap().to_string();
    assert!(session.starts_with(&format!("prompt-{id}-")), "{out}");
    assert_eq!(out["prompt_version"], 1);
    assert!(out["choices"].is_array(), "the upstream's answer: {out}");
    // the mock saw the rendered body
    let t0 = Instant::now();
    let event: (String, i16, Option<i64>) = loop {
        let row: Option<(String, i16, Option<i64>)> = sqlx::query_as(
            "SELECT request_id, status, cost_billed_brl_micros FROM usage_event WHERE session_id = $1",
        )
        .bind(&session)
        .fetch_optional(&pool)
        .await
        .unwrap();
        if let Some(r) = row {
            break r;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no usage event for {session}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((event.1, event.2), (200, Some(50_000)), "R$ 0.05");
    let t0 = Instant::now();
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_entry WHERE request_id = $1")
            .bind(&event.0)
            .fetch_one(&pool)
            .await
            .unwrap();
        if n == 1 {
            break;
        }
        assert!(
            n == 0 && t0.elapsed() < Duration::from_secs(10),
            "{n} ledger entries"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (usage_entries, billed): (i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(-sum(amount_brl_micros), 0)::int8 FROM ledger_entry WHERE organization_id = $1 AND kind = 'usage'",
    )
    .bind(org_uuid)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((usage_entries, billed), (1, 50_000), "billed once");

    // ---------- a second run with an explicit model, then `runs` groups them
    let (s, out2) = call(&gw, "POST", &run, &key, Some(json!({"api_key": key, "values": values, "model": "m", "max_tokens": 50, "temperature": 0.1}))).await;
    assert_eq!(s, 200, "{out2}");
    let t0 = Instant::now();
    let runs = loop {
        let (s, v) = call(&gw, "GET", &format!("/v1/me/prompts/{id}/runs"), &key, None).await;
        assert_eq!(s, 200, "{v}");
        let ok = v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == 200)
            .count();
        if ok == 2 {
            break v;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let list = runs["runs"].as_array().unwrap();
    assert_eq!(
        list[0]["session_id"], out2["session_id"],
        "newest first: {runs}"
    );
    let first = list
        .iter()
        .find(|r| r["session_id"] == session.as_str())
        .unwrap();
    assert_eq!(first["request_count"], 1);
    assert_eq!(first["model"], "m");
    assert_eq!(first["total_billed_brl"], Micros(50_000).json_number());
    let (s, v) = call(
        &gw,
        "GET",
        &format!("/v1/me/prompts/{id}/runs?limit=1"),
        &key,
        None,
    )
    .await;
    assert_eq!((s, v["runs"].as_array().map(Vec::len)), (200, Some(1)));
    for bad in ["0", "101", "x"] {
        let (s, v) = call(
            &gw,
            "GET",
            &format!("/v1/me/prompts/{id}/runs?limit={bad}"),
            &key,
            None,
        )
        .await;
        assert_eq!(
            (s, code(&v)),
            (400, "invalid_parameter"),
            "limit={bad}: {v}"
        );
    }
}
