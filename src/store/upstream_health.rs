//! The hourly upstream-health rollup (migrations/0029): gateways add their attempt counts per
//! provider; `GET /v1/upstream-health` sums at most 24 × days rows per provider.

use sqlx::PgPool;

/// One provider's counts to add to the current hour.
#[derive(Debug, Clone)]
pub struct Add<'a> {
    /// Provider name.
    pub provider: &'a str,
    /// Attempts.
    pub attempts: i64,
    /// Failed attempts.
    pub failures: i64,
    /// Answered attempts per latency bucket.
    pub latency_counts: Vec<i64>,
}

/// Add `rows` to the current hour's rollup, one transaction.
pub async fn add(pool: &PgPool, rows: &[Add<'_>]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for r in rows {
        sqlx::query(
            "INSERT INTO upstream_health_hour (hour, provider, attempts, failures, latency_counts)
             VALUES (date_trunc('hour', now()), $1, $2, $3, $4)
             ON CONFLICT (hour, provider) DO UPDATE SET
                 attempts = upstream_health_hour.attempts + EXCLUDED.attempts,
                 failures = upstream_health_hour.failures + EXCLUDED.failures,
                 latency_counts = (
                     SELECT array_agg(coalesce(a, 0) + coalesce(b, 0) ORDER BY i)
                     FROM unnest(upstream_health_hour.latency_counts, EXCLUDED.latency_counts)
                          WITH ORDINALITY AS t(a, b, i))",
        )
        .bind(r.provider)
        .bind(r.attempts)
        .bind(r.failures)
        .bind(&r.latency_counts)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// One provider's sums over a window.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HealthRow {
    /// Provider name.
    pub provider: String,
    /// Attempts.
    pub attempts: i64,
    /// Failed attempts.
    pub failures: i64,
    /// Answered attempts per latency bucket.
    pub latency_counts: Vec<i64>,
}

/// Every provider's sums over the hours that started in the last `days` days (the current,
/// partial hour included), by name.
pub async fn report(pool: &PgPool, days: i32) -> Result<Vec<HealthRow>, sqlx::Error> {
    sqlx::query_as(
        "WITH h AS (
             SELECT provider, attempts, failures, latency_counts FROM upstream_health_hour
             WHERE hour >= date_trunc('hour', now()) - make_interval(days => $1))
         SELECT p.provider, p.attempts, p.failures,
                coalesce((SELECT array_agg(s ORDER BY i) FROM (
                     SELECT u.i, sum(u.c)::int8 AS s
                     FROM h, unnest(h.latency_counts) WITH ORDINALITY AS u(c, i)
                     WHERE h.provider = p.provider GROUP BY u.i) x), '{}') AS latency_counts
         FROM (SELECT provider, sum(attempts)::int8 AS attempts, sum(failures)::int8 AS failures
               FROM h GROUP BY provider) p
         ORDER BY p.provider",
    )
    .bind(days)
    .fetch_all(pool)
    .await
}
