//! Tokia's sessions and public routes (#14 items 8 and 10): sessions grouped from the usage
//! events the gateway wrote (checked against the rows, to the millisecond and the micro-real),
//! their 404 and 400s; `healthz`, `healthz/db` (503 with Postgres cut), and incidents opened
//! and resolved through the operator API.

use std::time::{Duration, Instant};

use catraca::domain::money::Micros;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::*;

const MASTER: &str = "tokia-sessions-master-key-0123456789";

/// `m`: $0.01 a request (R$ 0.05 at FX 5).
fn config(mock: &Mock) -> String {
    format!(
        "pricing: {{fx_usd_brl: \"5.0\", default_markup: \"1.0\"}}\nproviders:\n  - {{name: a, base_url: \"{}\", forward_headers: [x-mock-*]}}\ndeployments:\n  - {{name: da, provider: a, model: up}}\nmodels:\n  - {{name: m, usd_per_request: \"0.01\", deployments: [da]}}\n  - {{name: m2, usd_per_request: \"0.02\", deployments: [da]}}\n",
        mock.base()
    )
}

async fn op(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call(gw, method, path, Some(MASTER), body).await
}

async fn get(gw: &Gateway, path: &str, key: Option<&str>) -> (u16, Value) {
    call(gw, "GET", path, key, None).await
}

