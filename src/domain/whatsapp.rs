//! PyTake's WhatsApp (issue 15 item 6): a WhatsApp Cloud API client, an organization's numbers,
//! sending text and template messages, and the signed webhook (status and message events,
//! each applied once).
//!
//! - **Client** ([`Graph`]): `POST <graph>/<phone_number_id>/messages` (text, template),
//!   `GET <graph>/<waba_id>/phone_numbers`; `<graph>` is `whatsapp.graph_base_url`, version
//!   included. The token is sent as Bearer and never logged.
//! - **Numbers and tokens**: a number's access token is a vault secret with `service:
//!   whatsapp`. [`sync_numbers`] lists a WABA's numbers with such a secret and registers each
//!   (linked to the secret and WABA); a number's Graph id belongs to one organization. Every
//!   use of the token goes through [`vault::use_value`] (inactive secrets are refused) and is
//!   counted by [`vault::record_use`] (`whatsapp.send`, `whatsapp.numbers`).
//! - **Webhook**: [`verify_signature`] checks `X-Hub-Signature-256` (HMAC-SHA256 of the raw
//!   body with the app secret, compared in constant time); [`apply_webhook`] stores each
//!   status and received message under an event key (`status:<wamid>:<status>`,
//!   `message:<wamid>`), so a redelivered event changes nothing. Events for numbers no
//!   organization registered are ignored (counted).

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::error::{Conflict, DomainError, Entity};
use super::pytake::{Actor, authorize};
use super::roles::Action;
use super::vault;
pub use crate::config::resolve::WhatsappConfig;
use crate::secrets::SecretBox;
use crate::store::whatsapp as db;

/// Longest text message, characters (WhatsApp's limit).
pub const MAX_TEXT: usize = 4096;
/// Longest template name, characters (WhatsApp's limit).
pub const MAX_TEMPLATE: usize = 512;
/// Per Graph API call.
pub const GRAPH_TIMEOUT: Duration = Duration::from_secs(30);

/// A failure of a send or a Graph call: the domain's, or the Graph API's answer.
#[derive(Debug)]
pub enum WaError {
    /// A rule or the database.
    Domain(DomainError),
    /// The Graph API refused or could not be reached (`status` 0: no answer).
    Upstream {
        /// HTTP status of the Graph API, 0 when it did not answer.
        status: u16,
        /// Its error message (never a token).
        message: String,
    },
}

impl From<DomainError> for WaError {
    fn from(e: DomainError) -> Self {
        WaError::Domain(e)
    }
}

impl From<sqlx::Error> for WaError {
    fn from(e: sqlx::Error) -> Self {
        WaError::Domain(e.into())
    }
}

impl std::fmt::Display for WaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaError::Domain(e) => write!(f, "{e}"),
            WaError::Upstream { status: 0, message } => {
                write!(f, "the WhatsApp Cloud API could not be reached: {message}")
            }
            WaError::Upstream { status, message } => {
                write!(
                    f,
                    "the WhatsApp Cloud API answered HTTP {status}: {message}"
                )
            }
        }
    }
}

/// A WhatsApp Cloud API client over a Graph base URL.
#[derive(Clone)]
pub struct Graph<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
}

/// A number as `GET <waba>/phone_numbers` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct GraphNumber {
    /// Graph id.
    pub id: String,
    /// `+55 11 99999-0001`.
    #[serde(default)]
    pub display_phone_number: String,
    /// The verified business name.
    #[serde(default)]
    pub verified_name: String,
    /// `VERIFIED`, `NOT_VERIFIED`, ...
    #[serde(default)]
    pub code_verification_status: Option<String>,
    /// `CONNECTED`, `PENDING`, `DISCONNECTED`, ...
    #[serde(default)]
    pub status: Option<String>,
}

impl<'a> Graph<'a> {
    /// A client for `base` (`https://graph.facebook.com/v21.0`).
    pub fn new(http: &'a reqwest::Client, base: &'a str) -> Self {
        Graph {
            http,
            base: base.trim_end_matches('/'),
        }
    }

