//! The store: typed sled trees, the in-memory token, download-key and activation indexes
//! kept in step with them, and group-committed durability. The only module that names `sled` or
//! `bincode`; its public surface speaks domain types only (records, ids, [`Page`]s with
//! opaque [`Cursor`]s, [`StoreError`]), so another engine could implement the same
//! operations.
//!
//! Every write goes through `Store::write`: it takes the write lock, runs one sled
//! transaction over all trees (`Store::transact`: a record and its indexes change together
//! or not at all), applies the matching [`TokenIndex`], key-index and activation-index
//! changes, and returns
//! a [`Pending`] value. The caller gets the value only through [`Pending::durable`]
//! (async, group commit) or [`Pending::durable_blocking`] (CLI), so nothing can
//! acknowledge a write that is not on disk yet.
//!
//! Reads return `Option`; whether "absent" is a 404 is the caller's decision.
//!
//! Files: `schema` (the typed table of trees), `key` (key bytes), `codec` (value bytes),
//! `tx` (typed transactions and reads), `page` (cursors), `index_load` (open, index
//! loading, `inspect`), `snapshot` (the saved indexes), `token_index`, `key_index`
//! (download keys by lookup hash), `activation_index` (each key's facts and activated
//! sites, by key id), `commit` (group commit), `migrate`, `backup`, `files`
//! (the data directory's private files), `blobs` (file content by hash,
//! `<data>/blobs/`), and one file per aggregate: `accounts`, `tokens`, `plan_licenses`,
//! `catalog` (groups, products, versions and files), `licensing` (customers, download
//! keys, activations) with `license_uses` (key checks noted in memory, written in
//! batches), `reports` (the daily rollups of SPEC §10).

mod accounts;
mod activation_index;
pub mod backup;
pub mod blobs;
mod catalog;
mod codec;
mod commit;
mod files;
mod index_load;
mod key;
mod key_index;
mod license_uses;
mod licensing;
mod migrate;
mod page;
mod plan_licenses;
mod reports;
pub mod schema;
mod snapshot;
mod token_index;
mod tokens;
mod tx;

pub use activation_index::{IdentityRef, KeyStanding, Standing};
pub use blobs::{Blobs, ChunkSource, PutError, Staged, Swept};
pub use catalog::Catalogued;
pub use codec::{DecodeError, Record};
pub use files::{KEY_FILE, create_private_file};
pub(crate) use files::{create_private_dir, create_temporary_file};
pub use index_load::{Inspection, OpenError, SnapshotState, inspect};
pub use licensing::{ActivationPlan, HolderDeactivation, KeyFilter};
pub use migrate::SchemaError;
pub use page::{Cursor, CursorError, Page, PageRequest};
pub use token_index::{AuthRecord, Authenticated, PendingUse, TokenIndex};

use crate::model::{
    AccountPrefix, DomainError, PlanLicense, Principal, Scopes, Timestamp, Token, TokenHash,
};
use crate::token::{self as auth, ServerKey, TokenKind};
use backup::Journal;
use commit::GroupCommit;
use files::load_or_create_key;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Engine and integrity failures, and domain refusals raised inside a transaction.
#[derive(Debug)]
pub enum StoreError {
    /// The storage engine could not read or write (disk full, I/O error).
    Io(EngineError),
    /// A stored value does not decode. Logged with its tree and key.
    Corrupt {
        tree: &'static str,
        key: String,
        reason: String,
    },
    /// A domain rule refused the change; nothing was written.
    Domain(DomainError),
    /// A list cursor that decodes but names no position of the listing asked for (a
    /// cursor of another listing).
    InvalidCursor(String),
    /// The disk holding the store is (nearly) full: writes are refused before anything
    /// changes, so that sled never meets a full disk mid-write.
    NoSpace { available: u64, reserve: u64 },
    /// An earlier write could not be persisted; sled refuses further writes until the
    /// store is reopened (restart upkeep once the cause is fixed).
    Failed,
    /// Something that cannot happen did.
    Bug(String),
}

/// What the storage engine reported (opaque: callers only show it).
#[derive(Debug)]
pub struct EngineError(sled::Error);

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for EngineError {}

