//! bradax (issue 15): projects, their keys' scopes, and the tokens minted from a key.
//!
//! * A project is an organization of kind `project` whose slug is the contract's `project_id`
//!   and whose `tier` is [`Tier::Full`] or [`Tier::Student`]; its keys (`bx_live_…`) are
//!   ordinary API keys (hashed, cached by the gateway) whose scopes are [`Scope`] names.
//! * `auth/token` trades a key for an access token (JWT, [`ACCESS_TTL`], audience
//!   [`AUDIENCE`], `typ` `access`) and a refresh token (JWT, `typ` `refresh`, rotated by the
//!   one rule of [`super::refresh`]). Both are signed with the admin app's keys.
//! * An access token binds to its key: it carries the key's id and hash, the gateway finds the
//!   key in its cache (no database round trip) and applies the key's limits, budget and
//!   billing; a revoked or disabled key's tokens stop at once (the cache hears of the change).
//! * A student project has lower limits (its keys' rpm is capped at [`Policy::student_rpm`]),
//!   a model allow-list ([`Policy::student_models`]) and never `deploy_graph`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::accounts::{self, Jwt};
use super::error::{DomainError, Unauthorized};
use super::refresh::{self, Owner};
use crate::store::bradax as db;

/// Audience of bradax's tokens (access and refresh).
pub const AUDIENCE: &str = "bradax";
/// Access token lifetime (the contract's `expires_in: 900`).
pub const ACCESS_TTL: Duration = Duration::from_secs(900);
/// Refresh token lifetime.
pub const REFRESH_TTL: Duration = accounts::REFRESH_TTL;
/// Longest API key text read.
const MAX_KEY: usize = 200;

/// One of bradax's six scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `llm/invoke`, `llm/stream`, `/v1/chat/completions`, `/v1/embeddings`.
    InvokeLlm,
    /// `vectors/{c}/query`.
    ReadVector,
    /// `vectors/{c}/upsert`.
    WriteVector,
    /// `graphs/deploy` (never for a student project).
    DeployGraph,
    /// `graphs/{id}/execute`.
    ExecuteGraph,
    /// `metrics`.
    ReadMetrics,
}

impl Scope {
    /// Every scope, in the order they are listed.
    pub const ALL: [Scope; 6] = [
        Scope::InvokeLlm,
        Scope::ReadVector,
        Scope::WriteVector,
        Scope::DeployGraph,
        Scope::ExecuteGraph,
        Scope::ReadMetrics,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::InvokeLlm => "invoke_llm",
            Scope::ReadVector => "read_vector",
            Scope::WriteVector => "write_vector",
            Scope::DeployGraph => "deploy_graph",
            Scope::ExecuteGraph => "execute_graph",
            Scope::ReadMetrics => "read_metrics",
        }
    }

    /// A wire name's scope.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    /// Whether `s` is in the set.
    pub fn contains(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }

    /// Whether any of `any` is in the set.
    pub fn any(self, any: &[Scope]) -> bool {
        any.iter().any(|s| self.contains(*s))
    }

    /// The set with `s`.
    pub fn with(self, s: Scope) -> Scopes {
        Scopes(self.0 | s.bit())
    }

    /// The set without `s`.
    pub fn without(self, s: Scope) -> Scopes {
        Scopes(self.0 & !s.bit())
    }

    /// Whether every scope of `self` is in `other`.
    pub fn subset_of(self, other: Scopes) -> bool {
        self.0 & !other.0 == 0
    }

    /// The scopes in both.
    pub fn intersect(self, other: Scopes) -> Scopes {
        Scopes(self.0 & other.0)
    }

    /// The scopes in the set, in [`Scope::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// The wire names.
    pub fn names(self) -> Vec<String> {
        self.iter().map(|s| s.as_str().to_string()).collect()
    }

    /// Wire names, space-separated (as the token's `scope` claim).
    pub fn joined(self) -> String {
        self.names().join(" ")
    }

    /// Names to a set; `Err(name)` for the first name that is no scope.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Scopes, String> {
        names.iter().try_fold(Scopes::default(), |acc, n| {
            Scope::parse(n.as_ref())
                .map(|s| acc.with(s))
                .ok_or_else(|| n.as_ref().to_string())
        })
    }

    /// The scopes named in a space-separated claim (unknown names are ignored).
    pub fn from_claim(claim: &str) -> Scopes {
        claim
            .split(' ')
            .filter_map(Scope::parse)
            .fold(Scopes::default(), Scopes::with)
    }

    /// Names a key may hold: bradax's scopes, and nothing else (for keys of projects).
    pub fn check_key_scopes<S: AsRef<str>>(names: &[S]) -> Result<(), DomainError> {
        Scopes::parse(names).map(|_| ()).map_err(|n| {
            DomainError::invalid(
                "scopes",
                format!(
                    "{n:?} is no scope; a project key's scopes are {}",
                    Scope::ALL.map(Scope::as_str).join(", ")
                ),
            )
        })
    }
}

