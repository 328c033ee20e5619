//! The in-memory token index: token hash → who the token is, in O(1), in front of the
//! store. Also the account table (every account's plan limit) and the binary image of
//! both that the store saves at a clean stop so the next start need not scan sled.
//!
//! Memory is what limits a million tokens, so an entry is kept small (40 bytes, plus the
//! 32-byte key): the account is a shared [`AccountSlot`] pointer instead of an inline
//! 33-byte prefix, an expiry is a plain `u64`, and "used since last persisted" is one
//! bit of the last-use time.
//!
//! Invariants:
//! - every change comes from the store, under its write lock, after the transaction
//!   that makes it committed: the index never says more than sled does;
//! - an [`AccountSlot`] is never reused: a deleted account's slot is marked deleted (so
//!   any token still pointing at it stops authenticating at once) and a re-created
//!   account with the same prefix gets a new slot;
//! - readers hold one shard's read lock for a copy of one entry, and resolve its account
//!   without any lock.

use crate::model::{AccountPrefix, Principal, Scopes, Timestamp, TokenHash, TokenId};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// What authentication needs to know about a token; a copy of the stored record's relevant
/// fields, kept in the [`TokenIndex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthRecord {
    pub token_id: TokenId,
    pub principal: Principal,
    pub scopes: Scopes,
    pub expires_at: Option<Timestamp>,
    /// The entry is a rotated token's previous secret in its grace period (a grace
    /// alias), not the token's current secret: it may read, never manage tokens.
    pub grace: bool,
}

impl From<&crate::model::Token> for AuthRecord {
    fn from(token: &crate::model::Token) -> Self {
        AuthRecord {
            token_id: token.id,
            principal: token.principal,
            scopes: token.scopes,
            expires_at: token.expires_at,
            grace: false,
        }
    }
}

/// A use of a token that the store has not yet persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingUse {
    pub hash: TokenHash,
    pub at: Timestamp,
}

/// One account as the index knows it, shared by all its tokens' entries.
struct AccountSlot {
    prefix: AccountPrefix,
    /// [`SLOT_UNKNOWN`], [`SLOT_DELETED`], or the account's plan limit + 1 (1 = no plan
    /// license bound). Written under the store's write lock, read by anyone.
    state: AtomicU64,
    /// When the bound plan license expires (Unix ms, [`NEVER`] for none): from then on
    /// it no longer counts and the account has no plan limit. Written before `state`.
    license_expires: AtomicU64,
    /// The account's tokens in the index (current secrets; grace aliases not counted):
    /// what the per-account quota checks, without a store scan under the write lock.
    tokens: AtomicU64,
}

impl AccountSlot {
    fn new(prefix: AccountPrefix, state: u64, license_expires: u64) -> Arc<AccountSlot> {
        Arc::new(AccountSlot {
            prefix,
            state: AtomicU64::new(state),
            license_expires: AtomicU64::new(license_expires),
            tokens: AtomicU64::new(0),
        })
    }

    /// The account's plan limit at `now_ms` (see [`decode_limit`]): an expired plan
    /// license no longer counts.
    fn plan_limit(&self, now_ms: u64) -> Option<Option<u32>> {
        let limit = decode_limit(self.state.load(Ordering::Acquire))?;
        if limit.is_some() && self.license_expires.load(Ordering::Acquire) <= now_ms {
            return Some(None);
        }
        Some(limit)
    }
}

/// Interned by a token whose account record the index has not been told about (unit
/// tests, benches; a consistent store always sets the account first).
const SLOT_UNKNOWN: u64 = u64::MAX;
/// The account was deleted: tokens still pointing here no longer authenticate.
const SLOT_DELETED: u64 = u64::MAX - 1;

fn encode_limit(limit: Option<u32>) -> u64 {
    limit.map_or(1, |n| u64::from(n) + 2)
}

fn decode_limit(state: u64) -> Option<Option<u32>> {
    match state {
        SLOT_UNKNOWN | SLOT_DELETED => None,
        1 => Some(None),
        n => n
            .checked_sub(2)
            .and_then(|n| u32::try_from(n).ok())
            .map(Some),
    }
}

/// Bit 63 of `IndexEntry::last_used`: the use is not yet persisted.
const UNSAVED: u64 = 1 << 63;
/// `IndexEntry::expires` of a token that never expires.
const NEVER: u64 = u64::MAX;

