//! `upkeep product …` and `upkeep release …` (SPEC §13) on the real binary, with no server
//! (the CLI opens the store itself) and with `upkeep serve` running (the command goes over
//! the admin socket, the pushed file streamed after the request line).
//!
//! The packages are real plugin zips built here: Hello Dolly's `hello.php` header (as
//! WordPress 6.x ships it) in the folder `hello-dolly/`.

use crate::support::{ServeProcess, cli_json, upkeep_cli, upkeep_init};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use zip::write::SimpleFileOptions;

/// Hello Dolly's plugin header, at `version`.
fn hello_php(version: &str) -> String {
    format!(
        "<?php\n/**\n * @package Hello_Dolly\n * @version {version}\n */\n/*\n\
         Plugin Name: Hello Dolly\n\
         Plugin URI: http://wordpress.org/plugins/hello-dolly/\n\
         Description: This is not just a plugin, it symbolizes the hope and enthusiasm of an \
         entire generation summed up in two words sung most famously by Louis Armstrong: \
         Hello, Dolly.\n\
         Author: Matt Mullenweg\n\
         Version: {version}\n\
         Author URI: http://ma.tt/\n*/\n\nfunction hello_dolly_get_lyric() {{\n\treturn 'Hello, Dolly';\n}}\n"
    )
}

/// Writes `hello-dolly.zip` (folder `hello-dolly/`) at `version` into `dir`, named `name`;
/// `extra` makes the content differ for the same version.
fn plugin_zip(dir: &Path, name: &str, version: &str, extra: &str) -> PathBuf {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.add_directory("hello-dolly/", options).unwrap();
    w.start_file("hello-dolly/hello.php", options).unwrap();
    w.write_all(hello_php(version).as_bytes()).unwrap();
    w.write_all(extra.as_bytes()).unwrap();
    let bytes = w.finish().unwrap().into_inner();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A data directory with the account `acme` (made with the binary, as an operator would).
fn store_with_acme(root: &Path) -> PathBuf {
    let data = root.join("data");
    upkeep_init(&data);
    ok(&upkeep_cli(
        &data,
        &[
            "account",
            "create",
            "--name",
            "Acme",
            "--email",
            "dev@acme.io",
            "--prefix",
            "acme",
        ],
    ));
    data
}

#[track_caller]
fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

/// The one-line error of a failed command (exit 2), and nothing on stdout.
#[track_caller]
fn fails(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(2),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty());
    String::from_utf8(output.stderr.clone()).expect("utf-8")
}

fn cli(data: &Path, args: &[&str]) -> Output {
    upkeep_cli(data, args)
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `release list --json`'s versions.
fn versions(data: &Path) -> Vec<Value> {
    cli_json(&cli(
        data,
        &["--json", "release", "list", "--account", "acme"],
    ))["versions"]
        .as_array()
        .unwrap()
        .clone()
}

/// Every blob file in the data directory.
fn blob_files(data: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&data.join("blobs"), &mut found);
    found
}

