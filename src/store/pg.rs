//! Connection pool and the embedded migrations.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// Migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A lazily connecting pool: the gateway starts (and serves config keys and known keys) even
/// when Postgres is down; queries fail fast with `acquire_timeout`. Must be called inside a
/// Tokio runtime that lives as long as the pool (sqlx spawns its maintenance task there).
pub fn pool(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let opts: PgConnectOptions = url.parse()?;
    Ok(pool_with(opts, max_connections))
}

fn pool_with(opts: PgConnectOptions, max_connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy_with(opts.application_name("catraca"))
}

/// A pool created on first use, inside the runtime that uses it: Pingora gives each service its
/// own runtime and none exists while the server is being assembled.
pub struct LazyPool {
    opts: PgConnectOptions,
    max_connections: u32,
    cell: std::sync::OnceLock<PgPool>,
}

impl LazyPool {
    /// Parse the URL now (a bad URL fails at start), connect later.
    pub fn new(url: &str, max_connections: u32) -> Result<Self, sqlx::Error> {
        Ok(LazyPool {
            opts: url.parse()?,
            max_connections,
            cell: std::sync::OnceLock::new(),
        })
    }

    /// The pool; call from async code running on a long-lived runtime.
    pub fn get(&self) -> &PgPool {
        self.cell
            .get_or_init(|| pool_with(self.opts.clone(), self.max_connections))
    }
}

/// Apply pending migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
