//! Reports (SPEC §10): moving the in-memory counts ([`Counts`]) into the stored daily
//! rollups, and reading rollups as the report routes will (stored + not yet flushed).
//!
//! Both are blocking (a store write, a range read, and the counts' settle lock, which a
//! flush holds across its write): call them from `spawn_blocking`.

use crate::model::{AccountPrefix, Day, DayRollup, ProductId};
use crate::store::{Store, StoreError};
use crate::update::counts::Counts;

/// Adds every delta counted since the last flush to the stored rollups (and the
/// downloads to their files), in one store transaction, and waits until it is durable.
/// Returns how many records were written.
/// The server calls this every `report_flush_every` and at graceful shutdown.
///
/// # Errors
/// The store refused or failed the write. When it refused before writing anything (a
/// full disk, a failed store) the deltas are back in memory, added to whatever was
/// counted meanwhile, for the next flush. When the engine failed mid-write, or the write
/// committed but could not be made durable, they are not put back (they may be in the
/// store already; putting them back could count them twice): at most one flush's counts
/// are lost, as after a crash.
pub fn flush(store: &Store, counts: &Counts) -> Result<usize, StoreError> {
    let _settled = counts.settle();
    let deltas = counts.drain();
    if deltas.is_empty() {
        return Ok(0);
    }
    let pending = match store.add_counts(&deltas.days, &deltas.files) {
        Ok(pending) => pending,
        Err(err) => {
            // Refused before anything was written (a full disk, a failed store): the
            // deltas go back for the next flush. An engine error may come after a
            // partial commit: then they are dropped (and logged by the caller), since
            // writing them again could count them twice.
            if matches!(
                err,
                StoreError::NoSpace { .. } | StoreError::Failed | StoreError::Domain(_)
            ) {
                counts.restore(deltas);
            }
            counts.flushed(false);
            return Err(err);
        }
    };
    let written = pending.durable_blocking();
    counts.flushed(written.is_ok());
    written
}

/// `account`'s daily rollups of `product` from `from` to `to` (both included), in day
/// order, stored and unflushed added together: what `GET /api/v1/reports/downloads` and
/// `…/licenses` will answer. Days with nothing counted are absent.
///
/// # Errors
/// The store failed.
pub fn daily(
    store: &Store,
    counts: &Counts,
    account: &AccountPrefix,
    product: ProductId,
    from: Day,
    to: Day,
) -> Result<Vec<(Day, DayRollup)>, StoreError> {
    // No flush between the two reads: each count is in exactly one of them.
    let _settled = counts.settle();
    let mut days = store.rollups(account, product, from, to)?;
    for (day, delta) in counts.unflushed(account, product, from, to) {
        match days.binary_search_by_key(&day, |(d, _)| *d) {
            Ok(at) => days[at].1.add(&delta),
            Err(at) => days.insert(at, (day, delta)),
        }
    }
    Ok(days)
}

