//! PyTake's contract beyond its operations (issue 15 items 1, 5 and 8): deprecated routes
//! answering `Deprecated`/`Sunset` and working on (admin app and gateway, across a reload),
//! `/api/v1/docs` served from the binary and `/api/v1/openapi.json`, audit rows of contact and
//! flow changes, the vault's `test` against the running config's providers, and schemathesis
//! over `/api/v1/openapi.json` as an org_admin.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::pytake::{JWT, MASTER, admin, assert_error};
use crate::common::{Gateway, KEY, Mock, call, db_url};

/// A PyTake gateway whose provider is named `openai` (on `mock`), with `extra` config and the
/// vault's master key.
async fn start(pool: &PgPool, mock: &Mock, extra: &str) -> Gateway {
    let body = format!(
        "{extra}providers:\n  - {{name: openai, base_url: \"{}\"}}\ndeployments:\n  - {{name: d, provider: openai, model: up}}\n  - {{name: de, provider: openai, model: up-embed}}\nmodels:\n  - {{name: gpt-4o-mini, deployments: [d], input_usd_per_1m: \"0.15\", output_usd_per_1m: \"0.6\"}}\n  - {{name: text-embedding-3-small, category: embedding, deployments: [de], input_usd_per_1m: \"0.02\"}}\n",
        mock.base()
    );
    let key = "5f".repeat(32);
    Gateway::start_with_env(
        &body,
        &[
            ("DATABASE_URL", &db_url(pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
            ("CATRACA_JWT_SECRET", JWT),
            ("CATRACA_SECRET_KEY", &key),
            // WhatsApp's webhook verifies signatures (503 without the app secret)
            ("WHATSAPP_APP_SECRET", "contract-app-secret-0123456789"),
            ("WHATSAPP_VERIFY_TOKEN", "contract-verify-token"),
        ],
    )
    .await
}

/// One request: status, headers, JSON body (or the text as a JSON string).
async fn req(
    gw: &Gateway,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
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
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    (
        s,
        h,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).map(|v| v.to_str().unwrap())
}

/// Rewrite the config's `deprecations:` block (the last lines before `providers:`).
fn set_deprecations(gw: &Gateway, block: &str) {
    let text = std::fs::read_to_string(&gw.config_path).unwrap();
    let start = text
        .find("deprecations:")
        .unwrap_or_else(|| text.find("providers:").unwrap());
    let end = text.find("providers:").unwrap();
    let new = format!("{}{block}{}", &text[..start], &text[end..]);
    std::fs::write(&gw.config_path, new).unwrap();
}

/// Wait until `probe` holds (a reload is polled every 500 ms).
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut probe: impl FnMut() -> F) {
    let t0 = Instant::now();
    while !probe().await {
        assert!(t0.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn deprecated_routes_say_so_keep_working_and_follow_a_reload(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(
        &pool,
        &mock,
        "deprecations:\n  - {method: GET, path: \"/api/v1/flows/{id}\", sunset: \"2027-03-01\"}\n  - {method: post, path: /api/v1/contacts}\n  - {method: POST, path: /v1/chat/completions, sunset: \"2027-06-30T12:00:00-03:00\"}\n",
    )
    .await;
    let (tok, _) = admin(&gw, "ana@pytake.dev", "Ana Ltda").await;

    // a route not listed: no header
    let (s, h, f) = req(
        &gw,
        "POST",
        "/api/v1/flows",
        Some(&tok),
        Some(json!({"name": "Boas-vindas"})),
    )
    .await;
    assert_eq!(s, 201, "{f}");
    assert!(header(&h, "deprecated").is_none() && header(&h, "sunset").is_none());
    let id = f["id"].as_str().unwrap();

    // listed and dated: works, and says so
    let (s, h, got) = req(&gw, "GET", &format!("/api/v1/flows/{id}"), Some(&tok), None).await;
    assert_eq!((s, &got), (200, &f));
    assert_eq!(header(&h, "deprecated"), Some("true"));
    assert_eq!(header(&h, "sunset"), Some("Mon, 01 Mar 2027 00:00:00 GMT"));
    // its errors too (the route is deprecated, whatever the answer)
    let (s, h, e) = req(&gw, "GET", "/api/v1/flows/nope", Some(&tok), None).await;
    assert_error(s, &e, 404, "not_found");
    assert_eq!(header(&h, "deprecated"), Some("true"));
    // the other methods of the path are not listed
    let (s, h, _) = req(
        &gw,
        "PUT",
        &format!("/api/v1/flows/{id}"),
        Some(&tok),
        Some(json!({"name": "Outro"})),
    )
    .await;
    assert_eq!(s, 200);
    assert!(header(&h, "deprecated").is_none());

    // listed without a date: no Sunset
    let (s, h, c) = req(
        &gw,
        "POST",
        "/api/v1/contacts",
        Some(&tok),
        Some(json!({"whatsapp_id": "5511999990000"})),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(header(&h, "deprecated"), Some("true"));
    assert!(header(&h, "sunset").is_none());
    let (_, h, _) = req(&gw, "GET", "/api/v1/contacts", Some(&tok), None).await;
    assert!(header(&h, "deprecated").is_none());

    // a gateway AI route (proxied by Pingora, not the admin app)
    let r = crate::common::chat(
        &gw,
        KEY,
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "oi"}]}),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.h("deprecated"), Some("true"));
    assert_eq!(r.h("sunset"), Some("Wed, 30 Jun 2027 15:00:00 GMT"));

    // a reload replaces the list for the next request
    set_deprecations(
        &gw,
        "deprecations:\n  - {method: GET, path: /api/v1/contacts, sunset: \"2028-01-31\"}\n",
    );
    until("the reload never took the new list", || async {
        let (_, h, _) = req(&gw, "GET", "/api/v1/contacts", Some(&tok), None).await;
        header(&h, "sunset") == Some("Mon, 31 Jan 2028 00:00:00 GMT")
    })
    .await;
    let (s, h, _) = req(&gw, "GET", &format!("/api/v1/flows/{id}"), Some(&tok), None).await;
    assert_eq!(s, 200);
    assert!(header(&h, "deprecated").is_none(), "no longer listed");
    let r = crate::common::chat(
        &gw,
        KEY,
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "oi"}]}),
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.h("deprecated").is_none());

    // a list naming a route nobody serves is refused; the one serving stays
    set_deprecations(
        &gw,
        "deprecations:\n  - {method: GET, path: /api/v1/nowhere}\n",
    );
    until("the refused reload is not logged", || async {
        gw.plain_log()
            .contains("no route GET /api/v1/nowhere is served")
    })
    .await;
    let (_, h, _) = req(&gw, "GET", "/api/v1/contacts", Some(&tok), None).await;
    assert_eq!(header(&h, "deprecated"), Some("true"));
}

