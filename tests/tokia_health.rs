//! Tokia's `GET /v1/upstream-health` and breaker incidents (#14 item 10): every upstream
//! attempt counted per provider (failed connects included) in the hourly rollup the gateway
//! writes every 5 s; a provider whose circuit opens gets one `breaker` incident in
//! `/v1/incidents/active`, resolved once no gateway has seen the circuit open for a while.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::*;

const MASTER: &str = "tokia-health-master-key-0123456789";

/// `dead` (nothing listens) is tried first, `live` (the mock) second; two failures open the
/// dead deployment's circuit for 1.5 s.
fn config(mock: &Mock, dead_port: u16) -> String {
    format!(
        "failover: {{failures_to_trip: 2, cooldown_ms: 1500}}\nproviders:\n  - {{name: dead, base_url: \"http://127.0.0.1:{dead_port}/v1\"}}\n  - {{name: live, base_url: \"{}\"}}\ndeployments:\n  - {{name: dd, provider: dead, model: up, priority: 0}}\n  - {{name: dl, provider: live, model: up, priority: 1}}\nmodels:\n  - {{name: m, deployments: [dd, dl]}}\n",
        mock.base()
    )
}

async fn get(gw: &Gateway, path: &str) -> (u16, Value) {
    call(gw, "GET", path, None, None).await
}

/// Poll `path` until `done` holds (at most 15 s: the rollup is written every 5 s).
async fn until(gw: &Gateway, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let t0 = Instant::now();
    loop {
        let (s, v) = get(gw, path).await;
        assert_eq!(s, 200, "{v}");
        if done(&v) {
            return v;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "never: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn provider<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == name)
}

#[sqlx::test(migrations = "./migrations")]
async fn attempts_roll_up_per_provider_and_an_open_breaker_is_an_incident(pool: PgPool) {
    let mock = Mock::start().await;
    let dead = free_port();
    let gw = Gateway::start_with_env(
        &config(&mock, dead),
        &[
            ("DATABASE_URL", &db_url(&pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
        ],
    )
    .await;

    // public, and the period is checked, not clamped
    for bad in ["0", "91", "abc", "1.5", "-1", "99999999999999999999"] {
        let (s, e) = get(&gw, &format!("/v1/upstream-health?days={bad}")).await;
        assert_eq!(s, 400, "{bad}: {e}");
        assert_eq!(e["error"]["code"], "invalid_parameter", "{e}");
    }
    let (s, empty) = get(&gw, "/v1/upstream-health").await;
    assert_eq!(s, 200);
    assert_eq!(empty, json!({"period_days": 30, "providers": []}));

    // 5 chats: the first two try `dead` (a refused connect each), then its circuit is open
    // and every chat goes straight to `live`
    for _ in 0..5 {
        assert_eq!(chat_status(&gw, KEY, "m").await, 200);
    }
    let h = until(&gw, "/v1/upstream-health?days=1", |v| {
        provider(v, "live").is_some_and(|p| p["attempts"] == 5)
    })
    .await;
    assert_eq!(h["period_days"], 1);
    let d = provider(&h, "dead").unwrap();
    assert_eq!(
        (
            d["attempts"].clone(),
            d["failures"].clone(),
            d["uptime_pct"].clone()
        ),
        (json!(2), json!(2), json!(0)),
        "{h}"
    );
    assert_eq!(d["latency_p50_ms"], Value::Null, "no answer, no latency");
    let l = provider(&h, "live").unwrap();
    assert_eq!(
        (l["failures"].clone(), l["uptime_pct"].clone()),
        (json!(0), json!(100))
    );
    let p50 = l["latency_p50_ms"].as_u64().unwrap();
    let p95 = l["latency_p95_ms"].as_u64().unwrap();
    assert!(p50 >= 1 && p50 <= p95 && p95 <= 1_000, "{l}");

    // the rollup holds exactly that, in one row per provider and hour
    let rows: Vec<(String, i64, i64, Vec<i64>)> = sqlx::query_as(
        "SELECT provider, attempts, failures, latency_counts FROM upstream_health_hour ORDER BY provider",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0].1, rows[0].2, rows[0].3.iter().sum::<i64>()),
        (2, 2, 0)
    );
    assert_eq!(
        (rows[1].1, rows[1].2, rows[1].3.iter().sum::<i64>()),
        (5, 0, 5)
    );

    // the open circuit is one breaker incident, beside the operator's
    let (s, _) = call(
        &gw,
        "POST",
        "/admin/v1/incidents",
        Some(MASTER),
        Some(json!({"title": "Manutenção", "severity": "maintenance", "message": "janela"})),
    )
    .await;
    assert_eq!(s, 201);
    let active = until(&gw, "/v1/incidents/active", |v| v["count"] == 2).await;
    let breaker: Vec<&Value> = active["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["source"] == "breaker")
        .collect();
    assert_eq!(breaker.len(), 1, "{active}");
    assert_eq!(breaker[0]["provider"], "dead");
    assert_eq!(breaker[0]["severity"], "major");
    assert!(breaker[0]["title"].as_str().unwrap().contains("dead"));

    // more failures while it is open change nothing: still one incident
    tokio::time::sleep(Duration::from_millis(1600)).await; // the cool-down ends
    assert_eq!(chat_status(&gw, KEY, "m").await, 200); // the probe fails: open again
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM incident WHERE source = 'breaker'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);

    // the gateway notes the re-opened circuit on its next round
    let t0 = Instant::now();
    loop {
        let noted: bool = sqlx::query_scalar(
            "SELECT last_seen_at > now() - interval '1 second' FROM incident WHERE source = 'breaker'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if noted {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the re-opened circuit is never seen"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // once no gateway has seen it open for 30 s it is resolved (the clock moved by hand)
    tokio::time::sleep(Duration::from_millis(1600)).await;
    sqlx::query(
        "UPDATE incident SET last_seen_at = now() - interval '1 minute' WHERE source = 'breaker'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let active = until(&gw, "/v1/incidents/active", |v| v["count"] == 1).await;
    assert_eq!(active["incidents"][0]["source"], "operator", "{active}");
    // and the gateway's next round marks it resolved
    let t0 = Instant::now();
    loop {
        let resolved: Option<time::OffsetDateTime> =
            sqlx::query_scalar("SELECT resolved_at FROM incident WHERE source = 'breaker'")
                .fetch_one(&pool)
                .await
                .unwrap();
        if resolved.is_some() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "never resolved");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
