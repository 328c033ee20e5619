//! Typed access to the trees: one transaction over every tree ([`Tx`], through
//! `Store::transact`), and the plain reads and scans outside transactions. Every access
//! names a [`Table`] and passes a typed key, so a tree cannot be read with another
//! tree's key or value type; undecodable bytes become `StoreError::Corrupt` naming the
//! tree and the key.

use super::blobs::{Blobs, Staged};
use super::codec::{Count, Value};
use super::key::{Key, MetaKey};
use super::schema::{BLOB_REFS, META, Table, TreeId};
use super::{Store, StoreError};
use crate::model::BlobHash;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use std::cell::RefCell;
use std::fmt;

/// Keys written by a transaction: `(tree, key bytes)`.
pub(super) type Touched = Vec<(TreeId, Vec<u8>)>;

pub(super) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// Aborts the transaction with `err` (nothing is written).
pub(super) fn abort<T>(err: impl Into<StoreError>) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(err.into()))
}

pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// A corrupt value or key in `tree` at `key` (logged once, here).
pub(super) fn corrupt(tree: TreeId, key: &[u8], reason: impl fmt::Display) -> StoreError {
    let err = StoreError::Corrupt {
        tree: tree.name(),
        key: hex(key),
        reason: reason.to_string(),
    };
    tracing::error!(error = %err, "corrupt value in store");
    err
}

/// Decodes one stored entry of `table`.
pub(super) fn decode_entry<K: Key, V: Value>(
    table: &Table<K, V>,
    key: &[u8],
    value: &[u8],
) -> Result<(K, V), StoreError> {
    let k = K::from_bytes(key).map_err(|why| corrupt(table.id(), key, why))?;
    let v = V::decode_value(value).map_err(|why| corrupt(table.id(), key, why))?;
    Ok((k, v))
}

fn decode_value<K: Key, V: Value>(
    table: &Table<K, V>,
    key: &[u8],
    value: &[u8],
) -> Result<V, StoreError> {
    V::decode_value(value).map_err(|why| corrupt(table.id(), key, why))
}

/// Typed access to every tree inside one transaction. When a backup is running, the
/// keys written are noted (see `backup`), so it can copy them again.
pub(super) struct Tx<'a> {
    views: &'a [TransactionalTree],
    touched: Option<&'a RefCell<Touched>>,
    /// Blobs whose last reference this transaction dropped (deleted once it is durable).
    dropped: &'a RefCell<Vec<BlobHash>>,
    blobs: &'a Blobs,
}

impl Tx<'_> {
    fn view(&self, tree: TreeId) -> &TransactionalTree {
        &self.views[tree as usize]
    }

    fn touch(&self, tree: TreeId, key: &[u8]) {
        if let Some(touched) = self.touched {
            touched.borrow_mut().push((tree, key.to_vec()));
        }
    }

    pub(super) fn get<K: Key, V: Value>(
        &self,
        table: &Table<K, V>,
        key: &K,
    ) -> TxResult<Option<V>> {
        let key = key.to_bytes();
        match self.view(table.id()).get(key.as_ref())? {
            None => Ok(None),
            Some(bytes) => match decode_value(table, key.as_ref(), &bytes) {
                Ok(value) => Ok(Some(value)),
                Err(err) => abort(err),
            },
        }
    }

    pub(super) fn contains<K: Key, V: Value>(
        &self,
        table: &Table<K, V>,
        key: &K,
    ) -> TxResult<bool> {
        Ok(self
            .view(table.id())
            .get(key.to_bytes().as_ref())?
            .is_some())
    }

    pub(super) fn put<K: Key, V: Value>(
        &self,
        table: &Table<K, V>,
        key: &K,
        value: &V,
    ) -> TxResult<()> {
        let key = key.to_bytes();
        self.touch(table.id(), key.as_ref());
        self.view(table.id())
            .insert(key.as_ref(), value.encode_value())?;
        Ok(())
    }

    pub(super) fn remove<K: Key, V: Value>(&self, table: &Table<K, V>, key: &K) -> TxResult<()> {
        self.take(table, key).map(drop)
    }

    /// Removes the entry and returns what it held.
    pub(super) fn take<K: Key, V: Value>(
        &self,
        table: &Table<K, V>,
        key: &K,
    ) -> TxResult<Option<V>> {
        let key = key.to_bytes();
        self.touch(table.id(), key.as_ref());
        match self.view(table.id()).remove(key.as_ref())? {
            None => Ok(None),
            Some(bytes) => match decode_value(table, key.as_ref(), &bytes) {
                Ok(value) => Ok(Some(value)),
                Err(err) => abort(err),
            },
        }
    }

    /// Adds a reference to a blob stored and pinned by `staged` (an upload, or
    /// `Blobs::pin`): the pin is what keeps the blob from being deleted before this
    /// transaction commits. Returns the new count.
    pub(super) fn add_ref(&self, staged: &Staged) -> TxResult<u64> {
        let hash = staged.hash();
        let count = self.get(&BLOB_REFS, &hash)?.map_or(0, |c| c.0) + 1;
        self.put(&BLOB_REFS, &hash, &Count(count))?;
        Ok(count)
    }

    /// Drops a reference to a blob; at the last one, the blob is deleted once this
    /// transaction is durable (never before). Returns the count left. Dropping a
    /// reference the blob does not have aborts: the caller's records are inconsistent.
    pub(super) fn drop_ref(&self, hash: &BlobHash) -> TxResult<u64> {
        match self.get(&BLOB_REFS, hash)? {
            None | Some(Count(0)) => abort(StoreError::Bug(format!(
                "dropping a reference to blob {hash}, which has none"
            ))),
            Some(Count(1)) => {
                self.remove(&BLOB_REFS, hash)?;
                // Marked before the commit can make the count 0 visible, so that no
                // deletion acts on it before the commit is durable (see `blobs`).
                self.blobs.mark_dropping(*hash);
                self.dropped.borrow_mut().push(*hash);
                Ok(0)
            }
            Some(Count(n)) => {
                self.put(&BLOB_REFS, hash, &Count(n - 1))?;
                Ok(n - 1)
            }
        }
    }

    /// Records that `id` is taken, in the same transaction as the record using it.
    pub(super) fn take_id(&self, id: u64) -> TxResult<()> {
        self.put(
            &META,
            &MetaKey::NextId,
            &super::codec::Raw((id + 1).to_be_bytes().to_vec()),
        )
    }
}

