//! The rest of OpenAI's surface (issue 16, items 5 and 6): what the request phase checks and
//! counts for `/v1/responses`, `/v1/moderations`, `/v1/audio/speech` and `/v1/rerank` before
//! any upstream call, and which deployments may serve them. Every function here runs only on
//! its own route: the chat and embeddings paths never call into this module.
//!
//! - **Responses** (`POST /v1/responses`) is passed through to OpenAI-kind deployments only
//!   (no other dialect has it, and Azure serves it outside its per-deployment paths). A model
//!   with several deployments keeps the OpenAI-kind ones in their usual order (failover
//!   among them as for chat); a model with none is the client's 400, before any upstream call.
//!   It is metered from the answer's `usage` (`input_tokens`, `output_tokens` and their
//!   details; streamed: the `response.completed` event's `response.usage`) and priced like chat.
//! - **Moderations** are priced per input token; OpenAI's answer reports no usage, so the
//!   input is counted with the model's tokenizer when it ends (as chat is when its upstream
//!   reports none).
//! - **Speech** is priced per character of `input` (counted here, bounded) and its audio
//!   streamed to the client as it arrives, never scanned nor held.
//! - **Rerank** (Cohere/Jina shape `{model, query, documents, top_n}`) is priced per search:
//!   one search per 100 documents or part of it (Cohere's search unit), counted here from the
//!   request, so no number from the upstream is billed.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::ctx::Route;
use super::route::{Candidates, Live};
use crate::dialect::Kind;
use crate::error::ApiError;

/// Most characters one speech request may ask for (OpenAI's own limit is 4096; other
/// OpenAI-compatible speech servers take more).
pub const MAX_SPEECH_CHARS: u64 = 100_000;

/// Most documents one rerank may hold (Cohere's limit is 1000; Jina's 2048).
pub const MAX_RERANK_DOCUMENTS: usize = 10_000;

/// Documents one search covers (Cohere: "a query with up to 100 documents").
pub const DOCUMENTS_PER_SEARCH: u64 = 100;

/// Whether a deployment of `kind` serves `route` (one of [`Route::openai_only`]). Azure serves
/// speech, translations and image edits under its deployments (the gateway's Azure paths);
/// moderations, rerank and the Responses API only OpenAI-kind providers.
pub fn speaks(kind: Kind, route: Route) -> bool {
    match kind {
        Kind::OpenAi => true,
        Kind::Azure => matches!(
            route,
            Route::Speech | Route::AudioTranslations | Route::ImageEdits
        ),
        Kind::Anthropic | Kind::Gemini | Kind::Bedrock => false,
    }
}

/// Keep the candidates whose provider serves `route`; none left is the client's 400 naming
/// the model (before any upstream call, never counted against a deployment).
pub fn keep_speakers(
    live: &Live,
    route: Route,
    candidates: &mut Candidates,
    model: &str,
) -> Result<(), ApiError> {
    if candidates.is_empty() {
        return Ok(());
    }
    let cfg = &live.config;
    candidates.retain(|d| speaks(cfg.providers[cfg.deployments[d].provider].kind, route));
    if candidates.is_empty() {
        return Err(ApiError::InvalidRequest(format!(
            "model: '{model}' has no deployment that serves {} (only OpenAI-compatible providers do; its deployments are on {})",
            route.label(),
            kinds_of(live, model)
        )));
    }
    Ok(())
}

/// The kinds of a model's deployments, for the 400's message.
fn kinds_of(live: &Live, model: &str) -> String {
    let Some(&m) = live.model_index.get(model) else {
        return String::new();
    };
    let cfg = &live.config;
    let mut kinds: Vec<&str> = cfg.models[m]
        .deployments
        .iter()
        .map(|&d| cfg.providers[cfg.deployments[d].provider].kind.as_str())
        .collect();
    kinds.dedup();
    kinds.join(", ")
}

