//! Refund requests (`refund`) and the ledger entries that move their money (migration 0027):
//! a request writes a `hold` of −amount, an approval a `hold` of +amount and a `refund` of
//! −amount, a rejection a `hold` of +amount — each with the refund's state change, the
//! balance update and its audit row in one transaction under the organization's row lock (the
//! lock `store::ledger::post` and the usage writer take too), so the balance column always
//! equals the sum of the entries and an organization has at most one pending request.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The partial unique index holding one pending request per organization.
pub const ONE_PENDING: &str = "refund_one_pending_idx";
/// The unique key of an organization's idempotency keys.
pub const IDEMPOTENCY_KEY: &str = "refund_organization_id_idempotency_key_key";

/// A refund request as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefundRow {
    /// Id.
    pub refund_id: Uuid,
    /// Whose balance it comes from.
    pub organization_id: Uuid,
    /// Micro-BRL, whole centavos, at least R$ 5.00.
    pub amount_brl_micros: i64,
    /// The client's words.
    pub reason: Option<String>,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// The requesting key's user.
    pub requested_by: Option<Uuid>,
    /// The requesting key.
    pub api_key_id: Option<Uuid>,
    /// When it was asked for.
    pub created_at: time::OffsetDateTime,
    /// When the operator approved or rejected it (`None` while pending).
    pub decided_at: Option<time::OffsetDateTime>,
}

const COLUMNS: &str = "refund_id, organization_id, amount_brl_micros, reason, status,
                       idempotency_key, requested_by, api_key_id, created_at, decided_at";

/// What an organization's ledger says about refundable money, read under its row lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct FundsRow {
    /// The balance column (`None`: postpaid), micro-BRL; holds already taken off.
    pub balance: Option<i64>,
    /// `topup` entries (operator top-ups and paid PIX charges), micro-BRL.
    pub paid: i64,
    /// Refunds paid out (`refund` debits), as a positive amount.
    pub refunded: i64,
    /// Held by pending requests (−sum of `hold` entries).
    pub held: i64,
}

/// A new request.
#[derive(Debug, Clone)]
pub struct NewRefund<'a> {
    /// Whose.
    pub organization_id: Uuid,
    /// Micro-BRL.
    pub amount_brl_micros: i64,
    /// The client's words.
    pub reason: Option<&'a str>,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: Option<&'a str>,
    /// The key's user.
    pub requested_by: Option<Uuid>,
    /// The key.
    pub api_key_id: Option<Uuid>,
}

/// What a request did.
#[derive(Debug)]
pub enum Requested {
    /// A new pending request; its amount is held.
    Created(RefundRow),
    /// The idempotency key's request, with the same amount and reason: nothing changed.
    Replayed(RefundRow),
    /// The idempotency key was used for another amount or reason: nothing changed.
    KeyReused,
    /// Another request is pending: nothing changed.
    Pending,
    /// More than the rule allows: nothing changed; what it allows.
    AboveRefundable(i64),
    /// No such organization.
    NoOrganization,
}

/// The balance column of `org`, locked for this transaction (`None`: no such organization;
/// `Some(None)`: postpaid).
async fn lock_org(tx: &mut PgConnection, org: Uuid) -> Result<Option<Option<i64>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT balance_brl_micros FROM organization WHERE organization_id = $1 FOR UPDATE",
    )
    .bind(org)
    .fetch_optional(tx)
    .await
}

/// One ledger entry of a refund (`kind` `hold` or `refund`), idempotency key
/// `refund:{id}:{step}`.
async fn entry(
    tx: &mut PgConnection,
    org: Uuid,
    kind: &str,
    amount: i64,
    after: i64,
    refund: Uuid,
    step: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ledger_entry (organization_id, kind, amount_brl_micros,
                                   balance_after_brl_micros, idempotency_key, description)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(org)
    .bind(kind)
    .bind(amount)
    .bind(after)
    .bind(format!("refund:{refund}:{step}"))
    .bind(format!("refund {refund} {step}"))
    .execute(tx)
    .await?;
    Ok(())
}

