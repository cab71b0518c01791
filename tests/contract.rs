//! Contract test (issue 13): schemathesis (PyPI, `tests/sdk/requirements.txt`) generates input
//! for every operation of a contract and sends it to a live catraca — the real gateway, with
//! the admin app beside it, on a fresh database, with a customer's tokens and keys so the
//! authenticated routes are exercised past auth. Checks: `not_a_server_error` (no 5xx on any
//! input), `status_code_conformance` (every status is documented) and
//! `response_schema_conformance` (every documented answer matches its schema).
//!
//! - MaxAI: the seed `../shared/seeds/maxai-openapi.json` itself, with the error statuses its
//!   conventions imply added (see `maxai_schema` in `tests/sdk/contract_check.py`).
//! - SabIA: its seed is markdown, so catraca's own `/openapi.json`, only the operations tagged
//!   `sabia` (shapes from the seed: `contracts` in `src/admin/openapi.rs`).
//! - Tokia: the seed as written (`tests/contracts/tokia-openapi.yaml`, checked equal to
//!   `../shared/seeds/`), its gaps filled from catraca's `/openapi.json` (see `tokia_schema` in
//!   `tests/sdk/contract_check.py`), all 44 operations, with `content_type_conformance` too.
//!
//! Not exercised here, and why:
//! - `/socket.io/` (MaxAI's live events): not a path of the seed (its info names it only), and a
//!   WebSocket protocol, not request/response; `tests/live.rs` covers it.
//! - SabIA's `/v1/ocr` and `/v1/recognition`: gateway routes (multipart, proxied to a provider),
//!   not in the admin app's `/openapi.json`; `tests/sabia.rs` covers them.
//! - The operator API (`/admin/v1/*`): not a seed contract.
//!
//! Bounded and repeatable: one worker, a fixed seed, `EXAMPLES` cases per operation, no example
//! database; each part takes about 30 s here. `CATRACA_CONTRACT_SEED` and
//! `CATRACA_CONTRACT_EXAMPLES` change the seed and the count for a longer hunt. A failure prints
//! schemathesis's report: each failing operation with the request as a `curl` line.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::{Gateway, Mock, call, db_url, scratch, single_model};

/// Hypothesis seed (the number), and test cases per operation and phase.
const SEED: u64 = 13;
const EXAMPLES: u64 = 25;

