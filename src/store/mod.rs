//! The store: typed sled trees, the in-memory token index kept in step with them, and
//! group-committed durability. The only module that names `sled` or `bincode`.
//!
//! Every write goes through `Store::write`: it takes the write lock, runs one sled
//! transaction over all trees (a record and its indexes change together or not at all),
//! applies the matching [`TokenIndex`] changes, and returns a [`Pending`] value. The
//! caller gets the value only through [`Pending::durable`] (async, group commit) or
//! [`Pending::durable_blocking`] (CLI), so nothing can acknowledge a write that is not on
//! disk yet.
//!
//! Reads return `Option`; whether "absent" is a 404 is the caller's decision.

pub mod backup;
mod codec;
mod commit;
mod key;
mod migrate;
pub mod schema;
mod snapshot;
pub mod token_index;

pub use codec::{DecodeError, Record};
pub use migrate::SchemaError;

use crate::auth::{self, ServerKey, TokenKind};
use crate::model::{
    Account, AccountPrefix, DomainError, GraceAlias, LicenseId, NewAccount, PlanLicense, Principal,
    Scope, Scopes, Timestamp, Token, TokenChanges, TokenHash, TokenId,
};
use commit::GroupCommit;
use schema::TreeId;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{IVec, Transactional};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
pub use token_index::{AuthRecord, Authenticated, PendingUse, TokenIndex};

/// Engine and integrity failures, and domain refusals raised inside a transaction.
#[derive(Debug)]
pub enum StoreError {
    /// sled could not read or write (disk full, I/O error).
    Io(sled::Error),
    /// A stored value does not decode. Logged with its tree and key.
    Corrupt {
        tree: &'static str,
        key: String,
        reason: String,
    },
    /// A domain rule refused the change; nothing was written.
    Domain(DomainError),
    /// The disk holding the store is (nearly) full: writes are refused before anything
    /// changes, so that sled never meets a full disk mid-write.
    NoSpace { available: u64, reserve: u64 },
    /// An earlier write could not be persisted; sled refuses further writes until the
    /// store is reopened (restart upkeep once the cause is fixed).
    Failed,
    /// Something that cannot happen did.
    Bug(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io(err) => write!(f, "store i/o: {err}"),
            StoreError::Corrupt { tree, key, reason } => {
                write!(f, "corrupt value in tree {tree} at key {key}: {reason}")
            }
            StoreError::Domain(err) => write!(f, "{err}"),
            StoreError::NoSpace { available, reserve } => write!(
                f,
                "the disk is nearly full: {available} bytes free, writes need at least {reserve}"
            ),
            StoreError::Failed => f.write_str(
                "an earlier write could not be persisted; writes are refused until upkeep is \
                 restarted (check free disk space and the log)",
            ),
            StoreError::Bug(why) => write!(f, "store bug: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<sled::Error> for StoreError {
    fn from(err: sled::Error) -> Self {
        match err {
            sled::Error::Io(_) => StoreError::Io(err),
            sled::Error::Corruption { .. } => StoreError::Corrupt {
                tree: "(log)",
                key: String::new(),
                reason: err.to_string(),
            },
            other => StoreError::Bug(other.to_string()),
        }
    }
}

impl From<DomainError> for StoreError {
    fn from(err: DomainError) -> Self {
        StoreError::Domain(err)
    }
}

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
    /// Whether the next open can load the token index from `index.snapshot`.
    pub snapshot: SnapshotState,
}

/// What `inspect` found of the index snapshot (`<data>/index.snapshot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotState {
    /// None there: the next start scans the store.
    Absent,
    /// It matches the store: the next start loads it.
    Current,
    /// It does not describe the store as it is (an unclean stop, a write since, another
    /// schema): the next start ignores it and scans.
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
    let count = |name: &str| db.open_tree(name).map(|tree| tree.len());
    let store_err = |err: sled::Error| OpenError::Store(err.into());
    Ok(Inspection {
        schema_version,
        size_on_disk: db.size_on_disk().map_err(store_err)?,
        accounts: count(schema::PREFIX_ACCOUNT).map_err(store_err)?,
        tokens: count(schema::TOKENHASH_TOKEN).map_err(store_err)?,
        snapshot: snapshot_state(dir, &db),
    })
}

/// The store's stamp (`schema::STAMP_KEY`) as `meta` holds it.
fn read_stamp(meta: &sled::Tree) -> Result<Option<snapshot::Stamp>, StoreError> {
    match meta.get(schema::STAMP_KEY)? {
        None => Ok(None),
        Some(bytes) => bytes
            .as_ref()
            .try_into()
            .map(Some)
            .map_err(|_| corrupt(TreeId::Meta, schema::STAMP_KEY, "stamp is not 16 bytes")),
    }
}

fn snapshot_state(dir: &Path, db: &sled::Db) -> SnapshotState {
    if !dir.join(snapshot::FILE).exists() {
        return SnapshotState::Absent;
    }
    let stamp = db
        .open_tree(schema::META)
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

/// A token as created: the record and its secret, which is shown once and never stored.
pub struct CreatedToken {
    pub token: Token,
    pub secret: String,
}

impl fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedToken")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// A plan license as issued, with its key (shown once, never stored).
pub struct IssuedLicense {
    pub license: PlanLicense,
    pub key: String,
}

/// What a new token is for, validated by the caller.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub principal: Principal,
    /// Already checked against the owner's naming rule (`TokenName` / `OperatorTokenName`).
    pub name: String,
    pub scopes: Scopes,
    pub expires_at: Option<Timestamp>,
}

/// Which page of a listing to read: the items after `after` (a cursor: the key suffix of
/// the last item of the previous page), at most `limit` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<Vec<u8>>,
    pub limit: usize,
}

impl PageRequest {
    /// Everything (CLI listings).
    pub fn all() -> Self {
        PageRequest {
            after: None,
            limit: usize::MAX,
        }
    }
}

/// One page of a listing, in key order, and the cursor of the next page if there may be
/// one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Vec<u8>>,
}

/// Most earlier secrets of one token that may be in a grace period at once.
pub const MAX_GRACE_SECRETS: usize = 4;

/// The name the first token of a new account gets.
pub const FIRST_TOKEN_NAME: &str = "default";

/// A committed write whose value is released only once it is durable.
#[must_use = "a write is acknowledged only once durable: call `.durable().await` or `.durable_blocking()`"]
pub struct Pending<'s, T> {
    store: &'s Store,
    value: T,
    seq: u64,
}

impl<T> Pending<'_, T> {
    /// Waits for the group flush that covers this write.
    ///
    /// # Errors
    /// The flush failed: the write is applied in memory but not known to be on disk.
    pub async fn durable(self) -> Result<T, StoreError> {
        if let Err(err) = self.store.commit.wait(&self.store.db, self.seq).await {
            self.store.note_failure(&err);
            return Err(err);
        }
        Ok(self.value)
    }

    /// Flushes on this thread (for one-shot CLI commands).
    ///
    /// # Errors
    /// The flush failed.
    pub fn durable_blocking(self) -> Result<T, StoreError> {
        if let Err(err) = self.store.commit.wait_blocking(&self.store.db, self.seq) {
            self.store.note_failure(&err);
            return Err(err);
        }
        Ok(self.value)
    }
}

/// A change to the token index, applied after its transaction commits.
enum IndexOp {
    Insert(TokenHash, AuthRecord, Option<Timestamp>),
    Remove(TokenHash),
    /// The account exists; its plan license's limit and expiry, if one is bound.
    SetAccount(AccountPrefix, Option<u32>, Option<Timestamp>),
    RemoveAccount(AccountPrefix),
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

fn abort<T>(err: impl Into<StoreError>) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(err.into()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn corrupt(tree: TreeId, key: &[u8], reason: impl fmt::Display) -> StoreError {
    let err = StoreError::Corrupt {
        tree: tree.name(),
        key: hex(key),
        reason: reason.to_string(),
    };
    tracing::error!(error = %err, "corrupt value in store");
    err
}

fn decode_at<R: Record>(tree: TreeId, key: &[u8], bytes: &[u8]) -> Result<R, StoreError> {
    codec::decode(bytes).map_err(|err| corrupt(tree, key, format!("{}: {err}", R::NAME)))
}

fn hash_at(tree: TreeId, key: &[u8], bytes: &[u8]) -> Result<TokenHash, StoreError> {
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|_| corrupt(tree, key, format!("hash of {} bytes", bytes.len())))?;
    Ok(TokenHash::from_bytes(array))
}

/// Typed access to every tree inside one transaction.
struct Tx<'a>(&'a [TransactionalTree]);

