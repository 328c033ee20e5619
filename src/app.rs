//! `App`: the shared state of a running server, and `App::handle`, which turns any request
//! into a response and never fails (hyper drops the connection on a service error).
//!
//! Per request: assign an id → route → authenticate and authorize per `Route::need` →
//! read the body (size-limited) → dispatch → render any error once → log one line.

use crate::auth::{self, Need};
use crate::clock::Clock;
use crate::error::Error;
use crate::handlers;
use crate::http::request::{self, Input};
use crate::http::router::{self, Route, RouteSpec};
use crate::http::{Body, response};
use crate::metrics::{AuthFailure, Metrics};
use crate::model::Account;
use crate::store::Store;
use crate::telemetry::RequestLog;
use crate::throttle::{self, Throttle};
use http::{HeaderValue, Method, Request, Response};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Tunables of a running server. Defaults live once, on the `serve` flags (`cli`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `activationLimit` of an account with no plan license.
    pub default_activation_limit: u32,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Most connections served at once; further clients wait in the kernel's backlog.
    pub max_connections: usize,
    /// Time a client has to send a request's headers (and to send the next one on an idle
    /// keep-alive connection).
    pub header_timeout: Duration,
    /// Time a client has to send a whole request body.
    pub body_timeout: Duration,
    /// At shutdown, time given to in-flight requests before connections are cut.
    pub drain_timeout: Duration,
    /// How often token uses (`last_used_at`) are written to the store.
    pub persist_uses_every: Duration,
    /// Whether `GET /_/token/value` may read operator-token values back.
    pub token_values: bool,
    /// Writes are refused while the store's filesystem has less free space (bytes).
    pub min_free_space: u64,
    /// Failed authentications allowed per client address per minute (0: no limit).
    pub auth_failures_per_minute: u32,
    /// Read the client address from `X-Forwarded-For` (behind a reverse proxy).
    pub trust_proxy: bool,
}

impl Default for Settings {
    /// The values tests and benches start from (the CLI passes its own).
    fn default() -> Self {
        Settings {
            default_activation_limit: 1,
            max_body_bytes: 64 * 1024,
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            persist_uses_every: Duration::from_secs(60),
            token_values: true,
            min_free_space: crate::store::DEFAULT_RESERVE,
            auth_failures_per_minute: 20,
            trust_proxy: false,
        }
    }
}

/// Everything a request handler may use.
pub struct App {
    pub store: Store,
    pub clock: Clock,
    pub settings: Settings,
    pub throttle: Throttle,
    pub metrics: Metrics,
    request_ids: RequestIds,
}

/// Request ids: a per-process random prefix and a counter, `3f2a9c1b-0000002a`.
///
/// Each thread takes ids in blocks of [`RequestIds::BLOCK`] from the shared counter, so
/// the hot path touches no cache line another core writes; ids stay unique, and
/// increase within a thread.
struct RequestIds {
    boot: u32,
    next: AtomicU64,
    /// Tells this instance's blocks from another's (tests run many apps per thread).
    instance: u64,
}

/// Distinguishes [`RequestIds`] instances within the process.
static REQUEST_ID_INSTANCES: AtomicU64 = AtomicU64::new(1);

/// One request's id, formatted on the stack: `{boot:08x}-{counter:08x}`.
#[derive(Clone, Copy)]
struct RequestId {
    bytes: [u8; 8 + 1 + 16],
    len: u8,
}

