//! PyTake's flow automations (`pytake_automation`, `pytake_automation_job`): creation with
//! one job per contact in one transaction, the once-only start, the runner's claim (`FOR
//! UPDATE SKIP LOCKED` under a lease) and fenced progress writes, and the stats.

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// One automation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AutomationRow {
    /// Id.
    pub automation_id: Uuid,
    /// Owner.
    pub organization_id: Uuid,
    /// The flow it runs.
    pub flow_id: Uuid,
    /// Config, JSON object text.
    pub config: String,
    /// `created`, `running` or `completed`.
    pub status: String,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Started.
    pub started_at: Option<OffsetDateTime>,
    /// Every job finished.
    pub finished_at: Option<OffsetDateTime>,
}

const AUTOMATION: &str = "automation_id, organization_id, flow_id, config::text AS config, status,
     created_at, started_at, finished_at";

/// Insert an automation and one pending job per contact, in one transaction, if the flow and
/// every contact are `org`'s. Nothing is written otherwise: `Ok(Err(vec![]))` when the flow is
/// not `org`'s, `Ok(Err(ids))` naming the contacts that are not.
pub async fn insert(
    pool: &PgPool,
    org: Uuid,
    created_by: Uuid,
    flow_id: Uuid,
    config: &str,
    contacts: &[Uuid],
) -> Result<Result<AutomationRow, Vec<Uuid>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let flow: Option<Uuid> = sqlx::query_scalar(
        "SELECT flow_id FROM pytake_flow WHERE organization_id = $1 AND flow_id = $2 FOR SHARE",
    )
    .bind(org)
    .bind(flow_id)
    .fetch_optional(&mut *tx)
    .await?;
    if flow.is_none() {
        return Ok(Err(Vec::new()));
    }
    let missing: Vec<Uuid> = sqlx::query_scalar(
        "SELECT c FROM unnest($2::uuid[]) AS c
         WHERE NOT EXISTS (SELECT 1 FROM pytake_contact
                           WHERE organization_id = $1 AND contact_id = c)",
    )
    .bind(org)
    .bind(contacts)
    .fetch_all(&mut *tx)
    .await?;
    if !missing.is_empty() {
        return Ok(Err(missing));
    }
    let row: AutomationRow = sqlx::query_as(&format!(
        "INSERT INTO pytake_automation (organization_id, flow_id, config, created_by)
         VALUES ($1, $2, $3::jsonb, $4) RETURNING {AUTOMATION}"
    ))
    .bind(org)
    .bind(flow_id)
    .bind(config)
    .bind(created_by)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO pytake_automation_job (automation_id, organization_id, contact_id)
         SELECT $1, $2, c FROM unnest($3::uuid[]) AS c",
    )
    .bind(row.automation_id)
    .bind(org)
    .bind(contacts)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Ok(row))
}

/// One automation of `org`.
pub async fn get(pool: &PgPool, org: Uuid, id: Uuid) -> Result<Option<AutomationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {AUTOMATION} FROM pytake_automation WHERE organization_id = $1 AND automation_id = $2"
    ))
    .bind(org)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The contact ids of an automation, in creation order.
pub async fn contacts(pool: &PgPool, id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT contact_id FROM pytake_automation_job WHERE automation_id = $1
         ORDER BY created_at, job_id",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}

/// `created` → `running`; `None` when not in `created` (or not `org`'s).
pub async fn start(
    pool: &PgPool,
    org: Uuid,
    id: Uuid,
) -> Result<Option<AutomationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE pytake_automation SET status = 'running', started_at = now()
         WHERE organization_id = $1 AND automation_id = $2 AND status = 'created'
         RETURNING {AUTOMATION}"
    ))
    .bind(org)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Counts and durations of an automation's jobs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatsRow {
    /// Jobs.
    pub total: i64,
    /// Waiting.
    pub pending: i64,
    /// Claimed.
    pub running: i64,
    /// Finished.
    pub done: i64,
    /// Failed.
    pub failed: i64,
    /// WhatsApp messages sent.
    pub messages_sent: i64,
    /// LLM calls made.
    pub ai_calls: i64,
    /// Mean finished job duration, ms.
    pub avg_ms: Option<i64>,
    /// Median.
    pub p50_ms: Option<i64>,
    /// Longest.
    pub max_ms: Option<i64>,
}

/// The stats of automation `id` (the caller checked it is the organization's).
pub async fn stats(pool: &PgPool, id: Uuid) -> Result<StatsRow, sqlx::Error> {
    sqlx::query_as(
        "WITH j AS (
           SELECT status, messages_sent, ai_calls,
                  CASE WHEN finished_at IS NOT NULL AND started_at IS NOT NULL
                       THEN (extract(epoch FROM finished_at - started_at) * 1000)::bigint END AS ms
           FROM pytake_automation_job WHERE automation_id = $1)
         SELECT count(*) AS total,
                count(*) FILTER (WHERE status = 'pending') AS pending,
                count(*) FILTER (WHERE status = 'running') AS running,
                count(*) FILTER (WHERE status = 'done') AS done,
                count(*) FILTER (WHERE status = 'failed') AS failed,
                coalesce(sum(messages_sent), 0)::bigint AS messages_sent,
                coalesce(sum(ai_calls), 0)::bigint AS ai_calls,
                round(avg(ms))::bigint AS avg_ms,
                (percentile_disc(0.5) WITHIN GROUP (ORDER BY ms))::bigint AS p50_ms,
                max(ms) AS max_ms
         FROM j",
    )
    .bind(id)
    .fetch_one(pool)
    .await
}

