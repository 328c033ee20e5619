//! The request pipeline: `App::handle` turns any request into a response and never fails
//! (hyper drops the connection on a service error).
//!
//! Per request (GUIDE §3.3): an id → find the row (`crate::api::find`) → refuse what the
//! row forbids before reading anything (a missing or unknown credential: strangers never
//! make us read a body) → read the body if the row takes one (whole up to the JSON limit,
//! or handed over as a stream) → check the credential again against the store's state
//! *now* → the row's handler → render any error once → metrics and one log line.

use crate::app::App;
use crate::error::Error;
use crate::http::auth::{self, Need};
use crate::http::body::BodyStream;
use crate::http::request::{self, Input};
use crate::http::route::{self, BodyPolicy, Call, Handler, Matched};
use crate::http::{Body, response};
use crate::metrics::AuthFailure;
use crate::telemetry::RequestLog;
use crate::throttle;
use http::{HeaderValue, Method, Request, Response};
use std::net::IpAddr;
use std::time::Instant;

/// How far [`App::start`] got without waiting.
enum Started<'a> {
    /// Answered (or refused) already.
    Done(Result<Response<Body>, Error>),
    /// The rest: a write row's handler, or a JSON body to read first.
    Wait(route::Reply<'a>),
}

/// A matched, authenticated request: ready for its handler, or with a JSON body to read.
enum Prepared<B> {
    Call(Call),
    ReadBody(PendingBody<B>),
}

/// A request whose row reads its JSON body, authenticated, its body not yet read.
struct PendingBody<B> {
    row: &'static route::Row,
    params: route::Params,
    caller: Option<auth::Caller>,
    parts: http::request::Parts,
    body: B,
    peer: IpAddr,
}

/// `X-Request-Id`, made once.
static X_REQUEST_ID: http::header::HeaderName =
    http::header::HeaderName::from_static("x-request-id");

