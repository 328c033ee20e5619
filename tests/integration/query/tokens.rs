//! `/_/token`: the seed's operator-token requests (create, list, update, delete, read the
//! value back) with SPEC's improvements (Unix-ms times, omitted expiry = never, 409/400/404),
//! read-only, inactive and expired operator tokens, and that account and operator tokens stay
//! on their own routes (403).

use super::{DAY_MS, accounts, at, bearer, delete, get, keys, licenses, ms, post, single};
use crate::support::{START, TestServer};
use http::Method;
use serde_json::{Value, json};
use std::time::Duration;
use upkeep::model::Timestamp;

const MINUTE_MS: u64 = 60_000;

/// The fields of an operator token in `GET /_/token` (never its value).
const TOKEN_FIELDS: [&str; 8] = [
    "active",
    "created_at",
    "expiration_date",
    "expired",
    "last_used_at",
    "name",
    "updated_at",
    "write",
];

async fn put(server: &TestServer, path: &str, token: &str, body: Value) -> crate::support::Reply {
    server.put(path, token, body).send().await
}

/// `GET /_/token`'s `data`, checked for shape (no `token` field, no value in the body).
async fn tokens(server: &TestServer, token: &str) -> Vec<Value> {
    let reply = get(server, "/_/token", token).await;
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    assert!(!text.contains("upk_"), "no token value is listed: {text}");
    let body = reply.expect(200);
    let data = body["data"].as_array().expect("data array").clone();
    for item in &data {
        assert_eq!(keys(item), TOKEN_FIELDS, "listed operator token:{reply:?}");
    }
    data
}

/// `GET /_/token` without `last_used_at` (which a refused request may move).
async fn stored_tokens(server: &TestServer, token: &str) -> Vec<Value> {
    let mut data = tokens(server, token).await;
    for item in &mut data {
        item.as_object_mut().unwrap().remove("last_used_at");
    }
    data
}

async fn token_names(server: &TestServer, token: &str) -> Vec<String> {
    let mut names: Vec<String> = tokens(server, token)
        .await
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

async fn listed_token(server: &TestServer, token: &str, name: &str) -> Value {
    tokens(server, token)
        .await
        .into_iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("operator token {name} is listed"))
}

/// `GET /_/token/value?name=…` → the value.
async fn value(server: &TestServer, token: &str, query: &str) -> String {
    let reply = get(server, &format!("/_/token/value?{query}"), token).await;
    let item = single(&reply, 200);
    assert_eq!(keys(&item), ["token"], "{reply:?}");
    item["token"].as_str().expect("token").to_owned()
}

/// Creates an operator token through `POST /_/token`; returns its value.
async fn create(server: &TestServer, boss: &str, body: Value) -> String {
    let item = single(&post(server, "/_/token", boss, body).await, 201);
    item["token"].as_str().expect("token").to_owned()
}

/// Asserts that an operator token no longer authenticates.
async fn refused(server: &TestServer, token: &str, what: &str) {
    let reply = get(server, "/_/token", token).await;
    assert_eq!(reply.status.as_u16(), 401, "{what} should be 401:{reply:?}");
    reply.expect_error(401, "unauthenticated");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer"),
        "{reply:?}"
    );
}

