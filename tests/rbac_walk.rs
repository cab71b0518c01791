//! The RBAC walk of issue 15: every operation of the served `/api/v1/openapi.json` is walked,
//! so a route added later is walked too, and an operation the tables below do not classify
//! fails the test.
//!
//! PyTake: each operation as `viewer` and `agent` of organization A, as the `org_admin` of
//! organization B against A's ids (404) and naming A with `X-Organization-Id` (403); the
//! outcome of each (operation, role) comes from [`PYTAKE`], which mirrors the README's matrix.
//! A refused call is PyTake's error shape and changes nothing (every table of the test's
//! database hashed before and after); no answer but `GET secrets/{id}/value` to an
//! `org_admin` carries a secret value. A's `org_admin` then calls every operation with the same
//! requests and gets the documented success, so the refusals are about the caller, not the
//! input.
//!
//! bradax: each operation (the admin app's and the gateway's `llm/invoke`, `llm/stream`) with
//! a token of another project (no data: 403/404, or its own namespace), a token lacking the
//! route's scope (403 `insufficient_scope` in bradax's shape, nothing changed, nothing sent
//! upstream; no usage event on the admin app's routes, and on the gateway's only the one every
//! gateway request gets: a 403 with no tokens and no cost) and a student token on deploy (403
//! `STUDENT_TIER`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::pytake::{JWT, MASTER, admin, assert_error, login, member, request};
use crate::common::{Gateway, Mock, db_url, secret};

