//! PyTake's contacts and flows (issue 15 items 1 and 7): exact shapes, edges naming
//! existing nodes, duplicate WhatsApp ids (409), search, pagination refused out of range,
//! roles on the one matrix (viewer reads, agent also creates contacts, org_admin manages
//! flows), another organization's ids answering 404, and every refusal changing nothing.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::pytake::{JWT as SECRET, MASTER, admin, assert_error, member};
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

/// A request with a raw body.
async fn raw(gw: &Gateway, method: &str, path: &str, token: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method.parse().unwrap(), gw.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    k.sort();
    k
}

fn graph() -> Value {
    json!({
        "name": "Boas-vindas",
        "description": "Primeiro contato",
        "nodes": [
            {"id": "start", "type": "trigger", "position": {"x": 0, "y": 0}, "data": {"keyword": "oi"}},
            {"id": "msg", "type": "custom-anything", "position": {"x": 120.5, "y": -40},
             "data": {"text": "Olá!", "buttons": [{"id": 1, "label": "Sim"}], "nested": {"a": {"b": null}}}}
        ],
        "edges": [
            {"id": "e1", "source": "start", "target": "msg", "sourceHandle": "out", "targetHandle": "in"}
        ]
    })
}

#[sqlx::test(migrations = "./migrations")]
async fn flows_crud_with_exact_shapes_graph_rules_and_pagination(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let (tok, org) = admin(&gw, "ana@pytake.dev", "Ana Ltda").await;
    let t = Some(tok.as_str());

    let (s, f) = call(&gw, "POST", "/api/v1/flows", t, Some(graph())).await;
    assert_eq!(s, 201, "{f}");
    assert_eq!(
        keys(&f),
        [
            "created_at",
            "description",
            "edges",
            "id",
            "name",
            "nodes",
            "organization_id",
            "status",
            "updated_at"
        ]
    );
    assert_eq!(f["name"], "Boas-vindas");
    assert_eq!(f["description"], "Primeiro contato");
    assert_eq!(f["status"], "draft", "the default status");
    assert_eq!(f["organization_id"], json!(org));
    assert_eq!(
        f["nodes"],
        graph()["nodes"],
        "any node type and data kept as given"
    );
    assert_eq!(f["edges"], graph()["edges"]);
    let id = f["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/flows/{id}");
    let (s, got) = call(&gw, "GET", &path, t, None).await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(got, f);

    // edges naming a node that does not exist: 400, nothing stored
    let mut bad = graph();
    bad["edges"][0]["target"] = json!("nowhere");
    let (s, v) = call(&gw, "POST", "/api/v1/flows", t, Some(bad)).await;
    assert_error(s, &v, 400, "bad_request");
    assert!(v["detail"].as_str().unwrap().contains("nowhere"), "{v}");
    // duplicate node ids, duplicate edge ids, bad status: 400
    let mut dup = graph();
    dup["nodes"][1]["id"] = json!("start");
    dup["edges"] = json!([]);
    let (s, v) = call(&gw, "POST", "/api/v1/flows", t, Some(dup)).await;
    assert_error(s, &v, 400, "bad_request");
    let mut dup = graph();
    dup["edges"] = json!([{"id": "e", "source": "start", "target": "msg"},
                          {"id": "e", "source": "msg", "target": "start"}]);
    let (s, v) = call(&gw, "POST", "/api/v1/flows", t, Some(dup)).await;
    assert_error(s, &v, 400, "bad_request");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/flows",
        t,
        Some(json!({"name": "x", "status": "running"})),
    )
    .await;
    assert_error(s, &v, 400, "bad_request");
    // schema errors: 422
    for body in [
        json!({"description": "no name"}),
        json!({"name": "x", "nodes": {"id": "a"}}),
        json!({"name": "x", "nodes": [{"id": "a", "type": "t", "data": {}}]}),
        json!({"name": 5}),
    ] {
        let (s, v) = call(&gw, "POST", "/api/v1/flows", t, Some(body.clone())).await;
        assert_error(s, &v, 422, "validation_error");
    }
    assert_eq!(
        count(&pool, "pytake_flow").await,
        1,
        "refusals stored nothing"
    );

    // update: fields not sent are kept
    let (s, u) = call(
        &gw,
        "PUT",
        &path,
        t,
        Some(json!({"name": "Boas-vindas v2", "status": "active"})),
    )
    .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["name"], "Boas-vindas v2");
    assert_eq!(u["status"], "active");
    assert_eq!(u["description"], f["description"]);
    assert_eq!(u["nodes"], f["nodes"]);
    assert_eq!(u["created_at"], f["created_at"]);
    // nodes that leave the kept edges dangling: 400, unchanged
    let (s, v) = call(
        &gw,
        "PUT",
        &path,
        t,
        Some(json!({"nodes": [graph()["nodes"][0]]})),
    )
    .await;
    assert_error(s, &v, 400, "bad_request");
    let (_, now) = call(&gw, "GET", &path, t, None).await;
    assert_eq!(now, u, "a refused update changes nothing");
    // both together are fine; description "" clears it
    let (s, u2) = call(
        &gw,
        "PUT",
        &path,
        t,
        Some(json!({"nodes": [graph()["nodes"][0]], "edges": [], "description": ""})),
    )
    .await;
    assert_eq!(s, 200, "{u2}");
    assert_eq!(u2["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(u2["edges"], json!([]));
    assert_eq!(u2["description"], Value::Null);

    // pagination: newest first; out of range refused, never clamped
    for i in 2..=3 {
        let (s, v) = call(
            &gw,
            "POST",
            "/api/v1/flows",
            t,
            Some(json!({"name": format!("f{i}")})),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["nodes"], json!([]));
        assert_eq!(v["edges"], json!([]));
    }
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, l) = call(&gw, "GET", "/api/v1/flows", t, None).await;
    assert_eq!(s, 200, "{l}");
    assert_eq!(names(&l), ["f3", "f2", "Boas-vindas v2"]);
    let (_, l) = call(&gw, "GET", "/api/v1/flows?limit=2", t, None).await;
    assert_eq!(names(&l), ["f3", "f2"]);
    let (_, l) = call(&gw, "GET", "/api/v1/flows?limit=2&offset=2", t, None).await;
    assert_eq!(names(&l), ["Boas-vindas v2"]);
    assert_eq!(l[0], u2);
    let (_, l) = call(&gw, "GET", "/api/v1/flows?offset=3", t, None).await;
    assert_eq!(l, json!([]));
    for q in ["limit=0", "limit=101", "offset=-1", "offset=100001"] {
        let (s, v) = call(&gw, "GET", &format!("/api/v1/flows?{q}"), t, None).await;
        assert_error(s, &v, 400, "bad_request");
    }
    for q in ["limit=abc", "limit=99999999999999999999999", "offset=1.5"] {
        let (s, v) = call(&gw, "GET", &format!("/api/v1/flows?{q}"), t, None).await;
        assert_error(s, &v, 422, "validation_error");
    }

    // delete: 204, then gone
    let (s, _) = call(&gw, "DELETE", &path, t, None).await;
    assert_eq!(s, 204);
    let (s, v) = call(&gw, "GET", &path, t, None).await;
    assert_error(s, &v, 404, "not_found");
    let (s, v) = call(&gw, "DELETE", &path, t, None).await;
    assert_error(s, &v, 404, "not_found");
    for bad in ["not-a-uuid", "42"] {
        let (s, v) = call(&gw, "GET", &format!("/api/v1/flows/{bad}"), t, None).await;
        assert_error(s, &v, 404, "not_found");
    }
    assert_eq!(count(&pool, "pytake_flow").await, 2);
    // no token
    let (s, v) = call(&gw, "GET", "/api/v1/flows", None, None).await;
    assert_error(s, &v, 401, "invalid_token");
}