impl Tx<'_> {
    fn tree(&self, tree: TreeId) -> &TransactionalTree {
        &self.0[tree as usize]
    }

    fn get_raw(&self, tree: TreeId, key: &[u8]) -> TxResult<Option<IVec>> {
        Ok(self.tree(tree).get(key)?)
    }

    fn get<R: Record>(&self, tree: TreeId, key: &[u8]) -> TxResult<Option<R>> {
        match self.get_raw(tree, key)? {
            None => Ok(None),
            Some(bytes) => match decode_at(tree, key, &bytes) {
                Ok(record) => Ok(Some(record)),
                Err(err) => abort(err),
            },
        }
    }

    fn put<R: Record>(&self, tree: TreeId, key: &[u8], record: &R) -> TxResult<()> {
        self.tree(tree).insert(key, codec::encode(record))?;
        Ok(())
    }

    fn put_raw(&self, tree: TreeId, key: &[u8], value: &[u8]) -> TxResult<()> {
        self.tree(tree).insert(key, value)?;
        Ok(())
    }

    fn remove(&self, tree: TreeId, key: &[u8]) -> TxResult<Option<IVec>> {
        Ok(self.tree(tree).remove(key)?)
    }

    /// Records that `id` is taken, in the same transaction as the record using it.
    fn take_id(&self, id: u64) -> TxResult<()> {
        self.put_raw(TreeId::Meta, schema::NEXT_ID_KEY, &(id + 1).to_be_bytes())
    }
}

/// The embedded database and everything kept in step with it.
pub struct Store {
    db: sled::Db,
    /// Every tree of `schema::TREES`, indexed by [`TreeId`].
    trees: Vec<sled::Tree>,
    index: TokenIndex,
    /// Serializes writers: scans done before a transaction stay true during it, and
    /// index updates happen in commit order.
    write_lock: Mutex<()>,
    commit: GroupCommit,
    dir: PathBuf,
    /// Derives operator-token values (`<dir>/server.key`).
    key: ServerKey,
    /// Writes are refused while the data directory's filesystem has less free space.
    reserve: AtomicU64,
    /// Most tokens one account may hold (`--max-tokens-per-account`).
    max_tokens_per_account: AtomicUsize,
    /// Set when sled failed to persist: it refuses writes from then on (until reopened).
    failed: AtomicBool,
    /// The next token / plan license id; allocated under the write lock and persisted in
    /// `meta` with the record that takes it.
    next_id: AtomicU64,
    /// This opening's stamp epoch (random) and the counter of stamps given out.
    epoch: [u8; 8],
    stamps: AtomicU64,
    /// Set when a write failed or panicked after its transaction may have committed, so
    /// the index might not match sled: no snapshot is saved from this opening (the next
    /// start scans and heals it).
    index_suspect: AtomicBool,
    /// The stamp of the index snapshot on disk, when it is known to match the store (it
    /// was loaded or saved by this opening): saving again is then skipped.
    snapshot_stamp: Mutex<Option<snapshot::Stamp>>,
}

/// Marks the index suspect when dropped, i.e. when a write unwinds before its index
/// changes are applied; `mem::forget` it once they are.
struct SuspectUnlessDone<'a>(&'a AtomicBool);

impl Drop for SuspectUnlessDone<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
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

/// Data directories whose store this process closed: their sled lock may linger for a
/// moment after the close (sled's I/O threads finish their last writes).
mod recently_closed {
    use std::collections::HashSet;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    static DIRS: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

    fn key(dir: &Path) -> PathBuf {
        dir.canonicalize().unwrap_or_else(|_| dir.to_owned())
    }

    pub(super) fn note(dir: &Path) {
        let mut dirs = DIRS.lock().unwrap_or_else(|e| e.into_inner());
        dirs.get_or_insert_with(HashSet::new).insert(key(dir));
    }

    pub(super) fn contains(dir: &Path) -> bool {
        let dirs = DIRS.lock().unwrap_or_else(|e| e.into_inner());
        dirs.as_ref().is_some_and(|dirs| dirs.contains(&key(dir)))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        recently_closed::note(&self.dir);
    }
}

/// Most tokens an account may hold unless told otherwise (see
/// [`Store::set_max_tokens_per_account`]).
pub const DEFAULT_MAX_TOKENS_PER_ACCOUNT: usize = 1000;

/// Free space kept in reserve by default (see [`Store::set_reserve`]).
pub const DEFAULT_RESERVE: u64 = 32 * 1024 * 1024;

