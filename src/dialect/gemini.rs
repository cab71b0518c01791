//! Google's Gemini API as a provider (STUB: the translation is being written).

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
    Err(ApiError::InvalidRequest("gemini: not implemented".into()))
}

/// An OpenAI embeddings request as this dialect's (STUB).
pub fn embeddings_request(_req: &serde_json::Value, _upstream_model: &str) -> Result<Vec<u8>, ApiError> {
    Err(ApiError::InvalidRequest("gemini: not implemented".into()))
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

