//! The secrets vault (issue 15 item 5, PyTake's `secrets/`): an organization's credentials
//! (provider keys, WhatsApp tokens, ...) under envelope encryption.
//!
//! - Each secret has its own random 256-bit data key. The value is sealed with it
//!   (AES-256-GCM, random nonce); the data key is sealed by the current master key
//!   ([`SecretBox`], `CATRACA_SECRET_KEYS`) and its version is stored. Both seals bind the AAD
//!   `catraca-vault/v1 || organization id || secret id`, so a blob copied to another row or
//!   organization does not open.
//! - [`Secret`] never carries the value; [`reveal`] returns it and writes an audit row first
//!   (the route restricts it to org_admin and up; roles are the surface's). [`SecretValue`]'s
//!   `Debug` is redacted, and nothing here logs a value.
//! - [`rotate`] re-seals under a fresh data key (same value, or a new one) and the newest master
//!   key, and sets `last_rotated_at`; an `update` with a value is a rotation too.
//!   [`rewrap_older`] re-seals only the data keys still under an older master key.
//! - Inactive secrets are never used: [`use_value`] and [`test`] refuse them.
//!   [`record_use`] counts each use by the platform; [`usage`] / [`usage_by_org`] sum them.
//! - [`test`] checks the services it knows for real (a provider key against
//!   `<base_url>/models` of the running config's provider named like the service, a WhatsApp
//!   token against `<graph>/me`), and says when a service is not checkable.
//!
//! Every input is checked before anything is read; other organizations' ids are not found.

use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::error::{Conflict, DomainError, Entity};
use crate::secrets::SecretBox;
use crate::store::vault as db;

/// Name length, in characters.
pub const NAME_MAX: usize = 200;
/// Value length, in bytes.
pub const VALUE_MAX: usize = 16 * 1024;
/// Service length, in characters.
pub const SERVICE_MAX: usize = 100;
/// Description length, in characters.
pub const DESCRIPTION_MAX: usize = 1_000;
/// A use's purpose, in characters.
pub const PURPOSE_MAX: usize = 100;
/// Secrets re-wrapped per [`rewrap_older`] call at most.
pub const REWRAP_BATCH_MAX: i64 = 1_000;

/// Who acts: the organization in scope and the user, if a person.
#[derive(Debug, Clone, Copy)]
pub struct Who {
    /// The organization whose secrets these are.
    pub organization_id: Uuid,
    /// The acting user (recorded in the audit log).
    pub user_id: Option<Uuid>,
}

/// A secret's value. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// The plaintext.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The plaintext, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue([redacted])")
    }
}

/// Where a secret is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// `development`.
    Development,
    /// `staging`.
    Staging,
    /// `production` (the default).
    Production,
}

impl Environment {
    /// From the contract's word.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "development" => Some(Environment::Development),
            "staging" => Some(Environment::Staging),
            "production" => Some(Environment::Production),
            _ => None,
        }
    }

    /// The contract's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Staging => "staging",
            Environment::Production => "production",
        }
    }
}

/// Whether the platform may use a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Used.
    Active,
    /// Never used.
    Inactive,
}

impl Status {
    /// The contract's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Inactive => "inactive",
        }
    }
}

/// A secret's metadata; never its value.
#[derive(Debug, Clone)]
pub struct Secret {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub organization_id: Uuid,
    /// Name (the contract's `key`).
    pub name: String,
    /// Environment.
    pub environment: Environment,
    /// What it is for (`openai`, `whatsapp`, ...).
    pub service: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Active or inactive.
    pub status: Status,
    /// The master key version sealing its data key.
    pub master_version: u32,
    /// Maker.
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
    /// Last rotated (by [`rotate`] or a value change).
    pub last_rotated_at: Option<OffsetDateTime>,
}

impl From<db::SecretRow> for Secret {
    fn from(r: db::SecretRow) -> Self {
        Secret {
            id: r.secret_id,
            organization_id: r.organization_id,
            name: r.name,
            // the table's CHECK allows only the three words
            environment: Environment::parse(&r.environment).unwrap_or(Environment::Production),
            service: r.service,
            description: r.description,
            status: if r.status == "active" {
                Status::Active
            } else {
                Status::Inactive
            },
            master_version: u32::try_from(r.master_version).unwrap_or(0),
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_rotated_at: r.last_rotated_at,
        }
    }
}

