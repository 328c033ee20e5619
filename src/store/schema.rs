//! The on-disk inventory: every sled tree, declared once with its name, key type, value
//! type and layout, and the schema version.
//!
//! The data directory holds `db/` (sled), `server.key` (32 raw bytes, mode 0600, from
//! which operator-token values are derived; never inside the database), `blobs/` (file
//! content named by its hash, see `blobs`) and, after a clean stop, `index.snapshot`
//! (see `snapshot`).
//!
//! Each tree is a [`Table<K, V>`] constant: reads and writes name the table and pass a
//! typed key (`tx.get(&TOKENS, &hash)`), so the compiler checks that a tree is read with
//! its own key and value types. Keys encode through `Key` (`key.rs`, the only place that
//! builds key bytes: integers big-endian so byte order is numeric order); values through
//! `Value` (`codec.rs`: a record is `[format version: u8] ++ bincode(body)`).
//!
//! Adding a tree: one line in the `tables!` list below (it opens, backs up and appears in
//! the docs by itself), a numbered migration if existing data must fill it, and its key
//! type in `key.rs` if it is a new one.

use super::codec::{Count, Empty, Raw, Value};
use super::key::{
    AccountId, AccountPair, AccountSlug, Key, KeyLookup, MetaKey, OwnerName, ProductVersion,
    TokenAlias,
};
use crate::model::catalog::{Home, ProductHome};
use crate::model::{
    Account, AccountPrefix, Activation, BlobHash, Customer, CustomerId, DayRollup, DownloadKey,
    DownloadKeyId, FileId, GraceAlias, Group, HolderDeactivations, LicenseId, LicensingSettings,
    PlanLicense, Product, ProductDay, ProductId, Release, Token, TokenHash, VersionId,
};
use std::marker::PhantomData;

/// The layout this binary reads and writes. Bump it with a numbered migration in `migrate`.
pub const SCHEMA_VERSION: u32 = 9;

/// One tree: where it is, what its keys and values are. A constant per tree, below.
pub struct Table<K, V> {
    id: TreeId,
    _types: PhantomData<fn(&K) -> V>,
}

impl<K: Key, V: Value> Table<K, V> {
    const fn new(id: TreeId) -> Self {
        Table {
            id,
            _types: PhantomData,
        }
    }

    pub const fn id(&self) -> TreeId {
        self.id
    }

    pub const fn name(&self) -> &'static str {
        TREES[self.id as usize].name
    }
}

/// What the inventory says of one tree (for backups, migrations, `doctor`, docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeInfo {
    pub id: TreeId,
    /// The sled tree's name: part of the on-disk format.
    pub name: &'static str,
    /// The key and value types, as declared.
    pub key: &'static str,
    pub value: &'static str,
    /// The layout, in words.
    pub layout: &'static str,
}

