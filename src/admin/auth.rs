//! People's credentials: argon2id passwords, short-lived JWT access tokens, and rotating
//! refresh tokens with reuse detection. Surfaces (MaxAI, SabIA) call these and only translate.

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

/// Access token lifetime.
pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// Refresh token lifetime.
pub const REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why a credential was refused; the surfaces map these to their own error shapes.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong email or password (never says which).
    #[error("invalid email or password")]
    BadCredentials,
    /// Missing, malformed, expired or forged token.
    #[error("invalid or expired token")]
    BadToken,
    /// A refresh token was used twice: its whole family is revoked.
    #[error("refresh token reuse detected; all sessions of this login were revoked")]
    Reused,
    /// The email is taken.
    #[error("email already registered")]
    EmailTaken,
    /// Database failure (logged, not sent).
    #[error("database error")]
    Db(#[from] sqlx::Error),
    /// Hashing failure (logged, not sent).
    #[error("password hashing failed")]
    Hash,
}

/// Hash a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AuthError::Hash)
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

    /// A fresh access token.
    pub fn issue(&self, user: Uuid, org: Uuid) -> Result<String, AuthError> {
        self.issue_ttl(user, org, ACCESS_TTL)
    }

    /// An access token with its own lifetime (contracts without refresh tokens).
    pub fn issue_ttl(&self, user: Uuid, org: Uuid, ttl: Duration) -> Result<String, AuthError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user,
            org,
            iat: now,
            exp: now + ttl.as_secs() as i64,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.enc)
            .map_err(|_| AuthError::BadToken)
    }

    /// Verify signature and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &self.dec, &v)
            .map(|d| d.claims)
            .map_err(|_| AuthError::BadToken)
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
) -> Result<Session, AuthError> {
    issue_in_family(pool, jwt, user_id, organization_id, Uuid::new_v4()).await
}

async fn issue_in_family(
    pool: &PgPool,
    jwt: &Jwt,
    user_id: Uuid,
    organization_id: Uuid,
    family: Uuid,
) -> Result<Session, AuthError> {
    let refresh = random_token();
    sqlx::query(
        "INSERT INTO refresh_token (family_id, user_id, organization_id, token_hash, expires_at)
         VALUES ($1, $2, $3, $4, now() + $5 * interval '1 second')",
    )
    .bind(family)
    .bind(user_id)
    .bind(organization_id)
    .bind(token_hash(&refresh))
    .bind(REFRESH_TTL.as_secs() as f64)
    .execute(pool)
    .await?;
    Ok(Session {
        access_token: jwt.issue(user_id, organization_id)?,
        refresh_token: refresh,
        user_id,
        organization_id,
    })
}

/// Exchange a refresh token for a new pair. A token already used revokes its family.
pub async fn rotate(pool: &PgPool, jwt: &Jwt, refresh: &str) -> Result<Session, AuthError> {
    let hash = token_hash(refresh);
    let row: Option<(Uuid, Uuid, Uuid)> = sqlx::query_as(
        "UPDATE refresh_token SET used_at = now()
         WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
         RETURNING family_id, user_id, organization_id",
    )
    .bind(&hash)
    .fetch_optional(pool)
    .await?;
    if let Some((family, user, org)) = row {
        return issue_in_family(pool, jwt, user, org, family).await;
    }
    // not usable: if it was used before, someone replayed it; end every session of the family
    let reused: Option<Uuid> = sqlx::query_scalar(
        "SELECT family_id FROM refresh_token WHERE token_hash = $1 AND used_at IS NOT NULL",
    )
    .bind(&hash)
    .fetch_optional(pool)
    .await?;
    if let Some(family) = reused {
        sqlx::query(
            "UPDATE refresh_token SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
        )
        .bind(family)
        .execute(pool)
        .await?;
        tracing::warn!(%family, "refresh token reuse; family revoked");
        return Err(AuthError::Reused);
    }
    Err(AuthError::BadToken)
}

/// End the session of this refresh token (its whole family).
pub async fn logout(pool: &PgPool, refresh: &str) -> Result<(), AuthError> {
    sqlx::query(
        "UPDATE refresh_token SET revoked_at = now()
         WHERE family_id = (SELECT family_id FROM refresh_token WHERE token_hash = $1) AND revoked_at IS NULL",
    )
    .bind(token_hash(refresh))
    .execute(pool)
    .await?;
    Ok(())
}