impl From<std::io::Error> for EngineError {
    fn from(err: std::io::Error) -> Self {
        EngineError(sled::Error::Io(err))
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io(err) => write!(f, "store i/o: {err}"),
            StoreError::Corrupt { tree, key, reason } => {
                write!(f, "corrupt value in tree {tree} at key {key}: {reason}")
            }
            StoreError::Domain(err) => write!(f, "{err}"),
            StoreError::InvalidCursor(why) => write!(f, "not a cursor of this list: {why}"),
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
            sled::Error::Io(_) => StoreError::Io(EngineError(err)),
            sled::Error::Corruption { .. } => StoreError::Corrupt {
                tree: "(log)",
                key: String::new(),
                reason: err.to_string(),
            },
            other => StoreError::Bug(other.to_string()),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(err: std::io::Error) -> Self {
        StoreError::Io(err.into())
    }
}

impl From<DomainError> for StoreError {
    fn from(err: DomainError) -> Self {
        StoreError::Domain(err)
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

impl<'s, T> Pending<'s, T> {
    /// The same write, its value mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Pending<'s, U> {
        Pending {
            store: self.store,
            value: f(self.value),
            seq: self.seq,
        }
    }

    /// Waits for the group flush that covers this write.
    ///
    /// # Errors
    /// The flush failed: the write is applied in memory but not known to be on disk.
    pub async fn durable(self) -> Result<T, StoreError> {
        if let Err(err) = self.store.commit.wait(&self.store.db, self.seq).await {
            self.store.note_failure(&err);
            return Err(err);
        }
        self.store.collect_blobs().await;
        Ok(self.value)
    }

    /// The committed value and its place in the commit order, to wait for with
    /// [`Store::wait_durable`] — for a write made on another thread than the one that
    /// waits (the service layer commits on a blocking thread and waits on the runtime).
    pub fn detach(self) -> (T, Ticket) {
        (self.value, Ticket(self.seq))
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
        self.store.collect_blobs_blocking();
        Ok(self.value)
    }
}

/// A committed write's place in the commit order (see [`Pending::detach`]).
#[derive(Debug, Clone, Copy)]
#[must_use = "a write is acknowledged only once durable: wait with `Store::wait_durable`"]
pub struct Ticket(u64);

impl Store {
    /// A value read from the store, acknowledged like a write: once every write committed
    /// so far is durable (a write that found its work already done — an idempotent retry —
    /// answers only when what it found is on disk).
    pub fn already<T>(&self, value: T) -> Pending<'_, T> {
        Pending {
            store: self,
            value,
            seq: self.commit.written(),
        }
    }

    /// Waits for the group flush that covers the write of `ticket`.
    ///
    /// # Errors
    /// The flush failed: the write is applied in memory but not known to be on disk.
    pub async fn wait_durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        if let Err(err) = self.commit.wait(&self.db, ticket.0).await {
            self.note_failure(&err);
            return Err(err);
        }
        self.collect_blobs().await;
        Ok(())
    }

    /// Deletes the blobs whose last reference a durable write dropped (on the blocking
    /// pool; nothing to do, the usual case, costs a lock).
    async fn collect_blobs(&self) {
        let durable = self.commit.durable();
        if self.blobs.has_due(durable) {
            self.blobs.collect_async(durable).await;
        }
    }

    fn collect_blobs_blocking(&self) {
        let durable = self.commit.durable();
        if self.blobs.has_due(durable) {
            self.blobs.collect(durable);
        }
    }
}

/// A change to the token, key or activation index, applied after its transaction commits.
enum IndexOp {
    Insert(TokenHash, AuthRecord, Option<Timestamp>),
    Remove(TokenHash),
    /// The account exists; its plan license's limit and expiry, if one is bound.
    SetAccount(AccountPrefix, Option<u32>, Option<Timestamp>),
    RemoveAccount(AccountPrefix),
    /// An operator token as it now is (`None`: deleted), for [`Store::operators`].
    Operator(String, Option<Token>),
    /// A download key now has this lookup hash (`key_index`).
    KeyAdd([u8; 32], crate::model::DownloadKeyId),
    /// A download key no longer has this lookup hash.
    KeyRemove([u8; 32], crate::model::DownloadKeyId),
    /// A download key as committed, and whether the record is new (`activation_index`).
    KeyFacts(Box<crate::model::DownloadKey>, bool),
    /// A download key is gone, with its activations.
    KeyGone(crate::model::DownloadKeyId),
    /// An activation was committed.
    ActivationAdd(Box<crate::model::Activation>),
    /// An activation of this key is gone.
    ActivationRemove(crate::model::DownloadKeyId, crate::model::ActivationId),
}

thread_local! {
    /// The credential the current thread writes for ([`Store::as_credential`]).
    static CREDENTIAL: std::cell::Cell<Option<(TokenHash, Timestamp)>> =
        const { std::cell::Cell::new(None) };
}

