//! `/openapi.json` lists exactly what is mounted, covers every path of the seed contracts
//! mounted so far, and a user of another organization gets 403/404 — never data — on every
//! route that names a resource.

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::{Gateway, Mock, db_url};

async fn start(pool: &PgPool, mock: &Mock) -> Gateway {
    let body = crate::common::single_model(mock, "gpt-4o-mini", "");
    // with a master key, so the operator routes answer a customer's token with 403
    Gateway::start_with_env(
        &body,
        &[
            ("DATABASE_URL", &db_url(pool, None)),
            ("CATRACA_MASTER_KEY", "openapi-test-master-key-0123"),
        ],
    )
    .await
}

fn seed(name: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/seeds")
        .join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

fn fill(path: &str, id: &str) -> String {
    fill_with(path, &|_| id.to_string())
}

fn fill_with(path: &str, f: &dyn Fn(&str) -> String) -> String {
    path.split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => f(name),
                None => seg.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// `**GET** `/path`` lines of a markdown contract.
fn markdown_routes(name: &str) -> Vec<(String, String)> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/seeds")
        .join(name);
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("**")?;
            let (method, rest) = rest.split_once("**")?;
            let path = rest.trim().strip_prefix('`')?.strip_suffix('`')?;
            Some((method.to_lowercase(), path.to_string()))
        })
        .collect()
}

#[sqlx::test(migrations = "./migrations")]
async fn openapi_lists_every_mounted_route_and_the_seed_paths(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let doc: Value = reqwest::get(gw.url("/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();

    // every MaxAI path and method of the seed (but the gateway's own /v1/*) is documented
    let maxai = seed("maxai-openapi.json");
    for (path, ops) in maxai["paths"].as_object().unwrap() {
        if path.starts_with("/v1/") {
            continue;
        }
        for method in ops.as_object().unwrap().keys() {
            assert!(
                paths.get(path).and_then(|p| p.get(method)).is_some(),
                "{method} {path} missing from /openapi.json"
            );
        }
    }

    // SabIA: every route of the markdown contract (its base URL ends in /v1), but those not built yet
    // /v1/ocr and /v1/recognition are the gateway's own routes, not the admin app's
    let not_yet = ["/v1/ocr", "/v1/recognition"];
    let sabia = markdown_routes("sabia-labs-api.md");
    assert!(sabia.len() >= 24, "{sabia:?}");
    let mut missing = Vec::new();
    for (method, path) in &sabia {
        let full = if path.starts_with("/v1/") {
            path.clone()
        } else {
            format!("/v1{path}")
        };
        if paths.get(&full).and_then(|p| p.get(method)).is_none() {
            missing.push(full);
        }
    }
    missing.sort();
    missing.dedup();
    let mut expected: Vec<String> = not_yet.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(missing, expected, "SabIA routes missing from /openapi.json");

    // every documented route is really mounted: never the router's fallback, never 405
    let c = reqwest::Client::new();
    let mut n = 0;
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let r = c
                .request(
                    method.to_uppercase().parse().unwrap(),
                    gw.url(&fill(path, "1")),
                )
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_ne!(r.status(), 405, "{method} {path}");
            assert!(
                r.headers().get("x-catraca-route").is_none(),
                "{method} {path} is documented but not mounted"
            );
            n += 1;
        }
    }
    assert!(n >= 19, "{n} operations");
    // and an undocumented path hits the fallback
    let r = c.get(gw.url("/api/not-a-route")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().get("x-catraca-route").is_some());
}

