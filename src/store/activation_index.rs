//! The in-memory activation index: for every stored download key, what a licensed update
//! check needs to answer without reading sled (SPEC §8.1 item 2, §9): the key's status,
//! expiry and product scope, and the identities (site or machine) it is activated for,
//! each as a keyed hash with its activation id. With the key index (`key_index`: lookup
//! hash → key id) a check with a site reads no record and scans no tree.
//!
//! An entry, by key id: bytes 8..16 of the key's lookup hash (the key index matched bytes
//! 0..8; together 16 bytes of a keyed hash that binds the account, so a key of another
//! account, or a changed key, does not match: by chance with odds of 2^-128), the key's
//! facts, and its activations as (identity hash, activation id) pairs. Identity hashes
//! are SipHash-2-4 (the keyed PRF for short inputs its authors analysed; 64 bits like the
//! truncated keyed blake3 they replaced, at less than half its cost per identity hash),
//! keyed by 16 bytes derived from `server.key`: nobody without it can aim a site at
//! another's hash.
//! Lemon Squeezy instances are matched by activation id, never by identity: they are not
//! listed.
//!
//! Invariants (as `key_index`):
//! - every change comes from the store, under its write lock, after the transaction that
//!   makes it committed (`IndexOp::KeyFacts`, `KeyGone`, `ActivationAdd`,
//!   `ActivationRemove`, emitted wherever `download_key` or `activation` records are put
//!   or removed); the index is loaded at open from the index snapshot (`snapshot.rs`) or
//!   built by a scan of both trees, never guessed;
//! - an entry is exactly its key's record and activations as committed; two stored keys
//!   of two accounts sharing an id (ids are drawn per account) make the entry
//!   [`Entry::Shared`]: checks of that id read sled, as before the index;
//! - anything the caller cannot match exactly (no entry, shared, another hash) sends it
//!   back to the records: the index only ever shortens an answer the records give.

use super::key_index::Candidate;
use crate::model::licensing::Identity;
use crate::model::{Activation, ActivationId, DownloadKey, DownloadKeyId, ProductId, Timestamp};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Read, Write};
use std::sync::RwLock;

pub(super) const N_SHARDS: usize = 64;

/// Bits of a key id: the store draws ids at random in `2..=MAX_ID`, 53 bits (JSON-safe).
const ID_BITS: u32 = u64::BITS - crate::model::catalog::MAX_ID.leading_zeros();

/// The shard of key `id`, in this index and in the notes of checks (`license_uses`): the
/// top six of its drawn bits (random; a 64-bit id's top bits would always be 0).
pub(super) fn id_shard(id: DownloadKeyId) -> usize {
    (id.0 >> (ID_BITS - N_SHARDS.trailing_zeros())) as usize % N_SHARDS
}

/// A key id's hash: the id times an odd constant (Fibonacci hashing). hashbrown takes a
/// bucket from a hash's low bits and a one-byte tag from its top seven; the id itself
/// (random, but 53 bits) would give every entry the tag 0, so a lookup would compare the
/// key of every full slot in the group it probes.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard = HashMap<u64, Entry, BuildHasherDefault<IdHasher>>;

/// No expiry (`Timestamp` is milliseconds; none is this far).
const NEVER: u64 = u64::MAX;

/// What the index holds for one key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entry {
    Key(Box<Facts>),
    /// Two stored keys (of two accounts) have this id: ask the records.
    Shared,
}

/// One key's facts and activations: 72 bytes, boxed (one allocation for the usual key,
/// listing one product and activated once; `benches/README.md` has the memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Facts {
    /// Bytes 8..16 of the lookup hash (the key index matched bytes 0..8).
    lookup: u64,
    /// Milliseconds, [`NEVER`] for none.
    expires_at: u64,
    /// The listed products (`all` false), by id.
    products: Few<u64>,
    /// (identity hash, activation id), in no order.
    sites: Few<(u64, u64)>,
    disabled: bool,
    /// `ProductScope::All`.
    all: bool,
}

/// A short list kept small: nothing, one item inline, or more on the heap.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Few<T> {
    None,
    One(T),
    Many(Box<[T]>),
}

impl<T: Clone> Few<T> {
    fn as_slice(&self) -> &[T] {
        match self {
            Few::None => &[],
            Few::One(item) => std::slice::from_ref(item),
            Few::Many(items) => items,
        }
    }

