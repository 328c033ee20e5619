//! `/api/v1/tokens`: creation from JSON and form bodies (every spelling of `scopes`), expiry
//! forms and RFC 3339 times, the refusals (400 naming the field, 403, 409) that change
//! nothing, deletion (204, 404 across accounts), and rotation of the calling token with and
//! without a grace period, across a restart.

use super::{bearer, get};
use crate::support::{START, TestServer};
use http::Method;
use serde_json::{Value, json};
use std::time::Duration;
use upkeep::Settings;
use upkeep::clock::Clock;
use upkeep::model::Timestamp;

const MINUTE: Duration = Duration::from_secs(60);

const FORM: &str = "application/x-www-form-urlencoded";

/// The fields of a token on `/api/v1/tokens`, without the secret.
const LISTED_FIELDS: [&str; 6] = [
    "created_at",
    "expired",
    "expires_at",
    "last_used_at",
    "name",
    "scopes",
];

/// `POST path` with a JSON body (labelled `application/json`) and Bearer.
async fn post_json(
    server: &TestServer,
    path: &str,
    token: &str,
    body: Value,
) -> crate::support::Reply {
    server
        .request(Method::POST, path)
        .header("authorization", &bearer(token))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
}

/// `POST path` with a raw body and an optional Content-Type, Bearer.
async fn post_raw(
    server: &TestServer,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: &str,
) -> crate::support::Reply {
    let mut call = server
        .request(Method::POST, path)
        .header("authorization", &bearer(token));
    if let Some(kind) = content_type {
        call = call.header("content-type", kind);
    }
    call.body(body.to_owned()).send().await
}

/// `POST /api/v1/tokens/self/rotate`, optionally with a body.
async fn rotate(
    server: &TestServer,
    token: &str,
    content_type: Option<&str>,
    body: &str,
) -> crate::support::Reply {
    post_raw(
        server,
        "/api/v1/tokens/self/rotate",
        token,
        content_type,
        body,
    )
    .await
}

/// `DELETE path` with Bearer.
async fn delete(server: &TestServer, path: &str, token: &str) -> crate::support::Reply {
    server
        .request(Method::DELETE, path)
        .header("authorization", &bearer(token))
        .send()
        .await
}

/// Asserts that `token` authenticates (on `GET /api/v1/me`; it needs `read_user`).
async fn works(server: &TestServer, token: &str, what: &str) {
    let reply = get(server, "/api/v1/me", token).await;
    assert_eq!(reply.status.as_u16(), 200, "{what} should work:{reply:?}");
}

/// Asserts that `token` no longer authenticates (401 with `WWW-Authenticate: Bearer`).
async fn refused(server: &TestServer, token: &str, what: &str) {
    let reply = get(server, "/api/v1/me", token).await;
    assert_eq!(reply.status.as_u16(), 401, "{what} should be 401:{reply:?}");
    reply.expect_error(401, "unauthenticated");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer"),
        "{reply:?}"
    );
}

/// `GET /api/v1/tokens`: the `data` array, checked for shape (no secret field).
async fn list(server: &TestServer, token: &str) -> Vec<Value> {
    let reply = get(server, "/api/v1/tokens", token).await;
    let body = reply.expect(200);
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["data", "next_cursor"],
        "{reply:?}"
    );
    assert!(body["next_cursor"].is_null(), "one page:{reply:?}");
    let data = body["data"].as_array().expect("data array").clone();
    for item in &data {
        let mut keys: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, LISTED_FIELDS, "listed token fields:{reply:?}");
    }
    data
}

/// `GET /api/v1/tokens` without `last_used_at` (which any authenticated request, even a
/// refused one, may move): what a refused request must leave unchanged.
async fn stored(server: &TestServer, token: &str) -> Vec<Value> {
    let mut data = list(server, token).await;
    for item in &mut data {
        item.as_object_mut().unwrap().remove("last_used_at");
    }
    data
}

/// The names in `GET /api/v1/tokens`, sorted.
async fn names(server: &TestServer, token: &str) -> Vec<String> {
    let mut names: Vec<String> = list(server, token)
        .await
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}

/// The listed token named `name`.
async fn listed(server: &TestServer, token: &str, name: &str) -> Value {
    list(server, token)
        .await
        .into_iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("token {name} is listed"))
}

/// Checks a `201 {"data":{…,"token"}}` creation/rotation reply and returns its `data`.
#[track_caller]
fn created(reply: &crate::support::Reply) -> Value {
    let body = reply.expect(201);
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["data"],
        "{reply:?}"
    );
    let data = body["data"].clone();
    let mut keys: Vec<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = LISTED_FIELDS.to_vec();
    expected.push("token");
    expected.sort_unstable();
    assert_eq!(keys, expected, "created token fields:{reply:?}");
    let secret = data["token"].as_str().expect("token string");
    assert!(secret.starts_with("upk_at_"), "{secret}");
    assert_eq!(secret.len(), upkeep::token::TOKEN_LEN, "{secret}");
    data
}

