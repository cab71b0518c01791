//! Usage reads: totals, per day, per model, recent events, and the per-model metrics behind
//! MaxAI's leaderboards (the rules on windows and pages are in `domain::usage`). All tenant queries take the organization id
//! from the caller's session, never from the request.
//!
//! Windows of whole days read the `usage_daily` rollup (migrations/0003) that the usage writer
//! keeps: `days = N` covers today and the N-1 days before it, in UTC. Shorter windows and the
//! event list read `usage_event` through its time indexes.

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// Totals over a window.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Totals {
    /// Requests.
    pub requests: i64,
    /// Requests answered 2xx/3xx.
    pub successful: i64,
    /// The rest.
    pub failed: i64,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Upstream cost, micro-USD.
    pub cost_usd_micros: i64,
    /// Mean latency, ms.
    pub avg_latency_ms: f64,
}

/// One bucket of a series (a day, a week, a month) or one model.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Bucket {
    /// Bucket key: date (YYYY-MM-DD) or model name.
    pub key: String,
    /// Requests.
    pub requests: i64,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Upstream cost, micro-USD.
    pub cost_usd_micros: i64,
}

/// Totals of one organization over the last `days` days.
pub async fn totals(pool: &PgPool, org: Uuid, days: i32) -> Result<Totals, sqlx::Error> {
    sqlx::query_as(
        "SELECT coalesce(sum(requests), 0)::int8 AS requests,
                coalesce(sum(successful), 0)::int8 AS successful,
                coalesce(sum(requests - successful), 0)::int8 AS failed,
                coalesce(sum(prompt_tokens), 0)::int8 AS prompt_tokens,
                coalesce(sum(completion_tokens), 0)::int8 AS completion_tokens,
                coalesce(sum(cost_usd_micros), 0)::int8 AS cost_usd_micros,
                coalesce(sum(latency_ms_sum)::float8 / nullif(sum(requests), 0), 0)::float8 AS avg_latency_ms
         FROM usage_daily
         WHERE organization_id = $1 AND day > (now() AT TIME ZONE 'UTC')::date - $2",
    )
    .bind(org)
    .bind(days)
    .fetch_one(pool)
    .await
}

/// Per `unit` ('day', 'week', 'month') series of one organization over the last `days` days.
pub async fn series(
    pool: &PgPool,
    org: Uuid,
    days: i32,
    unit: &str,
) -> Result<Vec<Bucket>, sqlx::Error> {
    let unit = match unit {
        "week" => "week",
        "month" => "month",
        _ => "day",
    };
    sqlx::query_as(
        "SELECT to_char(date_trunc($3, day), 'YYYY-MM-DD') AS key,
                sum(requests)::int8 AS requests,
                sum(prompt_tokens)::int8 AS prompt_tokens,
                sum(completion_tokens)::int8 AS completion_tokens,
                sum(cost_usd_micros)::int8 AS cost_usd_micros
         FROM usage_daily
         WHERE organization_id = $1 AND day > (now() AT TIME ZONE 'UTC')::date - $2
         GROUP BY 1 ORDER BY 1",
    )
    .bind(org)
    .bind(days)
    .bind(unit)
    .fetch_all(pool)
    .await
}

/// Per model totals of one organization over the last `days` days.
pub async fn by_model(pool: &PgPool, org: Uuid, days: i32) -> Result<Vec<Bucket>, sqlx::Error> {
    sqlx::query_as(
        "SELECT model AS key, sum(requests)::int8 AS requests,
                sum(prompt_tokens)::int8 AS prompt_tokens,
                sum(completion_tokens)::int8 AS completion_tokens,
                sum(cost_usd_micros)::int8 AS cost_usd_micros
         FROM usage_daily
         WHERE organization_id = $1 AND day > (now() AT TIME ZONE 'UTC')::date - $2
         GROUP BY 1 ORDER BY 2 DESC, 1",
    )
    .bind(org)
    .bind(days)
    .fetch_all(pool)
    .await
}

/// One usage event as the dashboards list it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Recent {
    /// Gateway request id.
    pub request_id: String,
    /// When.
    pub created_at: time::OffsetDateTime,
    /// Key name.
    pub key_name: Option<String>,
    /// Key display prefix.
    pub key_prefix: Option<String>,
    /// Route.
    pub route: String,
    /// Model.
    pub model: Option<String>,
    /// Status.
    pub status: i16,
    /// Error code.
    pub error: Option<String>,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Upstream cost, micro-USD.
    pub cost_usd_micros: Option<i64>,
    /// Latency, ms.
    pub latency_ms: i32,
    /// Time to first token, ms.
    pub ttft_ms: Option<i32>,
    /// Streamed.
    pub stream: bool,
}

