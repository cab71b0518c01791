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

// ---------- the customer's wallet and usage (Tokia's money and usage routes)

use super::ledger::Wallet;
use super::money::Micros;
pub use crate::store::usage::{DashboardCounts, EventRow as Event, ModelUse, TokenPrice};

/// The time zone days are counted in when the user chose none.
pub const DEFAULT_TZ: &str = "America/Sao_Paulo";
/// Longest export, in days.
pub const MAX_EXPORT_DAYS: i64 = 366;
/// An export without dates: today and the 29 days before.
pub const DEFAULT_EXPORT_DAYS: i64 = 30;
/// Most events a usage list shows.
pub const MAX_NEWEST: i64 = 100;

impl Days {
    /// Parse a window a route bounds more tightly than 1 to 366.
    pub fn between(n: i64, min: i32, max: i32) -> Result<Days, DomainError> {
        if (i64::from(min)..=i64::from(max)).contains(&n) && (1..=366).contains(&n) {
            Ok(Days(n as i32))
        } else {
            Err(DomainError::invalid(
                "days",
                format!("between {min} and {max}"),
            ))
        }
    }
}

/// How many of the newest events to list: 1 to [`MAX_NEWEST`].
pub fn newest_count(n: i64) -> Result<i64, DomainError> {
    if (1..=MAX_NEWEST).contains(&n) {
        Ok(n)
    } else {
        Err(DomainError::invalid("limit", "between 1 and 100"))
    }
}

/// Inclusive days in a time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// First day.
    pub from: time::Date,
    /// Last day (inclusive).
    pub to: time::Date,
    /// IANA time zone the days are in.
    pub tz: String,
}

/// A `YYYY-MM-DD` date, nothing else.
fn parse_day(field: &'static str, text: &str) -> Result<time::Date, DomainError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(DomainError::invalid(field, "a date YYYY-MM-DD"));
    }
    time::Date::parse(text, &fmt).map_err(|_| DomainError::invalid(field, "a date YYYY-MM-DD"))
}

/// The export period: `from` and `to` as given (checked before anything is read), `to`
/// defaulting to today in `tz` and `from` to `to` − 29; `from` after `to`, or more than
/// [`MAX_EXPORT_DAYS`] days, is refused.
pub async fn period(
    pool: &PgPool,
    from: Option<&str>,
    to: Option<&str>,
    tz: &str,
) -> Result<Period, DomainError> {
    let from = from.map(|f| parse_day("from", f)).transpose()?;
    let to = to.map(|t| parse_day("to", t)).transpose()?;
    let to = match to {
        Some(t) => t,
        None => crate::store::usage::today_in(pool, tz).await?,
    };
    let from = match from {
        Some(f) => f,
        None => to
            .checked_sub(time::Duration::days(DEFAULT_EXPORT_DAYS - 1))
            .ok_or_else(|| DomainError::invalid("to", "out of range"))?,
    };
    check_period(from, to)?;
    Ok(Period {
        from,
        to,
        tz: tz.to_string(),
    })
}

fn check_period(from: time::Date, to: time::Date) -> Result<(), DomainError> {
    if from > to {
        return Err(DomainError::invalid("from", "after to"));
    }
    if (to - from).whole_days() + 1 > MAX_EXPORT_DAYS {
        return Err(DomainError::invalid("to", "at most 366 days after from"));
    }
    Ok(())
}

/// `org`'s events over `p`, oldest first, streamed (constant memory however many).
pub fn export(
    pool: &PgPool,
    org: Uuid,
    p: &Period,
) -> impl futures_util::Stream<Item = Result<Event, DomainError>> + Send + 'static {
    use futures_util::StreamExt;
    crate::store::usage::export(pool.clone(), org, p.from, p.to, p.tz.clone())
        .map(|r| r.map_err(DomainError::from))
}

