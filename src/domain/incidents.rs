//! Incidents (#14 item 10): declared and resolved by the operator
//! (`POST /admin/v1/incidents`, `POST /admin/v1/incidents/{id}/resolve`), listed publicly by
//! `GET /v1/incidents/active`; and the database health probe of `GET /v1/healthz/db`.

use std::time::{Duration, Instant};

use sqlx::PgPool;
use uuid::Uuid;

use super::error::DomainError;
pub use crate::store::incidents::IncidentRow as Incident;

/// The severities an incident may have.
pub const SEVERITIES: [&str; 4] = ["minor", "major", "critical", "maintenance"];
/// Longest title, characters.
pub const MAX_TITLE: usize = 200;
/// Longest message, characters.
pub const MAX_MESSAGE: usize = 4000;
/// A database slower than this to answer `SELECT 1` is reported down.
pub const DB_DEADLINE: Duration = Duration::from_secs(2);

/// Open an incident after checking its fields.
pub async fn create(
    pool: &PgPool,
    title: &str,
    severity: &str,
    message: &str,
) -> Result<Incident, DomainError> {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE {
        return Err(DomainError::invalid(
            "title",
            format!("1 to {MAX_TITLE} characters"),
        ));
    }
    if !SEVERITIES.contains(&severity) {
        return Err(DomainError::invalid(
            "severity",
            "one of minor, major, critical, maintenance",
        ));
    }
    if message.chars().count() > MAX_MESSAGE {
        return Err(DomainError::invalid(
            "message",
            format!("at most {MAX_MESSAGE} characters"),
        ));
    }
    Ok(crate::store::incidents::create(pool, title, severity, message).await?)
}

/// Resolve an incident; `None` if there is none with that id.
pub async fn resolve(pool: &PgPool, id: Uuid) -> Result<Option<Incident>, DomainError> {
    Ok(crate::store::incidents::resolve(pool, id).await?)
}

/// A breaker incident no gateway has seen open for this long is over.
pub const BREAKER_STALE: Duration = Duration::from_secs(30);

/// The active incidents, newest first: the operator's unresolved ones and the breaker
/// incidents of providers whose circuit a gateway saw open within [`BREAKER_STALE`].
pub async fn active(pool: &PgPool) -> Result<Vec<Incident>, DomainError> {
    Ok(crate::store::incidents::active(pool, BREAKER_STALE.as_secs_f64()).await?)
}

/// A gateway saw a circuit of `provider` open: keep
/// (or open) the provider's breaker incident.
pub async fn breaker_open(pool: &PgPool, provider: &str) -> Result<(), DomainError> {
    let title = format!("Instabilidade no provedor {provider}");
    let message = "Falhas seguidas abriram o disjuntor deste provedor: o gateway desvia as \
                   requisições para outros provedores quando há, até ele voltar a responder.";
    Ok(crate::store::incidents::breaker_seen(pool, provider, &title, message).await?)
}

/// Resolve the breaker incidents no gateway has seen open within [`BREAKER_STALE`].
pub async fn breaker_expire(pool: &PgPool) -> Result<u64, DomainError> {
    Ok(crate::store::incidents::breaker_expire(pool, BREAKER_STALE.as_secs_f64()).await?)
}

/// The database's answer to `SELECT 1`: whether it came within [`DB_DEADLINE`], and how long
/// it took (at most the deadline).
pub async fn db_health(pool: &PgPool) -> (bool, Duration) {
    let t0 = Instant::now();
    let ok = matches!(
        tokio::time::timeout(DB_DEADLINE, crate::store::incidents::ping(pool)).await,
        Ok(Ok(()))
    );
    (ok, t0.elapsed().min(DB_DEADLINE))
}
