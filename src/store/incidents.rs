//! Incidents: what the operator declares on the status page (migrations/0023).

use sqlx::PgPool;
use uuid::Uuid;

/// One incident.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IncidentRow {
    /// Id.
    pub incident_id: Uuid,
    /// Headline.
    pub title: String,
    /// `minor`, `major`, `critical` or `maintenance`.
    pub severity: String,
    /// Text for customers.
    pub message: String,
    /// Opened.
    pub created_at: time::OffsetDateTime,
    /// Resolved; `None` while active.
    pub resolved_at: Option<time::OffsetDateTime>,
    /// `operator` or `breaker` (opened by a gateway while a provider's circuit is open).
    pub source: String,
    /// The provider of a breaker incident.
    pub provider: Option<String>,
}

const COLUMNS: &str =
    "incident_id, title, severity, message, created_at, resolved_at, source, provider";

/// Open an incident.
pub async fn create(
    pool: &PgPool,
    title: &str,
    severity: &str,
    message: &str,
) -> Result<IncidentRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO incident (title, severity, message) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    ))
    .bind(title)
    .bind(severity)
    .bind(message)
    .fetch_one(pool)
    .await
}

/// Resolve an incident (a resolved one keeps its first resolution time); `None` if unknown.
pub async fn resolve(pool: &PgPool, id: Uuid) -> Result<Option<IncidentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE incident SET resolved_at = coalesce(resolved_at, now()) WHERE incident_id = $1
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The unresolved incidents, newest first (a breaker incident only while a gateway saw its
/// breaker open in the last `breaker_stale_secs`).
pub async fn active(
    pool: &PgPool,
    breaker_stale_secs: f64,
) -> Result<Vec<IncidentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM incident
         WHERE resolved_at IS NULL
           AND (source = 'operator' OR last_seen_at > now() - make_interval(secs => $1))
         ORDER BY created_at DESC, incident_id"
    ))
    .bind(breaker_stale_secs)
    .fetch_all(pool)
    .await
}

/// Open the breaker incident of `provider`, or note that its breaker is still open.
pub async fn breaker_seen(
    pool: &PgPool,
    provider: &str,
    title: &str,
    message: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO incident (title, severity, message, source, provider, last_seen_at)
         VALUES ($2, 'major', $3, 'breaker', $1, now())
         ON CONFLICT (provider) WHERE source = 'breaker' AND resolved_at IS NULL
         DO UPDATE SET last_seen_at = now()",
    )
    .bind(provider)
    .bind(title)
    .bind(message)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Resolve the breaker incidents no gateway has seen open for `stale_secs`.
pub async fn breaker_expire(pool: &PgPool, stale_secs: f64) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "UPDATE incident SET resolved_at = now()
         WHERE source = 'breaker' AND resolved_at IS NULL
           AND last_seen_at <= now() - make_interval(secs => $1)",
    )
    .bind(stale_secs)
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}

/// Milliseconds a `SELECT 1` takes.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(pool)
        .await
        .map(|_| ())
}
