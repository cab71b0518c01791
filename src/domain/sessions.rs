//! Sessions (#14 item 8): a caller organization's usage events grouped by the session id the
//! client sent in `x-tokia-session-id`. A session's `duration_ms` is its last request's end
//! minus its first request's start (an event's `created_at` is the request's end; its start is
//! `created_at − latency_ms`).

use sqlx::PgPool;
use uuid::Uuid;

use super::error::DomainError;
use super::usage::Days;
pub use crate::store::sessions::{SessionEventRow as SessionEvent, SessionRow as Session};

/// Longest session id (`x-tokia-session-id`): 80 printable ASCII characters (0x21–0x7E).
pub const MAX_ID_LEN: usize = 80;
/// Most sessions a list answers (`limit`, default 100).
pub const MAX_LIMIT: i64 = 500;
/// Sessions listed without a `limit`.
pub const DEFAULT_LIMIT: i64 = 100;
/// Largest window of the list, days (default 30).
pub const MAX_DAYS: i32 = 90;

/// Whether `id` is a session id: 1 to [`MAX_ID_LEN`] printable ASCII characters.
pub fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A list's `limit`: 1 to [`MAX_LIMIT`].
pub fn limit(n: i64) -> Result<i64, DomainError> {
    if (1..=MAX_LIMIT).contains(&n) {
        Ok(n)
    } else {
        Err(DomainError::invalid(
            "limit",
            format!("between 1 and {MAX_LIMIT}"),
        ))
    }
}

impl Session {
    /// Last end − first start, ms.
    pub fn duration_ms(&self) -> i64 {
        let d = self.last_request_at - self.first_start;
        i64::try_from(d.whole_milliseconds())
            .unwrap_or(i64::MAX)
            .max(0)
    }
}

/// The sessions of `org` with events in the window, newest first.
pub async fn list(
    pool: &PgPool,
    org: Uuid,
    days: Days,
    limit: i64,
) -> Result<Vec<Session>, DomainError> {
    Ok(crate::store::sessions::list(pool, org, days.get(), limit).await?)
}

/// One session of `org` and its events, oldest first; `None` when `org` has no such session.
pub async fn get(
    pool: &PgPool,
    org: Uuid,
    id: &str,
) -> Result<Option<(Session, Vec<SessionEvent>)>, DomainError> {
    if !valid_id(id) {
        return Err(DomainError::invalid(
            "id",
            "1 to 80 printable ASCII characters",
        ));
    }
    let Some(s) = crate::store::sessions::totals(pool, org, id).await? else {
        return Ok(None);
    };
    let events = crate::store::sessions::events(pool, org, id).await?;
    Ok(Some((s, events)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_short_printable_ascii() {
        assert!(valid_id("a") && valid_id(&"x".repeat(80)) && valid_id("sess-1_~!"));
        assert!(!valid_id("") && !valid_id(&"x".repeat(81)));
        assert!(!valid_id("a b") && !valid_id("olá") && !valid_id("a\tb"));
    }

    #[test]
    fn limits_are_refused_not_clamped() {
        assert_eq!(limit(1).unwrap(), 1);
        assert_eq!(limit(500).unwrap(), 500);
        assert!(limit(0).is_err() && limit(501).is_err());
    }
}
