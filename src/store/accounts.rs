//! Accounts: users, memberships, sessions (refresh-token families), one-time tokens and the
//! mail outbox. Named statements only; the rules live in `domain::accounts`.

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// The session a refresh token belonged to, once it is marked used.
#[derive(Debug, sqlx::FromRow)]
pub struct RefreshRow {
    /// Refresh family (one login).
    pub family_id: Uuid,
    /// User.
    pub user_id: Uuid,
    /// Organization the session acts in.
    pub organization_id: Uuid,
}

/// What every authenticated request checks: the membership and the token generation.
#[derive(Debug, sqlx::FromRow)]
pub struct SessionCheck {
    /// Role in the organization.
    pub role: String,
    /// The user's current token generation.
    pub token_generation: i32,
}

/// What login compares against.
#[derive(Debug, sqlx::FromRow)]
pub struct LoginRow {
    /// User.
    pub user_id: Uuid,
    /// argon2id PHC string.
    pub password_hash: String,
    /// The first organization the user joined, if any.
    pub organization_id: Option<Uuid>,
}

/// A user's profile fields.
#[derive(Debug, sqlx::FromRow)]
pub struct ProfileRow {
    /// Email as registered.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Company, if given.
    pub company: Option<String>,
    /// Phone, if given.
    pub phone: Option<String>,
    /// Registration time.
    pub created_at: time::OffsetDateTime,
}

/// Store a new refresh token of `family`, valid for `ttl_secs`.
pub async fn insert_refresh_token(
    db: impl PgExecutor<'_>,
    family: Uuid,
    user: Uuid,
    org: Uuid,
    token_hash: &[u8],
    ttl_secs: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_token (family_id, user_id, organization_id, token_hash, expires_at)
         VALUES ($1, $2, $3, $4, now() + $5 * interval '1 second')",
    )
    .bind(family)
    .bind(user)
    .bind(org)
    .bind(token_hash)
    .bind(ttl_secs)
    .execute(db)
    .await?;
    Ok(())
}

/// Mark a usable refresh token used (one statement: two racing uses cannot both win).
pub async fn use_refresh_token(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
) -> Result<Option<RefreshRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE refresh_token SET used_at = now()
         WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
         RETURNING family_id, user_id, organization_id",
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await
}

/// The family of a refresh token that was already used, if it was.
pub async fn spent_refresh_family(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT family_id FROM refresh_token WHERE token_hash = $1 AND used_at IS NOT NULL",
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await
}

/// Revoke every live token of a family.
pub async fn revoke_family(db: impl PgExecutor<'_>, family: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_token SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family)
    .execute(db)
    .await?;
    Ok(())
}

/// Revoke the family of a refresh token (logout).
pub async fn revoke_family_of(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_token SET revoked_at = now()
         WHERE family_id = (SELECT family_id FROM refresh_token WHERE token_hash = $1) AND revoked_at IS NULL",
    )
    .bind(token_hash)
    .execute(db)
    .await?;
    Ok(())
}

/// Revoke every refresh token of a user (password change).
pub async fn revoke_user_sessions(db: impl PgExecutor<'_>, user: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_token SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user)
    .execute(db)
    .await?;
    Ok(())
}

/// A new user; the unique email constraint is `app_user_email_key`.
pub async fn insert_user(
    db: impl PgExecutor<'_>,
    email: &str,
    name: &str,
    password_hash: &str,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO app_user (email, name, password_hash) VALUES ($1, $2, $3) RETURNING user_id",
    )
    .bind(email)
    .bind(name)
    .bind(password_hash)
    .fetch_one(db)
    .await
}

/// The unique constraint on `app_user.email`.
pub const USER_EMAIL_KEY: &str = "app_user_email_key";

/// A new organization of `kind`.
pub async fn insert_organization(
    db: impl PgExecutor<'_>,
    name: &str,
    kind: &str,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO organization (name, kind) VALUES ($1, $2) RETURNING organization_id",
    )
    .bind(name)
    .bind(kind)
    .fetch_one(db)
    .await
}

/// A user joins an organization with `role`.
pub async fn insert_membership(
    db: impl PgExecutor<'_>,
    org: Uuid,
    user: Uuid,
    role: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO membership (organization_id, user_id, role) VALUES ($1, $2, $3)")
        .bind(org)
        .bind(user)
        .bind(role)
        .execute(db)
        .await?;
    Ok(())
}

/// What login needs of the account with this email (case-insensitive).
pub async fn login_row(
    db: impl PgExecutor<'_>,
    email: &str,
) -> Result<Option<LoginRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.user_id, u.password_hash,
                (SELECT organization_id FROM membership m WHERE m.user_id = u.user_id ORDER BY created_at LIMIT 1)
                AS organization_id
         FROM app_user u WHERE lower(u.email) = lower($1) AND u.disabled_at IS NULL",
    )
    .bind(email)
    .fetch_optional(db)
    .await
}