/// A project's tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Every feature, the key's own limits.
    Full,
    /// Lower limits, a model allow-list, no `deploy_graph`.
    Student,
}

impl Tier {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Full => "full",
            Tier::Student => "student",
        }
    }

    /// A stored or requested tier (`None`: no tier name).
    pub fn parse(s: &str) -> Option<Tier> {
        match s {
            "full" => Some(Tier::Full),
            "student" => Some(Tier::Student),
            _ => None,
        }
    }
}

/// What the config says of the student tier (`bradax:` in the config).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Requests per minute a student project's key may have at most (and gets when it asks
    /// for none). Default 20.
    #[serde(default = "default_student_rpm")]
    pub student_rpm: u32,
    /// Public chat model names a student project may call (embeddings are not limited).
    /// Default `["gpt-4o-mini"]`.
    #[serde(default = "default_student_models")]
    pub student_models: Vec<String>,
}

fn default_student_rpm() -> u32 {
    20
}

fn default_student_models() -> Vec<String> {
    vec!["gpt-4o-mini".into()]
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            student_rpm: default_student_rpm(),
            student_models: default_student_models(),
        }
    }
}

impl Policy {
    /// Whether a project of `tier` may call `model`.
    pub fn allows_model(&self, tier: Tier, model: &str) -> bool {
        tier == Tier::Full || self.student_models.iter().any(|m| m == model)
    }

    /// The rpm a new key of a project of `tier` gets for an asked `rpm`.
    pub fn key_rpm(&self, tier: Tier, rpm: Option<i64>) -> Option<i64> {
        match tier {
            Tier::Full => rpm,
            Tier::Student => {
                let cap = i64::from(self.student_rpm.max(1));
                Some(rpm.map_or(cap, |r| r.min(cap)))
            }
        }
    }
}

/// The kind of a bradax token.
const ACCESS: &str = "access";
const REFRESH: &str = "refresh";

/// Claims of a bradax token. The access token carries what the gateway needs to find the key
/// in its cache without a database round trip (`kh`: the key's SHA-256, which is no
/// credential: a key is presented as plaintext and hashed).
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    aud: String,
    typ: String,
    /// The API key.
    sub: Uuid,
    org: Uuid,
    /// The project's slug.
    prj: String,
    /// Scopes, space-separated.
    scope: String,
    tier: String,
    /// Hex SHA-256 of the key (access tokens only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    kh: String,
    iat: i64,
    exp: i64,
    /// Random: two tokens of one second never share a text.
    jti: String,
}

/// Who a bradax access token speaks for.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The project (organization).
    pub org_id: Uuid,
    /// Its slug (`project_id`).
    pub project: String,
    /// The key the token was minted from.
    pub key_id: Uuid,
    /// SHA-256 of the key (the gateway's cache key).
    pub key_hash: [u8; 32],
    /// Scopes granted.
    pub scopes: Scopes,
    /// The project's tier.
    pub tier: Tier,
}

impl Principal {
    /// `Ok` when `scope` was granted, else forbidden; `deploy_graph` is never a student's.
    pub fn require(&self, scope: Scope) -> Result<(), DomainError> {
        if scope == Scope::DeployGraph && self.tier == Tier::Student {
            return Err(DomainError::Forbidden("student_tier"));
        }
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(DomainError::Forbidden("scope"))
        }
    }
}

/// Whether `token` looks like a JWT (three base64url parts, starting as a JSON header does),
/// so the gateway spends no verification on plain API keys.
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.bytes().filter(|b| *b == b'.').count() == 2
}

/// Verify a bradax access token: signature, expiry, audience and kind (no database). The key
/// it binds to must still be checked by the caller (the gateway's cache, or [`authenticate`]).
pub fn verify_access(jwt: &Jwt, token: &str) -> Result<Principal, DomainError> {
    let c: Claims = jwt.verify_claims(token)?;
    if c.aud != AUDIENCE || c.typ != ACCESS {
        return Err(Unauthorized::BadToken.into());
    }
    let mut key_hash = [0u8; 32];
    hex::decode_to_slice(&c.kh, &mut key_hash).map_err(|_| Unauthorized::BadToken)?;
    Ok(Principal {
        org_id: c.org,
        project: c.prj,
        key_id: c.sub,
        key_hash,
        scopes: Scopes::from_claim(&c.scope),
        tier: Tier::parse(&c.tier).ok_or(Unauthorized::BadToken)?,
    })
}

