//! Accounts: people's credentials (argon2id passwords, short-lived JWT access tokens, rotating
//! refresh tokens with reuse detection), the one email and password rule, registration, login,
//! one-time tokens (reset, verification), profiles, and who a bearer token is. Surfaces call
//! these and only translate; the statements are in `store::accounts`.

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::error::{Conflict, DomainError, Unauthorized};
use crate::store::accounts as db;

/// Access token lifetime.
pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// Refresh token lifetime.
pub const REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Hash a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, DomainError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| DomainError::internal("password hashing failed", e))
}

/// Check a password against a PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// 32 random bytes from the OS generator, base64url: refresh tokens, reset tokens.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// JWT claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// Organization the session acts in.
    pub org: Uuid,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// The user's token generation when issued (a password change ends older tokens).
    #[serde(default)]
    pub r#gen: i32,
}

/// HS256 signing keys.
pub struct Jwt {
    enc: EncodingKey,
    dec: DecodingKey,
}

impl Jwt {
    /// Keys from a secret (env `CATRACA_JWT_SECRET`, at least 32 bytes).
    pub fn new(secret: &[u8]) -> Self {
        Jwt {
            enc: EncodingKey::from_secret(secret),
            dec: DecodingKey::from_secret(secret),
        }
    }

    /// A fresh access token of token generation `generation`.
    pub fn issue(&self, user: Uuid, org: Uuid, generation: i32) -> Result<String, DomainError> {
        self.issue_ttl(user, org, generation, ACCESS_TTL)
    }

    /// An access token with its own lifetime (contracts without refresh tokens).
    pub fn issue_ttl(
        &self,
        user: Uuid,
        org: Uuid,
        generation: i32,
        ttl: Duration,
    ) -> Result<String, DomainError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user,
            org,
            iat: now,
            exp: now + ttl.as_secs() as i64,
            r#gen: generation,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.enc)
            .map_err(|e| DomainError::internal("token signing failed", e))
    }

    /// Sign any claims with these keys (contracts' own tokens, e.g. PyTake's refresh tokens,
    /// which carry an audience so no surface mistakes them for another's).
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, DomainError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.enc)
            .map_err(|e| DomainError::internal("token signing failed", e))
    }

    /// Verify signature and expiry of a token signed by [`Jwt::sign`]; the audience is left to
    /// the caller (who dispatches on it).
    pub fn verify_claims<C: serde::de::DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<C, DomainError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 5;
        v.validate_aud = false;
        jsonwebtoken::decode::<C>(token, &self.dec, &v)
            .map(|d| d.claims)
            .map_err(|_| Unauthorized::BadToken.into())
    }

    /// Verify signature and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, DomainError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &self.dec, &v)
            .map(|d| d.claims)
            .map_err(|_| Unauthorized::BadToken.into())
    }
}

/// Access and refresh token of one login.
pub struct Session {
    /// JWT.
    pub access_token: String,
    /// Opaque refresh token (shown once).
    pub refresh_token: String,
    /// User.
    pub user_id: Uuid,
    /// Organization.
    pub organization_id: Uuid,
}

/// Start a new session (a new refresh family).
pub async fn start_session(
    pool: &PgPool,
    jwt: &Jwt,
    user_id: Uuid,
    organization_id: Uuid,
) -> Result<Session, DomainError> {
    issue_in_family(pool, jwt, user_id, organization_id, Uuid::new_v4()).await
}

async fn issue_in_family(
    pool: &PgPool,
    jwt: &Jwt,
    user_id: Uuid,
    organization_id: Uuid,
    family: Uuid,
) -> Result<Session, DomainError> {
    let generation = db::token_generation(pool, user_id)
        .await?
        .ok_or(DomainError::Unauthorized(Unauthorized::BadToken))?;
    let refresh = random_token();
    db::insert_refresh_token(
        pool,
        family,
        user_id,
        organization_id,
        &token_hash(&refresh),
        REFRESH_TTL.as_secs() as f64,
    )
    .await?;
    Ok(Session {
        access_token: jwt.issue(user_id, organization_id, generation)?,
        refresh_token: refresh,
        user_id,
        organization_id,
    })
}

