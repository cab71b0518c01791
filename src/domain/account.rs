//! The key's user as a person (Tokia's account routes, issue 14 item 5): their profile, mail,
//! teams and the LGPD export of their own data. A request acts as [`Me`]: the user an API
//! key was made for, in the key's organization; a key made without a user has no `Me`.
//!
//! Rules: a profile is the user's own fields and their membership in the key's organization
//! (owners count as admins), never a hash. Notifications are the mails to the user's address
//! that were sent or given up (queued ones are not notifications yet). A new team is a
//! prepaid organization (its own wallet, at zero) with the caller as its owner. The LGPD
//! export holds the caller's own data only (no hash, no secret, no mail body, nothing of
//! another user), is audited (`account.export`) and capped at [`EXPORTS_PER_HOUR`] per user
//! per rolling hour, counted under a per-user lock so racing requests cannot pass the cap.

use sqlx::PgPool;
use uuid::Uuid;

use super::error::{DomainError, Entity};
use super::keys::KeyOwner;
use super::ledger::{self, Wallet};
use super::preferences::{self, Preferences};
use super::roles::Role;
use crate::store::account as db;

pub use super::orgs::Team;
pub use db::{NotificationRow as Notification, ProfileRow};

/// LGPD exports a user may take per rolling hour; the next one is throttled.
pub const EXPORTS_PER_HOUR: i64 = 5;
/// The export's window, in seconds.
pub const EXPORT_WINDOW_SECS: i64 = 3_600;
/// The export's format version.
pub const EXPORT_VERSION: i32 = 1;
/// Newest mails an export holds.
pub const EXPORT_NOTIFICATIONS: i64 = 10_000;
/// `limit` of the notification list: default and bounds.
pub const NOTIFICATIONS_LIMIT: (i64, i64, i64) = (50, 1, 200);
/// Longest team name, in characters.
pub const MAX_TEAM_NAME: usize = 200;

/// Who a request is about: the key's user, in the key's organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Me {
    /// The user.
    pub user: Uuid,
    /// The key's organization (audit rows, the balance and referral credits are its).
    pub org: Uuid,
}

impl Me {
    /// The user of `key`, if it was made for one.
    pub fn of(key: &KeyOwner) -> Option<Me> {
        key.user_id.map(|user| Me {
            user,
            org: key.organization_id,
        })
    }
}

/// A user's profile as the key's organization sees it.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Their fields and membership.
    pub user: ProfileRow,
    /// Their preferences (the defaults if never set).
    pub preferences: Preferences,
}

impl Profile {
    /// Owners and admins of the key's organization (owners count as admins).
    pub fn is_admin(&self) -> bool {
        self.user
            .role
            .as_deref()
            .and_then(|r| Role::parse(r).ok())
            .is_some_and(|r| matches!(r, Role::Owner | Role::Admin))
    }
}

/// `me`'s profile.
pub async fn profile(pool: &PgPool, me: Me) -> Result<Profile, DomainError> {
    let user = db::profile(pool, me.user, me.org)
        .await?
        .ok_or(DomainError::NotFound(Entity::User))?;
    Ok(Profile {
        user,
        preferences: preferences::get(pool, me.user).await?,
    })
}

/// A notification list's `limit`, refused (never clamped) outside 1–200.
pub fn notifications_limit(n: i64) -> Result<i64, DomainError> {
    let (_, min, max) = NOTIFICATIONS_LIMIT;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(DomainError::invalid(
            "limit",
            format!("between {min} and {max}"),
        ))
    }
}

/// How many mails of `user` were sent or given up, and the newest `limit` of them.
pub async fn notifications(
    pool: &PgPool,
    user: Uuid,
    limit: i64,
) -> Result<(i64, Vec<Notification>), DomainError> {
    let limit = notifications_limit(limit)?;
    let mut tx = pool.begin().await?;
    db::read_only_snapshot(&mut tx).await?;
    let total = db::notification_count(&mut *tx, user).await?;
    let list = db::notifications(&mut *tx, user, limit).await?;
    tx.commit().await?;
    Ok((total, list))
}

/// The organizations `user` belongs to, with their role, oldest first.
pub async fn teams(pool: &PgPool, user: Uuid) -> Result<Vec<Team>, DomainError> {
    super::orgs::teams_of(pool, user).await
}

/// A team just made.
#[derive(Debug, Clone)]
pub struct NewTeam {
    /// Id.
    pub organization_id: Uuid,
    /// Name, as stored (trimmed).
    pub name: String,
    /// Created.
    pub created_at: time::OffsetDateTime,
    /// Its wallet (all zeros).
    pub wallet: Wallet,
}

