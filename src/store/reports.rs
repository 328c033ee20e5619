//! The reports aggregate (SPEC §10): the daily rollups, one `DayRollup` record per
//! account, product and UTC day in the `rollup` tree.
//!
//! Nothing on the request path writes here: checks, downloads, validations and
//! activations are counted in memory (`update::counts`), and the background flush
//! (`service::reports::flush`) adds what was counted since the last one with
//! [`Store::add_counts`], a read-modify-write of every touched day (and of the version
//! record of every downloaded file, whose `downloads` it adds to) in one transaction.
//! Rollups go with their account (`delete_account`) and stay when their product is
//! deleted: they are history, the report routes may still show it, and a product id is
//! never given out again, so they cannot be mistaken for another product's.

use super::key::{Key, owner, rollups_of};
use super::schema::{ACCOUNTS, FILE_HOMES, ROLLUPS, VERSIONS};
use super::tx::decode_entry;
use super::{Pending, Store, StoreError};
use crate::model::{AccountPrefix, Day, DayRollup, FileId, ProductDay, ProductId};

impl Store {
    /// [`Store::add_counts`] of rollup deltas alone.
    ///
    /// # Errors
    /// As [`Store::add_counts`].
    pub fn add_rollups(
        &self,
        deltas: &[(ProductDay, DayRollup)],
    ) -> Result<Pending<'_, usize>, StoreError> {
        self.add_counts(deltas, &[])
    }

    /// Adds `deltas` to the stored rollups and `downloads` to their files' `downloads`, in
    /// one transaction: each day's record (and each file's version record) is read, added
    /// to and written back. Deltas of an account that no longer exists are dropped (its
    /// rollups went with it), and so are the downloads of a file deleted since. Returns
    /// how many records were written. Blocking: call from `spawn_blocking`.
    ///
    /// Does not move [`Store::generation`]: no cached catalogue view depends on the
    /// rollups, nor on a file's `downloads` (the views of the update checks never show
    /// it; the routes that do read the version record).
    ///
    /// # Errors
    /// The store refused or failed the write; nothing was added.
    pub fn add_counts(
        &self,
        deltas: &[(ProductDay, DayRollup)],
        downloads: &[((AccountPrefix, FileId), u64)],
    ) -> Result<Pending<'_, usize>, StoreError> {
        self.write_outside_caches(|| {
            if deltas.is_empty() && downloads.is_empty() {
                return Ok(0);
            }
            self.transact(|tx| {
                let mut written = 0;
                for (at, delta) in deltas {
                    if delta.is_empty() || !tx.contains(&ACCOUNTS, &at.account)? {
                        continue;
                    }
                    let mut stored = tx.get(&ROLLUPS, at)?.unwrap_or_default();
                    stored.add(delta);
                    tx.put(&ROLLUPS, at, &stored)?;
                    written += 1;
                }
                for ((account, file), n) in downloads {
                    let Some(home) = tx.get(&FILE_HOMES, file)? else {
                        continue;
                    };
                    if home.account != *account || *n == 0 {
                        continue;
                    }
                    let key = super::catalog::version_key(&home);
                    let Some(mut release) = tx.get(&VERSIONS, &key)? else {
                        continue;
                    };
                    let Some(record) = release.files.iter_mut().find(|f| f.id == *file) else {
                        continue;
                    };
                    record.downloads = record.downloads.saturating_add(*n);
                    tx.put(&VERSIONS, &key, &release)?;
                    written += 1;
                }
                Ok(written)
            })
        })
    }

    /// `account`'s stored rollups of `product` from day `from` to day `to` (both
    /// included), in day order; days with nothing counted are absent.
    ///
    /// # Errors
    /// The store failed, or a record does not decode.
    pub fn rollups(
        &self,
        account: &AccountPrefix,
        product: ProductId,
        from: Day,
        to: Day,
    ) -> Result<Vec<(Day, DayRollup)>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let key = |day| ProductDay {
            account: *account,
            product,
            day,
        };
        let start = key(from).to_bytes().as_ref().to_vec();
        let end = key(to).to_bytes().as_ref().to_vec();
        debug_assert!(start.starts_with(&rollups_of(account, product)));
        self.tree(ROLLUPS.id())
            .range(start..=end)
            .map(|entry| {
                let (key, value) = entry?;
                let (at, rollup) = decode_entry(&ROLLUPS, &key, &value)?;
                Ok((at.day, rollup))
            })
            .collect()
    }

    /// The keys of every rollup of `account` (for deleting them with it). Call under the
    /// write lock.
    pub(super) fn rollup_keys_of(
        &self,
        account: &AccountPrefix,
    ) -> Result<Vec<ProductDay>, StoreError> {
        self.scan_keys(&ROLLUPS, &owner(Some(account))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn at(account: AccountPrefix, product: u64, day: u32) -> ProductDay {
        ProductDay {
            account,
            product: ProductId(product),
            day: Day(day),
        }
    }

    fn checks(n: u64) -> DayRollup {
        DayRollup {
            checks: n,
            ..DayRollup::default()
        }
    }

    #[test]
    fn adding_twice_adds_up_and_days_stay_apart() {
        let (_dir, store, acme) = store_with_acme();
        let acme = acme.prefix;
        let mut first = checks(2);
        first.validations[3] = 1;
        store
            .add_rollups(&[(at(acme, 7, 100), first), (at(acme, 7, 101), checks(1))])
            .unwrap()
            .durable_blocking()
            .unwrap();
        let mut second = DayRollup {
            checks: 3,
            downloads: 4,
            ..DayRollup::default()
        };
        second.validations[3] = 2;
        second.activations[0] = 1;
        let generation = store.generation();
        let written = store
            .add_rollups(&[(at(acme, 7, 100), second), (at(acme, 8, 100), checks(9))])
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(written, 2);
        assert_eq!(store.generation(), generation, "no catalogue cache moves");
        let mut sum = DayRollup {
            checks: 5,
            downloads: 4,
            ..DayRollup::default()
        };
        sum.validations[3] = 3;
        sum.activations[0] = 1;
        assert_eq!(
            store
                .rollups(&acme, ProductId(7), Day(0), Day(u32::MAX))
                .unwrap(),
            vec![(Day(100), sum), (Day(101), checks(1))]
        );
        assert_eq!(
            store
                .rollups(&acme, ProductId(7), Day(101), Day(200))
                .unwrap(),
            vec![(Day(101), checks(1))]
        );
        assert_eq!(
            store
                .rollups(&acme, ProductId(7), Day(100), Day(100))
                .unwrap(),
            vec![(Day(100), sum)]
        );
        assert!(
            store
                .rollups(&acme, ProductId(7), Day(102), Day(101))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .rollups(&acme, ProductId(8), Day(0), Day(u32::MAX))
                .unwrap(),
            vec![(Day(100), checks(9))]
        );
    }

    #[test]
    fn accounts_see_only_their_rollups_and_take_them_along_when_deleted() {
        let (_dir, store, acme) = store_with_acme();
        let acme = acme.prefix;
        let (other, _) = store
            .create_account(new_account(Some("acmex")), now())
            .unwrap()
            .durable_blocking()
            .unwrap();
        let other = other.prefix;
        store
            .add_rollups(&[
                (at(acme, 7, 100), checks(1)),
                (at(acme, 9, 100), checks(5)),
                (at(other, 7, 100), checks(2)),
            ])
            .unwrap()
            .durable_blocking()
            .unwrap();
        let all = |account| {
            store
                .rollups(&account, ProductId(7), Day(0), Day(u32::MAX))
                .unwrap()
        };
        assert_eq!(all(acme), vec![(Day(100), checks(1))]);
        assert_eq!(all(other), vec![(Day(100), checks(2))]);
        store
            .delete_account(&acme)
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert!(all(acme).is_empty());
        assert!(store.rollup_keys_of(&acme).unwrap().is_empty());
        assert_eq!(all(other), vec![(Day(100), checks(2))], "untouched");
        assert_eq!(store.count(&ROLLUPS), 1);
        // Counts of the deleted account still in memory at its deletion are dropped.
        let written = store
            .add_rollups(&[
                (at(acme, 7, 101), checks(3)),
                (at(other, 7, 101), checks(1)),
            ])
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(written, 1);
        assert!(all(acme).is_empty());
    }

    #[test]
    fn downloads_of_a_file_the_store_does_not_hold_are_dropped_and_the_rest_is_written() {
        let (_dir, store, acme) = store_with_acme();
        let gone = ((acme.prefix, FileId(0x5eed)), 4);
        let written = store
            .add_counts(&[(at(acme.prefix, 7, 100), checks(1))], &[gone])
            .unwrap()
            .durable_blocking()
            .unwrap();
        assert_eq!(written, 1, "the rollup; no file to add to");
        assert_eq!(
            store
                .add_counts(&[], &[gone])
                .unwrap()
                .durable_blocking()
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .rollups(&acme.prefix, ProductId(7), Day(0), Day(u32::MAX))
                .unwrap(),
            vec![(Day(100), checks(1))]
        );
    }

    #[test]
    fn rollups_travel_in_a_backup() {
        let (dir, store, acme) = store_with_acme();
        let mut rollup = checks(4);
        rollup.activations[6] = 2;
        store
            .add_rollups(&[(at(acme.prefix, 7, 100), rollup)])
            .unwrap()
            .durable_blocking()
            .unwrap();
        let mut bytes = Vec::new();
        store.backup(&mut bytes, "now").unwrap();
        let target = dir.path().join("restored");
        let checked = super::super::backup::check(std::io::Cursor::new(bytes)).unwrap();
        super::super::backup::restore(&checked, &target).unwrap();
        std::fs::copy(
            dir.path().join(super::super::KEY_FILE),
            target.join(super::super::KEY_FILE),
        )
        .unwrap();
        let restored = Store::open(&target).unwrap();
        assert_eq!(
            restored
                .rollups(&acme.prefix, ProductId(7), Day(0), Day(u32::MAX))
                .unwrap(),
            vec![(Day(100), rollup)]
        );
    }

    #[test]
    fn a_refused_write_adds_nothing() {
        let (_dir, store, acme) = store_with_acme();
        store.set_reserve(u64::MAX);
        let err = store
            .add_rollups(&[(at(acme.prefix, 7, 100), checks(1))])
            .err()
            .expect("refused");
        assert!(matches!(err, StoreError::NoSpace { .. }), "{err}");
        store.set_reserve(0);
        assert!(
            store
                .rollups(&acme.prefix, ProductId(7), Day(0), Day(u32::MAX))
                .unwrap()
                .is_empty()
        );
    }
}
