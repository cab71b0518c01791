//! Organizations (SabIA teams), memberships and plan changes. The rules that must hold under
//! concurrency (a team keeps an owner, a plan change reports the plan it replaced) hold by
//! locking the organization's row inside one transaction.

use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

/// Lock an organization's row until the transaction ends: membership and plan changes of one
/// organization then happen one after the other. Whether it exists.
pub async fn lock(tx: &mut Transaction<'_, Postgres>, org: Uuid) -> Result<bool, sqlx::Error> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM organization WHERE organization_id = $1 FOR UPDATE")
            .bind(org)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(found.is_some())
}

/// A member's role, if a member.
pub async fn role_of(
    db: impl PgExecutor<'_>,
    org: Uuid,
    user: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT role FROM membership WHERE organization_id = $1 AND user_id = $2")
        .bind(org)
        .bind(user)
        .fetch_optional(db)
        .await
}

/// Owners of the organization other than `user`.
pub async fn other_owners(
    db: impl PgExecutor<'_>,
    org: Uuid,
    user: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM membership WHERE organization_id = $1 AND role = 'owner' AND user_id <> $2",
    )
    .bind(org)
    .bind(user)
    .fetch_one(db)
    .await
}

/// Remove a membership; whether there was one.
pub async fn delete_membership(
    db: impl PgExecutor<'_>,
    org: Uuid,
    user: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM membership WHERE organization_id = $1 AND user_id = $2")
        .bind(org)
        .bind(user)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The code of the organization's current plan (`None`: none set).
pub async fn plan_code(db: impl PgExecutor<'_>, org: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT p.code FROM organization o LEFT JOIN plan p USING (plan_id) WHERE o.organization_id = $1",
    )
    .bind(org)
    .fetch_one(db)
    .await
}

/// A plan's id by code (case-insensitive).
pub async fn plan_id(db: impl PgExecutor<'_>, code: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT plan_id FROM plan WHERE code = lower($1)")
        .bind(code)
        .fetch_optional(db)
        .await
}

/// Put the organization on `plan` with `cycle` from now; when the new period started.
pub async fn set_plan(
    db: impl PgExecutor<'_>,
    org: Uuid,
    plan: Uuid,
    cycle: &str,
) -> Result<time::OffsetDateTime, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE organization SET plan_id = $2, billing_cycle = $3, plan_started_at = now()
         WHERE organization_id = $1 RETURNING plan_started_at",
    )
    .bind(org)
    .bind(plan)
    .bind(cycle)
    .fetch_one(db)
    .await
}

/// An organization as the operator sees it.
#[derive(Debug, sqlx::FromRow)]
pub struct OrgRow {
    /// Id.
    pub organization_id: Uuid,
    /// Unique slug.
    pub slug: Option<String>,
    /// Name.
    pub name: String,
    /// `team`, `customer` or `project`.
    pub kind: String,
    /// A project's tier (`full` or `student`); `None` for other kinds.
    pub tier: Option<String>,
    /// Plan code, if any.
    pub plan: Option<String>,
    /// Prepaid balance (micro-BRL); `None` = postpaid.
    pub balance_brl_micros: Option<i64>,
    /// When disabled, if it is.
    pub disabled_at: Option<time::OffsetDateTime>,
    /// Requests per second (`None`: the plan's, else none).
    pub rate_limit_rps: Option<i32>,
    /// Requests per minute.
    pub rate_limit_rpm: Option<i32>,
    /// Requests per day.
    pub rate_limit_rpd: Option<i32>,
    /// Tokens per minute.
    pub rate_limit_tpm: Option<i32>,
    /// Requests in flight.
    pub max_concurrency: Option<i32>,
    /// Created.
    pub created_at: time::OffsetDateTime,
}

const ORG_COLUMNS: &str =
    "o.organization_id, o.slug, o.name, o.kind, o.tier, p.code AS plan, o.balance_brl_micros,
     o.disabled_at, o.rate_limit_rps, o.rate_limit_rpm, o.rate_limit_rpd, o.rate_limit_tpm,
     o.max_concurrency, o.created_at";

