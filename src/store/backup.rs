//! Backups: a consistent online snapshot of every tree as JSON Lines and of every blob
//! the records reference, streamed, and the restore that rebuilds a data directory from one.
//!
//! ```text
//! {"format":"upkeep-backup","version":3,"schema_version":5,"created_at":"…","trees":{…}}
//! {"tree":"prefix_account","key":"61636d65","value":"0204…"}
//! {"tree":"tokenhash_token","key":"…","value":null}
//! …
//! {"blob":"<64 hex: blake3 of the content>","size":70000}
//! <exactly 70000 raw bytes>\n
//! …
//! {"end":true,"records":1234,"blobs":1,"blake3":"<hex of every byte above>"}
//! ```
//!
//! Format version 3 adds the blobs (SPEC §6): after the records, each blob referenced in
//! `blob_refs` at the backup's instant, as a header line then its raw bytes and a newline,
//! read from the blob file in 64 KiB chunks (never whole in memory). Restoring checks each
//! blob against its name as it streams (a mismatch fails the restore naming the blob), and
//! that every blob the records reference is present. Blobs dropped while a backup runs are
//! deleted only after it (`Blobs::hold`), so each one referenced at its instant is still
//! there to copy. Versions 1 and 2 (no blobs) are still read.
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

use super::blobs::CHUNK;
use super::schema::{SCHEMA_VERSION, TREES, TreeId};
use super::tx::hex;
use super::{Store, StoreError};
use crate::model::{BlobHash, BlobRef};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

pub const FORMAT: &str = "upkeep-backup";
/// The version written; every version from 1 up to it is read.
pub const FORMAT_VERSION: u32 = 3;

/// The longest line read (a record's hex is at most about 2 MiB).
const MAX_LINE: u64 = 8 * 1024 * 1024;

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

