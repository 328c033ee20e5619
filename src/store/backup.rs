//! Backups: a consistent online snapshot of every tree as JSON Lines, streamed, and the
//! restore that rebuilds a data directory from one.
//!
//! ```text
//! {"format":"upkeep-backup","version":2,"schema_version":4,"created_at":"…","trees":{…}}
//! {"tree":"prefix_account","key":"61636d65","value":"0204…"}
//! {"tree":"tokenhash_token","key":"…","value":null}
//! …
//! {"end":true,"records":1234,"blake3":"<hex of every line above, newlines included>"}
//! ```
//!
//! Values are the stored bytes (format-version byte included), so a restore is exact and
//! an older backup is migrated when the restored store first opens. The header's `trees`
//! describes each tree's key and value layout, from the inventory (`schema::TREES`).
//! `server.key` is never part of a backup: the database alone must not reveal a token
//! (restore takes it separately).
//!
//! Lines are applied in order: a later line for the same key replaces an earlier one,
//! and a `null` value removes the key (format version 2; version 1 had neither and is
//! still read).
//!
//! Consistency without stopping writers (SPEC §6). sled has no multi-tree snapshot, so
//! the backup is the state at one instant `T` reached by catching up:
//! 1. Under the write lock (a moment), a journal starts: from then on every commit notes
//!    the keys it wrote (`Store::transact`, `persist_uses`), after the commit, under the
//!    write lock.
//! 2. Every tree is streamed from sled's iterators with the lock released; writers go on.
//! 3. Rounds without the lock: the journal is drained and each key noted is written again
//!    with its current value (or `null` if gone), until a round finds few keys.
//! 4. Under the write lock (bounded: the few keys left, read from memory-cached trees),
//!    the last noted keys are written again; that instant is `T`. The journal stops.
//!
//! A key no commit touched after step 1 held one value all along, so its copy from step 2
//! is its value at `T`. A key some commit touched was noted after that commit, so it was
//! written again after it, the last time from a read made after its last change before
//! `T` (a change after such a read notes it again). So the last line of every key is its
//! value at `T`, and the file restores to exactly the store at `T`. Writers wait only for
//! step 1 and step 4, never for the copy.

use super::schema::{SCHEMA_VERSION, TREES, TreeId};
use super::tx::hex;
use super::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

pub const FORMAT: &str = "upkeep-backup";
/// The version written; every version from 1 up to it is read.
pub const FORMAT_VERSION: u32 = 2;

/// A catch-up round that finds at most this many keys is the last, under the lock.
const FINAL_ROUND: usize = 256;
/// Catch-up rounds without the lock before the last one, at most.
const MAX_ROUNDS: usize = 16;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    schema_version: u32,
    created_at: String,
    trees: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Line {
    tree: String,
    key: String,
    /// `None`: the key was removed (since format version 2).
    value: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Footer {
    end: bool,
    records: u64,
    blake3: String,
}

/// What a backup or restore handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub records: u64,
    pub schema_version: u32,
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn tree_docs() -> BTreeMap<String, String> {
    TREES
        .iter()
        .map(|tree| {
            let layout = tree.layout.split_whitespace().collect::<Vec<_>>().join(" ");
            (tree.name.to_owned(), layout)
        })
        .collect()
}

/// Hashes and writes one line.
fn emit(
    out: &mut impl Write,
    hasher: &mut blake3::Hasher,
    line: &impl Serialize,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(line).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    hasher.update(&bytes);
    out.write_all(&bytes)
}

/// The keys written while a backup runs (see the module doc).
#[derive(Default)]
pub(super) struct Journal {
    active: AtomicBool,
    keys: Mutex<HashSet<(TreeId, Vec<u8>)>>,
}

impl Journal {
    /// Whether commits must note their keys. Read and changed under the write lock.
    pub(super) fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Notes keys a commit wrote (call after the commit, under the write lock).
    pub(super) fn note(&self, keys: Vec<(TreeId, Vec<u8>)>) {
        if self.is_active() {
            let mut set = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            set.extend(keys);
        }
    }

    fn start(&self) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.active.store(true, Ordering::Relaxed);
    }

    fn drain(&self) -> Vec<(TreeId, Vec<u8>)> {
        let mut keys: Vec<_> =
            std::mem::take(&mut *self.keys.lock().unwrap_or_else(|e| e.into_inner()))
                .into_iter()
                .collect();
        keys.sort();
        keys
    }
}