/// The unique constraint on `organization.slug`.
pub const ORG_SLUG_KEY: &str = "organization_slug_key";

/// A new organization; a prepaid one starts at a zero balance.
pub async fn insert_org(
    db: impl PgExecutor<'_>,
    name: &str,
    slug: &str,
    kind: &str,
    tier: Option<&str>,
    plan: Option<Uuid>,
    prepaid: bool,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO organization (name, slug, kind, tier, plan_id, balance_brl_micros)
         VALUES ($1, $2, $3, $6, $4, CASE WHEN $5 THEN 0 END) RETURNING organization_id",
    )
    .bind(name)
    .bind(slug)
    .bind(kind)
    .bind(plan)
    .bind(prepaid)
    .bind(tier)
    .fetch_one(db)
    .await
}

/// One organization.
pub async fn get_org(db: impl PgExecutor<'_>, org: Uuid) -> Result<Option<OrgRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ORG_COLUMNS} FROM organization o LEFT JOIN plan p USING (plan_id) WHERE o.organization_id = $1"
    ))
    .bind(org)
    .fetch_optional(db)
    .await
}

/// A page of organizations, oldest first, optionally of one kind; and how many there are.
pub async fn list_orgs(
    pool: &sqlx::PgPool,
    kind: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<OrgRow>, i64), sqlx::Error> {
    let rows = sqlx::query_as(&format!(
        "SELECT {ORG_COLUMNS} FROM organization o LEFT JOIN plan p USING (plan_id)
         WHERE ($1::text IS NULL OR o.kind = $1) ORDER BY o.created_at, o.organization_id LIMIT $2 OFFSET $3"
    ))
    .bind(kind)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar(
        "SELECT count(*) FROM organization WHERE ($1::text IS NULL OR kind = $1)",
    )
    .bind(kind)
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

/// Disable or enable an organization (its keys are refused while disabled); its row.
pub async fn set_disabled(
    db: impl PgExecutor<'_>,
    org: Uuid,
    disabled: bool,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE organization SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END
         WHERE organization_id = $1",
    )
    .bind(org)
    .bind(disabled)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every gateway drops its cached keys (an organization-wide change).
pub async fn notify_all_keys(db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify('catraca_api_key', '*')")
        .execute(db)
        .await?;
    Ok(())
}

/// A team as its member sees it in a list.
#[derive(Debug, sqlx::FromRow)]
pub struct TeamRow {
    /// Id.
    pub organization_id: Uuid,
    /// Name.
    pub name: String,
    /// Plan name, if any.
    pub plan: Option<String>,
    /// Logo URL.
    pub logo_url: Option<String>,
    /// The member's role.
    pub role: String,
    /// Created.
    pub created_at: time::OffsetDateTime,
}

/// The organizations `user` belongs to, oldest first.
pub async fn teams_of(db: impl PgExecutor<'_>, user: Uuid) -> Result<Vec<TeamRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT o.organization_id, o.name, p.name AS plan, o.logo_url, m.role, o.created_at
         FROM membership m JOIN organization o USING (organization_id) LEFT JOIN plan p USING (plan_id)
         WHERE m.user_id = $1 ORDER BY o.created_at",
    )
    .bind(user)
    .fetch_all(db)
    .await
}

/// A new team on `plan`; its id and creation time.
pub async fn insert_team(
    db: impl PgExecutor<'_>,
    name: &str,
    plan: Uuid,
) -> Result<(Uuid, time::OffsetDateTime), sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Created {
        organization_id: Uuid,
        created_at: time::OffsetDateTime,
    }
    let c: Created = sqlx::query_as(
        "INSERT INTO organization (name, kind, plan_id) VALUES ($1, 'team', $2)
         RETURNING organization_id, created_at",
    )
    .bind(name)
    .bind(plan)
    .fetch_one(db)
    .await?;
    Ok((c.organization_id, c.created_at))
}

