//! The index snapshot: `<data>/index.snapshot`, the token index, the download-key index
//! and the activation index, written at a clean stop so that the next start reads one
//! flat file instead of scanning every token, key and activation in sled (at a million
//! tokens, about 0.4 s instead of 2–3 s).
//!
//! A snapshot is trusted only if it describes exactly the store it sits next to. Every
//! change to the store writes a fresh *stamp* into `meta` in the same transaction (a
//! random per-open epoch and a counter; see `key::MetaKey::Stamp`), and the
//! snapshot records the stamp it was taken at. At open, a snapshot whose stamp differs
//! from the store's is ignored and the index is rebuilt from sled: after a crash, after
//! any write by any process since, after a restore, after someone copied an older `db/`
//! back. Equal stamps mean the same sequence of writes, hence the same records.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! magic     16 bytes  "upkeep-index\0\0\0\x06" (the last byte is the format version;
//!                     2 added the grace-alias flag and the plan license's expiry, 3 the
//!                     key index, 4 the activation index, 5 its entries in the shards
//!                     `activation_index::id_shard` picks: an upkeep before it looked for
//!                     them all in the first, so it must scan instead), 6 the
//!                     activation index's identity hashes in SipHash-2-4, not blake3)
//! schema     4 bytes  the store's schema version when written
//! stamp     16 bytes  the store's stamp when written
//! next_id    8 bytes  the next token / license id
//! image      …        TokenIndex::write_image
//! keys       …        KeyIndex::write_image (64 shards: count, then 16-byte entries)
//! activations …       ActivationIndex::write_image (64 shards: count, then entries)
//! checksum  32 bytes  blake3 of everything above
//! ```
//!
//! A file that is short, long, of another version, or whose checksum differs is ignored
//! the same way. It is written to `index.snapshot.tmp`, fsynced and renamed, so a crash
//! while saving leaves the previous file or none, never half of one.

use super::TokenIndex;
use super::activation_index::ActivationIndex;
use super::key_index::KeyIndex;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

pub const FILE: &str = "index.snapshot";
const MAGIC: &[u8; 16] = b"upkeep-index\0\0\0\x06";
const CHECKSUM_LEN: u64 = 32;

/// A store's stamp: which write it last took (see the module doc).
pub type Stamp = [u8; 16];

/// Why a snapshot was not used (logged; the index is then rebuilt from sled).
#[derive(Debug)]
pub enum Unusable {
    /// Taken before the store's last change (the normal case after a crash).
    Stale,
    /// Taken for another schema version (the store was migrated since).
    OtherSchema(u32),
    /// Intact, but written by another upkeep version in another snapshot format (an
    /// upgrade's first start): nothing is wrong, this version just cannot read it.
    OtherFormat(u8),
    /// Unreadable, truncated, or not matching its checksum.
    Damaged(String),
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Stale => f.write_str(
                "it is older than the store's last change: the last run did not stop cleanly, or the store changed since",
            ),
            Unusable::OtherSchema(found) => write!(f, "it was written for schema version {found}"),
            Unusable::OtherFormat(found) => write!(
                f,
                "it is an index snapshot of format {found}, not {} (another upkeep version wrote it)",
                MAGIC[15]
            ),
            Unusable::Damaged(why) => write!(f, "it is damaged: {why}"),
        }
    }
}

