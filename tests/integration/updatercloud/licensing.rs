//! SPEC §9.1: customer licensing over a real socket — customers, Generate Download Key,
//! keys read back, activations, the generator setting — and the bad inputs answered with
//! a clear 4xx that changes nothing: keys with whitespace, a negative limit, an expiry in
//! the past, an email differing only in case, another account's ids. No issued key is
//! ever on disk in the clear.

use super::bearer;
use crate::support::{Reply, TestServer};
use http::Method;
use serde_json::{Value, json};
use std::path::Path;

async fn send(server: &TestServer, method: Method, path: &str, token: &str, body: Value) -> Reply {
    let call = server
        .request(method, path)
        .header("authorization", &bearer(token));
    let call = if body.is_null() {
        call
    } else {
        call.body(body.to_string())
    };
    call.send().await
}

/// `GET path` with `token`, answered `200`: its body.
async fn get_ok(server: &TestServer, token: &str, path: &str) -> Value {
    send(server, Method::GET, path, token, Value::Null)
        .await
        .expect(200)
}

async fn product(server: &TestServer, token: &str, slug: &str) -> u64 {
    send(
        server,
        Method::POST,
        "/api/v1/products",
        token,
        json!({"slug": slug, "license": "download_keys"}),
    )
    .await
    .expect(201)["data"]["id"]
        .as_u64()
        .unwrap()
}

async fn customer(server: &TestServer, token: &str, email: &str) -> u64 {
    send(
        server,
        Method::POST,
        "/api/v1/customers",
        token,
        json!({"name": "Ann Example", "email": email}),
    )
    .await
    .expect(201)["data"]["id"]
        .as_u64()
        .unwrap()
}

/// A new download key of customer `c` for product `p`, as generated (`201`): the answer.
async fn new_key(server: &TestServer, token: &str, c: u64, p: u64) -> Value {
    send(
        server,
        Method::POST,
        "/api/v1/download-keys",
        token,
        json!({"customer_id": c, "product_ids": [p]}),
    )
    .await
    .expect(201)
}

#[tokio::test]
async fn customers_are_created_found_changed_and_unique_by_email_in_any_case() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let t = &acme.token;
    let created = send(
        &server,
        Method::POST,
        "/api/v1/customers",
        t,
        json!({"name": "Ann Example", "email": "Ann@Example.com", "country": "de"}),
    )
    .await
    .expect(201);
    let id = created["data"]["id"].as_u64().unwrap();
    assert_eq!(created["data"]["entity"], "individual");
    assert_eq!(created["data"]["country"], "DE");
    // The same email in another case is taken.
    let message = send(
        &server,
        Method::POST,
        "/api/v1/customers",
        t,
        json!({"name": "Imposter", "email": "ann@EXAMPLE.com"}),
    )
    .await
    .expect_error(409, "customer_exists");
    assert!(message.contains("case-insensitively"), "{message}");
    // Form bodies work too; a business needs its name.
    let reply = server
        .request(Method::POST, "/api/v1/customers")
        .header("authorization", &bearer(t))
        .body("name=Bob&email=bob%40example.com&entity=business")
        .send()
        .await;
    let message = reply.expect_error(400, "invalid_request");
    assert!(message.starts_with("business_name:"), "{message}");
    for (body, field) in [
        (json!({"email": "x@example.com"}), "name:"),
        (json!({"name": "X"}), "email:"),
        (json!({"name": "X", "email": "not an email"}), "email:"),
        (
            json!({"name": "X", "email": "x@y.z", "country": "DEU"}),
            "country:",
        ),
        (
            json!({"name": "X", "email": "x@y.z", "color": "red"}),
            "color",
        ),
    ] {
        let message = send(&server, Method::POST, "/api/v1/customers", t, body)
            .await
            .expect_error(400, "invalid_request");
        assert!(message.contains(field), "{message}");
    }
    customer(&server, t, "zed@example.com").await;
    let found = get_ok(&server, t, "/api/v1/customers?q=ANN%40").await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    assert_eq!(found["data"][0]["id"], id);
    let by_name = get_ok(&server, t, "/api/v1/customers?q=ann%20ex").await;
    assert_eq!(
        by_name["data"].as_array().unwrap().len(),
        2,
        "both are Ann Example"
    );
    let all = get_ok(&server, t, "/api/v1/customers?limit=1").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
    assert!(all["next_cursor"].is_string());
    let changed = send(
        &server,
        Method::PATCH,
        &format!("/api/v1/customers/{id}"),
        t,
        json!({"email": "ANN@example.com", "country": null, "city": "Berlin"}),
    )
    .await
    .expect(200);
    assert_eq!(
        changed["data"]["email"], "ANN@example.com",
        "its own email, recased"
    );
    assert_eq!(changed["data"]["country"], Value::Null);
    assert_eq!(changed["data"]["city"], "Berlin");
}