/// Add a membership unless there is one; whether it was added.
pub async fn add_membership(
    db: impl PgExecutor<'_>,
    org: Uuid,
    user: Uuid,
    role: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO membership (organization_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(org)
    .bind(user)
    .bind(role)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A member of a team.
#[derive(Debug, sqlx::FromRow)]
pub struct MemberRow {
    /// User.
    pub user_id: Uuid,
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Role.
    pub role: String,
    /// Avatar URL.
    pub avatar_url: Option<String>,
}

/// The team's members, in the order they joined.
pub async fn team_members(
    db: impl PgExecutor<'_>,
    org: Uuid,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.user_id, u.name, u.email, m.role, u.avatar_url
         FROM membership m JOIN app_user u USING (user_id)
         WHERE m.organization_id = $1 ORDER BY m.created_at",
    )
    .bind(org)
    .fetch_all(db)
    .await
}

/// How many members the organization has.
pub async fn member_count(db: impl PgExecutor<'_>, org: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM membership WHERE organization_id = $1")
        .bind(org)
        .fetch_one(db)
        .await
}

/// One organization, locked until the transaction ends.
pub async fn lock_org(
    tx: &mut Transaction<'_, Postgres>,
    org: Uuid,
) -> Result<Option<OrgRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ORG_COLUMNS} FROM organization o LEFT JOIN plan p USING (plan_id)
         WHERE o.organization_id = $1 FOR UPDATE OF o"
    ))
    .bind(org)
    .fetch_optional(&mut **tx)
    .await
}

/// A change to one nullable column: `None` keeps it, `Some(None)` clears it.
pub type Patch<T> = Option<Option<T>>;

/// Request limits; each `None` keeps the column, `Some(None)` clears it (unlimited).
#[derive(Debug, Default, Clone, Copy)]
pub struct LimitsPatch {
    /// Requests per second.
    pub rps: Patch<i32>,
    /// Requests per minute.
    pub rpm: Patch<i32>,
    /// Requests per day.
    pub rpd: Patch<i32>,
    /// Tokens per minute.
    pub tpm: Patch<i32>,
    /// Requests in flight.
    pub concurrency: Patch<i32>,
}

/// Change an organization's name, plan and limits (each kept when `None`).
pub async fn update_org(
    db: impl PgExecutor<'_>,
    org: Uuid,
    name: Option<&str>,
    plan: Patch<Uuid>,
    l: &LimitsPatch,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE organization SET name = coalesce($2, name),
                plan_id = CASE WHEN $3 THEN $4 ELSE plan_id END,
                rate_limit_rps = CASE WHEN $5 THEN $6 ELSE rate_limit_rps END,
                rate_limit_rpm = CASE WHEN $7 THEN $8 ELSE rate_limit_rpm END,
                rate_limit_rpd = CASE WHEN $9 THEN $10 ELSE rate_limit_rpd END,
                rate_limit_tpm = CASE WHEN $11 THEN $12 ELSE rate_limit_tpm END,
                max_concurrency = CASE WHEN $13 THEN $14 ELSE max_concurrency END
         WHERE organization_id = $1",
    )
    .bind(org)
    .bind(name)
    .bind(plan.is_some())
    .bind(plan.flatten())
    .bind(l.rps.is_some())
    .bind(l.rps.flatten())
    .bind(l.rpm.is_some())
    .bind(l.rpm.flatten())
    .bind(l.rpd.is_some())
    .bind(l.rpd.flatten())
    .bind(l.tpm.is_some())
    .bind(l.tpm.flatten())
    .bind(l.concurrency.is_some())
    .bind(l.concurrency.flatten())
    .execute(db)
    .await?;
    Ok(())
}

/// Change a member's role in one statement; the role it replaced, `None` when not a member.
pub async fn set_role(
    db: impl PgExecutor<'_>,
    org: Uuid,
    user: Uuid,
    role: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH old AS (SELECT role FROM membership WHERE organization_id = $1 AND user_id = $2 FOR UPDATE)
         UPDATE membership m SET role = $3 FROM old
         WHERE m.organization_id = $1 AND m.user_id = $2 RETURNING old.role",
    )
    .bind(org)
    .bind(user)
    .bind(role)
    .fetch_optional(db)
    .await
}
