//! bradax's LLM routes in the gateway (issue 15 item 10): `llm/invoke` (content, usage with
//! `cost_usd` at catalog price, one usage event), `parameters` mapped to OpenAI fields as the
//! upstream receives them (unknown or absurd ones 400, nothing sent), `llm/stream` incremental
//! (`{"delta","finished"}` events arriving while the upstream is still generating; the last
//! with usage; a clean error event when the upstream breaks), 429 in the contract's body with
//! `X-RateLimit-*` headers, the student model allow-list, and bradax tokens accepted on
//! `/v1/chat/completions` and `/v1/embeddings` by scope.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::bradax::{assert_bx_error, caller, project, start, wait_usage};
use crate::common::Gateway;

const MSGS: &str = r#"[{"role": "system", "content": "Você é um perito."}, {"role": "user", "content": "Meu carro foi roubado"}]"#;

fn msgs() -> Value {
    serde_json::from_str(MSGS).unwrap()
}

async fn post(
    gw: &Gateway,
    path: &str,
    token: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut rb = reqwest::Client::new()
        .post(gw.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb.send().await.unwrap()
}

/// micro-USD of `p` prompt and `c` completion tokens at `inp`/`out` micro-USD per 1M, rounded
/// half up once (as `pricing::cost`).
fn micros(p: u64, c: u64, inp: u64, out: u64) -> u64 {
    (p * inp + c * out + 500_000) / 1_000_000
}

#[sqlx::test(migrations = "./migrations")]
async fn invoke_answers_content_usage_and_exact_cost_once(pool: PgPool) {
    let (gw, mock) = start(&pool).await;
    let (org, t) = caller(&gw, "p-inv", "full", &["invoke_llm"]).await;
    let r = post(
        &gw,
        "/api/v1/llm/invoke",
        &t,
        json!({"model": "gpt-4o", "messages": msgs(), "parameters": {"temperature": 0.7, "max_tokens": 1000}}),
        &[("x-mock-chunks", "6")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let v: Value = r.json().await.unwrap();
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["content", "model", "timestamp", "usage"], "{v}");
    assert_eq!(v["model"], "gpt-4o", "the public name asked for: {v}");
    assert_eq!(v["content"].as_str().unwrap().split(' ').count(), 6, "{v}");
    let u = &v["usage"];
    let (p, c) = (
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
    );
    assert_eq!(c, 6);
    assert!(p > 0);
    assert_eq!(u["total_tokens"].as_u64(), Some(p + c));
    // gpt-4o: $2.50 / $10 per 1M, no markup in cost_usd
    let want = micros(p, c, 2_500_000, 10_000_000);
    assert_eq!(u["cost_usd"].as_f64(), Some(want as f64 / 1e6), "{u}");
    // exactly one usage event, billed the same upstream cost
    assert_eq!(wait_usage(&pool, &org, 1).await, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows: Vec<(String, i64, Option<i64>, i64)> = sqlx::query_as(
        "SELECT route, prompt_tokens, cost_upstream_usd_micros, completion_tokens FROM usage_event
         WHERE organization_id = $1::uuid",
    )
    .bind(&org)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "bradax.llm.invoke");
    assert_eq!((rows[0].1 as u64, rows[0].3 as u64), (p, c));
    assert_eq!(rows[0].2, Some(want as i64));
    assert_eq!(mock.requests().await, 1);
    // gpt-4o-mini has a 1.3 markup on billing; cost_usd stays the catalog's upstream price
    let r = post(
        &gw,
        "/api/v1/llm/invoke",
        &t,
        json!({"model": "gpt-4o-mini", "messages": msgs()}),
        &[],
    )
    .await;
    let v: Value = r.json().await.unwrap();
    let u = &v["usage"];
    let want = micros(
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
        150_000,
        600_000,
    );
    assert_eq!(u["cost_usd"].as_f64(), Some(want as f64 / 1e6), "{u}");
}

#[sqlx::test(migrations = "./migrations")]
async fn parameters_reach_the_upstream_as_openai_fields_and_unknown_ones_400(pool: PgPool) {
    let (gw, mock) = start(&pool).await;
    let (_, t) = caller(&gw, "p-par", "full", &["invoke_llm"]).await;
    let params = json!({"temperature": 0.2, "max_tokens": 50, "top_p": 0.5, "stop": ["\n", "FIM"],
        "seed": 3, "presence_penalty": 0.1, "frequency_penalty": -0.2, "user": "u-1"});
    let r = post(
        &gw,
        "/api/v1/llm/invoke",
        &t,
        json!({"model": "gpt-4o-mini", "messages": msgs(), "parameters": params}),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    let got = mock.stats().await["last_body"].clone();
    assert_eq!(got["model"], "up", "the deployment's model: {got}");
    assert_eq!(got["messages"], msgs());
    for (k, v) in params.as_object().unwrap() {
        assert_eq!(&got[k], v, "{k}: {got}");
    }
    assert_eq!(got["stream"], false);
    assert!(got.get("parameters").is_none(), "{got}");
    let sent = mock.requests().await;
    for (body, what) in [
        (
            json!({"model": "gpt-4o-mini", "messages": msgs(), "parameters": {"logit_bias": {}}}),
            "logit_bias",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": msgs(), "parameters": {"temperature": 7}}),
            "temperature",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": msgs(), "parameters": {"max_tokens": -1}}),
            "max_tokens",
        ),
        (
            json!({"model": "gpt-4o-mini", "messages": msgs(), "parameters": {"top_p": "alto"}}),
            "top_p",
        ),
        (json!({"model": "gpt-4o-mini", "messages": []}), "messages"),
        (
            json!({"model": "gpt-4o-mini", "messages": msgs(), "temperature": 1}),
            "temperature",
        ),
        (json!({"messages": msgs()}), "model"),
    ] {
        let r = post(&gw, "/api/v1/llm/invoke", &t, body.clone(), &[]).await;
        let s = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_bx_error(s, &v, 400, "validation_error", None);
        assert!(v["message"].as_str().unwrap().contains(what), "{what}: {v}");
    }
    let r = post(
        &gw,
        "/api/v1/llm/invoke",
        &t,
        json!({"model": "nao-existe", "messages": msgs()}),
        &[],
    )
    .await;
    let s = r.status().as_u16();
    assert_bx_error(
        s,
        &r.json().await.unwrap(),
        404,
        "not_found",
        Some("MODEL_NOT_FOUND"),
    );
    assert_eq!(
        mock.requests().await,
        sent,
        "nothing bad reached the upstream"
    );
}

/// Events of a bradax stream as they arrive: (ms since the request, event JSON).
async fn events(r: reqwest::Response, t0: Instant) -> Vec<(u128, Value)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut body = r.bytes_stream();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break };
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(i) = buf.find("\n\n") {
            let ev: String = buf.drain(..i + 2).collect();
            let data = ev
                .trim()
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not an event: {ev:?}"));
            out.push((
                t0.elapsed().as_millis(),
                serde_json::from_str(data).unwrap(),
            ));
        }
    }
    assert!(buf.trim().is_empty(), "left over: {buf:?}");
    out
}

