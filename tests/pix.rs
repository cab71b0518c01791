//! PIX top-ups end to end over real sockets: the operator (or a Tokia key) creates a charge
//! whose BR Code is a valid EMV payload (CRC recomputed here), the mock's PSP stand-in pays it
//! by calling the signed webhook, and the balance is credited exactly once per endToEndId,
//! also on redelivery and concurrent delivery; bad signatures, unknown txids, expired charges
//! and wrong amounts change nothing.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::*;

const MASTER: &str = "pix-test-master-key-0123456789";
const SECRET: &str = "psp-webhook-secret-0123456789";
const PIX_KEY: &str = "123e4567-e12b-12d1-a456-426655440000";

fn config(mock: &Mock, pix: bool) -> String {
    let section = if pix {
        format!(
            "pix:\n  key: \"{PIX_KEY}\"\n  merchant_name: \"Tokia Serviços Digitais\"\n  merchant_city: \"São Paulo\"\n"
        )
    } else {
        String::new()
    };
    single_model(mock, "m", &section)
}

async fn start(pool: &PgPool, mock: &Mock, pix: bool) -> Gateway {
    Gateway::start_with_env(
        &config(mock, pix),
        &[
            ("DATABASE_URL", &db_url(pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
            ("CATRACA_PIX_WEBHOOK_SECRET", SECRET),
        ],
    )
    .await
}

async fn op(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut rb = reqwest::Client::new()
        .request(method.parse().unwrap(), gw.url(path))
        .bearer_auth(MASTER);
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn new_org(gw: &Gateway) -> String {
    let (s, o) = op(
        gw,
        "POST",
        "/admin/v1/organizations",
        Some(json!({"name": "Padaria", "prepaid": true})),
    )
    .await;
    assert_eq!(s, 201, "{o}");
    o["id"].as_str().unwrap().to_string()
}

async fn charge(gw: &Gateway, org: &str, amount: &str) -> Value {
    let (s, c) = op(
        gw,
        "POST",
        "/admin/v1/pix/charges",
        Some(json!({"organization_id": org, "amount_brl": amount})),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    c
}

async fn balance(gw: &Gateway, org: &str) -> Value {
    let (s, o) = op(gw, "GET", &format!("/admin/v1/organizations/{org}"), None).await;
    assert_eq!(s, 200);
    o["balance_brl"].clone()
}

/// The mock PSP pays: `{status, body, end_to_end_id}` of the webhook call.
async fn pay(mock: &Mock, gw: &Gateway, mut req: Value) -> Value {
    req["webhook_url"] = json!(gw.url("/v1/pix/webhook"));
    if req.get("secret").is_none() {
        req["secret"] = json!(SECRET);
    }
    let r = reqwest::Client::new()
        .post(format!("http://{}/psp/pay", mock.addr))
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "mock PSP");
    r.json().await.unwrap()
}

async fn topups(pool: &PgPool, org: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM ledger_entry WHERE organization_id = $1::uuid AND kind = 'topup'",
    )
    .bind(org)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// CRC16/CCITT-FALSE, written again here so the test does not trust the code under test.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn tlv(mut s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while !s.is_empty() {
        let id = &s[..2];
        let n: usize = s[2..4].parse().unwrap();
        out.push((id.to_string(), s[4..4 + n].to_string()));
        s = &s[4 + n..];
    }
    out
}

/// Checks a BR Code field by field; returns its fields.
fn check_br_code(code: &str, txid: &str, amount: &str) -> Vec<(String, String)> {
    assert!(code.is_ascii());
    let (body, crc) = code.split_at(code.len() - 4);
    assert!(body.ends_with("6304"), "{code}");
    assert_eq!(
        crc,
        format!("{:04X}", crc16(body.as_bytes())),
        "CRC of {code}"
    );
    let f = tlv(code);
    let get = |id: &str| f.iter().find(|(i, _)| i == id).unwrap().1.clone();
    assert_eq!(f[0], ("00".into(), "01".into()));
    assert_eq!(get("01"), "12");
    assert_eq!(get("26"), format!("0014br.gov.bcb.pix0136{PIX_KEY}"));
    assert_eq!(get("52"), "0000");
    assert_eq!(get("53"), "986");
    assert_eq!(get("54"), amount);
    assert_eq!(get("58"), "BR");
    assert_eq!(get("59"), "Tokia Servicos Digitais");
    assert_eq!(get("60"), "Sao Paulo");
    assert_eq!(get("62"), format!("05{:02}{txid}", txid.len()));
    assert_eq!(f.last().unwrap().0, "63");
    f
}

#[sqlx::test(migrations = "./migrations")]
async fn a_paid_charge_credits_the_balance_exactly_once(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock, true).await;
    let org = new_org(&gw).await;

    let c = charge(&gw, &org, "25.5").await;
    let txid = c["txid"].as_str().unwrap();
    assert!((26..=35).contains(&txid.len()));
    assert!(txid.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(c["status"], "pending");
    assert_eq!(c["amount_brl"], "25.5");
    check_br_code(c["br_code"].as_str().unwrap(), txid, "25.50");
    let id = c["id"].as_str().unwrap();
    let (s, got) = op(&gw, "GET", &format!("/admin/v1/pix/charges/{id}"), None).await;
    assert_eq!(s, 200);
    assert_eq!(got["br_code"], c["br_code"]);

    // the PSP pays it: credited
    let paid = pay(&mock, &gw, json!({"br_code": c["br_code"]})).await;
    assert_eq!(paid["status"], 200, "{paid}");
    assert_eq!(paid["body"]["results"][0]["status"], "credited");
    let e2e = paid["end_to_end_id"].as_str().unwrap().to_string();
    assert_eq!(balance(&gw, &org).await, "25.5");
    let (_, got) = op(&gw, "GET", &format!("/admin/v1/pix/charges/{id}"), None).await;
    assert_eq!(got["status"], "paid");
    assert_eq!(got["end_to_end_id"], e2e.as_str());
    assert!(got["paid_at"].is_string());

    // the same delivery again: 200, nothing more
    let again = pay(
        &mock,
        &gw,
        json!({"br_code": c["br_code"], "end_to_end_id": e2e}),
    )
    .await;
    assert_eq!(again["status"], 200, "{again}");
    assert_eq!(again["body"]["results"][0]["status"], "duplicate");
    assert_eq!(balance(&gw, &org).await, "25.5");
    // another payment of the same (one-use) charge: refused
    let other = pay(&mock, &gw, json!({"br_code": c["br_code"]})).await;
    assert_eq!(other["status"], 409, "{other}");
    assert_eq!(balance(&gw, &org).await, "25.5");

    // eight concurrent deliveries of one payment of a second charge: credited once
    let c2 = charge(&gw, &org, "10").await;
    let e2e2 = "E99999999202501011200CONCURRENT1";
    let calls = (0..8).map(|_| {
        pay(
            &mock,
            &gw,
            json!({"br_code": c2["br_code"], "end_to_end_id": e2e2}),
        )
    });
    let outs = futures_util::future::join_all(calls).await;
    let mut credited = 0;
    for o in &outs {
        assert_eq!(o["status"], 200, "{o}");
        if o["body"]["results"][0]["status"] == "credited" {
            credited += 1;
        }
    }
    assert_eq!(credited, 1, "{outs:?}");
    assert_eq!(balance(&gw, &org).await, "35.5");
    assert_eq!(topups(&pool, &org).await, 2);
    // the ledger entries carry the endToEndIds as idempotency keys; the payments are audited
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT idempotency_key FROM ledger_entry WHERE organization_id = $1::uuid ORDER BY 1",
    )
    .bind(&org)
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut want = vec![e2e.clone(), e2e2.to_string()];
    want.sort();
    assert_eq!(keys, want);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'pix.charge.paid' AND organization_id = $1::uuid",
    )
    .bind(&org)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 2);
}

