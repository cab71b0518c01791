//! API keys: one way to mint them (prefix and length per contract), and the customer-facing
//! key list, creation and revocation. Keys are stored as SHA-256; the plaintext exists once, in
//! the answer to its creation.

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::accounts::AuthUser;
use super::error::{DomainError, Entity};
use super::money::Micros;
use crate::store::keys as db;

/// How a contract's keys look: `prefix` + hex of `bytes` random bytes; lists show the first
/// `shown` characters.
#[derive(Debug, Clone, Copy)]
pub struct KeyFormat {
    /// Literal start, e.g. `maxai-`, `sk-`.
    pub prefix: &'static str,
    /// Random bytes (hex-encoded, so twice as many characters).
    pub bytes: usize,
    /// Characters of the plaintext kept for display.
    pub shown: usize,
}

impl KeyFormat {
    /// MaxAI: `maxai-` + 40 hex characters; 12 shown.
    pub const MAXAI: KeyFormat = KeyFormat {
        prefix: "maxai-",
        bytes: 20,
        shown: 12,
    };
    /// SabIA: `sk-` + 32 hex characters; 7 shown.
    pub const SABIA: KeyFormat = KeyFormat {
        prefix: "sk-",
        bytes: 16,
        shown: 7,
    };

    /// A new key from the OS generator.
    pub fn mint(self) -> Minted {
        mint(self.prefix, self.bytes, self.shown)
    }
}

/// `prefix` + hex of `bytes` random bytes from the OS generator; the first `shown` characters
/// kept for display.
pub fn mint(prefix: &str, bytes: usize, shown: usize) -> Minted {
    let mut b = vec![0u8; bytes];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    let plaintext = format!("{prefix}{}", hex::encode(b));
    Minted {
        hash: Sha256::digest(plaintext.as_bytes()).to_vec(),
        shown: plaintext[..shown.min(plaintext.len())].to_string(),
        plaintext,
    }
}

/// A freshly minted key.
pub struct Minted {
    /// The key, shown once.
    pub plaintext: String,
    /// SHA-256 of it, as stored.
    pub hash: Vec<u8>,
    /// Display prefix, as stored.
    pub shown: String,
}

/// A request-count limit as the contracts take it: 0 means none; stored as NULL.
pub fn limit(v: Option<i64>, field: &'static str) -> Result<Option<i32>, DomainError> {
    match v {
        None | Some(0) => Ok(None),
        Some(n) if n < 0 || n > i64::from(i32::MAX) => Err(DomainError::invalid(
            field,
            format!("must be between 0 and {}", i32::MAX),
        )),
        Some(n) => Ok(Some(n as i32)),
    }
}

/// A new customer key.
#[derive(Debug)]
pub struct NewKey {
    /// Name, 1 to 200 characters after trimming.
    pub name: String,
    /// Requests per minute (none when `None`).
    pub rpm: Option<i32>,
    /// Requests per day.
    pub rpd: Option<i32>,
    /// Spend cap, micro-USD.
    pub budget: Option<Micros>,
}

/// A key as its organization sees it (never the plaintext).
#[derive(Debug)]
pub struct KeyView {
    /// Per-organization serial id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Display prefix.
    pub prefix: String,
    /// `active`, `inactive` or `revoked`.
    pub status: String,
    /// Requests per minute.
    pub rpm: Option<i32>,
    /// Requests per day.
    pub rpd: Option<i32>,
    /// Requests so far.
    pub total_requests: i64,
    /// Tokens so far.
    pub total_tokens: i64,
    /// Spend so far.
    pub total_cost: Micros,
    /// Spend cap.
    pub budget: Option<Micros>,
    /// Created.
    pub created_at: time::OffsetDateTime,
}

impl From<db::KeyRow> for KeyView {
    fn from(r: db::KeyRow) -> Self {
        KeyView {
            id: r.serial_id,
            name: r.name,
            prefix: r.prefix,
            status: r.status,
            rpm: r.rate_limit_rpm,
            rpd: r.rate_limit_rpd,
            total_requests: r.total_requests,
            total_tokens: r.total_tokens,
            total_cost: Micros(r.total_cost_usd_micros),
            budget: r.budget_usd_micros.map(Micros),
            created_at: r.created_at,
        }
    }
}

