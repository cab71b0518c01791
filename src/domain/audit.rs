//! The audit log: what every change records (who, from where, a redacted before/after), and
//! the log as the operator reads it. Rows are written by the domain function that makes the
//! change, in its transaction; who and from where come from the request's
//! `store::audit::Context`.

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::error::DomainError;
use super::usage::Page;
pub use crate::store::audit::{AuditRow as Entry, Context, Filter, scoped};

/// Field names whose values never reach the log: secrets, credentials, key material.
const SECRET_FIELDS: &[&str] = &[
    "password",
    "password_hash",
    "secret",
    "secret_sealed",
    "token",
    "access_token",
    "refresh_token",
    "key",
    "key_hash",
    "plaintext",
    "api_key",
    "authorization",
];

/// The value with every secret field (at any depth) replaced by `"[redacted]"`. Field names are
/// compared case-insensitively, and any name ending in `_secret`, `_token` or `_password` counts.
pub fn redact(mut v: Value) -> Value {
    redact_in(&mut v, 0);
    v
}

fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_FIELDS.contains(&n.as_str())
        || n.ends_with("_secret")
        || n.ends_with("_token")
        || n.ends_with("_password")
}

fn redact_in(v: &mut Value, depth: usize) {
    if depth > 32 {
        *v = Value::String("[redacted]".into());
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if is_secret(k) {
                    *x = Value::String("[redacted]".into());
                } else {
                    redact_in(x, depth + 1);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| redact_in(x, depth + 1)),
        _ => {}
    }
}

/// Entries, newest first, filtered as given.
pub async fn list(pool: &PgPool, f: &Filter<'_>, page: Page) -> Result<Vec<Entry>, DomainError> {
    if f.action.is_some_and(|a| a.is_empty() || a.len() > 100) {
        return Err(DomainError::invalid("action", "1 to 100 characters"));
    }
    if f.actor
        .is_some_and(|a| !matches!(a, "user" | "operator" | "cli" | "system"))
    {
        return Err(DomainError::invalid(
            "actor",
            "user, operator, cli or system",
        ));
    }
    Ok(crate::store::audit::list(pool, f, page.per_page, (page.page - 1) * page.per_page).await?)
}

/// Record a change of `target` in `org` with its redacted before and after.
pub async fn change(
    db: impl sqlx::PgExecutor<'_>,
    org: Uuid,
    user: Option<Uuid>,
    action: &str,
    target: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<(), sqlx::Error> {
    let before = before.map(redact);
    let after = after.map(redact);
    crate::store::audit::insert_change(
        db,
        Some(org),
        user,
        action,
        Some(target),
        before.as_ref(),
        after.as_ref(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth_and_other_fields_kept() {
        let v = redact(json!({
            "name": "ops", "secret": "s3", "Webhook_Secret": "x",
            "nested": [{"password": "p", "refresh_token": "r", "rpm": 10}],
            "key_hash": "ab", "prefix": "sk-tokia-1",
        }));
        assert_eq!(v["name"], "ops");
        assert_eq!(v["prefix"], "sk-tokia-1");
        assert_eq!(v["nested"][0]["rpm"], 10);
        for p in [
            "/secret",
            "/Webhook_Secret",
            "/nested/0/password",
            "/nested/0/refresh_token",
            "/key_hash",
        ] {
            assert_eq!(v.pointer(p), Some(&json!("[redacted]")), "{p}");
        }
        assert!(!v.to_string().contains("s3"));
    }
}
