//! A randomized barrage of malformed requests over raw TCP (not hyper's client: it cannot
//! send broken HTTP): broken methods, paths, versions, headers, framings and bodies, with
//! valid and invalid tokens. The server may answer 4xx, or close a connection whose bytes
//! it cannot parse, but never answers 5xx and never hangs; afterwards it still serves.
//!
//! Each request breaks one aspect (a [`Focus`]) of an otherwise well-formed, authenticated
//! request, so every kind of damage is met on its own; some break everything at once. A
//! request whose end is known (so the server is not left waiting for bytes) must get an
//! answer; one whose end is uncertain is followed by a write-side `shutdown()`, and a close
//! without an answer is then acceptable. Two servers take it: one with the
//! failed-authentication throttle off (so requests reach the handlers), and one behind a
//! trusted "proxy" whose client address 127.0.0.1 is already throttled (the `429` path and
//! `X-Forwarded-For` parsing).
//!
//! Deterministic per seed: the seed is printed, `MALFORMED_SEED=<n>` replays a run and
//! `MALFORMED_VERBOSE=1` prints every request and outcome. Request `i` comes from its own
//! PRNG stream (`seed`, `i`), so a failure names the request and its bytes whatever order
//! the concurrent requests ran in.

use crate::support::TestServer;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use upkeep::Settings;
use upkeep::http::auth::Need;
use upkeep::http::route::{Row as RouteSpec, example_path};

/// Requests in the barrage (bounded: the test must stay fast in debug builds).
const REQUESTS: usize = 5000;
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

    /// In `0..n` (`n > 0`); the modulo bias is irrelevant here.
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
        self.next().to_le_bytes()[0]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// The aspect of a request that a case breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Focus {
    /// A well-formed, authenticated request (it may still be refused on its merits).
    Nothing,
    Method,
    Target,
    Version,
    Host,
    Credential,
    Headers,
    Body,
    Framing,
    /// A well-formed request with bytes overwritten or cut anywhere.
    Damage,
    /// Random bytes, or another protocol.
    Noise,
    Everything,
}

const FOCI: &[Focus] = &[
    Focus::Nothing,
    Focus::Method,
    Focus::Target,
    Focus::Version,
    Focus::Host,
    Focus::Credential,
    Focus::Headers,
    Focus::Body,
    Focus::Framing,
    Focus::Damage,
    Focus::Noise,
    Focus::Everything,
];

/// Credentials the barrage presents. None of them is used for the final checks.
struct Tokens {
    account: String,
    read_only: String,
    operator: String,
    license: String,
}

/// One request as bytes. `close_write`: its end is uncertain (a truncated head, a body
/// shorter than declared, broken framing), so the write side is shut down after it: the
/// server then sees EOF instead of waiting for bytes that never come.
struct Case {
    focus: Focus,
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

/// Header lines in order, raw (names and values may be invalid on purpose).
#[derive(Default)]
struct Headers(Vec<(Vec<u8>, Vec<u8>)>);

impl Headers {
    fn add(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.0
            .push((name.as_ref().to_vec(), value.as_ref().to_vec()));
    }
}

fn token_name(rng: &mut Rng) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789.-";
    let n = 1 + rng.below(12);
    (0..n).map(|_| char::from(rng.pick(CHARS))).collect()
}

fn broken_method(rng: &mut Rng, row_method: &str) -> Vec<u8> {
    match rng.below(9) {
        0 => rng
            .pick(&[
                "PATCH", "OPTIONS", "TRACE", "CONNECT", "PURGE", "PROPFIND", "PRI",
            ])
            .as_bytes()
            .to_vec(),
        1 => row_method.to_ascii_lowercase().into_bytes(),
        2 => "A".repeat(1 + rng.below(4000)).into_bytes(),
        3 => {
            let n = 1 + rng.below(16);
            let mut bytes = rng.bytes(n);
            bytes.retain(|b| !matches!(b, b' ' | b'\r' | b'\n'));
            bytes
        }
        4 => Vec::new(),
        5 => b"GET POST".to_vec(),
        6 => "G\u{e9}T".as_bytes().to_vec(),
        7 => b"GET\0".to_vec(),
        // A valid method the route does not take.
        _ => rng
            .pick(&["GET", "HEAD", "POST", "PUT", "DELETE"])
            .as_bytes()
            .to_vec(),
    }
}

