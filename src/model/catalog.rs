//! The release catalogue of an account (SPEC §7): groups, products, versions and files,
//! as stored, and the pure rules on their fields.
//!
//! A [`Release`] is a version with its files: the files of a version are few and change
//! with it (a published version's files are immutable), so they live in its record. A
//! product's static keys live in the [`Product`] record, sealed (see `crate::secrets`).
//! Ids are random integers below 2^53 (JSON-safe, not sequential: no tenant can count or
//! walk another's catalogue).

use super::{AccountPrefix, BlobHash, Maturity, Timestamp, Version};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Ids stay below 2^53, so every JSON client reads them exactly.
pub const MAX_ID: u64 = (1 << 53) - 1;

macro_rules! ids {
    ($($(#[doc = $doc:literal])* $name:ident;)+) => {$(
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )+};
}

ids! {
    /// A product's public id (EDD `item_id`, UpdaterCloud `{PRODUCT_ID}`): unique
    /// server-wide and never reused.
    ProductId;
    /// A version's id, unique server-wide.
    VersionId;
    /// A file's id, unique server-wide.
    FileId;
    /// A group's id, unique in its account.
    GroupId;
}

/// Every account's `default` group has this id; it is not stored and cannot be deleted.
pub const DEFAULT_GROUP: GroupId = GroupId(1);
pub const DEFAULT_GROUP_NAME: &str = "default";

/// A random id in `2..=MAX_ID` from the OS RNG (1 is the default group's).
///
/// # Errors
/// The OS RNG failed.
pub fn random_id() -> Result<u64, getrandom::Error> {
    loop {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes)?;
        let id = u64::from_be_bytes(bytes) & MAX_ID;
        if id > 1 {
            return Ok(id);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProductKind {
    Plugin,
    Theme,
    App,
}

impl ProductKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductKind::Plugin => "plugin",
            ProductKind::Theme => "theme",
            ProductKind::App => "app",
        }
    }

    pub fn parse(text: &str) -> Option<ProductKind> {
        match text {
            "plugin" => Some(ProductKind::Plugin),
            "theme" => Some(ProductKind::Theme),
            "app" => Some(ProductKind::App),
            _ => None,
        }
    }
}

/// Who may download (SPEC §7 *Product* `license`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LicenseModel {
    Free,
    StaticKeys,
    DownloadKeys,
}

impl LicenseModel {
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseModel::Free => "free",
            LicenseModel::StaticKeys => "static_keys",
            LicenseModel::DownloadKeys => "download_keys",
        }
    }

    pub fn parse(text: &str) -> Option<LicenseModel> {
        match text {
            "free" => Some(LicenseModel::Free),
            "static_keys" => Some(LicenseModel::StaticKeys),
            "download_keys" => Some(LicenseModel::DownloadKeys),
            _ => None,
        }
    }
}

/// A group of products. Stored in `group`; the `default` group is not stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub account: AccountPrefix,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Group {
    /// The account's `default` group.
    pub fn default_of(account: AccountPrefix) -> Group {
        Group {
            id: DEFAULT_GROUP,
            account,
            name: DEFAULT_GROUP_NAME.to_owned(),
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
        }
    }
}

/// Icon URLs (`1x`, `2x`, `svg`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Icons {
    pub x1: Option<String>,
    pub x2: Option<String>,
    pub svg: Option<String>,
}

/// Banner URLs (`low`, `high`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Banners {
    pub low: Option<String>,
    pub high: Option<String>,
}

/// A static license key of a product (SPEC §7.2): looked up by a keyed hash, the value
/// sealed; never in the clear at rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticKey {
    /// Keyed hash of the key (`secrets::KeyVault::lookup_hash`).
    pub lookup: [u8; 32],
    /// The key, sealed (`secrets::KeyVault::seal`).
    pub sealed: Vec<u8>,
    /// The last day the key works (UTC), `YYYY-MM-DD`.
    pub expires: Option<String>,
}