/// The caller's role in an organization and current token generation, if a member.
pub async fn session_check(
    db: impl PgExecutor<'_>,
    user: Uuid,
    org: Uuid,
) -> Result<Option<SessionCheck>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.role, u.token_generation FROM membership m JOIN app_user u USING (user_id)
         WHERE m.user_id = $1 AND m.organization_id = $2 AND u.disabled_at IS NULL",
    )
    .bind(user)
    .bind(org)
    .fetch_optional(db)
    .await
}

/// A user's current token generation.
pub async fn token_generation(
    db: impl PgExecutor<'_>,
    user: Uuid,
) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar("SELECT token_generation FROM app_user WHERE user_id = $1")
        .bind(user)
        .fetch_optional(db)
        .await
}

/// A single-use token for `purpose`, valid `ttl_secs`.
pub async fn insert_one_time(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
    user: Uuid,
    purpose: &str,
    ttl_secs: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO one_time_token (token_hash, user_id, purpose, expires_at)
         VALUES ($1, $2, $3, now() + $4 * interval '1 second')",
    )
    .bind(token_hash)
    .bind(user)
    .bind(purpose)
    .bind(ttl_secs)
    .execute(db)
    .await?;
    Ok(())
}

/// Use a single-use token (one statement); its user when it was valid.
pub async fn consume_one_time(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
    purpose: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE one_time_token SET used_at = now()
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
         RETURNING user_id",
    )
    .bind(token_hash)
    .bind(purpose)
    .fetch_optional(db)
    .await
}

/// Queue a mail; `template` names which one it is (`invitation`, `reset_password`,
/// `verify_email`), as the user's notification list shows it.
pub async fn queue_email(
    db: impl PgExecutor<'_>,
    to: &str,
    template: &str,
    subject: &str,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox_email (to_address, template, subject, body) VALUES ($1, $2, $3, $4)",
    )
    .bind(to)
    .bind(template)
    .bind(subject)
    .bind(body)
    .execute(db)
    .await?;
    Ok(())
}

/// Replace a user's password hash and end the validity of every access token issued so far.
pub async fn set_password_hash(
    db: impl PgExecutor<'_>,
    user: Uuid,
    password_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE app_user SET password_hash = $2, token_generation = token_generation + 1, updated_at = now()
         WHERE user_id = $1",
    )
        .bind(user)
        .bind(password_hash)
        .execute(db)
        .await?;
    Ok(())
}

/// A user's profile.
pub async fn profile(pool: &PgPool, user: Uuid) -> Result<Option<ProfileRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT email, name, company, phone, created_at FROM app_user WHERE user_id = $1",
    )
    .bind(user)
    .fetch_optional(pool)
    .await
}

/// Change the given profile fields (`None` keeps a field).
pub async fn update_profile(
    pool: &PgPool,
    user: Uuid,
    name: Option<&str>,
    company: Option<&str>,
    phone: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE app_user SET name = coalesce($2, name), company = coalesce($3, company), phone = coalesce($4, phone)
         WHERE user_id = $1",
    )
    .bind(user)
    .bind(name)
    .bind(company)
    .bind(phone)
    .execute(pool)
    .await?;
    Ok(())
}

/// Failures counted for `key` in the window that is still open (`window_secs` long), if any.
pub async fn throttle_failures(
    db: impl PgExecutor<'_>,
    key: &str,
    window_secs: f64,
) -> Result<Option<(i32, f64)>, sqlx::Error> {
    // (failures, seconds until the window ends)
    sqlx::query_as(
        "SELECT failures, extract(epoch FROM window_start + make_interval(secs => $2) - now())::float8
         FROM login_throttle WHERE key = $1 AND window_start > now() - make_interval(secs => $2)",
    )
    .bind(key)
    .bind(window_secs)
    .fetch_optional(db)
    .await
}

/// Count one failure for `key` (a new window when the last one ended).
pub async fn throttle_fail(
    db: impl PgExecutor<'_>,
    key: &str,
    window_secs: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO login_throttle (key, failures, window_start) VALUES ($1, 1, now())
         ON CONFLICT (key) DO UPDATE SET
           failures = CASE WHEN login_throttle.window_start > now() - make_interval(secs => $2)
                           THEN login_throttle.failures + 1 ELSE 1 END,
           window_start = CASE WHEN login_throttle.window_start > now() - make_interval(secs => $2)
                               THEN login_throttle.window_start ELSE now() END",
    )
    .bind(key)
    .bind(window_secs)
    .execute(db)
    .await?;
    Ok(())
}

/// Forget the failures of `key` (a successful login).
pub async fn throttle_clear(db: impl PgExecutor<'_>, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_throttle WHERE key = $1")
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}

