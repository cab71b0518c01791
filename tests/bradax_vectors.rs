//! bradax vectors (issue 15 item 11): upsert all-or-nothing (every problem listed, nothing
//! stored), the collection's dimension fixed by its first upsert, text embedded through the
//! gateway with the caller's token (metered: usage events of the caller's key), similar text
//! ranked first with the mock's word-dependent embeddings, threshold and exact filters, an
//! unknown collection 404 (after malformed input 400), another project seeing nothing, a
//! token without the scope 403. And the measurement of query latency at 10k and 100k
//! documents of 1536 dimensions (ignored; `scripts/bench_bradax.sh`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::bradax as bx;
use crate::common::{Gateway, Mock, call, db_url};

pub const MASTER: &str = "bradax-vec-master-key-0123456789";
const SECRET: &str = "bradax-vec-jwt-secret-0123456789-abcdef";

pub const ALL: [&str; 6] = [
    "invoke_llm",
    "read_vector",
    "write_vector",
    "deploy_graph",
    "execute_graph",
    "read_metrics",
];

/// A gateway with a chat model (`gpt-4o-mini`) and an embedding model
/// (`text-embedding-3-small`) served by the mock.
pub async fn start(pool: &PgPool, extra: &str) -> (Gateway, Mock) {
    let mock = Mock::start().await;
    let gw = Gateway::start_with_env(
        &format!(
            r#"providers:
  - {{name: p, base_url: "{}", forward_headers: [x-mock-*]}}
deployments:
  - {{name: d, provider: p, model: up}}
  - {{name: de, provider: p, model: up-emb}}
models:
  - {{name: gpt-4o-mini, deployments: [d], input_usd_per_1m: "0.15", output_usd_per_1m: "0.60"}}
  - {{name: text-embedding-3-small, category: embedding, deployments: [de], input_usd_per_1m: "0.02"}}
{extra}"#,
            mock.base()
        ),
        &[
            ("DATABASE_URL", &db_url(pool, None)),
            ("CATRACA_MASTER_KEY", MASTER),
            ("CATRACA_JWT_SECRET", SECRET),
        ],
    )
    .await;
    (gw, mock)
}

/// A project of `tier` (`slug`); its organization id.
pub async fn project(gw: &Gateway, slug: &str, tier: &str) -> String {
    bx::project(gw, MASTER, slug, slug, tier).await
}

/// An access token of a new `bx_live_` key of project `slug` with `scopes`.
pub async fn token(gw: &Gateway, org: &str, slug: &str, scopes: &[&str]) -> String {
    bx::token(gw, MASTER, org, slug, scopes).await
}

