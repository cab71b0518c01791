//! Usage reports: windows of whole days, pages of events, per-model metrics. Inputs are
//! parsed into types that cannot be out of range, so a query never sees a negative offset.

use sqlx::PgPool;
use uuid::Uuid;

use super::error::DomainError;
pub use crate::store::usage::{Bucket, ModelMetric, Recent, Totals};

/// A window of whole UTC days: today and the `n - 1` before it, 1 to 366.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days(i32);

impl Days {
    /// Parse.
    pub fn new(n: i64) -> Result<Days, DomainError> {
        if (1..=366).contains(&n) {
            Ok(Days(n as i32))
        } else {
            Err(DomainError::invalid("days", "between 1 and 366"))
        }
    }

    /// The count.
    pub fn get(self) -> i32 {
        self.0
    }
}

/// A page of a list: `page` from 1, `per_page` 1 to 500, and no page past the ten-millionth
/// row (an offset that large is a probe, not a reader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Page number, from 1.
    pub page: i64,
    /// Rows per page.
    pub per_page: i64,
}

impl Page {
    /// Most rows a page may skip.
    pub const MAX_OFFSET: i64 = 10_000_000;

    /// Parse.
    pub fn new(page: i64, per_page: i64) -> Result<Page, DomainError> {
        if page < 1 || !(1..=500).contains(&per_page) {
            return Err(DomainError::invalid(
                "page",
                "page >= 1 and per_page between 1 and 500",
            ));
        }
        if (page - 1).saturating_mul(per_page) > Self::MAX_OFFSET {
            return Err(DomainError::invalid(
                "page",
                format!("at most {} rows can be skipped", Self::MAX_OFFSET),
            ));
        }
        Ok(Page { page, per_page })
    }

    /// Pages needed for `total` rows.
    pub fn pages(self, total: i64) -> i64 {
        (total + self.per_page - 1) / self.per_page
    }
}

/// A sliding window for platform metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last hour.
    Hour,
    /// The last 24 hours.
    Day,
    /// The last 7 days.
    Week,
    /// The last 30 days.
    Month,
}

impl Window {
    /// Parse `1h`, `24h`, `7d`, `30d`.
    pub fn parse(s: &str) -> Result<Window, DomainError> {
        Ok(match s {
            "1h" => Window::Hour,
            "24h" => Window::Day,
            "7d" => Window::Week,
            "30d" => Window::Month,
            _ => return Err(DomainError::invalid("window", "one of 1h, 24h, 7d, 30d")),
        })
    }

    /// Length in seconds.
    pub fn secs(self) -> i64 {
        match self {
            Window::Hour => 3600,
            Window::Day => 86_400,
            Window::Week => 7 * 86_400,
            Window::Month => 30 * 86_400,
        }
    }
}

/// An organization's usage over a window of days.
pub struct Stats {
    /// Totals.
    pub totals: Totals,
    /// One bucket per day with traffic.
    pub daily: Vec<Bucket>,
    /// One bucket per model.
    pub by_model: Vec<Bucket>,
}

/// Totals, days and models of `org` over `days`.
pub async fn stats(pool: &PgPool, org: Uuid, days: Days) -> Result<Stats, DomainError> {
    use crate::store::usage as db;
    Ok(Stats {
        totals: db::totals(pool, org, days.get()).await?,
        daily: db::series(pool, org, days.get(), "day").await?,
        by_model: db::by_model(pool, org, days.get()).await?,
    })
}

/// A page of `org`'s events, newest first, and how many there are.
pub async fn recent(
    pool: &PgPool,
    org: Uuid,
    page: Page,
) -> Result<(Vec<Recent>, i64), DomainError> {
    Ok(crate::store::usage::recent(pool, org, page.page, page.per_page).await?)
}