/// A page of one organization's events, newest first, and the total count.
pub async fn recent(
    pool: &PgPool,
    org: Uuid,
    page: i64,
    per_page: i64,
) -> Result<(Vec<Recent>, i64), sqlx::Error> {
    let rows = sqlx::query_as(
        "SELECT u.request_id, u.created_at, u.key_name,
                (SELECT k.prefix FROM api_key k WHERE k.api_key_id = u.api_key_id) AS key_prefix,
                u.route, u.model, u.status, u.error, u.prompt_tokens, u.completion_tokens,
                u.cost_upstream_usd_micros AS cost_usd_micros, u.latency_ms, u.ttft_ms, u.stream
         FROM usage_event u
         WHERE u.organization_id = $1
         ORDER BY u.created_at DESC
         LIMIT $2 OFFSET $3",
    )
    .bind(org)
    .bind(per_page)
    .bind((page - 1) * per_page)
    .fetch_all(pool)
    .await?;
    // the rollup holds the same count without scanning the events
    let total: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(requests), 0)::int8 FROM usage_daily WHERE organization_id = $1",
    )
    .bind(org)
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

/// Per-model metrics across the platform over a window.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct ModelMetric {
    /// Model.
    pub model: String,
    /// Requests.
    pub requests: i64,
    /// 2xx/3xx.
    pub success: i64,
    /// The rest.
    pub errors: i64,
    /// Input tokens.
    pub tokens_in: i64,
    /// Output tokens.
    pub tokens_out: i64,
    /// Upstream cost, micro-USD.
    pub cost_usd_micros: i64,
    /// Mean latency, ms.
    pub avg_latency_ms: f64,
}

