//! Restart persistence: everything written before a graceful stop is there after a
//! restart on the same data directory, and tokens still authenticate.

use crate::support::{START, TestServer};
use serde_json::json;
use upkeep::Settings;
use upkeep::clock::Clock;

#[tokio::test]
async fn accounts_tokens_and_license_bindings_survive_a_restart() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let globex = server.account("globex");
    let created = server
        .post(
            "/v1/account/tokens",
            &acme.token,
            json!({"name": "ci", "expires": 30, "scopes": ["read_user"]}),
        )
        .send()
        .await
        .expect(200);
    let ci = created["token"]["token"].as_str().unwrap().to_owned();
    let (_, key) = server.license(25, None);
    server
        .post("/v1/account/license", &acme.token, json!({"license": key}))
        .send()
        .await
        .expect(200);
    server
        .delete("/v1/account/tokens/default", &globex.token)
        .send()
        .await
        .expect(200);
    // A use, kept in memory until the shutdown persists it.
    server.get("/v1/account", &ci).send().await.expect(200);
    let before = server
        .get("/v1/account/tokens", &acme.token)
        .send()
        .await
        .expect(200);

    let (dir, path) = server.stop().await;
    let server = TestServer::start_in(&path, Clock::manual(START), Settings::default()).await;

    let account = server.get("/v1/account", &ci).send().await.expect(200);
    assert_eq!(account["account"]["activationLimit"], 25);
    let license = server
        .get("/v1/account/license", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(license["license"]["limit"], 25);
    let after = server
        .get("/v1/account/tokens", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(after, before);
    let ci_view = after["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap()
        .clone();
    assert_eq!(
        ci_view["lastUsed"],
        START.as_secs(),
        "last use persisted at shutdown"
    );
    assert_eq!(ci_view["scopes"], json!(["read_user"]));
    // The deleted token stays deleted; globex has no token left to ask with.
    server
        .get("/v1/account", &globex.token)
        .send()
        .await
        .expect_error(401, "unauthenticated");
    assert!(
        server
            .store()
            .account(&upkeep::model::AccountPrefix::parse("globex").unwrap())
            .unwrap()
            .is_some()
    );
    drop(server);
    drop(dir);
}

/// Copies a directory tree.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Copies a committed fixture data directory into a fresh temporary one.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&source, dir.path());
    dir
}

/// A copy of a data directory whose store was just closed. Opening the original again at
/// once with a second sled handle races sled's I/O threads for its lock (the store waits
/// for that only when it closed the directory itself); a copy has no lock.
fn copy_closed(dir: &std::path::Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    copy_tree(dir, copy.path());
    copy
}

#[test]
fn a_schema_v1_store_is_migrated_on_open() {
    use upkeep::model::AccountPrefix;
    let dir = copy_fixture("store-v1");
    let raw = sled::open(dir.path().join("db")).unwrap();
    let version = |db: &sled::Db| {
        let bytes = db
            .open_tree("meta")
            .unwrap()
            .get("schema_version")
            .unwrap()
            .unwrap();
        u32::from_be_bytes(bytes.as_ref().try_into().unwrap())
    };
    assert_eq!(version(&raw), 1, "the fixture is a version-1 store");
    let first_byte = |db: &sled::Db| {
        db.open_tree("prefix_account")
            .unwrap()
            .get("acme")
            .unwrap()
            .unwrap()[0]
    };
    assert_eq!(first_byte(&raw), 1, "its accounts are version-1 records");
    drop(raw);

    let dir = copy_closed(dir.path());
    let store = upkeep::Store::open(dir.path()).expect("the old store opens");
    let acme = store
        .account(&AccountPrefix::parse("acme").unwrap())
        .unwrap()
        .expect("acme kept");
    assert_eq!(acme.name, "Acme Plugins");
    assert_eq!(
        acme.updated_at, acme.created_at,
        "v1 accounts gain updated_at = created_at"
    );
    assert_eq!(store.accounts().unwrap().len(), 2);
    let tokens = store.tokens_of(Some(&acme.prefix)).unwrap();
    let names: Vec<&str> = tokens.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["ci", "default"]);
    assert_eq!(store.licenses().unwrap().len(), 1);
    // Tokens still authenticate: the operator token's value derives from the fixture's key.
    let admin = store
        .operator_token_value("admin")
        .expect("value derivable");
    let (_, hash) = upkeep::token::parse(&admin).unwrap();
    assert!(store.index().get(&hash).is_some());
    drop(store);

    let dir = copy_closed(dir.path());
    let raw = sled::open(dir.path().join("db")).unwrap();
    assert_eq!(version(&raw), upkeep::store::schema::SCHEMA_VERSION);
    assert_eq!(
        first_byte(&raw),
        2,
        "accounts rewritten as version-2 records"
    );
}

#[test]
fn a_store_newer_than_the_binary_is_refused_clearly() {
    let dir = copy_fixture("store-v1");
    let raw = sled::open(dir.path().join("db")).unwrap();
    raw.open_tree("meta")
        .unwrap()
        .insert("schema_version", &99u32.to_be_bytes())
        .unwrap();
    raw.flush().unwrap();
    drop(raw);
    let dir = copy_closed(dir.path());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["account", "list", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("schema version 99") && message.contains("newer upkeep"),
        "{message}"
    );
    assert!(upkeep::Store::open(dir.path()).is_err());
}
