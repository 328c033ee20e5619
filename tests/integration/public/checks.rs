//! The decision (SPEC §8.1) in every dialect: what is offered, to whom, with which link.

use super::{get, no_store, patch, plugin_with, release, static_keys};
use crate::support::{TestServer, plugin_zip};
use http::Method;
use serde_json::json;
use upkeep::model::rollout_bucket;

#[tokio::test]
async fn a_free_plugin_is_offered_in_every_dialect_with_an_absolute_signed_link() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let v = plugin_with(&server, &acme.token, "hello", &["1.0.0", "1.1.0"]).await;
    let id = v["product"]["id"].as_u64().unwrap();
    let host = server.addr.to_string();

    let wu = get(
        &server,
        "/v1/public/acme/plugins/hello?installed_version=1.0.0",
    )
    .await;
    no_store(&wu);
    let wu = wu.expect(200);
    assert_eq!(wu["version"], "1.1.0");
    assert_eq!(wu["plugin_name"], "hello Test");
    assert_eq!(wu["requires_at_least"], "6.0");
    assert_eq!(wu["license"], json!({"valid": true}));
    let link = wu["download_link"].as_str().unwrap();
    assert!(link.starts_with(&format!("http://{host}/dl/")), "{link}");
    assert!(
        link.ends_with("/hello-1.1.0.zip"),
        "an unnamed upload is served as slug-version.zip: {link}"
    );
    assert!(
        wu["sections"]["description"]
            .as_str()
            .unwrap()
            .contains("<em>test</em>")
    );
    assert!(
        !wu["sections"]["description"]
            .as_str()
            .unwrap()
            .contains("script")
    );
    assert!(wu["last_updated"].as_str().unwrap().len() == 19);

    let puc = get(
        &server,
        "/updates/acme/hello?installed_version=1.0.0&php=8.2",
    )
    .await
    .expect(200);
    assert_eq!(puc["version"], "1.1.0");
    assert_eq!(puc["slug"], "hello");
    assert!(puc["download_url"].as_str().unwrap().contains("/dl/"));

    let uc = get(
        &server,
        &format!("/api/v1/products/{id}/update?installed_version=1.0.0&domain=example.com"),
    )
    .await
    .expect(200);
    assert_eq!(uc["update"]["version"], "1.1.0");

    // EDD: by id (GET and form POST, doubly encoded), by name, and the bare host.
    let edd = get(
        &server,
        &format!("/edd/acme/?edd_action=get_version&item_id={id}&version=1.0.0"),
    )
    .await
    .expect(200);
    assert_eq!(edd["new_version"], "1.1.0");
    assert_eq!(edd["stable_version"], "1.1.0");
    assert!(edd["package"].as_str().unwrap().contains("/dl/"));
    assert!(
        edd["sections"].as_str().unwrap().starts_with("a:"),
        "PHP-serialized: {edd}"
    );
    assert_eq!(
        edd["url"],
        format!("http://{host}/updates/acme/hello/changelog")
    );
    let form = server
        .request(Method::POST, "/edd/acme")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("edd_action=get_version&item_name=hello%2520Test&version=1.0.0")
        .send()
        .await
        .expect(200);
    assert_eq!(
        form["new_version"], "1.1.0",
        "item_name matched slugified, decoded twice"
    );
    // item_id wins over a mismatching item_name.
    let both = get(
        &server,
        &format!("/edd/acme?edd_action=get_version&item_id={id}&item_name=Other"),
    )
    .await
    .expect(200);
    assert_eq!(both["new_version"], "1.1.0");
    let root = get(&server, &format!("/?edd_action=get_version&item_id={id}"))
        .await
        .expect(200);
    assert_eq!(
        root["new_version"], "1.1.0",
        "the first account is the default"
    );
    let meta = get(&server, "/?action=get_metadata&slug=hello")
        .await
        .expect(200);
    assert_eq!(meta["version"], "1.1.0");
    let legacy = get(&server, "/?action=download&slug=hello").await;
    assert_eq!(legacy.status, 200, "{legacy:?}");
    assert_eq!(
        legacy.header("content-disposition"),
        Some("attachment; filename=\"hello.zip\"")
    );
    assert_eq!(&legacy.body[..], &plugin_zip("hello", "1.1.0", "1.1.0")[..]);

    // Our batch.
    let batch = server
        .request(Method::POST, "/v1/public/acme/check")
        .body(json!({"site": "https://example.com", "items": [{"slug": "hello", "version": "1.0.0"}, {"slug": "nope", "version": "2.0"}]}).to_string())
        .send()
        .await
        .expect(200);
    assert_eq!(batch["items"][0]["new_version"], "1.1.0");
    assert!(batch["items"][0]["download_link"].is_string());
    assert_eq!(batch["items"][1]["license"]["code"], "not_found");
    let too_many: Vec<_> = (0..101).map(|i| json!({"slug": format!("s{i}")})).collect();
    server
        .request(Method::POST, "/v1/public/acme/check")
        .body(json!({"items": too_many}).to_string())
        .send()
        .await
        .expect_error(400, "invalid_request");

    // The checks are counted.
    let counted = server.counted(id);
    assert!(counted.checks >= 8, "{counted:?}");
}