/// Stops the journal when the backup ends, however it ends.
struct Journaling<'s>(&'s Store);

impl Drop for Journaling<'_> {
    fn drop(&mut self) {
        let _guard = self.0.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.0.journal.active.store(false, Ordering::Relaxed);
        self.0
            .journal
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// The output of a backup: lines, their hash and their count.
struct Emitter<'o, W: Write> {
    out: &'o mut W,
    hasher: blake3::Hasher,
    records: u64,
}

impl<W: Write> Emitter<'_, W> {
    fn line(&mut self, line: &impl Serialize) -> Result<(), StoreError> {
        emit(self.out, &mut self.hasher, line).map_err(StoreError::from)
    }

    fn record(&mut self, tree: TreeId, key: &[u8], value: Option<&[u8]>) -> Result<(), StoreError> {
        self.line(&Line {
            tree: tree.name().to_owned(),
            key: hex(key),
            value: value.map(hex),
        })?;
        self.records += 1;
        Ok(())
    }
}

impl Store {
    /// Whether a backup is being written now (from its start until its last line).
    pub fn backup_in_progress(&self) -> bool {
        self.journal.is_active()
    }

    /// Writes a consistent snapshot of the whole store to `out`, streaming, while
    /// writers go on (see the module doc for why it is one point in time).
    ///
    /// # Errors
    /// Reading the store or writing `out` failed.
    pub fn backup(&self, out: &mut impl Write, created_at: &str) -> Result<Summary, StoreError> {
        // Token last-use times live in memory between batches: save them first, so the
        // backup carries them (best-effort, like the batches themselves).
        if let Err(err) = self.persist_uses() {
            tracing::warn!(error = %err, "backup: token last-use times not saved first");
        }
        let _one_at_a_time = self.backup_lock.lock().unwrap_or_else(|e| e.into_inner());
        {
            let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
            self.journal.start();
        }
        let _journaling = Journaling(self);
        let mut emitter = Emitter {
            out,
            hasher: blake3::Hasher::new(),
            records: 0,
        };
        emitter.line(&Header {
            format: FORMAT.to_owned(),
            version: FORMAT_VERSION,
            schema_version: SCHEMA_VERSION,
            created_at: created_at.to_owned(),
            trees: tree_docs(),
        })?;
        for tree in TREES {
            for entry in self.tree(tree.id).iter() {
                let (key, value) = entry?;
                emitter.record(tree.id, &key, Some(&value))?;
            }
        }
        let mut rounds = 0;
        let last = loop {
            let keys = self.journal.drain();
            if keys.len() <= FINAL_ROUND || rounds == MAX_ROUNDS {
                break keys;
            }
            self.copy_again(&mut emitter, &keys)?;
            rounds += 1;
        };
        {
            let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
            let mut keys = last;
            keys.extend(self.journal.drain());
            keys.sort();
            keys.dedup();
            self.copy_again(&mut emitter, &keys)?;
        }
        let records = emitter.records;
        let footer = Footer {
            end: true,
            records,
            blake3: emitter.hasher.finalize().to_hex().to_string(),
        };
        let mut bytes = serde_json::to_vec(&footer).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        emitter.out.write_all(&bytes)?;
        emitter.out.flush()?;
        Ok(Summary {
            records,
            schema_version: SCHEMA_VERSION,
        })
    }

    /// Writes each key's current value again (`null` if it is gone).
    fn copy_again<W: Write>(
        &self,
        emitter: &mut Emitter<'_, W>,
        keys: &[(TreeId, Vec<u8>)],
    ) -> Result<(), StoreError> {
        for (tree, key) in keys {
            let value = self.tree(*tree).get(key)?;
            emitter.record(*tree, key, value.as_deref())?;
        }
        Ok(())
    }
}