#[tokio::test]
async fn create_operator_token_as_the_seed_documents() {
    let server = TestServer::start().await;
    let boss = server.operator_token("root", true, true, None);
    let expiration = at(30 * DAY_MS);

    let reply = post(
        &server,
        "/_/token",
        &boss,
        json!({"name": "example", "expiration_date": expiration, "active": true, "write": true}),
    )
    .await;
    let item = single(&reply, 201);
    let mut expected_keys = TOKEN_FIELDS.map(str::to_owned).to_vec();
    expected_keys.push("token".to_owned());
    expected_keys.sort();
    assert_eq!(keys(&item), expected_keys, "{reply:?}");
    let example = item["token"].as_str().unwrap().to_owned();
    assert!(example.starts_with("upk_ot_"), "{example}");
    assert_eq!(example.len(), upkeep::token::TOKEN_LEN);
    let mut without_token = item.clone();
    without_token.as_object_mut().unwrap().remove("token");
    assert_eq!(
        without_token,
        json!({
            "name": "example",
            "expiration_date": expiration,
            "active": true,
            "write": true,
            "expired": false,
            "created_at": ms(START),
            "updated_at": ms(START),
            "last_used_at": null,
        })
    );

    // The created token authenticates, and its use shows (in ms).
    server.clock.advance(Duration::from_secs(60));
    let listed = tokens(&server, &example).await;
    let view = listed.iter().find(|t| t["name"] == "example").unwrap();
    assert_eq!(view["last_used_at"], at(MINUTE_MS));
    assert_eq!(view["expiration_date"], expiration);
    assert_eq!(view["created_at"], ms(START));
    assert!(
        !serde_json::to_string(&listed).unwrap().contains(&example),
        "the value is never listed"
    );

    // Omitted (or null) expiration_date = never; active and write default to true.
    let mut never = Vec::new();
    for (name, body) in [
        ("defaults", json!({"name": "defaults"})),
        (
            "null-date",
            json!({"name": "null-date", "expiration_date": null}),
        ),
        ("CI bot #1", json!({"name": "CI bot #1"})),
    ] {
        let item = single(&post(&server, "/_/token", &boss, body).await, 201);
        assert_eq!(item["name"], name);
        assert_eq!(item["expiration_date"], Value::Null, "{name}");
        assert_eq!(item["active"], true, "{name}");
        assert_eq!(item["write"], true, "{name}");
        assert_eq!(item["created_at"], at(MINUTE_MS), "{name}");
        let token = item["token"].as_str().unwrap().to_owned();
        get(&server, "/_/token", &token).await.expect(200);
        never.push(token);
    }
    let read_only = single(
        &post(
            &server,
            "/_/token",
            &boss,
            json!({"name": "ro", "write": false}),
        )
        .await,
        201,
    );
    assert_eq!(read_only["write"], false);
    assert_eq!(read_only["active"], true);
    server.clock.advance(Duration::from_secs(400 * 86_400));
    refused(&server, &example, "example after its expiration_date").await;
    // Tokens without an expiration_date still work 400 days later.
    for token in &never {
        get(&server, "/_/token", token).await.expect(200);
    }
    assert_eq!(
        listed_token(&server, &boss, "example").await["expired"],
        true,
        "expired tokens stay listed, marked expired"
    );
    assert_eq!(
        token_names(&server, &boss).await,
        [
            "CI bot #1",
            "defaults",
            "example",
            "null-date",
            "ro",
            "root"
        ]
    );
}

#[tokio::test]
async fn bad_operator_token_requests_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let boss = server.operator_token("root", true, true, None);
    create(&server, &boss, json!({"name": "example"})).await;
    let before = stored_tokens(&server, &boss).await;

    let long_name = "n".repeat(65);
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (json!({"name": "example"}), 409, "conflict", "example"),
        (
            json!({"name": "root", "write": false}),
            409,
            "conflict",
            "root",
        ),
        (
            // The seed's own example date lies in the past.
            json!({"name": "seed", "expiration_date": 1_632_960_000_000_u64}),
            400,
            "invalid_request",
            "expiration_date",
        ),
        (
            json!({"name": "past", "expiration_date": ms(START) - 1}),
            400,
            "invalid_request",
            "expiration_date",
        ),
        (
            json!({"name": "now", "expiration_date": ms(START)}),
            400,
            "invalid_request",
            "expiration_date",
        ),
        (
            json!({"name": "neg", "expiration_date": -1}),
            400,
            "invalid_request",
            "expiration_date",
        ),
        (
            json!({"name": "str", "expiration_date": "tomorrow"}),
            400,
            "invalid_request",
            "expiration_date",
        ),
        (
            json!({"name": "flag", "active": "yes"}),
            400,
            "invalid_request",
            "active",
        ),
        (
            json!({"name": "flag", "write": 1}),
            400,
            "invalid_request",
            "write",
        ),
        (json!({"name": ""}), 400, "invalid_request", "name"),
        (json!({"name": long_name}), 400, "invalid_request", "name"),
        (
            json!({"name": "line\nbreak"}),
            400,
            "invalid_request",
            "name",
        ),
        (json!({"name": 7}), 400, "invalid_request", "name"),
        (json!({"write": true}), 400, "invalid_request", "`name`"),
        (
            json!({"name": "x", "scopes": ["api"]}),
            400,
            "invalid_request",
            "`scopes`",
        ),
        (json!(["example"]), 400, "invalid_request", ""),
    ];
    for (body, status, code, needle) in cases {
        let reply = post(&server, "/_/token", &boss, body.clone()).await;
        let message = reply.expect_error(status, code);
        assert!(
            message.contains(needle),
            "{body}: message {message:?} lacks {needle:?}"
        );
    }
    for raw in ["", "{\"name\":\"x\"", "name=x"] {
        server
            .request(Method::POST, "/_/token")
            .header("authorization", &bearer(&boss))
            .body(raw)
            .send()
            .await
            .expect_error(400, "invalid_request");
    }
    server
        .request(Method::POST, "/_/token")
        .header("authorization", &bearer(&boss))
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .expect_error(400, "invalid_request");
    assert_eq!(
        stored_tokens(&server, &boss).await,
        before,
        "nothing changed"
    );
}

