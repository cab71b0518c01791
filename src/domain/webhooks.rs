//! Webhooks: creation rules, and delivery: the admin app sends the rows of `webhook_delivery` (written by the usage
//! writer in the statement that crosses a plan's quota) to their webhooks' URLs.
//!
//! Each process claims due rows with `FOR UPDATE SKIP LOCKED` and a lease, so several admin
//! processes never send one row twice at once. A delivery is a `POST` of the JSON payload with
//! `X-Catraca-Event`, `X-Catraca-Delivery` (the attempt's UUID, for the receiver's de-duplication; a replay is a new
//! attempt with a new id) and,
//! when the webhook has a secret, `X-Catraca-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">` (the time of this send, so a receiver can refuse old replays; [`verify`]).
//! A 2xx answer marks it delivered and sets the webhook's `last_triggered_at`; anything else is
//! retried after 2^attempts seconds (at most an hour), and after [`MAX_ATTEMPTS`] the row is
//! `failed`. Delivery is at least once: a process that dies after the POST and before the
//! update sends it again when the lease ends. A URL whose host is or resolves to a loopback,
//! private, link-local or metadata address is not called (`domain::outbound`; loopback only
//! with `webhooks.allow_loopback`), and no redirect is followed.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use super::error::DomainError;
use super::outbound::{self, Policy};
use crate::secrets::SecretBox;
use crate::store::webhooks as db;

pub use db::WebhookRow as Webhook;

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i32 = 8;
/// How long a claimed row is held by one process.
const LEASE: Duration = Duration::from_secs(60);
/// Per-delivery timeout.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Longest webhook URL.
pub const MAX_URL: usize = 2000;
/// Signing secrets: 1 to this many bytes.
pub const MAX_SECRET: usize = 256;

/// Events a webhook may subscribe to.
pub const EVENTS: &[&str] = &[
    "usage_limit_reached",
    "payment_failed",
    "plan_changed",
    "api_key_created",
    "api_key_revoked",
    // a Tokia spending alert with `channel: webhook` fired (`domain::alerts`)
    "alert_fired",
];

/// What a webhook sender needs: the database, the box that opens signing secrets, and what
/// calls may reach.
#[derive(Clone)]
pub struct Sender {
    /// Database.
    pub pool: PgPool,
    /// Opens sealed signing secrets.
    pub secrets: Option<Arc<SecretBox>>,
    /// Where calls may go.
    pub outbound: Policy,
}

/// A webhook to create.
#[derive(Debug)]
pub struct NewWebhook {
    /// `http(s)://` URL with a host, at most [`MAX_URL`] bytes, not internal.
    pub url: String,
    /// One or more of [`EVENTS`], each once.
    pub events: Vec<String>,
    /// Signing secret, 1 to [`MAX_SECRET`] bytes.
    pub secret: Option<String>,
}