/// A user as the operator sees them, with one membership.
#[derive(Debug, sqlx::FromRow)]
pub struct UserRow {
    /// Id.
    pub user_id: Uuid,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// Organization of this membership (`None`: member of none).
    pub organization_id: Option<Uuid>,
    /// Role there.
    pub role: Option<String>,
    /// When disabled, if they are.
    pub disabled_at: Option<time::OffsetDateTime>,
    /// Registered.
    pub created_at: time::OffsetDateTime,
}

/// A user and their memberships (one row per membership, at least one row).
pub async fn user_rows(db: impl PgExecutor<'_>, user: Uuid) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.user_id, u.email, u.name, m.organization_id, m.role, u.disabled_at, u.created_at
         FROM app_user u LEFT JOIN membership m USING (user_id)
         WHERE u.user_id = $1 ORDER BY m.created_at",
    )
    .bind(user)
    .fetch_all(db)
    .await
}

/// The members of an organization.
pub async fn members(db: impl PgExecutor<'_>, org: Uuid) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.user_id, u.email, u.name, m.organization_id, m.role, u.disabled_at, u.created_at
         FROM membership m JOIN app_user u USING (user_id)
         WHERE m.organization_id = $1 ORDER BY m.created_at, u.user_id",
    )
    .bind(org)
    .fetch_all(db)
    .await
}

/// Disable a user and end their sessions; whether they exist.
pub async fn disable_user(db: impl PgExecutor<'_>, user: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE app_user SET disabled_at = coalesce(disabled_at, now()),
                token_generation = token_generation + 1
         WHERE user_id = $1",
    )
    .bind(user)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A user as the dashboards show them.
#[derive(Debug, sqlx::FromRow)]
pub struct CardRow {
    /// User.
    pub user_id: Uuid,
    /// Name.
    pub name: String,
    /// Email as registered.
    pub email: String,
    /// Phone.
    pub phone: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Registered.
    pub created_at: time::OffsetDateTime,
    /// Whether the email was verified.
    pub email_verified: bool,
}

const CARD_COLUMNS: &str = "user_id, name, email, phone, company, avatar_url, created_at,
     email_verified_at IS NOT NULL AS email_verified";

/// A user by id.
pub async fn card(db: impl PgExecutor<'_>, user: Uuid) -> Result<Option<CardRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CARD_COLUMNS} FROM app_user WHERE user_id = $1"
    ))
    .bind(user)
    .fetch_optional(db)
    .await
}

/// A user by email (case-insensitive).
pub async fn card_by_email(
    db: impl PgExecutor<'_>,
    email: &str,
) -> Result<Option<CardRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CARD_COLUMNS} FROM app_user WHERE lower(email) = lower($1)"
    ))
    .bind(email)
    .fetch_optional(db)
    .await
}

/// Mark the user's email verified (the first time only).
pub async fn mark_email_verified(db: impl PgExecutor<'_>, user: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE app_user SET email_verified_at = coalesce(email_verified_at, now()) WHERE user_id = $1",
    )
    .bind(user)
    .execute(db)
    .await?;
    Ok(())
}

/// A user in the operator's list, with every membership.
#[derive(Debug, sqlx::FromRow)]
pub struct UserListRow {
    /// Id.
    pub user_id: Uuid,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// When disabled, if they are.
    pub disabled_at: Option<time::OffsetDateTime>,
    /// Registered.
    pub created_at: time::OffsetDateTime,
    /// `[{organization_id, role}]`.
    pub memberships: serde_json::Value,
}

/// A page of users, oldest first, optionally only members of `org` and those whose email
/// contains `email` (case-insensitive); and how many match.
pub async fn list_users(
    pool: &PgPool,
    org: Option<Uuid>,
    email: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<UserListRow>, i64), sqlx::Error> {
    const FILTER: &str = "($1::uuid IS NULL OR EXISTS (SELECT 1 FROM membership x WHERE x.user_id = u.user_id AND x.organization_id = $1))
         AND ($2::text IS NULL OR strpos(lower(u.email), lower($2)) > 0)";
    let rows = sqlx::query_as(&format!(
        "SELECT u.user_id, u.email, u.name, u.disabled_at, u.created_at,
                coalesce((SELECT json_agg(json_build_object('organization_id', m.organization_id, 'role', m.role)
                                          ORDER BY m.created_at)
                          FROM membership m WHERE m.user_id = u.user_id), '[]'::json) AS memberships
         FROM app_user u WHERE {FILTER}
         ORDER BY u.created_at, u.user_id LIMIT $3 OFFSET $4"
    ))
    .bind(org)
    .bind(email)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar(&format!("SELECT count(*) FROM app_user u WHERE {FILTER}"))
        .bind(org)
        .bind(email)
        .fetch_one(pool)
        .await?;
    Ok((rows, total))
}
