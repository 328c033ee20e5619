//! The token-index snapshot (`<data>/index.snapshot`): saved at every clean stop and
//! after CLI commands, loaded by the next start instead of scanning sled, and never
//! trusted when it is older than the store (a crash after writes, a copied-back file) or
//! damaged. Drives the real binary; each start's log says which way the index was built.

use crate::support::{ServeProcess, cli_json, upkeep_cli};
use std::path::Path;

const SNAPSHOT: &str = "index.snapshot";
const LOADED: &str = "token, key and activation indexes loaded from index.snapshot";
const BUILT: &str = "token, key and activation indexes built from the store";
const SAVED: &str = "token, key and activation indexes saved to index.snapshot";

/// An account `acme` with its `default` token and a second token `deploy`, made by the
/// CLI on a store no server holds; returns both token values.
fn fill(data: &Path) -> (String, String) {
    if !data.exists() {
        crate::support::upkeep_init(data);
    }
    let created = cli_json(&upkeep_cli(
        data,
        &[
            "--json",
            "account",
            "create",
            "--name",
            "Acme",
            "--email",
            "ops@acme.io",
            "--prefix",
            "acme",
        ],
    ));
    let deploy = cli_json(&upkeep_cli(
        data,
        &[
            "--json",
            "token",
            "create",
            "--account",
            "acme",
            "--name",
            "deploy",
        ],
    ));
    (
        created["token"]["token"].as_str().unwrap().to_owned(),
        deploy["token"].as_str().unwrap().to_owned(),
    )
}

fn start(data: &Path) -> (ServeProcess, String) {
    let server = ServeProcess::start(data, "info", &[]);
    let log = std::fs::read_to_string(&server.log_path).unwrap();
    (server, log)
}

/// What `upkeep doctor` says about the snapshot (its one line that names it).
fn doctor_says(data: &Path) -> String {
    let output = upkeep_cli(data, &["doctor"]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.lines()
        .find(|line| line.contains("index.snapshot"))
        .unwrap_or_else(|| panic!("doctor did not mention the snapshot:\n{text}"))
        .to_owned()
}

fn status(server: &ServeProcess, token: &str) -> u16 {
    server.http("GET", "/v1/account", Some(token), "").0
}

#[test]
fn a_clean_stop_saves_the_index_and_the_next_start_loads_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (default, deploy) = fill(&data);
    assert!(data.join(SNAPSHOT).exists(), "the CLI saves it too");

    let (server, log) = start(&data);
    assert!(log.contains(LOADED), "{log}");
    assert_eq!(status(&server, &default), 200);
    let (code, body) = server.http(
        "POST",
        "/v1/account/tokens",
        Some(&default),
        r#"{"name":"ci","expires":-1}"#,
    );
    assert_eq!(code, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ci = body["token"]["token"].as_str().unwrap().to_owned();
    let (code, _) = server.http("DELETE", "/v1/account/tokens/deploy", Some(&default), "");
    assert_eq!(code, 200);
    let log = server.stop();
    assert!(log.contains(SAVED), "{log}");
    assert!(doctor_says(&data).contains("matches the store"));

    let (server, log) = start(&data);
    assert!(log.contains(LOADED), "{log}");
    assert_eq!(status(&server, &default), 200);
    assert_eq!(
        status(&server, &ci),
        200,
        "a token made after the last load"
    );
    assert_eq!(
        status(&server, &deploy),
        401,
        "a token revoked after the last load"
    );
    server.stop();
}

#[test]
fn a_snapshot_older_than_the_store_is_never_used() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (default, deploy) = fill(&data);
    // The snapshot in which `deploy` is valid, kept aside.
    let old = dir.path().join("old.snapshot");
    std::fs::copy(data.join(SNAPSHOT), &old).unwrap();

    // Revoked offline; then the old snapshot is put back (a restored file backup, say).
    cli_json(&upkeep_cli(
        &data,
        &[
            "--json",
            "token",
            "revoke",
            "--account",
            "acme",
            "--name",
            "deploy",
        ],
    ));
    std::fs::copy(&old, data.join(SNAPSHOT)).unwrap();
    let said = doctor_says(&data);
    assert!(
        said.contains("older than the store's last change"),
        "{said}"
    );
    let (server, log) = start(&data);
    assert!(log.contains("older than the store's last change"), "{log}");
    assert!(log.contains(BUILT) && !log.contains(LOADED), "{log}");
    assert_eq!(status(&server, &deploy), 401);
    assert_eq!(status(&server, &default), 200);

    // A crash after a write: the snapshot saved at the last clean stop is older still.
    let (code, _) = server.http("DELETE", "/v1/account/tokens/default", Some(&default), "");
    assert_eq!(code, 200);
    server.kill9();
    let (server, log) = start(&data);
    assert!(log.contains(BUILT) && !log.contains(LOADED), "{log}");
    assert_eq!(status(&server, &default), 401);
    server.stop();
}

