//! Process-wide state shared by the gateway and the background services.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::gateway::route::Live;
use crate::metrics::Metrics;
use crate::store::key_cache::PgKeys;
use crate::usage::UsageSink;

/// Shared state. Everything a reload changes is the one [`Live`] in `live`, swapped whole.
pub struct Shared {
    /// Current routing snapshot.
    pub live: ArcSwap<Live>,
    /// The PIX receiver (the admin app's PIX routes read it; a reload sets it).
    pub pix: crate::domain::pix::Receiver,
    /// The config now serving, as the admin app reads it (a reload sets it).
    pub config: crate::config::current::Current,
    /// Metrics registry.
    pub metrics: Metrics,
    /// Usage events go here.
    pub usage: Arc<dyn UsageSink>,
    /// Keys stored in Postgres, when a database is configured.
    pub db_keys: Option<Arc<PgKeys>>,
    /// The admin app's listener: paths that are not AI routes are forwarded there.
    pub admin_addr: Option<std::net::SocketAddr>,
    /// Prepaid balances and key budgets, when a database is configured.
    pub funds: Option<Arc<crate::funds::Funds>>,
    /// Request, token and concurrency limits (local or Redis).
    pub limiter: crate::limits::Limiter,
    /// Requests in flight, for a graceful shutdown.
    pub in_flight: Arc<crate::gateway::conn::InFlight>,
    /// The admin app's token keys: the gateway verifies bradax access tokens with them
    /// (`None` without a database: no admin app, no bradax tokens).
    pub jwt: Option<Arc<crate::domain::accounts::Jwt>>,
    /// Usage events set aside as unwritable (Postgres mode).
    pub usage_quarantined: Arc<std::sync::atomic::AtomicU64>,
}
