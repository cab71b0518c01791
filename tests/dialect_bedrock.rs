//! Amazon Bedrock as a provider kind, end to end: the real gateway translating OpenAI requests
//! to the mock's Bedrock dialect (`/model/{id}/converse`, `/converse-stream` with binary
//! event-stream frames, `/invoke` for Titan embeddings), every request signed with SigV4 and
//! checked by the mock's own implementation of the algorithm, and the answers, streams and
//! errors translated back, over loopback. Usage and cost are checked exactly; failover on
//! 5xx/429 only; a wrong secret is the mock's 403, the client's 401; the OpenAI Python SDK
//! against it; `check-config` errors of the Bedrock fields with their positions.

use std::path::Path;
use std::time::{Duration, Instant};

use catraca::mock_upstream::bedrock::{ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use serde_json::{Value, json};

use crate::common::dialect::*;
use crate::common::*;

/// A model id with a `:`, sent as `%3A` and signed double-encoded, as Bedrock's are.
const UP: &str = "anthropic.claude-3-haiku-20240307-v1:0";

fn bbase(m: &Mock) -> String {
    format!("http://{}", m.addr)
}

const ENV: [(&str, &str); 3] = [
    ("CATRACA_TEST_AWS_ID", ACCESS_KEY_ID),
    ("CATRACA_TEST_AWS_SECRET", SECRET_ACCESS_KEY),
    ("CATRACA_TEST_AWS_TOKEN", "session/token+abc="),
];

/// A gateway with `bedrock-model` on a Bedrock deployment, `emb-bedrock` (Titan embeddings)
/// and `emb-openai` (the OpenAI mock's, for comparison), priced with cache prices.
async fn gateway(b: &Mock, o: &Mock) -> Gateway {
    Gateway::start_with_env(
        &format!(
            r#"failover: {{max_attempts: 2, failures_to_trip: 1000, cooldown_ms: 100}}
providers:
  - {{name: pb, kind: bedrock, region: us-east-1, base_url: "{b}", aws_access_key_id_env: CATRACA_TEST_AWS_ID, aws_secret_access_key_env: CATRACA_TEST_AWS_SECRET, aws_session_token_env: CATRACA_TEST_AWS_TOKEN, forward_headers: [x-mock-*]}}
  - {{name: po, base_url: "{o}", forward_headers: [x-mock-*]}}
deployments:
  - {{name: db, provider: pb, model: "{UP}"}}
  - {{name: dbe, provider: pb, model: amazon.titan-embed-text-v2:0}}
  - {{name: do, provider: po, model: openai-up}}
models:
  - {{name: bedrock-model, input_usd_per_1m: "2", cached_input_usd_per_1m: "0.5", cache_write_usd_per_1m: "2.5", output_usd_per_1m: "8", deployments: [db]}}
  - {{name: emb-bedrock, category: embedding, input_usd_per_1m: "1", deployments: [dbe]}}
  - {{name: emb-openai, category: embedding, deployments: [do]}}
"#,
            b = bbase(b),
            o = o.base()
        ),
        &ENV,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_chat_with_tools_and_images_translates_both_ways() {
    let (b, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&b, &o).await;
    let r = chat(
        &gw,
        KEY,
        json!({"model": "bedrock-model", "temperature": 0.2, "max_tokens": 50, "stop": ["FIM"],
            "messages": [
                {"role": "system", "content": "answer briefly"},
                {"role": "user", "content": [{"type": "text", "text": "weather here?"},
                    {"type": "image_url", "image_url": {"url": PNG}}]}],
            "tools": tools(), "tool_choice": "required"}),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // what Bedrock got: a Converse body, signed (the mock checked the signature)
    let st = b.stats().await;
    let h = &st["last_headers"];
    let auth = h["authorization"].as_str().unwrap();
    assert!(
        auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")),
        "{auth}"
    );
    assert!(auth.contains("/us-east-1/bedrock/aws4_request"), "{auth}");
    assert_eq!(h["x-amz-security-token"], "session/token+abc=");
    assert!(h.get("x-amz-content-sha256").is_some());
    let sent = &st["last_body"];
    assert_eq!(sent["system"], json!([{"text": "answer briefly"}]));
    assert_eq!(sent["messages"][0]["content"][1]["image"]["format"], "png");
    assert_eq!(
        sent["messages"][0]["content"][1]["image"]["source"]["bytes"],
        PNG.split_once(',').unwrap().1
    );
    assert_eq!(
        sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["required"],
        json!(["city"])
    );
    assert_eq!(sent["toolConfig"]["toolChoice"], json!({"any": {}}));
    assert_eq!(
        sent["inferenceConfig"],
        json!({"maxTokens": 50, "temperature": 0.2, "stopSequences": ["FIM"]})
    );
    assert!(sent.get("model").is_none());
    // what the client got: OpenAI's shape, the public model, the gateway's id
    let call = assert_tool_call_answer(
        &r.body,
        "bedrock-model",
        "tooluse_mock0001",
        json!({"answer": "Olá do mock da"}),
    );

    // the tool's result goes back as a toolResult in a user turn; a text answer comes
    let r = chat(
        &gw,
        KEY,
        json!({"model": "bedrock-model", "messages": [
            {"role": "user", "content": "weather here?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "tooluse_mock0001", "content": "22 graus"}],
            "tools": tools()}),
        &[("x-mock-chunks", "3")],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let st = b.stats().await;
    assert_eq!(
        st["last_body"]["messages"][2],
        json!({"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_mock0001", "content": [{"text": "22 graus"}]}}]})
    );
    assert_eq!(
        st["last_body"]["messages"][1]["content"][0]["toolUse"]["input"],
        json!({"answer": "Olá do mock da"})
    );
    assert_eq!(r.body["choices"][0]["message"]["content"], "Olá do mock");
    assert_eq!(r.body["choices"][0]["finish_reason"], "stop");
    assert_eq!(r.body["usage"]["completion_tokens"], 3);

    // response_format json_schema: answered through a forced tool, as content
    let r = chat(
        &gw,
        KEY,
        json!({"model": "bedrock-model", "messages": [{"role": "user", "content": "json please"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "a",
                "schema": {"type": "object", "properties": {"answer": {"type": "string"}}}}}}),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let content: Value =
        serde_json::from_str(r.body["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, json!({"answer": "Olá do mock da"}));
    assert_eq!(r.body["choices"][0]["finish_reason"], "stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_usage_and_cost_are_exact_with_cache_reads_and_writes() {
    let (b, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&b, &o).await;
    // Converse messages' words: "um dois três" + the role "user" = 4, plus 3 a message = 7
    // fresh input tokens; 1000 read from the cache and 200 written to it on top; 4 out
    let h = [("x-mock-cache-read", "1000"), ("x-mock-cache-write", "200")];
    let body = json!({"model": "bedrock-model", "messages": [{"role": "user", "content": "um dois três"}]});
    let r = chat(&gw, KEY, body.clone(), &h).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let u = &r.body["usage"];
    assert_eq!(u["prompt_tokens"], 1207);
    assert_eq!(u["completion_tokens"], 4);
    assert_eq!(u["total_tokens"], 1211);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 1000);
    // 7 plain at $2/1M, 1000 cached at $0.50/1M, 200 written at $2.50/1M, 4 out at $8/1M
    let cost = 7 * 2 + 1000 / 2 + 200 * 5 / 2 + 4 * 8;
    let ev = gw.wait_events(1).await.pop().unwrap();
    assert_eq!(ev["status"], 200);
    assert_eq!(ev["usage_reported"], true);
    assert_eq!(
        (
            ev["prompt_tokens"].as_u64(),
            ev["completion_tokens"].as_u64(),
            ev["cached_tokens"].as_u64(),
            ev["cache_write_tokens"].as_u64()
        ),
        (Some(1207), Some(4), Some(1000), Some(200)),
        "{ev}"
    );
    assert_eq!(ev["cost_upstream_usd_micros"], cost);

    // the same through a stream: usage read from the metadata frame though the client did
    // not ask for it, and none sent to the client
    let mut sb = body.clone();
    sb["stream"] = json!(true);
    let t = text(gw.post_with("/v1/chat/completions", sb, &h).await).await;
    assert!(t.ends_with("data: [DONE]\n\n"), "{t}");
    assert!(!t.contains("\"usage\""), "usage chunk sent unasked: {t}");
    let ev = gw.wait_events(2).await.pop().unwrap();
    assert_eq!(ev["stream"], true);
    assert_eq!(
        (
            ev["prompt_tokens"].as_u64(),
            ev["completion_tokens"].as_u64(),
            ev["cached_tokens"].as_u64()
        ),
        (Some(1207), Some(4), Some(1000))
    );
    assert_eq!(ev["cost_upstream_usd_micros"], cost);

    // an absurd report (2^63) is not believed: counted with the tokenizer, never billed as is
    for stream in [false, true] {
        let mut sb = body.clone();
        sb["stream"] = json!(stream);
        let r = gw
            .post_with(
                "/v1/chat/completions",
                sb,
                &[(
                    "x-mock-usage",
                    r#"{"inputTokens": 9223372036854775808, "outputTokens": 4}"#,
                )],
            )
            .await;
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await;
    }
    let evs = gw.wait_events(4).await;
    for ev in &evs[2..] {
        assert_eq!(ev["usage_reported"], false, "{ev}");
        assert!(ev["prompt_tokens"].as_u64().unwrap() < 100, "{ev}");
        assert!(
            ev["cost_upstream_usd_micros"].as_i64().unwrap() < 10_000,
            "{ev}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_stream_is_translated_frame_by_frame_as_it_arrives() {
    let (b, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&b, &o).await;
    let t0 = Instant::now();
    let r = gw
        .post_with(
            "/v1/chat/completions",
            json!({"model": "bedrock-model", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": [{"type": "text", "text": "oi"},
                    {"type": "image_url", "image_url": {"url": PNG}}]}]}),
            &[("x-mock-chunks", "5"), ("x-mock-chunk-delay-ms", "300")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let (all, first, end) = timed_stream(r, t0).await;
    // 9 frames 300 ms apart: the last comes ≥ 2.4 s after the first; the first text frame
    // (the second frame) must reach the client long before that
    assert!(end >= Duration::from_millis(2400), "{end:?}");
    assert!(
        first + Duration::from_millis(1500) < end,
        "first {first:?}, end {end:?}"
    );
    let ev = sse_events(&all);
    assert_translated_stream(&ev, "bedrock-model");
    let last = ev.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["completion_tokens"], 5);
    assert!(all.ends_with("data: [DONE]\n\n"));

    // a tool call in a stream: its start, then its arguments in pieces, then tool_calls
    let (t, ev) = stream_with_tools(&gw, "bedrock-model", tools()).await;
    let calls = tool_call_deltas(&ev);
    assert_eq!(calls.len(), 3, "{t}");
    assert_eq!(calls[0]["id"], "tooluse_mock0001");
    assert_eq!(calls[0]["function"]["name"], "weather");
    assert!(calls.iter().all(|c| c["index"] == 0));
    let args: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"answer": "Olá do mock da"})
    );
    assert_eq!(
        ev.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );

    // the upstream breaking mid-stream, or sending an exception frame: the client's stream
    // ends without [DONE], after what had been translated
    // (frames 100 ms apart, so the first ones reach the client before the break)
    for h in [
        ("x-mock-fail-after-chunks", "3"),
        ("x-mock-exception", "throttlingException"),
    ] {
        let t = text(
            gw.post_with(
                "/v1/chat/completions",
                json!({"model": "bedrock-model", "stream": true, "messages": [{"role": "user", "content": "oi"}]}),
                &[h, ("x-mock-chunk-delay-ms", "100")],
            )
            .await,
        )
        .await;
        assert!(t.contains("\"content\":\"Olá\""), "{h:?}: {t}");
        assert!(!t.contains("[DONE]"), "{h:?}: {t}");
    }
}

/// A provider sending bytes that are not its framing: the client's stream ends with an error
/// event after what had been translated (never [DONE], never a panic), and the gateway goes
/// on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_hostile_stream_bytes_end_the_stream_cleanly() {
    let (b, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&b, &o).await;
    for corrupt in ["crc", "garbage"] {
        let t = text(
            gw.post_with(
                "/v1/chat/completions",
                json!({"model": "bedrock-model", "stream": true, "messages": [{"role": "user", "content": "oi"}]}),
                &[("x-mock-corrupt", corrupt), ("x-mock-chunk-delay-ms", "100")],
            )
            .await,
        )
        .await;
        assert!(t.contains("\"content\":\"Olá\""), "{corrupt}: {t}");
        assert!(!t.contains("\"content\":\" do\""), "{corrupt}: {t}");
        assert!(!t.contains("[DONE]"), "{corrupt}: {t}");
        assert!(t.contains("\"error\""), "{corrupt}: no error event: {t}");
    }
    let r = chat(
        &gw,
        KEY,
        json!({"model": "bedrock-model", "messages": [{"role": "user", "content": "oi"}]}),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_errors_are_mapped_and_fail_over_only_on_5xx_and_429() {
    let (b, o) = (Mock::start().await, Mock::start().await);
    let gw = Gateway::start_with_env(
        &format!(
            r#"failover: {{max_attempts: 2, failures_to_trip: 1000, cooldown_ms: 100}}
providers:
  - {{name: pb, kind: bedrock, region: us-east-1, base_url: "{b}", aws_access_key_id_env: CATRACA_TEST_AWS_ID, aws_secret_access_key_env: CATRACA_TEST_AWS_SECRET, forward_headers: [x-mock-*]}}
  - {{name: po, base_url: "{o}", forward_headers: [x-mock-*]}}
  - {{name: pwrong, kind: bedrock, region: us-east-1, base_url: "{b}", aws_access_key_id_env: CATRACA_TEST_AWS_ID, aws_secret_access_key_env: CATRACA_TEST_AWS_WRONG}}
  - {{name: pdefault, kind: bedrock, region: sa-east-1, base_url: "{b}"}}
deployments:
  - {{name: db, provider: pb, model: "{UP}", priority: 0}}
  - {{name: do, provider: po, model: openai-up, priority: 1}}
  - {{name: do2, provider: po, model: openai-up, priority: 0}}
  - {{name: db2, provider: pb, model: "{UP}", priority: 1}}
  - {{name: dwrong, provider: pwrong, model: "{UP}"}}
  - {{name: ddefault, provider: pdefault, model: "{UP}"}}
models:
  - {{name: b-then-o, deployments: [db, do]}}
  - {{name: o-then-b, deployments: [do2, db2]}}
  - {{name: wrong-secret, deployments: [dwrong]}}
  - {{name: unknown-key, deployments: [ddefault]}}
"#,
            b = bbase(&b),
            o = o.base(),
        ),
        &[
            ENV[0],
            ENV[1],
            ("CATRACA_TEST_AWS_WRONG", "not-the-secret"),
            // the default variable names, with a key id the mock does not know
            ("AWS_ACCESS_KEY_ID", "AKIDUNKNOWN"),
            ("AWS_SECRET_ACCESS_KEY", "whatever"),
        ],
    )
    .await;
    let msg = json!([{"role": "user", "content": "oi"}]);

    // Bedrock's 400 ValidationException and 404 reach the client as OpenAI's; never failed over
    let before = o.requests().await;
    for (status, kind) in [(400, "invalid_request_error"), (404, "not_found_error")] {
        let r = chat(
            &gw,
            KEY,
            json!({"model": "b-then-o", "messages": msg}),
            &[("x-mock-status", &status.to_string())],
        )
        .await;
        assert_eq!(r.status, status, "{:?}", r.body);
        assert_eq!(r.body["error"]["type"], kind);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("mock")
        );
        assert_eq!(o.requests().await, before, "a client error was failed over");
    }

    // a wrong secret: the mock's own SigV4 check answers 403 InvalidSignatureException, the
    // client gets OpenAI's 401; an unknown key id likewise (UnrecognizedClientException)
    for model in ["wrong-secret", "unknown-key"] {
        let r = chat(&gw, KEY, json!({"model": model, "messages": msg}), &[]).await;
        assert_eq!(r.status, 401, "{model}: {:?}", r.body);
        assert_eq!(r.body["error"]["type"], "authentication_error", "{model}");
    }
    let r = chat(
        &gw,
        KEY,
        json!({"model": "wrong-secret", "messages": msg}),
        &[],
    )
    .await;
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signature we calculated does not match"),
        "{:?}",
        r.body
    );

    // 503 ServiceUnavailable and 429 Throttling: the OpenAI deployment answers
    assert_fails_over_to_openai(&gw, &b, "b-then-o", &[503, 429], &msg).await;
    // the signature is checked before the failure knobs, as AWS checks it first
    let r = chat(
        &gw,
        KEY,
        json!({"model": "wrong-secret", "messages": msg}),
        &[],
    )
    .await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    b.set(json!({"fail_rate": 0.0})).await;

    // and the other way: the OpenAI deployment fails with 500, Bedrock answers, translated
    o.set(json!({"fail_status": 500, "fail_rate": 1.0})).await;
    assert_fails_over_from_openai(&gw, "o-then-b", &msg).await;
    let ev = gw.wait_events(10).await;
    let last = ev.last().unwrap();
    assert_eq!(last["deployment"], "db2");
    assert_eq!(last["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_untranslatable_requests_are_400s_naming_the_field_before_any_call() {
    let (b, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&b, &o).await;
    let cases = [
        (json!({"n": 2}), "n"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"seed": 7}), "seed"),
        (json!({"frequency_penalty": 1.5}), "frequency_penalty"),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://img.test/gato.png"}}]}]}),
            "messages[0].content[0].image_url.url",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"tools": tools(), "response_format": {"type": "json_object"}}),
            "response_format",
        ),
    ];
    for (patch, field) in cases {
        let mut body =
            json!({"model": "bedrock-model", "messages": [{"role": "user", "content": "oi"}]});
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = chat(&gw, KEY, body, &[]).await;
        assert_eq!(r.status, 400, "{field}: {:?}", r.body);
        let m = r.body["error"]["message"].as_str().unwrap();
        assert!(m.starts_with(&format!("{field}:")), "{field}: {m}");
    }
    // several inputs for Titan embeddings: one text a call
    let r = gw
        .post(
            "/v1/embeddings",
            json!({"model": "emb-bedrock", "input": ["a", "b"]}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("input:"),
        "{v}"
    );
    assert_eq!(
        b.requests().await,
        0,
        "an untranslatable request reached Bedrock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bedrock_embeddings_match_the_same_vectors_in_float_and_base64() {
    let (b, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&b, &o).await;
    let input = "catraca em São Paulo";
    let r = gw
        .post(
            "/v1/embeddings",
            json!({"model": "emb-bedrock", "input": [input], "dimensions": 256}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let bv: Value = r.json().await.unwrap();
    let st = b.stats().await;
    assert_eq!(
        st["last_body"],
        json!({"inputText": input, "dimensions": 256})
    );
    assert!(
        st["last_headers"]["authorization"]
            .as_str()
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256 ")
    );
    // the OpenAI mock's vectors come from the same bag of words: they must be equal
    let ov: Value = gw
        .post(
            "/v1/embeddings",
            json!({"model": "emb-openai", "input": [input], "dimensions": 256}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bv["object"], "list");
    assert_eq!(bv["model"], "emb-bedrock");
    assert_eq!(bv["data"][0]["index"], 0);
    assert_eq!(bv["data"][0]["embedding"], ov["data"][0]["embedding"]);
    // Titan's inputTextTokenCount (the mock's: 4 words) is the usage, and is billed
    assert_eq!(bv["usage"]["prompt_tokens"], 4);
    // base64 (the SDKs' default): little-endian f32s of the same vector
    let b64: Value = gw
        .post(
            "/v1/embeddings",
            json!({"model": "emb-bedrock", "input": input, "dimensions": 256, "encoding_format": "base64"}),
        )
        .await
        .json()
        .await
        .unwrap();
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw.len(), 256 * 4);
    let want = ov["data"][0]["embedding"].as_array().unwrap();
    for (c, w) in raw.chunks(4).zip(want) {
        let x = f32::from_le_bytes(c.try_into().unwrap()) as f64;
        assert!((x - w.as_f64().unwrap()).abs() < 1e-6);
    }
    let ev = gw.wait_events(3).await;
    let first = ev.iter().find(|e| e["deployment"] == "dbe").unwrap();
    assert_eq!(first["status"], 200);
    assert_eq!(first["usage_reported"], true);
    assert_eq!(first["prompt_tokens"], 4);
    assert_eq!(first["cost_upstream_usd_micros"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk_works_against_a_bedrock_deployment() {
    let python = sdk_python("openai");
    let (b, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&b, &o).await;
    let stdout = run_sdk_script(
        &python,
        "dialect_embeddings_sdk_check.py",
        &gw.url("/v1"),
        &[("CATRACA_DIALECT", "bedrock")],
    )
    .await;
    assert!(stdout.contains("all bedrock SDK checks passed"), "{stdout}");
}

/// `check-config`'s errors for the Bedrock fields, each at its line and column.
#[test]
fn bedrock_config_fields_are_checked_with_positions() {
    let env = |name: &str| match name {
        "AWS_ACCESS_KEY_ID" => Some("AKID".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("secret".to_string()),
        "MY_ID" => Some("AKID2".to_string()),
        _ => None,
    };
    let errors = |yaml: &str| -> Vec<(u64, u64, String)> {
        match catraca::config::resolve::parse_str(yaml, Path::new("c.yaml"), &env) {
            Ok(_) => Vec::new(),
            Err(es) => es
                .into_iter()
                .map(|e| (e.line, e.column, e.message))
                .collect(),
        }
    };
    let tail = "deployments:\n  - {name: d, provider: p, model: m}\nmodels:\n  - {name: x, deployments: [d]}\n";
    // defaults: credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
    let ok = format!(
        "providers:\n  - name: p\n    kind: bedrock\n    region: us-east-1\n    base_url: https://bedrock-runtime.us-east-1.amazonaws.com\n{tail}"
    );
    assert_eq!(errors(&ok), Vec::new());
    let c = catraca::config::resolve::parse_str(&ok, Path::new("c.yaml"), &env).unwrap();
    let aws = c.providers[0].aws.as_ref().unwrap();
    assert_eq!(
        (
            aws.region.as_str(),
            aws.credentials.access_key_id.as_str(),
            aws.credentials.session_token.as_deref()
        ),
        ("us-east-1", "AKID", None)
    );
    assert!(
        !format!("{:?}", aws).contains("secret"),
        "the secret must not be printed"
    );

    // no region
    let e = errors(&format!(
        "providers:\n  - name: p\n    kind: bedrock\n    base_url: https://b.test\n{tail}"
    ));
    assert!(
        e.iter().any(
            |(l, _, m)| *l == 2 && m.contains("providers[0].region: required for kind bedrock")
        ),
        "{e:?}"
    );
    // a bad region, an unset variable named explicitly, at their own positions
    let e = errors(&format!(
        "providers:\n  - name: p\n    kind: bedrock\n    region: US East\n    aws_access_key_id_env: MY_ID\n    aws_secret_access_key_env: NOT_SET\n    base_url: https://b.test\n{tail}"
    ));
    assert!(
        e.iter().any(|(l, c, m)| (*l, *c) == (4, 13)
            && m.contains("region: \"US East\" is not an AWS region")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|(l, c, m)| (*l, *c) == (6, 32)
            && m.contains("aws_secret_access_key_env: environment variable NOT_SET is not set")),
        "{e:?}"
    );
    assert!(
        !e.iter()
            .any(|(_, _, m)| m.contains("aws_access_key_id_env")),
        "{e:?}"
    );
    // Bedrock's fields on another kind
    let e = errors(&format!(
        "providers:\n  - name: p\n    kind: gemini\n    region: us-east-1\n    aws_session_token_env: T\n    base_url: https://b.test\n{tail}"
    ));
    assert!(
        e.iter().any(|(l, _, m)| *l == 4
            && m.contains("providers[0].region: only for kind bedrock (this provider is gemini)")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|(l, _, m)| *l == 5 && m.contains("aws_session_token_env: only for kind bedrock")),
        "{e:?}"
    );
    // no credentials at all
    let none = |_: &str| None;
    let e = catraca::config::resolve::parse_str(&ok, Path::new("c.yaml"), &none).unwrap_err();
    assert!(
        e.iter().any(|x| x
            .message
            .contains("environment variable AWS_ACCESS_KEY_ID is not set")),
        "{e:?}"
    );
}