/// A request target: the route's path, mutated 1–3 times, maybe with a query string.
fn broken_target(rng: &mut Rng, path: &str) -> Vec<u8> {
    let mut bytes = path.as_bytes().to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(10) {
            0 if !bytes.is_empty() => {
                // Flip one bit: may make control bytes, spaces, non-ASCII.
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
                let mut long = b"/v1/".to_vec();
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
                        b"http://[::1/v1/account",
                        b"example.com:80",
                        b"",
                    ])
                    .to_vec();
            }
            _ => {
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
                if rng.chance(30) {
                    bytes.extend(std::iter::repeat_n(b'q', 1 + rng.below(5000)));
                }
            }
        }
    }
    bytes
}

fn broken_version(rng: &mut Rng) -> &'static str {
    rng.pick(&[
        "HTTP/1.0",
        "HTTP/2.0",
        "HTTP/9.9",
        "http/1.1",
        "HTTP/1.1 extra",
        "",
        "HTTP/1",
        "HTTP/1.1\0",
        "HTTP/0.9",
    ])
}

/// The credential header(s). `broken`: missing, of the wrong kind, damaged, or several.
fn credential(
    rng: &mut Rng,
    headers: &mut Headers,
    tokens: &Tokens,
    row: &RouteSpec,
    broken: bool,
) {
    let fitting = match row.need {
        Need::Operator { .. } => &tokens.operator,
        Need::Public | Need::Scope(_) | Need::Account => &tokens.account,
    };
    if !broken {
        if rng.chance(50) {
            headers.add("x-api-key", fitting);
        } else {
            headers.add("authorization", format!("Bearer {fitting}"));
        }
        return;
    }
    let mut token = rng
        .pick(&[
            fitting,
            &tokens.account,
            &tokens.read_only,
            &tokens.operator,
            &tokens.license,
        ])
        .as_bytes()
        .to_vec();
    match rng.below(8) {
        0 => {
            let at = rng.below(token.len());
            token[at] = rng.pick(b"0aZ_-");
        }
        1 => token.truncate(rng.below(token.len())),
        2 => token.push(b'x'),
        3 => token = b"upk_xx_0000000000000000000000000000000000000000".to_vec(),
        4 => {
            let at = rng.below(token.len());
            token.splice(at..at, [0xc3, 0xa9]);
        }
        5 => {
            let n = 1 + rng.below(60);
            token = rng.bytes(n);
            token.retain(|b| !matches!(b, b'\r' | b'\n'));
        }
        6 => token.clear(),
        // Another kind of token than the route needs (or the right one, unchanged).
        _ => {}
    }
    match rng.below(6) {
        0 => {}
        1 => headers.add("x-api-key", &token),
        2 => {
            headers.add("x-api-key", fitting);
            headers.add("authorization", [b"Bearer ".as_slice(), &token].concat());
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
            headers.add("x-api-key", &token);
            headers.add("x-api-key", fitting);
        }
        _ => headers.add("authorization", [b"Bearer ".as_slice(), &token].concat()),
    }
}

