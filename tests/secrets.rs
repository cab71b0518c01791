//! No key, token or password reaches a log. Every test gateway's log is searched for every
//! secret the suite registered when it stops (`tests/common`, `Drop for Gateway`); this test
//! adds the secrets only the admin app and the provider side see, at debug level.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::*;

#[sqlx::test(migrations = "./migrations")]
async fn no_secret_reaches_the_log_at_debug_level(pool: PgPool) {
    let mock = Mock::start().await;
    let provider_key = secret("sk-provider-upstream-7f3a9c1e5b");
    let jwt = secret("jwt-secret-0123456789abcdef0123456789abcdef");
    let sealing = secret(&"3c".repeat(32));
    let password = secret("senha-muito-secreta-42");
    let db_password = secret("dbpass-9d8c7b6a");
    let url = db_url(&pool, None).replacen("postgres@", &format!("postgres:{db_password}@"), 1);
    let gw = Gateway::start_with_env(
        &format!(
            "providers:\n  - {{name: p, base_url: \"{}\", api_key_env: CATRACA_TEST_PROVIDER_KEY}}\ndeployments:\n  - {{name: d, provider: p, model: up}}\nmodels:\n  - {{name: gpt-4o-mini, deployments: [d]}}\n",
            mock.base()
        ),
        &[
            ("DATABASE_URL", &url),
            ("CATRACA_JWT_SECRET", &jwt),
            ("CATRACA_SECRET_KEY", &sealing),
            ("CATRACA_TEST_PROVIDER_KEY", &provider_key),
            ("RUST_LOG", "debug"),
        ],
    )
    .await;

    // the provider gets its key; the client's never
    assert_eq!(chat_status(&gw, KEY, "gpt-4o-mini").await, 200);
    let h = mock.stats().await["last_headers"].clone();
    assert_eq!(
        h["authorization"],
        format!("Bearer {provider_key}").as_str()
    );

    // MaxAI: register, login (right and wrong password), a dashboard key used at the gateway
    let (s, v) = call(
        &gw,
        "POST",
        "/api/auth/register",
        None,
        Some(json!({"email": "seg@example.com", "password": password, "name": "Seg"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let access = secret(v["access_token"].as_str().unwrap());
    let refresh = secret(v["refresh_token"].as_str().unwrap());
    let (s, _) = call(
        &gw,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"email": "seg@example.com", "password": "errada-senha-secreta-13"})),
    )
    .await;
    secret("errada-senha-secreta-13");
    assert_eq!(s, 401);
    let (s, k) = call(
        &gw,
        "POST",
        "/api/keys",
        Some(&access),
        Some(json!({"name": "prod"})),
    )
    .await;
    assert_eq!(s, 201, "{k}");
    let key = secret(k["key"].as_str().unwrap());
    assert_eq!(chat_status(&gw, &key, "gpt-4o-mini").await, 200);
    let wrong = secret("sk-wrong-presented-key-5e4d3c2b1a");
    assert_eq!(chat_status(&gw, &wrong, "gpt-4o-mini").await, 401);
    let (s, _) = call(&gw, "POST", "/api/auth/refresh", Some(&refresh), None).await;
    assert!(s == 200 || s == 201, "{s}");

    // SabIA: a webhook secret, sealed at rest
    let (s, v) = call(&gw, "POST", "/v1/auth/register", None,
        Some(json!({"name": "Seg", "email": "seg2@example.com", "password": password, "phone": "(11) 99999-9999", "company": "X"}))).await;
    assert_eq!(s, 201, "{v}");
    let token = secret(v["data"]["token"].as_str().unwrap());
    let (_, v) = call(
        &gw,
        "POST",
        "/v1/teams",
        Some(&token),
        Some(json!({"name": "T"})),
    )
    .await;
    let team = v["data"]["id"].as_str().unwrap().to_string();
    let hook = secret("whsec-muito-secreto-8a7b6c");
    let (s, v): (u16, Value) = call(&gw, "POST", &format!("/v1/teams/{team}/webhooks"), Some(&token),
        Some(json!({"url": "https://meusite.com/webhook", "events": ["usage_limit_reached"], "secret": hook}))).await;
    assert_eq!(s, 201, "{v}");

    // the log is there and busy, and holds none of them (checked again when `gw` drops)
    let log = gw.log();
    assert!(log.contains("DEBUG"), "not a debug log");
    assert_eq!(leaked(&log), Vec::<String>::new());
}
