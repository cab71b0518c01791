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
    actor: Option<Uuid>,
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
    super::audit::change(
        &mut *tx,
        org,
        actor,
        "membership.remove",
        &target.to_string(),
        Some(serde_json::json!({"user_id": target, "role": role})),
        None,
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
    super::audit::change(
        &mut *tx,
        org,
        Some(who.user_id),
        "plan.change",
        code,
        Some(serde_json::json!({"plan": old})),
        Some(serde_json::json!({"plan": code, "billing_cycle": cycle.as_str()})),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(PlanChanged { old, started }))
}

pub use crate::store::orgs::OrgRow as Organization;

/// A new organization, as the operator creates it.
#[derive(Debug)]
pub struct NewOrg {
    /// Name, 1 to 200 characters.
    pub name: String,
    /// Slug (lowercase letters, digits and `-`, 1 to 64); derived from the name when absent.
    pub slug: Option<String>,
    /// `customer` (default), `team` or `project`.
    pub kind: Option<String>,
    /// A project's tier: `full` (default for projects) or `student`; only projects have one.
    pub tier: Option<String>,
    /// Plan code.
    pub plan: Option<String>,
    /// Prepaid (a balance, starting at zero) or postpaid.
    pub prepaid: bool,
    /// Its own limits (over its plan's); each `Some(Some(n))` sets one.
    pub limits: db::LimitsPatch,
}

/// A slug from a name: lowercase ASCII letters and digits, runs of anything else as one `-`.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
            'é' | 'ê' | 'è' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ô' | 'õ' | 'ò' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').chars().take(64).collect()
}

fn valid_slug(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Create an organization (audited as the operator's).
pub async fn create(pool: &PgPool, new: NewOrg) -> Result<Organization, DomainError> {
    let name = new.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(DomainError::invalid("name", "1 to 200 characters"));
    }
    let slug = match new.slug {
        Some(s) if valid_slug(&s) => s,
        Some(_) => {
            return Err(DomainError::invalid(
                "slug",
                "1 to 64 lowercase letters, digits and '-', not at either end",
            ));
        }
        None => slugify(name),
    };
    if slug.is_empty() {
        return Err(DomainError::invalid(
            "slug",
            "the name has no letter or digit to make one from; give a slug",
        ));
    }
    check_limits(&new.limits)?;
    let kind = new.kind.as_deref().unwrap_or("customer");
    if !matches!(kind, "customer" | "team" | "project") {
        return Err(DomainError::invalid("kind", "customer, team or project"));
    }
    let tier = match (kind, new.tier.as_deref()) {
        ("project", None) => Some("full"),
        ("project", Some(t)) => Some(
            super::bradax::Tier::parse(t)
                .ok_or_else(|| DomainError::invalid("tier", "full or student"))?
                .as_str(),
        ),
        (_, None) => None,
        (_, Some(_)) => {
            return Err(DomainError::invalid(
                "tier",
                "only organizations of kind project have a tier",
            ));
        }
    };
    let mut tx = pool.begin().await?;
    let plan = match new.plan.as_deref() {
        None => None,
        Some(code) => Some(
            db::plan_id(&mut *tx, code)
                .await?
                .ok_or_else(|| DomainError::invalid("plan", format!("no plan {code:?}")))?,
        ),
    };
    let id = match db::insert_org(&mut *tx, name, &slug, kind, tier, plan, new.prepaid).await {
        Ok(id) => id,
        Err(sqlx::Error::Database(e)) if e.constraint() == Some(db::ORG_SLUG_KEY) => {
            return Err(super::error::Conflict::SlugTaken.into());
        }
        Err(e) => return Err(e.into()),
    };
    let l = &new.limits;
    if [l.rps, l.rpm, l.rpd, l.tpm, l.concurrency]
        .iter()
        .any(Option::is_some)
    {
        db::update_org(&mut *tx, id, None, None, l).await?;
    }
    let org = db::get_org(&mut *tx, id)
        .await?
        .ok_or(DomainError::Internal)?;
    super::audit::change(
        &mut *tx,
        id,
        None,
        "organization.create",
        &slug,
        None,
        Some(org_json(&org)),
    )
    .await?;
    tx.commit().await?;
    Ok(org)
}

/// One organization.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Organization, DomainError> {
    db::get_org(pool, id)
        .await?
        .ok_or(DomainError::NotFound(Entity::Organization))
}

/// A page of organizations and the total.
pub async fn list(
    pool: &PgPool,
    kind: Option<&str>,
    page: super::usage::Page,
) -> Result<(Vec<Organization>, i64), DomainError> {
    Ok(db::list_orgs(pool, kind, page.per_page, (page.page - 1) * page.per_page).await?)
}