/// A plugin, theme or app. Stored in `product`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub id: ProductId,
    pub account: AccountPrefix,
    pub slug: String,
    pub kind: ProductKind,
    pub name: String,
    pub group_id: GroupId,
    pub short_description: Option<String>,
    pub description: Option<String>,
    pub homepage: Option<String>,
    pub author: Option<String>,
    pub author_homepage: Option<String>,
    pub icons: Icons,
    pub banners: Banners,
    pub license: LicenseModel,
    pub require_activation: bool,
    pub published: bool,
    pub static_keys: Vec<StaticKey>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A file of a version. Part of its [`Release`] record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub id: FileId,
    pub name: String,
    pub description: Option<String>,
    pub published: bool,
    pub primary: bool,
    pub filename: String,
    pub size: u64,
    pub content_type: String,
    pub blob: BlobHash,
    pub downloads: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A version with its files. Stored in `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: VersionId,
    pub product_id: ProductId,
    /// As written, minus a leading `v` (always parses as a [`Version`]).
    pub version: String,
    pub maturity: Maturity,
    pub release_notes: Option<String>,
    pub requires: Option<String>,
    pub tested: Option<String>,
    pub requires_php: Option<String>,
    pub published: bool,
    /// 1–100: % of sites offered this version (SPEC §8.3).
    pub rollout: u8,
    pub released_at: Option<Timestamp>,
    /// readme.txt sections of the package, sanitized HTML, keyed as WordPress's plugin
    /// API keys them (`description`, `changelog`, …).
    pub sections: Vec<(String, String)>,
    pub files: Vec<FileRecord>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Release {
    /// The parsed version (the stored text always parses: it was parsed when stored).
    pub fn parsed(&self) -> Version {
        Version::parse(&self.version).unwrap_or_else(|_| {
            Version::parse("0.0.0").unwrap_or_else(|_| unreachable!("0.0.0 parses"))
        })
    }

    pub fn primary(&self) -> Option<&FileRecord> {
        self.files.iter().find(|f| f.primary)
    }

    pub fn file(&self, id: FileId) -> Option<&FileRecord> {
        self.files.iter().find(|f| f.id == id)
    }
}

/// Where a version or file lives: `version_home` / `file_home` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Home {
    pub account: AccountPrefix,
    pub product: ProductId,
    pub version: VersionId,
}

/// Where a product lives (`product_home`): kept after the product is deleted, so its id
/// is never given out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductHome {
    pub account: AccountPrefix,
    pub deleted: bool,
}

/// Whether `slug` matches `^[a-z0-9][a-z0-9._-]{0,63}$`.
pub fn is_slug(slug: &str) -> bool {
    slug.len() <= 64
        && slug
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// `^[a-z0-9][a-z0-9._-]{0,63}$`.
///
/// # Errors
/// The reason, for the `slug` field.
pub fn check_slug(slug: &str) -> Result<(), String> {
    if is_slug(slug) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a slug: 1–64 characters of a-z, 0-9, `.`, `_`, `-`, starting with a \
             letter or digit",
            shorten(slug)
        ))
    }
}

/// A product or group name: 1–200 characters, no control characters.
///
/// # Errors
/// The reason.
pub fn check_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if name.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    if chars > 200 {
        return Err(format!("must be at most 200 characters, got {chars}"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(())
}

/// A name as EDD compares `item_name`: lower-case, every run of other characters than
/// letters and digits one `-`, trimmed of `-`.
pub fn slugify(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c);
        } else {
            dash = true;
        }
    }
    out
}

/// A file's name as stored and sent in `Content-Disposition`: 1–255 bytes, no `/`, `\`,
/// NUL or other control characters, not `.` or `..`.
///
/// # Errors
/// The reason.
pub fn check_filename(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err("must be 1–255 bytes".to_owned());
    }
    if name == "." || name == ".." {
        return Err("must not be `.` or `..`".to_owned());
    }
    if name.contains(['/', '\\']) || name.chars().any(char::is_control) {
        return Err("must not contain `/`, `\\`, NUL or control characters".to_owned());
    }
    Ok(())
}

/// An optional URL field: `http://` or `https://`, at most 2,048 bytes, no whitespace.
///
/// # Errors
/// The reason.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.len() > 2048 {
        return Err("must be at most 2048 bytes".to_owned());
    }
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err("must be an http:// or https:// URL".to_owned());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace".to_owned());
    }
    Ok(())
}

/// A static key (SPEC §7.2): 8–128 URL-safe characters `[A-Za-z0-9._~-]`.
///
/// # Errors
/// The reason.
pub fn check_static_key(key: &str) -> Result<(), String> {
    if !(8..=128).contains(&key.len()) {
        return Err(format!("must be 8–128 characters, got {}", key.len()));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
    {
        return Err("may hold only A-Z, a-z, 0-9, `.`, `_`, `~` and `-`".to_owned());
    }
    Ok(())
}

/// A date `YYYY-MM-DD` (a static key's last day).
///
/// # Errors
/// The reason.
pub fn check_date(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let shape = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape {
        return Err(format!("`{}` is not a date (YYYY-MM-DD)", shorten(text)));
    }
    let month: u32 = text[5..7].parse().unwrap_or(0);
    let day: u32 = text[8..10].parse().unwrap_or(0);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(format!("`{text}` is not a date (YYYY-MM-DD)"));
    }
    Ok(())
}

/// The first 64 characters of `text`, for error messages.
fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(64).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_rule() {
        for ok in ["a", "my-plugin", "x.y_z", "0day"] {
            assert!(check_slug(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in ["", "-a", "My", "a/b", "a b", "../x", long.as_str()] {
            assert!(check_slug(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_slugify_as_edd_compares_them() {
        assert_eq!(slugify("My Great Plugin!"), "my-great-plugin");
        assert_eq!(slugify("  --Hello  Dolly-- "), "hello-dolly");
        assert_eq!(slugify("Ünïcode Name"), "ünïcode-name");
    }

    #[test]
    fn file_names_refuse_paths_and_nul() {
        assert!(check_filename("plugin.zip").is_ok());
        for bad in ["", "a/b.zip", "a\\b", "a\0b", "..", "x\ny"] {
            assert!(check_filename(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn static_keys_are_url_safe() {
        assert!(check_static_key("some-license-key").is_ok());
        assert!(check_static_key("short").is_err());
        assert!(check_static_key("has space in it").is_err());
        assert!(check_static_key("a/b/c/d/e/f").is_err());
    }

    #[test]
    fn random_ids_stay_below_2_pow_53() {
        for _ in 0..1000 {
            let id = random_id().unwrap();
            assert!(id > 1 && id <= MAX_ID);
        }
    }

    #[test]
    fn dates_must_be_real_calendar_shapes() {
        assert!(check_date("2025-12-31").is_ok());
        for bad in ["2025-13-01", "2025-1-01", "tomorrow", "2025-12-32"] {
            assert!(check_date(bad).is_err(), "{bad}");
        }
    }
}