/// Metrics of every model seen in the window, busiest first. Windows of a day or more read the
/// rollup (whole UTC days); shorter ones read the events.
pub async fn model_metrics(
    pool: &PgPool,
    window_secs: i64,
    limit: i64,
) -> Result<Vec<ModelMetric>, sqlx::Error> {
    if window_secs >= 86_400 {
        return sqlx::query_as(
            "SELECT model, sum(requests)::int8 AS requests, sum(successful)::int8 AS success,
                    sum(requests - successful)::int8 AS errors,
                    sum(prompt_tokens)::int8 AS tokens_in, sum(completion_tokens)::int8 AS tokens_out,
                    sum(cost_usd_micros)::int8 AS cost_usd_micros,
                    (sum(latency_ms_sum)::float8 / nullif(sum(requests), 0))::float8 AS avg_latency_ms
             FROM usage_daily
             WHERE model <> '' AND day > (now() AT TIME ZONE 'UTC')::date - $1::int4
             GROUP BY model ORDER BY requests DESC, model LIMIT $2",
        )
        .bind((window_secs / 86_400) as i32)
        .bind(limit)
        .fetch_all(pool)
        .await;
    }
    sqlx::query_as(
        "SELECT model, count(*) AS requests,
                count(*) FILTER (WHERE status BETWEEN 200 AND 399) AS success,
                count(*) FILTER (WHERE status NOT BETWEEN 200 AND 399) AS errors,
                coalesce(sum(prompt_tokens), 0)::int8 AS tokens_in,
                coalesce(sum(completion_tokens), 0)::int8 AS tokens_out,
                coalesce(sum(cost_upstream_usd_micros), 0)::int8 AS cost_usd_micros,
                coalesce(avg(latency_ms), 0)::float8 AS avg_latency_ms
         FROM usage_event
         WHERE model IS NOT NULL AND created_at >= now() - make_interval(secs => $1::float8)
         GROUP BY model ORDER BY requests DESC, model LIMIT $2",
    )
    .bind(window_secs as f64)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Successful requests of the organization this UTC month (what its plan's quota counts, the
/// same statement the gateway enforces with).
pub async fn month_successful(pool: &PgPool, org: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(super::funds::MONTH_USED_SQL)
        .bind(org)
        .fetch_one(pool)
        .await
}

/// One bucket of one service (the catalog category of the model; `other` when unknown).
#[derive(Debug, sqlx::FromRow)]
pub struct ServiceBucket {
    /// Bucket start, `YYYY-MM-DD`.
    pub bucket: String,
    /// Service.
    pub service: String,
    /// Requests, answered or not.
    pub requests: i64,
    /// Sum of latencies, ms.
    pub latency_ms_sum: i64,
    /// Billed amount, micro-BRL.
    pub billed_brl_micros: i64,
}

/// Per `unit` (`day`, `week`, `month`) and service over the last `days` days.
pub async fn per_service(
    pool: &PgPool,
    org: Uuid,
    days: i32,
    unit: &str,
) -> Result<Vec<ServiceBucket>, sqlx::Error> {
    let unit = match unit {
        "week" => "week",
        "month" => "month",
        _ => "day",
    };
    sqlx::query_as(
        "SELECT to_char(date_trunc($3, d.day), 'YYYY-MM-DD') AS bucket,
                coalesce(m.category, 'other') AS service,
                sum(d.requests)::int8 AS requests, sum(d.latency_ms_sum)::int8 AS latency_ms_sum,
                sum(d.cost_billed_brl_micros)::int8 AS billed_brl_micros
         FROM usage_daily d LEFT JOIN model m ON m.name = d.model
         WHERE d.organization_id = $1 AND d.day > (now() AT TIME ZONE 'UTC')::date - $2
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(org)
    .bind(days)
    .bind(unit)
    .fetch_all(pool)
    .await
}

/// One event as an activity feed or a usage log shows it.
#[derive(Debug, sqlx::FromRow)]
pub struct LogRow {
    /// Event id.
    pub usage_event_id: i64,
    /// When.
    pub created_at: time::OffsetDateTime,
    /// Route.
    pub route: String,
    /// Key name at the time.
    pub key_name: Option<String>,
    /// Key display prefix.
    pub key_prefix: Option<String>,
    /// Latency, ms.
    pub latency_ms: i32,
    /// HTTP status.
    pub status: i16,
}

/// Which events a log page shows.
#[derive(Debug, Default)]
pub struct LogFilter<'a> {
    /// From this time on.
    pub start: Option<time::OffsetDateTime>,
    /// Up to this time.
    pub end: Option<time::OffsetDateTime>,
    /// Only this route.
    pub route: Option<&'a str>,
}

const LOG_FILTER: &str =
    "u.organization_id = $1 AND ($2::timestamptz IS NULL OR u.created_at >= $2)
     AND ($3::timestamptz IS NULL OR u.created_at <= $3) AND ($4::text IS NULL OR u.route = $4)";

/// A page of the organization's events matching `f`, newest first, and how many match.
pub async fn logs(
    pool: &PgPool,
    org: Uuid,
    f: &LogFilter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<LogRow>, i64), sqlx::Error> {
    let rows = sqlx::query_as(&format!(
        "SELECT u.usage_event_id, u.created_at, u.route, u.key_name,
                (SELECT k.prefix FROM api_key k WHERE k.api_key_id = u.api_key_id) AS key_prefix,
                u.latency_ms, u.status
         FROM usage_event u WHERE {LOG_FILTER} ORDER BY u.created_at DESC LIMIT $5 OFFSET $6"
    ))
    .bind(org)
    .bind(f.start)
    .bind(f.end)
    .bind(f.route)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM usage_event u WHERE {LOG_FILTER}"
    ))
    .bind(org)
    .bind(f.start)
    .bind(f.end)
    .bind(f.route)
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

/// The organization's newest `n` events.
pub async fn latest(pool: &PgPool, org: Uuid, n: i64) -> Result<Vec<LogRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.usage_event_id, u.created_at, u.route, u.key_name,
                (SELECT k.prefix FROM api_key k WHERE k.api_key_id = u.api_key_id) AS key_prefix,
                u.latency_ms, u.status
         FROM usage_event u WHERE u.organization_id = $1 ORDER BY u.created_at DESC LIMIT $2",
    )
    .bind(org)
    .bind(n)
    .fetch_all(pool)
    .await
}

/// One row of a usage report: a UTC day and one organization, key or model.
#[derive(Debug, sqlx::FromRow)]
pub struct ReportRow {
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// The organization id, key id or model name.
    pub group_id: String,
    /// A readable name: the organization's slug, the key's display prefix, the model.
    pub label: Option<String>,
    /// Requests.
    pub requests: i64,
    /// Answered 2xx/3xx.
    pub successful: i64,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Upstream cost, micro-USD.
    pub cost_usd_micros: i64,
    /// Billed, micro-BRL.
    pub billed_brl_micros: i64,
}

