//! Routes are mounted through [`Api`], which records each one; `/openapi.json` is generated
//! from that record, so the document cannot list a route that is not mounted or miss one that
//! is.

use axum::Router;
use axum::routing::MethodRouter;
use serde_json::{Map, Value, json};

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
            op["security"] = json!([{"BearerJWT": []}]);
        }
        if let Value::Object(m) = entry {
            m.insert(d.method.to_ascii_lowercase(), op);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "catraca admin", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {"BearerJWT": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "paths": paths,
    })
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
        match (d.tag, d.method, d.path) {
            ("maxai", "POST", "/api/auth/register" | "/api/keys") => plain("201"),
            ("sabia", method, path) => sabia(method, path),
            _ => plain("200"),
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
}
