use super::{AccountPrefix, Scopes, Timestamp, TokenId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// `blake3` of a whole token string: the only form in which a secret is stored.
///
/// Equality goes through `blake3::Hash`, which compares in constant time.
#[derive(Clone, Copy, Eq, Serialize, Deserialize)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        TokenHash(*blake3::hash(token.as_bytes()).as_bytes())
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        TokenHash(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        blake3::Hash::from_bytes(self.0) == blake3::Hash::from_bytes(other.0)
    }
}

impl std::hash::Hash for TokenHash {
    /// The bytes are already a uniform hash: feed 8 of them as one integer, so an
    /// identity hasher (the token index's) can use them directly. Consistent with `Eq`:
    /// equal hashes have equal bytes.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

impl fmt::Debug for TokenHash {
    /// Only a short prefix: enough to tell hashes apart in a log, useless to an attacker.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TokenHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// Whom a token acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Principal {
    /// An account token: acts for one account, within its scopes.
    Account(AccountPrefix),
    /// An operator token: administers the whole server (`write = false`: read-only).
    Operator { active: bool, write: bool },
}

impl Principal {
    pub fn account(&self) -> Option<AccountPrefix> {
        match self {
            Principal::Account(prefix) => Some(*prefix),
            Principal::Operator { .. } => None,
        }
    }
}

/// A bearer credential, without its secret. Stored in `tokenhash_token`.
///
/// Format version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub id: TokenId,
    pub hash: TokenHash,
    pub principal: Principal,
    /// Unique per owner (per account, or among operator tokens).
    pub name: String,
    /// Empty for operator tokens.
    pub scopes: Scopes,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

impl Token {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// The shortest lifetime a token may be given: a token that expires before anyone can
/// use it is a mistake (`"1ns"`), never a request.
pub const MIN_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60);

/// Checks the expiry asked for a token (created, or changed) at `now`: at least
/// [`MIN_TOKEN_LIFETIME`] ahead and no later than [`Timestamp::LATEST`].
///
/// # Errors
/// A reason, for the caller to report under its own field name.
pub fn check_token_expiry(expires_at: Timestamp, now: Timestamp) -> Result<Timestamp, String> {
    if expires_at < now.saturating_add(MIN_TOKEN_LIFETIME) {
        return Err(format!(
            "a token must live at least {} s (one minute)",
            MIN_TOKEN_LIFETIME.as_secs()
        ));
    }
    expires_at.as_expiry()
}

/// A token never creates a token that outlives it (SPEC §2): the expiry a new token gets
/// when `creator_expires_at` (the creating credential's expiry; for a grace secret, the
/// end of its grace) is earlier than the one asked for. `None` means never.
pub fn cap_expiry(
    requested: Option<Timestamp>,
    creator_expires_at: Option<Timestamp>,
) -> Option<Timestamp> {
    match (requested, creator_expires_at) {
        (Some(requested), Some(cap)) => Some(requested.min(cap)),
        (None, cap) => cap,
        (requested, None) => requested,
    }
}

/// The previous secret of a rotated token, still accepted until `until`.
/// Stored in `tokenhash_grace`, keyed by the old secret's hash.
///
/// Format version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraceAlias {
    /// The token's current hash (its key in `tokenhash_token`).
    pub token: TokenHash,
    pub until: Timestamp,
}

/// A change to an operator token: `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenChanges {
    /// `Some(None)`: never expires.
    pub expires_at: Option<Option<Timestamp>>,
    pub active: Option<bool>,
    pub write: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetimes_are_at_least_a_minute() {
        let now = Timestamp::from_secs(1000);
        assert!(check_token_expiry(Timestamp::from_millis(1_000_001), now).is_err());
        assert!(check_token_expiry(Timestamp::from_secs(1059), now).is_err());
        assert!(check_token_expiry(Timestamp::from_secs(1060), now).is_ok());
        let past_9999 = Timestamp::from_millis(Timestamp::LATEST.as_millis() + 1);
        assert!(check_token_expiry(past_9999, now).is_err());
    }

    #[test]
    fn a_child_expiry_is_capped_at_its_creators() {
        let at = Timestamp::from_secs;
        assert_eq!(cap_expiry(None, None), None);
        assert_eq!(cap_expiry(None, Some(at(5))), Some(at(5)));
        assert_eq!(cap_expiry(Some(at(9)), Some(at(5))), Some(at(5)));
        assert_eq!(cap_expiry(Some(at(3)), Some(at(5))), Some(at(3)));
        assert_eq!(cap_expiry(Some(at(3)), None), Some(at(3)));
    }
}