/// What a new secret is made of (raw input; checked by [`create`]).
#[derive(Clone)]
pub struct NewSecret {
    /// Name (the contract's `key`).
    pub name: String,
    /// The value.
    pub value: String,
    /// `development`, `staging` or `production`; `None` is production.
    pub environment: Option<String>,
    /// What it is for.
    pub service: Option<String>,
    /// Free text.
    pub description: Option<String>,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret")
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .field("environment", &self.environment)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// A change (the contract's PUT): `None` keeps a field; `Some(None)` clears a nullable one; a
/// `value` is a rotation with that value.
#[derive(Clone, Default)]
pub struct Change {
    /// New name.
    pub name: Option<String>,
    /// New environment.
    pub environment: Option<String>,
    /// New service.
    pub service: Option<Option<String>>,
    /// New description.
    pub description: Option<Option<String>>,
    /// New value.
    pub value: Option<String>,
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Change")
            .field("name", &self.name)
            .field("environment", &self.environment)
            .field("service", &self.service)
            .field("value", &self.value.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// A filter of [`list`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    /// Only this environment.
    pub environment: Option<&'a str>,
    /// Only this service.
    pub service: Option<&'a str>,
}

/// One secret's use statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageStats {
    /// The secret.
    pub secret_id: Uuid,
    /// Uses recorded.
    pub total_requests: u64,
    /// Of which succeeded.
    pub succeeded: u64,
    /// The newest use.
    pub last_used_at: Option<OffsetDateTime>,
}

impl UsageStats {
    /// Succeeded / total, from 0 to 1; `None` when never used.
    pub fn success_rate(&self) -> Option<f64> {
        (self.total_requests > 0).then(|| self.succeeded as f64 / self.total_requests as f64)
    }
}

impl From<db::UsageRow> for UsageStats {
    fn from(r: db::UsageRow) -> Self {
        UsageStats {
            secret_id: r.secret_id,
            total_requests: u64::try_from(r.total).unwrap_or(0),
            succeeded: u64::try_from(r.succeeded).unwrap_or(0),
            last_used_at: r.last_used_at,
        }
    }
}

// ---- checks -------------------------------------------------------------------------------

fn text(
    field: &'static str,
    s: &str,
    max_chars: usize,
    allow_newlines: bool,
) -> Result<(), DomainError> {
    let n = s.chars().count();
    if n == 0 || n > max_chars {
        return Err(DomainError::invalid(
            field,
            format!("1 to {max_chars} characters"),
        ));
    }
    if s.trim().is_empty() {
        return Err(DomainError::invalid(field, "must not be blank"));
    }
    if s.chars()
        .any(|c| c.is_control() && !(allow_newlines && matches!(c, '\n' | '\r' | '\t')))
    {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn check_value(v: &str) -> Result<(), DomainError> {
    if v.is_empty() || v.len() > VALUE_MAX {
        return Err(DomainError::invalid(
            "value",
            format!("1 to {VALUE_MAX} bytes"),
        ));
    }
    if v.contains('\0') {
        return Err(DomainError::invalid("value", "must not contain NUL"));
    }
    Ok(())
}

fn environment(s: &str) -> Result<Environment, DomainError> {
    Environment::parse(s)
        .ok_or_else(|| DomainError::invalid("environment", "development, staging or production"))
}

fn not_found() -> DomainError {
    DomainError::NotFound(Entity::Secret)
}

fn name_taken(e: sqlx::Error) -> DomainError {
    match &e {
        sqlx::Error::Database(d) if d.constraint() == Some(db::NAME_KEY) => {
            Conflict::SecretNameTaken.into()
        }
        _ => e.into(),
    }
}

// ---- envelope -----------------------------------------------------------------------------

/// The AAD both seals of a secret bind: a blob moved to another row does not open.
fn aad(org: Uuid, id: Uuid) -> Vec<u8> {
    let mut a = b"catraca-vault/v1".to_vec();
    a.extend_from_slice(org.as_bytes());
    a.extend_from_slice(id.as_bytes());
    a
}

struct Sealed {
    value: Vec<u8>,
    data_key: Vec<u8>,
    version: i32,
}

/// Seal `value` under a fresh data key, and the data key under the newest master key.
fn seal(keys: &SecretBox, org: Uuid, id: Uuid, value: &[u8]) -> Result<Sealed, DomainError> {
    let aad = aad(org, id);
    let mut dk = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut dk);
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = Aes256Gcm::new_from_slice(&dk)
        .ok()
        .and_then(|c| {
            c.encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value,
                    aad: &aad,
                },
            )
            .ok()
        })
        .ok_or_else(|| DomainError::internal("vault", "sealing a value failed"))?;
    let mut v = nonce.to_vec();
    v.extend_from_slice(&sealed);
    let (version, data_key) = keys
        .seal_bound(&dk, &aad)
        .ok_or_else(|| DomainError::internal("vault", "sealing a data key failed"))?;
    dk.fill(0);
    Ok(Sealed {
        value: v,
        data_key,
        version: i32::try_from(version)
            .map_err(|_| DomainError::internal("vault", "master key version above i32"))?,
    })
}

