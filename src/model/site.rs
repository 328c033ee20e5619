//! Sites (SPEC §9 *Sites*), pure: the identity of a WordPress activation, so that
//! `https://WWW.Example.com/shop/` and `example.com` are one site; which sites are
//! development sites (activated without using the key's limit); and the masked form a
//! key holder sees in their activation list.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest host name (RFC 1035: 253 characters without the trailing dot).
pub const MAX_HOST_LEN: usize = 253;
/// Longest label of a host name (RFC 1035).
const MAX_LABEL_LEN: usize = 63;
/// Longest input read at all, URL and all: no real site URL is longer.
const MAX_INPUT_LEN: usize = 2048;

/// A normalized site: a lower-case ASCII host name (IDN as punycode, no leading `www.`,
/// no trailing dot), an IPv4 literal (`192.0.2.1`), or an IPv6 literal in brackets,
/// compressed as RFC 5952 says (`[2001:db8::1]`), as a URL writes it. Made only by
/// [`normalize_site`], which gives the same `Site` for it again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Site(String);

impl Site {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address, when the site is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.0.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            None => self.0.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        }
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl Serialize for Site {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Site {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        normalize_site(&text).map_err(serde::de::Error::custom)
    }
}

/// Why a string names no site; [`fmt::Display`] gives the human reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteError(String);

impl SiteError {
    fn new(reason: impl Into<String>) -> Self {
        SiteError(reason.into())
    }

    pub fn reason(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SiteError {}

/// The site a URL or bare host names: surrounding whitespace trimmed; scheme, userinfo,
/// port, path, query and fragment removed; lower-cased; IDN to punycode (UTS 46, as
/// browsers do); every leading `www.` and one trailing dot removed. IP literals stay as
/// they are (an IPv6 one, with or without brackets in `input`, comes out bracketed and
/// compressed).
///
/// # Errors
/// A reason, when there is no host, or it holds characters no host name can (spaces,
/// `%`, `<`…), has an empty label or one over 63 characters, is over 253 characters, ends
/// in a numeric label without being an IPv4 address, or has a bad port.
pub fn normalize_site(input: &str) -> Result<Site, SiteError> {
    let input = super::trim(input);
    if let Some(site) = plain_site(input) {
        return Ok(site);
    }
    normalize_in_full(input)
}

/// The usual site in one pass, or `None` to take the full path: `http://` or `https://`,
/// then a host of lower-case letters, digits, `-` and `.` (no port, user, `_`, upper
/// case or punycode label; labels 1–63 long, 253 in all; the last label not all digits,
/// so never an address), then the end or `/`, `?`, `#`. What [`normalize_in_full`] makes
/// of such an input, by construction; a test compares the two on many inputs.
fn plain_site(input: &str) -> Option<Site> {
    if input.len() > MAX_INPUT_LEN {
        return None;
    }
    let rest = input
        .strip_prefix("https://")
        .or_else(|| input.strip_prefix("http://"))?;
    let bytes = rest.as_bytes();
    let mut end = bytes.len();
    let (mut label_len, mut label_digits) = (0usize, true);
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'a'..=b'z' => label_digits = false,
            b'0'..=b'9' => {}
            b'-' => {
                label_digits = false;
                // `xn--` opens a punycode label: IDNA checks those.
                if label_len == 3 && bytes[i - 3..i] == *b"xn-" {
                    return None;
                }
            }
            b'.' if label_len > 0 => {
                (label_len, label_digits) = (0, true);
                continue;
            }
            b'/' | b'?' | b'#' => {
                end = i;
                break;
            }
            _ => return None,
        }
        label_len += 1;
        if label_len > MAX_LABEL_LEN {
            return None;
        }
    }
    // An empty or trailing-dot host, or an all-digit last label (an address, or refused).
    if label_len == 0 || label_digits || end > MAX_HOST_LEN {
        return None;
    }
    let mut name = &rest[..end];
    while let Some(rest) = name.strip_prefix("www.") {
        name = rest;
    }
    Some(Site(name.to_owned()))
}

