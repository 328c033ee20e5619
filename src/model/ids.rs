//! Identifiers and names: validated once at the edge, then trusted.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The public account key: 3–32 characters of `[a-z0-9]`.
///
/// Stored inline (no heap) so that the authenticated caller, which carries it, is `Copy`
/// and the authentication hot path allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountPrefix {
    len: u8,
    bytes: [u8; AccountPrefix::MAX_LEN],
}

impl AccountPrefix {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 32;

    /// # Errors
    /// A reason, when `text` is not 3–32 characters of `[a-z0-9]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let len = text.len();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(format!(
                "must be {}–{} characters long, got {len}",
                Self::MIN_LEN,
                Self::MAX_LEN
            ));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        {
            return Err(format!("may contain only a-z and 0-9, found {bad:?}"));
        }
        let mut bytes = [0; Self::MAX_LEN];
        bytes[..len].copy_from_slice(text.as_bytes());
        Ok(AccountPrefix {
            len: len as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII from `parse` ever lands here.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Display for AccountPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Debug for AccountPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountPrefix({})", self.as_str())
    }
}

impl Serialize for AccountPrefix {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AccountPrefix {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        AccountPrefix::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An account token's name: `^[a-z0-9.-]{1,64}$`, unique within its account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TokenName(String);

impl TokenName {
    pub const MAX_LEN: usize = 64;

    /// # Errors
    /// A reason, when `text` breaks the charset or length rule.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.len() > Self::MAX_LEN {
            return Err(format!(
                "must be 1–{} characters long, got {}",
                Self::MAX_LEN,
                text.chars().count()
            ));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
        {
            return Err(format!(
                "may contain only a-z, 0-9, dashes (-) and periods (.), found {bad:?}"
            ));
        }
        Ok(TokenName(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// An operator token's name: 1–64 printable characters, unique among operator tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OperatorTokenName(String);

impl OperatorTokenName {
    pub const MAX_LEN: usize = 64;

    /// # Errors
    /// A reason, when `text` is empty, too long or holds control characters.
    pub fn parse(text: &str) -> Result<Self, String> {
        let n_chars = text.chars().count();
        if n_chars == 0 || n_chars > Self::MAX_LEN {
            return Err(format!(
                "must be 1–{} characters long, got {n_chars}",
                Self::MAX_LEN
            ));
        }
        if text.chars().any(char::is_control) {
            return Err("may contain only printable characters".to_owned());
        }
        Ok(OperatorTokenName(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OperatorTokenName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// A token's stable id (allocated by the store; never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TokenId(pub u64);

/// A plan license's id, as shown to operators (allocated by the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LicenseId(pub u64);

impl fmt::Display for LicenseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_prefix_rules() {
        assert_eq!(
            AccountPrefix::parse("abcde123").unwrap().as_str(),
            "abcde123"
        );
        assert!(AccountPrefix::parse("ab").is_err());
        assert!(AccountPrefix::parse(&"a".repeat(33)).is_err());
        assert!(AccountPrefix::parse(&"a".repeat(32)).is_ok());
        assert!(AccountPrefix::parse("ABC").unwrap_err().contains("'A'"));
        assert!(AccountPrefix::parse("ab-c").is_err());
    }

    #[test]
    fn token_name_rules() {
        assert!(TokenName::parse("a-token.name-1").is_ok());
        assert!(TokenName::parse("").is_err());
        assert!(TokenName::parse(&"a".repeat(65)).is_err());
        assert!(TokenName::parse(&"a".repeat(64)).is_ok());
        assert!(TokenName::parse("Upper").is_err());
        assert!(TokenName::parse("white space").is_err());
        assert!(TokenName::parse("é").is_err());
    }

    #[test]
    fn operator_token_name_rules() {
        assert!(OperatorTokenName::parse("CI deploy (prod)").is_ok());
        assert!(OperatorTokenName::parse("").is_err());
        assert!(OperatorTokenName::parse("tab\there").is_err());
        assert!(OperatorTokenName::parse(&"é".repeat(64)).is_ok());
        assert!(OperatorTokenName::parse(&"é".repeat(65)).is_err());
    }
}
