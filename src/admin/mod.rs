//! The management app: axum over the same Postgres as the gateway, served beside it by
//! `catraca serve` (and alone by `catraca admin`). The gateway forwards every path that is not
//! AI traffic here, so a client sees one host.
//!
//! Rules live in the domain core (`crate::domain`), statements in `crate::store`; each seed
//! contract is a surface mounted at that contract's paths with its JSON shapes
//! (`crate::surfaces`). This module is the app itself: its state, the shared extractors, the
//! generated OpenAPI, and serving.

pub mod deprecation;
pub mod extract;
pub mod openapi;

/// Webhooks moved to the domain core; the old path stays for callers outside the crate.
pub use crate::domain::webhooks;

/// Accounts moved to the domain core; the old path stays for the surfaces not yet moved.
pub use crate::domain::accounts as auth;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use sqlx::PgPool;
use tokio::sync::watch;

/// What every handler can reach.
#[derive(Clone)]
pub struct AdminState {
    /// Database.
    pub pool: PgPool,
    /// The PIX receiver of the config now serving.
    pub pix: crate::domain::pix::Receiver,
    /// The config now serving (deprecated routes, providers for the vault's checks); a reload
    /// sets it.
    pub config: crate::config::current::Current,
    /// Access-token keys.
    pub jwt: Arc<auth::Jwt>,
    /// Process start, for uptime.
    pub started: Instant,
    /// The gateway's own base URL (`http://127.0.0.1:8080`), for template runs.
    pub gateway_url: Option<String>,
    /// HTTP client for calls to the gateway.
    pub http: reqwest::Client,
    /// Encryption of stored secrets (webhook signing secrets); `None` without
    /// `CATRACA_SECRET_KEY`, and then no secret can be stored.
    pub secrets: Option<Arc<crate::secrets::SecretBox>>,
    /// What webhook calls may reach.
    pub outbound: crate::domain::outbound::Policy,
    /// The gateway's state when the admin app runs in its process (`catraca serve`): its key
    /// cache and limiter, so a bradax token's key limits also bind its admin-app calls.
    /// `None` for `catraca admin` alone.
    pub gate: Option<Arc<crate::state::Shared>>,
    /// PyTake's WhatsApp Cloud API settings (read at start).
    pub whatsapp: Arc<crate::config::resolve::WhatsappConfig>,
    /// bradax's vector collections (Postgres, with the vectors cached in memory).
    pub vectors: Arc<dyn crate::domain::vectors::VectorStore>,
}

impl AdminState {
    /// What the webhook sender needs from this state.
    pub fn webhook_sender(&self) -> webhooks::Sender {
        webhooks::Sender {
            pool: self.pool.clone(),
            secrets: self.secrets.clone(),
            outbound: self.outbound,
        }
    }
}

/// RFC 3339 text of a time, as every surface prints timestamps.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Every mounted route, and `/openapi.json` describing them.
pub fn router(state: AdminState) -> Router {
    let (router, docs) = api().into_parts();
    let doc = axum::Json(openapi::document(&docs));
    let (_, operator_docs) = crate::surfaces::operator::api().into_parts();
    let operator_doc = axum::Json(openapi::document(&operator_docs));
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || async move { doc }),
        )
        .route(
            "/admin/v1/openapi.json",
            axum::routing::get(move || async move { operator_doc }),
        )
        // a path no surface mounts: marked, so tests can tell it from a handler's own 404
        .fallback(|| async {
            (
                axum::http::StatusCode::NOT_FOUND,
                [("x-catraca-route", "none")],
                axum::Json(serde_json::json!({"error": "not_found", "details": "no such route"})),
            )
        })
        .layer(axum::middleware::from_fn(audit_context))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            deprecation::mark,
        ))
        .with_state(state)
}

