//! The running totals and rollups of migration 0030, which Tokia's wallet, `usage/by-key` and
//! `me/sessions` read instead of the whole ledger or every event of a window
//! (loadtests/tokia_scale.sh): each must equal, to the micro-real, what it stands for — the
//! ledger totals the sums of the entries after top-ups, usage, adjustments, a refund hold and
//! its approval; the per-key and per-session daily rollups the events, a replayed batch counted
//! once, another organization's events apart, windows cut at UTC days.

use std::time::{Duration, Instant};

use catraca::domain::money::Micros;
use catraca::store::ledger::{WalletRow, summed, wallet};
use catraca::usage::UsageEvent;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::common::*;

const MASTER: &str = "tokia-totals-master-key-0123456789";
const R: i64 = 1_000_000;

/// `m`: $0.000123 a request (R$ 0.000615 at FX 5).
fn config(mock: &Mock) -> String {
    format!(
        "pricing: {{fx_usd_brl: \"5.0\", default_markup: \"1.0\"}}\nproviders:\n  - {{name: a, base_url: \"{}\", forward_headers: [x-mock-*]}}\ndeployments:\n  - {{name: da, provider: a, model: up}}\nmodels:\n  - {{name: m, usd_per_request: \"0.000123\", deployments: [da]}}\n  - {{name: m2, usd_per_request: \"0.01\", deployments: [da]}}\n",
        mock.base()
    )
}

