//! `GET /v1/account`: the seed's shape, the default activation limit, which credentials are
//! refused (401) and which scopes each route of the family needs (403).

use super::token_names;
use crate::support::{START, TestServer};
use serde_json::json;
use std::time::Duration;
use upkeep::model::Timestamp;

#[tokio::test]
async fn get_account_has_the_seed_shape() {
    let server = TestServer::start().await;
    let acme = server.account("abcde123");
    let body = server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        body,
        json!({
            "account": {"prefix": "abcde123", "activationUsage": 0, "activationLimit": 0},
            "status": 200,
            "products": {"themes": [], "plugins": []}
        })
    );
    // Bearer works as well as x-api-key.
    let reply = server
        .request(http::Method::GET, "/v1/account")
        .header("authorization", &format!("Bearer {}", acme.token))
        .send()
        .await;
    assert_eq!(reply.expect(200)["account"]["prefix"], "abcde123");
}

#[tokio::test]
async fn default_activation_limit_comes_from_settings() {
    let settings = upkeep::Settings {
        default_activation_limit: 3,
        ..Default::default()
    };
    let server = TestServer::start_with(settings).await;
    let acme = server.account("acme");
    let body = server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(body["account"]["activationLimit"], 3);
}

#[tokio::test]
async fn wrong_malformed_expired_and_deleted_tokens_are_401() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let expiring = server.token(
        &acme,
        "short",
        &["api"],
        Some(Timestamp::from_secs(START.as_secs() + 60)),
    );
    let doomed = server.token(&acme, "doomed", &["api"], None);

    // Well-formed but unknown (a valid checksum for a secret that was never issued).
    let unknown = upkeep::token::generate(upkeep::token::TokenKind::Account)
        .unwrap()
        .token;
    let mut bad_check = acme.token.clone();
    bad_check.replace_range(44..45, if bad_check.ends_with('A') { "B" } else { "A" });
    let license_key = server.license(5, None).1;
    for token in [
        unknown.as_str(),
        bad_check.as_str(),
        "upk_at_short",
        "",
        "ABCD1234-ABCD-ABCD-ABCD-ABCD1234",
        license_key.as_str(),
    ] {
        let reply = server.get("/v1/account", token).send().await;
        reply.expect_error(401, "unauthenticated");
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer"),
            "{reply:?}"
        );
    }
    // No credential at all; a non-Bearer scheme.
    server
        .request(http::Method::GET, "/v1/account")
        .send()
        .await
        .expect_error(401, "unauthenticated");
    server
        .request(http::Method::GET, "/v1/account")
        .header("authorization", &format!("Basic {}", acme.token))
        .send()
        .await
        .expect_error(401, "unauthenticated");

    server
        .get("/v1/account", &expiring)
        .send()
        .await
        .expect(200);
    server.clock.advance(Duration::from_secs(60));
    server
        .get("/v1/account", &expiring)
        .send()
        .await
        .expect_error(401, "unauthenticated");
    // Expired tokens stay listed, marked expired.
    let list = server
        .get("/v1/account/tokens", &acme.token)
        .send()
        .await
        .expect(200);
    let short = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "short")
        .unwrap()
        .clone();
    assert_eq!(short["expired"], true);

    server.get("/v1/account", &doomed).send().await.expect(200);
    server
        .delete("/v1/account/tokens/doomed", &acme.token)
        .send()
        .await
        .expect(200);
    server
        .get("/v1/account", &doomed)
        .send()
        .await
        .expect_error(401, "unauthenticated");
}

#[tokio::test]
async fn missing_scope_is_403() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let reader = server.token(&acme, "reader", &["read_user"], None);
    let licenses = server.token(&acme, "licenses", &["read_licenses"], None);
    let manager = server.token(&acme, "manager", &["manage_licenses"], None);

    server.get("/v1/account", &reader).send().await.expect(200);
    server
        .get("/v1/account/license", &reader)
        .send()
        .await
        .expect_error(403, "forbidden");
    server
        .get("/v1/account/tokens", &reader)
        .send()
        .await
        .expect_error(403, "forbidden");
    server
        .post(
            "/v1/account/tokens",
            &reader,
            json!({"name": "escalate", "scopes": ["read_user"]}),
        )
        .send()
        .await
        .expect_error(403, "forbidden");
    server
        .delete("/v1/account/tokens/default", &reader)
        .send()
        .await
        .expect_error(403, "forbidden");
    server
        .get("/v1/account", &licenses)
        .send()
        .await
        .expect_error(403, "forbidden");
    server
        .get("/v1/account/license", &licenses)
        .send()
        .await
        .expect(200);
    let (_, key) = server.license(10, None);
    server
        .post("/v1/account/license", &licenses, json!({"license": key}))
        .send()
        .await
        .expect_error(403, "forbidden");
    // manage_licenses implies read_licenses.
    server
        .get("/v1/account/license", &manager)
        .send()
        .await
        .expect(200);
    server
        .post("/v1/account/license", &manager, json!({"license": key}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        token_names(&server, &acme.token).await,
        ["default", "licenses", "manager", "reader"]
    );
}
