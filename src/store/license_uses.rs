//! Download-key checks and activation sightings (SPEC §9), kept in memory on the check
//! path and written in batches: a check never writes (`last_checked_at`,
//! `last_seen_at` are persisted by [`Store::persist_license_uses`], like token uses).

use super::licensing::{at, pair};
use super::schema::{ACTIVATIONS, DOWNLOAD_KEYS};
use super::{Store, StoreError};
use crate::model::{AccountPrefix, Activation, ActivationId, DownloadKey, DownloadKeyId};
use std::hash::{BuildHasherDefault, Hasher};

/// Checks and sightings noted in memory since the last batch: by key, when it was last
/// checked and when each of its activations was last seen.
///
/// In [`N_SHARDS`] maps, each under its own mutex, chosen by the key's id (random, drawn by
/// the store): every licensed check notes one, so one map under one mutex would be a point
/// where all of a server's cores meet (and, with two, the mutex's and the map's cache lines
/// go back and forth between them on every check).
#[derive(Debug)]
pub(super) struct LicenseUses {
    shards: Box<[std::sync::Mutex<Notes>]>,
}

/// Shards of [`LicenseUses`]: the activation index's, chosen alike.
const N_SHARDS: usize = super::activation_index::N_SHARDS;

type Notes = NoteMap<(AccountPrefix, DownloadKeyId), KeyUse>;

impl Default for LicenseUses {
    fn default() -> Self {
        LicenseUses {
            shards: (0..N_SHARDS).map(|_| std::sync::Mutex::default()).collect(),
        }
    }
}

impl LicenseUses {
    /// The notes of key `id`'s shard, locked.
    fn shard(&self, id: DownloadKeyId) -> std::sync::MutexGuard<'_, Notes> {
        self.shards[super::activation_index::id_shard(id)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Every note, taken out of the shards one at a time (checks go on meanwhile). Each
    /// shard starts again with room for as many notes as it gave: the next batch is
    /// usually as large, and growing from empty would rehash it at every doubling on the
    /// check path (a distinct key per check, as real sites send, grows the map each time).
    /// While a batch is written, its notes and the empty room for the next both exist: at
    /// most twice the notes' memory, for the seconds of one write.
    fn take(&self) -> Vec<Notes> {
        self.shards
            .iter()
            .map(|shard| {
                let mut notes = shard.lock().unwrap_or_else(|e| e.into_inner());
                let room = Notes::with_capacity_and_hasher(notes.len(), Default::default());
                std::mem::replace(&mut *notes, room)
            })
            .filter(|notes| !notes.is_empty())
            .collect()
    }
}

#[derive(Debug, Default, Clone)]
struct KeyUse {
    checked: Option<crate::model::Timestamp>,
    seen: Seen,
}

/// When each activation of one key was last seen. A key is usually checked for one site
/// or a few, and most keys are noted once per batch: the first activation inline (no
/// allocation — a site's check notes one), the next few in a short list, which becomes a
/// map past [`Seen::FEW`] activations.
#[derive(Debug, Default, Clone)]
struct Seen {
    first: Option<(ActivationId, crate::model::Timestamp)>,
    few: Vec<(ActivationId, crate::model::Timestamp)>,
    many: NoteMap<ActivationId, crate::model::Timestamp>,
}

impl Seen {
    /// Activations kept without a map (`first` and `few`).
    const FEW: usize = 8;

    /// Notes `activation` seen at `at` (the latest time wins).
    fn note(&mut self, activation: ActivationId, at: crate::model::Timestamp) {
        if self.many.is_empty() {
            match &mut self.first {
                None => {
                    self.first = Some((activation, at));
                    return;
                }
                Some((id, seen)) if *id == activation => {
                    *seen = (*seen).max(at);
                    return;
                }
                Some(_) => {}
            }
            if let Some((_, seen)) = self.few.iter_mut().find(|(id, _)| *id == activation) {
                *seen = (*seen).max(at);
                return;
            }
            if 1 + self.few.len() < Self::FEW {
                self.few.push((activation, at));
                return;
            }
            self.many.extend(self.first.take());
            self.many.extend(self.few.drain(..));
        }
        let seen = self.many.entry(activation).or_insert(at);
        *seen = (*seen).max(at);
    }