/// The principal of an access token whose key is still active (the admin app's check: one
/// indexed query). The tier is the project's now.
pub async fn authenticate(pool: &PgPool, jwt: &Jwt, token: &str) -> Result<Principal, DomainError> {
    let mut p = verify_access(jwt, token)?;
    let key = db::active_key(pool, p.key_id)
        .await?
        .ok_or(Unauthorized::BadToken)?;
    if key.organization_id != p.org_id || key.slug != p.project {
        return Err(Unauthorized::BadToken.into());
    }
    p.tier = key.tier();
    Ok(p)
}

/// What `auth/token` and `auth/refresh` answer.
#[derive(Debug)]
pub struct Tokens {
    /// Access JWT ([`ACCESS_TTL`]).
    pub access_token: String,
    /// Refresh JWT (shown once).
    pub refresh_token: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// Scopes granted.
    pub scopes: Scopes,
}

fn sign(
    jwt: &Jwt,
    typ: &str,
    key: &db::KeyRow,
    scopes: Scopes,
    ttl: Duration,
) -> Result<String, DomainError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    jwt.sign(&Claims {
        aud: AUDIENCE.into(),
        typ: typ.into(),
        sub: key.api_key_id,
        org: key.organization_id,
        prj: key.slug.clone(),
        scope: scopes.joined(),
        tier: key.tier().as_str().into(),
        kh: if typ == ACCESS {
            hex::encode(&key.key_hash)
        } else {
            String::new()
        },
        iat: now,
        exp: now + ttl.as_secs() as i64,
        jti: accounts::random_token(),
    })
}

async fn issue(
    pool: &PgPool,
    jwt: &Jwt,
    key: &db::KeyRow,
    scopes: Scopes,
    family: Uuid,
    parent: Option<Uuid>,
) -> Result<Tokens, DomainError> {
    let access_token = sign(jwt, ACCESS, key, scopes, ACCESS_TTL)?;
    let refresh_token = sign(jwt, REFRESH, key, scopes, REFRESH_TTL)?;
    refresh::store(
        pool,
        family,
        parent,
        Owner::Key(key.api_key_id, &scopes.names()),
        key.organization_id,
        &refresh_token,
        REFRESH_TTL,
    )
    .await?;
    Ok(Tokens {
        access_token,
        refresh_token,
        expires_in: ACCESS_TTL.as_secs(),
        scopes,
    })
}

/// The scopes a key holds that its project's tier lets it use.
fn held(key: &db::KeyRow) -> Scopes {
    let s = Scopes::from_claim(&key.scopes.join(" "));
    match key.tier() {
        Tier::Full => s,
        Tier::Student => s.without(Scope::DeployGraph),
    }
}

/// `auth/token`: trade a project's key for tokens. The key must be an active key of the
/// project `project_id` (else unauthorized, the same answer whichever part is wrong); asking
/// for a scope the key does not hold is forbidden (a student never holds `deploy_graph`);
/// asking for none grants every scope held.
pub async fn token(
    pool: &PgPool,
    jwt: &Jwt,
    project_id: &str,
    api_key: &str,
    requested: Option<&[String]>,
) -> Result<Tokens, DomainError> {
    let asked = match requested {
        None => None,
        Some(r) if r.len() > 32 => return Err(DomainError::invalid("scopes", "at most 32 names")),
        Some(r) => Some(Scopes::parse(r).map_err(|n| {
            DomainError::invalid(
                "scopes",
                format!(
                    "{n:?} is no scope; the scopes are {}",
                    Scope::ALL.map(Scope::as_str).join(", ")
                ),
            )
        })?),
    };
    if project_id.is_empty()
        || project_id.len() > 64
        || api_key.is_empty()
        || api_key.len() > MAX_KEY
    {
        return Err(Unauthorized::BadCredentials.into());
    }
    let hash = accounts::token_hash(api_key);
    let key = db::active_key_by_hash(pool, &hash)
        .await?
        .filter(|k| k.slug == project_id)
        .ok_or(Unauthorized::BadCredentials)?;
    let held = held(&key);
    let scopes = match asked {
        None => held,
        Some(a) if a.subset_of(held) => a,
        Some(a) if key.tier() == Tier::Student && a.contains(Scope::DeployGraph) => {
            return Err(DomainError::Forbidden("student_tier"));
        }
        Some(_) => return Err(DomainError::Forbidden("scope")),
    };
    issue(pool, jwt, &key, scopes, Uuid::new_v4(), None).await
}

