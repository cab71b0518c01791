//! The rest of OpenAI's surface (issue 16, items 5 and 6) through the real gateway and the
//! mock over loopback: `/v1/responses` (whole and streamed, metered from its `usage`, the 400 on
//! a model with no OpenAI-kind deployment), `GET /v1/models/{id}`, `/v1/moderations`,
//! `/v1/audio/speech` (audio streamed out as it comes), `/v1/audio/translations`,
//! `/v1/images/edits`, `/v1/rerank`; each one's usage event and exact cost; hostile input;
//! the same routes without the `/v1` prefix; and the official OpenAI Python SDK against them.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::dialect::{run_sdk_script, sdk_python};
use crate::common::{Gateway, KEY, Mock};

/// fx 5.0 and markup 1.0: every BRL amount is five times the USD one.
fn config(mock: &Mock) -> String {
    format!(
        r#"pricing: {{fx_usd_brl: "5.0", default_markup: "1.0"}}
failover: {{max_attempts: 2}}
providers:
  - {{name: p, base_url: "{base}", forward_headers: [x-mock-*]}}
  - {{name: claude, kind: anthropic, base_url: "{base}", forward_headers: [x-mock-*]}}
deployments:
  - {{name: d, provider: p, model: up}}
  - {{name: d2, provider: p, model: up2, priority: 1}}
  - {{name: dc, provider: claude, model: claude-up, priority: 0}}
  - {{name: dmod, provider: p, model: up-mod}}
  - {{name: dtts, provider: p, model: up-tts}}
  - {{name: dwhisper, provider: p, model: up-whisper}}
  - {{name: dimg, provider: p, model: up-img}}
  - {{name: drr, provider: p, model: up-rr}}
models:
  - {{name: chat-model, aliases: [vendor/chat], input_usd_per_1m: "1.25", cached_input_usd_per_1m: "0.125", output_usd_per_1m: "10", deployments: [d]}}
  - {{name: claude-only, deployments: [dc]}}
  - {{name: mixed, deployments: [dc, d2]}}
  - {{name: mod-model, category: moderation, input_usd_per_1m: "50", tokenizer: bytes, deployments: [dmod]}}
  - {{name: tts, category: speech, usd_per_1m_chars: "15", deployments: [dtts]}}
  - {{name: whisper, category: audio, usd_per_audio_second: "0.0001", deployments: [dwhisper]}}
  - {{name: img, category: image, usd_per_image: "0.04", deployments: [dimg]}}
  - {{name: rr, category: rerank, usd_per_search: "0.002", deployments: [drr]}}
"#,
        base = mock.base()
    )
}

async fn start() -> (Mock, Gateway) {
    let mock = Mock::start().await;
    let gw = Gateway::start(&config(&mock)).await;
    (mock, gw)
}