async fn register(gw: &Gateway, email: &str) -> (String, Value) {
    let r = reqwest::Client::new()
        .post(gw.url("/api/auth/register"))
        .json(&json!({"email": email, "password": "senha-forte-1", "name": "X"}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    (v["access_token"].as_str().unwrap().to_string(), v)
}

#[sqlx::test(migrations = "./migrations")]
async fn another_organization_never_gets_data(pool: PgPool) {
    let mock = Mock::start().await;
    let gw = start(&pool, &mock).await;
    let c = reqwest::Client::new();
    let (ta, _) = register(&gw, "a@example.com").await;
    let (tb, _) = register(&gw, "b@example.com").await;

    // A's resources: a key (with traffic) and a personal template
    let k: Value = c
        .post(gw.url("/api/keys"))
        .bearer_auth(&ta)
        .json(&json!({"name": "segredo-de-a"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = k["key"].as_str().unwrap().to_string();
    let key_id = k["id"].as_i64().unwrap().to_string();
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt-4o-mini", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let org_a: uuid::Uuid = sqlx::query_scalar("SELECT organization_id FROM app_user u JOIN membership USING (user_id) WHERE email = 'a@example.com'")
        .fetch_one(&pool).await.unwrap();
    let tpl: i64 = sqlx::query_scalar(
        "INSERT INTO template (organization_id, slug, name, default_model, user_prompt) VALUES ($1, 'privado', 'segredo-de-a', 'gpt-4o-mini', 'x') RETURNING template_id")
        .bind(org_a).fetch_one(&pool).await.unwrap();
    // Tokia's routes take an organization's sk-tokia- key: one for A (with a prompt named like
    // A's secrets and a session of A), one for B, who walks them
    let tokia_key = |org: uuid::Uuid, plaintext: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query("INSERT INTO api_key (organization_id, key_hash, prefix, name) VALUES ($1, sha256($2::bytea), 'sk-tokia-x', 'tokia')")
                .bind(org).bind(plaintext.as_bytes()).execute(&pool).await.unwrap();
            plaintext
        }
    };
    let org_b: uuid::Uuid = sqlx::query_scalar("SELECT organization_id FROM app_user u JOIN membership USING (user_id) WHERE email = 'b@example.com'")
        .fetch_one(&pool).await.unwrap();
    let tokia_a = tokia_key(org_a, "sk-tokia-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").await;
    let tokia_b = tokia_key(org_b, "sk-tokia-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb").await;
    let prompt: Value = c
        .post(gw.url("/v1/me/prompts"))
        .bearer_auth(tokia_a)
        .json(&json!({"name": "segredo-de-a", "body": "Olá {{nome}}"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let prompt_id = prompt["id"]
        .as_str()
        .map(str::to_string)
        .or_else(|| prompt["id"].as_i64().map(|i| i.to_string()))
        .unwrap_or_else(|| panic!("{prompt}"));
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(tokia_a)
        .header("x-tokia-session-id", "sessao-de-a")
        .json(&json!({"model": "gpt-4o-mini", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await; // usage written

    let doc: Value = reqwest::get(gw.url("/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secrets = [&key[..12], "segredo-de-a", "a@example.com"];
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let tokia = ops[method]["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "tokia"));
            let id = if path.contains("{key_id}") {
                key_id.clone()
            } else if path.starts_with("/v1/me/prompts/") {
                prompt_id.clone()
            } else if path.starts_with("/v1/me/sessions/") {
                "sessao-de-a".to_string()
            } else {
                tpl.to_string()
            };
            // a body each route accepts, so the answer is about the id, not the input
            let body = if !tokia {
                json!({"api_key": key, "variables": {}, "name": "x"})
            } else if path.ends_with("/run") {
                json!({"api_key": tokia_b, "variables": {"nome": "x"}, "model": "gpt-4o-mini"})
            } else {
                json!({"name": "outro-nome"})
            };
            let r = c
                .request(
                    method.to_uppercase().parse().unwrap(),
                    gw.url(&fill(path, &id)),
                )
                .bearer_auth(if tokia { tokia_b } else { tb.as_str() })
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            // bradax routes take only bradax access tokens: this user's token is a 401 there
            // (another project's token: tests/bradax_vectors.rs, tests/bradax_graphs.rs)
            let bradax = ops[method]["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "bradax"));
            if path.contains('{') {
                assert!(
                    status == 403 || status == 404 || (bradax && status == 401),
                    "{method} {path} as another org: {status} {text}"
                );
            }
            for s in secrets {
                assert!(
                    !text.contains(s),
                    "{method} {path} leaked {s:?} to another org: {text}"
                );
            }
        }
    }
    // A's key still works and is listed for A
    let r = c
        .get(gw.url("/api/keys"))
        .bearer_auth(&ta)
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("segredo-de-a"));
}
