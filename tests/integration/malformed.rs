//! A randomized barrage of malformed requests over raw TCP (not hyper's client: it cannot
//! send broken HTTP). Broken methods, paths, versions, headers, framings and bodies, with
//! valid and invalid tokens. The server may answer 4xx, or close a connection it cannot
//! parse, but never 5xx and never hangs; afterwards it still serves.
//!
//! Deterministic per seed: the seed is printed, and `MALFORMED_SEED=<n>` replays a run.
//! Request `i` is generated from its own PRNG (`seed`, `i`), so a failure names the
//! request index and the bytes sent, whatever the order in which concurrent requests ran.

use crate::support::TestServer;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use upkeep::http::router::{ROUTES, example_path};

/// Requests in the barrage (bounded: the test must stay fast in debug builds).
const REQUESTS: usize = 3000;
/// Requests in flight at once.
const CONCURRENCY: usize = 8;
/// Longest wait for a response (or a close) to one request: past it, the request hung.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// The server's default body limit (`Settings::max_body_bytes`).
const BODY_LIMIT: usize = 64 * 1024;

/// xorshift64* — tiny, deterministic, good enough to pick test cases.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        // splitmix64 of (seed, stream), so neighbouring streams are unrelated; never 0.
        let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// Credentials the barrage may present (none of them is used for the final checks).
struct Tokens {
    account: String,
    read_only: String,
    operator: String,
    license: String,
}

/// One request as bytes, and whether its end is uncertain (truncated head, body shorter
/// than declared, broken framing): those are followed by `shutdown()` of the write side,
/// so the server sees EOF instead of waiting for bytes that never come.
struct Case {
    bytes: Vec<u8>,
    close_write: bool,
}

#[derive(Debug)]
enum Outcome {
    Status(u16),
    /// Closed (or reset) without a response: acceptable for unparsable HTTP.
    Closed,
    /// Bytes that are not an HTTP response.
    Garbage(Vec<u8>),
    Hang,
}

fn token_name(rng: &mut Rng) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789.-";
    let n = 1 + rng.below(12);
    (0..n).map(|_| char::from(rng.pick(CHARS))).collect()
}

fn method(rng: &mut Rng, row_method: &str) -> Vec<u8> {
    match rng.below(20) {
        0..=11 => row_method.as_bytes().to_vec(),
        12 => rng
            .pick(&["PATCH", "OPTIONS", "TRACE", "CONNECT", "PURGE", "PROPFIND"])
            .as_bytes()
            .to_vec(),
        13 => row_method.to_ascii_lowercase().into_bytes(),
        14 => "A".repeat(1 + rng.below(4000)).into_bytes(),
        15 => {
            let n = 1 + rng.below(16);
            rng.bytes(n)
                .into_iter()
                .filter(|b| !matches!(b, b' ' | b'\r' | b'\n'))
                .collect()
        }
        16 => Vec::new(),
        17 => b"GET POST".to_vec(),
        18 => "G\u{e9}T".as_bytes().to_vec(),
        _ => rng
            .pick(&["GET", "POST", "PUT", "DELETE", "HEAD"])
            .as_bytes()
            .to_vec(),
    }
}

