//! Referrals (Tokia `GET /v1/me/referrals`). Each user has one stable code: 8 characters of
//! `ABCDEFGHJKLMNPQRSTUVWXYZ23456789` (no 0/O, 1/I), made at random the first time it is read
//! and never changed. A user the operator creates with that code (`POST /admin/v1/users
//! {…, referral_code}`) is recorded as invited by its owner in the transaction that creates
//! them; a malformed or unknown code is a 400 and nothing is created.
//!
//! Credit earned is what the ledger says, exactly: the net of the entries of the caller's
//! organization (the key's) whose idempotency key is `referral:{invited user id}` or starts
//! with `referral:{invited user id}:`. The operator posts them (`POST
//! /admin/v1/organizations/{id}/ledger` with that `Idempotency-Key`); nothing here credits on
//! its own. Invitees are shown by masked email (`j***@example.com`) and join date only.

use sqlx::PgPool;
use uuid::Uuid;

use super::error::{DomainError, Entity};
use super::money::Micros;
use crate::store::account as db;

/// The characters of a code.
pub const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// A code's length.
pub const CODE_LEN: usize = 8;
/// Invitees listed (the newest beyond it are counted, not listed).
pub const LIST_MAX: i64 = 1_000;

/// A well-formed referral code (upper case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    /// Parse a code as a person types it: surrounding spaces and lower case are forgiven,
    /// anything else that is not 8 characters of [`ALPHABET`] is refused.
    pub fn parse(raw: &str) -> Result<Code, DomainError> {
        let c = raw.trim().to_ascii_uppercase();
        if c.len() == CODE_LEN && c.bytes().all(|b| ALPHABET.contains(&b)) {
            Ok(Code(c))
        } else {
            Err(DomainError::invalid(
                "referral_code",
                "8 letters and digits (no 0, O, 1 or I)",
            ))
        }
    }

    /// A new random code.
    pub fn random() -> Code {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        Code(
            (0..CODE_LEN)
                .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
                .collect(),
        )
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `email` with its local part cut to the first character and `***`: `j***@example.com`.
pub fn mask(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

/// The owner of `code`, read in the caller's transaction; an unknown code is invalid input.
pub async fn referrer(db: impl sqlx::PgExecutor<'_>, code: &Code) -> Result<Uuid, DomainError> {
    db::referrer_by_code(db, code.as_str())
        .await?
        .ok_or_else(|| DomainError::invalid("referral_code", "no user has this code"))
}

/// Record, in the transaction creating `user`, that `referrer` invited them.
pub async fn record(
    db: impl sqlx::PgExecutor<'_>,
    user: Uuid,
    referrer: Uuid,
) -> Result<(), DomainError> {
    Ok(db::set_referred_by(db, user, referrer).await?)
}

/// The user's code, made the first time (two first reads at once agree on one).
pub async fn code_of(pool: &PgPool, user: Uuid) -> Result<String, DomainError> {
    for _ in 0..5 {
        match db::referral_code(pool, user).await? {
            None => return Err(DomainError::NotFound(Entity::User)),
            Some(Some(c)) => return Ok(c),
            Some(None) => {}
        }
        match db::set_referral_code(pool, user, Code::random().as_str()).await {
            Ok(Some(c)) => return Ok(c),
            // another request gave the user a code meanwhile: read it
            Ok(None) => {}
            // another user has this code: draw again
            Err(sqlx::Error::Database(e)) if e.constraint() == Some(db::REFERRAL_CODE_KEY) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::internal(
        "referral code",
        "no free code after 5 draws",
    ))
}

/// The user's code if one was made (the export does not make one).
pub async fn existing_code(pool: &PgPool, user: Uuid) -> Result<Option<String>, DomainError> {
    Ok(db::referral_code(pool, user).await?.flatten())
}

/// One invited user, as their referrer sees them.
#[derive(Debug, Clone)]
pub struct Invitee {
    /// Masked email.
    pub email: String,
    /// When they were created.
    pub joined_at: time::OffsetDateTime,
    /// Referral credits posted for them in the caller's organization (net).
    pub credit: Micros,
}

/// A user's referral program.
#[derive(Debug, Clone)]
pub struct Referrals {
    /// Their code.
    pub code: String,
    /// How many users they invited.
    pub invited_count: i64,
    /// Net referral credits in the caller's organization, for all of them.
    pub credit_earned: Micros,
    /// The invited users, oldest first (at most [`LIST_MAX`]).
    pub invited: Vec<Invitee>,
}

/// `user`'s code, invitees and credits, the credits read from `org`'s ledger.
pub async fn summary(pool: &PgPool, user: Uuid, org: Uuid) -> Result<Referrals, DomainError> {
    let code = code_of(pool, user).await?;
    let mut tx = pool.begin().await?;
    // one snapshot: the total is the sum of the rows listed (when all are listed)
    db::read_only_snapshot(&mut tx).await?;
    let totals = db::referral_totals(&mut *tx, user, org).await?;
    let rows = db::invitees(&mut *tx, user, org, LIST_MAX).await?;
    tx.commit().await?;
    Ok(Referrals {
        code,
        invited_count: totals.invited,
        credit_earned: Micros(totals.credit_brl_micros),
        invited: rows
            .into_iter()
            .map(|r| Invitee {
                email: mask(&r.email),
                joined_at: r.joined_at,
                credit: Micros(r.credit_brl_micros),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_masked_to_the_first_character() {
        assert_eq!(mask("joao@example.com"), "j***@example.com");
        assert_eq!(mask("j@example.com"), "j***@example.com");
        assert_eq!(mask("élodie@exemplo.com.br"), "é***@exemplo.com.br");
        assert_eq!(mask("weird"), "***");
    }

    #[test]
    fn codes_are_forgiving_about_case_and_strict_about_the_rest() {
        let c = Code::random();
        assert_eq!(c.as_str().len(), CODE_LEN);
        assert_eq!(Code::parse(&c.as_str().to_lowercase()).unwrap(), c);
        assert_eq!(Code::parse(" abcd2345 ").unwrap().as_str(), "ABCD2345");
        for bad in [
            "",
            "ABCD234",
            "ABCD23456",
            "ABCD2340",
            "ABCDO234",
            "ABCD-234",
            "ÁBCD2345",
        ] {
            assert!(Code::parse(bad).is_err(), "{bad:?}");
        }
    }
}
