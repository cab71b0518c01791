//! Prompt templates: rendering `{{variable}}` placeholders into chat messages. Pure; the
//! surfaces load templates and call the gateway.

use serde_json::{Map, Value};

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
