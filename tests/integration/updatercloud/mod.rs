//! SPEC §4.2, the UpdaterCloud REST API (`/api/v1/…`), over a real socket, one file per
//! resource: `/me`, the tokens with their rotation, the catalogue, customer licensing.

pub(crate) mod catalog;
mod licensing;
mod me;
mod tokens;

use crate::support::TestServer;
use http::Method;

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
