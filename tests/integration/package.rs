//! The package reader (`upkeep::package`, SPEC §7 *Reading a package*) on real WordPress
//! packages: Akismet and the default themes as Debian's `wordpress` and
//! `wordpress-theme-*` packages ship them under `/usr/share/wordpress/wp-content/`,
//! zipped here as WordPress.org would ship them (one top-level folder, the slug). The
//! values asserted are the ones written in those files' headers and readmes.
//!
//! Without those files a test prints a loud `SKIPPED` line to the real stderr — and fails
//! instead when `CI` is set (`.ci/run` installs the packages). Hello Dolly is the
//! exception: Debian's `wordpress` package does not ship `hello.php`, so its test runs
//! only where a `hello.php` exists and otherwise says so (also under CI).

use std::io::{Cursor, Write};
use std::path::Path;

use upkeep::package::{self, Kind, PackageInfo};
use zip::write::SimpleFileOptions;

const WP_CONTENT: &str = "/usr/share/wordpress/wp-content";

/// `SKIPPED …` past libtest's capture; under `CI`, a failure instead.
fn skip(test: &str, what: &str, install: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {what} is missing and CI is set: {install}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\nSKIPPED [upkeep-package]: {test}: {what} not found: install Debian's wordpress package \
         ({install}); the real-package check did NOT run.\n"
    );
}

/// Zips `dir` (recursively, symlinks followed, in name order) under the folder `slug/`.
fn zip_dir(dir: &Path, slug: &str) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.add_directory(format!("{slug}/"), options).unwrap();
    add_tree(&mut w, dir, slug, options);
    w.finish().unwrap().into_inner()
}

fn add_tree(
    w: &mut zip::ZipWriter<Cursor<Vec<u8>>>,
    dir: &Path,
    prefix: &str,
    options: SimpleFileOptions,
) {
    let mut children: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    children.sort();
    for path in children {
        let name = format!("{prefix}/{}", path.file_name().unwrap().to_str().unwrap());
        if path.is_dir() {
            w.add_directory(format!("{name}/"), options).unwrap();
            add_tree(w, &path, &name, options);
        } else {
            w.start_file(name, options).unwrap();
            w.write_all(&std::fs::read(&path).unwrap()).unwrap();
        }
    }
}

/// Zips `dir` as `slug` and reads it; `None` (after [`skip`]) when `dir` is missing.
fn read_real(
    test: &str,
    dir: &str,
    slug: &str,
    install: &str,
) -> Option<(PackageInfo, package::Stats)> {
    let dir = Path::new(WP_CONTENT).join(dir);
    if !dir.is_dir() {
        skip(test, &dir.display().to_string(), install);
        return None;
    }
    let bytes = zip_dir(&dir, slug);
    let (info, stats) = package::read_with_stats(&mut Cursor::new(&bytes), None);
    Some((info.unwrap_or_else(|e| panic!("{test}: {e}")), stats))
}

#[test]
fn akismet_as_debian_ships_it() {
    let Some((info, stats)) = read_real(
        "akismet_as_debian_ships_it",
        "plugins/akismet",
        "akismet",
        "apt-get install wordpress",
    ) else {
        return;
    };
    // akismet/akismet.php's header (WordPress 6.1.9's bundled Akismet 5.0.2).
    assert_eq!(info.kind, Kind::Plugin);
    assert_eq!(info.slug, "akismet");
    assert_eq!(info.header_file, "akismet/akismet.php");
    assert_eq!(info.name, "Akismet Anti-Spam");
    assert_eq!(info.version.as_deref(), Some("5.0.2"));
    assert_eq!(info.requires.as_deref(), Some("5.0"));
    assert_eq!(info.requires_php.as_deref(), Some("5.2"));
    assert_eq!(info.uri.as_deref(), Some("https://akismet.com/"));
    assert_eq!(info.author.as_deref(), Some("Automattic"));
    assert_eq!(
        info.author_uri.as_deref(),
        Some("https://automattic.com/wordpress-plugins/")
    );
    let description = info.description.as_deref().unwrap();
    assert!(
        description.starts_with("Used by millions, Akismet is quite possibly the best way in the world to <strong>protect your blog from spam</strong>."),
        "{description}"
    );
    // readme.txt.
    assert_eq!(info.tested.as_deref(), Some("6.1.1"));
    assert_eq!(info.stable_tag.as_deref(), Some("5.0.2"));
    let keys: Vec<&str> = info.sections.keys().map(String::as_str).collect();
    assert_eq!(keys, ["changelog", "description", "installation"]);
    let d = &info.sections["description"];
    assert!(
        d.starts_with("<p>Akismet checks your comments and contact form submissions"),
        "{d}"
    );
    assert!(
        d.contains("<li>Moderators can see the number of approved comments for each user.</li>"),
        "{d}"
    );
    let c = &info.sections["changelog"];
    assert!(c.contains("<h4>5.0.2</h4>"), "{c}");
    assert!(c.contains("<em>Release Date - 1 December 2022</em>"), "{c}");
    assert!(
        info.sections["installation"].contains("enter your Akismet.com API key."),
        "{}",
        info.sections["installation"]
    );
    // Two entries inflated of the plugin's files: akismet.php (first in order) and the readme.
    assert_eq!(stats.entries_opened, 2, "{stats:?}");
    assert!(
        stats.bytes_inflated <= package::HEADER_BYTES + 4_000,
        "{stats:?}"
    );
}

