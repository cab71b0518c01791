//! Calls to the gateway's own AI routes (`/v1/embeddings`, `/v1/chat/completions`) made on a
//! caller's behalf with the caller's own bearer credential, so each is limited, routed,
//! billed and logged like any request of that caller (one usage event each). Used by vector
//! upserts and queries (embeddings of text) and by graph runs (`llm` and `embed` nodes).
//!
//! Also the failure these operations share: a rule refused ([`DomainError`]), a list of every
//! problem of the input ([`Problem`]; a surface answers 400 with all of them), or the gateway
//! refusing a call on the caller's behalf (its status is passed on).

use serde_json::{Value, json};

use super::error::DomainError;

/// Most texts in one embeddings call (more are sent in several calls).
pub const EMBED_BATCH: usize = 256;

/// One problem of an input, as a code (`UPPER_SNAKE`) and a message naming where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Machine code (`INVALID_VECTOR`, `DIMENSION_MISMATCH`, `CYCLE`, …).
    pub code: &'static str,
    /// What is wrong and where.
    pub message: String,
}

impl Problem {
    /// A problem.
    pub fn new(code: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            code,
            message: message.into(),
        }
    }
}

/// Why a vector or graph operation did not happen.
#[derive(Debug)]
pub enum Failure {
    /// A rule, or the database.
    Domain(DomainError),
    /// Every problem found in the input (nothing was changed).
    Problems(Vec<Problem>),
    /// The gateway refused a call made on the caller's behalf (its status, its message): a
    /// rate limit, a budget, a scope, an unknown model, an upstream failure.
    Refused {
        /// The gateway's HTTP status.
        status: u16,
        /// The gateway's message.
        message: String,
    },
}

impl From<DomainError> for Failure {
    fn from(e: DomainError) -> Self {
        Failure::Domain(e)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Domain(e.into())
    }
}

impl Failure {
    /// One problem.
    pub fn problem(code: &'static str, message: impl Into<String>) -> Failure {
        Failure::Problems(vec![Problem::new(code, message)])
    }
}

/// Tokens a metered call used, as the gateway reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt (input) tokens.
    pub prompt_tokens: i64,
    /// Completion (output) tokens.
    pub completion_tokens: i64,
    /// Calls made.
    pub calls: i64,
}

impl Usage {
    /// Add another call's usage.
    pub fn add(&mut self, o: Usage) {
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.calls += o.calls;
    }

    fn from_body(v: &Value) -> Usage {
        let n = |k: &str| v["usage"][k].as_i64().unwrap_or(0);
        Usage {
            prompt_tokens: n("prompt_tokens"),
            completion_tokens: n("completion_tokens"),
            calls: 1,
        }
    }
}

/// The gateway as seen from the admin app, with one caller's credential.
#[derive(Clone, Copy)]
pub struct Gateway<'a> {
    /// HTTP client.
    pub http: &'a reqwest::Client,
    /// Base URL (`http://127.0.0.1:8080`); `None` when not configured.
    pub base: Option<&'a str>,
    /// The caller's bearer credential, passed on as is.
    pub token: &'a str,
}

/// A chat call's parameters.
#[derive(Debug, Clone, Default)]
pub struct Chat<'a> {
    /// Public model name.
    pub model: &'a str,
    /// System message, when any.
    pub system: Option<&'a str>,
    /// The user message.
    pub prompt: &'a str,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Most completion tokens.
    pub max_tokens: Option<u32>,
}

impl Gateway<'_> {
    async fn post(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        let Some(base) = self.base else {
            return Err(DomainError::NotConfigured("the gateway URL").into());
        };
        let resp = self
            .http
            .post(format!("{base}{path}"))
            .bearer_auth(self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| DomainError::internal("call to the gateway: unreachable", e))?;
        let status = resp.status().as_u16();
        let out: Value = resp.json().await.unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            // OpenAI's `{error:{message}}`, bradax's `{message}`, or nothing useful
            let message = out["error"]["message"]
                .as_str()
                .or_else(|| out["message"].as_str())
                .or_else(|| out["error"].as_str())
                .unwrap_or("the gateway refused the call")
                .to_string();
            return Err(Failure::Refused { status, message });
        }
        Ok(out)
    }

    /// Embed `texts` with `model` (in batches of [`EMBED_BATCH`]); `dimensions` asks the model
    /// for that length. One vector per text, in order.
    pub async fn embed(
        &self,
        model: &str,
        texts: &[String],
        dimensions: Option<usize>,
    ) -> Result<(Vec<Vec<f32>>, Usage), Failure> {
        let mut out = Vec::with_capacity(texts.len());
        let mut usage = Usage::default();
        for batch in texts.chunks(EMBED_BATCH) {
            let mut body = json!({"model": model, "input": batch});
            if let (Some(d), Some(o)) = (dimensions, body.as_object_mut()) {
                o.insert("dimensions".into(), d.into());
            }
            let v = self.post("/v1/embeddings", &body).await?;
            usage.add(Usage::from_body(&v));
            let mut got: Vec<(usize, Vec<f32>)> = Vec::with_capacity(batch.len());
            for (i, d) in v["data"].as_array().into_iter().flatten().enumerate() {
                let idx = d["index"].as_u64().map_or(i, |x| x as usize);
                let emb: Option<Vec<f32>> = d["embedding"].as_array().map(|a| {
                    a.iter()
                        .filter_map(Value::as_f64)
                        .map(|x| x as f32)
                        .collect()
                });
                match emb {
                    Some(e) if !e.is_empty() => got.push((idx, e)),
                    _ => {
                        return Err(DomainError::internal(
                            "embeddings through the gateway",
                            "an answer without an embedding",
                        )
                        .into());
                    }
                }
            }
            got.sort_by_key(|(i, _)| *i);
            if got.len() != batch.len() {
                return Err(DomainError::internal(
                    "embeddings through the gateway",
                    format!("asked {} embeddings, got {}", batch.len(), got.len()),
                )
                .into());
            }
            out.extend(got.into_iter().map(|(_, e)| e));
        }
        Ok((out, usage))
    }

    /// One chat completion: the first choice's text.
    pub async fn chat(&self, c: &Chat<'_>) -> Result<(String, Usage), Failure> {
        let mut messages = Vec::with_capacity(2);
        if let Some(s) = c.system {
            messages.push(json!({"role": "system", "content": s}));
        }
        messages.push(json!({"role": "user", "content": c.prompt}));
        let mut body = json!({"model": c.model, "messages": messages});
        if let Some(o) = body.as_object_mut() {
            if let Some(t) = c.temperature {
                o.insert("temperature".into(), json!(t));
            }
            if let Some(m) = c.max_tokens {
                o.insert("max_tokens".into(), json!(m));
            }
        }
        let v = self.post("/v1/chat/completions", &body).await?;
        let text = v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok((text, Usage::from_body(&v)))
    }
}
