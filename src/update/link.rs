//! Signed download links (SPEC §8.1 item 3, §8.4): `/dl/{token}/{filename}`.
//!
//! The token binds everything the download route must check again — the account, the
//! file and its blob hash (a changed blob is `410`), the download key by id (re-checked
//! at download time; the key itself never appears in a URL), the site, and an expiry —
//! under a MAC keyed from `server.key`, so no store record is needed to trust it.
//!
//! Token format: base64url without padding of
//!
//! ```text
//! version (1 byte, = 1) ‖ expires (u64 BE, Unix s) ‖ file_id (u64 BE) ‖ blob (32)
//! ‖ flags (1 byte: bit 0 key_id, bit 1 site, bit 2 long site) ‖ [key_id (u64 BE)]
//! ‖ account length (1) ‖ account ‖ [site length (1, or u16 BE with bit 2) ‖ site]
//! ‖ MAC (32) = blake3 keyed hash of everything before it, with the [`LinkKey`]
//! ```
//!
//! The payload is readable by anyone holding a link (it holds no secret: ids, a hash, a
//! host); only the MAC matters. Verification refuses a token over [`MAX_TOKEN_LEN`]
//! characters before decoding anything, compares the MAC in constant time
//! (`blake3::Hash` equality), and checks the expiry only after the MAC verifies, so an
//! expired-versus-forged distinction is never given for a token the server did not make.

use crate::base64url;
use crate::token::ServerKey;

/// Longest token [`LinkKey::verify`] decodes; longer input is refused unread.
pub const MAX_TOKEN_LEN: usize = 1024;
/// Longest `account` a link binds (prefixes are 3–32 characters).
pub const MAX_ACCOUNT_LEN: usize = 64;
/// Longest `site` a link binds, in bytes: a normalized host (DNS: ≤ 253) or an app's
/// machine (≤ 128 characters, up to 4 bytes each). Over 255 bytes (a machine only), the
/// site's length takes two bytes (flag bit 2).
pub const MAX_SITE_LEN: usize = 4 * crate::model::licensing::MAX_MACHINE_LEN;

const VERSION: u8 = 1;
const MAC_LEN: usize = 32;
const FLAG_KEY: u8 = 1;
const FLAG_SITE: u8 = 2;
/// The site's length is a `u16` (big-endian), not one byte.
const FLAG_LONG_SITE: u8 = 4;
/// version + expires + file_id + blob + flags + account length.
const FIXED_LEN: usize = 1 + 8 + 8 + 32 + 1 + 1;
/// The longest token payload and MAC: every optional part, at its longest.
const MAX_TOKEN_BYTES: usize = FIXED_LEN + 8 + MAX_ACCOUNT_LEN + 2 + MAX_SITE_LEN + MAC_LEN;

/// What a download link grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    /// The account's prefix.
    pub account: String,
    pub file_id: u64,
    /// The blake3 of the file's content when the link was made.
    pub blob: [u8; 32],
    /// The download key the caller showed, by id, to be checked again at download time.
    pub key_id: Option<u64>,
    /// The normalized site (or app machine) the link was made for.
    pub site: Option<String>,
    /// Unix seconds; the link works while `now < expires`.
    pub expires: u64,
}

impl LinkClaims {
    /// The same claims, borrowed.
    pub fn grant(&self) -> Grant<'_> {
        Grant {
            account: &self.account,
            file_id: self.file_id,
            blob: &self.blob,
            key_id: self.key_id,
            site: self.site.as_deref(),
            expires: self.expires,
        }
    }
}

/// What a new link grants: [`LinkClaims`], borrowed (signing copies nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant<'a> {
    pub account: &'a str,
    pub file_id: u64,
    pub blob: &'a [u8; 32],
    pub key_id: Option<u64>,
    pub site: Option<&'a str>,
    pub expires: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Too long, not base64url, too short, or (MAC correct yet) not a payload this
    /// version writes.
    Malformed,
    /// The MAC does not match: forged, altered, or made with another server key.
    BadMac,
    /// Authentic but past its expiry.
    Expired,
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkError::Malformed => "malformed download link",
            LinkError::BadMac => "download link signature does not match",
            LinkError::Expired => "download link expired",
        })
    }
}

impl std::error::Error for LinkError {}