#[sqlx::test(migrations = "./migrations")]
async fn stream_is_incremental_and_ends_with_usage(pool: PgPool) {
    let (gw, mock) = start(&pool).await;
    let (org, t) = caller(&gw, "p-str", "full", &["invoke_llm"]).await;
    let t0 = Instant::now();
    let r = post(
        &gw,
        "/api/v1/llm/stream",
        &t,
        json!({"model": "gpt-4o-mini", "messages": msgs(), "stream": true}),
        &[("x-mock-chunks", "5"), ("x-mock-chunk-delay-ms", "300")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let ev = events(r, t0).await;
    let total = t0.elapsed().as_millis();
    let deltas: Vec<&(u128, Value)> = ev.iter().filter(|(_, e)| e["finished"] == false).collect();
    assert_eq!(deltas.len(), 5, "{ev:?}");
    for (_, e) in &deltas {
        assert_eq!(e.as_object().unwrap().len(), 2, "{{delta, finished}}: {e}");
    }
    // the first word arrived while the upstream still had >= 1 s of words to send
    assert!(
        deltas[0].0 + 1000 <= total,
        "first delta at {} ms of {total} ms",
        deltas[0].0
    );
    assert!(
        deltas[4].0 >= deltas[0].0 + 900,
        "spaced as the upstream sent them: {ev:?}"
    );
    let text: String = deltas
        .iter()
        .map(|(_, e)| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text.split(' ').count(), 5, "{text}");
    let (_, last) = ev.last().unwrap();
    assert_eq!(last["finished"], true, "{last}");
    assert_eq!(last["delta"], "");
    let u = &last["usage"];
    assert_eq!(u["completion_tokens"], 5, "{last}");
    let p = u["prompt_tokens"].as_u64().unwrap();
    assert_eq!(
        u["cost_usd"].as_f64(),
        Some(micros(p, 5, 150_000, 600_000) as f64 / 1e6),
        "{u}"
    );
    assert_eq!(ev.len(), 6, "nothing else: {ev:?}");
    let got = mock.stats().await["last_body"].clone();
    assert_eq!(
        (
            got["stream"].clone(),
            got["stream_options"]["include_usage"].clone()
        ),
        (json!(true), json!(true))
    );
    assert_eq!(wait_usage(&pool, &org, 1).await, 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        wait_usage(&pool, &org, 0).await,
        1,
        "exactly one usage event"
    );
    let (route, stream, ct): (String, bool, i64) = sqlx::query_as(
        "SELECT route, stream, completion_tokens FROM usage_event WHERE organization_id = $1::uuid",
    )
    .bind(&org)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((route.as_str(), stream, ct), ("bradax.llm.stream", true, 5));
}

#[sqlx::test(migrations = "./migrations")]
async fn a_stream_broken_midway_ends_with_an_error_event(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let (org, t) = caller(&gw, "p-cut", "full", &["invoke_llm"]).await;
    let r = post(
        &gw,
        "/api/v1/llm/stream",
        &t,
        json!({"model": "gpt-4o-mini", "messages": msgs()}),
        &[
            ("x-mock-chunks", "6"),
            ("x-mock-fail-after-chunks", "3"),
            ("x-mock-chunk-delay-ms", "20"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let ev = events(r, Instant::now()).await;
    let deltas = ev.iter().filter(|(_, e)| e["finished"] == false).count();
    assert!((1..=3).contains(&deltas), "{ev:?}");
    let (_, last) = ev.last().unwrap();
    assert_eq!(last["finished"], true, "{ev:?}");
    assert_eq!(last["delta"], "");
    assert!(
        last["error"]["code"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{last}"
    );
    assert!(last["error"]["message"].is_string(), "{last}");
    assert!(last.get("usage").is_none(), "{last}");
    assert_eq!(ev.iter().filter(|(_, e)| e["finished"] == true).count(), 1);
    assert_eq!(wait_usage(&pool, &org, 1).await, 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        wait_usage(&pool, &org, 0).await,
        1,
        "exactly one usage event"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_rate_limit_is_the_contracts_429(pool: PgPool) {
    let (gw, mock) = start(&pool).await;
    let org = project(&gw, "p-429", "full").await;
    let (_, k, _) = crate::bradax::key(&gw, &org, &["invoke_llm"], Some(2)).await;
    let (_, tv) = crate::bradax::auth_token(&gw, "p-429", &k, None).await;
    let t = tv["access_token"].as_str().unwrap();
    crate::common::room_in_window(60, Duration::from_secs(5)).await;
    for _ in 0..2 {
        let r = post(
            &gw,
            "/api/v1/llm/invoke",
            t,
            json!({"model": "gpt-4o-mini", "messages": msgs()}),
            &[],
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-ratelimit-limit"], "2");
    }
    let r = post(
        &gw,
        "/api/v1/llm/stream",
        t,
        json!({"model": "gpt-4o-mini", "messages": msgs()}),
        &[],
    )
    .await;
    assert_eq!(r.status(), 429);
    let h = r.headers().clone();
    assert_eq!(h["x-ratelimit-limit"], "2");
    assert_eq!(h["x-ratelimit-remaining"], "0");
    assert_eq!(h["x-ratelimit-window"], "60");
    let reset: u64 = h["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    assert!(reset > 1_600_000_000, "epoch seconds: {reset}");
    let v: Value = r.json().await.unwrap();
    assert_bx_error(
        429,
        &v,
        429,
        "rate_limit_exceeded",
        Some("RATE_LIMIT_EXCEEDED"),
    );
    assert_eq!(v["message"], "Limite de 2 requisições por minuto excedido");
    assert!(
        v["details"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Tente novamente em "),
        "{v}"
    );
    assert_eq!(mock.requests().await, 2);
}

#[sqlx::test(migrations = "./migrations")]
async fn student_models_are_allow_listed(pool: PgPool) {
    let (gw, mock) = start(&pool).await;
    let (_, t) = caller(&gw, "p-aluno", "student", &["invoke_llm"]).await;
    let r = post(
        &gw,
        "/api/v1/llm/invoke",
        &t,
        json!({"model": "gpt-4o", "messages": msgs()}),
        &[],
    )
    .await;
    let s = r.status().as_u16();
    assert_bx_error(
        s,
        &r.json().await.unwrap(),
        403,
        "forbidden",
        Some("MODEL_NOT_ALLOWED"),
    );
    let r = post(
        &gw,
        "/v1/chat/completions",
        &t,
        json!({"model": "gpt-4o", "messages": msgs()}),
        &[],
    )
    .await;
    assert_eq!(r.status(), 403, "on the OpenAI route too");
    assert_eq!(mock.requests().await, 0);
    let r = post(
        &gw,
        "/api/v1/llm/invoke",
        &t,
        json!({"model": "gpt-4o-mini", "messages": msgs()}),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    // embeddings (which a student's vectors need) are not limited
    let r = post(
        &gw,
        "/v1/embeddings",
        &t,
        json!({"model": "text-embedding-3-small", "input": "roubo"}),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[sqlx::test(migrations = "./migrations")]
async fn bradax_tokens_on_openai_routes_by_scope(pool: PgPool) {
    let (gw, _mock) = start(&pool).await;
    let (org, llm) = caller(&gw, "p-oai", "full", &["invoke_llm"]).await;
    let (_, vec) = caller(&gw, "p-oai-v", "full", &["read_vector"]).await;
    let (_, met) = caller(&gw, "p-oai-m", "full", &["read_metrics"]).await;
    let chat = json!({"model": "gpt-4o-mini", "messages": msgs()});
    let emb = json!({"model": "text-embedding-3-small", "input": "roubo de veículo"});
    let r = post(&gw, "/v1/chat/completions", &llm, chat.clone(), &[]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion", "OpenAI's shape: {v}");
    assert_eq!(
        post(&gw, "/v1/embeddings", &llm, emb.clone(), &[])
            .await
            .status(),
        200
    );
    assert_eq!(
        post(&gw, "/v1/embeddings", &vec, emb.clone(), &[])
            .await
            .status(),
        200
    );
    for (tok, path, body) in [
        (&vec, "/v1/chat/completions", &chat),
        (&met, "/v1/embeddings", &emb),
        (&met, "/api/v1/llm/invoke", &chat),
    ] {
        let r = post(&gw, path, tok, body.clone(), &[]).await;
        assert_eq!(r.status(), 403, "{path}");
    }
    assert_eq!(
        wait_usage(&pool, &org, 2).await,
        2,
        "billed to the token's key's project"
    );
}
