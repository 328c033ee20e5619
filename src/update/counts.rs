//! Counting for reports (SPEC §8.1 item 4, §10) without a write on the request path:
//! update checks, downloads, license validations and activations, per account, product
//! and UTC day, added up in memory in a few shards (a count takes one uncontended lock).
//! `service::reports::flush` drains these deltas into the stored rollups
//! (`Store::add_counts`) on a blocking thread every `report_flush_every` (60 s) and at
//! graceful shutdown, putting them back if the write fails; `service::reports::daily`
//! reads stored + unflushed. Process-wide totals (`/metrics`) are atomics beside them.
//! Downloads are also counted per file: the flush adds them to each file's `downloads`
//! (SPEC §7 *File*) in the same transaction as the rollups.

use super::answer::LicenseCode;
use crate::model::report::OUTCOMES;
use crate::model::{AccountPrefix, Day, DayRollup, FileId, ProductDay, ProductId, Timestamp};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

const SHARDS: usize = 16;

// A rollup has one counter per license code; a new code is a new `DayRollup` version.
const _: () = assert!(LicenseCode::ALL.len() == OUTCOMES);

/// What a flush takes out of memory: the daily rollups' deltas, and the downloads per
/// file.
#[derive(Debug, Default, PartialEq)]
pub struct Drained {
    pub days: Vec<(ProductDay, DayRollup)>,
    pub files: Vec<((AccountPrefix, FileId), u64)>,
}

impl Drained {
    pub fn is_empty(&self) -> bool {
        self.days.is_empty() && self.files.is_empty()
    }
}

/// The counters.
#[derive(Debug)]
pub struct Counts {
    /// Deltas not yet in the store, by product (the shard is the product id's).
    shards: [Mutex<HashMap<ProductDay, DayRollup>>; SHARDS],
    /// Downloads not yet in the store, per file (few next to the checks: one lock).
    files: Mutex<HashMap<(AccountPrefix, FileId), u64>>,
    /// Held by a flush from its drain until its write has committed (or its deltas are put
    /// back), and by readers of stored + unflushed, so that they never see a count in
    /// neither place nor in both. Never taken on the request path.
    settling: Mutex<()>,
    checks: AtomicU64,
    downloads: AtomicU64,
    /// Public license validations (check/validate in every licensing dialect) and
    /// activation attempts, by outcome (`LicenseCode::ALL` order).
    validations: [AtomicU64; OUTCOMES],
    activations: [AtomicU64; OUTCOMES],
    /// Flushes that wrote their deltas, and those that failed (deltas put back).
    flushes: AtomicU64,
    failed_flushes: AtomicU64,
    /// Woken whenever a flush ends, stored or not.
    flush_ended: tokio::sync::Notify,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            files: Mutex::new(HashMap::new()),
            settling: Mutex::new(()),
            checks: AtomicU64::new(0),
            downloads: AtomicU64::new(0),
            validations: std::array::from_fn(|_| AtomicU64::new(0)),
            activations: std::array::from_fn(|_| AtomicU64::new(0)),
            flushes: AtomicU64::new(0),
            failed_flushes: AtomicU64::new(0),
            flush_ended: tokio::sync::Notify::new(),
        }
    }
}