/// Check a team name: trimmed, 1 to 200 characters, no control character.
pub fn team_name(raw: &str) -> Result<String, DomainError> {
    let name = raw.trim();
    let n = name.chars().count();
    if n == 0 || n > MAX_TEAM_NAME || name.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "name",
            "1 to 200 characters, no control characters",
        ));
    }
    Ok(name.to_string())
}

/// A new prepaid team named `name` with `me` as its owner, audited in the new team.
pub async fn create_team(pool: &PgPool, me: Me, name: &str) -> Result<NewTeam, DomainError> {
    let name = team_name(name)?;
    let mut tx = pool.begin().await?;
    let t = db::insert_prepaid_team(&mut *tx, &name).await?;
    crate::store::orgs::add_membership(&mut *tx, t.organization_id, me.user, Role::Owner.as_str())
        .await?;
    super::audit::change(
        &mut *tx,
        t.organization_id,
        Some(me.user),
        "team.create",
        &t.organization_id.to_string(),
        None,
        Some(serde_json::json!({"name": name, "owner": me.user, "prepaid": true})),
    )
    .await?;
    tx.commit().await?;
    Ok(NewTeam {
        organization_id: t.organization_id,
        name,
        created_at: t.created_at,
        wallet: ledger::wallet(pool, t.organization_id).await?,
    })
}

/// Everything an LGPD export holds.
#[derive(Debug)]
pub struct Export {
    /// When it was made.
    pub generated_at: time::OffsetDateTime,
    /// The profile (with the preferences).
    pub profile: Profile,
    /// The key's organization's wallet.
    pub balance: Wallet,
    /// The user's memberships.
    pub teams: Vec<Team>,
    /// The user's sent and failed mails, newest first (at most [`EXPORT_NOTIFICATIONS`]).
    pub notifications: Vec<Notification>,
    /// Their referral code, if one was made.
    pub referral_code: Option<String>,
    /// How many users they invited.
    pub invited_count: i64,
    /// Whether someone invited them.
    pub referred: bool,
}

/// `me`'s LGPD export: refused with [`DomainError::Throttled`] (nothing written) when the
/// user already took [`EXPORTS_PER_HOUR`] in the last hour; else gathered and audited.
///
/// The count is checked once before gathering (a throttled caller costs one small read) and
/// again, under the user's lock, in the transaction that writes the audit row: racing
/// requests are counted one after the other. Nothing is gathered while the lock is held, so
/// a waiting request holds one connection only.
pub async fn export(pool: &PgPool, me: Me) -> Result<Export, DomainError> {
    check_exports(db::exports_within(pool, me.user, EXPORT_WINDOW_SECS).await?)?;
    let profile = profile(pool, me).await?;
    let balance = ledger::wallet(pool, me.org).await?;
    let teams = teams(pool, me.user).await?;
    let notifications = db::notifications(pool, me.user, EXPORT_NOTIFICATIONS).await?;
    let referral_code = super::referrals::existing_code(pool, me.user).await?;
    let totals = db::referral_totals(pool, me.user, me.org).await?;
    let referred = db::was_referred(pool, me.user).await?;
    let mut tx = pool.begin().await?;
    db::lock_exports(&mut tx, me.user).await?;
    check_exports(db::exports_within(&mut *tx, me.user, EXPORT_WINDOW_SECS).await?)?;
    super::audit::change(
        &mut *tx,
        me.org,
        Some(me.user),
        "account.export",
        &me.user.to_string(),
        None,
        Some(serde_json::json!({"export_version": EXPORT_VERSION})),
    )
    .await?;
    tx.commit().await?;
    Ok(Export {
        generated_at: time::OffsetDateTime::now_utc(),
        profile,
        balance,
        teams,
        notifications,
        referral_code,
        invited_count: totals.invited,
        referred,
    })
}

/// Throttled when the window is full, with the seconds until its oldest export leaves it.
fn check_exports(w: db::ExportWindowRow) -> Result<(), DomainError> {
    if w.count >= EXPORTS_PER_HOUR {
        return Err(DomainError::Throttled {
            retry_after_secs: w.oldest_leaves_in_secs.max(1) as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_names_are_refused_not_clamped() {
        assert_eq!(notifications_limit(1).unwrap(), 1);
        assert_eq!(notifications_limit(200).unwrap(), 200);
        assert!(notifications_limit(0).is_err() && notifications_limit(201).is_err());
        assert_eq!(team_name("  Equipe Ágil ").unwrap(), "Equipe Ágil");
        assert!(team_name("   ").is_err());
        assert!(team_name("a\u{7}b").is_err());
        assert!(team_name(&"é".repeat(200)).is_ok());
        assert!(team_name(&"é".repeat(201)).is_err());
    }
}
