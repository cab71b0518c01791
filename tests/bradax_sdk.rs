//! The bradax Python SDK (`sdk/python`, issue 15 item 14) driving a live catraca: the package
//! is pip-installed from a copy of `sdk/python` (offline: no deps, no build isolation; httpx,
//! pytest and setuptools come from `tests/sdk/requirements.txt`) into a scratch directory, then
//! its own pytest suite runs: the unit tests (httpx MockTransport) and the live tests against
//! this gateway, with projects and keys made through the operator API.

use std::path::Path;
use std::process::Command;

use sqlx::PgPool;

use crate::common::bradax as bx;
use crate::common::{Gateway, Mock, db_url, scratch};

const MASTER: &str = "bradax-sdk-master-key-0123456789";
const SECRET: &str = "bradax-sdk-jwt-secret-0123456789-abcdef";
/// The rpm of the student key the server-side rate-limit test exhausts.
const STUDENT_RPM: u32 = 3;

/// Copy `from` into `to`, leaving out build and cache output.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "__pycache__"
            || name == "build"
            || name == ".pytest_cache"
            || name.ends_with(".egg-info")
        {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        if e.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A project (organization of kind `project`) of `tier`; its id.
async fn project(gw: &Gateway, name: &str, slug: &str, tier: &str) -> String {
    bx::project(gw, MASTER, name, slug, tier).await
}

/// A `bx_live_` key of `org` with `scopes` (and `rpm`); its plaintext (noted as a secret:
/// the gateway's log is searched for it when the gateway stops).
async fn key(gw: &Gateway, org: &str, scopes: &[&str], rpm: Option<u32>) -> String {
    bx::key(gw, MASTER, org, scopes, rpm).await.1
}

#[sqlx::test(migrations = "./migrations")]
async fn python_sdk_drives_the_bradax_surface(pool: PgPool) {
    // scripts/test.sh points CATRACA_PYTHON at an interpreter with tests/sdk/requirements.txt
    let python = std::env::var("CATRACA_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import httpx, pytest, setuptools.command.bdist_wheel"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "httpx, pytest or setuptools>=70.1 is missing for {python}: run scripts/test.sh, or pip install -r tests/sdk/requirements.txt"
    );

    let mock = Mock::start().await;
    let gw = Gateway::start_with_env(
        &format!(
            r#"providers:
  - {{name: p, base_url: "{}", forward_headers: [x-mock-*]}}
deployments:
  - {{name: d, provider: p, model: up}}
  - {{name: d4, provider: p, model: up-4o}}
  - {{name: de, provider: p, model: up-emb}}
models:
  - {{name: gpt-4o-mini, deployments: [d], input_usd_per_1m: "0.15", output_usd_per_1m: "0.60"}}
  - {{name: gpt-4o, deployments: [d4], input_usd_per_1m: "2.50", output_usd_per_1m: "10.00"}}
  - {{name: text-embedding-3-small, category: embedding, deployments: [de], input_usd_per_1m: "0.02"}}
"#,
            mock.base()
        ),
        &[
            ("DATABASE_URL", &db_url(&pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
            ("CATRACA_JWT_SECRET", SECRET),
        ],
    )
    .await;

    let all = [
        "invoke_llm",
        "read_vector",
        "write_vector",
        "deploy_graph",
        "execute_graph",
        "read_metrics",
    ];
    let full = project(&gw, "Fraude Claims", "fraude-claims", "full").await;
    let full_key = key(&gw, &full, &all, None).await;
    let narrow_key = key(&gw, &full, &["invoke_llm"], None).await;
    let student = project(&gw, "Turma IA", "turma-ia", "student").await;
    let student_key = key(&gw, &student, &all[..], None).await;
    let limited_key = key(&gw, &student, &["invoke_llm"], Some(STUDENT_RPM)).await;

    // install the package from a copy (the build writes build/ and *.egg-info beside it)
    let dir = scratch();
    let src = dir.join("sdk");
    let site = dir.join("site");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk/python"),
        &src,
    );
    let pip = tokio::process::Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&site)
        .arg(&src)
        .output()
        .await
        .unwrap();
    assert!(
        pip.status.success(),
        "pip install ./sdk/python failed:\n{}\n{}",
        String::from_utf8_lossy(&pip.stdout),
        String::from_utf8_lossy(&pip.stderr)
    );
    // what the tests import is the installed package, whose one dependency is httpx
    let which = Command::new(&python)
        .args([
            "-c",
            "import bradax, importlib.metadata as m; print(bradax.__file__); print([r for r in m.requires('bradax') if 'extra' not in r])",
        ])
        .current_dir(&dir)
        .env("PYTHONPATH", &site)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let which = String::from_utf8_lossy(&which.stdout);
    let mut lines = which.lines();
    assert_eq!(
        lines.next().map(Path::new),
        Some(site.join("bradax/__init__.py").as_path()),
        "{which}"
    );
    assert_eq!(lines.next(), Some("['httpx<1,>=0.24']"), "{which}");

    let out = tokio::process::Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-rA",
            "--color=no",
        ])
        .arg(src.join("tests"))
        .current_dir(&dir)
        .env("PYTHONPATH", &site)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("BRADAX_LIVE_REQUIRED", "1")
        .env("BRADAX_BASE_URL", gw.url("/api/v1"))
        .env("BRADAX_PROJECT_ID", "fraude-claims")
        .env("BRADAX_API_KEY", &full_key)
        .env("BRADAX_NARROW_API_KEY", &narrow_key)
        .env("BRADAX_STUDENT_PROJECT_ID", "turma-ia")
        .env("BRADAX_STUDENT_API_KEY", &student_key)
        .env("BRADAX_STUDENT_LIMITED_API_KEY", &limited_key)
        .env("BRADAX_STUDENT_RPM", STUDENT_RPM.to_string())
        .env("BRADAX_MODEL", "gpt-4o-mini")
        .env("BRADAX_FULL_ONLY_MODEL", "gpt-4o")
        .env_remove("BRADAX_TOKEN")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the SDK's pytest failed:\n{stdout}\n{}\n--- gateway log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    // every test of both files ran and passed: none skipped (BRADAX_LIVE_REQUIRED), and each
    // live test is named in pytest's report
    assert!(!stdout.contains("SKIPPED"), "{stdout}");
    let live = std::fs::read_to_string(src.join("tests/test_live.py")).unwrap();
    let names: Vec<&str> = live
        .lines()
        .filter_map(|l| l.strip_prefix("def test_"))
        .filter_map(|l| l.split('(').next())
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    for n in names {
        let id = format!("test_live.py::test_{n}");
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("PASSED ") && l.trim_end().ends_with(&id)),
            "test_{n} did not pass:\n{stdout}"
        );
    }
    assert!(stdout.contains("test_unit.py::"), "{stdout}");
}
