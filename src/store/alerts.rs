//! Tokia's spending alerts (`alert`, `alert_firing`, migration 0028) and what a check reads: the
//! organization's balance column and its spend since the start of the day or month in a time
//! zone. Every statement is scoped to one organization.

use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// The unique index on an organization's rules (kind, threshold, channel).
pub const RULE_KEY: &str = "alert_org_rule_key";

/// An alert as its organization lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertRow {
    /// Id.
    pub alert_id: Uuid,
    /// Owner.
    pub organization_id: Uuid,
    /// `balance_below`, `daily_spend_above` or `monthly_spend_above`.
    pub kind: String,
    /// Threshold, micro-BRL.
    pub threshold_brl_micros: i64,
    /// `email` or `webhook`.
    pub channel: String,
    /// Whether the next crossing fires it: the stored flag, or, for a spend alert last fired in
    /// an earlier day or month than the current one, true.
    pub armed: bool,
    /// Its last firing.
    pub last_fired_at: Option<OffsetDateTime>,
    /// Created.
    pub created_at: OffsetDateTime,
}

/// `armed` as a reader sees it (`$2` is the time zone of the periods).
const COLUMNS: &str = "alert_id, organization_id, kind, threshold_brl_micros, channel,
     armed OR (fired_period IS NOT NULL AND fired_period <> CASE kind
         WHEN 'daily_spend_above' THEN to_char(now() AT TIME ZONE $2, 'YYYY-MM-DD')
         WHEN 'monthly_spend_above' THEN to_char(now() AT TIME ZONE $2, 'YYYY-MM') END) AS armed,
     last_fired_at, created_at";

/// Serialize the creations of `org`'s alerts until the transaction ends (the cap is counted
/// under it).
pub async fn lock_creations(db: impl PgExecutor<'_>, org: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('alert:' || $1::text, 0))")
        .bind(org)
        .execute(db)
        .await?;
    Ok(())
}

/// How many alerts `org` has.
pub async fn count(db: impl PgExecutor<'_>, org: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*)::int8 FROM alert WHERE organization_id = $1")
        .bind(org)
        .fetch_one(db)
        .await
}

/// A new, armed alert; its id.
pub async fn insert(
    db: impl PgExecutor<'_>,
    org: Uuid,
    kind: &str,
    threshold_brl_micros: i64,
    channel: &str,
    created_by: Option<Uuid>,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO alert (organization_id, kind, threshold_brl_micros, channel, created_by)
         VALUES ($1, $2, $3, $4, $5) RETURNING alert_id",
    )
    .bind(org)
    .bind(kind)
    .bind(threshold_brl_micros)
    .bind(channel)
    .bind(created_by)
    .fetch_one(db)
    .await
}

/// One of `org`'s alerts.
pub async fn get(
    pool: &PgPool,
    org: Uuid,
    id: Uuid,
    tz: &str,
) -> Result<Option<AlertRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM alert WHERE organization_id = $1 AND alert_id = $3"
    ))
    .bind(org)
    .bind(tz)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// `org`'s alerts, oldest first.
pub async fn list(pool: &PgPool, org: Uuid, tz: &str) -> Result<Vec<AlertRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM alert WHERE organization_id = $1 ORDER BY created_at, alert_id"
    ))
    .bind(org)
    .bind(tz)
    .fetch_all(pool)
    .await
}

/// The organizations among `orgs` that have at least one alert (one index lookup each).
pub async fn orgs_with_alerts(pool: &PgPool, orgs: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT o FROM unnest($1::uuid[]) AS o
         WHERE EXISTS (SELECT 1 FROM alert a WHERE a.organization_id = o)",
    )
    .bind(orgs)
    .fetch_all(pool)
    .await
}

