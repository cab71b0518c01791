//! A user's preferences (Tokia `PUT /v1/me/preferences`): time zone, locale and the weekly
//! digest. A user who never set one has the defaults (`America/Sao_Paulo`, `pt-BR`, digest
//! on). A change keeps every field it omits; the time zone must be a zone of PostgreSQL's IANA
//! database (`pg_timezone_names`, exact spelling: the same database every `AT TIME ZONE` of
//! the usage exports reads, so a stored zone always works there), the locale must match
//! `^[a-z]{2}(-[A-Z]{2})?$`. Each change is audited with its before and after.

use sqlx::PgPool;
use uuid::Uuid;

use super::error::DomainError;
use super::usage::DEFAULT_TZ;
use crate::store::account as db;

pub use db::PreferenceRow as Preferences;

/// The locale of a user who has not chosen one.
pub const DEFAULT_LOCALE: &str = "pt-BR";
/// Longest time zone name accepted (the longest IANA name is 32 bytes).
pub const MAX_TIMEZONE: usize = 64;

/// The preferences of a user who never set one.
pub fn defaults() -> Preferences {
    Preferences {
        timezone: DEFAULT_TZ.to_string(),
        preferred_locale: DEFAULT_LOCALE.to_string(),
        weekly_digest_enabled: true,
    }
}

/// A change: `None` keeps a field.
#[derive(Debug, Default, Clone)]
pub struct Change {
    /// New IANA time zone.
    pub timezone: Option<String>,
    /// New locale (`xx` or `xx-YY`).
    pub preferred_locale: Option<String>,
    /// Whether the weekly digest is sent.
    pub weekly_digest_enabled: Option<bool>,
}

/// Whether `s` matches `^[a-z]{2}(-[A-Z]{2})?$`.
pub fn is_locale(s: &str) -> bool {
    let b = s.as_bytes();
    let lang = |b: &[u8]| b.iter().all(u8::is_ascii_lowercase);
    match b.len() {
        2 => lang(b),
        5 => lang(&b[..2]) && b[2] == b'-' && b[3..].iter().all(u8::is_ascii_uppercase),
        _ => false,
    }
}

/// What an IANA name can be made of; anything else is refused before the database is asked.
/// The `posix/` and `right/` copies some systems keep beside the zones are not names.
fn plausible_timezone(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_TIMEZONE
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'))
        && !s.starts_with("posix/")
        && !s.starts_with("right/")
        && !matches!(s, "posixrules" | "localtime" | "Factory")
}

/// The user's preferences (the defaults when they never set one).
pub async fn get(pool: &PgPool, user: Uuid) -> Result<Preferences, DomainError> {
    Ok(db::preferences(pool, user).await?.unwrap_or_else(defaults))
}

/// The time zone the user's usage is read in: theirs, else [`DEFAULT_TZ`] (also for a key
/// made without a user).
pub async fn timezone_of(pool: &PgPool, user: Option<Uuid>) -> Result<String, DomainError> {
    let Some(user) = user else {
        return Ok(DEFAULT_TZ.to_string());
    };
    Ok(db::preferences(pool, user)
        .await?
        .map_or_else(|| DEFAULT_TZ.to_string(), |p| p.timezone))
}

/// Apply `change` to `user`'s preferences (audited in `org`, the organization of the request)
/// and return them. Every field is checked before anything is written; a refused change
/// writes nothing.
pub async fn set(
    pool: &PgPool,
    user: Uuid,
    org: Uuid,
    change: Change,
) -> Result<Preferences, DomainError> {
    if let Some(l) = &change.preferred_locale
        && !is_locale(l)
    {
        return Err(DomainError::invalid(
            "preferred_locale",
            "must match ^[a-z]{2}(-[A-Z]{2})?$",
        ));
    }
    if let Some(tz) = &change.timezone
        && (!plausible_timezone(tz) || !db::timezone_exists(pool, tz).await?)
    {
        return Err(DomainError::invalid(
            "timezone",
            "an IANA time zone name (e.g. America/Sao_Paulo)",
        ));
    }
    let mut tx = pool.begin().await?;
    let before = db::lock_preferences(&mut tx, user)
        .await?
        .unwrap_or_else(defaults);
    let after = db::upsert_preferences(
        &mut *tx,
        user,
        change.timezone.as_deref(),
        change.preferred_locale.as_deref(),
        change.weekly_digest_enabled,
        &defaults(),
    )
    .await?;
    let view = |p: &Preferences| {
        serde_json::json!({
            "timezone": p.timezone,
            "preferred_locale": p.preferred_locale,
            "weekly_digest_enabled": p.weekly_digest_enabled,
        })
    };
    super::audit::change(
        &mut *tx,
        org,
        Some(user),
        "user.preferences",
        &user.to_string(),
        Some(view(&before)),
        Some(view(&after)),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_follow_the_schema_pattern() {
        for ok in ["pt", "pt-BR", "en-US", "es"] {
            assert!(is_locale(ok), "{ok}");
        }
        for bad in [
            "", "PT", "pt-br", "pt_BR", "pt-BRA", "ptb", "p-BR", "pt-B1", "pt-BR\0",
        ] {
            assert!(!is_locale(bad), "{bad:?}");
        }
    }

    #[test]
    fn timezone_text_is_checked_before_the_database() {
        assert!(plausible_timezone("America/Sao_Paulo"));
        assert!(plausible_timezone("Etc/GMT+3"));
        assert!(plausible_timezone("UTC"));
        for bad in [
            "",
            "America/Sao Paulo",
            "posix/America/Sao_Paulo",
            "right/UTC",
            "posixrules",
            "../../etc/passwd",
            "Europe/Lisboa\0",
            &"A".repeat(65),
        ] {
            assert!(!plausible_timezone(bad), "{bad:?} should be refused");
        }
    }
}
