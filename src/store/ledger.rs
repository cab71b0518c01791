//! Top-ups and adjustments of prepaid balances: one ledger entry and the balance update in one
//! transaction, idempotent by the caller's key. Usage debits are written by the usage writer
//! (`usage::pg::insert`), in the statement that stores the usage events.

use sqlx::PgPool;
use uuid::Uuid;

/// A ledger entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Entry {
    /// Sequence number.
    pub ledger_entry_id: i64,
    /// `topup`, `adjustment`, `usage`, `refund` or `hold` (a refund request's, `store::refunds`).
    pub kind: String,
    /// Credit > 0, debit < 0 (micro-BRL).
    pub amount_brl_micros: i64,
    /// Balance after this entry (micro-BRL).
    pub balance_after_brl_micros: i64,
}

/// Why an entry was refused.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Bad input; nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// The organization does not exist.
    #[error("organization not found")]
    NotFound,
    /// The idempotency key was used before with a different amount or kind.
    #[error("idempotency key already used for a different entry")]
    Conflict,
    /// Database failure; nothing was written.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Credit (`topup`, `refund`, positive `adjustment`) or debit (negative `adjustment`) an
/// organization's balance. The same `idempotency_key` returns the first entry and changes
/// nothing. The first entry of a postpaid organization makes it prepaid.
pub async fn post(
    pool: &PgPool,
    organization_id: Uuid,
    kind: &str,
    amount_brl_micros: i64,
    idempotency_key: &str,
    description: Option<&str>,
) -> Result<Entry, LedgerError> {
    match kind {
        "topup" | "refund" if amount_brl_micros <= 0 => {
            return Err(LedgerError::Invalid(format!("a {kind} must be positive")));
        }
        "topup" | "refund" | "adjustment" => {}
        _ => {
            return Err(LedgerError::Invalid(format!(
                "kind must be topup, refund or adjustment, not {kind:?}"
            )));
        }
    }
    if amount_brl_micros == 0 {
        return Err(LedgerError::Invalid("the amount must not be zero".into()));
    }
    if idempotency_key.is_empty() || idempotency_key.len() > 200 {
        return Err(LedgerError::Invalid(
            "idempotency_key must be 1 to 200 characters".into(),
        ));
    }
    let mut tx = pool.begin().await?;
    // the row lock orders concurrent entries of one organization
    let Some(before): Option<Option<i64>> = sqlx::query_scalar(
        "SELECT balance_brl_micros FROM organization WHERE organization_id = $1 FOR UPDATE",
    )
    .bind(organization_id)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(LedgerError::NotFound);
    };
    let existing: Option<Entry> = sqlx::query_as(
        "SELECT ledger_entry_id, kind, amount_brl_micros, balance_after_brl_micros
         FROM ledger_entry WHERE organization_id = $1 AND idempotency_key = $2",
    )
    .bind(organization_id)
    .bind(idempotency_key)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(e) = existing {
        if e.kind != kind || e.amount_brl_micros != amount_brl_micros {
            return Err(LedgerError::Conflict);
        }
        return Ok(e);
    }
    let after = before
        .unwrap_or(0)
        .checked_add(amount_brl_micros)
        .ok_or_else(|| LedgerError::Invalid("amount out of range".into()))?;
    sqlx::query("UPDATE organization SET balance_brl_micros = $2 WHERE organization_id = $1")
        .bind(organization_id)
        .bind(after)
        .execute(&mut *tx)
        .await?;
    let entry: Entry = sqlx::query_as(
        "INSERT INTO ledger_entry (organization_id, kind, amount_brl_micros,
                                   balance_after_brl_micros, idempotency_key, description)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING ledger_entry_id, kind, amount_brl_micros, balance_after_brl_micros",
    )
    .bind(organization_id)
    .bind(kind)
    .bind(amount_brl_micros)
    .bind(after)
    .bind(idempotency_key)
    .bind(description)
    .fetch_one(&mut *tx)
    .await?;
    // gateways add the amount to what they hold; a newly prepaid organization changes the
    // keys they cached
    sqlx::query("SELECT pg_notify('catraca_funds', $1)")
        .bind(format!("o:{organization_id}:{amount_brl_micros}:ledger"))
        .execute(&mut *tx)
        .await?;
    if before.is_none() {
        sqlx::query("SELECT pg_notify('catraca_api_key', '*')")
            .execute(&mut *tx)
            .await?;
    }
    // one audit row per entry (a replay returned above, unaudited); amounts as exact text
    let text = |m: i64| crate::domain::money::Micros(m).decimal();
    crate::store::audit::insert_change(
        &mut *tx,
        Some(organization_id),
        None,
        &format!("ledger.{kind}"),
        Some(&entry.ledger_entry_id.to_string()),
        Some(&serde_json::json!({"balance_brl": before.map(text)})),
        Some(
            &serde_json::json!({"balance_brl": text(after), "amount_brl": text(amount_brl_micros),
                                 "idempotency_key": idempotency_key}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(entry)
}

/// A ledger entry as a statement lists it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatementRow {
    /// Sequence number.
    pub ledger_entry_id: i64,
    /// `topup`, `adjustment`, `usage`, `refund` or `hold` (a refund request's, `store::refunds`).
    pub kind: String,
    /// Credit > 0, debit < 0 (micro-BRL).
    pub amount_brl_micros: i64,
    /// Balance after this entry (micro-BRL).
    pub balance_after_brl_micros: i64,
    /// The request a `usage` entry paid for.
    pub request_id: Option<String>,
    /// The caller's key of a top-up, refund or adjustment.
    pub idempotency_key: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// When it was written.
    pub created_at: time::OffsetDateTime,
}

/// An organization's balance and latest entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Balance, micro-BRL (`None`: postpaid).
    pub balance: Option<i64>,
    /// The latest entries, newest first.
    pub entries: Vec<StatementRow>,
}

