//! PyTake's auth (issue 15 items 1–4): register → login → me → refresh with rotation grace
//! and family revocation on reuse → logout; forgot/reset password through the mail outbox;
//! every error in `{detail, status_code, error_code}` (422 for schema, 400 for rules) with
//! nothing changed; the operator API creating users of each PyTake role.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::pytake::{JWT as SECRET, MASTER, assert_error, register, request};
use crate::common::{Gateway, Mock, call, db_url};

async fn start(pool: &PgPool) -> (Gateway, Mock) {
    let mock = Mock::start().await;
    let gw = Gateway::start_with_env(
        &crate::common::single_model(&mock, "gpt-4o-mini", ""),
        &[
            ("DATABASE_URL", &db_url(pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
            ("CATRACA_JWT_SECRET", SECRET),
        ],
    )
    .await;
    (gw, mock)
}

/// A request with optional bearer, raw body and extra headers.
async fn raw(
    gw: &Gateway,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let (s, v, _) = request(gw, method, path, token, body, headers).await;
    (s, v)
}

async fn refresh(gw: &Gateway, token: &str) -> (u16, Value) {
    call(
        gw,
        "POST",
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": token})),
    )
    .await
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn register_login_me_refresh_with_grace_reuse_revokes_and_logout(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let reg = register(&gw, "ana@pytake.dev", "Ana Ltda").await;
    assert_eq!(reg["token_type"], "bearer");
    assert!(reg["access_token"].as_str().unwrap().len() > 20);
    assert!(reg["refresh_token"].as_str().unwrap().len() > 20);
    let user = &reg["user"];
    assert_eq!(user["email"], "ana@pytake.dev");
    assert_eq!(user["name"], "Ana");
    assert_eq!(user["role"], "org_admin");
    let org = user["organization_id"].as_str().unwrap().to_string();
    let org_name: String =
        sqlx::query_scalar("SELECT name FROM organization WHERE organization_id = $1::uuid")
            .bind(&org)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(org_name, "Ana Ltda");
    let role: String = sqlx::query_scalar("SELECT role FROM membership")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        role, "owner",
        "the creator owns the organization (org_admin)"
    );

    // login, me
    let (s, login) = call(
        &gw,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"email": "ana@pytake.dev", "password": "senha-forte-1"})),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    assert_eq!(login["user"], reg["user"]);
    let access = login["access_token"].as_str().unwrap();
    let (s, me) = call(&gw, "GET", "/api/v1/auth/me", Some(access), None).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me, reg["user"]);
    assert_eq!(
        me.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "id",
            "email",
            "name",
            "role",
            "organization_id",
            "is_active",
            "created_at"
        ]
    );

    // rotation with grace: r0 stays valid until its successor is used
    let r0 = login["refresh_token"].as_str().unwrap().to_string();
    let (s, a) = refresh(&gw, &r0).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(
        a.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["access_token", "refresh_token", "token_type"]
    );
    let r1 = a["refresh_token"].as_str().unwrap().to_string();
    let (s, me2) = call(
        &gw,
        "GET",
        "/api/v1/auth/me",
        Some(a["access_token"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!((s, &me2), (200, &me));
    let (s, b) = refresh(&gw, &r0).await;
    assert_eq!(s, 200, "an old client retrying with r0 still works: {b}");
    let r1b = b["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r1b);
    // the successor r1 is used: r0 (and r1's sibling r1b) are spent now
    let (s, c) = refresh(&gw, &r1).await;
    assert_eq!(s, 200, "{c}");
    let r2 = c["refresh_token"].as_str().unwrap().to_string();
    let (s, c2) = refresh(&gw, &r1).await;
    assert_eq!(s, 200, "r1 itself stays valid until r2 is used: {c2}");
    let live = count(
        &pool,
        "SELECT count(*) FROM rotating_refresh_token WHERE revoked_at IS NULL AND audience = 'pytake'",
    )
    .await;
    // reuse of the spent r0 revokes the whole family
    let (s, v) = refresh(&gw, &r0).await;
    assert_error(s, &v, 401, "refresh_token_reused");
    let after = count(
        &pool,
        "SELECT count(*) FROM rotating_refresh_token WHERE revoked_at IS NULL AND audience = 'pytake'",
    )
    .await;
    assert_eq!(after, 1, "only the register family lives (was {live})");
    for t in [&r1, &r2, &r1b] {
        let (s, v) = refresh(&gw, t).await;
        assert_eq!(s, 401, "{v}");
    }

    // a new login; logout with its refresh token ends that family only
    let (_, l2) = call(
        &gw,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"email": "ana@pytake.dev", "password": "senha-forte-1"})),
    )
    .await;
    let at2 = l2["access_token"].as_str().unwrap();
    let rt2 = l2["refresh_token"].as_str().unwrap();
    let (s, v) = raw(
        &gw,
        "POST",
        "/api/v1/auth/logout",
        Some(at2),
        Some(&json!({"refresh_token": reg["refresh_token"]}).to_string()),
        &[],
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, _) = refresh(&gw, reg["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 401);
    let (s, _) = refresh(&gw, rt2).await;
    assert_eq!(s, 200, "the other login lives on");
    // logout without a body ends every PyTake session of the caller
    let (s, _) = raw(&gw, "POST", "/api/v1/auth/logout", Some(at2), None, &[]).await;
    assert_eq!(s, 204);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM rotating_refresh_token WHERE revoked_at IS NULL AND audience = 'pytake'"
        )
        .await,
        0
    );
    // logout needs a token
    let (s, v) = raw(&gw, "POST", "/api/v1/auth/logout", None, None, &[]).await;
    assert_error(s, &v, 401, "invalid_token");
}

