//! Numbered migrations, run when the store opens.
//!
//! The `meta` tree holds `schema_version`. A fresh store is stamped with
//! [`SCHEMA_VERSION`]; an older one runs `MIGRATIONS[from - 1 ..]` in order, flushing and
//! bumping the version after each (so a migration must be idempotent: a crash between its
//! work and the bump runs it again); a newer one is refused, so an old binary never writes
//! a layout it does not understand.

use super::StoreError;
use super::key::{Key, MetaKey, TokenAlias};
use super::schema::{ACCOUNTS, BLOB_REFS, GRACE, GRACE_BY_TOKEN, META, SCHEMA_VERSION};

/// `MIGRATIONS[n - 1]` takes the store from version `n` to `n + 1`.
const MIGRATIONS: &[Migration] = &[
    accounts_v1_to_v2,
    stamp_v2_to_v3,
    grace_index_v3_to_v4,
    blob_refs_v4_to_v5,
    catalog_v5_to_v6,
    licensing_v6_to_v7,
    rollups_v7_to_v8,
    holder_deactivations_v8_to_v9,
];

/// One step: rewrites the store from version `n` to `n + 1`; must be idempotent.
type Migration = fn(&sled::Db) -> Result<(), StoreError>;

const _: () = assert!(MIGRATIONS.len() as u32 + 1 == SCHEMA_VERSION);

/// Why a store could not be brought to the current schema.
#[derive(Debug)]
pub enum SchemaError {
    /// The store was written by a newer upkeep.
    TooNew {
        found: u32,
        supported: u32,
    },
    Unreadable(String),
    Store(StoreError),
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaError::TooNew { found, supported } => write!(
                f,
                "the store has schema version {found}, but this upkeep supports up to {supported}; \
                 run a newer upkeep (or restore a backup made by this version)"
            ),
            SchemaError::Unreadable(why) => write!(f, "unreadable schema version: {why}"),
            SchemaError::Store(err) => write!(f, "{err}"),
        }
    }
}

impl From<sled::Error> for SchemaError {
    fn from(err: sled::Error) -> Self {
        SchemaError::Store(err.into())
    }
}

/// 5 → 6: the release catalogue's trees (`group`, `product`, …) appear, empty: nothing
/// to rewrite. The bump makes an older upkeep refuse a store whose products it could not
/// back up.
#[allow(clippy::unnecessary_wraps)]
fn catalog_v5_to_v6(_db: &sled::Db) -> Result<(), StoreError> {
    Ok(())
}

/// 6 → 7: the customer licensing trees (`customer`, `download_key`, `activation`, …)
/// appear, empty: nothing to rewrite. The bump makes an older upkeep refuse a store whose
/// customers and keys it could not back up.
#[allow(clippy::unnecessary_wraps)]
fn licensing_v6_to_v7(_db: &sled::Db) -> Result<(), StoreError> {
    Ok(())
}

/// 7 → 8: the report rollups' tree (`rollup`) appears, empty: nothing to rewrite. The
/// bump makes an older upkeep refuse a store whose rollups it could not back up.
#[allow(clippy::unnecessary_wraps)]
fn rollups_v7_to_v8(_db: &sled::Db) -> Result<(), StoreError> {
    Ok(())
}

/// 8 → 9: the holders' deactivations tree (`holder_deactivations`) appears, empty (the
/// counts were kept in memory before): nothing to rewrite. The bump makes an older
/// upkeep refuse the store, and a backup of it, rather than fail on a tree it does not
/// know in the middle of a restore.
#[allow(clippy::unnecessary_wraps)]
fn holder_deactivations_v8_to_v9(_db: &sled::Db) -> Result<(), StoreError> {
    Ok(())
}