/// Exchange a refresh token for a new pair. A token already used revokes its family.
pub async fn rotate(pool: &PgPool, jwt: &Jwt, refresh: &str) -> Result<Session, DomainError> {
    let hash = token_hash(refresh);
    if let Some(r) = db::use_refresh_token(pool, &hash).await? {
        return issue_in_family(pool, jwt, r.user_id, r.organization_id, r.family_id).await;
    }
    // not usable: if it was used before, someone replayed it; end every session of the family
    if let Some(family) = db::spent_refresh_family(pool, &hash).await? {
        db::revoke_family(pool, family).await?;
        tracing::warn!(%family, "refresh token reuse; family revoked");
        return Err(Unauthorized::Reused.into());
    }
    Err(Unauthorized::BadToken.into())
}

/// End the session of this refresh token (its whole family).
pub async fn logout(pool: &PgPool, refresh: &str) -> Result<(), DomainError> {
    db::revoke_family_of(pool, &token_hash(refresh)).await?;
    Ok(())
}

/// Create a user with their own organization of `org_kind` (as owner), and audit it.
/// Returns (user_id, organization_id).
pub async fn register(
    pool: &PgPool,
    email: &Email,
    password: &Password,
    name: &str,
    org_kind: &str,
) -> Result<(Uuid, Uuid), DomainError> {
    register_named(pool, email, password, name, name, org_kind).await
}

/// [`register`], with the organization named `org_name` (PyTake's `organization_name`).
pub async fn register_named(
    pool: &PgPool,
    email: &Email,
    password: &Password,
    name: &str,
    org_name: &str,
    org_kind: &str,
) -> Result<(Uuid, Uuid), DomainError> {
    let phc = hash_password(password.as_str())?;
    let mut tx = pool.begin().await?;
    let user = match db::insert_user(&mut *tx, email.as_str(), name, &phc).await {
        Ok(u) => u,
        Err(sqlx::Error::Database(e)) if e.constraint() == Some(db::USER_EMAIL_KEY) => {
            return Err(Conflict::EmailTaken.into());
        }
        Err(e) => return Err(e.into()),
    };
    let org = db::insert_organization(&mut *tx, org_name, org_kind).await?;
    db::insert_membership(&mut *tx, org, user, "owner").await?;
    crate::store::audit::insert(&mut *tx, org, Some(user), "user.register", None).await?;
    tx.commit().await?;
    Ok((user, org))
}

/// Failed logins allowed per account (the email as typed) in one window.
pub const LOGIN_FAILURES_PER_ACCOUNT: i32 = 10;
/// Failed logins allowed per client IP in one window.
pub const LOGIN_FAILURES_PER_IP: i32 = 100;
/// The throttle's window.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Check credentials; returns (user_id, first organization_id). Spends the same hashing time
/// for an unknown email as for a wrong password, and throttles the same way for both: after
/// [`LOGIN_FAILURES_PER_ACCOUNT`] failures for one email, or [`LOGIN_FAILURES_PER_IP`] from one
/// client address, within [`LOGIN_WINDOW`], every attempt is refused with
/// [`DomainError::Throttled`] (and not checked) until the window ends. A success clears the
/// account's count.
pub async fn login(
    pool: &PgPool,
    email: &str,
    password: &str,
    client: Option<std::net::IpAddr>,
) -> Result<(Uuid, Uuid), DomainError> {
    let window = LOGIN_WINDOW.as_secs_f64();
    let acct = format!("acct:{}", email.trim().to_lowercase());
    let ip = client.map(|a| format!("ip:{a}"));
    for (key, max) in [
        (Some(&acct), LOGIN_FAILURES_PER_ACCOUNT),
        (ip.as_ref(), LOGIN_FAILURES_PER_IP),
    ] {
        if let Some(key) = key
            && let Some((failures, left)) = db::throttle_failures(pool, key, window).await?
            && failures >= max
        {
            return Err(DomainError::Throttled {
                retry_after_secs: left.ceil().max(1.0) as u64,
            });
        }
    }
    let outcome = match db::login_row(pool, email).await? {
        Some(r) if verify_password(password, &r.password_hash) => {
            r.organization_id.map(|o| (r.user_id, o))
        }
        Some(_) => None,
        None => {
            // equalise timing with a real verification
            let _ = verify_password(password, DUMMY_PHC);
            None
        }
    };
    match outcome {
        Some(ok) => {
            db::throttle_clear(pool, &acct).await?;
            Ok(ok)
        }
        None => {
            db::throttle_fail(pool, &acct, window).await?;
            if let Some(ip) = &ip {
                db::throttle_fail(pool, ip, window).await?;
            }
            Err(Unauthorized::BadCredentials.into())
        }
    }
}

