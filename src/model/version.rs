//! Release version numbers (SPEC §7 *Version*), their maturity, and the tolerant platform
//! versions (`requires`, `requires_php`) that clients report.
//!
//! Only the forms that semver *and* PHP's `version_compare` (which every WordPress client
//! uses to decide whether to update) order alike are accepted:
//! `MAJOR.MINOR[.PATCH][-TAG[[.]N]]` with `TAG` one of `dev`, `alpha`, `a`, `beta`, `b`,
//! `rc`, `RC`. The order is semver precedence over the normalized form (`1.2` is `1.2.0`,
//! `-a` is `-alpha`, `-b` is `-beta`, `-RC` is `-rc`, `-rc1` is `-rc.1`); the vendor's
//! spelling is kept for display, because a site compares the offered version string with
//! the one in its installed header, and `1.2.0` offered to a site running `1.2` is, for
//! PHP, an update: forever.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;

/// The rule, as every refusal states it.
pub const VERSION_RULE: &str = "a version is MAJOR.MINOR.PATCH (or MAJOR.MINOR, read as \
     .0) with an optional pre-release tag -dev, -alpha, -a, -beta, -b, -rc or -RC, optionally \
     followed by a number (-beta.2, -rc1): the forms that semver and PHP's version_compare \
     order alike";

/// The largest number a component may hold: PHP's integer (`PHP_INT_MAX` on 64-bit), which
/// `version_compare` parses each component into (larger values saturate there and would
/// compare equal).
pub const MAX_COMPONENT: u64 = i64::MAX as u64;

/// How stable a release is, least stable first (`Ord` follows stability).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Maturity {
    Dev,
    Alpha,
    Beta,
    Rc,
    Stable,
}

impl Maturity {
    pub const ALL: [Maturity; 5] = [
        Maturity::Dev,
        Maturity::Alpha,
        Maturity::Beta,
        Maturity::Rc,
        Maturity::Stable,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Maturity::Dev => "dev",
            Maturity::Alpha => "alpha",
            Maturity::Beta => "beta",
            Maturity::Rc => "rc",
            Maturity::Stable => "stable",
        }
    }

    /// `dev|alpha|beta|rc|stable`, exactly (an explicit maturity on the wire).
    pub fn parse(text: &str) -> Option<Maturity> {
        Maturity::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

impl fmt::Display for Maturity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for Maturity {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Maturity::parse(text).ok_or_else(|| {
            format!("unknown maturity `{text}` (known: dev, alpha, beta, rc, stable)")
        })
    }
}

/// What is wrong with a version string; [`VersionError`] adds the input and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionProblem {
    Empty,
    /// Build metadata (`+…`): semver ignores it, PHP orders by it.
    BuildMetadata,
    /// Not 2 or 3 dot-separated numbers before the tag.
    Components(usize),
    /// `1..2`, `1.2.`, `.1`.
    EmptyComponent,
    NotANumber(String),
    /// `01.2.3`, `-rc.01`: semver forbids them, and `1.02` would equal `1.2`.
    LeadingZero(String),
    TooLarge(String),
    /// `-pre.1`, `-p1`, `-patch`, `-Beta`, `-1`…
    UnknownTag(String),
    /// What follows a known tag is not `[.]N`: `-beta.x`, `-rc-1`, `-beta.`.
    BadTagNumber(String),
}

impl fmt::Display for VersionProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionProblem::Empty => f.write_str("it is empty"),
            VersionProblem::BuildMetadata => f.write_str(
                "build metadata (`+…`) is not allowed: semver ignores it, PHP orders by it",
            ),
            VersionProblem::Components(n) => {
                write!(f, "it has {n} numeric components, not 2 or 3")
            }
            VersionProblem::EmptyComponent => f.write_str("a component is empty"),
            VersionProblem::NotANumber(part) => write!(f, "`{part}` is not a number"),
            VersionProblem::LeadingZero(part) => {
                write!(f, "`{part}` has a leading zero (semver forbids it)")
            }
            VersionProblem::TooLarge(part) => {
                write!(f, "`{part}` is larger than PHP's integer ({MAX_COMPONENT})")
            }
            VersionProblem::UnknownTag(tag) => write!(
                f,
                "the pre-release tag `-{tag}` is not one PHP orders as semver does"
            ),
            VersionProblem::BadTagNumber(rest) => write!(
                f,
                "`{rest}` after the pre-release tag is not a number (`.2` or `2`)"
            ),
        }
    }
}

