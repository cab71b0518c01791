//! Refunds (#14 item 6): an organization asks for part of its prepaid balance back, and the
//! operator approves or rejects the request.
//!
//! - **Amount.** Exact decimal text (or a JSON number's literal text), whole centavos (refunds
//!   are paid out by bank transfer or PIX, which move centavos), at least R$ 5.00, and at most
//!   the *refundable* amount: `min(balance, paid − refunded − held)`, where `balance` is what
//!   can be spent now (holds already taken off), `paid` the `topup` entries (operator top-ups
//!   and paid PIX charges; free credits and adjustments are not paid money), `refunded` the
//!   refunds paid out and `held` the pending requests'. So neither unpaid credit nor spent
//!   money is ever refunded, and the customer is given the benefit of the doubt about which
//!   money was spent first.
//! - **One open request** per organization: a second is a conflict (the organization's row is
//!   locked while the request is checked, and a partial unique index backs it up).
//! - **The ledger.** A request holds its amount (a `hold` entry of −amount: the balance drops,
//!   and gateways, told through `catraca_funds`, stop spending it); approval releases the hold
//!   and debits the payout as `refund` (never `usage`) in one transaction, leaving the balance
//!   as it was; rejection releases the hold, restoring the balance.
//! - **Idempotency.** A client's `Idempotency-Key` (1 to 200 printable ASCII characters) names
//!   one request of its organization: the same key with the same amount and reason answers
//!   that request again and changes nothing; with another amount or reason it is a conflict.
//! - **Audit.** `refund.request`, `refund.approve`, `refund.reject`.

use sqlx::PgPool;
use uuid::Uuid;

use super::error::{Conflict, DomainError, Entity};
use super::keys::KeyOwner;
use super::money::Micros;
use super::usage::Page;
use crate::store::refunds::{self as db, Decided, FundsRow, NewRefund};

pub use db::RefundRow as Refund;

/// Smallest refund: R$ 5.00.
pub const MIN_AMOUNT: Micros = Micros(5_000_000);
/// Longest reason, in characters.
pub const MAX_REASON: usize = 500;
/// Longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 200;
/// Most requests an organization's history lists (newest first).
pub const HISTORY_LIMIT: i64 = 500;
/// The states of a request.
pub const STATUSES: [&str; 3] = ["pending", "approved", "rejected"];

/// Longest amount text read (anything longer is refused before it is parsed or echoed).
const MAX_AMOUNT_TEXT: usize = 40;

/// An amount as the client wrote it: exact decimal text, at most 6 decimal places, signed (a
/// negative amount is below the minimum, not malformed). Whole centavos and the minimum are
/// [`request`]'s rules.
pub fn parse_amount(text: &str) -> Result<Micros, DomainError> {
    if text.len() > MAX_AMOUNT_TEXT {
        return Err(DomainError::invalid(
            "amount_brl",
            format!("at most {MAX_AMOUNT_TEXT} characters"),
        ));
    }
    super::ledger::parse_amount(text)
}

/// A client's `Idempotency-Key`: 1 to 200 printable ASCII characters (no spaces around).
pub fn idempotency_key(raw: &[u8]) -> Result<String, DomainError> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_IDEMPOTENCY_KEY
        && raw.iter().all(|b| (0x21..=0x7e).contains(b));
    match std::str::from_utf8(raw) {
        Ok(k) if ok => Ok(k.to_string()),
        _ => Err(DomainError::invalid(
            "Idempotency-Key",
            "1 to 200 printable ASCII characters",
        )),
    }
}

/// A status filter.
pub fn status(raw: &str) -> Result<&'static str, DomainError> {
    STATUSES
        .into_iter()
        .find(|s| *s == raw)
        .ok_or_else(|| DomainError::invalid("status", "pending, approved or rejected"))
}