#[tokio::test]
async fn unknown_names_are_404_but_nothing_to_offer_is_a_200() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let v = plugin_with(&server, &acme.token, "hello", &["1.0.0"]).await;
    let id = v["product"]["id"].as_u64().unwrap();
    for path in [
        "/v1/public/nobody/plugins/hello",
        "/v1/public/acme/plugins/nope",
        "/v1/public/acme/themes/hello",
        "/updates/acme/nope",
        "/v1/public/acme/plugins/hello/nightly",
        "/updates/acme/hello/weekly",
        "/api/v1/products/12345/update",
    ] {
        get(&server, path).await.expect_error(404, "not_found");
    }
    let edd = get(&server, "/edd/nobody?edd_action=get_version&item_id=1")
        .await
        .expect(200);
    assert_eq!(edd["new_version"], "");
    assert_eq!(edd["sections"], "");
    assert!(edd["msg"].is_string());
    // Unpublish the product: nothing to offer, still 200, the installed version echoed.
    patch(
        &server,
        &acme.token,
        &format!("/api/v1/products/{id}"),
        json!({"published": false}),
    )
    .await;
    let wu = get(
        &server,
        "/v1/public/acme/plugins/hello?installed_version=0.5.0",
    )
    .await
    .expect(200);
    assert_eq!(wu["version"], "0.5.0");
    assert!(wu.get("download_link").is_none());
    let puc = get(&server, "/updates/acme/hello").await.expect(200);
    assert_eq!(puc["version"], "0.0.0", "nothing sent, nothing visible");
    // The legacy download says why there is nothing to download.
    let legacy = get(&server, "/?action=download&slug=hello").await;
    let why = legacy.expect_error(403, "forbidden");
    assert_eq!(why, "no download: This product is not published");
    let edd = get(
        &server,
        &format!("/edd/acme?edd_action=get_version&item_id={id}"),
    )
    .await
    .expect(200);
    assert_eq!(edd["new_version"], "");
    // Asked by id again: the product's view as kept for its id (the same answer).
    let edd_url = format!("/edd/acme?edd_action=get_version&item_id={id}");
    assert_eq!(get(&server, &edd_url).await.expect(200), edd);
    // A non-semver installed version is still answered.
    patch(
        &server,
        &acme.token,
        &format!("/api/v1/products/{id}"),
        json!({"published": true}),
    )
    .await;
    // The view kept for the id is not served past the change: EDD sees it published.
    assert_eq!(
        get(&server, &edd_url).await.expect(200)["new_version"],
        "1.0.0"
    );
    let odd = get(&server, "/updates/acme/hello?installed_version=banana")
        .await
        .expect(200);
    assert_eq!(odd["version"], "1.0.0");
}

