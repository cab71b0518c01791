//! Tokia's handlers: parse the contract's input, call the domain, render with [`super::wire`].
//! Parameters are checked before anything is read; none is clamped.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::wire::{self, Caller, Query, TokiaError};
use crate::admin::AdminState;
use crate::domain::keys::KeyOwner;
use crate::domain::usage::{self, DEFAULT_TZ, Days, Period};
use crate::domain::{DomainError, keys, ledger, preferences};

type Answer = Result<Json<Value>, TokiaError>;

/// Rows gathered into one body chunk of an export.
const ROWS_PER_CHUNK: usize = 256;

/// An integer parameter: absent gives `default`; anything but an integer is a 400.
fn int(v: Option<&str>, field: &'static str, default: i64) -> Result<i64, TokiaError> {
    match v {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| DomainError::invalid(field, "an integer").into()),
    }
}

/// A `days` parameter bounded as the contract bounds it (default 30).
fn days(v: Option<&str>, min: i32, max: i32) -> Result<Days, TokiaError> {
    Ok(Days::between(int(v, "days", 30)?, min, max)?)
}

#[derive(Deserialize)]
pub struct DaysQ {
    days: Option<String>,
}

#[derive(Deserialize)]
pub struct LimitQ {
    limit: Option<String>,
}

#[derive(Deserialize)]
pub struct PeriodQ {
    from: Option<String>,
    to: Option<String>,
}

#[derive(Deserialize)]
pub struct ByKeyQ {
    days: Option<String>,
    key_id: Option<String>,
}

/// `GET /v1/usage`: the balance and the newest events (100, or `limit` from 1 to 100).
pub async fn usage(
    State(s): State<AdminState>,
    Caller(c): Caller,
    Query(q): Query<LimitQ>,
) -> Answer {
    let n = usage::newest_count(int(q.limit.as_deref(), "limit", usage::MAX_NEWEST)?)?;
    let wallet = ledger::wallet(&s.pool, c.organization_id).await?;
    let events = usage::newest(&s.pool, c.organization_id, DEFAULT_TZ, n).await?;
    Ok(Json(json!({
        "balance": wire::balance(&wallet),
        "usage_events": events.iter().map(wire::event).collect::<Vec<_>>(),
    })))
}

/// The export's period, in the time zone of the key's user (`PUT me/preferences`;
/// `America/Sao_Paulo` by default and for a key without a user).
async fn export_period(s: &AdminState, c: &KeyOwner, q: &PeriodQ) -> Result<Period, TokiaError> {
    let tz = preferences::timezone_of(&s.pool, c.user_id).await?;
    Ok(usage::period(&s.pool, q.from.as_deref(), q.to.as_deref(), &tz).await?)
}

fn stream_error(e: DomainError) -> std::io::Error {
    // the status line is gone: the answer is cut short, never ended as if complete
    std::io::Error::other(e.to_string())
}

/// `GET /v1/usage/export.csv`: the events of the period, streamed.
pub async fn export_csv(
    State(s): State<AdminState>,
    Caller(c): Caller,
    Query(q): Query<PeriodQ>,
) -> Result<Response, TokiaError> {
    let p = export_period(&s, &c, &q).await?;
    let head = futures_util::stream::once(async { Ok(Bytes::from(wire::csv_head())) });
    let rows = usage::export(&s.pool, c.organization_id, &p)
        .ready_chunks(ROWS_PER_CHUNK)
        .map(|chunk| {
            let mut out = String::new();
            for r in chunk {
                out.push_str(&wire::csv_line(&r.map_err(stream_error)?));
            }
            Ok::<_, std::io::Error>(Bytes::from(out))
        });
    let name = format!("attachment; filename=\"tokia-uso-{}-{}.csv\"", p.from, p.to);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        Body::from_stream(head.chain(rows)),
    )
        .into_response())
}

/// `GET /v1/usage/export.json`: `{period, events, total_events}`, streamed (the count comes
/// last, so it is exactly the rows sent).
pub async fn export_json(
    State(s): State<AdminState>,
    Caller(c): Caller,
    Query(q): Query<PeriodQ>,
) -> Result<Response, TokiaError> {
    let p = export_period(&s, &c, &q).await?;
    let period = json!({"from": p.from.to_string(), "to": p.to.to_string(), "timezone": p.tz});
    let head = format!("{{\"period\":{period},\"events\":[");
    let head = futures_util::stream::once(async move { Ok(Bytes::from(head)) });
    let count = Arc::new(AtomicI64::new(0));
    let counted = count.clone();
    let rows = usage::export(&s.pool, c.organization_id, &p)
        .ready_chunks(ROWS_PER_CHUNK)
        .map(move |chunk| {
            let mut out = String::new();
            for r in chunk {
                let e = r.map_err(stream_error)?;
                if counted.fetch_add(1, Ordering::Relaxed) > 0 {
                    out.push(',');
                }
                out.push_str(&wire::event(&e).to_string());
            }
            Ok::<_, std::io::Error>(Bytes::from(out))
        });
    let tail = futures_util::stream::once(async move {
        Ok(Bytes::from(format!(
            "],\"total_events\":{}}}",
            count.load(Ordering::Relaxed)
        )))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(head.chain(rows).chain(tail)),
    )
        .into_response())
}

/// `GET /v1/me/usage-summary?days=1..365`.
pub async fn usage_summary(
    State(s): State<AdminState>,
    Caller(c): Caller,
    Query(q): Query<DaysQ>,
) -> Answer {
    let d = days(q.days.as_deref(), 1, 365)?;
    let sum = usage::summary(&s.pool, c.organization_id, d).await?;
    Ok(Json(wire::summary(&sum)))
}

/// `GET /v1/me/dashboard-stats`.
pub async fn dashboard_stats(State(s): State<AdminState>, Caller(c): Caller) -> Answer {
    let d = usage::dashboard(&s.pool, c.organization_id, c.user_id).await?;
    Ok(Json(wire::dashboard(&d)))
}

/// `GET /v1/me/runway?days=1..90`.
pub async fn runway(
    State(s): State<AdminState>,
    Caller(c): Caller,
    Query(q): Query<DaysQ>,
) -> Answer {
    let d = days(q.days.as_deref(), 1, 90)?;
    let r = usage::runway(&s.pool, c.organization_id, d).await?;
    Ok(Json(wire::runway(&r)))
}

/// `GET /v1/usage/by-key?days=1..365&key_id=`.
pub async fn usage_by_key(
    State(s): State<AdminState>,
    Caller(c): Caller,
    Query(q): Query<ByKeyQ>,
) -> Answer {
    let d = days(q.days.as_deref(), 1, 365)?;
    let key = q
        .key_id
        .as_deref()
        .map(|k| {
            k.parse::<Uuid>()
                .map_err(|_| DomainError::invalid("key_id", "a UUID"))
        })
        .transpose()?;
    let list = keys::usage_by_key(&s.pool, c.organization_id, d, key).await?;
    Ok(Json(wire::by_key(d.get(), &list)))
}

/// `GET /v1/me/recommendations?days=7..90`.
pub async fn recommendations(
    State(s): State<AdminState>,
    Caller(c): Caller,
    Query(q): Query<DaysQ>,
) -> Answer {
    let d = days(q.days.as_deref(), 7, 90)?;
    let list = usage::recommendations(&s.pool, c.organization_id, d).await?;
    Ok(Json(wire::recommendations(d.get(), &list)))
}