/// `auth/refresh` for a bradax refresh token: rotation with grace; the key must still be
/// active (else the family ends), and the scopes are the family's that the key still holds.
pub async fn refresh(pool: &PgPool, jwt: &Jwt, token: &str) -> Result<Tokens, DomainError> {
    let c: Claims = jwt.verify_claims(token)?;
    if c.aud != AUDIENCE || c.typ != REFRESH {
        return Err(Unauthorized::BadToken.into());
    }
    let row = refresh::exchange(pool, AUDIENCE, token).await?;
    let key_id = row.api_key_id.ok_or(Unauthorized::BadToken)?;
    let Some(key) = db::active_key(pool, key_id).await? else {
        refresh::revoke_family(pool, row.family_id).await?;
        return Err(Unauthorized::BadToken.into());
    };
    let scopes = Scopes::from_claim(&row.scopes.join(" ")).intersect(held(&key));
    issue(
        pool,
        jwt,
        &key,
        scopes,
        row.family_id,
        Some(row.rotating_refresh_token_id),
    )
    .await
}

/// Longest `metrics` window.
pub const MAX_WINDOW: time::Duration = time::Duration::days(93);

pub use crate::store::bradax::ModelUsage;

/// `metrics`: the project's usage by model in `[from, to)` (default the last 24 hours; the
/// surface checked `read_metrics`); a window past [`MAX_WINDOW`] or ending before it starts
/// is invalid.
pub async fn usage(
    pool: &PgPool,
    project: Uuid,
    from: Option<time::OffsetDateTime>,
    to: Option<time::OffsetDateTime>,
) -> Result<Vec<ModelUsage>, DomainError> {
    let to = to.unwrap_or_else(time::OffsetDateTime::now_utc);
    let from = from.unwrap_or(to - time::Duration::hours(24));
    if from >= to {
        return Err(DomainError::invalid(
            "start_time",
            "must be before end_time",
        ));
    }
    if to - from > MAX_WINDOW {
        return Err(DomainError::invalid(
            "start_time",
            "the window is at most 93 days",
        ));
    }
    Ok(db::usage_by_model(pool, project, from, to).await?)
}

/// One check of `health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Works.
    Healthy,
    /// Works in part, or is not configured (the rest of the service is unaffected).
    Degraded,
    /// Does not work.
    Unhealthy,
}

impl Check {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Healthy => "healthy",
            Check::Degraded => "degraded",
            Check::Unhealthy => "unhealthy",
        }
    }
}

/// `health`'s checks and the overall status.
#[derive(Debug, Clone, Copy)]
pub struct Health {
    /// Postgres answers a query.
    pub database: Check,
    /// The vault's master key seals and opens a canary (degraded: no master key configured).
    pub vault: Check,
    /// Providers whose circuit breaker is open (per the gateways' breaker incidents): none
    /// healthy, some degraded, all unhealthy.
    pub llm_providers: Check,
    /// The vector store answers.
    pub vector_db: Check,
}

impl Health {
    /// Unhealthy when the database or every provider is; degraded when any check is not
    /// healthy; else healthy.
    pub fn status(&self) -> Check {
        if self.database == Check::Unhealthy || self.llm_providers == Check::Unhealthy {
            Check::Unhealthy
        } else if [self.vault, self.llm_providers, self.vector_db]
            .iter()
            .any(|c| *c != Check::Healthy)
        {
            Check::Degraded
        } else {
            Check::Healthy
        }
    }
}

/// How long each check may take.
const CHECK_DEADLINE: Duration = Duration::from_secs(2);

async fn within<T, E>(f: impl std::future::Future<Output = Result<T, E>>) -> Option<T> {
    tokio::time::timeout(CHECK_DEADLINE, f).await.ok()?.ok()
}

