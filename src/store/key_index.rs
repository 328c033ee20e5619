//! The in-memory download-key index: a key's keyed lookup hash → its id, in front of the
//! `keylookup_keyid` tree, so that finding a key's record (SPEC §9) costs one sled read
//! instead of two, and an unknown key none; with the activation index
//! (`activation_index`: by key id, the key's facts and activations) an update check or
//! `validate` reads no record at all.
//!
//! Memory is what a million keys cost, so an entry is small: the map's key is the lookup
//! hash's first 8 bytes (already uniform: a keyed blake3), its value the key id, 16 bytes
//! in all; the shard is chosen by byte 8. About 36 MB at a million keys
//! (`benches/README.md`). Two hashes equal in those 9 bytes would share an entry: it is
//! then marked [`AMBIGUOUS`], and a lookup falling on it reads the tree as before the
//! index (at a million keys the chance that any two keys share 9 bytes is about 10^-10).
//!
//! Invariants:
//! - every change comes from the store, under its write lock, after the transaction that
//!   makes it committed (`IndexOp::KeyAdd` / `KeyRemove`); the index is loaded at open
//!   from the tree or from the index snapshot (`snapshot.rs`), never guessed;
//! - no entry for a hash's 9 bytes: no stored key has that hash; an entry with an id:
//!   the only stored key whose hash has those 9 bytes is (or, for a moment after a commit,
//!   was) that one; [`AMBIGUOUS`]: ask the tree. So an id is a candidate, never an
//!   answer: the caller reads the record and compares its full lookup hash, which also
//!   covers the moment between a commit and the index change that follows it (a deleted
//!   key's record is gone, a changed key's record holds its new hash).

use crate::model::DownloadKeyId;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Read, Write};
use std::sync::RwLock;

/// The value of an entry shared by two or more keys: look the hash up in the tree.
pub(super) const AMBIGUOUS: u64 = u64::MAX;

const N_SHARDS: usize = 64;

/// Bytes of one entry in the image: the 8-byte hash prefix and the id.
const ENTRY_LEN: usize = 16;

/// The map's keys are already uniform (a blake3 prefix): use them as their own hash.
#[derive(Default)]
struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than a `u64` is hashed; stay correct.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard = HashMap<u64, u64, BuildHasherDefault<PrehashedHasher>>;

/// What the index knows of a lookup hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Candidate {
    /// No stored key has this hash.
    Absent,
    /// The only key that may have it: read its record and compare the hash.
    Key(DownloadKeyId),
    /// Shared with another key's hash: read the tree.
    Ambiguous,
}

/// Lookup hash → key id for every stored download key (see the module doc).
pub(super) struct KeyIndex {
    shards: Box<[RwLock<Shard>]>,
}

impl std::fmt::Debug for KeyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyIndex")
            .field("entries", &self.len())
            .finish()
    }
}

impl Default for KeyIndex {
    fn default() -> Self {
        KeyIndex::with_capacity(0)
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// The map key and shard of `lookup`.
fn place(lookup: &[u8; 32]) -> (u64, usize) {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&lookup[..8]);
    (
        u64::from_le_bytes(prefix),
        usize::from(lookup[8]) % N_SHARDS,
    )
}

impl KeyIndex {
    /// An empty index with room for `keys` entries without rehashing.
    pub(super) fn with_capacity(keys: usize) -> Self {
        let per_shard = keys.div_ceil(N_SHARDS);
        KeyIndex {
            shards: (0..N_SHARDS)
                .map(|_| {
                    RwLock::new(Shard::with_capacity_and_hasher(
                        per_shard,
                        BuildHasherDefault::default(),
                    ))
                })
                .collect(),
        }
    }

    /// The key that may have `lookup`.
    pub(super) fn get(&self, lookup: &[u8; 32]) -> Candidate {
        let (prefix, shard) = place(lookup);
        match read(&self.shards[shard]).get(&prefix) {
            None => Candidate::Absent,
            Some(&AMBIGUOUS) => Candidate::Ambiguous,
            Some(&id) => Candidate::Key(DownloadKeyId(id)),
        }
    }