#[tokio::test]
async fn download_keys_are_generated_imported_read_back_and_refused_when_bad() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let t = &acme.token;
    let p = product(&server, t, "pro").await;
    let c = customer(&server, t, "ann@example.com").await;
    let created = new_key(&server, t, c, p).await;
    let data = &created["data"];
    let key = data["key"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 36, "a uuid4 by default: {key}");
    assert_eq!(data["activation_limit"], 1);
    assert_eq!(data["status"], "active");
    assert_eq!(data["product_ids"], json!([p]));
    assert_eq!(data["activations"], json!({"limit": 1, "usage": 0}));
    let id = data["id"].as_u64().unwrap();
    // Readable again, and found by the key itself (any case) or by its filters.
    let got = get_ok(&server, t, &format!("/api/v1/download-keys/{id}")).await;
    assert_eq!(got["data"]["key"], key);
    for query in [
        format!("key={}", key.to_uppercase()),
        format!("customer_id={c}"),
        format!("product_id={p}"),
    ] {
        let listed = get_ok(&server, t, &format!("/api/v1/download-keys?{query}")).await;
        assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{query}");
        assert_eq!(listed["data"][0]["key"], key, "{query}");
    }
    let none = get_ok(&server, t, "/api/v1/download-keys?key=not%20a%20key").await;
    assert!(none["data"].as_array().unwrap().is_empty());

    // The segmented generator; a lowercase copy of a segmented key is the same key.
    let settings = send(
        &server,
        Method::PUT,
        "/api/v1/settings/download-keys",
        t,
        json!({"generator": "segmented"}),
    )
    .await
    .expect(200);
    assert_eq!(settings["data"]["segments"], 5);
    let segmented = send(
        &server,
        Method::POST,
        "/api/v1/download-keys",
        t,
        json!({"customer_id": c.to_string(), "product_ids": "all", "activation_limit": 0, "expires_in": "365d"}),
    )
    .await
    .expect(201);
    let seg = segmented["data"]["key"].as_str().unwrap().to_owned();
    assert_eq!(seg.len(), 29, "{seg}");
    assert_eq!(segmented["data"]["product_ids"], "all");
    assert!(segmented["data"]["expires_at"].is_string());
    let lower = send(
        &server,
        Method::GET,
        &format!("/api/v1/download-keys?key={}", seg.to_lowercase()),
        t,
        Value::Null,
    )
    .await
    .expect(200);
    assert_eq!(lower["data"][0]["key"], seg);
    let dup = send(
        &server,
        Method::POST,
        "/api/v1/download-keys",
        t,
        json!({"customer_id": c, "product_ids": [p], "key": seg.to_lowercase()}),
    )
    .await;
    dup.expect_error(409, "key_exists");

    // Imports: surrounding whitespace is trimmed, inner whitespace refused.
    let imported = send(
        &server,
        Method::POST,
        "/api/v1/download-keys",
        t,
        json!({"customer_id": c, "product_ids": [p], "key": "  LEGACY-key-0001\n"}),
    )
    .await
    .expect(201);
    assert_eq!(imported["data"]["key"], "LEGACY-key-0001");
    // `null` for an optional field is the field left out (the public schema says so).
    let nulls = send(
        &server,
        Method::POST,
        "/api/v1/download-keys",
        t,
        json!({"customer_id": c, "product_ids": [p], "key": null, "activation_limit": null,
               "expires_at": null, "notes": null}),
    )
    .await
    .expect(201);
    assert_eq!(nulls["data"]["activation_limit"], 1);
    assert!(nulls["data"]["expires_at"].is_null());
    assert_eq!(
        nulls["data"]["key"].as_str().unwrap().len(),
        29,
        "generated (segmented)"
    );
    let nulls = send(
        &server,
        Method::POST,
        "/api/v1/download-keys",
        t,
        json!({"customer_id": c, "product_ids": [p], "expires_in": null}),
    )
    .await
    .expect(201);
    assert!(nulls["data"]["expires_at"].is_null());
    let unchanged = send(
        &server,
        Method::PATCH,
        &format!("/api/v1/download-keys/{}", nulls["data"]["id"]),
        t,
        json!({"activation_limit": null, "expires_in": null}),
    )
    .await
    .expect(200);
    assert_eq!(unchanged["data"]["activation_limit"], 1);
    assert!(unchanged["data"]["expires_at"].is_null());
    // The schema's bounds: the largest limit, and an `expires_at` (even `null`) beside an
    // `expires_in` is refused on both routes.
    let largest = send(
        &server,
        Method::PATCH,
        &format!("/api/v1/download-keys/{}", nulls["data"]["id"]),
        t,
        json!({"activation_limit": 4_294_967_295u64}),
    )
    .await
    .expect(200);
    assert_eq!(largest["data"]["activation_limit"], 4_294_967_295u64);
    for (method, path) in [
        (Method::POST, "/api/v1/download-keys".to_owned()),
        (
            Method::PATCH,
            format!("/api/v1/download-keys/{}", nulls["data"]["id"]),
        ),
    ] {
        for (body, field) in [
            (
                json!({"activation_limit": 4_294_967_296u64}),
                "activation_limit:",
            ),
            (
                json!({"expires_at": null, "expires_in": "1d"}),
                "expires_in:",
            ),
        ] {
            let mut body = body;
            body["customer_id"] = json!(c);
            body["product_ids"] = json!([p]);
            let message = send(&server, method.clone(), &path, t, body)
                .await
                .expect_error(400, "invalid_request");
            assert!(message.starts_with(field), "{method} {message}");
        }
    }
    let past = "2001-01-01T00:00:00Z";
    for (body, field) in [
        (
            json!({"customer_id": c, "product_ids": [p], "key": "has inner space"}),
            "key:",
        ),
        (
            json!({"customer_id": c, "product_ids": [p], "key": "short"}),
            "key:",
        ),
        (
            json!({"customer_id": c, "product_ids": [p], "key": "sl/sh-key-123"}),
            "key:",
        ),
        (
            json!({"customer_id": c, "product_ids": [p], "activation_limit": -1}),
            "activation_limit:",
        ),
        (
            json!({"customer_id": c, "product_ids": [p], "expires_at": past}),
            "expires_at:",
        ),
        (
            json!({"customer_id": c, "product_ids": [p], "expires_at": past, "expires_in": "1d"}),
            "expires_in:",
        ),
        (json!({"customer_id": c, "product_ids": []}), "product_ids:"),
        (
            json!({"customer_id": c, "product_ids": [12345]}),
            "product_ids:",
        ),
        (
            json!({"customer_id": 12345, "product_ids": [p]}),
            "customer_id:",
        ),
        (json!({"product_ids": [p]}), "customer_id:"),
        (json!({"customer_id": c}), "product_ids:"),
    ] {
        let message = send(
            &server,
            Method::POST,
            "/api/v1/download-keys",
            t,
            body.clone(),
        )
        .await
        .expect_error(400, "invalid_request");
        assert!(message.starts_with(field), "{body}: {message}");
    }
    let message = send(
        &server,
        Method::PATCH,
        &format!("/api/v1/download-keys/{id}"),
        t,
        json!({"expires_at": past}),
    )
    .await
    .expect_error(400, "invalid_request");
    assert!(message.starts_with("expires_at:"), "{message}");
    let keys = get_ok(&server, t, "/api/v1/download-keys").await;
    assert_eq!(
        keys["data"].as_array().unwrap().len(),
        5,
        "the five made above, and nothing of the refusals"
    );

    // Disable, change, enable.
    let disabled = send(
        &server,
        Method::PATCH,
        &format!("/api/v1/download-keys/{id}"),
        t,
        json!({"status": "disabled", "activation_limit": 3, "expires_at": null}),
    )
    .await
    .expect(200);
    assert_eq!(disabled["data"]["status"], "disabled");
    assert_eq!(disabled["data"]["activations"]["limit"], 3);
    assert_eq!(disabled["data"]["key"], key, "the key never changes");
    let message = send(
        &server,
        Method::PATCH,
        &format!("/api/v1/download-keys/{id}"),
        t,
        json!({"key": "another-key-123"}),
    )
    .await
    .expect_error(400, "invalid_request");
    assert!(message.starts_with("key:"), "{message}");
}

