//! Regressions for the token findings of the security review (issue 15): grace secrets
//! that could manage tokens, child tokens outliving their parent, expired plan licenses
//! that kept counting, the per-account token quota, temporary files that followed
//! symlinks, and names and lifetimes that should have been refused.

use crate::support::{START, TestServer, upkeep_cli};
use http::Method;
use serde_json::{Value, json};
use std::time::Duration;
use upkeep::model::Timestamp;

fn bearer<'a>(
    server: &'a TestServer,
    method: Method,
    path: &str,
    token: &str,
) -> crate::support::Call<'a> {
    server
        .request(method, path)
        .header("authorization", &format!("Bearer {token}"))
}

/// Rotates `token` with `grace` and returns the new secret.
async fn rotate(server: &TestServer, token: &str, grace: &str) -> String {
    bearer(server, Method::POST, "/api/v1/tokens/self/rotate", token)
        .body(json!({ "grace": grace }).to_string())
        .send()
        .await
        .expect(201)["data"]["token"]
        .as_str()
        .expect("new secret")
        .to_owned()
}

// ---- finding 3: a grace secret may read, never manage tokens ------------------------

/// A data directory made by the real binary (`init`), holding the account `acme`.
fn data_dir_with_acme() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(upkeep_cli(&data, &["init"]).status.success());
    let made = upkeep_cli(
        &data,
        &[
            "account",
            "create",
            "--name",
            "Acme",
            "--email",
            "a@acme.io",
            "--prefix",
            "acme",
        ],
    );
    assert!(made.status.success(), "{made:?}");
    (dir, data)
}

#[tokio::test]
async fn issue_15_a_grace_secret_cannot_rotate_create_or_delete_tokens() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    server.token(&acme, "ci", &["read_user"], None);
    let old = acme.token.clone();
    let new = rotate(&server, &old, "1h").await;

    // The old secret still authenticates ordinary requests during its grace.
    server.get("/v1/account", &old).send().await.expect(200);
    server
        .get("/v1/account/tokens", &old)
        .send()
        .await
        .expect(200);
    bearer(&server, Method::GET, "/api/v1/tokens", &old)
        .send()
        .await
        .expect(200);

    // It cannot rotate (the lock-out of the review) ...
    let message = bearer(&server, Method::POST, "/api/v1/tokens/self/rotate", &old)
        .body(json!({}).to_string())
        .send()
        .await
        .expect_error(403, "forbidden");
    assert!(message.contains("grace"), "{message}");
    // ... nor create or delete tokens, in either family.
    let refusals = [
        server.post(
            "/v1/account/tokens",
            &old,
            json!({"name": "evil", "expires": -1}),
        ),
        bearer(&server, Method::POST, "/api/v1/tokens", &old)
            .body(json!({"name": "evil2", "scopes": ["api"]}).to_string()),
        server.delete("/v1/account/tokens/ci", &old),
        bearer(&server, Method::DELETE, "/api/v1/tokens/ci", &old),
        server.delete("/v1/account/tokens/default", &old),
    ];
    for call in refusals {
        let message = call.send().await.expect_error(403, "forbidden");
        assert!(message.contains("grace"), "{message}");
    }

    // Nothing changed: the owner's new secret works and manages tokens; `ci` is there.
    let listed = server
        .get("/v1/account/tokens", &new)
        .send()
        .await
        .expect(200);
    let names: Vec<&str> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci", "default"]);
    let newer = rotate(&server, &new, "0s").await;
    server.get("/v1/account", &newer).send().await.expect(200);
    // The rotation without grace ended the secret it replaced; the old one lasts out its
    // grace and no longer.
    server.get("/v1/account", &new).send().await.expect(401);
    server.get("/v1/account", &old).send().await.expect(200);
    server.clock.advance(Duration::from_secs(3601));
    server.get("/v1/account", &old).send().await.expect(401);
}

// ---- finding 4: a token never creates a token that outlives it ----------------------

fn secs(at: Timestamp) -> u64 {
    at.as_secs()
}