/// A claim too long to bind (see [`MAX_ACCOUNT_LEN`], [`MAX_SITE_LEN`]): a caller's bug
/// or a site that cannot be a host, refused rather than making a link that never verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimTooLong {
    pub field: &'static str,
}

impl std::fmt::Display for ClaimTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "download link claim `{}` is too long", self.field)
    }
}

impl std::error::Error for ClaimTooLong {}

/// The MAC key of download links, derived from `server.key` for this purpose only
/// (`blake3::derive_key`), so a link's MAC says nothing about any other derived value.
#[derive(Clone)]
pub struct LinkKey([u8; 32]);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(…)")
    }
}

impl LinkKey {
    pub fn new(server_key: &ServerKey) -> Self {
        LinkKey(blake3::derive_key(
            "upkeep download links v1",
            server_key.as_bytes(),
        ))
    }

    /// The token for `claims`.
    ///
    /// # Errors
    /// `account` or `site` longer than its bound.
    pub fn sign(&self, claims: &LinkClaims) -> Result<String, ClaimTooLong> {
        let mut token = String::new();
        self.write_token(&claims.grant(), &mut token)?;
        Ok(token)
    }

    /// The download URL for `grant`: `{base_url}/dl/{token}/{filename}` (see
    /// [`download_url`]), made in one allocation — the payload is built on the stack and
    /// its base64 written straight into the URL.
    ///
    /// # Errors
    /// `account` or `site` longer than its bound.
    pub fn download_url(
        &self,
        base_url: &str,
        grant: &Grant<'_>,
        filename: &str,
    ) -> Result<String, ClaimTooLong> {
        let base = base_url.trim_end_matches('/');
        let payload =
            FIXED_LEN + 8 + grant.account.len() + grant.site.map_or(0, |s| 2 + s.len()) + MAC_LEN;
        let mut url =
            String::with_capacity(base.len() + 5 + payload.div_ceil(3) * 4 + filename.len() * 3);
        url.push_str(base);
        url.push_str("/dl/");
        self.write_token(grant, &mut url)?;
        url.push('/');
        push_segment(&mut url, filename);
        Ok(url)
    }

    /// Appends the token for `grant` to `out`.
    fn write_token(&self, grant: &Grant<'_>, out: &mut String) -> Result<(), ClaimTooLong> {
        if grant.account.len() > MAX_ACCOUNT_LEN {
            return Err(ClaimTooLong { field: "account" });
        }
        if grant.site.is_some_and(|s| s.len() > MAX_SITE_LEN) {
            return Err(ClaimTooLong { field: "site" });
        }
        let mut buf = Payload {
            bytes: [0; MAX_TOKEN_BYTES],
            len: 0,
        };
        buf.put(&[VERSION]);
        buf.put(&grant.expires.to_be_bytes());
        buf.put(&grant.file_id.to_be_bytes());
        buf.put(grant.blob);
        let long_site = grant.site.is_some_and(|s| s.len() > usize::from(u8::MAX));
        let flags = if grant.key_id.is_some() { FLAG_KEY } else { 0 }
            | if grant.site.is_some() { FLAG_SITE } else { 0 }
            | if long_site { FLAG_LONG_SITE } else { 0 };
        buf.put(&[flags]);
        if let Some(key_id) = grant.key_id {
            buf.put(&key_id.to_be_bytes());
        }
        // Lengths were checked above: the account's fits a byte, the site's two.
        buf.put(&[grant.account.len() as u8]);
        buf.put(grant.account.as_bytes());
        if let Some(site) = grant.site {
            if long_site {
                buf.put(&(site.len() as u16).to_be_bytes());
            } else {
                buf.put(&[site.len() as u8]);
            }
            buf.put(site.as_bytes());
        }
        let mac = blake3::keyed_hash(&self.0, buf.filled());
        buf.put(mac.as_bytes());
        base64url::encode_into(buf.filled(), out);
        Ok(())
    }

