//! The Tokia surface (`../shared/seeds/tokia-openapi.yaml`, servers `/v1`): customer routes
//! authenticated by an API key (`Authorization: Bearer sk-tokia-…`, resolved to its
//! organization and user by `domain::keys::resolve`), errors as
//! `{"error": {"message", "type", "code"}}` in pt-BR (English with `Accept-Language: en`).
//!
//! Mounted here: the money and usage routes (`usage`, `usage/export.csv`, `usage/export.json`,
//! `me/usage-summary`, `me/dashboard-stats`, `me/runway`, `usage/by-key`,
//! `me/recommendations`) and, in [`pix`], PIX top-ups. The AI routes, `/v1/models` and `usage/rate-limit` are the gateway's.
//!
//! Amounts are the ledger's exact micro-BRL integers, printed through
//! `Micros::json_number`; exports stream in constant memory.
//!
//! This module is the route table only; [`handlers`] parse, call `crate::domain` and render
//! with [`wire`].

pub mod account;
pub mod admin;
pub mod alerts;
pub mod handlers;
pub mod pix;
pub mod prompts;
pub mod public;
pub mod refunds;
pub mod sessions;
pub mod wire;

use axum::handler::Handler;
use axum::routing::{MethodRouter, get};

use crate::admin::AdminState;
use crate::admin::openapi::Api;
use handlers::*;

/// A GET route whose error answers follow the client's `Accept-Language`.
fn read<H, T>(h: H) -> MethodRouter<AdminState>
where
    H: Handler<T, AdminState>,
    T: 'static,
{
    get(h).layer(axum::middleware::from_fn(wire::language))
}

/// A route made by `r` (`get`, `post`, ...) whose error answers follow the client's
/// `Accept-Language`.
fn lang<H, T>(r: fn(H) -> MethodRouter<AdminState>, h: H) -> MethodRouter<AdminState>
where
    H: Handler<T, AdminState>,
    T: 'static,
{
    r(h).layer(axum::middleware::from_fn(wire::language))
}

/// Tokia's routes.
pub fn api() -> Api<AdminState> {
    Api::new("tokia")
        .route(
            "GET",
            "/v1/usage",
            "Histórico de uso + saldo",
            true,
            read(usage),
        )
        .route(
            "GET",
            "/v1/usage/export.csv",
            "Export uso CSV",
            true,
            read(export_csv),
        )
        .route(
            "GET",
            "/v1/usage/export.json",
            "Export uso JSON",
            true,
            read(export_json),
        )
        .route(
            "GET",
            "/v1/me/usage-summary",
            "Resumo compacto (saldo + totais + top 3 modelos)",
            true,
            read(usage_summary),
        )
        .route(
            "GET",
            "/v1/me/dashboard-stats",
            "Snapshot consolidado pra dashboards",
            true,
            read(dashboard_stats),
        )
        .route(
            "GET",
            "/v1/me/runway",
            "Runway estimado em dias",
            true,
            read(runway),
        )
        .route(
            "GET",
            "/v1/usage/by-key",
            "Breakdown de uso por API key",
            true,
            read(usage_by_key),
        )
        .route(
            "GET",
            "/v1/me/recommendations",
            "Recomendações de modelos mais baratos",
            true,
            read(recommendations),
        )
        .merge(pix::api())
        .merge(account::api())
        .merge(admin::api())
        .merge(alerts::api())
        .merge(prompts::api())
        .merge(sessions::api())
        .merge(public::api())
        .merge(refunds::api())
}

#[cfg(test)]
mod tests {
    /// Every operation of the Tokia seed (kept unchanged in `tests/contracts/`) is served:
    /// the AI routes, `/v1/models` and `usage/rate-limit` by the gateway, the rest by this
    /// surface at the seed's path and method.
    #[test]
    fn every_operation_of_the_seed_is_mounted() {
        let seed: serde_json::Value =
            serde_saphyr::from_str(include_str!("../../../tests/contracts/tokia-openapi.yaml"))
                .unwrap();
        let (_, docs) = super::api().into_parts();
        let mut n = 0;
        let mut missing = Vec::new();
        for (path, ops) in seed["paths"].as_object().unwrap() {
            let full = format!("/v1{path}");
            for method in ops.as_object().unwrap().keys() {
                n += 1;
                let method = method.to_uppercase();
                let gateway = crate::gateway::ctx::Route::from_path(&full).is_some();
                let surface = docs.iter().any(|d| d.method == method && d.path == full);
                if gateway == surface {
                    // neither, or both (a route the gateway would shadow)
                    missing.push(format!(
                        "{method} {full} (gateway {gateway}, surface {surface})"
                    ));
                }
            }
        }
        assert_eq!(n, 44, "the seed's operations");
        assert!(missing.is_empty(), "not served exactly once: {missing:#?}");
    }
}
