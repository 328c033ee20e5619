//! Opening a store: sled, migrations, the token index and the download-key index (from
//! `index.snapshot` when it is current, else a scan of the trees), and `inspect`, which
//! looks without changing.

use super::activation_index::ActivationIndex;
use super::backup::Journal;
use super::codec::Raw;
use super::commit::GroupCommit;
use super::key::{Key, MetaKey};
use super::key_index::KeyIndex;
use super::schema::{
    self, ACCOUNTS, ACTIVATIONS, DOWNLOAD_KEYS, GRACE, KEY_LOOKUPS, LICENSES, META, TOKENS, TREES,
};
use super::tokens::alias_record;
use super::tx::{corrupt, decode_entry};
use super::{
    AuthRecord, DEFAULT_MAX_TOKENS_PER_ACCOUNT, DEFAULT_RESERVE, KEY_FILE, SchemaError, Store,
    StoreError, TokenIndex, create_private_dir, load_or_create_key, migrate, recently_closed,
    snapshot,
};
use crate::model::Account;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Why the store did not open.
#[derive(Debug)]
pub enum OpenError {
    /// Another process (a running `upkeep serve`) holds the store's lock.
    Locked(PathBuf),
    Io(PathBuf, std::io::Error),
    Schema(SchemaError),
    Store(StoreError),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Locked(dir) => write!(
                f,
                "the data directory {} is in use by another process (a running upkeep server)",
                dir.display()
            ),
            OpenError::Io(dir, err) => write!(f, "cannot open {}: {err}", dir.display()),
            OpenError::Schema(err) => write!(f, "{err}"),
            OpenError::Store(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for OpenError {}

/// What `inspect` found in a data directory's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// `None` for a store never stamped (empty).
    pub schema_version: Option<u32>,
    pub size_on_disk: u64,
    pub accounts: usize,
    pub tokens: usize,
    /// Earlier secrets of rotated tokens, kept for their grace window (each is one more
    /// credential in the token index: the start-up log counts `tokens + grace_secrets`).
    pub grace_secrets: usize,
    /// Entries per tree of the inventory (`schema::TREES`), in its order; a tree the
    /// store does not hold yet counts 0.
    pub trees: Vec<(&'static str, usize)>,
    /// Trees in the store that the inventory does not know (another upkeep's).
    pub unknown_trees: Vec<String>,
    /// Whether the next open can load the token, key and activation indexes from
    /// `index.snapshot`.
    pub snapshot: SnapshotState,
    /// Blobs records reference (`blob_refs`) whose file under `<data>/blobs/` is missing:
    /// none, unless files were removed by hand or the disk lost them.
    pub missing_blobs: Vec<crate::model::BlobHash>,
}

/// What `inspect` found of the index snapshot (`<data>/index.snapshot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotState {
    /// None there: the next start scans the store.
    Absent,
    /// It matches the store: the next start loads it.
    Current,
    /// It does not describe the store as it is (an unclean stop, a write since, another
    /// schema, another upkeep version's format): the next start ignores it and scans.
    Stale(String),
    /// Unreadable or corrupt: ignored likewise.
    Damaged(String),
}

/// Looks at the store in `dir` without changing it: no migration, no key, no chmod.
///
/// # Errors
/// `Locked` while a server runs; `Io` when there is no store or it cannot be read.
pub fn inspect(dir: &Path) -> Result<Inspection, OpenError> {
    let db_dir = dir.join("db");
    if !db_dir.exists() {
        return Err(OpenError::Io(
            db_dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no store here yet"),
        ));
    }
    let db = open_sled(dir, sled::Config::new().path(&db_dir))?;
    let schema_version = migrate::schema_version(&db).map_err(OpenError::Schema)?;
    let store_err = |err: sled::Error| OpenError::Store(err.into());
    // Only trees that exist are opened: opening creates, and inspecting changes nothing.
    let present: Vec<String> = db
        .tree_names()
        .iter()
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .filter(|name| name != "__sled__default")
        .collect();
    let mut trees = Vec::with_capacity(TREES.len());
    for tree in TREES {
        let count = if present.iter().any(|name| name == tree.name) {
            db.open_tree(tree.name).map_err(store_err)?.len()
        } else {
            0
        };
        trees.push((tree.name, count));
    }
    let count_of = |name: &str| {
        trees
            .iter()
            .find(|(tree, _)| *tree == name)
            .map_or(0, |(_, count)| *count)
    };
    let mut missing_blobs = Vec::new();
    if present.iter().any(|name| name == schema::BLOB_REFS.name()) {
        let refs = db.open_tree(schema::BLOB_REFS.name()).map_err(store_err)?;
        for key in refs.iter().keys() {
            let key = key.map_err(store_err)?;
            if let Ok(bytes) = <[u8; 32]>::try_from(key.as_ref()) {
                let hash = crate::model::BlobHash::from_bytes(bytes);
                let hex = hash.to_hex();
                let path = dir
                    .join(super::blobs::DIR)
                    .join(&hex[..2])
                    .join(&hex[2..4])
                    .join(&hex);
                if !path.is_file() {
                    missing_blobs.push(hash);
                }
            }
        }
    }
    Ok(Inspection {
        missing_blobs,
        schema_version,
        size_on_disk: db.size_on_disk().map_err(store_err)?,
        accounts: count_of(ACCOUNTS.name()),
        tokens: count_of(TOKENS.name()),
        grace_secrets: count_of(GRACE.name()),
        unknown_trees: present
            .into_iter()
            .filter(|name| schema::TreeId::by_name(name).is_none())
            .collect(),
        trees,
        snapshot: snapshot_state(dir, &db),
    })
}

/// The store's stamp ([`MetaKey::Stamp`]) as `meta` holds it.
fn read_stamp(meta: &sled::Tree) -> Result<Option<snapshot::Stamp>, StoreError> {
    let key = MetaKey::Stamp.to_bytes();
    match meta.get(key.as_ref())? {
        None => Ok(None),
        Some(bytes) => bytes
            .as_ref()
            .try_into()
            .map(Some)
            .map_err(|_| corrupt(META.id(), key.as_ref(), "stamp is not 16 bytes")),
    }
}

fn snapshot_state(dir: &Path, db: &sled::Db) -> SnapshotState {
    if !dir.join(snapshot::FILE).exists() {
        return SnapshotState::Absent;
    }
    let stamp = db
        .open_tree(META.name())
        .map_err(StoreError::from)
        .and_then(|meta| read_stamp(&meta));
    let stamp = match stamp {
        Ok(Some(stamp)) => stamp,
        Ok(None) => return SnapshotState::Stale("the store has no stamp yet".into()),
        Err(err) => return SnapshotState::Stale(format!("the store's stamp is unreadable: {err}")),
    };
    match snapshot::check(dir, schema::SCHEMA_VERSION, &stamp) {
        Ok(Some(())) => SnapshotState::Current,
        Ok(None) => SnapshotState::Absent,
        Err(why @ snapshot::Unusable::Damaged(_)) => SnapshotState::Damaged(why.to_string()),
        Err(why) => SnapshotState::Stale(why.to_string()),
    }
}

/// Opens sled for the data directory `dir` with `config`.
///
/// If this process closed that store a moment ago (a test reopening it, `restore` opening
/// what it built), sled's I/O threads may still hold its lock for a few milliseconds:
/// wait for them, up to 10 s. Another process's lock is reported at once, so the CLI can
/// turn to that server instead.
fn open_sled(dir: &Path, config: sled::Config) -> Result<sled::Db, OpenError> {
    let open = || {
        config.open().map_err(|err| match err {
            sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                OpenError::Locked(dir.to_owned())
            }
            sled::Error::Io(io) => OpenError::Io(dir.to_owned(), io),
            other => OpenError::Store(other.into()),
        })
    };
    match open() {
        Err(OpenError::Locked(_)) if recently_closed::contains(dir) => {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                std::thread::sleep(std::time::Duration::from_millis(2));
                match open() {
                    Err(OpenError::Locked(_)) if std::time::Instant::now() < deadline => {}
                    other => return other,
                }
            }
        }
        other => other,
    }
}