#[tokio::test]
async fn channels_rollout_and_requirements_choose_the_version() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let v = plugin_with(&server, &acme.token, "hello", &["1.0.0", "1.1.0-beta.1"]).await;
    let id = v["product"]["id"].as_u64().unwrap();
    assert_eq!(
        get(&server, "/updates/acme/hello").await.expect(200)["version"],
        "1.0.0"
    );
    assert_eq!(
        get(&server, "/updates/acme/hello/beta").await.expect(200)["version"],
        "1.1.0-beta.1"
    );
    assert_eq!(
        get(&server, "/updates/acme/hello/dev").await.expect(200)["version"],
        "1.1.0-beta.1"
    );
    assert_eq!(
        get(&server, "/updates/acme/hello/rc").await.expect(200)["version"],
        "1.0.0"
    );
    let beta = get(
        &server,
        &format!("/edd/acme?edd_action=get_version&item_id={id}&beta=1"),
    )
    .await
    .expect(200);
    assert_eq!(beta["new_version"], "1.1.0-beta.1");
    assert_eq!(beta["stable_version"], "1.0.0");

    // 1.2.0 at 10 %: a site in its bucket sees it, one outside does not, and one with
    // no site sees only fully rolled-out versions.
    let next = release(
        &server,
        &acme.token,
        plugin_zip("hello", "1.2.0", "x"),
        "?rollout=10",
    )
    .await;
    assert_eq!(next["rollout"], 10);
    let (inside, outside) = {
        let mut inside = None;
        let mut outside = None;
        for i in 0..200 {
            let site = format!("site{i}.example.org");
            if rollout_bucket(id, &site) < 10 {
                inside.get_or_insert(site)
            } else {
                outside.get_or_insert(site)
            };
        }
        (inside.unwrap(), outside.unwrap())
    };
    let check =
        |site: &str| format!("/updates/acme/hello?installed_version=1.0.0&url=https://{site}/");
    assert_eq!(
        get(&server, &check(&inside)).await.expect(200)["version"],
        "1.2.0"
    );
    assert_eq!(
        get(&server, &check(&outside)).await.expect(200)["version"],
        "1.0.0"
    );
    let anonymous = server
        .request(Method::GET, "/updates/acme/hello")
        .send()
        .await
        .expect(200);
    assert_eq!(anonymous["version"], "1.0.0");
    // Raising the rollout to 100 offers it to everyone; pulling it stops at once.
    let vid = next["id"].as_u64().unwrap();
    patch(
        &server,
        &acme.token,
        &format!("/api/v1/versions/{vid}"),
        json!({"rollout": 100}),
    )
    .await;
    assert_eq!(
        get(&server, &check(&outside)).await.expect(200)["version"],
        "1.2.0"
    );
    patch(
        &server,
        &acme.token,
        &format!("/api/v1/versions/{vid}"),
        json!({"published": false}),
    )
    .await;
    assert_eq!(
        get(&server, &check(&inside)).await.expect(200)["version"],
        "1.0.0"
    );

    // Requirements: a version needing PHP 8.1 is skipped for a PHP 7.4 site.
    let needy = release(&server, &acme.token, plugin_zip("hello", "1.3.0", "y"), "").await;
    let nid = needy["id"].as_u64().unwrap();
    patch(
        &server,
        &acme.token,
        &format!("/api/v1/versions/{nid}"),
        json!({"requires_php": "8.1"}),
    )
    .await;
    assert_eq!(
        get(&server, "/updates/acme/hello?php=7.4")
            .await
            .expect(200)["version"],
        "1.0.0"
    );
    assert_eq!(
        get(&server, "/updates/acme/hello?php=8.2")
            .await
            .expect(200)["version"],
        "1.3.0"
    );
    assert_eq!(
        get(&server, "/updates/acme/hello").await.expect(200)["version"],
        "1.3.0",
        "no PHP sent: not filtered"
    );
}

