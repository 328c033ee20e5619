//! Reading a WordPress package (SPEC §7, *Reading a package*): pure, no store, no HTTP.
//!
//! [`read`] takes a seekable zip and returns its [`PackageInfo`] — or a [`PackageError`]
//! whose reason is what `400 invalid_package` shows. The rules:
//!
//! - **A zip**, found by its end-of-central-directory record (zip64 included) in the last
//!   64 KiB + 22 bytes. At most [`MAX_ENTRIES`] entries and a central directory of at most
//!   [`MAX_CENTRAL_DIRECTORY`] bytes, both checked on the declared figures *before* the
//!   directory is parsed, so a hostile count never becomes an allocation.
//! - **Safe names**: no entry may be absolute (`/x`, `C:…`), contain a `..` component, a
//!   backslash or a NUL. **One top-level folder**, the slug (`^[a-z0-9][a-z0-9._-]{0,63}$`);
//!   `__MACOSX/` entries are ignored for this rule, as WordPress's `unzip_file` skips them.
//! - **Plugin**: the `<slug>/*.php` files (byte order, as `glob` lists them; at most
//!   [`MAX_HEADER_CANDIDATES`]), the first whose header has `Plugin Name:`; **theme**:
//!   `<slug>/style.css` with `Theme Name:`. Without a hint a theme is tried first (one
//!   file), then a plugin. Headers are read like WordPress's `get_file_data()` (see
//!   `header.rs`) from the first [`HEADER_BYTES`] of the file only.
//! - **readme.txt** (`<slug>/readme.txt`, any case): `Tested up to`, `Stable tag` and the
//!   sections, rendered to sanitized HTML (see `readme.rs`); at most [`README_BYTES`] of it
//!   are read. `Requires at least` / `Requires PHP` fall back to the readme when the file
//!   header lacks them.
//!
//! **A zip bomb costs nothing**: only the header candidates and the readme are ever
//! inflated, each through a `take()` limit (the declared sizes are never trusted nor used
//! to size a buffer), and every read from the input goes through a budget: the parse of
//! the directory may read the tail, the directory and 1 MiB more (so the `zip` crate's
//! search for another directory in a corrupt file stops there), an entry
//! [`ENTRY_READ_BUDGET`] beyond what its limit needs. [`read_with_stats`] reports both
//! figures.
//!
//! Header values are returned as written (trimmed); only `sections` is HTML. The version
//! is not parsed here.

mod header;
mod readme;

pub use readme::sanitize;

/// Vendor Markdown (a description, release notes) to sanitized HTML, as readme sections
/// are rendered.
pub fn markdown_to_safe_html(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    readme::render(&lines)
}

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};

/// More entries than this is refused.
pub const MAX_ENTRIES: u64 = 20_000;
/// A larger central directory is refused (20,000 entries with 800-byte names fit).
pub const MAX_CENTRAL_DIRECTORY: u64 = 16 << 20;
/// What `get_file_data()` reads of a header file.
pub const HEADER_BYTES: u64 = 8 << 10;
/// What is read of `readme.txt` at most.
pub const README_BYTES: u64 = 1 << 20;
/// At most this many top-level `.php` files are examined for a plugin header.
pub const MAX_HEADER_CANDIDATES: usize = 500;
/// Compressed bytes an entry may read beyond its output limit (local header, buffering).
pub const ENTRY_READ_BUDGET: u64 = 64 << 10;

/// Plugin or theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Plugin,
    Theme,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Plugin => "plugin",
            Kind::Theme => "theme",
        }
    }
}

/// What a package says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInfo {
    pub kind: Kind,
    /// The top-level folder.
    pub slug: String,
    /// `Plugin Name` / `Theme Name`.
    pub name: String,
    /// As written (`Version:`); `None` when the header has none.
    pub version: Option<String>,
    /// `Requires at least` (header, else readme).
    pub requires: Option<String>,
    /// `Requires PHP` (header, else readme).
    pub requires_php: Option<String>,
    /// readme `Tested up to`.
    pub tested: Option<String>,
    /// readme `Stable tag`.
    pub stable_tag: Option<String>,
    /// `Plugin URI` / `Theme URI`.
    pub uri: Option<String>,
    pub author: Option<String>,
    pub author_uri: Option<String>,
    /// As written: may hold HTML (Akismet's does); escape or sanitize before rendering.
    pub description: Option<String>,
    /// The file the header was read from, inside the zip (`akismet/akismet.php`).
    pub header_file: String,
    /// Sanitized HTML, keyed `description`, `installation`, `faq`, `changelog`,
    /// `upgrade_notice` (the WordPress plugin API's keys); only those present.
    pub sections: BTreeMap<String, String>,
}

