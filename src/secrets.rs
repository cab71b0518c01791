//! Secrets at rest: AES-256-GCM under versioned master keys from the environment.
//!
//! Keys: `CATRACA_SECRET_KEYS=1:<64 hex>,2:<64 hex>` (the highest version seals, every listed
//! version opens), or `CATRACA_SECRET_KEY=<64 hex>` alone, which is version 1. With both set,
//! `CATRACA_SECRET_KEY` is version 1 and must not contradict a `1:` in the list.
//!
//! Sealed formats (both open; nothing here is ever logged):
//! - versioned (written now): `"CK1" || version (u32, big-endian) || nonce (12) || ciphertext+tag`;
//! - legacy (webhook secrets sealed before versions existed): `nonce (12) || ciphertext+tag`,
//!   always under version 1. A blob is read as versioned when it carries the magic and its
//!   version is listed and it decrypts; otherwise as legacy under version 1. A legacy nonce that
//!   happens to start with the magic (odds 2^-24) still opens by the fallback, and the GCM tag
//!   makes a wrong reading fail rather than return garbage.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

const MAGIC: &[u8; 3] = b"CK1";
const HEADER: usize = 3 + 4;
const NONCE: usize = 12;

/// Why a master key setting is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Nothing listed.
    #[error("no key listed")]
    Empty,
    /// An entry is not `<version>:<64 hex>`.
    #[error("entry {0} is not <version>:<64 hex characters>")]
    Entry(usize),
    /// A version is not a whole number from 1.
    #[error("entry {0}: the version must be a whole number from 1 to 2147483647")]
    Version(usize),
    /// A key is not 64 hex characters.
    #[error("entry {0}: the key must be 64 hex characters (32 bytes)")]
    Key(usize),
    /// A version is listed twice.
    #[error("version {0} is listed twice")]
    Duplicate(u32),
    /// `CATRACA_SECRET_KEY` is not 64 hex characters.
    #[error("CATRACA_SECRET_KEY must be 64 hex characters (32 bytes)")]
    Single,
    /// `CATRACA_SECRET_KEY` and the `1:` of `CATRACA_SECRET_KEYS` differ.
    #[error("CATRACA_SECRET_KEY differs from version 1 in CATRACA_SECRET_KEYS")]
    Contradiction,
}

/// Encrypts and decrypts stored secrets under the listed master key versions.
pub struct SecretBox {
    keys: BTreeMap<u32, Aes256Gcm>,
    raw_v1: Option<[u8; 32]>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn key_bytes(hex_key: &str) -> Option<[u8; 32]> {
    let mut k = [0u8; 32];
    let h = hex_key.trim();
    if h.len() != 64 {
        return None;
    }
    hex::decode_to_slice(h, &mut k).ok()?;
    Some(k)
}

impl SecretBox {
    /// From 64 hex characters (32 bytes): version 1 only.
    pub fn from_hex(key: &str) -> Option<Self> {
        let k = key_bytes(key)?;
        let mut keys = BTreeMap::new();
        keys.insert(1, Aes256Gcm::new_from_slice(&k).ok()?);
        Some(SecretBox {
            keys,
            raw_v1: Some(k),
        })
    }

    /// From a `CATRACA_SECRET_KEYS` value: `1:<64 hex>,2:<64 hex>` (spaces around entries are
    /// ignored; the order does not matter).
    pub fn parse_versions(list: &str) -> Result<Self, KeyError> {
        let mut keys = BTreeMap::new();
        let mut raw_v1 = None;
        for (i, entry) in list.split(',').enumerate() {
            let n = i + 1;
            let entry = entry.trim();
            if entry.is_empty() {
                if list.trim().is_empty() {
                    return Err(KeyError::Empty);
                }
                return Err(KeyError::Entry(n));
            }
            let (v, k) = entry.split_once(':').ok_or(KeyError::Entry(n))?;
            let v = v.trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(KeyError::Version(n));
            }
            let v: u32 = v.parse().map_err(|_| KeyError::Version(n))?;
            if v == 0 || v > i32::MAX as u32 {
                return Err(KeyError::Version(n));
            }
            let k = key_bytes(k).ok_or(KeyError::Key(n))?;
            let c = Aes256Gcm::new_from_slice(&k).map_err(|_| KeyError::Key(n))?;
            if keys.insert(v, c).is_some() {
                return Err(KeyError::Duplicate(v));
            }
            if v == 1 {
                raw_v1 = Some(k);
            }
        }
        Ok(SecretBox { keys, raw_v1 })
    }