/// `org`'s newest `n` events (see [`newest_count`]), newest first, days in `tz`.
pub async fn newest(pool: &PgPool, org: Uuid, tz: &str, n: i64) -> Result<Vec<Event>, DomainError> {
    let n = newest_count(n)?;
    Ok(crate::store::usage::newest_events(pool, org, tz, n).await?)
}

/// Totals over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeriodTotals {
    /// Requests.
    pub requests: i64,
    /// Billed.
    pub billed: Micros,
    /// Upstream cost (USD).
    pub cost_usd: Micros,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
}

/// A compact summary: the wallet, the window's totals, its top 3 models by billed amount.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The window.
    pub days: Days,
    /// The wallet now.
    pub wallet: Wallet,
    /// Totals over the window.
    pub totals: PeriodTotals,
    /// The three most billed models.
    pub top_models: Vec<ModelUse>,
    /// Models used in the window.
    pub unique_models: i64,
}

/// Totals of per-model rows, exact.
fn totals_of(uses: &[ModelUse]) -> PeriodTotals {
    uses.iter()
        .fold(PeriodTotals::default(), |t, u| PeriodTotals {
            requests: t.requests + u.requests,
            billed: Micros(t.billed.0 + u.billed_brl_micros),
            cost_usd: Micros(t.cost_usd.0 + u.cost_usd_micros),
            prompt_tokens: t.prompt_tokens + u.prompt_tokens,
            completion_tokens: t.completion_tokens + u.completion_tokens,
        })
}

/// The summary of `org` over `days` (UTC days, from the rollup).
pub async fn summary(pool: &PgPool, org: Uuid, days: Days) -> Result<Summary, DomainError> {
    let wallet = super::ledger::wallet(pool, org).await?;
    let uses = crate::store::usage::model_use(pool, org, days.get()).await?;
    let totals = totals_of(&uses);
    let named: Vec<ModelUse> = uses.into_iter().filter(|u| !u.model.is_empty()).collect();
    Ok(Summary {
        days,
        wallet,
        totals,
        unique_models: named.len() as i64,
        top_models: named.into_iter().take(3).collect(),
    })
}

/// How long the balance lasts at the window's average daily spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runway {
    /// Balance now.
    pub balance: Micros,
    /// The window.
    pub days: Days,
    /// Spend over the window ÷ its days, rounded half up to the micro-unit.
    pub daily_avg: Micros,
    /// ⌊balance ÷ (spend ÷ days)⌋, computed exactly; `None` without spend.
    pub runway_days: Option<i64>,
    /// `runway_days` below 7.
    pub critical: bool,
}

/// The runway of `balance` at `spend` over `days`.
pub fn runway_of(balance: Micros, spend: Micros, days: Days) -> Runway {
    let d = i128::from(days.get());
    let s = i128::from(spend.0);
    let runway_days = (s > 0).then(|| {
        let b = i128::from(balance.0.max(0));
        i64::try_from(b * d / s).unwrap_or(i64::MAX)
    });
    let daily_avg = (s.max(0) + d / 2) / d;
    Runway {
        balance,
        days,
        daily_avg: Micros(i64::try_from(daily_avg).unwrap_or(i64::MAX)),
        runway_days,
        critical: runway_days.is_some_and(|r| r < 7),
    }
}

/// The runway of `org` over `days` of spend.
pub async fn runway(pool: &PgPool, org: Uuid, days: Days) -> Result<Runway, DomainError> {
    let wallet = super::ledger::wallet(pool, org).await?;
    let uses = crate::store::usage::model_use(pool, org, days.get()).await?;
    Ok(runway_of(wallet.balance, totals_of(&uses).billed, days))
}

/// A one-call dashboard snapshot.
#[derive(Debug)]
pub struct Dashboard {
    /// The key's user, if it has one.
    pub profile: Option<super::accounts::Card>,
    /// The wallet.
    pub wallet: Wallet,
    /// Keys and mail.
    pub counts: DashboardCounts,
}