/// 1 → 2: `Account` records gain `updated_at` (= `created_at`). Rewrites every account
/// in one batch; decoding accepts both versions, so a rerun is harmless.
fn accounts_v1_to_v2(db: &sled::Db) -> Result<(), StoreError> {
    use super::codec;
    use crate::model::Account;
    let accounts = db.open_tree(ACCOUNTS.name())?;
    let mut batch = sled::Batch::default();
    let mut n = 0;
    for entry in accounts.iter() {
        let (key, value) = entry?;
        if value.first() == Some(&<Account as codec::Record>::VERSION) {
            continue;
        }
        let account: Account = codec::decode(&value).map_err(|err| StoreError::Corrupt {
            tree: ACCOUNTS.name(),
            key: String::from_utf8_lossy(&key).into_owned(),
            reason: err.to_string(),
        })?;
        batch.insert(key, codec::encode(&account));
        n += 1;
    }
    accounts.apply_batch(batch)?;
    tracing::info!(accounts = n, "rewrote account records as version 2");
    Ok(())
}

/// 2 → 3: the store gains its stamp (`MetaKey::Stamp`), so that an index snapshot can
/// tell whether it is current. Nothing else changes; the bump itself is the point: an
/// upkeep that does not keep the stamp must not write to a store that relies on it.
fn stamp_v2_to_v3(db: &sled::Db) -> Result<(), StoreError> {
    let mut epoch = [0u8; 8];
    getrandom::fill(&mut epoch).map_err(|err| StoreError::Bug(format!("OS RNG: {err}")))?;
    let mut stamp = [0u8; 16];
    stamp[..8].copy_from_slice(&epoch);
    db.open_tree(META.name())?
        .insert(MetaKey::Stamp.to_bytes().as_ref(), &stamp)?;
    Ok(())
}

/// 3 → 4: the reverse index of grace aliases (`tokenhash_gracehash`: token ++ alias),
/// built from `tokenhash_grace`, so deleting or rotating a token finds its aliases
/// without scanning them all. Inserting the same keys again is harmless, so a rerun is
/// too. A new stamp makes any index snapshot of the old layout stale.
fn grace_index_v3_to_v4(db: &sled::Db) -> Result<(), StoreError> {
    use super::codec;
    use crate::model::{GraceAlias, TokenHash};
    let grace = db.open_tree(GRACE.name())?;
    let by_token = db.open_tree(GRACE_BY_TOKEN.name())?;
    let corrupt = |key: &[u8], reason: String| StoreError::Corrupt {
        tree: GRACE.name(),
        key: super::tx::hex(key),
        reason,
    };
    let mut batch = sled::Batch::default();
    let mut n = 0;
    for entry in grace.iter() {
        let (old, value) = entry?;
        let alias: GraceAlias =
            codec::decode(&value).map_err(|err| corrupt(&old, err.to_string()))?;
        let old = <TokenHash as Key>::from_bytes(&old).map_err(|why| corrupt(&old, why))?;
        let key = TokenAlias {
            token: alias.token,
            alias: old,
        };
        batch.insert(key.to_bytes().as_ref(), &[]);
        n += 1;
    }
    by_token.apply_batch(batch)?;
    let mut stamp = [0u8; 16];
    getrandom::fill(&mut stamp[..8]).map_err(|err| StoreError::Bug(format!("OS RNG: {err}")))?;
    db.open_tree(META.name())?
        .insert(MetaKey::Stamp.to_bytes().as_ref(), &stamp)?;
    tracing::info!(aliases = n, "indexed grace aliases by token");
    Ok(())
}

/// 4 → 5: the store gains `blob_refs` (blob hash → reference count) and `<data>/blobs/`.
/// A schema-4 store holds no blob, so the empty tree is its right content; the bump
/// itself is the point: an upkeep that knows no blobs must refuse the store, or its
/// backups would leave the files out and its writes could drop references it does not
/// see. A rerun creates the same empty tree.
fn blob_refs_v4_to_v5(db: &sled::Db) -> Result<(), StoreError> {
    db.open_tree(BLOB_REFS.name())?;
    Ok(())
}