/// An alert as a check sees it, locked.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CheckRow {
    /// Id.
    pub alert_id: Uuid,
    /// Kind.
    pub kind: String,
    /// Threshold, micro-BRL.
    pub threshold_brl_micros: i64,
    /// Channel.
    pub channel: String,
    /// The stored flag.
    pub armed: bool,
    /// The period of a spend alert's last firing.
    pub fired_period: Option<String>,
}

/// Lock `org`'s alerts (in id order, so two checks never deadlock) until the transaction ends:
/// checks of one organization run one after the other, each reading what the one before it
/// committed.
pub async fn lock_for_check(
    db: impl PgExecutor<'_>,
    org: Uuid,
) -> Result<Vec<CheckRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT alert_id, kind, threshold_brl_micros, channel, armed, fired_period
         FROM alert WHERE organization_id = $1 ORDER BY alert_id FOR UPDATE",
    )
    .bind(org)
    .fetch_all(db)
    .await
}

/// What a check compares balance alerts with, and the current periods.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SnapshotRow {
    /// The organization's balance column, micro-BRL (`None`: postpaid).
    pub balance: Option<i64>,
    /// Today in the time zone, `YYYY-MM-DD`.
    pub day: String,
    /// This month in the time zone, `YYYY-MM`.
    pub month: String,
}

/// The balance of `org` and today's and this month's labels in `tz`.
pub async fn snapshot(
    db: impl PgExecutor<'_>,
    org: Uuid,
    tz: &str,
) -> Result<SnapshotRow, sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT balance_brl_micros FROM organization WHERE organization_id = $1) AS balance,
                to_char(now() AT TIME ZONE $2, 'YYYY-MM-DD') AS day,
                to_char(now() AT TIME ZONE $2, 'YYYY-MM') AS month",
    )
    .bind(org)
    .bind(tz)
    .fetch_one(db)
    .await
}

/// `org`'s billed BRL since the start of the current `unit` (`day` or `month`) in `tz`,
/// micro-BRL. Whole UTC days inside the period come from the daily rollup; the ragged ends (from
/// the period's start to the next UTC midnight, and from the last UTC midnight on) from the
/// events, through their per-organization time index, so a month costs at most two days of
/// events plus a month of rollup rows.
pub async fn spend(
    db: impl PgExecutor<'_>,
    org: Uuid,
    unit: &str,
    tz: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "WITH b AS (
             SELECT date_trunc($2, now() AT TIME ZONE $3) AT TIME ZONE $3 AS start_at
         ), u AS (
             -- full_from: the first UTC midnight at or after the start; full_to: the last one
             -- at or before now (UTC wall times)
             SELECT start_at,
                    CASE WHEN date_trunc('day', start_at AT TIME ZONE 'UTC') = start_at AT TIME ZONE 'UTC'
                         THEN start_at AT TIME ZONE 'UTC'
                         ELSE date_trunc('day', start_at AT TIME ZONE 'UTC') + interval '1 day'
                    END AS full_from,
                    date_trunc('day', now() AT TIME ZONE 'UTC') AS full_to
             FROM b
         )
         SELECT (coalesce((SELECT sum(e.cost_billed_brl_micros) FROM usage_event e
                           WHERE e.organization_id = $1 AND e.created_at >= u.start_at
                             AND e.created_at < u.full_from AT TIME ZONE 'UTC'), 0)
               + coalesce((SELECT sum(e.cost_billed_brl_micros) FROM usage_event e
                           WHERE e.organization_id = $1
                             AND e.created_at >= greatest(u.full_from, u.full_to) AT TIME ZONE 'UTC'), 0)
               + coalesce((SELECT sum(d.cost_billed_brl_micros) FROM usage_daily d
                           WHERE d.organization_id = $1
                             AND d.day >= u.full_from::date AND d.day < u.full_to::date), 0))::int8
         FROM u",
    )
    .bind(org)
    .bind(unit)
    .bind(tz)
    .fetch_one(db)
    .await
}

