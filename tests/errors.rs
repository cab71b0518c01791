//! Every client error: status, OpenAI error shape, and no upstream call.

use serde_json::{Value, json};

use crate::common::{DISABLED_KEY, Gateway, KEY, Mock, two_deployments};

async fn send(
    gw: &Gateway,
    key: Option<&str>,
    ct: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let mut rb = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .header("content-type", ct)
        .body(body);
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_have_openai_shape_and_never_reach_upstream() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    let gw = Gateway::start(&two_deployments(
        &a.base(),
        &b.base(),
        "max_body_bytes: 2048\n",
    ))
    .await;
    let j = "application/json";
    let ok = json!({"model": "chat-model", "messages": []}).to_string();
    let cases: Vec<(Option<&str>, &str, String, u16, &str)> = vec![
        (None, j, ok.clone(), 401, "missing_api_key"),
        (Some("sk-nope"), j, ok.clone(), 401, "invalid_api_key"),
        (Some(DISABLED_KEY), j, ok.clone(), 401, "api_key_disabled"),
        (Some(KEY), j, "{not json".into(), 400, "invalid_json"),
        (Some(KEY), j, "".into(), 400, "invalid_json"),
        (Some(KEY), j, "[1,2]".into(), 400, "invalid_request"),
        (
            Some(KEY),
            j,
            json!({"messages": []}).to_string(),
            400,
            "invalid_request",
        ),
        (
            Some(KEY),
            j,
            json!({"model": 7}).to_string(),
            400,
            "invalid_request",
        ),
        (
            Some(KEY),
            j,
            json!({"model": "nope"}).to_string(),
            404,
            "model_not_found",
        ),
        (
            Some(KEY),
            "text/plain",
            ok.clone(),
            415,
            "unsupported_media_type",
        ),
        (
            Some(KEY),
            j,
            format!(
                "{{\"model\":\"chat-model\",\"x\":\"{}\"}}",
                "a".repeat(4096)
            ),
            413,
            "body_too_large",
        ),
    ];
    for (key, ct, body, status, code) in cases {
        let (s, v) = send(&gw, key, ct, body.clone()).await;
        assert_eq!(s, status, "{code}: {v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(v["error"]["type"].is_string());
    }
    assert_eq!(a.requests().await + b.requests().await, 0);
    // every refused request still has its usage event
    let ev = gw.wait_events(11).await;
    assert!(
        ev.iter()
            .all(|e| e["attempts"] == 0 && e["error"].is_string())
    );

    // unknown route and wrong method
    let r = reqwest::Client::new()
        .get(gw.url("/v2/whatever"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = reqwest::Client::new()
        .get(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    // the api-key header works as well as Authorization
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .header("api-key", KEY)
        .header("content-type", j)
        .body(ok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_survives_errors() {
    // one client connection: a 413 with an unread body must not poison the next request
    let (a, b) = (Mock::start().await, Mock::start().await);
    let gw = Gateway::start(&two_deployments(
        &a.base(),
        &b.base(),
        "max_body_bytes: 2048\n",
    ))
    .await;
    let c = reqwest::Client::new();
    for _ in 0..3 {
        let r = c
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body("x".repeat(10_000))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        let r = c
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(json!({"model": "chat-model", "messages": []}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_limited_to_some_models_gets_403_on_others() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    // the harness header ends with the `keys:` list, so these lines add one more key
    let limited = format!(
        "  - {{name: limited, sha256: \"{}\", models: [chat-model]}}\n",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"sk-limited"))
    );
    let extra = "  - {name: other-model, deployments: [da]}\n";
    let gw = Gateway::start(&format!(
        "{limited}{}",
        two_deployments(&a.base(), &b.base(), extra)
    ))
    .await;
    let send = |model: &'static str| {
        reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth("sk-limited")
            .header("content-type", "application/json")
            .body(json!({"model": model, "messages": []}).to_string())
            .send()
    };
    assert_eq!(send("chat-model").await.unwrap().status(), 200);
    let r = send("other-model").await.unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_allowed");
    assert_eq!(v["error"]["param"], "model");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_rpm_refuses_exactly_at_the_threshold_with_headers() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    // the harness header ends with the `keys:` list, so this line adds one more key
    let limited = format!(
        "  - {{name: rpm3, sha256: \"{}\", rpm: 3}}\n",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"sk-rpm3"))
    );
    let gw = Gateway::start(&format!(
        "{limited}{}",
        two_deployments(&a.base(), &b.base(), "")
    ))
    .await;
    let send = || {
        reqwest::Client::new()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth("sk-rpm3")
            .header("content-type", "application/json")
            .body(json!({"model": "chat-model", "messages": []}).to_string())
            .send()
    };
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = send().await.unwrap();
        assert_eq!(r.status(), 200, "refused before the threshold");
        assert_eq!(r.headers()["x-ratelimit-limit"], "3");
        assert_eq!(r.headers()["x-ratelimit-window"], "60");
        remaining.push(
            r.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    let r = send().await.unwrap();
    // a minute boundary between the calls resets the window; then the 4th is allowed
    if remaining == ["2", "1", "0"] {
        assert_eq!(r.status(), 429);
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry));
        assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "rate_limit_exceeded");
        assert_eq!(
            a.requests().await + b.requests().await,
            3,
            "a refused request must not reach upstream"
        );
    }
    // the test key has no limits: no headers
    let r = gw
        .post(
            "/v1/chat/completions",
            json!({"model": "chat-model", "messages": []}),
        )
        .await;
    assert!(r.headers().get("x-ratelimit-limit").is_none());
}
