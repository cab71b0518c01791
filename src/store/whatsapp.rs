//! PyTake's WhatsApp rows (`whatsapp_number`, `whatsapp_message`, `whatsapp_event`). Reads
//! and writes are scoped to an organization, except the webhook's lookup of a number by its
//! Graph id (which is how a webhook finds its organization).

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// One number.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NumberRow {
    /// Id.
    pub number_id: Uuid,
    /// Owner.
    pub organization_id: Uuid,
    /// Graph id of the number.
    pub phone_number_id: String,
    /// The WhatsApp Business Account.
    pub waba_id: String,
    /// The vault secret holding its token.
    pub secret_id: Option<Uuid>,
    /// Display phone number.
    pub phone_number: String,
    /// Verified name.
    pub display_name: String,
    /// `active`, `inactive` or `pending`.
    pub status: String,
    /// Whether Meta verified it.
    pub verified: bool,
    /// Registered.
    pub created_at: OffsetDateTime,
}

const NUMBER: &str =
    "number_id, organization_id, phone_number_id, waba_id, secret_id, phone_number,
     display_name, status, verified, created_at";

/// The organization's numbers, oldest first.
pub async fn numbers(pool: &PgPool, org: Uuid) -> Result<Vec<NumberRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {NUMBER} FROM whatsapp_number WHERE organization_id = $1
         ORDER BY created_at, number_id"
    ))
    .bind(org)
    .fetch_all(pool)
    .await
}

/// The number a send goes out through: `phone_number_id` when given, else the organization's
/// oldest active number.
pub async fn sender(
    pool: &PgPool,
    org: Uuid,
    phone_number_id: Option<&str>,
) -> Result<Option<NumberRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {NUMBER} FROM whatsapp_number
         WHERE organization_id = $1 AND ($2::text IS NULL OR phone_number_id = $2)
         ORDER BY (status = 'active') DESC, created_at, number_id LIMIT 1"
    ))
    .bind(org)
    .bind(phone_number_id)
    .fetch_optional(pool)
    .await
}

/// A number by its Graph id, whatever its organization (webhooks).
pub async fn by_phone_number_id(
    pool: &PgPool,
    pnid: &str,
) -> Result<Option<NumberRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {NUMBER} FROM whatsapp_number WHERE phone_number_id = $1"
    ))
    .bind(pnid)
    .fetch_optional(pool)
    .await
}

/// What the Graph API says of a number.
#[derive(Debug, Clone, Copy)]
pub struct NumberFields<'a> {
    /// Graph id.
    pub phone_number_id: &'a str,
    /// WABA.
    pub waba_id: &'a str,
    /// Token secret.
    pub secret_id: Uuid,
    /// Display phone number.
    pub phone_number: &'a str,
    /// Verified name.
    pub display_name: &'a str,
    /// `active`, `inactive` or `pending`.
    pub status: &'a str,
    /// Verified.
    pub verified: bool,
}

/// Insert or refresh a number of `org`; `None` when its Graph id belongs to another
/// organization (nothing changed).
pub async fn upsert_number(
    pool: &PgPool,
    org: Uuid,
    n: NumberFields<'_>,
) -> Result<Option<NumberRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO whatsapp_number (organization_id, phone_number_id, waba_id, secret_id,
             phone_number, display_name, status, verified)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (phone_number_id) DO UPDATE SET waba_id = EXCLUDED.waba_id,
             secret_id = EXCLUDED.secret_id, phone_number = EXCLUDED.phone_number,
             display_name = EXCLUDED.display_name, status = EXCLUDED.status,
             verified = EXCLUDED.verified
         WHERE whatsapp_number.organization_id = EXCLUDED.organization_id
         RETURNING {NUMBER}"
    ))
    .bind(org)
    .bind(n.phone_number_id)
    .bind(n.waba_id)
    .bind(n.secret_id)
    .bind(n.phone_number)
    .bind(n.display_name)
    .bind(n.status)
    .bind(n.verified)
    .fetch_optional(pool)
    .await
}

/// A message row to insert.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    /// Owner.
    pub organization_id: Uuid,
    /// Through this number.
    pub number_id: Uuid,
    /// WhatsApp's id.
    pub wamid: &'a str,
    /// `out` or `in`.
    pub direction: &'a str,
    /// The other party.
    pub peer: &'a str,
    /// `text`, `template`, ...
    pub kind: &'a str,
    /// Text.
    pub body: Option<&'a str>,
    /// Template name.
    pub template_name: Option<&'a str>,
    /// Initial status.
    pub status: &'a str,
    /// The automation job that sent it.
    pub job_id: Option<Uuid>,
}