    async fn call(
        &self,
        req: reqwest::RequestBuilder,
        token: &vault::SecretValue,
    ) -> Result<Value, WaError> {
        let r = req
            .bearer_auth(token.expose())
            .timeout(GRAPH_TIMEOUT)
            .send()
            .await
            .map_err(|e| WaError::Upstream {
                status: 0,
                message: if e.is_timeout() {
                    "timed out".into()
                } else {
                    "connection failed".into()
                },
            })?;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            let message = body
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("no error message")
                .chars()
                .take(300)
                .collect();
            return Err(WaError::Upstream { status, message });
        }
        Ok(body)
    }

    /// `POST <graph>/<phone_number_id>/messages`: the new message's `wamid`.
    pub async fn send(
        &self,
        token: &vault::SecretValue,
        phone_number_id: &str,
        to: &str,
        content: &Content,
    ) -> Result<String, WaError> {
        let mut body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
        });
        match content {
            Content::Text(t) => {
                body["type"] = json!("text");
                body["text"] = json!({"preview_url": false, "body": t});
            }
            Content::Template { name, language } => {
                body["type"] = json!("template");
                body["template"] = json!({"name": name, "language": {"code": language}});
            }
        }
        let url = format!("{}/{phone_number_id}/messages", self.base);
        let out = self.call(self.http.post(url).json(&body), token).await?;
        out.pointer("/messages/0/id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty() && id.len() <= 200)
            .map(str::to_string)
            .ok_or_else(|| WaError::Upstream {
                status: 200,
                message: "the answer carries no message id".into(),
            })
    }

    /// `GET <graph>/<waba_id>/phone_numbers`.
    pub async fn phone_numbers(
        &self,
        token: &vault::SecretValue,
        waba_id: &str,
    ) -> Result<Vec<GraphNumber>, WaError> {
        let url = format!("{}/{waba_id}/phone_numbers", self.base);
        let out = self.call(self.http.get(url), token).await?;
        serde_json::from_value(out.get("data").cloned().unwrap_or(Value::Null)).map_err(|_| {
            WaError::Upstream {
                status: 200,
                message: "the answer is not a list of phone numbers".into(),
            }
        })
    }
}

/// What a message carries.
#[derive(Debug, Clone)]
pub enum Content {
    /// Text, 1 to [`MAX_TEXT`] characters.
    Text(String),
    /// An approved template by name, in a language (`pt_BR`).
    Template {
        /// Template name.
        name: String,
        /// Language code.
        language: String,
    },
}

impl Content {
    fn kind(&self) -> &'static str {
        match self {
            Content::Text(_) => "text",
            Content::Template { .. } => "template",
        }
    }
}

/// A text message's body: 1 to [`MAX_TEXT`] characters, not blank, no NUL.
pub fn text(raw: &str) -> Result<Content, DomainError> {
    if raw.trim().is_empty() || raw.chars().count() > MAX_TEXT || raw.contains('\0') {
        return Err(DomainError::invalid(
            "message",
            "1 to 4096 characters, not blank",
        ));
    }
    Ok(Content::Text(raw.to_string()))
}

/// A template: its name (lowercase letters, digits, `_`, 1 to 512) and language code
/// (`pt_BR`, `en`, ...; default `pt_BR`).
pub fn template(name: &str, language: Option<&str>) -> Result<Content, DomainError> {
    let n = name.trim();
    if n.is_empty()
        || n.len() > MAX_TEMPLATE
        || !n
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(DomainError::invalid(
            "template_id",
            "a template name: 1 to 512 lowercase letters, digits or _",
        ));
    }
    let l = language.unwrap_or("pt_BR").trim();
    if !(2..=10).contains(&l.len()) || !l.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_') {
        return Err(DomainError::invalid(
            "language",
            "a language code such as pt_BR or en",
        ));
    }
    Ok(Content::Template {
        name: n.to_string(),
        language: l.to_string(),
    })
}

