//! Signed download links (SPEC §8.1 item 3, §8.4): streaming with Range and ETag, HEAD,
//! expiry, forgery, a changed or deleted file, and keys checked again at download.

use super::{get, patch, plugin_with, static_keys};
use crate::support::{TestServer, plugin_zip};
use http::Method;
use serde_json::json;
use std::time::Duration;

/// The path of an absolute link.
fn path_of(link: &str) -> String {
    let rest = link.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_owned()
}

#[tokio::test]
async fn a_link_streams_the_file_until_it_expires() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let v = plugin_with(&server, &acme.token, "hello", &["1.0.0"]).await;
    let zip = plugin_zip("hello", "1.0.0", "1.0.0");
    let doc = get(&server, "/updates/acme/hello").await.expect(200);
    let path = path_of(doc["download_url"].as_str().unwrap());
    assert!(!path.contains("key"), "no key in a link: {path}");

    let whole = server.request(Method::GET, &path).send().await;
    assert_eq!(whole.status, 200, "{whole:?}");
    assert_eq!(&whole.body[..], &zip[..]);
    assert_eq!(
        whole.header("etag"),
        Some(format!("\"{}\"", blake3::hash(&zip).to_hex()).as_str())
    );
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(
        whole.header("content-length"),
        Some(zip.len().to_string().as_str())
    );
    let part = server
        .request(Method::GET, &path)
        .header("range", "bytes=5-")
        .send()
        .await;
    assert_eq!(part.status, 206);
    assert_eq!(&part.body[..], &zip[5..]);
    assert_eq!(whole.header("content-type"), Some("application/zip"));
    assert_eq!(
        whole.header("content-disposition"),
        Some("attachment; filename=\"hello-1.0.0.zip\"")
    );
    let head = server.request(Method::HEAD, &path).send().await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    // HEAD answers GET's headers.
    for name in [
        "content-length",
        "etag",
        "content-type",
        "content-disposition",
        "accept-ranges",
    ] {
        assert_eq!(head.header(name), whole.header(name), "{name}");
    }
    let id = v["product"]["id"].as_u64().unwrap();
    // Reports count what sends the file from its first byte: the whole GET, not the
    // resumed range nor the HEAD.
    assert_eq!(server.counted(id).downloads, 1);
    let first = server
        .request(Method::GET, &path)
        .header("range", "bytes=0-9")
        .send()
        .await;
    assert_eq!(first.status, 206);
    assert_eq!(&first.body[..], &zip[..10]);
    let past = server
        .request(Method::GET, &path)
        .header("range", &format!("bytes={}-", zip.len() + 10))
        .send()
        .await;
    assert_eq!(past.status, 416);
    let counted = server.counted(id);
    assert_eq!(counted.downloads, 2, "{counted:?}");

    // Forged: any changed character, or garbage.
    let mut forged = path.clone().into_bytes();
    let at = "/dl/".len() + 3;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        server.request(Method::GET, &forged).send().await.status,
        404
    );
    assert_eq!(
        server
            .request(Method::GET, "/dl/%00%FF/x.zip")
            .send()
            .await
            .status,
        404
    );
    assert_eq!(
        server
            .request(Method::GET, &format!("/dl/{}/x.zip", "A".repeat(5000)))
            .send()
            .await
            .status,
        404
    );

    // Expired after --download-url-ttl (24 h).
    server.clock.advance(Duration::from_secs(24 * 3600 + 1));
    let late = server.request(Method::GET, &path).send().await;
    assert_eq!(late.status, 410, "{late:?}");
    assert!(String::from_utf8_lossy(&late.body).contains("expired"));
}

#[tokio::test]
async fn an_apps_longest_machine_gets_a_link_bound_to_it() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let v = plugin_with(&server, &acme.token, "hello", &["1.0.0"]).await;
    let id = v["product"]["id"].as_u64().unwrap();
    // 128 characters (the most a machine may have) of two bytes each: 256 bytes.
    let machine = "%C3%A9".repeat(128);
    // No WordPress User-Agent: the machine is the caller (an app).
    let update = server
        .request(
            Method::GET,
            &format!("/api/v1/products/{id}/update?installed_version=0.1&machine={machine}"),
        )
        .send()
        .await
        .expect(200);
    let link = update["update"]["download_url"].as_str();
    let link = link.unwrap_or_else(|| panic!("no link for the longest machine: {update}"));
    let got = server.request(Method::GET, &path_of(link)).send().await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(&got.body[..], &plugin_zip("hello", "1.0.0", "1.0.0")[..]);
}

