//! PyTake's WhatsApp (issue 15 item 6) against the real binary and the mock's Graph API
//! stand-in: numbers registered from a WABA with a `whatsapp` vault secret, sends (text and
//! template) reaching the Graph API with the secret's token, the mock's signed status webhooks
//! stored by catraca, the role matrix (viewer cannot send; another organization sees
//! nothing), inactive secrets never used, every use counted, the webhook's signature checked
//! over the raw bytes (bad or missing: 401, nothing changed), redeliveries applied once, and
//! the verify handshake; without an app secret the webhook is 503.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::{Gateway, Mock, call, db_url, secret};

pub const MASTER: &str = "pytake-wa-master-key-0123456789";
pub const JWT: &str = "pytake-wa-jwt-secret-pytake-wa-jwt-0123";
pub const APP_SECRET: &str = "wa-app-secret-5f4e3d2c1b";
pub const VERIFY: &str = "wa-verify-token-9a8b7c";
pub const TOKEN: &str = "EAAG-wa-token-abc123-never-logged";

/// A gateway on `pool` with the vault, WhatsApp pointed at `mock`'s Graph stand-in, and
/// `extra_env` (e.g. the automation runner's knobs).
pub async fn start(pool: &PgPool, mock: &Mock, extra_env: &[(&str, &str)]) -> Gateway {
    secret(TOKEN);
    secret(APP_SECRET);
    let url = db_url(pool, None);
    let key = "6a".repeat(32);
    let mut env = vec![
        ("DATABASE_URL", url.as_str()),
        ("CATRACA_MASTER_KEY", MASTER),
        ("CATRACA_JWT_SECRET", JWT),
        ("CATRACA_SECRET_KEY", key.as_str()),
        ("WHATSAPP_APP_SECRET", APP_SECRET),
        ("WA_VERIFY", VERIFY),
    ];
    env.extend_from_slice(extra_env);
    let extra = format!(
        "whatsapp: {{graph_base_url: \"http://{}/graph/v21.0\", verify_token_env: WA_VERIFY}}\n",
        mock.addr
    );
    Gateway::start_with_env(
        &crate::common::single_model(mock, "chat-model", &extra),
        &env,
    )
    .await
}

