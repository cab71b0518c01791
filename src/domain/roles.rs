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
    /// PyTake: read a secret's value (everything else is [`Action::Read`]).
    ReadSecretValues,
    /// PyTake: send WhatsApp messages.
    SendWhatsApp,
    /// PyTake: create contacts.
    CreateContacts,
    /// PyTake: every other change in the organization (flows, automations, secrets, numbers).
    ManageContent,
}

/// The matrix: rows are actions, columns owner / admin / member / viewer.
const MATRIX: &[(Action, [bool; 4])] = &[
    (Action::Read, [true, true, true, true]),
    (Action::ManageKeys, [true, true, false, false]),
    (Action::ManageMembers, [true, true, false, false]),
    (Action::Leave, [true, true, true, true]),
    (Action::ChangePlan, [true, true, false, false]),
    (Action::ManageWebhooks, [true, true, false, false]),
    (Action::ReadSecretValues, [true, true, false, false]),
    (Action::SendWhatsApp, [true, true, true, false]),
    (Action::CreateContacts, [true, true, true, false]),
    (Action::ManageContent, [true, true, false, false]),
];

/// PyTake's role names over the same matrix: `org_admin` is an admin (the organization's
/// creator is its owner, shown as `org_admin` too), `agent` a member, `viewer` a viewer.
/// `super_admin` is not a membership but a flag on the person: stored as an admin membership
/// of the organization given plus the flag, and acting as an owner in any organization it
/// names (`X-Organization-Id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PyTakeRole {
    /// Every organization.
    SuperAdmin,
    /// Everything in its organization.
    OrgAdmin,
    /// Reads, sends WhatsApp messages, creates contacts.
    Agent,
    /// Reads everything but secret values.
    Viewer,
}

impl PyTakeRole {
    /// Parse a PyTake role name.
    pub fn parse(s: &str) -> Result<PyTakeRole, DomainError> {
        match s {
            "super_admin" => Ok(PyTakeRole::SuperAdmin),
            "org_admin" => Ok(PyTakeRole::OrgAdmin),
            "agent" => Ok(PyTakeRole::Agent),
            "viewer" => Ok(PyTakeRole::Viewer),
            _ => Err(DomainError::invalid(
                "role",
                "super_admin, org_admin, agent or viewer",
            )),
        }
    }

    /// PyTake's name.
    pub fn as_str(self) -> &'static str {
        match self {
            PyTakeRole::SuperAdmin => "super_admin",
            PyTakeRole::OrgAdmin => "org_admin",
            PyTakeRole::Agent => "agent",
            PyTakeRole::Viewer => "viewer",
        }
    }

    /// The membership stored for this role.
    pub fn membership(self) -> Role {
        match self {
            PyTakeRole::SuperAdmin | PyTakeRole::OrgAdmin => Role::Admin,
            PyTakeRole::Agent => Role::Member,
            PyTakeRole::Viewer => Role::Viewer,
        }
    }

    /// How a member with `role` (and the platform flag) is shown to PyTake.
    pub fn of(role: Role, super_admin: bool) -> PyTakeRole {
        match (super_admin, role) {
            (true, _) => PyTakeRole::SuperAdmin,
            (false, Role::Owner | Role::Admin) => PyTakeRole::OrgAdmin,
            (false, Role::Member) => PyTakeRole::Agent,
            (false, Role::Viewer) => PyTakeRole::Viewer,
        }
    }

    /// The column of the matrix this role is checked against ([`allows`]).
    pub fn acting(self) -> Role {
        match self {
            PyTakeRole::SuperAdmin => Role::Owner,
            r => r.membership(),
        }
    }
}

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

    #[test]
    fn pytake_matrix_viewer_reads_agent_sends_admins_do_everything() {
        use PyTakeRole::*;
        let pytake = [
            Action::Read,
            Action::ReadSecretValues,
            Action::SendWhatsApp,
            Action::CreateContacts,
            Action::ManageContent,
        ];
        let expect = |r: PyTakeRole, a: Action| match r {
            SuperAdmin | OrgAdmin => true,
            Agent => matches!(
                a,
                Action::Read | Action::SendWhatsApp | Action::CreateContacts
            ),
            Viewer => a == Action::Read,
        };
        for r in [SuperAdmin, OrgAdmin, Agent, Viewer] {
            for a in pytake {
                assert_eq!(allows(r.acting(), a), expect(r, a), "{r:?} {a:?}");
            }
        }
    }

    #[test]
    fn pytake_roles_round_trip_through_memberships() {
        for r in [
            PyTakeRole::SuperAdmin,
            PyTakeRole::OrgAdmin,
            PyTakeRole::Agent,
            PyTakeRole::Viewer,
        ] {
            assert_eq!(PyTakeRole::parse(r.as_str()).ok(), Some(r));
            let flag = r == PyTakeRole::SuperAdmin;
            assert_eq!(PyTakeRole::of(r.membership(), flag), r);
        }
        assert_eq!(PyTakeRole::of(Role::Owner, false), PyTakeRole::OrgAdmin);
        assert!(PyTakeRole::parse("owner").is_err() && PyTakeRole::parse("Agent").is_err());
    }
}
