//! Customer licensing (SPEC §9): customers, download keys and their activations, as
//! stored, and the pure rules on their fields.
//!
//! Ids are random integers below 2^53 (`catalog::random_id`), unique in their account:
//! every key of a licensing record starts with its account, so another account's id is
//! simply absent. A download key's value is never stored in the clear: the record holds
//! its keyed lookup hash and the value sealed (`crate::secrets::KeyVault`), with the
//! account prefix as associated data.

use super::catalog::ProductId;
use super::license_key::KeyGenerator;
use super::site::Site;
use super::{AccountPrefix, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! ids {
    ($($(#[doc = $doc:literal])* $name:ident;)+) => {$(
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )+};
}

ids! {
    /// A customer's id, unique in its account.
    CustomerId;
    /// A download key's id, unique in its account.
    DownloadKeyId;
    /// An activation's id, unique in its account.
    ActivationId;
}

/// Most development-site activations (`counts: false`) one key holds (SPEC §9 *Sites*).
pub const MAX_DEV_ACTIVATIONS: usize = 10;
/// How long the velocity window of new activations is (SPEC §9: 24 h).
pub const VELOCITY_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;
/// Longest machine fingerprint and activation label (characters).
pub const MAX_MACHINE_LEN: usize = 128;
pub const MAX_LABEL_LEN: usize = 200;
/// Longest customer text field (characters) and notes (bytes).
pub const MAX_FIELD_LEN: usize = 200;
pub const MAX_NOTES_LEN: usize = 4096;

/// `individual` (default) or `business` (then `business_name` is required).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Entity {
    #[default]
    Individual,
    Business,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Individual => "individual",
            Entity::Business => "business",
        }
    }

    pub fn parse(text: &str) -> Option<Entity> {
        match text {
            "individual" => Some(Entity::Individual),
            "business" => Some(Entity::Business),
            _ => None,
        }
    }
}

/// A customer of a vendor. Stored in `customer`; its email (lower-cased) is unique in the
/// account (`customer_email`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: CustomerId,
    pub account: AccountPrefix,
    pub name: String,
    pub email: String,
    pub entity: Entity,
    pub business_name: Option<String>,
    pub vat_number: Option<String>,
    /// ISO 3166-1 alpha-2, upper-case.
    pub country: Option<String>,
    pub state: Option<String>,
    pub city: Option<String>,
    pub address: Option<String>,
    pub postcode: Option<String>,
    pub phone: Option<String>,
    pub notes: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Which products a key covers: some of the account's products (possibly none, once
/// they were all deleted), or all of them, also those created later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductScope {
    All,
    Only(Vec<ProductId>),
}

impl ProductScope {
    pub fn covers(&self, product: ProductId) -> bool {
        match self {
            ProductScope::All => true,
            ProductScope::Only(ids) => ids.contains(&product),
        }
    }

    /// The listed products (none for `All`): the entries of the product→keys index.
    pub fn listed(&self) -> &[ProductId] {
        match self {
            ProductScope::All => &[],
            ProductScope::Only(ids) => ids,
        }
    }
}

/// `active` or `disabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    Active,
    Disabled,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<KeyStatus> {
        match text {
            "active" => Some(KeyStatus::Active),
            "disabled" => Some(KeyStatus::Disabled),
            _ => None,
        }
    }
}

/// A customer's download key. Stored in `download_key`; found by its lookup hash through
/// `keylookup_keyid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadKey {
    pub id: DownloadKeyId,
    pub account: AccountPrefix,
    pub customer_id: CustomerId,
    /// `KeyVault::lookup_hash(account, lookup_form(key))`.
    pub lookup: [u8; 32],
    /// The key as issued, `KeyVault::seal(key, account prefix)`.
    #[serde(deserialize_with = "byte_string")]
    pub sealed: Vec<u8>,
    pub products: ProductScope,
    /// 0 = unlimited.
    pub activation_limit: u32,
    pub status: KeyStatus,
    pub expires_at: Option<Timestamp>,
    pub notes: Option<String>,
    /// How many of its activations count against the limit (kept by the store with the
    /// activations, in the same transactions).
    pub counted: u32,
    /// When its recent new activations were made (those within the velocity window,
    /// oldest first), for `--max-activations-per-day`.
    pub recent_activations: Vec<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_checked_at: Option<Timestamp>,
}

/// Reads a `Vec<u8>` as one byte string where the format has them (the store's codec:
/// the same bytes as a sequence of `u8`, its length then the bytes, read in one go
/// instead of byte by byte), else as a sequence.
fn byte_string<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    struct Bytes;
    impl<'de> serde::de::Visitor<'de> for Bytes {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(byte) = seq.next_element()? {
                bytes.push(byte);
            }
            Ok(bytes)
        }
    }
    deserializer.deserialize_bytes(Bytes)
}

impl DownloadKey {
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// New activations within the velocity window ending at `now`.
    pub fn activations_since(&self, now: Timestamp) -> usize {
        let from = now.as_millis().saturating_sub(VELOCITY_WINDOW_MS);
        self.recent_activations
            .iter()
            .filter(|at| at.as_millis() > from)
            .count()
    }

    /// Notes a new activation at `now`, forgetting those out of the window.
    pub fn note_activation(&mut self, now: Timestamp) {
        let from = now.as_millis().saturating_sub(VELOCITY_WINDOW_MS);
        self.recent_activations.retain(|at| at.as_millis() > from);
        self.recent_activations.push(now);
    }

    /// Whether the key's limit leaves no slot for one more counted activation.
    pub fn full(&self) -> bool {
        self.activation_limit != 0 && self.counted >= self.activation_limit
    }
}

