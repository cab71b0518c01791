//! `POST /v1/messages` (Anthropic's Messages API inbound) through an OpenAI-kind deployment on
//! the mock, over real sockets: the mock sees the translated OpenAI body, the client gets
//! Anthropic's shapes (whole, streamed as it arrives, errors with Anthropic's types and
//! statuses), usage and cost are exact, hostile input is a 400 that never reaches the
//! provider; and the official Anthropic Python SDK works unchanged against it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::dialect::{run_sdk_script, sdk_python};
use crate::common::{Gateway, KEY, Mock};

/// A 1x1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

/// The gateway: `claude-pub` on the mock ($1 and $2 per 1M tokens: a cost in µUSD is
/// `prompt + 2 × completion`, × 5 in µBRL), and `limited-model` whose only deployment
/// answers 429.
async fn gateway() -> (Mock, Mock, Gateway) {
    let mock = Mock::start().await;
    let limited = Mock::start().await;
    limited
        .set(json!({"fail_status": 429, "fail_rate": 1.0}))
        .await;
    let gw = Gateway::start(&format!(
        r#"failover: {{max_attempts: 1}}
pricing: {{fx_usd_brl: "5", default_markup: "1.0"}}
providers:
  - {{name: p, base_url: "{}", forward_headers: [x-mock-*]}}
  - {{name: limited, base_url: "{}", forward_headers: [x-mock-*]}}
deployments:
  - {{name: d, provider: p, model: up}}
  - {{name: dl, provider: limited, model: up}}
models:
  - {{name: claude-pub, input_usd_per_1m: "1", output_usd_per_1m: "2", deployments: [d]}}
  - {{name: limited-model, deployments: [dl]}}
"#,
        mock.base(),
        limited.base()
    ))
    .await;
    (mock, limited, gw)
}

fn messages(gw: &Gateway, body: &Value, headers: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let mut rb = reqwest::Client::new()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb
}

async fn send(gw: &Gateway, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let r = messages(gw, body, headers).send().await.unwrap();
    let s = r.status().as_u16();
    let t = r.text().await.unwrap();
    (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

fn tools() -> Value {
    json!([{"name": "get_weather", "description": "the weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
}

/// A request with a system prompt, an image and tools.
fn rich(stream: bool) -> Value {
    json!({
        "model": "claude-pub", "max_tokens": 256, "stream": stream,
        "system": "be brief",
        "tools": tools(), "tool_choice": {"type": "auto"},
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what city is this"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
        ]}]
    })
}

/// Anthropic's SSE text as `(event name, data)` pairs.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            (name, data)
        })
        .collect()
}

fn assert_error(s: u16, v: &Value, status: u16, kind: &str) {
    assert_eq!(s, status, "{v}");
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], kind, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

