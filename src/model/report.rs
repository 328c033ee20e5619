//! Reports (SPEC §10): the daily rollup of one product — what its update checks,
//! downloads, license validations and activations added up to on one UTC day. Counted in
//! memory on the request path (`update::counts`), added to the stored rollups in the
//! background (`service::reports`), read by the report routes.

use super::{AccountPrefix, ProductId, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How many license outcomes a rollup counts: one per `update::answer::LicenseCode`, in
/// `LicenseCode::ALL` order (`valid`, `not_found`, `disabled`, `expired`,
/// `product_mismatch`, `site_inactive`, `activation_limit_reached`,
/// `account_limit_reached`, `rate_limited`, `missing_key`). A new code is a new
/// `DayRollup` format version.
pub const OUTCOMES: usize = 10;

/// A UTC day: days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Day(pub u32);

impl Day {
    /// The UTC day `at` falls on.
    pub fn of(at: Timestamp) -> Day {
        Day(u32::try_from(at.as_secs() / 86_400).unwrap_or(u32::MAX))
    }

    /// Its first instant, 00:00:00 UTC.
    pub fn start(self) -> Timestamp {
        Timestamp::from_secs(u64::from(self.0) * 86_400)
    }

    /// The day after (saturating).
    pub fn next(self) -> Day {
        Day(self.0.saturating_add(1))
    }

    /// Parses `YYYY-MM-DD` (the report routes' `from`, `to`, `before`).
    ///
    /// # Errors
    /// A reason, when `text` is not such a date.
    pub fn parse(text: &str) -> Result<Day, String> {
        let text = text.trim();
        let shape_ok = text.len() == 10
            && text.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        if !shape_ok {
            return Err(format!("{text:?} is not a date (YYYY-MM-DD)"));
        }
        let at = Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z"))
            .map_err(|why| format!("{text:?} is not a date: {why}"))?;
        Ok(Day::of(at))
    }
}

/// `YYYY-MM-DD`.
impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.start().to_rfc3339();
        f.write_str(text.get(..10).unwrap_or(&text))
    }
}

/// Where a rollup belongs: an account's product on a UTC day. (Product ids are unique
/// across accounts; the account is part of the key so that an account's reports are one
/// range of the store and go with it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProductDay {
    pub account: AccountPrefix,
    pub product: ProductId,
    pub day: Day,
}

/// Hashes the product and the day only: they identify the slot (product ids are unique
/// across accounts), and skipping the 33-byte prefix keeps the count on every update check
/// cheap. Equal keys still hash equally; `Eq` compares the account too.
impl std::hash::Hash for ProductDay {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.product.hash(state);
        self.day.hash(state);
    }
}

/// One product's counts on one UTC day (record `day_rollup`, format version 1). The
/// fields SPEC §10 adds later (distinct sites, installed versions, PHP and platform
/// versions, locales, channels) come as a new format version with this one frozen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRollup {
    /// Update checks answered (every dialect).
    pub checks: u64,
    /// Files streamed through download links.
    pub downloads: u64,
    /// License validations by outcome ([`OUTCOMES`] order): the public licensing routes'
    /// checks of a key for this product, and update checks of a licensed product that
    /// carried a key (the outcome the answer gave).
    pub validations: [u64; OUTCOMES],
    /// Activation attempts by outcome (`valid`: activated).
    pub activations: [u64; OUTCOMES],
}

impl DayRollup {
    /// Adds `other` to this one (saturating: a counter never wraps).
    pub fn add(&mut self, other: &DayRollup) {
        self.checks = self.checks.saturating_add(other.checks);
        self.downloads = self.downloads.saturating_add(other.downloads);
        for (mine, theirs) in self.validations.iter_mut().zip(other.validations) {
            *mine = mine.saturating_add(theirs);
        }
        for (mine, theirs) in self.activations.iter_mut().zip(other.activations) {
            *mine = mine.saturating_add(theirs);
        }
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        *self == DayRollup::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_and_print_as_dates() {
        let day = Day::of(Timestamp::from_secs(1_795_478_400 + 86_399));
        assert_eq!(day.to_string(), "2026-11-24");
        assert_eq!(day.next().to_string(), "2026-11-25");
        assert_eq!(
            Day::of(Timestamp::from_secs(1_795_478_400 + 86_400)),
            day.next()
        );
        assert_eq!(day.start(), Timestamp::from_secs(1_795_478_400));
        assert_eq!(Day::parse("2026-11-24"), Ok(day));
        assert_eq!(Day::parse("1970-01-01"), Ok(Day(0)));
        for bad in [
            "2026-13-01",
            "2026-1-01",
            "yesterday",
            "2026-11-24T00:00:00Z",
            "",
        ] {
            assert!(Day::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rollups_add_up_without_wrapping() {
        let mut a = DayRollup {
            checks: 2,
            downloads: u64::MAX,
            ..DayRollup::default()
        };
        a.validations[3] = 1;
        let mut b = DayRollup {
            checks: 3,
            downloads: 1,
            ..DayRollup::default()
        };
        b.validations[3] = 4;
        b.activations[0] = 1;
        a.add(&b);
        assert_eq!(a.checks, 5);
        assert_eq!(a.downloads, u64::MAX);
        assert_eq!(a.validations[3], 5);
        assert_eq!(a.activations[0], 1);
        assert!(!a.is_empty());
        assert!(DayRollup::default().is_empty());
    }
}