impl Store {
    /// Opens (creating if needed, mode 0700) the store in `dir`, migrates it to the
    /// current schema and loads the token index.
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
        let trees = schema::TREES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| OpenError::Store(err.into()))?;
        let mut epoch = [0u8; 8];
        getrandom::fill(&mut epoch)
            .map_err(|err| OpenError::Store(StoreError::Bug(format!("OS RNG: {err}"))))?;
        let mut store = Store {
            db,
            trees,
            index: TokenIndex::default(),
            write_lock: Mutex::new(()),
            commit: GroupCommit::default(),
            dir: dir.to_owned(),
            key,
            reserve: AtomicU64::new(DEFAULT_RESERVE),
            max_tokens_per_account: AtomicUsize::new(DEFAULT_MAX_TOKENS_PER_ACCOUNT),
            failed: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            epoch,
            stamps: AtomicU64::new(0),
            index_suspect: AtomicBool::new(false),
            snapshot_stamp: Mutex::new(None),
        };
        let started = std::time::Instant::now();
        match store.load_snapshot().map_err(OpenError::Store)? {
            Some((stamp, index, next_id)) => {
                store.index = index;
                store.next_id = AtomicU64::new(next_id);
                *store
                    .snapshot_stamp
                    .get_mut()
                    .unwrap_or_else(|e| e.into_inner()) = Some(stamp);
                tracing::info!(
                    tokens = store.index.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "token index loaded from {}",
                    snapshot::FILE
                );
            }
            None => {
                store.load_index().map_err(OpenError::Store)?;
                tracing::info!(
                    tokens = store.index.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "token index built from the store"
                );
            }
        }
        Ok(store)
    }

    /// The store's current stamp, as stored.
    fn stored_stamp(&self) -> Result<Option<snapshot::Stamp>, StoreError> {
        read_stamp(self.tree(TreeId::Meta))
    }

    /// A stamp no write has carried before: this opening's epoch and the next count.
    fn next_stamp(&self) -> snapshot::Stamp {
        let mut stamp = [0u8; 16];
        stamp[..8].copy_from_slice(&self.epoch);
        let count = self.stamps.fetch_add(1, Ordering::Relaxed) + 1;
        stamp[8..].copy_from_slice(&count.to_be_bytes());
        stamp
    }

    /// The index snapshot, if there is one taken at the store's current stamp.
    fn load_snapshot(&self) -> Result<Option<(snapshot::Stamp, TokenIndex, u64)>, StoreError> {
        let stamp = match self.stored_stamp() {
            Ok(Some(stamp)) => stamp,
            Ok(None) => return Ok(None),
            // Only a faster start depends on it: scan (the next write rewrites it).
            Err(err) => {
                tracing::warn!(error = %err, "unreadable store stamp; building the token index from the store");
                return Ok(None);
            }
        };
        match snapshot::load(&self.dir, schema::SCHEMA_VERSION, &stamp) {
            Ok(Some((index, next_id))) => Ok(Some((stamp, index, next_id))),
            Ok(None) => Ok(None),
            Err(why) => {
                tracing::info!(
                    "not using {}: {why}; building the token index from the store",
                    snapshot::FILE
                );
                Ok(None)
            }
        }
    }

    /// Saves the token index next to the store (`index.snapshot`) so that the next open
    /// need not scan every token. Call once writes have stopped (clean shutdown, the end
    /// of a CLI command); a write after it only makes the snapshot unused. Skipped when
    /// the snapshot on disk already matches. Returns whether a snapshot was written.
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
        )
        .map_err(|err| StoreError::Io(err.into()))?;
        *known = Some(stamp);
        tracing::info!(
            tokens = self.index.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "token index saved to {}",
            snapshot::FILE
        );
        Ok(true)
    }

    fn load_index(&self) -> Result<(), StoreError> {
        // Ids: past the stored counter and past every id in use (a store restored from an
        // older backup, or written before the counter existed, may lack the counter).
        let mut next_id = match self.tree(TreeId::Meta).get(schema::NEXT_ID_KEY)? {
            Some(bytes) => {
                let array: [u8; 8] = bytes.as_ref().try_into().map_err(|_| {
                    corrupt(TreeId::Meta, schema::NEXT_ID_KEY, "next_id is not 8 bytes")
                })?;
                u64::from_be_bytes(array)
            }
            None => 1,
        };
        for entry in self.tree(TreeId::Licenses).iter() {
            let (key, _) = entry?;
            let id =
                key::parse_license_id(&key).map_err(|why| corrupt(TreeId::Licenses, &key, why))?;
            next_id = next_id.max(id.0 + 1);
        }
        next_id = next_id.max(self.load_tokens()?);
        for entry in self.tree(TreeId::Accounts).iter() {
            let (key, value) = entry?;
            let account: Account = decode_at(TreeId::Accounts, &key, &value)?;
            let license = self.account_license(&account)?;
            self.index.set_account(
                account.prefix,
                license.as_ref().map(|license| license.limit),
                license.and_then(|license| license.expires_at),
            );
        }
        self.next_id.store(next_id, Ordering::Relaxed);
        for entry in self.tree(TreeId::Grace).iter() {
            let (key, value) = entry?;
            let alias: GraceAlias = decode_at(TreeId::Grace, &key, &value)?;
            let old = hash_at(TreeId::Grace, &key, &key)?;
            if let Some(token) = self.get::<Token>(TreeId::Tokens, alias.token.as_bytes())? {
                self.index
                    .insert(old, alias_record(&token, alias.until), None);
            }
        }
        Ok(())
    }

    /// Puts every token into the index; returns one past the largest token id. The
    /// tree's keys are uniform hashes, so it is split by first byte into equal ranges
    /// read by one thread each (at a million tokens, most of a scanning start).
    fn load_tokens(&self) -> Result<u64, StoreError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let tokens = self.tree(TreeId::Tokens);
        let load_range = |from: u8, to: Option<u8>| -> Result<u64, StoreError> {
            let mut next_id = 1;
            let range = match to {
                Some(to) => tokens.range([from]..[to]),
                None => tokens.range([from]..),
            };
            for entry in range {
                let (key, value) = entry?;
                let token: Token = decode_at(TreeId::Tokens, &key, &value)?;
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

    fn tree(&self, tree: TreeId) -> &sled::Tree {
        &self.trees[tree as usize]
    }

    /// Takes the next id. Call under the write lock, and persist `next_id` with the record
    /// (see [`Tx::take_id`]).
    fn allocate_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The in-memory token index, for the authentication hot path.
    pub fn index(&self) -> &TokenIndex {
        &self.index
    }

    /// Sets the most tokens one account may hold (at least 1); creating more is refused
    /// with `TokenQuota`. Tokens already held beyond it stay.
    pub fn set_max_tokens_per_account(&self, limit: usize) {
        self.max_tokens_per_account
            .store(limit.max(1), Ordering::Relaxed);
    }

    /// Sets the free space (bytes) below which writes are refused.
    pub fn set_reserve(&self, bytes: u64) {
        self.reserve.store(bytes, Ordering::Relaxed);
    }

    /// Whether writes are accepted: the store has not failed and the disk has room.
    ///
    /// # Errors
    /// `Failed` or `NoSpace`.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        if self.failed.load(Ordering::Relaxed) {
            return Err(StoreError::Failed);
        }
        let reserve = self.reserve.load(Ordering::Relaxed);
        if reserve > 0 {
            // One statvfs: about a microsecond, next to a write's fsync.
            let available =
                fs2::available_space(&self.dir).map_err(|err| StoreError::Io(err.into()))?;
            if available < reserve {
                return Err(StoreError::NoSpace { available, reserve });
            }
        }
        Ok(())
    }

    /// Remembers that sled failed to persist (it will refuse writes until reopened).
    fn note_failure(&self, err: &StoreError) {
        if matches!(err, StoreError::Io(_)) && !self.failed.swap(true, Ordering::Relaxed) {
            tracing::error!(error = %err, "the store could not persist a write; refusing writes until restart");
        }
    }

    /// Runs `body` under the write lock, applies the index changes it returns, and hands
    /// back its value as a pending (not yet durable) write.
    fn write<T>(
        &self,
        body: impl FnOnce() -> Result<(T, Vec<IndexOp>), StoreError>,
    ) -> Result<Pending<'_, T>, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.check_writable()?;
        // Armed until the index has the write's changes: a panic in between (or an
        // engine error, which may come after a partial commit) makes the index suspect.
        let suspect = SuspectUnlessDone(&self.index_suspect);
        let (value, ops) = match body() {
            Ok(done) => done,
            Err(err) => {
                if !matches!(err, StoreError::Domain(_) | StoreError::NoSpace { .. }) {
                    self.index_suspect.store(true, Ordering::Relaxed);
                }
                std::mem::forget(suspect);
                return Err(err);
            }
        };
        for op in ops {
            match op {
                IndexOp::Insert(hash, record, last_used) => {
                    self.index.insert(hash, record, last_used);
                }
                IndexOp::Remove(hash) => self.index.remove(&hash),
                IndexOp::SetAccount(prefix, limit, expires_at) => {
                    self.index.set_account(prefix, limit, expires_at);
                }
                IndexOp::RemoveAccount(prefix) => self.index.remove_account(&prefix),
            }
        }
        std::mem::forget(suspect);
        let seq = self.commit.note_write();
        Ok(Pending {
            store: self,
            value,
            seq,
        })
    }

    /// One transaction over every tree. `f` may run more than once: no side effects.
    /// Also writes a fresh stamp (`schema::STAMP_KEY`), so no older index snapshot
    /// matches the store once this commits.
    fn transact<T>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T, StoreError> {
        let stamp = self.next_stamp();
        <[sled::Tree] as Transactional<StoreError>>::transaction(&self.trees[..], |views| {
            let tx = Tx(views);
            let value = f(&tx)?;
            tx.put_raw(TreeId::Meta, schema::STAMP_KEY, &stamp)?;
            Ok(value)
        })
        .map_err(|err| match err {
            TransactionError::Abort(err) => err,
            TransactionError::Storage(err) => err.into(),
        })
    }

    fn get<R: Record>(&self, tree: TreeId, key: &[u8]) -> Result<Option<R>, StoreError> {
        match self.tree(tree).get(key)? {
            None => Ok(None),
            Some(bytes) => decode_at(tree, key, &bytes).map(Some),
        }
    }

    /// Whether the store answers a read (for `/healthz`).
    ///
    /// # Errors
    /// The read failed.
    pub fn check(&self) -> Result<(), StoreError> {
        self.tree(TreeId::Meta).get(schema::SCHEMA_VERSION_KEY)?;
        Ok(())
    }

    /// Flushes every write so far (shutdown).
    ///
    /// # Errors
    /// The flush failed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// Number of accounts.
    pub fn account_count(&self) -> u64 {
        self.index.account_count() as u64
    }

    /// From memory: `None` if there is no such account, else the limit of its plan
    /// license at `now` (`Some(None)`: none bound, or it has expired).
    pub fn plan_limit(&self, prefix: &AccountPrefix, now: Timestamp) -> Option<Option<u32>> {
        self.index.plan_limit(prefix, now)
    }

    /// Number of group flushes so far.
    pub fn flush_count(&self) -> u64 {
        self.commit.flushes()
    }

    /// Bytes the store occupies on disk.
    ///
    /// # Errors
    /// The size could not be read.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// The entries of `tree` under `prefix` after the cursor, at most `limit`, and the
    /// next cursor. A range scan from the cursor: the cost of a page does not grow with
    /// the size of the listing.
    fn page_of(
        &self,
        tree: TreeId,
        prefix: &[u8],
        page: &PageRequest,
    ) -> Result<Page<(IVec, IVec)>, StoreError> {
        use std::ops::Bound;
        let start = match &page.after {
            Some(after) => Bound::Excluded([prefix, after].concat()),
            None => Bound::Included(prefix.to_vec()),
        };
        let mut items = Vec::new();
        let mut more = false;
        for entry in self
            .tree(tree)
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
        {
            let (key, value) = entry?;
            if !key.starts_with(prefix) {
                break;
            }
            if items.len() == page.limit {
                more = true;
                break;
            }
            items.push((key, value));
        }
        let next = match (more, items.last()) {
            (true, Some((key, _))) => Some(key[prefix.len()..].to_vec()),
            _ => None,
        };
        Ok(Page { items, next })
    }

    /// A page of the records of `tree` (whole-tree listings).
    fn records_page<R: Record>(
        &self,
        tree: TreeId,
        page: &PageRequest,
    ) -> Result<Page<R>, StoreError> {
        let raw = self.page_of(tree, &[], page)?;
        let items = raw
            .items
            .iter()
            .map(|(key, value)| decode_at(tree, key, value))
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            next: raw.next,
        })
    }

    /// A page of accounts, in prefix order (cursor: the last prefix).
    pub fn accounts_page(&self, page: &PageRequest) -> Result<Page<Account>, StoreError> {
        self.records_page(TreeId::Accounts, page)
    }

    /// A page of an owner's tokens (`None`: operator tokens), in name order (cursor: the
    /// last name).
    pub fn tokens_page(
        &self,
        account: Option<&AccountPrefix>,
        page: &PageRequest,
    ) -> Result<Page<Token>, StoreError> {
        let raw = self.page_of(TreeId::OwnerNames, &key::owner(account), page)?;
        let name_keys: Vec<IVec> = raw.items.into_iter().map(|(key, _)| key).collect();
        let items = self.tokens_behind(&name_keys)?;
        Ok(Page {
            items,
            next: raw.next,
        })
    }

    /// A page of plan licenses, oldest first (cursor: the last id).
    pub fn licenses_page(&self, page: &PageRequest) -> Result<Page<PlanLicense>, StoreError> {
        self.records_page(TreeId::Licenses, page)
    }

    // ---- accounts -------------------------------------------------------------------

    pub fn account(&self, prefix: &AccountPrefix) -> Result<Option<Account>, StoreError> {
        self.get(TreeId::Accounts, prefix.as_str().as_bytes())
    }

    /// Every account, in prefix order.
    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        Ok(self.accounts_page(&PageRequest::all())?.items)
    }

    /// Creates an account (random prefix when none is given) and its first token,
    /// `default` with scope `api`, expiring at `new.first_token_expires_at` (never,
    /// unless its creator's credential expires).
    ///
    /// # Errors
    /// `AccountExists` when the given prefix is taken.
    pub fn create_account(
        &self,
        new: NewAccount,
        now: Timestamp,
    ) -> Result<Pending<'_, (Account, CreatedToken)>, StoreError> {
        let secret = generate(TokenKind::Account)?;
        self.write(|| {
            let token_id = TokenId(self.allocate_id());
            // A random prefix may collide with an existing one; draw again.
            let mut attempts = 0;
            let account = loop {
                let prefix = match new.prefix {
                    Some(prefix) => prefix,
                    None => auth::random_prefix()
                        .map_err(|err| StoreError::Bug(format!("OS RNG failed: {err}")))?,
                };
                let taken = self.account(&prefix)?.is_some();
                if !taken {
                    break Account {
                        prefix,
                        name: new.name.clone(),
                        email: new.email.clone(),
                        created_at: now,
                        updated_at: now,
                        license: None,
                    };
                }
                attempts += 1;
                if new.prefix.is_some() || attempts >= 16 {
                    return Err(DomainError::AccountExists(prefix).into());
                }
            };
            let token = Token {
                id: token_id,
                hash: secret.hash,
                principal: Principal::Account(account.prefix),
                name: FIRST_TOKEN_NAME.to_owned(),
                scopes: Scopes::only(Scope::Api),
                expires_at: new.first_token_expires_at,
                created_at: now,
                updated_at: now,
                last_used_at: None,
            };
            let prefix_key = account.prefix.as_str().as_bytes().to_vec();
            let name_key = key::owner_name(Some(&account.prefix), &token.name);
            self.transact(|tx| {
                if tx.get_raw(TreeId::Accounts, &prefix_key)?.is_some() {
                    return abort(DomainError::AccountExists(account.prefix));
                }
                tx.put(TreeId::Accounts, &prefix_key, &account)?;
                tx.take_id(token.id.0)?;
                tx.put(TreeId::Tokens, token.hash.as_bytes(), &token)?;
                tx.put_raw(TreeId::OwnerNames, &name_key, token.hash.as_bytes())?;
                Ok(())
            })?;
            let op = IndexOp::Insert(token.hash, AuthRecord::from(&token), None);
            let created = CreatedToken {
                token,
                secret: secret.token,
            };
            let account_op = IndexOp::SetAccount(account.prefix, None, None);
            Ok(((account, created), vec![op, account_op]))
        })
    }

    /// Deletes an account, all its tokens, and unbinds its plan license.
    ///
    /// # Errors
    /// `AccountNotFound`.
    pub fn delete_account(
        &self,
        prefix: &AccountPrefix,
    ) -> Result<Pending<'_, Account>, StoreError> {
        self.write(|| {
            // Under the write lock, so the scan stays true for the transaction.
            let owned = self.owner_entries(Some(prefix))?;
            let hashes: Vec<TokenHash> = owned.iter().map(|(_, hash)| *hash).collect();
            let aliases = self.aliases_of(&hashes)?;
            let prefix_key = prefix.as_str().as_bytes();
            let account = self.transact(|tx| {
                for (token, alias) in &aliases {
                    tx.remove(TreeId::Grace, alias.as_bytes())?;
                    tx.remove(TreeId::GraceByToken, &key::token_alias(token, alias))?;
                }
                let Some(account) = tx.get::<Account>(TreeId::Accounts, prefix_key)? else {
                    return abort(DomainError::AccountNotFound);
                };
                tx.remove(TreeId::Accounts, prefix_key)?;
                for (name_key, hash) in &owned {
                    tx.remove(TreeId::OwnerNames, name_key)?;
                    tx.remove(TreeId::Tokens, hash.as_bytes())?;
                }
                if let Some(license_id) = account.license {
                    let license_key = key::license_id(license_id);
                    if let Some(mut license) =
                        tx.get::<PlanLicense>(TreeId::Licenses, &license_key)?
                    {
                        license.account = None;
                        tx.put(TreeId::Licenses, &license_key, &license)?;
                    }
                }
                Ok(account)
            })?;
            let mut ops: Vec<IndexOp> = hashes
                .into_iter()
                .chain(aliases.into_iter().map(|(_, alias)| alias))
                .map(IndexOp::Remove)
                .collect();
            ops.push(IndexOp::RemoveAccount(account.prefix));
            Ok((account, ops))
        })
    }

    // ---- tokens ---------------------------------------------------------------------

    /// `(owner-name key, token hash)` of every token of an owner (`None`: operator tokens).
    fn owner_entries(
        &self,
        account: Option<&AccountPrefix>,
    ) -> Result<Vec<(IVec, TokenHash)>, StoreError> {
        self.tree(TreeId::OwnerNames)
            .scan_prefix(key::owner(account))
            .map(|entry| {
                let (key, value) = entry?;
                let hash = hash_at(TreeId::OwnerNames, &key, &value)?;
                Ok((key, hash))
            })
            .collect()
    }

    /// The tokens behind name-index entries. Plain reads, with one subtlety: sled applies
    /// a commit tree by tree, so a reader can catch a rotation or deletion half done (a
    /// name still pointing at a token already gone). Every commit runs under the write
    /// lock, so on such a miss the reader takes the lock (the commit is then complete)
    /// and reads the entry again: gone means deleted (skipped), a new hash means rotated.
    /// Only a miss that survives this is a corrupt index. (A read transaction would also
    /// be consistent, but sled's take a global lock and write to the log: 3x slower.)
    fn tokens_behind(&self, name_keys: &[IVec]) -> Result<Vec<Token>, StoreError> {
        let mut tokens = Vec::with_capacity(name_keys.len());
        for name_key in name_keys {
            let Some(value) = self.tree(TreeId::OwnerNames).get(name_key)? else {
                continue;
            };
            let hash = hash_at(TreeId::OwnerNames, name_key, &value)?;
            if let Some(token) = self.get::<Token>(TreeId::Tokens, hash.as_bytes())? {
                tokens.push(self.with_recent_use(token));
                continue;
            }
            let _settled = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
            let Some(value) = self.tree(TreeId::OwnerNames).get(name_key)? else {
                continue;
            };
            let hash = hash_at(TreeId::OwnerNames, name_key, &value)?;
            match self.get::<Token>(TreeId::Tokens, hash.as_bytes())? {
                Some(token) => tokens.push(self.with_recent_use(token)),
                None => {
                    return Err(corrupt(
                        TreeId::OwnerNames,
                        name_key,
                        "index points at a missing token",
                    ));
                }
            }
        }
        Ok(tokens)
    }

    /// The token with its in-memory last use, which may be newer than the stored one.
    fn with_recent_use(&self, mut token: Token) -> Token {
        if let Some(used) = self.index.last_used(&token.hash) {
            token.last_used_at = token.last_used_at.max(Some(used));
        }
        token
    }

    /// The tokens of an account (`None`: the operator tokens), in name order.
    pub fn tokens_of(&self, account: Option<&AccountPrefix>) -> Result<Vec<Token>, StoreError> {
        Ok(self.tokens_page(account, &PageRequest::all())?.items)
    }

    /// The token of an owner with this name. Not for use under the write lock.
    pub fn token_named(
        &self,
        account: Option<&AccountPrefix>,
        name: &str,
    ) -> Result<Option<Token>, StoreError> {
        let name_key = IVec::from(key::owner_name(account, name));
        Ok(self.tokens_behind(std::slice::from_ref(&name_key))?.pop())
    }

    /// Creates a token with a fresh secret.
    ///
    /// # Errors
    /// `AccountNotFound` for an account token whose account is gone; `TokenNameTaken`;
    /// `TokenQuota` when the account already holds the most tokens allowed
    /// ([`Store::set_max_tokens_per_account`]).
    pub fn create_token(
        &self,
        new: NewToken,
        now: Timestamp,
    ) -> Result<Pending<'_, CreatedToken>, StoreError> {
        let account = new.principal.account();
        let name_key = key::owner_name(account.as_ref(), &new.name);
        let random = match new.principal {
            Principal::Account(_) => Some(generate(TokenKind::Account)?),
            Principal::Operator { .. } => None,
        };
        self.write(|| {
            if let Some(prefix) = &account {
                // Under the write lock the count stays true for the transaction. It reads
                // at most the quota's worth of keys.
                let limit = self.max_tokens_per_account.load(Ordering::Relaxed);
                let mut held = 0;
                for entry in self
                    .tree(TreeId::OwnerNames)
                    .scan_prefix(key::owner(Some(prefix)))
                    .keys()
                    .take(limit)
                {
                    entry?;
                    held += 1;
                }
                if held >= limit {
                    return Err(DomainError::TokenQuota { limit }.into());
                }
            }
            let id = TokenId(self.allocate_id());
            // Operator tokens can be read back (`GET /_/token/value`): derive them.
            let secret = match random {
                Some(secret) => secret,
                None => auth::derive(TokenKind::Operator, &self.key, id),
            };
            let token = Token {
                id,
                hash: secret.hash,
                principal: new.principal,
                name: new.name,
                scopes: new.scopes,
                expires_at: new.expires_at,
                created_at: now,
                updated_at: now,
                last_used_at: None,
            };
            self.transact(|tx| {
                if let Some(prefix) = &account {
                    if tx
                        .get_raw(TreeId::Accounts, prefix.as_str().as_bytes())?
                        .is_none()
                    {
                        return abort(DomainError::AccountNotFound);
                    }
                }
                if tx.get_raw(TreeId::OwnerNames, &name_key)?.is_some() {
                    return abort(DomainError::TokenNameTaken(token.name.clone()));
                }
                if tx.get_raw(TreeId::Tokens, token.hash.as_bytes())?.is_some() {
                    return abort(StoreError::Bug(
                        "a new token's hash is already stored".to_owned(),
                    ));
                }
                tx.take_id(token.id.0)?;
                tx.put(TreeId::Tokens, token.hash.as_bytes(), &token)?;
                tx.put_raw(TreeId::OwnerNames, &name_key, token.hash.as_bytes())?;
                Ok(())
            })?;
            let op = IndexOp::Insert(token.hash, AuthRecord::from(&token), None);
            Ok((
                CreatedToken {
                    token,
                    secret: secret.token,
                },
                vec![op],
            ))
        })
    }

    /// Deletes an owner's token by name; it stops authenticating at once.
    ///
    /// # Errors
    /// `TokenNotFound`.
    pub fn delete_token(
        &self,
        account: Option<&AccountPrefix>,
        name: &str,
    ) -> Result<Pending<'_, Token>, StoreError> {
        let name_key = key::owner_name(account, name);
        self.write(|| {
            // Under the write lock plain reads are consistent (and `token_named` must not
            // be called here: its slow path takes this lock).
            let aliases = match self.tree(TreeId::OwnerNames).get(&name_key)? {
                Some(value) => {
                    self.aliases_of(&[hash_at(TreeId::OwnerNames, &name_key, &value)?])?
                }
                None => Vec::new(),
            };
            let token = self.transact(|tx| {
                for (token, alias) in &aliases {
                    tx.remove(TreeId::Grace, alias.as_bytes())?;
                    tx.remove(TreeId::GraceByToken, &key::token_alias(token, alias))?;
                }
                let Some(hash) = tx.remove(TreeId::OwnerNames, &name_key)? else {
                    return abort(DomainError::TokenNotFound(name.to_owned()));
                };
                let hash = match hash_at(TreeId::OwnerNames, &name_key, &hash) {
                    Ok(hash) => hash,
                    Err(err) => return abort(err),
                };
                match tx.get::<Token>(TreeId::Tokens, hash.as_bytes())? {
                    Some(token) => {
                        tx.remove(TreeId::Tokens, hash.as_bytes())?;
                        Ok(token)
                    }
                    None => abort(corrupt(
                        TreeId::OwnerNames,
                        &name_key,
                        "index points at a missing token",
                    )),
                }
            })?;
            let mut ops = vec![IndexOp::Remove(token.hash)];
            ops.extend(aliases.into_iter().map(|(_, alias)| IndexOp::Remove(alias)));
            Ok((token, ops))
        })
    }

    /// `(token, alias)` for every grace alias of any of `tokens`: one prefix scan of the
    /// reverse index per token, never a scan of every alias on the server.
    fn aliases_of(&self, tokens: &[TokenHash]) -> Result<Vec<(TokenHash, TokenHash)>, StoreError> {
        let mut aliases = Vec::new();
        for token in tokens {
            for entry in self
                .tree(TreeId::GraceByToken)
                .scan_prefix(token.as_bytes())
            {
                let (key, _) = entry?;
                let pair = key::parse_token_alias(&key)
                    .map_err(|why| corrupt(TreeId::GraceByToken, &key, why))?;
                aliases.push(pair);
            }
        }
        Ok(aliases)
    }

    /// Replaces the secret of the token with hash `current`. With `grace_until`, the old
    /// secret keeps working until then (a persisted alias); without, it stops at once.
    /// The token keeps its expiry.
    ///
    /// # Errors
    /// `GraceSecret` if `current` is a previous secret in its grace; `TokenNotFound` if
    /// the token is gone (deleted meanwhile).
    pub fn rotate_token(
        &self,
        current: &TokenHash,
        grace_until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Pending<'_, CreatedToken>, StoreError> {
        let secret = generate(TokenKind::Account)?;
        self.write(|| {
            // A previous secret in its grace may not rotate: it would replace the owner's
            // current secret and lock them out (the handlers refuse it first; this keeps
            // the rule for every caller of the store).
            if self.tree(TreeId::Grace).contains_key(current.as_bytes())? {
                return Err(DomainError::GraceSecret.into());
            }
            // The token's earlier secrets still in a grace: expired ones go, and at most
            // MAX_GRACE_SECRETS stay live (the newest), so chained rotations cannot grow
            // the grace tree without bound.
            let mut live = Vec::new();
            let mut retired = Vec::new();
            for (_, alias) in self.aliases_of(&[*current])? {
                match self.get::<GraceAlias>(TreeId::Grace, alias.as_bytes())? {
                    Some(entry) if entry.until > now => live.push((entry.until, alias)),
                    _ => retired.push(alias),
                }
            }
            live.sort_by_key(|(until, _)| *until);
            let room = MAX_GRACE_SECRETS - usize::from(grace_until.is_some());
            while live.len() > room {
                retired.push(live.remove(0).1);
            }
            let aliases: Vec<TokenHash> = live.into_iter().map(|(_, alias)| alias).collect();
            let token = self.transact(|tx| {
                for alias in &retired {
                    tx.remove(TreeId::Grace, alias.as_bytes())?;
                    tx.remove(TreeId::GraceByToken, &key::token_alias(current, alias))?;
                }
                let Some(mut token) = tx.get::<Token>(TreeId::Tokens, current.as_bytes())? else {
                    return abort(DomainError::TokenNotFound(
                        "(the calling token, deleted meanwhile)".to_owned(),
                    ));
                };
                let name_key = key::owner_name(token.principal.account().as_ref(), &token.name);
                tx.remove(TreeId::Tokens, current.as_bytes())?;
                token.hash = secret.hash;
                token.updated_at = now;
                tx.put(TreeId::Tokens, token.hash.as_bytes(), &token)?;
                tx.put_raw(TreeId::OwnerNames, &name_key, token.hash.as_bytes())?;
                // Older aliases now point at the new secret's record.
                for alias in &aliases {
                    if let Some(mut entry) =
                        tx.get::<GraceAlias>(TreeId::Grace, alias.as_bytes())?
                    {
                        entry.token = token.hash;
                        tx.put(TreeId::Grace, alias.as_bytes(), &entry)?;
                    }
                    tx.remove(TreeId::GraceByToken, &key::token_alias(current, alias))?;
                    tx.put_raw(
                        TreeId::GraceByToken,
                        &key::token_alias(&token.hash, alias),
                        &[],
                    )?;
                }
                if let Some(until) = grace_until {
                    let alias = GraceAlias {
                        token: token.hash,
                        until,
                    };
                    tx.put(TreeId::Grace, current.as_bytes(), &alias)?;
                    tx.put_raw(
                        TreeId::GraceByToken,
                        &key::token_alias(&token.hash, current),
                        &[],
                    )?;
                }
                Ok(token)
            })?;
            let mut ops = vec![
                IndexOp::Remove(*current),
                IndexOp::Insert(token.hash, AuthRecord::from(&token), token.last_used_at),
            ];
            ops.extend(retired.into_iter().map(IndexOp::Remove));
            if let Some(until) = grace_until {
                ops.push(IndexOp::Insert(*current, alias_record(&token, until), None));
            }
            Ok((
                CreatedToken {
                    token,
                    secret: secret.token,
                },
                ops,
            ))
        })
    }

    /// Changes an operator token's expiry and flags; its value stays the same.
    ///
    /// # Errors
    /// `TokenNotFound`.
    pub fn update_operator_token(
        &self,
        name: &str,
        changes: TokenChanges,
        now: Timestamp,
    ) -> Result<Pending<'_, Token>, StoreError> {
        let name_key = key::owner_name(None, name);
        self.write(|| {
            let token = self.transact(|tx| {
                let Some(hash) = tx.get_raw(TreeId::OwnerNames, &name_key)? else {
                    return abort(DomainError::TokenNotFound(name.to_owned()));
                };
                let Some(mut token) = tx.get::<Token>(TreeId::Tokens, &hash)? else {
                    return abort(corrupt(
                        TreeId::OwnerNames,
                        &name_key,
                        "index points at a missing token",
                    ));
                };
                if let Principal::Operator { active, write } = &mut token.principal {
                    *active = changes.active.unwrap_or(*active);
                    *write = changes.write.unwrap_or(*write);
                }
                if let Some(expires_at) = changes.expires_at {
                    token.expires_at = expires_at;
                }
                token.updated_at = now;
                tx.put(TreeId::Tokens, token.hash.as_bytes(), &token)?;
                Ok(token)
            })?;
            let last_used = self.index.last_used(&token.hash);
            let op = IndexOp::Insert(token.hash, AuthRecord::from(&token), last_used);
            Ok((token, vec![op]))
        })
    }

    /// The value of the operator token named `name` (derived again from the server key).
    ///
    /// # Errors
    /// `TokenNotFound`; `Bug` if the derived value does not match the stored hash (the
    /// server key was replaced since the token was made).
    pub fn operator_token_value(&self, name: &str) -> Result<String, StoreError> {
        let token = self
            .token_named(None, name)?
            .ok_or_else(|| DomainError::TokenNotFound(name.to_owned()))?;
        let derived = auth::derive(TokenKind::Operator, &self.key, token.id);
        if derived.hash != token.hash {
            return Err(StoreError::Bug(format!(
                "the value of operator token `{name}` cannot be derived: {KEY_FILE} changed since it was created"
            )));
        }
        Ok(derived.token)
    }

    /// Writes the `last_used_at` of every token used since the last call, then flushes.
    /// Returns how many tokens were updated. Blocking: call from `spawn_blocking`.
    ///
    /// # Errors
    /// A read, write or the flush failed; the uses stay pending for the next call.
    pub fn persist_uses(&self) -> Result<usize, StoreError> {
        let pending = self.index.pending_uses();
        if pending.is_empty() {
            return Ok(0);
        }
        self.check_writable()?;
        let written = {
            let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
            let tokens = self.tree(TreeId::Tokens);
            let mut batch = sled::Batch::default();
            let mut written = 0;
            for used in &pending {
                let key = used.hash.as_bytes();
                // A token deleted since its use stays deleted.
                let Some(mut token) = self.get::<Token>(TreeId::Tokens, key)? else {
                    continue;
                };
                if token.last_used_at.is_some_and(|at| at >= used.at) {
                    continue;
                }
                token.last_used_at = Some(used.at);
                batch.insert(key.as_slice(), codec::encode(&token));
                written += 1;
            }
            // The stamp first: a crash between the two leaves a store that no snapshot
            // matches, which is safe.
            self.tree(TreeId::Meta)
                .insert(schema::STAMP_KEY, &self.next_stamp())?;
            tokens.apply_batch(batch)?;
            self.commit.note_write();
            written
        };
        if let Err(err) = self.db.flush() {
            let err = StoreError::from(err);
            self.note_failure(&err);
            return Err(err);
        }
        self.index.mark_persisted(&pending);
        Ok(written)
    }

    /// Removes grace aliases whose grace has ended (they no longer authenticate, but would
    /// otherwise stay in sled and in memory until their token is next rotated or deleted).
    /// The scan runs without the write lock; at most `limit` aliases go per call, each
    /// checked again inside the transaction. Returns how many went.
    ///
    /// # Errors
    /// A read, the write or its flush failed.
    pub fn prune_expired_aliases(&self, now: Timestamp, limit: usize) -> Result<usize, StoreError> {
        let mut expired = Vec::new();
        for entry in self.tree(TreeId::Grace).iter() {
            let (alias_key, value) = entry?;
            let alias: GraceAlias = decode_at(TreeId::Grace, &alias_key, &value)?;
            if alias.until <= now {
                expired.push(hash_at(TreeId::Grace, &alias_key, &alias_key)?);
                if expired.len() == limit {
                    break;
                }
            }
        }
        if expired.is_empty() {
            return Ok(0);
        }
        let pending = self.write(|| {
            let removed = self.transact(|tx| {
                let mut removed = Vec::new();
                for alias in &expired {
                    // Still there and still expired (a rotation may have moved it on).
                    match tx.get::<GraceAlias>(TreeId::Grace, alias.as_bytes())? {
                        Some(entry) if entry.until <= now => {
                            tx.remove(TreeId::Grace, alias.as_bytes())?;
                            tx.remove(
                                TreeId::GraceByToken,
                                &key::token_alias(&entry.token, alias),
                            )?;
                            removed.push(*alias);
                        }
                        _ => {}
                    }
                }
                Ok(removed)
            })?;
            let ops = removed
                .iter()
                .map(|alias| IndexOp::Remove(*alias))
                .collect();
            Ok((removed.len(), ops))
        })?;
        pending.durable_blocking()
    }

    // ---- plan licenses --------------------------------------------------------------

    pub fn license(&self, id: LicenseId) -> Result<Option<PlanLicense>, StoreError> {
        self.get(TreeId::Licenses, &key::license_id(id))
    }

    /// Every plan license, oldest first.
    pub fn licenses(&self) -> Result<Vec<PlanLicense>, StoreError> {
        Ok(self.licenses_page(&PageRequest::all())?.items)
    }

    /// The plan license bound to an account, if any (expired or not: see
    /// [`PlanLicense::limit_at`] for what it grants).
    pub fn account_license(&self, account: &Account) -> Result<Option<PlanLicense>, StoreError> {
        match account.license {
            None => Ok(None),
            Some(id) => self.license(id),
        }
    }

    /// Issues a plan license with a fresh `upk_pl_…` key.
    ///
    /// # Errors
    /// The store failed.
    pub fn issue_license(
        &self,
        limit: u32,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Pending<'_, IssuedLicense>, StoreError> {
        let secret = generate(TokenKind::PlanLicense)?;
        self.write(|| {
            let license = PlanLicense {
                id: LicenseId(self.allocate_id()),
                key_hash: secret.hash,
                limit,
                expires_at,
                created_at: now,
                account: None,
            };
            let id_key = key::license_id(license.id);
            self.transact(|tx| {
                if tx.get_raw(TreeId::Licenses, &id_key)?.is_some() {
                    return abort(StoreError::Bug(
                        "a new plan license's id is taken".to_owned(),
                    ));
                }
                tx.take_id(license.id.0)?;
                tx.put(TreeId::Licenses, &id_key, &license)?;
                tx.put_raw(TreeId::LicenseHashes, license.key_hash.as_bytes(), &id_key)?;
                Ok(())
            })?;
            Ok((
                IssuedLicense {
                    license,
                    key: secret.token,
                },
                vec![],
            ))
        })
    }

    /// Revokes (deletes) a plan license; the account it was bound to falls back to the
    /// default activation limit.
    ///
    /// # Errors
    /// `LicenseNotFound`.
    pub fn revoke_license(
        &self,
        id: LicenseId,
        now: Timestamp,
    ) -> Result<Pending<'_, PlanLicense>, StoreError> {
        let id_key = key::license_id(id);
        self.write(|| {
            let (license, unbound) = self.transact(|tx| {
                let Some(license) = tx.get::<PlanLicense>(TreeId::Licenses, &id_key)? else {
                    return abort(DomainError::LicenseNotFound(id));
                };
                tx.remove(TreeId::Licenses, &id_key)?;
                tx.remove(TreeId::LicenseHashes, license.key_hash.as_bytes())?;
                let mut unbound = false;
                if let Some(prefix) = &license.account {
                    let prefix_key = prefix.as_str().as_bytes();
                    if let Some(mut account) = tx.get::<Account>(TreeId::Accounts, prefix_key)? {
                        account.license = None;
                        account.updated_at = now;
                        tx.put(TreeId::Accounts, prefix_key, &account)?;
                        unbound = true;
                    }
                }
                Ok((license, unbound))
            })?;
            let ops = match (unbound, license.account) {
                (true, Some(prefix)) => vec![IndexOp::SetAccount(prefix, None, None)],
                _ => vec![],
            };
            Ok((license, ops))
        })
    }

    /// Binds the plan license with this key hash to an account, replacing (unbinding)
    /// the one it had. Applying the license an account already holds changes nothing.
    ///
    /// # Errors
    /// `LicenseUnknown`, `LicenseExpired`, `LicenseInUse` (bound elsewhere),
    /// `AccountNotFound`.
    pub fn apply_license(
        &self,
        prefix: &AccountPrefix,
        key_hash: &TokenHash,
        now: Timestamp,
    ) -> Result<Pending<'_, PlanLicense>, StoreError> {
        let prefix_key = prefix.as_str().as_bytes();
        self.write(|| {
            let license = self.transact(|tx| {
                let Some(id_bytes) = tx.get_raw(TreeId::LicenseHashes, key_hash.as_bytes())? else {
                    return abort(DomainError::LicenseUnknown);
                };
                let id = match key::parse_license_id(&id_bytes) {
                    Ok(id) => id,
                    Err(why) => {
                        return abort(corrupt(TreeId::LicenseHashes, key_hash.as_bytes(), why));
                    }
                };
                let id_key = key::license_id(id);
                let Some(mut license) = tx.get::<PlanLicense>(TreeId::Licenses, &id_key)? else {
                    return abort(DomainError::LicenseUnknown);
                };
                if license.is_expired(now) {
                    return abort(DomainError::LicenseExpired);
                }
                match &license.account {
                    Some(bound) if bound == prefix => return Ok(license),
                    Some(_) => return abort(DomainError::LicenseInUse),
                    None => {}
                }
                let Some(mut account) = tx.get::<Account>(TreeId::Accounts, prefix_key)? else {
                    return abort(DomainError::AccountNotFound);
                };
                if let Some(previous) = account.license {
                    let previous_key = key::license_id(previous);
                    if let Some(mut old) = tx.get::<PlanLicense>(TreeId::Licenses, &previous_key)? {
                        old.account = None;
                        tx.put(TreeId::Licenses, &previous_key, &old)?;
                    }
                }
                license.account = Some(*prefix);
                account.license = Some(id);
                account.updated_at = now;
                tx.put(TreeId::Licenses, &id_key, &license)?;
                tx.put(TreeId::Accounts, prefix_key, &account)?;
                Ok(license)
            })?;
            let op = IndexOp::SetAccount(*prefix, Some(license.limit), license.expires_at);
            Ok((license, vec![op]))
        })
    }
}