/// SabIA failures known when this test was written, left for the SabIA surface's move to fix:
/// `"<schemathesis code> <METHOD> <path>"`. They are printed (`KNOWN FAILURE`), not failed on;
/// any other failure fails the test, and a server error (ST101) can never be listed. Switch
/// them on by deleting the entries (or run with `CATRACA_CONTRACT_STRICT=1`, which ignores
/// this list).
const KNOWN_SABIA: &[&str] = &[];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The gateway with its admin app on `pool`: one model (the seed's example `gpt-4o-mini`) on the
/// mock; webhooks may point at loopback (the check points every generated webhook at a closed
/// local port) and are never delivered during the test.
async fn stack(pool: &PgPool) -> (Mock, Gateway) {
    let mock = Mock::start().await;
    let body = format!(
        "webhooks: {{allow_loopback: true}}\n{}",
        single_model(&mock, "gpt-4o-mini", "")
    );
    let gw = Gateway::start_with_env(
        &body,
        &[
            ("DATABASE_URL", &db_url(pool, None)),
            ("CATRACA_SECRET_KEY", &"c0".repeat(32)),
            ("CATRACA_WEBHOOK_POLL_MS", "3600000"),
        ],
    )
    .await;
    (mock, gw)
}

/// A JSON call that must answer `want`; returns the body.
async fn ok(
    gw: &Gateway,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    want: u16,
) -> Value {
    let (status, v) = call(gw, method, path, token, body).await;
    assert_eq!(status, want, "{method} {path}: {v}");
    v
}

/// Run `tests/sdk/contract_check.py <part>` with `cfg`; panics with its report unless it passed.
pub async fn check(gw: &Gateway, part: &str, mut cfg: Value) {
    // scripts/test.sh points CATRACA_PYTHON at an interpreter with tests/sdk/requirements.txt
    let python = std::env::var("CATRACA_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = std::process::Command::new(&python)
        .args(["-c", "import schemathesis"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "schemathesis is missing for {python}: run scripts/test.sh, or pip install -r tests/sdk/requirements.txt"
    );
    let dir = scratch();
    cfg["base_url"] = json!(format!("http://{}", gw.addr));
    cfg["dir"] = json!(dir.display().to_string());
    cfg["seed"] = json!(env_u64("CATRACA_CONTRACT_SEED", SEED));
    cfg["max_examples"] = json!(env_u64("CATRACA_CONTRACT_EXAMPLES", EXAMPLES));
    if std::env::var("CATRACA_CONTRACT_STRICT").is_ok_and(|v| v == "1") {
        cfg["known"] = json!([]);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/contract_check.py");
    let run = tokio::process::Command::new(&python)
        .arg(script)
        .arg(part)
        .env("CATRACA_CONTRACT", cfg.to_string())
        .current_dir(&dir)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .unwrap_or_else(|_| panic!("contract check {part} ran over 10 minutes"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "contract check {part} failed (schemathesis's report; files in {}):\n{stdout}\n{stderr}",
        dir.display()
    );
    assert!(
        stdout.contains(&format!("contract {part}: ")),
        "{stdout}\n{stderr}"
    );
    // the report of a passing run (seen with --no-capture): known failures, warnings
    eprintln!("{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[sqlx::test(migrations = "./migrations")]
async fn maxai_seed_holds_on_generated_input(pool: PgPool) {
    let (_mock, gw) = stack(&pool).await;
    let seed =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seeds/maxai-openapi.json");
    assert!(seed.exists(), "{} is missing", seed.display());

    // a customer; a second session of theirs whose refresh token the refresh route may use up
    let account =
        json!({"email": "contrato@example.com", "password": "senha-forte-1", "name": "Contrato"});
    let reg = ok(
        &gw,
        "POST",
        "/api/auth/register",
        None,
        Some(account.clone()),
        201,
    )
    .await;
    let token = reg["access_token"].as_str().unwrap().to_string();
    let login = ok(&gw, "POST", "/api/auth/login", None, Some(account), 200).await;
    let refresh = login["refresh_token"].as_str().unwrap().to_string();
    // a key for /v1/* and template runs, and one the DELETE route may revoke
    let k = ok(
        &gw,
        "POST",
        "/api/keys",
        Some(&token),
        Some(json!({"name": "contrato"})),
        201,
    )
    .await;
    let key = k["key"].as_str().unwrap().to_string();
    let r = ok(
        &gw,
        "POST",
        "/api/keys",
        Some(&token),
        Some(json!({"name": "revogar"})),
        201,
    )
    .await;
    let key_id = r["id"].as_i64().unwrap();
    // a built-in template
    let t = ok(&gw, "GET", "/api/templates", None, None, 200).await;
    let template_id = t["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["is_builtin"] == true)
        .expect("a built-in template")["id"]
        .as_i64()
        .unwrap();

    let cfg = json!({
        "schema": seed.display().to_string(),
        "token": token,
        "refresh": refresh,
        "key": key,
        "key_id": key_id,
        "template_id": template_id,
    });
    check(&gw, "maxai", cfg).await;
}

#[sqlx::test(migrations = "./migrations")]
async fn sabia_routes_hold_on_generated_input(pool: PgPool) {
    let (_mock, gw) = stack(&pool).await;
    // a user and the team registration made for them; a key of the team; a second member
    let reg = ok(
        &gw,
        "POST",
        "/v1/auth/register",
        None,
        Some(json!({"name": "Contrato", "email": "contrato@example.com", "password": "senha-forte-1"})),
        201,
    )
    .await;
    let token = reg["data"]["token"].as_str().unwrap().to_string();
    let teams = ok(&gw, "GET", "/v1/teams", Some(&token), None, 200).await;
    let team = teams["data"][0]["id"].as_str().unwrap().to_string();
    let k = ok(
        &gw,
        "POST",
        &format!("/v1/teams/{team}/api-keys"),
        Some(&token),
        Some(json!({"name": "contrato"})),
        201,
    )
    .await;
    let key_id = k["data"]["id"].clone();
    ok(
        &gw,
        "POST",
        "/v1/auth/register",
        None,
        Some(json!({"name": "Membro", "email": "membro@example.com", "password": "senha-forte-1"})),
        201,
    )
    .await;
    let m = ok(
        &gw,
        "POST",
        &format!("/v1/teams/{team}/members"),
        Some(&token),
        Some(json!({"email": "membro@example.com", "role": "member"})),
        201,
    )
    .await;
    let member_id = m["data"]["id"].as_str().unwrap().to_string();

    let cfg = json!({
        "token": token,
        "team_id": team,
        "key_id": key_id,
        "member_id": member_id,
        "known": KNOWN_SABIA,
    });
    check(&gw, "sabia", cfg).await;
    // no generated webhook URL was stored: every one was pointed at the closed local port
    let urls: Vec<String> = sqlx::query_scalar("SELECT url FROM webhook")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(
        urls.iter()
            .all(|u| u == "http://127.0.0.1:9/catraca-contract-hook"),
        "{urls:?}"
    );
}

/// Tokia: the seed as written (`tests/contracts/tokia-openapi.yaml`, the same bytes as
/// `../shared/seeds/`), with the statuses and shapes it leaves out taken from catraca's own
/// `/openapi.json` (see `tokia_schema` in `tests/sdk/contract_check.py`). The key's
/// organization has money, a webhook with a delivered attempt, a session and a prompt, so the
/// routes that name one get past the lookup; the AI routes reach the mock.
#[sqlx::test(migrations = "./migrations")]
async fn tokia_seed_holds_on_generated_input(pool: PgPool) {
    const MASTER: &str = "contract-tokia-master-key-0123456789";
    let mock = Mock::start().await;
    let models = format!(
        "webhooks: {{allow_loopback: true}}\npricing: {{fx_usd_brl: \"5.0\"}}\nproviders:\n  - {{name: p, base_url: \"{}\"}}\ndeployments:\n  - {{name: d, provider: p, model: up}}\nmodels:\n  - {{name: deepseek-v3, input_usd_per_1m: \"0.3\", output_usd_per_1m: \"1.2\", deployments: [d]}}\n  - {{name: text-embedding-3-small, category: embedding, input_usd_per_1m: \"0.02\", deployments: [d]}}\n  - {{name: flux-schnell, category: image, usd_per_image: \"0.003\", deployments: [d]}}\n  - {{name: whisper-1, category: audio, usd_per_audio_second: \"0.0001\", deployments: [d]}}\n",
        mock.base()
    );
    let gw = Gateway::start_with_env(
        &models,
        &[
            ("DATABASE_URL", &db_url(&pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
            ("CATRACA_SECRET_KEY", &"c1".repeat(32)),
            ("CATRACA_WEBHOOK_POLL_MS", "3600000"),
        ],
    )
    .await;
    let seed =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contracts/tokia-openapi.yaml");
    let t = crate::common::Tenant::make(&gw, MASTER, "Contrato Tokia", Some("100.00")).await;
    let hook = ok(
        &gw,
        "POST",
        "/admin/v1/webhooks",
        Some(MASTER),
        Some(
            json!({"organization_id": t.org, "url": "http://127.0.0.1:9/hook",
                    "events": ["usage_limit_reached"]}),
        ),
        201,
    )
    .await;
    let webhook_id = hook["id"].as_str().unwrap().to_string();
    let attempt_id: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO webhook_delivery (webhook_id, event, dedup_key, payload, status)
         VALUES ($1, 'usage_limit_reached', 'contract', '{}', 'delivered') RETURNING attempt_id",
    )
    .bind(uuid::Uuid::parse_str(&webhook_id).unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&t.key)
        .header("x-tokia-session-id", "contrato-1")
        .json(&json!({"model": "deepseek-v3", "messages": [{"role": "user", "content": "oi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let p = ok(
        &gw,
        "POST",
        "/v1/me/prompts",
        Some(&t.key),
        Some(json!({"name": "contrato", "body": "Olá {{nome}}", "default_model": "deepseek-v3"})),
        201,
    )
    .await;
    // the session is listed once the usage writer stored the chat
    let t0 = std::time::Instant::now();
    while call(&gw, "GET", "/v1/me/sessions/contrato-1", Some(&t.key), None)
        .await
        .0
        != 200
    {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the session never shows"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cfg = json!({
        "schema": seed.display().to_string(),
        "key": t.key,
        "webhook_id": webhook_id,
        "attempt_id": attempt_id.to_string(),
        "session_id": "contrato-1",
        "prompt_id": p["id"],
    });
    check(&gw, "tokia", cfg).await;
}

/// The seed kept in the repo is the shared one, byte for byte (when `../shared` is beside).
#[test]
fn the_tokia_seed_in_the_repo_is_the_shared_one() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/seeds/tokia-openapi.yaml");
    let kept = std::fs::read(root.join("tests/contracts/tokia-openapi.yaml")).unwrap();
    if let Ok(s) = std::fs::read(&shared) {
        assert!(
            s == kept,
            "tests/contracts/tokia-openapi.yaml differs from {}",
            shared.display()
        );
    }
}