/// Disable (`true`) or enable an organization, audited: while disabled its keys are refused by
/// every gateway, within milliseconds (the key caches are dropped in the same transaction).
pub async fn set_disabled(
    pool: &PgPool,
    org: Uuid,
    disabled: bool,
) -> Result<Organization, DomainError> {
    let mut tx = pool.begin().await?;
    if !db::set_disabled(&mut *tx, org, disabled).await? {
        return Err(DomainError::NotFound(Entity::Organization));
    }
    db::notify_all_keys(&mut *tx).await?;
    let action = if disabled {
        "organization.disable"
    } else {
        "organization.enable"
    };
    crate::store::audit::insert(&mut *tx, org, None, action, Some(&org.to_string())).await?;
    let o = db::get_org(&mut *tx, org)
        .await?
        .ok_or(DomainError::Internal)?;
    tx.commit().await?;
    Ok(o)
}

use super::roles::{Action, Role};
pub use crate::store::orgs::{MemberRow as Member, TeamRow as Team};

/// The caller's role in `org` if it allows `action`: not found when the caller is not a member
/// (whether the organization exists is not revealed), forbidden when the role does not allow it.
pub async fn authorize(
    pool: &PgPool,
    who: &AuthUser,
    org: Uuid,
    action: Action,
) -> Result<Role, DomainError> {
    let role = db::role_of(pool, org, who.user_id)
        .await?
        .ok_or(DomainError::NotFound(Entity::Organization))?;
    let role = Role::parse(&role).map_err(|_| DomainError::Internal)?;
    if !super::roles::allows(role, action) {
        return Err(DomainError::Forbidden("role"));
    }
    Ok(role)
}

/// The organizations `user` belongs to, oldest first.
pub async fn teams_of(pool: &PgPool, user: Uuid) -> Result<Vec<Team>, DomainError> {
    Ok(db::teams_of(pool, user).await?)
}

/// Longest organization name.
pub const MAX_NAME: usize = 200;

/// A new team on plan `plan` (a code, case-insensitive) with the caller as owner, audited; its
/// id and creation time.
pub async fn create_team(
    pool: &PgPool,
    who: &AuthUser,
    name: &str,
    plan: &str,
) -> Result<(Uuid, time::OffsetDateTime), DomainError> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(DomainError::invalid("name", "1 to 200 characters"));
    }
    let mut tx = pool.begin().await?;
    let plan = db::plan_id(&mut *tx, plan)
        .await?
        .ok_or(DomainError::invalid("plan", "no such plan"))?;
    let (id, created) = db::insert_team(&mut *tx, name, plan).await?;
    db::add_membership(&mut *tx, id, who.user_id, Role::Owner.as_str()).await?;
    crate::store::audit::insert(&mut *tx, id, Some(who.user_id), "team.create", None).await?;
    tx.commit().await?;
    Ok((id, created))
}

/// An organization with its members, in the order they joined.
pub struct TeamDetail {
    /// The organization.
    pub org: Organization,
    /// Its members.
    pub members: Vec<Member>,
}

/// `org` with its members.
pub async fn detail(pool: &PgPool, org: Uuid) -> Result<TeamDetail, DomainError> {
    Ok(TeamDetail {
        org: get(pool, org).await?,
        members: db::team_members(pool, org).await?,
    })
}

/// Add the user with `email` to `org` as `role` (not owner: ownership is not given this way),
/// audited. Not found when no user has that email; a conflict when already a member.
pub async fn add_member(
    pool: &PgPool,
    who: &AuthUser,
    org: Uuid,
    email: &super::accounts::Email,
    role: Role,
) -> Result<Member, DomainError> {
    if role == Role::Owner {
        return Err(DomainError::invalid("role", "admin, member or viewer"));
    }
    let user = crate::store::accounts::card_by_email(pool, email.as_str())
        .await?
        .ok_or(DomainError::NotFound(Entity::User))?;
    let mut tx = pool.begin().await?;
    if !db::add_membership(&mut *tx, org, user.user_id, role.as_str()).await? {
        return Err(DomainError::Conflict(super::error::Conflict::AlreadyMember));
    }
    super::audit::change(
        &mut *tx,
        org,
        Some(who.user_id),
        "membership.add",
        &user.user_id.to_string(),
        None,
        Some(serde_json::json!({"user_id": user.user_id, "role": role.as_str()})),
    )
    .await?;
    tx.commit().await?;
    Ok(Member {
        user_id: user.user_id,
        name: user.name,
        email: user.email,
        role: role.as_str().to_string(),
        avatar_url: user.avatar_url,
    })
}

/// How many members `org` has.
pub async fn member_count(pool: &PgPool, org: Uuid) -> Result<i64, DomainError> {
    Ok(db::member_count(pool, org).await?)
}

/// What an operator may change on an organization; `None` keeps a field.
#[derive(Debug, Default)]
pub struct OrgUpdate {
    /// New name, 1 to 200 characters.
    pub name: Option<String>,
    /// New plan code, or `Some(None)` for none.
    pub plan: db::Patch<String>,
    /// Its own limits (over its plan's); `Some(None)` falls back to the plan's.
    pub limits: db::LimitsPatch,
}