#[sqlx::test(migrations = "./migrations")]
async fn contacts_create_search_duplicates_and_pagination(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let (tok, org) = admin(&gw, "ana@pytake.dev", "Ana Ltda").await;
    let t = Some(tok.as_str());
    let (s, c) = call(
        &gw,
        "POST",
        "/api/v1/contacts",
        t,
        Some(json!({"whatsapp_id": "5511999990001", "name": "  Maria Souza ", "email": "Maria@Exemplo.com"})),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(
        keys(&c),
        [
            "created_at",
            "email",
            "id",
            "name",
            "organization_id",
            "updated_at",
            "whatsapp_id"
        ]
    );
    assert_eq!(c["whatsapp_id"], "5511999990001");
    assert_eq!(c["name"], "Maria Souza");
    assert_eq!(c["email"], "Maria@Exemplo.com");
    assert_eq!(c["organization_id"], json!(org));
    assert_eq!(c["created_at"], c["updated_at"]);
    let (s, c2) = call(
        &gw,
        "POST",
        "/api/v1/contacts",
        t,
        Some(json!({"whatsapp_id": "5521988880002", "name": "João_100%"})),
    )
    .await;
    assert_eq!(s, 201, "{c2}");
    assert_eq!(c2["email"], Value::Null);
    let (s, c3) = call(
        &gw,
        "POST",
        "/api/v1/contacts",
        t,
        Some(json!({"whatsapp_id": "5531977770003", "email": "pedro@empresa.com.br"})),
    )
    .await;
    assert_eq!(s, 201, "{c3}");
    assert_eq!(c3["name"], Value::Null);

    // a duplicate WhatsApp id: 409, nothing stored
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/contacts",
        t,
        Some(json!({"whatsapp_id": "5511999990001", "name": "Outra"})),
    )
    .await;
    assert_error(s, &v, 409, "conflict");
    // rule errors 400, schema errors 422
    for body in [
        json!({"whatsapp_id": "+55 11 99999-0001"}),
        json!({"whatsapp_id": "123"}),
        json!({"whatsapp_id": "5511999990009", "email": "not-an-email"}),
        json!({"whatsapp_id": "5511999990009", "name": ""}),
        json!({"whatsapp_id": "5511999990009", "name": "x".repeat(201)}),
    ] {
        let (s, v) = call(&gw, "POST", "/api/v1/contacts", t, Some(body)).await;
        assert_error(s, &v, 400, "bad_request");
    }
    for body in [
        json!({"name": "sem whatsapp"}),
        json!({"whatsapp_id": 5511999990009u64}),
    ] {
        let (s, v) = call(&gw, "POST", "/api/v1/contacts", t, Some(body)).await;
        assert_error(s, &v, 422, "validation_error");
    }
    assert_eq!(count(&pool, "pytake_contact").await, 3);

    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["whatsapp_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, l) = call(&gw, "GET", "/api/v1/contacts", t, None).await;
    assert_eq!(s, 200, "{l}");
    assert_eq!(
        ids(&l),
        ["5531977770003", "5521988880002", "5511999990001"],
        "newest first"
    );
    assert_eq!(l[2], c);
    // search: name, email, whatsapp_id; case-insensitive; % and _ literal
    for (q, want) in [
        ("maria", vec!["5511999990001"]),
        ("EMPRESA.com", vec!["5531977770003"]),
        ("2198888", vec!["5521988880002"]),
        ("_100%25", vec!["5521988880002"]),
        ("%25", vec!["5521988880002"]),
        ("ninguém", vec![]),
        (
            "55",
            vec!["5531977770003", "5521988880002", "5511999990001"],
        ),
    ] {
        let (s, l) = call(&gw, "GET", &format!("/api/v1/contacts?query={q}"), t, None).await;
        assert_eq!(s, 200, "{l}");
        assert_eq!(ids(&l), want, "query={q}");
    }
    let (_, l) = call(
        &gw,
        "GET",
        "/api/v1/contacts?query=55&limit=1&offset=1",
        t,
        None,
    )
    .await;
    assert_eq!(ids(&l), ["5521988880002"]);
    for q in [
        "limit=0".to_string(),
        "limit=1000".to_string(),
        "offset=-5".to_string(),
        format!("query={}", "a".repeat(201)),
        "query=%00".to_string(),
    ] {
        let (s, v) = call(&gw, "GET", &format!("/api/v1/contacts?{q}"), t, None).await;
        assert_error(s, &v, 400, "bad_request");
    }

    // another organization: its own contacts, and the same WhatsApp id is fine there
    let (other, _) = admin(&gw, "bia@pytake.dev", "Bia SA").await;
    let (s, l) = call(&gw, "GET", "/api/v1/contacts", Some(other.as_str()), None).await;
    assert_eq!(s, 200);
    assert_eq!(l, json!([]));
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/contacts",
        Some(other.as_str()),
        Some(json!({"whatsapp_id": "5511999990001"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (_, l) = call(&gw, "GET", "/api/v1/contacts?query=5511999990001", t, None).await;
    assert_eq!(l, json!([c]));
}

#[sqlx::test(migrations = "./migrations")]
async fn roles_follow_the_matrix_and_other_orgs_ids_are_not_found(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let (tok, org) = admin(&gw, "ana@pytake.dev", "Ana Ltda").await;
    let agent = member(&gw, &org, "agent@pytake.dev", "agent").await;
    let viewer = member(&gw, &org, "viewer@pytake.dev", "viewer").await;
    let (s, f) = call(
        &gw,
        "POST",
        "/api/v1/flows",
        Some(tok.as_str()),
        Some(graph()),
    )
    .await;
    assert_eq!(s, 201, "{f}");
    let path = format!("/api/v1/flows/{}", f["id"].as_str().unwrap());
    let contact = json!({"whatsapp_id": "5511999990001", "name": "Maria"});

    // viewer: reads everything, creates nothing
    for p in ["/api/v1/flows", "/api/v1/contacts", path.as_str()] {
        let (s, v) = call(&gw, "GET", p, Some(viewer.as_str()), None).await;
        assert_eq!(s, 200, "{p}: {v}");
    }
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/contacts",
        Some(viewer.as_str()),
        Some(contact.clone()),
    )
    .await;
    assert_error(s, &v, 403, "forbidden");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/flows",
        Some(viewer.as_str()),
        Some(graph()),
    )
    .await;
    assert_error(s, &v, 403, "forbidden");
    // agent: creates contacts, does not manage flows
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/flows",
        Some(agent.as_str()),
        Some(graph()),
    )
    .await;
    assert_error(s, &v, 403, "forbidden");
    let (s, v) = call(
        &gw,
        "PUT",
        &path,
        Some(agent.as_str()),
        Some(json!({"name": "hijack"})),
    )
    .await;
    assert_error(s, &v, 403, "forbidden");
    let (s, v) = call(&gw, "DELETE", &path, Some(agent.as_str()), None).await;
    assert_error(s, &v, 403, "forbidden");
    let (s, v) = call(&gw, "DELETE", &path, Some(viewer.as_str()), None).await;
    assert_error(s, &v, 403, "forbidden");
    let (s, c) = call(
        &gw,
        "POST",
        "/api/v1/contacts",
        Some(agent.as_str()),
        Some(contact),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["organization_id"], json!(org));
    assert_eq!(count(&pool, "pytake_flow").await, 1);
    let (_, now) = call(&gw, "GET", &path, Some(tok.as_str()), None).await;
    assert_eq!(now, f, "refusals changed nothing");

    // another organization's admin: the flow does not exist for them
    let (other, _) = admin(&gw, "bia@pytake.dev", "Bia SA").await;
    let (s, v) = call(&gw, "GET", &path, Some(other.as_str()), None).await;
    assert_error(s, &v, 404, "not_found");
    let (s, v) = call(
        &gw,
        "PUT",
        &path,
        Some(other.as_str()),
        Some(json!({"name": "hijack"})),
    )
    .await;
    assert_error(s, &v, 404, "not_found");
    let (s, v) = call(&gw, "DELETE", &path, Some(other.as_str()), None).await;
    assert_error(s, &v, 404, "not_found");
    let (_, l) = call(&gw, "GET", "/api/v1/flows", Some(other.as_str()), None).await;
    assert_eq!(l, json!([]));
    let (_, now) = call(&gw, "GET", &path, Some(tok.as_str()), None).await;
    assert_eq!(now, f, "another organization changed nothing");
    // naming another organization in X-Organization-Id is refused for non super_admins
    let r = reqwest::Client::new()
        .get(gw.url(&path))
        .bearer_auth(&other)
        .header("x-organization-id", &org)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

#[sqlx::test(migrations = "./migrations")]
async fn hostile_input_is_a_clear_4xx_and_changes_nothing(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let (tok, _) = admin(&gw, "ana@pytake.dev", "Ana Ltda").await;
    let t = tok.as_str();
    let (s, f) = call(&gw, "POST", "/api/v1/flows", Some(t), Some(graph())).await;
    assert_eq!(s, 201, "{f}");
    let path = format!("/api/v1/flows/{}", f["id"].as_str().unwrap());

    let node = |i: usize| json!({"id": format!("n{i}"), "type": "t", "position": {"x": 0, "y": 0}, "data": {}});
    let many_nodes: Vec<Value> = (0..501).map(node).collect();
    let two: Vec<Value> = (0..2).map(node).collect();
    let many_edges: Vec<Value> = (0..2001)
        .map(|i| json!({"id": format!("e{i}"), "source": "n0", "target": "n1"}))
        .collect();
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let bodies_400 = [
        r#"{"name": "a\u0000b"}"#.to_string(),
        json!({"name": "x".repeat(201)}).to_string(),
        json!({"name": "x", "description": "d".repeat(2001)}).to_string(),
        json!({"name": "x", "nodes": many_nodes}).to_string(),
        json!({"name": "x", "nodes": two, "edges": many_edges}).to_string(),
        json!({"name": "x", "nodes": [{"id": "a", "type": "t", "position": {"x": 1e300, "y": 0}, "data": {}}]}).to_string(),
        json!({"name": "x", "nodes": [{"id": "a", "type": "t", "position": {"x": 0, "y": 0}, "data": [1]}]}).to_string(),
        json!({"name": "x", "nodes": [{"id": "a", "type": "t", "position": {"x": 0, "y": 0}, "data": {"big": "y".repeat(20_000)}}]}).to_string(),
        json!({"name": "x", "nodes": [{"id": "i".repeat(101), "type": "t", "position": {"x": 0, "y": 0}, "data": {}}]}).to_string(),
        json!({"name": "x", "nodes": [{"id": "", "type": "t", "position": {"x": 0, "y": 0}, "data": {}}]}).to_string(),
        format!("{{\"name\": \"{}\"}}", "x".repeat(3 * 1024 * 1024)),
        // nesting deeper than 128 levels inside data
        format!(r#"{{"name": "x", "nodes": [{{"id": "a", "type": "t", "position": {{"x": 0, "y": 0}}, "data": {{"d": {deep}}}}}]}}"#),
        // a number no double holds, inside data: refused before jsonb sees it
        r#"{"name": "x", "nodes": [{"id": "a", "type": "t", "position": {"x": 0, "y": 0}, "data": {"n": 1e999}}]}"#.to_string(),
    ];
    for b in &bodies_400 {
        let (s, v) = raw(&gw, "POST", "/api/v1/flows", t, b).await;
        assert_error(s, &v, 400, "bad_request");
        let (s, v) = raw(&gw, "PUT", &path, t, b).await;
        assert_error(s, &v, 400, "bad_request");
    }
    let bodies_422 = [
        r#"{"name": "x", "nodes": [{"id": "a", "type": "t", "position": {"x": 1e400, "y": 0}, "data": {}}]}"#.to_string(),
        "not json".to_string(),
    ];
    for b in &bodies_422 {
        let (s, v) = raw(&gw, "POST", "/api/v1/flows", t, b).await;
        assert_error(s, &v, 422, "validation_error");
    }
    let (s, v) = raw(
        &gw,
        "POST",
        "/api/v1/contacts",
        t,
        r#"{"whatsapp_id": "5511999990001", "name": "a\u0000"}"#,
    )
    .await;
    assert_error(s, &v, 400, "bad_request");
    assert_eq!(count(&pool, "pytake_flow").await, 1);
    assert_eq!(count(&pool, "pytake_contact").await, 0);
    let (_, now) = call(&gw, "GET", &path, Some(t), None).await;
    assert_eq!(now, f, "nothing changed");
}
