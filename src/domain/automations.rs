//! PyTake's flow automations (issue 15 item 7): a flow run for a list of contacts as durable
//! jobs, one per contact, in Postgres.
//!
//! Lifecycle: [`create`] (`created`; the flow and every contact must be the organization's,
//! else nothing is made) → [`start`] (`running`, once: a second start is a conflict) → the
//! [`Runner`] in the admin app claims jobs (`FOR UPDATE SKIP LOCKED`, with a lease renewed
//! after every node) and walks the flow graph for each contact → `completed` when every job
//! is `done` or `failed`. A job records its next node and outputs after every node, so a
//! runner that dies is replaced (the lease ends, another claim resumes after the last node
//! finished); the node in flight when it died runs again (WhatsApp has no idempotency key), and
//! a job claimed [`MAX_ATTEMPTS`] times fails.
//!
//! Nodes (`type`, and fields of `data`):
//! - `start`, `end`: markers, nothing runs.
//! - `message`: `text` (or `message`), with placeholders: a WhatsApp text message.
//! - `template`: `template` (or `template_id`/`name`), `language` (default `pt_BR`).
//! - `ai`: `model`, `prompt` (placeholders), `secret_id` (a vault secret, service `catraca`,
//!   holding one of the organization's catraca API keys), `max_tokens` optional: one chat
//!   completion through the gateway (`<gateway>/v1/chat/completions`), metered and billed like
//!   any request; the reply is `{{ai}}` (the last) and `{{ai.<node id>}}` afterwards.
//! - `condition`: `field` (`contact.name|email|whatsapp_id`, `ai`, `ai.<node id>`),
//!   `operator` (`equals`, `not_equals`, `contains`, `starts_with`, `exists`, `not_exists`),
//!   `value`; follows the edge whose `sourceHandle` is `true` or `false` (none: the job ends).
//! - anything else fails the contact's job with the reason.
//!
//! From the start (a `start` node, else the one node without incoming edges) each node is
//! followed by the first edge leaving it; none ends the job. Placeholders: `{{contact.name}}`,
//! `{{contact.email}}`, `{{contact.whatsapp_id}}`, `{{ai}}`, `{{ai.<node id>}}`; an unknown or
//! empty one fails the job. At most [`MAX_STEPS`] nodes per job (a loop fails it).

use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::error::{Conflict, DomainError, Entity};
use super::flows::{Flow, FlowEdge, FlowNode};
use super::pytake::{Actor, authorize};
use super::roles::Action;
use super::vault;
use super::whatsapp::{self, Outgoing, WaError, WhatsappConfig};
use crate::secrets::SecretBox;
use crate::store::automations as db;

/// Most contacts in one automation.
pub const MAX_CONTACTS: usize = 10_000;
/// Largest `config`, bytes of JSON.
pub const MAX_CONFIG: usize = 16 * 1024;
/// Most nodes one job executes.
pub const MAX_STEPS: i32 = 100;
/// Claims of one job before it fails.
pub const MAX_ATTEMPTS: i32 = 5;
/// Longest `ai` node call; below the default lease, so a live runner keeps its claim.
pub const AI_TIMEOUT: Duration = Duration::from_secs(60);
/// Failures listed by [`stats`].
pub const MAX_FAILURES_LISTED: i64 = 100;

/// An automation.
#[derive(Debug, Clone)]
pub struct Automation {
    /// Id.
    pub id: Uuid,
    /// The flow.
    pub flow_id: Uuid,
    /// The contacts, in the order given.
    pub contacts: Vec<Uuid>,
    /// Config, JSON object text.
    pub config: String,
    /// `created`, `running`, `completed`.
    pub status: String,
    /// Owner.
    pub organization_id: Uuid,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Started.
    pub started_at: Option<OffsetDateTime>,
    /// Completed.
    pub finished_at: Option<OffsetDateTime>,
}

fn automation(r: db::AutomationRow, contacts: Vec<Uuid>) -> Automation {
    Automation {
        id: r.automation_id,
        flow_id: r.flow_id,
        contacts,
        config: r.config,
        status: r.status,
        organization_id: r.organization_id,
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
    }
}