fn normalize_in_full(input: &str) -> Result<Site, SiteError> {
    if input.is_empty() {
        return Err(SiteError::new("the site is empty"));
    }
    if input.len() > MAX_INPUT_LEN {
        return Err(SiteError::new(format!(
            "the site URL is over {MAX_INPUT_LEN} characters long"
        )));
    }
    let rest = strip_scheme(input);
    // Byte searches: every delimiter is ASCII, so each position is a char boundary.
    let end = rest
        .bytes()
        .position(|b| matches!(b, b'/' | b'?' | b'#' | b'\\'))
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_port = match authority.bytes().rposition(|b| b == b'@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    let host = match split_port(host_port)? {
        Host::V6(ip) => return Ok(Site(format!("[{ip}]"))),
        Host::Name(host) => host,
    };
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(Site(ip.to_string()));
    }
    if host.is_empty() {
        return Err(SiteError::new("the site has no host name"));
    }
    let ascii: std::borrow::Cow<'_, str> = if is_plain_ascii_name(host) {
        // Letters, digits, `-` and `.` without a punycode label: IDNA maps these to
        // themselves, lower-cased (the usual site, and the update check's hot path).
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            host.to_ascii_lowercase().into()
        } else {
            host.into()
        }
    } else {
        idna::domain_to_ascii(host)
            .map_err(|_| {
                SiteError::new(format!(
                    "`{host}` is not a valid host name (internationalized names must follow IDNA)"
                ))
            })?
            .into()
    };
    // After the mapping: a full-width `１２７.０.０.１` is now an address too.
    if let Ok(ip) = ascii.parse::<Ipv4Addr>() {
        return Ok(Site(ip.to_string()));
    }
    let mut name = ascii.strip_suffix('.').unwrap_or(&ascii);
    check_host_name(name)?;
    while let Some(rest) = name.strip_prefix("www.") {
        name = rest;
    }
    Ok(Site(name.to_owned()))
}

/// Whether `host` is only ASCII letters, digits, `-` and `.`, with no `xn--` (punycode)
/// label: a name IDNA leaves as it is but for case.
fn is_plain_ascii_name(host: &str) -> bool {
    host.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !host
            .split('.')
            .any(|label| label.len() >= 4 && label[..4].eq_ignore_ascii_case("xn--"))
}

/// `input` without a leading `scheme://` (or `//`), when it has one.
fn strip_scheme(input: &str) -> &str {
    let scheme_end = input.bytes().position(|b| b == b':');
    if let Some(colon) = scheme_end
        && input[colon..].starts_with("://")
    {
        let (scheme, rest) = (&input[..colon], &input[colon + 3..]);
        let mut chars = scheme.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if valid {
            return rest;
        }
    }
    input.strip_prefix("//").unwrap_or(input)
}

enum Host<'a> {
    V6(Ipv6Addr),
    Name(&'a str),
}

/// The host of `host[:port]`, `[v6][:port]` or a bare IPv6 address; the port is checked
/// and dropped.
fn split_port(host_port: &str) -> Result<Host<'_>, SiteError> {
    if let Some(bracketed) = host_port.strip_prefix('[') {
        let Some((inner, after)) = bracketed.split_once(']') else {
            return Err(SiteError::new("an IPv6 address has no closing `]`"));
        };
        let ip = inner
            .parse::<Ipv6Addr>()
            .map_err(|_| SiteError::new(format!("`[{inner}]` is not a valid IPv6 address")))?;
        if !after.is_empty() {
            check_port(after.strip_prefix(':').ok_or_else(|| {
                SiteError::new(format!("unexpected `{after}` after an IPv6 address"))
            })?)?;
        }
        return Ok(Host::V6(ip));
    }
    if host_port.bytes().filter(|&b| b == b':').count() > 1 {
        return host_port.parse::<Ipv6Addr>().map(Host::V6).map_err(|_| {
            SiteError::new(format!(
                "`{host_port}` is neither a host name with a port nor an IPv6 address"
            ))
        });
    }
    match host_port.split_once(':') {
        Some((host, port)) => {
            check_port(port)?;
            Ok(Host::Name(host))
        }
        None => Ok(Host::Name(host_port)),
    }
}

