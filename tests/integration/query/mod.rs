//! SPEC §4.3, the Query-style server-admin API (`/_/…`), over a real socket, one file per
//! resource: operator tokens, accounts, plan licenses.

mod accounts;
mod licenses;
mod tokens;

use crate::support::{START, TestServer};
use http::Method;
use serde_json::Value;
use upkeep::model::Timestamp;

pub(super) const DAY_MS: u64 = 86_400_000;

pub(super) fn ms(at: Timestamp) -> u64 {
    at.as_millis()
}

/// `START` plus `offset_ms`, in Unix ms.
pub(super) fn at(offset_ms: u64) -> u64 {
    ms(START) + offset_ms
}

pub(super) fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `GET path` with `Authorization: Bearer`.
pub(super) async fn get(server: &TestServer, path: &str, token: &str) -> crate::support::Reply {
    server
        .request(Method::GET, path)
        .header("authorization", &bearer(token))
        .send()
        .await
}

/// `POST path` with a JSON body and Bearer.
pub(super) async fn post(
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

pub(super) async fn delete(
    server: &TestServer,
    path: &str,
    token: &str,
    body: Value,
) -> crate::support::Reply {
    server.delete_with(path, token, body).send().await
}

/// The one item of a `{"data":[item]}` reply with `status`.
#[track_caller]
pub(super) fn single(reply: &crate::support::Reply, status: u16) -> Value {
    let body = reply.expect(status);
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["data"],
        "{reply:?}"
    );
    let data = body["data"].as_array().expect("data array");
    assert_eq!(data.len(), 1, "one item:{reply:?}");
    data[0].clone()
}

/// Keys of a JSON object, sorted.
pub(super) fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    keys
}

pub(super) async fn accounts(server: &TestServer, token: &str) -> Vec<Value> {
    let reply = get(server, "/_/account", token).await;
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    assert!(!text.contains("upk_"), "no account token is listed: {text}");
    reply.expect(200)["data"].as_array().expect("data").clone()
}

pub(super) async fn licenses(server: &TestServer, token: &str) -> Vec<Value> {
    let reply = get(server, "/_/license", token).await;
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    assert!(!text.contains("upk_"), "no license key is listed: {text}");
    let data = reply.expect(200)["data"].as_array().expect("data").clone();
    for item in &data {
        assert!(item.get("key").is_none(), "no key field:{reply:?}");
    }
    data
}