/// Every request runs in an audit context: the operator API acts as `operator`, the rest as
/// the logged-in user; the source address is the client's as the gateway saw it, else the
/// connection's peer.
async fn audit_context(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ctx = crate::domain::audit::Context {
        actor: req
            .uri()
            .path()
            .starts_with("/admin/v1/")
            .then_some("operator"),
        source_ip: extract::client_ip(req.headers())
            .or(peer)
            .map(|ip| ip.to_string()),
    };
    crate::domain::audit::scoped(ctx, next.run(req)).await
}

/// Every contract surface, as mounted.
pub fn api() -> openapi::Api<AdminState> {
    openapi::Api::new("catraca")
        .merge(crate::surfaces::bradax::api())
        .merge(crate::surfaces::maxai::api())
        .merge(crate::surfaces::operator::api())
        .merge(crate::surfaces::pytake::api())
        .merge(crate::surfaces::sabia::api())
        .merge(crate::surfaces::tokia::api())
}

/// The JWT secret: `CATRACA_JWT_SECRET` (32 bytes or more), or a random one for this process
/// (sessions then end on restart and are not shared between nodes; logged).
pub fn jwt_from_env() -> auth::Jwt {
    match std::env::var("CATRACA_JWT_SECRET") {
        Ok(s) if s.len() >= 32 => auth::Jwt::new(s.as_bytes()),
        Ok(_) => {
            tracing::error!("CATRACA_JWT_SECRET is shorter than 32 bytes; using a random secret");
            auth::Jwt::new(auth::random_token().as_bytes())
        }
        Err(_) => {
            tracing::warn!(
                "CATRACA_JWT_SECRET is not set; using a random secret (sessions end on restart and are not shared between nodes)"
            );
            auth::Jwt::new(auth::random_token().as_bytes())
        }
    }
}

/// How often due webhook deliveries are looked for (`CATRACA_WEBHOOK_POLL_MS`, default 1000).
fn webhook_poll() -> std::time::Duration {
    std::time::Duration::from_millis(
        std::env::var("CATRACA_WEBHOOK_POLL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000),
    )
}

/// The flow-automation runner of this app: polls every `CATRACA_AUTOMATION_POLL_MS` (default
/// 500) when idle; a claim holds `CATRACA_AUTOMATION_LEASE_MS` (default 90000, above the
/// longest node: a Graph call 30 s, an `ai` call 60 s) past the last node executed, after
/// which another runner resumes the job.
fn automation_runner(state: &AdminState) -> crate::domain::automations::Runner {
    let ms = |name: &str, default: u64| {
        std::time::Duration::from_millis(
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|v| *v > 0)
                .unwrap_or(default),
        )
    };
    crate::domain::automations::Runner {
        pool: state.pool.clone(),
        keys: state.secrets.clone(),
        whatsapp: state.whatsapp.clone(),
        http: state.http.clone(),
        gateway_url: state.gateway_url.clone(),
        poll: ms("CATRACA_AUTOMATION_POLL_MS", 500),
        lease: ms("CATRACA_AUTOMATION_LEASE_MS", 90_000),
        batch: 8,
    }
}

/// Serve the admin app on `addr` until shutdown; deliver webhooks beside it.
pub async fn serve(addr: SocketAddr, state: AdminState, mut shutdown: watch::Receiver<bool>) {
    let listener = match crate::server::bind_reusable(addr) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot bind the admin listener");
            return;
        }
    };
    tracing::info!(%addr, "admin app listening");
    tokio::spawn(webhooks::run(
        state.webhook_sender(),
        webhook_poll(),
        shutdown.clone(),
    ));
    // PyTake's flow automations: durable jobs claimed from Postgres
    tokio::spawn(automation_runner(&state).run(shutdown.clone()));
    // MaxAI's live events (`/socket.io/`) and their feed
    let (live_layer, live) = crate::surfaces::maxai::live::start(state.clone(), shutdown.clone());
    let app = router(state).layer(live_layer).layer(axum::Extension(live));
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await;
}