/// Check a limit patch: every value set is positive.
pub fn check_limits(l: &db::LimitsPatch) -> Result<(), DomainError> {
    for (v, field) in [
        (l.rps, "rps"),
        (l.rpm, "rpm"),
        (l.rpd, "rpd"),
        (l.tpm, "tpm"),
        (l.concurrency, "concurrency"),
    ] {
        if v.flatten().is_some_and(|n| n <= 0) {
            return Err(DomainError::invalid(
                field,
                "a positive integer, or null for none",
            ));
        }
    }
    Ok(())
}

fn org_json(o: &Organization) -> serde_json::Value {
    serde_json::json!({
        "name": o.name, "plan": o.plan, "rps": o.rate_limit_rps, "rpm": o.rate_limit_rpm,
        "rpd": o.rate_limit_rpd, "tpm": o.rate_limit_tpm, "concurrency": o.max_concurrency,
    })
}

/// Change an organization (as the operator), audited with before and after, under its row
/// lock; every gateway reloads its keys' limits at once (the database triggers notify them).
pub async fn update(pool: &PgPool, org: Uuid, u: OrgUpdate) -> Result<Organization, DomainError> {
    let name = u.name.as_deref().map(str::trim);
    if name.is_some_and(|n| n.is_empty() || n.len() > MAX_NAME) {
        return Err(DomainError::invalid("name", "1 to 200 characters"));
    }
    check_limits(&u.limits)?;
    let mut tx = pool.begin().await?;
    let plan = match &u.plan {
        None => None,
        Some(None) => Some(None),
        Some(Some(code)) => {
            Some(Some(db::plan_id(&mut *tx, code).await?.ok_or_else(
                || DomainError::invalid("plan", format!("no plan {code:?}")),
            )?))
        }
    };
    let before = db::lock_org(&mut tx, org)
        .await?
        .ok_or(DomainError::NotFound(Entity::Organization))?;
    db::update_org(&mut *tx, org, name, plan, &u.limits).await?;
    let after = db::get_org(&mut *tx, org)
        .await?
        .ok_or(DomainError::Internal)?;
    super::audit::change(
        &mut *tx,
        org,
        None,
        "organization.update",
        &org.to_string(),
        Some(org_json(&before)),
        Some(org_json(&after)),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Add `user` to `org` as `role` (as the operator), audited; a conflict when a member already.
pub async fn add_member_by_id(
    pool: &PgPool,
    org: Uuid,
    user: Uuid,
    role: Role,
) -> Result<(), DomainError> {
    let mut tx = pool.begin().await?;
    if !db::lock(&mut tx, org).await? {
        return Err(DomainError::NotFound(Entity::Organization));
    }
    if crate::store::accounts::card(&mut *tx, user)
        .await?
        .is_none()
    {
        return Err(DomainError::NotFound(Entity::User));
    }
    if !db::add_membership(&mut *tx, org, user, role.as_str()).await? {
        return Err(DomainError::Conflict(super::error::Conflict::AlreadyMember));
    }
    super::audit::change(
        &mut *tx,
        org,
        None,
        "membership.add",
        &user.to_string(),
        None,
        Some(serde_json::json!({"user_id": user, "role": role.as_str()})),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Change a member's role, audited, under the organization's row lock: the last owner cannot
/// be demoted ([`Removal::LastOwner`]), a non-member is [`Removal::NotMember`].
pub async fn set_role(
    pool: &PgPool,
    actor: Option<Uuid>,
    org: Uuid,
    user: Uuid,
    role: Role,
) -> Result<Removal, DomainError> {
    let mut tx = pool.begin().await?;
    if !db::lock(&mut tx, org).await? {
        return Err(DomainError::NotFound(Entity::Organization));
    }
    let Some(old) = db::role_of(&mut *tx, org, user).await? else {
        return Ok(Removal::NotMember);
    };
    if old == "owner" && role != Role::Owner && db::other_owners(&mut *tx, org, user).await? == 0 {
        return Ok(Removal::LastOwner);
    }
    db::set_role(&mut *tx, org, user, role.as_str()).await?;
    super::audit::change(
        &mut *tx,
        org,
        actor,
        "membership.role",
        &user.to_string(),
        Some(serde_json::json!({"user_id": user, "role": old})),
        Some(serde_json::json!({"user_id": user, "role": role.as_str()})),
    )
    .await?;
    tx.commit().await?;
    Ok(Removal::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_from_names() {
        assert_eq!(slugify("Padaria São João Ltda."), "padaria-sao-joao-ltda");
        assert_eq!(slugify("  --ACME--  "), "acme");
        assert_eq!(slugify("!!!"), "");
        assert!(
            valid_slug("acme-2") && !valid_slug("-acme") && !valid_slug("Acme") && !valid_slug("")
        );
    }
}