    /// The claims of `token`, if this server made it and it has not expired at
    /// `now_unix`.
    ///
    /// # Errors
    /// [`LinkError`]; `Expired` only for a token whose MAC verified.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<LinkClaims, LinkError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(LinkError::Malformed);
        }
        let bytes = base64url::decode(token).ok_or(LinkError::Malformed)?;
        if bytes.len() < FIXED_LEN + MAC_LEN {
            return Err(LinkError::Malformed);
        }
        let (payload, mac) = bytes.split_at(bytes.len() - MAC_LEN);
        let mut given = [0u8; MAC_LEN];
        given.copy_from_slice(mac);
        // `blake3::Hash`'s `==` is constant-time.
        if blake3::keyed_hash(&self.0, payload) != blake3::Hash::from_bytes(given) {
            return Err(LinkError::BadMac);
        }
        let claims = parse(payload).ok_or(LinkError::Malformed)?;
        if now_unix >= claims.expires {
            return Err(LinkError::Expired);
        }
        Ok(claims)
    }
}

/// A token's bytes, built on the stack.
struct Payload {
    bytes: [u8; MAX_TOKEN_BYTES],
    len: usize,
}

impl Payload {
    fn put(&mut self, data: &[u8]) {
        self.bytes[self.len..self.len + data.len()].copy_from_slice(data);
        self.len += data.len();
    }

