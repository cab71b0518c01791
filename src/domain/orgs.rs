//! Organizations (SabIA teams): membership removal that never leaves a team without an owner,
//! and plan changes that report the plan they replaced, each in one transaction that locks the
//! organization's row (two concurrent changes run one after the other).

use sqlx::PgPool;
use uuid::Uuid;

use super::accounts::AuthUser;
use super::error::{DomainError, Entity};
use crate::store::orgs as db;

/// Why a member could not be removed.
#[derive(Debug, PartialEq, Eq)]
pub enum Removal {
    /// Removed.
    Done,
    /// Not a member of the team.
    NotMember,
    /// The last owner cannot leave or be removed.
    LastOwner,
}

/// Remove `target` from `org` (the caller's rights are checked by the surface). The owner
/// count and the delete happen under the organization's row lock, so two owners removing each
/// other at the same moment cannot leave the team with none.
pub async fn remove_member(
    pool: &PgPool,
    who: &AuthUser,
    org: Uuid,
    target: Uuid,
) -> Result<Removal, DomainError> {
    let mut tx = pool.begin().await?;
    if !db::lock(&mut tx, org).await? {
        return Err(DomainError::NotFound(Entity::Organization));
    }
    let Some(role) = db::role_of(&mut *tx, org, target).await? else {
        return Ok(Removal::NotMember);
    };
    if role == "owner" && db::other_owners(&mut *tx, org, target).await? == 0 {
        return Ok(Removal::LastOwner);
    }
    db::delete_membership(&mut *tx, org, target).await?;
    crate::store::audit::insert(
        &mut *tx,
        org,
        Some(who.user_id),
        "membership.remove",
        Some(&target.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(Removal::Done)
}

/// A billing cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cycle {
    /// 30 days.
    Monthly,
    /// 365 days.
    Annual,
}

impl Cycle {
    /// Parse `monthly` / `annual`.
    pub fn parse(s: &str) -> Result<Cycle, DomainError> {
        match s {
            "monthly" => Ok(Cycle::Monthly),
            "annual" => Ok(Cycle::Annual),
            _ => Err(DomainError::invalid("billingCycle", "monthly or annual")),
        }
    }

    /// Config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Cycle::Monthly => "monthly",
            Cycle::Annual => "annual",
        }
    }

    /// Length of one period.
    pub fn period(self) -> time::Duration {
        match self {
            Cycle::Monthly => time::Duration::days(30),
            Cycle::Annual => time::Duration::days(365),
        }
    }
}

/// What a plan change did.
#[derive(Debug)]
pub struct PlanChanged {
    /// The plan replaced (`None`: none was set).
    pub old: Option<String>,
    /// When the new period started.
    pub started: time::OffsetDateTime,
}

/// Put `org` on the plan `code` (lowercase) with `cycle`, audited, in one transaction under
/// the organization's row lock: the plan reported as replaced is the one really replaced.
/// `Ok(None)` when no plan has that code.
pub async fn change_plan(
    pool: &PgPool,
    who: &AuthUser,
    org: Uuid,
    code: &str,
    cycle: Cycle,
) -> Result<Option<PlanChanged>, DomainError> {
    let mut tx = pool.begin().await?;
    let Some(plan) = db::plan_id(&mut *tx, code).await? else {
        return Ok(None);
    };
    if !db::lock(&mut tx, org).await? {
        return Err(DomainError::NotFound(Entity::Organization));
    }
    let old = db::plan_code(&mut *tx, org).await?;
    let started = db::set_plan(&mut *tx, org, plan, cycle.as_str()).await?;
    crate::store::audit::insert(&mut *tx, org, Some(who.user_id), "plan.change", Some(code))
        .await?;
    tx.commit().await?;
    Ok(Some(PlanChanged { old, started }))
}
