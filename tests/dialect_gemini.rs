//! Gemini as a provider kind, end to end: the real gateway translating OpenAI requests to the
//! mock's Gemini dialect (`/v1beta/models/{model}:generateContent`, `:streamGenerateContent
//! ?alt=sse`, `:batchEmbedContents`, `x-goog-api-key`) and its answers, streams and errors back,
//! over loopback. Usage and cost are checked exactly; failover both ways on 5xx/429; client
//! errors passed translated and never failed over; the OpenAI Python SDK against it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::dialect::{
    PNG, assert_fails_over_from_openai, assert_fails_over_to_openai, assert_tool_call_answer,
    assert_translated_stream, run_sdk_script, sdk_python, sse_events, stream_with_tools,
    timed_stream, tool_call_deltas,
};
use crate::common::*;

const GKEY: &str = "gm-test-key-0001";

/// The mock's Gemini base URL.
fn gbase(m: &Mock) -> String {
    format!("http://{}/v1beta", m.addr)
}

/// A gateway with `gemini-model` on a Gemini deployment (upstream `gemini-up`), `emb-gemini`
/// (Gemini embeddings) and `emb-openai` (the OpenAI mock's, for comparison), priced.
async fn gateway(g: &Mock, o: &Mock, extra_providers: &str, extra_models: &str) -> Gateway {
    Gateway::start_with_env(
        &format!(
            r#"failover: {{max_attempts: 2, failures_to_trip: 1000, cooldown_ms: 100}}
providers:
  - {{name: pg, kind: gemini, base_url: "{g}", api_key_env: CATRACA_TEST_GEMINI_KEY, forward_headers: [x-mock-*]}}
  - {{name: po, base_url: "{o}", forward_headers: [x-mock-*]}}
{extra_providers}deployments:
  - {{name: dg, provider: pg, model: gemini-up}}
  - {{name: dge, provider: pg, model: emb-up}}
  - {{name: do, provider: po, model: openai-up}}
models:
  - {{name: gemini-model, input_usd_per_1m: "2", cached_input_usd_per_1m: "0.5", output_usd_per_1m: "8", deployments: [dg]}}
  - {{name: emb-gemini, category: embedding, deployments: [dge]}}
  - {{name: emb-openai, category: embedding, deployments: [do]}}
{extra_models}"#,
            g = gbase(g),
            o = o.base()
        ),
        &[("CATRACA_TEST_GEMINI_KEY", GKEY)],
    )
    .await
}

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "weather", "description": "the weather in a city",
        "parameters": {"type": "object", "additionalProperties": false,
            "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

/// The (only) usage event with this status, from the newest.
async fn last_event(gw: &Gateway, n: usize) -> Value {
    gw.wait_events(n).await.pop().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_chat_with_tools_and_images_translates_both_ways() {
    let (g, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&g, &o, "", "").await;
    let r = chat(
        &gw,
        KEY,
        json!({"model": "gemini-model", "temperature": 0.2, "max_tokens": 50,
            "messages": [
                {"role": "system", "content": "answer briefly"},
                {"role": "user", "content": [{"type": "text", "text": "weather here?"},
                    {"type": "image_url", "image_url": {"url": PNG}}]}],
            "tools": tools(), "tool_choice": "required"}),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // what Gemini got
    let st = g.stats().await;
    let sent = &st["last_body"];
    assert_eq!(st["last_headers"]["x-goog-api-key"], GKEY);
    assert!(st["last_headers"].get("authorization").is_none());
    assert_eq!(
        sent["systemInstruction"],
        json!({"parts": [{"text": "answer briefly"}]})
    );
    assert_eq!(
        sent["contents"][0]["parts"][1]["inlineData"]["mimeType"],
        "image/png"
    );
    assert_eq!(
        sent["tools"][0]["functionDeclarations"][0]["parameters"],
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    );
    assert_eq!(sent["toolConfig"]["functionCallingConfig"]["mode"], "ANY");
    assert_eq!(
        sent["generationConfig"],
        json!({"temperature": 0.2, "maxOutputTokens": 50})
    );
    // what the client got: OpenAI's shape, the public model, the gateway's id
    let call = assert_tool_call_answer(
        &r.body,
        "gemini-model",
        "call_0",
        json!({"answer": "Olá do mock da"}),
    );

    // the tool's result goes back as a functionResponse named after the call; text answer
    let r = chat(
        &gw,
        KEY,
        json!({"model": "gemini-model", "messages": [
            {"role": "user", "content": "weather here?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_0", "content": "22 graus"}],
            "tools": tools()}),
        &[("x-mock-chunks", "3")],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let st = g.stats().await;
    assert_eq!(
        st["last_body"]["contents"][2],
        json!({"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"content": "22 graus"}}}]})
    );
    assert_eq!(
        st["last_body"]["contents"][1]["parts"][0]["functionCall"]["args"],
        json!({"answer": "Olá do mock da"})
    );
    assert_eq!(r.body["choices"][0]["message"]["content"], "Olá do mock");
    assert_eq!(r.body["choices"][0]["finish_reason"], "stop");
    // usage as Gemini reported it: the words of contents (role strings included) and 3
    let ev = last_event(&gw, 2).await;
    assert_eq!(ev["status"], 200);
    assert_eq!(ev["usage_reported"], true);
    assert_eq!(ev["completion_tokens"], 3);
    assert_eq!(r.body["usage"]["completion_tokens"], 3);
    assert_eq!(r.body["usage"]["prompt_tokens"], ev["prompt_tokens"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_usage_and_cost_are_exact_with_cached_and_thought_tokens() {
    let (g, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&g, &o, "", "").await;
    // contents words: "um dois três" + the role "user" = 4; cached 1000 on top; 4 words out
    // plus 6 thought tokens
    let h = [("x-mock-cache-read", "1000"), ("x-mock-thoughts", "6")];
    let body =
        json!({"model": "gemini-model", "messages": [{"role": "user", "content": "um dois três"}]});
    let r = chat(&gw, KEY, body.clone(), &h).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let u = &r.body["usage"];
    assert_eq!(u["prompt_tokens"], 1004);
    assert_eq!(u["completion_tokens"], 10);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 1000);
    assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], 6);
    let ev = last_event(&gw, 1).await;
    assert_eq!(
        (
            ev["prompt_tokens"].as_u64(),
            ev["completion_tokens"].as_u64()
        ),
        (Some(1004), Some(10))
    );
    assert_eq!(
        (
            ev["cached_tokens"].as_u64(),
            ev["reasoning_tokens"].as_u64()
        ),
        (Some(1000), Some(6))
    );
    // 4 plain input at $2/1M, 1000 cached at $0.50/1M, 10 out at $8/1M, in micro-USD
    assert_eq!(ev["cost_upstream_usd_micros"], 4 * 2 + 1000 / 2 + 10 * 8);

    // the same through a stream, usage read though the client did not ask for it
    let mut sb = body.clone();
    sb["stream"] = json!(true);
    let t = text(gw.post_with("/v1/chat/completions", sb, &h).await).await;
    assert!(t.ends_with("data: [DONE]\n\n"), "{t}");
    assert!(!t.contains("\"usage\""), "usage chunk sent unasked: {t}");
    let ev = last_event(&gw, 2).await;
    assert_eq!(ev["stream"], true);
    assert_eq!(
        (
            ev["prompt_tokens"].as_u64(),
            ev["completion_tokens"].as_u64()
        ),
        (Some(1004), Some(10))
    );
    assert_eq!(ev["cost_upstream_usd_micros"], 4 * 2 + 1000 / 2 + 10 * 8);

    // an absurd report (2^63) is not believed: counted with the tokenizer, never billed as is
    let r = chat(
        &gw,
        KEY,
        body,
        &[(
            "x-mock-usage",
            r#"{"promptTokenCount": 9223372036854775808, "candidatesTokenCount": 4}"#,
        )],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let ev = last_event(&gw, 3).await;
    assert_eq!(ev["usage_reported"], false);
    assert!(ev["prompt_tokens"].as_u64().unwrap() < 100, "{ev}");
    assert!(
        ev["cost_upstream_usd_micros"].as_i64().unwrap() < 10_000,
        "{ev}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_stream_is_translated_chunk_by_chunk_as_it_arrives() {
    let (g, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&g, &o, "", "").await;
    let t0 = Instant::now();
    let r = gw
        .post_with(
            "/v1/chat/completions",
            json!({"model": "gemini-model", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": [{"type": "text", "text": "oi"},
                    {"type": "image_url", "image_url": {"url": "https://img.test/gato.webp"}}]}]}),
            &[("x-mock-chunks", "5"), ("x-mock-chunk-delay-ms", "300")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let (all, first, end) = timed_stream(r, t0).await;
    // the upstream's last event comes 4 × 300 ms after its first: the first translated chunk
    // must reach the client long before that
    assert!(end >= Duration::from_millis(1200), "{end:?}");
    assert!(
        first + Duration::from_millis(900) < end,
        "first {first:?}, end {end:?}"
    );
    let events = sse_events(&all);
    assert_translated_stream(&events, "gemini-model");
    let last = events.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["completion_tokens"], 5);
    assert!(all.ends_with("data: [DONE]\n\n"));
    let st = g.stats().await;
    assert_eq!(
        st["last_body"]["contents"][0]["parts"][1],
        json!({"fileData": {"mimeType": "image/webp", "fileUri": "https://img.test/gato.webp"}})
    );

    // a tool call in a stream: one chunk with the whole call, then tool_calls
    let (t, events) = stream_with_tools(&gw, "gemini-model", tools()).await;
    let calls = tool_call_deltas(&events);
    assert_eq!(calls.len(), 1, "{t}");
    assert_eq!(calls[0]["id"], "call_0");
    assert_eq!(calls[0]["index"], 0);
    assert_eq!(calls[0]["function"]["name"], "weather");
    assert_eq!(
        events.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );

    // the upstream breaking mid-stream: the client's stream ends without [DONE]
    let t = text(
        gw.post_with(
            "/v1/chat/completions",
            json!({"model": "gemini-model", "stream": true, "messages": [{"role": "user", "content": "oi"}]}),
            &[("x-mock-fail-after-chunks", "2"), ("x-mock-chunk-delay-ms", "50")],
        )
        .await,
    )
    .await;
    assert!(t.contains("\"content\":\"Olá\""), "{t}");
    assert!(!t.contains("[DONE]"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_errors_are_mapped_and_fail_over_only_on_5xx_and_429() {
    let (g, o) = (Mock::start().await, Mock::start().await);
    let bad_key = Mock::start().await;
    let gw = Gateway::start_with_env(
        &format!(
            r#"failover: {{max_attempts: 2, failures_to_trip: 1000, cooldown_ms: 100}}
providers:
  - {{name: pg, kind: gemini, base_url: "{g}", api_key_env: CATRACA_TEST_GEMINI_KEY, forward_headers: [x-mock-*]}}
  - {{name: po, base_url: "{o}", forward_headers: [x-mock-*]}}
  - {{name: pbad, kind: gemini, base_url: "{b}", api_key_env: CATRACA_TEST_GEMINI_BAD, forward_headers: [x-mock-*]}}
  - {{name: pnone, kind: gemini, base_url: "{b}", forward_headers: [x-mock-*]}}
deployments:
  - {{name: dg, provider: pg, model: gemini-up, priority: 0}}
  - {{name: do, provider: po, model: openai-up, priority: 1}}
  - {{name: do2, provider: po, model: openai-up, priority: 0}}
  - {{name: dg2, provider: pg, model: gemini-up, priority: 1}}
  - {{name: dbad, provider: pbad, model: gemini-up}}
  - {{name: dnone, provider: pnone, model: gemini-up}}
models:
  - {{name: g-then-o, deployments: [dg, do]}}
  - {{name: o-then-g, deployments: [do2, dg2]}}
  - {{name: bad-key, deployments: [dbad]}}
  - {{name: no-key, deployments: [dnone]}}
"#,
            g = gbase(&g),
            o = o.base(),
            b = gbase(&bad_key),
        ),
        &[("CATRACA_TEST_GEMINI_KEY", GKEY), ("CATRACA_TEST_GEMINI_BAD", "gm-invalid-key")],
    )
    .await;
    let msg = json!([{"role": "user", "content": "oi"}]);

    // Gemini's 400 INVALID_ARGUMENT reaches the client as OpenAI's 400; never failed over
    let before = o.requests().await;
    let r = chat(
        &gw,
        KEY,
        json!({"model": "g-then-o", "messages": msg}),
        &[("x-mock-status", "400")],
    )
    .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("INVALID_ARGUMENT"),
        "{:?}",
        r.body
    );
    assert_eq!(o.requests().await, before, "a client error was failed over");
    // 404 NOT_FOUND likewise
    let r = chat(
        &gw,
        KEY,
        json!({"model": "g-then-o", "messages": msg}),
        &[("x-mock-status", "404")],
    )
    .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert_eq!(o.requests().await, before, "a client error was failed over");

    // no key at all: Gemini's 401 UNAUTHENTICATED is OpenAI's 401
    let r = chat(&gw, KEY, json!({"model": "no-key", "messages": msg}), &[]).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(r.body["error"]["type"], "authentication_error");
    // a key Gemini rejects comes as a 400 INVALID_ARGUMENT whose reason is API_KEY_INVALID:
    // the body says so in OpenAI's terms (the status is the HTTP head's, sent before the body
    // is read: see the README's Gemini section)
    let r = chat(&gw, KEY, json!({"model": "bad-key", "messages": msg}), &[]).await;
    assert!(matches!(r.status, 400 | 401), "{:?}", r.body);
    assert_eq!(
        r.body["error"]["type"], "authentication_error",
        "{:?}",
        r.body
    );
    assert_eq!(r.body["error"]["code"], "invalid_api_key", "{:?}", r.body);

    // 503 UNAVAILABLE and 429 RESOURCE_EXHAUSTED from Gemini: the OpenAI deployment answers
    assert_fails_over_to_openai(&gw, &g, "g-then-o", &[503, 429], &msg).await;
    g.set(json!({"fail_rate": 0.0})).await;

    // and the other way: the OpenAI deployment fails with 500, Gemini answers, translated
    o.set(json!({"fail_status": 500, "fail_rate": 1.0})).await;
    assert_fails_over_from_openai(&gw, "o-then-g", &msg).await;
    let ev = gw.wait_events(8).await;
    let last = ev.last().unwrap();
    assert_eq!(last["deployment"], "dg2");
    assert_eq!(last["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_untranslatable_requests_are_400s_naming_the_field_before_any_call() {
    let (g, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&g, &o, "", "").await;
    let cases = [
        (json!({"logprobs": true}), "logprobs"),
        (json!({"logit_bias": {"50256": -100}}), "logit_bias"),
        (json!({"n": 20}), "n"),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://img.test/no-extension"}}]}]}),
            "messages[0].content[0].image_url.url",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"$ref": "#/$defs/a"}}}}}]}),
            "tools[0].function.parameters.properties.a.$ref",
        ),
    ];
    for (patch, field) in cases {
        let mut body =
            json!({"model": "gemini-model", "messages": [{"role": "user", "content": "oi"}]});
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = chat(&gw, KEY, body, &[]).await;
        assert_eq!(r.status, 400, "{field}: {:?}", r.body);
        let m = r.body["error"]["message"].as_str().unwrap();
        assert!(m.starts_with(&format!("{field}:")), "{field}: {m}");
    }
    assert_eq!(
        g.requests().await,
        0,
        "an untranslatable request reached Gemini"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_embeddings_match_the_same_vectors_in_float_and_base64() {
    let (g, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&g, &o, "", "").await;
    let input = json!(["o gato subiu no telhado", "catraca em São Paulo"]);
    let r = gw
        .post(
            "/v1/embeddings",
            json!({"model": "emb-gemini", "input": input, "dimensions": 16}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let gv: Value = r.json().await.unwrap();
    let st = g.stats().await;
    assert_eq!(
        st["last_body"]["requests"][1],
        json!({"model": "models/emb-up", "content": {"parts": [{"text": "catraca em São Paulo"}]}, "outputDimensionality": 16})
    );
    // the OpenAI mock's vectors come from the same bag of words: they must be equal
    let ov: Value = gw
        .post(
            "/v1/embeddings",
            json!({"model": "emb-openai", "input": input, "dimensions": 16}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(gv["object"], "list");
    assert_eq!(gv["model"], "emb-gemini");
    assert_eq!(gv["data"].as_array().unwrap().len(), 2);
    for i in 0..2 {
        assert_eq!(gv["data"][i]["index"], i);
        assert_eq!(
            gv["data"][i]["embedding"], ov["data"][i]["embedding"],
            "vector {i}"
        );
    }
    // base64 (the SDKs' default): little-endian f32s of the same vector
    let bv: Value = gw
        .post("/v1/embeddings", json!({"model": "emb-gemini", "input": input, "dimensions": 16, "encoding_format": "base64"}))
        .await
        .json()
        .await
        .unwrap();
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(bv["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let floats: Vec<f64> = raw
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
        .collect();
    let want: Vec<f64> = ov["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(floats.len(), 16);
    for (a, b) in floats.iter().zip(&want) {
        assert!((a - b).abs() < 1e-6, "{floats:?} vs {want:?}");
    }
    // Gemini reports no tokens for embeddings: the gateway counts them
    let ev = gw.wait_events(3).await;
    assert_eq!(ev[0]["status"], 200);
    assert_eq!(ev[0]["deployment"], "dge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk_works_against_a_gemini_deployment() {
    let python = sdk_python("openai");
    let (g, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&g, &o, "", "").await;
    let stdout = run_sdk_script(
        &python,
        "dialect_embeddings_sdk_check.py",
        &gw.url("/v1"),
        &[("CATRACA_DIALECT", "gemini")],
    )
    .await;
    assert!(stdout.contains("all gemini SDK checks passed"), "{stdout}");
}
