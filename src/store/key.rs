//! Key encodings. The only place that builds or splits key bytes.
//!
//! Every key type of the inventory (`schema`) implements [`Key`]. Integers are
//! fixed-width big-endian so byte order is numeric order; composite keys are
//! concatenations of fixed-width or length-prefixed parts, never bincode.

use crate::model::{
    AccountPrefix, ActivationId, BlobHash, CustomerId, Day, DownloadKeyId, FileId, LicenseId,
    ProductDay, ProductId, TokenHash, VersionId,
};

/// A key of one tree: its bytes, and back.
pub trait Key: Sized {
    fn to_bytes(&self) -> impl AsRef<[u8]>;

    /// # Errors
    /// The bytes are not a key of this type (a corrupt store).
    fn from_bytes(bytes: &[u8]) -> Result<Self, String>;
}

/// The keys of `meta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    SchemaVersion,
    /// The next id for a token or plan license, u64 BE. Written in the same transaction
    /// as the record that takes an id, so it is as durable as the record and travels in
    /// backups (sled's own id counter does neither).
    NextId,
    /// Which write the store last took: a random epoch chosen when the store is opened
    /// (u64 BE) ++ a counter (u64 BE). Rewritten by every change to the store, in the
    /// same transaction, so two stores with the same stamp hold the same records. The
    /// index snapshot (`snapshot`) is trusted only at the stamp it was taken at. Since
    /// schema 3: an upkeep too old to keep the stamp refuses the store.
    Stamp,
    /// The account the bare host's public routes serve (`/`, `/v1/licenses/…`): its
    /// prefix. Set with the first account created, changed by `account set-default`
    /// (SPEC §8.2). Since schema 6.
    DefaultAccount,
}

impl MetaKey {
    const fn bytes(self) -> &'static [u8] {
        match self {
            MetaKey::SchemaVersion => b"schema_version",
            MetaKey::NextId => b"next_id",
            MetaKey::Stamp => b"stamp",
            MetaKey::DefaultAccount => b"default_account",
        }
    }
}

impl Key for MetaKey {
    fn to_bytes(&self) -> impl AsRef<[u8]> {
        self.bytes()
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        [
            MetaKey::SchemaVersion,
            MetaKey::NextId,
            MetaKey::Stamp,
            MetaKey::DefaultAccount,
        ]
        .into_iter()
        .find(|key| key.bytes() == bytes)
        .ok_or_else(|| format!("unknown meta key {:?}", String::from_utf8_lossy(bytes)))
    }
}

impl Key for AccountPrefix {
    fn to_bytes(&self) -> impl AsRef<[u8]> {
        self.as_str().as_bytes()
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "prefix is not UTF-8".to_owned())?;
        AccountPrefix::parse(text)
    }
}

impl Key for TokenHash {
    fn to_bytes(&self) -> impl AsRef<[u8]> {
        self.as_bytes()
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("hash of {} bytes", bytes.len()))?;
        Ok(TokenHash::from_bytes(array))
    }
}

impl Key for BlobHash {
    fn to_bytes(&self) -> impl AsRef<[u8]> {
        self.as_bytes()
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("blob hash of {} bytes", bytes.len()))?;
        Ok(BlobHash::from_bytes(array))
    }
}

impl Key for LicenseId {
    fn to_bytes(&self) -> impl AsRef<[u8]> {
        self.0.to_be_bytes()
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let array: [u8; 8] = bytes
            .try_into()
            .map_err(|_| format!("license id must be 8 bytes, got {}", bytes.len()))?;
        Ok(LicenseId(u64::from_be_bytes(array)))
    }
}

/// A token's name within its owner (`account: None` for operator tokens): the key of
/// `ownername_tokenhash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerName {
    pub account: Option<AccountPrefix>,
    pub name: String,
}

impl OwnerName {
    pub fn new(account: Option<&AccountPrefix>, name: &str) -> Self {
        OwnerName {
            account: account.copied(),
            name: name.to_owned(),
        }
    }
}

/// The owner part of an `ownername_tokenhash` key: the prefix's length byte then the
/// prefix for an account, a single `0` for operator tokens. Account prefixes are at least
/// 3 bytes, so the two never collide, and the length byte keeps `abc` from being a prefix
/// of `abcd`'s keys. A prefix scan by it lists one owner's tokens.
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

impl Key for OwnerName {
    fn to_bytes(&self) -> impl AsRef<[u8]> {
        let mut key = owner(self.account.as_ref());
        key.extend_from_slice(self.name.as_bytes());
        key
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let (&len, rest) = bytes.split_first().ok_or("empty owner-name key")?;
        let len = usize::from(len);
        let (account, name) = if len == 0 {
            (None, rest)
        } else {
            let prefix = rest
                .get(..len)
                .ok_or("owner-name key shorter than its prefix")?;
            (
                Some(<AccountPrefix as Key>::from_bytes(prefix)?),
                &rest[len..],
            )
        };
        let name = std::str::from_utf8(name).map_err(|_| "token name is not UTF-8")?;
        Ok(OwnerName {
            account,
            name: name.to_owned(),
        })
    }
}

