//! Tokia's prompt library (issue 14 item 9): an organization's saved prompts with `{{var}}`
//! placeholders, an append-only version history, clones, and runs. A run renders the body with
//! the MaxAI templates' renderer ([`super::templates::render`]) and is a real gateway request
//! (`POST {gateway}/v1/chat/completions` with the run's API key and
//! `x-tokia-session-id: prompt-{id}-{unix ms}`), so limits, the 402 on a low balance and billing
//! are the gateway's, once; a prompt's runs are its organization's usage events grouped by those
//! session ids.
//!
//! Rules: `variables` default to the body's placeholders in order of first appearance; a change
//! of `body` adds a version (and, without `variables`, re-derives them), nothing else does;
//! names are unique in an organization; a clone is named `{name}-copia`, `-copia-2`, … and
//! starts at version 1. Every input is checked before anything is read.

use std::collections::HashSet;

use serde_json::{Map, Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use super::error::{Conflict, DomainError, Entity, Unauthorized};
use super::keys::KeyOwner;
use super::templates::RunOutcome;
use crate::store::prompts as db;
pub use db::{PromptRow as Prompt, PromptRunRow as Run, PromptVersionRow as Version};

/// Name length, in characters.
pub const NAME_CHARS: (usize, usize) = (3, 120);
/// Body length, in characters.
pub const BODY_CHARS: (usize, usize) = (1, 32_000);
/// Description length, in characters.
pub const DESCRIPTION_MAX: usize = 2_000;
/// A tag's length, in characters.
pub const TAG_MAX: usize = 24;
/// Tags per prompt.
pub const TAGS_MAX: usize = 20;
/// Variables per prompt (a variable name: `^[a-zA-Z0-9_]{1,40}$`).
pub const VARIABLES_MAX: usize = 100;
/// A model name's length (`default_model`, a run's `model`).
pub const MODEL_MAX: usize = 200;
/// `change_note` length.
pub const NOTE_MAX: usize = 200;
/// A run value's length, in characters.
pub const VALUE_MAX: usize = 32_000;
/// `runs`' `limit`: default and bounds.
pub const RUNS_LIMIT: (i64, i64, i64) = (20, 1, 100);

/// A new prompt.
#[derive(Debug, Default)]
pub struct NewPrompt {
    /// Name (3–120 characters, unique in the organization).
    pub name: String,
    /// Body with `{{var}}` placeholders (1–32,000 characters).
    pub body: String,
    /// Description (≤ 2,000 characters).
    pub description: Option<String>,
    /// Variables; the body's placeholders when absent.
    pub variables: Option<Vec<String>>,
    /// Tags (≤ 20, each ≤ 24 characters).
    pub tags: Option<Vec<String>>,
    /// Model of a run that names none.
    pub default_model: Option<String>,
}

/// A PATCH: absent fields are kept; `Some(None)` clears a nullable one.
#[derive(Debug, Default)]
pub struct Patch {
    /// New name.
    pub name: Option<String>,
    /// New body (a new version when it differs).
    pub body: Option<String>,
    /// New description.
    pub description: Option<Option<String>>,
    /// New variables.
    pub variables: Option<Vec<String>>,
    /// New tags.
    pub tags: Option<Vec<String>>,
    /// New default model.
    pub default_model: Option<Option<String>>,
    /// Note on the new version (≤ 200 characters).
    pub change_note: Option<String>,
}

/// A run's input.
#[derive(Debug)]
pub struct RunInput {
    /// `{{var}}` values.
    pub values: Map<String, Value>,
    /// Model; the prompt's `default_model` when absent.
    pub model: Option<String>,
    /// The key the gateway request is made (and billed) with; one of the caller's
    /// organization's live keys.
    pub api_key: String,
    /// `max_tokens` (default 1024).
    pub max_tokens: i64,
    /// `temperature` (default 0.7).
    pub temperature: f64,
}

/// What a run gave: its session id and the gateway's answer.
#[derive(Debug)]
pub struct RunResult {
    /// `prompt-{id}-{unix ms}`.
    pub session_id: String,
    /// The model asked for.
    pub model: String,
    /// The prompt's version that ran.
    pub version: i32,
    /// The gateway's answer (its refusals keep their status).
    pub outcome: RunOutcome,
}

fn chars(field: &'static str, v: &str, min: usize, max: usize) -> Result<(), DomainError> {
    if v.contains('\0') {
        return Err(DomainError::invalid(field, "contains NUL"));
    }
    let n = v.chars().count();
    if n < min || n > max {
        return Err(DomainError::invalid(
            field,
            format!("length between {min} and {max} characters"),
        ));
    }
    Ok(())
}

/// Whether `name` is a variable name (`^[a-zA-Z0-9_]{1,40}$`).
pub fn is_variable(name: &str) -> bool {
    (1..=40).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The body's `{{var}}` names, in order of first appearance, each once; a `{{` without `}}`
/// or a name that is not a variable name is refused.
pub fn placeholders(body: &str) -> Result<Vec<String>, DomainError> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| DomainError::invalid("body", "unclosed {{ placeholder"))?;
        let name = after[..end].trim();
        if !is_variable(name) {
            return Err(DomainError::invalid(
                "body",
                "placeholder names must match ^[a-zA-Z0-9_]{1,40}$",
            ));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
        rest = &after[end + 2..];
    }
    Ok(out)
}

