//! SPEC §10 counting: update checks, downloads and validations are counted in memory and
//! reach the stored daily rollups in the background — at graceful shutdown, and every
//! `report_flush_every` while serving (a failed flush keeps them for the next).

use super::{get, plugin_with};
use crate::support::{START, TestServer};
use http::Method;
use std::time::Duration;
use upkeep::model::{AccountPrefix, Day, DayRollup, ProductId};
use upkeep::{Settings, Store};

fn settings(flush_every: Duration) -> Settings {
    Settings {
        auth_failures_per_minute: 0,
        report_flush_every: flush_every,
        ..Settings::default()
    }
}

/// The path of an absolute link.
fn path_of(link: &str) -> String {
    let rest = link.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_owned()
}

fn stored(store: &Store, product: u64) -> Vec<(Day, DayRollup)> {
    store
        .rollups(
            &AccountPrefix::parse("acme").unwrap(),
            ProductId(product),
            Day(0),
            Day(u32::MAX),
        )
        .unwrap()
}

/// `checks` update checks of acme's plugin `hello`, `downloads` downloads of its file and
/// one UpdaterCloud key check with an unknown key; returns the product id.
async fn traffic(server: &TestServer, checks: usize, downloads: usize) -> u64 {
    let acme = server.account("acme");
    let v = plugin_with(server, &acme.token, "hello", &["1.0.0"]).await;
    let id = v["product"]["id"].as_u64().unwrap();
    let mut link = String::new();
    for _ in 0..checks {
        let doc = get(server, "/updates/acme/hello").await.expect(200);
        link = path_of(doc["download_url"].as_str().unwrap());
    }
    for _ in 0..downloads {
        let file = server.request(Method::GET, &link).send().await;
        assert_eq!(file.status, 200, "{file:?}");
    }
    let unknown = get(
        server,
        &format!("/api/v1/products/{id}/download-keys/check?download_key=no-such-key-000"),
    )
    .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    id
}

#[tokio::test]
async fn counts_reach_the_store_at_graceful_shutdown() {
    // No periodic flush during the test: only the shutdown can store the counts.
    let server = TestServer::start_with(settings(Duration::from_secs(3600))).await;
    let id = traffic(&server, 5, 3).await;
    assert!(stored(server.store(), id).is_empty(), "not flushed yet");
    let counted = server.counted(id);
    assert_eq!((counted.checks, counted.downloads), (5, 3), "{counted:?}");

    let (_dir, path) = server.stop().await;
    let store = Store::open(&path).unwrap();
    let days = stored(&store, id);
    assert_eq!(days.len(), 1, "{days:?}");
    let (day, rollup) = days[0];
    assert_eq!(day, Day::of(START));
    assert_eq!(rollup.checks, 5);
    assert_eq!(rollup.downloads, 3);
    let mut validations = [0; 10];
    validations[1] = 1; // not_found
    assert_eq!(rollup.validations, validations);
    assert_eq!(rollup.activations, [0; 10]);
}

/// Waits until `done` holds, checking it again each time a report flush ends (only a
/// flush changes what these tests wait for), for up to 20 s.
async fn eventually(server: &TestServer, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        // Registered before `done` is checked, so a flush ending in between is not missed.
        let flushed = server.app().public.counts.flush_ended().notified();
        let mut flushed = std::pin::pin!(flushed);
        flushed.as_mut().enable();
        if done() {
            return;
        }
        tokio::time::timeout_at(deadline, flushed)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
    }
}

