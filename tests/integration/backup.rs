//! `upkeep backup` / `upkeep restore` through the real binary: an online backup of a
//! running server restores to identical data; a backup taken while writes go on is one
//! point in time (a gap-free prefix of the acknowledged writes); damaged, truncated and
//! newer backups are refused without writing anything; a store is never overwritten.

use crate::support::{TestServer, cli_json, upkeep_cli};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every tree's `(key, value)` entries by tree name.
type Dump = BTreeMap<String, Vec<(Vec<u8>, Vec<u8>)>>;

/// Every tree's entries, read straight from sled (the store must be closed).
///
/// sled's own threads may hold the directory's lock for a few ms after the `Db` is
/// dropped, and `Store::open` waits only for stores it closed itself: never `Store::open`
/// a directory right after dumping it (dump a copy, as [`dump_copy`] does, instead).
fn dump(data: &Path) -> Dump {
    let db = sled::open(data.join("db")).expect("open restored db");
    upkeep::store::schema::TREES
        .iter()
        .map(|tree| tree.name)
        .map(|name| {
            let tree = db.open_tree(name).unwrap();
            let entries = tree
                .iter()
                .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                .collect();
            ((*name).to_owned(), entries)
        })
        .collect()
}

/// [`dump`] of a byte-for-byte copy of the closed store in `data`: `data` itself is never
/// opened by raw sled (no lock taken, none waited for), so `Store::open` can open it at
/// once afterwards.
fn dump_copy(data: &Path) -> Dump {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let scratch = tempfile::tempdir().unwrap();
    copy(&data.join("db"), &scratch.path().join("db"));
    dump(scratch.path())
}

async fn cli(data: &Path, args: &[&str]) -> std::process::Output {
    let data = data.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        upkeep_cli(&data, &args)
    })
    .await
    .unwrap()
}

#[track_caller]
fn succeeded(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn an_online_backup_restores_to_identical_data() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let globex = server.account("globex");
    server.token(&acme, "ci", &["read_user"], None);
    let operator = server.operator_token("admin", true, true, None);
    let (_, key) = server.license(10, None);
    server
        .post(
            "/v1/account/license",
            &globex.token,
            json!({"license": key}),
        )
        .send()
        .await
        .expect(200);
    let rotated = server
        .request(http::Method::POST, "/api/v1/tokens/self/rotate")
        .header("authorization", &format!("Bearer {}", acme.token))
        .body(r#"{"grace":"1h"}"#)
        .send()
        .await
        .expect(201)["data"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A release: its record and its file's blob travel in the backup.
    let zip = crate::support::plugin_zip("backed-up", "1.0.0", "content");
    server
        .request(http::Method::POST, "/api/v1/releases")
        .header("authorization", &format!("Bearer {}", acme.token))
        .header("content-type", "application/zip")
        .body(zip.clone())
        .send()
        .await
        .expect(201);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upkeep.backup");
    let text = succeeded(&cli(server.path(), &["backup", file.to_str().unwrap()]).await);
    assert!(text.contains("records"), "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Bytes, not text: the backup carries the release's zip.
    let backup_bytes = std::fs::read(&file).unwrap();
    for secret in [&acme.token, &rotated, &operator, &key] {
        assert!(
            !backup_bytes
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "a backup holds no secret"
        );
    }
    assert!(
        backup_bytes.windows(zip.len()).any(|w| w == &zip[..]),
        "the backup carries the release's file"
    );

    let (original_dir, original) = server.stop().await;
    let restored = dir.path().join("restored");
    let key_file = original.join("server.key");
    let text = succeeded(
        &tokio::task::spawn_blocking({
            let (restored, file, key_file) = (restored.clone(), file.clone(), key_file.clone());
            move || {
                upkeep_cli(
                    &restored,
                    &[
                        "restore",
                        file.to_str().unwrap(),
                        "--server-key",
                        key_file.to_str().unwrap(),
                    ],
                )
            }
        })
        .await
        .unwrap(),
    );
    assert!(text.contains("restored"), "{text}");
    // Both dumped through copies: the restored store is opened just below (a raw sled
    // close can hold its lock past that open), and the original's lock may still be held
    // by the store `stop` just closed (which a raw `sled::open` would not wait for).
    assert_eq!(
        dump_copy(&original),
        dump_copy(&restored),
        "every tree restored byte for byte"
    );

    // And it serves: old secrets, the grace alias, operator values.
    let server = TestServer::start_in(
        &restored,
        upkeep::clock::Clock::manual(crate::support::START),
        upkeep::Settings::default(),
    )
    .await;
    server.get("/v1/account", &rotated).send().await.expect(200);
    server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        server
            .get("/v1/account", &globex.token)
            .send()
            .await
            .expect(200)["account"]["activationLimit"],
        10
    );
    let value = server
        .request(http::Method::GET, "/_/token/value?name=admin")
        .header("authorization", &format!("Bearer {operator}"))
        .send()
        .await
        .expect(200);
    assert_eq!(value["data"][0]["token"], operator.as_str());
    // The release is offered and its file downloads, byte for byte.
    let offer = server
        .request(http::Method::GET, "/updates/acme/backed-up")
        .send()
        .await
        .expect(200);
    assert_eq!(offer["version"], "1.0.0");
    let link = offer["download_url"].as_str().expect("a link").to_owned();
    let path = &link[link.find("/dl/").expect("a /dl/ link")..];
    let download = server.request(http::Method::GET, path).send().await;
    assert_eq!(download.status, 200, "{download:?}");
    assert_eq!(&download.body[..], &zip[..]);
    drop(server);
    drop(original_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_writes_go_on_is_one_point_in_time() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    let server = Arc::new(TestServer::start().await);
    let acme = server.account("acme");
    // The writer publishes its count of acknowledged writes; waiting on it blocks until
    // the count changes (no polling).
    let (acknowledged, mut count) = tokio::sync::watch::channel(0usize);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (server, acknowledged, stop, token) = (
            server.clone(),
            acknowledged.clone(),
            stop.clone(),
            acme.token.clone(),
        );
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                server
                    .post(
                        "/v1/account/tokens",
                        &token,
                        json!({"name": format!("t{i:05}")}),
                    )
                    .send()
                    .await
                    .expect(200);
                i += 1;
                acknowledged.send_replace(i);
            }
        })
    };
    async fn at_least(count: &mut tokio::sync::watch::Receiver<usize>, n: usize) {
        tokio::time::timeout(Duration::from_secs(30), count.wait_for(|&i| i >= n))
            .await
            .unwrap_or_else(|_| panic!("fewer than {n} writes acknowledged in 30 s"))
            .expect("the writer is running");
    }
    // Let some writes land, then back up while the writer keeps going.
    at_least(&mut count, 20).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.backup");
    let before = *count.borrow();
    succeeded(&cli(server.path(), &["backup", file.to_str().unwrap()]).await);
    let after = *count.borrow();
    // The writer must still be writing after the backup: the backup did not stop it.
    at_least(&mut count, after + 5).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();

    let restored = dir.path().join("restored");
    succeeded(
        &tokio::task::spawn_blocking({
            let (restored, file) = (restored.clone(), file.clone());
            move || upkeep_cli(&restored, &["restore", file.to_str().unwrap()])
        })
        .await
        .unwrap(),
    );
    let store = upkeep::Store::open(&restored).unwrap();
    let prefix = upkeep::model::AccountPrefix::parse("acme").unwrap();
    let names: Vec<String> = store
        .tokens_of(Some(&prefix))
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .filter(|name| name.starts_with('t'))
        .collect();
    let k = names.len();
    let expected: Vec<String> = (0..k).map(|i| format!("t{i:05}")).collect();
    assert_eq!(names, expected, "a gap-free prefix of the writes");
    assert!(
        before <= k && k <= after + 1,
        "snapshot of {k} between {before} and {after} acknowledged writes"
    );
}

