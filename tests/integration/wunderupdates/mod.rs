//! SPEC §4.1 and §7.2, the WunderUpdates API (`/v1/account…`, `/v1/plugins…`,
//! `/v1/themes…`), over a real socket, one file per resource: the account itself, its
//! tokens, its plan license, its catalogue (products, versions, static keys).

mod account;
mod catalog;
mod license;
mod tokens;

use crate::support::TestServer;

pub(super) const DAY: u64 = 86_400;

/// The names in `GET /v1/account/tokens`, sorted.
pub(super) async fn token_names(server: &TestServer, token: &str) -> Vec<String> {
    let body = server
        .get("/v1/account/tokens", token)
        .send()
        .await
        .expect(200);
    let mut names: Vec<String> = body["tokens"]
        .as_array()
        .expect("tokens array")
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}