fn secret(data: &Value) -> String {
    data["token"].as_str().expect("token").to_owned()
}

fn rfc3339(at: Timestamp) -> String {
    at.to_rfc3339()
}

#[tokio::test]
async fn json_and_form_bodies_create_the_same_tokens() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let expected_scopes = json!(["read_user", "reports"]);
    // (name, content type, body): every spelling of the same two scopes.
    let cases: Vec<(&str, Option<&str>, String)> = vec![
        (
            "json-array",
            Some("application/json"),
            json!({"name": "json-array", "scopes": ["read_user", "reports"]}).to_string(),
        ),
        (
            "json-string",
            Some("application/json"),
            json!({"name": "json-string", "scopes": "read_user,reports"}).to_string(),
        ),
        (
            "json-spaced",
            None,
            json!({"name": "json-spaced", "scopes": " read_user , reports "}).to_string(),
        ),
        (
            // What `curl -d '{…}'` sends: JSON labelled as a form.
            "json-as-form",
            Some(FORM),
            json!({"name": "json-as-form", "scopes": ["read_user", "reports"]}).to_string(),
        ),
        (
            "form-repeated",
            Some(FORM),
            "name=form-repeated&scopes=read_user&scopes=reports".to_owned(),
        ),
        (
            "form-brackets",
            Some(FORM),
            "name=form-brackets&scopes[]=read_user&scopes[]=reports".to_owned(),
        ),
        (
            "form-brackets-encoded",
            Some(FORM),
            "name=form-brackets-encoded&scopes%5B%5D=read_user&scopes%5B%5D=reports".to_owned(),
        ),
        (
            "form-comma",
            Some(FORM),
            "name=form-comma&scopes=read_user,reports".to_owned(),
        ),
        (
            "form-comma-encoded",
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            "name=form-comma-encoded&scopes=read_user%2Creports".to_owned(),
        ),
        (
            // No Content-Type: a non-JSON body on /api/v1 is read as a form.
            "form-unlabelled",
            None,
            "name=form-unlabelled&scopes=read_user&scopes=reports".to_owned(),
        ),
    ];
    let mut secrets = vec![acme.token.clone()];
    for (name, content_type, body) in &cases {
        let reply = post_raw(&server, "/api/v1/tokens", &acme.token, *content_type, body).await;
        let data = created(&reply);
        assert_eq!(data["name"], *name, "{reply:?}");
        assert_eq!(data["scopes"], expected_scopes, "{reply:?}");
        assert_eq!(data["expires_at"], Value::Null, "{reply:?}");
        assert_eq!(data["created_at"], rfc3339(START), "{reply:?}");
        assert_eq!(data["last_used_at"], Value::Null, "{reply:?}");
        assert_eq!(data["expired"], false, "{reply:?}");
        let token = secret(&data);
        assert!(!secrets.contains(&token), "every secret is new");
        // The new token authenticates, within its scopes only.
        works(&server, &token, name).await;
        get(&server, "/api/v1/tokens", &token)
            .await
            .expect_error(403, "forbidden");
        secrets.push(token);
    }

    // The list: every token once, with the same view, and no secret anywhere.
    let raw = get(&server, "/api/v1/tokens", &acme.token).await;
    let text = String::from_utf8_lossy(&raw.body).into_owned();
    for token in &secrets {
        assert!(!text.contains(token.as_str()), "a secret is listed: {text}");
    }
    assert!(
        !text.contains("upk_"),
        "nothing token-like is listed: {text}"
    );
    let data = list(&server, &acme.token).await;
    assert_eq!(data.len(), cases.len() + 1);
    for (name, _, _) in &cases {
        let view = data.iter().find(|t| t["name"] == *name).unwrap();
        assert_eq!(
            *view,
            json!({
                "name": name,
                "scopes": expected_scopes,
                "expires_at": null,
                "created_at": rfc3339(START),
                "last_used_at": rfc3339(START),
                "expired": false,
            })
        );
    }
    let default = data.iter().find(|t| t["name"] == "default").unwrap();
    assert_eq!(default["scopes"], json!(["api"]));
}

