//! `/api/v1` (PyTake and bradax, issue 15): named schemas (`components.schemas`: the
//! contracts' `User`, `Flow`, `Contact`, `Secret`, `SecretUsageStats`, `WhatsAppNumber`,
//! `FlowAutomation`, `ErrorResponse`, and bradax's `BradaxError`), each operation's body,
//! query and answer, its error statuses, and in descriptions the decisions issue 15 took where
//! a contract is silent. Keyed by method and path and read only for mounted routes, so a route
//! another surface adds appears at once (as a bare "200 OK" until it has shapes here).

use serde_json::{Map, Value, json};

use super::RouteDoc;
use super::contracts::Shape;

fn obj(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

fn string() -> Value {
    json!({"type": "string"})
}

fn opt(t: &str) -> Value {
    json!({"type": [t, "null"]})
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn opt_time() -> Value {
    json!({"type": ["string", "null"], "format": "date-time"})
}

fn int() -> Value {
    json!({"type": "integer"})
}

fn boolean() -> Value {
    json!({"type": "boolean"})
}

fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

fn enumerated(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

/// A reference to a named schema.
pub fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The named schemas (answers as served; a field marked required is in every answer).
pub fn schemas() -> Value {
    let position = obj(
        &["x", "y"],
        json!({"x": {"type": "number"}, "y": {"type": "number"}}),
    );
    json!({
        // "Respostas de Erro"; `error_code` is always sent (the contract makes it optional)
        "ErrorResponse": obj(&["detail", "status_code", "error_code"], json!({
            "detail": string(), "status_code": int(), "error_code": string(),
        })),
        // bradax "Error Format"
        "BradaxError": obj(&["error", "message", "details", "request_id", "timestamp"], json!({
            "error": string(), "message": string(),
            "details": array(obj(&["code", "message"], json!({"code": string(), "message": string()}))),
            "request_id": string(), "timestamp": time(),
        })),
        "User": obj(
            &["id", "email", "name", "role", "organization_id", "is_active", "created_at"],
            json!({
                "id": uuid(), "email": {"type": "string", "format": "email"}, "name": string(),
                "role": enumerated(&["super_admin", "org_admin", "agent", "viewer"]),
                "organization_id": uuid(), "is_active": boolean(), "created_at": time(),
            }),
        ),
        "FlowNode": {
            "type": "object", "required": ["id", "type", "position", "data"],
            "description": "Any `type` is stored as given; `data` is kept as sent.",
            "properties": {"id": string(), "type": string(), "position": position, "data": {"type": "object"}},
        },
        "FlowEdge": {
            "type": "object", "required": ["id", "source", "target"],
            "description": "`source` and `target` must name nodes of the flow (400 otherwise).",
            "properties": {"id": string(), "source": string(), "target": string(),
                           "sourceHandle": string(), "targetHandle": string()},
        },
        "Flow": {
            "type": "object",
            "required": ["id", "name", "description", "status", "nodes", "edges", "organization_id", "created_at", "updated_at"],
            "description": "`description` is null when unset; `stats` is not sent (the automations' `stats` route has the counts).",
            "properties": {
                "id": uuid(), "name": string(), "description": opt("string"),
                "status": enumerated(&["active", "draft", "archived"]),
                "nodes": array(schema("FlowNode")), "edges": array(schema("FlowEdge")),
                "organization_id": uuid(), "created_at": time(), "updated_at": time(),
            },
        },
        "Contact": {
            "type": "object",
            "required": ["id", "whatsapp_id", "name", "email", "organization_id", "created_at", "updated_at"],
            "description": "`whatsapp_id` is 8 to 15 digits, unique in the organization (409 when taken); `name` and `email` are null when unset.",
            "properties": {
                "id": uuid(), "whatsapp_id": string(), "name": opt("string"), "email": opt("string"),
                "organization_id": uuid(), "created_at": time(), "updated_at": time(),
            },
        },
        "Secret": {
            "type": "object",
            "required": ["id", "key", "environment", "service", "status", "organization_id", "created_at", "updated_at", "last_rotated_at"],
            "description": "Never carries the value (only `GET /api/v1/secrets/{id}/value` does). `service` and `last_rotated_at` are null when unset.",
            "properties": {
                "id": uuid(), "key": string(),
                "environment": enumerated(&["development", "staging", "production"]),
                "service": opt("string"), "status": enumerated(&["active", "inactive", "rotated"]),
                "organization_id": uuid(), "created_at": time(), "updated_at": time(),
                "last_rotated_at": opt_time(),
            },
        },
        "SecretUsageStats": {
            "type": "object",
            "required": ["secret_id", "total_requests", "last_used_at", "success_rate"],
            "description": "Every use by the platform (and every `test` that ran). `success_rate` is a fraction from 0 to 1; it and `last_used_at` are null for a secret never used.",
            "properties": {
                "secret_id": uuid(), "total_requests": int(),
                "last_used_at": opt_time(), "success_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            },
        },
        "WhatsAppNumber": {
            "type": "object",
            "required": ["id", "phone_number", "display_name", "status", "verified", "organization_id"],
            "description": "The contract's fields, plus the Graph API ids catraca keeps.",
            "properties": {
                "id": uuid(), "phone_number": string(), "display_name": string(),
                "status": enumerated(&["active", "inactive", "pending"]), "verified": boolean(),
                "organization_id": uuid(), "phone_number_id": string(), "waba_id": opt("string"),
                "secret_id": opt("string"), "created_at": time(),
            },
        },
        "FlowAutomation": {
            "type": "object",
            "required": ["id", "flow_id", "contacts", "config", "status", "organization_id", "created_at"],
            "description": "The contract names no fields (issue 15's decision): the flow, its contacts, the config as sent, the status, and when it started and finished.",
            "properties": {
                "id": uuid(), "flow_id": uuid(), "contacts": array(uuid()), "config": {"type": "object"},
                "status": string(), "organization_id": uuid(), "created_at": time(),
                "started_at": opt_time(), "finished_at": opt_time(),
            },
        },
        "FlowAutomationStats": {
            "type": "object",
            "required": ["automation_id", "flow_id", "status", "total_contacts", "pending", "running", "done", "failed"],
            "description": "The contract's `{...stats}` (issue 15's decision): real job counts by status, messages sent, AI calls and durations in milliseconds.",
            "properties": {
                "automation_id": uuid(), "flow_id": uuid(), "status": string(),
                "total_contacts": int(), "pending": int(), "running": int(), "done": int(), "failed": int(),
                "messages_sent": int(), "ai_calls": int(),
                "started_at": opt_time(), "finished_at": opt_time(), "elapsed_ms": opt("integer"),
                "duration_ms": {"type": "object", "properties": {"avg": opt("number"), "p50": opt("number"), "max": opt("number")}},
                "failures": array(obj(&["contact_id", "reason"], json!({"contact_id": uuid(), "reason": string()}))),
            },
        },
        "BradaxToken": obj(
            &["access_token", "refresh_token", "expires_in", "token_type", "scopes", "timestamp"],
            json!({
                "access_token": string(), "refresh_token": string(), "expires_in": int(),
                "token_type": {"const": "Bearer"},
                "scopes": array(enumerated(&["invoke_llm", "read_vector", "write_vector", "deploy_graph", "execute_graph", "read_metrics"])),
                "timestamp": time(),
            }),
        ),
        "BradaxMetrics": obj(&["metrics"], json!({
            "metrics": array(obj(&["name", "type", "value", "labels", "timestamp"], json!({
                "name": string(), "type": string(), "value": {"type": "number"},
                "labels": {"type": "object", "additionalProperties": string()}, "timestamp": time(),
            }))),
        })),
        "BradaxUsage": obj(&["prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"], json!({
            "prompt_tokens": int(), "completion_tokens": int(), "total_tokens": int(),
            "cost_usd": {"type": "number"},
        })),
        "VectorHit": {
            "type": "object", "required": ["id", "score", "metadata", "text"],
            "description": "`score` is the cosine similarity (at least the query's `threshold`).",
            "properties": {"id": string(), "score": {"type": "number"}, "metadata": {"type": "object"}, "text": opt("string")},
        },
        "VectorQueryResult": obj(&["results", "timestamp"], json!({
            "results": array(schema("VectorHit")), "timestamp": time(),
        })),
        "VectorUpsertResult": obj(&["upserted", "timestamp"], json!({"upserted": int(), "timestamp": time()})),
        "GraphDeployResult": {
            "type": "object", "required": ["graph_id", "version", "success", "timestamp"],
            "description": "`graph_id` is stable per name; a changed definition bumps `version` (issue 15's decision; `changed` says whether it did).",
            "properties": {"graph_id": string(), "version": string(), "success": boolean(), "changed": boolean(), "timestamp": time()},
        },
        "GraphExecution": {
            "type": "object",
            "required": ["execution_id", "graph_id", "version", "status", "outputs", "usage", "timestamp"],
            "description": "With `stream: true` the answer is server-sent events instead: one per node `{node, status, output?, finished}` and a last `finished: true` event with `outputs` and `usage`.",
            "properties": {
                "execution_id": string(), "graph_id": string(), "version": string(), "status": string(),
                "outputs": {"type": "object"}, "usage": schema("BradaxUsage"), "timestamp": time(),
            },
        },
        "BradaxHealth": obj(&["status", "checks", "timestamp"], json!({
            "status": enumerated(&["healthy", "degraded", "unhealthy"]),
            "checks": {"type": "object", "additionalProperties": string()},
            "timestamp": time(),
        })),
    })
}

fn limit_offset() -> Vec<(&'static str, Value)> {
    vec![
        (
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 50}),
        ),
        (
            "offset",
            json!({"type": "integer", "minimum": 0, "maximum": 100000, "default": 0}),
        ),
    ]
}

fn answer(status: &'static str, body: Option<Value>, answer: Option<Value>) -> Shape {
    Shape {
        status,
        body,
        query: Vec::new(),
        answer,
    }
}

/// The shapes of a `/api/v1` operation other than PyTake's auth (kept in `contracts`), or
/// `None` for one not described here.
pub fn shape(d: &RouteDoc) -> Option<Shape> {
    let secret_body = |required: &[&str]| {
        obj(
            required,
            json!({
                "key": {"type": "string", "minLength": 1},
                "value": {"type": "string", "minLength": 1},
                "environment": enumerated(&["development", "staging", "production"]),
                "service": opt("string"),
            }),
        )
    };
    let flow_body = |required: &[&str]| {
        obj(
            required,
            json!({
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "description": opt("string"),
                "status": enumerated(&["active", "draft", "archived"]),
                "nodes": array(schema("FlowNode")),
                "edges": array(schema("FlowEdge")),
            }),
        )
    };
    Some(match (d.method, d.path) {
        ("GET", "/api/v1/contacts") => {
            let mut q = vec![("query", json!({"type": "string", "maxLength": 200}))];
            q.extend(limit_offset());
            Shape {
                query: q,
                ..answer("200", None, Some(array(schema("Contact"))))
            }
        }
        ("POST", "/api/v1/contacts") => answer(
            "201",
            Some(obj(
                &["whatsapp_id"],
                json!({"whatsapp_id": {"type": "string", "pattern": "^[0-9]{8,15}$"},
                       "name": opt("string"), "email": opt("string")}),
            )),
            Some(schema("Contact")),
        ),
        ("GET", "/api/v1/flows") => Shape {
            query: limit_offset(),
            ..answer("200", None, Some(array(schema("Flow"))))
        },
        ("POST", "/api/v1/flows") => {
            answer("201", Some(flow_body(&["name"])), Some(schema("Flow")))
        }
        ("GET", "/api/v1/flows/{id}") => answer("200", None, Some(schema("Flow"))),
        ("PUT", "/api/v1/flows/{id}") => answer("200", Some(flow_body(&[])), Some(schema("Flow"))),
        ("DELETE", "/api/v1/flows/{id}" | "/api/v1/secrets/{id}") => answer("204", None, None),
        ("GET", "/api/v1/secrets/" | "/api/v1/secrets") => Shape {
            query: vec![
                (
                    "environment",
                    enumerated(&["development", "staging", "production"]),
                ),
                ("service", string()),
            ],
            ..answer("200", None, Some(array(schema("Secret"))))
        },
        ("POST", "/api/v1/secrets/" | "/api/v1/secrets") => answer(
            "201",
            Some(secret_body(&["key", "value"])),
            Some(schema("Secret")),
        ),
        ("GET", "/api/v1/secrets/{id}") => answer("200", None, Some(schema("Secret"))),
        ("PUT", "/api/v1/secrets/{id}") => {
            answer("200", Some(secret_body(&[])), Some(schema("Secret")))
        }
        ("GET", "/api/v1/secrets/{id}/value") => answer(
            "200",
            None,
            Some(obj(&["value"], json!({"value": string()}))),
        ),
        ("POST", "/api/v1/secrets/{id}/rotate") => answer(
            "200",
            Some(obj(
                &[],
                json!({"value": {"type": "string", "minLength": 1}}),
            )),
            Some(schema("Secret")),
        ),
        ("POST", "/api/v1/secrets/{id}/activate" | "/api/v1/secrets/{id}/deactivate") => {
            answer("200", None, Some(schema("Secret")))
        }
        ("POST", "/api/v1/secrets/{id}/test") => answer(
            "200",
            Some(obj(&[], json!({"test_type": string()}))),
            Some(obj(
                &["valid", "message"],
                json!({"valid": boolean(), "message": string()}),
            )),
        ),
        ("GET", "/api/v1/secrets/{id}/usage") => {
            answer("200", None, Some(schema("SecretUsageStats")))
        }
        ("GET", "/api/v1/secrets/usage/organization") => {
            answer("200", None, Some(array(schema("SecretUsageStats"))))
        }
        ("POST", "/api/v1/whatsapp/send") => answer(
            "200",
            Some(obj(
                &["to"],
                json!({
                    "to": string(), "message": string(), "type": enumerated(&["text", "template"]),
                    "template_id": string(), "language": string(), "phone_number_id": string(),
                }),
            )),
            Some(obj(
                &["message_id", "status"],
                json!({"message_id": string(), "status": string()}),
            )),
        ),
        ("GET", "/api/v1/whatsapp/numbers") => {
            answer("200", None, Some(array(schema("WhatsAppNumber"))))
        }
        ("POST", "/api/v1/whatsapp/numbers/sync") => answer(
            "200",
            Some(obj(
                &["secret_id", "waba_id"],
                json!({"secret_id": uuid(), "waba_id": string()}),
            )),
            Some(array(schema("WhatsAppNumber"))),
        ),
        ("POST", "/api/v1/flow-automations") => answer(
            "201",
            Some(obj(
                &["flow_id", "contacts"],
                json!({"flow_id": uuid(), "contacts": array(uuid()), "config": {"type": "object"}}),
            )),
            Some(schema("FlowAutomation")),
        ),
        ("POST", "/api/v1/flow-automations/{id}/start") => answer(
            "200",
            None,
            Some(obj(
                &["status"],
                json!({"status": {"const": "started"}, "id": uuid(), "started_at": opt_time()}),
            )),
        ),
        ("GET", "/api/v1/flow-automations/{id}/stats") => {
            answer("200", None, Some(schema("FlowAutomationStats")))
        }
        ("GET", "/api/v1/openapi.json") => answer(
            "200",
            None,
            Some(json!({"type": "object", "required": ["openapi", "paths"]})),
        ),
        ("GET", "/api/v1/docs" | "/api/v1/docs/{file}") => answer("200", None, None),
        ("POST", "/api/v1/auth/token") => answer(
            "200",
            Some(obj(
                &["project_id", "api_key"],
                json!({"project_id": string(), "api_key": string(), "scopes": array(string())}),
            )),
            Some(schema("BradaxToken")),
        ),
        ("GET", "/api/v1/metrics") => Shape {
            query: vec![
                ("project_id", string()),
                ("start_time", time()),
                ("end_time", time()),
            ],
            ..answer("200", None, Some(schema("BradaxMetrics")))
        },
        ("GET", "/api/v1/health") => answer("200", None, Some(schema("BradaxHealth"))),
        ("POST", "/api/v1/vectors/{collection}/query") => answer(
            "200",
            Some(obj(
                &[],
                json!({
                    "query_text": string(), "vector": array(json!({"type": "number"})),
                    "top_k": {"type": "integer", "minimum": 1}, "threshold": {"type": "number"},
                    "filters": {"type": "object"},
                }),
            )),
            Some(schema("VectorQueryResult")),
        ),
        ("POST", "/api/v1/vectors/{collection}/upsert") => answer(
            "200",
            Some(obj(
                &["documents"],
                json!({"documents": array(obj(&["id"], json!({
                    "id": string(), "vector": array(json!({"type": "number"})),
                    "metadata": {"type": "object"}, "text": string(),
                })))}),
            )),
            Some(schema("VectorUpsertResult")),
        ),
        ("POST", "/api/v1/graphs/deploy") => answer(
            "200",
            Some(obj(
                &["name", "definition"],
                json!({"name": string(), "definition": string(), "format": enumerated(&["yaml", "json"])}),
            )),
            Some(schema("GraphDeployResult")),
        ),
        ("POST", "/api/v1/graphs/{graph_id}/execute") => answer(
            "200",
            Some(obj(
                &[],
                json!({"inputs": {"type": "object"}, "stream": boolean()}),
            )),
            Some(schema("GraphExecution")),
        ),
        _ => return None,
    })
}

/// The error statuses of a `/api/v1` operation. PyTake: 401 without a valid token, 403 a role
/// the matrix refuses (or another organization in `X-Organization-Id`), 400 a rule broken (or a
/// malformed `X-Organization-Id`), 404 an id not in the caller's organization, 422 a body not
/// of the schema, 409 a conflict, 503 a vault or WhatsApp not configured.
pub fn error_statuses(d: &RouteDoc) -> Vec<&'static str> {
    if d.tag == "bradax" {
        return match d.path {
            "/api/v1/auth/token" => vec!["400", "401", "403", "422", "429"],
            "/api/v1/health" => vec!["503"],
            _ => vec!["400", "401", "403", "404", "422", "429"],
        };
    }
    match d.path {
        "/api/v1/auth/login" => return vec!["400", "401", "422", "429"],
        "/api/v1/auth/refresh" => return vec!["400", "401", "422"],
        "/api/v1/auth/me" => return vec!["400", "401", "403", "404"],
        "/api/v1/auth/logout" => return vec!["400", "401", "403", "404", "422"],
        "/api/v1/docs/{file}" => return vec!["404"],
        "/api/v1/docs" | "/api/v1/openapi.json" => return Vec::new(),
        "/api/v1/whatsapp/webhook" => return vec!["400", "401", "403", "503"],
        _ => {}
    }
    if !d.auth {
        return vec!["400", "422"];
    }
    // 422: a body or a query string not of the schema
    let mut v = vec!["400", "401", "403", "404", "422"];
    if d.path.contains("/secrets")
        || d.path.contains("/flow-automations")
        || (d.method, d.path) == ("POST", "/api/v1/contacts")
    {
        v.push("409");
    }
    if d.path.contains("/secrets") || d.path.contains("/whatsapp") {
        v.push("503");
    }
    if d.path.contains("/whatsapp") {
        v.push("502");
    }
    v
}

/// What the issue decided where the contracts are silent, for the document's description.
const NOTES: &str = "PyTake and bradax under one `/api/v1`, served by catraca (issue 15).\n\n\
Where the contracts are silent, issue 15 decided:\n\
- Errors: PyTake answers `ErrorResponse` (`error_code` always sent; 422 a body not of the schema, 400 a value that breaks a rule); bradax answers `BradaxError`.\n\
- `POST /api/v1/auth/refresh` belongs to both: the refresh token's audience picks the answer; anything else is 401. Register and refresh also return a `refresh_token`; a refresh token stays valid until its successor is first used, and reuse of a spent one revokes the family.\n\
- Roles: `viewer` reads everything but secret values; `agent` adds WhatsApp send and contact create; `org_admin` everything in its organization; `super_admin` any organization (`X-Organization-Id`).\n\
- `secrets/` answers with and without the trailing slash; a `Secret` never carries its value; `test` checks a provider key against the configured provider's `/models` and a WhatsApp token against the Graph API.\n\
- Creations answer 201; deletions 204.\n\
- `FlowAutomation` and its stats have no fields in the contract: see their schemas.\n\
- Deprecated routes (config `deprecations:`) answer `Deprecated: true` and, when dated, `Sunset` (RFC 8594), and keep working.";

/// bradax's LLM routes: the gateway's (Pingora), not the admin app's, so not in its route
/// table; listed when the gateway serves them.
fn gateway_operations() -> Vec<(&'static str, Value)> {
    let body = obj(
        &["model", "messages"],
        json!({
            "model": string(),
            "messages": array(obj(&["role", "content"], json!({"role": string(), "content": string()}))),
            "parameters": {"type": "object", "description": "OpenAI fields (temperature, max_tokens, top_p, …); an unknown one is a 400."},
            "stream": boolean(),
        }),
    );
    let errors = |ok: Value| {
        let mut r = json!({"200": ok});
        for s in ["400", "401", "402", "403", "404", "413", "415", "429"] {
            r[s] = json!({"description": "Error", "content": {"application/json": {"schema": schemas()["BradaxError"].clone()}}});
        }
        r
    };
    let invoke = json!({
        "summary": "Invoke a model (a gateway route: limits, failover and billing apply once)",
        "tags": ["bradax"], "security": [{"BearerJWT": []}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": body.clone()}}},
        "responses": errors(json!({"description": "OK", "content": {"application/json": {"schema": obj(
            &["content", "model", "usage", "timestamp"],
            json!({"content": string(), "model": string(), "usage": schema("BradaxUsage"), "timestamp": time()}),
        )}}})),
    });
    let stream = json!({
        "summary": "Stream a model's answer: `data: {\"delta\", \"finished\"}` events, the last with `usage` (and `error` after a failure mid-stream)",
        "tags": ["bradax"], "security": [{"BearerJWT": []}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": body}}},
        "responses": errors(json!({"description": "Server-sent events", "content": {"text/event-stream": {"schema": string()}}})),
    });
    [
        ("/api/v1/llm/invoke", invoke),
        ("/api/v1/llm/stream", stream),
    ]
    .into_iter()
    .filter(|(p, _)| crate::gateway::ctx::Route::from_path(p).is_some())
    .collect()
}

/// Finish the `/api/v1` document: title and notes, optional bodies, non-JSON answers, the
/// gateway's bradax routes.
pub fn finish(doc: &mut Value) {
    for (path, op) in gateway_operations() {
        doc["paths"][path] = json!({"post": op});
    }
    doc["info"] = json!({
        "title": "PyTake and bradax API v1 (catraca)",
        "version": env!("CARGO_PKG_VERSION"),
        "description": NOTES,
    });
    let paths = doc["paths"].as_object_mut().map(std::mem::take);
    let mut paths = paths.unwrap_or_default();
    for (path, ops) in paths.iter_mut() {
        let Some(ops) = ops.as_object_mut() else {
            continue;
        };
        for (method, op) in ops.iter_mut() {
            match (method.as_str(), path.as_str()) {
                // the body is optional
                ("post", "/api/v1/secrets/{id}/rotate" | "/api/v1/secrets/{id}/test") => {
                    op["requestBody"]["required"] = json!(false);
                }
                ("get", "/api/v1/docs") => {
                    op["responses"]["200"]["content"] =
                        json!({"text/html": {"schema": {"type": "string"}}});
                }
                ("get", "/api/v1/docs/{file}") => {
                    op["responses"]["200"]["content"] = json!({"text/javascript": {"schema": {"type": "string"}},
                               "text/css": {"schema": {"type": "string"}},
                               "image/png": {"schema": {"type": "string"}},
                               "text/plain": {"schema": {"type": "string"}}});
                    op["responses"]["304"] = json!({"description": "Not modified (If-None-Match)"});
                }
                ("get", "/api/v1/whatsapp/webhook") => {
                    op["responses"]["200"]["content"] =
                        json!({"text/plain": {"schema": {"type": "string"}}});
                }
                _ => {}
            }
        }
    }
    doc["paths"] = Value::Object(paths);
}

/// The schemas a document uses, for `components.schemas`.
pub fn components() -> Map<String, Value> {
    schemas().as_object().cloned().unwrap_or_default()
}

/// Every response field of the `/api/v1` document, for the contract snapshot
/// (`tests/contracts/v1-fields.json`): per named schema its field paths (`position.x`,
/// `details[].code`), and per operation's success answer its fields or the schema it names
/// (`=Flow`, `[]=Flow`).
#[cfg(test)]
pub fn response_fields(doc: &Value) -> std::collections::BTreeMap<String, Vec<String>> {
    fn walk(s: &Value, prefix: &str, out: &mut Vec<String>) {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or(r);
            out.push(format!("{prefix}={name}"));
            return;
        }
        if let Some(items) = s.get("items") {
            walk(items, &format!("{prefix}[]"), out);
            return;
        }
        for (k, v) in s
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.push(path.clone());
            walk(v, &path, out);
        }
    }
    let mut all = std::collections::BTreeMap::new();
    for (name, s) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let mut f = Vec::new();
        walk(s, "", &mut f);
        f.sort();
        all.insert(format!("schema {name}"), f);
    }
    for (path, ops) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in ops.as_object().into_iter().flatten() {
            for (status, r) in op["responses"].as_object().into_iter().flatten() {
                let Some(s) = r.pointer("/content/application~1json/schema") else {
                    continue;
                };
                if !status.starts_with('2') {
                    continue;
                }
                let mut f = Vec::new();
                walk(s, "", &mut f);
                f.sort();
                all.insert(
                    format!("{} {path} {status}", method.to_ascii_uppercase()),
                    f,
                );
            }
        }
    }
    all
}

