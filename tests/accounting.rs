//! Exact accounting under load: 20,000 mixed requests (streams and not, four keys in two
//! organizations, two models, one in ten a stream its client abandons, a primary deployment
//! failing one request in twenty) through two gateway nodes sharing Postgres and Redis. Usage
//! rows equal requests, reported token sums equal what the mocks reported, the prepaid
//! organization's ledger equals its billed usage, once per request, and its balance adds up.
//! `CATRACA_ACCOUNTING_REQUESTS` changes the count (for longer runs by hand).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use sqlx::PgPool;

use crate::common::*;

#[sqlx::test(migrations = "./migrations")]
async fn twenty_thousand_mixed_requests_on_two_nodes_are_accounted_exactly(pool: PgPool) {
    let total: u64 = std::env::var("CATRACA_ACCOUNTING_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (a, b) = (Mock::start().await, Mock::start().await);
    a.set(json!({"fail_status": 500, "fail_rate": 0.05})).await;

    // two organizations (one prepaid), two keys each, all with Redis-counted limits
    let keys: Vec<String> = (0..4).map(|i| fresh_key(&format!("acct{i}"))).collect();
    let (org_p, _) = insert_key(&pool, &keys[0]).await;
    add_key(&pool, org_p, &keys[1]).await;
    let (org_n, _) = insert_key(&pool, &keys[2]).await;
    add_key(&pool, org_n, &keys[3]).await;
    sqlx::query("UPDATE api_key SET rate_limit_rpm = 100000000")
        .execute(&pool)
        .await
        .unwrap();
    let topup = 1_000_000_000i64; // R$ 1000
    catraca::store::ledger::post(&pool, org_p, "topup", topup, "acct-topup", None)
        .await
        .unwrap();

    let redis =
        std::env::var("CATRACA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let body = format!(
        r#"limits: {{redis_url: "{redis}", on_redis_error: local}}
pricing: {{fx_usd_brl: "5.4", default_markup: "1.0"}}
failover: {{max_attempts: 2, failures_to_trip: 1000000, cooldown_ms: 100}}
providers:
  - {{name: pa, base_url: "{}", forward_headers: [x-mock-*]}}
  - {{name: pb, base_url: "{}", forward_headers: [x-mock-*]}}
deployments:
  - {{name: da, provider: pa, model: up-a, priority: 0}}
  - {{name: db, provider: pb, model: up-b, priority: 1}}
  - {{name: db2, provider: pb, model: up-b2}}
models:
  - {{name: chat-a, input_usd_per_1m: "1.25", output_usd_per_1m: "3.333333", markup_multiplier: "1.3", deployments: [da, db]}}
  - {{name: chat-b, input_usd_per_1m: "0.15", output_usd_per_1m: "0.6", usd_per_request: "0.000001", deployments: [db2]}}
"#,
        a.base(),
        b.base()
    );
    let url = db_url(&pool, None);
    let nodes = Arc::new([
        Gateway::start_with_env(&body, &[("DATABASE_URL", &url)]).await,
        Gateway::start_with_env(&body, &[("DATABASE_URL", &url)]).await,
    ]);

    let next = Arc::new(AtomicU64::new(0));
    let (aborted, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let keys = Arc::new(keys);
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (nodes, next, aborted, bad, keys) = (
            nodes.clone(),
            next.clone(),
            aborted.clone(),
            bad.clone(),
            keys.clone(),
        );
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let gw = &nodes[(i % 2) as usize];
                let key = &keys[(i / 2 % 4) as usize];
                let model = if i % 3 == 0 { "chat-b" } else { "chat-a" };
                let abandon = i % 10 == 7;
                let stream = abandon || i % 2 == 0;
                let words = "palavra ".repeat((i % 17) as usize);
                let mut rb = client
                    .post(gw.url("/v1/chat/completions"))
                    .bearer_auth(key)
                    .header("content-type", "application/json")
                    .body(
                        json!({"model": model, "stream": stream, "max_tokens": 64,
                               "messages": [{"role": "user", "content": words}]})
                        .to_string(),
                    );
                if abandon {
                    // a long, slow stream the client leaves after its first chunk
                    rb = rb
                        .header("x-mock-chunks", "30")
                        .header("x-mock-chunk-delay-ms", "20");
                } else {
                    rb = rb.header("x-mock-chunks", (1 + i % 6).to_string());
                }
                let r = rb.send().await.unwrap();
                if r.status() != 200 {
                    bad.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if abandon {
                    let mut s = r.bytes_stream();
                    let _ = s.next().await;
                    drop(s);
                    aborted.fetch_add(1, Ordering::Relaxed);
                } else {
                    let t = r.text().await.unwrap();
                    if stream && !t.ends_with("data: [DONE]\n\n") {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = t0.elapsed();
    assert_eq!(bad.load(Ordering::Relaxed), 0, "requests failed");

    // every request is one usage row
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_event")
            .fetch_one(&pool)
            .await
            .unwrap();
        if n as u64 >= total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{n} usage rows for {total} requests"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT request_id) FROM usage_event")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((rows as u64, distinct as u64), (total, total));
    let disconnected: i64 =
        sqlx::query_scalar("SELECT count(*) FROM usage_event WHERE client_disconnected")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(disconnected as u64, aborted.load(Ordering::Relaxed));

    // reported tokens: exactly what the mocks sent
    let (p, c): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(prompt_tokens),0)::int8, coalesce(sum(completion_tokens),0)::int8
         FROM usage_event WHERE usage_reported",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let (sa, sb) = (a.stats().await, b.stats().await);
    let sent = |k: &str| sa[k].as_u64().unwrap() + sb[k].as_u64().unwrap();
    assert_eq!(p as u64, sent("reported_prompt_tokens"));
    assert_eq!(c as u64, sent("reported_completion_tokens"));
    let failovers: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_event WHERE attempts = 2")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(failovers > 0, "no fault was injected");

    // the prepaid organization: one ledger debit per billed request, summing to its usage
    let (billed, billed_n): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(cost_billed_brl_micros),0)::int8, count(*) FROM usage_event
         WHERE organization_id = $1 AND cost_billed_brl_micros > 0",
    )
    .bind(org_p)
    .fetch_one(&pool)
    .await
    .unwrap();
    let (debits, debit_n, debit_ids): (i64, i64, i64) = sqlx::query_as(
        "SELECT coalesce(-sum(amount_brl_micros),0)::int8, count(*), count(DISTINCT request_id)
         FROM ledger_entry WHERE organization_id = $1 AND kind = 'usage'",
    )
    .bind(org_p)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(billed > 0);
    assert_eq!(
        (debits, debit_n),
        (billed, billed_n),
        "ledger ≠ billed usage"
    );
    assert_eq!(debit_ids, debit_n, "a request was charged twice");
    let balance: i64 = sqlx::query_scalar(
        "SELECT balance_brl_micros FROM organization WHERE organization_id = $1",
    )
    .bind(org_p)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(balance, topup - billed);
    assert!(balance >= 0);
    // the organization without a balance has no ledger at all
    let other: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ledger_entry WHERE organization_id = $1")
            .bind(org_n)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(other, 0);
    eprintln!(
        "accounting: {total} requests in {elapsed:?} ({:.0}/s) on two nodes, {} abandoned, {failovers} failed over, billed R$ {:.6} in {billed_n} ledger debits",
        total as f64 / elapsed.as_secs_f64(),
        aborted.load(Ordering::Relaxed),
        billed as f64 / 1e6
    );
}