#[tokio::test]
async fn expiry_is_given_as_expires_in_or_expires_at_and_rendered_in_rfc3339() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    assert_eq!(rfc3339(START), "2026-11-24T00:00:00Z");

    let in_90d = post_json(
        &server,
        "/api/v1/tokens",
        &acme.token,
        json!({"name": "ninety", "scopes": ["api"], "expires_in": "90d"}),
    )
    .await;
    assert_eq!(created(&in_90d)["expires_at"], "2027-02-22T00:00:00Z");

    let form_90d = post_raw(
        &server,
        "/api/v1/tokens",
        &acme.token,
        Some(FORM),
        "name=form-ninety&scopes=api&expires_in=90d",
    )
    .await;
    assert_eq!(created(&form_90d)["expires_at"], "2027-02-22T00:00:00Z");

    let twelve = post_json(
        &server,
        "/api/v1/tokens",
        &acme.token,
        json!({"name": "twelve", "scopes": ["read_user"], "expires_in": "12h"}),
    )
    .await;
    let twelve = created(&twelve);
    assert_eq!(twelve["expires_at"], "2026-11-24T12:00:00Z");

    let at = post_json(
        &server,
        "/api/v1/tokens",
        &acme.token,
        json!({"name": "at", "scopes": ["read_user"], "expires_at": "2027-01-31T12:00:00Z"}),
    )
    .await;
    assert_eq!(created(&at)["expires_at"], "2027-01-31T12:00:00Z");

    let form_at = post_raw(
        &server,
        "/api/v1/tokens",
        &acme.token,
        Some(FORM),
        "name=form-at&scopes=read_user&expires_at=2027-01-31T12%3A00%3A00Z",
    )
    .await;
    assert_eq!(created(&form_at)["expires_at"], "2027-01-31T12:00:00Z");

    let never = post_json(
        &server,
        "/api/v1/tokens",
        &acme.token,
        json!({"name": "never", "scopes": ["read_user"]}),
    )
    .await;
    let never = created(&never);
    assert_eq!(never["expires_at"], Value::Null);

    // The listing renders the same times.
    let data = list(&server, &acme.token).await;
    let expires: Vec<(String, Value)> = data
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["expires_at"].clone(),
            )
        })
        .collect();
    assert_eq!(
        expires,
        [
            ("at".to_owned(), json!("2027-01-31T12:00:00Z")),
            ("default".to_owned(), Value::Null),
            ("form-at".to_owned(), json!("2027-01-31T12:00:00Z")),
            ("form-ninety".to_owned(), json!("2027-02-22T00:00:00Z")),
            ("never".to_owned(), Value::Null),
            ("ninety".to_owned(), json!("2027-02-22T00:00:00Z")),
            ("twelve".to_owned(), json!("2026-11-24T12:00:00Z")),
        ]
    );

    // At the expiry the 12-hour token stops working and is listed as expired.
    let twelve_secret = secret(&twelve);
    server.clock.advance(Duration::from_secs(12 * 3600 - 1));
    works(&server, &twelve_secret, "twelve, a second before expiry").await;
    server.clock.advance(Duration::from_secs(1));
    refused(&server, &twelve_secret, "twelve at its expiry").await;
    works(&server, &secret(&never), "never").await;
    let view = listed(&server, &acme.token, "twelve").await;
    assert_eq!(view["expired"], true);
    assert_eq!(view["expires_at"], "2026-11-24T12:00:00Z");
    assert_eq!(
        listed(&server, &acme.token, "never").await["expired"],
        false
    );
}

#[tokio::test]
async fn expires_at_accepts_rfc3339_numeric_offsets() {
    // RFC 3339 allows `+hh:mm` offsets, and PHP's `date('c')` (what UpdaterCloud's
    // clients send) writes `+00:00`. Each names the same instant as the `Z` form.
    let server = TestServer::start().await;
    let acme = server.account("acme");
    for (name, text) in [
        ("plus-zero", "2027-01-31T12:00:00+00:00"),
        ("plus-two", "2027-01-31T14:00:00+02:00"),
        ("minus-five", "2027-01-31T07:00:00-05:00"),
    ] {
        let reply = post_json(
            &server,
            "/api/v1/tokens",
            &acme.token,
            json!({"name": name, "scopes": ["read_user"], "expires_at": text}),
        )
        .await;
        assert_eq!(
            created(&reply)["expires_at"],
            "2027-01-31T12:00:00Z",
            "{text}"
        );
    }
}

