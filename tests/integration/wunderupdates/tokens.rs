//! `/v1/account/tokens`: create, list and delete, the refusals (400, 409, 404) that change
//! nothing, JSON under any content type, scopes, other accounts' names, concurrent creation.

use super::{DAY, token_names};
use crate::support::{START, TestServer};
use serde_json::{Value, json};

#[tokio::test]
async fn create_list_and_delete_tokens() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let now = START.as_secs();

    let body = server
        .post(
            "/v1/account/tokens",
            &acme.token,
            json!({"name": "a-token-name", "expires": 365}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(body["status"], 200);
    assert_eq!(body["token"]["name"], "a-token-name");
    assert_eq!(body["token"]["expires"], now + 365 * DAY);
    let secret = body["token"]["token"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("upk_at_"), "{secret}");
    assert_eq!(
        body["token"].as_object().unwrap().len(),
        3,
        "exactly token, expires, name"
    );

    // The new token works, and the secret is never listed.
    server.get("/v1/account", &secret).send().await.expect(200);
    let list = server.get("/v1/account/tokens", &acme.token).send().await;
    assert!(!String::from_utf8_lossy(&list.body).contains(&secret));
    let list = list.expect(200);
    assert_eq!(list["status"], 200);
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    let created = tokens.iter().find(|t| t["name"] == "a-token-name").unwrap();
    assert_eq!(created["expires"], now + 365 * DAY);
    assert_eq!(created["scopes"], json!(["api"]));
    let default = tokens.iter().find(|t| t["name"] == "default").unwrap();
    assert_eq!(default["expires"], Value::Null);

    // Never-expiring and omitted expiry.
    let never = server
        .post(
            "/v1/account/tokens",
            &acme.token,
            json!({"name": "never", "expires": -1}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(never["token"]["expires"], Value::Null);
    let default_expiry = server
        .post("/v1/account/tokens", &acme.token, json!({"name": "year"}))
        .send()
        .await
        .expect(200);
    assert_eq!(default_expiry["token"]["expires"], now + 365 * DAY);

    let deleted = server
        .delete("/v1/account/tokens/a-token-name", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(deleted, json!({"status": 200, "message": null}));
    server
        .get("/v1/account", &secret)
        .send()
        .await
        .expect_error(401, "unauthenticated");
    assert_eq!(
        token_names(&server, &acme.token).await,
        ["default", "never", "year"]
    );
}

#[tokio::test]
async fn bad_token_requests_are_400_409_404_and_change_nothing() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    server
        .post("/v1/account/tokens", &acme.token, json!({"name": "taken"}))
        .send()
        .await
        .expect(200);
    let before = token_names(&server, &acme.token).await;

    let long_name = "a".repeat(65);
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (json!({"name": "Bad Name"}), 400, "invalid_request", "name:"),
        (
            json!({"name": "under_score"}),
            400,
            "invalid_request",
            "name:",
        ),
        (json!({"name": long_name}), 400, "invalid_request", "name:"),
        (json!({"name": ""}), 400, "invalid_request", "name:"),
        (json!({"name": "taken"}), 409, "conflict", "taken"),
        (
            json!({"name": "x", "expires": 0}),
            400,
            "invalid_request",
            "expires:",
        ),
        (
            json!({"name": "x", "expires": 366}),
            400,
            "invalid_request",
            "expires:",
        ),
        (
            json!({"name": "x", "expires": -2}),
            400,
            "invalid_request",
            "expires:",
        ),
        (
            json!({"name": "x", "expires": "365"}),
            400,
            "invalid_request",
            "expires:",
        ),
        (
            json!({"name": "x", "expires": 1.5}),
            400,
            "invalid_request",
            "expires:",
        ),
        (json!({"name": 7}), 400, "invalid_request", "name:"),
        (
            json!({"name": "x", "scopes": ["root"]}),
            400,
            "invalid_request",
            "scopes:",
        ),
        (
            json!({"name": "x", "scopes": []}),
            400,
            "invalid_request",
            "scopes:",
        ),
        (
            json!({"name": "x", "extra": true}),
            400,
            "invalid_request",
            "extra",
        ),
        (json!({"expires": 30}), 400, "invalid_request", "name"),
        (json!(["name"]), 400, "invalid_request", ""),
    ];
    for (body, status, code, needle) in cases {
        let reply = server
            .post("/v1/account/tokens", &acme.token, body.clone())
            .send()
            .await;
        let message = reply.expect_error(status, code);
        assert!(
            message.contains(needle),
            "{body}: message {message:?} lacks {needle:?}"
        );
    }
    for raw in [
        "{\"name\": \"x\"",
        "{name: x}",
        "",
        "name=x",
        "{\"name\":\"x\"} trailing",
    ] {
        let reply = server
            .request(http::Method::POST, "/v1/account/tokens")
            .header("x-api-key", &acme.token)
            .body(raw)
            .send()
            .await;
        reply.expect_error(400, "invalid_request");
    }
    server
        .delete("/v1/account/tokens/no-such-token", &acme.token)
        .send()
        .await
        .expect_error(404, "not_found");
    assert_eq!(token_names(&server, &acme.token).await, before);
}

#[tokio::test]
async fn json_is_read_whatever_the_content_type() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    // No Content-Type at all.
    server
        .request(http::Method::POST, "/v1/account/tokens")
        .header("x-api-key", &acme.token)
        .body(r#"{ "name": "no-type", "expires": 30 }"#)
        .send()
        .await
        .expect(200);
    // What `curl -d` sends.
    server
        .request(http::Method::POST, "/v1/account/tokens")
        .header("x-api-key", &acme.token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{ "name": "curl-d" }"#)
        .send()
        .await
        .expect(200);
    // Any other body is a 400 outside /api/v1 (SPEC §3), whatever its label.
    server
        .request(http::Method::POST, "/v1/account/tokens")
        .header("x-api-key", &acme.token)
        .header("content-type", "application/xml")
        .body("<token name='x'/>")
        .send()
        .await
        .expect_error(400, "invalid_request");
    assert_eq!(
        token_names(&server, &acme.token).await,
        ["curl-d", "default", "no-type"]
    );
}

#[tokio::test]
async fn a_token_cannot_grant_scopes_beyond_api_holders() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let body = server
        .post(
            "/v1/account/tokens",
            &acme.token,
            json!({"name": "ci", "scopes": ["read_user", "manage_releases"]}),
        )
        .send()
        .await
        .expect(200);
    let ci = body["token"]["token"].as_str().unwrap().to_owned();
    server.get("/v1/account", &ci).send().await.expect(200);
    let list = server
        .get("/v1/account/tokens", &acme.token)
        .send()
        .await
        .expect(200);
    let ci_view = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap()
        .clone();
    assert_eq!(ci_view["scopes"], json!(["read_user", "manage_releases"]));
}

#[tokio::test]
async fn another_accounts_token_names_are_404() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let globex = server.account("globex");
    let globex_ci = server.token(&globex, "globex-ci", &["api"], None);

    server
        .delete("/v1/account/tokens/globex-ci", &acme.token)
        .send()
        .await
        .expect_error(404, "not_found");
    // Same name in two accounts is fine; each sees only its own.
    server
        .post(
            "/v1/account/tokens",
            &acme.token,
            json!({"name": "globex-ci"}),
        )
        .send()
        .await
        .expect(200);
    server
        .delete("/v1/account/tokens/globex-ci", &acme.token)
        .send()
        .await
        .expect(200);
    server
        .get("/v1/account", &globex_ci)
        .send()
        .await
        .expect(200);
    assert_eq!(
        token_names(&server, &globex.token).await,
        ["default", "globex-ci"]
    );
    let body = server
        .get("/v1/account", &globex.token)
        .send()
        .await
        .expect(200);
    assert_eq!(body["account"]["prefix"], "globex");
}

#[tokio::test]
async fn concurrent_token_creation_is_all_acknowledged_and_listed() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let flushes_before = server.store().flush_count();
    let replies = futures_join_all((0..32).map(|i| {
        server
            .post(
                "/v1/account/tokens",
                &acme.token,
                json!({"name": format!("t{i:02}")}),
            )
            .send()
    }))
    .await;
    for reply in &replies {
        reply.expect(200);
    }
    assert_eq!(token_names(&server, &acme.token).await.len(), 33);
    let flushes = server.store().flush_count() - flushes_before;
    assert!(flushes >= 1, "the acknowledged writes were flushed");
}

/// Runs futures concurrently on this task (no extra dependency).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, future) in outputs.iter_mut().zip(set.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(out) => *slot = Some(out),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("completed")).collect()
}
