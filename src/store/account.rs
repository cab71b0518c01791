//! Tokia's account routes (issue 14 item 5): a user's profile as the key's organization sees
//! it, preferences (`user_preference`), referral codes and invitees (`app_user.referral_code`,
//! `app_user.referred_by`) with their credits from the ledger, the user's mail
//! (`outbox_email` by address), the LGPD export's hourly window (audit rows
//! `account.export`), and prepaid teams. Every statement is about one user, or one user in one
//! organization; of other users only the invitees' email and join date are returned (and a
//! referral code's owner, to record an invitation).

use sqlx::{PgExecutor, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

/// The unique index on referral codes.
pub const REFERRAL_CODE_KEY: &str = "app_user_referral_code_key";

/// The user behind a key, with their membership in the key's organization.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProfileRow {
    /// User.
    pub user_id: Uuid,
    /// Email as registered.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Company.
    pub company: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Whether the email was verified.
    pub email_verified: bool,
    /// Registered.
    pub created_at: OffsetDateTime,
    /// The key's organization.
    pub organization_id: Uuid,
    /// Its name.
    pub organization_name: String,
    /// Its plan's name, if any (as the team lists show it).
    pub plan: Option<String>,
    /// Whether it has a prepaid balance.
    pub prepaid: bool,
    /// The user's role in it (`None`: no longer a member).
    pub role: Option<String>,
}

/// `user` as seen from `org`; `None` when there is no such user or organization.
pub async fn profile(
    db: impl PgExecutor<'_>,
    user: Uuid,
    org: Uuid,
) -> Result<Option<ProfileRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.user_id, u.email, u.name, u.company, u.phone, u.avatar_url,
                u.email_verified_at IS NOT NULL AS email_verified, u.created_at,
                o.organization_id, o.name AS organization_name, p.name AS plan,
                o.balance_brl_micros IS NOT NULL AS prepaid, m.role
         FROM app_user u
         JOIN organization o ON o.organization_id = $2
         LEFT JOIN plan p ON p.plan_id = o.plan_id
         LEFT JOIN membership m ON m.user_id = u.user_id AND m.organization_id = o.organization_id
         WHERE u.user_id = $1",
    )
    .bind(user)
    .bind(org)
    .fetch_optional(db)
    .await
}

/// A user's stored preferences.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PreferenceRow {
    /// IANA time zone.
    pub timezone: String,
    /// `xx` or `xx-YY`.
    pub preferred_locale: String,
    /// Whether the weekly digest is sent.
    pub weekly_digest_enabled: bool,
}

/// The user's preferences, if they ever set one.
pub async fn preferences(
    db: impl PgExecutor<'_>,
    user: Uuid,
) -> Result<Option<PreferenceRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT timezone, preferred_locale, weekly_digest_enabled FROM user_preference WHERE user_id = $1",
    )
    .bind(user)
    .fetch_optional(db)
    .await
}

/// The user's preferences, locked until the transaction ends.
pub async fn lock_preferences(
    tx: &mut Transaction<'_, Postgres>,
    user: Uuid,
) -> Result<Option<PreferenceRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT timezone, preferred_locale, weekly_digest_enabled FROM user_preference
         WHERE user_id = $1 FOR UPDATE",
    )
    .bind(user)
    .fetch_optional(&mut **tx)
    .await
}

/// Set the preferences given (`None` keeps a stored value; a first row takes `defaults` for
/// what is not given), in one statement; the row after.
pub async fn upsert_preferences(
    db: impl PgExecutor<'_>,
    user: Uuid,
    timezone: Option<&str>,
    locale: Option<&str>,
    digest: Option<bool>,
    defaults: &PreferenceRow,
) -> Result<PreferenceRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO user_preference AS p (user_id, timezone, preferred_locale, weekly_digest_enabled)
         VALUES ($1, coalesce($2, $5), coalesce($3, $6), coalesce($4, $7))
         ON CONFLICT (user_id) DO UPDATE SET
             timezone = coalesce($2, p.timezone),
             preferred_locale = coalesce($3, p.preferred_locale),
             weekly_digest_enabled = coalesce($4, p.weekly_digest_enabled)
         RETURNING timezone, preferred_locale, weekly_digest_enabled",
    )
    .bind(user)
    .bind(timezone)
    .bind(locale)
    .bind(digest)
    .bind(&defaults.timezone)
    .bind(&defaults.preferred_locale)
    .bind(defaults.weekly_digest_enabled)
    .fetch_one(db)
    .await
}