/// Run every check (at once; each within 2 s). `providers` is how many the config serves.
pub async fn health(
    pool: &PgPool,
    secrets: Option<&crate::secrets::SecretBox>,
    providers: &[String],
) -> Health {
    let vault = match secrets {
        None => Check::Degraded,
        Some(b) => {
            let canary = accounts::random_token();
            match b.seal(canary.as_bytes()).and_then(|s| b.open(&s)) {
                Some(back) if back == canary.as_bytes() => Check::Healthy,
                _ => Check::Unhealthy,
            }
        }
    };
    let (db_ok, incidents, vectors_ok) = tokio::join!(
        within(crate::store::incidents::ping(pool)),
        within(super::incidents::active(pool)),
        within(crate::store::vectors::ping(pool)),
    );
    let llm_providers = match incidents {
        // without the database the breakers' state is unknown here
        None => Check::Degraded,
        Some(list) => {
            let open = providers
                .iter()
                .filter(|p| {
                    list.iter()
                        .any(|i| i.source == "breaker" && i.provider.as_deref() == Some(p.as_str()))
                })
                .count();
            if open == 0 {
                Check::Healthy
            } else if open < providers.len() {
                Check::Degraded
            } else {
                Check::Unhealthy
            }
        }
    };
    Health {
        database: if db_ok.is_some() {
            Check::Healthy
        } else {
            Check::Unhealthy
        },
        vault,
        llm_providers,
        vector_db: if vectors_ok.is_some() {
            Check::Healthy
        } else {
            Check::Unhealthy
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_compare() {
        let s = Scopes::parse(&["invoke_llm", "read_metrics"]).unwrap();
        assert!(s.contains(Scope::InvokeLlm) && s.contains(Scope::ReadMetrics));
        assert!(!s.contains(Scope::DeployGraph));
        assert_eq!(Scopes::parse(&["invoke_llm", "admin"]), Err("admin".into()));
        assert_eq!(Scopes::from_claim(&s.joined()), s);
        let all = Scopes::parse(&Scope::ALL.map(Scope::as_str)).unwrap();
        assert!(s.subset_of(all) && !all.subset_of(s));
        assert_eq!(all.names().len(), 6);
    }

    #[test]
    fn a_student_never_deploys_and_gets_capped_limits() {
        let p = Principal {
            org_id: Uuid::nil(),
            project: "p".into(),
            key_id: Uuid::nil(),
            key_hash: [0; 32],
            scopes: Scopes::parse(&["deploy_graph"]).unwrap(),
            tier: Tier::Student,
        };
        assert!(matches!(
            p.require(Scope::DeployGraph),
            Err(DomainError::Forbidden(_))
        ));
        let full = Principal {
            tier: Tier::Full,
            ..p
        };
        assert!(full.require(Scope::DeployGraph).is_ok());
        assert!(full.require(Scope::InvokeLlm).is_err());
        let pol = Policy::default();
        assert_eq!(pol.key_rpm(Tier::Student, None), Some(20));
        assert_eq!(pol.key_rpm(Tier::Student, Some(500)), Some(20));
        assert_eq!(pol.key_rpm(Tier::Student, Some(5)), Some(5));
        assert_eq!(pol.key_rpm(Tier::Full, Some(500)), Some(500));
        assert!(pol.allows_model(Tier::Student, "gpt-4o-mini"));
        assert!(!pol.allows_model(Tier::Student, "gpt-4o"));
        assert!(pol.allows_model(Tier::Full, "gpt-4o"));
    }

    #[test]
    fn access_tokens_verify_only_with_audience_kind_and_signature() {
        let jwt = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let key = db::KeyRow {
            api_key_id: Uuid::new_v4(),
            organization_id: Uuid::new_v4(),
            slug: "proj".into(),
            tier: Some("student".into()),
            scopes: vec!["invoke_llm".into()],
            key_hash: vec![7; 32],
        };
        let s = Scopes::parse(&["invoke_llm"]).unwrap();
        let t = sign(&jwt, ACCESS, &key, s, ACCESS_TTL).unwrap();
        assert!(looks_like_jwt(&t));
        let p = verify_access(&jwt, &t).unwrap();
        assert_eq!(
            (p.key_id, p.key_hash, p.scopes, p.tier),
            (key.api_key_id, [7; 32], s, Tier::Student)
        );
        let r = sign(&jwt, REFRESH, &key, s, ACCESS_TTL).unwrap();
        assert!(
            verify_access(&jwt, &r).is_err(),
            "a refresh token is no access token"
        );
        let other = Jwt::new(b"another-secret-another-secret-00");
        assert!(verify_access(&other, &t).is_err());
        assert!(!looks_like_jwt("bx_live_0123"));
        let py = jwt
            .sign(&serde_json::json!({"aud": "pytake", "exp": i64::MAX / 2}))
            .unwrap();
        assert!(verify_access(&jwt, &py).is_err());
    }
}