/// (folder, Theme Name, Version, Requires at least, readme Tested up to, Theme URI, how the
/// header's `Description` and the readme's Description section begin)
const THEMES: [(&str, &str, &str, &str, &str, &str, &str); 3] = [
    (
        "twentytwentyone",
        "Twenty Twenty-One",
        "1.7",
        "5.3",
        "6.1",
        "https://wordpress.org/themes/twentytwentyone/",
        "Twenty Twenty-One is a blank canvas for your ideas",
    ),
    (
        "twentytwentytwo",
        "Twenty Twenty-Two",
        "1.3",
        "5.9",
        "6.1",
        "https://wordpress.org/themes/twentytwentytwo/",
        "Built on a solidly designed foundation, Twenty Twenty-Two",
    ),
    (
        "twentytwentythree",
        "Twenty Twenty-Three",
        "1.0",
        "6.1",
        "6.1",
        "https://wordpress.org/themes/twentytwentythree",
        "Twenty Twenty-Three is designed to take advantage",
    ),
];

#[test]
fn the_default_themes_as_debian_ships_them() {
    for (slug, name, version, requires, tested, uri, begins) in THEMES {
        let install = format!("apt-get install wordpress-theme-{slug}");
        let Some((info, stats)) = read_real(
            "the_default_themes_as_debian_ships_them",
            &format!("themes/{slug}"),
            slug,
            &install,
        ) else {
            continue;
        };
        assert_eq!(info.kind, Kind::Theme, "{slug}");
        assert_eq!(info.slug, slug);
        assert_eq!(info.header_file, format!("{slug}/style.css"));
        assert_eq!(info.name, name);
        assert_eq!(info.version.as_deref(), Some(version), "{slug}");
        assert_eq!(info.requires.as_deref(), Some(requires), "{slug}");
        assert_eq!(info.requires_php.as_deref(), Some("5.6"), "{slug}");
        assert_eq!(info.uri.as_deref(), Some(uri), "{slug}");
        assert_eq!(info.author.as_deref(), Some("the WordPress team"), "{slug}");
        assert!(
            info.description.as_deref().unwrap().starts_with(begins),
            "{slug}"
        );
        // `Tested up to` is the readme's (Twenty Twenty-One's style.css says 6.0).
        assert_eq!(info.tested.as_deref(), Some(tested), "{slug}");
        assert_eq!(info.stable_tag.as_deref(), Some(version), "{slug}");
        assert!(
            info.sections["description"].starts_with(&format!("<p>{begins}")),
            "{slug}"
        );
        assert!(
            info.sections["changelog"].contains(&format!("<h4>{version}</h4>")),
            "{slug}"
        );
        assert_eq!(
            stats.entries_opened, 2,
            "{slug}: style.css and readme.txt only"
        );
        // The hint agrees; asking for a plugin finds none.
        let bytes = zip_dir(&Path::new(WP_CONTENT).join("themes").join(slug), slug);
        assert_eq!(
            package::read(&mut Cursor::new(&bytes), Some(Kind::Theme)).unwrap(),
            info
        );
        let err = package::read(&mut Cursor::new(&bytes), Some(Kind::Plugin)).unwrap_err();
        assert!(err.reason().contains("no plugin header"), "{slug}: {err}");
    }
}

#[test]
fn hello_dolly_a_single_file_in_its_folder() {
    let path = Path::new(WP_CONTENT).join("plugins/hello.php");
    let Ok(source) = std::fs::read(&path) else {
        // Not `skip`: Debian's wordpress package (6.1.9+dfsg1) strips hello.php, so CI
        // cannot have it either. Said loudly all the same.
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED [upkeep-package]: hello_dolly_a_single_file_in_its_folder: {} not found \
             (Debian's wordpress package does not ship Hello Dolly); the check did NOT run.\n",
            path.display()
        );
        return;
    };
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("hello-dolly/hello.php", SimpleFileOptions::default())
        .unwrap();
    w.write_all(&source).unwrap();
    let bytes = w.finish().unwrap().into_inner();
    let info = package::read(&mut Cursor::new(&bytes), None).unwrap();
    assert_eq!(
        (info.kind, info.slug.as_str()),
        (Kind::Plugin, "hello-dolly")
    );
    assert_eq!(info.name, "Hello Dolly");
    assert_eq!(info.author.as_deref(), Some("Matt Mullenweg"));
    assert_eq!(
        info.uri.as_deref(),
        Some("http://wordpress.org/plugins/hello-dolly/")
    );
    assert!(info.sections.is_empty());
}