/// Usage per UTC day from `from` to `to` (inclusive) per `group` (`organization`, `key` or
/// `model`), optionally of one organization, key or model; days and groups in order. Reads the
/// events through their time indexes (a report spans at most a year).
pub async fn report(
    pool: &PgPool,
    group: &str,
    from: time::Date,
    to: time::Date,
    org: Option<Uuid>,
    key: Option<Uuid>,
    model: Option<&str>,
) -> Result<Vec<ReportRow>, sqlx::Error> {
    let (id, label, join) = match group {
        "key" => (
            "coalesce(u.api_key_id::text, '')",
            "max(k.prefix)",
            "LEFT JOIN api_key k ON k.api_key_id = u.api_key_id",
        ),
        "model" => ("coalesce(u.model, '')", "max(u.model)", ""),
        _ => (
            "coalesce(u.organization_id::text, '')",
            "max(o.slug)",
            "LEFT JOIN organization o ON o.organization_id = u.organization_id",
        ),
    };
    sqlx::query_as(&format!(
        "SELECT to_char((u.created_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS day,
                {id} AS group_id, {label} AS label,
                count(*)::int8 AS requests,
                count(*) FILTER (WHERE u.status BETWEEN 200 AND 399)::int8 AS successful,
                coalesce(sum(u.prompt_tokens), 0)::int8 AS prompt_tokens,
                coalesce(sum(u.completion_tokens), 0)::int8 AS completion_tokens,
                coalesce(sum(u.cost_upstream_usd_micros), 0)::int8 AS cost_usd_micros,
                coalesce(sum(u.cost_billed_brl_micros), 0)::int8 AS billed_brl_micros
         FROM usage_event u {join}
         WHERE u.created_at >= ($1::date)::timestamp AT TIME ZONE 'UTC'
           AND u.created_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'
           AND ($3::uuid IS NULL OR u.organization_id = $3)
           AND ($4::uuid IS NULL OR u.api_key_id = $4)
           AND ($5::text IS NULL OR u.model = $5)
         GROUP BY 1, 2 ORDER BY 1, 2"
    ))
    .bind(from)
    .bind(to)
    .bind(org)
    .bind(key)
    .bind(model)
    .fetch_all(pool)
    .await
}

/// One usage event as the customer's lists and exports show it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    /// Event id.
    pub usage_event_id: i64,
    /// Gateway request id.
    pub request_id: String,
    /// When.
    pub created_at: time::OffsetDateTime,
    /// The day in the reader's time zone, `YYYY-MM-DD`.
    pub local_date: String,
    /// Key id.
    pub api_key_id: Option<Uuid>,
    /// Key name at the time.
    pub key_name: Option<String>,
    /// Key display prefix.
    pub key_prefix: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Route.
    pub route: String,
    /// HTTP status.
    pub status: i16,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Billed, micro-BRL.
    pub cost_billed_brl_micros: Option<i64>,
    /// Upstream cost, micro-USD.
    pub cost_upstream_usd_micros: Option<i64>,
    /// Latency, ms.
    pub latency_ms: i32,
    /// Session id (`x-tokia-session-id`).
    pub session_id: Option<String>,
}

const EVENT_COLUMNS: &str = "u.usage_event_id, u.request_id, u.created_at,
       to_char(u.created_at AT TIME ZONE $2, 'YYYY-MM-DD') AS local_date,
       u.api_key_id, u.key_name, k.prefix AS key_prefix, u.model, u.route, u.status,
       u.prompt_tokens, u.completion_tokens, u.cost_billed_brl_micros,
       u.cost_upstream_usd_micros, u.latency_ms, u.session_id";

/// The organization's newest `n` events, newest first; days named in time zone `tz`.
pub async fn newest_events(
    pool: &PgPool,
    org: Uuid,
    tz: &str,
    n: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS}
         FROM usage_event u LEFT JOIN api_key k ON k.api_key_id = u.api_key_id
         WHERE u.organization_id = $1
         ORDER BY u.created_at DESC, u.usage_event_id DESC LIMIT $3"
    ))
    .bind(org)
    .bind(tz)
    .bind(n)
    .fetch_all(pool)
    .await
}

/// Today's date in time zone `tz`.
pub async fn today_in(pool: &PgPool, tz: &str) -> Result<time::Date, sqlx::Error> {
    sqlx::query_scalar("SELECT (now() AT TIME ZONE $1)::date")
        .bind(tz)
        .fetch_one(pool)
        .await
}

