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
    /// Public attempt id (`X-Catraca-Delivery`).
    pub attempt_id: Uuid,
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
         RETURNING d.webhook_delivery_id, d.attempt_id, d.webhook_id, d.event, w.url, d.payload,
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

/// Replace the sealed signing secret of `org`'s webhook; whether it exists.
pub async fn set_secret(
    db: impl PgExecutor<'_>,
    org: Uuid,
    webhook: Uuid,
    secret_sealed: &[u8],
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook SET secret_sealed = $3 WHERE webhook_id = $2 AND organization_id = $1",
    )
    .bind(org)
    .bind(webhook)
    .bind(secret_sealed)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A delivery attempt as Tokia shows it.
#[derive(Debug, sqlx::FromRow)]
pub struct AttemptRow {
    /// Internal row id.
    pub webhook_delivery_id: i64,
    /// Public id (`X-Catraca-Delivery`).
    pub attempt_id: Uuid,
    /// Its webhook.
    pub webhook_id: Uuid,
    /// Event name.
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// The original this one replays (its row id).
    pub replay_of: Option<i64>,
    /// The original's public id.
    pub replay_of_attempt: Option<Uuid>,
    /// Created.
    pub created_at: time::OffsetDateTime,
}

const ATTEMPT_COLUMNS: &str = "d.webhook_delivery_id, d.attempt_id, d.webhook_id, d.event, d.status,
    d.replay_of, (SELECT o.attempt_id FROM webhook_delivery o WHERE o.webhook_delivery_id = d.replay_of)
    AS replay_of_attempt, d.created_at";

/// `org`'s attempt with this public id, its row locked.
pub async fn attempt_for_update(
    db: impl PgExecutor<'_>,
    org: Uuid,
    attempt: Uuid,
) -> Result<Option<AttemptRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM webhook_delivery d JOIN webhook w USING (webhook_id)
         WHERE d.attempt_id = $2 AND w.organization_id = $1 FOR UPDATE OF d"
    ))
    .bind(org)
    .bind(attempt)
    .fetch_optional(db)
    .await
}

/// Lock the delivery row `id` (serializes replays of one original).
pub async fn lock_delivery(db: impl PgExecutor<'_>, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1 FROM webhook_delivery WHERE webhook_delivery_id = $1 FOR UPDATE")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// The queued (pending) replay of the original `id`, if any.
pub async fn queued_replay(
    db: impl PgExecutor<'_>,
    id: i64,
) -> Result<Option<AttemptRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM webhook_delivery d
         WHERE d.replay_of = $1 AND d.status = 'pending'"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// A new pending attempt cloning the original `id`'s webhook, event and payload.
pub async fn insert_replay(db: impl PgExecutor<'_>, id: i64) -> Result<AttemptRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "WITH d AS (
             INSERT INTO webhook_delivery (webhook_id, event, dedup_key, payload, replay_of)
             SELECT webhook_id, event, 'replay:' || gen_random_uuid(), payload, webhook_delivery_id
             FROM webhook_delivery WHERE webhook_delivery_id = $1
             RETURNING *)
         SELECT {ATTEMPT_COLUMNS} FROM d"
    ))
    .bind(id)
    .fetch_one(db)
    .await
}

/// One delivery attempt as the operator lists it.
#[derive(Debug, sqlx::FromRow)]
pub struct AttemptListRow {
    /// Public id (`X-Catraca-Delivery`).
    pub attempt_id: Uuid,
    /// Event name.
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Sends tried so far.
    pub attempts: i32,
    /// The receiver's last HTTP status.
    pub last_status: Option<i32>,
    /// The last failure.
    pub last_error: Option<String>,
    /// The public id of the attempt this one replays.
    pub replay_of_attempt: Option<Uuid>,
    /// Created.
    pub created_at: time::OffsetDateTime,
    /// Next send (while pending).
    pub next_attempt_at: time::OffsetDateTime,
    /// Delivered.
    pub delivered_at: Option<time::OffsetDateTime>,
}

/// The newest `limit` attempts of webhook `id`, newest first; `None` when there is no such
/// webhook.
pub async fn attempts(
    pool: &PgPool,
    id: Uuid,
    limit: i64,
) -> Result<Option<Vec<AttemptListRow>>, sqlx::Error> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM webhook WHERE webhook_id = $1)")
            .bind(id)
            .fetch_one(pool)
            .await?;
    if !exists {
        return Ok(None);
    }
    sqlx::query_as(
        "SELECT d.attempt_id, d.event, d.status, d.attempts, d.last_status, d.last_error,
                (SELECT o.attempt_id FROM webhook_delivery o
                 WHERE o.webhook_delivery_id = d.replay_of) AS replay_of_attempt,
                d.created_at, d.next_attempt_at, d.delivered_at
         FROM webhook_delivery d WHERE d.webhook_id = $1
         ORDER BY d.webhook_delivery_id DESC LIMIT $2",
    )
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map(Some)
}
