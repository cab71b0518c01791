//! Failover: every trigger, the circuit breaker's cool-down and recovery, mid-stream failure.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::{Gateway, Mock, free_port, two_deployments};

async fn chat(gw: &Gateway) -> reqwest::Response {
    gw.post(
        "/v1/chat/completions",
        json!({"model": "chat-model", "messages": []}),
    )
    .await
}

/// The request succeeds on b after a fails with `trigger`; the event shows two attempts.
async fn fails_over(a: &Mock, b: &Mock, gw: &Gateway) {
    let r = chat(gw).await;
    assert_eq!(r.status(), 200, "{}", gw.log());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "upstream-b");
    let ev = gw.wait_events(1).await;
    assert_eq!(ev[0]["deployment"], "db");
    assert_eq!(ev[0]["attempts"], 2);
    assert_eq!(ev[0]["status"], 200);
    let _ = (a, b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_5xx() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    a.set(json!({"fail_status": 500, "fail_rate": 1.0})).await;
    let gw = Gateway::start(&two_deployments(&a.base(), &b.base(), "")).await;
    fails_over(&a, &b, &gw).await;
    assert_eq!(a.requests().await, 1);
    let m = gw.metrics().await;
    assert!(
        m.contains(r#"catraca_failovers_total{model="chat-model"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"catraca_upstream_attempts_total{deployment="da",outcome="status_5xx"} 1"#),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_429() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    a.set(json!({"fail_status": 429, "fail_rate": 1.0})).await;
    let gw = Gateway::start(&two_deployments(&a.base(), &b.base(), "")).await;
    fails_over(&a, &b, &gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_connect_error() {
    let b = Mock::start().await;
    let dead = format!("http://127.0.0.1:{}/v1", free_port());
    let gw = Gateway::start(&two_deployments(&dead, &b.base(), "")).await;
    let r = chat(&gw).await;
    assert_eq!(r.status(), 200, "{}", gw.log());
    let ev = gw.wait_events(1).await;
    assert_eq!(ev[0]["deployment"], "db");
    assert_eq!(ev[0]["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_timeout() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    a.set(json!({"latency_ms": 3000})).await; // read_timeout_ms is 1000
    let gw = Gateway::start(&two_deployments(&a.base(), &b.base(), "")).await;
    fails_over(&a, &b, &gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_failing_gives_gateway_errors() {
    // connect errors everywhere: 502
    let dead1 = format!("http://127.0.0.1:{}/v1", free_port());
    let dead2 = format!("http://127.0.0.1:{}/v1", free_port());
    let gw = Gateway::start(&two_deployments(&dead1, &dead2, "")).await;
    let r = chat(&gw).await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_unavailable");
    drop(gw);

    // timeouts everywhere: 504
    let (a, b) = (Mock::start().await, Mock::start().await);
    a.set(json!({"latency_ms": 3000})).await;
    b.set(json!({"latency_ms": 3000})).await;
    let gw = Gateway::start(&two_deployments(&a.base(), &b.base(), "")).await;
    let r = chat(&gw).await;
    assert_eq!(r.status(), 504);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_timeout");
    drop(gw);

    // 5xx everywhere: the last upstream answer reaches the client as it was
    let (a, b) = (Mock::start().await, Mock::start().await);
    a.set(json!({"fail_status": 503, "fail_rate": 1.0})).await;
    b.set(json!({"fail_status": 500, "fail_rate": 1.0})).await;
    let gw = Gateway::start(&two_deployments(&a.base(), &b.base(), "")).await;
    let r = chat(&gw).await;
    assert_eq!(r.status(), 500);
    let ev = gw.wait_events(1).await;
    assert_eq!(ev[0]["attempts"], 2);
    assert_eq!(ev[0]["status"], 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_cools_down_and_recovers() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    a.set(json!({"fail_status": 500, "fail_rate": 1.0})).await;
    let gw = Gateway::start(&two_deployments(&a.base(), &b.base(), "")).await;
    // failures_to_trip: 2 → the circuit opens after two failed attempts
    for _ in 0..2 {
        assert_eq!(chat(&gw).await.status(), 200);
    }
    assert_eq!(a.requests().await, 2);
    // open: a gets no traffic at all
    for _ in 0..5 {
        assert_eq!(chat(&gw).await.status(), 200);
    }
    assert_eq!(a.requests().await, 2, "a cooling deployment got traffic");
    let m = gw.metrics().await;
    assert!(
        m.contains(r#"catraca_circuit_open_total{deployment="da"} 1"#),
        "{m}"
    );

    // a heals; after the cool-down (3000 ms) the next request probes it and it serves again
    a.set(json!({"fail_rate": 0.0})).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let r = chat(&gw).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "upstream-a", "recovered deployment not used");
    assert_eq!(a.requests().await, 3);
    for _ in 0..3 {
        let v: Value = chat(&gw).await.json().await.unwrap();
        assert_eq!(v["model"], "upstream-a");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_probe_reopens_at_once() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    a.set(json!({"fail_status": 502, "fail_rate": 1.0})).await;
    let gw = Gateway::start(&two_deployments(&a.base(), &b.base(), "")).await;
    for _ in 0..2 {
        chat(&gw).await;
    }
    tokio::time::sleep(Duration::from_millis(3200)).await;
    chat(&gw).await; // the probe fails
    for _ in 0..3 {
        chat(&gw).await;
    }
    assert_eq!(
        a.requests().await,
        3,
        "after a failed probe the circuit must open again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_stream_failure_ends_with_error_event_and_no_retry() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    let gw = Gateway::start(&two_deployments(&a.base(), &b.base(), "")).await;
    let r = gw
        .post_with(
            "/v1/chat/completions",
            json!({"model": "chat-model", "stream": true, "messages": []}),
            &[
                ("x-mock-chunks", "10"),
                ("x-mock-fail-after-chunks", "2"),
                ("x-mock-chunk-delay-ms", "50"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let mut s = r.bytes_stream();
    let mut body = Vec::new();
    while let Some(c) = s.next().await {
        match c {
            Ok(c) => body.extend_from_slice(&c),
            Err(_) => break,
        }
    }
    let t = String::from_utf8(body).unwrap();
    assert_eq!(t.matches("chat.completion.chunk").count(), 2, "{t}");
    assert!(
        t.trim_end().ends_with(r#"data: {"error":{"message":"the upstream stream was interrupted","type":"upstream_error","param":null,"code":"stream_interrupted"}}"#),
        "{t}"
    );
    assert_eq!(b.requests().await, 0, "no retry after the first byte");
    let ev = gw.wait_events(1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(gw.events().len(), 1);
    assert_eq!(ev[0]["error"], "stream_interrupted");
    assert_eq!(ev[0]["attempts"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_body_is_replayed_to_the_next_deployment() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    a.set(json!({"fail_status": 503, "fail_rate": 1.0})).await;
    let gw = Gateway::start(&two_deployments(&a.base(), &b.base(), "")).await;
    let content = "x ".repeat(150_000);
    let r = gw
        .post(
            "/v1/chat/completions",
            json!({"model": "chat-model", "messages": [{"role": "user", "content": content}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let st = b.stats().await;
    assert_eq!(
        st["last_body"]["messages"][0]["content"]
            .as_str()
            .map(str::len),
        Some(300_000)
    );
    assert_eq!(st["last_body"]["model"], "upstream-b");
    let ev = gw.wait_events(1).await;
    assert_eq!(ev[0]["attempts"], 2);
}