/// Create an automation of flow `flow_id` for `contacts` (1 to [`MAX_CONTACTS`], duplicates
/// dropped) with `config` (a JSON object; `phone_number_id` chooses the sending number); the
/// flow must be the organization's (else not found) and so must every contact (else invalid,
/// naming them). Nothing is made on any refusal.
pub async fn create(
    pool: &PgPool,
    actor: &Actor,
    flow_id: Uuid,
    contacts: Vec<Uuid>,
    config: Option<&RawValue>,
) -> Result<Automation, DomainError> {
    authorize(actor, Action::ManageContent)?;
    let mut seen = std::collections::HashSet::new();
    let contacts: Vec<Uuid> = contacts.into_iter().filter(|c| seen.insert(*c)).collect();
    if contacts.is_empty() || contacts.len() > MAX_CONTACTS {
        return Err(DomainError::invalid("contacts", "1 to 10000 contact ids"));
    }
    let config = match config {
        None => "{}".to_string(),
        Some(c) => {
            let text = c.get();
            if text.len() > MAX_CONFIG || !text.trim_start().starts_with('{') {
                return Err(DomainError::invalid(
                    "config",
                    "a JSON object of at most 16 KiB",
                ));
            }
            if text.contains("\\u0000") {
                return Err(DomainError::invalid("config", "must not contain NUL"));
            }
            let v: Value = serde_json::from_str(text)
                .map_err(|_| DomainError::invalid("config", "a JSON object"))?;
            if let Some(p) = v.get("phone_number_id") {
                let p = p
                    .as_str()
                    .ok_or_else(|| DomainError::invalid("config", "phone_number_id: a string"))?;
                whatsapp::graph_id("phone_number_id", p)?;
            }
            text.to_string()
        }
    };
    match db::insert(
        pool,
        actor.organization_id,
        actor.user_id,
        flow_id,
        &config,
        &contacts,
    )
    .await?
    {
        Ok(row) => Ok(automation(row, contacts)),
        Err(missing) if missing.is_empty() => Err(DomainError::NotFound(Entity::Flow)),
        Err(missing) => Err(DomainError::invalid(
            "contacts",
            format!(
                "unknown contact ids: {}",
                missing
                    .iter()
                    .take(10)
                    .map(Uuid::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Start an automation (org_admin): its jobs become claimable. A second start is
/// [`Conflict::AutomationStarted`].
pub async fn start(pool: &PgPool, actor: &Actor, id: Uuid) -> Result<Automation, DomainError> {
    authorize(actor, Action::ManageContent)?;
    match db::start(pool, actor.organization_id, id).await? {
        Some(r) => Ok(automation(r, db::contacts(pool, id).await?)),
        None => match db::get(pool, actor.organization_id, id).await? {
            Some(_) => Err(Conflict::AutomationStarted.into()),
            None => Err(DomainError::NotFound(Entity::Automation)),
        },
    }
}

/// An automation's numbers.
#[derive(Debug, Clone)]
pub struct Stats {
    /// The automation.
    pub automation: Automation,
    /// Its jobs' counts and durations.
    pub jobs: db::StatsRow,
    /// Failed contacts and why (the first [`MAX_FAILURES_LISTED`]).
    pub failures: Vec<(Uuid, String)>,
}

/// An automation's stats (any role).
pub async fn stats(pool: &PgPool, actor: &Actor, id: Uuid) -> Result<Stats, DomainError> {
    authorize(actor, Action::Read)?;
    let row = db::get(pool, actor.organization_id, id)
        .await?
        .ok_or(DomainError::NotFound(Entity::Automation))?;
    let jobs = db::stats(pool, id).await?;
    let failures = db::failures(pool, id, MAX_FAILURES_LISTED)
        .await?
        .into_iter()
        .map(|f| (f.contact_id, f.error.unwrap_or_default()))
        .collect();
    Ok(Stats {
        automation: automation(row, db::contacts(pool, id).await?),
        jobs,
        failures,
    })
}

// ---- the runner ---------------------------------------------------------------------------

/// What the runner needs.
#[derive(Clone)]
pub struct Runner {
    /// Database.
    pub pool: PgPool,
    /// Vault master keys (`None`: jobs needing a secret fail, saying so).
    pub keys: Option<Arc<SecretBox>>,
    /// WhatsApp settings.
    pub whatsapp: Arc<WhatsappConfig>,
    /// HTTP client (Graph API, gateway).
    pub http: reqwest::Client,
    /// The gateway's base URL, for `ai` nodes.
    pub gateway_url: Option<String>,
    /// How often to look for jobs when idle.
    pub poll: Duration,
    /// How long a claim holds without progress.
    pub lease: Duration,
    /// Jobs run at once.
    pub batch: i64,
}

/// Why one node could not run: the job fails with this reason.
struct Fail(String);

impl From<DomainError> for Fail {
    fn from(e: DomainError) -> Self {
        Fail(e.to_string())
    }
}

impl From<WaError> for Fail {
    fn from(e: WaError) -> Self {
        Fail(e.to_string())
    }
}

/// What a node produced.
#[derive(Default)]
struct Done {
    branch: Option<bool>,
    messages: i32,
    ai_calls: i32,
}

impl Runner {
    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// Claim and run jobs until `shutdown`.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            let claimed = match db::claim(&self.pool, self.batch, self.lease_ms()).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "automation runner: claim failed");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(self.poll) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            futures_util::future::join_all(claimed.into_iter().map(|j| self.job(j))).await;
            if *shutdown.borrow() {
                return;
            }
        }
    }

    async fn job(&self, j: db::JobRow) {
        if let Err(e) = self.job_inner(&j).await {
            tracing::warn!(job = %j.job_id, error = %e, "automation runner: job interrupted");
        }
    }

    async fn job_inner(&self, j: &db::JobRow) -> Result<(), sqlx::Error> {
        let fail = |reason: String| async move {
            db::finish(&self.pool, j.job_id, j.lease_token, Some(&reason)).await
        };
        if j.attempts > MAX_ATTEMPTS {
            fail(format!("abandoned after {MAX_ATTEMPTS} attempts")).await?;
            return Ok(());
        }
        let flow: Flow =
            match crate::store::flows::get(&self.pool, j.organization_id, j.flow_id, false)
                .await?
                .map(Flow::try_from)
            {
                Some(Ok(f)) => f,
                _ => {
                    fail("the flow is gone".into()).await?;
                    return Ok(());
                }
            };
        let mut state: Map<String, Value> = serde_json::from_str(&j.state).unwrap_or_default();
        let mut cursor = match &j.next_node {
            Some(n) => n.clone(),
            None => match start_node(&flow) {
                Ok(n) => n,
                Err(Fail(r)) => {
                    fail(r).await?;
                    return Ok(());
                }
            },
        };
        let mut steps = j.steps;
        loop {
            if steps >= MAX_STEPS {
                fail(format!(
                    "more than {MAX_STEPS} nodes executed: does the flow loop?"
                ))
                .await?;
                return Ok(());
            }
            let Some(node) = flow.nodes.iter().find(|n| n.id == cursor) else {
                fail(format!("node '{cursor}' does not exist")).await?;
                return Ok(());
            };
            let done = match self.node(j, node, &mut state).await {
                Ok(d) => d,
                Err(Fail(reason)) => {
                    fail(format!("node '{}' ({}): {reason}", node.id, node.kind)).await?;
                    return Ok(());
                }
            };
            let next = next_node(&flow.edges, &node.id, done.branch);
            let state_text = Value::Object(state.clone()).to_string();
            let kept = db::progress(
                &self.pool,
                j.job_id,
                j.lease_token,
                db::Progress {
                    next_node: next,
                    state: &state_text,
                    messages: done.messages,
                    ai_calls: done.ai_calls,
                },
                self.lease_ms(),
            )
            .await?;
            if !kept {
                tracing::warn!(job = %j.job_id, "automation runner: lease lost; another runner has the job");
                return Ok(());
            }
            steps += 1;
            match next {
                Some(n) => cursor = n.to_string(),
                None => {
                    db::finish(&self.pool, j.job_id, j.lease_token, None).await?;
                    return Ok(());
                }
            }
        }
    }

    async fn node(
        &self,
        j: &db::JobRow,
        node: &FlowNode,
        state: &mut Map<String, Value>,
    ) -> Result<Done, Fail> {
        let data: Value = serde_json::from_str(node.data.get()).unwrap_or(Value::Null);
        let field = |names: &[&str]| -> Option<String> {
            names
                .iter()
                .find_map(|n| data.get(*n).and_then(Value::as_str))
                .map(str::to_string)
        };
        match node.kind.as_str() {
            "start" | "end" => Ok(Done::default()),
            "message" => {
                let raw = field(&["text", "message"])
                    .ok_or_else(|| Fail("data.text is required".into()))?;
                let content = whatsapp::text(&render(&raw, j, state)?)?;
                self.send(j, content).await?;
                Ok(Done {
                    messages: 1,
                    ..Done::default()
                })
            }
            "template" => {
                let name = field(&["template", "template_id", "name"])
                    .ok_or_else(|| Fail("data.template is required".into()))?;
                let content = whatsapp::template(&name, field(&["language"]).as_deref())?;
                self.send(j, content).await?;
                Ok(Done {
                    messages: 1,
                    ..Done::default()
                })
            }
            "ai" => {
                let reply = self.ai(j, &data, state).await?;
                state.insert(format!("ai.{}", node.id), Value::String(reply.clone()));
                state.insert("ai".into(), Value::String(reply));
                Ok(Done {
                    ai_calls: 1,
                    ..Done::default()
                })
            }
            "condition" => Ok(Done {
                branch: Some(condition(&data, j, state)?),
                ..Done::default()
            }),
            other => Err(Fail(format!(
                "unsupported node type '{other}' (the runner executes start, end, message, template, ai, condition)"
            ))),
        }
    }

    async fn send(&self, j: &db::JobRow, content: whatsapp::Content) -> Result<(), Fail> {
        let keys = self
            .keys
            .as_deref()
            .ok_or_else(|| Fail("the vault is not configured (CATRACA_SECRET_KEYS)".into()))?;
        let phone_number_id = serde_json::from_str::<Value>(&j.config).ok().and_then(|c| {
            c.get("phone_number_id")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        whatsapp::send(
            &self.pool,
            keys,
            &self.whatsapp,
            &self.http,
            j.organization_id,
            &Outgoing {
                to: whatsapp::recipient(&j.whatsapp_id)?,
                content,
                phone_number_id,
                job_id: Some(j.job_id),
            },
        )
        .await?;
        Ok(())
    }

    async fn ai(
        &self,
        j: &db::JobRow,
        data: &Value,
        state: &Map<String, Value>,
    ) -> Result<String, Fail> {
        let s = |k: &str| data.get(k).and_then(Value::as_str);
        let model = s("model").ok_or_else(|| Fail("data.model is required".into()))?;
        let prompt = render(
            s("prompt").ok_or_else(|| Fail("data.prompt is required".into()))?,
            j,
            state,
        )?;
        let secret_id = s("secret_id")
            .and_then(|v| Uuid::parse_str(v).ok())
            .ok_or_else(|| Fail("data.secret_id (a vault secret id) is required".into()))?;
        let gateway = self
            .gateway_url
            .as_deref()
            .ok_or_else(|| Fail("no gateway URL is configured".into()))?;
        let keys = self
            .keys
            .as_deref()
            .ok_or_else(|| Fail("the vault is not configured (CATRACA_SECRET_KEYS)".into()))?;
        let org = j.organization_id;
        let who = vault::Who {
            organization_id: org,
            user_id: None,
        };
        let meta = vault::get(&self.pool, &who, secret_id).await?;
        if !meta
            .service
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("catraca"))
        {
            return Err(Fail(
                "data.secret_id must name a secret with service catraca".into(),
            ));
        }
        let key = vault::use_value(&self.pool, keys, org, secret_id).await?;
        let mut body = json!({"model": model, "messages": [{"role": "user", "content": prompt}]});
        if let Some(m) = data.get("max_tokens").and_then(Value::as_u64) {
            body["max_tokens"] = json!(m);
        }
        let r = self
            .http
            .post(format!(
                "{}/v1/chat/completions",
                gateway.trim_end_matches('/')
            ))
            .bearer_auth(key.expose())
            .timeout(AI_TIMEOUT)
            .json(&body)
            .send()
            .await;
        let (status, out) = match r {
            Ok(r) => (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            ),
            Err(_) => (0, Value::Null),
        };
        let ok = (200..300).contains(&status);
        vault::record_use(&self.pool, org, secret_id, ok, "automation.ai").await?;
        if !ok {
            let why = out
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("no answer");
            return Err(Fail(format!("the gateway answered HTTP {status}: {why}")));
        }
        out.pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Fail("the model's answer has no content".into()))
    }
}

/// The start: the `start` node, else the only node no edge enters.
fn start_node(flow: &Flow) -> Result<String, Fail> {
    if let Some(n) = flow.nodes.iter().find(|n| n.kind == "start") {
        return Ok(n.id.clone());
    }
    let roots: Vec<&FlowNode> = flow
        .nodes
        .iter()
        .filter(|n| !flow.edges.iter().any(|e| e.target == n.id))
        .collect();
    match roots.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(Fail(
            "the flow has no start (no start node, every node has an incoming edge)".into(),
        )),
        _ => Err(Fail(
            "the flow has several nodes without incoming edges and no start node".into(),
        )),
    }
}

/// The node after `from`: for a condition, the edge whose `sourceHandle` is `true`/`false`;
/// else the first edge leaving it.
fn next_node<'a>(edges: &'a [FlowEdge], from: &str, branch: Option<bool>) -> Option<&'a str> {
    edges
        .iter()
        .find(|e| {
            e.source == from
                && match branch {
                    None => true,
                    Some(b) => e.source_handle.as_deref() == Some(if b { "true" } else { "false" }),
                }
        })
        .map(|e| e.target.as_str())
}

/// A placeholder's value: contact fields and AI outputs.
fn lookup(key: &str, j: &db::JobRow, state: &Map<String, Value>) -> Option<String> {
    match key {
        "contact.name" => j.name.clone(),
        "contact.email" => j.email.clone(),
        "contact.whatsapp_id" => Some(j.whatsapp_id.clone()),
        k if k == "ai" || k.starts_with("ai.") => {
            state.get(k).and_then(Value::as_str).map(str::to_string)
        }
        _ => None,
    }
}

/// Fill `{{ key }}` placeholders; an unknown or empty one fails.
fn render(t: &str, j: &db::JobRow, state: &Map<String, Value>) -> Result<String, Fail> {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| Fail("an unclosed {{ placeholder".into()))?;
        let key = after[..end].trim();
        let v = lookup(key, j, state)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Fail(format!("placeholder {{{{{key}}}}} has no value")))?;
        out.push_str(&v);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn condition(data: &Value, j: &db::JobRow, state: &Map<String, Value>) -> Result<bool, Fail> {
    let s = |k: &str| data.get(k).and_then(Value::as_str);
    let field = s("field").ok_or_else(|| Fail("data.field is required".into()))?;
    let known = matches!(
        field,
        "contact.name" | "contact.email" | "contact.whatsapp_id" | "ai"
    ) || field.starts_with("ai.");
    if !known {
        return Err(Fail(format!(
            "data.field '{field}' is not a contact field or an ai output"
        )));
    }
    let actual = lookup(field, j, state).filter(|v| !v.is_empty());
    let op = s("operator").unwrap_or("equals");
    let value = s("value");
    let need = || value.ok_or_else(|| Fail(format!("data.value is required for {op}")));
    let a = actual.as_deref().unwrap_or("");
    Ok(match op {
        "exists" => actual.is_some(),
        "not_exists" => actual.is_none(),
        "equals" => a == need()?,
        "not_equals" => a != need()?,
        "contains" => a.to_lowercase().contains(&need()?.to_lowercase()),
        "starts_with" => a.starts_with(need()?),
        other => return Err(Fail(format!("unknown operator '{other}'"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> db::JobRow {
        db::JobRow {
            job_id: Uuid::nil(),
            automation_id: Uuid::nil(),
            organization_id: Uuid::nil(),
            flow_id: Uuid::nil(),
            config: "{}".into(),
            contact_id: Uuid::nil(),
            whatsapp_id: "5511999990000".into(),
            name: Some("Ana".into()),
            email: None,
            next_node: None,
            state: "{}".into(),
            steps: 0,
            attempts: 1,
            lease_token: Uuid::nil(),
        }
    }

    #[test]
    fn placeholders_fill_from_contact_and_ai_and_refuse_unknowns() {
        let mut st = Map::new();
        st.insert("ai".into(), json!("resposta"));
        let j = job();
        assert_eq!(
            render("Oi {{contact.name}}: {{ ai }}", &j, &st)
                .ok()
                .unwrap(),
            "Oi Ana: resposta"
        );
        assert!(render("{{contact.email}}", &j, &st).is_err());
        assert!(render("{{nope}}", &j, &st).is_err());
        assert!(render("{{open", &j, &st).is_err());
    }

    #[test]
    fn conditions_evaluate_on_contact_fields_and_ai_output() {
        let j = job();
        let mut st = Map::new();
        st.insert("ai".into(), json!("SIM, claro"));
        let c = |v: Value| condition(&v, &j, &st).ok();
        assert_eq!(
            c(json!({"field": "contact.email", "operator": "exists"})),
            Some(false)
        );
        assert_eq!(
            c(json!({"field": "contact.name", "operator": "equals", "value": "Ana"})),
            Some(true)
        );
        assert_eq!(
            c(json!({"field": "ai", "operator": "contains", "value": "sim"})),
            Some(true)
        );
        assert_eq!(c(json!({"field": "x", "operator": "exists"})), None);
        assert_eq!(
            c(json!({"field": "ai", "operator": "regex", "value": "."})),
            None
        );
    }
}