/// `token ++ alias`: a `tokenhash_gracehash` key (a grace alias of `token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenAlias {
    pub token: TokenHash,
    pub alias: TokenHash,
}

/// The prefix of every `tokenhash_gracehash` key of `token`: a scan by it finds the
/// token's grace aliases.
pub fn aliases_of(token: &TokenHash) -> &[u8] {
    token.as_bytes()
}

impl Key for TokenAlias {
    fn to_bytes(&self) -> impl AsRef<[u8]> {
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(self.token.as_bytes());
        key[32..].copy_from_slice(self.alias.as_bytes());
        key
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != 64 {
            return Err(format!(
                "token-alias key must be 64 bytes, got {}",
                bytes.len()
            ));
        }
        Ok(TokenAlias {
            token: <TokenHash as Key>::from_bytes(&bytes[..32])?,
            alias: <TokenHash as Key>::from_bytes(&bytes[32..])?,
        })
    }
}

/// Splits `prefix length ++ prefix ++ rest` (an account-owned key).
fn split_owner(bytes: &[u8]) -> Result<(AccountPrefix, &[u8]), String> {
    let (&len, rest) = bytes.split_first().ok_or("empty account-owned key")?;
    let len = usize::from(len);
    if len == 0 {
        return Err("account-owned key without an account".to_owned());
    }
    let prefix = rest
        .get(..len)
        .ok_or("account-owned key shorter than its prefix")?;
    Ok((<AccountPrefix as Key>::from_bytes(prefix)?, &rest[len..]))
}

fn u64_at(bytes: &[u8], what: &str) -> Result<u64, String> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| format!("{what} must be 8 bytes, got {}", bytes.len()))?;
    Ok(u64::from_be_bytes(array))
}

macro_rules! u64_keys {
    ($($ty:ident),+) => {$(
        impl Key for $ty {
            fn to_bytes(&self) -> impl AsRef<[u8]> {
                self.0.to_be_bytes()
            }

            fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
                u64_at(bytes, stringify!($ty)).map($ty)
            }
        }
    )+};
}

u64_keys!(
    ProductId,
    VersionId,
    FileId,
    CustomerId,
    DownloadKeyId,
    ActivationId
);

/// `owner(account) ++ id (u64 BE)`: a record of an account by id (`product`, `group`). A
/// scan by `owner(account)` lists the account's records in id order; another account's id
/// is simply not under this account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountId {
    pub account: AccountPrefix,
    pub id: u64,
}

/// The bytes of an [`AccountId`] key, built on the stack (it is every licensing record's
/// key, read on the validation hot path): the same bytes as `owner(account) ++ id`.
pub struct AccountIdBytes {
    bytes: [u8; 1 + AccountPrefix::MAX_LEN + 8],
    len: usize,
}

impl AsRef<[u8]> for AccountIdBytes {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Key for AccountId {
    fn to_bytes(&self) -> impl AsRef<[u8]> {
        let prefix = self.account.as_str().as_bytes();
        let mut key = AccountIdBytes {
            bytes: [0; 1 + AccountPrefix::MAX_LEN + 8],
            len: 1 + prefix.len() + 8,
        };
        key.bytes[0] = prefix.len() as u8;
        key.bytes[1..=prefix.len()].copy_from_slice(prefix);
        key.bytes[1 + prefix.len()..key.len].copy_from_slice(&self.id.to_be_bytes());
        key
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let (account, rest) = split_owner(bytes)?;
        Ok(AccountId {
            account,
            id: u64_at(rest, "record id")?,
        })
    }
}

/// `owner(account) ++ product id ++ version id` (u64 BE each): a `version` key. A scan by
/// [`versions_of`] lists a product's versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductVersion {
    pub account: AccountPrefix,
    pub product: ProductId,
    pub version: VersionId,
}

/// The prefix of every `version` key of a product.
pub fn versions_of(account: &AccountPrefix, product: ProductId) -> Vec<u8> {
    let mut key = owner(Some(account));
    key.extend_from_slice(&product.0.to_be_bytes());
    key
}

impl Key for ProductVersion {
    fn to_bytes(&self) -> impl AsRef<[u8]> {
        let mut key = versions_of(&self.account, self.product);
        key.extend_from_slice(&self.version.0.to_be_bytes());
        key
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let (account, rest) = split_owner(bytes)?;
        if rest.len() != 16 {
            return Err(format!(
                "version key tail must be 16 bytes, got {}",
                rest.len()
            ));
        }
        Ok(ProductVersion {
            account,
            product: ProductId(u64_at(&rest[..8], "product id")?),
            version: VersionId(u64_at(&rest[8..], "version id")?),
        })
    }
}