macro_rules! tables {
    ($( $(#[doc = $doc:literal])+ $konst:ident, $variant:ident, $name:literal: $key:ty => $value:ty; )+) => {
        /// Index of a tree in [`TREES`] (and in a transaction's view).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum TreeId { $( $variant ),+ }

        $( $(#[doc = $doc])+ pub const $konst: Table<$key, $value> = Table::new(TreeId::$variant); )+

        /// Every tree, in the order of [`TreeId`]: the store opens exactly these, a
        /// transaction spans all of them, a backup copies all of them.
        pub const TREES: &[TreeInfo] = &[ $( TreeInfo {
            id: TreeId::$variant,
            name: $name,
            key: stringify!($key),
            value: stringify!($value),
            layout: concat!($( $doc ),+),
        } ),+ ];
    };
}

tables! {
    /// key = `b"schema_version"` → u32 BE; `b"next_id"` → u64 BE (the next token or
    /// plan license id, written with the record that takes one); `b"stamp"` → 16 bytes
    /// (a random per-open epoch ++ a counter: which write the store last took).
    META, Meta, "meta": MetaKey => Raw;
    /// key = account prefix (ASCII, 3–32 bytes), value = record `Account`.
    ACCOUNTS, Accounts, "prefix_account": AccountPrefix => Account;
    /// key = blake3(token) (32 bytes), value = record `Token`.
    TOKENS, Tokens, "tokenhash_token": TokenHash => Token;
    /// key = owner (prefix length ++ prefix, or a single 0 for operators) ++ token name,
    /// value = blake3(token) (32 bytes). Unique per owner; a prefix scan by owner lists
    /// an owner's tokens in name order.
    OWNER_NAMES, OwnerNames, "ownername_tokenhash": OwnerName => TokenHash;
    /// key = LicenseId (u64 BE), value = record `PlanLicense`.
    LICENSES, Licenses, "licenseid_license": LicenseId => PlanLicense;
    /// key = blake3(license key) (32 bytes), value = LicenseId (u64 BE).
    LICENSE_HASHES, LicenseHashes, "licensehash_licenseid": TokenHash => LicenseId;
    /// key = blake3(a rotated token's previous secret) (32 bytes), value = record
    /// `GraceAlias` (the token's current hash and when the old secret stops working).
    GRACE, Grace, "tokenhash_grace": TokenHash => GraceAlias;
    /// key = a token's current hash ++ the hash of one of its previous secrets (64
    /// bytes), value = empty. The reverse index of `tokenhash_grace`: a prefix scan by
    /// token finds its grace aliases (since schema 4).
    GRACE_BY_TOKEN, GraceByToken, "tokenhash_gracehash": TokenAlias => Empty;
    /// key = blake3 of a blob's content (32 bytes, its name under `<data>/blobs/`),
    /// value = how many records reference it (u64 BE, never 0: the entry goes with the
    /// last reference). Changed only through `Tx::add_ref` / `Tx::drop_ref`, in the
    /// transaction of the record that gains or loses the reference (since schema 5).
    BLOB_REFS, BlobRefs, "blob_refs": BlobHash => Count;
    /// key = owner(account) ++ group id (u64 BE), value = record `Group` (the `default`
    /// group, id 1, is not stored) (since schema 6).
    GROUPS, Groups, "group": AccountId => Group;
    /// key = owner(account) ++ product id (u64 BE), value = record `Product` (since
    /// schema 6).
    PRODUCTS, Products, "product": AccountId => Product;
    /// key = product id (u64 BE), value = record `ProductHome` (its account; kept, marked
    /// deleted, after the product goes, so an id is never reused) (since schema 6).
    PRODUCT_HOMES, ProductHomes, "productid_home": ProductId => ProductHome;
    /// key = owner(account) ++ slug, value = product id (u64 BE). Unique per account
    /// (since schema 6).
    PRODUCT_SLUGS, ProductSlugs, "slug_productid": AccountSlug => ProductId;
    /// key = owner(account) ++ product id ++ version id (u64 BE each), value = record
    /// `Release` (a version with its files) (since schema 6).
    VERSIONS, Versions, "version": ProductVersion => Release;
    /// key = version id (u64 BE), value = record `Home` (account, product, version)
    /// (since schema 6).
    VERSION_HOMES, VersionHomes, "versionid_home": VersionId => Home;
    /// key = file id (u64 BE), value = record `Home` of its version (since schema 6).
    FILE_HOMES, FileHomes, "fileid_home": FileId => Home;
    /// key = owner(account) ++ customer id (u64 BE), value = record `Customer` (since
    /// schema 7).
    CUSTOMERS, Customers, "customer": AccountId => Customer;
    /// key = owner(account) ++ the customer's email lower-cased, value = customer id
    /// (u64 BE). Unique per account (since schema 7).
    CUSTOMER_EMAILS, CustomerEmails, "email_customerid": AccountSlug => CustomerId;
    /// key = owner(account) ++ download key id (u64 BE), value = record `DownloadKey`
    /// (the key itself only sealed) (since schema 7).
    DOWNLOAD_KEYS, DownloadKeys, "download_key": AccountId => DownloadKey;
    /// key = the key's keyed lookup hash (32 bytes; it binds the account), value =
    /// download key id (u64 BE). Keys are unique per account (since schema 7).
    KEY_LOOKUPS, KeyLookups, "keylookup_keyid": KeyLookup => DownloadKeyId;
    /// key = owner(account) ++ customer id ++ download key id (u64 BE each), value =
    /// empty: a customer's keys (since schema 7).
    CUSTOMER_KEYS, CustomerKeys, "customer_keyid": AccountPair => Empty;
    /// key = owner(account) ++ product id ++ download key id (u64 BE each), value =
    /// empty: the keys listing a product (not those covering `all`), so deleting a product
    /// drops it from them without a scan (since schema 7).
    PRODUCT_KEYS, ProductKeys, "product_keyid": AccountPair => Empty;
    /// key = owner(account) ++ download key id ++ activation id (u64 BE each), value =
    /// record `Activation` (since schema 7).
    ACTIVATIONS, Activations, "activation": AccountPair => Activation;
    /// key = owner(account) ++ activation id (u64 BE), value = its download key id
    /// (since schema 7).
    ACTIVATION_KEYS, ActivationKeys, "activationid_keyid": AccountId => DownloadKeyId;
    /// key = account prefix, value = the account's counted activations (u64 BE, its
    /// `activationUsage`), changed in the transactions that change them (since schema 7).
    ACTIVATION_USAGE, ActivationUsage, "activation_usage": AccountPrefix => Count;
    /// key = account prefix, value = record `LicensingSettings` (absent: the defaults)
    /// (since schema 7).
    LICENSING_SETTINGS, LicensingSettingsTree, "licensing_settings": AccountPrefix => LicensingSettings;
    /// key = owner(account) ++ product id (u64 BE) ++ UTC day (u32 BE, days since
    /// 1970-01-01), value = record `DayRollup`: the product's counted checks, downloads,
    /// validations and activations that day (SPEC §10), added to by the background flush
    /// of the in-memory counts. Goes with its account; kept when its product is deleted
    /// (since schema 8).
    ROLLUPS, Rollups, "rollup": ProductDay => DayRollup;
    /// key = owner(account) ++ download key id (u64 BE), value = record
    /// `HolderDeactivations`: when the key's holder freed its activations in the last 30
    /// days (SPEC §9.2 `--max-deactivations-per-month`), written in the transaction that
    /// deletes the activation; goes with its key. Absent: none (since schema 9).
    HOLDER_DEACTIVATIONS, HolderDeactivationsTree, "holder_deactivations": AccountId => HolderDeactivations;
}

impl TreeId {
    pub fn name(self) -> &'static str {
        TREES[self as usize].name
    }

    /// The tree of this name, if the inventory has one.
    pub fn by_name(name: &str) -> Option<TreeId> {
        TREES
            .iter()
            .find(|tree| tree.name == name)
            .map(|tree| tree.id)
    }
}

/// The `tables!` order is the `TreeId` order.
const _: () = {
    let mut i = 0;
    while i < TREES.len() {
        assert!(TREES[i].id as usize == i);
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_tree_the_store_opens_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::Store::open(dir.path()).unwrap();
        let opened: std::collections::BTreeSet<String> = store
            .db
            .tree_names()
            .iter()
            .map(|name| String::from_utf8(name.to_vec()).unwrap())
            .filter(|name| name != "__sled__default")
            .collect();
        let declared: std::collections::BTreeSet<String> =
            TREES.iter().map(|tree| tree.name.to_owned()).collect();
        assert_eq!(opened, declared);
        assert_eq!(declared.len(), TREES.len(), "names are unique");
        for (i, tree) in TREES.iter().enumerate() {
            assert_eq!(tree.id as usize, i);
            assert_eq!(TreeId::by_name(tree.name), Some(tree.id));
            assert!(!tree.layout.trim().is_empty(), "{} has a layout", tree.name);
        }
        assert_eq!(TOKENS.name(), "tokenhash_token");
        assert_eq!(GRACE_BY_TOKEN.id(), TreeId::GraceByToken);
        assert_eq!(TREES[TreeId::OwnerNames as usize].key, "OwnerName");
    }
}
