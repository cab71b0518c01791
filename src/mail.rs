//! The mail sender: delivers the `outbox_email` rows (password reset and email verification
//! mails queued by the admin app) to the SMTP server of `mail.smtp_url`.
//!
//! It runs beside the admin app on every node with a database ([`MailService`]). Each poll
//! claims up to [`BATCH`] due mails ([`crate::store::outbox::claim_due`], `FOR UPDATE SKIP
//! LOCKED` with a lease, so several nodes never send one mail at once) and sends them one by
//! one:
//! - accepted: `sent_at` is set;
//! - a permanent refusal (an SMTP 5xx reply, or a recipient that is not an address): `failed_at`
//!   is set at once, with the reason in `last_error`;
//! - anything else (a 4xx reply, connection refused, timeout, TLS, and an authentication 5xx,
//!   which is the operator's to fix rather than the mail's): `last_error` is kept and the mail
//!   is tried again after [`backoff`] (5 s, 30 s, 2 min, 10 min, 30 min, then hourly with
//!   the default `mail.retry_base_ms`), until `mail.max_attempts` attempts have failed; then
//!   `failed_at` is set.
//!
//! Delivery is at least once: a node that dies between the server's acceptance and the update
//! leaves the mail to be sent again when its lease ends; the `Message-ID` is the same on every
//! attempt, so a receiver may drop the duplicate. Without `mail.smtp_url` the sender logs one
//! line at start and the mails stay queued. The SMTP password is never logged: errors are
//! lettre's, which hold the server's replies and never the credentials.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use sqlx::PgPool;

use crate::config::resolve::MailConfig;
use crate::store::outbox::{self, DueMail};
use crate::store::pg::LazyPool;

/// Most mails claimed by one poll.
pub const BATCH: i64 = 5;
/// Longest `last_error` kept, in characters.
pub const MAX_ERROR_CHARS: usize = 500;
/// Retry delays after the 1st, 2nd, ... failed attempt, in units of `mail.retry_base_ms`; the
/// last one repeats.
const BACKOFF_STEPS: [u32; 6] = [1, 6, 24, 120, 360, 720];
/// SMTP replies that refuse the sender's credentials or connection security (530, 534, 535,
/// 538): a configuration problem the operator fixes, so the mail waits instead of failing.
const AUTH_CODES: [&str; 4] = ["530", "534", "535", "538"];

/// Delay before the next attempt of a mail whose `failed_attempts`-th attempt (1-based) just
/// failed: `base` × 1, 6, 24, 120, 360, then 720 for every later one (with the default base of
/// 5 s: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h).
pub fn backoff(base: Duration, failed_attempts: u32) -> Duration {
    let i = (failed_attempts.max(1) - 1) as usize;
    base * BACKOFF_STEPS[i.min(BACKOFF_STEPS.len() - 1)]
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// No later attempt can succeed: fail the mail now.
    pub permanent: bool,
    /// What happened, at most [`MAX_ERROR_CHARS`] characters.
    pub text: String,
}

impl SendError {
    fn new(permanent: bool, text: &str) -> Self {
        SendError {
            permanent,
            text: bounded(text),
        }
    }
}

/// `text` cut to [`MAX_ERROR_CHARS`] characters (an ellipsis marks a cut).
pub fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// Whether an SMTP error is permanent: a 5xx reply other than an authentication one.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let auth = e
        .status()
        .is_some_and(|c| AUTH_CODES.contains(&c.to_string().as_str()));
    let text = if e.is_timeout() {
        format!("timed out: {e}")
    } else {
        e.to_string()
    };
    SendError::new(e.is_permanent() && !auth, &text)
}

/// Sends one mail at a time to the configured SMTP server.
pub struct Sender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    max_attempts: u32,
    retry_base: Duration,
    /// Longest one mail may take, connection and every reply included.
    deadline: Duration,
}