async fn chat(gw: &Gateway, key: &str, model: &str, session: &str, status: Option<u16>) -> u16 {
    let mut rb = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("x-tokia-session-id", session);
    if let Some(s) = status {
        rb = rb.header("x-mock-status", s.to_string());
    }
    rb.body(json!({"model": model, "messages": [{"role": "user", "content": "oi"}]}).to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A prepaid organization with R$ 10, an owner and one `sk-tokia-` key: (org id, key).
async fn tenant(gw: &Gateway, name: &str) -> (String, String) {
    let (s, org) = op(
        gw,
        "POST",
        "/admin/v1/organizations",
        Some(json!({"name": name, "prepaid": true})),
    )
    .await;
    assert_eq!(s, 201, "{org}");
    let org_id = org["id"].as_str().unwrap().to_string();
    let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
    let (s, user) = op(
        gw,
        "POST",
        "/admin/v1/users",
        Some(json!({"email": email, "name": name, "organization_id": org_id, "role": "owner"})),
    )
    .await;
    assert_eq!(s, 201, "{user}");
    let (s, k) = op(
        gw,
        "POST",
        "/admin/v1/keys",
        Some(json!({"organization_id": org_id,
        "user_id": user["id"], "prefix": "sk-tokia-", "name": "k"})),
    )
    .await;
    assert_eq!(s, 201, "{k}");
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
    (org_id, secret(k["key"].as_str().unwrap()))
}

#[derive(sqlx::FromRow, Debug)]
struct Ev {
    usage_event_id: i64,
    model: Option<String>,
    api_key_id: Option<uuid::Uuid>,
    prompt_tokens: i64,
    completion_tokens: i64,
    cost_billed_brl_micros: Option<i64>,
    cost_upstream_usd_micros: Option<i64>,
    latency_ms: i32,
    created_at: time::OffsetDateTime,
}

fn rfc(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn sessions_group_the_callers_events(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = Gateway::start_with_env(
        &config(&mock),
        &[
            ("DATABASE_URL", &db_url(&pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
        ],
    )
    .await;
    let (org, key) = tenant(&gw, "Sessoes Tokia").await;
    let (_other_org, other_key) = tenant(&gw, "Outra Sessao").await;

    let t0 = Instant::now();
    while chat(&gw, &key, "m", "conv-1", None).await != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the top-up never reached the gateway"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(chat(&gw, &key, "m2", "conv-1", None).await, 200);
    assert_eq!(chat(&gw, &key, "m", "conv-1", Some(400)).await, 400);
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(chat(&gw, &key, "m", "~conv/2!", None).await, 200);
    let t0 = Instant::now();
    while chat(&gw, &other_key, "m", "conv-1", None).await != 200 {
        assert!(t0.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t0 = Instant::now();
    loop {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM usage_event WHERE session_id IS NOT NULL")
                .fetch_one(&pool)
                .await
                .unwrap();
        if n >= 5 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{n} events");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = |sid: &'static str| {
        let pool = pool.clone();
        let org = org.clone();
        async move {
            sqlx::query_as::<_, Ev>(
                "SELECT usage_event_id, model, api_key_id, prompt_tokens, completion_tokens,
                        cost_billed_brl_micros, cost_upstream_usd_micros, latency_ms, created_at
                 FROM usage_event WHERE organization_id = $1 AND session_id = $2
                 ORDER BY created_at, usage_event_id",
            )
            .bind(uuid::Uuid::parse_str(&org).unwrap())
            .bind(sid)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    let c1 = rows("conv-1").await;
    let c2 = rows("~conv/2!").await;
    assert_eq!((c1.len(), c2.len()), (3, 1), "{c1:?}");
    let billed = |evs: &[Ev]| {
        evs.iter()
            .filter_map(|e| e.cost_billed_brl_micros)
            .sum::<i64>()
    };
    assert_eq!(
        billed(&c1),
        150_000,
        "R$ 0.05 + R$ 0.10, the failed request free"
    );
    let expect = |sid: &str, evs: &[Ev]| {
        let first_start = evs
            .iter()
            .map(|e| e.created_at - Duration::from_millis(e.latency_ms as u64))
            .min()
            .unwrap();
        let last = evs.iter().map(|e| e.created_at).max().unwrap();
        let pt: i64 = evs.iter().map(|e| e.prompt_tokens).sum();
        let ct: i64 = evs.iter().map(|e| e.completion_tokens).sum();
        let mut models: Vec<String> = evs.iter().filter_map(|e| e.model.clone()).collect();
        models.sort();
        models.dedup();
        json!({
            "session_id": sid,
            "request_count": evs.len(),
            "total_billed_brl": Micros(billed(evs)).json_number(),
            "total_prompt_tokens": pt,
            "total_completion_tokens": ct,
            "total_tokens": pt + ct,
            "models": models,
            "first_request_at": rfc(evs.iter().map(|e| e.created_at).min().unwrap()),
            "last_request_at": rfc(last),
            "duration_ms": (last - first_start).whole_milliseconds() as i64,
        })
    };

    // ---------- the list: newest first, only the caller's organization
    let (s, v) = get(&gw, "/v1/me/sessions", Some(&key)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"days": 30, "count": 2, "sessions": [expect("~conv/2!", &c2), expect("conv-1", &c1)]})
    );
    assert_eq!(v["sessions"][1]["models"], json!(["m", "m2"]));
    assert!(v["sessions"][1]["duration_ms"].as_i64().unwrap() >= 30);
    let (s, v) = get(&gw, "/v1/me/sessions?days=1&limit=1", Some(&key)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"days": 1, "count": 1, "sessions": [expect("~conv/2!", &c2)]})
    );

    // ---------- the detail: totals and events, oldest first
    let (s, v) = get(&gw, "/v1/me/sessions/conv-1", Some(&key)).await;
    assert_eq!(s, 200, "{v}");
    let mut want = expect("conv-1", &c1);
    want["events"] = c1
        .iter()
        .map(|e| {
            json!({
                "id": catraca::domain::usage::event_uuid(e.usage_event_id).to_string(),
                "model_id": e.model,
                "api_key_id": e.api_key_id,
                "prompt_tokens": e.prompt_tokens,
                "completion_tokens": e.completion_tokens,
                "cost_billed_brl": Micros(e.cost_billed_brl_micros.unwrap_or(0)).json_number(),
                "cost_upstream_usd": Micros(e.cost_upstream_usd_micros.unwrap_or(0)).json_number(),
                "created_at": rfc(e.created_at),
            })
        })
        .collect();
    assert_eq!(v, want);
    assert_eq!(v["total_billed_brl"], json!(0.15));
    let (s, v) = get(&gw, "/v1/me/sessions/~conv%2F2!", Some(&key)).await;
    assert_eq!((s, v["request_count"].as_i64()), (200, Some(1)), "{v}");

    // ---------- unknown, another organization's (same id, other events), bad ids and params
    let (s, v) = get(&gw, "/v1/me/sessions/nope", Some(&key)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("session_not_found")),
        "{v}"
    );
    assert_eq!(v["error"]["message"], "Sessão não encontrada");
    let (s, v) = get(&gw, "/v1/me/sessions/conv-1", Some(&other_key)).await;
    assert_eq!((s, v["request_count"].as_i64()), (200, Some(1)), "{v}");
    let long = "x".repeat(81);
    for path in [
        format!("/v1/me/sessions/{long}"),
        "/v1/me/sessions/a%20b".to_string(),
        "/v1/me/sessions?days=0".to_string(),
        "/v1/me/sessions?days=91".to_string(),
        "/v1/me/sessions?limit=0".to_string(),
        "/v1/me/sessions?limit=501".to_string(),
        "/v1/me/sessions?limit=dez".to_string(),
    ] {
        let (s, v) = get(&gw, &path, Some(&key)).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_parameter")),
            "{path}: {v}"
        );
    }
    let (s, v) = get(&gw, "/v1/me/sessions?limit=501", Some(&key)).await;
    assert_eq!(
        v["error"]["message"], "Parâmetro inválido: limit (entre 1 e 500)",
        "{s}"
    );
    let (s, v) = get(&gw, "/v1/me/sessions", None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("missing_api_key"))
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn public_health_and_incidents(pool: PgPool) {
    let mock = Mock::start().await;
    let pg = pool.connect_options();
    let target = tokio::net::lookup_host(format!("{}:{}", pg.get_host(), pg.get_port()))
        .await
        .unwrap()
        .next()
        .unwrap();
    let cut = TcpCut::start(target).await;
    let gw = Gateway::start_with_env(
        &config(&mock),
        &[
            ("DATABASE_URL", &db_url(&pool, Some(cut.port))),
            ("CATRACA_MASTER_KEY", MASTER),
        ],
    )
    .await;

    // ---------- healthz, healthz/db: no key
    let (s, v) = get(&gw, "/v1/healthz", None).await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(true)), "{v}");
    let (s, v) = get(&gw, "/v1/healthz/db", None).await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(true)), "{v}");
    assert!(v["latency_ms"].as_u64().unwrap() < 2000);
    assert!(
        time::OffsetDateTime::parse(
            v["timestamp"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );

    // ---------- incidents: opened and resolved by the operator
    let (s, v) = get(&gw, "/v1/incidents/active", None).await;
    assert_eq!((s, v), (200, json!({"count": 0, "incidents": []})));
    let (s, a) = op(
        &gw,
        "POST",
        "/admin/v1/incidents",
        Some(json!({"title": "Lentidão no chat", "severity": "major", "message": "Investigando"})),
    )
    .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(
        (a["status"].as_str(), a["resolved_at"].is_null()),
        (Some("active"), true)
    );
    let (s, b) = op(
        &gw,
        "POST",
        "/admin/v1/incidents",
        Some(json!({"title": "Manutenção", "severity": "maintenance", "message": ""})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    for bad in [
        json!({"title": "", "severity": "major", "message": "x"}),
        json!({"title": "t", "severity": "apocalypse", "message": "x"}),
        json!({"title": "t", "severity": "minor", "message": "x", "extra": 1}),
    ] {
        let (s, v) = op(&gw, "POST", "/admin/v1/incidents", Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    let (s, v) = get(&gw, "/v1/incidents/active", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["count"], 2);
    assert_eq!(v["incidents"][0]["id"], b["id"], "newest first");
    assert_eq!(v["incidents"][1]["title"], "Lentidão no chat");
    assert_eq!(v["incidents"][1]["severity"], "major");
    assert_eq!(v["incidents"][1]["message"], "Investigando");
    assert_eq!(v["incidents"][1]["created_at"], a["created_at"]);
    let (s, r) = op(
        &gw,
        "POST",
        &format!("/admin/v1/incidents/{}/resolve", a["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("resolved")), "{r}");
    let (s, _) = op(
        &gw,
        "POST",
        &format!("/admin/v1/incidents/{}/resolve", uuid::Uuid::new_v4()),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, v) = get(&gw, "/v1/incidents/active", None).await;
    assert_eq!((s, v["count"].as_i64()), (200, Some(1)), "{v}");
    assert_eq!(v["incidents"][0]["id"], b["id"]);

    // ---------- Postgres cut: 503 with ok false, within the 2 s deadline (plus slack)
    cut.cut();
    let t0 = Instant::now();
    let (s, v) = get(&gw, "/v1/healthz/db", None).await;
    assert_eq!((s, v["ok"].as_bool()), (503, Some(false)), "{v}");
    assert!(v["latency_ms"].as_u64().unwrap() <= 2000, "{v}");
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    let (s, v) = get(&gw, "/v1/healthz", None).await;
    assert_eq!(
        (s, v["ok"].as_bool()),
        (200, Some(true)),
        "the process still answers: {v}"
    );
    cut.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _) = get(&gw, "/v1/healthz/db", None).await;
        if s == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {s} after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `x-tokia-session-id` is 1 to 80 printable ASCII characters (0x21–0x7E), else 400 before
/// anything is sent upstream; a valid one reaches the usage event as sent.
#[sqlx::test(migrations = "./migrations")]
async fn a_malformed_session_id_is_a_400_and_reaches_nothing(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = Gateway::start_with_env(
        &config(&mock),
        &[
            ("DATABASE_URL", &db_url(&pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
        ],
    )
    .await;
    let (org, key) = tenant(&gw, "Sessao").await;
    let long = "s".repeat(81);
    for bad in [long.as_str(), "com espaço", "tab\there", "a b"] {
        assert_eq!(chat(&gw, &key, "m", bad, None).await, 400, "{bad:?}");
    }
    // raw bytes a client library would refuse to build as a string
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header(
            "x-tokia-session-id",
            reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        )
        .header("content-type", "application/json")
        .body(json!({"model": "m", "messages": []}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        mock.requests().await,
        0,
        "a refused request reached the provider"
    );
    let ok = "s".repeat(80);
    assert_eq!(chat(&gw, &key, "m", &ok, None).await, 200);
    let t0 = Instant::now();
    loop {
        let got: Option<String> = sqlx::query_scalar(
            "SELECT session_id FROM usage_event WHERE organization_id = $1::uuid AND status = 200",
        )
        .bind(&org)
        .fetch_optional(&pool)
        .await
        .unwrap();
        if let Some(g) = got {
            assert_eq!(g, ok);
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "usage event not written"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
