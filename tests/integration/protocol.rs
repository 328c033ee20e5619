//! HTTP conventions (SPEC §3) over a real socket: the error envelope, 404 vs 405 + Allow,
//! 413, HEAD, request ids, health.

use crate::support::TestServer;
use http::Method;
use serde_json::json;

#[tokio::test]
async fn unknown_routes_are_404_in_the_envelope() {
    let server = TestServer::start().await;
    for path in [
        "//",
        "/v2/account",
        "/v1/account/nope",
        "/v1/account/tokens/a/b",
        "/v1/account?x=1/",
    ] {
        let reply = server.request(Method::GET, path).send().await;
        if path.contains('?') {
            // The query string is not part of the path: `/v1/account` needs a token.
            reply.expect_error(401, "unauthenticated");
        } else {
            reply.expect_error(404, "not_found");
        }
    }
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let reply = server
        .request(Method::PUT, "/v1/account/tokens")
        .header("x-api-key", &acme.token)
        .send()
        .await;
    reply.expect_error(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("GET, HEAD, POST"));
    let reply = server.request(Method::POST, "/v1/account").send().await;
    reply.expect_error(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    let reply = server
        .request(Method::GET, "/v1/account/tokens/default")
        .send()
        .await;
    assert_eq!(reply.header("allow"), Some("DELETE"));
}

#[tokio::test]
async fn oversized_bodies_are_413_and_change_nothing() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let name = "a".repeat(64 * 1024);
    let reply = server
        .post("/v1/account/tokens", &acme.token, json!({ "name": name }))
        .send()
        .await;
    let message = reply.expect_error(413, "payload_too_large");
    assert!(message.contains("65536"), "{message}");
    let list = server
        .get("/v1/account/tokens", &acme.token)
        .send()
        .await
        .expect(200);
    assert_eq!(list["tokens"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_read() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    // Valid JSON padded with whitespace up to the limit: read, then refused for its name.
    let body = format!("{{\"name\": \"ok-name\"}}{}", " ".repeat(64 * 1024 - 19));
    assert_eq!(body.len(), 64 * 1024);
    server
        .request(Method::POST, "/v1/account/tokens")
        .header("x-api-key", &acme.token)
        .body(body)
        .send()
        .await
        .expect(200);
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let reply = server
        .request(Method::HEAD, "/v1/account")
        .header("x-api-key", &acme.token)
        .send()
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn every_response_carries_a_distinct_request_id() {
    let server = TestServer::start().await;
    let first = server.request(Method::GET, "/healthz").send().await;
    let second = server.request(Method::GET, "/nope").send().await;
    let (a, b) = (
        first.header("x-request-id").unwrap(),
        second.header("x-request-id").unwrap(),
    );
    assert_ne!(a, b);
    assert_eq!(a.len(), 17, "{a}");
}

#[tokio::test]
async fn healthz_needs_no_token() {
    let server = TestServer::start().await;
    let body = server
        .request(Method::GET, "/healthz")
        .send()
        .await
        .expect(200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let revision = body["revision"].as_str().expect("revision");
    assert!(
        revision == "unknown"
            || (revision.len() == 12 && revision.bytes().all(|b| b.is_ascii_hexdigit())),
        "{body}"
    );
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
}

#[tokio::test]
async fn disagreeing_credentials_are_401() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let globex = server.account("globex");
    server
        .request(Method::GET, "/v1/account")
        .header("x-api-key", &acme.token)
        .header("authorization", &format!("Bearer {}", globex.token))
        .send()
        .await
        .expect_error(401, "unauthenticated");
}

/// Follows `next_cursor` through a list; returns the names seen and the page sizes.
async fn walk(
    server: &TestServer,
    path: &str,
    token: &str,
    items: &str,
    name: &str,
) -> (Vec<String>, Vec<usize>) {
    let mut names = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?limit=3&cursor={c}"),
            None => format!("{path}?limit=3"),
        };
        let body = server
            .request(Method::GET, &url)
            .header("authorization", &format!("Bearer {token}"))
            .send()
            .await
            .expect(200);
        let page = body[items].as_array().unwrap();
        sizes.push(page.len());
        names.extend(
            page.iter()
                .map(|item| item[name].to_string().trim_matches('"').to_owned()),
        );
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert!(body["next_cursor"].is_null(), "{body}");
                break;
            }
        }
        assert!(sizes.len() < 100, "paging does not end");
    }
    (names, sizes)
}