/// Why a restore was refused; nothing was written in `dir` unless said otherwise.
#[derive(Debug)]
pub enum RestoreError {
    /// `dir` already holds a store.
    NotEmpty(std::path::PathBuf),
    /// The file is not a complete, intact upkeep backup.
    Invalid(String),
    /// The backup was made by a newer upkeep.
    TooNew(u32),
    Io(std::io::Error),
    Store(StoreError),
}

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestoreError::NotEmpty(dir) => write!(
                f,
                "{} already holds a store; restore into a new or empty data directory",
                dir.display()
            ),
            RestoreError::Invalid(why) => write!(f, "not a valid upkeep backup: {why}"),
            RestoreError::TooNew(version) => write!(
                f,
                "the backup has schema version {version}, newer than this upkeep supports ({SCHEMA_VERSION}); restore it with a newer upkeep"
            ),
            RestoreError::Io(err) => write!(f, "{err}"),
            RestoreError::Store(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for RestoreError {}

/// A backup read and checked in full: its schema version and records.
pub struct Checked {
    pub schema_version: u32,
    /// `(tree, key, value)` in file order; `None` removes the key.
    records: Vec<(TreeId, Vec<u8>, Option<Vec<u8>>)>,
}

impl Checked {
    pub fn summary(&self) -> Summary {
        Summary {
            records: self.records.len() as u64,
            schema_version: self.schema_version,
        }
    }
}

/// Reads a whole backup and checks it: format, every line, the count and the checksum.
///
/// # Errors
/// `Invalid`, `TooNew` or `Io`.
pub fn check(input: impl BufRead) -> Result<Checked, RestoreError> {
    let invalid = RestoreError::Invalid;
    let mut lines = input.lines();
    let mut hasher = blake3::Hasher::new();
    let mut next = |n: usize| -> Result<String, RestoreError> {
        match lines.next() {
            Some(Ok(line)) => Ok(line),
            Some(Err(err)) => Err(RestoreError::Io(err)),
            None => Err(invalid(format!(
                "the file ends at line {n} without its end line (truncated?)"
            ))),
        }
    };
    let first = next(1)?;
    let header: Header =
        serde_json::from_str(&first).map_err(|e| invalid(format!("line 1: {e}")))?;
    if header.format != FORMAT || !(1..=FORMAT_VERSION).contains(&header.version) {
        return Err(invalid(format!(
            "format {} version {} (expected {FORMAT} 1 to {FORMAT_VERSION})",
            header.format, header.version
        )));
    }
    if header.schema_version > SCHEMA_VERSION {
        return Err(RestoreError::TooNew(header.schema_version));
    }
    hasher.update(first.as_bytes());
    hasher.update(b"\n");
    let mut records = Vec::new();
    let footer = loop {
        let n = records.len() + 2;
        let text = next(n)?;
        if let Ok(footer) = serde_json::from_str::<Footer>(&text) {
            break footer;
        }
        let line: Line =
            serde_json::from_str(&text).map_err(|e| invalid(format!("line {n}: {e}")))?;
        let tree = TreeId::by_name(&line.tree)
            .ok_or_else(|| invalid(format!("line {n}: unknown tree `{}`", line.tree)))?;
        let key = unhex(&line.key).ok_or_else(|| invalid(format!("line {n}: key is not hex")))?;
        let value = match &line.value {
            Some(value) => {
                Some(unhex(value).ok_or_else(|| invalid(format!("line {n}: value is not hex")))?)
            }
            None if header.version >= 2 => None,
            None => return Err(invalid(format!("line {n}: no value"))),
        };
        hasher.update(text.as_bytes());
        hasher.update(b"\n");
        records.push((tree, key, value));
    };
    if !footer.end || footer.records != records.len() as u64 {
        return Err(invalid(format!(
            "the end line counts {} records, the file holds {}",
            footer.records,
            records.len()
        )));
    }
    if footer.blake3 != hasher.finalize().to_hex().as_str() {
        return Err(invalid(
            "checksum mismatch: the file was altered or damaged".to_owned(),
        ));
    }
    Ok(Checked {
        schema_version: header.schema_version,
        records,
    })
}

/// Rebuilds the store in `dir` (which must hold none) from a checked backup. The store
/// is built in `db.restoring` and renamed into place only when complete, so a failed
/// restore leaves no half-built store behind.
///
/// # Errors
/// `NotEmpty`, or the store could not be written.
pub fn restore(backup: &Checked, dir: &Path) -> Result<Summary, RestoreError> {
    let db_dir = dir.join("db");
    if db_dir.exists()
        && std::fs::read_dir(&db_dir)
            .map_err(RestoreError::Io)?
            .next()
            .is_some()
    {
        return Err(RestoreError::NotEmpty(dir.to_owned()));
    }
    super::create_private_dir(dir).map_err(RestoreError::Io)?;
    let building = dir.join("db.restoring");
    if building.exists() {
        std::fs::remove_dir_all(&building).map_err(RestoreError::Io)?;
    }
    let store_err = |e: sled::Error| RestoreError::Store(e.into());
    {
        let db = sled::Config::new()
            .path(&building)
            .mode(sled::Mode::LowSpace)
            .open()
            .map_err(store_err)?;
        let trees = TREES
            .iter()
            .map(|tree| db.open_tree(tree.name))
            .collect::<Result<Vec<_>, _>>()
            .map_err(store_err)?;
        let mut batches: Vec<sled::Batch> = trees.iter().map(|_| sled::Batch::default()).collect();
        for (tree, key, value) in &backup.records {
            let batch = &mut batches[*tree as usize];
            match value {
                Some(value) => batch.insert(key.as_slice(), value.as_slice()),
                None => batch.remove(key.as_slice()),
            }
        }
        for (tree, batch) in trees.iter().zip(batches) {
            tree.apply_batch(batch).map_err(store_err)?;
        }
        db.flush().map_err(store_err)?;
    }
    // The lock of the store just built may linger in sled's threads; `Store::open` waits.
    super::recently_closed::note(dir);
    if db_dir.exists() {
        std::fs::remove_dir(&db_dir).map_err(RestoreError::Io)?;
    }
    std::fs::rename(&building, &db_dir).map_err(RestoreError::Io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(RestoreError::Io)?;
    Ok(backup.summary())
}

#[cfg(test)]
mod tests {
    use super::super::schema::{OWNER_NAMES, TOKENS};
    use super::super::test_support::*;
    use super::super::{KEY_FILE, NewToken};
    use super::*;
    use crate::model::{AccountPrefix, Principal, Scope, Scopes};
    use std::sync::mpsc;
    use std::time::Duration;

    /// The backup's output: once the copy reaches `ownername_tokenhash` (every token
    /// already copied), it lets the writer go and waits until the writer has changed
    /// tokens, which it can only do if the backup holds no lock while copying.
    struct Gate {
        bytes: Vec<u8>,
        go: Option<mpsc::Sender<()>>,
        done: mpsc::Receiver<()>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let line = String::from_utf8_lossy(buf);
            if line.contains(r#""tree":"ownername_tokenhash""#) {
                if let Some(go) = self.go.take() {
                    go.send(()).unwrap();
                    self.done
                        .recv_timeout(Duration::from_secs(60))
                        .expect("writes went on while the backup was copying");
                }
            }
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn token(account: &AccountPrefix, name: String) -> NewToken {
        NewToken {
            principal: Principal::Account(*account),
            name,
            scopes: Scopes::only(Scope::Api),
            expires_at: None,
        }
    }

    #[test]
    fn a_backup_taken_while_tokens_are_created_restores_to_a_consistent_store() {
        let (dir, store, acme) = store_with_acme();
        store.set_max_tokens_per_account(1_000_000);
        for i in 0..20 {
            drop(
                store
                    .create_token(token(&acme.prefix, format!("old{i:02}")), now())
                    .unwrap(),
            );
        }
        let (go_tx, go_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let stop = AtomicBool::new(false);
        let mut gate = Gate {
            bytes: Vec::new(),
            go: Some(go_tx),
            done: done_rx,
        };
        let (store, stop) = (&store, &stop);
        let (summary, more) = std::thread::scope(|scope| {
            let writer = scope.spawn(move || {
                go_rx.recv().unwrap();
                // While the copy is past `tokenhash_token`: new tokens it did not see,
                // deleted tokens it did.
                for i in 0..50 {
                    drop(
                        store
                            .create_token(token(&acme.prefix, format!("new{i:02}")), now())
                            .unwrap(),
                    );
                }
                for i in 0..10 {
                    drop(store.delete_token(Some(&acme.prefix), &format!("old{i:02}")));
                }
                done_tx.send(()).unwrap();
                // And on, through the catch-up rounds, until the backup has returned.
                let mut more = 0;
                while !stop.load(Ordering::Relaxed) {
                    drop(
                        store
                            .create_token(token(&acme.prefix, format!("more{more:06}")), now())
                            .unwrap(),
                    );
                    more += 1;
                }
                more
            });
            let summary = store.backup(&mut gate, "now").unwrap();
            stop.store(true, Ordering::Relaxed);
            (summary, writer.join().unwrap())
        });
        assert!(summary.records > 0);

        let target = dir.path().join("restored");
        let checked = check(std::io::Cursor::new(gate.bytes)).unwrap();
        restore(&checked, &target).unwrap();
        std::fs::copy(dir.path().join(KEY_FILE), target.join(KEY_FILE)).unwrap();
        let restored = Store::open(&target).unwrap();
        // Every name points at a token and every token has its name: no half of any
        // write, and no key the copy saw before it changed.
        assert_eq!(restored.count(&TOKENS), restored.count(&OWNER_NAMES));
        let names: Vec<String> = restored
            .tokens_of(Some(&acme.prefix))
            .expect("no dangling name")
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names.len(), restored.count(&TOKENS));
        assert_eq!(restored.index().len(), names.len());
        // One instant: after the writes made during the copy, and a gap-free prefix of
        // those that followed.
        for i in 0..50 {
            assert!(names.contains(&format!("new{i:02}")), "new{i:02}");
        }
        for i in 0..20 {
            assert_eq!(names.contains(&format!("old{i:02}")), i >= 10, "old{i:02}");
        }
        let later: Vec<&String> = names.iter().filter(|n| n.starts_with("more")).collect();
        let expected: Vec<String> = (0..later.len()).map(|i| format!("more{i:06}")).collect();
        assert_eq!(later, expected.iter().collect::<Vec<_>>());
        assert!(later.len() <= more);
        assert_eq!(names.len(), 1 + 10 + 50 + later.len());
    }

    #[test]
    fn a_version_1_backup_still_restores() {
        let (dir, store, _) = store_with_acme();
        let mut bytes = Vec::new();
        store.backup(&mut bytes, "now").unwrap();
        // The same records as format 1 wrote them: no removals, version 1.
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains("null"));
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.pop();
        lines[0] = lines[0].replace(r#""version":2"#, r#""version":1"#);
        let mut hasher = blake3::Hasher::new();
        let mut v1 = String::new();
        for line in &lines {
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
            v1.push_str(line);
            v1.push('\n');
        }
        v1.push_str(&format!(
            r#"{{"end":true,"records":{},"blake3":"{}"}}"#,
            lines.len() - 1,
            hasher.finalize().to_hex()
        ));
        v1.push('\n');
        let checked = check(std::io::Cursor::new(v1)).unwrap();
        let target = dir.path().join("restored");
        restore(&checked, &target).unwrap();
        std::fs::copy(dir.path().join(KEY_FILE), target.join(KEY_FILE)).unwrap();
        assert_eq!(Store::open(&target).unwrap().accounts().unwrap().len(), 1);
    }
}