/// What may be refunded now: `min(balance, paid − refunded − held)`, never negative (a
/// postpaid organization has no balance: nothing).
pub fn refundable(f: &FundsRow) -> Micros {
    let Some(balance) = f.balance else {
        return Micros(0);
    };
    let unspent_paid = f.paid.saturating_sub(f.refunded).saturating_sub(f.held);
    Micros(balance.min(unspent_paid).max(0))
}

/// A request refused by the amount rules (nothing changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Below [`MIN_AMOUNT`].
    BelowMinimum,
    /// Above what may be refunded now (given).
    AboveRefundable(Micros),
}

/// A request as answered.
#[derive(Debug, Clone)]
pub struct Requested {
    /// The request.
    pub refund: Refund,
    /// The idempotency key's earlier request, answered again (nothing changed).
    pub replayed: bool,
}

/// Ask for `amount` of the key's organization's balance back. Checked before anything is
/// read: the reason's length, whole centavos, the minimum; then, under the organization's row
/// lock, the idempotency key, another pending request (409) and the refundable amount. A new
/// request holds its amount at once.
pub async fn request(
    pool: &PgPool,
    owner: &KeyOwner,
    amount: Micros,
    reason: Option<&str>,
    idempotency_key: Option<&str>,
) -> Result<Result<Requested, Refusal>, DomainError> {
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON) {
        return Err(DomainError::invalid(
            "reason",
            format!("at most {MAX_REASON} characters"),
        ));
    }
    if amount.0 < MIN_AMOUNT.0 {
        return Ok(Err(Refusal::BelowMinimum));
    }
    if amount.0 % 10_000 != 0 {
        return Err(DomainError::invalid(
            "amount_brl",
            "whole centavos (at most 2 decimal places)",
        ));
    }
    let new = NewRefund {
        organization_id: owner.organization_id,
        amount_brl_micros: amount.0,
        reason,
        idempotency_key,
        requested_by: owner.user_id,
        api_key_id: Some(owner.api_key_id),
    };
    let audit_after = |r: &Refund| {
        serde_json::json!({
            "status": r.status,
            "amount_brl": Micros(r.amount_brl_micros).decimal(),
            "reason": r.reason,
            "idempotency_key": r.idempotency_key,
            "api_key_id": r.api_key_id,
        })
    };
    let refund = match db::request(pool, &new, |f| refundable(f).0, audit_after).await? {
        db::Requested::Created(r) => Requested {
            refund: r,
            replayed: false,
        },
        db::Requested::Replayed(r) => Requested {
            refund: r,
            replayed: true,
        },
        db::Requested::KeyReused => return Err(Conflict::IdempotencyReused.into()),
        db::Requested::Pending => return Err(Conflict::RefundPending.into()),
        db::Requested::AboveRefundable(m) => return Ok(Err(Refusal::AboveRefundable(Micros(m)))),
        db::Requested::NoOrganization => return Err(DomainError::NotFound(Entity::Organization)),
    };
    if !refund.replayed {
        // the hold lowered the balance: it may cross a balance alert (a failed check is logged)
        super::alerts::check(pool, owner.organization_id).await;
        tracing::info!(
            refund_id = %refund.refund.refund_id,
            organization_id = %owner.organization_id,
            amount_brl = %Micros(amount.0).decimal(),
            "refund requested"
        );
    }
    Ok(Ok(refund))
}

/// Decide the pending request `id` (the operator's call): approval debits the payout as
/// `refund`, rejection gives the held amount back. Unknown: 404; decided before: 409.
async fn decide(pool: &PgPool, id: Uuid, approve: bool) -> Result<Refund, DomainError> {
    let audit = |r: &Refund| {
        (
            serde_json::json!({"status": "pending"}),
            serde_json::json!({
                "status": r.status,
                "amount_brl": Micros(r.amount_brl_micros).decimal(),
            }),
        )
    };
    match db::decide(pool, id, approve, audit).await? {
        Decided::Done(r) => {
            // a rejection restores the balance: it may arm a balance alert again
            if !approve {
                super::alerts::check(pool, r.organization_id).await;
            }
            tracing::info!(refund_id = %r.refund_id, status = %r.status, "refund decided");
            Ok(r)
        }
        Decided::NotPending(_) => Err(Conflict::RefundNotPending.into()),
        Decided::NotFound => Err(DomainError::NotFound(Entity::Refund)),
    }
}