/// A recipient: 8 to 15 digits, an optional leading `+` dropped.
pub fn recipient(raw: &str) -> Result<String, DomainError> {
    let t = raw.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    if !(8..=15).contains(&t.len()) || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::invalid(
            "to",
            "a WhatsApp number: 8 to 15 digits, optionally after +",
        ));
    }
    Ok(t.to_string())
}

/// A Graph id (phone number id, WABA id): 1 to 30 digits.
pub fn graph_id(field: &'static str, raw: &str) -> Result<String, DomainError> {
    let t = raw.trim();
    if !(1..=30).contains(&t.len()) || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::invalid(field, "a Graph id: 1 to 30 digits"));
    }
    Ok(t.to_string())
}

/// A registered number.
#[derive(Debug, Clone)]
pub struct Number {
    /// Id.
    pub id: Uuid,
    /// Graph id.
    pub phone_number_id: String,
    /// WABA.
    pub waba_id: String,
    /// The vault secret of its token.
    pub secret_id: Option<Uuid>,
    /// Display phone number.
    pub phone_number: String,
    /// Verified business name.
    pub display_name: String,
    /// `active`, `inactive` or `pending`.
    pub status: String,
    /// Verified by Meta.
    pub verified: bool,
    /// Owner.
    pub organization_id: Uuid,
    /// Registered.
    pub created_at: OffsetDateTime,
}

impl From<db::NumberRow> for Number {
    fn from(r: db::NumberRow) -> Self {
        Number {
            id: r.number_id,
            phone_number_id: r.phone_number_id,
            waba_id: r.waba_id,
            secret_id: r.secret_id,
            phone_number: r.phone_number,
            display_name: r.display_name,
            status: r.status,
            verified: r.verified,
            organization_id: r.organization_id,
            created_at: r.created_at,
        }
    }
}

/// The organization's numbers (any role).
pub async fn numbers(pool: &PgPool, actor: &Actor) -> Result<Vec<Number>, DomainError> {
    authorize(actor, Action::Read)?;
    Ok(db::numbers(pool, actor.organization_id)
        .await?
        .into_iter()
        .map(Number::from)
        .collect())
}

/// The Graph status of a number as PyTake's `active | inactive | pending`.
fn number_status(n: &GraphNumber) -> &'static str {
    match n.status.as_deref().map(str::to_ascii_uppercase).as_deref() {
        Some("CONNECTED") | None => "active",
        Some("PENDING") | Some("UNVERIFIED") => "pending",
        _ => "inactive",
    }
}

/// Register (or refresh) the numbers of WABA `waba_id` by listing them with the token in
/// secret `secret_id` (org_admin; the secret must be the organization's, active, with service
/// `whatsapp`). A number registered by another organization is a conflict, nothing changed.
pub async fn sync_numbers(
    pool: &PgPool,
    keys: &SecretBox,
    cfg: &WhatsappConfig,
    http: &reqwest::Client,
    actor: &Actor,
    secret_id: Uuid,
    waba_id: &str,
) -> Result<Vec<Number>, WaError> {
    authorize(actor, Action::ManageContent)?;
    let waba = graph_id("waba_id", waba_id)?;
    let org = actor.organization_id;
    let who = vault::Who {
        organization_id: org,
        user_id: Some(actor.user_id),
    };
    let meta = vault::get(pool, &who, secret_id).await?;
    if !meta
        .service
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("whatsapp"))
    {
        return Err(
            DomainError::invalid("secret_id", "must name a secret with service whatsapp").into(),
        );
    }
    let token = vault::use_value(pool, keys, org, secret_id).await?;
    let listed = Graph::new(http, &cfg.graph_base_url)
        .phone_numbers(&token, &waba)
        .await;
    vault::record_use(pool, org, secret_id, listed.is_ok(), "whatsapp.numbers").await?;
    let listed = listed?;
    let mut out = Vec::with_capacity(listed.len());
    for n in &listed {
        let Ok(pnid) = graph_id("id", &n.id) else {
            continue;
        };
        let phone: String = n.display_phone_number.chars().take(40).collect();
        let name: String = n.verified_name.chars().take(200).collect();
        let row = db::upsert_number(
            pool,
            org,
            db::NumberFields {
                phone_number_id: &pnid,
                waba_id: &waba,
                secret_id,
                phone_number: if phone.is_empty() { &pnid } else { &phone },
                display_name: &name,
                status: number_status(n),
                verified: n
                    .code_verification_status
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case("VERIFIED")),
            },
        )
        .await?
        .ok_or(DomainError::Conflict(Conflict::NumberTaken))?;
        out.push(row.into());
    }
    Ok(out)
}