/// The usage event's counts and costs.
fn costs(e: &Value) -> (i64, i64, i64, i64) {
    (
        e["prompt_tokens"].as_i64().unwrap(),
        e["completion_tokens"].as_i64().unwrap(),
        e["cost_upstream_usd_micros"].as_i64().unwrap(),
        e["cost_billed_brl_micros"].as_i64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_tools_and_an_image_is_translated_both_ways_and_billed_exactly() {
    let (mock, _l, gw) = gateway().await;
    let (s, v) = send(&gw, &rich(false), &[("x-mock-tool-call", "first")]).await;
    assert_eq!(s, 200, "{v}");
    // the provider got OpenAI's chat body, for the deployment's model
    let sent = mock.stats().await["last_body"].clone();
    assert_eq!(sent["model"], "up");
    assert_eq!(sent["max_tokens"], 256);
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(
        sent["messages"][1]["content"][0],
        json!({"type": "text", "text": "what city is this"})
    );
    assert_eq!(
        sent["messages"][1]["content"][1]["image_url"]["url"],
        format!("data:image/png;base64,{PNG}")
    );
    assert_eq!(sent["tools"][0]["type"], "function");
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(
        sent["tools"][0]["function"]["parameters"]["required"],
        json!(["city"])
    );
    assert_eq!(sent["tool_choice"], "auto");
    assert!(sent.get("system").is_none() && sent.get("tool_choice").is_some());
    // the client got Anthropic's message
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-pub");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        v["content"],
        json!([{"type": "tool_use", "id": "call_mock_1", "name": "get_weather",
            "input": {"city": "São Paulo", "unit": "celsius"}}])
    );
    assert_eq!(v["stop_reason"], "tool_use");
    // usage as the provider reported it, and the cost from it exactly
    let ev = gw.wait_events(1).await;
    let (pt, ct, usd, brl) = costs(&ev[0]);
    assert_eq!(ev[0]["route"], "messages");
    assert_eq!(ev[0]["model"], "claude-pub");
    assert_eq!(ev[0]["usage_reported"], true);
    assert_eq!(v["usage"]["input_tokens"], pt);
    assert_eq!(v["usage"]["output_tokens"], ct);
    assert_eq!(v["usage"]["cache_read_input_tokens"], 0);
    assert_eq!(ct, 4);
    assert_eq!(
        pt as u64,
        mock.stats().await["reported_prompt_tokens"]
            .as_u64()
            .unwrap()
    );
    assert_eq!((usd, brl), (pt + 2 * ct, 5 * (pt + 2 * ct)));

    // the next turn: the tool's result goes back as a `tool` message
    let (s, v) = send(
        &gw,
        &json!({"model": "claude-pub", "max_tokens": 50, "tools": tools(), "messages": [
            {"role": "user", "content": "weather in SP?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_mock_1", "name": "get_weather", "input": {"city": "São Paulo"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_mock_1", "content": "31C"}]}
        ]}),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let sent = mock.stats().await["last_body"].clone();
    assert_eq!(
        sent["messages"][1]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"São Paulo\"}"
    );
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "tool_call_id": "call_mock_1", "content": "31C"})
    );
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Olá do mock da"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_translated_as_it_arrives_and_billed_exactly() {
    let (mock, _l, gw) = gateway().await;
    let t0 = Instant::now();
    let mut r = messages(
        &gw,
        &rich(true),
        &[("x-mock-chunks", "4"), ("x-mock-chunk-delay-ms", "300")],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut text = String::new();
    let mut first_delta = None;
    while let Some(c) = r.chunk().await.unwrap() {
        text.push_str(std::str::from_utf8(&c).unwrap());
        if first_delta.is_none() && text.contains("content_block_delta") {
            first_delta = Some(t0.elapsed());
        }
    }
    let total = t0.elapsed();
    let first = first_delta.expect("no content_block_delta");
    // the mock spends ≥ 1.5 s after its first chunk: the first delta came well before the end
    assert!(
        first + Duration::from_millis(1000) < total,
        "first delta at {first:?}, stream ended at {total:?}"
    );
    // the stream_options the gateway forced upstream
    assert_eq!(
        mock.stats().await["last_body"]["stream_options"]["include_usage"],
        true
    );
    let ev = events(&text);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ],
        "{text}"
    );
    for (n, d) in &ev {
        assert_eq!(d["type"], n.as_str());
    }
    assert_eq!(ev[0].1["message"]["model"], "claude-pub");
    let said: String = ev
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(said, "Olá do mock da");
    let delta = &ev[7].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    let e = gw.wait_events(1).await;
    let (pt, ct, usd, brl) = costs(&e[0]);
    assert_eq!(e[0]["route"], "messages");
    assert_eq!(e[0]["usage_reported"], true);
    assert_eq!(delta["usage"]["input_tokens"], pt);
    assert_eq!(delta["usage"]["output_tokens"], ct);
    assert_eq!(ct, 4);
    assert_eq!((usd, brl), (pt + 2 * ct, 5 * (pt + 2 * ct)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_tool_call_arrives_as_input_json_deltas() {
    let (_mock, _l, gw) = gateway().await;
    let r = messages(
        &gw,
        &rich(true),
        &[("x-mock-tool-call", "first"), ("x-mock-chunks", "5")],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let ev = events(&r.text().await.unwrap());
    let start = ev.iter().find(|(n, _)| n == "content_block_start").unwrap();
    assert_eq!(
        start.1["content_block"],
        json!({"type": "tool_use", "id": "call_mock_1", "name": "get_weather", "input": {}})
    );
    let args: String = ev
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "São Paulo", "unit": "celsius"})
    );
    // more than one piece: passed on as they came
    assert!(
        ev.iter()
            .filter(|(_, d)| d["delta"]["type"] == "input_json_delta")
            .count()
            > 1
    );
    let md = ev.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(md.1["delta"]["stop_reason"], "tool_use");
    assert_eq!(ev.last().unwrap().0, "message_stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_anthropics_with_their_statuses() {
    let (mock, _l, gw) = gateway().await;
    let ok = json!({"model": "claude-pub", "max_tokens": 10, "messages": [{"role": "user", "content": "oi"}]});
    // missing max_tokens
    let mut b = ok.clone();
    b.as_object_mut().unwrap().remove("max_tokens");
    let (s, v) = send(&gw, &b, &[]).await;
    assert_error(s, &v, 400, "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );
    // no key, a bad key (as x-api-key and as Bearer)
    let r = reqwest::Client::new()
        .post(gw.url("/v1/messages"))
        .header("content-type", "application/json")
        .body(ok.to_string())
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_error(s, &r.json().await.unwrap(), 401, "authentication_error");
    let r = reqwest::Client::new()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", "sk-wrong")
        .header("content-type", "application/json")
        .body(ok.to_string())
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_error(s, &r.json().await.unwrap(), 401, "authentication_error");
    let r = reqwest::Client::new()
        .post(gw.url("/v1/messages"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(ok.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "Bearer works too");
    // unknown model
    let mut b = ok.clone();
    b["model"] = json!("claude-nope");
    let (s, v) = send(&gw, &b, &[]).await;
    assert_error(s, &v, 404, "not_found_error");
    // the provider's rate limit
    let mut b = ok.clone();
    b["model"] = json!("limited-model");
    let (s, v) = send(&gw, &b, &[]).await;
    assert_error(s, &v, 429, "rate_limit_error");
    // the provider's 400 and 500, passed on in Anthropic's shape
    let (s, v) = send(&gw, &ok, &[("x-mock-status", "400")]).await;
    assert_error(s, &v, 400, "invalid_request_error");
    assert_eq!(v["error"]["message"], "mock upstream error 400");
    let (s, v) = send(&gw, &ok, &[("x-mock-status", "500")]).await;
    assert_error(s, &v, 500, "api_error");
    // a stream's error answer before its first byte is a JSON error too
    let mut b = ok.clone();
    b["stream"] = json!(true);
    let (s, v) = send(&gw, &b, &[("x-mock-status", "401")]).await;
    assert_error(s, &v, 401, "authentication_error");
    // wrong method on the route
    let r = reqwest::Client::new()
        .get(gw.url("/v1/messages"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    let _ = mock;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_broken_midway_ends_with_an_error_event() {
    let (_mock, _l, gw) = gateway().await;
    let r = messages(
        &gw,
        &json!({"model": "claude-pub", "max_tokens": 10, "stream": true, "messages": [{"role": "user", "content": "oi"}]}),
        &[
            ("x-mock-chunks", "6"),
            ("x-mock-chunk-delay-ms", "200"),
            ("x-mock-fail-after-chunks", "2"),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap_or_default();
    let ev = events(&text);
    assert_eq!(ev[0].0, "message_start", "{text}");
    let (name, data) = ev.last().unwrap();
    assert_eq!(name, "error", "{text}");
    assert_eq!(data["type"], "error");
    assert_eq!(data["error"]["type"], "api_error");
    assert!(!ev.iter().any(|(n, _)| n == "message_stop"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_a_400_in_anthropics_shape_and_never_reaches_the_provider() {
    let (mock, _l, gw) = gateway().await;
    let before = mock.requests().await;
    let deep = format!(
        r#"{{"model":"claude-pub","max_tokens":5,"messages":[{{"role":"user","content":"x"}}],"metadata":{}1{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let bodies: Vec<Vec<u8>> = vec![
        b"{\"model\":\"claude-pub\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"a\0b\"}]}".to_vec(),
        br#"{"model":"claude-pub","max_tokens":5,"messages":[{"role":"user","content":"a\u0000b"}]}"#.to_vec(),
        b"{\"model\":\"claude-pub\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}".to_vec(),
        deep.into_bytes(),
        br#"{"model":"claude-pub","max_tokens":18446744073709551616,"messages":[{"role":"user","content":"x"}]}"#.to_vec(),
        br#"{"model":"claude-pub","max_tokens":1e308,"messages":[{"role":"user","content":"x"}]}"#.to_vec(),
        br#"{"model":"claude-pub","max_tokens":-1,"messages":[{"role":"user","content":"x"}]}"#.to_vec(),
        br#"{"model":"claude-pub","max_tokens":5,"top_k":5,"messages":[{"role":"user","content":"x"}]}"#.to_vec(),
        br#"{"model":"claude-pub","max_tokens":5,"thinking":{"type":"enabled","budget_tokens":2000},"messages":[{"role":"user","content":"x"}]}"#.to_vec(),
        br#"{"model":"claude-pub","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","data":"x"}}]}]}"#.to_vec(),
        br#"{"model":"claude-pub","max_tokens":5,"temperature":1e400,"messages":[{"role":"user","content":"x"}]}"#.to_vec(),
        br#"not json"#.to_vec(),
        Vec::new(),
    ];
    for b in bodies {
        let r = reqwest::Client::new()
            .post(gw.url("/v1/messages"))
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .body(b.clone())
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        let shown = String::from_utf8_lossy(&b[..b.len().min(120)]).into_owned();
        assert_eq!(s, 400, "{shown}: {v}");
        assert_eq!(v["type"], "error", "{shown}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{shown}");
    }
    let (s, v) = send(
        &gw,
        &json!({"model": "claude-pub", "max_tokens": 5, "top_k": 3, "messages": [{"role": "user", "content": "x"}]}),
        &[],
    )
    .await;
    assert_error(s, &v, 400, "invalid_request_error");
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with("top_k"),
        "{v}"
    );
    assert_eq!(
        mock.requests().await,
        before,
        "nothing hostile reached the provider"
    );
}

/// Runs tests/sdk/anthropic_sdk_check.py against `gw` (`tool_input`: what the provider's
/// mock calls its tool with).
async fn run_sdk_check(gw: &Gateway, tool_input: &str) {
    let python = sdk_python("anthropic");
    let stdout = run_sdk_script(
        &python,
        "anthropic_sdk_check.py",
        &gw.url(""),
        &[
            ("CATRACA_MODEL", "claude-pub"),
            ("CATRACA_LIMITED_MODEL", "limited-model"),
            ("CATRACA_TOOL_INPUT", tool_input),
        ],
    )
    .await;
    assert!(
        stdout.contains("all Anthropic SDK checks passed"),
        "{stdout}"
    );
}

/// `claude-pub` on an Anthropic-kind deployment (the mock's Anthropic dialect): the request
/// is translated twice (Messages → OpenAI → Messages) and the answer back twice.
async fn anthropic_kind_gateway() -> (Mock, Mock, Gateway) {
    let mock = Mock::start().await;
    let limited = Mock::start().await;
    limited
        .set(json!({"fail_status": 429, "fail_rate": 1.0}))
        .await;
    let gw = Gateway::start_with_env(
        &format!(
            r#"failover: {{max_attempts: 1}}
pricing: {{fx_usd_brl: "5", default_markup: "1.0"}}
providers:
  - {{name: pa, kind: anthropic, base_url: "http://{}", api_key_env: CATRACA_TEST_ANTHROPIC_KEY, forward_headers: [x-mock-*]}}
  - {{name: limited, base_url: "{}", forward_headers: [x-mock-*]}}
deployments:
  - {{name: da, provider: pa, model: claude-up}}
  - {{name: dl, provider: limited, model: up}}
models:
  - {{name: claude-pub, input_usd_per_1m: "1", output_usd_per_1m: "2", cached_input_usd_per_1m: "0.5", deployments: [da]}}
  - {{name: limited-model, deployments: [dl]}}
"#,
            mock.addr,
            limited.base()
        ),
        &[("CATRACA_TEST_ANTHROPIC_KEY", "sk-ant-mock")],
    )
    .await;
    (mock, limited, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_an_anthropic_deployment_cache_reads_come_back_as_anthropic_reports_them() {
    let (mock, _l, gw) = anthropic_kind_gateway().await;
    let (s, v) = send(&gw, &rich(false), &[("x-mock-cache-read", "10")]).await;
    assert_eq!(s, 200, "{v}");
    let sent = mock.stats().await["last_body"].clone();
    assert_eq!(sent["model"], "claude-up");
    assert_eq!(sent["system"], "be brief");
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][0]["type"], "tool_use");
    assert_eq!(v["content"][0]["name"], "get_weather");
    assert_eq!(v["usage"]["cache_read_input_tokens"], 10);
    let ev = gw.wait_events(1).await;
    let (pt, ct, _, _) = costs(&ev[0]);
    assert_eq!(ev[0]["cached_tokens"], 10);
    assert_eq!(v["usage"]["input_tokens"], pt - 10);
    assert_eq!(v["usage"]["output_tokens"], ct);
    // streamed: the final counts in message_delta, cache reads included
    let r = messages(
        &gw,
        &json!({"model": "claude-pub", "max_tokens": 64, "stream": true,
            "messages": [{"role": "user", "content": "oi"}]}),
        &[("x-mock-cache-read", "7")],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let ev = events(&r.text().await.unwrap());
    let md = ev.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(md.1["usage"]["cache_read_input_tokens"], 7, "{ev:?}");
    assert_eq!(ev.last().unwrap().0, "message_stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_python_sdk_works_against_an_anthropic_deployment() {
    let (_mock, _l, gw) = anthropic_kind_gateway().await;
    run_sdk_check(&gw, r#"{"city": "mock"}"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_python_sdk_works_unchanged() {
    let (_mock, _l, gw) = gateway().await;
    run_sdk_check(&gw, r#"{"city": "São Paulo", "unit": "celsius"}"#).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_past_the_retry_buffer_reaches_the_provider_translated() {
    // 300 KiB of image data: past Pingora's 64 KiB retry buffer (`bigbody`)
    let (mock, _l, gw) = gateway().await;
    let data = "A".repeat(300 * 1024);
    let body = json!({"model": "claude-pub", "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": data}},
        {"type": "text", "text": "what is it"}
    ]}]});
    let (s, v) = send(&gw, &body, &[]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["type"], "message");
    let sent = mock.stats().await["last_body"].clone();
    assert_eq!(
        sent["messages"][0]["content"][0]["image_url"]["url"],
        format!("data:image/jpeg;base64,{data}")
    );
    assert_eq!(sent["model"], "up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_usage_report_is_neither_shown_nor_billed() {
    let (_mock, _l, gw) = gateway().await;
    let absurd =
        r#"{"prompt_tokens": 9223372036854775807, "completion_tokens": 18446744073709551615}"#;
    for stream in [false, true] {
        let r = messages(
            &gw,
            &json!({"model": "claude-pub", "max_tokens": 10, "stream": stream,
                "messages": [{"role": "user", "content": "oi"}]}),
            &[("x-mock-usage", absurd)],
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        let usage = if stream {
            let ev = events(&text);
            assert_eq!(ev.last().unwrap().0, "message_stop", "{text}");
            ev.iter().find(|(n, _)| n == "message_delta").unwrap().1["usage"].clone()
        } else {
            serde_json::from_str::<Value>(&text).unwrap()["usage"].clone()
        };
        assert!(usage["input_tokens"].as_u64().unwrap() < 1000, "{usage}");
        assert!(usage["output_tokens"].as_u64().unwrap() < 1000, "{usage}");
    }
    let ev = gw.wait_events(2).await;
    for e in &ev {
        assert_eq!(e["usage_reported"], false, "{e}");
        let (pt, ct, usd, _) = costs(e);
        assert!(pt < 1000 && ct < 1000 && usd < 10_000, "{e}");
    }
}