#[tokio::test]
async fn every_list_is_paged_with_a_cursor() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let operator = server.operator_token("admin", true, true, None);
    for i in 0..6 {
        server.token(&acme, &format!("t{i}"), &["read_user"], None);
        server.operator_token(&format!("op{i}"), true, false, None);
        server.account(&format!("acct{i}"));
        server.license(i + 1, None);
    }
    let (names, sizes) = walk(&server, "/v1/account/tokens", &acme.token, "tokens", "name").await;
    assert_eq!(names, ["default", "t0", "t1", "t2", "t3", "t4", "t5"]);
    assert_eq!(sizes, [3, 3, 1]);
    let (names, _) = walk(&server, "/api/v1/tokens", &acme.token, "data", "name").await;
    assert_eq!(names.len(), 7);
    let (names, _) = walk(&server, "/_/token", &operator, "data", "name").await;
    assert_eq!(names, ["admin", "op0", "op1", "op2", "op3", "op4", "op5"]);
    let (names, sizes) = walk(&server, "/_/account", &operator, "data", "prefix").await;
    assert_eq!(names.len(), 7);
    assert_eq!(sizes, [3, 3, 1]);
    let (limits, _) = walk(&server, "/_/license", &operator, "data", "limit").await;
    assert_eq!(limits, ["1", "2", "3", "4", "5", "6"]);
    assert_eq!(
        walk(&server, "/_/license", &operator, "data", "limit")
            .await
            .1,
        [3, 3]
    );

    // Bad paging is a 400 naming the parameter.
    for query in ["limit=0", "limit=5000", "cursor=xyz"] {
        let message = server
            .get(&format!("/v1/account/tokens?{query}"), &acme.token)
            .send()
            .await
            .expect_error(400, "invalid_request");
        assert!(
            message.starts_with(query.split('=').next().unwrap()),
            "{message}"
        );
    }
}

#[tokio::test]
async fn metrics_count_requests_auth_failures_and_the_store() {
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let operator = server.operator_token("prometheus", true, false, None);
    server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
    server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
    server
        .get("/v1/account", "upk_at_malformed")
        .send()
        .await
        .expect_error(401, "unauthenticated");
    server
        .request(Method::GET, "/nope")
        .send()
        .await
        .expect_error(404, "not_found");
    // Metrics need an operator token.
    server
        .request(Method::GET, "/metrics")
        .send()
        .await
        .expect_error(401, "unauthenticated");
    server
        .get("/metrics", &acme.token)
        .send()
        .await
        .expect_error(403, "forbidden");

    let reply = server
        .request(Method::GET, "/metrics")
        .header("authorization", &format!("Bearer {operator}"))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    for line in [
        "upkeep_http_requests_total{route=\"get_account\",status=\"200\"} 2",
        "upkeep_http_requests_total{route=\"get_account\",status=\"401\"} 1",
        "upkeep_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
        "upkeep_http_requests_total{route=\"metrics\",status=\"403\"} 1",
        "upkeep_http_request_duration_seconds_count{route=\"get_account\"} 3",
        "upkeep_auth_failures_total{reason=\"malformed\"} 1",
        "upkeep_auth_failures_total{reason=\"missing\"} 1",
        "upkeep_auth_failures_total{reason=\"forbidden\"} 1",
        "upkeep_tokens 2",
        "upkeep_accounts 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    let size: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("upkeep_store_size_bytes "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(size > 0);
}

#[tokio::test]
async fn the_openapi_document_is_served_without_a_token() {
    let server = TestServer::start().await;
    let body = server
        .request(Method::GET, "/openapi.json")
        .send()
        .await
        .expect(200);
    assert_eq!(body["openapi"], "3.1.0");
}

/// Regression (found by the malformed-request barrage): listing tokens while one of them
/// is rotated read the name index, then missed the token it pointed at and answered 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_tokens_while_one_rotates_is_never_a_500() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let acme = server.account("acme");
    let lister = server.token(&acme, "lister", &["api"], None);
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let rotator = {
        let (addr, done, mut token) = (server.addr, done.clone(), acme.token.clone());
        tokio::spawn(async move {
            for _ in 0..300 {
                let req = format!(
                    "POST /api/v1/tokens/self/rotate HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                stream.write_all(req.as_bytes()).await.unwrap();
                let mut response = Vec::new();
                stream.read_to_end(&mut response).await.unwrap();
                let text = String::from_utf8_lossy(&response);
                let at = text.find("upk_at_").expect("a new token");
                token = text[at..at + 45].to_owned();
            }
            done.store(true, Ordering::Relaxed);
        })
    };
    let mut lists = 0;
    while !done.load(Ordering::Relaxed) {
        let reply = server.get("/v1/account/tokens", &lister).send().await;
        assert_ne!(reply.status.as_u16(), 500, "after {lists} lists: {reply:?}");
        let names = reply.expect(200)["tokens"].as_array().unwrap().len();
        assert_eq!(names, 2, "a rotating token never drops out of the list");
        lists += 1;
    }
    rotator.await.unwrap();
}
