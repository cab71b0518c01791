//! Webhook delivery: the admin app sends the rows of `webhook_delivery` (written by the usage
//! writer in the statement that crosses a plan's quota) to their webhooks' URLs.
//!
//! Each process claims due rows with `FOR UPDATE SKIP LOCKED` and a lease, so several admin
//! processes never send one row twice at once. A delivery is a `POST` of the JSON payload with
//! `X-Catraca-Event`, `X-Catraca-Delivery` (the row id, for the receiver's de-duplication) and,
//! when the webhook has a secret, `X-Catraca-Signature: sha256=<hex HMAC-SHA256 of the body>`.
//! A 2xx answer marks it delivered and sets the webhook's `last_triggered_at`; anything else is
//! retried after 2^attempts seconds (at most an hour), and after [`MAX_ATTEMPTS`] the row is
//! `failed`. Delivery is at least once: a process that dies after the POST and before the
//! update sends it again when the lease ends. A URL whose host is or resolves to a loopback,
//! private, link-local or metadata address is not called (`domain::outbound`; loopback only
//! with `webhooks.allow_loopback`), and no redirect is followed.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::watch;
use uuid::Uuid;

use super::AdminState;

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i32 = 8;
/// How long a claimed row is held by one process.
const LEASE: Duration = Duration::from_secs(60);
/// Per-delivery timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

type Due = (
    i64,
    Uuid,
    String,
    String,
    serde_json::Value,
    Option<Vec<u8>>,
    i32,
);

/// Send due deliveries until shutdown (polls every `every`).
pub async fn run(state: AdminState, every: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        match deliver_due(&state).await {
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
pub async fn deliver_due(state: &AdminState) -> Result<usize, sqlx::Error> {
    let due: Vec<Due> = sqlx::query_as(
        "UPDATE webhook_delivery d SET next_attempt_at = now() + make_interval(secs => $1)
         FROM webhook w
         WHERE d.webhook_delivery_id IN (
                 SELECT webhook_delivery_id FROM webhook_delivery
                 WHERE status = 'pending' AND next_attempt_at <= now()
                 ORDER BY next_attempt_at LIMIT 20 FOR UPDATE SKIP LOCKED)
           AND w.webhook_id = d.webhook_id
         RETURNING d.webhook_delivery_id, d.webhook_id, d.event, w.url, d.payload,
                   w.secret_sealed, d.attempts",
    )
    .bind(LEASE.as_secs_f64())
    .fetch_all(&state.pool)
    .await?;
    let n = due.len();
    for (id, webhook, event, url, payload, sealed, attempts) in due {
        let body = payload.to_string();
        // resolved and checked now, then called at exactly the addresses checked, no redirects
        let client = match crate::domain::outbound::resolve(&url, state.outbound).await {
            Ok((host, addrs)) => {
                match crate::domain::outbound::pinned_client(&host, &addrs, TIMEOUT) {
                    Ok(c) => c,
                    Err(e) => {
                        fail(state, id, attempts, None, &e.without_url().to_string()).await?;
                        continue;
                    }
                }
            }
            Err(refused) => {
                fail(state, id, attempts, None, &format!("not called: {refused}")).await?;
                continue;
            }
        };
        let mut req = client
            .post(&url)
            .timeout(TIMEOUT)
            .header("content-type", "application/json")
            .header("x-catraca-event", &event)
            .header("x-catraca-delivery", id.to_string());
        if let Some(sealed) = sealed {
            let Some(secret) = state.secrets.as_ref().and_then(|b| b.open(&sealed)) else {
                // never send unsigned what the subscriber expects signed
                fail(
                    state,
                    id,
                    attempts,
                    None,
                    "the signing secret cannot be opened",
                )
                .await?;
                continue;
            };
            req = req.header("x-catraca-signature", signature(&secret, body.as_bytes()));
        }
        match req.body(body).send().await {
            Ok(r) if r.status().is_success() => {
                sqlx::query(
                    "UPDATE webhook_delivery SET status = 'delivered', delivered_at = now(),
                            attempts = attempts + 1, last_status = $2, last_error = NULL
                     WHERE webhook_delivery_id = $1",
                )
                .bind(id)
                .bind(i32::from(r.status().as_u16()))
                .execute(&state.pool)
                .await?;
                sqlx::query("UPDATE webhook SET last_triggered_at = now() WHERE webhook_id = $1")
                    .bind(webhook)
                    .execute(&state.pool)
                    .await?;
            }
            Ok(r) => {
                let status = r.status().as_u16();
                fail(state, id, attempts, Some(status), "non-2xx answer").await?;
            }
            // the URL is the subscriber's; its host and path may be logged, never the secret
            Err(e) => fail(state, id, attempts, None, &e.without_url().to_string()).await?,
        }
    }
    Ok(n)
}

async fn fail(
    state: &AdminState,
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
    sqlx::query(
        "UPDATE webhook_delivery SET attempts = $2, last_status = $3, last_error = $4,
                status = CASE WHEN $2 >= $5 THEN 'failed' ELSE 'pending' END,
                next_attempt_at = now() + make_interval(secs => $6)
         WHERE webhook_delivery_id = $1",
    )
    .bind(id)
    .bind(attempts)
    .bind(status.map(i32::from))
    .bind(error)
    .bind(MAX_ATTEMPTS)
    .bind(backoff)
    .execute(&state.pool)
    .await?;
    Ok(())
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new(); // HMAC takes keys of any length
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_matches_rfc_4231_case_2() {
        // key "Jefe", data "what do ya want for nothing?"
        assert_eq!(
            super::signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
