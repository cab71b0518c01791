//! Azure OpenAI: OpenAI's bodies and answers as they are; the deployment is in the path and
//! the API version in the query (credentials, the `api-key` header, are set by the gateway).
//! The provider's `base_url` is the resource's root, e.g. `https://myres.openai.azure.com`.

use super::Op;

/// `/openai/deployments/{deployment}/{operation}?api-version={version}`.
pub fn path(op: Op, deployment: &str, api_version: &str) -> String {
    let op = match op {
        Op::Chat => "/chat/completions",
        Op::Embeddings => "/embeddings",
    };
    path_for(op, deployment, api_version)
}

/// The same for any OpenAI route suffix (`/chat/completions`, `/images/generations`, …):
/// Azure serves each under the deployment.
pub fn path_for(suffix: &str, deployment: &str, api_version: &str) -> String {
    let mut p = String::with_capacity(40 + deployment.len() + suffix.len() + api_version.len());
    p.push_str("/openai/deployments/");
    p.push_str(deployment);
    p.push_str(suffix);
    p.push_str("?api-version=");
    p.push_str(api_version);
    p
}

#[cfg(test)]
mod tests {
    #[test]
    fn deployment_and_version_in_the_path() {
        assert_eq!(
            super::path(super::Op::Chat, "gpt4o-prod", "2024-10-21"),
            "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            super::path_for("/embeddings", "emb", "2024-10-21"),
            "/openai/deployments/emb/embeddings?api-version=2024-10-21"
        );
    }
}
