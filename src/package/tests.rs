//! Hand-made and hostile packages; the real WordPress ones are in
//! `tests/integration/package.rs`.

use super::*;
use std::io::{Cursor, Write};
use zip::write::SimpleFileOptions;

/// A zip built with the `zip` writer (deflated entries; names ending in `/` are folders).
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        if name.ends_with('/') {
            w.add_directory(*name, options).unwrap();
        } else {
            w.start_file(*name, options).unwrap();
            w.write_all(data).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

fn try_read(bytes: &[u8], hint: Option<Kind>) -> (Result<PackageInfo, PackageError>, Stats) {
    read_with_stats(&mut Cursor::new(bytes), hint)
}

#[track_caller]
fn refused(bytes: &[u8], hint: Option<Kind>, expected: &str) -> Stats {
    let (result, stats) = try_read(bytes, hint);
    match result {
        Err(PackageError::Invalid(reason)) => {
            assert!(
                reason.contains(expected),
                "reason {reason:?} lacks {expected:?}"
            )
        }
        other => panic!("expected a refusal with {expected:?}, got {other:?}"),
    }
    stats
}

const PLUGIN: &[u8] = b"<?php\n/**\n * Plugin Name: Demo Plugin\n * Plugin URI: https://example.com/demo\n * Description: Does <em>demo</em> things.\n * Version: 1.4.0-beta.2\n * Requires at least: 6.2\n * Requires PHP: 8.0\n * Author: Demo Co\n * Author URI: https://example.com\n */\n";

#[test]
fn a_plugin_its_header_and_readme() {
    let readme = b"=== Demo ===\nRequires at least: 5.0\nTested up to: 6.6\nStable tag: 1.3.0\nRequires PHP: 7.0\n\n== Description ==\nHello *world*.\n== Changelog ==\n= 1.4.0 =\n* New\n";
    let bytes = zip_of(&[
        ("demo/", b""),
        (
            "demo/includes/other.php",
            b"<?php // Plugin Name: Not top-level",
        ),
        ("demo/a-helper.php", b"<?php // nothing here"),
        ("demo/demo.php", PLUGIN),
        ("demo/readme.txt", readme),
        ("demo/assets/big.bin", &[7u8; 100_000]),
    ]);
    let (info, stats) = try_read(&bytes, None);
    let info = info.unwrap();
    assert_eq!(info.kind, Kind::Plugin);
    assert_eq!(info.slug, "demo");
    assert_eq!(info.name, "Demo Plugin");
    assert_eq!(info.header_file, "demo/demo.php");
    assert_eq!(info.version.as_deref(), Some("1.4.0-beta.2"));
    assert_eq!(
        info.requires.as_deref(),
        Some("6.2"),
        "the header wins over the readme"
    );
    assert_eq!(info.requires_php.as_deref(), Some("8.0"));
    assert_eq!(info.tested.as_deref(), Some("6.6"));
    assert_eq!(info.stable_tag.as_deref(), Some("1.3.0"));
    assert_eq!(info.uri.as_deref(), Some("https://example.com/demo"));
    assert_eq!(info.author.as_deref(), Some("Demo Co"));
    assert_eq!(info.author_uri.as_deref(), Some("https://example.com"));
    assert_eq!(
        info.description.as_deref(),
        Some("Does <em>demo</em> things.")
    );
    assert_eq!(
        info.sections["description"],
        "<p>Hello <em>world</em>.</p>\n"
    );
    assert!(info.sections["changelog"].contains("<h4>1.4.0</h4>"));
    // a-helper.php (no header), demo.php, readme.txt: never includes/other.php nor big.bin.
    assert_eq!(stats.entries_opened, 3);
    assert!(stats.bytes_inflated < 2_000, "{stats:?}");
}

#[test]
fn a_theme_and_the_kind_hint() {
    let style = b"/*\nTheme Name: Demo Theme\nTheme URI: https://example.com/t\nVersion: 2.0\nRequires at least: 6.1\n*/\nbody{}";
    let bytes = zip_of(&[
        ("demo-theme/style.css", style),
        ("demo-theme/functions.php", b"<?php"),
    ]);
    let info = read(&mut Cursor::new(&bytes), None).unwrap();
    assert_eq!((info.kind, info.name.as_str()), (Kind::Theme, "Demo Theme"));
    assert_eq!(info.uri.as_deref(), Some("https://example.com/t"));
    assert_eq!(info.version.as_deref(), Some("2.0"));
    assert_eq!(info.requires.as_deref(), Some("6.1"));
    assert_eq!(
        read(&mut Cursor::new(&bytes), Some(Kind::Theme))
            .unwrap()
            .kind,
        Kind::Theme
    );
    refused(&bytes, Some(Kind::Plugin), "no plugin header");
    let plugin = zip_of(&[("demo/demo.php", PLUGIN)]);
    refused(&plugin, Some(Kind::Theme), "no theme header");
}

#[test]
fn not_a_zip() {
    refused(b"", None, "not a zip");
    refused(b"hello, world", None, "not a zip");
    refused(
        &[0x89, b'P', b'N', b'G', 0, 0, 0, 0][..].repeat(10_000),
        None,
        "not a zip",
    );
}

#[test]
fn a_truncated_zip() {
    let bytes = zip_of(&[
        ("demo/demo.php", PLUGIN),
        ("demo/readme.txt", b"== Description ==\nx"),
    ]);
    for cut in [1, 10, bytes.len() / 2] {
        refused(&bytes[..bytes.len() - cut], None, "not a zip");
    }
    // The end record intact, the directory it points at gone: corrupt, not a panic.
    let eocd = bytes.len() - 22;
    let mut holed = bytes[..40].to_vec();
    holed.extend_from_slice(&bytes[eocd..]);
    let (result, _) = try_read(&holed, None);
    assert!(
        matches!(result, Err(PackageError::Invalid(_))),
        "{result:?}"
    );
}

#[test]
fn entries_escaping_their_folder() {
    for (name, expected) in [
        ("../evil.php", "escapes its folder"),
        ("demo/../../evil.php", "escapes its folder"),
        ("demo/sub/../../../x", "escapes its folder"),
        ("/etc/passwd", "absolute path"),
        ("C:/Windows/evil.dll", "absolute path"),
        ("demo\\..\\evil.php", "backslash"),
        ("demo/nul\0.php", "NUL"),
    ] {
        let bytes = zip_of(&[("demo/demo.php", PLUGIN), (name, b"x")]);
        refused(&bytes, None, expected);
    }
}

#[test]
fn one_top_level_folder_and_a_valid_slug() {
    refused(
        &zip_of(&[("demo.php", PLUGIN)]),
        None,
        "file at the top level",
    );
    refused(
        &zip_of(&[("a/a.php", PLUGIN), ("b/b.php", PLUGIN)]),
        None,
        "more than one top-level folder",
    );
    refused(
        &zip_of(&[("My Plugin/a.php", PLUGIN)]),
        None,
        "not a valid slug",
    );
    refused(&zip_of(&[]), None, "empty");
    // Finder's __MACOSX/ is skipped, as WordPress skips it.
    let mac = zip_of(&[
        ("demo/demo.php", PLUGIN),
        ("__MACOSX/demo/._demo.php", b"junk"),
    ]);
    assert_eq!(read(&mut Cursor::new(mac), None).unwrap().slug, "demo");
}

#[test]
fn no_plugin_header() {
    let bytes = zip_of(&[
        ("demo/demo.php", b"<?php echo 1;"),
        ("demo/readme.txt", b"x"),
    ]);
    refused(&bytes, None, "no plugin header (`Plugin Name:`)");
}

#[test]
fn a_header_past_8_kib_is_not_found() {
    let late = |padding: usize| {
        let mut text = b"<?php\n/*".to_vec();
        text.extend(std::iter::repeat_n(b' ', padding));
        text.extend_from_slice(b"\nPlugin Name: Late\n*/\n");
        zip_of(&[("demo/demo.php", &text)])
    };
    // The header line ends inside the first 8 KiB: found.
    let (ok, stats) = try_read(&late(8192 - 8 - 40), None);
    assert_eq!(ok.unwrap().name, "Late");
    assert!(stats.bytes_inflated <= 8192);
    // It starts past 8 KiB: not found, and nothing past 8 KiB was inflated.
    let stats = refused(&late(8192), None, "no plugin header");
    assert_eq!(stats.bytes_inflated, 8192);
}

#[test]
fn more_than_20_000_entries() {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("demo/demo.php", stored).unwrap();
    w.write_all(PLUGIN).unwrap();
    for i in 1..=20_000 {
        w.start_file(format!("demo/f/{i}"), stored).unwrap();
    }
    let bytes = w.finish().unwrap().into_inner();
    let stats = refused(&bytes, None, "more than 20,000 entries (20001 declared)");
    // Refused on the declared count: the directory was never read.
    assert!(stats.bytes_read <= 22 + 0xFFFF, "{stats:?}");
    assert_eq!(stats.entries_opened, 0);

    // An end record that lies (60,000 entries over a tiny directory) is refused the same way.
    let mut lying = zip_of(&[("demo/demo.php", PLUGIN)]);
    let eocd = lying.len() - 22;
    lying[eocd + 8..eocd + 12].copy_from_slice(&[0x60, 0xEA, 0x60, 0xEA]);
    refused(&lying, None, "more than 20,000 entries (60000 declared)");
}

/// A zip64 end-of-central-directory record (56 bytes: nothing after its fixed fields).
fn zip64_record(entries: u64, dir_size: u64, dir_offset: u64) -> Vec<u8> {
    let mut r = b"PK\x06\x06".to_vec();
    r.extend_from_slice(&44u64.to_le_bytes()); // size of the rest
    r.extend_from_slice(&[45, 0, 45, 0]); // made by, needed
    r.extend_from_slice(&[0; 8]); // this disk, the directory's disk
    r.extend_from_slice(&entries.to_le_bytes()); // on this disk
    r.extend_from_slice(&entries.to_le_bytes());
    r.extend_from_slice(&dir_size.to_le_bytes());
    r.extend_from_slice(&dir_offset.to_le_bytes());
    r
}

/// A zip64 locator naming the record at `record_at`, then the 32-bit end record with
/// `entries`, `dir_size` and `dir_offset` (0xFF… to send the reader to zip64).
fn zip64_tail(record_at: u64, entries: u16, dir_size: u32, dir_offset: u32) -> Vec<u8> {
    let mut t = b"PK\x06\x07".to_vec();
    t.extend_from_slice(&[0; 4]);
    t.extend_from_slice(&record_at.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes()); // disks
    t.extend_from_slice(b"PK\x05\x06");
    t.extend_from_slice(&[0; 4]);
    t.extend_from_slice(&entries.to_le_bytes());
    t.extend_from_slice(&entries.to_le_bytes());
    t.extend_from_slice(&dir_size.to_le_bytes());
    t.extend_from_slice(&dir_offset.to_le_bytes());
    t.extend_from_slice(&[0, 0]); // no comment
    t
}

#[test]
fn a_zip64_record_off_its_locator_is_refused() {
    // The 32-bit end record sends the reader to zip64; its locator names offset X, and a
    // zip64 end record declaring 30,000 entries sits at X + 1. The zip crate searches
    // around X and would believe it (and reserve room for 30,000 entries); we refuse.
    let x = 30_000u64 * 47;
    let mut bytes = vec![0u8; x as usize + 1];
    bytes.extend_from_slice(&zip64_record(30_000, 100, 30_000));
    bytes.extend_from_slice(&zip64_tail(x, 1, 100, u32::MAX));
    refused(
        &bytes,
        None,
        "zip64 end record is not where its locator says",
    );
}

#[test]
fn a_genuine_zip64_package_is_read() {
    // A plugin zip whose end records are in zip64 form, as a zip tool writes them (Info-ZIP
    // with -fz): the 32-bit record's figures all 0xFF…, the zip64 record right before its
    // locator, which names it.
    let plain = zip_of(&[("demo/demo.php", PLUGIN)]);
    let eocd = plain.len() - 22;
    assert_eq!(&plain[eocd..eocd + 4], b"PK\x05\x06");
    let entries = u64::from(u16::from_le_bytes([plain[eocd + 10], plain[eocd + 11]]));
    let u32_at = |at: usize| u64::from(u32::from_le_bytes(plain[at..at + 4].try_into().unwrap()));
    let mut bytes = plain[..eocd].to_vec();
    bytes.extend_from_slice(&zip64_record(entries, u32_at(eocd + 12), u32_at(eocd + 16)));
    bytes.extend_from_slice(&zip64_tail(eocd as u64, u16::MAX, u32::MAX, u32::MAX));
    let (result, _) = try_read(&bytes, None);
    assert_eq!(result.unwrap().slug, "demo");
}

#[test]
fn a_decoy_zip64_record_the_zip_crate_would_skip_is_refused() {
    // At the locator's offset X, a record declaring one entry but not ending at the
    // locator (the crate skips it); after it, one that does, declaring 30,000.
    let x = 30_000u64 * 47;
    let mut bytes = vec![0u8; x as usize];
    bytes.extend_from_slice(&zip64_record(1, 100, 0));
    bytes.extend_from_slice(&zip64_record(30_000, 100, 0));
    bytes.extend_from_slice(&zip64_tail(x, 1, 100, u32::MAX));
    refused(
        &bytes,
        None,
        "zip64 end record is not where its locator says",
    );
}

include!("../../tests/fixtures/zip_bombs.rs");

#[test]
fn the_bomb_is_genuine() {
    let deflated = gib_of_zeros_deflated();
    let bytes = raw_zip(&[("bomb/bomb.php", 8, GIB_ZEROS_CRC, &deflated, GIB)]);
    assert!(bytes.len() < 2 << 20, "{} bytes", bytes.len());
    let mut zip = zip::ZipArchive::new(Cursor::new(&bytes)).unwrap();
    let mut entry = zip.by_index(0).unwrap();
    assert_eq!(entry.size(), u64::from(GIB));
    // Across several of the repeated blocks: zeros, as many as asked.
    let mut head = Vec::new();
    entry.by_ref().take(3 << 20).read_to_end(&mut head).unwrap();
    assert_eq!(head.len(), 3 << 20);
    assert!(head.iter().all(|&b| b == 0));
    // The stream is 1,024 self-contained blocks of exactly 1 MiB of zeros, then the end.
    // (Inflating all of it in a debug build takes too long for every test run.)
    let mut chunk = mib_of_zeros_deflated();
    assert_eq!(deflated.len(), chunk.len() * 1024 + 2);
    assert!(deflated.chunks(chunk.len()).take(1024).all(|c| c == chunk));
    chunk.extend_from_slice(&FINAL_EMPTY_BLOCK);
    let mut one = Vec::new();
    flate2::read::DeflateDecoder::new(&chunk[..])
        .read_to_end(&mut one)
        .unwrap();
    assert_eq!(one.len(), 1 << 20);
    assert!(one.iter().all(|&b| b == 0));
}

#[test]
fn a_zip_bomb_costs_nothing() {
    let deflated = gib_of_zeros_deflated();
    let crc = |data: &[u8]| {
        let mut c = flate2::Crc::new();
        c.update(data);
        c.sum()
    };
    // The bomb as a plugin's data file: never opened.
    let bytes = raw_zip(&[
        ("demo/demo.php", 0, crc(PLUGIN), PLUGIN, PLUGIN.len() as u32),
        ("demo/data.bin", 8, GIB_ZEROS_CRC, &deflated, GIB),
    ]);
    let (info, stats) = try_read(&bytes, None);
    assert_eq!(info.unwrap().name, "Demo Plugin");
    assert_eq!(stats.entries_opened, 1);
    assert_eq!(stats.bytes_inflated, PLUGIN.len() as u64);
    assert!(stats.bytes_read < 128 << 10, "{stats:?}");

    // The bomb as the only header candidate: 8 KiB of it is inflated, then refused.
    let bytes = raw_zip(&[("bomb/bomb.php", 8, GIB_ZEROS_CRC, &deflated, GIB)]);
    let stats = refused(&bytes, None, "no plugin header");
    assert_eq!(stats.bytes_inflated, HEADER_BYTES);
    assert!(stats.bytes_read < 128 << 10, "{stats:?}");

    // The bomb as readme.txt and as style.css: at most 1 MiB and 8 KiB of it.
    let bytes = raw_zip(&[
        ("demo/demo.php", 0, crc(PLUGIN), PLUGIN, PLUGIN.len() as u32),
        ("demo/style.css", 8, GIB_ZEROS_CRC, &deflated, GIB),
        ("demo/readme.txt", 8, GIB_ZEROS_CRC, &deflated, GIB),
    ]);
    let (info, stats) = try_read(&bytes, None);
    assert!(info.unwrap().sections.is_empty());
    assert_eq!(
        stats.bytes_inflated,
        HEADER_BYTES + PLUGIN.len() as u64 + README_BYTES,
        "{stats:?}"
    );
    assert!(stats.bytes_read < 256 << 10, "{stats:?}");
}

#[test]
fn compressed_data_that_yields_nothing_is_cut_off() {
    // 1 MiB of empty stored blocks: inflates to nothing, so a `take()` alone would read it all.
    let mut stream = [0x00, 0x00, 0x00, 0xFF, 0xFF].repeat(200_000);
    stream.extend_from_slice(&[0x03, 0x00]);
    let bytes = raw_zip(&[("demo/demo.php", 8, 0, &stream, 0)]);
    let stats = refused(&bytes, None, "too much compressed data");
    assert!(stats.bytes_read < 256 << 10, "{stats:?}");
}

#[test]
fn sections_are_sanitized() {
    let readme = b"== Description ==\n<script>alert(1)</script>\n\n<b onclick=\"x()\">bold</b> [a](javascript:alert(2))\n\n== Installation ==\n<img src=x onerror=alert(3)>\n\n== Frequently Asked Questions ==\n= Q =\n<a href=\"javascript:alert(4)\">A</a>\n\n== Upgrade Notice ==\n<iframe src=//evil></iframe>ok\n";
    let bytes = zip_of(&[("demo/demo.php", PLUGIN), ("demo/README.TXT", readme)]);
    let info = read(&mut Cursor::new(bytes), None).unwrap();
    assert_eq!(info.sections.len(), 4);
    for html in info.sections.values() {
        let lower = html.to_ascii_lowercase();
        for bad in [
            "<script",
            "alert",
            "onclick",
            "onerror",
            "javascript:",
            "<iframe",
        ] {
            assert!(!lower.contains(bad), "{bad} survived in {html}");
        }
    }
    assert!(info.sections["description"].contains("<b>bold</b>"));
}

#[test]
fn an_unsupported_compression_method_is_a_reason() {
    let bytes = raw_zip(&[("demo/demo.php", 12, 0, b"BZh91AY&SY", 100)]);
    refused(&bytes, None, "entry `demo/demo.php` cannot be read");
}

/// A reader whose reads fail: an I/O error, not an invalid package.
#[test]
fn an_input_failure_is_io_not_invalid() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }
    impl Seek for Broken {
        fn seek(&mut self, _: SeekFrom) -> io::Result<u64> {
            Ok(1000)
        }
    }
    let (result, _) = read_with_stats(&mut Broken, None);
    assert!(matches!(result, Err(PackageError::Io(_))), "{result:?}");
}

#[test]
fn a_seek_before_the_start_is_the_zips_fault_not_the_disks() {
    let meter = Meter::default();
    meter.fail(&io::Error::new(
        io::ErrorKind::InvalidInput,
        "negative seek",
    ));
    meter.fail(&io::Error::new(io::ErrorKind::Interrupted, "again"));
    assert!(meter.failed.borrow().is_none());
    meter.fail(&io::Error::other("EIO"));
    assert!(meter.failed.borrow().is_some());
}
