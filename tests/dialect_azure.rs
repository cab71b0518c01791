//! Azure OpenAI as a provider kind, end to end: the deployment in the path
//! (`/openai/deployments/{model}/chat/completions?api-version=…`), the `api-key` header, OpenAI's
//! bodies untouched otherwise; errors as Azure sends them; failover to and from it; the OpenAI
//! Python SDK against it.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::dialect::*;
use crate::common::*;

const ZKEY: &str = "azure-test-key-0001";

/// The mock's root (an Azure resource's base URL).
fn zbase(m: &Mock) -> String {
    format!("http://{}", m.addr)
}

async fn gateway(z: &Mock, o: &Mock) -> Gateway {
    Gateway::start_with_env(
        &format!(
            r#"failover: {{max_attempts: 2, failures_to_trip: 1000, cooldown_ms: 100}}
providers:
  - {{name: pz, kind: azure, api_version: "2024-10-21", base_url: "{z}", api_key_env: CATRACA_TEST_AZURE_KEY, forward_headers: [x-mock-*]}}
  - {{name: pznokey, kind: azure, api_version: "2024-10-21", base_url: "{z}", forward_headers: [x-mock-*]}}
  - {{name: po, base_url: "{o}", forward_headers: [x-mock-*]}}
deployments:
  - {{name: dz, provider: pz, model: gpt4o-prod}}
  - {{name: dze, provider: pz, model: emb-prod}}
  - {{name: dznokey, provider: pznokey, model: gpt4o-prod}}
  - {{name: dz2, provider: pz, model: gpt4o-prod, priority: 0}}
  - {{name: do2, provider: po, model: openai-up, priority: 1}}
models:
  - {{name: azure-model, input_usd_per_1m: "2.5", cached_input_usd_per_1m: "1.25", output_usd_per_1m: "10", deployments: [dz]}}
  - {{name: azure-emb, category: embedding, deployments: [dze]}}
  - {{name: no-key, deployments: [dznokey]}}
  - {{name: z-then-o, deployments: [dz2, do2]}}
"#,
            z = zbase(z),
            o = o.base()
        ),
        &[("CATRACA_TEST_AZURE_KEY", ZKEY)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_chat_stream_and_embeddings_use_the_deployment_path_and_api_key() {
    let (z, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&z, &o).await;
    let r = chat(
        &gw,
        KEY,
        json!({"model": "azure-model", "messages": [{"role": "user", "content": [{"type": "text", "text": "oi"},
            {"type": "image_url", "image_url": {"url": "https://img.test/a.png"}}]}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["choices"][0]["message"]["content"], "Olá do mock da");
    let st = z.stats().await;
    let h = &st["last_headers"];
    assert_eq!(h["api-key"], ZKEY);
    assert!(h.get("authorization").is_none(), "{h}");
    assert_eq!(h["x-mock-azure-deployment"], "gpt4o-prod");
    assert_eq!(h["x-mock-azure-api-version"], "2024-10-21");
    // OpenAI's body as the client sent it (tools and image parts included)
    assert_eq!(st["last_body"]["tools"][0]["function"]["name"], "f");
    assert_eq!(
        st["last_body"]["messages"][0]["content"][1]["image_url"]["url"],
        "https://img.test/a.png"
    );

    // a stream: the first chunk reaches the client long before the last
    let t0 = Instant::now();
    let r = gw
        .post_with(
            "/v1/chat/completions",
            json!({"model": "azure-model", "stream": true, "messages": [{"role": "user", "content": "oi"}]}),
            &[("x-mock-chunks", "5"), ("x-mock-chunk-delay-ms", "200")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let mut s = r.bytes_stream();
    let (mut all, mut first) = (String::new(), None);
    while let Some(c) = s.next().await {
        all.push_str(std::str::from_utf8(&c.unwrap()).unwrap());
        if first.is_none() && all.contains("Olá") {
            first = Some(t0.elapsed());
        }
    }
    let end = t0.elapsed();
    assert!(
        first.unwrap() + Duration::from_millis(700) < end,
        "{first:?} {end:?}"
    );
    assert!(all.ends_with("data: [DONE]\n\n"));
    assert!(!all.contains("\"usage\""), "injected usage shown: {all}");

    // embeddings on their own deployment path
    let r = gw
        .post(
            "/v1/embeddings",
            json!({"model": "azure-emb", "input": "o gato"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(!v["data"][0]["embedding"].as_array().unwrap().is_empty());
    assert_eq!(
        z.stats().await["last_headers"]["x-mock-azure-deployment"],
        "emb-prod"
    );

    // usage with cached tokens from OpenAI's prompt_tokens_details, priced at the cached price
    let r = chat(
        &gw,
        KEY,
        json!({"model": "azure-model", "messages": [{"role": "user", "content": "um dois três"}]}),
        &[("x-mock-usage", r#"{"prompt_tokens": 2000, "completion_tokens": 10, "total_tokens": 2010, "prompt_tokens_details": {"cached_tokens": 1000}, "completion_tokens_details": {"reasoning_tokens": 4}}"#)],
    )
    .await;
    assert_eq!(r.status, 200);
    let ev = gw.wait_events(4).await;
    let e = &ev[3];
    assert_eq!(e["prompt_tokens"], 2000);
    assert_eq!(e["cached_tokens"], 1000);
    assert_eq!(e["reasoning_tokens"], 4);
    // 1000 × $2.50 + 1000 × $1.25 + 10 × $10, micro-USD
    assert_eq!(e["cost_upstream_usd_micros"], 2500 + 1250 + 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_errors_pass_and_5xx_fail_over() {
    let (z, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&z, &o).await;
    let msg = json!([{"role": "user", "content": "oi"}]);
    // no key: Azure's 401, OpenAI-shaped, passed as it is
    let r = chat(&gw, KEY, json!({"model": "no-key", "messages": msg}), &[]).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Access denied")
    );
    // a 400 is not failed over
    let before = o.requests().await;
    let r = chat(
        &gw,
        KEY,
        json!({"model": "z-then-o", "messages": msg}),
        &[("x-mock-status", "400")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(o.requests().await, before);
    // a 500 is
    z.set(json!({"fail_status": 500, "fail_rate": 1.0})).await;
    let r = chat(&gw, KEY, json!({"model": "z-then-o", "messages": msg}), &[]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["model"], "openai-up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_config_fields_are_checked_with_positions() {
    // api_version is required for azure and refused elsewhere; anthropic_version only for
    // anthropic; an unknown kind; an anthropic deployment on an image model
    let cases = [
        (
            "{name: p, kind: azure, base_url: \"http://127.0.0.1:1\"}",
            "providers[0].api_version: required for kind azure",
        ),
        (
            "{name: p, api_version: \"2024-10-21\", base_url: \"http://127.0.0.1:1\"}",
            "providers[0].api_version: only for kind azure",
        ),
        (
            "{name: p, anthropic_version: \"2023-06-01\", base_url: \"http://127.0.0.1:1\"}",
            "providers[0].anthropic_version: only for kind anthropic",
        ),
        (
            "{name: p, kind: cohere, base_url: \"http://127.0.0.1:1\"}",
            "providers[0].kind: \"cohere\" is not one of",
        ),
        (
            "{name: p, kind: azure, api_version: \"2024 10\", base_url: \"http://127.0.0.1:1\"}",
            "providers[0].api_version: \"2024 10\" is not an API version",
        ),
    ];
    let dir = scratch();
    for (provider, want) in cases {
        let cfg = format!(
            "providers:\n  - {provider}\ndeployments:\n  - {{name: d, provider: p, model: m}}\nmodels:\n  - {{name: x, deployments: [d]}}\n"
        );
        let path = dir.join("c.yaml");
        std::fs::write(&path, cfg).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_catraca"))
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{want}: {all}");
        assert!(all.contains(want), "{want}: {all}");
        assert!(all.contains("c.yaml:2:"), "no position: {all}");
    }
    let cfg = "providers:\n  - {name: p, kind: anthropic, base_url: \"http://127.0.0.1:1\"}\ndeployments:\n  - {name: d, provider: p, model: m}\nmodels:\n  - {name: x, category: image, deployments: [d]}\n";
    let path = dir.join("c.yaml");
    std::fs::write(&path, cfg).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_catraca"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("models[0].deployments[0]: deployment \"d\" is on a anthropic provider, which does not serve image models"),
        "{all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk_works_against_an_azure_deployment() {
    let python = sdk_python("openai");
    let (z, o) = (Mock::start().await, Mock::start().await);
    let gw = gateway(&z, &o).await;
    let stdout = run_sdk_script(
        &python,
        "dialect_sdk_check.py",
        &gw.url("/v1"),
        &[
            ("CATRACA_MODEL", "azure-model"),
            ("CATRACA_ANSWER_MODEL", "gpt4o-prod"),
        ],
    )
    .await;
    assert!(
        stdout.contains("all azure-model SDK checks passed"),
        "{stdout}"
    );
}