/// A request target: a route's path, often mutated, with or without a query string.
fn target(rng: &mut Rng, path: &str) -> Vec<u8> {
    let mut bytes = path.as_bytes().to_vec();
    for _ in 0..rng.below(3) {
        match rng.below(12) {
            0 if !bytes.is_empty() => {
                // Flip one bit: may produce control bytes, spaces, non-ASCII.
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            1 => {
                let escape = rng.pick(&[
                    "%2D", "%zz", "%", "%f", "%ff", "%00", "%2F", "%2e%2e", "%C3%A9", "%c3",
                ]);
                let at = rng.below(bytes.len() + 1);
                bytes.splice(at..at, escape.bytes());
            }
            2 => bytes.extend_from_slice(rng.pick(&[&b"/.."[..], b"/../..", b"/.", b"//", b"/"])),
            3 => {
                let mut long = b"/v1".to_vec();
                let n = rng.pick(&[100, 1000, 9000, 70_000]);
                long.extend(std::iter::repeat_n(b'a', n));
                bytes = long;
            }
            4 => {
                let at = rng.below(bytes.len() + 1);
                let junk = [0xff, 0xfe, 0xc3, 0x28, 0x80];
                let n = 1 + rng.below(junk.len());
                bytes.splice(at..at, junk[..n].iter().copied());
            }
            5 => bytes.truncate(rng.below(bytes.len() + 1)),
            6 => bytes.make_ascii_uppercase(),
            7 => {
                let at = rng.below(bytes.len() + 1);
                bytes.insert(at, rng.pick(b"#?;@:\\~ \t"));
            }
            8 => {
                bytes = rng
                    .pick(&[
                        &b"*"[..],
                        b"http://example.com/healthz",
                        b"example.com:80",
                        b"",
                    ])
                    .to_vec()
            }
            _ => {}
        }
    }
    if rng.chance(30) {
        let query = rng.pick(&[
            "?name=x",
            "?name=%zz&&==&name",
            "?=&&&=",
            "?name=%ff%fe",
            "?key=upk_at_0000000000000000000000000000000000000000",
            "?a[]=1&a[]=2#frag",
            "??",
            "?name=a+b%2",
        ]);
        bytes.extend_from_slice(query.as_bytes());
        if rng.chance(20) {
            bytes.extend(std::iter::repeat_n(b'q', 1 + rng.below(5000)));
        }
    }
    bytes
}

fn version(rng: &mut Rng) -> &'static str {
    match rng.below(30) {
        0 => "HTTP/1.0",
        1 => "HTTP/2.0",
        2 => "HTTP/9.9",
        3 => "http/1.1",
        4 => "HTTP/1.1 extra",
        5 => "",
        6 => "HTTP/1",
        _ => "HTTP/1.1",
    }
}

/// A token for the credential headers: usually one of ours, often broken.
fn token(rng: &mut Rng, tokens: &Tokens) -> Vec<u8> {
    let good = rng.pick(&[
        &tokens.account,
        &tokens.account,
        &tokens.read_only,
        &tokens.operator,
        &tokens.license,
    ]);
    let mut bytes = good.as_bytes().to_vec();
    match rng.below(12) {
        0 => {
            let at = rng.below(bytes.len());
            bytes[at] = rng.pick(b"0aZ_-");
        }
        1 => bytes.truncate(rng.below(bytes.len())),
        2 => bytes.extend_from_slice(b"x"),
        3 => bytes = b"upk_xx_0000000000000000000000000000000000000000".to_vec(),
        4 => {
            let at = rng.below(bytes.len());
            bytes.splice(at..at, [0xc3, 0xa9]);
        }
        5 => {
            let n = 1 + rng.below(60);
            bytes = rng.bytes(n);
        }
        6 => bytes = Vec::new(),
        _ => {}
    }
    bytes
}