#[tokio::test]
async fn a_deleted_file_is_gone() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let v = plugin_with(&server, &acme.token, "hello", &["1.0.0"]).await;
    let doc = get(&server, "/updates/acme/hello").await.expect(200);
    let path = path_of(doc["download_url"].as_str().unwrap());
    let vid = v["id"].as_u64().unwrap();
    server
        .request(Method::DELETE, &format!("/api/v1/versions/{vid}"))
        .header("authorization", &format!("Bearer {}", acme.token))
        .send()
        .await
        .expect(204);
    assert_eq!(server.request(Method::GET, &path).send().await.status, 410);

    // A file deleted between the route reading its record and opening its blob (the
    // delete removes the blob at once): the blob gone under a live record is 410, not 500.
    plugin_with(&server, &acme.token, "racy", &["1.0.0"]).await;
    let doc = get(&server, "/updates/acme/racy").await.expect(200);
    let path = path_of(doc["download_url"].as_str().unwrap());
    let blob = upkeep::model::BlobHash::of(&plugin_zip("racy", "1.0.0", "1.0.0"));
    std::fs::remove_file(server.store().blobs().path(&blob)).unwrap();
    let raced = server.request(Method::GET, &path).send().await;
    assert_eq!(raced.status, 410, "{raced:?}");
}

/// The status of a GET of `path`.
async fn status(server: &TestServer, path: &str) -> http::StatusCode {
    server.request(Method::GET, path).send().await.status
}

/// The path of the link a PUC check of acme's `hello` hands out.
async fn hello_link(server: &TestServer) -> String {
    let doc = get(server, "/updates/acme/hello").await.expect(200);
    path_of(doc["download_url"].as_str().unwrap())
}

#[tokio::test]
async fn pulling_a_version_or_its_product_stops_its_links() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let v = plugin_with(&server, &acme.token, "hello", &["1.0.0", "1.1.0"]).await;
    let (id, vid) = (
        v["product"]["id"].as_u64().unwrap(),
        v["id"].as_u64().unwrap(),
    );
    let version = format!("/api/v1/versions/{vid}");

    // The version pulled (a bad release): its link, cached by a site, stops with it.
    let cached = hello_link(&server).await;
    patch(&server, &acme.token, &version, json!({"published": false})).await;
    assert_eq!(status(&server, &cached).await, 410);
    patch(&server, &acme.token, &version, json!({"published": true})).await;
    assert_eq!(
        status(&server, &cached).await,
        200,
        "published again, it works again"
    );
    // The whole product unpublished.
    let product = format!("/api/v1/products/{id}");
    patch(&server, &acme.token, &product, json!({"published": false})).await;
    assert_eq!(status(&server, &cached).await, 410);
}

