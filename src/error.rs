//! The error catalogue: every error a client can see, its HTTP status, OpenAI `type` and `code`,
//! and the one wire body `{"error":{"message","type","param","code"}}`.
//!
//! The gateway (`gateway::respond`) and, later, the admin app write these bodies; internal
//! causes are logged where they happen and never sent.

use bytes::Bytes;
use serde::Serialize;

/// A client-visible error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: body is not valid JSON.
    #[error("we could not parse the JSON body of your request: {0}")]
    InvalidJson(String),
    /// 400: a required field is absent or of the wrong type.
    #[error("{0}")]
    InvalidRequest(String),
    /// 401: no key was sent.
    #[error(
        "you didn't provide an API key; send it as 'Authorization: Bearer <key>' or 'api-key: <key>'"
    )]
    MissingKey,
    /// 401: the key is unknown.
    #[error("incorrect API key provided")]
    InvalidKey,
    /// 401: the key exists but is disabled.
    #[error("this API key is disabled")]
    DisabledKey,
    /// 401: the key is past its expiry.
    #[error("this API key has expired")]
    ExpiredKey,
    /// 503: the key store cannot be reached and the key is not cached.
    #[error("the API key could not be checked right now; try again shortly")]
    KeyStoreUnavailable,
    /// 403: the key may not use this model.
    #[error("this API key may not use the model '{0}'")]
    ModelNotAllowed(String),
    /// 403: a bradax access token without the scope this route needs.
    #[error("the token lacks the scope this route needs ({0})")]
    ScopeMissing(&'static str),
    /// 404: no such model in the catalog.
    #[error("the model '{0}' does not exist")]
    ModelNotFound(String),
    /// 404: no such route.
    #[error("unknown route {0}")]
    RouteNotFound(String),
    /// 405: wrong method on a known route.
    #[error("method {0} is not allowed on this route")]
    MethodNotAllowed(String),
    /// 429: a request, token or concurrency limit is reached.
    #[error("{}", rate_message(*kind, *limit, *retry_after))]
    RateLimited {
        /// Which limit.
        kind: crate::limits::Kind,
        /// Its value.
        limit: u32,
        /// Seconds until the window resets.
        retry_after: u64,
    },
    /// 429: the plan's monthly request quota is used up.
    #[error(
        "the monthly request quota of your plan is used up; it resets at the start of next month (in {retry_after} s)"
    )]
    UsageLimitExceeded {
        /// Seconds until the next UTC month.
        retry_after: u64,
    },
    /// 402: the organization's prepaid balance cannot cover the request.
    #[error("insufficient balance: top up your account to continue")]
    InsufficientBalance,
    /// 402: the key's USD budget is spent.
    #[error("this API key's budget is exhausted")]
    BudgetExceeded,
    /// 413: body over the configured limit.
    #[error("request body is larger than the limit of {0} bytes")]
    BodyTooLarge(u64),
    /// 415: wrong content type.
    #[error("content type must be {0}")]
    UnsupportedMediaType(&'static str),
    /// 502: every upstream attempt failed to connect or broke.
    #[error("the upstream provider could not be reached ({0} attempts)")]
    UpstreamUnavailable(u32),
    /// 503: every deployment is refusing (429/5xx) or cooling down.
    #[error("all deployments of the model are failing or overloaded; try again later")]
    UpstreamOverloaded,
    /// 504: the upstream did not answer in time.
    #[error("the upstream provider timed out")]
    UpstreamTimeout,
    /// 502: the upstream broke after the response had started.
    #[error("the upstream stream was interrupted")]
    StreamInterrupted,
    /// 502 (as a stream's last event): the upstream sent one event larger than the cap.
    #[error("the upstream sent a stream event larger than the gateway accepts")]
    UpstreamEventTooLarge,
    /// 502 (as a stream's last event, or a whole answer's status): a provider of another
    /// dialect answered with bytes that cannot be translated (what was wrong).
    #[error("the upstream's answer could not be translated: {0}")]
    UpstreamMalformed(String),
    /// 502 (as a stream's last event): a provider of another dialect reported an error in the
    /// middle of its stream (its message).
    #[error("the upstream reported an error mid-stream: {0}")]
    UpstreamStreamError(String),
    /// 408: the client did not send its request (head or body) within the deadline.
    #[error("the request was not received in time")]
    RequestTimeout,
    /// 431: the request's header block is over the size or count cap.
    #[error("the request headers are too large")]
    HeadersTooLarge,
    /// 500: a bug or an unexpected state; details are in the log.
    #[error("internal error in the gateway")]
    Internal,
}

