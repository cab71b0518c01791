//! The cross-tenant walk (#14): organization B's key calls every operation of the Tokia seed
//! (read from the seed itself, so a new operation is walked too), naming organization A's
//! webhook, delivery attempt, session, prompt and key wherever an operation takes an id.
//! Every path id of A's is a 404, no answer holds anything of A's, nothing answers 5xx, and
//! A's things are as they were afterwards.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::*;

const MASTER: &str = "tokia-tenants-master-key-0123456789";

fn config(mock: &Mock) -> String {
    format!(
        "webhooks: {{allow_loopback: true}}\npricing: {{fx_usd_brl: \"5.0\", default_markup: \"1.0\"}}\nproviders:\n  - {{name: a, base_url: \"{}\"}}\ndeployments:\n  - {{name: da, provider: a, model: up}}\nmodels:\n  - {{name: m, usd_per_request: \"0.01\", deployments: [da]}}\n",
        mock.base()
    )
}

/// What a is left with: its prompt's versions, its webhook's secret, its deliveries, its
/// pending refund, its alert, its key's status.
async fn snapshot(gw: &Gateway, pool: &PgPool, a: &Tenant, prompt: &str) -> Value {
    let (_, versions) = call(
        gw,
        "GET",
        &format!("/v1/me/prompts/{prompt}/versions"),
        Some(&a.key),
        None,
    )
    .await;
    let (_, refunds) = call(gw, "GET", "/v1/me/refunds", Some(&a.key), None).await;
    let (_, alerts) = call(gw, "GET", "/v1/me/alerts", Some(&a.key), None).await;
    let secret: Vec<u8> = sqlx::query_scalar(
        "SELECT w.secret_sealed FROM webhook w WHERE w.organization_id = $1::uuid",
    )
    .bind(&a.org)
    .fetch_one(pool)
    .await
    .unwrap();
    let deliveries: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_delivery")
        .fetch_one(pool)
        .await
        .unwrap();
    let keys: Vec<(String, bool)> = sqlx::query_as(
        "SELECT status, revoked_at IS NULL FROM api_key WHERE organization_id = $1::uuid ORDER BY api_key_id",
    )
    .bind(&a.org)
    .fetch_all(pool)
    .await
    .unwrap();
    json!({"versions": versions, "refunds": refunds, "alerts": alerts,
           "secret": hex::encode(secret), "deliveries": deliveries, "keys": format!("{keys:?}")})
}

#[sqlx::test(migrations = "./migrations")]
async fn another_organizations_ids_are_404_on_every_operation(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = Gateway::start_with_env(
        &config(&mock),
        &[
            ("DATABASE_URL", &db_url(&pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
            ("CATRACA_SECRET_KEY", &"3c".repeat(32)),
            ("CATRACA_WEBHOOK_POLL_MS", "3600000"),
        ],
    )
    .await;
    let a = Tenant::make(&gw, MASTER, "Alfa Segredo", Some("20.00")).await;
    let b = Tenant::make(&gw, MASTER, "Beta Curiosa", Some("20.00")).await;

    // a's things: a webhook with a delivered attempt, a session, a prompt, a refund, an alert
    let (s, hook) = call(
        &gw,
        "POST",
        "/admin/v1/webhooks",
        Some(MASTER),
        Some(
            json!({"organization_id": a.org, "url": "http://127.0.0.1:9/alfa-hook",
                    "events": ["usage_limit_reached"]}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{hook}");
    let hook = hook["id"].as_str().unwrap().to_string();
    let attempt: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO webhook_delivery (webhook_id, event, dedup_key, payload, status)
         VALUES ($1::uuid, 'usage_limit_reached', 'alfa', '{\"alfa\": \"segredo-do-payload\"}', 'delivered')
         RETURNING attempt_id",
    )
    .bind(&hook)
    .fetch_one(&pool)
    .await
    .unwrap();
    let session = "alfa-sessao-secreta";
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&a.key)
        .header("x-tokia-session-id", session)
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "oi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, p) = call(
        &gw,
        "POST",
        "/v1/me/prompts",
        Some(&a.key),
        Some(json!({"name": "alfa-prompt-secreto", "body": "Olá {{nome}}", "default_model": "m"})),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let prompt = p["id"].as_str().unwrap().to_string();
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/me/refunds",
        Some(&a.key),
        Some(json!({"amount_brl": "5.00", "reason": "alfa-motivo"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/me/alerts",
        Some(&a.key),
        Some(json!({"kind": "daily_spend_above", "threshold_brl": "1234.5", "channel": "email"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    // the session is stored before the walk
    let t0 = Instant::now();
    while call(
        &gw,
        "GET",
        &format!("/v1/me/sessions/{session}"),
        Some(&a.key),
        None,
    )
    .await
    .0 != 200
    {
        assert!(t0.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = snapshot(&gw, &pool, &a, &prompt).await;

    // anything of a's that must never reach b
    let marks = [
        a.org.clone(),
        a.user.clone(),
        a.email.clone(),
        a.key_id.clone(),
        a.key.clone(),
        hook.clone(),
        attempt.to_string(),
        session.to_string(),
        prompt.clone(),
        "alfa-prompt-secreto".into(),
        "segredo-do-payload".into(),
        "alfa-motivo".into(),
        "1234.5".into(),
        "Alfa Segredo".into(),
    ];
    let seed: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/contracts/tokia-openapi.yaml"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut walked = 0;
    for (path, ops) in seed["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let full = format!(
                "/v1{}",
                path.replace("/webhooks/{id}", &format!("/webhooks/{hook}"))
                    .replace("{attemptId}", &attempt.to_string())
                    .replace("/me/sessions/{id}", &format!("/me/sessions/{session}"))
                    .replace("/me/prompts/{id}", &format!("/me/prompts/{prompt}"))
            );
            let full = match path.as_str() {
                "/usage/by-key" => format!("{full}?key_id={}", a.key_id),
                _ => full,
            };
            let body = match (method.as_str(), path.as_str()) {
                ("POST", "/api-keys/bulk-revoke") => Some(json!({"ids": [a.key_id]})),
                ("PATCH", "/me/prompts/{id}") => Some(json!({"body": "mudado {{x}}"})),
                ("POST", "/me/prompts/{id}/run") => {
                    Some(json!({"api_key": b.key, "values": {"nome": "b"}}))
                }
                ("POST", "/chat/completions") => {
                    Some(json!({"model": "m", "messages": [{"role": "user", "content": "oi"}]}))
                }
                ("POST", "/audio/transcriptions") => None,
                ("POST" | "PATCH" | "PUT", _) => Some(json!({})),
                _ => None,
            };
            let (status, answer) = call(&gw, &method, &full, Some(&b.key), body).await;
            walked += 1;
            assert!(status < 500, "{method} {full}: {status} {answer}");
            if path.contains('{') || path == "/usage/by-key" {
                assert_eq!(status, 404, "{method} {full}: {answer}");
            }
            let text = answer.to_string();
            for m in &marks {
                assert!(
                    !text.contains(m.as_str()),
                    "{method} {full} shows {m:?}: {text}"
                );
            }
        }
    }
    assert_eq!(walked, 44);
    // the bulk revocation named a's key: not counted, and a's key still works
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/api-keys/bulk-revoke",
        Some(&b.key),
        Some(json!({"ids": [a.key_id]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["revoked"], 0, "{v}");
    assert_eq!(chat_status(&gw, &a.key, "m").await, 200);
    assert_eq!(
        snapshot(&gw, &pool, &a, &prompt).await,
        before,
        "a's things are as they were"
    );
}