/// Fire an alert: one conditional update, so of two checks that both see the crossing only one
/// fires. `period` is a spend alert's current period (a firing in an earlier one does not keep
/// it disarmed); `None` for a balance alert. The firing time when it fired.
pub async fn fire(
    db: impl PgExecutor<'_>,
    alert: Uuid,
    period: Option<&str>,
) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE alert SET armed = false, last_fired_at = now(), fired_period = $2
         WHERE alert_id = $1 AND (armed OR fired_period IS DISTINCT FROM $2)
         RETURNING last_fired_at",
    )
    .bind(alert)
    .bind(period)
    .fetch_optional(db)
    .await
    .map(Option::flatten)
}

/// Arm a disarmed alert again (its condition was seen false).
pub async fn rearm(db: impl PgExecutor<'_>, alert: Uuid) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("UPDATE alert SET armed = true WHERE alert_id = $1 AND NOT armed")
        .bind(alert)
        .execute(db)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// An owner a firing mails.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OwnerRow {
    /// Address.
    pub email: String,
    /// The organization's name.
    pub organization_name: String,
}

/// `org`'s owners who are not disabled, by address.
pub async fn owners(db: impl PgExecutor<'_>, org: Uuid) -> Result<Vec<OwnerRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.email, o.name AS organization_name
         FROM membership m JOIN app_user u USING (user_id)
              JOIN organization o ON o.organization_id = m.organization_id
         WHERE m.organization_id = $1 AND m.role = 'owner' AND u.disabled_at IS NULL
         ORDER BY lower(u.email)",
    )
    .bind(org)
    .fetch_all(db)
    .await
}

/// `org`'s active webhooks subscribed to `event`.
pub async fn webhooks(
    db: impl PgExecutor<'_>,
    org: Uuid,
    event: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT webhook_id FROM webhook
         WHERE organization_id = $1 AND status = 'active' AND $2 = ANY (events)
         ORDER BY created_at, webhook_id",
    )
    .bind(org)
    .bind(event)
    .fetch_all(db)
    .await
}

/// A firing as recorded.
pub struct NewFiring<'a> {
    /// The alert.
    pub alert_id: Uuid,
    /// Its organization.
    pub organization_id: Uuid,
    /// Its kind.
    pub kind: &'a str,
    /// Its threshold, micro-BRL.
    pub threshold_brl_micros: i64,
    /// Its channel.
    pub channel: &'a str,
    /// The value that crossed, micro-BRL.
    pub value_brl_micros: i64,
    /// A spend alert's period.
    pub period: Option<&'a str>,
    /// Notifications queued.
    pub notifications: i32,
    /// When.
    pub fired_at: OffsetDateTime,
}

/// Record a firing; its id.
pub async fn insert_firing(db: impl PgExecutor<'_>, f: &NewFiring<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO alert_firing (alert_id, organization_id, kind, threshold_brl_micros, channel,
                                   value_brl_micros, period, notifications, fired_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING alert_firing_id",
    )
    .bind(f.alert_id)
    .bind(f.organization_id)
    .bind(f.kind)
    .bind(f.threshold_brl_micros)
    .bind(f.channel)
    .bind(f.value_brl_micros)
    .bind(f.period)
    .bind(f.notifications)
    .bind(f.fired_at)
    .fetch_one(db)
    .await
}

/// Queue one webhook delivery (sent by the admin app's webhook sender); `dedup_key` makes a
/// second queueing of the same firing a no-op.
pub async fn queue_delivery(
    db: impl PgExecutor<'_>,
    webhook: Uuid,
    event: &str,
    dedup_key: &str,
    payload: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_delivery (webhook_id, event, dedup_key, payload)
         VALUES ($1, $2, $3, $4) ON CONFLICT (webhook_id, dedup_key) DO NOTHING",
    )
    .bind(webhook)
    .bind(event)
    .bind(dedup_key)
    .bind(payload)
    .execute(db)
    .await?;
    Ok(())
}
