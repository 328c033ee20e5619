//! Regressions for the token findings of the security review (issue 15): grace secrets
//! that could manage tokens, child tokens outliving their parent, expired plan licenses
//! that kept counting, the per-account token quota, temporary files that followed
//! symlinks, and names and lifetimes that should have been refused.

use crate::support::TestServer;
use http::Method;
use serde_json::json;
use std::time::Duration;

fn bearer<'a>(
    server: &'a TestServer,
    method: Method,
    path: &str,
    token: &str,
) -> crate::support::Call<'a> {
    server
        .request(method, path)
        .header("authorization", &format!("Bearer {token}"))
}

/// Rotates `token` with `grace` and returns the new secret.
async fn rotate(server: &TestServer, token: &str, grace: &str) -> String {
    bearer(server, Method::POST, "/api/v1/tokens/self/rotate", token)
        .body(json!({ "grace": grace }).to_string())
        .send()
        .await
        .expect(201)["data"]["token"]
        .as_str()
        .expect("new secret")
        .to_owned()
}

// ---- finding 3: a grace secret may read, never manage tokens ------------------------

#[tokio::test]
async fn issue_15_a_grace_secret_cannot_rotate_create_or_delete_tokens() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    server.token(&acme, "ci", &["read_user"], None);
    let old = acme.token.clone();
    let new = rotate(&server, &old, "1h").await;

    // The old secret still authenticates ordinary requests during its grace.
    server.get("/v1/account", &old).send().await.expect(200);
    server
        .get("/v1/account/tokens", &old)
        .send()
        .await
        .expect(200);
    bearer(&server, Method::GET, "/api/v1/tokens", &old)
        .send()
        .await
        .expect(200);

    // It cannot rotate (the lock-out of the review) ...
    let message = bearer(&server, Method::POST, "/api/v1/tokens/self/rotate", &old)
        .body(json!({}).to_string())
        .send()
        .await
        .expect_error(403, "forbidden");
    assert!(message.contains("grace"), "{message}");
    // ... nor create or delete tokens, in either family.
    let refusals = [
        server.post(
            "/v1/account/tokens",
            &old,
            json!({"name": "evil", "expires": -1}),
        ),
        bearer(&server, Method::POST, "/api/v1/tokens", &old)
            .body(json!({"name": "evil2", "scopes": ["api"]}).to_string()),
        server.delete("/v1/account/tokens/ci", &old),
        bearer(&server, Method::DELETE, "/api/v1/tokens/ci", &old),
        server.delete("/v1/account/tokens/default", &old),
    ];
    for call in refusals {
        let message = call.send().await.expect_error(403, "forbidden");
        assert!(message.contains("grace"), "{message}");
    }

    // Nothing changed: the owner's new secret works and manages tokens; `ci` is there.
    let listed = server
        .get("/v1/account/tokens", &new)
        .send()
        .await
        .expect(200);
    let names: Vec<&str> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci", "default"]);
    let newer = rotate(&server, &new, "0s").await;
    server.get("/v1/account", &newer).send().await.expect(200);
    // The rotation without grace ended the secret it replaced; the old one lasts out its
    // grace and no longer.
    server.get("/v1/account", &new).send().await.expect(401);
    server.get("/v1/account", &old).send().await.expect(200);
    server.clock.advance(Duration::from_secs(3601));
    server.get("/v1/account", &old).send().await.expect(401);
}