impl Store {
    pub(super) fn tree(&self, tree: TreeId) -> &sled::Tree {
        &self.trees[tree as usize]
    }

    /// One transaction over every tree. `f` may run more than once: no side effects.
    /// Also writes a fresh stamp ([`MetaKey::Stamp`]), so no older index snapshot
    /// matches the store once this commits. Call under the write lock.
    pub(super) fn transact<T>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T, StoreError> {
        let stamp = self.next_stamp();
        let touched = RefCell::new(Vec::new());
        let dropped = RefCell::new(Vec::new());
        let journaling = self.journal.is_active();
        let result =
            <[sled::Tree] as Transactional<StoreError>>::transaction(&self.trees[..], |views| {
                touched.borrow_mut().clear();
                dropped.borrow_mut().clear();
                let tx = Tx {
                    views,
                    touched: journaling.then_some(&touched),
                    dropped: &dropped,
                    blobs: &self.blobs,
                };
                let value = f(&tx)?;
                tx.put(&META, &MetaKey::Stamp, &super::codec::Raw(stamp.to_vec()))?;
                Ok(value)
            })
            .map_err(|err| match err {
                TransactionError::Abort(err) => err,
                TransactionError::Storage(err) => err.into(),
            });
        // Committed or not (an engine error leaves it unknown), the blobs it dropped wait
        // for a durable write and are deleted only if their count is still 0 then.
        self.blobs.settle_dropped(dropped.into_inner());
        let value = result?;
        if journaling {
            self.journal.note(touched.into_inner());
        }
        Ok(value)
    }

    /// The value of `key` in `table`.
    pub(super) fn read<K: Key, V: Value>(
        &self,
        table: &Table<K, V>,
        key: &K,
    ) -> Result<Option<V>, StoreError> {
        let key = key.to_bytes();
        match self.tree(table.id()).get(key.as_ref())? {
            None => Ok(None),
            Some(bytes) => decode_value(table, key.as_ref(), &bytes).map(Some),
        }
    }

    pub(super) fn has<K: Key, V: Value>(
        &self,
        table: &Table<K, V>,
        key: &K,
    ) -> Result<bool, StoreError> {
        Ok(self
            .tree(table.id())
            .contains_key(key.to_bytes().as_ref())?)
    }

    /// The entries of `table` whose key starts with `prefix` (built by `key`), in key
    /// order.
    pub(super) fn scan<'s, K: Key, V: Value>(
        &'s self,
        table: &'s Table<K, V>,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(K, V), StoreError>> + 's {
        self.tree(table.id()).scan_prefix(prefix).map(move |entry| {
            let (key, value) = entry?;
            decode_entry(table, &key, &value)
        })
    }

    /// The keys of `table` that start with `prefix`, in order (values not decoded).
    pub(super) fn scan_keys<'s, K: Key, V: Value>(
        &'s self,
        table: &'s Table<K, V>,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<K, StoreError>> + 's {
        self.tree(table.id())
            .scan_prefix(prefix)
            .keys()
            .map(move |key| {
                let key = key?;
                K::from_bytes(&key).map_err(|why| corrupt(table.id(), &key, why))
            })
    }

    /// Number of entries in `table` (a scan of the tree in sled).
    #[cfg(test)]
    pub(super) fn count<K: Key, V: Value>(&self, table: &Table<K, V>) -> usize {
        self.tree(table.id()).len()
    }
}
