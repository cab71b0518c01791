//! The MaxAI surface (`../shared/seeds/maxai-openapi.json`): paths under `/api/`, errors as
//! `{"error": "...", "details": "..."}`, integer key ids, USD amounts as JSON numbers.
//!
//! Every path of the contract is mounted: health, auth (register, login, refresh), customer
//! profile, API keys, usage stats and recent, model catalog, metrics and leaderboards,
//! templates (list, detail, render, run). `/v1/*` is the gateway's own. `/socket.io/` (live
//! events) is [`live`], layered on the admin router by `crate::admin::serve`.
//!
//! This module is the route table only; [`handlers`] parse, call `crate::domain` and render
//! with [`wire`].

pub mod handlers;
pub mod live;
pub mod wire;

use axum::routing::{delete, get, post, put};

use crate::admin::AdminState;
use crate::admin::openapi::Api;
use handlers::*;

/// MaxAI's routes.
pub fn api() -> Api<AdminState> {
    Api::new("maxai")
        .route(
            "GET",
            "/api/health",
            "Service liveness probe",
            false,
            get(health),
        )
        .route(
            "GET",
            "/api/realtime/health",
            "WebSocket layer health",
            false,
            get(realtime_health),
        )
        .route(
            "POST",
            "/api/auth/register",
            "Create a new customer account",
            false,
            post(register),
        )
        .route(
            "POST",
            "/api/auth/login",
            "Login with email + password",
            false,
            post(login),
        )
        .route(
            "POST",
            "/api/auth/refresh",
            "Refresh the access token",
            true,
            post(refresh),
        )
        // beyond the seed: ending a session and "who am I", which every dashboard needs
        .route(
            "POST",
            "/api/auth/logout",
            "End the session of a refresh token (catraca extension)",
            true,
            post(logout),
        )
        .route(
            "GET",
            "/api/auth/me",
            "The logged-in customer (catraca extension)",
            true,
            get(profile),
        )
        .route(
            "GET",
            "/api/customer/profile",
            "Get the authenticated customer's profile",
            true,
            get(profile),
        )
        .route(
            "PUT",
            "/api/customer/profile",
            "Update the authenticated customer's profile",
            true,
            put(update_profile),
        )
        .route(
            "GET",
            "/api/keys",
            "List the caller's API keys",
            true,
            get(list_keys),
        )
        .route(
            "POST",
            "/api/keys",
            "Create a new API key (returns plaintext once)",
            true,
            post(create_key),
        )
        .route(
            "DELETE",
            "/api/keys/{key_id}",
            "Revoke an API key",
            true,
            delete(revoke_key),
        )
        .route(
            "GET",
            "/api/usage/stats",
            "Aggregate usage stats for the caller",
            true,
            get(usage_stats),
        )
        .route(
            "GET",
            "/api/usage/recent",
            "Recent request logs (paginated)",
            true,
            get(usage_recent),
        )
        .route(
            "GET",
            "/api/models",
            "Dashboard model catalog (with pricing)",
            false,
            get(models),
        )
        .route(
            "GET",
            "/api/models/metrics",
            "Per-model performance metrics",
            false,
            get(model_metrics),
        )
        .route(
            "GET",
            "/api/models/leaderboards",
            "Top models by volume / latency / cost / tokens",
            false,
            get(leaderboards),
        )
        .route(
            "GET",
            "/api/templates",
            "List built-in + caller's personal templates",
            false,
            get(list_templates),
        )
        .route(
            "GET",
            "/api/templates/{template_id}",
            "Template detail",
            false,
            get(get_template),
        )
        .route(
            "POST",
            "/api/templates/{template_id}/render",
            "Preview rendered messages",
            false,
            post(render_template),
        )
        .route(
            "POST",
            "/api/templates/{template_id}/run",
            "Execute template against the gateway",
            true,
            post(run_template),
        )
}