/// The index record of a grace alias: the token's, expiring at the end of the grace.
fn alias_record(token: &Token, until: Timestamp) -> AuthRecord {
    let mut record = AuthRecord::from(token);
    record.expires_at = Some(record.expires_at.map_or(until, |at| at.min(until)));
    record.grace = true;
    record
}

/// The server key's file name inside the data directory.
pub const KEY_FILE: &str = "server.key";

/// Creates `path` as a new file, mode 0600, open for reading and writing, without ever
/// following a symlink or reusing what is there (`O_CREAT | O_EXCL | O_NOFOLLOW`): a
/// temporary file another local user planted (a symlink to a file we may write, when
/// running as root) is refused instead of written through.
///
/// # Errors
/// `AlreadyExists` when anything (a file, a symlink, even a dangling one) is at `path`.
pub fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// Creates a temporary file at `path` in a directory only we write (the data
/// directory): a leftover from a crash is removed first (the link itself, never what
/// it points to), then the file is made as [`create_private_file`] does.
pub(crate) fn create_temporary_file(path: &Path) -> std::io::Result<std::fs::File> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    create_private_file(path)
}

/// Reads `path` (32 bytes), or creates it with a fresh key, mode 0600, durably
/// (write to a temporary file, fsync, rename, fsync the directory).
fn load_or_create_key(path: &Path) -> std::io::Result<ServerKey> {
    use std::io::Write;
    match std::fs::read(path) {
        Ok(bytes) => {
            let bytes: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("must hold exactly 32 bytes, found {}", bytes.len()),
                )
            })?;
            return Ok(ServerKey::from_bytes(bytes));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let key = ServerKey::generate().map_err(std::io::Error::other)?;
    let tmp = path.with_extension("key.tmp");
    let mut file = create_temporary_file(&tmp)?;
    file.write_all(key.as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(key)
}