/// Set the balance column and tell the gateways by how much it moved (they add the delta to
/// what they hold; `ledger` is never a gateway's node id, so every node applies it).
async fn set_balance(
    tx: &mut PgConnection,
    org: Uuid,
    after: i64,
    delta: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE organization SET balance_brl_micros = $2 WHERE organization_id = $1")
        .bind(org)
        .bind(after)
        .execute(&mut *tx)
        .await?;
    if delta != 0 {
        sqlx::query("SELECT pg_notify('catraca_funds', $1)")
            .bind(format!("o:{org}:{delta}:ledger"))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// A new request: under the organization's row lock, the idempotency key's earlier request
/// (same amount and reason: replayed, else refused), another pending request (refused), the
/// amount against `refundable(funds)` (refused above it), then the request, its `hold` entry,
/// the balance, the gateways' notification and the audit row (`audit_after` of the new row),
/// in one transaction.
pub async fn request(
    pool: &PgPool,
    new: &NewRefund<'_>,
    refundable: impl FnOnce(&FundsRow) -> i64,
    audit_after: impl FnOnce(&RefundRow) -> serde_json::Value,
) -> Result<Requested, sqlx::Error> {
    let org = new.organization_id;
    let mut tx = pool.begin().await?;
    let Some(balance) = lock_org(&mut tx, org).await? else {
        return Ok(Requested::NoOrganization);
    };
    if let Some(key) = new.idempotency_key {
        let earlier: Option<RefundRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM refund WHERE organization_id = $1 AND idempotency_key = $2"
        ))
        .bind(org)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = earlier {
            return Ok(
                if r.amount_brl_micros == new.amount_brl_micros && r.reason.as_deref() == new.reason
                {
                    Requested::Replayed(r)
                } else {
                    Requested::KeyReused
                },
            );
        }
    }
    let pending: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM refund WHERE organization_id = $1 AND status = 'pending')",
    )
    .bind(org)
    .fetch_one(&mut *tx)
    .await?;
    if pending {
        return Ok(Requested::Pending);
    }
    let funds: FundsRow = sqlx::query_as(
        "SELECT $2::int8 AS balance,
                coalesce(sum(amount_brl_micros) FILTER (WHERE kind = 'topup'), 0)::int8 AS paid,
                coalesce(-sum(amount_brl_micros) FILTER (
                    WHERE kind = 'refund' AND amount_brl_micros < 0), 0)::int8 AS refunded,
                coalesce(-sum(amount_brl_micros) FILTER (WHERE kind = 'hold'), 0)::int8 AS held
         FROM ledger_entry
         -- every entry but usage debits has a key: this reads those few from
         -- ledger_entry_org_key_idx (migrations/0030), not the whole ledger
         WHERE organization_id = $1 AND idempotency_key IS NOT NULL",
    )
    .bind(org)
    .bind(balance)
    .fetch_one(&mut *tx)
    .await?;
    let allowed = refundable(&funds);
    let Some(before) = balance.filter(|_| new.amount_brl_micros <= allowed) else {
        return Ok(Requested::AboveRefundable(allowed.max(0)));
    };
    let inserted: Result<RefundRow, sqlx::Error> = sqlx::query_as(&format!(
        "INSERT INTO refund (organization_id, amount_brl_micros, reason, idempotency_key,
                             requested_by, api_key_id)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING {COLUMNS}"
    ))
    .bind(org)
    .bind(new.amount_brl_micros)
    .bind(new.reason)
    .bind(new.idempotency_key)
    .bind(new.requested_by)
    .bind(new.api_key_id)
    .fetch_one(&mut *tx)
    .await;
    let row = match inserted {
        Ok(r) => r,
        // both are excluded under the lock above; kept as the schema's last word
        Err(sqlx::Error::Database(e)) if e.constraint() == Some(ONE_PENDING) => {
            return Ok(Requested::Pending);
        }
        Err(sqlx::Error::Database(e)) if e.constraint() == Some(IDEMPOTENCY_KEY) => {
            return Ok(Requested::KeyReused);
        }
        Err(e) => return Err(e),
    };
    let amount = row.amount_brl_micros;
    let after = before - amount;
    entry(&mut tx, org, "hold", -amount, after, row.refund_id, "hold").await?;
    set_balance(&mut tx, org, after, -amount).await?;
    crate::store::audit::insert_change(
        &mut *tx,
        Some(org),
        new.requested_by,
        "refund.request",
        Some(&row.refund_id.to_string()),
        None,
        Some(&audit_after(&row)),
    )
    .await?;
    tx.commit().await?;
    Ok(Requested::Created(row))
}

