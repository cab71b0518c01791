//! The CLI (`catraca org|user|plan|key|ledger|usage …`) as a script runs it: the real binary on
//! a fresh database, from nothing to a prepaid key, its limits, members and a usage report;
//! every change audited as `cli`; bad input refused with a message and nothing changed.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::*;

/// Run `catraca ARGS` on the test's database with `stdin`: (exit ok, stdout, stderr).
fn run(pool: &PgPool, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_catraca"))
        .args(args)
        .env("DATABASE_URL", db_url(pool, None))
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A command that must succeed and print one JSON document.
fn ok(pool: &PgPool, args: &[&str]) -> Value {
    ok_with(pool, args, None)
}

fn ok_with(pool: &PgPool, args: &[&str], stdin: Option<&str>) -> Value {
    let (ok, out, err) = run(pool, args, stdin);
    assert!(ok, "{args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// A command that must fail with a message on stderr and nothing on stdout.
fn refused(pool: &PgPool, args: &[&str], why: &str) {
    let (ok, out, err) = run(pool, args, None);
    assert!(!ok, "{args:?} succeeded: {out}");
    assert!(out.is_empty(), "{args:?} printed {out}");
    assert!(
        err.to_lowercase().contains(&why.to_lowercase()),
        "{args:?}: {err:?} does not say {why:?}"
    );
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn a_script_sets_up_plan_org_users_key_balance_and_limits(pool: PgPool) {
    // a plan
    let plan = ok(
        &pool,
        &[
            "plan",
            "create",
            "ouro",
            "--name",
            "Pro",
            "--price-brl",
            "49.90",
            "--annual-price-brl",
            "499",
            "--quota",
            "1000",
            "--rpm",
            "60",
            "--feature",
            "Suporte",
            "--feature",
            "API",
            "--popular",
        ],
    );
    assert_eq!(
        (
            &plan["code"],
            &plan["price_brl"],
            &plan["annual_price_brl"],
            &plan["monthly_request_quota"],
            &plan["limits"]["rpm"],
            &plan["features"],
            &plan["popular"],
        ),
        (
            &json!("ouro"),
            &json!("49.9"),
            &json!("499"),
            &json!(1000),
            &json!(60),
            &json!([{"text": "Suporte", "included": true}, {"text": "API", "included": true}]),
            &json!(true)
        ),
        "{plan}"
    );
    let got = ok(&pool, &["plan", "get", "ouro"]);
    assert_eq!(got, plan);
    let updated = ok(
        &pool,
        &[
            "plan",
            "update",
            "ouro",
            "--quota",
            "none",
            "--popular",
            "false",
        ],
    );
    assert_eq!(
        (
            &updated["monthly_request_quota"],
            &updated["popular"],
            &updated["price_brl"]
        ),
        (&Value::Null, &json!(false), &json!("49.9")),
        "{updated}"
    );
    let plans = ok(&pool, &["plan", "list"]);
    assert!(
        plans["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["code"] == "ouro"),
        "{plans}"
    );

    // an organization on it, prepaid
    let org = ok(
        &pool,
        &[
            "org",
            "create",
            "--name",
            "Padaria",
            "--prepaid",
            "--plan",
            "ouro",
        ],
    );
    assert_eq!(
        (&org["plan"], &org["prepaid"], &org["balance_brl"]),
        (&json!("ouro"), &json!(true), &json!("0")),
        "{org}"
    );
    let o = org["id"].as_str().unwrap().to_string();

    // its owner, with a password read from stdin (no invitation), and an invited member
    let ana = ok_with(
        &pool,
        &[
            "user",
            "create",
            "--email",
            "ana@exemplo.com",
            "--name",
            "Ana",
            "--org",
            &o,
            "--role",
            "owner",
            "--password-stdin",
        ],
        Some("senha-forte-1\n"),
    );
    assert_eq!(
        ana["memberships"],
        json!([{"organization_id": o, "role": "owner"}])
    );
    let ana_id = ana["id"].as_str().unwrap().to_string();
    let phc: String =
        sqlx::query_scalar("SELECT password_hash FROM app_user WHERE email = 'ana@exemplo.com'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(catraca::domain::accounts::verify_password(
        "senha-forte-1",
        &phc
    ));
    let bia = ok(
        &pool,
        &[
            "user",
            "create",
            "--email",
            "bia@exemplo.com",
            "--name",
            "Bia",
            "--org",
            &o,
        ],
    );
    assert_eq!(bia["memberships"][0]["role"], "member");
    let bia_id = bia["id"].as_str().unwrap().to_string();
    let invitations = scalar(
        &pool,
        "SELECT count(*) FROM outbox_email WHERE subject = 'Convite'",
    )
    .await;
    assert_eq!(
        invitations, 1,
        "only the user without a password is invited"
    );

    // a key, and the top-up that makes it work
    let key = ok(
        &pool,
        &[
            "key",
            "create",
            "--org",
            &o,
            "--prefix",
            "sk-tokia-",
            "--rpm",
            "600",
        ],
    );
    assert!(
        key["key"].as_str().unwrap().starts_with("sk-tokia-"),
        "{key}"
    );
    let keys = ok(&pool, &["key", "list", "--org", &o]);
    assert_eq!(keys["data"].as_array().map(Vec::len), Some(1), "{keys}");
    assert_eq!(keys["data"][0]["id"], key["id"]);
    assert!(
        keys["data"][0].get("key").is_none(),
        "a list shows no plaintext"
    );
    let entry = ok(
        &pool,
        &[
            "ledger",
            "post",
            "--org",
            &o,
            "--kind",
            "topup",
            "--amount",
            "50.50",
            "--idempotency-key",
            "pix-1",
        ],
    );
    assert_eq!(
        (&entry["amount_brl"], &entry["balance_after_brl"]),
        (&json!("50.5"), &json!("50.5")),
        "{entry}"
    );
    let st = ok(&pool, &["ledger", "show", "--org", &o]);
    assert_eq!(
        (&st["balance_brl"], &st["entries"][0]["idempotency_key"]),
        (&json!("50.5"), &json!("pix-1")),
        "{st}"
    );
    assert_eq!(ok(&pool, &["org", "get", &o])["balance_brl"], "50.5");

    // limits: set, then cleared back to the plan's
    let u = ok(
        &pool,
        &["org", "update", &o, "--rpm", "5", "--name", "Padaria Sul"],
    );
    assert_eq!(
        (&u["limits"]["rpm"], &u["name"]),
        (&json!(5), &json!("Padaria Sul")),
        "{u}"
    );
    let rpm: Option<i32> = sqlx::query_scalar(
        "SELECT rate_limit_rpm FROM organization WHERE organization_id = $1::uuid",
    )
    .bind(&o)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(rpm, Some(5));
    let u = ok(&pool, &["org", "update", &o, "--rpm", "none"]);
    assert_eq!(u["limits"]["rpm"], Value::Null, "{u}");
    let u = ok(&pool, &["org", "update", &o, "--no-plan"]);
    assert_eq!(u["plan"], Value::Null, "{u}");
    let u = ok(&pool, &["org", "update", &o, "--plan", "ouro"]);
    assert_eq!(u["plan"], "ouro", "{u}");

    // members: the last owner is neither demoted nor removed
    refused(
        &pool,
        &["org", "set-role", &o, &ana_id, "--role", "member"],
        "last owner",
    );
    refused(&pool, &["org", "remove-member", &o, &ana_id], "last owner");
    let role: String = sqlx::query_scalar(
        "SELECT role FROM membership WHERE organization_id = $1::uuid AND user_id = $2::uuid",
    )
    .bind(&o)
    .bind(&ana_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(role, "owner");
    let b = ok(&pool, &["org", "set-role", &o, &bia_id, "--role", "owner"]);
    assert_eq!(
        b,
        json!({"organization_id": o, "user_id": bia_id, "role": "owner"})
    );
    let a = ok(&pool, &["org", "set-role", &o, &ana_id, "--role", "admin"]);
    assert_eq!(a["role"], "admin", "{a}");
    let members = ok(&pool, &["org", "members", &o]);
    let roles: Vec<(&str, &str)> = members["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap(),
                m["memberships"][0]["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [("ana@exemplo.com", "admin"), ("bia@exemplo.com", "owner")],
        "{members}"
    );
    // another organization: added, then removed
    let other = ok(
        &pool,
        &["org", "create", "--name", "Outra", "--kind", "team"],
    );
    let other_id = other["id"].as_str().unwrap().to_string();
    let a = ok(
        &pool,
        &["org", "add-member", &other_id, &ana_id, "--role", "viewer"],
    );
    assert_eq!(a["role"], "viewer", "{a}");
    let ana_now = ok(&pool, &["user", "get", &ana_id]);
    assert_eq!(
        ana_now["memberships"].as_array().map(Vec::len),
        Some(2),
        "{ana_now}"
    );
    refused(
        &pool,
        &["org", "add-member", &other_id, &ana_id, "--role", "viewer"],
        "already a member",
    );
    let a = ok(&pool, &["org", "remove-member", &other_id, &ana_id]);
    assert_eq!(a["removed"], true, "{a}");
    let ana_now = ok(&pool, &["user", "get", &ana_id]);
    assert_eq!(
        ana_now["memberships"],
        json!([{"organization_id": o, "role": "admin"}])
    );
    refused(
        &pool,
        &["org", "remove-member", &other_id, &ana_id],
        "not a member",
    );
    let d = ok(&pool, &["org", "disable", &other_id]);
    assert_eq!(d["disabled"], true);
    let e = ok(&pool, &["org", "enable", &other_id]);
    assert_eq!(e["disabled"], false);

    // usage: one event, reported as JSON and as CSV with a header line
    sqlx::query(
        "INSERT INTO usage_event (request_id, organization_id, api_key_id, route, model, status,
                                  attempts, stream, prompt_tokens, completion_tokens,
                                  usage_reported, cost_upstream_usd_micros,
                                  cost_billed_brl_micros, latency_ms, client_disconnected,
                                  created_at)
         VALUES ('req-1', $1::uuid, $2::uuid, '/v1/chat/completions', 'm', 200, 1, false, 10, 5,
                 true, 12500, 62500, 30, false, '2026-01-15T12:00:00Z')",
    )
    .bind(&o)
    .bind(key["id"].as_str().unwrap())
    .execute(&pool)
    .await
    .unwrap();
    let report = ok(
        &pool,
        &[
            "usage",
            "report",
            "--group-by",
            "organization",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-31",
        ],
    );
    assert_eq!(report["data"].as_array().map(Vec::len), Some(1), "{report}");
    let row = &report["data"][0];
    assert_eq!(
        (
            &row["day"],
            &row["requests"],
            &row["cost_usd"],
            &row["billed_brl"]
        ),
        (
            &json!("2026-01-15"),
            &json!(1),
            &json!("0.0125"),
            &json!("0.0625")
        ),
        "{report}"
    );
    let (done, csv, err) = run(
        &pool,
        &[
            "usage",
            "report",
            "--group-by",
            "model",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-31",
            "--org",
            &o,
            "--csv",
        ],
        None,
    );
    assert!(done, "{err}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(catraca::surfaces::operator::wire::REPORT_CSV_HEADER.trim_end()),
        "{csv}"
    );
    assert!(
        lines[0].starts_with("day,group_by,id,label,requests"),
        "{csv}"
    );
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[1].starts_with("2026-01-15,model,m,m,1,1,10,5,0.0125,0.0625"),
        "{csv}"
    );

    // users: listed by organization and by email, read, disabled
    let listed = ok(&pool, &["user", "list", "--org", &o]);
    let emails: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert!(emails.contains(&"ana@exemplo.com"), "{listed}");
    assert_eq!(listed["total"], 2, "{listed}");
    let by_email = ok(&pool, &["user", "list", "--email", "BIA@"]);
    assert_eq!(
        (&by_email["total"], &by_email["data"][0]["id"]),
        (&json!(1), &json!(bia_id)),
        "{by_email}"
    );
    assert_eq!(
        ok(&pool, &["user", "get", &ana_id])["email"],
        "ana@exemplo.com"
    );
    assert_eq!(ok(&pool, &["user", "disable", &bia_id])["disabled"], true);

    // every change these commands made is audited as the CLI's
    let actors: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT actor FROM audit_log ORDER BY actor")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(actors, ["cli"]);
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT action FROM audit_log ORDER BY action")
            .fetch_all(&pool)
            .await
            .unwrap();
    for want in [
        "plan.create",
        "plan.update",
        "organization.create",
        "organization.update",
        "organization.disable",
        "organization.enable",
        "user.create",
        "user.disable",
        "api_key.create",
        "membership.role",
        "membership.add",
        "membership.remove",
    ] {
        assert!(
            actions.iter().any(|a| a == want),
            "no {want} in {actions:?}"
        );
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn bad_input_exits_non_zero_with_a_reason_and_changes_nothing(pool: PgPool) {
    let org = ok(&pool, &["org", "create", "--name", "Padaria", "--prepaid"]);
    let o = org["id"].as_str().unwrap().to_string();
    let ana = ok_with(
        &pool,
        &[
            "user",
            "create",
            "--email",
            "ana@exemplo.com",
            "--name",
            "Ana",
            "--org",
            &o,
            "--role",
            "owner",
            "--password-stdin",
        ],
        Some("senha-forte-1\n"),
    );
    let ana_id = ana["id"].as_str().unwrap().to_string();
    const COUNTS: &str = "SELECT (SELECT count(*) FROM organization) * 1000000
                               + (SELECT count(*) FROM plan) * 10000
                               + (SELECT count(*) FROM app_user) * 100
                               + (SELECT count(*) FROM ledger_entry)";
    let before = scalar(&pool, COUNTS).await;
    let audit_before = scalar(&pool, "SELECT count(*) FROM audit_log").await;
    let state = || async {
        sqlx::query_as::<_, (String, Option<i32>, Option<i64>)>(
            "SELECT name, rate_limit_rpm, balance_brl_micros FROM organization",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let org_before = state().await;
    let missing = uuid::Uuid::new_v4().to_string();

    for (args, why) in [
        // unknown plan
        (
            vec!["org", "create", "--name", "Outra", "--plan", "nope"],
            "no plan",
        ),
        (
            vec!["org", "update", &o, "--plan", "nope", "--rpm", "5"],
            "no plan",
        ),
        (
            vec!["plan", "update", "nope", "--rpm", "5"],
            "plan not found",
        ),
        // bad decimals
        (
            vec![
                "ledger",
                "post",
                "--org",
                &o,
                "--kind",
                "topup",
                "--amount",
                "1,50",
                "--idempotency-key",
                "pix-1",
            ],
            "not a non-negative decimal",
        ),
        (
            vec![
                "ledger",
                "post",
                "--org",
                &o,
                "--kind",
                "topup",
                "--amount",
                "--5",
                "--idempotency-key",
                "pix-1",
            ],
            "amount",
        ),
        (
            vec!["plan", "create", "basic", "--price-brl", "9.9999999"],
            "more than 6 decimal places",
        ),
        (
            vec!["plan", "create", "basic", "--annual-price-brl", "-1"],
            "annual_price_brl",
        ),
        // bad ids
        (
            vec!["org", "get", "not-a-uuid"],
            "not a valid organization id",
        ),
        (
            vec!["org", "update", "not-a-uuid", "--rpm", "5"],
            "not a valid organization id",
        ),
        (
            vec!["org", "update", &missing, "--rpm", "5"],
            "organization not found",
        ),
        (vec!["user", "get", "not-a-uuid"], "not a valid user id"),
        (
            vec!["key", "list", "--org", "not-a-uuid"],
            "not a valid organization id",
        ),
        (
            vec![
                "user",
                "create",
                "--email",
                "x@exemplo.com",
                "--name",
                "X",
                "--org",
                "nope",
            ],
            "not a valid organization id",
        ),
        (
            vec!["org", "add-member", &o, "nope", "--role", "admin"],
            "not a valid user id",
        ),
        // bad limits, roles, dates, groups
        (vec!["org", "update", &o, "--rpm", "0"], "rpm"),
        (vec!["org", "update", &o, "--rpm", "lots"], "none"),
        (
            vec!["org", "update", &o, "--plan", "pro", "--no-plan"],
            "cannot be used with",
        ),
        (
            vec!["org", "set-role", &o, &ana_id, "--role", "god"],
            "role",
        ),
        (
            vec![
                "user", "create", "--email", "nope", "--name", "X", "--org", &o,
            ],
            "email",
        ),
        (
            vec![
                "usage",
                "report",
                "--group-by",
                "key",
                "--from",
                "2026-13-01",
                "--to",
                "2026-01-31",
            ],
            "YYYY-MM-DD",
        ),
        (
            vec![
                "usage",
                "report",
                "--group-by",
                "key",
                "--from",
                "2026-02-01",
                "--to",
                "2026-01-31",
            ],
            "after",
        ),
        (
            vec![
                "usage",
                "report",
                "--group-by",
                "team",
                "--from",
                "2026-01-01",
                "--to",
                "2026-01-31",
            ],
            "team",
        ),
        (vec!["user", "list", "--per-page", "0"], "per_page"),
    ] {
        refused(&pool, &args, why);
    }

    assert_eq!(
        scalar(&pool, COUNTS).await,
        before,
        "a refused command wrote rows"
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM audit_log").await,
        audit_before,
        "a refused command was audited"
    );
    assert_eq!(state().await, org_before);
}