#[tokio::test]
async fn counts_are_flushed_periodically_and_kept_while_the_store_refuses_them() {
    let server = TestServer::start_with(settings(Duration::from_millis(50))).await;
    let id = traffic(&server, 2, 1).await;
    eventually(&server, "the periodic flush stores the counts", || {
        stored(server.store(), id)
            .first()
            .is_some_and(|(_, r)| (r.checks, r.downloads, r.validations[1]) == (2, 1, 1))
    })
    .await;
    let operator = server.operator_token("metrics", true, false, None);
    let metrics = || async {
        let reply = server
            .request(Method::GET, "/metrics")
            .header("authorization", &format!("Bearer {operator}"))
            .send()
            .await;
        String::from_utf8_lossy(&reply.body).into_owned()
    };
    let text = metrics().await;
    assert!(
        !text.contains("upkeep_report_flushes_total{result=\"ok\"} 0"),
        "{text}"
    );

    // The disk is "full": flushes fail, the counts stay in memory and readable.
    server.store().set_reserve(u64::MAX);
    get(&server, "/updates/acme/hello").await.expect(200);
    eventually(&server, "a flush fails", || {
        server.app().public.counts.flush_totals().1 > 0
    })
    .await;
    assert!(
        !metrics()
            .await
            .contains("upkeep_report_flushes_total{result=\"failed\"} 0")
    );
    assert_eq!(stored(server.store(), id)[0].1.checks, 2);
    assert_eq!(server.counted(id).checks, 3, "stored + kept in memory");

    // Room again: the next flush stores what the failed ones kept.
    server.store().set_reserve(0);
    eventually(&server, "the kept counts are stored", || {
        stored(server.store(), id)[0].1.checks == 3
    })
    .await;
    assert_eq!(server.counted(id).checks, 3, "counted once");
    server.stop().await;
}

#[tokio::test]
async fn a_deleted_accounts_unflushed_counts_never_reach_an_account_that_takes_its_prefix() {
    let server = TestServer::start_with(settings(Duration::from_secs(3600))).await;
    let id = traffic(&server, 4, 1).await;
    assert_eq!(server.counted(id).checks, 4);
    // The account is deleted (through the service, so the event bus hears of it) and a
    // new one takes its prefix before any flush.
    let app = server.app();
    upkeep::service::write(
        &app.store,
        &app.events,
        upkeep::service::Actor::Cli,
        None,
        server.now(),
        |ctx| upkeep::service::accounts::delete(ctx, "acme"),
    )
    .await
    .unwrap();
    server.account("acme");
    let (_dir, path) = server.stop().await;
    let store = Store::open(&path).unwrap();
    assert!(
        stored(&store, id).is_empty(),
        "the old account's counts went with it"
    );
}

#[tokio::test]
async fn a_files_downloads_are_counted_and_stored_with_the_rollups() {
    // SPEC §7 *File* `downloads`: what the public routes served from byte 0, shown at once
    // (stored + not yet flushed) and stored by the flush.
    let server = TestServer::start_with(settings(Duration::from_secs(3600))).await;
    let acme = server.account("acme");
    let v = plugin_with(&server, &acme.token, "hello", &["1.0.0"]).await;
    let file = v["files"][0]["id"].as_u64().unwrap();
    assert_eq!(v["files"][0]["downloads"], 0);
    let doc = get(&server, "/updates/acme/hello").await.expect(200);
    let link = path_of(doc["download_url"].as_str().unwrap());
    for _ in 0..2 {
        assert_eq!(server.request(Method::GET, &link).send().await.status, 200);
    }
    // Neither a HEAD nor a resumed range is a download.
    assert_eq!(server.request(Method::HEAD, &link).send().await.status, 200);
    let resumed = server
        .request(Method::GET, &link)
        .header("range", "bytes=5-")
        .send()
        .await;
    assert_eq!(resumed.status, 206);
    // The legacy download at the bare host counts too.
    assert_eq!(
        get(&server, "/?action=download&slug=hello").await.status,
        200
    );
    let shown = server
        .request(Method::GET, &format!("/api/v1/files/{file}"))
        .header("authorization", &format!("Bearer {}", acme.token))
        .send()
        .await
        .expect(200);
    assert_eq!(
        shown["data"]["downloads"], 3,
        "not flushed yet, shown at once"
    );
    let vid = v["id"].as_u64().unwrap();
    let version = server
        .request(Method::GET, &format!("/api/v1/versions/{vid}"))
        .header("authorization", &format!("Bearer {}", acme.token))
        .send()
        .await
        .expect(200);
    assert_eq!(version["data"]["files"][0]["downloads"], 3);

    let (_dir, path) = server.stop().await;
    let store = Store::open(&path).unwrap();
    let release = store
        .release_of_file(
            &AccountPrefix::parse("acme").unwrap(),
            upkeep::model::FileId(file),
        )
        .unwrap()
        .unwrap();
    let record = release.file(upkeep::model::FileId(file)).unwrap();
    assert_eq!(record.downloads, 3, "stored by the shutdown's flush");
}
