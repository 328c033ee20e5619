//! Restart persistence: everything written before a graceful stop is there after a
//! restart on the same data directory, and tokens still authenticate.

use crate::support::{START, TestServer};
use serde_json::json;
use upkeep::Settings;
use upkeep::clock::Clock;

#[tokio::test]
async fn accounts_tokens_and_license_bindings_survive_a_restart() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let globex = server.account("globex");
    let created = server
        .post(
            "/v1/account/tokens",
            &acme.token,
            json!({"name": "ci", "expires": 30, "scopes": ["read_user"]}),
        )
        .send()
        .await
        .expect(200);
    let ci = created["token"]["token"].as_str().unwrap().to_owned();
    let (_, key) = server.license(25, None);
    server
        .post("/v1/account/license", &acme.token, json!({"license": key}))
        .send()
        .await
        .expect(200);
    server
        .delete("/v1/account/tokens/default", &globex.token)
        .send()
        .await
        .expect(200);
    // A use, kept in memory until the shutdown persists it.
    server.get("/v1/account", &ci).send().await.expect(200);
    let before = server
        .get("/v1/account/tokens", &acme.token)
        .send()
        .await
        .expect(200);

    let (dir, path) = server.stop().await;
    let server = TestServer::start_in(&path, Clock::manual(START), Settings::default()).await;

    let account = server.get("/v1/account", &ci).send().await.expect(200);
    assert_eq!(account["account"]["activationLimit"], 25);
    let license = server
        .get("/v1/account/license", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(license["license"]["limit"], 25);
    let after = server
        .get("/v1/account/tokens", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(after, before);
    let ci_view = after["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap()
        .clone();
    assert_eq!(
        ci_view["lastUsed"],
        START.as_secs(),
        "last use persisted at shutdown"
    );
    assert_eq!(ci_view["scopes"], json!(["read_user"]));
    // The deleted token stays deleted; globex has no token left to ask with.
    server
        .get("/v1/account", &globex.token)
        .send()
        .await
        .expect_error(401, "unauthenticated");
    assert!(
        server
            .store()
            .account(&upkeep::model::AccountPrefix::parse("globex").unwrap())
            .unwrap()
            .is_some()
    );
    drop(server);
    drop(dir);
}
