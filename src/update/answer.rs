//! The dialect-neutral answer of an update check (SPEC §8.1): what the decision hands to
//! every dialect's renderer (`render.rs`). Pure data and the few rules about it that every
//! dialect shares: the licence codes of SPEC §9, the "nothing to offer" version of §8.1
//! item 6 and the `last_updated` format of §8.2.
//!
//! **Nothing to offer** (§8.1 item 6) is an [`Answer::Nothing`] (built by
//! [`Answer::nothing`]): the product's document (an [`Offer`]) whose `version` is
//! [`fallback_version`] and whose `download_link` is `None`, with the reason. The WordPress-facing dialects (PUC, WunderUpdates, UpdaterCloud,
//! our batch) render it exactly like an offer — the client compares versions itself and
//! sees none newer — while EDD renders its own not-found shape from it. An unknown prefix
//! or slug has no document at all; it is not an `Answer` (the routes answer `404`, EDD its
//! not-found shape).

use crate::model::Timestamp;

/// What a product is; picks the dialects' field names (`plugin_name` / `theme_name`) and
/// which PUC document a product gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Plugin,
    Theme,
    App,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Plugin => "plugin",
            Kind::Theme => "theme",
            Kind::App => "app",
        }
    }
}

/// A licence validation code (SPEC §9, *Validation codes*): every dialect renders its own
/// words from these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LicenseCode {
    Valid,
    NotFound,
    Disabled,
    Expired,
    ProductMismatch,
    SiteInactive,
    ActivationLimitReached,
    AccountLimitReached,
    RateLimited,
    MissingKey,
}

impl LicenseCode {
    pub const ALL: [LicenseCode; 10] = [
        LicenseCode::Valid,
        LicenseCode::NotFound,
        LicenseCode::Disabled,
        LicenseCode::Expired,
        LicenseCode::ProductMismatch,
        LicenseCode::SiteInactive,
        LicenseCode::ActivationLimitReached,
        LicenseCode::AccountLimitReached,
        LicenseCode::RateLimited,
        LicenseCode::MissingKey,
    ];

    /// The wire name (`valid`, `not_found`, …), the same in every dialect that shows it.
    pub const fn as_str(self) -> &'static str {
        match self {
            LicenseCode::Valid => "valid",
            LicenseCode::NotFound => "not_found",
            LicenseCode::Disabled => "disabled",
            LicenseCode::Expired => "expired",
            LicenseCode::ProductMismatch => "product_mismatch",
            LicenseCode::SiteInactive => "site_inactive",
            LicenseCode::ActivationLimitReached => "activation_limit_reached",
            LicenseCode::AccountLimitReached => "account_limit_reached",
            LicenseCode::RateLimited => "rate_limited",
            LicenseCode::MissingKey => "missing_key",
        }
    }

    pub fn parse(text: &str) -> Option<LicenseCode> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }
}

/// The licence part of an answer. `valid` is derived from the code (`valid` ⇔
/// [`LicenseCode::Valid`]) rather than stored beside it, so the two cannot disagree.
/// Whether a download link is given is a separate matter ([`Offer::download_link`]): a
/// free product may be downloaded whatever key was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LicenseState {
    pub code: LicenseCode,
}

impl LicenseState {
    pub const VALID: LicenseState = LicenseState {
        code: LicenseCode::Valid,
    };

    pub const fn new(code: LicenseCode) -> Self {
        LicenseState { code }
    }

    pub fn valid(self) -> bool {
        self.code == LicenseCode::Valid
    }
}

