//! The load benchmark's reference: a bare hyper 1.x HTTP/1.1 server answering every
//! request with `200 hello`, built like `src/server.rs` (http1 only, keep-alive, a
//! `TokioTimer` for the header-read timeout, TCP_NODELAY, a multi-thread runtime with one
//! worker per core), so the ratio upkeep/hello is the cost of upkeep's own work.
//!
//! `cargo run --release --example hello -- PORT` (0: any free port); it prints
//! `hello listening on 127.0.0.1:PORT` on stdout once it accepts connections.
//! Listens on 127.0.0.1 only.
//!
//! `hello PORT --like-upkeep BYTES`: a diagnostic variant answering a body of `BYTES`
//! bytes with the headers upkeep adds to an update check's answer (`content-type`,
//! `cache-control: no-store`, a fresh `x-request-id`), so the cost of the answer's size
//! and headers alone can be told apart from upkeep's work (`benches/README.md`). The
//! benchmarks' hello-world is the plain one.

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io::Write;
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn hello(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
}

/// `--like-upkeep`'s body, made once and never freed: a static `Bytes` is handed out
/// without touching a shared reference count (upkeep renders a fresh answer per check).
static LIKE_UPKEEP: std::sync::OnceLock<&'static [u8]> = std::sync::OnceLock::new();
static X_REQUEST_ID: hyper::header::HeaderName =
    hyper::header::HeaderName::from_static("x-request-id");

thread_local! {
    /// This thread's request counter: no shared atomic per request (upkeep hands its
    /// request ids out in per-thread blocks).
    static REQUESTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

async fn like_upkeep(
    _req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
    let body = Bytes::from_static(LIKE_UPKEEP.get().copied().unwrap_or_default());
    let mut res = Response::new(Full::new(body));
    let n = REQUESTS.with(|count| {
        count.set(count.get() + 1);
        count.get()
    });
    // `3f2a9c1b-` and 8 hex digits, on the stack: the shape of upkeep's request ids.
    let mut id = *b"3f2a9c1b-00000000";
    for (i, digit) in id[9..].iter_mut().enumerate() {
        *digit = b"0123456789abcdef"[(n >> (28 - 4 * i) & 15) as usize];
    }
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(id) = HeaderValue::from_bytes(&id) {
        headers.insert(X_REQUEST_ID.clone(), id);
    }
    Ok(res)
}

fn main() -> Result<(), BoxError> {
    let port: u16 = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|err| format!("PORT must be a number: {arg:?}: {err}"))?,
        None => return Err("usage: hello PORT [--like-upkeep BYTES] (0: any free port)".into()),
    };
    let like = match (std::env::args().nth(2).as_deref(), std::env::args().nth(3)) {
        (Some("--like-upkeep"), Some(bytes)) => {
            let bytes: usize = bytes
                .parse()
                .map_err(|err| format!("BYTES must be a number: {bytes:?}: {err}"))?;
            let _ = LIKE_UPKEEP.set(Vec::leak(vec![b'x'; bytes]));
            true
        }
        (None, _) => false,
        _ => return Err("usage: hello PORT [--like-upkeep BYTES] (0: any free port)".into()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!("hello listening on {}", listener.local_addr()?);
        std::io::stdout().flush()?;
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .keep_alive(true);
        loop {
            let (stream, _peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    eprintln!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let io = TokioIo::new(stream);
            if like {
                let conn = builder.serve_connection(io, service_fn(like_upkeep));
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            } else {
                let conn = builder.serve_connection(io, service_fn(hello));
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        }
    })
}
