//! `/_/account`: accounts created, listed and deleted, the refusals that change nothing, and
//! that deleting an account frees its plan license.

use super::{accounts, delete, get, keys, licenses, ms, post, single};
use crate::support::{START, TestServer};
use serde_json::{Value, json};

#[tokio::test]
async fn accounts_are_created_listed_and_deleted() {
    let server = TestServer::start().await;
    let boss = server.operator_token("root", true, true, None);

    let reply = post(
        &server,
        "/_/account",
        &boss,
        json!({"name": "Acme Inc", "email": "ops@acme.test", "prefix": "acme"}),
    )
    .await;
    let item = single(&reply, 201);
    let first = item["token"].clone();
    assert_eq!(first["name"], "default");
    assert_eq!(first["scopes"], json!(["api"]));
    let acme_token = first["token"].as_str().expect("token").to_owned();
    assert!(acme_token.starts_with("upk_at_"), "{acme_token}");
    assert_eq!(keys(&first), ["name", "scopes", "token"]);
    let mut account = item.clone();
    account.as_object_mut().unwrap().remove("token");
    assert_eq!(
        account,
        json!({
            "prefix": "acme",
            "name": "Acme Inc",
            "email": "ops@acme.test",
            "activation_limit": 0,
            "license_id": null,
            "created_at": ms(START),
            "updated_at": ms(START),
        })
    );

    // The first token works on the account APIs.
    let body = server
        .get("/v1/account", &acme_token)
        .send()
        .await
        .expect(200);
    assert_eq!(body["account"]["prefix"], "acme");
    let me = get(&server, "/api/v1/me", &acme_token).await.expect(200);
    assert_eq!(
        me,
        json!({"name": "Acme Inc", "email": "ops@acme.test", "account": "acme"})
    );
    let ci = server.token(
        &crate::support::TestAccount {
            prefix: "acme".to_owned(),
            token: acme_token.clone(),
        },
        "ci",
        &["read_user"],
        None,
    );

    // Without a prefix, one is made up: 8 of [a-z0-9].
    let item = single(
        &post(
            &server,
            "/_/account",
            &boss,
            json!({"name": "Globex", "email": "it@globex.test"}),
        )
        .await,
        201,
    );
    let globex = item["prefix"].as_str().unwrap().to_owned();
    assert_eq!(globex.len(), 8, "{globex}");
    assert!(
        globex
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{globex}"
    );
    let globex_token = item["token"]["token"].as_str().unwrap().to_owned();
    let body = server
        .get("/v1/account", &globex_token)
        .send()
        .await
        .expect(200);
    assert_eq!(body["account"]["prefix"], globex.as_str());

    // The list: both, without tokens.
    let listed = accounts(&server, &boss).await;
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|a| a.get("token").is_none()));
    let acme_view = listed.iter().find(|a| a["prefix"] == "acme").unwrap();
    assert_eq!(*acme_view, account);

    // Refusals change nothing.
    let long_name = "n".repeat(300);
    for (body, status, code, needle) in [
        (
            json!({"name": "Again", "email": "a@b.test", "prefix": "acme"}),
            409,
            "conflict",
            "acme",
        ),
        (
            json!({"name": "Bad", "email": "not-an-email", "prefix": "bad"}),
            400,
            "invalid_request",
            "email",
        ),
        (
            json!({"name": "Bad", "email": "a@localhost", "prefix": "bad"}),
            400,
            "invalid_request",
            "email",
        ),
        (
            json!({"name": "Bad", "email": "a@b.test", "prefix": "AB"}),
            400,
            "invalid_request",
            "prefix",
        ),
        (
            json!({"name": "Bad", "email": "a@b.test", "prefix": "has space"}),
            400,
            "invalid_request",
            "prefix",
        ),
        (
            json!({"name": "", "email": "a@b.test"}),
            400,
            "invalid_request",
            "name",
        ),
        (
            json!({"name": long_name, "email": "a@b.test"}),
            400,
            "invalid_request",
            "name",
        ),
        (json!({"name": "NoMail"}), 400, "invalid_request", "`email`"),
        (
            json!({"name": "X", "email": "a@b.test", "plan": "gold"}),
            400,
            "invalid_request",
            "`plan`",
        ),
    ] {
        let message = post(&server, "/_/account", &boss, body.clone())
            .await
            .expect_error(status, code);
        assert!(
            message.contains(needle),
            "{body}: message {message:?} lacks {needle:?}"
        );
    }
    assert_eq!(accounts(&server, &boss).await, listed, "nothing changed");

    // Delete: 200 with the account; all its tokens stop working.
    let item = single(
        &delete(&server, "/_/account", &boss, json!({"prefix": "acme"})).await,
        200,
    );
    assert_eq!(item["prefix"], "acme");
    assert!(item.get("token").is_none());
    for token in [&acme_token, &ci] {
        server
            .get("/v1/account", token)
            .send()
            .await
            .expect_error(401, "unauthenticated");
    }
    let left: Vec<Value> = accounts(&server, &boss).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["prefix"], globex.as_str());
    server
        .get("/v1/account", &globex_token)
        .send()
        .await
        .expect(200);

    for body in [
        json!({"prefix": "acme"}),
        json!({"prefix": "nobody"}),
        json!({"prefix": "NOT VALID"}),
    ] {
        delete(&server, "/_/account", &boss, body)
            .await
            .expect_error(404, "not_found");
    }
    delete(&server, "/_/account", &boss, json!({}))
        .await
        .expect_error(400, "invalid_request");
    assert_eq!(accounts(&server, &boss).await.len(), 1);

    // The prefix is free again, and the old tokens do not come back with it.
    let item = single(
        &post(
            &server,
            "/_/account",
            &boss,
            json!({"name": "Acme II", "email": "ops@acme.test", "prefix": "acme"}),
        )
        .await,
        201,
    );
    assert_ne!(item["token"]["token"], acme_token.as_str());
    server
        .get("/v1/account", &acme_token)
        .send()
        .await
        .expect_error(401, "unauthenticated");
}

#[tokio::test]
async fn deleting_an_account_frees_its_plan_license() {
    let server = TestServer::start().await;
    let boss = server.operator_token("root", true, true, None);
    let acme = server.account("acme");
    let globex = server.account("globex");
    let item = single(
        &post(&server, "/_/license", &boss, json!({"limit": 7})).await,
        201,
    );
    let key = item["key"].as_str().unwrap().to_owned();
    let id = item["id"].clone();
    server
        .post("/v1/account/license", &acme.token, json!({"license": key}))
        .send()
        .await
        .expect(200);
    server
        .post(
            "/v1/account/license",
            &globex.token,
            json!({"license": key}),
        )
        .send()
        .await
        .expect_error(409, "license_in_use");

    delete(&server, "/_/account", &boss, json!({"prefix": "acme"}))
        .await
        .expect(200);
    let freed = licenses(&server, &boss)
        .await
        .into_iter()
        .find(|l| l["id"] == id)
        .expect("the license outlives the account");
    assert_eq!(freed["account"], Value::Null);
    let body = server
        .post(
            "/v1/account/license",
            &globex.token,
            json!({"license": key}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(body["license"]["limit"], 7);
}