/// The embedded database and everything kept in step with it.
pub struct Store {
    db: sled::Db,
    /// Every tree of `schema::TREES`, indexed by `schema::TreeId`.
    trees: Vec<sled::Tree>,
    index: TokenIndex,
    /// Download keys by lookup hash, in front of `keylookup_keyid` (`key_index`); kept in
    /// step like the token index.
    keys: key_index::KeyIndex,
    /// Every key's validation facts and activated identities, by key id
    /// (`activation_index`); kept in step like the key index, built by a scan at open.
    activations: activation_index::ActivationIndex,
    /// Serializes writers: scans done before a transaction stay true during it, and
    /// index updates happen in commit order.
    write_lock: Mutex<()>,
    commit: GroupCommit,
    dir: PathBuf,
    /// Derives operator-token values (`<dir>/server.key`).
    key: ServerKey,
    /// License keys at rest (lookup hashes, sealed values), from the same server key.
    vault: crate::secrets::KeyVault,
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
    /// The keys written while a backup runs (see `backup`).
    journal: Journal,
    /// One backup at a time.
    backup_lock: Mutex<()>,
    /// File content by hash (`<dir>/blobs/`), referenced through `blob_refs`.
    blobs: Blobs,
    /// Every operator token's record, by name: they are few and listed often
    /// (`GET /_/token`), so the list is served from memory. Changed only after the commit
    /// that changes the store, like the index.
    operators: std::sync::RwLock<std::collections::BTreeMap<String, Token>>,
    /// Incremented after every committed write: caches of what the store holds (the
    /// update checks' catalogue views) are valid while it has not moved.
    generation: AtomicU64,
    /// Download-key checks and activation sightings not yet written (`last_checked_at`,
    /// `last_seen_at`): kept in memory on the check path, in shards by key id, persisted in
    /// batches like token uses (see `license_uses`).
    license_uses: license_uses::LicenseUses,
    /// Writes handed to a blocking thread and not yet ended ([`Store::write_in_flight`]),
    /// and their end ([`Store::writes_settled`]): a stopping server waits for a write
    /// whose connection it gave up on.
    in_flight: AtomicUsize,
    settled: tokio::sync::Notify,
}

/// One write on its way to the store, counted from before its blocking task is spawned
/// until that task ends ([`Store::write_in_flight`]).
pub struct WriteInFlight(Arc<Store>);

impl Drop for WriteInFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.settled.notify_waiters();
        }
    }
}

/// Marks the index suspect when dropped, i.e. when a write unwinds before its index
/// changes are applied; `mem::forget` it once they are.
struct SuspectUnlessDone<'a>(&'a AtomicBool);

