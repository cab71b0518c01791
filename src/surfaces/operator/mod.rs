//! The operator API, `/admin/v1/*` on the admin listener (and through the gateway's port like
//! every admin path): what a platform's operator runs the platform with, authenticated by the
//! master key (`CATRACA_MASTER_KEY`, or its SHA-256 in `CATRACA_MASTER_KEY_SHA256`). Errors are
//! `{"error":{"code","message","details"}}`; ids are strings; money is exact decimal text.
//!
//! Mounted so far: users (create with a password or an invitation mail, get, disable),
//! organizations (create, list, get, disable, enable, their keys and members), their
//! ledger (top-up, refund, adjustment, idempotent by `Idempotency-Key`), API keys (create with
//! a prefix and limits, revoke, rotate), the audit log, refund requests (the queue, approve,
//! reject: [`refunds`]), and `/admin/v1/openapi.json`.

pub mod handlers;
pub mod refunds;
pub mod wire;

use axum::routing::{delete, get, patch, post};

use crate::admin::AdminState;
use crate::admin::openapi::Api;
use handlers::*;

/// The operator's routes (without the OpenAPI document, which [`crate::admin::router`] adds).
pub fn api() -> Api<AdminState> {
    Api::new("operator")
        .route(
            "POST",
            "/admin/v1/organizations",
            "Create an organization",
            true,
            post(create_org),
        )
        .route(
            "GET",
            "/admin/v1/organizations",
            "List organizations",
            true,
            get(list_orgs),
        )
        .route(
            "GET",
            "/admin/v1/organizations/{id}",
            "Get an organization",
            true,
            get(get_org),
        )
        .route(
            "POST",
            "/admin/v1/organizations/{id}/ledger",
            "Post a top-up, refund or adjustment (Idempotency-Key header)",
            true,
            post(post_ledger),
        )
        .route(
            "GET",
            "/admin/v1/organizations/{id}/ledger",
            "An organization's balance and latest ledger entries",
            true,
            get(ledger_statement),
        )
        .route(
            "POST",
            "/admin/v1/organizations/{id}/disable",
            "Disable an organization (its keys refused at once)",
            true,
            post(disable_org),
        )
        .route(
            "POST",
            "/admin/v1/organizations/{id}/enable",
            "Enable an organization again",
            true,
            post(enable_org),
        )
        .route(
            "GET",
            "/admin/v1/organizations/{id}/keys",
            "An organization's API keys",
            true,
            get(org_keys),
        )
        .route(
            "GET",
            "/admin/v1/audit",
            "The audit log, filtered",
            true,
            get(audit),
        )
        .route(
            "POST",
            "/admin/v1/users",
            "Create a user in an organization",
            true,
            post(create_user),
        )
        .route(
            "GET",
            "/admin/v1/users/{id}",
            "A user and their memberships",
            true,
            get(get_user),
        )
        .route(
            "POST",
            "/admin/v1/users/{id}/disable",
            "Disable a user (logins refused, sessions ended)",
            true,
            post(disable_user),
        )
        .route(
            "GET",
            "/admin/v1/organizations/{id}/members",
            "An organization's members",
            true,
            get(org_members),
        )
        .route(
            "POST",
            "/admin/v1/keys",
            "Create an API key (plaintext answered once)",
            true,
            post(create_key),
        )
        .route(
            "POST",
            "/admin/v1/keys/{id}/revoke",
            "Revoke an API key",
            true,
            post(revoke_key),
        )
        .route(
            "POST",
            "/admin/v1/keys/{id}/rotate",
            "Rotate an API key (new plaintext once; the old one refused within a second)",
            true,
            post(rotate_key),
        )
        .route(
            "PATCH",
            "/admin/v1/organizations/{id}",
            "Change an organization's name, plan and limits (absent kept, null cleared)",
            true,
            patch(update_org),
        )
        .route(
            "POST",
            "/admin/v1/organizations/{id}/members",
            "Add a user to an organization with a role",
            true,
            post(add_member),
        )
        .route(
            "PATCH",
            "/admin/v1/organizations/{id}/members/{user_id}",
            "Change a member's role (the last owner keeps theirs)",
            true,
            patch(set_member_role),
        )
        .route(
            "DELETE",
            "/admin/v1/organizations/{id}/members/{user_id}",
            "Remove a member (never the last owner)",
            true,
            delete(remove_member),
        )
        .route(
            "GET",
            "/admin/v1/users",
            "List users (by organization, by email substring)",
            true,
            get(list_users),
        )
        .route(
            "POST",
            "/admin/v1/plans",
            "Create a plan",
            true,
            post(create_plan),
        )
        .route(
            "GET",
            "/admin/v1/plans",
            "List plans",
            true,
            get(list_plans),
        )
        .route(
            "GET",
            "/admin/v1/plans/{code}",
            "One plan",
            true,
            get(get_plan),
        )
        .route(
            "PATCH",
            "/admin/v1/plans/{code}",
            "Change a plan's price, quota, limits or features (organizations on it follow at once)",
            true,
            patch(update_plan),
        )
        .route(
            "GET",
            "/admin/v1/usage",
            "Usage per UTC day and organization, key or model (JSON, or CSV with format=csv)",
            true,
            get(usage_report),
        )
        .route(
            "POST",
            "/admin/v1/webhooks",
            "Create a webhook for an organization (its signing secret answered once)",
            true,
            post(create_webhook),
        )
        .route(
            "GET",
            "/admin/v1/webhooks",
            "An organization's webhooks",
            true,
            get(list_webhooks),
        )
        .route(
            "GET",
            "/admin/v1/webhooks/{id}/attempts",
            "A webhook's delivery attempts, newest first (limit 1-200, default 50)",
            true,
            get(webhook_attempts),
        )
        .route(
            "POST",
            "/admin/v1/pix/charges",
            "Create a PIX charge (a top-up): its BR Code \"copia e cola\" and expiry",
            true,
            post(create_pix_charge),
        )
        .route(
            "GET",
            "/admin/v1/pix/charges/{id}",
            "A PIX charge and its status (pending, paid, expired)",
            true,
            get(get_pix_charge),
        )
        .route(
            "POST",
            "/admin/v1/incidents",
            "Open an incident on the public status page ({title, severity, message})",
            true,
            post(create_incident),
        )
        .route(
            "POST",
            "/admin/v1/incidents/{id}/resolve",
            "Resolve an incident (gone from GET /v1/incidents/active)",
            true,
            post(resolve_incident),
        )
        .merge(refunds::api())
}
