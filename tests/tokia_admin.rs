//! Tokia's key, webhook and audit administration (#14 item 7): bulk revocation (refused on two
//! gateway nodes within 1 s, other organizations untouched, its 400s and 403), webhook secret
//! rotation (the old secret stops signing), attempt replay (one queued replay), and the audit
//! log CSV export, checked byte for byte.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::*;

const MASTER: &str = "tokia-admin-master-key-0123456789";

/// `m`: $0.01 a request.
fn config(mock: &Mock) -> String {
    format!(
        "pricing: {{fx_usd_brl: \"5.0\", default_markup: \"1.0\"}}\nproviders:\n  - {{name: a, base_url: \"{}\"}}\ndeployments:\n  - {{name: da, provider: a, model: up}}\nmodels:\n  - {{name: m, usd_per_request: \"0.01\", deployments: [da]}}\n",
        mock.base()
    )
}

async fn op(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call(gw, method, path, Some(MASTER), body).await
}

/// A user of `org` with `role`: its id.
async fn user(gw: &Gateway, org: &str, name: &str, role: &str) -> String {
    let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
    let (s, u) = op(
        gw,
        "POST",
        "/admin/v1/users",
        Some(json!({"email": email, "name": name, "organization_id": org, "role": role})),
    )
    .await;
    assert_eq!(s, 201, "{u}");
    u["id"].as_str().unwrap().to_string()
}

/// A `sk-tokia-` key of `org` for `user`: (id, plaintext).
async fn key(gw: &Gateway, org: &str, user: &str) -> (String, String) {
    let (s, k) = op(
        gw,
        "POST",
        "/admin/v1/keys",
        Some(json!({"organization_id": org, "user_id": user, "prefix": "sk-tokia-", "name": "k"})),
    )
    .await;
    assert_eq!(s, 201, "{k}");
    (
        k["id"].as_str().unwrap().to_string(),
        secret(k["key"].as_str().unwrap()),
    )
}