/// A refused version string (`400 invalid_version`): the input, what is wrong, the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionError {
    pub input: String,
    pub problem: VersionProblem,
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a valid version: {}; {VERSION_RULE}",
            self.input, self.problem
        )
    }
}

impl std::error::Error for VersionError {}

/// A pre-release tag, normalized: its stage and its number (`-beta` < `-beta.0` <
/// `-beta.1`, numbers compared as numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Pre {
    stage: Maturity,
    number: Option<u64>,
}

/// A release version: see the module documentation for the accepted forms.
///
/// Equality, order and hash follow the normalized form, so `1.2` equals `1.2.0` and
/// `1.0.0-rc1` equals `1.0.0-RC.1` (and a product cannot hold both: versions are unique per
/// product under this equality). `Display` renders what the vendor wrote, minus a leading
/// `v`; [`Version::normalized`] renders the normalized form.
#[derive(Clone)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    /// Written as `MAJOR.MINOR` (no patch).
    short: bool,
    pre: Option<Pre>,
    written: Box<str>,
}

impl Version {
    /// # Errors
    /// A [`VersionError`] naming what breaks [`VERSION_RULE`].
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let fail = |problem| VersionError {
            input: text.to_owned(),
            problem,
        };
        let body = text.strip_prefix('v').unwrap_or(text);
        if body.is_empty() {
            return Err(fail(VersionProblem::Empty));
        }
        if body.contains('+') {
            return Err(fail(VersionProblem::BuildMetadata));
        }
        let (core, tag) = match body.split_once('-') {
            Some((core, tag)) => (core, Some(tag)),
            None => (body, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(fail(VersionProblem::Components(parts.len())));
        }
        let mut numbers = [0u64; 3];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            *slot = number(part).map_err(fail)?;
        }
        let pre = match tag {
            None => None,
            Some(tag) => Some(pre_release(tag).map_err(fail)?),
        };
        Ok(Version {
            major: numbers[0],
            minor: numbers[1],
            patch: numbers[2],
            short: parts.len() == 2,
            pre,
            written: body.into(),
        })
    }

    pub fn major(&self) -> u64 {
        self.major
    }

    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// `0` when written as `MAJOR.MINOR`.
    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// The maturity its tag says: none is `stable`.
    pub fn maturity(&self) -> Maturity {
        self.pre.map_or(Maturity::Stable, |pre| pre.stage)
    }

    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some()
    }

    /// As written, minus a leading `v` (also what `Display` renders).
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// The normalized form: `MAJOR.MINOR.PATCH[-tag[.N]]`, tags spelled `dev`, `alpha`,
    /// `beta`, `rc`. Two versions are equal exactly when their normalized forms are.
    pub fn normalized(&self) -> String {
        let mut out = format!("{}.{}.{}", self.major, self.minor, self.patch);
        if let Some(pre) = self.pre {
            out.push('-');
            out.push_str(pre.stage.as_str());
            if let Some(n) = pre.number {
                out.push_str(&format!(".{n}"));
            }
        }
        out
    }

    /// Bytes whose lexicographic order is the version order (equal exactly when the
    /// versions are): for sorted store keys.
    pub fn order_key(&self) -> [u8; 34] {
        let mut key = [0u8; 34];
        key[0..8].copy_from_slice(&self.major.to_be_bytes());
        key[8..16].copy_from_slice(&self.minor.to_be_bytes());
        key[16..24].copy_from_slice(&self.patch.to_be_bytes());
        // A release sorts after its pre-releases; a tag without number before numbered ones.
        key[24] = self.maturity() as u8;
        if let Some(n) = self.pre.and_then(|pre| pre.number) {
            key[25] = 1;
            key[26..34].copy_from_slice(&n.to_be_bytes());
        }
        key
    }

    /// Whether a product may not hold both versions although they differ: the same
    /// `MAJOR.MINOR` line at patch `0`, one written `MAJOR.MINOR` and the other
    /// `MAJOR.MINOR.0`. PHP orders `1.2` *below* `1.2.0` and `1.2.0-beta` (a missing
    /// component is older than any number), while here `1.2` is `1.2.0`: so `1.2` and
    /// `1.2.0-beta`, or `1.2-rc` and `1.2.0-beta`, would be ordered differently by the
    /// server and by the sites. Equal versions (`1.2`, `1.2.0`) clash too.
    pub fn clashes_with(&self, other: &Version) -> bool {
        self.short != other.short
            && self.major == other.major
            && self.minor == other.minor
            && self.patch == 0
            && other.patch == 0
    }

    fn rank(&self) -> (u64, u64, u64, Maturity, Option<u64>) {
        let (stage, number) = self
            .pre
            .map_or((Maturity::Stable, None), |pre| (pre.stage, pre.number));
        (self.major, self.minor, self.patch, stage, number)
    }
}

