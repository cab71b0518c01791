//! PyTake's accounts (issue 15): registration with an organization, login, rotating refresh
//! tokens with a grace rule, logout, password reset, who a caller is and what their role
//! allows. Passwords, access tokens, one-time tokens and the mail outbox are the ones of
//! [`super::accounts`]; what is PyTake's own is the refresh token:
//!
//! * a JWT signed with the admin app's key, audience [`AUDIENCE`], so `POST
//!   /api/v1/auth/refresh` (shared with bradax) can tell whose token it holds ([`audience`]);
//! * stored as SHA-256 of its text, in families (one login each), rotated with grace by the
//!   rule every contract shares ([`super::refresh`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::accounts::{self, Email, Jwt, Password, token_hash};
use super::error::{DomainError, Entity, Unauthorized};
use super::roles::{self, Action, PyTakeRole, Role};
use crate::store::pytake_auth as db;

/// Audience of PyTake's refresh tokens.
pub const AUDIENCE: &str = "pytake";
/// Refresh token lifetime (30 days, as the admin app's).
pub const REFRESH_TTL: Duration = accounts::REFRESH_TTL;
/// Longest name or organization name, characters.
pub const MAX_NAME: usize = 200;

/// Claims of a PyTake refresh token.
#[derive(Debug, Serialize, Deserialize)]
struct RefreshClaims {
    sub: Uuid,
    org: Uuid,
    aud: String,
    iat: i64,
    exp: i64,
    /// The user's token generation when issued (a password change ends the family).
    r#gen: i32,
    /// Random: two tokens of one second never share a text.
    jti: String,
}

/// Only the audience, to dispatch on.
#[derive(Deserialize)]
struct AudienceOnly {
    #[serde(default)]
    aud: Option<serde_json::Value>,
}

/// The audience of a refresh token signed by this app and not expired (`None`: forged,
/// expired, or without a single-string audience, such as an access token).
pub fn audience(jwt: &Jwt, token: &str) -> Option<String> {
    match jwt.verify_claims::<AudienceOnly>(token).ok()?.aud? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    }
}

/// The person behind a PyTake session, as `me` shows them.
#[derive(Debug, Clone)]
pub struct Me {
    /// User.
    pub user_id: Uuid,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// Organization the session acts in.
    pub organization_id: Uuid,
    /// PyTake role there.
    pub role: PyTakeRole,
    /// Registered.
    pub created_at: time::OffsetDateTime,
}

/// Tokens of a login, register or refresh.
#[derive(Debug)]
pub struct Tokens {
    /// Access JWT (15 min, the admin app's).
    pub access_token: String,
    /// PyTake refresh JWT (shown once).
    pub refresh_token: String,
    /// Who.
    pub user: Me,
}

/// An authenticated PyTake caller in the organization this request acts in.
#[derive(Debug, Clone)]
pub struct Actor {
    /// User.
    pub user_id: Uuid,
    /// Organization every query of the request is scoped to.
    pub organization_id: Uuid,
    /// The role checked against the matrix.
    pub role: PyTakeRole,
}

/// The one check: whether `actor` may do `action` ([`roles::allows`]).
pub fn authorize(actor: &Actor, action: Action) -> Result<(), DomainError> {
    if roles::allows(actor.role.acting(), action) {
        Ok(())
    } else {
        Err(DomainError::Forbidden("role"))
    }
}

/// A name or organization name: trimmed, 1 to [`MAX_NAME`] characters.
fn name(field: &'static str, raw: &str) -> Result<String, DomainError> {
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > MAX_NAME {
        return Err(DomainError::invalid(field, "1 to 200 characters"));
    }
    Ok(n.to_string())
}