struct IndexEntry {
    token_id: TokenId,
    /// Unix ms, or [`NEVER`].
    expires: u64,
    /// Last authentication, Unix ms (0 = never), with [`UNSAVED`] set until the store
    /// holds it. Written on the hot path at most about once a second per token.
    last_used: AtomicU64,
    /// `Some` for an account token; `None` for an operator token.
    account: Option<Arc<AccountSlot>>,
    scopes: Scopes,
    /// Operator tokens: bit 0 active, bit 1 write. Any entry: bit 2, a grace alias.
    flags: u8,
}

impl IndexEntry {
    /// Adds `delta` to its account's token count, if it is an account's current secret.
    fn count(&self, delta: i64) {
        if let Some(slot) = &self.account
            && self.flags & GRACE == 0
        {
            if delta > 0 {
                slot.tokens
                    .fetch_add(delta.unsigned_abs(), Ordering::AcqRel);
            } else {
                slot.tokens
                    .fetch_sub(delta.unsigned_abs(), Ordering::AcqRel);
            }
        }
    }
}

const OP_ACTIVE: u8 = 1;
const OP_WRITE: u8 = 2;
/// The entry is a grace alias (a rotated token's previous secret).
const GRACE: u8 = 4;

/// A token that authenticated: its record and, for an account token, its account's plan
/// limit as the index knew it at that moment (read with the record, no second lookup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated {
    pub record: AuthRecord,
    /// `None`: no such account (or an operator token); `Some(None)`: an account without a
    /// plan license; `Some(Some(n))`: its plan license's limit.
    pub plan_limit: Option<Option<u32>>,
}

impl IndexEntry {
    /// The record and plan limit at `now_ms`, unless the token's account is gone.
    fn resolve(&self, now_ms: u64) -> Option<Authenticated> {
        let (principal, plan_limit) = match &self.account {
            Some(slot) => {
                if slot.state.load(Ordering::Acquire) == SLOT_DELETED {
                    return None;
                }
                (Principal::Account(slot.prefix), slot.plan_limit(now_ms))
            }
            None => (
                Principal::Operator {
                    active: self.flags & OP_ACTIVE != 0,
                    write: self.flags & OP_WRITE != 0,
                },
                None,
            ),
        };
        let record = AuthRecord {
            token_id: self.token_id,
            principal,
            scopes: self.scopes,
            expires_at: (self.expires != NEVER).then(|| Timestamp::from_millis(self.expires)),
            grace: self.flags & GRACE != 0,
        };
        Some(Authenticated { record, plan_limit })
    }
}

/// The hash is already uniform (blake3): use its first 8 bytes as the hash value.
#[derive(Default)]
struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than `TokenHash` is hashed; stay correct.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard = HashMap<TokenHash, IndexEntry, BuildHasherDefault<PrehashedHasher>>;
const N_SHARDS: usize = 64;

/// Every account the index knows, by prefix.
#[derive(Default)]
struct Accounts {
    by_prefix: HashMap<AccountPrefix, Arc<AccountSlot>>,
    /// How many slots hold an account (not `SLOT_UNKNOWN`).
    count: usize,
}

/// In-memory map from token hash to [`AuthRecord`], in front of the store, and the
/// account table (which accounts exist and their plan limits).
///
/// Loaded when the store opens and updated by the store after every committed write that
/// touches a token or an account, under the store's write lock, so it never disagrees
/// with sled for longer than the commit that changes both. Sharded (64 `RwLock`s chosen by
/// hash bytes) so readers on different cores rarely meet.
pub struct TokenIndex {
    shards: Box<[RwLock<Shard>]>,
    accounts: RwLock<Accounts>,
}