impl Store {
    /// Opens (creating if needed, mode 0700) the store in `dir`, migrates it to the
    /// current schema and loads the token, key and activation indexes.
    ///
    /// # Errors
    /// The directory is locked by another process, unreadable, of a newer schema, or
    /// holds a record that does not decode.
    pub fn open(dir: &Path) -> Result<Store, OpenError> {
        create_private_dir(dir).map_err(|err| OpenError::Io(dir.to_owned(), err))?;
        let key_path = dir.join(KEY_FILE);
        let key = load_or_create_key(&key_path).map_err(|err| OpenError::Io(key_path, err))?;
        // A small page cache: authentication never reads sled (the index answers), so
        // the cache serves only writes and listings, and sled's accounting undercounts
        // what it holds about threefold. At a million tokens, 16 MiB instead of 64 MiB
        // keeps resident memory after a write-heavy load near 320 MiB instead of 410 MiB
        // for a few percent of durable-write throughput (benches/README.md).
        let db = open_sled(
            dir,
            sled::Config::new()
                .path(dir.join("db"))
                .mode(sled::Mode::LowSpace)
                .cache_capacity(16 * 1024 * 1024)
                .flush_every_ms(Some(500)),
        )?;
        migrate::run(&db).map_err(OpenError::Schema)?;
        let trees = TREES
            .iter()
            .map(|tree| db.open_tree(tree.name))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| OpenError::Store(err.into()))?;
        let refs = trees[schema::TreeId::BlobRefs as usize].clone();
        let blobs = super::Blobs::open(dir, refs)
            .map_err(|err| OpenError::Io(dir.join(super::blobs::DIR), err))?;
        let mut epoch = [0u8; 8];
        getrandom::fill(&mut epoch)
            .map_err(|err| OpenError::Store(StoreError::Bug(format!("OS RNG: {err}"))))?;
        let secret = ActivationIndex::secret_for(&key);
        let mut store = Store {
            db,
            trees,
            index: TokenIndex::default(),
            keys: KeyIndex::default(),
            activations: ActivationIndex::new(secret),
            write_lock: Mutex::new(()),
            commit: GroupCommit::default(),
            dir: dir.to_owned(),
            vault: crate::secrets::KeyVault::new(&key),
            key,
            reserve: AtomicU64::new(DEFAULT_RESERVE),
            max_tokens_per_account: AtomicUsize::new(DEFAULT_MAX_TOKENS_PER_ACCOUNT),
            failed: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            epoch,
            stamps: AtomicU64::new(0),
            index_suspect: AtomicBool::new(false),
            snapshot_stamp: Mutex::new(None),
            journal: Journal::default(),
            backup_lock: Mutex::new(()),
            blobs,
            operators: std::sync::RwLock::default(),
            generation: AtomicU64::new(0),
            license_uses: Default::default(),
            in_flight: AtomicUsize::new(0),
            settled: tokio::sync::Notify::new(),
        };
        // What a crash left among the blobs (SPEC §7): no writer runs yet.
        let swept = store
            .blobs
            .sweep()
            .map_err(|err| OpenError::Io(dir.join(super::blobs::DIR), err))?;
        if swept != super::Swept::default() {
            tracing::info!(
                temp_files = swept.temp_files,
                orphans = swept.orphans,
                "blob sweep: removed what a crash left (unfinished uploads, unreferenced blobs)"
            );
        }
        let started = std::time::Instant::now();
        match store.load_snapshot().map_err(OpenError::Store)? {
            Some((stamp, indexes, next_id)) => {
                store.index = indexes.tokens;
                store.keys = indexes.keys;
                store.activations = indexes.activations;
                store.next_id = AtomicU64::new(next_id);
                *store
                    .snapshot_stamp
                    .get_mut()
                    .unwrap_or_else(|e| e.into_inner()) = Some(stamp);
                tracing::info!(
                    tokens = store.index.len(),
                    download_keys = store.keys.len(),
                    activations = store.activations.activations(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "token, key and activation indexes loaded from {}",
                    snapshot::FILE
                );
            }
            None => {
                store.load_index().map_err(OpenError::Store)?;
                store.load_activations().map_err(OpenError::Store)?;
                tracing::info!(
                    tokens = store.index.len(),
                    download_keys = store.keys.len(),
                    activations = store.activations.activations(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "token, key and activation indexes built from the store"
                );
            }
        }
        store.load_operators().map_err(OpenError::Store)?;
        Ok(store)
    }

    /// The store's current stamp, as stored.
    fn stored_stamp(&self) -> Result<Option<snapshot::Stamp>, StoreError> {
        read_stamp(self.tree(META.id()))
    }

    /// A stamp no write has carried before: this opening's epoch and the next count.
    pub(super) fn next_stamp(&self) -> snapshot::Stamp {
        let mut stamp = [0u8; 16];
        stamp[..8].copy_from_slice(&self.epoch);
        let count = self.stamps.fetch_add(1, Ordering::Relaxed) + 1;
        stamp[8..].copy_from_slice(&count.to_be_bytes());
        stamp
    }

    /// The index snapshot, if there is one taken at the store's current stamp.
    fn load_snapshot(
        &self,
    ) -> Result<Option<(snapshot::Stamp, snapshot::Indexes, u64)>, StoreError> {
        let stamp = match self.stored_stamp() {
            Ok(Some(stamp)) => stamp,
            Ok(None) => return Ok(None),
            // Only a faster start depends on it: scan (the next write rewrites it).
            Err(err) => {
                tracing::warn!(error = %err, "unreadable store stamp; building the token, key and activation indexes from the store");
                return Ok(None);
            }
        };
        let secret = ActivationIndex::secret_for(&self.key);
        match snapshot::load(&self.dir, schema::SCHEMA_VERSION, &stamp, secret) {
            Ok(Some((indexes, next_id))) => Ok(Some((stamp, indexes, next_id))),
            Ok(None) => Ok(None),
            Err(why) => {
                tracing::info!(
                    "not using {}: {why}; building the token, key and activation indexes from the store",
                    snapshot::FILE
                );
                Ok(None)
            }
        }
    }

    /// Saves the token, key and activation indexes next to the store (`index.snapshot`) so
    /// that the next open need not scan every token, key lookup, key and activation. Call
    /// once writes have stopped (clean shutdown, the end of a CLI command); a write after
    /// it only makes the snapshot unused. Skipped when the snapshot on disk already
    /// matches. Returns whether a snapshot was written.
    ///
    /// # Errors
    /// The store could not be flushed or the file written (the next open then scans).
    pub fn save_index_snapshot(&self) -> Result<bool, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.index_suspect.load(Ordering::Relaxed) || self.failed.load(Ordering::Relaxed) {
            tracing::warn!(
                "a write failed in this run: not saving the token index (the next start rebuilds it from the store)"
            );
            return Ok(false);
        }
        // Flushed first: the stamp recorded must be the one that survives a crash.
        self.db.flush()?;
        let Some(stamp) = self.stored_stamp()? else {
            return Ok(false);
        };
        let mut known = self
            .snapshot_stamp
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *known == Some(stamp) {
            return Ok(false);
        }
        let started = std::time::Instant::now();
        snapshot::save(
            &self.dir,
            schema::SCHEMA_VERSION,
            &stamp,
            self.next_id.load(Ordering::Relaxed),
            &self.index,
            &self.keys,
            &self.activations,
        )
        .map_err(|err| StoreError::Io(err.into()))?;
        *known = Some(stamp);
        tracing::info!(
            tokens = self.index.len(),
            download_keys = self.keys.len(),
            activations = self.activations.activations(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "token, key and activation indexes saved to {}",
            snapshot::FILE
        );
        Ok(true)
    }

    fn load_index(&mut self) -> Result<(), StoreError> {
        self.keys = self.load_key_lookups()?;
        // Ids: past the stored counter and past every id in use (a store restored from an
        // older backup, or written before the counter existed, may lack the counter).
        let mut next_id = match self.read(&META, &MetaKey::NextId)? {
            Some(Raw(bytes)) => {
                let array: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
                    corrupt(
                        META.id(),
                        MetaKey::NextId.to_bytes().as_ref(),
                        "next_id is not 8 bytes",
                    )
                })?;
                u64::from_be_bytes(array)
            }
            None => 1,
        };
        // Licenses first: every account's plan limit comes from this one scan, not a
        // read per account.
        let mut licenses = std::collections::HashMap::new();
        for entry in self.scan(&LICENSES, &[]) {
            let (id, license) = entry?;
            next_id = next_id.max(id.0 + 1);
            licenses.insert(id, (license.limit, license.expires_at));
        }
        next_id = next_id.max(self.load_tokens()?);
        for entry in self.scan(&ACCOUNTS, &[]) {
            let (prefix, account): (_, Account) = entry?;
            let license = account.license.and_then(|id| licenses.get(&id));
            self.index.set_account(
                prefix,
                license.map(|(limit, _)| *limit),
                license.and_then(|(_, expires_at)| *expires_at),
            );
        }
        self.next_id.store(next_id, Ordering::Relaxed);
        for entry in self.scan(&GRACE, &[]) {
            let (old, alias) = entry?;
            if let Some(token) = self.read(&TOKENS, &alias.token)? {
                self.index
                    .insert(old, alias_record(&token, alias.until), None);
            }
        }
        Ok(())
    }

    /// The activation index (`activation_index`): every key's facts and every
    /// activation, from one scan of each tree, the two on two threads (the activations'
    /// identities hashed there, and noted once every key is in).
    fn load_activations(&self) -> Result<(), StoreError> {
        let index = &self.activations;
        let (keys, sites) = std::thread::scope(|scope| {
            let keys = scope.spawn(|| {
                for entry in self.scan(&DOWNLOAD_KEYS, &[]) {
                    index.set_key(&entry?.1, true);
                }
                Ok::<_, StoreError>(())
            });
            let sites = scope.spawn(|| {
                let mut sites = Vec::new();
                for entry in self.scan(&ACTIVATIONS, &[]) {
                    sites.extend(index.site_of(&entry?.1));
                }
                Ok::<_, StoreError>(sites)
            });
            (keys.join(), sites.join())
        });
        let panicked = |_| StoreError::Bug("an activation-loading thread panicked".into());
        keys.map_err(panicked)??;
        for site in sites.map_err(panicked)?? {
            index.add_site(site);
        }
        Ok(())
    }

    /// The key index of every entry of `keylookup_keyid`, read like the tokens: the
    /// tree's keys are uniform hashes, split by first byte into one range per thread.
    fn load_key_lookups(&self) -> Result<KeyIndex, StoreError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let tree = self.tree(KEY_LOOKUPS.id());
        // Not sized first: sled counts a tree by scanning it.
        let keys = KeyIndex::default();
        let load_range = |from: u8, to: Option<u8>| -> Result<(), StoreError> {
            let range = match to {
                Some(to) => tree.range([from]..[to]),
                None => tree.range([from]..),
            };
            for entry in range {
                let (key, value) = entry?;
                let (lookup, id) = decode_entry(&KEY_LOOKUPS, &key, &value)?;
                keys.insert(&lookup.0, id);
            }
            Ok(())
        };
        let bounds: Vec<u8> = (0..threads).map(|i| (i * 256 / threads) as u8).collect();
        std::thread::scope(|scope| {
            let workers: Vec<_> = bounds
                .iter()
                .enumerate()
                .map(|(i, &from)| {
                    let to = bounds.get(i + 1).copied();
                    scope.spawn(move || load_range(from, to))
                })
                .collect();
            workers.into_iter().try_for_each(|worker| {
                worker
                    .join()
                    .map_err(|_| StoreError::Bug("a key-loading thread panicked".into()))?
            })
        })?;
        Ok(keys)
    }

    /// Puts every token into the index; returns one past the largest token id. The
    /// tree's keys are uniform hashes, so it is split by first byte into equal ranges
    /// read by one thread each (at a million tokens, most of a scanning start).
    fn load_tokens(&self) -> Result<u64, StoreError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let tokens = self.tree(TOKENS.id());
        let load_range = |from: u8, to: Option<u8>| -> Result<u64, StoreError> {
            let mut next_id = 1;
            let range = match to {
                Some(to) => tokens.range([from]..[to]),
                None => tokens.range([from]..),
            };
            for entry in range {
                let (key, value) = entry?;
                let (_, token) = decode_entry(&TOKENS, &key, &value)?;
                next_id = next_id.max(token.id.0 + 1);
                self.index
                    .insert(token.hash, AuthRecord::from(&token), token.last_used_at);
            }
            Ok(next_id)
        };
        let bounds: Vec<u8> = (0..threads).map(|i| (i * 256 / threads) as u8).collect();
        std::thread::scope(|scope| {
            let workers: Vec<_> = bounds
                .iter()
                .enumerate()
                .map(|(i, &from)| {
                    let to = bounds.get(i + 1).copied();
                    scope.spawn(move || load_range(from, to))
                })
                .collect();
            workers.into_iter().try_fold(1, |next_id, worker| {
                let found = worker
                    .join()
                    .map_err(|_| StoreError::Bug("a token-loading thread panicked".into()))??;
                Ok(next_id.max(found))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{FIRST_TOKEN_NAME, NewToken, backup};
    use super::*;
    use crate::model::{AccountPrefix, Principal, Scope, Scopes};
    use crate::token as auth;

    #[test]
    fn snapshots_follow_the_store_and_never_come_from_a_suspect_index() {
        let (dir, store, _) = store_with_acme();
        assert!(store.save_index_snapshot().unwrap(), "saved");
        assert!(
            !store.save_index_snapshot().unwrap(),
            "unchanged: not saved again"
        );
        drop(store);

        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.index().len(), 1, "loaded from the snapshot");
        assert!(store.snapshot_stamp.lock().unwrap().is_some());
        // A domain refusal leaves the index trustworthy...
        let taken = NewToken {
            principal: Principal::Account(AccountPrefix::parse("acme").unwrap()),
            name: FIRST_TOKEN_NAME.to_owned(),
            scopes: Scopes::only(Scope::Api),
            expires_at: None,
        };
        assert!(store.create_token(taken, now()).is_err());
        assert!(!store.index_suspect.load(Ordering::Relaxed));
        // ...a write that panics before its index changes are applied does not.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = store.write::<()>(|| panic!("in the middle of a write"));
        }));
        assert!(panicked.is_err());
        assert!(store.index_suspect.load(Ordering::Relaxed));
        store
            .create_account(new_account(Some("globex")), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert!(!store.save_index_snapshot().unwrap(), "refused");
        drop(store);
        // The old snapshot is stale now: the next open scans, and finds both accounts.
        let store = Store::open(dir.path()).unwrap();
        assert!(store.snapshot_stamp.lock().unwrap().is_none(), "scanned");
        assert_eq!(store.account_count(), 2);
        // An unreadable stamp costs a scan, never the open.
        assert!(store.save_index_snapshot().unwrap());
        store
            .tree(META.id())
            .insert(MetaKey::Stamp.to_bytes().as_ref(), b"abc".as_slice())
            .unwrap();
        store.db.flush().unwrap();
        drop(store);
        let found = inspect(dir.path()).unwrap();
        assert!(
            matches!(&found.snapshot, SnapshotState::Stale(why) if why.contains("unreadable")),
            "{:?}",
            found.snapshot
        );
        let store = Store::open(dir.path()).unwrap();
        assert!(store.snapshot_stamp.lock().unwrap().is_none(), "scanned");
        assert_eq!(store.account_count(), 2);
    }

    #[test]
    fn a_scanning_open_finds_every_token_in_every_key_range() {
        let (dir, store, account) = store_with_acme();
        let mut created = Vec::new();
        for i in 0..300 {
            let new = NewToken {
                principal: Principal::Account(account.prefix),
                name: format!("t{i}"),
                scopes: Scopes::only(Scope::Api),
                expires_at: None,
            };
            created.push(
                store
                    .create_token(new, now())
                    .unwrap()
                    .durable_blocking()
                    .unwrap(),
            );
        }
        let next_id = store.next_id.load(Ordering::Relaxed);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(store.snapshot_stamp.lock().unwrap().is_none(), "scanned");
        assert_eq!(store.index().len(), 301);
        // 300 uniform hashes cover every first-byte range the scan splits the tree into.
        let first_bytes: std::collections::HashSet<u8> = created
            .iter()
            .map(|c| c.token.hash.as_bytes()[0] / 32)
            .collect();
        assert_eq!(first_bytes.len(), 8);
        for made in &created {
            let record = store.index().get(&made.token.hash).expect("indexed");
            assert_eq!(record.token_id, made.token.id);
        }
        assert_eq!(store.next_id.load(Ordering::Relaxed), next_id);
    }

    #[test]
    fn ids_are_never_reused_even_without_the_stored_counter() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let operator = |name: &str| NewToken {
            principal: Principal::Operator {
                active: true,
                write: false,
            },
            name: name.to_owned(),
            scopes: Scopes::empty(),
            expires_at: None,
        };
        let old = store
            .create_token(operator("old"), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        let license = store
            .issue_license(1, None, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        // What a restore of an old backup, or sled's own counter, would look like: the
        // stored counter gone.
        store
            .tree(META.id())
            .remove(MetaKey::NextId.to_bytes().as_ref())
            .unwrap();
        store.db.flush().unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let new = store
            .create_token(operator("new"), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert!(
            new.token.id.0 > license.license.id.0.max(old.token.id.0),
            "{new:?}"
        );
        assert_ne!(
            new.token.hash, old.token.hash,
            "a derived operator value is never reused"
        );
        let second = store
            .issue_license(2, None, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert!(second.license.id.0 > new.token.id.0);
        assert_eq!(store.licenses().unwrap().len(), 2, "nothing overwritten");
        // The counter is stored with the records that take ids.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let stored = store
            .tree(META.id())
            .get(MetaKey::NextId.to_bytes().as_ref())
            .unwrap()
            .unwrap();
        assert_eq!(
            u64::from_be_bytes(stored.as_ref().try_into().unwrap()),
            second.license.id.0 + 1
        );
    }

    #[test]
    fn a_restored_store_never_reuses_ids() {
        // The review's scenario: ids handed out in early sessions must not come back
        // after a restore into a fresh directory with the old server key.
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        let operator = |name: &str, write: bool| NewToken {
            principal: Principal::Operator {
                active: true,
                write,
            },
            name: name.to_owned(),
            scopes: Scopes::empty(),
            expires_at: None,
        };
        let mut backup = Vec::new();
        let (old, old_license) = {
            drop(Store::open(&source).unwrap());
            let store = Store::open(&source).unwrap();
            let old = store
                .create_token(operator("old-readonly", false), now())
                .unwrap()
                .durable_blocking()
                .unwrap();
            let license = store
                .issue_license(1, None, now())
                .unwrap()
                .durable_blocking()
                .unwrap();
            store.backup(&mut backup, "now").unwrap();
            (old, license)
        };
        let target = dir.path().join("target");
        let checked = backup::check(std::io::Cursor::new(backup)).unwrap();
        backup::restore(&checked, &target).unwrap();
        std::fs::copy(source.join(KEY_FILE), target.join(KEY_FILE)).unwrap();
        for _ in 0..3 {
            drop(Store::open(&target).unwrap());
        }
        let store = Store::open(&target).unwrap();
        let new = store
            .create_token(operator("new-admin", true), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_ne!(
            new.token.hash, old.token.hash,
            "a derived value is never handed out twice"
        );
        assert!(new.token.id.0 > old.token.id.0);
        let (_, old_hash) = auth::parse(&old.secret).unwrap();
        assert_eq!(
            store.index().get(&old_hash).map(|record| record.principal),
            Some(Principal::Operator {
                active: true,
                write: false
            }),
            "the old read-only token stays read-only"
        );
        store
            .issue_license(9, None, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.licenses().unwrap().len(), 2, "no license overwritten");
        assert_eq!(
            store
                .license(old_license.license.id)
                .unwrap()
                .unwrap()
                .limit,
            1
        );
    }

    #[test]
    fn inspect_counts_every_tree_of_the_table_and_names_unknown_ones() {
        let (dir, store, _) = store_with_acme();
        store.db.open_tree("from_the_future").unwrap();
        store.db.flush().unwrap();
        drop(store);
        let found = inspect(dir.path()).unwrap();
        let names: Vec<&str> = found.trees.iter().map(|(name, _)| *name).collect();
        let declared: Vec<&str> = TREES.iter().map(|tree| tree.name).collect();
        assert_eq!(names, declared);
        assert_eq!((found.accounts, found.tokens), (1, 1));
        assert_eq!(
            found
                .trees
                .iter()
                .find(|(name, _)| *name == "ownername_tokenhash"),
            Some(&("ownername_tokenhash", 1))
        );
        assert_eq!(found.unknown_trees, ["from_the_future"]);
    }

    #[test]
    fn account_limits_from_memory_match_the_stored_licenses() {
        // What an account listing shows as its plan limit can come from the index (no
        // read per account): it answers exactly what the bound license grants.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let later = now().saturating_add(std::time::Duration::from_secs(60));
        for (prefix, license) in [
            ("aaa", None),
            ("bbb", Some(None)),
            ("ccc", Some(Some(later))),
        ] {
            let (account, _) = store
                .create_account(new_account(Some(prefix)), now())
                .unwrap()
                .durable_blocking()
                .unwrap();
            if let Some(expires_at) = license {
                let issued = store
                    .issue_license(9, expires_at, now())
                    .unwrap()
                    .durable_blocking()
                    .unwrap();
                store
                    .apply_license(&account.prefix, &issued.license.key_hash, now())
                    .unwrap()
                    .durable_blocking()
                    .unwrap();
            }
        }
        for at in [now(), later] {
            for account in store.accounts().unwrap() {
                let stored = store
                    .account_license(&account)
                    .unwrap()
                    .and_then(|license| license.limit_at(at));
                assert_eq!(
                    store.plan_limit(&account.prefix, at),
                    Some(stored),
                    "{} at {at:?}",
                    account.prefix
                );
            }
        }
    }

    #[test]
    fn an_expired_plan_license_stops_counting_in_the_index_and_after_a_scan() {
        let (dir, store, account) = store_with_acme();
        let expires = now().saturating_add(std::time::Duration::from_secs(5));
        let issued = store
            .issue_license(7, Some(expires), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .apply_license(&account.prefix, &issued.license.key_hash, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.plan_limit(&account.prefix, now()), Some(Some(7)));
        assert_eq!(store.plan_limit(&account.prefix, expires), Some(None));
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(store.snapshot_stamp.lock().unwrap().is_none(), "scanned");
        assert_eq!(store.plan_limit(&account.prefix, now()), Some(Some(7)));
        assert_eq!(store.plan_limit(&account.prefix, expires), Some(None));
    }
}
