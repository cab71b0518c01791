//! Amazon Bedrock's Converse API as a provider (STUB: the translation is being written).

use bytes::BytesMut;

use super::{Answer, Meta, Op, StreamDecoder, StreamError};
use crate::error::ApiError;
use crate::sse::Usage;

/// The upstream path of `op` (after the base path, query included) (STUB).
pub fn path(_op: Op, upstream_model: &str, _stream: bool) -> String {
    format!("/{upstream_model}")
}

/// An OpenAI chat request as this dialect's (STUB).
pub fn chat_request(_req: &serde_json::Value) -> Result<Vec<u8>, ApiError> {
    Err(ApiError::InvalidRequest("bedrock: not implemented".into()))
}

/// An OpenAI embeddings request as this dialect's (STUB).
pub fn embeddings_request(_req: &serde_json::Value) -> Result<Vec<u8>, ApiError> {
    Err(ApiError::InvalidRequest("bedrock: not implemented".into()))
}

/// The embeddings answer as OpenAI's (STUB).
pub fn embeddings_answer(_body: &[u8], _meta: &Meta) -> Result<Answer, StreamError> {
    Err(StreamError::Malformed("not implemented"))
}

/// The chat stream decoder (STUB until this dialect is written).
pub struct Decoder {
    _meta: Meta,
}

impl Decoder {
    /// A decoder for one answer.
    pub fn new(meta: Meta) -> Self {
        Decoder { _meta: meta }
    }
}

impl StreamDecoder for Decoder {
    fn feed(&mut self, _input: &[u8], _out: &mut BytesMut) -> Result<(), StreamError> {
        Err(StreamError::Malformed("not implemented"))
    }
    fn finish(&mut self, _out: &mut BytesMut) -> Result<(), StreamError> {
        Err(StreamError::Malformed("not implemented"))
    }
    fn usage(&self) -> Option<Usage> {
        None
    }
}

/// The error answer as OpenAI's (STUB).
pub fn error_answer(status: u16, body: &[u8]) -> (u16, Vec<u8>) {
    (status, body.to_vec())
}

/// The whole chat answer as OpenAI's (STUB).
pub fn chat_answer(_body: &[u8], _meta: &Meta) -> Result<Answer, StreamError> {
    Err(StreamError::Malformed("not implemented"))
}


/// AWS credentials for SigV4 (never printed).
#[derive(Clone)]
pub struct Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token of temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// A Bedrock provider's region and credentials.
#[derive(Debug, Clone)]
pub struct Aws {
    /// Region, e.g. `us-east-1` (the signing scope's).
    pub region: String,
    /// Credentials.
    pub credentials: Credentials,
}

/// The SigV4 headers (`authorization`, `x-amz-date`, `x-amz-content-sha256`,
/// `x-amz-security-token` with temporary credentials) for one request to Bedrock (STUB).
pub fn sign(
    _aws: &Aws,
    _method: &str,
    _host: &str,
    _path_and_query: &str,
    _body: &[u8],
    _now: std::time::SystemTime,
) -> Vec<(&'static str, String)> {
    Vec::new()
}
