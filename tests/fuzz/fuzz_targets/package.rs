//! `upkeep::package::read_with_stats`, the reader of uploaded WordPress zips, on arbitrary
//! bytes. The first byte picks how the rest is used (`% 3`):
//!
//! - 0: the rest is the zip itself;
//! - 1: the rest is `fz/readme.txt` in a zip (built here, stored) beside a valid plugin
//!   file, to reach the readme parser, Markdown and the sanitizer;
//! - 2: the rest is `fz/fz.php` in such a zip, to reach the header reader.
//!
//! Checks: never a panic, never an I/O error (the input is in memory); the cost stays within the module's limits (entries opened, bytes
//! inflated and bytes read, whatever the declared sizes); an accepted package has a valid
//! slug, a non-empty name, only the five section keys, and no `<script`, `<iframe` or
//! `<style` tag in its sanitized HTML; reading is deterministic.

#![no_main]

use std::io::{Cursor, Write};

use libfuzzer_sys::fuzz_target;
use upkeep::package::{self, ENTRY_READ_BUDGET, HEADER_BYTES, MAX_HEADER_CANDIDATES, README_BYTES};

const PLUGIN: &[u8] = b"<?php\n/*\nPlugin Name: Fuzz\nVersion: 1.0.0\n*/\n";

fn wrap(name: &str, data: &[u8], with_plugin: bool) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    if with_plugin {
        w.start_file("fz/a.php", stored).unwrap();
        w.write_all(PLUGIN).unwrap();
    }
    w.start_file(name, stored).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap().into_inner()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let bytes = match selector % 3 {
        0 => rest.to_vec(),
        1 => wrap("fz/readme.txt", rest, true),
        _ => wrap("fz/fz.php", rest, false),
    };
    let (result, stats) = package::read_with_stats(&mut Cursor::new(&bytes), None);

    let opened_max = MAX_HEADER_CANDIDATES as u64 + 2;
    assert!(stats.entries_opened <= opened_max, "{stats:?}");
    assert!(
        stats.bytes_inflated <= HEADER_BYTES * (opened_max - 1) + README_BYTES,
        "{stats:?}"
    );
    // The tail and the directory (each at most the input), 1 MiB of slack, then per entry
    // its limit and the budget beyond it.
    let read_max = 2 * bytes.len() as u64
        + (1 << 20)
        + stats.entries_opened * (README_BYTES + ENTRY_READ_BUDGET);
    assert!(
        stats.bytes_read <= read_max,
        "{stats:?} for {} bytes",
        bytes.len()
    );

    // The input is in memory: no failure is the input's own.
    assert!(
        !matches!(result, Err(package::PackageError::Io(_))),
        "{result:?}"
    );

    let again = package::read(&mut Cursor::new(&bytes), None);
    match (&result, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("not deterministic: {result:?} then {again:?}"),
    }

    let Ok(info) = result else { return };
    let slug = info.slug.as_bytes();
    assert!(!slug.is_empty() && slug.len() <= 64, "{info:?}");
    assert!(
        slug.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
    );
    assert!(!info.name.is_empty());
    assert!(info.header_file.starts_with(&format!("{}/", info.slug)));
    for (key, html) in &info.sections {
        assert!(
            [
                "description",
                "installation",
                "faq",
                "changelog",
                "upgrade_notice"
            ]
            .contains(&key.as_str())
        );
        let lower = html.to_ascii_lowercase();
        for tag in ["<script", "<iframe", "<style"] {
            assert!(!lower.contains(tag), "{tag} in {key}: {html}");
        }
    }
});