/// What `snapshot` has that `now` lacks: removed answers and removed or renamed fields.
#[cfg(test)]
pub fn removed(
    snapshot: &std::collections::BTreeMap<String, Vec<String>>,
    now: &std::collections::BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let mut gone = Vec::new();
    for (key, fields) in snapshot {
        let Some(cur) = now.get(key) else {
            gone.push(format!("{key}: no longer documented"));
            continue;
        };
        for f in fields {
            if !cur.contains(f) {
                gone.push(format!("{key}: field '{f}' removed or renamed"));
            }
        }
    }
    gone
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const SNAPSHOT: &str = "tests/contracts/v1-fields.json";

    fn current() -> BTreeMap<String, Vec<String>> {
        let (_, docs) = crate::admin::api().into_parts();
        response_fields(&super::super::v1_document(&docs))
    }

    /// PyTake's v1 promise ("Breaking changes exigem bump de versão"): no response field of
    /// `/api/v1` is removed or renamed. Additions are fine. After an intended addition, or to
    /// take in a new route, rewrite the snapshot with
    /// `CATRACA_UPDATE_CONTRACT_SNAPSHOT=1 cargo nextest run --lib v1_response_fields` and commit
    /// it; a removal needs a v2 instead.
    #[test]
    fn v1_response_fields_are_never_removed_or_renamed() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT);
        let now = current();
        if std::env::var_os("CATRACA_UPDATE_CONTRACT_SNAPSHOT").is_some() {
            let text = serde_json::to_string_pretty(&now).unwrap();
            std::fs::write(&path, text + "\n").unwrap();
            return;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (write it with CATRACA_UPDATE_CONTRACT_SNAPSHOT=1)",
                path.display()
            )
        });
        let snapshot: BTreeMap<String, Vec<String>> = serde_json::from_str(&text).unwrap();
        let gone = removed(&snapshot, &now);
        assert!(
            gone.is_empty(),
            "the v1 contract lost response fields (a breaking change: v1 promises none):\n  {}\n\
             If this is intended, it belongs in /api/v2. If a field was only added or the \
             snapshot is stale, rewrite it: CATRACA_UPDATE_CONTRACT_SNAPSHOT=1 cargo nextest run \
             --lib v1_response_fields, and commit {SNAPSHOT}.",
            gone.join("\n  ")
        );
        // the snapshot really covers the contract's schemas
        for name in [
            "User",
            "Flow",
            "Contact",
            "Secret",
            "SecretUsageStats",
            "WhatsAppNumber",
            "FlowAutomation",
            "ErrorResponse",
            "BradaxError",
        ] {
            assert!(
                snapshot.contains_key(&format!("schema {name}")),
                "{name} not in {SNAPSHOT}"
            );
        }
    }

    /// The check fails on a removal or a rename (the contract's own example: `name` →
    /// `flowName`), on a vanished answer, and not on an addition.
    #[test]
    fn the_snapshot_check_catches_a_rename_a_removal_and_allows_additions() {
        let snapshot = current();
        assert!(removed(&snapshot, &snapshot).is_empty());

        let mut renamed = snapshot.clone();
        let flow = renamed.get_mut("schema Flow").unwrap();
        let i = flow.iter().position(|f| f == "name").unwrap();
        flow[i] = "flowName".into();
        assert_eq!(
            removed(&snapshot, &renamed),
            ["schema Flow: field 'name' removed or renamed"]
        );

        let mut fewer = snapshot.clone();
        fewer
            .get_mut("schema Secret")
            .unwrap()
            .retain(|f| f != "last_rotated_at");
        fewer.remove("GET /api/v1/contacts 200");
        let gone = removed(&snapshot, &fewer);
        assert_eq!(gone.len(), 2, "{gone:?}");

        let mut more = snapshot.clone();
        more.get_mut("schema Flow")
            .unwrap()
            .push("display_name".into());
        more.insert("GET /api/v1/new 200".into(), vec!["x".into()]);
        assert!(removed(&snapshot, &more).is_empty(), "additions are fine");

        // and the whole chain: a schema that loses a field shows in the walk
        let mut doc =
            json!({"components": {"schemas": {"Flow": schemas()["Flow"].clone()}}, "paths": {}});
        let before = response_fields(&doc);
        doc["components"]["schemas"]["Flow"]["properties"]
            .as_object_mut()
            .unwrap()
            .remove("status");
        let gone = removed(&before, &response_fields(&doc));
        assert_eq!(gone, ["schema Flow: field 'status' removed or renamed"]);
    }
}