#[tokio::test]
async fn static_keys_gate_the_link_and_are_checked_again_at_download() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let v = plugin_with(&server, &acme.token, "paid", &["2.0.0"]).await;
    let id = v["product"]["id"].as_u64().unwrap();
    // A link made while the product was free...
    let free = get(&server, "/v1/public/acme/plugins/paid")
        .await
        .expect(200);
    let free_link = path_of(free["download_link"].as_str().unwrap());
    let put = |path: &str, body: serde_json::Value| server.put(path, &acme.token, body);
    static_keys(&server, &acme.token, "paid").await;
    // ...no longer downloads once it needs a key.
    let keyless = server.request(Method::GET, &free_link).send().await;
    assert_eq!(keyless.status, 403, "{keyless:?}");
    assert!(String::from_utf8_lossy(&keyless.body).contains("license key is required"));
    put(
        "/v1/plugins/paid/license/keys",
        json!({"key": "good-key-12345"}),
    )
    .send()
    .await
    .expect(200);
    put(
        "/v1/plugins/paid/license/keys",
        json!({"key": "old-key-123456", "expires": "2020-01-01"}),
    )
    .send()
    .await
    .expect(200);

    let none = get(&server, "/v1/public/acme/plugins/paid")
        .await
        .expect(200);
    assert_eq!(none["version"], "2.0.0", "the update is announced");
    assert!(none.get("download_link").is_none());
    assert_eq!(
        none["license"],
        json!({"valid": false, "code": "missing_key"})
    );
    let wrong = get(&server, "/v1/public/acme/plugins/paid?key=wrong-key-0000")
        .await
        .expect(200);
    assert_eq!(wrong["license"]["code"], "not_found");
    let old = get(&server, "/v1/public/acme/plugins/paid?key=old-key-123456")
        .await
        .expect(200);
    assert_eq!(old["license"]["code"], "expired");
    let edd = get(
        &server,
        "/edd/acme?edd_action=get_version&item_name=paid%20Test&license=wrong-key-0000",
    )
    .await
    .expect(200);
    assert_eq!(edd["new_version"], "2.0.0");
    assert_eq!(edd["package"], "");
    assert!(!edd["msg"].as_str().unwrap().is_empty());
    let good = get(&server, "/v1/public/acme/plugins/paid?key=good-key-12345")
        .await
        .expect(200);
    assert_eq!(good["license"], json!({"valid": true}));
    // Reports count the keyed checks' outcomes as validations (valid, not_found ×2,
    // expired); the check without a key is a check only.
    let counted = server.counted(id);
    assert_eq!(
        counted.checks, 6,
        "one while free, five with keys: {counted:?}"
    );
    assert_eq!(counted.validations, [1, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
    let path = path_of(good["download_link"].as_str().unwrap());
    assert!(!path.contains("good-key"), "no key in a link: {path}");
    assert_eq!(server.request(Method::GET, &path).send().await.status, 200);
    let legacy = get(&server, "/?action=download&slug=paid").await;
    legacy.expect_error(403, "forbidden");

    // The key is removed: its link stops working (403 with a reason).
    server
        .delete("/v1/plugins/paid/license/keys/good-key-12345", &acme.token)
        .send()
        .await
        .expect(200);
    let refused = server.request(Method::GET, &path).send().await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.body).contains("removed"));
}

#[tokio::test]
async fn guessing_keys_is_throttled_with_a_200_that_says_rate_limited() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    plugin_with(&server, &acme.token, "paid", &["1.0.0"]).await;
    static_keys(&server, &acme.token, "paid").await;
    server
        .put(
            "/v1/plugins/paid/license/keys",
            &acme.token,
            json!({"key": "good-key-12345"}),
        )
        .send()
        .await
        .expect(200);
    let budget = upkeep::defaults::PUBLIC_KEY_FAILURES_PER_MINUTE;
    for i in 0..budget {
        let guess = get(
            &server,
            &format!("/v1/public/acme/plugins/paid?key=guess-{i:08}"),
        )
        .await
        .expect(200);
        assert_eq!(guess["license"]["code"], "not_found", "guess {i}");
    }
    // Past the budget: even the right key is not looked up, and the answer is still 200.
    for path in [
        "/v1/public/acme/plugins/paid?key=guess-x0000000",
        "/v1/public/acme/plugins/paid?key=good-key-12345",
    ] {
        let limited = get(&server, path).await.expect(200);
        assert_eq!(
            limited["license"],
            json!({"valid": false, "code": "rate_limited"}),
            "{path}"
        );
        assert!(limited.get("download_link").is_none());
    }
    let edd = get(
        &server,
        "/edd/acme?edd_action=get_version&slug=paid&license=good-key-12345",
    )
    .await
    .expect(200);
    assert_eq!(edd["package"], "");
    // A minute later the window has passed.
    server.clock.advance(Duration::from_secs(61));
    let good = get(&server, "/v1/public/acme/plugins/paid?key=good-key-12345")
        .await
        .expect(200);
    assert_eq!(good["license"], json!({"valid": true}));
}

