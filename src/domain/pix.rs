//! PIX top-ups: a charge is a dynamic, one-use BR Code ("copia e cola") for an organization's
//! prepaid balance; the PSP's payment webhook credits the ledger exactly once per
//! `endToEndId` and marks the charge paid.
//!
//! The BR Code is an EMV MPM payload as the BCB's "Manual de Padrões para Iniciação do Pix"
//! defines it: `00` payload format `01`, `01` point of initiation `12` (one use), `26` merchant
//! account (`00` GUI `br.gov.bcb.pix`, `01` the receiver's PIX key), `52` `0000`, `53` `986`
//! (BRL), `54` the amount with 2 decimals, `58` `BR`, `59` merchant name (≤ 25, ASCII), `60`
//! city (≤ 15, ASCII), `62` additional data (`05` the txid) and `63` the CRC16/CCITT-FALSE of
//! everything before it, `6304` included, as 4 uppercase hex digits.
//!
//! The receiver comes from the config's `pix:` section, installed by the config loader
//! ([`install`]); without it every PIX route answers 503 naming what is missing.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::PgPool;
use uuid::Uuid;

use super::error::DomainError;
use super::money::Micros;
pub use crate::config::resolve::PixConfig;
use crate::store::pix as db;

/// Smallest charge: R$ 1.00.
pub const MIN_AMOUNT: Micros = Micros(1_000_000);
/// Largest charge: R$ 100,000.00.
pub const MAX_AMOUNT: Micros = Micros(100_000_000_000);
/// The GUI of field 26.
pub const GUI: &str = "br.gov.bcb.pix";

/// The PIX receiver of the config now serving (`None`: PIX routes answer 503). One handle is
/// shared by the gateway, which sets it on start and on each accepted reload, and the admin
/// app, which reads it per request.
#[derive(Debug, Clone, Default)]
pub struct Receiver(Arc<ArcSwapOption<PixConfig>>);

impl Receiver {
    /// A handle holding `config`.
    pub fn new(config: Option<PixConfig>) -> Receiver {
        Receiver(Arc::new(ArcSwapOption::new(config.map(Arc::new))))
    }

    /// Serve `config` from now on.
    pub fn set(&self, config: Option<PixConfig>) {
        self.0.store(config.map(Arc::new));
    }

