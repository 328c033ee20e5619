//! Group commit: a write is acknowledged only once a flush that started after it has
//! finished, and every writer waiting at that moment shares that one flush.
//!
//! Writers get a sequence number when their transaction commits (in commit order, under
//! the store's write lock). To wait, a writer queues on a fair async mutex; whoever holds
//! it flushes everything written so far, so the writers queued behind find their number
//! already durable and return without flushing. One fsync covers a whole batch.

use super::StoreError;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub(super) struct GroupCommit {
    /// Sequence number of the last committed (in-memory) write.
    written: AtomicU64,
    /// Every write up to this number is on disk.
    durable: AtomicU64,
    /// Held by the one writer flushing now.
    leader: tokio::sync::Mutex<()>,
    /// Number of flushes performed (for metrics and tests).
    flushes: AtomicU64,
}

impl GroupCommit {
    /// Records a committed write; call under the store's write lock, after the commit.
    pub(super) fn note_write(&self) -> u64 {
        self.written.fetch_add(1, Ordering::AcqRel) + 1
    }

    fn is_durable(&self, seq: u64) -> bool {
        self.durable.load(Ordering::Acquire) >= seq
    }

    /// Waits until write `seq` is on disk, flushing if nobody else is.
    pub(super) async fn wait(&self, db: &sled::Db, seq: u64) -> Result<(), StoreError> {
        if self.is_durable(seq) {
            return Ok(());
        }
        let _leader = self.leader.lock().await;
        if self.is_durable(seq) {
            return Ok(());
        }
        let target = self.written.load(Ordering::Acquire);
        let db = db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|join| StoreError::Bug(format!("flush task failed: {join}")))??;
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.durable.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }

    /// The blocking form, for one-shot CLI commands with no runtime.
    pub(super) fn wait_blocking(&self, db: &sled::Db, seq: u64) -> Result<(), StoreError> {
        if self.is_durable(seq) {
            return Ok(());
        }
        let target = self.written.load(Ordering::Acquire);
        db.flush()?;
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.durable.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }

    /// Sequence number of the last committed (in-memory) write.
    pub(super) fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Every write up to this sequence number is on disk.
    pub(super) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    pub(super) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}
