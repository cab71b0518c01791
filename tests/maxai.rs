//! The MaxAI contract through the gateway's port: auth, profile, keys, and a key created in the
//! dashboard working at the gateway at once and refused within a second of its revocation.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::{Gateway, Mock, call, db_url};

fn body(mock: &Mock) -> String {
    crate::common::single_model(mock, "gpt-4o-mini", "")
}

async fn start(pool: &PgPool, mock: &Mock) -> Gateway {
    Gateway::start_with_env(
        &body(mock),
        &[
            ("DATABASE_URL", &db_url(pool, None)),
            (
                "CATRACA_JWT_SECRET",
                "test-secret-test-secret-test-secret-123",
            ),
        ],
    )
    .await
}

async fn register(gw: &Gateway, email: &str) -> Value {
    let (s, v) = call(
        gw,
        "POST",
        "/api/auth/register",
        None,
        Some(json!({"email": email, "password": "senha-forte-1", "name": "Ana"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v
}

#[sqlx::test(migrations = "./migrations")]
async fn auth_register_login_profile_and_errors(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;

    let (s, v) = call(&gw, "GET", "/api/health", None, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "ok");
    assert!(v["uptime_seconds"].is_number());
    let (s, _) = call(&gw, "GET", "/api/realtime/health", None, None).await;
    assert_eq!(s, 200);

    let v = register(&gw, "ana@example.com").await;
    assert!(
        v["access_token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );
    assert!(v["refresh_token"].is_string());
    assert_eq!(v["customer"]["email"], "ana@example.com");

    // validation errors: MaxAI's {"error", "details"} with 400
    for bad in [
        json!({"email": "ana@example.com", "password": "senha-forte-1", "name": "Ana"}),
        json!({"email": "not-an-email", "password": "senha-forte-1", "name": "Ana"}),
        json!({"email": "b@example.com", "password": "short", "name": "Ana"}),
        json!({"email": "b@example.com", "password": "senha-forte-1"}),
    ] {
        let (s, v) = call(&gw, "POST", "/api/auth/register", None, Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert_eq!(v["error"], "validation_error");
        assert!(v["details"].is_string());
    }
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM app_user")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"));

    let (s, v) = call(
        &gw,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"email": "ANA@example.com", "password": "senha-forte-1"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let token = v["access_token"].as_str().unwrap().to_string();
    let (s, v) = call(
        &gw,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"email": "ana@example.com", "password": "wrong-password"})),
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (401, Some("invalid_credentials")));
    let (s, _) = call(
        &gw,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"email": "nobody@example.com", "password": "wrong-password"})),
    )
    .await;
    assert_eq!(s, 401);

    let (s, v) = call(&gw, "GET", "/api/customer/profile", Some(&token), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["name"], "Ana");
    let (s, _) = call(&gw, "GET", "/api/customer/profile", None, None).await;
    assert_eq!(s, 401);
    let (s, _) = call(
        &gw,
        "GET",
        "/api/customer/profile",
        Some("forged.jwt.token"),
        None,
    )
    .await;
    assert_eq!(s, 401);
    let (s, v) = call(
        &gw,
        "PUT",
        "/api/customer/profile",
        Some(&token),
        Some(json!({"name": "Ana Souza", "company": "Tokia"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["name"].as_str(), v["company"].as_str()),
        (Some("Ana Souza"), Some("Tokia"))
    );
    let (s, _) = call(
        &gw,
        "PUT",
        "/api/customer/profile",
        Some(&token),
        Some(json!({"name": ""})),
    )
    .await;
    assert_eq!(s, 400);
}

#[sqlx::test(migrations = "./migrations")]
async fn refresh_rotates_and_reuse_revokes_the_family(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let v = register(&gw, "rot@example.com").await;
    let r1 = v["refresh_token"].as_str().unwrap().to_string();

    // the contract sends the refresh token as the Bearer token
    let (s, v) = call(&gw, "POST", "/api/auth/refresh", Some(&r1), None).await;
    assert_eq!(s, 200, "{v}");
    let r2 = v["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    let (s, v) = call(
        &gw,
        "GET",
        "/api/customer/profile",
        v["access_token"].as_str(),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // r1 again: reuse → refused, and r2 (same family) is dead too
    let (s, _) = call(&gw, "POST", "/api/auth/refresh", Some(&r1), None).await;
    assert_eq!(s, 401);
    let (s, _) = call(
        &gw,
        "POST",
        "/api/auth/refresh",
        None,
        Some(json!({"refresh_token": r2})),
    )
    .await;
    assert_eq!(s, 401, "a token of a revoked family must not refresh");
    // a fresh login is a new family and works
    let (_, v) = call(
        &gw,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"email": "rot@example.com", "password": "senha-forte-1"})),
    )
    .await;
    let (s, _) = call(
        &gw,
        "POST",
        "/api/auth/refresh",
        v["refresh_token"].as_str(),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(&gw, "POST", "/api/auth/refresh", Some("made-up"), None).await;
    assert_eq!(s, 401);
}

#[sqlx::test(migrations = "./migrations")]
async fn dashboard_key_works_at_gateway_and_revocation_is_seen_within_a_second(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let v = register(&gw, "keys@example.com").await;
    let token = v["access_token"].as_str().unwrap().to_string();

    let (s, k) = call(
        &gw,
        "POST",
        "/api/keys",
        Some(&token),
        Some(json!({"name": "prod", "rate_limit_rpm": 60, "rate_limit_rpd": 0, "budget": 10.5})),
    )
    .await;
    assert_eq!(s, 201, "{k}");
    let key = k["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("maxai-"));
    assert_eq!(k["key_prefix"], &key[..12]);
    assert!(k["id"].is_i64());
    assert_eq!(
        (k["rate_limit_rpm"].as_i64(), k["rate_limit_rpd"].as_i64()),
        (Some(60), Some(0))
    );
    assert_eq!(k["budget"], 10.5);
    assert_eq!(k["status"], "active");
    let micros: Option<i64> = sqlx::query_scalar("SELECT budget_usd_micros FROM api_key")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(micros, Some(10_500_000), "budget stored exactly");

    // usable at the gateway at once
    let gw_ref = &gw;
    let chat =
        |key: String| async move { crate::common::chat_status(gw_ref, &key, "gpt-4o-mini").await };

    assert_eq!(chat(key.clone()).await, 200);

    let (s, list) = call(&gw, "GET", "/api/keys", Some(&token), None).await;
    assert_eq!(s, 200);
    assert_eq!(list["keys"].as_array().unwrap().len(), 1);
    assert!(
        list["keys"][0].get("key").is_none(),
        "plaintext is shown only once"
    );

    // bad input changes nothing
    for bad in [
        json!({"name": ""}),
        json!({"name": "x", "budget": -1}),
        json!({"name": "x", "rate_limit_rpm": -5}),
        json!({"nome": "x"}),
    ] {
        let (s, v) = call(&gw, "POST", "/api/keys", Some(&token), Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM api_key")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);

    // another customer sees none of it and cannot revoke it
    let other = register(&gw, "other@example.com").await;
    let ot = other["access_token"].as_str().unwrap();
    let (_, l) = call(&gw, "GET", "/api/keys", Some(ot), None).await;
    assert_eq!(l["keys"], json!([]));
    let id = k["id"].as_i64().unwrap();
    let (s, _) = call(&gw, "DELETE", &format!("/api/keys/{id}"), Some(ot), None).await;
    assert_eq!(s, 404);
    assert_eq!(chat(key.clone()).await, 200);

    // revoke: refused at the gateway within one second
    let t0 = Instant::now();
    let (s, v) = call(
        &gw,
        "DELETE",
        &format!("/api/keys/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    loop {
        if chat(key.clone()).await == 401 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "revoked key still accepted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (s, _) = call(
        &gw,
        "DELETE",
        &format!("/api/keys/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = call(&gw, "DELETE", "/api/keys/abc", Some(&token), None).await;
    assert_eq!(s, 400);
}

#[sqlx::test(migrations = "./migrations")]
async fn usage_and_model_metrics_come_from_real_gateway_traffic(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let v = register(&gw, "use@example.com").await;
    let token = v["access_token"].as_str().unwrap().to_string();
    let (_, k) = call(
        &gw,
        "POST",
        "/api/keys",
        Some(&token),
        Some(json!({"name": "k"})),
    )
    .await;
    let key = k["key"].as_str().unwrap().to_string();

    let send = |model: &'static str, stream: bool| {
        let url = gw.url("/v1/chat/completions");
        let key = key.clone();
        async move {
            let r = reqwest::Client::new().post(url).bearer_auth(key)
                .header("content-type", "application/json")
                .body(json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "oi"}]}).to_string())
                .send().await.unwrap();
            let s = r.status().as_u16();
            let _ = r.text().await;
            s
        }
    };
    for _ in 0..3 {
        assert_eq!(send("gpt-4o-mini", false).await, 200);
    }
    assert_eq!(send("gpt-4o-mini", true).await, 200);
    assert_eq!(send("no-such-model", false).await, 404);

    // the writer batches; wait for the five rows
    let deadline = Instant::now() + Duration::from_secs(10);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM usage_event")
        .fetch_one(&pool)
        .await
        .unwrap()
        < 5
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (s, st) = call(&gw, "GET", "/api/usage/stats?days=7", Some(&token), None).await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["total_requests"], 5);
    assert_eq!(st["successful_requests"], 4);
    assert_eq!(st["failed_requests"], 1);
    assert_eq!(st["tokens_in"], 4 * 5);
    assert_eq!(st["tokens_out"], 4 * 4);
    assert_eq!(st["daily"].as_array().unwrap().len(), 1);
    assert_eq!(st["by_model"][0]["model"], "gpt-4o-mini");
    assert_eq!(st["by_model"][0]["requests"], 4);

    let (s, r) = call(
        &gw,
        "GET",
        "/api/usage/recent?page=1&per_page=2",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["total"].as_i64(), r["pages"].as_i64()),
        (Some(5), Some(3))
    );
    assert_eq!(r["logs"].as_array().unwrap().len(), 2);
    assert_eq!(r["logs"][0]["key_prefix"], &key[..12]);
    let (_, r3) = call(
        &gw,
        "GET",
        "/api/usage/recent?page=3&per_page=2",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(r3["logs"].as_array().unwrap().len(), 1);

    // another customer sees no usage
    let other = register(&gw, "nouse@example.com").await;
    let (_, st) = call(
        &gw,
        "GET",
        "/api/usage/stats",
        other["access_token"].as_str(),
        None,
    )
    .await;
    assert_eq!(st["total_requests"], 0);

    for bad in [
        "/api/usage/stats?days=0",
        "/api/usage/stats?days=abc",
        "/api/usage/recent?per_page=0",
    ] {
        let (s, _) = call(&gw, "GET", bad, Some(&token), None).await;
        assert_eq!(s, 400, "{bad}");
    }
    let (s, _) = call(&gw, "GET", "/api/usage/stats", None, None).await;
    assert_eq!(s, 401);

    let (s, m) = call(&gw, "GET", "/api/models", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(m["models"][0]["id"], "gpt-4o-mini");

    let (s, m) = call(&gw, "GET", "/api/models/metrics?window=1h", None, None).await;
    assert_eq!(s, 200, "{m}");
    let gm = &m["models"][0];
    assert_eq!(
        (
            gm["model"].as_str(),
            gm["requests"].as_i64(),
            gm["success"].as_i64()
        ),
        (Some("gpt-4o-mini"), Some(4), Some(4))
    );
    assert_eq!(gm["tokens_in"], 20);
    let (s, l) = call(
        &gw,
        "GET",
        "/api/models/leaderboards?window=24h&top=3",
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{l}");
    assert_eq!(l["by_volume"][0]["model"], "gpt-4o-mini");
    assert_eq!(l["by_volume"][0]["value"], 4);
    let (s, _) = call(&gw, "GET", "/api/models/metrics?window=2h", None, None).await;
    assert_eq!(s, 400);
}

#[sqlx::test(migrations = "./migrations")]
async fn templates_list_render_and_run_through_the_gateway(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let v = register(&gw, "tpl@example.com").await;
    let token = v["access_token"].as_str().unwrap().to_string();
    let (_, k) = call(
        &gw,
        "POST",
        "/api/keys",
        Some(&token),
        Some(json!({"name": "k"})),
    )
    .await;
    let key = k["key"].as_str().unwrap().to_string();

    let (s, l) = call(&gw, "GET", "/api/templates", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(l["count"], 3);
    let resumo = l["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == "resumo")
        .unwrap()
        .clone();
    assert_eq!(resumo["is_builtin"], true);
    let id = resumo["id"].as_i64().unwrap();

    let (s, t) = call(&gw, "GET", &format!("/api/templates/{id}"), None, None).await;
    assert_eq!((s, t["slug"].as_str()), (200, Some("resumo")));
    let (s, _) = call(&gw, "GET", "/api/templates/999999", None, None).await;
    assert_eq!(s, 404);

    let (s, r) = call(
        &gw,
        "POST",
        &format!("/api/templates/{id}/render"),
        None,
        Some(json!({"variables": {"texto": "A catraca controla a entrada."}})),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["model"], "gpt-4o-mini");
    assert_eq!(
        r["messages"][1]["content"],
        "Resuma em 3 frases:\n\nA catraca controla a entrada."
    );
    let (s, e) = call(
        &gw,
        "POST",
        &format!("/api/templates/{id}/render"),
        None,
        Some(json!({"variables": {}})),
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("missing_variable")),
        "{e}"
    );

    // run: rendered, sent to the gateway with the caller's key, metered like any request
    let (s, out) = call(
        &gw,
        "POST",
        &format!("/api/templates/{id}/run"),
        Some(&token),
        Some(json!({"api_key": key, "variables": {"texto": "Olá"}})),
    )
    .await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["output"], "Olá do mock da");
    assert_eq!(
        mock.stats().await["last_body"]["temperature"],
        0.3,
        "template parameters are sent"
    );
    let (_, t) = call(&gw, "GET", &format!("/api/templates/{id}"), None, None).await;
    assert_eq!(t["runs"], 1);
    // a bad key: the gateway's 401 reaches the caller
    let (s, _) = call(
        &gw,
        "POST",
        &format!("/api/templates/{id}/run"),
        Some(&token),
        Some(json!({"api_key": "maxai-wrong", "variables": {"texto": "Olá"}})),
    )
    .await;
    assert_eq!(s, 401);
    let (s, _) = call(
        &gw,
        "POST",
        &format!("/api/templates/{id}/run"),
        None,
        Some(json!({"api_key": key, "variables": {"texto": "Olá"}})),
    )
    .await;
    assert_eq!(s, 401, "run needs a logged-in customer");
    let (s, _) = call(
        &gw,
        "POST",
        &format!("/api/templates/{id}/run"),
        Some(&token),
        Some(json!({"variables": {}})),
    )
    .await;
    assert_eq!(s, 400);
}

#[sqlx::test(migrations = "./migrations")]
async fn logout_ends_the_session_and_me_answers(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let v = register(&gw, "out@example.com").await;
    let (access, refresh) = (
        v["access_token"].as_str().unwrap(),
        v["refresh_token"].as_str().unwrap(),
    );
    let (s, me) = call(&gw, "GET", "/api/auth/me", Some(access), None).await;
    assert_eq!((s, me["email"].as_str()), (200, Some("out@example.com")));
    let (s, _) = call(
        &gw,
        "POST",
        "/api/auth/logout",
        None,
        Some(json!({"refresh_token": refresh})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(&gw, "POST", "/api/auth/refresh", Some(refresh), None).await;
    assert_eq!(s, 401, "a logged-out refresh token must not refresh");
}

#[sqlx::test(migrations = "./migrations")]
async fn key_rate_limit_rpm_is_enforced_by_the_gateway(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let v = register(&gw, "rpm@example.com").await;
    let token = v["access_token"].as_str().unwrap().to_string();
    let (_, k) = call(
        &gw,
        "POST",
        "/api/keys",
        Some(&token),
        Some(json!({"name": "k", "rate_limit_rpm": 2})),
    )
    .await;
    let key = k["key"].as_str().unwrap().to_string();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(json!({"model": "gpt-4o-mini", "messages": []}).to_string())
            .send()
            .await
            .unwrap();
        statuses.push((
            r.status().as_u16(),
            r.headers()
                .get("x-ratelimit-remaining")
                .map(|v| v.to_str().unwrap().to_string()),
        ));
    }
    // unless a minute boundary fell between the calls, the third is refused
    if statuses[1].1.as_deref() == Some("0") {
        assert_eq!(statuses[2].0, 429, "{statuses:?}");
    }
    assert_eq!(statuses[0], (200, Some("1".to_string())));
}

#[sqlx::test(migrations = "./migrations")]
async fn hostile_input_is_a_validation_error_and_changes_nothing(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let v = register(&gw, "bia@example.com").await;
    let token = v["access_token"].as_str().unwrap().to_string();
    // NUL in a string field (PostgreSQL cannot store it): 400, nothing changed
    for body in [
        json!({"email": "x@example.com", "password": "senha-forte-1", "name": "a\u{0}b"}),
        json!({"email": "x\u{0}@example.com", "password": "senha-forte-1", "name": "X"}),
    ] {
        let (s, v) = call(&gw, "POST", "/api/auth/register", None, Some(body)).await;
        assert_eq!(s, 400, "{v}");
        assert_eq!(v["error"], "validation_error");
    }
    let (s, v) = call(
        &gw,
        "PUT",
        "/api/customer/profile",
        Some(&token),
        Some(json!({"company": "a\u{0}"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/keys",
        Some(&token),
        Some(json!({"name": "k\u{0}"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = call(
        &gw,
        "GET",
        "/api/usage/recent?page=1%00",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, 400, "{v}");
    // absurd paging: 400, not a negative OFFSET in the database
    for q in [
        "page=4611686018427387904",
        "page=9223372036854775807&per_page=500",
        "page=0",
        "per_page=501",
    ] {
        let (s, v) = call(
            &gw,
            "GET",
            &format!("/api/usage/recent?{q}"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(s, 400, "{q}: {v}");
        assert_eq!(v["error"], "validation_error");
    }
    // every string field has a cap
    let (s, v) = call(
        &gw,
        "PUT",
        "/api/customer/profile",
        Some(&token),
        Some(json!({"phone": "9".repeat(33)})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = call(
        &gw,
        "PUT",
        "/api/customer/profile",
        Some(&token),
        Some(json!({"company": "c".repeat(201)})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/auth/register",
        None,
        Some(json!({"email": "long@example.com", "password": "p".repeat(257), "name": "X"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    // nothing of it was stored
    let (s, v) = call(&gw, "GET", "/api/customer/profile", Some(&token), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        (v["company"].clone(), v["phone"].clone()),
        (Value::Null, Value::Null)
    );
    let (s, v) = call(&gw, "GET", "/api/keys", Some(&token), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["keys"].as_array().map(Vec::len), Some(0));
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM app_user")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 1);
}

#[sqlx::test(migrations = "./migrations")]
async fn the_model_catalog_follows_a_config_reload(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let names = |v: &Value| -> Vec<String> {
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, v) = call(&gw, "GET", "/api/models", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(names(&v), vec!["gpt-4o-mini"]);
    // a model added to the file: routed and listed without a restart
    let text = std::fs::read_to_string(&gw.config_path).unwrap().replace(
        "  - {name: gpt-4o-mini, deployments: [d]}",
        "  - {name: gpt-4o-mini, deployments: [d]}\n  - {name: novo-modelo, deployments: [d], input_usd_per_1m: \"1.25\"}",
    );
    let tmp = gw.config_path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &gw.config_path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = call(&gw, "GET", "/api/models", None, None).await;
        if names(&v).contains(&"novo-modelo".to_string()) {
            let m = v["models"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["id"] == "novo-modelo")
                .unwrap()
                .clone();
            assert_eq!(m["pricing"]["input_per_1m"], 1.25);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "catalog not synced after reload: {v}\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn failed_logins_are_throttled_per_account_and_per_address(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    register(&gw, "ana@example.com").await;
    let login = |email: &'static str, password: &'static str| {
        let gw = &gw;
        async move {
            let r = reqwest::Client::new()
                .post(gw.url("/api/auth/login"))
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            (r.status().as_u16(), retry)
        }
    };
    // ten wrong passwords, then even the right one waits; an unknown email the same way
    for email in ["ana@example.com", "ninguem@example.com"] {
        for _ in 0..10 {
            assert_eq!(login(email, "errada-123").await.0, 401);
        }
        let (s, retry) = login(email, "senha-forte-1").await;
        assert_eq!(s, 429, "{email}");
        assert!(retry.is_some_and(|r| (1..=900).contains(&r)), "{retry:?}");
    }
    // another account from the same address is still fine (its own count, under the IP's)
    register(&gw, "bia@example.com").await;
    assert_eq!(login("bia@example.com", "senha-forte-1").await.0, 200);
    // the window ends: allowed again, and a success clears the count
    sqlx::query("UPDATE login_throttle SET window_start = now() - interval '16 minutes' WHERE key = 'acct:ana@example.com'")
        .execute(&pool).await.unwrap();
    assert_eq!(login("ana@example.com", "senha-forte-1").await.0, 200);
    // a hundred failures from one address throttle every account from it, SabIA's login too
    sqlx::query("INSERT INTO login_throttle (key, failures, window_start) VALUES ('ip:127.0.0.1', 100, now())
                 ON CONFLICT (key) DO UPDATE SET failures = 100, window_start = now()")
        .execute(&pool).await.unwrap();
    assert_eq!(login("bia@example.com", "senha-forte-1").await.0, 429);
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({"email": "bia@example.com", "password": "senha-forte-1"})),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (429, Some("TOO_MANY_REQUESTS")),
        "{v}"
    );
    // the client cannot choose its address
    let r = reqwest::Client::new()
        .post(gw.url("/api/auth/login"))
        .header("x-catraca-client-ip", "10.9.8.7")
        .json(&json!({"email": "bia@example.com", "password": "senha-forte-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        429,
        "a spoofed x-catraca-client-ip escaped the throttle"
    );
}