/// Headers beyond host, credential and framing. `broken`: odd, oversized or invalid ones;
/// returns whether the head's end became uncertain.
fn other_headers(rng: &mut Rng, headers: &mut Headers, broken: bool) -> bool {
    if !broken {
        match rng.below(3) {
            0 => headers.add("content-type", "application/json"),
            1 => headers.add("content-type", "application/x-www-form-urlencoded"),
            _ => {}
        }
        return false;
    }
    match rng.below(13) {
        0 => headers.add(
            "content-type",
            rng.pick(&[
                &b"text/plain"[..],
                b"application/xml",
                b";;;",
                b"\xff\xfe",
                b"multipart/form-data; boundary=",
                b"application/json; charset=latin1",
            ]),
        ),
        1 => {
            // Oversized header value.
            let n = rng.pick(&[8 * 1024, 64 * 1024, 200 * 1024]);
            headers.add("x-big", vec![b'a'; n]);
        }
        2 => {
            // Many headers.
            for i in 0..(50 + rng.below(150)) {
                headers.add(format!("x-h{i}"), "1");
            }
        }
        3 => headers.add("x-binary", [0x80, 0xff, b'a', 0xc3]),
        4 => {
            let name = rng.pick(&[&b"bad name"[..], b"", b"x\0y", b"(x)", b"\xff", b"x-a:b"]);
            headers.add(name, "1");
            return true;
        }
        5 => {
            headers.add("x-cr", b"a\rb");
            return true;
        }
        6 => {
            headers.add(" folded", "line");
            return true;
        }
        7 => headers.add("expect", rng.pick(&["100-continue", "200-ok"])),
        8 => headers.add(
            "connection",
            rng.pick(&[&b"close"[..], b"keep-alive", b"upgrade", b"\x01"]),
        ),
        9 => {
            headers.add("connection", "upgrade");
            headers.add("upgrade", rng.pick(&["h2c", "websocket"]));
        }
        10 => headers.add("x-forwarded-for", rng.pick(&["1.2.3.4", "garbage", ""])),
        11 => headers.add("x-nul", b"a\0b"),
        _ => headers.add("content-encoding", "gzip"),
    }
    false
}

/// The route's seed-document body (empty for routes without one).
fn template(route: &str) -> &'static str {
    match route {
        "apply_account_license" => r#"{ "license": "YOUR_LICENSE_KEY" }"#,
        "create_account_token" => r#"{ "name": "a-token-name", "expires": 365 }"#,
        "create_token" => r#"{"name":"ci","scopes":["read_user"],"expires_in":"90d"}"#,
        "rotate_self" => r#"{"grace":"1h"}"#,
        "create_operator_token" | "update_operator_token" => {
            r#"{"name":"example","expiration_date":1932960000000,"active":true,"write":true}"#
        }
        "delete_operator_token" => r#"{"name":"example"}"#,
        "create_account" => r#"{"name":"Other","email":"o@example.com","prefix":"other"}"#,
        "delete_account" => r#"{"prefix":"other"}"#,
        "issue_license" => r#"{"limit":10,"expiration_date":1900000000000}"#,
        "revoke_license" => r#"{"id":1}"#,
        _ => "",
    }
}