/// A body for a route: its seed-document shape, or something broken.
fn body(rng: &mut Rng, route: &str) -> Vec<u8> {
    let template: &str = match route {
        "apply_account_license" => r#"{ "license": "YOUR_LICENSE_KEY" }"#,
        "create_account_token" => r#"{ "name": "a-token-name", "expires": 365 }"#,
        "create_token" => r#"{"name":"ci","scopes":["read_user"],"expires_in":"90d"}"#,
        "rotate_self" => r#"{"grace":"1h"}"#,
        "create_operator_token" | "update_operator_token" => {
            r#"{"name":"example","expiration_date":1632960000000,"active":true,"write":true}"#
        }
        "delete_operator_token" => r#"{"name":"example"}"#,
        "create_account" => r#"{"name":"Other","email":"o@example.com","prefix":"other"}"#,
        "delete_account" => r#"{"prefix":"other"}"#,
        "issue_license" => r#"{"limit":10,"expiration_date":1900000000000}"#,
        "revoke_license" => r#"{"id":1}"#,
        _ => "",
    };
    match rng.below(22) {
        0..=4 => template.as_bytes().to_vec(),
        5 => Vec::new(),
        6 => {
            let cut = rng.below(template.len() + 1);
            template.as_bytes()[..cut].to_vec()
        }
        7 => {
            let mut deep = b"{\"name\":".to_vec();
            deep.extend(std::iter::repeat_n(b'[', 10_000));
            deep
        }
        8 => "[".repeat(10_000).into_bytes(),
        9 => "{\"a\":".repeat(5_000).into_bytes(),
        10 => rng
            .pick(&[
                &br#"{"limit":1e999999,"expiration_date":1}"#[..],
                br#"{"limit":123456789012345678901234567890}"#,
                br#"{"id":-1}"#,
                br#"{"id":18446744073709551616}"#,
                br#"{"name":"a","expires":-9223372036854775809}"#,
                br#"{"name":"a","expires":99999999999}"#,
                br#"{"expiration_date":-0.0,"name":"x"}"#,
                br#"{"name":"ci","scopes":"api","expires_in":"99999999999999999999d"}"#,
                br#"{"name":"ci","scopes":"api","expires_at":"9999-99-99T99:99:99Z"}"#,
            ])
            .to_vec(),
        11 => {
            let mut bad = br#"{"name":""#.to_vec();
            bad.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28, b'"', b'}']);
            bad
        }
        12 => rng
            .pick(&[
                &b"name=%zz&scopes=%&expires_in=%f"[..],
                b"name=ci+bot&scopes=api&scopes=read_user",
                b"name=a&name=b&name[]=c&scopes[]=api",
                b"=&&=&%%%&scopes",
                b"name=%ff%fe&scopes=%c3",
                b"grace=%31h&grace=2h",
                b"name=x&scopes=api&expires_in=-1s",
            ])
            .to_vec(),
        13 => {
            let n = rng.below(300);
            rng.bytes(n)
        }
        14 => {
            // Over the limit.
            let n = BODY_LIMIT + 1 + rng.below(40 * 1024);
            let mut big = b"{\"name\":\"".to_vec();
            big.resize(n, b'a');
            big
        }
        15 => {
            // Just under the limit.
            let mut big = b"{\"name\":\"".to_vec();
            big.resize(BODY_LIMIT - 2, b'a');
            big.extend_from_slice(b"\"}");
            big
        }
        16 => b"null".to_vec(),
        17 => br#"{"name":"a","name":"b"}"#.to_vec(),
        18 => b"  \r\n\t ".to_vec(),
        19 => br#"{"name":"x"} trailing"#.to_vec(),
        20 => format!(r#"{{"name":"{}"}}"#, "\\u0000\\ud800".repeat(50)).into_bytes(),
        _ => template.as_bytes().to_vec(),
    }
}

fn chunked(rng: &mut Rng, body: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let n = (1 + rng.below(4096)).min(rest.len());
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    // Usually a proper end; sometimes a broken one (then the end is uncertain).
    match rng.below(10) {
        0 => {
            out.extend_from_slice(rng.pick(&[
                &b"zz\r\nabc\r\n0\r\n\r\n"[..],
                b"-1\r\n\r\n",
                b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
                b"5\r\nab\r\n0\r\n\r\n",
                b"3;ext=\"unterminated\r\nabc\r\n0\r\n\r\n",
                b"0x3\r\nabc\r\n0\r\n\r\n",
                b" 3\r\nabc\r\n0\r\n\r\n",
            ]));
            (out, true)
        }
        1 => (out, true), // no last chunk
        2 => {
            out.extend_from_slice(b"0\r\nx-trailer: 1\r\n\r\n");
            (out, false)
        }
        3 => {
            out.extend_from_slice(b"10000000\r\n");
            (out, true)
        }
        _ => {
            out.extend_from_slice(b"0\r\n\r\n");
            (out, false)
        }
    }
}

/// Header lines in order, raw (names and values may be invalid on purpose).
#[derive(Default)]
struct Headers(Vec<(Vec<u8>, Vec<u8>)>);

impl Headers {
    fn add(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.0
            .push((name.as_ref().to_vec(), value.as_ref().to_vec()));
    }
}