/// Approve the pending request `id`.
pub async fn approve(pool: &PgPool, id: Uuid) -> Result<Refund, DomainError> {
    decide(pool, id, true).await
}

/// Reject the pending request `id`.
pub async fn reject(pool: &PgPool, id: Uuid) -> Result<Refund, DomainError> {
    decide(pool, id, false).await
}

/// The organization's newest [`HISTORY_LIMIT`] requests, newest first.
pub async fn history(pool: &PgPool, org: Uuid) -> Result<Vec<Refund>, DomainError> {
    Ok(db::of_org(pool, org, HISTORY_LIMIT).await?)
}

/// One page of every organization's requests (of one status and organization when given),
/// newest first, and how many there are.
pub async fn list(
    pool: &PgPool,
    status: Option<&'static str>,
    org: Option<Uuid>,
    page: Page,
) -> Result<(Vec<Refund>, i64), DomainError> {
    Ok(db::list(
        pool,
        status,
        org,
        page.per_page,
        (page.page - 1) * page.per_page,
    )
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn funds(balance: Option<i64>, paid: i64, refunded: i64, held: i64) -> FundsRow {
        FundsRow {
            balance,
            paid,
            refunded,
            held,
        }
    }

    #[test]
    fn refundable_is_the_unspent_part_of_paid_money() {
        // R$ 10 paid, nothing spent
        assert_eq!(
            refundable(&funds(Some(10_000_000), 10_000_000, 0, 0)),
            Micros(10_000_000)
        );
        // R$ 10 paid plus R$ 100 of free credit, R$ 20 spent: only paid money goes back
        assert_eq!(
            refundable(&funds(Some(90_000_000), 10_000_000, 0, 0)),
            Micros(10_000_000)
        );
        // spent down to R$ 3: at most the balance
        assert_eq!(
            refundable(&funds(Some(3_000_000), 10_000_000, 0, 0)),
            Micros(3_000_000)
        );
        // R$ 4 refunded before and R$ 5 held: R$ 1 of paid money left
        assert_eq!(
            refundable(&funds(Some(50_000_000), 10_000_000, 4_000_000, 5_000_000)),
            Micros(1_000_000)
        );
        // a negative balance or more refunded than paid: nothing, never negative
        assert_eq!(refundable(&funds(Some(-5), 10_000_000, 0, 0)), Micros(0));
        assert_eq!(refundable(&funds(Some(5), 0, 10, 0)), Micros(0));
        // postpaid: nothing
        assert_eq!(refundable(&funds(None, 10_000_000, 0, 0)), Micros(0));
    }

    #[test]
    fn amounts_keys_and_statuses_are_parsed_strictly() {
        assert_eq!(parse_amount("5").unwrap(), Micros(5_000_000));
        assert_eq!(parse_amount("5.10").unwrap(), Micros(5_100_000));
        assert_eq!(parse_amount("-5").unwrap(), Micros(-5_000_000));
        for bad in [
            "",
            "5.0000001",
            "1e3",
            "abc",
            "5,00",
            &"9".repeat(41),
            "99999999999999",
        ] {
            assert!(parse_amount(bad).is_err(), "{bad:?}");
        }
        assert_eq!(idempotency_key(b"abc-123").unwrap(), "abc-123");
        for bad in [&b""[..], b"a b", b"\x00", "é".as_bytes(), &[b'k'; 201]] {
            assert!(idempotency_key(bad).is_err(), "{bad:?}");
        }
        assert_eq!(status("pending").unwrap(), "pending");
        assert!(status("Pending").is_err());
    }
}