/// A broken body for a route whose template is `template`.
fn broken_body(rng: &mut Rng, template: &str) -> Vec<u8> {
    match rng.below(16) {
        0 => {
            let cut = rng.below(template.len() + 1);
            template.as_bytes()[..cut].to_vec()
        }
        1 => {
            let mut deep = b"{\"name\":".to_vec();
            deep.extend(std::iter::repeat_n(b'[', 10_000));
            deep
        }
        2 => "[".repeat(10_000).into_bytes(),
        3 => "{\"a\":".repeat(5_000).into_bytes(),
        4 => rng
            .pick(&[
                &br#"{"limit":1e999999,"expiration_date":1}"#[..],
                br#"{"limit":123456789012345678901234567890}"#,
                br#"{"id":-1}"#,
                br#"{"id":18446744073709551616}"#,
                br#"{"name":"a","expires":-9223372036854775809}"#,
                br#"{"name":"a","expires":99999999999}"#,
                br#"{"name":"x","expiration_date":-0.0}"#,
                br#"{"name":"x","expiration_date":18446744073709551615}"#,
                br#"{"name":"ci","scopes":"api","expires_in":"99999999999999999999d"}"#,
                br#"{"name":"ci","scopes":"api","expires_in":"584942417355y"}"#,
                br#"{"name":"ci","scopes":"api","expires_at":"9999-99-99T99:99:99Z"}"#,
                br#"{"name":"ci","scopes":"api","expires_at":"+275760-09-13T00:00:00Z"}"#,
                br#"{"grace":"9999999999999999h"}"#,
                br#"{"limit":4294967296}"#,
            ])
            .to_vec(),
        5 => {
            let mut bad = br#"{"name":""#.to_vec();
            bad.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28, b'"', b'}']);
            bad
        }
        6 => rng
            .pick(&[
                &b"name=%zz&scopes=%&expires_in=%f"[..],
                b"name=ci+bot&scopes=api&scopes=read_user",
                b"name=a&name=b&name[]=c&scopes[]=api",
                b"=&&=&%%%&scopes",
                b"name=%ff%fe&scopes=%c3",
                b"grace=%31h&grace=2h",
                b"name=x&scopes=api&expires_in=-1s",
                b"name=x&scopes=api&expires_in=99999999999999999999y",
            ])
            .to_vec(),
        7 => {
            let n = rng.below(300);
            rng.bytes(n)
        }
        8 => {
            // Over the limit.
            let n = BODY_LIMIT + 1 + rng.below(40 * 1024);
            let mut big = b"{\"name\":\"".to_vec();
            big.resize(n, b'a');
            big
        }
        9 => {
            // Just under the limit.
            let mut big = b"{\"name\":\"".to_vec();
            big.resize(BODY_LIMIT - 2, b'a');
            big.extend_from_slice(b"\"}");
            big
        }
        10 => rng
            .pick(&[&b"null"[..], b"true", b"\"x\"", b"[]", b"{}", b"  \r\n\t "])
            .to_vec(),
        11 => br#"{"name":"a","name":"b"}"#.to_vec(),
        12 => br#"{"name":"x"} trailing"#.to_vec(),
        13 => format!(r#"{{"name":"{}"}}"#, "\\u0000\\ud800".repeat(50)).into_bytes(),
        14 => Vec::new(),
        _ => {
            // The template with one byte overwritten.
            let mut bytes = template.as_bytes().to_vec();
            if !bytes.is_empty() {
                let at = rng.below(bytes.len());
                bytes[at] = rng.byte();
            }
            bytes
        }
    }
}

/// `body` in chunked encoding, properly ended unless `broken`; returns whether the end
/// is uncertain.
fn chunked(rng: &mut Rng, body: &[u8], broken: bool) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let n = (1 + rng.below(4096)).min(rest.len());
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    if !broken {
        if rng.chance(20) {
            out.extend_from_slice(b"0\r\nx-trailer: 1\r\n\r\n");
        } else {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        return (out, false);
    }
    let tail = rng.pick(&[
        &b"zz\r\nabc\r\n0\r\n\r\n"[..],
        b"-1\r\n\r\n",
        b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
        b"5\r\nab\r\n0\r\n\r\n",
        b"3;ext=\"unterminated\r\nabc\r\n0\r\n\r\n",
        b"0x3\r\nabc\r\n0\r\n\r\n",
        b" 3\r\nabc\r\n0\r\n\r\n",
        b"3\nabc\n0\n\n",
        b"10000000\r\n",
        b"",
    ]);
    out.extend_from_slice(tail);
    (out, true)
}

