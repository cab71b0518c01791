//! Secrets at rest: AES-256-GCM with a key from `CATRACA_SECRET_KEY` (64 hex characters).
//! Sealed values are `nonce (12 bytes) || ciphertext+tag`; nothing here is ever logged.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

/// Encrypts and decrypts stored secrets.
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl SecretBox {
    /// From 64 hex characters (32 bytes).
    pub fn from_hex(key: &str) -> Option<Self> {
        let mut k = [0u8; 32];
        hex::decode_to_slice(key.trim(), &mut k).ok()?;
        Some(SecretBox {
            cipher: Aes256Gcm::new_from_slice(&k).ok()?,
        })
    }

    /// From `CATRACA_SECRET_KEY`, if set and valid (an invalid one is logged, by name only).
    pub fn from_env() -> Option<Self> {
        let v = std::env::var("CATRACA_SECRET_KEY").ok()?;
        let b = Self::from_hex(&v);
        if b.is_none() {
            tracing::error!(
                "CATRACA_SECRET_KEY must be 64 hex characters; secrets cannot be stored"
            );
        }
        b
    }

    /// Encrypt with a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .ok()?;
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Some(out)
    }

    /// Decrypt; `None` if the value was altered or the key is wrong.
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 12 {
            return None;
        }
        let (nonce, ct) = sealed.split_at(12);
        self.cipher.decrypt(Nonce::from_slice(nonce), ct).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let b = SecretBox::from_hex(&"ab".repeat(32)).unwrap();
        let s = b.seal(b"webhook_secret_key").unwrap();
        assert!(!s.windows(6).any(|w| w == b"secret"), "plaintext visible");
        assert_eq!(b.open(&s).unwrap(), b"webhook_secret_key");
        let mut t = s.clone();
        t[20] ^= 1;
        assert!(b.open(&t).is_none());
        let other = SecretBox::from_hex(&"cd".repeat(32)).unwrap();
        assert!(other.open(&s).is_none());
        assert!(SecretBox::from_hex("short").is_none());
    }
}
