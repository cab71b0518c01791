//! Rows/s the Postgres usage writer sustains: `usage::pg::insert` in batches of
//! `usage.batch_size` (env `BATCH`, default `usage::DEFAULT_BATCH`), one batch at a time, as the writer task does.
//!
//! `cargo bench --bench usage_writer` (needs DATABASE_URL; creates and drops its own database).
//! Env: ROWS (default 200000).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Instant;

use catraca::usage::UsageEvent;
use catraca::usage::pg::insert;
use sqlx::Connection;

fn event(i: u64, key: Option<uuid::Uuid>, org: Option<uuid::Uuid>) -> UsageEvent {
    UsageEvent {
        request_id: format!("req_bench_{i:016x}"),
        ts: time::OffsetDateTime::now_utc(),
        key: Some("bench".into()),
        organization_id: org,
        api_key_id: key,
        route: "chat.completions".into(),
        model: Some(["gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet"][(i % 3) as usize].into()),
        deployment: Some("mock".into()),
        provider: Some("mock".into()),
        status: 200,
        error: None,
        attempts: 1,
        stream: i.is_multiple_of(2),
        prompt_tokens: 100 + i % 50,
        completion_tokens: 20 + i % 30,
        usage_reported: true,
        cached_tokens: 0,
        cache_write_tokens: 0,
        reasoning_tokens: 0,
        cost_upstream_usd_micros: Some(33),
        cost_billed_brl_micros: Some(231),
        latency_ms: 300 + i % 200,
        ttft_ms: Some(80),
        session_id: None,
        client_request_id: None,
        client_disconnected: false,
    }
}

fn main() {
    let url = std::env::var("DATABASE_URL").expect("set DATABASE_URL");
    let rows: u64 = std::env::var("ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = format!("catraca_bench_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut admin).await.unwrap();
        let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&url);
        let pool = catraca::store::pg::pool(&format!("{base}/{db}"), 2).unwrap();
        catraca::store::pg::migrate(&pool).await.unwrap();
        let org: uuid::Uuid = sqlx::query_scalar("INSERT INTO organization (name) VALUES ('b') RETURNING organization_id")
            .fetch_one(&pool).await.unwrap();
        let key: uuid::Uuid = sqlx::query_scalar(
            "INSERT INTO api_key (organization_id, key_hash, prefix, name) VALUES ($1, $2, 'sk-bench', 'b') RETURNING api_key_id")
            .bind(org).bind(vec![7u8; 32]).fetch_one(&pool).await.unwrap();

        let events: Vec<UsageEvent> = (0..rows).map(|i| event(i, Some(key), Some(org))).collect();
        let batch: usize = std::env::var("BATCH")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(catraca::usage::DEFAULT_BATCH as usize);
        let t = Instant::now();
        for chunk in events.chunks(batch) {
            insert(&pool, chunk).await.unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        println!("usage writer: {rows} rows in {secs:.2} s = {:.0} rows/s (batches of {batch}, key totals updated)", rows as f64 / secs);

        // replaying the same events (an outage replay) inserts nothing and counts nothing
        let t = Instant::now();
        for chunk in events.chunks(batch) {
            insert(&pool, chunk).await.unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        let (n, total): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM usage_event), (SELECT total_requests FROM api_key)")
            .fetch_one(&pool).await.unwrap();
        assert_eq!((n, total), (rows as i64, rows as i64), "replay must not duplicate");
        println!("replay of the same {rows} rows: {secs:.2} s = {:.0} rows/s, 0 inserted", rows as f64 / secs);

        pool.close().await;
        sqlx::query(&format!("DROP DATABASE {db} WITH (FORCE)")).execute(&mut admin).await.unwrap();
    });
}
