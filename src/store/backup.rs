//! Backups: a consistent snapshot of every tree as JSON Lines, and the restore that
//! rebuilds a data directory from one.
//!
//! ```text
//! {"format":"upkeep-backup","version":1,"schema_version":3,"created_at":"…","trees":{…}}
//! {"tree":"prefix_account","key":"61636d65","value":"0204…"}
//! …
//! {"end":true,"records":1234,"blake3":"<hex of every line above, newlines included>"}
//! ```
//!
//! Values are the stored bytes (format-version byte included), so a restore is exact and
//! an older backup is migrated when the restored store first opens. The header's `trees`
//! describes each tree's key and value layout. `server.key` is never part of a backup:
//! the database alone must not reveal a token (restore takes it separately).
//!
//! Consistency: every tree is copied under the store's write lock (an in-memory copy of
//! reference-counted values, quick), then written out with the lock released, so writers
//! wait only for the copy and the backup is one point in time.

use super::schema::{self, SCHEMA_VERSION};
use super::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

pub const FORMAT: &str = "upkeep-backup";
pub const FORMAT_VERSION: u32 = 1;

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
    value: String,
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

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
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
    [
        (
            schema::META,
            "key = b\"schema_version\", value = u32 BE; key = b\"next_id\", value = u64 BE; \
             key = b\"stamp\", value = 16 bytes (which write the store last took)",
        ),
        (
            schema::PREFIX_ACCOUNT,
            "key = account prefix, value = [version] ++ bincode(Account)",
        ),
        (
            schema::TOKENHASH_TOKEN,
            "key = blake3(token), value = [version] ++ bincode(Token)",
        ),
        (
            schema::OWNERNAME_TOKENHASH,
            "key = owner (len ++ prefix, or 0 for operators) ++ name, value = blake3(token)",
        ),
        (
            schema::LICENSEID_LICENSE,
            "key = license id u64 BE, value = [version] ++ bincode(PlanLicense)",
        ),
        (
            schema::LICENSEHASH_LICENSEID,
            "key = blake3(license key), value = license id u64 BE",
        ),
        (
            schema::TOKENHASH_GRACE,
            "key = blake3(previous secret), value = [version] ++ bincode(GraceAlias)",
        ),
        (
            schema::TOKENHASH_GRACEHASH,
            "key = blake3(token) ++ blake3(previous secret), value = empty (aliases by token)",
        ),
    ]
    .into_iter()
    .map(|(tree, doc)| (tree.to_owned(), doc.to_owned()))
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

impl Store {
    /// Writes a consistent snapshot of the whole store to `out`.
    ///
    /// # Errors
    /// Reading the store or writing `out` failed.
    pub fn backup(&self, out: &mut impl Write, created_at: &str) -> Result<Summary, StoreError> {
        // Token last-use times live in memory between batches: save them first, so the
        // backup carries them (best-effort, like the batches themselves).
        if let Err(err) = self.persist_uses() {
            tracing::warn!(error = %err, "backup: token last-use times not saved first");
        }
        let snapshot: Vec<(&'static str, Vec<(sled::IVec, sled::IVec)>)> = {
            let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
            schema::TREES
                .iter()
                .zip(&self.trees)
                .map(|(name, tree)| Ok((*name, tree.iter().collect::<Result<Vec<_>, _>>()?)))
                .collect::<Result<_, sled::Error>>()?
        };
        let io = |err: std::io::Error| StoreError::Io(sled::Error::Io(err));
        let mut hasher = blake3::Hasher::new();
        let header = Header {
            format: FORMAT.to_owned(),
            version: FORMAT_VERSION,
            schema_version: SCHEMA_VERSION,
            created_at: created_at.to_owned(),
            trees: tree_docs(),
        };
        emit(out, &mut hasher, &header).map_err(io)?;
        let mut records = 0;
        for (tree, entries) in &snapshot {
            for (key, value) in entries {
                let line = Line {
                    tree: (*tree).to_owned(),
                    key: hex(key),
                    value: hex(value),
                };
                emit(out, &mut hasher, &line).map_err(io)?;
                records += 1;
            }
        }
        let footer = Footer {
            end: true,
            records,
            blake3: hasher.finalize().to_hex().to_string(),
        };
        let mut bytes = serde_json::to_vec(&footer).map_err(|e| io(std::io::Error::other(e)))?;
        bytes.push(b'\n');
        out.write_all(&bytes).map_err(io)?;
        out.flush().map_err(io)?;
        Ok(Summary {
            records,
            schema_version: SCHEMA_VERSION,
        })
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
    records: Vec<(usize, Vec<u8>, Vec<u8>)>,
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
    if header.format != FORMAT || header.version != FORMAT_VERSION {
        return Err(invalid(format!(
            "format {} version {} (expected {FORMAT} {FORMAT_VERSION})",
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
        let tree = schema::TREES
            .iter()
            .position(|name| *name == line.tree)
            .ok_or_else(|| invalid(format!("line {n}: unknown tree `{}`", line.tree)))?;
        let key = unhex(&line.key).ok_or_else(|| invalid(format!("line {n}: key is not hex")))?;
        let value =
            unhex(&line.value).ok_or_else(|| invalid(format!("line {n}: value is not hex")))?;
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
        let trees = schema::TREES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<Result<Vec<_>, _>>()
            .map_err(store_err)?;
        let mut batches: Vec<sled::Batch> = trees.iter().map(|_| sled::Batch::default()).collect();
        for (tree, key, value) in &backup.records {
            batches[*tree].insert(key.as_slice(), value.as_slice());
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