impl Default for TokenIndex {
    fn default() -> Self {
        TokenIndex::with_capacity(0)
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl TokenIndex {
    /// An empty index with room for `tokens` entries without rehashing.
    pub fn with_capacity(tokens: usize) -> Self {
        let per_shard = tokens.div_ceil(N_SHARDS);
        TokenIndex {
            shards: (0..N_SHARDS)
                .map(|_| {
                    RwLock::new(Shard::with_capacity_and_hasher(
                        per_shard,
                        Default::default(),
                    ))
                })
                .collect(),
            accounts: RwLock::default(),
        }
    }

    fn shard(&self, hash: &TokenHash) -> &RwLock<Shard> {
        // Byte 8 onwards is independent of the 8 bytes the map hashes with.
        &self.shards[usize::from(hash.as_bytes()[8]) % N_SHARDS]
    }

    /// The slot of `prefix`, interned as unknown if the index has none.
    fn slot(&self, prefix: AccountPrefix) -> Arc<AccountSlot> {
        if let Some(slot) = read(&self.accounts).by_prefix.get(&prefix) {
            return slot.clone();
        }
        write(&self.accounts)
            .by_prefix
            .entry(prefix)
            .or_insert_with(|| AccountSlot::new(prefix, SLOT_UNKNOWN, NEVER))
            .clone()
    }

    /// Adds or replaces the record for `hash`. Replacing keeps a newer in-memory use
    /// (and its unsaved mark), so changing a token's record never loses a use.
    pub fn insert(&self, hash: TokenHash, record: AuthRecord, last_used: Option<Timestamp>) {
        let (account, mut flags) = match record.principal {
            Principal::Account(prefix) => (Some(self.slot(prefix)), 0),
            Principal::Operator { active, write } => (
                None,
                if active { OP_ACTIVE } else { 0 } | if write { OP_WRITE } else { 0 },
            ),
        };
        if record.grace {
            flags |= GRACE;
        }
        let mut entry = IndexEntry {
            token_id: record.token_id,
            expires: record.expires_at.map_or(NEVER, Timestamp::as_millis),
            last_used: AtomicU64::new(last_used.map_or(0, Timestamp::as_millis)),
            account,
            scopes: record.scopes,
            flags,
        };
        let mut shard = write(self.shard(&hash));
        if let Some(old) = shard.get(&hash) {
            let old_used = old.last_used.load(Ordering::Relaxed);
            if old_used & !UNSAVED >= *entry.last_used.get_mut() {
                *entry.last_used.get_mut() = old_used;
            }
        }
        entry.count(1);
        if let Some(old) = shard.insert(hash, entry) {
            old.count(-1);
        }
    }

    pub fn remove(&self, hash: &TokenHash) {
        if let Some(old) = write(self.shard(hash)).remove(hash) {
            old.count(-1);
        }
    }

    /// How many tokens (current secrets, not grace aliases) the index holds for `prefix`.
    pub fn account_tokens(&self, prefix: &AccountPrefix) -> usize {
        read(&self.accounts)
            .by_prefix
            .get(prefix)
            .map_or(0, |slot| slot.tokens.load(Ordering::Acquire) as usize)
    }

    pub fn get(&self, hash: &TokenHash) -> Option<AuthRecord> {
        Some(read(self.shard(hash)).get(hash)?.resolve(0)?.record)
    }

    /// Number of entries: tokens and earlier secrets in a grace period.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| read(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records that the account `prefix` exists, with its plan license's limit and expiry
    /// (if one is bound).
    pub fn set_account(
        &self,
        prefix: AccountPrefix,
        limit: Option<u32>,
        license_expires_at: Option<Timestamp>,
    ) {
        let mut accounts = write(&self.accounts);
        let slot = accounts
            .by_prefix
            .entry(prefix)
            .or_insert_with(|| AccountSlot::new(prefix, SLOT_UNKNOWN, NEVER));
        let expires = match limit {
            Some(_) => license_expires_at.map_or(NEVER, Timestamp::as_millis),
            None => NEVER,
        };
        slot.license_expires.store(expires, Ordering::Release);
        let was = slot.state.swap(encode_limit(limit), Ordering::Release);
        if was == SLOT_UNKNOWN {
            accounts.count += 1;
        }
    }

    /// Forgets the account `prefix`: its tokens stop authenticating at once, even an
    /// entry a caller has not yet removed.
    pub fn remove_account(&self, prefix: &AccountPrefix) {
        let mut accounts = write(&self.accounts);
        if let Some(slot) = accounts.by_prefix.remove(prefix) {
            if slot.state.swap(SLOT_DELETED, Ordering::Release) != SLOT_UNKNOWN {
                accounts.count -= 1;
            }
        }
    }

    /// Number of accounts.
    pub fn account_count(&self) -> usize {
        read(&self.accounts).count
    }

    /// `None` if there is no such account, else the limit of its plan license at `now`
    /// (`Some(None)`: none bound, or it has expired).
    pub fn plan_limit(&self, prefix: &AccountPrefix, now: Timestamp) -> Option<Option<u32>> {
        let accounts = read(&self.accounts);
        accounts.by_prefix.get(prefix)?.plan_limit(now.as_millis())
    }

    /// Looks up `hash` and, if it authenticates at `now`, records the use and returns the
    /// record. The use is remembered in memory only; see [`TokenIndex::pending_uses`].
    pub fn authenticate(&self, hash: &TokenHash, now: Timestamp) -> Option<Authenticated> {
        let shard = read(self.shard(hash));
        let entry = shard.get(hash)?;
        let now_ms = now.as_millis();
        if entry.expires <= now_ms {
            return None;
        }
        let found = entry.resolve(now_ms)?;
        if let Principal::Operator { active: false, .. } = found.record.principal {
            return None;
        }
        // Second resolution is plenty for `last_used_at`, and skipping the store keeps
        // the cache line shared between cores under load.
        if now_ms >= (entry.last_used.load(Ordering::Relaxed) & !UNSAVED) + 1000 {
            entry.last_used.store(now_ms | UNSAVED, Ordering::Relaxed);
        }
        Some(found)
    }

    /// Uses not yet persisted. Call [`TokenIndex::mark_persisted`] with them once the
    /// store has written them.
    pub fn pending_uses(&self) -> Vec<PendingUse> {
        let mut pending = Vec::new();
        for shard in &self.shards {
            for (hash, entry) in read(shard).iter() {
                let used = entry.last_used.load(Ordering::Relaxed);
                if used & UNSAVED != 0 {
                    pending.push(PendingUse {
                        hash: *hash,
                        at: Timestamp::from_millis(used & !UNSAVED),
                    });
                }
            }
        }
        pending
    }

    /// Clears the unsaved mark of each use, unless the token was used again since.
    pub fn mark_persisted(&self, uses: &[PendingUse]) {
        for used in uses {
            if let Some(entry) = read(self.shard(&used.hash)).get(&used.hash) {
                let at = used.at.as_millis();
                let _ = entry.last_used.compare_exchange(
                    at | UNSAVED,
                    at,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
        }
    }

    /// The in-memory `last_used` of `hash`, which may be newer than the stored one.
    pub fn last_used(&self, hash: &TokenHash) -> Option<Timestamp> {
        let ms = read(self.shard(hash))
            .get(hash)?
            .last_used
            .load(Ordering::Relaxed)
            & !UNSAVED;
        (ms > 0).then(|| Timestamp::from_millis(ms))
    }

    /// Writes the whole index (accounts, then entries) to `out` in the image format
    /// [`TokenIndex::read_image`] reads. The caller keeps writers out meanwhile.
    ///
    /// # Errors
    /// Writing to `out` failed.
    pub fn write_image(&self, out: &mut impl Write) -> io::Result<()> {
        // Accounts first, numbered in the order written; entries name them by number.
        let accounts = read(&self.accounts);
        let mut numbers: HashMap<*const AccountSlot, u32> =
            HashMap::with_capacity(accounts.by_prefix.len());
        out.write_all(&(accounts.by_prefix.len() as u64).to_le_bytes())?;
        for slot in accounts.by_prefix.values() {
            let number = u32::try_from(numbers.len())
                .map_err(|_| io::Error::other("more than 2^32 accounts"))?;
            numbers.insert(Arc::as_ptr(slot), number);
            let prefix = slot.prefix.as_str().as_bytes();
            out.write_all(&[prefix.len() as u8])?;
            out.write_all(prefix)?;
            out.write_all(&slot.state.load(Ordering::Acquire).to_le_bytes())?;
            out.write_all(&slot.license_expires.load(Ordering::Acquire).to_le_bytes())?;
        }
        // A token of a deleted account (none should be left) is not saved.
        let owner = |entry: &IndexEntry| match &entry.account {
            Some(slot) => numbers.get(&Arc::as_ptr(slot)).copied(),
            None => Some(OPERATOR_OWNER),
        };
        let total: usize = self
            .shards
            .iter()
            .map(|s| read(s).values().filter(|e| owner(e).is_some()).count())
            .sum();
        out.write_all(&(total as u64).to_le_bytes())?;
        for shard in &self.shards {
            for (hash, entry) in read(shard).iter() {
                let Some(owner) = owner(entry) else { continue };
                let mut record = [0u8; ENTRY_LEN];
                record[..32].copy_from_slice(hash.as_bytes());
                record[32..40].copy_from_slice(&entry.token_id.0.to_le_bytes());
                record[40..48].copy_from_slice(&entry.expires.to_le_bytes());
                // With its unsaved mark: a use not yet in the store stays pending.
                let used = entry.last_used.load(Ordering::Relaxed);
                record[48..56].copy_from_slice(&used.to_le_bytes());
                record[56..60].copy_from_slice(&owner.to_le_bytes());
                record[60] = entry.scopes.bits();
                record[61] = entry.flags;
                out.write_all(&record)?;
            }
        }
        Ok(())
    }

    /// Reads an index written by [`TokenIndex::write_image`] from `input`, which holds
    /// at most `len` bytes. Every value is checked; a bad one is an `InvalidData` error,
    /// never a wrong entry, and no count makes it reserve more than `len` allows.
    ///
    /// # Errors
    /// `input` failed, ended early, or holds a value that cannot be right.
    pub fn read_image(input: &mut impl Read, len: u64) -> io::Result<TokenIndex> {
        /// The fewest bytes an account takes in the image: length, 3-byte prefix, state,
        /// license expiry.
        const MIN_ACCOUNT_LEN: u64 = 1 + AccountPrefix::MIN_LEN as u64 + 8 + 8;
        let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
        let mut u64_buf = [0u8; 8];
        input.read_exact(&mut u64_buf)?;
        let n_accounts = u64::from_le_bytes(u64_buf);
        if n_accounts > len / MIN_ACCOUNT_LEN {
            return Err(invalid("account count"));
        }
        let mut slots = Vec::with_capacity(n_accounts as usize);
        let mut accounts = Accounts::default();
        for _ in 0..n_accounts {
            let mut len = [0u8; 1];
            input.read_exact(&mut len)?;
            let mut prefix = [0u8; AccountPrefix::MAX_LEN];
            let prefix = &mut prefix[..usize::from(len[0]).min(AccountPrefix::MAX_LEN)];
            input.read_exact(prefix)?;
            let prefix = std::str::from_utf8(prefix)
                .ok()
                .and_then(|text| AccountPrefix::parse(text).ok())
                .ok_or_else(|| invalid("account prefix"))?;
            input.read_exact(&mut u64_buf)?;
            let state = u64::from_le_bytes(u64_buf);
            if state != SLOT_UNKNOWN && decode_limit(state).is_none() {
                return Err(invalid("account state"));
            }
            input.read_exact(&mut u64_buf)?;
            let license_expires = u64::from_le_bytes(u64_buf);
            let slot = AccountSlot::new(prefix, state, license_expires);
            if accounts.by_prefix.insert(prefix, slot.clone()).is_some() {
                return Err(invalid("account listed twice"));
            }
            if state != SLOT_UNKNOWN {
                accounts.count += 1;
            }
            slots.push(slot);
        }
        input.read_exact(&mut u64_buf)?;
        let n_entries = u64::from_le_bytes(u64_buf);
        if n_entries > len / ENTRY_LEN as u64 {
            return Err(invalid("entry count"));
        }
        let index = TokenIndex::with_capacity(n_entries as usize);
        *write(&index.accounts) = accounts;
        let mut shards: Vec<_> = index.shards.iter().map(write).collect();
        let mut record = [0u8; ENTRY_LEN];
        for _ in 0..n_entries {
            input.read_exact(&mut record)?;
            let field =
                |at: usize| u64::from_le_bytes(record[at..at + 8].try_into().unwrap_or_default());
            let hash = TokenHash::from_bytes(record[..32].try_into().unwrap_or_default());
            let owner = u32::from_le_bytes(record[56..60].try_into().unwrap_or_default());
            let account = match owner {
                OPERATOR_OWNER => None,
                n => Some(
                    slots
                        .get(n as usize)
                        .ok_or_else(|| invalid("entry owner"))?
                        .clone(),
                ),
            };
            let scopes = Scopes::from_bits(record[60]).ok_or_else(|| invalid("entry scopes"))?;
            let flags = record[61];
            if flags & !(OP_ACTIVE | OP_WRITE | GRACE) != 0
                || (account.is_some() && flags & (OP_ACTIVE | OP_WRITE) != 0)
            {
                return Err(invalid("entry kind"));
            }
            let entry = IndexEntry {
                token_id: TokenId(field(32)),
                expires: field(40),
                last_used: AtomicU64::new(field(48)),
                account,
                scopes,
                flags,
            };
            let shard = usize::from(hash.as_bytes()[8]) % N_SHARDS;
            entry.count(1);
            if shards[shard].insert(hash, entry).is_some() {
                return Err(invalid("entry listed twice"));
            }
        }
        drop(shards);
        Ok(index)
    }
}

/// Bytes of one entry in the image: hash 32, token id 8, expiry 8, last use 8, owner 4,
/// scopes 1, flags 1 (operator bits, grace alias).
const ENTRY_LEN: usize = 62;
/// The owner number of an operator token's entry.
const OPERATOR_OWNER: u32 = u32::MAX;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scope;

    fn record(expires_at: Option<Timestamp>, principal: Principal) -> AuthRecord {
        AuthRecord {
            token_id: TokenId(1),
            principal,
            scopes: Scopes::only(Scope::Api),
            expires_at,
            grace: false,
        }
    }

    fn acme() -> AccountPrefix {
        AccountPrefix::parse("acme").unwrap()
    }

    #[test]
    fn entries_stay_small() {
        // The bound that makes a million tokens fit the memory target; see the module doc.
        assert_eq!(std::mem::size_of::<IndexEntry>(), 40);
    }

    #[test]
    fn index_refuses_expired_and_inactive_tokens() {
        let index = TokenIndex::default();
        let account = Principal::Account(acme());
        let live = TokenHash::of("live");
        let expiring = TokenHash::of("expiring");
        let inactive = TokenHash::of("inactive");
        index.insert(live, record(None, account), None);
        index.insert(
            expiring,
            record(Some(Timestamp::from_secs(100)), account),
            None,
        );
        let operator = Principal::Operator {
            active: false,
            write: true,
        };
        index.insert(inactive, record(None, operator), None);
        let at = Timestamp::from_secs;
        assert!(index.authenticate(&live, at(1000)).is_some());
        assert!(index.authenticate(&expiring, at(99)).is_some());
        assert!(index.authenticate(&expiring, at(100)).is_none());
        assert!(index.authenticate(&inactive, at(1)).is_none());
        assert_eq!(index.get(&inactive), Some(record(None, operator)));
        assert!(
            index
                .authenticate(&TokenHash::of("unknown"), at(1))
                .is_none()
        );
    }

    #[test]
    fn uses_are_pending_until_marked_persisted() {
        let index = TokenIndex::default();
        let hash = TokenHash::of("t");
        index.insert(hash, record(None, Principal::Account(acme())), None);
        assert!(index.pending_uses().is_empty());
        index.authenticate(&hash, Timestamp::from_secs(5));
        let pending = index.pending_uses();
        assert_eq!(
            pending,
            vec![PendingUse {
                hash,
                at: Timestamp::from_secs(5)
            }]
        );
        // A use after the snapshot of pending uses keeps the token pending.
        index.authenticate(&hash, Timestamp::from_secs(7));
        index.mark_persisted(&pending);
        assert_eq!(index.pending_uses().len(), 1);
        index.mark_persisted(&index.pending_uses());
        assert!(index.pending_uses().is_empty());
        assert_eq!(index.last_used(&hash), Some(Timestamp::from_secs(7)));
        // Replacing the record (a changed token) keeps a newer unsaved use pending.
        index.authenticate(&hash, Timestamp::from_secs(9));
        let stored = Some(Timestamp::from_secs(7));
        index.insert(hash, record(None, Principal::Account(acme())), stored);
        assert_eq!(index.last_used(&hash), Some(Timestamp::from_secs(9)));
        assert_eq!(index.pending_uses().len(), 1);
    }

    #[test]
    fn accounts_and_their_tokens() {
        let index = TokenIndex::default();
        let hash = TokenHash::of("t");
        let at = Timestamp::from_secs;
        assert_eq!(index.plan_limit(&acme(), at(1)), None);
        index.set_account(acme(), None, None);
        index.insert(hash, record(None, Principal::Account(acme())), None);
        assert_eq!(index.plan_limit(&acme(), at(1)), Some(None));
        index.set_account(acme(), Some(7), None);
        assert_eq!(index.plan_limit(&acme(), at(1)), Some(Some(7)));
        // A plan license counts until it expires, then the account has no plan limit.
        index.set_account(acme(), Some(9), Some(at(10)));
        assert_eq!(index.plan_limit(&acme(), at(9)), Some(Some(9)));
        assert_eq!(index.plan_limit(&acme(), at(10)), Some(None));
        let found = index.authenticate(&hash, at(11)).unwrap();
        assert_eq!(found.plan_limit, Some(None));
        let found = index.authenticate(&hash, at(5)).unwrap();
        assert_eq!(found.plan_limit, Some(Some(9)));
        index.set_account(acme(), Some(7), None);
        assert_eq!(index.account_count(), 1);
        // Deleting the account disables its tokens even before they are removed.
        index.remove_account(&acme());
        assert_eq!(index.account_count(), 0);
        assert_eq!(index.plan_limit(&acme(), at(1)), None);
        assert!(index.authenticate(&hash, Timestamp::from_secs(1)).is_none());
        // The same prefix again is a new account; the old entry stays dead.
        index.set_account(acme(), None, None);
        assert!(index.authenticate(&hash, Timestamp::from_secs(1)).is_none());
        let again = TokenHash::of("again");
        index.insert(again, record(None, Principal::Account(acme())), None);
        assert!(
            index
                .authenticate(&again, Timestamp::from_secs(1))
                .is_some()
        );
    }

    #[test]
    fn an_image_reads_back_the_same_index() {
        let index = TokenIndex::default();
        let beta = AccountPrefix::parse("beta").unwrap();
        index.set_account(acme(), Some(3), Some(Timestamp::from_secs(50)));
        index.set_account(beta, None, None);
        let hashes: Vec<TokenHash> = (0..500).map(|i| TokenHash::of(&i.to_string())).collect();
        for (i, hash) in hashes.iter().enumerate() {
            let principal = match i % 3 {
                0 => Principal::Account(acme()),
                1 => Principal::Account(beta),
                _ => Principal::Operator {
                    active: i % 2 == 0,
                    write: i % 5 == 0,
                },
            };
            let expires = (i % 4 == 0).then(|| Timestamp::from_secs(i as u64));
            let used = (i % 7 == 0).then(|| Timestamp::from_millis(i as u64 * 1001));
            let mut entry = record(expires, principal);
            entry.grace = i % 6 == 1;
            index.insert(*hash, entry, used);
        }
        let mut image = Vec::new();
        index.write_image(&mut image).unwrap();
        let len = image.len() as u64;
        let back = TokenIndex::read_image(&mut image.as_slice(), len).unwrap();
        assert_eq!(back.len(), 500);
        assert_eq!(back.account_count(), 2);
        let before = Timestamp::from_secs(49);
        let after = Timestamp::from_secs(50);
        assert_eq!(back.plan_limit(&acme(), before), Some(Some(3)));
        assert_eq!(back.plan_limit(&acme(), after), Some(None), "expiry kept");
        assert_eq!(back.plan_limit(&beta, before), Some(None));
        for hash in &hashes {
            assert_eq!(back.get(hash), index.get(hash));
            assert_eq!(back.last_used(hash), index.last_used(hash));
        }
        // Every truncation is an error, never a smaller index.
        for cut in [0, 7, 8, 20, image.len() - 1] {
            assert!(
                TokenIndex::read_image(&mut &image[..cut], cut as u64).is_err(),
                "cut at {cut}"
            );
        }
        // A bad scope byte in the first entry is refused.
        let first_entry = image.len() - 500 * ENTRY_LEN;
        let mut bad = image.clone();
        bad[first_entry + 60] = 0xff;
        assert!(TokenIndex::read_image(&mut bad.as_slice(), len).is_err());
        // A count larger than the bytes could hold is refused before anything is
        // reserved; so is an account state that names no limit.
        let mut huge = image.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(TokenIndex::read_image(&mut huge.as_slice(), len).is_err());
        let mut zero_state = image.clone();
        let state_at = 8 + 1 + usize::from(image[8]);
        zero_state[state_at..state_at + 8].copy_from_slice(&0u64.to_le_bytes());
        assert!(TokenIndex::read_image(&mut zero_state.as_slice(), len).is_err());
    }
}
