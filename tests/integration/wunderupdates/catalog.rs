//! SPEC §7.2, `/v1/plugins…` and `/v1/themes…`: products, versions uploaded as real zips
//! (raw and multipart), static keys (the seed's messages, sealed at rest), scopes, and
//! another account's slugs.

use crate::support::{START, TestAccount, TestServer, plugin_zip, theme_zip};
use http::Method;
use serde_json::{Value, json};
use std::path::Path;

/// `POST path` with a raw zip.
async fn upload_raw(
    server: &TestServer,
    token: &str,
    path: &str,
    zip: Vec<u8>,
) -> crate::support::Reply {
    server
        .request(Method::POST, path)
        .header("x-api-key", token)
        .header("content-type", "application/zip")
        .body(zip)
        .send()
        .await
}

/// `POST path` with `multipart/form-data`: a `file` part, then `fields`.
async fn upload_multipart(
    server: &TestServer,
    token: &str,
    path: &str,
    zip: &[u8],
    fields: &[(&str, &str)],
) -> crate::support::Reply {
    let boundary = "----upkeep-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"package.zip\"\r\n\
             Content-Type: application/zip\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(zip);
    body.extend_from_slice(b"\r\n");
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    server
        .request(Method::POST, path)
        .header("x-api-key", token)
        .header(
            "content-type",
            &format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
}

fn put<'a>(
    server: &'a TestServer,
    path: &str,
    token: &str,
    body: Value,
) -> crate::support::Call<'a> {
    server
        .request(Method::PUT, path)
        .header("x-api-key", token)
        .body(body.to_string())
}

async fn create(server: &TestServer, acme: &TestAccount, tree: &str, slug: &str, license: &str) {
    server
        .post(
            &format!("/v1/{tree}"),
            &acme.token,
            json!({"slug": slug, "license": {"type": license}}),
        )
        .send()
        .await
        .expect(200);
}

