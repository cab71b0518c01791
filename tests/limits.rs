//! Limits (#5): every kind at its threshold with headers, on the local and the Redis back end;
//! two gateways sharing Redis; Redis taken away mid-traffic; organization and plan limits.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::*;

/// The Redis the suite uses (started by `scripts/test.sh`).
fn redis_url() -> String {
    std::env::var("CATRACA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn hello() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hello there"}]})
}

fn limits_section(redis: Option<&str>, mode: &str) -> String {
    match redis {
        Some(url) => format!("limits: {{redis_url: \"{url}\", on_redis_error: {mode}}}\n"),
        None => String::new(),
    }
}

/// Redis limits for the two-node tests: a slow answer under a loaded machine must not make a
/// node fall back to counting alone (which the node may do, by design, past the timeout).
fn shared_redis_limits() -> String {
    format!(
        "limits: {{redis_url: \"{}\", on_redis_error: local, redis_timeout_ms: 3000}}\n",
        redis_url()
    )
}

/// Each limit kind, on one back end: refused exactly past its threshold, with headers.
async fn each_kind_at_threshold(redis: Option<&str>) {
    let mock = Mock::start().await;
    let (rps, rpm, rpd, tpm, conc) = (
        fresh_key("rps"),
        fresh_key("rpm"),
        fresh_key("rpd"),
        fresh_key("tpm"),
        fresh_key("conc"),
    );
    let keys = [
        key_line("rps", &rps, "rps: 3"),
        key_line("rpm", &rpm, "rpm: 4"),
        key_line("rpd", &rpd, "rpd: 2"),
        key_line("tpm", &tpm, "tpm: 200"),
        key_line("conc", &conc, "concurrency: 2"),
    ]
    .concat();
    let gw = Gateway::start(&format!(
        "{keys}{}{}",
        limits_section(redis, "local"),
        single_model(&mock, "m", "")
    ))
    .await;
    let backend = if redis.is_some() { "redis" } else { "local" };

    // requests per second
    room_in_window(1, Duration::from_millis(700)).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(chat(&gw, &rps, hello(), &[]).await);
    }
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 200, 429], "{backend}");
    let remaining: Vec<&str> = got
        .iter()
        .map(|r| r.h("x-ratelimit-remaining").unwrap())
        .collect();
    assert_eq!(remaining, ["2", "1", "0", "0"], "{backend}");
    let refused = &got[3];
    assert_eq!(refused.h("x-ratelimit-limit"), Some("3"));
    assert_eq!(refused.h("x-ratelimit-window"), Some("1"));
    assert_eq!(refused.h("retry-after"), Some("1"));
    assert_eq!(refused.body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(refused.body["error"]["type"], "rate_limit_error");

    // requests per minute and per day
    room_in_window(60, Duration::from_secs(10)).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(chat(&gw, &rpm, hello(), &[]).await);
    }
    assert_eq!(
        statuses.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 200, 200, 200, 429],
        "{backend}"
    );
    assert_eq!(statuses[4].h("x-ratelimit-window"), Some("60"));
    let retry: u64 = statuses[4].h("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(chat(&gw, &rpd, hello(), &[]).await.status);
    }
    assert_eq!(statuses, [200, 200, 429], "{backend}");

    // tokens per minute: admitted on prompt estimate + max_tokens, corrected to actual usage
    room_in_window(60, Duration::from_secs(10)).await;
    let big = json!({"model": "m", "max_tokens": 150,
        "messages": [{"role": "user", "content": "hello there"}]});
    let first = chat(&gw, &tpm, big.clone(), &[]).await;
    assert_eq!(first.status, 200, "{backend}");
    assert_eq!(first.h("x-ratelimit-limit"), Some("200"));
    // 3 + 1 (role) + 2 ("hello there") + 3 = 9 prompt tokens, + 150 = 159 counted
    assert_eq!(first.h("x-ratelimit-remaining"), Some("41"), "{backend}");
    let used = first.body["usage"]["total_tokens"].as_u64().unwrap();
    // the mock used far fewer than 159 tokens: once corrected, another 159 fit
    let mut second = chat(&gw, &tpm, big.clone(), &[]).await;
    // refusals while the correction was still in flight (settlements are sent off the request
    // path): each is one more `refused,tpm` decision in the metrics checked below
    let mut early_refusals = 0;
    for _ in 0..20 {
        if second.status == 200 {
            break;
        }
        early_refusals += 1;
        tokio::time::sleep(Duration::from_millis(50)).await; // correction still in flight
        second = chat(&gw, &tpm, big.clone(), &[]).await;
    }
    assert_eq!(
        second.status, 200,
        "{backend}: not corrected {:?}",
        second.body
    );
    assert_eq!(
        second.h("x-ratelimit-remaining"),
        Some((200 - used - 159).to_string().as_str()),
        "{backend}"
    );
    // 9 + 185 = 194 more cannot fit beside the 169 (or, once corrected, 20) already counted
    let third = chat(
        &gw,
        &tpm,
        json!({"model": "m", "max_tokens": 185,
            "messages": [{"role": "user", "content": "hello there"}]}),
        &[],
    )
    .await;
    assert_eq!(third.status, 429, "{backend}");
    let msg = third.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("200 tokens per minute"), "{msg}");
    assert_eq!(mock.requests().await as usize, 3 + 4 + 2 + 2, "{backend}");

    // concurrent requests
    let slow = [("x-mock-latency-ms", "600")];
    let burst =
        futures_util::future::join_all((0..4).map(|_| chat(&gw, &conc, hello(), &slow))).await;
    let mut statuses: Vec<u16> = burst.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 429, 429], "{backend}");
    let refused = burst.iter().find(|r| r.status == 429).unwrap();
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("in flight")
    );
    // slots are released when requests end
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again =
        futures_util::future::join_all((0..2).map(|_| chat(&gw, &conc, hello(), &[]))).await;
    assert!(
        again.iter().all(|r| r.status == 200),
        "{backend}: slots leaked"
    );

    let m = gw.metrics().await;
    assert!(
        m.contains(&format!(
            "catraca_limit_decisions_total{{backend=\"{backend}\",decision=\"refused\",reason=\"tpm\"}} {}",
            1 + early_refusals
        )),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_limit_kind_hits_exactly_at_its_threshold_locally() {
    each_kind_at_threshold(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_limit_kind_hits_exactly_at_its_threshold_in_redis() {
    each_kind_at_threshold(Some(&redis_url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_sharing_redis_enforce_one_combined_limit() {
    let mock = Mock::start().await;
    let key = fresh_key("shared");
    let body = format!(
        "{}{}{}",
        key_line("shared", &key, "rpm: 6, concurrency: 3"),
        shared_redis_limits(),
        single_model(&mock, "m", "")
    );
    let (a, b) = (Gateway::start(&body).await, Gateway::start(&body).await);
    room_in_window(60, Duration::from_secs(10)).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let gw = if i % 2 == 0 { &a } else { &b };
        statuses.push(chat(gw, &key, hello(), &[]).await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 429, 429]);
    assert_eq!(mock.requests().await, 6);
    // in-flight requests are shared too: 3 slow ones on A leave no slot on B
    let key2 = fresh_key("shared");
    let body2 = format!(
        "{}{}{}",
        key_line("c", &key2, "concurrency: 3"),
        shared_redis_limits(),
        single_model(&mock, "m", "")
    );
    let (c, d) = (Gateway::start(&body2).await, Gateway::start(&body2).await);
    let slow = [("x-mock-latency-ms", "800")];
    let on_c = futures_util::future::join_all((0..3).map(|_| chat(&c, &key2, hello(), &slow)));
    let on_d = async {
        // once the 3 slow ones reached the mock (they hold their slots for 800 ms), not after
        // a fixed pause a loaded machine may not honour
        let t0 = std::time::Instant::now();
        while mock.requests().await < 9 {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "the slow requests did not start"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        chat(&d, &key2, hello(), &[]).await.status
    };
    let (c_replies, d_status) = tokio::join!(on_c, on_d);
    assert!(c_replies.iter().all(|r| r.status == 200));
    assert_eq!(d_status, 429, "the other node must see the 3 slots taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_falls_back_as_configured_and_recovers() {
    let mock = Mock::start().await;
    let redis_addr: std::net::SocketAddr =
        redis_url().trim_start_matches("redis://").parse().unwrap();
    let proxy = TcpCut::start(redis_addr).await;
    let via = format!("redis://127.0.0.1:{}", proxy.port);
    let (big, tight) = (fresh_key("big"), fresh_key("tight"));
    let keys = format!(
        "{}{}",
        key_line("big", &big, "rpm: 100000"),
        key_line("tight", &tight, "rpm: 3")
    );
    let start = |mode: &'static str| {
        let body = format!(
            "{keys}limits: {{redis_url: \"{via}\", on_redis_error: {mode}, redis_timeout_ms: 100}}\n{}",
            single_model(&mock, "m", "")
        );
        async move { Gateway::start(&body).await }
    };
    let (local, open, closed) = (
        start("local").await,
        start("open").await,
        start("closed").await,
    );

    // traffic on all three while Redis goes away and comes back: never a 5xx
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = |gw: &Gateway| {
        let url = gw.url("/v1/chat/completions");
        let (stop, big) = (stop.clone(), big.clone());
        tokio::spawn(async move {
            let c = reqwest::Client::new();
            let mut seen = std::collections::BTreeMap::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = c
                    .post(&url)
                    .bearer_auth(&big)
                    .header("content-type", "application/json")
                    .body(hello().to_string())
                    .send()
                    .await
                    .unwrap();
                *seen.entry(r.status().as_u16()).or_insert(0u32) += 1;
            }
            seen
        })
    };
    let runs = [traffic(&local), traffic(&open), traffic(&closed)];
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(800)).await;

    // while Redis is away: local counts here, open lets through, closed refuses with 429
    room_in_window(60, Duration::from_secs(5)).await;
    let mut s = Vec::new();
    for _ in 0..4 {
        s.push(chat(&local, &tight, hello(), &[]).await.status);
    }
    assert_eq!(s, [200, 200, 200, 429], "local fallback enforces the limit");
    let r = chat(&open, &tight, hello(), &[]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.h("x-ratelimit-limit").is_none(),
        "open: nothing was counted"
    );
    let r = chat(&closed, &tight, hello(), &[]).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["error"]["code"], "limiter_unavailable");
    assert_eq!(r.h("retry-after"), Some("1"));
    // a key without limits never asks the limiter
    assert_eq!(chat(&closed, KEY, hello(), &[]).await.status, 200);
    let m = local.metrics().await;
    assert!(m.contains("\ncatraca_limiter_redis_up 0\n"), "{m}");
    assert!(
        m.contains("catraca_limiter_fallback_total{mode=\"local\"}"),
        "{m}"
    );
    assert!(local.log().contains("Redis limiter unreachable"));

    proxy.restore();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    for gw in [&local, &open, &closed] {
        while !gw
            .metrics()
            .await
            .contains("\ncatraca_limiter_redis_up 1\n")
        {
            assert!(std::time::Instant::now() < deadline, "{}", gw.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let r = chat(&closed, &tight, hello(), &[]).await;
    assert_eq!(
        r.status, 200,
        "closed serves again once Redis answers: {:?}",
        r.body
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for (run, name) in runs.into_iter().zip(["local", "open", "closed"]) {
        let seen = run.await.unwrap();
        assert!(
            seen.keys().all(|s| *s == 200 || *s == 429),
            "{name}: {seen:?}"
        );
        assert!(
            seen.get(&200).copied().unwrap_or(0) > 10,
            "{name}: {seen:?}"
        );
        if name != "closed" {
            assert_eq!(seen.get(&429), None, "{name}: {seen:?}");
        }
    }
    assert!(local.log().contains("limits are shared again"));
    let m = local.metrics().await;
    assert!(
        m.contains(
            "catraca_limit_decisions_total{backend=\"redis\",decision=\"allowed\",reason=\"ok\"}"
        ),
        "{m}"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn organization_and_plan_limits_are_shared_by_the_keys_of_an_organization(pool: PgPool) {
    let mock = Mock::start().await;
    let (a, b) = (fresh_key("orga"), fresh_key("orgb"));
    let (org, _) = insert_key(&pool, &a).await;
    add_key(&pool, org, &b).await;
    // SabIA's sandbox plan: 5 requests per second for the whole team
    set_plan(&pool, org, "sandbox").await;
    let url = db_url(&pool, None);
    let gw = Gateway::start_with_env(
        &format!(
            "{}{}",
            limits_section(Some(&redis_url()), "local"),
            single_model(&mock, "m", "")
        ),
        &[("DATABASE_URL", url.as_str())],
    )
    .await;
    room_in_window(60, Duration::from_secs(15)).await;
    room_in_window(1, Duration::from_millis(700)).await;
    let mut got = Vec::new();
    for i in 0..6 {
        let key = if i % 2 == 0 { &a } else { &b };
        got.push(chat(&gw, key, hello(), &[]).await);
    }
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    assert_eq!(got[5].h("x-ratelimit-limit"), Some("5"));
    assert_eq!(got[5].h("x-ratelimit-window"), Some("1"));

    // the organization's own limit wins over its plan's, and reaches the gateway at once
    sqlx::query("UPDATE organization SET rate_limit_rpm = 7 WHERE organization_id = $1")
        .bind(org)
        .execute(&pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut statuses = Vec::new();
    for i in 0..3 {
        let key = if i % 2 == 0 { &a } else { &b };
        statuses.push(chat(&gw, key, hello(), &[]).await);
    }
    assert_eq!(
        statuses.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 200, 429],
        "5 of 7 were used in this minute"
    );
    assert_eq!(statuses[2].h("x-ratelimit-limit"), Some("7"));
    assert_eq!(statuses[2].h("x-ratelimit-window"), Some("60"));
}

/// Tokia's `/v1/usage/rate-limit` on one back end: the organization's keys, their use this
/// minute from the enforcing counters (agreeing with the headers), headroom, history.
async fn rate_limit_report(pool: PgPool, redis: Option<&str>) {
    let mock = Mock::start().await;
    let (a, b, other) = (fresh_key("rla"), fresh_key("rlb"), fresh_key("rlc"));
    let (org, a_id) = insert_key(&pool, &a).await;
    sqlx::query(
        "UPDATE api_key SET rate_limit_rpm = 10, rate_limit_tpm = 10000 WHERE api_key_id = $1",
    )
    .bind(a_id)
    .execute(&pool)
    .await
    .unwrap();
    add_key(&pool, org, &b).await;
    insert_key(&pool, &other).await; // another organization's key
    let url = db_url(&pool, None);
    let gw = Gateway::start_with_env(
        &format!(
            "{}{}",
            limits_section(redis, "closed"),
            single_model(&mock, "m", "")
        ),
        &[("DATABASE_URL", url.as_str())],
    )
    .await;
    room_in_window(60, Duration::from_secs(15)).await;
    let mut last = None;
    let mut tokens = 0;
    for _ in 0..3 {
        let r = chat(&gw, &a, hello(), &[]).await;
        assert_eq!(r.status, 200);
        tokens += r.body["usage"]["total_tokens"].as_u64().unwrap();
        last = Some(r);
    }
    for _ in 0..2 {
        assert_eq!(chat(&gw, &b, hello(), &[]).await.status, 200);
    }
    chat(&gw, &other, hello(), &[]).await;
    let mut rows = 0;
    for _ in 0..100 {
        rows = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM usage_event")
            .fetch_one(&pool)
            .await
            .unwrap();
        if rows == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rows, 6);

    let report = |q: &'static str| {
        let (gw, a) = (&gw, a.clone());
        async move {
            call(
                gw,
                "GET",
                &format!("/v1/usage/rate-limit{q}"),
                Some(&a),
                None,
            )
            .await
        }
    };
    let (s, v) = report("").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["minutes"], 60);
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "only the caller's organization: {v}");
    let (ka, kb) = (&keys[0], &keys[1]);
    assert_eq!(ka["id"], json!(a_id));
    let backend = if redis.is_some() { "redis" } else { "local" };
    assert_eq!(ka["source"], backend);
    assert_eq!(ka["rpm"]["limit"], 10);
    assert_eq!(ka["rpm"]["used"], 3);
    assert_eq!(ka["rpm"]["headroom"], 7);
    assert_eq!(ka["rpm"]["headroom_pct"], 70.0);
    // the same counter the last response's headers showed
    let last = last.unwrap();
    assert_eq!(last.h("x-ratelimit-remaining"), Some("7"));
    assert_eq!(ka["tpm"]["used"], tokens, "corrected to actual usage: {ka}");
    assert_eq!(ka["tpm"]["headroom"], 10000 - tokens);
    assert_eq!(
        (&ka["requests"], &ka["tokens"]),
        (&json!(3), &json!(tokens))
    );
    assert!((1..=3).contains(&ka["rpm"]["peak"].as_i64().unwrap()));
    assert_eq!(ka["rpm"]["avg"], 0.05); // 3 requests over 60 minutes
    // a key without limits: no counters, its minute read from the usage events
    assert_eq!(kb["source"], "usage_events");
    assert_eq!(kb["rpm"]["limit"], Value::Null);
    assert_eq!(kb["rpm"]["headroom"], Value::Null);
    assert_eq!(kb["rpm"]["used"], 2);
    assert_eq!(v["organization"], Value::Null);

    // reading the report uses no quota: still 3
    let (_, v) = report("?minutes=5").await;
    assert_eq!(v["minutes"], 5);
    assert_eq!(v["keys"][0]["rpm"]["used"], 3);
    // bad input is refused and changes nothing
    for q in ["?minutes=4", "?minutes=721", "?minutes=x"] {
        let (s, e) = report(q).await;
        assert_eq!(
            (s, &e["error"]["code"]),
            (400, &json!("invalid_request")),
            "{q}"
        );
    }
    let (s, _) = call(
        &gw,
        "POST",
        "/v1/usage/rate-limit",
        Some(&a),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 405);
    let (s, _) = call(&gw, "GET", "/v1/usage/rate-limit", Some("sk-nope"), None).await;
    assert_eq!(s, 401);
    assert_eq!(report("").await.1["keys"][0]["rpm"]["used"], 3);
}

#[sqlx::test(migrations = "./migrations")]
async fn rate_limit_report_reads_the_local_counters(pool: PgPool) {
    rate_limit_report(pool, None).await;
}

#[sqlx::test(migrations = "./migrations")]
async fn rate_limit_report_reads_the_redis_counters(pool: PgPool) {
    rate_limit_report(pool, Some(&redis_url())).await;
}