#[test]
fn push_with_no_server_creates_the_product_publishes_and_prints_the_update_urls() {
    let root = tempfile::tempdir().unwrap();
    let data = store_with_acme(root.path());
    let zip = plugin_zip(root.path(), "hello-dolly.1.7.2.zip", "1.7.2", "");
    let size = std::fs::metadata(&zip).unwrap().len();

    // No --account: the store holds exactly one.
    let output = cli(&data, &["release", "push", path_arg(&zip)]);
    let text = ok(&output);
    // stderr is a pipe here: no progress, nothing at all.
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("released hello-dolly 1.7.2 (stable), published"),
        "{text}"
    );
    assert!(text.contains("created from the package"), "{text}");

    let products = cli_json(&cli(&data, &["--json", "product", "list"]));
    let product = &products["products"][0];
    assert_eq!(products["products"].as_array().unwrap().len(), 1);
    assert_eq!(product["slug"], "hello-dolly");
    assert_eq!(product["name"], "Hello Dolly");
    assert_eq!(product["kind"], "plugin");
    assert_eq!(product["license"], "free");
    let id = product["id"].as_u64().unwrap();
    // The four dialects' URLs (SPEC §8.2), from the default listen address (printed
    // only: nothing listens there in this test).
    let base = format!("http://{}", upkeep::defaults::LISTEN);
    for url in [
        format!("{base}/v1/public/acme/plugins/hello-dolly"),
        format!("{base}/updates/acme/hello-dolly"),
        format!("{base}/edd/acme/?edd_action=get_version&item_id={id}"),
        format!("{base}/api/v1/products/{id}/update"),
    ] {
        assert!(text.contains(&url), "{url} missing from:\n{text}");
    }
    assert!(
        text.contains("--public-url"),
        "says where the base comes from: {text}"
    );

    let listed = versions(&data);
    assert_eq!(listed.len(), 1);
    let version = &listed[0];
    assert_eq!(version["version"], "1.7.2");
    assert_eq!(version["product_id"].as_u64(), Some(id));
    assert_eq!(version["maturity"], "stable");
    assert_eq!(version["published"], true);
    assert_eq!(version["rollout"], 100);
    assert!(version["released_at"].is_string());
    let file = &version["files"][0];
    assert_eq!(file["filename"], "hello-dolly.1.7.2.zip");
    assert_eq!(file["primary"], true);
    assert_eq!(file["published"], true);
    assert_eq!(file["size"].as_u64(), Some(size));
    let content = std::fs::read(&zip).unwrap();
    assert_eq!(file["blake3"], blake3::hash(&content).to_hex().as_str());
    assert_eq!(blob_files(&data).len(), 1);

    // The same file again (under another name, with --json and a public URL): nothing
    // changes, the answer says so.
    let again_path = root.path().join("copy.zip");
    std::fs::copy(&zip, &again_path).unwrap();
    let again = cli_json(&cli(
        &data,
        &[
            "--json",
            "release",
            "push",
            path_arg(&again_path),
            "--account",
            "acme",
            "--public-url",
            "https://updates.example.com/",
        ],
    ));
    assert_eq!(again["version_created"], false);
    assert_eq!(again["product_created"], false);
    assert_eq!(again["version"]["id"], version["id"]);
    assert_eq!(
        again["update_urls"]["plugin_update_checker"],
        "https://updates.example.com/updates/acme/hello-dolly"
    );
    assert_eq!(
        again["update_urls"]["wunderupdates"],
        "https://updates.example.com/v1/public/acme/plugins/hello-dolly"
    );
    assert_eq!(again["base_from"], "--public-url");
    assert_eq!(versions(&data), listed);
    assert_eq!(blob_files(&data).len(), 1);

    // The same version with other content is refused by name.
    let other = plugin_zip(root.path(), "other.zip", "1.7.2", "// changed\n");
    let refused = fails(&cli(
        &data,
        &["--json", "release", "push", path_arg(&other)],
    ));
    let error: Value = serde_json::from_str(&refused).unwrap();
    assert_eq!(error["error"], "version_exists", "{refused}");
    assert!(
        error["message"].as_str().unwrap().contains("1.7.2"),
        "{refused}"
    );
    assert_eq!(
        blob_files(&data).len(),
        1,
        "the refused upload left its blob"
    );
}

#[test]
fn a_file_that_is_not_a_zip_is_refused_with_the_reason_and_creates_nothing() {
    let root = tempfile::tempdir().unwrap();
    let data = store_with_acme(root.path());
    let bogus = root.path().join("hello-dolly.zip");
    std::fs::write(&bogus, "<?php /* Plugin Name: not zipped */").unwrap();

    let text = fails(&cli(&data, &["release", "push", path_arg(&bogus)]));
    assert!(text.starts_with("upkeep: package: not a zip"), "{text}");
    let json: Value = serde_json::from_str(&fails(&cli(
        &data,
        &["--json", "release", "push", path_arg(&bogus)],
    )))
    .unwrap();
    assert_eq!(json["error"], "invalid_package");
    assert_eq!(json["status"], 400);

    let products = cli_json(&cli(&data, &["--json", "product", "list"]));
    assert_eq!(products["products"], serde_json::json!([]));
    assert!(versions(&data).is_empty());
    assert!(blob_files(&data).is_empty(), "{:?}", blob_files(&data));

    // A missing file and a directory name the argument.
    let missing = fails(&cli(&data, &["release", "push", "/nonexistent/x.zip"]));
    assert!(
        missing.contains("FILE: cannot read /nonexistent/x.zip"),
        "{missing}"
    );
    let dir = fails(&cli(&data, &["release", "push", path_arg(root.path())]));
    assert!(dir.contains("is not a regular file"), "{dir}");
}