#[tokio::test]
async fn plugins_and_themes_are_created_listed_read_changed_and_deleted() {
    let server = TestServer::start().await;
    let acme = server.account("acme");

    let body = server
        .post(
            "/v1/plugins",
            &acme.token,
            json!({"slug": "my-new-plugin", "license": {"type": "static-keys"}}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(
        body,
        json!({"status": 200, "data": [
            {"versions": [], "slug": "my-new-plugin", "license": {"type": "static-keys"}}
        ]})
    );
    // No license given: `no-license`.
    let body = server
        .post("/v1/themes", &acme.token, json!({"slug": "my-new-theme"}))
        .send()
        .await
        .expect(200);
    assert_eq!(body["data"][0]["license"], json!({"type": "no-license"}));

    let plugins = server
        .get("/v1/plugins", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        plugins,
        json!({"status": 200, "plugins": [
            {"license": {"type": "static-keys"}, "versions": [], "slug": "my-new-plugin"}
        ], "next_cursor": null})
    );
    let themes = server
        .get("/v1/themes", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        themes["themes"],
        json!([{"license": {"type": "no-license"}, "versions": [], "slug": "my-new-theme"}])
    );

    let one = server
        .get("/v1/plugins/my-new-plugin", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        one,
        json!({"status": 200, "plugin":
            {"license": {"type": "static-keys"}, "versions": [], "slug": "my-new-plugin"}})
    );
    let one = server
        .get("/v1/themes/my-new-theme", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(one["theme"]["slug"], "my-new-theme");
    // The kind is the path's: a plugin is not a theme.
    server
        .get("/v1/themes/my-new-plugin", &acme.token)
        .send()
        .await
        .expect_error(404, "not_found");
    server
        .get("/v1/plugins/my-new-theme", &acme.token)
        .send()
        .await
        .expect_error(404, "not_found");

    // PUT changes the license type only.
    let changed = put(
        &server,
        "/v1/plugins/my-new-plugin",
        &acme.token,
        json!({"license": {"type": "upkeep-keys"}}),
    )
    .send()
    .await
    .expect(200);
    assert_eq!(changed["plugin"]["license"], json!({"type": "upkeep-keys"}));
    let message = put(
        &server,
        "/v1/plugins/my-new-plugin",
        &acme.token,
        json!({"license": {"type": "lemonsqueezy"}}),
    )
    .send()
    .await
    .expect_error(400, "unsupported_license_type");
    assert!(message.contains("license.type"), "{message}");
    let again = server
        .get("/v1/plugins/my-new-plugin", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(again["plugin"]["license"], json!({"type": "upkeep-keys"}));

    // A taken slug is a conflict, whatever the kind.
    server
        .post("/v1/themes", &acme.token, json!({"slug": "my-new-plugin"}))
        .send()
        .await
        .expect_error(409, "product_exists");

    let deleted = server
        .delete("/v1/plugins/my-new-plugin", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(deleted, json!({"status": 200, "message": null}));
    server
        .get("/v1/plugins/my-new-plugin", &acme.token)
        .send()
        .await
        .expect_error(404, "not_found");
    server
        .delete("/v1/plugins/my-new-plugin", &acme.token)
        .send()
        .await
        .expect_error(404, "not_found");
    // Deleting a theme through the plugins tree is a 404 too, and leaves it.
    server
        .delete("/v1/plugins/my-new-theme", &acme.token)
        .send()
        .await
        .expect_error(404, "not_found");
    let plugins = server
        .get("/v1/plugins", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(plugins["plugins"], json!([]));
    server
        .delete("/v1/themes/my-new-theme", &acme.token)
        .send()
        .await
        .expect(200);
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let cases = [
        (json!({"slug": "My Plugin"}), "slug"),
        (json!({"slug": "../etc"}), "slug"),
        (
            json!({"slug": "ok-slug", "license": {"type": "free"}}),
            "license.type",
        ),
        (
            json!({"slug": "ok-slug", "license": "static-keys"}),
            "license",
        ),
        (json!({"slug": "ok-slug", "colour": "blue"}), "colour"),
        (json!({"license": {"type": "no-license"}}), "slug"),
    ];
    for (body, field) in cases {
        let message = server
            .post("/v1/plugins", &acme.token, body.clone())
            .send()
            .await
            .expect_error(400, "invalid_request");
        assert!(message.contains(field), "{body}: {message}");
    }
    let message = server
        .post(
            "/v1/plugins",
            &acme.token,
            json!({"slug": "ok-slug", "license": {"type": "lemonsqueezy"}}),
        )
        .send()
        .await
        .expect_error(400, "unsupported_license_type");
    assert!(message.contains("download keys"), "{message}");
    let plugins = server
        .get("/v1/plugins", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(plugins["plugins"], json!([]));
    let account = server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(account["products"], json!({"themes": [], "plugins": []}));
}

#[tokio::test]
async fn versions_are_uploaded_raw_or_multipart_and_listed() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    create(&server, &acme, "plugins", "my-new-plugin", "no-license").await;
    let path = "/v1/plugins/my-new-plugin/versions";

    let zip = plugin_zip("my-new-plugin", "1.0.0", "first");
    let body = upload_raw(&server, &acme.token, path, zip.clone())
        .await
        .expect(200);
    assert_eq!(
        body,
        json!({"status": 200, "version": {
            "version": "1.0.0", "maturity": "stable", "published": true,
            "released": START.as_secs()
        }})
    );
    // The same zip again: idempotent, the same answer, nothing new.
    let again = upload_raw(&server, &acme.token, path, zip)
        .await
        .expect(200);
    assert_eq!(again, body);
    // Other content for 1.0.0: a conflict, nothing changed.
    let message = upload_raw(
        &server,
        &acme.token,
        path,
        plugin_zip("my-new-plugin", "1.0.0", "changed"),
    )
    .await
    .expect_error(409, "version_exists");
    assert!(message.contains("1.0.0"), "{message}");

    // Multipart, with a maturity from the pre-release tag.
    let body = upload_multipart(
        &server,
        &acme.token,
        path,
        &plugin_zip("my-new-plugin", "1.1.0-beta.1", ""),
        &[("release_notes", "Beta.")],
    )
    .await
    .expect(200);
    assert_eq!(body["version"]["version"], "1.1.0-beta.1");
    assert_eq!(body["version"]["maturity"], "beta");
    assert_eq!(body["version"]["published"], true);
    // A draft (multipart field or query): unpublished, not released.
    let body = upload_multipart(
        &server,
        &acme.token,
        path,
        &plugin_zip("my-new-plugin", "1.2.0", ""),
        &[("draft", "true")],
    )
    .await
    .expect(200);
    assert_eq!(
        body["version"],
        json!({"version": "1.2.0", "maturity": "stable", "published": false, "released": null})
    );
    let body = upload_raw(
        &server,
        &acme.token,
        &format!("{path}?draft=true"),
        plugin_zip("my-new-plugin", "0.9.0", ""),
    )
    .await
    .expect(200);
    assert_eq!(body["version"]["published"], false);

    let versions = server.get(path, &acme.token).send().await.expect(200);
    assert_eq!(
        versions,
        json!({"status": 200, "versions": [
            {"version": "1.2.0", "maturity": "stable", "published": false},
            {"version": "1.1.0-beta.1", "maturity": "beta", "published": true},
            {"version": "1.0.0", "maturity": "stable", "published": true},
            {"version": "0.9.0", "maturity": "stable", "published": false}
        ]})
    );
    let plugin = server
        .get("/v1/plugins/my-new-plugin", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(plugin["plugin"]["versions"], versions["versions"]);

    // Packages that are not this product's.
    for (zip, why) in [
        (plugin_zip("another-plugin", "2.0.0", ""), "slug"),
        (theme_zip("my-new-plugin", "2.0.0", ""), "theme"),
        (b"not a zip at all".to_vec(), "zip"),
    ] {
        let message = upload_raw(&server, &acme.token, path, zip)
            .await
            .expect_error(400, "invalid_package");
        assert!(message.contains(why), "{why}: {message}");
    }
    upload_raw(&server, &acme.token, path, Vec::new())
        .await
        .expect_error(400, "invalid_request");
    // A refused field: the stored upload is gone by the time the 400 arrives.
    let refused = plugin_zip("my-new-plugin", "3.0.0", "refused");
    let message = upload_raw(
        &server,
        &acme.token,
        &format!("{path}?draft=maybe"),
        refused.clone(),
    )
    .await
    .expect_error(400, "invalid_request");
    assert!(message.contains("draft"), "{message}");
    let blob = server
        .store()
        .blobs()
        .path(&upkeep::model::BlobHash::of(&refused));
    assert!(!blob.exists(), "left behind: {}", blob.display());
    upload_raw(
        &server,
        &acme.token,
        "/v1/plugins/no-such-plugin/versions",
        plugin_zip("no-such-plugin", "1.0.0", ""),
    )
    .await
    .expect_error(404, "not_found");

    // Deleting versions.
    let deleted = server
        .delete(&format!("{path}/1.1.0-beta.1"), &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(deleted, json!({"status": 200, "message": null}));
    // `1.2` finds `1.2.0`.
    server
        .delete(&format!("{path}/1.2"), &acme.token)
        .send()
        .await
        .expect(200);
    server
        .delete(&format!("{path}/1.1.0-beta.1"), &acme.token)
        .send()
        .await
        .expect_error(404, "not_found");
    server
        .delete(&format!("{path}/not-a-version"), &acme.token)
        .send()
        .await
        .expect_error(400, "invalid_version");
    let versions = server.get(path, &acme.token).send().await.expect(200);
    assert_eq!(
        versions["versions"],
        json!([
            {"version": "1.0.0", "maturity": "stable", "published": true},
            {"version": "0.9.0", "maturity": "stable", "published": false}
        ])
    );
}

#[tokio::test]
async fn theme_versions_take_theme_packages() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    create(&server, &acme, "themes", "my-new-theme", "static-keys").await;
    let path = "/v1/themes/my-new-theme/versions";
    let body = upload_multipart(
        &server,
        &acme.token,
        path,
        &theme_zip("my-new-theme", "2.0.0-rc.1", ""),
        &[],
    )
    .await
    .expect(200);
    assert_eq!(body["version"]["maturity"], "rc");
    upload_raw(
        &server,
        &acme.token,
        path,
        plugin_zip("my-new-theme", "2.0.0", ""),
    )
    .await
    .expect_error(400, "invalid_package");
    let theme = server
        .get("/v1/themes/my-new-theme", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        theme["theme"],
        json!({"license": {"type": "static-keys"}, "slug": "my-new-theme",
               "versions": [{"version": "2.0.0-rc.1", "maturity": "rc", "published": true}]})
    );
    // Under the plugins tree the theme does not exist.
    upload_raw(
        &server,
        &acme.token,
        "/v1/plugins/my-new-theme/versions",
        theme_zip("my-new-theme", "2.0.1", ""),
    )
    .await
    .expect_error(404, "not_found");
}

#[tokio::test]
async fn akismet_as_debian_ships_it_is_released() {
    let dir = Path::new("/usr/share/wordpress/wp-content/plugins/akismet");
    if !dir.is_dir() {
        eprintln!(
            "\nSKIPPED [upkeep-catalog]: akismet_as_debian_ships_it_is_released: {} not found \
             (apt-get install wordpress); the check did NOT run.\n",
            dir.display()
        );
        return;
    }
    let mut files = Vec::new();
    collect(dir, dir, &mut files);
    let entries: Vec<(String, String)> = files
        .into_iter()
        .filter_map(|(name, bytes)| {
            Some((format!("akismet/{name}"), String::from_utf8(bytes).ok()?))
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = entries
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_str()))
        .collect();
    let zip = crate::support::zip_of(&borrowed);
    let server = TestServer::start().await;
    let acme = server.account("acme");
    create(&server, &acme, "plugins", "akismet", "no-license").await;
    let body = upload_raw(&server, &acme.token, "/v1/plugins/akismet/versions", zip)
        .await
        .expect(200);
    assert_eq!(body["version"]["published"], true);
    assert_eq!(body["version"]["maturity"], "stable");
    let versions = server
        .get("/v1/plugins/akismet/versions", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        versions["versions"][0]["version"],
        body["version"]["version"]
    );
}

/// Every file under `dir`, as (path relative to `root`, bytes).
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            let name = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            out.push((name, bytes));
        }
    }
}

#[tokio::test]
async fn another_accounts_slugs_are_404() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let other = server.account("other");
    create(&server, &acme, "plugins", "acme-plugin", "static-keys").await;
    server
        .post(
            "/v1/plugins/acme-plugin/license/keys",
            &acme.token,
            json!([{"key": "acme-secret-key-1"}]),
        )
        .send()
        .await
        .expect(200);
    let base = "/v1/plugins/acme-plugin";
    for reply in [
        server.get(base, &other.token).send().await,
        server
            .get(&format!("{base}/versions"), &other.token)
            .send()
            .await,
        server
            .get(&format!("{base}/license/keys"), &other.token)
            .send()
            .await,
        server
            .get(
                &format!("{base}/license/keys/acme-secret-key-1"),
                &other.token,
            )
            .send()
            .await,
        put(
            &server,
            base,
            &other.token,
            json!({"license": {"type": "no-license"}}),
        )
        .send()
        .await,
        put(
            &server,
            &format!("{base}/license/keys"),
            &other.token,
            json!({"key": "other-key-123"}),
        )
        .send()
        .await,
        server
            .post(&format!("{base}/license/keys"), &other.token, json!([]))
            .send()
            .await,
        server
            .delete(
                &format!("{base}/license/keys/acme-secret-key-1"),
                &other.token,
            )
            .send()
            .await,
        upload_raw(
            &server,
            &other.token,
            &format!("{base}/versions"),
            plugin_zip("acme-plugin", "1.0.0", ""),
        )
        .await,
        server
            .delete(&format!("{base}/versions/1.0.0"), &other.token)
            .send()
            .await,
        server.delete(base, &other.token).send().await,
    ] {
        reply.expect_error(404, "not_found");
    }
    // The other account sees nothing, and may use the slug itself.
    let list = server
        .get("/v1/plugins", &other.token)
        .send()
        .await
        .expect(200);
    assert_eq!(list["plugins"], json!([]));
    create(&server, &other, "plugins", "acme-plugin", "no-license").await;
    // Acme's plugin and key are untouched.
    let keys = server
        .get(&format!("{base}/license/keys"), &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        keys["keys"],
        json!([{"key": "acme-secret-key-1", "expires": null}])
    );
    let plugin = server.get(base, &acme.token).send().await.expect(200);
    assert_eq!(plugin["plugin"]["license"], json!({"type": "static-keys"}));
}

#[tokio::test]
async fn each_route_needs_its_scope() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    create(&server, &acme, "plugins", "scoped", "static-keys").await;
    let read_releases = server.token(&acme, "rr", &["read_releases"], None);
    let manage_releases = server.token(&acme, "mr", &["manage_releases"], None);
    let read_licenses = server.token(&acme, "rl", &["read_licenses"], None);
    let manage_licenses = server.token(&acme, "ml", &["manage_licenses"], None);
    let read_user = server.token(&acme, "ru", &["read_user"], None);

    // Reads of products and versions: read_releases.
    for path in [
        "/v1/plugins",
        "/v1/plugins/scoped",
        "/v1/plugins/scoped/versions",
    ] {
        server.get(path, &read_releases).send().await.expect(200);
        for token in [&read_licenses, &read_user, &manage_licenses] {
            server
                .get(path, token)
                .send()
                .await
                .expect_error(403, "forbidden");
        }
    }
    // Changes: manage_releases.
    server
        .post("/v1/plugins", &read_releases, json!({"slug": "nope"}))
        .send()
        .await
        .expect_error(403, "forbidden");
    upload_raw(
        &server,
        &read_releases,
        "/v1/plugins/scoped/versions",
        plugin_zip("scoped", "1.0.0", ""),
    )
    .await
    .expect_error(403, "forbidden");
    upload_raw(
        &server,
        &manage_releases,
        "/v1/plugins/scoped/versions",
        plugin_zip("scoped", "1.0.0", ""),
    )
    .await
    .expect(200);
    put(
        &server,
        "/v1/plugins/scoped",
        &manage_licenses,
        json!({"license": {"type": "no-license"}}),
    )
    .send()
    .await
    .expect_error(403, "forbidden");

    // Keys: read_licenses / manage_licenses, not the release scopes.
    server
        .post(
            "/v1/plugins/scoped/license/keys",
            &manage_releases,
            json!([{"key": "scoped-key-123"}]),
        )
        .send()
        .await
        .expect_error(403, "forbidden");
    server
        .post(
            "/v1/plugins/scoped/license/keys",
            &manage_licenses,
            json!([{"key": "scoped-key-123"}]),
        )
        .send()
        .await
        .expect(200);
    server
        .get("/v1/plugins/scoped/license/keys", &read_releases)
        .send()
        .await
        .expect_error(403, "forbidden");
    server
        .get("/v1/plugins/scoped/license/keys", &read_licenses)
        .send()
        .await
        .expect(200);
    server
        .get(
            "/v1/plugins/scoped/license/keys/scoped-key-123",
            &read_licenses,
        )
        .send()
        .await
        .expect(200);
    put(
        &server,
        "/v1/plugins/scoped/license/keys",
        &read_licenses,
        json!({"key": "another-key-456"}),
    )
    .send()
    .await
    .expect_error(403, "forbidden");
    server
        .delete(
            "/v1/plugins/scoped/license/keys/scoped-key-123",
            &read_licenses,
        )
        .send()
        .await
        .expect_error(403, "forbidden");
    server
        .delete("/v1/plugins/scoped", &read_releases)
        .send()
        .await
        .expect_error(403, "forbidden");
    server
        .delete("/v1/plugins/scoped", &manage_releases)
        .send()
        .await
        .expect(200);
}

#[tokio::test]
async fn static_keys_round_trip_with_the_seed_messages() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    create(&server, &acme, "plugins", "my-new-plugin", "static-keys").await;
    let keys = "/v1/plugins/my-new-plugin/license/keys";

    let empty = server.get(keys, &acme.token).send().await.expect(200);
    assert_eq!(empty, json!({"status": 200, "keys": []}));

    let replaced = server
        .post(
            keys,
            &acme.token,
            json!([
                {"key": "some-license-key", "expires": null},
                {"key": "another-license-key", "expires": "2025-12-31"}
            ]),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(
        replaced,
        json!({"status": 200, "message": "License on plugin my-new-plugin were updated"})
    );
    let listed = server.get(keys, &acme.token).send().await.expect(200);
    assert_eq!(
        listed,
        json!({"status": 200, "keys": [
            {"key": "some-license-key", "expires": null},
            {"key": "another-license-key", "expires": "2025-12-31"}
        ]})
    );

    let added = put(
        &server,
        keys,
        &acme.token,
        json!({"key": "next-license-key"}),
    )
    .send()
    .await
    .expect(200);
    assert_eq!(
        added,
        json!({"status": 200,
               "message": "License key next-license-key was added to plugin my-new-plugin"})
    );
    put(
        &server,
        keys,
        &acme.token,
        json!({"key": "next-license-key", "expires": "2030-01-01"}),
    )
    .send()
    .await
    .expect_error(409, "license_key_exists");

    let one = server
        .get(&format!("{keys}/another-license-key"), &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        one,
        json!({"status": 200, "license-key": {"key": "another-license-key", "expires": "2025-12-31"}})
    );
    // Keys compare exactly.
    server
        .get(&format!("{keys}/Another-License-Key"), &acme.token)
        .send()
        .await
        .expect_error(404, "not_found");

    let removed = server
        .delete(&format!("{keys}/next-license-key"), &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        removed,
        json!({"status": 200,
               "message": "License key next-license-key on plugin my-new-plugin was removed."})
    );
    server
        .delete(&format!("{keys}/next-license-key"), &acme.token)
        .send()
        .await
        .expect_error(404, "not_found");
    server
        .get(&format!("{keys}/next-license-key"), &acme.token)
        .send()
        .await
        .expect_error(404, "not_found");

    // Bad input names the field; nothing is written.
    for (body, field) in [
        (json!([{"key": "short"}]), "[0].key"),
        (
            json!([{"key": "good-key-000"}, {"key": "has space in it"}]),
            "[1].key",
        ),
        (
            json!([{"key": "good-key-000"}, {"key": "good-key-000"}]),
            "[1].key",
        ),
        (
            json!([{"key": "good-key-000", "expires": "2025-13-01"}]),
            "[0].expires",
        ),
        (
            json!([{"key": "good-key-000", "expires": "tomorrow"}]),
            "[0].expires",
        ),
        (json!([{"key": "good-key-000", "colour": "blue"}]), "colour"),
        (json!({"key": "good-key-000"}), "array"),
    ] {
        let message = server
            .post(keys, &acme.token, body.clone())
            .send()
            .await
            .expect_error(400, "invalid_request");
        assert!(message.contains(field), "{body}: {message}");
    }
    for (body, field) in [
        (json!({"key": "a/b/c/d/e/f/g"}), "key"),
        (json!({"key": "x".repeat(129)}), "key"),
        (
            json!({"key": "good-key-000", "expires": "2025-1-1"}),
            "expires",
        ),
        (json!({"expires": "2025-01-01"}), "key"),
    ] {
        let message = put(&server, keys, &acme.token, body.clone())
            .send()
            .await
            .expect_error(400, "invalid_request");
        assert!(message.contains(field), "{body}: {message}");
    }
    let listed = server.get(keys, &acme.token).send().await.expect(200);
    assert_eq!(listed["keys"].as_array().map(Vec::len), Some(2));

    // An empty list clears them; themes say "theme".
    server
        .post(keys, &acme.token, json!([]))
        .send()
        .await
        .expect(200);
    let listed = server.get(keys, &acme.token).send().await.expect(200);
    assert_eq!(listed["keys"], json!([]));
    create(&server, &acme, "themes", "my-new-theme", "static-keys").await;
    let replaced = server
        .post(
            "/v1/themes/my-new-theme/license/keys",
            &acme.token,
            json!([{"key": "theme-license-key"}]),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(
        replaced["message"],
        "License on theme my-new-theme were updated"
    );
    let added = put(
        &server,
        "/v1/themes/my-new-theme/license/keys",
        &acme.token,
        json!({"key": "theme-key-two"}),
    )
    .send()
    .await
    .expect(200);
    assert_eq!(
        added["message"],
        "License key theme-key-two was added to theme my-new-theme"
    );
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[tokio::test]
async fn static_keys_never_reach_the_disk_in_the_clear() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    create(&server, &acme, "plugins", "sealed-plugin", "static-keys").await;
    let keys = "/v1/plugins/sealed-plugin/license/keys";
    let secrets = [
        "Zq7-clear-text-canary-1",
        "Zq7-clear-text-canary-2",
        "Zq7-clear-text-canary-3",
    ];
    server
        .post(
            keys,
            &acme.token,
            json!([{"key": secrets[0]}, {"key": secrets[1], "expires": "2099-12-31"}]),
        )
        .send()
        .await
        .expect(200);
    put(&server, keys, &acme.token, json!({"key": secrets[2]}))
        .send()
        .await
        .expect(200);
    // A version too, so that blobs exist on disk.
    upload_raw(
        &server,
        &acme.token,
        "/v1/plugins/sealed-plugin/versions",
        plugin_zip("sealed-plugin", "1.0.0", ""),
    )
    .await
    .expect(200);
    let token = acme.token.clone();

    // Stop (drain, flush), then read every file of the data directory.
    let (dir, path) = server.stop().await;
    let mut files = Vec::new();
    files_under(&path, &mut files);
    assert!(files.len() > 3, "the data directory has files: {files:?}");
    // The scan sees the store's records as written: the product's slug, stored in the
    // clear, is found (so an unsealed key would be too).
    let mut slug_seen = false;
    for file in &files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        slug_seen |= bytes.windows(13).any(|w| w == b"sealed-plugin");
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} is in the clear in {}",
                file.display()
            );
        }
    }
    assert!(slug_seen, "the scan reads the records");

    // The server key opens them again after a restart.
    let server = TestServer::start_in(
        &path,
        upkeep::clock::Clock::manual(START),
        upkeep::Settings::default(),
    )
    .await;
    let listed = server.get(keys, &token).send().await.expect(200);
    assert_eq!(
        listed["keys"],
        json!([
            {"key": secrets[0], "expires": null},
            {"key": secrets[1], "expires": "2099-12-31"},
            {"key": secrets[2], "expires": null}
        ])
    );
    drop(server);
    drop(dir);
}