async fn start(pool: &PgPool) -> (Mock, Gateway) {
    let mock = Mock::start().await;
    let gw = Gateway::start_with_env(
        &config(&mock),
        &[
            ("DATABASE_URL", &db_url(pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
        ],
    )
    .await;
    (mock, gw)
}

/// An operator ledger entry of `kind` and `amount` (a decimal string).
async fn post(gw: &Gateway, org: &str, kind: &str, amount: &str, idem: &str) {
    let r = reqwest::Client::new()
        .post(gw.url(&format!("/admin/v1/organizations/{org}/ledger")))
        .bearer_auth(MASTER)
        .header("Idempotency-Key", idem)
        .header("content-type", "application/json")
        .body(json!({"kind": kind, "amount_brl": amount}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{kind} {amount}");
}

/// The wallet as the routes read it (the running totals), checked equal to the sums of the
/// entries, and to the balance column through the identity.
async fn checked(pool: &PgPool, org: &str) -> WalletRow {
    let org: Uuid = org.parse().unwrap();
    let w = wallet(pool, org).await.unwrap().unwrap();
    assert_eq!(
        w,
        summed(pool, org).await.unwrap().unwrap(),
        "totals = sums"
    );
    if let Some(b) = w.balance {
        assert_eq!(b, w.topped_up - w.spent - w.refunded - w.held, "identity");
    }
    w
}

fn prepaid(balance: i64, topped_up: i64, spent: i64, refunded: i64, held: i64) -> WalletRow {
    WalletRow {
        balance: Some(balance),
        topped_up,
        spent,
        refunded,
        held,
        topups: 1,
    }
}

/// A usage event of `org` as the gateway writes it.
fn event(id: &str, org: Uuid, key: Option<Uuid>, at: OffsetDateTime, billed: i64) -> UsageEvent {
    UsageEvent {
        request_id: id.into(),
        ts: at,
        key: Some("k".into()),
        organization_id: Some(org),
        api_key_id: key,
        route: "chat.completions".into(),
        model: Some("m".into()),
        deployment: Some("da".into()),
        provider: Some("a".into()),
        status: 200,
        error: None,
        attempts: 1,
        stream: false,
        prompt_tokens: 10,
        completion_tokens: 5,
        usage_reported: true,
        cached_tokens: 0,
        cache_write_tokens: 0,
        reasoning_tokens: 0,
        cost_upstream_usd_micros: Some(billed / 5),
        cost_billed_brl_micros: Some(billed),
        latency_ms: 250,
        ttft_ms: Some(100),
        session_id: None,
        client_disconnected: false,
        client_request_id: None,
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn ledger_totals_equal_the_sums_of_the_entries(pool: PgPool) {
    let (_mock, gw) = start(&pool).await;
    let a = Tenant::make(&gw, MASTER, "Totals A", Some("10.00")).await;
    let b = Tenant::make(&gw, MASTER, "Totals B", Some("5.00")).await;
    assert_eq!(
        checked(&pool, &a.org).await,
        prepaid(10 * R, 10 * R, 0, 0, 0)
    );

    // usage through the gateway: 3 × R$ 0.000615
    let t0 = Instant::now();
    while chat_status(&gw, &a.key, "m").await != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "no funds at the gateway"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..2 {
        assert_eq!(chat_status(&gw, &a.key, "m").await, 200);
    }
    let t0 = Instant::now();
    while checked(&pool, &a.org).await.spent != 1_845 {
        assert!(t0.elapsed() < Duration::from_secs(10), "usage not written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // adjustments both ways and a refund credit count in topped_up
    post(&gw, &a.org, "adjustment", "-1.50", "adj-1").await;
    post(&gw, &a.org, "adjustment", "0.000001", "adj-2").await;
    post(&gw, &a.org, "refund", "0.25", "credit-1").await;
    let topped_up = 10 * R - 1_500_000 + 1 + 250_000;
    assert_eq!(
        checked(&pool, &a.org).await,
        prepaid(topped_up - 1_845, topped_up, 1_845, 0, 0)
    );

    // a refund request holds its amount; its approval releases the hold and pays it out
    let (s, r) = call(
        &gw,
        "POST",
        "/v1/me/refunds",
        Some(&a.key),
        Some(json!({"amount_brl": "5.00"})),
    )
    .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(
        checked(&pool, &a.org).await,
        prepaid(topped_up - 1_845 - 5 * R, topped_up, 1_845, 0, 5 * R)
    );
    let id = r["id"].as_str().unwrap();
    let (s, v) = call(
        &gw,
        "POST",
        &format!("/admin/v1/refunds/{id}/approve"),
        Some(MASTER),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let after_refund = prepaid(topped_up - 1_845 - 5 * R, topped_up, 1_845, 5 * R, 0);
    assert_eq!(checked(&pool, &a.org).await, after_refund);

    // the usage writer's batch, replayed: debited once
    let org: Uuid = a.org.parse().unwrap();
    let key: Uuid = a.key_id.parse().unwrap();
    let now = OffsetDateTime::now_utc();
    let batch = [
        event("req_totals_1", org, Some(key), now, 1_000),
        event("req_totals_2", org, Some(key), now, 2_345),
    ];
    catraca::usage::pg::insert(&pool, &batch).await.unwrap();
    catraca::usage::pg::insert(&pool, &batch).await.unwrap();
    assert_eq!(
        checked(&pool, &a.org).await,
        WalletRow {
            balance: Some(after_refund.balance.unwrap() - 3_345),
            spent: 1_845 + 3_345,
            ..after_refund
        }
    );

    // what the routes render is the totals
    let (s, sum) = call(&gw, "GET", "/v1/me/usage-summary", Some(&a.key), None).await;
    assert_eq!(s, 200, "{sum}");
    let w = checked(&pool, &a.org).await;
    for (f, m) in [
        ("balance_brl", w.balance.unwrap()),
        ("total_topped_up_brl", w.topped_up),
        ("total_spent_brl", w.spent),
        ("total_refunded_brl", w.refunded),
        ("held_brl", w.held),
    ] {
        assert_eq!(sum[f], Micros(m).json_number(), "{f}: {sum}");
    }

    // another organization's totals are its own; a postpaid one has none
    assert_eq!(checked(&pool, &b.org).await, prepaid(5 * R, 5 * R, 0, 0, 0));
    let (s, post_org) = call(
        &gw,
        "POST",
        "/admin/v1/organizations",
        Some(MASTER),
        Some(json!({"name": "Totals Postpaid", "prepaid": false})),
    )
    .await;
    assert_eq!(s, 201, "{post_org}");
    assert_eq!(
        checked(&pool, post_org["id"].as_str().unwrap()).await,
        WalletRow {
            balance: None,
            topped_up: 0,
            spent: 0,
            refunded: 0,
            held: 0,
            topups: 0
        }
    );
}

/// Rows of `sql` (ordered, every column cast to text) as JSON arrays, to compare tables.
async fn rows(pool: &PgPool, sql: &str) -> Vec<Value> {
    sqlx::query_scalar::<_, Value>(&format!(
        "SELECT coalesce(json_agg(to_json(r)), '[]')::jsonb FROM ({sql}) r"
    ))
    .fetch_one(pool)
    .await
    .unwrap()
    .as_array()
    .unwrap()
    .clone()
}

fn at(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        v.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn key_and_session_rollups_equal_the_events(pool: PgPool) {
    let (_mock, gw) = start(&pool).await;
    let a = Tenant::make(&gw, MASTER, "Rollups A", Some("10.00")).await;
    let b = Tenant::make(&gw, MASTER, "Rollups B", Some("10.00")).await;
    let (s, k2) = call(
        &gw,
        "POST",
        "/admin/v1/keys",
        Some(MASTER),
        Some(json!({"organization_id": a.org, "user_id": a.user, "prefix": "sk-tokia-", "name": "k2"})),
    )
    .await;
    assert_eq!(s, 201, "{k2}");
    let (org, org_b): (Uuid, Uuid) = (a.org.parse().unwrap(), b.org.parse().unwrap());
    let (k1, k2): (Uuid, Uuid) = (
        a.key_id.parse().unwrap(),
        k2["id"].as_str().unwrap().parse().unwrap(),
    );
    let kb: Uuid = b.key_id.parse().unwrap();

    // whole seconds past today's and yesterday's UTC midnight, and 40 days back
    let today = OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT);
    let day = time::Duration::DAY;
    let sec = time::Duration::seconds;
    let ev = |id: &str,
              o: Uuid,
              k: Option<Uuid>,
              t: OffsetDateTime,
              billed: i64,
              model: Option<&str>,
              session: Option<&str>| {
        let mut e = event(id, o, k, t, billed);
        e.model = model.map(Into::into);
        e.session_id = session.map(Into::into);
        e
    };
    let mut failed = ev(
        "r6",
        org,
        Some(k2),
        today + sec(50),
        0,
        Some("m"),
        Some("s2"),
    );
    (
        failed.status,
        failed.prompt_tokens,
        failed.completion_tokens,
    ) = (500, 0, 0);
    failed.cost_upstream_usd_micros = Some(0);
    let first = vec![
        ev(
            "r1",
            org,
            Some(k1),
            today + sec(10),
            100,
            Some("m"),
            Some("s1"),
        ),
        ev(
            "r2",
            org,
            Some(k1),
            today - day + sec(20),
            200,
            Some("m2"),
            Some("s1"),
        ),
        ev(
            "r3",
            org,
            Some(k1),
            today - day + sec(30),
            300,
            Some("m"),
            Some("s1"),
        ),
        ev(
            "r4",
            org,
            Some(k2),
            today + sec(40),
            400,
            Some("m2"),
            Some("s2"),
        ),
    ];
    let second = vec![
        ev(
            "r5",
            org,
            Some(k2),
            today - day * 40 + sec(5),
            0,
            None,
            None,
        ),
        failed,
        // no key: in the sessions, not in by-key
        ev("r7", org, None, today + sec(60), 50, Some("m"), Some("s3")),
        // another organization, the same session id
        ev(
            "r8",
            org_b,
            Some(kb),
            today + sec(70),
            999,
            Some("m"),
            Some("s1"),
        ),
    ];
    catraca::usage::pg::insert(&pool, &first).await.unwrap();
    catraca::usage::pg::insert(&pool, &second).await.unwrap();
    catraca::usage::pg::insert(&pool, &first).await.unwrap(); // a replay: no row added

    // the rollups are the events' sums, row for row
    let by_key = "SELECT organization_id, (created_at AT TIME ZONE 'UTC')::date AS day, api_key_id,
                         coalesce(model, '') AS model, count(*)::int8 AS requests,
                         sum(prompt_tokens)::int8 AS prompt_tokens,
                         sum(completion_tokens)::int8 AS completion_tokens,
                         sum(cost_upstream_usd_micros)::int8 AS cost_usd_micros,
                         sum(cost_billed_brl_micros)::int8 AS cost_billed_brl_micros,
                         max(created_at) AS last_request_at
                  FROM usage_event WHERE organization_id IS NOT NULL AND api_key_id IS NOT NULL
                  GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4";
    let key_rollup = rows(
        &pool,
        "SELECT organization_id, day, api_key_id, model, requests, prompt_tokens,
                completion_tokens, cost_usd_micros, cost_billed_brl_micros, last_request_at
         FROM usage_key_daily ORDER BY 1, 2, 3, 4",
    )
    .await;
    assert_eq!(key_rollup.len(), 7, "{key_rollup:?}");
    assert_eq!(key_rollup, rows(&pool, by_key).await);
    let by_session = "SELECT organization_id, (created_at AT TIME ZONE 'UTC')::date AS day, session_id,
                             coalesce(model, '') AS model, count(*)::int8 AS requests,
                             sum(prompt_tokens)::int8 AS prompt_tokens,
                             sum(completion_tokens)::int8 AS completion_tokens,
                             sum(cost_billed_brl_micros)::int8 AS cost_billed_brl_micros,
                             min(created_at - latency_ms * interval '1 millisecond') AS first_start_at,
                             min(created_at) AS first_request_at, max(created_at) AS last_request_at
                      FROM usage_event WHERE organization_id IS NOT NULL AND session_id IS NOT NULL
                      GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4";
    let session_rollup = rows(
        &pool,
        "SELECT organization_id, day, session_id, model, requests, prompt_tokens,
                completion_tokens, cost_billed_brl_micros, first_start_at, first_request_at,
                last_request_at
         FROM usage_session_daily ORDER BY 1, 2, 3, 4",
    )
    .await;
    assert_eq!(session_rollup.len(), 7, "{session_rollup:?}");
    assert_eq!(session_rollup, rows(&pool, by_session).await);

    // usage/by-key: windows of whole UTC days; top models by billed amount, none without one
    let key_of = |v: &Value, id: Uuid| -> Value {
        let k = v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id.to_string().as_str())
            .unwrap()
            .clone();
        json!([
            k["requests"],
            k["cost_billed_brl"],
            k["top_models"],
            k["prompt_tokens"]
        ])
    };
    let brl = |m: i64| Micros(m).json_number();
    for (days, want1, want2) in [
        (
            1,
            json!([1, brl(100), ["m"], 10]),
            json!([2, brl(400), ["m2", "m"], 10]),
        ),
        (
            2,
            json!([3, brl(600), ["m", "m2"], 30]),
            json!([2, brl(400), ["m2", "m"], 10]),
        ),
        (
            365,
            json!([3, brl(600), ["m", "m2"], 30]),
            json!([3, brl(400), ["m2", "m"], 20]),
        ),
    ] {
        let (s, v) = call(
            &gw,
            "GET",
            &format!("/v1/usage/by-key?days={days}"),
            Some(&a.key),
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["keys"].as_array().unwrap().len(), 2, "{v}");
        assert_eq!(
            (key_of(&v, k1), key_of(&v, k2)),
            (want1, want2),
            "days={days}: {v}"
        );
    }
    let (_, v) = call(&gw, "GET", "/v1/usage/by-key?days=2", Some(&a.key), None).await;
    let k = &v["keys"][0];
    assert_eq!(k["id"], k1.to_string().as_str(), "most billed first: {v}");
    assert_eq!(at(&k["last_request_at"]), today + sec(10));

    // me/sessions: totals over the window's events only; organization B's s1 apart
    let session = |v: &Value, id: &str| -> Value {
        let s = v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["session_id"] == id)
            .unwrap_or_else(|| panic!("{id} missing: {v}"))
            .clone();
        json!([
            s["request_count"],
            s["total_billed_brl"],
            s["models"],
            s["total_tokens"]
        ])
    };
    let (s, d1) = call(&gw, "GET", "/v1/me/sessions?days=1", Some(&a.key), None).await;
    assert_eq!(s, 200, "{d1}");
    assert_eq!(d1["count"], 3, "{d1}");
    assert_eq!(session(&d1, "s1"), json!([1, brl(100), ["m"], 15]));
    assert_eq!(session(&d1, "s2"), json!([2, brl(400), ["m", "m2"], 15]));
    assert_eq!(session(&d1, "s3"), json!([1, brl(50), ["m"], 15]));
    let s1 = d1["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["session_id"] == "s1")
        .unwrap();
    assert_eq!(
        (at(&s1["first_request_at"]), s1["duration_ms"].as_i64()),
        (today + sec(10), Some(250))
    );
    let (s, d2) = call(&gw, "GET", "/v1/me/sessions?days=2", Some(&a.key), None).await;
    assert_eq!(s, 200, "{d2}");
    assert_eq!(
        d2["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["session_id"].clone())
            .collect::<Vec<_>>(),
        ["s3", "s2", "s1"],
        "newest last request first: {d2}"
    );
    assert_eq!(session(&d2, "s1"), json!([3, brl(600), ["m", "m2"], 45]));
    let s1 = d2["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["session_id"] == "s1")
        .unwrap();
    assert_eq!(at(&s1["first_request_at"]), today - day + sec(20));
    assert_eq!(at(&s1["last_request_at"]), today + sec(10));
    // last end − first start: one day, minus 10 s, plus the first request's 250 ms
    assert_eq!(s1["duration_ms"].as_i64(), Some(86_400_000 - 10_000 + 250));
}
