//! PyTake's contacts (issue 15 item 1): a WhatsApp id (unique in the organization), an
//! optional name and email; listing searches name, email and WhatsApp id. Every rule is
//! checked before the database is asked.

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::accounts::Email;
use super::error::{Conflict, DomainError};
use super::pytake::{Actor, authorize};
use super::roles::Action;
use crate::store::contacts as db;

/// Longest name, characters.
pub const MAX_NAME: usize = 200;
/// Longest search text, characters.
pub const MAX_QUERY: usize = 200;
/// Largest page.
pub const MAX_LIMIT: i64 = 100;
/// Default page.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest offset.
pub const MAX_OFFSET: i64 = 100_000;

/// A contact.
#[derive(Debug, Clone)]
pub struct Contact {
    /// Id.
    pub id: Uuid,
    /// WhatsApp id: 8 to 15 digits.
    pub whatsapp_id: String,
    /// Name.
    pub name: Option<String>,
    /// Email (as given, trimmed).
    pub email: Option<String>,
    /// Owner.
    pub organization_id: Uuid,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

impl From<db::ContactRow> for Contact {
    fn from(r: db::ContactRow) -> Self {
        Contact {
            id: r.contact_id,
            whatsapp_id: r.whatsapp_id,
            name: r.name,
            email: r.email,
            organization_id: r.organization_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A page: `limit` 1 to [`MAX_LIMIT`] (default [`DEFAULT_LIMIT`]), `offset` 0 to
/// [`MAX_OFFSET`]; out of range is refused, never clamped.
pub fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), DomainError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(DomainError::invalid("limit", "must be 1 to 100"));
    }
    let offset = offset.unwrap_or(0);
    if !(0..=MAX_OFFSET).contains(&offset) {
        return Err(DomainError::invalid("offset", "must be 0 to 100000"));
    }
    Ok((limit, offset))
}

/// A WhatsApp id: 8 to 15 ASCII digits (the international number without `+`).
pub fn whatsapp_id(raw: &str) -> Result<String, DomainError> {
    let w = raw.trim();
    if !(8..=15).contains(&w.len()) || !w.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::invalid(
            "whatsapp_id",
            "8 to 15 digits: the international number without + or spaces",
        ));
    }
    Ok(w.to_string())
}

/// An optional name: trimmed, 1 to [`MAX_NAME`] characters, no control characters.
fn name(raw: Option<&str>) -> Result<Option<String>, DomainError> {
    let Some(raw) = raw else { return Ok(None) };
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > MAX_NAME || n.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "name",
            "1 to 200 characters, no control characters",
        ));
    }
    Ok(Some(n.to_string()))
}

/// Create a contact in the actor's organization (409 when the WhatsApp id is taken there).
pub async fn create(
    pool: &PgPool,
    actor: &Actor,
    raw_whatsapp_id: &str,
    raw_name: Option<&str>,
    raw_email: Option<&str>,
) -> Result<Contact, DomainError> {
    authorize(actor, Action::CreateContacts)?;
    let w = whatsapp_id(raw_whatsapp_id)?;
    let n = name(raw_name)?;
    let e = raw_email.map(Email::parse).transpose()?;
    let mut tx = pool.begin().await?;
    let c = db::insert(
        &mut *tx,
        actor.organization_id,
        &w,
        n.as_deref(),
        e.as_ref().map(Email::as_str),
    )
    .await
    .map(Contact::from)
    .map_err(|e| match e {
        sqlx::Error::Database(d) if d.constraint() == Some(db::WHATSAPP_KEY) => {
            DomainError::from(Conflict::WhatsappIdTaken)
        }
        e => e.into(),
    })?;
    super::audit::change(
        &mut *tx,
        actor.organization_id,
        Some(actor.user_id),
        "contact.create",
        &format!("contact:{}", c.id),
        None,
        Some(audit(&c)),
    )
    .await?;
    tx.commit().await?;
    Ok(c)
}

/// What the audit log keeps of a contact.
fn audit(c: &Contact) -> serde_json::Value {
    serde_json::json!({"whatsapp_id": c.whatsapp_id, "name": c.name, "email": c.email})
}

/// `%text%` for `ILIKE`, with `\`, `%` and `_` taken literally.
fn pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// A page of the actor's organization's contacts, newest first; `query` (trimmed, up to
/// [`MAX_QUERY`] characters; blank means none) matches name, email or WhatsApp id,
/// case-insensitively.
pub async fn list(
    pool: &PgPool,
    actor: &Actor,
    query: Option<&str>,
    limit: Option<i64>,
    offset: Option<i64>,
) -> Result<Vec<Contact>, DomainError> {
    authorize(actor, Action::Read)?;
    let q = query.map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > MAX_QUERY || q.chars().any(char::is_control)) {
        return Err(DomainError::invalid(
            "query",
            "up to 200 characters, no control characters",
        ));
    }
    let (limit, offset) = page(limit, offset)?;
    let rows = db::list(
        pool,
        actor.organization_id,
        q.map(pattern).as_deref(),
        limit,
        offset,
    )
    .await?;
    Ok(rows.into_iter().map(Contact::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(whatsapp_id(" 5511999990000 ").unwrap(), "5511999990000");
        for bad in [
            "",
            "+5511999990000",
            "55 11 9999",
            "1234567",
            "1234567890123456",
        ] {
            assert!(whatsapp_id(bad).is_err(), "{bad}");
        }
        assert_eq!(pattern("a%_\\b"), "%a\\%\\_\\\\b%");
        assert!(page(Some(0), None).is_err());
        assert!(page(Some(101), None).is_err());
        assert!(page(None, Some(-1)).is_err());
        assert_eq!(page(None, None).unwrap(), (50, 0));
        assert!(name(Some("  ")).is_err());
        assert_eq!(name(Some(" Ana ")).unwrap().as_deref(), Some("Ana"));
    }
}
