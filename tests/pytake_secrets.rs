//! PyTake's secrets routes (issue 15 item 5) against the real binary: CRUD with the contract's
//! `Secret` shape, the value only ever in `GET …/value` (org_admin, audited), the role matrix
//! (viewer and agent read metadata, never values, never write), other organizations' ids not
//! found, rotation with and without a value, inactive secrets readable by an admin but never
//! tested, usage statistics, both trailing-slash forms, 422/400 with nothing changed, no value
//! in any answer but `/value` nor in the gateway log, and 503 without a master key.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::pytake::{JWT, MASTER, admin as register, assert_error, member};
use crate::common::{Gateway, Mock, db_url};
const PLAIN: &str = "sk-plaintext-a1b2c3d4e5f6-never-shown";
const PLAIN_WA: &str = "EAAG-whatsapp-token-zz9988-never-shown";
const PLAIN_NEW: &str = "sk-rotated-q7w8e9r0-never-shown";

async fn start(pool: &PgPool, with_keys: bool) -> (Gateway, Mock) {
    let mock = Mock::start().await;
    let url = db_url(pool, None);
    let key = "5e".repeat(32);
    let mut env = vec![
        ("DATABASE_URL", url.as_str()),
        ("CATRACA_MASTER_KEY", MASTER),
        ("CATRACA_JWT_SECRET", JWT),
    ];
    if with_keys {
        env.push(("CATRACA_SECRET_KEY", key.as_str()));
    }
    // the provider is named `openai`: a secret of that service is tested against it
    // WhatsApp tokens are tested against the mock's Graph API stand-in
    let graph = format!(
        "whatsapp: {{graph_base_url: \"http://{}/graph/v21.0\"}}\n",
        mock.addr
    );
    let body = crate::common::single_model(&mock, "gpt-4o-mini", &graph).replacen(
        "{name: p, ",
        "{name: openai, ",
        1,
    );
    let body = body.replacen("provider: p,", "provider: openai,", 1);
    let gw = Gateway::start_with_env(&body, &env).await;
    (gw, mock)
}

