//! Plans: what a platform sells (price per cycle, monthly request quota, features), and an
//! organization's billing state on its plan.

use sqlx::PgPool;
use uuid::Uuid;

use super::error::{DomainError, Entity};
use super::orgs::Cycle;
use crate::store::plans as db;

pub use db::PlanRow as Plan;

/// Every plan, in display order.
pub async fn list(pool: &PgPool) -> Result<Vec<Plan>, DomainError> {
    Ok(db::list(pool).await?)
}

/// The organization's plan, if any.
pub async fn of_org(pool: &PgPool, org: Uuid) -> Result<Option<Plan>, DomainError> {
    Ok(db::of_org(pool, org).await?)
}

/// An organization's billing state.
#[derive(Debug)]
pub struct Billing {
    /// Plan code (`None`: no plan).
    pub plan: Option<String>,
    /// Billing cycle.
    pub cycle: Cycle,
    /// When the next period starts.
    pub next_billing: time::OffsetDateTime,
    /// Price of one period, micro-BRL.
    pub amount_brl_micros: i64,
    /// This month's successful requests (what the quota counts).
    pub used: i64,
    /// The plan's monthly quota (`None`: unlimited).
    pub quota: Option<i64>,
    /// When the month's count starts again.
    pub resets_at: time::OffsetDateTime,
}

/// The first instant of next month, UTC: when monthly quotas start again.
pub fn next_month(now: time::OffsetDateTime) -> time::OffsetDateTime {
    let now = now.to_offset(time::UtcOffset::UTC);
    let (y, m) = match now.month() {
        time::Month::December => (now.year() + 1, time::Month::January),
        m => (now.year(), m.next()),
    };
    time::Date::from_calendar_date(y, m, 1)
        .map(|d| d.midnight().assume_utc())
        .unwrap_or(now)
}

/// The organization's billing state.
pub async fn billing(pool: &PgPool, org: Uuid) -> Result<Billing, DomainError> {
    let b = db::billing(pool, org)
        .await?
        .ok_or(DomainError::NotFound(Entity::Organization))?;
    let cycle = Cycle::parse(&b.billing_cycle).unwrap_or(Cycle::Monthly);
    let used = crate::store::usage::month_successful(pool, org).await?;
    let amount = match cycle {
        Cycle::Annual => b.annual_price_brl_micros,
        Cycle::Monthly => b.price_brl_micros,
    }
    .unwrap_or(0);
    Ok(Billing {
        plan: b.code,
        cycle,
        next_billing: b.plan_started_at + cycle.period(),
        amount_brl_micros: amount,
        used,
        quota: b.monthly_request_quota,
        resets_at: next_month(time::OffsetDateTime::now_utc()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_month_rolls_over_the_year() {
        let dec = time::macros::datetime!(2026-12-31 23:59:59 UTC);
        assert_eq!(
            next_month(dec),
            time::macros::datetime!(2027-01-01 0:00 UTC)
        );
        let feb = time::macros::datetime!(2026-02-10 12:00 UTC);
        assert_eq!(
            next_month(feb),
            time::macros::datetime!(2026-03-01 0:00 UTC)
        );
    }
}
