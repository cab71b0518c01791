//! `GET /api/v1/docs` (Swagger UI, its assets served by catraca itself: no CDN) and
//! `GET /api/v1/openapi.json` (the PyTake and bradax surfaces, generated from the routes as
//! mounted: `admin::openapi::v1_document`). The Swagger UI files are vendored in
//! `assets/swagger-ui/` (see its README for the version and how to update) and embedded here.

use std::sync::OnceLock;

use axum::Json;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::wire::PyError;
use crate::admin::AdminState;
use crate::admin::openapi::Api;

/// The vendored `swagger-ui-dist` version.
pub const VERSION: &str = "5.35.0";

/// One embedded file: name under `/api/v1/docs/`, content type, bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../assets/swagger-ui/swagger-ui-bundle.js"),
    },
    Asset {
        name: "swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../../assets/swagger-ui/swagger-ui.css"),
    },
    Asset {
        name: "init.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../assets/swagger-ui/init.js"),
    },
    Asset {
        name: "favicon-32x32.png",
        content_type: "image/png",
        bytes: include_bytes!("../../../assets/swagger-ui/favicon-32x32.png"),
    },
    Asset {
        name: "LICENSE",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../../assets/swagger-ui/LICENSE"),
    },
    Asset {
        name: "NOTICE",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../../assets/swagger-ui/NOTICE"),
    },
    Asset {
        name: "swagger-ui-bundle.js.LICENSE.txt",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../../assets/swagger-ui/swagger-ui-bundle.js.LICENSE.txt"),
    },
];

const PAGE: &[u8] = include_bytes!("../../../assets/swagger-ui/index.html");

/// The page's policy: scripts, styles and images from this origin only (Swagger UI sets inline
/// styles), calls to this origin only ("Try it out").
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A strong validator of `bytes`.
fn etag(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(bytes)[..12]))
}

/// ETags of the assets, computed once.
fn etags() -> &'static [String] {
    static E: OnceLock<Vec<String>> = OnceLock::new();
    E.get_or_init(|| ASSETS.iter().map(|a| etag(a.bytes)).collect())
}

/// `GET /api/v1/docs`: the Swagger UI page (never cached stale: it names the assets).
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /api/v1/docs/{file}`: an embedded asset, cached a day and revalidated by ETag (304
/// when unchanged); any other name is a 404 in PyTake's shape.
pub async fn asset(Path(file): Path<String>, h: HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == file) else {
        return PyError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no documentation file '{file}'"),
        )
        .into_response();
    };
    let (a, tag) = (&ASSETS[i], &etags()[i]);
    let cache = [
        (header::CACHE_CONTROL, "public, max-age=86400"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    let fresh = h
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let etag = HeaderValue::from_str(tag).unwrap_or(HeaderValue::from_static("\"\""));
    if fresh {
        return (StatusCode::NOT_MODIFIED, cache, [(header::ETAG, etag)]).into_response();
    }
    (
        cache,
        [
            (header::ETAG, etag),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(a.content_type),
            ),
        ],
        a.bytes,
    )
        .into_response()
}

/// `GET /api/v1/openapi.json`: the PyTake and bradax operations as mounted, computed on first
/// use (the route table is fixed for the process).
pub async fn openapi() -> Json<Value> {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(
        DOC.get_or_init(|| {
            let (_, docs) = crate::admin::api().into_parts();
            crate::admin::openapi::v1_document(&docs)
        })
        .clone(),
    )
}

/// The documentation routes.
pub fn routes() -> Api<AdminState> {
    Api::new("pytake")
        .route(
            "GET",
            "/api/v1/docs",
            "Swagger UI over /api/v1/openapi.json (served by catraca, no CDN)",
            false,
            get(page),
        )
        .route(
            "GET",
            "/api/v1/docs/{file}",
            "A Swagger UI asset (swagger-ui-bundle.js, swagger-ui.css, init.js, …)",
            false,
            get(asset),
        )
        .route(
            "GET",
            "/api/v1/openapi.json",
            "The OpenAPI 3.1 document of the PyTake and bradax routes",
            false,
            get(openapi),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_only_embedded_assets_and_the_v1_document() {
        let page = std::str::from_utf8(PAGE).unwrap();
        for src in page.split("\"/api/v1/docs/").skip(1) {
            let name = src.split('"').next().unwrap();
            assert!(
                ASSETS.iter().any(|a| a.name == name),
                "{name} is not embedded"
            );
        }
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no CDN"
        );
        let init = std::str::from_utf8(ASSETS[2].bytes).unwrap();
        assert!(init.contains("\"/api/v1/openapi.json\""));
        assert!(ASSETS[0].bytes.len() > 500_000, "the real bundle");
    }
}