impl Sender {
    /// A sender for `config` (the URL was checked by the config; an error here is lettre's and
    /// never repeats the URL).
    pub fn new(config: &MailConfig) -> Result<Self, lettre::transport::smtp::Error> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)?
            .timeout(Some(config.timeout))
            .build();
        Ok(Sender {
            transport,
            from: config.from.clone(),
            max_attempts: config.max_attempts,
            retry_base: config.retry_base,
            // `timeout` bounds each read (connect, every reply); this bounds the whole exchange
            // against a server that answers slowly at every step
            deadline: config.timeout * 2,
        })
    }

    /// How long a claim holds its mails: enough to work through a whole batch, each mail at
    /// its deadline, before another node may take them.
    pub fn lease(&self) -> Duration {
        self.deadline * BATCH as u32 + Duration::from_secs(60)
    }

    /// One attempt to hand `mail` to the SMTP server.
    pub async fn send(&self, mail: &DueMail) -> Result<(), SendError> {
        let to: Mailbox = mail
            .to_address
            .parse()
            .map_err(|e| SendError::new(true, &format!("invalid recipient address: {e}")))?;
        // the same id on every attempt of this row: a resend after a lost update is a duplicate
        // the receiver can recognize
        let message_id = format!(
            "<catraca-outbox-{}-{}@{}>",
            mail.outbox_email_id,
            mail.created_at.unix_timestamp_nanos(),
            self.from.email.domain()
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .message_id(Some(message_id))
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| SendError::new(true, &format!("cannot build the message: {e}")))?;
        match tokio::time::timeout(self.deadline, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(SendError::new(
                false,
                &format!("timed out after {} ms", self.deadline.as_millis()),
            )),
        }
    }

    /// Claim the due mails and try each once; returns how many were claimed.
    pub async fn deliver_due(&self, pool: &PgPool) -> Result<usize, sqlx::Error> {
        let due = outbox::claim_due(pool, BATCH, self.lease()).await?;
        for mail in &due {
            let id = mail.outbox_email_id;
            let attempt = u32::try_from(mail.attempts).unwrap_or(0).saturating_add(1);
            match self.send(mail).await {
                Ok(()) => {
                    outbox::mark_sent(pool, id).await?;
                    tracing::info!(mail = id, attempt, "mail sent");
                }
                Err(e) if e.permanent || attempt >= self.max_attempts => {
                    outbox::mark_failed(pool, id, &e.text).await?;
                    tracing::warn!(
                        mail = id,
                        attempt,
                        permanent = e.permanent,
                        error = %e.text,
                        "mail failed for good"
                    );
                }
                Err(e) => {
                    let retry_in = backoff(self.retry_base, attempt);
                    outbox::mark_retry(pool, id, &e.text, retry_in).await?;
                    tracing::info!(
                        mail = id,
                        attempt,
                        retry_in_ms = retry_in.as_millis() as u64,
                        error = %e.text,
                        "mail not sent; will retry"
                    );
                }
            }
        }
        Ok(due.len())
    }

    /// Deliver due mails every `poll` until shutdown.
    pub async fn run(&self, pool: &PgPool, poll: Duration, mut shutdown: ShutdownWatch) {
        let mut db_down = false;
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.deliver_due(pool).await {
                Ok(n) => {
                    if db_down {
                        tracing::info!("mail sender: database reachable again");
                        db_down = false;
                    }
                    if n as i64 == BATCH {
                        continue; // more may be due
                    }
                }
                // one line per outage, not one per poll
                Err(e) if !db_down => {
                    tracing::warn!(error = %e, "mail sender: database error; retrying each poll");
                    db_down = true;
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// The sender as a background service of `catraca serve` (with a database).
pub struct MailService {
    pool: LazyPool,
    config: Option<MailConfig>,
}

impl MailService {
    /// `config` is `None` without `mail.smtp_url`: the service then only says so.
    pub fn new(pool: LazyPool, config: Option<MailConfig>) -> Self {
        MailService { pool, config }
    }
}

#[async_trait]
impl BackgroundService for MailService {
    async fn start(&self, shutdown: ShutdownWatch) {
        let Some(config) = &self.config else {
            tracing::warn!(
                "mail: no SMTP server configured (mail.smtp_url); password reset and verification mails stay queued in outbox_email"
            );
            return;
        };
        let sender = match Sender::new(config) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "mail: cannot set up the SMTP transport; mails stay queued");
                return;
            }
        };
        tracing::info!(
            smtp = ?config,
            "mail sender started"
        );
        sender.run(self.pool.get(), config.poll, shutdown).await;
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::{MAX_ERROR_CHARS, backoff, bounded};

    #[test]
    fn mail_backoff_follows_the_documented_schedule() {
        let base = Duration::from_secs(5);
        let secs: Vec<u64> = (1..=8).map(|n| backoff(base, n).as_secs()).collect();
        assert_eq!(secs, [5, 30, 120, 600, 1800, 3600, 3600, 3600]);
        assert_eq!(
            backoff(Duration::from_millis(100), 2),
            Duration::from_millis(600)
        );
        assert_eq!(backoff(base, 0), base);
    }

    #[test]
    fn mail_error_text_is_bounded_on_a_char_boundary() {
        let long = "é".repeat(MAX_ERROR_CHARS + 10);
        let b = bounded(&long);
        assert_eq!(b.chars().count(), MAX_ERROR_CHARS + 1);
        assert!(b.ends_with('…'));
        assert_eq!(bounded("550 no"), "550 no");
    }

    const BASE: &str = "providers:\n  - {name: p, base_url: \"http://127.0.0.1:9/v1\"}\ndeployments:\n  - {name: d, provider: p, model: up}\nmodels:\n  - {name: m, deployments: [d]}\n";

    fn parse(
        mail: &str,
        env: &[(&str, &str)],
    ) -> Result<crate::config::Config, Vec<crate::config::ConfigError>> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        crate::config::parse_str(&format!("{mail}{BASE}"), Path::new("t.yaml"), &|k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn mail_config_has_defaults_and_keeps_the_password_out_of_debug() {
        let c = parse(
            "mail:\n  smtp_url: \"smtps://ana:s3nh4-secreta@smtp.example.com:465\"\n  from: \"Catraca <no-reply@example.com>\"\n",
            &[],
        )
        .unwrap();
        let m = c.mail.as_ref().unwrap();
        assert_eq!(m.max_attempts, 5);
        assert_eq!(m.poll, Duration::from_millis(1000));
        assert_eq!(m.retry_base, Duration::from_secs(5));
        assert_eq!(m.timeout, Duration::from_secs(30));
        assert_eq!(m.from.email.to_string(), "no-reply@example.com");
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3nh4"), "{debug}");
        assert!(!debug.contains("ana"), "{debug}");
        assert!(debug.contains("smtps://smtp.example.com:465"), "{debug}");
        // no section, or no URL: no sender
        assert!(parse("", &[]).unwrap().mail.is_none());
        assert!(
            parse("mail: {from: a@b.example}\n", &[])
                .unwrap()
                .mail
                .is_none()
        );
        // the env var overrides the file
        let c = parse(
            "mail: {smtp_url: \"smtp://127.0.0.1:25\", from: a@b.example, max_attempts: 2, poll_ms: 50, retry_base_ms: 10, timeout_ms: 500}\n",
            &[("CATRACA_SMTP_URL", "smtp://127.0.0.1:2525?tls=required")],
        )
        .unwrap();
        let m = c.mail.unwrap();
        assert_eq!(m.smtp_url, "smtp://127.0.0.1:2525?tls=required");
        assert_eq!(
            (m.max_attempts, m.poll, m.retry_base, m.timeout),
            (
                2,
                Duration::from_millis(50),
                Duration::from_millis(10),
                Duration::from_millis(500)
            )
        );
    }

    #[test]
    fn mail_config_errors_name_the_field_and_never_the_password() {
        let errs = parse(
            "mail:\n  smtp_url: \"http://ana:s3nh4-secreta@smtp.example.com\"\n  from: \"not a mailbox\"\n  max_attempts: 0\n  poll_ms: 0\n",
            &[],
        )
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 4, "{text:?}");
        for want in [
            "t.yaml:2:13: mail.smtp_url: must start with smtp:// or smtps://",
            "t.yaml:3:9: mail.from: \"not a mailbox\" is not a mailbox",
            "mail.max_attempts: must be between 1 and 100",
            "mail.poll_ms: must be > 0",
        ] {
            assert!(text.iter().any(|t| t.contains(want)), "{want}: {text:?}");
        }
        assert!(!text.iter().any(|t| t.contains("s3nh4")), "{text:?}");
        for (url, want) in [
            ("smtp://", "mail.smtp_url: "),
            ("smtp://host:99999", "mail.smtp_url: not a URL"),
            (
                "smtp://host?tls=maybe",
                "tls must be required or opportunistic",
            ),
            ("smtp://host?auth=x", "the only parameter is tls"),
            ("not a url", "mail.smtp_url: not a URL"),
        ] {
            let errs = parse(
                &format!("mail: {{smtp_url: \"{url}\", from: a@b.example}}\n"),
                &[],
            )
            .unwrap_err();
            assert!(errs[0].message.contains(want), "{url}: {errs:?}");
        }
        // a URL without a sender
        let errs = parse("mail: {smtp_url: \"smtp://127.0.0.1:25\"}\n", &[]).unwrap_err();
        assert!(errs[0].message.contains("mail.from: required"), "{errs:?}");
        // a bad URL from the environment is reported against the variable, still unprinted
        let errs = parse(
            "mail: {from: a@b.example}\n",
            &[("CATRACA_SMTP_URL", "ftp://u:s3nh4-secreta@h")],
        )
        .unwrap_err();
        assert_eq!(errs[0].file, "CATRACA_SMTP_URL");
        assert!(!errs[0].to_string().contains("s3nh4"), "{errs:?}");
    }
}