/// Create a key for the caller's organization, audited; returns it and its plaintext.
pub async fn create(
    pool: &PgPool,
    who: &AuthUser,
    format: KeyFormat,
    k: NewKey,
) -> Result<(KeyView, String), DomainError> {
    let name = k.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(DomainError::invalid("name", "1 to 200 characters"));
    }
    let minted = format.mint();
    let mut tx = pool.begin().await?;
    let row = db::insert(
        &mut *tx,
        &db::NewKeyRow {
            organization_id: who.organization_id,
            created_by: who.user_id,
            key_hash: &minted.hash,
            prefix: &minted.shown,
            name,
            rpm: k.rpm,
            rpd: k.rpd,
            budget_usd_micros: k.budget.map(|b| b.0),
        },
    )
    .await?;
    crate::store::audit::insert(
        &mut *tx,
        who.organization_id,
        Some(who.user_id),
        "api_key.create",
        Some(&row.serial_id.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok((row.into(), minted.plaintext))
}

/// The organization's keys that are not revoked, newest first.
pub async fn list(pool: &PgPool, org: Uuid) -> Result<Vec<KeyView>, DomainError> {
    Ok(db::live_of_org(pool, org)
        .await?
        .into_iter()
        .map(KeyView::from)
        .collect())
}

/// Revoke one of the organization's keys (audited); not found when absent or revoked already.
pub async fn revoke(pool: &PgPool, who: &AuthUser, serial: i64) -> Result<(), DomainError> {
    let mut tx = pool.begin().await?;
    if !db::revoke(&mut *tx, who.organization_id, serial).await? {
        return Err(DomainError::NotFound(Entity::Key));
    }
    crate::store::audit::insert(
        &mut *tx,
        who.organization_id,
        Some(who.user_id),
        "api_key.revoke",
        Some(&serial.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_follow_their_format_and_hash() {
        let a = KeyFormat::MAXAI.mint();
        assert!(a.plaintext.starts_with("maxai-") && a.plaintext.len() == 6 + 40);
        assert_eq!(a.shown, a.plaintext[..12]);
        assert_eq!(a.hash, Sha256::digest(a.plaintext.as_bytes()).to_vec());
        let b = KeyFormat::SABIA.mint();
        assert!(b.plaintext.starts_with("sk-") && b.plaintext.len() == 3 + 32);
        assert_eq!(b.shown.len(), 7);
        assert_ne!(KeyFormat::MAXAI.mint().plaintext, a.plaintext);
    }

    #[test]
    fn operator_prefixes_and_the_literal_of_a_stored_prefix() {
        assert!(valid_literal("sk-tokia-") && valid_literal("bx_live_") && valid_literal("maxai-"));
        assert!(
            !valid_literal("sk")
                && !valid_literal("SK-")
                && !valid_literal("")
                && !valid_literal("a-very-long-prefix-")
        );
        assert_eq!(literal_of("sk-tokia-ab12"), "sk-tokia-");
        assert_eq!(literal_of("bx_live_9f3a"), "bx_live_");
        assert_eq!(literal_of("maxai-0a1b2c"), "maxai-");
        let m = mint("sk-tokia-", OPERATOR_KEY_BYTES, 13);
        assert!(m.plaintext.starts_with("sk-tokia-") && m.plaintext.len() == 9 + 48);
        assert_eq!(m.shown, m.plaintext[..13]);
    }

    #[test]
    fn limits_zero_is_none_and_out_of_range_is_invalid() {
        assert_eq!(limit(Some(0), "rpm").unwrap(), None);
        assert_eq!(limit(Some(60), "rpm").unwrap(), Some(60));
        assert!(limit(Some(-1), "rpm").is_err());
        assert!(limit(Some(i64::from(i32::MAX) + 1), "rpm").is_err());
    }
}

pub use crate::store::keys::OperatorKeyRow as OperatorKey;

/// Random bytes of an operator-made key (and of any rotated key).
pub const OPERATOR_KEY_BYTES: usize = 24;

/// A key the operator creates for an organization.
#[derive(Debug, Default)]
pub struct NewOperatorKey {
    /// Owner.
    pub organization_id: Option<Uuid>,
    /// User it belongs to.
    pub user_id: Option<Uuid>,
    /// Literal start, e.g. `sk-tokia-`, `maxai-`, `bx_live_` (default `sk-`): 1 to 16 lowercase
    /// letters, digits, `-` or `_`, ending in `-` or `_`.
    pub prefix: Option<String>,
    /// Name (default `key`).
    pub name: Option<String>,
    /// Requests per second, minute, day; tokens per minute; requests at once.
    pub rps: Option<i64>,
    /// Requests per minute.
    pub rpm: Option<i64>,
    /// Requests per day.
    pub rpd: Option<i64>,
    /// Tokens per minute.
    pub tpm: Option<i64>,
    /// Requests at once.
    pub concurrency: Option<i64>,
    /// Spend cap.
    pub budget: Option<Micros>,
    /// Models it may use (empty = every model).
    pub models: Vec<String>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Expiry.
    pub expires_at: Option<time::OffsetDateTime>,
    /// bradax's student tier (config `bradax:`; `None`: its defaults): a key of a student
    /// project gets at most its rpm.
    pub bradax: Option<super::bradax::Policy>,
}

fn valid_literal(p: &str) -> bool {
    (1..=16).contains(&p.len())
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && (p.ends_with('-') || p.ends_with('_'))
}

/// The literal part of a stored display prefix: up to its last `-` or `_`.
fn literal_of(display: &str) -> &str {
    display.rfind(['-', '_']).map_or("sk-", |i| &display[..=i])
}

fn positive(v: Option<i64>, field: &'static str) -> Result<Option<i32>, DomainError> {
    match v {
        None => Ok(None),
        Some(n) if n >= 1 && n <= i64::from(i32::MAX) => Ok(Some(n as i32)),
        Some(_) => Err(DomainError::invalid(
            field,
            format!("between 1 and {}", i32::MAX),
        )),
    }
}

/// Mint and store a key for an organization; the row and the plaintext (shown once).
pub async fn create_for_operator(
    pool: &PgPool,
    k: NewOperatorKey,
) -> Result<(OperatorKey, String), DomainError> {
    let org = k
        .organization_id
        .ok_or_else(|| DomainError::invalid("organization_id", "required"))?;
    let literal = k.prefix.unwrap_or_else(|| "sk-".into());
    if !valid_literal(&literal) {
        return Err(DomainError::invalid(
            "prefix",
            "1 to 16 lowercase letters, digits, '-' or '_', ending in '-' or '_'",
        ));
    }
    let name = k.name.unwrap_or_else(|| "key".into());
    if name.trim().is_empty() || name.len() > 200 {
        return Err(DomainError::invalid("name", "1 to 200 characters"));
    }
    for (field, list) in [("models", &k.models), ("scopes", &k.scopes)] {
        if list.len() > 100 || list.iter().any(|m| m.is_empty() || m.len() > 200) {
            return Err(DomainError::invalid(
                field,
                "at most 100 entries of 1 to 200 characters",
            ));
        }
    }
    if k.budget.is_some_and(|b| b.0 < 0) {
        return Err(DomainError::invalid("budget_usd", "must not be negative"));
    }
    let (rps, mut rpm, rpd, tpm, concurrency) = (
        positive(k.rps, "rps")?,
        positive(k.rpm, "rpm")?,
        positive(k.rpd, "rpd")?,
        positive(k.tpm, "tpm")?,
        positive(k.concurrency, "concurrency")?,
    );
    let minted = mint(&literal, OPERATOR_KEY_BYTES, literal.len() + 4);
    let mut tx = pool.begin().await?;
    let Some(owner) = crate::store::orgs::get_org(&mut *tx, org).await? else {
        return Err(DomainError::NotFound(Entity::Organization));
    };
    if owner.kind == "project" {
        // a bradax project's key: bradax's scopes only; a student's rpm capped
        super::bradax::Scopes::check_key_scopes(&k.scopes)?;
        let tier = owner
            .tier
            .as_deref()
            .and_then(super::bradax::Tier::parse)
            .unwrap_or(super::bradax::Tier::Full);
        let policy = k.bradax.unwrap_or_default();
        rpm = policy
            .key_rpm(tier, rpm.map(i64::from))
            .map(|r| r.clamp(1, i64::from(i32::MAX)) as i32);
    }
    let row = db::insert_operator(
        &mut *tx,
        &db::OperatorKey {
            organization_id: org,
            user_id: k.user_id,
            key_hash: &minted.hash,
            prefix: &minted.shown,
            name: name.trim(),
            rps,
            rpm,
            rpd,
            tpm,
            concurrency,
            budget_usd_micros: k.budget.map(|b| b.0),
            models: &k.models,
            scopes: &k.scopes,
            expires_at: k.expires_at,
        },
    )
    .await?;
    crate::store::audit::insert(
        &mut *tx,
        org,
        None,
        "api_key.create",
        Some(&row.api_key_id.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok((row, minted.plaintext))
}

/// Revoke a key (any organization's); not found when absent or revoked already.
pub async fn revoke_any(pool: &PgPool, id: Uuid) -> Result<OperatorKey, DomainError> {
    let mut tx = pool.begin().await?;
    let row = db::revoke_by_id(&mut *tx, id)
        .await?
        .ok_or(DomainError::NotFound(Entity::Key))?;
    crate::store::audit::insert(
        &mut *tx,
        row.organization_id,
        None,
        "api_key.revoke",
        Some(&id.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Give a key a new secret with the same prefix: the new plaintext is shown once, and the old
/// one is refused everywhere as soon as the gateways hear of the change (milliseconds).
pub async fn rotate(pool: &PgPool, id: Uuid) -> Result<(OperatorKey, String), DomainError> {
    let mut tx = pool.begin().await?;
    let display = db::prefix_of(&mut *tx, id)
        .await?
        .ok_or(DomainError::NotFound(Entity::Key))?;
    let literal = literal_of(&display);
    let minted = mint(literal, OPERATOR_KEY_BYTES, literal.len() + 4);
    let row = db::rehash(&mut *tx, id, &minted.hash, &minted.shown)
        .await?
        .ok_or(DomainError::NotFound(Entity::Key))?;
    crate::store::audit::insert(
        &mut *tx,
        row.organization_id,
        None,
        "api_key.rotate",
        Some(&id.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok((row, minted.plaintext))
}

/// An organization's keys (never their plaintext), newest first.
pub async fn of_org(pool: &PgPool, org: Uuid) -> Result<Vec<OperatorKey>, DomainError> {
    if crate::store::orgs::get_org(pool, org).await?.is_none() {
        return Err(DomainError::NotFound(Entity::Organization));
    }
    Ok(db::of_org(pool, org).await?)
}

pub use db::TeamKeyRow as TeamKey;

/// Longest key description.
pub const MAX_DESCRIPTION: usize = 2000;

/// A team's keys (deleted ones hidden), oldest first.
pub async fn of_team(pool: &PgPool, org: Uuid) -> Result<Vec<TeamKey>, DomainError> {
    Ok(db::of_team(pool, org).await?)
}

fn check_description(d: Option<&str>) -> Result<(), DomainError> {
    if d.is_some_and(|d| d.len() > MAX_DESCRIPTION) {
        return Err(DomainError::invalid(
            "description",
            "at most 2000 characters",
        ));
    }
    Ok(())
}

/// Create a key of `format` for team `org` (the caller's rights checked by the caller),
/// audited; the key and its plaintext.
pub async fn create_team_key(
    pool: &PgPool,
    who: &AuthUser,
    org: Uuid,
    format: KeyFormat,
    name: &str,
    description: Option<&str>,
) -> Result<(TeamKey, String), DomainError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(DomainError::invalid("name", "1 to 200 characters"));
    }
    check_description(description)?;
    let minted = format.mint();
    let mut tx = pool.begin().await?;
    let row = db::insert_team_key(
        &mut *tx,
        &db::NewTeamKey {
            organization_id: org,
            created_by: who.user_id,
            key_hash: &minted.hash,
            prefix: &minted.shown,
            name,
            description,
        },
    )
    .await?;
    crate::store::audit::insert(
        &mut *tx,
        org,
        Some(who.user_id),
        "api_key.create",
        Some(&row.serial_id.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok((row, minted.plaintext))
}

/// Rename or describe a team key (`None` keeps a field), audited.
pub async fn update_team_key(
    pool: &PgPool,
    who: &AuthUser,
    org: Uuid,
    serial: i64,
    name: Option<&str>,
    description: Option<&str>,
) -> Result<TeamKey, DomainError> {
    let name = name.map(str::trim);
    if name.is_some_and(|n| n.is_empty() || n.len() > 200) {
        return Err(DomainError::invalid("name", "1 to 200 characters"));
    }
    check_description(description)?;
    let mut tx = pool.begin().await?;
    let old = db::lock_team_key(&mut *tx, org, serial)
        .await?
        .ok_or(DomainError::NotFound(Entity::Key))?;
    let row = db::update_team_key(&mut *tx, org, serial, name, description)
        .await?
        .ok_or(DomainError::NotFound(Entity::Key))?;
    super::audit::change(
        &mut *tx,
        org,
        Some(who.user_id),
        "api_key.update",
        &serial.to_string(),
        Some(serde_json::json!({"name": old.name, "description": old.description})),
        Some(serde_json::json!({"name": row.name, "description": row.description})),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// A key's status as a team sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Accepted by the gateway.
    Active,
    /// Refused until activated again.
    Disabled,
    /// Refused; may still be activated again (SabIA's route goes both ways).
    Revoked,
}

impl KeyStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Disabled => "disabled",
            KeyStatus::Revoked => "revoked",
        }
    }
}

/// Set a team key's status in one statement (no window between reading and writing it),
/// audited; when it changed.
pub async fn set_team_key_status(
    pool: &PgPool,
    who: &AuthUser,
    org: Uuid,
    serial: i64,
    status: KeyStatus,
) -> Result<time::OffsetDateTime, DomainError> {
    let mut tx = pool.begin().await?;
    let change = db::set_status(&mut *tx, org, serial, status.as_str())
        .await?
        .ok_or(DomainError::NotFound(Entity::Key))?;
    super::audit::change(
        &mut *tx,
        org,
        Some(who.user_id),
        "api_key.status",
        &serial.to_string(),
        Some(serde_json::json!({"status": change.before})),
        Some(serde_json::json!({"status": status.as_str()})),
    )
    .await?;
    tx.commit().await?;
    Ok(change.updated_at)
}

/// Delete a team key: a revoked tombstone, hidden from every list and refused everywhere,
/// while its usage keeps showing which key it was. Audited.
pub async fn delete_team_key(
    pool: &PgPool,
    who: &AuthUser,
    org: Uuid,
    serial: i64,
) -> Result<(), DomainError> {
    let mut tx = pool.begin().await?;
    if !db::tombstone(&mut *tx, org, serial).await? {
        return Err(DomainError::NotFound(Entity::Key));
    }
    crate::store::audit::insert(
        &mut *tx,
        org,
        Some(who.user_id),
        "api_key.delete",
        Some(&serial.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// How many of `org`'s keys are active.
pub async fn active_count(pool: &PgPool, org: Uuid) -> Result<i64, DomainError> {
    Ok(db::active_count(pool, org).await?)
}

/// Who a customer's API key speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    /// The key.
    pub api_key_id: Uuid,
    /// Its organization: every read of the request is scoped to it.
    pub organization_id: Uuid,
    /// The user it was made for or by (`None` for keys the operator minted without one).
    pub user_id: Option<Uuid>,
}

/// The owner of a live API key given in plaintext. Unknown, revoked, disabled, expired and
/// deleted keys, and keys of a disabled organization, are all the same
/// [`Unauthorized::BadToken`](super::Unauthorized::BadToken) (nothing tells them apart).
pub async fn resolve(pool: &PgPool, plaintext: &str) -> Result<KeyOwner, DomainError> {
    let refused = DomainError::Unauthorized(super::Unauthorized::BadToken);
    if plaintext.is_empty() || plaintext.len() > 200 {
        return Err(refused);
    }
    let hash = Sha256::digest(plaintext.as_bytes());
    let Some(k) = db::owner_by_hash(pool, &hash).await? else {
        return Err(refused);
    };
    let expired = k
        .expires_at
        .is_some_and(|t| t <= time::OffsetDateTime::now_utc());
    if k.status != "active" || k.deleted_at.is_some() || k.org_disabled || expired {
        return Err(refused);
    }
    Ok(KeyOwner {
        api_key_id: k.api_key_id,
        organization_id: k.organization_id,
        user_id: k.created_by,
    })
}

pub use db::KeyUsageRow as KeyUsage;

/// `org`'s keys with their usage over `days` (revoked keys kept), most billed first; only
/// `key` when given, and then [`Entity::Key`] not found unless it is one of `org`'s.
pub async fn usage_by_key(
    pool: &PgPool,
    org: Uuid,
    days: super::usage::Days,
    key: Option<Uuid>,
) -> Result<Vec<KeyUsage>, DomainError> {
    if let Some(k) = key
        && !db::exists_in_org(pool, org, k).await?
    {
        return Err(DomainError::NotFound(Entity::Key));
    }
    Ok(db::usage_by_key(pool, org, days.get(), key).await?)
}

/// Which keys a bulk revocation names.
#[derive(Debug)]
pub enum BulkTarget {
    /// Every key of the organization.
    All,
    /// These ids (1 to [`MAX_BULK_REVOKE`]); ids not of the organization are ignored.
    Ids(Vec<Uuid>),
}

/// Most ids one bulk revocation names.
pub const MAX_BULK_REVOKE: usize = 100;

/// What a bulk revocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRevoked {
    /// Keys revoked now.
    pub revoked: Vec<Uuid>,
    /// Keys named (or, for all, of the organization) that were not active already.
    pub already_inactive: i64,
}

/// Revoke `org`'s active keys named by `target` in one transaction, audited
/// (`api_key.bulk_revoke`, the revoked ids). Other organizations' keys are never touched nor
/// counted. The gateway nodes hear of each revoked key by the `catraca_api_key` NOTIFY the key
/// trigger sends in this same transaction, delivered at commit (milliseconds). The caller's
/// rights are checked by the caller.
pub async fn bulk_revoke(
    pool: &PgPool,
    org: Uuid,
    user: Option<Uuid>,
    target: BulkTarget,
) -> Result<BulkRevoked, DomainError> {
    let (all, ids) = match target {
        BulkTarget::All => (true, Vec::new()),
        BulkTarget::Ids(ids) => {
            if ids.is_empty() || ids.len() > MAX_BULK_REVOKE {
                return Err(DomainError::invalid("ids", "between 1 and 100"));
            }
            (false, ids)
        }
    };
    let mut tx = pool.begin().await?;
    let row = db::bulk_revoke(&mut *tx, org, all, &ids).await?;
    super::audit::change(
        &mut *tx,
        org,
        user,
        "api_key.bulk_revoke",
        if all { "all" } else { "ids" },
        None,
        Some(serde_json::json!({
            "revoked": row.revoked,
            "already_inactive": row.already_inactive,
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(BulkRevoked {
        revoked: row.revoked,
        already_inactive: row.already_inactive,
    })
}
