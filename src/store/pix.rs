//! PIX charges (`pix_charge`).

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// A PIX charge as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChargeRow {
    /// Id.
    pub pix_charge_id: Uuid,
    /// Whose balance it tops up.
    pub organization_id: Uuid,
    /// Micro-BRL, whole centavos.
    pub amount_brl_micros: i64,
    /// 26 to 35 letters and digits, unique.
    pub txid: String,
    /// `pending`, `paid` or `expired` as stored (a pending one may be past its expiry).
    pub status: String,
    /// The "copia e cola" payload.
    pub br_code: String,
    /// Payments after this are refused.
    pub expires_at: time::OffsetDateTime,
    /// When the payment was credited.
    pub paid_at: Option<time::OffsetDateTime>,
    /// The payment's id in the PIX system.
    pub end_to_end_id: Option<String>,
    /// When it was made.
    pub created_at: time::OffsetDateTime,
}

const COLUMNS: &str = "pix_charge_id, organization_id, amount_brl_micros, txid, status, br_code,
                       expires_at, paid_at, end_to_end_id, created_at";

/// A new pending charge expiring in `ttl_secs`, with its audit row, in one statement (`None`:
/// no such organization).
pub async fn insert(
    pool: &PgPool,
    organization_id: Uuid,
    amount_brl_micros: i64,
    txid: &str,
    br_code: &str,
    ttl_secs: i64,
) -> Result<Option<ChargeRow>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let exists: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM organization WHERE organization_id = $1")
            .bind(organization_id)
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let row: ChargeRow = sqlx::query_as(&format!(
        "INSERT INTO pix_charge (organization_id, amount_brl_micros, txid, br_code, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
         RETURNING {COLUMNS}"
    ))
    .bind(organization_id)
    .bind(amount_brl_micros)
    .bind(txid)
    .bind(br_code)
    .bind(ttl_secs as f64)
    .fetch_one(&mut *tx)
    .await?;
    crate::store::audit::insert_change(
        &mut *tx,
        Some(organization_id),
        None,
        "pix.charge.create",
        Some(&row.pix_charge_id.to_string()),
        None,
        Some(&serde_json::json!({
            "txid": row.txid,
            "amount_brl": crate::domain::money::Micros(amount_brl_micros).decimal(),
            "status": "pending",
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(row))
}

/// One charge by id.
pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<ChargeRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM pix_charge WHERE pix_charge_id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// One charge by txid.
pub async fn by_txid(
    db: impl PgExecutor<'_>,
    txid: &str,
) -> Result<Option<ChargeRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM pix_charge WHERE txid = $1"))
        .bind(txid)
        .fetch_optional(db)
        .await
}

/// What claiming a charge for a payment did.
#[derive(Debug)]
pub enum Claim {
    /// The charge was pending, unexpired and of this amount: now paid by this payment.
    Paid(ChargeRow),
    /// Not pending any more, expired, or of another amount: nothing changed.
    NotPending,
    /// Another charge was paid by this endToEndId: nothing changed.
    EndToEndTaken,
}

/// Mark the pending, unexpired charge `txid` of `amount_brl_micros` paid by `end_to_end_id`
/// (one statement: of concurrent claims one wins), with its audit row, in one transaction.
pub async fn claim(
    pool: &PgPool,
    txid: &str,
    amount_brl_micros: i64,
    end_to_end_id: &str,
    audit_after: impl FnOnce(&ChargeRow) -> serde_json::Value,
) -> Result<Claim, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: Result<Option<ChargeRow>, sqlx::Error> = sqlx::query_as(&format!(
        "UPDATE pix_charge SET status = 'paid', paid_at = now(), end_to_end_id = $3
         WHERE txid = $1 AND amount_brl_micros = $2 AND status = 'pending' AND expires_at > now()
         RETURNING {COLUMNS}"
    ))
    .bind(txid)
    .bind(amount_brl_micros)
    .bind(end_to_end_id)
    .fetch_optional(&mut *tx)
    .await;
    let row = match row {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(Claim::NotPending),
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("pix_charge_end_to_end_id_key") => {
            return Ok(Claim::EndToEndTaken);
        }
        Err(e) => return Err(e),
    };
    crate::store::audit::insert_change(
        &mut *tx,
        Some(row.organization_id),
        None,
        "pix.charge.paid",
        Some(&row.pix_charge_id.to_string()),
        Some(&serde_json::json!({"status": "pending"})),
        Some(&audit_after(&row)),
    )
    .await?;
    tx.commit().await?;
    Ok(Claim::Paid(row))
}

/// Mark a pending charge expired.
pub async fn mark_expired(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE pix_charge SET status = 'expired' WHERE pix_charge_id = $1 AND status = 'pending'",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}
