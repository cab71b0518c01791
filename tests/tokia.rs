//! The Tokia surface's money and usage routes end to end: an organization, a user and
//! `sk-tokia-` keys made through the operator API, a top-up, billed chat requests through the
//! gateway, then every route's answer checked to the micro-real against the ledger, the CSV's
//! bytes, CSV = JSON, and each refused parameter.

use std::time::{Duration, Instant};

use catraca::domain::money::Micros;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::*;

const MASTER: &str = "tokia-operator-master-key-0123456789";

/// `m`: $0.01 a request (R$ 0.05 at FX 5, markup 1); `big` and `small`: per token, same
/// category.
fn config(mock: &Mock) -> String {
    format!(
        "pricing: {{fx_usd_brl: \"5.0\", default_markup: \"1.0\"}}\nproviders:\n  - {{name: a, base_url: \"{}\"}}\ndeployments:\n  - {{name: da, provider: a, model: up}}\nmodels:\n  - {{name: m, usd_per_request: \"0.01\", deployments: [da]}}\n  - {{name: big, input_usd_per_1m: \"10\", output_usd_per_1m: \"30\", deployments: [da]}}\n  - {{name: small, input_usd_per_1m: \"1\", output_usd_per_1m: \"2\", deployments: [da]}}\n",
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

async fn op(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut rb = reqwest::Client::new()
        .request(method.parse().unwrap(), gw.url(path))
        .bearer_auth(MASTER)
        .header("Idempotency-Key", "tokia-topup-1");
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// GET `path` with `key` (none: no Authorization) and extra headers; status and body text.
async fn get_raw(
    gw: &Gateway,
    path: &str,
    key: Option<&str>,
    h: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut rb = reqwest::Client::new().get(gw.url(path));
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    for (k, v) in h {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    let headers = r.headers().clone();
    (s, headers, r.bytes().await.unwrap().to_vec())
}

async fn get(gw: &Gateway, path: &str, key: &str) -> (u16, Value) {
    let (s, _, b) = get_raw(gw, path, Some(key), &[]).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

async fn chat(gw: &Gateway, key: &str, model: &str, session: &str) -> u16 {
    reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("x-tokia-session-id", session)
        .body(
            json!({"model": model, "messages": [{"role": "user", "content": "olá, tudo bem?"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn brl(m: i64) -> Value {
    Micros(m).json_number()
}

/// Make an organization (prepaid), a user and keys; the org id and the keys' (id, plaintext).
async fn tenant(
    gw: &Gateway,
    name: &str,
    key_names: &[&str],
) -> (String, String, Vec<(String, String)>) {
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
    let user_id = user["id"].as_str().unwrap().to_string();
    let mut keys = Vec::new();
    for n in key_names {
        let (s, k) = op(gw, "POST", "/admin/v1/keys", Some(json!({"organization_id": org_id, "user_id": user_id, "prefix": "sk-tokia-", "name": n}))).await;
        assert_eq!(s, 201, "{k}");
        keys.push((
            k["id"].as_str().unwrap().to_string(),
            secret(k["key"].as_str().unwrap()),
        ));
    }
    (org_id, user_id, keys)
}

/// RFC 4180 rows of `text` (CRLF line ends), cells unquoted.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "a bare CR");
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\n') => panic!("a bare LF line end"),
            (false, c) => cell.push(c),
        }
    }
    assert!(
        cell.is_empty() && row.is_empty(),
        "the last line ends with CRLF"
    );
    rows
}

#[derive(sqlx::FromRow, Debug)]
struct Ev {
    usage_event_id: i64,
    request_id: String,
    created_at: time::OffsetDateTime,
    local_date: String,
    api_key_id: Option<uuid::Uuid>,
    key_prefix: Option<String>,
    model: Option<String>,
    route: String,
    status: i16,
    prompt_tokens: i64,
    completion_tokens: i64,
    cost_billed_brl_micros: Option<i64>,
    cost_upstream_usd_micros: Option<i64>,
    latency_ms: i32,
}

#[sqlx::test(migrations = "./migrations")]
async fn money_and_usage_routes_are_exact_and_refuse_bad_input(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let (org, _user, keys) = tenant(&gw, "Padaria Tokia", &["=SUM(1,2)", "prod"]).await;
    let (key_a_id, key_a) = keys[0].clone();
    let (key_b_id, key_b) = keys[1].clone();
    let (other_org, _, other_keys) = tenant(&gw, "Outra Empresa", &["outra"]).await;
    let (other_key_id, other_key) = other_keys[0].clone();

    // ---------- auth and errors
    let (s, _, b) = get_raw(&gw, "/v1/usage", None, &[]).await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["error"]["code"], "missing_api_key");
    assert_eq!(v["error"]["type"], "authentication_error");
    let (s, _, b) = get_raw(&gw, "/v1/me/runway", Some("sk-tokia-nope"), &[]).await;
    let pt: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        (s, pt["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    assert_eq!(
        pt["error"]["message"],
        "Chave de API inválida, revogada ou expirada"
    );
    let (s, _, b) = get_raw(
        &gw,
        "/v1/me/runway",
        Some("sk-tokia-nope"),
        &[("accept-language", "en-US,en;q=0.9")],
    )
    .await;
    let en: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        (s, en["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    assert_eq!(
        en["error"]["message"],
        "Invalid, revoked or expired API key"
    );
    // a live key of another platform's format is not a Tokia key
    let (s, k) = op(
        &gw,
        "POST",
        "/admin/v1/keys",
        Some(json!({"organization_id": org, "prefix": "sk-outra-"})),
    )
    .await;
    assert_eq!(s, 201, "{k}");
    let foreign = secret(k["key"].as_str().unwrap());
    let (s, v) = get(&gw, "/v1/usage", &foreign).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_api_key")),
        "{v}"
    );
    let (s, _) = op(
        &gw,
        "POST",
        &format!("/admin/v1/keys/{}/revoke", k["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, b) = get_raw(&gw, "/v1/me/runway?days=0", Some(&key_a), &[]).await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_parameter")),
        "{v}"
    );
    assert_eq!(
        v["error"]["message"],
        "Parâmetro inválido: days (entre 1 e 90)"
    );
    let (_, _, b) = get_raw(
        &gw,
        "/v1/me/runway?days=0",
        Some(&key_a),
        &[("accept-language", "en")],
    )
    .await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        v["error"]["message"],
        "Invalid parameter: days (between 1 and 90)"
    );

    // ---------- money in, usage billed
    let (s, e) = op(
        &gw,
        "POST",
        &format!("/admin/v1/organizations/{org}/ledger"),
        Some(json!({"kind": "topup", "amount_brl": "10.00"})),
    )
    .await;
    assert_eq!(s, 201, "{e}");
    let t0 = Instant::now();
    while chat(&gw, &key_a, "m", "@sessao-1").await != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the top-up never reached the gateway"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(chat(&gw, &key_a, "m", "@sessao-1").await, 200);
    assert_eq!(chat(&gw, &key_b, "big", "s2").await, 200);
    assert_eq!(chat(&gw, &key_b, "big", "s2").await, 200);
    let t0 = Instant::now();
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_entry WHERE kind = 'usage'")
            .fetch_one(&pool)
            .await
            .unwrap();
        if n == 4 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{n} usage entries");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events: Vec<Ev> = sqlx::query_as(
        "SELECT u.usage_event_id, u.request_id, u.created_at,
                to_char(u.created_at AT TIME ZONE 'America/Sao_Paulo', 'YYYY-MM-DD') AS local_date,
                u.api_key_id, k.prefix AS key_prefix, u.model, u.route, u.status, u.prompt_tokens,
                u.completion_tokens, u.cost_billed_brl_micros, u.cost_upstream_usd_micros, u.latency_ms
         FROM usage_event u LEFT JOIN api_key k ON k.api_key_id = u.api_key_id
         WHERE u.organization_id = $1 ORDER BY u.created_at, u.usage_event_id",
    )
    .bind(uuid::Uuid::parse_str(&org).unwrap())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(events.len(), 4);
    let billed: i64 = events
        .iter()
        .map(|e| e.cost_billed_brl_micros.unwrap())
        .sum();
    let big: Vec<&Ev> = events
        .iter()
        .filter(|e| e.model.as_deref() == Some("big"))
        .collect();
    let big_billed: i64 = big.iter().map(|e| e.cost_billed_brl_micros.unwrap()).sum();
    let big_usd: i64 = big
        .iter()
        .map(|e| e.cost_upstream_usd_micros.unwrap())
        .sum();
    let big_pt: i64 = big.iter().map(|e| e.prompt_tokens).sum();
    let big_ct: i64 = big.iter().map(|e| e.completion_tokens).sum();
    assert!(big_billed > 0 && big_usd > 0);
    assert_eq!(billed, 100_000 + big_billed, "m: R$ 0.05 a request");
    let balance = 10_000_000 - billed;
    let ledger_sum: i64 = sqlx::query_scalar(
        "SELECT sum(amount_brl_micros)::int8 FROM ledger_entry WHERE organization_id = $1",
    )
    .bind(uuid::Uuid::parse_str(&org).unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(ledger_sum, balance);

    // ---------- usage: balance (the identity) and the newest events
    let (s, u) = get(&gw, "/v1/usage", &key_a).await;
    assert_eq!(s, 200, "{u}");
    let want_balance = json!({
        "balance_brl": brl(balance), "total_topped_up_brl": brl(10_000_000),
        "total_spent_brl": brl(billed), "total_refunded_brl": brl(0), "held_brl": brl(0),
    });
    assert_eq!(u["balance"], want_balance);
    let evs = u["usage_events"].as_array().unwrap();
    assert_eq!(evs.len(), 4);
    assert_eq!(evs[0]["id"], events[3].usage_event_id, "newest first");
    assert_eq!(evs[3]["key_name"], "=SUM(1,2)");
    assert_eq!(evs[3]["session_id"], "@sessao-1");
    assert_eq!(evs[3]["cost_brl"], json!(0.05));
    let (s, u) = get(&gw, "/v1/usage?limit=2", &key_a).await;
    assert_eq!(
        (s, u["usage_events"].as_array().map(Vec::len)),
        (200, Some(2))
    );

    // ---------- exports: CSV bytes, and the JSON's rows are the CSV's
    let (s, h, csv) = get_raw(&gw, "/v1/usage/export.csv", Some(&key_a), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(h["content-type"], "text/csv; charset=utf-8");
    assert!(csv.starts_with(b"\xEF\xBB\xBF"), "a UTF-8 BOM");
    let csv = String::from_utf8(csv[3..].to_vec()).unwrap();
    let mut want = String::from(
        "id,created_at,date,request_id,api_key_id,key_name,key_prefix,model,route,status,prompt_tokens,completion_tokens,cost_brl,cost_upstream_usd,latency_ms,session_id\r\n",
    );
    for e in &events {
        let (key_cell, session) = if e.model.as_deref() == Some("m") {
            (
                format!("\"'=SUM(1,2)\",{},m", e.key_prefix.as_deref().unwrap()),
                "'@sessao-1",
            )
        } else {
            (
                format!("prod,{},big", e.key_prefix.as_deref().unwrap()),
                "s2",
            )
        };
        want.push_str(&format!(
            "{},{},{},{},{},{key_cell},{},{},{},{},{},{},{},{session}\r\n",
            e.usage_event_id,
            catraca::admin::rfc3339(e.created_at),
            e.local_date,
            e.request_id,
            e.api_key_id.unwrap(),
            e.route,
            e.status,
            e.prompt_tokens,
            e.completion_tokens,
            Micros(e.cost_billed_brl_micros.unwrap()).decimal(),
            Micros(e.cost_upstream_usd_micros.unwrap()).decimal(),
            e.latency_ms,
        ));
    }
    assert_eq!(csv, want);
    let (s, h, body) = get_raw(&gw, "/v1/usage/export.json", Some(&key_a), &[]).await;
    assert_eq!(
        (s, h["content-type"].to_str().unwrap()),
        (200, "application/json")
    );
    let j: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(j["period"]["timezone"], "America/Sao_Paulo");
    let today = events[3].local_date.clone();
    assert_eq!(j["period"]["to"], today.as_str());
    assert_eq!(j["total_events"], 4);
    let rows = parse_csv(&csv);
    let header = rows[0].clone();
    let jevents = j["events"].as_array().unwrap();
    assert_eq!(rows.len() - 1, jevents.len());
    for (row, ev) in rows[1..].iter().zip(jevents) {
        for (col, cell) in header.iter().zip(row) {
            let v = &ev[col.as_str()];
            let text = match v {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let undefused = cell.strip_prefix('\'').unwrap_or(cell);
            assert_eq!(undefused, text, "{col}");
        }
    }
    // an explicit period, inclusive, in the user's zone; one long year is the limit
    let (s, j) = get(
        &gw,
        &format!("/v1/usage/export.json?from={today}&to={today}"),
        &key_a,
    )
    .await;
    assert_eq!((s, j["total_events"].as_i64()), (200, Some(4)), "{j}");
    let (s, j) = get(
        &gw,
        "/v1/usage/export.json?from=2020-01-01&to=2020-12-31",
        &key_a,
    )
    .await;
    assert_eq!(
        (s, j["total_events"].as_i64()),
        (200, Some(0)),
        "366 days: {j}"
    );
    for bad in [
        "/v1/usage/export.csv?from=2020-01-01&to=2021-01-01",
        "/v1/usage/export.json?from=2024-02-30",
        "/v1/usage/export.csv?to=2024-1-1",
        "/v1/usage/export.csv?from=2024-03-02&to=2024-03-01",
        "/v1/usage/export.csv?from=%00",
        "/v1/usage?limit=999",
        "/v1/usage?limit=0",
        "/v1/me/usage-summary?days=0",
        "/v1/me/usage-summary?days=366",
        "/v1/me/usage-summary?days=abc",
        "/v1/me/usage-summary?days=99999999999999999999999",
        "/v1/me/runway?days=91",
        "/v1/usage/by-key?days=0",
        "/v1/usage/by-key?key_id=not-a-uuid",
        "/v1/me/recommendations?days=6",
        "/v1/me/recommendations?days=91",
    ] {
        let (s, v) = get(&gw, bad, &key_a).await;
        assert_eq!(
            (s, v["error"]["type"].as_str()),
            (400, Some("invalid_request_error")),
            "{bad}: {v}"
        );
    }

    // ---------- summary, runway, dashboard
    let (s, sum) = get(&gw, "/v1/me/usage-summary", &key_a).await;
    assert_eq!(s, 200, "{sum}");
    let mut top = [("m", 2, 100_000), ("big", 2, big_billed)];
    top.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)).then(a.0.cmp(b.0)));
    assert_eq!(
        sum,
        json!({
            "period_days": 30,
            "balance_brl": brl(balance), "total_topped_up_brl": brl(10_000_000),
            "total_spent_brl": brl(billed), "total_refunded_brl": brl(0), "held_brl": brl(0),
            "period_totals": {
                "requests": 4, "cost_billed_brl": brl(billed),
                "cost_upstream_usd": brl(20_000 + big_usd),
                "prompt_tokens": events.iter().map(|e| e.prompt_tokens).sum::<i64>(),
                "completion_tokens": events.iter().map(|e| e.completion_tokens).sum::<i64>(),
            },
            "top_models": top.iter().map(|(m, r, b)| json!({"model_id": m, "model_name": m, "requests": r, "cost_billed_brl": brl(*b)})).collect::<Vec<_>>(),
            "unique_models_used": 2,
        })
    );
    let (s, r) = get(&gw, "/v1/me/runway?days=7", &key_a).await;
    assert_eq!(s, 200, "{r}");
    let days = 7i128;
    let want_runway = (i128::from(balance) * days / i128::from(billed)) as i64;
    assert_eq!(
        r,
        json!({
            "balance_brl": brl(balance), "period_days": 7,
            "daily_avg_brl": brl(((i128::from(billed) + 3) / 7) as i64),
            "runway_days": want_runway, "critical": want_runway < 7,
        })
    );
    let (s, r) = get(&gw, "/v1/me/runway", &other_key).await;
    assert_eq!(s, 200);
    assert_eq!(
        r,
        json!({"balance_brl": 0, "period_days": 30, "daily_avg_brl": 0, "runway_days": null, "critical": false})
    );

    // ---------- by key: revoked keys stay; another organization's key is not found
    let (s, _) = op(
        &gw,
        "POST",
        &format!("/admin/v1/keys/{key_b_id}/revoke"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, bk) = get(&gw, "/v1/usage/by-key", &key_a).await;
    assert_eq!(s, 200, "{bk}");
    let list = bk["keys"].as_array().unwrap();
    assert_eq!(list.len(), 3, "every key, revoked ones too: {bk}");
    let kb = list.iter().find(|k| k["id"] == key_b_id.as_str()).unwrap();
    assert_eq!(kb["status"], "revoked");
    assert_eq!(
        (kb["requests"].as_i64(), &kb["cost_billed_brl"]),
        (Some(2), &brl(big_billed))
    );
    assert_eq!(kb["top_models"], json!(["big"]));
    let ka = list.iter().find(|k| k["id"] == key_a_id.as_str()).unwrap();
    assert_eq!(
        (ka["requests"].as_i64(), &ka["cost_billed_brl"]),
        (Some(2), &brl(100_000))
    );
    assert!(!bk.to_string().contains(&other_key_id));
    let (s, one) = get(&gw, &format!("/v1/usage/by-key?key_id={key_b_id}"), &key_a).await;
    assert_eq!((s, one["keys"].as_array().map(Vec::len)), (200, Some(1)));
    let (s, v) = get(
        &gw,
        &format!("/v1/usage/by-key?key_id={other_key_id}"),
        &key_a,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("key_not_found")),
        "{v}"
    );
    // the revoked key is refused at once, here too
    let (s, _) = get(&gw, "/v1/usage", &key_b).await;
    assert_eq!(s, 401);

    let (s, d) = get(&gw, "/v1/me/dashboard-stats", &key_a).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["profile"]["name"], "Padaria Tokia");
    assert_eq!(d["balance_brl"], brl(balance));
    assert_eq!(d["keys"], json!({"active": 1, "revoked": 2}));
    assert_eq!(d["topups"], json!({"paid": 1, "total": 1}));
    assert_eq!(
        d["notifications"],
        json!({"failed": 0, "total": 1}),
        "the invitation mail"
    );

    // ---------- recommendations: `small` at the caller's own mix and rate
    let (s, rec) = get(&gw, "/v1/me/recommendations", &key_a).await;
    assert_eq!(s, 200, "{rec}");
    // priced at each model's own tokens and its own billed ÷ upstream rate, rounded once
    let at = |pt: i64, ct: i64, billed: i64, usd: i64, input: i128, output: i128| {
        let num = (i128::from(pt) * input + i128::from(ct) * output) * i128::from(billed);
        let den = 1_000_000i128 * i128::from(usd);
        ((num + den / 2) / den) as i64
    };
    let m_pt: i64 = events
        .iter()
        .filter(|e| e.model.as_deref() == Some("m"))
        .map(|e| e.prompt_tokens)
        .sum();
    let m_ct: i64 = events
        .iter()
        .filter(|e| e.model.as_deref() == Some("m"))
        .map(|e| e.completion_tokens)
        .sum();
    let mut want = vec![
        (
            "big",
            big_pt,
            big_ct,
            big_billed,
            "small",
            at(big_pt, big_ct, big_billed, big_usd, 1_000_000, 2_000_000),
        ),
        (
            "m",
            m_pt,
            m_ct,
            100_000,
            "small",
            at(m_pt, m_ct, 100_000, 20_000, 1_000_000, 2_000_000),
        ),
        (
            "m",
            m_pt,
            m_ct,
            100_000,
            "big",
            at(m_pt, m_ct, 100_000, 20_000, 10_000_000, 30_000_000),
        ),
    ];
    want.retain(|w| w.5 < w.3);
    want.sort_by(|a, b| {
        (b.3 - b.5)
            .cmp(&(a.3 - a.5))
            .then(a.0.cmp(b.0))
            .then(a.4.cmp(b.4))
    });
    assert_eq!(want.len(), 3, "all three are cheaper: {want:?}");
    let want: Vec<Value> = want
        .iter()
        .map(|(m, pt, ct, cur, alt, cost)| {
            json!({
                "model": m, "category": "chat", "requests": 2,
                "prompt_tokens": pt, "completion_tokens": ct,
                "current_cost_brl": brl(*cur), "suggested_model": alt,
                "suggested_cost_brl": brl(*cost), "saving_brl": brl(cur - cost),
            })
        })
        .collect();
    assert_eq!(rec, json!({"period_days": 30, "recommendations": want}));

    // the other organization sees none of it
    let (_, u) = get(&gw, "/v1/usage", &other_key).await;
    assert_eq!(u["usage_events"], json!([]));
    assert_eq!(u["balance"]["balance_brl"], 0);
    let _ = other_org;
}
