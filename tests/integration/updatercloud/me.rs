//! `GET /api/v1/me`: exactly name, email and account, for the caller's own account, and the
//! scope it needs (403 without `read_user`).

use super::get;
use crate::support::TestServer;
use serde_json::json;

#[tokio::test]
async fn me_has_exactly_name_email_and_account() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let body = get(&server, "/api/v1/me", &acme.token).await.expect(200);
    assert_eq!(
        body,
        json!({"name": "Test Vendor", "email": "acme@example.com", "account": "acme"})
    );
    // x-api-key works as well as Bearer; `read_user` alone is enough.
    let reader = server.token(&acme, "reader", &["read_user"], None);
    let body = server.get("/api/v1/me", &reader).send().await.expect(200);
    assert_eq!(body["account"], "acme");
    // Another account sees itself.
    let globex = server.account("globex");
    let body = get(&server, "/api/v1/me", &globex.token).await.expect(200);
    assert_eq!(body["account"], "globex");
    assert_eq!(body["email"], "globex@example.com");
    // A token without `read_user` (nor `api`) is 403.
    let licenses = server.token(&acme, "licenses", &["manage_licenses"], None);
    get(&server, "/api/v1/me", &licenses)
        .await
        .expect_error(403, "forbidden");
}
