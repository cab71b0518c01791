//! PyTake's flow automations (issue 15 item 7) against the real binary: durable jobs run by
//! the admin app's runner through `message`, `template`, `ai` (a metered chat completion
//! through the gateway with a catraca key from the vault) and `condition` nodes; an unknown
//! node type fails that contact with a reason; a second start is 409; stats are real counts;
//! refusals make nothing; a gateway killed mid-automation is replaced by one that finishes
//! every job exactly once, resuming after the last node each job finished; and two runners on
//! one database never claim the same job.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::{Gateway, Mock, call, secret};
use crate::pytake_whatsapp::{
    MASTER, TOKEN, add_secret, assert_error, graph_calls, member, register, start, sync,
};

async fn contact(gw: &Gateway, token: &str, wa: &str, name: &str, email: Option<&str>) -> String {
    let (s, v) = call(
        gw,
        "POST",
        "/api/v1/contacts",
        Some(token),
        Some(json!({"whatsapp_id": wa, "name": name, "email": email})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn flow(gw: &Gateway, token: &str, nodes: Value, edges: Value) -> String {
    let (s, v) = call(
        gw,
        "POST",
        "/api/v1/flows",
        Some(token),
        Some(json!({"name": "f", "nodes": nodes, "edges": edges})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

fn node(id: &str, kind: &str, data: Value) -> Value {
    json!({"id": id, "type": kind, "position": {"x": 0, "y": 0}, "data": data})
}

fn edge(id: &str, s: &str, t: &str, handle: Option<&str>) -> Value {
    match handle {
        Some(h) => json!({"id": id, "source": s, "target": t, "sourceHandle": h}),
        None => json!({"id": id, "source": s, "target": t}),
    }
}

async fn stats(gw: &Gateway, token: &str, id: &str) -> Value {
    let (s, v) = call(
        gw,
        "GET",
        &format!("/api/v1/flow-automations/{id}/stats"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn wait_completed(gw: &Gateway, token: &str, id: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = stats(gw, token, id).await;
        if v["status"] == "completed" {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "not completed: {v}\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create(gw: &Gateway, token: &str, flow_id: &str, contacts: &[&str]) -> Value {
    let (s, v) = call(
        gw,
        "POST",
        "/api/v1/flow-automations",
        Some(token),
        Some(json!({"flow_id": flow_id, "contacts": contacts, "config": {"note": "x"}})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// A catraca API key of `org` (operator API), stored in the vault as service `catraca`:
/// (key id, secret id).
async fn catraca_key(gw: &Gateway, admin: &str, org: &str) -> (String, String) {
    let (s, k) = call(
        gw,
        "POST",
        "/admin/v1/keys",
        Some(MASTER),
        Some(json!({"organization_id": org, "name": "automations"})),
    )
    .await;
    assert_eq!(s, 201, "{k}");
    let key = secret(k["key"].as_str().unwrap());
    let sid = add_secret(gw, admin, "catraca-key", &key, "catraca").await;
    (k["id"].as_str().unwrap().to_string(), sid)
}

#[sqlx::test(migrations = "./migrations")]
async fn automations_run_message_template_ai_condition_fail_unknown_types_and_refuse_bad_input(
    pool: PgPool,
) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock, &[("CATRACA_AUTOMATION_POLL_MS", "100")]).await;
    let (admin, org) = register(&gw, "au-admin@example.com", "Loja Auto").await;
    let viewer = member(&gw, &org, "au-viewer@example.com", "viewer").await;
    let (admin_b, _) = register(&gw, "au-b@example.com", "Loja B").await;
    let sid = add_secret(&gw, &admin, "wa", TOKEN, "whatsapp").await;
    sync(&gw, &admin, &sid, "6001").await;
    let (key_id, key_sid) = catraca_key(&gw, &admin, &org).await;

    let ana = contact(&gw, &admin, "5511911110001", "Ana", Some("ana@example.com")).await;
    let bia = contact(&gw, &admin, "5511911110002", "Bia", None).await;
    let caio = contact(&gw, &admin, "5511911110003", "Caio", None).await;
    let other_org_contact = contact(&gw, &admin_b, "5511911110009", "Zé", None).await;

    // start → ai → condition(email exists) → true: message with the reply; false: template
    let f = flow(
        &gw,
        &admin,
        json!([
            node("s", "start", json!({})),
            node(
                "a",
                "ai",
                json!({"model": "chat-model", "secret_id": key_sid,
                                   "prompt": "Escreva uma saudação para {{contact.name}}"})
            ),
            node(
                "c",
                "condition",
                json!({"field": "contact.email", "operator": "exists"})
            ),
            node(
                "m",
                "message",
                json!({"text": "Oi {{contact.name}}: {{ai}}"})
            ),
            node(
                "t",
                "template",
                json!({"template": "boas_vindas", "language": "pt_BR"})
            ),
        ]),
        json!([
            edge("e1", "s", "a", None),
            edge("e2", "a", "c", None),
            edge("e3", "c", "m", Some("true")),
            edge("e4", "c", "t", Some("false")),
        ]),
    )
    .await;

    // refusals make nothing
    let before = count(&pool, "SELECT count(*) FROM pytake_automation").await;
    let flow_b = flow(
        &gw,
        &admin_b,
        json!([node("s", "start", json!({}))]),
        json!([]),
    )
    .await;
    for (token, body, status, code) in [
        (
            &admin,
            json!({"flow_id": flow_b, "contacts": [ana]}),
            404,
            "not_found",
        ),
        (
            &admin,
            json!({"flow_id": f, "contacts": [ana, other_org_contact]}),
            400,
            "bad_request",
        ),
        (
            &admin,
            json!({"flow_id": f, "contacts": []}),
            400,
            "bad_request",
        ),
        (
            &admin,
            json!({"flow_id": f, "contacts": [ana], "config": [1]}),
            400,
            "bad_request",
        ),
        (&admin, json!({"contacts": [ana]}), 422, "validation_error"),
        (
            &admin,
            json!({"flow_id": f, "contacts": ["nope"]}),
            422,
            "validation_error",
        ),
        (
            &viewer,
            json!({"flow_id": f, "contacts": [ana]}),
            403,
            "forbidden",
        ),
    ] {
        let (s, v) = call(
            &gw,
            "POST",
            "/api/v1/flow-automations",
            Some(token),
            Some(body.clone()),
        )
        .await;
        assert_error(s, &v, status, code);
    }
    assert_eq!(
        count(&pool, "SELECT count(*) FROM pytake_automation").await,
        before
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM pytake_automation_job").await,
        0
    );

    let a = create(&gw, &admin, &f, &[&ana, &bia]).await;
    let id = a["id"].as_str().unwrap();
    assert_eq!(a["status"], "created");
    assert_eq!(a["flow_id"], f.as_str());
    assert_eq!(a["contacts"], json!([ana, bia]));
    assert_eq!(a["config"], json!({"note": "x"}));
    assert_eq!(a["organization_id"], org.as_str());
    // nothing runs before start
    tokio::time::sleep(Duration::from_millis(400)).await;
    let st = stats(&gw, &viewer, id).await;
    assert_eq!(
        (st["pending"].clone(), st["done"].clone()),
        (json!(2), json!(0)),
        "{st}"
    );
    assert!(graph_calls(&mock, "/messages").await.is_empty());

    // another organization: not found; a viewer cannot start
    for (m, p) in [
        ("POST", format!("/api/v1/flow-automations/{id}/start")),
        ("GET", format!("/api/v1/flow-automations/{id}/stats")),
    ] {
        let (s, v) = call(&gw, m, &p, Some(&admin_b), None).await;
        assert_error(s, &v, 404, "not_found");
    }
    let (s, v) = call(
        &gw,
        "POST",
        &format!("/api/v1/flow-automations/{id}/start"),
        Some(&viewer),
        None,
    )
    .await;
    assert_error(s, &v, 403, "forbidden");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/flow-automations/not-a-uuid/start",
        Some(&admin),
        None,
    )
    .await;
    assert_error(s, &v, 404, "not_found");

    let (s, v) = call(
        &gw,
        "POST",
        &format!("/api/v1/flow-automations/{id}/start"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "started");
    let (s, v) = call(
        &gw,
        "POST",
        &format!("/api/v1/flow-automations/{id}/start"),
        Some(&admin),
        None,
    )
    .await;
    assert_error(s, &v, 409, "conflict");

    let st = wait_completed(&gw, &viewer, id, 20).await;
    assert_eq!(st["total_contacts"], 2, "{st}");
    assert_eq!(st["done"], 2, "{st}");
    assert_eq!(st["failed"], 0, "{st}");
    assert_eq!(st["pending"], 0, "{st}");
    assert_eq!(st["running"], 0, "{st}");
    assert_eq!(st["messages_sent"], 2, "{st}");
    assert_eq!(st["ai_calls"], 2, "{st}");
    assert!(st["duration_ms"]["avg"].as_i64().unwrap() >= 0, "{st}");
    assert!(
        st["duration_ms"]["max"].as_i64().unwrap() >= st["duration_ms"]["p50"].as_i64().unwrap()
    );
    assert!(st["elapsed_ms"].as_i64().is_some(), "{st}");

    // Ana (email) got the text with the model's reply; Bia (no email) the template
    let sent = graph_calls(&mock, "/messages").await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    let to = |wa: &str| sent.iter().find(|c| c["body"]["to"] == wa).unwrap().clone();
    let to_ana = to("5511911110001");
    assert_eq!(to_ana["body"]["type"], "text");
    let text = to_ana["body"]["text"]["body"].as_str().unwrap();
    assert!(text.starts_with("Oi Ana: Olá do mock"), "{text}");
    let to_bia = to("5511911110002");
    assert_eq!(to_bia["body"]["template"]["name"], "boas_vindas");
    // the LLM calls went through the gateway with the organization's key: metered, one usage
    // event each, the prompt filled for each contact
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM usage_event WHERE api_key_id = $1::uuid AND status = 200",
        )
        .bind(&key_id)
        .fetch_one(&pool)
        .await
        .unwrap();
        if n == 2 {
            break;
        }
        assert!(n < 2 && Instant::now() < deadline, "usage events: {n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, u) = call(
        &gw,
        "GET",
        &format!("/api/v1/secrets/{key_sid}/usage"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!((s, u["total_requests"].clone()), (200, json!(2)), "{u}");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM whatsapp_message WHERE job_id IS NOT NULL"
        )
        .await,
        2
    );

    // an unknown node type fails that contact with the reason; a missing secret too
    let f2 = flow(
        &gw,
        &admin,
        json!([
            node("s", "start", json!({})),
            node("w", "webhook", json!({"url": "x"}))
        ]),
        json!([edge("e1", "s", "w", None)]),
    )
    .await;
    let a2 = create(&gw, &admin, &f2, &[&caio]).await;
    let id2 = a2["id"].as_str().unwrap();
    let (s, _) = call(
        &gw,
        "POST",
        &format!("/api/v1/flow-automations/{id2}/start"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let st = wait_completed(&gw, &admin, id2, 20).await;
    assert_eq!(
        (st["done"].clone(), st["failed"].clone()),
        (json!(0), json!(1)),
        "{st}"
    );
    assert_eq!(st["failures"][0]["contact_id"], caio.as_str(), "{st}");
    let reason = st["failures"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("unsupported node type 'webhook'"),
        "{reason}"
    );
    assert_eq!(graph_calls(&mock, "/messages").await.len(), 2);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_gateway_killed_mid_automation_is_replaced_and_every_job_finishes_exactly_once(
    pool: PgPool,
) {
    let mock = Mock::start().await;
    let env = [
        ("CATRACA_AUTOMATION_POLL_MS", "100"),
        ("CATRACA_AUTOMATION_LEASE_MS", "1500"),
    ];
    let gw = start(&pool, &mock, &env).await;
    let (admin, _org) = register(&gw, "rs-admin@example.com", "Loja R").await;
    let sid = add_secret(&gw, &admin, "wa", TOKEN, "whatsapp").await;
    sync(&gw, &admin, &sid, "7001").await;
    let mut contacts = Vec::new();
    for i in 0..6 {
        contacts.push(
            contact(
                &gw,
                &admin,
                &format!("55119222200{i:02}"),
                &format!("C{i}"),
                None,
            )
            .await,
        );
    }
    let refs: Vec<&str> = contacts.iter().map(String::as_str).collect();
    let f = flow(
        &gw,
        &admin,
        json!([
            node("m1", "message", json!({"text": "um {{contact.name}}"})),
            node("m2", "message", json!({"text": "dois {{contact.name}}"})),
        ]),
        json!([edge("e1", "m1", "m2", None)]),
    )
    .await;
    let a = create(&gw, &admin, &f, &refs).await;
    let id = a["id"].as_str().unwrap().to_string();
    // each Graph call takes 600 ms: the kill lands while jobs are mid-flow
    mock.set(json!({"latency_ms": 600})).await;
    let (s, _) = call(
        &gw,
        "POST",
        &format!("/api/v1/flow-automations/{id}/start"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(
        &pool,
        "SELECT coalesce(sum(messages_sent), 0) FROM pytake_automation_job",
    )
    .await
        == 0
    {
        assert!(Instant::now() < deadline, "nothing sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(gw); // SIGKILL
    let recorded = count(
        &pool,
        "SELECT coalesce(sum(messages_sent), 0) FROM pytake_automation_job",
    )
    .await;
    let calls_at_kill = graph_calls(&mock, "/messages").await.len() as i64;
    let unfinished = count(
        &pool,
        "SELECT count(*) FROM pytake_automation_job WHERE status <> 'done'",
    )
    .await;
    assert!(
        recorded < 12 && unfinished > 0,
        "the kill came too late: {recorded} sent"
    );

    let gw2 = start(&pool, &mock, &env).await;
    let (s, l) = call(
        &gw2,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"email": "rs-admin@example.com", "password": "senha-forte-1"})),
    )
    .await;
    assert_eq!(s, 200, "{l}");
    let token = l["access_token"].as_str().unwrap().to_string();
    let st = wait_completed(&gw2, &token, &id, 30).await;
    assert_eq!(
        (st["done"].clone(), st["failed"].clone()),
        (json!(6), json!(0)),
        "{st}"
    );
    // every node's send counted once per job
    assert_eq!(st["messages_sent"], 12, "{st}");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM pytake_automation_job WHERE messages_sent = 2 AND status = 'done'"
        )
        .await,
        6
    );
    assert!(
        count(
            &pool,
            "SELECT count(*) FROM pytake_automation_job WHERE attempts >= 2"
        )
        .await
            >= 1,
        "no job was resumed by a second claim"
    );
    // nodes finished before the kill were not sent again: only the sends in flight at the
    // kill (reached the Graph API, not yet recorded) may repeat
    let total = graph_calls(&mock, "/messages").await.len() as i64;
    assert!(total >= 12, "{total}");
    assert!(
        total <= 12 + (calls_at_kill - recorded),
        "total {total}, at kill {calls_at_kill} calls and {recorded} recorded"
    );
    // each contact got "um" before "dois", each at least once
    let sent = graph_calls(&mock, "/messages").await;
    for i in 0..6 {
        let bodies: Vec<String> = sent
            .iter()
            .filter(|c| c["body"]["to"] == format!("55119222200{i:02}"))
            .map(|c| c["body"]["text"]["body"].as_str().unwrap().to_string())
            .collect();
        let um = bodies.iter().position(|b| b.starts_with("um ")).unwrap();
        let dois = bodies.iter().rposition(|b| b.starts_with("dois ")).unwrap();
        assert!(um < dois, "{bodies:?}");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn two_runners_on_one_database_never_run_the_same_job(pool: PgPool) {
    let mock = Mock::start().await;
    let env = [("CATRACA_AUTOMATION_POLL_MS", "50")];
    let gw = start(&pool, &mock, &env).await;
    let gw2 = start(&pool, &mock, &env).await;
    let (admin, _org) = register(&gw, "two-admin@example.com", "Loja 2").await;
    let sid = add_secret(&gw, &admin, "wa", TOKEN, "whatsapp").await;
    sync(&gw, &admin, &sid, "8001").await;
    let mut contacts = Vec::new();
    for i in 0..20 {
        contacts.push(contact(&gw, &admin, &format!("55119333300{i:02}"), "C", None).await);
    }
    let refs: Vec<&str> = contacts.iter().map(String::as_str).collect();
    let f = flow(
        &gw,
        &admin,
        json!([node(
            "m",
            "message",
            json!({"text": "oi {{contact.whatsapp_id}}"})
        )]),
        json!([]),
    )
    .await;
    let a = create(&gw, &admin, &f, &refs).await;
    let id = a["id"].as_str().unwrap();
    mock.set(json!({"latency_ms": 50})).await;
    let (s, _) = call(
        &gw2,
        "POST",
        &format!("/api/v1/flow-automations/{id}/start"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let st = wait_completed(&gw, &admin, id, 30).await;
    assert_eq!(
        (st["done"].clone(), st["messages_sent"].clone()),
        (json!(20), json!(20)),
        "{st}"
    );
    // each contact got exactly one message, and no job was claimed twice
    let sent = graph_calls(&mock, "/messages").await;
    assert_eq!(sent.len(), 20);
    let mut to: Vec<String> = sent
        .iter()
        .map(|c| c["body"]["to"].as_str().unwrap().to_string())
        .collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 20);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM pytake_automation_job WHERE attempts = 1"
        )
        .await,
        20
    );
}