    /// From the two settings' values (what [`SecretBox::from_env`] reads); `Ok(None)` when
    /// neither is set.
    pub fn from_settings(
        list: Option<&str>,
        single: Option<&str>,
    ) -> Result<Option<Self>, KeyError> {
        let single = match single {
            Some(s) => Some(key_bytes(s).ok_or(KeyError::Single)?),
            None => None,
        };
        let Some(list) = list else {
            return Ok(single.and_then(|k| Self::from_hex(&hex::encode(k))));
        };
        let mut b = Self::parse_versions(list)?;
        if let Some(k) = single {
            match b.raw_v1 {
                Some(v1) if v1 != k => return Err(KeyError::Contradiction),
                Some(_) => {}
                None => {
                    let c = Aes256Gcm::new_from_slice(&k).map_err(|_| KeyError::Single)?;
                    b.keys.insert(1, c);
                    b.raw_v1 = Some(k);
                }
            }
        }
        Ok(Some(b))
    }

    /// From `CATRACA_SECRET_KEYS` and/or `CATRACA_SECRET_KEY`, if set and valid (an invalid
    /// setting is logged, by name and reason only, never the key).
    pub fn from_env() -> Option<Self> {
        let list = std::env::var("CATRACA_SECRET_KEYS").ok();
        let single = std::env::var("CATRACA_SECRET_KEY").ok();
        match Self::from_settings(list.as_deref(), single.as_deref()) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "CATRACA_SECRET_KEYS / CATRACA_SECRET_KEY refused; secrets cannot be stored");
                None
            }
        }
    }

    /// The version that seals: the highest listed.
    pub fn current_version(&self) -> u32 {
        self.keys.keys().next_back().copied().unwrap_or(1)
    }

    /// The listed versions, ascending.
    pub fn versions(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    /// Encrypt under the current version with a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8]) -> Option<Vec<u8>> {
        self.seal_bound(plaintext, b"").map(|(_, b)| b)
    }

    /// Encrypt under the current version, binding `aad` (the same `aad` must be given to open);
    /// the version used and the versioned blob.
    pub fn seal_bound(&self, plaintext: &[u8], aad: &[u8]) -> Option<(u32, Vec<u8>)> {
        let (&version, cipher) = self.keys.iter().next_back()?;
        let mut nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .ok()?;
        let mut out = Vec::with_capacity(HEADER + NONCE + ct.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Some((version, out))
    }

    /// Decrypt; `None` if the value was altered, its version is not listed or the key is wrong.
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        self.open_bound(sealed, b"")
    }

    /// Decrypt a blob sealed with `aad`; `None` if anything differs.
    pub fn open_bound(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        self.open_versioned(sealed, aad).map(|(_, p)| p)
    }

    /// Decrypt, and say which version opened it (legacy blobs are version 1).
    pub fn open_versioned(&self, sealed: &[u8], aad: &[u8]) -> Option<(u32, Vec<u8>)> {
        if sealed.len() >= HEADER + NONCE && sealed.starts_with(MAGIC) {
            let mut v = [0u8; 4];
            v.copy_from_slice(&sealed[3..HEADER]);
            let version = u32::from_be_bytes(v);
            if let Some(c) = self.keys.get(&version) {
                let (nonce, ct) = sealed[HEADER..].split_at(NONCE);
                if let Ok(p) = c.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad }) {
                    return Some((version, p));
                }
            }
        }
        // legacy: nonce || ciphertext under version 1
        if sealed.len() < NONCE {
            return None;
        }
        let c = self.keys.get(&1)?;
        let (nonce, ct) = sealed.split_at(NONCE);
        c.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .ok()
            .map(|p| (1, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy_seal(key_hex: &str, plaintext: &[u8]) -> Vec<u8> {
        let c = Aes256Gcm::new_from_slice(&hex::decode(key_hex).unwrap()).unwrap();
        let nonce = [7u8; 12];
        let mut out = nonce.to_vec();
        out.extend(c.encrypt(Nonce::from_slice(&nonce), plaintext).unwrap());
        out
    }

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

    #[test]
    fn legacy_blobs_open_under_version_one_only() {
        let k1 = "ab".repeat(32);
        let old = legacy_seal(&k1, b"old webhook secret");
        let single = SecretBox::from_hex(&k1).unwrap();
        assert_eq!(single.open(&old).unwrap(), b"old webhook secret");
        let both = SecretBox::parse_versions(&format!("1:{k1},2:{}", "cd".repeat(32))).unwrap();
        assert_eq!(both.open(&old).unwrap(), b"old webhook secret");
        let only2 = SecretBox::parse_versions(&format!("2:{}", "cd".repeat(32))).unwrap();
        assert!(only2.open(&old).is_none(), "legacy is version 1");
    }

    #[test]
    fn highest_version_seals_and_every_listed_version_opens() {
        let (k1, k2) = ("ab".repeat(32), "cd".repeat(32));
        let v1 = SecretBox::from_hex(&k1).unwrap();
        let (ver, blob1) = v1.seal_bound(b"x", b"aad").unwrap();
        assert_eq!(ver, 1);
        let both = SecretBox::parse_versions(&format!("2:{k2}, 1:{k1}")).unwrap();
        assert_eq!(both.current_version(), 2);
        assert_eq!(both.versions(), vec![1, 2]);
        let (ver, blob2) = both.seal_bound(b"y", b"aad").unwrap();
        assert_eq!(ver, 2);
        assert_eq!(&blob2[..7], b"CK1\0\0\0\x02");
        assert_eq!(
            both.open_versioned(&blob1, b"aad").unwrap(),
            (1, b"x".to_vec())
        );
        assert_eq!(
            both.open_versioned(&blob2, b"aad").unwrap(),
            (2, b"y".to_vec())
        );
        assert!(both.open_bound(&blob2, b"other").is_none(), "aad is bound");
        assert!(v1.open_bound(&blob2, b"aad").is_none(), "v2 not listed");
        // a version header rewritten to another listed version does not open
        let mut moved = blob2.clone();
        moved[6] = 1;
        assert!(both.open_bound(&moved, b"aad").is_none());
    }

    #[test]
    fn key_lists_parse_and_bad_input_is_named() {
        let (k1, k2) = ("ab".repeat(32), "cd".repeat(32));
        assert!(SecretBox::parse_versions(&format!("1:{k1}")).is_ok());
        assert!(SecretBox::parse_versions(&format!(" 1:{k1} , 7:{k2} ")).is_ok());
        let e = |s: &str| SecretBox::parse_versions(s).err();
        assert_eq!(e(""), Some(KeyError::Empty));
        assert_eq!(e("  "), Some(KeyError::Empty));
        assert_eq!(e(&format!("1:{k1},")), Some(KeyError::Entry(2)));
        assert_eq!(e(&k1), Some(KeyError::Entry(1)));
        assert_eq!(e(&format!("0:{k1}")), Some(KeyError::Version(1)));
        assert_eq!(e(&format!("-1:{k1}")), Some(KeyError::Version(1)));
        assert_eq!(e(&format!("v1:{k1}")), Some(KeyError::Version(1)));
        assert_eq!(e(&format!("99999999999:{k1}")), Some(KeyError::Version(1)));
        assert_eq!(e(&format!("2147483648:{k1}")), Some(KeyError::Version(1)));
        assert!(e(&format!("2147483647:{k1}")).is_none());
        assert_eq!(e("1:abcd"), Some(KeyError::Key(1)));
        assert_eq!(
            e(&format!("1:{k1},2:{}", "zz".repeat(32))),
            Some(KeyError::Key(2))
        );
        assert_eq!(e(&format!("1:{k1},1:{k2}")), Some(KeyError::Duplicate(1)));
        assert!(KeyError::Key(2).to_string().contains("64 hex"));

        let s = |l: Option<&str>, k: Option<&str>| SecretBox::from_settings(l, k);
        assert!(s(None, None).unwrap().is_none());
        assert_eq!(s(None, Some(&k1)).unwrap().unwrap().versions(), vec![1]);
        assert_eq!(s(None, Some("nothex")).err(), Some(KeyError::Single));
        let l = format!("2:{k2}");
        assert_eq!(
            s(Some(&l), Some(&k1)).unwrap().unwrap().versions(),
            vec![1, 2]
        );
        let l = format!("1:{k1},2:{k2}");
        assert_eq!(
            s(Some(&l), Some(&k1)).unwrap().unwrap().versions(),
            vec![1, 2]
        );
        assert_eq!(s(Some(&l), Some(&k2)).err(), Some(KeyError::Contradiction));
        assert!(format!("{:?}", s(Some(&l), None).unwrap().unwrap()).contains("[1, 2]"));
        assert!(!format!("{:?}", s(Some(&l), None).unwrap().unwrap()).contains("abab"));
    }
}