fn variables(v: &[String]) -> Result<Vec<String>, DomainError> {
    if v.len() > VARIABLES_MAX {
        return Err(DomainError::invalid(
            "variables",
            format!("at most {VARIABLES_MAX}"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for name in v {
        if !is_variable(name) {
            return Err(DomainError::invalid(
                "variables",
                "each must match ^[a-zA-Z0-9_]{1,40}$",
            ));
        }
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    Ok(out)
}

fn tags(v: &[String]) -> Result<Vec<String>, DomainError> {
    if v.len() > TAGS_MAX {
        return Err(DomainError::invalid("tags", format!("at most {TAGS_MAX}")));
    }
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for t in v {
        chars("tags", t, 0, TAG_MAX)?;
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

fn model(field: &'static str, m: Option<&str>) -> Result<Option<String>, DomainError> {
    match m {
        None | Some("") => Ok(None),
        Some(m) => {
            chars(field, m, 1, MODEL_MAX)?;
            Ok(Some(m.to_string()))
        }
    }
}

fn description(d: Option<&str>) -> Result<Option<String>, DomainError> {
    if let Some(d) = d {
        chars("description", d, 0, DESCRIPTION_MAX)?;
    }
    Ok(d.map(str::to_string))
}

/// What the audit log keeps of a prompt.
fn audit(p: &Prompt) -> Value {
    json!({
        "id": p.prompt_id, "name": p.name, "description": p.description, "body": p.body,
        "variables": p.variables, "tags": p.tags, "default_model": p.default_model,
        "version": p.version,
    })
}

fn target(id: Uuid) -> String {
    format!("prompt:{id}")
}

fn not_found() -> DomainError {
    DomainError::NotFound(Entity::Template)
}

/// A unique-name violation as a conflict, anything else as it is.
fn name_taken(e: sqlx::Error) -> DomainError {
    match &e {
        sqlx::Error::Database(d) if d.constraint() == Some(db::NAME_KEY) => {
            Conflict::SlugTaken.into()
        }
        _ => e.into(),
    }
}

/// Create a prompt (version 1) for `who`'s organization.
pub async fn create(pool: &PgPool, who: &KeyOwner, new: NewPrompt) -> Result<Prompt, DomainError> {
    chars("name", &new.name, NAME_CHARS.0, NAME_CHARS.1)?;
    chars("body", &new.body, BODY_CHARS.0, BODY_CHARS.1)?;
    let found = placeholders(&new.body)?;
    let vars = match &new.variables {
        Some(v) => variables(v)?,
        None => found,
    };
    let tags = tags(new.tags.as_deref().unwrap_or_default())?;
    let desc = description(new.description.as_deref())?;
    let default_model = model("default_model", new.default_model.as_deref())?;
    insert(
        pool,
        who,
        &db::NewPrompt {
            organization_id: who.organization_id,
            created_by: who.user_id,
            name: &new.name,
            description: desc.as_deref(),
            body: &new.body,
            variables: &vars,
            tags: &tags,
            default_model: default_model.as_deref(),
        },
        None,
        "prompt.create",
    )
    .await
}

async fn insert(
    pool: &PgPool,
    who: &KeyOwner,
    p: &db::NewPrompt<'_>,
    note: Option<&str>,
    action: &str,
) -> Result<Prompt, DomainError> {
    let mut tx = pool.begin().await?;
    let row = db::insert(&mut *tx, p).await.map_err(name_taken)?;
    db::insert_version(
        &mut *tx,
        row.prompt_id,
        1,
        &row.body,
        &row.variables,
        note,
        who.user_id,
    )
    .await?;
    super::audit::change(
        &mut *tx,
        who.organization_id,
        who.user_id,
        action,
        &target(row.prompt_id),
        None,
        Some(audit(&row)),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// One of `org`'s prompts.
pub async fn get(pool: &PgPool, org: Uuid, id: Uuid) -> Result<Prompt, DomainError> {
    db::get(pool, org, id).await?.ok_or_else(not_found)
}

/// `org`'s prompts, last changed first.
pub async fn list(pool: &PgPool, org: Uuid) -> Result<Vec<Prompt>, DomainError> {
    Ok(db::list(pool, org).await?)
}

/// Apply `patch`; a new version only when the body changes.
pub async fn update(
    pool: &PgPool,
    who: &KeyOwner,
    id: Uuid,
    patch: Patch,
) -> Result<Prompt, DomainError> {
    if let Some(n) = &patch.name {
        chars("name", n, NAME_CHARS.0, NAME_CHARS.1)?;
    }
    let derived = match &patch.body {
        Some(b) => {
            chars("body", b, BODY_CHARS.0, BODY_CHARS.1)?;
            Some(placeholders(b)?)
        }
        None => None,
    };
    let vars = patch.variables.as_deref().map(variables).transpose()?;
    let new_tags = patch.tags.as_deref().map(tags).transpose()?;
    let desc = patch
        .description
        .as_ref()
        .map(|d| description(d.as_deref()))
        .transpose()?;
    let default_model = patch
        .default_model
        .as_ref()
        .map(|m| model("default_model", m.as_deref()))
        .transpose()?;
    if let Some(n) = &patch.change_note {
        chars("change_note", n, 0, NOTE_MAX)?;
    }

    let mut tx = pool.begin().await?;
    let mut p = db::get_for_update(&mut *tx, who.organization_id, id)
        .await?
        .ok_or_else(not_found)?;
    let before = audit(&p);
    let body_changed = patch.body.as_ref().is_some_and(|b| *b != p.body);
    if let Some(n) = patch.name {
        p.name = n;
    }
    if let Some(d) = desc {
        p.description = d;
    }
    if let Some(t) = new_tags {
        p.tags = t;
    }
    if let Some(m) = default_model {
        p.default_model = m;
    }
    if let (true, Some(b)) = (body_changed, patch.body) {
        p.body = b;
        p.version += 1;
    }
    match (vars, derived) {
        (Some(v), _) => p.variables = v,
        (None, Some(d)) if body_changed => p.variables = d,
        _ => {}
    }
    let after = audit(&p);
    if after == before {
        return Ok(p);
    }
    let p = db::update(&mut *tx, &p).await.map_err(name_taken)?;
    if body_changed {
        db::insert_version(
            &mut *tx,
            p.prompt_id,
            p.version,
            &p.body,
            &p.variables,
            patch.change_note.as_deref(),
            who.user_id,
        )
        .await?;
    }
    super::audit::change(
        &mut *tx,
        who.organization_id,
        who.user_id,
        "prompt.update",
        &target(id),
        Some(before),
        Some(after),
    )
    .await?;
    tx.commit().await?;
    Ok(p)
}

/// Delete one of `who`'s organization's prompts with its versions (its runs' usage events
/// stay: they are billing history).
pub async fn delete(pool: &PgPool, who: &KeyOwner, id: Uuid) -> Result<(), DomainError> {
    let mut tx = pool.begin().await?;
    let p = db::get_for_update(&mut *tx, who.organization_id, id)
        .await?
        .ok_or_else(not_found)?;
    db::delete(&mut *tx, who.organization_id, id).await?;
    super::audit::change(
        &mut *tx,
        who.organization_id,
        who.user_id,
        "prompt.delete",
        &target(id),
        Some(audit(&p)),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A prompt's versions, newest first.
pub async fn versions(pool: &PgPool, org: Uuid, id: Uuid) -> Result<Vec<Version>, DomainError> {
    get(pool, org, id).await?;
    Ok(db::versions(pool, id).await?)
}

/// The clone's name for the `n`th copy (`-copia`, `-copia-2`, …), `base` cut so the name
/// stays within [`NAME_CHARS`].
fn copy_name(base: &str, n: u32) -> String {
    let suffix = if n == 1 {
        "-copia".to_string()
    } else {
        format!("-copia-{n}")
    };
    let room = NAME_CHARS.1 - suffix.chars().count();
    let base: String = base.chars().take(room).collect();
    format!("{base}{suffix}")
}

/// Clone a prompt: the first free `-copia` name, version 1, a history of its own.
pub async fn clone(pool: &PgPool, who: &KeyOwner, id: Uuid) -> Result<Prompt, DomainError> {
    let src = get(pool, who.organization_id, id).await?;
    // every candidate up to `-copia-99999` starts with this
    let stem: String = src.name.chars().take(NAME_CHARS.1 - 12).collect();
    for _ in 0..5 {
        let taken: HashSet<String> = db::names_with_prefix(pool, who.organization_id, &stem)
            .await?
            .into_iter()
            .collect();
        let Some(name) = (1..100_000)
            .map(|n| copy_name(&src.name, n))
            .find(|c| !taken.contains(c))
        else {
            return Err(Conflict::SlugTaken.into());
        };
        let note = format!("clone of {} v{}", src.name, src.version);
        let new = db::NewPrompt {
            organization_id: who.organization_id,
            created_by: who.user_id,
            name: &name,
            description: src.description.as_deref(),
            body: &src.body,
            variables: &src.variables,
            tags: &src.tags,
            default_model: src.default_model.as_deref(),
        };
        match insert(pool, who, &new, Some(&note), "prompt.clone").await {
            Err(DomainError::Conflict(Conflict::SlugTaken)) => continue, // a concurrent clone
            r => return r,
        }
    }
    Err(Conflict::SlugTaken.into())
}

/// The session id prefix of a prompt's runs.
pub fn session_prefix(id: Uuid) -> String {
    format!("prompt-{id}-")
}

/// A prompt's runs (its organization's usage events grouped by run session), newest first.
pub async fn runs(pool: &PgPool, org: Uuid, id: Uuid, limit: i64) -> Result<Vec<Run>, DomainError> {
    let (_, min, max) = RUNS_LIMIT;
    if !(min..=max).contains(&limit) {
        return Err(DomainError::invalid(
            "limit",
            format!("between {min} and {max}"),
        ));
    }
    get(pool, org, id).await?;
    Ok(db::runs(pool, org, &session_prefix(id), limit).await?)
}

/// Check a run's input that needs no lookup.
fn check_run(r: &RunInput) -> Result<(), DomainError> {
    if !r.api_key.starts_with("sk-") || r.api_key.len() > 200 || r.api_key.contains('\0') {
        return Err(DomainError::invalid("api_key", "an API key (sk-...)"));
    }
    if let Some(m) = &r.model {
        chars("model", m, 1, MODEL_MAX)?;
    }
    for (k, v) in &r.values {
        let Some(v) = v.as_str() else {
            return Err(DomainError::invalid("values", "strings only"));
        };
        chars("values", k, 1, 40)?;
        chars("values", v, 0, VALUE_MAX)?;
    }
    if !(1..=1_000_000).contains(&r.max_tokens) {
        return Err(DomainError::invalid("max_tokens", "between 1 and 1000000"));
    }
    if !(0.0..=2.0).contains(&r.temperature) {
        return Err(DomainError::invalid("temperature", "between 0 and 2"));
    }
    Ok(())
}

/// Run a prompt: every variable (declared or in the body) needs a value (else
/// [`DomainError::MissingVariables`]), the model is `model` ?? `default_model` (else 400), the
/// key must be a live key of the caller's organization (else 401); then one gateway request.
pub async fn run(
    pool: &PgPool,
    http: &reqwest::Client,
    gateway: Option<&str>,
    caller_org: Uuid,
    id: Uuid,
    r: RunInput,
) -> Result<RunResult, DomainError> {
    check_run(&r)?;
    let p = get(pool, caller_org, id).await?;
    let mut needed = p.variables.clone();
    for v in placeholders(&p.body).unwrap_or_default() {
        if !needed.contains(&v) {
            needed.push(v);
        }
    }
    let missing: Vec<&str> = needed
        .iter()
        .filter(|v| !r.values.contains_key(v.as_str()))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(DomainError::MissingVariables(format!(
            "missing variable(s): {}",
            missing.join(", ")
        )));
    }
    let content = super::templates::render(&p.body, &r.values, &[])
        .map_err(|e| DomainError::MissingVariables(e.to_string()))?;
    let model = r
        .model
        .clone()
        .or_else(|| p.default_model.clone())
        .ok_or_else(|| {
            DomainError::invalid("model", "required: the prompt has no default_model")
        })?;
    let key = super::keys::resolve(pool, &r.api_key).await?;
    if key.organization_id != caller_org {
        return Err(DomainError::Unauthorized(Unauthorized::BadToken));
    }
    let Some(gateway) = gateway else {
        return Err(DomainError::internal(
            "prompt run",
            "no gateway URL configured",
        ));
    };
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let session_id = format!("{}{now_ms}", session_prefix(id));
    let body = json!({
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": r.max_tokens,
        "temperature": r.temperature,
    });
    let resp = http
        .post(format!("{gateway}/v1/chat/completions"))
        .bearer_auth(&r.api_key)
        .header("x-tokia-session-id", &session_id)
        .json(&body)
        .send()
        .await
        .map_err(|e| DomainError::internal("prompt run: gateway unreachable", e))?;
    let status = resp.status().as_u16();
    let out: Value = resp.json().await.unwrap_or(Value::Null);
    let outcome = if (200..300).contains(&status) {
        RunOutcome::Done(out)
    } else {
        RunOutcome::Refused(status, out)
    };
    Ok(RunResult {
        session_id,
        model,
        version: p.version,
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_in_order_once_and_checked() {
        assert_eq!(
            placeholders("Oi {{nome}}, {{ cidade }} e {{nome}}").unwrap(),
            vec!["nome".to_string(), "cidade".to_string()]
        );
        assert!(placeholders("sem variáveis").unwrap().is_empty());
        assert!(placeholders("{{aberto").is_err());
        assert!(placeholders("{{dois nomes}}").is_err());
    }

    #[test]
    fn copy_names_fit() {
        assert_eq!(copy_name("resumo", 1), "resumo-copia");
        assert_eq!(copy_name("resumo", 2), "resumo-copia-2");
        let long = "x".repeat(120);
        assert_eq!(copy_name(&long, 3).chars().count(), 120);
        assert!(copy_name(&long, 3).ends_with("-copia-3"));
    }
}