/// Builds request `index` of the barrage.
fn case(seed: u64, index: usize, host: &str, tokens: &Tokens) -> Case {
    let mut rng = Rng::new(seed, index as u64);
    if rng.chance(3) {
        // Pure noise.
        let n = rng.below(2000);
        return Case {
            bytes: rng.bytes(n),
            close_write: true,
        };
    }
    let row = rng.pick(ROUTES);
    let name = token_name(&mut rng);
    let path = example_path(row, &name);
    let mut close_write = false;

    let mut head = Vec::new();
    head.extend(method(&mut rng, row.method.as_str()));
    head.push(b' ');
    head.extend(target(&mut rng, &path));
    let version = version(&mut rng);
    if !version.is_empty() {
        head.push(b' ');
        head.extend_from_slice(version.as_bytes());
    }
    head.extend_from_slice(b"\r\n");

    let mut headers = Headers::default();
    match rng.below(10) {
        0 => {}
        1 => {
            headers.add("host", host.as_bytes());
            headers.add("host", b"other.example");
        }
        2 => headers.add("host", b""),
        3 => headers.add("host", b"bad host\x7f"),
        _ => headers.add("host", host.as_bytes()),
    }
    match rng.below(8) {
        0 => {}
        1 => headers.add("x-api-key", &token(&mut rng, tokens)),
        2 => {
            headers.add("x-api-key", &token(&mut rng, tokens));
            headers.add(
                "authorization",
                &[b"Bearer ".as_slice(), &token(&mut rng, tokens)].concat(),
            );
        }
        3 => headers.add(
            "authorization",
            rng.pick(&[
                &b"Basic dXNlcjpwYXNz"[..],
                b"Bearer",
                b"Bearer  ",
                b"bearer\tx",
                b"Token x",
            ]),
        ),
        4 => {
            let t = token(&mut rng, tokens);
            headers.add("x-api-key", &t);
            headers.add("x-api-key", &t);
        }
        _ => headers.add(
            "authorization",
            &[b"Bearer ".as_slice(), &token(&mut rng, tokens)].concat(),
        ),
    }
    match rng.below(6) {
        0 => headers.add("content-type", b"application/json"),
        1 => headers.add("content-type", b"application/x-www-form-urlencoded"),
        2 => headers.add(
            "content-type",
            rng.pick(&[
                &b"text/plain"[..],
                b"application/xml",
                b";;;",
                b"\xff\xfe",
                b"multipart/form-data; boundary=",
            ]),
        ),
        _ => {}
    }
    match rng.below(14) {
        0 => {
            // Oversized header value.
            let n = rng.pick(&[8 * 1024, 64 * 1024, 200 * 1024]);
            headers.add("x-big", &vec![b'a'; n]);
        }
        1 => {
            // Many headers.
            for i in 0..(50 + rng.below(150)) {
                headers.add(format!("x-h{i}"), b"1");
            }
        }
        2 => headers.add("x-binary", &[0x80, 0xff, b'a', 0xc3]),
        3 => {
            // Invalid header bytes: end uncertain.
            headers.add(
                rng.pick(&[&b"bad name"[..], b"", b"x\x00y", b"(x)", b"\xff"]),
                b"1",
            );
            close_write = true;
        }
        4 => {
            headers.add(b"x-cr", b"a\rb");
            close_write = true;
        }
        5 => {
            headers.add(b" folded", b"line");
            close_write = true;
        }
        6 => headers.add("expect", b"100-continue"),
        7 => headers.add(
            "connection",
            rng.pick(&[&b"close"[..], b"keep-alive", b"upgrade", b"\x01"]),
        ),
        8 => headers.add("upgrade", b"h2c"),
        _ => {}
    }

    let body = body(&mut rng, row.name);
    let framed = match rng.below(16) {
        // Correct Content-Length (the usual case).
        0..=7 => {
            headers.add("content-length", body.len().to_string().as_bytes());
            body
        }
        // No framing: a body sent anyway is a garbage follow-up request.
        8 => {
            if rng.chance(50) {
                body
            } else {
                Vec::new()
            }
        }
        9 => {
            let (chunks, broken) = chunked(&mut rng, &body);
            headers.add("transfer-encoding", b"chunked");
            close_write |= broken;
            chunks
        }
        10 => {
            headers.add(
                "content-length",
                rng.pick(&[
                    &b"abc"[..],
                    b"-1",
                    b"1e3",
                    b"0x10",
                    b"",
                    b"99999999999999999999999",
                    b"18446744073709551615",
                    b"5, 7",
                    b" 3 ",
                    b"+3",
                ]),
            );
            close_write = true;
            body
        }
        11 => {
            // Declared longer than sent: the server waits for the rest until our EOF.
            let declared = body.len() + 1 + rng.below(1000);
            headers.add("content-length", declared.to_string().as_bytes());
            close_write = true;
            body
        }
        12 => {
            // Both Content-Length and Transfer-Encoding.
            let (chunks, _) = chunked(&mut rng, &body);
            headers.add("content-length", body.len().to_string().as_bytes());
            headers.add("transfer-encoding", b"chunked");
            close_write = true;
            chunks
        }
        13 => {
            // Two Content-Lengths, possibly different.
            headers.add("content-length", body.len().to_string().as_bytes());
            headers.add(
                "content-length",
                (body.len() + rng.below(3)).to_string().as_bytes(),
            );
            close_write = true;
            body
        }
        14 => {
            headers.add(
                "transfer-encoding",
                rng.pick(&[
                    &b"gzip"[..],
                    b"chunked, gzip",
                    b"identity",
                    b"chunked, chunked",
                    b"xchunked",
                ]),
            );
            close_write = true;
            body
        }
        _ => {
            // Declared shorter than sent: the rest is a garbage follow-up request.
            let declared = rng.below(body.len() + 1);
            headers.add("content-length", declared.to_string().as_bytes());
            body
        }
    };

    for (name, value) in &headers.0 {
        head.extend_from_slice(name);
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let mut bytes = head;
    bytes.extend(framed);

    // Now and then, damage the whole message: a flipped byte or a cut anywhere.
    match rng.below(25) {
        0 => {
            for _ in 0..=rng.below(4) {
                let at = rng.below(bytes.len());
                bytes[at] = rng.byte();
            }
            close_write = true;
        }
        1 => {
            bytes.truncate(rng.below(bytes.len()));
            close_write = true;
        }
        _ => {}
    }
    Case { bytes, close_write }
}

/// Sends one case on a fresh connection and reads the status of the first final
/// response (skipping `100 Continue`), with a deadline.
async fn exchange(addr: SocketAddr, case: &Case) -> Outcome {
    let run = async {
        let Ok(stream) = TcpStream::connect(addr).await else {
            return Outcome::Closed;
        };
        let (mut reader, mut writer) = stream.into_split();
        let write = async {
            // The server may answer and close before reading everything: a failed
            // write is not a failure of the server.
            if writer.write_all(&case.bytes).await.is_ok() && case.close_write {
                let _ = writer.shutdown().await;
            }
            writer
        };
        let read = async {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                while let Some(end) = find(&buf, b"\r\n\r\n") {
                    let status = buf
                        .strip_prefix(b"HTTP/1.1 ".as_slice())
                        .or_else(|| buf.strip_prefix(b"HTTP/1.0 ".as_slice()))
                        .and_then(|rest| rest.get(..3))
                        .and_then(|code| std::str::from_utf8(code).ok())
                        .and_then(|code| code.parse::<u16>().ok());
                    match status {
                        Some(100) => {
                            buf.drain(..end + 4);
                        }
                        Some(status) => return Outcome::Status(status),
                        None => return Outcome::Garbage(buf),
                    }
                }
                match reader.read(&mut chunk).await {
                    Ok(0) | Err(_) if buf.is_empty() => return Outcome::Closed,
                    Ok(0) | Err(_) => return Outcome::Garbage(buf),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        };
        // Write and read at once: a server that answers early must not deadlock us.
        let (writer, outcome) = tokio::join!(write, read);
        drop(writer);
        outcome
    };
    tokio::time::timeout(RESPONSE_TIMEOUT, run)
        .await
        .unwrap_or(Outcome::Hang)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The first bytes of a request, printable, for failure messages.
fn show(bytes: &[u8]) -> String {
    let shown: Vec<u8> = bytes.iter().copied().take(400).collect();
    format!(
        "{:?} ({} bytes)",
        String::from_utf8_lossy(&shown),
        bytes.len()
    )
}

/// `GET path` with `x-api-key`, from the loopback address `source` (a fresh client address,
/// so no per-address throttling of the barrage's failed authentications applies to it).
async fn get_from(source: [u8; 4], addr: SocketAddr, path: &str, token: Option<&str>) -> u16 {
    let socket = TcpSocket::new_v4().expect("socket");
    // Any 127/8 address is local on Linux; if binding fails, the default source is used.
    let _ = socket.bind(SocketAddr::from((source, 0)));
    let key = token
        .map(|t| format!("x-api-key: {t}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n{key}connection: close\r\n\r\n");
    match exchange_on(socket, addr, request.as_bytes()).await {
        Outcome::Status(status) => status,
        other => panic!("GET {path} after the barrage: {other:?}"),
    }
}

/// One request with `connection: close` on `socket`; the status of the whole response.
async fn exchange_on(socket: TcpSocket, addr: SocketAddr, request: &[u8]) -> Outcome {
    let Ok(stream) = tokio::time::timeout(RESPONSE_TIMEOUT, socket.connect(addr)).await else {
        return Outcome::Hang;
    };
    let Ok(mut stream) = stream else {
        return Outcome::Closed;
    };
    let run = async {
        stream.write_all(request).await.expect("write");
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await.expect("read");
        buf
    };
    let Ok(buf) = tokio::time::timeout(RESPONSE_TIMEOUT, run).await else {
        return Outcome::Hang;
    };
    match buf
        .get(9..12)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse().ok())
    {
        Some(status) => Outcome::Status(status),
        None if buf.is_empty() => Outcome::Closed,
        None => Outcome::Garbage(buf),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_barrage_of_malformed_requests_gets_no_5xx_and_no_hang() {
    let seed = match std::env::var("MALFORMED_SEED") {
        Ok(text) => text.parse().expect("MALFORMED_SEED is a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    };
    println!("malformed seed: {seed} (replay with MALFORMED_SEED={seed})");

    let server = TestServer::start().await;
    // The final check's account: its prefix and token never appear in the barrage.
    let acme = server.account("acme");
    let fuzzer = server.account("fuzzer");
    let tokens = Tokens {
        read_only: server.token(&fuzzer, "read-only", &["read_user"], None),
        account: fuzzer.token,
        operator: server.operator_token("ops", true, true, None),
        license: server.license(5, None).1,
    };
    let addr = server.addr;
    let host = addr.to_string();

    let cases: Vec<Case> = (0..REQUESTS)
        .map(|i| case(seed, i, &host, &tokens))
        .collect();
    let cases = std::sync::Arc::new(cases);
    let mut outcomes: Vec<Option<Outcome>> = (0..REQUESTS).map(|_| None).collect();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        let cases = cases.clone();
        workers.spawn(async move {
            let mut done = Vec::new();
            for i in (worker..cases.len()).step_by(CONCURRENCY) {
                done.push((i, exchange(addr, &cases[i]).await));
            }
            done
        });
    }
    while let Some(done) = workers.join_next().await {
        for (i, outcome) in done.expect("worker") {
            outcomes[i] = Some(outcome);
        }
    }

    let (mut responses, mut closed, mut client_errors, mut server_errors) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let outcome = outcome.expect("every case ran");
        match &outcome {
            Outcome::Status(status) => {
                responses += 1;
                if (400..500).contains(status) {
                    client_errors += 1;
                }
                if *status >= 500 {
                    server_errors += 1;
                }
            }
            Outcome::Closed => closed += 1,
            Outcome::Garbage(_) | Outcome::Hang => {}
        }
        let failed = match &outcome {
            Outcome::Status(status) => *status >= 500,
            Outcome::Closed => false,
            Outcome::Garbage(_) | Outcome::Hang => true,
        };
        if failed {
            failures.push(format!("#{i}: {outcome:?} for {}", show(&cases[i].bytes)));
        }
    }
    println!(
        "malformed summary: sent={REQUESTS} responses={responses} closed={closed} 4xx={client_errors} 5xx={server_errors}"
    );
    assert!(
        failures.is_empty(),
        "seed {seed}: {} of {REQUESTS} requests got a 5xx, garbage or no answer in {RESPONSE_TIMEOUT:?}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        responses * 2 >= REQUESTS,
        "seed {seed}: only {responses} of {REQUESTS} requests got a response; the barrage is not reaching the server"
    );

    // Still serving: health, and a valid token from a fresh client address.
    assert_eq!(get_from([127, 0, 0, 1], addr, "/healthz", None).await, 200);
    assert_eq!(
        get_from([127, 0, 0, 2], addr, "/v1/account", Some(&acme.token)).await,
        200
    );
}