#[tokio::test]
async fn bad_create_requests_are_400_and_change_nothing() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let taken = post_json(
        &server,
        "/api/v1/tokens",
        &acme.token,
        json!({"name": "taken", "scopes": ["api"]}),
    )
    .await;
    created(&taken);
    let before = stored(&server, &acme.token).await;

    let yesterday = rfc3339(Timestamp::from_secs(START.as_secs() - 86_400));
    let now = rfc3339(START);
    let long_name = "a".repeat(65);
    // (JSON body, what the message must name)
    let json_cases: Vec<(Value, &str)> = vec![
        (json!({"name": "Bad Name", "scopes": ["api"]}), "name:"),
        (json!({"name": "under_score", "scopes": ["api"]}), "name:"),
        (json!({"name": "", "scopes": ["api"]}), "name:"),
        (json!({"name": long_name, "scopes": ["api"]}), "name:"),
        (json!({"name": 7, "scopes": ["api"]}), "name"),
        (json!({"scopes": ["api"]}), "`name`"),
        (json!({"name": "x"}), "`scopes`"),
        (json!({"name": "x", "scopes": []}), "scopes:"),
        (json!({"name": "x", "scopes": ""}), "scopes:"),
        (json!({"name": "x", "scopes": " , "}), "scopes:"),
        (json!({"name": "x", "scopes": ["root"]}), "scopes:"),
        (json!({"name": "x", "scopes": ["api", "admin"]}), "`admin`"),
        (json!({"name": "x", "scopes": "api,admin"}), "`admin`"),
        (json!({"name": "x", "scopes": 1}), "scopes"),
        (
            json!({"name": "x", "scopes": ["api"], "expires_in": "90d",
                   "expires_at": "2027-01-31T12:00:00Z"}),
            "expires_",
        ),
        (
            json!({"name": "x", "scopes": ["api"], "expires_in": "soon"}),
            "expires_in:",
        ),
        (
            json!({"name": "x", "scopes": ["api"], "expires_in": "90"}),
            "expires_in:",
        ),
        (
            json!({"name": "x", "scopes": ["api"], "expires_in": "0s"}),
            "expires_in:",
        ),
        (
            json!({"name": "x", "scopes": ["api"], "expires_in": "0d"}),
            "expires_in:",
        ),
        (
            json!({"name": "x", "scopes": ["api"], "expires_in": 90}),
            "expires_in",
        ),
        (
            json!({"name": "x", "scopes": ["api"], "expires_at": yesterday}),
            "expires_at:",
        ),
        (
            json!({"name": "x", "scopes": ["api"], "expires_at": now}),
            "expires_at:",
        ),
        (
            json!({"name": "x", "scopes": ["api"], "expires_at": "next tuesday"}),
            "expires_at:",
        ),
        (
            json!({"name": "x", "scopes": ["api"], "expire": "90d"}),
            "`expire`",
        ),
    ];
    for (body, needle) in json_cases {
        let reply = post_json(&server, "/api/v1/tokens", &acme.token, body.clone()).await;
        let message = reply.expect_error(400, "invalid_request");
        assert!(
            message.contains(needle),
            "{body}: message {message:?} lacks {needle:?}"
        );
    }
    // The same refusals from form bodies.
    let form_cases: Vec<(&str, &str)> = vec![
        ("name=Bad+Name&scopes=api", "name:"),
        ("name=&scopes=api", "name:"),
        ("scopes=api", "`name`"),
        ("name=x", "`scopes`"),
        ("name=x&scopes=", "scopes:"),
        ("name=x&scopes[]=", "scopes:"),
        ("name=x&scopes=root", "scopes:"),
        ("name=x&scopes=api&scopes=admin", "`admin`"),
        (
            "name=x&scopes=api&expires_in=90d&expires_at=2027-01-31T12:00:00Z",
            "expires_",
        ),
        ("name=x&scopes=api&expires_in=never", "expires_in:"),
        ("name=x&scopes=api&expires_in=0s", "expires_in:"),
        (
            "name=x&scopes=api&expires_at=2026-11-23T00:00:00Z",
            "expires_at:",
        ),
        ("name=x&scopes=api&colour=red", "`colour`"),
        ("name=x&name=y&scopes=api", "name"),
    ];
    for (body, needle) in form_cases {
        let reply = post_raw(&server, "/api/v1/tokens", &acme.token, Some(FORM), body).await;
        let message = reply.expect_error(400, "invalid_request");
        assert!(
            message.contains(needle),
            "{body}: message {message:?} lacks {needle:?}"
        );
    }
    // Malformed JSON and an empty body.
    for raw in [
        "{\"name\": \"x\"",
        "{\"name\":\"x\",\"scopes\":[\"api\"]} x",
        "",
        "[]",
    ] {
        post_raw(
            &server,
            "/api/v1/tokens",
            &acme.token,
            Some("application/json"),
            raw,
        )
        .await
        .expect_error(400, "invalid_request");
    }
    // Duplicates, from JSON and from a form.
    for (content_type, body) in [
        (
            Some("application/json"),
            json!({"name": "taken", "scopes": ["read_user"]}).to_string(),
        ),
        (Some(FORM), "name=taken&scopes=api".to_owned()),
        (None, "name=default&scopes=api".to_owned()),
    ] {
        let message = post_raw(&server, "/api/v1/tokens", &acme.token, content_type, &body)
            .await
            .expect_error(409, "conflict");
        assert!(
            message.contains("taken") || message.contains("default"),
            "{message}"
        );
    }
    // On /api/v1 a body that is not JSON is read as a form whatever its label (SPEC §3):
    // these are forms with fields the endpoint does not know.
    for (content_type, body) in [
        ("application/xml", "<token name='x'/>"),
        ("multipart/form-data; boundary=x", "--x--"),
    ] {
        post_raw(
            &server,
            "/api/v1/tokens",
            &acme.token,
            Some(content_type),
            body,
        )
        .await
        .expect_error(400, "invalid_request");
    }

    assert_eq!(
        stored(&server, &acme.token).await,
        before,
        "nothing changed"
    );
}