#[sqlx::test(migrations = "./migrations")]
async fn refused_payments_change_nothing(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock, true).await;
    let org = new_org(&gw).await;
    let c = charge(&gw, &org, "10.00").await;
    let txid = c["txid"].as_str().unwrap().to_string();
    let c = reqwest::Client::new();
    let body = json!({"pix": [{"endToEndId": "E99999999202501011200BADSIGNATUR", "txid": txid,
                                "valor": "10.00", "horario": "2025-01-01T12:00:00Z"}]})
    .to_string();

    // a bad signature, a missing one, a malformed one: 401, nothing changes
    let good = {
        use hmac::Mac;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        m.update(body.as_bytes());
        format!("sha256={}", hex::encode(m.finalize().into_bytes()))
    };
    let wrong = {
        use hmac::Mac;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"not-the-psp-secret-000").unwrap();
        m.update(body.as_bytes());
        format!("sha256={}", hex::encode(m.finalize().into_bytes()))
    };
    for sig in [
        Some(wrong.as_str()),
        None,
        Some("sha256=zz"),
        Some(&good[7..]),
    ] {
        let mut rb = c
            .post(gw.url("/v1/pix/webhook"))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(s) = sig {
            rb = rb.header("x-signature", s);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 401, "{sig:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_signature");
        assert!(v["error"]["message"].is_string() && v["error"]["type"].is_string());
    }
    // the body changed after signing: 401
    let r = c
        .post(gw.url("/v1/pix/webhook"))
        .header("x-signature", &good)
        .body(body.replace("10.00", "99.00"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(topups(&pool, &org).await, 0);

    // unknown txid: 404
    let r = pay(
        &mock,
        &gw,
        json!({"txid": "UNKNOWNCHARGE0000000000000000000", "amount": "10.00"}),
    )
    .await;
    assert_eq!(r["status"], 404, "{r}");
    assert_eq!(r["body"]["error"]["code"], "unknown_charge");
    // a different amount: 422
    let r = pay(&mock, &gw, json!({"txid": txid, "amount": "10.01"})).await;
    assert_eq!(r["status"], 422, "{r}");
    assert_eq!(r["body"]["error"]["code"], "amount_mismatch");
    let r = pay(&mock, &gw, json!({"txid": txid, "amount": "1.00"})).await;
    assert_eq!(r["status"], 422, "{r}");
    assert_eq!(topups(&pool, &org).await, 0);

    // expired: 410, and shown as expired
    sqlx::query("UPDATE pix_charge SET expires_at = now() - interval '1 second' WHERE txid = $1")
        .bind(&txid)
        .execute(&pool)
        .await
        .unwrap();
    let r = pay(&mock, &gw, json!({"txid": txid, "amount": "10.00"})).await;
    assert_eq!(r["status"], 410, "{r}");
    assert_eq!(r["body"]["error"]["code"], "charge_expired");
    let status: String = sqlx::query_scalar("SELECT status FROM pix_charge WHERE txid = $1")
        .bind(&txid)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "expired");
    assert_eq!(topups(&pool, &org).await, 0);
    assert_eq!(balance(&gw, &org).await, "0");
    // each refusal was logged
    let log = gw.plain_log();
    for reason in ["unknown_charge", "amount_mismatch", "charge_expired"] {
        assert!(log.contains(reason), "{reason} not logged");
    }
    assert!(log.contains("bad or missing X-Signature"));

    // bad charge requests: 400 (below R$ 1, sub-centavo, not a number), unknown organization 404
    for amount in ["0.99", "10.001", "abc", "100000.01"] {
        let (s, v) = op(
            &gw,
            "POST",
            "/admin/v1/pix/charges",
            Some(json!({"organization_id": org, "amount_brl": amount})),
        )
        .await;
        assert_eq!(s, 400, "{amount}: {v}");
    }
    let (s, _) = op(
        &gw,
        "POST",
        "/admin/v1/pix/charges",
        Some(json!({"organization_id": uuid::Uuid::new_v4().to_string(), "amount_brl": "10"})),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = op(
        &gw,
        "GET",
        &format!("/admin/v1/pix/charges/{}", uuid::Uuid::new_v4()),
        None,
    )
    .await;
    assert_eq!(s, 404);
    // without the master key: 401
    let r = c
        .post(gw.url("/admin/v1/pix/charges"))
        .json(&json!({"organization_id": org, "amount_brl": "10"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_tokia_key_tops_up_its_own_organization(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock, true).await;
    let org = new_org(&gw).await;
    let (s, k) = op(
        &gw,
        "POST",
        "/admin/v1/keys",
        Some(json!({"organization_id": org, "prefix": "sk-tokia-"})),
    )
    .await;
    assert_eq!(s, 201, "{k}");
    let key = k["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk-tokia-"));
    let c = reqwest::Client::new();
    let topup = |auth: Option<String>, body: Value, lang: &'static str| {
        let mut rb = c
            .post(gw.url("/v1/me/topups"))
            .header("accept-language", lang)
            .json(&body);
        if let Some(a) = auth {
            rb = rb.bearer_auth(a);
        }
        async move {
            let r = rb.send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap())
        }
    };

    let (s, v) = topup(Some(key.clone()), json!({"amount_brl": "15"}), "pt-BR").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["organization_id"], org.as_str());
    assert_eq!(v["amount_brl"], 15);
    assert_eq!(v["status"], "pending");
    let txid = v["txid"].as_str().unwrap();
    check_br_code(v["br_code"].as_str().unwrap(), txid, "15.00");
    // a JSON number is taken too
    let (s, v2) = topup(Some(key.clone()), json!({"amount_brl": 12.34}), "pt-BR").await;
    assert_eq!(s, 201, "{v2}");
    check_br_code(
        v2["br_code"].as_str().unwrap(),
        v2["txid"].as_str().unwrap(),
        "12.34",
    );

    // paid through the webhook: the key's organization is credited
    let paid = pay(&mock, &gw, json!({"br_code": v["br_code"]})).await;
    assert_eq!(paid["status"], 200, "{paid}");
    assert_eq!(balance(&gw, &org).await, "15");

    // no key, a revoked key: 401 in Tokia's shape, pt-BR unless English is asked for
    let (s, e) = topup(None, json!({"amount_brl": "15"}), "pt-BR").await;
    assert_eq!(s, 401);
    assert_eq!(e["error"]["type"], "authentication_error");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("chave"),
        "{e}"
    );
    let (s, e) = topup(None, json!({"amount_brl": "15"}), "en").await;
    assert_eq!(s, 401);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("API key"),
        "{e}"
    );
    let (s, _) = op(
        &gw,
        "POST",
        &format!("/admin/v1/keys/{}/revoke", k["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, e) = topup(Some(key.clone()), json!({"amount_brl": "15"}), "pt-BR").await;
    assert_eq!(s, 401, "{e}");
    assert_eq!(e["error"]["code"], "invalid_api_key");

    // bad amounts: 400
    let (s, k2) = op(
        &gw,
        "POST",
        "/admin/v1/keys",
        Some(json!({"organization_id": org, "prefix": "sk-tokia-"})),
    )
    .await;
    assert_eq!(s, 201);
    let key2 = k2["key"].as_str().unwrap().to_string();
    for body in [
        json!({"amount_brl": "0.50"}),
        json!({"amount_brl": "1.005"}),
        json!({}),
        json!({"amount_brl": "10", "x": 1}),
    ] {
        let (s, e) = topup(Some(key2.clone()), body.clone(), "pt-BR").await;
        assert_eq!(s, 400, "{body}: {e}");
        assert_eq!(e["error"]["type"], "invalid_request_error");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn without_a_pix_section_the_routes_answer_503(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock, false).await;
    let org = new_org(&gw).await;
    let (s, v) = op(
        &gw,
        "POST",
        "/admin/v1/pix/charges",
        Some(json!({"organization_id": org, "amount_brl": "10"})),
    )
    .await;
    assert_eq!(s, 503, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("pix:"),
        "{v}"
    );
    let r = reqwest::Client::new()
        .post(gw.url("/v1/pix/webhook"))
        .header("x-signature", "sha256=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
}