#[tokio::test]
async fn issue_15_a_child_token_is_capped_at_its_parents_expiry() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let parent_expiry = START.saturating_add(Duration::from_secs(3));
    let parent = server.token(&acme, "short", &["api"], Some(parent_expiry));

    // WunderUpdates: "never" and "365 days" both become the parent's expiry.
    for (name, expires) in [("never", json!(-1)), ("year", json!(365))] {
        let created = server
            .post(
                "/v1/account/tokens",
                &parent,
                json!({"name": name, "expires": expires}),
            )
            .send()
            .await
            .expect(200);
        assert_eq!(created["token"]["expires"], secs(parent_expiry), "{name}");
    }
    let omitted = server
        .post("/v1/account/tokens", &parent, json!({"name": "omitted"}))
        .send()
        .await
        .expect(200);
    assert_eq!(omitted["token"]["expires"], secs(parent_expiry));
    let child = omitted["token"]["token"].as_str().unwrap().to_owned();

    // UpdaterCloud: no expiry, expires_in and expires_at are all capped.
    let bodies = [
        json!({"name": "uc-never", "scopes": ["api"]}),
        json!({"name": "uc-in", "scopes": ["api"], "expires_in": "90d"}),
        json!({"name": "uc-at", "scopes": ["api"], "expires_at": "2030-01-01T00:00:00Z"}),
    ];
    let mut uc_child = String::new();
    for body in bodies {
        let created = bearer(&server, Method::POST, "/api/v1/tokens", &parent)
            .body(body.to_string())
            .send()
            .await
            .expect(201);
        assert_eq!(
            created["data"]["expires_at"],
            parent_expiry.to_rfc3339(),
            "{body}"
        );
        uc_child = created["data"]["token"].as_str().unwrap().to_owned();
    }
    // The listing shows the capped expiry too.
    let listed = server
        .get("/v1/account/tokens", &acme.token)
        .send()
        .await
        .expect(200);
    for token in listed["tokens"].as_array().unwrap() {
        if token["name"] != "default" {
            assert_eq!(token["expires"], secs(parent_expiry), "{token}");
        }
    }

    // A shorter requested expiry stays as asked.
    let later_parent = server.token(
        &acme,
        "long",
        &["api"],
        Some(START.saturating_add(Duration::from_secs(86_400 * 30))),
    );
    let short = server
        .post(
            "/v1/account/tokens",
            &later_parent,
            json!({"name": "one-day", "expires": 1}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(short["token"]["expires"], START.as_secs() + 86_400);

    // Once the parent has expired, so have its children.
    server.get("/v1/account", &child).send().await.expect(200);
    server.clock.advance(Duration::from_secs(4));
    server.get("/v1/account", &parent).send().await.expect(401);
    server.get("/v1/account", &child).send().await.expect(401);
    server
        .get("/v1/account", &uc_child)
        .send()
        .await
        .expect(401);
}

#[tokio::test]
async fn issue_15_a_rotated_secret_keeps_the_tokens_expiry() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let expiry = START.saturating_add(Duration::from_secs(3600));
    let token = server.token(&acme, "expiring", &["api"], Some(expiry));
    let rotated = bearer(&server, Method::POST, "/api/v1/tokens/self/rotate", &token)
        .body("{}")
        .send()
        .await
        .expect(201);
    assert_eq!(rotated["data"]["expires_at"], expiry.to_rfc3339());
    let new = rotated["data"]["token"].as_str().unwrap();
    server.clock.advance(Duration::from_secs(3601));
    server.get("/v1/account", new).send().await.expect(401);
}