#[tokio::test]
async fn managing_tokens_needs_the_api_scope() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let manager = server.token(&acme, "manager", &["manage_licenses"], None);
    let reader = server.token(&acme, "reader", &["read_user"], None);
    let before = stored(&server, &acme.token).await;

    for token in [&manager, &reader] {
        get(&server, "/api/v1/tokens", token)
            .await
            .expect_error(403, "forbidden");
        // Not even a token with less than it holds: creating tokens needs `api`.
        post_json(
            &server,
            "/api/v1/tokens",
            token,
            json!({"name": "lesser", "scopes": ["read_licenses"]}),
        )
        .await
        .expect_error(403, "forbidden");
        post_raw(
            &server,
            "/api/v1/tokens",
            token,
            Some(FORM),
            "name=escalate&scopes=api",
        )
        .await
        .expect_error(403, "forbidden");
        delete(&server, "/api/v1/tokens/default", token)
            .await
            .expect_error(403, "forbidden");
    }
    // Unauthenticated requests change nothing either.
    server
        .request(Method::POST, "/api/v1/tokens")
        .header("content-type", "application/json")
        .body(json!({"name": "anon", "scopes": ["api"]}).to_string())
        .send()
        .await
        .expect_error(401, "unauthenticated");

    assert_eq!(
        stored(&server, &acme.token).await,
        before,
        "nothing changed"
    );
    works(&server, &acme.token, "default").await;
}

#[tokio::test]
async fn delete_is_204_and_the_token_stops_working() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let globex = server.account("globex");
    let globex_ci = server.token(&globex, "globex-ci", &["read_user"], None);
    let reply = post_json(
        &server,
        "/api/v1/tokens",
        &acme.token,
        json!({"name": "ci", "scopes": ["read_user"]}),
    )
    .await;
    let ci = secret(&created(&reply));
    works(&server, &ci, "ci").await;

    let reply = delete(&server, "/api/v1/tokens/ci", &acme.token).await;
    assert_eq!(reply.status.as_u16(), 204, "{reply:?}");
    assert!(reply.body.is_empty(), "204 has no body:{reply:?}");
    refused(&server, &ci, "deleted ci").await;
    assert_eq!(names(&server, &acme.token).await, ["default"]);

    // Again, unknown, malformed: 404.
    for path in [
        "/api/v1/tokens/ci",
        "/api/v1/tokens/no-such-token",
        "/api/v1/tokens/UPPER",
    ] {
        delete(&server, path, &acme.token)
            .await
            .expect_error(404, "not_found");
    }
    // Another account's token name is 404, and that token keeps working.
    delete(&server, "/api/v1/tokens/globex-ci", &acme.token)
        .await
        .expect_error(404, "not_found");
    works(&server, &globex_ci, "globex-ci").await;
    assert_eq!(
        names(&server, &globex.token).await,
        ["default", "globex-ci"]
    );

    // x-api-key works on /api/v1 too.
    let reply = server
        .delete("/api/v1/tokens/globex-ci", &globex.token)
        .send()
        .await;
    assert_eq!(reply.status.as_u16(), 204, "{reply:?}");
    refused(&server, &globex_ci, "deleted globex-ci").await;
    assert_eq!(names(&server, &acme.token).await, ["default"]);
}

#[tokio::test]
async fn rotation_without_grace_retires_the_old_secret_at_once() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let in_10d = Timestamp::from_secs(START.as_secs() + 10 * 86_400);
    let old = server.token(&acme, "ci", &["api"], Some(in_10d));
    works(&server, &old, "ci before rotation").await;
    server.clock.advance(MINUTE);

    // No body at all.
    let reply = rotate(&server, &old, None, "").await;
    let data = created(&reply);
    assert_eq!(data["name"], "ci");
    assert_eq!(data["scopes"], json!(["api"]));
    assert_eq!(data["expires_at"], rfc3339(in_10d), "expiry is kept");
    assert_eq!(data["created_at"], rfc3339(START), "creation time is kept");
    assert_eq!(data["expired"], false);
    let new = secret(&data);
    assert_ne!(new, old);

    refused(&server, &old, "old secret without grace").await;
    works(&server, &new, "new secret").await;
    assert_eq!(names(&server, &acme.token).await, ["ci", "default"]);

    // An empty JSON object means the same.
    let reply = rotate(&server, &new, Some("application/json"), "{}").await;
    let newer = secret(&created(&reply));
    refused(&server, &new, "second secret without grace").await;
    works(&server, &newer, "third secret").await;
    assert_eq!(names(&server, &acme.token).await, ["ci", "default"]);
}