/// One numeric component: ASCII digits, no leading zero, at most [`MAX_COMPONENT`].
fn number(part: &str) -> Result<u64, VersionProblem> {
    if part.is_empty() {
        return Err(VersionProblem::EmptyComponent);
    }
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VersionProblem::NotANumber(part.to_owned()));
    }
    if part.len() > 1 && part.starts_with('0') {
        return Err(VersionProblem::LeadingZero(part.to_owned()));
    }
    part.parse::<u64>()
        .ok()
        .filter(|n| *n <= MAX_COMPONENT)
        .ok_or_else(|| VersionProblem::TooLarge(part.to_owned()))
}

/// The text after the first `-`: a known tag, then nothing, `N` or `.N`.
fn pre_release(tag: &str) -> Result<Pre, VersionProblem> {
    let split = tag
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(tag.len());
    let (name, rest) = tag.split_at(split);
    // Case matters: PHP knows `RC` and `rc` but not `Rc`, `Beta` or `A`.
    let stage = match name {
        "dev" => Maturity::Dev,
        "alpha" | "a" => Maturity::Alpha,
        "beta" | "b" => Maturity::Beta,
        "rc" | "RC" => Maturity::Rc,
        _ => return Err(VersionProblem::UnknownTag(tag.to_owned())),
    };
    let number = match rest {
        "" => None,
        _ => {
            let digits = rest.strip_prefix('.').unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(VersionProblem::BadTagNumber(rest.to_owned()));
            }
            Some(number(digits)?)
        }
    };
    Ok(Pre { stage, number })
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.rank() == other.rank()
    }
}

impl Eq for Version {}

impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.rank().hash(state);
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.written)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({})", self.written)
    }
}

impl std::str::FromStr for Version {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Version::parse(text)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.written)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Version::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A platform version as a client reports it (WordPress `6.4.2`, `6.5-RC1`; PHP
/// `8.1.2-1ubuntu2.14`), read tolerantly: its leading dot-separated numbers, the rest
/// ignored. Missing components are `0` (`6.4` = `6.4.0`), as WordPress itself compares
/// requirements since 6.5 (`is_wp_version_compatible` drops a trailing `.0` and strips
/// `-…` suffixes from its own version).
/// Up to [`PlatformVersion::MAX_PARTS`] numbers are read (no platform has more); they are
/// kept inline, so reading a client's version allocates nothing.
#[derive(Debug, Clone)]
pub struct PlatformVersion {
    /// The numbers read, then zeros: the order is the arrays' (a missing component is 0).
    parts: [u64; PlatformVersion::MAX_PARTS],
    len: u8,
}

impl PlatformVersion {
    /// The most leading numbers read; any after them are ignored.
    pub const MAX_PARTS: usize = 8;

    /// `None` when `text` does not start with a number (after blanks and a `v`).
    pub fn parse_lenient(text: &str) -> Option<PlatformVersion> {
        let text = super::trim(text);
        let text = text
            .strip_prefix('v')
            .or_else(|| text.strip_prefix('V'))
            .unwrap_or(text);
        let mut version = PlatformVersion {
            parts: [0; Self::MAX_PARTS],
            len: 0,
        };
        // `.` is ASCII: cutting at its bytes keeps char boundaries.
        for part in text.split('.') {
            let end = part
                .bytes()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(part.len());
            let digits = &part[..end];
            if digits.is_empty() || usize::from(version.len) == Self::MAX_PARTS {
                break;
            }
            // Saturates: a 30-digit component is only ever compared, never shown.
            version.parts[usize::from(version.len)] = digits.parse().unwrap_or(u64::MAX);
            version.len += 1;
            if digits.len() < part.len() {
                break;
            }
        }
        (version.len > 0).then_some(version)
    }

    pub fn components(&self) -> &[u64] {
        &self.parts[..usize::from(self.len)]
    }
}

/// Equal as ordered: `6.4` and `6.4.0` are the same version.
impl PartialEq for PlatformVersion {
    fn eq(&self, other: &Self) -> bool {
        self.parts == other.parts
    }
}

impl Eq for PlatformVersion {}

impl Ord for PlatformVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        // Zero-padded alike: `6.4` and `6.4.0` compare equal.
        self.parts.cmp(&other.parts)
    }
}