/// The data key of a sealed row (opened by whichever listed master version sealed it).
fn open_data_key(keys: &SecretBox, row: &db::SealedRow) -> Result<[u8; 32], DomainError> {
    let aad = aad(row.organization_id, row.secret_id);
    let dk = keys.open_bound(&row.data_key_sealed, &aad).ok_or_else(|| {
        DomainError::internal(
            "vault: a data key does not open (its master key version is not listed, or the row was altered or moved)",
            format!("secret {} master version {}", row.secret_id, row.master_version),
        )
    })?;
    <[u8; 32]>::try_from(dk.as_slice())
        .map_err(|_| DomainError::internal("vault", "a data key is not 32 bytes"))
}

/// The value of a sealed row.
fn open(keys: &SecretBox, row: &db::SealedRow) -> Result<SecretValue, DomainError> {
    let mut dk = open_data_key(keys, row)?;
    let aad = aad(row.organization_id, row.secret_id);
    let plain = (row.value_sealed.len() >= 12)
        .then(|| row.value_sealed.split_at(12))
        .and_then(|(nonce, ct)| {
            Aes256Gcm::new_from_slice(&dk)
                .ok()?
                .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
                .ok()
        });
    dk.fill(0);
    let plain = plain.ok_or_else(|| {
        DomainError::internal(
            "vault: a value does not open under its data key (the row was altered or moved)",
            format!("secret {}", row.secret_id),
        )
    })?;
    String::from_utf8(plain)
        .map(SecretValue)
        .map_err(|_| DomainError::internal("vault", "a value is not UTF-8"))
}

fn target(id: Uuid) -> String {
    format!("secret:{id}")
}

fn audit(s: &Secret) -> Value {
    json!({
        "name": s.name,
        "environment": s.environment.as_str(),
        "service": s.service,
        "description": s.description,
        "status": s.status.as_str(),
        "master_version": s.master_version,
    })
}

// ---- operations ---------------------------------------------------------------------------

/// Create a secret (audited as `secret.create`, without its value).
pub async fn create(
    pool: &PgPool,
    keys: &SecretBox,
    who: &Who,
    new: NewSecret,
) -> Result<Secret, DomainError> {
    text("key", &new.name, NAME_MAX, false)?;
    check_value(&new.value)?;
    let env = match new.environment.as_deref() {
        Some(e) => environment(e)?,
        None => Environment::Production,
    };
    if let Some(s) = &new.service {
        text("service", s, SERVICE_MAX, false)?;
    }
    if let Some(d) = &new.description {
        text("description", d, DESCRIPTION_MAX, true)?;
    }
    let id = Uuid::new_v4();
    let sealed = seal(keys, who.organization_id, id, new.value.as_bytes())?;
    let mut tx = pool.begin().await?;
    let row = db::insert(
        &mut *tx,
        &db::NewSecret {
            secret_id: id,
            organization_id: who.organization_id,
            created_by: who.user_id,
            name: &new.name,
            environment: env.as_str(),
            service: new.service.as_deref(),
            description: new.description.as_deref(),
            value_sealed: &sealed.value,
            data_key_sealed: &sealed.data_key,
            master_version: sealed.version,
        },
    )
    .await
    .map_err(name_taken)?;
    let s = Secret::from(row);
    super::audit::change(
        &mut *tx,
        who.organization_id,
        who.user_id,
        "secret.create",
        &target(id),
        None,
        Some(audit(&s)),
    )
    .await?;
    tx.commit().await?;
    Ok(s)
}