#[test]
fn a_damaged_snapshot_is_ignored() {
    type Damage = fn(&mut Vec<u8>);
    let cases: [(&str, Damage); 3] = [
        ("one flipped bit", |bytes| {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x40;
        }),
        ("truncated", |bytes| {
            bytes.pop();
        }),
        ("empty", Vec::clear),
    ];
    for (what, damage) in cases {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (default, deploy) = fill(&data);
        let mut bytes = std::fs::read(data.join(SNAPSHOT)).unwrap();
        damage(&mut bytes);
        std::fs::write(data.join(SNAPSHOT), &bytes).unwrap();
        let said = doctor_says(&data);
        assert!(said.contains("is damaged"), "{what}: {said}");
        let (server, log) = start(&data);
        assert!(log.contains("is damaged"), "{what}: {log}");
        assert!(
            log.contains(BUILT) && !log.contains(LOADED),
            "{what}: {log}"
        );
        assert_eq!(status(&server, &default), 200, "{what}");
        assert_eq!(status(&server, &deploy), 200, "{what}");
        // The index came from the store: the stop saves a good snapshot again.
        let log = server.stop();
        assert!(log.contains(SAVED), "{what}: {log}");
        let (server, log) = start(&data);
        assert!(log.contains(LOADED), "{what}: {log}");
        assert_eq!(status(&server, &deploy), 200, "{what}");
        server.stop();
    }
}

/// The first start after an upgrade finds the last version's snapshot: intact, in a
/// format this version does not read. It is not used, and nobody is told it is damaged.
#[test]
fn a_snapshot_of_another_format_is_not_used_and_not_called_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (default, deploy) = fill(&data);
    let mut bytes = std::fs::read(data.join(SNAPSHOT)).unwrap();
    // Byte 15 is the format; the file's last 32 bytes are the blake3 of the rest.
    let format = bytes[15];
    bytes[15] = format - 1;
    let body = bytes.len() - 32;
    let sum = blake3::hash(&bytes[..body]);
    bytes[body..].copy_from_slice(sum.as_bytes());
    std::fs::write(data.join(SNAPSHOT), &bytes).unwrap();

    let said = doctor_says(&data);
    let named = format!("of format {}, not {format}", format - 1);
    assert!(said.starts_with("ok ") && said.contains(&named), "{said}");
    assert!(!said.contains("damaged"), "{said}");
    let (server, log) = start(&data);
    assert!(log.contains(&named) && !log.contains("damaged"), "{log}");
    assert!(log.contains(BUILT) && !log.contains(LOADED), "{log}");
    assert_eq!(status(&server, &default), 200);
    assert_eq!(status(&server, &deploy), 200);
    let log = server.stop();
    assert!(log.contains(SAVED), "{log}");
    assert!(doctor_says(&data).contains("matches the store"));
}