impl ApiError {
    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidJson(_) | ApiError::InvalidRequest(_) => 400,
            ApiError::MissingKey
            | ApiError::InvalidKey
            | ApiError::DisabledKey
            | ApiError::ExpiredKey => 401,
            ApiError::ModelNotAllowed(_) | ApiError::ScopeMissing(_) => 403,
            ApiError::ModelNotFound(_) | ApiError::RouteNotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::BodyTooLarge(_) => 413,
            ApiError::RateLimited { .. } | ApiError::UsageLimitExceeded { .. } => 429,
            ApiError::InsufficientBalance | ApiError::BudgetExceeded => 402,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::UpstreamUnavailable(_)
            | ApiError::StreamInterrupted
            | ApiError::UpstreamMalformed(_)
            | ApiError::UpstreamStreamError(_)
            | ApiError::UpstreamEventTooLarge => 502,
            ApiError::RequestTimeout => 408,
            ApiError::HeadersTooLarge => 431,
            ApiError::UpstreamOverloaded | ApiError::KeyStoreUnavailable => 503,
            ApiError::UpstreamTimeout => 504,
            ApiError::Internal => 500,
        }
    }

    /// OpenAI `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_)
            | ApiError::InvalidRequest(_)
            | ApiError::ModelNotFound(_)
            | ApiError::RouteNotFound(_)
            | ApiError::MethodNotAllowed(_)
            | ApiError::BodyTooLarge(_)
            | ApiError::RequestTimeout
            | ApiError::HeadersTooLarge
            | ApiError::UnsupportedMediaType(_) => "invalid_request_error",
            ApiError::MissingKey
            | ApiError::InvalidKey
            | ApiError::DisabledKey
            | ApiError::ExpiredKey => "authentication_error",
            ApiError::ModelNotAllowed(_) | ApiError::ScopeMissing(_) => "permission_error",
            ApiError::RateLimited { .. } => "rate_limit_error",
            ApiError::InsufficientBalance
            | ApiError::BudgetExceeded
            | ApiError::UsageLimitExceeded { .. } => "insufficient_quota",
            ApiError::UpstreamUnavailable(_)
            | ApiError::UpstreamOverloaded
            | ApiError::UpstreamTimeout
            | ApiError::UpstreamEventTooLarge
            | ApiError::UpstreamMalformed(_)
            | ApiError::UpstreamStreamError(_)
            | ApiError::StreamInterrupted => "upstream_error",
            ApiError::Internal | ApiError::KeyStoreUnavailable => "server_error",
        }
    }

    /// Stable machine code; also the low-cardinality metrics label.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::MissingKey => "missing_api_key",
            ApiError::InvalidKey => "invalid_api_key",
            ApiError::DisabledKey => "api_key_disabled",
            ApiError::ExpiredKey => "api_key_expired",
            ApiError::KeyStoreUnavailable => "key_store_unavailable",
            ApiError::ModelNotAllowed(_) => "model_not_allowed",
            ApiError::ScopeMissing(_) => "insufficient_scope",
            ApiError::ModelNotFound(_) => "model_not_found",
            ApiError::RouteNotFound(_) => "route_not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::BodyTooLarge(_) => "body_too_large",
            ApiError::RateLimited {
                kind: crate::limits::Kind::Unavailable,
                ..
            } => "limiter_unavailable",
            ApiError::RateLimited { .. } => "rate_limit_exceeded",
            ApiError::InsufficientBalance => "insufficient_balance",
            ApiError::BudgetExceeded => "budget_exceeded",
            ApiError::UsageLimitExceeded { .. } => "usage_limit_exceeded",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::UpstreamUnavailable(_) => "upstream_unavailable",
            ApiError::UpstreamOverloaded => "upstream_overloaded",
            ApiError::UpstreamTimeout => "upstream_timeout",
            ApiError::StreamInterrupted => "stream_interrupted",
            ApiError::UpstreamEventTooLarge => "upstream_event_too_large",
            ApiError::UpstreamMalformed(_) => "upstream_malformed",
            ApiError::UpstreamStreamError(_) => "upstream_stream_error",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::HeadersTooLarge => "headers_too_large",
            ApiError::Internal => "internal_error",
        }
    }

    /// Seconds a client should wait, for `Retry-After` (limiter refusals carry theirs in the
    /// decision's headers).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::UsageLimitExceeded { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// The `param` field, where one field is at fault.
    fn param(&self) -> Option<&'static str> {
        match self {
            ApiError::ModelNotFound(_) | ApiError::ModelNotAllowed(_) => Some("model"),
            _ => None,
        }
    }

    /// The JSON wire body.
    pub fn body(&self) -> Bytes {
        #[derive(Serialize)]
        struct Wire<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            message: String,
            #[serde(rename = "type")]
            kind: &'a str,
            param: Option<&'a str>,
            code: &'a str,
        }
        let w = Wire {
            error: Inner {
                message: self.to_string(),
                kind: self.kind(),
                param: self.param(),
                code: self.code(),
            },
        };
        serde_json::to_vec(&w).map(Bytes::from).unwrap_or_else(|_| {
            Bytes::from_static(br#"{"error":{"message":"internal error","type":"server_error","param":null,"code":"internal_error"}}"#)
        })
    }

    /// The same error as one SSE event, for streams that already started.
    pub fn sse_event(&self) -> Bytes {
        let body = self.body();
        let mut v = Vec::with_capacity(body.len() + 16);
        v.extend_from_slice(b"data: ");
        v.extend_from_slice(&body);
        v.extend_from_slice(b"\n\n");
        Bytes::from(v)
    }
}