#[tokio::test]
async fn another_accounts_customers_keys_and_activations_are_404() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let globex = server.account("globex");
    let p = product(&server, &acme.token, "pro").await;
    let c = customer(&server, &acme.token, "ann@example.com").await;
    let k = send(
        &server,
        Method::POST,
        "/api/v1/download-keys",
        &acme.token,
        json!({"customer_id": c, "product_ids": [p], "key": "shared-key-value"}),
    )
    .await
    .expect(201)["data"]["id"]
        .as_u64()
        .unwrap();
    let g = &globex.token;
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/customers/{c}"), Value::Null),
        (
            Method::PATCH,
            format!("/api/v1/customers/{c}"),
            json!({"name": "X"}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/customers/{c}"),
            Value::Null,
        ),
        (
            Method::GET,
            format!("/api/v1/download-keys/{k}"),
            Value::Null,
        ),
        (
            Method::PATCH,
            format!("/api/v1/download-keys/{k}"),
            json!({"status": "disabled"}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/download-keys/{k}"),
            Value::Null,
        ),
        (
            Method::GET,
            format!("/api/v1/download-keys/{k}/activations"),
            Value::Null,
        ),
        (
            Method::DELETE,
            format!("/api/v1/activations/{k}"),
            Value::Null,
        ),
    ] {
        send(&server, method.clone(), &path, g, body)
            .await
            .expect_error(404, "not_found");
    }
    // Globex cannot issue a key to acme's customer or for acme's product…
    let gc = customer(&server, g, "ann@example.com").await;
    for body in [
        json!({"customer_id": c, "product_ids": "all"}),
        json!({"customer_id": gc, "product_ids": [p]}),
    ] {
        send(&server, Method::POST, "/api/v1/download-keys", g, body)
            .await
            .expect_error(400, "invalid_request");
    }
    // …but may hold the same key string: keys are unique per account, and neither
    // account sees the other's.
    send(
        &server,
        Method::POST,
        "/api/v1/download-keys",
        g,
        json!({"customer_id": gc, "product_ids": "all", "key": "shared-key-value"}),
    )
    .await
    .expect(201);
    let seen = get_ok(&server, g, "/api/v1/download-keys").await;
    assert_eq!(seen["data"].as_array().unwrap().len(), 1);
    assert_ne!(seen["data"][0]["id"], k);
    // Acme's records are untouched.
    send(
        &server,
        Method::GET,
        &format!("/api/v1/download-keys/{k}"),
        &acme.token,
        Value::Null,
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn activations_are_listed_deleted_counted_and_cascade_with_their_customer() {
    use upkeep::service::licensing as lic;
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let t = &acme.token;
    let p = product(&server, t, "pro").await;
    let c = customer(&server, t, "ann@example.com").await;
    let created = send(
        &server,
        Method::POST,
        "/api/v1/download-keys",
        t,
        json!({"customer_id": c, "product_ids": [p], "activation_limit": 2}),
    )
    .await
    .expect(201);
    let k = created["data"]["id"].as_u64().unwrap();
    let key = created["data"]["key"].as_str().unwrap().to_owned();
    let prefix = upkeep::model::AccountPrefix::parse("acme").unwrap();
    let events = upkeep::service::Events::default();
    let rules = lic::ActivationRules {
        default_activation_limit: 0,
        ..lic::ActivationRules::default()
    };
    let activate = |site: &str| {
        let ctx = upkeep::service::Ctx {
            store: server.store(),
            events: &events,
            actor: upkeep::service::Actor::Cli,
            now: server.now(),
        };
        lic::activate(
            &ctx,
            &rules,
            &prefix,
            Some(upkeep::model::ProductId(p)),
            Some(&key),
            lic::Target::Site(upkeep::model::normalize_site(site).unwrap()),
            None,
            None,
        )
        .unwrap()
        .durable_blocking()
        .unwrap()
    };
    assert!(activate("https://www.shop.example.com/").valid());
    assert!(activate("shop.local").valid());
    let listed = get_ok(
        &server,
        t,
        &format!("/api/v1/download-keys/{k}/activations"),
    )
    .await;
    let items = listed["data"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items.iter().filter(|a| a["counts"] == true).count(), 1);
    let counted = items.iter().find(|a| a["counts"] == true).unwrap();
    assert_eq!(counted["site"], "shop.example.com");
    assert_eq!(counted["kind"], "site");
    let key_view = get_ok(&server, t, &format!("/api/v1/download-keys/{k}")).await;
    assert_eq!(
        key_view["data"]["activations"],
        json!({"limit": 2, "usage": 1})
    );
    let account = get_ok(&server, t, "/v1/account").await;
    assert_eq!(account["account"]["activationUsage"], 1);
    let activation = counted["id"].as_u64().unwrap();
    send(
        &server,
        Method::DELETE,
        &format!("/api/v1/activations/{activation}"),
        t,
        Value::Null,
    )
    .await
    .expect(204);
    let account = get_ok(&server, t, "/v1/account").await;
    assert_eq!(account["account"]["activationUsage"], 0, "the slot is free");
    assert!(activate("other.example.com").valid());
    // Deleting the customer takes its keys and their activations.
    send(
        &server,
        Method::DELETE,
        &format!("/api/v1/customers/{c}"),
        t,
        Value::Null,
    )
    .await
    .expect(204);
    send(
        &server,
        Method::GET,
        &format!("/api/v1/download-keys/{k}"),
        t,
        Value::Null,
    )
    .await
    .expect_error(404, "not_found");
    let account = get_ok(&server, t, "/v1/account").await;
    assert_eq!(account["account"]["activationUsage"], 0);
    assert_eq!(
        lic::validate(
            server.store(),
            &prefix,
            None,
            Some(&key),
            None,
            server.now()
        )
        .unwrap(),
        lic::ValidationCode::NotFound
    );
}

#[tokio::test]
async fn deleting_a_product_drops_it_from_keys_which_stay() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let t = &acme.token;
    let p = product(&server, t, "pro").await;
    let q = product(&server, t, "lite").await;
    let c = customer(&server, t, "ann@example.com").await;
    let k = send(
        &server,
        Method::POST,
        "/api/v1/download-keys",
        t,
        json!({"customer_id": c, "product_ids": [p, q]}),
    )
    .await
    .expect(201)["data"]["id"]
        .as_u64()
        .unwrap();
    send(
        &server,
        Method::DELETE,
        &format!("/api/v1/products/{p}"),
        t,
        Value::Null,
    )
    .await
    .expect(204);
    let got = get_ok(&server, t, &format!("/api/v1/download-keys/{k}")).await;
    assert_eq!(got["data"]["product_ids"], json!([q]));
    send(
        &server,
        Method::DELETE,
        &format!("/api/v1/products/{q}"),
        t,
        Value::Null,
    )
    .await
    .expect(204);
    let got = get_ok(&server, t, &format!("/api/v1/download-keys/{k}")).await;
    assert_eq!(got["data"]["product_ids"], json!([]));
}

#[tokio::test]
async fn the_generator_setting_is_checked() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let t = &acme.token;
    let got = get_ok(&server, t, "/api/v1/settings/download-keys").await;
    assert_eq!(got["data"]["generator"], "uuid4");
    for (body, field) in [
        (json!({"generator": "words"}), "generator:"),
        (
            json!({"generator": "segmented", "segments": 1, "segment_len": 4}),
            "segments:",
        ),
        // Keys of 2 segments would not be recognized as segmented, so would not compare
        // case-insensitively (SPEC §9): refused.
        (
            json!({"generator": "segmented", "segments": 2, "segment_len": 10}),
            "segments:",
        ),
        (
            json!({"generator": "segmented", "alphabet": "AAB"}),
            "alphabet:",
        ),
        (json!({"generator": "uuid4", "segments": 3}), "generator:"),
    ] {
        let message = send(
            &server,
            Method::PUT,
            "/api/v1/settings/download-keys",
            t,
            body,
        )
        .await
        .expect_error(400, "invalid_request");
        assert!(message.starts_with(field), "{message}");
    }
    let set = send(
        &server,
        Method::PUT,
        "/api/v1/settings/download-keys",
        t,
        json!({"generator": "segmented", "alphabet": "ABCDEFGHJKLMNPQRSTUVWXYZ23456789", "segments": 4, "segment_len": 6}),
    )
    .await
    .expect(200);
    assert_eq!(set["data"]["segment_len"], 6);
    // A `null`, as GET answers for what a generator does not use, is the default: what
    // GET gave can be sent back (the JSON schema documents it; schemathesis sent one).
    let back = send(
        &server,
        Method::PUT,
        "/api/v1/settings/download-keys",
        t,
        json!({"generator": "segmented", "alphabet": null, "segments": null, "segment_len": 5}),
    )
    .await
    .expect(200);
    assert_eq!(back["data"]["segment_len"], 5);
    assert_eq!(
        back["data"]["segments"], 5,
        "the default, not the last setting"
    );
    let uuid = send(
        &server,
        Method::PUT,
        "/api/v1/settings/download-keys",
        t,
        got["data"].clone(),
    )
    .await
    .expect(200);
    assert_eq!(uuid["data"], got["data"], "GET's own answer, put back");
    let doc = get_ok(&server, t, "/openapi.json").await;
    let schemas = &doc["components"]["schemas"];
    for field in ["alphabet", "segments", "segment_len"] {
        assert_eq!(
            schemas["PutDownloadKeySettings"]["properties"][field]["anyOf"][1]["type"], "null",
            "{field}"
        );
    }
}