/// Who a Bearer access token is, in the organization `x_org` names when given: a
/// `super_admin` may name any organization (404 when there is none), anyone else only their
/// token's own (else forbidden).
pub async fn authenticate(
    pool: &PgPool,
    jwt: &Jwt,
    token: &str,
    x_org: Option<Uuid>,
) -> Result<Actor, DomainError> {
    let who = accounts::authenticate(pool, jwt, token).await?;
    let user = db::user(pool, who.user_id)
        .await?
        .ok_or(DomainError::Unauthorized(Unauthorized::BadToken))?;
    let role = PyTakeRole::of(Role::parse(&who.role)?, user.super_admin);
    let org = match x_org {
        None => who.organization_id,
        Some(o) if o == who.organization_id => o,
        Some(o) if role == PyTakeRole::SuperAdmin => {
            if crate::store::orgs::get_org(pool, o).await?.is_none() {
                return Err(DomainError::NotFound(Entity::Organization));
            }
            o
        }
        Some(_) => return Err(DomainError::Forbidden("organization")),
    };
    Ok(Actor {
        user_id: who.user_id,
        organization_id: org,
        role,
    })
}

/// What `me` answers for `actor`.
pub async fn me(pool: &PgPool, actor: &Actor) -> Result<Me, DomainError> {
    let u = db::user(pool, actor.user_id)
        .await?
        .ok_or(DomainError::Unauthorized(Unauthorized::BadToken))?;
    Ok(Me {
        user_id: u.user_id,
        email: u.email,
        name: u.name,
        organization_id: actor.organization_id,
        role: actor.role,
        created_at: u.created_at,
    })
}

/// Issue an access token and a refresh token of `family` (after `parent`).
async fn issue(
    pool: &PgPool,
    jwt: &Jwt,
    user: Uuid,
    org: Uuid,
    family: Uuid,
    parent: Option<Uuid>,
) -> Result<Tokens, DomainError> {
    let generation = crate::store::accounts::token_generation(pool, user)
        .await?
        .ok_or(DomainError::Unauthorized(Unauthorized::BadToken))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let refresh = jwt.sign(&RefreshClaims {
        sub: user,
        org,
        aud: AUDIENCE.into(),
        iat: now,
        exp: now + REFRESH_TTL.as_secs() as i64,
        r#gen: generation,
        jti: accounts::random_token(),
    })?;
    // who they are first: a user who left the organization gets no new token
    let access_token = jwt.issue(user, org, generation)?;
    let actor = authenticate(pool, jwt, &access_token, None).await?;
    super::refresh::store(
        pool,
        family,
        parent,
        super::refresh::Owner::User(user),
        org,
        &refresh,
        REFRESH_TTL,
    )
    .await?;
    Ok(Tokens {
        access_token,
        refresh_token: refresh,
        user: me(pool, &actor).await?,
    })
}

/// Register a person with a new organization, of which they are the owner (PyTake's
/// `org_admin`), and start their session. Every field is checked before anything is written.
pub async fn register(
    pool: &PgPool,
    jwt: &Jwt,
    email: &str,
    password: &str,
    full_name: &str,
    organization_name: &str,
) -> Result<Tokens, DomainError> {
    let email = Email::parse(email)?;
    let password = Password::parse(password)?;
    let full_name = name("name", full_name)?;
    let org_name = name("organization_name", organization_name)?;
    let (user, org) =
        accounts::register_named(pool, &email, &password, &full_name, &org_name, "team").await?;
    issue(pool, jwt, user, org, Uuid::new_v4(), None).await
}

/// Check credentials (the admin app's throttled login) and start a session.
pub async fn login(
    pool: &PgPool,
    jwt: &Jwt,
    email: &str,
    password: &str,
    client: Option<std::net::IpAddr>,
) -> Result<Tokens, DomainError> {
    let (user, org) = accounts::login(pool, email, password, client).await?;
    issue(pool, jwt, user, org, Uuid::new_v4(), None).await
}

/// Exchange a PyTake refresh token (see the module's rotation rule). A token whose user
/// changed password since, or left the organization, is refused.
pub async fn refresh(pool: &PgPool, jwt: &Jwt, token: &str) -> Result<Tokens, DomainError> {
    let claims: RefreshClaims = jwt.verify_claims(token)?;
    if claims.aud != AUDIENCE {
        return Err(Unauthorized::BadToken.into());
    }
    let row = super::refresh::exchange(pool, AUDIENCE, token).await?;
    let user = row.user_id.ok_or(Unauthorized::BadToken)?;
    let current = crate::store::accounts::token_generation(pool, user).await?;
    if current != Some(claims.r#gen) {
        super::refresh::revoke_family(pool, row.family_id).await?;
        return Err(Unauthorized::BadToken.into());
    }
    issue(
        pool,
        jwt,
        user,
        row.organization_id,
        row.family_id,
        Some(row.rotating_refresh_token_id),
    )
    .await
}