pub(super) fn schema_version(db: &sled::Db) -> Result<Option<u32>, SchemaError> {
    let meta = db.open_tree(META.name())?;
    match meta.get(MetaKey::SchemaVersion.to_bytes().as_ref())? {
        None => Ok(None),
        Some(bytes) => {
            let array: [u8; 4] = bytes
                .as_ref()
                .try_into()
                .map_err(|_| SchemaError::Unreadable(format!("{} bytes", bytes.len())))?;
            Ok(Some(u32::from_be_bytes(array)))
        }
    }
}

fn set_schema_version(db: &sled::Db, version: u32) -> Result<(), SchemaError> {
    db.open_tree(META.name())?.insert(
        MetaKey::SchemaVersion.to_bytes().as_ref(),
        &version.to_be_bytes(),
    )?;
    db.flush()?;
    Ok(())
}

/// Brings the store to [`SCHEMA_VERSION`].
pub(super) fn run(db: &sled::Db) -> Result<(), SchemaError> {
    let found = match schema_version(db)? {
        None => {
            set_schema_version(db, SCHEMA_VERSION)?;
            return Ok(());
        }
        Some(found) => found,
    };
    if found > SCHEMA_VERSION {
        return Err(SchemaError::TooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == 0 {
        return Err(SchemaError::Unreadable("version 0".to_owned()));
    }
    for version in found..SCHEMA_VERSION {
        MIGRATIONS[(version - 1) as usize](db).map_err(SchemaError::Store)?;
        set_schema_version(db, version + 1)?;
        tracing::info!(from = version, to = version + 1, "migration finished");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{NewToken, Store};
    use super::*;
    use crate::model::{Principal, Scope, Scopes};

    #[test]
    fn fresh_store_is_stamped_and_newer_store_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        run(&db).unwrap();
        assert_eq!(schema_version(&db).unwrap(), Some(SCHEMA_VERSION));
        run(&db).unwrap();
        set_schema_version(&db, SCHEMA_VERSION + 1).unwrap();
        let err = run(&db).unwrap_err();
        assert!(matches!(err, SchemaError::TooNew { found, .. } if found == SCHEMA_VERSION + 1));
        assert!(err.to_string().contains("newer upkeep"));
    }

    #[test]
    fn the_grace_index_migration_indexes_existing_aliases() {
        let (dir, store, account) = store_with_acme();
        let new = NewToken {
            principal: Principal::Account(account.prefix),
            name: "ci".to_owned(),
            scopes: Scopes::only(Scope::Api),
            expires_at: None,
        };
        let ci = store
            .create_token(new, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        let hour = std::time::Duration::from_secs(3600);
        store
            .rotate_token(&ci.token.hash, Some(now().saturating_add(hour)), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        // A schema-3 store: the same aliases, no reverse index.
        store.tree(GRACE_BY_TOKEN.id()).clear().unwrap();
        store
            .tree(META.id())
            .insert(
                MetaKey::SchemaVersion.to_bytes().as_ref(),
                &3u32.to_be_bytes(),
            )
            .unwrap();
        store.db.flush().unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(schema_version(&store.db).unwrap(), Some(SCHEMA_VERSION));
        assert_eq!(store.count(&GRACE_BY_TOKEN), 1);
        assert!(
            store.index().get(&ci.token.hash).is_some(),
            "the old secret, in its grace"
        );
        store
            .delete_token(Some(&account.prefix), "ci")
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert!(store.count(&GRACE) == 0);
        assert!(store.count(&GRACE_BY_TOKEN) == 0);
        assert!(store.index().get(&ci.token.hash).is_none());
    }

    #[test]
    fn a_schema_4_store_gains_an_empty_blob_refs_tree() {
        let (dir, store, account) = store_with_acme();
        store.tree(BLOB_REFS.id()).clear().unwrap();
        store
            .tree(META.id())
            .insert(
                MetaKey::SchemaVersion.to_bytes().as_ref(),
                &4u32.to_be_bytes(),
            )
            .unwrap();
        store.db.flush().unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(schema_version(&store.db).unwrap(), Some(SCHEMA_VERSION));
        assert_eq!(store.count(&BLOB_REFS), 0);
        assert_eq!(store.accounts().unwrap(), vec![account]);
        assert!(store.dir().join("blobs").is_dir());
    }
}
