//! What `GET /v1/usage/rate-limit` reads: an organization's active keys with their limits, and
//! their per-minute history from the usage events.

use std::collections::HashMap;

use sqlx::PgPool;
use uuid::Uuid;

/// An active key with its limits.
#[derive(sqlx::FromRow)]
pub struct KeyRow {
    /// Id.
    pub api_key_id: Uuid,
    /// Name.
    pub name: String,
    /// Display prefix.
    pub prefix: String,
    /// SHA-256 of the plaintext (the limiter's counters are keyed by it).
    pub key_hash: Vec<u8>,
    /// Requests per second.
    pub rate_limit_rps: Option<i32>,
    /// Requests per minute.
    pub rate_limit_rpm: Option<i32>,
    /// Requests per day.
    pub rate_limit_rpd: Option<i32>,
    /// Tokens per minute.
    pub rate_limit_tpm: Option<i32>,
    /// Requests in flight.
    pub max_concurrency: Option<i32>,
}

/// Per key over the period: busiest minute (requests, tokens), totals, and this minute's.
#[derive(sqlx::FromRow, Default, Clone, Copy)]
pub struct History {
    /// Requests in the busiest minute.
    pub peak_requests: i64,
    /// Tokens in the busiest minute.
    pub peak_tokens: i64,
    /// Requests over the period.
    pub requests: i64,
    /// Tokens over the period.
    pub tokens: i64,
    /// Requests this minute.
    pub now_requests: i64,
    /// Tokens this minute.
    pub now_tokens: i64,
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    api_key_id: Uuid,
    #[sqlx(flatten)]
    h: History,
}

/// The organization's active keys, oldest first.
pub async fn active_keys(pool: &PgPool, org: Uuid) -> Result<Vec<KeyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT api_key_id, name, prefix, key_hash, rate_limit_rps, rate_limit_rpm,
                rate_limit_rpd, rate_limit_tpm, max_concurrency
         FROM api_key WHERE organization_id = $1 AND status = 'active'
         ORDER BY created_at, api_key_id",
    )
    .bind(org)
    .fetch_all(pool)
    .await
}

/// Each key's history over the last `minutes` minutes (this one included), counting the
/// requests that were sent upstream.
pub async fn history(
    pool: &PgPool,
    org: Uuid,
    minutes: u32,
) -> Result<HashMap<Uuid, History>, sqlx::Error> {
    let rows: Vec<HistoryRow> = sqlx::query_as(
        "SELECT api_key_id, max(n)::int8 AS peak_requests, max(t)::int8 AS peak_tokens,
                        sum(n)::int8 AS requests, sum(t)::int8 AS tokens,
                        coalesce(sum(n) FILTER (WHERE m = date_trunc('minute', now())), 0)::int8 AS now_requests,
                        coalesce(sum(t) FILTER (WHERE m = date_trunc('minute', now())), 0)::int8 AS now_tokens
                 FROM (SELECT api_key_id, date_trunc('minute', created_at) AS m, count(*) AS n,
                              coalesce(sum(prompt_tokens + completion_tokens), 0) AS t
                       FROM usage_event
                       WHERE organization_id = $1 AND api_key_id IS NOT NULL
                         AND deployment IS NOT NULL
                         AND created_at >= date_trunc('minute', now()) - make_interval(mins => $2 - 1)
                       GROUP BY 1, 2) per_minute
                 GROUP BY api_key_id",
    )
    .bind(org)
    .bind(minutes as i32)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.api_key_id, r.h)).collect())
}