#[test]
fn draft_push_then_publish_unpublish_and_delete() {
    let root = tempfile::tempdir().unwrap();
    let data = store_with_acme(root.path());
    let zip = plugin_zip(root.path(), "hello-dolly.zip", "1.8.0-beta.2", "");
    let notes = root.path().join("NOTES.md");
    std::fs::write(&notes, "* Sings in tune now.\n").unwrap();

    // Flags are checked before anything is stored, and named.
    let rollout = fails(&cli(
        &data,
        &["release", "push", path_arg(&zip), "--rollout", "0"],
    ));
    assert!(rollout.contains("--rollout: must be 1–100"), "{rollout}");
    let big_notes = root.path().join("BIG.md");
    std::fs::write(&big_notes, "x".repeat(64 * 1024 + 1)).unwrap();
    let too_long = fails(&cli(
        &data,
        &[
            "release",
            "push",
            path_arg(&zip),
            "--notes",
            path_arg(&big_notes),
        ],
    ));
    assert!(too_long.contains("--notes:"), "{too_long}");
    let mismatch = fails(&cli(
        &data,
        &["release", "push", path_arg(&zip), "--version", "1.9.0"],
    ));
    assert!(
        mismatch.contains("version") && mismatch.contains("1.8.0-beta.2"),
        "{mismatch}"
    );
    assert!(versions(&data).is_empty());
    assert!(blob_files(&data).is_empty());

    let pushed = cli_json(&cli(
        &data,
        &[
            "--json",
            "release",
            "push",
            path_arg(&zip),
            "--account",
            "acme",
            "--draft",
            "--rollout",
            "25",
            "--notes",
            path_arg(&notes),
        ],
    ));
    assert_eq!(pushed["version"]["published"], false);
    assert_eq!(pushed["version"]["maturity"], "beta");
    assert_eq!(pushed["version"]["rollout"], 25);
    assert_eq!(pushed["version"]["released_at"], Value::Null);

    let published = cli_json(&cli(
        &data,
        &[
            "--json",
            "release",
            "publish",
            "--account",
            "acme",
            "--product",
            "hello-dolly",
            "1.8.0-beta.2",
        ],
    ));
    assert_eq!(published["version"]["published"], true);
    assert!(published["version"]["released_at"].is_string());
    let text = ok(&cli(
        &data,
        &[
            "release",
            "unpublish",
            "--account",
            "acme",
            "--product",
            "hello-dolly",
            "1.8.0-beta.2",
        ],
    ));
    assert_eq!(text, "hello-dolly 1.8.0-beta.2 unpublished\n");
    let listed = ok(&cli(
        &data,
        &[
            "release",
            "list",
            "--account",
            "acme",
            "--product",
            "hello-dolly",
        ],
    ));
    assert!(
        listed.contains("1.8.0-beta.2") && listed.contains("beta"),
        "{listed}"
    );
    assert_eq!(versions(&data)[0]["published"], false);

    // Unknown names are refused by name.
    let unknown = fails(&cli(
        &data,
        &[
            "release",
            "publish",
            "--account",
            "acme",
            "--product",
            "nope",
            "1.0.0",
        ],
    ));
    assert!(unknown.contains("no product with slug `nope`"), "{unknown}");
    let bad_version = fails(&cli(
        &data,
        &[
            "--json",
            "release",
            "publish",
            "--account",
            "acme",
            "--product",
            "hello-dolly",
            "1.0.0-pre.1",
        ],
    ));
    assert!(bad_version.contains("invalid_version"), "{bad_version}");

    let deleted = ok(&cli(
        &data,
        &[
            "release",
            "delete",
            "--account",
            "acme",
            "--product",
            "hello-dolly",
            "1.8.0-beta.2",
        ],
    ));
    assert!(
        deleted.contains("deleted version 1.8.0-beta.2 of `hello-dolly`"),
        "{deleted}"
    );
    assert!(versions(&data).is_empty());
    let again = fails(&cli(
        &data,
        &[
            "release",
            "delete",
            "--account",
            "acme",
            "--product",
            "hello-dolly",
            "1.8.0-beta.2",
        ],
    ));
    assert!(again.contains("no version 1.8.0-beta.2"), "{again}");
}

