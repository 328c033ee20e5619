//! Counting update checks and downloads for reports (SPEC §8.1 item 4, §10) without a
//! write on the request path: per product and UTC day, in memory, in a few shards (a
//! check takes one uncontended lock). The report routes and their persisted rollups come
//! with §10; until then the totals are readable here and on `/metrics`.

use super::answer::LicenseCode;
use crate::model::{ProductId, Timestamp};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

const SHARDS: usize = 16;

/// One product's counts on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCount {
    pub checks: u64,
    pub downloads: u64,
}

/// The counters.
#[derive(Debug)]
pub struct Counts {
    shards: [Mutex<HashMap<(ProductId, u32), DayCount>>; SHARDS],
    checks: AtomicU64,
    downloads: AtomicU64,
    /// Public license validations (check/validate in every licensing dialect) and
    /// activation attempts, by outcome (`LicenseCode::ALL` order).
    validations: [AtomicU64; 10],
    activations: [AtomicU64; 10],
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            checks: AtomicU64::new(0),
            downloads: AtomicU64::new(0),
            validations: std::array::from_fn(|_| AtomicU64::new(0)),
            activations: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

fn index(code: LicenseCode) -> usize {
    LicenseCode::ALL
        .iter()
        .position(|c| *c == code)
        .unwrap_or(0)
}

fn day(now: Timestamp) -> u32 {
    u32::try_from(now.as_secs() / 86_400).unwrap_or(u32::MAX)
}

impl Counts {
    fn bump(&self, product: ProductId, now: Timestamp, f: impl FnOnce(&mut DayCount)) {
        let shard = &self.shards[(product.0 as usize) % SHARDS];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry((product, day(now))).or_default());
    }

    /// An update check of `product`.
    pub fn check(&self, product: ProductId, now: Timestamp) {
        self.checks.fetch_add(1, Ordering::Relaxed);
        self.bump(product, now, |c| c.checks += 1);
    }

    /// A download of one of `product`'s files.
    pub fn download(&self, product: ProductId, now: Timestamp) {
        self.downloads.fetch_add(1, Ordering::Relaxed);
        self.bump(product, now, |c| c.downloads += 1);
    }

    /// `product`'s counts on the day of `at`.
    pub fn day_of(&self, product: ProductId, at: Timestamp) -> DayCount {
        let shard = &self.shards[(product.0 as usize) % SHARDS];
        let map = shard.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(product, day(at))).copied().unwrap_or_default()
    }

    /// A public license validation that answered `code`.
    pub fn validation(&self, code: LicenseCode) {
        self.validations[index(code)].fetch_add(1, Ordering::Relaxed);
    }

    /// A public activation attempt that answered `code` (`valid`: activated).
    pub fn activation(&self, code: LicenseCode) {
        self.activations[index(code)].fetch_add(1, Ordering::Relaxed);
    }

    /// `upkeep_license_validations_total{code}` and `upkeep_activations_total{code}`,
    /// Prometheus text.
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

    #[test]
    fn counts_are_per_product_and_day() {
        let counts = Counts::default();
        let day1 = Timestamp::from_secs(86_400 * 100 + 5);
        let day2 = Timestamp::from_secs(86_400 * 101 + 5);
        counts.check(ProductId(7), day1);
        counts.check(ProductId(7), day1);
        counts.download(ProductId(7), day1);
        counts.check(ProductId(7), day2);
        counts.check(ProductId(8), day1);
        assert_eq!(
            counts.day_of(ProductId(7), day1),
            DayCount {
                checks: 2,
                downloads: 1
            }
        );
        assert_eq!(counts.day_of(ProductId(7), day2).checks, 1);
        assert_eq!(counts.day_of(ProductId(8), day1).checks, 1);
        assert_eq!(counts.totals(), (4, 1));
    }
}