/// One secret's metadata.
pub async fn get(pool: &PgPool, who: &Who, id: Uuid) -> Result<Secret, DomainError> {
    db::get(pool, who.organization_id, id)
        .await?
        .map(Secret::from)
        .ok_or_else(not_found)
}

/// The organization's secrets, by environment and name.
pub async fn list(pool: &PgPool, who: &Who, f: Filter<'_>) -> Result<Vec<Secret>, DomainError> {
    if let Some(e) = f.environment {
        environment(e)?;
    }
    if let Some(s) = f.service {
        text("service", s, SERVICE_MAX, false)?;
    }
    Ok(
        db::list(pool, who.organization_id, f.environment, f.service)
            .await?
            .into_iter()
            .map(Secret::from)
            .collect(),
    )
}

/// Change metadata and, with a `value`, rotate to it (audited as `secret.update`).
pub async fn update(
    pool: &PgPool,
    keys: &SecretBox,
    who: &Who,
    id: Uuid,
    c: Change,
) -> Result<Secret, DomainError> {
    if let Some(n) = &c.name {
        text("key", n, NAME_MAX, false)?;
    }
    if let Some(e) = &c.environment {
        environment(e)?;
    }
    if let Some(Some(s)) = &c.service {
        text("service", s, SERVICE_MAX, false)?;
    }
    if let Some(Some(d)) = &c.description {
        text("description", d, DESCRIPTION_MAX, true)?;
    }
    if let Some(v) = &c.value {
        check_value(v)?;
    }
    let sealed = match &c.value {
        Some(v) => Some(seal(keys, who.organization_id, id, v.as_bytes())?),
        None => None,
    };
    let mut tx = pool.begin().await?;
    let before = db::get(&mut *tx, who.organization_id, id)
        .await?
        .map(Secret::from)
        .ok_or_else(not_found)?;
    let mut row = db::update_meta(
        &mut *tx,
        who.organization_id,
        id,
        &db::MetaChange {
            name: c.name.as_deref(),
            environment: c.environment.as_deref(),
            service: c.service.as_ref().map(|s| s.as_deref()),
            description: c.description.as_ref().map(|d| d.as_deref()),
        },
    )
    .await
    .map_err(name_taken)?
    .ok_or_else(not_found)?;
    if let Some(s) = &sealed {
        row = db::replace_sealed(
            &mut *tx,
            who.organization_id,
            id,
            &s.value,
            &s.data_key,
            s.version,
            true,
        )
        .await?
        .ok_or_else(not_found)?;
    }
    let after = Secret::from(row);
    let mut a = audit(&after);
    a["value_replaced"] = json!(sealed.is_some());
    super::audit::change(
        &mut *tx,
        who.organization_id,
        who.user_id,
        "secret.update",
        &target(id),
        Some(audit(&before)),
        Some(a),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Delete a secret and its use history (audited as `secret.delete`).
pub async fn delete(pool: &PgPool, who: &Who, id: Uuid) -> Result<(), DomainError> {
    let mut tx = pool.begin().await?;
    let before = db::get(&mut *tx, who.organization_id, id)
        .await?
        .map(Secret::from)
        .ok_or_else(not_found)?;
    db::delete(&mut *tx, who.organization_id, id).await?;
    super::audit::change(
        &mut *tx,
        who.organization_id,
        who.user_id,
        "secret.delete",
        &target(id),
        Some(audit(&before)),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The value, for a person (the route: org_admin and up). Audited as `secret.value_read`
/// before it is returned: no audit row, no value. Inactive secrets can be read (to copy them
/// out); only the platform never uses them.
pub async fn reveal(
    pool: &PgPool,
    keys: &SecretBox,
    who: &Who,
    id: Uuid,
) -> Result<SecretValue, DomainError> {
    let mut tx = pool.begin().await?;
    let row = db::get_sealed(&mut *tx, who.organization_id, id, false)
        .await?
        .ok_or_else(not_found)?;
    let value = open(keys, &row)?;
    super::audit::change(
        &mut *tx,
        who.organization_id,
        who.user_id,
        "secret.value_read",
        &target(id),
        None,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(value)
}

/// Rotate: a fresh data key sealed by the newest master key, with the same value (`None`) or a
/// new one; sets `last_rotated_at` (audited as `secret.rotate`, without any value).
pub async fn rotate(
    pool: &PgPool,
    keys: &SecretBox,
    who: &Who,
    id: Uuid,
    new_value: Option<String>,
) -> Result<Secret, DomainError> {
    if let Some(v) = &new_value {
        check_value(v)?;
    }
    let mut tx = pool.begin().await?;
    let row = db::get_sealed(&mut *tx, who.organization_id, id, true)
        .await?
        .ok_or_else(not_found)?;
    let before_version = row.master_version;
    let replaced = new_value.is_some();
    let value = match new_value {
        Some(v) => SecretValue(v),
        None => open(keys, &row)?,
    };
    let sealed = seal(keys, who.organization_id, id, value.expose().as_bytes())?;
    let s = Secret::from(
        db::replace_sealed(
            &mut *tx,
            who.organization_id,
            id,
            &sealed.value,
            &sealed.data_key,
            sealed.version,
            true,
        )
        .await?
        .ok_or_else(not_found)?,
    );
    let mut a = audit(&s);
    a["value_replaced"] = json!(replaced);
    super::audit::change(
        &mut *tx,
        who.organization_id,
        who.user_id,
        "secret.rotate",
        &target(id),
        Some(json!({ "master_version": before_version })),
        Some(a),
    )
    .await?;
    tx.commit().await?;
    Ok(s)
}

/// Activate or deactivate (audited as `secret.activate` / `secret.deactivate`).
pub async fn set_active(
    pool: &PgPool,
    who: &Who,
    id: Uuid,
    active: bool,
) -> Result<Secret, DomainError> {
    let status = if active {
        Status::Active
    } else {
        Status::Inactive
    };
    let mut tx = pool.begin().await?;
    let before = db::get(&mut *tx, who.organization_id, id)
        .await?
        .map(Secret::from)
        .ok_or_else(not_found)?;
    let s = Secret::from(
        db::set_status(&mut *tx, who.organization_id, id, status.as_str())
            .await?
            .ok_or_else(not_found)?,
    );
    super::audit::change(
        &mut *tx,
        who.organization_id,
        who.user_id,
        if active {
            "secret.activate"
        } else {
            "secret.deactivate"
        },
        &target(id),
        Some(json!({ "status": before.status.as_str() })),
        Some(json!({ "status": s.status.as_str() })),
    )
    .await?;
    tx.commit().await?;
    Ok(s)
}

/// The value, for the platform's own use: refused ([`Conflict::SecretInactive`]) when the
/// secret is inactive. The caller reports how the use went with [`record_use`].
pub async fn use_value(
    pool: &PgPool,
    keys: &SecretBox,
    org: Uuid,
    id: Uuid,
) -> Result<SecretValue, DomainError> {
    let row = db::get_sealed(pool, org, id, false)
        .await?
        .ok_or_else(not_found)?;
    if row.status != Status::Active.as_str() {
        return Err(Conflict::SecretInactive.into());
    }
    open(keys, &row)
}

/// Record one use of a secret by the platform: whether it succeeded, and for what
/// (`purpose`: 1 to 100 characters, e.g. `whatsapp.send`).
pub async fn record_use(
    pool: &PgPool,
    org: Uuid,
    id: Uuid,
    success: bool,
    purpose: &str,
) -> Result<(), DomainError> {
    text("purpose", purpose, PURPOSE_MAX, false)?;
    match db::insert_use(pool, org, id, success, purpose).await {
        Ok(true) => Ok(()),
        // no such secret in `org` (or deleted meanwhile)
        Ok(false) => Err(not_found()),
        Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

/// One secret's use statistics.
pub async fn usage(pool: &PgPool, who: &Who, id: Uuid) -> Result<UsageStats, DomainError> {
    db::get(pool, who.organization_id, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(db::usage(pool, who.organization_id, id).await?.into())
}

/// Every secret of the organization with its statistics (never-used ones with zeros).
pub async fn usage_by_org(pool: &PgPool, who: &Who) -> Result<Vec<UsageStats>, DomainError> {
    Ok(db::usage_by_org(pool, who.organization_id)
        .await?
        .into_iter()
        .map(UsageStats::from)
        .collect())
}

/// Re-seal, under the newest master key, the data keys still sealed by an older one (values
/// and `last_rotated_at` unchanged), at most `batch` (1 to [`REWRAP_BATCH_MAX`]) per call; how
/// many were re-wrapped. Run it after adding a master key version, until it answers 0; then
/// the older version can be dropped from `CATRACA_SECRET_KEYS`.
pub async fn rewrap_older(pool: &PgPool, keys: &SecretBox, batch: i64) -> Result<u64, DomainError> {
    if !(1..=REWRAP_BATCH_MAX).contains(&batch) {
        return Err(DomainError::invalid(
            "batch",
            format!("1 to {REWRAP_BATCH_MAX}"),
        ));
    }
    let current = i32::try_from(keys.current_version())
        .map_err(|_| DomainError::internal("vault", "master key version above i32"))?;
    let mut n = 0;
    for row in db::sealed_older_than(pool, current, batch).await? {
        let mut dk = open_data_key(keys, &row)?;
        let sealed = keys.seal_bound(&dk, &aad(row.organization_id, row.secret_id));
        dk.fill(0);
        let (_, blob) =
            sealed.ok_or_else(|| DomainError::internal("vault", "sealing a data key failed"))?;
        if db::rewrap(pool, row.secret_id, row.master_version, &blob, current).await? {
            n += 1;
        }
    }
    Ok(n)
}

// ---- test ---------------------------------------------------------------------------------

/// A provider whose keys [`test`] can check: `GET <base_url>/models` with
/// `Authorization: Bearer <key>` (OpenAI's convention; `base_url` ends before `/models`, e.g.
/// `https://api.openai.com/v1`). These come from the operator's config (the providers the
/// gateway routes to), so they are called at whatever address they have, as the gateway calls
/// them, without the outbound policy meant for user-given URLs.
#[derive(Debug, Clone)]
pub struct ProviderCheck {
    /// The secret's `service` it applies to (compared case-insensitively).
    pub service: String,
    /// The API base.
    pub base_url: String,
}

/// What [`test`] can check, given by the caller (the app's configuration).
#[derive(Debug, Clone)]
pub struct TestTargets {
    /// Provider key checks, by service.
    pub providers: Vec<ProviderCheck>,
    /// The Graph API base for `whatsapp` tokens (`GET <graph>/me`), e.g.
    /// `https://graph.facebook.com/v19.0`; `None`: WhatsApp is not checkable.
    pub graph_base_url: Option<String>,
    /// Per check.
    pub timeout: Duration,
}

/// The answer of [`test`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOutcome {
    /// The service accepted the credential.
    Valid {
        /// What was called (no credential in it).
        checked: String,
    },
    /// The service answered, and not with success.
    Rejected {
        /// Its HTTP status.
        status: u16,
    },
    /// The check could not reach an answer.
    Failed {
        /// Why (never the value).
        reason: String,
    },
    /// The vault has no check for this secret's service.
    NotCheckable {
        /// The service, if any.
        service: Option<String>,
    },
}

impl TestOutcome {
    /// The contract's `valid`.
    pub fn valid(&self) -> bool {
        matches!(self, TestOutcome::Valid { .. })
    }

    /// The contract's `message`, in English.
    pub fn message(&self) -> String {
        match self {
            TestOutcome::Valid { checked } => format!("accepted by {checked}"),
            TestOutcome::Rejected {
                status: s @ (401 | 403),
            } => {
                format!("the service refused the credential (HTTP {s})")
            }
            TestOutcome::Rejected { status } => format!("the service answered HTTP {status}"),
            TestOutcome::Failed { reason } => format!("the check failed: {reason}"),
            TestOutcome::NotCheckable { service: Some(s) } => {
                format!("service '{s}' cannot be checked by the vault")
            }
            TestOutcome::NotCheckable { service: None } => {
                "a secret without a service cannot be checked".into()
            }
        }
    }
}

/// Call `url` with the value as Bearer. Every URL here is the operator's own config (a
/// provider the gateway routes to, the Graph API base), so it is called as configured, like
/// the gateway calls it; the outbound policy is for user-given URLs (webhooks).
async fn check(url: &str, value: &SecretValue, t: &TestTargets) -> TestOutcome {
    let Ok(mut auth) = http::HeaderValue::from_str(&format!("Bearer {}", value.expose())) else {
        return TestOutcome::Failed {
            reason: "the value cannot be sent as a bearer token".into(),
        };
    };
    auth.set_sensitive(true);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(t.timeout)
        .build();
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            return TestOutcome::Failed {
                reason: format!("no HTTP client: {e}"),
            };
        }
    };
    match client
        .get(url)
        .header(http::header::AUTHORIZATION, auth)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => TestOutcome::Valid {
            checked: url.to_string(),
        },
        Ok(r) => TestOutcome::Rejected {
            status: r.status().as_u16(),
        },
        Err(e) if e.is_timeout() => TestOutcome::Failed {
            reason: "timed out".into(),
        },
        Err(e) if e.is_connect() => TestOutcome::Failed {
            reason: "could not connect".into(),
        },
        Err(_) => TestOutcome::Failed {
            reason: "the request failed".into(),
        },
    }
}

/// Check a secret against its service, for real where the vault knows the service (see
/// [`TestTargets`]); an honest [`TestOutcome::NotCheckable`] for others. Refused for inactive
/// secrets. A check that ran is recorded as a use (purpose `test`).
pub async fn test(
    pool: &PgPool,
    keys: &SecretBox,
    who: &Who,
    id: Uuid,
    targets: &TestTargets,
) -> Result<TestOutcome, DomainError> {
    let meta = get(pool, who, id).await?;
    // an inactive secret is never used, not even by a test, whatever its service
    if meta.status == Status::Inactive {
        return Err(Conflict::SecretInactive.into());
    }
    let service = meta.service.as_deref().map(str::to_ascii_lowercase);
    let url = match service.as_deref() {
        None => None,
        Some("whatsapp") => targets
            .graph_base_url
            .as_ref()
            // the Graph base is the operator's config too (`whatsapp.graph_base_url`)
            .map(|g| format!("{}/me", g.trim_end_matches('/'))),
        Some(s) => targets
            .providers
            .iter()
            .find(|p| p.service.eq_ignore_ascii_case(s))
            .map(|p| format!("{}/models", p.base_url.trim_end_matches('/'))),
    };
    let Some(url) = url else {
        return Ok(TestOutcome::NotCheckable {
            service: meta.service,
        });
    };
    let value = use_value(pool, keys, who.organization_id, id).await?;
    let out = check(&url, &value, targets).await;
    record_use(pool, who.organization_id, id, out.valid(), "test").await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_inputs_are_redacted_in_debug() {
        let v = SecretValue("sk-live-abc".into());
        assert!(!format!("{v:?}").contains("sk-live"));
        let n = NewSecret {
            name: "openai".into(),
            value: "sk-live-abc".into(),
            environment: None,
            service: None,
            description: None,
        };
        assert!(!format!("{n:?}").contains("sk-live"));
        let c = Change {
            value: Some("sk-live-abc".into()),
            ..Change::default()
        };
        assert!(!format!("{c:?}").contains("sk-live"));
    }

    #[test]
    fn envelope_binds_row_and_organization() {
        let keys = SecretBox::from_hex(&"ab".repeat(32)).unwrap();
        let (org, id) = (Uuid::new_v4(), Uuid::new_v4());
        let s = seal(&keys, org, id, b"tok").unwrap();
        let row = |o, i| db::SealedRow {
            secret_id: i,
            organization_id: o,
            status: "active".into(),
            value_sealed: s.value.clone(),
            data_key_sealed: s.data_key.clone(),
            master_version: s.version,
        };
        assert_eq!(open(&keys, &row(org, id)).unwrap().expose(), "tok");
        assert!(open(&keys, &row(org, Uuid::new_v4())).is_err());
        assert!(open(&keys, &row(Uuid::new_v4(), id)).is_err());
        assert!(!s.value.windows(3).any(|w| w == b"tok"));
    }

    #[test]
    fn inputs_are_checked() {
        assert!(text("key", "", NAME_MAX, false).is_err());
        assert!(text("key", "   ", NAME_MAX, false).is_err());
        assert!(text("key", "a\0b", NAME_MAX, false).is_err());
        assert!(text("key", &"x".repeat(201), NAME_MAX, false).is_err());
        assert!(text("key", "OPENAI_API_KEY", NAME_MAX, false).is_ok());
        assert!(check_value("a\0").is_err());
        assert!(check_value("").is_err());
        assert!(check_value(&"x".repeat(VALUE_MAX + 1)).is_err());
        assert!(environment("prod").is_err());
    }
}
