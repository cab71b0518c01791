//! Routes are mounted through [`Api`], which records each one; `/openapi.json` is generated
//! from that record, so the document cannot list a route that is not mounted or miss one that
//! is.

use axum::Router;
use axum::routing::MethodRouter;
use serde_json::{Map, Value, json};

mod v1;

/// One mounted route, as documented.
#[derive(Debug, Clone)]
pub struct RouteDoc {
    /// HTTP method, upper case.
    pub method: &'static str,
    /// Path with `{param}` segments.
    pub path: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Needs a Bearer JWT.
    pub auth: bool,
    /// Contract it belongs to.
    pub tag: &'static str,
}

/// A router that documents what it mounts.
pub struct Api<S> {
    router: Router<S>,
    docs: Vec<RouteDoc>,
    tag: &'static str,
}

impl<S: Clone + Send + Sync + 'static> Api<S> {
    /// Routes of one contract.
    pub fn new(tag: &'static str) -> Self {
        Api {
            router: Router::new(),
            docs: Vec::new(),
            tag,
        }
    }

    /// Mount `handler` for `method` at `path`.
    pub fn route(
        mut self,
        method: &'static str,
        path: &'static str,
        summary: &'static str,
        auth: bool,
        handler: MethodRouter<S>,
    ) -> Self {
        self.router = self.router.route(path, handler);
        self.docs.push(RouteDoc {
            method,
            path,
            summary,
            auth,
            tag: self.tag,
        });
        self
    }

    /// Add another contract's routes.
    pub fn merge(mut self, other: Api<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.docs.extend(other.docs);
        self
    }

    /// The router and the record of its routes.
    pub fn into_parts(self) -> (Router<S>, Vec<RouteDoc>) {
        (self.router, self.docs)
    }
}

/// The OpenAPI 3.1 document of `docs`: for each operation the success status and the error
/// statuses of its contract with that contract's error shape, typed path parameters, and, for
/// SabIA (whose seed is markdown, so this document is its machine-readable contract), the
/// request bodies, query parameters and answers the seed gives.
pub fn document(docs: &[RouteDoc]) -> Value {
    let mut paths = Map::new();
    for d in docs {
        let entry = paths
            .entry(d.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        let shape = contracts::shape(d);
        let mut ok = json!({"description": "OK"});
        if let Some(schema) = shape.answer {
            ok["content"] = json!({"application/json": {"schema": schema}});
        }
        let mut responses = Map::new();
        responses.insert(shape.status.to_string(), ok);
        for status in contracts::error_statuses(d) {
            responses.insert(
                status.to_string(),
                json!({"description": "Error", "content": {"application/json": {"schema": contracts::error_schema(d.tag)}}}),
            );
        }
        let mut op = json!({
            "summary": d.summary,
            "tags": [d.tag],
            "responses": responses,
        });
        let mut params: Vec<Value> = d
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": contracts::path_param(name)}))
            .collect();
        params.extend(
            shape
                .query
                .into_iter()
                .map(|(name, schema)| json!({"name": name, "in": "query", "schema": schema})),
        );
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if let Some(body) = shape.body {
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": body}}});
        }
        if d.auth {
            // Tokia's customer routes take an API key, every other a session JWT
            op["security"] = if d.tag == "tokia" {
                json!([{"TokiaKey": []}])
            } else {
                json!([{"BearerJWT": []}])
            };
        }
        if let Value::Object(m) = entry {
            m.insert(d.method.to_ascii_lowercase(), op);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "catraca admin", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {
            "BearerJWT": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "TokiaKey": {"type": "http", "scheme": "bearer", "bearerFormat": "sk-tokia-"},
        }, "schemas": v1::components()},
        "paths": paths,
    })
}

/// The document of `/api/v1` (`GET /api/v1/openapi.json`): the PyTake and bradax operations of
/// `docs` with their named schemas and the decisions the contracts leave open.
pub fn v1_document(docs: &[RouteDoc]) -> Value {
    let v1: Vec<RouteDoc> = docs
        .iter()
        .filter(|d| matches!(d.tag, "pytake" | "bradax"))
        .cloned()
        .collect();
    let mut doc = document(&v1);
    v1::finish(&mut doc);
    doc
}

/// What the seed contracts say about their operations beyond the route table: statuses, error
/// shapes, parameter types and (SabIA) bodies and answers. Keyed by method and path, and only
/// read for mounted routes, so nothing here can document a route that is not served.
mod contracts {
    use serde_json::{Value, json};

    use super::RouteDoc;

    /// One operation's shapes.
    pub struct Shape {
        /// The success status (`"201"` for the seed's creations).
        pub status: &'static str,
        /// JSON request body.
        pub body: Option<Value>,
        /// Query parameters: name and schema.
        pub query: Vec<(&'static str, Value)>,
        /// Schema of the success answer.
        pub answer: Option<Value>,
    }

    fn plain(status: &'static str) -> Shape {
        Shape {
            status,
            body: None,
            query: Vec::new(),
            answer: None,
        }
    }

    /// A JSON object with these `required` fields among `properties`.
    fn obj(required: &[&str], properties: Value) -> Value {
        json!({"type": "object", "required": required, "properties": properties})
    }

    fn string() -> Value {
        json!({"type": "string"})
    }

    /// A string the seed shows filled in but that a user may leave unset (phone, avatar, ...).
    fn opt_string() -> Value {
        json!({"type": ["string", "null"]})
    }

