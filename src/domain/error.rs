//! The one error of the domain core. Surfaces render it in their contract's shape (MaxAI's
//! `{error, details}`, SabIA's `{success:false, error:{code,message,details}}`, ...); nothing
//! here knows a contract.

/// What a rule refused, or why it could not run.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Input that breaks a rule; `field` as the contracts name it, `reason` in English.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Absent, or not the caller's (the two are never told apart).
    #[error("{} not found", .0.as_str())]
    NotFound(Entity),
    /// Authenticated, but the caller's role does not allow it.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The change collides with the current state.
    #[error("{0}")]
    Conflict(Conflict),
    /// No valid credentials.
    #[error("{0}")]
    Unauthorized(Unauthorized),
    /// Too many failed attempts: wait `retry_after_secs` (a surface answers 429 with
    /// `Retry-After`).
    #[error("too many failed attempts; retry in {retry_after_secs} s")]
    Throttled {
        /// Seconds until attempts are accepted again.
        retry_after_secs: u64,
    },
    /// A template's variables do not fill it.
    #[error("{0}")]
    MissingVariables(String),
    /// A feature the operator has not configured (a surface answers 503 and names it).
    #[error("not configured: {0}")]
    NotConfigured(&'static str),
    /// The database cannot be reached (a surface answers 503).
    #[error("the database is unavailable")]
    Unavailable,
    /// Anything else; logged once where it happened, never shown.
    #[error("internal error")]
    Internal,
}

/// Things a caller can ask for by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// A person.
    User,
    /// An organization (a SabIA team).
    Organization,
    /// An API key.
    Key,
    /// A prompt template.
    Template,
    /// A catalog model.
    Model,
    /// A plan.
    Plan,
    /// A webhook.
    Webhook,
    /// A webhook delivery attempt.
    WebhookAttempt,
    /// A refund request.
    Refund,
    /// A vault secret.
    Secret,
    /// A PyTake contact.
    Contact,
    /// A PyTake flow.
    Flow,
    /// A PyTake WhatsApp number.
    WhatsappNumber,
    /// A PyTake flow automation.
    Automation,
    /// A bradax vector collection.
    Collection,
    /// A bradax graph.
    Graph,
}

impl Entity {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::User => "user",
            Entity::Organization => "organization",
            Entity::Key => "key",
            Entity::Template => "template",
            Entity::Model => "model",
            Entity::Plan => "plan",
            Entity::Webhook => "webhook",
            Entity::WebhookAttempt => "webhook_attempt",
            Entity::Refund => "refund",
            Entity::Secret => "secret",
            Entity::Contact => "contact",
            Entity::Flow => "flow",
            Entity::Collection => "collection",
            Entity::Graph => "graph",
            Entity::WhatsappNumber => "whatsapp_number",
            Entity::Automation => "flow_automation",
        }
    }
}

/// Collisions with the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// The email belongs to another account.
    #[error("email already registered")]
    EmailTaken,
    /// Another organization has the slug.
    #[error("slug already taken")]
    SlugTaken,
    /// Another plan has the code.
    #[error("code already taken")]
    CodeTaken,
    /// The user is a member already.
    #[error("already a member")]
    AlreadyMember,
    /// The idempotency key was used before for a different entry.
    #[error("idempotency key already used for a different entry")]
    IdempotencyReused,
    /// The organization has a refund request pending already.
    #[error("a refund request is already pending")]
    RefundPending,
    /// The refund request was approved or rejected before.
    #[error("the refund request is not pending (already approved or rejected)")]
    RefundNotPending,
    /// Another secret of the organization has the name in that environment.
    #[error("a secret with this name already exists in this environment")]
    SecretNameTaken,
    /// The secret is inactive: the platform never uses it.
    #[error("the secret is inactive")]
    SecretInactive,
    /// Another contact of the organization has the WhatsApp id.
    #[error("a contact with this whatsapp_id already exists")]
    WhatsappIdTaken,
    /// Another organization registered the WhatsApp number.
    #[error("the WhatsApp number is registered by another organization")]
    NumberTaken,
    /// The automation was started before.
    #[error("the automation was already started")]
    AutomationStarted,
}

/// Why credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unauthorized {
    /// Wrong email or password (never says which).
    #[error("invalid email or password")]
    BadCredentials,
    /// Missing, malformed, expired, revoked or forged token.
    #[error("invalid or expired token")]
    BadToken,
    /// A refresh token was used twice: its whole family is revoked.
    #[error("refresh token reuse detected; all sessions of this login were revoked")]
    Reused,
}

impl DomainError {
    /// An [`DomainError::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        DomainError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// Logs an unexpected failure once, where it happened, and hides it.
    pub fn internal(what: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{what}");
        DomainError::Internal
    }
}

impl From<Unauthorized> for DomainError {
    fn from(u: Unauthorized) -> Self {
        DomainError::Unauthorized(u)
    }
}

impl From<Conflict> for DomainError {
    fn from(c: Conflict) -> Self {
        DomainError::Conflict(c)
    }
}

impl From<sqlx::Error> for DomainError {
    /// A database that cannot be reached is [`DomainError::Unavailable`]; any other database
    /// failure is a bug or a broken invariant: logged, [`DomainError::Internal`].
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => {
                tracing::warn!(error = %e, "database unavailable");
                DomainError::Unavailable
            }
            e => DomainError::internal("database error", e),
        }
    }
}