fn generate(kind: TokenKind) -> Result<auth::NewSecret, StoreError> {
    auth::generate(kind).map_err(|err| StoreError::Bug(format!("OS RNG failed: {err}")))
}

/// Creates `dir` (and parents) if needed and makes it private (mode 0700): it holds the
/// server key, the store and the admin socket.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            tracing::info!(dir = %dir.display(), from = format!("{mode:o}"), "made the data directory private (0700)");
        }
        Ok(())
    }
    #[cfg(not(unix))]
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TokenName;

    fn new_account(prefix: Option<&str>) -> NewAccount {
        NewAccount::parse("Acme", "dev@acme.io", prefix).unwrap()
    }

    fn now() -> Timestamp {
        Timestamp::from_secs(1_790_000_000)
    }

    /// A fresh store in a temporary directory, holding the account `acme`.
    fn store_with_acme() -> (tempfile::TempDir, Store, Account) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (account, _) = store
            .create_account(new_account(Some("acme")), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        (dir, store, account)
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let (_dir, store, account) = store_with_acme();
        let before = store.tokens_of(Some(&account.prefix)).unwrap();
        let new = NewToken {
            principal: Principal::Account(account.prefix),
            name: TokenName::parse(FIRST_TOKEN_NAME)
                .unwrap()
                .as_str()
                .to_owned(),
            scopes: Scopes::only(Scope::Api),
            expires_at: None,
        };
        let err = store.create_token(new, now()).map(|_| ()).unwrap_err();
        assert!(matches!(
            err,
            StoreError::Domain(DomainError::TokenNameTaken(_))
        ));
        assert_eq!(store.tokens_of(Some(&account.prefix)).unwrap(), before);
        assert_eq!(store.index().len(), 1);
        assert_eq!(store.tree(TreeId::Tokens).len(), 1);
    }

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
            .tree(TreeId::Meta)
            .insert(schema::STAMP_KEY, b"abc".as_slice())
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
            .tree(TreeId::Meta)
            .remove(schema::NEXT_ID_KEY)
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
            .tree(TreeId::Meta)
            .get(schema::NEXT_ID_KEY)
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
    fn expired_grace_aliases_are_pruned_without_touching_live_ones() {
        let (_dir, store, acme) = store_with_acme();
        let hour = std::time::Duration::from_secs(3600);
        let token = store
            .tokens_of(Some(&acme.prefix))
            .unwrap()
            .into_iter()
            .next()
            .expect("acme's first token");
        let short = store
            .rotate_token(&token.hash, Some(now().saturating_add(hour)), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        let long = store
            .rotate_token(
                &short.token.hash,
                Some(now().saturating_add(hour * 3)),
                now(),
            )
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.tree(TreeId::Grace).len(), 2);
        assert_eq!(store.prune_expired_aliases(now(), 100).unwrap(), 0);
        let later = now().saturating_add(hour * 2);
        assert_eq!(store.prune_expired_aliases(later, 100).unwrap(), 1);
        assert_eq!(store.tree(TreeId::Grace).len(), 1);
        assert_eq!(store.tree(TreeId::GraceByToken).len(), 1);
        // The live alias (the short-grace token's secret, valid for 3 h) still works; the
        // current secret too; nothing is left to prune.
        let works = |secret: &str| {
            store
                .index()
                .authenticate(&auth::parse(secret).unwrap().1, later)
                .is_some()
        };
        assert!(works(&short.secret));
        assert!(works(&long.secret));
        assert_eq!(store.prune_expired_aliases(later, 100).unwrap(), 0);
        assert_eq!(
            store
                .prune_expired_aliases(now().saturating_add(hour * 4), 100)
                .unwrap(),
            1
        );
        assert_eq!(store.tree(TreeId::GraceByToken).len(), 0);
    }

    #[test]
    fn chained_rotations_keep_a_bounded_number_of_grace_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (_, first) = store
            .create_account(new_account(Some("acme")), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        let mut current = first.token.hash;
        let mut secrets = vec![first.secret];
        let hour = std::time::Duration::from_secs(3600);
        for i in 0..20 {
            let at = now().saturating_add(std::time::Duration::from_secs(i));
            let rotated = store
                .rotate_token(&current, Some(at.saturating_add(hour)), at)
                .unwrap()
                .durable_blocking()
                .unwrap();
            current = rotated.token.hash;
            secrets.push(rotated.secret);
        }
        assert_eq!(store.tree(TreeId::Grace).len(), MAX_GRACE_SECRETS);
        assert_eq!(store.tree(TreeId::GraceByToken).len(), MAX_GRACE_SECRETS);
        for entry in store.tree(TreeId::GraceByToken).iter() {
            let (token, _) = key::parse_token_alias(&entry.unwrap().0).unwrap();
            assert_eq!(
                token, current,
                "every alias is indexed under the current hash"
            );
        }
        // The newest earlier secrets work, the older ones were retired.
        let at = now().saturating_add(std::time::Duration::from_secs(20));
        let works = |secret: &str| {
            store
                .index()
                .authenticate(&auth::parse(secret).unwrap().1, at)
                .is_some()
        };
        assert!(works(&secrets[20]));
        for secret in &secrets[16..20] {
            assert!(works(secret));
        }
        for secret in &secrets[..16] {
            assert!(!works(secret));
        }
        // Expired graces are dropped at the next rotation.
        let later = now().saturating_add(hour * 2);
        store
            .rotate_token(&current, None, later)
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.tree(TreeId::Grace).len(), 0);
        assert_eq!(store.tree(TreeId::GraceByToken).len(), 0);
    }

    #[test]
    fn the_account_index_follows_every_change_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let prefix = AccountPrefix::parse("acme").unwrap();
        assert_eq!(store.plan_limit(&prefix, now()), None);
        store
            .create_account(new_account(Some("acme")), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.plan_limit(&prefix, now()), Some(None));
        let issued = store
            .issue_license(7, None, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .apply_license(&prefix, &issued.license.key_hash, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.plan_limit(&prefix, now()), Some(Some(7)));
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.plan_limit(&prefix, now()),
            Some(Some(7)),
            "rebuilt at open"
        );
        assert_eq!(store.account_count(), 1);
        store
            .revoke_license(issued.license.id, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.plan_limit(&prefix, now()), Some(None));
        store
            .delete_account(&prefix)
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(store.plan_limit(&prefix, now()), None);
        assert_eq!(store.account_count(), 0);
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

    #[test]
    fn deleting_or_rotating_a_token_reads_only_its_own_grace_aliases() {
        // Issue 15: every delete and rotate scanned (and decoded) every grace alias on
        // the server under the write lock. An undecodable alias of no token of this
        // test stands for "someone else's": it must not be read at all.
        let (_dir, store, account) = store_with_acme();
        let hour = std::time::Duration::from_secs(3600);
        let mut made = Vec::new();
        for name in ["a", "b"] {
            let new = NewToken {
                principal: Principal::Account(account.prefix),
                name: name.to_owned(),
                scopes: Scopes::only(Scope::Api),
                expires_at: None,
            };
            made.push(
                store
                    .create_token(new, now())
                    .unwrap()
                    .durable_blocking()
                    .unwrap(),
            );
        }
        let rotated = store
            .rotate_token(&made[0].token.hash, Some(now().saturating_add(hour)), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .tree(TreeId::Grace)
            .insert([0xee; 32].as_slice(), b"not a grace alias".as_slice())
            .unwrap();
        store
            .rotate_token(&made[1].token.hash, Some(now().saturating_add(hour)), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .delete_token(Some(&account.prefix), "b")
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .rotate_token(&rotated.token.hash, None, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .delete_token(Some(&account.prefix), "a")
            .unwrap()
            .durable_blocking()
            .unwrap();
        // Only the stranger is left; every alias of `a` and `b` went with them.
        assert_eq!(store.tree(TreeId::Grace).len(), 1);
        assert!(
            store
                .index()
                .authenticate(&made[0].token.hash, now())
                .is_none()
        );
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
        store.tree(TreeId::GraceByToken).clear().unwrap();
        store
            .tree(TreeId::Meta)
            .insert(schema::SCHEMA_VERSION_KEY, &3u32.to_be_bytes())
            .unwrap();
        store.db.flush().unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(migrate::schema_version(&store.db).unwrap(), Some(4));
        assert_eq!(store.tree(TreeId::GraceByToken).len(), 1);
        assert!(
            store.index().get(&ci.token.hash).is_some(),
            "the old secret, in its grace"
        );
        store
            .delete_token(Some(&account.prefix), "ci")
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert!(store.tree(TreeId::Grace).is_empty());
        assert!(store.tree(TreeId::GraceByToken).is_empty());
        assert!(store.index().get(&ci.token.hash).is_none());
    }

    #[test]
    fn an_account_holds_at_most_its_token_quota() {
        let (_dir, store, account) = store_with_acme();
        store.set_max_tokens_per_account(3);
        let new = |name: &str| NewToken {
            principal: Principal::Account(account.prefix),
            name: name.to_owned(),
            scopes: Scopes::only(Scope::Api),
            expires_at: None,
        };
        for name in ["a", "b"] {
            store
                .create_token(new(name), now())
                .unwrap()
                .durable_blocking()
                .unwrap();
        }
        let refused = store.create_token(new("c"), now()).map(|_| ()).unwrap_err();
        assert!(matches!(
            refused,
            StoreError::Domain(DomainError::TokenQuota { limit: 3 })
        ));
        assert_eq!(store.tokens_of(Some(&account.prefix)).unwrap().len(), 3);
        // Operator tokens are not an account's.
        let operator = NewToken {
            principal: Principal::Operator {
                active: true,
                write: true,
            },
            name: "ops".to_owned(),
            scopes: Scopes::empty(),
            expires_at: None,
        };
        store
            .create_token(operator, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .delete_token(Some(&account.prefix), "a")
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .create_token(new("c"), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
    }

    #[test]
    fn pages_walk_a_listing_without_gaps_or_repeats() {
        let (_dir, store, account) = store_with_acme();
        // Another owner's tokens sort right after `acme`'s: they must not leak in.
        store
            .create_account(new_account(Some("acmf")), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        for i in 0..25 {
            let new = NewToken {
                principal: Principal::Account(account.prefix),
                name: format!("t{i:02}"),
                scopes: Scopes::only(Scope::Api),
                expires_at: None,
            };
            drop(store.create_token(new, now()).unwrap());
        }
        let mut seen = Vec::new();
        let mut page = PageRequest {
            after: None,
            limit: 10,
        };
        loop {
            let got = store.tokens_page(Some(&account.prefix), &page).unwrap();
            assert!(got.items.len() <= 10);
            seen.extend(got.items.into_iter().map(|t| t.name));
            match got.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        let mut expected: Vec<String> = (0..25).map(|i| format!("t{i:02}")).collect();
        expected.push(FIRST_TOKEN_NAME.to_owned());
        expected.sort();
        assert_eq!(seen, expected);
        let exact = store
            .tokens_page(
                Some(&account.prefix),
                &PageRequest {
                    after: None,
                    limit: 26,
                },
            )
            .unwrap();
        assert_eq!(
            (exact.items.len(), exact.next),
            (26, None),
            "no empty last page"
        );
        let accounts = store
            .accounts_page(&PageRequest {
                after: None,
                limit: 1,
            })
            .unwrap();
        assert_eq!(accounts.next.as_deref(), Some(b"acme".as_slice()));
    }

    #[tokio::test]
    async fn concurrent_writers_share_one_flush() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let before = store.flush_count();
        let a = store.issue_license(1, None, now()).unwrap();
        let b = store.issue_license(2, None, now()).unwrap();
        let c = store.issue_license(3, None, now()).unwrap();
        let d = store.issue_license(4, None, now()).unwrap();
        let (a, b, c, d) = tokio::join!(a.durable(), b.durable(), c.durable(), d.durable());
        for result in [a, b, c, d] {
            result.unwrap();
        }
        assert_eq!(
            store.flush_count() - before,
            1,
            "one flush covers every waiting writer"
        );
        // A later write needs a flush of its own.
        store
            .issue_license(5, None, now())
            .unwrap()
            .durable()
            .await
            .unwrap();
        assert_eq!(store.flush_count() - before, 2);
    }

    #[test]
    fn deleting_an_account_removes_its_tokens_and_frees_its_license() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (account, first) = store
            .create_account(new_account(None), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        let issued = store
            .issue_license(5, None, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        store
            .apply_license(&account.prefix, &issued.license.key_hash, now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert!(store.index().get(&first.token.hash).is_some());
        store
            .delete_account(&account.prefix)
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert!(store.index().get(&first.token.hash).is_none());
        assert!(store.tokens_of(Some(&account.prefix)).unwrap().is_empty());
        assert_eq!(
            store.license(issued.license.id).unwrap().unwrap().account,
            None
        );
        assert!(store.tree(TreeId::Tokens).is_empty());
    }
}