/// A message to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Recipient wa_id (see [`recipient`]).
    pub to: String,
    /// What it carries.
    pub content: Content,
    /// The number to send from (its Graph id); `None`: the organization's first active one.
    pub phone_number_id: Option<String>,
    /// The automation job sending it, if any.
    pub job_id: Option<Uuid>,
}

/// A sent message: WhatsApp's id and its status (`accepted` until webhooks move it).
#[derive(Debug, Clone)]
pub struct Sent {
    /// `wamid.…`.
    pub wamid: String,
    /// `accepted`.
    pub status: &'static str,
}

/// Send a message for `org` (the caller checked the role) through one of its numbers, with the
/// number's token from the vault (refused when inactive; the use is recorded either way it
/// goes). The message is stored with status `accepted`.
pub async fn send(
    pool: &PgPool,
    keys: &SecretBox,
    cfg: &WhatsappConfig,
    http: &reqwest::Client,
    org: Uuid,
    m: &Outgoing,
) -> Result<Sent, WaError> {
    let number = db::sender(pool, org, m.phone_number_id.as_deref())
        .await?
        .ok_or_else(|| match &m.phone_number_id {
            Some(_) => DomainError::NotFound(Entity::WhatsappNumber),
            None => DomainError::invalid(
                "phone_number_id",
                "the organization has no WhatsApp number (register one with POST /api/v1/whatsapp/numbers/sync)",
            ),
        })?;
    if number.status != "active" {
        return Err(DomainError::invalid("phone_number_id", "the number is not active").into());
    }
    let secret_id = number.secret_id.ok_or_else(|| {
        DomainError::invalid("phone_number_id", "the number's token secret was deleted")
    })?;
    let token = vault::use_value(pool, keys, org, secret_id).await?;
    let sent = Graph::new(http, &cfg.graph_base_url)
        .send(&token, &number.phone_number_id, &m.to, &m.content)
        .await;
    vault::record_use(pool, org, secret_id, sent.is_ok(), "whatsapp.send").await?;
    let wamid = sent?;
    let (body, template) = match &m.content {
        Content::Text(t) => (Some(t.as_str()), None),
        Content::Template { name, .. } => (None, Some(name.as_str())),
    };
    db::insert_message(
        pool,
        db::NewMessage {
            organization_id: org,
            number_id: number.number_id,
            wamid: &wamid,
            direction: "out",
            peer: &m.to,
            kind: m.content.kind(),
            body,
            template_name: template,
            status: "accepted",
            job_id: m.job_id,
        },
    )
    .await?;
    Ok(Sent {
        wamid,
        status: "accepted",
    })
}

/// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, raw body)>`, compared in
/// constant time. `Err(NotConfigured)` without an app secret; `Err(Unauthorized)` for a
/// missing or wrong signature.
pub fn verify_signature(
    cfg: &WhatsappConfig,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), DomainError> {
    let Some(secret) = cfg.app_secret.as_deref() else {
        return Err(DomainError::NotConfigured(
            "the WhatsApp app secret (env WHATSAPP_APP_SECRET, or the variable whatsapp.app_secret_env names)",
        ));
    };
    let bad = || DomainError::Unauthorized(super::Unauthorized::BadToken);
    let given = header
        .map(str::trim)
        .and_then(|h| h.strip_prefix("sha256="))
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(bad)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|e| DomainError::internal("whatsapp hmac key", e))?;
    mac.update(body);
    // `verify_slice` compares in constant time
    mac.verify_slice(&given).map_err(|_| bad())
}

/// The signature header value of `body` (`sha256=<hex>`), as Meta sends it.
pub fn sign(secret: &str, body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::new(),
    }
}