/// A JSON `null` in an update, for a field that has no "no value" (a name, an email, a
/// key's customer, products or status), changes nothing, as the JSON schemas document;
/// the same `null` where a value is required (a new customer's name, a new key's
/// customer) is a 400 naming the field.
#[tokio::test]
async fn a_null_in_an_update_leaves_the_field_as_it_was() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let t = &acme.token;
    let p = product(&server, t, "nulled").await;
    let c = customer(&server, t, "null@example.com").await;
    let changed = send(
        &server,
        Method::PATCH,
        &format!("/api/v1/customers/{c}"),
        t,
        json!({"name": null, "email": null, "entity": null, "phone": "+1 555"}),
    )
    .await
    .expect(200);
    assert_eq!(changed["data"]["name"], "Ann Example");
    assert_eq!(changed["data"]["email"], "null@example.com");
    assert_eq!(changed["data"]["entity"], "individual");
    assert_eq!(changed["data"]["phone"], "+1 555");
    let key = new_key(&server, t, c, p).await;
    let id = key["data"]["id"].as_u64().unwrap();
    let changed = send(
        &server,
        Method::PATCH,
        &format!("/api/v1/download-keys/{id}"),
        t,
        json!({"customer_id": null, "product_ids": null, "status": null, "activation_limit": 3}),
    )
    .await
    .expect(200);
    assert_eq!(changed["data"]["customer_id"], c);
    assert_eq!(changed["data"]["product_ids"], json!([p]));
    assert_eq!(changed["data"]["status"], "active");
    assert_eq!(changed["data"]["activation_limit"], 3);
    for (path, body, field) in [
        (
            "/api/v1/customers",
            json!({"name": null, "email": "x@example.com"}),
            "name",
        ),
        (
            "/api/v1/download-keys",
            json!({"customer_id": null, "product_ids": [p]}),
            "customer_id",
        ),
    ] {
        let message = send(&server, Method::POST, path, t, body)
            .await
            .expect_error(400, "invalid_request");
        assert!(message.starts_with(field), "{message}");
    }
    let doc = get_ok(&server, t, "/openapi.json").await;
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("UpdateCustomer", "name"),
        ("UpdateCustomer", "email"),
        ("UpdateCustomer", "entity"),
        ("UpdateDownloadKey", "customer_id"),
        ("UpdateDownloadKey", "product_ids"),
        ("UpdateDownloadKey", "status"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["anyOf"][1]["type"], "null",
            "{schema}.{field}"
        );
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[tokio::test]
async fn no_issued_key_is_on_disk_in_the_clear() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let t = &acme.token;
    let p = product(&server, t, "pro").await;
    let c = customer(&server, t, "ann@example.com").await;
    let mut keys = Vec::new();
    for body in [
        json!({"customer_id": c, "product_ids": [p]}),
        json!({"customer_id": c, "product_ids": "all", "key": "IMPORTED-legacy-key-42"}),
    ] {
        let reply = send(&server, Method::POST, "/api/v1/download-keys", t, body)
            .await
            .expect(201);
        keys.push(reply["data"]["key"].as_str().unwrap().to_owned());
    }
    send(
        &server,
        Method::PUT,
        "/api/v1/settings/download-keys",
        t,
        json!({"generator": "segmented"}),
    )
    .await
    .expect(200);
    let reply = new_key(&server, t, c, p).await;
    keys.push(reply["data"]["key"].as_str().unwrap().to_owned());
    server.store().flush().await.unwrap();
    let (dir, path) = server.stop().await;
    let mut all = Vec::new();
    files(&path, &mut all);
    assert!(all.iter().any(|f| f.ends_with("db/db")), "{all:?}");
    // The control: what is stored in the clear (the customer's email) is found this way.
    let email = b"ann@example.com";
    assert!(
        all.iter().any(|file| std::fs::read(file)
            .unwrap()
            .windows(email.len())
            .any(|w| w == email)),
        "the records were flushed"
    );
    for file in &all {
        let bytes = std::fs::read(file).unwrap();
        for key in &keys {
            for form in [key.clone(), key.to_lowercase(), key.to_uppercase()] {
                assert!(
                    !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
                    "{} holds key {form}",
                    file.display()
                );
            }
        }
    }
    drop(dir);
}