/// Adds framing headers for `body`; returns the bytes after the head and whether their
/// end is uncertain.
fn framing(rng: &mut Rng, headers: &mut Headers, body: Vec<u8>, broken: bool) -> (Vec<u8>, bool) {
    if !broken {
        return if rng.chance(15) {
            headers.add("transfer-encoding", "chunked");
            chunked(rng, &body, false)
        } else {
            if !body.is_empty() || rng.chance(50) {
                headers.add("content-length", body.len().to_string());
            }
            (body, false)
        };
    }
    match rng.below(9) {
        // No framing: a body sent anyway is a garbage follow-up request.
        0 => (body, false),
        1 => {
            headers.add("transfer-encoding", "chunked");
            chunked(rng, &body, true)
        }
        2 => {
            let value = rng.pick(&[
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
            ]);
            headers.add("content-length", value);
            (body, true)
        }
        3 => {
            // Declared longer than sent: the server waits for the rest until our EOF.
            let declared = body.len() + 1 + rng.below(1000);
            headers.add("content-length", declared.to_string());
            (body, true)
        }
        4 => {
            // Both Content-Length and Transfer-Encoding.
            let (chunks, _) = chunked(rng, &body, false);
            headers.add("content-length", body.len().to_string());
            headers.add("transfer-encoding", "chunked");
            (chunks, true)
        }
        5 => {
            // Two Content-Lengths, maybe different.
            headers.add("content-length", body.len().to_string());
            headers.add("content-length", (body.len() + rng.below(3)).to_string());
            (body, true)
        }
        6 => {
            let coding = rng.pick(&[
                "gzip",
                "chunked, gzip",
                "identity",
                "chunked, chunked",
                "xchunked",
            ]);
            headers.add("transfer-encoding", coding);
            (body, true)
        }
        7 => {
            // Declared shorter than sent: the rest is a garbage follow-up request.
            let declared = rng.below(body.len() + 1);
            headers.add("content-length", declared.to_string());
            (body, false)
        }
        _ => {
            // Two requests in one write (pipelined); the first is answered.
            headers.add("content-length", body.len().to_string());
            let mut bytes = body;
            bytes.extend_from_slice(b"GET /healthz HTTP/1.1\r\n\r\n");
            (bytes, false)
        }
    }
}