    fn time() -> Value {
        json!({"type": "string", "format": "date-time"})
    }

    fn int() -> Value {
        json!({"type": "integer"})
    }

    fn number() -> Value {
        json!({"type": "number"})
    }

    fn array(items: Value) -> Value {
        json!({"type": "array", "items": items})
    }

    /// Path parameters by name: the seeds' ids are integers for MaxAI keys and templates and
    /// SabIA keys, UUIDs for SabIA teams and users.
    pub fn path_param(name: &str) -> Value {
        match name {
            "key_id" | "template_id" | "keyId" => int(),
            "teamId" | "userId" => json!({"type": "string", "format": "uuid"}),
            _ => string(),
        }
    }

    /// The statuses an operation answers errors with, by contract. SabIA: the seed's list of
    /// HTTP codes (section 8, every one but 500). MaxAI: 400 everywhere, 401 where a token is
    /// needed (and on login), 404 where a path names a resource, 429 on login (failed logins
    /// are throttled).
    pub fn error_statuses(d: &RouteDoc) -> Vec<&'static str> {
        match d.tag {
            "sabia" => vec!["400", "401", "403", "404", "409", "422", "429"],
            "maxai" => {
                let mut v = vec!["400"];
                if d.auth || d.path == "/api/auth/login" {
                    v.push("401");
                }
                if d.path.contains('{') {
                    v.push("404");
                }
                if d.path == "/api/auth/login" {
                    v.push("429");
                }
                v
            }
            "tokia" => tokia_error_statuses(d),
            "pytake" | "bradax" => super::v1::error_statuses(d),
            _ => Vec::new(),
        }
    }

    /// Each contract's error body.
    pub fn error_schema(tag: &str) -> Value {
        match tag {
            // section 8, "Estrutura de Erro"
            "sabia" => obj(
                &["success", "error"],
                json!({
                    "success": {"const": false},
                    "error": obj(&["code", "message"], json!({
                        "code": string(),
                        "message": string(),
                        "details": array(obj(&[], json!({"field": string(), "message": string()}))),
                    })),
                }),
            ),
            // the Tokia seed's `Error`
            "tokia" => obj(
                &["error"],
                json!({"error": obj(&["message", "type", "code"], json!({
                    "message": string(), "type": string(), "code": string(),
                }))}),
            ),
            // "Respostas de Erro": `ErrorResponse` (inline, as every contract's error here)
            "pytake" => super::v1::schemas()["ErrorResponse"].clone(),
            // "Error Format"
            "bradax" => super::v1::schemas()["BradaxError"].clone(),
            // the seed's `Error`
            _ => obj(&[], json!({"error": string(), "details": string()})),
        }
    }

    /// SabIA's success envelope around `data` (none for the routes that answer a message only).
    fn ok(data: Option<Value>) -> Option<Value> {
        Some(match data {
            Some(d) => obj(
                &["success", "data"],
                json!({"success": {"const": true}, "message": string(), "data": d}),
            ),
            None => obj(
                &["success", "message"],
                json!({"success": {"const": true}, "message": string()}),
            ),
        })
    }

    fn sabia_user(extra: &[(&str, Value)]) -> Value {
        let mut props = json!({
            "id": string(), "name": string(), "email": string(),
            "phone": opt_string(), "company": opt_string(),
        });
        let mut required = vec!["id", "name", "email", "phone", "company"];
        for (k, v) in extra {
            props[*k] = v.clone();
            required.push(k);
        }
        obj(&required, props)
    }

    fn sabia_team() -> Value {
        obj(
            &["id", "name", "plan", "logo", "role", "createdAt"],
            json!({"id": string(), "name": string(), "plan": string(), "logo": opt_string(), "role": string(), "createdAt": time()}),
        )
    }

    fn sabia_member() -> Value {
        obj(
            &["id", "name", "email", "role", "avatar"],
            json!({"id": string(), "name": string(), "email": string(), "role": string(), "avatar": opt_string()}),
        )
    }

    fn sabia_plan() -> Value {
        obj(
            &[
                "name",
                "price",
                "priceSubtext",
                "annualPrice",
                "annualPriceSubtext",
                "mainFeature",
                "features",
                "popular",
            ],
            json!({
                "name": string(), "price": string(), "priceSubtext": string(),
                "annualPrice": string(), "annualPriceSubtext": string(), "mainFeature": string(),
                "features": array(obj(&["text", "included"], json!({"text": string(), "included": {"type": "boolean"}}))),
                "cta": string(), "ctaVariant": string(), "popular": {"type": "boolean"},
            }),
        )
    }

    fn sabia_key() -> Value {
        obj(
            &[
                "id",
                "key",
                "name",
                "description",
                "createdAt",
                "status",
                "lastUsed",
            ],
            json!({
                "id": int(), "key": string(), "name": string(), "description": opt_string(),
                "createdAt": time(), "status": string(), "lastUsed": {"type": ["string", "null"], "format": "date-time"},
            }),
        )
    }

    fn sabia_webhook() -> Value {
        obj(
            &["id", "url", "events", "status", "createdAt"],
            json!({
                "id": string(), "url": string(), "events": array(string()), "status": string(),
                "lastTriggered": {"type": ["string", "null"], "format": "date-time"}, "createdAt": time(),
            }),
        )
    }