fn write_backup(dir: &Path) -> PathBuf {
    let data = dir.join("source");
    crate::support::upkeep_init(&data);
    succeeded(&upkeep_cli(
        &data,
        &[
            "account",
            "create",
            "--name",
            "A",
            "--email",
            "a@example.com",
            "--prefix",
            "acme",
        ],
    ));
    let file = dir.join("a.backup");
    succeeded(&upkeep_cli(&data, &["backup", file.to_str().unwrap()]));
    file
}

#[test]
fn damaged_truncated_and_newer_backups_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_backup(dir.path());
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cases = [
        (
            "truncated",
            lines[..lines.len() - 1].join("\n") + "\n",
            "truncated",
        ),
        (
            "altered",
            text.replacen("\"value\":\"02", "\"value\":\"03", 1),
            "checksum",
        ),
        (
            "newer",
            text.replacen(
                &format!(
                    "\"schema_version\":{}",
                    upkeep::store::schema::SCHEMA_VERSION
                ),
                "\"schema_version\":99",
                1,
            ),
            "newer",
        ),
        (
            "not a backup",
            "hello\n".to_owned(),
            "not a valid upkeep backup",
        ),
    ];
    for (what, content, needle) in cases {
        let bad = dir.path().join(format!("{what}.backup"));
        std::fs::write(&bad, content).unwrap();
        let target = dir
            .path()
            .join(format!("target-{}", what.replace(' ', "-")));
        let output = upkeep_cli(&target, &["restore", bad.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{what}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains(needle), "{what}: {message}");
        assert!(!target.join("db").exists(), "{what}: nothing written");
    }
}

#[test]
fn restore_never_overwrites_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_backup(dir.path());
    let target = dir.path().join("target");
    succeeded(&upkeep_cli(&target, &["restore", file.to_str().unwrap()]));
    let again = upkeep_cli(&target, &["restore", file.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a store"));
    let listed = cli_json(&upkeep_cli(&target, &["--json", "account", "list"]));
    assert_eq!(listed["accounts"].as_array().unwrap().len(), 1);
}
