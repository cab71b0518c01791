//! Latency of the queries behind `GET /api/usage/stats` (and `/api/usage/recent`) over one
//! million usage events of one organization, spread over 30 days, beside another million of
//! 100 other organizations.
//!
//! `cargo bench --bench usage_stats` (needs DATABASE_URL; creates and drops its own database).
//! Env: ROWS (default 1000000).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use catraca::store::usage;
use sqlx::Connection;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let url = std::env::var("DATABASE_URL").expect("set DATABASE_URL");
    let rows: i64 = std::env::var("ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = format!("catraca_bench_stats_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut admin).await.unwrap();
        let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&url);
        let pool = catraca::store::pg::pool(&format!("{base}/{db}"), 4).unwrap();
        catraca::store::pg::migrate(&pool).await.unwrap();
        let org: uuid::Uuid = sqlx::query_scalar("INSERT INTO organization (name) VALUES ('b') RETURNING organization_id")
            .fetch_one(&pool).await.unwrap();
        let t = Instant::now();
        // this organization's rows, and as many of other organizations
        sqlx::query(
            "INSERT INTO usage_event (request_id, organization_id, route, model, status, attempts, stream,
                 prompt_tokens, completion_tokens, usage_reported, latency_ms, client_disconnected, created_at,
                 cost_upstream_usd_micros)
             SELECT 'r' || g || '-' || o, CASE WHEN o = 0 THEN $1 ELSE md5((g % 100)::text)::uuid END, 'chat.completions',
                    (ARRAY['gpt-4o-mini','gpt-4o','claude-3-5-sonnet','llama-3-70b'])[1 + g % 4],
                    CASE WHEN g % 50 = 0 THEN 500 ELSE 200 END, 1, g % 2 = 0, 100 + g % 50, 20 + g % 30, true,
                    200 + g % 300, false, now() - (g % 2592000) * interval '1 second', 30 + g % 20
             FROM generate_series(1, $2) g, generate_series(0, 1) o",
        )
        .bind(org)
        .bind(rows)
        .execute(&pool)
        .await
        .unwrap();
        // the rollup the usage writer keeps, built here in one statement for the seeded events
        sqlx::query(
            "INSERT INTO usage_daily (organization_id, day, model, requests, successful, prompt_tokens,
                 completion_tokens, cost_usd_micros, latency_ms_sum)
             SELECT organization_id, (created_at AT TIME ZONE 'UTC')::date, coalesce(model, ''), count(*),
                    count(*) FILTER (WHERE status BETWEEN 200 AND 399), sum(prompt_tokens), sum(completion_tokens),
                    coalesce(sum(cost_upstream_usd_micros), 0), sum(latency_ms)
             FROM usage_event GROUP BY 1, 2, 3",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("ANALYZE").execute(&pool).await.unwrap();
        println!("seeded {} rows ({rows} of the measured organization) in {:.1} s", rows * 2, t.elapsed().as_secs_f64());

        let mut stats = Vec::new();
        let mut recent = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let tot = usage::totals(&pool, org, 31).await.unwrap();
            usage::series(&pool, org, 30, "day").await.unwrap();
            usage::by_model(&pool, org, 30).await.unwrap();
            stats.push(t.elapsed());
            assert_eq!(tot.requests, rows);
            let t = Instant::now();
            usage::recent(&pool, org, 1, 50).await.unwrap();
            recent.push(t.elapsed());
        }
        println!("GET /api/usage/stats?days=30 queries over {rows} events: median {:?} (min {:?}, max {:?})",
            median(stats.clone()), stats.iter().min().unwrap(), stats.iter().max().unwrap());
        println!("GET /api/usage/recent?page=1&per_page=50: median {:?}", median(recent));
        let mut metrics = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            usage::model_metrics(&pool, 7 * 86_400, 50).await.unwrap();
            metrics.push(t.elapsed());
        }
        println!("GET /api/models/metrics?window=7d over {} events: median {:?}", rows * 2, median(metrics));
        pool.close().await;
        if std::env::var("KEEP").is_ok() {
            println!("kept database {db}");
            return;
        }
        sqlx::query(&format!("DROP DATABASE {db} WITH (FORCE)")).execute(&mut admin).await.unwrap();
    });
}