    /// Plan usage: `limit` is null on a plan without one (the seed's Sandbox: "ilimitadas").
    fn sabia_usage(extra: &[(&str, Value)]) -> Value {
        let mut props =
            json!({"current": int(), "limit": {"type": ["integer", "null"]}, "resetDate": time()});
        let mut required = vec!["current", "limit", "resetDate"];
        for (k, v) in extra {
            props[*k] = v.clone();
            required.push(k);
        }
        obj(&required, props)
    }

    fn email() -> Value {
        json!({"type": "string", "format": "email"})
    }

    /// A string that must not be empty (tokens, plan codes, secrets).
    fn filled() -> Value {
        json!({"type": "string", "minLength": 1})
    }

    /// A name: 1 to 200 characters.
    fn name() -> Value {
        json!({"type": "string", "minLength": 1, "maxLength": 200})
    }

    /// The one password rule.
    fn password() -> Value {
        use crate::domain::accounts::Password;
        json!({"type": "string", "minLength": Password::MIN, "maxLength": Password::MAX})
    }

    fn enumerated(values: &[&str]) -> Value {
        json!({"type": "string", "enum": values})
    }

    /// The shapes of `d` (sections of `sabia-labs-api.md`; MaxAI's creations answer 201).
    pub fn shape(d: &RouteDoc) -> Shape {
        if matches!(d.tag, "pytake" | "bradax")
            && let Some(s) = super::v1::shape(d)
        {
            return s;
        }
        match (d.tag, d.method, d.path) {
            ("maxai", "POST", "/api/auth/register" | "/api/keys") => plain("201"),
            ("pytake", method, path) => pytake(method, path),
            ("sabia", method, path) => sabia(method, path),
            ("tokia", method, "/v1/me/alerts") => tokia_alerts(method),
            ("tokia", method, path) if tokia_account_path(path) => tokia_account(method, path),
            ("tokia", method, "/v1/me/refunds") => tokia_refunds(method),
            ("tokia", "GET", path) => tokia(path),
            _ => plain("200"),
        }
    }

    /// The PyTake user (`me`, and `user` in token answers): the named `User`.
    fn pytake_user() -> Value {
        super::v1::schema("User")
    }

    /// PyTake's auth bodies and answers (the contract's "Endpoints de Auth", plus the
    /// `refresh_token` register and refresh also return).
    fn pytake(method: &str, path: &str) -> Shape {
        let tokens = |with_user: bool| {
            let mut props = json!({"access_token": string(), "refresh_token": string(),
                                   "token_type": {"const": "bearer"}});
            let mut req = vec!["access_token", "refresh_token", "token_type"];
            if with_user {
                props["user"] = pytake_user();
                req.push("user");
            }
            obj(&req, props)
        };
        let message = || Some(obj(&["message"], json!({"message": string()})));
        let with = |status, body: Value, answer: Option<Value>| Shape {
            status,
            body: Some(body),
            query: Vec::new(),
            answer,
        };
        match (method, path) {
            ("POST", "/api/v1/auth/register") => with(
                "201",
                obj(
                    &["email", "password", "name", "organization_name"],
                    json!({"email": email(), "password": password(), "name": name(), "organization_name": name()}),
                ),
                Some(tokens(true)),
            ),
            ("POST", "/api/v1/auth/login") => with(
                "200",
                obj(
                    &["email", "password"],
                    json!({"email": email(), "password": string()}),
                ),
                Some(tokens(true)),
            ),
            ("POST", "/api/v1/auth/refresh") => with(
                "200",
                obj(&["refresh_token"], json!({"refresh_token": filled()})),
                Some(tokens(false)),
            ),
            ("POST", "/api/v1/auth/logout") => Shape {
                body: None,
                ..plain("204")
            },
            ("GET", "/api/v1/auth/me") => Shape {
                answer: Some(pytake_user()),
                ..plain("200")
            },
            ("POST", "/api/v1/auth/forgot-password") => {
                with("200", obj(&["email"], json!({"email": email()})), message())
            }
            ("POST", "/api/v1/auth/reset-password") => with(
                "200",
                obj(
                    &["token", "new_password"],
                    json!({"token": filled(), "new_password": password()}),
                ),
                message(),
            ),
            _ => plain("200"),
        }
    }

