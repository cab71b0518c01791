//! The official OpenAI Python SDK works unchanged (chat, stream, embeddings, models, and its
//! exception classes for 401/404/429). Needs `pip install -r tests/sdk/requirements.txt`,
//! which `scripts/test.sh` does.

use std::process::Command;

use crate::common::{Gateway, KEY, Mock};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk_works_unchanged() {
    // scripts/test.sh points CATRACA_PYTHON at an interpreter that has the SDK
    let python = std::env::var("CATRACA_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python).args(["-c", "import openai"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "the openai package is missing for {python}: run scripts/test.sh, or pip install -r tests/sdk/requirements.txt"
    );
    let mock = Mock::start().await;
    let limited = Mock::start().await;
    limited
        .set(serde_json::json!({"fail_status": 429, "fail_rate": 1.0}))
        .await;
    let gw = Gateway::start(&format!(
        r#"failover: {{max_attempts: 1}}
providers:
  - {{name: p, base_url: "{}"}}
  - {{name: limited, base_url: "{}"}}
deployments:
  - {{name: d, provider: p, model: up}}
  - {{name: de, provider: p, model: up-emb}}
  - {{name: dl, provider: limited, model: up}}
models:
  - {{name: chat-model, deployments: [d]}}
  - {{name: emb-model, category: embedding, deployments: [de]}}
  - {{name: limited-model, deployments: [dl]}}
"#,
        mock.base(),
        limited.base()
    ))
    .await;
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