/// The usage event of the request with this `x-request-id`.
async fn event_of(gw: &Gateway, request_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(e) = gw
            .events()
            .into_iter()
            .find(|e| e["request_id"] == request_id)
        {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "no usage event for {request_id}: {:?}",
            gw.events()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn rid(r: &reqwest::Response) -> String {
    r.headers()["x-request-id"].to_str().unwrap().to_string()
}

fn assert_cost(e: &Value, usd: i64) {
    assert_eq!(e["cost_upstream_usd_micros"], usd, "{e}");
    assert_eq!(e["cost_billed_brl_micros"], usd * 5, "{e}");
}

/// One multipart form: `(name, filename, bytes)` parts in order.
fn form(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, file, content) in parts {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(f) = file {
            b.extend_from_slice(
                format!("; filename=\"{f}\"\r\nContent-Type: application/octet-stream").as_bytes(),
            );
        }
        b.extend_from_slice(b"\r\n\r\n");
        b.extend_from_slice(content);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    b
}

async fn post_form(gw: &Gateway, path: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(gw.url(path))
        .bearer_auth(KEY)
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_pass_through_and_are_metered_from_their_usage() {
    let (mock, gw) = start().await;
    // whole: 3 input words (2 of them cached); 4 words out + 5 reasoning tokens
    let r = gw
        .post_with(
            "/v1/responses",
            json!({"model": "chat-model", "input": "um dois tres", "store": false}),
            &[
                ("x-mock-reasoning-tokens", "5"),
                ("x-mock-cached-tokens", "2"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let id = rid(&r);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(v["output"][0]["content"][0]["text"], "Olá do mock da");
    assert_eq!(v["usage"]["input_tokens"], 3);
    assert_eq!(v["usage"]["output_tokens"], 9);
    // the upstream got the client's body with the deployment's model, and nothing injected
    let st = mock.stats().await;
    assert_eq!(
        st["last_body"],
        json!({"model": "up", "input": "um dois tres", "store": false})
    );
    let e = event_of(&gw, &id).await;
    assert_eq!(e["route"], "responses");
    assert_eq!(e["deployment"], "d");
    assert_eq!(
        (e["prompt_tokens"].as_u64(), e["completion_tokens"].as_u64()),
        (Some(3), Some(9))
    );
    assert_eq!(e["usage_reported"], true);
    assert_eq!(
        (e["cached_tokens"].as_u64(), e["reasoning_tokens"].as_u64()),
        (Some(2), Some(5))
    );
    // 1 × $1.25/1M + 2 cached × $0.125/1M + 9 × $10/1M = 1.25 + 0.25 + 90 = 91.5 → 92
    // micro-USD; BRL from the exact amount: 457.5 → 458
    assert_eq!(e["cost_upstream_usd_micros"], 92);
    assert_eq!(e["cost_billed_brl_micros"], 458);

    // streamed: the events go through as they are, the usage read from response.completed
    let r = gw
        .post_with(
            "/v1/responses",
            json!({"model": "chat-model", "input": [{"role": "user", "content": "um dois"}], "stream": true}),
            &[("x-mock-chunks", "6")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let id = rid(&r);
    let body = r.text().await.unwrap();
    let deltas = body.matches("event: response.output_text.delta\n").count();
    assert_eq!(deltas, 6, "{body}");
    assert!(body.contains("event: response.completed\n"), "{body}");
    assert!(!body.contains("stream_options"), "{body}");
    let st = mock.stats().await;
    assert!(st["last_body"].get("stream_options").is_none(), "{st}");
    let e = event_of(&gw, &id).await;
    assert_eq!(e["stream"], true);
    // input: the mock counts every word of `input` ("user", "um", "dois"); output 6
    assert_eq!(
        (e["prompt_tokens"].as_u64(), e["completion_tokens"].as_u64()),
        (Some(3), Some(6))
    );
    // 3 × 1.25 + 6 × 10 = 63.75 → 64; BRL 318.75 → 319
    assert_eq!(e["cost_upstream_usd_micros"], 64);
    assert_eq!(e["cost_billed_brl_micros"], 319);

    // never buffered: the first event reaches the client long before the upstream's last
    let t0 = Instant::now();
    let r = gw
        .post_with(
            "/v1/responses",
            json!({"model": "chat-model", "input": "oi", "stream": true}),
            &[("x-mock-chunks", "4"), ("x-mock-chunk-delay-ms", "150")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let mut s = r.bytes_stream();
    let mut first = None;
    let mut body = Vec::new();
    while let Some(c) = s.next().await {
        let c = c.unwrap();
        if first.is_none() && !c.is_empty() {
            first = Some(t0.elapsed());
        }
        body.extend_from_slice(&c);
    }
    let (first, total) = (first.unwrap(), t0.elapsed());
    // 12 events 150 ms apart
    assert!(total >= Duration::from_millis(1500), "{total:?}");
    assert!(
        first + Duration::from_millis(1000) < total,
        "first event at {first:?}, end at {total:?}"
    );
    assert!(String::from_utf8(body).unwrap().ends_with("\n\n"));

    // an absurd usage report is not believed: the input is counted with the tokenizer instead
    let r = gw
        .post_with(
            "/v1/responses",
            json!({"model": "chat-model", "input": "um dois tres"}),
            &[(
                "x-mock-usage",
                r#"{"input_tokens": 9223372036854775807, "output_tokens": 1}"#,
            )],
        )
        .await;
    assert_eq!(r.status(), 200);
    let e = event_of(&gw, &rid(&r)).await;
    assert_eq!(e["usage_reported"], false, "{e}");
    assert!(e["prompt_tokens"].as_u64().unwrap() < 100, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_need_an_openai_kind_deployment() {
    let (mock, gw) = start().await;
    let before = mock.requests().await;
    let r = gw
        .post(
            "/v1/responses",
            json!({"model": "claude-only", "input": "oi"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("claude-only") && msg.contains("responses") && msg.contains("anthropic"),
        "{msg}"
    );
    assert_eq!(mock.requests().await, before, "no upstream call");
    // a model with an Anthropic deployment first and an OpenAI one after: the OpenAI one serves
    let r = gw
        .post("/v1/responses", json!({"model": "mixed", "input": "oi"}))
        .await;
    assert_eq!(r.status(), 200);
    let e = event_of(&gw, &rid(&r)).await;
    assert_eq!(e["deployment"], "d2");
    assert_eq!(e["attempts"], 1);
    assert_eq!(mock.stats().await["last_body"]["model"], "up2");
    assert_eq!(mock.requests().await, before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_retrieve_answers_one_catalog_entry() {
    let (mock, gw) = start().await;
    let get = |path: &str, key: Option<&str>| {
        let mut rb = reqwest::Client::new().get(gw.url(path));
        if let Some(k) = key {
            rb = rb.bearer_auth(k);
        }
        rb.send()
    };
    for path in [
        "/v1/models/chat-model",
        "/models/chat-model",
        "/v1/models/vendor/chat",
        "/v1/models/vendor%2Fchat",
    ] {
        let r = get(path, Some(KEY)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let v: Value = r.json().await.unwrap();
        let want = if path.contains("vendor") {
            "vendor/chat"
        } else {
            "chat-model"
        };
        assert_eq!(v["id"], want, "{path}");
        assert_eq!(v["object"], "model");
        assert_eq!(v["owned_by"], "catraca");
        assert_eq!(v["category"], "chat");
    }
    // the same item as the list has
    let list: Value = get("/v1/models", None).await.unwrap().json().await.unwrap();
    let item = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "tts")
        .unwrap()
        .clone();
    let r = get("/v1/models/tts", None).await.unwrap();
    let id = rid(&r);
    let one: Value = r.json().await.unwrap();
    assert_eq!(one, item);
    let e = event_of(&gw, &id).await;
    assert_eq!(
        (e["route"].as_str(), e["status"].as_u64()),
        (Some("models.retrieve"), Some(200))
    );
    assert_eq!(
        e["cost_upstream_usd_micros"],
        Value::Null,
        "not priced: {e}"
    );
    // unknown: 404 in OpenAI's shape; a bad key: 401; a POST: 405
    let r = get("/v1/models/no-such", Some(KEY)).await.unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_found", "{v}");
    assert_eq!(
        get("/v1/models/chat-model", Some("sk-wrong"))
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(get("/v1/models/%FF%FE", None).await.unwrap().status(), 400);
    let r = gw.post("/v1/models/chat-model", json!({})).await;
    assert_eq!(r.status(), 405);
    assert_eq!(mock.requests().await, 0, "answered by the gateway");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderations_are_priced_per_input_token() {
    let (mock, gw) = start().await;
    let r = gw
        .post(
            "/v1/moderations",
            json!({"model": "mod-model", "input": "I will kill the process"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let id = rid(&r);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["results"][0]["flagged"], true);
    assert_eq!(v["results"][0]["categories"]["violence"], true);
    assert_eq!(mock.stats().await["last_body"]["model"], "up-mod");
    let e = event_of(&gw, &id).await;
    assert_eq!(e["route"], "moderations");
    // the answer has no usage: 23 bytes of input with the `bytes` tokenizer = 6 tokens
    assert_eq!(e["usage_reported"], false);
    assert_eq!(
        (e["prompt_tokens"].as_u64(), e["completion_tokens"].as_u64()),
        (Some(6), Some(0))
    );
    assert_cost(&e, 300); // 6 × $50/1M
    for bad in [
        json!({"model": "mod-model"}),
        json!({"model": "mod-model", "input": 5}),
    ] {
        let r = gw.post("/v1/moderations", bad).await;
        assert_eq!(r.status(), 400);
    }
    // a chat model is not a moderation model
    let r = gw
        .post(
            "/v1/moderations",
            json!({"model": "chat-model", "input": "x"}),
        )
        .await;
    assert_eq!(r.status(), 400);
}

/// The mock's speech bytes (see `mock_upstream::surface::speech_chunk`).
fn speech_chunk(i: usize, len: usize) -> Vec<u8> {
    let mut c: Vec<u8> = (0..len).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
    if i == 0 {
        c[..3].copy_from_slice(b"ID3");
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_streams_audio_out_and_is_priced_per_character() {
    let (mock, gw) = start().await;
    let t0 = Instant::now();
    let r = gw
        .post_with(
            "/v1/audio/speech",
            json!({"model": "tts", "input": "Olá, São Paulo", "voice": "alloy"}),
            &[
                ("x-mock-chunks", "5"),
                ("x-mock-chunk-bytes", "4096"),
                ("x-mock-chunk-delay-ms", "300"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/mpeg");
    let id = rid(&r);
    let mut got = Vec::new();
    let mut first = None;
    let mut s = r.bytes_stream();
    while let Some(c) = s.next().await {
        let c = c.unwrap();
        if first.is_none() && !c.is_empty() {
            first = Some(t0.elapsed());
        }
        got.extend_from_slice(&c);
    }
    let total = t0.elapsed();
    let want: Vec<u8> = (0..5).flat_map(|i| speech_chunk(i, 4096)).collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the audio bytes arrive unchanged");
    // never buffered: the first chunk is at the client long before the upstream's last
    let first = first.unwrap();
    assert!(total >= Duration::from_millis(1200), "{total:?}");
    assert!(
        first + Duration::from_millis(900) < total,
        "first chunk at {first:?}, end at {total:?}"
    );
    assert_eq!(mock.stats().await["last_body"]["model"], "up-tts");
    let e = event_of(&gw, &id).await;
    assert_eq!(e["route"], "audio.speech");
    assert_eq!(e["status"], 200);
    // 14 characters × $15/1M = 210 micro-USD (characters, not the 16 bytes)
    assert_cost(&e, 210);

    // hostile or missing input: the client's 400, before any upstream call
    let before = mock.requests().await;
    let long = "a".repeat(100_001);
    for bad in [
        json!({"model": "tts", "voice": "alloy"}),
        json!({"model": "tts", "input": "", "voice": "alloy"}),
        json!({"model": "tts", "input": ["a"], "voice": "alloy"}),
        json!({"model": "tts", "input": long, "voice": "alloy"}),
    ] {
        let r = gw.post("/v1/audio/speech", bad).await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("input:"),
            "{v}"
        );
    }
    assert_eq!(mock.requests().await, before);
    // a failed speech costs nothing
    let r = gw
        .post_with(
            "/v1/audio/speech",
            json!({"model": "tts", "input": "oi", "voice": "alloy"}),
            &[("x-mock-status", "400")],
        )
        .await;
    assert_eq!(r.status(), 400);
    let e = event_of(&gw, &rid(&r)).await;
    assert_cost(&e, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn translations_and_image_edits_are_multipart_and_priced() {
    let (mock, gw) = start().await;
    let body = form(
        "XyZ",
        &[
            ("model", None, b"whisper"),
            ("file", Some("a.wav"), &[7u8; 5000][..]),
        ],
    );
    let r = post_form(&gw, "/v1/audio/translations", body).await;
    assert_eq!(r.status(), 200);
    let id = rid(&r);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["text"], "Hello from catraca's mock.");
    let e = event_of(&gw, &id).await;
    assert_eq!(e["route"], "audio.translations");
    assert_eq!(e["deployment"], "dwhisper");
    assert_cost(&e, 300); // 3 s × $0.0001

    // image edits: `n` counts wherever it sits in the form, even after a large image
    for (parts_n_first, n) in [(true, 3u64), (false, 2)] {
        let image = vec![9u8; 200 * 1024];
        let n_text = n.to_string();
        let mut parts: Vec<(&str, Option<&str>, &[u8])> =
            vec![("model", None, b"img"), ("prompt", None, b"a hat")];
        if parts_n_first {
            parts.push(("n", None, n_text.as_bytes()));
        }
        parts.push(("image", Some("a.png"), &image));
        if !parts_n_first {
            parts.push(("n", None, n_text.as_bytes()));
        }
        let r = post_form(&gw, "/v1/images/edits", form("XyZ", &parts)).await;
        assert_eq!(r.status(), 200);
        let id = rid(&r);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["data"].as_array().unwrap().len() as u64, n, "{v}");
        let e = event_of(&gw, &id).await;
        assert_eq!(e["route"], "images.edits");
        assert_cost(&e, 40_000 * n as i64);
    }
    let st = mock.stats().await;
    assert!(st["upload_bytes"].as_u64().unwrap() > 400 * 1024, "{st}");

    // hostile forms: 400, no upstream call
    let before = mock.requests().await;
    for parts in [
        vec![
            ("model", None, &b"img"[..]),
            ("n", None, &b"11"[..]),
            ("image", Some("a.png"), &b"x"[..]),
        ],
        vec![
            ("model", None, &b"img"[..]),
            ("n", None, &b"0"[..]),
            ("image", Some("a.png"), &b"x"[..]),
        ],
        vec![
            ("model", None, &b"img"[..]),
            ("n", None, &b"two"[..]),
            ("image", Some("a.png"), &b"x"[..]),
        ],
        vec![
            ("model", None, &b"img"[..]),
            ("n", None, &b"99999999999999999999999"[..]),
        ],
        vec![
            ("model", None, &b"img"[..]),
            ("prompt", None, &b"no image"[..]),
        ],
        vec![
            ("model", None, &b"whisper"[..]),
            ("image", Some("a.png"), &b"x"[..]),
        ],
    ] {
        let r = post_form(&gw, "/v1/images/edits", form("XyZ", &parts)).await;
        assert_eq!(r.status(), 400, "{parts:?}");
    }
    // a form that never closes
    let mut open = form(
        "XyZ",
        &[("model", None, b"img"), ("image", Some("a.png"), b"x")],
    );
    open.truncate(open.len() - 10);
    assert_eq!(post_form(&gw, "/v1/images/edits", open).await.status(), 400);
    assert_eq!(mock.requests().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerank_is_priced_per_search() {
    let (mock, gw) = start().await;
    let mut docs: Vec<String> = (0..150).map(|i| format!("documento numero {i}")).collect();
    docs[42] = "the catraca gateway reranks documents".into();
    docs[7] = "a gateway".into();
    let r = gw
        .post(
            "/v1/rerank",
            json!({"model": "rr", "query": "catraca gateway", "documents": docs, "top_n": 2}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let id = rid(&r);
    let v: Value = r.json().await.unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["index"], 42, "{v}");
    assert_eq!(results[1]["index"], 7, "{v}");
    assert!(results[0]["relevance_score"].as_f64() > results[1]["relevance_score"].as_f64());
    assert_eq!(mock.stats().await["last_body"]["model"], "up-rr");
    let e = event_of(&gw, &id).await;
    assert_eq!(e["route"], "rerank");
    // 150 documents = 2 searches × $0.002
    assert_cost(&e, 4_000);

    let before = mock.requests().await;
    for bad in [
        json!({"model": "rr", "documents": ["a"]}),
        json!({"model": "rr", "query": "q", "documents": []}),
        json!({"model": "rr", "query": "q", "documents": "a"}),
        json!({"model": "rr", "query": "q", "documents": ["a"], "top_n": 0}),
        json!({"model": "rr", "query": "q", "documents": ["a"], "top_n": 1e300}),
        json!({"model": "chat-model", "query": "q", "documents": ["a"]}),
    ] {
        let r = gw.post("/v1/rerank", bad.clone()).await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    assert_eq!(mock.requests().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_openai_route_answers_without_the_v1_prefix() {
    let (mock, gw) = start().await;
    let cases = [
        (
            "/chat/completions",
            json!({"model": "chat-model", "messages": [{"role": "user", "content": "oi"}]}),
            "chat.completions",
        ),
        (
            "/responses",
            json!({"model": "chat-model", "input": "oi"}),
            "responses",
        ),
        (
            "/moderations",
            json!({"model": "mod-model", "input": "oi"}),
            "moderations",
        ),
        (
            "/audio/speech",
            json!({"model": "tts", "input": "oi", "voice": "alloy"}),
            "audio.speech",
        ),
        (
            "/rerank",
            json!({"model": "rr", "query": "q", "documents": ["a"]}),
            "rerank",
        ),
    ];
    for (path, body, label) in cases {
        let r = gw.post(path, body).await;
        assert_eq!(r.status(), 200, "{path}");
        let e = event_of(&gw, &rid(&r)).await;
        assert_eq!(e["route"], label);
    }
    let r = reqwest::get(gw.url("/models")).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["data"].as_array().unwrap().len() >= 8);
    let body = form(
        "XyZ",
        &[("model", None, b"whisper"), ("file", Some("a.wav"), b"x")],
    );
    assert_eq!(
        post_form(&gw, "/audio/translations", body).await.status(),
        200
    );
    // other contracts' routes are not doubled: `/ocr` is not SabIA's `/v1/ocr`
    let r = gw.post("/ocr", json!({})).await;
    assert_ne!(r.status(), 200);
    assert!(mock.requests().await >= 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_on_the_new_routes_are_4xx() {
    let (mock, gw) = start().await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let bodies: Vec<Vec<u8>> = vec![
        b"{\"model\": \"tts\", \"input\": \"a\0b\"}".to_vec(),
        b"{\"model\": \"tts\", \"input\": \"\xff\xfe\"}".to_vec(),
        format!("{{\"model\": \"rr\", \"query\": \"q\", \"documents\": {deep}}}").into_bytes(),
        b"{\"model\": \"chat-model\", \"input\": ".to_vec(),
        b"\x00\x01\x02".to_vec(),
        // absurd numbers
        br#"{"model": "rr", "query": "q", "documents": ["a"], "top_n": 18446744073709551616}"#
            .to_vec(),
        br#"{"model": "tts", "input": 1e999}"#.to_vec(),
    ];
    // (an over-large body is the same JSON path as chat's, covered by tests/hostile.rs)
    for path in [
        "/v1/responses",
        "/v1/moderations",
        "/v1/audio/speech",
        "/v1/rerank",
    ] {
        for b in &bodies {
            let r = reqwest::Client::new()
                .post(gw.url(path))
                .bearer_auth(KEY)
                .header("content-type", "application/json")
                .body(b.clone())
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            assert!(
                (400..500).contains(&s),
                "{path}: {s} for {:?}",
                String::from_utf8_lossy(&b[..b.len().min(60)])
            );
        }
    }
    assert_eq!(mock.requests().await, 0);
    // multipart with a broken boundary, and JSON where a form is due
    let r = reqwest::Client::new()
        .post(gw.url("/v1/images/edits"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk_uses_the_whole_surface() {
    let python = sdk_python("openai");
    let (_mock, gw) = start().await;
    let stdout = run_sdk_script(&python, "openai_surface_check.py", &gw.url("/v1"), &[]).await;
    assert!(stdout.contains("all surface checks passed"), "{stdout}");
    // one usage event per SDK call that reached a model, each priced
    let ev = gw.events();
    for route in [
        "responses",
        "moderations",
        "audio.speech",
        "audio.translations",
        "images.edits",
    ] {
        assert!(
            ev.iter().any(|e| e["route"] == route && e["status"] == 200),
            "{route}: {ev:?}"
        );
    }
}
