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
    let bad = upkeep::token::generate(upkeep::token::TokenKind::Account)
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
    // The sixth failure is over the limit: 429 with Retry-After, not 401.
    let reply = server.get("/v1/account", &bad).send().await;
    reply.expect_error(429, "too_many_requests");
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Only failures are throttled: a valid token from the same address (a NAT, an IPv6
    // /64 shared with the guesser) still works (SPEC §2; it was 429 before).
    server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
    // Public routes are not throttled.
    server
        .request(Method::GET, "/healthz")
        .send()
        .await
        .expect(200);

    server.clock.advance(Duration::from_secs(retry_after));
    server
        .get("/v1/account", &bad)
        .send()
        .await
        .expect_error(401, "unauthenticated");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_throttled_not_the_proxy() {
    let server = TestServer::start_with(throttled(2, true)).await;
    let acme = server.account("acme");
    let bad = upkeep::token::generate(upkeep::token::TokenKind::Account)
        .unwrap()
        .token;
    let from = |ip: &str, token: &str| {
        server
            .get("/v1/account", token)
            .header("x-forwarded-for", &format!("10.9.9.9, {ip}"))
    };
    for _ in 0..2 {
        from("203.0.113.7", &bad)
            .send()
            .await
            .expect_error(401, "unauthenticated");
    }
    from("203.0.113.7", &bad)
        .send()
        .await
        .expect_error(429, "too_many_requests");
    // Another client behind the same proxy (same peer address) is unaffected.
    from("198.51.100.4", &bad)
        .send()
        .await
        .expect_error(401, "unauthenticated");
    from("203.0.113.7", &acme.token).send().await.expect(200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_only_the_last_forwarded_entry_counts_with_its_port_stripped() {
    let server = TestServer::start_with(throttled(2, true)).await;
    let bad = upkeep::token::generate(upkeep::token::TokenKind::Account)
        .unwrap()
        .token;
    // A proxy that appends `ip:port`: the client varies what it sends to the left, the
    // proxy's entry varies only in its port. All three failures are 203.0.113.7's (before
    // the fix the unparseable `ip:port` was skipped and the client's own entry counted).
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for i in 0..3 {
            let reply = server
                .get("/v1/account", &bad)
                .header(
                    "x-forwarded-for",
                    &format!("198.51.100.{i}, 203.0.113.7:{}", 40_000 + i),
                )
                .send()
                .await;
            statuses.push(reply.status.as_u16());
        }
        statuses
    };
    assert_eq!(statuses, [401, 401, 429]);
}

#[tokio::test]
async fn without_trust_proxy_forwarded_for_is_ignored() {
    let server = TestServer::start_with(throttled(2, false)).await;
    let acme = server.account("acme");
    let bad = upkeep::token::generate(upkeep::token::TokenKind::Account)
        .unwrap()
        .token;
    for i in 0..2 {
        // A client cannot dodge the throttle by inventing addresses.
        server
            .get("/v1/account", &bad)
            .header("x-forwarded-for", &format!("192.0.2.{i}"))
            .send()
            .await
            .expect_error(401, "unauthenticated");
    }
    server
        .get("/v1/account", &bad)
        .header("x-forwarded-for", "192.0.2.99")
        .send()
        .await
        .expect_error(429, "too_many_requests");
    server
        .get("/v1/account", &acme.token)
        .send()
        .await
        .expect(200);
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
async fn at_the_connection_cap_idle_connections_make_room_and_busy_ones_are_kept() {
    let settings = Settings {
        max_connections: 2,
        header_timeout: Duration::from_secs(60),
        ..Settings::default()
    };
    let server = TestServer::start_with(settings).await;
    let acme = server.account("acme");
    let request = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";
    let mut buf = [0u8; 12];

    // Two idle keep-alive connections hold both slots; a third client is served at once,
    // because the oldest idle one is closed for it (it used to wait for the header
    // timeout).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(stream);
    }
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third.write_all(request).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), third.read_exact(&mut buf))
        .await
        .expect("served while the others sat idle")
        .unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
    let closed = read_until_closed(&mut held[0]).await;
    assert!(
        !closed.windows(12).any(|w| w == b"HTTP/1.1 200"),
        "the oldest idle connection is closed without another answer"
    );
    drop(held);
    drop(third);

    // Two connections busy with a request (a body still arriving) are never closed for a
    // newcomer: it waits until one of them is done.
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let head = format!(
            "POST /v1/account/tokens HTTP/1.1\r\nhost: x\r\nx-api-key: {}\r\ncontent-length: 13\r\n\r\n{{\"name\":",
            acme.token
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        busy.push(stream);
    }
    let mut newcomer = TcpStream::connect(server.addr).await.unwrap();
    newcomer.write_all(request).await.unwrap();
    let early =
        tokio::time::timeout(Duration::from_millis(300), newcomer.read_exact(&mut buf)).await;
    assert!(
        early.is_err(),
        "a busy connection was closed (or a third served) while two requests were in flight"
    );
    busy[0].write_all(b"\"n1\"}").await.unwrap();
    let mut answer = [0u8; 12];
    busy[0].read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200", "the busy request completed");
    tokio::time::timeout(Duration::from_secs(20), newcomer.read_exact(&mut buf))
        .await
        .expect("served once a connection turned idle")
        .unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
}
