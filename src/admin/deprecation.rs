//! The admin app's side of the deprecation policy (`config::deprecation`): an answer of a
//! route the running config marks deprecated carries `Deprecated: true` and, when dated,
//! `Sunset`. The route keeps working; a reload changes the list for the next request.

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use super::AdminState;

/// Middleware: run the request, then mark the answer when its route is deprecated.
pub async fn mark(State(s): State<AdminState>, req: Request, next: Next) -> Response {
    let sunset = s.config.with(|c| {
        crate::config::deprecation::find(&c.deprecations, req.method().as_str(), req.uri().path())
            .map(|d| d.sunset.clone())
    });
    let mut res = next.run(req).await;
    if let Some(sunset) = sunset {
        let h = res.headers_mut();
        h.insert("deprecated", HeaderValue::from_static("true"));
        if let Some(v) = sunset.and_then(|v| HeaderValue::from_str(&v).ok()) {
            h.insert("sunset", v);
        }
    }
    res
}