/// Whether `name` is a zone of PostgreSQL's time zone database (exact spelling).
pub async fn timezone_exists(db: impl PgExecutor<'_>, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)")
        .bind(name)
        .fetch_one(db)
        .await
}

/// Make the transaction one read-only snapshot (its first statement).
pub async fn read_only_snapshot(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The user's referral code: `None` when there is no such user, `Some(None)` before one is
/// made.
pub async fn referral_code(
    db: impl PgExecutor<'_>,
    user: Uuid,
) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar("SELECT referral_code FROM app_user WHERE user_id = $1")
        .bind(user)
        .fetch_optional(db)
        .await
}

/// Give the user `code` unless they have one; `None` when they had one already (or there is
/// no such user). A code another user has is [`REFERRAL_CODE_KEY`].
pub async fn set_referral_code(
    db: impl PgExecutor<'_>,
    user: Uuid,
    code: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE app_user SET referral_code = $2 WHERE user_id = $1 AND referral_code IS NULL
         RETURNING referral_code",
    )
    .bind(user)
    .bind(code)
    .fetch_optional(db)
    .await
}

/// The user whose referral code is `code`, if any.
pub async fn referrer_by_code(
    db: impl PgExecutor<'_>,
    code: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM app_user WHERE referral_code = $1")
        .bind(code)
        .fetch_optional(db)
        .await
}

/// Record that `referrer` invited `user`.
pub async fn set_referred_by(
    db: impl PgExecutor<'_>,
    user: Uuid,
    referrer: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE app_user SET referred_by = $2 WHERE user_id = $1")
        .bind(user)
        .bind(referrer)
        .execute(db)
        .await?;
    Ok(())
}

/// A user someone invited, with the referral credit posted for them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InviteeRow {
    /// Their email (masked before it leaves the domain).
    pub email: String,
    /// When they were created.
    pub joined_at: OffsetDateTime,
    /// The net of `org`'s ledger entries keyed `referral:{their id}` or
    /// `referral:{their id}:…` (micro-BRL).
    pub credit_brl_micros: i64,
}

/// The ledger entries of `org` that credit the referral of `u.user_id` (an SQL condition on
/// `e` and `u`).
const CREDIT_OF: &str = "e.organization_id = $2
      AND (e.idempotency_key = 'referral:' || u.user_id::text
           OR starts_with(e.idempotency_key, 'referral:' || u.user_id::text || ':'))";

/// The users `referrer` invited, oldest first (at most `limit`), with the credits `org`'s
/// ledger holds for each.
pub async fn invitees(
    db: impl PgExecutor<'_>,
    referrer: Uuid,
    org: Uuid,
    limit: i64,
) -> Result<Vec<InviteeRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT u.email, u.created_at AS joined_at,
                coalesce((SELECT sum(e.amount_brl_micros) FROM ledger_entry e WHERE {CREDIT_OF}), 0)::int8
                    AS credit_brl_micros
         FROM app_user u WHERE u.referred_by = $1
         ORDER BY u.created_at, u.user_id LIMIT $3"
    ))
    .bind(referrer)
    .bind(org)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// How many users `referrer` invited and the credits `org`'s ledger holds for all of them.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct ReferralTotalsRow {
    /// Invitees.
    pub invited: i64,
    /// Net referral credits, micro-BRL.
    pub credit_brl_micros: i64,
}