#[sqlx::test(migrations = "./migrations")]
async fn docs_are_served_from_the_binary_and_the_v1_document_lists_the_surfaces(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock, "").await;

    let r = reqwest::get(gw.url("/api/v1/docs")).await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(header(&h, "content-type"), Some("text/html; charset=utf-8"));
    assert!(header(&h, "content-security-policy").is_some_and(|c| c.contains("script-src 'self'")));
    let page = r.text().await.unwrap();
    assert!(page.contains("/api/v1/docs/swagger-ui-bundle.js"), "{page}");
    assert!(!page.contains("https://"), "no CDN: {page}");

    let client = reqwest::Client::new();
    let mut bundle_etag = String::new();
    for (file, ctype, min) in [
        (
            "swagger-ui-bundle.js",
            "text/javascript; charset=utf-8",
            500_000,
        ),
        ("swagger-ui.css", "text/css; charset=utf-8", 50_000),
        ("init.js", "text/javascript; charset=utf-8", 100),
        ("LICENSE", "text/plain; charset=utf-8", 1000),
    ] {
        let r = client
            .get(gw.url(&format!("/api/v1/docs/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{file}");
        let h = r.headers().clone();
        assert_eq!(header(&h, "content-type"), Some(ctype), "{file}");
        assert_eq!(header(&h, "cache-control"), Some("public, max-age=86400"));
        let etag = header(&h, "etag").unwrap().to_string();
        let body = r.bytes().await.unwrap();
        assert!(body.len() >= min, "{file}: {} bytes", body.len());
        if file == "swagger-ui-bundle.js" {
            bundle_etag = etag;
        }
    }
    let init = reqwest::get(gw.url("/api/v1/docs/init.js"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("\"/api/v1/openapi.json\""), "{init}");
    // revalidation
    let r = client
        .get(gw.url("/api/v1/docs/swagger-ui-bundle.js"))
        .header("if-none-match", &bundle_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());
    let (s, e) = call(&gw, "GET", "/api/v1/docs/../../etc/passwd", None, None).await;
    assert_eq!(s, 404, "{e}");
    let (s, e) = call(&gw, "GET", "/api/v1/docs/secret.js", None, None).await;
    assert_error(s, &e, 404, "not_found");

    // the v1 document: PyTake's and bradax's routes as mounted, nothing else, named schemas
    let (s, doc) = call(&gw, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let (_, all) = call(&gw, "GET", "/openapi.json", None, None).await;
    let mut mounted = 0;
    for (path, ops) in all["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let tag = op["tags"][0].as_str().unwrap();
            let listed = doc["paths"][path][method].is_object();
            if tag == "pytake" || tag == "bradax" {
                mounted += 1;
                assert!(listed, "{method} {path} missing from /api/v1/openapi.json");
            } else {
                assert!(!listed, "{method} {path} ({tag}) is not v1");
            }
        }
    }
    assert!(mounted >= 30, "{mounted} v1 operations");
    for name in [
        "User",
        "Flow",
        "Contact",
        "Secret",
        "SecretUsageStats",
        "WhatsAppNumber",
        "FlowAutomation",
        "ErrorResponse",
        "BradaxError",
    ] {
        assert!(doc["components"]["schemas"][name].is_object(), "{name}");
    }
    let flow = &doc["paths"]["/api/v1/flows/{id}"]["get"];
    assert_eq!(
        flow["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Flow"
    );
    assert_eq!(
        flow["responses"]["404"]["content"]["application/json"]["schema"],
        doc["components"]["schemas"]["ErrorResponse"]
    );
    assert!(
        doc["info"]["description"]
            .as_str()
            .unwrap()
            .contains("issue 15 decided")
    );
}

async fn audit_rows(pool: &PgPool) -> Vec<(String, String, Option<Value>, Option<Value>)> {
    sqlx::query_as(
        "SELECT action, target, before, after FROM audit_log
          WHERE action LIKE 'contact.%' OR action LIKE 'flow.%' ORDER BY audit_log_id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn contact_and_flow_changes_are_audited_with_who_and_what(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock, "").await;
    let (tok, org) = admin(&gw, "ana@pytake.dev", "Ana Ltda").await;

    let (s, c) = call(
        &gw,
        "POST",
        "/api/v1/contacts",
        Some(&tok),
        Some(json!({"whatsapp_id": "5511999990000", "name": "Bia", "email": "bia@x.dev"})),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    // refused changes write nothing
    let (s, _) = call(
        &gw,
        "POST",
        "/api/v1/contacts",
        Some(&tok),
        Some(json!({"whatsapp_id": "5511999990000"})),
    )
    .await;
    assert_eq!(s, 409);
    let (s, f) = call(
        &gw,
        "POST",
        "/api/v1/flows",
        Some(&tok),
        Some(json!({"name": "Boas-vindas", "nodes": [
            {"id": "a", "type": "trigger", "position": {"x": 0, "y": 0}, "data": {}}]})),
    )
    .await;
    assert_eq!(s, 201, "{f}");
    let id = f["id"].as_str().unwrap();
    let (s, _) = call(
        &gw,
        "PUT",
        &format!("/api/v1/flows/{id}"),
        Some(&tok),
        Some(json!({"edges": [{"id": "e", "source": "a", "target": "zz"}]})),
    )
    .await;
    assert_eq!(s, 400, "a broken graph changes nothing");
    let (s, _) = call(
        &gw,
        "PUT",
        &format!("/api/v1/flows/{id}"),
        Some(&tok),
        Some(json!({"name": "Olá", "status": "active"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &gw,
        "DELETE",
        &format!("/api/v1/flows/{id}"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        &gw,
        "DELETE",
        &format!("/api/v1/flows/{id}"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(s, 404);

    let rows = audit_rows(&pool).await;
    let actions: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "contact.create",
            "flow.create",
            "flow.update",
            "flow.delete"
        ]
    );
    assert_eq!(rows[0].1, format!("contact:{}", c["id"].as_str().unwrap()));
    assert_eq!(
        rows[0].3,
        Some(json!({"whatsapp_id": "5511999990000", "name": "Bia", "email": "bia@x.dev"}))
    );
    let target = format!("flow:{id}");
    assert!(rows[1..].iter().all(|r| r.1 == target));
    let created = json!({"name": "Boas-vindas", "description": null, "status": "draft", "nodes": 1, "edges": 0});
    assert_eq!((&rows[1].2, &rows[1].3), (&None, &Some(created.clone())));
    let updated =
        json!({"name": "Olá", "description": null, "status": "active", "nodes": 1, "edges": 0});
    assert_eq!(
        (&rows[2].2, &rows[2].3),
        (&Some(created), &Some(updated.clone()))
    );
    assert_eq!((&rows[3].2, &rows[3].3), (&Some(updated), &None));
    // who: the user, in their organization, as a user
    let who: Vec<(Option<uuid::Uuid>, Option<uuid::Uuid>, String)> = sqlx::query_as(
        "SELECT organization_id, user_id, actor FROM audit_log
          WHERE action LIKE 'contact.%' OR action LIKE 'flow.%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let user: uuid::Uuid =
        sqlx::query_scalar("SELECT user_id FROM app_user WHERE email = 'ana@pytake.dev'")
            .fetch_one(&pool)
            .await
            .unwrap();
    for (o, u, a) in who {
        assert_eq!(o.unwrap().to_string(), org);
        assert_eq!(u, Some(user));
        assert_eq!(a, "user");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn secrets_test_checks_the_configured_provider_and_follows_a_reload(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock, "").await;
    let (tok, _) = admin(&gw, "ana@pytake.dev", "Ana Ltda").await;
    let good = crate::common::secret("sk-good-0a1b2c3d4e5f6a7b8c9d");
    let bad = crate::common::secret("sk-invalid-9f8e7d6c5b4a");
    let mut ids = Vec::new();
    for (key, value, service) in [
        ("OPENAI_OK", good.as_str(), "openai"),
        ("OPENAI_BAD", bad.as_str(), "OpenAI"),
        ("GROQ", good.as_str(), "groq"),
    ] {
        let (s, v) = call(
            &gw,
            "POST",
            "/api/v1/secrets/",
            Some(&tok),
            Some(json!({"key": key, "value": value, "service": service})),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let test = |id: String| {
        let (gw, tok) = (&gw, tok.clone());
        async move {
            let (s, v) = call(
                gw,
                "POST",
                &format!("/api/v1/secrets/{id}/test"),
                Some(&tok),
                None,
            )
            .await;
            assert_eq!(s, 200, "{v}");
            v
        }
    };
    let before = mock.requests().await;
    let v = test(ids[0].clone()).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(
        v["message"],
        format!("accepted by {}/models", mock.base()),
        "the configured provider, not a public address"
    );
    let v = test(ids[1].clone()).await;
    assert_eq!(
        v,
        json!({"valid": false, "message": "the service refused the credential (HTTP 401)"})
    );
    assert_eq!(mock.requests().await, before + 2, "two real calls");
    let v = test(ids[2].clone()).await;
    assert_eq!(v["valid"], false);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("'groq' cannot be checked"),
        "{v}"
    );
    assert_eq!(
        mock.requests().await,
        before + 2,
        "no call for an unknown provider"
    );

    // a reload moves the provider: the next test goes to the new address
    let other = Mock::start().await;
    let text = std::fs::read_to_string(&gw.config_path).unwrap();
    std::fs::write(&gw.config_path, text.replace(&mock.base(), &other.base())).unwrap();
    let want = format!("accepted by {}/models", other.base());
    until("the reload never moved the provider", || {
        let t = test(ids[0].clone());
        let want = want.clone();
        async move { t.await["message"] == want.as_str() }
    })
    .await;
    assert!(other.requests().await >= 1);
}

/// schemathesis over `/api/v1/openapi.json` (every PyTake and bradax operation mounted):
/// first as an org_admin of an organization that has a flow and a secret (so the routes
/// naming one get past the lookup), then bradax's operations with a bradax access token of a
/// project holding every scope and a collection: no 5xx, every status documented, every
/// documented answer of its schema. WhatsApp's Graph API is the mock's stand-in, so nothing
/// leaves the machine.
#[sqlx::test(migrations = "./migrations")]
async fn v1_document_holds_on_generated_input(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(
        &pool,
        &mock,
        &format!(
            "webhooks: {{allow_loopback: true}}\nwhatsapp: {{graph_base_url: \"http://{}/graph/v21.0\"}}\n",
            mock.addr
        ),
    )
    .await;
    let (tok, _) = admin(&gw, "contrato@pytake.dev", "Contrato").await;
    let (s, f) = call(
        &gw,
        "POST",
        "/api/v1/flows",
        Some(&tok),
        Some(json!({"name": "Contrato"})),
    )
    .await;
    assert_eq!(s, 201, "{f}");
    let (s, sec) = call(
        &gw,
        "POST",
        "/api/v1/secrets",
        Some(&tok),
        Some(json!({"key": "OPENAI", "value": crate::common::secret("sk-contract-1234567890"), "service": "openai"})),
    )
    .await;
    assert_eq!(s, 201, "{sec}");
    let cfg = json!({
        "token": tok,
        "flow_id": f["id"],
        "secret_id": sec["id"],
    });
    crate::contract::check(&gw, "pytake", cfg).await;

    // bradax: a project, a key with every scope, its access token, a collection
    let (s, p) = call(
        &gw,
        "POST",
        "/admin/v1/organizations",
        Some(MASTER),
        Some(json!({"name": "contrato", "slug": "contrato", "kind": "project", "tier": "full"})),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let scopes = [
        "invoke_llm",
        "read_vector",
        "write_vector",
        "deploy_graph",
        "execute_graph",
        "read_metrics",
    ];
    let (s, k) = call(
        &gw,
        "POST",
        "/admin/v1/keys",
        Some(MASTER),
        Some(json!({"organization_id": p["id"], "prefix": "bx_live_", "scopes": scopes})),
    )
    .await;
    assert_eq!(s, 201, "{k}");
    let key = crate::common::secret(k["key"].as_str().unwrap());
    let (s, t) = call(
        &gw,
        "POST",
        "/api/v1/auth/token",
        None,
        Some(json!({"project_id": "contrato", "api_key": key})),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let token = crate::common::secret(t["access_token"].as_str().unwrap());
    let (s, u) = call(
        &gw,
        "POST",
        "/api/v1/vectors/contrato/upsert",
        Some(&token),
        Some(json!({"documents": [{"id": "d1", "text": "roubo de veículo", "metadata": {"category": "sinistros"}}]})),
    )
    .await;
    assert_eq!(s, 200, "{u}");
    let cfg = json!({"token": token, "project_id": "contrato", "collection": "contrato"});
    crate::contract::check(&gw, "bradax", cfg).await;
}