/// The error body is bradax's shape with `status` and `error`; its detail codes.
pub fn bx_error(s: u16, v: &Value, status: u16, error: &str) -> Vec<String> {
    assert_eq!(s, status, "{v}");
    assert_eq!(v["error"], json!(error), "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(v["request_id"].as_str().is_some(), "{v}");
    assert!(v["timestamp"].as_str().is_some(), "{v}");
    v["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert!(d["message"].as_str().is_some(), "{v}");
            d["code"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Usage events of route `route` stored so far.
pub async fn usage_events(pool: &PgPool, route: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM usage_event WHERE route = $1 AND status = 200")
        .bind(route)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Wait until at least `n` usage events of `route` are stored.
pub async fn wait_usage(pool: &PgPool, route: &str, n: i64) -> i64 {
    // generous: the batching usage writer of a gateway on a loaded CI box can lag
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = usage_events(pool, route).await;
        if c >= n {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} {route} usage events, have {c}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn unit(dim: usize, hot: usize) -> Vec<f64> {
    (0..dim)
        .map(|i| if i == hot { 1.0 } else { 0.01 })
        .collect()
}

async fn documents(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM vector_document")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn upsert_and_query_end_to_end(pool: PgPool) {
    let (gw, _mock) = start(&pool, "").await;
    let org = project(&gw, "fraude-claims", "full").await;
    let tok = token(&gw, &org, "fraude-claims", &ALL).await;

    // the first upsert fixes the dimension (64, from the one vector given); the texts are
    // embedded through the gateway at that dimension
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/claims/upsert",
        Some(&tok),
        Some(json!({"documents": [
            {"id": "anchor", "vector": unit(64, 3), "metadata": {"category": "outros"}},
            {"id": "roubo-veiculo", "text": "roubo de veículo na rua durante a noite",
             "metadata": {"category": "sinistros", "title": "Roubo"}},
            {"id": "incendio", "text": "incêndio destruiu a casa de praia",
             "metadata": {"category": "residencial"}},
            {"id": "receita", "text": "receita de bolo de cenoura com chocolate",
             "metadata": {"category": "culinaria"}},
            {"id": "celular", "text": "furto de celular dentro do ônibus lotado",
             "metadata": {"category": "sinistros"}},
        ]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["upserted"], 5, "{v}");
    assert!(v["timestamp"].as_str().is_some(), "{v}");
    let dim: i32 =
        sqlx::query_scalar("SELECT dimension FROM vector_collection WHERE name = 'claims'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(dim, 64);
    // the embeddings were the caller's metered requests
    wait_usage(&pool, "embeddings", 1).await;

    // similar text ranks first (the mock's embeddings depend on the words)
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/claims/query",
        Some(&tok),
        Some(json!({"query_text": "roubo de veículo", "top_k": 3})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 3, "{v}");
    assert_eq!(r[0]["id"], "roubo-veiculo", "{v}");
    assert_eq!(r[0]["metadata"]["title"], "Roubo", "{v}");
    assert_eq!(
        r[0]["text"], "roubo de veículo na rua durante a noite",
        "{v}"
    );
    let scores: Vec<f64> = r.iter().map(|x| x["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(scores[0] > scores[1], "{scores:?}");
    // two query embeddings so far besides the upsert's
    wait_usage(&pool, "embeddings", 2).await;

    // threshold: the minimum cosine (the same text scores 1)
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/claims/query",
        Some(&tok),
        Some(json!({"query_text": "incêndio destruiu a casa de praia", "top_k": 5, "threshold": 0.99})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 1, "{v}");
    assert_eq!(r[0]["id"], "incendio");
    assert!(r[0]["score"].as_f64().unwrap() > 0.999, "{v}");

    // filters: every key equal
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/claims/query",
        Some(&tok),
        Some(json!({"query_text": "roubo de veículo", "top_k": 5, "filters": {"category": "sinistros"}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let ids: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["roubo-veiculo", "celular"], "{v}");
    let (_, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/claims/query",
        Some(&tok),
        Some(
            json!({"query_text": "roubo", "filters": {"category": "sinistros", "title": "Roubo"}}),
        ),
    )
    .await;
    assert_eq!(v["results"].as_array().unwrap().len(), 1, "{v}");

    // a vector query: no embedding call; the anchor's own direction scores 1
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/claims/query",
        Some(&tok),
        Some(json!({"vector": unit(64, 3), "top_k": 1})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"][0]["id"], "anchor", "{v}");
    assert!(v["results"][0]["score"].as_f64().unwrap() > 0.999, "{v}");

    // an upsert replaces a document by id, and the next query sees it (cached vectors refresh)
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/claims/upsert",
        Some(&tok),
        Some(
            json!({"documents": [{"id": "receita", "vector": unit(64, 3), "text": "agora perto"}]}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/claims/query",
        Some(&tok),
        Some(json!({"vector": unit(64, 3), "top_k": 2, "threshold": 0.999})),
    )
    .await;
    let mut ids: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["anchor", "receita"], "{v}");
    assert_eq!(documents(&pool).await, 5);
}

#[sqlx::test(migrations = "./migrations")]
async fn refusals_change_nothing(pool: PgPool) {
    let (gw, _mock) = start(&pool, "").await;
    let org = project(&gw, "acme", "full").await;
    let tok = token(&gw, &org, "acme", &ALL).await;
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/c1/upsert",
        Some(&tok),
        Some(json!({"documents": [{"id": "a", "vector": [1.0, 0.0, 0.0]}]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let version = || async {
        sqlx::query_scalar::<_, i64>("SELECT version FROM vector_collection WHERE name = 'c1'")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let v0 = version().await;
    let embeds = usage_events(&pool, "embeddings").await;

    // all or nothing: one good document and several bad ones → 400 naming every problem
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/c1/upsert",
        Some(&tok),
        Some(json!({"documents": [
            {"id": "good", "vector": [0.0, 1.0, 0.0]},
            {"id": "", "vector": [1.0, 1.0, 1.0]},
            {"id": "wrong-dim", "vector": [1.0, 2.0]},
            {"id": "meta", "vector": [1.0, 2.0, 3.0], "metadata": [1, 2]},
            {"id": "nothing"},
            {"id": "zero", "vector": [0.0, 0.0, 0.0]},
            {"id": "huge", "vector": [1e39, 0.0, 0.0]},
            {"id": "good", "vector": [0.0, 0.0, 1.0]},
        ]})),
    )
    .await;
    let codes = bx_error(s, &v, 400, "validation_error");
    for c in [
        "INVALID_ID",
        "DIMENSION_MISMATCH",
        "INVALID_METADATA",
        "MISSING_VECTOR",
        "INVALID_VECTOR",
        "DUPLICATE_ID",
    ] {
        assert!(codes.iter().any(|x| x == c), "{c} missing: {v}");
    }
    assert!(codes.len() >= 7, "{v}");
    // JSON types are checked for every document too
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/c1/upsert",
        Some(&tok),
        Some(json!({"documents": [{"id": "x", "vector": ["a"]}, {"vector": [1.0]}, 7, {"id": "y", "txt": "typo"}]})),
    )
    .await;
    let codes = bx_error(s, &v, 400, "validation_error");
    assert_eq!(codes.len(), 4, "{v}");
    assert_eq!(documents(&pool).await, 1);
    assert_eq!(version().await, v0);

    // dimension mismatch, query side
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/c1/query",
        Some(&tok),
        Some(json!({"vector": [1.0, 0.0]})),
    )
    .await;
    assert_eq!(
        bx_error(s, &v, 400, "validation_error"),
        ["DIMENSION_MISMATCH"]
    );

    // malformed input is a 400 before an unknown collection is a 404
    for (body, code) in [
        (json!({"query_text": "x", "top_k": 0}), "INVALID_TOP_K"),
        (json!({"query_text": "x", "top_k": 101}), "INVALID_TOP_K"),
        (
            json!({"query_text": "x", "threshold": 1.5}),
            "INVALID_THRESHOLD",
        ),
        (
            json!({"query_text": "x", "filters": [1]}),
            "INVALID_FILTERS",
        ),
        (json!({"top_k": 3}), "MISSING_QUERY"),
        (
            json!({"query_text": "x", "vector": [1.0]}),
            "AMBIGUOUS_QUERY",
        ),
        (json!({"vector": [0.0, 0.0]}), "INVALID_VECTOR"),
    ] {
        let (s, v) = call(
            &gw,
            "POST",
            "/api/v1/vectors/nope/query",
            Some(&tok),
            Some(body),
        )
        .await;
        assert_eq!(bx_error(s, &v, 400, "validation_error"), [code], "{v}");
    }
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/bad%20name/query",
        Some(&tok),
        Some(json!({"query_text": "x"})),
    )
    .await;
    assert_eq!(
        bx_error(s, &v, 400, "validation_error"),
        ["INVALID_COLLECTION"]
    );
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/nope/query",
        Some(&tok),
        Some(json!({"query_text": "x"})),
    )
    .await;
    bx_error(s, &v, 404, "not_found");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/nope/query",
        Some(&tok),
        Some(json!({"vector": [1.0]})),
    )
    .await;
    bx_error(s, &v, 404, "not_found");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/c1/query",
        Some(&tok),
        Some(json!({"query_text": "x", "bogus": 1})),
    )
    .await;
    bx_error(s, &v, 400, "validation_error");

    // nothing was embedded for refused requests, and nothing stored
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(usage_events(&pool, "embeddings").await, embeds);
    assert_eq!(documents(&pool).await, 1);

    // another project sees nothing of this one, and has its own namespace
    let other = project(&gw, "other", "full").await;
    let otok = token(&gw, &other, "other", &ALL).await;
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/c1/query",
        Some(&otok),
        Some(json!({"vector": [1.0, 0.0, 0.0]})),
    )
    .await;
    bx_error(s, &v, 404, "not_found");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/c1/upsert",
        Some(&otok),
        Some(json!({"documents": [{"id": "a", "vector": [1.0, 0.0], "metadata": {"mine": true}}]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/c1/query",
        Some(&tok),
        Some(json!({"vector": [1.0, 0.0, 0.0]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["results"][0]["metadata"], json!({}), "{v}");

    // a token without the scope: 403 whatever the body; no token: 401
    let read_only = token(&gw, &org, "acme", &["read_vector"]).await;
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/c1/upsert",
        Some(&read_only),
        Some(json!({"documents": [{"id": "z", "vector": [1.0, 1.0, 1.0]}]})),
    )
    .await;
    bx_error(s, &v, 403, "insufficient_scope");
    let llm_only = token(&gw, &org, "acme", &["invoke_llm"]).await;
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/c1/query",
        Some(&llm_only),
        Some(json!({"top_k": "junk"})),
    )
    .await;
    bx_error(s, &v, 403, "insufficient_scope");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/c1/query",
        None,
        Some(json!({"vector": [1.0, 0.0, 0.0]})),
    )
    .await;
    bx_error(s, &v, 401, "authentication_failed");
    assert_eq!(documents(&pool).await, 2);
}

/// Query latency through the route at `n` documents of 1536 dimensions (release build):
/// `CATRACA_BENCH_DOCS=10000,100000 cargo nextest run --release --test integration
/// bradax_vectors::measure_query_latency --run-ignored only --no-capture`.
#[sqlx::test(migrations = "./migrations")]
#[ignore = "a measurement: scripts/bench_bradax.sh"]
async fn measure_query_latency(pool: PgPool) {
    const DIM: usize = 1536;
    let sizes: Vec<usize> = std::env::var("CATRACA_BENCH_DOCS")
        .unwrap_or_else(|_| "10000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let queries: usize = std::env::var("CATRACA_BENCH_QUERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let (gw, _mock) = start(&pool, "").await;
    let org = project(&gw, "bench", "full").await;
    let tok = token(&gw, &org, "bench", &ALL).await;
    let client = reqwest::Client::new();
    for n in sizes {
        let name = format!("bench{n}");
        // the collection through the route (fixes the dimension), the rest generated in SQL
        let (s, v) = call(
            &gw,
            "POST",
            &format!("/api/v1/vectors/{name}/upsert"),
            Some(&tok),
            Some(json!({"documents": [{"id": "seed", "vector": unit(DIM, 0)}]})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let t = Instant::now();
        sqlx::query(
            "INSERT INTO vector_document (vector_collection_id, document_id, vector, norm, metadata, version)
             SELECT c.vector_collection_id, 'd' || g, v.vec,
                    sqrt((SELECT sum(x * x) FROM unnest(v.vec) x))::real,
                    jsonb_build_object('bucket', g % 10), c.version
               FROM vector_collection c
              CROSS JOIN generate_series(1, $2) g
              CROSS JOIN LATERAL (SELECT array_agg((random() - 0.5 + 0 * i)::real) AS vec
                                    FROM generate_series(1, $3) i WHERE g > 0) v
              WHERE c.name = $1",
        )
        .bind(&name)
        .bind((n - 1) as i32)
        .bind(DIM as i32)
        .execute(&pool)
        .await
        .unwrap();
        // a version bump so the loaded copy (if any) is stale
        sqlx::query("UPDATE vector_collection SET version = version + 1 WHERE name = $1")
            .bind(&name)
            .execute(&pool)
            .await
            .unwrap();
        let fill = t.elapsed();
        let q: Vec<f32> = (0..DIM)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let body = json!({"vector": q, "top_k": 10}).to_string();
        let one = || async {
            let t = Instant::now();
            let r = client
                .post(gw.url(&format!("/api/v1/vectors/{name}/query")))
                .bearer_auth(&tok)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["results"].as_array().unwrap().len(), 10);
            t.elapsed()
        };
        let first = one().await; // loads the collection into memory
        let mut lat: Vec<Duration> = Vec::with_capacity(queries);
        for _ in 0..queries {
            lat.push(one().await);
        }
        lat.sort();
        let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
        // with a filter (one bucket in ten) and after an upsert (refresh of one row)
        let fbody = json!({"vector": q, "top_k": 10, "filters": {"bucket": 3}}).to_string();
        let t = Instant::now();
        let r = client
            .post(gw.url(&format!("/api/v1/vectors/{name}/query")))
            .bearer_auth(&tok)
            .header("content-type", "application/json")
            .body(fbody)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let filtered = t.elapsed();
        let (s, _) = call(
            &gw,
            "POST",
            &format!("/api/v1/vectors/{name}/upsert"),
            Some(&tok),
            Some(json!({"documents": [{"id": "seed", "vector": unit(DIM, 1)}]})),
        )
        .await;
        assert_eq!(s, 200);
        let after_upsert = one().await;
        eprintln!(
            "vectors n={n} dim={DIM}: fill {fill:?}; first query (load from Postgres) {first:?}; \
             {queries} queries p50 {:?} p99 {:?} max {:?}; filtered {filtered:?}; first after an upsert {after_upsert:?}",
            p(0.50),
            p(0.99),
            lat[lat.len() - 1]
        );
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn a_gateway_refusal_keeps_its_status_and_stores_nothing(pool: PgPool) {
    let (gw, _mock) = start(&pool, "").await;
    let org = project(&gw, "limited", "full").await;
    // a key of 1 request per minute: its token's embedding calls are limited like the key
    let (s, v) = call(
        &gw,
        "POST",
        "/admin/v1/keys",
        Some(MASTER),
        Some(json!({"organization_id": org, "prefix": "bx_live_", "scopes": ["write_vector"], "rpm": 1})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let key = crate::common::secret(v["key"].as_str().unwrap());
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/auth/token",
        None,
        Some(json!({"project_id": "limited", "api_key": key})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let tok = crate::common::secret(v["access_token"].as_str().unwrap());
    crate::common::room_in_window(60, Duration::from_secs(20)).await;
    let up = |id: &'static str| {
        let (gw, tok) = (&gw, &tok);
        async move {
            call(
                gw,
                "POST",
                "/api/v1/vectors/lim/upsert",
                Some(tok),
                Some(json!({"documents": [{"id": id, "text": "um texto qualquer"}]})),
            )
            .await
        }
    };
    let (s, v) = up("first").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = up("second").await;
    let codes = bx_error(s, &v, 429, "rate_limit_exceeded");
    assert_eq!(codes, ["GATEWAY_REFUSED"], "{v}");
    assert_eq!(documents(&pool).await, 1);
}

/// A key's request limits bind its tokens on admin-app calls that never reach the gateway
/// (an upsert of vectors, a query by vector), counted once per call with the gateway's
/// counters: the third call of an `rpm: 2` key is bradax's 429 with the rate headers, and the
/// refused upsert stores nothing.
#[sqlx::test(migrations = "./migrations")]
async fn a_keys_limits_bind_calls_that_never_reach_the_gateway(pool: PgPool) {
    let (gw, mock) = start(&pool, "").await;
    let org = project(&gw, "paced", "full").await;
    let (_, key, _) = bx::key(&gw, MASTER, &org, &["read_vector", "write_vector"], Some(2)).await;
    let (s, v) = bx::auth_token(&gw, "paced", &key, None).await;
    assert_eq!(s, 200, "{v}");
    let tok = crate::common::secret(v["access_token"].as_str().unwrap());
    crate::common::room_in_window(60, Duration::from_secs(20)).await;
    let http = reqwest::Client::new();
    let post =
        |path: &str, body: Value| http.post(gw.url(path)).bearer_auth(&tok).json(&body).send();
    let upsert = json!({"documents": [{"id": "a", "vector": [1.0, 0.0, 0.0]}]});
    let r = post("/api/v1/vectors/paced/upsert", upsert).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("x-ratelimit-limit"),
        None,
        "an admitted call sends none"
    );
    let q = json!({"vector": [1.0, 0.0, 0.0], "top_k": 1});
    let r = post("/api/v1/vectors/paced/query", q.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = post(
        "/api/v1/vectors/paced/upsert",
        json!({"documents": [{"id": "b", "vector": [0.0, 1.0, 0.0]}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 429);
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(h("x-ratelimit-limit").as_deref(), Some("2"));
    assert_eq!(h("x-ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(h("x-ratelimit-window").as_deref(), Some("60"));
    assert!(h("retry-after").is_some());
    let v: Value = r.json().await.unwrap();
    let codes = bx_error(429, &v, 429, "rate_limit_exceeded");
    assert_eq!(codes, ["RATE_LIMIT_EXCEEDED"], "{v}");
    assert_eq!(
        v["message"], "Limite de 2 requisições por minuto excedido",
        "{v}"
    );
    assert_eq!(
        documents(&pool).await,
        1,
        "the refused upsert stored nothing"
    );
    assert_eq!(mock.requests().await, 0, "no call reached the upstream");
}