#[tokio::test]
async fn put_changes_only_the_given_fields_and_never_the_value() {
    let server = TestServer::start().await;
    let boss = server.operator_token("root", true, true, None);
    let expiration = at(30 * DAY_MS);
    let example = create(
        &server,
        &boss,
        json!({"name": "example", "expiration_date": expiration}),
    )
    .await;
    let value_before = value(&server, &boss, "name=example").await;
    assert_eq!(
        value_before, example,
        "the value read back is the created one"
    );

    server.clock.advance(Duration::from_secs(60));
    let item = single(
        &put(
            &server,
            "/_/token",
            &boss,
            json!({"name": "example", "write": false}),
        )
        .await,
        200,
    );
    assert!(item.get("token").is_none(), "PUT shows no value");
    assert_eq!(item["name"], "example");
    assert_eq!(item["write"], false);
    assert_eq!(item["active"], true, "active unchanged");
    assert_eq!(item["expiration_date"], expiration, "expiry unchanged");
    assert_eq!(item["created_at"], ms(START));
    assert_eq!(item["updated_at"], at(MINUTE_MS));
    assert_eq!(listed_token(&server, &boss, "example").await, item);

    // The same value keeps working, now read-only.
    get(&server, "/_/token", &example).await.expect(200);
    post(&server, "/_/token", &example, json!({"name": "sneaky"}))
        .await
        .expect_error(403, "forbidden");

    // `"expiration_date": null` clears the expiry, leaving the flags.
    let item = single(
        &put(
            &server,
            "/_/token",
            &boss,
            json!({"name": "example", "expiration_date": null}),
        )
        .await,
        200,
    );
    assert_eq!(item["expiration_date"], Value::Null);
    assert_eq!(item["write"], false);
    assert_eq!(item["active"], true);

    // A new date, and write back on: only those change.
    let later = at(60 * DAY_MS);
    let item = single(
        &put(
            &server,
            "/_/token",
            &boss,
            json!({"name": "example", "expiration_date": later, "write": true}),
        )
        .await,
        200,
    );
    assert_eq!(item["expiration_date"], later);
    assert_eq!(item["write"], true);
    assert_eq!(item["active"], true);
    post(&server, "/_/token", &example, json!({"name": "allowed"}))
        .await
        .expect(201);

    // The seed's full body (all fields) is accepted too.
    let item = single(
        &put(
            &server,
            "/_/token",
            &boss,
            json!({"name": "example", "expiration_date": later, "active": true, "write": true}),
        )
        .await,
        200,
    );
    assert_eq!(item["expiration_date"], later);

    // Refusals change nothing.
    let before = stored_tokens(&server, &boss).await;
    for (body, status, code, needle) in [
        (
            json!({"name": "nobody", "write": false}),
            404,
            "not_found",
            "nobody",
        ),
        (
            json!({"name": "example", "expiration_date": ms(START)}),
            400,
            "invalid_request",
            "expiration_date",
        ),
        (
            json!({"name": "example", "expiration_date": "never"}),
            400,
            "invalid_request",
            "expiration_date",
        ),
        (
            json!({"name": "example", "active": null, "colour": "red"}),
            400,
            "invalid_request",
            "colour",
        ),
        (json!({"write": false}), 400, "invalid_request", "`name`"),
    ] {
        let message = put(&server, "/_/token", &boss, body.clone())
            .await
            .expect_error(status, code);
        assert!(
            message.contains(needle),
            "{body}: message {message:?} lacks {needle:?}"
        );
    }
    assert_eq!(
        stored_tokens(&server, &boss).await,
        before,
        "nothing changed"
    );

    // The value never changed.
    assert_eq!(value(&server, &boss, "name=example").await, value_before);
    get(&server, "/_/token", &value_before).await.expect(200);
}