#[tokio::test]
async fn rotation_with_grace_keeps_the_old_secret_for_the_grace_only() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let json_old = server.token(&acme, "json-ci", &["api"], None);
    let form_old = server.token(&acme, "form-ci", &["api"], None);

    let reply = rotate(
        &server,
        &json_old,
        Some("application/json"),
        r#"{"grace":"1h"}"#,
    )
    .await;
    let json_new = secret(&created(&reply));
    let reply = rotate(&server, &form_old, Some(FORM), "grace=1h").await;
    let form_new = secret(&created(&reply));

    let all = [
        (&json_old, "json old"),
        (&json_new, "json new"),
        (&form_old, "form old"),
        (&form_new, "form new"),
    ];
    for (token, what) in all {
        works(&server, token, what).await;
    }
    server.clock.advance(59 * MINUTE);
    for (token, what) in all {
        works(&server, token, what).await;
    }
    // The old secret authenticates as the same token, with the same scopes.
    assert_eq!(
        names(&server, &json_old).await,
        ["default", "form-ci", "json-ci"],
        "the list shows each rotated token once"
    );
    server.clock.advance(2 * MINUTE);
    refused(&server, &json_old, "json old after grace").await;
    refused(&server, &form_old, "form old after grace").await;
    works(&server, &json_new, "json new after grace").await;
    works(&server, &form_new, "form new after grace").await;
    // And never again.
    server.clock.advance(Duration::from_secs(86_400));
    refused(&server, &json_old, "json old a day later").await;
    works(&server, &json_new, "json new a day later").await;
    assert_eq!(
        names(&server, &acme.token).await,
        ["default", "form-ci", "json-ci"]
    );
}

#[tokio::test]
async fn any_account_token_may_rotate_itself() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let reader = server.token(&acme, "reader", &["read_user"], None);
    let reports = server.token(&acme, "reports", &["reports"], None);

    let data = created(&rotate(&server, &reader, None, "").await);
    assert_eq!(data["name"], "reader");
    assert_eq!(data["scopes"], json!(["read_user"]));
    let new_reader = secret(&data);
    refused(&server, &reader, "old reader").await;
    works(&server, &new_reader, "new reader").await;
    // Rotation grants nothing new.
    get(&server, "/api/v1/tokens", &new_reader)
        .await
        .expect_error(403, "forbidden");

    // A token that cannot even read /me may rotate itself.
    let data = created(&rotate(&server, &reports, Some(FORM), "grace=10m").await);
    assert_eq!(data["scopes"], json!(["reports"]));
    let new_reports = secret(&data);
    for token in [&reports, &new_reports] {
        get(&server, "/api/v1/me", token)
            .await
            .expect_error(403, "forbidden");
    }
    assert_eq!(
        names(&server, &acme.token).await,
        ["default", "reader", "reports"]
    );
}

