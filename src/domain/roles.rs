//! Roles in an organization and the one permission matrix every surface checks through
//! [`allows`] (via `orgs::authorize`). Contracts rename roles when they render them (SabIA
//! shows owners as `admin`); the rules are these.

use super::error::DomainError;

/// A member's role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Created the organization or was made owner; cannot be left without one.
    Owner,
    /// Manages keys, members, plan and webhooks.
    Admin,
    /// Uses the organization's keys and reads its data.
    Member,
    /// Reads only.
    Viewer,
}

/// What a member may want to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read the organization, its keys (never their plaintext), usage, billing, webhooks.
    Read,
    /// Create, change, disable and delete keys.
    ManageKeys,
    /// Add and remove members (anyone may remove themselves: [`Action::Leave`]).
    ManageMembers,
    /// Leave the organization.
    Leave,
    /// Change the plan.
    ChangePlan,
    /// Create webhooks.
    ManageWebhooks,
}

/// The matrix: rows are actions, columns owner / admin / member / viewer.
const MATRIX: &[(Action, [bool; 4])] = &[
    (Action::Read, [true, true, true, true]),
    (Action::ManageKeys, [true, true, false, false]),
    (Action::ManageMembers, [true, true, false, false]),
    (Action::Leave, [true, true, true, true]),
    (Action::ChangePlan, [true, true, false, false]),
    (Action::ManageWebhooks, [true, true, false, false]),
];

impl Role {
    /// Parse a stored or requested role name.
    pub fn parse(s: &str) -> Result<Role, DomainError> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            "viewer" => Ok(Role::Viewer),
            _ => Err(DomainError::invalid(
                "role",
                "owner, admin, member or viewer",
            )),
        }
    }

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    fn column(self) -> usize {
        match self {
            Role::Owner => 0,
            Role::Admin => 1,
            Role::Member => 2,
            Role::Viewer => 3,
        }
    }
}

/// Whether `role` may do `action`.
pub fn allows(role: Role, action: Action) -> bool {
    MATRIX
        .iter()
        .find(|(a, _)| *a == action)
        .is_some_and(|(_, cols)| cols[role.column()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_one_row_and_owners_may_do_everything() {
        for (a, cols) in MATRIX {
            assert_eq!(MATRIX.iter().filter(|(b, _)| b == a).count(), 1, "{a:?}");
            assert!(cols[0], "owners may {a:?}");
        }
        assert!(!allows(Role::Member, Action::ManageKeys));
        assert!(!allows(Role::Viewer, Action::ChangePlan));
        assert!(allows(Role::Viewer, Action::Read));
        assert!(allows(Role::Admin, Action::ManageWebhooks));
    }

    #[test]
    fn role_names_round_trip_and_unknown_names_are_invalid() {
        for r in [Role::Owner, Role::Admin, Role::Member, Role::Viewer] {
            assert_eq!(Role::parse(r.as_str()).ok(), Some(r));
        }
        assert!(Role::parse("root").is_err());
        assert!(Role::parse("Admin").is_err());
    }
}
