//! SPEC §9: keys are found through the store's in-memory key index (lookup hash → key id,
//! `store/key_index.rs`), so every change to the keys must reach it with its commit: a
//! key deleted, or taken away with its customer, stops validating at once; a key issued
//! again with the same value (a new record) or a new key validates at once, as the new
//! record says; another product's deletion leaves keys alone; and all of it holds after a
//! restart, whether the index is rebuilt from the store or read from the snapshot.
//!
//! The licensed update check answers from the in-memory activation index
//! (`store/activation_index.rs`: each key's facts and activated sites), so an activation
//! made, then deleted through the admin API, changes the check's answer at once, and
//! after a restart too.

use super::licensing::{Shop, admin, enc, key, settings, shop};
use super::{get, patch, plugin_with};
use crate::support::TestServer;
use http::Method;
use serde_json::{Value, json};

/// The UpdaterCloud check of `k` for `product`: the code and, when the key is found, its
/// activation limit.
async fn check(server: &TestServer, product: u64, k: &str) -> (String, Value) {
    let reply = server
        .request(
            Method::GET,
            &format!(
                "/api/v1/products/{product}/download-keys/check?download_key={}",
                enc(k)
            ),
        )
        .send()
        .await;
    let status = reply.status.as_u16();
    let body = reply.expect(if status == 200 { 200 } else { 404 });
    (
        body["code"].as_str().unwrap_or_default().to_owned(),
        body["download_key"]["activations"]["limit"].clone(),
    )
}

async fn delete(server: &TestServer, shop: &Shop, path: &str) {
    admin(server, Method::DELETE, path, &shop.token, Value::Null)
        .await
        .expect(204);
}