#[tokio::test]
async fn a_deactivated_operator_token_is_401_everywhere() {
    let server = TestServer::start().await;
    let boss = server.operator_token("root", true, true, None);
    let example = create(&server, &boss, json!({"name": "example"})).await;
    get(&server, "/_/token", &example).await.expect(200);

    let item = single(
        &put(
            &server,
            "/_/token",
            &boss,
            json!({"name": "example", "active": false}),
        )
        .await,
        200,
    );
    assert_eq!(item["active"], false);
    assert_eq!(item["write"], true, "write unchanged");
    for (method, path) in [
        (Method::GET, "/_/token"),
        (Method::GET, "/_/token/value?name=root"),
        (Method::GET, "/_/account"),
        (Method::GET, "/_/license"),
        (Method::POST, "/_/license"),
        (Method::DELETE, "/_/token"),
    ] {
        let reply = server
            .request(method.clone(), path)
            .header("authorization", &bearer(&example))
            .body(json!({"name": "root", "limit": 1}).to_string())
            .send()
            .await;
        reply.expect_error(401, "unauthenticated");
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer"),
            "{reply:?}"
        );
    }
    // It cannot reactivate itself, the operator can.
    put(
        &server,
        "/_/token",
        &example,
        json!({"name": "example", "active": true}),
    )
    .await
    .expect_error(401, "unauthenticated");
    assert_eq!(
        listed_token(&server, &boss, "example").await["active"],
        false
    );
    assert_eq!(token_names(&server, &boss).await, ["example", "root"]);
    assert!(licenses(&server, &boss).await.is_empty());
    put(
        &server,
        "/_/token",
        &boss,
        json!({"name": "example", "active": true}),
    )
    .await
    .expect(200);
    get(&server, "/_/token", &example).await.expect(200);

    // Created inactive: authenticates nothing from the start.
    let dormant = create(
        &server,
        &boss,
        json!({"name": "dormant", "active": false, "write": true}),
    )
    .await;
    refused(&server, &dormant, "a token created inactive").await;
}

#[tokio::test]
async fn a_read_only_operator_token_reads_but_cannot_write() {
    let server = TestServer::start().await;
    let boss = server.operator_token("root", true, true, None);
    let ro = server.operator_token("ro", true, false, None);
    let acme = server.account("acme");
    let (license_id, _) = server.license(10, None);

    for path in ["/_/token", "/_/account", "/_/license"] {
        let body = get(&server, path, &ro).await.expect(200);
        assert!(!body["data"].as_array().unwrap().is_empty(), "{path}");
    }
    let tokens_before = stored_tokens(&server, &boss).await;
    let accounts_before = accounts(&server, &boss).await;
    let licenses_before = licenses(&server, &boss).await;

    let refusals: Vec<(Method, &str, Value)> = vec![
        (Method::POST, "/_/token", json!({"name": "new"})),
        (
            Method::PUT,
            "/_/token",
            json!({"name": "ro", "write": true}),
        ),
        (
            Method::PUT,
            "/_/token",
            json!({"name": "root", "active": false}),
        ),
        (Method::DELETE, "/_/token", json!({"name": "root"})),
        (Method::GET, "/_/token/value?name=root", Value::Null),
        (Method::GET, "/_/token/value?name=ro", Value::Null),
        (
            Method::POST,
            "/_/account",
            json!({"name": "Globex", "email": "ops@globex.test"}),
        ),
        (Method::DELETE, "/_/account", json!({"prefix": acme.prefix})),
        (Method::POST, "/_/license", json!({"limit": 5})),
        (Method::DELETE, "/_/license", json!({"id": license_id})),
    ];
    for (method, path, body) in refusals {
        let mut call = server
            .request(method.clone(), path)
            .header("authorization", &bearer(&ro));
        if !body.is_null() {
            call = call.body(body.to_string());
        }
        call.send().await.expect_error(403, "forbidden");
    }
    assert_eq!(stored_tokens(&server, &boss).await, tokens_before);
    assert_eq!(accounts(&server, &boss).await, accounts_before);
    assert_eq!(licenses(&server, &boss).await, licenses_before);
    // The account's token still works: its account was not deleted.
    server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
}

