//! PyTake (`/api/v1/...`, issue 15): the route table only. Auth so far; errors are
//! `{detail, status_code, error_code}` (`wire`). `POST /api/v1/auth/refresh` is shared with
//! bradax: the handler dispatches on the refresh token's audience.

pub mod auth;
pub mod automations;
pub mod contacts;
pub mod docs;
pub mod flows;
pub mod secrets;
pub mod whatsapp;
pub mod wire;

use axum::routing::{get, post};

use crate::admin::AdminState;
use crate::admin::openapi::Api;

/// PyTake's mounted routes.
pub fn api() -> Api<AdminState> {
    Api::new("pytake")
        .route(
            "POST",
            "/api/v1/auth/register",
            "Register a user and their organization (as org_admin)",
            false,
            post(auth::register),
        )
        .route(
            "POST",
            "/api/v1/auth/login",
            "Log in: access and refresh token",
            false,
            post(auth::login),
        )
        .route(
            "POST",
            "/api/v1/auth/refresh",
            "Exchange a refresh token (PyTake's by audience; rotation with grace)",
            false,
            post(auth::refresh),
        )
        .route(
            "POST",
            "/api/v1/auth/logout",
            "End the session of a refresh token (or every PyTake session of the caller)",
            true,
            post(auth::logout),
        )
        .route(
            "GET",
            "/api/v1/auth/me",
            "The authenticated user",
            true,
            get(auth::me),
        )
        .route(
            "POST",
            "/api/v1/auth/forgot-password",
            "Mail a reset code (same answer whether or not the email exists)",
            false,
            post(auth::forgot_password),
        )
        .route(
            "POST",
            "/api/v1/auth/reset-password",
            "Set a new password with a reset code",
            false,
            post(auth::reset_password),
        )
        .merge(docs::routes())
        .merge(secrets::routes())
        .merge(contacts::routes())
        .merge(flows::routes())
        .merge(whatsapp::routes())
        .merge(automations::routes())
}