/// Why a package was refused.
#[derive(Debug)]
pub enum PackageError {
    /// The package is malformed or hostile: `400 invalid_package` with this reason.
    Invalid(String),
    /// Reading the input itself failed (the disk, not the package): a server error.
    Io(io::Error),
}

impl PackageError {
    /// The human reason (for `Invalid`), or the I/O error's text.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for PackageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackageError::Invalid(reason) => f.write_str(reason),
            PackageError::Io(e) => write!(f, "reading the package failed: {e}"),
        }
    }
}

impl std::error::Error for PackageError {}

fn invalid(reason: impl Into<String>) -> PackageError {
    PackageError::Invalid(reason.into())
}

/// What reading a package cost.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Bytes read from the input (compressed data, headers, directory).
    pub bytes_read: u64,
    /// Bytes produced by inflating (or copying stored) entries.
    pub bytes_inflated: u64,
    /// Entries opened for reading.
    pub entries_opened: u64,
}

/// Reads a package; `kind_hint` restricts what is looked for.
pub fn read<R: Read + Seek>(
    file: &mut R,
    kind_hint: Option<Kind>,
) -> Result<PackageInfo, PackageError> {
    read_with_stats(file, kind_hint).0
}

/// [`read`], with what it cost.
pub fn read_with_stats<R: Read + Seek>(
    file: &mut R,
    kind_hint: Option<Kind>,
) -> (Result<PackageInfo, PackageError>, Stats) {
    let meter = Meter::default();
    let mut stats = Stats::default();
    let result = read_inner(
        Budgeted {
            inner: file,
            meter: &meter,
        },
        &meter,
        kind_hint,
        &mut stats,
    );
    stats.bytes_read = meter.read.get();
    // An error of the input itself wins over whatever the zip crate made of it.
    let result = match (result, meter.failed.take()) {
        (Err(_), Some(e)) => Err(PackageError::Io(e)),
        (result, _) => result,
    };
    (result, stats)
}

/// The budget of bytes the input may still give (past it, reads fail), what it gave, and
/// its own failure if any. Shared, because the zip archive owns the reader.
#[derive(Default)]
struct Meter {
    budget: Cell<u64>,
    read: Cell<u64>,
    failed: RefCell<Option<io::Error>>,
}

impl Meter {
    /// Records a failure of the input itself. `InvalidInput` is the zip's fault, not the
    /// disk's: a seek before the start, which hostile offsets ask for.
    fn fail(&self, e: &io::Error) {
        if !matches!(
            e.kind(),
            io::ErrorKind::Interrupted | io::ErrorKind::InvalidInput
        ) {
            *self.failed.borrow_mut() = Some(io::Error::new(e.kind(), e.to_string()));
        }
    }
}

/// The input, read through its [`Meter`].
struct Budgeted<'a, R> {
    inner: &'a mut R,
    meter: &'a Meter,
}

const OVER_BUDGET: &str = "read budget exhausted";

impl<R: Read> Read for Budgeted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let budget = self.meter.budget.get();
        if buf.is_empty() {
            return Ok(0);
        }
        if budget == 0 {
            return Err(io::Error::other(OVER_BUDGET));
        }
        let max = buf.len().min(usize::try_from(budget).unwrap_or(usize::MAX));
        let n = self
            .inner
            .read(&mut buf[..max])
            .inspect_err(|e| self.meter.fail(e))?;
        self.meter.budget.set(budget - n as u64);
        self.meter.read.set(self.meter.read.get() + n as u64);
        Ok(n)
    }
}