#[test]
fn product_create_list_delete_and_which_account() {
    let root = tempfile::tempdir().unwrap();
    let data = store_with_acme(root.path());

    let created = cli_json(&cli(
        &data,
        &[
            "--json",
            "product",
            "create",
            "--account",
            "acme",
            "--slug",
            "desk-app",
            "--kind",
            "app",
            "--name",
            "Desk App",
            "--license",
            "download_keys",
        ],
    ));
    assert_eq!(created["product"]["slug"], "desk-app");
    assert_eq!(created["product"]["kind"], "app");
    assert_eq!(created["product"]["license"], "download_keys");
    let duplicate = fails(&cli(
        &data,
        &["product", "create", "--slug", "desk-app", "--kind", "app"],
    ));
    assert!(
        duplicate.contains("desk-app") || duplicate.contains("exists"),
        "{duplicate}"
    );
    let bad_slug = fails(&cli(
        &data,
        &[
            "product", "create", "--slug", "Bad Slug", "--kind", "plugin",
        ],
    ));
    assert!(bad_slug.contains("slug"), "{bad_slug}");

    let list = ok(&cli(&data, &["product", "list", "--account", "acme"]));
    assert!(
        list.contains("desk-app") && list.contains("Desk App"),
        "{list}"
    );

    // An app's release: its file is not read; the version is given.
    let binary = root.path().join("desk-app-2.0.0.tar.gz");
    std::fs::write(&binary, vec![7u8; 200_000]).unwrap();
    let no_version = fails(&cli(
        &data,
        &[
            "release",
            "push",
            path_arg(&binary),
            "--product",
            "desk-app",
        ],
    ));
    assert!(no_version.contains("version"), "{no_version}");
    let pushed = cli_json(&cli(
        &data,
        &[
            "--json",
            "release",
            "push",
            path_arg(&binary),
            "--product",
            "desk-app",
            "--version",
            "2.0.0",
        ],
    ));
    assert_eq!(pushed["version"]["files"][0]["size"], 200_000);
    // An app has only the UpdaterCloud URL.
    let urls = pushed["update_urls"].as_object().unwrap();
    assert_eq!(urls.len(), 1, "{urls:?}");
    assert!(urls.contains_key("updatercloud"));
    let unknown_product = fails(&cli(
        &data,
        &[
            "release",
            "push",
            path_arg(&binary),
            "--product",
            "nope",
            "--version",
            "1.0.0",
        ],
    ));
    assert!(
        unknown_product.contains("--product") && unknown_product.contains("nope"),
        "{unknown_product}"
    );

    // With a second account, the account must be named.
    ok(&cli(
        &data,
        &[
            "account",
            "create",
            "--name",
            "Globex",
            "--email",
            "ops@globex.io",
            "--prefix",
            "globex",
        ],
    ));
    let which = fails(&cli(&data, &["product", "list"]));
    assert!(
        which.contains("--account") && which.contains("acme") && which.contains("globex"),
        "{which}"
    );
    let unknown = fails(&cli(&data, &["product", "list", "--account", "nobody"]));
    assert!(
        unknown.contains("--account") && unknown.contains("nobody"),
        "{unknown}"
    );
    let other = cli_json(&cli(
        &data,
        &["--json", "product", "list", "--account", "globex"],
    ));
    assert_eq!(other["products"], serde_json::json!([]));

    let deleted = ok(&cli(
        &data,
        &["product", "delete", "--account", "acme", "desk-app"],
    ));
    assert!(
        deleted.contains("deleted product `desk-app`") && deleted.contains("1 version"),
        "{deleted}"
    );
    let after = cli_json(&cli(
        &data,
        &["--json", "product", "list", "--account", "acme"],
    ));
    assert_eq!(after["products"], serde_json::json!([]));
    let gone = fails(&cli(
        &data,
        &["product", "delete", "--account", "acme", "desk-app"],
    ));
    assert!(gone.contains("no product with slug `desk-app`"), "{gone}");
}