impl Drop for SuspectUnlessDone<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
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
    /// Takes the next id. Call under the write lock, and persist `next_id` with the record
    /// (see `Tx::take_id`).
    fn allocate_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts committed writes: read it *before* reading the store to build a cache
    /// entry, keep the entry while it is unchanged (a write that commits meanwhile moves
    /// it, so a stale entry is never kept).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The server key (`<dir>/server.key`), from which sealing, lookup and link keys are
    /// derived (never stored in the database or a backup).
    pub fn server_key(&self) -> &ServerKey {
        &self.key
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// License keys at rest: lookup hashes and sealed values, keyed from `server.key`.
    pub fn vault(&self) -> &crate::secrets::KeyVault {
        &self.vault
    }

    /// The blob store (`<dir>/blobs/`).
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
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

    /// Runs `body` as the holder of credential `hash` at `now`. A request's writes run in
    /// it: under the store's write lock, before anything changes, the
    /// credential must still authenticate — a revocation committed while the request
    /// waited for the lock is obeyed (SPEC §2).
    pub fn as_credential<T>(&self, hash: TokenHash, now: Timestamp, body: impl FnOnce() -> T) -> T {
        CREDENTIAL.with(|slot| {
            let previous = slot.replace(Some((hash, now)));
            let result = body();
            slot.set(previous);
            result
        })
    }

    /// Runs `body` under the write lock, applies the index changes it returns, and hands
    /// back its value as a pending (not yet durable) write.
    fn write<T>(
        &self,
        body: impl FnOnce() -> Result<(T, Vec<IndexOp>), StoreError>,
    ) -> Result<Pending<'_, T>, StoreError> {
        self.write_moving(true, || body().map(|(value, ops)| (value, Some(ops))))
    }

    /// [`Store::write`] whose body may find, under the lock, that there is nothing to
    /// write (`None` for its index changes): then the generation stays, no commit is
    /// counted, and the answer needs no flush of its own (it is [`Store::already`]: it
    /// waits only for writes already committed, as any read-your-writes answer does).
    fn write_unless_unchanged<T>(
        &self,
        body: impl FnOnce() -> Result<(T, Option<Vec<IndexOp>>), StoreError>,
    ) -> Result<Pending<'_, T>, StoreError> {
        self.write_moving(true, body)
    }

    /// [`Store::write`] for a write of nothing the update checks' caches hold (report
    /// rollups and files' download counts, the batches of key checks): the
    /// [`Store::generation`] stays, so the flushes a minute do not make every catalogue
    /// view be read again.
    fn write_outside_caches<T>(
        &self,
        body: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<Pending<'_, T>, StoreError> {
        self.write_moving(false, || Ok((body()?, Some(Vec::new()))))
    }

    fn write_moving<T>(
        &self,
        moves_generation: bool,
        body: impl FnOnce() -> Result<(T, Option<Vec<IndexOp>>), StoreError>,
    ) -> Result<Pending<'_, T>, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.check_writable()?;
        if let Some((hash, now)) = CREDENTIAL.with(std::cell::Cell::get)
            && self.index.authenticate(&hash, now).is_none()
        {
            return Err(DomainError::CredentialGone.into());
        }
        // Armed until the index has the write's changes: a panic in between (or an
        // engine error, which may come after a partial commit) makes the index suspect.
        let suspect = SuspectUnlessDone(&self.index_suspect);
        let (value, ops) = match body() {
            Ok((value, Some(ops))) => (value, ops),
            Ok((value, None)) => {
                // Nothing written.
                std::mem::forget(suspect);
                return Ok(self.already(value));
            }
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
                IndexOp::Operator(name, token) => {
                    let mut operators = self.operators.write().unwrap_or_else(|e| e.into_inner());
                    match token {
                        Some(token) => operators.insert(name, token),
                        None => operators.remove(&name),
                    };
                }
                IndexOp::KeyAdd(lookup, id) => self.keys.insert(&lookup, id),
                IndexOp::KeyRemove(lookup, id) => self.keys.remove(&lookup, id),
                IndexOp::KeyFacts(key, created) => self.activations.set_key(&key, created),
                IndexOp::KeyGone(id) => self.activations.remove_key(id),
                IndexOp::ActivationAdd(activation) => self.activations.add_activation(&activation),
                IndexOp::ActivationRemove(key, id) => self.activations.remove_activation(key, id),
            }
        }
        std::mem::forget(suspect);
        if moves_generation {
            self.generation.fetch_add(1, Ordering::Release);
        }
        let seq = self.commit.note_write();
        self.blobs.assign(seq);
        Ok(Pending {
            store: self,
            value,
            seq,
        })
    }

    /// Whether the store answers a read (for `/healthz`).
    ///
    /// # Errors
    /// The read failed.
    pub fn check(&self) -> Result<(), StoreError> {
        self.read(&schema::META, &key::MetaKey::SchemaVersion)?;
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

    /// Counts a write until the returned guard is dropped: take it before the write's
    /// blocking task is spawned and drop it in that task, after the write.
    pub fn write_in_flight(self: &Arc<Self>) -> WriteInFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        WriteInFlight(self.clone())
    }

    /// Resolves once no write counted by [`Store::write_in_flight`] is running.
    pub async fn writes_settled(&self) {
        loop {
            // Made before the count is read: a wake-up between the two is not missed.
            let settled = self.settled.notified();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            settled.await;
        }
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
}

fn generate(kind: TokenKind) -> Result<auth::NewSecret, StoreError> {
    auth::generate(kind).map_err(|err| StoreError::Bug(format!("OS RNG failed: {err}")))
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::Store;
    use crate::model::{Account, NewAccount, Timestamp};

    pub fn new_account(prefix: Option<&str>) -> NewAccount {
        NewAccount::parse("Acme", "dev@acme.io", prefix).unwrap()
    }

    pub fn now() -> Timestamp {
        Timestamp::from_secs(1_790_000_000)
    }

    /// A fresh store in a temporary directory, holding the account `acme`.
    pub fn store_with_acme() -> (tempfile::TempDir, Store, Account) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (account, _) = store
            .create_account(new_account(Some("acme")), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        (dir, store, account)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[tokio::test]
    async fn writes_settle_when_the_last_one_in_flight_ends() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        // None in flight: settled at once.
        store.writes_settled().await;
        let first = store.write_in_flight();
        let second = store.write_in_flight();
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { store.writes_settled().await }
        });
        // On this single-threaded runtime the waiter runs at each yield; it cannot end
        // while a write is counted.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished());
        drop(first);
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished(), "one write is still in flight");
        // Dropped on another thread, as a blocking write's guard is.
        std::thread::spawn(move || drop(second)).join().unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(20), waiting)
            .await
            .expect("settled once the last write ended")
            .unwrap();
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
}