/// Characters of a speech request's `input` (a non-empty string of at most
/// [`MAX_SPEECH_CHARS`] characters), else the 400 naming it.
pub fn speech_chars(body: &[u8]) -> Result<u64, ApiError> {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        input: Option<Cow<'a, str>>,
    }
    let p: Probe = serde_json::from_slice(body)
        .map_err(|_| ApiError::InvalidRequest("input: must be a string".into()))?;
    let input = p
        .input
        .ok_or_else(|| ApiError::InvalidRequest("input: required".into()))?;
    let n = input.chars().count() as u64;
    if n == 0 {
        return Err(ApiError::InvalidRequest("input: must not be empty".into()));
    }
    if n > MAX_SPEECH_CHARS {
        return Err(ApiError::InvalidRequest(format!(
            "input: at most {MAX_SPEECH_CHARS} characters ({n} sent)"
        )));
    }
    Ok(n)
}

/// Searches a rerank request costs, after checking its shape: `query` a non-empty string,
/// `documents` a non-empty array (strings or objects) of at most [`MAX_RERANK_DOCUMENTS`],
/// `top_n` (optional) a whole number ≥ 1.
pub fn rerank_searches(body: &[u8]) -> Result<u64, ApiError> {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        query: Option<Cow<'a, str>>,
        #[serde(default)]
        documents: Option<Vec<IgnoredAny>>,
        #[serde(default)]
        top_n: Option<serde_json::Value>,
    }
    let p: Probe = serde_json::from_slice(body).map_err(|e| {
        ApiError::InvalidRequest(format!(
            "query must be a string and documents an array: {e}"
        ))
    })?;
    match p.query.as_deref() {
        None => return Err(ApiError::InvalidRequest("query: required".into())),
        Some(q) if q.trim().is_empty() => {
            return Err(ApiError::InvalidRequest("query: must not be empty".into()));
        }
        Some(_) => {}
    }
    let docs = p
        .documents
        .ok_or_else(|| ApiError::InvalidRequest("documents: required".into()))?
        .len();
    if docs == 0 {
        return Err(ApiError::InvalidRequest(
            "documents: must not be empty".into(),
        ));
    }
    if docs > MAX_RERANK_DOCUMENTS {
        return Err(ApiError::InvalidRequest(format!(
            "documents: at most {MAX_RERANK_DOCUMENTS} ({docs} sent)"
        )));
    }
    if let Some(t) = &p.top_n
        && !t.is_null()
        && t.as_u64().is_none_or(|n| n == 0)
    {
        return Err(ApiError::InvalidRequest(
            "top_n: must be a whole number of at least 1".into(),
        ));
    }
    Ok((docs as u64).div_ceil(DOCUMENTS_PER_SEARCH))
}

