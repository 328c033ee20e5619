use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time: milliseconds since the Unix epoch (UTC).
///
/// Every family renders it in its own unit (WunderUpdates: seconds, Query: milliseconds,
/// UpdaterCloud: RFC 3339); the stored form is this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The latest time an expiry may name: 9999-12-31T23:59:59Z (RFC 3339, which two of
    /// the API families speak, has four-digit years).
    pub const LATEST: Timestamp = Timestamp(253_402_300_799_000);

    /// `self` as an expiry: refused past [`Timestamp::LATEST`].
    ///
    /// # Errors
    /// A reason, for a time after the year 9999.
    pub fn as_expiry(self) -> Result<Timestamp, String> {
        if self > Self::LATEST {
            Err("must be before the year 10000".to_owned())
        } else {
            Ok(self)
        }
    }

    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }

    pub const fn from_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    pub fn from_system(time: SystemTime) -> Self {
        let ms = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Timestamp(ms)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds, rounded down.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    pub fn to_system(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// `self + duration`, saturating at the far future.
    pub fn saturating_add(self, duration: Duration) -> Self {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }

    /// Parses RFC 3339: `2027-01-31T12:00:00Z`, fractional seconds, a space for the `T`,
    /// and numeric offsets (`+02:00`, `-0530`).
    ///
    /// # Errors
    /// A reason, when `text` is not such a time.
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
        let text = text.trim();
        let (utc_part, offset_secs) = split_offset(text)?;
        let utc = humantime::parse_rfc3339_weak(&utc_part).map_err(|err| err.to_string())?;
        let secs_since_epoch = utc
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| "before 1970".to_owned())?;
        // Local time minus its offset is UTC.
        let ms = i128::try_from(secs_since_epoch.as_millis()).unwrap_or(i128::MAX)
            - i128::from(offset_secs) * 1000;
        u64::try_from(ms)
            .map(Timestamp)
            .map_err(|_| "before 1970".to_owned())
    }

    /// RFC 3339 with second precision, UTC (`2026-11-24T10:00:00Z`).
    /// Never panics: a time past [`Timestamp::LATEST`] (which validation keeps out of the
    /// store) renders as that.
    pub fn to_rfc3339(self) -> String {
        humantime::format_rfc3339_seconds(self.min(Self::LATEST).to_system()).to_string()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Splits a trailing `Z` or `±HH:MM` / `±HHMM` offset off an RFC 3339 time: returns the
/// time with a `Z` and the offset in seconds east of UTC.
fn split_offset(text: &str) -> Result<(String, i64), String> {
    if let Some(local) = text.strip_suffix(['Z', 'z']) {
        return Ok((format!("{local}Z"), 0));
    }
    let bytes = text.as_bytes();
    for len in [6, 5] {
        // Byte offsets: the split must not fall inside a multi-byte character.
        if bytes.len() <= len + 10 || !text.is_char_boundary(text.len() - len) {
            continue;
        }
        let (local, offset) = text.split_at(text.len() - len);
        let sign = match offset.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => continue,
        };
        let digits: String = offset[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || (len == 6 && offset.as_bytes()[3] != b':')
        {
            continue;
        }
        let hours: i64 = digits[..2].parse().map_err(|_| "bad offset".to_owned())?;
        let minutes: i64 = digits[2..].parse().map_err(|_| "bad offset".to_owned())?;
        if hours > 23 || minutes > 59 {
            return Err(format!("offset `{offset}` is out of range"));
        }
        return Ok((format!("{local}Z"), sign * (hours * 3600 + minutes * 60)));
    }
    Err("a time zone is required: `Z` or an offset like `+02:00`".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_stop_at_the_year_9999_and_rendering_never_panics() {
        assert_eq!(Timestamp::LATEST.to_rfc3339(), "9999-12-31T23:59:59Z");
        assert!(Timestamp::LATEST.as_expiry().is_ok());
        assert!(
            Timestamp::from_millis(Timestamp::LATEST.as_millis() + 1)
                .as_expiry()
                .is_err()
        );
        assert_eq!(
            Timestamp::from_millis(u64::MAX).to_rfc3339(),
            "9999-12-31T23:59:59Z"
        );
        let far = Timestamp::parse_rfc3339("9999-12-31T23:59:59-23:59").unwrap();
        assert!(far.as_expiry().is_err());
    }

    #[test]
    fn rfc3339_with_z_and_offsets() {
        let utc = Timestamp::parse_rfc3339("2027-01-31T12:00:00Z").unwrap();
        assert_eq!(utc.to_rfc3339(), "2027-01-31T12:00:00Z");
        assert_eq!(
            Timestamp::parse_rfc3339("2027-01-31T14:00:00+02:00").unwrap(),
            utc
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2027-01-31T06:30:00-0530").unwrap(),
            utc
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2027-01-31 12:00:00.000z").unwrap(),
            utc
        );
        for bad in [
            "2027-01-31T12:00:00",
            "2027-01-31T12:00:00+25:00",
            "tomorrow",
            "",
            "1969-12-31T23:59:59Z",
            // Multi-byte characters where an offset would be (these used to panic).
            "2027-01-31T12:00:00é+0200",
            "2027-01-31T12:00:00.é12345",
            "aaaaaaaaaaaé+12:0",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
