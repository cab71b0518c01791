//! Tokia's spending alerts (#14 item 6): `GET|POST /v1/me/alerts`, checked when usage settles
//! and after ledger entries. Chats of model `m` cost exactly R$ 0.05, so every crossing is
//! known in advance; each wait polls the database with a deadline, and a second alert that
//! crosses later is the proof that the checker has seen the later usage (so "still one firing"
//! is not a timing guess).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::*;

const MASTER: &str = "tokia-alerts-master-key-0123456789";

/// `m`: $0.01 a request (R$ 0.05 at FX 5).
fn config(mock: &Mock) -> String {
    format!(
        "pricing: {{fx_usd_brl: \"5.0\", default_markup: \"1.0\"}}\nproviders:\n  - {{name: a, base_url: \"{}\"}}\ndeployments:\n  - {{name: da, provider: a, model: up}}\nmodels:\n  - {{name: m, usd_per_request: \"0.01\", deployments: [da]}}\n",
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

/// One successful chat (R$ 0.05); retried while the gateway has not yet heard of a top-up.
async fn chat(gw: &Gateway, key: &str) {
    let t0 = Instant::now();
    loop {
        let s = chat_status(gw, key, "m").await;
        if s == 200 {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "chat answered {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create(gw: &Gateway, key: &str, body: Value) -> (u16, Value) {
    call(gw, "POST", "/v1/me/alerts", Some(key), Some(body)).await
}

/// A POST with a body sent as written, in English when `en`.
async fn post_raw(gw: &Gateway, key: &str, body: &str, en: bool) -> (u16, Value) {
    let mut rb = reqwest::Client::new()
        .post(gw.url("/v1/me/alerts"))
        .bearer_auth(key)
        .header("content-type", "application/json");
    if en {
        rb = rb.header("accept-language", "en");
    }
    let r = rb.body(body.to_string()).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

async fn alerts(gw: &Gateway, key: &str) -> Vec<Value> {
    let (s, v) = call(gw, "GET", "/v1/me/alerts", Some(key), None).await;
    assert_eq!(s, 200, "{v}");
    v["alerts"].as_array().unwrap().clone()
}

fn id(a: &Value) -> uuid::Uuid {
    a["id"].as_str().unwrap().parse().unwrap()
}

async fn firings(pool: &PgPool, alert: uuid::Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM alert_firing WHERE alert_id = $1")
        .bind(alert)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Wait until `alert` has fired `n` times (never more: more is a failure at once).
async fn wait_firings(pool: &PgPool, alert: uuid::Uuid, n: i64) {
    let t0 = Instant::now();
    loop {
        let got = firings(pool, alert).await;
        assert!(got <= n, "alert {alert} fired {got} times, expected {n}");
        if got == n {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "alert {alert} fired {got} times, waiting for {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The values the alert's firings saw, oldest first, micro-BRL.
async fn fired_values(pool: &PgPool, alert: uuid::Uuid) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT value_brl_micros FROM alert_firing WHERE alert_id = $1 ORDER BY alert_firing_id",
    )
    .bind(alert)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The alert mails queued for `to`: (subject, body), oldest first.
async fn mails(pool: &PgPool, to: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT subject, body FROM outbox_email
         WHERE to_address = $1 AND subject LIKE 'Alerta Tokia:%' ORDER BY outbox_email_id",
    )
    .bind(to)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn find(list: &[Value], alert: uuid::Uuid) -> Value {
    list.iter()
        .find(|a| id(a) == alert)
        .cloned()
        .unwrap_or_else(|| panic!("{alert} not listed"))
}

#[sqlx::test(migrations = "./migrations")]
async fn an_alert_fires_once_per_crossing(pool: PgPool) {
    let (_mock, gw) = start(&pool).await;
    let t = Tenant::make(&gw, MASTER, "Alerta Saldo", Some("10.00")).await;
    let other = Tenant::make(&gw, MASTER, "Outra Conta", Some("10.00")).await;

    // A: below R$ 9.90 (a decimal string); B: below R$ 9.80 (a JSON number)
    let (s, a) = create(
        &gw,
        &t.key,
        json!({"kind": "balance_below", "threshold_brl": "9.90", "channel": "email"}),
    )
    .await;
    assert_eq!(s, 201, "{a}");
    let mut keys: Vec<_> = a.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "armed",
            "channel",
            "created_at",
            "id",
            "kind",
            "last_fired_at",
            "threshold_brl"
        ]
    );
    assert_eq!(a["kind"], "balance_below");
    assert_eq!(a["threshold_brl"], json!(9.9));
    assert_eq!(a["channel"], "email");
    assert_eq!(a["armed"], true);
    assert_eq!(a["last_fired_at"], Value::Null);
    let a = id(&a);
    let (s, b) = post_raw(
        &gw,
        &t.key,
        r#"{"kind": "balance_below", "threshold_brl": 9.80, "channel": "email"}"#,
        false,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["threshold_brl"], json!(9.8));
    let b = id(&b);
    // the other organization sees none of them, and has its own
    assert_eq!(alerts(&gw, &other.key).await, Vec::<Value>::new());
    let (s, _) = create(
        &gw,
        &other.key,
        json!({"kind": "balance_below", "threshold_brl": "9.90", "channel": "email"}),
    )
    .await;
    assert_eq!(s, 201);
    let mine = alerts(&gw, &t.key).await;
    assert_eq!(
        mine.iter().map(id).collect::<Vec<_>>(),
        [a, b],
        "oldest first, only mine"
    );

    // 10.00 → 9.85: A crosses (9.90 is not below 9.90), B does not
    for _ in 0..3 {
        chat(&gw, &t.key).await;
    }
    wait_firings(&pool, a, 1).await;
    let list = alerts(&gw, &t.key).await;
    assert_eq!(find(&list, a)["armed"], false);
    assert!(find(&list, a)["last_fired_at"].is_string());
    assert_eq!(find(&list, b)["armed"], true);
    // 9.85 → 9.75: A stays crossed over two more settles, B crosses; B's firing is a check
    // that ran after that usage, and A did not fire again in it or before it
    for _ in 0..2 {
        chat(&gw, &t.key).await;
    }
    wait_firings(&pool, b, 1).await;
    assert_eq!(firings(&pool, a).await, 1);
    assert_eq!(fired_values(&pool, a).await, [9_850_000]);
    assert_eq!(fired_values(&pool, b).await, [9_750_000]);

    // a top-up back above both thresholds arms both again, at once (its own check)
    t.topup(&gw, MASTER, "0.20", "alerts-topup-1").await;
    let list = alerts(&gw, &t.key).await;
    assert_eq!(find(&list, a)["armed"], true, "{list:?}");
    assert_eq!(find(&list, b)["armed"], true);
    assert_eq!((firings(&pool, a).await, firings(&pool, b).await), (1, 1));

    // 9.95 → 9.85: A fires a second time; → 9.75: B too, and A still twice
    for _ in 0..2 {
        chat(&gw, &t.key).await;
    }
    wait_firings(&pool, a, 2).await;
    for _ in 0..2 {
        chat(&gw, &t.key).await;
    }
    wait_firings(&pool, b, 2).await;
    assert_eq!(firings(&pool, a).await, 2);
    assert_eq!(fired_values(&pool, a).await, [9_850_000, 9_850_000]);

    // one mail per firing to the owner, in the outbox
    let m = mails(&pool, &t.email).await;
    assert_eq!(m.len(), 4, "{m:?}");
    let for_a: Vec<_> = m
        .iter()
        .filter(|(s, _)| s == "Alerta Tokia: saldo abaixo de R$ 9,90")
        .collect();
    assert_eq!(for_a.len(), 2, "{m:?}");
    assert!(
        for_a[0].1.contains("Saldo atual: R$ 9,85"),
        "{}",
        for_a[0].1
    );
    assert!(for_a[0].1.contains("Organização: Alerta Saldo"));
    assert!(for_a[0].1.contains(&a.to_string()));
    assert_eq!(
        m.iter()
            .filter(|(s, _)| s == "Alerta Tokia: saldo abaixo de R$ 9,80")
            .count(),
        2
    );
    // the other organization's alert never fired (its balance never moved) and it got no mail
    assert!(mails(&pool, &other.email).await.is_empty());
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM alert_firing WHERE organization_id = $1::uuid")
            .bind(&other.org)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(n, 0);
}

#[sqlx::test(migrations = "./migrations")]
async fn spend_alerts_fire_once_and_reach_subscribed_webhooks(pool: PgPool) {
    let (_mock, gw) = start(&pool).await;
    let t = Tenant::make(&gw, MASTER, "Alerta Gasto", Some("10.00")).await;
    let org: uuid::Uuid = t.org.parse().unwrap();
    let hook: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO webhook (organization_id, url, events)
         VALUES ($1, 'https://example.com/alerts', ARRAY['alert_fired']) RETURNING webhook_id",
    )
    .bind(org)
    .fetch_one(&pool)
    .await
    .unwrap();
    let unsubscribed: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO webhook (organization_id, url, events)
         VALUES ($1, 'https://example.com/quota', ARRAY['usage_limit_reached']) RETURNING webhook_id",
    )
    .bind(org)
    .fetch_one(&pool)
    .await
    .unwrap();
    let mk = |kind: &'static str, threshold: &'static str, channel: &'static str| {
        let gw = &gw;
        let key = t.key.clone();
        async move {
            let (s, v) = create(
                gw,
                &key,
                json!({"kind": kind, "threshold_brl": threshold, "channel": channel}),
            )
            .await;
            assert_eq!(s, 201, "{v}");
            assert_eq!(v["armed"], true);
            id(&v)
        }
    };
    let day_mail = mk("daily_spend_above", "0.12", "email").await;
    let day_hook = mk("daily_spend_above", "0.17", "webhook").await;
    let month_hook = mk("monthly_spend_above", "0.12", "webhook").await;

    // spend 0.15 > 0.12: the daily and the monthly 0.12 alerts fire
    for _ in 0..3 {
        chat(&gw, &t.key).await;
    }
    wait_firings(&pool, day_mail, 1).await;
    wait_firings(&pool, month_hook, 1).await;
    // 0.20 > 0.17: the second daily alert fires, and the first two did not fire again
    chat(&gw, &t.key).await;
    wait_firings(&pool, day_hook, 1).await;
    assert_eq!(firings(&pool, day_mail).await, 1);
    assert_eq!(firings(&pool, month_hook).await, 1);
    assert_eq!(fired_values(&pool, day_mail).await, [150_000]);
    assert_eq!(fired_values(&pool, day_hook).await, [200_000]);

    // email: one mail; webhook: one alert_fired delivery per firing to the subscribed webhook
    let m = mails(&pool, &t.email).await;
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].0, "Alerta Tokia: gasto de hoje acima de R$ 0,12");
    assert!(m[0].1.contains("Gasto de hoje: R$ 0,15"), "{}", m[0].1);
    #[derive(sqlx::FromRow)]
    struct Delivery {
        webhook_id: uuid::Uuid,
        event: String,
        payload: Value,
    }
    let d: Vec<Delivery> = sqlx::query_as(
        "SELECT d.webhook_id, d.event, d.payload FROM webhook_delivery d
         JOIN webhook w USING (webhook_id) WHERE w.organization_id = $1
         ORDER BY d.webhook_delivery_id",
    )
    .bind(org)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(d.len(), 2);
    assert!(
        d.iter()
            .all(|d| d.webhook_id == hook && d.event == "alert_fired")
    );
    assert!(d.iter().all(|d| d.webhook_id != unsubscribed));
    let (today, month): (String, String) = sqlx::query_as(
        "SELECT to_char(now() AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD'),
                to_char(now() AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let p = &d[1].payload;
    assert_eq!(p["event"], "alert_fired");
    assert_eq!(p["alert_id"], day_hook.to_string());
    assert_eq!(p["organization_id"], t.org);
    assert_eq!(p["kind"], "daily_spend_above");
    assert_eq!(p["threshold_brl"], json!(0.17));
    assert_eq!(p["value_brl"], json!(0.2));
    assert_eq!(p["period"], today);
    assert!(p["firing_id"].is_i64() && p["fired_at"].is_string());
    assert_eq!(d[0].payload["alert_id"], month_hook.to_string());
    assert_eq!(d[0].payload["period"], month);
    assert_eq!(d[0].payload["value_brl"], json!(0.15));
    let notified: Vec<i32> = sqlx::query_scalar(
        "SELECT notifications FROM alert_firing WHERE organization_id = $1 ORDER BY alert_firing_id",
    )
    .bind(org)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(notified, [1, 1, 1], "one owner, one subscribed webhook");
    let list = alerts(&gw, &t.key).await;
    assert!(list.iter().all(|a| a["armed"] == false), "{list:?}");
}

#[sqlx::test(migrations = "./migrations")]
async fn bad_alerts_are_refused_and_change_nothing(pool: PgPool) {
    let (_mock, gw) = start(&pool).await;
    let t = Tenant::make(&gw, MASTER, "Alerta Regras", Some("10.00")).await;

    // an alert created past its threshold fires at once
    let (s, first) = create(
        &gw,
        &t.key,
        json!({"kind": "balance_below", "threshold_brl": "100", "channel": "email"}),
    )
    .await;
    assert_eq!(s, 201, "{first}");
    assert_eq!(first["armed"], false);
    assert!(first["last_fired_at"].is_string());
    assert_eq!(firings(&pool, id(&first)).await, 1);
    assert_eq!(fired_values(&pool, id(&first)).await, [10_000_000]);
    assert_eq!(mails(&pool, &t.email).await.len(), 1);

    let kind =
        "Parâmetro inválido: kind (use balance_below, daily_spend_above ou monthly_spend_above)";
    let threshold = "Parâmetro inválido: threshold_brl (um decimal maior que 0 e no máximo 10000000, com até 6 casas decimais)";
    let channel = "Parâmetro inválido: channel (use email ou webhook)";
    let param = |m: &str| json!({"error": {"message": m, "type": "invalid_request_error", "code": "invalid_parameter"}});
    let body = |k: &str, th: &str, c: &str| {
        format!(r#"{{"kind": {k}, "threshold_brl": {th}, "channel": {c}}}"#)
    };
    for (raw, want) in [
        (body(r#""balance_above""#, r#""10""#, r#""email""#), kind),
        (body(r#""""#, r#""10""#, r#""email""#), kind),
        (
            body(r#""balance_below""#, r#""0""#, r#""email""#),
            threshold,
        ),
        (body(r#""balance_below""#, "0", r#""email""#), threshold),
        (
            body(r#""balance_below""#, r#""-1""#, r#""email""#),
            threshold,
        ),
        (body(r#""balance_below""#, "-1", r#""email""#), threshold),
        (
            body(r#""balance_below""#, r#""1.0000001""#, r#""email""#),
            threshold,
        ),
        (
            body(r#""balance_below""#, "1.0000001", r#""email""#),
            threshold,
        ),
        (body(r#""balance_below""#, "1e3", r#""email""#), threshold),
        (
            body(r#""balance_below""#, r#""10000000.01""#, r#""email""#),
            threshold,
        ),
        (
            body(r#""balance_below""#, &"9".repeat(400), r#""email""#),
            threshold,
        ),
        (body(r#""balance_below""#, "true", r#""email""#), threshold),
        (body(r#""balance_below""#, "null", r#""email""#), threshold),
        (body(r#""balance_below""#, "[1]", r#""email""#), threshold),
        (
            body(r#""balance_below""#, r#""R$ 10""#, r#""email""#),
            threshold,
        ),
        (body(r#""balance_below""#, r#""10""#, r#""sms""#), channel),
        (body(r#""balance_below""#, r#""10""#, r#""EMAIL""#), channel),
    ] {
        let (s, v) = post_raw(&gw, &t.key, &raw, false).await;
        assert_eq!((s, &v), (400, &param(want)), "{raw}");
    }
    // English on request
    let (s, v) = post_raw(
        &gw,
        &t.key,
        &body(r#""balance_below""#, r#""10""#, r#""sms""#),
        true,
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        v["error"]["message"],
        "Invalid parameter: channel (email or webhook)"
    );
    // not the JSON object asked for: invalid_body
    for raw in [
        "{}".to_string(),
        "not json".to_string(),
        r#"{"kind": "balance_below", "threshold_brl": "10"}"#.to_string(),
        r#"{"kind": "balance_below", "threshold_brl": "10", "channel": "email", "extra": 1}"#
            .to_string(),
        r#"{"kind": "balance\u0000below", "threshold_brl": "10", "channel": "email"}"#.to_string(),
        r#"{"kind": 1, "threshold_brl": "10", "channel": "email"}"#.to_string(),
    ] {
        let (s, v) = post_raw(&gw, &t.key, &raw, false).await;
        assert_eq!(s, 400, "{raw}: {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{raw}");
        assert_eq!(v["error"]["code"], "invalid_body", "{raw}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Corpo inválido: esperado "),
            "{v}"
        );
    }
    // no key
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/me/alerts",
        None,
        Some(json!({"kind": "balance_below", "threshold_brl": "10", "channel": "email"})),
    )
    .await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["error"]["code"], "missing_api_key");
    // the same rule again (100 = 100.000000): 409
    let (s, v) = create(
        &gw,
        &t.key,
        json!({"kind": "balance_below", "threshold_brl": "100.000000", "channel": "email"}),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(
        v,
        json!({"error": {"message": "Já existe um alerta com este kind, threshold_brl e channel",
                         "type": "invalid_request_error", "code": "alert_exists"}})
    );
    // nothing was stored by any refusal
    assert_eq!(alerts(&gw, &t.key).await.len(), 1);
    assert_eq!(firings(&pool, id(&first)).await, 1);

    // 50 per organization
    for i in 1..50 {
        let (s, v) = create(
            &gw,
            &t.key,
            json!({"kind": "monthly_spend_above", "threshold_brl": format!("{i}.5"), "channel": "webhook"}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = create(
        &gw,
        &t.key,
        json!({"kind": "monthly_spend_above", "threshold_brl": "99", "channel": "webhook"}),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "alert_limit_reached");
    assert_eq!(
        v["error"]["message"],
        "Limite de 50 alertas por organização atingido"
    );
    let list = alerts(&gw, &t.key).await;
    assert_eq!(list.len(), 50);
    assert_eq!(list[1]["threshold_brl"], json!(1.5));
    // each creation was audited
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'alert.create' AND organization_id = $1::uuid",
    )
    .bind(&t.org)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(n, 50);
}