/// A moderation request must have an `input` (a string or an array).
pub fn check_moderation(body: &[u8]) -> Result<(), ApiError> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        input: Option<serde_json::Value>,
    }
    let p: Probe = serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidRequest(format!("input: {e}")))?;
    match p.input {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(()),
        Some(serde_json::Value::Array(a)) if !a.is_empty() => Ok(()),
        None | Some(serde_json::Value::Null) => {
            Err(ApiError::InvalidRequest("input: required".into()))
        }
        Some(_) => Err(ApiError::InvalidRequest(
            "input: must be a non-empty string or array".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_counts_characters_not_bytes() {
        assert_eq!(
            speech_chars(r#"{"model":"t","input":"Olá, São Paulo"}"#.as_bytes()).unwrap(),
            14
        );
        assert_eq!(
            speech_chars(br#"{"input":"a\u0000b"}"#).unwrap(),
            3,
            "escapes count as the characters they are"
        );
        for bad in [
            &br#"{"model":"t"}"#[..],
            br#"{"input":""}"#,
            br#"{"input":7}"#,
            br#"{"input":["a"]}"#,
        ] {
            assert!(
                matches!(speech_chars(bad), Err(ApiError::InvalidRequest(m)) if m.starts_with("input:")),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = format!(
            r#"{{"input":"{}"}}"#,
            "é".repeat(MAX_SPEECH_CHARS as usize + 1)
        );
        assert!(speech_chars(long.as_bytes()).is_err());
    }

    #[test]
    fn rerank_is_one_search_per_hundred_documents() {
        let body = |n: usize| {
            let docs: Vec<String> = (0..n).map(|i| format!("doc {i}")).collect();
            serde_json::to_vec(
                &serde_json::json!({"model": "r", "query": "q", "documents": docs, "top_n": 3}),
            )
            .unwrap()
        };
        assert_eq!(rerank_searches(&body(1)).unwrap(), 1);
        assert_eq!(rerank_searches(&body(100)).unwrap(), 1);
        assert_eq!(rerank_searches(&body(101)).unwrap(), 2);
        assert_eq!(rerank_searches(&body(1000)).unwrap(), 10);
        assert!(rerank_searches(&body(0)).is_err());
        assert!(rerank_searches(&body(MAX_RERANK_DOCUMENTS + 1)).is_err());
        for bad in [
            &br#"{"documents":["a"]}"#[..],
            br#"{"query":"","documents":["a"]}"#,
            br#"{"query":"q"}"#,
            br#"{"query":"q","documents":"a"}"#,
            br#"{"query":"q","documents":["a"],"top_n":0}"#,
            br#"{"query":"q","documents":["a"],"top_n":-1}"#,
            br#"{"query":"q","documents":["a"],"top_n":1.5}"#,
            br#"{"query":1,"documents":["a"]}"#,
        ] {
            assert!(
                rerank_searches(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // objects (Jina's `{"text"}`) count as documents too
        assert_eq!(
            rerank_searches(br#"{"query":"q","documents":[{"text":"a"},"b"]}"#).unwrap(),
            1
        );
    }

    #[test]
    fn moderation_needs_an_input() {
        assert!(check_moderation(br#"{"input":"hi"}"#).is_ok());
        assert!(check_moderation(br#"{"input":["a","b"]}"#).is_ok());
        for bad in [
            &br#"{}"#[..],
            br#"{"input":null}"#,
            br#"{"input":""}"#,
            br#"{"input":[]}"#,
            br#"{"input":3}"#,
        ] {
            assert!(check_moderation(bad).is_err());
        }
    }

    /// A Responses stream goes through the SSE scanner untouched, and its usage is found in
    /// `response.completed` wherever the bytes are split (the `"usage": null` of the earlier
    /// events and a nested `"usage"` text in the output do not count).
    #[test]
    fn responses_stream_usage_is_found_at_every_split() {
        let stream = concat!(
            "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\",\"usage\":null}}\n\n",
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"the \\\"usage\\\": 9\"}\n\n",
            "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"output\":[],",
            "\"usage\":{\"input_tokens\":11,\"input_tokens_details\":{\"cached_tokens\":4},\"output_tokens\":7,",
            "\"output_tokens_details\":{\"reasoning_tokens\":2},\"total_tokens\":18}}}\n\n",
        )
        .as_bytes();
        for cut in 0..=stream.len() {
            let mut sc = crate::sse::SseScanner::new(false);
            let mut out = Vec::new();
            for piece in [&stream[..cut], &stream[cut..]] {
                out.extend_from_slice(&sc.feed(bytes::Bytes::copy_from_slice(piece)).unwrap());
            }
            assert!(sc.finish().is_none());
            assert_eq!(out, stream, "cut {cut}");
            let u = sc.usage.expect("usage");
            assert_eq!((u.prompt_tokens, u.completion_tokens), (11, 7), "cut {cut}");
        }
        // the whole answer's usage (non-stream)
        let whole = br#"{"id":"r","object":"response","output":[],"usage":{"input_tokens":3,"output_tokens":9,"total_tokens":12},"user":null}"#;
        let u = crate::sse::find_usage(whole).unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (3, 9));
    }

    #[test]
    fn only_openai_speaks_responses() {
        assert!(speaks(Kind::OpenAi, Route::Responses));
        for k in [Kind::Azure, Kind::Anthropic, Kind::Gemini, Kind::Bedrock] {
            assert!(!speaks(k, Route::Responses), "{k:?}");
            assert!(!speaks(k, Route::Rerank), "{k:?}");
        }
        assert!(speaks(Kind::Azure, Route::Speech));
    }
}
