//! bradax graphs (issue 15 item 12): deploy reports every problem (parse errors with line
//! and column, duplicate ids, unknown types, dangling references, cycles) and stores nothing;
//! the graph id is stable per name and a changed definition bumps the version; execute (by
//! id or name) runs `llm`, `embed`, `vector_query` and `template` nodes in order with the
//! caller's metered gateway calls, records the execution, refuses missing inputs, and
//! streams one event per node. Plus the per-node overhead measurement (ignored).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::bradax_vectors::{ALL, bx_error, project, start, token, usage_events, wait_usage};
use crate::common::{Gateway, call};

async fn deploy(gw: &Gateway, tok: &str, name: &str, def: &str, format: &str) -> (u16, Value) {
    call(
        gw,
        "POST",
        "/api/v1/graphs/deploy",
        Some(tok),
        Some(json!({"name": name, "definition": def, "format": format})),
    )
    .await
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap()
}

const GOOD: &str = "name: simples\nnodes:\n  - id: saudacao\n    type: template\n    template: \"Olá, {{inputs.nome}}\"\n";

#[sqlx::test(migrations = "./migrations")]
async fn deploy_reports_every_problem_and_versions(pool: PgPool) {
    let (gw, _mock) = start(&pool, "").await;
    let org = project(&gw, "graphs", "full").await;
    let tok = token(&gw, &org, "graphs", &ALL).await;

    // every problem at once, with positions
    let bad = "name: x\nnodes:\n  - id: a\n    type: llm\n  - id: a\n    type: magic\n  - id: c\n    type: template\n    template: \"{{ghost.output}} and {{oops}}\"\n  - id: d\n    type: template\n    template: \"{{c.output}}\"\n    depends_on: [nowhere]\n";
    let (s, v) = deploy(&gw, &tok, "x", bad, "yaml").await;
    let codes = bx_error(s, &v, 400, "validation_error");
    for c in [
        "MISSING_FIELD",
        "DUPLICATE_NODE_ID",
        "UNKNOWN_NODE_TYPE",
        "DANGLING_REFERENCE",
        "BAD_REFERENCE",
    ] {
        assert!(codes.iter().any(|x| x == c), "{c}: {v}");
    }
    assert!(codes.len() >= 6, "{v}");
    let details = v["details"].as_array().unwrap();
    let msg = |code: &str| {
        details.iter().find(|d| d["code"] == code).unwrap()["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        msg("DUPLICATE_NODE_ID").starts_with("line 5, column"),
        "{v}"
    );
    assert!(
        msg("UNKNOWN_NODE_TYPE").starts_with("line 6, column"),
        "{v}"
    );
    assert!(msg("DANGLING_REFERENCE").contains("ghost"), "{v}");

    // parse errors with line and column, YAML and JSON
    let (s, v) = deploy(&gw, &tok, "x", "nodes:\n  - id: a\n   type: x\n", "yaml").await;
    assert_eq!(bx_error(s, &v, 400, "validation_error"), ["PARSE_ERROR"]);
    assert!(
        v["details"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("line "),
        "{v}"
    );
    let (s, v) = deploy(&gw, &tok, "x", "{\"nodes\": [\n  {\"id\": }\n]}", "json").await;
    assert_eq!(bx_error(s, &v, 400, "validation_error"), ["PARSE_ERROR"]);
    assert!(
        v["details"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 2, column"),
        "{v}"
    );
    // a cycle, a self reference
    let cyc = r#"{"nodes": [
        {"id": "a", "type": "template", "template": "{{c.output}}"},
        {"id": "b", "type": "template", "template": "{{a.output}}"},
        {"id": "c", "type": "template", "template": "{{b.output}}"},
        {"id": "ok", "type": "template", "template": "fine"}]}"#;
    let (s, v) = deploy(&gw, &tok, "x", cyc, "json").await;
    assert_eq!(bx_error(s, &v, 400, "validation_error"), ["CYCLE"]);
    let m = v["details"][0]["message"].as_str().unwrap();
    assert!(
        m.contains('a') && m.contains('b') && m.contains('c') && !m.contains("ok"),
        "{v}"
    );
    let (s, v) = deploy(
        &gw,
        &tok,
        "x",
        "nodes:\n  - {id: a, type: template, template: \"{{a.output}}\"}\n",
        "yaml",
    )
    .await;
    assert_eq!(bx_error(s, &v, 400, "validation_error"), ["CYCLE"]);
    // bad name and format, no nodes
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/graphs/deploy",
        Some(&tok),
        Some(json!({"name": "no spaces", "definition": "nodes: []", "format": "toml"})),
    )
    .await;
    let codes = bx_error(s, &v, 400, "validation_error");
    assert_eq!(codes, ["INVALID_NAME", "INVALID_FORMAT"], "{v}");
    let (s, v) = deploy(&gw, &tok, "x", "nodes: []\n", "yaml").await;
    assert_eq!(bx_error(s, &v, 400, "validation_error"), ["NO_NODES"]);
    assert_eq!(count(&pool, "graph").await, 0);

    // deploy; the same definition again (even as JSON) keeps id and version; a change bumps it
    let (s, v) = deploy(&gw, &tok, "simples", GOOD, "yaml").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["success"], true);
    assert_eq!(v["version"], "1.0.0");
    assert!(v["timestamp"].as_str().is_some());
    let id = v["graph_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("graph_"), "{id}");
    let (_, v) = deploy(&gw, &tok, "simples", GOOD, "yaml").await;
    assert_eq!(
        (
            v["graph_id"].as_str().unwrap(),
            v["version"].as_str().unwrap()
        ),
        (id.as_str(), "1.0.0")
    );
    let as_json = r#"{"nodes": [{"id": "saudacao", "type": "template", "template": "Olá, {{inputs.nome}}"}]}"#;
    let (_, v) = deploy(&gw, &tok, "simples", as_json, "json").await;
    assert_eq!(v["version"], "1.0.0", "{v}");
    let changed = GOOD.replace("Olá", "Oi");
    let (_, v) = deploy(&gw, &tok, "simples", &changed, "yaml").await;
    assert_eq!(
        (
            v["graph_id"].as_str().unwrap(),
            v["version"].as_str().unwrap()
        ),
        (id.as_str(), "1.1.0")
    );
    let (_, v) = deploy(&gw, &tok, "simples", GOOD, "yaml").await;
    assert_eq!(v["version"], "1.2.0", "{v}");
    assert_eq!(count(&pool, "graph").await, 1);
    assert_eq!(count(&pool, "graph_version").await, 3);

    // the newest version runs
    let (s, v) = call(
        &gw,
        "POST",
        &format!("/api/v1/graphs/{id}/execute"),
        Some(&tok),
        Some(json!({"inputs": {"nome": "Ana"}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["outputs"]["saudacao"], "Olá, Ana");
    assert_eq!(v["version"], "1.2.0");

    // scopes: deploy needs deploy_graph; a student project may not deploy at all
    let exec_only = token(&gw, &org, "graphs", &["execute_graph"]).await;
    let (s, v) = deploy(&gw, &exec_only, "y", GOOD, "yaml").await;
    bx_error(s, &v, 403, "insufficient_scope");
    let deploy_only = token(&gw, &org, "graphs", &["deploy_graph"]).await;
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/graphs/simples/execute",
        Some(&deploy_only),
        Some(json!({"inputs": {"nome": "x"}})),
    )
    .await;
    bx_error(s, &v, 403, "insufficient_scope");
    let student = project(&gw, "turma", "student").await;
    let stok = token(&gw, &student, "turma", &ALL).await;
    let (s, v) = deploy(&gw, &stok, "y", GOOD, "yaml").await;
    bx_error(s, &v, 403, "forbidden");
    // another project sees neither the id nor the name
    let (s, v) = call(
        &gw,
        "POST",
        &format!("/api/v1/graphs/{id}/execute"),
        Some(&stok),
        Some(json!({"inputs": {"nome": "x"}})),
    )
    .await;
    bx_error(s, &v, 404, "not_found");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/graphs/simples/execute",
        Some(&stok),
        Some(json!({"inputs": {"nome": "x"}})),
    )
    .await;
    bx_error(s, &v, 404, "not_found");
    assert_eq!(count(&pool, "graph").await, 1);
    assert_eq!(count(&pool, "graph_execution").await, 1);
}

const PIPELINE: &str = r#"name: pipeline_fraude
nodes:
  - id: resumo
    type: llm
    system: "Você é um perito."
    prompt: "Resuma: {{inputs.claim_text}}"
    max_tokens: 50
  - id: emb
    type: embed
    text: "{{inputs.claim_text}}"
    dimensions: 64
  - id: similar
    type: vector_query
    collection: kb
    vector: "{{emb.output}}"
    top_k: 1
  - id: por_texto
    type: vector_query
    collection: kb
    text: "{{inputs.claim_text}}"
    top_k: 2
    filters: {category: sinistros}
  - id: relatorio
    type: template
    template: "Apólice {{inputs.policy}}: {{resumo.output}} | {{similar.output}}"
"#;

#[sqlx::test(migrations = "./migrations")]
async fn execute_runs_every_node_type(pool: PgPool) {
    let (gw, _mock) = start(&pool, "").await;
    let org = project(&gw, "fraude", "full").await;
    let tok = token(&gw, &org, "fraude", &ALL).await;
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/vectors/kb/upsert",
        Some(&tok),
        Some(json!({"documents": [
            {"id": "anchor", "vector": (0..64).map(|i| if i == 0 { 1.0 } else { 0.0 }).collect::<Vec<f64>>()},
            {"id": "roubo", "text": "carro roubado ontem na garagem", "metadata": {"category": "sinistros"}},
            {"id": "bolo", "text": "receita de bolo de fubá", "metadata": {"category": "culinaria"}},
            {"id": "furto", "text": "furto de bicicleta na praça", "metadata": {"category": "sinistros"}},
        ]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = deploy(&gw, &tok, "pipeline_fraude", PIPELINE, "yaml").await;
    assert_eq!(s, 200, "{v}");
    let id = v["graph_id"].as_str().unwrap().to_string();
    let embeds = wait_usage(&pool, "embeddings", 1).await;
    let chats = usage_events(&pool, "chat.completions").await;

    // missing input: 400 naming each, nothing run or recorded
    let (s, v) = call(
        &gw,
        "POST",
        &format!("/api/v1/graphs/{id}/execute"),
        Some(&tok),
        Some(json!({"inputs": {"claim_text": "x"}})),
    )
    .await;
    assert_eq!(bx_error(s, &v, 400, "validation_error"), ["MISSING_INPUT"]);
    assert!(
        v["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("policy"),
        "{v}"
    );
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/graphs/pipeline_fraude/execute",
        Some(&tok),
        Some(json!({})),
    )
    .await;
    assert_eq!(bx_error(s, &v, 400, "validation_error").len(), 2, "{v}");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/graphs/pipeline_fraude/execute",
        Some(&tok),
        Some(json!({"inputs": [1]})),
    )
    .await;
    bx_error(s, &v, 400, "validation_error");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/graphs/nope/execute",
        Some(&tok),
        Some(json!({"inputs": {}})),
    )
    .await;
    bx_error(s, &v, 404, "not_found");
    assert_eq!(count(&pool, "graph_execution").await, 0);

    // by name: every node ran, in order, through the gateway as the caller
    let inputs = json!({"claim_text": "meu carro foi roubado ontem", "policy": "POL123"});
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/graphs/pipeline_fraude/execute",
        Some(&tok),
        Some(json!({"inputs": inputs})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["graph_id"], id);
    assert_eq!(v["version"], "1.0.0");
    assert_eq!(v["status"], "completed");
    assert!(v["timestamp"].as_str().is_some());
    let out = &v["outputs"];
    let resumo = out["resumo"].as_str().unwrap();
    assert!(!resumo.is_empty(), "{v}");
    assert_eq!(out["emb"].as_array().unwrap().len(), 64, "{v}");
    assert_eq!(out["similar"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(out["similar"][0]["id"], "roubo", "{v}");
    let by_text: Vec<&str> = out["por_texto"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(by_text, ["roubo", "furto"], "{v}");
    let rel = out["relatorio"].as_str().unwrap();
    assert!(
        rel.starts_with(&format!("Apólice POL123: {resumo} | [")),
        "{rel}"
    );
    assert!(rel.contains("\"id\":\"roubo\""), "{rel}");
    let usage = &v["usage"];
    assert_eq!(usage["calls"], 3, "{v}");
    assert!(usage["prompt_tokens"].as_i64().unwrap() > 0, "{v}");
    assert!(usage["completion_tokens"].as_i64().unwrap() > 0, "{v}");
    assert_eq!(
        usage["total_tokens"].as_i64().unwrap(),
        usage["prompt_tokens"].as_i64().unwrap() + usage["completion_tokens"].as_i64().unwrap()
    );
    // metered: one chat and two embeddings more
    wait_usage(&pool, "chat.completions", chats + 1).await;
    wait_usage(&pool, "embeddings", embeds + 2).await;
    // the execution is recorded under its id
    let exec: uuid::Uuid = v["execution_id"].as_str().unwrap().parse().unwrap();
    let (status, outputs): (String, Value) =
        sqlx::query_as("SELECT status, outputs FROM graph_execution WHERE graph_execution_id = $1")
            .bind(exec)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "completed");
    assert_eq!(&outputs, out);

    // streamed: one event per node in running order, then the last with outputs and usage
    let r = reqwest::Client::new()
        .post(gw.url(&format!("/api/v1/graphs/{id}/execute")))
        .bearer_auth(&tok)
        .header("content-type", "application/json")
        .body(json!({"inputs": inputs, "stream": true}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = r.text().await.unwrap();
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let nodes: Vec<&str> = events[..events.len() - 1]
        .iter()
        .map(|e| e["node"].as_str().unwrap())
        .collect();
    assert_eq!(
        nodes,
        ["resumo", "emb", "similar", "por_texto", "relatorio"],
        "{text}"
    );
    for e in &events[..events.len() - 1] {
        assert_eq!(e["finished"], false, "{e}");
        assert_eq!(e["status"], "completed", "{e}");
        assert!(e.get("output").is_some(), "{e}");
    }
    let last = events.last().unwrap();
    assert_eq!(last["finished"], true, "{last}");
    assert_eq!(last["status"], "completed", "{last}");
    assert_eq!(last["outputs"]["relatorio"], out["relatorio"], "{last}");
    assert_eq!(last["usage"]["calls"], 3, "{last}");
    assert!(last["execution_id"].as_str().is_some(), "{last}");
    assert_eq!(count(&pool, "graph_execution").await, 2);

    // a node failing (a collection that does not exist): the run stops there, recorded failed
    let broken = "nodes:\n  - {id: t, type: template, template: \"{{inputs.q}}\"}\n  - {id: v, type: vector_query, collection: missing, text: \"{{t.output}}\"}\n  - {id: after, type: template, template: never}\n";
    let (s, v) = deploy(&gw, &tok, "broken", broken, "yaml").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/graphs/broken/execute",
        Some(&tok),
        Some(json!({"inputs": {"q": "x"}})),
    )
    .await;
    bx_error(s, &v, 404, "not_found");
    let r = reqwest::Client::new()
        .post(gw.url("/api/v1/graphs/broken/execute"))
        .bearer_auth(&tok)
        .header("content-type", "application/json")
        .body(json!({"inputs": {"q": "x"}, "stream": true}).to_string())
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.len(), 3, "{text}");
    assert_eq!(
        (events[0]["node"].as_str(), events[0]["status"].as_str()),
        (Some("t"), Some("completed"))
    );
    assert_eq!(
        (events[1]["node"].as_str(), events[1]["status"].as_str()),
        (Some("v"), Some("failed"))
    );
    assert!(events[1]["error"].as_str().is_some(), "{text}");
    assert_eq!(events[2]["finished"], true);
    assert_eq!(events[2]["status"], "failed");
    let failed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM graph_execution WHERE status = 'failed' AND error LIKE 'node v:%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(failed, 2);
}

/// Graph overhead per node besides model time: a chain of N `template` nodes against one,
/// and N `llm` nodes (the mock answers at once, so their time is the gateway hop and the
/// mock's own work). `cargo nextest run --release --test integration
/// bradax_graphs::measure_node_overhead --run-ignored only --no-capture`.
#[sqlx::test(migrations = "./migrations")]
#[ignore = "a measurement: scripts/bench_bradax.sh"]
async fn measure_node_overhead(pool: PgPool) {
    let (gw, _mock) = start(&pool, "").await;
    let org = project(&gw, "bench", "full").await;
    let tok = token(&gw, &org, "bench", &ALL).await;
    let chain = |n: usize, kind: &str| {
        let mut s = String::from("nodes:\n");
        for i in 0..n {
            let src = if i == 0 {
                "{{inputs.x}}".to_string()
            } else {
                format!("{{{{n{}.output}}}}", i - 1)
            };
            match kind {
                "template" => s.push_str(&format!(
                    "  - {{id: n{i}, type: template, template: \"{src}.\"}}\n"
                )),
                _ => s.push_str(&format!(
                    "  - {{id: n{i}, type: llm, prompt: \"{src}\", max_tokens: 5}}\n"
                )),
            }
        }
        s
    };
    let runs = 50;
    let mut results = Vec::new();
    for (kind, n) in [("template", 1), ("template", 50), ("llm", 1), ("llm", 10)] {
        let name = format!("{kind}{n}");
        let (s, v) = deploy(&gw, &tok, &name, &chain(n, kind), "yaml").await;
        assert_eq!(s, 200, "{v}");
        let client = reqwest::Client::new();
        let body = json!({"inputs": {"x": "a"}}).to_string();
        let mut lat = Vec::with_capacity(runs);
        for i in 0..runs + 5 {
            let t = Instant::now();
            let r = client
                .post(gw.url(&format!("/api/v1/graphs/{name}/execute")))
                .bearer_auth(&tok)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let _ = r.bytes().await.unwrap();
            if i >= 5 {
                lat.push(t.elapsed());
            }
        }
        lat.sort();
        let p50 = lat[lat.len() / 2];
        results.push((kind, n, p50));
        eprintln!(
            "graph {kind} x{n}: p50 {p50:?} p99 {:?}",
            lat[lat.len() * 99 / 100]
        );
    }
    let per = |a: Duration, b: Duration, n: u32| (b.saturating_sub(a)) / n;
    eprintln!(
        "per template node: {:?}; per llm node (gateway hop + mock): {:?}",
        per(results[0].2, results[1].2, 49),
        per(results[2].2, results[3].2, 9)
    );
}