/// Builds request `index` of the barrage.
fn case(seed: u64, index: usize, host: &str, tokens: &Tokens) -> Case {
    let mut rng = Rng::new(seed, index as u64);
    let focus = rng.pick(FOCI);
    let broken = |aspect: Focus| focus == aspect || focus == Focus::Everything;

    if focus == Focus::Noise {
        let bytes = match rng.below(4) {
            0 => b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            1 => {
                // A TLS ClientHello's first bytes.
                let mut hello = vec![
                    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
                ];
                hello.extend(rng.bytes(64));
                hello
            }
            2 => b"\r\n\r\n\r\n".to_vec(),
            _ => {
                let n = 1 + rng.below(2000);
                rng.bytes(n)
            }
        };
        return Case {
            focus,
            bytes,
            close_write: true,
        };
    }

    let row = rng.pick(upkeep::api::rows());
    let path = example_path(row, &token_name(&mut rng));
    let mut close_write = false;

    let mut head = Vec::new();
    if broken(Focus::Method) {
        head.extend(broken_method(&mut rng, row.method.as_str()));
    } else {
        head.extend_from_slice(row.method.as_str().as_bytes());
    }
    head.push(b' ');
    if broken(Focus::Target) {
        head.extend(broken_target(&mut rng, &path));
    } else {
        head.extend_from_slice(path.as_bytes());
        if row.name == "get_operator_token_value" {
            head.extend_from_slice(b"?name=ops");
        }
    }
    let version = if broken(Focus::Version) {
        broken_version(&mut rng)
    } else {
        "HTTP/1.1"
    };
    if !version.is_empty() {
        head.push(b' ');
        head.extend_from_slice(version.as_bytes());
    }
    head.extend_from_slice(b"\r\n");

    let mut headers = Headers::default();
    if broken(Focus::Host) {
        match rng.below(5) {
            0 => {}
            1 => {
                headers.add("host", host);
                headers.add("host", "other.example");
            }
            2 => headers.add("host", ""),
            3 => headers.add("host", b"bad host\x7f"),
            _ => headers.add("host", "x".repeat(300)),
        }
    } else {
        headers.add("host", host);
    }
    credential(
        &mut rng,
        &mut headers,
        tokens,
        row,
        broken(Focus::Credential),
    );
    close_write |= other_headers(&mut rng, &mut headers, broken(Focus::Headers));
    let body = if broken(Focus::Body) {
        broken_body(&mut rng, template(row.name))
    } else {
        template(row.name).as_bytes().to_vec()
    };
    let (rest, uncertain) = framing(&mut rng, &mut headers, body, broken(Focus::Framing));
    close_write |= uncertain;

    let mut bytes = head;
    for (name, value) in &headers.0 {
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend(rest);

    if broken(Focus::Damage) {
        if rng.chance(50) {
            for _ in 0..=rng.below(4) {
                let at = rng.below(bytes.len());
                bytes[at] = rng.byte();
            }
        } else {
            bytes.truncate(rng.below(bytes.len()));
        }
        close_write = true;
    }
    Case {
        focus,
        bytes,
        close_write,
    }
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
                    match status_of(&buf) {
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

/// The status code of a response head (`HTTP/1.x NNN …`).
fn status_of(head: &[u8]) -> Option<u16> {
    let rest = head
        .strip_prefix(b"HTTP/1.1 ".as_slice())
        .or_else(|| head.strip_prefix(b"HTTP/1.0 ".as_slice()))?;
    std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The first bytes of a request or response, printable, for messages.
fn show(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(400)];
    format!(
        "{:?} ({} bytes)",
        String::from_utf8_lossy(shown),
        bytes.len()
    )
}

/// `GET path` (with `x-api-key: token`) from the loopback address `source`: a fresh
/// client address, so no per-address throttle that the barrage's failed authentications
/// may have tripped applies to it.
async fn get_from(source: [u8; 4], addr: SocketAddr, path: &str, token: Option<&str>) -> u16 {
    let socket = TcpSocket::new_v4().expect("socket");
    // Any 127/8 address is local on Linux; if binding fails, the default source is used.
    let _ = socket.bind(SocketAddr::from((source, 0)));
    let key = token
        .map(|t| format!("x-api-key: {t}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n{key}connection: close\r\n\r\n");
    let run = async {
        let mut stream = socket.connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        response
    };
    let response = tokio::time::timeout(RESPONSE_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| {
            panic!("GET {path} after the barrage: no answer in {RESPONSE_TIMEOUT:?}")
        });
    status_of(&response)
        .unwrap_or_else(|| panic!("GET {path} after the barrage: {}", show(&response)))
}

/// What one barrage saw.
#[derive(Default)]
struct Tally {
    sent: usize,
    responses: usize,
    closed: usize,
    client_errors: usize,
    server_errors: usize,
}

/// Sends `count` cases (PRNG streams `first..first + count` of `seed`) to a fresh server
/// with `settings`, then checks that it still serves. Panics on any failure. `throttled`:
/// first get 127.0.0.1 throttled (the settings must enable the throttle), so the barrage
/// meets the `429` path; well-formed requests then need not succeed.
async fn barrage(
    label: &str,
    settings: Settings,
    throttled: bool,
    seed: u64,
    first: usize,
    count: usize,
) -> Tally {
    let verbose = std::env::var_os("MALFORMED_VERBOSE").is_some();
    let server = TestServer::start_with(settings).await;
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
    if throttled {
        let mut last = 0;
        for _ in 0..server.app().settings.auth_failures_per_minute + 2 {
            last = get_from([127, 0, 0, 1], addr, "/v1/account", Some("upk_at_guess")).await;
        }
        assert_eq!(last, 429, "[{label}] the throttle did not engage");
    }

    let cases: Vec<Case> = (first..first + count)
        .map(|i| case(seed, i, &host, &tokens))
        .collect();
    let cases = std::sync::Arc::new(cases);
    let mut outcomes: Vec<Option<Outcome>> = (0..count).map(|_| None).collect();
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

    let mut tally = Tally {
        sent: count,
        ..Tally::default()
    };
    let mut by_focus: BTreeMap<Focus, BTreeMap<String, usize>> = BTreeMap::new();
    let mut failures = Vec::new();
    for (i, (outcome, case)) in outcomes.iter().zip(cases.iter()).enumerate() {
        let i = first + i;
        let outcome = outcome.as_ref().expect("every case ran");
        if verbose {
            println!(
                "#{i} {:?}: {outcome:?} for {}",
                case.focus,
                show(&case.bytes)
            );
        }
        let label = match outcome {
            Outcome::Status(status) => {
                tally.responses += 1;
                if (400..500).contains(status) {
                    tally.client_errors += 1;
                }
                if *status >= 500 {
                    tally.server_errors += 1;
                }
                status.to_string()
            }
            Outcome::Closed => {
                tally.closed += 1;
                "closed".to_owned()
            }
            Outcome::Garbage(_) => "garbage".to_owned(),
            Outcome::Hang => "hang".to_owned(),
        };
        *by_focus
            .entry(case.focus)
            .or_default()
            .entry(label)
            .or_default() += 1;
        let failure = match outcome {
            Outcome::Status(status) if *status >= 500 => Some(format!("status {status}")),
            Outcome::Status(_) => None,
            // A request whose end we know is complete deserves an answer.
            Outcome::Closed if !case.close_write => Some("closed without a response".to_owned()),
            Outcome::Closed => None,
            Outcome::Garbage(bytes) => Some(format!("a reply that is not HTTP: {}", show(bytes))),
            Outcome::Hang => Some(format!("no answer in {RESPONSE_TIMEOUT:?}")),
        };
        if let Some(failure) = failure {
            failures.push(format!(
                "#{i} ({:?}): {failure}, for {}",
                case.focus,
                show(&case.bytes)
            ));
        }
    }
    for (focus, outcomes) in &by_focus {
        println!("malformed [{label}] {focus:?}: {outcomes:?}");
    }
    assert!(
        failures.is_empty(),
        "[{label}] seed {seed}: {} of {count} requests failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        tally.responses * 2 >= count,
        "[{label}] seed {seed}: only {} of {count} requests got a response",
        tally.responses
    );
    let well_formed = &by_focus[&Focus::Nothing];
    assert!(
        well_formed.keys().any(|status| status.starts_with('2')),
        "[{label}] seed {seed}: no well-formed request succeeded: {well_formed:?}"
    );
    if throttled {
        // Only failures are throttled (SPEC §2; `limits` shows a valid token is never):
        // the barrage's bad credentials, and its "well-formed" ones once a rotation or
        // delete in the barrage has retired them.
        assert!(
            by_focus
                .values()
                .any(|outcomes| outcomes.contains_key("429")),
            "[{label}] seed {seed}: no failed authentication was throttled: {by_focus:?}"
        );
    }

    // Still serving: health, and a valid token (from a fresh client address).
    assert_eq!(get_from([127, 0, 0, 1], addr, "/healthz", None).await, 200);
    assert_eq!(
        get_from([127, 0, 0, 2], addr, "/v1/account", Some(&acme.token)).await,
        200,
        "[{label}] a valid token after the barrage"
    );
    tally
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

    // Without the failed-authentication throttle, so the barrage reaches the handlers.
    let open = barrage(
        "no throttle",
        Settings {
            auth_failures_per_minute: 0,
            ..Settings::default()
        },
        false,
        seed,
        0,
        REQUESTS,
    )
    .await;
    // With it, and 127.0.0.1 already throttled, behind a "proxy": `X-Forwarded-For`
    // (garbage included) names the client.
    let guarded = barrage(
        "throttled, trust proxy",
        Settings {
            auth_failures_per_minute: 20,
            trust_proxy: true,
            ..Settings::default()
        },
        true,
        seed,
        REQUESTS,
        REQUESTS / 5,
    )
    .await;

    let total = |field: fn(&Tally) -> usize| field(&open) + field(&guarded);
    println!(
        "malformed summary: sent={} responses={} closed={} 4xx={} 5xx={}",
        total(|t| t.sent),
        total(|t| t.responses),
        total(|t| t.closed),
        total(|t| t.client_errors),
        total(|t| t.server_errors),
    );
}