#[test]
fn push_and_manage_releases_through_a_running_server() {
    let root = tempfile::tempdir().unwrap();
    let data = store_with_acme(root.path());
    let server = ServeProcess::start(&data, "warn", &[]);

    // A zip bigger than the socket's request line and than one 64 KiB chunk: the bytes
    // follow the request line.
    let padding: String = (0..40_000).map(|i| format!("// line {i}\n")).collect();
    let zip = plugin_zip(root.path(), "hello-dolly.zip", "1.7.2", &padding);
    assert!(std::fs::metadata(&zip).unwrap().len() > 64 * 1024);
    let pushed = cli_json(&cli(
        &data,
        &[
            "--json",
            "release",
            "push",
            path_arg(&zip),
            "--draft",
            "--public-url",
            "https://updates.example.com",
        ],
    ));
    assert_eq!(pushed["product_created"], true);
    assert_eq!(pushed["version"]["published"], false);
    let content = std::fs::read(&zip).unwrap();
    assert_eq!(
        pushed["version"]["files"][0]["blake3"],
        blake3::hash(&content).to_hex().as_str()
    );
    assert_eq!(
        pushed["version"]["files"][0]["size"].as_u64(),
        Some(content.len() as u64)
    );
    let id = pushed["product"]["id"].as_u64().unwrap();
    assert_eq!(
        pushed["update_urls"]["edd"],
        format!("https://updates.example.com/edd/acme/?edd_action=get_version&item_id={id}")
    );

    // Idempotent over the socket too.
    let again = cli_json(&cli(&data, &["--json", "release", "push", path_arg(&zip)]));
    assert_eq!(again["version_created"], false);

    // A non-zip is refused by the server, before or after its bytes: nothing is created.
    let bogus = root.path().join("bogus.zip");
    std::fs::write(&bogus, vec![b'x'; 300_000]).unwrap();
    let refused: Value = serde_json::from_str(&fails(&cli(
        &data,
        &["--json", "release", "push", path_arg(&bogus)],
    )))
    .unwrap();
    assert_eq!(refused["error"], "invalid_package", "{refused}");
    // Refused before the bytes are read (unknown account): the answer still arrives.
    let early = fails(&cli(
        &data,
        &["release", "push", path_arg(&bogus), "--account", "nobody"],
    ));
    assert!(
        early.contains("--account: no account with prefix `nobody`"),
        "{early}"
    );

    ok(&cli(
        &data,
        &[
            "release",
            "publish",
            "--account",
            "acme",
            "--product",
            "hello-dolly",
            "1.7.2",
        ],
    ));
    assert_eq!(versions(&data)[0]["published"], true);

    let log = server.stop();
    assert!(!log.contains("\"level\":\"ERROR\""), "{log}");

    // What the server stored is there for the CLI on the stopped store.
    let listed = versions(&data);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["published"], true);
    assert_eq!(blob_files(&data).len(), 1, "{:?}", blob_files(&data));
}

#[test]
fn doctor_notices_a_released_file_missing_from_the_blob_directory() {
    let root = tempfile::tempdir().unwrap();
    let data = store_with_acme(root.path());
    let zip = plugin_zip(root.path(), "hello-dolly.zip", "1.7.2", "");
    let pushed = cli_json(&upkeep_cli(
        &data,
        &["--json", "release", "push", zip.to_str().unwrap()],
    ));
    let hash = pushed["version"]["files"][0]["blake3"]
        .as_str()
        .or_else(|| pushed["files"][0]["blake3"].as_str())
        .unwrap_or_else(|| panic!("no blake3 in {pushed}"))
        .to_owned();
    let healthy = upkeep_cli(&data, &["doctor"]);
    let text = String::from_utf8_lossy(&healthy.stdout).into_owned();
    assert!(healthy.status.success(), "{text}");
    assert!(
        text.contains("every file the catalogue references is in blobs/"),
        "{text}"
    );
    let blob = data
        .join("blobs")
        .join(&hash[..2])
        .join(&hash[2..4])
        .join(&hash);
    std::fs::remove_file(&blob).unwrap();
    let sick = upkeep_cli(&data, &["doctor"]);
    let text = String::from_utf8_lossy(&sick.stdout).into_owned();
    assert!(!sick.status.success(), "{text}");
    assert!(
        text.contains("missing from blobs/") && text.contains(&hash),
        "{text}"
    );
}