/// A product's update document: the version announced and what WordPress shows about it.
/// All texts are final (sections are sanitized HTML from the package reader, URLs absolute,
/// SPEC §8.1 item 5); the renderers only arrange them. It borrows everything but the link
/// from the cached catalogue view (`decide.rs`) and the request: a check copies no text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer<'a> {
    pub kind: Kind,
    pub name: &'a str,
    pub slug: &'a str,
    /// The version announced (normalized, no leading `v`); for nothing to offer, the
    /// [`fallback_version`].
    pub version: &'a str,
    /// The signed `/dl/…` URL (`link.rs`), absent when the caller may not download or
    /// there is nothing to offer.
    pub download_link: Option<String>,
    /// `download_link` needs no JSON escaping (its base had nothing to escape, and the
    /// rest of a link never has): written as it is.
    pub link_plain: bool,
    pub homepage: Option<&'a str>,
    pub author: Option<&'a str>,
    pub author_homepage: Option<&'a str>,
    /// Minimum platform (WordPress) version.
    pub requires: Option<&'a str>,
    pub tested: Option<&'a str>,
    pub requires_php: Option<&'a str>,
    /// The release time as [`wp_datetime`] writes it, `""` when unknown (formatted once
    /// per version, when the view is built).
    pub last_updated: &'a str,
    /// `(key, safe HTML)` in display order; keys as the readme gives them: `description`,
    /// `installation`, `faq`, `changelog`, `upgrade_notice`.
    pub sections: &'a [(String, String)],
    pub upgrade_notice: Option<&'a str>,
    /// `("1x" | "2x" | "svg", URL)`.
    pub icons: &'a [(String, String)],
    /// `("low" | "high", URL)`.
    pub banners: &'a [(String, String)],
    pub license: LicenseState,
    /// The rendered runs of the fields above that come from the offered version and its
    /// product (`render::Kept`), when they are that version's (`decide` sets it with
    /// them); `None` renders every field afresh.
    pub kept: Option<&'a super::render::Kept>,
}

impl<'a> Offer<'a> {
    /// The HTML of section `key`, if the product has it (the first, if given twice).
    pub fn section(&self, key: &str) -> Option<&'a str> {
        self.sections
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, html)| html.as_str())
    }
}

/// Why there is nothing to offer (SPEC §8.1 item 6); EDD's `msg` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NothingReason {
    /// The product is not published.
    Unpublished,
    /// No published version on the channel.
    NoVersion,
    /// Every version on the channel is held back by rollout or unmet requirements.
    Filtered,
}

/// The decision's result for a known product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<'a> {
    /// A version to announce, with a download link or with the licence code saying why
    /// not (§8.1 item 2).
    Update(Offer<'a>),
    /// Nothing to offer: the product's document with the fallback version and no link.
    Nothing(Offer<'a>, NothingReason),
}

impl<'a> Answer<'a> {
    /// Nothing to offer for `reason`: `offer` announcing `version` (see
    /// [`fallback_version`]), its download link removed whatever it held.
    pub fn nothing(offer: Offer<'a>, version: &'a str, reason: NothingReason) -> Answer<'a> {
        Answer::Nothing(
            Offer {
                version,
                download_link: None,
                link_plain: false,
                ..offer
            },
            reason,
        )
    }

    /// The document every non-EDD dialect renders, whichever the case.
    pub fn offer(&self) -> &Offer<'a> {
        match self {
            Answer::Update(offer) | Answer::Nothing(offer, _) => offer,
        }
    }
}