/// Insert a message; false when its `wamid` is stored already.
pub async fn insert_message(pool: &PgPool, m: NewMessage<'_>) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    lock_wamid(&mut tx, m.wamid).await?;
    let r = sqlx::query(
        "INSERT INTO whatsapp_message (organization_id, number_id, wamid, direction, peer, kind,
             body, template_name, status, job_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (wamid) DO NOTHING",
    )
    .bind(m.organization_id)
    .bind(m.number_id)
    .bind(m.wamid)
    .bind(m.direction)
    .bind(m.peer)
    .bind(m.kind)
    .bind(m.body)
    .bind(m.template_name)
    .bind(m.status)
    .bind(m.job_id)
    .execute(&mut *tx)
    .await?;
    let new = r.rows_affected() == 1;
    if new && m.direction == "out" {
        // The Cloud API may post `sent` (even `delivered`) before the send's reply reaches us
        // and this row exists: statuses recorded for the wamid are applied now, in order.
        let early: Vec<String> = sqlx::query_scalar(
            "SELECT status FROM whatsapp_event
             WHERE organization_id = $1 AND wamid = $2 AND kind = 'status'
             ORDER BY event_id",
        )
        .bind(m.organization_id)
        .bind(m.wamid)
        .fetch_all(&mut *tx)
        .await?;
        for status in &early {
            advance(&mut tx, m.organization_id, m.wamid, status).await?;
        }
    }
    tx.commit().await?;
    Ok(new)
}

/// Serialises the storing of an outbound message with the statuses posted for it, so that a
/// status arriving while the message is being stored is applied by one side or the other.
async fn lock_wamid(tx: &mut sqlx::PgConnection, wamid: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('whatsapp:' || $1, 0))")
        .bind(wamid)
        .execute(tx)
        .await?;
    Ok(())
}

/// Moves an outbound message forward only (accepted < sent < delivered < read; failed from
/// any state but read).
async fn advance(
    tx: &mut sqlx::PgConnection,
    org: Uuid,
    wamid: &str,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE whatsapp_message SET status = $3
         WHERE organization_id = $1 AND wamid = $2 AND direction = 'out' AND (
           ($3 = 'failed' AND status NOT IN ('failed', 'read'))
           OR (array_position(ARRAY['accepted','sent','delivered','read'], status)
               < array_position(ARRAY['accepted','sent','delivered','read'], $3::text)))",
    )
    .bind(org)
    .bind(wamid)
    .bind(status)
    .execute(tx)
    .await?;
    Ok(())
}

/// Record a webhook event under its key and apply it, in one transaction: false (nothing
/// changed) when the key was recorded before. A status moves an outbound message forward
/// only; one that arrives before the message is stored is applied when it is.
pub async fn apply_status(
    pool: &PgPool,
    org: Uuid,
    wamid: &str,
    status: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    lock_wamid(&mut tx, wamid).await?;
    let new = sqlx::query(
        "INSERT INTO whatsapp_event (organization_id, event_key, kind, wamid, status)
         VALUES ($1, $2, 'status', $3, $4) ON CONFLICT (event_key) DO NOTHING",
    )
    .bind(org)
    .bind(format!("status:{wamid}:{status}"))
    .bind(wamid)
    .bind(status)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if new {
        advance(&mut tx, org, wamid, status).await?;
    }
    tx.commit().await?;
    Ok(new)
}

/// Record a received message's event key and store the message, in one transaction: false
/// when it was applied before.
pub async fn apply_message(pool: &PgPool, m: NewMessage<'_>) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let new = sqlx::query(
        "INSERT INTO whatsapp_event (organization_id, event_key, kind, wamid)
         VALUES ($1, $2, 'message', $3) ON CONFLICT (event_key) DO NOTHING",
    )
    .bind(m.organization_id)
    .bind(format!("message:{}", m.wamid))
    .bind(m.wamid)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if new {
        sqlx::query(
            "INSERT INTO whatsapp_message (organization_id, number_id, wamid, direction, peer,
                 kind, body, status)
             VALUES ($1, $2, $3, 'in', $4, $5, $6, 'received') ON CONFLICT (wamid) DO NOTHING",
        )
        .bind(m.organization_id)
        .bind(m.number_id)
        .bind(m.wamid)
        .bind(m.peer)
        .bind(m.kind)
        .bind(m.body)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(new)
}
