//! Key encodings. The only place that builds or splits key bytes.

use crate::model::{AccountPrefix, LicenseId, TokenHash};

/// The owner part of an `ownername_tokenhash` key: the prefix's length byte then the
/// prefix for an account, a single `0` for operator tokens. Account prefixes are at least
/// 3 bytes, so the two never collide, and the length byte keeps `abc` from being a prefix
/// of `abcd`'s keys.
pub fn owner(account: Option<&AccountPrefix>) -> Vec<u8> {
    match account {
        Some(prefix) => {
            let mut key = Vec::with_capacity(1 + prefix.as_str().len());
            key.push(prefix.as_str().len() as u8);
            key.extend_from_slice(prefix.as_str().as_bytes());
            key
        }
        None => vec![0],
    }
}

/// `owner ++ name`: the unique key of a token name within its owner.
pub fn owner_name(account: Option<&AccountPrefix>, name: &str) -> Vec<u8> {
    let mut key = owner(account);
    key.extend_from_slice(name.as_bytes());
    key
}

/// `token ++ alias`: a `tokenhash_gracehash` key (a grace alias of `token`).
pub fn token_alias(token: &TokenHash, alias: &TokenHash) -> [u8; 64] {
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(token.as_bytes());
    key[32..].copy_from_slice(alias.as_bytes());
    key
}

/// Splits a `tokenhash_gracehash` key into `(token, alias)`.
///
/// # Errors
/// The bytes are not 64 long.
pub fn parse_token_alias(bytes: &[u8]) -> Result<(TokenHash, TokenHash), String> {
    let array: &[u8; 64] = bytes
        .try_into()
        .map_err(|_| format!("token-alias key must be 64 bytes, got {}", bytes.len()))?;
    let mut token = [0u8; 32];
    let mut alias = [0u8; 32];
    token.copy_from_slice(&array[..32]);
    alias.copy_from_slice(&array[32..]);
    Ok((TokenHash::from_bytes(token), TokenHash::from_bytes(alias)))
}

pub fn license_id(id: LicenseId) -> [u8; 8] {
    id.0.to_be_bytes()
}

/// # Errors
/// The bytes are not 8 long.
pub fn parse_license_id(bytes: &[u8]) -> Result<LicenseId, String> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| format!("license id must be 8 bytes, got {}", bytes.len()))?;
    Ok(LicenseId(u64::from_be_bytes(array)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_keys_do_not_prefix_each_other() {
        let abc = AccountPrefix::parse("abc").unwrap();
        let abcd = AccountPrefix::parse("abcd").unwrap();
        assert!(!owner_name(Some(&abcd), "x").starts_with(&owner(Some(&abc))));
        assert!(owner_name(Some(&abc), "dx").starts_with(&owner(Some(&abc))));
        assert!(!owner_name(Some(&abc), "x").starts_with(&owner(None)));
        assert_eq!(owner_name(None, "ops"), b"\0ops");
    }

    #[test]
    fn token_alias_keys_group_by_token() {
        let token = TokenHash::of("t");
        let alias = TokenHash::of("a");
        let key = token_alias(&token, &alias);
        assert!(key.starts_with(token.as_bytes()));
        assert_eq!(parse_token_alias(&key).unwrap(), (token, alias));
        assert!(parse_token_alias(&key[..63]).is_err());
    }

    #[test]
    fn license_ids_sort_numerically() {
        assert!(license_id(LicenseId(2)) < license_id(LicenseId(256)));
        assert_eq!(
            parse_license_id(&license_id(LicenseId(77))).unwrap(),
            LicenseId(77)
        );
        assert!(parse_license_id(&[1, 2]).is_err());
    }
}