/// The dashboard of `org` as `user` sees it.
pub async fn dashboard(
    pool: &PgPool,
    org: Uuid,
    user: Option<Uuid>,
) -> Result<Dashboard, DomainError> {
    let profile = match user {
        Some(u) => match super::accounts::card(pool, u).await {
            Ok(c) => Some(c),
            Err(DomainError::NotFound(_)) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    Ok(Dashboard {
        profile,
        wallet: super::ledger::wallet(pool, org).await?,
        counts: crate::store::usage::dashboard_counts(pool, org, user).await?,
    })
}

/// A cheaper model of the same category, priced at the caller's own token mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recommendation {
    /// The model used.
    pub model: String,
    /// Its category.
    pub category: String,
    /// Requests to it in the window.
    pub requests: i64,
    /// Input tokens sent to it.
    pub prompt_tokens: i64,
    /// Output tokens it produced.
    pub completion_tokens: i64,
    /// What those requests were billed.
    pub current_cost: Micros,
    /// The cheaper model.
    pub suggested_model: String,
    /// What the same tokens would have been billed on it.
    pub suggested_cost: Micros,
    /// `current_cost − suggested_cost` (> 0).
    pub saving: Micros,
}

/// Alternatives listed per model used.
pub const ALTERNATIVES_PER_MODEL: usize = 3;

/// For each model used with a known category and a billed upstream cost, the up to three
/// cheapest other models of its category priced per token: the same tokens at the
/// alternative's catalog price, converted at the caller's own rate for the model used
/// (billed BRL ÷ upstream USD: the FX and markup it really paid), rounded once. Largest
/// saving first.
pub fn recommend(uses: &[ModelUse], prices: &[TokenPrice]) -> Vec<Recommendation> {
    let mut out = Vec::new();
    for u in uses {
        let Some(category) = u.category.as_deref() else {
            continue;
        };
        if u.model.is_empty() || u.cost_usd_micros <= 0 || u.billed_brl_micros <= 0 {
            continue;
        }
        let mut alts: Vec<Recommendation> = prices
            .iter()
            .filter(|p| p.category == category && p.name != u.model)
            .filter_map(|p| {
                // micro-USD × 1e6, exact
                let usd_exact = i128::from(u.prompt_tokens) * i128::from(p.input_per_1m)
                    + i128::from(u.completion_tokens) * i128::from(p.output_per_1m);
                let num = usd_exact * i128::from(u.billed_brl_micros);
                let den = 1_000_000i128 * i128::from(u.cost_usd_micros);
                let brl = i64::try_from((num + den / 2) / den).ok()?;
                (brl < u.billed_brl_micros).then(|| Recommendation {
                    model: u.model.clone(),
                    category: category.to_string(),
                    requests: u.requests,
                    prompt_tokens: u.prompt_tokens,
                    completion_tokens: u.completion_tokens,
                    current_cost: Micros(u.billed_brl_micros),
                    suggested_model: p.name.clone(),
                    suggested_cost: Micros(brl),
                    saving: Micros(u.billed_brl_micros - brl),
                })
            })
            .collect();
        alts.sort_by(|a, b| {
            a.suggested_cost
                .cmp(&b.suggested_cost)
                .then_with(|| a.suggested_model.cmp(&b.suggested_model))
        });
        alts.truncate(ALTERNATIVES_PER_MODEL);
        out.extend(alts);
    }
    out.sort_by(|a, b| {
        b.saving
            .cmp(&a.saving)
            .then_with(|| a.model.cmp(&b.model))
            .then_with(|| a.suggested_model.cmp(&b.suggested_model))
    });
    out
}

/// Recommendations for `org` over `days` (see [`recommend`]).
pub async fn recommendations(
    pool: &PgPool,
    org: Uuid,
    days: Days,
) -> Result<Vec<Recommendation>, DomainError> {
    let uses = crate::store::usage::model_use(pool, org, days.get()).await?;
    let prices = crate::store::usage::token_prices(pool).await?;
    Ok(recommend(&uses, &prices))
}

#[cfg(test)]
mod tokia_tests {
    use super::*;

    #[test]
    fn runway_is_exact_and_null_without_spend() {
        let d = Days::between(30, 1, 90).unwrap();
        let r = runway_of(Micros(10_000_000), Micros(3_000_000), d);
        // R$ 3 over 30 days = R$ 0.10 a day; R$ 10 lasts 100 days
        assert_eq!(
            (r.daily_avg, r.runway_days, r.critical),
            (Micros(100_000), Some(100), false)
        );
        let r = runway_of(
            Micros(1_000_000),
            Micros(7_000_000),
            Days::between(7, 1, 90).unwrap(),
        );
        assert_eq!((r.runway_days, r.critical), (Some(1), true));
        let r = runway_of(Micros(5), Micros(0), d);
        assert_eq!(
            (r.runway_days, r.critical, r.daily_avg),
            (None, false, Micros(0))
        );
        assert!(Days::between(0, 1, 90).is_err() && Days::between(91, 1, 90).is_err());
        assert!(Days::between(6, 7, 90).is_err());
    }

    #[test]
    fn periods_are_checked() {
        assert!(parse_day("from", "2024-02-30").is_err());
        assert!(parse_day("from", "2024-2-3").is_err());
        assert!(parse_day("from", "+2024-02-03").is_err());
        let d = |s| parse_day("from", s).unwrap();
        assert!(check_period(d("2024-01-02"), d("2024-01-01")).is_err());
        assert!(
            check_period(d("2024-01-01"), d("2024-12-31")).is_ok(),
            "366 days"
        );
        assert!(
            check_period(d("2023-01-01"), d("2024-01-01")).is_ok(),
            "366 days"
        );
        assert!(
            check_period(d("2023-01-01"), d("2024-01-02")).is_err(),
            "367 days"
        );
    }

    #[test]
    fn recommendations_price_the_callers_mix() {
        let uses = vec![ModelUse {
            model: "big".into(),
            category: Some("chat".into()),
            requests: 2,
            prompt_tokens: 1000,
            completion_tokens: 500,
            cost_usd_micros: 25_000,
            billed_brl_micros: 125_000,
        }];
        let price = |name: &str, cat: &str, i, o| TokenPrice {
            name: name.into(),
            category: cat.into(),
            input_per_1m: i,
            output_per_1m: o,
        };
        let prices = vec![
            price("big", "chat", 10_000_000, 30_000_000),
            price("small", "chat", 1_000_000, 2_000_000),
            price("pricier", "chat", 20_000_000, 40_000_000),
            price("emb", "embedding", 1, 1),
        ];
        let r = recommend(&uses, &prices);
        assert_eq!(r.len(), 1);
        // small: 1000 × 1 + 500 × 2 = 2000 micro-USD; × (125000 / 25000) = 10000 micro-BRL
        assert_eq!(r[0].suggested_model, "small");
        assert_eq!(
            (r[0].suggested_cost, r[0].saving),
            (Micros(10_000), Micros(115_000))
        );
    }
}

/// A usage event's id in UUID form, for contracts that type it so (Tokia's session detail): a
/// version 8 UUID holding the event's number in its last 62 bits
/// (`00000000-0000-8000-8000-00000000002a` is event 42), so each event has one stable UUID and
/// the number can be read back.
pub fn event_uuid(usage_event_id: i64) -> uuid::Uuid {
    let n = (usage_event_id as u64) & 0x3fff_ffff_ffff_ffff;
    uuid::Uuid::from_u64_pair(0x0000_0000_0000_8000, 0x8000_0000_0000_0000 | n)
}

#[cfg(test)]
mod event_uuid_tests {
    #[test]
    fn event_uuids_are_version_8_and_hold_the_number() {
        let u = super::event_uuid(42);
        assert_eq!(u.to_string(), "00000000-0000-8000-8000-00000000002a");
        assert_eq!(u.get_version_num(), 8);
        assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(super::event_uuid(1), super::event_uuid(2));
    }
}
