//! Key encodings. The only place that builds or splits key bytes.

use crate::model::{AccountPrefix, LicenseId};

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
    fn license_ids_sort_numerically() {
        assert!(license_id(LicenseId(2)) < license_id(LicenseId(256)));
        assert_eq!(
            parse_license_id(&license_id(LicenseId(77))).unwrap(),
            LicenseId(77)
        );
        assert!(parse_license_id(&[1, 2]).is_err());
    }
}