/// SPEC §3: the `/api/v1` key routes also take form bodies. The document gives them
/// their own schemas (`GenerateDownloadKeyForm`, `UpdateDownloadKeyForm`): a form sends
/// text and cannot send `null`, so neither admits one, and each value a form cannot mean
/// (empty, `null` as text) is refused naming its field, changing nothing.
#[tokio::test]
async fn download_keys_take_the_form_bodies_their_form_schemas_document() {
    const FORM: &str = "application/x-www-form-urlencoded";
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let t = &acme.token;
    let p = product(&server, t, "formed").await;
    let c = customer(&server, t, "form@example.com").await;
    let doc = server
        .request(Method::GET, "/openapi.json")
        .send()
        .await
        .expect(200);
    let schemas = &doc["components"]["schemas"];
    for (path, method, form, json) in [
        (
            "/api/v1/download-keys",
            "post",
            "GenerateDownloadKeyForm",
            "GenerateDownloadKey",
        ),
        (
            "/api/v1/download-keys/{id}",
            "patch",
            "UpdateDownloadKeyForm",
            "UpdateDownloadKey",
        ),
    ] {
        let content = &doc["paths"][path][method]["requestBody"]["content"];
        assert_eq!(
            content[FORM]["schema"]["$ref"],
            format!("#/components/schemas/{form}")
        );
        assert_eq!(
            content["application/json"]["schema"]["$ref"],
            format!("#/components/schemas/{json}")
        );
        let properties = &schemas[form]["properties"];
        let names: Vec<&String> = properties.as_object().unwrap().keys().collect();
        assert_eq!(
            names,
            schemas[json]["properties"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            "{form}: the JSON body's fields"
        );
        assert!(
            !properties.to_string().contains("null"),
            "{form} admits null: {properties}"
        );
        assert!(
            schemas[json]["properties"].to_string().contains("null"),
            "{json} admits null"
        );
        assert_eq!(
            schemas[form]["not"]["required"],
            json!(["expires_at", "expires_in"])
        );
    }

    let form = |method: Method, path: &str, body: String| {
        server
            .request(method, path)
            .header("authorization", &bearer(t))
            .header("content-type", FORM)
            .body(body)
            .send()
    };
    let made = form(
        Method::POST,
        "/api/v1/download-keys",
        format!(
            "customer_id={c}&product_ids=all&activation_limit=5&expires_in=30d\
             &key=+imported-key-123+&notes="
        ),
    )
    .await
    .expect(201);
    let data = &made["data"];
    assert_eq!(data["activation_limit"], 5);
    assert_eq!(data["product_ids"], "all");
    assert!(data["expires_at"].is_string(), "{data}");
    assert_eq!(data["key"], "imported-key-123", "trimmed as pasted");
    assert!(data["notes"].is_null(), "an empty form field is no notes");
    let id = data["id"].as_u64().unwrap();
    let listed = form(
        Method::POST,
        "/api/v1/download-keys",
        format!("customer_id={c}&product_ids=+{p}+"),
    )
    .await
    .expect(201);
    assert_eq!(listed["data"]["product_ids"], json!([p]));
    assert_eq!(listed["data"]["activation_limit"], 1, "the default");
    let changed = form(
        Method::PATCH,
        &format!("/api/v1/download-keys/{id}"),
        "activation_limit=0&status=disabled".to_owned(),
    )
    .await
    .expect(200);
    assert_eq!(changed["data"]["activation_limit"], 0);
    assert_eq!(changed["data"]["status"], "disabled");
    assert_eq!(
        changed["data"]["expires_at"], data["expires_at"],
        "unchanged"
    );

    let later = "2099-01-01T00:00:00Z";
    for (method, path) in [
        (Method::POST, "/api/v1/download-keys".to_owned()),
        (Method::PATCH, format!("/api/v1/download-keys/{id}")),
    ] {
        for (fields, field) in [
            ("activation_limit=null", "activation_limit:"),
            ("activation_limit=", "activation_limit:"),
            ("expires_at=", "expires_at:"),
            ("expires_in=", "expires_in:"),
            (&*format!("expires_at={later}&expires_in=1d"), "expires_in:"),
            // Ids are digits between commas, as the form schema's pattern says.
            (&*format!("product_ids=%2B{p}"), "product_ids:"),
            (&*format!("product_ids={p},"), "product_ids:"),
            (&*format!("product_ids=,{p}"), "product_ids:"),
            (&*format!("product_ids={p},,{p}"), "product_ids:"),
        ] {
            let body = if fields.starts_with("product_ids=") {
                format!("customer_id={c}&{fields}")
            } else {
                format!("customer_id={c}&product_ids=all&{fields}")
            };
            let message = form(method.clone(), &path, body)
                .await
                .expect_error(400, "invalid_request");
            assert!(message.starts_with(field), "{method} {fields}: {message}");
        }
    }
    let keys = get_ok(&server, t, "/api/v1/download-keys").await;
    assert_eq!(
        keys["data"].as_array().unwrap().len(),
        2,
        "nothing of the refusals"
    );
    let kept = get_ok(&server, t, &format!("/api/v1/download-keys/{id}")).await;
    assert_eq!(kept["data"]["activation_limit"], 0);
    assert_eq!(kept["data"]["status"], "disabled");
}

/// A customer's name of only whitespace is no name: refused naming `name`, whether it comes
/// in JSON or a form, on a create or an update, and the customer stays as it was; the
/// OpenAPI document says so with the same pattern as every other required name.
#[tokio::test]
async fn a_customer_name_of_only_whitespace_is_refused_in_json_and_forms() {
    const FORM: &str = "application/x-www-form-urlencoded";
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let t = &acme.token;
    let form = |method: Method, path: String, body: &str| {
        server
            .request(method, &path)
            .header("authorization", &bearer(t))
            .header("content-type", FORM)
            .body(body.to_owned())
            .send()
    };
    let blank = json!({"name": " \t\u{2003}", "email": "blank@example.com"});
    let msg = send(&server, Method::POST, "/api/v1/customers", t, blank)
        .await
        .expect_error(400, "invalid_request");
    assert!(msg.starts_with("name"), "{msg}");
    let msg = form(
        Method::POST,
        "/api/v1/customers".to_owned(),
        "name=%20%09&email=blank%40example.com",
    )
    .await
    .expect_error(400, "invalid_request");
    assert!(msg.starts_with("name"), "{msg}");
    let c = customer(&server, t, "ann@example.com").await;
    let path = format!("/api/v1/customers/{c}");
    let msg = send(&server, Method::PATCH, &path, t, json!({"name": "  "}))
        .await
        .expect_error(400, "invalid_request");
    assert!(msg.starts_with("name"), "{msg}");
    let msg = form(Method::PATCH, path.clone(), "name=%20")
        .await
        .expect_error(400, "invalid_request");
    assert!(msg.starts_with("name"), "{msg}");
    assert_eq!(
        get_ok(&server, t, &path).await["data"]["name"],
        "Ann Example"
    );
    let listed = get_ok(&server, t, "/api/v1/customers").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");

    let doc = server
        .request(Method::GET, "/openapi.json")
        .send()
        .await
        .expect(200);
    let schemas = &doc["components"]["schemas"];
    let pattern = &schemas["GroupBody"]["properties"]["name"]["pattern"];
    assert!(pattern.is_string());
    for body in ["CreateCustomer", "CreateCustomerForm", "UpdateCustomerForm"] {
        assert_eq!(
            schemas[body]["properties"]["name"]["pattern"], *pattern,
            "{body}"
        );
    }
    assert_eq!(
        schemas["UpdateCustomer"]["properties"]["name"]["anyOf"][0]["pattern"],
        *pattern
    );
}

/// The ids of a listing's page, in its order.
fn ids_of(page: &Value) -> Vec<u64> {
    let items = page["data"].as_array().unwrap();
    items
        .iter()
        .map(|item| item["id"].as_u64().unwrap())
        .collect()
}

/// The ids a listing gives through every cursor, `limit` at a time (`path` has a query
/// already), and how many pages it took; each page holds at most `limit`.
async fn ids_through_cursors(
    server: &TestServer,
    token: &str,
    path: &str,
    limit: usize,
) -> (Vec<u64>, usize) {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut at = format!("{path}&limit={limit}");
        if let Some(cursor) = &cursor {
            at.push_str(&format!("&cursor={cursor}"));
        }
        let page = get_ok(server, token, &at).await;
        pages += 1;
        let ids = ids_of(&page);
        assert!(ids.len() <= limit, "{at}: {page}");
        seen.extend(ids);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (seen, pages),
        }
    }
}

