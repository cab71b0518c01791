//! The official OpenAI SDKs work unchanged: Python (chat, stream, embeddings, models, and its
//! exception classes for 401/404/429; `pip install -r tests/sdk/requirements.txt`) and Node
//! (the same plus the `.stream()` helper, base64 embeddings and a transcription whose model
//! field follows the file; `npm ci` in tests/sdk/node). `scripts/test.sh` installs both.

use std::process::Command;

use crate::common::{Gateway, KEY, Mock};

/// The gateway both SDK checks run against: chat, embedding, two audio models and a model
/// whose only deployment answers 429.
async fn sdk_gateway() -> (Mock, Mock, Gateway) {
    let mock = Mock::start().await;
    let limited = Mock::start().await;
    limited
        .set(serde_json::json!({"fail_status": 429, "fail_rate": 1.0}))
        .await;
    let gw = Gateway::start(&format!(
        r#"failover: {{max_attempts: 1}}
providers:
  - {{name: p, base_url: "{}", forward_headers: [x-mock-*]}}
  - {{name: limited, base_url: "{}", forward_headers: [x-mock-*]}}
deployments:
  - {{name: d, provider: p, model: up}}
  - {{name: de, provider: p, model: up-emb}}
  - {{name: dl, provider: limited, model: up}}
  - {{name: da, provider: p, model: up-audio-a}}
  - {{name: db, provider: p, model: up-audio-b}}
models:
  - {{name: chat-model, deployments: [d]}}
  - {{name: emb-model, category: embedding, deployments: [de]}}
  - {{name: limited-model, deployments: [dl]}}
  - {{name: audio-a, category: audio, deployments: [da]}}
  - {{name: audio-b, category: audio, deployments: [db]}}
"#,
        mock.base(),
        limited.base()
    ))
    .await;
    (mock, limited, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk_works_unchanged() {
    // scripts/test.sh points CATRACA_PYTHON at an interpreter that has the SDK
    let python = std::env::var("CATRACA_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python).args(["-c", "import openai"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "the openai package is missing for {python}: run scripts/test.sh, or pip install -r tests/sdk/requirements.txt"
    );
    let (_mock, _limited, gw) = sdk_gateway().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/openai_sdk_check.py");
    let out = tokio::process::Command::new(&python)
        .arg(script)
        .env("CATRACA_BASE_URL", gw.url("/v1"))
        .env("CATRACA_KEY", KEY)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "SDK check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all SDK checks passed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_node_sdk_works_unchanged() {
    // scripts/test.sh installs tests/sdk/node (npm ci) and points CATRACA_NODE at node
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/node");
    let node = std::env::var("CATRACA_NODE").unwrap_or_else(|_| "node".into());
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/openai")
            .exists(),
        "the openai package is missing: run scripts/test.sh, or npm ci in {dir}"
    );
    let (mock, _limited, gw) = sdk_gateway().await;
    let out = tokio::process::Command::new(&node)
        .arg("check.mjs")
        .current_dir(dir)
        .env("CATRACA_BASE_URL", gw.url("/v1"))
        .env("CATRACA_KEY", KEY)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "Node SDK check failed:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    assert!(stdout.contains("all node SDK checks passed"), "{stdout}");
    // the transcription was routed and billed by the form's model field, which the SDK sends
    // after a 200 KiB file (so the gateway spooled the upload): the whole file arrived
    let events = gw.wait_events(10).await;
    let audio: Vec<_> = events
        .iter()
        .filter(|e| e["route"] == "audio.transcriptions")
        .collect();
    assert_eq!(audio.len(), 1, "{events:?}");
    assert_eq!(audio[0]["model"], "audio-b");
    assert_eq!(audio[0]["deployment"], "db");
    assert_eq!(audio[0]["status"], 200);
    assert!(mock.stats().await["upload_bytes"].as_u64().unwrap() > 200 * 1024);
}