/// The organization's events from day `from` to day `to` (inclusive) in time zone `tz`,
/// oldest first, as they are read: one statement whose rows flow through a small bounded
/// channel, so memory stays constant however many there are and a reader that goes away
/// stops the statement.
pub fn export(
    pool: PgPool,
    org: Uuid,
    from: time::Date,
    to: time::Date,
    tz: String,
) -> impl futures_util::Stream<Item = Result<EventRow, sqlx::Error>> + Send + 'static {
    use futures_util::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<EventRow, sqlx::Error>>(256);
    tokio::spawn(async move {
        let sql = format!(
            "SELECT {EVENT_COLUMNS}
             FROM usage_event u LEFT JOIN api_key k ON k.api_key_id = u.api_key_id
             WHERE u.organization_id = $1
               AND u.created_at >= ($3::date)::timestamp AT TIME ZONE $2
               AND u.created_at < ($4::date + 1)::timestamp AT TIME ZONE $2
             ORDER BY u.created_at, u.usage_event_id"
        );
        let mut rows = sqlx::query_as::<_, EventRow>(&sql)
            .bind(org)
            .bind(&tz)
            .bind(from)
            .bind(to)
            .fetch(&pool);
        while let Some(r) = rows.next().await {
            let failed = r.is_err();
            if tx.send(r).await.is_err() || failed {
                break;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) })
}

/// One model's use by an organization over a window of UTC days (`model` empty: requests
/// refused before a model was known).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ModelUse {
    /// Model.
    pub model: String,
    /// Its catalog category, if it is in the catalog.
    pub category: Option<String>,
    /// Requests.
    pub requests: i64,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Upstream cost, micro-USD.
    pub cost_usd_micros: i64,
    /// Billed, micro-BRL.
    pub billed_brl_micros: i64,
}

/// Per model use of `org` over the last `days` UTC days (today and the `days - 1` before), from
/// the rollup; most billed first.
pub async fn model_use(pool: &PgPool, org: Uuid, days: i32) -> Result<Vec<ModelUse>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.model, m.category, sum(d.requests)::int8 AS requests,
                sum(d.prompt_tokens)::int8 AS prompt_tokens,
                sum(d.completion_tokens)::int8 AS completion_tokens,
                sum(d.cost_usd_micros)::int8 AS cost_usd_micros,
                sum(d.cost_billed_brl_micros)::int8 AS billed_brl_micros
         FROM usage_daily d LEFT JOIN model m ON m.name = d.model
         WHERE d.organization_id = $1 AND d.day > (now() AT TIME ZONE 'UTC')::date - $2
         GROUP BY d.model, m.category
         ORDER BY billed_brl_micros DESC, requests DESC, d.model",
    )
    .bind(org)
    .bind(days)
    .fetch_all(pool)
    .await
}

/// A catalog model priced per token.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenPrice {
    /// Model.
    pub name: String,
    /// Category.
    pub category: String,
    /// micro-USD per 1M input tokens.
    pub input_per_1m: i64,
    /// micro-USD per 1M output tokens.
    pub output_per_1m: i64,
}

/// The active catalog models with a per-token price.
pub async fn token_prices(pool: &PgPool) -> Result<Vec<TokenPrice>, sqlx::Error> {
    sqlx::query_as(
        "SELECT name, category, coalesce(input_usd_micros_per_1m, 0) AS input_per_1m,
                coalesce(output_usd_micros_per_1m, 0) AS output_per_1m
         FROM model
         WHERE active AND coalesce(input_usd_micros_per_1m, 0) + coalesce(output_usd_micros_per_1m, 0) > 0
         ORDER BY name",
    )
    .fetch_all(pool)
    .await
}

/// Counts a dashboard shows, read in one statement.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DashboardCounts {
    /// Usable keys (active, not expired, not deleted).
    pub keys_active: i64,
    /// Revoked keys (deleted ones included).
    pub keys_revoked: i64,
    /// Mail to the user.
    pub notifications_total: i64,
    /// Mail to the user that could not be delivered.
    pub notifications_failed: i64,
}

/// Key counts of `org` and mail counts of `user` (zero without one).
pub async fn dashboard_counts(
    pool: &PgPool,
    org: Uuid,
    user: Option<Uuid>,
) -> Result<DashboardCounts, sqlx::Error> {
    sqlx::query_as(
        "WITH mail AS (
             SELECT o.failed_at FROM outbox_email o
             WHERE $2::uuid IS NOT NULL
               AND lower(o.to_address) = (SELECT lower(email) FROM app_user WHERE user_id = $2))
         SELECT (SELECT count(*) FROM api_key WHERE organization_id = $1 AND status = 'active'
                   AND deleted_at IS NULL AND (expires_at IS NULL OR expires_at > now()))::int8 AS keys_active,
                (SELECT count(*) FROM api_key WHERE organization_id = $1 AND status = 'revoked')::int8 AS keys_revoked,
                (SELECT count(*) FROM mail)::int8 AS notifications_total,
                (SELECT count(*) FROM mail WHERE failed_at IS NOT NULL)::int8 AS notifications_failed",
    )
    .bind(org)
    .bind(user)
    .fetch_one(pool)
    .await
}
