//! Tokia's refunds (#14 item 6): `GET|POST /v1/me/refunds` and the operator's
//! `/admin/v1/refunds…`. The ledger identity `balance = topped_up − spent − refunded − held`
//! is checked to the micro-real at every step against the wallet `me/usage-summary` and
//! `usage` render and against the ledger rows; every refusal has its exact shape and changes
//! nothing; a hold is money the gateway no longer spends.

use std::time::{Duration, Instant};

use catraca::domain::money::Micros;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::*;

const MASTER: &str = "tokia-refunds-master-key-0123456789";

/// `m`: $0.000123 a request (R$ 0.000615 at FX 5, so sums have micro-real digits); `big`:
/// $0.01 (R$ 0.05).
fn config(mock: &Mock) -> String {
    format!(
        "pricing: {{fx_usd_brl: \"5.0\", default_markup: \"1.0\"}}\nproviders:\n  - {{name: a, base_url: \"{}\", forward_headers: [x-mock-*]}}\ndeployments:\n  - {{name: da, provider: a, model: up}}\nmodels:\n  - {{name: m, usd_per_request: \"0.000123\", deployments: [da]}}\n  - {{name: big, usd_per_request: \"0.01\", deployments: [da]}}\n",
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

async fn op(gw: &Gateway, method: &str, path: &str) -> (u16, Value) {
    call(gw, method, path, Some(MASTER), None).await
}

/// A POST of `body` (raw text) to `/v1/me/refunds`: (status, body, `Idempotent-Replayed`).
async fn post_raw(
    gw: &Gateway,
    key: &str,
    body: &str,
    headers: &[(&str, &[u8])],
) -> (u16, Value, Option<String>) {
    let mut rb = reqwest::Client::new()
        .post(gw.url("/v1/me/refunds"))
        .bearer_auth(key)
        .header("content-type", "application/json");
    for (k, v) in headers {
        rb = rb.header(*k, reqwest::header::HeaderValue::from_bytes(v).unwrap());
    }
    let r = rb.body(body.to_string()).send().await.unwrap();
    let status = r.status().as_u16();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_string());
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        replayed,
    )
}

async fn request(gw: &Gateway, key: &str, body: Value, idem: Option<&str>) -> (u16, Value) {
    let headers: Vec<(&str, &[u8])> = idem
        .map(|k| vec![("Idempotency-Key", k.as_bytes())])
        .unwrap_or_default();
    let (s, v, _) = post_raw(gw, key, &body.to_string(), &headers).await;
    (s, v)
}

/// The wallet in micro-BRL: (balance, topped_up, spent, refunded, held).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct W {
    balance: i64,
    topped_up: i64,
    spent: i64,
    refunded: i64,
    held: i64,
}

/// The wallet of `key`'s organization as `me/usage-summary` renders it, checked equal to the
/// `balance` of `GET /v1/usage`, to the balance column and to the sum of the ledger entries
/// (and each kind's sum), and checked for the identity to the last micro-real.
async fn wallet(gw: &Gateway, pool: &PgPool, org: &str, key: &str) -> W {
    let (s, sum) = call(gw, "GET", "/v1/me/usage-summary", Some(key), None).await;
    assert_eq!(s, 200, "{sum}");
    let (s, usage) = call(gw, "GET", "/v1/usage?limit=1", Some(key), None).await;
    assert_eq!(s, 200, "{usage}");
    let fields = [
        "balance_brl",
        "total_topped_up_brl",
        "total_spent_brl",
        "total_refunded_brl",
        "held_brl",
    ];
    for f in fields {
        assert_eq!(sum[f], usage["balance"][f], "{f}: {sum} vs {usage}");
    }
    #[derive(sqlx::FromRow)]
    struct Db {
        column: Option<i64>,
        total: i64,
        topped_up: i64,
        spent: i64,
        refunded: i64,
        held: i64,
    }
    let db: Db = sqlx::query_as(
        "SELECT o.balance_brl_micros AS column,
                coalesce(sum(e.amount_brl_micros), 0)::int8 AS total,
                coalesce(sum(e.amount_brl_micros) FILTER (WHERE e.kind IN ('topup', 'adjustment')
                    OR (e.kind = 'refund' AND e.amount_brl_micros > 0)), 0)::int8 AS topped_up,
                coalesce(-sum(e.amount_brl_micros) FILTER (WHERE e.kind = 'usage'), 0)::int8 AS spent,
                coalesce(-sum(e.amount_brl_micros) FILTER (WHERE e.kind = 'refund'
                    AND e.amount_brl_micros < 0), 0)::int8 AS refunded,
                coalesce(-sum(e.amount_brl_micros) FILTER (WHERE e.kind = 'hold'), 0)::int8 AS held
         FROM organization o LEFT JOIN ledger_entry e USING (organization_id)
         WHERE o.organization_id = $1::uuid GROUP BY o.balance_brl_micros",
    )
    .bind(org)
    .fetch_one(pool)
    .await
    .unwrap();
    let w = W {
        balance: db.total,
        topped_up: db.topped_up,
        spent: db.spent,
        refunded: db.refunded,
        held: db.held,
    };
    assert_eq!(db.column, Some(db.total), "balance column = sum of entries");
    assert_eq!(
        w.balance,
        w.topped_up - w.spent - w.refunded - w.held,
        "identity"
    );
    let rendered = [w.balance, w.topped_up, w.spent, w.refunded, w.held];
    for (f, m) in fields.iter().zip(rendered) {
        assert_eq!(sum[*f], Micros(m).json_number(), "{f}: {sum}");
    }
    w
}

