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