/// [`ReferralTotalsRow`] of `referrer` in `org`.
pub async fn referral_totals(
    db: impl PgExecutor<'_>,
    referrer: Uuid,
    org: Uuid,
) -> Result<ReferralTotalsRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT (SELECT count(*) FROM app_user WHERE referred_by = $1)::int8 AS invited,
                coalesce((SELECT sum(e.amount_brl_micros) FROM app_user u JOIN ledger_entry e ON {CREDIT_OF}
                          WHERE u.referred_by = $1), 0)::int8 AS credit_brl_micros"
    ))
    .bind(referrer)
    .bind(org)
    .fetch_one(db)
    .await
}

/// Whether someone invited `user`.
pub async fn was_referred(db: impl PgExecutor<'_>, user: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM app_user WHERE user_id = $1 AND referred_by IS NOT NULL)",
    )
    .bind(user)
    .fetch_one(db)
    .await
}

/// A delivered or given-up mail of the user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationRow {
    /// Outbox row id.
    pub outbox_email_id: i64,
    /// `invitation`, `reset_password`, `verify_email` or `other`.
    pub template: String,
    /// `sent` or `failed`.
    pub status: String,
    /// When it was delivered or given up.
    pub at: OffsetDateTime,
    /// The last error of a failed mail.
    pub error: Option<String>,
}

/// The mails to the user's address (case-insensitive) that were sent or given up.
const MAIL_OF: &str = "lower(o.to_address) = (SELECT lower(email) FROM app_user WHERE user_id = $1)
      AND (o.sent_at IS NOT NULL OR o.failed_at IS NOT NULL)";

/// The user's newest `limit` sent or failed mails, newest first.
pub async fn notifications(
    db: impl PgExecutor<'_>,
    user: Uuid,
    limit: i64,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT o.outbox_email_id, o.template,
                CASE WHEN o.sent_at IS NOT NULL THEN 'sent' ELSE 'failed' END AS status,
                coalesce(o.sent_at, o.failed_at) AS at,
                CASE WHEN o.sent_at IS NULL THEN o.last_error END AS error
         FROM outbox_email o WHERE {MAIL_OF}
         ORDER BY coalesce(o.sent_at, o.failed_at) DESC, o.outbox_email_id DESC LIMIT $2"
    ))
    .bind(user)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// How many sent or failed mails the user has.
pub async fn notification_count(db: impl PgExecutor<'_>, user: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM outbox_email o WHERE {MAIL_OF}"
    ))
    .bind(user)
    .fetch_one(db)
    .await
}

/// The user's LGPD exports of the last `window_secs`.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct ExportWindowRow {
    /// How many.
    pub count: i64,
    /// Seconds until the oldest of them leaves the window (0 without any).
    pub oldest_leaves_in_secs: i64,
}

/// Serialize the user's exports until the transaction ends (two at once are counted one
/// after the other, so the cap cannot be passed by racing).
pub async fn lock_exports(
    tx: &mut Transaction<'_, Postgres>,
    user: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('account.export:' || $1::text, 0))")
        .bind(user)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// [`ExportWindowRow`] of `user`.
pub async fn exports_within(
    db: impl PgExecutor<'_>,
    user: Uuid,
    window_secs: i64,
) -> Result<ExportWindowRow, sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*)::int8 AS count,
                coalesce(ceil(extract(epoch FROM min(created_at) + make_interval(secs => $2) - now())), 0)::int8
                    AS oldest_leaves_in_secs
         FROM audit_log
         WHERE action = 'account.export' AND user_id = $1
           AND created_at > now() - make_interval(secs => $2)",
    )
    .bind(user)
    .bind(window_secs as f64)
    .fetch_one(db)
    .await
}

/// A new prepaid team (zero balance, no plan, no slug); its id and creation time.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct NewTeamRow {
    /// Id.
    pub organization_id: Uuid,
    /// Created.
    pub created_at: OffsetDateTime,
}

/// Insert a prepaid team named `name`.
pub async fn insert_prepaid_team(
    db: impl PgExecutor<'_>,
    name: &str,
) -> Result<NewTeamRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO organization (name, kind, balance_brl_micros) VALUES ($1, 'team', 0)
         RETURNING organization_id, created_at",
    )
    .bind(name)
    .fetch_one(db)
    .await
}
