//! Webhooks and their deliveries (`webhook_delivery` rows are written by the usage writer in
//! the statement that crosses a plan's quota).

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// A webhook as its team lists it.
#[derive(Debug, sqlx::FromRow)]
pub struct WebhookRow {
    /// Id.
    pub webhook_id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// Events subscribed.
    pub events: Vec<String>,
    /// `active` or `disabled`.
    pub status: String,
    /// Last successful delivery.
    pub last_triggered_at: Option<time::OffsetDateTime>,
    /// Created.
    pub created_at: time::OffsetDateTime,
}

const WEBHOOK_COLUMNS: &str = "webhook_id, url, events, status, last_triggered_at, created_at";

/// A new webhook; the stored row.
pub async fn insert(
    db: impl PgExecutor<'_>,
    org: Uuid,
    url: &str,
    events: &[String],
    secret_sealed: Option<&[u8]>,
) -> Result<WebhookRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO webhook (organization_id, url, events, secret_sealed) VALUES ($1, $2, $3, $4)
         RETURNING {WEBHOOK_COLUMNS}"
    ))
    .bind(org)
    .bind(url)
    .bind(events)
    .bind(secret_sealed)
    .fetch_one(db)
    .await
}

/// The organization's webhooks, oldest first.
pub async fn of_org(db: impl PgExecutor<'_>, org: Uuid) -> Result<Vec<WebhookRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhook WHERE organization_id = $1 ORDER BY created_at"
    ))
    .bind(org)
    .fetch_all(db)
    .await
}

/// A delivery claimed for sending.
#[derive(Debug, sqlx::FromRow)]
pub struct DueRow {
    /// Delivery id.
    pub webhook_delivery_id: i64,
    /// Its webhook.
    pub webhook_id: Uuid,
    /// Event name.
    pub event: String,
    /// Target URL.
    pub url: String,
    /// JSON body.
    pub payload: serde_json::Value,
    /// The sealed signing secret, if any.
    pub secret_sealed: Option<Vec<u8>>,
    /// Attempts so far.
    pub attempts: i32,
}

/// Claim up to `n` due deliveries for `lease_secs` (skipping rows another process holds).
pub async fn claim_due(pool: &PgPool, n: i64, lease_secs: f64) -> Result<Vec<DueRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE webhook_delivery d SET next_attempt_at = now() + make_interval(secs => $1)
         FROM webhook w
         WHERE d.webhook_delivery_id IN (
                 SELECT webhook_delivery_id FROM webhook_delivery
                 WHERE status = 'pending' AND next_attempt_at <= now()
                 ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           AND w.webhook_id = d.webhook_id
         RETURNING d.webhook_delivery_id, d.webhook_id, d.event, w.url, d.payload,
                   w.secret_sealed, d.attempts",
    )
    .bind(lease_secs)
    .bind(n)
    .fetch_all(pool)
    .await
}

/// A delivery answered 2xx: delivered, and its webhook's `last_triggered_at` set.
pub async fn mark_delivered(
    pool: &PgPool,
    delivery: i64,
    webhook: Uuid,
    status: u16,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE webhook_delivery SET status = 'delivered', delivered_at = now(),
                attempts = attempts + 1, last_status = $2, last_error = NULL
         WHERE webhook_delivery_id = $1",
    )
    .bind(delivery)
    .bind(i32::from(status))
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE webhook SET last_triggered_at = now() WHERE webhook_id = $1")
        .bind(webhook)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// A failed attempt: `attempts` recorded with the answer's status and the error; `failed`
/// once `attempts` reaches `max_attempts`, else retried after `backoff_secs`.
pub async fn mark_attempt_failed(
    pool: &PgPool,
    delivery: i64,
    attempts: i32,
    status: Option<u16>,
    error: &str,
    max_attempts: i32,
    backoff_secs: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_delivery SET attempts = $2, last_status = $3, last_error = $4,
                status = CASE WHEN $2 >= $5 THEN 'failed' ELSE 'pending' END,
                next_attempt_at = now() + make_interval(secs => $6)
         WHERE webhook_delivery_id = $1",
    )
    .bind(delivery)
    .bind(attempts)
    .bind(status.map(i32::from))
    .bind(error)
    .bind(max_attempts)
    .bind(backoff_secs)
    .execute(pool)
    .await?;
    Ok(())
}