/// `account`'s rollup of `product` on `day` (stored + unflushed; empty if nothing was
/// counted).
///
/// # Errors
/// The store failed.
pub fn day(
    store: &Store,
    counts: &Counts,
    account: &AccountPrefix,
    product: ProductId,
    day: Day,
) -> Result<DayRollup, StoreError> {
    Ok(daily(store, counts, account, product, day, day)?
        .pop()
        .map(|(_, rollup)| rollup)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FileId, NewAccount, Timestamp};
    use crate::update::answer::LicenseCode;

    fn store_with(prefixes: &[&str]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for prefix in prefixes {
            let new = NewAccount::parse("Acme", "dev@acme.io", Some(prefix)).unwrap();
            store
                .create_account(new, Timestamp::from_secs(1))
                .unwrap()
                .durable_blocking()
                .unwrap();
        }
        (dir, store)
    }

    fn prefix(text: &str) -> AccountPrefix {
        AccountPrefix::parse(text).unwrap()
    }

    /// 23:59:59 UTC of day 20_000, and the first second of the next.
    const LAST_SECOND: Timestamp = Timestamp::from_secs(20_001 * 86_400 - 1);
    const NEXT_DAY: Timestamp = Timestamp::from_secs(20_001 * 86_400);

    fn stored(store: &Store, account: &str, product: u64) -> Vec<(Day, DayRollup)> {
        store
            .rollups(&prefix(account), ProductId(product), Day(0), Day(u32::MAX))
            .unwrap()
    }

    #[test]
    fn flushing_twice_adds_up_across_a_day_boundary() {
        let (_dir, store) = store_with(&["acme"]);
        let counts = Counts::default();
        let acme = prefix("acme");
        for _ in 0..3 {
            counts.check(acme, ProductId(7), None, LAST_SECOND);
        }
        counts.download(acme, ProductId(7), FileId(70), LAST_SECOND);
        assert_eq!(flush(&store, &counts).unwrap(), 1);
        assert!(counts.drain().is_empty(), "memory is empty after a flush");
        counts.check(acme, ProductId(7), Some(LicenseCode::Expired), LAST_SECOND);
        counts.check(acme, ProductId(7), None, NEXT_DAY);
        counts.activation(LicenseCode::Valid, Some((acme, ProductId(7))), NEXT_DAY);
        assert_eq!(flush(&store, &counts).unwrap(), 2);
        assert_eq!(flush(&store, &counts).unwrap(), 0, "nothing new");
        let days = stored(&store, "acme", 7);
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].0, Day(20_000));
        assert_eq!((days[0].1.checks, days[0].1.downloads), (4, 1));
        assert_eq!(days[0].1.validations[3], 1, "expired");
        assert_eq!(days[1].0, Day(20_001));
        assert_eq!((days[1].1.checks, days[1].1.activations[0]), (1, 1));
        assert_eq!(counts.flush_totals(), (2, 0));
    }

    #[test]
    fn a_failed_flush_puts_the_deltas_back_and_the_next_one_writes_them() {
        let (_dir, store) = store_with(&["acme"]);
        let counts = Counts::default();
        let acme = prefix("acme");
        counts.check(acme, ProductId(7), None, LAST_SECOND);
        counts.check(acme, ProductId(7), None, LAST_SECOND);
        store.set_reserve(u64::MAX);
        let err = flush(&store, &counts).unwrap_err();
        assert!(matches!(err, StoreError::NoSpace { .. }), "{err}");
        assert!(stored(&store, "acme", 7).is_empty());
        assert_eq!(counts.flush_totals(), (0, 1));
        // Still readable meanwhile, and counting goes on.
        let today = Day::of(LAST_SECOND);
        assert_eq!(
            day(&store, &counts, &acme, ProductId(7), today)
                .unwrap()
                .checks,
            2
        );
        counts.check(acme, ProductId(7), None, LAST_SECOND);
        store.set_reserve(0);
        assert_eq!(flush(&store, &counts).unwrap(), 1);
        assert_eq!(stored(&store, "acme", 7)[0].1.checks, 3);
        assert_eq!(counts.flush_totals(), (1, 1));
    }

    #[test]
    fn reads_add_stored_and_unflushed_per_account() {
        let (_dir, store) = store_with(&["acme", "other"]);
        let counts = Counts::default();
        let (acme, other) = (prefix("acme"), prefix("other"));
        counts.check(acme, ProductId(7), None, LAST_SECOND);
        counts.check(other, ProductId(7), None, LAST_SECOND);
        flush(&store, &counts).unwrap();
        counts.check(acme, ProductId(7), None, LAST_SECOND);
        counts.download(acme, ProductId(7), FileId(70), NEXT_DAY);
        let days = daily(&store, &counts, &acme, ProductId(7), Day(0), Day(u32::MAX)).unwrap();
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].1.checks, 2, "one stored, one in memory");
        assert_eq!((days[1].0, days[1].1.downloads), (Day(20_001), 1));
        let other_day = day(&store, &counts, &other, ProductId(7), Day(20_000)).unwrap();
        assert_eq!(other_day.checks, 1);
        assert_eq!(
            daily(
                &store,
                &counts,
                &acme,
                ProductId(7),
                Day(20_001),
                Day(20_001)
            )
            .unwrap(),
            vec![(Day(20_001), days[1].1)]
        );
    }
}