#[tokio::test]
async fn nothing_to_offer_shows_nothing_of_a_version_the_caller_may_not_see() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    // Only a beta: a stable check has nothing to offer, and must not show the beta's details.
    let beta = plugin_with(&server, &acme.token, "early", &["1.1.0-beta.1"]).await;
    let bid = beta["id"].as_u64().unwrap();
    patch(
        &server,
        &acme.token,
        &format!("/api/v1/versions/{bid}"),
        json!({"requires_php": "8.3", "tested": "6.9"}),
    )
    .await;
    let stable = get(&server, "/updates/acme/early?installed_version=1.0.0")
        .await
        .expect(200);
    assert_eq!(stable["version"], "1.0.0");
    assert_ne!(
        stable["requires_php"], "8.3",
        "the beta's details: {stable}"
    );
    assert_ne!(stable["tested"], "6.9", "the beta's details: {stable}");
    assert!(stable.get("download_url").is_none());
    let wu = get(&server, "/v1/public/acme/plugins/early")
        .await
        .expect(200);
    assert_eq!(wu["version"], "0.0.0");
    assert_ne!(wu["requires_php"], "8.3", "the beta's details: {wu}");
    // The beta channel sees it, details and all.
    let on_beta = get(&server, "/updates/acme/early/beta").await.expect(200);
    assert_eq!(on_beta["version"], "1.1.0-beta.1");
    assert_eq!(on_beta["requires_php"], "8.3");
}

#[tokio::test]
async fn edd_goes_by_name_when_item_id_is_zero_and_follows_a_renamed_product() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let v = plugin_with(&server, &acme.token, "hello", &["1.0.0", "1.1.0"]).await;
    let id = v["product"]["id"].as_u64().unwrap();
    // EDD's updater sends `item_id=0` (PHP's false) for a plugin set up by name alone.
    let by_name = |name: &str| {
        format!("edd_action=get_version&item_id=0&item_name={name}&version=1.0.0&slug=hello")
    };
    let post = |body: String| {
        server
            .request(Method::POST, "/edd/acme")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    assert_eq!(
        post(by_name("hello+Test")).await.expect(200)["new_version"],
        "1.1.0"
    );
    let id_text = "/edd/acme?edd_action=get_version&item_id=&item_name=hello%20Test";
    assert_eq!(
        get(&server, id_text).await.expect(200)["new_version"],
        "1.1.0"
    );
    // Renamed: the new name finds it at once, the old one no longer does.
    patch(
        &server,
        &acme.token,
        &format!("/api/v1/products/{id}"),
        json!({"name": "Greeting Plugin"}),
    )
    .await;
    assert_eq!(
        post(by_name("Greeting%20Plugin")).await.expect(200)["new_version"],
        "1.1.0"
    );
    let old = post(by_name("hello+Test")).await.expect(200);
    assert_eq!(old["new_version"], "", "{old}");
    // A real id still wins over a mismatching name; an unknown non-zero id is not found.
    let both = format!("/edd/acme?edd_action=get_version&item_id={id}&item_name=Other");
    assert_eq!(
        get(&server, &both).await.expect(200)["new_version"],
        "1.1.0"
    );
    let unknown = "/edd/acme?edd_action=get_version&item_id=999999999&item_name=Greeting+Plugin";
    assert_eq!(get(&server, unknown).await.expect(200)["new_version"], "");

    // The bare host asks `edd_action` first (SPEC §8.2), even beside `action=download`.
    let root = get(
        &server,
        &format!("/?edd_action=get_version&item_id={id}&action=download&slug=hello"),
    )
    .await;
    assert_eq!(root.header("content-disposition"), None, "{root:?}");
    assert_eq!(root.expect(200)["new_version"], "1.1.0");
}

#[tokio::test]
async fn the_bare_host_serves_the_default_account_which_set_default_changes() {
    let server = TestServer::start().await;
    let first = server.account("first");
    let second = server.account("second");
    plugin_with(&server, &first.token, "shared", &["1.0.0"]).await;
    plugin_with(&server, &second.token, "shared", &["2.0.0"]).await;
    let meta = get(&server, "/?action=get_metadata&slug=shared")
        .await
        .expect(200);
    assert_eq!(
        meta["version"], "1.0.0",
        "the first account created is the default"
    );
    let ctx = server.app().ctx(None, server.now());
    upkeep::service::accounts::set_default(&ctx, "second")
        .unwrap()
        .durable_blocking()
        .unwrap();
    let meta = get(&server, "/?action=get_metadata&slug=shared")
        .await
        .expect(200);
    assert_eq!(meta["version"], "2.0.0");
    let edd = get(&server, "/?edd_action=get_version&slug=shared")
        .await
        .expect(200);
    assert_eq!(edd["new_version"], "2.0.0");
    let unknown = upkeep::service::accounts::set_default(&ctx, "nobody")
        .err()
        .unwrap();
    assert_eq!(unknown.status(), 404);
    // Deleting the default falls back to the oldest remaining account.
    upkeep::service::accounts::delete(&ctx, "second")
        .unwrap()
        .durable_blocking()
        .unwrap();
    let meta = get(&server, "/?action=get_metadata&slug=shared")
        .await
        .expect(200);
    assert_eq!(meta["version"], "1.0.0");
}

