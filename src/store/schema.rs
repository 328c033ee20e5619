//! The on-disk inventory: every sled tree, its key and value layout, and the schema version.
//!
//! The data directory holds `db/` (sled), `server.key` (32 raw bytes, mode 0600, from
//! which operator-token values are derived; never inside the database) and, after a clean
//! stop, `index.snapshot` (see `snapshot`).
//!
//! Values marked "record" are `[format version: u8] ++ bincode(body)` (see `codec`).
//! Keys are raw bytes built only by `key`; integers are big-endian so byte order is
//! numeric order.

/// The layout this binary reads and writes. Bump it with a numbered migration in `migrate`.
pub const SCHEMA_VERSION: u32 = 4;

/// key = `b"schema_version"`, value = u32 BE; key = `b"next_id"`, value = u64 BE;
/// key = `b"stamp"`, value = 16 bytes (see [`STAMP_KEY`]).
pub const META: &str = "meta";
/// key = account prefix (ASCII, 3–32 bytes), value = record `Account`.
pub const PREFIX_ACCOUNT: &str = "prefix_account";
/// key = blake3(token) (32 bytes), value = record `Token`.
pub const TOKENHASH_TOKEN: &str = "tokenhash_token";
/// key = owner key ++ token name (see `key::owner_name`), value = blake3(token) (32 bytes).
/// Unique per owner; a prefix scan by owner lists an owner's tokens in name order.
pub const OWNERNAME_TOKENHASH: &str = "ownername_tokenhash";
/// key = LicenseId (u64 BE), value = record `PlanLicense`.
pub const LICENSEID_LICENSE: &str = "licenseid_license";
/// key = blake3(license key) (32 bytes), value = LicenseId (u64 BE).
pub const LICENSEHASH_LICENSEID: &str = "licensehash_licenseid";

/// key = blake3(a rotated token's previous secret) (32 bytes), value = record
/// `GraceAlias` (the token's current hash and when the old secret stops working).
pub const TOKENHASH_GRACE: &str = "tokenhash_grace";

/// key = a token's current hash (32 bytes, its key in `tokenhash_token`) ++ the hash of
/// one of its previous secrets (32 bytes, a key of `tokenhash_grace`), value = empty.
/// The reverse index of `tokenhash_grace`: a prefix scan by token finds that token's
/// grace aliases, so deleting or rotating a token never scans every alias. Since
/// schema 4 (built from `tokenhash_grace` by the migration).
pub const TOKENHASH_GRACEHASH: &str = "tokenhash_gracehash";

/// Every tree, in the order of [`TreeId`]; transactions span all of them.
pub const TREES: [&str; 8] = [
    META,
    PREFIX_ACCOUNT,
    TOKENHASH_TOKEN,
    OWNERNAME_TOKENHASH,
    LICENSEID_LICENSE,
    LICENSEHASH_LICENSEID,
    TOKENHASH_GRACE,
    TOKENHASH_GRACEHASH,
];

/// Index of a tree in [`TREES`] (and in a transaction's view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeId {
    Meta = 0,
    Accounts = 1,
    Tokens = 2,
    OwnerNames = 3,
    Licenses = 4,
    LicenseHashes = 5,
    Grace = 6,
    GraceByToken = 7,
}

impl TreeId {
    pub fn name(self) -> &'static str {
        TREES[self as usize]
    }
}

pub const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";
/// In `meta`: the next id for a token or plan license, u64 BE. Written in the same
/// transaction as the record that takes an id, so it is as durable as the record and
/// travels in backups (sled's own id counter does neither).
pub const NEXT_ID_KEY: &[u8] = b"next_id";
/// In `meta`: which write the store last took: a random epoch chosen when the store is
/// opened (u64 BE) ++ a counter (u64 BE). Rewritten by every change to the store, in the
/// same transaction, so two stores with the same stamp hold the same records. The
/// index snapshot (`snapshot`) is trusted only at the stamp it was taken at. Since
/// schema 3: an upkeep too old to keep the stamp refuses the store.
pub const STAMP_KEY: &[u8] = b"stamp";
