//! The upstream side of an attempt: the peer for the chosen deployment, the request headers
//! (provider credentials, path, `Host`) and the body rewrite (`model`, `include_usage`).

use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use pingora::{Error, ErrorType, Result};

use super::ctx::RequestCtx;

/// Concurrent requests one HTTP/2 connection to a provider carries before another is opened.
const H2_STREAMS: usize = 100;

/// Peer for the next candidate deployment; resets the per-attempt state.
pub fn next_peer(ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
    let live = ctx
        .live
        .clone()
        .ok_or_else(|| Error::explain(ErrorType::InternalError, "no config snapshot"))?;
    let d = ctx
        .candidates
        .get(ctx.attempts as usize)
        .filter(|_| ctx.attempts < ctx.max_attempts)
        .ok_or_else(|| Error::explain(ErrorType::InternalError, "no deployment left to try"))?;
    ctx.attempts += 1;
    ctx.attempt_start = std::time::Instant::now();
    ctx.deployment = Some(d);
    ctx.upstream_status = None;
    ctx.sse_active = false;
    ctx.sse =
        crate::sse::SseScanner::new(ctx.hide_usage).with_max_event(live.config.max_sse_event_bytes);
    ctx.resp_tail.clear();
    ctx.usage = None;
    ctx.ttft = None;
    ctx.upstream_body = None;
    ctx.streamed_body_bytes = 0;
    ctx.xlate = None;

    let dep = &live.config.deployments[d];
    let provider = &live.config.providers[dep.provider];
    let lp = &live.providers[dep.provider];
    // `lp.addr` is a resolved SocketAddr, so no DNS lookup happens here.
    #[allow(clippy::disallowed_methods)]
    let mut peer = HttpPeer::new(lp.addr, provider.tls, provider.host.clone());
    peer.options.connection_timeout = Some(provider.connect_timeout);
    peer.options.total_connection_timeout = Some(provider.connect_timeout);
    peer.options.read_timeout = Some(provider.read_timeout);
    peer.options.write_timeout = Some(provider.read_timeout);
    if provider.http2 {
        // over TLS, h2 offered with h1 as the fallback; in the clear, h2c by prior knowledge
        peer.options.alpn = if provider.tls {
            pingora::protocols::ALPN::H2H1
        } else {
            pingora::protocols::ALPN::H2
        };
        peer.options.max_h2_streams = H2_STREAMS;
    }
    ctx.total_timeout = Some(provider.total_timeout);
    Ok(Box::new(peer))
}

/// Client headers every provider gets (with the gateway's own `host`, `authorization`,
/// `x-request-id` and `x-client-request-id`). `accept-encoding` is not among them: the body
/// filters must see plain bytes.
pub const FORWARDED: [&str; 5] = [
    "accept",
    "content-type",
    "content-length",
    "user-agent",
    "openai-beta",
];

/// Headers no `forward_headers` entry may name: credentials, cookies, hop-by-hop framing and
/// what the gateway sets itself.
pub fn never_forwarded(name: &str) -> bool {
    const NEVER: [&str; 16] = [
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "cookie",
        "host",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "transfer-encoding",
        "accept-encoding",
        "openai-organization",
        "openai-project",
        "x-request-id",
    ];
    NEVER.iter().any(|n| name.eq_ignore_ascii_case(n)) || name.starts_with("x-catraca")
}

/// Whether the client header `name` (lowercase, as `http` keeps it) goes upstream.
fn forwarded(name: &str, extra: &[String], upload: bool) -> bool {
    if FORWARDED.contains(&name) || (upload && name == "transfer-encoding") {
        return true;
    }
    extra.iter().any(|e| match e.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => e == name,
    })
}

/// Peer for the admin app on loopback.
pub fn admin_peer(addr: std::net::SocketAddr, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
    ctx.attempts = 1;
    #[allow(clippy::disallowed_methods)] // a SocketAddr: no DNS
    let mut peer = HttpPeer::new(addr, false, String::new());
    peer.options.connection_timeout = Some(std::time::Duration::from_secs(2));
    peer.options.read_timeout = Some(std::time::Duration::from_secs(60));
    Ok(Box::new(peer))
}