/// A token signed with the app's key for another audience (bradax's, later).
fn foreign_token(aud: Option<&str>) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = json!({"sub": uuid::Uuid::new_v4(), "org": uuid::Uuid::new_v4(),
                            "iat": now, "exp": now + 600, "gen": 0, "jti": "x"});
    if let Some(a) = aud {
        claims["aud"] = json!(a);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn refresh_tells_tokens_apart_by_audience(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let reg = register(&gw, "bia@pytake.dev", "Bia").await;
    for t in [
        reg["access_token"].as_str().unwrap().to_string(),
        foreign_token(None),
        "not-a-token".to_string(),
        reg["refresh_token"].as_str().unwrap().replace('.', "x"),
    ] {
        let (s, v) = refresh(&gw, &t).await;
        assert_error(s, &v, 401, "invalid_token");
    }
    // a token of bradax's audience goes to bradax's refresh: 401 in bradax's shape
    let (s, v) = refresh(&gw, &foreign_token(Some("bradax"))).await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["error"], "authentication_failed", "{v}");
    // a PyTake refresh token is no access token either
    let (s, v) = call(
        &gw,
        "GET",
        "/api/v1/auth/me",
        Some(reg["refresh_token"].as_str().unwrap()),
        None,
    )
    .await;
    assert_error(s, &v, 401, "invalid_token");
    // the real one still works: nothing above touched it
    let (s, _) = refresh(&gw, reg["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200);
}

async fn outbox(pool: &PgPool, to: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT body FROM outbox_email WHERE to_address = $1 ORDER BY outbox_email_id",
    )
    .bind(to)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn forgot_password_says_the_same_and_reset_ends_sessions(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let reg = register(&gw, "caio@pytake.dev", "Caio").await;
    let forgot = |email: &'static str| {
        let gw = &gw;
        async move {
            call(
                gw,
                "POST",
                "/api/v1/auth/forgot-password",
                None,
                Some(json!({"email": email})),
            )
            .await
        }
    };
    let known = forgot("caio@pytake.dev").await;
    let unknown = forgot("ninguem@pytake.dev").await;
    assert_eq!(known.0, 200, "{}", known.1);
    assert_eq!(known, unknown);
    assert_eq!(known.1.as_object().unwrap().len(), 1);
    assert!(known.1["message"].is_string());
    assert_eq!(count(&pool, "SELECT count(*) FROM outbox_email").await, 1);
    let body = outbox(&pool, "caio@pytake.dev").await.pop().unwrap();
    let token = body.rsplit(' ').next().unwrap().to_string();

    // a short password is a rule error and keeps the token
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/auth/reset-password",
        None,
        Some(json!({"token": token, "new_password": "curta"})),
    )
    .await;
    assert_error(s, &v, 400, "bad_request");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/auth/reset-password",
        None,
        Some(json!({"token": "nope", "new_password": "nova-senha-123"})),
    )
    .await;
    assert_error(s, &v, 400, "bad_request");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/auth/reset-password",
        None,
        Some(json!({"token": token, "new_password": "nova-senha-123"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["message"].is_string());
    // single use
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/auth/reset-password",
        None,
        Some(json!({"token": token, "new_password": "outra-senha-123"})),
    )
    .await;
    assert_error(s, &v, 400, "bad_request");
    // every session ended: the refresh token and the access token
    let (s, _) = refresh(&gw, reg["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 401);
    let (s, _) = call(
        &gw,
        "GET",
        "/api/v1/auth/me",
        Some(reg["access_token"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(s, 401);
    let login = |pw: &'static str| {
        let gw = &gw;
        async move {
            call(
                gw,
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"email": "caio@pytake.dev", "password": pw})),
            )
            .await
        }
    };
    let (s, v) = login("senha-forte-1").await;
    assert_error(s, &v, 401, "invalid_credentials");
    assert_eq!(login("nova-senha-123").await.0, 200);
    // a malformed email is a rule error (it reveals nothing)
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/auth/forgot-password",
        None,
        Some(json!({"email": "not-an-email"})),
    )
    .await;
    assert_error(s, &v, 400, "bad_request");
}