    fn filled(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The payload's claims; `None` unless it is exactly what `sign` writes.
fn parse(payload: &[u8]) -> Option<LinkClaims> {
    let mut r = Reader(payload);
    if r.byte()? != VERSION {
        return None;
    }
    let expires = r.u64()?;
    let file_id = r.u64()?;
    let blob: [u8; 32] = r.take(32)?.try_into().ok()?;
    let flags = r.byte()?;
    if flags & !(FLAG_KEY | FLAG_SITE | FLAG_LONG_SITE) != 0
        || (flags & FLAG_LONG_SITE != 0 && flags & FLAG_SITE == 0)
    {
        return None;
    }
    let key_id = if flags & FLAG_KEY != 0 {
        Some(r.u64()?)
    } else {
        None
    };
    let account = r.text()?;
    let site = if flags & FLAG_LONG_SITE != 0 {
        // Only a site over 255 bytes is written this way: one spelling per token.
        let len = usize::from(u16::from_be_bytes(r.take(2)?.try_into().ok()?));
        (len > usize::from(u8::MAX) && len <= MAX_SITE_LEN).then_some(())?;
        Some(r.text_of(len)?)
    } else if flags & FLAG_SITE != 0 {
        Some(r.text()?)
    } else {
        None
    };
    r.0.is_empty().then_some(LinkClaims {
        account,
        file_id,
        blob,
        key_id,
        site,
        expires,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_be_bytes)
    }

    /// A length byte and that many bytes of UTF-8.
    fn text(&mut self) -> Option<String> {
        let len = usize::from(self.byte()?);
        self.text_of(len)
    }

    /// `len` bytes of UTF-8.
    fn text_of(&mut self, len: usize) -> Option<String> {
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

/// The download URL for `token`: `{base_url}/dl/{token}/{filename}`, `base_url` the public
/// URL without a trailing slash (SPEC §8.1 item 5). The filename is one path segment:
/// anything but unreserved characters is percent-encoded (a `/` cannot split it).
pub fn download_url(base_url: &str, token: &str, filename: &str) -> String {
    let mut url = String::with_capacity(base_url.len() + 5 + token.len() + filename.len() * 3);
    url.push_str(base_url.trim_end_matches('/'));
    url.push_str("/dl/");
    url.push_str(token);
    url.push('/');
    push_segment(&mut url, filename);
    url
}

/// `filename` as one path segment: unreserved characters as they are, every other byte
/// `%XX`.
fn push_segment(url: &mut String, filename: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    // The usual filename (`plugin.zip`) needs no escape: pushed whole.
    if filename.bytes().all(unreserved) {
        url.push_str(filename);
        return;
    }
    for b in filename.bytes() {
        if unreserved(b) {
            url.push(char::from(b));
        } else {
            url.push('%');
            url.push(char::from(HEX[usize::from(b >> 4)]));
            url.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_796_126_400; // 2026-12-01 12:00:00 UTC

    fn key(byte: u8) -> LinkKey {
        LinkKey::new(&ServerKey::from_bytes([byte; 32]))
    }

    fn claims() -> LinkClaims {
        LinkClaims {
            account: "acme".into(),
            file_id: 0x0012_3456_789a_bcde,
            blob: *blake3::hash(b"example-plugin.zip").as_bytes(),
            key_id: Some(7),
            site: Some("example.com".into()),
            expires: NOW + 86_400,
        }
    }

    #[test]
    fn round_trips_every_shape() {
        let k = key(1);
        let mut shapes = vec![claims()];
        shapes.push(LinkClaims {
            key_id: None,
            site: None,
            ..claims()
        });
        shapes.push(LinkClaims {
            key_id: Some(u64::MAX),
            site: None,
            ..claims()
        });
        // An app's machine of 128 two-byte characters (256 bytes: a two-byte length), and
        // the longest site a one-byte length holds.
        for site in ["é".repeat(128), "y".repeat(255)] {
            shapes.push(LinkClaims {
                site: Some(site),
                ..claims()
            });
        }
        shapes.push(LinkClaims {
            key_id: None,
            site: Some("x".repeat(MAX_SITE_LEN)),
            account: "a".repeat(MAX_ACCOUNT_LEN),
            expires: u64::MAX,
            ..claims()
        });
        for c in shapes {
            let token = k.sign(&c).unwrap();
            assert!(token.len() <= MAX_TOKEN_LEN, "{}", token.len());
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(k.verify(&token, NOW), Ok(c));
        }
    }

    #[test]
    fn signing_is_deterministic_and_binds_every_claim() {
        let k = key(1);
        let base = k.sign(&claims()).unwrap();
        assert_eq!(k.sign(&claims()).unwrap(), base);
        let variants = [
            LinkClaims {
                account: "acmf".into(),
                ..claims()
            },
            LinkClaims {
                file_id: 1,
                ..claims()
            },
            LinkClaims {
                blob: [0; 32],
                ..claims()
            },
            LinkClaims {
                key_id: Some(8),
                ..claims()
            },
            LinkClaims {
                key_id: None,
                ..claims()
            },
            LinkClaims {
                site: Some("example.org".into()),
                ..claims()
            },
            LinkClaims {
                site: None,
                ..claims()
            },
            LinkClaims {
                expires: NOW + 86_401,
                ..claims()
            },
        ];
        for v in variants {
            assert_ne!(k.sign(&v).unwrap(), base, "{v:?}");
        }
    }

    #[test]
    fn any_changed_character_is_refused() {
        let k = key(1);
        let token = k.sign(&claims()).unwrap();
        for i in 0..token.len() {
            for replacement in ['A', 'z', '0', '-', '_'] {
                let mut altered: Vec<char> = token.chars().collect();
                if altered[i] == replacement {
                    continue;
                }
                altered[i] = replacement;
                let altered: String = altered.into_iter().collect();
                let err = k.verify(&altered, NOW).unwrap_err();
                assert!(
                    matches!(err, LinkError::BadMac | LinkError::Malformed),
                    "position {i}: {err:?}"
                );
            }
        }
    }

    #[test]
    fn expiry_is_checked_after_the_mac() {
        let k = key(1);
        let token = k.sign(&claims()).unwrap();
        let expires = claims().expires;
        assert!(k.verify(&token, expires - 1).is_ok());
        assert_eq!(k.verify(&token, expires), Err(LinkError::Expired));
        assert_eq!(k.verify(&token, u64::MAX), Err(LinkError::Expired));
        // An expired token from another key is a bad MAC, not "expired".
        assert_eq!(key(2).verify(&token, u64::MAX), Err(LinkError::BadMac));
    }

    #[test]
    fn another_server_key_is_refused() {
        let token = key(1).sign(&claims()).unwrap();
        assert_eq!(key(2).verify(&token, NOW), Err(LinkError::BadMac));
        // The link key is derived, not the server key itself.
        let raw = ServerKey::from_bytes([1; 32]);
        assert_ne!(&LinkKey::new(&raw).0, raw.as_bytes());
    }

    #[test]
    fn truncated_and_extended_tokens_are_refused() {
        let k = key(1);
        let token = k.sign(&claims()).unwrap();
        for len in 0..token.len() {
            assert!(k.verify(&token[..len], NOW).is_err(), "length {len}");
        }
        for suffix in ["A", "AA", "AAA", "AAAA"] {
            assert!(k.verify(&format!("{token}{suffix}"), NOW).is_err());
        }
    }

    #[test]
    fn garbage_never_panics() {
        let k = key(1);
        let too_long = "A".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(k.verify(&too_long, NOW), Err(LinkError::Malformed));
        for text in ["", "=", "AAAA=", "é", "a b", "%41", "A", "\0\0\0\0"] {
            assert!(k.verify(text, NOW).is_err(), "{text:?}");
        }
        // Pseudo-random byte strings of every length up to the bound, encoded: they decode
        // fine but must fail on the MAC (or the length) without panicking.
        let mut seed = blake3::hash(b"garbage");
        for len in 0..(MAX_TOKEN_LEN * 3 / 4) {
            seed = blake3::hash(seed.as_bytes());
            let bytes: Vec<u8> = (0..len)
                .map(|i| seed.as_bytes()[i % 32] ^ i as u8)
                .collect();
            assert!(k.verify(&base64url::encode(&bytes), NOW).is_err());
        }
    }

    #[test]
    fn a_correctly_maced_odd_payload_is_malformed_not_accepted() {
        // What a future version or an encoder bug could produce: MAC right, shape wrong.
        let k = key(1);
        let good = base64url::decode(&k.sign(&claims()).unwrap()).unwrap();
        let payload = &good[..good.len() - MAC_LEN];
        let reseal = |mut p: Vec<u8>| {
            let mac = blake3::keyed_hash(&k.0, &p);
            p.extend_from_slice(mac.as_bytes());
            base64url::encode(&p)
        };
        let mut version = payload.to_vec();
        version[0] = 2;
        let mut trailing = payload.to_vec();
        trailing.push(0);
        let mut flags = payload.to_vec();
        flags[49] |= 8;
        // A short site written with a two-byte length: another spelling of a token.
        let site_at = payload.len() - "example.com".len() - 1;
        let mut long_form = payload.to_vec();
        long_form[49] |= FLAG_LONG_SITE;
        long_form.splice(site_at..=site_at, [0, 11]);
        // The long-site flag without the site flag.
        let mut no_site = payload[..site_at].to_vec();
        no_site[49] = FLAG_KEY | FLAG_LONG_SITE;
        for bad in [version, trailing, flags, long_form, no_site] {
            assert_eq!(k.verify(&reseal(bad), NOW), Err(LinkError::Malformed));
        }
    }

    #[test]
    fn overlong_claims_are_refused_at_signing() {
        let k = key(1);
        let long_site = LinkClaims {
            site: Some("x".repeat(MAX_SITE_LEN + 1)),
            ..claims()
        };
        assert_eq!(k.sign(&long_site), Err(ClaimTooLong { field: "site" }));
        let long_account = LinkClaims {
            account: "a".repeat(MAX_ACCOUNT_LEN + 1),
            ..claims()
        };
        assert_eq!(
            k.sign(&long_account),
            Err(ClaimTooLong { field: "account" })
        );
    }

    #[test]
    fn download_urls_are_one_segment() {
        assert_eq!(
            download_url("https://u.example.com/", "TOKEN", "example-plugin.zip"),
            "https://u.example.com/dl/TOKEN/example-plugin.zip"
        );
        assert_eq!(
            download_url("https://u.example.com", "T", "a b/ü.zip"),
            "https://u.example.com/dl/T/a%20b%2F%C3%BC.zip"
        );
    }

    #[test]
    fn the_one_allocation_url_is_the_signed_token_in_the_url() {
        let k = key(3);
        let mut long_site = claims();
        long_site.site = Some("s".repeat(MAX_SITE_LEN));
        long_site.account = "a".repeat(MAX_ACCOUNT_LEN);
        let bare = LinkClaims {
            key_id: None,
            site: None,
            ..claims()
        };
        for c in [claims(), long_site, bare] {
            let url = k
                .download_url("https://u.example.com/", &c.grant(), "a b.zip")
                .unwrap();
            let token = k.sign(&c).unwrap();
            assert_eq!(
                url,
                download_url("https://u.example.com", &token, "a b.zip")
            );
            assert_eq!(k.verify(&token, NOW), Ok(c));
        }
        let mut too_long = claims();
        too_long.site = Some("s".repeat(MAX_SITE_LEN + 1));
        assert_eq!(
            k.download_url("https://u.example.com", &too_long.grant(), "f.zip"),
            Err(ClaimTooLong { field: "site" })
        );
    }
}