/// The subscription handshake: the challenge to echo when `mode` is `subscribe` and `token`
/// is the configured verify token (compared in constant time); `None` otherwise.
pub fn handshake<'c>(
    cfg: &WhatsappConfig,
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&'c str>,
) -> Option<&'c str> {
    use subtle::ConstantTimeEq;
    let expected = cfg.verify_token.as_deref()?;
    let given = token?;
    if mode != Some("subscribe") || !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        return None;
    }
    challenge.filter(|c| !c.is_empty() && c.len() <= 256)
}

/// One event of a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An outbound message's status changed.
    Status {
        /// The receiving number's Graph id.
        phone_number_id: String,
        /// The message.
        wamid: String,
        /// `sent`, `delivered`, `read`, `failed`.
        status: String,
    },
    /// A message was received.
    Message {
        /// The receiving number's Graph id.
        phone_number_id: String,
        /// The message.
        wamid: String,
        /// Sender wa_id.
        from: String,
        /// `text`, `image`, ...
        kind: String,
        /// Text, when a text message.
        body: Option<String>,
    },
}

/// The events of a webhook body (`{"object":"whatsapp_business_account","entry":[{"changes":
/// [{"field":"messages","value":{"metadata":{"phone_number_id"},"statuses":[..],
/// "messages":[..]}}]}]}`); an invalid body is [`DomainError::Invalid`], unknown parts are
/// skipped.
pub fn parse_webhook(body: &[u8]) -> Result<Vec<Event>, DomainError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| DomainError::invalid("body", "not a JSON webhook payload"))?;
    let entries = v
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| DomainError::invalid("entry", "required: an array"))?;
    let s = |v: &Value, k: &str, max: usize| -> Option<String> {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty() && t.len() <= max && !t.contains('\0'))
            .map(str::to_string)
    };
    let mut out = Vec::new();
    for change in entries
        .iter()
        .filter_map(|e| e.get("changes").and_then(Value::as_array))
        .flatten()
    {
        let Some(value) = change.get("value") else {
            continue;
        };
        let Some(pnid) = value
            .pointer("/metadata/phone_number_id")
            .and_then(Value::as_str)
            .and_then(|p| graph_id("phone_number_id", p).ok())
        else {
            continue;
        };
        for st in value
            .get("statuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(wamid), Some(status)) = (s(st, "id", 200), s(st, "status", 20)) else {
                continue;
            };
            if matches!(status.as_str(), "sent" | "delivered" | "read" | "failed") {
                out.push(Event::Status {
                    phone_number_id: pnid.clone(),
                    wamid,
                    status,
                });
            }
        }
        for m in value
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(wamid), Some(from)) = (s(m, "id", 200), s(m, "from", 40)) else {
                continue;
            };
            let kind = s(m, "type", 40).unwrap_or_else(|| "unknown".into());
            let body = m
                .pointer("/text/body")
                .and_then(Value::as_str)
                .map(|b| b.chars().take(MAX_TEXT).collect::<String>())
                .filter(|b| !b.contains('\0'));
            out.push(Event::Message {
                phone_number_id: pnid.clone(),
                wamid,
                from,
                kind,
                body,
            });
        }
    }
    Ok(out)
}

/// What a webhook changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Events applied now.
    pub applied: u64,
    /// Events applied before (redeliveries): nothing changed.
    pub duplicates: u64,
    /// Events for numbers no organization registered.
    pub ignored: u64,
}

