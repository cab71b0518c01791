//! `catraca check-config`: every problem with file:line:col, non-zero exit.

use std::process::Command;

use crate::common::scratch;

#[test]
fn check_config_reports_every_problem_with_position() {
    let dir = scratch();
    let path = dir.join("bad.yaml");
    std::fs::write(
        &path,
        r#"providers:
  - {name: p, base_url: "ftp://x"}
deployments:
  - {name: d, provider: q, model: m, weight: 0}
models:
  - {name: m, deployments: [d, e], input_usd_per_1m: "0.1234567"}
failover: {max_attempts: 0}
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_catraca"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    let p = path.display().to_string();
    for want in [
        format!("{p}:2:25: providers[0].base_url:"),
        format!("{p}:4:25: deployments[0].provider: unknown provider \"q\""),
        format!("{p}:4:46: deployments[0].weight: must be > 0"),
        format!("{p}:6:32: models[0].deployments[1]: unknown deployment \"e\""),
        format!("{p}:6:54: models[0].input_usd_per_1m:"),
        format!("{p}:7:26: failover.max_attempts:"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(err.contains("6 problem(s) found"), "{err}");

    // unknown field: position of the field
    std::fs::write(&path, "providers: []\nlisten_on: 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_catraca"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with(&format!("{p}:2:1: unknown field `listen_on`")),
        "{err}"
    );

    // the shipped default is valid
    let out = Command::new(env!("CARGO_BIN_EXE_catraca"))
        .args([
            "check-config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/conf/catraca.yaml"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
