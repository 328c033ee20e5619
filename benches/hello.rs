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

/// `--like-upkeep`'s body, made once.
static LIKE_UPKEEP: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

async fn like_upkeep(
    _req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
    let body = LIKE_UPKEEP.get().cloned().unwrap_or_default();
    let mut res = Response::new(Full::new(body));
    let n = REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(id) = HeaderValue::from_str(&format!("3f2a9c1b-{n:08x}")) {
        headers.insert("x-request-id", id);
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
            let _ = LIKE_UPKEEP.set(Bytes::from(vec![b'x'; bytes]));
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
