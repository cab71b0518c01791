//! A broken provider, case by case, with traffic running: before the first byte the request
//! fails over; after it the stream ends with a clean error event; every request has exactly
//! one usage event; the gateway holds no more sockets afterwards than before.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{Gateway, KEY, Mock};

/// A provider that misbehaves as the request's `x-fault` header says.
async fn bad_upstream() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(serve_one(s));
        }
    });
    addr
}

async fn read_request(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    loop {
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut tmp).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            return Some(head);
        }
    }
}

async fn serve_one(mut s: TcpStream) {
    let Some(head) = read_request(&mut s).await else {
        return;
    };
    let fault = head
        .lines()
        .find_map(|l| l.strip_prefix("x-fault:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    let sse = |body: &str| {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{body}"
        )
    };
    match fault.as_str() {
        "reset" => {
            // dropped with a zero linger: RST, no FIN
            let _ = s.set_zero_linger();
            return;
        }
        "close" => {}
        "hang" => tokio::time::sleep(Duration::from_secs(30)).await,
        "garbage-head" => {
            let _ = s
                .write_all(b"HTTP/1.1 2x0 \x00\xff\r\nbroken\r\n\r\n")
                .await;
        }
        "bad-json" => {
            let body = "{\"choices\": [ not json";
            let _ = s
                .write_all(format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()).as_bytes())
                .await;
        }
        "bad-sse" => {
            let _ = s
                .write_all(sse("data: {broken\n\nevent: x\n: comment\ndata: \u{0}\n\n").as_bytes())
                .await;
            let _ = s.write_all(b"\xff\xfe\n\n").await;
        }
        "reset-mid-stream" => {
            let _ = s
                .write_all(
                    sse("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n")
                        .as_bytes(),
                )
                .await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = s.set_zero_linger();
            return;
        }
        "drip" => {
            let _ = s.write_all(sse("").as_bytes()).await;
            for i in 0..4 {
                let ev = format!(
                    "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i} \"}}}}]}}\n\n"
                );
                for b in ev.as_bytes().chunks(7) {
                    let _ = s.write_all(b).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            let _ = s
                .write_all(b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n")
                .await;
        }
        "huge" => {
            // 20 MB of one JSON answer, usage at the end
            let pad = "x".repeat(20_000_000);
            let body = format!(
                "{{\"choices\":[{{\"index\":0,\"message\":{{\"content\":\"{pad}\"}}}}],\"usage\":{{\"prompt_tokens\":1,\"completion_tokens\":2}}}}"
            );
            let _ = s
                .write_all(format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes())
                .await;
            let _ = s.write_all(body.as_bytes()).await;
        }
        _ => {
            let _ = s
                .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    }
    let _ = s.shutdown().await;
}

/// Sockets (and other descriptors) the gateway process holds.
fn fds(gw: &Gateway) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", gw.pid()))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kib(gw: &Gateway) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", gw.pid()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn send(gw: &Gateway, model: &str, fault: &str, stream: bool) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .header("x-fault", fault)
        .body(json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "oi"}]}).to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_upstream_fault_fails_over_or_ends_cleanly_with_one_event_each() {
    let bad = bad_upstream().await;
    let good = Mock::start().await;
    let gw = Gateway::start(&format!(
        r#"failover: {{max_attempts: 2, failures_to_trip: 1000, cooldown_ms: 100}}
providers:
  - {{name: bad, base_url: "http://{bad}/v1", connect_timeout_ms: 500, read_timeout_ms: 1000, total_timeout_ms: 20000, forward_headers: [x-fault]}}
  - {{name: good, base_url: "{}", forward_headers: [x-mock-*]}}
deployments:
  - {{name: d-bad, provider: bad, model: up, priority: 0}}
  - {{name: d-good, provider: good, model: up, priority: 1}}
  - {{name: d-only-bad, provider: bad, model: up}}
  - {{name: d-ok, provider: good, model: up}}
models:
  - {{name: failover-model, deployments: [d-bad, d-good]}}
  - {{name: bad-only, deployments: [d-only-bad]}}
  - {{name: steady, deployments: [d-ok]}}
"#,
        good.base()
    ))
    .await;

    // steady traffic on another model the whole time; none of it may fail
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let gw = Arc::new(gw);
    let background = {
        let (gw, stop, sent, failed) = (gw.clone(), stop.clone(), sent.clone(), failed.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (s, _) = send(&gw, "steady", "", true).await;
                sent.fetch_add(1, Ordering::Relaxed);
                if s != 200 {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    // warm up, then count descriptors
    for _ in 0..3 {
        assert_eq!(send(&gw, "failover-model", "reset", false).await.0, 200);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fds_before = fds(&gw);
    let rss_before = rss_kib(&gw);
    let mut requests = 3u64;

    // before the first byte: every fault fails over to the good deployment
    for fault in ["reset", "close", "hang", "garbage-head", "status-500"] {
        for stream in [false, true] {
            let (s, body) = send(&gw, "failover-model", fault, stream).await;
            requests += 1;
            assert_eq!(s, 200, "{fault} stream={stream}: {body}");
            assert!(body.contains("Olá"), "{fault}: {body}");
        }
    }
    // after the first byte: what the provider sent, then a clean end
    let (s, body) = send(&gw, "bad-only", "reset-mid-stream", true).await;
    requests += 1;
    assert_eq!(s, 200);
    assert!(body.contains("\"content\":\"a\""), "{body}");
    assert!(
        body.trim_end().ends_with('}') && body.contains("stream_interrupted"),
        "{body}"
    );
    let (s, body) = send(&gw, "bad-only", "drip", true).await;
    requests += 1;
    assert_eq!(s, 200);
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let (s, body) = send(&gw, "bad-only", "bad-json", false).await;
    requests += 1;
    assert_eq!((s, body.as_str()), (200, "{\"choices\": [ not json"));
    let (s, body) = send(&gw, "bad-only", "bad-sse", true).await;
    requests += 1;
    assert_eq!(s, 200);
    assert!(body.contains("data: {broken"), "{body}");
    let (s, body) = send(&gw, "bad-only", "huge", false).await;
    requests += 1;
    assert_eq!((s, body.len() > 20_000_000), (200, true));

    stop.store(true, Ordering::Relaxed);
    background.await.unwrap();
    let steady = sent.load(Ordering::Relaxed);
    assert_eq!(failed.load(Ordering::Relaxed), 0, "steady traffic failed");
    assert!(steady > 10, "too little steady traffic: {steady}");

    // exactly one usage event per request
    let total = (requests + steady) as usize;
    let ev = gw.wait_events(total).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ev2 = gw.events();
    assert_eq!(ev2.len(), total, "events {} for {total} requests", ev.len());
    let mut ids: Vec<&str> = ev2
        .iter()
        .map(|e| e["request_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total, "a request has two events");
    let by = |fault_model: &str| -> Vec<&Value> {
        ev2.iter().filter(|e| e["model"] == fault_model).collect()
    };
    let failed_over = by("failover-model");
    assert!(
        failed_over
            .iter()
            .all(|e| e["attempts"] == 2 && e["status"] == 200 && e["deployment"] == "d-good"),
        "{failed_over:?}"
    );
    let broken = by("bad-only");
    assert!(
        broken.iter().any(|e| e["error"] == "stream_interrupted"),
        "{broken:?}"
    );
    assert!(broken.iter().all(|e| e["attempts"] == 1), "{broken:?}");
    let huge = broken
        .iter()
        .find(|e| e["completion_tokens"] == 2)
        .expect("usage of the huge answer");
    assert_eq!(huge["prompt_tokens"], 1);

    // nothing leaked: descriptors back to where they were (pooled upstream connections and
    // the steady client's come and go), no request task left in flight, memory not holding
    // the 20 MB answer
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_after = fds(&gw);
    assert!(
        fds_after <= fds_before + 4,
        "descriptors {fds_before} → {fds_after}"
    );
    let m = gw.metrics().await;
    assert!(
        m.contains("catraca_requests_in_flight 0"),
        "requests left in flight:\n{m}"
    );
    let rss_after = rss_kib(&gw);
    assert!(
        rss_after < rss_before + 40 * 1024,
        "RSS {rss_before} → {rss_after} KiB"
    );
    eprintln!(
        "faults: {requests} faulty + {steady} steady requests; fds {fds_before} → {fds_after}; RSS {rss_before} → {rss_after} KiB"
    );
}
