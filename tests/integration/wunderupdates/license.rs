//! `/v1/account/license`: applying, re-applying and replacing a plan license, and its
//! refusals (400, 409) that leave the binding as it was.

use super::DAY;
use crate::support::{START, TestServer};
use serde_json::{Value, json};
use upkeep::model::Timestamp;

#[tokio::test]
async fn plan_license_apply_replace_and_refusals() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let globex = server.account("globex");
    let in_a_day = Timestamp::from_secs(START.as_secs() + DAY);
    let (_, ten) = server.license(10, Some(in_a_day));
    let (_, twenty) = server.license(20, None);
    let (_, expired) = server.license(30, Some(START));
    let (revoked_id, revoked) = server.license(40, None);
    server
        .store()
        .revoke_license(upkeep::model::LicenseId(revoked_id), server.now())
        .unwrap()
        .durable_blocking()
        .unwrap();

    let body = server
        .get("/v1/account/license", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(body, json!({"status": 200, "license": null}));

    let body = server
        .post("/v1/account/license", &acme.token, json!({"license": ten}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        body,
        json!({"status": 200, "license": {"limit": 10, "expires": START.as_secs() + DAY}})
    );
    assert_eq!(
        server
            .get("/v1/account/license", &acme.token)
            .send()
            .await
            .expect(200),
        body
    );
    let account = server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(account["account"]["activationLimit"], 10);
    // Applying it again changes nothing.
    server
        .post("/v1/account/license", &acme.token, json!({"license": ten}))
        .send()
        .await
        .expect(200);

    // Refusals, none of which changes the binding.
    let cases = [
        (json!({"license": "not-a-key"}), 400, "invalid_license"),
        (json!({"license": revoked}), 400, "invalid_license"),
        (json!({"license": acme.token}), 400, "invalid_license"),
        (json!({"license": expired}), 400, "license_expired"),
        (json!({"license": 42}), 400, "invalid_request"),
        (json!({}), 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        server
            .post("/v1/account/license", &acme.token, body)
            .send()
            .await
            .expect_error(status, code);
    }
    server
        .post(
            "/v1/account/license",
            &globex.token,
            json!({"license": ten}),
        )
        .send()
        .await
        .expect_error(409, "license_in_use");
    assert_eq!(
        server
            .get("/v1/account/license", &acme.token)
            .send()
            .await
            .expect(200)["license"]["limit"],
        10
    );
    assert_eq!(
        server
            .get("/v1/account/license", &globex.token)
            .send()
            .await
            .expect(200)["license"],
        Value::Null
    );

    // Replacing frees the old license for another account.
    let body = server
        .post(
            "/v1/account/license",
            &acme.token,
            json!({"license": twenty}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(body["license"], json!({"limit": 20, "expires": null}));
    server
        .post(
            "/v1/account/license",
            &globex.token,
            json!({"license": ten}),
        )
        .send()
        .await
        .expect(200);
    let globex_account = server
        .get("/v1/account", &globex.token)
        .send()
        .await
        .expect(200);
    assert_eq!(globex_account["account"]["activationLimit"], 10);
}