#[sqlx::test(migrations = "./migrations")]
async fn errors_schema_422_rules_400_and_nothing_changes(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let users = || count(&pool, "SELECT count(*) FROM app_user");
    let good = json!({"email": "dora@pytake.dev", "password": "senha-forte-1", "name": "Dora", "organization_name": "Dora SA"});
    // schema errors: missing field, wrong type, not JSON, no body
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("organization_name");
    let mut typed = good.clone();
    typed["password"] = json!(12345678);
    for body in [
        missing.to_string(),
        typed.to_string(),
        "{not json".to_string(),
        "[]".to_string(),
    ] {
        let (s, v) = raw(&gw, "POST", "/api/v1/auth/register", None, Some(&body), &[]).await;
        assert_error(s, &v, 422, "validation_error");
    }
    let (s, v) = raw(&gw, "POST", "/api/v1/auth/login", None, None, &[]).await;
    assert_error(s, &v, 422, "validation_error");
    let (s, v) = raw(&gw, "POST", "/api/v1/auth/refresh", None, Some("{}"), &[]).await;
    assert_error(s, &v, 422, "validation_error");
    // rule errors: short password, bad email, empty names, NUL
    for (field, value) in [
        ("password", json!("curta")),
        ("email", json!("no-at-sign")),
        ("name", json!("  ")),
        ("organization_name", json!("x".repeat(201))),
        ("name", json!("a\u{0}b")),
    ] {
        let mut b = good.clone();
        b[field] = value;
        let (s, v) = call(&gw, "POST", "/api/v1/auth/register", None, Some(b)).await;
        assert_error(s, &v, 400, "bad_request");
    }
    assert_eq!(users().await, 0, "nothing was created");
    assert_eq!(count(&pool, "SELECT count(*) FROM organization").await, 0);
    let reg = register(&gw, "dora@pytake.dev", "Dora SA").await;
    let (s, v) = call(&gw, "POST", "/api/v1/auth/register", None, Some(good)).await;
    assert_error(s, &v, 400, "email_already_registered");
    assert_eq!(users().await, 1);
    assert_eq!(count(&pool, "SELECT count(*) FROM organization").await, 1);
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"email": "dora@pytake.dev", "password": "errada-123"})),
    )
    .await;
    assert_error(s, &v, 401, "invalid_credentials");
    // auth errors
    let (s, v) = call(&gw, "GET", "/api/v1/auth/me", None, None).await;
    assert_error(s, &v, 401, "invalid_token");
    let (s, v) = call(&gw, "GET", "/api/v1/auth/me", Some("garbage"), None).await;
    assert_error(s, &v, 401, "invalid_token");
    let at = reg["access_token"].as_str().unwrap();
    let (s, v) = raw(
        &gw,
        "GET",
        "/api/v1/auth/me",
        Some(at),
        None,
        &[("x-organization-id", "not-a-uuid")],
    )
    .await;
    assert_error(s, &v, 400, "bad_request");
    let other = uuid::Uuid::new_v4().to_string();
    let (s, v) = raw(
        &gw,
        "GET",
        "/api/v1/auth/me",
        Some(at),
        None,
        &[("x-organization-id", &other)],
    )
    .await;
    assert_error(s, &v, 403, "forbidden");
    let own = reg["user"]["organization_id"].as_str().unwrap();
    let (s, _) = raw(
        &gw,
        "GET",
        "/api/v1/auth/me",
        Some(at),
        None,
        &[("x-organization-id", own)],
    )
    .await;
    assert_eq!(s, 200, "naming one's own organization is fine");
    // logout with a body of the wrong shape or someone else's token changes nothing
    let (s, v) = raw(
        &gw,
        "POST",
        "/api/v1/auth/logout",
        Some(at),
        Some(r#"{"refresh_token": 5}"#),
        &[],
    )
    .await;
    assert_error(s, &v, 422, "validation_error");
    let (s, v) = raw(
        &gw,
        "POST",
        "/api/v1/auth/logout",
        Some(at),
        Some(r#"{"refresh_token": "forged"}"#),
        &[],
    )
    .await;
    assert_error(s, &v, 401, "invalid_token");
    let (s, _) = refresh(&gw, reg["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "the refused logouts ended nothing");
}

#[sqlx::test(migrations = "./migrations")]
async fn operator_creates_users_of_each_pytake_role(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let mut orgs = Vec::new();
    for name in ["Org A", "Org B"] {
        let (s, o) = call(
            &gw,
            "POST",
            "/admin/v1/organizations",
            Some(MASTER),
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(s, 201, "{o}");
        orgs.push(o["id"].as_str().unwrap().to_string());
    }
    let (a, b) = (&orgs[0], &orgs[1]);
    for (role, stored) in [
        ("super_admin", "admin"),
        ("org_admin", "admin"),
        ("agent", "member"),
        ("viewer", "viewer"),
    ] {
        let email = format!("{role}@pytake.dev");
        let (s, u) = call(
            &gw,
            "POST",
            "/admin/v1/users",
            Some(MASTER),
            Some(
                json!({"email": email, "name": role, "password": "senha-forte-1",
                        "organization_id": a, "role": role}),
            ),
        )
        .await;
        assert_eq!(s, 201, "{u}");
        assert_eq!(u["memberships"][0]["role"], stored, "{u}");
        let (s, l) = call(
            &gw,
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": "senha-forte-1"})),
        )
        .await;
        assert_eq!(s, 200, "{l}");
        assert_eq!(l["user"]["role"], role);
        assert_eq!(l["user"]["organization_id"], json!(a));
        let at = l["access_token"].as_str().unwrap();
        // only super_admin acts in another organization
        let (s, v) = raw(
            &gw,
            "GET",
            "/api/v1/auth/me",
            Some(at),
            None,
            &[("x-organization-id", b)],
        )
        .await;
        if role == "super_admin" {
            assert_eq!(s, 200, "{v}");
            assert_eq!(v["organization_id"], json!(b));
            assert_eq!(v["role"], "super_admin");
            let missing = uuid::Uuid::new_v4().to_string();
            let (s, v) = raw(
                &gw,
                "GET",
                "/api/v1/auth/me",
                Some(at),
                None,
                &[("x-organization-id", &missing)],
            )
            .await;
            assert_error(s, &v, 404, "not_found");
        } else {
            assert_error(s, &v, 403, "forbidden");
        }
    }
    let flags = count(&pool, "SELECT count(*) FROM app_user WHERE super_admin").await;
    assert_eq!(flags, 1);
    // an unknown role is refused and creates nothing
    let (s, v) = call(
        &gw,
        "POST",
        "/admin/v1/users",
        Some(MASTER),
        Some(
            json!({"email": "x@pytake.dev", "name": "x", "password": "senha-forte-1",
                    "organization_id": a, "role": "root"}),
        ),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(count(&pool, "SELECT count(*) FROM app_user").await, 4);
}

#[sqlx::test(migrations = "./migrations")]
async fn openapi_documents_pytake_routes_and_error_shape(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let doc: Value = reqwest::get(gw.url("/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (method, path) in [
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/auth/refresh"),
        ("post", "/api/v1/auth/logout"),
        ("get", "/api/v1/auth/me"),
        ("post", "/api/v1/auth/forgot-password"),
        ("post", "/api/v1/auth/reset-password"),
    ] {
        let op = &doc["paths"][path][method];
        assert_eq!(op["tags"], json!(["pytake"]), "{method} {path}");
        let err = op["responses"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with('4'))
            .map(|(_, v)| v["content"]["application/json"]["schema"].clone())
            .unwrap();
        assert_eq!(
            err["required"],
            json!(["detail", "status_code", "error_code"]),
            "{path}"
        );
    }
    let reg = &doc["paths"]["/api/v1/auth/register"]["post"];
    assert!(reg["responses"]["201"].is_object());
    assert!(reg["responses"]["422"].is_object());
    assert_eq!(
        reg["requestBody"]["content"]["application/json"]["schema"]["required"],
        json!(["email", "password", "name", "organization_name"])
    );
    assert!(doc["paths"]["/api/v1/auth/logout"]["post"]["responses"]["204"].is_object());
}