/// Register a PyTake user and organization: (access token, organization id).
pub async fn register(gw: &Gateway, email: &str, org: &str) -> (String, String) {
    let (s, v) = call(
        gw,
        "POST",
        "/api/v1/auth/register",
        None,
        Some(json!({"email": email, "password": "senha-forte-1", "name": "Ana", "organization_name": org})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    (
        v["access_token"].as_str().unwrap().to_string(),
        v["user"]["organization_id"].as_str().unwrap().to_string(),
    )
}

/// A member of `org` with `role` (operator API), logged in: the access token.
pub async fn member(gw: &Gateway, org: &str, email: &str, role: &str) -> String {
    let (s, u) = call(
        gw,
        "POST",
        "/admin/v1/users",
        Some(MASTER),
        Some(
            json!({"email": email, "name": role, "password": "senha-forte-1",
                    "organization_id": org, "role": role}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{u}");
    let (s, l) = call(
        gw,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"email": email, "password": "senha-forte-1"})),
    )
    .await;
    assert_eq!(s, 200, "{l}");
    l["access_token"].as_str().unwrap().to_string()
}

/// A vault secret: its id.
pub async fn add_secret(
    gw: &Gateway,
    token: &str,
    key: &str,
    value: &str,
    service: &str,
) -> String {
    let (s, v) = call(
        gw,
        "POST",
        "/api/v1/secrets/",
        Some(token),
        Some(json!({"key": key, "value": value, "service": service})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// Register WABA `waba`'s numbers with secret `sid`: the numbers.
pub async fn sync(gw: &Gateway, token: &str, sid: &str, waba: &str) -> Vec<Value> {
    let (s, v) = call(
        gw,
        "POST",
        "/api/v1/whatsapp/numbers/sync",
        Some(token),
        Some(json!({"secret_id": sid, "waba_id": waba})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v.as_array().unwrap().clone()
}

/// The error body is exactly `{detail, status_code, error_code}`.
pub fn assert_error(s: u16, v: &Value, status: u16, code: &str) {
    assert_eq!(s, status, "{v}");
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    assert_eq!(o.len(), 3, "{v}");
    assert_eq!(o["status_code"], json!(status), "{v}");
    assert_eq!(o["error_code"], json!(code), "{v}");
}

/// The Graph calls the mock saw to `path_end` (e.g. `/messages`).
pub async fn graph_calls(mock: &Mock, path_end: &str) -> Vec<Value> {
    mock.stats().await["graph_calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["path"].as_str().unwrap().ends_with(path_end))
        .cloned()
        .collect()
}

async fn scalar(pool: &PgPool, sql: &str, bind: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(bind)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn message_status(pool: &PgPool, wamid: &str) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM whatsapp_message WHERE wamid = $1")
        .bind(wamid)
        .fetch_optional(pool)
        .await
        .unwrap()
}

/// POST a webhook body with a signature header (or none).
async fn post_webhook(gw: &Gateway, body: &str, sig: Option<&str>) -> (u16, Value) {
    let mut rb = reqwest::Client::new()
        .post(gw.url("/api/v1/whatsapp/webhook"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(s) = sig {
        rb = rb.header("X-Hub-Signature-256", s);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn status_body(pnid: &str, wamid: &str, status: &str) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": pnid},
                  "statuses": [{"id": wamid, "status": status, "timestamp": "1700000000", "recipient_id": "5511988887777"}]}}]}]})
    .to_string()
}

#[sqlx::test(migrations = "./migrations")]
async fn numbers_send_text_and_template_statuses_come_back_signed_roles_and_vault_use(
    pool: PgPool,
) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock, &[]).await;
    let (admin, org) = register(&gw, "wa-admin@example.com", "Loja A").await;
    let viewer = member(&gw, &org, "wa-viewer@example.com", "viewer").await;
    let agent = member(&gw, &org, "wa-agent@example.com", "agent").await;
    let (admin_b, _org_b) = register(&gw, "wa-b@example.com", "Loja B").await;

    // no number yet: nothing listed, a send is a 400 naming the way to register one
    let (s, v) = call(&gw, "GET", "/api/v1/whatsapp/numbers", Some(&viewer), None).await;
    assert_eq!((s, v.clone()), (200, json!([])), "{v}");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/whatsapp/send",
        Some(&agent),
        Some(json!({"to": "5511988887777", "message": "oi"})),
    )
    .await;
    assert_error(s, &v, 400, "bad_request");
    assert!(
        v["detail"].as_str().unwrap().contains("numbers/sync"),
        "{v}"
    );

    // numbers come from the Graph API with the whatsapp secret's token
    let sid = add_secret(&gw, &admin, "wa-token", TOKEN, "whatsapp").await;
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/whatsapp/numbers/sync",
        Some(&agent),
        Some(json!({"secret_id": sid, "waba_id": "4001"})),
    )
    .await;
    assert_error(s, &v, 403, "forbidden");
    let other_service = add_secret(&gw, &admin, "oa", "sk-not-whatsapp-1", "openai").await;
    for (body, status, code) in [
        (
            json!({"secret_id": sid, "waba_id": "12ab"}),
            400,
            "bad_request",
        ),
        (
            json!({"secret_id": other_service, "waba_id": "4001"}),
            400,
            "bad_request",
        ),
        (
            json!({"secret_id": uuid::Uuid::new_v4(), "waba_id": "4001"}),
            404,
            "not_found",
        ),
        (json!({"waba_id": "4001"}), 422, "validation_error"),
    ] {
        let (s, v) = call(
            &gw,
            "POST",
            "/api/v1/whatsapp/numbers/sync",
            Some(&admin),
            Some(body),
        )
        .await;
        assert_error(s, &v, status, code);
    }
    assert!(graph_calls(&mock, "/phone_numbers").await.is_empty());
    let (s, _) = call(&gw, "GET", "/api/v1/whatsapp/numbers", None, None).await;
    assert_eq!(s, 401);
    let nums = sync(&gw, &admin, &sid, "4001").await;
    assert_eq!(nums.len(), 2, "{nums:?}");
    let calls = graph_calls(&mock, "/phone_numbers").await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["path"], "/graph/v21.0/4001/phone_numbers");
    assert_eq!(calls[0]["authorization"], format!("Bearer {TOKEN}"));
    let (s, listed) = call(&gw, "GET", "/api/v1/whatsapp/numbers", Some(&viewer), None).await;
    assert_eq!(s, 200, "{listed}");
    let first = &listed[0];
    for f in [
        "id",
        "phone_number",
        "display_name",
        "status",
        "verified",
        "organization_id",
    ] {
        assert!(first.get(f).is_some(), "{f} missing: {first}");
    }
    assert_eq!(first["status"], "active");
    assert_eq!(first["verified"], true);
    assert_eq!(first["organization_id"], org.as_str());
    assert_eq!(first["phone_number_id"], "40011");
    assert_eq!(listed[1]["status"], "pending");
    assert_eq!(listed[1]["verified"], false);
    // another organization sees none of them, and cannot take them over
    let (s, v) = call(&gw, "GET", "/api/v1/whatsapp/numbers", Some(&admin_b), None).await;
    assert_eq!((s, v.clone()), (200, json!([])), "{v}");
    let sid_b = add_secret(&gw, &admin_b, "wa-b", "EAAG-other-org-token", "whatsapp").await;
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/whatsapp/numbers/sync",
        Some(&admin_b),
        Some(json!({"secret_id": sid_b, "waba_id": "4001"})),
    )
    .await;
    assert_error(s, &v, 409, "conflict");
    // nor use org A's secret
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/whatsapp/numbers/sync",
        Some(&admin_b),
        Some(json!({"secret_id": sid, "waba_id": "4002"})),
    )
    .await;
    assert_error(s, &v, 404, "not_found");

    // the mock posts signed statuses back to catraca
    mock.set(
        json!({"graph_webhook_url": gw.url("/api/v1/whatsapp/webhook"),
                    "graph_app_secret": APP_SECRET}),
    )
    .await;

    // a viewer cannot send: 403, nothing reaches the Graph API
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/whatsapp/send",
        Some(&viewer),
        Some(json!({"to": "5511988887777", "message": "oi"})),
    )
    .await;
    assert_error(s, &v, 403, "forbidden");
    assert!(graph_calls(&mock, "/messages").await.is_empty());

    // an agent sends text
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/whatsapp/send",
        Some(&agent),
        Some(json!({"to": "+5511988887777", "message": "Olá, tudo bem?"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    assert_eq!(v["status"], "accepted");
    let wamid = v["message_id"].as_str().unwrap().to_string();
    assert!(wamid.starts_with("wamid."), "{v}");
    let sent = graph_calls(&mock, "/messages").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["path"], "/graph/v21.0/40011/messages");
    assert_eq!(sent[0]["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(
        sent[0]["body"],
        json!({"messaging_product": "whatsapp", "recipient_type": "individual",
               "to": "5511988887777", "type": "text",
               "text": {"preview_url": false, "body": "Olá, tudo bem?"}})
    );
    // sent, then delivered, signed by the mock and stored by catraca
    let deadline = Instant::now() + Duration::from_secs(10);
    while message_status(&pool, &wamid).await.as_deref() != Some("delivered") {
        assert!(
            Instant::now() < deadline,
            "status not delivered: {:?} {}",
            message_status(&pool, &wamid).await,
            mock.stats().await["graph_webhooks"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM whatsapp_event WHERE wamid = $1",
            &wamid
        )
        .await,
        2
    );
    let hooks = mock.stats().await["graph_webhooks"].clone();
    assert!(
        hooks
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["http_status"] == 200),
        "{hooks}"
    );

    // a template
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/whatsapp/send",
        Some(&admin),
        Some(json!({"to": "5511988887777", "message": "", "type": "template", "template_id": "hello_world"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let sent = graph_calls(&mock, "/messages").await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["body"]["type"], "template");
    assert_eq!(
        sent[1]["body"]["template"],
        json!({"name": "hello_world", "language": {"code": "pt_BR"}})
    );

    // bad input: schema errors 422, rule errors 400, nothing sent
    for (body, status) in [
        (json!({"message": "oi"}), 422),
        (json!({"to": "5511988887777"}), 400),
        (json!({"to": "55 11", "message": "oi"}), 400),
        (
            json!({"to": "5511988887777", "message": "oi", "type": "audio"}),
            400,
        ),
        (
            json!({"to": "5511988887777", "message": "oi", "type": "template"}),
            400,
        ),
        (
            json!({"to": "5511988887777", "message": "oi", "type": "template", "template_id": "Não Vale"}),
            400,
        ),
        (
            json!({"to": "5511988887777", "message": "x".repeat(4097)}),
            400,
        ),
        (
            json!({"to": "5511988887777", "message": "oi", "phone_number_id": "999"}),
            404,
        ),
    ] {
        let (s, v) = call(
            &gw,
            "POST",
            "/api/v1/whatsapp/send",
            Some(&agent),
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, status, "{body} -> {v}");
    }
    let (s, _) = call(
        &gw,
        "POST",
        "/api/v1/whatsapp/send",
        None,
        Some(json!({"to": "5511988887777", "message": "oi"})),
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(graph_calls(&mock, "/messages").await.len(), 2);

    // every use of the token is counted: the listing and two sends
    let (s, u) = call(
        &gw,
        "GET",
        &format!("/api/v1/secrets/{sid}/usage"),
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["total_requests"], 3, "{u}");
    assert_eq!(u["success_rate"], 1.0, "{u}");

    // the vault's test checks a WhatsApp token against the Graph API for real
    let (s, t) = call(
        &gw,
        "POST",
        &format!("/api/v1/secrets/{sid}/test"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["valid"], true, "{t}");
    assert_eq!(graph_calls(&mock, "/me").await.len(), 1);

    // an inactive secret is never used: 409, nothing sent
    let (s, _) = call(
        &gw,
        "POST",
        &format!("/api/v1/secrets/{sid}/deactivate"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/whatsapp/send",
        Some(&agent),
        Some(json!({"to": "5511988887777", "message": "oi"})),
    )
    .await;
    assert_error(s, &v, 409, "conflict");
    assert_eq!(graph_calls(&mock, "/messages").await.len(), 2);

    // a token the Graph API refuses: 502 in PyTake's shape, counted as a failed use
    let (s, _) = call(
        &gw,
        "POST",
        &format!("/api/v1/secrets/{sid}/activate"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &gw,
        "POST",
        &format!("/api/v1/secrets/{sid}/rotate"),
        Some(&admin),
        Some(json!({"value": "EAAG-invalid-revoked"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/whatsapp/send",
        Some(&agent),
        Some(json!({"to": "5511988887777", "message": "oi"})),
    )
    .await;
    assert_error(s, &v, 502, "whatsapp_upstream_error");
    assert!(v["detail"].as_str().unwrap().contains("401"), "{v}");
    let (_, u) = call(
        &gw,
        "GET",
        &format!("/api/v1/secrets/{sid}/usage"),
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(u["total_requests"], 5, "{u}");
    let (s, t) = call(
        &gw,
        "POST",
        &format!("/api/v1/secrets/{sid}/test"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!((s, t["valid"].clone()), (200, json!(false)), "{t}");
}

#[sqlx::test(migrations = "./migrations")]
async fn webhook_signature_checked_over_raw_bytes_events_applied_once_and_handshake(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock, &[]).await;
    let (admin, _org) = register(&gw, "wh-admin@example.com", "Loja W").await;
    let sid = add_secret(&gw, &admin, "wa-token", TOKEN, "whatsapp").await;
    sync(&gw, &admin, &sid, "5001").await;
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/whatsapp/send",
        Some(&admin),
        Some(json!({"to": "5511988887777", "message": "oi"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let wamid = v["message_id"].as_str().unwrap().to_string();
    assert_eq!(
        message_status(&pool, &wamid).await.as_deref(),
        Some("accepted")
    );

    let sign = |b: &str| catraca::domain::whatsapp::sign(APP_SECRET, b.as_bytes());
    let events = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM whatsapp_event")
            .fetch_one(&pool)
            .await
            .unwrap()
    };

    // bad signatures change nothing: missing, another secret's, another body's, malformed
    let read = status_body("50011", &wamid, "read");
    let other = status_body("50011", &wamid, "delivered");
    for sig in [
        None,
        Some(catraca::domain::whatsapp::sign(
            "not-the-secret",
            read.as_bytes(),
        )),
        Some(sign(&other)),
        Some("sha256=nothex".to_string()),
        Some(sign(&read).trim_start_matches("sha256=").to_string()),
    ] {
        let (s, v) = post_webhook(&gw, &read, sig.as_deref()).await;
        assert_error(s, &v, 401, "invalid_signature");
    }
    // the same JSON re-serialised (a space added) no longer matches the signature
    let (s, v) = post_webhook(&gw, &read.replacen(':', ": ", 1), Some(&sign(&read))).await;
    assert_error(s, &v, 401, "invalid_signature");
    assert_eq!(events().await, 0);
    assert_eq!(
        message_status(&pool, &wamid).await.as_deref(),
        Some("accepted")
    );

    // signed: applied; delivered twice: applied once
    let (s, v) = post_webhook(&gw, &read, Some(&sign(&read))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["applied"].clone(), v["duplicates"].clone()),
        (json!(1), json!(0))
    );
    let (s, v) = post_webhook(&gw, &read, Some(&sign(&read))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["applied"].clone(), v["duplicates"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(events().await, 1);
    assert_eq!(message_status(&pool, &wamid).await.as_deref(), Some("read"));
    // a late `delivered` does not move a read message back
    let (s, _) = post_webhook(&gw, &other, Some(&sign(&other))).await;
    assert_eq!(s, 200);
    assert_eq!(message_status(&pool, &wamid).await.as_deref(), Some("read"));

    // `sent` and `delivered` can reach the webhook before the send's reply is stored (the
    // mock, like the Cloud API, posts them at once): they are applied when the message is
    let early = "wamid.EARLY-1";
    for st in ["sent", "delivered"] {
        let b = status_body("50011", early, st);
        let (s, v) = post_webhook(&gw, &b, Some(&sign(&b))).await;
        assert_eq!((s, v["applied"].clone()), (200, json!(1)), "{v}");
    }
    assert_eq!(message_status(&pool, early).await, None);
    let (org_id, number_id): (uuid::Uuid, uuid::Uuid) = sqlx::query_as(
        "SELECT organization_id, number_id FROM whatsapp_number WHERE phone_number_id = '50011'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let stored = catraca::store::whatsapp::insert_message(
        &pool,
        catraca::store::whatsapp::NewMessage {
            organization_id: org_id,
            number_id,
            wamid: early,
            direction: "out",
            peer: "5511988887777",
            kind: "text",
            body: Some("oi"),
            template_name: None,
            status: "accepted",
            job_id: None,
        },
    )
    .await
    .unwrap();
    assert!(stored);
    assert_eq!(
        message_status(&pool, early).await.as_deref(),
        Some("delivered")
    );

    // a received message, delivered twice, is stored once
    let inbound = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"metadata": {"phone_number_id": "50011"},
                  "messages": [{"id": "wamid.IN-1", "from": "5511977776666", "type": "text", "text": {"body": "quero comprar"}}]}}]}]})
    .to_string();
    for applied in [1, 0] {
        let (s, v) = post_webhook(&gw, &inbound, Some(&sign(&inbound))).await;
        assert_eq!((s, v["applied"].clone()), (200, json!(applied)), "{v}");
    }
    let (n, body): (i64, Option<String>) = sqlx::query_as(
        "SELECT count(*), max(body) FROM whatsapp_message WHERE wamid = 'wamid.IN-1' AND direction = 'in'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((n, body.as_deref()), (1, Some("quero comprar")));

    // a number nobody registered: ignored; a signed body that is not a webhook: 400
    let stray = status_body("777", "wamid.X", "sent");
    let (s, v) = post_webhook(&gw, &stray, Some(&sign(&stray))).await;
    assert_eq!((s, v["ignored"].clone()), (200, json!(1)), "{v}");
    let (s, v) = post_webhook(&gw, "[1,2]", Some(&sign("[1,2]"))).await;
    assert_error(s, &v, 400, "bad_request");
    // read, the late delivered (recorded, not applied backwards), the early sent and
    // delivered, and the received message
    assert_eq!(events().await, 5);

    // the subscription handshake
    let get = |q: String| {
        let url = gw.url(&format!("/api/v1/whatsapp/webhook?{q}"));
        async move {
            let r = reqwest::get(url).await.unwrap();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), ct, r.text().await.unwrap())
        }
    };
    let (s, ct, text) = get(format!(
        "hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=1158201444"
    ))
    .await;
    assert_eq!((s, text.as_str()), (200, "1158201444"));
    assert!(ct.unwrap().starts_with("text/plain"));
    for q in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1".to_string(),
        format!("hub.mode=unsubscribe&hub.verify_token={VERIFY}&hub.challenge=1"),
        "hub.mode=subscribe&hub.challenge=1".to_string(),
        String::new(),
    ] {
        let (s, _, text) = get(q.clone()).await;
        assert_eq!(s, 403, "{q}: {text}");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn without_an_app_secret_the_webhook_is_503_and_changes_nothing(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock, &[("WHATSAPP_APP_SECRET", "")]).await;
    let body = status_body("1", "wamid.Z", "sent");
    let sig = catraca::domain::whatsapp::sign(APP_SECRET, body.as_bytes());
    let (s, v) = post_webhook(&gw, &body, Some(&sig)).await;
    assert_error(s, &v, 503, "not_configured");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("WHATSAPP_APP_SECRET"),
        "{v}"
    );
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM whatsapp_event")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
}