/// Create a webhook for `org` (the caller's rights are checked by the caller), audited. Its
/// secret is sealed at rest; without `CATRACA_SECRET_KEY` a secret cannot be stored
/// ([`DomainError::NotConfigured`]).
pub async fn create(
    s: &Sender,
    actor: Option<Uuid>,
    org: Uuid,
    new: NewWebhook,
) -> Result<Webhook, DomainError> {
    let parsed: Option<http::Uri> = new.url.parse().ok();
    if new.url.len() > MAX_URL
        || !parsed
            .as_ref()
            .is_some_and(|p| matches!(p.scheme_str(), Some("http" | "https")) && p.host().is_some())
    {
        return Err(DomainError::invalid("url", "an http(s) URL with a host"));
    }
    if new.events.is_empty() || new.events.len() > EVENTS.len() {
        return Err(DomainError::invalid("events", "at least one event"));
    }
    if new
        .secret
        .as_ref()
        .is_some_and(|s| s.is_empty() || s.len() > MAX_SECRET)
    {
        return Err(DomainError::invalid("secret", "1 to 256 characters"));
    }
    // never a webhook to this machine, the private network or a metadata service
    outbound::check_at_creation(&new.url, s.outbound)
        .await
        .map_err(|_| DomainError::invalid("url", "points to an internal or private address"))?;
    if let Some(bad) = new.events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
        return Err(DomainError::invalid(
            "events",
            format!("unknown event: {bad}"),
        ));
    }
    let sealed = match (&new.secret, &s.secrets) {
        (None, _) => None,
        (Some(sec), Some(b)) => Some(b.seal(sec.as_bytes()).ok_or(DomainError::Internal)?),
        (Some(_), None) => {
            tracing::error!("webhook secret refused: CATRACA_SECRET_KEY is not configured");
            return Err(DomainError::NotConfigured("secret storage"));
        }
    };
    let mut tx = s.pool.begin().await?;
    let row = db::insert(&mut *tx, org, &new.url, &new.events, sealed.as_deref()).await?;
    super::audit::change(
        &mut *tx,
        org,
        actor,
        "webhook.create",
        &row.webhook_id.to_string(),
        None,
        Some(serde_json::json!({"url": row.url, "events": row.events, "signed": new.secret.is_some()})),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// The organization's webhooks.
pub async fn list(pool: &PgPool, org: Uuid) -> Result<Vec<Webhook>, DomainError> {
    Ok(db::of_org(pool, org).await?)
}

/// Most attempts one listing shows.
pub const MAX_ATTEMPTS_LISTED: i64 = 200;

/// The newest `limit` (1–200) delivery attempts of webhook `id`, newest first (operator).
pub async fn attempts(
    pool: &PgPool,
    id: Uuid,
    limit: i64,
) -> Result<Vec<db::AttemptListRow>, DomainError> {
    if !(1..=MAX_ATTEMPTS_LISTED).contains(&limit) {
        return Err(DomainError::invalid("limit", "an integer from 1 to 200"));
    }
    db::attempts(pool, id, limit)
        .await?
        .ok_or(DomainError::NotFound(super::error::Entity::Webhook))
}

/// Send due deliveries until shutdown (polls every `every`).
pub async fn run(s: Sender, every: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        match deliver_due(&s).await {
            Ok(n) if n > 0 => continue, // more may be due
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "webhook delivery: database error"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Claim and send up to 20 due deliveries; returns how many were attempted.
pub async fn deliver_due(s: &Sender) -> Result<usize, sqlx::Error> {
    let due = db::claim_due(&s.pool, 20, LEASE.as_secs_f64()).await?;
    let n = due.len();
    for d in due {
        let id = d.webhook_delivery_id;
        let attempts = d.attempts;
        let body = d.payload.to_string();
        // resolved and checked now, then called at exactly the addresses checked, no redirects
        let client = match outbound::resolve(&d.url, s.outbound).await {
            Ok((host, addrs)) => match outbound::pinned_client(&host, &addrs, TIMEOUT) {
                Ok(c) => c,
                Err(e) => {
                    fail(s, id, attempts, None, &e.without_url().to_string()).await?;
                    continue;
                }
            },
            Err(refused) => {
                fail(s, id, attempts, None, &format!("not called: {refused}")).await?;
                continue;
            }
        };
        let mut req = client
            .post(&d.url)
            .timeout(TIMEOUT)
            .header("content-type", "application/json")
            .header("x-catraca-event", &d.event)
            .header("x-catraca-delivery", d.attempt_id.to_string());
        if let Some(sealed) = &d.secret_sealed {
            let Some(secret) = s.secrets.as_ref().and_then(|b| b.open(sealed)) else {
                // never send unsigned what the subscriber expects signed
                fail(s, id, attempts, None, "the signing secret cannot be opened").await?;
                continue;
            };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            req = req.header(
                "x-catraca-signature",
                signature(&secret, now, body.as_bytes()),
            );
        }
        match req.body(body).send().await {
            Ok(r) if r.status().is_success() => {
                db::mark_delivered(&s.pool, id, d.webhook_id, r.status().as_u16()).await?;
            }
            Ok(r) => {
                let status = r.status().as_u16();
                fail(s, id, attempts, Some(status), "non-2xx answer").await?;
            }
            // the URL is the subscriber's; its host and path may be logged, never the secret
            Err(e) => fail(s, id, attempts, None, &e.without_url().to_string()).await?,
        }
    }
    Ok(n)
}

async fn fail(
    s: &Sender,
    id: i64,
    attempts: i32,
    status: Option<u16>,
    error: &str,
) -> Result<(), sqlx::Error> {
    let attempts = attempts + 1;
    let backoff = 2f64.powi(attempts.min(12)).min(3600.0);
    tracing::info!(
        delivery = id,
        attempts,
        ?status,
        error,
        "webhook delivery failed"
    );
    db::mark_attempt_failed(&s.pool, id, attempts, status, error, MAX_ATTEMPTS, backoff).await
}

pub use db::AttemptRow as Attempt;

/// Give `org`'s webhook a new random signing secret, answered once and sealed at rest; the old
/// one signs nothing from now on (every send reads the webhook's current secret). Audited with
/// the secret redacted. Another organization's webhook is [`Entity::Webhook`] not found; without
/// `CATRACA_SECRET_KEY`, [`DomainError::NotConfigured`].
pub async fn rotate_secret(
    s: &Sender,
    actor: Option<Uuid>,
    org: Uuid,
    webhook: Uuid,
) -> Result<String, DomainError> {
    let Some(b) = &s.secrets else {
        tracing::error!("webhook secret rotation refused: CATRACA_SECRET_KEY is not configured");
        return Err(DomainError::NotConfigured("secret storage"));
    };
    let secret = super::accounts::random_token();
    let sealed = b.seal(secret.as_bytes()).ok_or(DomainError::Internal)?;
    let mut tx = s.pool.begin().await?;
    if !db::set_secret(&mut *tx, org, webhook, &sealed).await? {
        return Err(DomainError::NotFound(super::error::Entity::Webhook));
    }
    super::audit::change(
        &mut *tx,
        org,
        actor,
        "webhook.rotate_secret",
        &webhook.to_string(),
        None,
        Some(serde_json::json!({"secret": secret})),
    )
    .await?;
    tx.commit().await?;
    Ok(secret)
}

/// Queue a new attempt cloning `org`'s attempt `attempt` (same webhook, event and payload; a
/// new attempt id; signed with the webhook's secret and sent when due). A replay of a replay
/// replays its original; while a replay of that original is still queued, that one is the
/// answer (`false`: nothing new). Another organization's attempt is not found.
pub async fn replay(
    pool: &PgPool,
    org: Uuid,
    attempt: Uuid,
) -> Result<(Attempt, bool), DomainError> {
    let mut tx = pool.begin().await?;
    let src = db::attempt_for_update(&mut *tx, org, attempt)
        .await?
        .ok_or(DomainError::NotFound(super::error::Entity::WebhookAttempt))?;
    let original = src.replay_of.unwrap_or(src.webhook_delivery_id);
    db::lock_delivery(&mut *tx, original).await?;
    if let Some(queued) = db::queued_replay(&mut *tx, original).await? {
        return Ok((queued, false));
    }
    let new = db::insert_replay(&mut *tx, original).await?;
    tx.commit().await?;
    Ok((new, true))
}

/// `t=<unix_secs>,v1=<hex HMAC-SHA256(secret, "<unix_secs>.<body>")>`.
pub fn signature(secret: &[u8], unix_secs: i64, body: &[u8]) -> String {
    format!(
        "t={unix_secs},v1={}",
        hex::encode(mac(secret, unix_secs, body))
    )
}

fn mac(secret: &[u8], unix_secs: i64, body: &[u8]) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return Vec::new(); // HMAC takes keys of any length
    };
    mac.update(unix_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// What a receiver does with `X-Catraca-Signature`: the signing time when `header` is a
/// signature of `body` with `secret` (compared in constant time), else `None`. The receiver
/// then refuses times too far from its clock.
pub fn verify(secret: &[u8], header: &str, body: &[u8]) -> Option<i64> {
    let (mut t, mut v1) = (None, None);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (t, v1) = (t?, v1?);
    let mut m = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.verify_slice(&v1).ok().map(|()| t)
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_signs_the_time_and_the_body() {
        // HMAC-SHA256 with RFC 4231 case 2's key over "1700000000.<its data>" (checked with
        // Python's hmac module)
        let body = b"what do ya want for nothing?";
        let sig = super::signature(b"Jefe", 1_700_000_000, body);
        assert_eq!(
            sig,
            "t=1700000000,v1=1cdd0650c8be1cb0974b1788d458b1e781206cfef59b85faafc582d2e182c57e"
        );
        assert_eq!(super::verify(b"Jefe", &sig, body), Some(1_700_000_000));
        assert_eq!(super::verify(b"Jefx", &sig, body), None, "another secret");
        assert_eq!(
            super::verify(b"Jefe", &sig, b"what do ya want for nothing!"),
            None
        );
        let moved = sig.replace("t=1700000000", "t=1700000001");
        assert_eq!(
            super::verify(b"Jefe", &moved, body),
            None,
            "the time is signed"
        );
        for bad in ["", "t=1", "v1=00", "t=x,v1=zz", "sha256=00"] {
            assert_eq!(super::verify(b"Jefe", bad, body), None, "{bad}");
        }
    }
}