/// An empty port (`example.com:`) is allowed, as in URLs.
fn check_port(port: &str) -> Result<(), SiteError> {
    if port.is_empty() || (port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok())
    {
        Ok(())
    } else {
        Err(SiteError::new(format!(
            "the port `{port}` is not a number from 0 to 65535"
        )))
    }
}

/// A punycoded, lower-cased host name: labels of `[a-z0-9_-]`, 1–63 characters each,
/// 253 in all, the last one not all digits.
fn check_host_name(name: &str) -> Result<(), SiteError> {
    if name.is_empty() {
        return Err(SiteError::new("the site has no host name"));
    }
    let allowed =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_');
    if !name.bytes().all(allowed)
        && let Some(bad) = name.chars().find(|c| !c.is_ascii() || !allowed(*c as u8))
    {
        return Err(SiteError::new(format!(
            "the host name `{name}` contains {bad:?}, which no host name can"
        )));
    }
    if name.len() > MAX_HOST_LEN {
        return Err(SiteError::new(format!(
            "the host name is {} characters long; at most {MAX_HOST_LEN} are allowed",
            name.len()
        )));
    }
    for label in name.as_bytes().split(|&b| b == b'.') {
        if label.is_empty() {
            return Err(SiteError::new(format!(
                "the host name `{name}` has an empty label (`..`, or a leading dot)"
            )));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(SiteError::new(format!(
                "the host name `{name}` has a label over {MAX_LABEL_LEN} characters"
            )));
        }
    }
    if name
        .as_bytes()
        .rsplit(|&b| b == b'.')
        .next()
        .is_some_and(|last| last.iter().all(u8::is_ascii_digit))
    {
        return Err(SiteError::new(format!(
            "`{name}` is not a valid IPv4 address (four numbers 0–255, like 192.0.2.1)"
        )));
    }
    Ok(())
}

/// The site in a WordPress User-Agent (`WordPress/6.4; https://example.com`): the URL
/// part, trimmed, to be given to [`normalize_site`]; `None` for any other User-Agent.
pub fn site_from_user_agent(ua: &str) -> Option<&str> {
    // Cut at the `;` bytes (ASCII: char boundaries), no pattern searchers.
    let rest = ua.strip_prefix("WordPress/")?;
    let rest = &rest[rest.bytes().position(|b| b == b';')? + 1..];
    let site = super::trim(&rest[..rest.bytes().position(|b| b == b';').unwrap_or(rest.len())]);
    (!site.is_empty()).then_some(site)
}

/// The default development-site host patterns (SPEC §9), the value of
/// `--dev-site-patterns` when it is not given.
pub const DEFAULT_DEV_SITE_PATTERNS: &[&str] = &[
    "localhost",
    "*.localhost",
    "*.local",
    "*.test",
    "*.example",
    "*.invalid",
    "*.dev.cc",
    "staging.*",
    "stage.*",
    "dev.*",
    "test.*",
    "*staging*.wpengine.com",
    "*staging*.wpenginepowered.com",
    "*.kinsta.cloud",
    "*.flywheelstaging.com",
    "dev-*.pantheonsite.io",
    "test-*.pantheonsite.io",
    "*.wpstage.net",
];

/// Which sites are development sites, activated without using a key's limit.
///
/// Two rules:
/// - **IP literals** by range, always (a glob cannot say a range): loopback
///   (`127.0.0.0/8`, `::1`), private (`10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`,
///   `fc00::/7`), link-local (`169.254.0.0/16`, `fe80::/10`), unspecified (`0.0.0.0`,
///   `::`), and IPv4-mapped IPv6 forms of these.
/// - **Host patterns**: globs matched against the whole normalized site, `*` matching
///   any run of characters, dots included (`*.local` matches `a.b.local`, not `local`).
///   [`DEFAULT_DEV_SITE_PATTERNS`] unless `--dev-site-patterns` gives others, which
///   replace them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevSitePatterns {
    patterns: Vec<String>,
}