impl<R: Seek> Seek for Budgeted<'_, R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos).inspect_err(|e| self.meter.fail(e))
    }
}

/// What the end-of-central-directory records declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Directory {
    entries: u64,
    size: u64,
}

const EOCD_SIG: [u8; 4] = *b"PK\x05\x06";
const EOCD64_LOCATOR_SIG: [u8; 4] = *b"PK\x06\x07";
const EOCD64_SIG: [u8; 4] = *b"PK\x06\x06";

fn u16_at(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}
fn u32_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(
        b[at..at + 4].try_into().expect("4 bytes"),
    ))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Finds every end-of-central-directory record in the tail and checks the largest figures
/// any of them declares (the zip crate may pick any of them). Reads at most 64 KiB + 22
/// bytes, plus 76 for a zip64 record. Returns the tail's length.
fn check_directory<R: Read + Seek>(
    input: &mut Budgeted<'_, R>,
    meter: &Meter,
) -> Result<u64, PackageError> {
    let len = input.seek(SeekFrom::End(0)).map_err(PackageError::Io)?;
    let tail_len = len.min(22 + 0xFFFF);
    meter.budget.set(tail_len + 2 * 76);
    input
        .seek(SeekFrom::Start(len - tail_len))
        .map_err(PackageError::Io)?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    input
        .by_ref()
        .take(tail_len)
        .read_to_end(&mut tail)
        .map_err(PackageError::Io)?;
    let tail_start = len - tail_len;
    let mut found: Option<Directory> = None;
    for at in (0..tail.len().saturating_sub(21)).rev() {
        if tail[at..at + 4] != EOCD_SIG {
            continue;
        }
        let mut dir = Directory {
            entries: u16_at(&tail, at + 10),
            size: u32_at(&tail, at + 12),
        };
        let zip64 = dir.entries == 0xFFFF
            || dir.size == 0xFFFF_FFFF
            || u32_at(&tail, at + 16) == 0xFFFF_FFFF;
        if zip64 {
            if let Some(dir64) = zip64_directory(input, tail_start + at as u64)? {
                dir = dir64;
            }
        }
        let worst = found.get_or_insert(dir);
        worst.entries = worst.entries.max(dir.entries);
        worst.size = worst.size.max(dir.size);
    }
    let Some(dir) = found else {
        return Err(invalid(
            "not a zip, or a truncated one: no end-of-central-directory record",
        ));
    };
    if dir.entries > MAX_ENTRIES {
        return Err(invalid(format!(
            "more than 20,000 entries ({} declared)",
            dir.entries
        )));
    }
    if dir.size > MAX_CENTRAL_DIRECTORY {
        return Err(invalid(format!(
            "the central directory is larger than {} MiB ({} bytes)",
            MAX_CENTRAL_DIRECTORY >> 20,
            dir.size
        )));
    }
    Ok(tail_len + dir.size)
}

/// The zip64 figures for the record at `eocd`, when a valid locator precedes it.
///
/// # Errors
/// A locator whose zip64 end record is not exactly where it says, or is not one the zip
/// crate would take there: the crate would search the bytes after it for another and
/// believe that record's count, which this check would then never have seen (one
/// allocation per declared entry). No zip tool writes such a record; a WordPress package
/// has no reason to.
fn zip64_directory<R: Read + Seek>(
    input: &mut Budgeted<'_, R>,
    eocd: u64,
) -> Result<Option<Directory>, PackageError> {
    let Some(locator_at) = eocd.checked_sub(20) else {
        return Ok(None);
    };
    let mut locator = [0u8; 20];
    input
        .seek(SeekFrom::Start(locator_at))
        .map_err(PackageError::Io)?;
    if input.read_exact(&mut locator).is_err() || locator[..4] != EOCD64_LOCATOR_SIG {
        return Ok(None);
    }
    let record_at = u64_at(&locator, 8);
    let mut record = [0u8; 56];
    // The record the zip crate takes at its first try: the one at the locator's offset,
    // ending where the locator starts, on the locator's disk, after the directory it
    // declares. One that fails any of these, the crate skips for the next signature it
    // finds before the locator (whose count this check would never have seen).
    let taken_first = |record: &[u8; 56]| {
        record[..4] == EOCD64_SIG
            && u64_at(record, 4).checked_add(12) == Some(locator_at - record_at)
            && u32_at(record, 20) == u32_at(&locator, 4)
            && record_at
                >= u64_at(record, 32)
                    .saturating_mul(46)
                    .saturating_add(u64_at(record, 48))
    };
    if record_at >= locator_at
        || input.seek(SeekFrom::Start(record_at)).is_err()
        || input.read_exact(&mut record).is_err()
        || !taken_first(&record)
    {
        return Err(invalid(
            "its zip64 end record is not where its locator says (a damaged or crafted zip)",
        ));
    }
    Ok(Some(Directory {
        entries: u64_at(&record, 32),
        size: u64_at(&record, 40),
    }))
}

