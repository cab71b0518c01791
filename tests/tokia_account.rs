//! Tokia's account routes end to end (issue 14 item 5): `me/profile`, `me/referrals`,
//! `me/notifications`, `me/export`, `GET|POST me/teams`, `PUT me/preferences` — each answer's
//! exact shape, each refusal's exact body (and that it changed nothing), the usage exports in
//! the caller's stored time zone, referral credits summed exactly from the ledger, the LGPD
//! export holding nothing of another user (one in the same organization, invited by the
//! caller), audited, `Cache-Control: no-store`, and its cap of 5 an hour (the sixth 429, also
//! when requests race).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::*;

const MASTER: &str = "tokia-account-master-key-0123456789";

/// `m`: $0.01 a request (R$ 0.05 at FX 5).
fn config(mock: &Mock) -> String {
    format!(
        "pricing: {{fx_usd_brl: \"5.0\", default_markup: \"1.0\"}}\nproviders:\n  - {{name: a, base_url: \"{}\"}}\ndeployments:\n  - {{name: da, provider: a, model: up}}\nmodels:\n  - {{name: m, usd_per_request: \"0.01\", deployments: [da]}}\n",
        mock.base()
    )
}

async fn start(pool: &PgPool, mock: &Mock) -> Gateway {
    Gateway::start_with_env(
        &config(mock),
        &[
            ("DATABASE_URL", &db_url(pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
        ],
    )
    .await
}

/// A request with a Tokia key (or none), a raw body and optional `Accept-Language: en`:
/// (status, headers, body as JSON or as a JSON string).
async fn send(
    gw: &Gateway,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
    english: bool,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut rb = reqwest::Client::new().request(method.parse().unwrap(), gw.url(path));
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    if english {
        rb = rb.header("accept-language", "en");
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    let h = r.headers().clone();
    let text = r.text().await.unwrap();
    (
        s,
        h,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(gw: &Gateway, path: &str, key: &str) -> (u16, Value) {
    let (s, _, v) = send(gw, "GET", path, Some(key), None, false).await;
    (s, v)
}

async fn put_prefs(gw: &Gateway, key: &str, body: &str) -> (u16, Value) {
    let (s, _, v) = send(
        gw,
        "PUT",
        "/v1/me/preferences",
        Some(key),
        Some(body),
        false,
    )
    .await;
    (s, v)
}

fn error(message: &str, kind: &str, code: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "code": code}})
}

fn invalid(field: &str, pt_reason: &str) -> Value {
    error(
        &format!("Parâmetro inválido: {field} ({pt_reason})"),
        "invalid_request_error",
        "invalid_parameter",
    )
}

fn keys_of(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn rfc(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// A live `sk-tokia-` key of `org` made without a user.
async fn userless_key(pool: &PgPool, org: &str) -> String {
    let plaintext = secret(&format!("sk-tokia-{}", uuid::Uuid::new_v4().simple()));
    sqlx::query(
        "INSERT INTO api_key (organization_id, key_hash, prefix, name)
         VALUES ($1::uuid, sha256($2::bytea), 'sk-tokia-x', 'sem usuario')",
    )
    .bind(org)
    .bind(plaintext.as_bytes())
    .execute(pool)
    .await
    .unwrap();
    plaintext
}

/// A key of `org` for `user` (through the operator API).
async fn key_for(gw: &Gateway, org: &str, user: &str) -> String {
    let (s, k) = call(
        gw,
        "POST",
        "/admin/v1/keys",
        Some(MASTER),
        Some(json!({"organization_id": org, "user_id": user, "prefix": "sk-tokia-", "name": "k2"})),
    )
    .await;
    assert_eq!(s, 201, "{k}");
    secret(k["key"].as_str().unwrap())
}

const OPERATIONS: [(&str, &str, Option<&str>); 7] = [
    ("GET", "/v1/me/profile", None),
    ("GET", "/v1/me/referrals", None),
    ("GET", "/v1/me/notifications", None),
    ("GET", "/v1/me/export", None),
    ("GET", "/v1/me/teams", None),
    ("POST", "/v1/me/teams", Some(r#"{"name": "Time"}"#)),
    (
        "PUT",
        "/v1/me/preferences",
        Some(r#"{"preferred_locale": "en"}"#),
    ),
];

#[sqlx::test(migrations = "./migrations")]
async fn profile_and_preferences_and_the_exports_time_zone(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let t = Tenant::make(&gw, MASTER, "Conta Ltda", Some("10.00")).await;

    // the profile: the user's fields, the key's organization, defaults, flags; nothing else
    let created: time::OffsetDateTime =
        sqlx::query_scalar("SELECT created_at FROM app_user WHERE user_id = $1::uuid")
            .bind(&t.user)
            .fetch_one(&pool)
            .await
            .unwrap();
    let want = json!({
        "id": t.user, "email": t.email, "name": "Conta Ltda", "company": null, "phone": null,
        "avatar_url": null, "created_at": rfc(created),
        "organization": {"id": t.org, "name": "Conta Ltda", "plan": null},
        "role": "owner",
        "preferences": {"timezone": "America/Sao_Paulo", "preferred_locale": "pt-BR", "weekly_digest_enabled": true},
        "flags": {"email_verified": false, "is_admin": true, "prepaid": true},
    });
    let (s, p) = get(&gw, "/v1/me/profile", &t.key).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p, want);
    assert!(!p.to_string().contains("argon2"), "{p}");

    // an admin added to the organization is an admin; a viewer is not
    let (s, u) = call(
        &gw,
        "POST",
        "/admin/v1/users",
        Some(MASTER),
        Some(json!({"email": "vera@example.com", "name": "Vera", "organization_id": t.org, "role": "viewer"})),
    )
    .await;
    assert_eq!(s, 201, "{u}");
    let viewer_key = key_for(&gw, &t.org, u["id"].as_str().unwrap()).await;
    let (_, vp) = get(&gw, "/v1/me/profile", &viewer_key).await;
    assert_eq!(vp["role"], "viewer");
    assert_eq!(vp["flags"]["is_admin"], false);
    assert_eq!(vp["email"], "vera@example.com");
    // the plan is shown by name, as in the team list
    let (s, v) = call(
        &gw,
        "PATCH",
        &format!("/admin/v1/organizations/{}", t.org),
        Some(MASTER),
        Some(json!({"plan": "starter"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, p) = get(&gw, "/v1/me/profile", &t.key).await;
    assert_eq!(p["organization"]["plan"], "Starter");
    let (_, teams) = get(&gw, "/v1/me/teams", &t.key).await;
    assert_eq!(teams["teams"][0]["plan"], "Starter");

    // the exports read in the default zone until one is stored
    let (s, e) = get(&gw, "/v1/usage/export.json", &t.key).await;
    assert_eq!(s, 200, "{e}");
    assert_eq!(e["period"]["timezone"], "America/Sao_Paulo");

    // PUT keeps what it omits
    let (s, v) = put_prefs(&gw, &t.key, r#"{"timezone": "Pacific/Kiritimati"}"#).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"timezone": "Pacific/Kiritimati", "preferred_locale": "pt-BR", "weekly_digest_enabled": true})
    );
    let (s, v) = put_prefs(&gw, &t.key, r#"{"weekly_digest_enabled": false}"#).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"timezone": "Pacific/Kiritimati", "preferred_locale": "pt-BR", "weekly_digest_enabled": false})
    );
    let (s, v) = put_prefs(&gw, &t.key, r#"{"preferred_locale": "en-US"}"#).await;
    assert_eq!(s, 200, "{v}");
    let stored = json!({"timezone": "Pacific/Kiritimati", "preferred_locale": "en-US", "weekly_digest_enabled": false});
    assert_eq!(v, stored);
    let (s, v) = put_prefs(&gw, &t.key, "{}").await;
    assert_eq!((s, &v), (200, &stored));
    let audited = count(
        &pool,
        "SELECT count(*) FROM audit_log WHERE action = 'user.preferences'",
    )
    .await;
    assert_eq!(audited, 4);

    // every refusal: its exact body, and nothing changed
    let long = format!(r#"{{"timezone": "{}"}}"#, "A".repeat(65));
    let refusals: Vec<(&str, Value)> = vec![
        (
            r#"{"timezone": "Mars/Olympus"}"#,
            invalid("timezone", "valor inválido"),
        ),
        (
            r#"{"timezone": "America/Sao Paulo"}"#,
            invalid("timezone", "valor inválido"),
        ),
        (
            r#"{"timezone": "america/sao_paulo"}"#,
            invalid("timezone", "valor inválido"),
        ),
        (
            r#"{"timezone": "posix/America/Sao_Paulo"}"#,
            invalid("timezone", "valor inválido"),
        ),
        (r#"{"timezone": ""}"#, invalid("timezone", "valor inválido")),
        (&long, invalid("timezone", "valor inválido")),
        (
            r#"{"timezone": null}"#,
            invalid("timezone", "valor inválido"),
        ),
        (r#"{"timezone": 3}"#, invalid("timezone", "valor inválido")),
        (
            r#"{"preferred_locale": "pt_BR"}"#,
            invalid("preferred_locale", "valor inválido"),
        ),
        (
            r#"{"preferred_locale": "PT"}"#,
            invalid("preferred_locale", "valor inválido"),
        ),
        (
            r#"{"preferred_locale": "pt-br"}"#,
            invalid("preferred_locale", "valor inválido"),
        ),
        (
            r#"{"weekly_digest_enabled": "no"}"#,
            invalid("weekly_digest_enabled", "valor inválido"),
        ),
        (
            r#"{"timeZone": "UTC"}"#,
            invalid("timeZone", "valor inválido"),
        ),
        // a valid field next to a bad one is not applied either
        (
            r#"{"preferred_locale": "es", "timezone": "Nowhere/City"}"#,
            invalid("timezone", "valor inválido"),
        ),
        (
            "[]",
            error(
                "Corpo inválido (a JSON object)",
                "invalid_request_error",
                "invalid_body",
            ),
        ),
        (
            r#"{"timezone": "UTC\u0000"}"#,
            error(
                "Corpo inválido (NUL)",
                "invalid_request_error",
                "invalid_body",
            ),
        ),
    ];
    for (body, want) in &refusals {
        let (s, v) = put_prefs(&gw, &t.key, body).await;
        assert_eq!((s, &v), (400, want), "{body}");
    }
    for body in ["", "not json", r#"{"timezone": "UTC""#] {
        let (s, v) = put_prefs(&gw, &t.key, body).await;
        assert_eq!(s, 400, "{body:?}: {v}");
        assert_eq!(v["error"]["code"], "invalid_body", "{body:?}");
        assert_eq!(keys_of(&v["error"]), set(&["message", "type", "code"]));
    }
    // in English, the reason is named
    let (s, _, v) = send(
        &gw,
        "PUT",
        "/v1/me/preferences",
        Some(&t.key),
        Some(r#"{"timezone": "Mars/Olympus"}"#),
        true,
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        v,
        error(
            "Invalid parameter: timezone (an IANA time zone name (e.g. America/Sao_Paulo))",
            "invalid_request_error",
            "invalid_parameter"
        )
    );
    let (_, p) = get(&gw, "/v1/me/profile", &t.key).await;
    assert_eq!(p["preferences"], stored);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM audit_log WHERE action = 'user.preferences'"
        )
        .await,
        4
    );
    // the viewer's preferences are theirs: still the defaults
    let (_, vp) = get(&gw, "/v1/me/profile", &viewer_key).await;
    assert_eq!(vp["preferences"]["timezone"], "America/Sao_Paulo");

    // the exports now read in the stored zone: today is Kiritimati's (UTC+14), and an event's
    // date is its Kiritimati day, which is never its Pago Pago (UTC-11) day
    let t0 = Instant::now();
    while chat_status(&gw, &t.key, "m").await != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the top-up never reached the gateway"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t0 = Instant::now();
    while count(&pool, "SELECT count(*) FROM usage_event").await < 1 {
        assert!(t0.elapsed() < Duration::from_secs(10), "no usage event");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    #[derive(sqlx::FromRow)]
    struct Days {
        today: String,
        kiritimati: String,
        pago_pago: String,
    }
    let d: Days = sqlx::query_as(
        "SELECT (now() AT TIME ZONE 'Pacific/Kiritimati')::date::text AS today,
                (created_at AT TIME ZONE 'Pacific/Kiritimati')::date::text AS kiritimati,
                (created_at AT TIME ZONE 'Pacific/Pago_Pago')::date::text AS pago_pago
         FROM usage_event",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_ne!(d.kiritimati, d.pago_pago);
    let (s, e) = get(&gw, "/v1/usage/export.json", &t.key).await;
    assert_eq!(s, 200, "{e}");
    assert_eq!(e["period"]["timezone"], "Pacific/Kiritimati");
    assert_eq!(e["period"]["to"], d.today.as_str());
    assert_eq!(e["total_events"], 1);
    assert_eq!(e["events"][0]["date"], d.kiritimati.as_str());
    let r = reqwest::Client::new()
        .get(gw.url("/v1/usage/export.csv"))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row[2], d.kiritimati, "{csv}");
    // another user of the same organization exports in their own (default) zone
    let (_, e) = get(&gw, "/v1/usage/export.json", &viewer_key).await;
    assert_eq!(e["period"]["timezone"], "America/Sao_Paulo");
}

#[sqlx::test(migrations = "./migrations")]
async fn notifications_are_the_users_sent_and_failed_mail(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    // each tenant's owner was invited: one queued `invitation` mail each
    let a = Tenant::make(&gw, MASTER, "Notifica A", None).await;
    let b = Tenant::make(&gw, MASTER, "Notifica B", None).await;

    // nothing sent yet: a queued mail is not a notification
    let (s, v) = get(&gw, "/v1/me/notifications", &a.key).await;
    assert_eq!((s, &v), (200, &json!({"total": 0, "notifications": []})));

    // A's invitation delivered; a reset mail to A (upper-case address) given up; one still
    // queued; B's mail delivered
    sqlx::query(
        "UPDATE outbox_email SET sent_at = now() - interval '2 minutes', attempts = 1
         WHERE lower(to_address) IN ($1, $2)",
    )
    .bind(&a.email)
    .bind(&b.email)
    .execute(&pool)
    .await
    .unwrap();
    let failed_id: i64 = sqlx::query_scalar(
        "INSERT INTO outbox_email (to_address, template, subject, body, attempts, failed_at, last_error)
         VALUES (upper($1), 'reset_password', 'Redefinir', 'codigo-secreto-123', 5, now() - interval '1 minute',
                 '550 5.1.1 mailbox unavailable') RETURNING outbox_email_id",
    )
    .bind(&a.email)
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO outbox_email (to_address, template, subject, body) VALUES ($1, 'verify_email', 'x', 'y')",
    )
    .bind(&a.email)
    .execute(&pool)
    .await
    .unwrap();
    #[derive(sqlx::FromRow)]
    struct Sent {
        outbox_email_id: i64,
        sent_at: time::OffsetDateTime,
    }
    let invite: Sent = sqlx::query_as(
        "SELECT outbox_email_id, sent_at FROM outbox_email WHERE to_address = $1 AND template = 'invitation'",
    )
    .bind(&a.email)
    .fetch_one(&pool)
    .await
    .unwrap();
    let failed_at: time::OffsetDateTime =
        sqlx::query_scalar("SELECT failed_at FROM outbox_email WHERE outbox_email_id = $1")
            .bind(failed_id)
            .fetch_one(&pool)
            .await
            .unwrap();

    let failed = json!({"id": failed_id.to_string(), "template": "reset_password",
        "sent_at": rfc(failed_at), "status": "failed", "error": "550 5.1.1 mailbox unavailable"});
    let sent = json!({"id": invite.outbox_email_id.to_string(), "template": "invitation",
        "sent_at": rfc(invite.sent_at), "status": "sent", "error": null});
    let (s, v) = get(&gw, "/v1/me/notifications", &a.key).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"total": 2, "notifications": [failed.clone(), sent]})
    );
    assert!(
        !v.to_string().contains("codigo-secreto"),
        "a mail body leaked: {v}"
    );
    let (s, v) = get(&gw, "/v1/me/notifications?limit=1", &a.key).await;
    assert_eq!(
        (s, &v),
        (200, &json!({"total": 2, "notifications": [failed]}))
    );
    let (s, v) = get(&gw, "/v1/me/notifications?limit=200", &a.key).await;
    assert_eq!((s, v["notifications"].as_array().unwrap().len()), (200, 2));

    // B sees B's one mail only
    let (s, v) = get(&gw, "/v1/me/notifications", &b.key).await;
    assert_eq!(s, 200);
    assert_eq!(v["total"], 1);
    assert_eq!(v["notifications"][0]["template"], "invitation");
    assert_ne!(
        v["notifications"][0]["id"],
        invite.outbox_email_id.to_string().as_str()
    );

    // bad limits are refused, never clamped
    for (q, reason) in [
        ("0", "entre 1 e 200"),
        ("201", "entre 1 e 200"),
        ("-1", "entre 1 e 200"),
        ("abc", "um número inteiro"),
        ("1.5", "um número inteiro"),
        ("99999999999999999999", "um número inteiro"),
    ] {
        let (s, v) = get(&gw, &format!("/v1/me/notifications?limit={q}"), &a.key).await;
        assert_eq!((s, &v), (400, &invalid("limit", reason)), "limit={q}");
    }
    let (s, v) = get(&gw, "/v1/me/notifications?limit=%00", &a.key).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "invalid_parameter");
}

/// An organization's ledger credit through the operator API.
async fn credit(gw: &Gateway, org: &str, amount: &str, idempotency_key: &str) {
    let r = reqwest::Client::new()
        .post(gw.url(&format!("/admin/v1/organizations/{org}/ledger")))
        .bearer_auth(MASTER)
        .header("Idempotency-Key", idempotency_key)
        .header("content-type", "application/json")
        .body(json!({"kind": "adjustment", "amount_brl": amount}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
}

#[sqlx::test(migrations = "./migrations")]
async fn referrals_have_a_stable_code_masked_invitees_and_exact_credit(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let a = Tenant::make(&gw, MASTER, "Indica A", Some("1.00")).await;
    let b = Tenant::make(&gw, MASTER, "Indica B", None).await;

    let (s, r) = get(&gw, "/v1/me/referrals", &a.key).await;
    assert_eq!(s, 200, "{r}");
    let code = r["code"].as_str().unwrap().to_string();
    assert!(
        code.len() == 8
            && code
                .bytes()
                .all(|c| b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789".contains(&c)),
        "{code}"
    );
    assert_eq!(
        r,
        json!({"code": code, "invited_count": 0, "credit_earned_brl": 0, "invited": []})
    );
    // the code is stable
    let (_, again) = get(&gw, "/v1/me/referrals", &a.key).await;
    assert_eq!(again["code"], code.as_str());
    let stored: Option<String> =
        sqlx::query_scalar("SELECT referral_code FROM app_user WHERE user_id = $1::uuid")
            .bind(&a.user)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored.as_deref(), Some(code.as_str()));

    // bad and unknown codes: 400 and no user made
    let users = || count(&pool, "SELECT count(*) FROM app_user");
    let before = users().await;
    let unknown = if code == "ZZZZ2222" {
        "YYYY3333"
    } else {
        "ZZZZ2222"
    };
    for (bad, reason) in [
        ("XXXX", "8 letters and digits (no 0, O, 1 or I)"),
        ("ABCD0123", "8 letters and digits (no 0, O, 1 or I)"),
        (unknown, "no user has this code"),
    ] {
        let (s, v) = call(
            &gw,
            "POST",
            "/admin/v1/users",
            Some(MASTER),
            Some(json!({"email": "ninguem@example.com", "name": "Ninguém",
                        "organization_id": b.org, "referral_code": bad})),
        )
        .await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert!(v.to_string().contains("referral_code"), "{v}");
        assert!(v.to_string().contains(reason), "{v}");
    }
    assert_eq!(users().await, before);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM outbox_email WHERE to_address = 'ninguem@example.com'"
        )
        .await,
        0
    );

    // two users invited with A's code (typed in lower case), in another organization
    let mut invited = Vec::new();
    for email in ["joana.silva@example.com", "pedro@exemplo.com.br"] {
        let (s, u) = call(
            &gw,
            "POST",
            "/admin/v1/users",
            Some(MASTER),
            Some(
                json!({"email": email, "name": "Convidado", "organization_id": b.org,
                        "role": "member", "referral_code": format!(" {} ", code.to_lowercase())}),
            ),
        )
        .await;
        assert_eq!(s, 201, "{u}");
        invited.push(u["id"].as_str().unwrap().to_string());
    }
    // credits in A's organization: two for Joana (exact micro-reais), none for Pedro; a
    // credit keyed for a user A did not invite (B's owner) and one in B's organization do
    // not count
    credit(&gw, &a.org, "5.50", &format!("referral:{}", invited[0])).await;
    credit(
        &gw,
        &a.org,
        "0.000001",
        &format!("referral:{}:bonus", invited[0]),
    )
    .await;
    credit(&gw, &a.org, "3.00", &format!("referral:{}", b.user)).await;
    credit(&gw, &a.org, "2.00", &format!("referralx:{}", invited[1])).await;
    credit(&gw, &b.org, "7.00", &format!("referral:{}", invited[1])).await;

    let joined: Vec<time::OffsetDateTime> = sqlx::query_scalar(
        "SELECT created_at FROM app_user WHERE user_id = ANY($1::uuid[]) ORDER BY created_at",
    )
    .bind(&invited)
    .fetch_all(&pool)
    .await
    .unwrap();
    let (s, r) = get(&gw, "/v1/me/referrals", &a.key).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r,
        json!({
            "code": code,
            "invited_count": 2,
            "credit_earned_brl": 5.500001,
            "invited": [
                {"email": "j***@example.com", "joined_at": rfc(joined[0]), "credit_brl": 5.500001},
                {"email": "p***@exemplo.com.br", "joined_at": rfc(joined[1]), "credit_brl": 0},
            ],
        })
    );
    let text = r.to_string();
    for secret in ["joana", "pedro@", &invited[0], &invited[1]] {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }

    // B has invited no one and sees nothing of A's
    let (s, rb) = get(&gw, "/v1/me/referrals", &b.key).await;
    assert_eq!(s, 200);
    assert_ne!(rb["code"], code.as_str());
    assert_eq!(rb["invited_count"], 0);
    assert_eq!(rb["credit_earned_brl"], 0);
    assert_eq!(rb["invited"], json!([]));
}

#[sqlx::test(migrations = "./migrations")]
async fn teams_are_listed_with_roles_and_made_prepaid_with_the_caller_as_owner(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let a = Tenant::make(&gw, MASTER, "Times A", None).await;
    let b = Tenant::make(&gw, MASTER, "Times B", None).await;
    // A is a viewer of B's organization too
    let (s, v) = call(
        &gw,
        "POST",
        &format!("/admin/v1/organizations/{}/members", b.org),
        Some(MASTER),
        Some(json!({"user_id": a.user, "role": "viewer"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let created = |org: &str| {
        let pool = pool.clone();
        let org = org.to_string();
        async move {
            let t: time::OffsetDateTime = sqlx::query_scalar(
                "SELECT created_at FROM organization WHERE organization_id = $1::uuid",
            )
            .bind(org)
            .fetch_one(&pool)
            .await
            .unwrap();
            rfc(t)
        }
    };
    let team_a = json!({"id": a.org, "name": "Times A", "role": "owner", "is_admin": true,
        "plan": null, "created_at": created(&a.org).await, "current": true});
    let team_b = json!({"id": b.org, "name": "Times B", "role": "viewer", "is_admin": false,
        "plan": null, "created_at": created(&b.org).await, "current": false});
    let (s, v) = get(&gw, "/v1/me/teams", &a.key).await;
    assert_eq!(
        (s, &v),
        (200, &json!({"teams": [team_a.clone(), team_b.clone()]}))
    );
    // B sees B's organization only
    let (_, v) = get(&gw, "/v1/me/teams", &b.key).await;
    assert_eq!(v["teams"].as_array().unwrap().len(), 1);
    assert_eq!(v["teams"][0]["id"], b.org.as_str());

    // refusals first: nothing is made
    let orgs = || count(&pool, "SELECT count(*) FROM organization");
    let before = orgs().await;
    let long = format!(r#"{{"name": "{}"}}"#, "é".repeat(201));
    let refusals: Vec<(&str, Value)> = vec![
        ("{}", invalid("name", "valor inválido")),
        (r#"{"name": ""}"#, invalid("name", "valor inválido")),
        (r#"{"name": "   "}"#, invalid("name", "valor inválido")),
        (&long, invalid("name", "valor inválido")),
        (r#"{"name": "a\tb"}"#, invalid("name", "valor inválido")),
        (r#"{"name": 7}"#, invalid("name", "valor inválido")),
        (r#"{"name": null}"#, invalid("name", "valor inválido")),
        (
            r#"{"name": "x", "plan": "pro"}"#,
            invalid("plan", "valor inválido"),
        ),
        (
            r#"["x"]"#,
            error(
                "Corpo inválido (a JSON object)",
                "invalid_request_error",
                "invalid_body",
            ),
        ),
        (
            r#"{"name": "a\u0000"}"#,
            error(
                "Corpo inválido (NUL)",
                "invalid_request_error",
                "invalid_body",
            ),
        ),
    ];
    for (body, want) in &refusals {
        let (s, _, v) = send(&gw, "POST", "/v1/me/teams", Some(&a.key), Some(body), false).await;
        assert_eq!((s, &v), (400, want), "{body}");
    }
    let (s, _, v) = send(
        &gw,
        "POST",
        "/v1/me/teams",
        Some(&a.key),
        Some("nope"),
        false,
    )
    .await;
    assert_eq!((s, &v["error"]["code"]), (400, &json!("invalid_body")));
    assert_eq!(orgs().await, before);

    // a new team: prepaid at zero, the caller its owner, audited
    let (s, _, t) = send(
        &gw,
        "POST",
        "/v1/me/teams",
        Some(&a.key),
        Some(r#"{"name": "  Equipe Ágil  "}"#),
        false,
    )
    .await;
    assert_eq!(s, 201, "{t}");
    let id = t["id"].as_str().unwrap().to_string();
    let zero = json!({"balance_brl": 0, "total_topped_up_brl": 0, "total_spent_brl": 0,
        "total_refunded_brl": 0, "held_brl": 0});
    let team_new = json!({"id": id, "name": "Equipe Ágil", "role": "owner", "is_admin": true,
        "plan": null, "created_at": created(&id).await, "current": false});
    let mut with_balance = team_new.clone();
    with_balance["balance"] = zero;
    assert_eq!(t, with_balance);
    assert_eq!(orgs().await, before + 1);
    #[derive(sqlx::FromRow)]
    struct Org {
        balance_brl_micros: Option<i64>,
        kind: String,
        role: String,
        members: i64,
    }
    let o: Org = sqlx::query_as(
        "SELECT o.balance_brl_micros, o.kind, m.role,
                (SELECT count(*) FROM membership WHERE organization_id = o.organization_id) AS members
         FROM organization o JOIN membership m USING (organization_id)
         WHERE o.organization_id = $1::uuid AND m.user_id = $2::uuid",
    )
    .bind(&id)
    .bind(&a.user)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (
            o.balance_brl_micros,
            o.kind.as_str(),
            o.role.as_str(),
            o.members
        ),
        (Some(0), "team", "owner", 1)
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'team.create' AND organization_id = $1::uuid
           AND user_id = $2::uuid",
    )
    .bind(&id)
    .bind(&a.user)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    // its own wallet: a credit to it is not A's first organization's
    credit(&gw, &id, "2.50", "team-credit").await;
    let (_, u) = get(&gw, "/v1/usage", &a.key).await;
    assert_eq!(u["balance"]["balance_brl"], 0);
    let (_, v) = get(&gw, "/v1/me/teams", &a.key).await;
    assert_eq!(v, json!({"teams": [team_a, team_b, team_new]}));
    // B is not a member of it
    let (_, v) = get(&gw, "/v1/me/teams", &b.key).await;
    assert!(!v.to_string().contains(&id), "{v}");
}

#[sqlx::test(migrations = "./migrations")]
async fn the_lgpd_export_holds_only_the_callers_data_and_is_capped(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let a = Tenant::make(&gw, MASTER, "Titular A", Some("10.00")).await;
    let (_, r) = get(&gw, "/v1/me/referrals", &a.key).await;
    let code = r["code"].as_str().unwrap().to_string();
    // Bruna: invited by A, a member of A's organization with her own key, preferences, a
    // delivered mail and a team of her own
    let (s, u) = call(
        &gw,
        "POST",
        "/admin/v1/users",
        Some(MASTER),
        Some(
            json!({"email": "bruna.segredo@example.com", "name": "Bruna Segredo",
                    "organization_id": a.org, "role": "admin", "referral_code": code}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{u}");
    let bruna = u["id"].as_str().unwrap().to_string();
    let bruna_key = key_for(&gw, &a.org, &bruna).await;
    let (s, _) = put_prefs(
        &gw,
        &bruna_key,
        r#"{"timezone": "Europe/Lisbon", "preferred_locale": "es"}"#,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, bt) = send(
        &gw,
        "POST",
        "/v1/me/teams",
        Some(&bruna_key),
        Some(r#"{"name": "Time Secreto da Bruna"}"#),
        false,
    )
    .await;
    assert_eq!(s, 201);
    sqlx::query("UPDATE outbox_email SET sent_at = now() WHERE to_address IN ($1, 'bruna.segredo@example.com')")
        .bind(&a.email)
        .execute(&pool)
        .await
        .unwrap();

    let (s, h, e) = send(&gw, "GET", "/v1/me/export", Some(&a.key), None, false).await;
    assert_eq!(s, 200, "{e}");
    assert_eq!(h.get("cache-control").unwrap(), "no-store");
    assert_eq!(
        keys_of(&e),
        set(&[
            "export_version",
            "generated_at",
            "profile",
            "balance",
            "teams",
            "notifications",
            "referrals",
            "note"
        ])
    );
    assert_eq!(e["export_version"], 1);
    let generated = time::OffsetDateTime::parse(
        e["generated_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!((time::OffsetDateTime::now_utc() - generated).abs() < time::Duration::minutes(1));
    let (_, profile) = get(&gw, "/v1/me/profile", &a.key).await;
    assert_eq!(e["profile"], profile);
    assert_eq!(
        e["balance"],
        json!({"balance_brl": 10, "total_topped_up_brl": 10, "total_spent_brl": 0,
               "total_refunded_brl": 0, "held_brl": 0})
    );
    let (_, teams) = get(&gw, "/v1/me/teams", &a.key).await;
    assert_eq!(e["teams"], teams["teams"]);
    let (_, notes) = get(&gw, "/v1/me/notifications", &a.key).await;
    assert_eq!(e["notifications"], notes["notifications"]);
    assert_eq!(e["notifications"].as_array().unwrap().len(), 1);
    assert_eq!(
        e["referrals"],
        json!({"code": code, "invited_count": 1, "referred": false})
    );
    assert!(e["note"].as_str().unwrap().contains("LGPD"));
    // nothing of Bruna, no hash, no secret, no mail body
    let text = e.to_string();
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM app_user WHERE user_id = $1::uuid")
            .bind(&a.user)
            .fetch_one(&pool)
            .await
            .unwrap();
    let mail_body: String =
        sqlx::query_scalar("SELECT body FROM outbox_email WHERE to_address = $1")
            .bind(&a.email)
            .fetch_one(&pool)
            .await
            .unwrap();
    let token = mail_body.rsplit(' ').next().unwrap().to_string();
    let bruna_team = bt["id"].as_str().unwrap();
    for s in [
        "bruna",
        "Bruna",
        "b***@",
        &bruna,
        bruna_team,
        "Europe/Lisbon",
        "Secreto",
        "argon2",
        &hash,
        &token,
        &a.key,
        &bruna_key,
        &a.key_id,
        "key_hash",
        "password",
    ] {
        assert!(!text.contains(s), "the export holds {s:?}: {text}");
    }
    // Bruna's export: hers, referred, her team, her zone; nothing of A but the shared
    // organization (its name and balance, which her key reads anyway)
    let (s, eb) = get(&gw, "/v1/me/export", &bruna_key).await;
    assert_eq!(s, 200, "{eb}");
    assert_eq!(eb["profile"]["email"], "bruna.segredo@example.com");
    assert_eq!(eb["profile"]["preferences"]["timezone"], "Europe/Lisbon");
    assert_eq!(eb["referrals"]["referred"], true);
    assert_eq!(eb["referrals"]["code"], Value::Null);
    assert_eq!(eb["teams"].as_array().unwrap().len(), 2);
    let tb = eb.to_string();
    for s in [a.email.as_str(), &a.user, &code] {
        assert!(!tb.contains(s), "Bruna's export holds {s:?}: {tb}");
    }

    // audited, one row per export, as the user
    let exports = |user: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM audit_log WHERE action = 'account.export' AND user_id = $1::uuid
                   AND organization_id IS NOT NULL AND actor = 'user'",
            )
            .bind(user)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(exports(a.user.clone()).await, 1);
    // 5 an hour: the sixth is 429 with Retry-After, and writes nothing
    for _ in 0..4 {
        let (s, v) = get(&gw, "/v1/me/export", &a.key).await;
        assert_eq!(s, 200, "{v}");
    }
    let (s, h, v) = send(&gw, "GET", "/v1/me/export", Some(&a.key), None, false).await;
    assert_eq!(s, 429);
    assert_eq!(
        v,
        error(
            "Muitas requisições; tente novamente mais tarde",
            "rate_limit_error",
            "rate_limited"
        )
    );
    let retry: u64 = h
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3_500..=3_600).contains(&retry), "{retry}");
    let (s, _, v) = send(&gw, "GET", "/v1/me/export", Some(&a.key), None, true).await;
    assert_eq!(
        (s, &v),
        (
            429,
            &error(
                "Too many requests; retry later",
                "rate_limit_error",
                "rate_limited"
            )
        )
    );
    assert_eq!(exports(a.user.clone()).await, 5);
    // the cap is the user's: Bruna (same organization) has 4 left
    for _ in 0..4 {
        assert_eq!(get(&gw, "/v1/me/export", &bruna_key).await.0, 200);
    }
    assert_eq!(get(&gw, "/v1/me/export", &bruna_key).await.0, 429);
    // an export older than an hour no longer counts
    sqlx::query(
        "UPDATE audit_log SET created_at = now() - interval '61 minutes'
         WHERE audit_log_id = (SELECT min(audit_log_id) FROM audit_log
                               WHERE action = 'account.export' AND user_id = $1::uuid)",
    )
    .bind(&a.user)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(get(&gw, "/v1/me/export", &a.key).await.0, 200);
    assert_eq!(get(&gw, "/v1/me/export", &a.key).await.0, 429);
}

#[sqlx::test(migrations = "./migrations")]
async fn racing_exports_never_pass_the_cap(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let a = Tenant::make(&gw, MASTER, "Corrida", None).await;
    let racing = (0..9).map(|_| get(&gw, "/v1/me/export", &a.key));
    let mut statuses: Vec<u16> = futures_util::future::join_all(racing)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    statuses.sort();
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 429, 429, 429, 429]);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM audit_log WHERE action = 'account.export'"
        )
        .await,
        5
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn every_account_operation_needs_a_key_of_a_user(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let a = Tenant::make(&gw, MASTER, "Sem Usuario", None).await;
    let userless = userless_key(&pool, &a.org).await;
    let orgs = count(&pool, "SELECT count(*) FROM organization").await;
    for (method, path, body) in OPERATIONS {
        // no key
        let (s, _, v) = send(&gw, method, path, None, body, false).await;
        assert_eq!(
            (s, &v),
            (
                401,
                &error(
                    "Chave de API ausente ou inválida: envie a chave em Authorization: Bearer sk-tokia-...",
                    "authentication_error",
                    "missing_api_key"
                )
            ),
            "{method} {path}"
        );
        // a revoked-looking, unknown key
        let (s, _, v) = send(
            &gw,
            method,
            path,
            Some("sk-tokia-nao-existe-0000"),
            body,
            false,
        )
        .await;
        assert_eq!(
            (s, &v),
            (
                401,
                &error(
                    "Chave de API inválida, revogada ou expirada",
                    "authentication_error",
                    "invalid_api_key"
                )
            ),
            "{method} {path}"
        );
        // a key made without a user
        let (s, _, v) = send(&gw, method, path, Some(&userless), body, false).await;
        assert_eq!(
            (s, &v),
            (
                403,
                &error(
                    "Esta chave de API não pertence a um usuário",
                    "permission_error",
                    "key_without_user"
                )
            ),
            "{method} {path}"
        );
        let (s, _, v) = send(&gw, method, path, Some(&userless), body, true).await;
        assert_eq!(s, 403);
        assert_eq!(v["error"]["message"], "This API key belongs to no user");
        // and the owner's key is served
        let (s, _, v) = send(&gw, method, path, Some(&a.key), body, false).await;
        assert!(s == 200 || s == 201, "{method} {path}: {s} {v}");
    }
    // the refusals made no team and set no preference
    assert_eq!(
        count(&pool, "SELECT count(*) FROM organization").await,
        orgs + 1
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM user_preference").await,
        1
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM audit_log WHERE action = 'account.export'"
        )
        .await,
        1
    );
}