/// An organization's balance (`None` when postpaid) and its latest `limit` (at most 10 000)
/// entries, newest first, read in one snapshot (the balance is the newest entry's).
pub async fn statement(
    pool: &PgPool,
    organization_id: Uuid,
    limit: u32,
) -> Result<Statement, LedgerError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let Some(balance): Option<Option<i64>> = sqlx::query_scalar(
        "SELECT balance_brl_micros FROM organization WHERE organization_id = $1",
    )
    .bind(organization_id)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(LedgerError::NotFound);
    };
    let entries: Vec<StatementRow> = sqlx::query_as(
        "SELECT ledger_entry_id, kind, amount_brl_micros, balance_after_brl_micros, request_id,
                idempotency_key, description, created_at
         FROM ledger_entry WHERE organization_id = $1
         ORDER BY ledger_entry_id DESC LIMIT $2",
    )
    .bind(organization_id)
    .bind(i64::from(limit.min(10_000)))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Statement { balance, entries })
}

/// An organization's wallet, read with its balance in one statement (one snapshot) from the
/// running totals of its ledger (`ledger_total`, migration 0030).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WalletRow {
    /// The balance column, micro-BRL (`None`: postpaid).
    pub balance: Option<i64>,
    /// Top-ups, credits and adjustments (net), micro-BRL.
    pub topped_up: i64,
    /// Usage debits, as a positive amount.
    pub spent: i64,
    /// Refunds paid out (`refund` debits), as a positive amount.
    pub refunded: i64,
    /// Held by pending refund requests (−sum of `hold` entries), as a positive amount.
    pub held: i64,
    /// Top-up entries.
    pub topups: i64,
}

/// The wallet of `org`; `None` when there is no such organization. Every entry falls in
/// exactly one of `topped_up`, `spent`, `refunded` and `held` (`hold` entries, migration
/// 0027), so `topped_up − spent − refunded − held` is the sum of the entries, which the
/// balance column equals. The buckets are running totals that a trigger adds each statement's
/// new entries to, in that statement (migration 0030), so this reads one row however long the
/// ledger is; [`summed`] is what they must equal.
pub async fn wallet(pool: &PgPool, org: Uuid) -> Result<Option<WalletRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT o.balance_brl_micros AS balance,
                coalesce(t.topped_up_brl_micros, 0) AS topped_up,
                coalesce(t.spent_brl_micros, 0) AS spent,
                coalesce(t.refunded_brl_micros, 0) AS refunded,
                coalesce(t.held_brl_micros, 0) AS held,
                coalesce(t.topups, 0) AS topups
         FROM organization o LEFT JOIN ledger_total t ON t.organization_id = o.organization_id
         WHERE o.organization_id = $1",
    )
    .bind(org)
    .fetch_optional(pool)
    .await
}

/// The wallet of `org` summed from every entry of its ledger, as [`wallet`] read it before the
/// running totals: what the totals must equal (tests and audits; it reads the whole ledger).
pub async fn summed(pool: &PgPool, org: Uuid) -> Result<Option<WalletRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT o.balance_brl_micros AS balance,
                coalesce(sum(e.amount_brl_micros) FILTER (
                    WHERE e.kind NOT IN ('usage', 'hold')
                      AND NOT (e.kind = 'refund' AND e.amount_brl_micros < 0)), 0)::int8 AS topped_up,
                coalesce(-sum(e.amount_brl_micros) FILTER (WHERE e.kind = 'usage'), 0)::int8 AS spent,
                coalesce(-sum(e.amount_brl_micros) FILTER (
                    WHERE e.kind = 'refund' AND e.amount_brl_micros < 0), 0)::int8 AS refunded,
                coalesce(-sum(e.amount_brl_micros) FILTER (WHERE e.kind = 'hold'), 0)::int8 AS held,
                count(e.ledger_entry_id) FILTER (WHERE e.kind = 'topup')::int8 AS topups
         FROM organization o LEFT JOIN ledger_entry e ON e.organization_id = o.organization_id
         WHERE o.organization_id = $1
         GROUP BY o.organization_id, o.balance_brl_micros",
    )
    .bind(org)
    .fetch_optional(pool)
    .await
}