async fn customer_of(server: &TestServer, shop: &Shop, id: u64) -> u64 {
    admin(
        server,
        Method::GET,
        &format!("/api/v1/download-keys/{id}"),
        &shop.token,
        Value::Null,
    )
    .await
    .expect(200)["data"]["customer_id"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn deleted_reissued_and_cascaded_keys_answer_at_once_and_after_restarts() {
    let server = TestServer::start_with(settings()).await;
    let acme = shop(&server, "acme").await;
    let p = acme.product;
    let (first, value) = key(&server, &acme, &[p], json!({"activation_limit": 1})).await;
    let (_, kept) = key(&server, &acme, &[p, acme.other], json!({})).await;
    assert_eq!(check(&server, p, &value).await, ("valid".into(), json!(1)));

    // Deleted: not found at once.
    delete(&server, &acme, &format!("/api/v1/download-keys/{first}")).await;
    assert_eq!(check(&server, p, &value).await.0, "not_found");

    // Issued again with the same value: a new record (another limit), valid at once.
    let (second, again) = key(
        &server,
        &acme,
        &[p],
        json!({"key": value, "activation_limit": 3}),
    )
    .await;
    assert_eq!(again, value);
    assert_ne!(second, first);
    assert_eq!(check(&server, p, &value).await, ("valid".into(), json!(3)));

    // Replaced by a fresh key for the same customer: the old one goes, the new one works.
    let customer = customer_of(&server, &acme, second).await;
    let made = admin(
        &server,
        Method::POST,
        "/api/v1/download-keys",
        &acme.token,
        json!({"customer_id": customer, "product_ids": [p], "activation_limit": 2}),
    )
    .await
    .expect(201);
    let fresh = made["data"]["key"].as_str().unwrap().to_owned();
    delete(&server, &acme, &format!("/api/v1/download-keys/{second}")).await;
    assert_eq!(check(&server, p, &value).await.0, "not_found");
    assert_eq!(check(&server, p, &fresh).await, ("valid".into(), json!(2)));

    // Another product's deletion changes no key's lookup; the customer's deletion takes
    // its keys.
    delete(&server, &acme, &format!("/api/v1/products/{}", acme.other)).await;
    assert_eq!(check(&server, p, &kept).await.0, "valid");
    delete(&server, &acme, &format!("/api/v1/customers/{customer}")).await;
    assert_eq!(check(&server, p, &fresh).await.0, "not_found");
    assert_eq!(check(&server, p, &kept).await.0, "valid");

    // Restarts: the index rebuilt from the store, then read from a current snapshot.
    let clock = server.clock.clone();
    let (dir, path) = server.stop().await;
    for from_snapshot in [false, true] {
        if from_snapshot {
            let store = upkeep::Store::open(&path).unwrap();
            assert!(store.save_index_snapshot().unwrap());
            drop(store);
            let found = upkeep::store::inspect(&path).unwrap();
            assert_eq!(found.snapshot, upkeep::store::SnapshotState::Current);
        }
        let server = TestServer::start_in(&path, clock.clone(), settings()).await;
        assert_eq!(check(&server, p, &kept).await.0, "valid", "{from_snapshot}");
        assert_eq!(check(&server, p, &fresh).await.0, "not_found");
        assert_eq!(check(&server, p, &value).await.0, "not_found");
        server.stop().await;
    }
    drop(dir);
}

/// The WunderUpdates check of `slug` with key `k` from `site` (its WordPress User-Agent):
/// the license code, and whether a download link is offered.
async fn update_check(server: &TestServer, slug: &str, k: &str, site: &str) -> (String, bool) {
    let body = server
        .request(
            Method::GET,
            &format!(
                "/v1/public/acme/plugins/{slug}?version=1.0.0&key={}",
                enc(k)
            ),
        )
        .header("user-agent", &format!("WordPress/6.7; https://{site}"))
        .send()
        .await
        .expect(200);
    // `{"valid": true}`, or the refusal's code.
    let license = &body["license"];
    let code = if license["valid"] == true {
        "valid".to_owned()
    } else {
        license["code"].as_str().unwrap_or_default().to_owned()
    };
    (code, body["download_link"].is_string())
}

#[tokio::test]
async fn an_activation_deleted_by_the_admin_makes_the_licensed_check_site_inactive_at_once() {
    let server = TestServer::start_with(settings()).await;
    let acme = shop(&server, "acme").await;
    let made = plugin_with(&server, &acme.token, "pro", &["3.0.0"]).await;
    let pid = made["product"]["id"].as_u64().unwrap();
    patch(
        &server,
        &acme.token,
        &format!("/api/v1/products/{pid}"),
        json!({"license": "download_keys", "require_activation": true}),
    )
    .await;
    let (kid, k) = key(&server, &acme, &[pid], json!({"activation_limit": 2})).await;
    assert_eq!(
        update_check(&server, "pro", &k, "example.com").await,
        ("site_inactive".into(), false)
    );

    // Activated (the holder's activation), for this site only: a link at once.
    let activate = |site: &str| {
        format!(
            "/api/v1/products/{pid}/download-keys/activate?download_key={}&domain={site}",
            enc(&k)
        )
    };
    assert_eq!(
        get(&server, &activate("example.com")).await.expect(200)["activated"],
        true
    );
    assert_eq!(
        get(&server, &activate("other.org")).await.expect(200)["activated"],
        true
    );
    assert_eq!(
        update_check(&server, "pro", &k, "www.Example.com/shop").await,
        ("valid".into(), true)
    );
    assert_eq!(
        update_check(&server, "pro", &k, "elsewhere.net").await,
        ("site_inactive".into(), false)
    );

    // Deleted through the admin API: site_inactive at once; the other site stays.
    let listed = admin(
        &server,
        Method::GET,
        &format!("/api/v1/download-keys/{kid}/activations"),
        &acme.token,
        Value::Null,
    )
    .await
    .expect(200);
    let id = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["site"] == "example.com")
        .unwrap_or_else(|| panic!("{listed}"))["id"]
        .as_u64()
        .unwrap();
    delete(&server, &acme, &format!("/api/v1/activations/{id}")).await;
    assert_eq!(
        update_check(&server, "pro", &k, "example.com").await,
        ("site_inactive".into(), false)
    );
    assert_eq!(
        update_check(&server, "pro", &k, "other.org").await,
        ("valid".into(), true)
    );

    // After restarts (the index built again from the store, with and without a snapshot).
    let clock = server.clock.clone();
    let (dir, path) = server.stop().await;
    for from_snapshot in [false, true] {
        if from_snapshot {
            let store = upkeep::Store::open(&path).unwrap();
            assert!(store.save_index_snapshot().unwrap());
            drop(store);
        }
        let server = TestServer::start_in(&path, clock.clone(), settings()).await;
        assert_eq!(
            update_check(&server, "pro", &k, "example.com").await,
            ("site_inactive".into(), false),
            "{from_snapshot}"
        );
        assert_eq!(
            update_check(&server, "pro", &k, "other.org").await,
            ("valid".into(), true)
        );
        server.stop().await;
    }
    drop(dir);
}