    /// The receiver, or 503 naming the missing section.
    pub fn get(&self) -> Result<Arc<PixConfig>, DomainError> {
        self.0.load_full().ok_or(DomainError::NotConfigured(
            "PIX (the config's pix: section with key, merchant_name and merchant_city)",
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// BR Code: CRC, encoder, parser

/// CRC16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor).
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// One EMV field: id, 2-digit length, value (ASCII; at most 99 characters).
fn tlv(out: &mut String, id: &str, value: &str) -> Result<(), DomainError> {
    if value.len() > 99 || !value.is_ascii() {
        return Err(DomainError::invalid(
            "br_code",
            format!("field {id} is longer than 99 characters or not ASCII"),
        ));
    }
    out.push_str(id);
    out.push_str(&format!("{:02}", value.len()));
    out.push_str(value);
    Ok(())
}

/// The amount as field 54 writes it (`10.00`): whole centavos only.
pub fn amount_text(amount: Micros) -> Result<String, DomainError> {
    if amount.0 <= 0 || amount.0 % 10_000 != 0 {
        return Err(DomainError::invalid(
            "amount_brl",
            "a positive amount in whole centavos (at most 2 decimal places)",
        ));
    }
    let cents = amount.0 / 10_000;
    Ok(format!("{}.{:02}", cents / 100, cents % 100))
}

/// Text folded to printable ASCII: accented Latin letters lose their accents, anything else
/// outside ASCII is dropped.
pub fn ascii_fold(text: &str) -> String {
    text.chars()
        .filter_map(|c| {
            if c.is_ascii() {
                return (!c.is_ascii_control()).then_some(c);
            }
            let base = match c {
                'á' | 'à' | 'â' | 'ã' | 'ä' | 'å' => 'a',
                'Á' | 'À' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'A',
                'é' | 'è' | 'ê' | 'ë' => 'e',
                'É' | 'È' | 'Ê' | 'Ë' => 'E',
                'í' | 'ì' | 'î' | 'ï' => 'i',
                'Í' | 'Ì' | 'Î' | 'Ï' => 'I',
                'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
                'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ö' => 'O',
                'ú' | 'ù' | 'û' | 'ü' => 'u',
                'Ú' | 'Ù' | 'Û' | 'Ü' => 'U',
                'ç' => 'c',
                'Ç' => 'C',
                'ñ' => 'n',
                'Ñ' => 'N',
                _ => return None,
            };
            Some(base)
        })
        .collect()
}

/// What a BR Code carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrCode {
    /// The receiver's PIX key (field 26, sub 01).
    pub key: String,
    /// Field 54, micro-BRL.
    pub amount: Micros,
    /// Field 59 (ASCII, at most 25).
    pub merchant_name: String,
    /// Field 60 (ASCII, at most 15).
    pub merchant_city: String,
    /// Field 62, sub 05.
    pub txid: String,
}

/// The dynamic, one-use BR Code of a charge.
pub fn encode(c: &BrCode) -> Result<String, DomainError> {
    let name = ascii_fold(&c.merchant_name);
    let city = ascii_fold(&c.merchant_city);
    if name.is_empty() || name.len() > 25 {
        return Err(DomainError::invalid("merchant_name", "1 to 25 characters"));
    }
    if city.is_empty() || city.len() > 15 {
        return Err(DomainError::invalid("merchant_city", "1 to 15 characters"));
    }
    let mut account = String::new();
    tlv(&mut account, "00", GUI)?;
    tlv(&mut account, "01", &c.key)?;
    let mut extra = String::new();
    tlv(&mut extra, "05", &c.txid)?;
    let mut out = String::with_capacity(200);
    tlv(&mut out, "00", "01")?;
    tlv(&mut out, "01", "12")?;
    tlv(&mut out, "26", &account)?;
    tlv(&mut out, "52", "0000")?;
    tlv(&mut out, "53", "986")?;
    tlv(&mut out, "54", &amount_text(c.amount)?)?;
    tlv(&mut out, "58", "BR")?;
    tlv(&mut out, "59", &name)?;
    tlv(&mut out, "60", &city)?;
    tlv(&mut out, "62", &extra)?;
    out.push_str("6304");
    let crc = crc16(out.as_bytes());
    out.push_str(&format!("{crc:04X}"));
    Ok(out)
}

/// The top-level fields of an EMV payload, in order, after checking its CRC (field 63 last).
pub fn parse_fields(payload: &str) -> Result<Vec<(String, String)>, String> {
    if !payload.is_ascii() {
        return Err("not ASCII".into());
    }
    let fields = split_tlv(payload)?;
    match fields.last() {
        Some((id, crc)) if id == "63" && crc.len() == 4 => {
            let body = &payload[..payload.len() - 4];
            let want = format!("{:04X}", crc16(body.as_bytes()));
            if *crc != want {
                return Err(format!("CRC {crc} does not match {want}"));
            }
        }
        _ => return Err("field 63 (CRC) missing or not last".into()),
    }
    Ok(fields)
}

/// `id len value` triples of an ASCII text.
pub fn split_tlv(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (id, after) = rest
            .split_at_checked(2)
            .ok_or_else(|| format!("truncated field id at {rest:?}"))?;
        let (len, after) = after
            .split_at_checked(2)
            .ok_or_else(|| format!("truncated length of field {id}"))?;
        if !id.bytes().all(|b| b.is_ascii_digit()) || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("bad field header {id}{len}"));
        }
        let n: usize = len.parse().map_err(|_| format!("bad length {len}"))?;
        let (value, after) = after
            .split_at_checked(n)
            .ok_or_else(|| format!("field {id} is shorter than its length {n}"))?;
        out.push((id.to_string(), value.to_string()));
        rest = after;
    }
    Ok(out)
}

/// A BR Code read back (CRC, payload format, point of initiation, GUI, currency and country
/// checked).
pub fn decode(payload: &str) -> Result<BrCode, String> {
    let fields = parse_fields(payload)?;
    let get = |id: &str| {
        fields
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| format!("field {id} missing"))
    };
    if get("00")? != "01" {
        return Err("field 00 must be 01".into());
    }
    if get("53")? != "986" || get("58")? != "BR" {
        return Err("not a BRL charge in BR".into());
    }
    let account = split_tlv(get("26")?)?;
    let sub = |fields: &[(String, String)], id: &str| {
        fields
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("subfield {id} missing"))
    };
    if !sub(&account, "00")?.eq_ignore_ascii_case(GUI) {
        return Err("field 26 is not a PIX account".into());
    }
    let extra = split_tlv(get("62")?)?;
    let amount = crate::config::resolve::parse_decimal_micros(get("54")?).map(Micros)?;
    Ok(BrCode {
        key: sub(&account, "01")?,
        amount,
        merchant_name: get("59")?.to_string(),
        merchant_city: get("60")?.to_string(),
        txid: sub(&extra, "05")?,
    })
}

