//! What every surface's extractors share: a JSON body and a query string read once, with the
//! input no contract accepts refused before any handler runs (a NUL character in any string:
//! PostgreSQL cannot store it, so it would otherwise surface as a 500). Each surface wraps
//! these in extractors that reject in its own error shape.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// Largest admin request body read (2 MiB, axum's default).
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// Why a body or query was refused, as text for the surface's validation error.
#[derive(Debug)]
pub struct Rejected(pub String);

const NUL: &str = "strings must not contain the NUL character (\\u0000)";

/// Whether JSON text holds a `\u0000` escape (a backslash before it escaped by another one is
/// text, not an escape).
pub fn has_nul_escape(json: &[u8]) -> bool {
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'\\', &json[i..]) {
        let start = i + off;
        let mut end = start;
        while end < json.len() && json[end] == b'\\' {
            end += 1;
        }
        // an odd run of backslashes escapes what follows
        if (end - start) % 2 == 1 && json[end..].starts_with(b"u0000") {
            return true;
        }
        i = end.max(start + 1);
    }
    false
}

/// The request body as JSON `T` (content type and syntax checked by axum's `Json`).
pub async fn json<T: DeserializeOwned, S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<T, Rejected> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| Rejected(format!("the body is larger than {MAX_BODY} bytes")))?;
    if has_nul_escape(&bytes) || bytes.contains(&0) {
        return Err(Rejected(NUL.into()));
    }
    let req = Request::from_parts(parts, axum::body::Body::from(bytes));
    axum::Json::<T>::from_request(req, state)
        .await
        .map(|axum::Json(v)| v)
        .map_err(|e| Rejected(e.body_text()))
}

/// The query string as `T`.
pub async fn query<T: DeserializeOwned, S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Result<T, Rejected> {
    if parts.uri.query().is_some_and(|q| q.contains("%00")) {
        return Err(Rejected(NUL.into()));
    }
    axum::extract::Query::<T>::from_request_parts(parts, state)
        .await
        .map(|q| q.0)
        .map_err(|e| Rejected(e.body_text()))
}

/// One CSV cell per RFC 4180 (quoted when it holds a comma, quote or line break), and a
/// leading `=`, `+`, `-` or `@` defused with `'` so a spreadsheet never runs it.
pub fn csv_cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}")
    } else {
        v.to_string()
    };
    if v.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_escapes_are_found_and_escaped_backslashes_are_not() {
        assert!(has_nul_escape(br#"{"name":"a\u0000b"}"#));
        assert!(
            has_nul_escape(br#"{"name":"\\\u0000"}"#),
            "escaped backslash, then NUL"
        );
        assert!(
            !has_nul_escape(br#"{"name":"\\u0000"}"#),
            "a backslash, then text"
        );
        assert!(!has_nul_escape(br#"{"name":"\u0001 \n \\"}"#));
        assert!(!has_nul_escape(b"\\"));
    }
}
