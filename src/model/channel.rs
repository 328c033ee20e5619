//! Channels (SPEC §7 *Channels*): which version each channel offers.
//!
//! A channel names the *least acceptable stability*: it offers the highest version whose
//! maturity is its own or more stable (`beta` offers a stable `1.0.0` until a
//! `1.1.0-beta.1` exists; `dev` admits every maturity). Which versions count at all —
//! published, admitted by the rollout, requirements met — is the caller's `admit`.

use super::version::{Maturity, Version};
use std::fmt;

/// A release channel, most stable first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Channel {
    #[default]
    Stable,
    Rc,
    Beta,
    Alpha,
    Dev,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Stable,
        Channel::Rc,
        Channel::Beta,
        Channel::Alpha,
        Channel::Dev,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Stable => "stable",
            Channel::Rc => "rc",
            Channel::Beta => "beta",
            Channel::Alpha => "alpha",
            Channel::Dev => "dev",
        }
    }

    /// One of the five names, exactly (a `{channel}` path segment: anything else is `404`).
    pub fn parse(text: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The least stable maturity this channel offers.
    pub const fn least(self) -> Maturity {
        match self {
            Channel::Stable => Maturity::Stable,
            Channel::Rc => Maturity::Rc,
            Channel::Beta => Maturity::Beta,
            Channel::Alpha => Maturity::Alpha,
            Channel::Dev => Maturity::Dev,
        }
    }

    /// Whether a version of this maturity may be offered on this channel.
    pub fn admits(self, maturity: Maturity) -> bool {
        maturity >= self.least()
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for Channel {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Channel::parse(text).ok_or_else(|| {
            format!("unknown channel `{text}` (known: stable, rc, beta, alpha, dev)")
        })
    }
}

/// Something with a version and a maturity: the version record, or a bare [`Version`]
/// (whose maturity is its tag's). The maturity may be set explicitly and differ from the
/// tag; channels follow the maturity.
pub trait Versioned {
    fn version(&self) -> &Version;

    fn maturity(&self) -> Maturity {
        self.version().maturity()
    }
}

impl Versioned for Version {
    fn version(&self) -> &Version {
        self
    }
}

/// The version `channel` offers: the highest of `versions` whose maturity the channel
/// admits and that `admit` accepts (published, rollout, requirements: the caller's
/// decision). `None` when there is none. Of equal versions (which a product cannot hold)
/// the last wins.
pub fn candidate<'a, V: Versioned + ?Sized>(
    versions: impl IntoIterator<Item = &'a V>,
    channel: Channel,
    admit: impl Fn(&V) -> bool,
) -> Option<&'a V> {
    versions
        .into_iter()
        .filter(|v| channel.admits(v.maturity()) && admit(*v))
        .max_by(|a, b| a.version().cmp(b.version()))
}

/// What each of the five channels offers (`GET /api/v1/products/{id}/channels`).
#[derive(Debug)]
pub struct ChannelPicks<'a, V: ?Sized> {
    picks: [Option<&'a V>; 5],
}

impl<'a, V: ?Sized> ChannelPicks<'a, V> {
    pub fn get(&self, channel: Channel) -> Option<&'a V> {
        self.picks[channel.index()]
    }

    /// The five channels, most stable first.
    pub fn iter(&self) -> impl Iterator<Item = (Channel, Option<&'a V>)> + '_ {
        Channel::ALL.into_iter().map(|c| (c, self.get(c)))
    }
}