/// A fresh txid: 32 random alphanumeric characters.
pub fn new_txid() -> String {
    use rand::Rng;
    use rand::distributions::Alphanumeric;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Whether `txid` is 26 to 35 ASCII letters and digits.
pub fn valid_txid(txid: &str) -> bool {
    (26..=35).contains(&txid.len()) && txid.bytes().all(|b| b.is_ascii_alphanumeric())
}

// ---------------------------------------------------------------------------------------------
// Charges

/// A charge as stored (`status` as stored; see [`Charge::status`]).
pub use db::ChargeRow as Charge;

impl Charge {
    /// `pending`, `paid` or `expired` (a pending charge past its expiry is expired).
    pub fn status(&self) -> &str {
        if self.status == "pending" && self.expires_at <= time::OffsetDateTime::now_utc() {
            "expired"
        } else {
            &self.status
        }
    }
}

/// A charge amount as the API takes it (`"10"`, `"10.5"`, `"10.50"`): R$ 1.00 to
/// R$ 100,000.00 in whole centavos.
pub fn parse_amount(text: &str) -> Result<Micros, DomainError> {
    let m = crate::config::resolve::parse_decimal_micros(text.trim())
        .map_err(|e| DomainError::invalid("amount_brl", e))?;
    if m % 10_000 != 0 {
        return Err(DomainError::invalid(
            "amount_brl",
            "whole centavos only (at most 2 decimal places)",
        ));
    }
    if !(MIN_AMOUNT.0..=MAX_AMOUNT.0).contains(&m) {
        return Err(DomainError::invalid(
            "amount_brl",
            "between 1.00 and 100000.00",
        ));
    }
    Ok(Micros(m))
}

/// A new pending charge of `amount` for `org`, with its BR Code and expiry (audited).
pub async fn create(
    pool: &PgPool,
    receiver: &Receiver,
    org: Uuid,
    amount: Micros,
) -> Result<Charge, DomainError> {
    let cfg = receiver.get()?;
    if !(MIN_AMOUNT.0..=MAX_AMOUNT.0).contains(&amount.0) {
        return Err(DomainError::invalid(
            "amount_brl",
            "between 1.00 and 100000.00",
        ));
    }
    let txid = new_txid();
    let br_code = encode(&BrCode {
        key: cfg.key.clone(),
        amount,
        merchant_name: cfg.merchant_name.clone(),
        merchant_city: cfg.merchant_city.clone(),
        txid: txid.clone(),
    })?;
    let ttl = i64::try_from(cfg.charge_ttl.as_secs()).unwrap_or(3600);
    match db::insert(pool, org, amount.0, &txid, &br_code, ttl).await? {
        Some(c) => Ok(c),
        None => Err(DomainError::NotFound(super::Entity::Organization)),
    }
}

/// One charge (`None`: no such id).
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<Charge>, DomainError> {
    Ok(db::get(pool, id).await?)
}

/// One charge of `org` (another organization's is `None`).
pub async fn get_of_org(pool: &PgPool, org: Uuid, id: Uuid) -> Result<Option<Charge>, DomainError> {
    Ok(db::get(pool, id)
        .await?
        .filter(|c| c.organization_id == org))
}

// ---------------------------------------------------------------------------------------------
// The PSP's webhook

/// Check `X-Signature: sha256=<hex HMAC-SHA256 of the raw body>` with the PSP secret, in
/// constant time. No secret configured: 503 naming it; a missing or wrong signature: 401.
pub fn verify_signature(
    receiver: &Receiver,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), DomainError> {
    let cfg = receiver.get()?;
    let Some(secret) = cfg.webhook_secret.as_deref() else {
        return Err(DomainError::NotConfigured(
            "the PIX webhook secret (env CATRACA_PIX_WEBHOOK_SECRET, or the variable pix.webhook_secret_env names)",
        ));
    };
    let bad = || DomainError::Unauthorized(super::Unauthorized::BadToken);
    let hex_sig = header
        .map(str::trim)
        .and_then(|h| h.strip_prefix("sha256="))
        .ok_or_else(bad)?;
    let given = hex::decode(hex_sig.trim()).map_err(|_| bad())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|e| DomainError::internal("pix hmac key", e))?;
    mac.update(body);
    // `verify_slice` compares in constant time
    mac.verify_slice(&given).map_err(|_| bad())
}

/// The signature header value of `body` with `secret` (`sha256=<hex>`), as a PSP sends it.
pub fn sign(secret: &str, body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::new(),
    }
}

