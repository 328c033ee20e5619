//! Identifiers and names: validated once at the edge, then trusted.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The public account key: 3–32 characters of `[a-z0-9]`.
///
/// Stored inline (no heap) so that the authenticated caller, which carries it, is `Copy`
/// and the authentication hot path allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AccountPrefix {
    len: u8,
    bytes: [u8; AccountPrefix::MAX_LEN],
}

/// Hashes the prefix's own bytes, not the whole inline array: every update check looks an
/// account up by prefix (SipHash over 6 bytes instead of 41). Consistent with the derived
/// `Eq`: `parse` leaves the bytes past `len` zero, so equal prefixes have equal bytes.
impl std::hash::Hash for AccountPrefix {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(&self.bytes[..usize::from(self.len)]);
        state.write_u8(0xff);
    }
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
        // Read as a borrowed `str` where the format allows (the store's codec does): every
        // record names its account, and a decode should not allocate for it.
        struct Prefix;
        impl serde::de::Visitor<'_> for Prefix {
            type Value = AccountPrefix;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an account prefix")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<AccountPrefix, E> {
                AccountPrefix::parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Prefix)
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
        if text == "." || text == ".." {
            // They name no token in `DELETE /v1/account/tokens/{name}`: clients and
            // proxies resolve them as path segments.
            return Err(format!(
                "may not be `{text}`: it is a path segment, not a name"
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

/// An operator token's name: 1–64 printable ASCII characters (letters, digits,
/// punctuation and inner spaces), unique among operator tokens.
///
/// ASCII only, so that no name can display as another: Unicode would let look-alike
/// letters (Cyrillic `а` for `a`), invisible characters (zero-width spaces, soft
/// hyphens) and bidi controls (which reorder what a terminal shows) forge a name an
/// operator trusts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OperatorTokenName(String);

impl OperatorTokenName {
    pub const MAX_LEN: usize = 64;

    /// The rule for a new name (creation).
    ///
    /// # Errors
    /// A reason, when `text` is empty, too long, has a leading or trailing space, or holds
    /// anything but printable ASCII (control and format characters, look-alikes).
    pub fn parse(text: &str) -> Result<Self, String> {
        let n_chars = text.chars().count();
        if n_chars == 0 || n_chars > Self::MAX_LEN {
            return Err(format!(
                "must be 1–{} characters long, got {n_chars}",
                Self::MAX_LEN
            ));
        }
        if let Some(bad) = text.chars().find(|c| !(' '..='~').contains(c)) {
            let what = if bad.is_control() || is_format(bad) {
                "control and invisible formatting characters are not allowed"
            } else {
                "only printable ASCII is allowed, so that no name looks like another"
            };
            return Err(format!(
                "may contain only printable ASCII characters (letters, digits, punctuation, \
                 spaces); found U+{:04X}: {what}",
                u32::from(bad)
            ));
        }
        if text.starts_with(' ') || text.ends_with(' ') {
            return Err("may not start or end with a space".to_owned());
        }
        Ok(OperatorTokenName(text.to_owned()))
    }

    /// A name to look an existing token up by (change, delete, read back): only the
    /// length is checked, so tokens named under an older, looser rule stay reachable.
    ///
    /// # Errors
    /// A reason, when `text` is empty or too long.
    pub fn lookup(text: &str) -> Result<Self, String> {
        let n_chars = text.chars().count();
        if n_chars == 0 || n_chars > Self::MAX_LEN {
            return Err(format!(
                "must be 1–{} characters long, got {n_chars}",
                Self::MAX_LEN
            ));
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

/// Unicode format characters (general category Cf) that matter for names: invisible
/// characters and bidi controls. Only used to word the refusal; ASCII excludes them all.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
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
        // The hash is the prefix's own bytes: equal prefixes hash alike, and a prefix
        // differs from a longer one that starts with it.
        let hash = |text: &str| {
            use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
            BuildHasherDefault::<DefaultHasher>::default()
                .hash_one(AccountPrefix::parse(text).unwrap())
        };
        assert_eq!(hash("bench"), hash("bench"));
        assert_ne!(hash("abc"), hash("abc0"));
        assert_ne!(hash("abc"), hash("abd"));
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
        // Path segments are not names (issue 15).
        assert!(TokenName::parse(".").unwrap_err().contains("path segment"));
        assert!(TokenName::parse("..").unwrap_err().contains("path segment"));
        assert!(TokenName::parse("...").is_ok());
        assert!(TokenName::parse(".ci").is_ok());
    }

    #[test]
    fn operator_token_name_rules() {
        assert!(OperatorTokenName::parse("CI deploy (prod)").is_ok());
        assert!(OperatorTokenName::parse("").is_err());
        assert!(OperatorTokenName::parse("tab\there").is_err());
        assert!(OperatorTokenName::parse(&"a".repeat(64)).is_ok());
        assert!(OperatorTokenName::parse(&"a".repeat(65)).is_err());
        // Names that display as another name (issue 15).
        for name in [
            "\u{430}dmin",
            "ad\u{200b}min",
            "\u{202e}nimda",
            "admin\u{2066}",
            "ad\u{ad}min",
            "admin\u{feff}",
            "caf\u{e9}",
            " admin",
            "admin ",
            "admin\u{7f}",
        ] {
            assert!(OperatorTokenName::parse(name).is_err(), "{name:?}");
        }
        assert!(
            OperatorTokenName::parse("ad\u{200b}min")
                .unwrap_err()
                .contains("invisible")
        );
        assert!(
            OperatorTokenName::parse("\u{430}dmin")
                .unwrap_err()
                .contains("U+0430")
        );
        // Existing tokens named under the older rule can still be looked up.
        assert!(OperatorTokenName::lookup(&"é".repeat(64)).is_ok());
        assert!(OperatorTokenName::lookup("").is_err());
    }
}
