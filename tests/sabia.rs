//! The SabIA Labs contract through the gateway's port: envelope, error codes, statuses.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::{Gateway, Mock, call, db_url};

async fn start(pool: &PgPool, mock: &Mock) -> Gateway {
    Gateway::start_with_env(
        &crate::common::single_model(mock, "gpt-4o-mini", ""),
        &[
            ("DATABASE_URL", &db_url(pool, None)),
            (
                "CATRACA_JWT_SECRET",
                "sabia-secret-sabia-secret-sabia-secret",
            ),
        ],
    )
    .await
}

fn assert_error(v: &Value, code: &str) {
    assert_eq!(v["success"], false, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"]["message"].is_string());
}

async fn register(gw: &Gateway, email: &str) -> String {
    let (s, v) = call(gw, "POST", "/v1/auth/register", None,
        Some(json!({"name": "João Silva", "email": email, "password": "senha-forte-1", "phone": "(11) 99999-9999", "company": "Exemplo"}))).await;
    assert_eq!(s, 201, "{v}");
    v["data"]["token"].as_str().unwrap().to_string()
}

async fn outbox_token(pool: &PgPool, to: &str, subject: &str) -> String {
    let body: String = sqlx::query_scalar("SELECT body FROM outbox_email WHERE to_address = $1 AND subject = $2 ORDER BY outbox_email_id DESC LIMIT 1")
        .bind(to).bind(subject).fetch_one(pool).await.unwrap();
    body.rsplit(' ').next().unwrap().to_string()
}

#[sqlx::test(migrations = "./migrations")]
async fn auth_flows(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;

    let (s, v) = call(&gw, "POST", "/v1/auth/register", None,
        Some(json!({"name": "João Silva", "email": "joao@exemplo.com", "password": "senha-forte-1", "phone": "(11) 99999-9999", "company": "Exemplo"}))).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["success"], true);
    assert_eq!(v["message"], "Usuário criado com sucesso");
    let u = &v["data"]["user"];
    assert_eq!(
        (
            u["name"].as_str(),
            u["phone"].as_str(),
            u["company"].as_str()
        ),
        (Some("João Silva"), Some("(11) 99999-9999"), Some("Exemplo"))
    );
    assert_eq!(u["emailVerified"], false);
    assert!(u["createdAt"].is_string());

    let (s, v) = call(
        &gw,
        "POST",
        "/v1/auth/register",
        None,
        Some(json!({"name": "Outro", "email": "JOAO@exemplo.com", "password": "senha-forte-1"})),
    )
    .await;
    assert_eq!(s, 409);
    assert_error(&v, "EMAIL_ALREADY_EXISTS");
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/auth/register",
        None,
        Some(json!({"name": "X", "password": "senha-forte-1"})),
    )
    .await;
    assert_eq!(s, 400);
    assert_error(&v, "VALIDATION_ERROR");
    assert_eq!(v["error"]["details"][0]["field"], "email");

    // a NUL in any string is the contract's validation error, never a 500, and stores nothing
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/auth/register",
        None,
        Some(json!({"name": "Nul\u{0}l", "email": "nul@exemplo.com", "password": "senha-forte-1"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_error(&v, "VALIDATION_ERROR");
    let (s, _) = call(
        &gw,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({"email": "nul@exemplo.com", "password": "senha-forte-1"})),
    )
    .await;
    assert_eq!(s, 401, "nothing was created");

    // email verification: single use
    let t = outbox_token(&pool, "joao@exemplo.com", "Verifique seu email").await;
    let (s, _) = call(
        &gw,
        "POST",
        "/v1/auth/verify-email",
        None,
        Some(json!({"token": t})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/auth/verify-email",
        None,
        Some(json!({"token": t})),
    )
    .await;
    assert_eq!(s, 400);
    assert_error(&v, "VALIDATION_ERROR");

    let (s, v) = call(
        &gw,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({"email": "joao@exemplo.com", "password": "senha-forte-1"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"], "Login realizado com sucesso");
    assert_eq!(v["data"]["expiresIn"], 86400);
    let before_reset = v["data"]["token"].as_str().unwrap().to_string();
    let (s, _) = call(&gw, "GET", "/v1/teams", Some(&before_reset), None).await;
    assert_eq!(s, 200);
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({"email": "joao@exemplo.com", "password": "errada-123"})),
    )
    .await;
    assert_eq!(s, 401);
    assert_error(&v, "INVALID_CREDENTIALS");

    // forgot: the same answer for known and unknown emails; a mail only for the known one
    let (s1, v1) = call(
        &gw,
        "POST",
        "/v1/auth/forgot-password",
        None,
        Some(json!({"email": "joao@exemplo.com"})),
    )
    .await;
    let (s2, v2) = call(
        &gw,
        "POST",
        "/v1/auth/forgot-password",
        None,
        Some(json!({"email": "ninguem@exemplo.com"})),
    )
    .await;
    assert_eq!((s1, &v1), (s2, &v2));
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_email WHERE subject = 'Recuperação de senha'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(n, 1);
    let t = outbox_token(&pool, "joao@exemplo.com", "Recuperação de senha").await;
    let (s, _) = call(
        &gw,
        "POST",
        "/v1/auth/reset-password",
        None,
        Some(json!({"token": t, "newPassword": "curta"})),
    )
    .await;
    assert_eq!(
        s, 400,
        "a short password changes nothing and keeps the token"
    );
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/auth/reset-password",
        None,
        Some(json!({"token": t, "newPassword": "nova-senha-123"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"], "Senha redefinida com sucesso");
    // the reset ends the sessions issued before it at once, not when their 24 h run out
    let (s, v) = call(&gw, "GET", "/v1/teams", Some(&before_reset), None).await;
    assert_eq!(s, 401, "{v}");
    assert_error(&v, "UNAUTHORIZED");
    let (s, _) = call(
        &gw,
        "POST",
        "/v1/auth/reset-password",
        None,
        Some(json!({"token": t, "newPassword": "outra-senha-123"})),
    )
    .await;
    assert_eq!(s, 400, "reset tokens are single use");
    let (s, _) = call(
        &gw,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({"email": "joao@exemplo.com", "password": "senha-forte-1"})),
    )
    .await;
    assert_eq!(s, 401);
    let (s, _) = call(
        &gw,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({"email": "joao@exemplo.com", "password": "nova-senha-123"})),
    )
    .await;
    assert_eq!(s, 200);

    // an expired reset token is refused
    call(
        &gw,
        "POST",
        "/v1/auth/forgot-password",
        None,
        Some(json!({"email": "joao@exemplo.com"})),
    )
    .await;
    let t = outbox_token(&pool, "joao@exemplo.com", "Recuperação de senha").await;
    sqlx::query(
        "UPDATE one_time_token SET expires_at = now() - interval '1 second' WHERE used_at IS NULL",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (s, _) = call(
        &gw,
        "POST",
        "/v1/auth/reset-password",
        None,
        Some(json!({"token": t, "newPassword": "mais-uma-senha-1"})),
    )
    .await;
    assert_eq!(s, 400);
}

#[sqlx::test(migrations = "./migrations")]
async fn teams_members_plans_and_billing(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let ta = register(&gw, "admin@exemplo.com").await;
    let tb = register(&gw, "membro@exemplo.com").await;

    let (s, v) = call(&gw, "GET", "/v1/plans", None, None).await;
    assert_eq!(s, 200);
    let plans = v["data"].as_array().unwrap();
    assert_eq!(plans.len(), 4);
    assert_eq!(
        (plans[0]["name"].as_str(), plans[0]["price"].as_str()),
        (Some("Sandbox"), Some("Gratuito"))
    );
    assert_eq!(
        (
            plans[1]["price"].as_str(),
            plans[1]["annualPrice"].as_str(),
            plans[1]["popular"].as_bool()
        ),
        (Some("R$ 99"), Some("R$ 990"), Some(true))
    );
    assert_eq!(plans[1]["features"][1]["text"], "Rate limit: 10 req/s");

    let (s, v) = call(
        &gw,
        "POST",
        "/v1/teams",
        Some(&ta),
        Some(json!({"name": "Time Dev", "plan": "starter"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (v["data"]["plan"].as_str(), v["data"]["role"].as_str()),
        (Some("starter"), Some("admin"))
    );
    let team = v["data"]["id"].as_str().unwrap().to_string();
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/teams",
        Some(&ta),
        Some(json!({"name": "X", "plan": "gold"})),
    )
    .await;
    assert_eq!(s, 400);
    assert_error(&v, "VALIDATION_ERROR");

    let (_, v) = call(&gw, "GET", "/v1/teams", Some(&ta), None).await;
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Time Dev"), "{v}");

    // b is not a member: the team does not exist for b
    let (s, v) = call(&gw, "GET", &format!("/v1/teams/{team}"), Some(&tb), None).await;
    assert_eq!(s, 404);
    assert_error(&v, "TEAM_NOT_FOUND");

    let (s, v) = call(
        &gw,
        "POST",
        &format!("/v1/teams/{team}/members"),
        Some(&ta),
        Some(json!({"email": "membro@exemplo.com", "role": "member"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let member_id = v["data"]["id"].as_str().unwrap().to_string();
    let (s, v) = call(
        &gw,
        "POST",
        &format!("/v1/teams/{team}/members"),
        Some(&ta),
        Some(json!({"email": "nao-existe@exemplo.com"})),
    )
    .await;
    assert_eq!(s, 404);
    assert_error(&v, "USER_NOT_FOUND");
    // a member may read but not manage
    let (s, v) = call(&gw, "GET", &format!("/v1/teams/{team}"), Some(&tb), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["data"]["plan"]["name"], "Starter");
    assert_eq!(v["data"]["members"].as_array().unwrap().len(), 2);
    let (s, v) = call(
        &gw,
        "POST",
        &format!("/v1/teams/{team}/members"),
        Some(&tb),
        Some(json!({"email": "admin@exemplo.com"})),
    )
    .await;
    assert_eq!(s, 403);
    assert_error(&v, "INSUFFICIENT_PERMISSIONS");
    let (s, _) = call(
        &gw,
        "PUT",
        &format!("/v1/teams/{team}/plan"),
        Some(&tb),
        Some(json!({"plan": "pro"})),
    )
    .await;
    assert_eq!(s, 403);

    let (s, v) = call(
        &gw,
        "PUT",
        &format!("/v1/teams/{team}/plan"),
        Some(&ta),
        Some(json!({"plan": "pro", "billingCycle": "monthly"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["data"]["oldPlan"].as_str(), v["data"]["newPlan"].as_str()),
        (Some("starter"), Some("pro"))
    );
    let (s, v) = call(
        &gw,
        "GET",
        &format!("/v1/teams/{team}/billing"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["data"]["currentPlan"].as_str(),
            v["data"]["amount"].as_f64(),
            v["data"]["currency"].as_str()
        ),
        (Some("pro"), Some(499.0), Some("BRL"))
    );
    assert_eq!(
        (
            v["data"]["usage"]["current"].as_i64(),
            v["data"]["usage"]["limit"].as_i64()
        ),
        (Some(0), Some(50000))
    );

    let (s, _) = call(
        &gw,
        "DELETE",
        &format!("/v1/teams/{team}/members/{member_id}"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(&gw, "GET", &format!("/v1/teams/{team}"), Some(&tb), None).await;
    assert_eq!(s, 404, "a removed member loses access at once");
    let (s, _) = call(&gw, "GET", "/v1/teams", None, None).await;
    assert_eq!(s, 401);
}

#[sqlx::test(migrations = "./migrations")]
async fn team_keys_lifecycle_at_the_gateway(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let ta = register(&gw, "dono@exemplo.com").await;
    let (_, v) = call(
        &gw,
        "POST",
        "/v1/teams",
        Some(&ta),
        Some(json!({"name": "Time", "plan": "starter"})),
    )
    .await;
    let team = v["data"]["id"].as_str().unwrap().to_string();

    let (s, v) = call(
        &gw,
        "POST",
        &format!("/v1/teams/{team}/api-keys"),
        Some(&ta),
        Some(json!({"name": "API Key Mobile", "description": "Chave para aplicações móveis"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["message"], "API Key criada com sucesso");
    let key = v["data"]["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk-") && key.len() == 35);
    assert_eq!(
        (
            v["data"]["status"].as_str(),
            v["data"]["lastUsed"].is_null()
        ),
        (Some("active"), true)
    );
    let id = v["data"]["id"].as_i64().unwrap();

    let gw_ref = &gw;
    let chat =
        |key: String| async move { crate::common::chat_status(gw_ref, &key, "gpt-4o-mini").await };

    assert_eq!(chat(key.clone()).await, 200);

    let (_, v) = call(
        &gw,
        "GET",
        &format!("/v1/teams/{team}/api-keys"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(
        v["data"][0]["key"],
        format!("{}...", &key[..7]),
        "lists show only the prefix"
    );

    let (s, v) = call(
        &gw,
        "PUT",
        &format!("/v1/teams/{team}/api-keys/{id}"),
        Some(&ta),
        Some(json!({"name": "API Key Mobile Atualizada"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["data"]["name"].as_str(),
            v["data"]["description"].as_str()
        ),
        (
            Some("API Key Mobile Atualizada"),
            Some("Chave para aplicações móveis")
        )
    );

    // inactive → refused within a second; active again → accepted
    let t0 = Instant::now();
    let (s, v) = call(
        &gw,
        "PATCH",
        &format!("/v1/teams/{team}/api-keys/{id}/status"),
        Some(&ta),
        Some(json!({"status": "inactive"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    while chat(key.clone()).await != 401 {
        assert!(t0.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    call(
        &gw,
        "PATCH",
        &format!("/v1/teams/{team}/api-keys/{id}/status"),
        Some(&ta),
        Some(json!({"status": "active"})),
    )
    .await;
    let t0 = Instant::now();
    while chat(key.clone()).await != 200 {
        assert!(t0.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (s, v) = call(
        &gw,
        "PATCH",
        &format!("/v1/teams/{team}/api-keys/{id}/status"),
        Some(&ta),
        Some(json!({"status": "paused"})),
    )
    .await;
    assert_eq!(s, 400);
    assert_error(&v, "VALIDATION_ERROR");
    let (s, v) = call(
        &gw,
        "PATCH",
        &format!("/v1/teams/{team}/api-keys/{id}/status"),
        Some(&ta),
        Some(json!({"status": "revoked"})),
    )
    .await;
    assert_eq!((s, v["data"]["status"].as_str()), (200, Some("revoked")));
    let t0 = Instant::now();
    while chat(key.clone()).await != 401 {
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "revoked key still served"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // "ativa ou desativa": a revoked key can be activated again, and it works at once
    let (s, v) = call(
        &gw,
        "PATCH",
        &format!("/v1/teams/{team}/api-keys/{id}/status"),
        Some(&ta),
        Some(json!({"status": "active"})),
    )
    .await;
    assert_eq!(
        (s, v["data"]["status"].as_str()),
        (200, Some("active")),
        "{v}"
    );
    let t0 = Instant::now();
    while chat(key.clone()).await != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "re-activated key still refused"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let (s, _) = call(
        &gw,
        "DELETE",
        &format!("/v1/teams/{team}/api-keys/{id}"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = call(
        &gw,
        "DELETE",
        &format!("/v1/teams/{team}/api-keys/{id}"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(s, 404);
    assert_error(&v, "API_KEY_NOT_FOUND");
    let t0 = Instant::now();
    while chat(key.clone()).await != 401 {
        assert!(t0.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // the deleted key's usage still says which key it was (once the usage writer, which
    // batches, has stored it)
    let t0 = Instant::now();
    let v = loop {
        let (s, v) = call(
            &gw,
            "GET",
            &format!("/v1/teams/{team}/usage-logs"),
            Some(&ta),
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        if v["data"]["logs"].as_array().is_some_and(|l| !l.is_empty())
            || t0.elapsed() > Duration::from_secs(5)
        {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let logs = v["data"]["logs"].as_array().cloned().unwrap_or_default();
    let mine: Vec<&Value> = logs.iter().filter(|l| l["status"] == "success").collect();
    assert!(!mine.is_empty(), "{v}");
    for l in mine {
        assert_eq!(l["apiKey"], format!("{}...", &key[..7]), "{l}");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn ocr_and_recognition_are_metered_and_reported(pool: PgPool) {
    let mock = Mock::start().await;
    let extra = "  - {name: sabia-ocr, category: ocr, usd_per_request: \"0.015\", deployments: [d]}\n  - {name: sabia-recognition, category: recognition, deployments: [d]}\npricing: {fx_usd_brl: \"5.0\"}\n";
    let gw = Gateway::start_with_env(
        &crate::common::single_model(&mock, "gpt-4o-mini", extra),
        &[
            ("DATABASE_URL", &db_url(&pool, None)),
            (
                "CATRACA_JWT_SECRET",
                "sabia-secret-sabia-secret-sabia-secret",
            ),
        ],
    )
    .await;
    let ta = register(&gw, "ocr@exemplo.com").await;
    let (_, v) = call(
        &gw,
        "POST",
        "/v1/teams",
        Some(&ta),
        Some(json!({"name": "Docs", "plan": "starter"})),
    )
    .await;
    let team = v["data"]["id"].as_str().unwrap().to_string();
    let (_, v) = call(
        &gw,
        "POST",
        &format!("/v1/teams/{team}/api-keys"),
        Some(&ta),
        Some(json!({"name": "Principal"})),
    )
    .await;
    let key = v["data"]["key"].as_str().unwrap().to_string();

    let upload = |path: &'static str, field: &'static str, key: String| {
        let url = gw.url(path);
        async move {
            let boundary = "b0undary";
            let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"doc.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").into_bytes();
            body.extend_from_slice(&vec![0xffu8; 200_000]);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(key)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    for _ in 0..3 {
        let (s, v) = upload("/v1/ocr", "image", key.clone()).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["data"]["text"], "Texto extraído pelo mock da catraca.");
    }
    for _ in 0..2 {
        let (s, v) = upload("/v1/recognition", "document", key.clone()).await;
        assert_eq!((s, v["data"]["type"].as_str()), (200, Some("cpf")));
    }
    // the service routes answer errors in SabIA's shape
    let (s, v) = upload("/v1/ocr", "image", "sk-wrong".into()).await;
    assert_eq!(s, 401);
    assert_error(&v, "UNAUTHORIZED");

    let deadline = Instant::now() + Duration::from_secs(10);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM usage_event")
        .fetch_one(&pool)
        .await
        .unwrap()
        < 6
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (s, v) = call(
        &gw,
        "GET",
        &format!("/v1/teams/{team}/dashboard?period=7d"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let d = &v["data"];
    assert_eq!(d["summary"]["totalRequests"], 5);
    // 3 OCR × $0.015 × R$ 5.00 = R$ 0.225 (recognition has no price here)
    assert_eq!(d["summary"]["totalCost"], 0.225);
    assert_eq!(
        (
            d["summary"]["activeApiKeys"].as_i64(),
            d["summary"]["teamMembers"].as_i64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        (d["usage"]["current"].as_i64(), d["usage"]["limit"].as_i64()),
        (Some(5), Some(5000))
    );
    assert_eq!(
        (
            d["chartData"][0]["ocr"].as_i64(),
            d["chartData"][0]["recognition"].as_i64()
        ),
        (Some(3), Some(2))
    );
    assert_eq!(d["recentActivity"].as_array().unwrap().len(), 5);
    assert_eq!(
        d["recentActivity"][0]["apiKey"],
        format!("{}...", &key[..7])
    );

    let (s, v) = call(
        &gw,
        "GET",
        &format!("/v1/teams/{team}/usage-logs?api=ocr&limit=2"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["data"]["pagination"],
        json!({"page": 1, "limit": 2, "total": 3, "totalPages": 2})
    );
    assert_eq!(
        (
            v["data"]["logs"][0]["endpoint"].as_str(),
            v["data"]["logs"][0]["status"].as_str()
        ),
        (Some("/v1/ocr"), Some("success"))
    );
    let (_, v) = call(
        &gw,
        "GET",
        &format!("/v1/teams/{team}/usage-logs?startDate=2000-01-01&endDate=2000-01-02"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(v["data"]["pagination"]["total"], 0);
    let (s, v) = call(
        &gw,
        "GET",
        &format!("/v1/teams/{team}/usage-logs?limit=101"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(s, 400);
    assert_error(&v, "VALIDATION_ERROR");

    for group in ["day", "week", "month"] {
        let (s, v) = call(
            &gw,
            "GET",
            &format!("/v1/teams/{team}/usage-stats?period=30d&groupBy={group}"),
            Some(&ta),
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let st = &v["data"]["stats"][0];
        assert_eq!(
            (
                st["ocr"]["requests"].as_i64(),
                st["recognition"]["requests"].as_i64(),
                st["total"]["requests"].as_i64()
            ),
            (Some(3), Some(2), Some(5)),
            "{group}: {v}"
        );
        assert_eq!(v["data"]["summary"]["totalRequests"], 5);
        assert_eq!(v["data"]["stats"][0]["ocr"]["cost"], 0.225);
    }
    let (s, _) = call(
        &gw,
        "GET",
        &format!("/v1/teams/{team}/usage-stats?groupBy=hour"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(s, 400);
    let (_, b) = call(
        &gw,
        "GET",
        &format!("/v1/teams/{team}/billing"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(b["data"]["usage"]["current"], 5);

    // one rule for every count: a failed request counts in its service and in the total alike
    // (only the plan's quota, `usage.current`, counts answered requests)
    let boundary = "b0undary";
    let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"doc.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").into_bytes();
    body.extend_from_slice(&[0xffu8; 1000]);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = reqwest::Client::new()
        .post(gw.url("/v1/ocr"))
        .bearer_auth(&key)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("x-mock-status", "500")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_server_error(), "{}", r.status());
    let deadline = Instant::now() + Duration::from_secs(10);
    while sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM usage_event WHERE organization_id = $1::uuid",
    )
    .bind(&team)
    .fetch_one(&pool)
    .await
    .unwrap()
        < 6
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, v) = call(
        &gw,
        "GET",
        &format!("/v1/teams/{team}/usage-stats?period=7d"),
        Some(&ta),
        None,
    )
    .await;
    let st = &v["data"]["stats"][0];
    assert_eq!(
        (
            st["ocr"]["requests"].as_i64(),
            st["recognition"]["requests"].as_i64(),
            st["total"]["requests"].as_i64(),
            v["data"]["summary"]["totalRequests"].as_i64()
        ),
        (Some(4), Some(2), Some(6), Some(6)),
        "{v}"
    );
    let (_, d) = call(
        &gw,
        "GET",
        &format!("/v1/teams/{team}/dashboard?period=7d"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(
        (
            d["data"]["summary"]["totalRequests"].as_i64(),
            d["data"]["chartData"][0]["ocr"].as_i64(),
            d["data"]["usage"]["current"].as_i64()
        ),
        (Some(6), Some(4), Some(5)),
        "{d}"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn webhooks_store_the_secret_encrypted(pool: PgPool) {
    let mock = Mock::start().await;
    let key_hex = "0f".repeat(32);
    let gw = Gateway::start_with_env(
        &crate::common::single_model(&mock, "gpt-4o-mini", ""),
        &[
            ("DATABASE_URL", &db_url(&pool, None)),
            ("CATRACA_SECRET_KEY", &key_hex),
        ],
    )
    .await;
    let ta = register(&gw, "hook@exemplo.com").await;
    let tb = register(&gw, "outro@exemplo.com").await;
    let (_, v) = call(
        &gw,
        "POST",
        "/v1/teams",
        Some(&ta),
        Some(json!({"name": "T"})),
    )
    .await;
    let team = v["data"]["id"].as_str().unwrap().to_string();

    let (s, v) = call(&gw, "POST", &format!("/v1/teams/{team}/webhooks"), Some(&ta),
        Some(json!({"url": "https://meusite.com/webhook", "events": ["usage_limit_reached", "payment_failed"], "secret": "webhook_secret_key"}))).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (
            v["data"]["status"].as_str(),
            v["data"]["events"][1].as_str()
        ),
        (Some("active"), Some("payment_failed"))
    );
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT secret_sealed FROM webhook")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&sealed).contains("webhook_secret_key"),
        "secret stored in plaintext"
    );
    let b = catraca::secrets::SecretBox::from_hex(&key_hex).unwrap();
    assert_eq!(b.open(&sealed).unwrap(), b"webhook_secret_key");

    for bad in [
        json!({"url": "ftp://x", "events": ["payment_failed"]}),
        json!({"url": "https://x.com", "events": []}),
        json!({"url": "https://x.com", "events": ["nope"]}),
    ] {
        let (s, v) = call(
            &gw,
            "POST",
            &format!("/v1/teams/{team}/webhooks"),
            Some(&ta),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(s, 400, "{bad}");
        assert_error(&v, "VALIDATION_ERROR");
    }
    let (s, v) = call(
        &gw,
        "GET",
        &format!("/v1/teams/{team}/webhooks"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert!(v["data"][0].get("secret").is_none());
    let (s, _) = call(
        &gw,
        "GET",
        &format!("/v1/teams/{team}/webhooks"),
        Some(&tb),
        None,
    )
    .await;
    assert_eq!(s, 404);
}

async fn user_id(gw: &Gateway, token: &str) -> String {
    let (s, v) = call(gw, "GET", "/v1/teams", Some(token), None).await;
    assert_eq!(s, 200, "{v}");
    let claims = token.split('.').nth(1).unwrap();
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["sub"]
        .as_str()
        .unwrap()
        .to_string()
}

#[sqlx::test(migrations = "./migrations")]
async fn two_owners_removing_each_other_at_once_leave_one(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let ta = register(&gw, "ana@exemplo.com").await;
    let tb = register(&gw, "bia@exemplo.com").await;
    let (a, b) = (user_id(&gw, &ta).await, user_id(&gw, &tb).await);
    for round in 0..15 {
        let (s, v) = call(
            &gw,
            "POST",
            "/v1/teams",
            Some(&ta),
            Some(json!({"name": format!("t{round}")})),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        let team = v["data"]["id"].as_str().unwrap().to_string();
        let (s, v) = call(
            &gw,
            "POST",
            &format!("/v1/teams/{team}/members"),
            Some(&ta),
            Some(json!({"email": "bia@exemplo.com", "role": "admin"})),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        // a second owner (no route makes one; the rule must hold for any number)
        sqlx::query("UPDATE membership SET role = 'owner' WHERE organization_id = $1::uuid")
            .bind(&team)
            .execute(&pool)
            .await
            .unwrap();
        let (ua, ub) = (
            format!("/v1/teams/{team}/members/{b}"),
            format!("/v1/teams/{team}/members/{a}"),
        );
        let (ra, rb) = tokio::join!(
            call(&gw, "DELETE", &ua, Some(&ta), None),
            call(&gw, "DELETE", &ub, Some(&tb), None),
        );
        let owners: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM membership WHERE organization_id = $1::uuid AND role = 'owner'",
        )
        .bind(&team)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(owners, 1, "round {round}: {ra:?} {rb:?}");
        let mut statuses = [ra.0, rb.0];
        statuses.sort();
        // one removal wins; the other is refused as the last owner's (400) or, when it is
        // checked after the first removed its caller, as no longer a member (404)
        assert!(
            statuses == [200, 400] || statuses == [200, 404],
            "round {round}: {ra:?} {rb:?}"
        );
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn concurrent_plan_changes_each_report_the_plan_they_replaced(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let ta = register(&gw, "ana@exemplo.com").await;
    for round in 0..15 {
        let (s, v) = call(
            &gw,
            "POST",
            "/v1/teams",
            Some(&ta),
            Some(json!({"name": format!("t{round}")})),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        let team = v["data"]["id"].as_str().unwrap().to_string();
        let url = format!("/v1/teams/{team}/plan");
        let (bx, by) = (json!({"plan": "starter"}), json!({"plan": "pro"}));
        let (x, y) = tokio::join!(
            call(&gw, "PUT", &url, Some(&ta), Some(bx)),
            call(&gw, "PUT", &url, Some(&ta), Some(by)),
        );
        assert_eq!((x.0, y.0), (200, 200), "{x:?} {y:?}");
        let (ox, oy) = (
            x.1["data"]["oldPlan"].as_str().unwrap(),
            y.1["data"]["oldPlan"].as_str().unwrap(),
        );
        // one ran first (from sandbox); the other replaced what the first set
        assert!(
            (ox == "sandbox" && oy == "starter") || (oy == "sandbox" && ox == "pro"),
            "round {round}: starter replaced {ox}, pro replaced {oy}"
        );
        let audits: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE organization_id = $1::uuid AND action = 'plan.change'")
            .bind(&team).fetch_one(&pool).await.unwrap();
        assert_eq!(audits, 2);
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn malformed_input_is_validated_before_any_lookup(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let ta = register(&gw, "ana@exemplo.com").await;
    // login without a password: the field is missing, not the credentials wrong
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({"email": "ana@exemplo.com"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_error(&v, "VALIDATION_ERROR");
    assert_eq!(v["error"]["details"][0]["field"], "password");
    // a member with a malformed email: invalid, not "user not found"
    let (_, v) = call(&gw, "GET", "/v1/teams", Some(&ta), None).await;
    let team = v["data"][0]["id"].as_str().unwrap().to_string();
    let (s, v) = call(
        &gw,
        "POST",
        &format!("/v1/teams/{team}/members"),
        Some(&ta),
        Some(json!({"email": "not-an-email"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_error(&v, "VALIDATION_ERROR");
    assert_eq!(v["error"]["details"][0]["field"], "email");
}

#[sqlx::test(migrations = "./migrations")]
async fn webhooks_never_reach_internal_addresses(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = Gateway::start_with_env(
        &crate::common::single_model(&mock, "gpt-4o-mini", ""),
        &[
            ("DATABASE_URL", &db_url(&pool, None)),
            (
                "CATRACA_JWT_SECRET",
                "test-secret-test-secret-test-secret-123",
            ),
            ("CATRACA_WEBHOOK_POLL_MS", "100"),
        ],
    )
    .await;
    let ta = register(&gw, "ana@exemplo.com").await;
    let (_, v) = call(&gw, "GET", "/v1/teams", Some(&ta), None).await;
    let team = v["data"][0]["id"].as_str().unwrap().to_string();
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:8080/hook",
        "http://[::1]/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0:80/",
    ] {
        let (s, v) = call(
            &gw,
            "POST",
            &format!("/v1/teams/{team}/webhooks"),
            Some(&ta),
            Some(json!({"url": url, "events": ["usage_limit_reached"]})),
        )
        .await;
        assert_eq!(s, 400, "{url}: {v}");
        assert_error(&v, "VALIDATION_ERROR");
        assert_eq!(v["error"]["details"][0]["field"], "url");
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing stored");

    // one written around the check (an older row, a name that resolves differently later) is
    // checked again at delivery and not called
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = receiver.local_addr().unwrap();
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = receiver.accept().await {
            h.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let team_id: uuid::Uuid = team.parse().unwrap();
    let hook: uuid::Uuid = sqlx::query_scalar("INSERT INTO webhook (organization_id, url, events) VALUES ($1, $2, '{usage_limit_reached}') RETURNING webhook_id")
        .bind(team_id).bind(format!("http://{addr}/hook")).fetch_one(&pool).await.unwrap();
    sqlx::query("INSERT INTO webhook_delivery (webhook_id, event, dedup_key, payload) VALUES ($1, 'usage_limit_reached', 'x', '{}')")
        .bind(hook).execute(&pool).await.unwrap();
    let t0 = std::time::Instant::now();
    loop {
        let err: Option<String> = sqlx::query_scalar("SELECT last_error FROM webhook_delivery")
            .fetch_one(&pool)
            .await
            .unwrap();
        if let Some(e) = err {
            assert!(e.contains("not called") && e.contains("127.0.0.1"), "{e}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "delivery not attempted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "an internal address was called"
    );
}

/// Every change made through the dashboards is audited once: the acting user, the client's
/// address, and what the object was before and after (never a key or a password).
#[sqlx::test(migrations = "./migrations")]
async fn dashboard_changes_are_audited_with_before_and_after(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let token = register(&gw, "dono@exemplo.com").await;
    // the team made at registration has no plan set: it shows Sandbox's card, not null
    let (_, v) = call(&gw, "GET", "/v1/teams", Some(&token), None).await;
    let own = v["data"][0]["id"].as_str().unwrap().to_string();
    let (_, v) = call(&gw, "GET", &format!("/v1/teams/{own}"), Some(&token), None).await;
    assert_eq!(v["data"]["plan"]["name"], "Sandbox", "{v}");
    let (_, v) = call(
        &gw,
        "POST",
        "/v1/teams",
        Some(&token),
        Some(json!({"name": "Time", "plan": "starter"})),
    )
    .await;
    let team = v["data"]["id"].as_str().unwrap().to_string();
    let (_, v) = call(
        &gw,
        "POST",
        &format!("/v1/teams/{team}/api-keys"),
        Some(&token),
        Some(json!({"name": "k1"})),
    )
    .await;
    let key = v["data"]["key"].as_str().unwrap().to_string();
    let id = v["data"]["id"].as_i64().unwrap();
    let (s, _) = call(
        &gw,
        "PUT",
        &format!("/v1/teams/{team}/api-keys/{id}"),
        Some(&token),
        Some(json!({"name": "k2", "description": "d"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &gw,
        "PATCH",
        &format!("/v1/teams/{team}/api-keys/{id}/status"),
        Some(&token),
        Some(json!({"status": "inactive"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &gw,
        "PUT",
        &format!("/v1/teams/{team}/plan"),
        Some(&token),
        Some(json!({"plan": "pro"})),
    )
    .await;
    assert_eq!(s, 200);
    // a refused change writes nothing
    let (s, _) = call(
        &gw,
        "PATCH",
        &format!("/v1/teams/{team}/api-keys/{id}/status"),
        Some(&token),
        Some(json!({"status": "nope"})),
    )
    .await;
    assert_eq!(s, 400);

    /// action, actor, source address, before, after
    type Row = (String, String, Option<String>, Option<Value>, Option<Value>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT action, actor, source_ip, before, after FROM audit_log WHERE organization_id = $1::uuid ORDER BY audit_log_id",
    )
    .bind(&team)
    .fetch_all(&pool)
    .await
    .unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "team.create",
            "api_key.create",
            "api_key.update",
            "api_key.status",
            "plan.change"
        ]
    );
    for (action, actor, ip, ..) in &rows {
        assert_eq!(
            (actor.as_str(), ip.as_deref()),
            ("user", Some("127.0.0.1")),
            "{action}"
        );
    }
    let update = &rows[2];
    assert_eq!(
        (
            update.3.as_ref().unwrap()["name"].as_str(),
            update.4.as_ref().unwrap()["name"].as_str()
        ),
        (Some("k1"), Some("k2"))
    );
    let status = &rows[3];
    assert_eq!(
        (
            status.3.as_ref().unwrap()["status"].as_str(),
            status.4.as_ref().unwrap()["status"].as_str()
        ),
        (Some("active"), Some("disabled"))
    );
    let plan = &rows[4];
    assert_eq!(
        (
            plan.3.as_ref().unwrap()["plan"].as_str(),
            plan.4.as_ref().unwrap()["plan"].as_str()
        ),
        (Some("starter"), Some("pro"))
    );
    let all: String = sqlx::query_scalar("SELECT coalesce(string_agg(coalesce(before::text, '') || coalesce(after::text, '') || coalesce(target, ''), ' '), '') FROM audit_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        !all.contains(&key) && !all.contains("senha-forte-1"),
        "a secret in the audit log"
    );
}
