//! SPEC §8: the public update checks and downloads over a real socket, in every dialect:
//! checks.rs (the decision: channels, rollout, requirements, nothing to offer, keys),
//! downloads.rs (signed links: streaming, ranges, expiry, forgery, re-checked keys);
//! licensing.rs (SPEC §9.2: UpdaterCloud, EDD and Lemon Squeezy license calls);
//! key_changes.rs (keys deleted, issued again or cascaded away answer at once, across
//! restarts: the store's in-memory key index).
//! reports.rs (SPEC §10: the counts reach the stored rollups, periodically and at shutdown).

mod checks;
mod downloads;
mod key_changes;
mod licensing;
mod reports;

use crate::support::{Reply, TestServer, plugin_zip};
use http::Method;
use serde_json::Value;

/// Releases `zip` through the API (published unless `draft`); returns the version record.
pub(super) async fn release(server: &TestServer, token: &str, zip: Vec<u8>, query: &str) -> Value {
    let res = server
        .request(Method::POST, &format!("/api/v1/releases{query}"))
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/zip")
        .body(zip)
        .send()
        .await;
    res.expect(201)["data"].clone()
}

/// A plugin `slug` with versions `versions` released (each published).
pub(super) async fn plugin_with(
    server: &TestServer,
    token: &str,
    slug: &str,
    versions: &[&str],
) -> Value {
    let mut last = Value::Null;
    for version in versions {
        last = release(server, token, plugin_zip(slug, version, version), "").await;
    }
    last
}

pub(super) async fn get(server: &TestServer, path: &str) -> Reply {
    server
        .request(Method::GET, path)
        .header("user-agent", "WordPress/6.4; https://www.Example.com/shop")
        .send()
        .await
}

pub(super) async fn patch(server: &TestServer, token: &str, path: &str, body: Value) -> Value {
    server
        .request(Method::PATCH, path)
        .header("authorization", &format!("Bearer {token}"))
        .body(body.to_string())
        .send()
        .await
        .expect(200)
}

/// Makes plugin `slug` licensed by static keys (the WunderUpdates API, SPEC §7.2).
pub(super) async fn static_keys(server: &TestServer, token: &str, slug: &str) {
    server
        .put(
            &format!("/v1/plugins/{slug}"),
            token,
            serde_json::json!({"license": {"type": "static-keys"}}),
        )
        .send()
        .await
        .expect(200);
}

pub(super) fn no_store(reply: &Reply) {
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{reply:?}");
}