/// [`candidate`] for every channel at once, in one pass; `admit` is asked once per version.
pub fn resolve_channels<'a, V: Versioned + ?Sized>(
    versions: impl IntoIterator<Item = &'a V>,
    admit: impl Fn(&V) -> bool,
) -> ChannelPicks<'a, V> {
    let mut picks: [Option<&'a V>; 5] = [None; 5];
    for version in versions {
        if !admit(version) {
            continue;
        }
        for channel in Channel::ALL {
            if !channel.admits(version.maturity()) {
                continue;
            }
            let pick = &mut picks[channel.index()];
            if pick.is_none_or(|best| version.version() >= best.version()) {
                *pick = Some(version);
            }
        }
    }
    ChannelPicks { picks }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Record {
        version: Version,
        maturity: Maturity,
        published: bool,
    }

    impl Versioned for Record {
        fn version(&self) -> &Version {
            &self.version
        }

        fn maturity(&self) -> Maturity {
            self.maturity
        }
    }

    fn record(text: &str, published: bool) -> Record {
        let version = Version::parse(text).unwrap();
        Record {
            maturity: version.maturity(),
            version,
            published,
        }
    }

    fn picks<V: Versioned>(versions: &[V], admit: impl Fn(&V) -> bool) -> Vec<Option<String>> {
        let resolved = resolve_channels(versions, &admit);
        Channel::ALL
            .into_iter()
            .map(|channel| {
                let one = candidate(versions, channel, &admit).map(|v| v.version().to_string());
                let all = resolved.get(channel).map(|v| v.version().to_string());
                assert_eq!(one, all, "{channel}: candidate and resolve_channels agree");
                one
            })
            .collect()
    }

    fn names(list: [Option<&str>; 5]) -> Vec<Option<String>> {
        list.iter().map(|n| n.map(str::to_owned)).collect()
    }

    #[test]
    fn channel_names_parse_exactly() {
        for channel in Channel::ALL {
            assert_eq!(Channel::parse(channel.as_str()), Some(channel));
            assert_eq!(channel.to_string().parse::<Channel>(), Ok(channel));
        }
        for bad in [
            "",
            "Stable",
            "RC",
            "release",
            "changelog",
            "latest",
            " beta",
        ] {
            assert_eq!(Channel::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn each_channel_admits_its_maturity_and_more_stable() {
        for channel in Channel::ALL {
            for maturity in Maturity::ALL {
                assert_eq!(channel.admits(maturity), maturity >= channel.least());
            }
        }
        assert!(Channel::Dev.admits(Maturity::Dev));
        assert!(Channel::Beta.admits(Maturity::Stable));
        assert!(Channel::Beta.admits(Maturity::Rc));
        assert!(!Channel::Beta.admits(Maturity::Alpha));
        assert!(!Channel::Stable.admits(Maturity::Rc));
    }

    #[test]
    fn a_stable_release_is_the_latest_everywhere_until_a_newer_prerelease() {
        let mut versions = vec![record("0.9.0", true), record("1.0.0", true)];
        let all = |_: &Record| true;
        assert_eq!(picks(&versions, all), names([Some("1.0.0"); 5]));
        versions.push(record("1.1.0-beta.1", true));
        assert_eq!(
            picks(&versions, all),
            names([
                Some("1.0.0"),
                Some("1.0.0"),
                Some("1.1.0-beta.1"),
                Some("1.1.0-beta.1"),
                Some("1.1.0-beta.1")
            ])
        );
        versions.push(record("1.1.0-rc1", true));
        versions.push(record("1.2.0-dev", true));
        versions.push(record("1.1.0-a", true));
        assert_eq!(
            picks(&versions, all),
            names([
                Some("1.0.0"),
                Some("1.1.0-rc1"),
                Some("1.1.0-rc1"),
                Some("1.1.0-rc1"),
                Some("1.2.0-dev")
            ])
        );
        versions.push(record("1.1", true));
        assert_eq!(
            picks(&versions, all),
            names([
                Some("1.1"),
                Some("1.1"),
                Some("1.1"),
                Some("1.1"),
                Some("1.2.0-dev")
            ])
        );
    }

    #[test]
    fn admit_decides_which_versions_count() {
        let versions = [
            record("1.0.0", true),
            record("2.0.0", false),
            record("2.1.0-beta", true),
        ];
        assert_eq!(
            picks(&versions, |v| v.published),
            names([
                Some("1.0.0"),
                Some("1.0.0"),
                Some("2.1.0-beta"),
                Some("2.1.0-beta"),
                Some("2.1.0-beta")
            ])
        );
        // Skipped versions fall back to the next lower one, per channel.
        assert_eq!(
            picks(&versions, |v| v.version.major() < 2),
            names([Some("1.0.0"); 5])
        );
        assert_eq!(picks(&versions, |_| false), names([None; 5]));
        assert_eq!(picks::<Record>(&[], |_| true), names([None; 5]));
    }

    #[test]
    fn the_explicit_maturity_wins_over_the_tag() {
        let mut beta_marked = record("2.0.0", true);
        beta_marked.maturity = Maturity::Beta;
        let versions = [record("1.0.0", true), beta_marked];
        assert_eq!(
            picks(&versions, |_| true),
            names([
                Some("1.0.0"),
                Some("1.0.0"),
                Some("2.0.0"),
                Some("2.0.0"),
                Some("2.0.0")
            ])
        );
    }

    #[test]
    fn bare_versions_are_versioned_by_their_tag() {
        let versions: Vec<Version> = ["1.0.0", "1.1.0-rc.2", "1.1.0-rc.10", "0.1"]
            .iter()
            .map(|t| Version::parse(t).unwrap())
            .collect();
        let rc = candidate(&versions, Channel::Rc, |_| true).unwrap();
        assert_eq!(rc.as_str(), "1.1.0-rc.10");
        let picked = resolve_channels(&versions, |_| true);
        let shown: Vec<_> = picked
            .iter()
            .map(|(c, v)| format!("{c}={}", v.map_or("-", |v| v.as_str())))
            .collect();
        assert_eq!(
            shown,
            [
                "stable=1.0.0",
                "rc=1.1.0-rc.10",
                "beta=1.1.0-rc.10",
                "alpha=1.1.0-rc.10",
                "dev=1.1.0-rc.10"
            ]
        );
    }
}
