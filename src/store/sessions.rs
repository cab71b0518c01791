//! Sessions: one organization's usage events grouped by `session_id` (the gateway stores
//! `x-tokia-session-id` there). The list of a window reads the per-session daily rollup
//! (`usage_session_daily`, migrations/0030: about one row per session and UTC day, however many
//! requests); one session's totals and events read `usage_event_org_session_idx`
//! (migrations/0023).

use sqlx::PgPool;
use uuid::Uuid;

/// One session of a window.
#[derive(Debug, sqlx::FromRow)]
pub struct SessionRow {
    /// The client's session id.
    pub session_id: String,
    /// Events.
    pub request_count: i64,
    /// Billed, micro-BRL (exact sum).
    pub billed_brl_micros: i64,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Distinct models, by name.
    pub models: Vec<String>,
    /// Start of the first request (its end minus its latency).
    pub first_start: time::OffsetDateTime,
    /// End of the first request.
    pub first_request_at: time::OffsetDateTime,
    /// End of the last request.
    pub last_request_at: time::OffsetDateTime,
}

/// One event of a session.
#[derive(Debug, sqlx::FromRow)]
pub struct SessionEventRow {
    /// Event id.
    pub usage_event_id: i64,
    /// Model asked for.
    pub model: Option<String>,
    /// Key.
    pub api_key_id: Option<Uuid>,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Billed, micro-BRL.
    pub cost_billed_brl_micros: Option<i64>,
    /// Upstream cost, micro-USD.
    pub cost_upstream_usd_micros: Option<i64>,
    /// End of the request.
    pub created_at: time::OffsetDateTime,
}

const GROUPED: &str = "count(*)::int8 AS request_count,
    coalesce(sum(cost_billed_brl_micros), 0)::int8 AS billed_brl_micros,
    coalesce(sum(prompt_tokens), 0)::int8 AS prompt_tokens,
    coalesce(sum(completion_tokens), 0)::int8 AS completion_tokens,
    coalesce(array_agg(DISTINCT model ORDER BY model) FILTER (WHERE model IS NOT NULL), '{}') AS models,
    min(created_at - latency_ms * interval '1 millisecond') AS first_start,
    min(created_at) AS first_request_at,
    max(created_at) AS last_request_at";

/// The sessions of `org` with events in the last `days` UTC days (today and the `days - 1`
/// before), newest last request first, at most `limit`; totals over those events (the rollup's
/// rows of the window's days: the same sums, minima and maxima as `GROUPED` over the events).
pub async fn list(
    pool: &PgPool,
    org: Uuid,
    days: i32,
    limit: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT session_id, sum(requests)::int8 AS request_count,
                sum(cost_billed_brl_micros)::int8 AS billed_brl_micros,
                sum(prompt_tokens)::int8 AS prompt_tokens,
                sum(completion_tokens)::int8 AS completion_tokens,
                -- model '' is the rollup's stand-in for none
                coalesce(array_agg(DISTINCT model ORDER BY model) FILTER (WHERE model <> ''), '{}') AS models,
                min(first_start_at) AS first_start,
                min(first_request_at) AS first_request_at,
                max(last_request_at) AS last_request_at
         FROM usage_session_daily
         WHERE organization_id = $1 AND day > (now() AT TIME ZONE 'UTC')::date - $2
         GROUP BY session_id
         ORDER BY last_request_at DESC, session_id
         LIMIT $3",
    )
    .bind(org)
    .bind(days)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One session of `org`, over all its events; `None` when it has none.
pub async fn totals(
    pool: &PgPool,
    org: Uuid,
    session: &str,
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT session_id, {GROUPED}
         FROM usage_event
         WHERE organization_id = $1 AND session_id = $2
         GROUP BY session_id"
    ))
    .bind(org)
    .bind(session)
    .fetch_optional(pool)
    .await
}

/// The events of one session of `org`, oldest first.
pub async fn events(
    pool: &PgPool,
    org: Uuid,
    session: &str,
) -> Result<Vec<SessionEventRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT usage_event_id, model, api_key_id, prompt_tokens, completion_tokens,
                cost_billed_brl_micros, cost_upstream_usd_micros, created_at
         FROM usage_event
         WHERE organization_id = $1 AND session_id = $2
         ORDER BY created_at, usage_event_id",
    )
    .bind(org)
    .bind(session)
    .fetch_all(pool)
    .await
}