    fn from_vec(mut items: Vec<T>) -> Self {
        match items.len() {
            0 => Few::None,
            1 => Few::One(items.remove(0)),
            _ => Few::Many(items.into_boxed_slice()),
        }
    }

    fn push(&mut self, item: T) {
        let mut items = self.as_slice().to_vec();
        items.push(item);
        *self = Few::from_vec(items);
    }

    fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        let mut items = self.as_slice().to_vec();
        items.retain(keep);
        *self = Few::from_vec(items);
    }
}

/// How a key stands, from memory: what `service::licensing::check` needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyStanding {
    pub id: DownloadKeyId,
    pub disabled: bool,
    pub expires_at: Option<Timestamp>,
    /// The product asked about is covered.
    pub covers: bool,
    /// The activation for the identity asked about, if any.
    pub activation: Option<ActivationId>,
}

/// An identity to look for: a normalized site, or a machine fingerprint.
#[derive(Debug, Clone, Copy)]
pub enum IdentityRef<'a> {
    Site(&'a str),
    Machine(&'a str),
}

fn lookup_part(lookup: &[u8; 32]) -> u64 {
    let mut part = [0u8; 8];
    part.copy_from_slice(&lookup[8..16]);
    u64::from_le_bytes(part)
}

/// Key id → its facts and activations, for every stored key (see the module doc).
pub(super) struct ActivationIndex {
    shards: Box<[RwLock<Shard>]>,
    /// The identity hashes' SipHash-2-4, keyed by the first half of the secret derived
    /// from `server.key` (the same at every opening): each hash starts from a copy of it.
    identities: siphasher::sip::SipHasher24,
}

impl std::fmt::Debug for ActivationIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivationIndex")
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// The `blake3::derive_key` context of the identity hashes' key (from `server.key`). (The
/// keyed blake3 of index format 5 and before had its own context: no key serves both.)
const IDENTITY_CONTEXT: &str = "upkeep 2026-12-02 activation index identity hashes, SipHash-2-4";

impl ActivationIndex {
    /// The key of the identity hashes of the store whose server key is `server`: the
    /// same at every opening, so a saved image stays valid.
    pub(super) fn secret_for(server: &crate::token::ServerKey) -> [u8; 32] {
        blake3::derive_key(IDENTITY_CONTEXT, server.as_bytes())
    }

    /// An empty index, its identity hashes keyed by `secret`.
    pub(super) fn new(secret: [u8; 32]) -> Self {
        let mut key = [0u8; 16];
        key.copy_from_slice(&secret[..16]);
        ActivationIndex {
            shards: (0..N_SHARDS).map(|_| RwLock::default()).collect(),
            identities: siphasher::sip::SipHasher24::new_with_key(&key),
        }
    }

    fn shard(&self, id: DownloadKeyId) -> &RwLock<Shard> {
        &self.shards[id_shard(id)]
    }

    /// The keyed hash of an identity (a site and a machine with the same text differ).
    pub(super) fn identity_hash(&self, identity: IdentityRef<'_>) -> u64 {
        use std::hash::Hasher;
        let (tag, text) = match identity {
            IdentityRef::Site(site) => (b's', site),
            IdentityRef::Machine(machine) => (b'm', machine),
        };
        let mut hasher = self.identities;
        hasher.write(&[tag]);
        hasher.write(text.as_bytes());
        hasher.finish()
    }

    fn hash_of(&self, activation: &Activation) -> Option<u64> {
        match &activation.identity {
            Identity::Site(site) => Some(self.identity_hash(IdentityRef::Site(site.as_str()))),
            Identity::Machine(machine) => Some(self.identity_hash(IdentityRef::Machine(machine))),
            Identity::Instance => None,
        }
    }

    /// Key `lookup` (whose id the key index named) as it stands for `product` and
    /// `identity` (hashed by [`ActivationIndex::identity_hash`]); `None`: ask the records.
    pub(super) fn standing(
        &self,
        id: DownloadKeyId,
        lookup: &[u8; 32],
        product: Option<ProductId>,
        identity: Option<u64>,
    ) -> Option<KeyStanding> {
        let shard = read(self.shard(id));
        let Some(Entry::Key(facts)) = shard.get(&id.0) else {
            return None;
        };
        if facts.lookup != lookup_part(lookup) {
            return None;
        }
        Some(KeyStanding {
            id,
            disabled: facts.disabled,
            expires_at: (facts.expires_at != NEVER)
                .then(|| Timestamp::from_millis(facts.expires_at)),
            covers: product.is_none_or(|p| facts.all || facts.products.as_slice().contains(&p.0)),
            activation: identity.and_then(|wanted| {
                facts
                    .sites
                    .as_slice()
                    .iter()
                    .find(|(hash, _)| *hash == wanted)
                    .map(|(_, activation)| ActivationId(*activation))
            }),
        })
    }

    /// Notes key `key` as committed: `created` (a new record: an entry already there is
    /// another account's key with the same id, and the entry becomes shared) or changed
    /// (its activations stay).
    pub(super) fn set_key(&self, key: &DownloadKey, created: bool) {
        let mut shard = write(self.shard(key.id));
        let lookup = lookup_part(&key.lookup);
        let (all, products) = match &key.products {
            crate::model::ProductScope::All => (true, Few::None),
            crate::model::ProductScope::Only(ids) => {
                (false, Few::from_vec(ids.iter().map(|p| p.0).collect()))
            }
        };
        let disabled = key.status == crate::model::KeyStatus::Disabled;
        let expires_at = key.expires_at.map_or(NEVER, Timestamp::as_millis);
        match shard.get_mut(&key.id.0) {
            Some(Entry::Shared) => {}
            Some(entry @ Entry::Key(_)) if created => *entry = Entry::Shared,
            Some(Entry::Key(facts)) => {
                facts.lookup = lookup;
                facts.disabled = disabled;
                facts.expires_at = expires_at;
                facts.all = all;
                facts.products = products;
            }
            None => {
                shard.insert(
                    key.id.0,
                    Entry::Key(Box::new(Facts {
                        lookup,
                        disabled,
                        expires_at,
                        all,
                        products,
                        sites: Few::None,
                    })),
                );
            }
        }
    }

    /// Notes that key `id` is gone (with its activations). A shared entry stays shared.
    pub(super) fn remove_key(&self, id: DownloadKeyId) {
        let mut shard = write(self.shard(id));
        if let Some(Entry::Key(_)) = shard.get(&id.0) {
            shard.remove(&id.0);
        }
    }

    /// Notes a committed activation of its key.
    pub(super) fn add_activation(&self, activation: &Activation) {
        if let Some(site) = self.site_of(activation) {
            self.add_site(site);
        }
    }

    /// What [`ActivationIndex::add_site`] notes of `activation` (none for an instance):
    /// its key, identity hash and id.
    pub(super) fn site_of(&self, activation: &Activation) -> Option<(DownloadKeyId, u64, u64)> {
        Some((
            activation.key_id,
            self.hash_of(activation)?,
            activation.id.0,
        ))
    }

    /// Notes activation `id` of key `key`, for the identity hashed `hash`.
    pub(super) fn add_site(&self, (key, hash, id): (DownloadKeyId, u64, u64)) {
        let mut shard = write(self.shard(key));
        if let Some(Entry::Key(facts)) = shard.get_mut(&key.0)
            && !facts.sites.as_slice().contains(&(hash, id))
        {
            facts.sites.push((hash, id));
        }
    }

    /// Notes that activation `activation` of key `key` is gone.
    pub(super) fn remove_activation(&self, key: DownloadKeyId, activation: ActivationId) {
        let mut shard = write(self.shard(key));
        if let Some(Entry::Key(facts)) = shard.get_mut(&key.0) {
            facts.sites.retain(|(_, id)| *id != activation.0);
        }
    }

    /// Writes the whole index to `out` in the format [`ActivationIndex::read_image`]
    /// reads: per shard, its entry count (u64), then each entry: the key id (u64), 0 for
    /// a shared entry or 1 for a key, then for a key its lookup bytes and expiry (u64
    /// each), flags (u8: 1 disabled, 2 every product), the listed products (a u32 count,
    /// u64 each) and the activations (a u32 count, identity hash and id, u64 each); all
    /// little-endian. The identity hashes are keyed from `server.key` (see
    /// [`ActivationIndex::secret_for`]), so they stay valid across openings. The caller
    /// keeps writers out meanwhile.
    ///
    /// # Errors
    /// Writing to `out` failed.
    pub(super) fn write_image(&self, out: &mut impl Write) -> io::Result<()> {
        for shard in &self.shards {
            let shard = read(shard);
            out.write_all(&(shard.len() as u64).to_le_bytes())?;
            for (id, entry) in shard.iter() {
                out.write_all(&id.to_le_bytes())?;
                let Entry::Key(facts) = entry else {
                    out.write_all(&[0])?;
                    continue;
                };
                out.write_all(&[1])?;
                out.write_all(&facts.lookup.to_le_bytes())?;
                out.write_all(&facts.expires_at.to_le_bytes())?;
                out.write_all(&[u8::from(facts.disabled) | (u8::from(facts.all) << 1)])?;
                let products = facts.products.as_slice();
                out.write_all(&(products.len() as u32).to_le_bytes())?;
                for product in products {
                    out.write_all(&product.to_le_bytes())?;
                }
                let sites = facts.sites.as_slice();
                out.write_all(&(sites.len() as u32).to_le_bytes())?;
                for (hash, activation) in sites {
                    out.write_all(&hash.to_le_bytes())?;
                    out.write_all(&activation.to_le_bytes())?;
                }
            }
        }
        Ok(())
    }

    /// Reads an index written by [`ActivationIndex::write_image`] from `input`, which
    /// holds at most `len` bytes, its identity hashes keyed by `secret`. A count the
    /// length cannot hold, an unknown tag or flag, or an id listed twice is an
    /// `InvalidData` error; no count makes it reserve more than `len` allows.
    ///
    /// # Errors
    /// `input` failed, ended early, or holds a value that cannot be right.
    pub(super) fn read_image(
        input: &mut impl Read,
        len: u64,
        secret: [u8; 32],
    ) -> io::Result<ActivationIndex> {
        let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
        let mut budget = len;
        let mut take = |n: u64| -> io::Result<()> {
            budget = budget
                .checked_sub(n)
                .ok_or_else(|| invalid("activation index length"))?;
            Ok(())
        };
        fn u64_of(input: &mut impl Read) -> io::Result<u64> {
            let mut bytes = [0u8; 8];
            input.read_exact(&mut bytes)?;
            Ok(u64::from_le_bytes(bytes))
        }
        fn u32_of(input: &mut impl Read) -> io::Result<u32> {
            let mut bytes = [0u8; 4];
            input.read_exact(&mut bytes)?;
            Ok(u32::from_le_bytes(bytes))
        }
        fn u8_of(input: &mut impl Read) -> io::Result<u8> {
            let mut byte = [0u8; 1];
            input.read_exact(&mut byte)?;
            Ok(byte[0])
        }
        let index = ActivationIndex::new(secret);
        for section in &index.shards {
            take(8)?;
            let n = u64_of(input)?;
            // Every entry takes at least 9 bytes.
            if n > len / 9 {
                return Err(invalid("activation index entry count"));
            }
            // Each entry goes to the shard its id picks, whatever section it was written
            // in: the image's layout never decides where a lookup looks. The section's
            // count is the room its shard needs.
            write(section).reserve(n as usize);
            for _ in 0..n {
                take(9)?;
                let id = u64_of(input)?;
                let entry = match u8_of(input)? {
                    0 => Entry::Shared,
                    1 => {
                        take(8 + 8 + 1 + 4)?;
                        let lookup = u64_of(input)?;
                        let expires_at = u64_of(input)?;
                        let flags = u8_of(input)?;
                        if flags > 3 {
                            return Err(invalid("activation index flags"));
                        }
                        let count = u64::from(u32_of(input)?);
                        take(count * 8 + 4)?;
                        let products = (0..count)
                            .map(|_| u64_of(input))
                            .collect::<Result<_, _>>()?;
                        let count = u64::from(u32_of(input)?);
                        take(count * 16)?;
                        let sites = (0..count)
                            .map(|_| Ok((u64_of(input)?, u64_of(input)?)))
                            .collect::<io::Result<_>>()?;
                        Entry::Key(Box::new(Facts {
                            lookup,
                            expires_at,
                            products: Few::from_vec(products),
                            sites: Few::from_vec(sites),
                            disabled: flags & 1 != 0,
                            all: flags & 2 != 0,
                        }))
                    }
                    _ => return Err(invalid("activation index entry tag")),
                };
                if write(index.shard(DownloadKeyId(id)))
                    .insert(id, entry)
                    .is_some()
                {
                    return Err(invalid("activation index entry listed twice"));
                }
            }
        }
        Ok(index)
    }

    /// Number of key ids held (a shared one counts once).
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|s| read(s).len()).sum()
    }

    /// Number of activations held.
    pub(super) fn activations(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                read(s)
                    .values()
                    .map(|e| match e {
                        Entry::Key(facts) => facts.sites.as_slice().len(),
                        Entry::Shared => 0,
                    })
                    .sum::<usize>()
            })
            .sum()
    }

    /// Every entry, sorted, its sites sorted (tests compare indexes).
    #[cfg(test)]
    pub(super) fn entries(&self) -> Vec<(u64, Entry)> {
        let mut all: Vec<(u64, Entry)> = self
            .shards
            .iter()
            .flat_map(|shard| {
                read(shard)
                    .iter()
                    .map(|(id, entry)| {
                        let mut entry = entry.clone();
                        if let Entry::Key(facts) = &mut entry {
                            let mut sites = facts.sites.as_slice().to_vec();
                            sites.sort_unstable();
                            facts.sites = Few::from_vec(sites);
                        }
                        (*id, entry)
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }
}

/// What memory says of a key (see [`crate::Store::key_standing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// No stored key has this lookup hash.
    Unknown,
    Known(KeyStanding),
    /// Read the records.
    AskRecords,
}

impl super::Store {
    /// How the key whose lookup hash is `lookup` stands for `product` and `identity`,
    /// from memory only (the key index, then the activation index): no read, no scan.
    /// [`Standing::AskRecords`] when memory cannot say exactly (a shared entry, a suspect
    /// index after a failed write): then
    /// read the records ([`crate::Store::download_key_by_lookup`], [`crate::Store::activations`]).
    /// The lookup hash binds the account, so no account is asked for.
    pub fn key_standing(
        &self,
        lookup: &[u8; 32],
        product: Option<ProductId>,
        identity: Option<IdentityRef<'_>>,
    ) -> Standing {
        // An engine error mid-write may have left a commit out of the indexes: while they
        // are suspect, the records answer (until a restart rebuilds the indexes).
        if self
            .index_suspect
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Standing::AskRecords;
        }
        let id = match self.keys.get(lookup) {
            Candidate::Absent => return Standing::Unknown,
            Candidate::Key(id) => id,
            Candidate::Ambiguous => return Standing::AskRecords,
        };
        let identity = identity.map(|i| self.activations.identity_hash(i));
        match self.activations.standing(id, lookup, product, identity) {
            Some(standing) => Standing::Known(standing),
            None => Standing::AskRecords,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::backup;
    use super::super::licensing::tests::{activate, customer, key, product, put_customer, put_key};
    use super::super::schema::{ACTIVATIONS, DOWNLOAD_KEYS};
    use super::super::test_support::*;
    use super::super::{KEY_FILE, Store};
    use super::*;
    use crate::model::licensing::Identity;
    use crate::model::{AccountPrefix, KeyStatus, ProductScope};

    #[test]
    fn key_ids_pick_every_shard_and_spread_the_maps_tags() {
        use crate::model::catalog::{MAX_ID, random_id};
        // The shard is the top six of an id's 53 drawn bits.
        for s in 0..N_SHARDS as u64 {
            assert_eq!(id_shard(DownloadKeyId(s << 47)), s as usize);
        }
        assert_eq!(id_shard(DownloadKeyId(MAX_ID)), N_SHARDS - 1);
        assert_eq!(id_shard(DownloadKeyId(2)), 0);
        // Any id a caller sends (an admin path's) still names a shard.
        assert!(id_shard(DownloadKeyId(u64::MAX)) < N_SHARDS);
        // Drawn ids reach every shard, and their hashes' top seven bits (hashbrown's
        // tag) take most of their 128 values: the id's own top bits are always 0.
        let ids: Vec<u64> = (0..4096).map(|_| random_id().unwrap()).collect();
        let shards: std::collections::BTreeSet<usize> =
            ids.iter().map(|id| id_shard(DownloadKeyId(*id))).collect();
        assert_eq!(shards.len(), N_SHARDS);
        let tags: std::collections::BTreeSet<u64> = ids
            .iter()
            .map(|id| {
                let mut hasher = IdHasher::default();
                hasher.write_u64(*id);
                hasher.finish() >> 57
            })
            .collect();
        assert!(tags.len() > 120, "{} tags", tags.len());
    }

    /// An index of 300 keys (every other one disabled, expiring, listing products, with
    /// none, one or two activations, a machine among them) and a shared id.
    pub(in crate::store) fn sample(secret: [u8; 32]) -> ActivationIndex {
        let index = ActivationIndex::new(secret);
        for i in 0..300u64 {
            let mut k = key(
                crate::model::CustomerId(1),
                (i % 250) as u8,
                ProductScope::All,
            );
            k.id = DownloadKeyId(i.wrapping_mul(0x0123_4567_89ab_cdef));
            k.lookup[9] = (i / 250) as u8;
            if i % 2 == 0 {
                k.status = KeyStatus::Disabled;
                k.expires_at = Some(now());
            }
            if i % 3 == 0 {
                k.products = ProductScope::Only((0..i % 4).map(crate::model::ProductId).collect());
            }
            index.set_key(&k, true);
            for n in 0..i % 3 {
                let identity = if n == 1 {
                    Identity::Machine(format!("machine-{i}"))
                } else {
                    Identity::Site(crate::model::normalize_site(&format!("s{i}.com")).unwrap())
                };
                index.add_activation(&Activation {
                    id: ActivationId(i * 10 + n),
                    key_id: k.id,
                    identity,
                    label: None,
                    counts: true,
                    created_at: now(),
                    last_seen_at: None,
                });
            }
        }
        let mut twin = key(crate::model::CustomerId(1), 1, ProductScope::All);
        twin.id = DownloadKeyId(5u64.wrapping_mul(0x0123_4567_89ab_cdef));
        index.set_key(&twin, true);
        index
    }

    #[test]
    fn images_round_trip_and_bad_ones_are_refused() {
        let index = sample([3; 32]);
        assert_eq!(index.len(), 300);
        let mut image = Vec::new();
        index.write_image(&mut image).unwrap();
        let read = ActivationIndex::read_image(&mut image.as_slice(), image.len() as u64, [3; 32])
            .unwrap();
        assert_eq!(read.entries(), index.entries());
        assert_eq!(read.activations(), index.activations());
        // The identity hashes stay valid: the same key gives the same hashes.
        let k = DownloadKeyId(8u64.wrapping_mul(0x0123_4567_89ab_cdef));
        let mut lookup = [8u8; 32];
        lookup[9] = 0;
        let wanted = read.identity_hash(IdentityRef::Machine("machine-8"));
        assert_eq!(
            read.standing(k, &lookup, None, Some(wanted))
                .unwrap()
                .activation,
            Some(ActivationId(81))
        );

        // An image with every entry in its first section (as upkeep wrote them before
        // `id_shard` took an id's drawn bits) is read into the shards the ids pick.
        let legacy = ActivationIndex::new([3; 32]);
        for (id, entry) in index.entries() {
            write(&legacy.shards[0]).insert(id, entry);
        }
        let mut old = Vec::new();
        legacy.write_image(&mut old).unwrap();
        let moved =
            ActivationIndex::read_image(&mut old.as_slice(), old.len() as u64, [3; 32]).unwrap();
        assert_eq!(moved.entries(), index.entries());
        for (id, _) in index.entries() {
            assert!(
                super::read(moved.shard(DownloadKeyId(id))).contains_key(&id),
                "{id}"
            );
        }
        assert!(
            moved.standing(k, &lookup, None, Some(wanted)).is_some(),
            "found where a lookup looks"
        );

        // Cut short; a huge count; an unknown tag: refused, nothing reserved for them.
        for cut in [1, 9, image.len() / 2] {
            let short = &image[..image.len() - cut];
            assert!(
                ActivationIndex::read_image(&mut &short[..], short.len() as u64, [3; 32]).is_err()
            );
        }
        let mut huge = image.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        let err = ActivationIndex::read_image(&mut huge.as_slice(), huge.len() as u64, [3; 32])
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let mut tagged = Vec::new();
        tagged.extend_from_slice(&1u64.to_le_bytes());
        tagged.extend_from_slice(&5u64.to_le_bytes());
        tagged.push(7);
        for _ in 1..N_SHARDS {
            tagged.extend_from_slice(&0u64.to_le_bytes());
        }
        let err = ActivationIndex::read_image(&mut tagged.as_slice(), tagged.len() as u64, [3; 32])
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    /// The index agrees with the trees: the same entries as one built from a scan of
    /// `download_key` and `activation` (with this index's identity key). Returns how many
    /// keys and activations it holds.
    fn agrees(store: &Store) -> (usize, usize) {
        let scanned = ActivationIndex::new(ActivationIndex::secret_for(store.server_key()));
        for entry in store.scan(&DOWNLOAD_KEYS, &[]) {
            scanned.set_key(&entry.unwrap().1, true);
        }
        for entry in store.scan(&ACTIVATIONS, &[]) {
            scanned.add_activation(&entry.unwrap().1);
        }
        assert_eq!(store.activations.entries(), scanned.entries());
        (store.activations.len(), store.activations.activations())
    }

    fn site_of(store: &Store, k: &DownloadKey, site: &str) -> Option<ActivationId> {
        match store.key_standing(&k.lookup, None, Some(IdentityRef::Site(site))) {
            Standing::Known(standing) => standing.activation,
            other => panic!("not known from memory: {other:?}"),
        }
    }

    fn delete_activation(store: &Store, a: &AccountPrefix, id: ActivationId) {
        store
            .delete_activation(a, id, |_, _| Ok(()))
            .unwrap()
            .durable_blocking()
            .unwrap();
    }

    #[test]
    fn the_activation_index_follows_every_change_to_keys_and_activations() {
        let (dir, store, acme) = store_with_acme();
        let a = &acme.prefix;
        let put = |key: DownloadKey| put_key(&store, a, key);
        let ann = put_customer(&store, a, "ann@example.com");
        let bob = put_customer(&store, a, "bob@example.com");
        let p = product(&store, a, "hello");
        let q = product(&store, a, "world");
        let k1 = put(key(ann.id, 1, ProductScope::Only(vec![p, q])));
        let k2 = put(key(ann.id, 2, ProductScope::All));
        let k3 = put(key(bob.id, 3, ProductScope::Only(vec![q])));
        assert_eq!(agrees(&store), (3, 0));

        // Activate, then deactivate (the admin's delete and the holder's deactivation
        // both delete the record).
        let one = activate(&store, &k1, "example.com", true);
        let two = activate(&store, &k1, "staging.example.com", false);
        activate(&store, &k2, "example.org", true);
        let three = activate(&store, &k3, "example.net", true);
        assert_eq!(agrees(&store), (3, 4));
        assert_eq!(site_of(&store, &k1, "example.com"), Some(one.id));
        assert_eq!(site_of(&store, &k1, "staging.example.com"), Some(two.id));
        assert_eq!(site_of(&store, &k1, "example.org"), None);
        delete_activation(&store, a, one.id);
        assert_eq!(agrees(&store), (3, 3));
        assert_eq!(site_of(&store, &k1, "example.com"), None);
        assert_eq!(site_of(&store, &k1, "staging.example.com"), Some(two.id));

        // A change of the key's facts: disabled, an expiry, another product list.
        store
            .put_download_key(a, Some(k1.id), |current| {
                let mut k = current.unwrap();
                k.status = KeyStatus::Disabled;
                k.expires_at = Some(now());
                k.products = ProductScope::Only(vec![p]);
                Ok(k)
            })
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(agrees(&store), (3, 3));
        let Standing::Known(standing) = store.key_standing(&k1.lookup, Some(q), None) else {
            panic!("known");
        };
        assert!(standing.disabled && !standing.covers);
        assert_eq!(standing.expires_at, Some(now()));

        // A new lookup hash: the old one is no key any more.
        store
            .put_download_key(a, Some(k1.id), |current| {
                let mut k = current.unwrap();
                k.lookup = [11; 32];
                Ok(k)
            })
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(agrees(&store), (3, 3));
        assert_eq!(
            store.key_standing(&k1.lookup, None, None),
            Standing::Unknown
        );
        // A hash sharing the key index's 8 bytes but not the rest: not this key.
        let mut near = [11u8; 32];
        near[12] = 0;
        assert_eq!(store.key_standing(&near, None, None), Standing::AskRecords);

        // A product's deletion drops it from the keys listing it.
        store
            .delete_product(a, q)
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(agrees(&store), (3, 3));
        // A key's deletion takes its activations; a customer's, its keys'.
        store
            .delete_download_key(a, k2.id)
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(agrees(&store), (2, 2));
        store
            .delete_customer(a, bob.id)
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(agrees(&store), (1, 1));
        assert_eq!(
            store.key_standing(&k3.lookup, None, None),
            Standing::Unknown
        );
        let _ = three;

        // Another account's key with an activation, then a backup restored elsewhere.
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
        let k4 = store
            .put_download_key(g, None, |_| Ok(key(carol.id, 4, ProductScope::All)))
            .unwrap()
            .durable_blocking()
            .unwrap();
        let four = activate(&store, &k4, "globex.example", true);
        assert_eq!(agrees(&store), (2, 2));
        let mut image = Vec::new();
        store.backup(&mut image, "now").unwrap();
        let restored_dir = tempfile::tempdir().unwrap();
        let target = restored_dir.path().join("restored");
        let checked = backup::check(std::io::Cursor::new(image)).unwrap();
        backup::restore(&checked, &target).unwrap();
        std::fs::copy(dir.path().join(KEY_FILE), target.join(KEY_FILE)).unwrap();
        let restored = Store::open(&target).unwrap();
        assert_eq!(agrees(&restored), (2, 2));
        assert_eq!(site_of(&restored, &k4, "globex.example"), Some(four.id));
        let k1 = restored.download_key(a, k1.id).unwrap().unwrap();
        assert_eq!(site_of(&restored, &k1, "staging.example.com"), Some(two.id));
        drop(restored);

        // An account's deletion takes its keys and activations.
        store.delete_account(a).unwrap().durable_blocking().unwrap();
        assert_eq!(agrees(&store), (1, 1));

        // Reopened: built again from the trees, then read from the index snapshot.
        let before = store.activations.entries();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(store.snapshot_stamp.lock().unwrap().is_none(), "scanned");
        assert_eq!(agrees(&store), (1, 1));
        assert_eq!(store.activations.entries(), before);
        assert_eq!(site_of(&store, &k4, "globex.example"), Some(four.id));
        assert!(store.save_index_snapshot().unwrap());
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(
            store.snapshot_stamp.lock().unwrap().is_some(),
            "from the snapshot"
        );
        assert_eq!(agrees(&store), (1, 1));
        assert_eq!(store.activations.entries(), before);
        assert_eq!(site_of(&store, &k4, "globex.example"), Some(four.id));
    }

    #[test]
    fn a_key_id_held_by_two_accounts_sends_checks_to_the_records() {
        let (_dir, store, acme) = store_with_acme();
        let a = &acme.prefix;
        let ann = put_customer(&store, a, "ann@example.com");
        let k = put_key(&store, a, key(ann.id, 5, ProductScope::All));
        activate(&store, &k, "example.com", true);
        assert!(matches!(
            store.key_standing(&k.lookup, None, Some(IdentityRef::Site("example.com"))),
            Standing::Known(KeyStanding {
                activation: Some(_),
                ..
            })
        ));
        // What another account's key drawing the same id leaves.
        let mut other = k.clone();
        other.lookup = [6; 32];
        store.activations.set_key(&other, true);
        assert_eq!(
            store.key_standing(&k.lookup, None, None),
            Standing::AskRecords
        );
        // Its deletion leaves the entry shared: still answered by the records.
        store.activations.remove_key(k.id);
        assert_eq!(
            store.key_standing(&k.lookup, None, None),
            Standing::AskRecords
        );
        // A suspect index (a write failed after its commit) is not believed.
        store
            .index_suspect
            .store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            store.key_standing(&[9; 32], None, None),
            Standing::AskRecords
        );
        // An entry stays small (the memory a million keys cost).
        assert!(std::mem::size_of::<Facts>() <= 72);
        // A machine and a site with the same text are different identities; another
        // secret gives other hashes.
        let index = ActivationIndex::new([1; 32]);
        let mut other = [1; 32];
        other[15] = 2;
        assert_ne!(
            index.identity_hash(IdentityRef::Site("example.com")),
            ActivationIndex::new(other).identity_hash(IdentityRef::Site("example.com"))
        );
        assert_ne!(
            index.identity_hash(IdentityRef::Site("example.com")),
            index.identity_hash(IdentityRef::Machine("example.com"))
        );
        // The hash is SipHash-2-4, keyed by the secret's first 16 bytes, of `tag ‖ text`
        // (the documented function: the two writes are one stream), for every length.
        let expected = |tag: u8, text: &str| {
            let mut bytes = vec![tag];
            bytes.extend_from_slice(text.as_bytes());
            siphasher::sip::SipHasher24::new_with_key(&[1; 16]).hash(&bytes)
        };
        for len in [0, 1, 6, 7, 8, 63, 64, 253, 300] {
            let text = "s".repeat(len);
            assert_eq!(
                index.identity_hash(IdentityRef::Site(&text)),
                expected(b's', &text),
                "{len}"
            );
            assert_eq!(
                index.identity_hash(IdentityRef::Machine(&text)),
                expected(b'm', &text),
                "{len}"
            );
        }
    }
}
