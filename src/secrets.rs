//! Keys at rest (SPEC §9 "At rest", §7.2 static keys), pure: the store never holds a
//! license key in the clear, yet a vendor can read a customer's key again at any time.
//!
//! A [`KeyVault`] is made from the [`ServerKey`] (`<data>/server.key`, never in the store
//! nor in a backup) and derives two independent subkeys from it with
//! `blake3::derive_key`, one per purpose:
//!
//! - **lookup**: [`KeyVault::lookup_hash`], a keyed blake3 hash of the account and the
//!   key's lookup form, is the store's index key. Without `server.key` a stolen store
//!   cannot even be used to test guesses against it.
//! - **sealing**: [`KeyVault::seal`] / [`KeyVault::open`] keep the readable value with
//!   XChaCha20-Poly1305 (the `chacha20poly1305` crate) under a random 24-byte nonce.
//!   The caller's associated data (the account prefix, say) is authenticated with it,
//!   so a sealed value moved to another account's record does not open.
//!
//! Sealed layout: `version (1 byte, 0x01) ++ nonce (24 bytes) ++ ciphertext ++ tag (16)`.
//!
//! Callers hash the key's *lookup form* (`model::license_key::lookup_form` of the
//! normalized key: segmented and UUID keys compare case-insensitively) and seal the key
//! as issued.

use crate::token::ServerKey;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::fmt;

/// blake3 `derive_key` contexts: globally unique, hard-coded, one per purpose. Changing
/// one makes every stored hash or sealed value unreadable.
const LOOKUP_CONTEXT: &str = "upkeep 2026-12-01 license key lookup hash v1";
const SEAL_CONTEXT: &str = "upkeep 2026-12-01 license key sealing v1";

/// The first byte of every sealed value: the format (XChaCha20-Poly1305, the subkey
/// derived with [`SEAL_CONTEXT`]).
const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The subkeys for keys at rest, derived from the server key. Cheap to share by
/// reference; make it once.
#[derive(Clone)]
pub struct KeyVault {
    lookup: [u8; 32],
    cipher: XChaCha20Poly1305,
}

impl KeyVault {
    pub fn new(server: &ServerKey) -> Self {
        let lookup = blake3::derive_key(LOOKUP_CONTEXT, server.as_bytes());
        let seal = blake3::derive_key(SEAL_CONTEXT, server.as_bytes());
        KeyVault {
            lookup,
            cipher: XChaCha20Poly1305::new(&seal.into()),
        }
    }

    /// The store's lookup key for `normalized_key` in `account`: blake3 in keyed mode
    /// over the account (length-prefixed, so no account/key split is ambiguous) and the
    /// key. Pass the key's lookup form; the same inputs always give the same hash.
    pub fn lookup_hash(&self, account: &str, normalized_key: &str) -> [u8; 32] {
        // The usual input fits a stack buffer: hashed in one call (the same bytes, so the
        // same hash, as the incremental hasher below, without its setup).
        let mut buf = [0u8; 256];
        let len = 8 + account.len() + normalized_key.len();
        if len <= buf.len() {
            buf[..8].copy_from_slice(&(account.len() as u64).to_le_bytes());
            buf[8..8 + account.len()].copy_from_slice(account.as_bytes());
            buf[8 + account.len()..len].copy_from_slice(normalized_key.as_bytes());
            return *blake3::keyed_hash(&self.lookup, &buf[..len]).as_bytes();
        }
        let mut hasher = blake3::Hasher::new_keyed(&self.lookup);
        hasher.update(&(account.len() as u64).to_le_bytes());
        hasher.update(account.as_bytes());
        hasher.update(normalized_key.as_bytes());
        *hasher.finalize().as_bytes()
    }

