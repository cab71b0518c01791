//! The gateway on Postgres: keys from the database, revocation seen within a second, usage
//! rows written in batches, and an outage survived with every event stored exactly once.

use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::common::{Gateway, Mock, TcpCut, db_url, insert_key};

fn body(mock: &Mock) -> String {
    crate::common::single_model(mock, "chat-model", "")
}

async fn chat(gw: &Gateway, key: &str) -> u16 {
    crate::common::chat_status(gw, key, "chat-model").await
}

async fn wait_rows(pool: &PgPool, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_event")
            .fetch_one(pool)
            .await
            .unwrap();
        if c >= n {
            assert_eq!(c, n, "more usage rows than requests");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} usage rows, have {c}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn db_key_works_at_once_and_revocation_is_seen_within_a_second(pool: PgPool) {
    let mock = Mock::start().await;
    let url = db_url(&pool, None);
    let gw = Gateway::start_with_env(&body(&mock), &[("DATABASE_URL", &url)]).await;

    // a key created after the gateway started works at once
    let (org, key_id) = insert_key(&pool, "sk-db-key-1").await;
    assert_eq!(chat(&gw, "sk-db-key-1").await, 200, "{}", gw.log());
    assert_eq!(chat(&gw, "sk-db-unknown").await, 401);
    // config keys keep working beside database keys
    assert_eq!(chat(&gw, crate::common::KEY).await, 200);

    wait_rows(&pool, 3).await;
    let (o, k, p, c): (Option<uuid::Uuid>, Option<uuid::Uuid>, i64, i64) = sqlx::query_as(
        "SELECT organization_id, api_key_id, prompt_tokens, completion_tokens FROM usage_event WHERE status = 200 AND api_key_id IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((o, k), (Some(org), Some(key_id)));
    assert_eq!((p, c), (5, 4));
    let total: i64 = sqlx::query_scalar("SELECT total_requests FROM api_key WHERE api_key_id = $1")
        .bind(key_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(total, 1);

    // revoke: refused within one second
    let t0 = Instant::now();
    sqlx::query("UPDATE api_key SET status = 'revoked' WHERE api_key_id = $1")
        .bind(key_id)
        .execute(&pool)
        .await
        .unwrap();
    loop {
        if chat(&gw, "sk-db-key-1").await == 401 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "revoked key still accepted after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("revocation seen by the gateway after {:?}", t0.elapsed());
}

#[sqlx::test(migrations = "./migrations")]
async fn postgres_outage_keeps_serving_and_loses_no_usage(pool: PgPool) {
    let mock = Mock::start().await;
    let pg = pool.connect_options();
    let target = format!("{}:{}", pg.get_host(), pg.get_port());
    let target = tokio::net::lookup_host(target)
        .await
        .unwrap()
        .next()
        .unwrap();
    let cut = TcpCut::start(target).await;
    let url = db_url(&pool, Some(cut.port));
    insert_key(&pool, "sk-db-key-2").await;
    let gw = Gateway::start_with_env(&body(&mock), &[("DATABASE_URL", &url)]).await;

    assert_eq!(chat(&gw, "sk-db-key-2").await, 200, "{}", gw.log());
    wait_rows(&pool, 1).await;

    cut.cut();
    let t0 = Instant::now();
    for i in 0..30 {
        assert_eq!(
            chat(&gw, "sk-db-key-2").await,
            200,
            "request {i} during the outage"
        );
        assert_eq!(chat(&gw, crate::common::KEY).await, 200);
    }
    let during = t0.elapsed();
    // a key never seen cannot be checked: 503, not 401
    assert_eq!(chat(&gw, "sk-never-seen").await, 503);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let spilled =
        std::fs::read_to_string(gw.dir.join("catraca-usage-spill.jsonl")).unwrap_or_default();
    assert!(
        spilled.lines().count() > 0,
        "nothing spilled during the outage"
    );

    cut.restore();
    // 1 before + 60 during + 1 refused = 62 requests, each stored exactly once
    wait_rows(&pool, 62).await;
    let dup: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT request_id FROM usage_event GROUP BY 1 HAVING count(*) > 1) d",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(dup, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_rows(&pool, 62).await;
    let left =
        std::fs::read_to_string(gw.dir.join("catraca-usage-spill.jsonl")).unwrap_or_default();
    assert_eq!(left, "", "spill file not emptied after replay");
    eprintln!("60 requests during the outage took {during:?}");
}

#[sqlx::test(migrations = "./migrations")]
async fn revocation_reaches_every_gateway_node(pool: PgPool) {
    let mock = Mock::start().await;
    let url = db_url(&pool, None);
    let a = Gateway::start_with_env(&body(&mock), &[("DATABASE_URL", &url)]).await;
    let b = Gateway::start_with_env(&body(&mock), &[("DATABASE_URL", &url)]).await;
    let (_, key_id) = insert_key(&pool, "sk-db-key-3").await;
    assert_eq!(chat(&a, "sk-db-key-3").await, 200);
    assert_eq!(chat(&b, "sk-db-key-3").await, 200);
    let t0 = Instant::now();
    sqlx::query("UPDATE api_key SET status = 'disabled' WHERE api_key_id = $1")
        .bind(key_id)
        .execute(&pool)
        .await
        .unwrap();
    for gw in [&a, &b] {
        while chat(gw, "sk-db-key-3").await != 401 {
            assert!(
                t0.elapsed() < Duration::from_secs(1),
                "a node still accepts the disabled key"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    eprintln!(
        "both nodes refuse the disabled key after {:?}",
        t0.elapsed()
    );
}

/// With Postgres unreachable, every dashboard and operator route answers 503 in its own
/// contract's shape (never 500), within the pool's acquire timeout, and serves again once it
/// is back.
#[sqlx::test(migrations = "./migrations")]
async fn admin_routes_answer_503_in_their_contracts_shape_while_postgres_is_down(pool: PgPool) {
    let mock = Mock::start().await;
    let pg = pool.connect_options();
    let target = tokio::net::lookup_host(format!("{}:{}", pg.get_host(), pg.get_port()))
        .await
        .unwrap()
        .next()
        .unwrap();
    let cut = TcpCut::start(target).await;
    let master = "operator-master-key-0123456789";
    let gw = Gateway::start_with_env(
        &body(&mock),
        &[
            ("DATABASE_URL", &db_url(&pool, Some(cut.port))),
            ("CATRACA_MASTER_KEY", master),
        ],
    )
    .await;
    // a SabIA session, taken while the database is up
    let (s, v) = crate::common::call(&gw, "POST", "/v1/auth/register", None,
        Some(serde_json::json!({"name": "Ana", "email": "ana@exemplo.com", "password": "senha-forte-1"}))).await;
    assert_eq!(s, 201, "{v}");
    let token = v["data"]["token"].as_str().unwrap().to_string();

    cut.cut();
    let t0 = Instant::now();
    let sabia = crate::common::call(&gw, "GET", "/v1/teams", Some(&token), None).await;
    let sabia_login = crate::common::call(
        &gw,
        "POST",
        "/v1/auth/login",
        None,
        Some(serde_json::json!({"email": "ana@exemplo.com", "password": "senha-forte-1"})),
    )
    .await;
    let maxai = crate::common::call(
        &gw,
        "POST",
        "/api/auth/login",
        None,
        Some(serde_json::json!({"email": "ana@exemplo.com", "password": "senha-forte-1"})),
    )
    .await;
    let operator =
        crate::common::call(&gw, "GET", "/admin/v1/organizations", Some(master), None).await;
    let elapsed = t0.elapsed();
    for (s, v) in [&sabia, &sabia_login] {
        assert_eq!(
            (*s, v["success"].as_bool(), v["error"]["code"].as_str()),
            (503, Some(false), Some("SERVICE_UNAVAILABLE")),
            "{v}"
        );
    }
    assert_eq!(
        (maxai.0, maxai.1["error"].as_str()),
        (503, Some("service_unavailable")),
        "{}",
        maxai.1
    );
    assert_eq!(
        (operator.0, operator.1["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "{}",
        operator.1
    );
    assert!(
        elapsed < Duration::from_secs(12),
        "four calls took {elapsed:?}"
    );

    cut.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _) = crate::common::call(&gw, "GET", "/v1/teams", Some(&token), None).await;
        if s == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {s} after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