/// Rewrite the request header for the current deployment.
pub fn rewrite_request(req: &mut RequestHeader, ctx: &mut RequestCtx) -> Result<()> {
    let (live, d, route) = match (ctx.live.clone(), ctx.deployment, ctx.route) {
        (Some(l), Some(d), Some(r)) => (l, d, r),
        _ => return Error::e_explain(ErrorType::InternalError, "attempt without deployment"),
    };
    let dep = &live.config.deployments[d];
    let provider = &live.config.providers[dep.provider];
    let lp = &live.providers[dep.provider];
    let kind = provider.kind;

    let uri = match req.uri.query() {
        // another dialect: its own path (and query), per deployment
        _ if kind != crate::dialect::Kind::OpenAi => {
            dialect_uri(ctx, provider, route, &dep.upstream_model)?
        }
        // the common case: the provider's path for this route, parsed when the config loaded
        None => lp.uris[route.index()].clone(),
        Some(q) => {
            let mut path = String::with_capacity(provider.base_path.len() + 32 + q.len());
            path.push_str(&provider.base_path);
            path.push_str(route.upstream_suffix());
            path.push('?');
            path.push_str(q);
            path.parse::<http::Uri>()
                .map_err(|e| Error::because(ErrorType::InternalError, "upstream uri", e))?
        }
    };
    req.set_uri(uri);
    // Only an allow-list of client headers reaches the provider: cookies, the client's
    // credentials and its own OpenAI organization/project would make a real provider answer
    // 401 or bill the wrong project. (The loop finds one header to drop at a time: no list is
    // allocated, and a request has a handful of headers.)
    // Headers set again below are overwritten in place rather than removed first.
    let has_auth = lp.auth_header.is_some();
    while let Some(name) = req
        .headers
        .keys()
        .find(|n| {
            let n = n.as_str();
            !(forwarded(n, &provider.forward_headers, route.is_upload())
                || n == "host"
                || n == "x-request-id"
                || (has_auth && n == "authorization"))
        })
        .cloned()
    {
        req.remove_header(&name);
    }
    req.insert_header(http::header::HOST, lp.host_header.clone())?;
    if let Some(a) = &lp.auth_header {
        req.insert_header(http::header::AUTHORIZATION, a.clone())?;
    }
    for (name, value) in &lp.dialect_headers {
        req.insert_header(*name, value.clone())?;
    }
    req.insert_header("x-request-id", ctx.request_id.as_str())?;
    if let Some(id) = &ctx.client_request_id {
        req.insert_header("x-client-request-id", id.as_str())?;
    }

    if !route.is_upload() {
        let body = if kind.speaks_openai() {
            upstream_body(ctx, &dep.upstream_model)?
        } else {
            match super::translate::request_body(ctx, d, kind, &dep.upstream_model) {
                Ok(b) => b,
                Err(e) => {
                    // the client's request, not the deployment, is at fault: answered as it
                    // is, never counted against the deployment nor failed over
                    ctx.client_error = Some(e);
                    return Error::e_explain(ErrorType::InternalError, "untranslatable request");
                }
            }
        };
        if kind == crate::dialect::Kind::Bedrock
            && let Some(aws) = &provider.aws
        {
            let host = lp.host_header.to_str().unwrap_or_default();
            let pq = req
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            let signed = crate::dialect::bedrock::sign(
                aws,
                "POST",
                host,
                &pq,
                &body,
                std::time::SystemTime::now(),
            );
            for (name, value) in signed {
                req.insert_header(name, value)?;
            }
        }
        req.remove_header(&http::header::TRANSFER_ENCODING);
        req.insert_header(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(body.len()),
        )?;
        ctx.upstream_body = Some(body);
    }
    Ok(())
}