    /// Seals `plaintext`, binding `aad` (which [`KeyVault::open`] must be given again).
    /// Each call draws a fresh nonce, so sealing one value twice gives different bytes.
    ///
    /// # Errors
    /// The OS RNG failed ([`SealError::Random`]).
    pub fn seal(&self, plaintext: &str, aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(SealError::Random)?;
        let nonce = XNonce::from(nonce);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad,
        };
        let ciphertext = self
            .cipher
            .encrypt(&nonce, payload)
            .map_err(|_| SealError::Rejected)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(SEAL_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Opens a value made by [`KeyVault::seal`] with the same server key and `aad`.
    ///
    /// # Errors
    /// [`SealError::Malformed`] for bytes too short or of an unknown version;
    /// [`SealError::Rejected`] when authentication fails: another server key, other
    /// associated data, or bytes changed since sealing.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<String, SealError> {
        let Some((&version, rest)) = sealed.split_first() else {
            return Err(SealError::Malformed("empty"));
        };
        if version != SEAL_VERSION {
            return Err(SealError::Malformed("unknown format version"));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed("too short"));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| SealError::Malformed("bad nonce"))?;
        let payload = Payload {
            msg: ciphertext,
            aad,
        };
        let plaintext = self
            .cipher
            .decrypt(&nonce, payload)
            .map_err(|_| SealError::Rejected)?;
        // Authenticated, so this is what `seal` was given: a `&str`.
        String::from_utf8(plaintext).map_err(|_| SealError::Malformed("not UTF-8"))
    }
}

impl fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyVault(…)")
    }
}

/// Why a value could not be sealed or opened.
#[derive(Debug)]
pub enum SealError {
    /// The OS RNG failed (sealing needs a fresh nonce).
    Random(getrandom::Error),
    /// Not a sealed value of a known format.
    Malformed(&'static str),
    /// Authentication failed: another server key, other associated data, or tampered
    /// bytes.
    Rejected,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::Random(e) => write!(f, "the OS random number generator failed: {e}"),
            SealError::Malformed(why) => write!(f, "not a sealed value ({why})"),
            SealError::Rejected => f.write_str(
                "the sealed value does not authenticate (another server.key, another \
                 account, or damaged)",
            ),
        }
    }
}

