//! The audit log: one row per change, with who acted, from where, and a redacted
//! before/after (the redaction rule is `domain::audit::redact`).
//!
//! Who and from where come from the request's [`Context`]: the admin app wraps every request
//! in [`scoped`] (the operator API as `operator`, the dashboards as `user`, with the client's
//! address the gateway saw), and the CLI wraps its commands as `cli`. A statement outside any
//! scope is the `system`'s. The context rides with the request's task, so no domain function
//! has to carry it and none can forget it.

use std::future::Future;

use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

/// Who is acting and from where, for every audit row written while it is in scope.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// `user`, `operator`, `cli` (`None`: `user` when a user is named, else `system`).
    pub actor: Option<&'static str>,
    /// The client's address as the gateway saw it.
    pub source_ip: Option<String>,
}

tokio::task_local! {
    static CONTEXT: Context;
}

/// Run `f` with `ctx` as the audit context of every row it writes.
pub async fn scoped<F: Future>(ctx: Context, f: F) -> F::Output {
    CONTEXT.scope(ctx, f).await
}

fn context() -> Context {
    CONTEXT.try_with(Context::clone).unwrap_or_default()
}

/// Record `action` on `target` by `user` in `org`.
pub async fn insert(
    db: impl PgExecutor<'_>,
    org: Uuid,
    user: Option<Uuid>,
    action: &str,
    target: Option<&str>,
) -> Result<(), sqlx::Error> {
    insert_change(db, Some(org), user, action, target, None, None).await
}

/// Record `action` on `target` by `user` in `org` (`None`: platform-wide, e.g. a plan), with the object before and after the change
/// (already redacted by the caller).
pub async fn insert_change(
    db: impl PgExecutor<'_>,
    org: Option<Uuid>,
    user: Option<Uuid>,
    action: &str,
    target: Option<&str>,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Result<(), sqlx::Error> {
    let ctx = context();
    let actor = ctx
        .actor
        .unwrap_or(if user.is_some() { "user" } else { "system" });
    sqlx::query(
        "INSERT INTO audit_log (organization_id, user_id, action, target, actor, source_ip, before, after)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(org)
    .bind(user)
    .bind(action)
    .bind(target)
    .bind(actor)
    .bind(ctx.source_ip)
    .bind(before)
    .bind(after)
    .execute(db)
    .await?;
    Ok(())
}

/// One audit entry.
#[derive(Debug, sqlx::FromRow)]
pub struct AuditRow {
    /// Sequence number.
    pub audit_log_id: i64,
    /// Organization.
    pub organization_id: Option<Uuid>,
    /// The user who acted (`None`: the operator or the system).
    pub user_id: Option<Uuid>,
    /// What was done (`api_key.create`, ...).
    pub action: String,
    /// What it was done to.
    pub target: Option<String>,
    /// `user`, `operator`, `cli` or `system`.
    pub actor: String,
    /// The client's address, when the change came through the gateway.
    pub source_ip: Option<String>,
    /// The object before the change (redacted).
    pub before: Option<Value>,
    /// The object after the change (redacted).
    pub after: Option<Value>,
    /// When.
    pub created_at: time::OffsetDateTime,
}

/// Which entries to list.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    /// One organization.
    pub org: Option<Uuid>,
    /// One action.
    pub action: Option<&'a str>,
    /// One actor kind.
    pub actor: Option<&'a str>,
    /// One user.
    pub user: Option<Uuid>,
    /// From this time on.
    pub since: Option<time::OffsetDateTime>,
}

/// Entries, newest first, filtered as given.
pub async fn list(
    db: impl PgExecutor<'_>,
    f: &Filter<'_>,
    limit: i64,
    offset: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT audit_log_id, organization_id, user_id, action, target, actor, source_ip, before, after,
                created_at FROM audit_log
         WHERE ($1::uuid IS NULL OR organization_id = $1) AND ($2::text IS NULL OR action = $2)
           AND ($5::text IS NULL OR actor = $5) AND ($6::uuid IS NULL OR user_id = $6)
           AND ($7::timestamptz IS NULL OR created_at >= $7)
         ORDER BY audit_log_id DESC LIMIT $3 OFFSET $4",
    )
    .bind(f.org)
    .bind(f.action)
    .bind(limit)
    .bind(offset)
    .bind(f.actor)
    .bind(f.user)
    .bind(f.since)
    .fetch_all(db)
    .await
}