/// `owner(account) ++ slug`: a `slug_productid` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSlug {
    pub account: AccountPrefix,
    pub slug: String,
}

impl Key for AccountSlug {
    fn to_bytes(&self) -> impl AsRef<[u8]> {
        let mut key = owner(Some(&self.account));
        key.extend_from_slice(self.slug.as_bytes());
        key
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let (account, rest) = split_owner(bytes)?;
        let slug = std::str::from_utf8(rest).map_err(|_| "slug is not UTF-8")?;
        Ok(AccountSlug {
            account,
            slug: slug.to_owned(),
        })
    }
}

/// `owner(account) ++ a ++ b` (u64 BE each): a pair of ids in an account — a customer's
/// key (`customer_keyid`), a product's key (`product_keyid`), a key's activation
/// (`activation`). A scan by [`pairs_of`] lists the `b`s of one `a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountPair {
    pub account: AccountPrefix,
    pub a: u64,
    pub b: u64,
}

/// The prefix of every [`AccountPair`] key of `a` in `account`.
pub fn pairs_of(account: &AccountPrefix, a: u64) -> Vec<u8> {
    let mut key = owner(Some(account));
    key.extend_from_slice(&a.to_be_bytes());
    key
}

impl Key for AccountPair {
    fn to_bytes(&self) -> impl AsRef<[u8]> {
        let mut key = pairs_of(&self.account, self.a);
        key.extend_from_slice(&self.b.to_be_bytes());
        key
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let (account, rest) = split_owner(bytes)?;
        if rest.len() != 16 {
            return Err(format!(
                "pair key tail must be 16 bytes, got {}",
                rest.len()
            ));
        }
        Ok(AccountPair {
            account,
            a: u64_at(&rest[..8], "first id")?,
            b: u64_at(&rest[8..], "second id")?,
        })
    }
}

/// The prefix of every `rollup` key of `account`'s `product`: a range under it lists the
/// product's days in order.
pub fn rollups_of(account: &AccountPrefix, product: ProductId) -> Vec<u8> {
    versions_of(account, product)
}

/// `owner(account) ++ product id (u64 BE) ++ day (u32 BE, days since 1970-01-01)`: a
/// `rollup` key. Big-endian, so a range from one day to another of a product is its days
/// in order, and a scan by `owner(account)` finds all of an account's rollups.
impl Key for ProductDay {
    fn to_bytes(&self) -> impl AsRef<[u8]> {
        let mut key = rollups_of(&self.account, self.product);
        key.extend_from_slice(&self.day.0.to_be_bytes());
        key
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let (account, rest) = split_owner(bytes)?;
        if rest.len() != 12 {
            return Err(format!(
                "rollup key tail must be 12 bytes, got {}",
                rest.len()
            ));
        }
        let day: [u8; 4] = rest[8..].try_into().map_err(|_| "day must be 4 bytes")?;
        Ok(ProductDay {
            account,
            product: ProductId(u64_at(&rest[..8], "product id")?),
            day: Day(u32::from_be_bytes(day)),
        })
    }
}

/// A download key's keyed lookup hash (`secrets::KeyVault::lookup_hash`, which already
/// binds the account): the key of `keylookup_keyid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLookup(pub [u8; 32]);

