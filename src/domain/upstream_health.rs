//! Upstream health (#14 item 10, `GET /v1/upstream-health`): uptime and latency percentiles
//! per provider over every upstream attempt of a period, from the hourly rollup the gateways
//! write (`store::upstream_health`, fed by `gateway::health`).

use std::time::Duration;

use sqlx::PgPool;

use super::error::DomainError;
use crate::store::upstream_health as db;

/// Upper bounds (inclusive, milliseconds) of the latency buckets; one more bucket holds the
/// rest. Percentiles are reported as a bucket's bound (1-2-3-5 steps).
pub const LATENCY_BOUNDS_MS: [u64; 33] = [
    1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1_000, 1_500,
    2_000, 3_000, 4_000, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 60_000, 120_000,
];

/// Number of latency buckets (the bounds plus the overflow).
pub const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// The bucket of `latency`.
pub fn bucket(latency: Duration) -> usize {
    let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    LATENCY_BOUNDS_MS.partition_point(|&b| b < ms)
}

/// A period in days (1–90, default 30).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period(i32);

impl Period {
    /// Parse `days`; out of range or not a number is invalid (never clamped).
    pub fn parse(days: Option<&str>) -> Result<Period, DomainError> {
        let Some(text) = days else {
            return Ok(Period(30));
        };
        match text.parse::<i32>() {
            Ok(d) if (1..=90).contains(&d) => Ok(Period(d)),
            _ => Err(DomainError::invalid("days", "an integer from 1 to 90")),
        }
    }

    /// The days.
    pub fn days(self) -> i32 {
        self.0
    }
}

/// One provider's health over the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderHealth {
    /// Provider name.
    pub provider: String,
    /// Upstream attempts.
    pub attempts: i64,
    /// Failed attempts (no connection, timeout, broken answer, 429, 5xx).
    pub failures: i64,
    /// Successful attempts in hundredths of a percent (9_950 = 99.50 %), rounded down;
    /// `None` without attempts.
    pub uptime_basis_points: Option<i64>,
    /// Median latency (a bucket bound, ms); `None` without answered attempts.
    pub p50_ms: Option<u64>,
    /// 95th percentile latency (a bucket bound, ms).
    pub p95_ms: Option<u64>,
}

/// The smallest bucket bound under which at least `percent` % of `counts` fall (the last
/// bound for the overflow bucket); `None` for no counts.
pub fn percentile(counts: &[i64], percent: i64) -> Option<u64> {
    let total: i64 = counts.iter().map(|&c| c.max(0)).sum();
    if total == 0 {
        return None;
    }
    let mut seen: i64 = 0;
    for (i, &c) in counts.iter().enumerate() {
        seen += c.max(0);
        if seen.saturating_mul(100) >= total.saturating_mul(percent) {
            return Some(LATENCY_BOUNDS_MS[i.min(LATENCY_BOUNDS_MS.len() - 1)]);
        }
    }
    LATENCY_BOUNDS_MS.last().copied()
}

/// Every provider's health over `period`, by name.
pub async fn report(pool: &PgPool, period: Period) -> Result<Vec<ProviderHealth>, DomainError> {
    let rows = db::report(pool, period.days()).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let ok = (r.attempts - r.failures).max(0);
            ProviderHealth {
                uptime_basis_points: (r.attempts > 0)
                    .then(|| ok.saturating_mul(10_000) / r.attempts),
                p50_ms: percentile(&r.latency_counts, 50),
                p95_ms: percentile(&r.latency_counts, 95),
                provider: r.provider,
                attempts: r.attempts,
                failures: r.failures,
            }
        })
        .collect())
}

/// Counts one gateway adds to the rollup for one provider.
#[derive(Debug, Clone)]
pub struct Counts<'a> {
    /// Provider name.
    pub provider: &'a str,
    /// Attempts.
    pub attempts: u64,
    /// Failed attempts.
    pub failures: u64,
    /// Answered attempts per latency bucket.
    pub latency: [u64; BUCKETS],
}

/// Add one gateway's counts to the current hour.
pub async fn add(pool: &PgPool, counts: &[Counts<'_>]) -> Result<(), DomainError> {
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let rows: Vec<db::Add<'_>> = counts
        .iter()
        .map(|c| db::Add {
            provider: c.provider,
            attempts: clamp(c.attempts),
            failures: clamp(c.failures.min(c.attempts)),
            latency_counts: c.latency.iter().map(|&n| clamp(n)).collect(),
        })
        .collect();
    Ok(db::add(pool, &rows).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_inclusive_upper_bounds() {
        assert_eq!(bucket(Duration::from_micros(300)), 0);
        assert_eq!(bucket(Duration::from_millis(1)), 0);
        assert_eq!(bucket(Duration::from_millis(2)), 1);
        assert_eq!(bucket(Duration::from_millis(6)), 5);
        assert_eq!(bucket(Duration::from_millis(120_000)), BUCKETS - 2);
        assert_eq!(bucket(Duration::from_secs(3600)), BUCKETS - 1);
    }

    #[test]
    fn percentiles_are_bucket_bounds() {
        let mut c = vec![0i64; BUCKETS];
        assert_eq!(percentile(&c, 50), None);
        c[bucket(Duration::from_millis(10))] = 50; // ≤ 10 ms
        c[bucket(Duration::from_millis(90))] = 45; // ≤ 100 ms
        c[bucket(Duration::from_millis(900))] = 5; // ≤ 1 s
        assert_eq!(percentile(&c, 50), Some(10));
        assert_eq!(percentile(&c, 95), Some(100));
        assert_eq!(percentile(&c, 96), Some(1_000));
        c[BUCKETS - 1] = 1_000;
        assert_eq!(percentile(&c, 95), Some(120_000));
    }

    #[test]
    fn periods_are_checked_not_clamped() {
        assert_eq!(Period::parse(None).unwrap().days(), 30);
        assert_eq!(Period::parse(Some("90")).unwrap().days(), 90);
        for bad in ["0", "91", "-1", "x", "", "1.5", "99999999999"] {
            assert!(Period::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