/// Per-model metrics across the platform over `window`, busiest first, at most `limit`.
pub async fn model_metrics(
    pool: &PgPool,
    window: Window,
    limit: i64,
) -> Result<Vec<ModelMetric>, DomainError> {
    Ok(crate::store::usage::model_metrics(pool, window.secs(), limit).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_pages_are_bounded() {
        assert!(Days::new(0).is_err() && Days::new(367).is_err());
        assert_eq!(Days::new(366).unwrap().get(), 366);
        assert!(
            Page::new(0, 10).is_err() && Page::new(1, 0).is_err() && Page::new(1, 501).is_err()
        );
        assert!(Page::new(1 << 62, 50).is_err(), "an offset past the bound");
        assert!(Page::new(i64::MAX, 500).is_err(), "no overflow on the way");
        assert_eq!(Page::new(3, 50).unwrap().pages(101), 3);
        assert_eq!(Window::parse("7d").unwrap().secs(), 604_800);
        assert!(Window::parse("2d").is_err());
    }
}

pub use crate::store::usage::{LogFilter, LogRow, ServiceBucket};

/// How a series is bucketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Per UTC day.
    Day,
    /// Per ISO week.
    Week,
    /// Per calendar month.
    Month,
}

impl Unit {
    /// Parse `day`, `week`, `month`.
    pub fn parse(s: &str) -> Result<Unit, DomainError> {
        match s {
            "day" => Ok(Unit::Day),
            "week" => Ok(Unit::Week),
            "month" => Ok(Unit::Month),
            _ => Err(DomainError::invalid("groupBy", "day, week or month")),
        }
    }

    /// Name.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
        }
    }
}

/// Per bucket and service (the model's catalog category) over `days`. Every request counts,
/// answered or failed, in its service and in the total alike (one rule for both).
pub async fn per_service(
    pool: &PgPool,
    org: Uuid,
    days: Days,
    unit: Unit,
) -> Result<Vec<ServiceBucket>, DomainError> {
    Ok(crate::store::usage::per_service(pool, org, days.get(), unit.as_str()).await?)
}

/// The newest `n` (at most 100) events of `org`.
pub async fn latest(pool: &PgPool, org: Uuid, n: i64) -> Result<Vec<LogRow>, DomainError> {
    Ok(crate::store::usage::latest(pool, org, n.clamp(1, 100)).await?)
}

/// A page of `org`'s events matching `filter`, newest first, and how many match.
pub async fn logs(
    pool: &PgPool,
    org: Uuid,
    filter: &LogFilter<'_>,
    page: Page,
) -> Result<(Vec<LogRow>, i64), DomainError> {
    if let (Some(s), Some(e)) = (filter.start, filter.end)
        && s > e
    {
        return Err(DomainError::invalid("startDate", "after endDate"));
    }
    Ok(crate::store::usage::logs(
        pool,
        org,
        filter,
        page.per_page,
        (page.page - 1) * page.per_page,
    )
    .await?)
}

pub use crate::store::usage::ReportRow;

/// What a usage report is grouped by (besides the day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// Per organization.
    Organization,
    /// Per API key.
    Key,
    /// Per model.
    Model,
}

impl GroupBy {
    /// Parse `organization`, `key`, `model`.
    pub fn parse(s: &str) -> Result<GroupBy, DomainError> {
        match s {
            "organization" => Ok(GroupBy::Organization),
            "key" => Ok(GroupBy::Key),
            "model" => Ok(GroupBy::Model),
            _ => Err(DomainError::invalid(
                "group_by",
                "organization, key or model",
            )),
        }
    }

    /// Name.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Organization => "organization",
            GroupBy::Key => "key",
            GroupBy::Model => "model",
        }
    }
}

/// A usage report's question.
#[derive(Debug)]
pub struct ReportQuery<'a> {
    /// Grouping.
    pub group: GroupBy,
    /// First UTC day.
    pub from: time::Date,
    /// Last UTC day (inclusive), at most 366 days after `from`.
    pub to: time::Date,
    /// Only this organization.
    pub org: Option<Uuid>,
    /// Only this key.
    pub key: Option<Uuid>,
    /// Only this model.
    pub model: Option<&'a str>,
}

/// Usage per UTC day and group, exact integers (micro-USD upstream cost, micro-BRL billed).
pub async fn report(pool: &PgPool, q: &ReportQuery<'_>) -> Result<Vec<ReportRow>, DomainError> {
    if q.from > q.to {
        return Err(DomainError::invalid("from", "after to"));
    }
    if (q.to - q.from).whole_days() > 366 {
        return Err(DomainError::invalid("to", "at most 366 days after from"));
    }
    if q.model.is_some_and(|m| m.is_empty() || m.len() > 200) {
        return Err(DomainError::invalid("model", "1 to 200 characters"));
    }
    Ok(
        crate::store::usage::report(pool, q.group.as_str(), q.from, q.to, q.org, q.key, q.model)
            .await?,
    )
}