/// Create a user with their own organization (as owner). Returns (user_id, organization_id).
pub async fn register(
    pool: &PgPool,
    email: &str,
    password: &str,
    name: &str,
    org_kind: &str,
) -> Result<(Uuid, Uuid), AuthError> {
    let phc = hash_password(password)?;
    let mut tx = pool.begin().await?;
    let user: Result<Uuid, sqlx::Error> = sqlx::query_scalar(
        "INSERT INTO app_user (email, name, password_hash) VALUES ($1, $2, $3) RETURNING user_id",
    )
    .bind(email)
    .bind(name)
    .bind(&phc)
    .fetch_one(&mut *tx)
    .await;
    let user = match user {
        Ok(u) => u,
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("app_user_email_key") => {
            return Err(AuthError::EmailTaken);
        }
        Err(e) => return Err(e.into()),
    };
    let org: Uuid = sqlx::query_scalar(
        "INSERT INTO organization (name, kind) VALUES ($1, $2) RETURNING organization_id",
    )
    .bind(name)
    .bind(org_kind)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO membership (organization_id, user_id, role) VALUES ($1, $2, 'owner')")
        .bind(org)
        .bind(user)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO audit_log (organization_id, user_id, action) VALUES ($1, $2, 'user.register')",
    )
    .bind(org)
    .bind(user)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((user, org))
}

/// Check credentials; returns (user_id, first organization_id). Spends the same hashing time
/// for an unknown email as for a wrong password.
pub async fn login(pool: &PgPool, email: &str, password: &str) -> Result<(Uuid, Uuid), AuthError> {
    let row: Option<(Uuid, String, Option<Uuid>)> = sqlx::query_as(
        "SELECT u.user_id, u.password_hash,
                (SELECT organization_id FROM membership m WHERE m.user_id = u.user_id ORDER BY created_at LIMIT 1)
         FROM app_user u WHERE lower(u.email) = lower($1)",
    )
    .bind(email)
    .fetch_optional(pool)
    .await?;
    match row {
        Some((user, phc, Some(org))) if verify_password(password, &phc) => Ok((user, org)),
        Some(_) => Err(AuthError::BadCredentials),
        None => {
            // equalise timing with a real verification
            let _ = verify_password(password, DUMMY_PHC);
            Err(AuthError::BadCredentials)
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
) -> Result<(), AuthError> {
    let token = random_token();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO one_time_token (token_hash, user_id, purpose, expires_at)
         VALUES ($1, $2, $3, now() + $4 * interval '1 second')",
    )
    .bind(token_hash(&token))
    .bind(user)
    .bind(purpose.as_str())
    .bind(purpose.ttl().as_secs() as f64)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO outbox_email (to_address, subject, body) VALUES ($1, $2, $3)")
        .bind(to)
        .bind(subject)
        .bind(format!("{body_prefix}{token}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Use a one-time token: valid once, before it expires. Returns its user.
pub async fn consume_one_time(
    pool: &PgPool,
    token: &str,
    purpose: Purpose,
) -> Result<Uuid, AuthError> {
    sqlx::query_scalar(
        "UPDATE one_time_token SET used_at = now()
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
         RETURNING user_id",
    )
    .bind(token_hash(token))
    .bind(purpose.as_str())
    .fetch_optional(pool)
    .await?
    .ok_or(AuthError::BadToken)
}

/// Set a new password and end every session of the user.
pub async fn set_password(pool: &PgPool, user: Uuid, password: &str) -> Result<(), AuthError> {
    let phc = hash_password(password)?;
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE app_user SET password_hash = $2 WHERE user_id = $1")
        .bind(user)
        .bind(phc)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE refresh_token SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A valid argon2id hash of a random password, verified against for unknown emails.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$7z9QdXtpbC7BGDbcRvbvl6tU1XCGQ2M3kXOfsjvZ7bA";

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
    fn jwt_roundtrip_and_forgery() {
        let j = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let (u, o) = (Uuid::new_v4(), Uuid::new_v4());
        let t = j.issue(u, o).unwrap();
        let c = j.verify(&t).unwrap();
        assert_eq!((c.sub, c.org), (u, o));
        let other = Jwt::new(b"another-secret-another-secret-xx");
        assert!(other.verify(&t).is_err());
        assert!(j.verify("garbage").is_err());
    }
}