/// What an activation is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Identity {
    /// A WordPress site (normalized host).
    Site(Site),
    /// An app's machine fingerprint (1–128 characters).
    Machine(String),
    /// A Lemon Squeezy instance: every activation is a new one; its label is the
    /// `instance_name`.
    Instance,
}

impl Identity {
    pub fn kind(&self) -> &'static str {
        match self {
            Identity::Site(_) => "site",
            Identity::Machine(_) => "machine",
            Identity::Instance => "instance",
        }
    }
}

/// The window `--max-deactivations-per-month` counts in (SPEC §9.2): 30 days.
pub const HOLDER_DEACTIVATION_WINDOW_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// When a key's holder freed one of its activations (SPEC §9.2: at most
/// `--max-deactivations-per-month` a key), those of the last
/// [`HOLDER_DEACTIVATION_WINDOW_MS`]. Stored in `holder_deactivations` under its key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderDeactivations {
    /// Oldest first.
    pub at: Vec<Timestamp>,
}

impl HolderDeactivations {
    /// Only those within the window ending at `now`.
    #[must_use]
    pub fn within(mut self, now: Timestamp) -> Self {
        let from = now
            .as_millis()
            .saturating_sub(HOLDER_DEACTIVATION_WINDOW_MS);
        self.at.retain(|at| at.as_millis() > from);
        self
    }

    /// Whether one more is allowed under `limit` (0: no limit), these being within the
    /// window.
    pub fn allows_one_more(&self, limit: u32) -> bool {
        limit == 0 || self.at.len() < limit as usize
    }
}

/// An activation of a download key. Stored in `activation` under its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    pub id: ActivationId,
    pub key_id: DownloadKeyId,
    pub identity: Identity,
    pub label: Option<String>,
    /// `false` for development sites: they do not use the key's limit.
    pub counts: bool,
    pub created_at: Timestamp,
    pub last_seen_at: Option<Timestamp>,
}

/// An account's licensing settings (`GET/PUT /api/v1/settings/download-keys`). Stored
/// in `licensing_settings`; absent means the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LicensingSettings {
    pub generator: KeyGenerator,
}

/// A customer's email: 3–254 characters, one `@` with something on both sides, no
/// whitespace or control characters. Returns it trimmed.
///
/// # Errors
/// The reason.
pub fn check_email(email: &str) -> Result<String, String> {
    // At most 254 as sent (the API's schema), at least 3 once trimmed.
    let sent = email.chars().count();
    let email = email.trim();
    if sent > 254 || email.chars().count() < 3 {
        return Err("must be 3–254 characters".to_owned());
    }
    if email
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
    {
        return Err("must not contain whitespace, control characters or `<>,;`".to_owned());
    }
    match email.rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            Ok(email.to_owned())
        }
        _ => Err(format!("`{email}` is not an email address")),
    }
}

/// The form in which emails are unique in an account: lower-cased.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A country: ISO 3166-1 alpha-2, two letters (given in any case, stored upper-case).
///
/// # Errors
/// The reason.
pub fn check_country(text: &str) -> Result<String, String> {
    let code = text.trim().to_ascii_uppercase();
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(format!(
            "`{text}` is not an ISO 3166-1 alpha-2 country code (two letters, e.g. DE)"
        ))
    }
}

/// A machine fingerprint: 1–128 characters, no whitespace or control characters.
///
/// # Errors
/// The reason.
pub fn check_machine(text: &str) -> Result<String, String> {
    let machine = text.trim();
    let n = machine.chars().count();
    if !(1..=MAX_MACHINE_LEN).contains(&n) {
        return Err(format!("must be 1–{MAX_MACHINE_LEN} characters, got {n}"));
    }
    if machine.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace or control characters".to_owned());
    }
    Ok(machine.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_compared_lower_case() {
        assert_eq!(check_email(" Ann@Example.com ").unwrap(), "Ann@Example.com");
        assert_eq!(email_key("Ann@Example.COM"), "ann@example.com");
        for bad in ["", "ann", "@x", "x@", "a b@c.d", "a@b@"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
        // 254 characters as sent, surrounding blanks included.
        let long = format!("a@{}.de", "b".repeat(249));
        assert_eq!(long.len(), 254);
        assert!(check_email(&long).is_ok());
        assert!(check_email(&format!("{long} ")).is_err());
    }

    #[test]
    fn countries_are_two_letters() {
        assert_eq!(check_country("de").unwrap(), "DE");
        for bad in ["", "D", "DEU", "1A", "ü"] {
            assert!(check_country(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn velocity_counts_the_last_24_hours() {
        let t = |h: u64| Timestamp::from_secs(1_800_000_000 + h * 3600);
        let mut key = DownloadKey {
            id: DownloadKeyId(2),
            account: AccountPrefix::parse("acme").unwrap(),
            customer_id: CustomerId(3),
            lookup: [0; 32],
            sealed: Vec::new(),
            products: ProductScope::All,
            activation_limit: 1,
            status: KeyStatus::Active,
            expires_at: None,
            notes: None,
            counted: 0,
            recent_activations: Vec::new(),
            created_at: t(0),
            updated_at: t(0),
            last_checked_at: None,
        };
        key.note_activation(t(0));
        key.note_activation(t(1));
        assert_eq!(key.activations_since(t(2)), 2);
        assert_eq!(key.activations_since(t(24)), 1);
        key.note_activation(t(30));
        assert_eq!(key.recent_activations, vec![t(30)]);
        assert!(!key.full());
        key.counted = 1;
        assert!(key.full());
        key.activation_limit = 0;
        assert!(!key.full(), "0 is unlimited");
    }

    #[test]
    fn machines_are_short_fingerprints() {
        assert!(check_machine("abc-123").is_ok());
        assert!(check_machine("").is_err());
        assert!(check_machine("a b").is_err());
        assert!(check_machine(&"x".repeat(129)).is_err());
    }
}