fn rate_message(kind: crate::limits::Kind, limit: u32, retry_after: u64) -> String {
    use crate::limits::Kind;
    match kind {
        Kind::Rps | Kind::Rpm | Kind::Rpd => format!(
            "rate limit reached: {limit} requests per {}; retry in {retry_after} s",
            kind.window_name()
        ),
        Kind::Tpm => {
            format!("token rate limit reached: {limit} tokens per minute; retry in {retry_after} s")
        }
        Kind::Concurrency => {
            format!("too many requests in flight: the limit is {limit}; retry in {retry_after} s")
        }
        Kind::Unavailable => {
            format!("the rate limiter is unavailable; retry in {retry_after} s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shape_is_openai() {
        let v: serde_json::Value =
            serde_json::from_slice(&ApiError::ModelNotFound("x".into()).body()).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(v["error"]["param"], "model");
        assert_eq!(v["error"]["message"], "the model 'x' does not exist");
    }

    #[test]
    fn statuses_match_openai_sdk_exceptions() {
        assert_eq!(ApiError::InvalidKey.status(), 401);
        assert_eq!(ApiError::ModelNotFound(String::new()).status(), 404);
        assert_eq!(ApiError::BodyTooLarge(1).status(), 413);
        assert_eq!(ApiError::UnsupportedMediaType("x").status(), 415);
        assert_eq!(ApiError::UpstreamTimeout.status(), 504);
    }
}