impl RequestId {
    fn new(boot: u32, n: u64) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut bytes = [0u8; 25];
        for (i, byte) in bytes[..8].iter_mut().enumerate() {
            *byte = HEX[((boot >> (28 - 4 * i)) & 0xf) as usize];
        }
        bytes[8] = b'-';
        let digits = (16 - (n.leading_zeros() / 4) as usize).max(8);
        for i in 0..digits {
            bytes[9 + i] = HEX[((n >> (4 * (digits - 1 - i))) & 0xf) as usize];
        }
        RequestId {
            bytes,
            len: (9 + digits) as u8,
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII hex digits and '-' are ever written.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?")
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

thread_local! {
    /// This thread's block of request ids: whose, the next one, the end of the block.
    static REQUEST_ID_BLOCK: std::cell::Cell<(u64, u64, u64)> =
        const { std::cell::Cell::new((0, 0, 0)) };
}

impl RequestIds {
    fn new() -> Self {
        let mut bytes = [0u8; 4];
        // A clash of boot prefixes only makes two processes' ids look alike.
        let _ = getrandom::fill(&mut bytes);
        RequestIds {
            boot: u32::from_le_bytes(bytes),
            next: AtomicU64::new(1),
            instance: REQUEST_ID_INSTANCES.fetch_add(1, Ordering::Relaxed),
        }
    }

    const BLOCK: u64 = 256;

    fn next(&self) -> RequestId {
        let n = REQUEST_ID_BLOCK.with(|block| {
            let (owner, mut next, mut end) = block.get();
            if owner != self.instance || next == end {
                next = self.next.fetch_add(Self::BLOCK, Ordering::Relaxed);
                end = next + Self::BLOCK;
            }
            block.set((self.instance, next + 1, end));
            next
        });
        RequestId::new(self.boot, n)
    }
}

impl App {
    pub fn new(store: Store, clock: Clock, settings: Settings) -> Self {
        store.set_reserve(settings.min_free_space);
        App {
            store,
            clock,
            throttle: Throttle::new(settings.auth_failures_per_minute),
            metrics: Metrics::default(),
            settings,
            request_ids: RequestIds::new(),
        }
    }

    /// The account's `activationLimit`: its plan license's limit, or the default.
    ///
    /// # Errors
    /// The store failed.
    pub fn activation_limit(&self, account: &Account) -> Result<u32, Error> {
        Ok(self
            .store
            .account_license(account)?
            .map_or(self.settings.default_activation_limit, |license| {
                license.limit
            }))
    }

    /// Answers one request from `peer`. Never fails.
    pub async fn handle<B>(&self, req: Request<B>, peer: IpAddr) -> Response<Body>
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let request_id = self.request_ids.next();
        let method = req.method().clone();
        // The request log's copy of what it needs (nothing when request lines are off).
        let log = RequestLog::start(&req, peer, self.settings.trust_proxy);
        let (spec, result) = self.respond(req, peer).await;
        let route_name = spec.map_or("unmatched", |spec| spec.name);
        let mut refusal = None;
        let mut res = match result {
            Ok(res) => res,
            Err(err) => {
                if matches!(err.status().as_u16(), 403 | 429) && log.is_some() {
                    refusal = Some((err.code(), err.to_string()));
                }
                if err.status().is_server_error() {
                    tracing::error!(
                        request_id = %request_id,
                        route = route_name,
                        error = %err,
                        cause = ?std::error::Error::source(&err).map(ToString::to_string),
                        "request failed"
                    );
                } else {
                    tracing::debug!(request_id = %request_id, route = route_name, error = %err, "request refused");
                }
                response::error(&err, request_id.as_str())
            }
        };
        if method == Method::HEAD {
            *res.body_mut() = Body::default();
        }
        if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
            res.headers_mut().insert("x-request-id", value);
        }
        let latency = started.elapsed();
        self.metrics.request(spec, res.status().as_u16(), latency);
        if let Some(log) = log {
            let refusal = refusal
                .as_ref()
                .map(|(code, message)| (*code, message.as_str()));
            log.finish(
                &request_id,
                &method,
                route_name,
                res.status().as_u16(),
                latency,
                refusal,
            );
        }
        res
    }

    async fn respond<B>(
        &self,
        req: Request<B>,
        peer: IpAddr,
    ) -> (Option<&'static RouteSpec>, Result<Response<Body>, Error>)
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let route = match router::route(req.method(), req.uri().path()) {
            Ok(route) => route,
            Err(err) => return (None, Err(err)),
        };
        let spec = route.spec();
        (Some(spec), self.respond_to(route, req, peer).await)
    }

    async fn respond_to<B>(
        &self,
        route: Route,
        req: Request<B>,
        peer: IpAddr,
    ) -> Result<Response<Body>, Error>
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let now = self.clock.now();
        let caller = match route.need() {
            Need::Public => None,
            need => {
                let client = throttle::client_addr(peer, req.headers(), self.settings.trust_proxy);
                if let Some(retry_after) = self.throttle.check(client, now) {
                    self.metrics.auth_failure(AuthFailure::Throttled);
                    return Err(Error::TooManyRequests { retry_after });
                }
                let caller = match auth::authenticate(req.headers(), self.store.index(), now) {
                    Ok(caller) => caller,
                    Err(err) => {
                        // Only a presented credential that fails is a guess; a request
                        // without one is not. (The failure path re-reads the header to
                        // name the reason; the hot path stays as it is.)
                        let reason = match auth::credential(req.headers()) {
                            Err(_) => AuthFailure::Missing,
                            Ok(token) if auth::parse(token).is_err() => AuthFailure::Malformed,
                            Ok(_) => AuthFailure::Unknown,
                        };
                        self.metrics.auth_failure(reason);
                        if reason != AuthFailure::Missing {
                            self.throttle.fail(client, now);
                        }
                        return Err(err);
                    }
                };
                if let Err(err) = caller.authorize(need) {
                    self.metrics.auth_failure(AuthFailure::Forbidden);
                    return Err(err);
                }
                Some(caller)
            }
        };
        let (parts, body) = req.into_parts();
        // Most requests (GETs) have no body: skip the read entirely.
        let body = if body.is_end_stream() {
            bytes::Bytes::new()
        } else {
            Box::pin(self.read_body(&parts.headers, body)).await?
        };
        handlers::dispatch(self, caller, route, Input { parts, body }, now)
            .finish()
            .await
    }

    async fn read_body<B>(&self, headers: &http::HeaderMap, body: B) -> Result<bytes::Bytes, Error>
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        tokio::time::timeout(
            self.settings.body_timeout,
            request::read_body(headers, body, self.settings.max_body_bytes),
        )
        .await
        .map_err(|_| Error::RequestTimeout)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_formatted_and_distinct_across_threads() {
        assert_eq!(
            RequestId::new(0x3f2a_9c1b, 0x2a).as_str(),
            "3f2a9c1b-0000002a"
        );
        assert_eq!(
            RequestId::new(1, u64::MAX).as_str(),
            "00000001-ffffffffffffffff"
        );
        let ids = RequestIds::new();
        let other = RequestIds::new();
        let mut seen = std::collections::HashSet::new();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        // Interleaved with another instance on the same thread.
                        (0..1000)
                            .map(|_| {
                                other.next();
                                ids.next().to_string()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for handle in handles {
                for id in handle.join().unwrap() {
                    assert!(seen.insert(id.clone()), "duplicate {id}");
                }
            }
        });
        assert_eq!(seen.len(), 4000);
    }
}