/// What a one-time token is for.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    /// Password reset (1 hour).
    ResetPassword,
    /// Email verification (7 days).
    VerifyEmail,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::ResetPassword => "reset_password",
            Purpose::VerifyEmail => "verify_email",
        }
    }

    fn ttl(self) -> Duration {
        match self {
            Purpose::ResetPassword => Duration::from_secs(3600),
            Purpose::VerifyEmail => Duration::from_secs(7 * 86_400),
        }
    }
}

/// Issue a single-use token for `user` and queue the email that carries it.
pub async fn send_one_time(
    pool: &PgPool,
    user: Uuid,
    purpose: Purpose,
    to: &str,
    subject: &str,
    body_prefix: &str,
) -> Result<(), DomainError> {
    let token = random_token();
    let mut tx = pool.begin().await?;
    db::insert_one_time(
        &mut *tx,
        &token_hash(&token),
        user,
        purpose.as_str(),
        purpose.ttl().as_secs() as f64,
    )
    .await?;
    db::queue_email(
        &mut *tx,
        to,
        purpose.as_str(),
        subject,
        &format!("{body_prefix}{token}"),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Use a one-time token: valid once, before it expires. Returns its user.
pub async fn consume_one_time(
    pool: &PgPool,
    token: &str,
    purpose: Purpose,
) -> Result<Uuid, DomainError> {
    db::consume_one_time(pool, &token_hash(token), purpose.as_str())
        .await?
        .ok_or(Unauthorized::BadToken.into())
}

/// Set a new password and end every session of the user: refresh tokens are revoked and the
/// token generation moves on, so access tokens already issued are refused at once.
pub async fn set_password(
    pool: &PgPool,
    user: Uuid,
    password: &Password,
) -> Result<(), DomainError> {
    let phc = hash_password(password.as_str())?;
    let mut tx = pool.begin().await?;
    db::set_password_hash(&mut *tx, user, &phc).await?;
    db::revoke_user_sessions(&mut *tx, user).await?;
    // the password itself never reaches the log, not even hashed
    crate::store::audit::insert_change(
        &mut *tx,
        None,
        Some(user),
        "user.password",
        Some(&user.to_string()),
        None,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A person with a valid access token who is still a member of the token's organization.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// User.
    pub user_id: Uuid,
    /// Organization every query of this request is scoped to.
    pub organization_id: Uuid,
    /// Role in that organization.
    pub role: String,
}

impl AuthUser {
    /// Owners and admins manage keys, members and plans.
    pub fn is_admin(&self) -> bool {
        self.role == "owner" || self.role == "admin"
    }
}

/// An access token for contracts without refresh tokens (SabIA's 24 h sessions), of the
/// user's current token generation.
pub async fn issue_access(
    pool: &PgPool,
    jwt: &Jwt,
    user: Uuid,
    org: Uuid,
    ttl: Duration,
) -> Result<String, DomainError> {
    let generation = db::token_generation(pool, user)
        .await?
        .ok_or(DomainError::Unauthorized(Unauthorized::BadToken))?;
    jwt.issue_ttl(user, org, generation, ttl)
}

/// Who a bearer access token is. Membership and token generation are checked on every
/// request, so a removal or a password change takes effect before the token expires.
pub async fn authenticate(pool: &PgPool, jwt: &Jwt, token: &str) -> Result<AuthUser, DomainError> {
    let claims = jwt.verify(token)?;
    let check = db::session_check(pool, claims.sub, claims.org)
        .await?
        .filter(|c| c.token_generation == claims.r#gen)
        .ok_or(DomainError::Unauthorized(Unauthorized::BadToken))?;
    Ok(AuthUser {
        user_id: claims.sub,
        organization_id: claims.org,
        role: check.role,
    })
}

/// An email address that passed the one rule: trimmed, at most 254 bytes, one `@` with a
/// non-empty local part and a dotted domain, no whitespace or control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parse (trimming first).
    pub fn parse(raw: &str) -> Result<Email, DomainError> {
        let e = raw.trim();
        let ok = e.len() <= 254
            && !e.chars().any(|c| c.is_whitespace() || c.is_control())
            && e.split_once('@').is_some_and(|(l, d)| {
                !l.is_empty()
                    && !d.contains('@')
                    && d.contains('.')
                    && !d.starts_with('.')
                    && !d.ends_with('.')
            });
        if ok {
            Ok(Email(e.to_string()))
        } else {
            Err(DomainError::invalid("email", "not a valid address"))
        }
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that passed the one rule: 8 to 256 characters, no NUL.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Fewest characters.
    pub const MIN: usize = 8;
    /// Most characters (argon2 hashes any length; a cap keeps a request's cost bounded).
    pub const MAX: usize = 256;

    /// Parse.
    pub fn parse(raw: &str) -> Result<Password, DomainError> {
        let n = raw.chars().count();
        if n < Self::MIN {
            return Err(DomainError::invalid("password", "at least 8 characters"));
        }
        if n > Self::MAX || raw.contains('\0') {
            return Err(DomainError::invalid(
                "password",
                "at most 256 characters, no NUL",
            ));
        }
        Ok(Password(raw.to_string()))
    }

    /// The password.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A user's profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// User.
    pub user_id: Uuid,
    /// The organization of the session.
    pub organization_id: Uuid,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// Company.
    pub company: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Registration time.
    pub created_at: time::OffsetDateTime,
}

/// The profile of `user` as seen in `org`.
pub async fn profile(pool: &PgPool, user: Uuid, org: Uuid) -> Result<Profile, DomainError> {
    let r = db::profile(pool, user)
        .await?
        .ok_or(DomainError::NotFound(super::error::Entity::User))?;
    Ok(Profile {
        user_id: user,
        organization_id: org,
        email: r.email,
        name: r.name,
        company: r.company,
        phone: r.phone,
        created_at: r.created_at,
    })
}

/// Profile fields to change; `None` keeps a field.
#[derive(Debug, Default)]
pub struct ProfileChange {
    /// New name (1 to 200 characters after trimming).
    pub name: Option<String>,
    /// New company (at most 200 bytes).
    pub company: Option<String>,
    /// New phone (at most 32 bytes).
    pub phone: Option<String>,
}

/// Change the caller's profile and return it.
pub async fn update_profile(
    pool: &PgPool,
    who: &AuthUser,
    change: ProfileChange,
) -> Result<Profile, DomainError> {
    let name = change.name.as_deref().map(str::trim);
    if let Some(n) = name
        && (n.is_empty() || n.len() > 200)
    {
        return Err(DomainError::invalid("name", "1 to 200 characters"));
    }
    if change.company.as_ref().is_some_and(|c| c.len() > 200) {
        return Err(DomainError::invalid("company", "at most 200 characters"));
    }
    if change.phone.as_ref().is_some_and(|p| p.len() > 32) {
        return Err(DomainError::invalid("phone", "at most 32 characters"));
    }
    let before = profile(pool, who.user_id, who.organization_id).await?;
    db::update_profile(
        pool,
        who.user_id,
        name,
        change.company.as_deref(),
        change.phone.as_deref(),
    )
    .await?;
    let after = profile(pool, who.user_id, who.organization_id).await?;
    let view =
        |p: &Profile| serde_json::json!({"name": p.name, "company": p.company, "phone": p.phone});
    super::audit::change(
        pool,
        who.organization_id,
        Some(who.user_id),
        "user.profile",
        &who.user_id.to_string(),
        Some(view(&before)),
        Some(view(&after)),
    )
    .await?;
    Ok(after)
}

/// A user the operator creates in an organization.
#[derive(Debug)]
pub struct NewUser {
    /// Email.
    pub email: String,
    /// Name, 1 to 200 characters.
    pub name: String,
    /// Password; without one the user gets an invitation mail to set it.
    pub password: Option<String>,
    /// The organization they join.
    pub organization_id: Uuid,
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
}

pub use crate::store::accounts::UserRow as UserView;

/// Create a user in an organization (audited as the operator's). Without a password an
/// invitation is queued as mail: a single-use token, valid 7 days, that SabIA's
/// `reset-password` route accepts to set the password.
pub async fn create_user(pool: &PgPool, new: NewUser) -> Result<Vec<UserView>, DomainError> {
    create_referred_user(pool, new, None).await
}

/// [`create_user`], invited with `referral_code` when given (see `domain::referrals`): a
/// malformed or unknown code is invalid input and nothing is created.
pub async fn create_referred_user(
    pool: &PgPool,
    new: NewUser,
    referral_code: Option<&str>,
) -> Result<Vec<UserView>, DomainError> {
    let email = Email::parse(&new.email)?;
    let referral = referral_code
        .map(super::referrals::Code::parse)
        .transpose()?;
    let name = new.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(DomainError::invalid("name", "1 to 200 characters"));
    }
    // the domain's names, or PyTake's (mapped onto them; `super_admin` also sets the flag)
    let (role, super_admin) = match super::roles::Role::parse(&new.role) {
        Ok(r) => (r, false),
        Err(_) => match super::roles::PyTakeRole::parse(&new.role) {
            Ok(p) => (p.membership(), p == super::roles::PyTakeRole::SuperAdmin),
            Err(_) => {
                return Err(DomainError::invalid(
                    "role",
                    "owner, admin, member, viewer, super_admin, org_admin or agent",
                ));
            }
        },
    };
    let password = new.password.as_deref().map(Password::parse).transpose()?;
    // no password: an unusable random one until the invitation is used
    let secret = match &password {
        Some(p) => p.as_str().to_string(),
        None => random_token(),
    };
    let phc = hash_password(&secret)?;
    let mut tx = pool.begin().await?;
    if crate::store::orgs::get_org(&mut *tx, new.organization_id)
        .await?
        .is_none()
    {
        return Err(DomainError::NotFound(super::error::Entity::Organization));
    }
    let referrer = match &referral {
        Some(code) => Some(super::referrals::referrer(&mut *tx, code).await?),
        None => None,
    };
    let user = match db::insert_user(&mut *tx, email.as_str(), name, &phc).await {
        Ok(u) => u,
        Err(sqlx::Error::Database(e)) if e.constraint() == Some(db::USER_EMAIL_KEY) => {
            return Err(Conflict::EmailTaken.into());
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(r) = referrer {
        super::referrals::record(&mut *tx, user, r).await?;
    }
    db::insert_membership(&mut *tx, new.organization_id, user, role.as_str()).await?;
    if super_admin {
        crate::store::pytake_auth::set_super_admin(&mut *tx, user).await?;
    }
    crate::store::audit::insert(
        &mut *tx,
        new.organization_id,
        None,
        "user.create",
        Some(&user.to_string()),
    )
    .await?;
    if password.is_none() {
        let token = random_token();
        db::insert_one_time(
            &mut *tx,
            &token_hash(&token),
            user,
            Purpose::ResetPassword.as_str(),
            Purpose::VerifyEmail.ttl().as_secs() as f64,
        )
        .await?;
        db::queue_email(
            &mut *tx,
            email.as_str(),
            "invitation",
            "Convite",
            &format!("Você foi convidado. Defina sua senha com o código: {token}"),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(db::user_rows(pool, user).await?)
}

/// A user and their memberships.
pub async fn get_user(pool: &PgPool, user: Uuid) -> Result<Vec<UserView>, DomainError> {
    let rows = db::user_rows(pool, user).await?;
    if rows.is_empty() {
        return Err(DomainError::NotFound(super::error::Entity::User));
    }
    Ok(rows)
}

/// An organization's members.
pub async fn members(pool: &PgPool, org: Uuid) -> Result<Vec<UserView>, DomainError> {
    if crate::store::orgs::get_org(pool, org).await?.is_none() {
        return Err(DomainError::NotFound(super::error::Entity::Organization));
    }
    Ok(db::members(pool, org).await?)
}

/// Disable a user: logins refused and every session ended at once (audited).
pub async fn disable_user(pool: &PgPool, user: Uuid) -> Result<Vec<UserView>, DomainError> {
    let mut tx = pool.begin().await?;
    if !db::disable_user(&mut *tx, user).await? {
        return Err(DomainError::NotFound(super::error::Entity::User));
    }
    db::revoke_user_sessions(&mut *tx, user).await?;
    tx.commit().await?;
    let rows = db::user_rows(pool, user).await?;
    for org in rows.iter().filter_map(|r| r.organization_id) {
        crate::store::audit::insert(pool, org, None, "user.disable", Some(&user.to_string()))
            .await?;
    }
    Ok(rows)
}

/// A valid argon2id hash of a random password, verified against for unknown emails.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$7z9QdXtpbC7BGDbcRvbvl6tU1XCGQ2M3kXOfsjvZ7bA";

pub use crate::store::accounts::CardRow as Card;

/// A user as the dashboards show them.
pub async fn card(pool: &PgPool, user: Uuid) -> Result<Card, DomainError> {
    db::card(pool, user)
        .await?
        .ok_or(DomainError::NotFound(super::error::Entity::User))
}

/// Mark the email of the user a verification code belongs to as verified.
pub async fn verify_email(pool: &PgPool, code: &str) -> Result<(), DomainError> {
    let user = consume_one_time(pool, code, Purpose::VerifyEmail).await?;
    db::mark_email_verified(pool, user).await?;
    crate::store::audit::insert_change(
        pool,
        None,
        Some(user),
        "user.verify_email",
        Some(&user.to_string()),
        None,
        None,
    )
    .await?;
    Ok(())
}

/// Mail a password reset code to the account with `email`, if there is one. Says nothing
/// either way, so the caller answers the same whether or not the email is registered.
pub async fn forgot_password(
    pool: &PgPool,
    email: &str,
    subject: &str,
    body_prefix: &str,
) -> Result<(), DomainError> {
    if let Some(u) = db::card_by_email(pool, email).await? {
        send_one_time(
            pool,
            u.user_id,
            Purpose::ResetPassword,
            &u.email,
            subject,
            body_prefix,
        )
        .await?;
    }
    Ok(())
}

/// Phone at most 32 bytes, company at most 200.
pub fn check_contact(phone: Option<&str>, company: Option<&str>) -> Result<(), DomainError> {
    if company.is_some_and(|c| c.len() > 200) {
        return Err(DomainError::invalid("company", "at most 200 characters"));
    }
    if phone.is_some_and(|p| p.len() > 32) {
        return Err(DomainError::invalid("phone", "at most 32 characters"));
    }
    Ok(())
}

/// Set a new user's phone and company, as registration forms give them ([`check_contact`]).
pub async fn set_contact(
    pool: &PgPool,
    user: Uuid,
    phone: Option<&str>,
    company: Option<&str>,
) -> Result<(), DomainError> {
    check_contact(phone, company)?;
    if phone.is_some() || company.is_some() {
        db::update_profile(pool, user, None, company, phone).await?;
    }
    Ok(())
}

pub use crate::store::accounts::UserListRow as UserListed;

/// A page of users, optionally of one organization and whose email contains `email`; and
/// how many match.
pub async fn list_users(
    pool: &PgPool,
    org: Option<Uuid>,
    email: Option<&str>,
    page: super::usage::Page,
) -> Result<(Vec<UserListed>, i64), DomainError> {
    if email.is_some_and(|e| e.is_empty() || e.len() > 254) {
        return Err(DomainError::invalid("email", "1 to 254 characters"));
    }
    Ok(db::list_users(
        pool,
        org,
        email,
        page.per_page,
        (page.page - 1) * page.per_page,
    )
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("senha-forte-123").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("senha-forte-123", &h));
        assert!(!verify_password("senha-errada", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(PasswordHash::new(DUMMY_PHC).is_ok());
    }

    #[test]
    fn one_email_and_password_rule() {
        assert_eq!(
            Email::parse("  ana@x.com.br ").unwrap().as_str(),
            "ana@x.com.br"
        );
        for bad in [
            "",
            "ana",
            "ana@x",
            "@x.com",
            "a b@x.com",
            "ana@x.com.",
            "a\0@x.com",
            "a@b@x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@x.com", "a".repeat(250))).is_err());
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse("çççççççç").is_ok(), "characters, not bytes");
        assert!(Password::parse(&"x".repeat(257)).is_err());
        assert!(Password::parse("12345678\0").is_err());
        assert_eq!(
            format!("{:?}", Password::parse("segredo-123").unwrap()),
            "Password(<redacted>)"
        );
    }

    #[test]
    fn jwt_roundtrip_and_forgery() {
        let j = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let (u, o) = (Uuid::new_v4(), Uuid::new_v4());
        let t = j.issue(u, o, 3).unwrap();
        let c = j.verify(&t).unwrap();
        assert_eq!((c.sub, c.org, c.r#gen), (u, o, 3));
        let other = Jwt::new(b"another-secret-another-secret-xx");
        assert!(other.verify(&t).is_err());
        assert!(j.verify("garbage").is_err());
    }
}