/// Checks one entry name; `Ok(None)` for `__MACOSX/` entries, else its components.
fn check_name(name: &str) -> Result<Option<Vec<&str>>, PackageError> {
    let shown = name.escape_debug();
    if name.contains('\0') {
        return Err(invalid(format!(
            "entry `{shown}` has a NUL byte in its name"
        )));
    }
    if name.contains('\\') {
        return Err(invalid(format!(
            "entry `{shown}` has a backslash in its name (zip paths use `/`; rebuild the zip)"
        )));
    }
    let bytes = name.as_bytes();
    if name.starts_with('/')
        || (bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic())
    {
        return Err(invalid(format!("entry `{shown}` is an absolute path")));
    }
    let parts: Vec<&str> = name
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(invalid(format!("entry `{shown}` escapes its folder")));
    }
    if parts.first() == Some(&"__MACOSX") {
        return Ok(None);
    }
    Ok(Some(parts))
}

fn valid_slug(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

fn read_inner<R: Read + Seek>(
    mut input: Budgeted<'_, R>,
    meter: &Meter,
    kind_hint: Option<Kind>,
    stats: &mut Stats,
) -> Result<PackageInfo, PackageError> {
    let directory_budget = check_directory(&mut input, meter)?;
    meter.budget.set(directory_budget + (1 << 20));
    input.seek(SeekFrom::Start(0)).map_err(PackageError::Io)?;
    let mut zip = zip::ZipArchive::new(input).map_err(|e| {
        invalid(format!(
            "not a readable zip (truncated or corrupt central directory): {e}"
        ))
    })?;
    if zip.len() as u64 > MAX_ENTRIES {
        return Err(invalid(format!("more than 20,000 entries ({})", zip.len())));
    }

    // Names: safe, one top-level folder; the candidates for headers and readme.
    let mut slug: Option<String> = None;
    let mut php: Vec<(String, usize)> = Vec::new();
    let mut style: Option<usize> = None;
    let mut readme: Option<(String, usize)> = None;
    for index in 0..zip.len() {
        let raw = zip.name_for_index(index).unwrap_or_default().to_string();
        let Some(parts) = check_name(&raw)? else {
            continue;
        };
        let Some(top) = parts.first() else {
            return Err(invalid(format!(
                "entry `{}` has an empty name",
                raw.escape_debug()
            )));
        };
        let is_dir = raw.ends_with('/');
        if parts.len() == 1 && !is_dir {
            return Err(invalid(format!(
                "`{}` is a file at the top level: a WordPress zip holds one folder, the slug",
                top.escape_debug()
            )));
        }
        match &slug {
            None => slug = Some(top.to_string()),
            Some(s) if s != top => {
                return Err(invalid(format!(
                    "more than one top-level folder (`{}` and `{}`): a WordPress zip holds one, the slug",
                    s.escape_debug(),
                    top.escape_debug()
                )));
            }
            Some(_) => {}
        }
        if parts.len() == 2 && !is_dir {
            let file = parts[1];
            if file.ends_with(".php") {
                php.push((raw.clone(), index));
            } else if file == "style.css" {
                style = Some(index);
            } else if file.eq_ignore_ascii_case("readme.txt")
                && readme.as_ref().is_none_or(|(n, _)| *n != "readme.txt")
            {
                readme = Some((file.to_string(), index));
            }
        }
    }
    let Some(slug) = slug else {
        return Err(invalid("the zip is empty"));
    };
    if !valid_slug(&slug) {
        return Err(invalid(format!(
            "the top-level folder `{}` is not a valid slug (lowercase letters, digits, `.`, `_`, `-`; at most 64)",
            slug.escape_debug()
        )));
    }

    let mut entry = |zip: &mut zip::ZipArchive<Budgeted<'_, R>>, index: usize, limit: u64| {
        meter.budget.set(limit + ENTRY_READ_BUDGET);
        read_entry(zip, index, limit, stats)
    };

    // The header: a theme's style.css (one file), else the plugin's *.php files.
    let mut found: Option<(Kind, String, String)> = None;
    if kind_hint != Some(Kind::Plugin) {
        if let Some(index) = style {
            let text = entry(&mut zip, index, HEADER_BYTES)?;
            if header::field(&text, "Theme Name").is_some() {
                found = Some((Kind::Theme, format!("{slug}/style.css"), text));
            }
        }
    }
    if found.is_none() && kind_hint != Some(Kind::Theme) {
        php.sort();
        if php.len() > MAX_HEADER_CANDIDATES {
            return Err(invalid(format!(
                "more than {MAX_HEADER_CANDIDATES} .php files in the top-level folder"
            )));
        }
        for (name, index) in &php {
            let text = entry(&mut zip, *index, HEADER_BYTES)?;
            if header::field(&text, "Plugin Name").is_some() {
                found = Some((Kind::Plugin, name.clone(), text));
                break;
            }
        }
    }
    let Some((kind, header_file, text)) = found else {
        return Err(invalid(match kind_hint {
            Some(Kind::Plugin) => "no plugin header (`Plugin Name:`) in the first 8 KiB of any top-level .php file".to_string(),
            Some(Kind::Theme) => "no theme header (`Theme Name:`) in the first 8 KiB of the top-level style.css".to_string(),
            None => "no plugin header (`Plugin Name:`) in the first 8 KiB of any top-level .php file, nor a theme header (`Theme Name:`) in style.css".to_string(),
        }));
    };
    let readme = match readme {
        Some((_, index)) => readme::parse(&entry(&mut zip, index, README_BYTES)?),
        None => readme::Readme::default(),
    };
    let get = |name: &str| header::field(&text, name);
    let (name_field, uri_field) = match kind {
        Kind::Plugin => ("Plugin Name", "Plugin URI"),
        Kind::Theme => ("Theme Name", "Theme URI"),
    };
    Ok(PackageInfo {
        kind,
        slug,
        name: get(name_field).unwrap_or_default(),
        version: get("Version"),
        requires: get("Requires at least").or(readme.requires),
        requires_php: get("Requires PHP").or(readme.requires_php),
        tested: readme.tested,
        stable_tag: readme.stable_tag,
        uri: get(uri_field),
        author: get("Author"),
        author_uri: get("Author URI"),
        description: get("Description"),
        header_file,
        sections: readme.sections,
    })
}

/// Up to `limit` bytes of entry `index`, as text (invalid UTF-8 replaced), through a
/// `take()`: the declared size is neither trusted nor used.
fn read_entry<R: Read + Seek>(
    zip: &mut zip::ZipArchive<Budgeted<'_, R>>,
    index: usize,
    limit: u64,
    stats: &mut Stats,
) -> Result<String, PackageError> {
    stats.entries_opened += 1;
    let name = zip
        .name_for_index(index)
        .unwrap_or_default()
        .escape_debug()
        .to_string();
    let mut file = zip
        .by_index(index)
        .map_err(|e| invalid(format!("entry `{name}` cannot be read: {e}")))?;
    let mut buf = Vec::with_capacity(8 << 10);
    let read = file.by_ref().take(limit).read_to_end(&mut buf);
    stats.bytes_inflated += buf.len() as u64;
    if let Err(e) = read {
        let why = if e.to_string().contains(OVER_BUDGET) {
            "too much compressed data for what it yields".to_string()
        } else {
            e.to_string()
        };
        return Err(invalid(format!("entry `{name}` cannot be read: {why}")));
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests;
