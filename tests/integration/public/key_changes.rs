//! SPEC §9: keys are found through the store's in-memory key index (lookup hash → key id,
//! `store/key_index.rs`), so every change to the keys must reach it with its commit: a
//! key deleted, or taken away with its customer, stops validating at once; a key issued
//! again with the same value (a new record) or a new key validates at once, as the new
//! record says; another product's deletion leaves keys alone; and all of it holds after a
//! restart, whether the index is rebuilt from the store or read from the snapshot.

use super::licensing::{Shop, admin, enc, key, settings, shop};
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
