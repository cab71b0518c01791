//! `GET /v1/usage/rate-limit?minutes=N` (Tokia): for each active key of the caller's
//! organization, requests and tokens used in the current minute against its RPM/TPM limits,
//! the headroom left, and the busiest minute and the average over the last `N` minutes (5 to
//! 720, default 60).
//!
//! "Used" comes from the same counters that enforce the limits (Redis when it is the back end,
//! else this node's), so the report and the `X-RateLimit-*` headers agree. A key without limits
//! has no counters; its current minute is read from the usage events instead (`source`
//! says which). History always comes from the usage events, counting requests that were
//! admitted (sent upstream). The caller sees only its own organization's keys; a key from the
//! config file (no organization) sees itself.

use bytes::Bytes;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::route::KeyInfo;
use crate::error::ApiError;
use crate::limits::{Limiter, Limits, Scope, ScopeId, WindowUse};
use crate::store::rate_usage::{self as db, History};

/// Validate `minutes` (5..=720, default 60).
pub fn minutes(raw: Option<&str>) -> Result<u32, ApiError> {
    let Some(raw) = raw else { return Ok(60) };
    match raw.parse::<u32>() {
        Ok(m) if (5..=720).contains(&m) => Ok(m),
        _ => Err(ApiError::InvalidRequest(format!(
            "minutes must be an integer from 5 to 720, not {raw:?}"
        ))),
    }
}

/// The report as JSON.
pub async fn report(
    caller: &KeyInfo,
    pool: Option<&PgPool>,
    limiter: &Limiter,
    minutes: u32,
) -> Result<Bytes, ApiError> {
    let now = crate::limits::unix_now();
    let mut keys = Vec::new();
    match (caller.organization_id, pool) {
        (Some(org), Some(pool)) => {
            let rows = db::active_keys(pool, org).await.map_err(unavailable)?;
            let history = db::history(pool, org, minutes).await.map_err(unavailable)?;
            for r in rows {
                let Ok(hash) = <[u8; 32]>::try_from(r.key_hash.as_slice()) else {
                    continue;
                };
                let limits = crate::store::key_cache::limits(
                    r.rate_limit_rps,
                    r.rate_limit_rpm,
                    r.rate_limit_rpd,
                    r.rate_limit_tpm,
                    r.max_concurrency,
                );
                let h = history.get(&r.api_key_id).copied().unwrap_or_default();
                let mut v = entry(limiter, ScopeId::Key(hash), limits, Some(h), minutes).await;
                v["id"] = json!(r.api_key_id);
                v["name"] = json!(r.name);
                v["prefix"] = json!(r.prefix);
                keys.push(v);
            }
        }
        _ => {
            let mut v = entry(
                limiter,
                ScopeId::Key(*caller.hash()),
                caller.limits,
                None,
                minutes,
            )
            .await;
            v["id"] = Value::Null;
            v["name"] = json!(&*caller.name);
            v["prefix"] = Value::Null;
            keys.push(v);
        }
    }
    let organization = match caller.organization_id {
        Some(org) if caller.org_limits.any() => {
            let mut v = entry(limiter, ScopeId::Org(org), caller.org_limits, None, minutes).await;
            v["id"] = json!(org);
            v
        }
        _ => Value::Null,
    };
    let body = json!({
        "minutes": minutes,
        "generated_at": now,
        "reset": (now / 60 + 1) * 60,
        "keys": keys,
        "organization": organization,
    });
    Ok(Bytes::from(body.to_string()))
}

fn unavailable(e: sqlx::Error) -> ApiError {
    tracing::warn!(error = %e, "rate-limit report: database query failed");
    ApiError::KeyStoreUnavailable
}

/// One scope's `rpm` and `tpm` blocks.
async fn entry(
    limiter: &Limiter,
    id: ScopeId,
    limits: Limits,
    history: Option<History>,
    minutes: u32,
) -> Value {
    let (used, source) = if limits.any() {
        let (u, src) = limiter.usage_now(&Scope { id, limits }).await;
        (Some(u), src)
    } else {
        (None, "usage_events")
    };
    let (now_requests, now_tokens) = match (used, history) {
        (
            Some(WindowUse {
                requests, tokens, ..
            }),
            _,
        ) => (requests, tokens),
        (None, Some(h)) => (h.now_requests.max(0) as u64, h.now_tokens.max(0) as u64),
        (None, None) => (0, 0),
    };
    let block = |limit: Option<u32>, used: u64, peak: Option<i64>, total: Option<i64>| {
        let headroom = limit.map(|l| u64::from(l).saturating_sub(used));
        json!({
            "limit": limit,
            "used": used,
            "headroom": headroom,
            // one decimal, from integers
            "headroom_pct": limit.filter(|l| *l > 0).map(|l| {
                (headroom.unwrap_or(0) * 1000 / u64::from(l)) as f64 / 10.0
            }),
            "peak": peak,
            "avg": total.map(|t| (t.max(0) as u64 * 100 / u64::from(minutes)) as f64 / 100.0),
        })
    };
    json!({
        "source": source,
        "rpm": block(limits.rpm, now_requests, history.map(|h| h.peak_requests), history.map(|h| h.requests)),
        "tpm": block(limits.tpm, now_tokens, history.map(|h| h.peak_tokens), history.map(|h| h.tokens)),
        "requests": history.map(|h| h.requests),
        "tokens": history.map(|h| h.tokens),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_are_checked() {
        assert_eq!(minutes(None), Ok(60));
        assert_eq!(minutes(Some("5")), Ok(5));
        assert_eq!(minutes(Some("720")), Ok(720));
        for bad in ["4", "721", "-1", "abc", "60.5", ""] {
            assert!(minutes(Some(bad)).is_err(), "{bad}");
        }
    }
}