    fn get(&self, activation: ActivationId) -> Option<crate::model::Timestamp> {
        if self.many.is_empty() {
            self.first
                .iter()
                .chain(&self.few)
                .find(|(id, _)| *id == activation)
                .map(|(_, at)| *at)
        } else {
            self.many.get(&activation).copied()
        }
    }

    fn iter(&self) -> impl Iterator<Item = (ActivationId, crate::model::Timestamp)> + '_ {
        self.first
            .iter()
            .chain(&self.few)
            .copied()
            .chain(self.many.iter().map(|(id, at)| (*id, *at)))
    }
}

/// The notes' maps: every check writes one, under a mutex, so their hash is a cheap one
/// (FxHash's step) instead of SipHash. Their keys are stored keys' and activations' ids
/// (random, drawn by the store) and account prefixes: no caller chooses them, so the
/// flooding resistance SipHash buys is not needed.
type NoteMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<NoteHasher>>;

#[derive(Default)]
struct NoteHasher(u64);

impl NoteHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for NoteHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

impl Store {
    /// Notes that key `id` was checked at `at` (and that `activation`, if given, was seen
    /// then): memory only, never a write on the check path. [`Store::persist_license_uses`]
    /// writes them in batches.
    pub fn note_key_check(
        &self,
        account: &AccountPrefix,
        id: DownloadKeyId,
        activation: Option<ActivationId>,
        at: crate::model::Timestamp,
    ) {
        let mut notes = self.license_uses.shard(id);
        let entry = notes.entry((*account, id)).or_default();
        if entry.checked.is_none_or(|c| c < at) {
            entry.checked = Some(at);
        }
        if let Some(activation) = activation {
            entry.seen.note(activation, at);
        }
    }

    /// A key as last seen: its stored record with the checks noted since the last batch.
    pub fn with_pending_checks(&self, mut key: DownloadKey) -> DownloadKey {
        if let Some(checked) = self
            .license_uses
            .shard(key.id)
            .get(&(key.account, key.id))
            .and_then(|u| u.checked)
            && key.last_checked_at.is_none_or(|c| c < checked)
        {
            key.last_checked_at = Some(checked);
        }
        key
    }

    /// An activation as last seen (see [`Store::with_pending_checks`]).
    pub fn with_pending_sighting(
        &self,
        account: &AccountPrefix,
        mut activation: Activation,
    ) -> Activation {
        if let Some(seen) = self
            .license_uses
            .shard(activation.key_id)
            .get(&(*account, activation.key_id))
            .and_then(|u| u.seen.get(activation.id))
            && activation.last_seen_at.is_none_or(|s| s < seen)
        {
            activation.last_seen_at = Some(seen);
        }
        activation
    }