#[tokio::test]
async fn delete_operator_token() {
    let server = TestServer::start().await;
    let boss = server.operator_token("root", true, true, None);
    let example = create(&server, &boss, json!({"name": "example"})).await;
    get(&server, "/_/token", &example).await.expect(200);

    let item = single(
        &delete(&server, "/_/token", &boss, json!({"name": "example"})).await,
        200,
    );
    assert_eq!(item["name"], "example");
    assert!(item.get("token").is_none(), "no value in the reply");
    refused(&server, &example, "deleted example").await;
    assert_eq!(token_names(&server, &boss).await, ["root"]);

    for (body, status, code) in [
        (json!({"name": "example"}), 404, "not_found"),
        (json!({"name": "nobody"}), 404, "not_found"),
        (json!({}), 400, "invalid_request"),
        (
            json!({"name": "root", "force": true}),
            400,
            "invalid_request",
        ),
    ] {
        delete(&server, "/_/token", &boss, body)
            .await
            .expect_error(status, code);
    }
    // A DELETE without a body names nothing.
    server
        .request(Method::DELETE, "/_/token")
        .header("authorization", &bearer(&boss))
        .send()
        .await
        .expect_error(400, "invalid_request");
    assert_eq!(token_names(&server, &boss).await, ["root"]);

    // A re-created token of the same name has a new value; the old one stays dead.
    let again = create(&server, &boss, json!({"name": "example"})).await;
    assert_ne!(again, example);
    get(&server, "/_/token", &again).await.expect(200);
    refused(&server, &example, "old example").await;
}

#[tokio::test]
async fn token_value_reads_back_the_created_value() {
    let server = TestServer::start().await;
    let boss = server.operator_token("root", true, true, None);
    let example = create(&server, &boss, json!({"name": "example"})).await;
    let spaced = create(&server, &boss, json!({"name": "CI bot"})).await;

    assert_eq!(value(&server, &boss, "name=example").await, example);
    assert_eq!(value(&server, &boss, "name=CI+bot").await, spaced);
    assert_eq!(value(&server, &boss, "name=CI%20bot").await, spaced);
    assert_eq!(value(&server, &boss, "other=1&name=example").await, example);
    // Reading it again gives the same value; the operator's own too.
    assert_eq!(value(&server, &boss, "name=example").await, example);
    assert_eq!(value(&server, &example, "name=root").await, boss);

    get(&server, "/_/token/value?name=nobody", &boss)
        .await
        .expect_error(404, "not_found");
    for path in [
        "/_/token/value",
        "/_/token/value?nam=example",
        "/_/token/value?",
    ] {
        let message = get(&server, path, &boss)
            .await
            .expect_error(400, "invalid_request");
        assert!(message.contains("name"), "{path}: {message}");
    }
    get(&server, "/_/token/value?name=", &boss)
        .await
        .expect_error(400, "invalid_request");
}

#[tokio::test]
async fn token_values_can_be_turned_off() {
    let settings = upkeep::Settings {
        token_values: false,
        ..Default::default()
    };
    let server = TestServer::start_with(settings).await;
    let boss = server.operator_token("root", true, true, None);
    // Creation still shows the value once.
    let example = create(&server, &boss, json!({"name": "example"})).await;
    assert!(example.starts_with("upk_ot_"));
    get(&server, "/_/token", &example).await.expect(200);
    get(&server, "/_/token/value?name=example", &boss)
        .await
        .expect_error(403, "forbidden");
    get(&server, "/_/token/value?name=root", &example)
        .await
        .expect_error(403, "forbidden");
}

#[tokio::test]
async fn an_expired_operator_token_is_401() {
    let server = TestServer::start().await;
    let boss = server.operator_token("root", true, true, None);
    let short = server.operator_token(
        "short",
        true,
        true,
        Some(Timestamp::from_millis(at(MINUTE_MS))),
    );
    let hour = create(
        &server,
        &boss,
        json!({"name": "hour", "expiration_date": at(60 * MINUTE_MS)}),
    )
    .await;

    get(&server, "/_/token", &short).await.expect(200);
    server.clock.advance(Duration::from_millis(MINUTE_MS - 1));
    get(&server, "/_/token", &short).await.expect(200);
    server.clock.advance(Duration::from_millis(1));
    refused(&server, &short, "short at its expiry").await;
    get(&server, "/_/token", &hour).await.expect(200);
    server.clock.advance(Duration::from_secs(3600));
    refused(&server, &hour, "hour after its expiry").await;

    let listed = tokens(&server, &boss).await;
    let expired: Vec<(&str, bool)> = listed
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["expired"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        expired,
        [("hour", true), ("root", false), ("short", true)],
        "expired tokens stay listed"
    );
    // Extending an expired token revives it (same value).
    put(
        &server,
        "/_/token",
        &boss,
        json!({"name": "hour", "expiration_date": null}),
    )
    .await
    .expect(200);
    get(&server, "/_/token", &hour).await.expect(200);
}