/// One payment of the webhook (`{"endToEndId","txid","valor","horario"}`).
#[derive(Debug, Clone)]
pub struct Payment {
    /// The payment's unique id in the PIX system.
    pub end_to_end_id: String,
    /// The charge's txid.
    pub txid: String,
    /// The amount paid, decimal text (`"10.00"`).
    pub valor: String,
    /// When it was paid (RFC 3339), as the PSP says.
    pub horario: Option<String>,
}

/// What a payment did.
#[derive(Debug)]
pub enum Settled {
    /// The balance was credited now.
    Credited(Charge),
    /// This `endToEndId` was credited before: nothing changed.
    Duplicate(Charge),
}

/// Why a payment was refused (nothing changed; each is logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A malformed endToEndId, txid or amount.
    Malformed,
    /// No charge has this txid.
    UnknownCharge,
    /// The charge expired before the payment.
    Expired,
    /// The amount differs from the charge's.
    AmountMismatch,
    /// The charge was paid by another payment.
    AlreadyPaid,
}

impl Refusal {
    /// A stable code.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed_payment",
            Refusal::UnknownCharge => "unknown_charge",
            Refusal::Expired => "charge_expired",
            Refusal::AmountMismatch => "amount_mismatch",
            Refusal::AlreadyPaid => "charge_already_paid",
        }
    }
}