impl Default for DevSitePatterns {
    fn default() -> Self {
        DevSitePatterns {
            patterns: DEFAULT_DEV_SITE_PATTERNS
                .iter()
                .map(|&p| p.to_owned())
                .collect(),
        }
    }
}

impl DevSitePatterns {
    /// Parses a `--dev-site-patterns` value: comma-separated globs
    /// (`*.local,staging.*,*-staging.example.com`), each trimmed and lower-cased; empty
    /// items are skipped, so `""` means no host pattern at all (IP literals still count).
    ///
    /// # Errors
    /// A reason naming the pattern: a character other than `a-z 0-9 . - _ *` (write
    /// internationalized names in punycode, `xn--…`), or over 253 characters.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut patterns = Vec::new();
        for item in text.split(',') {
            let pattern = item.trim().to_ascii_lowercase();
            if pattern.is_empty() {
                continue;
            }
            if let Some(bad) = pattern.chars().find(|c| {
                !(c.is_ascii_lowercase()
                    || c.is_ascii_digit()
                    || matches!(c, '.' | '-' | '_' | '*'))
            }) {
                let hint = if bad.is_ascii() {
                    ""
                } else {
                    " (write internationalized names in punycode, xn--…)"
                };
                return Err(format!(
                    "pattern `{pattern}`: may contain only a-z, 0-9, `.`, `-`, `_` and `*`, \
                     found {bad:?}{hint}"
                ));
            }
            if pattern.len() > MAX_HOST_LEN {
                return Err(format!(
                    "pattern `{pattern}`: over {MAX_HOST_LEN} characters long"
                ));
            }
            patterns.push(pattern);
        }
        Ok(DevSitePatterns { patterns })
    }

    /// The host patterns, in order.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(String::as_str)
    }

    /// Whether `site` is a development site: a local or private IP literal, or a host
    /// matching one of the patterns.
    pub fn is_dev(&self, site: &Site) -> bool {
        site.ip().is_some_and(is_local_ip)
            || self
                .patterns
                .iter()
                .any(|p| glob_match(p.as_bytes(), site.as_str().as_bytes()))
    }
}

/// The patterns as `--dev-site-patterns` takes them.
impl fmt::Display for DevSitePatterns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.patterns.join(","))
    }
}

fn is_local_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || first & 0xfe00 == 0xfc00 // fc00::/7, unique local
                || first & 0xffc0 == 0xfe80 // fe80::/10, link-local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_local_ip(IpAddr::V4(v4)))
        }
    }
}

/// Whether `text` matches `pattern` whole, `*` matching any run of bytes (none too).
/// Greedy with one backtrack point: linear in practice, `O(len²)` at worst.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// The site as a key holder sees it in their activation list (SPEC §9.2): the first two
/// characters of the first label and the whole last label kept, every character between
/// them a `*` (`example.com` → `ex*****.com`, `shop.example.com` → `sh**********.com`).
/// A first label of one or two characters keeps one or none, so something is always
/// masked (`a.com` → `*.com`); a single label keeps its first two (`localhost` →
/// `lo*******`); an IPv6 literal keeps its brackets and first two characters.
pub fn mask_host(site: &Site) -> String {
    let host = site.as_str();
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return format!("[{}]", mask_front(inner, ""));
    }
    match host.rsplit_once('.') {
        Some((body, last)) => mask_front(body, &format!(".{last}")),
        None => mask_front(host, ""),
    }
}

