//! The mail outbox (`outbox_email`) as the sender ([`crate::mail`]) sees it: claim the due
//! mails, then record each attempt. Rows are queued by `accounts::queue_email`.
//!
//! Several gateway nodes may run the sender against one database: a claim is one statement
//! that locks the due rows with `FOR UPDATE SKIP LOCKED` and pushes their `next_attempt_at`
//! past a lease, so no other node picks them up while this one sends them. A node that dies
//! mid-batch leaves its rows due again when the lease ends (delivery is at least once).

use std::time::Duration;

use sqlx::PgPool;

/// A mail claimed for one attempt.
#[derive(Debug, sqlx::FromRow)]
pub struct DueMail {
    /// Row id.
    pub outbox_email_id: i64,
    /// Recipient address, as queued.
    pub to_address: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// Attempts made before this one.
    pub attempts: i32,
    /// When it was queued.
    pub created_at: time::OffsetDateTime,
}

/// Claim up to `limit` due mails (unsent, not failed, `next_attempt_at` passed; oldest due
/// first) for `lease`: until then no other claim returns them.
pub async fn claim_due(
    pool: &PgPool,
    limit: i64,
    lease: Duration,
) -> Result<Vec<DueMail>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE outbox_email SET next_attempt_at = now() + make_interval(secs => $2)
         WHERE outbox_email_id IN (
                 SELECT outbox_email_id FROM outbox_email
                 WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
                 ORDER BY next_attempt_at, outbox_email_id
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED)
         RETURNING outbox_email_id, to_address, subject, body, attempts, created_at",
    )
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// The SMTP server accepted the mail.
pub async fn mark_sent(pool: &PgPool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox_email SET sent_at = now(), attempts = attempts + 1, last_error = NULL
         WHERE outbox_email_id = $1 AND sent_at IS NULL",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// An attempt failed and another one is due in `retry_in`.
pub async fn mark_retry(
    pool: &PgPool,
    id: i64,
    error: &str,
    retry_in: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox_email SET attempts = attempts + 1, last_error = $2,
                next_attempt_at = now() + make_interval(secs => $3)
         WHERE outbox_email_id = $1 AND sent_at IS NULL",
    )
    .bind(id)
    .bind(error)
    .bind(retry_in.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}

/// An attempt failed and no other will be made (a permanent refusal, or the last attempt).
pub async fn mark_failed(pool: &PgPool, id: i64, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox_email SET attempts = attempts + 1, last_error = $2, failed_at = now()
         WHERE outbox_email_id = $1 AND sent_at IS NULL",
    )
    .bind(id)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}
