//! The domain model: records as they are stored, identifiers, scopes and the pure rules
//! that govern them. Nothing here performs I/O or knows about HTTP, sled or JSON.

pub mod account;
mod blob;
pub mod catalog;
mod channel;
mod ids;
mod license;
pub mod license_key;
pub mod licensing;
pub mod report;
mod rollout;
mod scope;
pub mod site;
mod size;
mod time;
mod token;
mod version;

pub use account::{Account, NewAccount};
pub use blob::{BlobHash, BlobRef};
pub use catalog::{
    FileId, FileRecord, Group, GroupId, LicenseModel, Product, ProductId, ProductKind, Release,
    VersionId,
};
pub use channel::{Channel, ChannelPicks, Versioned, candidate, resolve_channels};
pub use ids::{AccountPrefix, LicenseId, OperatorTokenName, TokenId, TokenName};
pub use license::PlanLicense;
pub use license_key::{
    KeyError, KeyGenerator, accepted_key, lookup_form, lookup_form_of, normalize_key,
};
pub use licensing::{
    Activation, ActivationId, Customer, CustomerId, DownloadKey, DownloadKeyId, Entity,
    HOLDER_DEACTIVATION_WINDOW_MS, HolderDeactivations, Identity, KeyStatus, LicensingSettings,
    ProductScope,
};
pub use report::{Day, DayRollup, ProductDay};
pub use rollout::{rollout_admits, rollout_bucket};
pub use scope::{Scope, Scopes};
pub use site::{
    DEFAULT_DEV_SITE_PATTERNS, DevSitePatterns, Site, SiteError, mask_host, normalize_site,
    site_from_user_agent,
};
pub use size::ByteSize;
pub use time::Timestamp;
pub use token::{
    GraceAlias, MIN_TOKEN_LIFETIME, Principal, Token, TokenChanges, TokenHash, cap_expiry,
    check_token_expiry,
};
pub use version::{
    MAX_COMPONENT, Maturity, PlatformVersion, VERSION_RULE, Version, VersionError, VersionProblem,
    minimum_met, requirement_met,
};

use std::fmt;

/// A domain rule refused a change. Each variant is something the caller can act on;
/// `crate::error` maps each to one status and code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainError {
    /// An account with this prefix already exists.
    AccountExists(AccountPrefix),
    /// No account has this prefix.
    AccountNotFound,
    /// The owner already has a token of this name.
    TokenNameTaken(String),
    /// The owner has no token of this name.
    TokenNotFound(String),
    /// No plan license has this key (or it was revoked).
    LicenseUnknown,
    /// No plan license has this id.
    LicenseNotFound(LicenseId),
    /// The plan license expired.
    LicenseExpired,
    /// The plan license is bound to another account.
    LicenseInUse,
    /// The credential is a rotated token's previous secret, in its grace period: it may
    /// not rotate, create or delete tokens.
    GraceSecret,
    /// The credential of the request making this write no longer authenticates: it was
    /// revoked, deactivated or expired while the request waited for the write lock.
    CredentialGone,
    /// The account already holds `limit` tokens, the most allowed.
    TokenQuota { limit: usize },
    /// A record the caller's account does not hold (or that does not exist): what was
    /// looked for, e.g. ``no product with id 7``.
    Missing(String),
    /// A conflict with the stored state, with its stable code (`version_exists`,
    /// `group_not_empty`, …) and a message naming the conflict.
    Conflict { code: &'static str, message: String },
    /// Bad input found against the stored state (`field: reason`).
    Invalid(String),
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainError::AccountExists(prefix) => {
                write!(f, "an account with prefix `{prefix}` already exists")
            }
            DomainError::AccountNotFound => f.write_str("no such account"),
            DomainError::TokenNameTaken(name) => {
                write!(f, "a token named `{name}` already exists")
            }
            DomainError::TokenNotFound(name) => write!(f, "no token named `{name}`"),
            DomainError::LicenseUnknown => f.write_str("unknown or revoked license key"),
            DomainError::LicenseNotFound(id) => write!(f, "no plan license with id {id}"),
            DomainError::LicenseExpired => f.write_str("the license key has expired"),
            DomainError::LicenseInUse => {
                f.write_str("the license key is already applied to another account")
            }
            DomainError::TokenQuota { limit } => write!(
                f,
                "the account already holds {limit} tokens, the most allowed \
                 (--max-tokens-per-account); delete one first"
            ),
            DomainError::CredentialGone => {
                f.write_str("the credential no longer authenticates (revoked or expired)")
            }
            DomainError::Missing(what) => f.write_str(what),
            DomainError::Conflict { message, .. } => f.write_str(message),
            DomainError::Invalid(message) => f.write_str(message),
            DomainError::GraceSecret => f.write_str(
                "this secret was replaced by a rotation and is in its grace period: it may \
                 read, but cannot rotate, create or delete tokens; use the new secret",
            ),
        }
    }
}

impl std::error::Error for DomainError {}

/// `text.trim()`, without the char-pattern machinery when neither end can be blank (the
/// usual input of an update check: several of its fields are trimmed per request).
pub fn trim(text: &str) -> &str {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn trim_is_str_trim() {
        for text in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\ta\n",
            "abc",
            "a b",
            "\u{a0}a",
            "a\u{3000}",
            "é",
            "aé",
            "éa",
            "\u{85}",
            "~x~",
        ] {
            assert_eq!(super::trim(text), text.trim(), "{text:?}");
        }
    }
}
