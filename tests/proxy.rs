//! Proxying: routes, streaming, usage injection and hiding, usage events, metrics.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::{Gateway, Mock, text};

fn one_model(mock: &Mock) -> String {
    format!(
        r#"providers:
  - {{name: p, base_url: "{}", forward_headers: [x-mock-*]}}
deployments:
  - {{name: d-chat, provider: p, model: upstream-chat}}
  - {{name: d-emb, provider: p, model: upstream-emb}}
  - {{name: d-img, provider: p, model: upstream-img}}
  - {{name: d-audio, provider: p, model: upstream-audio}}
  - {{name: d-instr, provider: p, model: upstream-instr}}
models:
  - {{name: chat-model, aliases: [chat-alias], deployments: [d-chat]}}
  - {{name: emb-model, category: embedding, deployments: [d-emb]}}
  - {{name: img-model, category: image, deployments: [d-img]}}
  - {{name: audio-model, category: audio, deployments: [d-audio]}}
  - {{name: instr-model, category: completion, deployments: [d-instr]}}
"#,
        mock.base()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streaming_chat_passes_fields_and_rewrites_model() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&one_model(&mock)).await;
    let body = json!({
        "model": "chat-alias",
        "messages": [{"role": "user", "content": "um dois tres"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "response_format": {"type": "json_object"},
        "n": 1, "seed": 42, "temperature": 0.5, "x_vendor_field": [1, 2, 3]
    });
    let r = gw
        .post_with(
            "/v1/chat/completions",
            body.clone(),
            &[("x-session-id", "sess-1")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-request-id").is_some());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Olá do mock da");
    assert_eq!(v["usage"]["prompt_tokens"], 7);

    // upstream got every field untouched except the model, and not the client's key
    let st = mock.stats().await;
    let mut sent = body.clone();
    sent["model"] = json!("upstream-chat");
    assert_eq!(st["last_body"], sent);
    assert!(st["last_headers"].get("authorization").is_none());

    let ev = gw.wait_events(1).await;
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!(e["key"], "test");
    assert_eq!(e["model"], "chat-alias");
    assert_eq!(e["deployment"], "d-chat");
    assert_eq!(e["provider"], "p");
    assert_eq!(e["status"], 200);
    assert_eq!(e["prompt_tokens"], 7);
    assert_eq!(e["completion_tokens"], 4);
    assert_eq!(e["session_id"], "sess-1");
    assert_eq!(e["attempts"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_hides_injected_usage_but_records_it() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&one_model(&mock)).await;
    let r = gw
        .post(
            "/v1/chat/completions",
            json!({"model": "chat-model", "stream": true, "messages": [{"role": "user", "content": "a b"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let t = text(r).await;
    assert!(
        !t.contains("\"usage\""),
        "usage leaked to a client that did not ask: {t}"
    );
    // four deltas, the finish_reason chunk, [DONE]
    assert_eq!(t.matches("data: ").count(), 6, "{t}");
    assert!(t.ends_with("data: [DONE]\n\n"));
    // the upstream was asked for usage
    let st = mock.stats().await;
    assert_eq!(st["last_body"]["stream_options"]["include_usage"], true);
    let ev = gw.wait_events(1).await;
    assert_eq!(ev[0]["stream"], true);
    assert_eq!(ev[0]["prompt_tokens"], 6);
    assert_eq!(ev[0]["completion_tokens"], 4);
    assert_eq!(ev[0]["usage_reported"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_keeps_usage_when_client_asked() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&one_model(&mock)).await;
    let r = gw
        .post(
            "/v1/chat/completions",
            json!({"model": "chat-model", "stream": true, "stream_options": {"include_usage": true},
                   "messages": [{"role": "user", "content": "a b"}]}),
        )
        .await;
    let t = text(r).await;
    assert_eq!(t.matches("\"usage\"").count(), 1, "{t}");
    assert_eq!(t.matches("data: ").count(), 7, "{t}");
    let ev = gw.wait_events(1).await;
    assert_eq!(ev[0]["completion_tokens"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_chunk_arrives_before_upstream_finishes() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&one_model(&mock)).await;
    let start = Instant::now();
    let r = gw
        .post_with(
            "/v1/chat/completions",
            json!({"model": "chat-model", "stream": true, "messages": []}),
            &[("x-mock-chunks", "6"), ("x-mock-chunk-delay-ms", "250")],
        )
        .await;
    let mut s = r.bytes_stream();
    let first = s.next().await.unwrap().unwrap();
    let t_first = start.elapsed();
    assert!(first.starts_with(b"data: "), "{first:?}");
    let mut rest = Vec::new();
    while let Some(c) = s.next().await {
        rest.extend_from_slice(&c.unwrap());
    }
    let t_end = start.elapsed();
    // the upstream spends >= 6 * 250 ms after its first chunk; the client must not wait for it
    assert!(
        t_end - t_first >= Duration::from_millis(1200),
        "first chunk at {t_first:?}, end at {t_end:?}: the stream was buffered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_images_completions_and_models() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&one_model(&mock)).await;

    let r = gw
        .post(
            "/v1/embeddings",
            json!({"model": "emb-model", "input": ["um", "dois tres"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(mock.stats().await["last_body"]["model"], "upstream-emb");

    let r = gw
        .post(
            "/v1/images/generations",
            json!({"model": "img-model", "prompt": "gato", "n": 2}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);

    let r = gw
        .post(
            "/v1/completions",
            json!({"model": "instr-model", "prompt": "diga oi"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "text_completion");

    let r = reqwest::Client::new()
        .get(gw.url("/v1/models"))
        .bearer_auth(crate::common::KEY)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "chat-model",
            "chat-alias",
            "emb-model",
            "img-model",
            "audio-model",
            "instr-model"
        ]
    );

    let ev = gw.wait_events(4).await;
    let emb = ev.iter().find(|e| e["route"] == "embeddings").unwrap();
    assert_eq!(emb["prompt_tokens"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_upload_is_streamed_through() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&one_model(&mock)).await;
    let boundary = "catracaBOUNDARY";
    let file = vec![b'x'; 3 * 1024 * 1024];
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\naudio-model\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n").as_bytes());
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let n = body.len() as u64;
    let r = reqwest::Client::new()
        .post(gw.url("/v1/audio/transcriptions"))
        .bearer_auth(crate::common::KEY)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["bytes_received"], n);
    let ev = gw.wait_events(1).await;
    assert_eq!(ev[0]["route"], "audio.transcriptions");
    assert_eq!(ev[0]["deployment"], "d-audio");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_stops_upstream_and_yields_one_event() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&one_model(&mock)).await;
    let r = gw
        .post_with(
            "/v1/chat/completions",
            json!({"model": "chat-model", "stream": true, "messages": []}),
            &[("x-mock-chunks", "40"), ("x-mock-chunk-delay-ms", "100")],
        )
        .await;
    let mut s = r.bytes_stream();
    let _ = s.next().await.unwrap().unwrap();
    drop(s); // the client goes away after the first chunk
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = mock.stats().await;
        if st["streams_aborted"] == 1 {
            assert_eq!(st["streams_completed"], 0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "upstream stream was not stopped: {st}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ev = gw.wait_events(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gw.events().len(), 1, "exactly one usage event: {ev:?}");
    assert_eq!(ev[0]["client_disconnected"], true);
    assert_eq!(ev[0]["error"], "client_disconnected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&one_model(&mock)).await;
    let r = gw
        .post(
            "/v1/chat/completions",
            json!({"model": "chat-model", "messages": []}),
        )
        .await;
    assert_eq!(r.status(), 200);
    gw.wait_events(1).await;
    let m = gw.metrics().await;
    assert!(
        m.contains(r#"catraca_requests_total{model="chat-model",provider="p",route="chat.completions",status="200"} 1"#),
        "{m}"
    );
    assert!(m.contains("catraca_request_duration_seconds_bucket"), "{m}");
    assert!(
        m.contains("catraca_time_to_first_token_seconds_bucket"),
        "{m}"
    );
    assert!(
        m.contains(r#"catraca_tokens_total{kind="completion",model="chat-model"} 4"#),
        "{m}"
    );
    assert!(
        m.contains(r#"catraca_upstream_attempts_total{deployment="d-chat",outcome="ok"} 1"#),
        "{m}"
    );
}

fn big_messages(n_bytes: usize) -> Value {
    let word = "palavra ";
    let content = word.repeat(n_bytes / word.len());
    json!([{"role": "system", "content": "s"}, {"role": "user", "content": content}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_64k_are_routed_and_forwarded_whole() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&one_model(&mock)).await;
    for (stream, size) in [(false, 300_000), (true, 100_000), (false, 2_000_000)] {
        let msgs = big_messages(size);
        let r = gw
            .post(
                "/v1/chat/completions",
                json!({"messages": msgs, "model": "chat-model", "stream": stream}),
            )
            .await;
        assert_eq!(r.status(), 200, "size {size}: {}", gw.log());
        let t = text(r).await;
        assert!(t.contains("Olá"), "{t}");
        let st = mock.stats().await;
        assert_eq!(st["last_body"]["messages"], msgs, "body altered in transit");
        assert_eq!(st["last_body"]["model"], "upstream-chat");
        if stream {
            assert!(!t.contains("\"usage\""));
            assert_eq!(st["last_body"]["stream_options"]["include_usage"], true);
        }
    }
    let ev = gw.wait_events(3).await;
    // words: 37500 of content, plus "system", "s", "user"; plus 3 per message
    assert_eq!(ev[0]["prompt_tokens"], 300_000 / 8 + 3 + 6);
    assert_eq!(ev[1]["usage_reported"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_request_bodies_small_and_large() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&one_model(&mock)).await;
    for size in [100, 200_000] {
        let body = json!({"model": "chat-model", "messages": big_messages(size)}).to_string();
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
            .as_bytes()
            .chunks(10_000)
            .map(|c| Ok(c.to_vec()))
            .collect();
        let r = reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(crate::common::KEY)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "chunked body of {size}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["model"], "upstream-chat");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_with_a_large_body_also_stops_upstream() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&one_model(&mock)).await;
    let r = gw
        .post_with(
            "/v1/chat/completions",
            json!({"model": "chat-model", "stream": true, "messages": big_messages(200_000)}),
            &[("x-mock-chunks", "40"), ("x-mock-chunk-delay-ms", "100")],
        )
        .await;
    let mut s = r.bytes_stream();
    let _ = s.next().await.unwrap().unwrap();
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(5);
    while mock.stats().await["streams_aborted"] != 1 {
        assert!(Instant::now() < deadline, "upstream stream was not stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ev = gw.wait_events(1).await;
    assert_eq!(ev[0]["client_disconnected"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_options_null_or_false_still_gets_usage_once() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&one_model(&mock)).await;
    for so in [json!(null), json!({"include_usage": false}), json!({})] {
        let raw = format!(
            r#"{{"model":"chat-model","stream":true,"stream_options":{so},"messages":[]}}"#
        );
        let r = reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(crate::common::KEY)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        let t = text(r).await;
        assert!(!t.contains("\"usage\""), "{so}: {t}");
        let st = mock.stats().await;
        assert_eq!(
            st["last_body"]["stream_options"],
            json!({"include_usage": true}),
            "{so}"
        );
    }
    // usage reached the gateway for each of them
    let ev = gw.wait_events(3).await;
    assert!(ev.iter().all(|e| e["usage_reported"] == true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_events_carry_exact_costs() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&format!(
        r#"pricing: {{fx_usd_brl: "5.4", default_markup: "1.0"}}
providers:
  - {{name: p, base_url: "{}", forward_headers: [x-mock-*]}}
deployments:
  - {{name: d, provider: p, model: up}}
models:
  - {{name: priced, input_usd_per_1m: "0.15", output_usd_per_1m: "0.60", markup_multiplier: "1.3", deployments: [d]}}
  - {{name: img, category: image, usd_per_image: "0.04", deployments: [d]}}
"#,
        mock.base()
    ))
    .await;
    let r = gw
        .post(
            "/v1/chat/completions",
            json!({"model": "priced", "messages": [{"role": "user", "content": "um dois tres"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = gw
        .post(
            "/v1/images/generations",
            json!({"model": "img", "prompt": "gato", "n": 2}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let ev = gw.wait_events(2).await;
    // 7 in × $0.15/1M + 4 out × $0.60/1M = 3.45 µUSD → 3; × 5.4 × 1.3 = 24.219 µBRL → 24
    assert_eq!(
        (
            ev[0]["cost_upstream_usd_micros"].as_i64(),
            ev[0]["cost_billed_brl_micros"].as_i64()
        ),
        (Some(3), Some(24))
    );
    // 2 images × $0.04 = $0.08; × 5.4 × 1.0 = R$ 0.432
    assert_eq!(
        (
            ev[1]["cost_upstream_usd_micros"].as_i64(),
            ev[1]["cost_billed_brl_micros"].as_i64()
        ),
        (Some(80_000), Some(432_000))
    );
}

/// The shipped `conf/catraca.yaml`, pointed at a mock, serves every AI route of the seed
/// contracts with the demo key: OpenAI's (chat, stream, completions, embeddings, images,
/// transcriptions, models) and SabIA's OCR and recognition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_config_serves_every_ai_route() {
    let mock = Mock::start().await;
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/catraca.yaml")).unwrap();
    let mock_addr = mock.addr.to_string();
    let gw = Gateway::start_edited("", &[], move |header| {
        // keep the test's listeners; everything else is the shipped file
        let mut out: String = header
            .lines()
            .filter(|l| {
                l.starts_with("listen:")
                    || l.starts_with("metrics_listen:")
                    || l.starts_with("admin_listen:")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        for l in shipped.lines() {
            if !(l.starts_with("listen:") || l.starts_with("metrics_listen:")) {
                out.push_str(
                    &l.replace("127.0.0.1:9100", &mock_addr)
                        .replace("catraca-usage.jsonl", "usage.jsonl"),
                );
                out.push('\n');
            }
        }
        out
    })
    .await;
    let demo = "sk-catraca-demo";
    let post = |path: &'static str, body: Value| {
        let url = gw.url(path);
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(demo)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let chat = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "oi"}]});
    assert_eq!(post("/v1/chat/completions", chat.clone()).await.0, 200);
    let mut stream = chat.clone();
    stream["stream"] = true.into();
    let (s, t) = post("/v1/chat/completions", stream).await;
    assert_eq!(s, 200);
    assert!(t.ends_with("data: [DONE]\n\n"), "{t}");
    for (path, body) in [
        (
            "/v1/completions",
            json!({"model": "gpt-3.5-turbo-instruct", "prompt": "oi"}),
        ),
        (
            "/v1/embeddings",
            json!({"model": "text-embedding-3-small", "input": "oi"}),
        ),
        (
            "/v1/images/generations",
            json!({"model": "dall-e-3", "prompt": "um gato"}),
        ),
    ] {
        let (s, t) = post(path, body).await;
        assert_eq!(s, 200, "{path}: {t}");
    }
    for (path, field, model) in [
        ("/v1/audio/transcriptions", "file", Some("whisper-1")),
        ("/v1/ocr", "image", None),
        ("/v1/recognition", "document", None),
    ] {
        let mut body = format!(
            "--B\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"x\"\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&[7u8; 5000]);
        body.extend_from_slice(b"\r\n");
        if let Some(m) = model {
            body.extend_from_slice(
                format!("--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n{m}\r\n")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(b"--B--\r\n");
        let r = reqwest::Client::new()
            .post(gw.url(path))
            .bearer_auth(demo)
            .header("content-type", "multipart/form-data; boundary=B")
            .body(body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let t = r.text().await.unwrap();
        assert_eq!(s, 200, "{path}: {t}");
    }
    let r = reqwest::Client::new()
        .get(gw.url("/v1/models"))
        .bearer_auth(demo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ev = gw.wait_events(9).await;
    let models: Vec<&str> = ev.iter().filter_map(|e| e["model"].as_str()).collect();
    for m in ["whisper-1", "sabia-ocr", "sabia-recognition", "dall-e-3"] {
        assert!(models.contains(&m), "{m} not billed: {models:?}");
    }
    let ocr = ev.iter().find(|e| e["model"] == "sabia-ocr").unwrap();
    assert!(
        ocr["cost_upstream_usd_micros"].as_i64().unwrap() > 0,
        "{ocr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overhead_header_is_catracas_time_only_and_opt_in() {
    let mock = Mock::start().await;
    let off = Gateway::start(&one_model(&mock)).await;
    let hello = json!({"model": "chat-model", "messages": [{"role": "user", "content": "oi"}]});
    let r = off.post("/v1/chat/completions", hello.clone()).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-catraca-overhead-ms").is_none());

    let on = Gateway::start(&format!("overhead_header: true\n{}", one_model(&mock))).await;
    // the provider takes 300 ms before its header: none of it is catraca's
    let t = Instant::now();
    let r = on
        .post_with(
            "/v1/chat/completions",
            hello,
            &[("x-mock-latency-ms", "300")],
        )
        .await;
    let total = t.elapsed();
    assert_eq!(r.status(), 200);
    assert!(total >= Duration::from_millis(300));
    let v = r.headers()["x-catraca-overhead-ms"].to_str().unwrap();
    let (_, frac) = v.split_once('.').unwrap();
    assert_eq!(frac.len(), 3, "microsecond precision: {v}");
    let ms: f64 = v.parse().unwrap();
    assert!(
        ms > 0.0 && ms < 100.0,
        "{v} ms of {total:?} counted as catraca's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_to_the_upstream_when_the_provider_says_so() {
    let mock = Mock::start().await;
    // the default stays HTTP/1.1
    let h1 = Gateway::start(&one_model(&mock)).await;
    let hello = json!({"model": "chat-model", "messages": [{"role": "user", "content": "a b"}]});
    let r = h1.post("/v1/chat/completions", hello.clone()).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("x-mock-http-version").is_none(),
        "h1 by default"
    );

    let cfg = one_model(&mock).replace(
        "forward_headers: [x-mock-*]",
        "forward_headers: [x-mock-*], http2: true",
    );
    let gw = Gateway::start(&cfg).await;
    // several at once share the connection's streams
    let calls = (0..8).map(|_| gw.post("/v1/chat/completions", hello.clone()));
    for r in futures_util::future::join_all(calls).await {
        assert_eq!(r.status(), 200, "{}", gw.log());
        assert_eq!(r.headers()["x-mock-http-version"], "HTTP/2.0");
        let v: Value = r.json().await.unwrap();
        assert!(v["choices"][0]["message"]["content"].is_string(), "{v}");
    }
    // a stream, usage hidden from the client but counted
    let r = gw
        .post(
            "/v1/chat/completions",
            json!({"model": "chat-model", "stream": true, "messages": [{"role": "user", "content": "a b"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-mock-http-version"], "HTTP/2.0");
    let t = text(r).await;
    assert!(
        t.ends_with("data: [DONE]\n\n") && !t.contains("\"usage\""),
        "{t}"
    );
    // a body past Pingora's 64 KiB retry buffer arrives whole
    let msgs = big_messages(300_000);
    let r = gw
        .post(
            "/v1/chat/completions",
            json!({"messages": msgs, "model": "chat-model"}),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", gw.log());
    assert_eq!(mock.stats().await["last_body"]["messages"], msgs);
    // an upload streamed through, chunked from the client
    let boundary = "h2BOUNDARY";
    let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\naudio-model\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n").into_bytes();
    body.extend_from_slice(&vec![b'x'; 200_000]);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let n = body.len() as u64;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(50_000).map(|c| Ok(c.to_vec())).collect();
    let r = reqwest::Client::new()
        .post(gw.url("/v1/audio/transcriptions"))
        .bearer_auth(crate::common::KEY)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", gw.log());
    assert_eq!(r.headers()["x-mock-http-version"], "HTTP/2.0");
    assert_eq!(r.json::<Value>().await.unwrap()["bytes_received"], n);
    let ev = gw.wait_events(11).await;
    assert!(ev.iter().all(|e| e["status"] == 200), "{ev:?}");
    assert_eq!(ev[8]["stream"], true);
    assert_eq!(ev[8]["completion_tokens"], 4);
    assert_eq!(ev[8]["usage_reported"], true);
}