#[tokio::test]
async fn account_tokens_are_forbidden_on_query_routes() {
    let server = TestServer::start().await;
    let boss = server.operator_token("root", true, true, None);
    let acme = server.account("acme");
    let (license_id, _) = server.license(3, None);
    let tokens_before = stored_tokens(&server, &boss).await;

    let routes: Vec<(Method, &str, Value)> = vec![
        (Method::GET, "/_/token", Value::Null),
        (Method::POST, "/_/token", json!({"name": "mine"})),
        (
            Method::PUT,
            "/_/token",
            json!({"name": "root", "active": false}),
        ),
        (Method::DELETE, "/_/token", json!({"name": "root"})),
        (Method::GET, "/_/token/value?name=root", Value::Null),
        (Method::GET, "/_/account", Value::Null),
        (
            Method::POST,
            "/_/account",
            json!({"name": "X", "email": "x@x.test"}),
        ),
        (Method::DELETE, "/_/account", json!({"prefix": "acme"})),
        (Method::GET, "/_/license", Value::Null),
        (Method::POST, "/_/license", json!({"limit": 1000})),
        (Method::DELETE, "/_/license", json!({"id": license_id})),
    ];
    for (method, path, body) in routes {
        for header in ["authorization", "x-api-key"] {
            let credential = if header == "authorization" {
                bearer(&acme.token)
            } else {
                acme.token.clone()
            };
            let mut call = server
                .request(method.clone(), path)
                .header(header, &credential);
            if !body.is_null() {
                call = call.body(body.to_string());
            }
            call.send().await.expect_error(403, "forbidden");
        }
    }
    assert_eq!(stored_tokens(&server, &boss).await, tokens_before);
    assert_eq!(accounts(&server, &boss).await.len(), 1);
    assert_eq!(licenses(&server, &boss).await.len(), 1);
    get(&server, "/_/token", &boss).await.expect(200);
    server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
}

#[tokio::test]
async fn operator_tokens_are_forbidden_on_account_routes() {
    let server = TestServer::start().await;
    let boss = server.operator_token("root", true, true, None);
    let acme = server.account("acme");
    let routes: Vec<(Method, &str, Value)> = vec![
        (Method::GET, "/v1/account", Value::Null),
        (Method::GET, "/v1/account/license", Value::Null),
        (Method::GET, "/v1/account/tokens", Value::Null),
        (Method::POST, "/v1/account/tokens", json!({"name": "op"})),
        (Method::DELETE, "/v1/account/tokens/default", Value::Null),
        (Method::GET, "/api/v1/me", Value::Null),
        (Method::GET, "/api/v1/tokens", Value::Null),
        (
            Method::POST,
            "/api/v1/tokens",
            json!({"name": "op", "scopes": ["api"]}),
        ),
        (Method::DELETE, "/api/v1/tokens/default", Value::Null),
        (Method::POST, "/api/v1/tokens/self/rotate", Value::Null),
    ];
    for (method, path, body) in routes {
        for header in ["authorization", "x-api-key"] {
            let credential = if header == "authorization" {
                bearer(&boss)
            } else {
                boss.clone()
            };
            let mut call = server
                .request(method.clone(), path)
                .header(header, &credential);
            if !body.is_null() {
                call = call.body(body.to_string());
            }
            call.send().await.expect_error(403, "forbidden");
        }
    }
    // Nothing changed: acme still has only its first token, and it works.
    let body = server
        .get("/v1/account/tokens", &acme.token)
        .send()
        .await
        .expect(200);
    let names: Vec<&str> = body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default"]);
    // The operator token itself was not rotated.
    get(&server, "/_/token", &boss).await.expect(200);
}
