//! Hot reload: file change and SIGHUP under traffic, no failed request, invalid files refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

use crate::common::{Gateway, KEY, Mock, header};

fn body(mock: &Mock, extra_model: &str) -> String {
    crate::common::single_model(mock, "chat-model", extra_model)
}

fn write_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn wait_for_status(gw: &Gateway, model: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = gw
            .post(
                "/v1/chat/completions",
                json!({"model": model, "messages": []}),
            )
            .await;
        if r.status() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{model} never answered {want}:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_traffic_drops_nothing() {
    let mock = Mock::start().await;
    let gw = Arc::new(Gateway::start(&body(&mock, "")).await);
    let head = std::fs::read_to_string(&gw.config_path).unwrap();
    let head = &head[..head.find("providers:").unwrap()];
    let _ = header; // the shared header is kept verbatim from the running file

    // a long stream in flight across every reload
    let long = {
        let gw = gw.clone();
        tokio::spawn(async move {
            let r = gw
                .post_with(
                    "/v1/chat/completions",
                    json!({"model": "chat-model", "stream": true, "messages": []}),
                    &[("x-mock-chunks", "20"), ("x-mock-chunk-delay-ms", "100")],
                )
                .await;
            let mut s = r.bytes_stream();
            let mut t = Vec::new();
            while let Some(c) = s.next().await {
                t.extend_from_slice(&c.unwrap());
            }
            String::from_utf8(t).unwrap()
        })
    };

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (gw, stop, ok, failed) = (gw.clone(), stop.clone(), ok.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let r = c
                    .post(gw.url("/v1/chat/completions"))
                    .bearer_auth(KEY)
                    .header("content-type", "application/json")
                    .body(json!({"model": "chat-model", "messages": []}).to_string())
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }

    // 1: file change adds a model
    let with_new = format!(
        "{head}{}",
        body(&mock, "  - {name: new-model, deployments: [d]}\n")
    );
    write_atomically(&gw.config_path, &with_new);
    wait_for_status(&gw, "new-model", 200).await;

    // 2: an invalid file is refused; the previous config keeps serving
    write_atomically(
        &gw.config_path,
        &format!("{with_new}  - {{name: broken, deployments: [nope]}}\n"),
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(gw.log().contains("config reload refused"), "{}", gw.log());
    wait_for_status(&gw, "new-model", 200).await;

    // 3: a truncated (empty) file, a file without keys and one that drops new-model (in use)
    // are all refused; new-model keeps serving
    std::fs::write(&gw.config_path, "").unwrap();
    gw.signal("HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let keyless: String = with_new
        .lines()
        .filter(|l| !l.contains("sha256") && !l.starts_with("keys:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&gw.config_path, &keyless).unwrap();
    gw.signal("HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(&gw.config_path, format!("{head}{}", body(&mock, ""))).unwrap();
    gw.signal("HUP");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    wait_for_status(&gw, "new-model", 200).await;
    let log = gw.log();
    assert!(log.contains("at least one is required"), "{log}");
    assert!(log.contains("no API key"), "{log}");
    assert!(log.contains("drops models that served requests"), "{log}");

    // 4: with the explicit flag, SIGHUP drops it
    std::fs::write(
        &gw.config_path,
        format!("allow_destructive_reload: true\n{head}{}", body(&mock, "")),
    )
    .unwrap();
    gw.signal("HUP");
    wait_for_status(&gw, "new-model", 404).await;

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let t = long.await.unwrap();
    assert!(
        t.ends_with("data: [DONE]\n\n"),
        "in-flight stream broken by reload: {t}"
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during reloads"
    );
    assert!(
        ok.load(Ordering::Relaxed) > 20,
        "too little traffic to prove anything"
    );
    let m = gw.metrics().await;
    assert!(
        m.contains(r#"catraca_config_reloads_total{result="refused"}"#),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_also_writes_every_usage_event_before_exiting() {
    let mock = Mock::start().await;
    // a long linger: the events of the last requests are still waiting in a batch at SIGINT
    let mut gw = Gateway::start_edited(&body(&mock, ""), &[], |y| {
        y.replace("usage: {jsonl_path:", "usage: {flush_ms: 1500, jsonl_path:")
    })
    .await;
    for _ in 0..20 {
        let r = gw
            .post(
                "/v1/chat/completions",
                json!({"model": "chat-model", "messages": [{"role": "user", "content": "oi"}]}),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    gw.signal("INT");
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.try_wait().is_none() {
        assert!(
            Instant::now() < deadline,
            "gateway did not exit after SIGINT"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gw.events().len(), 20, "{}", gw.plain_log());
    assert!(gw.plain_log().contains("drained; exiting"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_streams_finish() {
    let mock = Mock::start().await;
    let mut gw = Gateway::start(&body(&mock, "")).await;
    let r = gw
        .post_with(
            "/v1/chat/completions",
            json!({"model": "chat-model", "stream": true, "messages": []}),
            &[("x-mock-chunks", "6"), ("x-mock-chunk-delay-ms", "100")],
        )
        .await;
    let mut s = r.bytes_stream();
    let first = s.next().await.unwrap().unwrap();
    gw.signal("TERM");
    let mut t = first.to_vec();
    while let Some(c) = s.next().await {
        t.extend_from_slice(&c.unwrap());
    }
    let t = String::from_utf8(t).unwrap();
    assert!(
        t.ends_with("data: [DONE]\n\n"),
        "stream cut by SIGTERM: {t}"
    );
    // grace_period_secs is 1 in tests; the process must be gone well within 10 s
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = gw.try_wait() {
            assert!(status.success() || status.code().is_none(), "{status:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "gateway did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ev = gw.events();
    assert_eq!(
        ev.len(),
        1,
        "the usage event of the in-flight stream must be written"
    );
    let log = gw.plain_log();
    assert!(log.contains("requests_in_flight=1"), "{log}");
    assert!(log.contains("drained; exiting"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_as_soon_as_drained_not_after_the_grace_period() {
    let mock = Mock::start().await;
    // a 30 s grace period: an idle gateway must not wait it out
    let mut gw = Gateway::start_edited(&body(&mock, ""), &[], |y| {
        y.replace("grace_period_secs: 1", "grace_period_secs: 30")
    })
    .await;
    let gw_text = std::fs::read_to_string(&gw.config_path).unwrap();
    assert!(gw_text.contains("grace_period_secs: 30"));
    let r = gw
        .post(
            "/v1/chat/completions",
            json!({"model": "chat-model", "messages": []}),
        )
        .await;
    assert_eq!(r.status(), 200);
    gw.wait_events(1).await;
    let t0 = Instant::now();
    gw.signal("TERM");
    loop {
        if gw.try_wait().is_some() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "an idle gateway waited for its grace period:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = gw.plain_log();
    assert!(log.contains("requests_in_flight=0"), "{log}");
    assert!(log.contains("drained; exiting"), "{log}");
    assert_eq!(gw.events().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_every_request_in_flight_then_exits() {
    let mock = Mock::start().await;
    let mut gw = Gateway::start_edited(&body(&mock, ""), &[], |y| {
        y.replace("grace_period_secs: 1", "grace_period_secs: 30")
    })
    .await;
    let gw_url = gw.url("/v1/chat/completions");
    // 20 requests in flight: streams and slow whole answers
    let mut tasks = Vec::new();
    for i in 0..20 {
        let url = gw_url.clone();
        tasks.push(tokio::spawn(async move {
            let stream = i % 2 == 0;
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(KEY)
                .header("content-type", "application/json")
                .header("x-mock-chunks", "10")
                .header("x-mock-chunk-delay-ms", "100")
                .header("x-mock-latency-ms", if stream { "0" } else { "800" })
                .body(json!({"model": "chat-model", "stream": stream, "messages": []}).to_string())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let t = r.text().await.unwrap();
            (status, stream, t)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    gw.signal("TERM");
    for t in tasks {
        let (status, stream, text) = t.await.unwrap();
        assert_eq!(status, 200);
        if stream {
            assert!(text.ends_with("data: [DONE]\n\n"), "stream cut: {text}");
        } else {
            assert!(text.contains("\"finish_reason\":\"stop\""), "{text}");
        }
    }
    loop {
        if gw.try_wait().is_some() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "did not exit once drained"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(gw.events().len(), 20, "usage events lost");
    let log = gw.plain_log();
    assert!(log.contains("requests_in_flight=20"), "{log}");
    assert!(log.contains("drained; exiting"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_upgrade_hands_the_listener_over_under_load() {
    let mock = Mock::start().await;
    let mut old = Gateway::start(&body(&mock, "")).await;
    let url = old.url("/v1/chat/completions");
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (url, stop, ok, failed) = (url.clone(), stop.clone(), ok.clone(), failed.clone());
        clients.push(tokio::spawn(async move {
            // a fresh connection per request: every request goes through accept
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let stream = (i + c).is_multiple_of(2);
                let r = client
                    .post(&url)
                    .bearer_auth(KEY)
                    .header("content-type", "application/json")
                    .header("x-mock-chunks", "3")
                    .header("x-mock-chunk-delay-ms", "20")
                    .body(
                        json!({"model": "chat-model", "stream": stream, "messages": []})
                            .to_string(),
                    )
                    .send()
                    .await;
                let good = match r {
                    Ok(r) if r.status() == 200 => r
                        .text()
                        .await
                        .is_ok_and(|t| !stream || t.ends_with("data: [DONE]\n\n")),
                    _ => false,
                };
                if good {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut new = old.spawn_upgrade();
    // the new process waits (up to 5 s) for the sockets; hand them over
    tokio::time::sleep(Duration::from_millis(800)).await;
    old.signal("QUIT");
    let handed = ok.load(Ordering::Relaxed);
    // the old process drains and exits; the new one serves on
    let t0 = Instant::now();
    loop {
        if old.try_wait().is_some() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "old process still running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let total = ok.load(Ordering::Relaxed);
    let new_log = std::fs::read_to_string(old.dir.join("gateway-new.log")).unwrap_or_default();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed across the upgrade ({total} ok)\nold:\n{}\nnew:\n{new_log}",
        old.log()
    );
    assert!(
        total > handed,
        "the new process served nothing: {handed} → {total}"
    );
    assert!(
        new.try_wait().unwrap().is_none(),
        "new process died:\n{new_log}"
    );
    // both processes append to the same usage file: one event per request
    let deadline = Instant::now() + Duration::from_secs(5);
    while old.events().len() < total as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        old.events().len(),
        total as usize,
        "usage events lost in the upgrade"
    );
    let _ = new.kill();
    let _ = new.wait();
}