/// A failed job's contact and reason.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FailureRow {
    /// Contact.
    pub contact_id: Uuid,
    /// Why.
    pub error: Option<String>,
}

/// The first `limit` failures of an automation.
pub async fn failures(pool: &PgPool, id: Uuid, limit: i64) -> Result<Vec<FailureRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT contact_id, error FROM pytake_automation_job
         WHERE automation_id = $1 AND status = 'failed' ORDER BY finished_at, job_id LIMIT $2",
    )
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A claimed job with what running it needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    /// Id.
    pub job_id: Uuid,
    /// Automation.
    pub automation_id: Uuid,
    /// Owner.
    pub organization_id: Uuid,
    /// The flow.
    pub flow_id: Uuid,
    /// The automation's config, JSON text.
    pub config: String,
    /// Contact.
    pub contact_id: Uuid,
    /// Its WhatsApp id.
    pub whatsapp_id: String,
    /// Its name.
    pub name: Option<String>,
    /// Its email.
    pub email: Option<String>,
    /// The next node (`None`: the flow's start).
    pub next_node: Option<String>,
    /// Outputs so far, JSON object text.
    pub state: String,
    /// Nodes executed so far.
    pub steps: i32,
    /// Claims so far, this one included.
    pub attempts: i32,
    /// This claim's fence.
    pub lease_token: Uuid,
}

/// Claim up to `batch` jobs of running automations: pending ones, and running ones whose lease
/// ended (their runner died). Each gets a fresh lease token and `lease_ms` of lease.
pub async fn claim(pool: &PgPool, batch: i64, lease_ms: i64) -> Result<Vec<JobRow>, sqlx::Error> {
    sqlx::query_as(
        "WITH picked AS (
           SELECT j.job_id FROM pytake_automation_job j
           JOIN pytake_automation a ON a.automation_id = j.automation_id
           WHERE a.status = 'running'
             AND (j.status = 'pending' OR (j.status = 'running' AND j.lease_until < now()))
           ORDER BY j.created_at, j.job_id
           LIMIT $1
           FOR UPDATE OF j SKIP LOCKED),
         claimed AS (
           UPDATE pytake_automation_job j
           SET status = 'running', attempts = j.attempts + 1, lease_token = gen_random_uuid(),
               lease_until = now() + make_interval(secs => $2::double precision / 1000),
               started_at = coalesce(j.started_at, now())
           FROM picked WHERE j.job_id = picked.job_id
           RETURNING j.*)
         SELECT c.job_id, c.automation_id, c.organization_id, a.flow_id, a.config::text AS config,
                c.contact_id, p.whatsapp_id, p.name, p.email, c.next_node, c.state::text AS state,
                c.steps, c.attempts, c.lease_token
         FROM claimed c
         JOIN pytake_automation a ON a.automation_id = c.automation_id
         JOIN pytake_contact p ON p.contact_id = c.contact_id",
    )
    .bind(batch)
    .bind(lease_ms)
    .fetch_all(pool)
    .await
}

/// What one executed node changed.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// The node to run next (`None`: the job is finished).
    pub next_node: Option<&'a str>,
    /// Outputs, JSON object text.
    pub state: &'a str,
    /// Messages sent by the node.
    pub messages: i32,
    /// LLM calls made by the node.
    pub ai_calls: i32,
}

/// Record a node's execution and renew the lease; false when the claim was lost (its lease
/// ended and another runner took the job): the caller stops.
pub async fn progress(
    pool: &PgPool,
    job: Uuid,
    token: Uuid,
    p: Progress<'_>,
    lease_ms: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE pytake_automation_job
         SET next_node = $3, state = $4::jsonb, steps = steps + 1,
             messages_sent = messages_sent + $5, ai_calls = ai_calls + $6,
             lease_until = now() + make_interval(secs => $7::double precision / 1000)
         WHERE job_id = $1 AND lease_token = $2 AND status = 'running'",
    )
    .bind(job)
    .bind(token)
    .bind(p.next_node)
    .bind(p.state)
    .bind(p.messages)
    .bind(p.ai_calls)
    .bind(lease_ms)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Finish a job (`done`, or `failed` with `error`) under its claim, and complete its
/// automation when no job is left: false when the claim was lost.
pub async fn finish(
    pool: &PgPool,
    job: Uuid,
    token: Uuid,
    error: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let automation: Option<Uuid> = sqlx::query_scalar(
        "UPDATE pytake_automation_job
         SET status = CASE WHEN $3::text IS NULL THEN 'done' ELSE 'failed' END, error = $3,
             finished_at = now(), lease_token = NULL, lease_until = NULL
         WHERE job_id = $1 AND lease_token = $2 AND status = 'running'
         RETURNING automation_id",
    )
    .bind(job)
    .bind(token)
    .bind(error)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(automation) = automation else {
        return Ok(false);
    };
    // jobs finishing at once serialise here, so the last one's check (a fresh snapshot, after
    // the others committed) sees every other job finished
    sqlx::query("SELECT 1 FROM pytake_automation WHERE automation_id = $1 FOR UPDATE")
        .bind(automation)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE pytake_automation SET status = 'completed', finished_at = now()
         WHERE automation_id = $1 AND status = 'running'
           AND NOT EXISTS (SELECT 1 FROM pytake_automation_job
                           WHERE automation_id = $1 AND status IN ('pending', 'running'))",
    )
    .bind(automation)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}