/// `body`'s first label's first (up to) two characters, stars for the rest of `body`,
/// then `tail`.
fn mask_front(body: &str, tail: &str) -> String {
    let first_label = body.split(['.', ':']).next().unwrap_or(body);
    let keep = first_label.chars().count().saturating_sub(1).min(2);
    let stars = body.chars().count() - keep;
    let mut out: String = body.chars().take(keep).collect();
    out.extend(std::iter::repeat_n('*', stars));
    out.push_str(tail);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(input: &str) -> String {
        match normalize_site(input) {
            Ok(site) => site.0,
            Err(e) => panic!("{input:?}: {e}"),
        }
    }

    fn refused(input: &str) -> String {
        match normalize_site(input) {
            Ok(site) => panic!("{input:?} was accepted as {site}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn the_one_pass_path_agrees_with_the_full_one() {
        let hosts = [
            "example.com",
            "www.example.com",
            "www.www.example.com",
            "www.",
            "www.com",
            "site-0.com",
            "a",
            "a.b",
            "1.2.3.4",
            "1.2.3.4a",
            "example.123",
            "123.example",
            "a..b",
            ".example",
            "example.",
            "-lead.example",
            "xn--bcher-kva.example",
            "a.xn--b.c",
            "axn--b.c",
            "xn-a.b",
            "under_score.example",
            "Example.com",
            "user@example.com",
            "example.com:8080",
            "[::1]",
            "x".repeat(63).leak(),
            "x".repeat(64).leak(),
            format!("{}.com", vec!["a".repeat(60); 4].join(".")).leak(),
            format!("{}.com", vec!["a".repeat(62); 4].join(".")).leak(),
            // Exactly 253 and 254 characters: the host limit's edge.
            format!(
                "{}.{}.com",
                "a".repeat(63),
                vec!["b".repeat(61); 3].join(".")
            )
            .leak(),
            format!(
                "{}.{}.{}.com",
                "a".repeat(63),
                "b".repeat(62),
                vec!["b".repeat(61); 2].join(".")
            )
            .leak(),
            "ab--c.example",
            "www.xn--bcher-kva.example",
            "www.xn--.example",
            "bücher.example",
            "",
        ];
        let mut tried = 0;
        for scheme in ["https://", "http://", "", "//", "HTTPS://", "ftp://"] {
            for host in hosts {
                for tail in ["", "/", "/shop/?x=1", "?a", "#f", ":443", "\\x", "/a:b@c"] {
                    let input = format!("{scheme}{host}{tail}");
                    if let Some(fast) = plain_site(&input) {
                        tried += 1;
                        assert_eq!(normalize_in_full(&input).ok(), Some(fast), "{input:?}");
                    }
                }
            }
        }
        // The fast path took the usual sites (and not only a handful).
        assert!(tried > 100, "{tried}");
        assert_eq!(
            plain_site("https://www.site-0.com/").unwrap().0,
            "site-0.com"
        );
        assert!(plain_site("https://1.2.3.4/").is_none());
        assert!(plain_site("https://xn--bcher-kva.example").is_none());
    }

    #[test]
    fn plain_ascii_names_skip_idna_with_the_same_result() {
        let names = [
            "example.com",
            "Example.COM",
            "a-b.c-d.example",
            "-lead.example",
            "trail-.example",
            "a..b",
            ".example",
            "example.",
            "123.example",
            "example.123",
            "x".repeat(64).leak(),
            "localhost",
            "xn--bcher-kva.example",
            "XN--BCHER-KVA.example",
            "a.xn--.b",
        ];
        for name in names {
            let idna = idna::domain_to_ascii(name).ok();
            if is_plain_ascii_name(name) {
                assert_eq!(idna, Some(name.to_ascii_lowercase()), "{name}");
            } else {
                assert!(name.to_ascii_lowercase().contains("xn--"), "{name}");
            }
        }
        assert!(!is_plain_ascii_name("bücher.example"));
        assert!(!is_plain_ascii_name("under_score.example"));
    }

    #[test]
    fn urls_and_hosts_normalize() {
        for (input, want) in [
            ("HTTPS://WWW.Example.COM:443/shop/?x=1", "example.com"),
            ("example.com", "example.com"),
            ("Example.com", "example.com"),
            ("  example.com \n", "example.com"),
            ("http://example.com", "example.com"),
            ("https://example.com/", "example.com"),
            ("https://example.com#top", "example.com"),
            ("https://example.com?p=1", "example.com"),
            ("https://example.com\\evil", "example.com"),
            ("example.com/wp", "example.com"),
            ("example.com:8080", "example.com"),
            ("example.com:", "example.com"),
            ("//example.com/x", "example.com"),
            (
                "https://user:pass@shop.example.com:8443/a/b",
                "shop.example.com",
            ),
            ("https://a@b@example.com", "example.com"),
            ("example.com.", "example.com"),
            ("https://example.com.:443/", "example.com"),
            ("www.example.com", "example.com"),
            ("www.www.example.com", "example.com"),
            ("WWW.example.com", "example.com"),
            ("wwwexample.com", "wwwexample.com"),
            ("shop.www.example.com", "shop.www.example.com"),
            ("www", "www"),
            ("localhost", "localhost"),
            ("http://localhost:8888/wp", "localhost"),
            ("my_site.example.com", "my_site.example.com"),
            ("wp+ssh://example.com", "example.com"),
        ] {
            assert_eq!(site(input), want, "{input:?}");
        }
    }

    #[test]
    fn idn_becomes_punycode() {
        assert_eq!(site("https://bücher.example"), "xn--bcher-kva.example");
        assert_eq!(site("BÜCHER.example"), "xn--bcher-kva.example");
        assert_eq!(site("xn--bcher-kva.example"), "xn--bcher-kva.example");
        assert_eq!(site("https://www.bücher.example/"), "xn--bcher-kva.example");
        assert_eq!(site("例え.テスト"), "xn--r8jz45g.xn--zckzah");
        // The ideographic full stop is a dot.
        assert_eq!(site("bücher。example"), "xn--bcher-kva.example");
    }

    #[test]
    fn ip_literals_stay() {
        assert_eq!(site("http://[2001:db8::1]:8080/"), "[2001:db8::1]");
        assert_eq!(site("[2001:db8::1]"), "[2001:db8::1]");
        assert_eq!(site("2001:db8::1"), "[2001:db8::1]");
        assert_eq!(site("[2001:DB8:0:0:0:0:0:1]"), "[2001:db8::1]");
        assert_eq!(site("[::1]"), "[::1]");
        assert_eq!(site("http://192.0.2.7:8080/wp"), "192.0.2.7");
        assert_eq!(site("192.0.2.7"), "192.0.2.7");
        assert_eq!(site("１９２.０.２.７"), "192.0.2.7");
        let v6 = normalize_site("[2001:db8::1]").unwrap();
        assert_eq!(v6.ip(), Some("2001:db8::1".parse().unwrap()));
        let v4 = normalize_site("192.0.2.7").unwrap();
        assert_eq!(v4.ip(), Some("192.0.2.7".parse().unwrap()));
        assert_eq!(normalize_site("example.com").unwrap().ip(), None);
    }

    #[test]
    fn bad_sites_are_refused_with_a_reason() {
        for (input, want) in [
            ("", "empty"),
            ("   ", "empty"),
            ("https://", "no host"),
            ("https:///path", "no host"),
            (".", "no host"),
            (":8080", "no host"),
            ("exa mple.com", "contains ' '"),
            ("https://exa mple.com/", "contains ' '"),
            ("exa%6dple.com", "contains '%'"),
            ("<script>.com", "contains '<'"),
            ("example..com", "empty label"),
            (".example.com", "empty label"),
            ("example.com..", "empty label"),
            ("example.com:http", "port `http`"),
            ("example.com:99999", "port `99999`"),
            ("example.com:+80", "port `+80`"),
            ("[2001:db8::1", "no closing `]`"),
            ("[2001:db8::g]", "not a valid IPv6"),
            ("[2001:db8::1]x", "unexpected `x`"),
            ("a:b:c", "neither a host name with a port nor an IPv6"),
            ("1.2.3", "not a valid IPv4"),
            ("256.1.1.1", "not a valid IPv4"),
            ("example.123", "not a valid IPv4"),
        ] {
            let reason = refused(input);
            assert!(reason.contains(want), "{input:?}: {reason}");
        }
        assert!(refused(&"a".repeat(3000)).contains("over 2048"));
    }

    #[test]
    fn length_limits() {
        let label = "a".repeat(63);
        let longest = [label.as_str(); 4].join(".")[..253].to_owned();
        assert_eq!(longest.len(), 253);
        assert_eq!(site(&longest), longest);
        let too_long = format!("{longest}a");
        assert!(refused(&too_long).contains("at most 253"));
        // The trailing dot is not counted.
        assert_eq!(site(&format!("{longest}.")), longest);
        assert!(refused(&format!("{}.com", "a".repeat(64))).contains("over 63"));
    }

    #[test]
    fn normalizing_twice_changes_nothing() {
        for input in [
            "HTTPS://WWW.Example.COM:443/shop/?x=1",
            "https://bücher.example",
            "www.www.example.com",
            "http://[2001:db8::1]:8080/",
            "192.0.2.7",
            "localhost",
        ] {
            let once = normalize_site(input).unwrap();
            assert_eq!(normalize_site(once.as_str()).unwrap(), once, "{input:?}");
        }
    }

    #[test]
    fn site_serializes_as_its_string() {
        let s = normalize_site("https://WWW.bücher.example/").unwrap();
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#""xn--bcher-kva.example""#
        );
        let back: Site = serde_json::from_str(r#""xn--bcher-kva.example""#).unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_str::<Site>(r#""exa mple.com""#).is_err());
    }

    #[test]
    fn wordpress_user_agent_names_its_site() {
        assert_eq!(
            site_from_user_agent("WordPress/6.4; https://example.com"),
            Some("https://example.com")
        );
        assert_eq!(
            site_from_user_agent("WordPress/6.4.2;  http://shop.example.com/sub/ "),
            Some("http://shop.example.com/sub/")
        );
        assert_eq!(
            site_from_user_agent("WordPress/6.4; https://example.com; extra"),
            Some("https://example.com")
        );
        assert_eq!(site_from_user_agent("WordPress/6.4"), None);
        assert_eq!(site_from_user_agent("WordPress/6.4; "), None);
        assert_eq!(site_from_user_agent("curl/8.5.0"), None);
        assert_eq!(
            site_from_user_agent("Mozilla/5.0 WordPress/6.4; https://example.com"),
            None
        );
        let ua = site_from_user_agent("WordPress/6.4; https://WWW.Example.com").unwrap();
        assert_eq!(site(ua), "example.com");
    }

    fn dev(patterns: &DevSitePatterns, input: &str) -> bool {
        patterns.is_dev(&normalize_site(input).unwrap())
    }

    #[test]
    fn default_dev_sites() {
        let d = DevSitePatterns::default();
        for input in [
            "localhost",
            "http://localhost:8080",
            "mysite.localhost",
            "mysite.local",
            "a.b.local",
            "mysite.test",
            "mysite.example",
            "mysite.invalid",
            "mysite.dev.cc",
            "staging.example.com",
            "https://www.staging.example.com",
            "stage.example.com",
            "dev.example.com",
            "test.example.com",
            "mysitestaging.wpengine.com",
            "mysite-staging.wpenginepowered.com",
            "mysite.kinsta.cloud",
            "stg-mysite.kinsta.cloud",
            "mysite.flywheelstaging.com",
            "dev-mysite.pantheonsite.io",
            "test-mysite.pantheonsite.io",
            "mysite.wpstage.net",
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.5",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.20",
            "169.254.1.1",
            "0.0.0.0",
            "[::1]",
            "[fc00::1]",
            "[fd12:3456::1]",
            "[fe80::1]",
            "[febf::1]",
            "[::ffff:192.168.1.1]",
        ] {
            assert!(dev(&d, input), "{input} should be a development site");
        }
        for input in [
            "example.com",
            "www.example.com",
            "local",
            "mylocal.com",
            "contest.example.org",
            "testing.example.com",
            "mystaging.com",
            "staging-example.com",
            "latest.example.com",
            "mysite.wpengine.com",
            "mysite.wpenginepowered.com",
            "live-mysite.pantheonsite.io",
            "kinsta.cloud",
            "example.dev",
            "172.32.0.1",
            "172.15.255.255",
            "192.169.1.1",
            "8.8.8.8",
            "[2001:db8::1]",
            "[fec0::1]",
            "[::ffff:8.8.8.8]",
        ] {
            assert!(!dev(&d, input), "{input} should not be a development site");
        }
    }

    #[test]
    fn patterns_replace_the_defaults() {
        let p = DevSitePatterns::parse(" *.LOCAL , staging.*,*-staging.example.com,").unwrap();
        assert_eq!(
            p.patterns().collect::<Vec<_>>(),
            ["*.local", "staging.*", "*-staging.example.com"]
        );
        assert_eq!(p.to_string(), "*.local,staging.*,*-staging.example.com");
        assert!(dev(&p, "mysite.local"));
        assert!(dev(&p, "staging.example.org"));
        assert!(dev(&p, "shop-staging.example.com"));
        assert!(dev(&p, "a.b-staging.example.com"));
        assert!(!dev(&p, "mystaging.example.org"));
        // The defaults are gone...
        assert!(!dev(&p, "mysite.test"));
        assert!(!dev(&p, "dev.example.com"));
        assert!(!dev(&p, "shop-staging.example.org"));
        // ...but local IP literals stay development sites.
        assert!(dev(&p, "127.0.0.1"));
        assert!(dev(&p, "[::1]"));
        let none = DevSitePatterns::parse("").unwrap();
        assert_eq!(none.patterns().count(), 0);
        assert!(!dev(&none, "localhost"));
        assert!(dev(&none, "192.168.0.1"));
    }

    #[test]
    fn default_patterns_are_valid_and_round_trip() {
        let d = DevSitePatterns::default();
        assert_eq!(DevSitePatterns::parse(&d.to_string()).unwrap(), d);
        assert_eq!(d.patterns().count(), DEFAULT_DEV_SITE_PATTERNS.len());
    }

    #[test]
    fn bad_patterns_are_refused() {
        let err = DevSitePatterns::parse("*.local,exa mple.*").unwrap_err();
        assert!(
            err.contains("pattern `exa mple.*`") && err.contains("' '"),
            "{err}"
        );
        let err = DevSitePatterns::parse("*.bücher.example").unwrap_err();
        assert!(err.contains("punycode"), "{err}");
        let err = DevSitePatterns::parse(&"a".repeat(254)).unwrap_err();
        assert!(err.contains("over 253"), "{err}");
    }

    #[test]
    fn glob_matching() {
        let m = |p: &str, t: &str| glob_match(p.as_bytes(), t.as_bytes());
        assert!(m("*", ""));
        assert!(m("*", "anything.at.all"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "a-b-b-c"));
        assert!(m("*.local", "x.local"));
        assert!(m("*.local", "x.y.local"));
        assert!(!m("*.local", "local"));
        assert!(!m("*.local", "x.local.com"));
        assert!(!m("*.local", "xlocal"));
        assert!(m("*staging*.wpengine.com", "staging.wpengine.com"));
        assert!(m("*staging*.wpengine.com", "mystaging2.wpengine.com"));
        assert!(!m("*staging*.wpengine.com", "staging.wpengine.com.evil"));
        assert!(!m("staging.*", "mystaging.com"));
        assert!(m("exact.com", "exact.com"));
        assert!(!m("exact.com", "exact.co"));
        assert!(!m("exact.co", "exact.com"));
        // Many stars against a long miss stays quick.
        let long = "a".repeat(253);
        assert!(!m("*a*a*a*a*a*a*a*a*b", &long));
    }

    #[test]
    fn masked_hosts() {
        let mask = |input: &str| mask_host(&normalize_site(input).unwrap());
        assert_eq!(mask("example.com"), "ex*****.com");
        assert_eq!(mask("https://www.example.com/"), "ex*****.com");
        assert_eq!(mask("shop.example.com"), "sh**********.com");
        assert_eq!(mask("ab.com"), "a*.com");
        assert_eq!(mask("a.com"), "*.com");
        assert_eq!(mask("localhost"), "lo*******");
        assert_eq!(mask("xn--bcher-kva.example"), "xn***********.example");
        assert_eq!(mask("192.168.1.20"), "19*******.20");
        assert_eq!(mask("[2001:db8::1]"), "[20*********]");
        assert_eq!(mask("[::1]"), "[***]");
        // Never the whole first label.
        for input in ["example.com", "shop.example.com", "ab.com", "localhost"] {
            let first = input.split('.').next().unwrap();
            assert!(!mask(input).contains(first), "{input}");
        }
    }
}