#[tokio::test]
async fn get_account_lists_the_slugs() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let other = server.account("other");
    create(&server, &acme, "plugins", "zeta-plugin", "no-license").await;
    create(&server, &acme, "themes", "my-theme", "no-license").await;
    create(&server, &acme, "plugins", "alpha-plugin", "static-keys").await;
    create(&server, &other, "plugins", "others-plugin", "no-license").await;
    let body = server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        body["products"],
        json!({"themes": ["my-theme"], "plugins": ["alpha-plugin", "zeta-plugin"]})
    );
    server
        .delete("/v1/plugins/zeta-plugin", &acme.token)
        .send()
        .await
        .expect(200);
    let body = server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        body["products"],
        json!({"themes": ["my-theme"], "plugins": ["alpha-plugin"]})
    );
}

#[tokio::test]
async fn the_plugin_list_is_paged() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    for i in 0..5 {
        create(
            &server,
            &acme,
            "plugins",
            &format!("plugin-{i}"),
            "no-license",
        )
        .await;
        create(
            &server,
            &acme,
            "themes",
            &format!("theme-{i}"),
            "no-license",
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/v1/plugins?limit=2&cursor={c}"),
            None => "/v1/plugins?limit=2".to_owned(),
        };
        let page = server.get(&path, &acme.token).send().await.expect(200);
        let items = page["plugins"].as_array().expect("plugins");
        assert!(items.len() <= 2, "{page}");
        seen.extend(
            items
                .iter()
                .map(|p| p["slug"].as_str().expect("slug").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        (0..5).map(|i| format!("plugin-{i}")).collect::<Vec<_>>()
    );
    server
        .get("/v1/plugins?limit=0", &acme.token)
        .send()
        .await
        .expect_error(400, "invalid_request");
}

/// `"license": null` is what leaving it out is (`no-license`), as the schema documents.
#[tokio::test]
async fn a_null_license_is_no_license() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let body = server
        .post(
            "/v1/plugins",
            &acme.token,
            json!({"slug": "nulled", "license": null}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(body["data"][0]["license"], json!({"type": "no-license"}));
    let doc = server
        .get("/openapi.json", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        doc["components"]["schemas"]["CreateWuProduct"]["properties"]["license"]["anyOf"][1]["type"],
        "null"
    );
}