/// End sessions of `actor`: the family of `refresh` when given (it must be the caller's
/// PyTake refresh token), else every PyTake refresh token of the caller. Access tokens
/// already issued live out their 15 minutes.
pub async fn logout(
    pool: &PgPool,
    jwt: &Jwt,
    actor: &Actor,
    refresh: Option<&str>,
) -> Result<(), DomainError> {
    match refresh {
        Some(t) => {
            let claims: RefreshClaims = jwt.verify_claims(t)?;
            if claims.aud != AUDIENCE
                || claims.sub != actor.user_id
                || !db::revoke_family_of(pool, actor.user_id, &token_hash(t)).await?
            {
                return Err(Unauthorized::BadToken.into());
            }
        }
        None => db::revoke_user(pool, actor.user_id).await?,
    }
    Ok(())
}

/// Queue a reset code for `email` when it is registered; the same outcome either way.
pub async fn forgot_password(pool: &PgPool, email: &str) -> Result<(), DomainError> {
    let email = Email::parse(email)?;
    accounts::forgot_password(
        pool,
        email.as_str(),
        "PyTake: redefinição de senha",
        "Use este código para redefinir sua senha: ",
    )
    .await
}

/// Set a new password with a reset code: every session of the user ends (their PyTake refresh
/// families and every access token). The password is checked before the code is spent.
pub async fn reset_password(
    pool: &PgPool,
    token: &str,
    new_password: &str,
) -> Result<(), DomainError> {
    let password = Password::parse(new_password)?;
    if token.is_empty() || token.len() > 512 {
        return Err(DomainError::invalid("token", "invalid or expired"));
    }
    let user = accounts::consume_one_time(pool, token, accounts::Purpose::ResetPassword)
        .await
        .map_err(|e| match e {
            DomainError::Unauthorized(_) => DomainError::invalid("token", "invalid or expired"),
            e => e,
        })?;
    accounts::set_password(pool, user, &password).await?;
    db::revoke_user(pool, user).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_is_read_only_from_tokens_this_app_signed() {
        let jwt = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let signed = |aud: serde_json::Value| {
            jwt.sign(&serde_json::json!({"sub": "x", "exp": now + 60, "aud": aud}))
                .unwrap()
        };
        assert_eq!(
            audience(&jwt, &signed("pytake".into())).as_deref(),
            Some("pytake")
        );
        assert_eq!(
            audience(&jwt, &signed("bradax".into())).as_deref(),
            Some("bradax")
        );
        assert_eq!(audience(&jwt, &signed(serde_json::json!(["pytake"]))), None);
        let access = jwt.issue(Uuid::nil(), Uuid::nil(), 0).unwrap();
        assert_eq!(audience(&jwt, &access), None, "access tokens have none");
        let other = Jwt::new(b"another-secret-another-secret-00");
        assert_eq!(audience(&other, &signed("pytake".into())), None, "forged");
        let expired = jwt
            .sign(&serde_json::json!({"exp": now - 600, "aud": "pytake"}))
            .unwrap();
        assert_eq!(audience(&jwt, &expired), None);
    }

    #[test]
    fn the_one_check_follows_the_matrix() {
        let actor = |role| Actor {
            user_id: Uuid::nil(),
            organization_id: Uuid::nil(),
            role,
        };
        assert!(authorize(&actor(PyTakeRole::Viewer), Action::Read).is_ok());
        assert!(matches!(
            authorize(&actor(PyTakeRole::Viewer), Action::ReadSecretValues),
            Err(DomainError::Forbidden(_))
        ));
        assert!(authorize(&actor(PyTakeRole::Agent), Action::SendWhatsApp).is_ok());
        assert!(authorize(&actor(PyTakeRole::Agent), Action::ManageContent).is_err());
        assert!(authorize(&actor(PyTakeRole::SuperAdmin), Action::ManageMembers).is_ok());
    }
}
