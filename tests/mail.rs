//! The mail sender against a real SMTP server: aiosmtpd (`tests/sdk/smtp_sink.py`, installed
//! from tests/sdk/requirements.txt into the interpreter of `CATRACA_PYTHON`), which writes
//! every message it accepts to a JSON-lines file the tests read back.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::{Gateway, Mock, call, db_url, free_port, scratch, secret, single_model};

/// A running `smtp_sink.py`; killed when dropped.
struct Smtp {
    port: u16,
    out: PathBuf,
    _child: tokio::process::Child,
}

impl Smtp {
    /// Start the sink on a free port with extra `args` (`--refuse`, `--defer`, `--user`...).
    async fn start(args: &[&str]) -> Smtp {
        let python = std::env::var("CATRACA_PYTHON").unwrap_or_else(|_| "python3".into());
        let probe = std::process::Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .output();
        assert!(
            probe.as_ref().is_ok_and(|o| o.status.success()),
            "aiosmtpd is missing for {python}: run scripts/test.sh, or pip install -r tests/sdk/requirements.txt"
        );
        let port = free_port();
        let out = scratch().join("received.jsonl");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/smtp_sink.py");
        let child = tokio::process::Command::new(&python)
            .arg(script)
            .args(["--port", &port.to_string(), "--out"])
            .arg(&out)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "the SMTP sink did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Smtp {
            port,
            out,
            _child: child,
        }
    }

    /// Every message accepted so far.
    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Wait until at least `n` messages are accepted; returns them all.
    async fn wait_received(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} mails at the SMTP server, have {}: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One `outbox_email` row as the tests look at it.
#[derive(Debug, sqlx::FromRow)]
struct Row {
    outbox_email_id: i64,
    to_address: String,
    subject: String,
    body: String,
    attempts: i32,
    sent_at: Option<time::OffsetDateTime>,
    failed_at: Option<time::OffsetDateTime>,
    last_error: Option<String>,
}