/// The line before a blob's bytes (since format version 3).
#[derive(Debug, Serialize, Deserialize)]
struct BlobLine {
    blob: String,
    size: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Footer {
    end: bool,
    records: u64,
    /// Blobs in the file (since format version 3).
    #[serde(default)]
    blobs: u64,
    blake3: String,
}

/// What a backup or restore handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub records: u64,
    pub schema_version: u32,
    /// Blobs carried (their bytes, `blob_bytes` in all).
    pub blobs: u64,
    pub blob_bytes: u64,
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
    /// The last line written for each `blob_refs` key: whether it holds a reference.
    /// At the end, the blobs referenced at the backup's instant.
    refs: BTreeMap<Vec<u8>, bool>,
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
        if tree == TreeId::BlobRefs {
            self.refs.insert(key.to_vec(), value.is_some());
        }
        self.records += 1;
        Ok(())
    }

    /// Writes one blob: its line, its bytes read in chunks and checked against its name,
    /// a newline. Returns its size.
    fn blob(&mut self, hash: &BlobHash, path: &Path) -> Result<u64, StoreError> {
        let named = |what: &str| {
            StoreError::Io(
                std::io::Error::other(format!(
                    "blob {hash} ({}) {what}; the backup is incomplete",
                    path.display()
                ))
                .into(),
            )
        };
        let mut file = std::fs::File::open(path)
            .map_err(|err| named(&format!("is referenced but cannot be read: {err}")))?;
        let size = file.metadata()?.len();
        self.line(&BlobLine {
            blob: hash.to_hex(),
            size,
        })?;
        let mut buffer = vec![0u8; CHUNK];
        let mut content = blake3::Hasher::new();
        let mut left = size;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(CHUNK);
            let n = file.read(&mut buffer[..want])?;
            if n == 0 {
                return Err(named("shrank while it was copied"));
            }
            content.update(&buffer[..n]);
            self.hasher.update(&buffer[..n]);
            self.out.write_all(&buffer[..n])?;
            left -= n as u64;
        }
        if BlobHash::from(content.finalize()) != *hash {
            return Err(named("does not match its hash (damaged on disk)"));
        }
        self.hasher.update(b"\n");
        self.out.write_all(b"\n")?;
        Ok(size)
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
        if let Err(err) = self.persist_license_uses() {
            tracing::warn!(error = %err, "backup: key last-check times not saved first");
        }
        let _one_at_a_time = self.backup_lock.lock().unwrap_or_else(|e| e.into_inner());
        // Blobs dropped from now on are deleted only after the backup (SPEC §6): every
        // blob referenced at the backup's instant stays until it is copied.
        let _held = self.blobs.hold();
        {
            let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
            self.journal.start();
        }
        let _journaling = Journaling(self);
        let mut emitter = Emitter {
            out,
            hasher: blake3::Hasher::new(),
            records: 0,
            refs: BTreeMap::new(),
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
        // The records are the store at one instant; the blobs they reference then are
        // all still there (deletions are held), whatever writers did since.
        let referenced: Vec<BlobHash> = std::mem::take(&mut emitter.refs)
            .into_iter()
            .filter(|(_, referenced)| *referenced)
            .map(|(key, _)| {
                <BlobHash as super::key::Key>::from_bytes(&key)
                    .map_err(|why| super::tx::corrupt(TreeId::BlobRefs, &key, why))
            })
            .collect::<Result<_, _>>()?;
        let (mut blobs, mut blob_bytes) = (0, 0);
        for hash in &referenced {
            blob_bytes += emitter.blob(hash, &self.blobs.path(hash))?;
            blobs += 1;
        }
        let records = emitter.records;
        let footer = Footer {
            end: true,
            records,
            blobs,
            blake3: emitter.hasher.finalize().to_hex().to_string(),
        };
        let mut bytes = serde_json::to_vec(&footer).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        emitter.out.write_all(&bytes)?;
        emitter.out.flush()?;
        Ok(Summary {
            records,
            schema_version: SCHEMA_VERSION,
            blobs,
            blob_bytes,
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

/// A backup read and checked in full: its schema version, records and blobs.
pub struct Checked {
    pub schema_version: u32,
    /// `(tree, key, value)` in file order; `None` removes the key.
    records: Vec<(TreeId, Vec<u8>, Option<Vec<u8>>)>,
    /// The blobs the file carries (each checked against its hash; the bytes are not kept).
    blobs: Vec<BlobRef>,
}

impl Checked {
    pub fn summary(&self) -> Summary {
        Summary {
            records: self.records.len() as u64,
            schema_version: self.schema_version,
            blobs: self.blobs.len() as u64,
            blob_bytes: self.blobs.iter().map(|blob| blob.size).sum(),
        }
    }
}

/// Where a reader puts each blob's bytes as they stream by: nowhere (`check`), or files
/// (`restore_from`).
trait BlobSink {
    fn start(&mut self, hash: &BlobHash) -> Result<(), RestoreError>;
    fn write(&mut self, chunk: &[u8]) -> Result<(), RestoreError>;
    /// The bytes matched the name: keep them.
    fn keep(&mut self, hash: &BlobHash) -> Result<(), RestoreError>;
}

struct Discard;

impl BlobSink for Discard {
    fn start(&mut self, _: &BlobHash) -> Result<(), RestoreError> {
        Ok(())
    }

    fn write(&mut self, _: &[u8]) -> Result<(), RestoreError> {
        Ok(())
    }

    fn keep(&mut self, _: &BlobHash) -> Result<(), RestoreError> {
        Ok(())
    }
}

/// Reads one line (up to `MAX_LINE`), without its newline; `None` at the end of input.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>) -> Result<Option<()>, RestoreError> {
    buf.clear();
    let n = input
        .by_ref()
        .take(MAX_LINE)
        .read_until(b'\n', buf)
        .map_err(RestoreError::Io)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if n as u64 == MAX_LINE {
        return Err(RestoreError::Invalid(format!(
            "a line longer than {MAX_LINE} bytes"
        )));
    }
    Ok(Some(()))
}

/// Reads a whole backup and checks it: format, every line, every blob against its hash,
/// the counts and the checksum. Blob bytes are read through, not kept: [`restore`] needs
/// [`restore_from`] for a backup that carries blobs.
///
/// # Errors
/// `Invalid`, `TooNew` or `Io`.
pub fn check(input: impl BufRead) -> Result<Checked, RestoreError> {
    read(input, &mut Discard)
}

fn read(mut input: impl BufRead, sink: &mut impl BlobSink) -> Result<Checked, RestoreError> {
    let invalid = RestoreError::Invalid;
    let mut hasher = blake3::Hasher::new();
    let mut buf = Vec::new();
    let mut n = 1;
    let next = |input: &mut _, buf: &mut Vec<u8>, n: usize| -> Result<String, RestoreError> {
        match read_line(input, buf)? {
            Some(()) => String::from_utf8(std::mem::take(buf))
                .map_err(|_| invalid(format!("line {n} is not UTF-8"))),
            None => Err(invalid(format!(
                "the file ends at line {n} without its end line (truncated?)"
            ))),
        }
    };
    let first = next(&mut input, &mut buf, n)?;
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
    let mut blobs: Vec<BlobRef> = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    let footer = loop {
        n += 1;
        let text = next(&mut input, &mut buf, n)?;
        if let Ok(footer) = serde_json::from_str::<Footer>(&text) {
            break footer;
        }
        hasher.update(text.as_bytes());
        hasher.update(b"\n");
        if header.version >= 3 {
            if let Ok(line) = serde_json::from_str::<BlobLine>(&text) {
                let hash = BlobHash::parse_hex(&line.blob)
                    .map_err(|why| invalid(format!("line {n}: {why}")))?;
                sink.start(&hash)?;
                let mut content = blake3::Hasher::new();
                let mut left = line.size;
                while left > 0 {
                    let want = usize::try_from(left).unwrap_or(usize::MAX).min(CHUNK);
                    let got = input.read(&mut chunk[..want]).map_err(RestoreError::Io)?;
                    if got == 0 {
                        return Err(invalid(format!(
                            "the file ends inside blob {hash} (truncated?)"
                        )));
                    }
                    content.update(&chunk[..got]);
                    hasher.update(&chunk[..got]);
                    sink.write(&chunk[..got])?;
                    left -= got as u64;
                }
                let mut newline = [0u8; 1];
                input
                    .read_exact(&mut newline)
                    .map_err(|_| invalid(format!("no newline after blob {hash} (damaged?)")))?;
                if newline != *b"\n" {
                    return Err(invalid(format!(
                        "no newline after blob {hash}: its size is wrong (damaged?)"
                    )));
                }
                hasher.update(b"\n");
                if BlobHash::from(content.finalize()) != hash {
                    return Err(invalid(format!(
                        "blob {hash} does not match its hash: the backup is damaged"
                    )));
                }
                sink.keep(&hash)?;
                blobs.push(BlobRef {
                    hash,
                    size: line.size,
                });
                continue;
            }
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
        records.push((tree, key, value));
    };
    if !footer.end || footer.records != records.len() as u64 || footer.blobs != blobs.len() as u64 {
        return Err(invalid(format!(
            "the end line counts {} records and {} blobs, the file holds {} and {}",
            footer.records,
            footer.blobs,
            records.len(),
            blobs.len()
        )));
    }
    if footer.blake3 != hasher.finalize().to_hex().as_str() {
        return Err(invalid(
            "checksum mismatch: the file was altered or damaged".to_owned(),
        ));
    }
    // Every blob the records reference (at the end: the last line of each key wins).
    let mut referenced = BTreeMap::new();
    for (tree, key, value) in &records {
        if *tree == TreeId::BlobRefs {
            referenced.insert(key.as_slice(), value.is_some());
        }
    }
    let carried: BTreeSet<[u8; 32]> = blobs.iter().map(|blob| *blob.hash.as_bytes()).collect();
    for (key, _) in referenced.into_iter().filter(|(_, r)| *r) {
        if !<[u8; 32]>::try_from(key).is_ok_and(|key| carried.contains(&key)) {
            return Err(invalid(format!(
                "blob {} is referenced but not in the backup",
                hex(key)
            )));
        }
    }
    Ok(Checked {
        schema_version: header.schema_version,
        records,
        blobs,
    })
}

/// Writes each verified blob of a backup being restored under `<dir>/blobs.restoring/`,
/// fanned out as the blob store names them.
struct Staging {
    root: PathBuf,
    file: Option<std::fs::File>,
}

impl Staging {
    fn temp(&self) -> PathBuf {
        self.root.join("incoming")
    }
}

impl BlobSink for Staging {
    fn start(&mut self, _: &BlobHash) -> Result<(), RestoreError> {
        self.file = Some(super::create_temporary_file(&self.temp()).map_err(RestoreError::Io)?);
        Ok(())
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), RestoreError> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| RestoreError::Invalid("blob bytes outside a blob".into()))?;
        file.write_all(chunk).map_err(RestoreError::Io)
    }

    fn keep(&mut self, hash: &BlobHash) -> Result<(), RestoreError> {
        let file = self
            .file
            .take()
            .ok_or_else(|| RestoreError::Invalid("blob bytes outside a blob".into()))?;
        file.sync_all().map_err(RestoreError::Io)?;
        let hex = hash.to_hex();
        let leaf = self.root.join(&hex[..2]).join(&hex[2..4]);
        // Durable as an upload is: the file, then its name (the store that will name it is
        // put in place only after every blob is).
        super::blobs::make_dir(&leaf).map_err(RestoreError::Io)?;
        std::fs::rename(self.temp(), leaf.join(hex)).map_err(RestoreError::Io)?;
        super::blobs::sync_dir(&leaf).map_err(RestoreError::Io)
    }
}

/// Refuses a data directory that already holds a store.
fn check_target(dir: &Path) -> Result<(), RestoreError> {
    let db_dir = dir.join("db");
    if db_dir.exists()
        && std::fs::read_dir(&db_dir)
            .map_err(RestoreError::Io)?
            .next()
            .is_some()
    {
        return Err(RestoreError::NotEmpty(dir.to_owned()));
    }
    Ok(())
}

/// Rebuilds the store in `dir` (which must hold none) from a checked backup. The store
/// is built in `db.restoring` and renamed into place only when complete, so a failed
/// restore leaves no half-built store behind. A backup that carries blobs is restored
/// with [`restore_from`], which writes them as it reads them.
///
/// # Errors
/// `NotEmpty`, `Invalid` for a backup with blobs, or the store could not be written.
pub fn restore(backup: &Checked, dir: &Path) -> Result<Summary, RestoreError> {
    if !backup.blobs.is_empty() {
        return Err(RestoreError::Invalid(format!(
            "it carries {} blobs, which this restore path does not keep (restore it with \
             `backup::restore_from`)",
            backup.blobs.len()
        )));
    }
    check_target(dir)?;
    super::create_private_dir(dir).map_err(RestoreError::Io)?;
    install(backup, dir, None)
}

/// Checks a backup and rebuilds the store in `dir` from it in one pass: the records are
/// kept in memory (as [`check`] keeps them), each blob streams to
/// `<dir>/blobs.restoring/` and is kept only if it matches its hash. Nothing is put in
/// place unless the whole file checks: then the blobs become `<dir>/blobs/`, then the
/// store `<dir>/db/` (in that order, so a store never names a missing blob).
///
/// # Errors
/// `NotEmpty`, `Invalid` (naming a damaged blob), `TooNew`, or writing failed.
pub fn restore_from(input: impl BufRead, dir: &Path) -> Result<Summary, RestoreError> {
    check_target(dir)?;
    super::create_private_dir(dir).map_err(RestoreError::Io)?;
    let staging = dir.join("blobs.restoring");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(RestoreError::Io)?;
    }
    super::create_private_dir(&staging).map_err(RestoreError::Io)?;
    let result = read(
        input,
        &mut Staging {
            root: staging.clone(),
            file: None,
        },
    )
    .and_then(|checked| install(&checked, dir, Some(&staging)));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// Builds the store in `db.restoring`, moves the staged blobs (if any) to `blobs/`, then
/// the store to `db/`.
fn install(backup: &Checked, dir: &Path, blobs: Option<&Path>) -> Result<Summary, RestoreError> {
    let db_dir = dir.join("db");
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
    // Blobs first: a store never names a blob that is not in place. Any `blobs/` here
    // belongs to no store (there is none yet): the leftover of an interrupted restore.
    let blob_dir = dir.join(super::blobs::DIR);
    if let Some(staged) = blobs {
        if blob_dir.exists() {
            std::fs::remove_dir_all(&blob_dir).map_err(RestoreError::Io)?;
        }
        std::fs::rename(staged, &blob_dir).map_err(RestoreError::Io)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(RestoreError::Io)?;
    }
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
    use std::io::Read;
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
    fn version_1_and_2_backups_still_restore() {
        let (dir, store, _) = store_with_acme();
        let mut bytes = Vec::new();
        store.backup(&mut bytes, "now").unwrap();
        // The same records as formats 1 and 2 wrote them: no removals, no blobs, and an
        // end line without a blob count.
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains("null"));
        for version in [1, 2] {
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            lines.pop();
            lines[0] = lines[0].replace(
                &format!(r#""version":{FORMAT_VERSION}"#),
                &format!(r#""version":{version}"#),
            );
            let mut hasher = blake3::Hasher::new();
            let mut old = String::new();
            for line in &lines {
                hasher.update(line.as_bytes());
                hasher.update(b"\n");
                old.push_str(line);
                old.push('\n');
            }
            old.push_str(&format!(
                r#"{{"end":true,"records":{},"blake3":"{}"}}"#,
                lines.len() - 1,
                hasher.finalize().to_hex()
            ));
            old.push('\n');
            let checked = check(std::io::Cursor::new(old.clone())).unwrap();
            let target = dir.path().join(format!("restored-{version}"));
            restore(&checked, &target).unwrap();
            std::fs::copy(dir.path().join(KEY_FILE), target.join(KEY_FILE)).unwrap();
            assert_eq!(Store::open(&target).unwrap().accounts().unwrap().len(), 1);
            let target = dir.path().join(format!("restored-from-{version}"));
            restore_from(std::io::Cursor::new(old), &target).unwrap();
            std::fs::copy(dir.path().join(KEY_FILE), target.join(KEY_FILE)).unwrap();
            assert_eq!(Store::open(&target).unwrap().accounts().unwrap().len(), 1);
        }
    }

    /// A store holding three referenced blobs (one of several chunks, one empty, one
    /// referenced twice) and a dropped one; returns them with their content.
    fn store_with_blobs() -> (tempfile::TempDir, Store, Vec<(BlobHash, Vec<u8>)>) {
        let (dir, store, _) = store_with_acme();
        let contents: Vec<Vec<u8>> = vec![
            (0..3 * CHUNK + 77).map(|i| (i % 253) as u8).collect(),
            Vec::new(),
            b"a small file".to_vec(),
        ];
        let mut blobs = Vec::new();
        for content in &contents {
            let staged = store.blobs().put_reader(&content[..], u64::MAX).unwrap();
            store
                .add_blob_ref(&staged)
                .unwrap()
                .durable_blocking()
                .unwrap();
            blobs.push((staged.hash(), content.clone()));
        }
        let again = store.blobs().pin(&blobs[2].0).unwrap();
        store
            .add_blob_ref(&again)
            .unwrap()
            .durable_blocking()
            .unwrap();
        drop(again);
        let gone = store.blobs().put_reader(&b"dropped"[..], 100).unwrap();
        store
            .add_blob_ref(&gone)
            .unwrap()
            .durable_blocking()
            .unwrap();
        let gone_hash = gone.hash();
        drop(gone);
        store
            .drop_blob_ref(&gone_hash)
            .unwrap()
            .durable_blocking()
            .unwrap();
        (dir, store, blobs)
    }

    #[test]
    fn a_backup_carries_the_referenced_blobs_and_restores_them_checked() {
        let (dir, store, blobs) = store_with_blobs();
        let mut bytes = Vec::new();
        let summary = store.backup(&mut bytes, "now").unwrap();
        assert_eq!(summary.blobs, 3);
        assert_eq!(
            summary.blob_bytes,
            blobs.iter().map(|(_, c)| c.len() as u64).sum::<u64>()
        );
        let checked = check(std::io::Cursor::new(&bytes)).unwrap();
        assert_eq!(checked.summary(), summary);
        // The blob bytes are not kept by `check`: only `restore_from` can put them back.
        let target = dir.path().join("restored");
        assert!(matches!(
            restore(&checked, &target),
            Err(RestoreError::Invalid(why)) if why.contains("3 blobs")
        ));
        assert!(!target.join("db").exists());
        let restored_summary = restore_from(std::io::Cursor::new(&bytes), &target).unwrap();
        assert_eq!(restored_summary, summary);
        assert!(!target.join("blobs.restoring").exists());
        std::fs::copy(dir.path().join(KEY_FILE), target.join(KEY_FILE)).unwrap();
        let restored = Store::open(&target).unwrap();
        for (hash, content) in &blobs {
            let mut read = Vec::new();
            restored
                .blobs()
                .open_blob(hash)
                .unwrap()
                .read_to_end(&mut read)
                .unwrap();
            assert_eq!(&read, content);
            assert_eq!(
                restored.blob_refs(hash).unwrap(),
                store.blob_refs(hash).unwrap()
            );
        }
        assert_eq!(restored.blob_refs(&blobs[2].0).unwrap(), 2);
        assert!(restored.check_blobs().unwrap().is_empty());
        let mut listed = restored.blobs().list().unwrap();
        listed.sort();
        let mut expected: Vec<BlobHash> = blobs.iter().map(|(h, _)| *h).collect();
        expected.sort();
        assert_eq!(listed, expected);
        // A restored store's blobs are as private as a written one's.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(restored.blobs().root())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn a_damaged_blob_byte_fails_the_restore_naming_the_blob_and_writes_nothing() {
        let (dir, store, blobs) = store_with_blobs();
        let mut bytes = Vec::new();
        store.backup(&mut bytes, "now").unwrap();
        let big = blobs[0].0.to_hex();
        let line = format!(r#"{{"blob":"{big}","size":{}}}"#, blobs[0].1.len());
        let at = bytes
            .windows(line.len())
            .position(|w| w == line.as_bytes())
            .expect("the blob's line")
            + line.len()
            + 1
            + CHUNK
            + 5;
        bytes[at] ^= 0x01;
        let err = check(std::io::Cursor::new(&bytes)).err().unwrap();
        assert!(
            matches!(&err, RestoreError::Invalid(why) if why.contains(&big) && why.contains("does not match")),
            "{err}"
        );
        let target = dir.path().join("restored");
        let err = restore_from(std::io::Cursor::new(&bytes), &target).unwrap_err();
        assert!(err.to_string().contains(&big), "{err}");
        for leftover in ["db", "db.restoring", "blobs", "blobs.restoring"] {
            assert!(!target.join(leftover).exists(), "{leftover} left behind");
        }
        // A backup cut inside a blob is refused too.
        let cut = &bytes[..bytes.len() - 200];
        assert!(check(std::io::Cursor::new(cut)).is_err());
    }

    #[test]
    fn a_backup_missing_a_referenced_blob_is_refused_by_name() {
        let (_dir, store, blobs) = store_with_blobs();
        let mut bytes = Vec::new();
        store.backup(&mut bytes, "now").unwrap();
        // Take the small blob's section out and seal the file again (counts, checksum):
        // intact as a file, but a store restored from it would name a missing blob.
        let small = blobs[2].0.to_hex();
        let section = format!(r#"{{"blob":"{small}","size":12}}"#) + "\na small file\n";
        let at = bytes
            .windows(section.len())
            .position(|w| w == section.as_bytes())
            .unwrap();
        bytes.drain(at..at + section.len());
        let footer_at = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .unwrap()
            + 1;
        let body = &bytes[..footer_at];
        let old: Footer = serde_json::from_slice(&bytes[footer_at..]).unwrap();
        let footer = format!(
            r#"{{"end":true,"records":{},"blobs":2,"blake3":"{}"}}"#,
            old.records,
            blake3::hash(body).to_hex()
        );
        let mut sealed = body.to_vec();
        sealed.extend_from_slice(footer.as_bytes());
        sealed.push(b'\n');
        let err = check(std::io::Cursor::new(&sealed)).err().unwrap();
        assert!(
            matches!(&err, RestoreError::Invalid(why) if why.contains(&small) && why.contains("not in the backup")),
            "{err}"
        );
    }

    #[test]
    fn a_blob_dropped_while_a_backup_copies_is_still_carried_and_deleted_after() {
        let (dir, store, blobs) = store_with_blobs();
        let (hash, content) = blobs[0].clone();
        // The backup's output drops the blob's last reference once the records are
        // copied (just before the blobs are): the blob is referenced at the backup's
        // instant, so it must still be there to copy.
        struct DropOnBlob<'s> {
            store: &'s Store,
            hash: BlobHash,
            done: bool,
            bytes: Vec<u8>,
        }
        impl Write for DropOnBlob<'_> {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if !self.done && buf.starts_with(br#"{"blob":"#) {
                    self.done = true;
                    let left = self.store.drop_blob_ref(&self.hash).unwrap();
                    assert_eq!(left.durable_blocking().unwrap(), 0);
                    assert!(
                        self.store.blobs().exists(&self.hash),
                        "deleted during the backup"
                    );
                }
                self.bytes.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut out = DropOnBlob {
            store: &store,
            hash,
            done: false,
            bytes: Vec::new(),
        };
        store.backup(&mut out, "now").unwrap();
        assert!(out.done);
        assert!(
            !store.blobs().exists(&hash),
            "deleted once the backup ended"
        );
        let target = dir.path().join("restored");
        restore_from(std::io::Cursor::new(&out.bytes), &target).unwrap();
        std::fs::copy(dir.path().join(KEY_FILE), target.join(KEY_FILE)).unwrap();
        let restored = Store::open(&target).unwrap();
        let mut read = Vec::new();
        restored
            .blobs()
            .open_blob(&hash)
            .unwrap()
            .read_to_end(&mut read)
            .unwrap();
        assert_eq!(read, content);
    }
}