    /// Writes the checks and sightings noted since the last call (`last_checked_at`,
    /// `last_seen_at`) in one transaction, and waits until it is durable. Returns how many
    /// keys were updated. Blocking: call from `spawn_blocking`. Keys or activations
    /// deleted meanwhile stay deleted.
    ///
    /// # Errors
    /// The write failed; the noted times are kept for the next call.
    pub fn persist_license_uses(&self) -> Result<usize, StoreError> {
        let taken = self.license_uses.take();
        if taken.is_empty() {
            return Ok(0);
        }
        // Outside the caches: a key's last check or an activation's last sighting is
        // nothing the update checks' catalogue views hold, so the batch a minute under
        // check load does not make them be rebuilt (the in-memory indexes hold neither).
        let result = self
            .write_outside_caches(|| {
                let mut keys = Vec::new();
                let mut activations = Vec::new();
                for ((account, id), used) in taken.iter().flatten() {
                    let Some(mut key) = self.download_key(account, *id)? else {
                        continue;
                    };
                    if let Some(checked) = used.checked
                        && key.last_checked_at.is_none_or(|c| c < checked)
                    {
                        key.last_checked_at = Some(checked);
                        keys.push(key);
                    }
                    for (activation, seen) in used.seen.iter() {
                        let pair = pair(account, id.0, activation.0);
                        if let Some(mut stored) = self.read(&ACTIVATIONS, &pair)?
                            && stored.last_seen_at.is_none_or(|s| s < seen)
                        {
                            stored.last_seen_at = Some(seen);
                            activations.push((pair, stored));
                        }
                    }
                }
                let written = keys.len();
                if written + activations.len() > 0 {
                    self.transact(|tx| {
                        for key in &keys {
                            tx.put(&DOWNLOAD_KEYS, &at(&key.account, key.id.0), key)?;
                        }
                        for (pair, activation) in &activations {
                            tx.put(&ACTIVATIONS, pair, activation)?;
                        }
                        Ok(())
                    })?;
                }
                Ok(written)
            })
            .and_then(super::Pending::durable_blocking);
        if result.is_err() {
            // Put them back (newer notes made meanwhile win).
            for (slot, used) in taken.into_iter().flatten() {
                let mut notes = self.license_uses.shard(slot.1);
                let entry = notes.entry(slot).or_default();
                entry.checked = entry.checked.max(used.checked);
                for (activation, seen) in used.seen.iter() {
                    entry.seen.note(activation, seen);
                }
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;

    #[test]
    fn notes_are_spread_over_the_shards_and_taken_whole() {
        let uses = LicenseUses::default();
        let account = AccountPrefix::parse("acme").unwrap();
        let t = Timestamp::from_secs;
        // Ids as the store draws them (random, 53 bits): spread over the shards.
        let ids: Vec<DownloadKeyId> = (0..512)
            .map(|_| DownloadKeyId(crate::model::catalog::random_id().unwrap()))
            .collect();
        for (n, id) in ids.iter().enumerate() {
            uses.shard(*id).entry((account, *id)).or_default().checked = Some(t(n as u64));
        }
        let lens: Vec<usize> = uses
            .shards
            .iter()
            .map(|s| s.lock().unwrap().len())
            .collect();
        let taken = uses.take();
        assert!(taken.len() > N_SHARDS / 2, "{} shards used", taken.len());
        // Each shard is empty again, with room for as many notes as it gave.
        for (shard, len) in uses.shards.iter().zip(lens) {
            let notes = shard.lock().unwrap();
            assert!(notes.is_empty() && notes.capacity() >= len, "{len}");
        }
        let mut all: Vec<_> = taken
            .iter()
            .flatten()
            .map(|((_, id), used)| (*id, used.checked))
            .collect();
        all.sort_by_key(|(id, _)| id.0);
        let mut want: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| (*id, Some(t(n as u64))))
            .collect();
        want.sort_by_key(|(id, _)| id.0);
        assert_eq!(all, want, "every note, once");
        assert!(uses.take().is_empty(), "nothing left behind");
    }

    #[test]
    fn sightings_keep_the_latest_time_few_or_many() {
        let mut seen = Seen::default();
        let t = Timestamp::from_secs;
        // Past `FEW` activations the list becomes a map; every note survives the move.
        for round in 0..2u64 {
            for id in 0..(Seen::FEW as u64 + 4) {
                seen.note(ActivationId(id), t(1_000 + id * 10 + round));
            }
            if round == 0 {
                // An earlier time never replaces a later one.
                seen.note(ActivationId(0), t(1));
            }
        }
        for id in 0..(Seen::FEW as u64 + 4) {
            assert_eq!(seen.get(ActivationId(id)), Some(t(1_001 + id * 10)), "{id}");
        }
        assert_eq!(seen.get(ActivationId(999)), None);
        assert_eq!(seen.iter().count(), Seen::FEW + 4);
        // A few stay a list.
        let mut few = Seen::default();
        few.note(ActivationId(7), t(5));
        few.note(ActivationId(7), t(9));
        few.note(ActivationId(7), t(3));
        assert!(few.many.is_empty());
        // One activation (a site's check) is kept inline: nothing allocated.
        assert_eq!(few.few.capacity(), 0);
        assert_eq!(few.iter().collect::<Vec<_>>(), [(ActivationId(7), t(9))]);
        // `FEW` activations stay a list (notes of listed ones add nothing); one more
        // makes the map, with every earlier note in it.
        for id in 1..Seen::FEW as u64 {
            few.note(ActivationId(100 + id), t(id));
        }
        assert!(few.many.is_empty());
        assert_eq!(few.iter().count(), Seen::FEW);
        few.note(ActivationId(7), t(50));
        few.note(ActivationId(101), t(60));
        assert!(few.many.is_empty());
        few.note(ActivationId(999), t(70));
        assert_eq!(few.many.len(), Seen::FEW + 1);
        assert!(few.first.is_none() && few.few.is_empty());
        assert_eq!(few.get(ActivationId(7)), Some(t(50)));
        assert_eq!(few.get(ActivationId(101)), Some(t(60)));
        assert_eq!(few.get(ActivationId(999)), Some(t(70)));
    }
}