/// The version a "nothing to offer" document announces (SPEC §8.1 item 6): the client's
/// installed version when it sent one, otherwise the newest published version the caller
/// may see, otherwise `0.0.0`. An empty string counts as not sent.
pub fn fallback_version<'a>(
    installed: Option<&'a str>,
    newest_visible: Option<&'a str>,
) -> &'a str {
    installed
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .or(newest_visible)
        .unwrap_or("0.0.0")
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, as wordpress.org writes `last_updated` (SPEC §8.2).
/// Seconds are rounded down; a time past the year 9999 renders as its last second.
pub fn wp_datetime(time: Timestamp) -> String {
    let secs = time.min(Timestamp::LATEST).as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1st
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> Timestamp {
        Timestamp::parse_rfc3339(rfc3339).unwrap()
    }

    #[test]
    fn wp_datetime_renders_known_dates() {
        assert_eq!(wp_datetime(Timestamp::from_secs(0)), "1970-01-01 00:00:00");
        assert_eq!(
            wp_datetime(at("2026-12-01T12:00:00Z")),
            "2026-12-01 12:00:00"
        );
        // Leap days: a year divisible by 4, by 400, and the day after.
        assert_eq!(
            wp_datetime(at("2024-02-29T23:59:59Z")),
            "2024-02-29 23:59:59"
        );
        assert_eq!(
            wp_datetime(at("2000-02-29T00:00:01Z")),
            "2000-02-29 00:00:01"
        );
        assert_eq!(
            wp_datetime(at("2000-03-01T00:00:00Z")),
            "2000-03-01 00:00:00"
        );
        // 2100 is not a leap year: 28 February is followed by 1 March.
        assert_eq!(
            wp_datetime(Timestamp::from_secs(4_107_542_400)),
            "2100-03-01 00:00:00"
        );
        assert_eq!(
            wp_datetime(Timestamp::from_secs(4_107_542_399)),
            "2100-02-28 23:59:59"
        );
        // Year ends, and milliseconds rounded down.
        assert_eq!(
            wp_datetime(Timestamp::from_millis(1_704_067_199_999)),
            "2023-12-31 23:59:59"
        );
        assert_eq!(
            wp_datetime(Timestamp::from_secs(1_704_067_200)),
            "2024-01-01 00:00:00"
        );
    }

    #[test]
    fn wp_datetime_agrees_with_rfc3339_everywhere_and_never_panics() {
        // Every ~97 days over four centuries, against the independent humantime rendering.
        let mut secs = 0u64;
        while secs <= Timestamp::LATEST.as_secs() {
            let t = Timestamp::from_secs(secs);
            let expected = t.to_rfc3339().replace('T', " ").replace('Z', "");
            assert_eq!(wp_datetime(t), expected, "at {secs}");
            secs += 8_380_417;
        }
        assert_eq!(
            wp_datetime(Timestamp::from_millis(u64::MAX)),
            "9999-12-31 23:59:59"
        );
    }

    #[test]
    fn license_codes_round_trip_and_only_valid_is_valid() {
        for code in LicenseCode::ALL {
            assert_eq!(LicenseCode::parse(code.as_str()), Some(code));
            assert_eq!(LicenseState::new(code).valid(), code == LicenseCode::Valid);
        }
        assert_eq!(LicenseCode::parse("Valid"), None);
        assert_eq!(LicenseCode::parse(""), None);
    }

    #[test]
    fn nothing_never_carries_a_link() {
        let offer = Offer {
            kind: Kind::Plugin,
            name: "P",
            slug: "p",
            version: "2.0.0",
            download_link: Some("https://u.example.com/dl/T/p.zip".into()),
            link_plain: false,
            homepage: None,
            author: None,
            author_homepage: None,
            requires: None,
            tested: None,
            requires_php: None,
            last_updated: "",
            sections: &[],
            upgrade_notice: None,
            icons: &[],
            banners: &[],
            license: LicenseState::VALID,
            kept: None,
        };
        let answer = Answer::nothing(offer, "1.0.0", NothingReason::Filtered);
        assert_eq!(answer.offer().version, "1.0.0");
        assert_eq!(answer.offer().download_link, None);
        assert!(matches!(
            answer,
            Answer::Nothing(_, NothingReason::Filtered)
        ));
    }

    #[test]
    fn fallback_version_follows_the_spec_order() {
        assert_eq!(fallback_version(Some("1.0.0"), Some("2.0.0")), "1.0.0");
        assert_eq!(fallback_version(None, Some("2.0.0")), "2.0.0");
        assert_eq!(fallback_version(Some(" "), Some("2.0.0")), "2.0.0");
        assert_eq!(fallback_version(Some(""), None), "0.0.0");
        assert_eq!(fallback_version(None, None), "0.0.0");
    }
}