/// The latest row queued for `to`.
async fn row(pool: &PgPool, to: &str) -> Row {
    sqlx::query_as(
        "SELECT outbox_email_id, to_address, subject, body, attempts, sent_at, failed_at, last_error
         FROM outbox_email WHERE to_address = $1 ORDER BY outbox_email_id DESC LIMIT 1",
    )
    .bind(to)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Wait until the latest row for `to` satisfies `done`; returns it.
async fn wait_row(pool: &PgPool, to: &str, what: &str, done: impl Fn(&Row) -> bool) -> Row {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = row(pool, to).await;
        if done(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "{what}: {r:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Wait until every row satisfies `done`; returns them, oldest first.
async fn wait_all(pool: &PgPool, what: &str, done: impl Fn(&Row) -> bool) -> Vec<Row> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT outbox_email_id, to_address, subject, body, attempts, sent_at, failed_at, last_error
             FROM outbox_email ORDER BY outbox_email_id",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        if rows.iter().all(&done) {
            return rows;
        }
        assert!(Instant::now() < deadline, "{what}: {rows:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

const FROM: &str = "Catraca <no-reply@catraca.test>";

/// A gateway with a database and `mail` as its `mail:` section (`None`: no section).
async fn gateway(pool: &PgPool, mock: &Mock, mail: Option<String>) -> Gateway {
    let body = format!(
        "{}{}",
        mail.map(|m| format!("mail: {m}\n")).unwrap_or_default(),
        single_model(mock, "gpt-4o-mini", "")
    );
    Gateway::start_with_env(
        &body,
        &[
            ("DATABASE_URL", &db_url(pool, None)),
            (
                "CATRACA_JWT_SECRET",
                "mail-secret-mail-secret-mail-secret-mail",
            ),
        ],
    )
    .await
}

/// SabIA registration: queues the verification mail to `email`.
async fn register(gw: &Gateway, email: &str) {
    let (s, v) = call(
        gw,
        "POST",
        "/v1/auth/register",
        None,
        Some(json!({"name": "Ana Souza", "email": email, "password": "senha-forte-1", "phone": "(11) 98888-7777", "company": "Exemplo"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
}

#[sqlx::test(migrations = "./migrations")]
async fn mail_reset_and_verification_reach_the_smtp_server(pool: PgPool) {
    let password = secret(&format!("smtp-pw-{}", uuid::Uuid::new_v4().simple()));
    let smtp = Smtp::start(&["--user", "catraca", "--password", &password]).await;
    let mock = Mock::start().await;
    let gw = gateway(
        &pool,
        &mock,
        Some(format!(
            "{{smtp_url: \"smtp://catraca:{password}@127.0.0.1:{}\", from: \"{FROM}\", poll_ms: 100}}",
            smtp.port
        )),
    )
    .await;

    register(&gw, "ana@exemplo.com").await;
    let got = smtp.wait_received(1).await;
    let verify = row(&pool, "ana@exemplo.com").await;
    assert_eq!(verify.subject, "Verifique seu email");
    let m = &got[0];
    assert_eq!(m["rcpt_tos"], json!(["ana@exemplo.com"]), "{m}");
    assert_eq!(m["mail_from"], "no-reply@catraca.test", "{m}");
    assert_eq!(m["login"], "catraca", "{m}");
    assert_eq!(m["from"], FROM, "{m}");
    assert_eq!(m["to"], "ana@exemplo.com", "{m}");
    assert_eq!(m["subject"], "Verifique seu email", "{m}");
    assert_eq!(m["content_type"], "text/plain", "{m}");
    assert_eq!(m["body"].as_str().unwrap().trim_end(), verify.body, "{m}");
    assert!(
        m["message_id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("<catraca-outbox-{}-", verify.outbox_email_id)),
        "{m}"
    );

    let (s, v) = call(
        &gw,
        "POST",
        "/v1/auth/forgot-password",
        None,
        Some(json!({"email": "ana@exemplo.com"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let got = smtp.wait_received(2).await;
    let reset = row(&pool, "ana@exemplo.com").await;
    assert_eq!(reset.subject, "Recuperação de senha");
    let m = &got[1];
    assert_eq!(m["rcpt_tos"], json!(["ana@exemplo.com"]), "{m}");
    assert_eq!(m["from"], FROM, "{m}");
    assert_eq!(m["subject"], "Recuperação de senha", "{m}");
    // the token arrives intact: the reset works with what the mail says
    let body = m["body"].as_str().unwrap().trim_end();
    assert_eq!(body, reset.body, "{m}");
    let token = body.rsplit(' ').next().unwrap();
    let (s, v) = call(
        &gw,
        "POST",
        "/v1/auth/reset-password",
        None,
        Some(json!({"token": token, "newPassword": "outra-senha-2"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    let all = wait_all(&pool, "both marked sent", |r| r.sent_at.is_some()).await;
    assert_eq!(all.len(), 2, "{all:?}");
    for r in &all {
        assert_eq!(
            (r.attempts, r.failed_at, &r.last_error),
            (1, None, &None),
            "{r:?}"
        );
    }
    // exactly two mails: nothing was sent twice
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.received().len(), 2);
    assert!(gw.plain_log().contains("mail sender started"));
}

#[sqlx::test(migrations = "./migrations")]
async fn mail_refusals_fail_at_once_or_are_retried_with_backoff(pool: PgPool) {
    let smtp = Smtp::start(&[
        "--refuse",
        "recusado@exemplo.com",
        "--defer",
        "depois@exemplo.com",
    ])
    .await;
    let mock = Mock::start().await;
    // retries after 300 ms, then 1800 ms; the third failed attempt is the last
    let gw = gateway(
        &pool,
        &mock,
        Some(format!(
            "{{smtp_url: \"smtp://127.0.0.1:{}\", from: \"{FROM}\", max_attempts: 3, poll_ms: 50, retry_base_ms: 300}}",
            smtp.port
        )),
    )
    .await;

    // 550: failed for good after one attempt, with the server's reason
    register(&gw, "recusado@exemplo.com").await;
    let r = wait_row(&pool, "recusado@exemplo.com", "failed at once", |r| {
        r.failed_at.is_some()
    })
    .await;
    assert_eq!(r.attempts, 1, "{r:?}");
    assert!(r.sent_at.is_none(), "{r:?}");
    let e = r.last_error.as_deref().unwrap();
    assert!(
        e.contains("550") && e.contains("mailbox unavailable"),
        "{e}"
    );

    // 451: retried, attempts growing, the error kept; failed after the third attempt
    let queued = Instant::now();
    register(&gw, "depois@exemplo.com").await;
    let r = wait_row(&pool, "depois@exemplo.com", "retried", |r| r.attempts >= 2).await;
    if r.attempts == 2 {
        assert!(r.failed_at.is_none(), "{r:?}");
    }
    assert!(r.last_error.as_deref().unwrap().contains("451"), "{r:?}");
    let r = wait_row(&pool, "depois@exemplo.com", "failed after 3", |r| {
        r.failed_at.is_some()
    })
    .await;
    assert_eq!(r.attempts, 3, "{r:?}");
    let e = r.last_error.as_deref().unwrap();
    assert!(e.contains("451") && e.contains("try again later"), "{e}");
    // the backoff held: 300 ms then 1800 ms between the three attempts
    assert!(
        queued.elapsed() >= Duration::from_millis(2100),
        "{:?}",
        queued.elapsed()
    );

    // a refused recipient blocks nobody else
    register(&gw, "ana@exemplo.com").await;
    let got = smtp.wait_received(1).await;
    wait_row(&pool, "ana@exemplo.com", "sent", |r| r.sent_at.is_some()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_now = smtp.received();
    assert_eq!(got_now.len(), 1, "{got_now:?}");
    assert_eq!(got[0]["rcpt_tos"], json!(["ana@exemplo.com"]));
    // and the failed rows stay failed: no attempt after the last
    let r = row(&pool, "recusado@exemplo.com").await;
    assert_eq!(r.attempts, 1, "{r:?}");
    assert_eq!(row(&pool, "depois@exemplo.com").await.attempts, 3);
}

#[sqlx::test(migrations = "./migrations")]
async fn mail_connection_refused_is_transient(pool: PgPool) {
    let nothing = free_port(); // no SMTP server listens here
    let mock = Mock::start().await;
    let gw = gateway(
        &pool,
        &mock,
        Some(format!(
            "{{smtp_url: \"smtp://127.0.0.1:{nothing}\", from: \"{FROM}\", max_attempts: 3, poll_ms: 50, retry_base_ms: 200}}"
        )),
    )
    .await;
    register(&gw, "ana@exemplo.com").await;
    let r = wait_row(&pool, "ana@exemplo.com", "one failed attempt", |r| {
        r.attempts >= 1
    })
    .await;
    let e = r.last_error.clone().unwrap();
    assert!(e.to_lowercase().contains("refused"), "{e}");
    let r = wait_row(&pool, "ana@exemplo.com", "retried, then failed", |r| {
        r.failed_at.is_some()
    })
    .await;
    assert_eq!(r.attempts, 3, "{r:?}");
    assert!(r.sent_at.is_none());
    assert!(r.last_error.unwrap().to_lowercase().contains("refused"));
}

#[sqlx::test(migrations = "./migrations")]
async fn mail_without_smtp_stays_queued_with_one_log_line(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = gateway(&pool, &mock, None).await;
    register(&gw, "ana@exemplo.com").await;
    let (s, _) = call(
        &gw,
        "POST",
        "/v1/auth/forgot-password",
        None,
        Some(json!({"email": "ana@exemplo.com"})),
    )
    .await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rows = wait_all(&pool, "queued", |_| true).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in &rows {
        assert_eq!(
            (r.attempts, r.sent_at, r.failed_at, &r.last_error),
            (0, None, None, &None),
            "{r:?}"
        );
    }
    let log = gw.plain_log();
    assert_eq!(log.matches("no SMTP server configured").count(), 1, "{log}");
    assert!(!log.contains("mail sender started"), "{log}");
}

#[sqlx::test(migrations = "./migrations")]
async fn mail_two_nodes_send_each_mail_once(pool: PgPool) {
    // a slow server: each mail takes 50 ms, so a node is still sending its batch when the other
    // polls (every 20 ms) and would take the same mails again without the claim's lease
    let smtp = Smtp::start(&["--delay-ms", "50"]).await;
    let mock = Mock::start().await;
    let mail = format!(
        "{{smtp_url: \"smtp://127.0.0.1:{}\", from: \"{FROM}\", poll_ms: 20}}",
        smtp.port
    );
    let a = gateway(&pool, &mock, Some(mail.clone())).await;
    let b = gateway(&pool, &mock, Some(mail)).await;
    const N: usize = 23; // not a multiple of the batch: one node runs out while the other sends
    sqlx::query(
        "INSERT INTO outbox_email (to_address, subject, body)
         SELECT 'u' || i || '@exemplo.com', 'Assunto ' || i, 'corpo ' || i
         FROM generate_series(1, $1) i",
    )
    .bind(N as i32)
    .execute(&pool)
    .await
    .unwrap();
    let rows = wait_all(&pool, "all sent", |r| r.sent_at.is_some()).await;
    assert_eq!(rows.len(), N);
    assert!(rows.iter().all(|r| r.attempts == 1), "{rows:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = smtp.received();
    assert_eq!(got.len(), N, "a mail was sent twice or lost");
    let mut to: Vec<&str> = got.iter().map(|m| m["to"].as_str().unwrap()).collect();
    to.sort_unstable();
    to.dedup();
    assert_eq!(to.len(), N);
    for r in &rows {
        let m = got
            .iter()
            .find(|m| m["to"] == r.to_address.as_str())
            .unwrap();
        assert_eq!(
            (m["subject"].as_str(), m["body"].as_str().map(str::trim_end)),
            (Some(r.subject.as_str()), Some(r.body.as_str()))
        );
    }
    let sent_by = |g: &Gateway| g.plain_log().matches("mail sent").count();
    eprintln!("node a sent {}, node b sent {}", sent_by(&a), sent_by(&b));
    assert_eq!(sent_by(&a) + sent_by(&b), N);
}

/// `catraca admin` alone (no gateway in the process) sends the outbox too.
#[sqlx::test(migrations = "./migrations")]
async fn mail_is_sent_by_the_admin_app_running_alone(pool: PgPool) {
    let smtp = Smtp::start(&[]).await;
    let mock = Mock::start().await;
    let dir = scratch();
    let config = dir.join("catraca.yaml");
    std::fs::write(
        &config,
        format!(
            "{}mail: {{smtp_url: \"smtp://127.0.0.1:{}\", from: \"{FROM}\", poll_ms: 100}}\n{}",
            crate::common::header(&dir, free_port(), free_port()),
            smtp.port,
            single_model(&mock, "gpt-4o-mini", "")
        ),
    )
    .unwrap();
    let _admin = tokio::process::Command::new(env!("CARGO_BIN_EXE_catraca"))
        .args(["admin", "--config"])
        .arg(&config)
        .env("DATABASE_URL", db_url(&pool, None))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    sqlx::query("INSERT INTO outbox_email (to_address, subject, body) VALUES ('ana@exemplo.com', 'Oi', 'corpo')")
        .execute(&pool)
        .await
        .unwrap();
    let got = smtp.wait_received(1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    wait_row(&pool, "ana@exemplo.com", "sent", |r| r.sent_at.is_some()).await;
}
