//! Limits and slow clients over real sockets: the failed-authentication throttle (429,
//! Retry-After, recovery, other addresses unaffected, X-Forwarded-For behind a trusted
//! proxy), the header-read timeout, silent connections, and the connection cap.
//!
//! Waiting here is always for a real event (a response, or the server closing the
//! socket) under a generous deadline; nothing sleeps.

use crate::support::TestServer;
use http::Method;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use upkeep::Settings;

fn throttled(limit: u32, trust_proxy: bool) -> Settings {
    Settings {
        auth_failures_per_minute: limit,
        trust_proxy,
        ..Settings::default()
    }
}

#[tokio::test]
async fn failed_authentications_are_throttled_per_address_and_recover() {
    let server = TestServer::start_with(throttled(5, false)).await;
    let acme = server.account("acme");
    let bad = upkeep::auth::generate(upkeep::auth::TokenKind::Account)
        .unwrap()
        .token;

    for _ in 0..5 {
        server
            .get("/v1/account", &bad)
            .send()
            .await
            .expect_error(401, "unauthenticated");
    }
    // Requests without any token are not guesses and do not count.
    for _ in 0..10 {
        server
            .request(Method::GET, "/v1/account")
            .send()
            .await
            .expect_error(401, "unauthenticated");
    }
    server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
    server
        .get("/v1/account", &bad)
        .send()
        .await
        .expect_error(401, "unauthenticated");
    // Over the limit: even a valid token from this address waits.
    let reply = server.get("/v1/account", &acme.token).send().await;
    reply.expect_error(429, "too_many_requests");
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Public routes are not throttled.
    server
        .request(Method::GET, "/healthz")
        .send()
        .await
        .expect(200);

    server.clock.advance(Duration::from_secs(retry_after));
    server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_throttled_not_the_proxy() {
    let server = TestServer::start_with(throttled(2, true)).await;
    let acme = server.account("acme");
    let bad = upkeep::auth::generate(upkeep::auth::TokenKind::Account)
        .unwrap()
        .token;
    let from = |ip: &str, token: &str| {
        server
            .get("/v1/account", token)
            .header("x-forwarded-for", &format!("10.9.9.9, {ip}"))
    };
    for _ in 0..3 {
        from("203.0.113.7", &bad)
            .send()
            .await
            .expect_error(401, "unauthenticated");
    }
    from("203.0.113.7", &acme.token)
        .send()
        .await
        .expect_error(429, "too_many_requests");
    // Another client behind the same proxy (same peer address) is unaffected.
    from("198.51.100.4", &acme.token).send().await.expect(200);
}

#[tokio::test]
async fn without_trust_proxy_forwarded_for_is_ignored() {
    let server = TestServer::start_with(throttled(2, false)).await;
    let acme = server.account("acme");
    let bad = upkeep::auth::generate(upkeep::auth::TokenKind::Account)
        .unwrap()
        .token;
    for i in 0..3 {
        // A client cannot dodge the throttle by inventing addresses.
        server
            .get("/v1/account", &bad)
            .header("x-forwarded-for", &format!("192.0.2.{i}"))
            .send()
            .await
            .expect_error(401, "unauthenticated");
    }
    server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect_error(429, "too_many_requests");
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out))
        .await
        .expect("the server closes the connection within 20 s")
        .map(|_| out)
        .unwrap_or_default()
}

fn quick_timeouts() -> Settings {
    Settings {
        header_timeout: Duration::from_millis(300),
        ..Settings::default()
    }
}

#[tokio::test]
async fn a_silent_connection_is_closed() {
    let server = TestServer::start_with(quick_timeouts()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let sent = read_until_closed(&mut stream).await;
    assert!(
        sent.is_empty() || sent.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&sent)
    );
}

#[tokio::test]
async fn headers_sent_too_slowly_are_cut_off() {
    let server = TestServer::start_with(quick_timeouts()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // ...and never the blank line that ends the headers.
    let sent = read_until_closed(&mut stream).await;
    assert!(
        !sent.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&sent)
    );
}

#[tokio::test]
async fn a_body_sent_too_slowly_is_refused() {
    let settings = Settings {
        body_timeout: Duration::from_millis(300),
        ..Settings::default()
    };
    let server = TestServer::start_with(settings).await;
    let acme = server.account("acme");
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /v1/account/tokens HTTP/1.1\r\nhost: x\r\nx-api-key: {}\r\ncontent-length: 100\r\n\r\n{{\"name\":",
        acme.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let sent = read_until_closed(&mut stream).await;
    let text = String::from_utf8_lossy(&sent);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"error\":\"request_timeout\""), "{text}");
}

#[tokio::test]
async fn the_connection_cap_holds_extra_clients_until_a_slot_frees() {
    let settings = Settings {
        max_connections: 2,
        ..Settings::default()
    };
    let server = TestServer::start_with(settings).await;
    let request = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut buf = [0u8; 12];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(stream); // kept open (keep-alive): each holds a slot
    }
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third.write_all(request).await.unwrap();
    let mut buf = [0u8; 12];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read_exact(&mut buf)).await;
    assert!(
        early.is_err(),
        "a third connection was served while two held the cap"
    );
    drop(held.pop());
    tokio::time::timeout(Duration::from_secs(20), third.read_exact(&mut buf))
        .await
        .expect("served once a slot frees")
        .unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
}