/// The upstream URI of an attempt on a provider of another kind than OpenAI: the base path
/// and the dialect's path (the client's query is not passed on).
fn dialect_uri(
    ctx: &RequestCtx,
    provider: &crate::config::resolve::Provider,
    route: super::ctx::Route,
    upstream_model: &str,
) -> Result<http::Uri> {
    use crate::dialect::Kind;
    let tail = match (provider.kind, super::translate::op_of(route)) {
        (Kind::Azure, _) => crate::dialect::azure::path_for(
            route.upstream_suffix(),
            upstream_model,
            provider.api_version.as_deref().unwrap_or_default(),
        ),
        (kind, Some(op)) => crate::dialect::path(kind, op, upstream_model, ctx.stream, ""),
        // no translation of this route: the request never gets here (checked first), but a
        // later candidate could: its body fails with the client's 400
        (_, None) => route.upstream_suffix().to_string(),
    };
    let mut path = String::with_capacity(provider.base_path.len() + tail.len());
    path.push_str(&provider.base_path);
    path.push_str(&tail);
    path.parse::<http::Uri>()
        .map_err(|e| Error::because(ErrorType::InternalError, "upstream uri", e))
}

/// The body for this attempt: the client's bytes untouched when nothing must change, else the
/// JSON with `model` set to the upstream name and `stream_options.include_usage` added.
fn upstream_body(ctx: &mut RequestCtx, upstream_model: &str) -> Result<Bytes> {
    let original = ctx
        .body
        .clone()
        .ok_or_else(|| Error::explain(ErrorType::InternalError, "body not read"))?;
    let same_model = ctx.model_name.as_deref() == Some(upstream_model);
    if same_model && !ctx.hide_usage {
        return Ok(original);
    }
    if let Some(spliced) = splice(ctx, &original, upstream_model, same_model) {
        return Ok(spliced);
    }
    if ctx.body_json.is_none() {
        let v: serde_json::Value = serde_json::from_slice(&original)
            .map_err(|e| Error::because(ErrorType::InternalError, "body reparse", e))?;
        ctx.body_json = Some(v);
    }
    let Some(serde_json::Value::Object(obj)) = ctx.body_json.as_mut() else {
        return Error::e_explain(ErrorType::InternalError, "body is not an object");
    };
    obj.insert(
        "model".into(),
        serde_json::Value::String(upstream_model.to_string()),
    );
    if ctx.hide_usage {
        let so = obj
            .entry("stream_options")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if !so.is_object() {
            *so = serde_json::Value::Object(Default::default());
        }
        if let serde_json::Value::Object(so) = so {
            so.insert("include_usage".into(), serde_json::Value::Bool(true));
        }
    }
    let out = serde_json::to_vec(&ctx.body_json)
        .map_err(|e| Error::because(ErrorType::InternalError, "body serialize", e))?;
    Ok(Bytes::from(out))
}

/// The common rewrites without parsing the body again: replace the bytes of the `model` string
/// and, when the client sent no `stream_options`, add one before the object's closing brace.
fn splice(
    ctx: &RequestCtx,
    original: &Bytes,
    upstream_model: &str,
    same_model: bool,
) -> Option<Bytes> {
    if ctx.hide_usage && !ctx.stream_options_absent {
        return None;
    }
    const INJECT: &[u8] = br#","stream_options":{"include_usage":true}"#;
    let mut out = Vec::with_capacity(original.len() + upstream_model.len() + INJECT.len());
    if same_model {
        out.extend_from_slice(original);
    } else {
        let (start, end) = ctx.model_span?;
        let escaped = serde_json::to_string(upstream_model).ok()?;
        out.extend_from_slice(original.get(..start)?);
        out.extend_from_slice(escaped.get(1..escaped.len() - 1)?.as_bytes());
        out.extend_from_slice(original.get(end..)?);
    }
    if ctx.hide_usage {
        let close = out.iter().rposition(|&b| b == b'}')?;
        out.splice(close..close, INJECT.iter().copied());
    }
    Some(Bytes::from(out))
}