/// Whether an endToEndId looks like one (1 to 35 ASCII letters and digits; the BCB's are 32).
fn valid_e2e(id: &str) -> bool {
    (1..=35).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Credit one payment: exactly once per `endToEndId`, also when the same delivery comes
/// twice or concurrently. The charge is claimed first (one `UPDATE … WHERE status = 'pending'`,
/// audited: of concurrent deliveries one wins, and `end_to_end_id` is unique), then the ledger
/// is credited with the endToEndId as its idempotency key. A delivery that finds the charge
/// paid by the same endToEndId posts that entry again, which the ledger answers with the first
/// one, so a failure between the two steps is healed by the PSP's retry and nothing is ever
/// credited twice. No step holds a row lock while it waits for another connection. An unknown
/// or expired charge, or another amount, is refused and logged.
pub async fn settle(pool: &PgPool, p: &Payment) -> Result<Result<Settled, Refusal>, DomainError> {
    let refuse = |r: Refusal| {
        tracing::warn!(
            txid = %p.txid.escape_debug(),
            end_to_end_id = %p.end_to_end_id.escape_debug(),
            valor = %p.valor.escape_debug(),
            reason = r.code(),
            "PIX payment refused"
        );
        Ok(Err(r))
    };
    if !valid_e2e(&p.end_to_end_id) || !valid_txid(&p.txid) {
        return refuse(Refusal::Malformed);
    }
    let Ok(paid) = crate::config::resolve::parse_decimal_micros(p.valor.trim()) else {
        return refuse(Refusal::Malformed);
    };
    let audit_after = |c: &Charge| {
        super::audit::redact(serde_json::json!({
            "status": "paid",
            "txid": c.txid,
            "end_to_end_id": p.end_to_end_id,
            "amount_brl": Micros(c.amount_brl_micros).decimal(),
            "horario": p.horario,
        }))
    };
    let claimed = db::claim(pool, &p.txid, paid, &p.end_to_end_id, audit_after).await?;
    let (charge, fresh) = match claimed {
        db::Claim::Paid(c) => (c, true),
        db::Claim::EndToEndTaken => return refuse(Refusal::AlreadyPaid),
        db::Claim::NotPending => {
            let Some(c) = db::by_txid(pool, &p.txid).await? else {
                return refuse(Refusal::UnknownCharge);
            };
            if c.status == "paid" {
                if c.end_to_end_id.as_deref() != Some(p.end_to_end_id.as_str()) {
                    return refuse(Refusal::AlreadyPaid);
                }
                (c, false)
            } else if c.status() == "expired" {
                db::mark_expired(pool, c.pix_charge_id).await?;
                return refuse(Refusal::Expired);
            } else if c.amount_brl_micros != paid {
                return refuse(Refusal::AmountMismatch);
            } else {
                // pending, unexpired, this amount, yet not claimed: its expiry passed between
                // the two statements
                return refuse(Refusal::Expired);
            }
        }
    };
    let entry = super::ledger::post(
        pool,
        charge.organization_id,
        "topup",
        Micros(charge.amount_brl_micros),
        &p.end_to_end_id,
        Some(&format!("PIX {}", charge.txid)),
    )
    .await?;
    if fresh {
        tracing::info!(
            txid = %charge.txid,
            end_to_end_id = %p.end_to_end_id,
            ledger_entry_id = entry.ledger_entry_id,
            "PIX payment credited"
        );
        Ok(Ok(Settled::Credited(charge)))
    } else {
        Ok(Ok(Settled::Duplicate(charge)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the BCB's "Manual de Padrões para Iniciação do Pix" (static key, no
    /// amount, txid `***`), whose published CRC is 1D3D.
    const BCB_EXAMPLE: &str = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D";

    #[test]
    fn crc16_matches_the_published_example_and_the_check_value() {
        let body = &BCB_EXAMPLE[..BCB_EXAMPLE.len() - 4];
        assert!(body.ends_with("6304"));
        assert_eq!(crc16(body.as_bytes()), 0x1D3D);
        assert_eq!(format!("{:04X}", crc16(body.as_bytes())), "1D3D");
        // the CRC-16/CCITT-FALSE check value of the catalogue
        assert_eq!(crc16(b"123456789"), 0x29B1);
        let fields = parse_fields(BCB_EXAMPLE).unwrap();
        assert_eq!(
            fields.last().unwrap(),
            &("63".to_string(), "1D3D".to_string())
        );
        let mut broken = BCB_EXAMPLE.to_string();
        broken.replace_range(60..61, "X");
        assert!(parse_fields(&broken).is_err());
    }

    #[test]
    fn encoder_round_trips_every_field() {
        let c = BrCode {
            key: "123e4567-e12b-12d1-a456-426655440000".into(),
            amount: Micros(10_500_000),
            merchant_name: "Padaria São João Ltda".into(),
            merchant_city: "São Paulo".into(),
            txid: "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345".into(),
        };
        let code = encode(&c).unwrap();
        assert!(code.is_ascii());
        let fields = parse_fields(&code).unwrap();
        let ids: Vec<&str> = fields.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(
            ids,
            [
                "00", "01", "26", "52", "53", "54", "58", "59", "60", "62", "63"
            ]
        );
        let f = |id: &str| fields.iter().find(|(i, _)| i == id).unwrap().1.clone();
        assert_eq!(f("00"), "01");
        assert_eq!(f("01"), "12");
        assert_eq!(
            f("26"),
            "0014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
        );
        assert_eq!(f("52"), "0000");
        assert_eq!(f("53"), "986");
        assert_eq!(f("54"), "10.50");
        assert_eq!(f("58"), "BR");
        assert_eq!(f("59"), "Padaria Sao Joao Ltda");
        assert_eq!(f("60"), "Sao Paulo");
        assert_eq!(f("62"), "0532ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
        let crc = f("63");
        assert_eq!(crc.len(), 4);
        assert_eq!(crc, crc.to_ascii_uppercase());
        let back = decode(&code).unwrap();
        assert_eq!(back.key, c.key);
        assert_eq!(back.amount, c.amount);
        assert_eq!(back.txid, c.txid);
        assert_eq!(back.merchant_name, "Padaria Sao Joao Ltda");
        assert_eq!(back.merchant_city, "Sao Paulo");
    }

    #[test]
    fn amounts_are_whole_centavos_in_range() {
        assert_eq!(amount_text(Micros(1_000_000)).unwrap(), "1.00");
        assert_eq!(amount_text(Micros(123_450_000)).unwrap(), "123.45");
        assert_eq!(amount_text(Micros(100_000_000_000)).unwrap(), "100000.00");
        assert!(amount_text(Micros(1_005_000)).is_err());
        assert!(amount_text(Micros(0)).is_err());
        assert_eq!(parse_amount("10").unwrap(), Micros(10_000_000));
        assert_eq!(parse_amount("10.5").unwrap(), Micros(10_500_000));
        for bad in ["0.99", "10.001", "100000.01", "-5", "abc", "", "1e3"] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_folded_and_bounded() {
        assert_eq!(ascii_fold("Açaí Ñandú"), "Acai Nandu");
        let long = BrCode {
            key: "k".into(),
            amount: Micros(1_000_000),
            merchant_name: "x".repeat(26),
            merchant_city: "c".into(),
            txid: new_txid(),
        };
        assert!(encode(&long).is_err());
    }

    #[test]
    fn txids_are_fresh_and_valid() {
        let a = new_txid();
        assert!(valid_txid(&a));
        assert_ne!(a, new_txid());
        assert!(!valid_txid("short"));
        assert!(!valid_txid(&"a-".repeat(15)));
    }

    #[test]
    fn signatures_verify_in_constant_time_shape() {
        let s = sign("segredo-do-psp-0123456789", b"{}");
        assert!(s.starts_with("sha256="));
        assert_eq!(s.len(), 7 + 64);
    }
}