/// Apply a verified webhook's events, each once.
pub async fn apply_webhook(pool: &PgPool, events: &[Event]) -> Result<Applied, DomainError> {
    let mut a = Applied::default();
    for e in events {
        let pnid = match e {
            Event::Status {
                phone_number_id, ..
            }
            | Event::Message {
                phone_number_id, ..
            } => phone_number_id,
        };
        let Some(number) = db::by_phone_number_id(pool, pnid).await? else {
            a.ignored += 1;
            continue;
        };
        let new = match e {
            Event::Status { wamid, status, .. } => {
                db::apply_status(pool, number.organization_id, wamid, status).await?
            }
            Event::Message {
                wamid,
                from,
                kind,
                body,
                ..
            } => {
                db::apply_message(
                    pool,
                    db::NewMessage {
                        organization_id: number.organization_id,
                        number_id: number.number_id,
                        wamid,
                        direction: "in",
                        peer: from,
                        kind,
                        body: body.as_deref(),
                        template_name: None,
                        status: "received",
                        job_id: None,
                    },
                )
                .await?
            }
        };
        if new {
            a.applied += 1;
        } else {
            a.duplicates += 1;
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(secret: Option<&str>, verify: Option<&str>) -> WhatsappConfig {
        WhatsappConfig {
            graph_base_url: "http://127.0.0.1:9/graph/v21.0".into(),
            app_secret: secret.map(str::to_string),
            app_secret_env: "WHATSAPP_APP_SECRET".into(),
            verify_token: verify.map(str::to_string),
            verify_token_env: "WHATSAPP_VERIFY_TOKEN".into(),
        }
    }

    #[test]
    fn signatures_verify_over_the_raw_bytes_only() {
        let c = cfg(Some("app-secret"), None);
        let body = br#"{"entry":[]}"#;
        let sig = sign("app-secret", body);
        assert!(verify_signature(&c, body, Some(&sig)).is_ok());
        assert!(verify_signature(&c, br#"{"entry": []}"#, Some(&sig)).is_err());
        assert!(verify_signature(&c, body, Some(&sign("other", body))).is_err());
        assert!(verify_signature(&c, body, None).is_err());
        assert!(verify_signature(&c, body, Some("sha256=zz")).is_err());
        assert!(verify_signature(&c, body, Some(sig.trim_start_matches("sha256="))).is_err());
        assert!(matches!(
            verify_signature(&cfg(None, None), body, Some(&sig)),
            Err(DomainError::NotConfigured(_))
        ));
    }

    #[test]
    fn handshake_echoes_only_with_the_token_and_subscribe() {
        let c = cfg(None, Some("vt"));
        assert_eq!(
            handshake(&c, Some("subscribe"), Some("vt"), Some("123")),
            Some("123")
        );
        assert_eq!(
            handshake(&c, Some("subscribe"), Some("vx"), Some("1")),
            None
        );
        assert_eq!(
            handshake(&c, Some("unsubscribe"), Some("vt"), Some("1")),
            None
        );
        assert_eq!(handshake(&c, Some("subscribe"), None, Some("1")), None);
        assert_eq!(
            handshake(&cfg(None, None), Some("subscribe"), Some(""), Some("1")),
            None
        );
    }

    #[test]
    fn webhook_bodies_parse_into_events_and_skip_junk() {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "metadata": {"phone_number_id": "1001"},
            "statuses": [{"id": "wamid.A", "status": "delivered"}, {"id": "wamid.B", "status": "weird"}],
            "messages": [{"id": "wamid.C", "from": "5511999990000", "type": "text", "text": {"body": "oi"}}]}}]}]});
        let ev = parse_webhook(body.to_string().as_bytes()).unwrap();
        assert_eq!(ev.len(), 2);
        assert!(
            matches!(&ev[0], Event::Status { wamid, status, .. } if wamid == "wamid.A" && status == "delivered")
        );
        assert!(matches!(&ev[1], Event::Message { body: Some(b), .. } if b == "oi"));
        assert!(parse_webhook(b"nope").is_err());
        assert!(parse_webhook(b"{}").is_err());
    }

    #[test]
    fn inputs_are_checked() {
        assert_eq!(recipient("+5511999990000").unwrap(), "5511999990000");
        assert!(recipient("55 11").is_err() && recipient("1234567").is_err());
        assert!(text("  ").is_err() && text(&"x".repeat(4097)).is_err());
        assert!(template("hello_world", None).is_ok());
        assert!(template("Hello World", None).is_err());
        assert!(template("ok", Some("pt-BR")).is_err());
        assert!(graph_id("id", "12a").is_err() && graph_id("id", "123").is_ok());
    }
}