#[tokio::test]
async fn odd_keys_odd_channels_and_heads_are_answered_as_spec_says() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let v = plugin_with(&server, &acme.token, "paid", &["2.0.0"]).await;
    let id = v["product"]["id"].as_u64().unwrap();
    static_keys(&server, &acme.token, "paid").await;
    // Keys with characters outside the URL-safe set: not found, announced, no link, a 200.
    let odd = get(
        &server,
        "/v1/public/acme/plugins/paid?key=%3Cscript%3E%20%C3%BC%00",
    )
    .await
    .expect(200);
    assert_eq!(odd["version"], "2.0.0");
    assert_eq!(odd["license"], json!({"valid": false, "code": "not_found"}));
    assert!(odd.get("download_link").is_none());
    let header = server
        .request(Method::GET, "/updates/acme/paid")
        .header("x-license-key", "<\"{}|^`>")
        .send()
        .await
        .expect(200);
    assert_eq!(header["license"]["code"], "not_found", "{header}");
    assert!(header.get("download_url").is_none());
    let edd = get(
        &server,
        "/edd/acme?edd_action=get_version&item_name=paid%20Test&license=%E2%9C%93%25",
    )
    .await
    .expect(200);
    assert_eq!(edd["new_version"], "2.0.0");
    assert_eq!(edd["package"], "", "{edd}");

    // A batch item on a channel that is not one of the five: a 400 naming it.
    let batch = server
        .request(Method::POST, "/v1/public/acme/check")
        .body(
            json!({"items": [{"slug": "paid", "version": "1.0.0", "channel": "nightly"}]})
                .to_string(),
        )
        .send()
        .await;
    let why = batch.expect_error(400, "invalid_request");
    assert!(why.contains("channel"), "{why}");

    // HEAD answers as GET does, without the body.
    let head = server
        .request(Method::HEAD, "/updates/acme/paid")
        .send()
        .await;
    assert_eq!(head.status, 200, "{head:?}");
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-type"), Some("application/json"));
    // ...and is not counted as a site's check: the three GETs above are.
    let counted = server.counted(id);
    assert_eq!(counted.checks, 3, "{counted:?}");
}

#[tokio::test]
async fn edd_batches_answer_per_slug_and_malformed_ones_still_get_a_200() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    plugin_with(&server, &acme.token, "alpha", &["1.0.0"]).await;
    plugin_with(&server, &acme.token, "beta", &["2.0.0"]).await;
    let form = "edd_action=get_version&products%5Balpha%5D%5Bslug%5D=alpha&products%5Balpha%5D%5Bversion%5D=0.9&products%5Bbeta%5D%5Bslug%5D=beta&products%5Bnope%5D%5Bslug%5D=nope";
    let batch = server
        .request(Method::POST, "/edd/acme/")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect(200);
    assert_eq!(batch["alpha"]["new_version"], "1.0.0", "{batch}");
    assert_eq!(batch["beta"]["new_version"], "2.0.0");
    assert_eq!(batch["nope"]["new_version"], "");
    let too_many: String = (0..101)
        .map(|i| format!("&products%5Bs{i}%5D%5Bslug%5D=s{i}"))
        .collect();
    let refused = server
        .request(Method::POST, "/edd/acme")
        .body(format!("edd_action=get_version{too_many}"))
        .send()
        .await
        .expect(200);
    assert_eq!(refused["new_version"], "");
    assert!(refused["msg"].as_str().unwrap().contains("100"));
    let malformed = server
        .request(Method::POST, "/edd/acme")
        .body("edd_action=get_version&products%5Bbroken=1")
        .send()
        .await
        .expect(200);
    assert_eq!(malformed["new_version"], "");
}