impl Key for KeyLookup {
    fn to_bytes(&self) -> impl AsRef<[u8]> {
        self.0
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        bytes
            .try_into()
            .map(KeyLookup)
            .map_err(|_| format!("key lookup hash of {} bytes", bytes.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes<K: Key>(key: &K) -> Vec<u8> {
        key.to_bytes().as_ref().to_vec()
    }

    fn owner_name(account: Option<&AccountPrefix>, name: &str) -> Vec<u8> {
        bytes(&OwnerName::new(account, name))
    }

    #[test]
    fn owner_keys_do_not_prefix_each_other() {
        let abc = AccountPrefix::parse("abc").unwrap();
        let abcd = AccountPrefix::parse("abcd").unwrap();
        assert!(!owner_name(Some(&abcd), "x").starts_with(&owner(Some(&abc))));
        assert!(owner_name(Some(&abc), "dx").starts_with(&owner(Some(&abc))));
        assert!(!owner_name(Some(&abc), "x").starts_with(&owner(None)));
        assert_eq!(owner_name(None, "ops"), b"\0ops");
        for key in [
            OwnerName::new(Some(&abcd), "ci"),
            OwnerName::new(None, "ops"),
        ] {
            assert_eq!(OwnerName::from_bytes(&bytes(&key)).unwrap(), key);
        }
        assert!(OwnerName::from_bytes(b"\x05ab").is_err());
    }

    #[test]
    fn token_alias_keys_group_by_token() {
        let token = TokenHash::of("t");
        let alias = TokenHash::of("a");
        let key = bytes(&TokenAlias { token, alias });
        assert!(key.starts_with(token.as_bytes()));
        assert_eq!(
            TokenAlias::from_bytes(&key).unwrap(),
            TokenAlias { token, alias }
        );
        assert!(TokenAlias::from_bytes(&key[..63]).is_err());
    }

    #[test]
    fn catalog_keys_round_trip_and_group_by_owner() {
        let abc = AccountPrefix::parse("abc").unwrap();
        let abcd = AccountPrefix::parse("abcd").unwrap();
        let id = AccountId {
            account: abc,
            id: 42,
        };
        assert_eq!(AccountId::from_bytes(&bytes(&id)).unwrap(), id);
        // Built on the stack, the same bytes as `owner ++ id`, up to the longest prefix.
        let longest = AccountPrefix::parse(&"z".repeat(AccountPrefix::MAX_LEN)).unwrap();
        for account in [abc, longest] {
            let id = AccountId {
                account,
                id: 0x0102_0304_0506_0708,
            };
            let mut expected = owner(Some(&account));
            expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
            assert_eq!(bytes(&id), expected);
        }
        assert!(
            !bytes(&AccountId {
                account: abcd,
                id: 1
            })
            .starts_with(&owner(Some(&abc)))
        );
        let pv = ProductVersion {
            account: abc,
            product: ProductId(7),
            version: VersionId(9),
        };
        assert_eq!(ProductVersion::from_bytes(&bytes(&pv)).unwrap(), pv);
        assert!(bytes(&pv).starts_with(&versions_of(&abc, ProductId(7))));
        assert!(!bytes(&pv).starts_with(&versions_of(&abc, ProductId(8))));
        let slug = AccountSlug {
            account: abc,
            slug: "my-plugin".into(),
        };
        assert_eq!(AccountSlug::from_bytes(&bytes(&slug)).unwrap(), slug);
        assert!(AccountId::from_bytes(b"\0abc").is_err());
    }

    #[test]
    fn licensing_keys_round_trip_and_group_by_first_id() {
        let abc = AccountPrefix::parse("abc").unwrap();
        let pair = AccountPair {
            account: abc,
            a: 7,
            b: 9,
        };
        assert_eq!(AccountPair::from_bytes(&bytes(&pair)).unwrap(), pair);
        assert!(bytes(&pair).starts_with(&pairs_of(&abc, 7)));
        assert!(!bytes(&pair).starts_with(&pairs_of(&abc, 8)));
        let lookup = KeyLookup([5; 32]);
        assert_eq!(KeyLookup::from_bytes(&bytes(&lookup)).unwrap(), lookup);
        assert!(KeyLookup::from_bytes(&[1]).is_err());
    }

    #[test]
    fn rollup_keys_round_trip_and_sort_by_day() {
        let abc = AccountPrefix::parse("abc").unwrap();
        let at = |product: u64, day: u32| ProductDay {
            account: abc,
            product: ProductId(product),
            day: Day(day),
        };
        let key = at(7, 20_000);
        assert_eq!(ProductDay::from_bytes(&bytes(&key)).unwrap(), key);
        assert!(bytes(&key).starts_with(&rollups_of(&abc, ProductId(7))));
        assert!(!bytes(&key).starts_with(&rollups_of(&abc, ProductId(8))));
        assert!(bytes(&key).starts_with(&owner(Some(&abc))));
        assert!(bytes(&at(7, 255)) < bytes(&at(7, 256)));
        assert!(bytes(&at(7, u32::MAX)) < bytes(&at(8, 0)));
        assert!(ProductDay::from_bytes(&bytes(&key)[..15]).is_err());
    }

    #[test]
    fn license_ids_sort_numerically() {
        assert!(bytes(&LicenseId(2)) < bytes(&LicenseId(256)));
        assert_eq!(
            LicenseId::from_bytes(&bytes(&LicenseId(77))).unwrap(),
            LicenseId(77)
        );
        assert!(LicenseId::from_bytes(&[1, 2]).is_err());
    }

    #[test]
    fn meta_keys_round_trip() {
        for key in [
            MetaKey::SchemaVersion,
            MetaKey::NextId,
            MetaKey::Stamp,
            MetaKey::DefaultAccount,
        ] {
            assert_eq!(MetaKey::from_bytes(&bytes(&key)).unwrap(), key);
        }
        assert!(MetaKey::from_bytes(b"other").is_err());
    }
}