/// Swap the replayed client body for this attempt's body; count streamed upload bytes.
pub fn body_chunk(
    body: &mut Option<Bytes>,
    end_of_stream: bool,
    ctx: &mut RequestCtx,
) -> Result<()> {
    if let Some(b) = &ctx.upstream_body {
        *body = Some(if end_of_stream {
            b.clone()
        } else {
            Bytes::new()
        });
        return Ok(());
    }
    if let Some(b) = body {
        ctx.streamed_body_bytes += b.len() as u64;
        let limit = ctx
            .live
            .as_ref()
            .map(|l| l.config.max_upload_bytes)
            .unwrap_or(u64::MAX);
        if ctx.streamed_body_bytes > limit {
            return Error::e_explain(ErrorType::InvalidHTTPHeader, "upload over max_upload_bytes");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_for(body: &str, hide_usage: bool) -> RequestCtx {
        let mut ctx = RequestCtx::new();
        let b = Bytes::from(body.to_string());
        let start = body.find("\"model\": \"").map(|i| i + 10);
        if let Some(s) = start {
            let e = s + body[s..].find('"').unwrap_or(0);
            ctx.model_span = Some((s, e));
            ctx.model_name = Some(body[s..e].into());
        }
        ctx.hide_usage = hide_usage;
        ctx.stream_options_absent = !body.contains("stream_options");
        ctx.body = Some(b);
        ctx
    }

    fn rewrite(body: &str, hide: bool, upstream: &str) -> serde_json::Value {
        let mut ctx = ctx_for(body, hide);
        let out = upstream_body(&mut ctx, upstream).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn splice_and_value_paths_agree() {
        let cases = [
            (
                r#"{"model": "pub", "stream": true, "messages": [{"content": "}"}]}  "#,
                true,
            ),
            (r#"{"messages": [], "model": "pub"}"#, false),
            (
                r#"{"model": "pub", "stream": true, "stream_options": {"include_usage": false}}"#,
                true,
            ),
            (
                r#"{"model": "pub", "stream": true, "stream_options": null}"#,
                true,
            ),
        ];
        for (body, hide) in cases {
            let got = rewrite(body, hide, "up/\"quoted\"");
            let mut want: serde_json::Value = serde_json::from_str(body).unwrap();
            want["model"] = "up/\"quoted\"".into();
            if hide {
                want["stream_options"] = serde_json::json!({"include_usage": true});
            }
            assert_eq!(got, want, "{body}");
        }
    }

    proptest::proptest! {
        /// The byte splice and the full parse give the same upstream body for any object,
        /// model name (escapes included) and usage injection.
        #[test]
        fn splice_matches_a_full_rewrite(
            model in "[a-z0-9./-]{1,20}",
            upstream in "\\PC{1,20}",
            extra in proptest::collection::btree_map("[a-z_]{1,8}", "\\PC{0,10}", 0..5),
            hide in proptest::bool::ANY,
        ) {
            let mut obj = serde_json::Map::new();
            for (k, v) in &extra {
                if k != "model" && k != "stream_options" {
                    obj.insert(k.clone(), serde_json::Value::String(v.clone()));
                }
            }
            obj.insert("model".into(), serde_json::Value::String(model.clone()));
            let body = serde_json::to_string(&obj).unwrap().replace("\"model\":\"", "\"model\": \"");
            let got = rewrite(&body, hide, &upstream);
            let mut want = serde_json::Value::Object(obj);
            want["model"] = upstream.clone().into();
            if hide {
                want["stream_options"] = serde_json::json!({"include_usage": true});
            }
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn untouched_body_is_the_same_bytes() {
        let body = r#"{"model": "pub", "x": 1}"#;
        let mut ctx = ctx_for(body, false);
        let out = upstream_body(&mut ctx, "pub").unwrap();
        assert_eq!(&out[..], body.as_bytes());
    }
}