    /// Tokia's customer reads: 400 on a bad parameter, 401 without a live `sk-tokia-` key,
    /// 404 for another organization's key in `usage/by-key`, 503 while the database is away.
    fn tokia_error_statuses(d: &RouteDoc) -> Vec<&'static str> {
        if (d.method, d.path) == ("POST", "/v1/me/refunds") {
            // 400 a bad body or amount (below R$ 5, above the refundable), 409 another request
            // pending or the Idempotency-Key used with another body
            return vec!["400", "401", "409", "503"];
        }
        if d.path == "/v1/me/alerts" {
            return tokia_alert_errors(d.method);
        }
        if tokia_account_path(d.path) {
            return tokia_account_errors(d.path);
        }
        if d.path == "/v1/upstream-health" {
            return vec!["400", "503"];
        }
        if !d.auth {
            return Vec::new();
        }
        // every keyed route: a bad parameter or body, no or a bad key, the database away; a
        // path id of another organization or none: 404
        let mut v = vec!["400", "401"];
        if d.path == "/v1/admin/audit-log/export.csv" {
            v.push("403"); // organization admins only
        }
        if d.path.contains('{') || d.path == "/v1/usage/by-key" {
            v.push("404");
        }
        match (d.method, d.path) {
            // a prompt name (slug) taken
            ("POST", "/v1/me/prompts")
            | ("PATCH", "/v1/me/prompts/{id}")
            | ("POST", "/v1/me/prompts/{id}/clone") => v.push("409"),
            // a real gateway request: its refusal (402 balance, 429 limits) or the
            // provider's failure reaches the caller with its status
            ("POST", "/v1/me/prompts/{id}/run") => v.extend(["402", "429", "502", "504"]),
            _ => {}
        }
        v.push("503");
        v
    }

    /// An exact amount: a JSON number with at most 6 decimals.
    fn money() -> Value {
        json!({"type": "number", "description": "exact: at most 6 decimals"})
    }

    /// The Tokia seed's `Balance` plus `total_refunded_brl` and `held_brl` (pending refunds):
    /// `balance_brl = total_topped_up_brl − total_spent_brl − total_refunded_brl − held_brl`.
    fn tokia_balance() -> Vec<(&'static str, Value)> {
        vec![
            ("balance_brl", money()),
            ("total_topped_up_brl", money()),
            ("total_spent_brl", money()),
            ("total_refunded_brl", money()),
            ("held_brl", money()),
        ]
    }

    fn fields(list: Vec<(&'static str, Value)>) -> (Vec<&'static str>, Value) {
        let names = list.iter().map(|(k, _)| *k).collect();
        let mut props = serde_json::Map::new();
        for (k, v) in list {
            props.insert(k.to_string(), v);
        }
        (names, Value::Object(props))
    }

    /// An object whose every listed field is present.
    fn all(list: Vec<(&'static str, Value)>) -> Value {
        let (names, props) = fields(list);
        obj(&names, props)
    }

    fn opt(t: &str) -> Value {
        json!({"type": [t, "null"]})
    }

    /// One usage event: the columns of the CSV export, in its order.
    fn tokia_event() -> Value {
        all(vec![
            ("id", int()),
            ("created_at", time()),
            ("date", json!({"type": "string", "format": "date"})),
            ("request_id", string()),
            (
                "api_key_id",
                json!({"type": ["string", "null"], "format": "uuid"}),
            ),
            ("key_name", opt("string")),
            ("key_prefix", opt("string")),
            ("model", opt("string")),
            ("route", string()),
            ("status", int()),
            ("prompt_tokens", int()),
            ("completion_tokens", int()),
            ("cost_brl", opt("number")),
            ("cost_upstream_usd", opt("number")),
            ("latency_ms", int()),
            ("session_id", opt("string")),
        ])
    }

    /// A refund request (`src/surfaces/tokia/refunds.rs`).
    fn tokia_refund() -> Value {
        all(vec![
            ("id", json!({"type": "string", "format": "uuid"})),
            ("amount_brl", money()),
            ("reason", opt("string")),
            ("status", enumerated(&["pending", "approved", "rejected"])),
            ("created_at", time()),
            (
                "decided_at",
                json!({"type": ["string", "null"], "format": "date-time"}),
            ),
        ])
    }

    /// `GET /v1/me/refunds` → `{refunds}`, newest first; `POST` → 201 with the pending refund
    /// (its amount held at once; the same `Idempotency-Key` and body answer it again).
    fn tokia_refunds(method: &str) -> Shape {
        if method == "GET" {
            let mut s = plain("200");
            s.answer = Some(all(vec![("refunds", array(tokia_refund()))]));
            return s;
        }
        let mut s = plain("201");
        s.body = Some(obj(
            &["amount_brl"],
            json!({
                "amount_brl": {
                    "oneOf": [{"type": "string"}, {"type": "number"}],
                    "description": "exact decimal: at least 5.00, whole centavos, at most the unspent part of paid top-ups",
                },
                "reason": {"type": ["string", "null"], "maxLength": 500},
            }),
        ));
        s.answer = Some(tokia_refund());
        s
    }

    fn days_param(min: i64, max: i64) -> (&'static str, Value) {
        (
            "days",
            json!({"type": "integer", "minimum": min, "maximum": max, "default": 30}),
        )
    }

    fn date_params() -> Vec<(&'static str, Value)> {
        let d = json!({"type": "string", "format": "date"});
        vec![("from", d.clone()), ("to", d)]
    }

    /// The shapes of Tokia's money and usage routes: the seed's schemas where it gives them,
    /// and the README's where it does not (`usage_events` items, `events` items, `period`,
    /// `usage/by-key`, `me/recommendations`).
    fn tokia(path: &str) -> Shape {
        let mut s = plain("200");
        match path {
            "/v1/usage" => {
                s.query = vec![(
                    "limit",
                    json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 100}),
                )];
                s.answer = Some(all(vec![
                    ("balance", all(tokia_balance())),
                    ("usage_events", array(tokia_event())),
                ]));
            }
            "/v1/usage/export.csv" => s.query = date_params(),
            "/v1/usage/export.json" => {
                s.query = date_params();
                s.answer = Some(all(vec![
                    (
                        "period",
                        all(vec![
                            ("from", json!({"type": "string", "format": "date"})),
                            ("to", json!({"type": "string", "format": "date"})),
                            ("timezone", string()),
                        ]),
                    ),
                    ("total_events", int()),
                    ("events", array(tokia_event())),
                ]));
            }
            "/v1/upstream-health" => {
                s.query = vec![days_param(1, 90)];
                let nullable_int = json!({"type": ["integer", "null"]});
                s.answer = Some(all(vec![
                    ("period_days", int()),
                    (
                        "providers",
                        array(all(vec![
                            ("provider", string()),
                            ("attempts", int()),
                            ("failures", int()),
                            ("uptime_pct", json!({"type": ["number", "null"]})),
                            ("latency_p50_ms", nullable_int.clone()),
                            ("latency_p95_ms", nullable_int),
                        ])),
                    ),
                ]));
            }
            "/v1/me/usage-summary" => {
                s.query = vec![days_param(1, 365)];
                let mut f = vec![("period_days", int())];
                f.extend(tokia_balance());
                f.push((
                    "period_totals",
                    all(vec![
                        ("requests", int()),
                        ("cost_billed_brl", money()),
                        ("cost_upstream_usd", money()),
                        ("prompt_tokens", int()),
                        ("completion_tokens", int()),
                    ]),
                ));
                f.push((
                    "top_models",
                    array(all(vec![
                        ("model_id", string()),
                        ("model_name", string()),
                        ("requests", int()),
                        ("cost_billed_brl", money()),
                    ])),
                ));
                f.push(("unique_models_used", int()));
                s.answer = Some(all(f));
            }
            "/v1/me/dashboard-stats" => {
                let pair = |a: &'static str, b: &'static str| all(vec![(a, int()), (b, int())]);
                s.answer = Some(all(vec![
                    (
                        "profile",
                        json!({"oneOf": [{"type": "null"}, all(vec![("id", string()), ("name", string()), ("email", string())])]}),
                    ),
                    ("balance_brl", money()),
                    ("keys", pair("active", "revoked")),
                    ("topups", pair("paid", "total")),
                    ("notifications", pair("failed", "total")),
                ]));
            }
            "/v1/me/runway" => {
                s.query = vec![days_param(1, 90)];
                s.answer = Some(all(vec![
                    ("balance_brl", money()),
                    ("period_days", int()),
                    ("daily_avg_brl", money()),
                    ("runway_days", opt("integer")),
                    ("critical", json!({"type": "boolean"})),
                ]));
            }
            "/v1/usage/by-key" => {
                s.query = vec![
                    days_param(1, 365),
                    ("key_id", json!({"type": "string", "format": "uuid"})),
                ];
                s.answer = Some(all(vec![
                    ("period_days", int()),
                    (
                        "keys",
                        array(all(vec![
                            ("id", json!({"type": "string", "format": "uuid"})),
                            ("name", string()),
                            ("prefix", string()),
                            ("status", enumerated(&["active", "disabled", "revoked"])),
                            ("created_at", time()),
                            (
                                "revoked_at",
                                json!({"type": ["string", "null"], "format": "date-time"}),
                            ),
                            ("requests", int()),
                            ("prompt_tokens", int()),
                            ("completion_tokens", int()),
                            ("cost_billed_brl", money()),
                            ("cost_upstream_usd", money()),
                            (
                                "last_request_at",
                                json!({"type": ["string", "null"], "format": "date-time"}),
                            ),
                            ("top_models", array(string())),
                        ])),
                    ),
                ]));
            }
            "/v1/me/recommendations" => {
                s.query = vec![days_param(7, 90)];
                s.answer = Some(all(vec![
                    ("period_days", int()),
                    (
                        "recommendations",
                        array(all(vec![
                            ("model", string()),
                            ("category", string()),
                            ("requests", int()),
                            ("prompt_tokens", int()),
                            ("completion_tokens", int()),
                            ("current_cost_brl", money()),
                            ("suggested_model", string()),
                            ("suggested_cost_brl", money()),
                            ("saving_brl", money()),
                        ])),
                    ),
                ]));
            }
            _ => {}
        }
        s
    }

    /// Tokia's account routes (`src/surfaces/tokia/account.rs`).
    fn tokia_account_path(path: &str) -> bool {
        matches!(
            path,
            "/v1/me/profile"
                | "/v1/me/referrals"
                | "/v1/me/notifications"
                | "/v1/me/export"
                | "/v1/me/teams"
                | "/v1/me/preferences"
        )
    }

    /// 400 bad input, 401 no live key, 403 a key without a user, 429 past 5 exports an
    /// hour, 503 while the database is away.
    fn tokia_account_errors(path: &str) -> Vec<&'static str> {
        let mut v = vec!["400", "401", "403"];
        if path == "/v1/me/export" {
            v.push("429");
        }
        v.push("503");
        v
    }

    fn tokia_preferences() -> Value {
        all(vec![
            ("timezone", string()),
            (
                "preferred_locale",
                json!({"type": "string", "pattern": "^[a-z]{2}(-[A-Z]{2})?$"}),
            ),
            ("weekly_digest_enabled", json!({"type": "boolean"})),
        ])
    }

    fn tokia_profile() -> Value {
        let uuid = json!({"type": "string", "format": "uuid"});
        all(vec![
            ("id", uuid.clone()),
            ("email", string()),
            ("name", string()),
            ("company", opt("string")),
            ("phone", opt("string")),
            ("avatar_url", opt("string")),
            ("created_at", time()),
            (
                "organization",
                all(vec![
                    ("id", uuid),
                    ("name", string()),
                    ("plan", opt("string")),
                ]),
            ),
            (
                "role",
                json!({"enum": ["owner", "admin", "member", "viewer", null]}),
            ),
            ("preferences", tokia_preferences()),
            (
                "flags",
                all(vec![
                    ("email_verified", json!({"type": "boolean"})),
                    ("is_admin", json!({"type": "boolean"})),
                    ("prepaid", json!({"type": "boolean"})),
                ]),
            ),
        ])
    }

    fn tokia_notification() -> Value {
        all(vec![
            ("id", string()),
            ("template", string()),
            ("sent_at", time()),
            ("status", enumerated(&["sent", "failed"])),
            ("error", opt("string")),
        ])
    }

    fn tokia_team(extra: Vec<(&'static str, Value)>) -> Value {
        let mut f = vec![
            ("id", json!({"type": "string", "format": "uuid"})),
            ("name", string()),
            ("role", enumerated(&["owner", "admin", "member", "viewer"])),
            ("is_admin", json!({"type": "boolean"})),
            ("plan", opt("string")),
            ("created_at", time()),
            ("current", json!({"type": "boolean"})),
        ];
        f.extend(extra);
        all(f)
    }

    /// The shapes of Tokia's account routes (the README's where the seed gives none).
    fn tokia_account(method: &str, path: &str) -> Shape {
        let mut s = plain("200");
        match (method, path) {
            ("GET", "/v1/me/profile") => s.answer = Some(tokia_profile()),
            ("GET", "/v1/me/referrals") => {
                s.answer = Some(all(vec![
                    (
                        "code",
                        json!({"type": "string", "pattern": "^[A-HJ-NP-Z2-9]{8}$"}),
                    ),
                    ("invited_count", int()),
                    ("credit_earned_brl", money()),
                    (
                        "invited",
                        array(all(vec![
                            ("email", string()),
                            ("joined_at", time()),
                            ("credit_brl", money()),
                        ])),
                    ),
                ]));
            }
            ("GET", "/v1/me/notifications") => {
                s.query = vec![(
                    "limit",
                    json!({"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
                )];
                s.answer = Some(all(vec![
                    ("total", int()),
                    ("notifications", array(tokia_notification())),
                ]));
            }
            ("GET", "/v1/me/export") => {
                s.answer = Some(all(vec![
                    ("export_version", int()),
                    ("generated_at", time()),
                    ("profile", tokia_profile()),
                    ("balance", all(tokia_balance())),
                    ("teams", array(tokia_team(Vec::new()))),
                    ("notifications", array(tokia_notification())),
                    (
                        "referrals",
                        all(vec![
                            ("code", opt("string")),
                            ("invited_count", int()),
                            ("referred", json!({"type": "boolean"})),
                        ]),
                    ),
                    ("note", string()),
                ]));
            }
            ("GET", "/v1/me/teams") => {
                s.answer = Some(all(vec![("teams", array(tokia_team(Vec::new())))]));
            }
            ("POST", "/v1/me/teams") => {
                s.status = "201";
                s.body = Some(obj(&["name"], json!({"name": name()})));
                s.answer = Some(tokia_team(vec![("balance", all(tokia_balance()))]));
            }
            ("PUT", "/v1/me/preferences") => {
                s.body = Some(obj(
                    &[],
                    json!({
                        "timezone": {"type": "string", "description": "an IANA time zone name"},
                        "preferred_locale": {"type": "string", "pattern": "^[a-z]{2}(-[A-Z]{2})?$"},
                        "weekly_digest_enabled": {"type": "boolean"},
                    }),
                ));
                s.answer = Some(tokia_preferences());
            }
            _ => {}
        }
        s
    }

    /// Tokia's spending alerts (`src/surfaces/tokia/alerts.rs`): 400 bad input, 401 no live
    /// key, 409 past 50 alerts or a duplicate rule (POST), 503 while the database is away.
    fn tokia_alert_errors(method: &str) -> Vec<&'static str> {
        match method {
            "POST" => vec!["400", "401", "409", "503"],
            _ => vec!["401", "503"],
        }
    }

    /// `GET /v1/me/alerts` → `{alerts}`; `POST` → 201 alert.
    fn tokia_alerts(method: &str) -> Shape {
        let kinds = ["balance_below", "daily_spend_above", "monthly_spend_above"];
        let alert = all(vec![
            ("id", json!({"type": "string", "format": "uuid"})),
            ("kind", enumerated(&kinds)),
            ("threshold_brl", money()),
            ("channel", enumerated(&["email", "webhook"])),
            ("armed", json!({"type": "boolean"})),
            (
                "last_fired_at",
                json!({"type": ["string", "null"], "format": "date-time"}),
            ),
            ("created_at", time()),
        ]);
        if method == "POST" {
            let threshold = json!({
                "oneOf": [
                    {"type": "string", "pattern": "^[0-9]+(\\.[0-9]{0,6})?$"},
                    {"type": "number", "exclusiveMinimum": 0, "maximum": 10_000_000},
                ],
                "description": "> 0 and ≤ 10000000, at most 6 decimals; a number is read from its literal digits",
            });
            let mut s = plain("201");
            s.body = Some(json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["kind", "threshold_brl", "channel"],
                "properties": {
                    "kind": enumerated(&kinds),
                    "threshold_brl": threshold,
                    "channel": enumerated(&["email", "webhook"]),
                },
            }));
            s.answer = Some(alert);
            s
        } else {
            let mut s = plain("200");
            s.answer = Some(all(vec![("alerts", array(alert))]));
            s
        }
    }

    fn sabia(method: &str, path: &str) -> Shape {
        let mut s = plain("200");
        match (method, path) {
            // 1.1
            ("POST", "/v1/auth/register") => {
                s.status = "201";
                s.body = Some(obj(
                    &["name", "email", "password"],
                    json!({"name": name(), "email": email(), "password": password(), "phone": string(), "company": string()}),
                ));
                s.answer = ok(Some(obj(
                    &["user", "token"],
                    json!({
                        "user": sabia_user(&[("createdAt", time()), ("emailVerified", json!({"type": "boolean"}))]),
                        "token": string(),
                    }),
                )));
            }
            // 1.2
            ("POST", "/v1/auth/login") => {
                s.body = Some(obj(
                    &["email", "password"],
                    json!({"email": email(), "password": filled()}),
                ));
                s.answer = ok(Some(obj(
                    &["user", "token", "expiresIn"],
                    json!({"user": sabia_user(&[("avatar", opt_string())]), "token": string(), "expiresIn": int()}),
                )));
            }
            // 1.3
            ("POST", "/v1/auth/forgot-password") => {
                s.body = Some(obj(&["email"], json!({"email": email()})));
                s.answer = ok(None);
            }
            // 1.4
            ("POST", "/v1/auth/reset-password") => {
                s.body = Some(obj(
                    &["token", "newPassword"],
                    json!({"token": filled(), "newPassword": password()}),
                ));
                s.answer = ok(None);
            }
            // 1.5
            ("POST", "/v1/auth/verify-email") => {
                s.body = Some(obj(&["token"], json!({"token": filled()})));
                s.answer = ok(None);
            }
            // 2.1
            ("GET", "/v1/teams") => s.answer = ok(Some(array(sabia_team()))),
            // 2.2
            ("POST", "/v1/teams") => {
                s.status = "201";
                s.body = Some(obj(&["name"], json!({"name": name(), "plan": string()})));
                s.answer = ok(Some(sabia_team()));
            }
            // 2.3
            ("GET", "/v1/teams/{teamId}") => {
                s.answer = ok(Some(obj(
                    &["id", "name", "plan", "members", "createdAt"],
                    json!({"id": string(), "name": string(), "plan": sabia_plan(), "members": array(sabia_member()), "createdAt": time()}),
                )));
            }
            // 2.4
            ("POST", "/v1/teams/{teamId}/members") => {
                s.status = "201";
                s.body = Some(obj(
                    &["email"],
                    json!({"email": email(), "role": enumerated(&["admin", "member", "viewer"])}),
                ));
                s.answer = ok(Some(sabia_member()));
            }
            // 2.5, 4.5
            ("DELETE", _) => s.answer = ok(None),
            // 3.1
            ("GET", "/v1/plans") => s.answer = ok(Some(array(sabia_plan()))),
            // 3.2
            ("PUT", "/v1/teams/{teamId}/plan") => {
                s.body = Some(obj(
                    &["plan"],
                    json!({"plan": filled(), "billingCycle": enumerated(&["monthly", "annual"])}),
                ));
                s.answer = ok(Some(obj(
                    &[
                        "teamId",
                        "oldPlan",
                        "newPlan",
                        "billingCycle",
                        "nextBillingDate",
                    ],
                    json!({
                        "teamId": string(), "oldPlan": string(), "newPlan": string(),
                        "billingCycle": string(), "nextBillingDate": time(),
                    }),
                )));
            }
            // 3.3
            ("GET", "/v1/teams/{teamId}/billing") => {
                s.answer = ok(Some(obj(
                    &[
                        "currentPlan",
                        "billingCycle",
                        "nextBillingDate",
                        "amount",
                        "currency",
                        "paymentMethod",
                        "usage",
                    ],
                    json!({
                        "currentPlan": string(), "billingCycle": string(), "nextBillingDate": time(),
                        "amount": number(), "currency": string(),
                        "paymentMethod": {"oneOf": [{"type": "null"}, obj(&["type", "last4", "brand"], json!({"type": string(), "last4": string(), "brand": string()}))]},
                        "usage": sabia_usage(&[]),
                    }),
                )));
            }
            // 4.1
            ("GET", "/v1/teams/{teamId}/api-keys") => s.answer = ok(Some(array(sabia_key()))),
            // 4.2
            ("POST", "/v1/teams/{teamId}/api-keys") => {
                s.status = "201";
                s.body = Some(obj(
                    &["name"],
                    json!({"name": name(), "description": string()}),
                ));
                s.answer = ok(Some(sabia_key()));
            }
            // 4.3
            ("PUT", "/v1/teams/{teamId}/api-keys/{keyId}") => {
                s.body = Some(obj(&[], json!({"name": name(), "description": string()})));
                s.answer = ok(Some(sabia_key()));
            }
            // 4.4
            ("PATCH", "/v1/teams/{teamId}/api-keys/{keyId}/status") => {
                s.body = Some(obj(
                    &["status"],
                    json!({"status": enumerated(&["active", "inactive", "revoked"])}),
                ));
                s.answer = ok(Some(obj(
                    &["id", "status", "updatedAt"],
                    json!({"id": int(), "status": string(), "updatedAt": time()}),
                )));
            }
            // 5.1
            ("GET", "/v1/teams/{teamId}/dashboard") => {
                s.query = vec![("period", enumerated(&["7d", "30d", "90d"]))];
                s.answer = ok(Some(obj(
                    &["summary", "usage", "chartData", "recentActivity"],
                    json!({
                        "summary": obj(&["totalRequests", "totalCost", "activeApiKeys", "teamMembers"], json!({
                            "totalRequests": int(), "totalCost": number(), "activeApiKeys": int(), "teamMembers": int(),
                        })),
                        "usage": sabia_usage(&[("percentage", number())]),
                        "chartData": array(obj(&["date", "ocr", "recognition"], json!({
                            "date": {"type": "string", "format": "date"}, "ocr": int(), "recognition": int(),
                        }))),
                        "recentActivity": array(obj(&["id", "type", "description", "timestamp", "apiKey", "endpoint"], json!({
                            "id": int(), "type": string(), "description": string(),
                            "timestamp": time(), "apiKey": opt_string(), "endpoint": string(),
                        }))),
                    }),
                )));
            }
            // 5.2
            ("GET", "/v1/teams/{teamId}/usage-logs") => {
                s.query = vec![
                    ("page", json!({"type": "integer", "minimum": 1})),
                    (
                        "limit",
                        json!({"type": "integer", "minimum": 1, "maximum": 100}),
                    ),
                    ("startDate", time()),
                    ("endDate", time()),
                    ("api", enumerated(&["ocr", "recognition"])),
                ];
                s.answer = ok(Some(obj(
                    &["logs", "pagination"],
                    json!({
                        "logs": array(obj(&["id", "date", "api", "count", "apiKey", "endpoint", "responseTime", "status"], json!({
                            "id": int(), "date": time(), "api": string(), "count": int(),
                            "apiKey": opt_string(), "endpoint": string(), "responseTime": number(), "status": string(),
                        }))),
                        "pagination": obj(&["page", "limit", "total", "totalPages"], json!({
                            "page": int(), "limit": int(), "total": int(), "totalPages": int(),
                        })),
                    }),
                )));
            }
            // 5.3
            ("GET", "/v1/teams/{teamId}/usage-stats") => {
                let service = obj(
                    &["requests", "cost", "avgResponseTime"],
                    json!({"requests": int(), "cost": number(), "avgResponseTime": number()}),
                );
                s.query = vec![
                    ("period", enumerated(&["7d", "30d", "90d", "1y"])),
                    ("groupBy", enumerated(&["day", "week", "month"])),
                ];
                s.answer = ok(Some(obj(
                    &["period", "groupBy", "stats", "summary"],
                    json!({
                        "period": string(), "groupBy": string(),
                        "stats": array(obj(&["date", "ocr", "recognition", "total"], json!({
                            "date": string(), "ocr": service, "recognition": service,
                            "total": obj(&["requests", "cost"], json!({"requests": int(), "cost": number()})),
                        }))),
                        "summary": obj(&["totalRequests", "totalCost", "avgDailyRequests", "avgDailyCost"], json!({
                            "totalRequests": int(), "totalCost": number(), "avgDailyRequests": number(), "avgDailyCost": number(),
                        })),
                    }),
                )));
            }
            // 7.1
            ("POST", "/v1/teams/{teamId}/webhooks") => {
                s.status = "201";
                s.body = Some(obj(
                    &["url", "events"],
                    json!({
                        "url": {"type": "string", "format": "uri"},
                        "events": array(enumerated(crate::domain::webhooks::EVENTS)),
                        "secret": {"type": "string", "minLength": 1, "maxLength": 256},
                    }),
                ));
                s.answer = ok(Some(sabia_webhook()));
            }
            // 7.2
            ("GET", "/v1/teams/{teamId}/webhooks") => s.answer = ok(Some(array(sabia_webhook()))),
            _ => {}
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every SabIA operation mounted has its shapes here (a renamed path would fall back to a
    /// bare "200 OK" silently otherwise): an answer schema, and a body for POST, PUT and PATCH.
    #[test]
    fn every_sabia_operation_has_its_seed_shapes() {
        let (_, docs) = crate::admin::api().into_parts();
        let doc = document(&docs);
        let mut n = 0;
        for (path, ops) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in ops.as_object().into_iter().flatten() {
                if op["tags"][0] != "sabia" {
                    continue;
                }
                n += 1;
                let answered = op["responses"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .any(|(status, r)| status.starts_with('2') && r.get("content").is_some());
                assert!(answered, "{method} {path}: no answer schema");
                if matches!(method.as_str(), "post" | "put" | "patch") {
                    assert!(op.get("requestBody").is_some(), "{method} {path}: no body");
                }
            }
        }
        assert!(n >= 23, "{n} SabIA operations");
    }

    /// Tokia's money and usage reads document their answers (the CSV export excepted: it is
    /// text) and their query parameters, with the API-key scheme.
    #[test]
    fn tokia_reads_have_their_shapes() {
        let (_, docs) = crate::surfaces::tokia::api().into_parts();
        let doc = document(&docs);
        for path in [
            "/v1/usage",
            "/v1/usage/export.json",
            "/v1/me/usage-summary",
            "/v1/me/dashboard-stats",
            "/v1/me/runway",
            "/v1/usage/by-key",
            "/v1/me/recommendations",
        ] {
            let op = &doc["paths"][path]["get"];
            assert!(
                op["responses"]["200"]["content"]["application/json"]["schema"].is_object(),
                "{path}"
            );
            assert_eq!(op["security"][0]["TokiaKey"], json!([]), "{path}");
            assert!(op["responses"]["401"].is_object(), "{path}");
        }
        let by_key = &doc["paths"]["/v1/usage/by-key"]["get"];
        assert!(by_key["responses"]["404"].is_object());
        assert_eq!(by_key["parameters"][0]["schema"]["maximum"], 365);
    }
}