/// Every answer of a test, to scan for plaintexts.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    /// One call: (status, JSON body). `body` is sent as is (raw text) when given.
    async fn call(
        &mut self,
        gw: &Gateway,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut rb = reqwest::Client::new().request(method.parse().unwrap(), gw.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = rb.send().await.unwrap();
        let s = r.status().as_u16();
        let text = r.text().await.unwrap();
        if !path.ends_with("/value") {
            self.0.push(format!("{method} {path} -> {s} {text}"));
        }
        (
            s,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn json(
        &mut self,
        gw: &Gateway,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        self.call(gw, method, path, token, Some(&body.to_string()))
            .await
    }
}

/// The contract's `Secret`: exactly these fields, never a value.
fn assert_secret(v: &Value, key: &str, env: &str, service: Option<&str>, status: &str, org: &str) {
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "environment",
            "id",
            "key",
            "last_rotated_at",
            "organization_id",
            "service",
            "status",
            "updated_at"
        ],
        "{v}"
    );
    assert!(
        uuid::Uuid::parse_str(v["id"].as_str().unwrap()).is_ok(),
        "{v}"
    );
    assert_eq!(v["key"], key, "{v}");
    assert_eq!(v["environment"], env, "{v}");
    assert_eq!(v["service"], json!(service), "{v}");
    assert_eq!(v["status"], status, "{v}");
    assert_eq!(v["organization_id"], org, "{v}");
    for t in ["created_at", "updated_at"] {
        assert!(
            time::OffsetDateTime::parse(
                v[t].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339
            )
            .is_ok(),
            "{v}"
        );
    }
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn secrets_row(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT name || '|' || environment || '|' || coalesce(service, '') || '|' || status || '|' \
         || encode(value_sealed, 'hex') FROM vault_secret ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn crud_values_roles_isolation_rotation_usage_and_no_plaintext_anywhere(pool: PgPool) {
    let (gw, mock) = start(&pool, true).await;
    let mut seen = Seen::default();
    let (admin, org) = register(&gw, "ana@pytake.dev", "Ana Ltda").await;
    let (other, other_org) = register(&gw, "bia@pytake.dev", "Bia SA").await;
    let viewer = member(&gw, &org, "viewer@pytake.dev", "viewer").await;
    let agent = member(&gw, &org, "agent@pytake.dev", "agent").await;

    // create, with and without the trailing slash
    let (s, a) = seen
        .json(
            &gw,
            "POST",
            "/api/v1/secrets/",
            Some(&admin),
            json!({"key": "OPENAI_API_KEY", "value": PLAIN, "environment": "staging", "service": "openai"}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_secret(
        &a,
        "OPENAI_API_KEY",
        "staging",
        Some("openai"),
        "active",
        &org,
    );
    assert_eq!(a["last_rotated_at"], Value::Null);
    let (s, w) = seen
        .json(
            &gw,
            "POST",
            "/api/v1/secrets",
            Some(&admin),
            json!({"key": "WA_TOKEN", "value": PLAIN_WA, "service": "whatsapp"}),
        )
        .await;
    assert_eq!(s, 201, "{w}");
    assert_secret(
        &w,
        "WA_TOKEN",
        "production",
        Some("whatsapp"),
        "active",
        &org,
    );
    let a_id = a["id"].as_str().unwrap().to_string();
    let w_id = w["id"].as_str().unwrap().to_string();
    let one = |id: &str, tail: &str| format!("/api/v1/secrets/{id}{tail}");

    // list both ways, filters, get
    let (s, l1) = seen
        .call(&gw, "GET", "/api/v1/secrets/", Some(&admin), None)
        .await;
    assert_eq!(s, 200, "{l1}");
    let (s, l2) = seen
        .call(&gw, "GET", "/api/v1/secrets", Some(&admin), None)
        .await;
    assert_eq!(s, 200, "{l2}");
    assert_eq!(l1, l2);
    assert_eq!(l1.as_array().unwrap().len(), 2, "{l1}");
    assert!(l1.as_array().unwrap().contains(&a), "{l1}");
    assert!(l1.as_array().unwrap().contains(&w), "{l1}");
    let (s, l) = seen
        .call(
            &gw,
            "GET",
            "/api/v1/secrets/?environment=staging",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((s, l), (200, json!([a.clone()])));
    let (s, l) = seen
        .call(
            &gw,
            "GET",
            "/api/v1/secrets?service=whatsapp",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((s, l), (200, json!([w.clone()])));
    let (s, e) = seen
        .call(
            &gw,
            "GET",
            "/api/v1/secrets/?environment=prod",
            Some(&admin),
            None,
        )
        .await;
    assert_error(s, &e, 400, "bad_request");
    let (s, g) = seen
        .call(&gw, "GET", &one(&a_id, ""), Some(&admin), None)
        .await;
    assert_eq!((s, &g), (200, &a));
    for (m, p) in [
        ("GET", "/api/v1/secrets/nope"),
        ("GET", "/api/v1/secrets/12/value"),
        ("POST", "/api/v1/secrets/x/rotate"),
    ] {
        let (s, e) = seen.call(&gw, m, p, Some(&admin), None).await;
        assert_error(s, &e, 404, "not_found");
    }
    let (s, e) = seen.call(&gw, "GET", "/api/v1/secrets/", None, None).await;
    assert_error(s, &e, 401, "invalid_token");

    // the value: org_admin only, audited
    let (s, v) = seen
        .call(&gw, "GET", &one(&a_id, "/value"), Some(&admin), None)
        .await;
    assert_eq!((s, v), (200, json!({"value": PLAIN})));
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM audit_log WHERE action = 'secret.value_read'"
        )
        .await,
        1
    );

    // viewer and agent: read metadata, never values, never write; nothing changes
    let before = secrets_row(&pool).await;
    for t in [&viewer, &agent] {
        let (s, l) = seen
            .call(&gw, "GET", "/api/v1/secrets", Some(t), None)
            .await;
        assert_eq!((s, l), (200, l1.clone()));
        let (s, g) = seen.call(&gw, "GET", &one(&a_id, ""), Some(t), None).await;
        assert_eq!((s, &g), (200, &a));
        let (s, u) = seen
            .call(&gw, "GET", &one(&a_id, "/usage"), Some(t), None)
            .await;
        assert_eq!(s, 200, "{u}");
        let (s, u) = seen
            .call(
                &gw,
                "GET",
                "/api/v1/secrets/usage/organization",
                Some(t),
                None,
            )
            .await;
        assert_eq!(s, 200, "{u}");
        let (s, e) = seen
            .call(&gw, "GET", &one(&a_id, "/value"), Some(t), None)
            .await;
        assert_error(s, &e, 403, "forbidden");
        let (s, e) = seen
            .json(
                &gw,
                "POST",
                "/api/v1/secrets/",
                Some(t),
                json!({"key": "X", "value": "y"}),
            )
            .await;
        assert_error(s, &e, 403, "forbidden");
        let (s, e) = seen
            .json(&gw, "PUT", &one(&a_id, ""), Some(t), json!({"value": "z"}))
            .await;
        assert_error(s, &e, 403, "forbidden");
        for tail in ["/rotate", "/deactivate", "/activate", "/test"] {
            let (s, e) = seen
                .call(&gw, "POST", &one(&a_id, tail), Some(t), None)
                .await;
            assert_error(s, &e, 403, "forbidden");
        }
        let (s, e) = seen
            .call(&gw, "DELETE", &one(&a_id, ""), Some(t), None)
            .await;
        assert_error(s, &e, 403, "forbidden");
    }
    assert_eq!(secrets_row(&pool).await, before);

    // another organization: not found, and its list is empty
    for (m, tail) in [
        ("GET", ""),
        ("GET", "/value"),
        ("GET", "/usage"),
        ("POST", "/rotate"),
        ("POST", "/deactivate"),
        ("POST", "/test"),
        ("DELETE", ""),
    ] {
        let (s, e) = seen
            .call(&gw, m, &one(&a_id, tail), Some(&other), None)
            .await;
        assert_error(s, &e, 404, "not_found");
    }
    let (s, e) = seen
        .json(
            &gw,
            "PUT",
            &one(&a_id, ""),
            Some(&other),
            json!({"key": "MINE"}),
        )
        .await;
    assert_error(s, &e, 404, "not_found");
    let (s, l) = seen
        .call(&gw, "GET", "/api/v1/secrets/", Some(&other), None)
        .await;
    assert_eq!((s, l), (200, json!([])));
    let (s, l) = seen
        .call(
            &gw,
            "GET",
            "/api/v1/secrets/usage/organization",
            Some(&other),
            None,
        )
        .await;
    assert_eq!((s, l), (200, json!([])));
    assert_eq!(secrets_row(&pool).await, before);
    assert!(!other_org.is_empty());

    // bad bodies: 422 for the schema, 400 for rules, 409 for a taken key; nothing changed
    for body in [
        r#"{"key": "K"}"#,
        r#"{"key": "K", "value": 5}"#,
        r#"{"value": "v"}"#,
        "not json",
        "[]",
    ] {
        let (s, e) = seen
            .call(&gw, "POST", "/api/v1/secrets/", Some(&admin), Some(body))
            .await;
        assert_error(s, &e, 422, "validation_error");
    }
    for body in [
        json!({"key": "", "value": "v"}),
        json!({"key": "K", "value": ""}),
        json!({"key": "K", "value": "v", "environment": "prod"}),
        json!({"key": "K\u{1}", "value": "v"}),
    ] {
        let (s, e) = seen
            .json(&gw, "POST", "/api/v1/secrets/", Some(&admin), body)
            .await;
        assert_error(s, &e, 400, "bad_request");
    }
    let (s, e) = seen
        .json(
            &gw,
            "POST",
            "/api/v1/secrets/",
            Some(&admin),
            json!({"key": "OPENAI_API_KEY", "value": "other", "environment": "staging"}),
        )
        .await;
    assert_error(s, &e, 409, "conflict");
    for body in [r#"{"value": 5}"#, r#"{"key": ["x"]}"#, "nope"] {
        let (s, e) = seen
            .call(&gw, "PUT", &one(&a_id, ""), Some(&admin), Some(body))
            .await;
        assert_error(s, &e, 422, "validation_error");
    }
    let (s, e) = seen
        .json(
            &gw,
            "PUT",
            &one(&a_id, ""),
            Some(&admin),
            json!({"environment": "qa", "value": "n"}),
        )
        .await;
    assert_error(s, &e, 400, "bad_request");
    let (s, e) = seen
        .call(
            &gw,
            "POST",
            &one(&a_id, "/rotate"),
            Some(&admin),
            Some(r#"{"value": 5}"#),
        )
        .await;
    assert_error(s, &e, 422, "validation_error");
    assert_eq!(secrets_row(&pool).await, before);

    // update metadata: service cleared with null, environment changed; value untouched
    let (s, u) = seen
        .json(
            &gw,
            "PUT",
            &one(&w_id, ""),
            Some(&admin),
            json!({"service": null, "environment": "development"}),
        )
        .await;
    assert_eq!(s, 200, "{u}");
    assert_secret(&u, "WA_TOKEN", "development", None, "active", &org);
    assert_eq!(u["last_rotated_at"], Value::Null, "no value, no rotation");
    let (s, u) = seen
        .json(
            &gw,
            "PUT",
            &one(&w_id, ""),
            Some(&admin),
            json!({"service": "whatsapp"}),
        )
        .await;
    assert_eq!(s, 200, "{u}");
    assert_secret(
        &u,
        "WA_TOKEN",
        "development",
        Some("whatsapp"),
        "active",
        &org,
    );
    let (s, v) = seen
        .call(&gw, "GET", &one(&w_id, "/value"), Some(&admin), None)
        .await;
    assert_eq!((s, v), (200, json!({"value": PLAIN_WA})));

    // rotate without a value: same value, fresh seal, last_rotated_at set
    let sealed_before: Vec<u8> =
        sqlx::query_scalar("SELECT value_sealed FROM vault_secret WHERE secret_id = $1::uuid")
            .bind(&a_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    let (s, r) = seen
        .call(&gw, "POST", &one(&a_id, "/rotate"), Some(&admin), None)
        .await;
    assert_eq!(s, 200, "{r}");
    assert_secret(
        &r,
        "OPENAI_API_KEY",
        "staging",
        Some("openai"),
        "active",
        &org,
    );
    let first_rotation = r["last_rotated_at"].as_str().unwrap().to_string();
    let sealed_after: Vec<u8> =
        sqlx::query_scalar("SELECT value_sealed FROM vault_secret WHERE secret_id = $1::uuid")
            .bind(&a_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_ne!(sealed_before, sealed_after, "a fresh data key and nonce");
    let (s, v) = seen
        .call(&gw, "GET", &one(&a_id, "/value"), Some(&admin), None)
        .await;
    assert_eq!((s, v), (200, json!({"value": PLAIN})));
    // rotate with a value: replaced, last_rotated_at moves on
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (s, r) = seen
        .json(
            &gw,
            "POST",
            &one(&a_id, "/rotate"),
            Some(&admin),
            json!({"value": PLAIN_NEW}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let second_rotation = r["last_rotated_at"].as_str().unwrap().to_string();
    let parse = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
    };
    assert!(parse(&second_rotation) > parse(&first_rotation), "{r}");
    let (s, v) = seen
        .call(&gw, "GET", &one(&a_id, "/value"), Some(&admin), None)
        .await;
    assert_eq!((s, v), (200, json!({"value": PLAIN_NEW})));

    // test: a provider key is checked for real against the configured provider of its service
    // (the mock accepts it; the check is a use), a WhatsApp token is honestly not checkable yet
    // (and not a use)
    let (s, t) = seen
        .call(
            &gw,
            "POST",
            &one(&a_id, "/test"),
            Some(&admin),
            Some(r#"{"test_type": "connection"}"#),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["valid"], true, "{t}");
    assert!(
        t["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("{}/models", mock.base()))),
        "{t}"
    );
    assert_eq!(t.as_object().unwrap().len(), 2, "{t}");
    let (s, t) = seen
        .call(&gw, "POST", &one(&w_id, "/test"), Some(&admin), None)
        .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["valid"], true, "{t}");
    assert!(
        t["message"].as_str().unwrap().contains("/graph/v21.0/me"),
        "{t}"
    );
    let (s, e) = seen
        .call(
            &gw,
            "POST",
            &one(&w_id, "/test"),
            Some(&admin),
            Some(r#"{"test_type": 1}"#),
        )
        .await;
    assert_error(s, &e, 422, "validation_error");

    // usage
    let (s, u) = seen
        .call(&gw, "GET", &one(&a_id, "/usage"), Some(&admin), None)
        .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u.as_object().unwrap().len(), 4, "{u}");
    assert_eq!(u["secret_id"], a_id.as_str());
    assert_eq!(u["total_requests"], 1);
    assert_eq!(u["success_rate"], json!(1.0));
    assert!(u["last_used_at"].as_str().is_some(), "{u}");
    let (s, uw) = seen
        .call(&gw, "GET", &one(&w_id, "/usage"), Some(&admin), None)
        .await;
    assert_eq!(s, 200, "{uw}");
    assert_eq!(
        uw,
        json!({"secret_id": w_id, "total_requests": 1, "success_rate": 1.0,
               "last_used_at": uw["last_used_at"]})
    );
    assert!(uw["last_used_at"].as_str().is_some(), "{uw}");
    let (s, all) = seen
        .call(
            &gw,
            "GET",
            "/api/v1/secrets/usage/organization",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 200, "{all}");
    let all = all.as_array().unwrap().clone();
    assert_eq!(all.len(), 2);
    assert!(all.contains(&u) && all.contains(&uw), "{all:?}");

    // deactivate: the admin still reads the value (a person reading is not a use); test refuses
    let (s, d) = seen
        .call(&gw, "POST", &one(&a_id, "/deactivate"), Some(&admin), None)
        .await;
    assert_eq!(s, 200, "{d}");
    assert_secret(
        &d,
        "OPENAI_API_KEY",
        "staging",
        Some("openai"),
        "inactive",
        &org,
    );
    let (s, v) = seen
        .call(&gw, "GET", &one(&a_id, "/value"), Some(&admin), None)
        .await;
    assert_eq!((s, v), (200, json!({"value": PLAIN_NEW})));
    let (s, e) = seen
        .call(&gw, "POST", &one(&a_id, "/test"), Some(&admin), None)
        .await;
    assert_error(s, &e, 409, "conflict");
    let (s, d) = seen
        .call(&gw, "POST", &one(&w_id, "/deactivate"), Some(&admin), None)
        .await;
    assert_eq!(s, 200, "{d}");
    let (s, e) = seen
        .call(&gw, "POST", &one(&w_id, "/test"), Some(&admin), None)
        .await;
    assert_error(s, &e, 409, "conflict");
    let (s, u2) = seen
        .call(&gw, "GET", &one(&a_id, "/usage"), Some(&admin), None)
        .await;
    assert_eq!((s, u2), (200, u.clone()), "a refused test is no use");
    let (s, r) = seen
        .call(&gw, "POST", &one(&a_id, "/activate"), Some(&admin), None)
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], "active");

    // delete
    let (s, e) = seen
        .call(&gw, "DELETE", &one(&a_id, ""), Some(&admin), None)
        .await;
    assert_eq!((s, e), (204, Value::String(String::new())));
    let (s, e) = seen
        .call(&gw, "GET", &one(&a_id, ""), Some(&admin), None)
        .await;
    assert_error(s, &e, 404, "not_found");
    let (s, e) = seen
        .call(&gw, "DELETE", &one(&a_id, ""), Some(&admin), None)
        .await;
    assert_error(s, &e, 404, "not_found");
    let (s, l) = seen
        .call(&gw, "GET", "/api/v1/secrets", Some(&admin), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(l.as_array().unwrap().len(), 1, "{l}");

    // no plaintext in any answer but `/value`, in any column, or in the log
    assert!(seen.0.len() > 60);
    for body in &seen.0 {
        for p in [PLAIN, PLAIN_WA, PLAIN_NEW] {
            assert!(!body.contains(p), "{p} in {body}");
        }
    }
    let log = gw.log();
    assert!(!log.is_empty());
    for p in [PLAIN, PLAIN_WA, PLAIN_NEW] {
        assert!(!log.contains(p), "{p} in the gateway log");
    }
    let dump: Vec<String> = sqlx::query_scalar("SELECT row_to_json(s)::text FROM vault_secret s")
        .fetch_all(&pool)
        .await
        .unwrap();
    let audit: Vec<String> = sqlx::query_scalar("SELECT row_to_json(a)::text FROM audit_log a")
        .fetch_all(&pool)
        .await
        .unwrap();
    for row in dump.iter().chain(&audit) {
        for p in [PLAIN, PLAIN_WA, PLAIN_NEW] {
            assert!(!row.contains(p), "{p} stored in {row}");
        }
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn without_a_master_key_every_secrets_route_answers_503(pool: PgPool) {
    let (gw, _mock) = start(&pool, false).await;
    let mut seen = Seen::default();
    let (admin, _) = register(&gw, "ana@pytake.dev", "Ana Ltda").await;
    let id = uuid::Uuid::new_v4();
    for (m, path) in [
        ("GET", "/api/v1/secrets/".to_string()),
        ("GET", "/api/v1/secrets".to_string()),
        ("GET", format!("/api/v1/secrets/{id}")),
        ("GET", format!("/api/v1/secrets/{id}/value")),
        ("GET", "/api/v1/secrets/usage/organization".to_string()),
    ] {
        let (s, e) = seen.call(&gw, m, &path, Some(&admin), None).await;
        assert_error(s, &e, 503, "not_configured");
        assert!(
            e["detail"]
                .as_str()
                .unwrap()
                .contains("CATRACA_SECRET_KEYS"),
            "{e}"
        );
    }
    let (s, e) = seen
        .json(
            &gw,
            "POST",
            "/api/v1/secrets/",
            Some(&admin),
            json!({"key": "K", "value": PLAIN}),
        )
        .await;
    assert_error(s, &e, 503, "not_configured");
    assert_eq!(count(&pool, "SELECT count(*) FROM vault_secret").await, 0);
}
