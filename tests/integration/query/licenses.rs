//! `/_/license`: plan licenses issued, applied, listed and revoked.

use super::{DAY_MS, accounts, at, delete, licenses, ms, post, single};
use crate::support::{START, TestServer};
use serde_json::{Value, json};

#[tokio::test]
async fn plan_licenses_are_issued_applied_listed_and_revoked() {
    let server = TestServer::start().await;
    let boss = server.operator_token("root", true, true, None);
    let acme = server.account("acme");

    let item = single(
        &post(&server, "/_/license", &boss, json!({"limit": 10})).await,
        201,
    );
    let key = item["key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("upk_pl_"), "{key}");
    assert_eq!(key.len(), upkeep::token::TOKEN_LEN);
    let id = item["id"].as_u64().expect("numeric id");
    let mut view = item.clone();
    view.as_object_mut().unwrap().remove("key");
    assert_eq!(
        view,
        json!({
            "id": id,
            "limit": 10,
            "expiration_date": null,
            "expired": false,
            "account": null,
            "created_at": ms(START),
        })
    );
    let expiring_at = at(365 * DAY_MS);
    let expiring = single(
        &post(
            &server,
            "/_/license",
            &boss,
            json!({"limit": 25, "expiration_date": expiring_at}),
        )
        .await,
        201,
    );
    assert_eq!(expiring["expiration_date"], expiring_at);
    assert_eq!(expiring["limit"], 25);
    assert_ne!(expiring["id"], id);
    assert_ne!(expiring["key"], key.as_str());

    // An account applies the key.
    let body = server
        .post("/v1/account/license", &acme.token, json!({"license": key}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        body,
        json!({"status": 200, "license": {"limit": 10, "expires": null}})
    );
    let body = server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(body["account"]["activationLimit"], 10);

    let listed = licenses(&server, &boss).await;
    assert_eq!(listed.len(), 2);
    let applied = listed.iter().find(|l| l["id"] == id).unwrap();
    assert_eq!(applied["account"], "acme");
    assert_eq!(applied["limit"], 10);
    let acme_view = accounts(&server, &boss)
        .await
        .into_iter()
        .find(|a| a["prefix"] == "acme")
        .unwrap();
    assert_eq!(acme_view["license_id"], id);
    assert_eq!(acme_view["activation_limit"], 10);

    // Refusals change nothing.
    for (body, status, code, needle) in [
        (json!({"limit": 0}), 400, "invalid_request", "limit"),
        (json!({"limit": -1}), 400, "invalid_request", "limit"),
        (json!({"limit": "10"}), 400, "invalid_request", "limit"),
        (json!({}), 400, "invalid_request", "`limit`"),
        (
            json!({"limit": 5, "expiration_date": ms(START) - 1}),
            400,
            "invalid_request",
            "expiration_date",
        ),
        (
            json!({"limit": 5, "expiration_date": ms(START)}),
            400,
            "invalid_request",
            "expiration_date",
        ),
        (
            json!({"limit": 5, "account": "acme"}),
            400,
            "invalid_request",
            "`account`",
        ),
    ] {
        let message = post(&server, "/_/license", &boss, body.clone())
            .await
            .expect_error(status, code);
        assert!(
            message.contains(needle),
            "{body}: message {message:?} lacks {needle:?}"
        );
    }
    for body in [json!({"id": id + 1_000_000}), json!({"id": 0})] {
        delete(&server, "/_/license", &boss, body)
            .await
            .expect_error(404, "not_found");
    }
    for body in [json!({}), json!({"id": "1"}), json!({"id": -1})] {
        delete(&server, "/_/license", &boss, body)
            .await
            .expect_error(400, "invalid_request");
    }
    assert_eq!(licenses(&server, &boss).await, listed, "nothing changed");

    // Revoke: the account falls back to the default limit.
    let item = single(
        &delete(&server, "/_/license", &boss, json!({"id": id})).await,
        200,
    );
    assert_eq!(item["id"], id);
    assert!(item.get("key").is_none(), "the key is not shown again");
    let body = server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        body["account"]["activationLimit"], 0,
        "0 = unlimited, the default (SPEC §1)"
    );
    let body = server
        .get("/v1/account/license", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(body, json!({"status": 200, "license": null}));
    let acme_view = accounts(&server, &boss)
        .await
        .into_iter()
        .find(|a| a["prefix"] == "acme")
        .unwrap();
    assert_eq!(acme_view["license_id"], Value::Null);
    assert_eq!(acme_view["activation_limit"], 0);
    assert!(licenses(&server, &boss).await.iter().all(|l| l["id"] != id));
    // A revoked key cannot be applied again; revoking again is 404.
    server
        .post("/v1/account/license", &acme.token, json!({"license": key}))
        .send()
        .await
        .expect_error(400, "invalid_license");
    delete(&server, "/_/license", &boss, json!({"id": id}))
        .await
        .expect_error(404, "not_found");
}
