//! Prepaid balances and key budgets (#5): reservation before the call, 402 when it does not
//! fit, settlement in the append-only ledger, idempotent top-ups, failover charged once.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::*;

/// One model at $0.01 a request (no token prices), FX 5 and markup 1: R$ 0.05 = 50000 µBRL.
fn priced(mock_a: &str, mock_b: Option<&str>) -> String {
    let (deps, names) = match mock_b {
        Some(b) => (
            format!(
                "providers:\n  - {{name: a, base_url: \"{mock_a}\", forward_headers: [x-mock-*]}}\n  - {{name: b, base_url: \"{b}\", forward_headers: [x-mock-*]}}\ndeployments:\n  - {{name: da, provider: a, model: up, priority: 0}}\n  - {{name: db, provider: b, model: up, priority: 1}}\n"
            ),
            "[da, db]",
        ),
        None => (
            format!(
                "providers:\n  - {{name: a, base_url: \"{mock_a}\", forward_headers: [x-mock-*]}}\ndeployments:\n  - {{name: da, provider: a, model: up}}\n"
            ),
            "[da]",
        ),
    };
    format!(
        "pricing: {{fx_usd_brl: \"5.0\", default_markup: \"1.0\"}}\n{deps}models:\n  - {{name: m, usd_per_request: \"0.01\", deployments: {names}}}\n"
    )
}