#[tokio::test]
async fn bad_rotations_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let ci = server.token(&acme, "ci", &["api"], None);
    let before = stored(&server, &acme.token).await;

    for (content_type, body, needle) in [
        (Some("application/json"), r#"{"grace":"31d"}"#, "grace:"),
        (Some("application/json"), r#"{"grace":"721h"}"#, "grace:"),
        (Some(FORM), "grace=31d", "grace:"),
        (Some("application/json"), r#"{"grace":"soon"}"#, "grace:"),
        (Some(FORM), "grace=-1h", "grace:"),
        (Some("application/json"), r#"{"grace":3600}"#, "grace"),
        (Some("application/json"), r#"{"graze":"1h"}"#, "`graze`"),
        (Some(FORM), "grace=1h&name=other", "`name`"),
        (Some("application/json"), r#"{"grace":"1h""#, "JSON"),
    ] {
        let reply = rotate(&server, &ci, content_type, body).await;
        let message = reply.expect_error(400, "invalid_request");
        assert!(
            message.contains(needle),
            "{body}: message {message:?} lacks {needle:?}"
        );
    }
    // A form labelled text/plain is still read as a form on /api/v1 (SPEC §3); this
    // rotation succeeds, so carry on with its new secret.
    let ci = rotate(&server, &ci, Some("text/plain"), "grace=1h")
        .await
        .expect(201)["data"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // An operator token is not an account token.
    let operator = server.operator_token("root", true, true, None);
    rotate(&server, &operator, None, "")
        .await
        .expect_error(403, "forbidden");
    rotate(&server, &operator, Some(FORM), "grace=1h")
        .await
        .expect_error(403, "forbidden");

    // The secret is unchanged: the same string still works, the list is the same.
    works(&server, &ci, "ci after refused rotations").await;
    assert_eq!(
        stored(&server, &acme.token).await,
        before,
        "nothing changed"
    );

    // Exactly 30 days is the longest grace allowed.
    let data = created(&rotate(&server, &ci, Some("application/json"), r#"{"grace":"30d"}"#).await);
    let new = secret(&data);
    server.clock.advance(Duration::from_secs(30 * 86_400 - 60));
    works(&server, &ci, "old secret within a 30-day grace").await;
    server.clock.advance(2 * MINUTE);
    refused(&server, &ci, "old secret after a 30-day grace").await;
    works(&server, &new, "new secret after a 30-day grace").await;
}

#[tokio::test]
async fn rotating_twice_within_a_grace_keeps_each_old_secret_until_its_own_grace_ends() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let first = server.token(&acme, "ci", &["api"], None);

    // T0: first → second, first valid until T0+60m.
    let second = secret(&created(
        &rotate(
            &server,
            &first,
            Some("application/json"),
            r#"{"grace":"1h"}"#,
        )
        .await,
    ));
    // T0+30m: second → third, second valid until T0+90m.
    server.clock.advance(30 * MINUTE);
    let third = secret(&created(
        &rotate(&server, &second, Some(FORM), "grace=1h").await,
    ));
    for (token, what) in [(&first, "first"), (&second, "second"), (&third, "third")] {
        works(&server, token, what).await;
    }
    assert_eq!(names(&server, &acme.token).await, ["ci", "default"]);

    // T0+59m: all three still work.
    server.clock.advance(29 * MINUTE);
    for (token, what) in [(&first, "first"), (&second, "second"), (&third, "third")] {
        works(&server, token, what).await;
    }
    // T0+61m: the first grace is over; the second's is not.
    server.clock.advance(2 * MINUTE);
    refused(&server, &first, "first after its grace").await;
    works(&server, &second, "second within its grace").await;
    works(&server, &third, "third").await;
    // T0+91m: only the current secret is left.
    server.clock.advance(30 * MINUTE);
    refused(&server, &first, "first").await;
    refused(&server, &second, "second after its grace").await;
    works(&server, &third, "third").await;
    assert_eq!(names(&server, &acme.token).await, ["ci", "default"]);
}

#[tokio::test]
async fn deleting_a_rotated_token_also_retires_its_grace_secret() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let old = server.token(&acme, "ci", &["api"], None);
    let new = secret(&created(
        &rotate(&server, &old, Some("application/json"), r#"{"grace":"1h"}"#).await,
    ));
    works(&server, &old, "old within grace").await;

    let reply = delete(&server, "/api/v1/tokens/ci", &acme.token).await;
    assert_eq!(reply.status.as_u16(), 204, "{reply:?}");
    refused(&server, &old, "old secret of a deleted token").await;
    refused(&server, &new, "new secret of a deleted token").await;
    assert_eq!(names(&server, &acme.token).await, ["default"]);

    // A new token with the same name does not revive either secret.
    let reply = post_json(
        &server,
        "/api/v1/tokens",
        &acme.token,
        json!({"name": "ci", "scopes": ["api"]}),
    )
    .await;
    let fresh = secret(&created(&reply));
    works(&server, &fresh, "fresh ci").await;
    refused(&server, &old, "old secret after re-creation").await;
    refused(&server, &new, "new secret after re-creation").await;
}

#[tokio::test]
async fn deleting_the_account_retires_grace_secrets_too() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let operator = server.operator_token("root", true, true, None);
    let old = server.token(&acme, "ci", &["api"], None);
    let new = secret(&created(
        &rotate(&server, &old, Some(FORM), "grace=1h").await,
    ));
    works(&server, &old, "old within grace").await;
    server
        .delete_with("/_/account", &operator, json!({"prefix": "acme"}))
        .send()
        .await
        .expect(200);
    refused(&server, &old, "old secret of a deleted account").await;
    refused(&server, &new, "new secret of a deleted account").await;
    refused(&server, &acme.token, "default of a deleted account").await;
}

#[tokio::test]
async fn grace_periods_survive_a_restart() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let first = server.token(&acme, "ci", &["api"], None);
    // START: first → second, first valid until START+60m.
    let second = secret(&created(
        &rotate(
            &server,
            &first,
            Some("application/json"),
            r#"{"grace":"1h"}"#,
        )
        .await,
    ));
    // START+10m: second → third, second valid until START+70m.
    server.clock.advance(10 * MINUTE);
    let third = secret(&created(
        &rotate(&server, &second, Some(FORM), "grace=1h").await,
    ));
    works(&server, &first, "first before restart").await;

    let (dir, path) = server.stop().await;
    let restarted_at = Timestamp::from_secs(START.as_secs() + 30 * 60);
    let server =
        TestServer::start_in(&path, Clock::manual(restarted_at), Settings::default()).await;

    // START+30m
    works(&server, &first, "first after restart, within its grace").await;
    works(&server, &second, "second after restart, within its grace").await;
    works(&server, &third, "third after restart").await;
    assert_eq!(names(&server, &third).await, ["ci", "default"]);
    // START+61m
    server.clock.advance(31 * MINUTE);
    refused(&server, &first, "first after its grace").await;
    works(&server, &second, "second within its grace").await;
    works(&server, &third, "third").await;
    // START+71m
    server.clock.advance(10 * MINUTE);
    refused(&server, &second, "second after its grace").await;
    works(&server, &third, "third").await;
    drop(server);
    drop(dir);
}

#[tokio::test]
async fn rotating_with_a_secret_still_in_its_grace_is_refused() {
    // Issue 15: the old secret used to rotate the token again, replacing the owner's new
    // secret (a lock-out). A grace secret may read, never rotate.
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let first = server.token(&acme, "ci", &["read_user"], None);
    let rotate = |token: &str, body: Value| {
        server
            .request(Method::POST, "/api/v1/tokens/self/rotate")
            .header("authorization", &format!("Bearer {token}"))
            .body(body.to_string())
    };
    let second = rotate(&first, json!({"grace": "1h"}))
        .send()
        .await
        .expect(201)["data"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    rotate(&first, json!({}))
        .send()
        .await
        .expect_error(403, "forbidden");
    // Both secrets still work; the token still has its name.
    server.get("/v1/account", &second).send().await.expect(200);
    server.get("/v1/account", &first).send().await.expect(200);
    let list = server
        .get("/api/v1/tokens", &acme.token)
        .send()
        .await
        .expect(200);
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci", "default"]);
}

/// Regression: an expiry past the year 9999 was stored, then panicked while rendered as
/// RFC 3339 (found by reading the code behind schemathesis's inputs).
#[tokio::test]
async fn expiries_past_the_year_9999_are_refused_before_anything_is_written() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    for body in [
        json!({"name": "far", "scopes": ["api"], "expires_in": "100000years"}),
        json!({"name": "far", "scopes": ["api"], "expires_at": "9999-12-31T23:59:59-23:59"}),
    ] {
        let message = server
            .request(Method::POST, "/api/v1/tokens")
            .header("authorization", &format!("Bearer {}", acme.token))
            .body(body.to_string())
            .send()
            .await
            .expect_error(400, "invalid_request");
        assert!(message.contains("year 10000"), "{message}");
    }
    let operator = server.operator_token("admin", true, true, None);
    server
        .request(Method::POST, "/_/token")
        .header("authorization", &format!("Bearer {operator}"))
        .body(json!({"name": "far", "expiration_date": u64::MAX / 2}).to_string())
        .send()
        .await
        .expect_error(400, "invalid_request");
    let list = server
        .get("/api/v1/tokens", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "nothing was written"
    );
}

#[tokio::test]
async fn a_form_body_is_read_whatever_its_content_type_says() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let body = server
        .request(Method::POST, "/api/v1/tokens")
        .header("authorization", &format!("Bearer {}", acme.token))
        .header("content-type", "text/plain")
        .body("name=labelled&scopes=read_user")
        .send()
        .await
        .expect(201);
    assert_eq!(body["data"]["name"], "labelled");
    assert_eq!(body["data"]["scopes"], json!(["read_user"]));
}

#[tokio::test]
async fn a_token_used_only_to_rotate_shows_when_it_was_used() {
    // Issue 14: the rotate request was the token's only use, recorded against the old
    // secret and dropped with it, so the token listed `last_used_at: null`.
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let old = server.token(&acme, "rotor", &["read_user"], None);
    server.clock.advance(MINUTE);
    let at = server.now().to_rfc3339();
    let reply = rotate(&server, &old, Some("application/json"), "{}").await;
    created(&reply);
    let listed = get(&server, "/api/v1/tokens", &acme.token)
        .await
        .expect(200);
    let rotor = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "rotor")
        .unwrap()
        .clone();
    assert_eq!(rotor["last_used_at"], serde_json::json!(at), "{listed}");
}
