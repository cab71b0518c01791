//! Hostile clients and broken providers: each case gets a clear 4xx (or a clean stream error),
//! changes nothing, never counts against a deployment and never fails over.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::{Gateway, KEY, Mock, db_url, insert_key, single_model, two_deployments};

fn raw_connect(gw: &Gateway) -> TcpStream {
    let s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Read until the peer closes (or 10 s); returns what arrived and how long it took.
fn read_to_close(s: &mut TcpStream) -> (String, Duration) {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), t0.elapsed())
}

/// A multipart form: parts named `file`, `image` or `document` are files, the rest text.
fn form_body(parts: &[(&str, Vec<u8>)]) -> (String, Vec<u8>) {
    let mut b = Vec::new();
    for (name, content) in parts {
        b.extend_from_slice(b"--frm-b0undary\r\nContent-Disposition: form-data; name=\"");
        b.extend_from_slice(name.as_bytes());
        b.push(b'"');
        if matches!(*name, "file" | "image" | "document") {
            b.extend_from_slice(b"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream");
        }
        b.extend_from_slice(b"\r\n\r\n");
        b.extend_from_slice(content);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b"--frm-b0undary--\r\n");
    ("multipart/form-data; boundary=frm-b0undary".to_string(), b)
}

fn client_section(extra: &str) -> String {
    format!(
        "client: {{header_timeout_ms: 1000, body_timeout_ms: 1000, max_header_bytes: 8192, max_headers: 40, max_connections_per_ip: 4{extra}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_and_bodies_are_cut_by_whole_deadlines() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&format!(
        "{}{}",
        client_section(""),
        single_model(
            &mock,
            "chat-model",
            "  - {name: audio, category: audio, deployments: [d]}\n"
        )
    ))
    .await;

    // a head trickled a byte at a time: the read timer restarts on every byte, the head
    // deadline does not
    let mut s = raw_connect(&gw);
    let head =
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa";
    let t0 = Instant::now();
    for b in head.iter() {
        if s.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if t0.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    let (got, _) = read_to_close(&mut s);
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "a trickled head held the connection {took:?}"
    );
    assert!(got.is_empty(), "{got}");

    // a body trickled a byte at a time after a complete head: 408, never a 5xx
    let mut s = raw_connect(&gw);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{"
    );
    s.write_all(head.as_bytes()).unwrap();
    let t0 = Instant::now();
    let trickle = std::thread::spawn({
        let mut s = s.try_clone().unwrap();
        move || {
            for _ in 0..40 {
                if s.write_all(b" ").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    let (got, _) = read_to_close(&mut s);
    let took = t0.elapsed();
    trickle.join().unwrap();
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("request_timeout"), "{got}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(mock.requests().await, 0, "nothing may reach the provider");

    // the same trickle on a streamed-through upload: 408 too
    let mut s = raw_connect(&gw);
    s.write_all(format!(
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 100000\r\n\r\n--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\naudio\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n"
    ).as_bytes()).unwrap();
    let trickle = std::thread::spawn({
        let mut s = s.try_clone().unwrap();
        move || {
            for _ in 0..40 {
                if s.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    let (got, took) = read_to_close(&mut s);
    trickle.join().unwrap();
    assert!(got.starts_with("HTTP/1.1 408"), "{got}\n{}", gw.log());
    assert!(took < Duration::from_secs(3), "{took:?}");

    // every case above is the client's: no upstream failure, no breaker
    let m = gw.metrics().await;
    assert!(!m.contains("catraca_upstream_errors_total{"), "{m}");
    assert!(!m.contains("catraca_circuit_open_total{"), "{m}");
    let ev = gw.wait_events(1).await;
    assert!(
        ev.iter().all(|e| e["status"] != 502 && e["status"] != 500),
        "{ev:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_many_headers_get_431_and_connections_per_ip_are_capped() {
    let mock = Mock::start().await;
    // a head deadline far past the test: the idle connections held below must stay open (with
    // the 1 s of the other tests they were closed while the test waited, freeing their slots)
    let gw = Gateway::start(&format!(
        "client: {{header_timeout_ms: 30000, body_timeout_ms: 1000, max_header_bytes: 8192, max_headers: 40, max_connections_per_ip: 4}}\n{}",
        single_model(&mock, "chat-model", "")
    ))
    .await;
    let big = "a".repeat(10_000);
    let r = gw
        .post_with(
            "/v1/chat/completions",
            json!({"model": "chat-model", "messages": []}),
            &[("x-big", &big)],
        )
        .await;
    assert_eq!(r.status(), 431);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "headers_too_large");
    let names: Vec<String> = (0..50).map(|i| format!("x-h{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let r = gw
        .post_with(
            "/v1/chat/completions",
            json!({"model": "chat-model", "messages": []}),
            &many,
        )
        .await;
    assert_eq!(r.status(), 431);
    assert_eq!(mock.requests().await, 0);

    // 4 idle connections from this IP are held; the 5th is answered 429 and closed at once,
    // with a FIN, not a reset: its body is read, so the answer is not destroyed in flight
    let held: Vec<TcpStream> = (0..4).map(|_| raw_connect(&gw)).collect();
    // give the accept loop time to take all four, even on a loaded machine
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let mut fifth = raw_connect(&gw);
        let body = format!(r#"{{"model":"chat-model","x":"{}"}}"#, "y".repeat(20_000));
        let _ = fifth.write_all(
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        let (got, took) = read_to_close(&mut fifth);
        assert!(got.starts_with("HTTP/1.1 429 "), "{got:?}");
        assert!(got.contains("connection: close\r\n"), "{got}");
        let v: Value = serde_json::from_str(got.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(v["error"]["code"], "too_many_connections", "{got}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    // a connection that never sends a head is closed without an answer
    let mut mute = raw_connect(&gw);
    let (got, took) = read_to_close(&mut mute);
    assert!(got.is_empty(), "{got}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(mock.requests().await, 0);
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let r = reqwest::get(gw.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    let m = gw.metrics().await;
    assert!(
        m.contains(r#"catraca_client_refused_total{reason="connections_per_ip"}"#),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_json_is_the_clients_400_and_never_trips_a_breaker() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    let gw = Gateway::start(&two_deployments(&a.base(), &b.base(), "")).await;
    for depth in [65, 127, 130, 5000, 100_000] {
        let body = format!(
            r#"{{"model":"chat-model","stream":true,"stream_options":{{"include_usage":false}},"messages":[{{"role":"user","content":"x"}}],"x":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        for _ in 0..5 {
            let r = reqwest::Client::new()
                .post(gw.url("/v1/chat/completions"))
                .bearer_auth(KEY)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "depth {depth}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "invalid_json");
        }
    }
    // nesting within the cap still works, and the breaker of the healthy deployment is closed
    let ok = format!(
        r#"{{"model":"chat-model","messages":[],"x":{}{}}}"#,
        "[".repeat(60),
        "]".repeat(60)
    );
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(ok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(a.requests().await, 1);
    assert_eq!(b.requests().await, 0);
    let m = gw.metrics().await;
    assert!(!m.contains("catraca_circuit_open_total{"), "{m}");
    assert!(!m.contains("catraca_upstream_errors_total{"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_usage_is_neither_stored_nor_billed() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&single_model(
        &mock,
        "chat-model",
        "", // model priced below
    ))
    .await;
    for absurd in [
        r#"{"prompt_tokens":9223372036854775807,"completion_tokens":5}"#,
        r#"{"prompt_tokens":18446744073709551615,"completion_tokens":18446744073709551615}"#,
        r#"{"prompt_tokens":5,"completion_tokens":100000000000}"#,
        r#"{"prompt_tokens":-1,"completion_tokens":5}"#,
        r#"{"prompt_tokens":1e30,"completion_tokens":5}"#,
    ] {
        for stream in [false, true] {
            let r = gw
                .post_with(
                    "/v1/chat/completions",
                    json!({"model": "chat-model", "stream": stream, "stream_options": {"include_usage": true},
                           "messages": [{"role": "user", "content": "oi"}]}),
                    &[("x-mock-usage", absurd)],
                )
                .await;
            assert_eq!(r.status(), 200);
            let _ = r.bytes().await.unwrap();
        }
    }
    let ev = gw.wait_events(10).await;
    for e in &ev {
        let (p, c) = (
            e["prompt_tokens"].as_u64().unwrap(),
            e["completion_tokens"].as_u64().unwrap(),
        );
        assert!(p < 1000 && c < 1000, "absurd usage stored: {e}");
        assert_eq!(e["usage_reported"], false, "{e}");
    }
    assert!(gw.log().contains("absurd usage"), "{}", gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_sse_event_ends_the_stream_with_an_error_event() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&format!(
        "max_sse_event_bytes: 262144\n{}",
        single_model(&mock, "chat-model", "")
    ))
    .await;
    let r = gw
        .post_with(
            "/v1/chat/completions",
            json!({"model": "chat-model", "stream": true, "messages": []}),
            &[("x-mock-endless-event", "8000000")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let t = r.text().await.unwrap_or_default();
    assert!(t.len() < 2 * 262_144, "{} bytes passed", t.len());
    assert!(
        t.contains("upstream_event_too_large"),
        "{}",
        &t[t.len().saturating_sub(300)..]
    );
    let ev = gw.wait_events(1).await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["error"], "upstream_event_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_is_not_failed_over() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    let gw = Gateway::start(&two_deployments(&a.base(), &b.base(), "")).await;
    // the client gives up while the first deployment is still thinking
    let c = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .header("x-mock-latency-ms", "800")
        .body(json!({"model": "chat-model", "messages": []}).to_string())
        .send()
        .await;
    assert!(r.is_err(), "the client should have timed out");
    let ev = gw.wait_events(1).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(a.requests().await, 1);
    assert_eq!(
        b.requests().await,
        0,
        "an abandoned request was sent to a second deployment"
    );
    assert_eq!(ev[0]["attempts"], 1, "{:?}", ev[0]);
    assert_eq!(ev[0]["client_disconnected"], true);
    assert_eq!(gw.events().len(), 1);
    let m = gw.metrics().await;
    assert!(!m.contains("catraca_upstream_errors_total{"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_headers_reach_the_provider_and_the_client_id_is_kept() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&single_model(&mock, "chat-model", "")).await;
    let r = gw
        .post_with(
            "/v1/chat/completions",
            json!({"model": "chat-model", "messages": []}),
            &[
                ("cookie", "session=secret"),
                ("openai-organization", "org-client"),
                ("openai-project", "proj-client"),
                ("x-api-key", "sk-client-other"),
                ("x-forwarded-for", "10.0.0.1"),
                ("x-stainless-os", "Linux"),
                ("user-agent", "OpenAI/Python 1.0"),
                ("x-request-id", "client-req-42"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-client-request-id"], "client-req-42");
    let ours = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(ours.starts_with("req_"));
    let h = mock.stats().await["last_headers"].clone();
    for gone in [
        "cookie",
        "openai-organization",
        "openai-project",
        "x-api-key",
        "x-forwarded-for",
        "x-stainless-os",
    ] {
        assert!(h.get(gone).is_none(), "{gone} reached the provider: {h}");
    }
    assert_eq!(h["user-agent"], "OpenAI/Python 1.0");
    assert_eq!(h["x-client-request-id"], "client-req-42");
    assert_eq!(h["x-request-id"], ours.as_str());
    assert!(h.get("authorization").is_none(), "{h}"); // the provider has no key here
    let ev = gw.wait_events(1).await;
    assert_eq!(ev[0]["client_request_id"], "client-req-42");
    assert_eq!(ev[0]["request_id"], ours.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_routed_by_their_form_model_and_need_a_file() {
    let mock = Mock::start().await;
    let gw = Gateway::start(&format!(
        "max_upload_bytes: 3000000\nproviders:\n  - {{name: p, base_url: \"{}\"}}\ndeployments:\n  - {{name: da, provider: p, model: up-a}}\n  - {{name: db, provider: p, model: up-b}}\n  - {{name: do, provider: p, model: up-ocr}}\nmodels:\n  - {{name: audio-a, category: audio, deployments: [da]}}\n  - {{name: audio-b, category: audio, deployments: [db]}}\n  - {{name: ocr, category: ocr, deployments: [do]}}\n",
        mock.base()
    ))
    .await;
    let send = |parts: Vec<(&'static str, Vec<u8>)>, path: &'static str| {
        let url = gw.url(path);
        async move {
            let (ct, body) = form_body(&parts);
            reqwest::Client::new()
                .post(url)
                .bearer_auth(KEY)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let small = vec![1u8; 1000];
    let large = vec![2u8; 2_000_000];
    // model before the file, model after a large file (spooled), no model (the first of the
    // category)
    let r = send(
        vec![("model", b"audio-b".to_vec()), ("file", small.clone())],
        "/v1/audio/transcriptions",
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = send(
        vec![("file", large.clone()), ("model", b"audio-b".to_vec())],
        "/v1/audio/transcriptions",
    )
    .await;
    assert_eq!(r.status(), 200, "{}", gw.log());
    let r = send(vec![("file", small.clone())], "/v1/audio/transcriptions").await;
    assert_eq!(r.status(), 200);
    let ev = gw.wait_events(3).await;
    let models: Vec<&str> = ev.iter().map(|e| e["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["audio-b", "audio-b", "audio-a"]);
    let stats = mock.stats().await;
    assert!(
        stats["upload_bytes"].as_u64().unwrap() > 2_002_000,
        "{stats}"
    );

    // refused before anything is sent: no file part, an unknown form model, a model of
    // another category, an upload over the cap with the model after it
    let before = mock.requests().await;
    let r = send(vec![("model", b"ocr".to_vec())], "/v1/ocr").await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["success"], false);
    assert_eq!(v["error"]["code"], "VALIDATION_ERROR");
    let r = send(vec![("language", b"pt".to_vec())], "/v1/recognition").await;
    assert_eq!(r.status(), 400);
    let r = send(
        vec![("file", small.clone()), ("model", b"nope".to_vec())],
        "/v1/audio/transcriptions",
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = send(
        vec![("file", small.clone()), ("model", b"ocr".to_vec())],
        "/v1/audio/transcriptions",
    )
    .await;
    assert_eq!(r.status(), 400);
    // over the cap: 413 from the declared length (the client may see its upload cut instead)
    let (ct, body) = form_body(&[
        ("file", vec![3u8; 3_100_000]),
        ("model", b"audio-a".to_vec()),
    ]);
    let r = reqwest::Client::new()
        .post(gw.url("/v1/audio/transcriptions"))
        .bearer_auth(KEY)
        .header("content-type", ct)
        .body(body)
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status(), 413);
    }
    // a form without a boundary
    let r = reqwest::Client::new()
        .post(gw.url("/v1/audio/transcriptions"))
        .bearer_auth(KEY)
        .header("content-type", "multipart/form-data")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        mock.requests().await,
        before,
        "a refused upload reached the provider"
    );
    // no temporary file is left behind
    let left = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("catraca-upload-{}-", gw.pid()))
        })
        .count();
    assert_eq!(left, 0);
}

/// A spill file holding rows Postgres refuses (a NUL in text, sums past bigint) next to good
/// rows: the good rows are stored, the bad ones quarantined, the spill emptied, and what is
/// spilled after them is not blocked.
#[sqlx::test(migrations = "./migrations")]
async fn unwritable_usage_rows_are_quarantined_not_blocking(pool: PgPool) {
    let mock = Mock::start().await;
    let (_org, key_id) = insert_key(&pool, "sk-quarantine-1").await;
    let event = |id: &str, cost: i64, session: &str| {
        json!({"request_id": id, "ts": "2026-12-01T10:00:00Z", "key": "k", "organization_id": null,
               "api_key_id": key_id, "route": "chat.completions", "model": "chat-model",
               "deployment": "d", "provider": "p", "status": 200, "error": null, "attempts": 1,
               "stream": false, "prompt_tokens": 3, "completion_tokens": 4, "usage_reported": true,
               "cost_upstream_usd_micros": cost, "cost_billed_brl_micros": 1, "latency_ms": 5,
               "ttft_ms": null, "session_id": session, "client_disconnected": false})
    };
    let lines = [
        event("q-good-1", 0, "s"),
        event("q-nul", 0, "bad\u{0}session"),
        event("q-good-2", 0, "s"),
        event("q-max-1", i64::MAX, "s"),
        event("q-max-2", i64::MAX, "s"),
        event("q-good-3", 0, "s"),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let url = db_url(&pool, None);
    // the spill file is there when the gateway starts, as after a crash during an outage
    let dir = crate::common::scratch();
    let spill = dir.join("spill.jsonl");
    std::fs::write(&spill, &text).unwrap();
    let gw = Gateway::start_with_env(
        &format!(
            "database: {{spill_path: \"{}\"}}\n{}",
            spill.display(),
            single_model(&mock, "chat-model", "")
        ),
        &[("DATABASE_URL", &url)],
    )
    .await;
    // traffic after the poison rows must be stored too
    assert_eq!(
        crate::common::chat_status(&gw, "sk-quarantine-1", "chat-model").await,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_event")
            .fetch_one(&pool)
            .await
            .unwrap();
        let left = std::fs::read_to_string(&spill).unwrap_or_default();
        if n >= 5 && left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rows {n}, spill {left:?}\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT request_id FROM usage_event ORDER BY request_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    for good in ["q-good-1", "q-good-2", "q-good-3"] {
        assert!(ids.iter().any(|i| i == good), "{ids:?}");
    }
    assert!(!ids.iter().any(|i| i == "q-nul"));
    // one of the two i64::MAX rows fits alone; the second would overflow the key's total
    let maxed = ids.iter().filter(|i| i.starts_with("q-max")).count();
    assert_eq!(maxed, 1, "{ids:?}");
    let q = std::fs::read_to_string(dir.join("spill.jsonl.quarantine")).unwrap();
    let q: Vec<Value> = q
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(q.len(), 2, "{q:?}");
    assert!(q.iter().any(|l| l["event"]["request_id"] == "q-nul"));
    assert!(
        q.iter()
            .all(|l| l["reason"].as_str().is_some_and(|r| !r.is_empty()))
    );
    let m = gw.metrics().await;
    assert!(m.contains("catraca_usage_quarantined_total 2"), "{m}");
}

/// A client stalling its body on an admin route gets 408, and the admin app is not blamed.
#[sqlx::test(migrations = "./migrations")]
async fn a_stalled_admin_call_is_the_clients_408(pool: PgPool) {
    let mock = Mock::start().await;
    let url = db_url(&pool, None);
    let gw = Gateway::start_with_env(
        &format!(
            "{}{}",
            client_section(""),
            single_model(&mock, "chat-model", "")
        ),
        &[("DATABASE_URL", &url)],
    )
    .await;
    let mut s = raw_connect(&gw);
    s.write_all(b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"email\":").unwrap();
    let (got, took) = read_to_close(&mut s);
    assert!(got.starts_with("HTTP/1.1 408"), "{got}\n{}", gw.log());
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(!gw.log().contains("admin app unreachable"), "{}", gw.log());
}

/// Every AI route against a battery of malformed requests: each a clear 4xx, nothing reaches
/// the provider, nothing is billed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_on_every_ai_route_are_4xx_and_change_nothing() {
    let mock = Mock::start().await;
    // The walk opens a connection per request, and a closed one counts against the per-IP cap
    // until the gateway has read its FIN: with the cap of 4 a loaded machine refused some of
    // them (429 now; before, a bare close that CI saw as `connection reset`).
    let client =
        client_section("").replace("max_connections_per_ip: 4", "max_connections_per_ip: 512");
    let gw = Gateway::start(&format!(
        "{}providers:\n  - {{name: p, base_url: \"{}\"}}\ndeployments:\n  - {{name: d, provider: p, model: up}}\nmodels:\n  - {{name: chat-model, input_usd_per_1m: \"1\", deployments: [d]}}\n  - {{name: emb, category: embedding, input_usd_per_1m: \"1\", deployments: [d]}}\n  - {{name: img, category: image, usd_per_image: \"0.04\", deployments: [d]}}\n  - {{name: aud, category: audio, usd_per_audio_second: \"0.0001\", deployments: [d]}}\n  - {{name: ocr, category: ocr, usd_per_request: \"0.002\", deployments: [d]}}\n  - {{name: rec, category: recognition, usd_per_request: \"0.002\", deployments: [d]}}\n  - {{name: mod, category: moderation, input_usd_per_1m: \"1\", deployments: [d]}}\n  - {{name: tts, category: speech, usd_per_1m_chars: \"15\", deployments: [d]}}\n  - {{name: rr, category: rerank, usd_per_search: \"0.002\", deployments: [d]}}\n",
        client,
        mock.base()
    ))
    .await;
    let json_routes = [
        ("/v1/chat/completions", "chat-model"),
        ("/v1/completions", "chat-model"),
        ("/v1/embeddings", "emb"),
        ("/v1/images/generations", "img"),
        ("/v1/responses", "chat-model"),
        ("/v1/moderations", "mod"),
        ("/v1/audio/speech", "tts"),
        ("/v1/rerank", "rr"),
        ("/chat/completions", "chat-model"),
        ("/responses", "chat-model"),
    ];
    let upload_routes = [
        "/v1/audio/transcriptions",
        "/v1/ocr",
        "/v1/recognition",
        "/v1/audio/translations",
        "/v1/images/edits",
    ];
    let raw = |path: &str, ct: &str, body: Vec<u8>, extra: &[(&str, &str)]| {
        let mut rb = reqwest::Client::new()
            .post(gw.url(path))
            .bearer_auth(KEY)
            .header("content-type", ct.to_string())
            .body(body);
        for (k, v) in extra {
            rb = rb.header(*k, *v);
        }
        rb.send()
    };
    let mut cases = 0;
    let mut passed_on = 0;
    for (path, model) in json_routes {
        let bodies: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"\x00\x00\x00".to_vec(),
            b"\xff\xfe{\"model\":1}".to_vec(),
            format!("{{\"model\":\"{model}\u{0}\"}}").into_bytes(),
            format!("{{\"model\":\"{model}\",\"messages\":[").into_bytes(),
            b"[1,2,3]".to_vec(),
            b"\"just a string\"".to_vec(),
            b"{\"model\": 12345678901234567890123456789}".to_vec(),
            b"{\"model\": null}".to_vec(),
            b"{\"messages\": []}".to_vec(),
            format!("{{\"model\":\"{model}\",\"stream\":\"yes\"}}").into_bytes(),
            format!("{{\"model\":\"{model}\",\"n\":1e400}}").into_bytes(),
            format!(
                "{{\"model\":\"{model}\",\"x\":{}}}",
                "{\"a\":".repeat(200) + "1" + &"}".repeat(200)
            )
            .into_bytes(),
        ];
        for body in bodies {
            let r = raw(path, "application/json", body.clone(), &[])
                .await
                .unwrap();
            let s = r.status().as_u16();
            assert!(
                (400..500).contains(&s) && s != 429,
                "{path} {:?} → {s}",
                String::from_utf8_lossy(&body)
            );
            cases += 1;
        }
        // wrong content types
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
        ] {
            let r = raw(
                path,
                ct,
                format!("{{\"model\":\"{model}\"}}").into_bytes(),
                &[],
            )
            .await
            .unwrap();
            assert_eq!(r.status(), 415, "{path} {ct}");
            cases += 1;
        }
        // duplicate and conflicting headers
        let r = reqwest::Client::new()
            .post(gw.url(path))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .header("content-length", "5")
            .header("transfer-encoding", "chunked")
            .body(format!("{{\"model\":\"{model}\"}}"))
            .send()
            .await;
        // (the client library may fix the framing itself; then it is a valid request)
        if let Ok(r) = r {
            assert!(
                (400..500).contains(&r.status().as_u16()) || r.status() == 200,
                "{path}"
            );
            passed_on += u64::from(r.status() == 200);
        }
        let r = raw(
            path,
            "application/json",
            b"{}".to_vec(),
            &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
        )
        .await
        .unwrap();
        assert!(
            (400..500).contains(&r.status().as_u16()),
            "{path} two authorizations"
        );
        cases += 1;
    }
    for path in upload_routes {
        for (ct, body) in [
            ("multipart/form-data", b"x".to_vec()),
            ("multipart/form-data; boundary=zz", b"\x00\xff garbage".to_vec()),
            ("multipart/form-data; boundary=zz", b"--zz\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n\xff\xfe\r\n--zz--\r\n".to_vec()),
            ("multipart/form-data; boundary=zz", b"--zz\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--zz--\r\n".to_vec()),
            ("application/json", b"{}".to_vec()),
            ("text/plain", b"hello".to_vec()),
        ] {
            let r = raw(path, ct, body.clone(), &[]).await.unwrap();
            let s = r.status().as_u16();
            assert!((400..500).contains(&s), "{path} {ct} {:?} → {s}", String::from_utf8_lossy(&body));
            cases += 1;
        }
    }
    // absurd numbers that are valid JSON are passed on or refused, never a 5xx
    for n in ["-1", "0", "1e308", "18446744073709551616", "3.5"] {
        let r = raw(
            "/v1/images/generations",
            "application/json",
            format!("{{\"model\":\"img\",\"prompt\":\"x\",\"n\":{n}}}").into_bytes(),
            &[],
        )
        .await
        .unwrap();
        assert!(r.status().as_u16() < 500, "n={n} → {}", r.status());
    }
    assert_eq!(
        mock.requests().await,
        5 + passed_on,
        "only valid requests may reach the provider"
    );
    let ev = gw.wait_events(cases).await;
    let billed: i64 = ev
        .iter()
        .filter(|e| e["status"].as_u64().is_some_and(|s| s >= 400))
        .map(|e| e["cost_billed_brl_micros"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(billed, 0, "a refused request was billed");
    let m = gw.metrics().await;
    assert!(!m.contains("catraca_upstream_errors_total{"), "{m}");
}

/// A bradax access token's claims, re-signed: with `alg: none`, with another key, and
/// expired with the right key.
fn forged_tokens(real: &str) -> Vec<(&'static str, String)> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let payload = real.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
    let sign = |c: &Value, secret: &[u8]| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            c,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let mut expired = claims.clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    expired["iat"] = json!(now - 7200);
    expired["exp"] = json!(now - 3600);
    let mut widened = claims.clone();
    widened["scope"] =
        json!("invoke_llm read_vector write_vector deploy_graph execute_graph read_metrics");
    let (head, _) = real.split_once('.').unwrap();
    vec![
        (
            "alg none",
            format!(
                "{}.{payload}.",
                B64.encode(br#"{"alg":"none","typ":"JWT"}"#)
            ),
        ),
        (
            "alg none, no dot",
            format!("{}.{payload}", B64.encode(br#"{"alg":"none"}"#)),
        ),
        (
            "another key",
            sign(&claims, b"not-the-bradax-secret-0123456789-abcdef"),
        ),
        ("expired", sign(&expired, crate::bradax::SECRET.as_bytes())),
        ("widened, another key", sign(&widened, b"x")),
        ("signature cut", format!("{head}.{payload}.")),
        ("garbage", "a.b.c".to_string()),
        ("NUL", "abc\u{1}def".to_string()),
    ]
}

/// The answer is a 4xx in bradax's shape (or, on `auth/refresh`, shared with PyTake and
/// dispatched on a token that could not be read, PyTake's `{detail, status_code,
/// error_code}`).
async fn bx_refused(what: &str, r: reqwest::Response) -> u16 {
    let s = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    assert!(
        matches!(s, 400 | 401 | 403 | 404 | 405 | 413 | 415 | 422 | 431),
        "{what} → {s} {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what} → {s} {text}"));
    if what.contains("/auth/refresh") && v.get("detail").is_some() {
        assert_eq!(v["status_code"], s, "{what}: {v}");
        assert!(v["error_code"].is_string(), "{what}: {v}");
    } else if what.contains("/auth/refresh") && s == 431 {
        // refused on its head, before either contract could be told apart: the gateway's own
        assert_eq!(v["error"]["code"], "headers_too_large", "{what}: {v}");
    } else {
        crate::common::bradax::assert_bx_shape(&v);
    }
    s
}

/// Row counts of every table a bradax route writes.
async fn bradax_rows(pool: &PgPool) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for t in [
        "usage_event",
        "vector_collection",
        "vector_document",
        "graph",
        "graph_version",
        "graph_execution",
        "api_key",
        "organization",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {t}"))
            .fetch_one(pool)
            .await
            .unwrap();
        out.push((t, n));
    }
    out
}

#[sqlx::test(migrations = "./migrations")]
async fn hostile_requests_on_bradax_routes_are_4xx_in_its_shape_and_change_nothing(pool: PgPool) {
    let (gw, mock) = crate::bradax::start(&pool).await;
    let org = crate::bradax::project(&gw, "p-hostil", "full").await;
    let all = [
        "invoke_llm",
        "read_vector",
        "write_vector",
        "deploy_graph",
        "execute_graph",
        "read_metrics",
    ];
    let (_, api_key, _) = crate::bradax::key(&gw, &org, &all, None).await;
    let (s, tv) = crate::bradax::auth_token(&gw, "p-hostil", &api_key, None).await;
    assert_eq!(s, 200, "{tv}");
    let tok = crate::common::secret(tv["access_token"].as_str().unwrap());
    let refresh = crate::common::secret(tv["refresh_token"].as_str().unwrap());
    let (s, v) = crate::common::call(
        &gw,
        "POST",
        "/api/v1/graphs/deploy",
        Some(&tok),
        Some(json!({"name": "g", "format": "yaml",
            "definition": "name: g\nnodes:\n  - id: t\n    type: template\n    template: \"oi {{inputs.n}}\"\n"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let gid = v["graph_id"].as_str().unwrap_or_else(|| panic!("{v}"));
    let execute = format!("/api/v1/graphs/{gid}/execute");
    let before = bradax_rows(&pool).await;
    let sent = mock.requests().await;
    assert_eq!(sent, 0);

    let send = |path: &str,
                bearer: Option<&str>,
                ct: &str,
                body: Vec<u8>,
                extra: Vec<(String, String)>| {
        let mut rb = reqwest::Client::new().post(gw.url(path)).body(body);
        if !ct.is_empty() {
            rb = rb.header("content-type", ct.to_string());
        }
        if let Some(b) = bearer {
            rb = rb.header("authorization", format!("Bearer {b}"));
        }
        for (k, v) in extra {
            rb = rb.header(k, v);
        }
        rb.send()
    };
    let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
    let huge = "x".repeat(3 * 1024 * 1024);
    let generic: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\x00\x00\x00".to_vec(),
        b"\xff\xfe{\"model\":1}".to_vec(),
        b"{\"model\":\"gpt-4o-mini\xff\xfe\",\"name\":\"\xc3\x28\"}".to_vec(),
        b"{\"model\":\"gpt-4o-mini\x00\",\"project_id\":\"p-hostil\x00\"}".to_vec(),
        b"{\"model\":".to_vec(),
        b"[1,2,3]".to_vec(),
        b"\"just a string\"".to_vec(),
        b"null".to_vec(),
        b"12345678901234567890123456789e400".to_vec(),
        deep(10_000).into_bytes(),
        format!(
            "{{\"model\":\"gpt-4o-mini\",\"messages\":{},\"documents\":{0},\"inputs\":{0}}}",
            deep(10_000)
        )
        .into_bytes(),
        format!("{{\"model\":\"{huge}\",\"name\":\"{huge}\"}}").into_bytes(),
    ];
    let msgs = r#"[{"role":"user","content":"oi"}]"#;
    let llm: Vec<String> = vec![
        r#"{"model":"gpt-4o-mini","messages":"x"}"#.to_string(),
        format!(r#"{{"model":5,"messages":{msgs}}}"#),
        format!(r#"{{"model":null,"messages":{msgs}}}"#),
        format!(r#"{{"model":["gpt-4o-mini"],"messages":{msgs}}}"#),
        format!(r#"{{"model":"gpt-4o-mini","messages":{msgs},"parameters":[]}}"#),
        format!(
            r#"{{"model":"gpt-4o-mini","messages":{msgs},"parameters":{{"temperature":1e400}}}}"#
        ),
        format!(r#"{{"model":"gpt-4o-mini","messages":{msgs},"parameters":{{"max_tokens":-1}}}}"#),
        format!(
            r#"{{"model":"gpt-4o-mini","messages":{msgs},"parameters":{{"max_tokens":1e30}}}}"#
        ),
        format!(
            r#"{{"model":"gpt-4o-mini","messages":{msgs},"parameters":{{"max_tokens":18446744073709551616}}}}"#
        ),
        format!(
            r#"{{"model":"gpt-4o-mini","messages":{msgs},"parameters":{{"seed":"x","stop":[1,2]}}}}"#
        ),
        format!(r#"{{"model":"gpt-4o-mini","messages":{msgs},"stream":"yes"}}"#),
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"oi\u0000"}]}"#.to_string(),
        r#"{"model":"gpt-4o-mini\u0000","messages":[{"role":"user","content":"oi"}]}"#.to_string(),
        r#"{"model":"gpt-4o-mini","messages":[{"role":7,"content":{"a":1}}]}"#.to_string(),
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"oi"}],"model":"gpt-4o"}"#
            .to_string(),
        format!(
            r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"{}"}}]}}"#,
            "x".repeat(12 * 1024 * 1024)
        ),
    ];
    let upsert: Vec<String> = vec![
        r#"{"documents":"x"}"#.into(),
        r#"{"documents":[{"id":"a","vector":[1e400]}]}"#.into(),
        r#"{"documents":[{"id":"a","vector":["x"]}]}"#.into(),
        r#"{"documents":[{"id":"a","text":"oi\u0000"}]}"#.into(),
        r#"{"documents":[{"id":"a\u0000","text":"oi"}]}"#.into(),
        r#"{"documents":[{"id":"a","text":"oi","metadata":{"k\u0000":"v"}}]}"#.into(),
        r#"{"documents":[{"id":"a","text":5}]}"#.into(),
        r#"{"documents":[{"id":{"x":1},"vector":[1,2]}]}"#.into(),
        r#"{"documents":[{"id":"a","vector":[]}]}"#.into(),
        format!(
            r#"{{"documents":[{{"id":"a","text":"{}"}}]}}"#,
            "x".repeat(1_900_000)
        ),
        r#"{"documents":[],"extra":1}"#.into(),
    ];
    let query: Vec<String> = vec![
        r#"{"query_text":"oi","top_k":-1}"#.into(),
        r#"{"query_text":"oi","top_k":1e400}"#.into(),
        r#"{"query_text":"oi","top_k":100000000000000000000}"#.into(),
        r#"{"query_text":"oi","top_k":9223372036854775807}"#.into(),
        r#"{"query_text":"oi","threshold":1e400}"#.into(),
        r#"{"query_text":"oi","threshold":"alto"}"#.into(),
        r#"{"query_text":5}"#.into(),
        r#"{"query_text":"oi\u0000"}"#.into(),
        r#"{"vector":"x"}"#.into(),
        r#"{"vector":[1e400]}"#.into(),
        r#"{"query_text":"oi","filters":"x"}"#.into(),
        r#"{"query_text":"oi","filters":{"k\u0000":"v"}}"#.into(),
    ];
    let deploy: Vec<String> = vec![
        r#"{"name":5,"definition":"x"}"#.into(),
        r#"{"name":"g","definition":[]}"#.into(),
        r#"{"name":"g","definition":"name: g\nnodes: []\n","format":"xml"}"#.into(),
        r#"{"name":"g\u0000","definition":"name: g\nnodes: []\n"}"#.into(),
        r#"{"name":"g","definition":"name: g\u0000\nnodes: []\n"}"#.into(),
        format!(r#"{{"name":"g","definition":"{}"}}"#, "[".repeat(10_000)),
        format!(
            r#"{{"name":"g","definition":"name: g\nnodes:\n{}"}}"#,
            "  - {id: a, type: template, template: x}\\n".repeat(40_000)
        ),
    ];
    let exec: Vec<String> = vec![
        r#"{"inputs":"x"}"#.into(),
        r#"{"inputs":{"n":"oi"},"stream":"yes"}"#.into(),
        r#"{"inputs":{"n":"oi\u0000"}}"#.into(),
        r#"{"inputs":{"n":1e400}}"#.into(),
        r#"{"inputs":{"n":"oi"},"other":1}"#.into(),
    ];
    let token_bodies: Vec<String> = vec![
        r#"{"project_id":5,"api_key":"x"}"#.into(),
        r#"{"project_id":"p-hostil","api_key":null}"#.into(),
        format!(r#"{{"project_id":"p-hostil","api_key":"{api_key}","scopes":"invoke_llm"}}"#),
        format!(r#"{{"project_id":"p-hostil","api_key":"{api_key}","scopes":["root"]}}"#),
        format!(r#"{{"project_id":"p-hostil\u0000","api_key":"{api_key}"}}"#),
        format!(r#"{{"project_id":"p-hostil","api_key":"{api_key}\u0000"}}"#),
        format!(
            r#"{{"project_id":"p-hostil","api_key":"{}"}}"#,
            "x".repeat(1_000_000)
        ),
    ];
    let refresh_bodies: Vec<String> = vec![
        r#"{"refresh_token":5}"#.into(),
        r#"{"refresh_token":"a.b.c"}"#.into(),
        format!(r#"{{"refresh_token":"{refresh}\u0000"}}"#),
        format!(r#"{{"refresh_token":"{tok}"}}"#),
        format!(r#"{{"refresh_token":"{}"}}"#, "x".repeat(1_000_000)),
    ];
    // (path, needs a token, a well-formed body, the route's own bad bodies)
    let routes: Vec<(String, bool, String, Vec<String>)> = vec![
        ("/api/v1/llm/invoke".into(), true, format!(r#"{{"model":"gpt-4o-mini","messages":{msgs}}}"#), llm.clone()),
        ("/api/v1/llm/stream".into(), true, format!(r#"{{"model":"gpt-4o-mini","messages":{msgs}}}"#), llm),
        ("/api/v1/vectors/col/upsert".into(), true, r#"{"documents":[{"id":"a","text":"oi"}]}"#.into(), upsert),
        ("/api/v1/vectors/col/query".into(), true, r#"{"query_text":"oi"}"#.into(), query),
        ("/api/v1/graphs/deploy".into(), true, r#"{"name":"h","definition":"name: h\nnodes:\n  - {id: a, type: template, template: x}\n"}"#.into(), deploy),
        (execute.clone(), true, r#"{"inputs":{"n":"oi"}}"#.into(), exec),
        ("/api/v1/auth/token".into(), false, format!(r#"{{"project_id":"p-hostil","api_key":"{api_key}"}}"#), token_bodies),
        ("/api/v1/auth/refresh".into(), false, format!(r#"{{"refresh_token":"{refresh}"}}"#), refresh_bodies),
    ];
    let forged = forged_tokens(&tok);
    let mut cases = 0;
    for (path, auth, good, own) in &routes {
        let bearer = auth.then_some(tok.as_str());
        let bodies = generic
            .iter()
            .cloned()
            .chain(own.iter().map(|b| b.clone().into_bytes()));
        for body in bodies {
            let what = format!("{path} {:.120?}", String::from_utf8_lossy(&body));
            // past the gateway's 8 MiB cap the 413 may cut the upload short: the client then
            // sees its write fail
            let over_cap = body.len() > 8 * 1024 * 1024;
            match send(path, bearer, "application/json", body, vec![]).await {
                Ok(r) => {
                    bx_refused(&what, r).await;
                }
                Err(e) => assert!(over_cap, "{what}: {e}"),
            }
            cases += 1;
        }
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
        ] {
            let r = send(path, bearer, ct, good.clone().into_bytes(), vec![])
                .await
                .unwrap();
            let s = bx_refused(&format!("{path} content-type {ct:?}"), r).await;
            // (the shared auth/refresh answers a body it cannot read as PyTake does: 422)
            let shared = path.ends_with("/auth/refresh") && s == 422;
            assert!(matches!(s, 400 | 415) || shared, "{path} {ct:?} → {s}");
            cases += 1;
        }
        // a header far past the head's cap
        let r = send(
            path,
            bearer,
            "application/json",
            good.clone().into_bytes(),
            vec![("x-big".into(), "a".repeat(200_000))],
        )
        .await
        .unwrap();
        bx_refused(&format!("{path} huge header"), r).await;
        cases += 1;
        if *auth {
            let mut bad: Vec<(&str, Option<String>)> = vec![
                ("no token", None),
                ("the refresh token", Some(refresh.clone())),
                ("the API key", Some(api_key.clone())),
                ("empty", Some(String::new())),
                ("huge", Some("a".repeat(6000))),
            ];
            bad.extend(forged.iter().map(|(n, t)| (*n, Some(t.clone()))));
            for (name, t) in bad {
                let r = send(
                    path,
                    t.as_deref(),
                    "application/json",
                    good.clone().into_bytes(),
                    vec![],
                )
                .await;
                let Ok(r) = r else {
                    continue; // a header value the client itself refuses to send
                };
                let s = bx_refused(&format!("{path} token {name}"), r).await;
                assert_eq!(s, 401, "{path} token {name}");
                cases += 1;
            }
        }
    }
    assert!(cases > 250, "{cases}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        mock.requests().await,
        0,
        "a hostile request reached the provider"
    );
    // the gateway logs each refusal on its LLM routes as a request (bradax's `metrics` count
    // them as errors): a 4xx with no tokens and no cost, never a usage the project pays
    let after = bradax_rows(&pool).await;
    assert_eq!(&after[1..], &before[1..], "a hostile request changed a row");
    let paid: Vec<String> = sqlx::query_scalar(
        "SELECT format('%s %s tokens %s+%s cost %s/%s', route, status, prompt_tokens,
                      completion_tokens, cost_upstream_usd_micros, cost_billed_brl_micros)
         FROM usage_event
         WHERE status NOT BETWEEN 400 AND 499 OR prompt_tokens <> 0 OR completion_tokens <> 0
            OR coalesce(cost_upstream_usd_micros, 0) <> 0
            OR coalesce(cost_billed_brl_micros, 0) <> 0",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(paid.is_empty(), "a refusal was counted as usage: {paid:?}");
    let s = mock.stats().await;
    assert_eq!(s["requests"], 0, "{s}");
    assert!(!gw.log().contains("panicked"), "{}", gw.log());
}