/// Feeds everything that passes through into a blake3 hasher.
struct Hashing<T> {
    inner: T,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The indexes a snapshot holds.
pub(super) struct Indexes {
    pub tokens: TokenIndex,
    pub keys: KeyIndex,
    pub activations: ActivationIndex,
}

/// Writes the snapshot of `tokens`, `keys` and `activations` at `stamp` into `dir`,
/// atomically and durably.
///
/// # Errors
/// The file could not be written; any previous snapshot is left as it was.
pub(super) fn save(
    dir: &Path,
    schema: u32,
    stamp: &Stamp,
    next_id: u64,
    tokens: &TokenIndex,
    keys: &KeyIndex,
    activations: &ActivationIndex,
) -> io::Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let written = write_to(&tmp, schema, stamp, next_id, tokens, keys, activations)
        .and_then(|()| std::fs::rename(&tmp, dir.join(FILE)))
        .and_then(|()| File::open(dir)?.sync_all());
    if written.is_err() {
        // A failed save leaves the previous snapshot (or none), and no half-written file.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Writes and fsyncs the snapshot file `path`.
fn write_to(
    path: &Path,
    schema: u32,
    stamp: &Stamp,
    next_id: u64,
    tokens: &TokenIndex,
    keys: &KeyIndex,
    activations: &ActivationIndex,
) -> io::Result<()> {
    let file = super::create_temporary_file(path)?;
    let mut out = BufWriter::with_capacity(
        1 << 16,
        Hashing {
            inner: file,
            hasher: blake3::Hasher::new(),
        },
    );
    out.write_all(MAGIC)?;
    out.write_all(&schema.to_le_bytes())?;
    out.write_all(stamp)?;
    out.write_all(&next_id.to_le_bytes())?;
    tokens.write_image(&mut out)?;
    keys.write_image(&mut out)?;
    activations.write_image(&mut out)?;
    let Hashing { mut inner, hasher } = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    inner.write_all(hasher.finalize().as_bytes())?;
    inner.sync_all()
}

/// Reads the snapshot in `dir` if it was taken at `stamp` with schema `schema`:
/// `Ok(None)` when there is none, `Err` when there is one that must not be used. The
/// activation index's identity hashes are keyed by `secret` (`ActivationIndex::secret_for`).
///
/// The whole file's checksum is verified before any of it is parsed (one extra read,
/// about 20 ms at a million tokens), so a damaged count can never make the parser
/// reserve memory; the parser bounds every count by the file's length as well.
///
/// # Errors
/// [`Unusable`]: stale or damaged.
pub(super) fn load(
    dir: &Path,
    schema: u32,
    stamp: &Stamp,
    secret: [u8; 32],
) -> Result<Option<(Indexes, u64)>, Unusable> {
    let found = read(dir, schema, stamp, Some(secret))?;
    Ok(found.map(|(indexes, next_id)| {
        let indexes = indexes.unwrap_or_else(|| Indexes {
            tokens: TokenIndex::default(),
            keys: KeyIndex::default(),
            activations: ActivationIndex::new(secret),
        });
        (indexes, next_id)
    }))
}

/// Whether the snapshot in `dir` would be used at `stamp`, without building the index
/// (for `upkeep doctor`): `Ok(None)` when there is none.
///
/// # Errors
/// [`Unusable`]: stale or damaged.
pub fn check(dir: &Path, schema: u32, stamp: &Stamp) -> Result<Option<()>, Unusable> {
    Ok(read(dir, schema, stamp, None)?.map(|_| ()))
}

/// [`load`], building the indexes only when given the activation index's `build` key.
fn read(
    dir: &Path,
    schema: u32,
    stamp: &Stamp,
    build: Option<[u8; 32]>,
) -> Result<Option<(Option<Indexes>, u64)>, Unusable> {
    let damaged = |err: io::Error| Unusable::Damaged(err.to_string());
    let mut file = match File::open(dir.join(FILE)) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(damaged(err)),
    };
    let len = file.metadata().map_err(damaged)?.len();
    let body_len = len
        .checked_sub(CHECKSUM_LEN)
        .ok_or_else(|| Unusable::Damaged(format!("{len} bytes is too short")))?;

    // Pass 1: the checksum over the body.
    let mut hasher = blake3::Hasher::new();
    let copied = io::copy(&mut (&mut file).take(body_len), &mut hasher).map_err(damaged)?;
    let mut stored = [0u8; CHECKSUM_LEN as usize];
    file.read_exact(&mut stored).map_err(damaged)?;
    if copied != body_len || blake3::Hash::from_bytes(stored) != hasher.finalize() {
        return Err(Unusable::Damaged("checksum mismatch".into()));
    }

    // Pass 2: parse what the checksum vouches for.
    file.seek(io::SeekFrom::Start(0)).map_err(damaged)?;
    let mut input = BufReader::with_capacity(1 << 16, (&mut file).take(body_len));
    let mut header = [0u8; HEADER_LEN];
    input.read_exact(&mut header).map_err(damaged)?;
    if header[..15] == MAGIC[..15] && header[15] != MAGIC[15] {
        // Written by another version of upkeep (an upgrade's first start): no damage,
        // but nothing this version can read.
        return Err(Unusable::OtherFormat(header[15]));
    }
    if &header[..16] != MAGIC {
        return Err(Unusable::Damaged(
            "not an upkeep index snapshot of this version".into(),
        ));
    }
    let found_schema = u32::from_le_bytes([header[16], header[17], header[18], header[19]]);
    if found_schema != schema {
        return Err(Unusable::OtherSchema(found_schema));
    }
    if header[20..36] != stamp[..] {
        return Err(Unusable::Stale);
    }
    let mut next_id = [0u8; 8];
    next_id.copy_from_slice(&header[36..44]);
    let next_id = u64::from_le_bytes(next_id);
    let Some(secret) = build else {
        return Ok(Some((None, next_id)));
    };
    let tokens =
        TokenIndex::read_image(&mut input, body_len - HEADER_LEN as u64).map_err(damaged)?;
    let left = input.get_ref().limit() + input.buffer().len() as u64;
    let keys = KeyIndex::read_image(&mut input, left).map_err(damaged)?;
    let left = input.get_ref().limit() + input.buffer().len() as u64;
    let activations = ActivationIndex::read_image(&mut input, left, secret).map_err(damaged)?;
    let mut rest = [0u8; 1];
    if input.read(&mut rest).map_err(damaged)? != 0 {
        return Err(Unusable::Damaged("bytes after the index".into()));
    }
    Ok(Some((
        Some(Indexes {
            tokens,
            keys,
            activations,
        }),
        next_id,
    )))
}

/// Magic, schema, stamp, next id.
const HEADER_LEN: usize = 16 + 4 + 16 + 8;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccountPrefix, Principal, Scope, Scopes, Timestamp, TokenHash, TokenId};
    use crate::store::AuthRecord;

    fn index() -> TokenIndex {
        let index = TokenIndex::default();
        let prefix = AccountPrefix::parse("acme").unwrap();
        index.set_account(prefix, Some(2), None);
        for i in 0..100u64 {
            let record = AuthRecord {
                token_id: TokenId(i),
                principal: Principal::Account(prefix),
                scopes: Scopes::only(Scope::Api),
                expires_at: None,
                grace: false,
            };
            index.insert(TokenHash::of(&i.to_string()), record, None);
        }
        index
    }

    fn keys() -> KeyIndex {
        let keys = KeyIndex::default();
        for i in 0..100u64 {
            let hash = *blake3::hash(&i.to_le_bytes()).as_bytes();
            keys.insert(&hash, crate::model::DownloadKeyId(i + 2));
        }
        keys
    }

    const SECRET: [u8; 32] = [9; 32];

    fn activations() -> ActivationIndex {
        super::super::activation_index::tests::sample(SECRET)
    }

    #[test]
    fn saved_snapshots_load_only_at_their_stamp_and_intact() {
        let dir = tempfile::tempdir().unwrap();
        let stamp = [7u8; 16];
        assert!(matches!(load(dir.path(), 3, &stamp, SECRET), Ok(None)));
        save(dir.path(), 3, &stamp, 42, &index(), &keys(), &activations()).unwrap();
        let (loaded, next_id) = load(dir.path(), 3, &stamp, SECRET).unwrap().unwrap();
        assert_eq!((loaded.tokens.len(), next_id), (100, 42));
        assert_eq!(loaded.keys.entries(), keys().entries());
        assert_eq!(loaded.activations.entries(), activations().entries());
        assert_eq!(
            loaded.tokens.plan_limit(
                &AccountPrefix::parse("acme").unwrap(),
                Timestamp::from_secs(1)
            ),
            Some(Some(2))
        );

        let other = [8u8; 16];
        assert!(matches!(
            load(dir.path(), 3, &other, SECRET),
            Err(Unusable::Stale)
        ));
        assert!(matches!(
            load(dir.path(), 4, &stamp, SECRET),
            Err(Unusable::OtherSchema(3))
        ));

        let path = dir.path().join(FILE);
        let good = std::fs::read(&path).unwrap();
        // One flipped bit anywhere after the header, a cut, or an extra byte: refused.
        for change in 0..4 {
            let mut bytes = good.clone();
            match change {
                0 => bytes[60] ^= 1,
                1 => *bytes.last_mut().unwrap() ^= 1,
                2 => bytes.truncate(good.len() - 1),
                _ => bytes.insert(good.len() - 32, 0),
            }
            std::fs::write(&path, &bytes).unwrap();
            assert!(
                matches!(
                    load(dir.path(), 3, &stamp, SECRET),
                    Err(Unusable::Damaged(_))
                ),
                "change {change}"
            );
        }
        // An intact file of another format (an upgrade's first start: the identity hashes
        // of format 5 were blake3's, so reading it would find no site): refused by name.
        for version in [MAGIC[15] - 1, MAGIC[15] + 1] {
            let mut bytes = good.clone();
            bytes[15] = version;
            let body = bytes.len() - CHECKSUM_LEN as usize;
            let sum = blake3::hash(&bytes[..body]);
            bytes[body..].copy_from_slice(sum.as_bytes());
            std::fs::write(&path, &bytes).unwrap();
            match load(dir.path(), 3, &stamp, SECRET) {
                Err(why @ Unusable::OtherFormat(found)) => {
                    assert_eq!(found, version);
                    let why = why.to_string();
                    assert!(why.contains(&format!("format {version}, not")), "{why}");
                }
                other => panic!("format {version}: {:?}", other.map(|f| f.map(|(_, n)| n))),
            }
        }
        assert!(!dir.path().join(format!("{FILE}.tmp")).exists());

        // A save that cannot complete (here: the rename, onto a non-empty directory)
        // fails and leaves no temporary file behind.
        let blocked = tempfile::tempdir().unwrap();
        std::fs::create_dir(blocked.path().join(FILE)).unwrap();
        std::fs::write(blocked.path().join(FILE).join("x"), b"x").unwrap();
        assert!(
            save(
                blocked.path(),
                3,
                &stamp,
                42,
                &index(),
                &keys(),
                &activations()
            )
            .is_err()
        );
        assert!(!blocked.path().join(format!("{FILE}.tmp")).exists());
    }
}