impl App {
    /// Answers one request from `peer`. Never fails.
    pub async fn handle<B>(&self, req: Request<B>, peer: IpAddr) -> Response<Body>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let request_id = self.request_ids.next();
        let method = req.method().clone();
        // The request log's copy of what it needs (nothing when request lines are off).
        let log = RequestLog::start(&req, peer, self.settings.trust_proxy);
        let (matched, path_refusal, step) = self.start(req, peer);
        let result = match step {
            Started::Done(result) => result,
            Started::Wait(reply) => reply.await,
        };
        let route_name = matched.map_or("unmatched", |(_, row)| row.name);
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
                // A request the row's dialect cannot take is answered in its own shape where
                // it has one (SPEC §3); the server's own failures keep the common one.
                // (EDD's is a `200`: the log line names the refusal, never its message,
                // which may quote the request.)
                // So is a method the path's rows do not take: a `405` (even for EDD, whose
                // clients never send one), with the `Allow` they do take.
                let dialect = match (matched, &err) {
                    (Some((_, row)), err) if err.is_bad_request() => row.refusal,
                    (None, Error::MethodNotAllowed(_)) => path_refusal,
                    _ => None,
                };
                match dialect {
                    Some(dialect) => {
                        if log.is_some() {
                            refusal = Some((err.code(), "answered in the dialect's shape".into()));
                        }
                        let mut res = dialect(&err);
                        if let Error::MethodNotAllowed(allowed) = &err {
                            *res.status_mut() = err.status();
                            if let Ok(value) = HeaderValue::from_str(&allowed.header_value()) {
                                res.headers_mut().insert(http::header::ALLOW, value);
                            }
                        }
                        res
                    }
                    None => response::error(&err, request_id.as_str()),
                }
            }
        };
        if method == Method::HEAD {
            *res.body_mut() = Body::default();
        }
        if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
            res.headers_mut().insert(X_REQUEST_ID.clone(), value);
        }
        let latency = started.elapsed();
        self.metrics.request(
            matched.map(|(index, _)| index),
            res.status().as_u16(),
            latency,
        );
        if let Some(log) = log {
            let refusal = refusal
                .as_ref()
                .map(|(code, message)| (*code, message.as_str()));
            log.finish(
                request_id.as_str(),
                &method,
                route_name,
                res.status().as_u16(),
                latency,
                refusal,
            );
        }
        res
    }

    /// Everything up to the first wait, without waiting: find the row, refuse what it
    /// forbids, and run a read row's handler; with no row for a known path asked with
    /// another method, the refusal its rows share ([`route::Table::refusal_at`]), if any.
    /// A row that reads a JSON body or writes continues in the boxed future this hands
    /// back; the update checks (read rows without a body) never build a future at all, so
    /// no request-sized state is moved from one future into the next on the hot path.
    fn start<'a, B>(
        &'a self,
        req: Request<B>,
        peer: IpAddr,
    ) -> (
        Option<(usize, &'static route::Row)>,
        Option<route::Refusal>,
        Started<'a>,
    )
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let matched = match crate::api::find(req.method(), req.uri().path()) {
            Ok(matched) => matched,
            Err(err) => {
                let refusal = match err {
                    Error::MethodNotAllowed(_) => crate::api::table().refusal_at(req.uri().path()),
                    _ => None,
                };
                return (None, refusal, Started::Done(Err(err)));
            }
        };
        let found = Some((matched.index, matched.row));
        let started = match self.call_of(matched, req, peer) {
            Ok(Prepared::Call(call)) => self.run(call),
            Ok(Prepared::ReadBody(pending)) => Started::Wait(Box::pin(self.with_body(pending))),
            Err(err) => Started::Done(Err(err)),
        };
        (found, None, started)
    }

    /// The row's handler on a complete call: a read answers now, a write is handed back.
    fn run(&self, call: Call) -> Started<'_> {
        match call.row.handler {
            Handler::Read(read) => Started::Done(read(self, &call)),
            Handler::Write(write) => Started::Wait(write(self, call)),
            Handler::ReadFirst(read, write) => match read(self, &call) {
                Some(answered) => Started::Done(answered),
                None => Started::Wait(write(self, call)),
            },
        }
    }

    /// The call, or the request still to be read when the row reads a JSON body.
    fn call_of<B>(
        &self,
        matched: Matched,
        req: Request<B>,
        peer: IpAddr,
    ) -> Result<Prepared<B>, Error>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Matched { row, params, .. } = matched;
        let mut stream = None;
        // Strangers never make us read a body: the credential is checked first.
        let caller = match row.need {
            Need::Public => None,
            need => Some(self.authenticate(req.headers(), peer, need, self.clock.now())?),
        };
        let (parts, body) = req.into_parts();
        let body = match row.body {
            // Dropped unread; hyper closes the connection instead of draining it.
            BodyPolicy::None => bytes::Bytes::new(),
            // Most requests (GETs) have no body: skip the read entirely.
            BodyPolicy::Json if body.is_end_stream() => bytes::Bytes::new(),
            BodyPolicy::Json => {
                return Ok(Prepared::ReadBody(PendingBody {
                    row,
                    params,
                    caller,
                    parts,
                    body,
                    peer,
                }));
            }
            BodyPolicy::Stream => {
                request::check_length(&parts.headers, self.settings.max_upload)?;
                stream = Some(BodyStream::new(
                    body,
                    self.settings.max_upload,
                    self.settings.body_timeout,
                ));
                bytes::Bytes::new()
            }
        };
        Ok(Prepared::Call(Call {
            row,
            stream,
            caller,
            input: Input { parts, body },
            params,
            now: self.clock.now(),
            peer,
        }))
    }

    /// Reads a JSON body, checks the credential again, and runs the row.
    async fn with_body<B>(&self, pending: PendingBody<B>) -> Result<Response<Body>, Error>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let PendingBody {
            row,
            params,
            mut caller,
            parts,
            body,
            peer,
        } = pending;
        let body = self.read_body(&parts.headers, body).await?;
        // The body may have taken up to `body_timeout`: the credential is checked again
        // against the state now, so a revocation acknowledged meanwhile is obeyed
        // (SPEC §2).
        if caller.is_some() {
            caller = Some(self.recheck(&parts.headers, row.need, self.clock.now())?);
        }
        let call = Call {
            row,
            stream: None,
            caller,
            input: Input { parts, body },
            params,
            now: self.clock.now(),
            peer,
        };
        match self.run(call) {
            Started::Done(answered) => answered,
            Started::Wait(reply) => reply.await,
        }
    }

    /// Authenticates and authorizes a request's credential for `need`. Failures of a
    /// presented credential count against the client's address; past the limit they get
    /// 429 instead of 401. A valid credential is never throttled (SPEC §2).
    fn authenticate(
        &self,
        headers: &http::HeaderMap,
        peer: IpAddr,
        need: Need,
        now: crate::model::Timestamp,
    ) -> Result<auth::Caller, Error> {
        let caller = match auth::authenticate(headers, self.store.index(), now) {
            Ok(caller) => caller,
            Err(Error::Unauthenticated) => {
                // Only a presented credential that fails is a guess; a request without one
                // is not. (The failure path re-reads the header to name the reason; the
                // hot path stays as it is.)
                let reason = match auth::credential(headers) {
                    Err(_) => AuthFailure::Missing,
                    Ok(token) if crate::token::parse(token).is_err() => AuthFailure::Malformed,
                    Ok(_) => AuthFailure::Unknown,
                };
                self.metrics.auth_failure(reason);
                if reason != AuthFailure::Missing {
                    let client = throttle::client_addr(peer, headers, self.settings.trust_proxy);
                    if let Some(retry_after) = self.throttle.fail(client, now) {
                        self.metrics.auth_failure(AuthFailure::Throttled);
                        return Err(Error::TooManyRequests { retry_after });
                    }
                }
                return Err(Error::Unauthenticated);
            }
            Err(err) => return Err(err),
        };
        if let Err(err) = caller.authorize(need) {
            self.metrics.auth_failure(AuthFailure::Forbidden);
            return Err(err);
        }
        Ok(caller)
    }

    /// The second check, right before the handler runs: the same credential, against the
    /// index as it is now. Not a guess, so not throttled.
    pub(crate) fn recheck(
        &self,
        headers: &http::HeaderMap,
        need: Need,
        now: crate::model::Timestamp,
    ) -> Result<auth::Caller, Error> {
        let caller = auth::authenticate(headers, self.store.index(), now).inspect_err(|_| {
            self.metrics.auth_failure(AuthFailure::Unknown);
        })?;
        caller.authorize(need).inspect_err(|_| {
            self.metrics.auth_failure(AuthFailure::Forbidden);
        })?;
        Ok(caller)
    }

    async fn read_body<B>(&self, headers: &http::HeaderMap, body: B) -> Result<bytes::Bytes, Error>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
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