/// Chat `n` times with `model` (waiting for the top-up to reach the gateway first).
async fn chats(gw: &Gateway, key: &str, model: &str, n: usize) {
    let t0 = Instant::now();
    while chat_status(gw, key, model).await != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "no funds at the gateway"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 1..n {
        assert_eq!(chat_status(gw, key, model).await, 200);
    }
}

/// Wait until the usage writer has debited `spent`.
async fn until_spent(gw: &Gateway, key: &str, spent: i64) {
    let t0 = Instant::now();
    loop {
        let (_, s) = call(gw, "GET", "/v1/me/usage-summary", Some(key), None).await;
        if s["total_spent_brl"] == Micros(spent).json_number() {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "usage not written: {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn list(gw: &Gateway, key: &str) -> Vec<Value> {
    let (s, v) = call(gw, "GET", "/v1/me/refunds", Some(key), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    v["refunds"].as_array().unwrap().clone()
}

/// The ledger rows of `org`, oldest first: (kind, amount).
async fn entries(pool: &PgPool, org: &str) -> Vec<(String, i64)> {
    #[derive(sqlx::FromRow)]
    struct E {
        kind: String,
        amount_brl_micros: i64,
    }
    let rows: Vec<E> = sqlx::query_as(
        "SELECT kind, amount_brl_micros FROM ledger_entry WHERE organization_id = $1::uuid
         ORDER BY ledger_entry_id",
    )
    .bind(org)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|e| (e.kind, e.amount_brl_micros))
        .collect()
}

fn rfc3339(v: &Value) -> bool {
    v.as_str().is_some_and(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok()
    })
}

const R: i64 = 1_000_000;

#[sqlx::test(migrations = "./migrations")]
async fn the_ledger_identity_holds_through_topup_usage_and_refunds(pool: PgPool) {
    let (_mock, gw) = start(&pool).await;
    let t = Tenant::make(&gw, MASTER, "Refund Ledger", Some("10.00")).await;
    let w0 = wallet(&gw, &pool, &t.org, &t.key).await;
    assert_eq!(
        w0,
        W {
            balance: 10 * R,
            topped_up: 10 * R,
            spent: 0,
            refunded: 0,
            held: 0
        }
    );

    // usage: 3 × R$ 0.000615
    chats(&gw, &t.key, "m", 3).await;
    until_spent(&gw, &t.key, 1_845).await;
    let w1 = wallet(&gw, &pool, &t.org, &t.key).await;
    assert_eq!(
        w1,
        W {
            balance: 10 * R - 1_845,
            spent: 1_845,
            ..w0
        }
    );

    // a request holds its amount
    let (s, r) = request(
        &gw,
        &t.key,
        json!({"amount_brl": "5.00", "reason": "  projeto encerrado  "}),
        None,
    )
    .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(
        r.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "id",
            "amount_brl",
            "reason",
            "status",
            "created_at",
            "decided_at"
        ]
    );
    assert_eq!(r["amount_brl"], json!(5));
    assert_eq!(r["reason"], "projeto encerrado");
    assert_eq!(r["status"], "pending");
    assert!(rfc3339(&r["created_at"]), "{r}");
    assert_eq!(r["decided_at"], Value::Null);
    let id = r["id"].as_str().unwrap().to_string();
    uuid::Uuid::parse_str(&id).unwrap();
    let w2 = wallet(&gw, &pool, &t.org, &t.key).await;
    assert_eq!(
        w2,
        W {
            balance: 5 * R - 1_845,
            held: 5 * R,
            ..w1
        }
    );
    assert_eq!(list(&gw, &t.key).await, vec![r.clone()]);
    let (s, q) = op(&gw, "GET", "/admin/v1/refunds?status=pending").await;
    assert_eq!(s, 200, "{q}");
    assert_eq!(q["total"], 1);
    assert_eq!(q["data"][0]["id"], id.as_str());
    assert_eq!(q["data"][0]["organization_id"], t.org.as_str());
    assert_eq!(q["data"][0]["amount_brl"], "5");
    assert_eq!(q["data"][0]["requested_by"], t.user.as_str());
    assert_eq!(q["data"][0]["api_key_id"], t.key_id.as_str());

    // approval: the hold released and the payout debited as `refund`, the balance unchanged
    let (s, a) = op(&gw, "POST", &format!("/admin/v1/refunds/{id}/approve")).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["status"], "approved");
    assert!(rfc3339(&a["decided_at"]), "{a}");
    let w3 = wallet(&gw, &pool, &t.org, &t.key).await;
    assert_eq!(
        w3,
        W {
            refunded: 5 * R,
            held: 0,
            ..w2
        }
    );
    let e = entries(&pool, &t.org).await;
    assert_eq!(
        e.iter()
            .filter(|(k, _)| k == "usage")
            .map(|(_, a)| *a)
            .sum::<i64>(),
        -1_845,
        "approval wrote no usage"
    );
    assert_eq!(
        e[e.len() - 3..],
        [
            ("hold".to_string(), -5 * R),
            ("hold".to_string(), 5 * R),
            ("refund".to_string(), -5 * R),
        ]
    );
    let listed = list(&gw, &t.key).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], "approved");
    assert_eq!(listed[0]["decided_at"], a["decided_at"]);
    // the operator's statement lists the three entries
    let (s, st) = op(
        &gw,
        "GET",
        &format!("/admin/v1/organizations/{}/ledger", t.org),
    )
    .await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(
        st.to_string().matches("\"kind\":\"hold\"").count(),
        2,
        "{st}"
    );

    // refundable = min(balance 4.998155, paid 10 − refunded 5) = 4.998155: 5.00 is above it
    let (s, e1) = request(&gw, &t.key, json!({"amount_brl": "5.00"}), None).await;
    assert_eq!(s, 400, "{e1}");
    assert_eq!(e1["error"]["code"], "amount_above_refundable");
    assert!(
        e1["error"]["message"].as_str().unwrap().contains("R$ 4,99"),
        "{e1}"
    );
    // R$ 20 more paid: refundable = min(24.998155, 30 − 5) = 24.998155
    t.topup(&gw, MASTER, "20.00", "second-topup").await;
    let w4 = wallet(&gw, &pool, &t.org, &t.key).await;
    assert_eq!(
        w4,
        W {
            balance: 25 * R - 1_845,
            topped_up: 30 * R,
            ..w3
        }
    );
    let (s, e2) = request(&gw, &t.key, json!({"amount_brl": 25}), None).await;
    assert_eq!(
        (s, e2["error"]["code"].clone()),
        (400, json!("amount_above_refundable"))
    );
    assert_eq!(wallet(&gw, &pool, &t.org, &t.key).await, w4);
    let (s, r2) = request(&gw, &t.key, json!({"amount_brl": 24.99}), None).await;
    assert_eq!(s, 201, "{r2}");
    assert_eq!(r2["amount_brl"], json!(24.99));
    assert_eq!(r2["reason"], Value::Null);
    let w5 = wallet(&gw, &pool, &t.org, &t.key).await;
    assert_eq!(
        w5,
        W {
            balance: 10_000 - 1_845,
            held: 24_990_000,
            ..w4
        }
    );
    // newest first
    let listed = list(&gw, &t.key).await;
    assert_eq!(
        listed.iter().map(|r| r["id"].clone()).collect::<Vec<_>>(),
        [r2["id"].clone(), json!(id)]
    );

    // rejection: the hold released, the balance restored
    let id2 = r2["id"].as_str().unwrap();
    let (s, j) = op(&gw, "POST", &format!("/admin/v1/refunds/{id2}/reject")).await;
    assert_eq!(s, 200, "{j}");
    assert_eq!(j["status"], "rejected");
    assert_eq!(j["amount_brl"], "24.99");
    assert_eq!(wallet(&gw, &pool, &t.org, &t.key).await, w4);
    let e = entries(&pool, &t.org).await;
    assert_eq!(
        e[e.len() - 2..],
        [
            ("hold".to_string(), -24_990_000),
            ("hold".to_string(), 24_990_000),
        ]
    );

    // every change audited
    #[derive(sqlx::FromRow)]
    struct A {
        action: String,
        actor: String,
        target: Option<String>,
    }
    let audit: Vec<A> = sqlx::query_as(
        "SELECT action, actor, target FROM audit_log
         WHERE organization_id = $1::uuid AND action LIKE 'refund.%' ORDER BY audit_log_id",
    )
    .bind(&t.org)
    .fetch_all(&pool)
    .await
    .unwrap();
    let got: Vec<(&str, &str, &str)> = audit
        .iter()
        .map(|a| {
            (
                a.action.as_str(),
                a.actor.as_str(),
                a.target.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("refund.request", "user", id.as_str()),
            ("refund.approve", "operator", id.as_str()),
            ("refund.request", "user", id2),
            ("refund.reject", "operator", id2),
        ]
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn refused_requests_have_exact_shapes_and_change_nothing(pool: PgPool) {
    let (_mock, gw) = start(&pool).await;
    let t = Tenant::make(&gw, MASTER, "Refund Errors", Some("10.00")).await;
    let before = wallet(&gw, &pool, &t.org, &t.key).await;
    let ledger_before = entries(&pool, &t.org).await;

    let err = |s: u16, v: &Value| (s, v["error"]["code"].as_str().unwrap_or("").to_string());
    let amount_invalid = (400, "invalid_parameter".to_string());
    let body_invalid = (400, "invalid_body".to_string());
    let below = (400, "amount_below_minimum".to_string());
    let above = (400, "amount_above_refundable".to_string());
    let huge_text = format!("{{\"amount_brl\": \"{}\"}}", "9".repeat(100_000));
    let huge_number = format!("{{\"amount_brl\": {}}}", "9".repeat(100_000));
    let long_reason = json!({"amount_brl": "5", "reason": "é".repeat(501)}).to_string();
    let cases: Vec<(&str, (u16, String))> = vec![
        (r#"{"amount_brl": "4.99"}"#, below.clone()),
        (r#"{"amount_brl": 4.99}"#, below.clone()),
        (r#"{"amount_brl": "0"}"#, below.clone()),
        (r#"{"amount_brl": "-10"}"#, below.clone()),
        (r#"{"amount_brl": -10}"#, below.clone()),
        (r#"{"amount_brl": "10.01"}"#, above.clone()),
        (r#"{"amount_brl": 1000000}"#, above.clone()),
        (r#"{"amount_brl": "5.0000001"}"#, amount_invalid.clone()),
        (r#"{"amount_brl": 5.0000001}"#, amount_invalid.clone()),
        // a float would read this as 5: the literal is read exactly
        (
            r#"{"amount_brl": 5.00000000000000000001}"#,
            amount_invalid.clone(),
        ),
        (r#"{"amount_brl": "5.001"}"#, amount_invalid.clone()),
        (r#"{"amount_brl": 5.5e0}"#, amount_invalid.clone()),
        (r#"{"amount_brl": 1e400}"#, amount_invalid.clone()),
        (
            r#"{"amount_brl": 99999999999999999999999}"#,
            amount_invalid.clone(),
        ),
        (
            r#"{"amount_brl": "99999999999999"}"#,
            amount_invalid.clone(),
        ),
        (r#"{"amount_brl": "1e3"}"#, amount_invalid.clone()),
        (r#"{"amount_brl": "5,00"}"#, amount_invalid.clone()),
        (r#"{"amount_brl": ""}"#, amount_invalid.clone()),
        (r#"{"amount_brl": true}"#, amount_invalid.clone()),
        (r#"{"amount_brl": null}"#, amount_invalid.clone()),
        (r#"{"amount_brl": ["5"]}"#, amount_invalid.clone()),
        (&huge_text, amount_invalid.clone()),
        (&huge_number, amount_invalid.clone()),
        (&long_reason, amount_invalid.clone()),
        (r#"{}"#, body_invalid.clone()),
        (r#"{"amount_brl": "5", "extra": 1}"#, body_invalid.clone()),
        (r#"{"amount_brl": "5", "reason": 7}"#, body_invalid.clone()),
        (r#"{"amount_brl": "5\u0000"}"#, body_invalid.clone()),
        (
            r#"{"amount_brl": "5", "reason": "a\u0000b"}"#,
            body_invalid.clone(),
        ),
        (
            "{\"amount_brl\": \"5\", \"reason\": \"a\0b\"}",
            body_invalid.clone(),
        ),
        ("not json", body_invalid.clone()),
        ("", body_invalid.clone()),
        ("[]", body_invalid.clone()),
    ];
    for (body, want) in &cases {
        let (s, v, _) = post_raw(&gw, &t.key, body, &[]).await;
        assert_eq!(&err(s, &v), want, "{}: {v}", &body[..body.len().min(80)]);
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        assert!(
            v.to_string().len() < 1_000,
            "the answer echoes the input: {}",
            &v.to_string()[..200]
        );
    }
    // invalid UTF-8
    let (s, v, _) = {
        let r = reqwest::Client::new()
            .post(gw.url("/v1/me/refunds"))
            .bearer_auth(&t.key)
            .header("content-type", "application/json")
            .body(b"{\"amount_brl\": \"5\", \"reason\": \"\xff\xfe\"}".to_vec())
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json::<Value>().await.unwrap(), ())
    };
    assert_eq!(err(s, &v), body_invalid, "{v}");

    // messages, both languages
    let (s, v, _) = post_raw(&gw, &t.key, r#"{"amount_brl": "4.99"}"#, &[]).await;
    assert_eq!(
        (s, v),
        (
            400,
            json!({"error": {"message": "O reembolso mínimo é R$ 5,00",
                             "type": "invalid_request_error", "code": "amount_below_minimum"}})
        )
    );
    let (s, v, _) = post_raw(
        &gw,
        &t.key,
        r#"{"amount_brl": "4.99"}"#,
        &[("Accept-Language", b"en")],
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["message"], "The smallest refund is R$ 5.00");
    let (s, v, _) = post_raw(
        &gw,
        &t.key,
        r#"{"amount_brl": "10.01"}"#,
        &[("Accept-Language", b"en")],
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        v["error"]["message"],
        "Amount above what is refundable: only the unspent part of paid top-ups (at most R$ 10.00 now)"
    );
    let (s, v, _) = post_raw(&gw, &t.key, r#"{"amount_brl": "5.001"}"#, &[]).await;
    assert_eq!(s, 400);
    assert_eq!(
        v["error"]["message"],
        "Parâmetro inválido: amount_brl (valor inválido)"
    );

    // a bad Idempotency-Key
    for bad in [&b""[..], b"a b", "é".as_bytes(), &[b'k'; 201]] {
        let (s, v, _) = post_raw(
            &gw,
            &t.key,
            r#"{"amount_brl": "5"}"#,
            &[("Idempotency-Key", bad)],
        )
        .await;
        assert_eq!(err(s, &v), amount_invalid, "{bad:?}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key")
        );
    }
    // no key, another platform's key
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/me/refunds",
        None,
        Some(json!({"amount_brl": "5"})),
    )
    .await;
    assert_eq!(err(s, &v), (401, "missing_api_key".to_string()));
    let (s, v) = call(&gw, "GET", "/v1/me/refunds", Some("sk-other-123"), None).await;
    assert_eq!(err(s, &v), (401, "invalid_api_key".to_string()));

    // nothing changed
    assert_eq!(wallet(&gw, &pool, &t.org, &t.key).await, before);
    assert_eq!(entries(&pool, &t.org).await, ledger_before);
    assert!(list(&gw, &t.key).await.is_empty());

    // a postpaid organization has nothing to refund
    let (s, pp) = call(
        &gw,
        "POST",
        "/admin/v1/organizations",
        Some(MASTER),
        Some(json!({"name": "Postpaid Org"})),
    )
    .await;
    assert_eq!(s, 201, "{pp}");
    let (s, k) = call(
        &gw,
        "POST",
        "/admin/v1/keys",
        Some(MASTER),
        Some(json!({"organization_id": pp["id"], "prefix": "sk-tokia-", "name": "k"})),
    )
    .await;
    assert_eq!(s, 201, "{k}");
    let pkey = secret(k["key"].as_str().unwrap());
    let (s, v) = request(&gw, &pkey, json!({"amount_brl": "5"}), None).await;
    assert_eq!(err(s, &v), above, "{v}");

    // concurrent requests: exactly one is open, the others 409
    let posts = (0..6).map(|_| request(&gw, &t.key, json!({"amount_brl": "5.00"}), None));
    let results = futures_util::future::join_all(posts).await;
    let mut statuses: Vec<u16> = results.iter().map(|(s, _)| *s).collect();
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409], "{results:?}");
    for (s, v) in &results {
        if *s == 409 {
            assert_eq!(
                v,
                &json!({"error": {"message": "Já existe um pedido de reembolso pendente",
                                  "type": "invalid_request_error", "code": "refund_pending"}})
            );
        }
    }
    let held = wallet(&gw, &pool, &t.org, &t.key).await;
    assert_eq!(
        held,
        W {
            balance: 5 * R,
            held: 5 * R,
            ..before
        }
    );
    // a second open request, whatever its amount: 409, nothing changed
    let (s, v) = request(&gw, &t.key, json!({"amount_brl": "5"}), Some("other")).await;
    assert_eq!(err(s, &v), (409, "refund_pending".to_string()));
    assert_eq!(wallet(&gw, &pool, &t.org, &t.key).await, held);
    assert_eq!(list(&gw, &t.key).await.len(), 1);
}

#[sqlx::test(migrations = "./migrations")]
async fn idempotency_keys_replay_and_other_organizations_see_nothing(pool: PgPool) {
    let (_mock, gw) = start(&pool).await;
    let t = Tenant::make(&gw, MASTER, "Refund Idem", Some("20.00")).await;
    let other = Tenant::make(&gw, MASTER, "Refund Other", Some("20.00")).await;

    let body = r#"{"amount_brl": "6.00", "reason": "a"}"#;
    let key: &[(&str, &[u8])] = &[("Idempotency-Key", b"req-1")];
    let (s, first, replayed) = post_raw(&gw, &t.key, body, key).await;
    assert_eq!((s, replayed), (201, None), "{first}");
    let held = wallet(&gw, &pool, &t.org, &t.key).await;
    assert_eq!(held.held, 6 * R);
    let ledger = entries(&pool, &t.org).await;

    // the same key and body, also written another way (a number, other spacing): the same
    // refund again, nothing created
    for again in [
        body,
        r#"{"reason":"a","amount_brl":6}"#,
        r#"{"amount_brl": 6.0, "reason": " a "}"#,
    ] {
        let (s, v, replayed) = post_raw(&gw, &t.key, again, key).await;
        assert_eq!(
            (s, replayed.as_deref()),
            (201, Some("true")),
            "{again}: {v}"
        );
        assert_eq!(v, first, "{again}");
    }
    // the same key with another amount or reason: 409, nothing changed
    for other_body in [
        r#"{"amount_brl": "7.00", "reason": "a"}"#,
        r#"{"amount_brl": "6.00", "reason": "b"}"#,
        r#"{"amount_brl": "6.00"}"#,
    ] {
        let (s, v, _) = post_raw(&gw, &t.key, other_body, key).await;
        assert_eq!(
            (s, v),
            (
                409,
                json!({"error": {"message": "Idempotency-Key já usada em outro pedido (valor ou motivo diferentes)",
                                 "type": "invalid_request_error", "code": "idempotency_key_reused"}})
            ),
            "{other_body}"
        );
    }
    assert_eq!(wallet(&gw, &pool, &t.org, &t.key).await, held);
    assert_eq!(entries(&pool, &t.org).await, ledger);
    assert_eq!(list(&gw, &t.key).await, vec![first.clone()]);

    // keys are per organization; another organization sees none of this one's refunds
    let (s, theirs, replayed) = post_raw(&gw, &other.key, body, key).await;
    assert_eq!((s, replayed), (201, None), "{theirs}");
    assert_ne!(theirs["id"], first["id"]);
    assert_eq!(list(&gw, &other.key).await, vec![theirs.clone()]);
    assert_eq!(list(&gw, &t.key).await, vec![first.clone()]);
    let (s, q) = op(
        &gw,
        "GET",
        &format!("/admin/v1/refunds?organization_id={}", other.org),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(q["total"], 1);
    assert_eq!(q["data"][0]["id"], theirs["id"]);
    assert_eq!(q["data"][0]["idempotency_key"], "req-1");

    // after the decision the key still names that refund, as it is now
    let id = first["id"].as_str().unwrap();
    let (s, _) = op(&gw, "POST", &format!("/admin/v1/refunds/{id}/approve")).await;
    assert_eq!(s, 200);
    let (s, v, replayed) = post_raw(&gw, &t.key, body, key).await;
    assert_eq!((s, replayed.as_deref()), (201, Some("true")));
    assert_eq!(v["id"], first["id"]);
    assert_eq!(v["status"], "approved");
    assert_eq!(list(&gw, &t.key).await.len(), 1);
}

#[sqlx::test(migrations = "./migrations")]
async fn the_operator_decides_once(pool: PgPool) {
    let (_mock, gw) = start(&pool).await;
    let t = Tenant::make(&gw, MASTER, "Refund Decide", Some("10.00")).await;
    let (s, r) = request(&gw, &t.key, json!({"amount_brl": "5"}), None).await;
    assert_eq!(s, 201, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let approve = format!("/admin/v1/refunds/{id}/approve");
    let reject = format!("/admin/v1/refunds/{id}/reject");

    // who may decide
    let (s, v) = call(&gw, "POST", &approve, None, None).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (401, json!("unauthorized"))
    );
    let (s, v) = call(&gw, "POST", &approve, Some(&t.key), None).await;
    assert_eq!((s, v["error"]["code"].clone()), (403, json!("forbidden")));
    // malformed and unknown ids, bad filters
    let (s, v) = op(&gw, "POST", "/admin/v1/refunds/abc/approve").await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (400, json!("invalid_request"))
    );
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/admin/v1/refunds/{unknown}/approve"),
        format!("/admin/v1/refunds/{unknown}/reject"),
    ] {
        let (s, v) = op(&gw, "POST", &path).await;
        assert_eq!(
            (s, v),
            (
                404,
                json!({"error": {"code": "not_found", "message": "refund not found", "details": null}})
            )
        );
    }
    for q in [
        "status=Pending",
        "status=",
        "organization_id=x",
        "per_page=0",
        "page=abc",
        "other=1",
    ] {
        let (s, v) = op(&gw, "GET", &format!("/admin/v1/refunds?{q}")).await;
        assert_eq!(
            (s, v["error"]["code"].clone()),
            (400, json!("invalid_request")),
            "{q}"
        );
    }
    let held = wallet(&gw, &pool, &t.org, &t.key).await;
    assert_eq!(held.held, 5 * R);

    // approve once; then neither approve nor reject: 409, nothing changed
    let (s, a) = op(&gw, "POST", &approve).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(
        a.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "id",
            "organization_id",
            "amount_brl",
            "reason",
            "status",
            "idempotency_key",
            "requested_by",
            "api_key_id",
            "created_at",
            "decided_at"
        ]
    );
    let approved = wallet(&gw, &pool, &t.org, &t.key).await;
    let ledger = entries(&pool, &t.org).await;
    for path in [&approve, &reject] {
        let (s, v) = op(&gw, "POST", path).await;
        assert_eq!(
            (s, v),
            (
                409,
                json!({"error": {"code": "conflict",
                    "message": "the refund request is not pending (already approved or rejected)",
                    "details": null}})
            ),
            "{path}"
        );
    }
    assert_eq!(wallet(&gw, &pool, &t.org, &t.key).await, approved);
    assert_eq!(entries(&pool, &t.org).await, ledger);

    // refundable now: min(5, 10 − 5) = 5; reject once, then 409 both ways
    let (s, r2) = request(&gw, &t.key, json!({"amount_brl": "5"}), None).await;
    assert_eq!(s, 201, "{r2}");
    let id2 = r2["id"].as_str().unwrap();
    let (s, j) = op(&gw, "POST", &format!("/admin/v1/refunds/{id2}/reject")).await;
    assert_eq!((s, j["status"].clone()), (200, json!("rejected")));
    assert_eq!(wallet(&gw, &pool, &t.org, &t.key).await, approved);
    let ledger = entries(&pool, &t.org).await;
    for action in ["reject", "approve"] {
        let (s, _) = op(&gw, "POST", &format!("/admin/v1/refunds/{id2}/{action}")).await;
        assert_eq!(s, 409, "{action}");
    }
    assert_eq!(wallet(&gw, &pool, &t.org, &t.key).await, approved);
    assert_eq!(entries(&pool, &t.org).await, ledger);

    // concurrent decisions on one request: one wins
    let (s, r3) = request(&gw, &t.key, json!({"amount_brl": "5"}), None).await;
    assert_eq!(s, 201, "{r3}");
    let id3 = r3["id"].as_str().unwrap();
    let a = format!("/admin/v1/refunds/{id3}/approve");
    let j = format!("/admin/v1/refunds/{id3}/reject");
    let (x, y, z) = tokio::join!(
        op(&gw, "POST", &a),
        op(&gw, "POST", &j),
        op(&gw, "POST", &a)
    );
    let mut statuses = [x.0, y.0, z.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409]);
    let w = wallet(&gw, &pool, &t.org, &t.key).await;
    assert_eq!(w.held, 0);

    // the queue and its filters
    let (s, all) = op(
        &gw,
        "GET",
        &format!("/admin/v1/refunds?organization_id={}", t.org),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(all["total"], 3);
    assert_eq!(all["data"][1]["id"], id2);
    assert_eq!(all["data"][2]["id"], id.as_str());
    let (s, rej) = op(&gw, "GET", "/admin/v1/refunds?status=rejected&per_page=1").await;
    assert_eq!(s, 200);
    assert!(rej["total"].as_i64().unwrap() >= 1);
    assert_eq!(rej["data"].as_array().unwrap().len(), 1);
    assert_eq!(rej["data"][0]["status"], "rejected");
    let (s, pending) = op(&gw, "GET", "/admin/v1/refunds?status=pending").await;
    assert_eq!((s, pending["total"].clone()), (200, json!(0)));

    // documented: Tokia's shapes and statuses, the operator's routes
    let (s, doc) = call(&gw, "GET", "/openapi.json", None, None).await;
    assert_eq!(s, 200);
    let post = &doc["paths"]["/v1/me/refunds"]["post"];
    assert_eq!(post["security"][0]["TokiaKey"], json!([]));
    assert_eq!(
        post["requestBody"]["content"]["application/json"]["schema"]["required"],
        json!(["amount_brl"])
    );
    let created = &post["responses"]["201"]["content"]["application/json"]["schema"];
    assert_eq!(
        created["properties"]["status"]["enum"],
        json!(["pending", "approved", "rejected"])
    );
    for status in ["400", "401", "409"] {
        assert!(post["responses"][status].is_object(), "{status}");
    }
    let listed = &doc["paths"]["/v1/me/refunds"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert_eq!(listed["required"], json!(["refunds"]));
    let (s, doc) = op(&gw, "GET", "/admin/v1/openapi.json").await;
    assert_eq!(s, 200);
    for path in [
        "/admin/v1/refunds",
        "/admin/v1/refunds/{id}/approve",
        "/admin/v1/refunds/{id}/reject",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn held_money_is_not_spendable_at_the_gateway(pool: PgPool) {
    let (_mock, gw) = start(&pool).await;
    let t = Tenant::make(&gw, MASTER, "Refund Gateway", Some("10.00")).await;
    // one R$ 0.05 request: 9.95 left
    chats(&gw, &t.key, "big", 1).await;
    until_spent(&gw, &t.key, 50_000).await;
    // hold 9.91: 0.04 left, less than one request
    let (s, r) = request(&gw, &t.key, json!({"amount_brl": "9.91"}), None).await;
    assert_eq!(s, 201, "{r}");
    // (a request that started before the notification arrived may still pass: counted)
    let t0 = Instant::now();
    let mut slipped = 0;
    loop {
        let s = chat_status(&gw, &t.key, "big").await;
        if s == 402 {
            break;
        }
        assert_eq!(s, 200);
        slipped += 1;
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "the hold never reached the gateway"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(slipped <= 1, "{slipped} requests spent held money");
    until_spent(&gw, &t.key, 50_000 * (1 + slipped)).await;
    let w = wallet(&gw, &pool, &t.org, &t.key).await;
    assert_eq!(w.balance, 40_000 - 50_000 * slipped, "{w:?}");
    assert_eq!(w.held, 9_910_000);
    // rejected: the money is spendable again
    let id = r["id"].as_str().unwrap();
    let (s, _) = op(&gw, "POST", &format!("/admin/v1/refunds/{id}/reject")).await;
    assert_eq!(s, 200);
    let t0 = Instant::now();
    while chat_status(&gw, &t.key, "big").await != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "the release never reached the gateway"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
