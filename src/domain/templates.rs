//! Prompt templates: the ones a caller can see, rendering `{{variable}}` placeholders into
//! chat messages, and running a rendered template through the gateway with the caller's key
//! (so the run is authenticated, limited, routed, metered and billed like any other request).
//! A template's parameters and variables are JSON documents (stored as `jsonb`), so they stay
//! `serde_json` values here.

use serde_json::{Map, Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::error::{DomainError, Entity};
pub use crate::store::templates::TemplateRow as Template;

/// Why a template could not be rendered.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A required variable has no value and no default.
    #[error("missing variable '{0}'")]
    Missing(String),
    /// A `{{` without its `}}`.
    #[error("unclosed placeholder in the template")]
    Unclosed,
}

/// Replace every `{{name}}` in `text` with `vars[name]`, falling back to the declared default.
pub fn render(
    text: &str,
    vars: &Map<String, Value>,
    declared: &[Value],
) -> Result<String, RenderError> {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or(RenderError::Unclosed)?;
        let name = after[..end].trim();
        let value = vars
            .get(name)
            .filter(|v| !v.is_null())
            .cloned()
            .or_else(|| {
                declared
                    .iter()
                    .find(|d| d.get("name").and_then(Value::as_str) == Some(name))
                    .and_then(|d| d.get("default"))
                    .filter(|v| !v.is_null())
                    .cloned()
            })
            .ok_or_else(|| RenderError::Missing(name.to_string()))?;
        match value {
            Value::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Required variables that have neither a value nor a default, in declaration order.
pub fn missing_required(vars: &Map<String, Value>, declared: &[Value]) -> Vec<String> {
    declared
        .iter()
        .filter(|d| d.get("required").and_then(Value::as_bool).unwrap_or(false))
        .filter_map(|d| d.get("name").and_then(Value::as_str))
        .filter(|n| vars.get(*n).is_none_or(Value::is_null))
        .map(str::to_string)
        .collect()
}

/// A built-in template or one of `org`'s.
pub async fn get(pool: &PgPool, id: i64, org: Option<Uuid>) -> Result<Template, DomainError> {
    crate::store::templates::visible(pool, id, org)
        .await?
        .ok_or(DomainError::NotFound(Entity::Template))
}

/// The built-ins, then `org`'s own.
pub async fn list(pool: &PgPool, org: Option<Uuid>) -> Result<Vec<Template>, DomainError> {
    Ok(crate::store::templates::list_visible(pool, org).await?)
}

/// A template rendered for a chat call: the model and the messages.
#[derive(Debug)]
pub struct Rendered {
    /// The caller's model, else the template's default.
    pub model: String,
    /// `[{role: system}?, {role: user}]`.
    pub messages: Value,
}

/// Render `t` with `vars`; every required variable must have a value or a default.
pub fn render_chat(
    t: &Template,
    vars: &Map<String, Value>,
    model: Option<String>,
) -> Result<Rendered, DomainError> {
    let declared = t.variables.as_array().cloned().unwrap_or_default();
    let missing = missing_required(vars, &declared);
    if !missing.is_empty() {
        return Err(DomainError::MissingVariables(format!(
            "missing variable(s): {}",
            missing.join(", ")
        )));
    }
    let render = |text: &str| {
        render(text, vars, &declared).map_err(|e| DomainError::MissingVariables(e.to_string()))
    };
    let mut messages = Vec::new();
    if !t.system_prompt.is_empty() {
        messages.push(json!({"role": "system", "content": render(&t.system_prompt)?}));
    }
    messages.push(json!({"role": "user", "content": render(&t.user_prompt)?}));
    Ok(Rendered {
        model: model.unwrap_or_else(|| t.default_model.clone()),
        messages: Value::Array(messages),
    })
}

/// What a run through the gateway gave.
#[derive(Debug)]
pub enum RunOutcome {
    /// The gateway answered 2xx: its answer.
    Done(Value),
    /// The gateway refused (401, 402, 429, ...): its status and answer, for the caller.
    Refused(u16, Value),
}

/// The key a run is made with: required, trimmed.
pub fn run_key(key: &str) -> Result<&str, DomainError> {
    match key.trim() {
        "" => Err(DomainError::invalid("api_key", "required")),
        k => Ok(k),
    }
}

/// Call the gateway's chat route with `key` (from [`run_key`]) and the rendered template (the
/// template's parameters fill what the call does not set); a successful run is counted.
pub async fn run(
    pool: &PgPool,
    http: &reqwest::Client,
    gateway: Option<&str>,
    t: &Template,
    key: &str,
    r: &Rendered,
) -> Result<RunOutcome, DomainError> {
    let Some(gateway) = gateway else {
        return Err(DomainError::internal(
            "template run",
            "no gateway URL configured",
        ));
    };
    let mut body = json!({"model": r.model, "messages": r.messages});
    if let (Some(p), Some(b)) = (t.parameters.as_object(), body.as_object_mut()) {
        for (k, v) in p {
            b.entry(k.clone()).or_insert(v.clone());
        }
    }
    let resp = http
        .post(format!("{gateway}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .map_err(|e| DomainError::internal("template run: gateway unreachable", e))?;
    let status = resp.status().as_u16();
    let out: Value = resp.json().await.unwrap_or(Value::Null);
    if !(200..300).contains(&status) {
        return Ok(RunOutcome::Refused(status, out));
    }
    crate::store::templates::count_run(pool, t.template_id).await?;
    Ok(RunOutcome::Done(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_values_defaults_and_reports_missing() {
        let declared = vec![
            json!({"name": "texto", "required": true}),
            json!({"name": "n", "default": "3"}),
        ];
        let vars = json!({"texto": "Olá mundo"}).as_object().cloned().unwrap();
        assert_eq!(
            render("Resuma em {{n}}: {{ texto }}", &vars, &declared).unwrap(),
            "Resuma em 3: Olá mundo"
        );
        let vars2 = json!({"texto": "x", "n": 5}).as_object().cloned().unwrap();
        assert_eq!(render("{{n}}", &vars2, &declared).unwrap(), "5");
        assert_eq!(
            render("{{outra}}", &vars, &declared),
            Err(RenderError::Missing("outra".into()))
        );
        assert_eq!(
            render("{{aberto", &vars, &declared),
            Err(RenderError::Unclosed)
        );
        assert_eq!(
            missing_required(&Map::new(), &declared),
            vec!["texto".to_string()]
        );
        assert!(missing_required(&vars, &declared).is_empty());
    }
}