/// One request with a JSON body: status, body and the raw text.
async fn req(
    gw: &Gateway,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (u16, Value, String) {
    let body = body.map(Value::to_string);
    request(gw, method, path, token, body.as_deref(), headers).await
}

/// Every table of the test's database: row count and a hash of its rows.
async fn snapshot(pool: &PgPool) -> BTreeMap<String, String> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
           AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        let h: String = sqlx::query_scalar(&format!(
            "SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '')
             FROM \"{t}\" t"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        out.insert(t, h);
    }
    out
}

/// The tables whose rows differ between two snapshots.
fn changed(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    a.keys()
        .chain(b.keys())
        .filter(|t| a.get(*t) != b.get(*t))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The served `/api/v1` document's operations of `tag`: (method, path, operation).
async fn operations(gw: &Gateway, tag: &str) -> Vec<(String, String, Value)> {
    let doc: Value = reqwest::get(gw.url("/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let tags = op["tags"].as_array().unwrap();
            assert!(
                tags.iter().all(|t| t == "pytake" || t == "bradax"),
                "{method} {path}: unexpected tags {tags:?}"
            );
            if tags.iter().any(|t| t == tag) {
                out.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// What a PyTake operation needs (the README's matrix, `roles::Action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// No Bearer token: not walked by role.
    Public,
    /// Any logged-in user, about themselves.
    Session,
    /// `Read`: every role.
    Read,
    /// `ReadSecretValues`: org_admin.
    SecretValue,
    /// `SendWhatsApp`: agent and up.
    Send,
    /// `CreateContacts`: agent and up.
    CreateContact,
    /// `ManageContent`: org_admin.
    Manage,
}

/// What another organization's org_admin gets without naming A (with `X-Organization-Id: A`
/// every authenticated operation is 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Other {
    /// The path or body names one of A's resources: 404, nothing changed.
    NotFound,
    /// A list of the caller's organization: 200 without any of A's data.
    List,
    /// Acts in the caller's own organization only (creation, `me`, `logout`): not walked.
    Own,
}

/// Every PyTake operation of `/api/v1/openapi.json`.
const PYTAKE: &[(&str, &str, Need, Other)] = &[
    ("POST", "/api/v1/auth/register", Need::Public, Other::Own),
    ("POST", "/api/v1/auth/login", Need::Public, Other::Own),
    ("POST", "/api/v1/auth/refresh", Need::Public, Other::Own),
    (
        "POST",
        "/api/v1/auth/forgot-password",
        Need::Public,
        Other::Own,
    ),
    (
        "POST",
        "/api/v1/auth/reset-password",
        Need::Public,
        Other::Own,
    ),
    ("POST", "/api/v1/auth/logout", Need::Session, Other::Own),
    ("GET", "/api/v1/auth/me", Need::Session, Other::Own),
    ("GET", "/api/v1/docs", Need::Public, Other::Own),
    ("GET", "/api/v1/docs/{file}", Need::Public, Other::Own),
    ("GET", "/api/v1/openapi.json", Need::Public, Other::Own),
    ("GET", "/api/v1/contacts", Need::Read, Other::List),
    ("POST", "/api/v1/contacts", Need::CreateContact, Other::Own),
    ("GET", "/api/v1/flows", Need::Read, Other::List),
    ("POST", "/api/v1/flows", Need::Manage, Other::Own),
    ("GET", "/api/v1/flows/{id}", Need::Read, Other::NotFound),
    ("PUT", "/api/v1/flows/{id}", Need::Manage, Other::NotFound),
    (
        "DELETE",
        "/api/v1/flows/{id}",
        Need::Manage,
        Other::NotFound,
    ),
    ("GET", "/api/v1/secrets", Need::Read, Other::List),
    ("GET", "/api/v1/secrets/", Need::Read, Other::List),
    ("POST", "/api/v1/secrets", Need::Manage, Other::Own),
    ("POST", "/api/v1/secrets/", Need::Manage, Other::Own),
    (
        "GET",
        "/api/v1/secrets/usage/organization",
        Need::Read,
        Other::List,
    ),
    ("GET", "/api/v1/secrets/{id}", Need::Read, Other::NotFound),
    ("PUT", "/api/v1/secrets/{id}", Need::Manage, Other::NotFound),
    (
        "DELETE",
        "/api/v1/secrets/{id}",
        Need::Manage,
        Other::NotFound,
    ),
    (
        "GET",
        "/api/v1/secrets/{id}/value",
        Need::SecretValue,
        Other::NotFound,
    ),
    (
        "POST",
        "/api/v1/secrets/{id}/rotate",
        Need::Manage,
        Other::NotFound,
    ),
    (
        "POST",
        "/api/v1/secrets/{id}/activate",
        Need::Manage,
        Other::NotFound,
    ),
    (
        "POST",
        "/api/v1/secrets/{id}/deactivate",
        Need::Manage,
        Other::NotFound,
    ),
    (
        "POST",
        "/api/v1/secrets/{id}/test",
        Need::Manage,
        Other::NotFound,
    ),
    (
        "GET",
        "/api/v1/secrets/{id}/usage",
        Need::Read,
        Other::NotFound,
    ),
    ("POST", "/api/v1/whatsapp/send", Need::Send, Other::NotFound),
    ("GET", "/api/v1/whatsapp/numbers", Need::Read, Other::List),
    (
        "POST",
        "/api/v1/whatsapp/numbers/sync",
        Need::Manage,
        Other::NotFound,
    ),
    ("POST", "/api/v1/whatsapp/webhook", Need::Public, Other::Own),
    ("GET", "/api/v1/whatsapp/webhook", Need::Public, Other::Own),
    (
        "POST",
        "/api/v1/flow-automations",
        Need::Manage,
        Other::NotFound,
    ),
    (
        "POST",
        "/api/v1/flow-automations/{id}/start",
        Need::Manage,
        Other::NotFound,
    ),
    (
        "GET",
        "/api/v1/flow-automations/{id}/stats",
        Need::Read,
        Other::NotFound,
    ),
];

/// The README's matrix: may `role` (of the organization) do what `need` names?
fn allowed(role: &str, need: Need) -> bool {
    match need {
        Need::Public | Need::Session | Need::Read => true,
        Need::Send | Need::CreateContact => matches!(role, "agent" | "org_admin"),
        Need::SecretValue | Need::Manage => role == "org_admin",
    }
}

/// Organization A's resources the walk names.
struct OrgA {
    org: String,
    secret: String,
    flow: String,
    contact: String,
    automation: String,
    phone_number_id: String,
    /// Text of A's that no other organization may see.
    private: Vec<String>,
}

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn next() -> u32 {
    SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The path with A's ids filled in, and a body the operation accepts from an org_admin of A.
fn pytake_request(method: &str, path: &str, a: &OrgA) -> (String, Option<Value>) {
    let id = if path.starts_with("/api/v1/flows/") {
        &a.flow
    } else if path.starts_with("/api/v1/secrets/{id}") {
        &a.secret
    } else if path.starts_with("/api/v1/flow-automations/") {
        &a.automation
    } else {
        assert!(!path.contains('{'), "no id for {path}: classify it");
        ""
    };
    let url = path.replace("{id}", id);
    let n = next();
    let body = match (method, path) {
        ("POST", "/api/v1/contacts") => {
            Some(json!({"whatsapp_id": format!("55119{:08}", 10_000 + n), "name": "novo"}))
        }
        ("POST", "/api/v1/flows") => Some(json!({"name": format!("novo-{n}")})),
        ("PUT", "/api/v1/flows/{id}") => Some(json!({"name": "renomeado"})),
        ("POST", "/api/v1/secrets" | "/api/v1/secrets/") => Some(
            json!({"key": format!("novo-{n}"), "value": format!("valor-novo-{n}"), "service": "outro"}),
        ),
        ("PUT", "/api/v1/secrets/{id}") => Some(json!({"service": "whatsapp"})),
        ("POST", "/api/v1/secrets/{id}/rotate" | "/api/v1/secrets/{id}/test") => Some(json!({})),
        ("POST", "/api/v1/whatsapp/send") => Some(
            json!({"to": "5511988887777", "message": "oi", "phone_number_id": a.phone_number_id}),
        ),
        ("POST", "/api/v1/whatsapp/numbers/sync") => {
            Some(json!({"secret_id": a.secret, "waba_id": "7001"}))
        }
        ("POST", "/api/v1/flow-automations") => {
            Some(json!({"flow_id": a.flow, "contacts": [a.contact]}))
        }
        _ => None,
    };
    (url, body)
}

async fn pytake_gateway(pool: &PgPool, mock: &Mock) -> Gateway {
    let extra = format!(
        "whatsapp: {{graph_base_url: \"http://{}/graph/v21.0\", verify_token_env: RBAC_WA_VERIFY}}\n",
        mock.addr
    );
    let key = "5c".repeat(32);
    Gateway::start_with_env(
        &crate::common::single_model(mock, "chat-model", &extra),
        &[
            ("DATABASE_URL", &db_url(pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
            ("CATRACA_JWT_SECRET", JWT),
            ("CATRACA_SECRET_KEY", &key),
            ("WHATSAPP_APP_SECRET", &secret("rbac-wa-app-secret-0a1b2c")),
            ("RBAC_WA_VERIFY", "rbac-verify"),
        ],
    )
    .await
}

/// A's data as its org_admin: a WhatsApp secret, its numbers, a contact, a flow, an automation.
async fn seed_org_a(gw: &Gateway, token: &str, org: &str, wa_token: &str) -> OrgA {
    let ok = |s: u16, v: &Value, want: u16| assert_eq!(s, want, "{v}");
    let (s, v, _) = req(
        gw,
        "POST",
        "/api/v1/secrets/",
        Some(token),
        Some(&json!({"key": "wa-de-a", "value": wa_token, "service": "whatsapp"})),
        &[],
    )
    .await;
    ok(s, &v, 201);
    let sid = v["id"].as_str().unwrap().to_string();
    let (s, v, _) = req(
        gw,
        "POST",
        "/api/v1/whatsapp/numbers/sync",
        Some(token),
        Some(&json!({"secret_id": sid, "waba_id": "7001"})),
        &[],
    )
    .await;
    ok(s, &v, 200);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|n| n["phone_number_id"] == "70011"),
        "{v}"
    );
    let (s, v, _) = req(
        gw,
        "POST",
        "/api/v1/contacts",
        Some(token),
        Some(&json!({"whatsapp_id": "5511900000001", "name": "Cliente-Privado-de-A"})),
        &[],
    )
    .await;
    ok(s, &v, 201);
    let contact = v["id"].as_str().unwrap().to_string();
    let node = |id: &str, kind: &str, data: Value| json!({"id": id, "type": kind, "position": {"x": 0, "y": 0}, "data": data});
    let (s, v, _) = req(
        gw,
        "POST",
        "/api/v1/flows",
        Some(token),
        Some(&json!({"name": "Fluxo-Privado-de-A",
                     "nodes": [node("s", "start", json!({})), node("m", "message", json!({"text": "oi"}))],
                     "edges": [{"id": "e", "source": "s", "target": "m"}]})),
        &[],
    )
    .await;
    ok(s, &v, 201);
    let flow = v["id"].as_str().unwrap().to_string();
    let (s, v, _) = req(
        gw,
        "POST",
        "/api/v1/flow-automations",
        Some(token),
        Some(&json!({"flow_id": flow, "contacts": [contact]})),
        &[],
    )
    .await;
    ok(s, &v, 201);
    let automation = v["id"].as_str().unwrap().to_string();
    OrgA {
        org: org.to_string(),
        private: vec![
            wa_token.to_string(),
            "Cliente-Privado-de-A".to_string(),
            "Fluxo-Privado-de-A".to_string(),
            "wa-de-a".to_string(),
            "5511900000001".to_string(),
            sid.clone(),
            flow.clone(),
            contact.clone(),
            automation.clone(),
            org.to_string(),
        ],
        secret: sid,
        flow,
        contact,
        automation,
        phone_number_id: "70011".to_string(),
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn pytake_every_operation_as_each_lower_role_and_another_organization(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = pytake_gateway(&pool, &mock).await;
    let wa_token = secret("EAAG-rbac-walk-token-never-shown");
    let (ta, org_a) = admin(&gw, "admin@a.example.com", "Org A").await;
    let refresh_a = login(&gw, "admin@a.example.com").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let viewer = member(&gw, &org_a, "viewer@a.example.com", "viewer").await;
    let agent = member(&gw, &org_a, "agent@a.example.com", "agent").await;
    let (tb, _org_b) = admin(&gw, "admin@b.example.com", "Org B").await;
    let a = seed_org_a(&gw, &ta, &org_a, &wa_token).await;
    // values of secrets no answer but `value` may carry
    let values = [wa_token.as_str()];

    let ops = operations(&gw, "pytake").await;
    let mut unclassified = Vec::new();
    for (method, path, _) in &ops {
        if !PYTAKE.iter().any(|(m, p, _, _)| m == method && p == path) {
            unclassified.push(format!("{method} {path}"));
        }
    }
    assert!(
        unclassified.is_empty(),
        "operations in /api/v1/openapi.json missing from the walk's table: {unclassified:?}"
    );
    let stale: Vec<_> = PYTAKE
        .iter()
        .filter(|(m, p, _, _)| !ops.iter().any(|(om, op, _)| om == m && op == p))
        .collect();
    assert!(stale.is_empty(), "table rows no longer served: {stale:?}");

    let mut walked = 0;
    for (method, path, op) in &ops {
        let (_, need, other) = PYTAKE
            .iter()
            .map(|(m, p, n, o)| ((m, p), *n, *o))
            .find(|((m, p), _, _)| *m == method && *p == path)
            .unwrap();
        // the document says which operations take a Bearer token
        assert_eq!(
            op.get("security").is_some(),
            need != Need::Public,
            "{method} {path}: security in the document vs the table"
        );
        if need == Need::Public {
            continue;
        }
        let (url, body) = pytake_request(method, path, &a);
        for (role, token) in [("viewer", viewer.as_str()), ("agent", agent.as_str())] {
            let what = format!("{method} {path} as {role} of A");
            let before = snapshot(&pool).await;
            if path == "/api/v1/auth/logout" {
                // the caller's own session only: another member's refresh token is refused
                let b = json!({"refresh_token": refresh_a});
                let (s, v, text) = req(&gw, method, &url, Some(token), Some(&b), &[]).await;
                assert_error(s, &v, 401, "invalid_token");
                assert_eq!(
                    changed(&before, &snapshot(&pool).await),
                    Vec::<String>::new(),
                    "{what}"
                );
                assert_no_values(&what, &text, &values);
                continue;
            }
            let (s, v, text) = req(&gw, method, &url, Some(token), body.as_ref(), &[]).await;
            assert_no_values(&what, &text, &values);
            if allowed(role, need) {
                assert!((200..300).contains(&s), "{what}: {s} {v}");
            } else {
                assert_error(s, &v, 403, "forbidden");
                let diff = changed(&before, &snapshot(&pool).await);
                assert!(diff.is_empty(), "{what} was refused but changed {diff:?}");
            }
            walked += 1;
        }

        // another organization's org_admin naming A: 403 on every operation
        let what = format!("{method} {path} as B's org_admin with X-Organization-Id: A");
        let before = snapshot(&pool).await;
        let (s, v, text) = req(
            &gw,
            method,
            &url,
            Some(&tb),
            body.as_ref(),
            &[("X-Organization-Id", &a.org)],
        )
        .await;
        assert_error(s, &v, 403, "forbidden");
        let diff = changed(&before, &snapshot(&pool).await);
        assert!(diff.is_empty(), "{what} was refused but changed {diff:?}");
        assert_no_data(&what, &text, &a.private);
        // and with A's ids in its own organization
        let what = format!("{method} {path} as B's org_admin");
        match other {
            Other::Own => {}
            Other::NotFound => {
                let before = snapshot(&pool).await;
                let (s, v, text) = req(&gw, method, &url, Some(&tb), body.as_ref(), &[]).await;
                assert_error(s, &v, 404, "not_found");
                let diff = changed(&before, &snapshot(&pool).await);
                assert!(diff.is_empty(), "{what} was refused but changed {diff:?}");
                assert_no_data(&what, &text, &a.private);
            }
            Other::List => {
                let (s, v, text) = req(&gw, method, &url, Some(&tb), None, &[]).await;
                assert_eq!(s, 200, "{what}: {v}");
                assert_no_data(&what, &text, &a.private);
            }
        }
        walked += 1;
    }
    assert!(walked >= 60, "{walked} calls walked");

    // A's org_admin: the same requests succeed as documented, so each refusal above was about
    // the caller; deactivation, deletions and the logout come last
    let rank = |m: &str, p: &str| match (m, p) {
        ("POST", "/api/v1/auth/logout") => 4,
        ("DELETE", _) => 3,
        (_, "/api/v1/secrets/{id}/deactivate") => 2,
        _ => 0,
    };
    let mut admin_ops: Vec<_> = ops
        .iter()
        .filter(|(m, p, _)| {
            PYTAKE
                .iter()
                .any(|(tm, tp, n, _)| tm == m && tp == p && *n != Need::Public)
        })
        .collect();
    admin_ops.sort_by_key(|(m, p, _)| rank(m, p));
    for (method, path, op) in admin_ops {
        let (url, body) = pytake_request(method, path, &a);
        let body = if path == "/api/v1/auth/logout" {
            Some(json!({"refresh_token": refresh_a}))
        } else {
            body
        };
        let (s, v, text) = req(&gw, method, &url, Some(&ta), body.as_ref(), &[]).await;
        assert!(
            (200..300).contains(&s) && op["responses"].get(s.to_string()).is_some(),
            "{method} {path} as A's org_admin: {s} {v}"
        );
        if path != "/api/v1/secrets/{id}/value" {
            assert_no_values(&format!("{method} {path} as org_admin"), &text, &values);
        } else {
            assert_eq!(v["value"], wa_token, "{v}");
        }
    }
}

fn assert_no_values(what: &str, text: &str, values: &[&str]) {
    for val in values {
        assert!(!text.contains(val), "{what} carried a secret value: {text}");
    }
}

fn assert_no_data(what: &str, text: &str, private: &[String]) {
    for p in private {
        assert!(
            !text.contains(p.as_str()),
            "{what} showed A's {p:?}: {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// bradax

/// What another project's token gets on a bradax operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Project {
    /// Takes no token (`health`) or a key (`auth/token`, walked apart).
    Public,
    /// Names A's resource: this status, `error` and detail code; nothing of A's shown or
    /// changed.
    Refused(u16, &'static str, Option<&'static str>),
    /// Acts in the caller's own namespace (same names are free): A's data unchanged.
    Own,
    /// Names no project resource (`llm/*`): only the scope walk applies.
    None,
}

/// Every bradax operation of `/api/v1/openapi.json`: its scope and another project's outcome.
const BRADAX: &[(&str, &str, Option<&str>, Project)] = &[
    ("POST", "/api/v1/auth/token", None, Project::Public),
    ("GET", "/api/v1/health", None, Project::Public),
    (
        "GET",
        "/api/v1/metrics",
        Some("read_metrics"),
        Project::Refused(403, "forbidden", Some("PROJECT_MISMATCH")),
    ),
    (
        "POST",
        "/api/v1/vectors/{collection}/query",
        Some("read_vector"),
        Project::Refused(404, "not_found", None),
    ),
    (
        "POST",
        "/api/v1/vectors/{collection}/upsert",
        Some("write_vector"),
        Project::Own,
    ),
    (
        "POST",
        "/api/v1/graphs/deploy",
        Some("deploy_graph"),
        Project::Own,
    ),
    (
        "POST",
        "/api/v1/graphs/{graph_id}/execute",
        Some("execute_graph"),
        Project::Refused(404, "not_found", None),
    ),
    (
        "POST",
        "/api/v1/llm/invoke",
        Some("invoke_llm"),
        Project::None,
    ),
    (
        "POST",
        "/api/v1/llm/stream",
        Some("invoke_llm"),
        Project::None,
    ),
];

const ALL: [&str; 6] = [
    "invoke_llm",
    "read_vector",
    "write_vector",
    "deploy_graph",
    "execute_graph",
    "read_metrics",
];

/// The path (A's collection and graph) and a body project A's token is answered 2xx for.
fn bradax_request(path: &str, graph_id: &str) -> (String, Option<Value>) {
    let url = path
        .replace("{collection}", "colecao-a")
        .replace("{graph_id}", graph_id);
    let body = match path {
        "/api/v1/metrics" => return (format!("{url}?project_id=proj-a"), None),
        "/api/v1/health" => None,
        "/api/v1/vectors/{collection}/query" => {
            Some(json!({"vector": [1.0, 0.0, 0.5], "top_k": 3}))
        }
        "/api/v1/vectors/{collection}/upsert" => Some(
            json!({"documents": [{"id": "novo", "vector": [0.5, 1.0, 0.0], "text": "novo texto"}]}),
        ),
        "/api/v1/graphs/deploy" => Some(json!({"name": "grafo-a", "format": "json",
            "definition": "{\"nodes\": [{\"id\": \"t\", \"type\": \"template\", \"template\": \"{{inputs.x}} e mais\"}]}"})),
        "/api/v1/graphs/{graph_id}/execute" => Some(json!({"inputs": {"x": "1"}})),
        "/api/v1/llm/invoke" | "/api/v1/llm/stream" => {
            Some(json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "oi"}]}))
        }
        p => panic!("no request for {p}: classify it"),
    };
    (url, body)
}

/// bradax's operator key and JWT secret in this file's gateway.
const BX_MASTER: &str = "rbac-walk-bradax-master-0123456789";
const BX_JWT: &str = "rbac-walk-bradax-jwt-secret-0123456789ab";

/// A gateway with a chat model, an embedding model (the mock) and the vault.
async fn bx_start(pool: &PgPool) -> (Gateway, Mock) {
    let mock = Mock::start().await;
    let body = format!(
        r#"providers:
  - {{name: p, base_url: "{}", forward_headers: [x-mock-*]}}
deployments:
  - {{name: d, provider: p, model: up}}
  - {{name: de, provider: p, model: up-emb}}
models:
  - {{name: gpt-4o-mini, deployments: [d], input_usd_per_1m: "0.15", output_usd_per_1m: "0.60"}}
  - {{name: text-embedding-3-small, category: embedding, deployments: [de], input_usd_per_1m: "0.02"}}
bradax: {{student_rpm: 50, student_models: [gpt-4o-mini]}}
"#,
        mock.base()
    );
    let gw = Gateway::start_with_env(
        &body,
        &[
            ("DATABASE_URL", &db_url(pool, None)),
            ("CATRACA_MASTER_KEY", BX_MASTER),
            ("CATRACA_JWT_SECRET", BX_JWT),
            ("CATRACA_SECRET_KEY", &"7d".repeat(32)),
        ],
    )
    .await;
    (gw, mock)
}

/// A project (`slug`) of `tier`: its organization id.
async fn bx_project(gw: &Gateway, slug: &str, tier: &str) -> String {
    let b = json!({"name": slug, "slug": slug, "kind": "project", "tier": tier});
    let (s, v, _) = req(
        gw,
        "POST",
        "/admin/v1/organizations",
        Some(BX_MASTER),
        Some(&b),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// A new `bx_live_` key of `org` holding `scopes`: its plaintext.
async fn bx_key(gw: &Gateway, org: &str, scopes: &[&str]) -> String {
    let b = json!({"organization_id": org, "prefix": "bx_live_", "scopes": scopes});
    let (s, v, _) = req(gw, "POST", "/admin/v1/keys", Some(BX_MASTER), Some(&b), &[]).await;
    assert_eq!(s, 201, "{v}");
    secret(v["key"].as_str().unwrap())
}

/// `POST auth/token` for project `slug` with `key` (and `scopes` when given).
async fn bx_auth(gw: &Gateway, slug: &str, key: &str, scopes: Option<&[&str]>) -> (u16, Value) {
    let mut b = json!({"project_id": slug, "api_key": key});
    if let Some(sc) = scopes {
        b["scopes"] = json!(sc);
    }
    let (s, v, _) = req(gw, "POST", "/api/v1/auth/token", None, Some(&b), &[]).await;
    (s, v)
}

/// bradax's error shape exactly, with this status, `error` and (when given) first detail code.
fn bx_error(s: u16, v: &Value, status: u16, error: &str, code: Option<&str>) {
    assert_eq!(s, status, "{v}");
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    let mut keys: Vec<_> = o.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["details", "error", "message", "request_id", "timestamp"],
        "{v}"
    );
    assert_eq!(o["error"], error, "{v}");
    assert!(o["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    let d = o["details"].as_array().unwrap();
    assert!(
        !d.is_empty()
            && d.iter()
                .all(|d| d["code"].is_string() && d["message"].is_string()),
        "{v}"
    );
    if let Some(c) = code {
        assert_eq!(d[0]["code"], c, "{v}");
    }
}

/// An access token of project `slug`'s key `key` with `scopes` (all the key holds: `None`).
async fn bx_token(gw: &Gateway, slug: &str, key: &str, scopes: Option<&[&str]>) -> String {
    let (s, v) = bx_auth(gw, slug, key, scopes).await;
    assert_eq!(s, 200, "{v}");
    secret(v["access_token"].as_str().unwrap())
}

async fn usage_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM usage_event")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn bradax_every_operation_as_another_project_and_without_its_scope(pool: PgPool) {
    let (gw, mock) = bx_start(&pool).await;
    let org_a = bx_project(&gw, "proj-a", "full").await;
    let key_a = bx_key(&gw, &org_a, &ALL).await;
    let ta = bx_token(&gw, "proj-a", &key_a, None).await;
    let org_b = bx_project(&gw, "proj-b", "full").await;
    let key_b = bx_key(&gw, &org_b, &ALL).await;
    let tb = bx_token(&gw, "proj-b", &key_b, None).await;

    // A's data: a collection with a private text, a graph
    let (s, v, _) = req(
        &gw,
        "POST",
        "/api/v1/vectors/colecao-a/upsert",
        Some(&ta),
        Some(
            &json!({"documents": [{"id": "doc-a", "vector": [1.0, 0.0, 0.5],
                                    "text": "segredo-do-projeto-a", "metadata": {"dono": "a"}}]}),
        ),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, deploy) = bradax_request("/api/v1/graphs/deploy", "");
    let (s, v, _) = req(
        &gw,
        "POST",
        "/api/v1/graphs/deploy",
        Some(&ta),
        deploy.as_ref(),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let graph_a = v["graph_id"].as_str().unwrap().to_string();
    let query = |tok: String| {
        let gw = &gw;
        async move {
            let (_, q) = bradax_request("/api/v1/vectors/{collection}/query", "");
            let (s, v, _) = req(
                gw,
                "POST",
                "/api/v1/vectors/colecao-a/query",
                Some(&tok),
                q.as_ref(),
                &[],
            )
            .await;
            assert_eq!(s, 200, "{v}");
            v["results"].clone()
        }
    };
    let a_results = query(ta.clone()).await;
    assert!(
        a_results.to_string().contains("segredo-do-projeto-a"),
        "{a_results}"
    );
    let private = [
        "segredo-do-projeto-a".to_string(),
        "doc-a".to_string(),
        graph_a.clone(),
        "e mais".to_string(),
        key_a.clone(),
    ];

    let ops = operations(&gw, "bradax").await;
    let unclassified: Vec<_> = ops
        .iter()
        .filter(|(m, p, _)| !BRADAX.iter().any(|(tm, tp, _, _)| tm == m && tp == p))
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    assert!(
        unclassified.is_empty(),
        "operations in /api/v1/openapi.json missing from the walk's table: {unclassified:?}"
    );
    for (m, p, _, _) in BRADAX {
        assert!(
            ops.iter().any(|(om, op, _)| om == m && op == p),
            "{m} {p} is in the table but not served"
        );
    }
    assert!(
        ops.iter().any(|(_, p, _)| p == "/api/v1/llm/stream"),
        "gateway routes listed"
    );

    // auth/token: another project's key is 401, asking for a scope the key lacks is 403
    let narrow = bx_key(&gw, &org_a, &["read_vector"]).await;
    let before = snapshot(&pool).await;
    let (s, v) = bx_auth(&gw, "proj-a", &key_b, None).await;
    bx_error(
        s,
        &v,
        401,
        "authentication_failed",
        Some("INVALID_CREDENTIALS"),
    );
    let (s, v) = bx_auth(&gw, "proj-a", &narrow, Some(&["write_vector"])).await;
    bx_error(s, &v, 403, "insufficient_scope", None);
    let diff = changed(&before, &snapshot(&pool).await);
    assert!(diff.is_empty(), "refused auth/token changed {diff:?}");

    // the scope walk: for each operation, a token of A holding every scope but its own
    let mut walked = 0;
    for (method, path, op) in &ops {
        let &(_, _, scope, _) = BRADAX
            .iter()
            .find(|(m, p, _, _)| m == method && p == path)
            .unwrap();
        assert_eq!(
            op.get("security").is_some(),
            scope.is_some(),
            "{method} {path}: security in the document vs the table"
        );
        let Some(scope) = scope else { continue };
        let (url, body) = bradax_request(path, &graph_a);
        let rest: Vec<&str> = ALL.iter().copied().filter(|s| *s != scope).collect();
        let lacking = bx_token(&gw, "proj-a", &key_a, Some(&rest)).await;
        tokio::time::sleep(Duration::from_millis(200)).await; // earlier usage written
        let what = format!("{method} {path} without {scope}");
        let before = snapshot(&pool).await;
        let (rows, upstream) = (usage_rows(&pool).await, mock.requests().await);
        let (s, v, text) = req(&gw, method, &url, Some(&lacking), body.as_ref(), &[]).await;
        bx_error(s, &v, 403, "insufficient_scope", None);
        assert!(
            text.contains(scope),
            "{what}: the answer names the scope: {text}"
        );
        if path.starts_with("/api/v1/llm/") {
            // a gateway route: every request, refused ones too, is one usage event (README,
            // "exactly one usage event"): a 403 of A's key with no tokens and no cost, and
            // nothing else changed
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while usage_rows(&pool).await < rows + 1 {
                assert!(std::time::Instant::now() < deadline, "{what}: no usage row");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let diff = changed(&before, &snapshot(&pool).await);
            assert!(
                diff.iter()
                    .all(|t| t == "usage_event" || t == "usage_daily"),
                "{what} was refused but changed {diff:?}"
            );
            assert_eq!(usage_rows(&pool).await, rows + 1, "{what}: one usage row");
            let (status, tokens, upstream_cost, billed): (i16, i64, Option<i64>, Option<i64>) =
                sqlx::query_as(
                    "SELECT status, prompt_tokens + completion_tokens, cost_upstream_usd_micros,
                            cost_billed_brl_micros
                     FROM usage_event ORDER BY usage_event_id DESC LIMIT 1",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(status, 403, "{what}");
            assert_eq!(tokens, 0, "{what}");
            assert!(
                upstream_cost.unwrap_or(0) == 0 && billed.unwrap_or(0) == 0,
                "{what}: billed"
            );
        } else {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let diff = changed(&before, &snapshot(&pool).await);
            assert!(diff.is_empty(), "{what} was refused but changed {diff:?}");
            assert_eq!(usage_rows(&pool).await, rows, "{what}: a usage row");
        }
        assert_eq!(
            mock.requests().await,
            upstream,
            "{what} reached the upstream"
        );
        walked += 1;
    }
    assert_eq!(walked, 7, "every scoped operation walked");

    // another project's token naming A's resources; its writes (own namespace) last
    let mut by_b: Vec<_> = ops
        .iter()
        .map(|(m, p, _)| {
            let &(_, _, _, other) = BRADAX
                .iter()
                .find(|(tm, tp, _, _)| tm == m && tp == p)
                .unwrap();
            (m, p, other)
        })
        .collect();
    by_b.sort_by_key(|(_, _, o)| *o == Project::Own);
    for (method, path, other) in by_b {
        if matches!(other, Project::Public | Project::None) {
            continue;
        }
        let (url, body) = bradax_request(path, &graph_a);
        let what = format!("{method} {path} as project B");
        match other {
            Project::Public | Project::None => {}
            Project::Refused(status, error, code) => {
                let before = snapshot(&pool).await;
                let (s, v, text) = req(&gw, method, &url, Some(&tb), body.as_ref(), &[]).await;
                bx_error(s, &v, status, error, code);
                let diff = changed(&before, &snapshot(&pool).await);
                assert!(diff.is_empty(), "{what} was refused but changed {diff:?}");
                for p in &private {
                    assert!(
                        !text.contains(p.as_str()),
                        "{what} showed A's {p:?}: {text}"
                    );
                }
            }
            Project::Own => {
                let (s, v, text) = req(&gw, method, &url, Some(&tb), body.as_ref(), &[]).await;
                assert_eq!(s, 200, "{what}: {v}");
                for p in &private {
                    assert!(
                        !text.contains(p.as_str()),
                        "{what} showed A's {p:?}: {text}"
                    );
                }
            }
        }
    }
    // B's writes went to B's namespace: A's collection answers as before
    assert_eq!(query(ta.clone()).await, a_results);

    // a student project: deploy is refused whatever its key holds
    let org_s = bx_project(&gw, "proj-s", "student").await;
    let key_s = bx_key(&gw, &org_s, &ALL).await;
    let ts = bx_token(&gw, "proj-s", &key_s, None).await;
    let (s, v) = bx_auth(&gw, "proj-s", &key_s, Some(&["deploy_graph"])).await;
    bx_error(s, &v, 403, "forbidden", Some("STUDENT_TIER"));
    let before = snapshot(&pool).await;
    let (url, body) = bradax_request("/api/v1/graphs/deploy", "");
    let (s, v, _) = req(&gw, "POST", &url, Some(&ts), body.as_ref(), &[]).await;
    bx_error(s, &v, 403, "forbidden", Some("STUDENT_TIER"));
    let diff = changed(&before, &snapshot(&pool).await);
    assert!(diff.is_empty(), "a student's deploy changed {diff:?}");

    // A's own token: every operation answers as documented, so the refusals were the caller's
    for (method, path, op) in &ops {
        if op.get("security").is_none() {
            continue;
        }
        let (url, body) = bradax_request(path, &graph_a);
        let (s, v, _) = req(&gw, method, &url, Some(&ta), body.as_ref(), &[]).await;
        assert!(
            (200..300).contains(&s) && op["responses"].get(s.to_string()).is_some(),
            "{method} {path} as project A: {s} {v}"
        );
    }
}