impl std::error::Error for SealError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(byte: u8) -> KeyVault {
        KeyVault::new(&ServerKey::from_bytes([byte; 32]))
    }

    #[test]
    fn seal_then_open_round_trips() {
        let v = vault(7);
        for text in ["X2GFG-Y2CXM-BQK7Y-V77WB-9NA4S", "", "ünïcødé key ✓"] {
            let sealed = v.seal(text, b"acme").unwrap();
            assert_eq!(sealed[0], SEAL_VERSION);
            assert_eq!(sealed.len(), 1 + NONCE_LEN + text.len() + TAG_LEN);
            assert_eq!(v.open(&sealed, b"acme").unwrap(), text);
        }
    }

    #[test]
    fn a_new_vault_from_the_same_server_key_opens_it() {
        let sealed = vault(7).seal("some-license-key", b"acme").unwrap();
        assert_eq!(vault(7).open(&sealed, b"acme").unwrap(), "some-license-key");
    }

    #[test]
    fn sealing_twice_uses_fresh_nonces() {
        let v = vault(7);
        let a = v.seal("some-license-key", b"acme").unwrap();
        let b = v.seal("some-license-key", b"acme").unwrap();
        assert_ne!(a, b);
        assert_ne!(a[1..1 + NONCE_LEN], b[1..1 + NONCE_LEN]);
    }

    #[test]
    fn wrong_aad_fails() {
        let v = vault(7);
        let sealed = v.seal("some-license-key", b"acme").unwrap();
        assert!(matches!(v.open(&sealed, b"acm"), Err(SealError::Rejected)));
        assert!(matches!(v.open(&sealed, b""), Err(SealError::Rejected)));
        assert!(matches!(
            v.open(&sealed, b"other"),
            Err(SealError::Rejected)
        ));
    }

    #[test]
    fn another_server_key_fails() {
        let sealed = vault(7).seal("some-license-key", b"acme").unwrap();
        assert!(matches!(
            vault(8).open(&sealed, b"acme"),
            Err(SealError::Rejected)
        ));
    }

    #[test]
    fn any_tampered_byte_fails() {
        let v = vault(7);
        let sealed = v.seal("some-license-key", b"acme").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            let err = v.open(&bad, b"acme").unwrap_err();
            if i == 0 {
                assert!(matches!(err, SealError::Malformed(_)), "byte {i}: {err}");
            } else {
                assert!(matches!(err, SealError::Rejected), "byte {i}: {err}");
            }
        }
    }

    #[test]
    fn truncated_or_extended_values_fail() {
        let v = vault(7);
        let sealed = v.seal("some-license-key", b"acme").unwrap();
        for len in 0..sealed.len() {
            assert!(v.open(&sealed[..len], b"acme").is_err(), "length {len}");
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(matches!(v.open(&longer, b"acme"), Err(SealError::Rejected)));
        assert!(matches!(v.open(&[], b"acme"), Err(SealError::Malformed(_))));
    }

    #[test]
    fn sealed_bytes_do_not_contain_the_plaintext() {
        let v = vault(7);
        let key = "X2GFG-Y2CXM-BQK7Y-V77WB-9NA4S";
        let sealed = v.seal(key, b"acme").unwrap();
        assert!(
            !sealed
                .windows(5)
                .any(|w| key.as_bytes().windows(5).any(|k| k == w))
        );
    }

    #[test]
    fn lookup_hash_is_stable_and_keyed() {
        let key = "X2GFG-Y2CXM-BQK7Y-V77WB-9NA4S";
        assert_eq!(
            vault(7).lookup_hash("acme", key),
            vault(7).lookup_hash("acme", key)
        );
        assert_ne!(
            vault(7).lookup_hash("acme", key),
            vault(8).lookup_hash("acme", key)
        );
        // Not the plain (unkeyed) hash of anything obvious.
        assert_ne!(
            vault(7).lookup_hash("acme", key),
            *blake3::hash(key.as_bytes()).as_bytes()
        );
    }

    #[test]
    fn lookup_hash_is_the_hash_of_the_length_account_and_key_stream() {
        // The one-call path (short input) and the incremental one (long) agree with the
        // stream hashed piece by piece: stores written before either still match.
        let v = vault(7);
        for key in ["c350e8d1-ea93-4ecc-93b8-a4b9b9cc1b84", &"k".repeat(300)] {
            let mut hasher = blake3::Hasher::new_keyed(&v.lookup);
            hasher.update(&4u64.to_le_bytes());
            hasher.update(b"acme");
            hasher.update(key.as_bytes());
            assert_eq!(v.lookup_hash("acme", key), *hasher.finalize().as_bytes());
        }
    }

    #[test]
    fn lookup_hash_separates_accounts_and_keys() {
        let v = vault(7);
        assert_ne!(
            v.lookup_hash("acme", "some-license-key"),
            v.lookup_hash("other", "some-license-key")
        );
        assert_ne!(
            v.lookup_hash("acme", "some-license-key"),
            v.lookup_hash("acme", "some-license-kez")
        );
        // The length prefix: moving characters across the account/key boundary changes it.
        assert_ne!(
            v.lookup_hash("acme", "xsome-license-key"),
            v.lookup_hash("acmex", "some-license-key")
        );
    }

    #[test]
    fn lookup_and_sealing_subkeys_differ() {
        let v = vault(7);
        let seal = blake3::derive_key(SEAL_CONTEXT, &[7; 32]);
        assert_ne!(v.lookup, seal);
        assert_ne!(v.lookup, [7; 32]);
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Stored hashes and sealed values must stay readable: these bytes were made by
    /// format version 1 and pin the contexts, the hash input layout and the cipher.
    #[test]
    fn format_version_1_is_frozen() {
        let v = vault(7);
        assert_eq!(
            hex(&v.lookup_hash("acme", "X2GFG-Y2CXM-BQK7Y-V77WB-9NA4S")),
            "879e7c2e25b663f0a0fe03584588ef2d65461731e147060eb4a65579c72a566d"
        );
        let sealed = unhex(
            "01cb6ffa227dffad77bd3d561790496d9304205c2027c9713c818949d95eebb92dee2440083be0\
             7d1b860d4c6f4c70a49cf113ab4f224b13fc",
        );
        assert_eq!(v.open(&sealed, b"acme").unwrap(), "some-license-key");
    }

    #[test]
    fn debug_reveals_no_key_material() {
        assert_eq!(format!("{:?}", vault(7)), "KeyVault(…)");
    }
}
