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

/// The OpenAPI 3.1 document of `docs`.
pub fn document(docs: &[RouteDoc]) -> Value {
    let mut paths = Map::new();
    for d in docs {
        let entry = paths
            .entry(d.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        let mut op = json!({
            "summary": d.summary,
            "tags": [d.tag],
            "responses": {"200": {"description": "OK"}},
        });
        let params: Vec<Value> = d
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
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