/// A prepaid organization with R$ 10 and an owner: (org id, owner id, owner's key id, key).
async fn tenant(gw: &Gateway, name: &str) -> (String, String, String, String) {
    let (s, org) = op(
        gw,
        "POST",
        "/admin/v1/organizations",
        Some(json!({"name": name, "prepaid": true})),
    )
    .await;
    assert_eq!(s, 201, "{org}");
    let org_id = org["id"].as_str().unwrap().to_string();
    let owner = user(gw, &org_id, name, "owner").await;
    let (kid, k) = key(gw, &org_id, &owner).await;
    let c = reqwest::Client::new()
        .post(gw.url(&format!("/admin/v1/organizations/{org_id}/ledger")))
        .bearer_auth(MASTER)
        .header("Idempotency-Key", format!("topup-{org_id}"))
        .header("content-type", "application/json")
        .body(json!({"kind": "topup", "amount_brl": "10.00"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(c.status().as_u16(), 201);
    (org_id, owner, kid, k)
}

async fn chat(gw: &Gateway, key: &str) -> u16 {
    chat_status(gw, key, "m").await
}

/// `key` answered 200 by `gw` (after the top-up reached it).
async fn serves(gw: &Gateway, key: &str) {
    let t0 = Instant::now();
    while chat(gw, key).await != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the key is never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn revoke(gw: &Gateway, key: &str, body: Value) -> (u16, Value) {
    call(
        gw,
        "POST",
        "/v1/api-keys/bulk-revoke",
        Some(key),
        Some(body),
    )
    .await
}

#[sqlx::test(migrations = "./migrations")]
async fn bulk_revoke_reaches_both_nodes_and_spares_other_organizations(pool: PgPool) {
    let mock = Mock::start().await;
    let url = db_url(&pool, None);
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("CATRACA_MASTER_KEY", MASTER),
    ];
    let a = Gateway::start_with_env(&config(&mock), &env).await;
    let b = Gateway::start_with_env(&config(&mock), &env).await;
    let (org, owner, _k0_id, k0) = tenant(&a, "Revoga Tokia").await;
    let (k1_id, k1) = key(&a, &org, &owner).await;
    let (_k2_id, k2) = key(&a, &org, &owner).await;
    let (k3_id, _k3) = key(&a, &org, &owner).await;
    let (s, _) = op(&a, "POST", &format!("/admin/v1/keys/{k3_id}/revoke"), None).await;
    assert_eq!(s, 200);
    let member = user(&a, &org, "Membro Revoga", "member").await;
    let (_km_id, km) = key(&a, &org, &member).await;
    let (_other, _, kb_id, kb) = tenant(&a, "Outra Revoga").await;

    // a member may not; the body must name exactly one of all / ids (1..=100 UUIDs)
    let (s, v) = revoke(&a, &km, json!({"all": true})).await;
    assert_eq!((s, &v["error"]["code"]), (403, &json!("forbidden")), "{v}");
    let many: Vec<String> = (0..101).map(|_| Uuid::new_v4().to_string()).collect();
    for bad in [
        json!({}),
        json!({"all": true, "ids": [k1_id]}),
        json!({"all": false}),
        json!({"ids": []}),
        json!({"ids": many}),
        json!({"ids": ["not-a-uuid"]}),
        json!([]),
    ] {
        let (s, v) = revoke(&a, &k0, bad.clone()).await;
        assert_eq!(s, 400, "{bad} -> {v}");
        assert_eq!(v["error"]["code"], "invalid_parameter", "{bad}");
    }

    for gw in [&a, &b] {
        serves(gw, &k1).await;
        serves(gw, &kb).await;
    }
    // the other organization's key and an unknown id are neither touched nor counted
    let (s, v) = revoke(
        &a,
        &k0,
        json!({"ids": [k1_id, k3_id, kb_id, Uuid::new_v4()]}),
    )
    .await;
    let t0 = Instant::now();
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"revoked": 1, "alreadyInactive": 1, "litellmFailures": 0})
    );
    for gw in [&a, &b] {
        while chat(gw, &k1).await != 401 {
            assert!(
                t0.elapsed() < Duration::from_secs(1),
                "a node still accepts the bulk-revoked key"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert_eq!(chat(&b, &kb).await, 200, "another organization's key");

    // all: the owner's own, k2 and the member's key; k1 and k3 were inactive already
    serves(&b, &k2).await;
    let (s, v) = revoke(&b, &k0, json!({"all": true})).await;
    let t0 = Instant::now();
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"revoked": 3, "alreadyInactive": 2, "litellmFailures": 0})
    );
    for gw in [&a, &b] {
        for k in [&k0, &k2, &km] {
            while chat(gw, k).await != 401 {
                assert!(
                    t0.elapsed() < Duration::from_secs(1),
                    "a node still accepts a key"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    assert_eq!(chat(&a, &kb).await, 200);
    let status: String = sqlx::query_scalar("SELECT status FROM api_key WHERE api_key_id = $1")
        .bind(Uuid::parse_str(&kb_id).unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "active");
    let audited: Vec<(String, Option<Uuid>)> = sqlx::query_as(
        "SELECT target, user_id FROM audit_log WHERE action = 'api_key.bulk_revoke' ORDER BY audit_log_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let owner = Uuid::parse_str(&owner).ok();
    assert_eq!(
        audited,
        [("ids".to_string(), owner), ("all".to_string(), owner)]
    );
}

type Got = Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>;

/// A receiver: `/ok` answers 200, `/fail` 500; every call recorded.
async fn receiver() -> (String, Got) {
    let got: Got = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/{path}",
        axum::routing::post(
            move |axum::extract::Path(p): axum::extract::Path<String>,
                  h: axum::http::HeaderMap,
                  body: String| {
                let g = g.clone();
                async move {
                    g.lock().unwrap().push((h, body));
                    if p == "ok" {
                        axum::http::StatusCode::OK
                    } else {
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    }
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (base, got)
}

async fn wait_for(got: &Got, n: usize) {
    let t0 = Instant::now();
    while got.lock().unwrap().len() < n {
        assert!(t0.elapsed() < Duration::from_secs(10), "no delivery");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A delivery row of `webhook` (`status`): its attempt id.
async fn delivery(pool: &PgPool, webhook: &str, status: &str, payload: Value) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO webhook_delivery (webhook_id, event, dedup_key, payload, status)
         VALUES ($1, 'usage_limit_reached', gen_random_uuid()::text, $2, $3) RETURNING attempt_id",
    )
    .bind(Uuid::parse_str(webhook).unwrap())
    .bind(payload)
    .bind(status)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn rotated_secret_signs_and_replays_queue_once(pool: PgPool) {
    let mock = Mock::start().await;
    let (base, got) = receiver().await;
    let secret_key = "22".repeat(32);
    let gw = Gateway::start_with_env(
        &format!("webhooks: {{allow_loopback: true}}\n{}", config(&mock)),
        &[
            ("DATABASE_URL", &db_url(&pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
            ("CATRACA_SECRET_KEY", &secret_key),
            ("CATRACA_WEBHOOK_POLL_MS", "100"),
        ],
    )
    .await;
    let (org, _, _, k) = tenant(&gw, "Webhook Tokia").await;
    let member = user(&gw, &org, "Membro Hook", "member").await;
    let (_, km) = key(&gw, &org, &member).await;
    let (_, _, _, other) = tenant(&gw, "Outra Hook").await;
    let mut hooks = Vec::new();
    for path in ["ok", "fail"] {
        let (s, w) = op(
            &gw,
            "POST",
            "/admin/v1/webhooks",
            Some(
                json!({"organization_id": org, "url": format!("{base}/{path}"),
                "events": ["usage_limit_reached"], "secret": "old-secret"}),
            ),
        )
        .await;
        assert_eq!(s, 201, "{w}");
        hooks.push(w["id"].as_str().unwrap().to_string());
    }
    let rotate = format!("/v1/webhooks/{}/rotate-secret", hooks[0]);
    let (s, v) = call(&gw, "POST", &rotate, Some(&other), None).await;
    assert_eq!(
        (s, &v["error"]["code"]),
        (404, &json!("webhook_not_found")),
        "{v}"
    );
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/webhooks/not-a-uuid/rotate-secret",
        Some(&k),
        None,
    )
    .await;
    assert_eq!(
        (s, &v["error"]["code"]),
        (404, &json!("webhook_not_found")),
        "{v}"
    );
    let (s, v) = call(&gw, "POST", &rotate, Some(&km), None).await;
    assert_eq!((s, &v["error"]["code"]), (403, &json!("forbidden")), "{v}");
    let (s, v) = call(&gw, "POST", &rotate, Some(&k), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"], json!(hooks[0]));
    let new_secret = v["signing_secret"].as_str().unwrap().to_string();
    assert!(new_secret.len() >= 32 && new_secret != "old-secret");
    let audit: Value = sqlx::query_scalar(
        "SELECT after FROM audit_log WHERE action = 'webhook.rotate_secret' AND target = $1",
    )
    .bind(&hooks[0])
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audit, json!({"secret": "[redacted]"}));

    // a delivery after the rotation: signed with the new secret, not the old
    let payload = json!({"event": "usage_limit_reached", "id": "evt-1", "note": "a"});
    let first = delivery(&pool, &hooks[0], "pending", payload.clone()).await;
    wait_for(&got, 1).await;
    let (h, body) = got.lock().unwrap()[0].clone();
    assert_eq!(h["x-catraca-delivery"], first.to_string());
    let sig = h["x-catraca-signature"].to_str().unwrap().to_string();
    let t1 = catraca::admin::webhooks::verify(new_secret.as_bytes(), &sig, body.as_bytes())
        .expect("signed with the new secret");
    assert_eq!(
        catraca::admin::webhooks::verify(b"old-secret", &sig, body.as_bytes()),
        None,
        "the old secret signs nothing"
    );

    // replay of the delivered attempt: same body, a new delivery id, the current secret
    let (s, v) = call(
        &gw,
        "POST",
        &format!("/v1/webhooks/attempts/{first}/replay"),
        Some(&k),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            &v["replay_of"],
            &v["status"],
            &v["created"],
            &v["webhook_id"]
        ),
        (
            &json!(first),
            &json!("pending"),
            &json!(true),
            &json!(hooks[0])
        )
    );
    let replay_id = v["id"].as_str().unwrap().to_string();
    assert_ne!(replay_id, first.to_string());
    wait_for(&got, 2).await;
    let (h2, body2) = got.lock().unwrap()[1].clone();
    assert_eq!(body2, body);
    assert_eq!(h2["x-catraca-delivery"], replay_id.as_str());
    let t2 = catraca::admin::webhooks::verify(
        new_secret.as_bytes(),
        h2["x-catraca-signature"].to_str().unwrap(),
        body.as_bytes(),
    )
    .expect("the replay is signed with the current secret");
    assert!(t2 >= t1, "a fresh timestamp");

    // replaying twice while the replay is still queued gives that one
    let failed = delivery(&pool, &hooks[1], "failed", payload.clone()).await;
    let path = format!("/v1/webhooks/attempts/{failed}/replay");
    let (s1, r1) = call(&gw, "POST", &path, Some(&k), None).await;
    let (s2, r2) = call(&gw, "POST", &path, Some(&k), None).await;
    assert_eq!((s1, s2), (200, 200), "{r1} {r2}");
    assert_eq!(r1["id"], r2["id"]);
    assert_eq!(
        (&r1["created"], &r2["created"]),
        (&json!(true), &json!(false))
    );
    // replaying the replay names the same original, so the same queued one
    let (_, r3) = call(
        &gw,
        "POST",
        &format!(
            "/v1/webhooks/attempts/{}/replay",
            r1["id"].as_str().unwrap()
        ),
        Some(&k),
        None,
    )
    .await;
    assert_eq!(r3["id"], r1["id"]);
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_delivery WHERE replay_of =
           (SELECT webhook_delivery_id FROM webhook_delivery WHERE attempt_id = $1)",
    )
    .bind(failed)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(n, 1);
    let (s, v) = call(&gw, "POST", &path, Some(&other), None).await;
    assert_eq!(
        (s, &v["error"]["code"]),
        (404, &json!("attempt_not_found")),
        "{v}"
    );

    // the operator lists a webhook's attempts, newest first, replays naming their original
    let (s, v) = call(
        &gw,
        "GET",
        &format!("/admin/v1/webhooks/{}/attempts", hooks[0]),
        Some(MASTER),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["webhook_id"], json!(hooks[0]));
    let list = v["data"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{v}");
    assert_eq!(
        (&list[0]["id"], &list[0]["replay_of"], &list[0]["status"]),
        (&json!(replay_id), &json!(first), &json!("delivered"))
    );
    assert_eq!(
        (&list[1]["id"], &list[1]["replay_of"], &list[1]["attempts"]),
        (&json!(first), &Value::Null, &json!(1))
    );
    assert!(list[1]["delivered_at"].is_string() && list[1]["next_attempt_at"].is_null());
    let (s, v) = call(
        &gw,
        "GET",
        &format!("/admin/v1/webhooks/{}/attempts?limit=1", hooks[1]),
        Some(MASTER),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["data"][0]["id"], r1["id"],
        "the newest: the queued replay"
    );
    assert_eq!(v["data"][0]["status"], "pending");
    for (path, status) in [
        (
            format!("/admin/v1/webhooks/{}/attempts?limit=0", hooks[0]),
            400,
        ),
        (
            format!("/admin/v1/webhooks/{}/attempts?limit=201", hooks[0]),
            400,
        ),
        (
            format!("/admin/v1/webhooks/{}/attempts?limit=x", hooks[0]),
            400,
        ),
        ("/admin/v1/webhooks/not-a-uuid/attempts".to_string(), 400),
        (
            format!("/admin/v1/webhooks/{}/attempts", uuid::Uuid::new_v4()),
            404,
        ),
    ] {
        let (s, v) = call(&gw, "GET", &path, Some(MASTER), None).await;
        assert_eq!(s, status, "{path}: {v}");
    }
    let (s, _) = call(
        &gw,
        "GET",
        &format!("/admin/v1/webhooks/{}/attempts", hooks[0]),
        Some(&k),
        None,
    )
    .await;
    assert_eq!(s, 403, "a customer key is not the operator");
}

/// Independent CSV cell: quoted when needed, formulas defused.
fn cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}")
    } else {
        v.to_string()
    };
    if v.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    audit_log_id: i64,
    created_at: time::OffsetDateTime,
    actor: String,
    user_id: Option<Uuid>,
    action: String,
    target: Option<String>,
    source_ip: Option<String>,
    before: Option<Value>,
    after: Option<Value>,
}

#[sqlx::test(migrations = "./migrations")]
async fn audit_log_exports_the_organizations_newest_rows_as_csv(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = Gateway::start_with_env(
        &config(&mock),
        &[
            ("DATABASE_URL", &db_url(&pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
        ],
    )
    .await;
    let (org, _, _, k) = tenant(&gw, "Auditoria Tokia").await;
    let member = user(&gw, &org, "Membro Audit", "member").await;
    let (_, km) = key(&gw, &org, &member).await;
    let (other, _, _, _) = tenant(&gw, "Outra Audit").await;
    let org = Uuid::parse_str(&org).unwrap();
    for (o, target) in [
        (org, "=HYPERLINK(\"x\"),a"),
        (Uuid::parse_str(&other).unwrap(), "secret-of-other"),
    ] {
        sqlx::query(
            "INSERT INTO audit_log (organization_id, action, target, actor, after)
             VALUES ($1, 'test.action', $2, 'system', $3)",
        )
        .bind(o)
        .bind(target)
        .bind(json!({"note": "linha\r\nnova"}))
        .execute(&pool)
        .await
        .unwrap();
    }

    let get = |key: String| {
        let url = gw.url("/v1/admin/audit-log/export.csv");
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
        }
    };
    let r = get(km.clone()).await;
    assert_eq!(r.status().as_u16(), 403);
    let r = get(k.clone()).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let bytes = r.bytes().await.unwrap();

    let rows: Vec<Row> = sqlx::query_as(
        "SELECT audit_log_id, created_at, actor, user_id, action, target, source_ip, before, after
         FROM audit_log WHERE organization_id = $1 ORDER BY audit_log_id DESC",
    )
    .bind(org)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(rows.len() >= 4, "the tenant's own changes and the test row");
    let mut want =
        "\u{feff}id,created_at,actor,user_id,action,target,source_ip,before,after\r\n".to_string();
    let j = |v: &Option<Value>| v.as_ref().map(Value::to_string).unwrap_or_default();
    for r in &rows {
        let cells = [
            r.audit_log_id.to_string(),
            r.created_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
            r.actor.clone(),
            r.user_id.map(|u| u.to_string()).unwrap_or_default(),
            r.action.clone(),
            r.target.clone().unwrap_or_default(),
            r.source_ip.clone().unwrap_or_default(),
            j(&r.before),
            j(&r.after),
        ];
        want.push_str(&cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(","));
        want.push_str("\r\n");
    }
    assert_eq!(String::from_utf8(bytes.to_vec()).unwrap(), want);
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(text.contains(",\"'=HYPERLINK(\"\"x\"\"),a\","), "{text}");
    assert!(!text.contains("secret-of-other"));

    let (s, v) = call(
        &gw,
        "GET",
        "/v1/admin/audit-log/export.csv?from=2026-02-30",
        Some(&k),
        None,
    )
    .await;
    assert_eq!((s, &v["error"]["code"]), (400, &json!("invalid_parameter")));
}