/// What a decision did.
#[derive(Debug)]
pub enum Decided {
    /// The request was pending and is now decided.
    Done(RefundRow),
    /// The request was decided before: nothing changed (the row as it is).
    NotPending(RefundRow),
    /// No such request.
    NotFound,
}

/// Approve (`approve`: the hold released and the payout debited as `refund`, the balance
/// unchanged) or reject (the hold released, the balance restored) the pending request `id`,
/// with its audit row (`audit` of the row before and after), in one transaction under the
/// organization's row lock; of concurrent decisions one wins.
pub async fn decide(
    pool: &PgPool,
    id: Uuid,
    approve: bool,
    audit: impl FnOnce(&RefundRow) -> (serde_json::Value, serde_json::Value),
) -> Result<Decided, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(org): Option<Uuid> =
        sqlx::query_scalar("SELECT organization_id FROM refund WHERE refund_id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
    else {
        return Ok(Decided::NotFound);
    };
    let Some(balance) = lock_org(&mut tx, org).await? else {
        return Ok(Decided::NotFound);
    };
    let status = if approve { "approved" } else { "rejected" };
    let decided: Option<RefundRow> = sqlx::query_as(&format!(
        "UPDATE refund SET status = $2, decided_at = now()
         WHERE refund_id = $1 AND status = 'pending'
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(status)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = decided else {
        let now: Option<RefundRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM refund WHERE refund_id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        return Ok(now.map_or(Decided::NotFound, Decided::NotPending));
    };
    let amount = row.amount_brl_micros;
    // a pending request's organization is prepaid: its hold was taken from the balance
    let before = balance.unwrap_or(0);
    let released = before + amount;
    entry(&mut tx, org, "hold", amount, released, id, "release").await?;
    let after = if approve {
        entry(&mut tx, org, "refund", -amount, before, id, "payout").await?;
        before
    } else {
        released
    };
    set_balance(&mut tx, org, after, after - before).await?;
    let (audit_before, audit_after) = audit(&row);
    crate::store::audit::insert_change(
        &mut *tx,
        Some(org),
        None,
        &format!("refund.{}", if approve { "approve" } else { "reject" }),
        Some(&id.to_string()),
        Some(&audit_before),
        Some(&audit_after),
    )
    .await?;
    tx.commit().await?;
    Ok(Decided::Done(row))
}

/// The newest `limit` requests of `org`, newest first.
pub async fn of_org(pool: &PgPool, org: Uuid, limit: i64) -> Result<Vec<RefundRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM refund WHERE organization_id = $1
         ORDER BY created_at DESC, refund_id DESC LIMIT $2"
    ))
    .bind(org)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One page of requests, newest first, of one `status` and one organization when given, and
/// how many there are in all.
pub async fn list(
    pool: &PgPool,
    status: Option<&str>,
    org: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<RefundRow>, i64), sqlx::Error> {
    const FILTER: &str =
        "($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR organization_id = $2)";
    let rows = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM refund WHERE {FILTER}
         ORDER BY created_at DESC, refund_id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(status)
    .bind(org)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar(&format!("SELECT count(*) FROM refund WHERE {FILTER}"))
        .bind(status)
        .bind(org)
        .fetch_one(pool)
        .await?;
    Ok((rows, total))
}