#[tokio::test]
async fn links_are_built_from_public_url_or_from_forwarded_headers_behind_a_trusted_proxy() {
    let server = TestServer::start_with(upkeep::Settings {
        public_url: Some("https://updates.example.com".to_owned()),
        auth_failures_per_minute: 0,
        ..upkeep::Settings::default()
    })
    .await;
    let acme = server.account("acme");
    plugin_with(&server, &acme.token, "hello", &["1.0.0"]).await;
    let doc = get(&server, "/updates/acme/hello").await;
    no_store(&doc);
    let doc = doc.expect(200);
    assert!(
        doc["download_url"]
            .as_str()
            .unwrap()
            .starts_with("https://updates.example.com/dl/"),
        "{doc}"
    );

    let proxied = TestServer::start_with(upkeep::Settings {
        trust_proxy: true,
        auth_failures_per_minute: 0,
        ..upkeep::Settings::default()
    })
    .await;
    let acme = proxied.account("acme");
    plugin_with(&proxied, &acme.token, "hello", &["1.0.0"]).await;
    let doc = proxied
        .request(Method::GET, "/updates/acme/hello")
        .header("x-forwarded-host", "cdn.example.net")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect(200);
    assert!(
        doc["download_url"]
            .as_str()
            .unwrap()
            .starts_with("https://cdn.example.net/dl/"),
        "{doc}"
    );
    // Without --trust-proxy the forwarded headers are ignored, and a hostile Host is not
    // copied into links.
    let plain = link_for_a_hostile_host().await;
    assert!(plain.starts_with("http://localhost/dl/"), "{plain}");
}

/// A `--public-url` with characters JSON must escape: every dialect's answer is still
/// valid JSON carrying the link as the URL says (the link is not written raw).
#[tokio::test]
async fn a_public_url_with_quotes_and_backslashes_is_escaped_in_every_link() {
    let base = "https://updates.example.com/a\"b\\c";
    let server = TestServer::start_with(upkeep::Settings {
        public_url: Some(base.to_owned()),
        auth_failures_per_minute: 0,
        ..upkeep::Settings::default()
    })
    .await;
    let acme = server.account("acme");
    let v = plugin_with(&server, &acme.token, "hello", &["1.0.0", "1.1.0"]).await;
    let id = v["product"]["id"].as_u64().unwrap();
    let prefix = format!("{base}/dl/");
    let wu = get(&server, "/v1/public/acme/plugins/hello")
        .await
        .expect(200);
    let puc = get(&server, "/updates/acme/hello?installed_version=1.0.0")
        .await
        .expect(200);
    let edd = get(
        &server,
        &format!("/edd/acme/?edd_action=get_version&item_id={id}&version=1.0.0"),
    )
    .await
    .expect(200);
    for (name, link) in [
        ("wu", &wu["download_link"]),
        ("puc", &puc["download_url"]),
        ("edd download_link", &edd["download_link"]),
        ("edd package", &edd["package"]),
    ] {
        assert!(
            link.as_str().is_some_and(|l| l.starts_with(&prefix)),
            "{name}: {link}"
        );
    }
}

/// A link asked for with a Host header that is no host name.
async fn link_for_a_hostile_host() -> String {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    plugin_with(&server, &acme.token, "hello", &["1.0.0"]).await;
    let doc = server
        .request(Method::GET, "/updates/acme/hello")
        .header("x-forwarded-host", "evil.example")
        .send()
        .await;
    let doc = doc.expect(200);
    let normal = doc["download_url"].as_str().unwrap().to_owned();
    assert!(!normal.contains("evil"), "{normal}");
    // hyper's client always sends our Host; a raw request sends a hostile one.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"GET /updates/acme/hello HTTP/1.1\r\nhost: a\"b<c>\r\nconnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let doc: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
    doc["download_url"].as_str().unwrap().to_owned()
}