async fn send(gw: &Gateway, key: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(
            json!({"model": "m", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn wait_events(pool: &PgPool, n: i64) {
    for _ in 0..200 {
        let c: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_event")
            .fetch_one(pool)
            .await
            .unwrap();
        if c >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("usage events not written");
}

async fn balance(pool: &PgPool, org: uuid::Uuid) -> i64 {
    sqlx::query_scalar("SELECT balance_brl_micros FROM organization WHERE organization_id = $1")
        .bind(org)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn a_balance_for_ten_requests_admits_ten_of_200_concurrent(pool: PgPool) {
    let mock = Mock::start().await;
    let key = "sk-prepaid-0123456789";
    let (org, _) = insert_key(&pool, key).await;
    let e = catraca::store::ledger::post(&pool, org, "topup", 500_000, "pix-1", None)
        .await
        .unwrap();
    assert_eq!(e.balance_after_brl_micros, 500_000);
    let url = db_url(&pool, None);
    let gw = Gateway::start_with_env(
        &priced(&mock.base(), None),
        &[("DATABASE_URL", url.as_str())],
    )
    .await;

    // 200 at once, each held 200 ms upstream so they all overlap
    let replies = futures_util::future::join_all((0..200).map(|_| async {
        let r = reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .header("x-mock-latency-ms", "200")
            .body(json!({"model": "m", "max_tokens": 4, "messages": []}).to_string())
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json::<Value>().await.unwrap())
    }))
    .await;
    let ok = replies.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<&Value> = replies
        .iter()
        .filter(|(s, _)| *s == 402)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(ok, 10, "the documented bound is exactly the balance here");
    assert_eq!(refused.len(), 190);
    assert_eq!(refused[0]["error"]["code"], "insufficient_balance");
    assert!(gw.metrics().await.contains(
        "catraca_limit_decisions_total{backend=\"funds\",decision=\"refused\",reason=\"insufficient_balance\"} 190"
    ));
    assert_eq!(
        mock.requests().await,
        10,
        "a refused request never reaches upstream"
    );

    wait_events(&pool, 200).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(balance(&pool, org).await, 0);
    let (n, sum, min_after): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), sum(amount_brl_micros)::int8, min(balance_after_brl_micros)
         FROM ledger_entry WHERE organization_id = $1",
    )
    .bind(org)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (n, sum, min_after),
        (11, 0, 0),
        "1 top-up + 10 debits sum to the balance"
    );
    let debits: Vec<i64> = sqlx::query_scalar(
        "SELECT amount_brl_micros FROM ledger_entry WHERE kind = 'usage' ORDER BY ledger_entry_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(debits.iter().all(|d| *d == -50_000));
    // the ledger is append-only
    assert!(
        sqlx::query("UPDATE ledger_entry SET amount_brl_micros = 0")
            .execute(&pool)
            .await
            .is_err()
    );

    // a top-up replayed with its idempotency key changes nothing; a new one reaches the gateway
    let again = catraca::store::ledger::post(&pool, org, "topup", 500_000, "pix-1", None)
        .await
        .unwrap();
    assert_eq!(again, e);
    assert!(matches!(
        catraca::store::ledger::post(&pool, org, "topup", 1, "pix-1", None).await,
        Err(catraca::store::ledger::LedgerError::Conflict)
    ));
    assert_eq!(balance(&pool, org).await, 0);
    catraca::store::ledger::post(&pool, org, "topup", 100_000, "pix-2", Some("Pix"))
        .await
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let (s, _) = send(&gw, key).await;
        if s == 200 || !statuses.is_empty() {
            statuses.push(s);
        }
        if statuses.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await; // the notification is on its way
    }
    assert_eq!(statuses, [200, 200, 402]);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_failover_retry_is_charged_once(pool: PgPool) {
    let failing = Mock::start_with(catraca::mock_upstream::MockOptions {
        fail_status: 500,
        fail_rate: 1.0,
        ..Default::default()
    })
    .await;
    let good = Mock::start().await;
    let key = "sk-prepaid-failover-1";
    let (org, _) = insert_key(&pool, key).await;
    catraca::store::ledger::post(&pool, org, "topup", 500_000, "t", None)
        .await
        .unwrap();
    let url = db_url(&pool, None);
    let gw = Gateway::start_with_env(
        &priced(&failing.base(), Some(&good.base())),
        &[("DATABASE_URL", url.as_str())],
    )
    .await;
    let (s, _) = send(&gw, key).await;
    assert_eq!(s, 200);
    assert_eq!((failing.requests().await, good.requests().await), (1, 1));
    wait_events(&pool, 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let attempts: i16 = sqlx::query_scalar("SELECT attempts FROM usage_event")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, 2);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_entry WHERE kind = 'usage'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(balance(&pool, org).await, 450_000);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_key_budget_is_enforced_with_402_and_reloaded_when_changed(pool: PgPool) {
    let mock = Mock::start().await;
    let key = "sk-budget-0123456789";
    let (_, key_id) = insert_key(&pool, key).await;
    // $0.025: two requests of $0.01 fit, the third does not
    sqlx::query("UPDATE api_key SET budget_usd_micros = 25000 WHERE api_key_id = $1")
        .bind(key_id)
        .execute(&pool)
        .await
        .unwrap();
    let url = db_url(&pool, None);
    let gw = Gateway::start_with_env(
        &priced(&mock.base(), None),
        &[("DATABASE_URL", url.as_str())],
    )
    .await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(send(&gw, key).await);
    }
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [200, 200, 402]);
    assert_eq!(got[2].1["error"]["code"], "budget_exceeded");
    wait_events(&pool, 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let spent: i64 =
        sqlx::query_scalar("SELECT total_cost_usd_micros FROM api_key WHERE api_key_id = $1")
            .bind(key_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(spent, 20_000, "what MaxAI shows as budget_used");
    // a larger budget reaches the gateway through the notification
    sqlx::query("UPDATE api_key SET budget_usd_micros = 35000 WHERE api_key_id = $1")
        .bind(key_id)
        .execute(&pool)
        .await
        .unwrap();
    let mut s = 402;
    for _ in 0..40 {
        s = send(&gw, key).await.0;
        if s == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(s, 200);
    assert_eq!(
        send(&gw, key).await.0,
        402,
        "$0.035 − $0.03 leaves less than a request"
    );
}

/// Organization `org` on a plan of `quota` requests a month, with `used` successful requests
/// (of `used + 100`) already counted this month and 100000 last month.
async fn on_quota_plan(pool: &PgPool, org: uuid::Uuid, quota: i64, used: i64) {
    sqlx::query("INSERT INTO plan (code, name, monthly_request_quota) VALUES ('tiny', 'Tiny', $1)")
        .bind(quota)
        .execute(pool)
        .await
        .unwrap();
    set_plan(pool, org, "tiny").await;
    sqlx::query(
        "INSERT INTO usage_daily (organization_id, day, model, requests, successful, prompt_tokens,
                                  completion_tokens, cost_usd_micros, latency_ms_sum)
         VALUES ($1, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 'old', $2 + 100, $2, 0, 0, 0, 0),
                ($1, date_trunc('month', now() AT TIME ZONE 'UTC')::date - 1, 'old', 100000, 100000, 0, 0, 0, 0)",
    )
    .bind(org)
    .bind(used)
    .execute(pool)
    .await
    .unwrap();
}

async fn month_used(pool: &PgPool, org: uuid::Uuid) -> i64 {
    sqlx::query_scalar(catraca::funds::MONTH_USED_SQL)
        .bind(org)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn a_plan_quota_admits_exactly_what_is_left_of_the_month_on_every_node(pool: PgPool) {
    let mock = Mock::start().await;
    let key = "sk-quota-0123456789";
    let (org, _) = insert_key(&pool, key).await;
    on_quota_plan(&pool, org, 5000, 4990).await;
    let url = db_url(&pool, None);
    let cfg = priced(&mock.base(), None);
    let gw = Gateway::start_with_env(&cfg, &[("DATABASE_URL", url.as_str())]).await;

    // an upstream refusal uses no quota
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("x-mock-status", "400")
        .body(json!({"model": "m", "messages": []}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // 10 left: of 30 at once, exactly 10 go through
    let replies = futures_util::future::join_all((0..30).map(|_| async {
        let r = reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .header("x-mock-latency-ms", "200")
            .body(json!({"model": "m", "messages": []}).to_string())
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let retry: u64 = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse().unwrap())
            .unwrap_or(0);
        (s, retry, r.json::<Value>().await.unwrap())
    }))
    .await;
    let ok = replies.iter().filter(|r| r.0 == 200).count();
    let refused: Vec<_> = replies.iter().filter(|r| r.0 == 429).collect();
    assert_eq!((ok, refused.len()), (10, 20));
    assert_eq!(refused[0].2["error"]["code"], "usage_limit_exceeded");
    // Retry-After points at the next UTC month
    let (_, next) = catraca::funds::month_now();
    let wait = (next - time::OffsetDateTime::now_utc().unix_timestamp()) as u64;
    assert!(
        refused
            .iter()
            .all(|r| r.1 >= wait.saturating_sub(5) && r.1 <= wait + 1)
    );
    assert_eq!(
        mock.requests().await,
        11,
        "refused requests never reach upstream"
    );

    // the database counts the month exactly: 4990 + 10, not the failed or refused ones
    wait_events(&pool, 31).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(month_used(&pool, org).await, 5000);

    // a second node reads the month from the database and refuses at once
    let gw2 = Gateway::start_with_env(&cfg, &[("DATABASE_URL", url.as_str())]).await;
    assert_eq!(send(&gw2, key).await.0, 429);

    // a larger quota reaches both nodes; the one request it allows is counted on both
    sqlx::query("UPDATE plan SET monthly_request_quota = 5001 WHERE code = 'tiny'")
        .execute(&pool)
        .await
        .unwrap();
    let mut s = 429;
    for _ in 0..40 {
        s = send(&gw2, key).await.0;
        if s == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(s, 200);
    assert_eq!(send(&gw2, key).await.0, 429);
    // gw learns of gw2's request when it is written (the notification goes out in the same
    // statement; until then the cross-node bound of src/funds.rs applies)
    for _ in 0..100 {
        if month_used(&pool, org).await == 5001 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(month_used(&pool, org).await, 5001);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (st, body) = send(&gw, key).await;
    assert_eq!(
        (st, &body["error"]["code"]),
        (429, &json!("usage_limit_exceeded"))
    );
    assert_eq!(mock.requests().await, 12);
}

/// `catraca ledger …` against the test's database: (exit ok, stdout, stderr).
fn ledger_cli(pool: &PgPool, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_catraca"))
        .arg("ledger")
        .args(args)
        .env("DATABASE_URL", db_url(pool, None))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[sqlx::test(migrations = "./migrations")]
async fn the_ledger_cli_posts_idempotent_entries_and_refuses_bad_input(pool: PgPool) {
    let (org, _) = insert_key(&pool, "sk-ledger-cli-0001").await;
    let o = org.to_string();
    let post = |amount: &str, key: &str| {
        ledger_cli(
            &pool,
            &[
                "post",
                "--org",
                &o,
                "--kind",
                "topup",
                "--amount",
                amount,
                "--idempotency-key",
                key,
                "--description",
                "Pix",
            ],
        )
    };
    let (ok, out, err) = post("150.5", "pix-1");
    assert!(ok, "{err}");
    let e: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(e["amount_brl"], "150.5");
    assert_eq!(e["balance_after_brl"], "150.5");
    // the same key again: the same entry, nothing changes
    let (ok, again, _) = post("150.5", "pix-1");
    assert!(ok);
    assert_eq!(serde_json::from_str::<Value>(&again).unwrap(), e);
    assert_eq!(balance(&pool, org).await, 150_500_000);
    // refused, nothing written: reused key with another amount, bad amounts, unknown org
    for (amount, key, why) in [
        ("10", "pix-1", "idempotency key already used"),
        ("1.1234567", "pix-2", "more than 6 decimal places"),
        ("abc", "pix-3", "not a non-negative decimal"),
        ("-5", "pix-4", "a topup must be positive"),
    ] {
        let (ok, _, err) = post(amount, key);
        assert!(!ok && err.contains(why), "{amount}: {err}");
    }
    let (ok, _, err) = ledger_cli(
        &pool,
        &[
            "post",
            "--org",
            &uuid::Uuid::new_v4().to_string(),
            "--kind",
            "topup",
            "--amount",
            "1",
            "--idempotency-key",
            "x",
        ],
    );
    assert!(!ok && err.contains("organization not found"), "{err}");
    // a debit adjustment
    let (ok, out, err) = ledger_cli(
        &pool,
        &[
            "post",
            "--org",
            &o,
            "--kind",
            "adjustment",
            "--amount",
            "-0.5",
            "--idempotency-key",
            "fix-1",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("\"balance_after_brl\":\"150\""), "{out}");
    let (ok, out, _) = ledger_cli(&pool, &["show", "--org", &o]);
    assert!(ok);
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["balance_brl"], "150");
    let kinds: Vec<&str> = s["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["adjustment", "topup"]);
    assert_eq!(balance(&pool, org).await, 150_000_000);
}

/// A webhook receiver: answers 500 to the first POST and 200 after; keeps what it got.
async fn receiver() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>,
) {
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: axum::http::HeaderMap, body: String| {
            let g = g.clone();
            async move {
                let mut v = g.lock().unwrap();
                v.push((h, body));
                if v.len() == 1 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, got)
}

#[sqlx::test(migrations = "./migrations")]
async fn reaching_the_quota_delivers_usage_limit_reached_once_signed_and_retried(pool: PgPool) {
    let mock = Mock::start().await;
    let key = "sk-quota-hook-0123456789";
    let (org, _) = insert_key(&pool, key).await;
    on_quota_plan(&pool, org, 3, 0).await;
    let secret_key = "11".repeat(32);
    let sealed = catraca::secrets::SecretBox::from_hex(&secret_key)
        .unwrap()
        .seal(b"webhook_secret_key")
        .unwrap();
    let (url, got) = receiver().await;
    for events in [vec!["usage_limit_reached"], vec!["payment_failed"]] {
        sqlx::query(
            "INSERT INTO webhook (organization_id, url, events, secret_sealed) VALUES ($1, $2, $3, $4)",
        )
        .bind(org)
        .bind(&url)
        .bind(&events)
        .bind(&sealed)
        .execute(&pool)
        .await
        .unwrap();
    }
    let db = db_url(&pool, None);
    // the receivers run on this machine: loopback must be allowed for webhooks
    let gw = Gateway::start_with_env(
        &format!(
            "webhooks: {{allow_loopback: true}}\n{}",
            priced(&mock.base(), None)
        ),
        &[
            ("DATABASE_URL", db.as_str()),
            ("CATRACA_SECRET_KEY", secret_key.as_str()),
            ("CATRACA_WEBHOOK_POLL_MS", "100"),
        ],
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(send(&gw, key).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);

    // first attempt answered 500, the retry (2 s later) 200
    for _ in 0..100 {
        if got.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "one event, delivered on the second attempt");
    let (h, body) = &got[1];
    assert_eq!(h["x-catraca-event"], "usage_limit_reached");
    assert_eq!(h["x-catraca-delivery"], got[0].0["x-catraca-delivery"]);
    assert_eq!(&got[0].1, body, "the retry sends the same payload");
    let t = catraca::admin::webhooks::verify(
        b"webhook_secret_key",
        h["x-catraca-signature"].to_str().unwrap(),
        body.as_bytes(),
    )
    .expect("signed with the webhook's secret");
    assert!((time::OffsetDateTime::now_utc().unix_timestamp() - t).abs() < 60);
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["event"], "usage_limit_reached");
    assert_eq!(v["teamId"], json!(org));
    assert_eq!(
        (&v["usage"]["current"], &v["usage"]["limit"]),
        (&json!(3), &json!(3))
    );
    let (status, attempts, n): (String, i32, i64) =
        sqlx::query_as("SELECT min(status), min(attempts), count(*) FROM webhook_delivery")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts, n), ("delivered", 2, 1));
    let triggered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook WHERE last_triggered_at IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(triggered, 1, "only the subscribed webhook");
}