impl PartialOrd for PlatformVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Whether a version's requirement (`requires`, `requires_php`: a minimum) is met by what
/// the client reported. Met when there is no requirement, when the client sent nothing,
/// and when either does not start with a number: a requirement nobody can read hides no
/// update (WordPress checks requirements again before it installs).
pub fn requirement_met(required: Option<&str>, client: Option<&str>) -> bool {
    // The client's version first: most checks send none, and then nothing is parsed.
    let Some(client) = client.and_then(PlatformVersion::parse_lenient) else {
        return true;
    };
    let required = required.and_then(PlatformVersion::parse_lenient);
    minimum_met(required.as_ref(), Some(&client))
}

/// [`requirement_met`] over versions already read (the update decision parses a
/// version's minimums once, when its view is built): met unless both are known and the
/// client's is lower.
pub fn minimum_met(required: Option<&PlatformVersion>, client: Option<&PlatformVersion>) -> bool {
    match (required, client) {
        (Some(required), Some(client)) => client >= required,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn problem(text: &str) -> VersionProblem {
        match Version::parse(text) {
            Ok(version) => panic!("`{text}` was accepted as {version:?}"),
            Err(err) => {
                assert_eq!(err.input, text);
                assert!(err.to_string().contains(VERSION_RULE), "{err}");
                err.problem
            }
        }
    }

    #[test]
    fn accepts_the_spec_forms() {
        for (text, shown, normalized, maturity) in [
            ("1.2.3", "1.2.3", "1.2.3", Maturity::Stable),
            ("1.2", "1.2", "1.2.0", Maturity::Stable),
            ("v1.2.3", "1.2.3", "1.2.3", Maturity::Stable),
            ("0.0.0", "0.0.0", "0.0.0", Maturity::Stable),
            ("1.0.0-dev", "1.0.0-dev", "1.0.0-dev", Maturity::Dev),
            ("1.0.0-alpha", "1.0.0-alpha", "1.0.0-alpha", Maturity::Alpha),
            ("1.0.0-a2", "1.0.0-a2", "1.0.0-alpha.2", Maturity::Alpha),
            (
                "1.0.0-beta.2",
                "1.0.0-beta.2",
                "1.0.0-beta.2",
                Maturity::Beta,
            ),
            ("1.0-b", "1.0-b", "1.0.0-beta", Maturity::Beta),
            ("1.0.0-rc1", "1.0.0-rc1", "1.0.0-rc.1", Maturity::Rc),
            ("1.0.0-RC.10", "1.0.0-RC.10", "1.0.0-rc.10", Maturity::Rc),
            ("v2.0-rc.0", "2.0-rc.0", "2.0.0-rc.0", Maturity::Rc),
            (
                "9223372036854775807.0.1",
                "9223372036854775807.0.1",
                "9223372036854775807.0.1",
                Maturity::Stable,
            ),
        ] {
            let version = v(text);
            assert_eq!(version.to_string(), shown, "{text}");
            assert_eq!(version.normalized(), normalized, "{text}");
            assert_eq!(version.maturity(), maturity, "{text}");
            assert_eq!(v(&version.to_string()), version, "{text} round trip");
            assert_eq!(v(&version.normalized()), version, "{text} normalized");
        }
    }

    #[test]
    fn refuses_everything_else_naming_the_rule() {
        use VersionProblem as P;
        for (text, expected) in [
            ("", P::Empty),
            ("v", P::Empty),
            ("1", P::Components(1)),
            ("1.2.3.4", P::Components(4)),
            ("1..2", P::EmptyComponent),
            ("1.2.", P::EmptyComponent),
            (".1.2", P::EmptyComponent),
            ("1.2.3+build.3", P::BuildMetadata),
            ("1.2.3-beta+exp", P::BuildMetadata),
            ("01.2.3", P::LeadingZero("01".into())),
            ("1.02", P::LeadingZero("02".into())),
            ("1.0.0-rc.01", P::LeadingZero("01".into())),
            ("1.0.0-rc01", P::LeadingZero("01".into())),
            (
                "9223372036854775808.0.0",
                P::TooLarge("9223372036854775808".into()),
            ),
            (
                "1.0.0-beta.99999999999999999999",
                P::TooLarge("99999999999999999999".into()),
            ),
            ("1.2.x", P::NotANumber("x".into())),
            ("V1.2.3", P::NotANumber("V1".into())),
            ("vv1.2", P::NotANumber("v1".into())),
            (" 1.2.3", P::NotANumber(" 1".into())),
            ("1.2.3 ", P::NotANumber("3 ".into())),
            ("1.2.3-pre.1", P::UnknownTag("pre.1".into())),
            ("1.2.3-p1", P::UnknownTag("p1".into())),
            ("1.2.3-pl", P::UnknownTag("pl".into())),
            ("1.2.3-patch", P::UnknownTag("patch".into())),
            ("1.2.3-Beta", P::UnknownTag("Beta".into())),
            ("1.2.3-Rc1", P::UnknownTag("Rc1".into())),
            ("1.2.3-", P::UnknownTag("".into())),
            ("1.2.3-1", P::UnknownTag("1".into())),
            ("1.2.3-beta.", P::BadTagNumber(".".into())),
            ("1.2.3-beta.x", P::BadTagNumber(".x".into())),
            ("1.2.3-beta-2", P::BadTagNumber("-2".into())),
            ("1.2.3-beta.1.2", P::BadTagNumber(".1.2".into())),
            ("1.2.3-rc1a", P::BadTagNumber("1a".into())),
        ] {
            assert_eq!(problem(text), expected, "{text}");
        }
    }

    #[test]
    fn order_is_semver_precedence_over_the_normalized_form() {
        let ascending = [
            "0.9.9",
            "1.0-dev",
            "1.0.0-dev.1",
            "1.0.0-a",
            "1.0.0-alpha.1",
            "1.0.0-b1",
            "1.0.0-beta.2",
            "1.0.0-beta.10",
            "1.0.0-RC",
            "1.0.0-rc.0",
            "1.0.0-rc2",
            "1.0.0-rc10",
            "1.0.0",
            "1.0.1",
            "1.1",
            "1.10.0",
            "2.0.0",
        ];
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        for (a, b) in [
            ("1.2", "1.2.0"),
            ("v1.2.0", "1.2.0"),
            ("1.0.0-rc1", "1.0.0-rc.1"),
            ("1.0.0-RC1", "1.0.0-rc.1"),
            ("1.0.0-a", "1.0.0-alpha"),
            ("1.0.0-b.3", "1.0.0-beta3"),
        ] {
            assert_eq!(v(a), v(b), "{a} = {b}");
            assert_eq!(v(a).order_key(), v(b).order_key(), "{a} = {b}");
        }
        // Semver proper would compare `rc10` and `rc2` as text; PHP and we as numbers.
        assert!(v("1.0.0-rc10") > v("1.0.0-rc2"));
        // Hash agrees with equality: a set holds one of each normalized version.
        let set: std::collections::HashSet<Version> =
            ["1.2", "1.2.0", "v1.2.0", "1.2.0-RC1", "1.2.0-rc.1", "1.2.1"]
                .iter()
                .map(|t| v(t))
                .collect();
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn the_two_forms_of_one_line_clash() {
        assert!(v("1.2").clashes_with(&v("1.2.0")));
        assert!(v("1.2").clashes_with(&v("1.2.0-beta")));
        assert!(v("1.2.0-rc").clashes_with(&v("1.2-beta")));
        assert!(!v("1.2").clashes_with(&v("1.2.1")));
        assert!(!v("1.2-beta").clashes_with(&v("1.2")));
        assert!(!v("1.2.0").clashes_with(&v("1.2.0-rc")));
        assert!(!v("1.3").clashes_with(&v("1.2.0")));
        // Why: these clashing pairs are ordered one way here and the other way by PHP.
        assert_eq!(php::compare("1.2", "1.2.0-beta"), Ordering::Less);
        assert!(v("1.2") > v("1.2.0-beta"));
        assert_eq!(php::compare("1.2-rc", "1.2.0-beta"), Ordering::Less);
        assert!(v("1.2-rc") > v("1.2.0-beta"));
    }

    #[test]
    fn serde_keeps_the_written_form() {
        let version = v("v1.2-rc1");
        let json = serde_json::to_string(&version).unwrap();
        assert_eq!(json, "\"1.2-rc1\"");
        let back: Version = serde_json::from_str(&json).unwrap();
        assert_eq!(back.as_str(), "1.2-rc1");
        let err = serde_json::from_str::<Version>("\"1.2.3-pre\"").unwrap_err();
        assert!(err.to_string().contains("-pre"), "{err}");
    }

    /// A reference `version_compare`, written from PHP's documentation: canonicalize
    /// (`-`, `_`, `+` and other non-alphanumerics become `.`; a `.` goes between a digit
    /// and a non-digit), then compare piece by piece: numbers as numbers; strings by their
    /// special form, `(any other) < dev < alpha = a < beta = b < RC = rc < # < pl = p` (a
    /// piece has a form when it starts with its name; a number counts as `#` against a
    /// string). When one side runs out, a remaining number makes its side newer, a
    /// remaining string is compared with `#`.
    mod php {
        use std::cmp::Ordering;

        fn canonicalize(text: &str) -> String {
            let mut out = String::new();
            let mut prev: Option<char> = None;
            for c in text.chars() {
                let sep = |out: &mut String| {
                    if !out.is_empty() && !out.ends_with('.') {
                        out.push('.');
                    }
                };
                if prev.is_none() {
                    out.push(c);
                } else if !c.is_ascii_alphanumeric() {
                    sep(&mut out);
                } else {
                    let p = prev.unwrap_or('.');
                    if p != '.' && p.is_ascii_digit() != c.is_ascii_digit() {
                        sep(&mut out);
                    }
                    out.push(c);
                }
                prev = Some(c);
            }
            out
        }

        fn form(piece: &str) -> i32 {
            const FORMS: [(&str, i32); 10] = [
                ("dev", 0),
                ("alpha", 1),
                ("a", 1),
                ("beta", 2),
                ("b", 2),
                ("RC", 3),
                ("rc", 3),
                ("#", 4),
                ("pl", 5),
                ("p", 5),
            ];
            FORMS
                .iter()
                .find(|(name, _)| piece.starts_with(name))
                .map_or(-1, |(_, order)| *order)
        }

        fn numeric(piece: &str) -> bool {
            piece.starts_with(|c: char| c.is_ascii_digit())
        }

        fn number(piece: &str) -> i64 {
            // strtol: saturates
            piece.parse::<i64>().unwrap_or(i64::MAX)
        }

        pub fn compare(a: &str, b: &str) -> Ordering {
            let (a, b) = (canonicalize(a), canonicalize(b));
            let pa: Vec<&str> = a.split('.').collect();
            let pb: Vec<&str> = b.split('.').collect();
            for (x, y) in pa.iter().zip(&pb) {
                let order = match (numeric(x), numeric(y)) {
                    (true, true) => number(x).cmp(&number(y)),
                    (false, false) => form(x).cmp(&form(y)),
                    (true, false) => form("#").cmp(&form(y)),
                    (false, true) => form(x).cmp(&form("#")),
                };
                if order.is_ne() {
                    return order;
                }
            }
            let rest = |longer: &[&str], shorter: &[&str]| -> Ordering {
                let piece = longer[shorter.len()];
                if numeric(piece) {
                    Ordering::Greater
                } else {
                    form(piece).cmp(&form("#"))
                }
            };
            match pa.len().cmp(&pb.len()) {
                Ordering::Equal => Ordering::Equal,
                Ordering::Greater => rest(&pa, &pb),
                Ordering::Less => rest(&pb, &pa).reverse(),
            }
        }

        #[test]
        fn documented_examples() {
            assert_eq!(compare("5.2", "5.2.0"), Ordering::Less);
            assert_eq!(compare("1.0rc1", "1.0"), Ordering::Less);
            assert_eq!(compare("1.0.0-a", "1.0.0-alpha"), Ordering::Equal);
            assert_eq!(compare("1.0.0-pl1", "1.0.0"), Ordering::Greater);
            assert_eq!(compare("1.0.0-p1", "1.0.0"), Ordering::Greater);
            // Why `-pre` and `+build` are refused: `pre` reads as `p` (after the release),
            // `build` as `b` (a beta).
            assert_eq!(compare("1.0.0-pre.1", "1.0.0"), Ordering::Greater);
            assert_eq!(compare("1.0.0+build.3", "1.0.0"), Ordering::Less);
            assert_eq!(compare("1.0.0-x", "1.0.0-dev"), Ordering::Less);
            assert_eq!(compare("1.0.0-rc10", "1.0.0-rc2"), Ordering::Greater);
            assert_eq!(compare("8.1.2-1ubuntu2.14", "8.1.2"), Ordering::Greater);
        }
    }

    /// splitmix64: deterministic, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A valid version in any accepted spelling, crowded on few values so that equal,
    /// neighbouring and clashing pairs are frequent.
    fn generate(rng: &mut Rng) -> String {
        let mut text = String::new();
        if rng.below(8) == 0 {
            text.push('v');
        }
        text.push_str(&format!("{}.{}", rng.below(3), rng.below(3)));
        if rng.below(4) != 0 {
            text.push_str(&format!(".{}", rng.below(3)));
        }
        if rng.below(2) == 0 {
            let tags = ["dev", "alpha", "a", "beta", "b", "rc", "RC"];
            text.push('-');
            text.push_str(tags[rng.below(tags.len() as u64) as usize]);
            match rng.below(3) {
                0 => {}
                1 => text.push_str(&format!(".{}", rng.below(12))),
                _ => text.push_str(&format!("{}", rng.below(12))),
            }
        }
        if rng.below(50) == 0 {
            text = format!("{}.{}.{}", rng.next() >> 1, rng.next() >> 1, rng.below(3));
        }
        text
    }

    #[test]
    fn order_equals_php_version_compare_for_generated_versions() {
        let mut rng = Rng(0x5eed);
        let versions: Vec<Version> = (0..600).map(|_| v(&generate(&mut rng))).collect();
        let (mut compared, mut clashing) = (0, 0);
        for a in &versions {
            for b in &versions {
                // Sites compare the rendered strings.
                let expected = php::compare(a.as_str(), b.as_str());
                assert_eq!(a.order_key().cmp(&b.order_key()), a.cmp(b), "{a} vs {b}");
                if a.clashes_with(b) {
                    clashing += 1;
                    continue;
                }
                compared += 1;
                assert_eq!(a.cmp(b), expected, "{a} vs {b}: ours vs PHP");
                assert_eq!(
                    a.cmp(b),
                    php::compare(&a.normalized(), &b.normalized()),
                    "{a} vs {b} normalized"
                );
            }
        }
        assert!(
            compared > 300_000 && clashing > 1000,
            "{compared} {clashing}"
        );
    }

    /// The same against the real `php`, for a few hundred pairs; also checks the reference
    /// implementation itself, clashing pairs included.
    #[test]
    fn order_equals_real_php() {
        let php_present = std::process::Command::new("php")
            .arg("-v")
            .output()
            .is_ok_and(|out| out.status.success());
        if !php_present {
            let line = "SKIPPED order_equals_real_php: no `php` on PATH \
                        (apt-get install php-cli); only the reference version_compare ran";
            // Past the test harness's capture: this line must be seen.
            let _ = writeln!(std::io::stderr(), "\n*** {line} ***\n");
            assert!(std::env::var_os("CI").is_none(), "{line}, and CI is set");
            return;
        }
        let mut rng = Rng(0xc0ffee);
        let mut pairs: Vec<(Version, Version)> = (0..400)
            .map(|_| (v(&generate(&mut rng)), v(&generate(&mut rng))))
            .collect();
        for (a, b) in [
            ("1.2", "1.2.0-beta"),
            ("1.0.0-rc10", "1.0.0-rc2"),
            ("1.2", "1.2.0"),
        ] {
            pairs.push((v(a), v(b)));
        }
        let input: String = pairs.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
        let mut child = std::process::Command::new("php")
            .args([
                "-r",
                "while (($l = fgets(STDIN)) !== false) { [$a, $b] = explode(' ', trim($l)); \
                 echo version_compare($a, $b), \"\\n\"; }",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("php runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let answers: Vec<i32> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        assert_eq!(answers.len(), pairs.len());
        let mut compared = 0;
        for ((a, b), answer) in pairs.iter().zip(answers) {
            let real = answer.cmp(&0);
            assert_eq!(
                php::compare(a.as_str(), b.as_str()),
                real,
                "reference: {a} vs {b}"
            );
            if !a.clashes_with(b) {
                compared += 1;
                assert_eq!(a.cmp(b), real, "{a} vs {b}: ours vs php");
            }
        }
        assert!(compared > 300, "{compared}");
    }

    #[test]
    fn platform_versions_are_read_tolerantly() {
        let p = |text| PlatformVersion::parse_lenient(text).map(|p| p.components().to_vec());
        assert_eq!(p("6.4.2"), Some(vec![6, 4, 2]));
        assert_eq!(p("8.1.2-1ubuntu2.14"), Some(vec![8, 1, 2]));
        assert_eq!(p("6.5-RC1"), Some(vec![6, 5]));
        assert_eq!(p("7.4.33-nmm1"), Some(vec![7, 4, 33]));
        assert_eq!(p(" v8.3 "), Some(vec![8, 3]));
        assert_eq!(p("6.4.x"), Some(vec![6, 4]));
        assert_eq!(p("8"), Some(vec![8]));
        assert_eq!(p(""), None);
        assert_eq!(p("latest"), None);
        assert_eq!(p(".5"), None);
        // The first eight numbers; `6.4` is `6.4.0`.
        assert_eq!(p("1.2.3.4.5.6.7.8.9"), Some(vec![1, 2, 3, 4, 5, 6, 7, 8]));
        let v = |text| PlatformVersion::parse_lenient(text).unwrap();
        assert_eq!(v("6.4"), v("6.4.0"));
        assert!(v("6.4.1") > v("6.4") && v("6.10") > v("6.9") && v("7") > v("6.99.99"));
    }

    #[test]
    fn requirements_compare_numerically_and_are_met_when_unknown() {
        let met = |required, client| requirement_met(Some(required), Some(client));
        assert!(met("6.0", "6.4.2"));
        assert!(met("6.4", "6.4"));
        assert!(
            met("6.4.0", "6.4"),
            "a missing component is 0, as WordPress reads it"
        );
        assert!(!met("6.4.1", "6.4"));
        assert!(!met("6.5", "6.4.2"));
        assert!(met("6.10", "6.10.1"));
        assert!(!met("6.10", "6.9.9"));
        assert!(met("7.4", "8.1.2-1ubuntu2.14"));
        assert!(met("8.1.2", "8.1.2-1ubuntu2.14"));
        assert!(!met("8.2", "8.1.2-1ubuntu2.14"));
        assert!(met("6.5", "6.5-RC1"), "WordPress strips its own -RC1");
        assert!(
            requirement_met(Some("8.2"), None),
            "the client sent nothing"
        );
        assert!(requirement_met(None, Some("5.0")));
        assert!(requirement_met(Some(""), Some("5.0")));
        assert!(requirement_met(Some("8.2"), Some("")));
        assert!(requirement_met(Some("any"), Some("5.0")));
    }

    #[test]
    fn maturity_parses_its_five_names() {
        for m in Maturity::ALL {
            assert_eq!(m.as_str().parse::<Maturity>(), Ok(m));
        }
        assert!("Stable".parse::<Maturity>().is_err());
        assert!("a".parse::<Maturity>().is_err());
        assert!(Maturity::Dev < Maturity::Alpha && Maturity::Rc < Maturity::Stable);
    }
}