fn index(code: LicenseCode) -> usize {
    LicenseCode::ALL
        .iter()
        .position(|c| *c == code)
        .unwrap_or(0)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Counts {
    fn shard(&self, product: ProductId) -> &Mutex<HashMap<ProductDay, DayRollup>> {
        &self.shards[(product.0 as usize) % SHARDS]
    }

    fn bump(
        &self,
        account: AccountPrefix,
        product: ProductId,
        now: Timestamp,
        f: impl FnOnce(&mut DayRollup),
    ) {
        let at = ProductDay {
            account,
            product,
            day: Day::of(now),
        };
        f(lock(self.shard(product)).entry(at).or_default());
    }

    /// An update check of `account`'s `product`; `license`: the license outcome it
    /// answered, when the product is licensed and the check carried a key (counted as a
    /// validation in the product's rollup; `/metrics` counts only the licensing routes').
    pub fn check(
        &self,
        account: AccountPrefix,
        product: ProductId,
        license: Option<LicenseCode>,
        now: Timestamp,
    ) {
        self.checks.fetch_add(1, Ordering::Relaxed);
        self.bump(account, product, now, |c| {
            c.checks += 1;
            if let Some(code) = license {
                c.validations[index(code)] += 1;
            }
        });
    }

    /// A download of `account`'s `product`'s file `file`.
    pub fn download(
        &self,
        account: AccountPrefix,
        product: ProductId,
        file: FileId,
        now: Timestamp,
    ) {
        self.downloads.fetch_add(1, Ordering::Relaxed);
        self.bump(account, product, now, |c| c.downloads += 1);
        *lock(&self.files).entry((account, file)).or_default() += 1;
    }

    /// A public license validation that answered `code`; `product`: the product it was
    /// for, when the request named one of the account's products.
    pub fn validation(
        &self,
        code: LicenseCode,
        product: Option<(AccountPrefix, ProductId)>,
        now: Timestamp,
    ) {
        self.validations[index(code)].fetch_add(1, Ordering::Relaxed);
        if let Some((account, product)) = product {
            self.bump(account, product, now, |c| c.validations[index(code)] += 1);
        }
    }

    /// A public activation attempt that answered `code` (`valid`: activated); `product`
    /// as for [`Counts::validation`].
    pub fn activation(
        &self,
        code: LicenseCode,
        product: Option<(AccountPrefix, ProductId)>,
        now: Timestamp,
    ) {
        self.activations[index(code)].fetch_add(1, Ordering::Relaxed);
        if let Some((account, product)) = product {
            self.bump(account, product, now, |c| c.activations[index(code)] += 1);
        }
    }

    /// Excludes flushes (and other readers) while held: a flush holds it from
    /// [`Counts::drain`] until its deltas are stored or put back, a reader while it reads
    /// the store and [`Counts::unflushed`]. Blocking threads only (a flush holds it across
    /// a store write).
    pub fn settle(&self) -> MutexGuard<'_, ()> {
        lock(&self.settling)
    }

    /// Takes every delta counted so far out of memory (the shards start empty again).
    /// Call under [`Counts::settle`], and [`Counts::restore`] them if they cannot be
    /// stored.
    pub fn drain(&self) -> Drained {
        let mut days = Vec::new();
        for shard in &self.shards {
            let taken = std::mem::take(&mut *lock(shard));
            days.extend(taken);
        }
        let files = std::mem::take(&mut *lock(&self.files))
            .into_iter()
            .collect();
        Drained { days, files }
    }

    /// Puts drained deltas back (added to whatever was counted meanwhile).
    pub fn restore(&self, drained: Drained) {
        for (at, delta) in drained.days {
            lock(self.shard(at.product))
                .entry(at)
                .or_default()
                .add(&delta);
        }
        let mut files = lock(&self.files);
        for (at, n) in drained.files {
            *files.entry(at).or_default() += n;
        }
    }

    /// `account`'s file `file`'s downloads not yet stored, to add to the stored count.
    /// Read after the stored record (no [`Counts::settle`] needed): a flush takes counts
    /// out of memory before it stores them, so the sum can lag for a moment but never
    /// counts a download twice.
    pub fn unflushed_downloads(&self, account: &AccountPrefix, file: FileId) -> u64 {
        lock(&self.files)
            .get(&(*account, file))
            .copied()
            .unwrap_or(0)
    }

    /// Drops `account`'s unflushed deltas: the account was deleted (its stored rollups
    /// went with it), and a new account may take its prefix before the next flush.
    pub fn forget_account(&self, account: &AccountPrefix) {
        for shard in &self.shards {
            lock(shard).retain(|at, _| at.account != *account);
        }
        lock(&self.files).retain(|(at, _), _| at != account);
    }

    /// The unflushed deltas of `account`'s `product` from `from` to `to` (included), in
    /// day order. Read under [`Counts::settle`] to combine with the store.
    pub fn unflushed(
        &self,
        account: &AccountPrefix,
        product: ProductId,
        from: Day,
        to: Day,
    ) -> Vec<(Day, DayRollup)> {
        let mut days: Vec<(Day, DayRollup)> = lock(self.shard(product))
            .iter()
            .filter(|(at, _)| {
                at.account == *account && at.product == product && (from..=to).contains(&at.day)
            })
            .map(|(at, delta)| (at.day, *delta))
            .collect();
        days.sort_unstable_by_key(|(day, _)| *day);
        days
    }

    /// Notes how a flush ended (for `/metrics`).
    pub fn flushed(&self, ok: bool) {
        let counter = if ok {
            &self.flushes
        } else {
            &self.failed_flushes
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.flush_ended.notify_waiters();
    }

    /// Wakes its waiters whenever a flush ends (after its write is durable, or after it
    /// failed): what waits for the rollups to change, instead of polling the store.
    pub fn flush_ended(&self) -> &tokio::sync::Notify {
        &self.flush_ended
    }

    /// Flushes that stored their deltas, and flushes that failed (their deltas put back).
    pub fn flush_totals(&self) -> (u64, u64) {
        (
            self.flushes.load(Ordering::Relaxed),
            self.failed_flushes.load(Ordering::Relaxed),
        )
    }

    /// `upkeep_license_validations_total{code}`, `upkeep_activations_total{code}` and
    /// `upkeep_report_flushes_total{result}`, Prometheus text.
    pub fn render_licensing(&self, out: &mut String) {
        use std::fmt::Write;
        for (name, help, counters) in [
            (
                "upkeep_license_validations_total",
                "Public license validations, by outcome.",
                &self.validations,
            ),
            (
                "upkeep_activations_total",
                "Public activation attempts, by outcome (valid = activated).",
                &self.activations,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (code, counter) in LicenseCode::ALL.iter().zip(counters.iter()) {
                let _ = writeln!(
                    out,
                    "{name}{{code=\"{}\"}} {}",
                    code.as_str(),
                    counter.load(Ordering::Relaxed)
                );
            }
        }
        let (ok, failed) = self.flush_totals();
        let name = "upkeep_report_flushes_total";
        let _ = writeln!(
            out,
            "# HELP {name} Background flushes of report counts into the stored rollups that \
             wrote something, by result (failed: the counts were kept in memory)."
        );
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name}{{result=\"ok\"}} {ok}");
        let _ = writeln!(out, "{name}{{result=\"failed\"}} {failed}");
    }

    /// Checks and downloads counted since start.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.checks.load(Ordering::Relaxed),
            self.downloads.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> AccountPrefix {
        AccountPrefix::parse("acme").unwrap()
    }

    fn all(counts: &Counts, account: &AccountPrefix, product: u64) -> Vec<(Day, DayRollup)> {
        counts.unflushed(account, ProductId(product), Day(0), Day(u32::MAX))
    }

    #[test]
    fn counts_are_per_account_product_and_day() {
        let counts = Counts::default();
        let other = AccountPrefix::parse("other").unwrap();
        let day1 = Timestamp::from_secs(86_400 * 100 + 5);
        let day2 = Timestamp::from_secs(86_400 * 101 - 1 + 86_400);
        counts.check(acme(), ProductId(7), None, day1);
        counts.check(acme(), ProductId(7), Some(LicenseCode::Expired), day1);
        counts.download(acme(), ProductId(7), FileId(70), day1);
        counts.check(acme(), ProductId(7), None, day2);
        counts.check(acme(), ProductId(8), None, day1);
        counts.check(other, ProductId(7), None, day1);
        counts.validation(LicenseCode::Valid, Some((acme(), ProductId(7))), day2);
        counts.validation(LicenseCode::NotFound, None, day2);
        counts.activation(LicenseCode::Valid, Some((acme(), ProductId(7))), day1);
        let mut first = DayRollup {
            checks: 2,
            downloads: 1,
            ..DayRollup::default()
        };
        first.validations[index(LicenseCode::Expired)] = 1;
        first.activations[0] = 1;
        let mut second = DayRollup {
            checks: 1,
            ..DayRollup::default()
        };
        second.validations[0] = 1;
        assert_eq!(
            all(&counts, &acme(), 7),
            vec![(Day(100), first), (Day(101), second)]
        );
        assert_eq!(all(&counts, &acme(), 8)[0].1.checks, 1);
        assert_eq!(all(&counts, &other, 7)[0].1.checks, 1);
        assert_eq!(
            counts.unflushed(&acme(), ProductId(7), Day(101), Day(101)),
            vec![(Day(101), second)]
        );
        assert_eq!(counts.totals(), (5, 1));
        let mut text = String::new();
        counts.render_licensing(&mut text);
        assert!(text.contains("upkeep_license_validations_total{code=\"valid\"} 1"));
        assert!(text.contains("upkeep_license_validations_total{code=\"not_found\"} 1"));
        assert!(text.contains("upkeep_license_validations_total{code=\"expired\"} 0"));
    }

    #[test]
    fn a_drain_empties_memory_and_a_restore_adds_back() {
        let counts = Counts::default();
        let now = Timestamp::from_secs(86_400 * 100);
        counts.check(acme(), ProductId(7), None, now);
        counts.check(acme(), ProductId(23), None, now);
        counts.download(acme(), ProductId(7), FileId(70), now);
        let _settled = counts.settle();
        let mut drained = counts.drain();
        drained.days.sort_by_key(|(at, _)| at.product);
        assert_eq!(drained.days.len(), 2);
        assert_eq!(drained.days[0].0.product, ProductId(7));
        assert_eq!(drained.files, vec![((acme(), FileId(70)), 1)]);
        assert!(all(&counts, &acme(), 7).is_empty());
        assert_eq!(counts.unflushed_downloads(&acme(), FileId(70)), 0);
        assert!(counts.drain().is_empty());
        // Counted while the flush was writing, then the flush failed.
        counts.check(acme(), ProductId(7), None, now);
        counts.download(acme(), ProductId(7), FileId(70), now);
        counts.restore(drained);
        assert_eq!(all(&counts, &acme(), 7)[0].1.checks, 2);
        assert_eq!(all(&counts, &acme(), 23)[0].1.checks, 1);
        assert_eq!(counts.unflushed_downloads(&acme(), FileId(70)), 2);
        assert_eq!(counts.totals(), (3, 2), "the totals never go back");
    }
}
