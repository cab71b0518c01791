//! Azure OpenAI: OpenAI's bodies and answers as they are; the deployment is in the path and
//! the API version in the query (credentials, the `api-key` header, are set by the gateway).

use super::Op;

/// `/openai/deployments/{deployment}/{operation}?api-version={version}`.
pub fn path(op: Op, deployment: &str, api_version: &str) -> String {
    let op = match op {
        Op::Chat => "chat/completions",
        Op::Embeddings => "embeddings",
    };
    format!("/openai/deployments/{deployment}/{op}?api-version={api_version}")
}
