//! Anthropic as a provider kind, end to end: the real gateway translating OpenAI requests to
//! the mock's Messages API (`POST /v1/messages`, `x-api-key`, `anthropic-version`) and its
//! answers, SSE streams and errors back, over loopback. Usage and cost exact (cache reads and
//! writes at their prices); failover OpenAI → Anthropic before the first byte, client unaware;
//! client errors passed translated and never failed over; the OpenAI Python SDK against it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::dialect::*;
use crate::common::*;

const AKEY: &str = "sk-ant-test-0001";

/// The mock's root (Anthropic's base URL has no version path).
fn abase(m: &Mock) -> String {
    format!("http://{}", m.addr)
}

/// `claude` on an Anthropic deployment (upstream `claude-up`), priced with cache prices;
/// `o-then-a` fails over from the OpenAI mock to Anthropic; `a-then-o` the other way.
async fn gateway(a: &Mock, o: &Mock) -> Gateway {
    Gateway::start_with_env(
        &format!(
            r#"failover: {{max_attempts: 2, failures_to_trip: 1000, cooldown_ms: 100}}
providers:
  - {{name: pa, kind: anthropic, base_url: "{a}", api_key_env: CATRACA_TEST_ANTHROPIC_KEY, forward_headers: [x-mock-*]}}
  - {{name: po, base_url: "{o}", forward_headers: [x-mock-*]}}
  - {{name: pnone, kind: anthropic, anthropic_version: "2023-01-01", base_url: "{a}", forward_headers: [x-mock-*]}}
deployments:
  - {{name: da, provider: pa, model: claude-up}}
  - {{name: do, provider: po, model: openai-up, priority: 0}}
  - {{name: da2, provider: pa, model: claude-up, priority: 1}}
  - {{name: da3, provider: pa, model: claude-up, priority: 0}}
  - {{name: do3, provider: po, model: openai-up, priority: 1}}
  - {{name: dnone, provider: pnone, model: claude-up}}
models:
  - {{name: claude, input_usd_per_1m: "3", cached_input_usd_per_1m: "0.3", cache_write_usd_per_1m: "3.75", output_usd_per_1m: "15", deployments: [da]}}
  - {{name: o-then-a, deployments: [do, da2]}}
  - {{name: a-then-o, deployments: [da3, do3]}}
  - {{name: no-key, deployments: [dnone]}}
"#,
            a = abase(a),
            o = o.base()
        ),
        &[("CATRACA_TEST_ANTHROPIC_KEY", AKEY)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_chat_with_tools_and_images_translates_both_ways() {
    let (a, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&a, &o).await;
    let r = chat(
        &gw,
        KEY,
        json!({"model": "claude", "temperature": 0.2, "max_tokens": 50, "stop": ["FIM"],
            "messages": [
                {"role": "system", "content": "answer briefly"},
                {"role": "user", "content": [{"type": "text", "text": "weather here?"},
                    {"type": "image_url", "image_url": {"url": PNG}}]}],
            "tools": tools(), "tool_choice": "required"}),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let st = a.stats().await;
    let (sent, h) = (&st["last_body"], &st["last_headers"]);
    assert_eq!(h["x-api-key"], AKEY);
    assert_eq!(h["anthropic-version"], "2023-06-01");
    assert!(h.get("authorization").is_none(), "{h}");
    assert_eq!(sent["model"], "claude-up");
    assert_eq!(sent["system"], "answer briefly");
    assert_eq!(sent["max_tokens"], 50);
    assert_eq!(sent["temperature"], 0.2);
    assert_eq!(sent["stop_sequences"], json!(["FIM"]));
    assert_eq!(
        sent["messages"][0]["content"][1]["source"]["media_type"],
        "image/png"
    );
    assert_eq!(
        sent["tools"][0]["input_schema"],
        tools()[0]["function"]["parameters"]
    );
    assert_eq!(sent["tool_choice"], json!({"type": "any"}));
    // the client's OpenAI answer
    let call = assert_tool_call_answer(&r.body, "claude", "toolu_mock01", json!({"city": "mock"}));
    assert_eq!(call["type"], "function");
    // image block counted by the mock: 100 + "weather here?" (2 words) + 3 for the message +
    // "answer briefly" (2) in system
    assert_eq!(r.body["usage"]["prompt_tokens"], 107);

    // the tool's result goes back as a tool_result block in a user turn; a text answer
    let r = chat(
        &gw,
        KEY,
        json!({"model": "claude", "messages": [
            {"role": "user", "content": "weather here?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "toolu_mock01", "content": "22 graus"}],
            "tools": tools(), "tool_choice": "none"}),
        &[("x-mock-chunks", "3")],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let st = a.stats().await;
    assert_eq!(
        st["last_body"]["messages"][1]["content"][0],
        json!({"type": "tool_use", "id": "toolu_mock01", "name": "weather", "input": {"city": "mock"}})
    );
    assert_eq!(
        st["last_body"]["messages"][2],
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_mock01", "content": "22 graus"}]})
    );
    assert_eq!(r.body["choices"][0]["message"]["content"], "Olá do mock");
    assert_eq!(r.body["choices"][0]["finish_reason"], "stop");

    // max_tokens below the answer's length: cut, finish_reason length
    let r = chat(
        &gw,
        KEY,
        json!({"model": "claude", "max_completion_tokens": 2, "messages": [{"role": "user", "content": "oi"}]}),
        &[],
    )
    .await;
    assert_eq!(r.body["choices"][0]["message"]["content"], "Olá do");
    assert_eq!(r.body["choices"][0]["finish_reason"], "length");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_usage_and_cost_are_exact_with_cache_reads_and_writes() {
    let (a, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&a, &o).await;
    // "um dois três" = 3 words + 3 for the message; 1000 cache reads, 200 cache writes; 4 out
    let h = [("x-mock-cache-read", "1000"), ("x-mock-cache-write", "200")];
    let body =
        json!({"model": "claude", "messages": [{"role": "user", "content": "um dois três"}]});
    let r = chat(&gw, KEY, body.clone(), &h).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let u = &r.body["usage"];
    assert_eq!(u["prompt_tokens"], 1206);
    assert_eq!(u["completion_tokens"], 4);
    assert_eq!(u["total_tokens"], 1210);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 1000);
    // 6 plain at $3, 1000 cached at $0.30, 200 written at $3.75, 4 out at $15 (micro-USD)
    let cost = 6 * 3 + 300 + 750 + 4 * 15;
    let ev = gw.wait_events(1).await;
    let e = &ev[0];
    assert_eq!(e["usage_reported"], true);
    assert_eq!(
        (e["prompt_tokens"].as_u64(), e["completion_tokens"].as_u64()),
        (Some(1206), Some(4))
    );
    assert_eq!(
        (
            e["cached_tokens"].as_u64(),
            e["cache_write_tokens"].as_u64()
        ),
        (Some(1000), Some(200))
    );
    assert_eq!(e["cost_upstream_usd_micros"], cost);
    assert_eq!(e["provider"], "pa");

    // streamed: the usage read from message_start/message_delta though the client did not ask
    let mut sb = body.clone();
    sb["stream"] = json!(true);
    let t = text(gw.post_with("/v1/chat/completions", sb.clone(), &h).await).await;
    assert!(t.ends_with("data: [DONE]\n\n"), "{t}");
    assert!(!t.contains("\"usage\""), "usage chunk sent unasked: {t}");
    let ev = gw.wait_events(2).await;
    let e = &ev[1];
    assert_eq!(e["stream"], true);
    assert_eq!(
        (e["prompt_tokens"].as_u64(), e["completion_tokens"].as_u64()),
        (Some(1206), Some(4))
    );
    assert_eq!(e["cost_upstream_usd_micros"], cost);
    // asked for: the usage chunk last before [DONE], OpenAI's shape
    sb["stream_options"] = json!({"include_usage": true});
    let t = text(gw.post_with("/v1/chat/completions", sb, &h).await).await;
    let evs = sse_events(&t);
    let last = evs.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 1206);
    assert_eq!(
        last["usage"]["prompt_tokens_details"]["cached_tokens"],
        1000
    );

    // an absurd report (2^63) is not believed: counted with the tokenizer, never billed as is
    for stream in [false, true] {
        let mut b = body.clone();
        b["stream"] = json!(stream);
        let r = gw
            .post_with(
                "/v1/chat/completions",
                b,
                &[(
                    "x-mock-usage",
                    r#"{"input_tokens": 9223372036854775808, "output_tokens": 4}"#,
                )],
            )
            .await;
        assert_eq!(r.status(), 200);
        let _ = text(r).await;
    }
    let ev = gw.wait_events(5).await;
    for e in &ev[3..5] {
        assert_eq!(e["usage_reported"], false, "{e}");
        assert!(e["prompt_tokens"].as_u64().unwrap() < 100, "{e}");
        assert!(e["completion_tokens"].as_u64().unwrap() > 0, "{e}");
        assert!(
            e["cost_upstream_usd_micros"].as_i64().unwrap() < 10_000,
            "{e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_stream_is_translated_chunk_by_chunk_as_it_arrives() {
    let (a, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&a, &o).await;
    let t0 = Instant::now();
    let r = gw
        .post_with(
            "/v1/chat/completions",
            json!({"model": "claude", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": [{"type": "text", "text": "oi"},
                    {"type": "image_url", "image_url": {"url": "https://img.test/gato.webp"}}]}]}),
            &[("x-mock-chunks", "5"), ("x-mock-chunk-delay-ms", "200")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let (all, first, end) = timed_stream(r, t0).await;
    // 11 events 200 ms apart: the last comes ≥ 2 s after the first; the first text (the 4th
    // event) must reach the client long before
    assert!(end >= Duration::from_millis(2000), "{end:?}");
    assert!(
        first + Duration::from_millis(1000) < end,
        "first {first:?}, end {end:?}"
    );
    let events = sse_events(&all);
    assert_translated_stream(&events, "claude");
    assert_eq!(events.last().unwrap()["usage"]["completion_tokens"], 5);
    assert!(all.ends_with("data: [DONE]\n\n"));
    assert_eq!(
        a.stats().await["last_body"]["messages"][0]["content"][1]["source"],
        json!({"type": "url", "url": "https://img.test/gato.webp"})
    );

    // a tool call streamed: the call's id and name first, its arguments in pieces
    let (t, events) = stream_with_tools(&gw, "claude", tools()).await;
    let calls = tool_call_deltas(&events);
    assert_eq!(calls.len(), 3, "{t}");
    assert_eq!(calls[0]["id"], "toolu_mock01");
    assert_eq!(calls[0]["function"]["name"], "weather");
    let args: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "mock"})
    );
    assert_eq!(
        events.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );

    // the upstream breaking mid-stream: the client's stream ends without [DONE]
    let t = text(
        gw.post_with(
            "/v1/chat/completions",
            json!({"model": "claude", "stream": true, "messages": [{"role": "user", "content": "oi"}]}),
            &[("x-mock-fail-after-chunks", "5"), ("x-mock-chunk-delay-ms", "50")],
        )
        .await,
    )
    .await;
    assert!(t.contains("\"content\":\"Olá\""), "{t}");
    assert!(!t.contains("[DONE]"), "{t}");

    // Anthropic's error event mid-stream: the stream ends with OpenAI's error event
    let t = text(
        gw.post_with(
            "/v1/chat/completions",
            json!({"model": "claude", "stream": true, "messages": [{"role": "user", "content": "oi"}]}),
            &[("x-mock-stream-error", "1")],
        )
        .await,
    )
    .await;
    assert!(t.contains("\"content\":\"Olá\""), "{t}");
    assert!(!t.contains("[DONE]"), "{t}");
    let last = sse_events(&t).pop().unwrap();
    assert_eq!(last["error"]["code"], "upstream_stream_error", "{t}");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("overloaded_error"),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_errors_are_mapped_and_fail_over_only_on_5xx_and_429() {
    let (a, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&a, &o).await;
    let msg = json!([{"role": "user", "content": "oi"}]);

    // Anthropic's 400 / 404 / 413 reach the client as OpenAI's, never failed over
    for (status, ty) in [
        (400, "invalid_request_error"),
        (404, "invalid_request_error"),
        (413, "invalid_request_error"),
        (403, "permission_error"),
    ] {
        let before = o.requests().await;
        let r = chat(
            &gw,
            KEY,
            json!({"model": "a-then-o", "messages": msg}),
            &[("x-mock-status", &status.to_string())],
        )
        .await;
        assert_eq!(r.status, status, "{:?}", r.body);
        assert_eq!(r.body["error"]["type"], ty, "{status}");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("mock upstream error")
        );
        assert_eq!(o.requests().await, before, "a client error was failed over");
    }
    // no key at all: the mock's 401 authentication_error is OpenAI's 401
    let r = chat(&gw, KEY, json!({"model": "no-key", "messages": msg}), &[]).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.body["error"]["type"], "authentication_error");
    assert_eq!(
        a.stats().await["last_headers"]["anthropic-version"],
        "2023-01-01"
    );

    // 529 overloaded, 500 and 429 from Anthropic: the OpenAI deployment answers
    assert_fails_over_to_openai(&gw, &a, "a-then-o", &[500, 529], &msg).await;
    let r = chat(&gw, KEY, json!({"model": "a-then-o", "messages": msg}), &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["model"], "openai-up");
    // the last attempt's 529 is the client's 503 in OpenAI's shape
    let r = chat(&gw, KEY, json!({"model": "claude", "messages": msg}), &[]).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.body["error"]["type"], "server_error");
    assert_eq!(r.body["error"]["code"], "overloaded_error");
    a.set(json!({"fail_status": 429, "fail_rate": 1.0})).await;
    let r = chat(&gw, KEY, json!({"model": "a-then-o", "messages": msg}), &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    a.set(json!({"fail_rate": 0.0})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_from_openai_to_anthropic_before_the_first_byte_is_invisible() {
    let (a, o) = (Mock::start().await, Mock::start().await);
    let dead = format!("http://127.0.0.1:{}/v1", free_port());
    // OpenAI first (failing with 500, or a dead port), Anthropic second
    let gw = Gateway::start_with_env(
        &format!(
            r#"failover: {{max_attempts: 2, failures_to_trip: 1000, cooldown_ms: 100}}
providers:
  - {{name: pa, kind: anthropic, base_url: "{a}", api_key_env: CATRACA_TEST_ANTHROPIC_KEY, forward_headers: [x-mock-*]}}
  - {{name: po, base_url: "{o}", forward_headers: [x-mock-*]}}
  - {{name: pdead, base_url: "{dead}"}}
deployments:
  - {{name: do, provider: po, model: openai-up, priority: 0}}
  - {{name: da, provider: pa, model: claude-up, priority: 1}}
  - {{name: ddead, provider: pdead, model: openai-up, priority: 0}}
  - {{name: da2, provider: pa, model: claude-up, priority: 1}}
models:
  - {{name: o-then-a, deployments: [do, da]}}
  - {{name: dead-then-a, deployments: [ddead, da2]}}
"#,
            a = abase(&a),
            o = o.base()
        ),
        &[("CATRACA_TEST_ANTHROPIC_KEY", AKEY)],
    )
    .await;
    o.set(json!({"fail_status": 500, "fail_rate": 1.0})).await;
    let msg = json!([{"role": "user", "content": "oi"}]);
    for model in ["o-then-a", "dead-then-a"] {
        // whole answer: OpenAI's shape, the public model name, the Anthropic answer's text
        let r = chat(&gw, KEY, json!({"model": model, "messages": msg}), &[]).await;
        assert_eq!(r.status, 200, "{model}: {:?} {}", r.body, gw.log());
        assert_eq!(r.body["object"], "chat.completion");
        assert_eq!(r.body["model"], model);
        assert_eq!(r.body["choices"][0]["message"]["content"], "Olá do mock da");
        assert_eq!(r.body["usage"]["completion_tokens"], 4);
        // streamed: the same client-side shape as an OpenAI stream
        let t = text(
            gw.post_with(
                "/v1/chat/completions",
                json!({"model": model, "stream": true, "messages": msg}),
                &[],
            )
            .await,
        )
        .await;
        let events = sse_events(&t);
        assert!(t.ends_with("data: [DONE]\n\n"), "{t}");
        assert!(events.iter().all(|e| e["model"] == model));
        let said: String = events
            .iter()
            .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(said, "Olá do mock da");
    }
    let ev = gw.wait_events(4).await;
    for e in &ev {
        assert_eq!(e["attempts"], 2, "{e}");
        assert_eq!(e["status"], 200, "{e}");
        assert_eq!(e["provider"], "pa", "{e}");
        assert_eq!(e["usage_reported"], true, "{e}");
        assert_eq!(e["completion_tokens"], 4, "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_untranslatable_requests_are_400s_naming_the_field_before_any_call() {
    let (a, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&a, &o).await;
    let cases = [
        (json!({"n": 2}), "n"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"logit_bias": {"50256": -100}}), "logit_bias"),
        (json!({"temperature": 1.7}), "temperature"),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]}),
            "messages[0].content[0].image_url.url",
        ),
    ];
    for (patch, field) in cases {
        let mut body = json!({"model": "claude", "messages": [{"role": "user", "content": "oi"}]});
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        for stream in [false, true] {
            body["stream"] = json!(stream);
            let r = chat(&gw, KEY, body.clone(), &[]).await;
            assert_eq!(r.status, 400, "{field}: {:?}", r.body);
            assert_eq!(r.body["error"]["type"], "invalid_request_error");
            let m = r.body["error"]["message"].as_str().unwrap();
            assert!(m.starts_with(&format!("{field}:")), "{field}: {m}");
        }
    }
    // a route Anthropic has no translation of
    let r = gw
        .post(
            "/v1/completions",
            json!({"model": "claude", "prompt": "oi"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        a.requests().await,
        0,
        "an untranslatable request reached Anthropic"
    );
    // the events say 400, no deployment was charged
    let ev = gw.wait_events(13).await;
    assert!(
        ev.iter().all(|e| e["status"] == 400 && e["attempts"] == 0),
        "{ev:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk_works_against_an_anthropic_deployment() {
    let python = sdk_python("openai");
    let (a, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&a, &o).await;
    let stdout = run_sdk_script(
        &python,
        "dialect_sdk_check.py",
        &gw.url("/v1"),
        &[("CATRACA_MODEL", "claude"), ("CATRACA_TOOL_CALLS", "1")],
    )
    .await;
    assert!(stdout.contains("all claude SDK checks passed"), "{stdout}");
}