#[tokio::test]
async fn download_keys_gate_checks_with_activation_and_are_checked_again_at_download() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let v = plugin_with(&server, &acme.token, "pro", &["3.0.0"]).await;
    let pid = v["product"]["id"].as_u64().unwrap();
    let bearer = format!("Bearer {}", acme.token);
    let send = |method: Method, path: String, body: serde_json::Value| {
        server
            .request(method, &path)
            .header("authorization", &bearer)
            .body(body.to_string())
    };
    send(
        Method::PATCH,
        format!("/api/v1/products/{pid}"),
        json!({"license": "download_keys", "require_activation": true}),
    )
    .send()
    .await
    .expect(200);
    let customer = send(
        Method::POST,
        "/api/v1/customers".into(),
        json!({"name": "Ann", "email": "ann@example.com"}),
    )
    .send()
    .await
    .expect(201)["data"]["id"]
        .as_u64()
        .unwrap();
    let created = send(
        Method::POST,
        "/api/v1/download-keys".into(),
        json!({"customer_id": customer, "product_ids": [pid], "activation_limit": 2}),
    )
    .send()
    .await
    .expect(201);
    let key = created["data"]["key"].as_str().unwrap().to_owned();
    let kid = created["data"]["id"].as_u64().unwrap();
    let other_product =
        plugin_with(&server, &acme.token, "other", &["1.0.0"]).await["product"]["id"]
            .as_u64()
            .unwrap();
    send(
        Method::PATCH,
        format!("/api/v1/products/{other_product}"),
        json!({"license": "download_keys"}),
    )
    .send()
    .await
    .expect(200);

    let check = |key: &str| format!("/updates/acme/pro?installed_version=1.0.0&license_key={key}");
    // Not activated for the site (the User-Agent's example.com): announced, no link.
    let inactive = get(&server, &check(&key)).await.expect(200);
    assert_eq!(inactive["version"], "3.0.0");
    assert_eq!(inactive["license"]["code"], "site_inactive");
    assert!(inactive.get("download_url").is_none());
    let mismatch = get(&server, &format!("/updates/acme/other?license_key={key}"))
        .await
        .expect(200);
    assert_eq!(mismatch["license"]["code"], "product_mismatch");
    let unknown = get(&server, &check("0000-not-a-real-key"))
        .await
        .expect(200);
    assert_eq!(unknown["license"]["code"], "not_found");

    // Activate example.com (through the service, as the licensing dialects do).
    let activate = |target: upkeep::service::licensing::Target| {
        let ctx = server.app().ctx(None, server.now());
        let rules = server.app().settings.activation_rules();
        let account = upkeep::model::AccountPrefix::parse("acme").unwrap();
        let pid = Some(upkeep::model::ProductId(pid));
        crate::support::activate_now(&ctx, &rules, &account, pid, &key, target);
    };
    let site = upkeep::model::normalize_site("https://example.com").unwrap();
    activate(upkeep::service::licensing::Target::Site(site));
    let valid = get(&server, &check(&key.to_uppercase())).await.expect(200);
    assert_eq!(
        valid["license"],
        json!({"valid": true}),
        "uuid keys compare in any case"
    );
    let path = path_of(valid["download_url"].as_str().unwrap());
    assert!(
        !path.to_lowercase().contains(&key.to_lowercase()),
        "no key in a link"
    );
    assert_eq!(server.request(Method::GET, &path).send().await.status, 200);

    // An app activated by a machine fingerprint that reads as a host name: its check
    // (no WordPress User-Agent) gets a link, and the link downloads.
    activate(upkeep::service::licensing::Target::Machine(
        "fp-1234abcd".into(),
    ));
    let app_check = |machine: &str| {
        format!(
            "/api/v1/products/{pid}/update?installed_version=1.0.0&download_key={key}&machine={machine}"
        )
    };
    let app = server
        .request(Method::GET, &app_check("%20fp-1234abcd"))
        .send()
        .await
        .expect(200);
    assert_eq!(app["update"]["license"], json!({"valid": true}), "{app}");
    let app_path = path_of(app["update"]["download_url"].as_str().unwrap());
    assert_eq!(
        server.request(Method::GET, &app_path).send().await.status,
        200
    );
    let other = server
        .request(Method::GET, &app_check("fp-other"))
        .send()
        .await
        .expect(200);
    assert_eq!(
        other["update"]["license"]["code"], "site_inactive",
        "{other}"
    );

    // Disabled since the link was made: 403 with the reason.
    send(
        Method::PATCH,
        format!("/api/v1/download-keys/{kid}"),
        json!({"status": "disabled"}),
    )
    .send()
    .await
    .expect(200);
    let refused = server.request(Method::GET, &path).send().await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.body).contains("disabled"));
    let disabled = get(&server, &check(&key)).await.expect(200);
    assert_eq!(disabled["license"]["code"], "disabled");
}