    /// Notes that key `id` now has `lookup` (committed).
    pub(super) fn insert(&self, lookup: &[u8; 32], id: DownloadKeyId) {
        let (prefix, shard) = place(lookup);
        let mut shard = write(&self.shards[shard]);
        shard
            .entry(prefix)
            .and_modify(|held| {
                if *held != id.0 {
                    *held = AMBIGUOUS;
                }
            })
            .or_insert(id.0);
    }

    /// Notes that key `id` no longer has `lookup` (committed). An ambiguous entry stays
    /// ambiguous (the other key sharing it may still be there; the tree knows).
    pub(super) fn remove(&self, lookup: &[u8; 32], id: DownloadKeyId) {
        let (prefix, shard) = place(lookup);
        let mut shard = write(&self.shards[shard]);
        if shard.get(&prefix) == Some(&id.0) && id.0 != AMBIGUOUS {
            shard.remove(&prefix);
        }
    }

    /// Number of entries (an ambiguous one counts once).
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|s| read(s).len()).sum()
    }

    /// Writes the whole index to `out` in the format [`KeyIndex::read_image`] reads: per
    /// shard, its entry count (u64 LE), then each entry's hash prefix and id (u64 LE
    /// each). The caller keeps writers out meanwhile.
    ///
    /// # Errors
    /// Writing to `out` failed.
    pub(super) fn write_image(&self, out: &mut impl Write) -> io::Result<()> {
        for shard in &self.shards {
            let shard = read(shard);
            out.write_all(&(shard.len() as u64).to_le_bytes())?;
            for (prefix, id) in shard.iter() {
                let mut entry = [0u8; ENTRY_LEN];
                entry[..8].copy_from_slice(&prefix.to_le_bytes());
                entry[8..].copy_from_slice(&id.to_le_bytes());
                out.write_all(&entry)?;
            }
        }
        Ok(())
    }

    /// Reads an index written by [`KeyIndex::write_image`] from `input`, which holds at
    /// most `len` bytes. A count the length cannot hold, or an entry listed twice, is an
    /// `InvalidData` error; no count makes it reserve more than `len` allows.
    ///
    /// # Errors
    /// `input` failed, ended early, or holds a value that cannot be right.
    pub(super) fn read_image(input: &mut impl Read, len: u64) -> io::Result<KeyIndex> {
        let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
        let mut shards = Vec::with_capacity(N_SHARDS);
        let mut budget = len;
        let mut count = [0u8; 8];
        let mut entry = [0u8; ENTRY_LEN];
        for _ in 0..N_SHARDS {
            input.read_exact(&mut count)?;
            budget = budget
                .checked_sub(8)
                .ok_or_else(|| invalid("key index length"))?;
            let n = u64::from_le_bytes(count);
            if n > budget / ENTRY_LEN as u64 {
                return Err(invalid("key index entry count"));
            }
            budget -= n * ENTRY_LEN as u64;
            let mut shard = Shard::with_capacity_and_hasher(n as usize, Default::default());
            for _ in 0..n {
                input.read_exact(&mut entry)?;
                let prefix = u64::from_le_bytes(entry[..8].try_into().unwrap_or_default());
                let id = u64::from_le_bytes(entry[8..].try_into().unwrap_or_default());
                if shard.insert(prefix, id).is_some() {
                    return Err(invalid("key index entry listed twice"));
                }
            }
            shards.push(RwLock::new(shard));
        }
        Ok(KeyIndex {
            shards: shards.into_boxed_slice(),
        })
    }

    /// Every entry as (shard, hash prefix, id), sorted (tests compare indexes).
    #[cfg(test)]
    pub(super) fn entries(&self) -> Vec<(usize, u64, u64)> {
        let mut all: Vec<_> = self
            .shards
            .iter()
            .enumerate()
            .flat_map(|(i, shard)| {
                read(shard)
                    .iter()
                    .map(|(prefix, id)| (i, *prefix, *id))
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_unstable();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(first: u8, ninth: u8, last: u8) -> [u8; 32] {
        let mut hash = [0u8; 32];
        hash[0] = first;
        hash[8] = ninth;
        hash[31] = last;
        hash
    }

    #[test]
    fn entries_name_the_only_candidate_and_shared_ones_send_to_the_tree() {
        let index = KeyIndex::default();
        let (a, b) = (hash(1, 0, 0), hash(2, 0, 0));
        assert_eq!(index.get(&a), Candidate::Absent);
        index.insert(&a, DownloadKeyId(10));
        index.insert(&b, DownloadKeyId(11));
        assert_eq!(index.get(&a), Candidate::Key(DownloadKeyId(10)));
        assert_eq!(index.get(&b), Candidate::Key(DownloadKeyId(11)));
        // Re-inserting the same key changes nothing.
        index.insert(&a, DownloadKeyId(10));
        assert_eq!(index.get(&a), Candidate::Key(DownloadKeyId(10)));
        // Another key whose hash shares the first 9 bytes with a's: ambiguous, for both
        // and for any hash with those bytes, and it stays so when either goes.
        let twin = hash(1, 0, 9);
        index.insert(&twin, DownloadKeyId(12));
        assert_eq!(index.get(&a), Candidate::Ambiguous);
        assert_eq!(index.get(&hash(1, 0, 5)), Candidate::Ambiguous);
        index.remove(&twin, DownloadKeyId(12));
        assert_eq!(index.get(&a), Candidate::Ambiguous);
        // Same first 8 bytes, another shard: not shared.
        assert_eq!(index.get(&hash(1, 1, 0)), Candidate::Absent);
        // Removing names the key: another key's entry is left alone.
        index.remove(&b, DownloadKeyId(99));
        assert_eq!(index.get(&b), Candidate::Key(DownloadKeyId(11)));
        index.remove(&b, DownloadKeyId(11));
        assert_eq!(index.get(&b), Candidate::Absent);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn images_round_trip_and_bad_ones_are_refused() {
        let index = KeyIndex::default();
        for i in 0..500u64 {
            let hash = *blake3::hash(&i.to_le_bytes()).as_bytes();
            index.insert(&hash, DownloadKeyId(i + 2));
        }
        index.insert(&hash(7, 7, 7), DownloadKeyId(3));
        index.insert(&hash(7, 7, 8), DownloadKeyId(4));
        let mut image = Vec::new();
        index.write_image(&mut image).unwrap();
        assert_eq!(image.len(), N_SHARDS * 8 + 501 * ENTRY_LEN);
        let read = KeyIndex::read_image(&mut image.as_slice(), image.len() as u64).unwrap();
        assert_eq!(read.entries(), index.entries());
        assert_eq!(read.get(&hash(7, 7, 9)), Candidate::Ambiguous);

        // Cut short, or a count larger than the bytes: refused, nothing reserved for it.
        let short = &image[..image.len() - 1];
        assert!(KeyIndex::read_image(&mut &short[..], short.len() as u64).is_err());
        let mut huge = image.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        let err = KeyIndex::read_image(&mut huge.as_slice(), huge.len() as u64).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // An entry listed twice.
        let mut twice = Vec::new();
        twice.extend_from_slice(&2u64.to_le_bytes());
        twice.extend_from_slice(&[1; ENTRY_LEN]);
        twice.extend_from_slice(&[1; ENTRY_LEN]);
        for _ in 1..N_SHARDS {
            twice.extend_from_slice(&0u64.to_le_bytes());
        }
        let err = KeyIndex::read_image(&mut twice.as_slice(), twice.len() as u64).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    /// Through the store: after every kind of change, the index is exactly the one a
    /// scan of `keylookup_keyid` builds, and every stored key is found by its hash.
    mod in_the_store {
        use super::super::super::backup;
        use super::super::super::licensing::tests::{
            activate, customer, key, product, put_customer, put_key,
        };
        use super::super::super::schema::KEY_LOOKUPS;
        use super::super::super::test_support::*;
        use super::super::super::{KEY_FILE, Store};
        use super::*;
        use crate::model::{AccountPrefix, DownloadKey, ProductScope};

        /// The index agrees with the tree: the same entries as one built from a scan, and
        /// every key in the tree is found through it. Returns how many keys there are.
        fn agrees(store: &Store) -> usize {
            let scanned = KeyIndex::default();
            let mut stored = Vec::new();
            for entry in store.scan(&KEY_LOOKUPS, &[]) {
                let (lookup, id) = entry.unwrap();
                scanned.insert(&lookup.0, id);
                stored.push((lookup.0, id));
            }
            assert_eq!(store.keys.entries(), scanned.entries());
            for (lookup, id) in &stored {
                assert_eq!(store.keys.get(lookup), Candidate::Key(*id));
            }
            stored.len()
        }

        fn found(store: &Store, account: &AccountPrefix, lookup: u8) -> Option<DownloadKey> {
            store
                .download_key_by_lookup(account, &[lookup; 32])
                .unwrap()
        }

        #[test]
        fn the_key_index_follows_every_change_to_the_keys() {
            let (dir, store, acme) = store_with_acme();
            let a = &acme.prefix;
            let put = |key: DownloadKey| put_key(&store, a, key);
            let ann = put_customer(&store, a, "ann@example.com");
            let bob = put_customer(&store, a, "bob@example.com");
            let p = product(&store, a, "hello");
            let q = product(&store, a, "world");
            let k1 = put(key(ann.id, 1, ProductScope::Only(vec![p])));
            let k2 = put(key(ann.id, 2, ProductScope::All));
            let k3 = put(key(bob.id, 3, ProductScope::Only(vec![q])));
            activate(&store, &k1, "example.com", true);
            assert_eq!(agrees(&store), 3);
            assert_eq!(found(&store, a, 1).unwrap().id, k1.id);

            // A refused write changes nothing (a duplicate value).
            assert!(
                store
                    .put_download_key(a, None, |_| Ok(key(bob.id, 2, ProductScope::All)))
                    .is_err()
            );
            assert_eq!(agrees(&store), 3);

            // A change that keeps the value, then one that changes it.
            let change = |id, lookup: u8| {
                store
                    .put_download_key(a, Some(id), |current| {
                        let mut k = current.unwrap();
                        k.notes = Some("changed".into());
                        k.lookup = [lookup; 32];
                        Ok(k)
                    })
                    .unwrap()
                    .durable_blocking()
                    .unwrap()
            };
            change(k1.id, 1);
            assert_eq!(agrees(&store), 3);
            change(k1.id, 11);
            assert_eq!(agrees(&store), 3);
            assert!(found(&store, a, 1).is_none(), "the old value is gone");
            assert_eq!(found(&store, a, 11).unwrap().id, k1.id);

            // A hash sharing the index's 9 bytes with a key's, but not stored: the
            // candidate's record does not match, so it is not found.
            let mut near = [11u8; 32];
            near[31] = 0;
            assert_eq!(store.keys.get(&near), Candidate::Key(k1.id));
            assert!(store.download_key_by_lookup(a, &near).unwrap().is_none());

            // Deleting a key; a product (keys keep their values); a customer with keys.
            store
                .delete_download_key(a, k2.id)
                .unwrap()
                .durable_blocking()
                .unwrap();
            assert_eq!(agrees(&store), 2);
            assert!(found(&store, a, 2).is_none());
            store
                .delete_product(a, p)
                .unwrap()
                .durable_blocking()
                .unwrap();
            assert_eq!(agrees(&store), 2);
            assert_eq!(found(&store, a, 11).unwrap().id, k1.id);
            store
                .delete_customer(a, bob.id)
                .unwrap()
                .durable_blocking()
                .unwrap();
            assert_eq!(agrees(&store), 1);
            assert!(found(&store, a, 3).is_none());
            // The same value issued again, as a new key: found, as the new record.
            let k3b = put(key(ann.id, 3, ProductScope::All));
            assert_ne!(k3b.id, k3.id);
            assert_eq!(agrees(&store), 2);
            assert_eq!(found(&store, a, 3).unwrap().id, k3b.id);

            // Another account's key, then a backup restored elsewhere.
            let (globex, _) = store
                .create_account(new_account(Some("globex")), now())
                .unwrap()
                .durable_blocking()
                .unwrap();
            let g = &globex.prefix;
            let carol = store
                .put_customer(g, None, |_| Ok(customer("carol@example.com")))
                .unwrap()
                .durable_blocking()
                .unwrap();
            store
                .put_download_key(g, None, |_| Ok(key(carol.id, 4, ProductScope::All)))
                .unwrap()
                .durable_blocking()
                .unwrap();
            assert_eq!(agrees(&store), 3);
            assert!(found(&store, a, 4).is_none(), "another account's key");
            assert!(found(&store, g, 4).is_some());
            let mut image = Vec::new();
            store.backup(&mut image, "now").unwrap();
            let restored_dir = tempfile::tempdir().unwrap();
            let target = restored_dir.path().join("restored");
            let checked = backup::check(std::io::Cursor::new(image)).unwrap();
            backup::restore(&checked, &target).unwrap();
            std::fs::copy(dir.path().join(KEY_FILE), target.join(KEY_FILE)).unwrap();
            let restored = Store::open(&target).unwrap();
            assert_eq!(agrees(&restored), 3);
            assert_eq!(restored.keys.entries(), store.keys.entries());
            assert_eq!(found(&restored, a, 11).unwrap().id, k1.id);
            drop(restored);

            // Deleting an account takes its keys out of the index.
            store.delete_account(a).unwrap().durable_blocking().unwrap();
            assert_eq!(agrees(&store), 1);
            assert!(found(&store, a, 11).is_none());
            assert!(found(&store, a, 3).is_none());
            let before = store.keys.entries();

            // Reopened: rebuilt from the tree, then read from the snapshot.
            drop(store);
            let store = Store::open(dir.path()).unwrap();
            assert!(store.snapshot_stamp.lock().unwrap().is_none(), "scanned");
            assert_eq!(agrees(&store), 1);
            assert_eq!(store.keys.entries(), before);
            assert!(store.save_index_snapshot().unwrap());
            drop(store);
            let store = Store::open(dir.path()).unwrap();
            assert!(
                store.snapshot_stamp.lock().unwrap().is_some(),
                "from the snapshot"
            );
            assert_eq!(agrees(&store), 1);
            assert_eq!(store.keys.entries(), before);
            assert!(found(&store, g, 4).is_some());
        }

        #[test]
        fn a_shared_entry_sends_the_lookup_to_the_tree() {
            let (_dir, store, acme) = store_with_acme();
            let a = &acme.prefix;
            let ann = put_customer(&store, a, "ann@example.com");
            let k = put_key(&store, a, key(ann.id, 5, ProductScope::All));
            // What a second key whose hash shares the 9 bytes would leave.
            let mut twin = [5u8; 32];
            twin[31] = 6;
            store.keys.insert(&twin, DownloadKeyId(k.id.0 + 1));
            assert_eq!(store.keys.get(&[5; 32]), Candidate::Ambiguous);
            assert_eq!(found(&store, a, 5).unwrap().id, k.id);
            assert!(store.download_key_by_lookup(a, &twin).unwrap().is_none());
            // Deleting the key leaves the entry shared: still answered by the tree.
            store
                .delete_download_key(a, k.id)
                .unwrap()
                .durable_blocking()
                .unwrap();
            assert_eq!(store.keys.get(&[5; 32]), Candidate::Ambiguous);
            assert!(found(&store, a, 5).is_none());
        }

        #[test]
        fn a_suspect_index_sends_every_lookup_to_the_tree() {
            // An engine error mid-write may leave a committed key out of the index: while
            // the index is suspect, lookups read `keylookup_keyid`.
            let (_dir, store, acme) = store_with_acme();
            let a = &acme.prefix;
            let ann = put_customer(&store, a, "ann@example.com");
            let k = put_key(&store, a, key(ann.id, 5, ProductScope::All));
            // What such an error would leave: the key committed, the index without it.
            store.keys.remove(&[5; 32], k.id);
            assert_eq!(store.keys.get(&[5; 32]), Candidate::Absent);
            assert!(found(&store, a, 5).is_none(), "a trusted index is believed");
            store
                .index_suspect
                .store(true, std::sync::atomic::Ordering::Relaxed);
            assert_eq!(found(&store, a, 5).unwrap().id, k.id);
            assert!(found(&store, a, 6).is_none());
        }
    }
}