/// Filtered listings page like the plain ones: by id, `limit` at a time, each page's cursor
/// leading to the next, with the records the filter keeps and no others — keys covering
/// a product (listed, or `"all"`), customers whose name or email starts with `q` — and a
/// cursor whose record was deleted meanwhile still leads on.
#[tokio::test]
async fn filtered_listings_page_by_id_through_every_cursor() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let t = &acme.token;
    let (p, q) = (
        product(&server, t, "pro").await,
        product(&server, t, "other").await,
    );
    let c = customer(&server, t, "ann@example.com").await;
    let mut covering = Vec::new();
    for i in 0..13 {
        let products = match i % 3 {
            0 => json!([p]),
            1 => json!([q]),
            _ => json!("all"),
        };
        let made = send(
            &server,
            Method::POST,
            "/api/v1/download-keys",
            t,
            json!({"customer_id": c, "product_ids": products}),
        )
        .await
        .expect(201);
        if i % 3 != 1 {
            covering.push(made["data"]["id"].as_u64().unwrap());
        }
    }
    covering.sort_unstable();
    assert_eq!(covering.len(), 9);
    let keys = format!("/api/v1/download-keys?product_id={p}");
    assert_eq!(
        ids_through_cursors(&server, t, &keys, 4).await,
        (covering.clone(), 3)
    );
    assert_eq!(
        ids_through_cursors(&server, t, &keys, 1000).await.0,
        covering
    );

    // The first page's last key is deleted: its cursor still leads to the rest.
    let first = get_ok(&server, t, &format!("{keys}&limit=2")).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let gone = covering[1];
    send(
        &server,
        Method::DELETE,
        &format!("/api/v1/download-keys/{gone}"),
        t,
        Value::Null,
    )
    .await
    .expect(204);
    let rest = get_ok(&server, t, &format!("{keys}&limit=100&cursor={cursor}")).await;
    assert_eq!(ids_of(&rest), covering[2..]);
    // So does a customer's (read whole, kept by id): its second key is deleted after the
    // first page named it.
    let by_customer = format!("/api/v1/download-keys?customer_id={c}");
    let first = get_ok(&server, t, &format!("{by_customer}&limit=2")).await;
    let mine = ids_of(&first);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    send(
        &server,
        Method::DELETE,
        &format!("/api/v1/download-keys/{}", mine[1]),
        t,
        Value::Null,
    )
    .await
    .expect(204);
    let rest = get_ok(
        &server,
        t,
        &format!("{by_customer}&limit=100&cursor={cursor}"),
    )
    .await;
    let rest = ids_of(&rest);
    assert_eq!(rest.len(), 13 - 2 - 1, "{rest:?}");
    assert!(
        rest.iter().all(|id| *id > mine[1]) && rest.is_sorted(),
        "{rest:?}"
    );

    // Customers by the start of their email or name, any case: all ten are named Ann
    // Example, four have emails starting with zed.
    let mut zeds = Vec::new();
    for i in 0..9 {
        let email = format!("{}{i}@example.com", if i % 2 == 0 { "ann" } else { "zed" });
        let id = customer(&server, t, &email).await;
        if i % 2 == 1 {
            zeds.push(id);
        }
    }
    zeds.sort_unstable();
    let by_email = "/api/v1/customers?q=ZED";
    assert_eq!(
        ids_through_cursors(&server, t, by_email, 3).await,
        (zeds, 2)
    );
    let (named, pages) = ids_through_cursors(&server, t, "/api/v1/customers?q=ann%20ex", 3).await;
    assert_eq!((named.len(), pages), (10, 4));
    assert!(named.is_sorted(), "{named:?}");
}