#[tokio::test]
async fn issue_15_an_operator_token_cannot_mint_a_longer_lived_operator_token() {
    let server = TestServer::start().await;
    let expiry = START.saturating_add(Duration::from_secs(3600));
    let admin = server.operator_token("temp-admin", true, true, Some(expiry));
    let ms = expiry.as_millis();
    for body in [
        json!({"name": "forever"}),
        json!({"name": "later", "expiration_date": ms + 86_400_000}),
    ] {
        let created = server
            .post("/_/token", &admin, body.clone())
            .send()
            .await
            .expect(201);
        assert_eq!(created["data"][0]["expiration_date"], ms, "{body}");
    }
    // Changing an existing token's expiry is capped the same way.
    let updated = server
        .put(
            "/_/token",
            &admin,
            json!({"name": "forever", "expiration_date": null}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(updated["data"][0]["expiration_date"], ms);
    // An earlier date stays as asked.
    let sooner = ms - 60_000;
    let created = server
        .post(
            "/_/token",
            &admin,
            json!({"name": "sooner", "expiration_date": sooner}),
        )
        .send()
        .await
        .expect(201);
    assert_eq!(created["data"][0]["expiration_date"], sooner);
    // A never-expiring operator token still creates never-expiring ones.
    let root = server.operator_token("root", true, true, None);
    let created = server
        .post("/_/token", &root, json!({"name": "ops"}))
        .send()
        .await
        .expect(201);
    assert_eq!(created["data"][0]["expiration_date"], Value::Null);
    // An account it creates gets a first token that expires with it.
    let account = server
        .post(
            "/_/account",
            &admin,
            json!({"name": "Temp", "email": "t@example.com", "prefix": "temp"}),
        )
        .send()
        .await
        .expect(201);
    let first = account["data"][0]["token"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    server.get("/v1/account", &first).send().await.expect(200);
    server.clock.advance(Duration::from_secs(3601));
    server.get("/v1/account", &first).send().await.expect(401);
}

// ---- finding 5: an expired plan license no longer counts ----------------------------

/// `activationLimit` as `GET /v1/account` and `GET /_/account` show it.
async fn limits(server: &TestServer, account_token: &str, operator: &str) -> (Value, Value) {
    let account = server
        .get("/v1/account", account_token)
        .send()
        .await
        .expect(200);
    let admin = bearer(server, Method::GET, "/_/account", operator)
        .send()
        .await
        .expect(200);
    (
        account["account"]["activationLimit"].clone(),
        admin["data"][0]["activation_limit"].clone(),
    )
}

#[tokio::test]
async fn issue_15_an_expired_plan_license_stops_raising_the_limit() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let operator = server.operator_token("admin", true, false, None);
    let (_, key) = server.license(10, Some(START.saturating_add(Duration::from_secs(5))));
    server
        .post("/v1/account/license", &acme.token, json!({"license": key}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        limits(&server, &acme.token, &operator).await,
        (json!(10), json!(10))
    );
    server.clock.advance(Duration::from_secs(6));
    // The default limit (0, unlimited) again, on every route.
    assert_eq!(
        limits(&server, &acme.token, &operator).await,
        (json!(0), json!(0))
    );

    // And after a restart from the index snapshot.
    let clock = server.clock.clone();
    let (dir, path) = server.stop().await;
    {
        // Saved with nothing written after it, so the next start loads it.
        let store = upkeep::Store::open(&path).unwrap();
        assert!(store.save_index_snapshot().unwrap());
    }
    assert_eq!(
        upkeep::store::inspect(&path).unwrap().snapshot,
        upkeep::store::SnapshotState::Current
    );
    let server = TestServer::start_in(
        &path,
        clock,
        upkeep::Settings {
            auth_failures_per_minute: 0,
            ..upkeep::Settings::default()
        },
    )
    .await;
    assert!(!server.store().index().is_empty());
    assert_eq!(
        limits(&server, &acme.token, &operator).await,
        (json!(0), json!(0))
    );
    drop(server);
    drop(dir);
}

// ---- minor findings: lifetimes and names --------------------------------------------

#[tokio::test]
async fn issue_15_token_lifetimes_below_a_minute_are_refused() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let admin = server.operator_token("admin", true, true, None);
    for lifetime in ["1ns", "1ms", "59s"] {
        let message = bearer(&server, Method::POST, "/api/v1/tokens", &acme.token)
            .body(json!({"name": "short", "scopes": ["api"], "expires_in": lifetime}).to_string())
            .send()
            .await
            .expect_error(400, "invalid_request");
        assert!(message.starts_with("expires_in:"), "{message}");
    }
    let soon = START.saturating_add(Duration::from_secs(30)).to_rfc3339();
    let message = bearer(&server, Method::POST, "/api/v1/tokens", &acme.token)
        .body(json!({"name": "short", "scopes": ["api"], "expires_at": soon}).to_string())
        .send()
        .await
        .expect_error(400, "invalid_request");
    assert!(message.starts_with("expires_at:"), "{message}");
    let message = server
        .post(
            "/_/token",
            &admin,
            json!({"name": "short", "expiration_date": START.as_millis() + 1000}),
        )
        .send()
        .await
        .expect_error(400, "invalid_request");
    assert!(message.starts_with("expiration_date:"), "{message}");
    // A minute is enough.
    bearer(&server, Method::POST, "/api/v1/tokens", &acme.token)
        .body(json!({"name": "minute", "scopes": ["api"], "expires_in": "1m"}).to_string())
        .send()
        .await
        .expect(201);
}

#[tokio::test]
async fn issue_15_dot_names_are_refused_for_account_tokens() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    for name in [".", ".."] {
        let message = server
            .post("/v1/account/tokens", &acme.token, json!({"name": name}))
            .send()
            .await
            .expect_error(400, "invalid_request");
        assert!(message.starts_with("name:"), "{message}");
        let message = bearer(&server, Method::POST, "/api/v1/tokens", &acme.token)
            .body(json!({"name": name, "scopes": ["api"]}).to_string())
            .send()
            .await
            .expect_error(400, "invalid_request");
        assert!(message.starts_with("name:"), "{message}");
    }
    // Dots inside a name are still fine.
    server
        .post(
            "/v1/account/tokens",
            &acme.token,
            json!({"name": "ci.deploy"}),
        )
        .send()
        .await
        .expect(200);
}

#[tokio::test]
async fn issue_15_operator_token_names_that_look_like_others_are_refused() {
    let server = TestServer::start().await;
    let admin = server.operator_token("admin", true, true, None);
    let look_alikes = [
        "\u{430}dmin",   // Cyrillic a
        "ad\u{200b}min", // zero-width space
        "\u{202e}nimda", // right-to-left override
        "admin\u{2066}", // bidi isolate
        "ad\u{ad}min",   // soft hyphen
        "tab\there",     // control
        " admin",        // leading space
        "admin ",        // trailing space
        "caf\u{e9}",     // non-ASCII
    ];
    for name in look_alikes {
        let message = server
            .post("/_/token", &admin, json!({"name": name}))
            .send()
            .await
            .expect_error(400, "invalid_request");
        assert!(message.starts_with("name:"), "{name:?}: {message}");
    }
    server
        .post("/_/token", &admin, json!({"name": "CI deploy (prod) #2"}))
        .send()
        .await
        .expect(201);
}

#[tokio::test]
async fn issue_15_the_cli_applies_the_same_name_and_lifetime_rules() {
    let (_dir, data) = data_dir_with_acme();
    let refused = |args: &[&str], field: &str| {
        let out = upkeep_cli(&data, args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{args:?} succeeded: {out:?}");
        assert!(stderr.contains(field), "{args:?}: {stderr}");
    };
    refused(
        &["token", "create", "--account", "acme", "--name", ".."],
        "name",
    );
    refused(
        &[
            "token",
            "create",
            "--account",
            "acme",
            "--name",
            "ok",
            "--expires",
            "1s",
        ],
        "expires",
    );
    refused(
        &["operator-token", "create", "--name", "\u{430}dmin"],
        "name",
    );
    refused(
        &["operator-token", "create", "--name", "ad\u{200b}min"],
        "name",
    );
    refused(
        &[
            "operator-token",
            "create",
            "--name",
            "ops",
            "--expires",
            "10s",
        ],
        "expires",
    );
    let ok = upkeep_cli(
        &data,
        &[
            "token",
            "create",
            "--account",
            "acme",
            "--name",
            "ci.deploy",
        ],
    );
    assert!(ok.status.success(), "{ok:?}");
}

// ---- finding 10: temporary files never follow a symlink -----------------------------

#[test]
fn issue_15_backup_does_not_follow_a_symlink_at_its_temporary_file() {
    let (dir, data) = data_dir_with_acme();
    // Another local user plants `FILE.partial` pointing at a file root may write.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let file = dir.path().join("nightly.backup");
    std::os::unix::fs::symlink(&victim, dir.path().join("nightly.partial")).unwrap();

    let out = upkeep_cli(&data, &["backup", file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(stderr.contains("nightly.partial"), "{stderr}");
    assert!(!file.exists());
    // The planted link is left alone, and once it is gone the backup works.
    assert!(
        std::fs::symlink_metadata(dir.path().join("nightly.partial"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    std::fs::remove_file(dir.path().join("nightly.partial")).unwrap();
    let out = upkeep_cli(&data, &["backup", file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains("upkeep-backup")
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn issue_15_the_snapshot_and_server_key_temporary_files_do_not_follow_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, data.join("server.key.tmp")).unwrap();
    std::os::unix::fs::symlink(&victim, data.join("index.snapshot.tmp")).unwrap();

    let store = upkeep::Store::open(&data).expect("opens");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let key = std::fs::symlink_metadata(data.join("server.key")).unwrap();
    assert!(key.file_type().is_file());
    assert_eq!(key.len(), 32);
    let account = upkeep::model::NewAccount::parse("Acme", "a@acme.io", Some("acme")).unwrap();
    store
        .create_account(account, START)
        .unwrap()
        .durable_blocking()
        .unwrap();
    assert!(store.save_index_snapshot().unwrap());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let snapshot = std::fs::symlink_metadata(data.join("index.snapshot")).unwrap();
    assert!(snapshot.file_type().is_file());
    drop(store);
    // The snapshot written is the one the next start uses.
    assert_eq!(
        upkeep::store::inspect(&data).unwrap().snapshot,
        upkeep::store::SnapshotState::Current
    );
}

// ---- finding 6: a per-account token quota -------------------------------------------

#[tokio::test]
async fn issue_15_an_account_holds_at_most_max_tokens_per_account() {
    let server = TestServer::start_with(upkeep::Settings {
        auth_failures_per_minute: 0,
        max_tokens_per_account: 3,
        ..upkeep::Settings::default()
    })
    .await;
    let acme = server.account("acme");
    let globex = server.account("globex");
    // `default` plus two more: the quota of three is reached.
    server
        .post("/v1/account/tokens", &acme.token, json!({"name": "one"}))
        .send()
        .await
        .expect(200);
    bearer(&server, Method::POST, "/api/v1/tokens", &acme.token)
        .body(json!({"name": "two", "scopes": ["api"]}).to_string())
        .send()
        .await
        .expect(201);
    let message = server
        .post("/v1/account/tokens", &acme.token, json!({"name": "three"}))
        .send()
        .await
        .expect_error(409, "token_quota");
    assert!(message.contains('3'), "{message}");
    bearer(&server, Method::POST, "/api/v1/tokens", &acme.token)
        .body(json!({"name": "three", "scopes": ["api"]}).to_string())
        .send()
        .await
        .expect_error(409, "token_quota");
    // Another account is not affected; deleting one makes room again.
    server
        .post("/v1/account/tokens", &globex.token, json!({"name": "one"}))
        .send()
        .await
        .expect(200);
    server
        .delete("/v1/account/tokens/one", &acme.token)
        .send()
        .await
        .expect(200);
    server
        .post("/v1/account/tokens", &acme.token, json!({"name": "three"}))
        .send()
        .await
        .expect(200);
}

#[test]
fn issue_15_the_cli_token_create_obeys_the_quota() {
    let (_dir, data) = data_dir_with_acme();
    let create = |name: &str, quota: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .arg("--data")
            .arg(&data)
            .args(["token", "create", "--account", "acme", "--name", name])
            .env("UPKEEP_MAX_TOKENS_PER_ACCOUNT", quota)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    assert!(create("ci", "2").status.success());
    let refused = create("more", "2");
    assert!(!refused.status.success(), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("most allowed"), "{stderr}");
    // The flag works as well as the variable, and a larger quota lets it through.
    let flagged = upkeep_cli(
        &data,
        &[
            "--max-tokens-per-account",
            "2",
            "token",
            "create",
            "--account",
            "acme",
            "--name",
            "x",
        ],
    );
    assert!(!flagged.status.success(), "{flagged:?}");
    assert!(create("more", "3").status.success());
}
